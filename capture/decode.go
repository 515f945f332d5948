package capture

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// outcome says what decoding a frame found; the reader counts it in Stats.
type outcome uint8

const (
	outTCP         outcome = iota
	outNonIP               // not IPv4/IPv6 (ARP, LLDP, ...)
	outNonTCP              // IP but not TCP (UDP, ICMP, ...)
	outFragment            // an IP fragment: counted, not reassembled
	outShort               // cut before the end of the TCP base header, or an inconsistent header
	outUnsupported         // link type not decoded
	outICMP                // an ICMPv4 error quoting a TCP segment (with decoder.icmp)
)

// Link types that are raw IP under another number: DLT_RAW is 12 on most
// BSDs and 14 on OpenBSD; libpcap maps both to LINKTYPE_RAW (101) when
// writing, but older files carry them.
const (
	linkTypeRawBSD     layers.LinkType = 12
	linkTypeRawOpenBSD layers.LinkType = 14
	linkTypeNFLOG      layers.LinkType = 239 // not among gopacket's constants
	linkTypeIPoIB      layers.LinkType = 242 // IP over InfiniBand (RFC 4391): a 4-byte header led by an ethertype
)

// Ethertypes.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86DD
	etherVLAN   = 0x8100
	etherQinQ   = 0x88A8
	etherQinQv1 = 0x9100
	etherPPPoE  = 0x8864 // PPPoE session stage
	etherMPLS   = 0x8847
	etherMPLSm  = 0x8848 // multicast MPLS
	etherTEB    = 0x6558 // transparent Ethernet bridging: an Ethernet frame follows (GRE, Geneve)
)

// UDP ports of the tunnels decoded (IANA).
const (
	portVXLAN  = 4789
	portGeneve = 6081
)

// maxEncap bounds how many tunnels deep the decoder goes, so that a frame
// of nested headers costs a bounded amount of work.
const maxEncap = 8

// SLL packet types (linux/if_packet.h).
const (
	sllHost      = 0
	sllBroadcast = 1
	sllMulticast = 2
	sllOtherHost = 3
	sllOutgoing  = 4
)

// decoder turns a frame into the fields of a Packet. It keeps no state
// between frames except the file's byte order (NFLOG headers use it).
type decoder struct {
	bigEndian bool
	depth     int  // tunnels entered in the current frame
	icmp      bool // decode ICMPv4 errors that quote a TCP segment (Reader.ICMPErrors)
	icmpErr   ICMPError
	// nflogKnown is the latest kernel timestamp an NFLOG record carried
	// (zero before the first): see nflog.
	nflogKnown time.Time
}

func sllDir(t uint16) Direction {
	switch t {
	case sllOutgoing:
		return DirOut
	case sllHost, sllBroadcast, sllMulticast:
		return DirIn
	}
	return DirUnknown
}

// decode fills p's link, IP and TCP fields from data. p.CaptureDir may
// already hold a direction from the file format (pcapng EPB flags); a link
// header that records one overrides it.
func (d *decoder) decode(lt layers.LinkType, data []byte, p *Packet) outcome {
	d.depth = 0
	return d.link(lt, data, p)
}

func (d *decoder) link(lt layers.LinkType, data []byte, p *Packet) outcome {
	switch lt {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return outShort
		}
		return d.ether(binary.BigEndian.Uint16(data[12:]), data[14:], p)
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return outShort
		}
		p.CaptureDir = sllDir(binary.BigEndian.Uint16(data))
		return d.ether(binary.BigEndian.Uint16(data[14:]), data[16:], p)
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return outShort
		}
		p.CaptureDir = sllDir(uint16(data[10]))
		return d.ether(binary.BigEndian.Uint16(data), data[20:], p)
	case layers.LinkTypeRaw, linkTypeRawBSD, linkTypeRawOpenBSD:
		return d.rawIP(data, p)
	case layers.LinkTypeIPv4:
		return d.ip4(data, p)
	case layers.LinkTypeIPv6:
		return d.ip6(data, p)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return outShort
		}
		// NULL carries the AF in the capturing host's byte order, LOOP in
		// network order; the values differ enough to try both.
		af := binary.LittleEndian.Uint32(data)
		if af > 0xFFFF {
			af = binary.BigEndian.Uint32(data)
		}
		switch af {
		case 2:
			return d.ip4(data[4:], p)
		case 24, 28, 30:
			return d.ip6(data[4:], p)
		}
		return outNonIP
	case linkTypeNFLOG:
		return d.nflog(data, p)
	case layers.LinkTypePPP, layers.LinkTypePPP_HDLC:
		return d.ppp(data, p)
	case layers.LinkTypePPPEthernet:
		return d.pppoe(data, p)
	case linkTypeIPoIB:
		if len(data) < 4 {
			return outShort
		}
		return d.ether(binary.BigEndian.Uint16(data), data[4:], p)
	}
	return outUnsupported
}

