package synth

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Guesses for a handshake the capture does not have: Linux's defaults on a
// 1500-byte MTU path.
const (
	guessMSS4   = 1460
	guessMSS6   = 1440
	guessWScale = 7
	guessSYNWin = 65535
)

// fabricateHandshake opens a flow captured mid-stream with a made-up
// handshake whose ISNs put the first captured bytes of each side at 1, so
// that a replay has a connection to run the captured packets on. The
// server is the side with the lower port. What the capture cannot tell (the
// window scales, the MSS, data in flight and the congestion state before the
// capture started) is guessed, which is why such a script cannot replay the
// capture faithfully; the header says so.
func (b *builder) fabricateHandshake() {
	f := b.f
	at := f.Packets.At(0).Time()
	b.server, b.refused = b.local == serverSide(f), false
	b.localISN, b.remoteISN = guessISN(f, b.local), guessISN(f, b.remote)
	tsLocal, okL := firstTS(f, b.local)
	tsRemote, okR := firstTS(f, b.remote)
	b.useTS = okL && okR
	mss := guessMSS4
	if family(f) == "IPv6" {
		mss = guessMSS6
	}
	b.mss = [2]int{mss, mss}
	guessed := "MSS, window scale and SYN options guessed as Linux defaults"
	if !b.opts.Strict && !b.opts.Exact {
		guessed += ", the kernel's own MSS and window scale left to it as wildcards"
	}
	b.notes = append(b.notes, "PARTIAL: the capture starts mid-stream, so the handshake at the top is made up "+
		"("+guessed+"). A mid-stream flow cannot be replayed "+
		"faithfully: the window scales, the data in flight and the congestion state before the capture are unknown.")

	synOpts := func(val, ecr uint32) *parser.TCPOptions {
		l := []*parser.TCPOption{{Kind: parser.OptMSS, Value: int64(mss)}, {Kind: parser.OptSACKOK}}
		if b.useTS {
			l = append(l, &parser.TCPOption{Kind: parser.OptTimestamp, TSVal: val, TSEcr: ecr})
		} else {
			l = append(l, &parser.TCPOption{Kind: parser.OptNOP}, &parser.TCPOption{Kind: parser.OptNOP})
		}
		l = append(l, &parser.TCPOption{Kind: parser.OptNOP}, &parser.TCPOption{Kind: parser.OptWScale, Value: guessWScale})
		return &parser.TCPOptions{List: l}
	}
	ackOpts := func(val, ecr uint32) *parser.TCPOptions {
		if !b.useTS {
			return nil
		}
		return &parser.TCPOptions{List: []*parser.TCPOption{{Kind: parser.OptNOP}, {Kind: parser.OptNOP},
			{Kind: parser.OptTimestamp, TSVal: val, TSEcr: ecr}}}
	}
	outOpts := func(o *parser.TCPOptions) *parser.TCPOptions {
		if b.useTS || b.opts.Strict {
			return o
		}
		return &parser.TCPOptions{Any: true}
	}
	// The kernel's own SYN or SYN-ACK: its MSS and window scale are
	// guesses here, and follow the replay's MTU and the host's buffer
	// limits there; both are written `*` (the options themselves are
	// still required). --strict and --exact keep the guesses.
	outSYNOpts := func(o *parser.TCPOptions) *parser.TCPOptions {
		o = outOpts(o)
		if o.Any || b.opts.Strict || b.opts.Exact {
			return o
		}
		for _, x := range o.List {
			if x.Kind == parser.OptMSS || x.Kind == parser.OptWScale {
				x.Value, x.Wild = 0, x.Wild|parser.WildValue
			}
		}
		return o
	}
	one := uint32(1)
	win := func(w uint32) *uint32 { return &w }
	pkt := func(dir parser.Direction, flags string, seq uint32, ack *uint32, w *uint32, o *parser.TCPOptions) *pktNode {
		return &pktNode{Dir: dir, TCP: tcpLine{Flags: flags, Seq: seq, Ack: ack, Win: w, Options: o}}
	}
	b.setupEnvironment()
	b.comment("Made up (the capture starts mid-stream): a handshake so that the replay has a connection.")
	b.prelude()
	if b.server {
		b.emit(at, pkt(parser.Inbound, "S", 0, nil, win(guessSYNWin), synOpts(tsRemote, 0)))
		b.emit(at, pkt(parser.Outbound, "S.", 0, &one, nil, outSYNOpts(synOpts(tsLocal, tsRemote)))).react = true
		b.emit(at, pkt(parser.Inbound, ".", 1, &one, win(guessSYNWin>>guessWScale), ackOpts(tsRemote, tsLocal)))
		b.accept(at)
	} else {
		b.emit(at, pkt(parser.Outbound, "S", 0, nil, nil, outSYNOpts(synOpts(tsLocal, 0))))
		b.emit(at, pkt(parser.Inbound, "S.", 0, &one, win(guessSYNWin), synOpts(tsRemote, tsLocal)))
		b.emit(at, pkt(parser.Outbound, ".", 1, &one, nil, outOpts(ackOpts(tsLocal, tsRemote)))).react = true
		b.switchToBlocking(at)
	}
	if b.useTS {
		b.tsVals[tsLocal] = true
	}
	b.comment("From here on, the captured packets.")
	b.established = true
	b.rcv.start(b.remoteISN.Add(1))
	b.sndMax, b.outSeen = b.localISN.Add(1), true
	b.lastOutAck = b.remoteISN.Add(1)
}

