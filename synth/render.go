package synth

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// localLine says which side is the kernel under test and why; a guess is
// said to be one, with the flag that settles it.
func localLine(f *capture.Flow, role string) string {
	if f.LocalGuessed {
		return fmt.Sprintf("Local side (the kernel under test): %s, the %s, GUESSED (%s): nothing in the capture shows which end "+
			"it was taken on; if it was the other, synthesise again with --local %s.",
			f.LocalEndpoint(), role, strings.TrimPrefix(f.LocalReason, "guessed: "), f.RemoteEndpoint().Addr())
	}
	return fmt.Sprintf("Local side (the kernel under test): %s, the %s; chosen because: %s.", f.LocalEndpoint(), role, f.LocalReason)
}

// Header returns the header comment lines (without "// ") describing flow
// f, of the given number of packets, of the capture source: the endpoints,
// which side the script runs as and why, what the outbound lines check
// (strict or not), and the capture artefacts the synthesis dealt with.
func Header(f *capture.Flow, packets int, source string, opts Options, artefacts []string) []string {
	if source == "" {
		source = "the capture"
	}
	srv := serverSide(f)
	role := "client"
	if f.Local == srv {
		role = "server"
	}
	guess := ""
	if !f.SYN && !f.SYNACK {
		guess = " (no SYN in the capture: the server is taken to be the side with the lower port)"
	}
	lines := []string{
		fmt.Sprintf("Synthesised by pcap2pkt from %s, flow %d.", source, f.Index),
		fmt.Sprintf("Connection: %s (client) -> %s (server)%s, %s, %d packets over %s.",
			f.Endpoint(srv.Other()), f.Endpoint(srv), guess, family(f), packets, fmtDur(f.Duration())),
		localLine(f, role),
		"Packet lines carry no addresses: a replay uses its own; option lines keep the captured ports.",
		"Sequence numbers are relative to each side's ISN; times to the previous event.",
	}
	if opts.Strict {
		lines = append(lines, "Strict: outbound windows, options, flags and segments are expected exactly as captured.")
	} else {
		lines = append(lines, "Outbound windows are not checked (they follow buffer autotuning) and outbound options only where "+
			"they carry timestamps (the replay maps TS ecr through them); each write's data is one expectation.")
	}
	if !opts.Exact {
		lines = append(lines, "pcap2pkt's rules (--pcap2pkt=1, see its README): an outbound data line is a range of the byte stream, "+
			"in any segments, with PSH anywhere and its FIN on the last segment or after it; a packet the kernel sends "+
			"that no line expects fails; `*` stands for a value that follows the host or a secret.")
	}
	var out []string
	for _, l := range lines {
		for i, w := range wrap(l, 110) {
			if i > 0 {
				w = "  " + w
			}
			out = append(out, w)
		}
	}
	lines = out
	if len(artefacts) == 0 {
		return append(lines, "Capture artefacts: none.")
	}
	lines = append(lines, "Capture artefacts:")
	for _, a := range artefacts {
		for i, l := range wrap(a, 96) {
			if i == 0 {
				lines = append(lines, "  - "+l)
			} else {
				lines = append(lines, "    "+l)
			}
		}
	}
	return lines
}

// serverSide is the side that received the SYN or, for a capture without
// it, the side with the lower port.
func serverSide(f *capture.Flow) capture.Side {
	if f.SYN || f.SYNACK || f.B.Port() < f.A.Port() {
		return capture.SideB
	}
	if f.A.Port() < f.B.Port() {
		return capture.SideA
	}
	return capture.SideB
}

// wrap splits text into lines of at most width bytes at spaces.
func wrap(text string, width int) []string {
	var lines []string
	for len(text) > width {
		cut := strings.LastIndexByte(text[:width], ' ')
		if cut <= 0 {
			break
		}
		lines = append(lines, text[:cut])
		text = text[cut+1:]
	}
	return append(lines, text)
}

