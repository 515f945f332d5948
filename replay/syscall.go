package replay

// This file is the system call dispatcher: the callContext a system call
// implementation receives, the registry (registerSyscall, used from init()
// in the sys_*.go files), the running of a call (on a goroutine locked to its
// OS thread, so that a blocking call can be seen sleeping in the kernel, as
// the reference's syscall thread is), and the checking of its result and
// errno against the script.

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// syscallFunc runs one system call line. It evaluates the arguments
// through c, makes the live call through c.invoke and returns the call's
// result and errno; the engine then checks them against the script. err is
// for what is not a result of the call (bad arguments, unknown fd), and is
// reported as a runtime error at the line.
type syscallFunc func(c *callContext) (ret int64, errno syscall.Errno, err error)

// syscalls is the registry of built-in system calls, filled by init().
var syscalls = map[string]syscallFunc{}

// registerSyscall adds a system call implementation under its script name.
// It is called from init() functions; a duplicate name is a programming
// error.
func registerSyscall(name string, f syscallFunc) {
	if _, dup := syscalls[name]; dup {
		panic("replay: system call registered twice: " + name)
	}
	syscalls[name] = f
}

// callContext is what a syscallFunc sees: the call line, its arguments,
// the evaluator, the configuration, and the engine's fd and socket tables
// through methods.
type callContext struct {
	Ctx    context.Context
	Call   *parser.Syscall
	Args   []parser.Expr
	Eval   *evaluator
	Config *Config

	e        *engine
	blocking bool

	fdResult bool
	checks   []func() error

	tid     int          // the OS thread making the call
	inCall  atomic.Bool  // set while the live call is in progress
	endTime atomic.Int64 // unix nanoseconds when a blocking call returned
}

// toLiveFD maps a script fd to its live fd.
func (c *callContext) toLiveFD(scriptFD int) (int, error) {
	f := c.e.fds.byScript(scriptFD)
	if f == nil {
		return -1, fmt.Errorf("unable to find fd with script fd %d", scriptFD)
	}
	return f.liveFD, nil
}

// expectedResult evaluates the script's expected return value.
func (c *callContext) expectedResult() (int64, error) {
	return c.Eval.int(c.Call.Result)
}

// afterResultFD registers f to run, once the result matched, with the
// number the script gives the fd the call returned (not if it failed).
func (c *callContext) afterResultFD(ret int64, f func(scriptFD int) error) {
	if ret < 0 {
		return
	}
	c.after(func() error {
		want, err := c.expectedResult()
		if err != nil {
			return err
		}
		return f(int(want))
	})
}

// resultIsFD makes the result check the reference's "fd" mode: a
// non-negative expected result only requires a non-negative live result,
// since the script's fd number is mapped rather than compared.
func (c *callContext) resultIsFD() { c.fdResult = true }

// after registers f to run once the result and errno matched the script
// (fd table updates, checks of values returned through memory).
func (c *callContext) after(f func() error) { c.checks = append(c.checks, f) }

// addFD records a new non-socket fd (pipe, epoll, file) whose script number
// is the expected result or an out-parameter.
func (c *callContext) addFD(scriptFD, liveFD int) error {
	return c.e.fds.add(&fdEntry{scriptFD: scriptFD, liveFD: liveFD})
}

// addSocket records a socket made by socket(); later packets of the script
// are mapped to it.
func (c *callContext) addSocket(scriptFD, liveFD, domain, typ, protocol int) error {
	return c.e.newSyscallSocket(scriptFD, liveFD, domain, typ, protocol)
}

// markClosed records that the script closed scriptFD.
func (c *callContext) markClosed(scriptFD, liveFD int) error {
	f := c.e.fds.byScript(scriptFD)
	if f == nil || f.liveFD != liveFD {
		return fmt.Errorf("unable to find fd with script fd %d and live fd %d", scriptFD, liveFD)
	}
	f.closed = true
	return nil
}

// invoke makes the live call. For a blocking call (`...` in the script)
// it releases the engine so that later events run while the call sleeps,
// and records when the call returned.
func (c *callContext) invoke(call func() (int64, syscall.Errno)) (int64, syscall.Errno) {
	c.e.mu.Unlock()
	c.inCall.Store(true)
	ret, errno := call()
	c.inCall.Store(false)
	if c.blocking {
		c.endTime.Store(c.e.env.Clock.Now().UnixNano())
	}
	c.e.mu.Lock()
	return ret, errno
}

// rawSyscall is a helper for implementations: a raw system call whose
// result is returned as the script sees it (-1 on error).
func rawSyscall(trap, a1, a2, a3 uintptr) (int64, syscall.Errno) {
	r, _, errno := unix.Syscall(trap, a1, a2, a3)
	if errno != 0 {
		return -1, errno
	}
	return int64(r), 0
}

