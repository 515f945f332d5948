package capture

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

const (
	cli = "10.0.0.1:40000"
	srv = "10.0.0.2:8080"
)

// pk is a packet for flow tests, built without a file.
type pk struct {
	at       time.Duration
	from, to string
	flags    tcpwire.Flags
	seq, ack uint32
	n        int // payload length
	ttl      uint8
	dir      Direction
	ck       tcpwire.ChecksumState
	tsVal    uint32
	tsEcr    uint32
}

func (x pk) packet(i int) *Packet {
	s, d := netip.MustParseAddrPort(x.from), netip.MustParseAddrPort(x.to)
	ttl := x.ttl
	if ttl == 0 {
		ttl = 64
	}
	ck := x.ck
	if ck == tcpwire.ChecksumUnknown {
		ck = tcpwire.ChecksumGood
	}
	p := &Packet{Index: i + 1, Time: t0.Add(x.at), CaptureDir: x.dir, Datagram: tcpwire.Datagram{PayloadLen: x.n,
		IP:  tcpwire.IPHeader{Version: 4, Proto: tcpwire.ProtoTCP, Src: s.Addr(), Dst: d.Addr(), TTL: ttl},
		TCP: tcpwire.TCPHeader{SrcPort: s.Port(), DstPort: d.Port(), Seq: tcpwire.Seq(x.seq), Ack: tcpwire.Seq(x.ack), Flags: x.flags, ChecksumState: ck, Window: 1000}}}
	if x.tsVal != 0 {
		p.TCP.Options = []byte{1, 1, 8, 10, byte(x.tsVal >> 24), byte(x.tsVal >> 16), byte(x.tsVal >> 8), byte(x.tsVal), byte(x.tsEcr >> 24), byte(x.tsEcr >> 16), byte(x.tsEcr >> 8), byte(x.tsEcr)}
	}
	return p
}

func track(opts FlowOptions, pks []pk) []*Flow {
	tr := NewTracker(opts)
	for i, x := range pks {
		tr.Add(x.packet(i))
	}
	tr.Close()
	return tr.Flows()
}

// conn is a whole connection: handshake, a request, a response, close.
func conn(at time.Duration, c, s string, isn uint32) []pk {
	return []pk{
		{at: at, from: c, to: s, flags: tcpwire.FlagSYN, seq: isn},
		{at: at + 1, from: s, to: c, flags: tcpwire.FlagSYN | tcpwire.FlagACK, seq: 5000, ack: isn + 1},
		{at: at + 2, from: c, to: s, flags: tcpwire.FlagACK, seq: isn + 1, ack: 5001},
		{at: at + 3, from: c, to: s, flags: tcpwire.FlagACK | tcpwire.FlagPSH, seq: isn + 1, ack: 5001, n: 10},
		{at: at + 4, from: s, to: c, flags: tcpwire.FlagACK | tcpwire.FlagPSH, seq: 5001, ack: isn + 11, n: 20},
		{at: at + 5, from: c, to: s, flags: tcpwire.FlagACK | tcpwire.FlagFIN, seq: isn + 11, ack: 5021},
		{at: at + 6, from: s, to: c, flags: tcpwire.FlagACK | tcpwire.FlagFIN, seq: 5021, ack: isn + 12},
		{at: at + 7, from: c, to: s, flags: tcpwire.FlagACK, seq: isn + 12, ack: 5022},
	}
}

func TestFlowBasics(t *testing.T) {
	flows := track(FlowOptions{}, conn(0, cli, srv, 100))
	if len(flows) != 1 {
		t.Fatalf("%d flows", len(flows))
	}
	f := flows[0]
	if f.A.String() != cli || f.B.String() != srv || !f.Complete() || f.ISN != [2]tcpwire.Seq{100, 5000} || f.HasISN != [2]bool{true, true} {
		t.Errorf("flow %+v", f)
	}
	if f.Bytes != [2]int64{10, 20} || f.Packets.Len() != 8 || f.Duration() != 7 {
		t.Errorf("bytes %v packets %d duration %v", f.Bytes, f.Packets.Len(), f.Duration())
	}
	if f.Packets.At(1).From != SideB || f.Packets.At(2).From != SideA {
		t.Errorf("directions %v %v", f.Packets.At(1).From, f.Packets.At(2).From)
	}
	if f.LocalEndpoint().String() != srv || !f.LocalGuessed || !strings.Contains(f.LocalReason, "guessed: it received the SYN") {
		t.Errorf("local %s (%s)", f.LocalEndpoint(), f.LocalReason)
	}
}

