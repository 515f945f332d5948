package replay

// The injected peer as a receiver (--pcap2pkt scripts): an inbound pure ACK
// acknowledges and SACKs what the peer has received of what the kernel
// actually sent, not the numbers the captured peer wrote. Where the
// kernel sent what the captured one had when the captured peer sent the
// line (the same bytes the same number of times, however cut), the line
// goes in as written. Where it cuts its data otherwise, sends a
// retransmission before the new data the captured one sent first, or is a
// segment behind, a real peer would have acknowledged what it got, and so
// does this one. What the capture shows lost stays lost: a transmission
// of bytes that were sent again after the captured peer's ACKs showed them
// in a hole below a SACK block is not delivered when the kernel sends
// those bytes that many times.
//
// Delivered means: sent no later than the latest transmission the peer
// has answered, this line included (its anchor), the path keeping its
// order.

import (
	"context"
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// lostRange is bytes whose n-th transmission the captured peer never got.
type lostRange struct {
	start, end tcpwire.Seq
	n          int
}

// txLine is an outbound line that sends sequence space: its range, which
// transmission of its first byte it is, and its index among the events.
type txLine struct {
	start, end tcpwire.Seq
	n, index   int
}

// txLineOf gives anchorIn and nthOf an outbound line's range and number.
func txLineOf(t txLine) (seqRange, int) { return seqRange{t.start, t.end}, t.n }

// ackLine is an inbound line that acknowledges, as lostInCapture reads
// it: what it reports received, and its index among the events.
type ackLine struct {
	ack    tcpwire.Seq
	sacked []seqRange
	index  int
	// seen is how many of the script's transmissions (txLines) its peer
	// had got some answer to: the line answers the seen-1'th or earlier.
	seen int
	// ecr is its TS ecr, when it has one (hasEcr).
	ecr    uint32
	hasEcr bool
}

// lostInCapture works out, once, which outbound lines' transmissions the
// captured peer did not get, from what a real receiver's ACKs can show: a
// part of the n-th transmission of some bytes that is sent again later
// was lost if, before it was, an ACK sent after the peer got that
// transmission or a later one reported bytes above it (a SACK block) and
// no ACK reported it. Bytes never sent again arrived (late, maybe); bytes
// sent again with nothing above them reported (a tail, an RTO with every
// ACK lost) may have arrived: neither counts as lost. It also keeps the
// script's transmissions and what each line's peer had got of them, for
// asWritten; and, for verifyPace, each event's time in the capture, the
// line with the highest new data and whether the kernel sends more data
// than its peer.
func (e *engine) lostInCapture() []lostRange {
	if e.lostDone {
		return e.lost
	}
	e.lostDone = true
	var txs []txLine
	var high seqHigh
	var peer peerState
	var acks []ackLine
	e.scriptSeen = map[int]int{}
	e.scriptAnchor = map[int]int{}
	e.scriptAt = make([]int64, len(e.script.Events))
	e.lastNewLine = -1
	var dataHigh seqHigh
	var sent, got int64 // data bytes: the kernel's new ones, the peer's
	seen, prev := 0, int64(0)
	extended := 0 // answers whose have the next acknowledging line set
	compiled := make([]*scriptPacket, len(e.script.Events))
	for i, ev := range e.script.Events {
		// The event's time in the capture: relative times count from the
		// event before, anchored ones from the line they answer (below;
		// one that answers nothing new goes in at once, see anchoredTime).
		anchored := ev.Time.Anchor && ev.Time.Kind == parser.TimeRelative
		switch ev.Time.Kind {
		case parser.TimeAbsolute, parser.TimeAbsoluteRange:
			prev = ev.Time.Usecs
		case parser.TimeRelative, parser.TimeRelativeRange:
			if !anchored {
				prev += ev.Time.Usecs
			}
		}
		e.scriptAt[i] = prev
		p, ok := ev.Action.(*parser.Packet)
		if !ok || p.TCP == nil {
			continue
		}
		sp, err := compilePacket(p, e.cfg.wireIPv6())
		if err != nil {
			continue
		}
		compiled[i] = sp
		if p.Dir == parser.Outbound {
			start := tcpwire.Seq(sp.seq)
			end := start.Add(uint32(sp.payloadLen))
			if sp.payloadLen > 0 {
				if n := dataHigh.advance(seqRange{start, end}); n > 0 {
					sent, e.lastNewLine = sent+n, i
				}
			}
			if sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN) != 0 {
				end = end.Add(1)
			}
			if start == end {
				continue
			}
			n := nthOf(txs, txLineOf, seqRange{start, end}, &high, nil)
			txs = append(txs, txLine{start, end, n, i})
			continue
		}
		got += int64(sp.payloadLen)
		ranges := news(&peer, sp)
		hole := holeFilled(&peer, sp)
		notePeerState(&peer, sp)
		if sp.flags&tcpwire.FlagACK != 0 {
			// An answer to a retransmission may report what the captured
			// peer had by the next line that acknowledges (see
			// retransAnswer.have).
			for ; extended < len(e.answers) && e.answers[extended].index < i; extended++ {
				e.answers[extended].have = append([]seqRange{{0, peer.ack}}, peer.sacked...)
			}
		}
		if len(ranges) > 0 {
			if at, ok := anchorIn(txs, txLineOf, ranges, max(ev.Time.AnchorN, 1), nil); ok {
				overtakes := at+1 < seen // it answers older data than a line before it
				seen = max(seen, at+1)
				if anchored {
					prev = e.scriptAt[txs[at].index] + ev.Time.Usecs
					e.scriptAt[i] = prev
					e.scriptAnchor[i] = at
					if ev.Time.AnchorN > 1 {
						e.noteAnswer(i, sp, ranges, &peer, txs, at)
					} else if overtakes {
						e.noteHoleAnswer(i, sp, &peer, txs, hole)
					}
				}
			}
		}
		e.scriptSeen[i] = seen
		if sp.flags&tcpwire.FlagACK != 0 {
			a := ackLine{ack: tcpwire.Seq(sp.ack), sacked: sackBlocks(sp.options), index: i, seen: seen}
			_, a.ecr, a.hasEcr = findTS(sp.options)
			acks = append(acks, a)
			e.peerDSACKs = e.peerDSACKs || isDSACK(tcpwire.Seq(sp.ack), acks[len(acks)-1].sacked)
		}
	}
	e.scriptTxs, e.scriptAcks = txs, acks
	e.notePreempted(txs, acks, compiled)
	e.noteReleases(compiled)
	e.paceJudged = sent > got
	// lowestAfter[j]: the lowest start of a transmission after txs[j],
	// relative to the first; a transmission wholly below it is never sent
	// again.
	lowestAfter := make([]int64, len(txs))
	low := int64(1) << 40
	for j := len(txs) - 1; j >= 0; j-- {
		lowestAfter[j] = low
		if len(txs) > 0 {
			low = min(low, int64(txs[j].start.Diff(txs[0].start)))
		}
	}
	for j, t := range txs {
		if int64(t.end.Diff(txs[0].start)) <= lowestAfter[j] {
			continue
		}
		// Each part of t with the next transmission of its bytes.
		rest := []seqRange{{t.start, t.end}}
		for k := j + 1; k < len(txs) && len(rest) > 0; k++ {
			u := seqRange{txs[k].start, txs[k].end}
			var keep []seqRange
			for _, r := range rest {
				x := seqRange{later(r.start, u.start), earlier(r.end, u.end)}
				if x.start.Diff(x.end) >= 0 {
					keep = append(keep, r)
					continue
				}
				for _, m := range e.lostBefore(x, t, txs[k].index, j, acks) {
					if _, ok := arrivedFirst(m, compiled[txs[k].index], txs[k].index, acks); !ok {
						e.lost = append(e.lost, lostRange{m.start, m.end, t.n})
					}
				}
				keep = append(keep, subtract(r, u)...)
			}
			rest = keep
		}
	}
	return e.lost
}

