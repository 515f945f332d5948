package replay

// This file is the engine's main loop: one timeline for the whole script,
// events run in order at their scheduled times, relative times anchored as
// the reference anchors them, and every check's failure turned into a
// *parser.Error naming the line.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Env is what a run needs from the outside world.
type Env struct {
	Device Device // packets to and from the kernel under test
	Clock  Clock  // the only source of time

	// syscalls overrides or adds system call implementations by name
	// (tests use fakes); the built-in ones are used otherwise.
	syscalls map[string]syscallFunc

	Stdout, Stderr io.Writer // where commands and warnings write; nil discards

	// Host is the machine's side (closing fds, ephemeral ports, thread
	// states); nil means the Linux host this process runs on.
	Host Host

	// Dir is the working directory of backquoted commands; "" means the
	// folder of the script file, as the reference is run.
	Dir string

	// Code runs the `%{ }%` blocks; nil makes a script with such a block
	// fail at that block with a clear message.
	Code CodeRunner

	// Capture, if set, records every packet injected and sniffed.
	Capture *PcapWriter

	// Timing, if set, receives how far from its scheduled time each timed
	// event happened (for statistics; checks are not affected).
	Timing func(TimingSample)

	// AfterInit, if set, runs once --init_scripts and the script's init
	// command have run, before its first event: `verify --mutate` changes
	// a setting of the namespace there, where the script's own settings
	// cannot undo it. An error stops the run.
	AfterInit func() error
}

// TimingSample is one timed event's offset from its scheduled time:
// positive when late. For a time range it is the distance outside the range
// (0 inside it).
type TimingSample struct {
	Line   int
	What   string // "inbound packet", "outbound packet", "system call start", ...
	Offset time.Duration
}

// CodeRunner runs the `%{ }%` blocks of a script the way the reference
// does: a snapshot of the socket under test at each block's time, then the
// code of every block after the script ends.
type CodeRunner interface {
	Snapshot(ctx context.Context, code *parser.Code, liveFD int) error
	Finish(ctx context.Context) error
}

// eventKind is what an event does.
type eventKind int

const (
	evInbound eventKind = iota
	evOutbound
	evSyscall
	evCommand
	evCode
)

// eventState is an event with its times resolved, in script microseconds.
type eventState struct {
	ev    *parser.Event
	index int // in the script's events
	// earliestUsecs is the earliest an outbound line's packet may come
	// under --pcap2pkt (see adjustRelativeTimes); startUsecs otherwise.
	earliestUsecs int64
	kind          eventKind
	timeKind      parser.TimeKind
	startUsecs    int64 // when the event should happen
	endUsecs      int64 // end of a time range
	offsetUsecs   int64 // what a relative time was relative to
	sysEndUsecs   int64 // when a blocking call should return
}

func (s *eventState) isInbound() bool { return s.kind == evInbound }

