package replay

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

func TestReceiverView(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := func(s, e uint32, ms int) deliveredRange {
		return deliveredRange{seqRange{tcpwire.Seq(s), tcpwire.Seq(e)}, t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	tests := []struct {
		name   string
		in     []deliveredRange
		ack    uint32
		blocks []seqRange
	}{
		{"in order", []deliveredRange{d(0, 1, 0), d(1, 1001, 1), d(1001, 2001, 2)}, 2001, nil},
		{"a hole", []deliveredRange{d(0, 1, 0), d(1, 1001, 1), d(2001, 3001, 3), d(3001, 4001, 4)}, 1001,
			[]seqRange{{2001, 4001}}},
		{"two holes, the latest block first", []deliveredRange{d(0, 1, 0), d(5001, 6001, 5), d(2001, 3001, 6)}, 1,
			[]seqRange{{2001, 3001}, {5001, 6001}}},
		{"the hole filled late", []deliveredRange{d(0, 1, 0), d(1001, 2001, 1), d(1, 1001, 9)}, 2001, nil},
	}
	for _, tc := range tests {
		ack, blocks := receiverView(0, tc.in, 3, nil)
		if uint32(ack) != tc.ack || !reflect.DeepEqual(blocks, tc.blocks) {
			t.Errorf("%s: ack %d blocks %v, want %d %v", tc.name, ack, blocks, tc.ack, tc.blocks)
		}
	}
}

// TestDeliveredView: the peer's view worked out from the merged deliveries
// is receiverView's over every delivery cut to what the line told, for
// deliveries in the order sent or not, told ranges that overlap, and
// prefixes that grow and shrink.
func TestDeliveredView(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	span := func(lo, hi uint32) seqRange {
		s := lo + uint32(rng.IntN(int(hi-lo)))
		return seqRange{tcpwire.Seq(s), tcpwire.Seq(s + 1 + uint32(rng.IntN(3000)))}
	}
	for round := range 400 {
		// Sequence numbers that wrap in some rounds.
		base := uint32(0)
		if round%4 == 3 {
			base = 1<<32 - 10000
		}
		e := &engine{}
		ms := 0
		for range 1 + rng.IntN(60) {
			r := span(0, 30000)
			r.start, r.end = r.start+tcpwire.Seq(base), r.end+tcpwire.Seq(base)
			if rng.IntN(5) == 0 {
				ms++ // several parts of a transmission share its time
			}
			ms += rng.IntN(3)
			at := ms
			if round%2 == 1 && rng.IntN(10) == 0 {
				at -= rng.IntN(5) // out of order
			}
			if n := len(e.deliv); n > 0 && t0.Add(time.Duration(at)*time.Millisecond).Before(e.deliv[n-1].at) {
				e.delivUnsorted = true
			}
			e.deliv = append(e.deliv, deliveredRange{r, t0.Add(time.Duration(at) * time.Millisecond)})
		}
		for range 8 {
			n := rng.IntN(len(e.deliv) + 1)
			told := []seqRange{{tcpwire.Seq(base), tcpwire.Seq(base + uint32(rng.IntN(20000)))}}
			for range rng.IntN(5) {
				r := span(0, 30000)
				told = append(told, seqRange{r.start + tcpwire.Seq(base), r.end + tcpwire.Seq(base)})
			}
			max := 3 + rng.IntN(2)
			// What the kernel was told: nothing, or some ranges.
			var known *peerState
			if rng.IntN(3) > 0 {
				known = &peerState{ack: tcpwire.Seq(base + uint32(rng.IntN(10000))), ackSet: rng.IntN(2) == 0}
				for range rng.IntN(6) {
					r := span(0, 30000)
					known.sacked = mergeRange(known.sacked, seqRange{r.start + tcpwire.Seq(base), r.end + tcpwire.Seq(base)})
				}
			}
			var got []deliveredRange
			for _, d := range e.deliv[:n] {
				for _, c := range told {
					if x := (seqRange{later(d.r.start, c.start), earlier(d.r.end, c.end)}); x.start.Diff(x.end) < 0 {
						got = append(got, deliveredRange{x, d.at})
					}
				}
			}
			wantAck, wantBlocks := receiverView(tcpwire.Seq(base), got, max, known)
			ack, blocks := e.deliveredView(tcpwire.Seq(base), n, told, max, known)
			if ack != wantAck || !reflect.DeepEqual(blocks, wantBlocks) {
				t.Fatalf("round %d, %d of %d deliveries %v, told %v: ack %d blocks %v, want %d %v",
					round, n, len(e.deliv), e.deliv[:n], told, ack, blocks, wantAck, wantBlocks)
			}
		}
	}
}

// BenchmarkPeerView: the peer's view of a 4 MiB transfer's 3000
// deliveries, one lost in a hundred, as an ACK late in it reports it:
// "walk" cuts every delivery to what the line told and hands them to
// receiverView (as asReceivedHaving did); "merged" is deliveredView, asked
// once per ACK as deliveries grow. The ratio of the two is the point
// (2026-12-07, this machine: 17-21 µs against 0.8-1.7 µs an ACK).
func BenchmarkPeerView(b *testing.B) {
	t0 := time.Unix(1000, 0)
	const n, seg = 3000, 1448
	e := &engine{deliv: []deliveredRange{{seqRange{0, 1}, t0}}} // the SYN
	var sacked []seqRange
	for i := range n {
		if i%100 == 50 {
			continue // lost: a hole below what follows
		}
		r := seqRange{tcpwire.Seq(1 + i*seg), tcpwire.Seq(1 + (i+1)*seg)}
		e.deliv = append(e.deliv, deliveredRange{r, t0.Add(time.Duration(i) * 10 * time.Microsecond)})
		if i > 2950 {
			sacked = append(sacked, r)
		}
	}
	told := append([]seqRange{{0, tcpwire.Seq(1 + 51*seg)}}, mergeRanges(sacked)...)
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			var got []deliveredRange
			for _, d := range e.deliv {
				for _, c := range told {
					if x := (seqRange{later(d.r.start, c.start), earlier(d.r.end, c.end)}); x.start.Diff(x.end) < 0 {
						got = append(got, deliveredRange{x, d.at})
					}
				}
			}
			receiverView(0, got, 3, nil)
		}
	})
	b.Run("merged", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			// Each ACK sees a delivery more, as in a replay (and the view
			// is worked out again from scratch once in a hundred).
			e.deliveredView(0, len(e.deliv)-100+i%100, told, 3, nil)
		}
	})
}

