package replay

import "slices"

// seqIndex finds, among transmissions logged in the order they were sent,
// those that may touch a sequence range: each is listed under the 64 KiB
// blocks of sequence space it touches. An anchored line asks which
// transmission it answers every time the run looks ahead (several times
// per packet read), and a bulk sender's run logs thousands of them: a scan
// from the first made each question cost the whole transfer so far.
type seqIndex struct {
	blocks map[uint32][]int32 // block (seq >> seqBlockShift) -> indices, ascending
	wide   bool               // a transmission spans too many blocks: scan all
	out    []int32            // candidates' result, reused
}

const (
	seqBlockShift = 16
	seqBlockMask  = 1<<(32-seqBlockShift) - 1
	// seqIndexSpan is how many blocks a range may span before a scan of
	// every transmission is cheaper (a stray SACK block, a cumulative ACK
	// that moves megabytes at once).
	seqIndexSpan = 64
)

// blockSpan returns the first block r touches and how many more it does.
func blockSpan(r seqRange) (first, more uint32) {
	first = uint32(r.start) >> seqBlockShift
	last := uint32(r.end.Add(^uint32(0))) >> seqBlockShift
	return first, (last - first) & seqBlockMask
}

// add indexes transmission i, a non-empty range r.
func (x *seqIndex) add(i int, r seqRange) {
	first, more := blockSpan(r)
	if more > seqIndexSpan {
		x.wide = true
		return
	}
	if x.blocks == nil {
		x.blocks = make(map[uint32][]int32)
	}
	for k := uint32(0); k <= more; k++ {
		b := (first + k) & seqBlockMask
		x.blocks[b] = append(x.blocks[b], int32(i))
	}
}

// touching calls fn with the index of each of the first n transmissions
// that may touch one of ranges, in the order they were sent, until fn
// returns true: those listed under a block one of ranges touches (every
// one that overlaps them, and some that do not), or all n when x is nil or
// cannot say (a range, or a transmission, spans too many blocks).
func (x *seqIndex) touching(n int, ranges []seqRange, fn func(i int) bool) {
	if cand, ok := x.candidates(ranges); ok {
		for _, i := range cand {
			if int(i) < n && fn(int(i)) {
				return
			}
		}
		return
	}
	for i := range n {
		if fn(i) {
			return
		}
	}
}

// candidates returns, ascending and once each, the indices listed under a
// block one of ranges touches; false when x is nil or a range, or a
// transmission, spans too many blocks.
func (x *seqIndex) candidates(ranges []seqRange) ([]int32, bool) {
	if x == nil || x.wide {
		return nil, false
	}
	out := x.out[:0]
	for _, r := range ranges {
		if r.start == r.end {
			continue
		}
		first, more := blockSpan(r)
		if more > seqIndexSpan {
			return nil, false
		}
		for k := uint32(0); k <= more; k++ {
			out = append(out, x.blocks[(first+k)&seqBlockMask]...)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	x.out = out
	return out, true
}