func TestFlowSplitting(t *testing.T) {
	retrans := conn(0, cli, srv, 100)
	retrans = append(retrans[:1], append([]pk{{at: 0, from: cli, to: srv, flags: tcpwire.FlagSYN, seq: 100}}, retrans[1:]...)...)
	established := conn(0, cli, srv, 100)[:5]
	reordered := conn(0, cli, srv, 100)
	reordered[0], reordered[1] = reordered[1], reordered[0]
	rst := []pk{
		{from: cli, to: srv, flags: tcpwire.FlagSYN, seq: 1},
		{at: 1, from: srv, to: cli, flags: tcpwire.FlagRST | tcpwire.FlagACK, ack: 2},
		{at: 2, from: cli, to: srv, flags: tcpwire.FlagSYN, seq: 1},
	}
	for _, tc := range []struct {
		name  string
		pks   []pk
		flows int
		a     string
	}{
		{"reuse after close", append(conn(0, cli, srv, 100), conn(10, cli, srv, 900)...), 2, cli},
		{"retransmitted SYN", retrans, 1, cli},
		{"new ISN after data", append(established, conn(10, cli, srv, 900)...), 2, cli},
		{"new SYN after RST", rst, 2, cli},
		{"SYN-ACK before SYN", reordered, 1, cli},
		{"midstream: first sender", conn(0, cli, srv, 100)[4:], 1, srv},
		{"two tuples", append(conn(0, cli, srv, 100), conn(1, "10.0.0.1:40001", srv, 7)...), 2, cli},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flows := track(FlowOptions{}, tc.pks)
			if len(flows) != tc.flows {
				t.Fatalf("%d flows, want %d", len(flows), tc.flows)
			}
			n := 0
			for i, f := range flows {
				n += f.Packets.Len()
				if f.Index != i+1 || f.A.Addr() != netip.MustParseAddrPort(tc.a).Addr() {
					t.Errorf("flow %d: index %d A %s", i+1, f.Index, f.A)
				}
			}
			if n != len(tc.pks) {
				t.Errorf("%d packets in flows, want %d", n, len(tc.pks))
			}
			// Keeping the packets of the second flow only splits alike
			// and lists the same rows.
			some := track(FlowOptions{Keep: func(f *Flow) bool { return f.Index == 2 }}, tc.pks)
			for i, f := range some {
				if Row(f) != Row(flows[i]) || f.KeptPackets() != (f.Index == 2) || f.Packets.Len() != map[bool]int{true: f.Count}[f.Index == 2] {
					t.Errorf("keeping flow 2: flow %d (%d of %d packets kept): %+v, want %+v", f.Index, f.Packets.Len(), f.Count, Row(f), Row(flows[i]))
				}
			}
		})
	}
}

