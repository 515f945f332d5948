package replay

// This file is the boundary between the engine and the kernel under test:
// the Device (packets in and out of the TUN) and the Clock (the only source
// of time for the engine), with in-memory fakes so that the engine can be
// tested without root, and the real clock.

import (
	"context"
	"errors"
	"sync"
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
}

// Capturer is a Device that can record the packets on its link as tcpdump
// would: both directions, in order, with the kernel's own timestamps.
type Capturer interface {
	// CaptureTo records every packet injected or sent to w until the
	// device is closed; the caller closes w after the device.
	CaptureTo(w *PcapWriter) error
}

// ErrDeviceClosed is returned by a Device used after Close.
var ErrDeviceClosed = errors.New("replay: device closed")

// FakePacket is a packet with the time it was sent.
type FakePacket struct {
	Data []byte
	At   time.Time
}

// FakeDevice is an in-memory Device. Packets the engine writes appear on
// Written(); packets a test Injects are what ReadPacket returns, in order.
type FakeDevice struct {
	written chan []byte
	inbound chan FakePacket
	done    chan struct{}
	once    sync.Once
}

// fakeQueueLen bounds both directions so that a test that forgets to drain
// Written() makes WritePacket fail instead of blocking the engine forever.
const fakeQueueLen = 1024

// NewFakeDevice returns an empty FakeDevice.
func NewFakeDevice() *FakeDevice {
	return &FakeDevice{
		written: make(chan []byte, fakeQueueLen),
		inbound: make(chan FakePacket, fakeQueueLen),
		done:    make(chan struct{}),
	}
}

// WritePacket queues a copy of pkt on Written().
func (d *FakeDevice) WritePacket(pkt []byte) error {
	select {
	case <-d.done:
		return ErrDeviceClosed
	default:
	}
	select {
	case d.written <- append([]byte(nil), pkt...):
		return nil
	default:
		return errors.New("replay: fake device: written queue full (the test does not read Written())")
	}
}

// Written returns the packets the engine wrote, in order.
func (d *FakeDevice) Written() <-chan []byte { return d.written }

// Inject queues a packet as if the kernel had transmitted it at time at.
// It fails when the device is closed or the queue is full.
func (d *FakeDevice) Inject(pkt []byte, at time.Time) error {
	select {
	case <-d.done:
		return ErrDeviceClosed
	default:
	}
	select {
	case d.inbound <- FakePacket{Data: append([]byte(nil), pkt...), At: at}:
		return nil
	default:
		return errors.New("replay: fake device: inbound queue full")
	}
}

// ReadPacket returns the next injected packet, waiting for one until ctx ends
// or the device is closed.
func (d *FakeDevice) ReadPacket(ctx context.Context) ([]byte, time.Time, error) {
	select {
	case p := <-d.inbound:
		return p.Data, p.At, nil
	default:
	}
	select {
	case p := <-d.inbound:
		return p.Data, p.At, nil
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	case <-d.done:
		return nil, time.Time{}, ErrDeviceClosed
	}
}

// Close makes further calls fail; it is safe to call more than once.
func (d *FakeDevice) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}

// FakeClock is a virtual clock: SleepUntil moves the time forward at once.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// fakeEpoch is a fixed, recognisable start so that test output is stable.
var fakeEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewFakeClock returns a FakeClock set to a fixed instant.
func NewFakeClock() *FakeClock { return &FakeClock{now: fakeEpoch} }

// Now returns the virtual time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SleepUntil sets the virtual time to t if t is later, unless ctx has ended.
func (c *FakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// Advance moves the virtual time forward by d (a test simulating elapsed time).
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// SystemClock is the real clock (SleepUntil is in clock_linux.go). Times from
// Now carry Go's monotonic reading, so SleepUntil is immune to wall-clock
// steps; kernel packet timestamps are wall-clock (CLOCK_REALTIME) and compare
// with Now through the wall reading.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
