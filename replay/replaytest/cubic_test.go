package replaytest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCubicJournal: adding cubic keeps the list as it was in the journal
// until it is restored; a journal a dead run left is put back by the next
// holder of the lock. Files in a temporary folder stand for the host's.
func TestCubicJournal(t *testing.T) {
	dir := t.TempDir()
	oldPath, oldJournal := allowedCCPath, ccJournal
	t.Cleanup(func() { allowedCCPath, ccJournal = oldPath, oldJournal })
	allowedCCPath, ccJournal = filepath.Join(dir, "allowed"), filepath.Join(dir, "journal")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "(none)"
		}
		return string(b)
	}
	os.WriteFile(allowedCCPath, []byte("reno bbr\n"), 0o644)

	was, added, err := AllowCubic()
	if err != nil || !added || len(was) != 2 {
		t.Fatalf("AllowCubic: %v %v %v", was, added, err)
	}
	if got := read(allowedCCPath); got != "reno bbr cubic" {
		t.Fatalf("allowed %q", got)
	}
	if got := read(ccJournal); got != "reno bbr\n" {
		t.Fatalf("journal %q", got)
	}
	if _, again, _ := AllowCubic(); again {
		t.Fatal("cubic added twice")
	}

	// The run dies here: the next holder of the lock restores the list.
	restoreFromJournal("test")
	if got := read(allowedCCPath); got != "reno bbr" {
		t.Fatalf("after the journal: allowed %q", got)
	}
	if got := read(ccJournal); got != "(none)" {
		t.Fatalf("journal left: %q", got)
	}

	// A run that ends normally restores it itself and leaves no journal.
	was, _, _ = AllowCubic()
	if err := RestoreAllowed(was); err != nil {
		t.Fatal(err)
	}
	if read(allowedCCPath) != "reno bbr" || read(ccJournal) != "(none)" {
		t.Fatalf("after RestoreAllowed: allowed %q, journal %q", read(allowedCCPath), read(ccJournal))
	}
}
