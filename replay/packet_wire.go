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

// wirePacket is a packet the kernel sent, decoded by the decoder that
// reads captures, and whether its IPv4 header checksum verifies.
type wirePacket struct {
	tcpwire.Datagram
	ipSumOK bool
}

// decodePacket decodes an IP packet. Packets the engine does not handle
// (other protocols, fragments, packets shorter than their headers say)
// are errors.
func decodePacket(b []byte) (*wirePacket, error) {
	p := new(wirePacket)
	switch tcpwire.Decode(b, &p.Datagram) {
	case tcpwire.Decoded:
	case tcpwire.Other:
		return nil, fmt.Errorf("unsupported IP packet (version %d, protocol %d)", b[0]>>4, p.IP.Proto)
	case tcpwire.Fragment:
		return nil, errors.New("IP fragment")
	default:
		return nil, errShort
	}
	if p.Truncated {
		return nil, fmt.Errorf("IP packet of %d bytes says it holds %d", len(b), p.IP.TotalLen)
	}
	p.ipSumOK = p.IP.Version == 6 || tcpwire.Checksum(b[:p.IP.HeaderLen], 0) == 0
	return p, nil
}

var errShort = errors.New("truncated packet")

func (p *wirePacket) v6() bool    { return p.IP.Version == 6 }
func (p *wirePacket) isTCP() bool { return p.IP.Proto == tcpwire.ProtoTCP }
func (p *wirePacket) isUDP() bool { return p.IP.Proto == tcpwire.ProtoUDP }

func (p *wirePacket) isICMP() bool {
	return p.IP.Proto == tcpwire.ProtoICMP || p.IP.Proto == tcpwire.ProtoICMPv6
}

// tcpHeader is the packet's TCP header, nil when it is not TCP.
func (p *wirePacket) tcpHeader() *tcpwire.TCPHeader {
	if !p.isTCP() {
		return nil
	}
	return &p.TCP
}

// ports are the transport ports (0 for ICMP).
func (p *wirePacket) ports() (src, dst uint16) {
	switch {
	case p.isTCP():
		return p.TCP.SrcPort, p.TCP.DstPort
	case p.isUDP():
		return p.UDP.SrcPort, p.UDP.DstPort
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
	case tcpwire.ProtoTCP:
		l4[16], l4[17] = 0, 0
		binary.BigEndian.PutUint16(l4[16:], tcpwire.Checksum(l4, tcpwire.PseudoHeaderSum(src, dst, proto, len(l4))))
	case tcpwire.ProtoUDP:
		l4[6], l4[7] = 0, 0
		binary.BigEndian.PutUint16(l4[6:], tcpwire.Checksum(l4, tcpwire.PseudoHeaderSum(src, dst, proto, len(l4))))
	case tcpwire.ProtoICMP:
		l4[2], l4[3] = 0, 0
		binary.BigEndian.PutUint16(l4[2:], tcpwire.Checksum(l4, 0))
	case tcpwire.ProtoICMPv6:
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
