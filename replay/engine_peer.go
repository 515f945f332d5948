package replay

// This file makes the injected peer answer what the kernel actually sent,
// when it sent it (--pcap2pkt scripts, engine_stream.go has the rest). An
// inbound line whose time is anchored (`+0.020^`) is injected that long
// after the kernel's latest transmission of what the packet answers: the
// last byte it newly acknowledges or SACKs, or the SYN a SYN-ACK answers.
// A kernel that sends a little later than the captured one (a congestion
// window a segment short after many round trips, a transmit sized
// otherwise) gets its ACKs that much later, as from a real peer, instead
// of ACKs for data it has not sent.
//
// And such a line is injected when it is due even while the script waits
// at an outbound line before it: the data that line expects may need the
// ACK first (the kernel's window is full), as it needed it from the
// captured peer, which did not wait for the line to be read.

import (
	"context"
	"fmt"
	"iter"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// transmission is one segment the kernel sent that occupies sequence
// space (data, SYN or FIN), in script space.
type transmission struct {
	start, end tcpwire.Seq
	at         time.Time
	n          int // which transmission of its bytes (see nthOf)
	// stood is set on a retransmission the kernel did not make, standing
	// for the captured kernel's that the peer's ACK made needless (see
	// notePreempted): what answers it in the script answers this.
	stood bool
}

// noteTransmission logs a packet of the connection that occupies
// sequence space.
func (e *engine) noteTransmission(t *tcpwire.TCPHeader, payload int, at time.Time) {
	start := t.Seq
	end := streamEnd(t, payload)
	if start == end {
		return
	}
	e.logSent(seqRange{start, end}, at, false)
	e.sentData = e.sentData || end.Diff(start) > 1
}

// logSent logs a transmission of r at at, numbered among those of its
// bytes; stood: one the kernel did not make, standing in for the
// retransmission the script expects that the peer's ACK made needless
// (see notePreempted), for the lines that answer it.
func (e *engine) logSent(r seqRange, at time.Time, stood bool) {
	n := nthOf(e.sent, transmissionOf, r, &e.sentHigh, &e.sentIdx)
	e.sentIdx.add(len(e.sent), r)
	e.sent = append(e.sent, transmission{start: r.start, end: r.end, at: at, n: n, stood: stood})
}

// seqHigh is the end of the highest sequence number sent so far.
type seqHigh struct {
	end tcpwire.Seq
	set bool
}

// advance moves the mark to r's end when that is beyond it, and returns
// how far it moved (r's length when nothing was sent before), 0 when r
// sends nothing new.
func (h *seqHigh) advance(r seqRange) int64 {
	if h.set && h.end.Diff(r.end) >= 0 {
		return 0
	}
	from := r.start
	if h.set {
		from = h.end
	}
	h.end, h.set = r.end, true
	return int64(r.end.Diff(from))
}

// nthOf returns which transmission of its bytes r is, given those before
// it: one more than the most times any of its bytes was sent (a
// retransmission cut otherwise than the first sending is its second
// transmission, however many segments it spans), 1 for new data. The
// synthesiser numbers the captured kernel's transmissions the same way
// (synth's noteSent). It moves high past r. idx, when not nil, indexes
// before (see seqIndex.touching).
func nthOf[T any](before []T, tx func(T) (seqRange, int), r seqRange, high *seqHigh, idx *seqIndex) int {
	n := 1
	if high.set && r.start.Diff(high.end) < 0 {
		idx.touching(len(before), []seqRange{r}, func(i int) bool {
			if u, un := tx(before[i]); r.overlaps(u) {
				n = max(n, un+1)
			}
			return false
		})
	}
	high.advance(r)
	return n
}

// peerState is what the injected peer has acknowledged so far, in script
// space: an anchored line answers what goes beyond it.
type peerState struct {
	ackSet bool
	ack    tcpwire.Seq
	sacked []seqRange // every block it reported, merged and sorted
}

// news returns what line sp acknowledges or SACKs beyond what peer saw
// before (the ranges it answers), empty when nothing.
func news(peer *peerState, sp *scriptPacket) []seqRange {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 {
		return nil
	}
	var out []seqRange
	a := tcpwire.Seq(sp.ack)
	switch {
	case !peer.ackSet:
		out = append(out, seqRange{a.Add(^uint32(0)), a}) // the SYN (or FIN) it answers
	case peer.ack.Diff(a) < 0:
		out = append(out, seqRange{peer.ack, a})
	}
	blocks := sackBlocks(sp.options)
	for i, b := range blocks {
		if (i == 0 && len(blocks) > 1 && covers(blocks[1:2], b)) || !covers(peer.sacked, b) {
			// (A D-SACK inside the next block answers the duplicate of
			// bytes already reported that the path made.)
			out = append(out, b)
		}
	}
	return out
}

// anchorIn returns which of txs (transmissions in the order they were
// sent) an ACK that answers ranges and came after the n-th transmission of
// some of their bytes answers: the later of the one that completed the
// first transmission of all of them (no ACK acknowledges data not sent)
// and the first n-th transmission of any of them (the retransmission that
// filled a hole). False when txs do not hold that yet.
// idx, when not nil, indexes txs (see seqIndex.touching).
func anchorIn[T any](txs []T, tx func(T) (seqRange, int), ranges []seqRange, n int, idx *seqIndex) (int, bool) {
	var covered []seqRange
	full, reach := -1, -1
	idx.touching(len(txs), ranges, func(i int) bool {
		r, rn := tx(txs[i])
		if !overlapsAny(ranges, r) {
			return false
		}
		if full < 0 {
			covered = append(covered, r)
			if coversAll(covered, ranges) {
				full = i
			}
		}
		if reach < 0 && rn >= n {
			reach = i
		}
		return full >= 0 && reach >= 0
	})
	if full < 0 || reach < 0 {
		return -1, false
	}
	return max(full, reach), true
}

// notePeerState adds what line sp (as written) acknowledged and SACKed.
func notePeerState(peer *peerState, sp *scriptPacket) {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 {
		return
	}
	if a := tcpwire.Seq(sp.ack); !peer.ackSet || peer.ack.Diff(a) < 0 {
		peer.ack, peer.ackSet = a, true
	}
	// Kept merged: news asks whether a block is covered at every line a
	// run injects, and a bulk transfer's peer sends thousands of blocks
	// over a few dozen ranges.
	for b := range eachSACK(sp.options) {
		if b.start.Diff(b.end) < 0 {
			peer.sacked = mergeRange(peer.sacked, b)
		}
	}
}

// peerSignal is an injected ACK as loss detection sees it: when it went
// in, what it acknowledged, and the highest sequence number its SACK
// blocks reached (set: it had one).
type peerSignal struct {
	at       time.Time
	began    time.Time // when its injection began (the kernel may answer within it)
	ack      tcpwire.Seq
	sackHigh tcpwire.Seq
	sacked   bool
	blocks   []seqRange
}

// showsLost reports whether the ACK tells the kernel seq may be lost: it
// does not acknowledge seq, none of its SACK blocks holds it, and one
// reaches beyond it. That is the hole at the ACK (the first to be
// retransmitted) or one between two blocks: once in recovery with no
// reordering seen, RACK marks a hole lost on the first SACK above it.
func (sig peerSignal) showsLost(seq tcpwire.Seq) bool {
	if !sig.sacked || sig.ack.Diff(seq) > 0 || sig.sackHigh.Diff(seq) <= 0 {
		return false
	}
	for _, b := range sig.blocks {
		if b.start.Diff(seq) <= 0 && seq.Diff(b.end) < 0 {
			return false
		}
	}
	return true
}

// lossSignal returns when the peer first told the kernel, after it sent
// seq the time before at, that seq may be lost (see showsLost). A fast
// retransmission or RACK's may come from then on: the captured kernel,
// which handled those ACKs in a batch after a burst it was sending (the
// socket was busy), may have sent it later than a replayed one does.
func (e *engine) lossSignal(seq tcpwire.Seq, before time.Time) (time.Time, bool) {
	prev, ok := e.lastSent(seq, before)
	if !ok {
		return time.Time{}, false
	}
	for _, sig := range e.signals {
		if !sig.at.Before(prev) && sig.showsLost(seq) {
			return sig.at, true
		}
	}
	return time.Time{}, false
}

// lastSent returns when the kernel last sent byte seq before time before,
// and whether it had.
func (e *engine) lastSent(seq tcpwire.Seq, before time.Time) (time.Time, bool) {
	var last time.Time
	for _, t := range e.sent {
		if t.start.Diff(seq) <= 0 && seq.Diff(t.end) < 0 && t.at.Before(before) {
			last = t.at
		}
	}
	return last, !last.IsZero()
}

// noteSignal records an injected ACK, for lossSignal and
// raceRetransmission.
func (e *engine) noteSignal(sp *scriptPacket, began time.Time) {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 {
		return
	}
	sig := peerSignal{at: e.env.Clock.Now(), began: began, ack: tcpwire.Seq(sp.ack)}
	sig.blocks = sackBlocks(sp.options)
	for _, b := range sig.blocks {
		if !sig.sacked || sig.sackHigh.Diff(b.end) < 0 {
			sig.sackHigh, sig.sacked = b.end, true
		}
	}
	e.signals = append(e.signals, sig)
	if !e.holeSeen && sig.showsHole() {
		e.firstHole, e.holeSeen = len(e.signals)-1, true
	}
}

// covers reports whether the ACK acknowledges or SACKs all of r.
func (sig peerSignal) covers(r seqRange) bool {
	return sig.ack.Diff(r.end) >= 0 || covers(sig.blocks, r)
}

// excusedRetransmission reports whether x, a packet no line took, is a
// retransmission a replay lets be: one that raced an ACK
// (raceRetransmission) or resent bytes the path held back
// (heldBackRetransmission).
func (e *engine) excusedRetransmission(x *sniffed) bool {
	return e.raceRetransmission(x) || e.heldBackRetransmission(x)
}

// resent returns the bytes x carries when it is a data segment (no SYN,
// FIN or RST) that starts with bytes the kernel had sent before it.
func (e *engine) resent(x *sniffed) (seqRange, bool) {
	t := x.p.tcpHeader()
	if t == nil || len(x.p.Payload) == 0 || t.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 {
		return seqRange{}, false
	}
	r := seqRange{t.Seq, t.Seq.Add(uint32(len(x.p.Payload)))}
	_, sentBefore := e.lastSent(r.start, x.at)
	return r, sentBefore
}

// raceRetransmission reports whether x, a packet no line took, is a
// retransmission that raced an ACK: the kernel had sent its bytes before,
// no ACK had covered them, and one the peer sent covered them within the
// tolerance after it. The kernel's loss detection (RACK's timer, a loss
// probe) fired just before an ACK already on its way; the captured
// kernel got that ACK first. Which came first is microsecond timing, what
// a replay through TUN does not reproduce; a retransmission the peer's
// ACKs do not answer at once still fails.
func (e *engine) raceRetransmission(x *sniffed) bool {
	r, ok := e.resent(x)
	if !ok {
		return false
	}
	tol := time.Duration(e.cfg.ToleranceUsecs) * time.Microsecond
	for _, sig := range e.signals {
		if sig.at.Before(x.at) {
			if sig.covers(r) {
				return false // acknowledged already: no race
			}
			continue
		}
		if sig.at.Sub(x.at) > tol {
			break
		}
		if sig.covers(r) {
			return true
		}
	}
	return false
}

// heldBackRetransmission reports whether x, a packet no line took, is a
// retransmission of bytes the captured path held back: an injected ACK
// had shown them lost (bytes above them SACKed) and none had acknowledged
// them when the kernel sent them again, and in the capture the peer got
// them late, from their only transmission, longer after an ACK first
// reported bytes above them than the reordering window of a kernel that
// has seen no duplicate (a quarter of the round trip, min_rtt/4: see
// heldInCapture). RACK waits as long as its window, which D-SACKs widen
// (tcp_rack_update_reo_wnd), and which D-SACKs count follows which of the
// kernel's retransmissions raced the peer's ACKs (a path that duplicates
// segments gets D-SACKs of copies the kernel never sent, which it ignores
// once they outnumber its retransmissions): the captured kernel waited
// the held bytes out where a replayed one, its window a step narrower,
// resends them (traffic6's IPv6 upload's client over a reordering,
// duplicating 10.8 ms path: segments held 3.5 to 7.9 ms past the first
// SACK above them, where RACK's plain window is 2.7 ms, resent in 12 of
// 60 replays). Its copy arrives as a duplicate, which the peer reports
// (dsackFor). A kernel that resends bytes the path held back less than a
// quarter of the round trip, or before any ACK showed them lost, still
// fails.
func (e *engine) heldBackRetransmission(x *sniffed) bool {
	r, ok := e.resent(x)
	if !ok {
		return false
	}
	shown := false
	for _, sig := range e.signals {
		if !sig.began.Before(x.at) {
			break
		}
		if sig.covers(r) {
			return false
		}
		shown = shown || sig.showsLost(r.start)
	}
	return shown && e.heldInCapture(r)
}

// heldInCapture reports whether the captured peer got bytes r from their
// only transmission more than a quarter of the round trip after an ACK
// line first reported bytes above them (see heldBackRetransmission).
func (e *engine) heldInCapture(r seqRange) bool {
	e.lostInCapture()
	shown := false
	var shownAt int64
	for _, a := range e.scriptAcks {
		if a.ack.Diff(r.end) >= 0 || covers(a.sacked, r) {
			if e.scriptSendsBefore(r, 2, a.index) {
				return false // sent again: the capture has its retransmission
			}
			return shown && e.scriptAt[a.index]-shownAt > e.pathSlackUsecs()/2
		}
		if shown || a.ack.Diff(r.start) > 0 {
			continue
		}
		for _, b := range a.sacked {
			if b.start.Diff(r.end) >= 0 {
				shown, shownAt = true, e.scriptAt[a.index]
				break
			}
		}
	}
	return false
}

// heldOneAck reports whether new data the kernel sent late, at at, for
// line index, went out on the first ACK after the one the captured kernel
// sent it on, the kernel in loss recovery or after one: an ACK the peer
// sent before the line's time (due) showed a hole below SACKed data. In
// recovery a kernel sends as the ACKs let it (proportional rate
// reduction), and the window it reduced from, which it keeps after
// (ssthresh) and grows from, follows how its congestion window grew, a
// matter of the ACKs' microsecond timing (cubic's growth counts time
// itself): a segment or two fewer go out on an ACK, and the next ACK, at
// the end of a flight, comes a round trip later (cubic's lossy download's
// server, traffic2: lines 824 and 842, in recovery and in the first flight
// after it, 14 and 22 ms late). So the data counts as on time when it left
// within the tolerance after an injected ACK whose predecessor had
// reported no more than ackClockSegments segments beyond what the
// script's last inbound line before the data line reported (what released
// the data in the capture). A kernel held back longer, or before any loss
// (a smaller initial window), still fails. ACKs injected back to back
// (burstGap apart, all within the tolerance before at) count as one: the
// kernel that sent part of the data on the first of them and the rest on
// the last was held back by the one before them all, as much as a kernel
// that sent it all on one ACK (traffic2's IPv6 lossy 1 MiB download's
// server, line 461: the peer's SACKs and its answer to a retransmission
// came in one train 15 ms after the ACK that released the data's first
// 7140 bytes; 8 segments left on the train's first ACK, the last on its
// last).
//
// Or the kernel, short of the line's end by no more than
// ackClockSegments segments when the line was due, sent it on the first
// ACK (burst) injected after that: its window a segment or two smaller
// than the captured one's, it waits for the next flight's ACKs, whatever
// the ACKs between reported. Where the kernel sent a flight's segments
// sooner than the captured one (a burst where it sent one per ACK), the
// answers to them come sooner too, and the ACK before the releasing one
// reports more than the line that released the data did: cubic's lossy
// download's server (traffic5, line 420): a window one segment short after
// its recovery, the segment before the line 4 segments further reported,
// and the line 11 ms late in 3 replays of 10.
func (e *engine) heldOneAck(index int, end tcpwire.Seq, due, at time.Time) bool {
	k := sort.Search(len(e.signals), func(k int) bool { return e.signals[k].began.After(due) })
	if !e.recovered(k) {
		return false
	}
	capD, ok := e.scriptReported(index)
	if !ok {
		return false
	}
	j, ok := e.releasingSignal(at)
	if !ok || j == 0 {
		return false
	}
	tol := time.Duration(e.cfg.ToleranceUsecs) * time.Microsecond
	for j > 1 && e.signals[j].began.Sub(e.signals[j-1].began) <= burstGap && at.Sub(e.signals[j-1].began) <= tol {
		j--
	}
	prev := e.signals[j-1]
	bound := ackClockSegments * int64(e.segmentBound())
	return reported(prev.ack, prev.blocks) <= capD+bound ||
		!prev.began.After(due) && e.shortOf(end, due) <= bound
}

// shortOf returns how many bytes below end the kernel's highest
// transmission by due ended (0 when it had reached end; a large number
// when it had sent nothing).
func (e *engine) shortOf(end tcpwire.Seq, due time.Time) int64 {
	sent := e.sent[:e.sentBy(due)]
	if len(sent) == 0 {
		return math.MaxInt64
	}
	high := sent[0].end
	for _, t := range sent[1:] {
		high = later(high, t.end)
	}
	return max(0, int64(end.Diff(high)))
}

// burstGap is how closely injected ACKs follow one another to count as
// one burst (see heldOneAck): a run injects a train of lines due at once
// a few tens of microseconds apart.
const burstGap = 200 * time.Microsecond

// releasingSignal returns the injected ACK that data the kernel sent at at
// left on (its index in signals): the last whose injection began before
// at, when at came within the tolerance after that.
func (e *engine) releasingSignal(at time.Time) (int, bool) {
	j := sort.Search(len(e.signals), func(j int) bool { return e.signals[j].began.After(at) }) - 1
	return j, j >= 0 && at.Sub(e.signals[j].began) <= time.Duration(e.cfg.ToleranceUsecs)*time.Microsecond
}

// earlyOneAck is heldOneAck's mirror: whether new data the kernel sent
// early, at at, for line index, went out on an ACK before the one the
// captured kernel sent it on, once the kernel has been in loss recovery:
// its window, which grew from the one recovery reduced from, a segment or
// two larger than the captured one's (cubic's lossy download's server,
// traffic3, line 986: 12 ms early, on the ACK of the flight before). So
// the data counts as on time when it left within the tolerance after an
// injected ACK that reported no more than ackClockSegments segments less
// than the script's last inbound line before the data line (what released
// it in the capture), or no less than the inbound line before that one:
// where each ACK reports more than ackClockSegments segments (a receiver
// that acknowledges every few segments), the ACK before is more segments
// back (cubic's lossy download's server on another capture set, line 894:
// the data 11.6 ms early, on the ACK before, which reported 5 segments
// less). A kernel earlier by more, or before any loss, still fails.
func (e *engine) earlyOneAck(index int, at time.Time) bool {
	j, ok := e.releasingSignal(at)
	if !ok || !e.recovered(j+1) {
		return false
	}
	capD, ok := e.scriptReported(index)
	if !ok {
		return false
	}
	least := capD - ackClockSegments*int64(e.segmentBound())
	if before, ok := e.scriptReportedBefore(index, capD); ok {
		least = min(least, before)
	}
	sig := e.signals[j]
	return reported(sig.ack, sig.blocks) >= least
}

// scriptReportedBefore returns how much the script's last inbound line
// before event index that reported less than than did, and whether there
// is one: the ACK before the one that released a data line.
func (e *engine) scriptReportedBefore(index int, than int64) (int64, bool) {
	for i := index - 1; i >= 0; i-- {
		n, inbound, ok := e.lineReported(i)
		switch {
		case !inbound:
			continue
		case !ok:
			return 0, false
		case n < than:
			return n, true
		}
	}
	return 0, false
}

// ackClockSegments is how many segments' worth of the peer's reports the
// ACK before the one that let new data out may exceed what released it in
// the capture by (see heldOneAck).
const ackClockSegments = 3

// recovered reports whether one of the first k injected ACKs showed a
// hole: the kernel has been in loss recovery, and its window since follows
// the window it reduced from (see heldOneAck).
func (e *engine) recovered(k int) bool {
	return e.holeSeen && e.firstHole < k
}

// showsHole reports whether the ACK SACKed data above a hole.
func (sig peerSignal) showsHole() bool {
	return sig.sacked && sig.sackHigh.Diff(sig.ack) > 0
}

// scriptReported returns how much the script's last inbound line before
// event index reported received (see reported), and whether there is one
// that acknowledges.
func (e *engine) scriptReported(index int) (int64, bool) {
	for i := index - 1; i >= 0; i-- {
		if n, inbound, ok := e.lineReported(i); inbound {
			return n, ok
		}
	}
	return 0, false
}

// lineReported returns how much event i reported received (see reported),
// whether it is an inbound TCP line, and whether it acknowledges.
func (e *engine) lineReported(i int) (n int64, inbound, ok bool) {
	p, isPacket := e.script.Events[i].Action.(*parser.Packet)
	if !isPacket || p.Dir != parser.Inbound || p.TCP == nil {
		return 0, false, false
	}
	sp, err := compilePacket(p, e.cfg.wireIPv6())
	if err != nil || sp.flags&tcpwire.FlagACK == 0 {
		return 0, true, false
	}
	return reported(tcpwire.Seq(sp.ack), sackBlocks(sp.options)), true, true
}

// reported is how many bytes an ACK reports received: up to its
// cumulative ACK and in its SACK blocks above it (script space, from the
// ISN).
func reported(ack tcpwire.Seq, blocks []seqRange) int64 {
	n := int64(uint32(ack))
	var above []seqRange
	for _, b := range blocks {
		if b.end.Diff(ack) > 0 {
			above = mergeRange(above, seqRange{later(b.start, ack), b.end})
		}
	}
	for _, b := range above {
		n += int64(b.end.Diff(b.start))
	}
	return n
}

// transmissionOf gives anchorIn a transmission's range and number.
func transmissionOf(t transmission) (seqRange, int) { return seqRange{t.start, t.end}, t.n }

// anchoredTime returns when an anchored inbound line is due (live time)
// and when the kernel sent what it answers, and whether it has. A line
// that answers nothing new is due at once.
func (e *engine) anchoredTime(ev *parser.Event, sp *scriptPacket) (due, sent time.Time, ok bool) {
	ranges := news(&e.peer, sp)
	if len(ranges) == 0 {
		return e.env.Clock.Now(), e.lastSentSeen, true
	}
	i, ok := anchorIn(e.sent, transmissionOf, ranges, max(ev.Time.AnchorN, 1), &e.sentIdx)
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	at := e.sent[i].at
	return at.Add(time.Duration(ev.Time.Usecs) * time.Microsecond), at, true
}

// awaitAnchor reads the kernel's packets until it has sent what the
// anchored inbound line es answers, and returns when the line is due.
func (e *engine) awaitAnchor(es *eventState, sp *scriptPacket, s *socket) (due, sent time.Time, err *eventError) {
	delay := time.Duration(es.ev.Time.Usecs) * time.Microsecond
	limit := delay + 2*time.Second
	ctx, cancel := context.WithTimeout(e.ctx, limit)
	defer cancel()
	for {
		if due, sent, ok := e.anchoredTime(es.ev, sp); ok {
			return due, sent, nil
		}
		// The kernel may wait for an ACK before it sends what this line
		// answers (its window is smaller than the captured one's was): a
		// real peer would have acknowledged what came by then. When the
		// kernel has sent nothing new for the line's delay, the peer
		// acknowledges what it sent, that long after.
		rctx, rcancel := ctx, context.CancelFunc(func() {})
		partial, due := e.partialAck(es.index, sp, delay)
		if partial {
			rctx, rcancel = context.WithDeadline(ctx, due)
		}
		sn, err := e.sniffCtx(rctx, es, s)
		rcancel()
		if err != nil && partial && ctx.Err() == nil && e.ctx.Err() == nil {
			if ierr := e.injectPartial(sp, s, es.index); ierr != nil {
				return time.Time{}, time.Time{}, &eventError{kind: fatalError, msg: ierr.Error(), err: ierr}
			}
			continue
		}
		if err != nil {
			if e.ctx.Err() == nil {
				what := "data"
				if r := news(&e.peer, sp); len(r) > 0 {
					what = fmt.Sprintf("seq %d:%d", uint32(r[0].start), uint32(r[len(r)-1].end))
				}
				if n := es.ev.Time.AnchorN; n > 1 {
					what = fmt.Sprintf("transmission %d of %s", n, what)
				}
				err = &eventError{kind: fatalError, msg: fmt.Sprintf("error handling packet: this packet answers %s, which the kernel has not sent (waited %v)", what, limit)}
			}
			return time.Time{}, time.Time{}, err
		}
		e.learn(s, sn, false)
		if !e.noteAck(s, sn) {
			e.leftover = append(e.leftover, sn)
		}
	}
}

// partialMinDelay bounds from below how long the kernel must have been
// quiet before the peer acknowledges what it got of a line's data.
const partialMinDelay = 200 * time.Microsecond

// partialAck reports whether the peer should acknowledge, at due, what it
// got so far (see awaitAnchor): the kernel has not yet sent all of what
// line sp answers (a line that answers an n-th transmission waits until
// some of it is out, see sentNth), has sent something the peer has not
// acknowledged yet, and has been quiet since.
func (e *engine) partialAck(index int, sp *scriptPacket, delay time.Duration) (bool, time.Time) {
	ev := e.script.Events[index]
	if len(e.sent) == 0 || !e.sndNxtSet || sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 || sp.payloadLen > 0 {
		return false, time.Time{}
	}
	ranges := news(&e.peer, sp)
	n := max(ev.Time.AnchorN, 1)
	if len(ranges) == 0 || n > 1 && !e.sentNth(ranges, n) {
		return false, time.Time{}
	}
	if _, sent := anchorIn(e.sent, transmissionOf, ranges, n, &e.sentIdx); sent {
		return false, time.Time{} // all sent: the line itself is due soon
	}
	if !e.told.ackSet || e.told.ack.Diff(e.sndNxt) >= 0 {
		return false, time.Time{} // nothing sent that the peer has not acknowledged
	}
	last := e.sent[len(e.sent)-1].at
	if len(news(&e.told, e.asReceived(sp, last, index))) == 0 {
		return false, time.Time{}
	}
	// Quiet since its last packet and since the peer's last: it may be
	// about to answer an ACK just injected with the data this line
	// answers.
	quiet := last
	if e.lastInjected.After(quiet) {
		quiet = e.lastInjected
	}
	return true, quiet.Add(max(delay, partialMinDelay))
}

// partialLookahead bounds how many lines after a waiting one partialLine
// tries.
const partialLookahead = 8

// partialLine returns the line whose partial ACK (see partialAck) is due
// while line i waits for its anchor, and when, or -1: of line i and the
// pure ACKs after it that may go in ahead, the last whose partial ACK
// would tell the kernel something new. A peer acknowledges what it got;
// each line caps that at what the captured peer had got by then, but the
// kernel may have sent a retransmission the captured one sent only after
// new data (its own order), which the captured peer acknowledges in a
// later line: capped by line i, the ACK would SACK the new data and leave
// the retransmission out, which no peer that got them in that order
// sends, and the kernel would retransmit again or, holding data back until
// an ACK comes (Nagle's rule after a short segment, a full window), wait
// for its timer.
func (e *engine) partialLine(i int, sp *scriptPacket, s *socket) (int, *scriptPacket, *socket, time.Time) {
	best, bsp, bs, bdue := -1, (*scriptPacket)(nil), (*socket)(nil), time.Time{}
	for n := 0; i >= 0 && n < partialLookahead; n++ {
		if an := e.script.Events[i].Time.AnchorN; an > 1 && !e.sentNth(news(&e.peer, sp), an) {
			// It answers a retransmission the kernel has not sent: what
			// the captured peer reported after it, it got through that
			// retransmission (an RTO's, say), which is still to come.
			break
		}
		if ok, due := e.partialAck(i, sp, time.Duration(e.script.Events[i].Time.Usecs)*time.Microsecond); ok {
			best, bsp, bs, bdue = i, sp, s, due
		} else if _, _, sent := e.anchoredTime(e.script.Events[i], sp); sent {
			break // due soon in its own right
		}
		var follows int
		if i, sp, s, follows = e.aheadLineFrom(i + 1); follows >= 0 {
			break // not anchored: it waits for the line before it
		}
	}
	return best, bsp, bs, bdue
}

// sentNth reports whether the kernel has sent the n-th transmission of
// some of ranges: a line that answers a retransmission may be answered in
// part once that retransmission is out (a kernel in recovery sends new
// data only as ACKs let it, so it may wait for one before the rest).
func (e *engine) sentNth(ranges []seqRange, n int) bool {
	for _, t := range e.sent {
		if t.n < n {
			continue
		}
		for _, r := range ranges {
			if r.overlaps(seqRange{t.start, t.end}) {
				return true
			}
		}
	}
	return false
}

// injectPartial injects line sp as the peer would send it having got what
// the kernel has sent so far; the line itself stays to come. Its TS ecr is
// the latest TS val the kernel sent, as a peer's that answers the segment
// just come: the line's own, a later line's, would map (interpolated from
// the capture's clock, the replay running behind it) to a TS val older
// than a retransmission the ACK acknowledges, and the kernel, taking the
// ACK for one the original transmission made (tcp_packet_delayed), undid
// its recovery and took the path for a reordering one (tcpi_reordering 3
// to 11): RACK then waited a reordering window before a later fast
// retransmission the capture made at the third duplicate ACK (traffic3's
// cubic 1 MiB download's server, line 866, 6-7 ms late).
func (e *engine) injectPartial(sp *scriptPacket, s *socket, index int) error {
	if e.cfg.Verbose {
		fmt.Fprintf(e.env.Stdout, "an ACK for what the kernel sent so far, before the line's\n")
	}
	latest := *sp
	latest.echoLatest = true
	return e.injectAs(&latest, s, e.sent[len(e.sent)-1].at, index, true, nil)
}

// doAnchoredInbound injects an anchored inbound line when it is due.
func (e *engine) doAnchoredInbound(es *eventState, sp *scriptPacket, s *socket) error {
	at, sent, err := e.awaitAnchor(es, sp, s)
	if err != nil {
		return err
	}
	if err := e.answersUntil(at, sent); err != nil {
		return err
	}
	if err := e.answersBefore(es.index, sent); err != nil {
		return err
	}
	// The line counts as starting when it goes in: at its time, or now
	// when the run reached it only after that (the line before held it).
	// A line after it that is not anchored counts from then.
	es.startUsecs = e.liveUsecs(laterOf(at, e.env.Clock.Now())) + e.scriptStart
	if err := e.sleepUntil(at); err != nil {
		return err
	}
	return e.injectLine(sp, s, sent, es.index)
}

// injectLine injects an inbound line. Under --pcap2pkt a pure ACK goes
// in as the peer would send it having received what the kernel sent up to
// sent (engine_receiver.go); what the line wrote moves the captured
// peer's view, which anchors answer to.
func (e *engine) injectLine(sp *scriptPacket, s *socket, sent time.Time, index int) error {
	have := e.answerHave(index)
	if have != nil && e.cfg.Extended && e.asWritten(laterOf(sent, e.lastSentSeen), index) {
		// The kernel sent what the script did: the line as written.
		have = nil
	}
	if err := e.injectAs(sp, s, sent, index, false, have); err != nil {
		return err
	}
	e.lineIn(sp, sent)
	return nil
}

// lineIn notes that line sp went in, answering what the kernel sent up to
// sent.
func (e *engine) lineIn(sp *scriptPacket, sent time.Time) {
	notePeerState(&e.peer, sp)
	if sent.After(e.lastSentSeen) {
		e.lastSentSeen = sent
	}
}

// injectAs injects line sp as the peer would send it having received what
// the kernel sent up to sent (see asReceivedHaving for have), and notes
// what that told the kernel (and, partial: the line stays to come, what
// the partial ACKs told).
func (e *engine) injectAs(sp *scriptPacket, s *socket, sent time.Time, index int, partial bool, have []seqRange) error {
	live := sp
	if e.cfg.Extended {
		live = e.notBack(e.asReceivedHaving(sp, sent, index, have))
		if e.cfg.Verbose && live != sp {
			fmt.Fprintf(e.env.Stdout, "as received: ack %d sack %v (the line's ack %d sack %v)\n", live.ack, sackBlocks(live.options), sp.ack, sackBlocks(sp.options))
		}
		live = e.peerClock(live, partial)
	}
	// Taken before: the kernel may answer within the injection's write.
	before := e.env.Clock.Now()
	if err := e.doInbound(live, s); err != nil {
		return err
	}
	e.lastInjected = e.env.Clock.Now()
	notePeerState(&e.told, live)
	if partial {
		notePeerState(&e.partialTold, live)
	}
	e.noteSignal(live, before)
	return nil
}

// aheadLine returns the next inbound line after the current event if it
// may go in ahead of the events before it, compiled, or -1: an anchored
// pure ACK (it answers the kernel only, and carries nothing an application
// reads), with only outbound lines and system calls before it. So may a
// pure ACK that is not anchored right after a line injected ahead (a
// duplicate the path made, a D-SACK: it keeps its delay after that line,
// as between inbound lines anywhere); follows is then that line's index,
// else -1.
func (e *engine) aheadLine() (i int, sp *scriptPacket, s *socket, follows int) {
	return e.aheadLineFrom(e.cur.index + 1)
}

// aheadSet holds the lines injected ahead of the run, with when (live
// microseconds): looked up for every line the run looks ahead past.
type aheadSet struct {
	at  []int64
	set []bool
}

func (a *aheadSet) get(i int) (int64, bool) {
	if i < 0 || i >= len(a.set) || !a.set[i] {
		return 0, false
	}
	return a.at[i], true
}

func (a *aheadSet) put(i int, at int64) {
	if i >= len(a.set) {
		n := max(i+1, 2*len(a.set))
		a.at = append(a.at, make([]int64, n-len(a.at))...)
		a.set = append(a.set, make([]bool, n-len(a.set))...)
	}
	a.at[i], a.set[i] = at, true
}

// aheadLineFrom is aheadLine looking from event from on.
// The lines it passes over (injected ahead, outbound lines, system calls)
// stay passed over: where the last look from the same event stopped is
// where the next one starts (a run far behind its ACKs has hundreds of
// lines injected ahead after the one it waits at, and looks past them
// several times per packet it reads).
func (e *engine) aheadLineFrom(from int) (int, *scriptPacket, *socket, int) {
	start := from
	if e.aheadScan.from == from && e.aheadScan.resume > from {
		start = e.aheadScan.resume
	}
	for i := start; i < len(e.script.Events); i++ {
		if _, done := e.ahead.get(i); done {
			continue
		}
		ev := e.script.Events[i]
		if _, ok := ev.Action.(*parser.Syscall); ok {
			continue
		}
		e.aheadScan.from, e.aheadScan.resume = from, i
		p, ok := ev.Action.(*parser.Packet)
		if !ok {
			return -1, nil, nil, -1
		}
		if p.Dir == parser.Outbound {
			e.aheadScan.resume = i + 1
			continue
		}
		follows := -1
		if _, prev := e.ahead.get(i - 1); !ev.Time.Anchor && prev {
			follows = i - 1
		}
		if (!ev.Time.Anchor && follows < 0) || ev.Time.Kind != parser.TimeRelative || p.TCP == nil || p.TCP.Len > 0 ||
			strings.ContainsAny(p.TCP.Flags, "SFR") {
			return -1, nil, nil, -1
		}
		sp, err := compilePacket(p, e.cfg.wireIPv6())
		if err != nil {
			return -1, nil, nil, -1
		}
		s, err := e.socketForScriptPacket(sp)
		if err != nil || s != e.underTest {
			return -1, nil, nil, -1
		}
		return i, sp, s, follows
	}
	return -1, nil, nil, -1
}

// injectAhead injects the next anchored inbound line if it is due (see
// the file comment); else it returns when it will be (zero: not known
// yet, the kernel has not sent what it answers).
func (e *engine) injectAhead() (time.Time, error) {
	if !e.cfg.Extended || e.cur == nil || e.cur.kind != evOutbound {
		// Only an outbound line waits with lines after it to inject: an
		// inbound line keeps the peer's order.
		return time.Time{}, nil
	}
	for {
		if _, err := e.injectAnswers(true); err != nil {
			return time.Time{}, err
		}
		i, sp, s, follows := e.aheadLine()
		if i < 0 {
			return time.Time{}, nil
		}
		at, sent, ok := e.anchoredTime(e.script.Events[i], sp)
		if follows >= 0 {
			prev, _ := e.ahead.get(follows)
			at = e.liveStart.Add(time.Duration(prev+e.script.Events[i].Time.Usecs) * time.Microsecond)
			sent, ok = e.lastSentSeen, true
		}
		if !ok {
			j, jsp, js, due := e.partialLine(i, sp, s)
			switch {
			case j < 0:
				return time.Time{}, nil
			case due.After(e.env.Clock.Now()):
				return due, nil
			case e.sentBefore(due):
				return due, nil
			}
			e.callsAhead(j)
			if err := e.injectPartial(jsp, js, j); err != nil {
				return time.Time{}, err
			}
			continue
		}
		if e.racedWaitSet && tcpwire.Seq(sp.ack).Diff(e.racedWait.end) >= 0 {
			// It acknowledges what the line the run waits for sends again,
			// a retransmission the captured kernel made just before this
			// ACK came (see notePreempted): the kernel may make it up to
			// the tolerance late, and then the ACK follows it as it did.
			at = at.Add(time.Duration(e.cfg.ToleranceUsecs) * time.Microsecond)
		}
		if at.After(e.env.Clock.Now()) {
			return at, nil
		}
		if e.sentBefore(at) {
			return at, nil
		}
		if err := e.injectAheadLine(i, sp, s, at, sent); err != nil {
			return time.Time{}, err
		}
	}
}

// injectAheadLine injects line i (compiled sp, for socket s), which
// answers the kernel's transmission at sent and falls due at at, ahead of
// the events before it.
func (e *engine) injectAheadLine(i int, sp *scriptPacket, s *socket, at, sent time.Time) error {
	e.callsAhead(i)
	if err := e.answersBefore(i, sent); err != nil {
		return err
	}
	if e.overtaken(i, sp, at) {
		// The peer's later ACK, due too, tells all this one does: it goes
		// in for both (see overtaken).
		e.lineIn(sp, sent)
	} else if err := e.injectLine(sp, s, sent, i); err != nil {
		return err
	}
	e.ahead.put(i, e.liveUsecs(e.env.Clock.Now()))
	return nil
}

// overtakeLate is how late an ACK injected ahead must be before a later
// one may go in for it (see overtaken).
const overtakeLate = 100 * time.Microsecond

// overtaken reports whether line i, an ACK to inject ahead that fell due
// at at, may go in as part of the next such line instead: the run is
// behind its schedule (at is overtakeLate or more past), the next line is
// due too (and the kernel's packets before it have been read, so that
// what it tells is known), and it tells everything line i does. In a
// train of ACKs due microseconds apart (a 4 MiB upload's last round trips
// take 25,000-70,000 ACKs a second) a run that injects each one falls
// further behind with every ACK, each one costing the kernel a pass of its
// ACK processing and often a transmission: put_4m_v6_delay5_reorder_dup's
// client (traffic2) injected them 5-17 ms late, and the kernel, clocked by
// them, sent its last MiB 30-45 ms after the capture's. A peer's stretch
// ACK is what a receiver with GRO, or a path that bunches ACKs, sends: the
// kernel counts what it acknowledges, not how many ACKs came (the window's
// growth, BBR's delivery rate). Not while the kernel is recovering (CWR,
// fast recovery, loss: Host.Recovering): proportional rate reduction sends
// by each ACK (its bound allows a segment more an ACK), so one ACK fewer
// can be a segment less.
func (e *engine) overtaken(i int, sp *scriptPacket, at time.Time) bool {
	now := e.env.Clock.Now()
	if now.Sub(at) < overtakeLate {
		return false
	}
	j, next, _, follows := e.aheadLineFrom(i + 1)
	if j < 0 || follows >= 0 {
		return false
	}
	due, _, ok := e.anchoredTime(e.script.Events[j], next)
	if !ok || due.After(now) || e.sentBefore(due) || !reportsAll(next, sp) {
		return false
	}
	f := e.underTest.fd
	if f == nil || f.liveFD < 0 {
		return false
	}
	// In recovery an ACK that moves the cumulative ACK lets PRR send a
	// segment more (tcp_cwnd_reduction's sndcnt++ on FLAG_SND_UNA_ADVANCED):
	// one ACK fewer can be a segment less. One that only SACKs more counts
	// by the bytes it delivers, which the later ACK delivers too: folded
	// only where the later ACK acknowledges no more than this one.
	return !e.host.Recovering(f.liveFD) || next.ack == sp.ack
}

// reportsAll reports whether ACK later tells everything ACK earlier does:
// it acknowledges at least as much, reports every byte earlier SACKed, and
// earlier is no duplicate an ACK count would miss (no D-SACK; with
// nothing SACKed, a cumulative ACK that later moves on).
func reportsAll(later, earlier *scriptPacket) bool {
	la, ea := tcpwire.Seq(later.ack), tcpwire.Seq(earlier.ack)
	if la.Diff(ea) < 0 {
		return false
	}
	eb := sackBlocks(earlier.options)
	if isDSACK(ea, eb) {
		return false
	}
	if len(eb) == 0 {
		return la.Diff(ea) > 0
	}
	seen := append(sackBlocks(later.options), seqRange{ea, la})
	for _, b := range eb {
		if !covers(seen, b) {
			return false
		}
	}
	return true
}

// sentBefore reports whether the kernel sent a packet before t that the
// run has yet to read: a line due at t goes in ahead only after the run
// has read it (injectAhead), in the order things happened. A run behind
// its schedule (a burst of ACKs due microseconds apart, each read and
// write taking tens of them) otherwise injects the ACKs due since ahead
// of the outbound line the kernel already answered and of the writes
// after it: get_1m_delay10_loss1_cubic's server (traffic2) injected the
// ACK of line 253, due at 0.160730 s, at 0.160764 s, before reading the
// data its line waited for, sent at 0.160691 s.
func (e *engine) sentBefore(t time.Time) bool {
	q := e.outq
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pkts) > 0 && q.pkts[0].at.Before(t)
}