func TestWithSACK(t *testing.T) {
	ts := []byte{tcpwire.OptKindNOP, tcpwire.OptKindNOP, tcpwire.OptKindTimestamp, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	sack := func(blocks ...uint32) []byte {
		b := []byte{tcpwire.OptKindNOP, tcpwire.OptKindNOP, tcpwire.OptKindSACK, byte(2 + 4*len(blocks))}
		for _, v := range blocks {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b
	}
	tests := []struct {
		name   string
		in     []byte
		blocks []seqRange
		want   []byte
	}{
		{"a SACK option replaced", append(append([]byte(nil), ts...), sack(100, 200)...), []seqRange{{300, 400}}, append(append([]byte(nil), ts...), sack(300, 400)...)},
		{"added", ts, []seqRange{{300, 400}, {500, 600}}, append(append([]byte(nil), ts...), sack(300, 400, 500, 600)...)},
		{"removed", append(append([]byte(nil), ts...), sack(100, 200)...), nil, ts},
		{"none, none", ts, nil, ts},
	}
	for _, tc := range tests {
		if got := withSACK(tc.in, tc.blocks); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, got, tc.want)
		}
	}
}

// TestLostInCapture: the transmissions the captured peer did not get are
// the parts sent again that its ACKs, sent after it could have got them,
// showed in a hole below a SACK block until then.
func TestLostInCapture(t *testing.T) {
	const head = `--pcap2pkt=1
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 4000 <mss 1000,sackOK,nop,nop>
+0 > S. 0:0(0) ack 1 <...>
+0.010^ < . 1:1(0) ack 1 win 4000
`
	const hole = "+0 > P. 1:3001(3000) ack 1\n+0.010^ < . 1:1(0) ack 1001 win 4000 <nop,nop,sack 2001:3001>\n"
	tests := []struct {
		name, tail string
		want       []lostRange
	}{
		{"lost, then resent", hole + "+0 > . 1001:2001(1000) ack 1\n+0.010^2 < . 1:1(0) ack 3001 win 4000\n",
			[]lostRange{{1001, 2001, 1}}},
		// The peer acknowledges the hole with nothing sent again: it came
		// late (reordered), it was not lost.
		{"late, not lost", hole + "+0.002 < . 1:1(0) ack 3001 win 4000\n", nil},
		{"reported before it was resent", hole + "+0.002 < . 1:1(0) ack 3001 win 4000\n+0 > . 1001:2001(1000) ack 1\n", nil},
		// Resent, but the ACK of it echoes the first transmission's TS
		// val: the path held that back, and it filled the hole first.
		{"late, by its TS ecr", "+0 > P. 1:3001(3000) ack 1 <nop,nop,TS val 100 ecr 1>\n+0.010^ < . 1:1(0) ack 1001 win 4000 <nop,nop,TS val 2 ecr 100,nop,nop,sack 2001:3001>\n+0 > . 1001:2001(1000) ack 1 <nop,nop,TS val 110 ecr 2>\n+0.001^ < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 3 ecr 100>\n", nil},
		{"lost, by its TS ecr", "+0 > P. 1:3001(3000) ack 1 <nop,nop,TS val 100 ecr 1>\n+0.010^ < . 1:1(0) ack 1001 win 4000 <nop,nop,TS val 2 ecr 100,nop,nop,sack 2001:3001>\n+0 > . 1001:2001(1000) ack 1 <nop,nop,TS val 110 ecr 2>\n+0.010^2 < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 12 ecr 110>\n",
			[]lostRange{{1001, 2001, 1}}},
		// A tail sent again with nothing above it reported (a loss probe):
		// the first may have arrived.
		{"a tail resent", "+0 > P. 1:3001(3000) ack 1\n+0.010^ < . 1:1(0) ack 2001 win 4000\n+0 > P. 2001:3001(1000) ack 1\n+0.010^2 < . 1:1(0) ack 3001 win 4000\n", nil},
		// Part of a line SACKed, the rest sent again in pieces: only the
		// pieces sent again were lost.
		{"part of a line", "+0 > P. 1:4001(4000) ack 1\n+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 3001:4001>\n+0 > . 1:1001(1000) ack 1\n+0 > . 1001:2001(1000) ack 1\n+0.010^2 < . 1:1(0) ack 2001 win 4000 <nop,nop,sack 3001:4001>\n+0.010 < . 1:1(0) ack 4001 win 4000\n",
			[]lostRange{{1, 1001, 1}, {1001, 2001, 1}}},
		// The duplicate ACK after the retransmission left before the peer
		// could have got it: it does not show the retransmission lost.
		{"an ACK in flight", "+0 > P. 1:3001(3000) ack 1\n+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:3001>\n+0 > . 1:1001(1000) ack 1\n+0.001 < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:3001>\n+0.3 > . 1:1001(1000) ack 1\n+0.010^3 < . 1:1(0) ack 3001 win 4000\n",
			[]lostRange{{1, 1001, 1}}},
	}
	for _, tc := range tests {
		s, err := parser.ParseFile("t.pkt", []byte(head+tc.tail), nil)
		if err != nil {
			t.Fatal(err)
		}
		e := &engine{script: s, cfg: NewConfig()}
		if got := e.lostInCapture(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: lost %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCoverage: transmissions cut otherwise cover the same bytes; a
// retransmission, or a transmission missing, makes them differ.
func TestCoverage(t *testing.T) {
	tx := func(s, e uint32, n int) txLine { return txLine{tcpwire.Seq(s), tcpwire.Seq(e), n, 0} }
	captured := []txLine{tx(0, 1, 1), tx(1, 4001, 1), tx(1, 1001, 2), tx(4001, 6001, 1)}
	tests := []struct {
		name  string
		txs   []txLine
		count int // of captured
		equal bool
	}{
		{"cut otherwise", []txLine{tx(0, 1, 1), tx(1, 2001, 1), tx(2001, 4001, 1), tx(1, 1001, 2), tx(4001, 5001, 1), tx(5001, 6001, 1)}, 4, true},
		{"in another order", []txLine{tx(0, 1, 1), tx(1, 4001, 1), tx(4001, 6001, 1), tx(1, 1001, 2)}, 4, true},
		{"a retransmission more", []txLine{tx(0, 1, 1), tx(1, 4001, 1), tx(1, 1001, 2), tx(1001, 2001, 2)}, 3, false},
		{"one short", []txLine{tx(0, 1, 1), tx(1, 3001, 1)}, 2, false},
	}
	for _, tc := range tests {
		var a, b coverage
		got := coverUpTo(&a, tc.txs, len(tc.txs), txLineOf).equal(coverUpTo(&b, captured, tc.count, txLineOf))
		if got != tc.equal {
			t.Errorf("%s: equal %v, want %v", tc.name, got, tc.equal)
		}
	}
	// Read in steps, and again from fewer, it is as read at once.
	var c coverage
	coverUpTo(&c, captured, 2, txLineOf)
	coverUpTo(&c, captured, 4, txLineOf)
	var whole coverage
	if !c.equal(coverUpTo(&whole, captured, 4, txLineOf)) {
		t.Errorf("read in steps: %v, want %v", c.byN, whole.byN)
	}
	coverUpTo(&c, captured, 1, txLineOf)
	if got := c.byN[1]; !reflect.DeepEqual(got, []seqRange{{0, 1}}) || len(c.byN) != 1 {
		t.Errorf("read again from fewer: %v", c.byN)
	}
}

func TestNthOf(t *testing.T) {
	// New data, a retransmission cut otherwise than the first sending
	// (the second of its bytes), a third sending of part of it, new data.
	sends := []seqRange{{1, 1001}, {1001, 2001}, {1, 2001}, {501, 1001}, {2001, 3001}}
	want := []int{1, 1, 2, 3, 1}
	var txs []txLine
	var high seqHigh
	for i, r := range sends {
		n := nthOf(txs, txLineOf, r, &high, nil)
		if n != want[i] {
			t.Errorf("sending %d (%d:%d): transmission %d, want %d", i, r.start, r.end, n, want[i])
		}
		txs = append(txs, txLine{r.start, r.end, n, i})
	}
	if high.end != 3001 {
		t.Errorf("highest end %d, want 3001", high.end)
	}
}

// TestWidenWindow: a partial ACK's window ends where its line's did, or
// just past it when the window scale cannot say that exactly; never short
// of it.
func TestWidenWindow(t *testing.T) {
	tests := []struct {
		win   int
		d     uint32
		shift int
		want  int
	}{
		{0, 376, 10, 1},      // 376 bytes short of a zero window: one unit
		{0, 1024, 10, 1},     // exactly a unit
		{84, 65160, 10, 148}, // 63.6 units more
		{1500, 500, 0, 2000}, // no scaling
		{0xfff0, 1 << 20, 4, 0xffff},
	}
	for _, tc := range tests {
		if got := widenWindow(tc.win, tc.d, tc.shift); got != tc.want {
			t.Errorf("widenWindow(%d, %d, %d) = %d, want %d", tc.win, tc.d, tc.shift, got, tc.want)
		}
	}
}

// TestDeferredACK: the run goes on past an ACK line the kernel has not met
// yet (it delays its ACK where the captured one acknowledged at once), so
// the peer's next segment, sent before the captured peer could have seen
// that ACK, goes in on time; a line a round trip after it waits for it;
// a line never met fails with its own line number.
func TestDeferredACK(t *testing.T) {
	mss := []byte{2, 4, 0x03, 0xe8}
	synack := kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0)}
	ms := time.Millisecond
	// The handshake's round trip is 10 ms; the first data segment comes 1
	// ms after the handshake's ACK, at t = 11 ms.
	const t0 = 11 * time.Millisecond
	ack := func(at time.Duration, a uint32) kernelPacket {
		return kernelPacket{t0 + at, kernelTCP(tcpwire.FlagACK, kernelISN+1, a, 502, nil, 0)}
	}
	data := func(at time.Duration, a uint32) kernelPacket {
		return kernelPacket{t0 + at, kernelTCP(tcpwire.FlagACK|tcpwire.FlagPSH, kernelISN+1, a, 502, nil, 100)}
	}
	const seg1 = "+0.001 < P. 1:1001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 1001\n"
	tests := []struct {
		name   string
		lines  string
		kernel []kernelPacket
		seg2   time.Duration // when the second data segment goes in
		want   []string
	}{
		// The kernel acknowledges both segments on its delayed-ACK timer,
		// 40 ms after the first: the second goes in 0.5 ms after the
		// first, as captured.
		{"a delayed ACK of the next segment too",
			seg1 + "+0.0005 < P. 1001:2001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 2001\n+0.045 > P. 1:101(100) ack 2001\n",
			[]kernelPacket{ack(40*ms, 2001), data(45500*time.Microsecond, 2001)}, t0 + 500*time.Microsecond, nil},
		// The second segment comes 12 ms after the first, a round trip
		// after the ACK line: the captured peer may have sent it in answer
		// to that ACK, so it comes 12 ms after the kernel's, 40 ms late.
		{"a round trip after a delayed ACK",
			seg1 + "+0.012 < P. 1001:2001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 2001\n+0.005 > P. 1:101(100) ack 2001\n",
			[]kernelPacket{ack(40*ms, 1001), ack(52*ms+100*time.Microsecond, 2001), data(57*ms+100*time.Microsecond, 2001)}, t0 + 52*ms, nil},
		{"a deferred ACK line never met",
			seg1 + "+0.0005 < P. 1001:2001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 2001\n+0.1 < . 1:1(0) ack 1 win 4000\n",
			[]kernelPacket{ack(0, 1001), ack(90*ms, 2001)}, t0 + 500*time.Microsecond,
			[]string{"test.pkt:10: expected the kernel to acknowledge ack 2001 by 0.064 s, the most it acknowledged: ack 1001"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + "+0.010^ < . 1:1(0) ack 1 win 4000\n" + tc.lines
			var seg2 time.Duration
			wrap := func(d *replaytest.Device, c *replaytest.Clock) Device {
				return notifyDevice{d, func() {
					b := <-d.Written()
					if p, err := decodePacket(b); err == nil && p.isTCP() && uint32(p.TCP.Seq) == 1001 {
						seg2 = c.Now().Sub(replaytest.Epoch)
					}
				}}
			}
			_, err := fakeRunWith(t, src, append([]kernelPacket{synack}, tc.kernel...), wrap, "pcap2pkt=1")
			checkRunError(t, err, tc.want)
			if d := seg2 - tc.seg2; d < -100*time.Microsecond || d > 100*time.Microsecond {
				t.Errorf("the second segment went in at %v, want %v", seg2, tc.seg2)
			}
		})
	}
}

// TestDSACKOfExtraCopy: where the captured peer sent D-SACKs, the peer
// reports a copy of bytes the kernel sent more times than the script (a
// retransmission of a segment the path only reordered) with a D-SACK, once
// it has got that copy and acknowledges its bytes; a line's own D-SACK (a
// duplicate the captured path made) stays where the peer reports having
// its bytes, and goes first.
func TestDSACKOfExtraCopy(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	head := func(dup bool) string {
		s := sackHandshake +
			"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
			"+0 > . 1:4001(4000) ack 1\n" +
			"+0.010^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:4001>\n" +
			// The first segment, reordered, came 11 ms after it left: no
			// retransmission in the capture.
			"+0.011^ < . 1:1(0) ack 4001 win 8000\n"
		if dup {
			// The path duplicated the second segment.
			s += "+0.000004 < . 1:1(0) ack 4001 win 8000 <nop,nop,sack 1001:2001>\n"
		}
		return s + "+0 > . 4001:5001(1000) ack 1\n"
	}
	const last = "+0.010^ < . 1:1(0) ack 5001 win 8000\n"
	tests := []struct {
		name   string
		script string
		resend bool // the kernel retransmits the first segment at 11.5 ms
		want   [][]seqRange
	}{
		{"a retransmission the capture lacks", head(true) + last, true,
			[][]seqRange{nil, {{1001, 4001}}, nil, {{1001, 2001}}, {{1, 1001}}}},
		{"none without one", head(true) + last, false,
			[][]seqRange{nil, {{1001, 4001}}, nil, {{1001, 2001}}, nil}},
		{"none where the captured peer sent no D-SACK", head(false) + last, true,
			[][]seqRange{nil, {{1001, 4001}}, nil, nil}},
		{"the line's own D-SACK first", head(true) + "+0.010^ < . 1:1(0) ack 5001 win 8000 <nop,nop,sack 4001:5001>\n", true,
			[][]seqRange{nil, {{1001, 4001}}, nil, {{1001, 2001}}, {{4001, 5001}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{synAck1000(), dataSeg(1*ms, 0, 4000), dataSeg(12*ms+100*us, 4000, 1000)}
			if tc.resend {
				kernel = append(kernel, dataSeg(11*ms+500*us, 0, 1000))
				slices.SortFunc(kernel, func(a, b kernelPacket) int { return int(a.at - b.at) })
			}
			dev, err := fakeRun(t, tc.script, kernel)
			checkRunError(t, err, nil)
			var got [][]seqRange
			for _, p := range injectedACKs(dev) {
				var blocks []seqRange
				for b := range eachSACK(p.TCP.Options) {
					blocks = append(blocks, seqRange{b.start - kernelISN, b.end - kernelISN})
				}
				got = append(got, blocks)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("injected SACK blocks %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPeerStateMerged: what the peer reported stays a few merged ranges
// however many ACKs reported them, and news finds the same beyond them.
func TestPeerStateMerged(t *testing.T) {
	var peer peerState
	ack := func(a uint32, blocks ...seqRange) *scriptPacket {
		return &scriptPacket{proto: tcpwire.ProtoTCP, flags: tcpwire.FlagACK, ack: a, options: withSACK(nil, blocks)}
	}
	// A hole at 1001 while 2000 segments are SACKed above it, one by one,
	// and a second hole at 4002001.
	for i := range tcpwire.Seq(2000) {
		notePeerState(&peer, ack(1001, seqRange{2001, 3001 + 1000*i}, seqRange{4003001, 4004001}))
	}
	if want := []seqRange{{2001, 2002001}, {4003001, 4004001}}; !reflect.DeepEqual(peer.sacked, want) {
		t.Errorf("sacked %v, want %v", peer.sacked, want)
	}
	tests := []struct {
		sp   *scriptPacket
		want []seqRange
	}{
		{ack(1001, seqRange{2001, 3001}), nil},
		{ack(2001, seqRange{3001, 2003001}), []seqRange{{1001, 2001}, {3001, 2003001}}},
	}
	for _, tc := range tests {
		if got := news(&peer, tc.sp); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("news(ack %d %v) = %v, want %v", tc.sp.ack, sackBlocks(tc.sp.options), got, tc.want)
		}
	}
}

// TestNewestBlocksTies: blocks delivered at the same time (pieces of one
// GSO packet the kernel sent, which reach a peer as segments in sequence
// order) go newest first by sequence: the higher came later; blocks the
// kernel was not told go first, the oldest of them when they are more
// than there is room for.
func TestNewestBlocksTies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := func(a, b uint32) seqRange { return seqRange{tcpwire.Seq(a), tcpwire.Seq(b)} }
	blocks := []deliveredRange{
		{r(100, 200), t0},
		{r(300, 400), t0},
		{r(500, 600), t0.Add(-time.Millisecond)},
		{r(700, 800), t0},
	}
	want := []seqRange{r(700, 800), r(300, 400), r(100, 200)}
	if got := newestBlocks(slices.Clone(blocks), 3, nil); !slices.Equal(got, want) {
		t.Errorf("newestBlocks = %v, want %v", got, want)
	}
	// Told before: the kernel knows 700:800 and 300:400, and room goes
	// to what it does not know, newest first.
	known := &peerState{sacked: []seqRange{r(300, 400), r(700, 800)}}
	want = []seqRange{r(700, 800), r(100, 200), r(500, 600)}
	if got := newestBlocks(slices.Clone(blocks), 3, known); !slices.Equal(got, want) {
		t.Errorf("newestBlocks, 300:400 and 700:800 told = %v, want %v", got, want)
	}
	// More untold than room: the oldest untold, newest first.
	known = &peerState{ack: 100, ackSet: true}
	want = []seqRange{r(300, 400), r(100, 200), r(500, 600)}
	if got := newestBlocks(slices.Clone(blocks), 3, known); !slices.Equal(got, want) {
		t.Errorf("newestBlocks, nothing told = %v, want %v", got, want)
	}
}
