package synth

// This file writes the script of a long connection as its events are made:
// the builder hands them over (flush) once nothing it does later can change
// them, the passes over the event list take them in steps, and what comes
// out of the last is printed into a spool, a temporary file. So a
// connection's synthesis holds a window of events instead of all of them.
// The header, which counts things over the whole connection, is printed
// last, before the spool is copied after it.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// streamMin is the packets from which the scripts that are only printed
// (Stream, Scripts) are streamed: a shorter connection's events take less
// memory than a spool's file and buffers. A variable for the tests.
var streamMin = 1 << 15

// flushEvery is how many events the builder holds before it hands those
// it is done with to the streamer. A variable for the tests.
var flushEvery = 4096

// streamChunk is how many events the streamer prints at a time: a
// variable for the tests.
var streamChunk = printChunk

// maxFileSpools bounds the spools in files at a time: Scripts keeps every
// connection's until one is printed. Past it a spool is kept in memory.
const maxFileSpools = 256

var fileSpools atomic.Int64

// errRebuild is the streamer's: the builder had to change an event it had
// handed over (a case the rules of flush do not foresee), so the script is
// made again the whole way.
var errRebuild = errors.New("an event changed after the builder handed it over")

// streamer takes the events of a script from the builder and prints them.
type streamer struct {
	b       *builder
	flushAt int // the builder hands its events over once it holds this many
	// q holds the events handed over, from the first not printed yet;
	// the passes' next steps start at c1, c2, c3 and c4 in it, and the
	// events before c4 are ready to print.
	q              []*event
	c1, c2, c3, c4 int
	holes          holeFills
	probes         probeWindows
	ahead          aheadACKs
	backlog        backlogWrites
	passes         bool   // not Strict: the passes run
	probesOn       bool   // acksBeforeProbe runs (probeMSS)
	last           *event // the latest event printed
	largest        int64  // the largest write printed
	gather         gatherRuns
	// pending is the first write of a run of gathered writes that goes on
	// past what is printed: its note, printed as markText, is the spool's
	// patch pendingAt.
	pending   *event
	pendingAt int
	p         pieces
	buf       bytes.Buffer
	sp        spool
	broken    bool
}

func newStreamer(b *builder) (*streamer, error) {
	st := &streamer{b: b, flushAt: flushEvery, passes: !b.opts.Strict}
	// The nodes the slabs keep for the next flow would stay alive to the
	// end of this one, a long one's first events' among them.
	b.nodes.keepNoMore()
	if mss := b.probeMSS(); mss > 0 {
		st.probesOn = true
		st.probes = probeWindows{mss: mss, flight: b.nodes.inFlight[:0]}
	}
	st.gather = gatherRuns{mem: b.nodes, ended: st.runEnded}
	st.p = pieces{b: b, out: st.printPiece}
	if err := st.sp.open(); err != nil {
		return nil, err
	}
	return st, nil
}

// touch tells the streamer that the builder changes the event at index at
// (lastIndex): one handed over already breaks the stream.
func (b *builder) touch(at int) {
	if at < b.base && b.stream != nil {
		b.stream.broken = true
	}
}

// flush hands the streamer the events the builder is done with: all of
// them when final, else those before the first it may still change (the
// open write's, whose numbers grow, the expectation segments are gathered
// into, the write's last expectation, whose PSH goes when another follows,
// and the packet that closed the window, after which a probe's write goes),
// keeping the latest, which the builder looks back at.
func (b *builder) flush(final bool) error {
	st := b.stream
	k := len(b.events)
	if !final {
		k--
		pin := func(at int) { k = max(min(k, at-b.base), 0) }
		if b.write != nil {
			pin(b.writeAt)
		}
		if b.burst != nil {
			pin(b.burst.at)
		}
		if b.tail != nil && (b.write != nil || b.fd < 0 || b.closed) {
			pin(b.tail.at)
		}
		if b.zeroWin >= 0 && !(b.inSeen && b.lastInWin != 0) {
			pin(b.zeroWin)
		}
	}
	for _, e := range b.events[:k] {
		st.q = b.spliceAfter(st.q, e)
	}
	n := copy(b.events, b.events[k:])
	clear(b.events[n:])
	b.events = b.events[:n]
	b.base += k
	st.flushAt = max(flushEvery, 2*len(b.events))
	return st.run(final)
}

// run takes the passes as far as they go over the events handed over, and
// prints those that are done, a chunk at a time (all when final).
func (st *streamer) run(final bool) error {
	q := st.q
	if !st.passes {
		st.c1, st.c2, st.c3, st.c4 = len(q), len(q), len(q), len(q)
	} else {
		// A step reads the event before its first again: the pass after
		// stops one short of where the one before will start (all of
		// the events when final).
		stage := func(c *int, before int, step func(from, to int) int) {
			lim := before - 1
			if final {
				lim = len(q)
			}
			if lim > *c {
				*c = step(*c, lim)
			}
			if final {
				*c = len(q)
			}
		}
		st.c1 = st.holes.step(q, st.c1, len(q), final)
		stage(&st.c2, st.c1, func(from, to int) int {
			if st.probesOn {
				st.probes.step(q, from, to)
			}
			return to
		})
		stage(&st.c3, st.c2, func(from, to int) int { return st.ahead.step(q, from, to, final) })
		stage(&st.c4, st.c3, func(from, to int) int { return st.backlog.step(q, from, to, final) })
	}
	if st.c4 < streamChunk && !final {
		return nil
	}
	if err := st.print(q[:st.c4], final); err != nil {
		return err
	}
	n := copy(q, q[st.c4:])
	clear(q[n:])
	st.q = q[:n]
	st.c1, st.c2, st.c3, st.c4 = st.c1-st.c4, st.c2-st.c4, st.c3-st.c4, 0
	return nil
}

