package tcpwire

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// IPHeader holds the IPv4 or IPv6 fields of a datagram.
type IPHeader struct {
	Version   uint8 // 4 or 6
	Proto     uint8 // the transport protocol (for IPv6, after the extension headers)
	Src, Dst  netip.Addr
	TTL       uint8  // IPv4 TTL or IPv6 hop limit
	TOS       uint8  // IPv4 TOS or IPv6 traffic class; the low two bits are ECN
	FlowLabel uint32 // IPv6 only
	ID        uint16 // IPv4 identification
	DF        bool   // IPv4 don't-fragment
	HeaderLen int    // bytes from the IP header start to the transport header (IPv4 options, IPv6 extension headers included)
	TotalLen  int    // datagram length from the header (IPv4 total length; IPv6 40 + payload length)
}

// ECN returns the ECN codepoint (the low two bits of TOS).
func (h *IPHeader) ECN() uint8 { return h.TOS & 3 }

// ChecksumState says what the TCP checksum of a segment shows.
type ChecksumState uint8

const (
	ChecksumUnknown ChecksumState = iota // segment not captured whole (snaplen): cannot verify
	ChecksumGood                         // verifies
	ChecksumPartial                      // holds only the pseudo-header sum: TX offload (CHECKSUM_PARTIAL) on the sending host
	ChecksumBad                          // wrong (includes zero)
)

func (c ChecksumState) String() string {
	switch c {
	case ChecksumGood:
		return "good"
	case ChecksumPartial:
		return "partial"
	case ChecksumBad:
		return "bad"
	}
	return "unknown"
}

// TCPHeader holds the TCP header fields of a segment.
type TCPHeader struct {
	SrcPort, DstPort uint16
	Seq, Ack         Seq
	Flags            Flags
	Reserved         uint8 // the three reserved bits after the data offset
	Window           uint16
	Urgent           uint16
	Checksum         uint16
	ChecksumState    ChecksumState
	HeaderLen        int    // data offset in bytes (20..60)
	Options          []byte // raw option bytes (may be cut short if the datagram is Truncated)
}

// UDPHeader holds the UDP header fields of a datagram.
type UDPHeader struct {
	SrcPort, DstPort uint16
	Length           uint16
}

// ICMPHeader holds the ICMP or ICMPv6 header fields of a message; the
// body (a quoted datagram, for an error) is the payload.
type ICMPHeader struct {
	Type, Code uint8
	Rest       uint32 // the 4 bytes after the checksum (an MTU, an echo id)
}

// Datagram is one decoded IP datagram: its IP header, the header of its
// transport protocol (IP.Proto says which of TCP, UDP and ICMP is set) and
// its payload. Payload and TCP.Options point into the decoded bytes.
type Datagram struct {
	IP         IPHeader
	TCP        TCPHeader
	UDP        UDPHeader
	ICMP       ICMPHeader
	Truncated  bool   // the bytes end before the datagram's length (a capture's snaplen)
	PayloadLen int    // the transport payload's length from the IP header (total − headers), not from the bytes at hand
	Payload    []byte // the payload bytes at hand (≤ PayloadLen)
}

// Result says what Decode found.
type Result uint8

const (
	Decoded  Result = iota // an IP header and a TCP, UDP or ICMP header (see IP.Proto)
	Other                  // another transport protocol, or a UDP or ICMP header cut short
	Fragment               // an IP fragment: not reassembled
	Short                  // cut before the end of the IP or TCP header, or inconsistent lengths
)

// Decode decodes an IPv4 or IPv6 datagram, by its version. It fills d
// without allocating; d's slices point into data.
func Decode(data []byte, d *Datagram) Result {
	if len(data) < 1 {
		return Short
	}
	switch data[0] >> 4 {
	case 4:
		return DecodeIPv4(data, d)
	case 6:
		return DecodeIPv6(data, d)
	}
	return Other
}

// DecodeIPv4 decodes an IPv4 datagram.
func DecodeIPv4(data []byte, d *Datagram) Result {
	if len(data) < 20 || data[0]>>4 != 4 {
		return Short
	}
	ihl := int(data[0]&0x0F) * 4
	total := int(binary.BigEndian.Uint16(data[2:]))
	if ihl < 20 || len(data) < ihl {
		return Short
	}
	if total == 0 {
		// Large GSO/TSO (BIG TCP) super-segments leave total length 0;
		// the bytes at hand are then all there is to go on.
		total = len(data)
	}
	if total < ihl {
		return Short
	}
	frag := binary.BigEndian.Uint16(data[6:])
	h := &d.IP
	h.Version = 4
	h.Proto = data[9]
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
		return Fragment
	}
	return d.transport(data, ihl, total)
}

