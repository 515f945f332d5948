package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

var (
	le = binary.LittleEndian
	be = binary.BigEndian
	t0 = time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC)
)

// synSpec is a SYN with every option kind the decoder knows.
func synSpec(v6 bool) tcpSpec {
	s := tcpSpec{src: "192.0.2.1", dst: "198.51.100.2", sport: 40000, dport: 8080, seq: 1000, flags: tcpwire.FlagSYN | tcpwire.FlagECE | tcpwire.FlagCWR,
		win: 65535, tos: 0x02, id: 0x4242, payload: []byte("hello"),
		opts: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 7, 0, 0, 0, 0}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
			{OptionType: 34, OptionLength: 6, OptionData: []byte{0xde, 0xad, 0xbe, 0xef}},
		}}
	if v6 {
		s.v6, s.src, s.dst, s.flowLabel = true, "2001:db8::1", "2001:db8::2", 0xABCDE
	}
	return s
}

// readOne reads a file holding one TCP packet and returns a copy of it.
func readOne(t *testing.T, file []byte) (Packet, Stats) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file), "fixture")
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Next()
	if err != nil {
		t.Fatalf("Next: %v (stats %+v)", err, r.Stats())
	}
	got := *p
	got.Payload = bytes.Clone(p.Payload)
	got.TCP.Options = bytes.Clone(p.TCP.Options)
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("second Next: %v, want EOF", err)
	}
	return got, r.Stats()
}

func TestLinkTypes(t *testing.T) {
	ip4, ip6 := synSpec(false).ip(t), synSpec(true).ip(t)
	for _, tc := range []struct {
		name string
		lt   layers.LinkType
		data []byte
		dir  Direction
	}{
		{"ethernet", layers.LinkTypeEthernet, ether(ip4), DirUnknown},
		{"ethernet-ipv6", layers.LinkTypeEthernet, ether(ip6), DirUnknown},
		{"802.1Q", layers.LinkTypeEthernet, ether(ip4, etherVLAN), DirUnknown},
		{"QinQ", layers.LinkTypeEthernet, ether(ip6, etherQinQ, etherVLAN), DirUnknown},
		{"sll-outgoing", layers.LinkTypeLinuxSLL, sll(ip4, sllOutgoing), DirOut},
		{"sll-host", layers.LinkTypeLinuxSLL, sll(ip6, sllHost), DirIn},
		{"sll2-outgoing", layers.LinkTypeLinuxSLL2, sll2(ip4, sllOutgoing), DirOut},
		{"sll2-host", layers.LinkTypeLinuxSLL2, sll2(ip6, sllHost), DirIn},
		{"sll2-otherhost", layers.LinkTypeLinuxSLL2, sll2(ip4, sllOtherHost), DirUnknown},
		{"raw101-v4", layers.LinkTypeRaw, ip4, DirUnknown},
		{"raw101-v6", layers.LinkTypeRaw, ip6, DirUnknown},
		{"raw12", linkTypeRawBSD, ip4, DirUnknown},
		{"raw14", linkTypeRawOpenBSD, ip6, DirUnknown},
		{"ipv4-228", layers.LinkTypeIPv4, ip4, DirUnknown},
		{"ipv6-229", layers.LinkTypeIPv6, ip6, DirUnknown},
		{"null-le-v4", layers.LinkTypeNull, nullHdr(ip4, 2, le), DirUnknown},
		{"null-be-v6-30", layers.LinkTypeNull, nullHdr(ip6, 30, be), DirUnknown},
		{"null-le-v6-24", layers.LinkTypeNull, nullHdr(ip6, 24, le), DirUnknown},
		{"null-le-v6-28", layers.LinkTypeNull, nullHdr(ip6, 28, le), DirUnknown},
		{"loop-v4", layers.LinkTypeLoop, nullHdr(ip4, 2, be), DirUnknown},
		{"nflog-v4", linkTypeNFLOG, nflog(ip4, 2, le), DirUnknown},
		{"nflog-v6", linkTypeNFLOG, nflog(ip6, 10, le), DirUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPcap(tc.lt, le, true, 65535)
			f.add(t0, tc.data, 0)
			p, st := readOne(t, f.buf.Bytes())
			if st.Records != 1 || st.TCP != 1 {
				t.Errorf("stats %+v", st)
			}
			checkSYN(t, &p, bytes.HasSuffix(tc.data, ip6))
			if p.CaptureDir != tc.dir {
				t.Errorf("direction %v, want %v", p.CaptureDir, tc.dir)
			}
			if p.LinkType != tc.lt {
				t.Errorf("link type %v, want %v", p.LinkType, tc.lt)
			}
		})
	}
}

