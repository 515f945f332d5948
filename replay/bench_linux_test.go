package replay

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// TestSandboxSetupChild is the child of BenchmarkSandboxSetup: it sets up
// the network as a run does and tears it down. Outside the sandbox it skips.
func TestSandboxSetupChild(t *testing.T) {
	if !InSandbox() {
		t.Skip("only meaningful as the sandboxed child of BenchmarkSandboxSetup")
	}
	start := time.Now()
	dev, err := SetupNetwork(netConfigs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("SETUP %d ns", time.Since(start).Nanoseconds())
}

// BenchmarkSandboxSetup measures the fixed cost of a run: re-executing into
// a new network namespace, SetupNetwork, teardown and the namespace's
// destruction. "reexec" runs a child that does nothing, for comparison.
func BenchmarkSandboxSetup(b *testing.B) {
	requireTUN(b)
	if InSandbox() {
		b.Skip("not nested")
	}
	for _, bc := range []struct {
		name string
		run  string
	}{{"reexec", "^$"}, {"reexec+setup", "^TestSandboxSetupChild$"}} {
		b.Run(bc.name, func(b *testing.B) {
			var setup time.Duration
			for b.Loop() {
				var out bytes.Buffer
				res, err := RunSandboxed(context.Background(), []string{"-test.run=" + bc.run, "-test.v"}, nil, &out, &out)
				code := res.ExitCode
				if err != nil || code != 0 {
					b.Fatalf("exit %d, %v:\n%s", code, err, out.String())
				}
				if _, after, ok := strings.Cut(out.String(), "SETUP "); ok {
					ns, _ := strconv.Atoi(strings.Fields(after)[0])
					setup += time.Duration(ns)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/run")
			if setup > 0 {
				b.ReportMetric(float64(setup.Microseconds())/1e3/float64(b.N), "setup-ms/run")
			}
		})
	}
}

// BenchmarkDeviceTimestamp injects ICMP echo requests and reads the replies:
// "kernel" is from the injection to the kernel's timestamp of the reply,
// "read" from that timestamp to the moment ReadPacket returned it. The
// "load" case (opt-in, see loadEnv) keeps both CPUs busy with two spinning
// processes.
func BenchmarkDeviceTimestamp(b *testing.B) {
	for _, load := range []bool{false, true} {
		name := "idle"
		if load {
			name = "load"
		}
		b.Run(name, func(b *testing.B) {
			if !InSandbox() {
				proxyBenchmark(b)
				return
			}
			if load {
				stop := startCPULoad(b)
				defer stop()
			}
			benchmarkEcho(b)
		})
	}
}

// loadEnv opts in to the "load" case: it busies both CPUs, which slows every
// other user of a shared machine.
const loadEnv = "PCAP2PKT_BENCH_LOAD"

// cpuLoadLimit bounds the spinners' life even if the benchmark hangs.
const cpuLoadLimit = 10 * time.Second

// startCPULoad starts two CPU spinners at normal priority, bounded by
// cpuLoadLimit; the returned func stops them (call it with defer, so that a
// failing benchmark stops them too).
func startCPULoad(b *testing.B) (stop func()) {
	if os.Getenv(loadEnv) != "1" {
		b.Skipf("skipping: set %s=1 to busy both CPUs for up to %v", loadEnv, cpuLoadLimit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cpuLoadLimit)
	var spinners []*exec.Cmd
	stop = func() {
		cancel()
		for _, s := range spinners {
			_ = s.Wait()
		}
	}
	for range 2 {
		s := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := s.Start(); err != nil {
			stop()
			b.Fatal(err)
		}
		spinners = append(spinners, s)
		// Were the benchmark run under a real-time policy, the spinner
		// would inherit it and starve the machine.
		if err := unix.SchedSetAttr(s.Process.Pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0); err != nil {
			stop()
			b.Fatal(err)
		}
	}
	return stop
}

func benchmarkEcho(b *testing.B) {
	cfg := netConfigs[0]
	dev, err := SetupNetwork(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	var kernel, read []time.Duration
	buf := gopacket.NewSerializeBuffer()
	for i := 0; b.Loop(); i++ {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4,
			SrcIP: net.IP(cfg.RemoteIP.AsSlice()), DstIP: net.IP(cfg.LocalIP.AsSlice())}
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: uint16(i)}
		opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
		if err := gopacket.SerializeLayers(buf, opts, ip, icmp, gopacket.Payload(make([]byte, 56))); err != nil {
			b.Fatal(err)
		}
		sent := time.Now()
		if err := dev.WritePacket(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
		at, got, err := readEchoReply(dev)
		if err != nil {
			b.Fatal(err)
		}
		kernel = append(kernel, at.Sub(sent))
		read = append(read, got.Sub(at))
		// Space the echoes like script events rather than back to back.
		time.Sleep(time.Millisecond)
	}
	reportPercentiles(b, "kernel", kernel)
	reportPercentiles(b, "read", read)
}

// readEchoReply reads until an ICMP echo reply, skipping what the kernel
// sends by itself (IPv6 router solicitations, MLD reports), and returns its
// kernel timestamp and when ReadPacket returned it.
func readEchoReply(dev Device) (at, got time.Time, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		pkt, at, err := dev.ReadPacket(ctx)
		got := time.Now()
		if err != nil {
			return at, got, err
		}
		if len(pkt) > 20 && pkt[0]>>4 == 4 && pkt[9] == unix.IPPROTO_ICMP && pkt[20] == byte(layers.ICMPv4TypeEchoReply) {
			return at, got, nil
		}
	}
}

// proxyBenchmark runs the calling benchmark with the same b.N in a
// sandboxed child and reports the child's metrics as its own.
func proxyBenchmark(b *testing.B) {
	requireTUN(b)
	var out bytes.Buffer
	args := []string{"-test.run=^$", "-test.bench=" + testRunPattern(b.Name()), "-test.benchtime=" + strconv.Itoa(b.N) + "x"}
	res, err := RunSandboxed(context.Background(), args, nil, &out, &out)
	code := res.ExitCode
	if err != nil || code != 0 {
		b.Fatalf("sandboxed benchmark: exit %d, %v:\n%s", code, err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		for i := 4; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil && f[i+1] != "ns/op" {
				b.ReportMetric(v, f[i+1])
			}
		}
	}
}
