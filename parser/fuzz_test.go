package parser

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser/fuzztest"
)

func addCorpusSeeds(f *testing.F) {
	f.Add([]byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > .11:11(0) ack 2\n"))
	if _, err := os.Stat(corpusDir); err != nil {
		return
	}
	for _, path := range corpusFiles(f) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
}

// FuzzParse: no input makes the parser panic or take over
// fuzztest.Deadline, and errors come as a non-empty ErrorList of at most
// maxErrors entries.
func FuzzParse(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		fuzztest.Within(t, func() error {
			s, err := ParseFile("fuzz.pkt", src, &Config{Defines: upstreamDefines})
			if s == nil {
				return fmt.Errorf("nil script")
			}
			if err != nil {
				if list, ok := err.(ErrorList); !ok || len(list) == 0 || len(list) > maxErrors {
					return fmt.Errorf("bad error %T %v", err, err)
				}
				return nil
			}
			Check(s)
			return nil
		})
	})
}

// FuzzPrintRoundTrip: any script that parses prints to text that parses
// to an Equal tree, and the printed text is a fixed point, so too with
// -D definitions and undefined symbols allowed, as fmt reads scripts;
// parsing and printing each input take at most fuzztest.Deadline.
func FuzzPrintRoundTrip(f *testing.F) {
	addCorpusSeeds(f)
	f.Add([]byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n +.1 < S 0:0(0) win 1 <mss MSS,FO TFO_COOKIE,nop>\n" +
		"   +0...0.02 x(CMSG_LEVEL_IP,\n\t 1) = 0\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		fuzztest.Within(t, func() error {
			for _, cfg := range []*Config{nil, {Defines: upstreamDefines, AllowUndefined: true}} {
				s, err := ParseFile("fuzz.pkt", src, cfg)
				if err != nil {
					continue
				}
				out := Format(s)
				s2, err := ParseFile("printed.pkt", out, cfg)
				if err != nil {
					return fmt.Errorf("printed form does not parse: %v\n%s", err, out)
				}
				if !Equal(s, s2) {
					return fmt.Errorf("printed form parses to a different tree:\n%s", out)
				}
				if again := Format(s2); !bytes.Equal(again, out) {
					return fmt.Errorf("not a fixed point:\n%s", firstDiff(out, again))
				}
			}
			return nil
		})
	})
}

// BenchmarkParse parses the whole corpus; the MB/s figure is the parse
// throughput.
func BenchmarkParse(b *testing.B) {
	var srcs [][]byte
	total := 0
	for _, path := range corpusFiles(b) {
		src, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, src)
		total += len(src)
	}
	cfg := &Config{Defines: upstreamDefines}
	b.SetBytes(int64(total))
	b.ResetTimer()
	for b.Loop() {
		for _, src := range srcs {
			ParseFile("bench.pkt", src, cfg)
		}
	}
	b.ReportMetric(float64(len(srcs)*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkFormat prints the whole corpus.
func BenchmarkFormat(b *testing.B) {
	var scripts []*Script
	total := 0
	for _, path := range corpusFiles(b) {
		s, src := readScript(b, path, &Config{Defines: definesFor(path)})
		if s == nil {
			b.FailNow()
		}
		scripts = append(scripts, s)
		total += len(src)
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	for b.Loop() {
		for _, s := range scripts {
			Format(s)
		}
	}
}
