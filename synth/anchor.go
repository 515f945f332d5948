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
	// ackScratch is answers' working memory, reused from one inbound
	// packet to the next (a bulk transfer has hundreds of thousands).
	ackScratch struct {
		ranges, missing, spare spans
		log                    []int32
	}
}

// noteSent logs a local packet that occupies sequence space (data, SYN,
// FIN), for the anchors of the packets that answer it.
func (b *builder) noteSent(p *capture.FlowPacket) {
	end := p.Seq.Add(uint32(p.PayloadLen()))
	if p.Flags.Has(tcpwire.FlagSYN) {
		end = end.Add(1)
	}
	if p.Flags.Has(tcpwire.FlagFIN) {
		end = end.Add(1)
	}
	if end != p.Seq {
		o := p.Options()
		b.sent.add(p.Seq, end, p.Time(), o.TSVal, o.HasTS)
	}
}

// answers returns the capture time of the local transmission that the
// inbound packet p answers, which transmission of its bytes that was (from
// 1), and whether there is one. p answers what it acknowledges or SACKs
// beyond what the remote did before; the transmission is the later of the
// one that completed the first sending of all of that (an ACK answers what
// was sent) and the first that sent some of it the n-th time, n being the
// most times any of it was sent before p (the retransmission that filled a
// hole), or, for bytes p's cumulative ACK moves over, the transmission its
// TS ecr shows filled the hole (filledBy: a first transmission the path
// held back, which came before the retransmission). The engine finds the
// same transmission of the replayed kernel's (replay/engine_peer.go
// anchorIn). It also records what p acknowledged.
func (b *builder) answers(p *capture.FlowPacket) (time.Time, int, bool) {
	if !p.Flags.Has(tcpwire.FlagACK) {
		return time.Time{}, 0, false
	}
	ranges := b.ackScratch.ranges[:0]
	advanced := b.peerAckSet && b.peerAck.LessThan(p.Ack)
	var cum span
	if advanced {
		cum = span{b.peerAck, p.Ack}
	}
	switch {
	case !b.peerAckSet:
		ranges = append(ranges, span{p.Ack.Add(^uint32(0)), p.Ack})
	case b.peerAck.LessThan(p.Ack):
		ranges = append(ranges, span{b.peerAck, p.Ack})
	}
	if !b.peerAckSet || b.peerAck.LessThan(p.Ack) {
		b.peerAck, b.peerAckSet = p.Ack, true
	}
	o := p.Options()
	blocks := o.SACK[:min(int(o.NumSACK), len(o.SACK))]
	for i, blk := range blocks {
		l, r := tcpwire.Seq(blk.Left), tcpwire.Seq(blk.Right)
		if i == 0 && dsackInNext(blocks) {
			// A D-SACK inside the next block (RFC 2883): the peer got
			// bytes it had reported again, a duplicate of their latest
			// transmission that the path made. It answers that.
			ranges = append(ranges, span{l, r})
			continue
		}
		if b.peerSacked.covers(l, r) {
			continue
		}
		b.peerSacked = append(b.peerSacked, span{l, r})
		ranges = append(ranges, span{l, r})
	}
	b.dropSackedBelow(b.peerAck)
	b.ackScratch.ranges = ranges
	if len(ranges) == 0 {
		return time.Time{}, 0, false
	}
	// The transmissions before p of any of it, in the order they were sent
	// (the acknowledged ones too, for a D-SACK of a duplicate).
	log := b.sent.touching(b.ackScratch.log[:0], ranges, p.Time())
	b.ackScratch.log = log
	n, nCum := 0, 0
	cumOnly := spans{cum}
	for _, i := range log {
		s := &b.sent.segs[i]
		if advanced && cumOnly.overlap(s.start, s.end) {
			nCum = max(nCum, int(b.sent.nth(i)))
		} else {
			n = max(n, int(b.sent.nth(i)))
		}
	}
	if nCum > 1 && o.HasTS && !dsackOf(blocks, p.Ack, cum) {
		// Resent bytes the ACK moves over: its TS ecr tells which
		// transmission of them filled the hole (filledBy). Not when it
		// reports a duplicate of them (a D-SACK): the later copy, come
		// after the hole filled, is what it answers.
		var cumLog []int32
		for _, i := range log {
			if s := &b.sent.segs[i]; cumOnly.overlap(s.start, s.end) {
				cumLog = append(cumLog, i)
			}
		}
		nCum = b.sent.filledBy(cumLog, nCum, o.TSEcr)
	}
	n = max(n, nCum)
	if n == 0 {
		return time.Time{}, 0, false
	}
	// What of the ranges no transmission has covered yet, in send order.
	missing, spare := append(b.ackScratch.missing[:0], ranges...), b.ackScratch.spare
	defer func() { b.ackScratch.missing, b.ackScratch.spare = missing, spare }()
	var full, reach time.Time
	for _, i := range log {
		s := &b.sent.segs[i]
		if full.IsZero() {
			missing, spare = missing.without(span{s.start, s.end}, spare[:0]), missing
			if len(missing) == 0 {
				full = s.at()
			}
		}
		if reach.IsZero() && int(b.sent.nth(i)) >= n {
			reach = s.at()
		}
		if !full.IsZero() && !reach.IsZero() {
			break
		}
	}
	if full.IsZero() {
		// The capture misses some of what p acknowledges: the latest that
		// it holds.
		full = reach
	}
	if reach.After(full) {
		return reach, n, true
	}
	return full, n, true
}

