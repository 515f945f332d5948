package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/replay"
)

// TestReplayWithoutRoot runs replay as an unprivileged user (nobody), as a
// user without sudo would: each script runs in a user namespace of its own,
// a passing script passes, and a failure says that the run was not root's.
func TestReplayWithoutRoot(t *testing.T) {
	requireReplay(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to become another user")
	}
	if err := replay.UserNamespacesAllowed(); err != nil {
		t.Skipf("no unprivileged user namespaces here: %v", err)
	}
	dir, err := os.MkdirTemp("", "pcap2pkt-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pcap2pkt")
	buildCLITo(t, bin)
	const server = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n" +
		"+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 `sysctl -q net.ipv4.tcp_timestamps=0`\n+0 < S 0:0(0) win 4000 <mss 1000>\n"
	good := filepath.Join(dir, "good.pkt")
	bad := filepath.Join(dir, "bad.pkt")
	writeFile(t, good, server+"+0 > S. 0:0(0) ack 1 <mss 1460>\n")
	writeFile(t, bad, server+"+0 > S. 0:0(0) ack 2 <mss 1460>\n")
	asNobody := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var errw bytes.Buffer
		cmd.Stderr = &errw
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), errw.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, errw.String()
	}
	if code, errs := asNobody("replay", good); code != exitOK {
		t.Errorf("as nobody, a passing script: exit %d, stderr %q", code, errs)
	}
	code, errs := asNobody("replay", bad)
	if code != exitFail || !strings.Contains(errs, "expected ack 2") || !strings.Contains(errs, "user namespace") {
		t.Errorf("as nobody, a failing script: exit %d, stderr %q", code, errs)
	}
}
