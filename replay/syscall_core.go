package replay

// This file holds the core system calls, with the reference's argument
// rules: `...` for addresses fills in the live ones (bind: local address and
// --bind_port; connect and sendto: remote address and --connect_port),
// buffers are `...` (a zeroed live buffer) or NULL, and fds returned by
// socket() and accept() are mapped to the script's numbers.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	registerSyscall("socket", sysSocket)
	registerSyscall("bind", sysBind)
	registerSyscall("listen", sysListen)
	registerSyscall("accept", sysAccept)
	registerSyscall("connect", sysConnect)
	registerSyscall("read", ioCall(unix.SYS_READ))
	registerSyscall("write", ioCall(unix.SYS_WRITE))
	registerSyscall("send", ioFlagsCall(unix.SYS_SENDTO))
	registerSyscall("recv", ioFlagsCall(unix.SYS_RECVFROM))
	registerSyscall("sendto", sysSendto)
	registerSyscall("recvfrom", sysRecvfrom)
	registerSyscall("close", sysClose)
	registerSyscall("shutdown", sysShutdown)
	registerSyscall("setsockopt", sysSetsockopt)
	registerSyscall("getsockopt", sysGetsockopt)
	registerSyscall("fcntl", sysFcntl)
	registerSyscall("ioctl", sysIoctl)
}

// bufPtr is the address of a buffer for a raw call (0 for a nil one).
func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// rawSockaddr encodes a sockaddr_in or sockaddr_in6.
func rawSockaddr(ip netip.Addr, port uint16) []byte {
	if ip.Is4() {
		b := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], port)
		a := ip.As4()
		copy(b[4:], a[:])
		return b
	}
	b := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	a := ip.As16()
	copy(b[8:], a[:])
	return b
}

// socketAddr is the address sockets use for a wire address: the
// IPv4-mapped IPv6 form in ipv4-mapped-ipv6 mode.
func (c *callContext) socketAddr(ip netip.Addr) netip.Addr {
	if c.Config.IPVersion == ipv4Mapped {
		return netip.AddrFrom16(ip.As16())
	}
	return ip
}

func sysSocket(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	domain := int64(unix.AF_INET)
	if c.Config.socketIPv6() {
		domain = unix.AF_INET6
	}
	if a.ok() && !a.isEllipsis(0) {
		domain = int64(a.int32(0))
	}
	typ, proto := a.int32(1), a.int32(2)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	c.resultIsFD()
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_SOCKET, uintptr(domain), uintptr(typ), uintptr(proto))
	})
	c.afterResultFD(ret, func(scriptFD int) error {
		return c.addSocket(scriptFD, int(ret), int(domain), int(typ), int(proto))
	})
	return ret, errno, nil
}

func sysBind(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	fd := a.fdWithAddress()
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	sa := rawSockaddr(c.socketAddr(c.Config.localAddr), c.Config.BindPort)
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_BIND, uintptr(fd), bufPtr(sa), uintptr(len(sa)))
	})
	return ret, errno, nil
}

func sysListen(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(2)
	scriptFD, fd := a.fds(0)
	backlog := a.int32(1)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_LISTEN, uintptr(fd), uintptr(backlog), 0)
	})
	c.after(func() error {
		f := c.e.fds.byScript(scriptFD)
		if f == nil || f.sock == nil {
			return fmt.Errorf("unable to find socket with script fd %d", scriptFD)
		}
		f.sock.state = sockListening
		return nil
	})
	return ret, errno, nil
}

func sysAccept(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	fd := a.fdWithAddress()
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	c.resultIsFD()
	var sa [unix.SizeofSockaddrAny]byte
	salen := uint32(len(sa))
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_ACCEPT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&salen)))
	})
	c.afterResultFD(ret, func(scriptFD int) error { return c.e.acceptSocket(scriptFD, int(ret)) })
	return ret, errno, nil
}

