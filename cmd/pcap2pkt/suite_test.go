package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

func TestFindScripts(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b/2.pkt", "b/1.pkt", "a.pkt", "b/notes.txt", "c/d/3.pkt"} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, nil, 0o644)
	}
	got, err := findScripts([]string{filepath.Join(dir, "b"), filepath.Join(dir, "a.pkt"), filepath.Join(dir, "c")})
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, g := range got {
		r, _ := filepath.Rel(dir, g)
		rel = append(rel, r)
	}
	want := []string{"b/1.pkt", "b/2.pkt", "a.pkt", "c/d/3.pkt"}
	if !reflect.DeepEqual(rel, want) {
		t.Errorf("findScripts = %v, want %v", rel, want)
	}
	if _, err := findScripts([]string{filepath.Join(dir, "nope")}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing path: err = %v", err)
	}
}

func TestFamilies(t *testing.T) {
	if f, err := parseFamilies("all"); err != nil || len(f) != 3 {
		t.Errorf("all: %v, %v", f, err)
	}
	if f, err := parseFamilies("ipv6, ipv4-mapped-v6"); err != nil || !reflect.DeepEqual(f, []string{"ipv6", "ipv4-mapped-ipv6"}) {
		t.Errorf("list: %v, %v", f, err)
	}
	if _, err := parseFamilies("ipx"); err == nil {
		t.Error("unknown family accepted")
	}
	for _, c := range []struct {
		script, family string
		want           bool
	}{
		{"x-v6.pkt", "ipv4", false}, {"x-v6.pkt", "ipv6", true},
		{"x-v4.pkt", "ipv6", false}, {"x-v4.pkt", "ipv4-mapped-ipv6", true},
		{"x.pkt", "ipv6", true}, {"x.pkt", "", true},
	} {
		if got := familyApplies(c.script, c.family); got != c.want {
			t.Errorf("familyApplies(%s, %s) = %v", c.script, c.family, got)
		}
	}
}

func sampleRuns() []*suiteRun {
	return []*suiteRun{
		{Script: "a.pkt", Family: "ipv4", Verdict: "pass", Seconds: 0.2},
		{Script: "b.pkt", Family: "ipv6", Verdict: "fail", Seconds: 0.3, Output: "b.pkt:3: expected ack 2, got ack 1\n",
			Failure: &parser.Error{File: "b.pkt", Pos: parser.Pos{Line: 3}, Msg: "expected ack 2, got ack 1"}},
	}
}

func TestReportFormats(t *testing.T) {
	var buf bytes.Buffer
	if err := writeReport(&buf, "json", sampleRuns(), 0); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Runs   []suiteRun
		Counts map[string]int
	}
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatalf("json: %v\n%s", err, buf.String())
	}
	if len(decoded.Runs) != 2 || decoded.Runs[1].Failure.Pos.Line != 3 || decoded.Counts["fail"] != 1 {
		t.Errorf("json decoded to %+v", decoded)
	}

	buf.Reset()
	if err := writeReport(&buf, "junit", sampleRuns(), 0); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &suite); err != nil {
		t.Fatalf("junit: %v\n%s", err, buf.String())
	}
	if suite.Tests != 2 || suite.Failures != 1 || suite.Cases[1].Failure == nil || suite.Cases[0].Failure != nil {
		t.Errorf("junit decoded to %+v", suite)
	}

	buf.Reset()
	writeReport(&buf, "tap", sampleRuns(), 0)
	for _, want := range []string{"TAP version 13\n1..2\n", "ok 1 - a.pkt (ipv4)\n", "not ok 2 - b.pkt (ipv6)\n", "# 1 passed, 1 failed\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("tap lacks %q:\n%s", want, buf.String())
		}
	}

	buf.Reset()
	writeReport(&buf, "text", sampleRuns(), 0)
	for _, want := range []string{"PASS    a.pkt (ipv4)", "FAIL    b.pkt (ipv6)", "        b.pkt:3: expected ack 2, got ack 1\n", "1 passed, 1 failed in"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestReplaySuite runs a small suite in parallel on the real kernel: one
// script passes, one fails, one hangs past --timeout; the JSON report says
// which, and --capture-dir keeps a pcap per run.
func TestReplaySuite(t *testing.T) {
	requireReplay(t)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const server = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n" +
		"+0 < S 0:0(0) win 4000 <mss 1000>\n"
	write("good.pkt", server+"+0 > S. 0:0(0) ack 1 <...>\n")
	write("bad.pkt", server+"+0 > S. 0:0(0) ack 2 <...>\n")
	write("hang.pkt", "0 `sleep 30`\n")
	caps := filepath.Join(dir, "caps")
	bin := buildCLI(t)
	code, out, errs := execCLI(t, bin, "replay", "-j", "2", "--timeout", "2s", "--format", "json", "--capture-dir", caps, dir)
	if code != exitFail {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitFail, errs)
	}
	var report struct{ Runs []suiteRun }
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range report.Runs {
		got[filepath.Base(r.Script)] = r.Verdict
	}
	want := map[string]string{"good.pkt": "pass", "bad.pkt": "fail", "hang.pkt": "timeout"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts %v, want %v", got, want)
	}
	if pcaps, _ := filepath.Glob(filepath.Join(caps, "*.pcap")); len(pcaps) < 2 {
		t.Errorf("--capture-dir has %v", pcaps)
	}
}

// TestSuiteDryRunFamilies: a dry run checks each script with its family's
// arguments, as the runs would: CODE is defined for ipv4 only, so an ICMP
// line using it is fine there and a semantic error under ipv6.
func TestSuiteDryRunFamilies(t *testing.T) {
	p := writeTemp(t, "icmp.pkt", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < icmp unreachable CODE [1:1(0)]\n")
	if code, _, errs := runCLI(t, "replay", "--families=ipv4", "--dry_run", p); code != exitOK {
		t.Errorf("ipv4: exit %d, stderr %q", code, errs)
	}
	code, _, errs := runCLI(t, "replay", "--families=ipv4,ipv6", "--dry_run", p)
	if code != exitInput || !strings.Contains(errs, "icmp.pkt:2:") || !strings.Contains(errs, "[ipv6]") || strings.Contains(errs, "[ipv4]") {
		t.Errorf("ipv4,ipv6: exit %d, stderr %q", code, errs)
	}
}
