package replay

// This file keeps the injected peer's answers in the order a path that
// keeps order (FIFO) gives them (--pcap2pkt scripts). A kernel in loss
// recovery sends its retransmission and its new data in an order that
// follows microsecond timing: the captured one sent new data, then the
// retransmission; a replayed one may send the retransmission first. The
// captured peer's answer to the retransmission is a line anchored to it
// (`^2`) that also acknowledges the new data sent before it, so it cannot
// go in before that data's first transmission, which the replayed kernel
// sent after the retransmission; the lines before it, SACKs of that new
// data, then reach the kernel first. A real peer never answers so: it gets
// the retransmission before anything sent after it and acknowledges it at
// once, with what it had got by then. Without that answer, the kernel sees
// data sent after its retransmission SACKed while the retransmission is
// not, and RACK (no reordering window in recovery) marks the
// retransmission lost and sends it again, a retransmission no capture has.
//
// So a line that answers the n-th transmission of some bytes, when the
// capture shows everything it acknowledges sent before that transmission,
// is answered in part (what the kernel had sent by the retransmission,
// capped by the line as everywhere) the line's delay after the kernel's
// retransmission, or earlier, just before a line that answers data the
// kernel sent after the retransmission but the captured kernel sent
// before it. The line itself stays where it is. Lines injected after such
// a partial answer never report less than it did: a peer's cumulative ACK
// does not go back. A retransmission the kernel does not send, or sends
// late, gets no earlier answer: the lines wait for it as before. Lines
// that answer data the kernel sent before the retransmission go in before
// its answer (answerGate). The same holds for the ACK that fills a hole a
// reordering path left, timed from the held-back segment (noteHoleAnswer).

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// retransAnswer is a line of the script that answers a retransmission,
// or a first transmission that a reordering path held back (n 1: see
// noteHoleAnswer).
type retransAnswer struct {
	index  int        // the line's event index
	n      int        // the transmission it answers (its anchor's n)
	ranges []seqRange // what it reports beyond the lines before it
	// have: what the captured peer had reported by the next line that
	// acknowledges (by the line itself when none follows), which it may
	// report (its blocks have room for the latest three only): a kernel
	// that sent new data just before its retransmission, where the
	// captured one sent it just after, gets it acknowledged with the
	// retransmission, as a peer on a path that keeps order does; else
	// RACK takes that data, sent before a segment the peer acknowledged,
	// for lost and sends it again (cubic's lossy download's server,
	// traffic3, 781921:783369 at line 1025).
	have    []seqRange
	delay   time.Duration
	scriptR int // the script's retransmission it answers (scriptTxs index)
	// rAt: when the kernel sent the retransmission (armed: it has).
	rAt     time.Time
	covered []seqRange // of an answer to a first transmission: what the kernel has sent of ranges
	armed   bool
	done    bool // answered, or found to have nothing to tell
}

// noteAnswer adds inbound line i (compiled sp), which reports ranges
// beyond the lines before it (peer: what the lines up to it reported) and
// is anchored to the script's transmission txs[at], to the answers when
// it is a pure ACK that answers an n-th transmission (n > 1), that
// transmission is its anchor (everything it acknowledges had been sent
// before it), it came at least half a round trip after it, and it reports
// no duplicate. (A line anchored to a first transmission older than a
// line before it answers is noteHoleAnswer's.)
func (e *engine) noteAnswer(i int, sp *scriptPacket, ranges []seqRange, peer *peerState, txs []txLine, at int) {
	ev := e.script.Events[i]
	n := ev.Time.AnchorN
	if n < 2 || !pureACKLine(sp) {
		return
	}
	if isDSACK(tcpwire.Seq(sp.ack), sackBlocks(sp.options)) {
		return // it reports a duplicate (dsackFor has those)
	}
	t := txs[at]
	if t.n < n || !overlapsAny(ranges, seqRange{t.start, t.end}) {
		return // anchored to a later first transmission
	}
	if ev.Time.Usecs < e.pathSlackUsecs() {
		// Sooner than a round trip allows (half of it, the path slack):
		// an earlier copy, late on a path that reorders, made the ACK.
		return
	}
	for j := range at {
		if txs[j].n >= n && overlapsAny(ranges, seqRange{txs[j].start, txs[j].end}) {
			return // the retransmission it answers came before its anchor
		}
	}
	e.answers = append(e.answers, retransAnswer{index: i, n: n, ranges: append([]seqRange(nil), ranges...),
		have:  append([]seqRange{{0, peer.ack}}, peer.sacked...),
		delay: time.Duration(ev.Time.Usecs) * time.Microsecond, scriptR: at})
}

