package synth

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
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

// writeCap bounds a write that spans ACKs: the kernel queued its data while
// waiting for them, and a blocking write larger than the free send buffer
// would stall the script (the reference runs such calls inline). The
// buffer starts at about 20 segments' worth (tcp_sndbuf_expand).
const writeCap = 16 << 10

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
	return synthesize(f, opts, new(nodes))
}

// synthesize is Synthesize with the script's nodes from mem.
func synthesize(f *capture.Flow, opts Options, mem *nodes) (*parser.Script, error) {
	if len(f.Packets) == 0 {
		return nil, fmt.Errorf("flow %d: no packets", f.Index)
	}
	if !algorithmName(opts.CongestionControl) {
		return nil, fmt.Errorf("congestion control %q: not an algorithm name (lower-case letters, digits, '_' and '-')", opts.CongestionControl)
	}
	if !f.SYN && !opts.AllowPartial {
		return nil, fmt.Errorf("flow %d: %w", f.Index, ErrNoHandshake)
	}
	var synNote string
	if !f.SYN && f.SYNACK {
		// The SYN-ACK tells the ISNs and most of the SYN's options: make
		// the SYN up from it and synthesise as for a whole handshake.
		f, synNote = withSYN(f)
	}
	b := newBuilder(f, opts, mem)
	if synNote != "" {
		b.notes = append(b.notes, synNote)
	}
	if !f.SYN {
		b.fabricateHandshake()
	} else {
		b.setupEnvironment()
		b.prelude()
	}
	for i := range f.Packets {
		p := &f.Packets[i]
		if b.run != nil && i == b.runAt+1 {
			b.inboundRun()
		}
		if b.deferred(i) {
			continue
		}
		if i == b.teardown {
			b.comment(fmt.Sprintf("The capture ends with a RST from the remote %s after the previous packet (the packetdrill", fmtDur(p.Time.Sub(f.Packets[i-1].Time))),
				"tool that ran the remote side tears its connection down so): left out, the connection was already closed.")
			continue
		}
		if i > 0 && duplicate(&f.Packets[i-1], p) {
			b.count.dup++
			continue
		}
		b.icmpUpTo(p.Index)
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
		b.prevTime = p.Time
	}
	if b.run != nil {
		b.inboundRun()
	}
	b.icmpUpTo(int(^uint(0) >> 1))
	b.flushRead()
	b.spliceWrites()
	if b.gsoSize > 0 {
		b.env.options = append(b.env.options, &parser.Option{Name: "mss", Value: strconv.Itoa(b.gsoSize), Set: true})
	}
	if !b.opts.Strict {
		fillsEarly(b.events)
		if mss := b.probeMSS(); mss > 0 {
			b.nodes.inFlight = acksBeforeProbe(b.events, mss, b.nodes.inFlight)
		}
		acksAhead(b.events)
	}
	return b.script(), nil
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
	return p.From == q.From && p.CaptureDir != q.CaptureDir && p.CaptureDir != capture.DirUnknown &&
		q.CaptureDir != capture.DirUnknown && p.Seq == q.Seq && p.Ack == q.Ack && p.Flags == q.Flags &&
		p.PayloadLen == q.PayloadLen && p.Window == q.Window && p.IPID == q.IPID &&
		p.IPVersion == q.IPVersion && string(p.RawOptions()) == string(q.RawOptions()) &&
		p.Time.Sub(q.Time) <= dupWindow && !p.Time.Before(q.Time)
}

