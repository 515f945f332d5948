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
}

// noteTransmission logs a packet of the connection that occupies
// sequence space.
func (e *engine) noteTransmission(t *tcpwire.TCPHeader, payload int, at time.Time) {
	start := t.Seq
	end := streamEnd(t, payload)
	if start == end {
		return
	}
	e.sent = append(e.sent, transmission{start, end, at})
}

// nthSent returns when the kernel sent the byte (sequence number) x for
// the n-th time (from 1), and whether it has.
func (e *engine) nthSent(x tcpwire.Seq, n int) (time.Time, bool) {
	for _, t := range e.sent {
		if t.start.Diff(x) <= 0 && x.Diff(t.end) < 0 {
			if n--; n == 0 {
				return t.at, true
			}
		}
	}
	return time.Time{}, false
}

// peerState is what the injected peer has acknowledged so far, in script
// space: an anchored line answers what goes beyond it.
type peerState struct {
	ackSet bool
	ack    tcpwire.Seq
	sacked []seqRange
}

// anchorOf returns the sequence number an inbound line answers: the last
// byte it acknowledges or SACKs beyond what the peer did before, or false
// when it answers nothing new.
func (e *engine) anchorOf(sp *scriptPacket) (tcpwire.Seq, bool) {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 {
		return 0, false
	}
	var x tcpwire.Seq
	found := false
	if a := tcpwire.Seq(sp.ack); !e.peer.ackSet || e.peer.ack.Diff(a) < 0 {
		x, found = a.Add(^uint32(0)), true // a-1
	}
	for b := range eachSACK(sp.options) {
		if covers(e.peer.sacked, b) {
			continue
		}
		if last := b.end.Add(^uint32(0)); !found || x.Diff(last) < 0 {
			x, found = last, true
		}
	}
	return x, found
}

// peerSignal is an injected ACK as loss detection sees it: when it went
// in, what it acknowledged, and the highest sequence number its SACK
// blocks reached (set: it had one).
type peerSignal struct {
	at       time.Time
	ack      tcpwire.Seq
	sackHigh tcpwire.Seq
	sacked   bool
}

// lossSignal returns when the peer first told the kernel, after it sent
// seq the time before at, that seq may be lost: an ACK that stops at seq
// while SACKing data after it. A fast retransmission or RACK's may come
// from then on: the captured kernel, which handled those ACKs in a batch
// after a burst it was sending (the socket was busy), may have sent it
// later than a replayed one does.
func (e *engine) lossSignal(seq tcpwire.Seq, before time.Time) (time.Time, bool) {
	var prev time.Time
	for _, t := range e.sent {
		if t.start.Diff(seq) <= 0 && seq.Diff(t.end) < 0 && t.at.Before(before) {
			prev = t.at
		}
	}
	if prev.IsZero() {
		return time.Time{}, false
	}
	for _, sig := range e.signals {
		if !sig.at.Before(prev) && sig.ack == seq && sig.sacked && sig.sackHigh.Diff(seq) > 0 {
			return sig.at, true
		}
	}
	return time.Time{}, false
}

// notePeer records what an injected line acknowledged and SACKed.
func (e *engine) notePeer(sp *scriptPacket) {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 {
		return
	}
	sig := peerSignal{at: e.env.Clock.Now(), ack: tcpwire.Seq(sp.ack)}
	for b := range eachSACK(sp.options) {
		if !sig.sacked || sig.sackHigh.Diff(b.end) < 0 {
			sig.sackHigh, sig.sacked = b.end, true
		}
	}
	if sig.sacked {
		e.signals = append(e.signals, sig)
	}
	if a := tcpwire.Seq(sp.ack); !e.peer.ackSet || e.peer.ack.Diff(a) < 0 {
		e.peer.ack, e.peer.ackSet = a, true
	}
	for b := range eachSACK(sp.options) {
		e.peer.sacked = append(e.peer.sacked, b)
	}
}

