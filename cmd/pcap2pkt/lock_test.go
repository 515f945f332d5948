package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/replay"
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
	if os.Geteuid() == 0 && os.Getenv("PCAP2PKT_TEST_LOCK") != "off" && !replay.InSandbox() {
		if f, err := os.OpenFile(kernelTestLock, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			lockFile = f
			if err := lockUnlessAncestorHolds(f); err != nil {
				fmt.Fprintf(os.Stderr, "cmd/pcap2pkt tests: %s: %v (running without it)\n", kernelTestLock, err)
			}
		}
	}
	os.Exit(m.Run())
}

// lockUnlessAncestorHolds takes the lock, unless a process this one descends
// from holds it: `flock LOCKFILE go test -bench ...`, as the house runs long
// benchmarks and fuzzing, holds it for this binary, which would otherwise
// wait for its own parent for ever.
func lockUnlessAncestorHolds(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err != unix.EWOULDBLOCK {
		return err
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil && ancestorHolds(st.Ino) {
		return nil
	}
	return unix.Flock(int(f.Fd()), unix.LOCK_EX)
}

// ancestorHolds reports whether /proc/locks shows a flock on inode ino held
// (not waited for) by an ancestor of this process.
func ancestorHolds(ino uint64) bool {
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	holders := map[int]bool{}
	for _, line := range strings.Split(string(locks), "\n") {
		// "1: FLOCK  ADVISORY  WRITE 13170 fe:00:9979072 0 EOF"; a waiter's
		// line has "->" after the number.
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		id := f[5]
		if strings.HasSuffix(id, ":"+strconv.FormatUint(ino, 10)) {
			if pid, err := strconv.Atoi(f[4]); err == nil {
				holders[pid] = true
			}
		}
	}
	for pid := os.Getppid(); pid > 1; {
		if holders[pid] {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// The parent is the second field after the command's closing ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		g := strings.Fields(rest)
		if len(g) < 2 {
			return false
		}
		if pid, err = strconv.Atoi(g[1]); err != nil {
			return false
		}
	}
	return false
}
