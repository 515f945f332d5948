package replaytest

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockHeld: a lock taken through a descriptor stays held; another open
// of the file cannot have it.
func TestLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() int {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	if ancestor, err := lockUnlessAncestorHolds(open()); err != nil || ancestor {
		t.Fatalf("an unheld lock: %v (held by an ancestor: %v)", err, ancestor)
	}
	if err := unix.Flock(open(), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
		t.Fatalf("a second open took the lock (%v)", err)
	}
}
