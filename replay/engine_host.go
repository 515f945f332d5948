//go:build linux

package replay

// This file is the Linux Host: closing fds, picking ephemeral ports the
// way the reference does (a listening socket bound to port 0, kept open so
// the port stays reserved), reading a thread's state from /proc, and
// starting the script just after a jiffy boundary.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// systemHost is the Host of the machine this process runs on.
type systemHost struct {
	mu       sync.Mutex
	reserved []int // sockets holding ephemeral ports for the run
}

func newSystemHost() *systemHost { return &systemHost{} }

func (h *systemHost) CloseFD(fd int) error { return unix.Close(fd) }

// release closes the sockets that reserved ephemeral ports.
func (h *systemHost) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fd := range h.reserved {
		unix.Close(fd)
	}
	h.reserved = nil
}

func (h *systemHost) EphemeralPort(ipv6 bool) (uint16, error) {
	domain := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{}
	if ipv6 {
		domain = unix.AF_INET6
		sa = &unix.SockaddrInet6{}
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return 0, err
	}
	if err := unix.Listen(fd, 100); err != nil {
		unix.Close(fd)
		return 0, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return 0, err
	}
	h.mu.Lock()
	h.reserved = append(h.reserved, fd)
	h.mu.Unlock()
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return uint16(a.Port), nil
	case *unix.SockaddrInet6:
		return uint16(a.Port), nil
	}
	return 0, fmt.Errorf("unexpected socket address %T", got)
}

// ThreadSleeping reads the state letter of /proc/self/task/<tid>/stat.
func (h *systemHost) ThreadSleeping(tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and
	// may itself contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'S'
}

// tickOffsetFraction is how far into a kernel tick the script starts, as a
// fraction of the tick: the reference starts 250 µs into the tick of the
// 1000 Hz kernels it was tuned on; a quarter tick keeps that proportion on
// other HZ (1 ms at HZ=250), where 250 µs left the events of many scripts so
// close to tick edges that kernel timers fired a tick later than the
// reference's verdicts show.
const tickOffsetFraction = 4

// defaultTick is the tick assumed when the coarse clock's resolution is
// unknown.
const defaultTick = time.Millisecond

// tickPoll is how often StartTime looks at the coarse clock while waiting
// for a tick: the start lands a quarter tick plus at most about this much
// after the tick.
const tickPoll = 50 * time.Microsecond

// maxTickWait bounds the wait for a tick (a tickless CPU may take a while
// to tick again); past it the start is simply now.
const maxTickWait = 50 * time.Millisecond

// StartTime returns an instant a quarter tick after a kernel tick, once it
// has arrived, as the reference does: events at millisecond offsets from
// the start then sit at a stable phase of the jiffy, so kernel timers
// (delayed ACKs, RTO, RACK) fire at the same script times run after run.
// CLOCK_MONOTONIC_COARSE moves only at ticks, so waiting for it to change
// costs at most one tick (4 ms at HZ=250).
func (h *systemHost) StartTime(c Clock) time.Time {
	setRealtimePriority()
	var coarse unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &coarse) != nil {
		return c.Now()
	}
	last := coarse
	pause := unix.NsecToTimespec(int64(tickPoll))
	giveUp := c.Now().Add(maxTickWait)
	for coarse == last {
		if c.Now().After(giveUp) {
			return c.Now()
		}
		unix.Nanosleep(&pause, nil)
		if unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &coarse) != nil {
			return c.Now()
		}
	}
	start := c.Now().Add(h.Tick() / tickOffsetFraction)
	c.SleepUntil(context.Background(), start)
	return start
}

// Tick is the resolution of the coarse clock, which moves once a tick, or
// defaultTick where it is unknown.
func (h *systemHost) Tick() time.Duration {
	var res unix.Timespec
	if unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res) == nil && res.Nano() > 0 {
		return time.Duration(res.Nano())
	}
	return defaultTick
}

func (h *systemHost) Recovering(fd int) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return err != nil || info.Ca_state >= tcpCACWR
}

// setRealtimePriority moves every thread of the process to the lowest
// round-robin real-time priority, as the reference does for consistent
// timing on machines with more than one CPU; threads the runtime creates
// later inherit it. Commands are started from a thread that drops it
// (startNormalPriority), so nothing the script runs competes at real-time
// priority. Failure only costs precision, so it is ignored.
func setRealtimePriority() {
	if runtime.NumCPU() <= 1 {
		return
	}
	prio, _, errno := unix.Syscall(unix.SYS_SCHED_GET_PRIORITY_MIN, unix.SCHED_RR, 0, 0)
	if errno != 0 {
		return
	}
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	param := struct{ priority int32 }{int32(prio)}
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		unix.Syscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), unix.SCHED_RR, uintptr(unsafe.Pointer(&param)))
	}
}

// schedOther is SCHED_OTHER, the normal policy.
const schedOther = 0

// startNormalPriority starts cmd from an OS thread with the normal
// scheduling policy, which the child inherits. The thread is discarded
// afterwards (the goroutine exits locked to it).
func startNormalPriority(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		param := struct{ priority int32 }{0}
		unix.Syscall(unix.SYS_SCHED_SETSCHEDULER, 0, schedOther, uintptr(unsafe.Pointer(&param)))
		errc <- cmd.Start()
	}()
	return <-errc
}
