package replay

import (
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// ackRunUsecs bounds how long after new data the captured peer's pure
// ACKs may have come and still stand before its line in a synthesised
// script: the synthesis moves such ACKs ahead of the data when they
// acknowledge only bytes sent before it (synth's acksAhead), so that a
// kernel whose window is a segment short is not held back behind them.
const ackRunUsecs = 1000

// releasedAfter returns, for new data line i written `+0` right after a
// run of anchored pure ACKs that acknowledge and SACK only bytes below its
// own, all captured within ackRunUsecs of it, the event before that run.
// Those ACKs did not release the data: in the capture they came after it
// (or with it), and the data left on an ACK before them. Each is anchored
// to what it answers, so a kernel that sent that a round trip late (its
// recovery's sends cut otherwise: cubic's server, traffic2, sent 389513:
// 390961 16 ms after the segments before it where the captured kernel sent
// them together) gets that ACK late, and data it sent on the ACK before,
// as the captured kernel did, would count as early against it. The data
// line's earliest time then counts from the event before the run.
func (e *engine) releasedAfter(i int) (int, bool) {
	ev := e.script.Events[i]
	p, ok := ev.Action.(*parser.Packet)
	if !ok || p.Dir != parser.Outbound || p.TCP == nil || ev.Time.Kind != parser.TimeRelative || ev.Time.Anchor || ev.Time.Usecs != 0 {
		return 0, false
	}
	sp, err := compilePacket(p, e.cfg.wireIPv6())
	if err != nil || sp.payloadLen == 0 {
		return 0, false
	}
	e.lostInCapture() // scriptAt
	seq := tcpwire.Seq(sp.seq)
	k := i - 1
	for ; k >= 0 && e.scriptAt[i]-e.scriptAt[k] <= ackRunUsecs; k-- {
		if !ackBelow(e.script.Events[k], seq, e.cfg.wireIPv6()) {
			break
		}
	}
	return k, k >= 0 && k < i-1
}

// ackBelow reports whether ev is an anchored inbound pure ACK that
// acknowledges and SACKs only bytes below seq.
func ackBelow(ev *parser.Event, seq tcpwire.Seq, v6 bool) bool {
	p, ok := ev.Action.(*parser.Packet)
	if !ok || p.Dir != parser.Inbound || p.TCP == nil || !ev.Time.Anchor {
		return false
	}
	sp, err := compilePacket(p, v6)
	if err != nil || sp.proto != tcpwire.ProtoTCP || sp.payloadLen != 0 || sp.flags != tcpwire.FlagACK {
		return false
	}
	if tcpwire.Seq(sp.ack).Diff(seq) > 0 {
		return false
	}
	for _, b := range sackBlocks(sp.options) {
		if b.end.Diff(seq) > 0 {
			return false
		}
	}
	return true
}
