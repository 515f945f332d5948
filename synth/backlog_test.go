package synth

import (
	"strings"
	"testing"
	"time"
)

func TestWritesBeforeBacklog(t *testing.T) {
	const client = "10.0.0.1:40000"
	us, ms := time.Microsecond, time.Millisecond
	// The client sends five segments, the server's ACKs come back in a
	// run that shows 2001:3001 lost, and the client's next two writes
	// leave right after the run, before or after the retransmission.
	conv := func(rtxFirst bool) []seg {
		segs := append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: "P.", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 5 * us},
			seg{flags: "P.", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * us},
			seg{flags: "P.", seq: 3001, ack: 1, n: 1000, win: 4000, dt: 5 * us},
			seg{flags: "P.", seq: 4001, ack: 1, n: 1000, win: 4000, dt: 5 * us},
			seg{srv: true, flags: ".", seq: 1, ack: 1001, win: 4000, dt: 20 * ms},
			seg{srv: true, flags: ".", seq: 1, ack: 2001, win: 4000, dt: 4 * us},
			seg{srv: true, flags: ".", seq: 1, ack: 2001, win: 4000, dt: 4 * us, opts: sackOpts(3001, 4001)},
			seg{srv: true, flags: ".", seq: 1, ack: 2001, win: 4000, dt: 4 * us, opts: sackOpts(3001, 5001)})
		rtx := seg{flags: ".", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * us}
		if rtxFirst {
			segs = append(segs, rtx)
		}
		segs = append(segs,
			seg{flags: "P.", seq: 5001, ack: 1, n: 1000, win: 4000, dt: 3 * us},
			seg{flags: "P.", seq: 6001, ack: 1, n: 1000, win: 4000, dt: 3 * us})
		if !rtxFirst {
			segs = append(segs, rtx)
		}
		return segs
	}
	cases := []struct {
		name   string
		segs   []seg
		opts   Options
		before bool // the writes of 5001:7001 come before the run of ACKs
	}{
		{"new data before the retransmission: written before the ACKs", conv(false), Options{}, true},
		{"the retransmission first: written where they left", conv(true), Options{}, false},
		{"not with --strict", conv(false), Options{Strict: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := eventLines(t, c.segs, client, c.opts)
			ackAt, writes := -1, []int{}
			for i, l := range lines {
				if ackAt < 0 && strings.Contains(l, "< . 1:1(0) ack 1001") {
					ackAt = i
				}
				if strings.Contains(l, "write(") {
					writes = append(writes, i)
				}
			}
			text := strings.Join(lines, "\n")
			if ackAt < 0 || len(writes) < 3 {
				t.Fatalf("no ACK of 1:1001 or too few writes in:\n%s", text)
			}
			for _, w := range writes[len(writes)-2:] { // 5001:6001 and 6001:7001
				if got := w < ackAt; got != c.before {
					t.Errorf("write at line %d before the ACKs: %v, want %v, in:\n%s", w, got, c.before, text)
				}
			}
		})
	}
}
