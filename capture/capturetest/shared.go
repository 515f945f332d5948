package capturetest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SharedDir is the shared test data beside the repository (../shared from
// its root), which the tests read real captures and scripts from; "" when
// the repository's root is not found above the working directory.
func SharedDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// SharedFile returns the path of rel in SharedDir, skipping the test when
// it is not there (a clone without ../shared).
func SharedFile(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(SharedDir(), rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data missing: %v", err)
	}
	return p
}

// SampleHeap raises *peak to the live heap after a collection, with the
// benchmark's timer stopped: benchmarks report the peak heap of a run.
func SampleHeap(b *testing.B, peak *uint64) {
	b.StopTimer()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	*peak = max(*peak, m.HeapAlloc)
	b.StartTimer()
}