// rawSyscall6 is rawSyscall with six arguments.
func rawSyscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (int64, syscall.Errno) {
	r, _, errno := unix.Syscall6(trap, a1, a2, a3, a4, a5, a6)
	if errno != 0 {
		return -1, errno
	}
	return int64(r), 0
}

// callState tracks the call running on the syscall goroutine.
type callState struct {
	c    *callContext
	line parser.Pos
	done chan struct{}
	err  *eventError // the outcome, valid once done is closed
}

// lookupSyscall finds the implementation of a call: the Env's own first
// (tests), then the built-in registry.
func (e *engine) lookupSyscall(name string) syscallFunc {
	if f, ok := e.env.syscalls[name]; ok {
		return f
	}
	return syscalls[name]
}

// nonBlockingLimit is how long a call written without `...` may take
// before the run fails instead of hanging on a call that never returns.
const nonBlockingLimit = 10 * time.Second

// idleWait is how long a call waits for a previous blocking call to
// finish, as the reference's await_idle_thread does.
const idleWait = time.Second

// runSyscall runs a system call event. The caller holds e.mu.
func (e *engine) runSyscall(ev *eventState, sc *parser.Syscall) *eventError {
	blocking := sc.End != nil
	idle := e.awaitIdle(idleWait)
	if blocking && !idle {
		return fatalf("runtime error in %s call: blocking system call while another blocking system call is already in progress", sc.Name)
	}
	if err := e.waitForEvent(ev); err != nil {
		return err
	}
	return e.call(ev, sc)
}

// call makes a system call event's call, now, and checks its outcome.
// The caller holds e.mu and has waited for any blocking call before.
func (e *engine) call(ev *eventState, sc *parser.Syscall) *eventError {
	blocking := sc.End != nil
	f := e.lookupSyscall(sc.Name)
	if f == nil {
		return fatalf("runtime error in %s call: Unknown system call: '%s'", sc.Name, sc.Name)
	}
	c := &callContext{
		Ctx: e.ctx, Call: sc, Args: sc.Args, Eval: e.eval, Config: e.cfg,
		e: e, blocking: blocking,
	}
	cs := &callState{c: c, line: ev.ev.Pos, done: make(chan struct{})}
	started := make(chan struct{})
	if blocking {
		e.blockingCall = cs
	}
	e.mu.Unlock()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c.tid = unix.Gettid()
		close(started)
		e.mu.Lock()
		cs.err = e.callAndCheck(f, c, ev)
		if blocking {
			e.blockingCall = nil
			if cs.err != nil {
				e.failAsync(ev, cs.err)
			}
		}
		e.mu.Unlock()
		close(cs.done)
	}()
	<-started
	var err *eventError
	if blocking {
		err = e.waitBlocked(cs, e.liveTime(ev.sysEndUsecs).Add(nonBlockingLimit))
	} else {
		err = e.waitReturned(cs)
	}
	e.mu.Lock()
	if err != nil {
		return err
	}
	if !blocking {
		return cs.err
	}
	return nil
}

// blockedPoll is how often waitBlocked looks at the call's thread.
const blockedPoll = 20 * time.Microsecond

// waitBlocked returns once the call returned or its thread sleeps inside
// the call, as the reference's enqueue_system_call does. The caller does not
// hold e.mu.
func (e *engine) waitBlocked(cs *callState, deadline time.Time) *eventError {
	for {
		if cs.c.inCall.Load() && e.host.ThreadSleeping(cs.c.tid) {
			return nil
		}
		if e.env.Clock.Now().After(deadline) {
			return fatalf("%s call neither returned nor blocked by %v after its expected end", cs.c.Call.Name, nonBlockingLimit)
		}
		if e.await(cs, blockedPoll) != timedOut {
			return nil
		}
	}
}

// waited is what await saw first.
type waited int

const (
	returned waited = iota // the call returned
	ended                  // the run ended
	timedOut
)

// await waits up to limit, on the engine's clock, for the call cs to
// return.
func (e *engine) await(cs *callState, limit time.Duration) waited {
	select {
	case <-cs.done:
		return returned
	case <-e.ctx.Done():
		return ended
	case <-e.env.Clock.After(limit):
		return timedOut
	}
}

// waitReturned waits for a non-blocking call to return. The caller does
// not hold e.mu.
func (e *engine) waitReturned(cs *callState) *eventError {
	switch e.await(cs, nonBlockingLimit) {
	case ended:
		return &eventError{kind: fatalError, msg: "run ended: " + context.Cause(e.ctx).Error(), err: context.Cause(e.ctx)}
	case timedOut:
		return fatalf("%s call did not return within %v; a call expected to block needs `...` and an end time", cs.c.Call.Name, nonBlockingLimit)
	}
	return nil
}

