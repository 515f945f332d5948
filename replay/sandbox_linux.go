package replay

// The sandbox is a child process (this same executable) in a network
// namespace of its own. The namespace lives exactly as long as the child's
// process group: when the run ends every member is killed, so no interface,
// route or sysctl of a run survives it and nothing touches the host's network.
// No mount namespace is needed: /proc/sys/net follows the network namespace
// of the process that opens it, and ip, tc and ss use netlink. Only
// /sys/class/net would still show the host's devices; no script reads it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// sandboxEnv is the environment variable that marks the sandboxed child.
const sandboxEnv = "PCAP2PKT_SANDBOX"

// handoffEnv gives the child the descriptor of its end of a socket to the
// parent. Releasing a packet socket waits for an RCU grace period (10-15 ms
// here), and the child would pay it on its way out; instead the child hands
// such descriptors to the parent, which closes them in the background.
const handoffEnv = "PCAP2PKT_SANDBOX_HANDOFF_FD"

// handoffFD is the child's end of the handoff socket, or -1.
var handoffFD = -1

func init() {
	if !InSandbox() {
		return
	}
	// The engine's goroutines sniff and inject packets while the script's
	// blocking system call holds its thread. With one processor (a VM's
	// single CPU) Go's runtime gives them one P, which the blocked call
	// keeps until the runtime's monitor, which sleeps while nothing runs,
	// takes it back:
	// in a VM's deterministic time the clock jumped that far, and the first
	// SYN of a blocking connect went out 6 to 17 ms before the engine saw
	// the call start.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	fd, err := strconv.Atoi(os.Getenv(handoffEnv))
	// The script's commands must not take whatever their descriptor 3 is
	// for the handoff socket.
	os.Unsetenv(handoffEnv)
	if err != nil || fd < 0 {
		return
	}
	// Inherited without close-on-exec; the script's shell commands must
	// not inherit it in turn.
	unix.CloseOnExec(fd)
	handoffFD = fd
}

// handOff gives the parent a duplicate of fds so that their last close,
// and its cost, happen there; the caller still closes its own copies.
// It reports whether the parent got them.
func handOff(fds ...int) bool {
	if handoffFD < 0 || len(fds) == 0 || len(fds) > maxHandoffFDs {
		return false
	}
	return unix.Sendmsg(handoffFD, []byte{0}, unix.UnixRights(fds...), nil, 0) == nil
}

// maxHandoffFDs bounds the descriptors of one handOff, so that the parent
// always has room to receive them.
const maxHandoffFDs = 8

// ReportFailure hands the parent the failure this sandboxed child ends
// with, as data: the JSON that --format=json prints for it, which
// RunSandboxed returns decoded in SandboxResult.Failure. A parse error
// list gives its first error; any other error its text. It reports
// whether the parent got it (false outside a sandbox).
func ReportFailure(err error) bool {
	if handoffFD < 0 || err == nil {
		return false
	}
	var pe *parser.Error
	var list parser.ErrorList
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &list) && len(list) > 0:
		pe = list[0]
	default:
		pe = &parser.Error{Msg: err.Error()}
	}
	b, jerr := json.Marshal(pe)
	if jerr != nil {
		return false
	}
	return unix.Sendmsg(handoffFD, b, nil, nil, 0) == nil
}

// InSandbox reports whether this process is the sandboxed child started by
// RunSandboxed.
func InSandbox() bool { return os.Getenv(sandboxEnv) == "1" }

// Unprivileged reports whether sandboxes run in a user namespace of their
// own, because this process is not root.
func Unprivileged() bool { return os.Geteuid() != 0 }

// UserNamespacesAllowed says why an unprivileged process cannot create a
// user namespace here, or nil when the kernel's settings allow it (the
// sandbox's start is the final word).
func UserNamespacesAllowed() error {
	for _, c := range []struct {
		path string
		ok   func(string) bool
		why  string
	}{
		{"/proc/sys/user/max_user_namespaces", func(v string) bool { return v != "0" }, "user.max_user_namespaces is 0"},
		{"/proc/sys/kernel/unprivileged_userns_clone", func(v string) bool { return v != "0" }, "kernel.unprivileged_userns_clone is 0"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", func(v string) bool { return v == "0" }, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns)"},
	} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			continue // the setting does not exist on this kernel
		}
		if !c.ok(strings.TrimSpace(string(b))) {
			return errors.New(c.why)
		}
	}
	return nil
}

// sandboxWaitDelay bounds how long RunSandboxed waits for the child's output
// pipes to close after the child has died.
const sandboxWaitDelay = 2 * time.Second

