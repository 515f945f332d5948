package replay

// readv, writev, sendmsg and recvmsg: the calls that take iovec arrays and
// msghdrs. Buffers are zero-filled and never checked (as in the reference,
// only lengths, flags and control messages are); recvmsg's msg_flags and
// control messages are compared once the result matched.

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

func init() {
	registerSyscall("readv", sysReadv)
	registerSyscall("writev", sysWritev)
	registerSyscall("sendmsg", sysSendmsg)
	registerSyscall("recvmsg", sysRecvmsg)
}

// sockaddrStorageLen is sizeof(struct sockaddr_storage), the msg_name room
// recvmsg gets.
const sockaddrStorageLen = 128

// iovecs evaluates an iovec array `[{..., N}, ...]` into zero-filled
// buffers and the struct iovec array pointing at them. The buffers are cut
// from one block with gaps between them, as separate malloc() chunks are
// in the reference: adjacent buffers would let the kernel merge zerocopy
// fragments that the scripts expect to stay apart (tcp/zerocopy/maxfrags).
func iovecs(e parser.Expr) ([][]byte, []unix.Iovec, error) {
	l, ok := e.(*parser.List)
	if !ok || l.Brace {
		return nil, nil, errAt(e, "expected an iovec array, got %s", exprKind(e))
	}
	total := iovecGap
	for _, el := range l.Elems {
		v, ok := el.(*parser.Iovec)
		if !ok || v.Len == nil {
			return nil, nil, errAt(el, "expected an iovec {..., len}, got %s", exprKind(el))
		}
		if v.Len.Value < 0 || v.Len.Value > maxBufferLen-int64(total) {
			return nil, nil, errAt(v.Len, "iovec length %d out of range", v.Len.Value)
		}
		total += int(v.Len.Value) + iovecGap
	}
	block := make([]byte, total)
	bufs := make([][]byte, len(l.Elems))
	iov := make([]unix.Iovec, len(l.Elems))
	off := iovecGap
	for i, el := range l.Elems {
		n := int(el.(*parser.Iovec).Len.Value)
		bufs[i] = block[off : off+n : off+n]
		if n > 0 {
			iov[i].Base = &bufs[i][0]
		}
		iov[i].SetLen(n)
		off += n + iovecGap
	}
	return bufs, iov, nil
}

// iovecGap separates iovec buffers (glibc's chunk header is 16 bytes).
const iovecGap = 16

// maxBufferLen bounds the buffers a script can make us allocate.
const maxBufferLen = 1 << 30

// iovPtr is the address of the first iovec, or nil for none.
func iovPtr(iov []unix.Iovec) unsafe.Pointer {
	if len(iov) == 0 {
		return nil
	}
	return unsafe.Pointer(&iov[0])
}

// bytesPtr is the address of the first byte, or nil for none.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// sysResult turns a raw call's outcome into the script's view.
func sysResult(r uintptr, errno syscall.Errno) (int64, syscall.Errno) {
	if errno != 0 {
		return -1, errno
	}
	return int64(r), 0
}

// vectorCall is readv/writev: fd, iovec array, count.
func vectorCall(c *callContext, trap uintptr) (int64, syscall.Errno, error) {
	a := c.args(3)
	fd := a.fd(0)
	var bufs [][]byte
	var iov []unix.Iovec
	if a.ok() {
		var err error
		bufs, iov, err = iovecs(c.Args[1])
		a.keep(err)
	}
	count := a.int32(2)
	if a.ok() && int(count) != len(iov) {
		a.failf("iov_count %d does not match %d-element iovec array", count, len(iov))
	}
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		r, _, e := unix.Syscall(trap, uintptr(fd), uintptr(iovPtr(iov)), uintptr(count))
		return sysResult(r, e)
	})
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(iov)
	return ret, errno, nil
}

func sysReadv(c *callContext) (int64, syscall.Errno, error) {
	return vectorCall(c, unix.SYS_READV)
}

func sysWritev(c *callContext) (int64, syscall.Errno, error) {
	return vectorCall(c, unix.SYS_WRITEV)
}

// liveMsghdr is a struct msghdr built from a script's msghdr expression,
// with the memory it points to.
type liveMsghdr struct {
	hdr     unix.Msghdr
	name    []byte
	bufs    [][]byte
	iov     []unix.Iovec
	control []byte
	cmsgs   []cmsg // the control messages as evaluated (expected, for recvmsg)
	flags   int32  // msg_flags as written
}