// print prints evs, the events after st.last, into the spool; when final,
// they end the script, and the comments after its last event follow.
func (st *streamer) print(evs []*event, final bool) error {
	b := st.b
	n := 0
	prev := st.last
	for _, e := range evs {
		if prev != nil {
			b.countWait(e, prev)
		}
		st.largest = max(st.largest, writeLen(e))
		st.gather.step(e)
		n += len(e.comments()) + 1
		prev = e
	}
	if final {
		st.gather.end()
		n += len(b.comments)
	} else if g := st.gather.start; g != nil && g != st.pending {
		// The run goes on past this chunk: its note is not known yet.
		st.p.mark = g
	}
	b.nodes.commentSlab.reset()
	st.p.start(n)
	st.p.events(evs, st.last)
	if len(evs) > 0 {
		st.last = evs[len(evs)-1]
	}
	for _, e := range evs {
		delete(b.frames, e)
	}
	if final {
		st.p.addComments(b.comments)
	}
	if err := st.p.finish(); err != nil {
		return err
	}
	st.recycle(evs)
	return nil
}

// recycle gives the printed events evs, their packet lines and comment
// lists, back to the slabs for the events to come: a long connection's
// would otherwise be garbage, hundreds of megabytes of it, and the garbage
// collector lets the heap grow to twice what is alive before it collects.
// What the streamer and the builder still point to stays.
func (st *streamer) recycle(evs []*event) {
	b, mem := st.b, st.b.nodes
	for _, e := range evs {
		if e == st.last || e == st.pending || e == st.gather.start || e == b.writeEv || b.burst != nil && e == b.burst.ev {
			continue
		}
		if pk, ok := e.action.(*pktNode); ok && pk != b.lastPkt && (b.tail == nil || pk != b.tail.pk) && (b.burst == nil || pk != b.burst.pkt) {
			delete(b.frameOf, pk)
			mem.pkSlab.put(pk)
		}
		if e.notes != nil {
			mem.noteSlab.put(e.notes)
		}
		mem.evSlab.put(e)
	}
}

// runEnded is gatherRuns' ended: the note of a run's first write is final.
func (st *streamer) runEnded(e *event) {
	if e != st.pending {
		return
	}
	c := e.comments()
	st.sp.patches[st.pendingAt].text = commentSafe(c[len(c)-1])
	st.pending = nil
}

// printPiece prints a piece into the spool, taking its mark out into a
// patch.
func (st *streamer) printPiece(s *parser.Script) error {
	st.buf.Reset()
	if err := parser.Print(&st.buf, s); err != nil {
		return err
	}
	text := st.buf.Bytes()
	if m := st.p.mark; m != nil {
		st.p.mark = nil
		i := bytes.IndexByte(text, 0)
		if i < 0 {
			return fmt.Errorf("flow %d: the mark of a note is not in its script", st.b.f.Index)
		}
		st.pending, st.pendingAt = m, len(st.sp.patches)
		st.sp.patches = append(st.sp.patches, patch{off: st.sp.n + int64(i)})
		if err := st.sp.write(text[:i]); err != nil {
			return err
		}
		text = text[i+1:]
	}
	return st.sp.write(text)
}

// printTo prints the whole script: its head, then the spool.
func (st *streamer) printTo(w io.Writer) error {
	b := st.b
	p := pieces{b: b, out: func(s *parser.Script) error { return parser.Print(w, s) }}
	b.nodes.commentSlab.reset()
	p.head(0, st.largest)
	if err := p.finish(); err != nil {
		return err
	}
	return st.sp.copyTo(w)
}

// spool holds the printed events of a script until its head can be
// printed: in a temporary file (removed at once: it goes when closed), or,
// past maxFileSpools or without one, in memory.
type spool struct {
	f       *os.File
	w       *bufio.Writer
	mem     bytes.Buffer
	n       int64   // bytes written
	patches []patch // text to insert, in order
}

// patch is text to insert at an offset of the spool.
type patch struct {
	off  int64
	text string
}

func (sp *spool) open() error {
	if fileSpools.Add(1) > maxFileSpools {
		fileSpools.Add(-1)
		return nil
	}
	f, err := os.CreateTemp("", "pcap2pkt-spool-*")
	if err != nil {
		fileSpools.Add(-1)
		return nil // in memory
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		fileSpools.Add(-1)
		return err
	}
	sp.f, sp.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

func (sp *spool) write(p []byte) error {
	sp.n += int64(len(p))
	if sp.f == nil {
		sp.mem.Write(p)
		return nil
	}
	if _, err := sp.w.Write(p); err != nil {
		return fmt.Errorf("writing the script's temporary file: %w", err)
	}
	return nil
}

// copyTo writes what the spool holds, with its patches, to w, and closes
// it.
func (sp *spool) copyTo(w io.Writer) error {
	defer sp.close()
	var r io.Reader = &sp.mem
	if sp.f != nil {
		if err := sp.w.Flush(); err != nil {
			return fmt.Errorf("writing the script's temporary file: %w", err)
		}
		if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r = bufio.NewReaderSize(sp.f, 64<<10)
	}
	var at int64
	for _, p := range sp.patches {
		if _, err := io.CopyN(w, r, p.off-at); err != nil {
			return err
		}
		if _, err := io.WriteString(w, p.text); err != nil {
			return err
		}
		at = p.off
	}
	_, err := io.Copy(w, r)
	return err
}

// close lets the spool's file and memory go.
func (sp *spool) close() {
	if sp.f != nil {
		sp.f.Close()
		sp.f, sp.w = nil, nil
		fileSpools.Add(-1)
	}
	sp.mem = bytes.Buffer{}
}