// lostBefore returns the bytes of x, part of transmission t (the j-th),
// that the ACK lines after t and before event until show the captured
// peer did not get (see lostInCapture).
func (e *engine) lostBefore(x seqRange, t txLine, until, j int, acks []ackLine) []seqRange {
	var above tcpwire.Seq
	shown := false
	var got []seqRange
	first := sort.Search(len(acks), func(i int) bool { return acks[i].index > t.index })
	for _, a := range acks[first:] {
		if a.index >= until {
			break
		}
		got = append(got, seqRange{x.start - 1<<30, a.ack})
		got = append(got, a.sacked...)
		if a.seen <= j {
			continue // sent before the peer could have got t
		}
		for _, b := range a.sacked {
			if !shown || above.Diff(b.end) < 0 {
				above, shown = b.end, true
			}
		}
	}
	if !shown || above.Diff(x.start) <= 0 {
		return nil
	}
	missing := []seqRange{{x.start, earlier(x.end, above)}}
	for _, g := range got {
		var keep []seqRange
		for _, m := range missing {
			keep = append(keep, subtract(m, g)...)
		}
		missing = keep
	}
	return missing
}

// arrivedFirst reports whether bytes m, sent again by the outbound line
// sp (the index-th event), reached the captured peer through an earlier
// transmission all the same, and the ACK line that shows it: the first
// after sp that acknowledges them echoes a TS val older than sp's. A
// receiver echoes the TS val of the segment that moved its cumulative ACK
// (RFC 7323, 4.3), so an older one shows that the earlier transmission,
// held back by the path, filled the hole before the retransmission came
// (RFC 3522's evidence): it was late, not lost, and the ACK answers it.
func arrivedFirst(m seqRange, sp *scriptPacket, index int, acks []ackLine) (ackLine, bool) {
	if sp == nil {
		return ackLine{}, false
	}
	val, ok := findTSVal(sp.options)
	if !ok {
		return ackLine{}, false
	}
	first := sort.Search(len(acks), func(i int) bool { return acks[i].index > index })
	for _, a := range acks[first:] {
		if m.end.Diff(a.ack) <= 0 {
			return a, a.hasEcr && int32(a.ecr-val) < 0
		}
	}
	return ackLine{}, false
}

