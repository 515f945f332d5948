package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/replay"
)

// timingStats collects how far each timed event of a run was from its
// scheduled time (--stats).
type timingStats struct {
	mu      sync.Mutex
	samples map[string][]time.Duration // by kind: "inbound packet", ...
}

func (s *timingStats) add(t replay.TimingSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == nil {
		s.samples = map[string][]time.Duration{}
	}
	off := t.Offset
	if off < 0 {
		off = -off
	}
	s.samples[t.What] = append(s.samples[t.What], off)
}

// percentile returns the p-th percentile (0-100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1)*p/100 + 0.5)
	return sorted[i]
}

// write prints one line per kind of event: count, p50, p99 and max of the
// absolute offsets, in microseconds.
func (s *timingStats) write(w io.Writer, run time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kinds := make([]string, 0, len(s.samples))
	var all []time.Duration
	for k, v := range s.samples {
		kinds = append(kinds, k)
		all = append(all, v...)
	}
	sort.Strings(kinds)
	line := func(name string, v []time.Duration) {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		fmt.Fprintf(w, "stats: %-20s n=%-4d p50=%6.0fµs p99=%6.0fµs max=%6.0fµs\n", name, len(v),
			us(percentile(v, 50)), us(percentile(v, 99)), us(v[len(v)-1]))
	}
	for _, k := range kinds {
		line(k, s.samples[k])
	}
	if len(all) > 0 {
		line("all timed events", all)
	}
	fmt.Fprintf(w, "stats: %-20s %.1f ms\n", "script run", float64(run)/float64(time.Millisecond))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// parseStats reads back the p50 and p99 (µs) of one kind of event ("all
// timed events", "inbound packet", ...) from --stats output.
func parseStats(out, kind string) (p50, p99 float64, ok bool) {
	prefix := "stats: " + kind + " "
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		var n int
		rest := strings.TrimSpace(strings.TrimPrefix(l, prefix))
		if _, err := fmt.Sscanf(rest, "n=%d p50=%fµs p99=%fµs", &n, &p50, &p99); err == nil {
			return p50, p99, true
		}
	}
	return 0, 0, false
}
