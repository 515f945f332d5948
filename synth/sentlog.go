package synth

import (
	"slices"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// sentLog is what the local side sent that occupies sequence space, in
// the order it was captured, indexed by 64 KiB blocks of sequence space:
// an inbound ACK looks up the transmissions of what it answers among the
// few segments that touch its blocks, not among every segment sent before
// (a bulk sender's capture has hundreds of thousands, and as many ACKs).
type sentLog struct {
	segs   []sentSeg
	blocks map[uint32][]int32 // block (seq >> blockShift) -> indices into segs, in order
	// again holds which transmission of its bytes segs[i] is (see nth),
	// when not the first: most segments are new data.
	again map[int32]int32
	// againTS holds the TS val of segs[i] when it sent its bytes again
	// and carried one (see filledBy).
	againTS map[int32]uint32
	// high is the end of the highest segment logged: a block that new
	// data enters again after 4 GiB starts its list afresh, the segments
	// of the lap before being other bytes.
	high    tcpwire.Seq
	highSet bool
}

// sentSeg is a local segment that occupies sequence space, as captured:
// 16 bytes, a bulk sender's capture has hundreds of thousands.
type sentSeg struct {
	start, end tcpwire.Seq
	ns         int64 // when it was sent (at), in nanoseconds since 1970
}

// nth is which transmission of its bytes segs[i] is: one more than the
// most times any of them was sent before (1: new data). The engine numbers
// the replayed kernel's the same way (replay's nthOf).
func (l *sentLog) nth(i int32) int32 {
	if n, ok := l.again[i]; ok {
		return n
	}
	return 1
}

// at is when the segment was sent.
func (s *sentSeg) at() time.Time { return time.Unix(0, s.ns).UTC() }

const (
	blockShift = 16
	blockMask  = 1<<(32-blockShift) - 1
)

// add logs a segment [start, end), non-empty, shorter than 2^31 bytes,
// and numbers its transmission.
func (l *sentLog) add(start, end tcpwire.Seq, at time.Time, tsVal uint32, hasTS bool) {
	if l.blocks == nil {
		l.blocks = make(map[uint32][]int32)
	}
	s, n := sentSeg{start, end, at.UnixNano()}, int32(1)
	if l.highSet && start.LessThan(l.high) {
		l.visit(start, end, func(i int32) {
			if u := &l.segs[i]; u.start.LessThan(end) && start.LessThan(u.end) {
				n = max(n, l.nth(i)+1)
			}
		})
	}
	i := int32(len(l.segs))
	l.segs = append(l.segs, s)
	if n > 1 {
		if l.again == nil {
			l.again = make(map[int32]int32)
		}
		l.again[i] = n
		if hasTS {
			if l.againTS == nil {
				l.againTS = make(map[int32]uint32)
			}
			l.againTS[i] = tsVal
		}
	}
	last := uint32(end.Add(^uint32(0))) >> blockShift
	for blk := uint32(start) >> blockShift; ; blk = (blk + 1) & blockMask {
		idx := l.blocks[blk]
		switch {
		case l.highSet && !tcpwire.Seq(blk<<blockShift).LessThan(l.high):
			idx = idx[:0]
		case idx == nil:
			// Room for a block of segments of 1448 bytes (45): grown
			// from one, its list was copied six times.
			idx = make([]int32, 0, 64)
		}
		l.blocks[blk] = append(idx, i)
		if blk == last {
			break
		}
	}
	if !l.highSet || l.high.LessThan(end) {
		l.high, l.highSet = end, true
	}
}

// visit calls fn with the index of each segment logged in a block that
// [start, end) touches, a segment that spans blocks once per block.
func (l *sentLog) visit(start, end tcpwire.Seq, fn func(int32)) {
	if end == start {
		return
	}
	first, last := uint32(start)>>blockShift, uint32(end.Add(^uint32(0)))>>blockShift
	if n := (last - first) & blockMask; int(n) >= len(l.blocks) {
		// A range wider than the blocks in use (a stray SACK block): the
		// blocks in use that fall in it.
		for blk, idx := range l.blocks {
			if (blk-first)&blockMask <= n {
				for _, i := range idx {
					fn(i)
				}
			}
		}
		return
	}
	for blk := first; ; blk = (blk + 1) & blockMask {
		for _, i := range l.blocks[blk] {
			fn(i)
		}
		if blk == last {
			break
		}
	}
}

// touching appends to out the indices of the segments sent no later than
// t that overlap any of the ranges, in the order they were sent.
func (l *sentLog) touching(out []int32, ranges spans, t time.Time) []int32 {
	for _, r := range ranges {
		l.visit(r.start, r.end, func(i int32) {
			if s := &l.segs[i]; s.ns <= t.UnixNano() && ranges.overlap(s.start, s.end) {
				out = append(out, i)
			}
		})
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// filledBy returns which transmission of the bytes a cumulative ACK newly
// acknowledges filled the peer's hole, n being the most times any of them
// was sent before it and log (in send order) their transmissions: the
// latest whose first segment's TS val is not after ecr, the ACK's TS ecr.
// A receiver echoes the TS val of the segment that moved its cumulative
// ACK (RFC 7323, 4.3; Linux's tcp_replace_ts_recent), so an ecr older
// than a retransmission shows that an earlier transmission, held back by
// the path, got there first (as RFC 3522 reads it): the ACK answers that
// one, not the retransmission it may follow by less than a round trip.
func (l *sentLog) filledBy(log []int32, n int, ecr uint32) int {
	for ; n > 1; n-- {
		first := int32(-1)
		for _, i := range log {
			if int(l.nth(i)) == n {
				first = i
				break
			}
		}
		if first < 0 {
			return n
		}
		ts, ok := l.againTS[first]
		if !ok || int32(ecr-ts) >= 0 {
			return n
		}
	}
	return n
}
