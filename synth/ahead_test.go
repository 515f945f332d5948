package synth

import (
	"strings"
	"testing"
	"time"
)

func TestAcksAhead(t *testing.T) {
	const client = "10.0.0.1:40000"
	us, ms := time.Microsecond, time.Millisecond
	// The client writes 1000 bytes, the server acknowledges them, and the
	// client's second write leaves dt before the server's next ACK.
	twoWrites := func(ack uint32, dt time.Duration) []seg {
		return append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: "P.", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 2 * ms},
			seg{srv: true, flags: ".", seq: 1, ack: ack, win: 4000, dt: dt},
			seg{flags: "P.", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * ms})
	}
	cases := []struct {
		name   string
		segs   []seg
		opts   Options
		before bool // the ACK line comes before the second write's expectation
	}{
		{"an ACK of earlier data 50 µs after new data goes ahead of it", twoWrites(1001, 50*us), Options{}, true},
		{"not past the limit", twoWrites(1001, 2*ms), Options{}, false},
		{"not an ACK of the data it would pass", twoWrites(1501, 50*us), Options{}, false},
		{"not with --strict", twoWrites(1001, 50*us), Options{Strict: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := eventLines(t, c.segs, client, c.opts)
			ackAt, dataAt := -1, -1
			for i, l := range lines {
				if strings.Contains(l, "< . 1:1(0) ack") {
					ackAt = i
				}
				if strings.Contains(l, "> P. 1001:2001(1000)") {
					dataAt = i
				}
			}
			text := strings.Join(lines, "\n")
			if ackAt < 0 || dataAt < 0 {
				t.Fatalf("no ACK or no second write's data in:\n%s", text)
			}
			if got := ackAt < dataAt; got != c.before {
				t.Errorf("ACK before the data: %v, want %v, in:\n%s", got, c.before, text)
			}
			if c.before && !strings.HasPrefix(lines[dataAt], "+0 ") {
				t.Errorf("the data that the ACK passed is not at +0 after it: %q", lines[dataAt])
			}
		})
	}
}