func TestLocalSide(t *testing.T) {
	withDir := conn(0, cli, srv, 1)
	for i := range withDir {
		if withDir[i].from == cli {
			withDir[i].dir = DirOut
		} else {
			withDir[i].dir = DirIn
		}
	}
	offload := conn(0, cli, srv, 1)
	for i := range offload {
		if offload[i].from == cli {
			offload[i].ck = tcpwire.ChecksumPartial
		}
	}
	ttl := conn(0, cli, srv, 1)
	for i := range ttl {
		if ttl[i].from == srv {
			ttl[i].ttl = 57
		}
	}
	echo := []pk{
		{at: 0, from: cli, to: srv, flags: tcpwire.FlagSYN, seq: 1, tsVal: 10},
		{at: 20 * time.Millisecond, from: srv, to: cli, flags: tcpwire.FlagSYN | tcpwire.FlagACK, ack: 2, tsVal: 500, tsEcr: 10},
		{at: 20*time.Millisecond + 30*time.Microsecond, from: cli, to: srv, flags: tcpwire.FlagACK, seq: 2, ack: 1, tsVal: 11, tsEcr: 500},
	}
	noHandshake := conn(0, cli, srv, 1)[3:5]
	// Without timestamps, the handshake's gaps: the round trip before the
	// SYN-ACK on the client, before the ACK on the server.
	hsAt := func(synack, ack time.Duration) []pk {
		c := conn(0, cli, srv, 1)
		c[1].at, c[2].at = synack, synack+ack
		for i := 3; i < len(c); i++ {
			c[i].at = c[2].at + time.Duration(i)*time.Microsecond
		}
		return c
	}
	retransSYN := append([]pk{{at: 0, from: cli, to: srv, flags: tcpwire.FlagSYN, seq: 1}}, hsAt(30*time.Millisecond, 40*time.Microsecond)...)
	// The server's packet comes first: the SYN after it swaps the sides.
	lateSYN := append([]pk{{at: 0, from: srv, to: cli, flags: tcpwire.FlagACK, seq: 4000, ack: 1, dir: DirIn}}, withDir...)
	for _, tc := range []struct {
		name   string
		pks    []pk
		opts   FlowOptions
		local  string
		reason string
	}{
		{"--local", conn(0, cli, srv, 1), FlowOptions{Local: HostPort{Addr: netip.MustParseAddr("10.0.0.1")}}, cli, "--local 10.0.0.1"},
		{"--remote", conn(0, cli, srv, 1), FlowOptions{Remote: HostPort{netip.MustParseAddr("10.0.0.2"), 8080}}, cli, "--remote 10.0.0.2:8080"},
		{"--local wins over direction", withDir, FlowOptions{Local: HostPort{netip.MustParseAddr("10.0.0.2"), 8080}}, srv, "--local"},
		{"capture direction", withDir, FlowOptions{}, cli, "outgoing"},
		{"capture direction, SYN late", lateSYN, FlowOptions{}, cli, "marks 5 of its packets outgoing and 4 of the peer's incoming"},
		{"checksum offload", offload, FlowOptions{}, cli, "TX offload"},
		{"initial TTL", ttl, FlowOptions{}, cli, "TTL 64"},
		{"echo delay", echo, FlowOptions{}, cli, "path delay"},
		{"handshake delay, client", hsAt(30*time.Millisecond, 40*time.Microsecond), FlowOptions{}, cli, "its ACK followed the SYN-ACK within 40µs, which came 30ms after its SYN"},
		{"handshake delay, server", hsAt(20*time.Microsecond, 30*time.Millisecond), FlowOptions{}, srv, "its SYN-ACK followed the SYN within 20µs"},
		{"handshake delay, too close", hsAt(2*time.Millisecond, 300*time.Microsecond), FlowOptions{}, srv, "received the SYN"},
		{"handshake delay, SYN retransmitted", retransSYN, FlowOptions{}, srv, "received the SYN"},
		{"server", conn(0, cli, srv, 1), FlowOptions{}, srv, "received the SYN"},
		{"--local elsewhere", conn(0, cli, srv, 1), FlowOptions{Local: HostPort{Addr: netip.MustParseAddr("10.9.9.9")}}, srv, "received the SYN (--local/--remote match neither end)"},
		{"lower port", noHandshake, FlowOptions{}, srv, "lower port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := track(tc.opts, tc.pks)[0]
			if f.LocalEndpoint().String() != tc.local || !strings.Contains(f.LocalReason, tc.reason) {
				t.Errorf("local %s (%s), want %s (%s)", f.LocalEndpoint(), f.LocalReason, tc.local, tc.reason)
			}
			// Without the packets, the counters gathered on the way choose alike.
			light := tc.opts
			light.NoPackets = true
			g := track(light, tc.pks)[0]
			if g.Local != f.Local || g.LocalReason != f.LocalReason || g.LocalGuessed != f.LocalGuessed || g.Count != f.Packets.Len() || g.Packets.Len() != 0 {
				t.Errorf("without packets: local %s (%s), %d packets counted, %d kept", g.LocalEndpoint(), g.LocalReason, g.Count, g.Packets.Len())
			}
			// Only the fallbacks are guesses, and they say so.
			if guess := strings.HasPrefix(f.LocalReason, "guessed: "); guess != f.LocalGuessed || guess != (tc.name == "server" || tc.name == "--local elsewhere" || tc.name == "lower port" || strings.HasPrefix(tc.reason, "received the SYN")) {
				t.Errorf("LocalGuessed %v, reason %q", f.LocalGuessed, f.LocalReason)
			}
		})
	}
}

