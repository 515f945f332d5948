package tcpwire

import (
	"net/netip"
	"testing"
)

func TestSeq(t *testing.T) {
	for _, tc := range []struct {
		a, b Seq
		less bool
	}{
		{1, 2, true}, {2, 1, false}, {0xFFFFFFF0, 5, true}, {5, 0xFFFFFFF0, false}, {7, 7, false},
	} {
		if tc.a.LessThan(tc.b) != tc.less {
			t.Errorf("%d < %d: %v", tc.a, tc.b, !tc.less)
		}
	}
	if Seq(0xFFFFFFFF).Add(2) != 1 || Seq(1).Diff(0xFFFFFFFF) != 2 {
		t.Error("wrap-around arithmetic")
	}
}

// TestFlags spells flags as the upstream scripts write them and reads
// them back.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		in    string
		flags Flags
		ace   bool
		err   string
	}{
		{"S.", FlagSYN | FlagACK, false, ""},
		{"-", 0, false, ""},
		{"FP.", FlagFIN | FlagPSH | FlagACK, false, ""},
		{"SEW", FlagSYN | FlagECE | FlagCWR, false, ""},
		{"SE.", FlagSYN | FlagECE | FlagACK, false, ""},
		{"U.", FlagURG | FlagACK, false, ""},
		{"SEWA.", FlagSYN | FlagACK | FlagECN, false, ""},
		{"S.5", FlagSYN | FlagACK | FlagECE | FlagAE, true, ""},
		{".0", FlagACK, true, ""},
		{"E5", 0, false, "conflicting TCP flag '5'"},
		{"5E", 0, false, "conflicting TCP flag 'E'"},
		{"SX", 0, false, "invalid TCP flag 'X'"},
	} {
		f, ace, err := ParseFlags(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || f != tc.flags || ace != tc.ace {
			t.Errorf("%q: got %#x %v %v", tc.in, f, ace, err)
		}
		out := f.String()
		if ace {
			out = f.ACEString()
		}
		if out != tc.in {
			t.Errorf("%q printed back as %q", tc.in, out)
		}
	}
}

// TestSum checks the 64-bit one's complement sum against 16-bit words added
// one by one, on lengths around its 32- and 8-byte steps and on bytes that
// make every addition carry.
func TestSum(t *testing.T) {
	want := func(b []byte, s uint32) uint32 {
		acc := uint64(s)
		for i := 0; i+1 < len(b); i += 2 {
			acc += uint64(b[i])<<8 | uint64(b[i+1])
		}
		if len(b)%2 == 1 {
			acc += uint64(b[len(b)-1]) << 8
		}
		for acc>>16 != 0 {
			acc = acc&0xFFFF + acc>>16
		}
		return uint32(acc)
	}
	rnd := uint32(1)
	for _, fill := range []string{"zero", "ones", "random"} {
		for n := range 100 {
			b := make([]byte, n)
			for i := range b {
				switch fill {
				case "ones":
					b[i] = 0xFF
				case "random":
					rnd = rnd*1664525 + 1013904223
					b[i] = byte(rnd >> 24)
				}
			}
			for _, s := range []uint32{0, 1, 0xFFFF, 0x2FFFD, 0xFFFFFFFF} {
				if got, w := Sum(b, s), want(b, s); got != w {
					t.Errorf("%s %d bytes, s %#x: %#x, want %#x", fill, n, s, got, w)
				}
			}
		}
	}
}

// TestChecksum checks a TCP segment's checksum over the IPv4 and IPv6
// pseudo headers: computed into the segment, it verifies to 0.
func TestChecksum(t *testing.T) {
	seg := []byte{0x1f, 0x90, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, 'x'}
	for _, pair := range [][2]string{{"192.0.2.1", "198.51.100.2"}, {"2001:db8::1", "2001:db8::2"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		seg[16], seg[17] = 0, 0
		ph := PseudoHeaderSum(src, dst, 6, len(seg))
		c := Checksum(seg, ph)
		seg[16], seg[17] = byte(c>>8), byte(c)
		if Checksum(seg, ph) != 0 {
			t.Errorf("%v: the filled-in checksum %#x does not verify", src, c)
		}
		if Checksum(seg, PseudoHeaderSum(dst, src, 6, len(seg)+2)) == 0 {
			t.Errorf("%v: a wrong pseudo header verifies", src)
		}
	}
}

// TestOptions decodes a SYN's option list and the malformed and
// experimental cases.
func TestOptions(t *testing.T) {
	syn := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7}
	o := DecodeOptions(syn)
	if !o.HasMSS || o.MSS != 1460 || !o.SACKOK || !o.HasTS || o.TSVal != 7 || !o.HasWScale || o.WScale != 7 || o.Malformed || o.Unknown != 0 {
		t.Errorf("SYN options: %+v", o)
	}
	list, err := ParseOptions(syn)
	if err != nil || len(list) != 5 || list[4].Kind != OptKindWScale || list[3].Kind != OptKindNOP {
		t.Errorf("SYN option list: %+v %v", list, err)
	}
	foexp := []byte{OptKindExp, 8, 0xf9, 0x89, 1, 2, 3, 4, OptKindEOL, 99}
	o = DecodeOptions(foexp)
	if !o.FastOpen || !o.FastOpenExp || o.CookieLen != 4 || o.Malformed {
		t.Errorf("FOEXP: %+v", o)
	}
	if list, _ := ParseOptions(foexp); len(list) != 2 || list[1].Kind != OptKindEOL {
		t.Errorf("the walk goes on after EOL: %+v", list)
	}
	sack := []byte{1, 1, OptKindSACK, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4}
	o = DecodeOptions(sack)
	if o.NumSACK != 2 || o.SACK[1] != (SACKBlock{3, 4}) {
		t.Errorf("SACK: %+v", o)
	}
	for _, bad := range [][]byte{{OptKindMSS}, {OptKindMSS, 1, 0}, {OptKindMSS, 5, 0, 0}, {OptKindMSS, 3, 0}} {
		if o := DecodeOptions(bad); !o.Malformed || o.HasMSS {
			t.Errorf("%v: %+v, want malformed", bad, o)
		}
	}
	if _, err := ParseOptions([]byte{1, OptKindTimestamp, 12, 0}); err == nil {
		t.Error("an option running past the end parses")
	}
	ecn := Option{Kind: OptKindAccECN1, Len: 8, Data: []byte{0, 0, 1, 0, 0, 2}}
	if v, ok := ecn.AccECNCounter(1); !ok || v != 2 || AccECNNames(ecn.Kind)[0] != "e1b" {
		t.Errorf("AccECN counter: %d %v", v, ok)
	}
	if _, ok := ecn.AccECNCounter(2); ok {
		t.Error("a counter the option does not hold")
	}
}

