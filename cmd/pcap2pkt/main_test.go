package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command line in-process and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = run(append([]string{"pcap2pkt"}, args...), strings.NewReader(""), &out, &errw)
	return code, out.String(), errw.String()
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const messy = `0  socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  bind(3, ..., ...) = 0 // bind
+.1 listen(3,1) = 0
`

const tidy = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0 // bind
+.1 listen(3, 1) = 0
`

func TestFmt(t *testing.T) {
	p := writeTemp(t, "a.pkt", messy)
	code, out, errs := runCLI(t, "fmt", p)
	if code != exitOK || out != tidy || errs != "" {
		t.Fatalf("fmt: code %d, stdout %q, stderr %q", code, out, errs)
	}

	code, out, _ = runCLI(t, "fmt", "-l", p, seedScript)
	if code != exitOK || out != p+"\n"+seedScript+"\n" {
		t.Errorf("fmt -l: code %d, %q", code, out)
	}
	var so, se bytes.Buffer
	code = run([]string{"pcap2pkt", "fmt", "-"}, strings.NewReader(messy), &so, &se)
	if code != exitOK || so.String() != tidy {
		t.Errorf("fmt -: code %d, stdout %q, stderr %q", code, so.String(), se.String())
	}
	se.Reset()
	code = run([]string{"pcap2pkt", "check", "-"}, strings.NewReader("0 socket(\n"), &so, &se)
	if code != exitInput || !strings.HasPrefix(se.String(), "<standard input>:1:") {
		t.Errorf("check -: code %d, stderr %q", code, se.String())
	}

	code, out, _ = runCLI(t, "fmt", "-d", p)
	if code != exitFail || !strings.Contains(out, "\n-+.1 listen(3,1) = 0\n") || !strings.Contains(out, "\n++.1 listen(3, 1) = 0\n") {
		t.Fatalf("fmt -d: code %d, diff:\n%s", code, out)
	}

	if code, out, errs = runCLI(t, "fmt", "-w", p); code != exitOK || out != "" {
		t.Fatalf("fmt -w: code %d, stdout %q, stderr %q", code, out, errs)
	}
	got, _ := os.ReadFile(p)
	if string(got) != tidy {
		t.Fatalf("fmt -w wrote %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*")); len(left) != 0 {
		t.Errorf("fmt -w left temporary files: %v", left)
	}
	if code, out, _ = runCLI(t, "fmt", "-d", p); code != exitOK || out != "" {
		t.Errorf("fmt -d of a formatted file: code %d, %q", code, out)
	}
}

// TestFmtSymbols: fmt needs no -D, and with -D a symbol still prints as
// written; check and replay still need the definition.
func TestFmtSymbols(t *testing.T) {
	const src = `   0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
  +0 < S 0:10(10) win 32792 <mss MSS,sackOK,nop,nop,FO TFO_COOKIE,nop,nop>
`
	p := writeTemp(t, "sym.pkt", src)
	for _, args := range [][]string{{"fmt", p}, {"fmt", "-D", "MSS=1440", "-D", "TFO_COOKIE=3021b9d889017eeb", p}} {
		if code, out, errs := runCLI(t, args...); code != exitOK || out != src {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	if code, _, errs := runCLI(t, "check", p); code != exitInput || !strings.Contains(errs, "-D MSS=VALUE") {
		t.Errorf("check without -D: code %d, stderr %q", code, errs)
	}
}

func TestFmtKeepsBadFileUntouched(t *testing.T) {
	p := writeTemp(t, "bad.pkt", "0 socket(..., SOCK_STREAM = 3\n")
	code, _, errs := runCLI(t, "fmt", "-w", p)
	if code != exitInput || !strings.Contains(errs, "bad.pkt:1:") {
		t.Fatalf("fmt -w of a bad script: code %d, stderr %q", code, errs)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "0 socket(..., SOCK_STREAM = 3\n" {
		t.Errorf("bad file was rewritten: %q", got)
	}
}

func TestCheck(t *testing.T) {
	good := writeTemp(t, "good.pkt", tidy)
	bad := writeTemp(t, "bad.pkt", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) wn 4000\n+0 > Q 0:0(0) ack 1\n")
	cases := []struct {
		name     string
		args     []string
		code     int
		stderrIn []string
	}{
		{"clean", []string{"check", good}, exitOK, nil},
		{"errors on two lines", []string{"check", bad}, exitInput, []string{"bad.pkt:2:", "bad.pkt:3:"}},
		{"missing file", []string{"check", filepath.Join(t.TempDir(), "nope.pkt")}, exitInput, []string{"nope.pkt: no such file"}},
		{"no arguments", []string{"check"}, exitInput, []string{"no script given"}},
		{"unknown flag", []string{"check", "--frobnicate", good}, exitInput, []string{"-frobnicate", "pcap2pkt check --help"}},
		{"binary file", []string{"check", writeTemp(t, "bin.pkt", "\x7fELF\x00\x01")}, exitInput, []string{"bin.pkt:"}},
		{"empty file", []string{"check", writeTemp(t, "empty.pkt", "")}, exitInput, []string{"empty.pkt:"}},
		{"10 MB line", []string{"check", writeTemp(t, "long.pkt", "0 "+strings.Repeat("x", 10<<20)+"\n")}, exitInput, []string{"long.pkt:1:", `xxx..."`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, c.code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if len(errs) > 300 {
				t.Errorf("stderr is %d bytes long; messages must quote long input shortened", len(errs))
			}
			for _, s := range c.stderrIn {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr %q lacks %q", errs, s)
				}
			}
		})
	}
}
