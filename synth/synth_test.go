package synth

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const sharedDir = "../../shared"

// sharedOrSkip returns the path of a file of the shared test data,
// skipping the test when the shared tree is not there.
func sharedOrSkip(t testing.TB, rel string) string { return capturetest.SharedFile(t, rel) }

// synthFile synthesises every flow of a shared capture, with local naming
// the kernel under test as MANIFEST.tsv does ("" for the heuristics).
func synthFile(t testing.TB, rel, local string, opts Options) []Result {
	t.Helper()
	path := sharedOrSkip(t, rel)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var fo capture.FlowOptions
	if local != "" {
		if fo.Local, err = capture.ParseHostPort(local); err != nil {
			t.Fatal(err)
		}
	}
	res, err := File(path, fh, fo, opts)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return res
}

func flowScript(t testing.TB, res []Result, flow int) *parser.Script {
	t.Helper()
	for _, r := range res {
		if r.Flow.Index == flow {
			if r.Err != nil {
				t.Fatalf("flow %d: %v", flow, r.Err)
			}
			return r.Script
		}
	}
	t.Fatalf("no flow %d among %d", flow, len(res))
	return nil
}

// roundTrip checks that text parses, prints back identically and gives the
// tree it was printed from.
func roundTrip(t *testing.T, name string, text []byte, tree *parser.Script) {
	t.Helper()
	parsed, err := parser.ParseFile(name, text, nil)
	if err != nil {
		t.Fatalf("%s does not parse: %v", name, err)
	}
	if again := parser.Format(parsed); !bytes.Equal(again, text) {
		t.Errorf("%s: printing the parsed script changes it:\n%s", name, firstDiff(text, again))
	}
	if !parser.Equal(parsed, tree) {
		t.Errorf("%s: the parsed script differs from the synthesised tree", name)
	}
	for _, e := range parser.Check(parsed) {
		// The reference accepts an outbound packet after an inbound SYN
		// without socket(): the SYN creates the socket under test
		// (run_packet.c, handle_listen_for_script_packet). Scripts of
		// refused connections are like that.
		if !strings.Contains(e.Msg, "before any socket() call") {
			t.Errorf("%s: %v", name, e)
		}
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths differ: %d vs %d lines", len(la), len(lb))
}

var goldens = []struct {
	name, file, local string
	flow              int
	opts              Options
}{
	{"seed", "seed/catch.pcap", "", 1, Options{}},
	{"seed_ipv6", "seed/catch-ipv6.pcap", "", 1, Options{}},
	{"seed_strict", "seed/catch.pcap", "", 1, Options{Strict: true}},
	{"http_get_v4_srvside", "captures/local/http_get_v4_srvside_eth.pcap", "10.77.0.2:80", 1, Options{}},
	{"http_get_v4_cliside", "captures/local/http_get_v4_cliside_any_sll.pcap", "10.77.0.1:40658", 1, Options{}},
	{"http_get_v4_cliside_cubic", "captures/local/http_get_v4_cliside_any_sll.pcap", "10.77.0.1:40658", 1, Options{CongestionControl: "cubic"}},
	{"http_get_v6_srvside", "captures/local/http_get_v6_srvside_eth.pcap", "[fd00:77::2]:80", 1, Options{}},
	{"rst_midstream_cliside", "captures/local/rst_midstream_linger0_cliside_eth.pcap", "10.77.0.1:50394", 1, Options{}},
	{"rst_midstream_as_server", "captures/local/rst_midstream_linger0_cliside_eth.pcap", "10.77.0.2:9001", 1, Options{}},
	{"zero_window_cliside", "captures/local/zero_window_probe_cliside_eth.pcap", "10.77.0.1:46024", 1, Options{}},
	{"http_keepalive_srvside", "captures/local/http_keepalive_2req_srvside.pcapng", "10.77.0.2:80", 1, Options{}},
	{"conn_refused_v4", "captures/local/conn_refused_srvside_eth.pcap", "10.77.0.2", 1, Options{}},
	{"conn_refused_v6", "captures/local/conn_refused_srvside_eth.pcap", "fd00:77::2", 2, Options{}},
	{"midstream_partial", "captures/local/midstream_no_handshake_cliside_eth.pcap", "10.78.0.1:34396", 1, Options{AllowPartial: true}},
	// The SYN-ACK captured before its SYN: the SYN goes first (synFirst).
	{"handshake_reorder", "captures/public/zeek__tcp_handshake-reorder.pcap", "", 1, Options{}},
	// Each SYN logged three times at the same instant (loggedAgain).
	{"nflog_copies", "captures/public/zeek__nflog-http.pcap", "", 1, Options{}},
}

// TestGolden synthesises real captures and compares with testdata/*.golden.pkt
// (rewritten with -update); every golden must also be a fixed point of the
// parser and printer.
func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			s := flowScript(t, synthFile(t, g.file, g.local, g.opts), g.flow)
			got := parser.Format(s)
			path := filepath.Join("testdata", g.name+".golden.pkt")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the synthesis:\n%s", path, firstDiff(want, got))
			}
			roundTrip(t, path, want, s)
		})
	}
}

