package replay

// The Linux Device: a TUN device configured like the reference's local mode
// (netdev.c): IFF_VNET_HDR with checksum and TSO offloads, so the kernel
// hands whole TSO super-packets to the device, and inbound packets can be
// injected as GSO packets (--mss). Outbound packets are read, like tcpdump
// does, from an AF_PACKET socket bound to the device, for the kernel's own
// transmit timestamp; the TUN queue itself is drained one packet per packet
// read, as the reference does, so that transmit completion happens when the
// script consumes a packet (TCP defers retransmits of packets still queued).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetConfig is the network of one run, as the reference's flags describe it.
type NetConfig struct {
	IPVersion  string // ipv4, ipv6 or ipv4-mapped-ipv6 (which puts IPv4 on the wire)
	LocalIP    netip.Addr
	RemoteIP   netip.Addr
	GatewayIP  netip.Addr
	PrefixLen  int    // of LocalIP; 0 means 16 for IPv4 and 48 for IPv6, the reference's defaults
	MTU        int    // 0 means 1500
	DeviceName string // "" means tun0

	// RemotePrefix, when valid, is routed instead of RemoteIP's host route
	// (the reference accepts --remote_ip=addr/len).
	RemotePrefix netip.Prefix
	// MSS, when positive, makes every injected TCP packet a GSO packet with
	// this segment size, as the reference's --mss does.
	MSS int
}

// Defaults of the reference (config.c, netdev.c) for fields left zero.
const (
	defaultDeviceName  = "tun0"
	defaultMTU         = 1500
	defaultPrefixLenV4 = 16
	defaultPrefixLenV6 = 48
)

// Packet socket and TUN constants (linux/filter.h, linux/virtio_net.h).
const (
	sniffBufferBytes     = 2 << 20    // the reference's packet socket buffer
	maxPacketBytes       = 1 << 17    // above the 64 KiB GSO limit
	virtioNetHdrLen      = 10         // struct virtio_net_hdr
	skfAdPktType         = 0xfffff004 // SKF_AD_OFF + SKF_AD_PKTTYPE, linux/filter.h
	bpfLdWAbs            = 0x20
	bpfJeqK              = 0x15
	bpfRetK              = 0x06
	bpfAcceptWholePacket = 0x40000
)

// wireIs4 reports whether the packets on the wire are IPv4.
func (c NetConfig) wireIs4() (bool, error) {
	switch c.IPVersion {
	case "ipv4", "ipv4-mapped-ipv6":
		return true, nil
	case "ipv6":
		return false, nil
	}
	return false, fmt.Errorf("replay: unknown IP version %q (want ipv4, ipv6 or ipv4-mapped-ipv6)", c.IPVersion)
}

// check fills in defaults and rejects addresses of the wrong family.
func (c NetConfig) check() (NetConfig, error) {
	is4, err := c.wireIs4()
	if err != nil {
		return c, err
	}
	if c.DeviceName == "" {
		c.DeviceName = defaultDeviceName
	}
	if c.MTU == 0 {
		c.MTU = defaultMTU
	}
	if c.PrefixLen == 0 {
		c.PrefixLen = defaultPrefixLenV6
		if is4 {
			c.PrefixLen = defaultPrefixLenV4
		}
	}
	if !c.RemotePrefix.IsValid() {
		c.RemotePrefix = netip.PrefixFrom(c.RemoteIP, c.RemoteIP.BitLen())
	}
	for _, a := range []struct {
		name string
		ip   netip.Addr
	}{{"local", c.LocalIP}, {"remote", c.RemoteIP}, {"gateway", c.GatewayIP}, {"remote prefix", c.RemotePrefix.Addr()}} {
		if !a.ip.IsValid() || a.ip.Is4() != is4 || a.ip.Is4In6() {
			return c, fmt.Errorf("replay: %s address %v is not an %s address", a.name, a.ip, map[bool]string{true: "IPv4", false: "IPv6"}[is4])
		}
	}
	if c.RemoteIP == c.LocalIP {
		return c, fmt.Errorf("replay: remote address %v is the local address", c.RemoteIP)
	}
	if c.PrefixLen < 0 || c.PrefixLen > c.LocalIP.BitLen() {
		return c, fmt.Errorf("replay: prefix length %d out of range for %v", c.PrefixLen, c.LocalIP)
	}
	if c.MTU < 68 || c.MTU > 65535 {
		return c, fmt.Errorf("replay: MTU %d out of range 68..65535", c.MTU)
	}
	return c, nil
}

