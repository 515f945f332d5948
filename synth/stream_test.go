package synth

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// TestStreamed checks that a script streamed (see streamer) is the script
// File's tree prints, on every shared capture, the seed's, testdata's and
// generated ones, in each mode, with the builder handing its events over
// and the streamer printing them at several rates (every event, a few, a
// chunk): what the builder pins, the passes' steps and the notes of runs
// that go on past a chunk all come into play.
func TestStreamed(t *testing.T) {
	type capt struct {
		name string
		data []byte
	}
	var caps []capt
	add := func(path string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, capt{filepath.Base(path), data})
	}
	for _, sub := range []string{"captures/local", "captures/public", "seed"} {
		ents, err := os.ReadDir(sharedOrSkip(t, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".pcap") || strings.HasSuffix(e.Name(), ".pcapng") {
				add(filepath.Join(sharedDir, sub, e.Name()))
			}
		}
	}
	local, err := filepath.Glob("../testdata/*.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range local {
		add(p)
	}
	for _, c := range []capturetest.Config{
		{Flows: 2, Concurrent: 2, Rounds: 300, Response: 5 * 1448, Snap: 96},
		{Flows: 3, Concurrent: 3, Rounds: 500, Request: 200, Response: 300},
	} {
		data, _ := capturetest.Generate(c)
		caps = append(caps, capt{fmt.Sprintf("generated %+v", c), data})
	}
	if len(caps) < 10 {
		t.Fatalf("%d captures", len(caps))
	}
	modes := []Options{{AllowPartial: true}, {AllowPartial: true, Strict: true}, {AllowPartial: true, Exact: true}, {AllowPartial: true, Frames: true}}
	for _, c := range caps {
		for _, opts := range modes {
			sameStreamed(t, c.name, c.data, capture.FlowOptions{}, opts)
		}
	}
}

// sameStreamed checks that each flow of the capture data that File
// synthesises prints the same script streamed, with the builder handing
// its events over and the streamer printing them at several rates (every
// event, a few, a chunk), and without starting again (errRebuild): what
// the builder pins keeps the events it changes.
func sameStreamed(t *testing.T, name string, data []byte, fo capture.FlowOptions, opts Options) {
	t.Helper()
	for _, r := range streamed(t, name, data, fo, opts) {
		if !r.streamed {
			t.Errorf("%s flow %d, %+v, handed over every %d: synthesised again without streaming", name, r.flow, opts, r.rate[0])
		}
		if !bytes.Equal(r.got, r.want) {
			t.Errorf("%s flow %d, %+v, handed over every %d, printed every %d: differs:\n%s",
				name, r.flow, opts, r.rate[0], r.rate[1], firstDiff(r.want, r.got))
		}
	}
}

// streamedFlow is a flow's script as File's tree prints it (want) and as
// streamed (got), at a rate of handing over and printing.
type streamedFlow struct {
	flow      int
	rate      [2]int
	want, got []byte
	streamed  bool // not synthesised again without streaming
}

func streamed(t *testing.T, name string, data []byte, fo capture.FlowOptions, opts Options) []streamedFlow {
	t.Helper()
	defer func(m, f, c int) { streamMin, flushEvery, streamChunk = m, f, c }(streamMin, flushEvery, streamChunk)
	streamMin = 1 << 62
	res, err := File(name, bytes.NewReader(data), fo, opts)
	if err != nil && len(res) == 0 {
		return nil
	}
	want := map[int][]byte{}
	for _, r := range res {
		if r.Err == nil {
			want[r.Flow.Index] = parser.Format(r.Script)
		}
	}
	opts.Source = filepath.Base(name)
	var out []streamedFlow
	for _, rate := range [][2]int{{1, 1}, {3, 5}, {64, 7}, {4096, printChunk}} {
		streamMin, flushEvery, streamChunk = 0, rate[0], rate[1]
		flows, _, _ := capture.ReadFlows(bytes.NewReader(data), name, fo)
		for _, f := range flows {
			if want[f.Index] == nil {
				continue
			}
			b, err := build(f, opts, new(nodes), nil, true)
			if err != nil {
				t.Fatalf("%s flow %d: %v", name, f.Index, err)
			}
			var buf bytes.Buffer
			if err := b.printer()(&buf); err != nil {
				t.Fatalf("%s flow %d: %v", name, f.Index, err)
			}
			out = append(out, streamedFlow{f.Index, rate, want[f.Index], buf.Bytes(), b.stream != nil})
		}
	}
	return out
}

// TestStreamRebuild: a server resets its connection and then sends new
// data (a capture of a broken stack, or garbage), after its last write's
// tail was handed over: the new data takes that tail's PSH away, an event
// printed already. The script is made again without streaming, and is
// File's.
func TestStreamRebuild(t *testing.T) {
	ms := time.Millisecond
	segs := append(handshake(),
		seg{flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: ms},
		seg{srv: true, flags: "P.", seq: 1, ack: 101, n: 500, win: 4000, dt: ms},
		seg{flags: "P.", seq: 101, ack: 501, n: 100, win: 4000, dt: ms},
		seg{srv: true, flags: ".", seq: 501, ack: 201, win: 4000, dt: 50 * ms},
		seg{flags: "P.", seq: 201, ack: 501, n: 100, win: 4000, dt: ms},
		seg{srv: true, flags: "R.", seq: 501, ack: 301, win: 4000, dt: ms},
		seg{srv: true, flags: "P.", seq: 501, ack: 301, n: 200, win: 4000, dt: ms},
	)
	hp, err := capture.ParseHostPort("10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := 0
	for _, r := range streamed(t, "conv.pcap", conversation(t, segs), capture.FlowOptions{Local: hp}, Options{}) {
		if !bytes.Equal(r.got, r.want) {
			t.Errorf("handed over every %d, printed every %d: differs:\n%s", r.rate[0], r.rate[1], firstDiff(r.want, r.got))
		}
		if !r.streamed {
			rebuilt++
		}
	}
	if rebuilt == 0 {
		t.Error("never made again without streaming: the case no longer needs it")
	}
}
