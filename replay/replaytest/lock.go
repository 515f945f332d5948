package replaytest

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelTestLock is a lock file shared by the test binaries of every
// package whose tests time the kernel (replay and cmd/pcap2pkt). `go test
// ./...` runs packages in parallel; on a 2-core machine one package's bulk
// transfers would otherwise make the other's timing checks fail.
const KernelTestLock = "/tmp/pcap2pkt-kernel-tests.lock"

// LockKernelTests takes KernelTestLock for the rest of the process, from a
// test binary's TestMain, when it runs as root (the kernel tests run only
// then). It does not when sandboxed (a sandboxed child of a test, whose
// parent holds the lock) or with PCAP2PKT_TEST_LOCK=off, for a developer
// who runs one light test while a long suite holds it. who names the
// tests in the message when the lock cannot be had.
func LockKernelTests(who string, sandboxed bool) {
	if os.Geteuid() != 0 || os.Getenv("PCAP2PKT_TEST_LOCK") == "off" || sandboxed {
		return
	}
	// A descriptor of its own, not an *os.File, whose finalizer would
	// close it (and drop the lock) once nothing refers to it; it stays open
	// until the process exits.
	fd, err := unix.Open(KernelTestLock, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	ancestor, err := lockUnlessAncestorHolds(fd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: %v (running without it)\n", who, KernelTestLock, err)
		return
	}
	if !ancestor {
		// Holding the lock itself: nothing else is changing the host's
		// settings now, so a journal left behind is a dead run's.
		restoreFromJournal(who)
	}
}

// lockUnlessAncestorHolds takes the lock, unless a process this one descends
// from holds it: `flock LOCKFILE go test -bench ...`, as the house runs long
// benchmarks and fuzzing, holds it for this binary, which would otherwise
// wait for its own parent for ever. ancestor reports that case.
func lockUnlessAncestorHolds(fd int) (ancestor bool, err error) {
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err != unix.EWOULDBLOCK {
		return false, err
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && ancestorHolds(st.Ino) {
		return true, nil
	}
	return false, unix.Flock(fd, unix.LOCK_EX)
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
