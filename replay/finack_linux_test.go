package replay

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// BenchmarkFINAckGap replays the seed article's connection (handshake, 10
// bytes out, the peer's FIN) and measures, with kernel timestamps on both
// sides, the gap between the injected FIN and the kernel's ACK of it. It
// also reports where that ACK falls in the 4 ms jiffy grid of HZ=250 (the
// CLOCK_MONOTONIC phase): a constant phase means the ACK waits for a tick.
func BenchmarkFINAckGap(b *testing.B) {
	if !InSandbox() {
		proxyBenchmark(b)
		return
	}
	cfg := netConfigs[0]
	dev, w, path := recordingDevice(b, cfg)
	for i := 0; b.Loop(); i++ {
		articleFlow(b, dev, cfg, uint16(9000+i))
	}
	if err := dev.Close(); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	wallMinusMono := time.Now().UnixNano() - monotonicNow()
	var gaps []time.Duration
	var phases []time.Duration
	pkts := readCapturedTCP(b, path)
	for i, p := range pkts {
		if p.outgoing || !p.tcp.FIN {
			continue
		}
		for _, q := range pkts[i+1:] {
			if q.outgoing && q.tcp.SrcPort == p.tcp.DstPort && q.tcp.ACK && !q.tcp.FIN && q.tcp.Ack == p.tcp.Seq+1 {
				gaps = append(gaps, q.at.Sub(p.at))
				mono := q.at.UnixNano() - wallMinusMono
				phases = append(phases, time.Duration(mono%int64(4*time.Millisecond)))
				break
			}
		}
	}
	if len(gaps) != b.N {
		b.Fatalf("found %d FIN/ACK pairs in the capture, want %d", len(gaps), b.N)
	}
	var over int
	for _, g := range gaps {
		if g > 4*time.Millisecond {
			over++
		}
	}
	b.ReportMetric(float64(over)/float64(len(gaps)), "gap>4ms-fraction")
	reportPercentiles(b, "gap", gaps)
	slices.Sort(phases)
	b.ReportMetric(float64(phases[0].Microseconds()), "ack-phase-min-µs")
	b.ReportMetric(float64(phases[len(phases)-1].Microseconds()), "ack-phase-max-µs")
}

func monotonicNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// articleFlow runs the seed article's connection on local port port, with
// its timing (+.1 s to the handshake's ACK, +.2 s to the write).
func articleFlow(b *testing.B, dev Device, cfg NetConfig, port uint16) {
	var clock SystemClock
	ctx := context.Background()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: cfg.LocalIP.As4()}); err != nil {
		b.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		b.Fatal(err)
	}
	in := func(tcp layers.TCP) {
		tcp.DstPort = layers.TCPPort(port)
		if err := dev.WritePacket(buildTCP(b, cfg, tcp, nil)); err != nil {
			b.Fatal(err)
		}
	}
	out := func() *layers.TCP {
		tcp, _ := readTCPFrom(b, dev, cfg, port)
		return tcp
	}
	start := clock.Now()
	in(layers.TCP{SYN: true, Window: 4000, Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x03, 0xe8}}}})
	synack := out()
	_ = clock.SleepUntil(ctx, start.Add(100*time.Millisecond))
	in(layers.TCP{ACK: true, Seq: 1, Ack: synack.Seq + 1, Window: 1000})
	afd, _, err := unix.Accept(fd)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(afd)
	_ = clock.SleepUntil(ctx, start.Add(300*time.Millisecond))
	if _, err := unix.Write(afd, make([]byte, 10)); err != nil {
		b.Fatal(err)
	}
	out()
	in(layers.TCP{ACK: true, Seq: 1, Ack: synack.Seq + 11, Window: 1000})
	in(layers.TCP{FIN: true, ACK: true, Seq: 1, Ack: synack.Seq + 11, Window: 1000})
	out()
}
