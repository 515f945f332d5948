package synth

import (
	"iter"
	"time"
)

// The passes over the event list (fillsEarly, acksBeforeProbe,
// acksAhead, writesBeforeBacklog) are functions of the list: each moves
// some events earlier than captured, inbound packets where a replay's
// timers would otherwise fire first, writes where the captured kernel
// had their data queued (writesBeforeBacklog). Each is a state that takes the list in steps (see streamer): a
// step goes over events from where the last one stopped, and an event it
// went over is done with, whatever comes after it, except that a step
// reads the event before its first again (moveEarlier), which a later pass
// must not have changed by then.

// shifter walks an event list for a pass that moves events earlier: the
// events after a moved one keep their timing relative to it, and an
// anchored one its delay after what it answers.
type shifter struct {
	shift time.Duration // how far the events so far moved earlier
}

// packets yields the TCP packets of evs[from:to] with their index, after
// moving each event (packet or not) by the shift so far.
func (s *shifter) packets(evs []*event, from, to int) iter.Seq2[int, *pktNode] {
	return func(yield func(int, *pktNode) bool) {
		for i := from; i < to; i++ {
			e := evs[i]
			e.ns -= int64(s.shift)
			if e.anchored {
				// An anchored packet's time counts from the transmission it
				// answers, which the shift moved as far (or which a replay
				// sends when it does): its delay after it stays as captured.
				e.anchorNs -= int64(s.shift)
			}
			p, ok := e.action.(*pktNode)
			if !ok {
				continue
			}
			if !yield(i, p) {
				return
			}
		}
	}
}

// moveEarlier moves event i of evs to time to, or to the event before it
// if that is later, and adds how far it moved (nothing if to is not
// earlier) to the shift of the events after it.
func (s *shifter) moveEarlier(evs []*event, i int, to time.Time) {
	e := evs[i]
	if prev := evs[i-1].at(); to.Before(prev) {
		to = prev
	}
	if d := e.at().Sub(to); d > 0 {
		e.setAt(to)
		s.shift += d
	}
}
