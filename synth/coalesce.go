package synth

import (
	"fmt"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
)

// maxGSOPayload bounds the payload of one injected GSO packet: its IP
// length field has 16 bits, and headers take up to 120 bytes of it.
const maxGSOPayload = 65535 - 120

// backlogSpan bounds the time over which a run's segments arrive: an
// application holds its socket for the copy of a read, microseconds; data
// that trickles in over longer went unacknowledged for other reasons (the
// window did not open), which the replayed kernel reproduces by itself.
const backlogSpan = time.Millisecond

// backlogFlags are the flags that keep a segment out of a coalesced run:
// the kernel's backlog does not coalesce SYN, RST or URG segments
// (tcp_add_backlog), and a FIN ends what the run can hold.
const backlogFlags = capture.FlagSYN | capture.FlagRST | capture.FlagURG | capture.FlagFIN

// backlogRun returns the indexes of the inbound data segments, from
// packet i on, that the captured kernel took as one, or nil. A kernel
// acknowledges in-order data at least every second full segment while its
// window opens, and at once in quick-ACK mode; an ACK that comes right
// after a run of segments and acknowledges them all, none before them,
// shows that they were processed together: they queued in the socket's
// backlog while the application held the socket (reading), which
// coalesced them into one buffer, or GRO merged them. A replayed kernel
// that gets them one by one acknowledges otherwise: one ACK too many, or,
// with its window not opening, none until its delayed-ACK timer. Only
// contiguous in-order new data qualifies (no hole pending, no
// retransmission), of full segments of one size (or GRO packets of whole
// segments) but the last, with one ack value, close together. Segments
// that came in after the run but before its ACK left continue it in
// order; the ACK of the run before may leave between the run's segments.
func (b *builder) backlogRun(i int) []int {
	ps := b.f.Packets
	first := &ps[i]
	if b.opts.Strict || !b.rcvInit || len(b.ooo) > 0 || b.fd < 0 || b.closed || !b.established ||
		first.Seq != b.rcvNxt || !coalescible(first) {
		return nil
	}
	size := b.segSize(first, b.remote)
	if size == 0 || first.PayloadLen%size != 0 || b.gsoSize != 0 && size != b.gsoSize {
		return nil
	}
	var in []int
	var a *capture.FlowPacket // the run's ACK
	for j := i; j < len(ps) && a == nil; j++ {
		q := &ps[j]
		switch {
		case q.Time.Sub(first.Time) > backlogSpan+toleranceUsecs*time.Microsecond:
			return nil
		case q.From == b.remote:
			in = append(in, j)
		case pureACK(q) && !first.Seq.LessThan(q.Ack):
			// The ACK of what came before the run.
		default:
			a = q
		}
	}
	if a == nil || !pureACK(a) || !first.Seq.LessThan(a.Ack) || a.Options().NumSACK > 0 {
		return nil
	}
	end, n := first.Seq, 0
	for ; n < len(in) && end != a.Ack; n++ {
		k := in[n]
		q := &ps[k]
		if n > 0 && ps[in[n-1]].PayloadLen%size != 0 || q.Seq != end || !coalescible(q) || q.Ack != first.Ack ||
			q.TOS != first.TOS || q.Window == 0 || k == b.teardown || q.Time.Sub(first.Time) > backlogSpan ||
			a.Ack.LessThan(q.Seq.Add(uint32(q.PayloadLen))) {
			return nil
		}
		end = end.Add(uint32(q.PayloadLen))
	}
	if n < 2 || end != a.Ack || a.Time.Sub(ps[in[n-1]].Time) >= toleranceUsecs*time.Microsecond {
		return nil
	}
	// Segments that came in after the run but before the ACK left must
	// continue it in order: an out-of-order one would have triggered the
	// ACK (a duplicate ACK, which the replayed kernel sends too).
	for _, k := range in[n:] {
		q := &ps[k]
		if q.Seq != end || q.Flags&(capture.FlagSYN|capture.FlagRST) != 0 {
			return nil
		}
		end = end.Add(uint32(q.PayloadLen))
	}
	return in[:n]
}

// coalescible reports whether p can be part of a coalesced run: data with
// an ACK and none of backlogFlags.
func coalescible(p *capture.FlowPacket) bool {
	return p.PayloadLen > 0 && p.Flags.Has(capture.FlagACK) && p.Flags&backlogFlags == 0
}

// deferred reports whether packet i belongs to the pending coalesced run,
// which inboundRun injects at its last packet.
func (b *builder) deferred(i int) bool {
	for _, k := range b.run {
		if k == i {
			return true
		}
	}
	return false
}

// inboundRun injects the pending run that backlogRun found as one GSO
// packet (or a few, each within maxGSOPayload) at the time of its last
// segment, with the last segment's ack, window and options, and PSH if any
// segment had it. One packet, not one per group of identical options (as
// the backlog and GRO coalesce), because the captured kernel sent one ACK
// for the run: a replayed kernel decides on an ACK after each packet.
// After three segments or more, the application reads what arrived before
// the ACK: the captured kernel acknowledged them at once, which without
// the application reading it does not (see backlogRun), and a read does
// (tcp_cleanup_rbuf).
func (b *builder) inboundRun() {
	run := make([]*capture.FlowPacket, len(b.run))
	segs := 0
	for k, i := range b.run {
		run[k] = &b.f.Packets[i]
		segs += run[k].PayloadLen / b.segSize(run[k], b.remote)
	}
	b.run = b.run[:0]
	if b.gsoSize == 0 {
		b.gsoSize = b.segSize(run[0], b.remote)
	}
	b.count.mergedRuns++
	b.count.merged += len(run)
	b.comment(fmt.Sprintf("%d segments that the captured kernel took as one (then acknowledged at once): injected as one GSO packet.", len(run)))
	for k := 0; k < len(run); {
		n, total := 1, run[k].PayloadLen
		for k+n < len(run) && total+run[k+n].PayloadLen <= maxGSOPayload {
			total += run[k+n].PayloadLen
			n++
		}
		b.inboundGroup(run[k : k+n])
		k += n
	}
	if segs >= 3 {
		b.flushReadAt(run[len(run)-1].Time)
	}
}

// inboundGroup injects contiguous data segments as one packet.
func (b *builder) inboundGroup(g []*capture.FlowPacket) {
	last := g[len(g)-1]
	if len(g) == 1 {
		b.inbound(last)
		return
	}
	b.closeWrite()
	b.inSeen, b.lastInWin = true, last.Window
	var fl capture.TCPFlags
	for _, q := range g {
		fl |= q.Flags
		b.trackInbound(q)
	}
	pk := b.convert(last, true)
	pk.TCP.Seq = rel(g[0].Seq, b.remoteISN)
	pk.TCP.Len = uint32(last.Seq.Add(uint32(last.PayloadLen)).Diff(g[0].Seq))
	pk.TCP.Flags = flagText(last.Flags | fl&capture.FlagPSH)
	if b.fits(last, pk) {
		b.emit(last.Time, pk)
	}
}
