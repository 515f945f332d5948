package replay

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// wireAddrs are the addresses on the wire for upstream's arguments of a
// family (conformanceArgs): local is the kernel under test.
func wireAddrs(family string) (local, remote netip.Addr) {
	if family == "ipv6" {
		return netip.MustParseAddr("fd3d:a0b:17d6::1"), netip.MustParseAddr("fd3d:fa7b:d17d::1")
	}
	return netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("192.0.2.1")
}

// familyKernelTCP builds a TCP packet as the kernel under test would send it
// for the family (local:8080 to remote:fakeEphemeralPort), with a flow label
// on IPv6.
func familyKernelTCP(family string, flags tcpwire.Flags, seq, ack uint32, flowLabel uint32) []byte {
	local, remote := wireAddrs(family)
	v6 := local.Is6()
	hl := ipHeaderLen(v6)
	h := tcpwire.TCPHeader{SrcPort: 8080, DstPort: fakeEphemeralPort, Seq: tcpwire.Seq(seq), Ack: tcpwire.Seq(ack), Flags: flags, Window: 65535}
	b := tcpwire.AppendTCP(make([]byte, hl), &h)
	ipHeader(b, v6, len(b), 0, flowLabel, 64, tcpwire.ProtoTCP, local, remote)
	fillChecksums(b)
	return b
}

// unsolicitedIPv6 are packets a fresh TUN sends by itself in every family
// (IPv6 is on by default): a router solicitation and an MLDv2 report behind
// a hop-by-hop header with the router alert option.
func unsolicitedIPv6() [][]byte {
	ll := netip.MustParseAddr("fe80::1c2d:3eff:fe4f:5a6b")
	rs := make([]byte, 40+8)
	ipHeader(rs, true, len(rs), 0, 0, 255, tcpwire.ProtoICMPv6, ll, netip.MustParseAddr("ff02::2"))
	rs[40] = 133
	binary.BigEndian.PutUint16(rs[42:], tcpwire.Checksum(rs[40:], tcpwire.PseudoHeaderSum(ll, netip.MustParseAddr("ff02::2"), tcpwire.ProtoICMPv6, 8)))

	const hbh = 0
	mld := make([]byte, 40+8+8)
	ipHeader(mld, true, len(mld), 0, 0, 1, hbh, ll, netip.MustParseAddr("ff02::16"))
	copy(mld[40:], []byte{tcpwire.ProtoICMPv6, 0, 5, 2, 0, 0, 1, 0}) // router alert (MLD), PadN
	mld[48] = 143
	return [][]byte{rs, mld}
}

func familyOpts(family string) []string { return conformanceArgs[family] }

func TestFamilyInboundSYN(t *testing.T) {
	tests := []struct {
		family, ipinfo string
		flowLabel      uint32
		tos            uint8
	}{
		{"ipv4", "", 0, 0},
		{"ipv4-mapped-ipv6", "", 0, 0},
		{"ipv6", "", 0, 0},
		{"ipv6", "(flowlabel 0x12345)", 0x12345, 0},
		{"ipv6", "(tos 0x2e, flowlabel 0xabc)", 0xabc, 0x2e},
	}
	for _, tc := range tests {
		t.Run(tc.family+tc.ipinfo, func(t *testing.T) {
			dev, err := fakeRun(t, listenPrefix+"+0 < "+tc.ipinfo+" S 0:0(0) win 4000 <mss 1000>\n", nil, familyOpts(tc.family)...)
			if err != nil {
				t.Fatal(err)
			}
			got := <-dev.Written()
			p, err := decodePacket(got)
			if err != nil {
				t.Fatal(err)
			}
			local, remote := wireAddrs(tc.family)
			if p.IP.Src != remote || p.IP.Dst != local {
				t.Errorf("addresses %v > %v, want %v > %v", p.IP.Src, p.IP.Dst, remote, local)
			}
			if p.v6() != local.Is6() {
				t.Errorf("IPv6 %v on the wire of %s", p.v6(), tc.family)
			}
			if p.IP.TTL != 255 || p.IP.FlowLabel != tc.flowLabel || p.IP.TOS != tc.tos {
				t.Errorf("hop limit %d flow label %#x class %#x, want 255 %#x %#x", p.IP.TTL, p.IP.FlowLabel, p.IP.TOS, tc.flowLabel, tc.tos)
			}
			hl := ipHeaderLen(p.v6())
			if p.v6() && int(binary.BigEndian.Uint16(got[4:])) != len(got)-40 {
				t.Errorf("payload length %d for %d bytes", binary.BigEndian.Uint16(got[4:]), len(got))
			}
			if sum := tcpwire.Checksum(got[hl:], tcpwire.PseudoHeaderSum(p.IP.Src, p.IP.Dst, tcpwire.ProtoTCP, len(got)-hl)); sum != 0 {
				t.Errorf("TCP checksum does not verify (%#x)", sum)
			}
		})
	}
}

