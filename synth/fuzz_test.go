package synth

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// FuzzSynthesize feeds arbitrary capture bytes through the whole pipeline:
// no panic, and every script synthesised must parse back to its own tree.
func FuzzSynthesize(f *testing.F) {
	f.Add(conversation(f, append(handshake(),
		seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "FP.", seq: 1, ack: 11, n: 2500, win: 4000, dt: time.Millisecond},
		seg{flags: "R.", seq: 11, ack: 2502, win: 4000, dt: time.Millisecond})))
	gen, _ := capturetest.Generate(capturetest.Config{Flows: 4, Concurrent: 2, Rounds: 2, Request: 100, Response: 1948})
	f.Add(gen)
	for _, rel := range []string{"seed/catch.pcap", "seed/catch-ipv6.pcap", "captures/local/http_get_v4_cliside_any_sll.pcap", "captures/local/conn_refused_srvside_eth.pcap"} {
		if b, err := os.ReadFile(filepath.Join(sharedDir, rel)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := File("fuzz.pcap", bytes.NewReader(data), capture.FlowOptions{}, Options{AllowPartial: true})
		// Stream reuses the memory of one connection's packets and nodes
		// for the next: each of its scripts must be the one File makes.
		// (A long linger hands flows out only when superseded or at the
		// end, as File sees them.)
		streamed := map[int]string{}
		Stream("fuzz.pcap", bytes.NewReader(data), capture.FlowOptions{Linger: time.Duration(1) << 62}, Options{AllowPartial: true}, func(r Result) error {
			if r.Err == nil {
				streamed[r.Flow.Index] = string(parser.Format(r.Script))
			}
			return nil
		})
		for _, r := range res {
			if r.Err != nil {
				continue
			}
			text := parser.Format(r.Script)
			if got, ok := streamed[r.Flow.Index]; !ok || got != string(text) {
				t.Fatalf("flow %d: Stream made another script than File:\n%s\n---\n%s", r.Flow.Index, got, text)
			}
			parsed, err := parser.ParseFile("fuzz.pkt", text, nil)
			if err != nil {
				t.Fatalf("synthesised script does not parse: %v\n%s", err, text)
			}
			if !parser.Equal(parsed, r.Script) {
				t.Fatalf("synthesised script does not parse back to its tree:\n%s", text)
			}
		}
	})
}
