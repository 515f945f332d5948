package synth

import (
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// aheadLimit bounds how long after an outbound data segment an inbound ACK
// may have been captured and still be injected ahead of it.
const aheadLimit = 1000 // µs

// acksAhead moves inbound pure ACKs captured within aheadLimit after an
// expectation of new outbound data ahead of it, when they acknowledge
// only data sent before it. A script is sequential: the replay injects
// nothing until the kernel has sent all the data an expectation waits
// for. The captured peer's ACKs did not wait: they answered data sent a
// round trip before. When the replayed sender's congestion window is a
// segment or two smaller than the captured one's (its bandwidth estimate
// follows timing, a few percent off), it sends the rest of the write only
// when the next ACK comes, and a script that holds that ACK back behind
// the expectation stalls until a loss-probe timer fires, 20 ms or more
// later. Injected first, the ACK opens the window as it did in the
// capture; a kernel that sends the data before it still matches, early by
// less than aheadLimit, well within the tolerance.
func acksAhead(evs []*event) {
	var s aheadACKs
	s.step(evs, 0, len(evs), true)
}

// aheadACKs is acksAhead's state between its steps.
type aheadACKs struct {
	lastTS uint32 // TS val of the latest outbound packet before the step's next event
	hasTS  bool
}

// step goes over evs[i:limit], reading and moving no event at or past
// limit, and returns where the next step starts: events before it are
// done with. final says that limit ends the list.
func (s *aheadACKs) step(evs []*event, i, limit int, final bool) int {
	for ; i+1 < limit; i++ {
		e := evs[i]
		out, ok := e.action.(*pktNode)
		if !ok || out.Dir != parser.Outbound {
			continue
		}
		if e.fresh && !e.timer && !strings.ContainsAny(out.TCP.Flags, "SRF") && out.TCP.Len > 0 {
			orig, j := e.ns, i
			if !final && !pastAhead(evs[i+1:limit], orig) {
				// The ACKs that may go ahead of e are not all there yet.
				return i
			}
			for ; j+1 < limit && time.Duration(evs[j+1].ns-orig).Microseconds() <= aheadLimit &&
				ackBefore(evs[j+1].action, out.TCP.Seq, s.lastTS, s.hasTS); j++ {
				evs[j], evs[j+1] = evs[j+1], evs[j]
				e.ns = max(e.ns, evs[j].ns)
				e.react = true
			}
			i = j // e's place now; the ACKs before it are done
		}
		if v, ok := tsVal(out); ok {
			s.lastTS, s.hasTS = v, true
		}
	}
	return i
}

// pastAhead reports whether an event of evs comes more than aheadLimit
// after orig: acksAhead moves nothing past it.
func pastAhead(evs []*event, orig int64) bool {
	for _, f := range evs {
		if time.Duration(f.ns-orig).Microseconds() > aheadLimit {
			return true
		}
	}
	return false
}

// ackBefore reports whether a is an inbound pure ACK that acknowledges
// and selectively acknowledges nothing at or past seq, and echoes a
// timestamp no later than ts (the latest the kernel had sent).
func ackBefore(a any, seq, ts uint32, hasTS bool) bool {
	in, ok := a.(*pktNode)
	if !ok || in.Dir != parser.Inbound || in.TCP.Len != 0 || in.TCP.Flags != "." || in.TCP.Ack == nil {
		return false
	}
	if tcpwire.Seq(seq).LessThan(tcpwire.Seq(*in.TCP.Ack)) {
		return false
	}
	if in.TCP.Options == nil {
		return true
	}
	for _, o := range in.TCP.Options.List {
		switch o.Kind {
		case parser.OptSACK:
			for _, blk := range o.SACK {
				if tcpwire.Seq(seq).LessThan(tcpwire.Seq(blk.Right)) {
					return false
				}
			}
		case parser.OptTimestamp:
			// TS values wrap as sequence numbers do.
			if !hasTS || tcpwire.Seq(ts).LessThan(tcpwire.Seq(o.TSEcr)) {
				return false
			}
		}
	}
	return true
}

// tsVal returns the TS val of packet p's timestamp option.
func tsVal(p *pktNode) (uint32, bool) {
	if p.TCP.Options == nil {
		return 0, false
	}
	for _, o := range p.TCP.Options.List {
		if o.Kind == parser.OptTimestamp {
			return o.TSVal, true
		}
	}
	return 0, false
}