// The kernel's own IPv6 chatter on the TUN is not an unexpected outbound
// packet: the reference skips whatever does not belong to a socket of the
// script.
func TestFamilyIgnoresUnsolicitedIPv6(t *testing.T) {
	for _, family := range []string{"ipv4", "ipv4-mapped-ipv6", "ipv6"} {
		t.Run(family, func(t *testing.T) {
			var kernel []kernelPacket
			for _, p := range unsolicitedIPv6() {
				kernel = append(kernel, kernelPacket{0, p})
			}
			kernel = append(kernel, kernelPacket{0, familyKernelTCP(family, tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 0)})
			_, err := fakeRun(t, handshakeScript("> S. 0:0(0) ack 1 <...>"), kernel, familyOpts(family)...)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Flow labels follow the reference: the first labelled script packet binds
// its label to the live one, the same script label must keep the live
// label, and a different script label must see a different live label.
func TestFamilyFlowLabel(t *testing.T) {
	tests := []struct {
		name        string
		first, next uint32 // live labels of the SYN-ACK and its retransmission
		nextScript  string
		want        string // error substring; "" for success
	}{
		{"consistent", 0x11111, 0x11111, "0x1", ""},
		{"changed as expected", 0x11111, 0x22222, "0x2", ""},
		{"inconsistent", 0x11111, 0x22222, "0x1", "flowlabel"},
		{"not changed", 0x11111, 0x11111, "0x2", "flowlabel"},
		{"unmarked", 0x11111, 0, "0x1", "flowlabel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handshakeScript("> (flowlabel 0x1) S. 0:0(0) ack 1 <...>") +
				"+0 > (flowlabel " + tc.nextScript + ") S. 0:0(0) ack 1 <...>\n"
			kernel := []kernelPacket{
				{0, familyKernelTCP("ipv6", tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, tc.first)},
				{0, familyKernelTCP("ipv6", tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, tc.next)},
			}
			_, err := fakeRun(t, src, kernel, familyOpts("ipv6")...)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestFamilyInboundICMP(t *testing.T) {
	tests := []struct {
		family, line   string
		proto          uint8
		typ, code      uint8
		mtuAt, mtuSize int // offset and size of the MTU field; 0 if none
		mtu            uint32
	}{
		{"ipv4", "icmp unreachable frag_needed mtu 1200 [1:1(0)]", tcpwire.ProtoICMP, 3, 4, 6, 2, 1200},
		{"ipv4-mapped-ipv6", "icmp unreachable host_unreachable [1:1(0)]", tcpwire.ProtoICMP, 3, 1, 0, 0, 0},
		{"ipv6", "icmp packet_too_big mtu 1280 [1:1(0)]", tcpwire.ProtoICMPv6, 2, 0, 4, 4, 1280},
		{"ipv6", "icmp unreachable port_unreachable [1:1(0)]", tcpwire.ProtoICMPv6, 1, 4, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.family+" "+tc.line, func(t *testing.T) {
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + "+0 < " + tc.line + "\n"
			kernel := []kernelPacket{{0, familyKernelTCP(tc.family, tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 0)}}
			dev, err := fakeRun(t, src, kernel, familyOpts(tc.family)...)
			if err != nil {
				t.Fatal(err)
			}
			<-dev.Written() // the SYN
			got := <-dev.Written()
			p, err := decodePacket(got)
			if err != nil {
				t.Fatal(err)
			}
			local, remote := wireAddrs(tc.family)
			if p.IP.Proto != tc.proto || p.IP.Src != remote || p.IP.Dst != local {
				t.Fatalf("protocol %d %v > %v, want %d %v > %v", p.IP.Proto, p.IP.Src, p.IP.Dst, tc.proto, remote, local)
			}
			hl := ipHeaderLen(p.v6())
			icmp := got[hl:]
			if icmp[0] != tc.typ || icmp[1] != tc.code {
				t.Errorf("type %d code %d, want %d %d", icmp[0], icmp[1], tc.typ, tc.code)
			}
			switch tc.mtuSize {
			case 2:
				if m := binary.BigEndian.Uint16(icmp[tc.mtuAt:]); uint32(m) != tc.mtu {
					t.Errorf("MTU %d, want %d", m, tc.mtu)
				}
			case 4:
				if m := binary.BigEndian.Uint32(icmp[tc.mtuAt:]); m != tc.mtu {
					t.Errorf("MTU %d, want %d", m, tc.mtu)
				}
			}
			initial := uint32(0)
			if p.v6() {
				initial = tcpwire.PseudoHeaderSum(p.IP.Src, p.IP.Dst, tcpwire.ProtoICMPv6, len(icmp))
			}
			if sum := tcpwire.Checksum(icmp, initial); sum != 0 {
				t.Errorf("ICMP checksum does not verify (%#x)", sum)
			}
			// The quoted packet is the start of the kernel's own: local
			// to remote, with the ports of the connection.
			q := icmp[8:]
			qsrc, qdst, qports := q[12:16], q[16:20], q[20:]
			if p.v6() {
				qsrc, qdst, qports = q[8:24], q[24:40], q[40:]
			}
			if a, _ := netip.AddrFromSlice(qsrc); a.Unmap() != local {
				t.Errorf("quoted source %v, want %v", a, local)
			}
			if a, _ := netip.AddrFromSlice(qdst); a.Unmap() != remote {
				t.Errorf("quoted destination %v, want %v", a, remote)
			}
			if sp, dp := binary.BigEndian.Uint16(qports), binary.BigEndian.Uint16(qports[2:]); sp != 8080 || dp != fakeEphemeralPort {
				t.Errorf("quoted ports %d > %d", sp, dp)
			}
		})
	}
}

// An ICMP type or code the wire family lacks stops the script before it
// runs, as the reference's semantic error does.
func TestFamilyICMPNames(t *testing.T) {
	tests := []struct {
		family, line string
		want         string // error substring; "" for success
	}{
		{"ipv4", "icmp unreachable frag_needed mtu 1200 [1:1(0)]", ""},
		{"ipv6", "icmp unreachable frag_needed mtu 1200 [1:1(0)]", "semantic error: bad ICMP code frag_needed"},
		{"ipv6", "icmp unreachable CODE [1:1(0)]", "semantic error: bad ICMP code CODE"},
		{"ipv4-mapped-ipv6", "icmp unreachable CODE [1:1(0)]", ""},
		{"ipv4", "icmp packet_too_big mtu 1280 [1:1(0)]", "semantic error: bad ICMP type packet_too_big"},
		{"ipv6", "icmp packet_too_big mtu 1280 [1:1(0)]", ""},
		{"ipv6", "icmp unreachable code_7 [1:1(0)]", ""},
	}
	for _, tc := range tests {
		t.Run(tc.family+" "+tc.line, func(t *testing.T) {
			cfg := NewConfig()
			for _, o := range familyOpts(tc.family) {
				n, v, _ := strings.Cut(o, "=")
				if err := cfg.Set(n, v); err != nil {
					t.Fatal(err)
				}
			}
			src := "`echo must not run`\n" + listenPrefix + "+0 < " + tc.line + "\n"
			s, err := parser.ParseFile("test.pkt", []byte(src), &parser.Config{Defines: cfg.Defines})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = cfg.Resolve(s)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *parser.Error
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || se.Pos.Line != 5 {
				t.Fatalf("got %v, want test.pkt:5: ...%s", err, tc.want)
			}
		})
	}
}

// ipv4-mapped-ipv6 sockets are AF_INET6 with ::ffff:a.b.c.d addresses
// while the wire is IPv4; ipv6 ones carry the address as is.
func TestFamilySocketAddr(t *testing.T) {
	tests := []struct {
		family string
		ip     string
		want   string
		size   int
	}{
		{"ipv4", "192.0.2.1", "192.0.2.1", 16},
		{"ipv4-mapped-ipv6", "192.0.2.1", "::ffff:192.0.2.1", 28},
		{"ipv6", "fd3d:fa7b:d17d::1", "fd3d:fa7b:d17d::1", 28},
	}
	for _, tc := range tests {
		cfg := NewConfig()
		for _, o := range familyOpts(tc.family) {
			n, v, _ := strings.Cut(o, "=")
			if err := cfg.Set(n, v); err != nil {
				t.Fatal(err)
			}
		}
		c := &callContext{Config: cfg}
		got := c.socketAddr(netip.MustParseAddr(tc.ip))
		if got.String() != tc.want {
			t.Errorf("%s: socket address %v, want %s", tc.family, got, tc.want)
		}
		if sa := rawSockaddr(got, 8080); len(sa) != tc.size || binary.BigEndian.Uint16(sa[2:]) != 8080 {
			t.Errorf("%s: sockaddr % x", tc.family, sa)
		}
	}
}
