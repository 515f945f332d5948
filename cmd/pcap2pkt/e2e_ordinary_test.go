//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Ordinary connections that synthesis used to get wrong, each from a real
// capture this test makes: a FIN that rode on the last data, a client
// captured with `tcpdump -i any` (LINUX_SLL2), an NFLOG capture of an IPv4
// and an IPv6 connection, a Fast Open server's cookie, and a client whose
// SYNs the peer's firewall dropped. Each capture must verify; the last one
// as the client, and as the silent server it must say there is nothing to
// check.

// toolCapture runs tcpdump in ns (`-i iface`, or nflog:N) into path until
// stop is called.
type toolCapture struct {
	cmd  *exec.Cmd
	errb bytes.Buffer
}

func startTcpdump(t *testing.T, ns netns.NsHandle, iface, path string) *toolCapture {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed (.ci/run installs it)")
	}
	tc := &toolCapture{}
	pr, pw := io.Pipe()
	err = inNS(ns, func() error {
		// -B 16384 (KiB): with the default 2 MiB ring, tcpdump -i any did
		// not record 27-74 KB GRO packets of a 100 KB response in 4 of 10
		// captures (0 of 20 with it).
		tc.cmd = exec.Command(bin, "--immediate-mode", "-B", "16384", "-Z", "root", "-U", "-n", "-i", iface, "-w", path)
		tc.cmd.Stderr = io.MultiWriter(&tc.errb, pw)
		return tc.cmd.Start()
	})
	if err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { tc.stop() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump did not start: %s", tc.errb.String())
	}
	return tc
}

// stop ends the capture; tcpdump writes what it has on SIGTERM (with
// --immediate-mode: else what waits in the ring's unfinished block, up to a
// second of packets, is lost).
func (tc *toolCapture) stop() {
	if tc.cmd.ProcessState != nil {
		return
	}
	tc.cmd.Process.Signal(syscall.SIGTERM)
	tc.cmd.Wait()
}

// runIn runs a command in ns.
func runIn(ns netns.NsHandle, stdin string, name string, args ...string) error {
	return inNS(ns, func() error {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	})
}

// setSysctl writes a sysctl of ns's own (net.* belongs to the namespace).
func setSysctl(ns netns.NsHandle, name, value string) error {
	return inNS(ns, func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), []byte(value), 0)
	})
}

// serveOnce accepts one connection on ln and runs f on it.
func serveOnce(ln net.Listener, f func(*net.TCPConn) error) chan error {
	errc := make(chan error, 1)
	go func() {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		errc <- f(c.(*net.TCPConn))
	}()
	return errc
}

// request reads n bytes and answers with size bytes, then closes.
func answer(n, size int, cork bool) func(*net.TCPConn) error {
	return func(c *net.TCPConn) error {
		if err := readN(c, n); err != nil {
			return err
		}
		if cork {
			// The data waits in the queue until close(): the kernel then
			// sends it with the FIN on its last segment.
			raw, err := c.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1) }); err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
		}
		return write(c, size)
	}
}

