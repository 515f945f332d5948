package synth

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Options configures the synthesis of one flow.
type Options struct {
	// Strict writes outbound windows, TCP options, flags and segments
	// exactly as captured. By default outbound windows are left out (the
	// reference then does not check them: they follow receive-buffer
	// autotuning, which a replay does not reproduce), outbound options are
	// `<...>` unless the packet carries timestamps (see exactOptions), the
	// segments of one write are one expectation and PSH marks write ends.
	Strict bool
	// AllowPartial synthesises a flow whose capture has no handshake, with a
	// made-up handshake, instead of failing with ErrNoHandshake.
	AllowPartial bool
	// CongestionControl, if set, is the captured kernel's congestion
	// control algorithm (a capture does not show it): the script sets it in
	// the replay's namespace, whose default is the host's.
	CongestionControl string
	// Source is the capture's file name, for the header comment.
	Source string
	// Frames ends each packet line with a comment naming the capture's
	// frame number(s) it stands for, to find them in Wireshark.
	Frames bool
	// Exact writes the script in packetdrill's own language, without
	// pcap2pkt's extensions: it then runs under packetdrill too, with its
	// exact-packet matching. By default the script says --pcap2pkt=1 and
	// is matched by pcap2pkt's rules for synthesised scripts (see the
	// README): segment boundaries and PSH are free, a packet the kernel
	// sends that no line expects fails, and values that follow the host
	// or a secret (a Fast Open cookie) are written `*`.
	Exact bool
	// ToleranceUsecs is the --tolerance_usecs the script will be replayed
	// with (0: the reference's default): an outbound packet that follows
	// its trigger within it is written at +0, and what came within it
	// of each other is taken as one burst.
	ToleranceUsecs int64
}

// ErrNoHandshake is matched (errors.Is) by the error for a flow whose
// capture starts mid-stream when Options.AllowPartial is off.
var ErrNoHandshake = errors.New("no handshake in the capture (starts mid-stream); use --allow-partial")

// maxCall bounds the bytes of one read or write in a script: a replay's
// buffers hold at most 64 MiB (and it sizes the send buffer to four times
// the largest write), and no kernel sends or queues so much without an
// ACK or a read. A capture can claim it all the same (a snaplen-cut
// packet claims the length its IP header says): such a call is split.
const maxCall = 16 << 20

// Delayed ACKs leave on a timer with jiffy granularity (4 ms at HZ=250)
// and under the machine's load: an outbound pure ACK that came late in the
// capture is expected in a range from its captured delay to ackSlack
// later, and the ACK of a FIN (which Linux delays in interactive mode, by a
// few milliseconds) from +0 to finAckSlack.
const (
	ackSlack    = 8000
	finAckSlack = 8000
)

// A kernel timer (retransmission, tail loss probe, RACK reordering
// timeout, window probe) fires on a jiffy tick, and whether it is armed in
// one jiffy or the next depends on microseconds: when the captured kernel
// processed the ACK that armed it (later than the capture saw it if the
// socket was busy), where the tick fell. So the same timer fires a tick
// earlier or later from one run to the next. A packet such a timer may
// have sent, long after the event before it, is expected within
// timerSlack either side of its captured delay: a tick at HZ=250, the
// coarsest common setting (1 ms at HZ=1000).
const timerSlack = 4000

// defaultErrReadLen is the size of a failing read when the flow has had no
// read to copy the size from.
const defaultErrReadLen = 1000

// Synthesize turns one TCP connection into a packetdrill script for the
// kernel on f's local side. The flow must have its local side chosen (as
// capture's Tracker and ReadFlows do).
func Synthesize(f *capture.Flow, opts Options) (*parser.Script, error) {
	return synthesize(f, opts, new(nodes), nil)
}

// synthesize is Synthesize with the script's nodes from mem. release, if
// set, is called once f.Packets are done with, before the passes over the
// events and the tree are made (memory for a long connection).
func synthesize(f *capture.Flow, opts Options, mem *nodes, release func()) (*parser.Script, error) {
	b, err := build(f, opts, mem, release, false)
	if err != nil {
		return nil, err
	}
	return b.script(), nil
}

