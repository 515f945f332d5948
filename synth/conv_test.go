package synth

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// seg is one packet of a made-up conversation between a client
// (10.0.0.1:40000, ISN 1000) and a server (10.0.0.2:80, ISN 5000). Sequence
// numbers are relative to the sender's ISN and acks to the receiver's, as
// in scripts; dt is the time since the previous packet.
type seg struct {
	srv      bool
	flags    string // S F R P . as in scripts
	seq, ack uint32
	n        int
	win      uint16
	dt       time.Duration
	opts     []layers.TCPOption
	urg      uint16 // urgent pointer (with U in flags)
	// icmp makes the packet an ICMP host unreachable error, sent by the
	// other side, that quotes the segment the other fields describe.
	icmp bool
	copy bool // the previous packet captured again (same IP ID)
	dir  byte // with any seg setting it, the file is LINUX_SLL: 0 to us, 4 outgoing
}

const cliISN, srvISN = 1000, 5000

// conversation writes segs as an Ethernet pcap.
func conversation(t testing.TB, segs []seg) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	sll := false
	for _, s := range segs {
		sll = sll || s.dir != 0
	}
	lt := layers.LinkTypeEthernet
	if sll {
		lt = layers.LinkTypeLinuxSLL
	}
	if err := w.WriteFileHeader(65536, lt); err != nil {
		t.Fatal(err)
	}
	cli, srv := net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2)
	at := time.Unix(1700000000, 0)
	var id uint16
	for _, s := range segs {
		at = at.Add(s.dt)
		if !s.copy {
			id++
		}
		ip := &layers.IPv4{Version: 4, Id: id, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: cli, DstIP: srv}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: cliISN + s.seq, Ack: srvISN + s.ack, Window: s.win, Options: s.opts}
		if s.srv {
			ip.SrcIP, ip.DstIP = srv, cli
			tcp.SrcPort, tcp.DstPort = 80, 40000
			tcp.Seq, tcp.Ack = srvISN+s.seq, cliISN+s.ack
		}
		if err := capturetest.SetFlags(tcp, s.flags); err != nil {
			t.Fatal(err)
		}
		if tcp.URG {
			tcp.Urgent = s.urg
		}
		if !tcp.ACK {
			tcp.Ack = 0
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		sb := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, tcp, gopacket.Payload(make([]byte, s.n)))
		if err != nil {
			t.Fatal(err)
		}
		frame := sb.Bytes()
		if s.icmp {
			frame = icmpFrame(t, frame)
		}
		if sll {
			// LINUX_SLL: packet type, ARPHRD_ETHER, address length and
			// address, protocol; then the IP packet.
			frame = append([]byte{0, s.dir, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 8, 0}, frame[14:]...)
		}
		ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// icmpFrame turns the Ethernet frame of a TCP/IPv4 segment into one of an
// ICMP host unreachable error, from its receiver to its sender, that quotes
// its IP header and first 8 bytes of TCP.
func icmpFrame(t testing.TB, frame []byte) []byte {
	t.Helper()
	quoted := frame[14:]
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.IP(quoted[16:20]), DstIP: net.IP(quoted[12:16])}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, ic, gopacket.Payload(quoted[:28])); err != nil {
		t.Fatal(err)
	}
	return sb.Bytes()
}

var mss1000 = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{3, 0xe8}}}

// md5Sig is a TCP MD5 signature option (RFC 2385) and two NOPs.
var md5Sig = []layers.TCPOption{{OptionType: 19, OptionLength: 18, OptionData: make([]byte, 16)},
	{OptionType: layers.TCPOptionKindNop, OptionLength: 1}, {OptionType: layers.TCPOptionKindNop, OptionLength: 1}}

// handshake is a plain handshake (MSS 1000 both ways, no other options).
// tsOpts is a timestamps option, as Linux writes it (after two nops).
func tsOpts(val, ecr uint32) []layers.TCPOption {
	d := make([]byte, 8)
	binary.BigEndian.PutUint32(d, val)
	binary.BigEndian.PutUint32(d[4:], ecr)
	return []layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: d}}
}

