package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallStatic runs the README's install command (building into a
// temporary folder instead of installing) and checks that the result is a
// static binary: no program interpreter, no shared libraries.
func TestInstallStatic(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.Contains(l, "go install") && strings.Contains(l, "./cmd/pcap2pkt") {
			line, _, _ = strings.Cut(l, "#")
			break
		}
	}
	if line == "" {
		t.Fatal("no install command in README.md")
	}
	bin := filepath.Join(t.TempDir(), "pcap2pkt")
	build := strings.Replace(strings.TrimSpace(line), "go install", "go build -o "+bin, 1)
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: the binary has a %v segment: it is not static", build, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: the binary needs %v", build, libs)
	}
}