// build makes the events of f's script, for the builder's render, as
// synthesize; with stream, a connection of streamMin packets or more has
// its events printed as they are made (see streamer), for the builder's
// printer.
func build(f *capture.Flow, opts Options, mem *nodes, release func(), stream bool) (*builder, error) {
	if f.Packets.Len() == 0 {
		return nil, fmt.Errorf("flow %d: no packets", f.Index)
	}
	if !algorithmName(opts.CongestionControl) {
		return nil, fmt.Errorf("congestion control %q: not an algorithm name (lower-case letters, digits, '_' and '-')", opts.CongestionControl)
	}
	if !f.SYN && !opts.AllowPartial {
		return nil, fmt.Errorf("flow %d: %w", f.Index, ErrNoHandshake)
	}
	orig := f // for a second build
	var synNote string
	if !f.SYN && f.SYNACK {
		// The SYN-ACK tells the ISNs and most of the SYN's options: make
		// the SYN up from it and synthesise as for a whole handshake.
		f, synNote = withSYN(f)
	}
	var orderNote string
	if f.SYN && f.SYNACK {
		f, orderNote = synFirst(f)
	}
	b := newBuilder(f, opts, mem)
	if stream && f.Packets.Len() >= streamMin {
		st, err := newStreamer(b)
		if err != nil {
			return nil, fmt.Errorf("flow %d: %w", f.Index, err)
		}
		b.stream = st
	}
	if orderNote != "" {
		b.notes = append(b.notes, orderNote)
	}
	if synNote != "" {
		b.notes = append(b.notes, synNote)
	}
	if !f.SYN {
		b.fabricateHandshake()
	} else {
		b.setupEnvironment()
		b.prelude()
	}
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if b.stream != nil && len(b.events) >= b.stream.flushAt {
			if err := b.flush(false); err != nil {
				b.stream.sp.close()
				return nil, fmt.Errorf("flow %d: %w", f.Index, err)
			}
		}
		if b.run != nil && i == b.runAt+1 {
			b.inboundRun()
		}
		if b.deferred(i) {
			continue
		}
		if i == b.teardown {
			b.comment(fmt.Sprintf("The capture ends with a RST from the remote %s after the previous packet (the packetdrill", fmtDur(p.Time().Sub(f.Packets.At(i-1).Time()))),
				"tool that ran the remote side tears its connection down so): left out, the connection was already closed.")
			continue
		}
		if i > 0 && duplicate(f.Packets.At(i-1), p) {
			b.count.dup++
			continue
		}
		if i > 0 && loggedAgain(f.Packets.At(i-1), p) {
			b.count.logged++
			continue
		}
		b.icmpUpTo(p.Index())
		in := p.From == b.remote
		b.maybeFlushRead(p, in)
		if in {
			if b.deferInbound(i) {
				continue
			}
			b.inbound(p)
		} else {
			b.outbound(i, p)
		}
		b.prevTime = p.Time()
	}
	if b.run != nil {
		b.inboundRun()
	}
	b.icmpUpTo(int(^uint(0) >> 1))
	b.flushRead()
	b.settleWrite()
	if st := b.stream; st != nil {
		err := b.flush(true)
		if err == nil && st.broken {
			err = errRebuild
		}
		if st.probesOn {
			mem.inFlight = st.probes.flight[:0]
		}
		if err != nil {
			st.sp.close()
		}
		if err == errRebuild {
			mem.reset()
			return build(orig, opts, mem, release, false)
		}
		if err != nil {
			return nil, fmt.Errorf("flow %d: %w", f.Index, err)
		}
	}
	if release != nil {
		release()
	}
	if b.gsoSize > 0 {
		b.env.options = append(b.env.options, &parser.Option{Name: "mss", Value: strconv.Itoa(b.gsoSize), Set: true})
	}
	if b.stream != nil {
		return b, nil
	}
	b.spliceWrites()
	if !b.opts.Strict {
		fillsEarly(b.events)
		if mss := b.probeMSS(); mss > 0 {
			b.nodes.inFlight = acksBeforeProbe(b.events, mss, b.nodes.inFlight)
		}
		acksAhead(b.events)
		writesBeforeBacklog(b.events)
	}
	return b, nil
}