// fetch dials addr from ns, sends n bytes and reads to EOF.
func fetch(ns netns.NsHandle, addr netip.AddrPort, n, want int) error {
	c, err := dialIn(ns, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := write(c, n); err != nil {
		return err
	}
	return readEOF(c, want)
}

// requestOnce serves one connection on addr in the server's namespace:
// the client sends n bytes and reads size back (cork: the server's FIN
// rides on its last data).
func requestOnce(t *testing.T, tp *topo, addr netip.AddrPort, n, size int, cork bool) {
	t.Helper()
	ln, err := listenIn(tp.server.ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := serveOnce(ln, answer(n, size, cork))
	if err := fetch(tp.client.ns, addr, n, size); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// verifyCapture runs `pcap2pkt verify` and requires every connection to
// pass; a failure gets a second try (a loaded machine can miss a timing).
func verifyCapture(t *testing.T, bin, pcap, keep string, conns int, args ...string) {
	t.Helper()
	var why string
	for attempt := 1; attempt <= 2; attempt++ {
		a := append(append([]string{"verify", "--keep", keep}, args...), pcap)
		code, out, errs := execCLI(t, bin, a...)
		if passed := strings.Count(out, "  pass  "); code == 0 && passed == conns {
			if attempt > 1 {
				t.Logf("verified at the second attempt; the first:\n%s", why)
			}
			return
		}
		why = fmt.Sprintf("pcap2pkt %s: exit %d, want %d connection(s) passing\n%s%s", strings.Join(a, " "), code, conns, out, errs)
	}
	t.Error(why)
}

// flowsOf reads a capture's connections.
func flowsOf(t *testing.T, path string) []*capture.Flow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flows, _, err := capture.ReadFlows(f, path, capture.FlowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

func TestE2EOrdinary(t *testing.T) {
	requireReplay(t)
	bin := buildCLI(t)
	srv4 := netip.AddrPortFrom(e2eServer4, e2ePort)
	srv6 := netip.AddrPortFrom(e2eServer6, e2ePort)

	t.Run("fin_on_last_data", func(t *testing.T) {
		dir := keepDir(t)
		tp := newTopo(t, nil)
		sp, cp := filepath.Join(dir, "server.pcap"), filepath.Join(dir, "client.pcap")
		ss, err := startSniffer(tp.server, sp)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := startSniffer(tp.client, cp)
		if err != nil {
			t.Fatal(err)
		}
		requestOnce(t, tp, srv4, 50, 300, true)
		time.Sleep(200 * time.Millisecond)
		_, serr := ss.stop()
		_, cerr := cs.stop()
		if err := errors.Join(serr, cerr); err != nil {
			t.Fatal(err)
		}
		fin := false
		for _, p := range flowsOf(t, sp)[0].Packets.All() {
			fin = fin || p.Flags.Has(tcpwire.FlagFIN) && p.PayloadLen() > 0
		}
		if !fin {
			t.Fatal("the capture has no FIN on data: the case was not reproduced")
		}
		verifyCapture(t, bin, sp, filepath.Join(dir, "server"), 1, "--local", e2eServer4.String())
		verifyCapture(t, bin, cp, filepath.Join(dir, "client"), 1, "--local", e2eClient4.String())
	})

	t.Run("ipv6_client_tcpdump_any", func(t *testing.T) {
		dir := keepDir(t)
		cp := filepath.Join(dir, "client.pcap")
		// A capture that lacks some of the response (tcpdump did not
		// record a GRO packet the client's ACKs show arrived) holds a hole
		// the client never saw, which synthesis does not fill yet (see the
		// notes of issue 11); take it again. tcpdump's -B makes it rare.
		var flows []*capture.Flow
		for attempt := 1; ; attempt++ {
			tp := newTopo(t, nil)
			tc := startTcpdump(t, tp.client.ns, "any", cp)
			requestOnce(t, tp, srv6, 50, 102604, false)
			time.Sleep(200 * time.Millisecond)
			tc.stop()
			flows = flowsOf(t, cp)
			if len(flows) != 1 || flows[0].Packets.At(0).CaptureDir == capture.DirUnknown {
				t.Fatalf("%d connection(s), want one captured with directions (LINUX_SLL2)", len(flows))
			}
			got := 0
			for _, p := range flows[0].Packets.All() {
				if p.From == flows[0].Packets.At(0).From.Other() {
					got += p.PayloadLen()
				}
			}
			if got >= 102604 {
				break
			}
			if attempt == 3 {
				t.Fatalf("three captures lack some of the response (this one %d of 102604 bytes)", got)
			}
			t.Logf("capture %d lacks %d bytes of the response (tcpdump did not record them); again", attempt, 102604-got)
		}
		// No --local: the SLL2 direction marks say which side is local.
		verifyCapture(t, bin, cp, filepath.Join(dir, "client"), 1)
	})

	t.Run("nflog_ipv4_and_ipv6", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("nft is not installed (.ci/run installs nftables)")
		}
		dir := keepDir(t)
		tp := newTopo(t, nil)
		sp := filepath.Join(dir, "server.pcap")
		rules := fmt.Sprintf("table inet pcap2pkt_log {\n chain in {\n  type filter hook input priority 0;\n  tcp dport %d log group 5\n }\n"+
			" chain out {\n  type filter hook output priority 0;\n  tcp sport %d log group 5\n }\n}\n", e2ePort, e2ePort)
		if err := runIn(tp.server.ns, rules, "nft", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		tc := startTcpdump(t, tp.server.ns, "nflog:5", sp)
		for _, addr := range []netip.AddrPort{srv4, srv6} {
			requestOnce(t, tp, addr, 50, 3000, false)
			// Apart by more than NFLOG's one-second flush: the records of
			// the second connection come in a batch of their own.
			time.Sleep(1200 * time.Millisecond)
		}
		tc.stop()
		if n := len(flowsOf(t, sp)); n != 2 {
			t.Fatalf("%d connections in the NFLOG capture, want 2", n)
		}
		verifyCapture(t, bin, sp, filepath.Join(dir, "server"), 2)
	})

	t.Run("fast_open_server", func(t *testing.T) {
		dir := keepDir(t)
		tp := newTopo(t, nil)
		if err := setSysctl(tp.server.ns, "net.ipv4.tcp_fastopen", "3"); err != nil {
			t.Fatal(err)
		}
		sp := filepath.Join(dir, "server.pcap")
		ss, err := startSniffer(tp.server, sp)
		if err != nil {
			t.Fatal(err)
		}
		var ln net.Listener
		err = inNS(tp.server.ns, func() error {
			lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 5) })
				return errors.Join(err, serr)
			}}
			var err error
			ln, err = lc.Listen(context.Background(), "tcp", srv4.String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		// The first connection asks for a cookie, the second sends its
		// request in the SYN with it.
		for range 2 {
			errc := serveOnce(ln, answer(60, 200, false))
			if err := fastOpenFetch(tp.client.ns, srv4, 60, 200); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := ss.stop(); err != nil {
			t.Fatal(err)
		}
		flows := flowsOf(t, sp)
		if len(flows) != 2 || flows[0].Packets.At(1).Options().CookieLen == 0 || flows[1].Packets.At(0).PayloadLen() == 0 {
			t.Fatal("the capture does not show a cookie handed out, then used with data in the SYN")
		}
		verifyCapture(t, bin, sp, filepath.Join(dir, "server"), 2, "--local", e2eServer4.String())
	})

	t.Run("firewalled_syns", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("nft is not installed (.ci/run installs nftables)")
		}
		dir := keepDir(t)
		tp := newTopo(t, nil)
		rules := fmt.Sprintf("table inet pcap2pkt_fw {\n chain in {\n  type filter hook input priority 0;\n  tcp dport %d drop\n }\n}\n", e2ePort)
		if err := runIn(tp.server.ns, rules, "nft", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, "client.pcap")
		cs, err := startSniffer(tp.client, cp)
		if err != nil {
			t.Fatal(err)
		}
		err = inNS(tp.client.ns, func() error {
			d := net.Dialer{Timeout: 3500 * time.Millisecond}
			c, err := d.Dial("tcp", srv4.String())
			if err == nil {
				c.Close()
				return errors.New("connected through the firewall")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.stop(); err != nil {
			t.Fatal(err)
		}
		flows := flowsOf(t, cp)
		if len(flows) != 1 || flows[0].Packets.Len() < 4 {
			t.Fatalf("want one connection of SYN retransmissions, got %d", len(flows))
		}
		// No --local: the client is the only side the capture shows acting.
		verifyCapture(t, bin, cp, filepath.Join(dir, "client"), 1)
		code, out, _ := execCLI(t, bin, "verify", "--local", e2eServer4.String(), cp)
		if code != exitFail || !strings.Contains(out, "nothing to check") || strings.Contains(out, "  pass  ") {
			t.Errorf("verify as the silent server: exit %d, want %d and \"nothing to check\":\n%s", code, exitFail, out)
		}
	})
}

// fastOpenFetch is fetch with TCP_FASTOPEN_CONNECT: the request goes in
// the SYN when the client holds a cookie for the server.
func fastOpenFetch(ns netns.NsHandle, addr netip.AddrPort, n, want int) error {
	return inNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(5 * time.Second))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
			return err
		}
		if _, err := unix.Write(fd, bytes.Repeat([]byte{'q'}, n)); err != nil {
			return err
		}
		got := 0
		buf := make([]byte, 4096)
		for {
			m, err := unix.Read(fd, buf)
			if err != nil {
				return err
			}
			if m == 0 {
				break
			}
			got += m
		}
		if got != want {
			return fmt.Errorf("read %d bytes, want %d", got, want)
		}
		return nil
	})
}
