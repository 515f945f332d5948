package replay

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeDevice(t *testing.T) {
	d := NewFakeDevice()
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
	if _, _, err := d.ReadPacket(context.Background()); !errors.Is(err, ErrDeviceClosed) {
		t.Errorf("ReadPacket after Close = %v, want ErrDeviceClosed", err)
	}
	if err := d.WritePacket(out); !errors.Is(err, ErrDeviceClosed) {
		t.Errorf("WritePacket after Close = %v, want ErrDeviceClosed", err)
	}
	if err := d.Inject(out, at); !errors.Is(err, ErrDeviceClosed) {
		t.Errorf("Inject after Close = %v, want ErrDeviceClosed", err)
	}
}

func TestFakeDeviceFullQueue(t *testing.T) {
	d := NewFakeDevice()
	for i := range fakeQueueLen {
		if err := d.WritePacket([]byte{byte(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := d.WritePacket([]byte{0}); err == nil {
		t.Error("WritePacket on a full queue succeeded; want an error, not a block")
	}
}

func TestFakeClock(t *testing.T) {
	c := NewFakeClock()
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

func TestSystemClockSleepUntil(t *testing.T) {
	var c SystemClock
	deadline := c.Now().Add(3 * time.Millisecond)
	if err := c.SleepUntil(context.Background(), deadline); err != nil {
		t.Fatal(err)
	}
	if late := c.Now().Sub(deadline); late < 0 {
		t.Errorf("woke %v early", -late)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := c.SleepUntil(ctx, c.Now().Add(time.Hour)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SleepUntil past ctx deadline = %v, want DeadlineExceeded", err)
	}
}