func checkSYN(t *testing.T, p *Packet, v6 bool) {
	t.Helper()
	want := synSpec(v6)
	if !p.Time.Equal(t0) {
		t.Errorf("time %v, want %v", p.Time, t0)
	}
	if p.Src() != netip.AddrPortFrom(netip.MustParseAddr(want.src), want.sport) || p.Dst() != netip.AddrPortFrom(netip.MustParseAddr(want.dst), want.dport) {
		t.Errorf("endpoints %v > %v", p.Src(), p.Dst())
	}
	wantVer := uint8(4)
	if v6 {
		wantVer = 6
		if p.IP.FlowLabel != want.flowLabel {
			t.Errorf("flow label %#x", p.IP.FlowLabel)
		}
	} else if p.IP.ID != want.id || !p.IP.DF {
		t.Errorf("ip id %#x df %v", p.IP.ID, p.IP.DF)
	}
	if p.IP.Version != wantVer || p.IP.TTL != 64 || p.IP.TOS != 2 || p.IP.ECN() != 2 {
		t.Errorf("ip %+v", p.IP)
	}
	tc := &p.TCP
	if tc.Seq != tcpwire.Seq(want.seq) || tc.Flags != want.flags || tc.Window != want.win || tc.ChecksumState != tcpwire.ChecksumGood {
		t.Errorf("tcp seq %d flags %v win %d checksum %v", tc.Seq, tc.Flags, tc.Window, tc.ChecksumState)
	}
	if p.PayloadLen != 5 || string(p.Payload) != "hello" || p.Truncated {
		t.Errorf("payload %d %q truncated %v", p.PayloadLen, p.Payload, p.Truncated)
	}
	o := tcpwire.DecodeOptions(tc.Options)
	if !o.HasMSS || o.MSS != 1460 || !o.SACKOK || !o.HasTS || o.TSVal != 7 || !o.HasWScale || o.WScale != 7 ||
		!o.FastOpen || o.CookieLen != 4 || o.Malformed || o.Unknown != 0 {
		t.Errorf("options %+v", o)
	}
	list, err := tcpwire.ParseOptions(tc.Options)
	if err != nil || len(list) < 6 || list[0].Kind != tcpwire.OptKindMSS || list[3].Kind != tcpwire.OptKindNOP {
		t.Errorf("option list %+v %v", list, err)
	}
}

func TestByteOrderAndResolution(t *testing.T) {
	ip := synSpec(false).ip(t)
	for _, tc := range []struct {
		order binary.AppendByteOrder
		nanos bool
		want  time.Time
	}{
		{le, false, t0.Truncate(time.Microsecond)},
		{be, false, t0.Truncate(time.Microsecond)},
		{le, true, t0},
		{be, true, t0},
	} {
		t.Run(fmt.Sprintf("%v-nanos=%v", tc.order, tc.nanos), func(t *testing.T) {
			f := newPcap(layers.LinkTypeEthernet, tc.order, tc.nanos, 65535)
			f.add(t0, ether(ip), 0)
			p, _ := readOne(t, f.buf.Bytes())
			if !p.Time.Equal(tc.want) {
				t.Errorf("time %v, want %v", p.Time.Format(time.RFC3339Nano), tc.want.Format(time.RFC3339Nano))
			}
		})
	}
}

