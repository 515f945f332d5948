package synth

import (
	"fmt"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// ICMPv4 type and code names as scripts write them.
var (
	icmpTypeNames = map[uint8]string{3: "unreachable", 11: "time_exceeded", 12: "parameter_problem"}
	// unreachableCodes are the names of destination unreachable codes 0..15.
	unreachableCodes = [...]string{"net_unreachable", "host_unreachable", "protocol_unreachable",
		"port_unreachable", "frag_needed", "source_route_failed", "net_unknown", "host_unknown",
		"source_host_isolated", "net_prohibited", "host_prohibited", "net_unreachable_for_tos",
		"host_unreachable_for_tos", "packet_filtered", "precedence_violation", "precedence_cutoff"}
)

const icmpUnreachable, icmpFragNeeded = 3, 4

// icmpUpTo injects the flow's ICMP errors captured before packet number
// index (file order) that report to the local side: the kernel acts on them
// (a hard error ends a connection still in its handshake, tcp_v4_err), and
// the replay can quote a segment of its own connection the same way. Those
// that went to the remote are counted only.
func (b *builder) icmpUpTo(index int) {
	for ; b.nextICMP < len(b.f.ICMP) && b.f.ICMP[b.nextICMP].Index < index; b.nextICMP++ {
		e := &b.f.ICMP[b.nextICMP]
		if e.To != b.local {
			b.count.icmpOther++
			continue
		}
		typ, ok := icmpTypeNames[e.Type]
		if !ok {
			typ = fmt.Sprintf("type_%d", e.Type)
		}
		ic := &parser.ICMP{Type: typ,
			Echoed: &parser.ICMPEchoed{Proto: "tcp", Seq: rel(e.Seq, b.localISN), Len: int64(e.PayloadLen)}}
		switch {
		case e.Type == icmpUnreachable && int(e.Code) < len(unreachableCodes):
			ic.Code = unreachableCodes[e.Code]
		case e.Code != 0:
			ic.Code = fmt.Sprintf("code_%d", e.Code)
		}
		if e.Type == icmpUnreachable && e.Code == icmpFragNeeded {
			mtu := int64(e.MTU)
			ic.MTU = &mtu
		}
		b.closeWrite()
		b.emit(e.Time, &parser.Packet{Dir: parser.Inbound, ICMP: ic})
		if b.nextICMP == b.acceptICMP {
			b.comment("Accepted after the ICMP error: one before accept ends a Fast Open child (an accepted one only notes a soft error).")
			b.accept(e.Time)
		}
	}
}

// accept emits the accept of the connection (fd 4), with TCP_NODELAY when
// the application had set it.
func (b *builder) accept(at time.Time) {
	b.fd, b.established = 4, true
	b.call(at, "accept", 4, num(b.listenFD), any3(), any3())
	b.noDelayCall(at, 4)
}

// killingICMP returns the index in f.ICMP of the last ICMP error to the
// local side before the segment it answers with a bare RST (resetACK), or
// -1: that error ended the connection in its handshake.
func (b *builder) killingICMP() int {
	if b.resetACK < 0 {
		return -1
	}
	last := -1
	for i := range b.f.ICMP {
		if e := &b.f.ICMP[i]; e.To == b.local && e.Index < b.f.Packets.At(b.resetACK).Index() {
			last = i
		}
	}
	return last
}

// resetACKAt returns the index of the remote's first segment after its
// SYN that the local side answers with a bare RST (no ACK flag) before it
// sent anything else, or -1. The kernel sends a bare RST for a segment
// with an ACK that matches no socket (tcp_v4_send_reset): the handshake
// never completed, as when an ICMP error dropped the request.
func resetACKAt(f *capture.Flow, local capture.Side) int {
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From == local || p.Flags.Has(tcpwire.FlagSYN) {
			continue
		}
		for j := i + 1; j < f.Packets.Len(); j++ {
			if q := f.Packets.At(j); q.From == local {
				if q.Flags&(tcpwire.FlagRST|tcpwire.FlagACK) == tcpwire.FlagRST {
					return i
				}
				return -1
			}
		}
		return -1
	}
	return -1
}
