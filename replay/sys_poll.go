package replay

// poll(2) and the epoll(7) calls. The script writes fds as script numbers;
// they are mapped to live fds on the way in and compared as live fds on the
// way out, as the reference does. Revents and the first returned epoll
// event are checked once the result matched.

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

func init() {
	registerSyscall("poll", sysPoll)
	registerSyscall("epoll_create", epollCreate(false))
	registerSyscall("epoll_create1", epollCreate(true))
	registerSyscall("epoll_ctl", sysEpollCtl)
	registerSyscall("epoll_wait", sysEpollWait)
}

// pollFlagNames orders the poll bits for messages.
var pollFlagNames = []struct {
	bit  int16
	name string
}{
	{unix.POLLIN, "POLLIN"}, {unix.POLLPRI, "POLLPRI"}, {unix.POLLOUT, "POLLOUT"},
	{pollRdNorm, "POLLRDNORM"}, {pollRdBand, "POLLRDBAND"}, {pollWrNorm, "POLLWRNORM"},
	{pollWrBand, "POLLWRBAND"}, {pollMsg, "POLLMSG"}, {unix.POLLRDHUP, "POLLRDHUP"},
	{unix.POLLERR, "POLLERR"}, {unix.POLLHUP, "POLLHUP"}, {unix.POLLNVAL, "POLLNVAL"},
}

// pollFlags renders poll event bits as `POLLIN|POLLOUT`.
func pollFlags(v int16) string {
	if v == 0 {
		return "0"
	}
	var parts []string
	for _, f := range pollFlagNames {
		if v&f.bit != 0 {
			parts = append(parts, f.name)
			v &^= f.bit
		}
	}
	if v != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint16(v)))
	}
	return strings.Join(parts, "|")
}

// retryEINTR repeats a wait that a signal interrupted; poll and epoll_wait
// are never restarted by the kernel, and the Go runtime's own signals must
// not look like the script's EINTR.
func retryEINTR(call func() (uintptr, syscall.Errno)) (int64, syscall.Errno) {
	for {
		r, e := call()
		if e != unix.EINTR {
			return sysResult(r, e)
		}
	}
}

// pollLive is poll(2) on live fds.
func pollLive(fds []unix.PollFd, timeout int32) (int64, syscall.Errno) {
	var ptr unsafe.Pointer
	if len(fds) > 0 {
		ptr = unsafe.Pointer(&fds[0])
	}
	ret, errno := retryEINTR(func() (uintptr, syscall.Errno) {
		r, _, e := unix.Syscall(unix.SYS_POLL, uintptr(ptr), uintptr(len(fds)), uintptr(timeout))
		return r, e
	})
	runtime.KeepAlive(fds)
	return ret, errno
}

// checkRevents compares the revents poll returned with the script's.
func checkRevents(fds []unix.PollFd, want []int16) error {
	for i := range fds {
		if fds[i].Revents != want[i] {
			return fmt.Errorf("expected revents of %s but got %s for pollfd %d",
				pollFlags(want[i]), pollFlags(fds[i].Revents), i)
		}
	}
	return nil
}

func sysPoll(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	var fds []unix.PollFd
	var want []int16
	if a.ok() {
		fds, want = a.pollfds(c.Args[0])
	}
	nfds, timeout := a.int32(1), a.int32(2)
	if a.ok() && int(nfds) != len(fds) {
		a.failf("nfds %d does not match %d-element pollfd array", nfds, len(fds))
	}
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) { return pollLive(fds, timeout) })
	c.after(func() error { return checkRevents(fds, want) })
	return ret, errno, nil
}

// pollfds evaluates a pollfd array into the live array and the revents
// the script expects.
func (a *argReader) pollfds(e parser.Expr) (fds []unix.PollFd, want []int16) {
	l, ok := e.(*parser.List)
	if !ok || l.Brace {
		a.keep(errAt(e, "expected a pollfd array, got %s", exprKind(e)))
		return nil, nil
	}
	fds = make([]unix.PollFd, len(l.Elems))
	want = make([]int16, len(l.Elems))
	ev := a.c.Eval
	for i, el := range l.Elems {
		p, ok := el.(*parser.Pollfd)
		if !ok {
			a.keep(errAt(el, "expected a pollfd, got %s", exprKind(el)))
			return nil, nil
		}
		scriptFD := read(a, func() (int32, error) { return ev.int32(p.FD) })
		live := read(a, func() (int, error) { return a.c.toLiveFD(int(scriptFD)) })
		events := read(a, func() (int32, error) { return ev.int32(p.Events) })
		if p.Revents != nil {
			want[i] = int16(read(a, func() (int32, error) { return ev.int32(p.Revents) }))
		}
		fds[i] = unix.PollFd{Fd: int32(live), Events: int16(events)}
	}
	return fds, want
}