// dsackOf reports whether an ACK's SACK blocks start with a D-SACK (RFC
// 2883: below its cumulative ACK ack, or inside the next block) of bytes
// of r.
func dsackOf(blocks []tcpwire.SACKBlock, ack tcpwire.Seq, r span) bool {
	if len(blocks) == 0 {
		return false
	}
	l, rt := tcpwire.Seq(blocks[0].Left), tcpwire.Seq(blocks[0].Right)
	if !rt.LessThanEq(ack) && !dsackInNext(blocks) {
		return false
	}
	return spans{r}.overlap(l, rt)
}

// dsackInNext reports whether an ACK's first SACK block lies inside its
// second: a D-SACK (RFC 2883) of bytes the peer had reported.
func dsackInNext(blocks []tcpwire.SACKBlock) bool {
	return len(blocks) > 1 && tcpwire.Seq(blocks[1].Left).LessThanEq(tcpwire.Seq(blocks[0].Left)) &&
		tcpwire.Seq(blocks[0].Right).LessThanEq(tcpwire.Seq(blocks[1].Right))
}

// dropSackedBelow forgets the SACKed ranges the cumulative ACK ack has
// passed (a D-SACK's too, so that the next D-SACK of the same bytes
// answers the next duplicate): the list would otherwise grow with the
// connection.
func (b *builder) dropSackedBelow(ack tcpwire.Seq) {
	sacked := b.peerSacked[:0]
	for _, r := range b.peerSacked {
		if ack.LessThan(r.end) {
			sacked = append(sacked, r)
		}
	}
	b.peerSacked = sacked
}

// spans is a set of sequence ranges.
type spans []span

// overlap reports whether [start, end) overlaps any of the spans.
func (ss spans) overlap(start, end tcpwire.Seq) bool {
	for _, r := range ss {
		if start.LessThan(r.end) && r.start.LessThan(end) {
			return true
		}
	}
	return false
}

// without appends the spans less the bytes of x to out, which must not
// share their memory.
func (ss spans) without(x span, out spans) spans {
	for _, s := range ss {
		if !s.start.LessThan(x.end) || !x.start.LessThan(s.end) {
			out = append(out, s)
			continue
		}
		if s.start.LessThan(x.start) {
			out = append(out, span{s.start, x.start})
		}
		if x.end.LessThan(s.end) {
			out = append(out, span{x.end, s.end})
		}
	}
	return out
}

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