// anchoredTime returns when an anchored inbound line is due (live time),
// and whether the kernel has sent what it answers. A line that answers
// nothing new is due at once.
func (e *engine) anchoredTime(ev *parser.Event, sp *scriptPacket) (time.Time, bool) {
	x, ok := e.anchorOf(sp)
	if !ok {
		return e.env.Clock.Now(), true
	}
	at, sent := e.nthSent(x, max(ev.Time.AnchorN, 1))
	if !sent {
		return time.Time{}, false
	}
	return at.Add(time.Duration(ev.Time.Usecs) * time.Microsecond), true
}

// awaitAnchor reads the kernel's packets until it has sent what the
// anchored inbound line es answers, and returns when the line is due.
func (e *engine) awaitAnchor(es *eventState, sp *scriptPacket, s *socket) (time.Time, *eventError) {
	delay := time.Duration(es.ev.Time.Usecs) * time.Microsecond
	limit := delay + 2*time.Second
	ctx, cancel := context.WithTimeout(e.ctx, limit)
	defer cancel()
	for {
		if at, ok := e.anchoredTime(es.ev, sp); ok {
			return at, nil
		}
		// The kernel may wait for an ACK before it sends what this line
		// answers (its window is smaller than the captured one's was): a
		// real peer would have acknowledged what came by then. When the
		// kernel has sent nothing new for the line's delay, the peer
		// acknowledges what it sent, that long after.
		rctx, rcancel := ctx, context.CancelFunc(func() {})
		partial, due := e.partialAck(sp, delay)
		if partial {
			rctx, rcancel = context.WithDeadline(ctx, due)
		}
		sn, err := e.sniffCtx(rctx, es, s)
		rcancel()
		if err != nil && partial && ctx.Err() == nil && e.ctx.Err() == nil {
			if ierr := e.injectPartial(sp, s); ierr != nil {
				return time.Time{}, &eventError{kind: fatalError, msg: ierr.Error(), err: ierr}
			}
			continue
		}
		if err != nil {
			if e.ctx.Err() == nil {
				x, _ := e.anchorOf(sp)
				what := fmt.Sprintf("seq %d", uint32(x))
				if n := es.ev.Time.AnchorN; n > 1 {
					what = fmt.Sprintf("transmission %d of seq %d", n, uint32(x))
				}
				err = &eventError{kind: fatalError, msg: fmt.Sprintf("error handling packet: this packet answers %s, which the kernel has not sent (waited %v)", what, limit)}
			}
			return time.Time{}, err
		}
		e.learn(s, sn, false)
		if !e.noteAck(s, sn) {
			e.leftover = append(e.leftover, sn)
		}
	}
}

// partialMinDelay bounds from below how long the kernel must have been
// quiet before the peer acknowledges part of what a line acknowledges.
const partialMinDelay = 200 * time.Microsecond

// partialAck reports whether the peer should acknowledge, at due, the part
// of the cumulative ACK of line sp that the kernel has sent: it sent data
// beyond what the peer acknowledged and has been quiet since (see
// awaitAnchor). Lines with SACK blocks, and lines that acknowledge no new
// data, are left whole.
func (e *engine) partialAck(sp *scriptPacket, delay time.Duration) (bool, time.Time) {
	if len(e.sent) == 0 || !e.sndNxtSet || !e.peer.ackSet || sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 || sp.payloadLen > 0 {
		return false, time.Time{}
	}
	if hasSACK(sp.options) {
		return false, time.Time{}
	}
	want := tcpwire.Seq(sp.ack)
	if e.peer.ack.Diff(e.sndNxt) >= 0 || e.sndNxt.Diff(want) >= 0 {
		return false, time.Time{}
	}
	last := e.sent[len(e.sent)-1].at
	return true, last.Add(max(delay, partialMinDelay))
}

