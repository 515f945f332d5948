package replay

import (
	"context"
	"errors"
	"testing"
	"time"
)

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