// guessISN returns one less than the earliest sequence number of side s
// that the capture shows (its first segment, or the peer's first ack).
func guessISN(f *capture.Flow, s capture.Side) tcpwire.Seq {
	var first tcpwire.Seq
	var seen bool
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		var v tcpwire.Seq
		switch {
		case p.From == s:
			v = p.Seq
		case p.Flags.Has(tcpwire.FlagACK):
			v = p.Ack
		default:
			continue
		}
		if !seen || v.LessThan(first) {
			first, seen = v, true
		}
		if i > 16 {
			break
		}
	}
	return first - 1
}

// firstTS returns the first TS val that side s sent.
func firstTS(f *capture.Flow, s capture.Side) (uint32, bool) {
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From != s {
			continue
		}
		if o := p.Options(); o.HasTS {
			return o.TSVal, true
		}
	}
	return 0, false
}

// withSYN returns a copy of f, whose capture has the SYN-ACK but not the
// SYN, with a SYN made up from the SYN-ACK put first, and the header note
// that says what was made up. The SYN-ACK acknowledges the client's ISN and
// echoes its TS val, and a server answers with SACK permitted, timestamps
// and a window scale only what the SYN offered; the MSS, the window scale
// value and the window are guessed.
func withSYN(f *capture.Flow) (*capture.Flow, string) {
	at := -1
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From == capture.SideB && p.Flags.Has(tcpwire.FlagSYN) && p.Flags.Has(tcpwire.FlagACK) {
			at = i
			break
		}
	}
	if at < 0 {
		return f, ""
	}
	sa := f.Packets.At(at)
	o := sa.Options()
	mss := guessMSS4
	if sa.IPVersion() == 6 {
		mss = guessMSS6
	}
	// In the order and alignment Linux writes a SYN's options.
	raw := []byte{tcpwire.OptKindMSS, 4, byte(mss >> 8), byte(mss)}
	guessed := []string{fmt.Sprintf("MSS %d", mss), fmt.Sprintf("window %d", guessSYNWin)}
	switch {
	case o.HasTS:
		if o.SACKOK {
			raw = append(raw, tcpwire.OptKindSACKOK, 2)
		} else {
			raw = append(raw, tcpwire.OptKindNOP, tcpwire.OptKindNOP)
		}
		raw = append(raw, tcpwire.OptKindTimestamp, 10)
		raw = binary.BigEndian.AppendUint32(raw, o.TSEcr)
		raw = binary.BigEndian.AppendUint32(raw, 0)
	case o.SACKOK:
		raw = append(raw, tcpwire.OptKindNOP, tcpwire.OptKindNOP, tcpwire.OptKindSACKOK, 2)
	}
	if o.HasWScale {
		raw = append(raw, tcpwire.OptKindNOP, tcpwire.OptKindWScale, 3, guessWScale)
		guessed = append(guessed, fmt.Sprintf("window scale %d", guessWScale))
	}
	syn := capture.FlowPacket{
		From: capture.SideA, TTL: 64, Seq: sa.Ack - 1, Flags: tcpwire.FlagSYN, Window: guessSYNWin,
		ChecksumState: tcpwire.ChecksumGood,
	}
	syn.SetTime(sa.Time())
	syn.SetIP(capture.IPFields{Version: sa.IPVersion(), DF: sa.DF()})
	if err := syn.SetOptions(raw); err != nil {
		return f, ""
	}
	g := *f
	g.Packets = capture.Packets{}
	g.Packets.Append(syn)
	for i := range f.Packets.Len() {
		g.Packets.Append(*f.Packets.At(i))
	}
	g.SYN = true
	g.ISN[capture.SideA], g.HasISN[capture.SideA] = syn.Seq, true
	return &g, fmt.Sprintf("PARTIAL: the capture has no SYN; the SYN of the handshake is made up from the captured SYN-ACK "+
		"(ISN, and SACK, timestamps and window scale as the SYN-ACK answered them; %s guessed).", strings.Join(guessed, ", "))
}

// synFirst returns f with its SYN put just before the SYN-ACK that answers
// it, where the capture has them the other way round, and the header note
// that says so (empty when it had them in order). A capture's timestamps
// come from the CPU or queue that saw each packet, and a capture merged
// from two interfaces interleaves by them: zeek's handshake-reorder.pcap
// has the SYN-ACK 260 µs before the SYN it acknowledges. A replay cannot
// inject a SYN-ACK before the connect that sends the SYN, so the SYN takes
// the SYN-ACK's time and goes first.
func synFirst(f *capture.Flow) (*capture.Flow, string) {
	syn, synack := -1, -1
	for i := range min(f.Packets.Len(), 64) {
		p := f.Packets.At(i)
		switch {
		case !p.Flags.Has(tcpwire.FlagSYN):
		case p.Flags.Has(tcpwire.FlagACK):
			if synack < 0 && p.From == capture.SideB {
				synack = i
			}
		case syn < 0 && p.From == capture.SideA:
			syn = i
		}
	}
	if syn < 0 || synack < 0 || syn < synack {
		return f, ""
	}
	sp, ap := f.Packets.At(syn), f.Packets.At(synack)
	if ap.Ack != sp.Seq.Add(1) {
		return f, "" // answers another SYN: not this one, reordered
	}
	ahead := sp.Time().Sub(ap.Time())
	g := *f
	g.Packets = capture.Packets{}
	for i := range f.Packets.Len() {
		switch i {
		case synack:
			moved := *sp
			moved.SetTime(ap.Time())
			g.Packets.Append(moved)
			g.Packets.Append(*ap)
		case syn:
		default:
			g.Packets.Append(*f.Packets.At(i))
		}
	}
	return &g, fmt.Sprintf("The SYN-ACK was captured %s before the SYN it acknowledges (timestamps of two CPUs or "+
		"interfaces): the SYN is put first, at the SYN-ACK's time.", ahead)
}
