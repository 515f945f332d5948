package replay

// This file compiles a packet line of the script into the values the
// engine injects or expects: flags, sequence numbers, options bytes, IP
// information and ICMP type and code, with the reference's validation.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// tosCheck says how an outbound packet's TOS byte is checked.
type tosCheck int

const (
	tosNone  tosCheck = iota
	tosECN            // the two ECN bits equal tos
	tosECT01          // ECT(0) or ECT(1)
	tosFull           // the whole byte equals tos
)

// ECN codepoints.
const (
	ecnNone = 0
	ecnECT1 = 1
	ecnECT0 = 2
	ecnCE   = 3
)

// ttlNone is the TTL of a packet whose line names none: injected with it,
// and never checked, as in the reference.
const ttlNone = 255

// scriptPacket is a compiled packet line.
type scriptPacket struct {
	ast   *parser.Packet
	v6    bool
	proto uint8

	tosCheck  tosCheck
	tos       uint8
	flowLabel uint32
	ttl       uint8

	srcPort, dstPort uint16

	// TCP.
	flags      tcpwire.Flags
	ace        bool // the flags were written as an AccECN ACE count
	seq, ack   uint32
	payloadLen int
	win        int // -1: not checked
	urg        uint16
	options    []byte // nil with optionsAny
	optionsAny bool
	// echoLatest: the TS ecr injected is the latest TS val the kernel
	// sent, whatever the line's (a partial ACK, see injectPartial).
	echoLatest bool

	// UDP.
	udpLen int

	// ICMP.
	icmpType, icmpCode uint8
	icmpMTU            int64 // -1 if absent
	icmpID             int64
	echoedProto        uint8 // 0: no quoted packet
	echoedSeq          uint32
	echoedLen          int
}

func (sp *scriptPacket) isSyn() bool { return sp.flags&tcpwire.FlagSYN != 0 }

// compilePacket checks and compiles a packet line for a wire of the given
// IP family.
func compilePacket(p *parser.Packet, v6 bool) (*scriptPacket, error) {
	if len(p.Encaps) > 0 {
		return nil, fmt.Errorf("encapsulated packets (ipv4/ipv6/gre/mpls headers) are not supported")
	}
	if p.PSP != nil {
		return nil, fmt.Errorf("PSP encapsulation is not supported")
	}
	sp := &scriptPacket{ast: p, v6: v6, ttl: ttlNone, win: -1, icmpMTU: -1}
	if err := sp.compileIPInfo(p.IPInfo); err != nil {
		return nil, err
	}
	if p.Ports != nil {
		if p.Ports.Src < 0 || p.Ports.Src > 0xffff || p.Ports.Dst < 0 || p.Ports.Dst > 0xffff {
			return nil, fmt.Errorf("port out of range")
		}
		sp.srcPort, sp.dstPort = uint16(p.Ports.Src), uint16(p.Ports.Dst)
	}
	switch {
	case p.TCP != nil:
		sp.proto = tcpwire.ProtoTCP
		return sp, sp.compileTCP(p.TCP)
	case p.UDP != nil:
		sp.proto = tcpwire.ProtoUDP
		if sp.tosCheck == tosECN {
			return nil, fmt.Errorf("ECN can only be used with TCP packets")
		}
		if p.UDP.Len < 0 || p.UDP.Len > 0xffff {
			return nil, fmt.Errorf("UDP payload size out of range")
		}
		sp.udpLen = int(p.UDP.Len)
		return sp, nil
	case p.ICMP != nil:
		sp.proto = tcpwire.ProtoICMP
		if v6 {
			sp.proto = tcpwire.ProtoICMPv6
		}
		return sp, sp.compileICMP(p.ICMP)
	}
	return nil, fmt.Errorf("packet has no TCP, UDP or ICMP part")
}

