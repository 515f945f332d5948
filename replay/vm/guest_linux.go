package vm

// The guest's init is this binary, pid 1 in the initramfs. It mounts the
// host's root over 9p at /host with the guest's own /proc, /sys, /dev, /run
// and a writable /tmp (the host's, with an in-memory layer on top), loads
// the tun module, and moves into /host, so that scripts' shell lines find
// the host's sh, bash, python3, ip and tc where they are on the host. It
// then starts the server (this binary again) that answers requests, and
// stays behind to reap orphans, which every pid 1 must. The kernel's module
// loader (modprobe) is this binary too: it is run in the initramfs's root,
// which pid 1 leaves to the kernel's threads by unsharing its file system
// state before it changes root.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"golang.org/x/sys/unix"
)

// IsGuest reports whether this process is pcap2pkt's part of a VM: its
// init, its server, or the kernel's module loader. Main calls GuestMain
// then, before anything else.
func IsGuest() bool {
	if os.Getenv(serverEnv) == "1" {
		return true
	}
	if _, err := os.Stat(configPath); err != nil {
		return false
	}
	return os.Getpid() == 1 || filepath.Base(os.Args[0]) == "modprobe"
}

// GuestMain runs the guest's part and returns the exit code.
func GuestMain() int {
	switch {
	case os.Getenv(serverEnv) == "1":
		return serve()
	case os.Getpid() == 1:
		initMain()
		return 0
	default:
		return modprobeMain(os.Args[1:])
	}
}

func readGuestConfig() (*guestConfig, error) {
	b, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	var c guestConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	return &c, nil
}

// initMain sets the guest up, runs the server and powers off when it ends.
func initMain() {
	defer poweroff()
	for _, m := range []mount{
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, ""},
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	} {
		if err := doMount(m); err != nil {
			fmt.Fprintf(os.Stderr, "pcap2pkt init: %v\n", err)
			return
		}
	}
	port, err := openPort()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pcap2pkt init: %v\n", err)
		return
	}
	say := func(m guestMessage) {
		b, _ := json.Marshal(m)
		port.Write(append(b, '\n'))
	}
	cfg, missing, err := setUp()
	switch {
	case missing != "":
		say(guestMessage{Missing: missing})
		return
	case err != nil:
		say(guestMessage{Fatal: err.Error()})
		return
	}
	port.Close()
	srv := exec.Command("/proc/self/exe")
	srv.Args[0] = "pcap2pkt"
	srv.Env = append(cfg.Env, serverEnv+"=1")
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		if port, perr := openPort(); perr == nil {
			b, _ := json.Marshal(guestMessage{Fatal: "starting the server: " + err.Error()})
			port.Write(append(b, '\n'))
		}
		return
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if pid == srv.Process.Pid || errors.Is(err, unix.ECHILD) {
			return
		}
	}
}

