package synth

import (
	"fmt"
	"slices"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// maxGSOPayload bounds the payload of one injected GSO packet: its IP
// length field has 16 bits, and headers take up to 120 bytes of it.
const maxGSOPayload = 65535 - 120

// backlogSpan bounds the time over which a run's segments arrive: an
// application holds its socket for the copy of a read, microseconds; data
// that trickles in over longer went unacknowledged for other reasons (the
// window did not open), which the replayed kernel reproduces by itself.
const backlogSpan = time.Millisecond

// maxRun bounds the packets that a run injected later (backlogRun,
// unacked) spans from its first segment to the ACK after it. A kernel takes
// as one what came in while its application held the socket for one copy,
// a few segments (the shared and e2e captures: at most five); without a
// bound, a capture whose packets share a timestamp made every inbound
// segment scan the rest of its flow, work that grew with the square of
// the packets (8,000 segments: 1.4 s).
const maxRun = 256

// readChunk bounds the bytes one read covers while inbound data keeps
// coming: a replayed receiver that reads late would see its window close
// and drop injected data that the captured kernel, whose application read
// as data came, accepted.
const readChunk = 32 << 10

// coalescing is the builder's state for the inbound runs injected later
// than captured (deferInbound): the pending run, and the segment size of
// the runs injected as GSO packets.
type coalescing struct {
	gsoSize  int   // segment size of the coalesced runs injected as GSO packets (--mss), 0 if none
	run      []int // indexes of inbound packets injected after packet runAt (see deferInbound)
	runBuf   []int // backlogRun's and unacked's memory for run (which they find only while it is nil)
	runAt    int
	merge    bool // the run is one the kernel coalesced (see backlogRun)
	runReads bool // the application reads the run before its ACK
}

// backlogFlags are the flags that keep a segment out of a coalesced run:
// the kernel's backlog does not coalesce SYN, RST or URG segments
// (tcp_add_backlog), and a FIN ends what the run can hold.
const backlogFlags = tcpwire.FlagSYN | tcpwire.FlagRST | tcpwire.FlagURG | tcpwire.FlagFIN

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
func (b *builder) backlogRun(i int) (run []int, at int) {
	ps := &b.f.Packets
	first := ps.At(i)
	if !b.nextInOrder(first) {
		return nil, 0
	}
	size := b.segSize(first, b.remote)
	if size == 0 || first.PayloadLen()%size != 0 || b.gsoSize != 0 && size != b.gsoSize {
		return nil, 0
	}
	in := b.runBuf[:0]
	defer func() { b.runBuf = in[:0] }()
	var a *capture.FlowPacket // the run's ACK, packet j
	j := i
	for ; j < ps.Len() && a == nil; j++ {
		q := ps.At(j)
		switch {
		case j-i >= maxRun:
			return nil, 0
		case q.Time().Sub(first.Time()) > backlogSpan+b.tolerance():
			return nil, 0
		case q.From == b.remote:
			in = append(in, j)
		case pureACK(q) && !first.Seq.LessThan(q.Ack):
			// The ACK of what came before the run: the kernel sent it
			// before it took the run.
			at = j
		default:
			a = q
		}
	}
	j--
	if a == nil || !pureACK(a) || !first.Seq.LessThan(a.Ack) || a.Options().NumSACK > 0 {
		return nil, 0
	}
	end, n := first.Seq, 0
	for ; n < len(in) && end != a.Ack; n++ {
		k := in[n]
		q := ps.At(k)
		if n > 0 && ps.At(in[n-1]).PayloadLen()%size != 0 || q.Seq != end || !coalescible(q) || q.Ack != first.Ack ||
			q.TOS != first.TOS || q.Window == 0 || k == b.teardown || q.Time().Sub(first.Time()) > backlogSpan ||
			a.Ack.LessThan(q.Seq.Add(uint32(q.PayloadLen()))) {
			return nil, 0
		}
		end = end.Add(uint32(q.PayloadLen()))
	}
	if n < 2 || end != a.Ack || a.Time().Sub(ps.At(in[n-1]).Time()) >= b.tolerance() ||
		int(end.Diff(first.Seq)) <= 2*size && !b.ackingEach(j, size) && !b.readingOn(i) {
		return nil, 0
	}
	// Segments that came in after the run but before the ACK left must
	// continue it in order: an out-of-order one would have triggered the
	// ACK (a duplicate ACK, which the replayed kernel sends too).
	for _, k := range in[n:] {
		q := ps.At(k)
		if q.Seq != end || q.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 {
			return nil, 0
		}
		end = end.Add(uint32(q.PayloadLen()))
	}
	b.runReads = !b.updateFollows(j) && !b.edgeHeld(j)
	return in[:n], max(at, in[n-1])
}

// edgeHeld reports whether the next outbound packet after the pure ACK at
// index j, within the tolerance, is a pure ACK of more data with the same
// right window edge: the application was not reading (its data filled
// the window), so it did not read before the ACK at j either.
func (b *builder) edgeHeld(j int) bool {
	ps := &b.f.Packets
	a := ps.At(j)
	for k := j + 1; k < ps.Len(); k++ {
		q := ps.At(k)
		if q.From != b.local {
			continue
		}
		if !pureACK(q) || !a.Ack.LessThan(q.Ack) || q.Time().Sub(a.Time()) >= b.tolerance() {
			return false
		}
		unit := int32(1) << b.localWScale
		edge := func(p *capture.FlowPacket) tcpwire.Seq { return p.Ack.Add(uint32(b.outWin(p)) << b.localWScale) }
		d := edge(q).Diff(edge(a))
		return -unit <= d && d <= unit
	}
	return false
}

// updateFollows reports whether the packet after the pure ACK at index j
// is a window update of it (outbound, same ack, more window, no SACK)
// within the tolerance: the application read after that ACK, and the read
// made room.
func (b *builder) updateFollows(j int) bool {
	ps := &b.f.Packets
	if j+1 >= ps.Len() {
		return false
	}
	q := ps.At(j + 1)
	return q.From == b.local && pureACK(q) && q.Ack == ps.At(j).Ack && b.outWin(q) > b.outWin(ps.At(j)) &&
		q.Options().NumSACK == 0 && q.Time().Sub(ps.At(j).Time()) < b.tolerance()
}

// unacked returns the in-order inbound data segments from packet i on
// that came in before the next outbound packet, a pure ACK, left but that
// it does not acknowledge, and that packet's index; or nil. The kernel
// sent that ACK before it took them (the capture saw them arrive first):
// injected before it, they would make the replayed kernel acknowledge
// them too, or read them before it.
func (b *builder) unacked(i int) (run []int, at int) {
	ps := &b.f.Packets
	p := ps.At(i)
	if !b.nextInOrder(p) {
		return nil, 0
	}
	end, j := p.Seq, i
	got := b.runBuf[:0]
	defer func() { b.runBuf = got[:0] }()
	for ; j < ps.Len() && ps.At(j).From == b.remote; j++ {
		q := ps.At(j)
		if j-i >= maxRun || q.Seq != end || !coalescible(q) || j == b.teardown || q.Time().Sub(p.Time()) >= b.tolerance() {
			return nil, 0
		}
		end = end.Add(uint32(q.PayloadLen()))
		got = append(got, j)
	}
	if j == ps.Len() || !pureACK(ps.At(j)) || ps.At(j).Ack != p.Seq || ps.At(j).Options().NumSACK > 0 ||
		ps.At(j).Time().Sub(p.Time()) >= b.tolerance() {
		return nil, 0
	}
	return got, j
}

// deferInbound reports whether inbound packet i goes into a run injected
// later (backlogRun, unacked) instead of now.
func (b *builder) deferInbound(i int) bool {
	if b.run != nil {
		return false
	}
	if run, at := b.backlogRun(i); run != nil {
		b.run, b.runAt, b.merge = run, at, true
		return true
	}
	if run, at := b.unacked(i); run != nil {
		b.run, b.runAt, b.merge = run, at, false
		return true
	}
	return false
}

// ackingEach reports whether the outbound packet next to the pure ACK at
// index j, before or after it, is a pure ACK of exactly one more full
// segment than the outbound packet before it: the kernel was acknowledging
// each segment then (quick-ACK mode, or its window growing). Two segments
// and one ACK are otherwise the kernel's ACK of every second segment,
// which it sends the same for two packets, unless they came while the
// application read (readingOn). Merging such pairs in request-response
// exchanges changed the replayed kernel's ACKs of later ones.
func (b *builder) ackingEach(j, size int) bool {
	ps := &b.f.Packets
	one := func(k int) bool {
		if !pureACK(ps.At(k)) {
			return false
		}
		for m := k - 1; m >= 0; m-- {
			if q := ps.At(m); q.From == b.local && q.Flags.Has(tcpwire.FlagACK) {
				return int(ps.At(k).Ack.Diff(q.Ack)) == size
			}
		}
		return false
	}
	for k := j - 1; k >= 0; k-- {
		if ps.At(k).From == b.local {
			if one(k) {
				return true
			}
			break
		}
	}
	for k := j + 1; k < ps.Len(); k++ {
		if ps.At(k).From == b.local {
			return one(k)
		}
	}
	return false
}

// readingOn reports whether inbound packet i came in right after an
// outbound pure ACK (within backlogSpan): the application that read what
// that ACK acknowledged may still hold the socket.
func (b *builder) readingOn(i int) bool {
	ps := &b.f.Packets
	for k := i - 1; k >= 0; k-- {
		if q := ps.At(k); q.From == b.local {
			return pureACK(q) && ps.At(i).Time().Sub(q.Time()) <= backlogSpan
		}
	}
	return false
}

// nextInOrder reports whether inbound segment p may start a run that is
// injected later (backlogRun, unacked): the next in-order data, no hole
// pending, on an open connection, and not a Strict synthesis.
func (b *builder) nextInOrder(p *capture.FlowPacket) bool {
	return !b.opts.Strict && b.rcv.init && b.rcv.ooo.len() == 0 && b.fd >= 0 && !b.closed && b.established &&
		p.Seq == b.rcv.nxt && coalescible(p)
}

// coalescible reports whether p can be part of a coalesced run: data with
// an ACK and none of backlogFlags.
func coalescible(p *capture.FlowPacket) bool {
	return p.PayloadLen() > 0 && p.Flags.Has(tcpwire.FlagACK) && p.Flags&backlogFlags == 0
}

// deferred reports whether packet i belongs to the pending coalesced run,
// which inboundRun injects at its last packet.
func (b *builder) deferred(i int) bool {
	_, ok := slices.BinarySearch(b.run, i) // in packet order
	return ok
}

// inboundRun injects the pending run after packet runAt, at the later of
// its last segment's time and that packet's. A run that backlogRun found
// goes as one GSO packet (or a few, each within maxGSOPayload) with the
// last segment's ack, window and options, and PSH if any segment had it.
// One packet, not one per group of identical options (as the backlog and
// GRO coalesce), because the captured kernel sent one ACK for the run: a
// replayed kernel decides on an ACK after each packet. After three
// segments or more, the application reads what arrived before the ACK:
// the captured kernel acknowledged them at once, which without the
// application reading it does not (see backlogRun), and a read does
// (tcp_cleanup_rbuf); unless a window update follows the ACK, which shows
// that the read came after it, or the next ACK keeps the window's right
// edge, which shows that the application was not reading. The segments
// that unacked found go one by one.
func (b *builder) inboundRun() {
	at := b.f.Packets.At(b.runAt).Time()
	run := make([]*capture.FlowPacket, len(b.run))
	segs := 0
	for k, i := range b.run {
		q := *b.f.Packets.At(i)
		if q.Time().Before(at) {
			q.SetTime(at)
		}
		run[k] = &q
		if m := b.segSize(&q, b.remote); m > 0 {
			segs += q.PayloadLen() / m
		}
	}
	b.run = nil
	b.prevTime = at
	if !b.merge {
		b.comment("Captured before the ACK above left, which does not acknowledge it: the kernel took it after sending that ACK.")
		for _, q := range run {
			b.maybeFlushRead(q, true)
			b.inbound(q)
		}
		return
	}
	if b.gsoSize == 0 {
		b.gsoSize = b.segSize(run[0], b.remote)
	}
	b.count.mergedRuns++
	b.count.merged += len(run)
	b.comment(fmt.Sprintf("%d segments that the captured kernel took as one (then acknowledged at once): injected as one GSO packet.", len(run)))
	for k := 0; k < len(run); {
		n, total := 1, run[k].PayloadLen()
		for k+n < len(run) && total+run[k+n].PayloadLen() <= maxGSOPayload {
			total += run[k+n].PayloadLen()
			n++
		}
		b.inboundGroup(run[k : k+n])
		k += n
	}
	if segs >= 3 && b.runReads {
		b.flushReadAt(at)
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
	var fl tcpwire.Flags
	// What the segments acknowledge: the group answers the latest
	// transmission any of them answers (the peer's view of what it had
	// acknowledged moves on with each, as it would for them one by one).
	var anchor time.Time
	anchorN := 0
	for _, q := range g {
		fl |= q.Flags
		b.trackInbound(q)
		if at, n, ok := b.answers(q); ok && (anchor.IsZero() || at.After(anchor)) {
			anchor, anchorN = at, n
		}
	}
	pk := b.convert(last, true)
	pk.TCP.Seq = rel(g[0].Seq, b.remoteISN)
	pk.TCP.Len = uint32(last.Seq.Add(uint32(last.PayloadLen())).Diff(g[0].Seq))
	pk.TCP.Flags = flagText(last.Flags | fl&tcpwire.FlagPSH)
	if b.fits(last, pk) {
		e := b.emit(last.Time(), pk)
		if !anchor.IsZero() {
			b.anchor(e, anchor, anchorN)
		}
	}
}

// maybeFlushRead emits the read for the inbound data received so far
// unless p continues the burst: more inbound data (up to readChunk), a
// delayed ACK the kernel sends for it, or anything inbound while the local
// side advertises a zero window. The read comes before an ACK sent at once:
// the kernel sends that one whether or not the application reads (quick
// ACK), or because it read (tcp_cleanup_rbuf). A window update follows the
// read that made room.
func (b *builder) maybeFlushRead(p *capture.FlowPacket, in bool) {
	if b.rcv.unread == 0 {
		return
	}
	fl := p.Flags
	switch {
	case in && p.PayloadLen() > 0 && !fl.Has(tcpwire.FlagSYN) && !fl.Has(tcpwire.FlagRST) && b.rcv.unread < readChunk:
		return
	case !in && pureACK(p) && !b.windowUpdate(p) && p.Time().Sub(b.prevTime) >= b.tolerance():
		// A delayed ACK: the application had not read yet, or its read
		// would have made the kernel ACK at once.
		return
	case !in && pureACK(p) && b.outSeen && (b.outWin(p) < b.lastOutWin || b.outWin(p) == 0 || b.holding && b.outWin(p) <= b.lastOutWin):
		// The ACK offers less window than before, or none: the data sits
		// unread. The application reads where the window opens again.
		b.holding = true
		return
	case in && b.outSeen && (b.lastOutWin == 0 || b.holding) && !fl.Has(tcpwire.FlagRST):
		// The local side is not reading (it advertised less window, or
		// none): it reads where the window opens again.
		return
	case !in && pureACK(p) && b.windowUpdate(p):
		// A window update follows the read that made room.
		b.flushReadAt(p.Time())
		return
	}
	b.flushRead()
}

// windowUpdate reports whether the outbound pure ACK p only opens the window.
func (b *builder) windowUpdate(p *capture.FlowPacket) bool {
	return b.outSeen && p.Ack == b.lastOutAck && b.outWin(p) > b.lastOutWin
}

// flushRead emits `read(fd, ..., N) = N` for the data received in order
// and not read yet.
func (b *builder) flushRead() { b.flushReadAt(b.lastAt()) }

// flushReadAt emits the pending read at time at.
func (b *builder) flushReadAt(at time.Time) {
	if b.rcv.unread == 0 {
		return
	}
	b.holding = false
	if b.fd < 0 {
		// Data before accept() (in the SYN, with Fast Open): read later.
		return
	}
	n, urg := b.rcv.take()
	if b.closed {
		return
	}
	if urg >= 0 && urg < n {
		// The urgent byte is not read; a read stops before it.
		n--
		if urg > 0 && urg < n {
			b.reads(at, urg)
			n -= urg
		}
		if n == 0 {
			return
		}
	}
	b.reads(at, n)
	b.lastCall, b.lastReadN = "read", min(n, maxCall)
}

// reads emits the reads of n bytes, one unless n is over maxCall.
func (b *builder) reads(at time.Time, n int64) {
	for ; n > maxCall; n -= maxCall {
		b.count.bigCalls++
		b.rwCall(at, "read", maxCall)
	}
	b.rwCall(at, "read", n)
}
