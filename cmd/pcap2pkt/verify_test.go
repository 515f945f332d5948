package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestVerifyInputErrors(t *testing.T) {
	needShared(t, seedCapture)
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no capture", []string{"verify"}, "want one capture"},
		{"missing", []string{"verify", filepath.Join(t.TempDir(), "none.pcap")}, "no such file"},
		{"no such flow", []string{"verify", "--flow", "9", seedCapture}, "no flow 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runCLI(t, c.args...)
			if code != exitInput || !strings.Contains(errs, c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, exitInput, c.stderr)
			}
		})
	}
}

// TestVerifySeed: the seed capture, made by the reference on a kernel like
// this one, verifies; --keep leaves the script and the replay's capture.
// The tolerance covers the kernel's delayed ACK of the FIN (see
// TestReplaySeed): this test is about the command's plumbing.
func TestVerifySeed(t *testing.T) {
	needShared(t, seedCapture)
	requireReplay(t)
	bin := buildCLI(t)
	keep := t.TempDir()
	code, out, errs := execCLI(t, bin, "verify", "--tolerance_usecs=20000", "--keep", keep, seedCapture)
	if code != exitOK || !strings.Contains(out, "pass") {
		t.Fatalf("verify: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	names, _ := filepath.Glob(filepath.Join(keep, "flow001_*"))
	if len(names) != 2 {
		t.Errorf("--keep left %v, want the script and the replay's pcap", names)
	}
	for _, n := range names {
		if fi, err := os.Stat(n); err != nil || fi.Size() == 0 {
			t.Errorf("%s: empty or missing (%v)", n, err)
		}
	}

	// --plot: the graph overlays the replay; with a tolerance of 1 µs the
	// replay fails, and the graph marks the line the report names.
	plots := t.TempDir()
	code, out, errs = execCLI(t, bin, "verify", "--tolerance_usecs=1", "--plot", plots, seedCapture)
	svgs, _ := filepath.Glob(filepath.Join(plots, "flow001_*.svg"))
	if code != exitFail || len(svgs) != 1 {
		t.Fatalf("verify --plot: exit %d, graphs %v\nstdout:\n%s\nstderr:\n%s", code, svgs, out, errs)
	}
	svg := validSVG(t, svgs[0])
	m := regexp.MustCompile(`\.pkt:(\d+): `).FindStringSubmatch(out)
	if m == nil || !strings.Contains(svg, "first difference (line "+m[1]+")") {
		t.Errorf("the graph does not mark the report's line %v\n%s", m, out)
	}
	// Within 1 µs the first difference can also be the bind, a few µs
	// late on a busy machine, before any packet: then nothing was replayed.
	if !strings.Contains(out, "expected system call") && !strings.Contains(svg, "replayed: ACKs") {
		t.Errorf("the graph lacks the replay\n%s", out)
	}
}

// TestVerifyNothingVerified: a capture whose only connection starts
// mid-stream verifies nothing, which must not look like a pass.
func TestVerifyNothingVerified(t *testing.T) {
	const midstream = "../../../shared/captures/local/midstream_no_handshake_cliside_eth.pcap"
	needShared(t, midstream)
	requireReplay(t)
	code, out, errs := runCLI(t, "verify", midstream)
	if code != exitFail || !strings.Contains(out, "skipped") || !strings.Contains(errs, "0 of 1 connection(s) verified") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(out, "--allow-partial") {
		t.Errorf("the skip does not name the flag that verifies it:\n%s", out)
	}
}

// TestVerifyPartial: with --allow-partial, verify replays a connection
// captured mid-stream on a made-up handshake, and it passes: the kernel's
// own MSS and window scale are the guesses' wildcards (a guessed wscale 7
// failed against this host's 10), the rest is the captured packets.
func TestVerifyPartial(t *testing.T) {
	const midstream = "../../../shared/captures/local/midstream_no_handshake_cliside_eth.pcap"
	needShared(t, midstream)
	requireReplay(t)
	code, out, errs := execCLI(t, buildCLI(t), "verify", "--allow-partial", midstream)
	if code != exitOK || !strings.Contains(out, " pass ") || !strings.Contains(errs+out, "1 passed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// TestVerifyJobs: replaying a capture's connections two at a time gives
// the table of one at a time, in flow order, and says how long it took.
func TestVerifyJobs(t *testing.T) {
	const refused = "../../../shared/captures/local/conn_refused_srvside_eth.pcap"
	needShared(t, refused)
	requireReplay(t)
	bin := buildCLI(t)
	table := func(jobs string) string {
		code, out, errs := execCLI(t, bin, "verify", "-j", jobs, refused)
		summary := regexp.MustCompile(`(?m)^2 connection\(s\): 2 passed, 0 failed; [0-9.]+s, ` + jobs + ` at a time\n\z`)
		if code != exitOK || !summary.MatchString(out) {
			t.Fatalf("verify -j %s: exit %d\nstdout:\n%s\nstderr:\n%s", jobs, code, out, errs)
		}
		return summary.ReplaceAllString(out, "")
	}
	if one, two := table("1"), table("2"); one != two {
		t.Errorf("-j 1:\n%s\n-j 2:\n%s", one, two)
	}
}

// TestUntilPass pins --attempts: a failing replay runs again until one
// passes or the attempts are used up; an error (not a failure) is not
// retried; every failure's first difference is kept, in order.
func TestUntilPass(t *testing.T) {
	type run struct {
		diff string
		fail bool
	}
	cases := []struct {
		name       string
		n          int
		runs       []run
		wantRuns   int
		wantFailed []string
		wantLast   run
	}{
		{"passes at once", 3, []run{{"", false}}, 1, nil, run{"", false}},
		{"passes on the second", 3, []run{{"a:1", true}, {"", false}}, 2, []string{"a:1"}, run{"", false}},
		{"fails every one", 3, []run{{"a:1", true}, {"a:2", true}, {"a:3", true}, {"", false}}, 3, []string{"a:1", "a:2", "a:3"}, run{"a:3", true}},
		{"one attempt", 1, []run{{"a:1", true}, {"", false}}, 1, []string{"a:1"}, run{"a:1", true}},
		{"zero means one", 0, []run{{"a:1", true}, {"", false}}, 1, []string{"a:1"}, run{"a:1", true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := 0
			last, failed, runs := untilPass(context.Background(), max(1, c.n), func() run { k++; return c.runs[k-1] },
				func(r run) (string, bool) { return r.diff, r.fail })
			if runs != c.wantRuns || last != c.wantLast || !slices.Equal(failed, c.wantFailed) {
				t.Errorf("got runs %d, last %v, failed %q; want %d, %v, %q", runs, last, failed, c.wantRuns, c.wantLast, c.wantFailed)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, runs := untilPass(ctx, 3, func() bool { return true }, func(bool) (string, bool) { return "x", true }); runs != 1 {
		t.Errorf("an ended context still ran %d replays", runs)
	}
}