// notePreempted finds the retransmission lines that raced the ACK of the
// transmission before them: the bytes they send again had reached the
// captured peer (arrivedFirst), and its ACK of them came within the
// tolerance after the line. The captured kernel's loss detection (RACK's
// timer) fired just before an ACK already on its way; which of the two
// comes first is microsecond timing, which a replay through TUN does not
// reproduce. The line's wait ends when that ACK goes in before the kernel
// sends the bytes again: a kernel that got it first had no cause to
// (doOutboundStream). The ACK is held for the line up to the tolerance
// (injectAhead), so a kernel a little late makes the retransmission as
// the captured one did, and learns from its D-SACK as it did. The mirror
// of raceRetransmission.
func (e *engine) notePreempted(txs []txLine, acks []ackLine, compiled []*scriptPacket) {
	tol := e.cfg.ToleranceUsecs
	for _, t := range txs {
		if t.n < 2 || compiled[t.index] == nil || compiled[t.index].payloadLen == 0 {
			continue
		}
		r := seqRange{t.start, t.end}
		a, ok := arrivedFirst(r, compiled[t.index], t.index, acks)
		if !ok || e.scriptAt[a.index]-e.scriptAt[t.index] > tol {
			continue
		}
		if isDSACK(a.ack, a.sacked) && overlapsAny(a.sacked[:1], r) {
			continue // it reports the retransmission's copy: it answers it
		}
		if e.preempted == nil {
			e.preempted = map[int]bool{}
		}
		e.preempted[t.index] = true
	}
}

// sackBlocks returns the SACK blocks of an option list.
func sackBlocks(opts []byte) []seqRange { return slices.Collect(eachSACK(opts)) }

// delivered returns what the peer has received of what the kernel sent up
// to at: each transmission less the parts the capture lost at that count.
// The slice is shared: callers only read it.
func (e *engine) delivered(at time.Time) []deliveredRange {
	lost := e.lostInCapture()
	// Each transmission's parts are worked out once: a bulk transfer's
	// replay asks for them at every ACK it injects.
	for _, t := range e.sent[len(e.delivEnd):] {
		parts := []seqRange{{t.start, t.end}}
		for _, l := range lost {
			if l.n != t.n {
				continue
			}
			var keep []seqRange
			for _, p := range parts {
				keep = append(keep, subtract(p, seqRange{l.start, l.end})...)
			}
			parts = keep
		}
		for _, p := range parts {
			if n := len(e.deliv); n > 0 && t.at.Before(e.deliv[n-1].at) {
				e.delivUnsorted = true
			}
			e.deliv = append(e.deliv, deliveredRange{p, t.at})
		}
		e.delivEnd = append(e.delivEnd, len(e.deliv))
	}
	k := e.sentBy(at)
	if k == 0 {
		return nil
	}
	return slices.Clip(e.deliv[:e.delivEnd[k-1]])
}

// sentBy returns how many of the kernel's transmissions (in the order
// sent) it had sent by at.
func (e *engine) sentBy(at time.Time) int {
	return sort.Search(len(e.sent), func(i int) bool { return e.sent[i].at.After(at) })
}

// deliveredRange is bytes the peer got, and when they were sent.
type deliveredRange struct {
	r  seqRange
	at time.Time
}

// subtract returns r without the bytes of x.
func subtract(r, x seqRange) []seqRange {
	if x.end.Diff(r.start) <= 0 || r.end.Diff(x.start) <= 0 {
		return []seqRange{r}
	}
	var out []seqRange
	if r.start.Diff(x.start) < 0 {
		out = append(out, seqRange{r.start, x.start})
	}
	if x.end.Diff(r.end) < 0 {
		out = append(out, seqRange{x.end, r.end})
	}
	return out
}