// tunnel decodes what a tunnel carries: a link frame of type lt, one level
// deeper.
func (d *decoder) tunnel(lt layers.LinkType, data []byte, p *Packet) outcome {
	if !d.deeper() {
		return outNonTCP
	}
	return d.link(lt, data, p)
}

// deeper enters one more tunnel; false when maxEncap are entered already.
func (d *decoder) deeper() bool {
	if d.depth >= maxEncap {
		return false
	}
	d.depth++
	return true
}

// etherTunnel decodes what a tunnel carries from an ethertype on, one
// level deeper.
func (d *decoder) etherTunnel(et uint16, data []byte, p *Packet) outcome {
	if !d.deeper() {
		return outNonTCP
	}
	return d.ether(et, data, p)
}

// pppoe skips a PPPoE session header (version/type, code, session id,
// length) to the PPP frame.
func (d *decoder) pppoe(data []byte, p *Packet) outcome {
	if len(data) < 6 {
		return outShort
	}
	return d.ppp(data[6:], p)
}

// ppp decodes a PPP frame: an optional HDLC address and control (FF 03),
// then a protocol field of one byte (compressed, odd) or two.
func (d *decoder) ppp(data []byte, p *Packet) outcome {
	if len(data) >= 2 && data[0] == 0xFF && data[1] == 0x03 {
		data = data[2:]
	}
	if len(data) < 1 {
		return outShort
	}
	proto, n := uint16(data[0]), 1
	if data[0]&1 == 0 {
		if len(data) < 2 {
			return outShort
		}
		proto, n = binary.BigEndian.Uint16(data), 2
	}
	switch proto {
	case 0x21:
		return d.ip4(data[n:], p)
	case 0x57:
		return d.ip6(data[n:], p)
	}
	return outNonIP
}

// mpls skips a label stack to its bottom entry; what follows is IP when
// its first nibble says so (an Ethernet pseudowire is not decoded).
func (d *decoder) mpls(data []byte, p *Packet) outcome {
	for {
		if len(data) < 4 {
			return outShort
		}
		bottom := data[2]&1 != 0
		data = data[4:]
		if bottom {
			break
		}
	}
	if len(data) > 0 && (data[0]>>4 == 4 || data[0]>>4 == 6) {
		return d.rawIP(data, p)
	}
	return outNonIP
}

// gre decodes a GRE (version 0) packet: flags and protocol type, then the
// optional checksum, key and sequence number, then what the protocol type
// names.
func (d *decoder) gre(data []byte, p *Packet) outcome {
	if len(data) < 4 {
		return outShort
	}
	flags := binary.BigEndian.Uint16(data)
	if flags&7 != 0 {
		return outNonTCP // version 1 (PPTP) is not decoded
	}
	off := 4
	for _, bit := range []uint16{0x8000, 0x2000, 0x1000} { // checksum (+reserved), key, sequence
		if flags&bit != 0 {
			off += 4
		}
	}
	if len(data) < off {
		return outShort
	}
	return d.etherTunnel(binary.BigEndian.Uint16(data[2:]), data[off:], p)
}