// resentThenAcked is a client's three segments with timestamps, the
// server's SACK of the last two 10 ms later, the first sent again 5 ms
// after that, and then ack, the server's ACK of all three.
func resentThenAcked(ack seg) []seg {
	ms := time.Millisecond
	return append(handshake(),
		seg{flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms, opts: tsOpts(100, 7)},
		seg{flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond, opts: tsOpts(100, 7)},
		seg{flags: "P.", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond, opts: tsOpts(100, 7)},
		seg{srv: true, flags: ".", seq: 1, ack: 1, win: 4000, dt: 10 * ms, opts: append(tsOpts(9, 90), sackOpts(1001, 3001)...)},
		seg{flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: 5 * ms, opts: tsOpts(115, 9)},
		ack)
}

func handshake() []seg {
	return []seg{
		{flags: "S", win: 4000, opts: mss1000},
		{srv: true, flags: "S.", ack: 1, win: 4000, opts: mss1000, dt: 50 * time.Microsecond},
		{flags: ".", seq: 1, ack: 1, win: 4000, dt: 100 * time.Millisecond},
	}
}

// eventLines synthesises the conversation with the given side local and
// returns its event lines.
func eventLines(t *testing.T, segs []seg, local string, opts Options) []string {
	t.Helper()
	hp, err := capture.ParseHostPort(local)
	if err != nil {
		t.Fatal(err)
	}
	data := conversation(t, segs)
	res, err := File("conv.pcap", bytes.NewReader(data), capture.FlowOptions{Local: hp}, opts)
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("%v %v", err, res)
	}
	sameStreamed(t, "conv.pcap", data, capture.FlowOptions{Local: hp}, opts)
	var out []string
	for _, e := range res[0].Script.Events {
		out = append(out, parser.FormatEvent(e))
	}
	roundTrip(t, "conv", parser.Format(res[0].Script), res[0].Script)
	return out
}

