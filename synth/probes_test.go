package synth

import (
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

func TestAcksBeforeProbe(t *testing.T) {
	const client = "10.0.0.1:40000"
	ms := time.Millisecond
	sackOK := []layers.TCPOption{mss1000[0], {OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}}
	cases := []struct {
		name string
		segs []seg
		opts Options
		want string // the late ACK's line
	}{
		{"an ACK 11 ms after two segments comes before the earliest probe", probeConv(sackOK, 11*ms, 2), Options{Exact: true}, "+0.009500 < . 1:1(0) ack 2201"},
		{"an ACK before the earliest probe stays", probeConv(sackOK, 9*ms, 2), Options{Exact: true}, "+0.009000 < . 1:1(0) ack 2201"},
		{"an ACK after the probe's jiffy stays", probeConv(sackOK, 20*ms, 2), Options{Exact: true}, "+0.020000 < . 1:1(0) ack 2201"},
		{"one segment out: the probe waits for the minimum RTO", probeConv(sackOK, 11*ms, 1), Options{Exact: true}, "+0.011000 < . 1:1(0) ack 1201"},
		{"no SACK, no probe", probeConv(mss1000, 11*ms, 2), Options{Exact: true}, "+0.011000 < . 1:1(0) ack 2201"},
		{"not with --strict", probeConv(sackOK, 11*ms, 2), Options{Strict: true, Exact: true}, "+0.011000 < . 1:1(0) ack 2201"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Join(eventLines(t, c.segs, client, c.opts), "\n")
			if !strings.Contains(text, c.want) {
				t.Errorf("missing %q in:\n%s", c.want, text)
			}
		})
	}
}

// An anchored ACK after one that acksBeforeProbe moved keeps its captured
// delay after what it answers: the replay injects it that long after the
// kernel's transmission, which the move shifted as far.
func TestAcksBeforeProbeKeepsAnchors(t *testing.T) {
	const client = "10.0.0.1:40000"
	ms := time.Millisecond
	sackOK := []layers.TCPOption{mss1000[0], {OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}}
	// The late ACK, 11 ms after the two segments, is inside the probe's
	// window: moved 1.5 ms earlier.
	segs := append(probeConv(sackOK, 11*ms, 2), seg{srv: true, flags: ".", seq: 1, ack: 2301, win: 4000, dt: 4 * ms})
	wantInOrder(t, strings.Join(eventLines(t, segs, client, Options{}), "\n"),
		[]string{"+0.009500^ < . 1:1(0) ack 2201", "> P. 2201:2301(100)", "+0.004000^ < . 1:1(0) ack 2301"})
}

// probeConv: a 4 ms handshake and two exchanges give the kernel an srtt
// of 4 ms; then the client sends n segments of 1000 bytes (with two out,
// the kernel's loss probe fires 10 ms after the last at the earliest), the
// peer acknowledges them lateAck after, and the client sends 100 more.
func probeConv(synOpts []layers.TCPOption, lateAck time.Duration, n int) []seg {
	us, ms := time.Microsecond, time.Millisecond
	s := []seg{
		{flags: "S", win: 4000, opts: synOpts},
		{srv: true, flags: "S.", ack: 1, win: 4000, opts: synOpts, dt: 4 * ms},
		{flags: ".", seq: 1, ack: 1, win: 4000, dt: 10 * us},
		{flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: ms},
		{srv: true, flags: ".", seq: 1, ack: 101, win: 4000, dt: 4 * ms},
		{flags: "P.", seq: 101, ack: 1, n: 100, win: 4000, dt: ms},
		{srv: true, flags: ".", seq: 1, ack: 201, win: 4000, dt: 4 * ms},
		{flags: ".", seq: 201, ack: 1, n: 1000, win: 4000, dt: ms},
	}
	if n == 2 {
		s = append(s, seg{flags: "P.", seq: 1201, ack: 1, n: 1000, win: 4000, dt: 5 * us})
	}
	return append(s, seg{srv: true, flags: ".", seq: 1, ack: 201 + uint32(n)*1000, win: 4000, dt: lateAck},
		seg{flags: "P.", seq: 201 + uint32(n)*1000, ack: 1, n: 100, win: 4000, dt: 3 * ms})
}
