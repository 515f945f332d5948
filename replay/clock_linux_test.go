package replay

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkSleepUntil measures how late SystemClock.SleepUntil wakes up for
// deadlines 1 to 4 ms ahead, the usual gap between script events.
func BenchmarkSleepUntil(b *testing.B) {
	var c SystemClock
	lates := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		t := c.Now().Add(time.Millisecond + time.Duration(i*379%3000)*time.Microsecond)
		if err := c.SleepUntil(context.Background(), t); err != nil {
			b.Fatal(err)
		}
		lates = append(lates, c.Now().Sub(t))
	}
	reportPercentiles(b, "late", lates)
}

// reportPercentiles reports the p50 and p99 of ds in microseconds.
func reportPercentiles(b *testing.B, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	pct := func(p int) float64 { return float64(ds[(len(ds)-1)*p/100].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(50), what+"-p50-µs")
	b.ReportMetric(pct(99), what+"-p99-µs")
	b.ReportMetric(float64(ds[len(ds)-1].Nanoseconds())/1e3, what+"-max-µs")
}
