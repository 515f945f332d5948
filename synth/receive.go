package synth

import (
	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// receiver is the local side's receive state as the capture shows it: where
// the remote's data has arrived in order up to, what of it the application
// has not read yet, the segments that came in ahead of a hole, the urgent
// byte and the FIN. The builder asks it what a remote segment does and
// turns that into reads and comments.
type receiver struct {
	nxt     tcpwire.Seq // the next sequence number expected from the remote
	init    bool        // nxt is known (the remote's SYN, or the start of a partial capture)
	finRcvd bool        // the remote's FIN arrived in order
	ooo     outOfOrder
	unread  int64 // bytes received in order and not read yet
	urgAt   int64 // unread bytes before the remote's urgent byte, or -1 (see urgent)
}

// start sets where the remote's data starts (after its SYN).
func (r *receiver) start(next tcpwire.Seq) { r.nxt, r.init = next, true }

// arrival is what a remote segment's data does at the receiver.
type arrival uint8

const (
	inOrder arrival = iota // readable now (with what it joins of the out-of-order queue)
	again                  // a retransmission of data the kernel already has
	ahead                  // out of order: a hole precedes it
)

// data takes the data of the remote segment p (not a SYN, known start).
func (r *receiver) data(p *capture.FlowPacket) arrival {
	seq := p.Seq
	end := seq.Add(uint32(p.PayloadLen()))
	switch {
	case end.LessThanEq(r.nxt):
		return again
	case r.nxt.LessThan(seq):
		r.ooo.push(span{seq, end}, r.nxt)
		return ahead
	}
	adv := int64(end.Diff(r.nxt))
	r.urgent(p, end)
	next, more := r.ooo.fill(end)
	r.nxt = next
	r.unread += adv + more
	return inOrder
}

// fin takes the FIN of the remote segment p, which counts once it is in
// order: it takes the sequence number after the data.
func (r *receiver) fin(p *capture.FlowPacket) {
	if p.Flags.Has(tcpwire.FlagFIN) && p.Seq.Add(uint32(p.PayloadLen())) == r.nxt {
		r.nxt = r.nxt.Add(1)
		r.finRcvd = true
	}
}

// urgent notes where the urgent byte of the in-order inbound segment p
// (ending at end) falls among the unread bytes. Linux (tcp_stdurg off)
// takes the byte before the urgent pointer out of band: a read never
// returns it, and stops before it when it has copied data already
// (tcp_recvmsg).
func (r *receiver) urgent(p *capture.FlowPacket, end tcpwire.Seq) {
	if !p.Flags.Has(tcpwire.FlagURG) || p.Urgent == 0 {
		return
	}
	u := p.Seq.Add(uint32(p.Urgent) - 1)
	if u.LessThan(r.nxt) || !u.LessThan(end) {
		return
	}
	r.urgAt = r.unread + int64(u.Diff(r.nxt))
}

// synData takes the data of the remote's SYN once the local SYN-ACK
// acknowledges it (ack): a Fast Open server accepted it.
func (r *receiver) synData(ack tcpwire.Seq) {
	if r.init && r.nxt.LessThan(ack) && ack.Diff(r.nxt) < 1<<16 {
		r.unread += int64(ack.Diff(r.nxt))
		r.nxt = ack
	}
}

// take returns the unread bytes and where the urgent byte falls among
// them (-1: none), and empties the receive queue: the application reads.
func (r *receiver) take() (n, urgAt int64) {
	n, urgAt = r.unread, r.urgAt
	r.unread, r.urgAt = 0, -1
	return n, urgAt
}

// outOfOrder holds the remote's segments that came in ahead of a hole,
// until the data before them arrives. It is a min-heap on where they start
// (their offset from base, where the receiver was when the first of them
// came), so that filling a hole takes the segments it joins and looks at no
// other: a list searched from the start on each arrival made a capture
// with thousands of segments ahead of a hole take work that grew with the
// square of its packets.
type outOfOrder struct {
	spans []span
	base  tcpwire.Seq
}

func (o *outOfOrder) len() int { return len(o.spans) }

// push adds the segment s, which starts ahead of next, the receiver's next
// expected sequence number.
func (o *outOfOrder) push(s span, next tcpwire.Seq) {
	if len(o.spans) == 0 {
		o.base = next
	}
	o.spans = append(o.spans, s)
	for i := len(o.spans) - 1; i > 0; {
		up := (i - 1) / 2
		if !o.less(i, up) {
			break
		}
		o.spans[i], o.spans[up] = o.spans[up], o.spans[i]
		i = up
	}
}

// fill takes out the segments that start at or before next, the
// receiver's next expected sequence number, and returns where the data
// received in order now ends and how many bytes that adds to next.
func (o *outOfOrder) fill(next tcpwire.Seq) (tcpwire.Seq, int64) {
	var adv int64
	for len(o.spans) > 0 && o.spans[0].start.LessThanEq(next) {
		if s := o.spans[0]; next.LessThan(s.end) {
			adv += int64(s.end.Diff(next))
			next = s.end
		}
		o.pop()
	}
	return next, adv
}

// pop removes the first segment.
func (o *outOfOrder) pop() {
	n := len(o.spans) - 1
	o.spans[0] = o.spans[n]
	o.spans = o.spans[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && o.less(l, least) {
			least = l
		}
		if r < n && o.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		o.spans[i], o.spans[least] = o.spans[least], o.spans[i]
		i = least
	}
}

func (o *outOfOrder) less(i, j int) bool {
	return uint32(o.spans[i].start-o.base) < uint32(o.spans[j].start-o.base)
}
