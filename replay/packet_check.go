package replay

import "github.com/pcap2pkt/pcap2pkt/parser"

// checkPackets compiles every packet of the script for the wire family
// before anything runs. The reference builds its packets while parsing, so
// a packet the family cannot express (an ICMPv4 code such as frag_needed in
// an ipv6 run, or CODE when the run does not define it) is a semantic error
// that stops the script before its first command, not a failure halfway.
func (c *Config) checkPackets(s *parser.Script) error {
	for _, ev := range s.Events {
		p, ok := ev.Action.(*parser.Packet)
		if !ok {
			continue
		}
		if _, err := compilePacket(p, c.wireIPv6()); err != nil {
			return &parser.Error{File: s.File, Pos: lineOf(ev.Pos), Msg: "semantic error: " + err.Error(), Err: err}
		}
	}
	return nil
}
