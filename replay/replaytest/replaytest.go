// Package replaytest is test support for replay: an in-memory Device and a
// virtual Clock, so that the engine is tested without root, a TUN device or
// real time, as wireguard-go's tun/tuntest stands in for a TUN; and the
// lock that the test binaries timing the kernel share (LockKernelTests).
// It imports nothing of replay (replay's own tests use it); its types
// satisfy replay.Device and replay.Clock.
package replaytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by a Device used after Close; it wraps
// net.ErrClosed, as replay's TUN device's error does.
var ErrClosed = fmt.Errorf("replaytest: device closed: %w", net.ErrClosed)

// packet is a packet with the time it was sent.
type packet struct {
	data []byte
	at   time.Time
}

// Device is an in-memory replay.Device. Packets the engine writes appear
// on Written(); packets a test Injects are what ReadPacket returns, in
// order.
type Device struct {
	written chan []byte
	inbound chan packet
	done    chan struct{}
	once    sync.Once
}

// queueLen bounds both directions so that a test that forgets to drain
// Written() makes WritePacket fail instead of blocking the engine forever.
const queueLen = 1024

// NewDevice returns an empty Device.
func NewDevice() *Device {
	return &Device{
		written: make(chan []byte, queueLen),
		inbound: make(chan packet, queueLen),
		done:    make(chan struct{}),
	}
}

// WritePacket queues a copy of pkt on Written().
func (d *Device) WritePacket(pkt []byte) error {
	select {
	case <-d.done:
		return ErrClosed
	default:
	}
	select {
	case d.written <- append([]byte(nil), pkt...):
		return nil
	default:
		return errors.New("replaytest: written queue full (the test does not read Written())")
	}
}

// Written returns the packets the engine wrote, in order.
func (d *Device) Written() <-chan []byte { return d.written }

// Inject queues a packet as if the kernel had transmitted it at time at.
// It fails when the device is closed or the queue is full.
func (d *Device) Inject(pkt []byte, at time.Time) error {
	select {
	case <-d.done:
		return ErrClosed
	default:
	}
	select {
	case d.inbound <- packet{data: append([]byte(nil), pkt...), at: at}:
		return nil
	default:
		return errors.New("replaytest: inbound queue full")
	}
}

// ReadPacket returns the next injected packet, waiting for one until ctx
// ends or the device is closed.
func (d *Device) ReadPacket(ctx context.Context) ([]byte, time.Time, error) {
	select {
	case p := <-d.inbound:
		return p.data, p.at, nil
	default:
	}
	select {
	case p := <-d.inbound:
		return p.data, p.at, nil
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	case <-d.done:
		return nil, time.Time{}, ErrClosed
	}
}

// Close makes further calls fail; it is safe to call more than once.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}

// Clock is a virtual replay.Clock: SleepUntil moves its time forward at
// once, and the channels of After fire when its time passes theirs.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

// waiter is a channel of After and when it fires.
type waiter struct {
	at time.Time
	ch chan time.Time
}

// Epoch is where a new Clock starts: fixed and recognisable, so that test
// output is stable.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a Clock set to Epoch.
func NewClock() *Clock { return &Clock{now: Epoch} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SleepUntil sets the virtual time to t if t is later, unless ctx has ended.
func (c *Clock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(t)
	return nil
}

// Advance moves the virtual time forward by d (a test simulating elapsed
// time).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(c.now.Add(d))
}

// After returns a channel that receives the virtual time once it has moved
// d past now: only SleepUntil and Advance move it.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := waiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.waiters = append(c.waiters, w)
	c.set(c.now)
	return w.ch
}

// set moves the time to t if t is later, and fires the waiters it passed.
// The caller holds c.mu.
func (c *Clock) set(t time.Time) {
	if t.After(c.now) {
		c.now = t
	}
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}
