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
	e.lostInCapture() // releasedFrom
	j := e.releasedFrom[i]
	return j, j >= 0
}

// noteReleases sets releasedFrom (see releasedAfter) from the script's
// packet events, compiled (nil: not a TCP packet), and their times in the
// capture; lostInCapture calls it once.
func (e *engine) noteReleases(compiled []*scriptPacket) {
	e.releasedFrom = make([]int, len(compiled))
	for i, ev := range e.script.Events {
		e.releasedFrom[i] = -1
		sp := compiled[i]
		if sp == nil || sp.ast.Dir != parser.Outbound || sp.payloadLen == 0 ||
			ev.Time.Kind != parser.TimeRelative || ev.Time.Anchor || ev.Time.Usecs != 0 {
			continue
		}
		seq := tcpwire.Seq(sp.seq)
		k := i - 1
		for ; k >= 0 && e.scriptAt[i]-e.scriptAt[k] <= ackRunUsecs; k-- {
			if !ackBelow(e.script.Events[k], compiled[k], seq) {
				break
			}
		}
		if k >= 0 && k < i-1 {
			e.releasedFrom[i] = k
		}
	}
}

// ackBelow reports whether ev (compiled sp) is an anchored inbound pure
// ACK that acknowledges and SACKs only bytes below seq.
func ackBelow(ev *parser.Event, sp *scriptPacket, seq tcpwire.Seq) bool {
	if sp == nil || sp.ast.Dir != parser.Inbound || !ev.Time.Anchor ||
		sp.proto != tcpwire.ProtoTCP || sp.payloadLen != 0 || sp.flags != tcpwire.FlagACK {
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
