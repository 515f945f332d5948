package vm

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestCPIO checks the archive with the system's cpio, which reads what the
// kernel reads.
func TestCPIO(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("skipping: no cpio command to read the archive back")
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.add("dir", cpioDir|0o755, nil)
	c.add("dir/a", cpioFile|0o644, []byte("hello"))
	c.add("link", cpioSymlink|0o777, []byte("dir/a"))
	c.add("b", cpioFile|0o755, []byte("odd length!"))
	const mtime = 1700000000
	c.addTimed("dated", cpioFile|0o644, mtime, []byte("kept"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"dir/a": "hello", "link": "hello", "b": "odd length!"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "b")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("b: mode %v, %v; want 0755", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "dir/a" {
		t.Errorf("link -> %q, %v", target, err)
	}
	// A copy keeps its modification time (python3 checks it against its
	// compiled modules').
	if fi, err := os.Stat(filepath.Join(dir, "dated")); err != nil || fi.ModTime().Unix() != mtime {
		t.Errorf("dated: %v, %v; want modification time %d", fi, err, mtime)
	}
}

func TestModuleResolve(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"modules.dep": "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko\n" +
			"kernel/net/9p/9pnet.ko:\nkernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\nkernel/fs/netfs/netfs.ko:\n" +
			"kernel/net/sched/sch_fq.ko:\nkernel/drivers/net/tun.ko:\n",
		"modules.builtin": "kernel/net/ipv6/ipv6.ko\n",
		"modules.alias":   "# Aliases extracted from modules themselves.\nalias net-sch-fq sch_fq\nalias char-major-10-200 tun\nalias devname:net/tun tun\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := readModuleIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	rel := func(files []string) []string {
		var out []string
		for _, f := range files {
			out = append(out, strings.TrimPrefix(f, dir+"/"))
		}
		return out
	}
	files9p, builtin, err := ix.resolve("9p")
	if err != nil || builtin {
		t.Fatalf("9p: %v, builtin %v", err, builtin)
	}
	want := []string{"kernel/fs/netfs/netfs.ko", "kernel/fs/fscache/fscache.ko", "kernel/net/9p/9pnet.ko", "kernel/fs/9p/9p.ko"}
	if got := rel(files9p); !reflect.DeepEqual(got, want) {
		t.Errorf("9p loads %v, want %v", got, want)
	}
	if got, _, err := ix.resolve("char-major-10-200"); err != nil || !reflect.DeepEqual(rel(got), []string{"kernel/drivers/net/tun.ko"}) {
		t.Errorf("alias char-major-10-200: %v, %v", rel(got), err)
	}
	if got, _, err := ix.resolve("sch-fq"); err != nil || !reflect.DeepEqual(rel(got), []string{"kernel/net/sched/sch_fq.ko"}) {
		t.Errorf("sch-fq: %v, %v", rel(got), err)
	}
	if _, builtin, err := ix.resolve("ipv6"); err != nil || !builtin {
		t.Errorf("ipv6: builtin %v, %v", builtin, err)
	}
	if _, _, err := ix.resolve("nosuch"); err == nil {
		t.Error("nosuch: no error")
	}
}

// TestSetupHeader builds the start of a bzImage as the boot protocol lays
// it out.
func TestSetupHeader(t *testing.T) {
	img := make([]byte, 5*512+64)
	le := binary.LittleEndian
	img[0x1f1] = 4
	copy(img[0x202:], "HdrS")
	le.PutUint16(img[0x206:], 0x20f)
	version := "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP"
	copy(img[0x300:], version+"\x00")
	le.PutUint16(img[0x20e:], 0x300-0x200)
	payload := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3, 4}
	le.PutUint32(img[0x248:], 16)
	le.PutUint32(img[0x24c:], uint32(len(payload)))
	copy(img[5*512+16:], payload)
	h, err := parseSetupHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	if h.release != "6.1.0-57-amd64" || !bytes.Equal(h.payload, payload) {
		t.Errorf("release %q payload %x", h.release, h.payload)
	}
	if _, err := parseSetupHeader(make([]byte, 4096)); err == nil {
		t.Error("no error for a file without a setup header")
	}
	le.PutUint32(img[0x24c:], 1<<20)
	if _, err := parseSetupHeader(img); err == nil {
		t.Error("no error for a payload past the end")
	}
}

