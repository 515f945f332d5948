package replay

// This file reads and writes the bytes of IPv4/IPv6 packets carrying TCP,
// UDP or ICMP: the decoded form the matcher compares field by field, and
// the checksums.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// IP protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// tcpHeader is a decoded TCP header.
type tcpHeader struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	doff             int // header length in 32-bit words
	res              int // the three reserved bits
	flags            tcpwire.Flags
	win              uint16
	checksum         uint16
	urg              uint16
	options          []byte
}

// udpHeader is a decoded UDP header.
type udpHeader struct {
	srcPort, dstPort uint16
	length           uint16
}

// icmpHeader is a decoded ICMP or ICMPv6 header and the start of the packet
// it quotes.
type icmpHeader struct {
	typ, code uint8
	rest      uint32 // the 4 bytes after the checksum (mtu, id)
	body      []byte // what follows the 8-byte header
}

// wirePacket is a decoded packet.
type wirePacket struct {
	raw       []byte
	v6        bool
	ipHdrLen  int
	ipVersion int
	tos       uint8 // IPv4 TOS or IPv6 traffic class
	ttl       uint8
	flowLabel uint32
	proto     uint8
	src, dst  netip.Addr
	ipSumOK   bool

	tcp     *tcpHeader
	udp     *udpHeader
	icmp    *icmpHeader
	payload []byte
}

var errShort = errors.New("truncated packet")

// decodePacket decodes an IP packet. Packets the engine does not handle
// (other protocols, IP options beyond the header, fragments) are errors.
func decodePacket(b []byte) (*wirePacket, error) {
	if len(b) < 1 {
		return nil, errShort
	}
	p := &wirePacket{raw: b, ipVersion: int(b[0] >> 4)}
	var l4 []byte
	switch p.ipVersion {
	case 4:
		if len(b) < 20 {
			return nil, errShort
		}
		p.ipHdrLen = int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if p.ipHdrLen < 20 || total < p.ipHdrLen || total > len(b) {
			return nil, fmt.Errorf("bad IPv4 lengths: header %d, total %d, have %d", p.ipHdrLen, total, len(b))
		}
		p.tos, p.ttl, p.proto = b[1], b[8], b[9]
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.ipSumOK = tcpwire.Checksum(b[:p.ipHdrLen], 0) == 0
		l4 = b[p.ipHdrLen:total]
	case 6:
		if len(b) < 40 {
			return nil, errShort
		}
		p.v6 = true
		p.ipHdrLen = 40
		vtf := binary.BigEndian.Uint32(b)
		p.tos = uint8(vtf >> 20)
		p.flowLabel = vtf & 0xfffff
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if 40+plen > len(b) {
			return nil, fmt.Errorf("bad IPv6 payload length %d, have %d", plen, len(b)-40)
		}
		p.proto, p.ttl = b[6], b[7]
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		p.ipSumOK = true
		l4 = b[40 : 40+plen]
	default:
		return nil, fmt.Errorf("not an IP packet (version %d)", p.ipVersion)
	}
	switch p.proto {
	case protoTCP:
		if len(l4) < 20 {
			return nil, errShort
		}
		h := &tcpHeader{
			srcPort: binary.BigEndian.Uint16(l4),
			dstPort: binary.BigEndian.Uint16(l4[2:]),
			seq:     binary.BigEndian.Uint32(l4[4:]),
			ack:     binary.BigEndian.Uint32(l4[8:]),
			doff:    int(l4[12] >> 4),
			res:     int(l4[12]>>1) & 7,
			flags:   tcpwire.Flags(l4[12]&1)<<8 | tcpwire.Flags(l4[13]),
			win:     binary.BigEndian.Uint16(l4[14:]),
			urg:     binary.BigEndian.Uint16(l4[18:]),
		}
		h.checksum = binary.BigEndian.Uint16(l4[16:])
		if h.doff < 5 || h.doff*4 > len(l4) {
			return nil, fmt.Errorf("bad TCP data offset %d", h.doff)
		}
		h.options = l4[20 : h.doff*4]
		p.tcp = h
		p.payload = l4[h.doff*4:]
	case protoUDP:
		if len(l4) < 8 {
			return nil, errShort
		}
		p.udp = &udpHeader{
			srcPort: binary.BigEndian.Uint16(l4),
			dstPort: binary.BigEndian.Uint16(l4[2:]),
			length:  binary.BigEndian.Uint16(l4[4:]),
		}
		p.payload = l4[8:]
	case protoICMP, protoICMPv6:
		if len(l4) < 8 {
			return nil, errShort
		}
		p.icmp = &icmpHeader{typ: l4[0], code: l4[1], rest: binary.BigEndian.Uint32(l4[4:]), body: l4[8:]}
		p.payload = l4[8:]
	default:
		return nil, fmt.Errorf("unsupported IP protocol %d", p.proto)
	}
	return p, nil
}

// srcPort and dstPort are the transport ports (0 for ICMP).
func (p *wirePacket) ports() (src, dst uint16) {
	switch {
	case p.tcp != nil:
		return p.tcp.srcPort, p.tcp.dstPort
	case p.udp != nil:
		return p.udp.srcPort, p.udp.dstPort
	}
	return 0, 0
}

// fillChecksums computes the IP header checksum and the transport checksum
// of a packet built by the engine.
func fillChecksums(b []byte) {
	v6 := b[0]>>4 == 6
	var hdr int
	var src, dst netip.Addr
	var proto uint8
	if v6 {
		hdr = 40
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		proto = b[6]
	} else {
		hdr = int(b[0]&0x0f) * 4
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:], tcpwire.Checksum(b[:hdr], 0))
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		proto = b[9]
	}
	l4 := b[hdr:]
	switch proto {
	case protoTCP:
		l4[16], l4[17] = 0, 0
		binary.BigEndian.PutUint16(l4[16:], tcpwire.Checksum(l4, tcpwire.PseudoHeaderSum(src, dst, proto, len(l4))))
	case protoUDP:
		l4[6], l4[7] = 0, 0
		binary.BigEndian.PutUint16(l4[6:], tcpwire.Checksum(l4, tcpwire.PseudoHeaderSum(src, dst, proto, len(l4))))
	case protoICMP:
		l4[2], l4[3] = 0, 0
		binary.BigEndian.PutUint16(l4[2:], tcpwire.Checksum(l4, 0))
	case protoICMPv6:
		l4[2], l4[3] = 0, 0
		binary.BigEndian.PutUint16(l4[2:], tcpwire.Checksum(l4, tcpwire.PseudoHeaderSum(src, dst, proto, len(l4))))
	}
}

// ipHeader writes an IPv4 or IPv6 header for a packet of totalLen bytes.
func ipHeader(b []byte, v6 bool, totalLen int, tos uint8, flowLabel uint32, ttl uint8, proto uint8, src, dst netip.Addr) {
	if v6 {
		binary.BigEndian.PutUint32(b, 6<<28|uint32(tos)<<20|flowLabel&0xfffff)
		binary.BigEndian.PutUint16(b[4:], uint16(totalLen-40))
		b[6], b[7] = proto, ttl
		s, d := src.As16(), dst.As16()
		copy(b[8:24], s[:])
		copy(b[24:40], d[:])
		return
	}
	b[0], b[1] = 0x45, tos
	binary.BigEndian.PutUint16(b[2:], uint16(totalLen))
	b[8], b[9] = ttl, proto
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
}

func ipHeaderLen(v6 bool) int {
	if v6 {
		return 40
	}
	return 20
}
