package replay

// Sleeping precisely. Go's timers wake up late by up to a millisecond or two
// even on an idle machine (the runtime's poller waits in whole milliseconds),
// while nanosleep(2) is an hrtimer, late only by the thread's timer slack
// (50 µs by default). So SleepUntil waits on a Go timer (which a context can
// interrupt) until timerMargin before the deadline, blocks its thread in
// nanosleep until spinWindow before it, and then yields in a loop.

import (
	"context"
	"errors"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// timerMargin bounds the lateness of a Go timer on a busy machine; it is
	// also the longest a cancellation can wait for the nanosleep to end.
	timerMargin = 3 * time.Millisecond
	// spinWindow covers nanosleep's timer slack and wake-up latency.
	spinWindow = 200 * time.Microsecond
)

// SleepUntil returns at t, or with ctx.Err() when ctx ends first.
func (SystemClock) SleepUntil(ctx context.Context, t time.Time) error {
	if d := time.Until(t) - timerMargin; d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d := time.Until(t) - spinWindow; d > 0 {
		ts := unix.NsecToTimespec(d.Nanoseconds())
		for {
			err := unix.Nanosleep(&ts, &ts)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
	for time.Now().Before(t) {
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.Gosched()
	}
	return nil
}
