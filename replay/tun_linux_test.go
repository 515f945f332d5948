package replay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// netConfigs are the reference's three families, with the addresses its
// run_all.py uses.
var netConfigs = []NetConfig{
	{IPVersion: "ipv4", LocalIP: mustAddr("192.168.0.1"), RemoteIP: mustAddr("192.0.2.1"),
		GatewayIP: mustAddr("192.168.0.1"), PrefixLen: 16},
	{IPVersion: "ipv4-mapped-ipv6", LocalIP: mustAddr("192.168.0.1"), RemoteIP: mustAddr("192.0.2.1"),
		GatewayIP: mustAddr("192.168.0.1"), PrefixLen: 16},
	{IPVersion: "ipv6", LocalIP: mustAddr("fd3d:a0b:17d6::1"), RemoteIP: mustAddr("fd3d:fa7b:d17d::1"),
		GatewayIP: mustAddr("fd3d:a0b:17d6:8888::1"), MTU: 1520},
}

// gsoConfigs inject every TCP packet as GSO, as the reference's --mss does.
var gsoConfigs = []NetConfig{
	{IPVersion: "ipv4", LocalIP: mustAddr("192.168.0.1"), RemoteIP: mustAddr("192.0.2.1"),
		GatewayIP: mustAddr("192.168.0.1"), MSS: 1000},
	{IPVersion: "ipv6", LocalIP: mustAddr("fd3d:a0b:17d6::1"), RemoteIP: mustAddr("fd3d:fa7b:d17d::1"),
		GatewayIP: mustAddr("fd3d:a0b:17d6:8888::1"), MSS: 1000},
}

const (
	testLocalPort  = 8080
	testRemotePort = 40000
)