// epollCreate is epoll_create(size), or epoll_create1(flags) with create1:
// both are made as epoll_create1, since some architectures lack
// epoll_create.
func epollCreate(create1 bool) syscallFunc {
	return func(c *callContext) (int64, syscall.Errno, error) {
		a := c.args(1)
		arg := a.int32(0)
		if err := a.err(); err != nil {
			return 0, 0, err
		}
		flags := uintptr(arg)
		if !create1 {
			flags = 0
		}
		c.resultIsFD()
		ret, errno := c.invoke(func() (int64, syscall.Errno) {
			// epoll_create(2) refuses a non-positive size; epoll_create1
			// has none, so the check is made here.
			if !create1 && arg <= 0 {
				return -1, unix.EINVAL
			}
			r, _, e := unix.Syscall(unix.SYS_EPOLL_CREATE1, flags, 0, 0)
			return sysResult(r, e)
		})
		c.afterResultFD(ret, func(scriptFD int) error { return c.addFD(scriptFD, int(ret)) })
		return ret, errno, nil
	}
}

// epollData is an evaluated `{events=E, fd|ptr|u32|u64=V}`.
type epollData struct {
	events uint32
	field  string
	data   uint64 // fds are live fds
}

// epollEvent evaluates an epoll_event expression; wantFD is the script fd
// the event must name (-1 for any: the fd is then mapped to its live fd).
func epollEvent(c *callContext, e parser.Expr, scriptFD, liveFD int) (epollData, error) {
	x, ok := e.(*parser.EpollEvent)
	if !ok {
		return epollData{}, errAt(e, "expected an epoll_event, got %s", exprKind(e))
	}
	events, err := c.Eval.int32(x.Events)
	if err != nil {
		return epollData{}, err
	}
	d := epollData{events: uint32(events), field: x.Field}
	v, err := c.Eval.int(x.Value)
	if err != nil {
		return epollData{}, err
	}
	switch x.Field {
	case "fd":
		if scriptFD == -1 {
			if liveFD, err = c.toLiveFD(int(v)); err != nil {
				return epollData{}, err
			}
		} else if v != int64(scriptFD) {
			return epollData{}, errAt(x, "wrong fd specified in epoll_event")
		}
		d.data = uint64(uint32(int32(liveFD)))
	case "u32":
		d.data = uint64(uint32(v))
	case "ptr", "u64":
		d.data = uint64(v)
	default:
		return epollData{}, errAt(x, "epoll_event specified incorrectly")
	}
	return d, nil
}

func (d epollData) toLive() unix.EpollEvent {
	ev := unix.EpollEvent{Events: d.events}
	setEpollData(&ev, d.data)
	return ev
}

// epollDataOf and setEpollData read and write epoll_data as the u64 it is;
// x/sys splits it into Fd and Pad.
func epollDataOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func setEpollData(ev *unix.EpollEvent, v uint64) {
	ev.Fd = int32(uint32(v))
	ev.Pad = int32(uint32(v >> 32))
}

func sysEpollCtl(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(4)
	epfd, op := a.fd(0), a.int32(1)
	scriptFD, fd := a.fds(2)
	d := read(a, func() (epollData, error) { return epollEvent(c, c.Args[3], scriptFD, fd) })
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ev := d.toLive()
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd),
			uintptr(unsafe.Pointer(&ev)), 0, 0)
		return sysResult(r, e)
	})
	return ret, errno, nil
}

// maxEpollEvents bounds the event array a script can make us allocate.
const maxEpollEvents = 1 << 16

// epollWaitLive is epoll_wait(2) of up to maxEvents into events, which is
// never empty (maxEvents may be invalid: the kernel says so).
func epollWaitLive(epfd int, events []unix.EpollEvent, maxEvents, timeout int32) (int64, syscall.Errno) {
	ret, errno := retryEINTR(func() (uintptr, syscall.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
			uintptr(maxEvents), uintptr(timeout), 0, 0)
		return r, e
	})
	runtime.KeepAlive(events)
	return ret, errno
}

// checkEpollEvent compares the first event epoll_wait filled in with the
// script's one event, as the reference does.
func checkEpollEvent(want epollData, got *unix.EpollEvent) error {
	if got.Events != want.events {
		return fmt.Errorf("epoll_event->events does not match script: expected: %#x actual: %#x", want.events, got.Events)
	}
	if data := epollDataOf(got); data != want.data {
		if want.field == "fd" {
			return fmt.Errorf("epoll_event->data does not match script: expected fd: %d actual fd: %d", int32(want.data), int32(data))
		}
		return fmt.Errorf("epoll_event->data does not match script: expected: %#x actual: %#x", want.data, data)
	}
	return nil
}

func sysEpollWait(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(4)
	epfd := a.fd(0)
	want := read(a, func() (epollData, error) { return epollEvent(c, c.Args[1], -1, -1) })
	maxEvents, timeout := a.int32(2), a.int32(3)
	if a.ok() && (maxEvents < 0 || maxEvents > maxEpollEvents) {
		a.failf("maxevents %d out of range", maxEvents)
	}
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	// At least one slot, zeroed: the reference compares the first slot
	// even when no event came back.
	events := make([]unix.EpollEvent, max(int(maxEvents), 1))
	ret, errno := c.invoke(func() (int64, syscall.Errno) { return epollWaitLive(epfd, events, maxEvents, timeout) })
	c.after(func() error { return checkEpollEvent(want, &events[0]) })
	return ret, errno, nil
}
