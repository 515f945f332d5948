package replay

// This file holds the matching rules of scripts that say --pcap2pkt=1 at
// the top (pcap2pkt's extensions; synthesised scripts do). A packetdrill
// script fixes every outbound packet's boundaries; a capture only shows
// how one kernel, on one day, cut its data into segments, where PSH fell
// and whether a FIN rode on the last data or followed it, all of which
// follow timing (the writer's wake-ups, TSO sizing, when close() came)
// rather than the protocol. So here:
//
//   - the kernel's outbound packets are read as they come, by a goroutine,
//     into a queue: every packet is seen (and captured), whether or not a
//     line expects it;
//   - an outbound data line expects a range of the byte stream: the kernel
//     may send it in any number of segments, or as part of a larger one
//     (the rest is left for the next line), with PSH anywhere (unless
//     --strict_segments); a FIN may ride on the last segment or follow it
//     alone, whichever the line says;
//   - an outbound packet that no line takes fails the script ("expected
//     nothing"), where a packetdrill script would never look at it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// outQueue holds what the reader goroutine read from the device, in order.
type outQueue struct {
	mu    sync.Mutex
	pkts  []rawOut
	err   error         // the reader's error; it stops after one
	ready chan struct{} // signalled (never blocking) when pkts or err change
	done  chan struct{} // closed when the reader returns
}

// rawOut is one packet as the device returned it.
type rawOut struct {
	b  []byte
	at time.Time
}

// startReader starts the goroutine that drains the device into e.outq
// until ctx ends.
func (e *engine) startReader(ctx context.Context) {
	q := &outQueue{ready: make(chan struct{}, 1), done: make(chan struct{})}
	e.outq = q
	go func() {
		defer close(q.done)
		for {
			b, at, err := e.env.Device.ReadPacket(ctx)
			q.mu.Lock()
			if err != nil {
				q.err = err
			} else {
				q.pkts = append(q.pkts, rawOut{b, at})
			}
			q.mu.Unlock()
			select {
			case q.ready <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
			if e.env.Capture != nil {
				// A write error surfaces when the capture is closed.
				_ = e.env.Capture.WritePacket(at, b, true)
			}
		}
	}()
}

// readOut returns the next packet the kernel sent: from the queue in
// extended mode, else from the device.
func (e *engine) readOut(ctx context.Context) ([]byte, time.Time, error) {
	q := e.outq
	if q == nil {
		b, at, err := e.env.Device.ReadPacket(ctx)
		if err == nil && e.env.Capture != nil {
			if cerr := e.env.Capture.WritePacket(at, b, true); cerr != nil {
				return nil, time.Time{}, &captureError{cerr}
			}
		}
		return b, at, err
	}
	for {
		q.mu.Lock()
		if len(q.pkts) > 0 {
			p := q.pkts[0]
			if d, ok := ctx.Deadline(); ok && p.at.After(d) {
				// The kernel sent it after the deadline: what fell due
				// then (an anchored line, a partial ACK) went in before.
				q.mu.Unlock()
				return nil, time.Time{}, e.passUntil(d)
			}
			q.pkts = q.pkts[1:]
			q.mu.Unlock()
			// What the kernel sent is read no sooner than it was sent:
			// a clock behind it (a test's virtual one) moves there.
			if p.at.After(e.env.Clock.Now()) {
				if err := e.env.Clock.SleepUntil(e.ctx, p.at); err != nil {
					return nil, time.Time{}, err
				}
			}
			return p.b, p.at, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return nil, time.Time{}, err
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			if d, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, time.Time{}, e.passUntil(d)
			}
			return nil, time.Time{}, ctx.Err()
		}
	}
}

// errDeadlinePassed is readOut's error when its context's deadline came
// before the kernel's next packet: the context itself may not say so yet
// (its timer fires on its own goroutine).
var errDeadlinePassed = fmt.Errorf("replay: the deadline came before the next packet: %w", context.DeadlineExceeded)

// passUntil returns once the run's clock has reached deadline d (at once
// on the live clock, which a timer's deadline has passed; a virtual clock
// is moved there), with errDeadlinePassed.
func (e *engine) passUntil(d time.Time) error {
	if err := e.env.Clock.SleepUntil(e.ctx, d); err != nil {
		return err
	}
	return errDeadlinePassed
}

