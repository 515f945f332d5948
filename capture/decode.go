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
	if d.depth >= maxEncap {
		return outNonTCP
	}
	d.depth++
	return d.link(lt, data, p)
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
	if d.depth >= maxEncap {
		return outNonTCP
	}
	d.depth++
	return d.ether(binary.BigEndian.Uint16(data[2:]), data[off:], p)
}

// udp decodes the tunnels carried over UDP: VXLAN and Geneve by their
// destination ports. Other UDP is not TCP.
func (d *decoder) udp(data []byte, p *Packet) outcome {
	if len(data) < 8 {
		return outNonTCP
	}
	body := data[8:]
	switch binary.BigEndian.Uint16(data[2:]) {
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
		if d.depth >= maxEncap {
			return outNonTCP
		}
		d.depth++
		return d.ether(binary.BigEndian.Uint16(body[2:]), body[off:], p)
	}
	return outNonTCP
}

// inner decodes what IP protocol proto carries in payload, for the
// protocols that tunnel TCP: IP in IP, IPv6 in IP, GRE and UDP tunnels.
func (d *decoder) inner(proto uint8, payload []byte, p *Packet) outcome {
	switch proto {
	case 4:
		return d.tunnel(layers.LinkTypeIPv4, payload, p)
	case 41:
		return d.tunnel(layers.LinkTypeIPv6, payload, p)
	case 47:
		return d.gre(payload, p)
	case 17:
		return d.udp(payload, p)
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
	if len(data) < 20 || data[0]>>4 != 4 {
		return outShort
	}
	ihl := int(data[0]&0x0F) * 4
	total := int(binary.BigEndian.Uint16(data[2:]))
	if ihl < 20 || len(data) < ihl {
		return outShort
	}
	if total == 0 {
		// Large GSO/TSO (BIG TCP) super-segments leave total length 0;
		// the captured bytes are then all there is to go on.
		total = len(data)
	}
	if total < ihl {
		return outShort
	}
	frag := binary.BigEndian.Uint16(data[6:])
	h := &p.IP
	h.Version = 4
	h.TOS = data[1]
	h.ID = binary.BigEndian.Uint16(data[4:])
	h.DF = frag&0x4000 != 0
	h.TTL = data[8]
	h.FlowLabel = 0
	h.Src = netip.AddrFrom4([4]byte(data[12:16]))
	h.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	h.HeaderLen = ihl
	h.TotalLen = total
	if frag&0x3FFF != 0 {
		return outFragment
	}
	if data[9] == 1 && d.icmp {
		return d.icmp4(data[ihl:min(total, len(data))], p)
	}
	if data[9] != 6 {
		return d.inner(data[9], data[ihl:min(total, len(data))], p)
	}
	return d.tcp(data, ihl, total, p)
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
func (d *decoder) icmp4(msg []byte, p *Packet) outcome {
	if len(msg) < 8+20 {
		return outNonTCP
	}
	switch msg[0] {
	case icmpUnreachable, icmpTimeExceeded, icmpParamProblem:
	default:
		return outNonTCP
	}
	in := msg[8:]
	ihl := int(in[0]&0x0F) * 4
	if in[0]>>4 != 4 || in[9] != 6 || ihl < 20 || len(in) < ihl+8 {
		return outNonTCP
	}
	e := &d.icmpErr
	*e = ICMPError{Type: msg[0], Code: msg[1]}
	if e.Type == icmpUnreachable && e.Code == icmpFragNeeded {
		e.MTU = binary.BigEndian.Uint16(msg[6:])
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
	p.ICMP = e
	return outICMP
}

func (d *decoder) ip6(data []byte, p *Packet) outcome {
	if len(data) < 40 || data[0]>>4 != 6 {
		return outShort
	}
	vtf := binary.BigEndian.Uint32(data)
	total := 40 + int(binary.BigEndian.Uint16(data[4:]))
	if total == 40 && len(data) > 40 {
		// Jumbogram or BIG TCP super-segment: payload length 0.
		total = len(data)
	}
	h := &p.IP
	h.Version = 6
	h.TOS = uint8(vtf >> 20)
	h.FlowLabel = vtf & 0xFFFFF
	h.ID = 0
	h.DF = false
	h.TTL = data[7]
	h.Src = netip.AddrFrom16([16]byte(data[8:24]))
	h.Dst = netip.AddrFrom16([16]byte(data[24:40]))
	h.TotalLen = total
	next, off := data[6], 40
	for {
		switch next {
		case 6:
			h.HeaderLen = off
			return d.tcp(data, off, total, p)
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(data) < off+8 {
				return outShort
			}
			next, off = data[off], off+(int(data[off+1])+1)*8
		case 51: // AH
			if len(data) < off+8 {
				return outShort
			}
			next, off = data[off], off+(int(data[off+1])+2)*4
		case 44: // fragment
			if len(data) < off+8 {
				return outShort
			}
			fo := binary.BigEndian.Uint16(data[off+2:])
			h.ID = uint16(binary.BigEndian.Uint32(data[off+4:]))
			if fo&0xFFF9 != 0 {
				return outFragment
			}
			next, off = data[off], off+8
		case 4, 41, 47, 17:
			if off > min(total, len(data)) {
				return outShort
			}
			return d.inner(next, data[off:min(total, len(data))], p)
		default:
			return outNonTCP
		}
		if off > total {
			return outShort
		}
	}
}

// tcp decodes the TCP header at data[off:]; total is the datagram length
// from the IP header, which may exceed len(data) when the snaplen cut it.
func (d *decoder) tcp(data []byte, off, total int, p *Packet) outcome {
	if total > len(data) {
		p.Truncated = true
	} else {
		data = data[:total] // drop link-layer padding
	}
	if off+20 > len(data) {
		return outShort
	}
	seg := data[off:]
	t := &p.TCP
	t.SrcPort = binary.BigEndian.Uint16(seg)
	t.DstPort = binary.BigEndian.Uint16(seg[2:])
	t.Seq = tcpwire.Seq(binary.BigEndian.Uint32(seg[4:]))
	t.Ack = tcpwire.Seq(binary.BigEndian.Uint32(seg[8:]))
	hl := int(seg[12]>>4) * 4
	t.Flags = tcpwire.Flags(seg[13]) | tcpwire.Flags(seg[12]&1)<<8
	t.Window = binary.BigEndian.Uint16(seg[14:])
	t.Checksum = binary.BigEndian.Uint16(seg[16:])
	t.Urgent = binary.BigEndian.Uint16(seg[18:])
	if hl < 20 || off+hl > total {
		return outShort
	}
	t.HeaderLen = hl
	p.PayloadLen = total - off - hl
	if len(seg) < hl {
		t.Options = seg[20:]
		p.Payload = seg[len(seg):]
		t.ChecksumState = ChecksumUnknown
		return outTCP
	}
	t.Options = seg[20:hl]
	p.Payload = seg[hl:]
	if p.Truncated {
		t.ChecksumState = ChecksumUnknown
	} else {
		t.ChecksumState = checksumState(&p.IP, seg)
	}
	return outTCP
}

// checksumState verifies a whole TCP segment against the pseudo-header.
func checksumState(h *IPHeader, seg []byte) ChecksumState {
	ph := tcpwire.PseudoHeaderSum(h.Src, h.Dst, 6, len(seg))
	if tcpwire.Checksum(seg, ph) == 0 {
		return ChecksumGood
	}
	// CHECKSUM_PARTIAL: the stack stored the folded pseudo-header sum
	// (not complemented) for the NIC to finish; capture sees it as is.
	ck := binary.BigEndian.Uint16(seg[16:])
	if ck != 0 && ck == tcpwire.Fold(ph) {
		return ChecksumPartial
	}
	return ChecksumBad
}
