package synth

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Result is the synthesis of one flow: its script, or why there is none.
type Result struct {
	Flow   *capture.Flow
	Script *parser.Script // nil when Err is set, and from Stream (see Print)
	Err    error
	// print writes the script of a Stream result, which has no tree.
	print func(io.Writer) error
}

// Print writes the script's text, as parser.Print writes r.Script. A
// result of Stream or Scripts, which make no tree, can print its script
// once.
func (r Result) Print(w io.Writer) error {
	if r.print != nil {
		return r.print(w)
	}
	if r.Script == nil {
		return fmt.Errorf("flow %d: no script: %v", r.Flow.Index, r.Err)
	}
	return parser.Print(w, r.Script)
}

// printChunk is how many events of a long connection the results of
// Stream and Scripts print at a time: the tree of one chunk at a time
// exists, not the whole script's (a node set of about 340 bytes an event).
const printChunk = 4096

// printer returns the print function of a result without a tree, whose
// events b made: it renders and prints them a chunk at a time, once.
func (b *builder) printer() func(io.Writer) error {
	printed := false
	return func(w io.Writer) error {
		if printed {
			return fmt.Errorf("flow %d: its script was printed already", b.f.Index)
		}
		printed = true
		if b.stream != nil {
			return b.stream.printTo(w)
		}
		return b.render(printChunk, func(s *parser.Script) error { return parser.Print(w, s) })
	}
}

// File reads a whole capture from r (name is used in messages and headers)
// and synthesises every TCP connection in it, GOMAXPROCS at a time.
// flows configures the flow tracker (--local/--remote; a flow that
// flows.Keep rejects is not synthesised: its result's Err is ErrNotKept).
// On a damaged capture it returns the results for the flows read before
// the damage together with the capture's error (errors.Is(err,
// capture.ErrDamaged)). Per-flow failures are in the results, not in err.
func File(name string, r io.Reader, flows capture.FlowOptions, opts Options) ([]Result, error) {
	return file(name, r, flows, opts, true)
}

// Scripts is File without the trees: its results' Script is nil, and each
// prints its script with Print, once, a chunk of events at a time; their
// Flow.Packets are empty too (Flow.Count says how many there were), once
// the synthesis is done with them. For scripts that are only printed: a
// long connection's whole tree takes more memory than the rest of its
// synthesis (on a bulk transfer about 340 bytes a packet, against 150 for
// its events and 64 for its packets), and a connection of streamMin
// packets or more has its events printed as they are made, into a
// temporary file, so that its synthesis holds a window of them (see
// streamer).
func Scripts(name string, r io.Reader, flows capture.FlowOptions, opts Options) ([]Result, error) {
	return file(name, r, flows, opts, false)
}

// file is File, with trees or (Scripts) without.
func file(name string, r io.Reader, flows capture.FlowOptions, opts Options, trees bool) ([]Result, error) {
	fl, _, err := capture.ReadFlows(r, name, flows)
	if opts.Source == "" {
		opts.Source = filepath.Base(name)
	}
	out := make([]Result, len(fl))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(fl)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f := fl[i]
				out[i] = Result{Flow: f, Err: ErrNotKept}
				switch {
				case !f.KeptPackets():
				case trees:
					s, serr := Synthesize(f, opts)
					out[i] = Result{Flow: f, Script: s, Err: serr}
				default:
					b, serr := build(f, opts, new(nodes), func() { f.Packets = capture.Packets{} }, true)
					out[i] = Result{Flow: f, Err: serr}
					if serr == nil {
						out[i].print = b.printer()
					}
				}
			}
		}()
	}
	for i := range fl {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, err
}

// ErrNotKept is the error of a flow that File did not synthesise because
// FlowOptions.Keep rejected it.
var ErrNotKept = errors.New("not synthesised: not a connection asked for")