// noteHoleAnswer adds inbound line i (compiled sp), whose cumulative ACK
// fills hole (bytes the peer had not reported while it SACKed above them),
// to the answers as the answer to the hole's transmission: the path held
// that segment back, and its arrival, not the transmission the line is
// anchored to (the last of the bytes it newly acknowledges), made the
// peer's ACK. A replayed kernel that sent the segment earlier against the
// rest than the captured one did (in a 48 KiB GSO packet, 5.3 ms before
// the line's anchor where the captured kernel sent it 1 ms before:
// traffic3's IPv6 4 MiB upload over reordering, its client, 827769) gets
// the ACK that long after the segment, before RACK's reordering window,
// which counts from the segment too, runs out. The answer's delay is the
// capture's, from the hole's transmission to the line. Such a line is an
// answer because the lines before it answer later transmissions (see
// lostInCapture's overtakes): held behind them, it came after RACK's
// reordering window had run out (traffic2's IPv6 4 MiB upload over
// reordering, its client: 2242269 6.4 ms earlier, in a 64 KiB GSO packet).
func (e *engine) noteHoleAnswer(i int, sp *scriptPacket, peer *peerState, txs []txLine, hole []seqRange) {
	if len(hole) == 0 || !pureACKLine(sp) || isDSACK(tcpwire.Seq(sp.ack), sackBlocks(sp.options)) {
		return
	}
	j, ok := anchorIn(txs, txLineOf, hole, 1, nil)
	if !ok {
		return
	}
	delay := e.scriptAt[i] - e.scriptAt[txs[j].index]
	if delay < e.pathSlackUsecs() {
		return
	}
	e.answers = append(e.answers, retransAnswer{index: i, n: 1, ranges: hole,
		have:  append([]seqRange{{0, peer.ack}}, peer.sacked...),
		delay: time.Duration(delay) * time.Microsecond, scriptR: j})
}

// pureACKLine reports whether sp is a pure ACK: no data, no SYN, FIN or
// RST.
func pureACKLine(sp *scriptPacket) bool {
	return sp.flags&tcpwire.FlagACK != 0 && sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) == 0 && sp.payloadLen == 0
}

// holeFilled returns the bytes line sp acknowledges that the lines before
// it (peer) had not reported though they SACKed bytes above them: a hole
// the line fills. Nil when it fills none.
func holeFilled(peer *peerState, sp *scriptPacket) []seqRange {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 || !peer.ackSet || len(peer.sacked) == 0 {
		return nil
	}
	a := tcpwire.Seq(sp.ack)
	if peer.ack.Diff(a) >= 0 {
		return nil
	}
	rest := []seqRange{{peer.ack, a}}
	for _, b := range peer.sacked {
		var keep []seqRange
		for _, r := range rest {
			keep = append(keep, subtract(r, b)...)
		}
		rest = keep
	}
	// Only bytes below a SACKed block: the peer had reported data above.
	high := peer.sacked[len(peer.sacked)-1].end
	var out []seqRange
	for _, r := range rest {
		if r.end.Diff(high) <= 0 {
			out = append(out, r)
		}
	}
	return out
}

// overlapsAny reports whether r shares bytes with one of rs.
func overlapsAny(rs []seqRange, r seqRange) bool {
	for _, x := range rs {
		if r.overlaps(x) {
			return true
		}
	}
	return false
}

