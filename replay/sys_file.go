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

func sysPipe(c *CallContext) (int64, syscall.Errno, error) {
	if err := c.NArgs(1); err != nil {
		return 0, 0, err
	}
	l, ok := c.Args[0].(*parser.List)
	if !ok || l.Brace {
		return 0, 0, errAt(c.Args[0], "expected [<read fd>, <write fd>], got %s", exprKind(c.Args[0]))
	}
	if len(l.Elems) != 2 {
		return 0, 0, errAt(l, "%d pipe file descriptors instead of 2", len(l.Elems))
	}
	var script [2]int
	for i, el := range l.Elems {
		v, err := c.Eval.Int32(el)
		if err != nil {
			return 0, 0, err
		}
		script[i] = int(v)
	}
	var live [2]int32
	ret, errno := c.Invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall(unix.SYS_PIPE2, uintptr(unsafe.Pointer(&live)), 0, 0)
		return sysResult(r, e)
	})
	c.After(func() error {
		if ret < 0 {
			return nil
		}
		for i := range script {
			if err := c.AddFD(script[i], int(live[i])); err != nil {
				return err
			}
		}
		return nil
	})
	return ret, errno, nil
}

// nullOffset evaluates a splice offset, which must be NULL: the reference
// passes the number itself as the loff_t pointer.
func nullOffset(c *CallContext, i int) error {
	v, err := c.Int(i)
	if err != nil {
		return err
	}
	if v != 0 {
		return errAt(c.Args[i], "splice offset must be NULL, got %d", v)
	}
	return nil
}

func sysSplice(c *CallContext) (int64, syscall.Errno, error) {
	if err := c.NArgs(6); err != nil {
		return 0, 0, err
	}
	in, err := c.LiveFD(0)
	if err != nil {
		return 0, 0, err
	}
	if err := nullOffset(c, 1); err != nil {
		return 0, 0, err
	}
	out, err := c.LiveFD(2)
	if err != nil {
		return 0, 0, err
	}
	if err := nullOffset(c, 3); err != nil {
		return 0, 0, err
	}
	n, err := c.Int32(4)
	if err != nil {
		return 0, 0, err
	}
	flags, err := c.Int32(5)
	if err != nil {
		return 0, 0, err
	}
	ret, errno := c.Invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), uintptr(flags))
		return sysResult(r, e)
	})
	return ret, errno, nil
}

// openMode is the mode of a file open(O_CREAT) makes; the script language
// has no mode argument.
const openMode = 0o600

func sysOpen(c *CallContext) (int64, syscall.Errno, error) {
	if err := c.NArgs(2); err != nil {
		return 0, 0, err
	}
	if !IsString(c.Args[0]) {
		return 0, 0, errAt(c.Args[0], "expected a file name string, got %s", exprKind(c.Args[0]))
	}
	name, err := c.Eval.Bytes(c.Args[0])
	if err != nil {
		return 0, 0, err
	}
	flags, err := c.Int32(1)
	if err != nil {
		return 0, 0, err
	}
	c.ResultIsFD()
	ret, errno := c.Invoke(func() (int64, syscall.Errno) {
		fd, err := unix.Open(string(name), int(flags), openMode)
		if err != nil {
			return -1, errnoOf(err)
		}
		return int64(fd), 0
	})
	c.After(func() error { return addResultFD(c, ret) })
	return ret, errno, nil
}

func sysSendfile(c *CallContext) (int64, syscall.Errno, error) {
	if err := c.NArgs(4); err != nil {
		return 0, 0, err
	}
	out, err := c.LiveFD(0)
	if err != nil {
		return 0, 0, err
	}
	in, err := c.LiveFD(1)
	if err != nil {
		return 0, 0, err
	}
	off, err := c.Eval.BracketedInt(c.Args[2])
	if err != nil {
		return 0, 0, fmt.Errorf("sendfile offset: %w", err)
	}
	count, err := c.Int32(3)
	if err != nil {
		return 0, 0, err
	}
	offset := off
	ret, errno := c.Invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_SENDFILE, uintptr(out), uintptr(in),
			uintptr(unsafe.Pointer(&offset)), uintptr(count), 0, 0)
		return sysResult(r, e)
	})
	return ret, errno, nil
}
