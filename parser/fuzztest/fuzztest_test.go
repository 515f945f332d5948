package fuzztest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	failed := errors.New("failed")
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"ok", func() error { return nil }, ""},
		{"error", func() error { return failed }, "failed"},
		{"panic", func() error { panic("boom") }, "panic: boom"},
		{"hang", func() error { <-hang; return nil }, "input took over 50ms"},
	}
	for _, tc := range tests {
		err := run(50*time.Millisecond, tc.fn)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: run() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDeadline(t *testing.T) {
	// Plain test runs, as this one, get the hang guard, not the fuzzing
	// deadline that a loaded machine could miss.
	if d := Deadline(); d != time.Minute {
		t.Errorf("Deadline() = %v outside fuzzing, want 1m", d)
	}
}