// engine is the state of one run.
type engine struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	cfg    *Config
	env    *Env
	host   Host
	script *parser.Script
	eval   *evaluator
	dir    string

	// mu is held by whoever changes the state below: the main loop while
	// it is not waiting, and a system call's goroutine around its call.
	mu sync.Mutex

	liveStart   time.Time
	scriptStart int64
	cur, last   *eventState
	numEvents   int

	fds           fdTable
	underTest     *socket
	nextEphemeral int // a cached port, -1 once used

	blockingCall *callState
	asyncErr     error // a failure found off the main loop

	// With --pcap2pkt (see engine_stream.go): the kernel's packets as a
	// goroutine read them, the reader's stop, and the rest of segments
	// that a line took only in part.
	outq *outQueue
	// lineOutAt: when the kernel sent the latest packet the outbound line
	// being run took (zero: none yet), see noteLineOut.
	lineOutAt time.Time
	stopRead  context.CancelFunc
	leftover  []*sniffed
	acked     ackProgress // what the kernel has acknowledged so far
	// dataIn: the peer's data segments as injected; kernelAt: when the
	// kernel sent each of its packets (--pcap2pkt), for dsackOwed.
	dataIn   []injectedData
	kernelAt []time.Time
	// pending: the ACK lines the run went past before the kernel met
	// them (engine_receiver.go's deferAck).
	pending []*pendingAck
	// Where the kernel's sequence space has got to (sndNxt, from its
	// packets) and where the script's outbound lines have (lineNxt).
	sndNxt, lineNxt       tcpwire.Seq
	sndNxtSet, lineNxtSet bool
	// The peer's side (engine_peer.go): what the kernel sent and when,
	// what the injected lines acknowledged, and the lines injected ahead
	// of the event the run is at.
	sent     []transmission
	sentHigh seqHigh      // the highest sequence number in sent
	sentIdx  seqIndex     // sent by sequence block
	signals  []peerSignal // injected ACKs, for lossSignal and raceRetransmission
	peer     peerState    // what the lines, as written, acknowledged
	told     peerState    // what the packets injected acknowledged
	// lastSentSeen is the latest kernel transmission an injected line
	// answered: what a line that answers nothing new has received.
	lastSentSeen time.Time
	// lastInjected is when the peer last injected a packet (--pcap2pkt).
	lastInjected time.Time
	// lost: the transmissions the captured peer never got (lostDone: worked
	// out), see engine_receiver.go.
	lost     []lostRange
	lostDone bool
	// deliv: the parts of sent's transmissions the peer got, in order;
	// delivEnd[i]: how many of them the first i+1 transmissions make
	// (delivered extends them as sent grows). sentData: sent holds data.
	deliv    []deliveredRange
	delivEnd []int
	sentData bool
	// delivUnion: the bytes of deliv's first delivUnionN parts, merged
	// (deliveredView); delivUnsorted: a part of deliv was sent before the
	// one before it.
	delivUnion    []seqRange
	delivUnionN   int
	delivUnsorted bool
	// pathSlack is how far from its line new data may be sent (see
	// pathSlackUsecs; pathSlackSet: worked out).
	pathSlack    int64
	pathSlackSet bool
	// peerShift is the window scale of the peer's SYN (0: none), for
	// asReceived's windows; peerMSS its MSS (0: none), for heldOneAck.
	peerShift, peerMSS int
	// scriptTxs: the script's transmissions; scriptSeen: for each inbound
	// line (event index), how many of them its peer had got some answer
	// to (see lostInCapture, asWritten).
	scriptTxs  []txLine
	scriptAcks []ackLine // the script's acknowledging inbound lines
	scriptSeen map[int]int
	// scriptAt: each event's time in the capture (see lostInCapture,
	// verifyPace); lastNewLine: the outbound line with the highest new
	// data, or -1; paceJudged: the kernel sends more data than its peer.
	scriptAt    []int64
	lastNewLine int
	// earliestAt: each event's earliest time (eventState.earliestUsecs),
	// by index, for releasedAfter's lines; releasedFrom[i]: the event
	// line i's earliest time counts from, or -1 (see releasedAfter).
	earliestAt   []int64
	releasedFrom []int
	// firstHole: the first of signals that showed a hole (holeSeen: one
	// did), for heldOneAck.
	firstHole  int
	holeSeen   bool
	paceJudged bool
	// kernelCover, scriptCover: what asWritten last compared.
	kernelCover, scriptCover coverage
	// dsackDue: copies the kernel sent of bytes the script sends fewer
	// times, which the peer has yet to report as duplicates; dsackScan:
	// how many of sent's transmissions dsackFor has looked at.
	dsackDue  []seqRange
	dsackScan int
	// peerDSACKs: some inbound line of the script has a D-SACK (see
	// lostInCapture).
	peerDSACKs bool
	// preempted: the retransmission lines (by event index) that the
	// peer's ACK may make needless (notePreempted); racedWait: the bytes
	// of the one the run waits for, while racedWaitSet.
	preempted    map[int]bool
	racedWait    seqRange
	racedWaitSet bool
	// scriptAnchor: for each anchored inbound line that answers something
	// (event index), the script's transmission (scriptTxs index) it is
	// anchored to. answers: the lines that answer a retransmission, and
	// answersScan: how many of sent's transmissions armAnswers has looked
	// at (engine_fifo.go). partialTold: what the ACKs injected for lines
	// still to come (partial ACKs) reported.
	scriptAnchor map[int]int
	answers      []retransAnswer
	answersScan  int
	partialTold  peerState
	// peerTS: the latest TS val the injected peer sent (peerTSSet: one).
	peerTS    uint32
	peerTSSet bool

	// ahead: when each line injected ahead of the event the run was at
	// went in (live microseconds), by event index; calledAhead: the calls
	// made before an inbound line after them went in ahead (callsAhead).
	ahead aheadSet
	// aheadScan is where aheadLineFrom(from) last stopped (see there).
	aheadScan   struct{ from, resume int }
	calledAhead map[int]aheadCall
	started     []startedEvent // when each event started, in order

	initDone bool
	// shellSince is when the run's first shell command started (zero if
	// none ran): see removeRestoreScript.
	shellSince time.Time
}

