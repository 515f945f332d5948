package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

const timestampsSysctl = "/proc/sys/net/ipv4/tcp_timestamps"

// TestSandboxIsolation checks that the child has its own network namespace:
// a sysctl written inside leaves the host's value alone, and no device or
// process of the child outlives it.
func TestSandboxIsolation(t *testing.T) {
	if InSandbox() {
		host, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", os.Getppid()))
		if err != nil {
			t.Fatal(err)
		}
		self, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		if host == self {
			t.Fatalf("child shares the parent's network namespace %s", self)
		}
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			t.Errorf("interfaces in a fresh namespace = %v, want only lo", ifs)
		}
		if err := os.WriteFile(timestampsSysctl, []byte("0\n"), 0); err != nil {
			t.Fatalf("sysctl inside the sandbox: %v", err)
		}
		if got, _ := os.ReadFile(timestampsSysctl); strings.TrimSpace(string(got)) != "0" {
			t.Errorf("sysctl reads back %q inside, want 0", got)
		}
		if _, err := SetupNetwork(NetConfig{IPVersion: "ipv4",
			LocalIP:   mustAddr("192.168.0.1"),
			RemoteIP:  mustAddr("192.0.2.1"),
			GatewayIP: mustAddr("192.168.0.1")}); err != nil {
			t.Fatal(err)
		}
		// A straggler in the child's process group, holding the namespace.
		sleeper := exec.Command("sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("STRAGGLER pid=%d pgid=%d\n", sleeper.Process.Pid, syscall.Getpgrp())
		// Descriptor 3 is the handoff socket (see handoffEnv).
		if _, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", sleeper.Process.Pid)); err == nil {
			t.Error("a command started in the sandbox inherits the handoff socket")
		}
		return
	}
	requireTUN(t)
	before, err := os.ReadFile(timestampsSysctl)
	if err != nil {
		t.Skipf("skipping: cannot read %s: %v", timestampsSysctl, err)
	}
	_, tunBefore := net.InterfaceByName("tun0")

	_, out := runInSandbox(t)

	after, _ := os.ReadFile(timestampsSysctl)
	if string(after) != string(before) {
		t.Errorf("host %s changed from %q to %q", timestampsSysctl, before, after)
	}
	if tunBefore != nil {
		if _, err := net.InterfaceByName("tun0"); err == nil {
			t.Error("tun0 exists in the host namespace after the run")
		}
	}
	m := regexp.MustCompile(`STRAGGLER pid=(\d+) pgid=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("child did not report its straggler:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	pgid, _ := strconv.Atoi(m[2])
	waitGroupGone(t, pgid, pid)
}

// waitGroupGone fails unless every process of group pgid is gone (or a
// zombie waiting for its new parent) within a second.
func waitGroupGone(t *testing.T, pgid, straggler int) {
	t.Helper()
	var live []int
	for start := time.Now(); time.Since(start) < time.Second; time.Sleep(10 * time.Millisecond) {
		live = liveGroupMembers(pgid)
		if len(live) == 0 {
			return
		}
	}
	t.Errorf("processes of group %d (straggler %d) still alive after the run: %v", pgid, straggler, live)
}

// liveGroupMembers lists the non-zombie processes whose group is pgid.
func liveGroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestSandboxHang is the child of the timeout and signal tests: it says it
// is ready and then hangs. Run directly, outside a sandbox, it does nothing.
func TestSandboxHang(t *testing.T) {
	if !InSandbox() {
		t.Skip("only meaningful as the sandboxed child of TestRunSandboxed*")
	}
	fmt.Println("READY")
	time.Sleep(time.Hour)
}

// readyWriter closes ready at the first write containing READY.
type readyWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "READY") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

// sandboxParent skips t inside the sandbox: t starts sandboxes of its own.
func sandboxParent(t *testing.T) {
	t.Helper()
	requireTUN(t)
	if InSandbox() {
		t.Skip("not nested")
	}
}

func TestRunSandboxedTimeout(t *testing.T) {
	sandboxParent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := RunSandboxed(ctx, []string{"-test.run=^TestSandboxHang$"}, nil, io.Discard, io.Discard)
	code := res.ExitCode
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RunSandboxed past its deadline = %d, %v; want DeadlineExceeded", code, err)
	}
	if code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d, want %d (SIGKILL)", code, 128+int(syscall.SIGKILL))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("RunSandboxed took %v after a 300ms deadline", d)
	}
}

func TestRunSandboxedForwardsSIGTERM(t *testing.T) {
	sandboxParent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &readyWriter{ready: make(chan struct{})}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := RunSandboxed(ctx, []string{"-test.run=^TestSandboxHang$", "-test.v"}, nil, w, w)
		code := res.ExitCode
		done <- result{code, err}
	}()
	select {
	case <-w.ready:
	case r := <-done:
		t.Fatalf("child ended before READY: %d, %v", r.code, r.err)
	}
	// RunSandboxed has subscribed to SIGTERM, so this reaches the child only.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.code != 128+int(syscall.SIGTERM) {
		t.Errorf("RunSandboxed after SIGTERM = %d, %v; want %d, nil", r.code, r.err, 128+int(syscall.SIGTERM))
	}
}

func TestRunSandboxedRefusesNesting(t *testing.T) {
	if !inSandbox(t) {
		return
	}
	if _, err := RunSandboxed(context.Background(), nil, nil, io.Discard, io.Discard); err == nil {
		t.Error("RunSandboxed inside the sandbox succeeded; want a refusal")
	}
}

func TestSetupNetworkRefusedOutsideSandbox(t *testing.T) {
	if InSandbox() {
		t.Skip("checks the refusal outside")
	}
	if _, err := SetupNetwork(NetConfig{IPVersion: "ipv4"}); err == nil {
		t.Fatal("SetupNetwork outside the sandbox succeeded")
	}
}

// reportedFailure is what TestSandboxReportsFailure's child reports.
var reportedFailure = &parser.Error{File: "/x/t.pkt", Pos: parser.Pos{Line: 19}, Msg: "expected ack 3, got ack 2",
	Detail: "  script packet:  0.300658 > . 11:11(0) ack 3\n  actual packet:  0.303667 > . 11:11(0) ack 2 win 65535"}

// TestSandboxReportsFailure: the child hands a descriptor off, then
// reports its failure; the parent gets the failure as data, whole, and
// the descriptor does not get in the way.
func TestSandboxReportsFailure(t *testing.T) {
	if InSandbox() {
		if os.Getenv("PCAP2PKT_TEST_REPORT") != "1" {
			t.Skip("run by its parent")
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil || !handOff(fd) {
			t.Fatalf("hand off: %v", err)
		}
		unix.Close(fd)
		if !ReportFailure(fmt.Errorf("run: %w", reportedFailure)) {
			t.Fatal("the failure did not reach the parent")
		}
		return
	}
	requireTUN(t)
	t.Setenv("PCAP2PKT_TEST_REPORT", "1")
	var out bytes.Buffer
	res, err := RunSandboxed(context.Background(), []string{"-test.run=^TestSandboxReportsFailure$", "-test.v"}, nil, &out, &out)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("child: exit %d, %v\n%s", res.ExitCode, err, out.String())
	}
	if res.Failure == nil || res.Failure.Error() != reportedFailure.Error() {
		t.Errorf("reported failure %v, want %v", res.Failure, reportedFailure)
	}
	res, err = RunSandboxed(context.Background(), []string{"-test.run=^$"}, nil, io.Discard, io.Discard)
	if err != nil || res.Failure != nil {
		t.Errorf("a child that reported nothing gave %v", res.Failure)
	}
}
