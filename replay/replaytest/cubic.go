package replaytest

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// The kernel tests that run upstream scripts add cubic to the host's
// allowed congestion control algorithms for their run (a new namespace can
// only pick an allowed one, and upstream's defaults.sh asks for cubic) and
// take it out again in their cleanup. A test binary that dies first (killed,
// or go test's -timeout, which panics past every cleanup) would leave the
// host changed; so the list as it was is kept in a journal while cubic is
// added, and whoever takes the kernel-test lock next puts it back.

// allowedCCPath is the host's list; ccJournal holds it as it was while a
// test has added cubic. Variables for the tests of this file.
var (
	allowedCCPath = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
	ccJournal     = "/tmp/pcap2pkt-allowed-cc.was"
)

// AllowCubic adds cubic to the host's allowed algorithms unless it is
// there. It returns the list as it was and whether it added cubic; the
// caller restores the list with RestoreAllowed when it added it. Call it
// only while holding the kernel-test lock (a test binary's TestMain takes
// it).
func AllowCubic() (was []string, added bool, err error) {
	old, err := os.ReadFile(allowedCCPath)
	if err != nil {
		return nil, false, err
	}
	was = strings.Fields(string(old))
	if slices.Contains(was, "cubic") {
		return was, false, nil
	}
	if err := os.WriteFile(ccJournal, []byte(strings.Join(was, " ")+"\n"), 0o600); err != nil {
		return was, false, fmt.Errorf("writing the journal %s: %w", ccJournal, err)
	}
	next := strings.Join(append(slices.Clone(was), "cubic"), " ")
	if err := os.WriteFile(allowedCCPath, []byte(next), 0o644); err != nil {
		os.Remove(ccJournal)
		return was, false, err
	}
	return was, true, nil
}

// RestoreAllowed writes the list back and removes the journal.
func RestoreAllowed(was []string) error {
	if err := os.WriteFile(allowedCCPath, []byte(strings.Join(was, " ")), 0o644); err != nil {
		return err
	}
	os.Remove(ccJournal)
	return nil
}

// restoreFromJournal puts back a list that a test which died while it had
// cubic added left in the journal. It runs once this process holds the
// lock, so no live test is in the middle of a change.
func restoreFromJournal(who string) {
	was, err := os.ReadFile(ccJournal)
	if err != nil {
		return
	}
	list := strings.Join(strings.Fields(string(was)), " ")
	if list == "" {
		os.Remove(ccJournal)
		return
	}
	if err := os.WriteFile(allowedCCPath, []byte(list), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "%s: restoring %s from %s: %v\n", who, allowedCCPath, ccJournal, err)
		return
	}
	os.Remove(ccJournal)
	fmt.Fprintf(os.Stderr, "%s: restored %s to %q: a test run that had added cubic ended before it could\n", who, allowedCCPath, list)
}
