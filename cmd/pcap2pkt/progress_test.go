package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestVerifyStatus: the status line verify keeps on a terminal (a
// statusLine, as suites' is) counts the connections done, passed and
// failed (a skipped one neither) and names those being replayed, each
// redraw replacing the line; off (not a terminal, or a report format
// other than text) it writes nothing.
func TestVerifyStatus(t *testing.T) {
	var buf bytes.Buffer
	s := newVerifyStatus(&buf, 3, true)
	s.start(2)
	s.start(1)
	last := func() string {
		lines := strings.Split(buf.String(), "\r\033[K")
		return lines[len(lines)-1]
	}
	if got, want := last(), "verify: 0 of 3 connection(s) done, 0 passed, 0 failed; replaying flow 1, 2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.finish(1, true, false)
	s.finish(2, false, true)
	s.start(3)
	s.finish(3, false, false)
	if got, want := last(), "verify: 3 of 3 connection(s) done, 1 passed, 1 failed"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.clear()
	if !strings.HasSuffix(buf.String(), "\r\033[K") || last() != "" {
		t.Errorf("the line is not cleared: %q", buf.String())
	}

	var off bytes.Buffer
	s = newVerifyStatus(&off, 3, false)
	s.start(1)
	s.finish(1, true, false)
	s.clear()
	if off.Len() != 0 {
		t.Errorf("off, it wrote %q", off.String())
	}
}