// captureError is a failure to record a packet in the run's capture.
type captureError struct{ err error }

func (c *captureError) Error() string { return "capture: " + c.err.Error() }
func (c *captureError) Unwrap() error { return c.err }

// stopReader ends the reader goroutine and waits for it.
func (e *engine) stopReader() {
	if e.outq == nil {
		return
	}
	e.stopRead()
	<-e.outq.done
}

// ackProgress is what the kernel has acknowledged on the connection under
// test so far, in script space: the highest cumulative ACK any of its
// packets carried, and every range a SACK block reported.
type ackProgress struct {
	set    bool
	ack    tcpwire.Seq
	sacked []seqRange
	at     time.Time // when the kernel sent the latest ACK counted
}

// seqRange is [start, end) of sequence space.
type seqRange struct{ start, end tcpwire.Seq }

// overlaps reports whether r and x share bytes.
func (r seqRange) overlaps(x seqRange) bool {
	return x.start.Diff(r.end) < 0 && r.start.Diff(x.end) < 0
}

// covers reports whether the union of rs covers r.
func covers(rs []seqRange, r seqRange) bool {
	at := r.start
	for progress := true; progress && at.Diff(r.end) < 0; {
		progress = false
		for _, x := range rs {
			if x.start.Diff(at) <= 0 && at.Diff(x.end) < 0 {
				at, progress = x.end, true
			}
		}
	}
	return at.Diff(r.end) >= 0
}

// pureACK reports whether a sniffed TCP segment only acknowledges: no
// data, SYN, FIN or RST, and the sequence number where the kernel's
// stream has got to (next). One below it is a window probe or a
// keepalive: a timer's decision, matched as a packet of its own.
func pureACK(sn *sniffed, next tcpwire.Seq, nextSet bool) bool {
	t := sn.p.tcpHeader()
	return t != nil && len(sn.p.Payload) == 0 && t.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) == 0 && t.Flags&tcpwire.FlagACK != 0 &&
		(!nextSet || t.Seq.Diff(next) >= 0)
}

// streamEnd returns where a segment leaves the sender's sequence space:
// after its data, its SYN and its FIN.
func streamEnd(t *tcpwire.TCPHeader, payload int) tcpwire.Seq {
	end := t.Seq.Add(uint32(payload))
	if t.Flags&tcpwire.FlagSYN != 0 {
		end = end.Add(1)
	}
	if t.Flags&tcpwire.FlagFIN != 0 {
		end = end.Add(1)
	}
	return end
}

// noteAck adds what a packet of the connection acknowledges (numbers in
// script space) to e.acked, and reports whether it is a pure ACK.
func (e *engine) noteAck(s *socket, sn *sniffed) bool {
	t := sn.p.tcpHeader()
	if t == nil || s != e.underTest {
		return false
	}
	pure := pureACK(sn, e.sndNxt, e.sndNxtSet)
	if !pure {
		e.noteTransmission(t, len(sn.p.Payload), sn.at)
	}
	if end := streamEnd(t, len(sn.p.Payload)); !e.sndNxtSet || e.sndNxt.Diff(end) < 0 {
		e.sndNxt, e.sndNxtSet = end, true
	}
	if v, ok := findTSVal(t.Options); ok {
		// The latest live TS val bounds the ecr of the packets injected
		// next (see mapInboundTCP).
		if !s.liveTSSeen || tcpwire.Seq(s.lastLiveTSVal).Diff(tcpwire.Seq(v)) < 0 {
			s.lastLiveTSVal, s.liveTSSeen = v, true
		}
	}
	if e.cfg.Extended {
		e.kernelAt = append(e.kernelAt, sn.at)
	}
	if t.Flags&tcpwire.FlagACK != 0 {
		e.notePending(sn.at, true)
		if a := t.Ack; !e.acked.set || e.acked.ack.Diff(a) < 0 {
			e.acked.ack, e.acked.set = a, true
		}
		for b := range eachSACK(t.Options) {
			// Merged: ackMet reads them as a union, and a bulk
			// receiver sends thousands.
			e.acked.sacked = mergeRange(e.acked.sacked, b)
		}
		e.acked.at = sn.at
		e.notePending(sn.at, false)
	}
	return pure
}