// acceptSocket gives the accepted connection its fds: the socket whose
// handshake the script completed (or, for Fast Open, started).
func (e *engine) acceptSocket(scriptFD, liveFD int) error {
	for _, f := range e.fds.entries {
		s := f.sock
		if s == nil {
			continue
		}
		if s.state == sockPassiveSynackSent || s.state == sockPassiveSynackAcked {
			if f.scriptFD >= 0 && !f.closed {
				continue
			}
			f.scriptFD, f.liveFD, f.closed = scriptFD, liveFD, false
			return nil
		}
	}
	return fmt.Errorf("unable to find socket matching accept() call")
}

// prepareConnect is the reference's run_syscall_connect: it picks the live
// address (the remote address and --connect_port, or a bare family such as
// AF_UNSPEC) and moves a new socket to the connecting state.
func (c *callContext) prepareConnect(scriptFD int, family int64) []byte {
	var sa []byte
	if family >= 0 {
		sa = make([]byte, unix.SizeofSockaddrAny)
		binary.NativeEndian.PutUint16(sa, uint16(family))
		sa = sa[:16]
	} else {
		sa = rawSockaddr(c.socketAddr(c.Config.remoteAddr), c.Config.ConnectPort)
	}
	f := c.e.fds.byScript(scriptFD)
	if f == nil || f.sock == nil {
		return sa
	}
	s := f.sock
	if family == unix.AF_UNSPEC {
		s.state = sockNew
		return sa
	}
	if s.state != sockNew {
		return sa
	}
	s.state = sockActiveConnecting
	s.script.local, s.script.remote = endpoint{}, endpoint{}
	s.live.remote = endpoint{ip: c.Config.remoteAddr, port: c.Config.ConnectPort}
	c.e.underTest = s
	return sa
}

// connectAddr is the live remote address a connect() of scriptFD would
// use (the remote address and --connect_port), and, if the socket is still
// new, marks it actively connecting (a Fast Open sendmsg or sendto
// connects).
func (c *callContext) connectAddr(scriptFD int) unix.Sockaddr {
	c.prepareConnect(scriptFD, -1)
	ip := c.socketAddr(c.Config.remoteAddr)
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(c.Config.ConnectPort), Addr: ip.As4()}
	}
	return &unix.SockaddrInet6{Port: int(c.Config.ConnectPort), Addr: ip.As16()}
}

func sysConnect(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(3)
	scriptFD, fd := a.fds(0)
	family := a.family(1)
	a.ellipsis(2)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	sa := c.prepareConnect(scriptFD, family)
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_CONNECT, uintptr(fd), bufPtr(sa), uintptr(len(sa)))
	})
	return ret, errno, nil
}

// io reads (fd, buffer, count) of read, write, send and recv.
func (a *argReader) io() (fd int, buf []byte, count int32) {
	fd = a.fd(0)
	count = a.int32(2)
	buf = a.buffer(1, int(count))
	return fd, buf, count
}

// ioCall is read(fd, buf, n) or write(fd, buf, n): nr is the call.
func ioCall(nr uintptr) syscallFunc {
	return func(c *callContext) (int64, syscall.Errno, error) {
		a := c.args(3)
		fd, buf, n := a.io()
		if err := a.err(); err != nil {
			return 0, 0, err
		}
		ret, errno := c.invoke(func() (int64, syscall.Errno) {
			return rawSyscall(nr, uintptr(fd), bufPtr(buf), uintptr(n))
		})
		return ret, errno, nil
	}
}

// ioFlagsCall is send(fd, buf, n, flags) or recv(fd, buf, n, flags), made
// as sendto or recvfrom (nr) without an address, as libc does.
func ioFlagsCall(nr uintptr) syscallFunc {
	return func(c *callContext) (int64, syscall.Errno, error) {
		a := c.args(4)
		fd, buf, n := a.io()
		flags := a.int32(3)
		if err := a.err(); err != nil {
			return 0, 0, err
		}
		ret, errno := c.invoke(func() (int64, syscall.Errno) {
			return rawSyscall6(nr, uintptr(fd), bufPtr(buf), uintptr(n), uintptr(flags), 0, 0)
		})
		return ret, errno, nil
	}
}