func TestConversations(t *testing.T) {
	const client, server = "10.0.0.1:40000", "10.0.0.2:80"
	ms := time.Millisecond
	cases := []struct {
		name  string
		local string
		segs  []seg
		opts  Options
		want  []string // lines that must appear in this order (others may come between)
		never []string // substrings that must not appear
	}{{
		name: "half close: the client shuts down writing and still reads", local: client,
		segs: append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: ms},
			seg{flags: "F.", seq: 101, ack: 1, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 102, win: 4000, dt: ms},
			seg{srv: true, flags: "P.", seq: 1, ack: 102, n: 300, win: 4000, dt: ms},
			seg{flags: ".", seq: 102, ack: 301, win: 4000, dt: 10 * time.Microsecond},
			seg{srv: true, flags: "F.", seq: 301, ack: 102, win: 4000, dt: ms},
			seg{flags: ".", seq: 102, ack: 302, win: 4000, dt: 10 * time.Microsecond}),
		want: []string{"+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
			"+0 fcntl(3, F_SETFL, O_RDWR) = 0", "write(3, ..., 100) = 100", "shutdown(3, SHUT_WR) = 0",
			"+0 > F. 101:101(0) ack 1", "< P. 1:301(300) ack 102 win 4000", "+0 read(3, ..., 300) = 300",
			"+0 > . 102:102(0) ack 301", "< F. 301:301(0) ack 102 win 4000"},
		never: []string{"close("},
	}, {
		name: "reordered and retransmitted inbound data: one read once the hole is filled", local: server,
		segs: append(handshake(),
			seg{flags: "P.", seq: 501, ack: 1, n: 500, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 1, n: 500, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 1, n: 500, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 1001, win: 4000, dt: 10 * time.Microsecond}),
		want: []string{"accept(3, ..., ...) = 4", "< P. 501:1001(500) ack 1 win 4000", "< . 1:501(500) ack 1 win 4000",
			"< . 1:501(500) ack 1 win 4000", "+0 read(4, ..., 1000) = 1000", "+0 > . 1:1(0) ack 1001"},
	}, {
		name: "a packet seen leaving and arriving (-i any on loopback) is left out", local: server,
		segs: append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms, dir: 4},
			seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: 5 * time.Microsecond, copy: true},
			seg{srv: true, flags: ".", seq: 1, ack: 11, win: 4000, dt: 10 * time.Microsecond, dir: 4}),
		want:  []string{"+0.001000 < P. 1:11(10) ack 1 win 4000", "+0 read(4, ..., 10) = 10", "+0 > . 1:1(0) ack 11"},
		never: []string{"+0.000005 <"},
	}, {
		name: "identical duplicate ACKs are all kept", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 1, win: 4000, dt: 100 * ms},
			seg{flags: ".", seq: 1, ack: 1, win: 4000, copy: true},
			seg{flags: ".", seq: 1, ack: 1, win: 4000, copy: true}),
		want: []string{"+0.100000 < . 1:1(0) ack 1 win 4000", "+0 < . 1:1(0) ack 1 win 4000", "+0 < . 1:1(0) ack 1 win 4000"},
	}, {
		name: "data after close draws the kernel's RST: close, not shutdown", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "F.", seq: 1, ack: 1, win: 4000, dt: ms},
			seg{flags: "P.", seq: 1, ack: 2, n: 10, win: 4000, dt: ms},
			seg{srv: true, flags: "R", seq: 2, win: 0, dt: 10 * time.Microsecond}),
		want:  []string{"+0.001000 close(4) = 0", "+0 > F. 1:1(0) ack 1", "< P. 1:11(10) ack 2 win 4000", "+0 > R 2:2(0)"},
		never: []string{"shutdown", "SO_LINGER", "read("},
	}, {
		name: "refused connect: the client learns ECONNREFUSED", local: client,
		segs: []seg{{flags: "S", win: 4000, opts: mss1000}, {srv: true, flags: "R.", ack: 1, dt: 50 * time.Microsecond}},
		// Without a SYN-ACK the remote ISN is unknown: the RST's seq stays raw.
		want: []string{"> S 0:0(0) <mss 1000>", "< R. 5000:5000(0) ack 1 win 0", "+0 connect(3, ..., ...) = -1 ECONNREFUSED (Connection refused)"},
	}, {
		name: "a RST in mid-stream fails the next read; not a teardown", local: server,
		segs: append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 11, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: "R.", seq: 11, ack: 1, win: 4000, dt: 2 * time.Second}),
		want: []string{"+0 read(4, ..., 10) = 10", "+2 < R. 11:11(0) ack 1 win 4000",
			"+0 read(4, ..., 10) = -1 ECONNRESET (Connection reset by peer)"},
	}, {
		name: "unread data (the window shrinks) is read before a RST fails the next read", local: server,
		segs: append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 1001, win: 3000, dt: 10 * time.Microsecond},
			seg{flags: "P.", seq: 1001, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 2001, win: 2000, dt: 10 * time.Microsecond},
			seg{flags: "R.", seq: 2001, ack: 1, win: 4000, dt: ms}),
		want: []string{"+0 > . 1:1(0) ack 1001", "< P. 1001:2001(1000) ack 1 win 4000", "+0 > . 1:1(0) ack 2001",
			"+0 read(4, ..., 2000) = 2000", "< R. 2001:2001(0) ack 1 win 4000", "+0 read(4, ..., 2000) = -1 ECONNRESET (Connection reset by peer)"},
	}, {
		name: "a RST after the remote's FIN: the read still sees the end of file", local: server,
		segs: append(handshake(),
			seg{flags: "FP.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 12, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: "R.", seq: 12, ack: 1, win: 4000, dt: ms}),
		want: []string{"< FP. 1:11(10) ack 1 win 4000", "+0 read(4, ..., 10) = 10", "+0~+0.008000 > . 1:1(0) ack 12",
			"< R. 12:12(0) ack 1 win 4000", "+0 read(4, ..., 10) = 0"},
	}, {
		name: "a TSO super-segment stays whole; data and FIN in one segment", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 2500, win: 4000, dt: ms},
			seg{srv: true, flags: "FP.", seq: 2501, ack: 1, n: 100, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: ".", seq: 1, ack: 2602, win: 4000, dt: ms}),
		want: []string{"write(4, ..., 2500) = 2500", "+0 > P. 1:2501(2500) ack 1", "+0.000010 write(4, ..., 100) = 100",
			"+0 close(4) = 0", "+0 > FP. 2501:2601(100) ack 1"},
	}, {
		name: "the segments of one write are gathered into one expectation", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 10 * time.Microsecond},
			seg{srv: true, flags: "P.", seq: 2001, ack: 1, n: 500, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: ".", seq: 1, ack: 2501, win: 4000, dt: ms}),
		want:  []string{"+0.001000 write(4, ..., 2500) = 2500", "+0 > P. 1:2501(2500) ack 1", "+0.001000^ < . 1:1(0) ack 2501 win 4000"},
		never: []string{"1001:"},
	}, {
		name: "a client closed in SYN_SENT: the kernel answers the SYN-ACK with a bare RST", local: client,
		segs: []seg{{flags: "S", win: 4000, opts: mss1000},
			{srv: true, flags: "S.", ack: 1, win: 4000, opts: mss1000, dt: 100 * ms},
			{flags: "R", seq: 1, dt: 10 * time.Microsecond}},
		want:  []string{"> S 0:0(0) <mss 1000>", "+0 close(3) = 0", "< S. 0:0(0) ack 1 win 4000 <mss 1000>", "+0 > R 1:1(0)"},
		never: []string{"fcntl(3, F_SETFL, O_RDWR) = 0", "SO_LINGER"},
	}, {
		name: "Fast Open server: accept with the SYN's data, before the handshake completes", local: server,
		segs: []seg{{flags: "S", n: 10, win: 4000, opts: mss1000},
			{srv: true, flags: "S.", ack: 11, win: 4000, opts: mss1000, dt: 50 * time.Microsecond},
			{flags: ".", seq: 11, ack: 1, win: 4000, dt: ms}},
		want: []string{"< S 0:10(10) win 4000 <mss 1000>", "+0 > S. 0:0(0) ack 11 <mss 1000>", "+0 accept(3, ..., ...) = 4",
			"+0 read(4, ..., 10) = 10", "< . 11:11(0) ack 1 win 4000"},
	}, {
		name: "data clocked out by ACKs is one write; a delayed ACK gets a time range", local: server,
		segs: append(handshake(),
			seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 11, win: 4000, dt: 40 * ms},
			seg{srv: true, flags: ".", seq: 1, ack: 11, n: 1000, win: 4000, dt: 100 * ms},
			seg{flags: ".", seq: 11, ack: 1001, win: 4000, dt: 20 * ms},
			seg{srv: true, flags: ".", seq: 1001, ack: 11, n: 1000, win: 4000, dt: 10 * time.Microsecond},
			seg{srv: true, flags: "P.", seq: 2001, ack: 11, n: 500, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: ".", seq: 11, ack: 2501, win: 4000, dt: 20 * ms}),
		want: []string{"+0.040000~+0.048000 > . 1:1(0) ack 11", "+0 read(4, ..., 10) = 10", "+0.100000 write(4, ..., 2500) = 2500",
			"+0 > . 1:1001(1000) ack 11", "+0.020000^ < . 11:11(0) ack 1001 win 4000", "+0 > P. 1001:2501(1500) ack 11"},
		never: []string{"write(4, ..., 1000)", "write(4, ..., 1500)"},
	}, {
		name: "a resent run keeps the PSH the capture shows at its end", local: client,
		segs: append(handshake(),
			seg{flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond},
			seg{flags: "P.", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond},
			seg{srv: true, flags: ".", seq: 1, ack: 1, win: 4000, dt: ms, opts: sackOpts(2001, 3001)},
			seg{flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: 5 * ms},
			seg{flags: "P.", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond},
			seg{srv: true, flags: ".", seq: 1, ack: 3001, win: 4000, dt: ms}),
		want: []string{"> P. 1:3001(3000) ack 1", "> . 1:1001(1000) ack 1", "> P. 1001:2001(1000) ack 1"},
	}, {
		// The path duplicated the third segment: the D-SACK inside the
		// next block reports nothing new, and answers that transmission.
		name: "a D-SACK of a duplicate is anchored to the transmission", local: client,
		segs: append(handshake(),
			seg{flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond},
			seg{flags: "P.", seq: 2001, ack: 1, n: 1000, win: 4000, dt: 5 * time.Microsecond},
			seg{srv: true, flags: ".", seq: 1, ack: 1, win: 4000, dt: 10 * ms, opts: sackOpts(1001, 3001)},
			seg{srv: true, flags: ".", seq: 1, ack: 1, win: 4000, dt: 200 * time.Microsecond, opts: sackOpts(2001, 3001, 1001, 3001)},
			seg{srv: true, flags: ".", seq: 1, ack: 3001, win: 4000, dt: ms}),
		want: []string{"+0.010000^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:3001>",
			"+0.010200^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 2001:3001 1001:3001>"},
	}, {
		// The path held the first segment back: the peer's ACK of it,
		// 1 ms after the retransmission, echoes the first transmission's
		// TS val, so it answers that one (16 ms before), not the
		// retransmission.
		name: "an ACK that echoes an earlier transmission's TS val answers that one", local: client,
		segs:  resentThenAcked(seg{srv: true, flags: ".", seq: 1, ack: 3001, win: 4000, dt: ms, opts: tsOpts(10, 100)}),
		want:  []string{"+0.016000^ < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 10 ecr 100>"},
		never: []string{"^2 <"},
	}, {
		// The first transmission filled the hole (the ecr), and the
		// retransmission's copy came after it: the D-SACK reports that
		// copy, which the ACK answers.
		name: "an ACK that reports the retransmission's copy answers it", local: client,
		segs: resentThenAcked(seg{srv: true, flags: ".", seq: 1, ack: 3001, win: 4000, dt: ms, opts: append(tsOpts(10, 100), sackOpts(1, 1001)...)}),
		want: []string{"+0.001000^2 < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 10 ecr 100,nop,nop,sack 1:1001>"},
	}, {
		name: "an ACK that echoes the retransmission's TS val answers it", local: client,
		segs: resentThenAcked(seg{srv: true, flags: ".", seq: 1, ack: 3001, win: 4000, dt: 10 * ms, opts: tsOpts(19, 115)}),
		want: []string{"+0.010000^2 < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 19 ecr 115>"},
	}, {
		name: "strict: outbound windows and options exact", local: server, opts: Options{Strict: true},
		segs: handshake(),
		want: []string{"+0 > S. 0:0(0) ack 1 win 4000 <mss 1000>"},
	}, {
		name: "an outbound retransmission needs no write", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: 300 * ms},
			seg{flags: ".", seq: 1, ack: 11, win: 4000, dt: ms}),
		want: []string{"write(4, ..., 10) = 10", "+0 > P. 1:11(10) ack 1", "+0.296000~+0.304000 > P. 1:11(10) ack 1",
			"+0.001000^2 < . 1:1(0) ack 11 win 4000"},
	}, {
		name: "a short segment leaves while an earlier one is unacknowledged: Nagle was off", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{srv: true, flags: "P.", seq: 11, ack: 1, n: 20, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: ".", seq: 1, ack: 31, win: 4000, dt: ms}),
		want: []string{"+0 accept(3, ..., ...) = 4", "+0 setsockopt(4, SOL_TCP, TCP_NODELAY, [1], 4) = 0",
			"write(4, ..., 10) = 10", "+0 > P. 1:11(10) ack 1", "write(4, ..., 20) = 20", "+0 > P. 11:31(20) ack 1"},
	}, {
		name: "short segments acknowledged one by one: Nagle may be on", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 11, win: 4000, dt: ms},
			seg{srv: true, flags: "P.", seq: 11, ack: 1, n: 20, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 31, win: 4000, dt: ms}),
		want:  []string{"write(4, ..., 10) = 10", "write(4, ..., 20) = 20"},
		never: []string{"TCP_NODELAY"},
	}, {
		name: "the urgent byte at the end is not read", local: server,
		segs: append(handshake(),
			seg{flags: "UP.", seq: 1, ack: 1, n: 100, urg: 100, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 101, win: 4000, dt: 10 * time.Microsecond}),
		want:  []string{"< PU. 1:101(100) ack 1 win 4000 urg 100", "+0 read(4, ..., 99) = 99"},
		never: []string{"read(4, ..., 100)"},
	}, {
		name: "a read stops before the urgent byte; the next skips it", local: server,
		segs: append(handshake(),
			seg{flags: "UP.", seq: 1, ack: 1, n: 100, urg: 40, win: 4000, dt: ms},
			seg{srv: true, flags: ".", seq: 1, ack: 101, win: 4000, dt: 10 * time.Microsecond}),
		want: []string{"+0 read(4, ..., 39) = 39", "+0 read(4, ..., 60) = 60"},
	}, {
		name: "a short tail that waited for an ACK is written at the ACK", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 1001, win: 4000, dt: 10 * ms},
			seg{srv: true, flags: "P.", seq: 1001, ack: 1, n: 150, win: 4000, dt: 10 * time.Microsecond},
			seg{flags: ".", seq: 1, ack: 1151, win: 4000, dt: 10 * ms}),
		want: []string{"write(4, ..., 1000) = 1000", "+0 > P. 1:1001(1000) ack 1", "< . 1:1(0) ack 1001 win 4000",
			"+0.000010 write(4, ..., 150) = 150", "+0 > P. 1001:1151(150) ack 1"},
		never: []string{"write(4, ..., 1150)"},
	}, {
		name: "the last new data without PSH: the write had more, still queued", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: ".", seq: 1, ack: 1, n: 1000, win: 4000, dt: ms},
			seg{flags: ".", seq: 1, ack: 1001, win: 4000, dt: 10 * ms}),
		want: []string{"write(4, ..., 2000) = 2000", "+0 > . 1:1001(1000) ack 1"},
	}, {
		name: "a retransmission without PSH shows a super-segment's PSH was not a write's end", local: server,
		segs: append(handshake(),
			seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 2000, win: 4000, dt: ms},
			seg{srv: true, flags: "P.", seq: 2001, ack: 1, n: 2000, win: 4000, dt: 10 * time.Microsecond},
			seg{srv: true, flags: ".", seq: 1001, ack: 1, n: 1000, win: 4000, dt: 300 * ms},
			seg{flags: ".", seq: 1, ack: 4001, win: 4000, dt: ms}),
		want:  []string{"write(4, ..., 4000) = 4000", "+0 > P. 1:4001(4000) ack 1", "> . 1001:2001(1000) ack 1"},
		never: []string{"write(4, ..., 2000)"},
	}, {
		name: "an MD5-signed ACK to a socket without a key is dropped: the next ACK completes the handshake", local: server,
		segs: []seg{{flags: "S", win: 4000, opts: mss1000},
			{srv: true, flags: "S.", ack: 1, win: 4000, opts: mss1000, dt: 50 * time.Microsecond},
			{flags: ".", seq: 1, ack: 1, win: 4000, opts: md5Sig, dt: 10 * ms},
			{flags: ".", seq: 1, ack: 1, win: 4000, dt: ms}},
		want: []string{"+0.011000^ < . 1:1(0) ack 1 win 4000", "+0 accept(3, ..., ...) = 4"},
	}, {
		name: "an ICMP error ends a Fast Open child before accept: accepted after it, the ACK draws a bare RST", local: server,
		segs: []seg{{flags: "S", n: 10, win: 4000, opts: mss1000},
			{srv: true, flags: "S.", ack: 11, win: 4000, opts: mss1000, dt: 50 * time.Microsecond},
			{srv: true, icmp: true, flags: "S.", ack: 11, win: 4000, dt: 100 * ms},
			{flags: ".", seq: 11, ack: 1, win: 4000, dt: 100 * ms},
			{srv: true, flags: "R", seq: 1, dt: 10 * time.Microsecond}},
		want: []string{"+0 > S. 0:0(0) ack 11 <mss 1000>", "+0.100000 < icmp unreachable host_unreachable [0:0(0)]",
			"+0 accept(3, ..., ...) = 4", "+0 read(4, ..., 10) = 10", "< . 11:11(0) ack 1 win 4000", "+0 > R 1:1(0)"},
		never: []string{"SO_LINGER", "close("},
	}, {
		name: "an ICMP error drops a handshake's request: no accept", local: server,
		segs: append(handshake()[:2],
			seg{srv: true, icmp: true, flags: "S.", ack: 1, win: 4000, dt: 100 * ms},
			seg{flags: ".", seq: 1, ack: 1, win: 4000, dt: 100 * ms},
			seg{srv: true, flags: "R", seq: 1, dt: 10 * time.Microsecond}),
		want:  []string{"< icmp unreachable host_unreachable [0:0(0)]", "< . 1:1(0) ack 1 win 4000", "+0 > R 1:1(0)"},
		never: []string{"accept(", "SO_LINGER"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := eventLines(t, c.segs, c.local, c.opts)
			text := strings.Join(lines, "\n")
			i := 0
			for _, l := range lines {
				if i < len(c.want) && strings.HasSuffix(l, c.want[i]) {
					i++
				}
			}
			if i < len(c.want) {
				t.Errorf("missing %q (in order) in:\n%s", c.want[i], text)
			}
			for _, n := range c.never {
				if strings.Contains(text, n) {
					t.Errorf("%q should not appear in:\n%s", n, text)
				}
			}
		})
	}
}