// tunDevice is the Linux Device.
type tunDevice struct {
	fdMu    sync.RWMutex // Close takes it to retire tunFD while no call uses it
	tunFD   int          // non-blocking; written to, and drained one packet per packet read
	ifindex int
	mss     int

	readMu sync.Mutex // one reader at a time uses sniff's buffers
	sniff  *packetSocket

	capMu   sync.Mutex
	capture *capture

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// SetupNetwork configures the sandbox's network namespace for a run: lo up,
// the TUN device with its address, MTU and the route to the remote side via
// the gateway. It refuses to run outside the sandbox, so that it can never
// touch the host's interfaces.
func SetupNetwork(cfg NetConfig) (Device, error) {
	if !InSandbox() {
		return nil, errors.New("replay: SetupNetwork refused: not inside the sandbox (network namespace)")
	}
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("replay: netlink: %w", err)
	}
	defer nl.Close()

	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: bring up lo: %w", err)
	}

	d := &tunDevice{tunFD: -1, mss: cfg.MSS}
	if err := d.setup(nl, cfg); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *tunDevice) setup(nl *netlink.Handle, cfg NetConfig) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("replay: open /dev/net/tun: %w", err)
	}
	d.tunFD = fd
	ifr, err := unix.NewIfreq(cfg.DeviceName)
	if err != nil {
		return fmt.Errorf("replay: device name %q: %w", cfg.DeviceName, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("replay: create TUN device %s: %w", cfg.DeviceName, err)
	}
	if ifr.Name() != cfg.DeviceName {
		return fmt.Errorf("replay: asked for TUN device %s, got %s", cfg.DeviceName, ifr.Name())
	}
	offload := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offload); err != nil {
		return fmt.Errorf("replay: set offloads on %s: %w", cfg.DeviceName, err)
	}
	// Deleting a TUN device waits for RCU grace periods (about 25 ms here).
	// A persistent one outlives Close and goes with the namespace, whose
	// destruction the kernel does in the background after the sandbox exits.
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("replay: make %s persistent: %w", cfg.DeviceName, err)
	}

	link, err := nl.LinkByName(cfg.DeviceName)
	if err != nil {
		return fmt.Errorf("replay: find %s: %w", cfg.DeviceName, err)
	}
	d.ifindex = link.Attrs().Index
	if link.Attrs().MTU != cfg.MTU {
		if err := nl.LinkSetMTU(link, cfg.MTU); err != nil {
			return fmt.Errorf("replay: set MTU %d on %s: %w", cfg.MTU, cfg.DeviceName, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("replay: bring up %s: %w", cfg.DeviceName, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(cfg.LocalIP, cfg.PrefixLen))}
	if cfg.LocalIP.Is6() {
		// The address must be usable at once, not "tentative" during DAD.
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := nl.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("replay: add address %v/%d to %s: %w", cfg.LocalIP, cfg.PrefixLen, cfg.DeviceName, err)
	}
	if err := waitLocal(nl, cfg.LocalIP); err != nil {
		return err
	}
	route := &netlink.Route{
		LinkIndex: d.ifindex,
		Dst:       ipNet(cfg.RemotePrefix.Masked()),
		Gw:        net.IP(cfg.GatewayIP.AsSlice()),
	}
	if err := nl.RouteReplace(route); err != nil {
		return fmt.Errorf("replay: route %v via %v dev %s: %w", cfg.RemotePrefix.Masked(), cfg.GatewayIP, cfg.DeviceName, err)
	}
	d.sniff, err = openPacketSocket(d.ifindex, true)
	return err
}

// packetSocket is an AF_PACKET socket bound to the TUN device that reads
// packets with the kernel's timestamp of their passage, as tcpdump does.
type packetSocket struct {
	f       *os.File
	conn    syscall.RawConn
	ifindex int
	buf     []byte
	oob     []byte
}

// localAddrTimeout bounds waitLocal; the kernel takes microseconds.
const localAddrTimeout = 2 * time.Second

// waitLocal waits until the kernel delivers packets for ip locally. An IPv6
// address becomes local only when a work item of the kernel has finished
// its (skipped) duplicate address detection, shortly after it is added; a
// packet injected before that is dropped (Ip6InAddrErrors). The reference
// never notices, as its setup runs `ip` commands for milliseconds after.
func waitLocal(nl *netlink.Handle, ip netip.Addr) error {
	deadline := time.Now().Add(localAddrTimeout)
	for {
		routes, err := nl.RouteGet(net.IP(ip.AsSlice()))
		if err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replay: address %v not usable after %v (route lookup: %v, %d routes)", ip, localAddrTimeout, err, len(routes))
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// openPacketSocket opens a packet socket on device ifindex: for what the
// kernel transmits only, or for both directions.
func openPacketSocket(ifindex int, outgoingOnly bool) (*packetSocket, error) {
	// Protocol 0 receives nothing until bind, so no packet of another
	// device can slip in before the socket is bound to ours.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("replay: packet socket: %w", err)
	}
	s := &packetSocket{f: os.NewFile(uintptr(fd), "tun-packet-socket"), ifindex: ifindex}
	if err := s.setup(fd, outgoingOnly); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *packetSocket) setup(fd int, outgoingOnly bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sniffBufferBytes); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sniffBufferBytes); err != nil {
			return fmt.Errorf("replay: packet socket buffer: %w", err)
		}
	}
	if outgoingOnly {
		// The packets we inject come back as PACKET_HOST and would cost
		// a wake-up each.
		filter := []unix.SockFilter{
			{Code: bpfLdWAbs, K: skfAdPktType},
			{Code: bpfJeqK, Jt: 0, Jf: 1, K: unix.PACKET_OUTGOING},
			{Code: bpfRetK, K: bpfAcceptWholePacket},
			{Code: bpfRetK, K: 0},
		}
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fmt.Errorf("replay: packet socket filter: %w", err)
		}
	}
	// Enabling timestamps flips a global static key, which is slow: do it
	// now rather than in the middle of a run.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("replay: packet socket timestamps: %w", err)
	}
	sll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.ifindex}
	if err := unix.Bind(fd, sll); err != nil {
		return fmt.Errorf("replay: bind packet socket to the TUN device: %w", err)
	}
	var err error
	if s.conn, err = s.f.SyscallConn(); err != nil {
		return fmt.Errorf("replay: packet socket: %w", err)
	}
	s.buf = make([]byte, maxPacketBytes)
	s.oob = make([]byte, unix.CmsgSpace(16))
	return nil
}

