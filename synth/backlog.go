package synth

import (
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// writesBeforeBacklog moves the writes of new data that a kernel sent
// after a run of inbound ACKs that showed a loss, and before its
// retransmission of the hole the run's last ACK left, to before the run.
// A kernel handles an ACK as it comes unless the application holds the
// socket (a write copying its data): then the ACK waits in the socket's
// backlog, and the kernel handles the ACKs there when the write lets the
// socket go, with the written data queued. So it sends new data on the
// ACKs that open the window and enters recovery on the last one, its
// retransmission after the new data, with much in flight. The capture
// shows this as a run of ACKs that got no answer, then the new data, then
// the retransmission, all within microseconds. Written at their
// segments' times, after the run, the writes find a replayed kernel that
// handled the ACKs as they came with nothing to send: it went into
// recovery with little in flight, retransmitted first, and proportional
// rate reduction then held the new data the captured kernel sent at once
// for a round trip (get_1m_delay10_loss1_cubic's server, traffic3: 16 ms
// late at line 93). Written before the run, the data waits for the
// window the ACKs open, as in the capture.
func writesBeforeBacklog(evs []*event) {
	var s backlogWrites
	s.step(evs, 0, len(evs), true)
}

// backlogWrites is writesBeforeBacklog's state between its steps (none:
// each step starts at a run of ACKs, or past one).
type backlogWrites struct{}

// backlogRunMin is the fewest ACKs of a run whose writes move: two that
// came without a segment of the kernel's between them, the last showing
// a loss (one ACK followed by the kernel's data is an ordinary ACK
// clock).
const backlogRunMin = 2

// step goes over evs[i:limit], reading and moving no event at or past
// limit, and returns where the next step starts. final says that limit
// ends the list.
func (s *backlogWrites) step(evs []*event, i, limit int, final bool) int {
	for i < limit {
		if !inboundACK(evs[i]) {
			i++
			continue
		}
		j := i
		for j < limit && inboundACK(evs[j]) {
			j++
		}
		if j == limit && !final {
			return i // the run may go on
		}
		last := evs[j-1]
		k, writes := j, 0
		for ; k < limit && time.Duration(evs[k].ns-last.ns).Microseconds() <= aheadLimit; k++ {
			if writeLen(evs[k]) > 0 {
				writes++
			} else if !freshOut(evs[k]) {
				break
			}
		}
		if k == limit && !final {
			return i // the retransmission may be next
		}
		if j-i >= backlogRunMin && writes > 0 && k < limit &&
			time.Duration(evs[k].ns-last.ns).Microseconds() <= aheadLimit && retransmitsHole(evs[k], last) {
			moveWritesBefore(evs, i, k)
		}
		i = j
	}
	return i
}

// moveWritesBefore moves the writes among evs[i:k] to before evs[i], in
// their order, at its time, when the captured peer's ACKs began to come;
// the other events keep theirs.
func moveWritesBefore(evs []*event, i, k int) {
	at := evs[i].ns
	moved := make([]*event, 0, k-i)
	rest := make([]*event, 0, k-i)
	for _, e := range evs[i:k] {
		if writeLen(e) > 0 {
			e.ns = at
			moved = append(moved, e)
		} else {
			rest = append(rest, e)
		}
	}
	n := copy(evs[i:], moved)
	copy(evs[i+n:], rest)
}

// inboundACK reports whether e is an inbound pure ACK line.
func inboundACK(e *event) bool {
	p, ok := e.action.(*pktNode)
	return ok && p.Dir == parser.Inbound && p.TCP.Len == 0 && p.TCP.Flags == "." && p.TCP.Ack != nil
}

// freshOut reports whether e expects new data from the kernel.
func freshOut(e *event) bool {
	p, ok := e.action.(*pktNode)
	return ok && p.Dir == parser.Outbound && e.fresh && !e.timer && p.TCP.Len > 0
}

// retransmitsHole reports whether e is the kernel's retransmission of the
// data at the cumulative ACK of the inbound ACK a, which SACKs data above
// it: the hole a showed.
func retransmitsHole(e, a *event) bool {
	p, ok := e.action.(*pktNode)
	if !ok || p.Dir != parser.Outbound || e.fresh || p.TCP.Len == 0 {
		return false
	}
	in := a.action.(*pktNode)
	if p.TCP.Seq != *in.TCP.Ack || in.TCP.Options == nil {
		return false
	}
	for _, o := range in.TCP.Options.List {
		if o.Kind == parser.OptSACK {
			for _, blk := range o.SACK {
				if tcpwire.Seq(p.TCP.Seq).LessThan(tcpwire.Seq(blk.Left)) {
					return true
				}
			}
		}
	}
	return false
}
