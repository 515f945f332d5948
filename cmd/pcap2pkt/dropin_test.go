package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The drop-in is tested as its users run it: a symlink named packetdrill on
// PATH, called by the runners written for packetdrill, on upstream scripts.
// Their verdicts must be replay's own for the same scripts and arguments.
//
// The kernel's runner (tools/testing/selftests/net/packetdrill/ksft_runner.sh)
// and packetdrill's run_all.py are not part of this project: set
// PCAP2PKT_KSFT_RUNNER and PCAP2PKT_RUN_ALL to their paths to use them.
// Without the first, testdata/dropin/ksft_runner.sh calls packetdrill the
// way the kernel's runner does; without the second, the run_all.py case is
// skipped.

// dropinFolders are upstream folders whose scripts pass, and fail for
// reasons other than timing (epoll_out_edge* and gro-mss-option are kernel
// 6.18 behaviour, mtu_probe/basic-v6 hard-codes addresses), so that both
// verdicts are compared and neither flips between runs.
var dropinFolders = []string{"tcp/epoll", "tcp/gro", "tcp/inq", "tcp/mtu_probe", "tcp/syscall_bad_arg", "tcp/validate"}

// ksftArgs are the kernel runner's arguments per family.
var ksftArgs = map[string][]string{
	"ipv4": {"--ip_version=ipv4", "--local_ip=192.168.0.1", "--gateway_ip=192.168.0.1", "--netmask_ip=255.255.0.0",
		"--remote_ip=192.0.2.1", "-D", "CMSG_LEVEL_IP=SOL_IP", "-D", "CMSG_TYPE_RECVERR=IP_RECVERR"},
	"ipv6": {"--ip_version=ipv6", "--mtu=1520", "--local_ip=fd3d:0a0b:17d6::1", "--gateway_ip=fd3d:0a0b:17d6:8888::1",
		"--remote_ip=fd3d:fa7b:d17d::1", "-D", "CMSG_LEVEL_IP=SOL_IPV6", "-D", "CMSG_TYPE_RECVERR=IPV6_RECVERR"},
}

// packetdrillOnPath makes a folder holding a symlink named packetdrill to
// bin and returns it.
func packetdrillOnPath(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "packetdrill")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dropinScripts(t *testing.T, tree string) []string {
	t.Helper()
	var out []string
	for _, f := range dropinFolders {
		found, err := findScripts([]string{filepath.Join(tree, f)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, found...)
	}
	return out
}

// replayVerdicts runs each script with 'pcap2pkt replay' and args from the
// script's folder, as the runners do: script+" "+family -> pass or fail.
// byName follows run_all.py in running *v4.pkt and *v6.pkt scripts in their
// family only; the kernel's runner runs every script in both.
func replayVerdicts(t *testing.T, bin string, scripts []string, args map[string][]string, byName bool) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, s := range scripts {
		for fam, a := range args {
			if byName && !familyApplies(s, fam) {
				continue
			}
			cmd := exec.Command(bin, append(append([]string{"replay"}, a...), filepath.Base(s))...)
			cmd.Dir = filepath.Dir(s)
			verdict := "pass"
			if err := cmd.Run(); err != nil {
				if _, ok := err.(*exec.ExitError); !ok {
					t.Fatal(err)
				}
				verdict = "fail"
			}
			got[s+" "+fam] = verdict
		}
	}
	return got
}