func TestELFRelease(t *testing.T) {
	data := []byte("junk\x00Linux version %s (%s)\x00more\x00Linux version 6.1.0-57-amd64 (builder@host) (gcc) #1\x00")
	if got := elfRelease(data); got != "6.1.0-57-amd64" {
		t.Errorf("got %q", got)
	}
	if got := elfRelease([]byte("nothing here")); got != "" {
		t.Errorf("got %q from no banner", got)
	}
}

// TestGuestEnv: the system's folders come first in the guest's search path,
// the host's others after them, each once; nothing else of the host's
// environment but its locale passes.
func TestGuestEnv(t *testing.T) {
	t.Setenv("PATH", "/root/.pyenv/shims:/usr/bin:/opt/tools/bin::/bin/")
	t.Setenv("LANG", "de_DE.UTF-8")
	t.Setenv("SECRET_TOKEN", "x")
	env := guestEnv()
	want := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/root/.pyenv/shims:/opt/tools/bin"
	if !slices.Contains(env, want) {
		t.Errorf("env %q lacks %q", env, want)
	}
	if !slices.Contains(env, "LANG=de_DE.UTF-8") {
		t.Errorf("env %q lacks the locale", env)
	}
	if !slices.Contains(env, "NSTAT_HISTORY=/run/.nstat.u0") {
		t.Errorf("env %q leaves nstat's history in /tmp, which reaches the host over 9p", env)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "SECRET_TOKEN=") {
			t.Errorf("env passes %s", kv)
		}
	}
}

func TestLocaleNames(t *testing.T) {
	got := localeNames([]string{"PATH=/bin", "LANG=de_DE.UTF-8", "LC_TIME=sr_RS.UTF-8@latin", "LC_CTYPE=../../etc", "LC_ALL="})
	want := []string{"C.UTF-8", "C.utf8", "de_DE.UTF-8", "de_DE.utf8", "sr_RS.UTF-8@latin", "sr_RS.utf8@latin"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestHotLayer: the layer holds the shell and python3's standard library
// without the static libpython, and the C library's locale.
func TestHotLayer(t *testing.T) {
	l := hotLayer([]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"})
	sh, err := lookPath("sh", "/usr/bin:/bin")
	if err != nil {
		t.Skip("skipping: no sh")
	}
	if _, ok := l.entries[sh]; !ok {
		t.Errorf("no %s in the layer", sh)
	}
	for p := range l.entries {
		// The folder itself may be there, empty, for the host's.
		if strings.Contains(p, "/config-") && strings.Contains(p, "/python") && !slices.Contains(l.binds, p) {
			t.Fatalf("the layer holds %s", p)
		}
	}
	// python3's search path: its folders opaque, what they hold in the
	// layer but the folders to mount from the host, which are empty there.
	if _, err := lookPath("python3", "/usr/bin:/bin"); err == nil {
		if len(l.opaque) == 0 {
			t.Error("no opaque folders with python3 on the path")
		}
		for _, b := range l.binds {
			if !slices.Contains(l.opaque, filepath.Dir(b)) {
				t.Errorf("%s mounted in a folder that is not opaque", b)
			}
			for p := range l.entries {
				if strings.HasPrefix(p, b+"/") {
					t.Errorf("%s in the layer under %s, which the host's hides", p, b)
				}
			}
		}
	}
	if fi, err := os.Stat("/usr/lib/locale/C.utf8/LC_CTYPE"); err == nil && fi.Mode().IsRegular() {
		if _, ok := l.entries["/usr/lib/locale/C.utf8/LC_CTYPE"]; !ok {
			t.Error("no C.utf8 locale in the layer")
		}
	}
}
