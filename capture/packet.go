package capture

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// Direction is the capture direction of a packet relative to the capturing
// host, as the capture itself records it (SLL/SLL2 packet type, pcapng EPB
// flags). Most link types do not record it: then it is DirUnknown.
type Direction uint8

const (
	DirUnknown Direction = iota // the capture does not say
	DirIn                       // received by the capturing host
	DirOut                      // sent by the capturing host
)

func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return "unknown"
}

// Packet is one decoded TCP packet. Reader.Next returns the same *Packet on
// every call, and Frame, Payload and TCP.Options point into the reader's buffer:
// a caller that keeps anything beyond the next call to Next must copy it
// (Tracker does, into a compact FlowPacket).
type Packet struct {
	Index      int       // 1-based packet (record) number in the file, counting every record
	Offset     int64     // byte offset of the pcap record in the (uncompressed) file; for pcapng, where reading for it began (interface or statistics blocks may come first)
	Time       time.Time // capture timestamp, nanosecond resolution
	Interface  int       // pcapng interface index (0 for pcap)
	LinkType   layers.LinkType
	CaptureDir Direction
	Frame      []byte // the captured frame, link-layer header included; points into the reader's buffer
	CapLen     int    // bytes captured of the frame
	WireLen    int    // original frame length
	// Datagram is the decoded IP datagram: IP and TCP headers, payload.
	// Truncated says the snaplen cut part of it (payload, or even TCP
	// options); PayloadLen is the TCP payload's length from the IP header.
	tcpwire.Datagram
	// ICMPError is set, and TCP is not, for an ICMPv4 error that quotes a
	// TCP segment (only with Reader.ICMPErrors); it points into the reader.
	ICMPError *ICMPError
}

// ICMPError is an ICMP error message about a TCP segment: its type and
// code, and what it quotes of the segment.
type ICMPError struct {
	Type, Code uint8
	MTU        uint16 // the next-hop MTU of a "fragmentation needed" message
	// Src, Dst and Seq are the quoted segment's: Src sent it.
	Src, Dst netip.AddrPort
	Seq      tcpwire.Seq
	// PayloadLen is the quoted segment's payload length, from its IP total
	// length (its TCP header taken as 20 bytes when the quote ends before
	// the data offset).
	PayloadLen int
}

// Src returns the sender's address and port.
func (p *Packet) Src() netip.AddrPort { return netip.AddrPortFrom(p.IP.Src, p.TCP.SrcPort) }

// Dst returns the receiver's address and port.
func (p *Packet) Dst() netip.AddrPort { return netip.AddrPortFrom(p.IP.Dst, p.TCP.DstPort) }