// SandboxResult is how a sandboxed run ended.
type SandboxResult struct {
	ExitCode int           // the child's exit code; 128+signal if a signal killed it
	Failure  *parser.Error // the failure the child reported (ReportFailure), or nil
}

// RunSandboxed runs this executable again (/proc/self/exe) with args, in a new
// network namespace and a new process group, with SandboxEnv set. SIGINT and
// SIGTERM received meanwhile are forwarded to the child's process group. When
// the child exits, or ctx ends, the whole group is killed. It returns the
// child's exit code and the failure it reported; err is ctx.Err() if ctx
// ended the run, or the reason the child could not be run.
func RunSandboxed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (res SandboxResult, err error) {
	res.ExitCode = -1
	if InSandbox() {
		return res, errors.New("replay: already inside the sandbox")
	}
	// Pdeathsig is delivered when the creating thread dies, not the process:
	// keep this goroutine on one thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	keepTimestampsOn()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("replay: sandbox handoff socket: %w", err)
	}
	// What the child handed off is read once it is gone: descriptors,
	// whose release is slow, are closed in the background.
	defer func() { res.Failure = collectHandoff(pair[0]) }()
	childEnd := os.NewFile(uintptr(pair[1]), "sandbox-handoff")
	defer childEnd.Close()

	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), sandboxEnv+"=1", handoffEnv+"=3")
	cmd.ExtraFiles = []*os.File{childEnd}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.WaitDelay = sandboxWaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNET,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if Unprivileged() {
		// As 'unshare -U -r -n': the child is root in a user namespace of
		// its own, which owns the new network namespace, so it may create
		// the TUN device, routes and the namespace's sysctls.
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}

	// Subscribe before Start so that a signal arriving during the start is
	// not lost (it would kill us and leave the group running).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("replay: start sandbox (new network namespace): %w", err)
	}
	pgid := cmd.Process.Pid
	childEnd.Close()

	exited := make(chan error, 1)
	go func() { exited <- waitExitNoReap(pgid) }()

	var ctxErr error
	ctxDone := ctx.Done()
	for done := false; !done; {
		select {
		case sig := <-sigs:
			_ = unix.Kill(-pgid, sig.(syscall.Signal))
		case <-ctxDone:
			ctxErr = ctx.Err()
			ctxDone = nil // once is enough; the child's exit follows
			_ = unix.Kill(-pgid, unix.SIGKILL)
		case werr := <-exited:
			if werr != nil {
				_ = unix.Kill(-pgid, unix.SIGKILL)
				_ = cmd.Wait()
				return res, fmt.Errorf("replay: wait for sandbox: %w", werr)
			}
			done = true
		}
	}
	// The child is a zombie now, so its pid (the group id) cannot be reused:
	// killing the group reaches exactly the processes it left behind.
	_ = unix.Kill(-pgid, unix.SIGKILL)
	werr := cmd.Wait()
	res.ExitCode = exitStatus(cmd.ProcessState)
	if ctxErr != nil {
		return res, ctxErr
	}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) {
		return res, fmt.Errorf("replay: sandbox: %w", werr)
	}
	return res, nil
}

// collectHandoff reads what the child sent on the handoff socket (the
// parent's end, fd) and closes it: descriptors, closed in the background,
// and the failure the child reported, if any.
func collectHandoff(fd int) *parser.Error {
	var failure *parser.Error
	var fds []int
	buf := make([]byte, maxFailureBytes)
	oob := make([]byte, unix.CmsgSpace(4*maxHandoffFDs))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			break
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if rights, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
		if n > 1 {
			var e parser.Error
			if json.Unmarshal(buf[:n], &e) == nil {
				failure = &e
			}
		}
	}
	go func() {
		for _, f := range fds {
			unix.Close(f)
		}
		unix.Close(fd)
	}()
	return failure
}

// maxFailureBytes bounds the JSON of a reported failure: its detail holds
// a few packets in script syntax.
const maxFailureBytes = 1 << 20

// timestampsOnce guards keepTimestampsOn.
var timestampsOnce sync.Once

// keepTimestampsOn holds, for the life of the process, a socket that wants
// packet timestamps. The kernel stamps packets only while some socket wants
// timestamps, and turns that on in a deferred work item: without this, each
// sandbox would turn it on anew, and the first packets of a run could miss
// their transmit timestamp (the kernel then uses the time of reading). The
// socket is an unbound UDP socket: it sends and receives nothing.
func keepTimestampsOn() {
	timestampsOnce.Do(func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) != nil {
			unix.Close(fd)
		}
	})
}

// waitExitNoReap waits until process pid has exited, leaving it a zombie.
func waitExitNoReap(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// exitStatus is the shell's convention: the exit code, or 128+signal.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