// Run runs a parsed script against the kernel reached through env.Device.
// cfg holds the command line's options; the script's own options are
// applied on a copy. It returns nil when every event matched, and a
// *parser.Error naming the line otherwise.
func Run(ctx context.Context, s *parser.Script, cfg *Config, env *Env) error {
	if s == nil || cfg == nil || env == nil {
		return errors.New("replay: Run needs a script, a config and an env")
	}
	cfg, err := cfg.Resolve(s)
	if err != nil {
		return err
	}
	if cfg.DryRun {
		return nil
	}
	if env.Device == nil || env.Clock == nil {
		return errors.New("replay: Run needs env.Device and env.Clock")
	}
	e := &engine{cfg: cfg, env: env, script: s, nextEphemeral: -1}
	e.host = env.Host
	if e.host == nil {
		h := newSystemHost()
		defer h.release()
		e.host = h
	}
	if e.env.Stdout == nil || e.env.Stderr == nil {
		cp := *env
		if cp.Stdout == nil {
			cp.Stdout = io.Discard
		}
		if cp.Stderr == nil {
			cp.Stderr = io.Discard
		}
		e.env = &cp
	}
	e.dir = env.Dir
	if e.dir == "" {
		e.dir = filepath.Dir(s.File)
	}
	e.eval = &evaluator{Defines: cfg.Defines}
	e.ctx, e.cancel = context.WithCancelCause(ctx)
	defer e.cancel(nil)
	err = e.run()
	if !e.shellSince.IsZero() {
		removeRestoreScript(e.shellSince)
	}
	return err
}