func (sp *scriptPacket) compileIPInfo(in *parser.IPInfo) error {
	if in == nil {
		return nil
	}
	switch in.TOS {
	case "":
	case "noecn":
		sp.tosCheck, sp.tos = tosECN, ecnNone
	case "ect0":
		sp.tosCheck, sp.tos = tosECN, ecnECT0
	case "ect1":
		sp.tosCheck, sp.tos = tosECN, ecnECT1
	case "ce":
		sp.tosCheck, sp.tos = tosECN, ecnCE
	case "ect01":
		if sp.ast.Dir != parser.Outbound {
			return fmt.Errorf("[ect01] can only be used with outbound packets")
		}
		sp.tosCheck = tosECT01
	case "tos":
		if in.TOSValue < 0 || in.TOSValue > 0xff {
			return fmt.Errorf("tos out of range for 8 bits")
		}
		sp.tosCheck, sp.tos = tosFull, uint8(in.TOSValue)
	default:
		return fmt.Errorf("unknown IP info %q", in.TOS)
	}
	if in.FlowLabel != nil {
		if *in.FlowLabel < 0 || *in.FlowLabel > 0xfffff {
			return fmt.Errorf("flowlabel out of range for 20 bits")
		}
		sp.flowLabel = uint32(*in.FlowLabel)
	}
	if in.TTL != nil {
		if *in.TTL < 0 || *in.TTL > 0xff {
			return fmt.Errorf("ttl out of range")
		}
		if *in.TTL != 0 {
			sp.ttl = uint8(*in.TTL)
		}
	}
	return nil
}

func (sp *scriptPacket) compileTCP(t *parser.TCP) error {
	var err error
	sp.flags, sp.ace, err = tcpwire.ParseFlags(t.Flags)
	if err != nil {
		return err
	}
	if t.Len > 0xffff {
		return fmt.Errorf("TCP payload size out of range")
	}
	sp.seq, sp.payloadLen = t.Seq, int(t.Len)
	if t.Ack != nil {
		sp.ack = *t.Ack
	}
	if t.Win != nil {
		if *t.Win > 0xffff {
			return fmt.Errorf("TCP window value out of range")
		}
		sp.win = int(*t.Win)
	} else if sp.ast.Dir == parser.Inbound {
		return fmt.Errorf("window must be specified for inbound packets")
	}
	if t.Urg != nil {
		if *t.Urg > 0xffff {
			return fmt.Errorf("urg_ptr value out of range")
		}
		sp.urg = uint16(*t.Urg)
	}
	switch {
	case t.Options == nil:
		sp.options = []byte{}
	case t.Options.Any:
		if sp.ast.Dir != parser.Outbound {
			return fmt.Errorf("<...> for TCP options can only be used with outbound packets")
		}
		sp.optionsAny = true
	default:
		sp.options, err = parser.EncodeTCPOptions(t.Options.List)
		if err != nil {
			return err
		}
	}
	return nil
}

// ICMP types and codes by name, as the script language writes them.
var (
	icmp4Types = map[string]uint8{
		"echo_reply": 0, "unreachable": 3, "source_quench": 4, "redirect": 5,
		"echo_request": 8, "time_exceeded": 11, "parameter_problem": 12,
		"timestamp_request": 13, "timestamp_reply": 14, "information_request": 15,
		"information_reply": 16, "address_mask_request": 17, "address_mask_reply": 18,
	}
	icmp4UnreachCodes = map[string]uint8{
		"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
		"port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
		"net_unknown": 6, "host_unknown": 7, "source_host_isolated": 8,
		"net_prohibited": 9, "host_prohibited": 10, "net_unreachable_for_tos": 11,
		"host_unreachable_for_tos": 12, "packet_filtered": 13,
		"precedence_violation": 14, "precedence_cutoff": 15,
	}
	icmp6Types = map[string]uint8{
		"unreachable": 1, "packet_too_big": 2, "time_exceeded": 3,
		"parameter_problem": 4, "echo_request": 128, "echo_reply": 129,
	}
	icmp6Codes = map[string]map[string]uint8{
		"unreachable": {"net_unreachable": 0, "no_route": 0, "admin_prohibited": 1,
			"not_neighbour": 2, "address_unreachable": 3, "port_unreachable": 4},
		"time_exceeded":     {"exceeded_hop_limit": 0, "exceeded_frag_time": 1},
		"parameter_problem": {"header_field": 0, "unknown_next_header": 1, "unknown_option": 2},
	}
)

