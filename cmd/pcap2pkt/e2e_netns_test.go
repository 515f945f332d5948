//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The real-traffic harness: network namespaces joined by veth pairs, made
// with netlink (never the `ip` binary), with private addresses only. A
// goroutine enters a namespace on a locked OS thread and never unlocks it,
// so the thread dies with the goroutine instead of returning to the pool
// in a foreign namespace. Sockets keep the namespace they were made in, so
// a listener or connection made there is then used from any goroutine.

// Addresses inside the test's namespaces.
var (
	e2eClient4 = netip.MustParseAddr("10.200.0.1")
	e2eServer4 = netip.MustParseAddr("10.200.0.2")
	e2eClient6 = netip.MustParseAddr("fd00:200::1")
	e2eServer6 = netip.MustParseAddr("fd00:200::2")
)

// inNS runs f on a fresh OS thread that has entered ns; the thread is
// thrown away afterwards.
func inNS(ns netns.NsHandle, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := netns.Set(ns); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		done <- f()
	}()
	return <-done
}

// newNS makes an empty network namespace with lo up and returns a handle
// (a file descriptor) that keeps it alive until closed.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	type res struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread leaves the host namespace
		ns, err := netns.New()
		ch <- res{ns, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("new network namespace: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	h := nlHandle(t, r.ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return r.ns
}

func nlHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// link is one end of a veth pair.
type link struct {
	ns   netns.NsHandle
	name string
}

// vethPair joins a and b by a veth pair named an (in a) and bn (in b),
// both up. Deleting one end deletes both; the namespaces' ends take them
// anyway, but the cleanup removes the pair at once even if a socket still
// holds a namespace.
func vethPair(t *testing.T, a netns.NsHandle, an string, b netns.NsHandle, bn string) (link, link) {
	t.Helper()
	ha, hb := nlHandle(t, a), nlHandle(t, b)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an, MTU: 1500}, PeerName: bn, PeerNamespace: netlink.NsFd(int(b))}
	if err := ha.LinkAdd(v); err != nil {
		t.Fatalf("veth %s/%s: %v", an, bn, err)
	}
	t.Cleanup(func() {
		if l, err := ha.LinkByName(an); err == nil {
			ha.LinkDel(l)
		}
	})
	for _, x := range []struct {
		h    *netlink.Handle
		name string
	}{{ha, an}, {hb, bn}} {
		l, err := x.h.LinkByName(x.name)
		if err == nil {
			err = x.h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("%s up: %v", x.name, err)
		}
	}
	return link{a, an}, link{b, bn}
}

// addAddrs gives l an IPv4 /24 and an IPv6 /64 (without duplicate address
// detection, which would hold the address back for a second or more).
func addAddrs(t *testing.T, l link, v4, v6 netip.Addr) {
	t.Helper()
	h := nlHandle(t, l.ns)
	nl, err := h.LinkByName(l.name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{netip.PrefixFrom(v4, 24), netip.PrefixFrom(v6, 64)} {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(nl, a); err != nil {
			t.Fatalf("address %s on %s: %v", p, l.name, err)
		}
	}
}

// Legacy ethtool commands that switch one offload (struct ethtool_value).
const (
	ethtoolSTSO = 0x1f
	ethtoolSGSO = 0x24
	ethtoolSGRO = 0x2c
)

// offloadsOff switches TSO, GSO and GRO of l off with SIOCETHTOOL.
func offloadsOff(l link) error {
	return inNS(l.ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, cmd := range []uint32{ethtoolSTSO, ethtoolSGSO, ethtoolSGRO} {
			val := struct{ cmd, data uint32 }{cmd, 0}
			var ifr struct {
				name [unix.IFNAMSIZ]byte
				data unsafe.Pointer
				_    [16]byte
			}
			copy(ifr.name[:], l.name)
			ifr.data = unsafe.Pointer(&val)
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
				return fmt.Errorf("%s: ethtool command %#x: %w", l.name, cmd, e)
			}
		}
		return nil
	})
}

// topo is a client and a server namespace, joined directly by one veth
// pair or through a middle namespace whose forwarder impairs the path.
type topo struct {
	client, server link // the endpoints' veths
	fwd            *forwarder
}

