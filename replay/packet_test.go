package replay

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/parser/fuzztest"
)

func TestEncodeOptions(t *testing.T) {
	tests := []struct {
		name string
		list []*parser.TCPOption
		want []byte
		err  bool
	}{
		{"mss", []*parser.TCPOption{{Kind: parser.OptMSS, Value: 1460}}, []byte{2, 4, 5, 0xb4}, false},
		{"sack", []*parser.TCPOption{{Kind: parser.OptNOP}, {Kind: parser.OptNOP}, {Kind: parser.OptSACK, SACK: []parser.SACKBlock{{Left: 1, Right: 2}}}},
			[]byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, false},
		{"ts", []*parser.TCPOption{{Kind: parser.OptNOP}, {Kind: parser.OptNOP}, {Kind: parser.OptTimestamp, TSVal: 7, TSEcr: 9}},
			[]byte{1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9}, false},
		{"fo exp", []*parser.TCPOption{{Kind: parser.OptFastOpenExp, Cookie: "aabbccdd"}},
			[]byte{254, 8, 0xf9, 0x89, 0xaa, 0xbb, 0xcc, 0xdd}, false},
		{"accecn e1b first", []*parser.TCPOption{{Kind: parser.OptNOP}, {Kind: parser.OptNOP}, {Kind: parser.OptNOP}, {Kind: parser.OptAccECN, AccECN: []parser.AccECNField{{Name: "e1b", Value: 1}}}},
			[]byte{1, 1, 1, 174, 5, 0, 0, 1}, false},
		{"unpadded", []*parser.TCPOption{{Kind: parser.OptWScale, Value: 7}}, nil, true},
		{"odd cookie", []*parser.TCPOption{{Kind: parser.OptFastOpen, Cookie: "abc"}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parser.EncodeTCPOptions(tc.list)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if !tc.err && !bytes.Equal(got, tc.want) {
				t.Errorf("got % x, want % x", got, tc.want)
			}
			if tc.err {
				return
			}
			opts, err := tcpwire.ParseOptions(got)
			if err != nil {
				t.Fatal(err)
			}
			back, unknown := optionsToAST(opts)
			if len(unknown) > 0 || len(back.List) != len(tc.list) {
				t.Errorf("round trip: %s (unknown %v)", parser.FormatTCPOptions(back), unknown)
			}
		})
	}
}

// samplePacket is an IPv4 TCP segment with options and payload.
func samplePacket() []byte {
	b := make([]byte, 20+32+100)
	ipHeader(b, false, len(b), 0, 0, 64, tcpwire.ProtoTCP, netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("192.0.2.1"))
	t := b[20:]
	t[12] = 8 << 4
	t[13] = byte(tcpwire.FlagACK | tcpwire.FlagPSH)
	copy(t[20:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	fillChecksums(b)
	return b
}

func TestDecodePacket(t *testing.T) {
	p, err := decodePacket(samplePacket())
	if err != nil {
		t.Fatal(err)
	}
	if !p.isTCP() || len(p.Payload) != 100 || len(p.TCP.Options) != 12 || !p.ipSumOK || p.TCP.Flags != tcpwire.FlagACK|tcpwire.FlagPSH {
		t.Errorf("decoded %+v", p)
	}
	for _, bad := range [][]byte{nil, {0x45}, {0x60, 0, 0}, samplePacket()[:30]} {
		if _, err := decodePacket(bad); err == nil {
			t.Errorf("decoded % x without error", bad)
		}
	}
}

// FuzzDecodePacket: no packet the kernel could send makes decoding it or
// its TCP options panic or take over fuzztest.Deadline.
func FuzzDecodePacket(f *testing.F) {
	f.Add(samplePacket())
	f.Add(kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, 1, 1, 100, []byte{2, 4, 5, 0xb4}, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzztest.Within(t, func() error {
			p, err := decodePacket(b)
			if err == nil && p.isTCP() {
				opts, _ := tcpwire.ParseOptions(p.TCP.Options)
				optionsToAST(opts)
			}
			return nil
		})
	})
}

func BenchmarkDecodePacket(b *testing.B) {
	pkt := samplePacket()
	for b.Loop() {
		if _, err := decodePacket(pkt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

func TestICMPNames(t *testing.T) {
	tests := []struct {
		v6           bool
		typ, code    uint8
		wantT, wantC string
	}{
		{false, 3, 4, "unreachable", "frag_needed"},
		{false, 0, 0, "echo_reply", ""},
		{false, 99, 7, "type_99", "code_7"},
		{true, 2, 0, "packet_too_big", ""},
		{true, 1, 4, "unreachable", "port_unreachable"},
	}
	for _, tc := range tests {
		gt, gc := icmpNames(tc.v6, tc.typ, tc.code)
		if gt != tc.wantT || gc != tc.wantC {
			t.Errorf("icmpNames(%v, %d, %d) = %q %q, want %q %q", tc.v6, tc.typ, tc.code, gt, gc, tc.wantT, tc.wantC)
		}
	}
}