// armAnswers notes, for each answer, when the kernel first sent the
// retransmission it answers.
func (e *engine) armAnswers() {
	for _, t := range e.sent[e.answersScan:] {
		r := seqRange{t.start, t.end}
		for k := range e.answers {
			a := &e.answers[k]
			if a.armed || t.n < a.n || !overlapsAny(a.ranges, r) {
				continue
			}
			if a.n > 1 {
				a.armed, a.rAt = true, t.at
				continue
			}
			// A first transmission's answer: when the kernel has sent
			// all it reports (as anchoredTime anchors a line).
			a.covered = mergeRange(a.covered, r)
			if coversAll(a.covered, a.ranges) {
				a.armed, a.rAt = true, t.at
			}
		}
	}
	e.answersScan = len(e.sent)
}

// coversAll reports whether the ranges of got hold every range of want.
func coversAll(got, want []seqRange) bool {
	for _, x := range want {
		if !covers(got, x) {
			return false
		}
	}
	return true
}

// pendingAnswer reports whether answer a may go in: the kernel sent its
// retransmission, and neither the line nor an answer for it went in.
func (e *engine) pendingAnswer(a *retransAnswer) bool {
	_, injected := e.ahead.get(a.index)
	return a.armed && !a.done && e.cur != nil && a.index > e.cur.index && !injected
}

// injectAnswers injects the answers due by now, and returns when the next
// one is (zero: none is known). With readFirst (the run reads the
// kernel's packets as it waits), one goes in only once the run has read
// what the kernel sent before its time (see sentBefore).
func (e *engine) injectAnswers(readFirst bool) (time.Time, error) {
	return e.injectAnswersBefore(readFirst, time.Time{})
}

// injectAnswersBefore is injectAnswers for the answers to retransmissions
// the kernel sent before sent (all, when sent is zero).
func (e *engine) injectAnswersBefore(readFirst bool, sent time.Time) (time.Time, error) {
	if !e.cfg.Extended || len(e.answers) == 0 {
		return time.Time{}, nil
	}
	e.armAnswers()
	for {
		// The answers go in in the order the kernel sent what they answer
		// (the path keeps order): the one to the earliest retransmission
		// first, though another's delay says sooner. The captured delays
		// differ by microseconds where the peer answered two
		// retransmissions at once, and a kernel that sent them closer
		// together would otherwise get the later one's answer first.
		var next *retransAnswer
		var ahead aheadDue
		for k := range e.answers {
			if a := &e.answers[k]; e.pendingAnswer(a) && (sent.IsZero() || a.rAt.Before(sent)) && (next == nil || a.rAt.Before(next.rAt)) && e.overtaking(a, &ahead) {
				next = a
			}
		}
		if next == nil {
			return time.Time{}, nil
		}
		due := next.rAt.Add(next.delay)
		if due.After(e.env.Clock.Now()) || readFirst && e.sentBefore(due) {
			return due, nil
		}
		if d, ok := e.answerGate(next, &ahead); ok {
			// The line goes in first, now, though due later.
			if err := e.injectAheadLine(d.index, d.sp, d.s, d.at, d.sent); err != nil {
				return time.Time{}, err
			}
			continue
		}
		if err := e.injectAnswer(next); err != nil {
			return time.Time{}, err
		}
	}
}

// answerGate returns the next line to inject ahead (ahead, see nextAhead)
// when it must go in before answer a, due now, goes in: it comes before
// a's line and answers a transmission the kernel sent before the
// retransmission a answers. On a path that keeps order the peer got that
// transmission first and answered it first, whatever delays the capture
// shows (its kernel sent the two further apart): the line goes in now,
// just before the answer, rather than the answer waiting for it (the line
// tells what the captured peer had told by the answer's time; a kernel
// waiting for the answer to free its window sent its next data 9 ms late,
// traffic2's IPv6 lossy 1 MiB download's server, line 461). The answer
// first, with its three blocks, left the kernel without the SACKs of data
// sent just before the retransmission, and RACK took that data for lost
// and sent 31 segments again (traffic2's 4 MiB lossy download's server,
// 2594585:2639473 before line 2491).
func (e *engine) answerGate(a *retransAnswer, ahead *aheadDue) (*aheadDue, bool) {
	d := e.nextAhead(ahead)
	if d.index < 0 || d.index >= a.index || !d.anchored || !d.sent.Before(a.rAt) {
		return nil, false
	}
	return d, true
}

