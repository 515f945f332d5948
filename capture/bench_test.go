package capture

import (
	"bytes"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// The benchmark capture: 1,000,000 packets over 5,000 connections, 50 at a
// time, generated once per test binary run and kept in memory (~96 MB).
var bench struct {
	once    sync.Once
	data    []byte
	packets int
}

func benchCapture() ([]byte, int) {
	bench.once.Do(func() { bench.data, bench.packets = genCapture(5000, 96, 50) })
	return bench.data, bench.packets
}

func TestGenCapture(t *testing.T) {
	data, n := genCapture(20, 5, 3)
	flows, st, err := ReadFlows(bytes.NewReader(data), "gen", FlowOptions{})
	if err != nil || st.TCP != n || len(flows) != 20 {
		t.Fatalf("%v: %d of %d packets, %d flows", err, st.TCP, n, len(flows))
	}
	for _, f := range flows {
		if !f.Complete() || f.Packets.Len() != 3+10+4 {
			t.Errorf("flow %d: %s, %d packets", f.Index, flowState(f), f.Packets.Len())
		}
		for _, p := range f.Packets.All() {
			if p.ChecksumState != tcpwire.ChecksumGood {
				t.Fatalf("flow %d packet %d: checksum %v", f.Index, p.Index(), p.ChecksumState)
			}
		}
	}
}

func BenchmarkRead(b *testing.B) {
	data, n := benchCapture()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), "bench")
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
	report(b, n)
}

// BenchmarkFlows reads and tracks flows in streaming mode (finished flows
// handed to Done and dropped), reporting the peak live heap above the
// capture itself: it grows with the flows open or lingering, not with the file.
func BenchmarkFlows(b *testing.B) {
	data, n := benchCapture()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	b.ResetTimer()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), "bench")
		if err != nil {
			b.Fatal(err)
		}
		flows := 0
		// The generated connections last ~0.1 s of capture time each.
		tr := NewTracker(FlowOptions{Done: func(*Flow) { flows++ }, Linger: time.Second})
		for i := 0; ; i++ {
			p, err := r.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			tr.Add(p)
			if i%200000 == 100000 {
				capturetest.SampleHeap(b, &peak)
			}
		}
		tr.Close()
		if flows != 5000 {
			b.Fatalf("%d flows", flows)
		}
	}
	report(b, n)
	b.ReportMetric(float64(peak-min(peak, base.HeapAlloc))/(1<<20), "MB-heap-peak")
}

func report(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(0, "ns/op")
}