// ackLine reports whether an outbound line only acknowledges, and so is
// judged as the kernel's progress (see doACKLine).
func (e *engine) ackLine(sp *scriptPacket) bool {
	return e.cfg.Extended && sp.proto == tcpwire.ProtoTCP && sp.payloadLen == 0 &&
		sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) == 0 && sp.flags&tcpwire.FlagACK != 0 &&
		(!e.lineNxtSet || tcpwire.Seq(sp.seq).Diff(e.lineNxt) >= 0)
}

// noteLine moves the point the script's outbound lines have taken the
// kernel's stream to (an ACK line below it expects a probe).
func (e *engine) noteLine(sp *scriptPacket) {
	if sp.proto != tcpwire.ProtoTCP {
		return
	}
	end := tcpwire.Seq(sp.seq).Add(uint32(sp.payloadLen))
	if sp.flags&tcpwire.FlagSYN != 0 {
		end = end.Add(1)
	}
	if sp.flags&tcpwire.FlagFIN != 0 {
		end = end.Add(1)
	}
	if !e.lineNxtSet || e.lineNxt.Diff(end) < 0 {
		e.lineNxt, e.lineNxtSet = end, true
	}
}

// delayedACKSlack is how much later than its line an ACK may come under
// --pcap2pkt: whether the kernel acknowledges at once (quick ACK) or on its
// delayed-ACK timer (40 ms, TCP_DELACK_MIN) follows the memory it charged
// for what it received, which differs between a capture's NIC or veth and
// a replay's TUN, and the timer fires on a tick (4 ms at HZ=250) that may
// be the next one.
const delayedACKSlack = 40*time.Millisecond + 2*4*time.Millisecond

// doACKLine judges a line that only acknowledges as the kernel's
// progress: by the line's time (within the tolerance, and the delayed-ACK
// slack), some packet of the kernel's must have acknowledged at least its
// ack, and SACKed at least its SACK blocks (a D-SACK block, below the ack,
// in some ACK of its own). Earlier is fine (a quick ACK
// where the captured kernel delayed one), as are extra ACKs; the kernel
// never acknowledges what it did not receive.
func (e *engine) doACKLine(es *eventState, sp *scriptPacket, s *socket) error {
	blocks := slices.Collect(eachSACK(sp.options))
	end := max(es.startUsecs, es.endUsecs) + e.tolerance(es) + delayedACKSlack.Microseconds()
	if e.deferAck(es, sp, s, tcpwire.Seq(sp.ack), blocks, end) {
		return nil
	}
	return e.awaitAck(es, sp, s, tcpwire.Seq(sp.ack), blocks, end)
}

// awaitAck waits until the kernel has acknowledged want and SACKed blocks,
// reading its packets until the script time end: pure ACKs count as
// progress, anything else waits for the lines after.
func (e *engine) awaitAck(es *eventState, sp *scriptPacket, s *socket, want tcpwire.Seq, blocks []seqRange, end int64) error {
	ctx, cancel := context.WithDeadline(e.ctx, e.liveTime(end))
	defer cancel()
	var seen []*sniffed
	for !e.ackMet(want, blocks) {
		sn, err := e.sniffCtx(ctx, es, s)
		if err == nil {
			e.learn(s, sn, false)
		}
		if err == nil && e.liveUsecs(sn.at) > end-e.scriptStart {
			// Read late, sent late: it does not count for this line.
			seen, err = append(seen, sn), &eventError{}
		}
		if err != nil {
			if e.ctx.Err() != nil {
				return err
			}
			return e.ackMissed(es, sp, want, blocks, end, seen)
		}
		if !e.noteAck(s, sn) {
			e.leftover = append(e.leftover, sn)
		}
		seen = append(seen, sn)
	}
	return nil
}

// ackMet reports whether the kernel has acknowledged want and SACKed
// blocks (see awaitAck).
func (e *engine) ackMet(want tcpwire.Seq, blocks []seqRange) bool {
	if !e.acked.set || e.acked.ack.Diff(want) < 0 {
		return false
	}
	for _, b := range blocks {
		// A block below the line's own ack is a D-SACK: the kernel's
		// report of a duplicate it received (tcp_dsack), which it
		// must have sent. Any other block below the kernel's
		// cumulative ACK is acknowledged by it too.
		dsack := b.end.Diff(want) <= 0
		if (dsack || b.end.Diff(e.acked.ack) > 0) && !covers(e.acked.sacked, b) && (!dsack || e.dsackOwed(b)) {
			return false
		}
	}
	return true
}

