package synth

import (
	"math/rand/v2"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// TestSeqSet checks seqSet against a map on random operations: mostly
// growing values, as writes' ends, with some behind, repeated, removed,
// and across the wrap.
func TestSeqSet(t *testing.T) {
	for _, start := range []tcpwire.Seq{1000, 1<<32 - 5000} {
		rng := rand.New(rand.NewPCG(1, uint64(start)))
		var s seqSet
		want := map[tcpwire.Seq]bool{}
		next := start
		var added []tcpwire.Seq
		for i := range 20000 {
			var q tcpwire.Seq
			switch r := rng.IntN(10); {
			case r < 5 || len(added) == 0:
				next = next.Add(uint32(rng.IntN(3000)))
				q = next
			case r < 8:
				q = added[len(added)-1-rng.IntN(min(len(added), 20))]
			default:
				q = next.Add(uint32(rng.IntN(20000))) - 10000
			}
			if rng.IntN(3) == 0 {
				s.remove(q)
				delete(want, q)
			} else {
				s.add(q)
				want[q] = true
				added = append(added, q)
			}
			for _, c := range []tcpwire.Seq{q, q + 1, q - 1, next, added[rng.IntN(len(added))]} {
				if s.has(c) != want[c] {
					t.Fatalf("start %d, step %d: has(%d) = %v, want %v", start, i, c, s.has(c), want[c])
				}
			}
		}
	}
}