// udp decodes the tunnels carried over UDP: VXLAN and Geneve by their
// destination ports. Other UDP is not TCP.
func (d *decoder) udp(dstPort uint16, body []byte, p *Packet) outcome {
	switch dstPort {
	case portVXLAN:
		// Flags (I set), reserved, VNI, reserved: an Ethernet frame follows.
		if len(body) < 8 || body[0]&0x08 == 0 {
			return outNonTCP
		}
		return d.tunnel(layers.LinkTypeEthernet, body[8:], p)
	case portGeneve:
		// Version and option length (4-byte words), flags, protocol type,
		// VNI, reserved, options.
		if len(body) < 8 || body[0]>>6 != 0 {
			return outNonTCP
		}
		off := 8 + int(body[0]&0x3F)*4
		if len(body) < off {
			return outShort
		}
		return d.etherTunnel(binary.BigEndian.Uint16(body[2:]), body[off:], p)
	}
	return outNonTCP
}

// inner decodes what IP protocol proto carries in payload, for the
// protocols that tunnel TCP in IP: IP in IP, IPv6 in IP and GRE (UDP
// tunnels are udp's).
func (d *decoder) inner(proto uint8, payload []byte, p *Packet) outcome {
	switch proto {
	case 4:
		return d.tunnel(layers.LinkTypeIPv4, payload, p)
	case 41:
		return d.tunnel(layers.LinkTypeIPv6, payload, p)
	case 47:
		return d.gre(payload, p)
	}
	return outNonTCP
}

// ether decodes from an ethertype on, skipping 802.1Q/802.1ad tags.
func (d *decoder) ether(et uint16, data []byte, p *Packet) outcome {
	for et == etherVLAN || et == etherQinQ || et == etherQinQv1 {
		if len(data) < 4 {
			return outShort
		}
		et = binary.BigEndian.Uint16(data[2:])
		data = data[4:]
	}
	switch et {
	case etherIPv4:
		return d.ip4(data, p)
	case etherIPv6:
		return d.ip6(data, p)
	case etherPPPoE:
		return d.pppoe(data, p)
	case etherMPLS, etherMPLSm:
		return d.mpls(data, p)
	case etherTEB:
		return d.tunnel(layers.LinkTypeEthernet, data, p)
	}
	return outNonIP
}

func (d *decoder) rawIP(data []byte, p *Packet) outcome {
	if len(data) < 1 {
		return outShort
	}
	switch data[0] >> 4 {
	case 4:
		return d.ip4(data, p)
	case 6:
		return d.ip6(data, p)
	}
	return outNonIP
}

// nflog decodes a Linux NFLOG frame: a 4-byte header, then TLVs whose
// length and type fields are in the capturing host's byte order (taken to
// be the file's) and padded to 4 bytes; NFULA_PAYLOAD (9) holds the IP
// datagram.
//
// The record's own time is when libpcap read the netlink message, and the
// kernel sends those in batches (flushed when its buffer fills or after up
// to a second): NFULA_TIMESTAMP (3), where the kernel gave one (packets it
// received), is the packet's time. A record without it logged a packet
// between the one before and its read: it takes the latest kernel time
// seen, which for the replies and ACKs that make up most of a capture is
// within microseconds. NFULA_PACKET_HDR (1) names the netfilter hook, and
// so the direction: LOCAL_IN and PRE_ROUTING saw the packet arrive,
// LOCAL_OUT and POST_ROUTING leave.
func (d *decoder) nflog(data []byte, p *Packet) outcome {
	if len(data) < 4 {
		return outShort
	}
	family := data[0]
	u16 := binary.LittleEndian.Uint16
	if d.bigEndian {
		u16 = binary.BigEndian.Uint16
	}
	const (
		nfulaPacketHdr = 1
		nfulaTimestamp = 3
		nfulaPayload   = 9
		nlaTypeMask    = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	)
	var payload []byte
	stamped := false
	for i := 4; i+4 <= len(data); {
		n, typ := int(u16(data[i:])), u16(data[i+2:])&nlaTypeMask
		if n < 4 || i+n > len(data) {
			return outShort
		}
		v := data[i+4 : i+n]
		switch {
		case typ == nfulaPacketHdr && len(v) >= 3:
			switch v[2] {
			case 0, 1: // NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN
				p.CaptureDir = DirIn
			case 3, 4: // NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING
				p.CaptureDir = DirOut
			}
		case typ == nfulaTimestamp && len(v) >= 16:
			sec, usec := binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
			if sec < 1<<40 && usec < 1e6 {
				p.Time = time.Unix(int64(sec), int64(usec)*1000)
				d.nflogKnown, stamped = p.Time, true
			}
		case typ == nfulaPayload:
			payload = v
		}
		i += (n + 3) &^ 3
	}
	if !stamped && !d.nflogKnown.IsZero() && d.nflogKnown.Before(p.Time) {
		p.Time = d.nflogKnown
	}
	if payload == nil {
		return outNonIP
	}
	switch family {
	case 2:
		return d.ip4(payload, p)
	case 10:
		return d.ip6(payload, p)
	}
	return d.rawIP(payload, p)
}

