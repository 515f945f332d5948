package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options say what to boot and how.
type Options struct {
	Kernel string // a bzImage or vmlinux
	// Modules is the kernel's module folder; "" means /lib/modules/RELEASE
	// when it exists (a kernel without modules has everything built in).
	Modules string
	// Deterministic runs the guest in virtual time under TCG: one
	// nanosecond per instruction, idle time skipped (QEMU's -icount
	// shift=0,sleep=off). Timing then depends on the guest's work only, not
	// on how busy the host is. Under KVM it cannot apply.
	Deterministic bool
	Memory        int      // MiB per machine; 0 means 1024
	Writable      []string // host folders the guest may write (outputs)
}

// UnsupportedError says why scripts cannot run in a VM here: no QEMU, a
// kernel that lacks a feature, a pcap2pkt built with cgo.
type UnsupportedError struct{ Msg string }

func (e *UnsupportedError) Error() string { return e.Msg }

func unsupported(format string, args ...any) error {
	return &UnsupportedError{Msg: fmt.Sprintf(format, args...)}
}

// Host holds what every machine of a run shares: the kernel, the
// initramfs and the QEMU command line.
type Host struct {
	Kernel *Kernel
	Accel  string // "kvm" or "tcg"
	// Deterministic is Options.Deterministic where it applies (TCG).
	Deterministic bool
	qemu          string
	dir           string // temporary: the initramfs and each machine's console
	initrd        string
	opts          Options
	shares        []share
	n             int
	mu            sync.Mutex
}

// modulesBefore9p are loaded from the initramfs: the guest needs them to
// reach the host's root, where the other modules are.
var modulesBefore9p = []string{"virtio_pci", "9pnet_virtio", "9p"}

// layerModule lays the initramfs's copies over the host's root; without
// it the guest reads everything over 9p.
const layerModule = "overlay"

// Prepare checks that machines can be booted here and writes the initramfs.
// Close removes it.
func Prepare(o Options) (*Host, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, unsupported("--kernel needs QEMU (qemu-system-x86_64 not found; on Debian: apt-get install qemu-system-x86)")
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		return nil, err
	}
	if dynamic(bin) {
		return nil, unsupported("--kernel needs a static pcap2pkt to run as the VM's init; this one is dynamically linked: build it with CGO_ENABLED=0 go install ./cmd/pcap2pkt")
	}
	cache, err := os.UserCacheDir()
	if err == nil {
		cache = filepath.Join(cache, "pcap2pkt")
	}
	k, err := OpenKernel(o.Kernel, cache)
	if err != nil {
		return nil, err
	}
	h := &Host{Kernel: k, qemu: qemu, opts: o, Accel: detectAccel()}
	h.Deterministic = o.Deterministic && h.Accel == "tcg"

	cfg := guestConfig{Env: guestEnv(), Seed: make([]byte, 64)}
	if _, err := rand.Read(cfg.Seed); err != nil {
		return nil, err
	}
	modules := o.Modules
	if modules == "" {
		modules = filepath.Join("/lib/modules", k.Release)
		if _, err := os.Stat(modules); err != nil {
			modules = ""
		}
	}
	var ix *moduleIndex
	if modules != "" {
		abs, err := filepath.Abs(modules)
		if err != nil {
			return nil, err
		}
		ix, err = readModuleIndex(abs)
		if err != nil {
			return nil, fmt.Errorf("--modules: %w", err)
		}
		cfg.Modules = abs
	}
	for i, w := range o.Writable {
		abs, err := filepath.Abs(w)
		if err != nil {
			return nil, err
		}
		h.shares = append(h.shares, share{Tag: fmt.Sprintf("out%d", i), Path: abs})
	}
	cfg.Shares = h.shares

	h.dir, err = os.MkdirTemp("", "pcap2pkt-vm-")
	if err != nil {
		return nil, err
	}
	h.initrd = filepath.Join(h.dir, "initramfs.cpio")
	if err := writeInitramfs(h.initrd, bin, &cfg, ix); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Close removes the host's temporary files. Machines must be closed first.
func (h *Host) Close() error { return os.RemoveAll(h.dir) }

// dynamic reports whether an executable needs a dynamic loader.
func dynamic(bin []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return false
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// detectAccel picks KVM when it can run a stock kernel: /dev/kvm opens and
// answers, and it is not PVM (kvm_pvm), a KVM that runs only guests built
// for it.
func detectAccel() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "tcg"
	}
	defer f.Close()
	const kvmGetAPIVersion = 0xae00
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil || v != 12 {
		return "tcg"
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return "tcg"
	}
	return "kvm"
}