// recv reads one packet of the device from fd without blocking. The packet
// aliases s.buf until the next call. ok is false when none is queued.
func (s *packetSocket) recv(fd uintptr) (pkt []byte, pkttype uint8, at time.Time, ok bool, err error) {
	for {
		n, oobn, flags, from, err := unix.Recvmsg(int(fd), s.buf, s.oob, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) {
			return nil, 0, time.Time{}, false, nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, 0, time.Time{}, false, fmt.Errorf("replay: read from the TUN device: %w", err)
		}
		ll, isLL := from.(*unix.SockaddrLinklayer)
		if !isLL || ll.Ifindex != s.ifindex {
			continue
		}
		if flags&unix.MSG_TRUNC != 0 || n > len(s.buf) {
			return nil, 0, time.Time{}, false, fmt.Errorf("replay: a packet of %d bytes on the TUN device, more than %d", n, len(s.buf))
		}
		at, err := kernelTimestamp(s.oob[:oobn])
		if err != nil {
			return nil, 0, time.Time{}, false, err
		}
		return s.buf[:n], ll.Pkttype, at, true, nil
	}
}

// close hands the socket to the sandbox's parent (see handOff) and closes it.
func (s *packetSocket) close() error {
	if s.conn != nil {
		_ = s.conn.Control(func(fd uintptr) { handOff(int(fd)) })
	}
	return s.f.Close()
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// WritePacket injects pkt, behind a virtio-net header that asks for GSO
// segmentation when NetConfig.MSS is set and pkt is TCP.
func (d *tunDevice) WritePacket(pkt []byte) error {
	var hdr [virtioNetHdrLen]byte
	if d.mss > 0 && isTCP(pkt) {
		hdr[1] = unix.VIRTIO_NET_HDR_GSO_TCPV4
		if pkt[0]>>4 == 6 {
			hdr[1] = unix.VIRTIO_NET_HDR_GSO_TCPV6
		}
		// Legacy virtio headers are in the host's byte order.
		binary.NativeEndian.PutUint16(hdr[4:6], uint16(d.mss))
	}
	d.fdMu.RLock()
	defer d.fdMu.RUnlock()
	if d.tunFD < 0 || d.closed.Load() {
		return errDeviceClosed
	}
	for {
		_, err := unix.Writev(d.tunFD, [][]byte{hdr[:], pkt})
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("replay: inject packet of %d bytes: %w", len(pkt), err)
		}
		return nil
	}
}