// algorithmName reports whether s can be a congestion control algorithm's
// name: the script's shell line sets it, and holds only text that the
// synthesiser composed or checked.
func algorithmName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// dupWindow is how close in time two copies of a packet must be to count
// as one packet captured twice.
const dupWindow = time.Millisecond

// duplicate reports whether p is q captured a second time: tcpdump -i any
// on loopback sees each packet leave and arrive. The capture must mark the
// two copies with opposite directions; identical header fields alone do
// not make a copy (packetdrill injects its duplicate ACKs with IP ID 0).
func duplicate(q, p *capture.FlowPacket) bool {
	return p.CaptureDir != q.CaptureDir && p.CaptureDir != capture.DirUnknown && q.CaptureDir != capture.DirUnknown &&
		sameHeaders(q, p) && p.Time().Sub(q.Time()) <= dupWindow && !p.Time().Before(q.Time())
}

// sameHeaders reports whether p and q have the same sender and the same
// IP ID and TCP header fields, options included.
func sameHeaders(q, p *capture.FlowPacket) bool {
	return p.From == q.From && p.Seq == q.Seq && p.Ack == q.Ack && p.Flags == q.Flags &&
		p.PayloadLen() == q.PayloadLen() && p.Window == q.Window && p.IPID == q.IPID &&
		p.IPVersion() == q.IPVersion() && string(p.RawOptions()) == string(q.RawOptions())
}

// loggedAgain reports whether p, an NFLOG record, is q logged a second
// time at the same instant: netfilter logs a packet once for each rule that
// logs it (zeek's nflog-http.pcap has each SYN three times, IP ID and all,
// to the microsecond). A packet the path duplicated arrives later, and a
// kernel's retransmission has an IP ID of its own; packetdrill's injected
// packets, which may repeat at +0, have IP ID 0 and are not taken for
// copies. IPv6 has no IP ID to tell them apart by. Other captures keep
// identical packets (see duplicate).
func loggedAgain(q, p *capture.FlowPacket) bool {
	return p.Logged() && q.Logged() && p.Time().Equal(q.Time()) && p.IPVersion() == 4 && p.IPID != 0 &&
		p.CaptureDir == q.CaptureDir && sameHeaders(q, p)
}

// event is one line of the script under construction. A long connection
// has millions, so an event is 56 bytes: its times in nanoseconds, its
// comments (which few have) behind a pointer, and what fewer still have
// (the frame numbers of Options.Frames) in the builder (frames).
type event struct {
	action any       // a parser.Action, or the *pktNode of a TCP packet line
	ns     int64     // the time (at), in nanoseconds since 1970
	notes  *[]string // the comment lines (comments), nil for none
	// react marks an outbound packet sent in reaction to the event before
	// it: written at +0 when it came within the tolerance, since the delay
	// seen is the capturing host's scheduling, not the protocol's.
	react bool
	// ack marks an outbound pure ACK, whose timing follows the kernel's
	// delayed-ACK timer; afterFIN one that answers an inbound FIN.
	ack, afterFIN bool
	// timer marks an outbound packet that a kernel timer may have sent: a
	// retransmission (RTO, tail loss probe, RACK reordering timeout) or a
	// probe.
	timer bool
	// fresh marks an outbound packet that carries new data.
	fresh bool
	// anchored marks an inbound packet that answers what the local side
	// sent (it acknowledges or SACKs it first): its time is written from
	// the latest transmission of that, at anchor (`+d^`, --pcap2pkt).
	anchored bool
	// gathered is the number of captured segments gathered into this
	// expectation of one write, whose note is its last comment (0: none).
	gathered int32
	anchorN  int32 // which transmission of the anchor (from 1)
	anchorNs int64 // anchor, in nanoseconds since 1970
}

// newEvent returns an event of action a at time at, with comment lines
// comments.
func newEvent(at time.Time, a any, comments []string, mem *nodes) event {
	e := event{action: a, ns: at.UnixNano()}
	e.setComments(comments, mem)
	return e
}

// anchor makes inbound event e answer the n-th transmission the local
// side made at at (`^`, `^n`), unless the script is packetdrill's own.
func (b *builder) anchor(e *event, at time.Time, n int) {
	if !b.opts.Exact {
		e.anchored, e.anchorNs, e.anchorN = true, at.UnixNano(), int32(n)
	}
}

