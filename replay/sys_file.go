package replay

// pipe, splice, open and sendfile: the calls that move data between a TCP
// socket and a pipe or a file. New fds are recorded under the numbers the
// script gives them (the result, or the pipe's [r, w] array).

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

func init() {
	registerSyscall("pipe", sysPipe)
	registerSyscall("splice", sysSplice)
	registerSyscall("open", sysOpen)
	registerSyscall("sendfile", sysSendfile)
}

// errnoOf extracts the errno of a golang.org/x/sys/unix wrapper's error.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EINVAL
}

func sysPipe(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(1)
	var script [2]int
	if a.ok() {
		l, ok := c.Args[0].(*parser.List)
		switch {
		case !ok || l.Brace:
			a.keep(errAt(c.Args[0], "expected [<read fd>, <write fd>], got %s", exprKind(c.Args[0])))
		case len(l.Elems) != 2:
			a.keep(errAt(l, "%d pipe file descriptors instead of 2", len(l.Elems)))
		default:
			for i, el := range l.Elems {
				script[i] = int(read(a, func() (int32, error) { return c.Eval.int32(el) }))
			}
		}
	}
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	var live [2]int32
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall(unix.SYS_PIPE2, uintptr(unsafe.Pointer(&live)), 0, 0)
		return sysResult(r, e)
	})
	c.after(func() error {
		if ret < 0 {
			return nil
		}
		for i := range script {
			if err := c.addFD(script[i], int(live[i])); err != nil {
				return err
			}
		}
		return nil
	})
	return ret, errno, nil
}

// nullOffset evaluates a splice offset, which must be NULL: the reference
// passes the number itself as the loff_t pointer.
func (a *argReader) nullOffset(i int) {
	if v := a.int(i); v != 0 {
		a.keep(errAt(a.c.Args[i], "splice offset must be NULL, got %d", v))
	}
}

func sysSplice(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(6)
	in := a.fd(0)
	a.nullOffset(1)
	out := a.fd(2)
	a.nullOffset(3)
	n, flags := a.int32(4), a.int32(5)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), uintptr(flags))
		return sysResult(r, e)
	})
	return ret, errno, nil
}

// openMode is the mode of a file open(O_CREAT) makes; the script language
// has no mode argument.
const openMode = 0o600

func sysOpen(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(2)
	if a.ok() && !isString(c.Args[0]) {
		a.keep(errAt(c.Args[0], "expected a file name string, got %s", exprKind(c.Args[0])))
	}
	name := read(a, func() ([]byte, error) { return c.Eval.bytes(c.Args[0]) })
	flags := a.int32(1)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	c.resultIsFD()
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		fd, err := unix.Open(string(name), int(flags), openMode)
		if err != nil {
			return -1, errnoOf(err)
		}
		return int64(fd), 0
	})
	c.afterResultFD(ret, func(scriptFD int) error { return c.addFD(scriptFD, int(ret)) })
	return ret, errno, nil
}

func sysSendfile(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(4)
	out, in := a.fd(0), a.fd(1)
	offset := read(a, func() (int64, error) {
		off, err := c.Eval.bracketedInt(c.Args[2])
		if err != nil {
			return 0, fmt.Errorf("sendfile offset: %w", err)
		}
		return off, nil
	})
	count := a.int32(3)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_SENDFILE, uintptr(out), uintptr(in),
			uintptr(unsafe.Pointer(&offset)), uintptr(count), 0, 0)
		return sysResult(r, e)
	})
	return ret, errno, nil
}
