package synth

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// The benchmark capture: 5,000 HTTP-like connections of 203 packets each
// (1,015,000 packets), 50 open at a time: a 100-byte request, a 1948-byte
// response in two segments and an ACK, 49 times per connection.
var benchConfig = capturetest.Config{Flows: 5000, Concurrent: 50, Rounds: 49, Request: 100, Response: 1948}

func TestGenHTTP(t *testing.T) {
	data, n := capturetest.Generate(capturetest.Config{Flows: 3, Concurrent: 2, Rounds: 2, Request: 100, Response: 1948})
	res, err := File("gen.pcap", bytes.NewReader(data), capture.FlowOptions{}, Options{})
	if err != nil || len(res) != 3 || n != 3*(3+4*2+4) {
		t.Fatalf("%v: %d flows, %d packets", err, len(res), n)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		roundTrip(t, "gen", parser.Format(r.Script), r.Script)
	}
}

// TestNodesReuse checks that scripts built from slabs reset after other
// flows (as Stream does) print as scripts built from fresh ones: flows of
// different sizes in turn, so that chunks are reused, outgrown and cleared.
func TestNodesReuse(t *testing.T) {
	var flows []*capture.Flow
	for _, c := range []capturetest.Config{
		{Flows: 2, Concurrent: 1, Rounds: 2, Request: 100, Response: 1948},
		{Flows: 2, Concurrent: 2, Rounds: 120, Request: 10, Response: 5000},
		{Flows: 3, Concurrent: 1, Rounds: 1, Response: 300},
	} {
		data, _ := capturetest.Generate(c)
		fl, _, err := capture.ReadFlows(bytes.NewReader(data), "gen.pcap", capture.FlowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, fl...)
	}
	var mem nodes
	for _, i := range []int{0, 2, 4, 3, 1, 5, 6, 2, 0, 3} {
		f := flows[i]
		want, err := Synthesize(f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := synthesize(f, Options{}, &mem, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w, g := parser.Format(want), parser.Format(got); !bytes.Equal(w, g) {
			t.Fatalf("flow %d of %d packets differs:\n%s", i, f.Packets.Len(), firstDiff(w, g))
		}
		mem.reset()
	}
}

// BenchmarkSynth reads the capture from a file, tracks its flows,
// synthesises every flow and prints every script, streaming (Stream), and
// reports packets/s, the peak live heap (sampled after a GC every 1000
// flows), the peak resident set of the process (VmHWM, which covers the
// whole run: the capture is generated straight to the file) and the
// memory the Go runtime got from the OS.
func BenchmarkSynth(b *testing.B) {
	name := filepath.Join(b.TempDir(), "bench.pcap")
	n, err := capturetest.WriteFile(name, benchConfig)
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	var peak uint64
	var out int64
	b.ReportAllocs()
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for b.Loop() {
		fr, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		flows := 0
		var text bytes.Buffer
		err = Stream(name, fr, capture.FlowOptions{Linger: time.Second}, Options{}, func(r Result) error {
			if r.Err != nil {
				return r.Err
			}
			text.Reset()
			if err := r.Print(&text); err != nil {
				return err
			}
			out += int64(text.Len())
			if flows++; flows%1000 == 500 {
				capturetest.SampleHeap(b, &peak)
			}
			return nil
		})
		fr.Close()
		if err != nil {
			b.Fatal(err)
		}
		if flows != benchConfig.Flows {
			b.Fatalf("%d flows", flows)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(peak)/(1<<20), "MB-heap-peak")
	if hwm, ok := peakRSS(); ok {
		b.ReportMetric(float64(hwm)/(1<<20), "MB-rss-peak")
	}
	b.ReportMetric(float64(m.Sys)/(1<<20), "MB-sys")
	b.ReportMetric(float64(out)/float64(b.N)/(1<<20), "MB-scripts")
	b.ReportMetric(0, "ns/op")
}

// peakRSS returns the process's peak resident set in bytes (VmHWM in
// /proc/self/status); false where there is none.
func peakRSS() (uint64, bool) {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