// TestTUNHandshake injects a SYN to a listening socket and expects the
// SYN-ACK on the device with a kernel timestamp taken between the injection
// and its reading; then it completes the handshake and checks that a 10000
// byte write leaves in TSO packets, as the reference's offloads make it.
func TestTUNHandshake(t *testing.T) {
	for _, cfg := range append(netConfigs, gsoConfigs...) {
		name := cfg.IPVersion
		if cfg.MSS > 0 {
			name += "-gso"
		}
		t.Run(name, func(t *testing.T) {
			if !inSandbox(t) {
				return
			}
			dev, err := SetupNetwork(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			lfd := listenTCP(t, cfg)
			defer unix.Close(lfd)

			const isn = 1000
			before := time.Now()
			if err := dev.WritePacket(buildTCP(t, cfg, layers.TCP{SYN: true, Seq: isn, Window: 65535,
				Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}, nil)); err != nil {
				t.Fatal(err)
			}
			synack, at := readTCP(t, dev, cfg)
			got := time.Now()
			if !synack.SYN || !synack.ACK || synack.Ack != isn+1 {
				t.Fatalf("got flags SYN=%v ACK=%v ack=%d, want a SYN-ACK acking %d", synack.SYN, synack.ACK, synack.Ack, isn+1)
			}
			if at.Before(before) || at.After(got) {
				t.Errorf("kernel timestamp %v outside [%v, %v]", at, before, got)
			}
			t.Logf("SYN-ACK: kernel timestamp %v after injection, read %v after the timestamp", at.Sub(before), got.Sub(at))

			if err := dev.WritePacket(buildTCP(t, cfg, layers.TCP{ACK: true, Seq: isn + 1, Ack: synack.Seq + 1, Window: 65535}, nil)); err != nil {
				t.Fatal(err)
			}
			afd, _, err := unix.Accept(lfd)
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			defer unix.Close(afd)
			data := make([]byte, 10000)
			if n, err := unix.Write(afd, data); err != nil || n != len(data) {
				t.Fatalf("write = %d, %v", n, err)
			}
			// The first packet is a TSO super-packet bigger than the MTU
			// (its size depends on the kernel's TSO sizing).
			seg, _ := readTCP(t, dev, cfg)
			if len(seg.Payload) <= 1500 {
				t.Errorf("first data packet carries %d bytes, want a TSO packet above the MTU", len(seg.Payload))
			}

			// An inbound packet of three segments (one GSO packet when
			// MSS is set) reaches the socket whole.
			in := make([]byte, 3000)
			for i := range in {
				in[i] = byte(i)
			}
			if err := dev.WritePacket(buildTCP(t, cfg, layers.TCP{ACK: true, PSH: true, Seq: isn + 1, Ack: synack.Seq + 1, Window: 65535}, in)); err != nil {
				t.Fatal(err)
			}
			got3000 := readFull(t, afd, len(in))
			if !bytes.Equal(got3000, in) {
				t.Errorf("the socket received %d bytes that differ from the %d injected", len(got3000), len(in))
			}
		})
	}
}

func listenTCP(t *testing.T, cfg NetConfig) int {
	t.Helper()
	var sa unix.Sockaddr
	family := unix.AF_INET6
	switch cfg.IPVersion {
	case "ipv4":
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: testLocalPort, Addr: cfg.LocalIP.As4()}
	case "ipv4-mapped-ipv6":
		sa = &unix.SockaddrInet6{Port: testLocalPort, Addr: netip.AddrFrom16(cfg.LocalIP.As16()).As16()}
	default:
		sa = &unix.SockaddrInet6{Port: testLocalPort, Addr: cfg.LocalIP.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatalf("bind %v: %v", cfg.LocalIP, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	return fd
}

// buildTCP serialises an IP+TCP packet from the remote to the local side
// (ports default to the test's).
func buildTCP(t testing.TB, cfg NetConfig, tcp layers.TCP, payload []byte) []byte {
	t.Helper()
	if tcp.SrcPort == 0 {
		tcp.SrcPort = testRemotePort
	}
	if tcp.DstPort == 0 {
		tcp.DstPort = testLocalPort
	}
	var ip interface {
		gopacket.SerializableLayer
		gopacket.NetworkLayer
	}
	if cfg.LocalIP.Is4() {
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP(cfg.RemoteIP.AsSlice()), DstIP: net.IP(cfg.LocalIP.AsSlice())}
	} else {
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.IP(cfg.RemoteIP.AsSlice()), DstIP: net.IP(cfg.LocalIP.AsSlice())}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, &tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readFull reads n bytes from a socket, failing after a second.
func readFull(t testing.TB, fd, n int) []byte {
	t.Helper()
	tv := unix.NsecToTimeval(time.Second.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	for got := 0; got < n; {
		m, err := unix.Read(fd, buf[got:])
		if err != nil || m == 0 {
			t.Fatalf("read after %d of %d bytes: %d, %v", got, n, m, err)
		}
		got += m
	}
	return buf
}

// readTCP reads packets until a TCP one from the local test port arrives.
func readTCP(t testing.TB, dev Device, cfg NetConfig) (*layers.TCP, time.Time) {
	t.Helper()
	return readTCPFrom(t, dev, cfg, testLocalPort)
}

// readTCPFrom reads packets until a TCP one from local port port arrives.
func readTCPFrom(t testing.TB, dev Device, cfg NetConfig, port uint16) (*layers.TCP, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	first := layers.LayerTypeIPv6
	if cfg.LocalIP.Is4() {
		first = layers.LayerTypeIPv4
	}
	for {
		pkt, at, err := dev.ReadPacket(ctx)
		if err != nil {
			t.Fatalf("ReadPacket: %v", err)
		}
		p := gopacket.NewPacket(pkt, first, gopacket.Default)
		if tcp, ok := p.TransportLayer().(*layers.TCP); ok && tcp.SrcPort == layers.TCPPort(port) {
			return tcp, at
		}
		t.Logf("ignoring a packet the kernel sent: %v", p)
	}
}

// TestTUNReadPacketEnds checks that ReadPacket returns at ctx's deadline, on
// cancellation and after Close. A quiet device still carries what the kernel
// sends by itself: IPv6 router solicitations and MLD reports from the TUN's
// link-local address, which the engine must skip as the reference does (it
// ignores packets of no socket under test).
func TestTUNReadPacketEnds(t *testing.T) {
	for _, cfg := range netConfigs {
		t.Run(cfg.IPVersion, func(t *testing.T) {
			if !inSandbox(t) {
				return
			}
			dev, err := SetupNetwork(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			for {
				pkt, _, err := dev.ReadPacket(ctx)
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("ReadPacket on a quiet device = %v; want DeadlineExceeded", err)
					}
					break
				}
				p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
				if p.Layer(layers.LayerTypeICMPv6) == nil && p.Layer(layers.LayerTypeIPv6HopByHop) == nil {
					t.Errorf("unexpected packet from a quiet device: %v", p)
				}
			}

			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			if _, _, err := dev.ReadPacket(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("ReadPacket cancelled = %v, want Canceled", err)
			}

			time.AfterFunc(20*time.Millisecond, func() { dev.Close() })
			if _, _, err := dev.ReadPacket(context.Background()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadPacket during Close = %v, want errDeviceClosed", err)
			}
			if _, _, err := dev.ReadPacket(context.Background()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadPacket after Close = %v, want errDeviceClosed", err)
			}
			if err := dev.WritePacket(buildTCP(t, cfg, layers.TCP{SYN: true}, nil)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("WritePacket after Close = %v, want errDeviceClosed", err)
			}
		})
	}
}

func TestNetConfigCheck(t *testing.T) {
	v4 := netConfigs[0]
	v6 := netConfigs[2]
	with := func(c NetConfig, f func(*NetConfig)) NetConfig { f(&c); return c }
	tests := []struct {
		name    string
		cfg     NetConfig
		wantErr string
		check   func(NetConfig) bool
	}{
		{"v4 defaults", with(v4, func(c *NetConfig) { c.PrefixLen = 0 }), "",
			func(c NetConfig) bool {
				return c.DeviceName == "tun0" && c.MTU == 1500 && c.PrefixLen == 16 && c.RemotePrefix.String() == "192.0.2.1/32"
			}},
		{"v6 defaults", v6, "",
			func(c NetConfig) bool { return c.PrefixLen == 48 && c.MTU == 1520 && c.RemotePrefix.Bits() == 128 }},
		{"remote prefix kept", with(v4, func(c *NetConfig) { c.RemotePrefix = netip.MustParsePrefix("192.0.2.0/24") }), "",
			func(c NetConfig) bool { return c.RemotePrefix.Bits() == 24 }},
		{"unknown version", with(v4, func(c *NetConfig) { c.IPVersion = "ipv5" }), `unknown IP version "ipv5"`, nil},
		{"v6 address on v4", with(v4, func(c *NetConfig) { c.LocalIP = v6.LocalIP }), "local address fd3d:a0b:17d6::1 is not an IPv4 address", nil},
		{"mapped address", with(v6, func(c *NetConfig) { c.RemoteIP = mustAddr("::ffff:192.0.2.1") }), "remote address ::ffff:192.0.2.1 is not an IPv6 address", nil},
		{"missing gateway", with(v4, func(c *NetConfig) { c.GatewayIP = netip.Addr{} }), "gateway address invalid IP is not an IPv4 address", nil},
		{"remote is local", with(v4, func(c *NetConfig) { c.RemoteIP = c.LocalIP }), "is the local address", nil},
		{"prefix too long", with(v4, func(c *NetConfig) { c.PrefixLen = 33 }), "prefix length 33 out of range", nil},
		{"mtu too small", with(v4, func(c *NetConfig) { c.MTU = 10 }), "MTU 10 out of range", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.check()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("check() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Errorf("check() = %+v", got)
			}
		})
	}
}