func TestStreamingTracker(t *testing.T) {
	var done []*Flow
	tr := NewTracker(FlowOptions{Done: func(f *Flow) { done = append(done, f) }, Linger: time.Second})
	pks := conn(0, cli, srv, 100)
	pks = append(pks, conn(time.Minute, "10.0.0.1:40001", srv, 7)...)
	pks = append(pks, conn(2*time.Minute, "10.0.0.1:40001", srv, 9000)...)
	pks = append(pks, conn(2*time.Minute, "10.0.0.1:40002", srv, 1)[:3]...)
	for i, x := range pks {
		tr.Add(x.packet(i))
	}
	if len(done) != 2 || done[0].Index != 1 || done[1].Index != 2 {
		t.Fatalf("before Close: %d flows done", len(done))
	}
	tr.Close()
	if len(done) != 4 || len(tr.Flows()) != 0 || len(tr.table) != 0 {
		t.Fatalf("after Close: %d done, %d kept, %d in table", len(done), len(tr.Flows()), len(tr.table))
	}
	for _, f := range done {
		if f.LocalReason == "" {
			t.Errorf("flow %d has no local side", f.Index)
		}
	}
}

// TestRelease checks that flows built in storage given back by Release
// hold what a tracker without it gives them.
func TestRelease(t *testing.T) {
	var pks []pk
	for i := range 12 {
		c := conn(time.Duration(i)*2*time.Second, fmt.Sprintf("10.0.0.1:%d", 40000+i), srv, uint32(100*i))
		if i%3 == 0 {
			// Late ACKs: more packets than the storage reused holds.
			c = append(c, c[len(c)-1], c[len(c)-1], c[len(c)-1], c[len(c)-1], c[len(c)-1])
		}
		pks = append(pks, c...)
	}
	packet := func(i int) *Packet {
		p := pks[i].packet(i)
		p.Payload = bytes.Repeat([]byte{byte(i)}, p.PayloadLen)
		return p
	}
	want := NewTracker(FlowOptions{PayloadBytes: 4})
	got := map[int][]FlowPacket{}
	payloads := map[int][][]byte{}
	released := map[*FlowPacket]bool{}
	reused := 0
	var tr *Tracker
	tr = NewTracker(FlowOptions{PayloadBytes: 4, Linger: time.Second, Done: func(f *Flow) {
		if released[f.Packets.At(0)] {
			reused++
		}
		released[f.Packets.At(0)] = true
		for _, p := range f.Packets.All() {
			got[f.Index] = append(got[f.Index], *p)
		}
		for i := range f.Packets.Len() {
			payloads[f.Index] = append(payloads[f.Index], f.Payload(i))
		}
		tr.Release(f)
		if f.Packets.Len() != 0 {
			t.Errorf("flow %d: packets kept after Release", f.Index)
		}
	}})
	for i := range pks {
		want.Add(packet(i))
		tr.Add(packet(i))
	}
	want.Close()
	tr.Close()
	for _, f := range want.Flows() {
		g := got[f.Index]
		if len(g) != f.Packets.Len() {
			t.Fatalf("flow %d: %d packets, want %d", f.Index, len(g), f.Packets.Len())
		}
		for i := range g {
			if !reflect.DeepEqual(g[i], *f.Packets.At(i)) {
				t.Fatalf("flow %d packet %d: %+v, want %+v", f.Index, i, g[i], *f.Packets.At(i))
			}
			if p, w := payloads[f.Index][i], f.Payload(i); !bytes.Equal(p, w) || len(w) != min(4, f.Packets.At(i).PayloadLen()) {
				t.Fatalf("flow %d packet %d: payload %q, want %q", f.Index, i, p, w)
			}
		}
	}
	if reused == 0 {
		t.Error("no storage reused")
	}
}

func TestFlowPacketCopy(t *testing.T) {
	tr := NewTracker(FlowOptions{PayloadBytes: 4})
	p := pk{from: cli, to: srv, flags: tcpwire.FlagACK, n: 10, tsVal: 7}.packet(0)
	p.Payload = []byte("0123456789")
	f := tr.Add(p)
	p.Payload[0], p.TCP.Options[4] = 'X', 0xFF
	fp := f.Packets.At(0)
	if string(f.Payload(0)) != "0123" || fp.PayloadLen() != 10 || fp.Options().TSVal != 7 || len(fp.RawOptions()) != 12 {
		t.Errorf("payload %q len %d options %+v", f.Payload(0), fp.PayloadLen(), fp.Options())
	}
	// Options longer than a timestamp's, copied too.
	long := []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3}
	p.TCP.Options = slices.Clone(long)
	fp = tr.Add(p).Packets.At(1)
	p.TCP.Options[2] = 0xFF
	if !bytes.Equal(fp.RawOptions(), long) || fp.Options().TSVal != 9 || fp.Options().NumSACK != 1 {
		t.Errorf("options %x, want %x (%+v)", fp.RawOptions(), long, fp.Options())
	}
	var q FlowPacket
	if err := q.SetOptions(long); err != nil || !bytes.Equal(q.RawOptions(), long) {
		t.Errorf("SetOptions: %v, %x", err, q.RawOptions())
	}
	if err := q.SetOptions(make([]byte, 41)); err == nil {
		t.Error("SetOptions took 41 bytes")
	}
}

