package capturetest

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Segment is one TCP packet of a capture that WriteSegments writes, with
// whatever numbers a test asks for: sequence numbers, lengths and times
// that no kernel would send, to see what a reader of captures makes of
// them.
type Segment struct {
	At       time.Duration // since the capture's start (it may go backwards)
	Src, Dst netip.AddrPort
	Flags    string // S F R P U E C . as scripts write them
	Seq, Ack uint32
	Window   uint16
	Options  []byte // raw TCP option bytes, padded to a multiple of 4
	Len      int    // payload bytes the IP header counts
	// Cut keeps only the headers in the file, as a short snaplen does:
	// the IP header still counts Len bytes of payload.
	Cut bool
}

// captureStart is the time of a capture's first packet.
var captureStart = time.Unix(1700000000, 0)

// WriteSegments writes segs as an Ethernet pcap (microseconds), with
// valid IP and TCP checksums (computed over the whole payload, zero bytes,
// before a Cut).
func WriteSegments(w io.Writer, segs []Segment) error {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for i, s := range segs {
		frame, err := segmentFrame(s, uint16(i+1))
		if err != nil {
			return fmt.Errorf("segment %d: %w", i+1, err)
		}
		ci := gopacket.CaptureInfo{Timestamp: captureStart.Add(s.At), CaptureLength: len(frame), Length: len(frame)}
		if s.Cut {
			ci.CaptureLength = len(frame) - s.Len
			frame = frame[:ci.CaptureLength]
		}
		if err := pw.WritePacket(ci, frame); err != nil {
			return err
		}
	}
	return nil
}

// SetFlags sets the flags of tcp from letters: S, F, R, P, U, E (ECE), C
// (CWR) and "." (ACK).
func SetFlags(tcp *layers.TCP, flags string) error {
	for _, c := range flags {
		switch c {
		case 'S':
			tcp.SYN = true
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		case 'P':
			tcp.PSH = true
		case 'U':
			tcp.URG = true
		case 'E':
			tcp.ECE = true
		case 'C':
			tcp.CWR = true
		case '.':
			tcp.ACK = true
		default:
			return fmt.Errorf("flag %q", c)
		}
	}
	return nil
}

// segmentFrame returns the Ethernet frame of s (IP ID id for IPv4).
func segmentFrame(s Segment, id uint16) ([]byte, error) {
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.Src.Port()), DstPort: layers.TCPPort(s.Dst.Port()), Seq: s.Seq, Ack: s.Ack, Window: s.Window}
	if err := SetFlags(tcp, s.Flags); err != nil {
		return nil, err
	}
	if len(s.Options)%4 != 0 || len(s.Options) > 40 {
		return nil, fmt.Errorf("%d bytes of options", len(s.Options))
	}
	// gopacket writes the options from a list, and pads them itself.
	for o := s.Options; len(o) > 0; {
		switch k := layers.TCPOptionKind(o[0]); {
		case k == layers.TCPOptionKindEndList || k == layers.TCPOptionKindNop:
			tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: k, OptionLength: 1})
			o = o[1:]
		case len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o):
			return nil, fmt.Errorf("malformed option % x", o)
		default:
			tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: k, OptionLength: o[1], OptionData: o[2:o[1]]})
			o = o[o[1]:]
		}
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ip interface {
		gopacket.SerializableLayer
		gopacket.NetworkLayer
	}
	src, dst := s.Src.Addr().Unmap(), s.Dst.Addr().Unmap()
	if src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("addresses %v and %v of two families", src, dst)
	}
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip = &layers.IPv4{Version: 4, Id: id, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tcp, gopacket.Payload(make([]byte, s.Len)))
	return buf.Bytes(), err
}
