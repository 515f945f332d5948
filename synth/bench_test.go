package synth

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// The benchmark capture: 5,000 HTTP-like connections of 203 packets each
// (1,015,000 packets), 50 open at a time, generated once per test binary.
// capture's own generator is internal to its tests; this one has what
// synthesis works on: options, request/response bursts, closes.
const (
	benchFlows  = 5000
	benchRounds = 49
	benchConc   = 50
)

var bench struct {
	once    sync.Once
	data    []byte
	packets int
}

func benchCapture(tb testing.TB) ([]byte, int) {
	bench.once.Do(func() { bench.data, bench.packets = genHTTP(tb, benchFlows, benchRounds, benchConc) })
	return bench.data, bench.packets
}

// genHTTP writes nflows connections (handshake with MSS, SACK, TS and
// window scale; rounds of a 100-byte request, a 1948-byte response in two
// segments and an ACK; FINs both ways), conc of them interleaved.
func genHTTP(tb testing.TB, nflows, rounds, conc int) ([]byte, int) {
	var buf bytes.Buffer
	buf.Grow(nflows * (7 + 4*rounds) * 160) // about the frames' and records' size, so the buffer does not regrow
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	type flow struct {
		cli        [4]byte
		port       uint16
		cseq, sseq uint32
		step       int
	}
	// Each step is (from server, flags, payload length).
	type step struct {
		srv   bool
		flags byte
		n     int
	}
	const fin, syn, psh, ack = 1, 2, 8, 16
	steps := []step{{false, syn, 0}, {true, syn | ack, 0}, {false, ack, 0}}
	for range rounds {
		steps = append(steps, step{false, psh | ack, 100}, step{true, ack, 1448}, step{true, psh | ack, 500}, step{false, ack, 0})
	}
	steps = append(steps, step{false, fin | ack, 0}, step{true, ack, 0}, step{true, fin | ack, 0}, step{false, ack, 0})

	n, next := 0, 0
	at := time.Unix(1700000000, 0)
	frame := make([]byte, 0, 2048)
	open := func() *flow {
		next++
		return &flow{cli: [4]byte{10, byte(next >> 16), byte(next >> 8), byte(next)}, port: uint16(10000 + next%50000),
			cseq: uint32(next) * 7919, sseq: uint32(next) * 104729}
	}
	var active []*flow
	for len(active) < conc && next < nflows {
		active = append(active, open())
	}
	srvIP := [4]byte{192, 168, 0, 1}
	for len(active) > 0 {
		for i := 0; i < len(active); i++ {
			f := active[i]
			st := steps[f.step]
			src, dst, sp, dp, seq, ackn := f.cli, srvIP, f.port, uint16(80), f.cseq, f.sseq
			if st.srv {
				src, dst, sp, dp, seq, ackn = srvIP, f.cli, 80, f.port, f.sseq, f.cseq
			}
			if st.flags&ack == 0 {
				ackn = 0
			}
			var opts []byte
			if st.flags&syn != 0 {
				opts = []byte{2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7}
			} else {
				opts = []byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0}
			}
			binary.BigEndian.PutUint32(opts[len(opts)-12+4:], uint32(n/100+1))
			frame = tcpFrame(frame[:0], src, dst, sp, dp, seq, ackn, st.flags, opts, st.n, uint16(n))
			at = at.Add(10 * time.Microsecond)
			n++
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
				tb.Fatal(err)
			}
			adv := uint32(st.n)
			if st.flags&(syn|fin) != 0 {
				adv++
			}
			if st.srv {
				f.sseq += adv
			} else {
				f.cseq += adv
			}
			if f.step++; f.step == len(steps) {
				if next < nflows {
					active[i] = open()
				} else {
					active = append(active[:i], active[i+1:]...)
					i--
				}
			}
		}
	}
	return buf.Bytes(), n
}

// tcpFrame appends an Ethernet/IPv4/TCP frame with valid checksums.
func tcpFrame(b []byte, src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags byte, opts []byte, n int, id uint16) []byte {
	b = append(b, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00)
	ip := len(b)
	tcpLen := 20 + len(opts) + n
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0)
	binary.BigEndian.PutUint16(b[ip+2:], uint16(20+tcpLen))
	binary.BigEndian.PutUint16(b[ip+4:], id)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], ^fold(csum(b[ip:ip+20], 0)))
	th := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ack)
	b = append(b, byte((20+len(opts))/4)<<4, flags, 0x01, 0xF5, 0, 0, 0, 0)
	b = append(b, opts...)
	b = append(b, make([]byte, n)...)
	ph := csum(src[:], 0)
	ph = csum(dst[:], ph) + 6 + uint32(tcpLen)
	binary.BigEndian.PutUint16(b[th+16:], ^fold(csum(b[th:], ph)))
	return b
}

// csum adds b to a ones' complement sum s.
func csum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// fold folds a ones' complement sum to 16 bits.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestGenHTTP(t *testing.T) {
	data, n := genHTTP(t, 3, 2, 2)
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

// BenchmarkSynth reads the capture, tracks its flows, synthesises every
// flow and prints every script, streaming (Stream), and reports packets/s,
// the peak live heap above the capture itself (sampled after a GC every
// 1000 flows) and the memory the process got from the OS.
func BenchmarkSynth(b *testing.B) {
	data, n := benchCapture(b)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	var out int64
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		flows := 0
		err := Stream("bench.pcap", bytes.NewReader(data), capture.FlowOptions{Linger: time.Second}, Options{}, func(r Result) error {
			if r.Err != nil {
				return r.Err
			}
			out += int64(len(parser.Format(r.Script)))
			if flows++; flows%1000 == 500 {
				b.StopTimer()
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
				b.StartTimer()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if flows != benchFlows {
			b.Fatalf("%d flows", flows)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(peak-min(peak, base.HeapAlloc))/(1<<20), "MB-heap-peak")
	b.ReportMetric(float64(m.Sys)/(1<<20), "MB-sys")
	b.ReportMetric(float64(out)/float64(b.N)/(1<<20), "MB-scripts")
	b.ReportMetric(0, "ns/op")
}