func poweroff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// openPort opens the protocol's serial port in raw mode: no echo, no line
// editing, no newline translation.
func openPort() (*os.File, error) {
	f, err := os.OpenFile(protoPort, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("protocol port: %w", err)
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("protocol port: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CLOCAL | unix.CREAD
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		f.Close()
		return nil, fmt.Errorf("protocol port: %w", err)
	}
	return f, nil
}

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// setUp does everything before the server starts. missing is set when the
// kernel lacks something scripts need, saying which configuration option.
func setUp() (cfg *guestConfig, missing string, err error) {
	cfg, err = readGuestConfig()
	if err != nil {
		return nil, "", err
	}
	if err := seedRandom(cfg.Seed); err != nil {
		return nil, "", err
	}
	for _, p := range cfg.Preload {
		if err := loadModule(p); err != nil {
			return nil, "", err
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return nil, "the kernel has no network namespaces (CONFIG_NET_NS)", nil
	}
	if err := unix.Mount(rootTag, hostMount, "9p", unix.MS_RDONLY, "trans=virtio,version=9p2000.L,msize=512000,cache=loose"); err != nil {
		return nil, fmt.Sprintf("cannot mount the host's root over 9p (%v): the kernel needs CONFIG_VIRTIO_PCI, CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS, built in or as modules in the module folder", err), nil
	}
	root := hostMount
	if cfg.Layer {
		for _, d := range cfg.Opaque {
			// Without the mark the folder is merged with the host's:
			// the same files, read more slowly.
			_ = unix.Setxattr(filepath.Join(layerDir, d), "trusted.overlay.opaque", []byte("y"), 0)
		}
		// Without overlayfs the guest reads everything over 9p.
		if err := unix.Mount("overlay", rootMount, "overlay", unix.MS_RDONLY, "lowerdir="+layerDir+":"+hostMount); err == nil {
			root = rootMount
			for _, d := range cfg.Binds {
				if err := unix.Mount(filepath.Join(hostMount, d), filepath.Join(rootMount, d), "", unix.MS_BIND, ""); err != nil {
					return nil, "", fmt.Errorf("mounting the host's %s over the layer's: %w", d, err)
				}
			}
		}
	}
	h := func(p string) string { return filepath.Join(root, p) }
	mounts := []mount{
		{"proc", h("/proc"), "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", h("/sys"), "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"devtmpfs", h("/dev"), "devtmpfs", unix.MS_NOSUID, ""},
		{"devpts", h("/dev/pts"), "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666"},
		{"tmpfs", h("/dev/shm"), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, ""},
		{"tmpfs", h("/run"), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
		{"tmpfs", "/layer", "tmpfs", 0, ""},
	}
	for _, m := range mounts {
		if err := doMount(m); err != nil {
			return nil, "", err
		}
	}
	// Scripts write to /tmp (upstream's set_sysctls.py, sendfile's test
	// file) and may live there: the host's /tmp with an in-memory layer on
	// top keeps both, and nothing reaches the host.
	for _, d := range []string{"/layer/tmp", "/layer/tmp.work", "/layer/var-tmp", "/layer/var-tmp.work"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, "", err
		}
	}
	for _, d := range [][2]string{{"/tmp", "tmp"}, {"/var/tmp", "var-tmp"}} {
		if _, err := os.Stat(h(d[0])); err != nil {
			continue
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=/layer/%s,workdir=/layer/%s.work", filepath.Join(hostMount, d[0]), d[1], d[1])
		if err := unix.Mount("overlay", h(d[0]), "overlay", 0, opts); err != nil {
			// Without overlayfs the folder is the guest's own.
			if err := doMount(mount{"tmpfs", h(d[0]), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"}); err != nil {
				return nil, "", err
			}
		}
		os.Chmod(h(d[0]), 0o1777)
	}
	for _, s := range cfg.Shares {
		if err := os.MkdirAll(h(s.Path), 0o755); err != nil {
			return nil, "", fmt.Errorf("share %s: %w", s.Path, err)
		}
		if err := unix.Mount(s.Tag, h(s.Path), "9p", 0, "trans=virtio,version=9p2000.L,msize=512000,cache=none"); err != nil {
			return nil, "", fmt.Errorf("mounting the host's %s (9p %s): %w", s.Path, s.Tag, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		if err := modprobe(cfg, "tun"); err != nil {
			return nil, fmt.Sprintf("the kernel has no TUN device (CONFIG_TUN): %v", err), nil
		}
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			return nil, "the kernel has no TUN device (CONFIG_TUN): /dev/net/tun missing after loading tun", nil
		}
	}
	// The kernel's threads share pid 1's root until it unshares it: they
	// keep the initramfs's, where modprobe is this binary.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, "", fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Chroot(root); err != nil {
		return nil, "", fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := os.Chdir("/"); err != nil {
		return nil, "", err
	}
	return cfg, "", nil
}

// seedRandom credits the kernel's random pool with the host's seed. A VM has
// no other source of entropy that the kernel trusts early, and in
// deterministic time no timing jitter either: without this, getrandom(2)
// (python3's os.urandom, for one) would block forever.
func seedRandom(seed []byte) error {
	f, err := os.OpenFile("/dev/random", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// struct rand_pool_info: entropy_count (bits), buf_size (bytes), buf.
	info := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(info, uint32(8*len(seed)))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(seed)))
	copy(info[8:], seed)
	const rndAddEntropy = 0x40085203 // _IOW('R', 0x03, int[2])
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndAddEntropy, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return fmt.Errorf("seeding the random pool: %w", errno)
	}
	return nil
}

func doMount(m mount) error {
	if err := os.MkdirAll(m.target, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("mount %s: %w", m.target, err)
	}
	if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
	}
	return nil
}

// loadModule loads one module file; one that is loaded already is fine.
func loadModule(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if ext := filepath.Ext(file); ext == ".xz" || ext == ".zst" || ext == ".gz" {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("loading %s: %w", filepath.Base(file), err)
	}
	return nil
}

// modprobe loads a module or alias and what it depends on from the host's
// module folder, seen from the initramfs's root.
func modprobe(cfg *guestConfig, name string) error {
	if cfg.Modules == "" {
		return fmt.Errorf("module %s: no module folder", name)
	}
	ix, err := readModuleIndex(filepath.Join(hostMount, cfg.Modules))
	if err != nil {
		return err
	}
	files, builtin, err := ix.resolve(name)
	if err != nil || builtin {
		return err
	}
	for _, f := range files {
		if err := loadModule(f); err != nil {
			return err
		}
	}
	return nil
}

// modprobeMain is the kernel's module loader: "modprobe -q -- NAME".
func modprobeMain(args []string) int {
	cfg, err := readGuestConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "modprobe:", err)
		return 1
	}
	code := 0
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if err := modprobe(cfg, a); err != nil {
			code = 1
		}
	}
	return code
}