// systemPath are the system's folders of programs, in their usual order.
var systemPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// guestEnv is the environment the guest's commands get: the host's locale
// and search path, nothing else of the host's. The system's folders come
// first in the path: a user's folders often hold wrappers, such as pyenv's
// python3 shim (bash scripts that start more bash: 5 s per python3 in a
// VM), and scripts mean the system's programs. nstat keeps its history in
// the guest's own /run instead of /tmp (its default), whose lookups reach
// the host's /tmp beneath the guest's over 9p: the guest's clock runs on
// while it waits for the host, so a script's timing (fastopen's
// icmp-before-accept calls nstat between packets) followed the host's load.
func guestEnv() []string {
	env := []string{"HOME=/root", "TERM=dumb", "NSTAT_HISTORY=/run/.nstat.u0"}
	path := append([]string(nil), systemPath...)
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH":
			for _, d := range filepath.SplitList(value) {
				if d != "" && !slices.Contains(path, filepath.Clean(d)) {
					path = append(path, d)
				}
			}
		case name == "TZ" || name == "LANG" || strings.HasPrefix(name, "LC_"):
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+strings.Join(path, ":"))
}

func writeInitramfs(path string, bin []byte, cfg *guestConfig, ix *moduleIndex) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	c := &cpioWriter{w: w}
	for _, d := range []string{"dev", "proc", "sys", "sbin", "host", "layer", "modules", "ram", "root"} {
		c.add(d, cpioDir|0o755, nil)
	}
	c.add("init", cpioFile|0o755, bin)
	c.add("sbin/modprobe", cpioSymlink|0o777, []byte("/init"))
	cfg.Layer = true
	if ix != nil {
		seen := map[string]bool{}
		for _, m := range append(modulesBefore9p, layerModule) {
			files, builtin, err := ix.resolve(m)
			if builtin {
				continue
			}
			if err != nil && m == layerModule {
				cfg.Layer = false
				continue
			}
			if err != nil {
				f.Close()
				return unsupported("the kernel cannot reach the host's files: %v (it needs CONFIG_VIRTIO_PCI, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS)", err)
			}
			for _, file := range files {
				if seen[file] {
					continue
				}
				seen[file] = true
				data, err := os.ReadFile(file)
				if err != nil {
					f.Close()
					return err
				}
				name := "modules/" + filepath.Base(file)
				c.add(name, cpioFile|0o644, data)
				cfg.Preload = append(cfg.Preload, "/"+name)
			}
		}
	}
	if cfg.Layer {
		l := hotLayer(cfg.Env)
		if err := l.write(c, strings.TrimPrefix(layerDir, "/")); err != nil {
			f.Close()
			return err
		}
		cfg.Opaque, cfg.Binds = l.opaque, l.binds
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		f.Close()
		return err
	}
	c.add(strings.TrimPrefix(configPath, "/"), cpioFile|0o644, js)
	c.close()
	if c.err != nil {
		f.Close()
		return c.err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Machine is one booted guest that runs requests one at a time.
type Machine struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	lines   chan []byte
	exited  chan struct{}
	console string
	stderr  bytes.Buffer
	// Release is what the guest's uname says.
	Release string
}

// bootTimeout bounds the wait for a guest to be ready; a boot takes 2-6 s
// alone, several times that with other machines booting on the same cores.
const bootTimeout = 3 * time.Minute