// at is the event's time.
func (e *event) at() time.Time { return time.Unix(0, e.ns).UTC() }

// setAt sets the event's time.
func (e *event) setAt(t time.Time) { e.ns = t.UnixNano() }

// since is how long after event o e is.
func (e *event) since(o *event) time.Duration { return time.Duration(e.ns - o.ns) }

// comments are the comment lines printed before the event.
func (e *event) comments() []string {
	if e.notes == nil {
		return nil
	}
	return *e.notes
}

// setComments replaces the comment lines; the list's header comes from
// mem (a bulk transfer's gathered writes each have a note).
func (e *event) setComments(c []string, mem *nodes) {
	if e.notes == nil {
		if len(c) == 0 {
			return
		}
		e.notes = mem.noteSlab.new()
	}
	*e.notes = c
}

// highMark follows the highest sequence number one side's data reached in
// a scan of a capture: data ending past it is new, data ending at or below
// it a retransmission.
type highMark struct {
	end tcpwire.Seq
	set bool
}

// advance reports whether data ending at end is new, and if so moves the
// mark to end.
func (h *highMark) advance(end tcpwire.Seq) bool {
	if h.set && !h.end.LessThan(end) {
		return false
	}
	h.end, h.set = end, true
	return true
}

// span is a range of sequence space [start, end).
type span struct{ start, end tcpwire.Seq }

type builder struct {
	f              *capture.Flow
	packets        int // f.Packets.Len(), which may be released before the header is written
	opts           Options
	local, remote  capture.Side
	server         bool // the local side received the SYN
	refused        bool // the local side answered the SYN with a RST: nothing listens
	localISN       tcpwire.Seq
	remoteISN      tcpwire.Seq
	mss            [2]int // MSS option from each side's SYN, 0 if unknown
	localWScale    uint8  // the window scale the local side applies to its windows
	useTS          bool   // both SYNs carried timestamps
	useSACK        bool   // both SYNs offered SACK
	teardown       int    // index of the final teardown RST left out, or -1
	shutdownAt     int    // index of the local FIN that must be a shutdown (data still comes in after it), or -1
	closeInSYNSent bool   // the local client closed its socket before the SYN-ACK came
	resetACK       int    // index of the remote segment the local side answers with a bare RST first, or -1
	acceptICMP     int    // index in f.ICMP of the error after which a Fast Open child is accepted, or -1
	nextICMP       int    // the next of f.ICMP to inject
	sending               // the local side's writes and their segments (send.go)
	answered              // what the local side sent, for anchored inbound times (anchor.go)
	// localMD5 is 1 when a local segment carries an MD5 signature option
	// (the local socket has a key), -1 when none does, 0 until asked.
	localMD5 int8

	env environment
	// events are the script's events, from its base-th on: a streamer
	// takes those before from the builder as it goes.
	events   []*event
	base     int
	stream   *streamer        // nil: the builder keeps every event to the end
	comments []string         // comments for the next event
	frameOf  map[*pktNode]int // capture frame of each packet line (Options.Frames)
	frames   map[*event][]int // the capture's frame numbers of the packets each event stands for (Options.Frames)
	notes    []string         // capture artefacts, for the header
	count    struct{ bigOut, gathered, bigIn, merged, mergedRuns, retransOut, retransIn, ooo, unknownOpt, partialCsum, truncated, backwards, dup, logged, wraps, icmpOther, bigCalls, tooLarge, longWaits, longestWait int }
	tsVals   map[uint32]bool // outbound TS vals written exactly so far
	scaleEcr bool            // an inbound TS ecr echoes no TS val written before it

	fd          int64 // the connection's descriptor, -1 before accept/socket
	listenFD    int64
	closed      bool // close() done, or the connection was reset
	established bool // the handshake completed
	toBlocking  bool // a client still has to switch its socket back to blocking
	lastCall    string
	lastReadN   int64
	lastWriteN  int64

	rcv        receiver // the remote's data as the local side receives it
	lastOutAck tcpwire.Seq
	lastOutWin uint16 // in scaled units (see outWin)
	holding    bool   // the local side's window shows its application is not reading
	outSeen    bool

	inSeen    bool   // an inbound packet was seen
	lastInWin uint16 // its window field
	zeroWin   int    // index (lastIndex) of the inbound packet that closed the window, or -1
	// lastPkt is the latest packet emitted, which outbound asks for each
	// packet: a search back through the events crossed every call made
	// since, thousands where packets were left out (see fits).
	lastPkt *pktNode // nil after an ICMP packet
	// dataFirst is 1 when the local side sends data before the remote's
	// first ACK (see fastOpenChild), -1 when not, 0 until asked;
	// remoteSYNAt is 1 + the index of the remote's SYN, -1 for none, 0
	// until asked.
	dataFirst   int8
	remoteSYNAt int

	prevTime   time.Time // time of the previous captured packet
	coalescing           // inbound runs injected later than captured (coalesce.go)

	*nodes
	nop *parser.TCPOption // the NOP of every tsOnly list
	// openWrite holds the nodes of the open write, and writeEv its event,
	// until settleWrite.
	openWrite callNodes
	writeEv   *event
	writeAt   int // writeEv's index (lastIndex)
	// lastShared is the call sharedCall returned last.
	lastShared *callNodes
	tsLast     [2]*tsNodes // the last two lists tsOnly made, the latest first
}

