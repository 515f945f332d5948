package replay

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

func iovList(lens ...int64) *parser.List {
	l := &parser.List{}
	for _, n := range lens {
		l.Elems = append(l.Elems, &parser.Iovec{Len: &parser.IntLit{Value: n}})
	}
	return l
}

func TestIovecs(t *testing.T) {
	bufs, iov, err := iovecs(iovList(1, 0, 1, 16))
	if err != nil {
		t.Fatal(err)
	}
	if len(bufs) != 4 || len(iov) != 4 {
		t.Fatalf("got %d buffers, %d iovecs", len(bufs), len(iov))
	}
	if iov[1].Base != nil || iov[1].Len != 0 {
		t.Errorf("empty iovec = %+v", iov[1])
	}
	// No buffer may end where the next one starts (the kernel would merge
	// their zerocopy fragments).
	end0 := uintptr(unsafe.Pointer(&bufs[0][0])) + 1
	if start2 := uintptr(unsafe.Pointer(&bufs[2][0])); start2 < end0+iovecGap || cap(bufs[0]) != 1 {
		t.Errorf("buffer 2 starts %d bytes after buffer 0 ends; want a gap of %d", start2-end0, iovecGap)
	}
	for i, n := range []uint64{1, 0, 1, 16} {
		if iov[i].Len != n {
			t.Errorf("iov[%d].Len = %d, want %d", i, iov[i].Len, n)
		}
	}
	for _, bad := range []parser.Expr{intLit(1), &parser.List{Elems: []parser.Expr{intLit(1)}}, iovList(-1)} {
		if _, _, err := iovecs(bad); err == nil {
			t.Errorf("iovecs(%s) succeeded", exprKind(bad))
		}
	}
}

func TestMsghdr(t *testing.T) {
	ev := &evaluator{}
	m := &parser.Msghdr{
		IovLen: &parser.IntLit{Value: 2}, Iov: iovList(10, 20),
		Flags:   or(word("MSG_ERRQUEUE"), word("MSG_TRUNC")),
		Control: &parser.List{Elems: []parser.Expr{cmsgExpr("SOL_TCP", "TCP_CM_INQ", intLit(5))}},
	}
	lm, err := msghdr(ev, m)
	if err != nil {
		t.Fatal(err)
	}
	if lm.hdr.Iovlen != 2 || lm.hdr.Controllen != uint64(cmsgSpace(4)) || lm.flags != unix.MSG_ERRQUEUE|unix.MSG_TRUNC {
		t.Errorf("msghdr = %+v, flags %#x", lm.hdr, lm.flags)
	}
	if lm.hdr.Flags != lm.flags {
		t.Errorf("msg_flags not preset to the script's value")
	}
	if err := lm.checkReceived(cmsgTiming{}); err != nil {
		t.Errorf("an untouched msghdr does not match itself: %v", err)
	}
	m.IovLen.Value = 3
	if _, err := msghdr(ev, m); err == nil || !strings.Contains(err.Error(), "msg_iovlen 3 does not match 2-element iovec array") {
		t.Errorf("msghdr with a wrong iovlen: %v", err)
	}
}

func TestPollFlags(t *testing.T) {
	tests := []struct {
		v    int16
		want string
	}{
		{0, "0"},
		{unix.POLLIN | unix.POLLOUT, "POLLIN|POLLOUT"},
		{unix.POLLERR | unix.POLLHUP | unix.POLLRDHUP, "POLLRDHUP|POLLERR|POLLHUP"},
		{0x4000, "0x4000"},
	}
	for _, tc := range tests {
		if got := pollFlags(tc.v); got != tc.want {
			t.Errorf("PollFlags(%#x) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestEpollData(t *testing.T) {
	var ev unix.EpollEvent
	for _, v := range []uint64{0, 4, 0xdeadbeef, 0x0123456789abcdef, ^uint64(0)} {
		setEpollData(&ev, v)
		if got := epollDataOf(&ev); got != v {
			t.Errorf("epoll data %#x came back as %#x", v, got)
		}
	}
	want := epollData{events: unix.EPOLLOUT, field: "fd", data: 7}
	got := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: 7}
	if err := checkEpollEvent(want, &got); err != nil {
		t.Errorf("checkEpollEvent() = %v", err)
	}
	got.Fd = 8
	if err := checkEpollEvent(want, &got); err == nil || !strings.Contains(err.Error(), "expected fd: 7 actual fd: 8") {
		t.Errorf("checkEpollEvent() = %v", err)
	}
	got.Events = unix.EPOLLIN
	if err := checkEpollEvent(want, &got); err == nil || !strings.Contains(err.Error(), "events does not match") {
		t.Errorf("checkEpollEvent() = %v", err)
	}
}

func TestSockaddrBytes(t *testing.T) {
	b, err := sockaddrBytes(&unix.SockaddrInet4{Port: 8080, Addr: [4]byte{192, 0, 2, 1}})
	if err != nil || len(b) != 16 || b[2] != 0x1f || b[3] != 0x90 || b[4] != 192 || b[7] != 1 {
		t.Errorf("sockaddr_in = %x, %v", b, err)
	}
	b, err = sockaddrBytes(&unix.SockaddrInet6{Port: 1, Addr: [16]byte{15: 1}})
	if err != nil || len(b) != 28 || b[3] != 1 || b[23] != 1 {
		t.Errorf("sockaddr_in6 = %x, %v", b, err)
	}
}
