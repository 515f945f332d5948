package synth

import (
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

func TestRetransCause(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	out := func(at time.Time, seq, n int) capture.FlowPacket {
		p := capture.FlowPacket{From: capture.SideB, Seq: tcpwire.Seq(seq), Ack: 1, Flags: tcpwire.FlagACK}
		p.SetTime(at)
		p.SetPayloadLen(n)
		return p
	}
	ack := func(at time.Time, a int) capture.FlowPacket {
		p := capture.FlowPacket{From: capture.SideA, Seq: 1, Ack: tcpwire.Seq(a), Flags: tcpwire.FlagACK}
		p.SetTime(at)
		return p
	}
	for _, tc := range []struct {
		name string
		pks  []capture.FlowPacket
		want string
	}{
		{"rto", []capture.FlowPacket{ack(ms(0), 1), out(ms(1), 1, 100), out(ms(301), 1, 100)}, "RTO (nothing from the peer for 0.301000 s"},
		{"tail loss probe", []capture.FlowPacket{out(ms(0), 1, 100), out(ms(0), 101, 100), ack(ms(20), 101), out(ms(45), 101, 100)}, "tail loss probe (the last segment sent, again after 0.025000 s"},
		{"fast retransmit", []capture.FlowPacket{out(ms(0), 1, 100), out(ms(0), 101, 100), out(ms(0), 201, 100), out(ms(0), 301, 100),
			ack(ms(20), 101), ack(ms(20), 101), ack(ms(21), 101), ack(ms(21), 101), out(ms(21), 101, 100)}, "fast retransmit or RACK (the peer sent 3 duplicate ACKs"},
		{"undecided", []capture.FlowPacket{out(ms(0), 1, 100), out(ms(0), 101, 100), ack(ms(20), 101), out(ms(45), 1, 100)}, retransUndecided},
	} {
		f := &capture.Flow{Local: capture.SideB}
		for _, p := range tc.pks {
			f.Packets.Append(p)
		}
		var sndMax tcpwire.Seq
		for _, p := range tc.pks[:len(tc.pks)-1] {
			if e := p.Seq.Add(uint32(p.PayloadLen())); p.From == capture.SideB && sndMax.LessThan(e) {
				sndMax = e
			}
		}
		if got := retransCause(f, len(tc.pks)-1, capture.SideB, sndMax); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