// ackMissed is the failure of a line whose progress the kernel had not
// made by end, with the packets seen meanwhile.
func (e *engine) ackMissed(es *eventState, sp *scriptPacket, want tcpwire.Seq, blocks []seqRange, end int64, seen []*sniffed) *eventError {
	got := "none"
	if e.acked.set {
		got = fmt.Sprintf("ack %d", uint32(e.acked.ack))
	}
	return &eventError{kind: packetError, msg: fmt.Sprintf("expected the kernel to acknowledge %s by %.3f s, the most it acknowledged: %s",
		describeProgress(want, blocks), secs(end-e.scriptStart), got), detail: e.dumpSniffed(es, sp, seen)}
}

// describeProgress names what an ACK line asks for.
func describeProgress(ack tcpwire.Seq, blocks []seqRange) string {
	d := fmt.Sprintf("ack %d", uint32(ack))
	for i, b := range blocks {
		if i == 0 {
			d += " with sack"
		}
		d += fmt.Sprintf(" %d:%d", uint32(b.start), uint32(b.end))
	}
	return d
}

// tolerance is the timing tolerance of an event: --tolerance_usecs, or
// --tolerance_percent of the time since the previous event when larger.
func (e *engine) tolerance(es *eventState) int64 {
	tol := e.cfg.ToleranceUsecs
	if last := e.lastEventUsecs(); last != noTime {
		if dyn := int64(e.cfg.TolerancePercent / 100 * float64(es.startUsecs-last)); dyn > tol {
			tol = dyn
		}
	}
	return tol
}

// streamMatch reports whether an outbound line is matched as a range of
// the byte stream (see the file comment).
func (e *engine) streamMatch(sp *scriptPacket) bool {
	return e.cfg.Extended && !e.cfg.StrictSegments && sp.proto == tcpwire.ProtoTCP && sp.flags&(tcpwire.FlagSYN|tcpwire.FlagRST) == 0 &&
		(sp.payloadLen > 0 || sp.flags&tcpwire.FlagFIN != 0)
}