// overtaking reports whether answer a may go in before its line's turn:
// always for a retransmission's; for a first transmission's (a segment a
// reordering path held back), only while a line before it waits that is
// due later than it (or whose anchor the kernel has not sent): where the
// run would reach its line in time, the line goes in itself, whole, and no
// partial ACK doubles it. ahead caches the next line to inject ahead.
func (e *engine) overtaking(a *retransAnswer, ahead *aheadDue) bool {
	if a.n > 1 || e.cur == nil {
		return a.n > 1
	}
	if e.cur.kind != evOutbound {
		return e.cur.index < a.index // an inbound line before it waits
	}
	d := e.nextAhead(ahead)
	if d.index < 0 || d.index >= a.index {
		return false
	}
	return !d.anchored || d.at.After(a.rAt.Add(a.delay))
}

// aheadDue is the next line to inject ahead (index, -1 for none; compiled
// sp, for socket s), when it is due and the kernel's transmission it
// answers (anchored: the kernel has sent what it answers).
type aheadDue struct {
	found, anchored bool
	index           int
	sp              *scriptPacket
	s               *socket
	at, sent        time.Time
}

// nextAhead fills d, once, with the next line to inject ahead: an anchored
// one after an outbound line the run waits at (none while the run is at
// another event, or for a duplicate that follows the line before it).
func (e *engine) nextAhead(d *aheadDue) *aheadDue {
	if d.found {
		return d
	}
	d.found, d.index = true, -1
	if e.cur == nil || e.cur.kind != evOutbound {
		return d
	}
	if i, sp, s, follows := e.aheadLine(); i >= 0 && follows < 0 {
		d.index, d.sp, d.s = i, sp, s
		d.at, d.sent, d.anchored = e.anchoredTime(e.script.Events[i], sp)
	}
	return d
}

// answerHave returns, for line index when it answers a retransmission,
// the bytes the captured kernel first sent after that retransmission,
// which it may report, else nil. A line that answers the kernel's
// retransmission and goes in at its time (the run had reached it, so no
// answer went in before it) tells, as a peer on a path that keeps order
// does, what the kernel had sent by the retransmission: a kernel that sent
// new data just before it, where the captured one sent it just after, has
// that data acknowledged with it (what the kernel did not send by then,
// or sent and the capture lost, the peer has not got: asReceivedHaving).
// Else the ACK of a segment sent after that data left it out, and RACK
// sent it again (traffic3's cubic 1 MiB download's server, 418473:419921
// before the answers to its retransmissions of 399649 and 412681, lines
// 437 and 440). Only those bytes: what the captured kernel had sent
// before the retransmission and sent again did not all reach its peer (a
// slow reader's closed window dropped it) though no ACK showed it lost.
func (e *engine) answerHave(index int) []seqRange {
	for k := range e.answers {
		a := &e.answers[k]
		if a.index != index || a.n < 2 {
			continue
		}
		var after []seqRange
		for _, t := range e.scriptTxs[a.scriptR+1:] {
			if t.n == 1 {
				after = mergeRange(after, seqRange{t.start, t.end})
			}
		}
		return after
	}
	return nil
}