func newBuilder(f *capture.Flow, opts Options, mem *nodes) *builder {
	if opts.ToleranceUsecs <= 0 {
		opts.ToleranceUsecs = parser.DefaultToleranceUsecs
	}
	b := &builder{f: f, opts: opts, local: f.Local, remote: f.Local.Other(), nodes: mem,
		fd: -1, listenFD: -1, rcv: receiver{urgAt: -1}, teardown: -1, shutdownAt: -1, zeroWin: -1, tsVals: map[uint32]bool{}}
	b.server = f.Local == capture.SideB
	b.packets = f.Packets.Len()
	// Nearly every packet becomes a script packet, most with timestamps;
	// about one in two a read or write too, which is an event as well.
	n := f.Packets.Len()
	b.pkSlab.want, b.tsSlab.want, b.callSlab.want, b.evSlab.want = n, n, n/2, n+n/2
	b.events = reuse(&mem.events, min(n+n/2, maxFirstChunk))[:0]
	if f.HasISN[b.local] {
		b.localISN = f.ISN[b.local]
	}
	if f.HasISN[b.remote] {
		b.remoteISN = f.ISN[b.remote]
	}
	var ts, sack, hasWS [2]bool
	var ws [2]uint8
	sent := 0 // local packets that occupy sequence space, for noteSent
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From == b.local && (p.PayloadLen() > 0 || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN) != 0) {
			sent++
		}
		if p.Flags.Has(tcpwire.FlagSYN) {
			o := p.Options()
			if o.HasMSS && b.mss[p.From] == 0 {
				b.mss[p.From] = int(o.MSS)
			}
			ts[p.From] = ts[p.From] || o.HasTS
			sack[p.From] = sack[p.From] || o.SACKOK
			if o.HasWScale && !hasWS[p.From] {
				ws[p.From], hasWS[p.From] = min(o.WScale, 14), true
			}
		}
		if p.ChecksumState == tcpwire.ChecksumPartial {
			b.count.partialCsum++
		}
		if p.Truncated() {
			b.count.truncated++
		}
	}
	// Their log in one allocation: grown by append, a bulk sender's was
	// copied over and over.
	b.sent.segs = make([]sentSeg, 0, sent)
	b.useTS = ts[0] && ts[1]
	b.useSACK = sack[0] && sack[1]
	if hasWS[0] && hasWS[1] {
		b.localWScale = ws[b.local]
	}
	b.refused = b.server && refusedSYN(f, b.local)
	b.teardown = teardownRST(f, b.remote)
	b.shutdownAt = shutdownFIN(f, b.local)
	b.closeInSYNSent = !b.server && closedInSYNSent(f, b.local)
	b.resetACK, b.acceptICMP = -1, -1
	if b.server {
		b.resetACK = resetACKAt(f, b.local)
	}
	b.notPushed = unpushedEnds(f, b.local)
	b.heldBack = b.lastUnpushed()
	return b
}

// comment queues comment lines for the next event.
func (b *builder) comment(lines ...string) { b.comments = append(b.comments, lines...) }