// run is the interpreter loop (the reference's run_script).
func (e *engine) run() error {
	e.mu.Lock()
	defer e.mu.Unlock()

	if err := e.runInitScripts(); err != nil {
		return err
	}
	if e.script.Init != nil {
		if err := e.runShell(e.script.Init.Text, nil); err != nil {
			return &parser.Error{File: e.script.File, Pos: lineOf(e.script.Init.Pos), Msg: "error executing init command: " + err.Error(), Err: err}
		}
		e.initDone = true
	}
	if e.env.AfterInit != nil {
		if err := e.env.AfterInit(); err != nil {
			pe := &parser.Error{File: e.script.File, Msg: "after the init command: " + err.Error(), Err: err}
			if e.script.Init != nil {
				pe.Pos = lineOf(e.script.Init.Pos)
			}
			return e.cleanupAfter(pe)
		}
	}
	port, err := e.host.EphemeralPort(e.cfg.socketIPv6())
	if err != nil {
		return e.cleanupAfter(fmt.Errorf("replay: picking an ephemeral port: %w", err))
	}
	e.nextEphemeral = int(port)

	if e.cfg.Extended {
		// Worked out before the clock starts: on a script of thousands of
		// lines it takes milliseconds, which the first injected ACK (or
		// the first data packet checked) would otherwise wait.
		e.lostInCapture()
		e.pathSlackUsecs()
	}
	e.liveStart = e.host.StartTime(e.env.Clock)
	if e.cfg.Extended {
		var rctx context.Context
		rctx, e.stopRead = context.WithCancel(e.ctx)
		e.startReader(rctx)
		defer e.stopReader()
	}
	for i, ev := range e.script.Events {
		es, serr := e.nextEvent(i, ev)
		if serr != nil {
			return e.cleanupAfter(serr)
		}
		e.adjustRelativeTimes(es)
		// Injected while an outbound line before it waited, or made
		// before a line after it went in ahead (callsAhead).
		at, done := e.ahead.get(i)
		var aerr *eventError
		if c, ok := e.calledAhead[i]; ok {
			at, aerr, done = c.usecs, c.err, true
		}
		if done {
			es.startUsecs = at + e.scriptStart
			e.started = append(e.started, startedEvent{es.ev.Pos, at})
			if aerr != nil {
				if werr := e.report(es, aerr); werr != nil {
					return e.cleanupAfter(werr)
				}
			}
			e.numEvents++
			continue
		}
		if pes, perr := e.settleAcks(es, false); perr != nil {
			if werr := e.report(pes, perr); werr != nil {
				return e.cleanupAfter(werr)
			}
		}
		if e.outq != nil {
			e.started = append(e.started, startedEvent{es.ev.Pos, max(e.nowUsecs(), es.startUsecs-e.scriptStart)})
		}
		if err := e.runEvent(es); err != nil {
			if aerr := e.asyncErr; aerr != nil {
				return e.cleanupAfter(aerr)
			}
			var ee *eventError
			if pes, perr := e.settleAcks(nil, true); errors.As(perr, &ee) && ee.kind == packetError {
				// An ACK line before it failed first.
				es, err = pes, perr
			}
			if werr := e.report(es, err); werr != nil {
				return e.cleanupAfter(werr)
			}
		}
		if aerr := e.asyncErr; aerr != nil {
			return e.cleanupAfter(aerr)
		}
		e.numEvents++
	}
	if pes, perr := e.settleAcks(nil, false); perr != nil {
		if werr := e.report(pes, perr); werr != nil {
			return e.cleanupAfter(werr)
		}
	}
	if !e.awaitIdle(idleWait) {
		if aerr := e.asyncErr; aerr != nil {
			return e.cleanupAfter(aerr)
		}
		cs := e.blockingCall
		return e.cleanupAfter(&parser.Error{File: e.script.File, Pos: lineOf(cs.line), Msg: "runtime error: exiting while a blocking system call is in progress"})
	}
	if aerr := e.asyncErr; aerr != nil {
		return e.cleanupAfter(aerr)
	}
	if err := e.expectNothing(); err != nil {
		return e.cleanupAfter(err)
	}
	if err := e.runCleanupCommand(); err != nil {
		return err
	}
	if e.env.Code != nil {
		if err := e.env.Code.Finish(e.ctx); err != nil {
			e.closeAll()
			return &parser.Error{File: e.script.File, Msg: "error executing code: " + err.Error(), Err: err}
		}
	}
	return e.closeAll()
}