// doOutboundStream matches a data or FIN line against the kernel's byte
// stream: the pieces that carry [seq, seq+len) (and the FIN if the line
// has one) are gathered, whatever their boundaries; what a segment carries
// beyond the line is left for the next line.
func (e *engine) doOutboundStream(es *eventState, sp *scriptPacket, s *socket) error {
	start := tcpwire.Seq(sp.seq)
	end := start.Add(uint32(sp.payloadLen))
	wantFIN := sp.flags&tcpwire.FlagFIN != 0
	var got []*sniffed
	fail := func(msg string) error {
		return &eventError{kind: packetError, msg: msg, detail: e.dumpSniffed(es, sp, got)}
	}
	at := start
	finSeen := false
	if e.preempted[es.index] && !wantFIN && e.sndNxtSet && start.Diff(e.sndNxt) < 0 {
		// A retransmission that may be needless (see notePreempted): the
		// wait ends when the peer's ACK of its bytes goes in first
		// (sniffCtx), which is held for it up to the tolerance
		// (injectAhead).
		e.racedWait, e.racedWaitSet = seqRange{start, end}, true
		defer func() { e.racedWaitSet = false }()
	}
	for at != end || (wantFIN && !finSeen) {
		sn, err := e.nextPiece(es, s, at)
		if err != nil && errors.Is(err, errPreempted) && at == start {
			// A retransmission the captured kernel made just before the
			// peer's ACK of the earlier transmission came (see
			// notePreempted): this kernel got the ACK first.
			if e.cfg.Verbose {
				fmt.Fprintf(e.env.Stdout, "the peer acknowledged %d:%d before the kernel sent it again: the line is needless\n", uint32(start), uint32(end))
			}
			e.logSent(seqRange{start, end}, e.env.Clock.Now(), true) // a stand-in
			return nil
		}
		if err != nil {
			err.detail = e.dumpSniffed(es, sp, append(got, e.leftover...))
			return err
		}
		e.racedWaitSet = false // the kernel sent it: no longer needless
		e.noteLineOut(sn)
		if e.cfg.Verbose {
			fmt.Fprintf(e.env.Stdout, "outbound sniffed packet: %9.6f %s\n", secs(e.liveUsecs(sn.at)), parser.FormatPacket(e.actualToAST(sp, sn.p)))
		}
		t := sn.p.tcpHeader()
		if t == nil || t.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 {
			got = append(got, sn)
			if len(got) == 1 {
				// Not a piece of the stream: compare it as a packet, so the
				// report names the fields that differ.
				return e.verifyOutbound(es, sp, s, sn)
			}
			return fail("error handling packet: expected the rest of the data, got another kind of packet")
		}
		pStart := t.Seq
		pEnd := pStart.Add(uint32(len(sn.p.Payload)))
		if head, ok := e.recutHead(sn, at); ok {
			// A retransmission cut otherwise than the line: its head,
			// bytes sent before the line's, is no part of it.
			sn = splitPiece(sn, head)
			pStart = at
		}
		if pStart != at {
			got = append(got, sn)
			if len(got) == 1 {
				return e.verifyOutbound(es, sp, s, sn)
			}
			return fail(fmt.Sprintf("error handling packet: expected the stream to go on at seq %d, got seq %d", uint32(at), t.Seq))
		}
		if pEnd.Diff(end) > 0 {
			// The segment goes on past the line: keep the rest, unless it
			// is the tail of a retransmission cut otherwise (recutTail).
			keep := int(end.Diff(pStart))
			rest := splitPiece(sn, keep)
			if !e.recutTail(rest) {
				e.leftover = append([]*sniffed{rest}, e.leftover...)
			}
			pEnd = end
		}
		if !wantFIN && pEnd == end && t.Flags&tcpwire.FlagFIN != 0 {
			// A FIN that rode on the line's last data belongs to a later
			// line (close() came before the data left).
			fin := splitPiece(sn, len(sn.p.Payload))
			e.leftover = append([]*sniffed{fin}, e.leftover...)
		}
		got = append(got, sn)
		at = pEnd
		finSeen = sn.p.TCP.Flags&tcpwire.FlagFIN != 0
		if at == end && !wantFIN {
			break
		}
	}
	live := got[0]
	if len(got) > 1 {
		live = aggregate(got)
	}
	// The line's ack is progress too: by the line's time the kernel has
	// acknowledged at least that much, on this data or on any packet
	// (what it had received when it sent the data follows timing).
	deadline := max(es.startUsecs, es.endUsecs) + e.tolerance(es)
	if err := e.awaitAck(es, sp, s, tcpwire.Seq(sp.ack), nil, deadline); err != nil {
		return err
	}
	cp := *live.p
	if !e.cfg.StrictSegments {
		// PSH marks where the kernel's writes ended, which follows timing:
		// compare without it.
		cp.TCP.Flags = cp.TCP.Flags&^tcpwire.FlagPSH | sp.flags&tcpwire.FlagPSH
	}
	cp.TCP.Ack = tcpwire.Seq(sp.ack)
	return e.verifyOutbound(es, sp, s, &sniffed{p: &cp, at: live.at})
}

// errPreempted ends the wait for a retransmission line that the peer's
// ACK made needless (see notePreempted).
var errPreempted = errors.New("the peer acknowledged the bytes first")

// nextPiece returns the kernel's next segment that goes on with the
// stream at seq at: one set aside before, else the next one it sends.
// What comes between is set aside for the lines after this one: a kernel
// that found a segment lost may retransmit it before or after the new data
// it was about to send, within microseconds (the captured one sent the new
// data first). A segment that is no piece of the stream (SYN, RST) is
// returned at once, to be reported.
func (e *engine) nextPiece(es *eventState, s *socket, at tcpwire.Seq) (*sniffed, *eventError) {
	// One that starts at at first, else one cut otherwise (recutHead).
	if p := e.takeLeftover(func(p *sniffed) bool { return p.p.TCP.Seq == at }); p != nil {
		return p, nil
	}
	if p := e.takeLeftover(func(p *sniffed) bool { _, ok := e.recutHead(p, at); return ok }); p != nil {
		return p, nil
	}
	for {
		sent := e.sndNxt // how far the kernel had sent before this packet
		sn, err := e.pullOne(es, s, false)
		if err != nil {
			return nil, err
		}
		t := sn.p.tcpHeader()
		if t == nil || t.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 || t.Seq == at {
			return sn, nil
		}
		if _, ok := e.recutHead(sn, at); ok {
			return sn, nil
		}
		if t.Seq.Diff(at) > 0 && at.Diff(sent) >= 0 {
			// New data past bytes the kernel never sent: a hole, not an
			// order the next lines may take.
			return sn, nil
		}
		e.leftover = append(e.leftover, sn)
	}
}