func parseNumbered(s, prefix string) (uint8, bool, error) {
	if !strings.HasPrefix(s, prefix) {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s[len(prefix):])
	if err != nil || n < 0 || n > 255 {
		return 0, true, fmt.Errorf("bad ICMP %s", s)
	}
	return uint8(n), true, nil
}

func (sp *scriptPacket) compileICMP(ic *parser.ICMP) error {
	typ, numbered, err := parseNumbered(ic.Type, "type_")
	if err != nil {
		return err
	}
	var codes map[string]uint8
	if !numbered {
		var ok bool
		if sp.v6 {
			typ, ok = icmp6Types[ic.Type]
			codes = icmp6Codes[ic.Type]
		} else {
			typ, ok = icmp4Types[ic.Type]
			if ic.Type == "unreachable" {
				codes = icmp4UnreachCodes
			}
		}
		if !ok {
			return fmt.Errorf("bad ICMP type %s", ic.Type)
		}
	}
	sp.icmpType = typ
	if ic.Code != "" {
		code, numbered, err := parseNumbered(ic.Code, "code_")
		if err != nil {
			return err
		}
		if !numbered {
			c, ok := codes[ic.Code]
			if !ok {
				return fmt.Errorf("bad ICMP code %s", ic.Code)
			}
			code = c
		}
		sp.icmpCode = code
	}
	if ic.MTU != nil {
		if sp.v6 && (typ != 2 || sp.icmpCode != 0) {
			return fmt.Errorf("ICMPv6 MTU is only valid for packet_too_big-0")
		}
		if !sp.v6 && (typ != 3 || sp.icmpCode != 4) {
			return fmt.Errorf("ICMPv4 MTU is only valid for unreachable-frag_needed")
		}
		sp.icmpMTU = *ic.MTU
	}
	if ic.ID != nil {
		if *ic.ID < 0 || *ic.ID > 0xffff {
			return fmt.Errorf("invalid echo_id, must be between 0 and 65535")
		}
		sp.icmpID = *ic.ID
	}
	sp.echoedProto = tcpwire.ProtoTCP
	if e := ic.Echoed; e != nil {
		switch e.Proto {
		case "tcp":
			sp.echoedProto, sp.echoedSeq = tcpwire.ProtoTCP, e.Seq
		case "udp":
			sp.echoedProto = tcpwire.ProtoUDP
		case "raw":
			sp.echoedProto = 255
		default:
			return fmt.Errorf("unsupported protocol %q quoted in ICMP", e.Proto)
		}
		sp.echoedLen = int(e.Len)
	}
	return nil
}

// icmpNames names an ICMP type and code as scripts write them, falling
// back to type_N and code_N; a code 0 without a name is left out.
func icmpNames(v6 bool, typ, code uint8) (string, string) {
	types, codes := icmp4Types, map[string]uint8(nil)
	if v6 {
		types = icmp6Types
	}
	typeName := fmt.Sprintf("type_%d", typ)
	for name, t := range types {
		if t == typ {
			typeName = name
			if v6 {
				codes = icmp6Codes[name]
			} else if name == "unreachable" {
				codes = icmp4UnreachCodes
			}
		}
	}
	codeName := ""
	if code != 0 {
		codeName = fmt.Sprintf("code_%d", code)
	}
	var names []string
	for name, c := range codes {
		if c == code {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		// Two ICMPv6 names share code 0; print the first in sorted order
		// so that messages are stable.
		sort.Strings(names)
		codeName = names[0]
	}
	return typeName, codeName
}
