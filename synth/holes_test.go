package synth

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// sackOpts is a SACK option for blocks of the client's data, given as
// left and right edges in turn.
func sackOpts(edges ...uint32) []layers.TCPOption {
	d := make([]byte, 4*len(edges))
	for i, e := range edges {
		binary.BigEndian.PutUint32(d[4*i:], cliISN+e)
	}
	return []layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(d)), OptionData: d}}
}

func TestFillsEarly(t *testing.T) {
	const client = "10.0.0.1:40000"
	us, ms := time.Microsecond, time.Millisecond
	// The handshake's RTT is 8 ms: a filling segment may come at most 1 ms
	// after the SACK that reported the hole.
	hs := []seg{
		{flags: "S", win: 4000, opts: mss1000},
		{srv: true, flags: "S.", ack: 1, win: 4000, opts: mss1000, dt: 8 * ms},
		{flags: ".", seq: 1, ack: 1, win: 4000, dt: 10 * us},
	}
	// The client sends three segments; the second is reordered: the
	// server SACKs the third, then acknowledges all fillDelay later.
	reordered := func(fillDelay time.Duration, retrans bool) []seg {
		s := append(hs[:3:3],
			seg{flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 5 * us},
			seg{flags: "P.", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * us},
			seg{srv: true, flags: ".", seq: 1, ack: 1001, win: 4000, dt: 8 * ms, opts: sackOpts(2001, 3001)})
		if retrans {
			// The kernel sends the missing segment again, and the server
			// reports the hole once more before the fill.
			s = append(s, seg{flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 2 * ms},
				seg{srv: true, flags: ".", seq: 1, ack: 1001, win: 4000, dt: 10 * us, opts: sackOpts(2001, 3001)})
			fillDelay -= 2*ms + 10*us
		}
		return append(s, seg{srv: true, flags: ".", seq: 1, ack: 3001, win: 4000, dt: fillDelay},
			seg{flags: "P.", seq: 3001, ack: 1, n: 100, win: 4000, dt: 3 * ms})
	}
	cases := []struct {
		name string
		segs []seg
		opts Options
		want []string // in order
	}{
		{"a fill 4 ms after the SACK comes 1 ms after it, and what follows keeps its delay", reordered(4*ms, false), Options{Exact: true},
			[]string{"< . 1:1(0) ack 1001 win 4000", "+0.001000 < . 1:1(0) ack 3001 win 4000", "+0.003000 write(3, ..., 100)"}},
		{"a fill within the window stays", reordered(500*us, false), Options{Exact: true},
			[]string{"< . 1:1(0) ack 1001 win 4000", "+0.000500 < . 1:1(0) ack 3001 win 4000"}},
		{"not after a retransmission", reordered(4*ms, true), Options{Exact: true},
			[]string{"> . 1001:2001(1000)", "+0.001990 < . 1:1(0) ack 3001 win 4000"}},
		{"not with --strict", reordered(4*ms, false), Options{Strict: true, Exact: true},
			[]string{"< . 1:1(0) ack 1001 win 4000", "+0.004000 < . 1:1(0) ack 3001 win 4000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInOrder(t, strings.Join(eventLines(t, c.segs, client, c.opts), "\n"), c.want)
		})
	}
}
