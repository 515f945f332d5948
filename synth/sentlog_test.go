package synth

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// TestSentLog checks the indexed lookup and the numbering of
// transmissions against a scan of every segment, on segments that
// retransmit, overlap, span blocks and wrap around the sequence space.
func TestSentLog(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l sentLog
	var all []sentSeg
	var nth []int32
	t0 := time.Unix(1700000000, 0)
	next := tcpwire.Seq(1<<32 - 300000)
	for i := range 20000 {
		start := next
		if i > 0 && rng.IntN(10) == 0 { // a retransmission of something recent
			start = next.Add(^uint32(rng.IntN(200000)))
		}
		end := start.Add(uint32(1 + rng.IntN(70000)))
		at := t0.Add(time.Duration(i) * time.Microsecond)
		l.add(start, end, at, 0, false)
		var wantN int32 = 1
		for j, s := range all {
			if start.LessThan(next) && s.start.LessThan(end) && start.LessThan(s.end) {
				wantN = max(wantN, nth[j]+1)
			}
		}
		all, nth = append(all, sentSeg{start, end, at.UnixNano()}), append(nth, wantN)
		if got := l.nth(int32(i)); got != wantN {
			t.Fatalf("segment %d [%d, %d): transmission %d, want %d", i, start, end, got, wantN)
		}
		if end.Diff(next) > 0 {
			next = end
		}
		var ranges spans
		for range 1 + rng.IntN(3) {
			x := next.Add(^uint32(rng.IntN(300000)))
			ranges = append(ranges, span{x, x.Add(uint32(1 + rng.IntN(100000)))})
		}
		when := at.Add(-time.Duration(rng.IntN(50)) * time.Microsecond)
		var want []int32
		for j, s := range all {
			if ranges.overlap(s.start, s.end) && !when.Before(s.at()) {
				want = append(want, int32(j))
			}
		}
		if got := l.touching(nil, ranges, when); !slices.Equal(got, want) {
			t.Fatalf("segment %d: %v at %v: segments %v, want %v", i, ranges, when, got, want)
		}
	}
}

// TestSentLogLap: after 4 GiB of data the same sequence numbers are other
// bytes; the segments of the lap before neither count as transmissions of
// them nor answer an ACK of them.
func TestSentLogLap(t *testing.T) {
	var l sentLog
	t0 := time.Unix(1700000000, 0)
	const seg = 1 << 20
	var at time.Time
	for i := range 1<<(32-20) + 2 {
		at = t0.Add(time.Duration(i) * time.Millisecond)
		start := tcpwire.Seq(uint32(i) << 20)
		l.add(start, start.Add(seg), at, 0, false)
	}
	last := len(l.segs) - 1
	if n := l.nth(int32(last)); n != 1 {
		t.Errorf("new data in the second lap numbered transmission %d, want 1", n)
	}
	got := l.touching(nil, spans{{tcpwire.Seq(seg + 10), tcpwire.Seq(seg + 20)}}, at)
	if !slices.Equal(got, []int32{int32(last)}) {
		t.Errorf("an ACK of the second lap's bytes answers segments %v, want [%d]", got, last)
	}
	if got := l.blocks[0]; !slices.Equal(got, []int32{int32(last - 1)}) {
		t.Errorf("block 0 holds segments %v, want only the second lap's first, %d", got, last-1)
	}
}