// Boot starts a machine and waits until it is ready for requests.
func (h *Host) Boot(ctx context.Context) (*Machine, error) {
	h.mu.Lock()
	h.n++
	n := h.n
	h.mu.Unlock()
	m := &Machine{console: filepath.Join(h.dir, fmt.Sprintf("console-%d.log", n)), exited: make(chan struct{}), lines: make(chan []byte, 1)}
	mem := h.opts.Memory
	if mem == 0 {
		mem = 1024
	}
	args := []string{
		"-machine", "pc,accel=" + h.Accel, "-smp", "1", "-m", fmt.Sprint(mem),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
		"-kernel", h.Kernel.Boot, "-initrd", h.initrd,
		"-append", h.cmdline(),
		"-serial", "file:" + m.console, "-serial", "stdio",
		"-virtfs", "local,path=/,mount_tag=" + rootTag + ",security_model=none,readonly=on,multidevs=remap",
	}
	if h.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	if h.Deterministic {
		args = append(args, "-icount", "shift=0,sleep=off")
	}
	for _, s := range h.shares {
		args = append(args, "-virtfs", "local,path="+s.Path+",mount_tag="+s.Tag+",security_model=none,multidevs=remap")
	}
	m.cmd = exec.Command(h.qemu, args...)
	m.cmd.Stderr = &m.stderr
	m.cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	var err error
	if m.in, err = m.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting QEMU: %w", err)
	}
	go func() {
		r := bufio.NewReaderSize(out, 64<<10)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				break
			}
			m.lines <- line
		}
		m.cmd.Wait()
		close(m.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	msg, err := m.next(ctx)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("booting %s: %w", h.Kernel.Image, err)
	}
	switch {
	case msg.Missing != "":
		m.Close()
		return nil, unsupported("kernel %s (%s) cannot run scripts: %s", h.Kernel.Image, h.Kernel.Release, msg.Missing)
	case msg.Fatal != "":
		m.Close()
		return nil, fmt.Errorf("kernel %s: the guest's set-up failed: %s%s", h.Kernel.Image, msg.Fatal, m.consoleTail())
	case msg.Ready == "":
		m.Close()
		return nil, fmt.Errorf("kernel %s: unexpected first message from the guest%s", h.Kernel.Image, m.consoleTail())
	}
	m.Release = msg.Ready
	return m, nil
}

// cmdline is the guest kernel's command line.
//
// cryptomgr.notests: the crypto self-tests are most of the boot's
// instructions (0.74 of 1.6 s in virtual time). norandmaps: QEMU's TCG keys
// the code it translates by virtual address, so with randomized mappings
// every program start translates ld.so, libc and the program anew; at the
// same addresses each start reuses the last one's (30 sysctl runs: 0.9-1.0 s
// of host time instead of 2.1-2.4 s; the upstream scripts' own runs: 5.7 s
// instead of 14.5 s for five). nolapic_timer, under TCG: the kernel
// calibrates the local APIC's timer by spinning for 200 ms of guest time,
// which in deterministic time are 200 million instructions (2.8 s of host
// time, a third of the boot); without it the HPET is the clock event device.
// mitigations=off: the guest's defences against speculative execution
// (retpolines, return stack filling, user-copy barriers) are instructions
// on every system call and indirect call, which TCG emulates one by one and
// which no emulated CPU needs; they do not touch the network stack's
// behaviour (the ipv4 suite: 62 s instead of 77 s in two VMs).
func (h *Host) cmdline() string {
	c := "console=ttyS0 quiet panic=-1 cryptomgr.notests norandmaps mitigations=off"
	if h.Accel == "tcg" {
		c += " nolapic_timer"
	}
	return c
}

// next reads the guest's next message.
func (m *Machine) next(ctx context.Context) (*guestMessage, error) {
	select {
	case line := <-m.lines:
		var msg guestMessage
		if err := json.Unmarshal(line, &msg); err != nil {
			return nil, fmt.Errorf("garbled message from the guest: %q", line)
		}
		return &msg, nil
	case <-m.exited:
		return nil, fmt.Errorf("the VM stopped (%s)%s", strings.TrimSpace(m.stderr.String()), m.consoleTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// consoleTail is the end of the guest's console, for errors.
func (m *Machine) consoleTail() string {
	b, err := os.ReadFile(m.console)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\nthe guest's console ended with:\n  " + strings.Join(lines, "\n  ")
}

// cancelWait bounds how long a canceled run may take to stop in the guest.
const cancelWait = time.Minute

// Run runs one request until it ends or ctx does; then the run is
// canceled in the guest and its result says so. An error means the
// machine is unusable.
func (m *Machine) Run(ctx context.Context, req Request) (*Result, error) {
	if err := m.send(req); err != nil {
		return nil, err
	}
	msg, err := m.next(ctx)
	if ctx.Err() != nil && err == ctx.Err() {
		if err := m.send(Request{Cancel: true}); err != nil {
			return nil, err
		}
		wait, cancel := context.WithTimeout(context.Background(), cancelWait)
		defer cancel()
		msg, err = m.next(wait)
	}
	if err != nil {
		return nil, err
	}
	if msg.Result == nil {
		return nil, fmt.Errorf("the guest failed: %s", msg.Fatal)
	}
	return msg.Result, nil
}

func (m *Machine) send(req Request) error {
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := m.in.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("the VM stopped: %w", err)
	}
	return nil
}

// Close stops the machine. Its results are all in: nothing is lost.
func (m *Machine) Close() error {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	<-m.exited
	return nil
}