// TestSilentPeer: a client whose SYNs nobody answered (a firewall dropped
// them). Its kernel is the only one the capture shows acting: it is the
// local side, and the script checks its SYN retransmissions; the silent
// server, named with --local, has nothing to check.
func TestSilentPeer(t *testing.T) {
	var segs []seg
	for _, dt := range []time.Duration{0, time.Second, time.Second, 2 * time.Second} {
		segs = append(segs, seg{flags: "S", win: 4000, opts: mss1000, dt: dt})
	}
	pcap := conversation(t, segs)
	res, err := File("fw.pcap", bytes.NewReader(pcap), capture.FlowOptions{}, Options{})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("%v %v", err, res)
	}
	if got := res[0].Flow.LocalEndpoint().String(); got != "10.0.0.1:40000" {
		t.Errorf("local side %s, want the client", got)
	}
	text := string(parser.Format(res[0].Script))
	if n := strings.Count(text, "> S 0:0(0) <mss 1000>"); n != 4 {
		t.Errorf("%d SYN expectations, want 4:\n%s", n, text)
	}
	if why := NothingToCheck(res[0].Script, res[0].Flow); why != "" {
		t.Errorf("the client's script checks nothing: %s", why)
	}
	srv, _ := capture.ParseHostPort("10.0.0.2:80")
	res, err = File("fw.pcap", bytes.NewReader(pcap), capture.FlowOptions{Local: srv}, Options{})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("%v %v", err, res)
	}
	if why := NothingToCheck(res[0].Script, res[0].Flow); !strings.Contains(why, "no packet that the local side 10.0.0.2:80 sent") {
		t.Errorf("the silent server's script: %q, want nothing to check", why)
	}
}

