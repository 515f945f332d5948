package synth

import "github.com/pcap2pkt/pcap2pkt/capture/tcpwire"

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