// TestPcapgoWriter reads what gopacket's own writers produce.
func TestPcapgoWriter(t *testing.T) {
	data := ether(synSpec(false).ip(t))
	ci := gopacket.CaptureInfo{Timestamp: t0, CaptureLength: len(data), Length: len(data)}
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(ci, data); err != nil {
		t.Fatal(err)
	}
	p, _ := readOne(t, b.Bytes())
	checkSYN(t, &p, false)

	b.Reset()
	nw, err := pcapgo.NewNgWriter(&b, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	flags := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
	if err := nw.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Flags: &flags}); err != nil {
		t.Fatal(err)
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	p, _ = readOne(t, b.Bytes())
	checkSYN(t, &p, false)
	if p.CaptureDir != DirOut {
		t.Errorf("direction %v, want out", p.CaptureDir)
	}
}

// TestPcapng covers several interfaces with their own link types and
// timestamp resolutions, EPB direction flags, and both byte orders.
func TestPcapng(t *testing.T) {
	ip4, ip6 := synSpec(false).ip(t), synSpec(true).ip(t)
	for _, order := range []binary.AppendByteOrder{le, be} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			f := newNg(order)
			eth := f.iface(layers.LinkTypeEthernet, 6)
			raw := f.iface(layers.LinkTypeRaw, 9)
			f.epb(eth, t0, ether(ip4), 2)   // outbound
			f.epb(raw, t0, ip6, 1)          // inbound
			f.epb(eth, t0, ether(ip6), 0)   // no flags
			f.epb(raw, t0, []byte{0x45}, 0) // too short: counted, skipped
			r, err := NewReader(bytes.NewReader(f.buf.Bytes()), "ng")
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != FormatPcapNG {
				t.Errorf("format %v", r.Format())
			}
			want := []struct {
				intf int
				lt   layers.LinkType
				ts   time.Time
				dir  Direction
				v6   bool
			}{
				{0, layers.LinkTypeEthernet, t0.Truncate(time.Microsecond), DirOut, false},
				{1, layers.LinkTypeRaw, t0, DirIn, true},
				{0, layers.LinkTypeEthernet, t0.Truncate(time.Microsecond), DirUnknown, true},
			}
			for i, w := range want {
				p, err := r.Next()
				if err != nil {
					t.Fatalf("packet %d: %v", i+1, err)
				}
				if p.Index != i+1 || p.Interface != w.intf || p.LinkType != w.lt || !p.Time.Equal(w.ts) || p.CaptureDir != w.dir || (p.IP.Version == 6) != w.v6 {
					t.Errorf("packet %d: index %d intf %d lt %v time %v dir %v ipv%d", i+1, p.Index, p.Interface, p.LinkType, p.Time, p.CaptureDir, p.IP.Version)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
			if st := r.Stats(); st.Records != 4 || st.TCP != 3 || st.Short != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestSnaplenTruncation(t *testing.T) {
	s := synSpec(false)
	s.flags, s.payload = tcpwire.FlagACK|tcpwire.FlagPSH, bytes.Repeat([]byte("x"), 1000)
	ip := s.ip(t)
	for _, tc := range []struct {
		name     string
		caplen   int
		captured int
		opts     int
	}{
		{"payload cut", 14 + 20 + 20 + 28 + 100, 100, 28},
		{"options cut", 14 + 20 + 30, 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPcap(layers.LinkTypeEthernet, le, false, uint32(tc.caplen))
			f.add(t0, ether(ip), tc.caplen)
			p, st := readOne(t, f.buf.Bytes())
			if !p.Truncated || p.PayloadLen != 1000 || len(p.Payload) != tc.captured || len(p.TCP.Options) != tc.opts || p.TCP.ChecksumState != tcpwire.ChecksumUnknown {
				t.Errorf("truncated %v payload %d/%d options %d checksum %v", p.Truncated, len(p.Payload), p.PayloadLen, len(p.TCP.Options), p.TCP.ChecksumState)
			}
			if st.Truncated != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestIPVariants(t *testing.T) {
	s := synSpec(false)
	s.ipOpts = true
	withOpts := s.ip(t)
	frag := bytes.Clone(synSpec(false).ip(t))
	binary.BigEndian.PutUint16(frag[6:], 0x2000) // MF
	fragLater := bytes.Clone(frag)
	binary.BigEndian.PutUint16(fragLater[6:], 0x0010) // offset 128
	s6 := synSpec(true)
	s6.ext6 = []byte{0, 43, 60, 44}
	ext := s6.ip(t)
	frag6 := bytes.Clone(ext)
	binary.BigEndian.PutUint16(frag6[40+24+2:], 0x0008) // fragment offset 1
	longExt := bytes.Clone(ext)                         // hop-by-hop header claiming 408 bytes, cut by the snaplen
	longExt[41] = 50
	binary.BigEndian.PutUint16(longExt[4:], 1000)
	udp := bytes.Clone(synSpec(false).ip(t))
	udp[9] = 17
	arp := append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x06}, make([]byte, 28)...)
	for _, tc := range []struct {
		name string
		data []byte
		want Stats
		hdr  int
	}{
		{"ipv4 options", ether(withOpts), Stats{Records: 1, TCP: 1}, 24},
		{"ipv6 extension headers", ether(ext), Stats{Records: 1, TCP: 1}, 72},
		{"ipv4 first fragment", ether(frag), Stats{Records: 1, Fragments: 1}, 0},
		{"ipv4 later fragment", ether(fragLater), Stats{Records: 1, Fragments: 1}, 0},
		{"ipv6 fragment", ether(frag6), Stats{Records: 1, Fragments: 1}, 0},
		{"ipv6 extension header past the snaplen", ether(longExt), Stats{Records: 1, Short: 1}, 0},
		{"udp", ether(udp), Stats{Records: 1, NonTCP: 1}, 0},
		{"arp", arp, Stats{Records: 1, NonIP: 1}, 0},
		{"runt", []byte{1, 2, 3}, Stats{Records: 1, Short: 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPcap(layers.LinkTypeEthernet, le, false, 65535)
			f.add(t0, tc.data, 0)
			r, err := NewReader(bytes.NewReader(f.buf.Bytes()), "x")
			if err != nil {
				t.Fatal(err)
			}
			p, err := r.Next()
			if tc.hdr != 0 {
				if err != nil {
					t.Fatal(err)
				}
				if p.IP.HeaderLen != tc.hdr || p.TCP.ChecksumState != tcpwire.ChecksumGood || string(p.Payload) != "hello" {
					t.Errorf("header len %d checksum %v payload %q", p.IP.HeaderLen, p.TCP.ChecksumState, p.Payload)
				}
				_, err = r.Next()
			}
			if err != io.EOF {
				t.Fatalf("got %v, want EOF", err)
			}
			if r.Stats() != tc.want {
				t.Errorf("stats %+v, want %+v", r.Stats(), tc.want)
			}
		})
	}
}

func TestChecksumPartial(t *testing.T) {
	ip := synSpec(false).ip(t)
	// Replace the checksum with the folded pseudo-header sum, as a sender
	// with TX offload leaves it.
	hdr := tcpwire.IPHeader{Version: 4, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2")}
	s, d := hdr.Src.As4(), hdr.Dst.As4()
	ph := tcpwire.Sum(d[:], tcpwire.Sum(s[:], 0)) + 6 + uint32(len(ip)-20)
	binary.BigEndian.PutUint16(ip[20+16:], tcpwire.Fold(ph))
	f := newPcap(layers.LinkTypeRaw, le, false, 65535)
	f.add(t0, ip, 0)
	p, _ := readOne(t, f.buf.Bytes())
	if p.TCP.ChecksumState != tcpwire.ChecksumPartial {
		t.Errorf("checksum state %v, want partial", p.TCP.ChecksumState)
	}
}

// TestDamage cuts a file at every kind of place and checks the error names
// the packet and offset, and that earlier packets were delivered.
func TestDamage(t *testing.T) {
	ip := synSpec(false).ip(t)
	f := newPcap(layers.LinkTypeEthernet, le, false, 65535)
	var offsets []int
	for i := 0; i < 5; i++ {
		offsets = append(offsets, f.buf.Len())
		f.add(t0.Add(time.Duration(i)*time.Millisecond), ether(ip), 0)
	}
	full := f.buf.Bytes()
	recLen := len(ether(ip))
	for _, tc := range []struct {
		name   string
		data   []byte
		good   int
		errMsg string
	}{
		{"cut in record 4 data", full[:offsets[3]+16+20], 3, fmt.Sprintf("fixture: packet 4 (offset %d): truncated record: want %d bytes, have 20", offsets[3], recLen)},
		{"cut in record 3 header", full[:offsets[2]+5], 2, fmt.Sprintf("fixture: packet 3 (offset %d): truncated record header: want 16 bytes, have 5", offsets[2])},
		{"absurd length", append(bytes.Clone(full[:offsets[1]]), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f), 1, fmt.Sprintf("fixture: packet 2 (offset %d): record length 2147483647 exceeds 262144 bytes", offsets[1])},
		{"short file header", full[:10], 0, "fixture: file header (offset 0): truncated file header: want 24 bytes, have 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.data), "fixture")
			good := 0
			for err == nil {
				var p *Packet
				if p, err = r.Next(); err == nil {
					good++
					if p.Index != good || p.Offset != int64(offsets[good-1]) {
						t.Errorf("packet %d: index %d offset %d", good, p.Index, p.Offset)
					}
				}
			}
			var de *DamagedError
			if !errors.Is(err, ErrDamaged) || !errors.As(err, &de) {
				t.Fatalf("error %v is not a DamagedError", err)
			}
			if err.Error() != tc.errMsg || good != tc.good {
				t.Errorf("got %d packets then %q\nwant %d packets then %q", good, err, tc.good, tc.errMsg)
			}
			if r != nil {
				if _, again := r.Next(); again != err {
					t.Errorf("error not sticky: %v", again)
				}
			}
		})
	}
}

func TestNotACapture(t *testing.T) {
	for _, in := range []string{"", "hello world, this is text"} {
		_, err := NewReader(strings.NewReader(in), "x.txt")
		if err == nil || errors.Is(err, ErrDamaged) {
			t.Errorf("%q: error %v", in, err)
		}
	}
}

// TestNoAllocPerPacket checks the reader allocates nothing per packet once
// its buffers exist, for pcap and for pcapng without EPB flags (pcapgo
// allocates the flags it decodes).
func TestNoAllocPerPacket(t *testing.T) {
	ip := synSpec(false).ip(t)
	pc := newPcap(layers.LinkTypeLinuxSLL2, le, true, 65535)
	ng := newNg(le)
	ng.iface(layers.LinkTypeEthernet, 9)
	for i := 0; i < 200; i++ {
		pc.add(t0, sll2(ip, sllHost), 0)
		ng.epb(0, t0, ether(ip), 0)
	}
	for name, data := range map[string][]byte{"pcap": pc.buf.Bytes(), "pcapng": ng.buf.Bytes()} {
		r, err := NewReader(bytes.NewReader(data), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per packet", name, allocs)
		}
	}
}

func TestDamagePcapng(t *testing.T) {
	ng := newNg(le)
	ng.iface(layers.LinkTypeEthernet, 9)
	frame := ether(synSpec(false).ip(t))
	var starts []int
	for i := 0; i < 3; i++ {
		starts = append(starts, ng.buf.Len())
		ng.epb(0, t0, frame, 2)
	}
	cut := ng.buf.Bytes()[:starts[2]+40]
	r, err := NewReader(bytes.NewReader(cut), "ng.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; err == nil; n++ {
		_, err = r.Next()
	}
	want := fmt.Sprintf("ng.pcapng: packet 3 (offset %d): truncated block: file ends 40 bytes into it", starts[2])
	if n != 3 || !errors.Is(err, ErrDamaged) || err.Error() != want {
		t.Errorf("got %d packets, then %v\nwant 2, then %s", n-1, err, want)
	}
}

// TestGzip reads a gzip-compressed pcap; offsets count uncompressed bytes.
func TestGzip(t *testing.T) {
	f := newPcap(layers.LinkTypeEthernet, le, true, 65535)
	f.add(t0, ether(synSpec(false).ip(t)), 0)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(f.buf.Bytes())
	zw.Close()
	r, err := NewReader(&z, "x.pcap.gz")
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Next()
	if err != nil || p.Offset != 24 || r.Format() != FormatPcapNano {
		t.Fatalf("%v: offset %d format %v", err, p.Offset, r.Format())
	}
	checkSYN(t, p, false)
}

// nflogRecord is an NFLOG frame with a packet header TLV naming the
// netfilter hook and, if ts is set, a kernel timestamp TLV.
func nflogRecord(ip []byte, family, hook uint8, ts time.Time) []byte {
	out := []byte{family, 0, 0, 0}
	out = le.AppendUint16(out, 8)
	out = le.AppendUint16(out, 1) // NFULA_PACKET_HDR: hw_protocol, hook, pad
	out = append(out, 0x08, 0x00, hook, 0)
	if !ts.IsZero() {
		out = le.AppendUint16(out, 20)
		out = le.AppendUint16(out, 3) // NFULA_TIMESTAMP, big-endian seconds and microseconds
		out = binary.BigEndian.AppendUint64(out, uint64(ts.Unix()))
		out = binary.BigEndian.AppendUint64(out, uint64(ts.Nanosecond()/1000))
	}
	out = le.AppendUint16(out, uint16(4+len(ip)))
	out = le.AppendUint16(out, 9)
	return append(out, ip...)
}

// TestNFLOGTimes: an NFLOG record's own time is when libpcap read a batch
// of them; the kernel's timestamp, where there is one, is the packet's,
// and a record without one takes the latest kernel time before it. The
// hook gives the direction.
func TestNFLOGTimes(t *testing.T) {
	ip := synSpec(false).ip(t)
	const localIn, localOut, forward = 1, 3, 2
	read := t0.Add(7 * time.Millisecond) // the batch's read time
	f := newPcap(linkTypeNFLOG, le, false, 65535)
	f.add(read, nflogRecord(ip, 2, localOut, time.Time{}), 0)               // nothing known yet: the record's time
	f.add(read, nflogRecord(ip, 2, localIn, t0), 0)                         // the kernel's time
	f.add(read, nflogRecord(ip, 2, localOut, time.Time{}), 0)               // the latest kernel time
	f.add(t0.Add(time.Second), nflogRecord(ip, 2, forward, time.Time{}), 0) // flushed a second later
	r, err := NewReader(bytes.NewReader(f.buf.Bytes()), "nflog.pcap")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		at  time.Time
		dir Direction
	}{{read, DirOut}, {t0, DirIn}, {t0, DirOut}, {t0, DirUnknown}}
	for i, w := range want {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		if !p.Time.Equal(w.at.Truncate(time.Microsecond)) || p.CaptureDir != w.dir {
			t.Errorf("record %d: time %v dir %v, want %v %v", i+1, p.Time, p.CaptureDir, w.at, w.dir)
		}
	}
}