// event is one line of the script under construction.
type event struct {
	at       time.Time
	action   parser.Action
	comments []string
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
	// frames are the capture's frame numbers of the packets the event
	// stands for (with Options.Frames).
	frames []int
	// gathered is the number of captured segments gathered into this
	// expectation of one write, whose note is its last comment (0: none).
	gathered int
	// anchored marks an inbound packet that answers what the local side
	// sent (it acknowledges or SACKs it first): its time is written from
	// the latest transmission of that, at anchor (`+d^`, --pcap2pkt).
	anchored bool
	anchor   time.Time
	anchorN  int // which transmission of it (from 1)
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
	// notPushed holds where a local retransmission without PSH ended: no
	// write ended there (see unpushedEnds).
	notPushed map[tcpwire.Seq]bool
	// heldBack is the index of the local side's last new data segment when
	// it shows that its write had more data than left (see lastUnpushed),
	// or -1; moreQueued says the script's write holds that data.
	heldBack   int
	moreQueued bool
	// What the local side sent, and what the remote acknowledged and
	// SACKed so far, for anchored inbound times (see answers).
	sent       []sentSeg
	peerAck    tcpwire.Seq
	peerAckSet bool
	peerSacked spans
	// localMD5 is 1 when a local segment carries an MD5 signature option
	// (the local socket has a key), -1 when none does, 0 until asked.
	localMD5 int8

	env      environment
	events   []*event
	comments []string               // comments for the next event
	frameOf  map[*parser.Packet]int // capture frame of each packet line (Options.Frames)
	notes    []string               // capture artefacts, for the header
	count    struct{ bigOut, gathered, bigIn, merged, mergedRuns, retransOut, retransIn, ooo, unknownOpt, partialCsum, truncated, backwards, dup, wraps, icmpOther, bigCalls, tooLarge int }
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

	sndMax     tcpwire.Seq // end of the highest local data sent
	finSent    bool
	rcv        receiver // the remote's data as the local side receives it
	lastOutAck tcpwire.Seq
	lastOutWin uint16 // in scaled units (see outWin)
	holding    bool   // the local side's window shows its application is not reading
	outSeen    bool

	queued    int64  // bytes written ahead of their segments (for zero-window probes)
	inSeen    bool   // an inbound packet was seen
	lastInWin uint16 // its window field
	zeroWin   int    // index in events of the inbound packet that closed the window, or -1
	// lastPkt is the latest packet emitted, which outbound asks for each
	// packet: a search back through the events crossed every call made
	// since, thousands where packets were left out (see fits).
	lastPkt *parser.Packet
	// writesAfter holds the writes that probe placed after an event
	// other than the latest, for spliceWrites.
	writesAfter map[*event][]*event
	// freshScanned says that nextFresh found no new local data after
	// packet noFreshAfter.
	freshScanned bool
	noFreshAfter int
	// dataFirst is 1 when the local side sends data before the remote's
	// first ACK (see fastOpenChild), -1 when not, 0 until asked;
	// remoteSYNAt is 1 + the index of the remote's SYN, -1 for none, 0
	// until asked.
	dataFirst   int8
	remoteSYNAt int

	write      *parser.Syscall      // the open write, while its segments keep coming
	burst      *burst               // the expectation its segments are gathered into
	tail       *writeTail           // the write's last expectation so far
	ackedSince bool                 // an ACK came in since the write's last segment
	writeEnd   tcpwire.Seq          // where the open write\'s data ends
	writeEnds  map[tcpwire.Seq]bool // where the script\'s writes end (PSH goes there)
	prevTime   time.Time            // time of the previous captured packet
	multiSeg   bool                 // an expectation holds more than one segment of data
	writeN     int64
	lastData   *capture.FlowPacket
	coalescing // inbound runs injected later than captured (coalesce.go)

	*nodes
	nop *parser.TCPOption // the NOP of every tsOnly list
}

// nodes is the memory a script and its builder take their nodes and
// lists from: a flow has a few nodes per packet, a capture millions.
// Stream reuses it from one flow to the next (reset) once its caller is
// done with the script.
type nodes struct {
	evSlab      slab[event]
	pkSlab      slab[packetNodes]
	tsSlab      slab[tsNodes]
	callSlab    slab[callNodes]
	commentSlab slab[parser.Comment]

	events       []*event // the builder's event list
	deltas, ends []int64
	evs          []parser.Event
	evPtrs       []*parser.Event
	comments     []*parser.Comment
	inFlight     []sentData // acksBeforeProbe's working list
}

// reset makes the slabs hand out their memory again, zeroed, and the
// lists too: every node and list handed out before is dead.
func (n *nodes) reset() {
	n.evSlab.reset()
	n.pkSlab.reset()
	n.tsSlab.reset()
	n.callSlab.reset()
	n.commentSlab.reset()
	drop(&n.events)
	drop(&n.deltas)
	drop(&n.ends)
	drop(&n.evs)
	drop(&n.evPtrs)
	drop(&n.comments)
}

// reuse returns n zeroed values from *buf, which it replaces by a larger
// list when too small.
func reuse[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	l := (*buf)[:n]
	clear(l)
	return l
}

// drop lets a list that outgrew maxKept go back to the garbage collector.
func drop[T any](buf *[]T) {
	if cap(*buf) > maxKept {
		*buf = nil
	}
}

// slab hands out zeroed values from chunks: one allocation per chunk
// instead of one per value. The chunks are sized from how many values the
// flow is expected to need (want), or else start small and grow.
type slab[T any] struct {
	buf    []T   // the chunk values come from
	chunks [][]T // every chunk, in order, for reset
	next   int   // chunks[next] is the chunk after buf
	n      int   // values handed out since reset
	want   int
}

// maxFirstChunk bounds a chunk sized from want: a guess from a long flow's
// packets may be far too many.
const maxFirstChunk = 1024

// maxKept bounds the values whose chunks a slab keeps at reset: one huge
// flow's memory goes back to the garbage collector.
const maxKept = 1 << 15

