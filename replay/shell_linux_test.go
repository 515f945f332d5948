package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// shellCases are command lines run both ways by TestShellSubsetAsShell;
// whole says pcap2pkt runs all of it itself.
var shellCases = []struct {
	text  string
	whole bool
}{
	{"DEFAULTS", true},
	{"sysctl -q net.ipv4.tcp_nonexistent=1 net.ipv4.tcp_sack=0 net.ipv4.tcp_congestion_control=nosuch net.ipv4.tcp_dsack=0", true},
	{"sysctl net.ipv4.tcp_sack=0 net/ipv4/tcp_dsack=0 net.ipv4.tcp_rmem=\"4096 $((256*1024)) $(( (15*1024*1024) ))\"", true},
	{"sysctl -e -q net.ipv4.tcp_nonexistent=1; sysctl -qe net.ipv4.tcp_timestamps=0 net.ipv4.tcp_congestion_control=nosuch", true},
	{"sysctl net.ipv4.tcp_nonexistent=1 net.ipv4.tcp_sack=0 2>&1", true},
	{"sysctl -q net.ipv4.tcp_nonexistent=1 net.ipv4.tcp_sack=0 2>&1 >/dev/null", true},
	{"sysctl -q net.ipv4.tcp_sack=0 > /dev/null 2>&1\nsysctl -q net.ipv4.tcp_nonexistent=0 2>/dev/null", true},
	{"tc qdisc add dev tun0 root pfifo\ntc qdisc add dev tun0 root pfifo", true},
	{"tc qdisc add dev nosuch0 root pfifo; tc qdisc add dev tun0 root pfifo", true},
	{"tc qdisc add dev nosuch0 root pfifo > /dev/null 2>&1", true},
	{"ip tcp_metrics flush all > /dev/null 2>&1; ip tcp_metrics flush all", true},
	{"./ok.sh", true},
	{"./fails.sh >&2", true},
	{"./ok.sh\nsysctl -q net.ipv4.tcp_sack=0\necho rest $((6*7)); sysctl -q net.ipv4.tcp_dsack=0\nfalse", false},
	{"sysctl -q net.ipv4.tcp_sack=0\nif then", false},
	{"sysctl -q net.ipv4.tcp_nonexistent=0\necho $?", false},
	{"./noexec.sh", false},
}

// TestShellSubsetAsShell: each case run by pcap2pkt (the subset) and by
// /bin/sh alone, each in a new network namespace with a tun0, gives the
// same output, status and settings (net.ipv4.tcp_*, tun0's qdiscs).
func TestShellSubsetAsShell(t *testing.T) {
	requireTUN(t)
	requireShellTools(t)
	defaults := filepath.Join(conformanceRoot, "common", "defaults.sh")
	if _, err := os.Stat(defaults); err != nil {
		t.Skipf("skipping: no conformance corpus: %v", err)
	}
	defaults, _ = filepath.Abs(defaults)
	dir := t.TempDir()
	for name, text := range map[string]string{
		"ok.sh":     "#!/bin/bash\n# settings\nsysctl -q net.ipv4.tcp_sack=0 \\\n  net.ipv4.tcp_wmem=\"4096 $((128*1024)) 4194304\"\nip tcp_metrics flush all > /dev/null 2>&1\ntc qdisc add dev tun0 root pfifo\n",
		"fails.sh":  "#!/bin/sh\nsysctl -q net.ipv4.tcp_sack=0; sysctl net.ipv4.tcp_congestion_control=nosuch\n",
		"noexec.sh": "#!/bin/sh\nsysctl -q net.ipv4.tcp_sack=0\n",
	} {
		mode := os.FileMode(0o755)
		if name == "noexec.sh" {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PCAP2PKT_SHELL_DIR", dir)
	t.Setenv("PCAP2PKT_SHELL_DEFAULTS", defaults)
	for i, c := range shellCases {
		var got [2]shellOutcome
		for j, subset := range []bool{false, true} {
			t.Setenv("PCAP2PKT_SHELL_CASE", fmt.Sprintf("%d %t", i, subset))
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), sandboxTestTimeout)
			res, err := RunSandboxed(ctx, []string{"-test.run=^TestShellSubsetChild$", "-test.count=1", "-test.v"}, nil, &out, &out)
			cancel()
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("case %d: child: %v, exit %d:\n%s", i, err, res.ExitCode, out.String())
			}
			_, js, ok := strings.Cut(out.String(), "SHELLOUTCOME ")
			js, _, _ = strings.Cut(js, "\n")
			if !ok || json.Unmarshal([]byte(js), &got[j]) != nil {
				t.Fatalf("case %d: no outcome in the child's output:\n%s", i, out.String())
			}
		}
		sh, sub := got[0], got[1]
		if sub.Whole != c.whole {
			t.Errorf("case %d %q: run whole by pcap2pkt: %t, want %t", i, c.text, sub.Whole, c.whole)
		}
		sh.Whole = sub.Whole
		if fmt.Sprint(sh) != fmt.Sprint(sub) {
			t.Errorf("case %d %q:\n/bin/sh: %+v\npcap2pkt: %+v", i, c.text, sh, sub)
		}
	}
}

// shellOutcome is what a command line did.
type shellOutcome struct {
	Stdout, Stderr, Err string
	Sysctls             []string // net.ipv4.tcp_* after it
	Qdiscs              []string // tun0's
	Whole               bool
}

// TestShellSubsetChild is TestShellSubsetAsShell's side in a sandbox.
func TestShellSubsetChild(t *testing.T) {
	spec := os.Getenv("PCAP2PKT_SHELL_CASE")
	if !InSandbox() || spec == "" {
		t.Skip("skipping: runs in TestShellSubsetAsShell's sandbox")
	}
	var i int
	var subset bool
	if _, err := fmt.Sscanf(spec, "%d %t", &i, &subset); err != nil {
		t.Fatal(err)
	}
	tun := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "tun0"}, Mode: netlink.TUNTAP_MODE_TUN}
	if err := netlink.LinkAdd(tun); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(tun); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("PCAP2PKT_SHELL_DIR")
	text := strings.ReplaceAll(shellCases[i].text, "DEFAULTS", os.Getenv("PCAP2PKT_SHELL_DEFAULTS"))
	var o shellOutcome
	var stdout, stderr bytes.Buffer
	env := append(os.Environ(), "PACKETDRILL_PID="+strconv.Itoa(os.Getpid()))
	if err := runShellText(context.Background(), text, dir, env, &stdout, &stderr, subset); err != nil {
		o.Err = err.Error()
	}
	o.Stdout, o.Stderr = stdout.String(), stderr.String()
	o.Whole = subset && planShell(text, dir).rest == ""
	files, _ := filepath.Glob("/proc/sys/net/ipv4/tcp_*")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			o.Sysctls = append(o.Sysctls, filepath.Base(f)+"="+strings.TrimSpace(string(b)))
		}
	}
	link, err := netlink.LinkByName("tun0")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := netlink.QdiscList(link)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		o.Qdiscs = append(o.Qdiscs, fmt.Sprintf("%s parent %x", q.Type(), q.Attrs().Parent))
	}
	sort.Strings(o.Qdiscs)
	b, _ := json.Marshal(o)
	fmt.Printf("SHELLOUTCOME %s\n", b)
}
