package replay

// The sandbox is a child process (this same executable) in a network
// namespace of its own. The namespace lives exactly as long as the child's
// process group: when the run ends every member is killed, so no interface,
// route or sysctl of a run survives it and nothing touches the host's network.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SandboxEnv is the environment variable that marks the sandboxed child.
const SandboxEnv = "PCAP2PKT_SANDBOX"

// InSandbox reports whether this process is the sandboxed child started by
// RunSandboxed.
func InSandbox() bool { return os.Getenv(SandboxEnv) == "1" }

// sandboxWaitDelay bounds how long RunSandboxed waits for the child's output
// pipes to close after the child has died.
const sandboxWaitDelay = 2 * time.Second

// RunSandboxed runs this executable again (/proc/self/exe) with args, in a new
// network namespace and a new process group, with SandboxEnv set. SIGINT and
// SIGTERM received meanwhile are forwarded to the child's process group. When
// the child exits, or ctx ends, the whole group is killed. It returns the
// child's exit code (128+signal if a signal killed it); err is ctx.Err() if
// ctx ended the run, or the reason the child could not be run.
func RunSandboxed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error) {
	if InSandbox() {
		return -1, errors.New("replay: already inside the sandbox")
	}
	// Pdeathsig is delivered when the creating thread dies, not the process:
	// keep this goroutine on one thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), SandboxEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.WaitDelay = sandboxWaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNET,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}

	// Subscribe before Start so that a signal arriving during the start is
	// not lost (it would kill us and leave the group running).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("replay: start sandbox (new network namespace): %w", err)
	}
	pgid := cmd.Process.Pid

	exited := make(chan error, 1)
	go func() { exited <- waitExitNoReap(pgid) }()

	var ctxErr error
	for done := false; !done; {
		select {
		case sig := <-sigs:
			_ = unix.Kill(-pgid, sig.(syscall.Signal))
		case <-ctx.Done():
			ctxErr = ctx.Err()
			_ = unix.Kill(-pgid, unix.SIGKILL)
		case werr := <-exited:
			if werr != nil {
				_ = unix.Kill(-pgid, unix.SIGKILL)
				_ = cmd.Wait()
				return -1, fmt.Errorf("replay: wait for sandbox: %w", werr)
			}
			done = true
		}
	}
	// The child is a zombie now, so its pid (the group id) cannot be reused:
	// killing the group reaches exactly the processes it left behind.
	_ = unix.Kill(-pgid, unix.SIGKILL)
	werr := cmd.Wait()
	code := exitStatus(cmd.ProcessState)
	if ctxErr != nil {
		return code, ctxErr
	}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) {
		return code, fmt.Errorf("replay: sandbox: %w", werr)
	}
	return code, nil
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
