package capture

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// tcpSpec describes one TCP/IP datagram for a test fixture.
type tcpSpec struct {
	v6           bool
	src, dst     string
	sport, dport uint16
	seq, ack     uint32
	flags        tcpwire.Flags
	win          uint16
	urg          uint16
	ttl          uint8
	tos          uint8
	flowLabel    uint32
	id           uint16
	opts         []layers.TCPOption
	payload      []byte
	ipOpts       bool   // IPv4: add a 4-byte option (NOPs + EOL)
	ext6         []byte // IPv6: extension header chain to insert (next header values)
}

// ip builds the datagram with gopacket's serializer, an oracle independent
// of the decoder under test; checksums and lengths are computed.
func (s tcpSpec) ip(t testing.TB) []byte {
	t.Helper()
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport),
		Seq: s.seq, Ack: s.ack, Window: s.win, Urgent: s.urg, Options: s.opts,
		FIN: s.flags.Has(tcpwire.FlagFIN), SYN: s.flags.Has(tcpwire.FlagSYN), RST: s.flags.Has(tcpwire.FlagRST),
		PSH: s.flags.Has(tcpwire.FlagPSH), ACK: s.flags.Has(tcpwire.FlagACK), URG: s.flags.Has(tcpwire.FlagURG),
		ECE: s.flags.Has(tcpwire.FlagECE), CWR: s.flags.Has(tcpwire.FlagCWR), NS: s.flags.Has(tcpwire.FlagAE),
	}
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	buf := gopacket.NewSerializeBuffer()
	so := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if s.v6 {
		ip := &layers.IPv6{Version: 6, TrafficClass: s.tos, FlowLabel: s.flowLabel, NextHeader: layers.IPProtocolTCP,
			HopLimit: ttl, SrcIP: net.ParseIP(s.src), DstIP: net.ParseIP(s.dst)}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		if err := gopacket.SerializeLayers(buf, so, ip, tcp, gopacket.Payload(s.payload)); err != nil {
			t.Fatal(err)
		}
		return s.insertExt6(buf.Bytes())
	}
	ip := &layers.IPv4{Version: 4, TOS: s.tos, Id: s.id, Flags: layers.IPv4DontFragment, TTL: ttl,
		Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(s.src).To4(), DstIP: net.ParseIP(s.dst).To4()}
	if s.ipOpts {
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	if err := gopacket.SerializeLayers(buf, so, ip, tcp, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// insertExt6 puts 8-byte extension headers (hop-by-hop 0, routing 43, dest
// opts 60, fragment 44) between the IPv6 header and TCP; the TCP checksum
// is unaffected since the pseudo-header holds the upper-layer length.
func (s tcpSpec) insertExt6(d []byte) []byte {
	if len(s.ext6) == 0 {
		return bytes.Clone(d)
	}
	out := bytes.Clone(d[:40])
	out[6] = s.ext6[0]
	for i, typ := range s.ext6 {
		next := byte(6)
		if i+1 < len(s.ext6) {
			next = s.ext6[i+1]
		}
		h := make([]byte, 8)
		h[0] = next
		switch typ {
		case 44: // fragment header: offset 0, M=0 (atomic fragment), id 0x1234
			binary.BigEndian.PutUint32(h[4:], 0x1234)
		case 43: // routing type 0 segments left 0
		default: // PadN option filling 6 bytes
			h[2], h[3] = 1, 4
		}
		out = append(out, h...)
	}
	out = append(out, d[40:]...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

// Link-layer wrappers.

func ether(ip []byte, tags ...uint16) []byte {
	h := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	for _, tpid := range tags {
		h = binary.BigEndian.AppendUint16(h, tpid)
		h = binary.BigEndian.AppendUint16(h, 7) // VLAN 7
	}
	return append(binary.BigEndian.AppendUint16(h, etherTypeOf(ip)), ip...)
}

func etherTypeOf(ip []byte) uint16 {
	if ip[0]>>4 == 6 {
		return etherIPv6
	}
	return etherIPv4
}

func sll(ip []byte, pktType uint16) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h, pktType)
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	binary.BigEndian.PutUint16(h[14:], etherTypeOf(ip))
	return append(h, ip...)
}

func sll2(ip []byte, pktType uint8) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, etherTypeOf(ip))
	binary.BigEndian.PutUint32(h[4:], 3) // ifindex
	binary.BigEndian.PutUint16(h[8:], 1)
	h[10], h[11] = pktType, 6
	return append(h, ip...)
}

