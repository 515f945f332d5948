package synth

// This file holds what the local side sent, as the inbound packets that
// answer it see it: the anchors of `+d^` times (--pcap2pkt).

import (
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// answered is what the local side sent, and what the remote acknowledged
// and SACKed so far, for anchored inbound times (see answers).
type answered struct {
	sent       sentLog
	peerAck    tcpwire.Seq
	peerAckSet bool
	peerSacked spans
}

// noteSent logs a local packet that occupies sequence space (data, SYN,
// FIN), for the anchors of the packets that answer it.
func (b *builder) noteSent(p *capture.FlowPacket) {
	end := p.Seq.Add(uint32(p.PayloadLen))
	if p.Flags.Has(tcpwire.FlagSYN) {
		end = end.Add(1)
	}
	if p.Flags.Has(tcpwire.FlagFIN) {
		end = end.Add(1)
	}
	if end != p.Seq {
		b.sent.add(p.Seq, end, p.Time)
	}
}

// answers returns the capture time of the local segment that the inbound
// packet p answers: the latest transmission before p of the last byte it
// acknowledges or SACKs beyond what the remote did before (or of the SYN
// its SYN-ACK acknowledges), which transmission of that byte it was (from
// 1), and whether there is one. It also records what p acknowledged.
func (b *builder) answers(p *capture.FlowPacket) (time.Time, int, bool) {
	if !p.Flags.Has(tcpwire.FlagACK) {
		return time.Time{}, 0, false
	}
	var x tcpwire.Seq
	found := false
	if !b.peerAckSet || b.peerAck.LessThan(p.Ack) {
		x, found = p.Ack.Add(^uint32(0)), true
		b.peerAck, b.peerAckSet = p.Ack, true
	}
	o := p.Options()
	for _, blk := range o.SACK[:min(int(o.NumSACK), len(o.SACK))] {
		l, r := tcpwire.Seq(blk.Left), tcpwire.Seq(blk.Right)
		if b.peerSacked.covers(l, r) {
			continue
		}
		b.peerSacked = append(b.peerSacked, span{l, r})
		if last := r.Add(^uint32(0)); !found || x.LessThan(last) {
			x, found = last, true
		}
	}
	if !found {
		return time.Time{}, 0, false
	}
	at, n := b.sent.latest(x, p.Time)
	return at, n, n > 0
}

// spans is a set of sequence ranges.
type spans []span

// covers reports whether the union of the spans covers [l, r).
func (ss spans) covers(l, r tcpwire.Seq) bool {
	at := l
	for progress := true; progress && at.LessThan(r); {
		progress = false
		for _, s := range ss {
			if s.start.LessThanEq(at) && at.LessThan(s.end) {
				at, progress = s.end, true
			}
		}
	}
	return !at.LessThan(r)
}
