package synth

// This file converts one captured packet into a script packet line.

import (
	"fmt"
	"math"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// packet converts one captured packet to a script packet, or returns nil
// for one the script language cannot write.
func (b *builder) packet(p *capture.FlowPacket, in bool) *pktNode {
	pk := b.convert(p, in)
	if !b.fits(p, pk) {
		return nil
	}
	if m := b.segSize(p, b.local); !in && m > 0 && p.PayloadLen() > m {
		b.count.bigOut++
	}
	return pk
}

// fits reports whether the script can write pk, converted from p: the
// script language has no way to write a range that wraps, nor a segment
// larger than an IPv4 datagram holds (an IPv6 one can claim 20 bytes more).
func (b *builder) fits(p *capture.FlowPacket, pk *pktNode) bool {
	if uint64(pk.TCP.Seq)+uint64(pk.TCP.Len) > math.MaxUint32 {
		b.count.wraps++
		b.comment(fmt.Sprintf("Left out: packet %d, whose sequence range %d:%d wraps past 2^32 relative to the ISN.",
			p.Index(), pk.TCP.Seq, uint64(pk.TCP.Seq)+uint64(pk.TCP.Len)))
		return false
	}
	if limit := parser.MaxSegmentBytes(pk.TCP.Options.WireLen()); int(pk.TCP.Len) > limit {
		b.count.tooLarge++
		b.comment(fmt.Sprintf("Left out: packet %d, whose %d bytes of data are more than a script's packet holds (%d with its options).",
			p.Index(), pk.TCP.Len, limit))
		return false
	}
	return true
}

// convert builds the script packet for p with the numbers the reference
// reads: inbound sequence numbers relative to the remote ISN and acks to
// the local ISN, outbound the other way round.
func (b *builder) convert(p *capture.FlowPacket, in bool) *pktNode {
	pk := b.convertPacket(p, in)
	if b.opts.Frames && p.Index() > 0 { // a made-up packet has no frame
		if b.frameOf == nil {
			b.frameOf = map[*pktNode]int{}
		}
		b.frameOf[pk] = p.Index()
	}
	return pk
}

func (b *builder) convertPacket(p *capture.FlowPacket, in bool) *pktNode {
	seqBase, ackBase := b.localISN, b.remoteISN
	dir := parser.Outbound
	if in {
		seqBase, ackBase = b.remoteISN, b.localISN
		dir = parser.Inbound
	}
	// One allocation for the packet's nodes: a capture has millions.
	pk := b.pkSlab.new()
	tcp := &pk.TCP
	*tcp = tcpLine{
		Flags: flagText(p.Flags),
		Seq:   rel(p.Seq, seqBase),
		Len:   uint32(p.PayloadLen()),
	}
	if p.Flags.Has(tcpwire.FlagACK) {
		pk.ack = rel(p.Ack, ackBase)
		tcp.Ack = &pk.ack
	}
	if in || b.opts.Strict {
		pk.win = uint32(p.Window)
		tcp.Win = &pk.win
	}
	if p.Flags.Has(tcpwire.FlagURG) {
		u := uint32(p.Urgent)
		tcp.Urg = &u
	}
	pk.Dir = dir
	if ecn := p.TOS & 3; in && ecn != 0 {
		pk.IPInfo = &parser.IPInfo{TOS: [...]string{"", "ect1", "ect0", "ce"}[ecn]}
	}
	raw := p.RawOptions()
	if len(raw) == 0 {
		return pk
	}
	if !in && !b.exactOptions(p) {
		tcp.Options = &parser.TCPOptions{Any: true}
		return pk
	}
	if opts, ok := b.tsOnly(raw); ok {
		tcp.Options = opts
		if in {
			b.checkEcr(opts.List, p.Flags.Has(tcpwire.FlagACK))
		}
		return pk
	}
	list, notes := convertOptions(raw, ackBase)
	if len(notes) > 0 {
		b.count.unknownOpt++
		b.comment(notes...)
	}
	if !in {
		var unchecked bool
		if list, unchecked = b.wildCookies(list); unchecked {
			tcp.Options = &parser.TCPOptions{Any: true}
			return pk
		}
		if p.Flags.Has(tcpwire.FlagSYN) {
			list = b.wildWScale(list)
		}
	}
	if len(list) > 0 {
		tcp.Options = &parser.TCPOptions{List: list}
	}
	if in {
		b.checkEcr(list, p.Flags.Has(tcpwire.FlagACK))
	}
	return pk
}

// wildCookies writes the Fast Open cookies of an outbound option list as
// `*`: the captured host's secret key made them, which no replay has. In
// packetdrill's language, which has no `*`, it reports that the whole list
// must be left unchecked instead. A `*` counts as Linux's 8-byte cookie:
// after a cookie of another size the nops at the end of the list, which
// padded the captured one, are replaced by those that pad the list to 4
// bytes again, and a list that then no longer fits in a TCP header is left
// unchecked too.
func (b *builder) wildCookies(list []*parser.TCPOption) (_ []*parser.TCPOption, unchecked bool) {
	wild := false
	for i, o := range list {
		if (o.Kind != parser.OptFastOpen && o.Kind != parser.OptFastOpenExp) || o.Cookie == "" {
			continue
		}
		if b.opts.Exact {
			return list, true
		}
		w := *o // the node may be shared (see tcpopts.go)
		w.Cookie, w.Wild = "", w.Wild|parser.WildCookie
		list[i], wild = &w, true
	}
	if !wild {
		return list, false
	}
	captured := 0
	for len(list) > 0 && list[len(list)-1].Kind == parser.OptNOP {
		list, captured = list[:len(list)-1], captured+1
	}
	n := (&parser.TCPOptions{List: list}).WireLen()
	pad := (4 - n%4) % 4
	for range pad {
		list = append(list, &parser.TCPOption{Kind: parser.OptNOP})
	}
	if pad != captured {
		b.comment(fmt.Sprintf("Nops at the end: %d instead of the %d captured (the Fast Open cookie written * counts as 8 bytes; the reference wants the option list padded to 4 bytes).", pad, captured))
	}
	return list, n+pad > tcpwire.MaxOptionBytes
}

// wildWScale writes the window scale of the kernel's own SYN or SYN-ACK
// as `wscale *`: the kernel picks it from its receive buffer limits, which
// follow the host's memory and the kernel's version (6.1 announces 2 where
// 6.18 announces 4 under the same settings), and it only scales the
// kernel's own windows, which the script leaves unchecked too. The option
// itself is still required (a kernel that stops scaling fails). --strict,
// which checks those windows, and --exact keep the captured value.
func (b *builder) wildWScale(list []*parser.TCPOption) []*parser.TCPOption {
	if b.opts.Strict || b.opts.Exact {
		return list
	}
	for i, o := range list {
		if o.Kind == parser.OptWScale {
			w := *o // the node may be shared (see tcpopts.go)
			w.Value, w.Sym, w.Wild = 0, "", w.Wild|parser.WildValue
			list[i] = &w
		}
	}
	return list
}

// forget gives back the nodes of pk, the packet converted last, which the
// script does not take (gather took its segment into the expectation
// before): a bulk sender's writes are gathered from two or more segments
// each, whose nodes would otherwise stay until the script is printed.
func (b *builder) forget(pk *pktNode) {
	if b.pkSlab.last() == pk {
		b.pkSlab.pop()
		delete(b.frameOf, pk)
	}
}

// pktNode is a TCP packet line of the script under construction: the
// fields of a parser.Packet that synthesis sets, with its TCP header's. A
// long connection has millions (80 bytes each): the parser.Packet and
// parser.TCP, with their room for encapsulations, UDP and ICMP and their
// positions in a script file, are made only when the events are rendered,
// a chunk at a time (see packet).
type pktNode struct {
	Dir      parser.Direction
	IPInfo   *parser.IPInfo
	TCP      tcpLine
	ack, win uint32 // what TCP.Ack and TCP.Win point to, when set
}

// tcpLine is what a pktNode holds of a parser.TCP: its fields but the
// position.
type tcpLine struct {
	Flags         string
	Seq, Len      uint32
	Ack, Win, Urg *uint32
	Options       *parser.TCPOptions
}

// packet fills p and its TCP header t from n.
func (n *pktNode) packet(p *parser.Packet, t *parser.TCP) {
	l := &n.TCP
	*t = parser.TCP{Flags: l.Flags, Seq: l.Seq, Len: l.Len, Ack: l.Ack, Win: l.Win, Urg: l.Urg, Options: l.Options}
	*p = parser.Packet{Dir: n.Dir, IPInfo: n.IPInfo, TCP: t}
}

// inboundLine reports whether the action a is an inbound packet line: TCP
// or ICMP.
func inboundLine(a any) bool {
	switch a := a.(type) {
	case *pktNode:
		return a.Dir == parser.Inbound
	case *parser.Packet:
		return a.Dir == parser.Inbound
	}
	return false
}

// flagTexts caches the text of each combination of the low nine flags:
// every packet needs one.
var flagTexts = func() (t [1 << 9]string) {
	for i := range t {
		t[i] = tcpwire.Flags(i).String()
	}
	return t
}()

func flagText(f tcpwire.Flags) string {
	if int(f) < len(flagTexts) {
		return flagTexts[f]
	}
	return f.String()
}

// noteTSVal records the TS val of an outbound expectation written with
// exact options: the reference maps inbound TS ecr values through the vals
// of the outbound packets it has matched.
func (b *builder) noteTSVal(pk *pktNode) {
	if pk.TCP.Options == nil {
		return
	}
	for _, o := range pk.TCP.Options.List {
		if o.Kind == parser.OptTimestamp {
			b.tsVals[o.TSVal] = true
		}
	}
}

// checkEcr notes an inbound TS ecr that echoes no outbound TS val written
// before it: the reference then needs --tcp_ts_ecr_scaled to map it.
func (b *builder) checkEcr(list []*parser.TCPOption, ack bool) {
	for _, o := range list {
		if o.Kind == parser.OptTimestamp && ack && !b.tsVals[o.TSEcr] {
			b.scaleEcr = true
		}
	}
}