func sysSendto(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(6)
	scriptFD := a.scriptFD(0)
	fd, buf, n := a.io()
	flags := a.int32(3)
	family := a.family(4)
	a.ellipsis(5)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	sa := c.prepareConnect(scriptFD, family)
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall6(unix.SYS_SENDTO, uintptr(fd), bufPtr(buf), uintptr(n), uintptr(flags), bufPtr(sa), uintptr(len(sa)))
	})
	return ret, errno, nil
}

func sysRecvfrom(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(6)
	fd, buf, n := a.io()
	flags := a.int32(3)
	a.ellipsis(4)
	a.ellipsis(5)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	var sa [unix.SizeofSockaddrAny]byte
	salen := uint32(len(sa))
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall6(unix.SYS_RECVFROM, uintptr(fd), bufPtr(buf), uintptr(n), uintptr(flags),
			uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&salen)))
	})
	return ret, errno, nil
}

func sysClose(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(1)
	scriptFD, fd := a.fds(0)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	})
	c.after(func() error { return c.markClosed(scriptFD, fd) })
	return ret, errno, nil
}

func sysShutdown(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(2)
	fd, how := a.fd(0), a.int32(1)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	})
	return ret, errno, nil
}

func sysSetsockopt(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(5)
	fd, level, name := a.fd(0), a.int32(1), a.int32(2)
	optlen := a.int32(4)
	if a.ok() && optlen > maxBuffer {
		a.failf("optlen %d larger than %d", optlen, maxBuffer)
	}
	val := read(a, func() ([]byte, error) { return c.Eval.sockoptValue(c.Args[3], int(optlen)) })
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), bufPtr(val), uintptr(optlen), 0)
	})
	return ret, errno, nil
}

func sysGetsockopt(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(5)
	fd, level, name := a.fd(0), a.int32(1), a.int32(2)
	scriptLen := a.bracketedInt32(4)
	if a.ok() && (scriptLen < 0 || scriptLen > maxBuffer) {
		a.failf("optlen %d out of range 0..%d", scriptLen, maxBuffer)
	}
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	val := make([]byte, scriptLen+1)
	optlen := uint32(scriptLen)
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), bufPtr(val), uintptr(unsafe.Pointer(&optlen)), 0)
	})
	c.after(func() error {
		return c.Eval.checkSockoptValue(c.Args[3], int(scriptLen), val[:min(int(optlen), len(val))])
	})
	return ret, errno, nil
}

func sysFcntl(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(2, 3)
	fd, cmd := a.fd(0), a.int32(1)
	var arg int32
	if len(c.Args) == 3 {
		arg = a.int32(2)
	}
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	})
	return ret, errno, nil
}

func sysIoctl(c *callContext) (int64, syscall.Errno, error) {
	a := c.args(2, 3)
	fd, cmd := a.fd(0), a.int32(1)
	if len(c.Args) == 2 {
		if err := a.err(); err != nil {
			return 0, 0, err
		}
		ret, errno := c.invoke(func() (int64, syscall.Errno) {
			return rawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(uint32(cmd)), 0)
		})
		return ret, errno, nil
	}
	want := a.bracketedInt32(2)
	if err := a.err(); err != nil {
		return 0, 0, err
	}
	var live int32
	ret, errno := c.invoke(func() (int64, syscall.Errno) {
		return rawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(uint32(cmd)), uintptr(unsafe.Pointer(&live)))
	})
	c.after(func() error {
		if live != want {
			return fmt.Errorf("bad ioctl optval: expected: %d actual: %d", want, live)
		}
		return nil
	})
	return ret, errno, nil
}
