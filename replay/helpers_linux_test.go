package replay

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// requireRoot skips the test, with the reason, unless it runs as root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (network namespaces, TUN devices)")
	}
}

// requireTUN skips the test, with the reason, unless it runs as root and
// /dev/net/tun can be opened.
func requireTUN(t testing.TB) {
	t.Helper()
	requireRoot(t)
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("skipping: needs /dev/net/tun: %v", err)
	}
	f.Close()
}

// sandboxTestTimeout bounds one sandboxed test so that a hang fails instead
// of blocking the whole run.
const sandboxTestTimeout = 30 * time.Second

// inSandbox runs the calling test again, alone, in a sandboxed child test
// binary. In the parent it returns false after checking the child passed; in
// the child it returns true and the test does its work there:
//
//	if !inSandbox(t) { return }
func inSandbox(t *testing.T) bool {
	t.Helper()
	child, _ := runInSandbox(t)
	return child
}

// runInSandbox is inSandbox that also gives the parent the child's output.
func runInSandbox(t *testing.T) (child bool, output string) {
	t.Helper()
	if InSandbox() {
		return true, ""
	}
	requireTUN(t)
	ctx, cancel := context.WithTimeout(context.Background(), sandboxTestTimeout)
	defer cancel()
	var out bytes.Buffer
	args := []string{"-test.run=" + testRunPattern(t.Name()), "-test.v", "-test.count=1"}
	res, err := RunSandboxed(ctx, args, nil, &out, &out)
	code := res.ExitCode
	if err != nil || code != 0 {
		t.Fatalf("sandboxed run of %s: exit %d, %v; output:\n%s", t.Name(), code, err, out.String())
	}
	if strings.Contains(out.String(), "--- SKIP") {
		t.Skipf("skipped in the sandbox:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "--- PASS") {
		t.Fatalf("sandboxed run of %s ran no test; output:\n%s", t.Name(), out.String())
	}
	t.Logf("sandboxed output:\n%s", out.String())
	return false, out.String()
}

// testRunPattern is the -test.run pattern that selects exactly test name
// (with its subtest path).
func testRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// kernelEnv resolves s's configuration, sets up the sandbox's network for
// it and returns the environment of a run that writes to w: the TUN
// device (the caller closes it), the system clock and a code runner for
// the script at path.
func kernelEnv(t *testing.T, cfg *Config, s *parser.Script, path string, w io.Writer) *Env {
	t.Helper()
	rc, err := cfg.Resolve(s)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	dev, err := SetupNetwork(rc.NetConfig())
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	code, err := NewPythonCode(CodeOptions{Command: rc.CodeCommand, Format: rc.CodeFormat,
		Sockopt: rc.CodeSockopt, ScriptPath: path, Stdout: w, Stderr: w})
	if err != nil {
		dev.Close()
		t.Fatalf("code runner: %v", err)
	}
	return &Env{Device: dev, Clock: SystemClock{}, Stdout: w, Stderr: w, Code: code}
}

// recordingDevice sets up the sandbox's network and records what passes
// on its TUN device into the pcap file at path (in a temporary folder);
// the caller closes the device, then w.
func recordingDevice(tb testing.TB, cfg NetConfig) (dev Device, w *PcapWriter, path string) {
	tb.Helper()
	dev, err := SetupNetwork(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	path = filepath.Join(tb.TempDir(), "run.pcap")
	if w, err = NewPcapWriter(path); err != nil {
		tb.Fatal(err)
	}
	if err := dev.(Capturer).CaptureTo(w); err != nil {
		tb.Fatal(err)
	}
	return dev, w, path
}