// callsAhead makes the writes between the outbound line the run waits at
// and the inbound line at index upTo, which goes in ahead of it, before it
// goes in. The captured application wrote them before the captured peer's
// packet came: a kernel that has sent what the writes before them gave it
// when that ACK comes has nothing to send with the room it opens, and the
// room is not the same later (a congestion window grows only while it is
// used; in recovery proportional rate reduction allows a segment or two
// per ACK as it comes). Held behind the waiting line, a write comes only
// after the run has read that line's packet: a run of ACKs injected ahead
// overtook the writes of a bulk sender's data, one read and one write per
// line at the replay's speed against ACKs a few microseconds apart
// (get_1m_delay10_loss1_cubic's server, traffic2: the run's ACKs ten lines
// ahead of its writes, the kernel entered recovery with four segments
// fewer out than the captured one and sent its next data a round trip
// late). The kernel still sends the bytes in order, so a write made early
// lets out nothing before the data of the lines before it. Only writes
// and sends on the socket under test that the script expects not to block
// or fail go ahead; the first other call (or an inbound line not yet in)
// stops them, as does a blocking call in progress.
func (e *engine) callsAhead(upTo int) {
	if e.blockingCall != nil {
		return
	}
	for k := e.cur.index + 1; k < upTo; k++ {
		_, called := e.calledAhead[k]
		if _, injected := e.ahead.get(k); called || injected {
			continue
		}
		ev := e.script.Events[k]
		if p, ok := ev.Action.(*parser.Packet); ok && p.Dir == parser.Outbound {
			continue
		}
		sc, ok := e.writeAhead(ev)
		if !ok {
			return
		}
		err := e.call(&eventState{ev: ev, index: k, kind: evSyscall, timeKind: ev.Time.Kind}, sc)
		if e.calledAhead == nil {
			e.calledAhead = map[int]aheadCall{}
		}
		e.calledAhead[k] = aheadCall{e.nowUsecs(), err}
		if err != nil {
			return
		}
	}
}

