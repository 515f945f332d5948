package synth

import (
	"slices"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// seqSet is a set of sequence numbers that mostly grow, as the ends of a
// connection's writes do: those added in order (by their distance from
// the first added, mod 2^32) are kept in a sorted list, the others in a
// map. A bulk sender's synthesis asks, for each new segment, whether its
// end is one of its hundreds of thousands of writes' ends: a map of them
// all spent a tenth of the synthesis's time on cache misses, while the
// list answers at once for an end beyond its last.
type seqSet struct {
	base  tcpwire.Seq
	asc   []uint32                 // distances from base, increasing
	gone  map[tcpwire.Seq]struct{} // removed from asc, but not its last
	other map[tcpwire.Seq]struct{} // added out of order
}

// inAsc reports whether q is in the sorted list (removed or not).
func (s *seqSet) inAsc(q tcpwire.Seq) bool {
	n := len(s.asc)
	d := uint32(q - s.base)
	if n == 0 || d > s.asc[n-1] {
		return false
	}
	_, found := slices.BinarySearch(s.asc, d)
	return found
}

// has reports whether q is in the set.
func (s *seqSet) has(q tcpwire.Seq) bool {
	if s.inAsc(q) {
		_, removed := s.gone[q]
		return !removed
	}
	_, ok := s.other[q]
	return ok
}

// add puts q in the set.
func (s *seqSet) add(q tcpwire.Seq) {
	switch {
	case s.inAsc(q):
		delete(s.gone, q)
	case len(s.asc) == 0:
		if _, ok := s.other[q]; !ok {
			s.base = q
			s.asc = append(s.asc, 0)
		}
	case uint32(q-s.base) > s.asc[len(s.asc)-1]:
		if _, ok := s.other[q]; !ok {
			if len(s.asc) == cap(s.asc) {
				// Twice the room, not the quarter more append gives a
				// long list: its copies are garbage a bulk sender's
				// synthesis would make five times over.
				s.asc = slices.Grow(s.asc, len(s.asc))
			}
			s.asc = append(s.asc, uint32(q-s.base))
		}
	default:
		if s.other == nil {
			s.other = map[tcpwire.Seq]struct{}{}
		}
		s.other[q] = struct{}{}
	}
}

// remove takes q out of the set.
func (s *seqSet) remove(q tcpwire.Seq) {
	switch n := len(s.asc); {
	case !s.inAsc(q):
		delete(s.other, q)
	case uint32(q-s.base) == s.asc[n-1]:
		s.asc = s.asc[:n-1]
		delete(s.gone, q)
		// Removed entries now last go too, so that the last is present.
		for n = len(s.asc); n > 0; n-- {
			last := s.base.Add(s.asc[n-1])
			if _, removed := s.gone[last]; !removed {
				break
			}
			delete(s.gone, last)
		}
		s.asc = s.asc[:n]
	default:
		if s.gone == nil {
			s.gone = map[tcpwire.Seq]struct{}{}
		}
		s.gone[q] = struct{}{}
	}
}
