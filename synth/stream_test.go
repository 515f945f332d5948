package synth

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	defer func(m, f, c int) { streamMin, flushEvery, streamChunk = m, f, c }(streamMin, flushEvery, streamChunk)
	modes := []Options{{AllowPartial: true}, {AllowPartial: true, Strict: true}, {AllowPartial: true, Exact: true}, {AllowPartial: true, Frames: true}}
	for _, c := range caps {
		for _, opts := range modes {
			streamMin = 1 << 62
			res, err := File(c.name, bytes.NewReader(c.data), capture.FlowOptions{}, opts)
			if err != nil && len(res) == 0 {
				continue
			}
			want := map[int][]byte{}
			for _, r := range res {
				if r.Err == nil {
					want[r.Flow.Index] = parser.Format(r.Script)
				}
			}
			for _, rate := range [][2]int{{1, 1}, {3, 5}, {64, 7}, {4096, printChunk}} {
				streamMin, flushEvery, streamChunk = 0, rate[0], rate[1]
				got, _ := Scripts(c.name, bytes.NewReader(c.data), capture.FlowOptions{}, opts)
				for _, r := range got {
					if r.Err != nil {
						continue
					}
					var buf bytes.Buffer
					if err := r.Print(&buf); err != nil {
						t.Fatalf("%s flow %d: %v", c.name, r.Flow.Index, err)
					}
					if !bytes.Equal(buf.Bytes(), want[r.Flow.Index]) {
						t.Errorf("%s flow %d, %+v, handed over every %d, printed every %d: differs:\n%s",
							c.name, r.Flow.Index, opts, rate[0], rate[1], firstDiff(want[r.Flow.Index], buf.Bytes()))
					}
				}
			}
		}
	}
}