// writeAhead returns event ev's call if callsAhead may make it: a write or
// send on the socket under test at a relative time, expected to return a
// count (not to block or fail).
func (e *engine) writeAhead(ev *parser.Event) (*parser.Syscall, bool) {
	sc, ok := ev.Action.(*parser.Syscall)
	if !ok || (sc.Name != "write" && sc.Name != "send") || sc.End != nil || sc.Errno != "" || len(sc.Args) == 0 ||
		ev.Time.Kind != parser.TimeRelative || e.underTest == nil || e.underTest.fd == nil {
		return nil, false
	}
	fd, err := e.eval.int(sc.Args[0])
	if err != nil || fd != int64(e.underTest.fd.scriptFD) {
		return nil, false
	}
	if n, err := e.eval.int(sc.Result); err != nil || n < 0 {
		return nil, false
	}
	return sc, true
}

// aheadCall is when callsAhead made a call (live microseconds), and how it
// failed (nil: as the script says); the run reports it at the call's line.
type aheadCall struct {
	usecs int64
	err   *eventError
}

// sleepUntil waits until at, letting go of the engine's lock meanwhile.
func (e *engine) sleepUntil(at time.Time) error {
	if !at.After(e.env.Clock.Now()) {
		return nil
	}
	e.mu.Unlock()
	serr := e.env.Clock.SleepUntil(e.ctx, at)
	e.mu.Lock()
	if serr != nil {
		return &eventError{kind: fatalError, msg: "run ended: " + context.Cause(e.ctx).Error(), err: serr}
	}
	return nil
}

// laterOf returns the later of two instants.
func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// eachSACK yields the SACK blocks of an option list in wire order.
func eachSACK(opts []byte) iter.Seq[seqRange] {
	return func(yield func(seqRange) bool) {
		for o, err := range tcpwire.EachOption(opts) {
			if err != nil {
				return
			}
			for i := range o.NumSACK() {
				b := o.SACKBlock(i)
				if !yield(seqRange{b.Left, b.Right}) {
					return
				}
			}
		}
	}
}
