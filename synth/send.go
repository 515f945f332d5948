package synth

// This file turns the local side's packets into the application's writes
// and the expectations of the kernel's segments: a write's segments are
// gathered into one expectation, and a zero-window probe gets the write
// whose data it probes with.

import (
	"fmt"
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// sending is the builder's state for the local side's writes and the
// expectations of their segments.
type sending struct {
	write      *parser.Syscall // the open write, while its segments keep coming
	burst      *burst          // the expectation its segments are gathered into: nil or &burstBuf
	burstBuf   burst           // (one per write)
	tail       *writeTail      // the write's last expectation so far: nil or &tailBuf
	tailBuf    writeTail       // (one per write, a bulk transfer has hundreds of thousands)
	ackedSince bool            // an ACK came in since the write's last segment
	writeEnd   tcpwire.Seq     // where the open write's data ends
	writeEnds  seqSet          // where the script's writes end (PSH goes there; see isWriteEnd)
	// endOpen says writeEnd is one of the writes' ends, which writeEnds
	// then leaves out: the open write's end moves with each segment it
	// takes, and a map that each segment took an entry from and gave one
	// to filled with deleted entries, a tenth of the time of a bulk
	// sender's synthesis spent probing past them.
	endOpen  bool
	multiSeg bool // an expectation holds more than one segment of data
	writeN   int64
	lastData *capture.FlowPacket
	sndMax   tcpwire.Seq // end of the highest local data sent
	finSent  bool
	queued   int64 // bytes written ahead of their segments (for zero-window probes)
	// notPushed holds where a local retransmission without PSH ended: no
	// write ended there (see unpushedEnds).
	notPushed map[tcpwire.Seq]bool
	// heldBack is the index of the local side's last new data segment when
	// it shows that its write had more data than left (see lastUnpushed),
	// or -1; moreQueued says the script's write holds that data.
	heldBack   int
	moreQueued bool
	// writesAfter holds the writes that probe placed after an event
	// other than the latest, for spliceWrites.
	writesAfter map[*event][]*event
	// freshScanned says that nextFresh found no new local data after
	// packet noFreshAfter.
	freshScanned bool
	noFreshAfter int
}

// writeCap bounds a write that spans ACKs: the kernel queued its data while
// waiting for them, and a blocking write larger than the free send buffer
// would stall the script (the reference runs such calls inline). The
// buffer starts at about 20 segments' worth (tcp_sndbuf_expand).
const writeCap = 16 << 10

// closeWrite ends the open write: later segments need a write of their own.
func (b *builder) closeWrite() {
	b.settleWrite()
	b.write, b.writeN, b.lastData, b.burst = nil, 0, nil, nil
}

func (b *builder) outbound(i int, p *capture.FlowPacket) {
	b.noteSent(p)
	fl := p.Flags
	b.probe(i, p)
	seq := p.Seq
	if fl.Has(tcpwire.FlagSYN) {
		seq = seq.Add(1)
	}
	if !b.outSeen {
		b.sndMax = seq
	}
	end := seq.Add(uint32(p.PayloadLen()))
	var fresh int64
	if p.PayloadLen() > 0 && !fl.Has(tcpwire.FlagSYN) {
		if b.sndMax.LessThan(end) {
			start := seq
			if start.LessThan(b.sndMax) {
				start = b.sndMax
			}
			fresh = int64(end.Diff(start))
		} else {
			b.count.retransOut++
			b.comment(retransCause(b.f, i, b.local, b.sndMax))
		}
	}
	if fl.Has(tcpwire.FlagSYN) && b.outSeen {
		b.comment("The kernel retransmits its SYN.")
	}
	timer := (p.PayloadLen() > 0 && fresh == 0) || (fl.Has(tcpwire.FlagSYN) && b.outSeen) ||
		(fl.Has(tcpwire.FlagFIN) && b.finSent) || (p.PayloadLen() == 0 && b.outSeen && p.Seq == b.sndMax-1)
	blocking := b.toBlocking && (fresh > 0 || fl.Has(tcpwire.FlagFIN) || fl.Has(tcpwire.FlagRST))
	if blocking {
		b.switchToBlocking(p.Time())
	}
	joined := false
	if fresh > 0 {
		joined = b.addWrite(p, fresh)
		if i == b.heldBack && b.write != nil {
			// One more segment's worth stays queued to the end, as in the
			// capture: without it the write's last segment would be pushed.
			b.comment("No PSH on the last new data: the application wrote more than left before the capture ended.")
			b.writeN += int64(b.segSize(p, b.local))
			b.setWriteN()
			b.dropWriteEnd()
			b.moreQueued = true
		}
	}
	if fl.Has(tcpwire.FlagFIN) && !b.finSent {
		b.finSent = true
		b.localFIN(p)
	}
	if fl&(tcpwire.FlagRST|tcpwire.FlagACK) == tcpwire.FlagRST && b.fd >= 0 && !b.closed {
		// A bare RST answers a segment that matched no socket: the
		// connection was gone already (no close makes one: the kernel's
		// active reset carries an ACK).
		b.comment("A bare RST: the connection was gone already (the kernel answers so a segment that matches no socket).")
		b.closed = true
	}
	if fl.Has(tcpwire.FlagRST) && b.fd >= 0 && !b.closed {
		b.flushRead()
		b.call(p.Time(), "setsockopt", 0, num(b.fd), word("SOL_SOCKET"), word("SO_LINGER"), &parser.Linger{OnOff: 1, Linger: 0}, num(8))
		b.call(p.Time(), "close", 0, num(b.fd))
		b.closed = true
	}
	react := len(b.events) > 0
	if react {
		prev := b.events[len(b.events)-1].action
		if pk, ok := prev.(*pktNode); ok && pk.Dir == parser.Outbound {
			react = false
		}
	}
	if pk := b.packet(p, false); pk != nil {
		if fresh == 0 && p.PayloadLen() > 0 && !b.opts.Strict {
			// A retransmission carries PSH where a script write ended, in
			// the replay as in the kernel (tcp_fragment keeps it at the
			// end), and where the captured one had it: Linux 6.18, resending
			// two segments of a write that RACK had marked lost, set PSH on
			// the second, in the capture and in its replays alike.
			fl := p.Flags &^ tcpwire.FlagPSH
			if b.isWriteEnd(end) || p.Flags.Has(tcpwire.FlagPSH) {
				fl |= tcpwire.FlagPSH
			}
			pk.TCP.Flags = flagText(fl)
		}
		gathered := joined && b.gather(p, pk)
		if gathered {
			b.markTail(b.burst.pkt, b.burst.at, b.burst.flags)
			// One expectation for several segments: the replayed kernel
			// must cut the write as the captured one did, into MSS-sized
			// segments, not TSO frames whose size follows its pacing (nor
			// hold a frame's tail back to grow it, tcp_tso_should_defer).
			b.multiSeg = true
		} else {
			// Whether the latest packet is an inbound FIN (an ICMP error
			// is none: lastPkt is nil after one).
			q := b.lastPkt
			prevFIN := q != nil && q.Dir == parser.Inbound && strings.Contains(q.TCP.Flags, "F")
			e := b.emit(p.Time(), pk)
			e.react = react
			e.ack, e.afterFIN = pureACK(p), pureACK(p) && prevFIN
			e.timer = timer
			e.fresh = fresh > 0
			b.noteTSVal(pk)
			if fresh > 0 && int64(p.PayloadLen()) == fresh {
				b.burstBuf = burst{pkt: pk, ev: e, at: b.lastIndex(), flags: p.Flags, base: len(e.comments()), segs: 1, optLen: len(p.RawOptions())}
				b.burst = &b.burstBuf
			}
			if fresh > 0 {
				b.markTail(pk, b.lastIndex(), p.Flags)
			}
		}
		if m := b.segSize(p, b.local); fresh > 0 && m > 0 && int(pk.TCP.Len) > m {
			b.multiSeg = true
		}
		if gathered {
			b.forget(pk)
		}
	}
	if b.sndMax.LessThan(end) {
		b.sndMax = end
	}
	if fresh > 0 {
		b.lastData = p
	}
	if b.toBlocking && pureACK(p) {
		b.switchToBlocking(p.Time())
	}
	if fl.Has(tcpwire.FlagSYN | tcpwire.FlagACK) {
		b.rcv.synData(p.Ack) // the SYN-ACK takes the data of the SYN
	}
	if b.server && b.fd < 0 && !b.refused && b.acceptICMP < 0 && fl.Has(tcpwire.FlagSYN|tcpwire.FlagACK) && b.fastOpenChild(p) {
		// With Fast Open the connection is accepted with the SYN's data,
		// before the handshake completes; after the ICMP error that ended
		// it, if one did (see killingICMP).
		if b.acceptICMP = b.killingICMP(); b.acceptICMP < 0 {
			b.accept(p.Time())
		}
	}
	if b.closeInSYNSent && fl.Has(tcpwire.FlagSYN) && !fl.Has(tcpwire.FlagACK) && !b.closed {
		b.comment("The kernel answers the SYN-ACK with a bare RST: the application closed the socket before it came.")
		b.call(p.Time(), "close", 0, num(b.fd))
		b.closed = true
	}
	b.outSeen, b.lastOutAck, b.lastOutWin = true, p.Ack, b.outWin(p)
}

// probe handles an outbound segment that only probes the peer (seq one
// below the highest data sent, no payload). Against a zero window it is the
// kernel's window probe, which it sends only with data queued: the
// application wrote the next segment's data before, so write it here. With
// the window open it is a keepalive, which the script cannot ask for
// without knowing the application's keepalive settings.
func (b *builder) probe(i int, p *capture.FlowPacket) {
	if p.PayloadLen() != 0 || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 || !b.outSeen || p.Seq != b.sndMax-1 {
		return
	}
	if b.inSeen && b.lastInWin != 0 {
		b.comment("A keepalive probe: the application enabled SO_KEEPALIVE (with timings the capture cannot tell).")
		return
	}
	if b.queued > 0 || b.fd < 0 || b.closed {
		return
	}
	n := b.nextFresh(i)
	if n == 0 {
		return
	}
	// The write goes right after the ACK that closed the window, where the
	// kernel that was captured started its persist timer: written later,
	// the replayed kernel would probe later.
	at := b.zeroWin - b.base
	if b.zeroWin < 0 {
		at = len(b.events) - 1
	}
	if at < 0 {
		b.touch(b.zeroWin)
		return
	}
	w := new(event)
	*w = newEvent(b.events[at].at(), &parser.Syscall{Name: "write", Args: []parser.Expr{num(b.fd), any3(), num(n)}, Result: num(n)},
		[]string{"The zero-window probes below need data queued: the application wrote it before."}, b.nodes)
	if at == len(b.events)-1 {
		b.events = append(b.events, w)
	} else {
		// Copied in place, each such write moved every event after the
		// window closed: quadratic in a capture of probes and data.
		anchor := b.events[at]
		if b.writesAfter == nil {
			b.writesAfter = map[*event][]*event{}
		}
		b.writesAfter[anchor] = append(b.writesAfter[anchor], w)
	}
	b.queued, b.lastCall, b.lastWriteN = n, "write", n
}

// spliceWrites puts the writes that probe placed after an earlier event
// into the event list, each right after its event (the latest first, as
// each went right after it).
func (b *builder) spliceWrites() {
	if len(b.writesAfter) == 0 {
		return
	}
	n := len(b.events)
	for _, ws := range b.writesAfter {
		n += len(ws)
	}
	out := make([]*event, 0, n)
	for _, e := range b.events {
		out = b.spliceAfter(out, e)
	}
	b.events = out
}

// spliceAfter appends e to out, and then the writes that probe placed
// after it.
func (b *builder) spliceAfter(out []*event, e *event) []*event {
	out = append(out, e)
	ws, ok := b.writesAfter[e]
	if !ok {
		return out
	}
	for k := len(ws) - 1; k >= 0; k-- {
		out = append(out, ws[k])
	}
	delete(b.writesAfter, e)
	return out
}

// nextFresh returns the new bytes of the first local data segment after
// packet i.
func (b *builder) nextFresh(i int) int64 {
	if b.freshScanned && i >= b.noFreshAfter {
		// None after an earlier packet: none after a later one either
		// (sndMax only grows), and scanning again for each probe was
		// quadratic.
		return 0
	}
	for j := i + 1; j < b.f.Packets.Len(); j++ {
		p := b.f.Packets.At(j)
		if p.From != b.local || p.PayloadLen() == 0 {
			continue
		}
		end := p.Seq.Add(uint32(p.PayloadLen()))
		if !b.sndMax.LessThan(end) {
			continue
		}
		start := p.Seq
		if start.LessThan(b.sndMax) {
			start = b.sndMax
		}
		return int64(end.Diff(start))
	}
	b.freshScanned, b.noFreshAfter = true, i
	return 0
}

// switchToBlocking puts a connected client's socket back in blocking mode,
// so that its reads and writes behave as the application's did whatever
// the buffers hold at replay time.
func (b *builder) switchToBlocking(at time.Time) {
	b.toBlocking = false
	if b.fd < 0 || b.closed {
		return
	}
	b.call(at, "fcntl", 0, num(b.fd), word("F_SETFL"), word("O_RDWR"))
}

// addWrite counts fresh bytes of segment p into the open write, or opens a
// new write before p; it reports whether p joined the open write. A write
// ends where the kernel's segmentation shows that the data it had ended (a
// PSH, a segment shorter than the MSS), where anything but a pure ACK comes
// in between, where a segment leaves long after the packet before it, or
// at writeCap bytes once ACKs came between its segments. Data sent right
// after an ACK without such a mark was queued: writing it with what came
// before keeps the replayed kernel as cwnd-limited as the captured one
// (cwnd grows only then). Splitting where the application may not have is
// otherwise harmless: each write comes just before its bytes leave. (A PSH
// is not always a write's end, with TSO every super-segment may carry one;
// joining across it made the replay's PSH marks less predictable.)
// isWriteEnd reports whether one of the script's writes ends at end.
func (b *builder) isWriteEnd(end tcpwire.Seq) bool {
	return b.endOpen && end == b.writeEnd || b.writeEnds.has(end)
}

// dropWriteEnd takes writeEnd from the writes' ends.
func (b *builder) dropWriteEnd() {
	if b.endOpen {
		b.endOpen = false
		return
	}
	b.writeEnds.remove(b.writeEnd)
}

// openWriteEnd makes end the open write's end, one of the writes' ends.
func (b *builder) openWriteEnd(end tcpwire.Seq) {
	b.writeEnd = end
	b.endOpen = !b.writeEnds.has(end)
}

func (b *builder) addWrite(p *capture.FlowPacket, fresh int64) (joined bool) {
	if b.queued > 0 {
		n := min(b.queued, fresh)
		b.queued -= n
		if fresh -= n; fresh == 0 {
			b.tail = nil
			if end := p.Seq.Add(uint32(p.PayloadLen())); b.queued == 0 && !(b.endOpen && end == b.writeEnd) {
				b.writeEnds.add(end)
			}
			return false
		}
	}
	end := p.Seq.Add(uint32(p.PayloadLen()))
	join := b.write != nil && b.lastData != nil && !b.endsWrite(b.lastData, p) && (!b.ackedSince || b.writeN+fresh <= writeCap)
	if join && b.writeN+fresh > maxCall {
		b.count.bigCalls++
		join = false
	}
	if join {
		b.writeN += fresh
		b.setWriteN()
		b.ackedSince = false
		b.dropWriteEnd()
		b.openWriteEnd(end)
		return true
	}
	if b.fd < 0 || b.closed {
		return false
	}
	b.closeWrite()
	b.tail, b.ackedSince = nil, false
	if b.endOpen {
		b.writeEnds.add(b.writeEnd)
	}
	b.openWriteEnd(end)
	b.write = b.rwCall(p.Time(), "write", fresh)
	b.writeN = fresh
	b.setWriteN()
	b.lastCall = "write"
	return false
}

func (b *builder) setWriteN() {
	// The write's numbers are its own nodes (rwCall): updated in place.
	b.write.Args[2].(*parser.IntLit).Value = b.writeN
	b.write.Result.(*parser.IntLit).Value = b.writeN
	b.lastWriteN = b.writeN
}

// endsWrite reports whether the data segment last ends the write that the
// next data segment p would otherwise join: last was pushed or short, or p
// leaves long after the packet before it, so nothing in the protocol made
// the kernel send it then (data sent right after an ACK was queued).
func (b *builder) endsWrite(last, p *capture.FlowPacket) bool {
	if last.Flags.Has(tcpwire.FlagPSH) && !b.notPushed[last.Seq.Add(uint32(last.PayloadLen()))] {
		return true
	}
	if b.short(last) {
		return true
	}
	if b.ackedSince && b.short(p) && !p.Flags.Has(tcpwire.FlagFIN) {
		// A short tail that left at an ACK: it waited for cwnd, or the
		// application held it back (MSG_MORE, TCP_CORK) or wrote it then.
		// Written at the ACK it leaves there in each case; joined, a replay
		// without the cork would send it with the segments before. (A FIN
		// tail stays: close() put the FIN on the queued data.)
		return true
	}
	return p.Time().Sub(b.prevTime) > b.tolerance()
}

// short reports whether the data segment p is not a whole number of full
// segments: the kernel had no more data to send then.
func (b *builder) short(p *capture.FlowPacket) bool {
	m := b.segSize(p, b.local)
	return m > 0 && p.PayloadLen()%m != 0
}

// localFIN emits the call behind the local side's FIN: shutdown(SHUT_WR)
// when data still comes in afterwards, close otherwise.
func (b *builder) localFIN(p *capture.FlowPacket) {
	b.flushRead()
	if b.fd < 0 || b.closed {
		return
	}
	if b.shutdownAt >= 0 && b.f.Packets.At(b.shutdownAt) == p {
		b.call(p.Time(), "shutdown", 0, num(b.fd), word("SHUT_WR"))
		return
	}
	b.call(p.Time(), "close", 0, num(b.fd))
	b.closed = true
}

// burst is the expectation that the segments of one write are gathered
// into.
type burst struct {
	pkt    *pktNode
	ev     *event
	at     int // ev's index in the script (see lastIndex)
	flags  tcpwire.Flags
	base   int // comments of ev before the gathering note
	segs   int
	optLen int // bytes of TCP options of the captured segments
}

// writeTail is the last expectation holding data of the latest write, with
// its captured flags.
type writeTail struct {
	pk    *pktNode
	at    int // the index in the script of pk's event (see lastIndex)
	flags tcpwire.Flags
}

// markTail makes pk the last expectation of the latest write. The kernel
// sets PSH on the last segment of each write (tcp_push), and the script's
// writes end where it does not know the application's did: so the tail
// expects PSH, and an expectation that stops being the tail does not. With
// Strict, flags stay as captured.
func (b *builder) markTail(pk *pktNode, at int, flags tcpwire.Flags) {
	if b.opts.Strict {
		return
	}
	if t := b.tail; t != nil && t.pk != pk {
		b.touch(t.at)
		// The replay checks a gathered expectation with the flags of its
		// last segment, which is inside the write now: no PSH.
		t.pk.TCP.Flags = flagText(t.flags &^ tcpwire.FlagPSH)
	}
	b.tailBuf = writeTail{pk, at, flags}
	b.tail = &b.tailBuf
	if !b.moreQueued {
		flags |= tcpwire.FlagPSH
	}
	pk.TCP.Flags = flagText(flags)
}

// gather adds the data segment p (script packet pk) of the open write to
// the write's expectation when it directly follows it. How a kernel cuts a
// write into segments depends on its TSO/GSO sizing (pacing rate, cwnd,
// the device's offloads), which a replay does not reproduce; the reference
// gathers the segments it sees into one expected segment (unless
// --strict_segments), but fails on a segment larger than expected. So the
// data of one write is one expectation. With Strict, segments stay as
// captured.
func (b *builder) gather(p *capture.FlowPacket, pk *pktNode) bool {
	u := b.burst
	if b.opts.Strict || u == nil || b.events[len(b.events)-1] != u.ev || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 {
		return false
	}
	x, y := &u.pkt.TCP, &pk.TCP
	if y.Seq != x.Seq+x.Len || x.Ack == nil || y.Ack == nil || *x.Ack != *y.Ack ||
		len(p.RawOptions()) != u.optLen || int64(x.Len)+int64(y.Len) > int64(parser.MaxSegmentBytes(x.Options.WireLen())) {
		// (A write's data beyond what one packet line holds goes on in an
		// expectation of its own.)
		return false
	}
	x.Len += y.Len
	u.flags |= p.Flags
	x.Flags = flagText(u.flags)
	u.segs++
	// The replay checks and anchors the gathered expectation at its last
	// segment (relative times after it count from there): so does the
	// script, or every burst the kernel paces out would delay what follows
	// by its spread, and a long transfer would drift late by milliseconds.
	u.ev.setAt(p.Time())
	if b.opts.Frames {
		if b.frames == nil {
			b.frames = map[*event][]int{}
		}
		b.frames[u.ev] = append(b.frames[u.ev], p.Index())
	}
	b.count.gathered++
	switch c := u.ev.comments(); {
	case u.base == 0 && u.segs < len(gatheredNotes):
		// The note alone: a list shared by every write of as many
		// segments, which nothing changes in place (each other list
		// of comments is copied to grow: a bulk transfer has hundreds
		// of thousands of such writes).
		u.ev.setComments(gatheredLists[u.segs][:], b.nodes)
	case u.segs > 2 && (u.base > 0 || u.segs > len(gatheredNotes)):
		// The note of the segments before is the event's own copy (below).
		c[u.base] = gatheredNote(u.segs)
	default:
		u.ev.setComments(append(c[:u.base:u.base], gatheredNote(u.segs)), b.nodes)
	}
	u.ev.gathered = int32(u.segs)
	return true
}

const gatheredFmt = "One write, captured as %d segments: gathered into one expectation (a kernel cuts it as its TSO/GSO sizing says)."

// gatheredNotes caches the note of gather for small segment counts: it is
// rewritten for every segment a write gathers.
var gatheredNotes = func() (t [64]string) {
	for n := 2; n < len(t); n++ {
		t[n] = fmt.Sprintf(gatheredFmt, n)
	}
	return t
}()

// gatheredLists holds each of gatheredNotes as a list of comments.
var gatheredLists = func() (t [len(gatheredNotes)][1]string) {
	for n := range t {
		t[n][0] = gatheredNotes[n]
	}
	return t
}()

func gatheredNote(n int) string {
	if n >= 2 && n < len(gatheredNotes) {
		return gatheredNotes[n]
	}
	return fmt.Sprintf(gatheredFmt, n)
}