// takeLeftover removes from the segments set aside the first TCP one that
// match accepts, and returns it (nil: none).
func (e *engine) takeLeftover(match func(*sniffed) bool) *sniffed {
	for i, p := range e.leftover {
		if p.p.isTCP() && match(p) {
			e.leftover = append(e.leftover[:i:i], e.leftover[i+1:]...)
			return p
		}
	}
	return nil
}

// recutHead reports whether sn is a retransmission of the bytes at seq at
// cut otherwise than the line that waits for them, and how many of its
// bytes come before at. A kernel cuts a retransmission at its own
// segments' boundaries, which follow how its writes met its congestion
// window (a matter of timing): the captured one retransmitted
// 330673:332101 where a replayed one sent 330457:331885, then
// 331885:333313. So a segment that starts at most a segment (the peer's
// MSS) before at and goes on past it counts from at, when the kernel had
// sent both its first byte and at before: it retransmits, and so does the
// line. More than a segment before is another retransmission.
func (e *engine) recutHead(sn *sniffed, at tcpwire.Seq) (int, bool) {
	t := sn.p.tcpHeader()
	if t == nil || t.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 {
		return 0, false
	}
	head := int(at.Diff(t.Seq))
	if head <= 0 || head >= len(sn.p.Payload) || head > e.segmentBound() {
		return 0, false
	}
	if _, ok := e.lastSent(t.Seq, sn.at); !ok {
		return 0, false
	}
	_, ok := e.lastSent(at, sn.at)
	return head, ok
}

// recutTail reports whether rest, what a segment carried past the
// retransmission line that took its head, is the tail of a retransmission
// cut otherwise than the line (see recutHead), to be dropped: bytes the
// kernel had sent before, at most a segment, without FIN, all of which
// the peer had acknowledged or SACKed before the segment left (the kernel
// retransmitted a segment the peer's SACKs, cut at the captured
// boundaries, covered only in part). Any other rest is left for the lines
// after, and fails as a packet no line expects if none takes it.
func (e *engine) recutTail(rest *sniffed) bool {
	t := rest.p.tcpHeader()
	n := len(rest.p.Payload)
	if t == nil || n == 0 || n > e.segmentBound() || t.Flags&tcpwire.FlagFIN != 0 {
		return false
	}
	if _, ok := e.lastSent(t.Seq, rest.at); !ok {
		return false
	}
	r := seqRange{t.Seq, t.Seq.Add(uint32(n))}
	var had []seqRange
	for _, sig := range e.signals {
		if !sig.at.Before(rest.at) {
			break
		}
		if sig.ack.Diff(r.end) >= 0 {
			return true
		}
		for _, b := range sig.blocks {
			had = mergeRange(had, b)
		}
	}
	return covers(had, r)
}

// segmentBound is the most a segment of the kernel's carries: the peer's
// MSS, or RFC 9293's default when it sent none.
func (e *engine) segmentBound() int {
	if e.peerMSS > 0 {
		return e.peerMSS
	}
	return 536
}

// splitPiece cuts sn after keep payload bytes: sn keeps the head (without
// FIN) and the returned piece, sent at the same time, the tail and the FIN.
func splitPiece(sn *sniffed, keep int) *sniffed {
	p := *sn.p
	rest := p
	rest.Payload = p.Payload[keep:]
	rest.TCP.Seq = p.TCP.Seq.Add(uint32(keep))
	p.Payload = p.Payload[:keep]
	p.TCP.Flags &^= tcpwire.FlagFIN | tcpwire.FlagPSH
	*sn = sniffed{p: &p, at: sn.at}
	return &sniffed{p: &rest, at: sn.at}
}

