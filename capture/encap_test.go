package capture

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// Encapsulation builders, by hand from the RFCs' header layouts.

func etherOf(et uint16, payload []byte, tags ...uint16) []byte {
	h := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	for _, tpid := range tags {
		h = be.AppendUint16(h, tpid)
		h = be.AppendUint16(h, 7)
	}
	return append(be.AppendUint16(h, et), payload...)
}

// pppFrame is a PPP frame with HDLC address and control and a 2-byte
// protocol.
func pppFrame(ip []byte) []byte {
	proto := uint16(0x21)
	if ip[0]>>4 == 6 {
		proto = 0x57
	}
	return append(be.AppendUint16([]byte{0xFF, 0x03}, proto), ip...)
}

// pppoeSession is a PPPoE session header and a PPP frame without address
// and control, as RFC 2516 carries it.
func pppoeSession(ip []byte) []byte {
	ppp := pppFrame(ip)[2:]
	h := []byte{0x11, 0x00, 0x12, 0x34}
	return append(be.AppendUint16(h, uint16(len(ppp))), ppp...)
}

func outer4(proto uint8, payload []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 63, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	be.PutUint16(h[2:], uint16(20+len(payload)))
	return append(h, payload...)
}

func outer6(next uint8, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	be.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 63
	h[8], h[23], h[24], h[39] = 0xfd, 1, 0xfd, 2
	return append(h, payload...)
}

func udpTo(port uint16, payload []byte) []byte {
	h := be.AppendUint16(nil, 50000)
	h = be.AppendUint16(h, port)
	h = be.AppendUint16(h, uint16(8+len(payload)))
	return append(be.AppendUint16(h, 0), payload...)
}

func vxlan(frame []byte) []byte {
	return append([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, frame...)
}

// geneve carries payload of ethertype et with one 4-byte option.
func geneve(et uint16, payload []byte) []byte {
	h := []byte{0x01, 0}
	h = be.AppendUint16(h, et)
	h = append(h, 0, 0, 42, 0)
	h = append(h, 0x01, 0x02, 0x03, 0x00) // an option header with no data
	return append(h, payload...)
}

// gre is a version 0 GRE header with a key.
func gre(et uint16, payload []byte) []byte {
	h := be.AppendUint16(nil, 0x2000)
	h = be.AppendUint16(h, et)
	return append(be.AppendUint32(h, 99), payload...)
}

func mplsLabels(payload []byte, labels ...uint32) []byte {
	var h []byte
	for i, l := range labels {
		e := l<<12 | 64
		if i == len(labels)-1 {
			e |= 1 << 8
		}
		h = be.AppendUint32(h, e)
	}
	return append(h, payload...)
}

// TestEncapsulations: TCP inside the tunnels and link types that real
// captures hold is read as the inner connection's.
func TestEncapsulations(t *testing.T) {
	ip4, ip6 := synSpec(false).ip(t), synSpec(true).ip(t)
	for _, tc := range []struct {
		name string
		lt   layers.LinkType
		data []byte
		v6   bool
	}{
		{"PPPoE over QinQ", layers.LinkTypeEthernet, etherOf(etherPPPoE, pppoeSession(ip4), etherQinQ, etherVLAN), false},
		{"PPPoE IPv6", layers.LinkTypeEthernet, etherOf(etherPPPoE, pppoeSession(ip6)), true},
		{"PPP", layers.LinkTypePPP, pppFrame(ip4), false},
		{"PPP compressed protocol", layers.LinkTypePPP, append([]byte{0x57}, ip6...), true},
		{"PPP in HDLC framing", layers.LinkTypePPP_HDLC, pppFrame(ip6), true},
		{"PPPoE link type", layers.LinkTypePPPEthernet, pppoeSession(ip4), false},
		{"IP over InfiniBand", linkTypeIPoIB, append([]byte{0x08, 0x00, 0, 0}, ip4...), false},
		{"MPLS", layers.LinkTypeEthernet, etherOf(etherMPLS, mplsLabels(ip6, 100, 200)), true},
		{"GRE", layers.LinkTypeEthernet, etherOf(etherIPv4, outer4(47, gre(etherIPv4, ip4))), false},
		{"GRE Ethernet bridging", layers.LinkTypeRaw, outer6(47, gre(etherTEB, etherOf(etherIPv6, ip6))), true},
		{"VXLAN", layers.LinkTypeEthernet, etherOf(etherIPv4, outer4(17, udpTo(portVXLAN, vxlan(ether(ip4))))), false},
		{"Geneve", layers.LinkTypeEthernet, etherOf(etherIPv6, outer6(17, udpTo(portGeneve, geneve(etherTEB, ether(ip6))))), true},
		{"Geneve IP", layers.LinkTypeRaw, outer4(17, udpTo(portGeneve, geneve(etherIPv4, ip4))), false},
		{"IP in IP", layers.LinkTypeRaw, outer4(4, ip4), false},
		{"IPv6 in IP", layers.LinkTypeRaw, outer4(41, ip6), true},
		{"IP in IPv6", layers.LinkTypeRaw, outer6(4, ip4), false},
		{"SLL2 VXLAN", layers.LinkTypeLinuxSLL2, sll2(outer4(17, udpTo(portVXLAN, vxlan(ether(ip6)))), sllOutgoing), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPcap(tc.lt, le, true, 65535)
			f.add(t0, tc.data, 0)
			p, st := readOne(t, f.buf.Bytes())
			if st.Records != 1 || st.TCP != 1 {
				t.Errorf("stats %+v", st)
			}
			checkSYN(t, &p, tc.v6)
		})
	}
}

// TestNotDecoded: what is not decoded is counted and named: a link type by
// name and number, a tunnel nested too deep, UDP that is no tunnel.
func TestNotDecoded(t *testing.T) {
	ip4 := synSpec(false).ip(t)
	f := newPcap(layers.LinkType(129), le, true, 65535) // ARCNET_LINUX
	for i := 0; i < 3; i++ {
		f.add(t0, append([]byte{1, 2, 0, 0, 0xd4, 0, 0, 0}, ip4...), 0)
	}
	st := statsOf(t, f.buf.Bytes())
	if st.Unsupported != 3 || st.UnsupportedLink != 129 || st.Undecoded() != "3 packets in link type ARCNET_LINUX (129) not decoded" {
		t.Errorf("stats %+v: %q", st, st.Undecoded())
	}

	deep := ip4
	for i := 0; i <= maxEncap; i++ {
		deep = outer4(47, gre(etherIPv4, deep))
	}
	g := newPcap(layers.LinkTypeRaw, le, true, 65535)
	g.add(t0, deep, 0)
	g.add(t0, outer4(17, udpTo(53, []byte("dns"))), 0)
	g.add(t0, outer4(17, udpTo(portVXLAN, []byte{0, 0, 0, 0, 0, 0, 0, 0})), 0) // no VNI flag
	st = statsOf(t, g.buf.Bytes())
	if st.TCP != 0 || st.NonTCP != 3 || !strings.Contains(st.Undecoded(), "3 IP packets not TCP") {
		t.Errorf("stats %+v: %q", st, st.Undecoded())
	}
}

func statsOf(t *testing.T, file []byte) Stats {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file), "fixture")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	return r.Stats()
}
