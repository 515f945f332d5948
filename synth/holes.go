package synth

import (
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// fillsEarly moves inbound segments that fill a hole the remote had
// reported with SACK closer to that report, and everything after them
// with them, when no retransmission came between: in the capture the
// missing segment arrived (reordered) before the kernel's RACK reordering
// timer fired, and a replay must keep that order. The timer fires a
// quarter of the minimum RTT after the SACK at the earliest, rounded up to
// a jiffy (4 ms at HZ=250), so a capture whose filling segment came a few
// milliseconds after the SACK shows only that the captured timer's jiffy
// had not come; a replay's jiffies fall elsewhere, and its timer then
// retransmits first (one replay in three, measured). The filling segment
// is injected at most an eighth of the handshake's RTT after the SACK,
// inside the window in which no RACK timer can fire; the rest of the
// script keeps its timing relative to it.
func fillsEarly(evs []*event) {
	var s holeFills
	s.step(evs, 0, len(evs), true)
}

// holeFills is fillsEarly's state between its steps.
type holeFills struct {
	started bool // the handshake's round trip is known (or known to be unknown)
	off     bool // no round trip: the pass moves nothing
	rtt     time.Duration
	sh      shifter
	holeAt  time.Time
	// holeStart is where the hole the remote reported begins.
	holeStart uint32
	hole      bool
	resent    map[uint32]bool // first bytes of segments the kernel sent again
}

// step goes over evs[from:to] (evs holds every event of the list from its
// first, until the round trip is known), and returns where the next step
// starts; final says that evs ends the list.
func (s *holeFills) step(evs []*event, from, to int, final bool) int {
	if !s.started {
		rtt, ok, known := handshakeRTT(evs[:to])
		if !known && !final {
			return from
		}
		s.started, s.off, s.rtt = true, !ok, rtt
	}
	if s.off {
		return to
	}
	for i, p := range s.sh.packets(evs, from, to) {
		e := evs[i]
		if p.Dir == parser.Outbound {
			if p.TCP.Len > 0 && !e.fresh {
				// The kernel retransmitted: no race left to keep, and an
				// ACK that covers this segment may answer the copy.
				s.hole = false
				if s.resent == nil {
					s.resent = map[uint32]bool{}
				}
				s.resent[p.TCP.Seq] = true
			}
			continue
		}
		if p.TCP.Ack == nil || strings.ContainsAny(p.TCP.Flags, "SR") {
			continue
		}
		ack := *p.TCP.Ack
		if s.hole && tcpwire.Seq(s.holeStart).LessThan(tcpwire.Seq(ack)) {
			s.hole = false
			s.sh.moveEarlier(evs, i, s.holeAt.Add(min(e.at().Sub(s.holeAt), s.rtt/8)))
			continue
		}
		if !s.hole && !s.resent[ack] && sacksAbove(p, ack) {
			s.hole, s.holeAt, s.holeStart = true, e.at(), ack
		}
	}
	return to
}

// sacksAbove reports whether inbound packet p selectively acknowledges
// data above ack (so something at ack is missing).
func sacksAbove(p *pktNode, ack uint32) bool {
	if p.TCP.Options == nil {
		return false
	}
	for _, o := range p.TCP.Options.List {
		if o.Kind != parser.OptSACK {
			continue
		}
		for _, blk := range o.SACK {
			if tcpwire.Seq(ack).LessThan(tcpwire.Seq(blk.Left)) {
				return true
			}
		}
	}
	return false
}

// handshakeRTT returns the round trip of the handshake: from the local
// side's SYN or SYN-ACK to the inbound packet after it. known says that
// events after evs cannot change the answer.
func handshakeRTT(evs []*event) (rtt time.Duration, ok, known bool) {
	for i, e := range evs {
		p, ok := e.action.(*pktNode)
		if !ok || p.Dir != parser.Outbound || !strings.Contains(p.TCP.Flags, "S") {
			continue
		}
		for _, f := range evs[i+1:] {
			if inboundLine(f.action) {
				if d := f.at().Sub(e.at()); d > 0 {
					return d, true, true
				}
				return 0, false, true
			}
		}
		return 0, false, false
	}
	return 0, false, false
}
