// Package fuzztest gives fuzz targets a per-input deadline. Go's fuzzing
// engine has none: an input that makes the code under test slow stalls
// every worker that meets it (0 execs/s, nothing reported) and is never
// saved, so a denial of service by a crafted input goes unseen. Each
// target runs its work through Within, which fails the input when it
// takes too long; the engine then saves and minimises it like any other
// failing input. (It lives under parser/, the package without
// dependencies, for the fuzz targets of every package.)
package fuzztest

import (
	"flag"
	"fmt"
	"runtime/debug"
	"testing"
	"time"
)

// Deadline is how long one input may take: a second while fuzzing, where
// an input is a small capture or script and anything slower is a hang or
// work growing faster than the input; a minute in plain test runs, which
// replay the corpus on loaded CI machines and under -race, as a hang
// guard that does not fail a slow machine.
func Deadline() time.Duration {
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return time.Second
	}
	return time.Minute
}

// Within runs fn and fails t with what run reports. fn runs on another
// goroutine, so it reports by its error, never through t.
func Within(t testing.TB, fn func() error) {
	t.Helper()
	if err := run(Deadline(), fn); err != nil {
		t.Fatal(err)
	}
}

// run returns fn's error, a panic's value and stack, or an error when fn
// does not return within d. A panic is recovered here because on another
// goroutine it would end the worker without a word of what it was; a fn
// that is cut off goes on in the background (a goroutine cannot be
// stopped) until the failing worker exits.
func run(d time.Duration, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- fn()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("input took over %v (a hang, or work that grows faster than the input)", d)
	}
}
