package replay

// This file is the boundary between the engine and the kernel under test:
// the Device (packets in and out of the TUN) and the Clock (the only source
// of time for the engine), and the real clock. Package replaytest has the
// in-memory fakes with which the engine is tested without root.

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Device carries IP packets between the engine and the kernel under test.
type Device interface {
	// WritePacket injects one IP packet (no link header) into the kernel under test.
	WritePacket(pkt []byte) error
	// ReadPacket returns the next IP packet the kernel transmitted on the TUN, with the
	// kernel's own timestamp of that transmission. It returns ctx.Err() when ctx ends.
	ReadPacket(ctx context.Context) (pkt []byte, at time.Time, err error)
	Close() error
}

// Clock is the engine's only source of time.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t (precisely: coarse sleep, then a short spin) or when ctx ends.
	SleepUntil(ctx context.Context, t time.Time) error
	// After returns a channel that receives the time once d has passed
	// (the engine's timeouts).
	After(d time.Duration) <-chan time.Time
}

// Capturer is a Device that can record the packets on its link as tcpdump
// would: both directions, in order, with the kernel's own timestamps.
type Capturer interface {
	// CaptureTo records every packet injected or sent to w until the
	// device is closed; the caller closes w after the device.
	CaptureTo(w *PcapWriter) error
}

// errDeviceClosed is returned by a Device used after Close; it wraps
// net.ErrClosed, as the fake device's error does.
var errDeviceClosed = fmt.Errorf("replay: device closed: %w", net.ErrClosed)

// SystemClock is the real clock (SleepUntil is in clock_linux.go). Times from
// Now carry Go's monotonic reading, so SleepUntil is immune to wall-clock
// steps; kernel packet timestamps are wall-clock (CLOCK_REALTIME) and compare
// with Now through the wall reading.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
