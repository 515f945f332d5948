package synth

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Result is the synthesis of one flow: its script, or why there is none.
type Result struct {
	Flow   *capture.Flow
	Script *parser.Script // nil when Err is set
	Err    error
}

// File reads a whole capture from r (name is used in messages and headers)
// and synthesises every TCP connection in it. flows configures the flow
// tracker (--local/--remote). On a damaged capture it returns the results
// for the flows read before the damage together with the capture's error
// (errors.Is(err, capture.ErrDamaged)). Per-flow failures are in the
// results, not in err.
func File(name string, r io.Reader, flows capture.FlowOptions, opts Options) ([]Result, error) {
	fl, _, err := capture.ReadFlows(r, name, flows)
	if opts.Source == "" {
		opts.Source = filepath.Base(name)
	}
	out := make([]Result, 0, len(fl))
	for _, f := range fl {
		s, serr := Synthesize(f, opts)
		out = append(out, Result{Flow: f, Script: s, Err: serr})
	}
	return out, err
}

// Stream synthesises the TCP connections of a capture as they end, calling
// fn with each (in the order they end, not in flow order), so that memory
// grows with the connections open at a time rather than with the file. It
// stops at the first error fn returns. flows.Done is replaced. A damaged
// capture yields the flows before the damage and then its error.
//
// fn must not keep r.Script or r.Flow.Packets, nor anything they point
// to: once fn returns, their memory is reused for a later connection
// (r.Flow.Packets is then nil). Print or copy what it needs inside fn; the
// rest of r.Flow stays valid.
func Stream(name string, r io.Reader, flows capture.FlowOptions, opts Options, fn func(Result) error) error {
	if opts.Source == "" {
		opts.Source = filepath.Base(name)
	}
	rd, err := capture.NewReader(r, name)
	if err != nil {
		return err
	}
	rd.ICMPErrors = true
	var fnErr error
	var tr *capture.Tracker
	var mem nodes
	flows.Done = func(f *capture.Flow) {
		if fnErr != nil {
			return
		}
		s, serr := synthesize(f, opts, &mem)
		fnErr = fn(Result{Flow: f, Script: s, Err: serr})
		tr.Release(f)
		mem.reset()
	}
	tr = capture.NewTracker(flows)
	for fnErr == nil {
		p, err := rd.Next()
		if err != nil {
			tr.Close()
			if fnErr != nil {
				return fnErr
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
		tr.Add(p)
	}
	return fnErr
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
		Remote: r.Flow.RemoteEndpoint().String(), Packets: len(r.Flow.Packets), Status: "ok"}
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
