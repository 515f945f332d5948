package replay

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelTestLock is a lock file shared by the test binaries of every package
// whose tests time the kernel (replay and cmd/pcap2pkt, each with this
// file). `go test ./...` runs packages in parallel; on a 2-core machine one
// package's bulk transfers would otherwise make the other's timing checks
// fail. Sandboxed children of the tests do not take it.
const kernelTestLock = "/tmp/pcap2pkt-kernel-tests.lock"

// lockFile holds the lock until the process exits; a package variable so
// that no finalizer closes it (and drops the lock) early.
var lockFile *os.File

func TestMain(m *testing.M) {
	// PCAP2PKT_TEST_LOCK=off skips the lock, for a developer who runs one
	// light test while a long suite holds it.
	if os.Geteuid() == 0 && os.Getenv("PCAP2PKT_TEST_LOCK") != "off" && !InSandbox() {
		if f, err := os.OpenFile(kernelTestLock, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			lockFile = f
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
				fmt.Fprintf(os.Stderr, "replay tests: %s: %v (running without it)\n", kernelTestLock, err)
			}
		}
	}
	os.Exit(m.Run())
}
