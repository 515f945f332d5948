package replay

// The injected peer as a receiver (--pcap2pkt scripts): an inbound pure ACK
// acknowledges and SACKs what the peer has received of what the kernel
// actually sent, not the numbers the captured peer wrote. When the kernel
// sends as the captured one did, the two are the same; when it cuts its
// data otherwise, sends a retransmission before the new data the captured
// one sent first, or is a segment behind, a real peer would have
// acknowledged what it got, and so does this one. What the capture lost
// stays lost: a transmission of bytes that the captured peer did not get
// (later data arrived, it did not) is not delivered when the kernel sends
// those bytes that many times again.
//
// Delivered means: sent no later than the transmission the ACK answers
// (its anchor), the path keeping its order.

import (
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

// lostInCapture works out, once, which outbound lines' transmissions the
// captured peer did not get: for the n-th transmission of a range, the
// first ACK line answering something the kernel sent after it (and before
// the range's next transmission) tells: it either covers the range, or
// the range was lost.
func (e *engine) lostInCapture() []lostRange {
	if e.lostDone {
		return e.lost
	}
	e.lostDone = true
	var txs []txLine
	var high seqHigh
	var peer peerState
	type ackLine struct {
		anchor int // index into txs of the transmission it answers
		ack    tcpwire.Seq
		sacked []seqRange
		index  int
	}
	var acks []ackLine
	for i, ev := range e.script.Events {
		p, ok := ev.Action.(*parser.Packet)
		if !ok || p.TCP == nil {
			continue
		}
		sp, err := compilePacket(p, e.cfg.wireIPv6())
		if err != nil {
			continue
		}
		if p.Dir == parser.Outbound {
			start := tcpwire.Seq(sp.seq)
			end := start.Add(uint32(sp.payloadLen))
			if sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN) != 0 {
				end = end.Add(1)
			}
			if start == end {
				continue
			}
			n := nthOf(txs, txLineOf, seqRange{start, end}, &high)
			txs = append(txs, txLine{start, end, n, i})
			continue
		}
		ranges := news(&peer, sp)
		notePeerState(&peer, sp)
		if len(ranges) == 0 {
			continue
		}
		at, ok := anchorIn(txs, txLineOf, ranges, max(ev.Time.AnchorN, 1))
		if !ok {
			continue
		}
		a := ackLine{anchor: at, ack: tcpwire.Seq(sp.ack), index: i}
		a.sacked = sackBlocks(sp.options)
		acks = append(acks, a)
	}
	for j, t := range txs {
		next := len(txs)
		for k := j + 1; k < len(txs); k++ {
			if txs[k].start.Diff(t.end) < 0 && t.start.Diff(txs[k].end) < 0 {
				next = k
				break
			}
		}
		for _, a := range acks {
			if a.anchor < j || a.anchor >= next {
				continue
			}
			// What of it lies below the highest byte this ACK reports, and
			// is neither acknowledged nor SACKed, the peer did not get.
			high := a.ack
			for _, b := range a.sacked {
				if high.Diff(b.end) < 0 {
					high = b.end
				}
			}
			part := seqRange{t.start, t.end}
			if high.Diff(part.end) < 0 {
				part.end = high
			}
			if part.start.Diff(part.end) >= 0 {
				continue // nothing of it below: a later ACK tells
			}
			missing := subtract(part, seqRange{part.start - 1<<30, a.ack})
			for _, b := range a.sacked {
				var keep []seqRange
				for _, m := range missing {
					keep = append(keep, subtract(m, b)...)
				}
				missing = keep
			}
			// What a later ACK reports before the bytes were sent again
			// came late (reordered), not lost.
			until := len(e.script.Events)
			if next < len(txs) {
				until = txs[next].index
			}
			for _, later := range acks {
				if later.index <= a.index || later.index >= until || len(missing) == 0 {
					continue
				}
				var keep []seqRange
				for _, m := range missing {
					for _, r := range subtract(m, seqRange{m.start - 1<<30, later.ack}) {
						rest := []seqRange{r}
						for _, b := range later.sacked {
							var k []seqRange
							for _, x := range rest {
								k = append(k, subtract(x, b)...)
							}
							rest = k
						}
						keep = append(keep, rest...)
					}
				}
				missing = keep
			}
			for _, m := range missing {
				e.lost = append(e.lost, lostRange{m.start, m.end, t.n})
			}
			break
		}
	}
	return e.lost
}

// sackBlocks returns the SACK blocks of an option list.
func sackBlocks(opts []byte) []seqRange { return slices.Collect(eachSACK(opts)) }

// delivered returns what the peer has received of what the kernel sent up
// to at: each transmission less the parts the capture lost at that count.
func (e *engine) delivered(at time.Time) []deliveredRange {
	lost := e.lostInCapture()
	var out []deliveredRange
	for _, t := range e.sent {
		if t.at.After(at) {
			break
		}
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
			out = append(out, deliveredRange{p, t.at})
		}
	}
	return out
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
// recently received first, at most max) of a peer that got deliveries,
// counting from from (the first sequence number it expects).
func receiverView(from tcpwire.Seq, deliveries []deliveredRange, max int) (tcpwire.Seq, []seqRange) {
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
	type block struct {
		r  seqRange
		at time.Time
	}
	var blocks []block
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
		blocks = append(blocks, block{d.r, d.at})
	}
	sort.SliceStable(blocks, func(i, j int) bool { return blocks[i].at.After(blocks[j].at) })
	var out []seqRange
	for i, b := range blocks {
		if i == max {
			break
		}
		out = append(out, b.r)
	}
	return ack, out
}

// asReceived returns line sp with the ACK and SACK blocks of a peer that
// received what the kernel sent up to at (see the file comment); sp itself
// when the line is not a pure ACK of a connection that sent data.
func (e *engine) asReceived(sp *scriptPacket, at time.Time) *scriptPacket {
	if sp.proto != tcpwire.ProtoTCP || sp.flags&tcpwire.FlagACK == 0 || sp.flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 || sp.payloadLen > 0 {
		return sp
	}
	hasData := false
	for _, t := range e.sent {
		hasData = hasData || t.end.Diff(t.start) > 1
	}
	if !hasData {
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
	var got []deliveredRange
	for _, d := range e.delivered(at) {
		for _, c := range told {
			if x := (seqRange{later(d.r.start, c.start), earlier(d.r.end, c.end)}); x.start.Diff(x.end) < 0 {
				got = append(got, deliveredRange{x, d.at})
			}
		}
	}
	ack, blocks := receiverView(0, got, maxBlocks)
	out := *sp
	out.ack = uint32(ack)
	out.options = withSACK(sp.options, blocks)
	return &out
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