// msghdr evaluates `{msg_name(...)=..., msg_iov(N)=[...], msg_flags=F,
// msg_control=[...]}`.
func msghdr(ev *evaluator, e parser.Expr) (*liveMsghdr, error) {
	m, ok := e.(*parser.Msghdr)
	if !ok {
		return nil, errAt(e, "expected a msghdr, got %s", exprKind(e))
	}
	bufs, iov, err := iovecs(m.Iov)
	if err != nil {
		return nil, err
	}
	if m.IovLen == nil || m.IovLen.Value != int64(len(iov)) {
		n := int64(-1)
		if m.IovLen != nil {
			n = m.IovLen.Value
		}
		return nil, errAt(m, "msg_iovlen %d does not match %d-element iovec array", n, len(iov))
	}
	lm := &liveMsghdr{bufs: bufs, iov: iov}
	if m.Flags != nil {
		if lm.flags, err = ev.int32(m.Flags); err != nil {
			return nil, err
		}
	}
	if lm.cmsgs, lm.control, err = ev.buildControl(m.Control); err != nil {
		return nil, err
	}
	// The kernel writes msg_flags only when recvmsg succeeds; a failed
	// call leaves the script's value, which then matches, as in the
	// reference.
	lm.hdr.Flags = lm.flags
	lm.hdr.Iov = (*unix.Iovec)(iovPtr(iov))
	lm.hdr.SetIovlen(len(iov))
	lm.hdr.Control = (*byte)(bytesPtr(lm.control))
	lm.hdr.SetControllen(len(lm.control))
	return lm, nil
}

// setName points msg_name at buf.
func (lm *liveMsghdr) setName(buf []byte) {
	lm.name = buf
	lm.hdr.Name = (*byte)(bytesPtr(buf))
	lm.hdr.Namelen = uint32(len(buf))
}

// call makes a sendmsg or recvmsg with this msghdr.
func (lm *liveMsghdr) call(trap uintptr, fd int, flags int32) (int64, syscall.Errno) {
	r, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&lm.hdr)), uintptr(flags))
	runtime.KeepAlive(lm)
	return sysResult(r, e)
}

// checkReceived compares what recvmsg returned in the msghdr with the
// script: msg_flags, then the control messages.
func (lm *liveMsghdr) checkReceived(timing cmsgTiming) error {
	if lm.hdr.Flags != lm.flags {
		return fmt.Errorf("expected msg_flags 0x%08X but got 0x%08X", uint32(lm.flags), uint32(lm.hdr.Flags))
	}
	n := min(int(lm.hdr.Controllen), len(lm.control))
	return checkControl(lm.cmsgs, parseControl(lm.control[:n]), timing)
}

func sysSendmsg(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	scriptFD, fd := a.fds(0)
	lm := read(a, func() (*liveMsghdr, error) { return msghdr(c.Eval, c.Args[1]) })
	flags := a.int32(2)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	// The grammar always has msg_name(...)=...: the reference fills it with
	// the address a connect() would use (a fast open sendmsg connects).
	name, err := sockaddrBytes(c.connectAddr(scriptFD))
	if err != nil {
		return 0, 0, err
	}
	lm.setName(name)
	if lm.flags != 0 {
		return 0, 0, fmt.Errorf("sendmsg ignores msg_flags field in msghdr")
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) { return lm.call(unix.SYS_SENDMSG, fd, flags) })
	return ret, errno, nil
}

func sysRecvmsg(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	fd := a.fd(0)
	lm := read(a, func() (*liveMsghdr, error) { return msghdr(c.Eval, c.Args[1]) })
	flags := a.int32(2)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	lm.setName(make([]byte, sockaddrStorageLen))
	ret, errno := c.invoke(func() (int64, syscall.Errno) { return lm.call(unix.SYS_RECVMSG, fd, flags) })
	timing := c.cmsgTiming()
	c.after(func() error { return lm.checkReceived(timing) })
	return ret, errno, nil
}

// cmsgTiming is how SCM_TIMESTAMPING times of this run are checked.
func (c *callContext) cmsgTiming() cmsgTiming {
	e := c.e
	return cmsgTiming{
		ScriptToLiveUsecs: func(us int64) int64 { return e.liveTime(us).UnixMicro() },
		LiveStartUsecs:    e.liveStart.UnixMicro(),
		ToleranceUsecs:    c.Config.ToleranceUsecs,
	}
}

// sockaddrBytes is the memory image of a struct sockaddr_in/sockaddr_in6.
func sockaddrBytes(sa unix.Sockaddr) ([]byte, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		b := make([]byte, unix.SizeofSockaddrInet4)
		*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET
		b[2], b[3] = byte(a.Port>>8), byte(a.Port)
		copy(b[4:8], a.Addr[:])
		return b, nil
	case *unix.SockaddrInet6:
		b := make([]byte, unix.SizeofSockaddrInet6)
		*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET6
		b[2], b[3] = byte(a.Port>>8), byte(a.Port)
		copy(b[8:24], a.Addr[:])
		*(*uint32)(unsafe.Pointer(&b[24])) = a.ZoneId
		return b, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported socket address %T", sa)
}
