package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/replay/vm"
)

// The tests of --kernel boot a kernel in QEMU. They need root, QEMU and a
// kernel image: PCAP2PKT_TEST_KERNEL, else the newest /boot/vmlinuz-*
// (.ci/run installs Debian's). Each boot costs a few seconds under TCG.

// testKernel returns the kernel to boot, or skips.
func testKernel(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: boots VMs (-short)")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: --kernel tests need root")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("skipping: no qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	if k := os.Getenv("PCAP2PKT_TEST_KERNEL"); k != "" {
		return k
	}
	images, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(images) == 0 {
		t.Skip("skipping: no kernel image in /boot and PCAP2PKT_TEST_KERNEL unset (apt-get install linux-image-amd64)")
	}
	sort.Strings(images)
	return images[len(images)-1]
}

// buildStaticCLI builds pcap2pkt as --kernel needs it: static, to be the
// VM's init.
func buildStaticCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pcap2pkt")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

const handshakeScript = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 1
`

// TestKernelReplay runs a suite in a VM: scripts that pass and fail, shell
// lines that run the host's programs in the guest's kernel, and the same
// report as on the host.
func TestKernelReplay(t *testing.T) {
	kernel := testKernel(t)
	bin := buildStaticCLI(t)
	k, err := vm.OpenKernel(kernel, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The cost cache (and the extracted vmlinux) go to a folder of the
	// test's, not the user's.
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("pcap2pkt-vm-test-%d", os.Getpid()))
	scripts := map[string]string{
		"pass.pkt": handshakeScript,
		"fail.pkt": strings.Replace(handshakeScript, "> P. 1:11(10) ack 1", "> P. 1:11(10) ack 2", 1),
		// Runs only in the guest: its kernel's release, and /tmp writable
		// without the host's changing.
		"guest.pkt": fmt.Sprintf("`uname -r | grep -qx '%s' && echo in-guest > %s && grep -q in-guest %s`\n%s",
			k.Release, marker, marker, handshakeScript),
	}
	want := map[string]string{"pass.pkt": "pass", "fail.pkt": "fail", "guest.pkt": "pass"}
	// python3 in the guest sees the folders of its search path as on the
	// host, though the VM holds them (less what python3 does not read at its
	// start, mounted from the host's).
	if python := guestPython(); python != "" {
		if err := os.WriteFile(filepath.Join(dir, "listpath.py"), []byte(listPythonPath), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(python, "listpath.py")
		cmd.Dir, cmd.Env = dir, []string{"PATH=" + os.Getenv("PATH")}
		host, err := cmd.Output()
		if err != nil {
			t.Fatalf("python3 listpath.py: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "listpath.host"), host, 0o644); err != nil {
			t.Fatal(err)
		}
		scripts["python.pkt"] = "`python3 listpath.py | cmp - listpath.host`\n" + handshakeScript
		want["python.pkt"] = "pass"
	}
	for name, text := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := execCLI(t, bin, "replay", "--kernel", kernel, "-j", "2", "--format=json", dir)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFail, stdout, stderr)
	}
	var report struct {
		Runs []suiteRun `json:"runs"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	got := map[string]string{}
	for _, r := range report.Runs {
		got[filepath.Base(r.Script)] = r.Verdict
		if r.Verdict == "fail" && (r.Failure == nil || r.Failure.Pos.Line != 10 || !strings.Contains(r.Failure.Msg, "ack")) {
			t.Errorf("%s: failure %+v, want line 10 about the ack", r.Script, r.Failure)
		}
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s: verdict %q, want %q\n%s", name, got[name], v, stdout)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Errorf("the guest's write to %s reached the host", marker)
	}

	// Each run's cost in the guest is in the cache for the next shares.
	b, err := os.ReadFile(filepath.Join(cache, "pcap2pkt", "vm-costs.json"))
	if err != nil {
		t.Fatalf("no cost cache: %v", err)
	}
	var costs costFile
	if err := json.Unmarshal(b, &costs); err != nil {
		t.Fatalf("cost cache: %v\n%s", err, b)
	}
	if len(costs.Costs) != len(want) {
		t.Errorf("%d costs in the cache, want one per script (%d):\n%s", len(costs.Costs), len(want), b)
	}
	for k, v := range costs.Costs {
		// A run starts pcap2pkt's child at least: over a millisecond of
		// processor time in the guest, and not minutes.
		if v < 1e6 || v > 60e9 {
			t.Errorf("cost of %s: %d ns", k, v)
		}
	}

	// The report is the host's: TAP (no timings in it) byte for byte.
	if err := canReplay(); err == nil {
		scripts := []string{filepath.Join(dir, "pass.pkt"), filepath.Join(dir, "fail.pkt")}
		_, hostOut, _ := execCLI(t, bin, append([]string{"replay", "--format=tap"}, scripts...)...)
		_, vmOut, vmErr := execCLI(t, bin, append([]string{"replay", "--format=tap", "--kernel", kernel}, scripts...)...)
		if hostOut != vmOut {
			t.Errorf("TAP differs\nhost:\n%s\nVM:\n%s%s", hostOut, vmOut, vmErr)
		}
	}
}