// Stream synthesises the TCP connections of a capture as they end, calling
// fn with each (in the order they end, not in flow order), so that memory
// grows with the connections open at a time rather than with the file. It
// stops at the first error fn returns. flows.Done is replaced. A damaged
// capture yields the flows before the damage and then its error.
//
// Flow tracking runs in a goroutine of its own (and, with more than one
// core, reading and decoding in another: capture.Reader.ReadAhead), and
// the connections that have ended are synthesised by a pool of GOMAXPROCS
// goroutines, while fn is called on the caller's goroutine, one
// connection at a time, in the order they ended.
//
// A result has no tree (r.Script is nil): fn prints the script with
// r.Print, which makes its tree a chunk of events at a time (or, for a
// long connection, whose events were printed into a temporary file as
// they were made, prints its head and copies that file). fn must do so
// before it returns, and not call r.Print after: its memory is reused for
// a later connection then. r.Flow.Packets is empty (their memory went back
// to the tracker once the script's events were made: r.Flow.Count says
// how many there were); the rest of r.Flow stays valid.
func Stream(name string, r io.Reader, flows capture.FlowOptions, opts Options, fn func(Result) error) error {
	if opts.Source == "" {
		opts.Source = filepath.Base(name)
	}
	rd, err := capture.NewReader(r, name)
	if err != nil {
		return err
	}
	rd.ICMPErrors = true
	// A job is one ended connection: a worker synthesises it into res,
	// and the caller's goroutine, taking jobs in the order they ended,
	// hands the result to fn and closes done, after which the worker
	// reuses the memory.
	type job struct {
		f    *capture.Flow
		res  chan Result
		done chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	// Both queues are short: a connection waiting in them keeps its
	// packets, and the reader waits when synthesis falls behind.
	jobs := make(chan *job, workers)
	order := make(chan *job, 2*workers)
	var stopped atomic.Bool // fn failed: read no further
	var tr *capture.Tracker
	flows.Done = func(f *capture.Flow) {
		if stopped.Load() {
			return
		}
		j := &job{f: f, res: make(chan Result, 1), done: make(chan struct{})}
		order <- j
		jobs <- j
	}
	tr = capture.NewTracker(flows)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mem nodes
			for j := range jobs {
				// The script holds nothing of the packets: they go back
				// once the builder is done with them, before the passes
				// over its events and the tree (the peak of a long
				// connection's memory), and its printing.
				b, serr := build(j.f, opts, &mem, func() { tr.Release(j.f) }, true)
				tr.Release(j.f) // if build failed before
				res := Result{Flow: j.f, Err: serr}
				if serr == nil {
					res.print = b.printer()
				}
				j.res <- res
				<-j.done
				if serr == nil && b.stream != nil {
					b.stream.sp.close() // if fn did not print it
				}
				mem.reset()
			}
		}()
	}
	if workers > 1 {
		rd.ReadAhead()
		defer rd.Stop()
	}
	var readErr error
	go func() {
		defer close(order)
		defer close(jobs)
		for !stopped.Load() {
			p, err := rd.Next()
			if err != nil {
				tr.Close()
				if err != io.EOF {
					readErr = err
				}
				return
			}
			tr.Add(p)
		}
	}()
	var fnErr error
	for j := range order {
		res := <-j.res
		if fnErr == nil {
			if fnErr = fn(res); fnErr != nil {
				stopped.Store(true)
			}
		}
		close(j.done)
	}
	wg.Wait()
	if fnErr != nil {
		return fnErr
	}
	return readErr
}

// FileName is a file name for flow f's script in an output directory:
// flow number, then local and remote endpoints.
func FileName(f *capture.Flow) string {
	clean := func(s string) string {
		return strings.NewReplacer("[", "", "]", "", ":", "_").Replace(s)
	}
	return fmt.Sprintf("flow%03d_%s_%s.pkt", f.Index, clean(f.LocalEndpoint().String()), clean(f.RemoteEndpoint().String()))
}

// IndexRow is one line of the index that goes with a folder of scripts:
// what it keeps of a Result once its script is written, so that a whole
// capture can be indexed without keeping its flows.
type IndexRow struct {
	Flow          int
	File          string // FileName, or "-" when the flow has no script
	Local, Remote string
	Packets       int
	Status        string // "ok" or the reason there is no script
}

// Row is r's line of the index.
func (r Result) Row() IndexRow {
	row := IndexRow{Flow: r.Flow.Index, File: FileName(r.Flow), Local: r.Flow.LocalEndpoint().String(),
		Remote: r.Flow.RemoteEndpoint().String(), Packets: r.Flow.Count, Status: "ok"}
	if r.Err != nil {
		row.File, row.Status = "-", r.Err.Error()
	}
	return row
}

// WriteIndex writes the index: a header line, then one tab-separated line
// per row (flow number, the script's file name or "-", local and remote
// endpoints, packets, and "ok" or the error).
func WriteIndex(w io.Writer, rows []IndexRow) error {
	if _, err := fmt.Fprintln(w, "flow\tfile\tlocal\tremote\tpackets\tstatus"); err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\n", r.Flow, r.File, r.Local, r.Remote, r.Packets, r.Status); err != nil {
			return err
		}
	}
	return nil
}

// NothingToCheck returns why the script s of flow f checks nothing that the
// local kernel does, or "": a script without one outbound packet passes
// whatever the kernel does (a listener whose SYNs a firewall dropped before
// they reached it, say), so a replay of it is no evidence.
func NothingToCheck(s *parser.Script, f *capture.Flow) string {
	for _, ev := range s.Events {
		if pk, ok := ev.Action.(*parser.Packet); ok && pk.Dir == parser.Outbound {
			return ""
		}
	}
	return fmt.Sprintf("the capture holds no packet that the local side %s sent, so no line checks its kernel "+
		"(its peer's packets may never have reached it: a firewall, a capture filter); name the other side with --local to check that one",
		f.LocalEndpoint())
}