// TestSeedMatchesArticle checks the user story: the capture of article.pkt
// run under the reference synthesises to a script equivalent to
// article.pkt, event by event. The synthesis adds setsockopt(SO_REUSEADDR),
// which changes no packet; the article's trailing shell commands cannot
// come from a capture.
func TestSeedMatchesArticle(t *testing.T) {
	src, err := os.ReadFile(sharedOrSkip(t, "seed/article.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	article, err := parser.ParseFile("article.pkt", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := flowScript(t, synthFile(t, "seed/catch.pcap", "", Options{}), 1)
	want := comparable(article)
	have := comparable(got)
	if len(want) != len(have) {
		t.Fatalf("%d events, article has %d:\n%s", len(have), len(want), parser.Format(got))
	}
	for i := range want {
		w, h := want[i], have[i]
		ctx := fmt.Sprintf("event %d: article %q, synthesised %q", i+1, parser.FormatEvent(w), parser.FormatEvent(h))
		if !sameTime(w.Time, h.Time) {
			t.Errorf("%s: times differ by more than 1 ms", ctx)
		}
		switch wa := w.Action.(type) {
		case *parser.Packet:
			ha, ok := h.Action.(*parser.Packet)
			if !ok || !samePacket(wa, ha) {
				t.Errorf("%s: packets differ", ctx)
			}
		case *parser.Syscall:
			ha, ok := h.Action.(*parser.Syscall)
			if !ok || ha.Name != wa.Name || parser.FormatExpr(ha.Result) != parser.FormatExpr(wa.Result) || ha.Errno != wa.Errno {
				t.Errorf("%s: calls differ", ctx)
			}
		default:
			t.Errorf("%s: unexpected %T", ctx, wa)
		}
	}
}

// sameTime reports whether the synthesised time h allows the article's w
// within 1 ms: the same kind and value, or a relative range around it (the
// synthesis gives the kernel's delayed ACKs a range).
func sameTime(w, h parser.Time) bool {
	if h.Kind == parser.TimeRelativeRange && w.Kind == parser.TimeRelative {
		return w.Usecs >= h.Usecs-1000 && w.Usecs <= h.End+1000
	}
	d := w.Usecs - h.Usecs
	return w.Kind == h.Kind && d >= -1000 && d <= 1000
}

// comparable drops what TestSeedMatchesArticle does not compare.
func comparable(s *parser.Script) []*parser.Event {
	var out []*parser.Event
	for _, e := range s.Events {
		switch a := e.Action.(type) {
		case *parser.Command:
			continue
		case *parser.Syscall:
			if a.Name == "setsockopt" && len(a.Args) > 2 && parser.FormatExpr(a.Args[2]) == "SO_REUSEADDR" {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// samePacket compares direction, flags, seq, len, ack, win and, for inbound
// packets, the options.
func samePacket(a, b *parser.Packet) bool {
	if a.Dir != b.Dir || a.TCP == nil || b.TCP == nil {
		return false
	}
	x, y := a.TCP, b.TCP
	eq := func(p, q *uint32) bool { return (p == nil) == (q == nil) && (p == nil || *p == *q) }
	if x.Flags != y.Flags || x.Seq != y.Seq || x.Len != y.Len || !eq(x.Ack, y.Ack) || !eq(x.Win, y.Win) {
		return false
	}
	return a.Dir == parser.Outbound || optionsText(x.Options) == optionsText(y.Options)
}

func optionsText(o *parser.TCPOptions) string {
	if o == nil {
		return ""
	}
	return parser.FormatTCPOptions(o)
}

// TestMidStream checks the error for a capture without handshake and that
// AllowPartial synthesises it anyway.
func TestMidStream(t *testing.T) {
	res := synthFile(t, "captures/local/midstream_no_handshake_cliside_eth.pcap", "10.78.0.1", Options{})
	if len(res) != 1 {
		t.Fatalf("%d flows", len(res))
	}
	err := res[0].Err
	if !errors.Is(err, ErrNoHandshake) || err.Error() != "flow 1: no handshake in the capture (starts mid-stream); use --allow-partial" {
		t.Fatalf("error %v", err)
	}
}

// TestAllCaptures synthesises every flow of every shared capture, local
// and public (partial ones allowed), and checks each script round-trips
// through the parser. (The public Fast Open capture's 6-byte cookies,
// written `*`, once left option lists the parser refused.)
func TestAllCaptures(t *testing.T) {
	for _, sub := range []string{"captures/local", "captures/public"} {
		ents, err := os.ReadDir(sharedOrSkip(t, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			for _, strict := range []bool{false, true} {
				res := synthFile(t, filepath.Join(sub, e.Name()), "", Options{AllowPartial: true, Strict: strict})
				for _, r := range res {
					name := fmt.Sprintf("%s#%d", e.Name(), r.Flow.Index)
					if r.Err != nil {
						t.Errorf("%s: %v", name, r.Err)
						continue
					}
					roundTrip(t, name, parser.Format(r.Script), r.Script)
				}
			}
		}
	}
}

// TestStream checks that streaming synthesis gives File's scripts.
func TestStream(t *testing.T) {
	const rel = "captures/local/conn_refused_srvside_eth.pcap"
	want := synthFile(t, rel, "", Options{})
	fh, err := os.Open(sharedOrSkip(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	got := map[int][]byte{}
	err = Stream(filepath.Join(sharedDir, rel), fh, capture.FlowOptions{}, Options{}, func(r Result) error {
		if r.Err != nil {
			return r.Err
		}
		var text bytes.Buffer
		if err := r.Print(&text); err != nil {
			return err
		}
		got[r.Flow.Index] = text.Bytes()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d flows streamed, %d read", len(got), len(want))
	}
	for _, r := range want {
		if w := parser.Format(r.Script); !bytes.Equal(got[r.Flow.Index], w) {
			t.Errorf("flow %d differs:\n%s", r.Flow.Index, firstDiff(w, got[r.Flow.Index]))
		}
	}
}

// TestMissingSYN: the capture has the SYN-ACK but not the SYN. The SYN is
// made up from the SYN-ACK (ISN, echoed TS val, the options it answered),
// so the script has one handshake with the captured SYN-ACK as it was,
// sequence numbers relative to the real ISNs, and no repeated call.
func TestMissingSYN(t *testing.T) {
	res := synthFile(t, "captures/public/zeek__tcp_missing-syn.pcap", "", Options{AllowPartial: true})
	text := string(parser.Format(flowScript(t, res, 1)))
	for _, want := range []string{
		"the SYN of the handshake is made up from the captured SYN-ACK",
		"+0 > S 0:0(0) <mss 1460,nop,nop,TS val 1772677970 ecr 0,nop,wscale *>\n",
		"+0^ < S. 0:0(0) ack 1 win 57344 <mss 1460,nop,wscale 0,nop,nop,TS val 391880539 ecr 1772677970>\n",
		"+0 > P. 1:99(98) ack 1 ",
		"< . 1:1449(1448) ack 99 ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	for line, n := range map[string]int{" S. ": 1, "fcntl(3, F_SETFL, O_RDWR) = 0": 1, "Out of order": 0, "cannot express": 0} {
		if got := strings.Count(text, line); got != n {
			t.Errorf("%q %d times, want %d", line, got, n)
		}
	}
	// --strict keeps the window scale the SYN-ACK's window says the SYN had.
	res = synthFile(t, "captures/public/zeek__tcp_missing-syn.pcap", "", Options{AllowPartial: true, Strict: true})
	if strict := string(parser.Format(flowScript(t, res, 1))); !strings.Contains(strict, ",nop,wscale 7>\n") {
		t.Errorf("--strict: the made-up SYN lacks wscale 7:\n%s", strict)
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestFramesAndSharedNotes: with Frames each packet line names its frames
// (a gathered write all of its segments), and a run of gathered writes has
// one note instead of one each.
func TestFramesAndSharedNotes(t *testing.T) {
	res := synthFile(t, "captures/local/bulk4m_delay20_loss1_srvside_snap128.pcap", "", Options{Frames: true})
	text := string(parser.Format(flowScript(t, res, 1)))
	if n := strings.Count(text, "One write, captured as"); n > 20 {
		t.Errorf("%d one-write notes: a run of alike writes should share one", n)
	}
	if !strings.Contains(text, "// Each of this and the next ") {
		t.Error("no shared note for a run of gathered writes")
	}
	if !regexp.MustCompile(`(?m)^\+0 < S 0:0\(0\) .* // frame 1$`).MatchString(text) {
		t.Error("the SYN's line does not end with its frame")
	}
	if !regexp.MustCompile(`(?m)^\+0 > P\. \d+:\d+\(2896\) .* // frames \d+(-\d+|, \d+)$`).MatchString(text) {
		t.Error("no gathered write's line names its frames")
	}
	// The trailing comments print and parse back as they are.
	s, err := parser.ParseFile("x.pkt", []byte(text), nil)
	if err != nil || string(parser.Format(s)) != text {
		t.Errorf("the script does not round-trip: %v", err)
	}
}

// TestExactIsPacketdrill: with Exact, the script of every flow of every
// local and public capture is in packetdrill's own language: no option
// line of pcap2pkt's, no `*` option value, no anchored time. With
// PCAP2PKT_REFERENCE naming a packetdrill binary, each also parses under
// the reference's own grammar (packetdrill --dry_run).
func TestExactIsPacketdrill(t *testing.T) {
	ref := os.Getenv("PCAP2PKT_REFERENCE")
	for _, sub := range []string{"captures/local", "captures/public"} {
		dir := sharedOrSkip(t, sub)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			res := synthFile(t, filepath.Join(sub, e.Name()), "", Options{AllowPartial: true, Exact: true})
			for _, r := range res {
				if r.Err != nil {
					continue
				}
				name := fmt.Sprintf("%s#%d", e.Name(), r.Flow.Index)
				if parser.Extended(r.Script) {
					t.Errorf("%s: --exact script says --%s", name, parser.Pcap2pktOption)
				}
				for _, ev := range r.Script.Events {
					if ev.Time.Anchor {
						t.Errorf("%s: --exact script has an anchored time: %s", name, parser.FormatEvent(ev))
					}
					if pk, ok := ev.Action.(*parser.Packet); ok && pk.TCP != nil && pk.TCP.Options != nil {
						for _, o := range pk.TCP.Options.List {
							if o.Wild != 0 {
								t.Errorf("%s: --exact script has a `*` option value: %s", name, parser.FormatEvent(ev))
							}
						}
					}
				}
				if ref == "" {
					continue
				}
				f := filepath.Join(t.TempDir(), "exact.pkt")
				if err := os.WriteFile(f, parser.Format(r.Script), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(ref, "--dry_run", f).CombinedOutput(); err != nil {
					t.Errorf("%s: the reference rejects the --exact script: %v\n%s", name, err, out)
				}
			}
		}
	}
}

// TestToleranceUsecs synthesises with the tolerance a replay will allow:
// the default is the reference's, and a wider one writes more outbound
// packets at +0 after what triggered them.
func TestToleranceUsecs(t *testing.T) {
	const rel = "captures/local/zero_window_probe_cliside_eth.pcap"
	text := func(us int64) string {
		return string(parser.Format(flowScript(t, synthFile(t, rel, "", Options{ToleranceUsecs: us}), 1)))
	}
	def := text(0)
	if text(parser.DefaultToleranceUsecs) != def {
		t.Error("the default tolerance is not the reference's")
	}
	atZero := func(s string) int { return strings.Count(s, "\n+0 >") }
	if wide := text(20_000); atZero(wide) <= atZero(def) {
		t.Errorf("a 20 ms tolerance writes %d outbound packets at +0, the default %d", atZero(wide), atZero(def))
	}
}

// TestStreamOrder checks that the pool of synthesisers hands fn the
// connections in the order they ended, each with Synthesize's script, and
// that an error from fn stops the stream.
func TestStreamOrder(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	data, _ := capturetest.Generate(capturetest.Config{Flows: 60, Concurrent: 7, Rounds: 3, Request: 100, Response: 3000})
	var ended []int
	want := map[int][]byte{}
	tr := capture.NewTracker(capture.FlowOptions{Linger: time.Millisecond, Done: func(f *capture.Flow) {
		s, err := Synthesize(f, Options{Source: "gen.pcap"})
		if err != nil {
			t.Fatal(err)
		}
		ended = append(ended, f.Index)
		want[f.Index] = parser.Format(s)
	}})
	rd, err := capture.NewReader(bytes.NewReader(data), "gen.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := rd.Next()
		if err != nil {
			break
		}
		tr.Add(p)
	}
	tr.Close()
	var got []int
	err = Stream("gen.pcap", bytes.NewReader(data), capture.FlowOptions{Linger: time.Millisecond}, Options{}, func(r Result) error {
		if r.Err != nil {
			return r.Err
		}
		var buf bytes.Buffer
		if err := r.Print(&buf); err != nil {
			return err
		}
		if text := buf.Bytes(); !bytes.Equal(text, want[r.Flow.Index]) {
			t.Errorf("flow %d differs:\n%s", r.Flow.Index, firstDiff(want[r.Flow.Index], text))
		}
		got = append(got, r.Flow.Index)
		return nil
	})
	if err != nil || !slices.Equal(got, ended) {
		t.Fatalf("%v; flows in the order %v, want %v", err, got, ended)
	}
	stop := errors.New("stop")
	n := 0
	err = Stream("gen.pcap", bytes.NewReader(data), capture.FlowOptions{Linger: time.Millisecond}, Options{}, func(r Result) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if err != stop || n != 5 {
		t.Errorf("%v after %d flows, want stop after 5", err, n)
	}
}

// TestStreamLong checks that the results of Stream and Scripts, which
// print a long connection's script a chunk of events at a time, print what
// File's whole trees print: connections of several chunks, with comments
// before lines (the notes of gathered writes) and after them (Frames), in
// each mode.
func TestStreamLong(t *testing.T) {
	data, _ := capturetest.Generate(capturetest.Config{Flows: 2, Concurrent: 2, Rounds: 3 * printChunk, Response: 2 * 1448, Snap: 96})
	for _, opts := range []Options{{}, {Frames: true}, {Exact: true}, {Strict: true}} {
		res, err := File("long.pcap", bytes.NewReader(data), capture.FlowOptions{}, opts)
		if err != nil || len(res) != 2 {
			t.Fatalf("%+v: %v, %d flows", opts, err, len(res))
		}
		want := map[int][]byte{}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if n := len(r.Script.Events); n < 3*printChunk {
				t.Fatalf("flow %d: %d events: not several chunks", r.Flow.Index, n)
			}
			want[r.Flow.Index] = parser.Format(r.Script)
		}
		n := 0
		err = Stream("long.pcap", bytes.NewReader(data), capture.FlowOptions{}, opts, func(r Result) error {
			n++
			var buf bytes.Buffer
			if err := r.Print(&buf); err != nil {
				return err
			}
			if !bytes.Equal(buf.Bytes(), want[r.Flow.Index]) {
				t.Errorf("%+v: flow %d differs:\n%s", opts, r.Flow.Index, firstDiff(want[r.Flow.Index], buf.Bytes()))
			}
			if err := r.Print(io.Discard); err == nil {
				t.Errorf("flow %d: printed twice", r.Flow.Index)
			}
			return nil
		})
		if err != nil || n != 2 {
			t.Fatalf("%+v: %v after %d flows", opts, err, n)
		}
		lazy, err := Scripts("long.pcap", bytes.NewReader(data), capture.FlowOptions{}, opts)
		if err != nil || len(lazy) != 2 {
			t.Fatalf("%+v: %v, %d flows", opts, err, len(lazy))
		}
		for _, r := range lazy {
			var buf bytes.Buffer
			if err := r.Print(&buf); err != nil || r.Script != nil {
				t.Fatalf("flow %d: %v; a tree: %v", r.Flow.Index, err, r.Script != nil)
			}
			if !bytes.Equal(buf.Bytes(), want[r.Flow.Index]) {
				t.Errorf("%+v: Scripts' flow %d differs:\n%s", opts, r.Flow.Index, firstDiff(want[r.Flow.Index], buf.Bytes()))
			}
		}
	}
}