func nullHdr(ip []byte, af uint32, order binary.AppendByteOrder) []byte {
	return append(order.AppendUint32(nil, af), ip...)
}

func nflog(ip []byte, family uint8, order binary.AppendByteOrder) []byte {
	out := []byte{family, 0, 0, 0}
	// a prefix TLV (type 10) with a 3-byte string, padded, then the payload TLV (9)
	out = order.AppendUint16(out, 7)
	out = order.AppendUint16(out, 10)
	out = append(out, 'a', 'b', 0, 0)
	out = order.AppendUint16(out, uint16(4+len(ip)))
	out = order.AppendUint16(out, 9)
	return append(out, ip...)
}

// pcapFile builds a pcap file in memory in either byte order and resolution.
type pcapFile struct {
	buf   bytes.Buffer
	order binary.AppendByteOrder
	nanos bool
}

func newPcap(lt layers.LinkType, order binary.AppendByteOrder, nanos bool, snaplen uint32) *pcapFile {
	f := &pcapFile{order: order, nanos: nanos}
	magic := uint32(0xA1B2C3D4)
	if nanos {
		magic = 0xA1B23C4D
	}
	h := order.AppendUint32(nil, magic)
	h = order.AppendUint16(h, 2)
	h = order.AppendUint16(h, 4)
	h = order.AppendUint32(h, 0)
	h = order.AppendUint32(h, 0)
	h = order.AppendUint32(h, snaplen)
	h = order.AppendUint32(h, uint32(lt))
	f.buf.Write(h)
	return f
}

// add appends a record holding data cut to caplen (0: whole).
func (f *pcapFile) add(ts time.Time, data []byte, caplen int) {
	if caplen == 0 || caplen > len(data) {
		caplen = len(data)
	}
	frac := uint32(ts.Nanosecond())
	if !f.nanos {
		frac /= 1000
	}
	h := f.order.AppendUint32(nil, uint32(ts.Unix()))
	h = f.order.AppendUint32(h, frac)
	h = f.order.AppendUint32(h, uint32(caplen))
	h = f.order.AppendUint32(h, uint32(len(data)))
	f.buf.Write(h)
	f.buf.Write(data[:caplen])
}

// ngFile builds a pcapng file by hand: several interfaces with their own
// link type and timestamp resolution, EPBs with flags, either byte order.
type ngFile struct {
	buf   bytes.Buffer
	order binary.AppendByteOrder
	res   []uint8 // per interface: if_tsresol (decimal exponent)
}

func newNg(order binary.AppendByteOrder) *ngFile {
	f := &ngFile{order: order}
	body := order.AppendUint32(nil, 0x1A2B3C4D)
	body = order.AppendUint16(body, 1)
	body = order.AppendUint16(body, 0)
	body = order.AppendUint64(body, ^uint64(0))
	f.block(0x0A0D0D0A, body)
	return f
}

func (f *ngFile) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	b := f.order.AppendUint32(nil, typ)
	b = f.order.AppendUint32(b, n)
	b = append(b, body...)
	b = f.order.AppendUint32(b, n)
	f.buf.Write(b)
}

func (f *ngFile) option(b []byte, code uint16, v []byte) []byte {
	b = f.order.AppendUint16(b, code)
	b = f.order.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (f *ngFile) iface(lt layers.LinkType, tsresol uint8) int {
	b := f.order.AppendUint16(nil, uint16(lt))
	b = f.order.AppendUint16(b, 0)
	b = f.order.AppendUint32(b, 0)
	b = f.option(b, 9, []byte{tsresol})
	b = f.option(b, 0, nil)
	f.block(1, b)
	f.res = append(f.res, tsresol)
	return len(f.res) - 1
}

// epb adds an enhanced packet block; flags 0 writes no flags option.
func (f *ngFile) epb(intf int, ts time.Time, data []byte, flags uint32) {
	units := uint64(ts.UnixNano())
	for i := f.res[intf]; i < 9; i++ {
		units /= 10
	}
	b := f.order.AppendUint32(nil, uint32(intf))
	b = f.order.AppendUint32(b, uint32(units>>32))
	b = f.order.AppendUint32(b, uint32(units))
	b = f.order.AppendUint32(b, uint32(len(data)))
	b = f.order.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	if flags != 0 {
		b = f.option(b, 2, f.order.AppendUint32(nil, flags))
		b = f.option(b, 0, nil)
	}
	f.block(6, b)
}
