package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const seedScript = "../../../shared/seed/article.pkt"

// buildCLI builds the pcap2pkt binary once per test binary run: replay
// re-executes itself into a network namespace, which the test binary cannot
// stand in for.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pcap2pkt")
	buildCLITo(t, bin)
	return bin
}

func buildCLITo(t testing.TB, bin string) {
	t.Helper()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

func requireReplay(t *testing.T) {
	t.Helper()
	// These tests make namespaces of their own, change host settings and
	// take the kernel-test lock, as root; replay without root is
	// TestReplayWithoutRoot's.
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := canReplay(); err != nil {
		t.Skipf("replay cannot run here: %v", err)
	}
}

func execCLI(t testing.TB, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errw.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errw.String()
}

func TestReplayInputErrors(t *testing.T) {
	bad := writeTemp(t, "bad.pkt", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) wn 4000\n")
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"parse error", []string{"replay", bad}, "bad.pkt:2:"},
		{"missing", []string{"replay", filepath.Join(t.TempDir(), "none.pkt")}, "none.pkt: no such file"},
		{"no script", []string{"replay"}, "no script given"},
		{"bad option value", []string{"replay", "--ip_version=ipv5", bad}, "ipv5"},
		{"bad define", []string{"replay", "-D", "NOVALUE", bad}, "NAME=VALUE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, c.args...)
			if code != exitInput || out != "" || !strings.Contains(errs, c.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, exitInput, c.stderr)
			}
		})
	}
}

// TestReplaySeed runs the seed article's script (without its 10 s sleep)
// through the real CLI: it passes and prints "finish"; with one outbound
// packet's ack changed it fails at that line, naming the field; and its
// --capture turns back into a script that replays.
func TestReplaySeed(t *testing.T) {
	needShared(t, seedScript)
	requireReplay(t)
	src, err := os.ReadFile(seedScript)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(src), "+0 `sleep 10`\n", "", 1)
	dir := t.TempDir()
	script := filepath.Join(dir, "article.pkt")
	if err := os.WriteFile(script, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := buildCLI(t)

	// This test is about the command line's plumbing. The kernel delays
	// its ACK of the FIN by one or two jiffies (a delayed-ACK timer: 3 or
	// 7 ms at HZ=250), past packetdrill's default 4 ms tolerance; the
	// replay package's own tests hold the timing.
	const tolerance = "--tolerance_usecs=20000"
	pcap := filepath.Join(dir, "run.pcap")
	code, out, errs := execCLI(t, bin, "replay", tolerance, "--capture", pcap, script)
	if code != exitOK || out != "finish\n" {
		t.Fatalf("replay: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	mutated := filepath.Join(dir, "mutated.pkt")
	bad := strings.Replace(short, "+0 > .11:11(0) ack 2", "+0 > .11:11(0) ack 3", 1)
	if err := os.WriteFile(mutated, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = execCLI(t, bin, "replay", tolerance, mutated)
	if code != exitFail || !strings.Contains(errs, "mutated.pkt:19: expected ack 3, got ack 2") {
		t.Errorf("mutated replay: exit %d, stderr %q", code, errs)
	}

	code, synthesised, errs := execCLI(t, bin, pcap)
	if code != exitOK {
		t.Fatalf("synthesis of the replay's capture: exit %d, stderr %q", code, errs)
	}
	again := filepath.Join(dir, "again.pkt")
	if err := os.WriteFile(again, []byte(synthesised), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs = execCLI(t, bin, "replay", tolerance, again); code != exitOK {
		t.Errorf("replay of the synthesised script: exit %d, stderr %q\nscript:\n%s", code, errs, synthesised)
	}
}
