package synth

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/parser/fuzztest"
)

// FuzzSynthesize feeds arbitrary capture bytes through the whole pipeline:
// no panic, no input taking over fuzztest.Deadline, and every script
// synthesised must parse back to its own tree.
func FuzzSynthesize(f *testing.F) {
	f.Add(conversation(f, append(handshake(),
		seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "FP.", seq: 1, ack: 11, n: 2500, win: 4000, dt: time.Millisecond},
		seg{flags: "R.", seq: 11, ack: 2502, win: 4000, dt: time.Millisecond})))
	// An ICMP error quoting a local segment, and a local packet after it.
	f.Add(conversation(f, append(handshake(),
		seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, icmp: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: 200 * time.Millisecond})))
	gen, _ := capturetest.Generate(capturetest.Config{Flows: 4, Concurrent: 2, Rounds: 2, Request: 100, Response: 1948})
	f.Add(gen)
	for _, rel := range []string{"seed/catch.pcap", "seed/catch-ipv6.pcap", "captures/local/http_get_v4_cliside_any_sll.pcap", "captures/local/conn_refused_srvside_eth.pcap"} {
		if b, err := os.ReadFile(filepath.Join(sharedDir, rel)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzztest.Within(t, func() error { return synthRoundTrip(data) })
	})
}

// synthRoundTrip synthesises every flow of data with File and with Stream
// and checks that both make the same scripts, each parsing back to its
// tree; and with Strict, whose scripts write what the others gather or
// leave out (windows, options, segments).
func synthRoundTrip(data []byte) error {
	opts := Options{AllowPartial: true}
	res, _ := File("fuzz.pcap", bytes.NewReader(data), capture.FlowOptions{}, opts)
	// Stream reuses the memory of one connection's packets and nodes for
	// the next: each of its scripts must be the one File makes. (A long
	// linger hands flows out only when superseded or at the end, as File
	// sees them.)
	streamed := map[int]string{}
	Stream("fuzz.pcap", bytes.NewReader(data), capture.FlowOptions{Linger: time.Duration(1) << 62}, opts, func(r Result) error {
		if r.Err == nil {
			var text strings.Builder
			if err := r.Print(&text); err != nil {
				return err
			}
			streamed[r.Flow.Index] = text.String()
		}
		return nil
	})
	for _, r := range res {
		if r.Err != nil {
			continue
		}
		text := parser.Format(r.Script)
		if got, ok := streamed[r.Flow.Index]; !ok || got != string(text) {
			return fmt.Errorf("flow %d: Stream made another script than File:\n%s\n---\n%s", r.Flow.Index, got, text)
		}
		if err := parsesBack(r.Script, text); err != nil {
			return err
		}
	}
	opts.Strict = true
	res, _ = File("fuzz.pcap", bytes.NewReader(data), capture.FlowOptions{}, opts)
	for _, r := range res {
		if r.Err == nil {
			if err := parsesBack(r.Script, parser.Format(r.Script)); err != nil {
				return fmt.Errorf("--strict: %w", err)
			}
		}
	}
	return nil
}

// parsesBack checks that text, printed from s, parses to s.
func parsesBack(s *parser.Script, text []byte) error {
	parsed, err := parser.ParseFile("fuzz.pkt", text, nil)
	if err != nil {
		return fmt.Errorf("synthesised script does not parse: %v\n%s", err, text)
	}
	if !parser.Equal(parsed, s) {
		return fmt.Errorf("synthesised script does not parse back to its tree:\n%s", text)
	}
	return nil
}