// TestFastOpenCookie: a server's Fast Open cookie follows its secret key:
// the script expects a cookie of any value (`FO *`), or, in packetdrill's
// language, leaves the SYN-ACK's options unchecked; the namespace gets a
// Fast Open server that hands out cookies.
func TestFastOpenCookie(t *testing.T) {
	req := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{3, 0xe8}},
		{OptionType: 34, OptionLength: 2}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}
	cookie := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{3, 0xe8}},
		{OptionType: 34, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}
	segs := []seg{
		{flags: "S", win: 4000, opts: req},
		{srv: true, flags: "S.", ack: 1, win: 4000, opts: cookie, dt: 50 * time.Microsecond},
		{flags: ".", seq: 1, ack: 1, win: 4000, dt: 100 * time.Millisecond},
	}
	for _, tc := range []struct {
		exact bool
		want  string
	}{{false, "+0 > S. 0:0(0) ack 1 <mss 1000,FO *,nop,nop>"}, {true, "+0 > S. 0:0(0) ack 1 <...>"}} {
		lines := eventLines(t, segs, "10.0.0.2:80", Options{Exact: tc.exact})
		if !strings.Contains(strings.Join(lines, "\n"), tc.want) {
			t.Errorf("exact %v: no %q in:\n%s", tc.exact, tc.want, strings.Join(lines, "\n"))
		}
	}
	res, err := File("tfo.pcap", bytes.NewReader(conversation(t, segs)), capture.FlowOptions{}, Options{})
	if err != nil || len(res) != 1 {
		t.Fatalf("%v %v", err, res)
	}
	if init := res[0].Script.Init; init == nil || !strings.Contains(init.Text, "tcp_fastopen=0x402") {
		t.Errorf("init %+v: want a Fast Open server that hands out cookies", init)
	}
}
