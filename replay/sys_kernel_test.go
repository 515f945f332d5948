package replay

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// syscallScripts are the corpus scripts that call the system calls of
// sys_*.go (or run %{ }% code), by path under the corpus's tcp folder.
var syscallScripts = []string{
	"epoll/epoll_in_edge.pkt", "epoll/epoll_out_edge.pkt",
	"epoll/epoll_out_edge_default_notsent_lowat.pkt", "epoll/epoll_out_edge_notsent_lowat.pkt",
	"fastopen/client/blocking-sendmsg-multi-iov.pkt", "fastopen/client/nonblocking-connect-bypass.pkt",
	"fastopen/client/nonblocking-sendmsg-multi-iov.pkt", "fastopen/client/poll.pkt",
	"fastopen/client/synack-data.pkt", "inq/client.pkt", "inq/server.pkt",
	"nagle/sendmsg_msg_more.pkt", "notsent_lowat/notsent-lowat-default.pkt",
	"notsent_lowat/notsent-lowat-setsockopt.pkt", "notsent_lowat/notsent-lowat-sysctl.pkt",
	"sendfile/sendfile-simple.pkt", "splice/tcp_splice_loop_test.pkt",
	"syscall_bad_arg/sendmsg-empty-iov.pkt", "timestamping/client-only-last-byte.pkt",
	"timestamping/partial.pkt", "timestamping/server.pkt", "zerocopy/basic.pkt",
	"zerocopy/batch.pkt", "zerocopy/client.pkt", "zerocopy/closed.pkt", "zerocopy/epoll_edge.pkt",
	"zerocopy/epoll_exclusive.pkt", "zerocopy/epoll_oneshot.pkt", "zerocopy/fastopen-client.pkt",
	"zerocopy/fastopen-server.pkt", "zerocopy/maxfrags.pkt", "zerocopy/small.pkt",
}

// syscallScriptArgs are the options of the conformance runs, per family
// (shared/conformance/README.md).
var syscallScriptArgs = map[string][]string{
	"ipv4": {"send_omit_free=", "ip_version=ipv4", "local_ip=192.168.0.1", "gateway_ip=192.168.0.1",
		"netmask_ip=255.255.0.0", "remote_ip=192.0.2.1"},
	"ipv4-mapped-ipv6": {"send_omit_free=", "ip_version=ipv4-mapped-ipv6", "local_ip=192.168.0.1",
		"gateway_ip=192.168.0.1", "netmask_ip=255.255.0.0", "remote_ip=192.0.2.1"},
	"ipv6": {"send_omit_free=", "ip_version=ipv6", "mtu=1520", "local_ip=fd3d:0a0b:17d6::1",
		"gateway_ip=fd3d:0a0b:17d6:8888::1", "remote_ip=fd3d:fa7b:d17d::1"},
}

// syscallScriptsEnv enables TestKernelSyscallScripts: it starts one sandbox
// per script and takes about a minute. Its value is the family ("1" or
// "ipv4", "ipv4-mapped-ipv6" or "ipv6").
const syscallScriptsEnv = "PCAP2PKT_SYSCALL_SCRIPTS"

// syscallScriptListEnv, if set, replaces syscallScripts with its
// space-separated paths (under the corpus's tcp folder).
const syscallScriptListEnv = "PCAP2PKT_SCRIPTS"

// mirrorCorpus makes a tree of symlinks to the corpus in a temporary
// folder, turning the files that stand for upstream symlinks (a git
// checkout without symlink support stores `../../common/defaults.sh` as a
// plain file) back into symlinks, so that scripts' init commands run.
func mirrorCorpus(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		target := path
		if info, err := d.Info(); err == nil && info.Size() < 256 && info.Mode().Perm()&0o111 == 0 {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			link := strings.TrimSpace(string(b))
			if link != "" && !strings.ContainsAny(link, "\n ") && strings.HasPrefix(link, "..") {
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), link)); err == nil {
					target = link
				}
			}
		}
		return os.Symlink(target, out)
	})
	if err != nil {
		t.Fatalf("mirroring the corpus: %v", err)
	}
	return dst
}

// runCorpusScript runs one corpus script as the conformance run does.
func runCorpusScript(t *testing.T, rel, family string) (string, error) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join(corpusDir, "tcp", rel))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("corpus script missing: %v", err)
	}
	defines := corpusFamilies[family]
	s, err := parser.ParseFile(path, src, &parser.Config{Defines: defines})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	cfg := NewConfig()
	for _, a := range syscallScriptArgs[family] {
		n, v, _ := strings.Cut(a, "=")
		if err := cfg.Set(n, v); err != nil {
			t.Fatalf("option %s: %v", a, err)
		}
	}
	for k, v := range defines {
		if err := cfg.Set("define", k+"="+v); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	env := kernelEnv(t, cfg, s, path, &out)
	defer env.Device.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := filepath.Join(mirrorCorpus(t), "tcp", filepath.Dir(rel))
	env.Dir = dir
	err = Run(ctx, s, cfg, env)
	return out.String(), err
}

// TestKernelSyscallScripts runs the corpus scripts that use these system
// calls and expects the reference's verdict on this machine.
func TestKernelSyscallScripts(t *testing.T) {
	family := os.Getenv(syscallScriptsEnv)
	switch family {
	case "":
		t.Skipf("skipping: set %s to a family (ipv4, ipv4-mapped-ipv6, ipv6) to run (one sandbox per script)", syscallScriptsEnv)
	case "1":
		family = "ipv4"
	}
	if syscallScriptArgs[family] == nil {
		t.Fatalf("%s=%s: family must be ipv4, ipv4-mapped-ipv6 or ipv6", syscallScriptsEnv, family)
	}
	verdicts := readVerdicts(t, family)
	scripts := syscallScripts
	if list := os.Getenv(syscallScriptListEnv); list != "" {
		scripts = strings.Fields(list)
	}
	for _, rel := range scripts {
		t.Run(strings.ReplaceAll(rel, "/", "_"), func(t *testing.T) {
			if !inSandbox(t) {
				return
			}
			want, known := verdicts["tcp/"+rel]
			out, err := runCorpusScript(t, rel, family)
			switch {
			case known && want.pass && err != nil:
				t.Fatalf("reference passes, we fail: %v\noutput:\n%s", err, out)
			case known && !want.pass && err == nil:
				t.Fatalf("reference fails, we pass; output:\n%s", out)
			}
			t.Logf("reference passes: %v (known %v), we: %v", want.pass, known, err)
		})
	}
}
