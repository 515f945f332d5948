package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/synth"
	"github.com/urfave/cli/v2"
)

// Flags shared by synthesis, flows and verify.
func flowFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "local", Usage: "the kernel under test is `IP[:PORT]` (wins over every heuristic)"},
		&cli.StringFlag{Name: "remote", Usage: "the remote peer is `IP[:PORT]`"},
	}
}

func synthFlags() []cli.Flag {
	return append(flowFlags(),
		flowFlag("synthesise the connection FLOW names (with -o DIR/, each it names); default: the only, or first complete, one"),
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `PATH`: a .pkt file, or a directory (existing, or ending in /) for one script per connection plus index.tsv"},
		&cli.BoolFlag{Name: "strict", Usage: "expect outbound windows and TCP options exactly as captured (without it: <...>)"},
		&cli.BoolFlag{Name: "frames", Usage: "end each packet line with a comment naming its frame number(s) in the capture, to find them in Wireshark"},
		&cli.BoolFlag{Name: "allow-partial", Usage: "synthesise connections whose capture starts mid-stream (a made-up handshake; may not replay)"},
		ccFlag(),
		exactFlag(),
	)
}

// exactFlag asks for a script in packetdrill's own language, without
// pcap2pkt's extensions and matching rules.
func exactFlag() cli.Flag {
	return &cli.BoolFlag{Name: "exact", Usage: "write packetdrill's own language (runs under packetdrill too): every segment boundary, PSH and FIN placement as captured, no --pcap2pkt rules"}
}

// ccFlag names the captured kernel's congestion control, which a capture
// does not show; without it a replay uses its namespace's default (the
// host's).
func ccFlag() cli.Flag {
	return &cli.StringFlag{Name: "congestion-control", Usage: "the captured kernel's congestion control `ALGORITHM` (e.g. cubic, bbr): the script sets it (default: the replaying host's)"}
}

// checkCC rejects a congestion control name that could not be a sysctl
// value (it goes into the script's shell line).
func checkCC(c *cli.Context) (string, error) {
	cc := c.String("congestion-control")
	for _, r := range cc {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "", usageError(c, fmt.Errorf("--congestion-control %q: not an algorithm name", cc), false)
		}
	}
	return cc, nil
}

func flowOptions(c *cli.Context) (capture.FlowOptions, error) {
	var o capture.FlowOptions
	for _, f := range []struct {
		name string
		dst  *capture.HostPort
	}{{"local", &o.Local}, {"remote", &o.Remote}} {
		if v := c.String(f.name); v != "" {
			hp, err := capture.ParseHostPort(v)
			if err != nil {
				return o, failf(exitInput, "--%s %q: %v", f.name, v, err)
			}
			*f.dst = hp
		}
	}
	return o, nil
}

// openFlows opens the capture named on the command line ("-" is stdin)
// and returns it with the flow options of the command's flags.
func openFlows(c *cli.Context, name string) (io.ReadCloser, capture.FlowOptions, error) {
	fo, err := flowOptions(c)
	if err != nil {
		return nil, fo, err
	}
	if name == "-" {
		return io.NopCloser(c.App.Reader), fo, nil
	}
	f, err := os.Open(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fo, failf(exitInput, "%s: no such file", name)
	case err != nil:
		return nil, fo, failf(exitInput, "%v", err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fo, failf(exitInput, "%s: is a directory, not a capture", name)
	}
	return f, fo, nil
}

// captureError turns a capture reading error into an exit code: a damaged
// file (its start still used) or one that is not a capture at all.
func captureError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, capture.ErrDamaged) {
		return withCode(exitDamaged, err)
	}
	return withCode(exitInput, err)
}

