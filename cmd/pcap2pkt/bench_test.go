package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