// emit adds an event: a is a parser.Action, or the *pktNode of a TCP
// packet line.
func (b *builder) emit(at time.Time, a any) *event {
	pk, _ := a.(*pktNode)
	if _, icmp := a.(*parser.Packet); pk != nil || icmp {
		b.lastPkt = pk
	}
	e := b.evSlab.new()
	*e = newEvent(at, a, b.comments, b.nodes)
	if pk != nil && b.frameOf[pk] > 0 {
		if b.frames == nil {
			b.frames = map[*event][]int{}
		}
		b.frames[e] = append(b.frames[e], b.frameOf[pk])
	}
	b.comments = nil
	b.events = append(b.events, e)
	return e
}

// lastIndex is the index in the script of the latest event.
func (b *builder) lastIndex() int { return b.base + len(b.events) - 1 }

// lastAt is the time of the latest event (the time of calls that follow it).
func (b *builder) lastAt() time.Time {
	if len(b.events) == 0 {
		return b.f.Packets.At(0).Time()
	}
	return b.events[len(b.events)-1].at()
}

// call emits a system call.
func (b *builder) call(at time.Time, name string, result int64, args ...parser.Expr) *parser.Syscall {
	c := &parser.Syscall{Name: name, Args: args, Result: num(result)}
	b.emit(at, c)
	b.closeWrite()
	return c
}

// callNodes holds the nodes of a read or write call.
type callNodes struct {
	call       parser.Syscall
	args       [3]parser.Expr
	fd, n, res parser.IntLit
	any        parser.Ellipsis
}

// set makes c the nodes of `name(fd, ..., n) = n`.
func (c *callNodes) set(name string, fd, n int64) {
	c.fd.Value, c.n.Value, c.res.Value = fd, n, n
	c.args = [3]parser.Expr{&c.fd, &c.any, &c.n}
	c.call = parser.Syscall{Name: name, Args: c.args[:], Result: &c.res}
}

// rwKey identifies the text of a read or write call.
type rwKey struct {
	name  string
	fd, n int64
}

// rwCall emits `name(fd, ..., n) = n` (a read or a write). A read is done
// with once emitted, and shares its nodes with the reads of the script
// that look the same (nothing changes a built tree's nodes; a bulk
// transfer makes hundreds of thousands of calls of a few sizes). A write
// stays open while its segments come (setWriteN changes its numbers) in
// the builder's own nodes, until settleWrite.
func (b *builder) rwCall(at time.Time, name string, n int64) *parser.Syscall {
	b.closeWrite()
	if name == "write" {
		b.openWrite.set(name, b.fd, n)
		b.writeEv = b.emit(at, &b.openWrite.call)
		b.writeAt = b.lastIndex()
		return &b.openWrite.call
	}
	c := b.sharedCall(name, b.fd, n)
	b.emit(at, c)
	return c
}

// sharedCall returns the nodes of `name(fd, ..., n) = n` that every such
// read or settled write of the script shares.
func (b *builder) sharedCall(name string, fd, n int64) *parser.Syscall {
	if c := b.lastShared; c != nil && c.n.Value == n && c.fd.Value == fd && c.call.Name == name {
		// The same as the call before, as a bulk transfer's calls are:
		// no hashing of the name.
		return &c.call
	}
	k := rwKey{name, fd, n}
	c := b.calls[k]
	if c == nil {
		c = b.callSlab.new()
		c.set(name, fd, n)
		if b.calls == nil {
			b.calls = map[rwKey]*callNodes{}
		}
		b.calls[k] = c
	}
	b.lastShared = c
	return &c.call
}

// settleWrite gives the open write, whose numbers are final, the nodes
// shared by the writes that look the same.
func (b *builder) settleWrite() {
	if b.write == nil || b.write != &b.openWrite.call {
		return
	}
	c := &b.openWrite
	b.writeEv.action = b.sharedCall(c.call.Name, c.fd.Value, c.n.Value)
}

// callErr emits a failing system call: `= -1 ERRNO (text)`.
func (b *builder) callErr(at time.Time, name, errno, text string, args ...parser.Expr) {
	c := b.call(at, name, -1, args...)
	c.Errno, c.ErrnoNote = errno, text
}

