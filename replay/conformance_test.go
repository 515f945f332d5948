package replay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

// The conformance test runs the reference's own test corpus the way
// upstream runs it (one fresh network namespace per script, the script's
// folder as working directory, upstream's arguments for the family) and
// compares with the reference's verdicts on this kind of machine. It fails
// only when a script listed in testdata/conformance-<family>.txt (the
// scripts we pass) fails, so it guards against regressions while the rest
// is reported. The family is ipv4 unless PCAP2PKT_CONFORMANCE_FAMILY names
// others: a comma-separated list of ipv4, ipv4-mapped-ipv6 and ipv6, or
// "all" (one subtest per family; each takes about as long as ipv4).
//
// It needs root, /dev/net/tun and the shared corpus (it skips, saying why,
// without them), takes a few minutes, and adds cubic to a host-wide sysctl
// for its duration; `go test -short` skips it. PCAP2PKT_CONFORMANCE may
// name the folders to run ("blocking,close"); unset or "1" runs them all.

const (
	conformanceRoot      = "../../shared/conformance/packetdrill/gtests/net"
	conformanceVerdicts  = "../../shared/conformance/reference-verdicts.tsv"
	conformanceFamilyEnv = "PCAP2PKT_CONFORMANCE_FAMILY"
	conformanceEnv       = "PCAP2PKT_CONFORMANCE"
	conformanceChildEnv  = "PCAP2PKT_CONFORMANCE_SCRIPT"
)

// conformanceArgs are upstream's arguments per family (run_all.py).
var conformanceArgs = map[string][]string{
	"ipv4": {
		"send_omit_free=", "ip_version=ipv4", "local_ip=192.168.0.1",
		"gateway_ip=192.168.0.1", "netmask_ip=255.255.0.0", "remote_ip=192.0.2.1",
		"define=TFO_COOKIE=3021b9d889017eeb", "define=CODE=host_unreachable",
		"define=CMSG_LEVEL_IP=SOL_IP", "define=CMSG_TYPE_RECVERR=IP_RECVERR",
	},
	"ipv4-mapped-ipv6": {
		"send_omit_free=", "ip_version=ipv4-mapped-ipv6", "local_ip=192.168.0.1",
		"gateway_ip=192.168.0.1", "netmask_ip=255.255.0.0", "remote_ip=192.0.2.1",
		"define=TFO_COOKIE=3021b9d889017eeb", "define=CODE=host_unreachable",
		"define=CMSG_LEVEL_IP=SOL_IPV6", "define=CMSG_TYPE_RECVERR=IPV6_RECVERR",
	},
	"ipv6": {
		"send_omit_free=", "ip_version=ipv6", "mtu=1520", "local_ip=fd3d:0a0b:17d6::1",
		"gateway_ip=fd3d:0a0b:17d6:8888::1", "remote_ip=fd3d:fa7b:d17d::1",
		"define=TFO_COOKIE=c1d1e9742a47a9bc", "define=CMSG_LEVEL_IP=SOL_IPV6",
		"define=CMSG_TYPE_RECVERR=IPV6_RECVERR",
	},
}

// conformanceFamily is the family of the run: PCAP2PKT_CONFORMANCE_FAMILY,
// ipv4 by default. The parent sets it for each child it starts.
func conformanceFamily(t *testing.T) string {
	f := conformanceFamilies(t)
	if len(f) != 1 {
		t.Fatalf("%s=%s: a child runs one family", conformanceFamilyEnv, os.Getenv(conformanceFamilyEnv))
	}
	return f[0]
}

// conformanceFamilies are the families PCAP2PKT_CONFORMANCE_FAMILY asks
// for, in upstream's order.
func conformanceFamilies(t *testing.T) []string {
	v := os.Getenv(conformanceFamilyEnv)
	switch v {
	case "":
		return []string{"ipv4"}
	case "all":
		return []string{"ipv4", "ipv4-mapped-ipv6", "ipv6"}
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if _, ok := conformanceArgs[f]; !ok {
			t.Fatalf("%s=%s: want all or a list of ipv4, ipv4-mapped-ipv6, ipv6", conformanceFamilyEnv, v)
		}
		out = append(out, f)
	}
	return out
}

// expectedPath lists the scripts a family passes.
func expectedPath(family string) string { return "testdata/conformance-" + family + ".txt" }

// refVerdict is one line of reference-verdicts.tsv.
type refVerdict struct {
	pass   bool
	wall   float64
	reason string // the reason class of a failure, e.g. "timing(HZ=250/VM jitter)"
}

func readVerdicts(t *testing.T, family string) map[string]refVerdict {
	t.Helper()
	f, err := os.Open(conformanceVerdicts)
	if err != nil {
		t.Skipf("skipping: reference verdicts missing: %v", err)
	}
	defer f.Close()
	v := map[string]refVerdict{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 5 || cols[1] != family {
			continue
		}
		wall, _ := strconv.ParseFloat(cols[4], 64)
		rv := refVerdict{pass: cols[3] == "pass", wall: wall}
		if len(cols) > 8 {
			rv.reason = cols[8]
		}
		v[cols[0]] = rv
	}
	return v
}