// answersBefore injects, before line index goes in answering the kernel's
// transmission at sent, the answers to retransmissions the kernel sent
// before that transmission where the script has the line answer a
// transmission before the retransmission: on a path that keeps order the
// peer got the retransmission first, and answered it first.
func (e *engine) answersBefore(index int, sent time.Time) error {
	if !e.cfg.Extended || len(e.answers) == 0 {
		return nil
	}
	e.armAnswers()
	anchor, ok := e.scriptAnchor[index]
	if !ok {
		return nil
	}
	for k := range e.answers {
		a := &e.answers[k]
		if e.pendingAnswer(a) && a.n > 1 && a.index > index && a.rAt.Before(sent) && anchor < a.scriptR {
			if err := e.injectAnswer(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// injectAnswer injects answer a's line as the peer would send it having got
// what the kernel sent up to its retransmission, when that tells the
// kernel something new; the line itself stays to come.
func (e *engine) injectAnswer(a *retransAnswer) error {
	a.done = true
	p, ok := e.script.Events[a.index].Action.(*parser.Packet)
	if !ok {
		return nil
	}
	sp, err := compilePacket(p, e.cfg.wireIPv6())
	if err != nil {
		return nil
	}
	s, err := e.socketForScriptPacket(sp)
	if err != nil || s != e.underTest {
		return nil
	}
	live := e.asReceivedHaving(sp, a.rAt, a.index, a.have)
	if len(news(&e.told, live)) == 0 {
		return nil
	}
	if e.cfg.Verbose {
		fmt.Fprintf(e.env.Stdout, "the answer to the kernel's retransmission (line %d), before the lines ahead of it\n", e.script.Events[a.index].Pos.Line)
	}
	if err := e.injectAs(sp, s, a.rAt, a.index, true, a.have); err != nil {
		return err
	}
	if tellsAll(live, sp) {
		// The answer said all the line says: the line went in with it (a
		// second copy would be a duplicate ACK no capture has).
		e.lineIn(sp, a.rAt)
		e.ahead.put(a.index, e.liveUsecs(e.env.Clock.Now()))
	}
	return nil
}

// tellsAll reports whether live, a line as injected, acknowledges what
// line sp acknowledges and SACKs each of its blocks.
func tellsAll(live, sp *scriptPacket) bool {
	if live.ack != sp.ack {
		return false
	}
	got := sackBlocks(live.options)
	for _, b := range sackBlocks(sp.options) {
		if b.end.Diff(tcpwire.Seq(live.ack)) > 0 && !covers(got, b) {
			return false
		}
	}
	return true
}

// answersUntil injects the answers that fall due before at, each at its
// time (the run waits for an anchored line due at at, which answers what
// the kernel sent at sent): those to retransmissions sent before sent; the
// others come after the line, as the path brought them.
func (e *engine) answersUntil(at, sent time.Time) error {
	for {
		due, err := e.injectAnswersBefore(false, sent)
		if err != nil || due.IsZero() || !due.Before(at) {
			return err
		}
		if err := e.sleepUntil(due); err != nil {
			return err
		}
	}
}

// beyondLine reports whether the partial ACKs injected so far reported
// something line sp does not: the line, as the peer sends it, must report
// that too.
func (e *engine) beyondLine(sp *scriptPacket) bool {
	pt := &e.partialTold
	if !pt.ackSet {
		return false
	}
	if tcpwire.Seq(sp.ack).Diff(pt.ack) < 0 {
		return true
	}
	line := append([]seqRange{{pt.ack, tcpwire.Seq(sp.ack)}}, sackBlocks(sp.options)...)
	for _, b := range pt.sacked {
		if b.end.Diff(pt.ack) > 0 && !covers(line, seqRange{later(b.start, pt.ack), b.end}) {
			return true
		}
	}
	return false
}

// peerClock returns line sp (live, as injected) with the TS val the
// peer's clock reads when it goes in, and notes it. A partial ACK (the
// line stays to come) goes in before the line's time: its TS val is the
// latest the peer sent, where the line's is later. The kernel keeps the
// latest TS val it got (ts_recent) and drops, as old duplicates (PAWS), the
// segments whose TS val is older by more than a tick and that are not
// pure duplicate ACKs, such as the lines before it that acknowledge
// more: a real peer's clock never goes back.
func (e *engine) peerClock(sp *scriptPacket, partial bool) *scriptPacket {
	v, ok := findTSVal(sp.options)
	if !ok {
		return sp
	}
	if partial && e.peerTSSet && tcpwire.Seq(e.peerTS).Diff(tcpwire.Seq(v)) < 0 {
		out := *sp
		out.options = append([]byte(nil), sp.options...)
		for o, err := range tcpwire.EachOption(out.options) {
			if _, _, isTS := o.Timestamp(); isTS && err == nil {
				binary.BigEndian.PutUint32(o.Data, e.peerTS)
			}
		}
		return &out
	}
	if !e.peerTSSet || tcpwire.Seq(e.peerTS).Diff(tcpwire.Seq(v)) < 0 {
		e.peerTS, e.peerTSSet = v, true
	}
	return sp
}