// expectNothing fails the run if, before its last line started, the
// kernel sent a packet of the connection that no line took. What it sends
// after that is not judged: a capture ends where it ends, and the answer
// to its last packet (the ACK of a FIN, say) may simply not be in it.
func (e *engine) expectNothing() error {
	if e.outq == nil || e.underTest == nil || len(e.started) == 0 {
		return nil
	}
	end := e.started[len(e.started)-1].usecs
	var extra []*sniffed
	for _, x := range e.leftover {
		if !e.excusedRetransmission(x) {
			extra = append(extra, x)
		}
	}
	e.leftover = nil
	e.outq.mu.Lock()
	raw := e.outq.pkts
	e.outq.pkts = nil
	e.outq.mu.Unlock()
	for _, r := range raw {
		p, derr := decodePacket(r.b)
		if derr != nil {
			continue
		}
		if e.liveUsecs(r.at) > end {
			continue
		}
		s := e.socketForLivePacket(p)
		if s == nil || s != e.underTest {
			continue
		}
		sn := &sniffed{p: p, at: r.at}
		e.learn(s, sn, false)
		if e.noteAck(s, sn) {
			continue // ACKs are judged as progress, by the lines that expect them
		}
		if e.excusedRetransmission(sn) {
			continue
		}
		extra = append(extra, sn)
	}
	if len(extra) == 0 {
		return nil
	}
	var lines []string
	for _, x := range extra {
		lines = append(lines, fmt.Sprintf("  actual packet: %9.6f %s", secs(e.liveUsecs(x.at)), parser.FormatPacket(e.liveToAST(x.p))))
	}
	first := lines[0][strings.Index(lines[0], "> "):]
	se := &parser.Error{File: e.script.File, Msg: "expected nothing, got " + first,
		Detail: "  the kernel sent packets that no line of the script expects:\n" + strings.Join(lines, "\n")}
	// The line to blame is the last one started when the first of them
	// left: the packet answers it, or came while it waited.
	t := e.liveUsecs(extra[0].at)
	for _, d := range e.started {
		if d.usecs > t {
			break
		}
		se.Pos = lineOf(d.pos)
	}
	return se
}

// startedEvent is when an event of the run started (its time came), for
// reports that name the line after which something happened.
type startedEvent struct {
	pos   parser.Pos
	usecs int64
}

// liveToAST describes a sniffed packet of the connection (numbers in
// script space) as a script line, with what a line would check.
func (e *engine) liveToAST(p *wirePacket) *parser.Packet {
	sp := &scriptPacket{ast: &parser.Packet{Dir: parser.Outbound}, proto: p.IP.Proto, v6: p.v6()}
	return e.actualToAST(sp, p)
}

// injectedData is a segment of data the peer injected, in script space.
type injectedData struct {
	r  seqRange
	at time.Time
}

// dsackOwed reports whether the kernel owes the D-SACK block b: it sent
// some packet between the injection of the duplicate of b and that of the
// next segment of data. A kernel reports a duplicate only on an ACK it
// sends before it takes its next segment (tcp_data_queue clears a pending
// D-SACK), and whether it sends one then follows its delayed-ACK state
// (ping-pong mode makes the duplicate's ACK a delayed one) and when its
// reader opened the window: a kernel that took the duplicate and the
// segments after it in one go (a bulk receiver, 2 runs in 30) reports
// neither. One that acknowledged in between without the block still
// fails (tcp_dsack off). Unknown injections owe it.
func (e *engine) dsackOwed(b seqRange) bool {
	// The latest injection of b's bytes, when an earlier one had them.
	dup, copies := -1, 0
	for i := len(e.dataIn) - 1; i >= 0 && copies < 2; i-- {
		if r := e.dataIn[i].r; r.start.Diff(b.start) <= 0 && b.end.Diff(r.end) <= 0 {
			if copies++; copies == 1 {
				dup = i
			}
		}
	}
	if copies < 2 || dup+1 >= len(e.dataIn) {
		return true
	}
	from, to := e.dataIn[dup].at, e.dataIn[dup+1].at
	i := sort.Search(len(e.kernelAt), func(i int) bool { return !e.kernelAt[i].Before(from) })
	return i < len(e.kernelAt) && !e.kernelAt[i].After(to)
}
