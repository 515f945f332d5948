package synth

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/pcap2pkt/pcap2pkt/capture"
)

// TestReceiveBuffer: a side that receives more than a quarter of its
// buffer gets twice the captured one; when it held data out of order, at
// least twice the largest window it offered (a TUN injection charges a
// segment more than its payload), rounded up to a power of two.
func TestReceiveBuffer(t *testing.T) {
	ws7 := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{3, 0xe8}},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1}, {OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}}
	us := time.Microsecond
	// The server sends 100 kB; the client's window grows to win (<<7).
	// With reorder, its 11th segment comes after the 12th.
	download := func(win uint16, reorder bool) []seg {
		s := []seg{
			{flags: "S", win: 64000, opts: ws7},
			{srv: true, flags: "S.", ack: 1, win: 64000, opts: ws7, dt: 50 * us},
			{flags: ".", seq: 1, ack: 1, win: 500, dt: 50 * us},
		}
		for i := range 100 {
			w := min(500+uint16(i)*20, win)
			s = append(s, seg{srv: true, flags: ".", seq: 1 + uint32(i)*1000, ack: 1, n: 1000, win: 500, dt: 10 * us},
				seg{flags: ".", seq: 1, ack: 1001 + uint32(i)*1000, win: w, dt: 10 * us})
		}
		if reorder {
			// The segments' own ACKs stay where they are.
			s[3+2*10], s[3+2*11] = s[3+2*11], s[3+2*10]
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		win     uint16
		reorder bool
		want    string
	}{
		{"a window of 256000 bytes, data out of order", 2000, true, `tcp_rmem="4096 524288 4194304"`},
		// The first window (64000 bytes) says a buffer of 128000, doubled.
		{"a window of 256000 bytes, data in order", 2000, false, `tcp_rmem="4096 256000 4194304"`},
		{"no window beyond the first, data out of order", 500, true, `tcp_rmem="4096 256000 4194304"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hp, err := capture.ParseHostPort("10.0.0.1:40000")
			if err != nil {
				t.Fatal(err)
			}
			res, err := File("rmem.pcap", bytes.NewReader(conversation(t, download(tc.win, tc.reorder))), capture.FlowOptions{Local: hp}, Options{})
			if err != nil || len(res) != 1 || res[0].Err != nil {
				t.Fatalf("%v %v", err, res)
			}
			if init := res[0].Script.Init; init == nil || !strings.Contains(init.Text, tc.want) {
				t.Errorf("init %+v: want %s", init, tc.want)
			}
		})
	}
}