func TestPacketdrillDropInKsftRunner(t *testing.T) {
	requireReplay(t)
	if testing.Short() {
		t.Skip("a minute of replays; skipped with -short")
	}
	tree := upstreamTree(t)
	allowCubic(t)
	bin := buildCLI(t)
	pathDir := packetdrillOnPath(t, bin)

	runnerSrc, _ := filepath.Abs("../../testdata/dropin/ksft_runner.sh")
	if p := os.Getenv("PCAP2PKT_KSFT_RUNNER"); p != "" {
		runnerSrc = p
		t.Logf("the kernel's runner: %s", p)
	}
	// The runner finds its helpers at ../../kselftest/ from where it is.
	kdir := t.TempDir()
	runner := filepath.Join(kdir, "net/packetdrill/ksft_runner.sh")
	copyFile(t, runnerSrc, runner, 0o755)
	copyFile(t, "../../testdata/dropin/ktap_helpers.sh", filepath.Join(kdir, "kselftest/ktap_helpers.sh"), 0o644)

	scripts := dropinScripts(t, tree)
	want := replayVerdicts(t, bin, scripts, ksftArgs, false)
	line := regexp.MustCompile(`(?m)^(ok|not ok) \d+ (ipv4|ipv6)$`)
	got := map[string]string{}
	for _, s := range scripts {
		// The kselftest harness runs a test from its folder.
		cmd := exec.Command(runner, s)
		cmd.Dir = filepath.Dir(s)
		cmd.Env = append(os.Environ(), "PATH="+pathDir+":"+os.Getenv("PATH"))
		out, _ := cmd.Output()
		for _, m := range line.FindAllStringSubmatch(string(out), -1) {
			got[s+" "+m[2]] = map[string]string{"ok": "pass", "not ok": "fail"}[m[1]]
		}
	}
	compareVerdicts(t, tree, "ksft_runner.sh", got, want)
}

func TestPacketdrillDropInRunAll(t *testing.T) {
	requireReplay(t)
	runAll := os.Getenv("PCAP2PKT_RUN_ALL")
	if runAll == "" {
		t.Skip("set PCAP2PKT_RUN_ALL to packetdrill's gtests/net/packetdrill/run_all.py to run this test")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 for run_all.py")
	}
	tree := upstreamTree(t)
	allowCubic(t)
	bin := buildCLI(t)

	// run_all.py runs ./packetdrill/in_netns.sh ./packetdrill/packetdrill
	// from where it is started.
	top := t.TempDir()
	if err := os.Mkdir(filepath.Join(top, "packetdrill"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(top, "packetdrill/packetdrill")); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "../../testdata/dropin/in_netns.sh", filepath.Join(top, "packetdrill/in_netns.sh"), 0o755)

	// Its own arguments for ipv4 and ipv6, as 'replay --families' has them.
	fams := map[string][]string{"ipv4": familyArgs["ipv4"], "ipv6": familyArgs["ipv6"]}
	scripts := dropinScripts(t, tree)
	want := replayVerdicts(t, bin, scripts, fams, true)

	got := map[string]string{}
	line := regexp.MustCompile(`(?m)^(OK  |FAIL) \[(\S+) \((ipv4|ipv6)\)\]$`)
	for _, f := range dropinFolders {
		cmd := exec.Command("python3", runAll, "-v", "-S", "-4", "-6", filepath.Join(tree, f))
		cmd.Dir = top
		out, _ := cmd.Output()
		for _, m := range line.FindAllStringSubmatch(string(out), -1) {
			got[m[2]+" "+m[3]] = map[string]string{"OK  ": "pass", "FAIL": "fail"}[m[1]]
		}
	}
	compareVerdicts(t, tree, "run_all.py", got, want)
}

// compareVerdicts fails the test where a runner's verdict is not replay's
// and logs the counts.
func compareVerdicts(t *testing.T, tree, runner string, got, want map[string]string) {
	t.Helper()
	pass := 0
	for k, w := range want {
		rel := strings.TrimPrefix(k, tree+"/")
		switch g, ok := got[k]; {
		case !ok:
			t.Errorf("%s: %s gave no verdict", rel, runner)
		case g != w:
			t.Errorf("%s: %s says %s, replay %s", rel, runner, g, w)
		case g == "pass":
			pass++
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s gave %d verdicts, replay %d", runner, len(got), len(want))
	}
	t.Logf("%s through the packetdrill symlink: %d runs, %d pass, %d fail, as replay", runner, len(want), pass, len(want)-pass)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}
