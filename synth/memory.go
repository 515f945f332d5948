package synth

// This file holds the memory the nodes of a script come from (slabs and
// reused slices), so that a capture of millions of packets does not
// allocate each node on its own.

import "github.com/pcap2pkt/pcap2pkt/parser"

// nodes is the memory a script and its builder take their nodes and
// lists from: a flow has a few nodes per packet, a capture millions.
// Stream reuses it from one flow to the next (reset) once its caller is
// done with the script.
type nodes struct {
	evSlab      slab[event]
	pkSlab      slab[pktNode]
	tsSlab      slab[tsNodes]
	callSlab    slab[callNodes]
	commentSlab slab[parser.Comment]
	noteSlab    slab[[]string] // the comment lists of events

	events   []*event // the builder's event list
	evs      []parser.Event
	pks      []parser.Packet // the packet lines of the events rendered
	tcps     []parser.TCP    // and their TCP headers
	evPtrs   []*parser.Event
	comments []*parser.Comment
	inFlight []sentData // acksBeforeProbe's working list
	// calls are the nodes of the reads and writes made so far, each
	// shared by the calls that look the same (see rwCall).
	calls map[rwKey]*callNodes
}

// reset makes the slabs hand out their memory again, zeroed, and the
// lists too: every node and list handed out before is dead.
func (n *nodes) reset() {
	n.evSlab.reset()
	n.pkSlab.reset()
	n.tsSlab.reset()
	n.callSlab.reset()
	n.commentSlab.reset()
	n.noteSlab.reset()
	clear(n.calls)
	drop(&n.events)
	drop(&n.evs)
	drop(&n.pks)
	drop(&n.tcps)
	drop(&n.evPtrs)
	drop(&n.comments)
}

// keepNoMore makes the slabs keep no more chunks until reset (see
// streamer).
func (n *nodes) keepNoMore() {
	n.evSlab.full, n.pkSlab.full, n.tsSlab.full, n.callSlab.full, n.noteSlab.full = true, true, true, true, true
}

// reuse returns n zeroed values from *buf, which it replaces by a larger
// list when too small.
func reuse[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	l := (*buf)[:n]
	clear(l)
	return l
}

// drop lets a list that outgrew maxKept go back to the garbage collector.
func drop[T any](buf *[]T) {
	if cap(*buf) > maxKept {
		*buf = nil
	}
}

// slab hands out zeroed values from chunks: one allocation per chunk
// instead of one per value. The chunks are sized from how many values the
// flow is expected to need (want), or else start small and grow.
type slab[T any] struct {
	buf    []T   // the chunk values come from
	chunks [][]T // the chunks reset hands out again (up to maxKept values), in order
	next   int   // chunks[next] is the chunk after buf
	n      int   // values handed out since reset
	kept   int   // the values the chunks hold
	want   int
	// full says to keep no more chunks until reset: a streamed script's
	// nodes go to the garbage collector as its events are printed.
	full bool
	// free holds values given back (put), which new hands out first, and
	// latest the value new handed out last, for pop.
	free   []*T
	latest *T
}

// maxFirstChunk bounds a chunk sized from want: a guess from a long flow's
// packets may be far too many.
const maxFirstChunk = 1024

// maxKept bounds the values whose chunks a slab keeps at reset: one huge
// flow's memory goes back to the garbage collector.
const maxKept = 1 << 15

func (s *slab[T]) new() *T {
	s.n++
	if n := len(s.free); n > 0 {
		v := s.free[n-1]
		s.free = s.free[:n-1]
		var zero T
		*v = zero
		s.latest = v
		return v
	}
	if len(s.buf) == cap(s.buf) {
		s.grow()
	}
	s.buf = s.buf[:len(s.buf)+1]
	s.latest = &s.buf[len(s.buf)-1]
	return s.latest
}

// put gives v back, for new to hand out again: nothing may use it after.
func (s *slab[T]) put(v *T) { s.free = append(s.free, v) }

func (s *slab[T]) grow() {
	if s.next < len(s.chunks) {
		s.buf = s.chunks[s.next][:0]
		s.next++
		return
	}
	n := min(max(2*cap(s.buf), 8), 256)
	if s.want > s.n {
		n = max(n, min(s.want-s.n, maxFirstChunk))
	}
	s.buf = make([]T, 0, n)
	if s.full || s.kept+n > maxKept {
		// Not kept for reset: the nodes of a long flow go to the garbage
		// collector with the script's events (as they are printed, for a
		// streamed one).
		return
	}
	s.kept += n
	s.chunks = append(s.chunks, s.buf)
	s.next++
}

// last returns the value new handed out last, if it is not given back
// (pop), else nil.
func (s *slab[T]) last() *T { return s.latest }

// pop gives back the value last returns, zeroed, for new to hand out again.
func (s *slab[T]) pop() {
	v := s.latest
	var zero T
	*v = zero
	if len(s.buf) > 0 && v == &s.buf[len(s.buf)-1] {
		s.buf = s.buf[:len(s.buf)-1]
	} else {
		s.free = append(s.free, v)
	}
	s.latest = nil
	s.n--
}

// reset zeroes the values handed out and hands them out again.
func (s *slab[T]) reset() {
	for i, c := range s.chunks {
		if i < s.next {
			clear(c[:cap(c)])
		}
	}
	s.buf, s.next, s.n, s.full = nil, 0, 0, false
	clear(s.free)
	s.free, s.latest = s.free[:0], nil
}