// TestDecode decodes what AppendTCP writes, a UDP datagram and an ICMPv6
// message behind a hop-by-hop header, and the cases a caller must tell
// apart: cut short, a fragment, another protocol.
func TestDecode(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	h := TCPHeader{SrcPort: 8080, DstPort: 40000, Seq: 1, Ack: 0xFFFFFFFF, Flags: FlagSYN | FlagACK | FlagAE, Window: 1000, Urgent: 3, Options: []byte{2, 4, 5, 0xb4}}
	ip4 := func(proto uint8, l4 []byte) []byte {
		b := append([]byte{0x45, 0, 0, 0, 0, 7, 0x40, 0, 64, proto, 0, 0}, src.AsSlice()...)
		b = append(append(b, dst.AsSlice()...), l4...)
		b[2], b[3] = byte(len(b)>>8), byte(len(b))
		return b
	}
	seg := append(AppendTCP(nil, &h), "data"...)
	c := Checksum(seg, PseudoHeaderSum(src, dst, ProtoTCP, len(seg)))
	seg[16], seg[17] = byte(c>>8), byte(c)
	var d Datagram
	if r := Decode(ip4(ProtoTCP, seg), &d); r != Decoded || d.IP.Proto != ProtoTCP || !d.IP.DF || d.IP.ID != 7 || d.IP.HeaderLen != 20 {
		t.Fatalf("TCP: %v %+v", r, d.IP)
	}
	got := d.TCP
	got.Checksum, got.ChecksumState, got.HeaderLen = 0, 0, 0
	if got.Seq != h.Seq || got.Ack != h.Ack || got.Flags != h.Flags || got.Window != h.Window || got.Urgent != h.Urgent ||
		string(got.Options) != string(h.Options) || string(d.Payload) != "data" || d.PayloadLen != 4 || d.TCP.ChecksumState != ChecksumGood {
		t.Errorf("TCP round trip: %+v, payload %q", d.TCP, d.Payload)
	}
	whole := ip4(ProtoTCP, seg)
	d = Datagram{}
	if r := Decode(whole[:len(whole)-2], &d); r != Decoded || !d.Truncated || d.PayloadLen != 4 || d.TCP.ChecksumState != ChecksumUnknown {
		t.Errorf("cut in the payload: %v, truncated %v, payload %d, checksum %v", r, d.Truncated, d.PayloadLen, d.TCP.ChecksumState)
	}
	if r := Decode(whole[:30], &Datagram{}); r != Short {
		t.Errorf("cut in the TCP header: %v", r)
	}
	frag := ip4(ProtoTCP, seg)
	frag[6] |= 0x20 // more fragments
	if r := Decode(frag, &Datagram{}); r != Fragment {
		t.Errorf("fragment: %v", r)
	}
	if r := Decode(ip4(47, []byte{0, 0, 0, 0}), &Datagram{}); r != Other {
		t.Errorf("GRE: %v", r)
	}
	d = Datagram{}
	if r := Decode(ip4(ProtoUDP, []byte{0, 53, 0x9c, 0x40, 0, 10, 0, 0, 'h', 'i'}), &d); r != Decoded || d.UDP != (UDPHeader{53, 40000, 10}) || string(d.Payload) != "hi" {
		t.Errorf("UDP: %v %+v %q", r, d.UDP, d.Payload)
	}
	ll, all := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::16")
	mld := append([]byte{0x60, 0, 0, 0, 0, 16, 0, 1}, ll.AsSlice()...)
	mld = append(mld, all.AsSlice()...)
	mld = append(mld, ProtoICMPv6, 0, 5, 2, 0, 0, 1, 0, 143, 0, 0, 0, 0, 0, 0, 1)
	d = Datagram{}
	if r := Decode(mld, &d); r != Decoded || d.IP.Proto != ProtoICMPv6 || d.IP.HeaderLen != 48 || d.ICMP.Type != 143 || d.ICMP.Rest != 1 {
		t.Errorf("ICMPv6 behind hop-by-hop: %v %+v %+v", r, d.IP, d.ICMP)
	}
}