func family(f *capture.Flow) string {
	if f.A.Addr().Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// artefacts lists what the synthesis noticed about the capture.
func (b *builder) artefacts() []string {
	c := b.count
	var out []string
	add := func(n int, format string, args ...any) {
		if n > 0 {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	add(c.bigOut, "%d outbound TSO/GSO super-segment(s) larger than the MSS.", c.bigOut)
	add(c.gathered, "%d outbound segment(s) gathered into the expectation of the write they belong to: a replayed kernel cuts a write into segments as its own TSO/GSO sizing says, and the replay gathers them.", c.gathered)
	add(c.bigIn, "%d inbound segment(s) larger than the MSS (GRO or TSO on the capture path): injected as captured.", c.bigIn)
	add(c.merged, "%d inbound segment(s) in %d run(s) that the kernel took as one, each acknowledged at once by one ACK (coalesced in the socket's backlog while the application read, or GRO): each run injected as GSO packets (--mss) at its last segment's time, the application reading before the ACK.", c.merged, c.mergedRuns)
	add(c.retransOut, "%d outbound retransmission(s): kept as expectations of the kernel's own retransmissions.", c.retransOut)
	add(c.retransIn, "%d inbound retransmission(s) of data already received: injected as captured.", c.retransIn)
	add(c.ooo, "%d inbound segment(s) out of order: injected in the captured order.", c.ooo)
	add(c.partialCsum, "%d packet(s) with unfilled TCP checksums (TX checksum offload on the capturing host): irrelevant to the script.", c.partialCsum)
	add(c.truncated, "%d packet(s) cut by the snaplen: payload lengths taken from the IP headers.", c.truncated)
	add(c.longWaits, "%d wait(s) of over an hour between events, the longest %s: a replay waits them out, unless its --timeout (120 s by default) ends it first.",
		c.longWaits, fmtDur(time.Duration(c.longestWait)*time.Microsecond))
	add(c.backwards, "%d packet(s) time-stamped before the packet captured ahead of them: written at +0.", c.backwards)
	add(c.dup, "%d packet(s) captured twice (leaving and arriving, as -i any shows loopback): the copies are left out.", c.dup)
	add(c.logged, "%d packet(s) captured again at the same instant, IP ID and all (an NFLOG capture logs a packet once for each rule that matches it): the copies are left out.", c.logged)
	add(c.wraps, "%d packet(s) left out: their sequence range wraps past 2^32 relative to the ISN (over 4 GiB sent, or garbage).", c.wraps)
	add(c.tooLarge, "%d packet(s) left out: more data than a script's packet holds (64 KiB with the headers of IPv4).", c.tooLarge)
	add(c.icmpOther, "%d ICMP error(s) to the remote left out: only those to the local side are injected.", c.icmpOther)
	add(c.bigCalls, "%d read(s) or write(s) split at %d MiB: the capture claims more data in one than a kernel sends or queues without an ACK or a read (a replay's buffers hold at most 64 MiB).", c.bigCalls, maxCall>>20)
	add(c.unknownOpt, "%d packet(s) with TCP options the script language cannot express: left out (see the comments).", c.unknownOpt)
	if b.teardown >= 0 {
		out = append(out, "a final RST from the remote after both FINs: left out (see the end).")
	}
	return append(out, b.notes...)
}

// longWait is the wait between two events (µs) past which the header
// warns: a capture's clock can jump by years, and a replay waits as long.
const longWait = int64(time.Hour / time.Microsecond)

// script assembles the tree in one piece (see render).
func (b *builder) script() *parser.Script {
	var s *parser.Script
	b.render(0, func(piece *parser.Script) error {
		s = piece
		return nil
	})
	if len(b.events) > maxKept {
		// The script holds none of them: a long connection's events go to
		// the garbage collector before the script is printed, rather than
		// once it is (reset would drop them then).
		b.nodes.events, b.nodes.evSlab = nil, slab[event]{}
	}
	return s
}

// delta returns the time of event e relative to prev, the event before
// it, in µs, and the end of its range (0: none); backwards says it was
// captured before that event.
func (b *builder) delta(e, prev *event) (d, end int64, backwards bool) {
	d = e.since(prev).Microseconds()
	if d < 0 {
		backwards, d = true, 0
	}
	if e.react && d < b.opts.ToleranceUsecs {
		d = 0
	}
	switch {
	case e.ack && d == 0 && e.afterFIN:
		end = finAckSlack
	case e.ack && d >= b.opts.ToleranceUsecs:
		end = d + ackSlack
	case e.timer && d >= b.opts.ToleranceUsecs:
		d, end = d-timerSlack, d+timerSlack
	}
	return d, end, backwards
}

// countWait counts, for the header, event e written at +0 because it was
// captured before prev, or after a long wait.
func (b *builder) countWait(e, prev *event) {
	d, _, backwards := b.delta(e, prev)
	if backwards {
		b.count.backwards++
	}
	if d > longWait {
		b.count.longWaits++
		b.count.longestWait = max(b.count.longestWait, int(d))
	}
}

// render assembles the tree: header comments, option lines, then the
// events with relative times. Every event and comment gets a line number
// in print order, which is how the printer interleaves comments with
// events. With chunk 0 it hands out the whole tree; otherwise the head
// (header, options, initial command) and then the events chunk at a time,
// each piece a Script of its own, whose texts printed one after the other
// are the whole tree's (no line of a built tree is blank, and no element
// spans lines). A piece is dead once out returns: its memory is reused.
func (b *builder) render(chunk int, out func(*parser.Script) error) error {
	mem := b.nodes
	mem.events = b.events // the list goes back for the next flow
	var largest int64
	for i, e := range b.events {
		if i > 0 {
			b.countWait(e, b.events[i-1])
		}
		largest = max(largest, writeLen(e))
	}
	shareGatheredNotes(b.events, b.nodes)
	piece := chunk
	if piece == 0 {
		piece = len(b.events)
	}
	// comments counts the comments of events [from, to).
	comments := func(from, to int) int {
		n := 0
		for _, e := range b.events[from:to] {
			n += len(e.comments())
			if len(b.frames[e]) > 0 {
				n++
			}
		}
		return n
	}
	p := &pieces{b: b, out: out}
	n := 0
	if chunk == 0 {
		n = comments(0, len(b.events)) + len(b.comments)
	}
	p.head(n, largest)
	for from := 0; from < len(b.events) || from == 0; from += piece {
		to := min(from+piece, len(b.events))
		if chunk > 0 {
			if err := p.finish(); err != nil {
				return err
			}
			mem.commentSlab.reset()
			n := comments(from, to)
			if to == len(b.events) {
				n += len(b.comments)
			}
			p.start(n)
		}
		var prev *event
		if from > 0 {
			prev = b.events[from-1]
		}
		p.events(b.events[from:to], prev)
		if to == len(b.events) {
			break
		}
	}
	p.addComments(b.comments)
	return p.finish()
}

// writeLen is the bytes event e writes, if it is a write call.
func writeLen(e *event) int64 {
	if c, ok := e.action.(*parser.Syscall); ok && c.Name == "write" {
		if r, ok := c.Result.(*parser.IntLit); ok {
			return r.Value
		}
	}
	return 0
}

// pieces assembles a script's tree a piece at a time (see render): it
// numbers the lines, and takes the comments and the nodes of the events
// from the builder's memory.
type pieces struct {
	b    *builder
	s    *parser.Script
	line int
	size int // the bytes of the piece's comments, with their "// "
	out  func(*parser.Script) error
	// mark, if set, is an event whose last comment is not known yet: it
	// is written as markText, for the streamer to replace.
	mark *event
}

// markText stands for the comment of pieces.mark: the escapes of
// commentSafe keep a NUL out of every other line of a script.
const markText = "// \x00"

// start begins a piece with room for n comments.
func (p *pieces) start(n int) {
	mem := p.b.nodes
	mem.commentSlab.want = n
	p.s = &parser.Script{File: p.b.opts.Source, Comments: reuse(&mem.comments, n)[:0]}
}

// next is the position of the next line.
func (p *pieces) next() parser.Pos {
	p.line++
	return parser.Pos{Line: p.line, Col: 1}
}

// addComments adds comment lines; they get their "// " in finish.
func (p *pieces) addComments(texts []string) {
	for _, t := range texts {
		p.addComment(p.next(), commentSafe(t))
	}
}

func (p *pieces) addComment(pos parser.Pos, t string) {
	c := p.b.nodes.commentSlab.new()
	*c = parser.Comment{Pos: pos, Text: t}
	p.s.Comments = append(p.s.Comments, c)
	p.size += len("// ") + len(t)
}

// finish gives the piece's comments their "// ", all in one string, and
// hands it out.
func (p *pieces) finish() error {
	var all strings.Builder
	all.Grow(p.size)
	for _, c := range p.s.Comments {
		all.WriteString("// ")
		all.WriteString(c.Text)
	}
	text, off := all.String(), 0
	for _, c := range p.s.Comments {
		n := len("// ") + len(c.Text)
		c.Text, off = text[off:off+n], off+n
	}
	p.size = 0
	return p.out(p.s)
}

// head starts the first piece, with room for n comments besides its own,
// with the header comments, the option lines and the initial command;
// largest is the largest write of the script.
func (p *pieces) head(n int, largest int64) {
	b := p.b
	header := Header(b.f, b.packets, b.opts.Source, b.opts, b.artefacts())
	p.start(n + len(header) + 5 + len(b.env.initWhy)) // + the ECR, send buffer and offload notes
	p.addComments(header)
	s := p.s
	if !b.opts.Exact {
		s.Options = append(s.Options, &parser.Option{Pos: p.next(), Name: parser.Pcap2pktOption, Value: parser.Pcap2pktVersion, Set: true})
	}
	for _, o := range b.env.options {
		o.Pos = p.next()
		s.Options = append(s.Options, o)
	}
	if b.scaleEcr {
		p.addComments([]string{"Some inbound TS ecr values echo no TS val of an outbound line: let the replay interpolate them."})
		s.Options = append(s.Options, &parser.Option{Pos: p.next(), Name: "tcp_ts_ecr_scaled"})
	}
	init, why := b.env.init, b.env.initWhy
	if cmd, w := b.sendBuffer(largest); cmd != "" {
		init, why = append(init, cmd), append(why, w...)
	}
	if b.multiSeg && !b.opts.Strict && b.opts.Exact {
		init = append(init, "ethtool -K tun0 tso off gso off")
		why = append(why, "Segmentation offload off: the kernel then cuts writes into MSS-sized segments, which the replay",
			"gathers into the expectations of whole writes; with TSO its segment sizes follow its pacing and vary.")
	}
	if len(init) > 0 {
		p.addComments(why)
		s.Init = &parser.Command{Pos: p.next(), Text: strings.Join(init, " && ")}
	}
}

// events adds evs to the piece, prev being the event before the first (nil
// for the script's first event).
func (p *pieces) events(evs []*event, prev *event) {
	b, mem := p.b, p.b.nodes
	pevs := reuse(&mem.evs, len(evs))
	pks := reuse(&mem.pks, len(evs))
	tcps := reuse(&mem.tcps, len(evs))
	p.s.Events = reuse(&mem.evPtrs, len(evs))[:0]
	for i, e := range evs {
		if c := e.comments(); e == p.mark {
			p.addComments(c[:len(c)-1])
			p.addComment(p.next(), markText[len("// "):])
		} else {
			p.addComments(c)
		}
		pos := p.next()
		t := parser.Time{Pos: pos, Kind: parser.TimeRelative}
		var d, end int64
		if prev != nil {
			d, end, _ = b.delta(e, prev)
		}
		switch {
		case prev == nil:
			t.Kind = parser.TimeAbsolute
		case e.anchored:
			t.Usecs, t.Anchor = max(time.Duration(e.ns-e.anchorNs).Microseconds(), 0), true
			if e.anchorN > 1 {
				t.AnchorN = int(e.anchorN)
			}
		case end > 0:
			t.Kind, t.Usecs, t.End = parser.TimeRelativeRange, d, end
		default:
			t.Usecs = d
		}
		ev := &pevs[i]
		*ev = parser.Event{Pos: pos, Time: t}
		if pk, ok := e.action.(*pktNode); ok {
			pk.packet(&pks[i], &tcps[i])
			ev.Action = &pks[i]
		} else {
			ev.Action = e.action.(parser.Action)
		}
		p.s.Events = append(p.s.Events, ev)
		if frames := b.frames[e]; len(frames) > 0 {
			// On the event's line, after it: a trailing comment.
			p.addComment(parser.Pos{Line: pos.Line, Col: 2}, framesText(frames))
		}
		prev = e
	}
}

// shareGatheredNotes gives a run of writes gathered from several segments
// one note, on the first, instead of one each (a bulk transfer had hundreds
// of identical lines): a run goes on while no other comment comes between.
func shareGatheredNotes(events []*event, mem *nodes) {
	g := gatherRuns{mem: mem}
	for _, e := range events {
		g.step(e)
	}
	g.end()
}

// gatherRuns is shareGatheredNotes' state, event to event.
type gatherRuns struct {
	mem       *nodes
	start     *event // the run's first write, nil for none
	n, lo, hi int
	// ended, if set, is called with the first write of each run, its note
	// final (streamer).
	ended func(*event)
}

func (g *gatherRuns) step(e *event) {
	switch {
	case e.gathered > 0 && g.start != nil && len(e.comments()) == 1:
		e.setComments(e.comments()[:0], g.mem)
		g.n, g.lo, g.hi = g.n+1, min(g.lo, int(e.gathered)), max(g.hi, int(e.gathered))
	case e.gathered > 0:
		g.end()
		g.start, g.n, g.lo, g.hi = e, 1, int(e.gathered), int(e.gathered)
	case len(e.comments()) > 0:
		g.end()
	}
}

// end ends the run.
func (g *gatherRuns) end() {
	if g.n > 1 {
		e := g.start
		c := e.comments()[: len(e.comments())-1 : len(e.comments())-1]
		e.setComments(append(c, fmt.Sprintf("Each of this and the next %d writes was captured as %d to %d segments: each is gathered "+
			"into one expectation (a kernel cuts a write as its TSO/GSO sizing says).", g.n-1, g.lo, g.hi)), g.mem)
	}
	if g.start != nil && g.ended != nil {
		g.ended(g.start)
	}
	g.start, g.n = nil, 0
}

// framesText names capture frames: "frame 7", "frames 7-9", "frames 7, 9".
func framesText(f []int) string {
	if len(f) == 1 {
		return "frame " + strconv.Itoa(f[0])
	}
	if f[len(f)-1]-f[0] == len(f)-1 {
		return fmt.Sprintf("frames %d-%d", f[0], f[len(f)-1])
	}
	parts := make([]string, len(f))
	for i, n := range f {
		parts[i] = strconv.Itoa(n)
	}
	return "frames " + strings.Join(parts, ", ")
}

// commentSafe returns t with every byte that could end a comment line, or
// hide or garble it on a terminal, written as a Go escape: control bytes
// (\n, \r, \x00, ...), invalid UTF-8 and non-printing characters such as
// U+2028. Comments hold text from the capture (its file name, at least),
// which is not to be trusted: a name with a newline in it would otherwise
// start a line of its own, a shell command or a %{ }% block for a replay to
// run. Text that needs no escape comes back as it is.
func commentSafe(t string) string {
	clean := true
	for i := 0; i < len(t) && clean; i++ {
		clean = t[i] >= ' ' && t[i] < 0x7f
	}
	if clean {
		return t
	}
	var b strings.Builder
	for len(t) > 0 {
		r, n := utf8.DecodeRuneInString(t)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, t[0])
		case r == ' ' || strconv.IsPrint(r):
			b.WriteString(t[:n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		t = t[n:]
	}
	return b.String()
}