func num(v int64) *parser.IntLit    { return &parser.IntLit{Value: v} }
func word(s string) *parser.Word    { return &parser.Word{Name: s} }
func any3() *parser.Ellipsis        { return &parser.Ellipsis{} }
func or(a, c string) *parser.Binary { return &parser.Binary{Op: "|", X: word(a), Y: word(c)} }

// prelude emits the calls that create the socket before the first packet.
func (b *builder) prelude() {
	at := b.f.Packets.At(0).Time()
	switch {
	case b.refused:
		b.comment("Nothing listens on the port: the kernel refuses the connection.")
	case b.server:
		b.listenFD = 3
		b.call(at, "socket", 3, any3(), word("SOCK_STREAM"), word("IPPROTO_TCP"))
		b.call(at, "setsockopt", 0, num(3), word("SOL_SOCKET"), word("SO_REUSEADDR"), &parser.List{Elems: []parser.Expr{num(1)}}, num(4))
		b.rcvbufCall(3)
		b.call(at, "bind", 0, num(3), any3(), any3())
		b.call(at, "listen", 0, num(3), num(1))
	default:
		b.fd = 3
		b.call(at, "socket", 3, any3(), word("SOCK_STREAM"), word("IPPROTO_TCP"))
		b.rcvbufCall(3)
		b.noDelayCall(at, 3)
		if b.env.fastOpenConnect {
			b.comment("The captured SYN asks for a Fast Open cookie: the application connected with TCP_FASTOPEN_CONNECT.")
			b.call(at, "setsockopt", 0, num(3), word("SOL_TCP"), word("TCP_FASTOPEN_CONNECT"), &parser.List{Elems: []parser.Expr{num(1)}}, num(4))
		}
		b.call(at, "fcntl", 0, num(3), word("F_SETFL"), or("O_RDWR", "O_NONBLOCK"))
		b.callErr(at, "connect", "EINPROGRESS", "Operation now in progress", num(3), any3(), any3())
	}
}

// outWin returns the window field of outbound packet p in the units of the
// connection's other packets: a SYN's window is not scaled.
func (b *builder) outWin(p *capture.FlowPacket) uint16 {
	if p.Flags.Has(tcpwire.FlagSYN) {
		return p.Window >> b.localWScale
	}
	return p.Window
}

// pureACK reports whether p is an ACK without data, SYN, FIN or RST.
func pureACK(p *capture.FlowPacket) bool {
	return p.PayloadLen() == 0 && p.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) == 0 && p.Flags.Has(tcpwire.FlagACK)
}

func (b *builder) inbound(p *capture.FlowPacket) {
	if b.md5Dropped(p) {
		b.comment("No MD5 key on the local socket (none of its segments is signed): the kernel drops this signed segment.")
		if pk := b.packet(p, true); pk != nil {
			b.emit(p.Time(), pk)
		}
		return
	}
	if pureACK(p) && b.write != nil {
		// The application may have written more than the kernel could
		// send before this ACK: the write stays open (see addWrite).
		b.burst, b.ackedSince = nil, true
	} else {
		b.closeWrite()
	}
	closing := p.Window == 0 && (!b.inSeen || b.lastInWin != 0)
	b.inSeen, b.lastInWin = true, p.Window
	fl := p.Flags
	if fl.Has(tcpwire.FlagSYN) && !b.rcv.init {
		b.rcv.start(p.Seq.Add(1))
	}
	b.trackInbound(p)
	if pk := b.packet(p, true); pk != nil {
		e := b.emit(p.Time(), pk)
		if at, n, ok := b.answers(p); ok {
			b.anchor(e, at, n)
		}
	}
	if closing {
		b.zeroWin = b.lastIndex()
	}
	switch {
	case fl.Has(tcpwire.FlagRST):
		b.remoteReset(p)
	case fl.Has(tcpwire.FlagSYN) && fl.Has(tcpwire.FlagACK) && !b.server:
		b.established, b.toBlocking = true, true
	case b.resetACK >= 0 && b.f.Packets.At(b.resetACK) == p:
		b.comment("The kernel answers with a bare RST: nothing completed the handshake (the request was gone).")
	case b.server && !b.refused && b.fd < 0 && fl.Has(tcpwire.FlagACK) && !fl.Has(tcpwire.FlagSYN) && p.Ack == b.localISN.Add(1):
		b.accept(p.Time())
	}
}

