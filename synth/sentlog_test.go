package synth

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// TestSentLog checks the indexed lookup against a scan of every segment,
// on segments that retransmit, overlap, span blocks and wrap around the
// sequence space.
func TestSentLog(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l sentLog
	var all []sentSeg
	t0 := time.Unix(1700000000, 0)
	next := tcpwire.Seq(1<<32 - 300000)
	for i := range 20000 {
		start := next
		if rng.IntN(10) == 0 { // a retransmission of something recent
			start = next.Add(^uint32(rng.IntN(200000)))
		}
		end := start.Add(uint32(1 + rng.IntN(70000)))
		at := t0.Add(time.Duration(i) * time.Microsecond)
		l.add(start, end, at)
		all = append(all, sentSeg{start, end, at})
		if end.Diff(next) > 0 {
			next = end
		}
		x := next.Add(^uint32(rng.IntN(300000)))
		when := at.Add(-time.Duration(rng.IntN(50)) * time.Microsecond)
		var wantAt time.Time
		want := 0
		for _, s := range all {
			if s.start.LessThanEq(x) && x.LessThan(s.end) && !when.Before(s.at) {
				wantAt, want = s.at, want+1
			}
		}
		if gotAt, got := l.latest(x, when); got != want || !gotAt.Equal(wantAt) {
			t.Fatalf("segment %d: byte %d at %v: %d transmissions, last %v; want %d, %v", i, x, when, got, gotAt, want, wantAt)
		}
	}
}