func synthAction(c *cli.Context) error {
	if c.NArg() > 0 {
		if msg := suggestCommand(c.App, c.Args().First()); msg != "" {
			return failf(exitInput, "%s", msg)
		}
	}
	if c.NArg() != 1 {
		if c.NArg() == 0 {
			fmt.Fprintf(c.App.ErrWriter, "usage:\n%s\n\nSee 'pcap2pkt --help' for flags, 'pcap2pkt help COMMAND' for a command.\n", indent(c.App.UsageText, "   "))
			return reported(exitInput)
		}
		return failf(exitInput, "want one capture, got %d arguments: %s (see 'pcap2pkt --help')", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	name := c.Args().First()
	cc, err := checkCC(c)
	if err != nil {
		return err
	}
	opts := synth.Options{Strict: c.Bool("strict"), Exact: c.Bool("exact"), AllowPartial: c.Bool("allow-partial"), CongestionControl: cc, Frames: c.Bool("frames")}
	out := c.String("output")
	if out != "" && isDirTarget(out) {
		return writeAll(c, name, opts, out)
	}
	results, rerr, err := synthesiseCapture(c, name, opts, "using", synth.Scripts)
	if err != nil {
		return err
	}

	r, err := pickFlow(c, results)
	if err != nil {
		return err
	}
	warnGuessed(c, []*capture.Flow{r.Flow})
	if out == "" {
		if err := r.Print(c.App.Writer); err != nil {
			return err
		}
	} else if err := writeAtomic(out, r.Print); err != nil {
		return withCode(exitInput, err)
	}
	return captureExit(rerr)
}

// synthesiseCapture reads the capture named on the command line and
// synthesises each of its connections with synthesise (synth.File, or
// synth.Scripts for scripts that are only printed). rerr is the capture's damage, if
// any (already reported: verb says what is done with the connections read
// before it); err ends the command.
func synthesiseCapture(c *cli.Context, name string, opts synth.Options, verb string,
	synthesise func(string, io.Reader, capture.FlowOptions, synth.Options) ([]synth.Result, error)) (results []synth.Result, rerr, err error) {
	sel, chosen, err := flowSelection(c)
	if err != nil {
		return nil, nil, err
	}
	in, fo, err := openFlows(c, name)
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	if chosen {
		// The others are only counted: they keep no packets and are not
		// synthesised.
		fo.Keep = sel.matches
	}
	src, stop := withProgress(in, name, c.App.ErrWriter)
	results, rerr = synthesise(name, src, fo, opts)
	stop()
	if rerr != nil && !errors.Is(rerr, capture.ErrDamaged) {
		return nil, nil, captureError(rerr)
	}
	if rerr != nil {
		fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: %v (%s the %d connection(s) read before it)\n", rerr, verb, len(results))
	}
	if len(results) == 0 {
		return nil, nil, withCode(max(exitInput, codeOf(rerr)), noTCP(c, name, nil))
	}
	return results, rerr, nil
}

// warnGuessed tells on stderr which flows' local side is a guess, naming
// the flag that settles it; past a few, in one line.
func warnGuessed(c *cli.Context, flows []*capture.Flow) {
	var guessed []*capture.Flow
	for _, f := range flows {
		if f.LocalGuessed {
			guessed = append(guessed, f)
		}
	}
	if len(guessed) > 3 {
		fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: warning: the local side of %d of %d connections is guessed (the server): nothing in the capture shows "+
			"which end it was taken on; say --local IP[:PORT] if it was the client's\n", len(guessed), len(flows))
		return
	}
	for _, f := range guessed {
		fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: warning: %s\n", capture.GuessedNote(f))
	}
}

// noTCP is the error for a capture without a TCP connection, saying what
// it held instead when that is known (stats, or a second read of a file).
func noTCP(c *cli.Context, name string, stats *capture.Stats) error {
	if stats == nil && name != "-" {
		if f, err := os.Open(name); err == nil {
			_, st, _ := capture.ReadFlows(f, name, capture.FlowOptions{NoPackets: true})
			f.Close()
			stats = &st
		}
	}
	if stats != nil {
		if what := stats.Undecoded(); what != "" {
			return fmt.Errorf("%s: no TCP connection in the capture: %s", name, what)
		}
	}
	return fmt.Errorf("%s: no TCP connection in the capture", name)
}

// captureExit is the exit status after output was written: 4 when the
// capture was damaged, 0 otherwise. The error itself was reported already.
func captureExit(rerr error) error {
	if rerr == nil {
		return nil
	}
	return reported(exitDamaged)
}

func codeOf(err error) int {
	if errors.Is(err, capture.ErrDamaged) {
		return exitDamaged
	}
	return 0
}

func indent(text, prefix string) string {
	return prefix + strings.ReplaceAll(text, "\n", "\n"+prefix)
}

func isDirTarget(p string) bool {
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator)) {
		return true
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// pickFlow chooses the connection to print: --flow N, else the only one,
// else the first complete one (with a note saying so).
func pickFlow(c *cli.Context, results []synth.Result) (synth.Result, error) {
	only, chosen, err := selectResults(c, results)
	if err != nil {
		return synth.Result{}, err
	}
	if chosen {
		if len(only) > 1 {
			var n []string
			for _, r := range only {
				n = append(n, strconv.Itoa(r.Flow.Index))
			}
			return synth.Result{}, failf(exitInput, "--flow %s names %d connections (%s): choose one, or write them all with -o DIR/", c.String("flow"), len(only), strings.Join(n, ", "))
		}
		return resultOrError(only[0])
	}
	if len(results) == 1 {
		return resultOrError(results[0])
	}
	for _, r := range results {
		if r.Err == nil && r.Flow.Complete() {
			fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: the capture has %d TCP connections; printing flow %d, the first complete one (choose with --flow N, list with 'pcap2pkt flows', or write all with -o DIR/)\n", len(results), r.Flow.Index)
			return r, nil
		}
	}
	for _, r := range results {
		if r.Err == nil {
			fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: the capture has %d TCP connections and none is complete; printing flow %d (choose with --flow N)\n", len(results), r.Flow.Index)
			return r, nil
		}
	}
	return synth.Result{}, failf(exitInput, "no connection could be synthesised: %v", results[0].Err)
}

// resultOrError is r, or its error as the command's.
func resultOrError(r synth.Result) (synth.Result, error) {
	if r.Err != nil {
		return r, failf(exitInput, "%v", r.Err)
	}
	return r, nil
}

// writeAll writes one script per connection into dir, plus index.tsv,
// streaming: each connection's script is written when the connection ends
// and then forgotten, so memory grows with the connections open at a time,
// not with the capture. Each file is written atomically; a connection that
// could not be synthesised is listed in the index with the reason.
func writeAll(c *cli.Context, name string, opts synth.Options, dir string) error {
	sel, chosen, err := flowSelection(c)
	if err != nil {
		return err
	}
	in, fo, err := openFlows(c, name)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return withCode(exitInput, err)
	}
	src, stop := withProgress(in, name, c.App.ErrWriter)
	var rows []synth.IndexRow
	written, seen := 0, 0
	var flows []*capture.Flow
	rerr := synth.Stream(name, src, fo, opts, func(r synth.Result) error {
		seen++
		if chosen && !sel.matches(r.Flow) {
			return nil
		}
		rows = append(rows, r.Row())
		if r.Flow.LocalGuessed {
			flows = append(flows, r.Flow)
		}
		if r.Err != nil {
			fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: %v\n", r.Err)
			return nil
		}
		if err := writeAtomic(filepath.Join(dir, synth.FileName(r.Flow)), r.Print); err != nil {
			return withCode(exitInput, err)
		}
		written++
		return nil
	})
	stop()
	var ee *exitError
	if errors.As(rerr, &ee) {
		return rerr
	}
	if rerr != nil && !errors.Is(rerr, capture.ErrDamaged) {
		return captureError(rerr)
	}
	if rerr != nil {
		fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: %v (writing the %d connection(s) read before it)\n", rerr, len(rows))
	}
	if len(rows) == 0 && seen > 0 {
		return withCode(max(exitInput, codeOf(rerr)), fmt.Errorf("no flow %s: the capture has %d TCP connection(s) (see 'pcap2pkt flows')", sel.text, seen))
	}
	if len(rows) == 0 {
		return withCode(max(exitInput, codeOf(rerr)), noTCP(c, name, nil))
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Flow < rows[j].Flow })
	var idx bytes.Buffer
	if err := synth.WriteIndex(&idx, rows); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "index.tsv"), idx.Bytes()); err != nil {
		return withCode(exitInput, err)
	}
	warnGuessed(c, flows)
	fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: wrote %d script(s) and index.tsv to %s\n", written, dir)
	return captureExit(rerr)
}