// hasSACK reports whether an option list holds a SACK option.
func hasSACK(opts []byte) bool {
	for o, err := range tcpwire.EachOption(opts) {
		if err != nil {
			break
		}
		if o.Kind == tcpwire.OptKindSACK {
			return true
		}
	}
	return false
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

// injectPartial injects line sp acknowledging only what the kernel sent.
func (e *engine) injectPartial(sp *scriptPacket, s *socket) error {
	part := *sp
	part.ack = uint32(e.sndNxt)
	if e.cfg.Verbose {
		fmt.Fprintf(e.env.Stdout, "partial ACK %d of line's ack %d\n", part.ack, sp.ack)
	}
	return e.injectLine(&part, s)
}

// doAnchoredInbound injects an anchored inbound line when it is due.
func (e *engine) doAnchoredInbound(es *eventState, sp *scriptPacket, s *socket) error {
	at, err := e.awaitAnchor(es, sp, s)
	if err != nil {
		return err
	}
	// The line counts as starting when it goes in: at its time, or now
	// when the run reached it only after that (the line before held it).
	// A line after it that is not anchored counts from then.
	es.startUsecs = e.liveUsecs(laterOf(at, e.env.Clock.Now())) + e.scriptStart
	if at.After(e.env.Clock.Now()) {
		e.mu.Unlock()
		serr := e.env.Clock.SleepUntil(e.ctx, at)
		e.mu.Lock()
		if serr != nil {
			return &eventError{kind: fatalError, msg: "run ended: " + context.Cause(e.ctx).Error(), err: serr}
		}
	}
	return e.injectLine(sp, s)
}

// injectLine injects an inbound line and notes what it answered.
func (e *engine) injectLine(sp *scriptPacket, s *socket) error {
	if err := e.doInbound(sp, s); err != nil {
		return err
	}
	e.notePeer(sp)
	return nil
}

// aheadLine returns the next inbound line after the current event if it
// may go in ahead of the events before it, compiled, or -1: an anchored
// pure ACK (it answers the kernel only, and carries nothing an application
// reads), with only outbound lines and system calls before it.
func (e *engine) aheadLine() (int, *scriptPacket, *socket) {
	for i := e.cur.index + 1; i < len(e.script.Events); i++ {
		if e.ahead[i] {
			continue
		}
		ev := e.script.Events[i]
		if _, ok := ev.Action.(*parser.Syscall); ok {
			continue
		}
		p, ok := ev.Action.(*parser.Packet)
		if !ok {
			return -1, nil, nil
		}
		if p.Dir == parser.Outbound {
			continue
		}
		if !ev.Time.Anchor || ev.Time.Kind != parser.TimeRelative || p.TCP == nil || p.TCP.Len > 0 ||
			strings.ContainsAny(p.TCP.Flags, "SFR") {
			return -1, nil, nil
		}
		sp, err := compilePacket(p, e.cfg.wireIPv6())
		if err != nil {
			return -1, nil, nil
		}
		s, err := e.socketForScriptPacket(sp)
		if err != nil || s != e.underTest {
			return -1, nil, nil
		}
		return i, sp, s
	}
	return -1, nil, nil
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
		i, sp, s := e.aheadLine()
		if i < 0 {
			return time.Time{}, nil
		}
		at, ok := e.anchoredTime(e.script.Events[i], sp)
		if !ok {
			partial, due := e.partialAck(sp, time.Duration(e.script.Events[i].Time.Usecs)*time.Microsecond)
			switch {
			case !partial:
				return time.Time{}, nil
			case due.After(e.env.Clock.Now()):
				return due, nil
			}
			if err := e.injectPartial(sp, s); err != nil {
				return time.Time{}, err
			}
			continue
		}
		if at.After(e.env.Clock.Now()) {
			return at, nil
		}
		if err := e.injectLine(sp, s); err != nil {
			return time.Time{}, err
		}
		if e.ahead == nil {
			e.ahead = map[int]bool{}
		}
		e.ahead[i] = true
		e.aheadAt = append(e.aheadAt, aheadInjection{i, e.liveUsecs(e.env.Clock.Now())})
	}
}

// aheadInjection is when a line injected ahead went in.
type aheadInjection struct {
	index int
	usecs int64
}

// injectedAhead reports whether event i was injected ahead, and when (live
// microseconds).
func (e *engine) injectedAhead(i int) (int64, bool) {
	if !e.ahead[i] {
		return 0, false
	}
	for _, a := range e.aheadAt {
		if a.index == i {
			return a.usecs, true
		}
	}
	return 0, true
}

// laterOf returns the later of two instants.
func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