// TestFlowPacketPacked checks that the fields a FlowPacket packs (time in
// nanoseconds, packet number and payload length in 32 bits, the IP
// fields in one word) read back as the packet had them.
func TestFlowPacketPacked(t *testing.T) {
	for _, c := range []struct {
		version      uint8
		label        uint32
		df, cut      bool
		index, bytes int
	}{
		{4, 0, true, false, 1, 0},
		{6, 0xFFFFF, false, true, 1<<32 - 1, 65535},
		{6, 0x12345, false, false, 3_000_000_000, 1 << 20},
	} {
		p := pk{from: cli, to: srv, flags: tcpwire.FlagACK, n: c.bytes}.packet(0)
		p.Index, p.Time = c.index, time.Unix(1700000000, 123456789).UTC()
		p.IP.Version, p.IP.FlowLabel, p.IP.DF, p.Truncated, p.IP.TTL, p.IP.TOS = c.version, c.label, c.df, c.cut, 63, 0xB8
		fp := NewTracker(FlowOptions{}).Add(p).Packets.At(0)
		if fp.Index() != c.index || !fp.Time().Equal(p.Time) || fp.PayloadLen() != c.bytes || fp.IPVersion() != c.version ||
			fp.FlowLabel() != c.label || fp.DF() != c.df || fp.Truncated() != c.cut || fp.TTL != 63 || fp.TOS != 0xB8 {
			t.Errorf("%+v: index %d, time %v, payload %d, IPv%d, label %#x, DF %v, truncated %v, TTL %d, TOS %#x", c,
				fp.Index(), fp.Time(), fp.PayloadLen(), fp.IPVersion(), fp.FlowLabel(), fp.DF(), fp.Truncated(), fp.TTL, fp.TOS)
		}
	}
}

func TestWriteFlowTable(t *testing.T) {
	flows := track(FlowOptions{}, append(conn(0, cli, srv, 1), conn(time.Second, "10.0.0.1:40001", srv, 1)[:3]...))
	var b strings.Builder
	if err := WriteFlowTable(&b, flows); err != nil {
		t.Fatal(err)
	}
	want := FlowTableLegend + `
#  LOCAL              REMOTE          PACKETS  BYTES  DURATION  STATE               LOCAL CHOSEN BECAUSE
1  10.0.0.2:8080  <-  10.0.0.1:40000  8        30     0.000000  complete            guessed: it received the SYN
2  10.0.0.2:8080  <-  10.0.0.1:40001  3        0      0.000000  partial (no close)  guessed: it received the SYN
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestParseHostPort(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"10.0.0.1", "10.0.0.1", true},
		{"10.0.0.1:80", "10.0.0.1:80", true},
		{"[fd00::1]:80", "[fd00::1]:80", true},
		{"fd00::1", "fd00::1", true},
		{"[fd00::1]", "fd00::1", true},
		{"host:80", "", false},
		{"", "", false},
	} {
		h, err := ParseHostPort(tc.in)
		if (err == nil) != tc.ok || (tc.ok && h.String() != tc.out) {
			t.Errorf("%q: %v %v", tc.in, h, err)
		}
	}
}

func TestLoopbackCopies(t *testing.T) {
	var pks []pk
	for _, x := range conn(0, "127.0.0.1:40000", "127.0.0.1:8080", 1) {
		out, in := x, x
		out.dir, in.dir = DirOut, DirIn
		pks = append(pks, out, in)
	}
	for _, o := range []FlowOptions{{}, {NoPackets: true}} {
		f := track(o, pks)[0]
		if f.Count != 8 || f.LoopbackCopies != 8 || !f.Complete() {
			t.Errorf("%+v: %d packets, %d copies, %s", o, f.Count, f.LoopbackCopies, flowState(f))
		}
	}
}
