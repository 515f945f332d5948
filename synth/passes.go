package synth

import (
	"iter"
	"time"
)

// The passes over the finished event list (fillsEarly, acksBeforeProbe,
// acksAhead) are functions of the list: each moves some inbound packets
// earlier than captured, where a replay's timers would otherwise fire
// first.

// shifter walks an event list for a pass that moves events earlier: the
// events after a moved one keep their timing relative to it.
type shifter struct {
	evs   []*event
	shift time.Duration // how far the events so far moved earlier
}

// packets yields the TCP packets of the list with their index, after
// moving each event (packet or not) by the shift so far.
func (s *shifter) packets() iter.Seq2[int, *pktNode] {
	return func(yield func(int, *pktNode) bool) {
		for i, e := range s.evs {
			e.ns -= int64(s.shift)
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

// moveEarlier moves event i to time to, or to the event before it if that
// is later, and adds how far it moved (nothing if to is not earlier) to
// the shift of the events after it.
func (s *shifter) moveEarlier(i int, to time.Time) {
	e := s.evs[i]
	if prev := s.evs[i-1].at(); to.Before(prev) {
		to = prev
	}
	if d := e.at().Sub(to); d > 0 {
		e.setAt(to)
		s.shift += d
	}
}
