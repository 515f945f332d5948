package synth

import (
	"strings"
	"testing"
	"time"
)

func TestBacklogRuns(t *testing.T) {
	const client = "10.0.0.1:40000"
	us := time.Microsecond
	data := func(seq uint32, dt time.Duration) seg {
		return seg{srv: true, flags: ".", seq: seq, ack: 1, n: 1000, win: 4000, dt: dt}
	}
	cases := []struct {
		name  string
		segs  []seg
		want  []string // in order
		never []string
	}{{
		name: "four segments acknowledged at once by one ACK: one GSO packet, read before the ACK",
		segs: append(handshake(), data(1, time.Millisecond), data(1001, 5*us), data(2001, 5*us), data(3001, 5*us),
			seg{flags: ".", seq: 1, ack: 4001, win: 4000, dt: 10 * us}),
		want: []string{"+0.001015 < . 1:4001(4000) ack 1 win 4000", "+0 read(3, ..., 4000) = 4000", "+0 > . 1:1(0) ack 4001"},
	}, {
		// The first segment acknowledges the client's retransmission (its
		// second transmission of 1:101): the GSO packet answers it, and the
		// next line, acknowledging new data sent once, answers that once.
		name: "a run that acknowledges a retransmission is anchored to it",
		segs: append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: time.Millisecond},
			seg{flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: 200 * time.Millisecond},
			seg{srv: true, flags: ".", seq: 1, ack: 101, n: 1000, win: 4000, dt: 10 * time.Millisecond},
			seg{srv: true, flags: ".", seq: 1001, ack: 101, n: 1000, win: 4000, dt: 5 * us},
			seg{srv: true, flags: ".", seq: 2001, ack: 101, n: 1000, win: 4000, dt: 5 * us},
			seg{flags: ".", seq: 101, ack: 3001, win: 4000, dt: 10 * us},
			seg{flags: "P.", seq: 101, ack: 3001, n: 100, win: 4000, dt: 50 * us},
			seg{srv: true, flags: ".", seq: 3001, ack: 201, win: 4000, dt: 10 * time.Millisecond}),
		want:  []string{"+0.010010^2 < . 1:3001(3000) ack 101 win 4000", "> P. 101:201(100)", "+0.010000^ < . 3001:3001(0) ack 201"},
		never: []string{"^2 < . 3001"},
	}, {
		name: "a segment that came in before the ACK left stays out of the run and goes after the ACK",
		segs: append(handshake(), data(1, time.Millisecond), data(1001, 5*us), data(2001, 5*us), data(3001, 5*us),
			seg{flags: ".", seq: 1, ack: 3001, win: 4000, dt: 10 * us}),
		want: []string{"< . 1:3001(3000) ack 1 win 4000", "+0 read(3, ..., 3000) = 3000", "> . 1:1(0) ack 3001", "+0 < . 3001:4001(1000)"},
	}, {
		name: "a segment that the ACK after it does not acknowledge goes after the ACK",
		segs: append(handshake(), data(1, time.Millisecond), data(1001, 5*us),
			seg{flags: ".", seq: 1, ack: 1001, win: 4000, dt: 10 * us}),
		want:  []string{"< . 1:1001(1000)", "+0 read(3, ..., 1000) = 1000", "> . 1:1(0) ack 1001", "+0 < . 1001:2001(1000)"},
		never: []string{"(2000)"},
	}, {
		name: "a delayed ACK does not make a run",
		segs: append(handshake(), data(1, time.Millisecond), data(1001, 5*us), data(2001, 5*us),
			seg{flags: ".", seq: 1, ack: 3001, win: 4000, dt: 40 * time.Millisecond}),
		want:  []string{"< . 1:1001(1000)", "< . 1001:2001(1000)", "< . 2001:3001(1000)"},
		never: []string{"(3000)", "(2000)"},
	}, {
		name: "no run across a hole",
		segs: append(handshake(), data(1, time.Millisecond), data(2001, 5*us), data(1001, 5*us),
			seg{flags: ".", seq: 1, ack: 3001, win: 4000, dt: 10 * us}),
		want:  []string{"< . 1:1001(1000)", "< . 2001:3001(1000)", "< . 1001:2001(1000)"},
		never: []string{"(3000)", "(2000)"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Join(eventLines(t, c.segs, client, Options{}), "\n")
			wantInOrder(t, text, c.want)
			for _, n := range c.never {
				if strings.Contains(text, n) {
					t.Errorf("%q should not appear in:\n%s", n, text)
				}
			}
		})
	}
}

func TestRoundBuffer(t *testing.T) {
	cases := []struct{ lo, hi, want int64 }{
		{537280, 540200, 540000},    // a decimal setting (tcp_rmem[1] 540000)
		{129600, 132520, 131072},    // a power of two wins
		{6290000, 6292000, 6291456}, // three times a power of two
		{1001, 1003, 1002},          // nothing round: the middle
	}
	for _, c := range cases {
		if got := roundBuffer(c.lo, c.hi); got != c.want {
			t.Errorf("roundBuffer(%d, %d) = %d, want %d", c.lo, c.hi, got, c.want)
		}
	}
}

// wantInOrder fails the test unless every string of want occurs in text,
// each after the one before it.
func wantInOrder(t *testing.T, text string, want []string) {
	t.Helper()
	at := 0
	for _, w := range want {
		k := strings.Index(text[at:], w)
		if k < 0 {
			t.Fatalf("missing %q (in order) in:\n%s", w, text)
		}
		at += k + len(w)
	}
}