func (s *slab[T]) new() *T {
	if len(s.buf) == cap(s.buf) {
		s.grow()
	}
	s.n++
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

func (s *slab[T]) grow() {
	if s.next < len(s.chunks) {
		s.buf = s.chunks[s.next][:0]
		s.next++
		return
	}
	n := min(max(2*cap(s.buf), 8), 256)
	if s.want > s.n {
		n = max(n, min(s.want-s.n, maxFirstChunk))
	}
	s.buf = make([]T, 0, n)
	s.chunks = append(s.chunks, s.buf)
	s.next++
}

// reset zeroes the values handed out and hands them out again.
func (s *slab[T]) reset() {
	kept := 0
	for i, c := range s.chunks {
		if i < s.next {
			clear(c[:cap(c)])
		}
		kept += cap(c)
	}
	if kept > maxKept {
		s.chunks = nil
	}
	s.buf, s.next, s.n = nil, 0, 0
}

func newBuilder(f *capture.Flow, opts Options, mem *nodes) *builder {
	if opts.ToleranceUsecs <= 0 {
		opts.ToleranceUsecs = parser.DefaultToleranceUsecs
	}
	b := &builder{f: f, opts: opts, local: f.Local, remote: f.Local.Other(), nodes: mem,
		fd: -1, listenFD: -1, rcv: receiver{urgAt: -1}, teardown: -1, shutdownAt: -1, zeroWin: -1, tsVals: map[uint32]bool{}, writeEnds: map[tcpwire.Seq]bool{}}
	b.server = f.Local == capture.SideB
	// Nearly every packet becomes a script packet, most with timestamps;
	// about one in two a read or write too, which is an event as well.
	n := len(f.Packets)
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
	for i := range f.Packets {
		p := &f.Packets[i]
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
		if p.Truncated {
			b.count.truncated++
		}
	}
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

// lastUnpushed returns the index of the local side's last segment of new
// data if it carries no PSH, is a whole number of full segments and no
// local FIN follows, or -1. The kernel pushes the last segment of a write
// unless more of it waits in the queue (for cwnd or the peer's window):
// then the application wrote more than the capture saw leave.
func (b *builder) lastUnpushed() int {
	last := -1
	var high highMark
	for i := range b.f.Packets {
		p := &b.f.Packets[i]
		if p.From != b.local {
			continue
		}
		if p.Flags.Has(tcpwire.FlagFIN) {
			return -1
		}
		if p.PayloadLen == 0 || p.Flags.Has(tcpwire.FlagSYN) {
			continue
		}
		if high.advance(p.Seq.Add(uint32(p.PayloadLen))) {
			last = i
		}
	}
	if last < 0 || b.opts.Strict {
		return -1
	}
	p := &b.f.Packets[last]
	if p.Flags&(tcpwire.FlagPSH|tcpwire.FlagRST) != 0 || b.segSize(p, b.local) == 0 || b.short(p) {
		return -1
	}
	return last
}

// unpushedEnds returns the sequence numbers where a retransmission of the
// local side's data without PSH ends. The kernel marks PSH on the last
// segment of a write (tcp_push) and keeps it there when it cuts a queued
// segment (tcp_fragment), so a retransmitted piece ending at a write's end
// carries it; the PSH of a first transmission says less: a TSO
// super-segment carries one wherever it ends. So a super-segment with PSH
// that ends where a retransmission without PSH ends is inside a write.
func unpushedEnds(f *capture.Flow, local capture.Side) map[tcpwire.Seq]bool {
	var out map[tcpwire.Seq]bool
	var high highMark
	for i := range f.Packets {
		p := &f.Packets[i]
		if p.From != local || p.PayloadLen == 0 || p.Flags.Has(tcpwire.FlagSYN) {
			continue
		}
		end := p.Seq.Add(uint32(p.PayloadLen))
		switch {
		case high.advance(end):
		case !p.Flags.Has(tcpwire.FlagPSH):
			if out == nil {
				out = map[tcpwire.Seq]bool{}
			}
			out[end] = true
		}
	}
	return out
}

// refusedSYN reports whether the local side's first answer to the SYN is a
// RST: no socket listened on the port.
func refusedSYN(f *capture.Flow, local capture.Side) bool {
	for i := range f.Packets {
		p := &f.Packets[i]
		if p.From != local {
			continue
		}
		return p.Flags.Has(tcpwire.FlagRST)
	}
	return false
}

// teardownRST returns the index of a final RST from the remote that comes
// after both FINs were sent and acknowledged, or -1. Such a RST has no
// effect the script could observe (the local socket is gone or in
// TIME_WAIT); the reference sends one for every connection it leaves open
// when a script ends, so a capture of a packetdrill run ends with it.
func teardownRST(f *capture.Flow, remote capture.Side) int {
	n := len(f.Packets)
	last := &f.Packets[n-1]
	if n < 2 || last.From != remote || !last.Flags.Has(tcpwire.FlagRST) {
		return -1
	}
	var finEnd [2]tcpwire.Seq
	var fin, acked [2]bool
	for i := range f.Packets[:n-1] {
		p := &f.Packets[i]
		if p.Flags.Has(tcpwire.FlagFIN) && !fin[p.From] {
			fin[p.From] = true
			finEnd[p.From] = p.Seq.Add(uint32(p.PayloadLen) + 1)
		}
		o := p.From.Other()
		if fin[o] && p.Flags.Has(tcpwire.FlagACK) && finEnd[o].LessThanEq(p.Ack) {
			acked[o] = true
		}
	}
	if acked[0] && acked[1] {
		return n - 1
	}
	return -1
}

// closedInSYNSent reports whether the local side answers the first SYN-ACK
// with a RST that acknowledges nothing: the kernel does that for a socket
// closed while it waited for the SYN-ACK (tcp_rcv_synsent_state_process on
// an orphan); an application closing afterwards would make it ACK first.
func closedInSYNSent(f *capture.Flow, local capture.Side) bool {
	synack := false
	for i := range f.Packets {
		p := &f.Packets[i]
		if p.From != local {
			synack = synack || p.Flags.Has(tcpwire.FlagSYN|tcpwire.FlagACK)
			continue
		}
		if synack {
			return p.Flags&(tcpwire.FlagRST|tcpwire.FlagACK) == tcpwire.FlagRST
		}
	}
	return false
}

// shutdownFIN returns the index of the local side's first FIN if new data
// from the remote still arrives after it and the local side takes it (the
// application then shut down only its sending half), or -1. After close()
// the kernel would answer such data with a RST instead.
func shutdownFIN(f *capture.Flow, local capture.Side) int {
	at := -1
	var high highMark
	for i := range f.Packets {
		p := &f.Packets[i]
		if p.From == local {
			if at < 0 && p.Flags.Has(tcpwire.FlagFIN) {
				at = i
			}
			continue
		}
		if p.PayloadLen == 0 {
			continue
		}
		if !high.advance(p.Seq.Add(uint32(p.PayloadLen))) {
			continue
		}
		if at < 0 {
			continue
		}
		for j := i + 1; j < len(f.Packets); j++ {
			if q := &f.Packets[j]; q.From == local {
				if q.Flags.Has(tcpwire.FlagRST) {
					return -1
				}
				return at
			}
		}
		return at
	}
	return -1
}

// comment queues comment lines for the next event.
func (b *builder) comment(lines ...string) { b.comments = append(b.comments, lines...) }

func (b *builder) emit(at time.Time, a parser.Action) *event {
	if pk, ok := a.(*parser.Packet); ok {
		b.lastPkt = pk
	}
	e := b.evSlab.new()
	*e = event{at: at, action: a, comments: b.comments}
	if pk, ok := a.(*parser.Packet); ok && b.frameOf[pk] > 0 {
		e.frames = append(e.frames, b.frameOf[pk])
	}
	b.comments = nil
	b.events = append(b.events, e)
	return e
}

// lastAt is the time of the latest event (the time of calls that follow it).
func (b *builder) lastAt() time.Time {
	if len(b.events) == 0 {
		return b.f.Packets[0].Time
	}
	return b.events[len(b.events)-1].at
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

// rwCall emits `name(fd, ..., n) = n` (a read or a write), allocating its
// nodes together.
func (b *builder) rwCall(at time.Time, name string, n int64) *parser.Syscall {
	c := b.callSlab.new()
	c.fd.Value, c.n.Value, c.res.Value = b.fd, n, n
	c.args = [3]parser.Expr{&c.fd, &c.any, &c.n}
	c.call = parser.Syscall{Name: name, Args: c.args[:], Result: &c.res}
	b.emit(at, &c.call)
	b.closeWrite()
	return &c.call
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
	at := b.f.Packets[0].Time
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
	return p.PayloadLen == 0 && p.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) == 0 && p.Flags.Has(tcpwire.FlagACK)
}

// closeWrite ends the open write: later segments need a write of their own.
func (b *builder) closeWrite() {
	b.write, b.writeN, b.lastData, b.burst = nil, 0, nil, nil
}

func (b *builder) inbound(p *capture.FlowPacket) {
	if b.md5Dropped(p) {
		b.comment("No MD5 key on the local socket (none of its segments is signed): the kernel drops this signed segment.")
		if pk := b.packet(p, true); pk != nil {
			b.emit(p.Time, pk)
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
		e := b.emit(p.Time, pk)
		if at, n, ok := b.answers(p); ok && !b.opts.Exact {
			e.anchored, e.anchor, e.anchorN = true, at, n
		}
	}
	if closing {
		b.zeroWin = len(b.events) - 1
	}
	switch {
	case fl.Has(tcpwire.FlagRST):
		b.remoteReset(p)
	case fl.Has(tcpwire.FlagSYN) && fl.Has(tcpwire.FlagACK) && !b.server:
		b.established, b.toBlocking = true, true
	case b.resetACK >= 0 && &b.f.Packets[b.resetACK] == p:
		b.comment("The kernel answers with a bare RST: nothing completed the handshake (the request was gone).")
	case b.server && !b.refused && b.fd < 0 && fl.Has(tcpwire.FlagACK) && !fl.Has(tcpwire.FlagSYN) && p.Ack == b.localISN.Add(1):
		b.accept(p.Time)
	}
}

// sentSeg is a local segment that occupies sequence space, as captured.
type sentSeg struct {
	start, end tcpwire.Seq
	at         time.Time
}

// noteSent logs a local packet that occupies sequence space (data, SYN,
// FIN), for the anchors of the packets that answer it.
func (b *builder) noteSent(p *capture.FlowPacket) {
	end := p.Seq.Add(uint32(p.PayloadLen))
	if p.Flags.Has(tcpwire.FlagSYN) {
		end = end.Add(1)
	}
	if p.Flags.Has(tcpwire.FlagFIN) {
		end = end.Add(1)
	}
	if end != p.Seq {
		b.sent = append(b.sent, sentSeg{p.Seq, end, p.Time})
	}
}

// answers returns the capture time of the local segment that the inbound
// packet p answers: the latest transmission before p of the last byte it
// acknowledges or SACKs beyond what the remote did before (or of the SYN
// its SYN-ACK acknowledges), which transmission of that byte it was (from
// 1), and whether there is one. It also records what p acknowledged.
func (b *builder) answers(p *capture.FlowPacket) (time.Time, int, bool) {
	if !p.Flags.Has(tcpwire.FlagACK) {
		return time.Time{}, 0, false
	}
	var x tcpwire.Seq
	found := false
	if !b.peerAckSet || b.peerAck.LessThan(p.Ack) {
		x, found = p.Ack.Add(^uint32(0)), true
		b.peerAck, b.peerAckSet = p.Ack, true
	}
	o := p.Options()
	for _, blk := range o.SACK[:min(int(o.NumSACK), len(o.SACK))] {
		l, r := tcpwire.Seq(blk.Left), tcpwire.Seq(blk.Right)
		if b.peerSacked.covers(l, r) {
			continue
		}
		b.peerSacked = append(b.peerSacked, span{l, r})
		if last := r.Add(^uint32(0)); !found || x.LessThan(last) {
			x, found = last, true
		}
	}
	if !found {
		return time.Time{}, 0, false
	}
	var at time.Time
	n := 0
	for _, s := range b.sent {
		if s.start.LessThanEq(x) && x.LessThan(s.end) && !p.Time.Before(s.at) {
			at, n = s.at, n+1
		}
	}
	return at, n, n > 0
}

// spans is a set of sequence ranges.
type spans []span

// covers reports whether the union of the spans covers [l, r).
func (ss spans) covers(l, r tcpwire.Seq) bool {
	at := l
	for progress := true; progress && at.LessThan(r); {
		progress = false
		for _, s := range ss {
			if s.start.LessThanEq(at) && at.LessThan(s.end) {
				at, progress = s.end, true
			}
		}
	}
	return !at.LessThan(r)
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
		for i := range b.f.Packets {
			q := &b.f.Packets[i]
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
	if p.PayloadLen > 0 {
		if m := b.segSize(p, b.remote); m > 0 && p.PayloadLen > m {
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
	at := p.Time
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
	end := seq.Add(uint32(p.PayloadLen))
	var fresh int64
	if p.PayloadLen > 0 && !fl.Has(tcpwire.FlagSYN) {
		if b.sndMax.LessThan(end) {
			start := seq
			if start.LessThan(b.sndMax) {
				start = b.sndMax
			}
			fresh = int64(end.Diff(start))
		} else {
			b.count.retransOut++
			b.comment("The kernel retransmits (its own timer or fast retransmit).")
		}
	}
	if fl.Has(tcpwire.FlagSYN) && b.outSeen {
		b.comment("The kernel retransmits its SYN.")
	}
	timer := (p.PayloadLen > 0 && fresh == 0) || (fl.Has(tcpwire.FlagSYN) && b.outSeen) ||
		(fl.Has(tcpwire.FlagFIN) && b.finSent) || (p.PayloadLen == 0 && b.outSeen && p.Seq == b.sndMax-1)
	blocking := b.toBlocking && (fresh > 0 || fl.Has(tcpwire.FlagFIN) || fl.Has(tcpwire.FlagRST))
	if blocking {
		b.switchToBlocking(p.Time)
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
			delete(b.writeEnds, b.writeEnd)
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
		b.call(p.Time, "setsockopt", 0, num(b.fd), word("SOL_SOCKET"), word("SO_LINGER"), &parser.Linger{OnOff: 1, Linger: 0}, num(8))
		b.call(p.Time, "close", 0, num(b.fd))
		b.closed = true
	}
	react := len(b.events) > 0
	if react {
		prev := b.events[len(b.events)-1].action
		if pk, ok := prev.(*parser.Packet); ok && pk.Dir == parser.Outbound {
			react = false
		}
	}
	if pk := b.packet(p, false); pk != nil {
		if fresh == 0 && p.PayloadLen > 0 && !b.opts.Strict {
			// A retransmission carries PSH where a script write ended, in
			// the replay as in the kernel (tcp_fragment keeps it at the
			// end), and where the captured one had it: Linux 6.18, resending
			// two segments of a write that RACK had marked lost, set PSH on
			// the second, in the capture and in its replays alike.
			fl := p.Flags &^ tcpwire.FlagPSH
			if b.writeEnds[end] || p.Flags.Has(tcpwire.FlagPSH) {
				fl |= tcpwire.FlagPSH
			}
			pk.TCP.Flags = flagText(fl)
		}
		if joined && b.gather(p, pk) {
			b.markTail(b.burst.pkt, b.burst.flags)
			// One expectation for several segments: the replayed kernel
			// must cut the write as the captured one did, into MSS-sized
			// segments, not TSO frames whose size follows its pacing (nor
			// hold a frame's tail back to grow it, tcp_tso_should_defer).
			b.multiSeg = true
		} else {
			// Whether the latest packet is an inbound FIN (an ICMP error
			// is none: its TCP is nil).
			q := b.lastPkt
			prevFIN := q != nil && q.Dir == parser.Inbound && q.TCP != nil && strings.Contains(q.TCP.Flags, "F")
			e := b.emit(p.Time, pk)
			e.react = react
			e.ack, e.afterFIN = pureACK(p), pureACK(p) && prevFIN
			e.timer = timer
			e.fresh = fresh > 0
			b.noteTSVal(pk)
			if fresh > 0 && int64(p.PayloadLen) == fresh {
				b.burst = &burst{pkt: pk, ev: e, flags: p.Flags, base: len(e.comments), segs: 1, optLen: len(p.RawOptions())}
			}
			if fresh > 0 {
				b.markTail(pk, p.Flags)
			}
		}
		if m := b.segSize(p, b.local); fresh > 0 && m > 0 && int(pk.TCP.Len) > m {
			b.multiSeg = true
		}
	}
	if b.sndMax.LessThan(end) {
		b.sndMax = end
	}
	if fresh > 0 {
		b.lastData = p
	}
	if b.toBlocking && pureACK(p) {
		b.switchToBlocking(p.Time)
	}
	if fl.Has(tcpwire.FlagSYN | tcpwire.FlagACK) {
		b.rcv.synData(p.Ack) // the SYN-ACK takes the data of the SYN
	}
	if b.server && b.fd < 0 && !b.refused && b.acceptICMP < 0 && fl.Has(tcpwire.FlagSYN|tcpwire.FlagACK) && b.fastOpenChild(p) {
		// With Fast Open the connection is accepted with the SYN's data,
		// before the handshake completes; after the ICMP error that ended
		// it, if one did (see killingICMP).
		if b.acceptICMP = b.killingICMP(); b.acceptICMP < 0 {
			b.accept(p.Time)
		}
	}
	if b.closeInSYNSent && fl.Has(tcpwire.FlagSYN) && !fl.Has(tcpwire.FlagACK) && !b.closed {
		b.comment("The kernel answers the SYN-ACK with a bare RST: the application closed the socket before it came.")
		b.call(p.Time, "close", 0, num(b.fd))
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
	if p.PayloadLen != 0 || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagFIN|tcpwire.FlagRST) != 0 || !b.outSeen || p.Seq != b.sndMax-1 {
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
	at := b.zeroWin
	if at < 0 {
		at = len(b.events) - 1
	}
	w := &event{at: b.events[at].at, action: &parser.Syscall{Name: "write", Args: []parser.Expr{num(b.fd), any3(), num(n)}, Result: num(n)},
		comments: []string{"The zero-window probes below need data queued: the application wrote it before."}}
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
		out = append(out, e)
		ws := b.writesAfter[e]
		for k := len(ws) - 1; k >= 0; k-- {
			out = append(out, ws[k])
		}
	}
	b.events, b.writesAfter = out, nil
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
	for j := i + 1; j < len(b.f.Packets); j++ {
		p := &b.f.Packets[j]
		if p.From != b.local || p.PayloadLen == 0 {
			continue
		}
		end := p.Seq.Add(uint32(p.PayloadLen))
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
func (b *builder) addWrite(p *capture.FlowPacket, fresh int64) (joined bool) {
	if b.queued > 0 {
		n := min(b.queued, fresh)
		b.queued -= n
		if fresh -= n; fresh == 0 {
			b.tail = nil
			if b.queued == 0 {
				b.writeEnds[p.Seq.Add(uint32(p.PayloadLen))] = true
			}
			return false
		}
	}
	end := p.Seq.Add(uint32(p.PayloadLen))
	join := b.write != nil && b.lastData != nil && !b.endsWrite(b.lastData, p) && (!b.ackedSince || b.writeN+fresh <= writeCap)
	if join && b.writeN+fresh > maxCall {
		b.count.bigCalls++
		join = false
	}
	if join {
		b.writeN += fresh
		b.setWriteN()
		b.ackedSince = false
		delete(b.writeEnds, b.writeEnd)
		b.writeEnd, b.writeEnds[end] = end, true
		return true
	}
	if b.fd < 0 || b.closed {
		return false
	}
	b.closeWrite()
	b.tail, b.ackedSince = nil, false
	b.writeEnd, b.writeEnds[end] = end, true
	b.write = b.rwCall(p.Time, "write", fresh)
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
	if last.Flags.Has(tcpwire.FlagPSH) && !b.notPushed[last.Seq.Add(uint32(last.PayloadLen))] {
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
	return p.Time.Sub(b.prevTime) > b.tolerance()
}

// short reports whether the data segment p is not a whole number of full
// segments: the kernel had no more data to send then.
func (b *builder) short(p *capture.FlowPacket) bool {
	m := b.segSize(p, b.local)
	return m > 0 && p.PayloadLen%m != 0
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

// localFIN emits the call behind the local side's FIN: shutdown(SHUT_WR)
// when data still comes in afterwards, close otherwise.
func (b *builder) localFIN(p *capture.FlowPacket) {
	b.flushRead()
	if b.fd < 0 || b.closed {
		return
	}
	if b.shutdownAt >= 0 && &b.f.Packets[b.shutdownAt] == p {
		b.call(p.Time, "shutdown", 0, num(b.fd), word("SHUT_WR"))
		return
	}
	b.call(p.Time, "close", 0, num(b.fd))
	b.closed = true
}

// packet converts one captured packet to a script packet, or returns nil
// for one the script language cannot write.
func (b *builder) packet(p *capture.FlowPacket, in bool) *parser.Packet {
	pk := b.convert(p, in)
	if !b.fits(p, pk) {
		return nil
	}
	if m := b.segSize(p, b.local); !in && m > 0 && p.PayloadLen > m {
		b.count.bigOut++
	}
	return pk
}

// fits reports whether the script can write pk, converted from p: the
// script language has no way to write a range that wraps, nor a segment
// larger than an IPv4 datagram holds (an IPv6 one can claim 20 bytes more).
func (b *builder) fits(p *capture.FlowPacket, pk *parser.Packet) bool {
	if uint64(pk.TCP.Seq)+uint64(pk.TCP.Len) > math.MaxUint32 {
		b.count.wraps++
		b.comment(fmt.Sprintf("Left out: packet %d, whose sequence range %d:%d wraps past 2^32 relative to the ISN.",
			p.Index, pk.TCP.Seq, uint64(pk.TCP.Seq)+uint64(pk.TCP.Len)))
		return false
	}
	if limit := parser.MaxSegmentBytes(pk.TCP.Options.WireLen()); int(pk.TCP.Len) > limit {
		b.count.tooLarge++
		b.comment(fmt.Sprintf("Left out: packet %d, whose %d bytes of data are more than a script's packet holds (%d with its options).",
			p.Index, pk.TCP.Len, limit))
		return false
	}
	return true
}

// burst is the expectation that the segments of one write are gathered
// into.
type burst struct {
	pkt    *parser.Packet
	ev     *event
	flags  tcpwire.Flags
	base   int // comments of ev before the gathering note
	segs   int
	optLen int // bytes of TCP options of the captured segments
}

// writeTail is the last expectation holding data of the latest write, with
// its captured flags.
type writeTail struct {
	pk    *parser.Packet
	flags tcpwire.Flags
}

// markTail makes pk the last expectation of the latest write. The kernel
// sets PSH on the last segment of each write (tcp_push), and the script's
// writes end where it does not know the application's did: so the tail
// expects PSH, and an expectation that stops being the tail does not. With
// Strict, flags stay as captured.
func (b *builder) markTail(pk *parser.Packet, flags tcpwire.Flags) {
	if b.opts.Strict {
		return
	}
	if t := b.tail; t != nil && t.pk != pk {
		// The replay checks a gathered expectation with the flags of its
		// last segment, which is inside the write now: no PSH.
		t.pk.TCP.Flags = flagText(t.flags &^ tcpwire.FlagPSH)
	}
	b.tail = &writeTail{pk, flags}
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
func (b *builder) gather(p *capture.FlowPacket, pk *parser.Packet) bool {
	u := b.burst
	if b.opts.Strict || u == nil || b.events[len(b.events)-1] != u.ev || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 {
		return false
	}
	x, y := u.pkt.TCP, pk.TCP
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
	u.ev.at = p.Time
	if b.opts.Frames {
		u.ev.frames = append(u.ev.frames, p.Index)
	}
	b.count.gathered++
	u.ev.comments = append(u.ev.comments[:u.base:u.base], gatheredNote(u.segs))
	u.ev.gathered = u.segs
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

func gatheredNote(n int) string {
	if n >= 2 && n < len(gatheredNotes) {
		return gatheredNotes[n]
	}
	return fmt.Sprintf(gatheredFmt, n)
}

// convert builds the script packet for p with the numbers the reference
// reads: inbound sequence numbers relative to the remote ISN and acks to
// the local ISN, outbound the other way round.
func (b *builder) convert(p *capture.FlowPacket, in bool) *parser.Packet {
	pk := b.convertPacket(p, in)
	if b.opts.Frames && p.Index > 0 { // a made-up packet has no frame
		if b.frameOf == nil {
			b.frameOf = map[*parser.Packet]int{}
		}
		b.frameOf[pk] = p.Index
	}
	return pk
}

func (b *builder) convertPacket(p *capture.FlowPacket, in bool) *parser.Packet {
	seqBase, ackBase := b.localISN, b.remoteISN
	dir := parser.Outbound
	if in {
		seqBase, ackBase = b.remoteISN, b.localISN
		dir = parser.Inbound
	}
	// One allocation for the packet's nodes: a capture has millions.
	n := b.pkSlab.new()
	tcp := &n.tcp
	*tcp = parser.TCP{
		Flags: flagText(p.Flags),
		Seq:   rel(p.Seq, seqBase),
		Len:   uint32(p.PayloadLen),
	}
	if p.Flags.Has(tcpwire.FlagACK) {
		n.ack = rel(p.Ack, ackBase)
		tcp.Ack = &n.ack
	}
	if in || b.opts.Strict {
		n.win = uint32(p.Window)
		tcp.Win = &n.win
	}
	if p.Flags.Has(tcpwire.FlagURG) {
		u := uint32(p.Urgent)
		tcp.Urg = &u
	}
	pk := &n.pk
	*pk = parser.Packet{Dir: dir, TCP: tcp}
	if ecn := p.TOS & 3; in && ecn != 0 {
		pk.IPInfo = &parser.IPInfo{TOS: [...]string{"", "ect1", "ect0", "ce"}[ecn]}
	}
	raw := p.RawOptions()
	if len(raw) == 0 {
		return pk
	}
	if !in && !b.exactOptions(p) {
		tcp.Options = &parser.TCPOptions{Any: true}
		return pk
	}
	if opts, ok := b.tsOnly(raw); ok {
		tcp.Options = opts
		if in {
			b.checkEcr(opts.List, p.Flags.Has(tcpwire.FlagACK))
		}
		return pk
	}
	list, notes := convertOptions(raw, ackBase)
	if len(notes) > 0 {
		b.count.unknownOpt++
		b.comment(notes...)
	}
	if !in && b.wildCookies(list) {
		tcp.Options = &parser.TCPOptions{Any: true}
		return pk
	}
	if len(list) > 0 {
		tcp.Options = &parser.TCPOptions{List: list}
	}
	if in {
		b.checkEcr(list, p.Flags.Has(tcpwire.FlagACK))
	}
	return pk
}

// wildCookies writes the Fast Open cookies of an outbound option list as
// `*`: the captured host's secret key made them, which no replay has. In
// packetdrill's language, which has no `*`, it reports that the whole list
// must be left unchecked instead.
func (b *builder) wildCookies(list []*parser.TCPOption) (unchecked bool) {
	for i, o := range list {
		if (o.Kind != parser.OptFastOpen && o.Kind != parser.OptFastOpenExp) || o.Cookie == "" {
			continue
		}
		if b.opts.Exact {
			return true
		}
		w := *o // the node may be shared (see tcpopts.go)
		w.Cookie, w.Wild = "", w.Wild|parser.WildCookie
		list[i] = &w
	}
	return false
}

// packetNodes holds the nodes of one script packet.
type packetNodes struct {
	pk       parser.Packet
	tcp      parser.TCP
	ack, win uint32
}

// flagTexts caches the text of each combination of the low nine flags:
// every packet needs one.
var flagTexts = func() (t [1 << 9]string) {
	for i := range t {
		t[i] = tcpwire.Flags(i).String()
	}
	return t
}()

func flagText(f tcpwire.Flags) string {
	if int(f) < len(flagTexts) {
		return flagTexts[f]
	}
	return f.String()
}

// noteTSVal records the TS val of an outbound expectation written with
// exact options: the reference maps inbound TS ecr values through the vals
// of the outbound packets it has matched.
func (b *builder) noteTSVal(pk *parser.Packet) {
	if pk.TCP.Options == nil {
		return
	}
	for _, o := range pk.TCP.Options.List {
		if o.Kind == parser.OptTimestamp {
			b.tsVals[o.TSVal] = true
		}
	}
}

// checkEcr notes an inbound TS ecr that echoes no outbound TS val written
// before it: the reference then needs --tcp_ts_ecr_scaled to map it.
func (b *builder) checkEcr(list []*parser.TCPOption, ack bool) {
	for _, o := range list {
		if o.Kind == parser.OptTimestamp && ack && !b.tsVals[o.TSEcr] {
			b.scaleEcr = true
		}
	}
}

// tolerance is the replay's timing tolerance (Options.ToleranceUsecs).
func (b *builder) tolerance() time.Duration {
	return time.Duration(b.opts.ToleranceUsecs) * time.Microsecond
}

// fmtDur prints a duration in seconds with microseconds.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.6f s", d.Seconds())
}