func readExpected(t *testing.T, family string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(expectedPath(family))
	if err != nil {
		t.Logf("no list of expected passes for %s (%v): reporting only", family, err)
		return map[string]bool{}
	}
	m := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
}

// ensureCubicAllowed adds cubic to the host's allowed congestion control
// algorithms (a new namespace can only pick allowed ones, and defaults.sh
// asks for cubic) and returns the function that restores the old list.
func ensureCubicAllowed(t *testing.T) func() {
	t.Helper()
	was, added, err := replaytest.AllowCubic()
	switch {
	case err != nil:
		t.Logf("WARNING: cannot add cubic to net.ipv4.tcp_allowed_congestion_control: %v; cubic tests will run under the default algorithm", err)
		return func() {}
	case !added:
		t.Logf("cubic already in net.ipv4.tcp_allowed_congestion_control (%s)", strings.Join(was, " "))
		return func() {}
	}
	t.Logf("set host sysctl net.ipv4.tcp_allowed_congestion_control=%q (was %q) for the run, as the reference verdicts were taken", strings.Join(was, " ")+" cubic", strings.Join(was, " "))
	return func() {
		if err := replaytest.RestoreAllowed(was); err != nil {
			t.Errorf("restoring net.ipv4.tcp_allowed_congestion_control: %v", err)
		} else {
			t.Logf("restored net.ipv4.tcp_allowed_congestion_control=%q", strings.Join(was, " "))
		}
	}
}

// conformanceScripts lists the tcp scripts, relative to conformanceRoot.
func conformanceScripts(t *testing.T, folders map[string]bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(conformanceRoot, "tcp"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".pkt") {
			return nil
		}
		rel, _ := filepath.Rel(conformanceRoot, p)
		folder := strings.Split(rel, "/")[1]
		if folders == nil || folders[folder] {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Skipf("skipping: conformance corpus missing: %v", err)
	}
	sort.Strings(out)
	return out
}

// conformanceParent skips a conformance run in -short mode (it takes
// minutes) and inside the sandbox (the parent starts a sandbox per script).
func conformanceParent(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping in -short mode: running the reference corpus takes minutes")
	}
	if InSandbox() {
		t.Skip("the parent runs outside the sandbox")
	}
	requireTUN(t)
}

func TestConformance(t *testing.T) {
	conformanceParent(t)
	sel := os.Getenv(conformanceEnv)
	var folders map[string]bool
	if sel != "" && sel != "1" {
		folders = map[string]bool{}
		for _, f := range strings.Split(sel, ",") {
			folders[strings.TrimSpace(f)] = true
		}
	}
	families := conformanceFamilies(t)
	scripts := conformanceScripts(t, folders)
	root := copyCorpus(t)
	defer ensureCubicAllowed(t)()
	if len(families) == 1 {
		conformanceRun(t, families[0], root, scripts)
		return
	}
	for _, family := range families {
		t.Run(family, func(t *testing.T) { conformanceRun(t, family, root, scripts) })
	}
}

// conformanceRun runs the scripts (relative to root, a copy of the corpus)
// for one family and fails on regressions from its list of passes.
func conformanceRun(t *testing.T, family, root string, scripts []string) {
	verdicts := readVerdicts(t, family)
	expected := readExpected(t, family)

	type count struct{ ours, ref, total int }
	perFolder := map[string]*count{}
	var passed, fixed []string
	timing := timingStats{}
	for _, rel := range scripts {
		if _, ok := verdicts[rel]; !ok {
			t.Logf("skipping %s: upstream does not run it for %s", rel, family)
			continue
		}
		folder := strings.Split(rel, "/")[1]
		c := perFolder[folder]
		if c == nil {
			c = &count{}
			perFolder[folder] = c
		}
		ref := verdicts[rel]
		c.total++
		if ref.pass {
			c.ref++
		}
		timeout := time.Duration(max(3*ref.wall, 30) * float64(time.Second))
		ok, out := runConformanceChild(t, family, filepath.Join(root, rel), timeout)
		timing.add(out)
		// A listed script gets two more tries: on a shared machine a
		// timing failure is often the machine's, not the engine's.
		for try := 0; !ok && expected[rel] && try < 2; try++ {
			t.Logf("listed script %s failed, retrying:\n%s", rel, lastLines(out, 4))
			ok, out = runConformanceChild(t, family, filepath.Join(root, rel), timeout)
		}
		if ok {
			c.ours++
			passed = append(passed, rel)
			if !ref.pass {
				fixed = append(fixed, rel)
				if !timingReason(ref.reason) {
					t.Errorf("accidental pass: %s passes, but the reference fails it here for a reason other than timing (%s)", rel, ref.reason)
				}
			}
		} else if expected[rel] {
			t.Errorf("regression: %s passed before and fails now:\n%s", rel, lastLines(out, 15))
		} else {
			t.Logf("fail (reference: %v): %s\n%s", map[bool]string{true: "pass", false: "fail"}[ref.pass], rel, lastLines(out, 8))
		}
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "%-20s %6s %6s %6s\n", "folder", "ours", "ref", "total")
	var names []string
	for f := range perFolder {
		names = append(names, f)
	}
	sort.Strings(names)
	var o, r, n int
	for _, f := range names {
		c := perFolder[f]
		fmt.Fprintf(&tb, "%-20s %6d %6d %6d\n", f, c.ours, c.ref, c.total)
		o, r, n = o+c.ours, r+c.ref, n+c.total
	}
	fmt.Fprintf(&tb, "%-20s %6d %6d %6d\n", "all", o, r, n)
	t.Logf("%s conformance per folder:\n%s", family, tb.String())
	t.Logf("timing offsets from the scheduled time (all scripts):\n%s", timing.report())
	if len(fixed) > 0 {
		t.Logf("passing where the reference failed here: %s", strings.Join(fixed, " "))
	}
	t.Logf("passing scripts (for %s):\n%s", expectedPath(family), strings.Join(passed, "\n"))
}