func flowsCommand() *cli.Command {
	return &cli.Command{
		Name:      "flows",
		Usage:     "list the TCP connections in a capture",
		ArgsUsage: "CAPTURE",
		Description: `Lists each TCP connection: its number (for --flow), endpoints with the local side
first, packets, bytes, duration, whether the capture has its handshake and close,
and which side was taken as the kernel under test, and why.

Flow N is Wireshark's tcp.stream N-1. --format tsv and json give the same fields
for scripts, with the local side's role and whether it is a guess.

   pcap2pkt flows catch.pcap
   pcap2pkt flows --format json catch.pcap
   tcpdump -w - port 80 | pcap2pkt flows -`,
		Flags: append(flowFlags(), &cli.StringFlag{Name: "format", Value: "text", Usage: "`FORMAT` of the list: text, tsv or json"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf(exitInput, "flows: want one capture (usage: pcap2pkt flows CAPTURE)")
			}
			switch c.String("format") {
			case "text", "tsv", "json":
			default:
				return failf(exitInput, "flows: --format %q: want text, tsv or json", c.String("format"))
			}
			name := c.Args().First()
			in, fo, err := openFlows(c, name)
			if err != nil {
				return err
			}
			defer in.Close()
			fo.NoPackets = true
			src, stop := withProgress(in, name, c.App.ErrWriter)
			flows, stats, rerr := capture.ReadFlows(src, name, fo)
			stop()
			if rerr != nil && !errors.Is(rerr, capture.ErrDamaged) {
				return captureError(rerr)
			}
			if len(flows) == 0 && rerr == nil {
				return withCode(exitInput, noTCP(c, name, &stats))
			}
			write := map[string]func(io.Writer, []*capture.Flow) error{
				"text": capture.WriteFlowTable, "tsv": capture.WriteFlowTSV, "json": capture.WriteFlowJSON,
			}[c.String("format")]
			if err := write(c.App.Writer, flows); err != nil {
				return err
			}
			warnGuessed(c, flows)
			if rerr != nil {
				return captureError(rerr)
			}
			return nil
		},
	}
}
