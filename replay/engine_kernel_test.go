package replay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// articlePath is the seed user story, read from the shared folder.
const articlePath = "../../shared/seed/article.pkt"

// readArticle returns the seed script, skipping when the shared folder is
// missing.
func readArticle(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(articlePath)
	if err != nil {
		t.Skipf("skipping: seed script missing: %v", err)
	}
	return string(b)
}

// withoutLine drops the lines containing s (the seed's `sleep 10`).
func withoutLine(src, s string) string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if !strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// timingRetries is how many times a kernel test reruns a script that
// failed only on timing: the machine is shared, and a late wake-up is not
// what these tests are about.
const timingRetries = 3

// runKernelScriptRetrying is runKernelScript, rerun while it fails with a
// timing error.
func runKernelScriptRetrying(t *testing.T, name, src string, opts ...string) (string, error) {
	t.Helper()
	var err error
	var out string
	for i := 0; i < timingRetries; i++ {
		out, err = runKernelScript(t, name, src, opts...)
		if err == nil || !strings.Contains(err.Error(), "timing error") {
			return out, err
		}
		t.Logf("attempt %d failed on timing, retrying: %v", i+1, err)
	}
	return out, err
}

// runKernelScript parses and runs a script against the kernel of the
// (sandboxed) current process with the given options, returning the run's
// error and its output.
func runKernelScript(t *testing.T, name, src string, opts ...string) (string, error) {
	t.Helper()
	s, err := parser.ParseFile(name, []byte(src), nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	cfg := NewConfig()
	for _, o := range opts {
		n, v, _ := strings.Cut(strings.TrimPrefix(o, "--"), "=")
		if err := cfg.Set(n, v); err != nil {
			t.Fatalf("option %s: %v", o, err)
		}
	}
	var out bytes.Buffer
	env := kernelEnv(t, cfg, s, name, &out)
	defer env.Device.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := filepath.Dir(name)
	if dir == "." {
		dir = t.TempDir()
	}
	env.Dir = dir
	err = Run(ctx, s, cfg, env)
	return out.String(), err
}

// familyOptions are upstream's address options per family.
var familyOptions = map[string][]string{
	"ipv4":             {"--ip_version=ipv4"},
	"ipv4-mapped-ipv6": {"--ip_version=ipv4-mapped-ipv6"},
	"ipv6":             {"--ip_version=ipv6", "--mtu=1520", "--local_ip=fd3d:0a0b:17d6::1", "--gateway_ip=fd3d:0a0b:17d6:8888::1", "--remote_ip=fd3d:fa7b:d17d::1"},
}

func TestKernelArticle(t *testing.T) {
	src := readArticle(t)
	if !inSandbox(t) {
		return
	}
	for _, family := range []string{"ipv4", "ipv4-mapped-ipv6", "ipv6"} {
		out, err := runKernelScriptRetrying(t, "article.pkt", withoutLine(src, "sleep 10"), familyOptions[family]...)
		if err != nil {
			t.Fatalf("%s: article.pkt failed: %v\noutput:\n%s", family, err, out)
		}
		if !strings.Contains(out, "finish") {
			t.Fatalf("%s: output lacks finish:\n%s", family, out)
		}
	}
}

func TestKernelArticleMutated(t *testing.T) {
	src := readArticle(t)
	if !inSandbox(t) {
		return
	}
	src = withoutLine(src, "sleep 10")
	tests := []struct {
		name, from, to string
		line           int
		want           []string
	}{
		{"ack", "+0 > .11:11(0) ack 2", "+0 > .11:11(0) ack 3", 19, []string{"expected ack 3, got ack 2", "script packet:", "actual packet:"}},
		{"flags", "+0 > .11:11(0) ack 2", "+0 > F.11:11(0) ack 2", 19, []string{"expected flags F., got flags .", "actual packet:"}},
		{"syscall", "accept(3, ..., ...) = 4", "accept(3, ..., ...) = -1", 10, []string{"expected result -1 but got"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mut := strings.Replace(src, tc.from, tc.to, 1)
			if mut == src {
				t.Fatalf("mutation %q not applied", tc.from)
			}
			out, err := runKernelScriptRetrying(t, "article.pkt", mut)
			var se *parser.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *parser.Error; output:\n%s", err, out)
			}
			if se.Pos.Line != tc.line {
				t.Errorf("line %d, want %d: %v", se.Pos.Line, tc.line, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			t.Logf("error as reported:\n%v", err)
		})
	}
}

func TestKernelArticleVerbatim(t *testing.T) {
	src := readArticle(t)
	if testing.Short() {
		t.Skip("skipping in -short mode: the seed sleeps 10 s")
	}
	if !inSandbox(t) {
		return
	}
	out, err := runKernelScriptRetrying(t, articlePath, src)
	if err != nil {
		t.Fatalf("article.pkt failed: %v\noutput:\n%s", err, out)
	}
	if !strings.Contains(out, "finish") {
		t.Fatalf("output lacks finish:\n%s", out)
	}
}
