package replaytest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestDevice(t *testing.T) {
	d := NewDevice()
	out := []byte{0x45, 1, 2}
	if err := d.WritePacket(out); err != nil {
		t.Fatal(err)
	}
	out[1] = 9 // the device must have kept its own copy
	if got := <-d.Written(); !bytes.Equal(got, []byte{0x45, 1, 2}) {
		t.Errorf("Written() = %x, want 450102", got)
	}

	at := time.Unix(100, 5)
	if err := d.Inject([]byte{0x60}, at); err != nil {
		t.Fatal(err)
	}
	pkt, gotAt, err := d.ReadPacket(context.Background())
	if err != nil || !bytes.Equal(pkt, []byte{0x60}) || !gotAt.Equal(at) {
		t.Errorf("ReadPacket = %x, %v, %v; want 60, %v, nil", pkt, gotAt, err, at)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, _, err := d.ReadPacket(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReadPacket on empty device = %v, want deadline exceeded", err)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, _, err := d.ReadPacket(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadPacket after Close = %v, want ErrClosed", err)
	}
	if err := d.WritePacket(out); !errors.Is(err, ErrClosed) {
		t.Errorf("WritePacket after Close = %v, want ErrClosed", err)
	}
	if err := d.Inject(out, at); !errors.Is(err, ErrClosed) {
		t.Errorf("Inject after Close = %v, want ErrClosed", err)
	}
}

func TestDeviceFullQueue(t *testing.T) {
	d := NewDevice()
	for i := range queueLen {
		if err := d.WritePacket([]byte{byte(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := d.WritePacket([]byte{0}); err == nil {
		t.Error("WritePacket on a full queue succeeded; want an error, not a block")
	}
}

func TestClock(t *testing.T) {
	c := NewClock()
	start := c.Now()
	tests := []struct {
		name  string
		sleep time.Duration
		want  time.Duration
	}{
		{"forward", 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"past is a no-op", time.Millisecond, 1500 * time.Millisecond},
		{"forward again", 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		if err := c.SleepUntil(context.Background(), start.Add(tt.sleep)); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := c.Now().Sub(start); got != tt.want {
			t.Errorf("%s: elapsed %v, want %v", tt.name, got, tt.want)
		}
	}
	c.Advance(time.Second)
	if got := c.Now().Sub(start); got != 3*time.Second {
		t.Errorf("after Advance: elapsed %v, want 3s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SleepUntil(ctx, start.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("SleepUntil with ended ctx = %v, want Canceled", err)
	}
	if got := c.Now().Sub(start); got != 3*time.Second {
		t.Errorf("a cancelled sleep moved the clock to %v", got)
	}
}

// TestClockAfter fires After's channels only when the virtual time passes
// theirs.
func TestClockAfter(t *testing.T) {
	c := NewClock()
	now, later := c.After(0), c.After(time.Second)
	select {
	case at := <-now:
		if !at.Equal(Epoch) {
			t.Errorf("After(0) fired at %v, want %v", at, Epoch)
		}
	default:
		t.Error("After(0) did not fire")
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-later:
		t.Fatal("After(1s) fired at 999 ms")
	default:
	}
	if err := c.SleepUntil(context.Background(), Epoch.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-later:
		if !at.Equal(Epoch.Add(2 * time.Second)) {
			t.Errorf("After(1s) fired at %v", at)
		}
	default:
		t.Error("After(1s) did not fire once the time passed it")
	}
}
