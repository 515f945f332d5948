package replay

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// TestSeqIndexAgrees checks the indexed lookups against the scans they
// replace, on transfers with retransmissions, segments across 64 KiB
// blocks and the sequence space's wrap.
func TestSeqIndexAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, isn := range []uint32{0, 1 << 20, 0xffffffff - 300000} {
		var e engine
		next := tcpwire.Seq(isn)
		var high seqHigh
		for k := 0; k < 3000; k++ {
			var r seqRange
			if k > 10 && rng.IntN(8) == 0 {
				// A retransmission of some earlier bytes, cut otherwise.
				back := uint32(rng.IntN(200000) + 1)
				start := next.Add(-back)
				r = seqRange{start, start.Add(uint32(rng.IntN(3000) + 1))}
			} else {
				n := uint32(1448 * (1 + rng.IntN(44)))
				r = seqRange{next, next.Add(n)}
				next = next.Add(n)
			}
			want := nthOf(e.sent, transmissionOf, r, &high, nil)
			e.noteTransmission(&tcpwire.TCPHeader{Seq: r.start, Flags: tcpwire.FlagACK}, int(r.end.Diff(r.start)), time.Unix(0, int64(k)))
			if got := e.sent[len(e.sent)-1].n; got != want {
				t.Fatalf("isn %d, transmission %d %v: nth %d, scan says %d", isn, k, r, got, want)
			}
		}
		for q := 0; q < 2000; q++ {
			var ranges []seqRange
			for b := 0; b < 1+rng.IntN(3); b++ {
				start := next.Add(-uint32(rng.IntN(400000) + 1))
				ranges = append(ranges, seqRange{start, start.Add(uint32(rng.IntN(20000) + 1))})
			}
			if q%50 == 0 {
				// A cumulative ACK that moves megabytes: the scan.
				ranges = []seqRange{{tcpwire.Seq(isn), next}}
			}
			n := 1 + rng.IntN(3)
			wi, wok := anchorIn(e.sent, transmissionOf, ranges, n, nil)
			gi, gok := anchorIn(e.sent, transmissionOf, ranges, n, &e.sentIdx)
			if wi != gi || wok != gok {
				t.Fatalf("isn %d, ranges %v, n %d: indexed %d %v, scan %d %v", isn, ranges, n, gi, gok, wi, wok)
			}
		}
	}
}

// BenchmarkAnchorSent asks which transmission an ACK near the end of a
// 4 MiB transfer (2,900 segments, some resent) answers: through the index
// and by the scan it replaced, in one benchmark so that the ratio shows.
func BenchmarkAnchorSent(b *testing.B) {
	var e engine
	next := tcpwire.Seq(1)
	for k := 0; k < 2900; k++ {
		r := seqRange{next, next.Add(1448)}
		if k%100 == 99 {
			r = seqRange{next - 100*1448, next - 99*1448}
		} else {
			next = r.end
		}
		e.noteTransmission(&tcpwire.TCPHeader{Seq: r.start, Flags: tcpwire.FlagACK}, int(r.end.Diff(r.start)), time.Unix(0, int64(k)))
	}
	ranges := []seqRange{{next - 20*1448, next - 19*1448}}
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			anchorIn(e.sent, transmissionOf, ranges, 1, &e.sentIdx)
		}
	})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			anchorIn(e.sent, transmissionOf, ranges, 1, nil)
		}
	})
}