// awaitIdle waits up to limit for a running blocking call to finish. It
// reports whether no blocking call is running. The caller holds e.mu.
func (e *engine) awaitIdle(limit time.Duration) bool {
	cs := e.blockingCall
	if cs == nil {
		return true
	}
	e.mu.Unlock()
	defer e.mu.Lock()
	return e.await(cs, limit) == returned
}

// callAndCheck runs f and checks its outcome against the script. It runs
// on the call's goroutine with e.mu held (f releases it inside Invoke).
func (e *engine) callAndCheck(f syscallFunc, c *callContext, ev *eventState) *eventError {
	sc := c.Call
	ret, errno, err := f(c)
	if err != nil {
		return &eventError{kind: fatalError, msg: fmt.Sprintf("runtime error in %s call: %v", sc.Name, err), err: err}
	}
	if e.cfg.Verbose {
		fmt.Fprintf(e.env.Stdout, "%s syscall: %9.6f\n", sc.Name, secs(e.nowUsecs()))
	}
	if cerr := e.checkResult(c, ret, errno); cerr != nil {
		return cerr
	}
	for _, a := range c.checks {
		if err := a(); err != nil {
			return &eventError{kind: syscallError, msg: err.Error(), err: err}
		}
	}
	if c.blocking {
		end := c.endTime.Load()
		live := (end - e.liveStart.UnixNano()) / 1000
		if terr := e.verifyTime(ev.timeKind, ev.sysEndUsecs, 0, live, ev.startUsecs, "system call return"); terr != nil {
			terr.kind = fatalError
			return terr
		}
	}
	return nil
}

// checkResult compares the live result and errno with the script's.
func (e *engine) checkResult(c *callContext, ret int64, errno syscall.Errno) *eventError {
	sc := c.Call
	expected, err := c.expectedResult()
	if err != nil {
		return &eventError{kind: fatalError, msg: fmt.Sprintf("runtime error in %s call: bad result: %v", sc.Name, err), err: err}
	}
	if c.fdResult && expected >= 0 {
		if ret < 0 {
			return &eventError{kind: syscallError, msg: fmt.Sprintf("%s: expected non-negative result but got %d%s", sc.Name, ret, withErrno(ret, errno))}
		}
	} else if ret != expected {
		return &eventError{kind: syscallError, msg: fmt.Sprintf("%s: expected result %d but got %d%s", sc.Name, expected, ret, withErrno(ret, errno))}
	}
	if sc.Errno != "" {
		want, ok := lookupErrno(sc.Errno)
		if !ok {
			return fatalf("runtime error in %s call: unknown errno %s", sc.Name, sc.Errno)
		}
		if errno != want {
			return &eventError{kind: syscallError, msg: fmt.Sprintf("%s: expected errno %s but got %s", sc.Name, describeErrno(want), describeErrno(errno))}
		}
	}
	return nil
}

// withErrno is " with errno 11 (EAGAIN)" for a failed call, "" otherwise.
func withErrno(ret int64, errno syscall.Errno) string {
	if ret >= 0 && errno == 0 {
		return ""
	}
	return " with errno " + describeErrno(errno)
}

// describeErrno is "11 (EAGAIN)".
func describeErrno(e syscall.Errno) string {
	name := errnoName(e)
	if name == "" {
		name = e.Error()
	}
	return fmt.Sprintf("%d (%s)", int(e), name)
}

// Host is what the engine needs of the machine besides packets and time.
type Host interface {
	// CloseFD closes a live fd left open at the end of the script.
	CloseFD(fd int) error
	// EphemeralPort returns a free local port to use as the remote port of
	// connections the script's packets open, as the reference does.
	EphemeralPort(ipv6 bool) (uint16, error)
	// ThreadSleeping reports whether an OS thread of this process is
	// sleeping (blocked in a system call).
	ThreadSleeping(tid int) bool
	// StartTime waits for and returns the live start of the script; the
	// Linux host picks an instant just after a jiffy boundary, as the
	// reference does, so that millisecond-aligned events do not straddle
	// jiffies.
	StartTime(c Clock) time.Time
	// Tick is the kernel's timer tick (1/HZ), on which its TCP timers
	// fire.
	Tick() time.Duration
	// Recovering reports whether TCP socket fd is reducing its congestion
	// window (CWR, fast recovery or loss recovery: tcpi_ca_state), where
	// what it sends depends on each ACK (proportional rate reduction), or
	// whether that is unknown.
	Recovering(fd int) bool
}