// isTCP reports whether an IP packet carries TCP directly after its header.
func isTCP(pkt []byte) bool {
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		return pkt[9] == unix.IPPROTO_TCP
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		return pkt[6] == unix.IPPROTO_TCP
	}
	return false
}

// errStaleDeadline marks a wake-up by the deadline of an earlier call.
var errStaleDeadline = errors.New("stale deadline")

// ReadPacket returns the next packet the kernel transmitted on the device and
// the kernel's timestamp of it (CLOCK_REALTIME, like time.Now's wall clock).
func (d *tunDevice) ReadPacket(ctx context.Context) ([]byte, time.Time, error) {
	d.readMu.Lock()
	defer d.readMu.Unlock()
	if d.sniff == nil {
		return nil, time.Time{}, errDeviceClosed
	}
	for {
		pkt, at, err := d.readOnce(ctx)
		if errors.Is(err, errStaleDeadline) {
			continue
		}
		return pkt, at, err
	}
}

func (d *tunDevice) readOnce(ctx context.Context) ([]byte, time.Time, error) {
	deadline, hasDeadline := ctx.Deadline()
	if err := d.sniff.f.SetReadDeadline(deadline); err != nil {
		return nil, time.Time{}, d.readError(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = d.sniff.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	var (
		pkt  []byte
		at   time.Time
		rerr error
	)
	err := d.sniff.conn.Read(func(fd uintptr) bool {
		for {
			p, pkttype, t, ok, err := d.sniff.recv(fd)
			if err != nil || !ok {
				rerr = err
				return err != nil
			}
			if pkttype == unix.PACKET_OUTGOING {
				pkt, at = p, t
				return true
			}
		}
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, time.Time{}, ctxErr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if hasDeadline && !time.Now().Before(deadline) {
				return nil, time.Time{}, context.DeadlineExceeded
			}
			return nil, time.Time{}, errStaleDeadline
		}
		return nil, time.Time{}, d.readError(err)
	}
	if rerr != nil {
		return nil, time.Time{}, rerr
	}
	d.drainOne()
	return append([]byte(nil), pkt...), at, nil
}

// readError reports a failed read; after Close, whatever the poller says.
func (d *tunDevice) readError(err error) error {
	if d.closed.Load() {
		return errDeviceClosed
	}
	return fmt.Errorf("replay: read from the TUN device: %w", err)
}

// drainOne consumes one packet from the TUN queue, which completes its
// transmission; reading a prefix is enough to consume it.
func (d *tunDevice) drainOne() {
	var b [virtioNetHdrLen + 1]byte
	d.fdMu.RLock()
	defer d.fdMu.RUnlock()
	for d.tunFD >= 0 {
		if _, err := unix.Read(d.tunFD, b[:]); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// kernelTimestamp extracts the SO_TIMESTAMPNS control message.
func kernelTimestamp(oob []byte) (time.Time, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, fmt.Errorf("replay: packet socket control message: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec), nil
		}
	}
	return time.Time{}, errors.New("replay: the kernel gave no timestamp for a transmitted packet")
}

// Close releases the TUN device and the packet socket. The device itself
// stays until the sandbox exits; SetupNetwork can attach to it again.
func (d *tunDevice) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.closeErr = d.stopCapture()
		if d.sniff != nil {
			if err := d.sniff.close(); err != nil && d.closeErr == nil {
				d.closeErr = err
			}
		}
		d.fdMu.Lock()
		defer d.fdMu.Unlock()
		if d.tunFD >= 0 {
			if err := unix.Close(d.tunFD); err != nil && d.closeErr == nil {
				d.closeErr = err
			}
			d.tunFD = -1
		}
	})
	return d.closeErr
}