// DecodeIPv6 decodes an IPv6 datagram, through its extension headers.
func DecodeIPv6(data []byte, d *Datagram) Result {
	if len(data) < 40 || data[0]>>4 != 6 {
		return Short
	}
	vtf := binary.BigEndian.Uint32(data)
	total := 40 + int(binary.BigEndian.Uint16(data[4:]))
	if total == 40 && len(data) > 40 {
		// Jumbogram or BIG TCP super-segment: payload length 0.
		total = len(data)
	}
	h := &d.IP
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
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(data) < off+8 {
				return Short
			}
			next, off = data[off], off+(int(data[off+1])+1)*8
		case 51: // AH
			if len(data) < off+8 {
				return Short
			}
			next, off = data[off], off+(int(data[off+1])+2)*4
		case 44: // fragment
			if len(data) < off+8 {
				return Short
			}
			fo := binary.BigEndian.Uint16(data[off+2:])
			h.ID = uint16(binary.BigEndian.Uint32(data[off+4:]))
			if fo&0xFFF9 != 0 {
				h.Proto = data[off]
				return Fragment
			}
			next, off = data[off], off+8
		default:
			h.Proto = next
			h.HeaderLen = off
			return d.transport(data, off, total)
		}
		if off > total {
			return Short
		}
	}
}

// transport decodes the transport header at data[off:]; total is the
// datagram length from the IP header, which may exceed len(data) when the
// bytes were cut (a capture's snaplen).
func (d *Datagram) transport(data []byte, off, total int) Result {
	if total > len(data) {
		d.Truncated = true
	} else {
		data = data[:total] // drop link-layer padding
	}
	switch d.IP.Proto {
	case ProtoTCP:
		return d.tcp(data, off, total)
	case ProtoUDP:
		if off+8 > len(data) {
			return Other
		}
		u := data[off:]
		d.UDP = UDPHeader{SrcPort: binary.BigEndian.Uint16(u), DstPort: binary.BigEndian.Uint16(u[2:]), Length: binary.BigEndian.Uint16(u[4:])}
		d.PayloadLen, d.Payload = total-off-8, u[8:]
		return Decoded
	case ProtoICMP, ProtoICMPv6:
		if off+8 > len(data) {
			return Other
		}
		m := data[off:]
		d.ICMP = ICMPHeader{Type: m[0], Code: m[1], Rest: binary.BigEndian.Uint32(m[4:])}
		d.PayloadLen, d.Payload = total-off-8, m[8:]
		return Decoded
	}
	return Other
}

func (d *Datagram) tcp(data []byte, off, total int) Result {
	if off+20 > len(data) {
		return Short
	}
	seg := data[off:]
	t := &d.TCP
	t.SrcPort = binary.BigEndian.Uint16(seg)
	t.DstPort = binary.BigEndian.Uint16(seg[2:])
	t.Seq = Seq(binary.BigEndian.Uint32(seg[4:]))
	t.Ack = Seq(binary.BigEndian.Uint32(seg[8:]))
	hl := int(seg[12]>>4) * 4
	t.Flags = Flags(seg[13]) | Flags(seg[12]&1)<<8
	t.Reserved = seg[12] >> 1 & 7
	t.Window = binary.BigEndian.Uint16(seg[14:])
	t.Checksum = binary.BigEndian.Uint16(seg[16:])
	t.Urgent = binary.BigEndian.Uint16(seg[18:])
	if hl < 20 || off+hl > total {
		return Short
	}
	t.HeaderLen = hl
	d.PayloadLen = total - off - hl
	if len(seg) < hl {
		t.Options = seg[20:]
		d.Payload = seg[len(seg):]
		t.ChecksumState = ChecksumUnknown
		return Decoded
	}
	t.Options = seg[20:hl]
	d.Payload = seg[hl:]
	if d.Truncated {
		t.ChecksumState = ChecksumUnknown
	} else {
		t.ChecksumState = checksumState(&d.IP, seg)
	}
	return Decoded
}

// checksumState verifies a whole TCP segment against the pseudo-header.
func checksumState(h *IPHeader, seg []byte) ChecksumState {
	ph := PseudoHeaderSum(h.Src, h.Dst, ProtoTCP, len(seg))
	if Checksum(seg, ph) == 0 {
		return ChecksumGood
	}
	// CHECKSUM_PARTIAL: the stack stored the folded pseudo-header sum
	// (not complemented) for the NIC to finish; a capture sees it as is.
	ck := binary.BigEndian.Uint16(seg[16:])
	if ck != 0 && ck == Fold(ph) {
		return ChecksumPartial
	}
	return ChecksumBad
}

// AppendTCP appends h as a TCP header with its options: the data offset
// from their length (a multiple of 4 bytes), the checksum 0, to be filled
// in over the pseudo header.
func AppendTCP(b []byte, h *TCPHeader) []byte {
	b = binary.BigEndian.AppendUint16(b, h.SrcPort)
	b = binary.BigEndian.AppendUint16(b, h.DstPort)
	b = binary.BigEndian.AppendUint32(b, uint32(h.Seq))
	b = binary.BigEndian.AppendUint32(b, uint32(h.Ack))
	b = append(b, byte((20+len(h.Options))/4)<<4|h.Reserved<<1|byte(h.Flags>>8&1), byte(h.Flags))
	b = binary.BigEndian.AppendUint16(b, h.Window)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, h.Urgent)
	return append(b, h.Options...)
}
