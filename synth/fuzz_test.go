package synth

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// FuzzSynthesize feeds arbitrary capture bytes through the whole pipeline:
// no panic, and every script synthesised must parse back to its own tree.
func FuzzSynthesize(f *testing.F) {
	f.Add(conversation(f, append(handshake(),
		seg{flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "FP.", seq: 1, ack: 11, n: 2500, win: 4000, dt: time.Millisecond},
		seg{flags: "R.", seq: 11, ack: 2502, win: 4000, dt: time.Millisecond})))
	for _, rel := range []string{"seed/catch.pcap", "seed/catch-ipv6.pcap", "captures/local/http_get_v4_cliside_any_sll.pcap"} {
		if b, err := os.ReadFile(filepath.Join(sharedDir, rel)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := File("fuzz.pcap", bytes.NewReader(data), capture.FlowOptions{}, Options{AllowPartial: true})
		for _, r := range res {
			if r.Err != nil {
				continue
			}
			text := parser.Format(r.Script)
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