// receiverView returns the cumulative ACK and the SACK blocks (most
// recently received first, at most max, those the kernel was not told
// before first: see newestBlocks) of a peer that got deliveries, counting
// from from (the first sequence number it expects).
func receiverView(from tcpwire.Seq, deliveries []deliveredRange, max int, known *peerState) (tcpwire.Seq, []seqRange) {
	ack := from
	rest := append([]deliveredRange(nil), deliveries...)
	for moved := true; moved; {
		moved = false
		keep := rest[:0]
		for _, d := range rest {
			switch {
			case d.r.end.Diff(ack) <= 0: // all below the ack
			case d.r.start.Diff(ack) <= 0:
				ack, moved = d.r.end, true
			default:
				keep = append(keep, d)
			}
		}
		rest = keep
	}
	// What is left lies above a hole: merge it into blocks, each with the
	// time of its latest delivery.
	sort.Slice(rest, func(i, j int) bool { return rest[i].r.start.Diff(rest[j].r.start) < 0 })
	var blocks []deliveredRange
	for _, d := range rest {
		if n := len(blocks); n > 0 && d.r.start.Diff(blocks[n-1].r.end) <= 0 {
			b := &blocks[n-1]
			if b.r.end.Diff(d.r.end) < 0 {
				b.r.end = d.r.end
			}
			if d.at.After(b.at) {
				b.at = d.at
			}
			continue
		}
		blocks = append(blocks, d)
	}
	return ack, newestBlocks(blocks, max, known)
}

// newestBlocks returns at most max of blocks (in sequence order), those
// delivered last first (RFC 2018: the block of the latest segment first),
// ties the higher first: one transmission's bytes (a GSO packet the kernel
// sent) reach a real peer as segments in sequence order. In sequence order,
// a 64 KiB packet that held two captured losses had its peer report the
// block below the first (older) and leave out the one between them, while
// reporting blocks above: RACK then took the unreported bytes as lost and
// the kernel retransmitted 25 KiB the capture did not (traffic3's get_4m
// over 10 ms with 1% loss, its server: half its runs).
//
// Blocks the kernel was not told yet (known: what the ACKs injected so
// far reported; nil: no such preference) go before those it was: a real
// peer reports each block as its segments come, an ACK or two apart, and
// the kernel keeps what it was told. A replay's ACK that stands for
// several of the captured peer's (the answer to a retransmission the
// kernel sent early) has room for three: the newest three alone told the
// kernel that the data it sent last had arrived and left out blocks of
// what it sent before, which RACK then took for lost, and the kernel sent
// again 200 KiB the capture did not (traffic6's IPv6 4 MiB upload over a
// reordering path, its client, 2085817:2301445). With more untold blocks
// than room the oldest go first; the lines after tell the rest, as the
// captured peer's ACKs did. (deliveredView then walks back to the oldest
// untold block's delivery: rarely more than a few, since every block the
// run reports is told from then on.)
func newestBlocks(blocks []deliveredRange, max int, known *peerState) []seqRange {
	newestFirst := func(bs []deliveredRange) {
		sort.SliceStable(bs, func(i, j int) bool {
			if !bs[i].at.Equal(bs[j].at) {
				return bs[i].at.After(bs[j].at)
			}
			return bs[i].r.start.Diff(bs[j].r.start) > 0
		})
	}
	newestFirst(blocks)
	if known != nil && len(blocks) > max {
		var untold, told []deliveredRange
		for _, b := range blocks {
			if known.has(b.r) {
				told = append(told, b)
			} else {
				untold = append(untold, b)
			}
		}
		if len(untold) > max {
			untold = untold[len(untold)-max:] // the oldest
		}
		blocks = append(untold, told...)
		newestFirst(blocks[:min(max, len(blocks))])
	}
	var out []seqRange
	for i, b := range blocks {
		if i == max {
			break
		}
		out = append(out, b.r)
	}
	return out
}

// has reports whether the peer's ACKs reported all of r, acknowledged or
// SACKed.
func (p *peerState) has(r seqRange) bool {
	return p.ackSet && r.end.Diff(p.ack) <= 0 || covers(p.sacked, r)
}

// deliveredView is receiverView(from, got, max) where got is the parts of the
// first n of deliv that told covers (each with its delivery's time), without
// walking every delivery: a bulk transfer's replay asks at every ACK it
// injects, thousands of times over thousands of transmissions, and walking
// them all made its injections fall behind the ACKs' times (get_4m over
// 10 ms with 1% loss: 129 ms of a 0.45 s run, ACKs 50 ms late by its end).
// The union of got is the union of those deliveries (delivUnion, kept as
// deliv grows) cut to told; its run from 0 is the ack and its pieces above
// are the blocks. A block's time is that of the latest delivery that
// overlaps it, found from the newest back: with deliv in the order sent,
// once max blocks are found, a block not found yet is older than them.
func (e *engine) deliveredView(from tcpwire.Seq, n int, told []seqRange, max int, known *peerState) (tcpwire.Seq, []seqRange) {
	pieces := cutTo(e.unionOf(n), mergeRanges(told))
	ack := from
	var blocks []deliveredRange
	for _, c := range pieces {
		switch {
		case c.start.Diff(ack) <= 0 && c.end.Diff(ack) > 0:
			ack = c.end
		case c.start.Diff(ack) > 0:
			blocks = append(blocks, deliveredRange{r: c})
		}
	}
	found, seen := 0, make([]bool, len(blocks))
	// Untold blocks are chosen first (newestBlocks): each one's time is
	// needed, however old.
	var untoldAt []bool
	untold := 0
	if known != nil && len(blocks) > max {
		untoldAt = make([]bool, len(blocks))
		for j, b := range blocks {
			if untoldAt[j] = !known.has(b.r); untoldAt[j] {
				untold++
			}
		}
	}
	var last time.Time
	for i := n - 1; i >= 0 && (e.delivUnsorted || found < len(blocks)); i-- {
		d := e.deliv[i]
		if !e.delivUnsorted && found >= max && untold == 0 && d.at.Before(last) {
			break // every block left was delivered before the max found
		}
		j := sort.Search(len(blocks), func(j int) bool { return blocks[j].r.end.Diff(d.r.start) > 0 })
		for ; j < len(blocks) && blocks[j].r.start.Diff(d.r.end) < 0; j++ {
			switch {
			case !seen[j]:
				seen[j], blocks[j].at = true, d.at
				found++
				last = d.at
				if untoldAt != nil && untoldAt[j] {
					untold--
				}
			case e.delivUnsorted && d.at.After(blocks[j].at):
				blocks[j].at = d.at
			}
		}
	}
	kept := blocks[:0]
	for j, b := range blocks {
		if seen[j] {
			kept = append(kept, b)
		}
	}
	return ack, newestBlocks(kept, max, known)
}