// serve answers requests until the host stops the machine. A reader
// passes requests on and cancels the one running when the host says so.
func serve() int {
	os.Unsetenv(serverEnv)
	port, err := openPort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcap2pkt server:", err)
		return 1
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	enc := json.NewEncoder(port)
	if err := enc.Encode(guestMessage{Ready: string(bytes.TrimRight(uts.Release[:], "\x00"))}); err != nil {
		return 1
	}
	reqs := make(chan *Request)
	var mu sync.Mutex
	var cancelRun context.CancelFunc
	go func() {
		defer close(reqs)
		in := bufio.NewReader(port)
		for {
			line, err := in.ReadBytes('\n')
			if err != nil {
				return
			}
			var req Request
			if err := json.Unmarshal(line, &req); err != nil {
				continue
			}
			if req.Cancel {
				mu.Lock()
				if cancelRun != nil {
					cancelRun()
				}
				mu.Unlock()
				continue
			}
			reqs <- &req
		}
	}()
	for req := range reqs {
		ctx, cancel := context.WithCancel(context.Background())
		mu.Lock()
		cancelRun = cancel
		mu.Unlock()
		res := runRequest(ctx, req)
		mu.Lock()
		cancelRun = nil
		mu.Unlock()
		cancel()
		if err := enc.Encode(guestMessage{Result: res}); err != nil {
			return 1
		}
	}
	return 0
}

func runRequest(ctx context.Context, req *Request) *Result {
	res := &Result{}
	if err := os.Chdir(req.Dir); err != nil {
		res.Code, res.Err = -1, err.Error()
		return res
	}
	var stdout, stderr bytes.Buffer
	errw := &stdout
	if req.SplitStderr {
		errw = &stderr
	}
	before := childrenCPU()
	sr, err := replay.RunSandboxed(ctx, req.Args, nil, &stdout, errw)
	res.CPU = childrenCPU() - before
	res.Code, res.Failure, res.Stdout, res.Stderr = sr.ExitCode, sr.Failure, stdout.Bytes(), stderr.Bytes()
	switch {
	case ctx.Err() != nil:
		res.Canceled = true
	case err != nil:
		res.Err = err.Error()
	}
	return res
}

// childrenCPU is the processor time of the server's children that have
// been waited for, and of what they waited for in turn.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