// copyCorpus copies the tcp and common folders to a temporary directory,
// turning back into symlinks the files that were symlinks upstream (the
// shared copy stores them as small files holding the link target, e.g.
// tcp/common/defaults.sh is "../../common/defaults.sh").
func copyCorpus(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, top := range []string{"tcp", "common"} {
		err := filepath.WalkDir(filepath.Join(conformanceRoot, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(conformanceRoot, p)
			out := filepath.Join(dst, rel)
			if d.IsDir() {
				return os.MkdirAll(out, 0o755)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if target := strings.TrimSpace(string(b)); info.Size() < 256 && !strings.ContainsAny(target, " \n") && strings.HasPrefix(target, "..") {
				if _, err := os.Stat(filepath.Join(filepath.Dir(p), target)); err == nil {
					return os.Symlink(target, out)
				}
			}
			return os.WriteFile(out, b, info.Mode().Perm()|0o200)
		})
		if err != nil {
			t.Skipf("skipping: copying the corpus: %v", err)
		}
	}
	return dst
}

// runConformanceChild runs one script (an absolute path) for a family in a
// fresh sandbox.
func runConformanceChild(t *testing.T, family, path string, timeout time.Duration) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t.Setenv(conformanceChildEnv, path)
	t.Setenv(conformanceFamilyEnv, family)
	var out bytes.Buffer
	res, err := RunSandboxed(ctx, []string{"-test.run=^TestConformanceChild$", "-test.v", "-test.count=1"}, nil, &out, &out)
	code := res.ExitCode
	if err != nil {
		fmt.Fprintf(&out, "\nsandbox: %v", err)
	}
	return err == nil && code == 0 && strings.Contains(out.String(), "--- PASS: TestConformanceChild"), out.String()
}

// TestConformanceChild runs the script named by PCAP2PKT_CONFORMANCE_SCRIPT
// inside the sandbox (started by TestConformance).
func TestConformanceChild(t *testing.T) {
	path := os.Getenv(conformanceChildEnv)
	if path == "" || !InSandbox() {
		t.Skip("run by TestConformance inside its sandbox")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	for _, a := range conformanceArgs[conformanceFamily(t)] {
		n, v, _ := strings.Cut(a, "=")
		if err := cfg.Set(n, v); err != nil {
			t.Fatalf("option %s: %v", a, err)
		}
	}
	s, err := parser.ParseFile(path, src, &parser.Config{Defines: cfg.Defines})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	env := kernelEnv(t, cfg, s, path, os.Stdout)
	defer env.Device.Close()
	env.Timing = func(s TimingSample) {
		fmt.Printf("%s\t%s\t%d\n", timingTag, s.What, s.Offset.Microseconds())
	}
	if err := Run(context.Background(), s, cfg, env); err != nil {
		t.Fatalf("%v", err)
	}
}

// timingTag marks the timing samples a child prints for the parent.
const timingTag = "CONFORMANCE-TIMING"

// timingStats collects the children's timing samples by kind.
type timingStats map[string][]int64

func (ts timingStats) add(out string) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 || f[0] != timingTag {
			continue
		}
		if v, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			ts[f[1]] = append(ts[f[1]], v)
		}
	}
}

// report prints p50, p99 and max of the absolute offsets per kind.
func (ts timingStats) report() string {
	var b strings.Builder
	var kinds []string
	for k := range ts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		v := make([]int64, len(ts[k]))
		for i, x := range ts[k] {
			v[i] = max(x, -x)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		pct := func(p float64) float64 { return float64(v[int(p*float64(len(v)-1))]) / 1000 }
		fmt.Fprintf(&b, "%-20s n=%5d  p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", k, len(v), pct(0.5), pct(0.99), pct(1))
	}
	return b.String()
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