// cleanupAfter runs the cleanup command after a failure, as the reference's
// die() does, and returns the failure. It also closes the live fds and
// resets the connections (the reference's process exit does that), so that
// a later run in the same namespace starts clean.
func (e *engine) cleanupAfter(err error) error {
	cerr := e.runCleanupCommand()
	e.closeAll()
	if cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// runCleanupCommand runs the script's final command, if the init command
// ran (the reference runs the cleanup only then).
func (e *engine) runCleanupCommand() error {
	c := e.script.Cleanup
	if c == nil || !e.initDone {
		return nil
	}
	e.initDone = false
	if err := e.runShell(c.Text, nil); err != nil {
		return &parser.Error{File: e.script.File, Pos: lineOf(c.Pos), Msg: "error executing cleanup command: " + err.Error(), Err: err}
	}
	return nil
}

// nextEvent classifies event i and checks the script-level rules of the
// reference's get_next_event.
func (e *engine) nextEvent(i int, ev *parser.Event) (*eventState, error) {
	es := &eventState{ev: ev, index: i, timeKind: ev.Time.Kind, startUsecs: ev.Time.Usecs, endUsecs: ev.Time.End, earliestUsecs: ev.Time.Usecs}
	switch a := ev.Action.(type) {
	case *parser.Packet:
		es.kind = evInbound
		if a.Dir == parser.Outbound {
			es.kind = evOutbound
		}
	case *parser.Syscall:
		es.kind = evSyscall
		if a.End != nil {
			es.sysEndUsecs = a.End.Usecs
		}
	case *parser.Command:
		es.kind = evCommand
	case *parser.Code:
		es.kind = evCode
	default:
		return nil, &parser.Error{File: e.script.File, Pos: lineOf(ev.Pos), Msg: fmt.Sprintf("unknown event %T", ev.Action)}
	}
	if es.timeKind == parser.TimeAny || es.timeKind == parser.TimeAbsoluteRange || es.timeKind == parser.TimeRelativeRange {
		if es.kind != evOutbound {
			return nil, &parser.Error{File: e.script.File, Pos: lineOf(ev.Pos), Msg: "event time * or a time range can only be used with outbound packets"}
		}
	}
	if i == 0 {
		e.scriptStart = es.startUsecs
		if es.startUsecs != 0 {
			return nil, &parser.Error{File: e.script.File, Pos: lineOf(ev.Pos), Msg: "first event should be at time 0"}
		}
	} else {
		e.last = e.cur
	}
	e.cur = es
	if e.last != nil && isAbsolute(e.last.timeKind) && isAbsolute(es.timeKind) && es.startUsecs < e.last.startUsecs {
		return nil, &parser.Error{File: e.script.File, Pos: lineOf(ev.Pos), Msg: fmt.Sprintf("time goes backward in script from %d usec to %d usec", e.last.startUsecs, es.startUsecs)}
	}
	return es, nil
}

func isAbsolute(k parser.TimeKind) bool {
	return k == parser.TimeAbsolute || k == parser.TimeAbsoluteRange
}

// adjustRelativeTimes anchors relative and `*` times. A relative time
// counts from when the previous event finished, except between two inbound
// packets, which count from the previous one's scheduled time so that CPU
// overhead does not accumulate (the reference's rule).
func (e *engine) adjustRelativeTimes(es *eventState) {
	if es.timeKind != parser.TimeAny && es.timeKind != parser.TimeRelative && es.timeKind != parser.TimeRelativeRange {
		return
	}
	var offset int64
	switch {
	case e.last != nil && e.last.isInbound() && es.isInbound():
		offset = e.last.startUsecs
	case e.cfg.Extended && e.last != nil && e.last.kind == evOutbound && !e.lineOutAt.IsZero():
		// Under --pcap2pkt, after an outbound line: from when the kernel
		// sent its packet (the capture's time is the packet's), not from
		// when the run had read it. Counted from the latter, a train of
		// writes each made a little after the kernel sent the data of
		// the one before (a server writing a response in pieces as its
		// application produces them) lost the run's read latency at
		// every write: the writes, and the data, came 2 ms behind the
		// capture's by the 25th write of traffic6's lossy 1 MiB
		// download, and BBR, which measured the application's pace,
		// took the path for slower. Up to readLagUsecs: a line met by a
		// packet the kernel sent long before (while the run waited for an
		// earlier line) leaves the run behind its schedule, and the event
		// after it counts from then, as before, less that much.
		now := e.nowUsecs()
		offset = max(now-readLagUsecs, min(now, e.liveUsecs(e.lineOutAt)))
	default:
		offset = e.nowUsecs()
	}
	es.offsetUsecs = offset
	es.startUsecs += offset
	if es.timeKind == parser.TimeRelativeRange {
		es.endUsecs += offset
	}
	if es.timeKind == parser.TimeRelative && es.kind == evSyscall {
		es.sysEndUsecs += offset
	}
	if e.cfg.Extended && e.last != nil && es.timeKind != parser.TimeAny {
		// The previous event happened between its earliest time and when
		// it was done: counted from the former, this one may come that
		// much earlier (the kernel sent it while the run waited for the
		// one before, ahead of the engine).
		es.earliestUsecs = min(es.startUsecs, e.last.earliestUsecs+es.ev.Time.Usecs)
		if j, ok := e.releasedAfter(es.index); ok {
			es.earliestUsecs = min(es.earliestUsecs, e.earliestAt[j]+e.scriptAt[es.index]-e.scriptAt[j])
		}
	}
	if e.cfg.Extended {
		if e.earliestAt == nil {
			e.earliestAt = make([]int64, len(e.script.Events))
		}
		e.earliestAt[es.index] = es.earliestUsecs
	}
}

// readLagUsecs is the most of the time between the kernel's sending a
// packet and the run's having read it that the event after the packet's
// line makes up for (adjustRelativeTimes): the run reads a packet 50-300
// µs after the kernel sent it when it is waiting for it.
const readLagUsecs = 1000

// nowUsecs is the live time since the start, in microseconds.
func (e *engine) nowUsecs() int64 {
	return e.env.Clock.Now().Sub(e.liveStart).Microseconds()
}

// liveTime is the live instant of a script time.
func (e *engine) liveTime(scriptUsecs int64) time.Time {
	return e.liveStart.Add(time.Duration(scriptUsecs-e.scriptStart) * time.Microsecond)
}

// lastEventUsecs is the previous event's time, or noTime.
func (e *engine) lastEventUsecs() int64 {
	if e.last == nil {
		return noTime
	}
	return e.last.startUsecs
}

// noTime marks "no previous event" for the dynamic tolerance.
const noTime = -1 << 62

// runEvent runs one event. The caller holds e.mu.
func (e *engine) runEvent(es *eventState) error {
	switch a := es.ev.Action.(type) {
	case *parser.Packet:
		if err := e.runPacket(es, a); err != nil {
			return err
		}
	case *parser.Syscall:
		if err := e.runSyscall(es, a); err != nil {
			return err
		}
	case *parser.Command:
		if err := e.waitForEvent(es); err != nil {
			return err
		}
		if err := e.runShell(a.Text, es); err != nil {
			return &eventError{kind: fatalError, msg: fmt.Sprintf("error executing `%s` command: %v", a.Text, err), err: err}
		}
	case *parser.Code:
		if err := e.waitForEvent(es); err != nil {
			return err
		}
		if e.env.Code == nil {
			return fatalf("%%{ }%% code blocks are not supported by this build (they need a python3 runner)")
		}
		if e.underTest == nil {
			return fatalf("no socket to use for code")
		}
		if err := e.env.Code.Snapshot(e.ctx, a, e.underTest.fd.liveFD); err != nil {
			return &eventError{kind: fatalError, msg: err.Error(), err: err}
		}
	}
	return nil
}

// report turns an event's failure into a *parser.Error, or prints it as a
// warning and returns nil under --non_fatal.
func (e *engine) report(es *eventState, err error) error {
	var ee *eventError
	if !errors.As(err, &ee) {
		ee = &eventError{kind: fatalError, msg: err.Error(), err: err}
	}
	se := &parser.Error{File: e.script.File, Pos: lineOf(es.ev.Pos), Msg: ee.msg, Detail: ee.detail, Err: ee.err}
	if se.Detail == "" {
		line, _, _ := strings.Cut(parser.FormatEvent(es.ev), "\n")
		se.Detail = "  script line: " + line
	}
	if (ee.kind == packetError && e.cfg.NonFatalPacket) || (ee.kind == syscallError && e.cfg.NonFatalSyscall) {
		fmt.Fprintf(e.env.Stderr, "%s (warning, continuing: --non_fatal)\n", se.Error())
		return nil
	}
	return se
}

// failAsync records a failure found on a blocking call's goroutine and
// stops the run, unless --non_fatal makes it a warning. The caller holds e.mu.
func (e *engine) failAsync(es *eventState, err *eventError) {
	if werr := e.report(es, err); werr != nil && e.asyncErr == nil {
		e.asyncErr = werr
		e.cancel(werr)
	}
}

// waitForEvent sleeps until the event's time and checks that it is on
// time. The caller holds e.mu; it is released while sleeping.
func (e *engine) waitForEvent(es *eventState) *eventError {
	if e.numEvents == 0 {
		return nil
	}
	target := e.liveTime(es.startUsecs)
	e.mu.Unlock()
	err := e.env.Clock.SleepUntil(e.ctx, target)
	e.mu.Lock()
	if err != nil {
		return &eventError{kind: fatalError, msg: "run ended: " + context.Cause(e.ctx).Error(), err: err}
	}
	terr := e.verifyTime(es.timeKind, es.startUsecs, es.endUsecs, e.nowUsecs(), e.lastEventUsecs(), describeEvent(es))
	if terr != nil {
		terr.kind = fatalError
	}
	return terr
}

func describeEvent(es *eventState) string {
	switch es.kind {
	case evInbound:
		return "inbound packet"
	case evOutbound:
		return "outbound packet"
	case evSyscall:
		return "system call start"
	case evCommand:
		return "command"
	}
	return "data collection for code"
}

// verifyTime checks that something happened (live, script microseconds
// since the start) when the script said, within the tolerance: the larger
// of --tolerance_usecs and --tolerance_percent of the time since the
// previous event.
func (e *engine) verifyTime(kind parser.TimeKind, scriptUsecs, scriptEnd, live, lastUsecs int64, what string) *eventError {
	if kind == parser.TimeAny {
		return nil
	}
	expected := scriptUsecs - e.scriptStart
	expectedEnd := scriptEnd - e.scriptStart
	tol := e.cfg.ToleranceUsecs
	if lastUsecs != noTime {
		if dyn := int64(e.cfg.TolerancePercent / 100 * float64(scriptUsecs-lastUsecs)); dyn > tol {
			tol = dyn
		}
	}
	lo, hi := expected, expected
	defer func() {
		if e.env.Timing == nil || e.cur == nil {
			return
		}
		off := int64(0)
		if live > hi {
			off = live - hi
		} else if live < lo {
			off = live - lo
		}
		e.env.Timing(TimingSample{Line: e.cur.ev.Pos.Line, What: what, Offset: time.Duration(off) * time.Microsecond})
	}()
	where := fmt.Sprintf("at %.3f s", secs(expected))
	if kind == parser.TimeAbsoluteRange || kind == parser.TimeRelativeRange {
		hi = expectedEnd
		where = fmt.Sprintf("in %.3f~%.3f s", secs(expected), secs(expectedEnd))
	}
	if live >= lo-tol && live <= hi+tol {
		return nil
	}
	off := fmt.Sprintf("%.3f ms late", float64(live-hi)/1000)
	if live < lo-tol {
		off = fmt.Sprintf("%.3f ms early", float64(lo-live)/1000)
	}
	return &eventError{kind: packetError, msg: fmt.Sprintf("timing error: expected %s %s (±%s ms), happened at %.3f s: %s",
		what, where, trimFloat(float64(tol)/1000), secs(live), off)}
}

// secs converts microseconds to seconds.
func secs(usecs int64) float64 { return float64(usecs) / 1e6 }

// trimFloat prints a millisecond figure without needless zeros.
func trimFloat(f float64) string {
	s := fmt.Sprintf("%.3f", f)
	for len(s) > 1 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}
