package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
)

// BenchmarkReplay measures a replay as a user runs it, through the binary:
//   - fixed: the whole cost of a two-line script (re-exec into a new network
//     namespace, TUN setup, run, teardown), per run;
//   - article: the seed article's script (its 10 s sleep left out), with the
//     offset of each injected and observed packet from its scheduled time
//     (p50/p99 over all runs; outbound offsets include the kernel's own
//     delays, such as the delayed ACK of the FIN).
func BenchmarkReplay(b *testing.B) {
	if err := canReplay(); err != nil {
		b.Skipf("replay cannot run here: %v", err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "pcap2pkt")
	buildCLITo(b, bin)

	b.Run("fixed", func(b *testing.B) {
		script := filepath.Join(dir, "two.pkt")
		os.WriteFile(script, []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n"), 0o644)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if code, _, errs := execCLI(b, bin, "replay", script); code != 0 {
				b.Fatalf("exit %d: %s", code, errs)
			}
		}
		b.ReportMetric(float64(time.Since(start))/float64(time.Millisecond)/float64(b.N), "ms/run")
	})

	b.Run("article", func(b *testing.B) {
		src, err := os.ReadFile(seedScript)
		if err != nil {
			b.Skipf("seed article not available: %v", err)
		}
		script := filepath.Join(dir, "article.pkt")
		os.WriteFile(script, []byte(strings.Replace(string(src), "+0 `sleep 10`\n", "", 1)), 0o644)
		var in50, in99, all50, all99 float64
		for i := 0; i < b.N; i++ {
			_, _, errs := execCLI(b, bin, "replay", "--stats", "--tolerance_usecs=20000", script)
			p50, p99, ok := parseStats(errs, "inbound packet")
			q50, q99, ok2 := parseStats(errs, "all timed events")
			if !ok || !ok2 {
				b.Fatalf("no stats in output:\n%s", errs)
			}
			in50, in99 = in50+p50, max(in99, p99)
			all50, all99 = all50+q50, max(all99, q99)
		}
		b.ReportMetric(in50/float64(b.N), "inbound-p50-µs")
		b.ReportMetric(in99, "inbound-p99-µs")
		b.ReportMetric(all50/float64(b.N), "all-p50-µs")
		b.ReportMetric(all99, "all-p99-µs")
	})
}

// longFlows is the capture of BenchmarkLongFlows: two bulk transfers of
// 540,007 packets each (1,080,014 in all), the receiver ACKing every
// second 1448-byte segment, cut to 96 bytes a packet as `tcpdump -s 96`
// does (121 MB): the shape of a capture where memory per connection
// grows with its packets, not with the connections open.
var longFlows = capturetest.Config{Flows: 2, Concurrent: 2, Rounds: 180000, Response: 2 * 1448, Snap: 96}

// BenchmarkLongFlows runs the built binary as a user does, on a capture of
// long connections written by the benchmark, and tcpdump -nn -r on the
// same file in the same iteration as the peer: for each command, packets/s
// of the whole process, its peak RSS, the CPU time it used per second of
// wall time (above 1: more than one core), and how many times faster it
// was than tcpdump (tcpdump's wall time over ours). The commands: all
// (-o DIR/, a script per connection), one (--flow 2, the script on
// standard output), flows (the table).
func BenchmarkLongFlows(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "pcap2pkt")
	buildCLITo(b, bin)
	name := filepath.Join(dir, "long.pcap")
	n, err := capturetest.WriteFile(name, longFlows)
	if err != nil {
		b.Fatal(err)
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		b.Logf("no tcpdump to compare with: %v", err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"all", []string{"-o", filepath.Join(dir, "out") + "/", name}},
		{"one", []string{"--flow", "2", name}},
		{"flows", []string{"flows", name}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ours, theirs time.Duration
			var cpu time.Duration
			var rss int64
			for b.Loop() {
				u := runMeasured(b, bin, c.args...)
				ours += u.wall
				cpu += u.cpu
				rss = max(rss, u.maxRSS)
				if tcpdump != "" {
					theirs += runMeasured(b, tcpdump, "-nn", "-r", name).wall
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/ours.Seconds(), "packets/s")
			b.ReportMetric(float64(rss)/(1<<20), "MiB-rss-peak")
			b.ReportMetric(cpu.Seconds()/ours.Seconds(), "cpu/wall")
			if theirs > 0 {
				b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-tcpdump")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// usage is what one run of a command cost: wall and CPU (user and system)
// time, and its peak resident set in bytes.
type usage struct {
	wall, cpu time.Duration
	maxRSS    int64
}

// runMeasured runs a command with its output thrown away and says what it
// cost; it fails b if the command fails. The peak resident set is the
// command's own VmHWM, read from /proc every 5 ms while it runs: the
// rusage of a child counts the memory of the process that started it too
// (Go starts commands with vfork, and exec keeps the old mapping's peak).
func runMeasured(b *testing.B, bin string, args ...string) usage {
	b.Helper()
	cmd := exec.Command(bin, args...)
	var errw bytes.Buffer
	cmd.Stderr = &errw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var hwm int64
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if kb, ok := vmHWM(status); ok {
				hwm = max(hwm, kb<<10)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	<-polled
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, errw.String())
	}
	return usage{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), maxRSS: hwm}
}

// vmHWM reads the peak resident set in KiB from a /proc/PID/status file.
func vmHWM(status string) (int64, bool) {
	st, err := os.ReadFile(status)
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}
