package replay

import (
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// tcpPair connects two TCP sockets over 127.0.0.1 (no root needed) and
// returns the client and the accepted server fds.
func tcpPair(t *testing.T) (client, server int) {
	t.Helper()
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("skipping: no TCP sockets: %v", err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skipf("skipping: no loopback: %v", err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	client, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(client) })
	if err := unix.Connect(client, sa); err != nil {
		t.Fatal(err)
	}
	server, _, err = unix.Accept(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(server) })
	return client, server
}

// scriptMsghdr builds the live msghdr of a script's msghdr text.
func scriptMsghdr(t *testing.T, text string) *liveMsghdr {
	t.Helper()
	src := "0 recvmsg(4, " + text + ", 0) = 0\n"
	s, err := parser.ParseFile("t.pkt", []byte(src), nil)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	lm, err := msghdr(&evaluator{}, s.Events[0].Action.(*parser.Syscall).Args[1])
	if err != nil {
		t.Fatal(err)
	}
	lm.setName(make([]byte, sockaddrStorageLen))
	return lm
}

// waitReadable polls fd for events, failing after a second.
func waitReadable(t *testing.T, fd int, events int16) int16 {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, errno := pollLive(fds, 1000)
	if n != 1 || errno != 0 {
		t.Fatalf("poll = %d, %v", n, errno)
	}
	return fds[0].Revents
}

func TestLoopbackRecvmsgInq(t *testing.T) {
	client, server := tcpPair(t)
	if err := unix.SetsockoptInt(server, unix.SOL_TCP, unix.TCP_INQ, 1); err != nil {
		t.Skipf("skipping: TCP_INQ unsupported: %v", err)
	}
	if _, err := unix.Write(client, make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	if got := waitReadable(t, server, unix.POLLIN); got != unix.POLLIN {
		t.Fatalf("revents = %s", pollFlags(got))
	}
	// The data may arrive in pieces; read until only the last 8000 bytes are left.
	for {
		n, err := unix.IoctlGetInt(server, unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if n == 10000 {
			break
		}
		waitReadable(t, server, unix.POLLIN)
	}
	lm := scriptMsghdr(t, `{msg_name(...)=..., msg_iov(1)=[{..., 2000}], msg_flags=0,
		msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=8000}]}`)
	n, errno := lm.call(unix.SYS_RECVMSG, server, 0)
	if n != 2000 || errno != 0 {
		t.Fatalf("recvmsg = %d, %v", n, errno)
	}
	if err := lm.checkReceived(cmsgTiming{}); err != nil {
		t.Errorf("check: %v", err)
	}
	lm = scriptMsghdr(t, `{msg_name(...)=..., msg_iov(1)=[{..., 8000}], msg_flags=0,
		msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=1}]}`)
	if n, errno := lm.call(unix.SYS_RECVMSG, server, 0); n != 8000 || errno != 0 {
		t.Fatalf("recvmsg = %d, %v", n, errno)
	}
	if err := lm.checkReceived(cmsgTiming{}); err == nil || err.Error() != "bad data in cmsg 0: expected=\\x01\\x00\\x00\\x00 actual=\\x00\\x00\\x00\\x00" {
		t.Errorf("check of TCP_CM_INQ 1 for an empty queue: %v", err)
	}
}

func TestLoopbackZerocopyErrqueue(t *testing.T) {
	client, _ := tcpPair(t)
	if err := unix.SetsockoptInt(client, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1); err != nil {
		t.Skipf("skipping: SO_ZEROCOPY unsupported: %v", err)
	}
	empty := scriptMsghdr(t, `{msg_name(...)=..., msg_iov(1)=[{...,0}], msg_flags=MSG_ERRQUEUE, msg_control=[]}`)
	if n, errno := empty.call(unix.SYS_RECVMSG, client, unix.MSG_ERRQUEUE); n != -1 || errno != unix.EAGAIN {
		t.Fatalf("empty error queue: recvmsg = %d, %v", n, errno)
	}
	if err := empty.checkReceived(cmsgTiming{}); err != nil {
		t.Errorf("a failed recvmsg must keep the script's msg_flags: %v", err)
	}
	send := scriptMsghdr(t, `{msg_name(...)=..., msg_iov(2)=[{..., 1000}, {..., 1000}], msg_flags=0}`)
	send.setName(nil)
	if n, errno := send.call(unix.SYS_SENDMSG, client, unix.MSG_ZEROCOPY); n != 2000 || errno != 0 {
		t.Fatalf("sendmsg = %d, %v", n, errno)
	}
	waitReadable(t, client, 0) // POLLERR is always reported
	lm := scriptMsghdr(t, `{msg_name(...)=..., msg_iov(1)=[{...,0}], msg_flags=MSG_ERRQUEUE,
		msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR,
			cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_type=0,
				ee_code=SO_EE_CODE_ZEROCOPY_COPIED, ee_info=0, ee_data=0}}]}`)
	if n, errno := lm.call(unix.SYS_RECVMSG, client, unix.MSG_ERRQUEUE); n != 0 || errno != 0 {
		t.Fatalf("recvmsg(MSG_ERRQUEUE) = %d, %v", n, errno)
	}
	if err := lm.checkReceived(cmsgTiming{}); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestLoopbackEpollPipeSplice(t *testing.T) {
	client, server := tcpPair(t)
	epfd, err := unix.EpollCreate1(0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	ev := epollData{events: unix.EPOLLIN | unix.EPOLLET, field: "fd", data: uint64(server)}.toLive()
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, server, &ev); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 1)
	if n, errno := epollWaitLive(epfd, events, 1, 0); n != 0 || errno != 0 {
		t.Fatalf("idle epoll_wait = %d, %v", n, errno)
	}
	if err := checkEpollEvent(epollData{field: "ptr"}, &events[0]); err != nil {
		t.Errorf("idle event: %v", err)
	}
	if _, err := unix.Write(client, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if n, errno := epollWaitLive(epfd, events, 1, 1000); n != 1 || errno != 0 {
		t.Fatalf("epoll_wait = %d, %v", n, errno)
	}
	want := epollData{events: unix.EPOLLIN, field: "fd", data: uint64(server)}
	if err := checkEpollEvent(want, &events[0]); err != nil {
		t.Errorf("event: %v", err)
	}
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	n, err := unix.Splice(server, nil, p[1], nil, 100, 0)
	if n != 100 || err != nil {
		t.Errorf("splice = %d, %v", n, err)
	}
}