// newTopo builds the namespaces. With imp == nil the client and server are
// joined directly and keep the veths' default offloads (TSO, GSO and TX
// checksum offload on, as on the hosts that made the real captures), so
// the captures hold merged segments and unfilled checksums. With an
// impairment, frames pass through a forwarder that reads and writes single
// frames: the endpoints' TSO/GSO/GRO are off so every frame is one
// wire-sized segment.
func newTopo(t *testing.T, imp *impairment) *topo {
	t.Helper()
	cns, sns := newNS(t), newNS(t)
	tp := &topo{}
	if imp == nil {
		tp.client, tp.server = vethPair(t, cns, "e2ec", sns, "e2es")
	} else {
		mns := newNS(t)
		var m1, m2 link
		tp.client, m1 = vethPair(t, cns, "e2ec", mns, "e2em1")
		m2, tp.server = vethPair(t, mns, "e2em2", sns, "e2es")
		for _, l := range []link{tp.client, tp.server} {
			if err := offloadsOff(l); err != nil {
				t.Fatalf("offloads: %v", err)
			}
		}
		f, err := startForwarder(m1, m2, withSeedSalt(*imp))
		if err != nil {
			t.Fatalf("forwarder: %v", err)
		}
		t.Cleanup(f.stop)
		tp.fwd = f
	}
	addAddrs(t, tp.client, e2eClient4, e2eClient6)
	addAddrs(t, tp.server, e2eServer4, e2eServer6)
	return tp
}

// sniffer captures every frame of one interface into a pcap file
// (Ethernet link type, nanosecond times) through an AF_PACKET TPACKET_V3
// ring: a plain packet socket's default receive buffer overflows during a
// 1 MB transfer, and a capture with holes would not verify for reasons of
// its own.
type sniffer struct {
	path    string
	h       *afpacket.TPacket
	f       *os.File
	done    chan error
	n       int
	closing atomic.Bool
	once    sync.Once
	err     error
}

func startSniffer(l link, path string) (*sniffer, error) {
	s := &sniffer{path: path, done: make(chan error, 1)}
	err := inNS(l.ns, func() error {
		h, err := afpacket.NewTPacket(afpacket.OptInterface(l.name), afpacket.OptBlockSize(1<<20),
			afpacket.OptNumBlocks(32), afpacket.OptBlockTimeout(10*time.Millisecond),
			afpacket.OptPollTimeout(50*time.Millisecond))
		s.h = h
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", l.name, err)
	}
	s.f, err = os.Create(path)
	if err != nil {
		s.h.Close()
		return nil, err
	}
	bw := bufio.NewWriterSize(s.f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		s.h.Close()
		s.f.Close()
		return nil, err
	}
	go func() {
		for {
			data, ci, err := s.h.ZeroCopyReadPacketData()
			if errors.Is(err, afpacket.ErrTimeout) {
				if s.closing.Load() {
					s.done <- bw.Flush() // drained: nothing came for a poll timeout
					return
				}
				continue
			}
			if err != nil {
				s.done <- err
				return
			}
			if err := w.WritePacket(ci, data); err != nil {
				s.done <- err
				return
			}
			s.n++
		}
	}()
	return s, nil
}

// stop drains the ring, closes the capture and returns the number of
// frames written; frames the kernel dropped are an error.
func (s *sniffer) stop() (int, error) {
	s.once.Do(func() {
		s.closing.Store(true)
		select {
		case s.err = <-s.done:
		case <-time.After(10 * time.Second):
			s.err = errors.New("capture reader did not stop")
		}
		if _, st, err := s.h.SocketStats(); err != nil {
			s.err = errors.Join(s.err, err)
		} else if st.Drops() > 0 {
			s.err = errors.Join(s.err, fmt.Errorf("%s: the capture dropped %d frames", s.path, st.Drops()))
		}
		s.h.Close()
		s.err = errors.Join(s.err, s.f.Close())
	})
	return s.n, s.err
}

// listenIn opens a TCP listener in ns.
func listenIn(ns netns.NsHandle, addr netip.AddrPort) (net.Listener, error) {
	var ln net.Listener
	err := inNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	return ln, err
}

// dialIn connects from ns.
func dialIn(ns netns.NsHandle, addr netip.AddrPort) (*net.TCPConn, error) {
	return dialFromIn(ns, netip.AddrPort{}, addr)
}

// dialFromIn connects from ns, from the address and port of from when it
// is valid and its port not 0.
func dialFromIn(ns netns.NsHandle, from, addr netip.AddrPort) (*net.TCPConn, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var err error
		d := net.Dialer{Timeout: 5 * time.Second}
		if from.IsValid() && from.Port() != 0 {
			d.LocalAddr = net.TCPAddrFromAddrPort(from)
		}
		c, err = d.Dial("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// keepDir is where failing cases leave their captures: $PCAP2PKT_E2E_KEEP
// if set (to reproduce a failure outside the test), else the test's
// temporary folder.
func keepDir(t *testing.T) string {
	if d := os.Getenv("PCAP2PKT_E2E_KEEP"); d != "" {
		d = filepath.Join(d, filepath.Base(t.Name()))
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}