// listPythonPath lists the folders of python's search path (but the
// script's own) and counts what the folders in them hold.
const listPythonPath = `import json, os, sys
out = {}
for d in sys.path[1:]:
    if os.path.isdir(d):
        out[d] = sorted(os.listdir(d))
        for e in out[d]:
            p = os.path.join(d, e)
            if os.path.isdir(p) and not os.path.islink(p):
                out[p] = len(os.listdir(p))
print(json.dumps(out, sort_keys=True))
`

// guestPython is the python3 a guest's shell lines find (the system's
// folders first, as vm's guest environment has them), or "".
func guestPython() string {
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, "python3")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// TestKernelMissingConfig gives the VM a module folder without tun: exit 3
// naming the option.
func TestKernelMissingConfig(t *testing.T) {
	kernel := testKernel(t)
	bin := buildStaticCLI(t)
	k, err := vm.OpenKernel(kernel, "")
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join("/lib/modules", k.Release)
	dep, err := os.ReadFile(filepath.Join(real, "modules.dep"))
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	mods := t.TempDir()
	var kept []string
	for _, l := range strings.Split(string(dep), "\n") {
		if !strings.Contains(l, "/tun.ko") {
			kept = append(kept, l)
		}
	}
	os.WriteFile(filepath.Join(mods, "modules.dep"), []byte(strings.Join(kept, "\n")), 0o644)
	if err := os.Symlink(filepath.Join(real, "kernel"), filepath.Join(mods, "kernel")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "s.pkt")
	os.WriteFile(script, []byte(handshakeScript), 0o644)
	code, stdout, stderr := execCLI(t, bin, "replay", "--kernel", kernel, "--modules", mods, script)
	if code != exitEnv || !strings.Contains(stderr, "CONFIG_TUN") {
		t.Errorf("exit %d, want %d with CONFIG_TUN\nstdout:\n%s\nstderr:\n%s", code, exitEnv, stdout, stderr)
	}
}

// TestKernelVerify verifies the article's capture in a VM: its script and
// replay capture are written to the host's --keep folder.
func TestKernelVerify(t *testing.T) {
	kernel := testKernel(t)
	bin := buildStaticCLI(t)
	keep := t.TempDir()
	code, stdout, stderr := execCLI(t, bin, "verify", "--kernel", kernel, "--keep", keep, "../../testdata/article.pcap")
	if code != exitOK || !strings.Contains(stdout, "pass") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	pcaps, _ := filepath.Glob(filepath.Join(keep, "*.replay.pcap"))
	if len(pcaps) != 1 {
		t.Fatalf("replay captures in --keep: %v", pcaps)
	}
	if b, err := os.ReadFile(pcaps[0]); err != nil || len(b) < 100 || !bytes.HasPrefix(b, []byte{0xd4, 0xc3, 0xb2, 0xa1}) && !bytes.HasPrefix(b, []byte{0x4d, 0x3c, 0xb2, 0xa1}) {
		t.Errorf("%s: %d bytes, %v: not a pcap of the replay", pcaps[0], len(b), err)
	}

	// Two connections in two VMs side by side: both verify, reported in
	// the capture's order.
	const refused = "../../../shared/captures/local/conn_refused_srvside_eth.pcap"
	if _, err := os.Stat(refused); err != nil {
		t.Skipf("skipping the two-connection capture: %v", err)
	}
	keep = t.TempDir()
	code, stdout, stderr = execCLI(t, bin, "verify", "--kernel", kernel, "-j", "2", "--keep", keep, refused)
	// A row: number, local, remote, verdict (the closing line, "2
	// connection(s): 2 passed, ...", is not one).
	rows := regexp.MustCompile(`(?m)^([0-9]+) +\S+ +\S+ +pass +`).FindAllStringSubmatch(stdout, -1)
	if code != exitOK || len(rows) != 2 || rows[0][1] != "1" || rows[1][1] != "2" {
		t.Errorf("verify -j 2: exit %d, rows %q\nstdout:\n%s\nstderr:\n%s", code, rows, stdout, stderr)
	}
	if pcaps, _ := filepath.Glob(filepath.Join(keep, "*.replay.pcap")); len(pcaps) != 2 {
		t.Errorf("replay captures in --keep: %v", pcaps)
	}
}