// md5Dropped reports whether the inbound segment p carries a TCP MD5
// signature option (RFC 2385) while the local side signs nothing: Linux
// drops such a segment for a socket without a key (TCPMD5Unexpected), so
// it neither completes a handshake nor delivers data. (A SYN is left to
// the handshake's handling.)
func (b *builder) md5Dropped(p *capture.FlowPacket) bool {
	const md5Len = 18
	if p.Flags.Has(tcpwire.FlagSYN) || len(p.RawOptions()) < md5Len || !p.Options().MD5 {
		return false
	}
	if b.localMD5 == 0 {
		b.localMD5 = -1
		for i := range b.f.Packets.Len() {
			q := b.f.Packets.At(i)
			if q.From == b.local && len(q.RawOptions()) >= md5Len && q.Options().MD5 {
				b.localMD5 = 1
				break
			}
		}
	}
	return b.localMD5 < 0
}

// trackInbound follows the remote's data: what becomes readable in order,
// retransmissions and segments that arrive out of order.
func (b *builder) trackInbound(p *capture.FlowPacket) {
	if !b.rcv.init {
		return
	}
	if p.Flags.Has(tcpwire.FlagSYN) {
		// Data in a SYN counts only once the SYN-ACK acknowledges it (a
		// Fast Open server takes it; others drop it): see outbound.
		return
	}
	if p.PayloadLen() > 0 {
		if m := b.segSize(p, b.remote); m > 0 && p.PayloadLen() > m {
			b.count.bigIn++
		}
		switch b.rcv.data(p) {
		case again:
			b.count.retransIn++
			b.comment("The remote retransmits data the kernel already has.")
		case ahead:
			b.count.ooo++
			b.comment("Out of order: a hole precedes this segment.")
		}
	}
	b.rcv.fin(p)
}

// remoteReset makes the application's next call fail as the kernel reports
// a reset (tcp_reset): a client still connecting learns ECONNREFUSED; an
// open socket ECONNRESET on its next read or write (whichever it did last),
// unless the remote's FIN came first: then the kernel reports EPIPE to a
// write, and a read still returns the end of file.
func (b *builder) remoteReset(p *capture.FlowPacket) {
	at := p.Time()
	fd := num(b.fd)
	switch {
	case !b.server && !b.established && b.fd >= 0:
		b.callErr(at, "connect", "ECONNREFUSED", "Connection refused", fd, any3(), any3())
	case b.fd < 0 || b.closed:
		return
	case b.rcv.init && p.Seq != b.rcv.nxt:
		b.comment("The RST above is not at the next expected sequence number: the kernel answers with a challenge ACK.")
		return
	case b.lastCall == "write" && b.rcv.finRcvd:
		b.callErr(at, "write", "EPIPE", "Broken pipe", fd, any3(), num(b.lastWriteN))
	case b.lastCall == "write":
		b.callErr(at, "write", "ECONNRESET", "Connection reset by peer", fd, any3(), num(b.lastWriteN))
	case b.rcv.finRcvd:
		b.call(at, "read", 0, fd, any3(), num(b.readLen()))
	default:
		b.callErr(at, "read", "ECONNRESET", "Connection reset by peer", fd, any3(), num(b.readLen()))
	}
	b.closed = true
}

// readLen is the size of a read that expects no data: the last read's.
func (b *builder) readLen() int64 {
	if b.lastReadN == 0 {
		return defaultErrReadLen
	}
	return b.lastReadN
}

// segSize is the payload that side from puts in a full segment like p:
// the peer's MSS option (the limit on what from may send), or from's own
// when smaller, less p's TCP options; 0 if unknown.
func (b *builder) segSize(p *capture.FlowPacket, from capture.Side) int {
	m := b.mss[from.Other()]
	if m == 0 {
		return 0
	}
	if l := b.mss[from]; l > 0 && l < m {
		m = l
	}
	m -= len(p.RawOptions())
	if m <= 0 {
		return 0
	}
	return m
}

// tolerance is the replay's timing tolerance (Options.ToleranceUsecs).
func (b *builder) tolerance() time.Duration {
	return time.Duration(b.opts.ToleranceUsecs) * time.Microsecond
}

// fmtDur prints a duration in seconds with microseconds.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.6f s", d.Seconds())
}
