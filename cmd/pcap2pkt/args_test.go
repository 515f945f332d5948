package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	app := newApp(nil, nil, nil)
	cases := []struct{ in, want string }{
		{"replay bad.pkt --dry_run", "replay --dry_run bad.pkt"},
		{"cap.pcap -o z.pkt", "-o z.pkt cap.pcap"},
		{"cap.pcap --flow 2 --strict -o dir/", "--flow 2 --strict -o dir/ cap.pcap"},
		{"--local 10.0.0.1 flows cap.pcap", "--local 10.0.0.1 flows cap.pcap"},
		{"flows cap.pcap --local 10.0.0.1", "flows --local 10.0.0.1 cap.pcap"},
		{"replay a.pkt -D X=1 b.pkt -j 2", "replay -D X=1 -j 2 a.pkt b.pkt"},
		{"replay --tolerance_usecs=9 a.pkt", "replay --tolerance_usecs=9 a.pkt"},
		{"fmt -w -- -odd.pkt", "fmt -w -- -odd.pkt"},
		{"fmt a.pkt -d -", "fmt -d a.pkt -"},
		{"help replay", "replay --help"},
		{"help", "--help"},
		{"packetdrill t.pkt --mtu 1400", "packetdrill t.pkt --mtu 1400"},
		{"-o x.pkt -", "-o x.pkt -"},
	}
	for _, c := range cases {
		got := normalizeArgs(app, append([]string{"pcap2pkt"}, strings.Fields(c.in)...))
		want := append([]string{"pcap2pkt"}, strings.Fields(c.want)...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q -> %q, want %q", c.in, got[1:], want[1:])
		}
	}
}

func TestArgumentsAsTyped(t *testing.T) {
	needShared(t, seedCapture)
	dir := t.TempDir()
	out := filepath.Join(dir, "z.pkt")
	if code, _, errs := runCLI(t, seedCapture, "-o", out, "--strict"); code != exitOK {
		t.Fatalf("flags after the capture: exit %d, stderr %q", code, errs)
	}
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), "socket(") {
		t.Errorf("-o after the capture wrote %q, %v", b, err)
	}
	if code, _, errs := runCLI(t, "replay", out, "--dry_run"); code != exitOK {
		t.Errorf("replay SCRIPT --dry_run: exit %d, stderr %q", code, errs)
	}

	code, stdout, _ := runCLI(t, "help", "replay")
	if code != exitOK || !strings.Contains(stdout, "pcap2pkt replay - run packetdrill scripts") {
		t.Errorf("help replay: exit %d, stdout %q", code, stdout)
	}
	code, _, errs := runCLI(t, "flow", "x.pcap")
	if code != exitInput || !strings.Contains(errs, "did you mean 'pcap2pkt flows'?") {
		t.Errorf("typo of a command: exit %d, stderr %q", code, errs)
	}
	code, stdout, errs = runCLI(t)
	if code != exitInput || stdout != "" || !strings.Contains(errs, "usage:") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q", code, stdout, errs)
	}
	_, stdout, _ = runCLI(t, "--help")
	for _, bad := range []string{"(default: false)", "(default: 0)"} {
		if strings.Contains(stdout, bad) {
			t.Errorf("--help shows %s:\n%s", bad, stdout)
		}
	}
	// Counts and durations below 1 are usage errors, named, before any
	// work: not a run that silently takes 1, or a timeout that fails it.
	for _, args := range [][]string{
		{"verify", "--attempts", "0", seedCapture},
		{"verify", "-j", "-1", seedCapture},
		{"verify", "--timeout", "-5s", seedCapture},
		{"replay", "--timeout", "0s", out},
		{"replay", "--jobs", "0", out},
	} {
		code, _, errs := runCLI(t, args...)
		if code != exitInput || !strings.Contains(errs, "--"+strings.TrimLeft(args[1], "-")) || !strings.Contains(errs, "must be") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

func TestOutputErrors(t *testing.T) {
	needShared(t, seedCapture)
	missing := filepath.Join(t.TempDir(), "nodir", "x.pkt")
	code, _, errs := runCLI(t, "-o", missing, seedCapture)
	if code != exitInput || !strings.Contains(errs, "x.pkt: cannot create a file in ") || strings.Contains(errs, ".x.pkt.") {
		t.Errorf("-o nodir/x.pkt: exit %d, stderr %q", code, errs)
	}
	text := writeTemp(t, "three.txt", "abc")
	if code, _, errs := runCLI(t, text); code != exitInput || !strings.Contains(errs, "not a pcap or pcapng file") {
		t.Errorf("3-byte text file: exit %d, stderr %q", code, errs)
	}
	data, err := os.ReadFile(seedCapture)
	if err != nil {
		t.Fatal(err)
	}
	cut := writeTemp(t, "cut.pcap", string(data[:2]))
	if code, _, errs := runCLI(t, cut); code != exitDamaged {
		t.Errorf("capture cut inside its magic number: exit %d, stderr %q", code, errs)
	}
}

// TestFlowSelection: --flow takes a number, both ends, one end or a port,
// and with -o DIR/ writes only what it names.
func TestFlowSelection(t *testing.T) {
	capFile := "../../../shared/captures/public/tcpdump__dns_tcp.pcap"
	needShared(t, capFile)
	for _, sel := range []string{"1", "192.168.1.11:33779-209.87.249.18:53", "209.87.249.18:53-192.168.1.11:33779", ":53", "209.87.249.18"} {
		if code, out, errs := runCLI(t, "--flow", sel, capFile); code != exitOK || !strings.Contains(out, "flow 1.") {
			t.Errorf("--flow %s: exit %d, stderr %q", sel, code, errs)
		}
	}
	for _, sel := range []string{"2", ":80", "10.0.0.1:53-10.0.0.2:1"} {
		if code, _, errs := runCLI(t, "--flow", sel, capFile); code != exitInput || !strings.Contains(errs, "no flow "+sel) {
			t.Errorf("--flow %s: exit %d, stderr %q", sel, code, errs)
		}
	}
	if code, _, errs := runCLI(t, "--flow", "1-2-3", capFile); code != exitInput || !strings.Contains(errs, "want N, IP:PORT-IP:PORT") {
		t.Errorf("--flow 1-2-3: exit %d, stderr %q", code, errs)
	}

	// Three connections to one server port: a port names them all, and
	// with -o DIR/ only the one named is written.
	tfo := "../../../shared/captures/public/tcpdump__tfo-5c1fa7f9ae91.pcap"
	needShared(t, tfo)
	if code, _, errs := runCLI(t, "--flow", ":13054", tfo); code != exitInput || !strings.Contains(errs, "names 3 connections (1, 2, 3)") {
		t.Errorf("--flow naming three: exit %d, stderr %q", code, errs)
	}
	dir := t.TempDir() + "/"
	if code, _, errs := runCLI(t, "--flow", "2", "-o", dir, tfo); code != exitOK {
		t.Fatalf("--flow 2 -o DIR/: exit %d, stderr %q", code, errs)
	}
	names, _ := filepath.Glob(dir + "*.pkt")
	index, _ := os.ReadFile(dir + "index.tsv")
	if len(names) != 1 || !strings.Contains(filepath.Base(names[0]), "2") || strings.Count(string(index), "\n") != 2 {
		t.Errorf("--flow 2 -o DIR/ wrote %v and index %q", names, index)
	}
}