// unionOf returns the bytes of the first n parts of deliv, merged and in
// order (delivUnion, extended as n grows; worked out again when it shrinks).
func (e *engine) unionOf(n int) []seqRange {
	if n < e.delivUnionN {
		e.delivUnion, e.delivUnionN = nil, 0
	}
	for _, d := range e.deliv[e.delivUnionN:n] {
		e.delivUnion = mergeRange(e.delivUnion, d.r)
	}
	e.delivUnionN = n
	return e.delivUnion
}

// mergeRanges returns rs merged and in order.
func mergeRanges(rs []seqRange) []seqRange {
	var u []seqRange
	for _, r := range rs {
		if r.start.Diff(r.end) < 0 {
			u = mergeRange(u, r)
		}
	}
	return u
}

// cutTo returns the bytes of u that t holds (both merged and in order),
// merged and in order.
func cutTo(u, t []seqRange) []seqRange {
	var out []seqRange
	for i, j := 0, 0; i < len(u) && j < len(t); {
		if x := (seqRange{later(u[i].start, t[j].start), earlier(u[i].end, t[j].end)}); x.start.Diff(x.end) < 0 {
			if n := len(out); n > 0 && out[n-1].end == x.start {
				out[n-1].end = x.end
			} else {
				out = append(out, x)
			}
		}
		if u[i].end.Diff(t[j].end) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

// asReceived returns line sp (the index-th event) with the ACK and SACK
// blocks of a peer that received what the kernel sent up to at (see the
// file comment); sp itself when the line is not a pure ACK of a
// connection that sent data, or when the kernel sent what the captured one
// had when the captured peer sent the line (asWritten).
func (e *engine) asReceived(sp *scriptPacket, at time.Time, index int) *scriptPacket {
	return e.asReceivedHaving(sp, at, index, nil)
}

// asReceivedHaving is asReceived for a peer that may report, besides what
// the line does, the ranges of have (what the captured peer had reported
// by the line, beyond the blocks the line had room for).
func (e *engine) asReceivedHaving(sp *scriptPacket, at time.Time, index int, have []seqRange) *scriptPacket {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 || sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 || sp.payloadLen > 0 {
		return sp
	}
	// The peer has what it reported before, whatever this line answers
	// (an ACK of bytes that came late answers an early transmission).
	if e.lastSentSeen.After(at) {
		at = e.lastSentSeen
	}
	beyond := e.beyondLine(sp)
	if !beyond && have == nil && e.asWritten(at, index) {
		return sp
	}
	if !e.sentData {
		return sp
	}
	maxBlocks := 4
	if _, ok := findTSVal(sp.options); ok {
		maxBlocks = 3
	}
	// The peer reports what it got of what the captured peer reported:
	// less where the kernel has not delivered it (cut otherwise, lost in
	// the capture), never more (the captured peer's pace of arrivals,
	// say a slow link, is the script's to say).
	told := append([]seqRange{{0, tcpwire.Seq(sp.ack)}}, sackBlocks(sp.options)...)
	if beyond {
		// What a partial ACK for a line still to come reported, the peer
		// has (see engine_fifo.go).
		told = append(append(told, seqRange{0, e.partialTold.ack}), e.partialTold.sacked...)
	}
	told = append(told, have...)
	ack, blocks := e.deliveredView(0, len(e.delivered(at)), told, maxBlocks, &e.told)
	if d, ok := e.dsackFor(sp, ack, blocks, at); ok {
		blocks = append([]seqRange{d}, blocks[:min(len(blocks), maxBlocks-1)]...)
	}
	out := *sp
	out.ack = uint32(ack)
	out.options = withSACK(sp.options, blocks)
	if d := tcpwire.Seq(sp.ack).Diff(ack); d > 0 && sp.win >= 0 {
		// The peer's window ends where the line's does: what it has not
		// received is room it still offers. A kernel that waits for room
		// (a slow reader's small window) gets it, as from the line.
		out.win = widenWindow(sp.win, uint32(d), e.peerShift)
	} else if d < 0 && sp.win >= 0 {
		// Acknowledging more than the line (what a partial ACK reported),
		// it offers no room beyond the line's window.
		out.win = narrowWindow(sp.win, uint32(-d), e.peerShift)
	}
	return &out
}

// notBack returns live, a pure ACK to inject, acknowledging at least what
// the ACKs injected before it did, once an ACK for a line still to come
// went in (an answer or a partial ACK, engine_fifo.go): a peer's
// cumulative ACK does not go back. A line injected after such an ACK may
// be cut to what its own peer had, or written lower (an answer went in
// before lines that then reported more together with it). Linux takes an
// older ACK for its SACK blocks alone, and may mark segments lost on them.
// Before any such ACK, lines go in as the script orders them: an ACK below
// the one before is the script's to send (prr-ss-ack-below-snd_una).
func (e *engine) notBack(live *scriptPacket) *scriptPacket {
	if !e.partialTold.ackSet || !e.told.ackSet || live.flags != tcpwire.FlagACK || live.payloadLen > 0 ||
		tcpwire.Seq(live.ack).Diff(e.told.ack) >= 0 {
		return live
	}
	out := *live
	out.ack = uint32(e.told.ack)
	var blocks []seqRange
	for _, b := range sackBlocks(live.options) {
		if b.end.Diff(e.told.ack) > 0 {
			blocks = append(blocks, seqRange{later(b.start, e.told.ack), b.end})
		}
	}
	out.options = withSACK(live.options, blocks)
	if live.win >= 0 {
		out.win = narrowWindow(live.win, uint32(e.told.ack.Diff(tcpwire.Seq(live.ack))), e.peerShift)
	}
	return &out
}

// dsackFor returns the D-SACK block (RFC 2883) of the peer's ACK that
// reports ack and blocks, having got what the kernel sent up to at, and
// whether it has one. The line's own, where the peer reports having those
// bytes: the captured path duplicated a segment, and does so to the
// kernel's. Else, where the captured peer sent D-SACKs, a copy the kernel
// sent of bytes the script sends fewer times (a retransmission the
// captured kernel did not make: a segment that came late on a reordering
// path was not lost), once the ACK acknowledges it: the peer got those
// bytes twice and says so. Without that report the kernel never learns
// that the retransmission was spurious (no undo of the window it cut, no
// wider reordering window for RACK), which a real peer would tell it.
func (e *engine) dsackFor(sp *scriptPacket, ack tcpwire.Seq, blocks []seqRange, at time.Time) (seqRange, bool) {
	if k := e.sentBy(at); k > e.dsackScan {
		for _, t := range e.sent[e.dsackScan:k] {
			if t.n > 1 && !e.scriptSends(seqRange{t.start, t.end}, t.n) {
				e.dsackDue = append(e.dsackDue, seqRange{t.start, t.end})
			}
		}
		e.dsackScan = k
	}
	if lb := sackBlocks(sp.options); isDSACK(tcpwire.Seq(sp.ack), lb) {
		if d := lb[0]; (d.end.Diff(ack) <= 0 || covers(blocks, d)) && !e.onlyStood(d, at) {
			return d, true
		}
	}
	if !e.peerDSACKs {
		return seqRange{}, false // no sign the captured peer reports duplicates
	}
	for i, d := range e.dsackDue {
		if d.end.Diff(ack) <= 0 {
			e.dsackDue = slices.Delete(e.dsackDue, i, i+1)
			return d, true
		}
	}
	return seqRange{}, false
}

// onlyStood reports whether the last copy of r the kernel sent by at is a
// retransmission it did not make (see logSent): the peer got no duplicate
// to report.
func (e *engine) onlyStood(r seqRange, at time.Time) bool {
	stood := false
	e.sentIdx.touching(e.sentBy(at), []seqRange{r}, func(i int) bool {
		if t := e.sent[i]; r.overlaps(seqRange{t.start, t.end}) {
			stood = t.stood // the last one, in the order sent
		}
		return false
	})
	return stood
}

// isDSACK reports whether the first of an ACK's SACK blocks is a D-SACK
// (RFC 2883): below the cumulative ACK, or inside the block after it.
func isDSACK(ack tcpwire.Seq, blocks []seqRange) bool {
	return len(blocks) > 0 && (blocks[0].end.Diff(ack) <= 0 || len(blocks) > 1 && covers(blocks[1:2], blocks[0]))
}

// scriptSends reports whether the script's outbound lines send some of r
// an n-th time.
func (e *engine) scriptSends(r seqRange, n int) bool {
	return e.scriptSendsBefore(r, n, len(e.script.Events))
}

// scriptSendsBefore is scriptSends for the lines before event index
// before.
func (e *engine) scriptSendsBefore(r seqRange, n, before int) bool {
	for _, t := range e.scriptTxs {
		if t.index < before && t.n >= n && r.overlaps(seqRange{t.start, t.end}) {
			return true
		}
	}
	return false
}

// asWritten reports whether the kernel's transmissions up to at are the
// captured kernel's up to those the index-th line's peer had got an answer
// to: the same bytes sent the same number of times, however cut. The line
// as written is then what a real peer would send: what it reports needs
// no model of what the captured peer got.
func (e *engine) asWritten(at time.Time, index int) bool {
	e.lostInCapture()
	seen, ok := e.scriptSeen[index]
	if !ok {
		return false
	}
	return coverUpTo(&e.kernelCover, e.sent, e.sentBy(at), transmissionOf).equal(coverUpTo(&e.scriptCover, e.scriptTxs, seen, txLineOf))
}

// coverage is which bytes a list of transmissions sent how many times: for
// each number n (see nthOf), the merged ranges sent as the n-th
// transmission, kept for the first count of the list's transmissions.
type coverage struct {
	count int
	byN   map[int][]seqRange
}

// coverUpTo brings c to the first count of txs (a list appended to since
// c last read it) and returns it.
func coverUpTo[T any](c *coverage, txs []T, count int, tx func(T) (seqRange, int)) *coverage {
	if count < c.count || c.byN == nil {
		*c = coverage{byN: map[int][]seqRange{}}
	}
	for _, t := range txs[c.count:count] {
		r, n := tx(t)
		c.byN[n] = mergeRange(c.byN[n], r)
	}
	c.count = count
	return c
}

// mergeRange adds r to rs, sorted and merged, and returns them.
func mergeRange(rs []seqRange, r seqRange) []seqRange {
	i := sort.Search(len(rs), func(i int) bool { return r.start.Diff(rs[i].end) <= 0 })
	j := i
	for j < len(rs) && rs[j].start.Diff(r.end) <= 0 {
		r = seqRange{earlier(r.start, rs[j].start), later(r.end, rs[j].end)}
		j++
	}
	return slices.Replace(rs, i, j, r)
}

// equal reports whether two coverages hold the same ranges.
func (c *coverage) equal(d *coverage) bool {
	if len(c.byN) != len(d.byN) {
		return false
	}
	for n, rs := range c.byN {
		if !slices.Equal(rs, d.byN[n]) {
			return false
		}
	}
	return true
}

// withSACK returns opts with its SACK option (if any, and the two NOPs
// that pad it) replaced by one holding blocks, appended with two NOPs when
// there are blocks.
func withSACK(opts []byte, blocks []seqRange) []byte {
	var out []byte
	for i := 0; i < len(opts); {
		kind := opts[i]
		if kind == tcpwire.OptKindNOP || kind == tcpwire.OptKindEOL {
			out = append(out, kind)
			i++
			continue
		}
		if i+1 >= len(opts) || int(opts[i+1]) < 2 || i+int(opts[i+1]) > len(opts) {
			out = append(out, opts[i:]...)
			break
		}
		n := int(opts[i+1])
		if kind == tcpwire.OptKindSACK {
			// Drop it and the NOPs written before it for its alignment.
			for len(out) > 0 && out[len(out)-1] == tcpwire.OptKindNOP {
				out = out[:len(out)-1]
			}
		} else {
			out = append(out, opts[i:i+n]...)
		}
		i += n
	}
	for len(out)%4 != 0 {
		out = append(out, tcpwire.OptKindNOP)
	}
	if len(blocks) > 0 {
		out = append(out, tcpwire.OptKindNOP, tcpwire.OptKindNOP, tcpwire.OptKindSACK, byte(2+8*len(blocks)))
		for _, b := range blocks {
			out = binary.BigEndian.AppendUint32(out, uint32(b.start))
			out = binary.BigEndian.AppendUint32(out, uint32(b.end))
		}
	}
	return out
}

// later and earlier return the later and the earlier of two sequence
// numbers.
func later(a, b tcpwire.Seq) tcpwire.Seq {
	if a.Diff(b) < 0 {
		return b
	}
	return a
}

func earlier(a, b tcpwire.Seq) tcpwire.Seq {
	if a.Diff(b) < 0 {
		return a
	}
	return b
}

// widenWindow returns the window field (scaled by shift) that keeps a
// window of win units ending where it did when the ACK is d bytes lower.
// It rounds up: rounded down, the few bytes short of a unit that the
// kernel held back (Nagle's rule on a write's tail) would find the window
// shut where the line's was open to them (get_1m_cubic's server stalled
// so on a zero-window line).
func widenWindow(win int, d uint32, shift int) int {
	unit := uint32(1)<<shift - 1
	return min(win+int((d+unit)>>shift), 0xffff)
}

// narrowWindow returns window field win (scaled by shift) less d bytes,
// never below 0: the window of an ACK that acknowledges d bytes more than
// its line, whose window ends where the line's does.
func narrowWindow(win int, d uint32, shift int) int {
	return max(win-int(d>>shift), 0)
}

// pendingAck is an ACK line the run went past before the kernel met it
// (see deferAck).
type pendingAck struct {
	es     *eventState
	sp     *scriptPacket
	s      *socket
	want   tcpwire.Seq
	blocks []seqRange
	end    int64 // script time by which the kernel must have met it
	hold   int64 // script time from which an inbound line may answer it
	// missed is the failure, once a packet the kernel sent after end
	// found the line unmet.
	missed *eventError
}

// deferAck lets the run go on past an ACK line that the kernel has not
// met yet, and reports whether it did. Whether a receiver acknowledges a
// segment at once or on its delayed-ACK timer follows the memory it
// charged for it (a TUN injection costs more than a veth's or a NIC's),
// and a kernel that delays one ACK acknowledges two segments at once when
// the next comes. Waiting for the ACK before injecting what follows would
// hold back segments the captured peer had sent before it could have seen
// that ACK (they were on the path): each delayed ACK would push the rest
// of the script 40 ms later, and a bulk download would drift by seconds,
// its receiver's round-trip estimate and buffer tuning with it. So the
// line is judged on the kernel's packets as they are read, by its time
// (deadline end), while the script goes on; only an inbound line the peer
// may have sent in answer to it (a round trip of the captured path after
// it) waits for it (settleAcks).
func (e *engine) deferAck(es *eventState, sp *scriptPacket, s *socket, want tcpwire.Seq, blocks []seqRange, end int64) bool {
	if e.outq == nil || e.ackMet(want, blocks) {
		return false
	}
	e.pending = append(e.pending, &pendingAck{es: es, sp: sp, s: s, want: want, blocks: blocks, end: end,
		hold: es.startUsecs + 2*e.pathSlackUsecs()})
	return true
}

// notePending judges the deferred ACK lines on a packet of the kernel's
// sent at at: before noteAck counts it (before is true), a line whose
// deadline it came after is missed; after, a line it met is done.
func (e *engine) notePending(at time.Time, before bool) {
	keep := e.pending[:0]
	for _, p := range e.pending {
		switch {
		case p.missed != nil:
		case before && e.liveUsecs(at) > p.end-e.scriptStart && !e.ackMet(p.want, p.blocks):
			p.missed = e.ackMissed(p.es, p.sp, p.want, p.blocks, p.end, nil)
		case !before && e.ackMet(p.want, p.blocks):
			continue
		}
		keep = append(keep, p)
	}
	e.pending = keep
}

// settleAcks waits for the deferred ACK lines that must be met before
// next runs: those whose deadline has passed, and, when next is an inbound
// line that is not anchored (anchored ones answer the kernel's data, not
// its ACKs), those it may answer. With next nil (the script's end) it
// waits for all; with only, for those past their deadline. It returns a
// line's failure with the line. An inbound line that waited for an ACK
// line moves by as much as the kernel's ACK came after that line's time,
// as it would have had the run waited at the ACK line: the peer answered
// it that much later.
func (e *engine) settleAcks(next *eventState, only bool) (*eventState, error) {
	e.drainAcks()
	var late int64
	for i := 0; i < len(e.pending); {
		p := e.pending[i]
		if p.missed != nil {
			e.pending = nil
			return p.es, p.missed
		}
		answer := next != nil && next.isInbound() && !next.ev.Time.Anchor && next.startUsecs >= p.hold
		if !answer && e.nowUsecs() <= p.end-e.scriptStart && (next != nil || only) {
			i++
			continue
		}
		e.pending = append(e.pending[:i:i], e.pending[i+1:]...)
		if err := e.awaitAck(p.es, p.sp, p.s, p.want, p.blocks, p.end); err != nil {
			e.pending = nil
			return p.es, err
		}
		if answer {
			late = max(late, e.liveUsecs(e.acked.at)-(p.es.startUsecs-e.scriptStart))
		}
	}
	if late > 0 {
		next.startUsecs += late
		next.earliestUsecs += late
	}
	return nil, nil
}

// drainAcks reads what the kernel has sent so far while ACK lines are
// deferred: the lines it meets are done, and the list stays short.
func (e *engine) drainAcks() {
	if len(e.pending) == 0 {
		return
	}
	p := e.pending[0]
	ctx, cancel := context.WithDeadline(e.ctx, e.env.Clock.Now())
	defer cancel()
	for len(e.pending) > 0 {
		sn, err := e.sniffCtx(ctx, p.es, p.s)
		if err != nil {
			return // nothing more sent yet
		}
		e.learn(p.s, sn, false)
		if !e.noteAck(p.s, sn) {
			e.leftover = append(e.leftover, sn)
		}
	}
}