func (d *decoder) ip4(data []byte, p *Packet) outcome {
	return d.outcome(tcpwire.DecodeIPv4(data, &p.Datagram), data, p)
}

func (d *decoder) ip6(data []byte, p *Packet) outcome {
	return d.outcome(tcpwire.DecodeIPv6(data, &p.Datagram), data, p)
}

// outcome tells TCP from the rest in what the datagram decoder found in
// data, and goes into the tunnels that carry TCP.
func (d *decoder) outcome(r tcpwire.Result, data []byte, p *Packet) outcome {
	switch r {
	case tcpwire.Fragment:
		return outFragment
	case tcpwire.Short:
		return outShort
	}
	switch proto := p.IP.Proto; proto {
	case tcpwire.ProtoTCP:
		if r == tcpwire.Decoded {
			return outTCP
		}
	case tcpwire.ProtoICMP:
		if r == tcpwire.Decoded && d.icmp {
			return d.icmp4(p)
		}
	case tcpwire.ProtoUDP:
		if r == tcpwire.Decoded {
			return d.udp(p.UDP.DstPort, p.Payload, p)
		}
	case 4, 41, 47: // IP in IP, IPv6 in IP, GRE
		end := min(p.IP.TotalLen, len(data))
		if p.IP.HeaderLen > end {
			return outShort
		}
		return d.inner(proto, data[p.IP.HeaderLen:end], p)
	}
	return outNonTCP
}

// ICMPv4 error types whose message quotes the offending datagram (RFC 792)
// and which Linux's TCP acts on (tcp_v4_err).
const (
	icmpUnreachable  = 3
	icmpTimeExceeded = 11
	icmpParamProblem = 12
	icmpFragNeeded   = 4 // the destination unreachable code carrying an MTU
)

// icmp4 decodes an ICMPv4 error whose quoted datagram is a TCP segment:
// the quote holds its IP header and at least 8 bytes of TCP (ports and
// sequence number). Anything else is outNonTCP, as without d.icmp.
func (d *decoder) icmp4(p *Packet) outcome {
	in := p.Payload
	if len(in) < 20 {
		return outNonTCP
	}
	switch p.ICMP.Type {
	case icmpUnreachable, icmpTimeExceeded, icmpParamProblem:
	default:
		return outNonTCP
	}
	ihl := int(in[0]&0x0F) * 4
	if in[0]>>4 != 4 || in[9] != tcpwire.ProtoTCP || ihl < 20 || len(in) < ihl+8 {
		return outNonTCP
	}
	e := &d.icmpErr
	*e = ICMPError{Type: p.ICMP.Type, Code: p.ICMP.Code}
	if e.Type == icmpUnreachable && e.Code == icmpFragNeeded {
		e.MTU = uint16(p.ICMP.Rest)
	}
	tcp := in[ihl:]
	e.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(in[12:16])), binary.BigEndian.Uint16(tcp))
	e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(in[16:20])), binary.BigEndian.Uint16(tcp[2:]))
	e.Seq = tcpwire.Seq(binary.BigEndian.Uint32(tcp[4:]))
	hl := 20
	if len(tcp) >= 13 && int(tcp[12]>>4)*4 >= 20 {
		hl = int(tcp[12]>>4) * 4
	}
	e.PayloadLen = max(int(binary.BigEndian.Uint16(in[2:]))-ihl-hl, 0)
	p.ICMPError = e
	return outICMP
}
