package synth

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/parser/fuzztest"
)

// slowShapes are captures that made synthesis do work growing with the
// square of their packets, each with the side to synthesise: n sets their
// size (about n packets, 2n for some). Each was a loop over the rest of
// the flow, or over a list as long, for each packet.
var slowShapes = []struct {
	name  string
	local string
	segs  func(n int) []seg
}{{
	// backlogRun scanned from each in-order segment to the next ACK.
	name: "in-order segments sharing one timestamp", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := handshake()
		for i := range n {
			s = append(s, seg{flags: ".", seq: 1 + uint32(i)*1000, ack: 1, n: 1000, win: 4000})
		}
		return s
	},
}, {
	// The same, and the ACK at the end acknowledges none of them whole.
	name: "one timestamp, one ACK at the end", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := handshake()
		for i := range n {
			s = append(s, seg{flags: ".", seq: 1 + uint32(i)*1000, ack: 1, n: 1000, win: 4000})
		}
		return append(s, seg{srv: true, flags: ".", seq: 1, ack: 7, win: 4000})
	},
}, {
	// unacked scanned from each segment to the next outbound packet.
	name: "short segments sharing one timestamp", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := handshake()
		for i := range n {
			s = append(s, seg{flags: ".", seq: 1 + uint32(i)*999, ack: 1, n: 999, win: 4000})
		}
		return append(s, seg{srv: true, flags: ".", seq: 1, ack: 3, win: 4000})
	},
}, {
	// The segments ahead of a hole were a list searched from its start,
	// again after each one taken out.
	name: "segments ahead of a hole, in reverse", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := handshake()
		for i := n - 1; i >= 0; i-- {
			s = append(s, seg{flags: ".", seq: 1 + uint32(i)*100, ack: 1, n: 100, win: 4000, dt: time.Millisecond})
		}
		return s
	},
}, {
	// ... and searched whole for each in-order segment.
	name: "segments far ahead of a hole, then in order", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := handshake()
		for i := range n {
			s = append(s, seg{flags: ".", seq: 1<<30 + uint32(i)*100, ack: 1, n: 100, win: 4000, dt: time.Millisecond})
		}
		for i := range n {
			s = append(s, seg{flags: ".", seq: 1 + uint32(i)*100, ack: 1, n: 100, win: 4000, dt: time.Millisecond})
		}
		return s
	},
}, {
	// fastOpenChild searched the flow for each SYN-ACK.
	name: "SYN-ACKs without end", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := []seg{{flags: "S", win: 4000, opts: mss1000}}
		for range n {
			s = append(s, seg{srv: true, flags: "S.", ack: 1, win: 4000, opts: mss1000, dt: time.Millisecond})
		}
		return s
	},
}, {
	// acksBeforeProbe copied what stayed in flight at each ACK.
	name: "data in flight acknowledged a segment at a time", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		opts := append(mss1000, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2})
		s := []seg{{flags: "S", win: 4000, opts: opts},
			{srv: true, flags: "S.", ack: 1, win: 4000, opts: opts, dt: 50 * time.Microsecond},
			{flags: ".", seq: 1, ack: 1, win: 4000, dt: 100 * time.Millisecond}}
		for i := range n {
			s = append(s, seg{srv: true, flags: ".", seq: 1 + uint32(i)*100, ack: 1, n: 100, win: 4000, dt: time.Microsecond})
		}
		for i := range n {
			s = append(s, seg{flags: ".", seq: 1, ack: 101 + uint32(i)*100, win: 4000, dt: time.Microsecond})
		}
		return s
	},
}, {
	// nextFresh searched the rest of the flow for each probe.
	name: "zero-window probes with no data after", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := append(handshake(), seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: time.Millisecond},
			seg{flags: ".", seq: 1, ack: 101, win: 0, dt: time.Millisecond})
		for range n {
			s = append(s, seg{srv: true, flags: ".", seq: 100, ack: 1, win: 4000, dt: time.Millisecond})
		}
		return s
	},
}, {
	// Each probe's write was copied into the events after the ACK that
	// closed the window.
	name: "zero-window probes and data in turns", local: "10.0.0.2:80",
	segs: func(n int) []seg {
		s := append(handshake(), seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: time.Millisecond},
			seg{flags: ".", seq: 1, ack: 101, win: 0, dt: time.Millisecond})
		for i := range n / 2 {
			s = append(s, seg{srv: true, flags: ".", seq: 100 + uint32(i), ack: 1, win: 4000, dt: time.Millisecond},
				seg{srv: true, flags: "P.", seq: 101 + uint32(i), ack: 1, n: 1, win: 4000, dt: time.Millisecond})
		}
		return s
	},
}}

// TestSlowShapes synthesises each shape at a size that took seconds when
// the work grew with the square of the packets: each script must parse
// back to its tree. The deadline is a guard against a hang, not a
// measure of speed (BenchmarkSlowShapes is).
func TestSlowShapes(t *testing.T) {
	for _, sh := range slowShapes {
		t.Run(sh.name, func(t *testing.T) {
			data := conversation(t, sh.segs(8000))
			hp, err := capture.ParseHostPort(sh.local)
			if err != nil {
				t.Fatal(err)
			}
			fuzztest.Within(t, func() error {
				res, err := File("slow.pcap", bytes.NewReader(data), capture.FlowOptions{Local: hp}, Options{})
				if err != nil || len(res) != 1 || res[0].Err != nil {
					return fmt.Errorf("%v %v", err, res)
				}
				text := parser.Format(res[0].Script)
				parsed, err := parser.ParseFile(sh.name, text, nil)
				if err != nil {
					return err
				}
				if !parser.Equal(parsed, res[0].Script) {
					return fmt.Errorf("the script does not parse back to its tree")
				}
				return nil
			})
		})
	}
}

// BenchmarkSlowShapes synthesises each shape at two sizes: the time per
// packet stays the same when the work is linear.
func BenchmarkSlowShapes(b *testing.B) {
	for _, sh := range slowShapes {
		for _, n := range []int{2000, 16000} {
			b.Run(fmt.Sprintf("%s/n=%d", sh.name, n), func(b *testing.B) {
				data := conversation(b, sh.segs(n))
				hp, err := capture.ParseHostPort(sh.local)
				if err != nil {
					b.Fatal(err)
				}
				packets := 0
				for b.Loop() {
					res, err := File("slow.pcap", bytes.NewReader(data), capture.FlowOptions{Local: hp}, Options{})
					if err != nil || len(res) != 1 || res[0].Err != nil {
						b.Fatal(err, res)
					}
					packets += res[0].Flow.Packets.Len()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
			})
		}
	}
}

// TestICMPThenOutbound: an ICMP error to the local side followed by a
// local packet made synthesis panic (the error's packet has no TCP part,
// and the next outbound packet asked for its flags).
func TestICMPThenOutbound(t *testing.T) {
	segs := append(handshake(),
		seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, icmp: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "P.", seq: 1, ack: 1, n: 10, win: 4000, dt: 200 * time.Millisecond})
	lines := eventLines(t, segs, "10.0.0.2:80", Options{})
	want := []string{"< icmp unreachable host_unreachable [1:11(10)]", "> P. 1:11(10) ack 1"}
	i := 0
	for _, l := range lines {
		if i < len(want) && bytes.HasSuffix([]byte(l), []byte(want[i])) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("missing %q in:\n%q", want[i], lines)
	}
}

// TestHugeClaims: packets cut by the snaplen claim up to 64 KiB each, and
// a thousand of them sent without an ACK (or received while the local side
// does not read) add up to more than a replay's buffers hold: the calls
// are split at maxCall, and the header says so.
func TestHugeClaims(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	const n, size = 1000, 65495
	hs := []capturetest.Segment{
		{Src: cli, Dst: srv, Flags: "S", Seq: 0, Window: 65535},
		{At: time.Millisecond, Src: srv, Dst: cli, Flags: "S.", Seq: 0, Ack: 1, Window: 65535},
		{At: 2 * time.Millisecond, Src: cli, Dst: srv, Flags: ".", Seq: 1, Ack: 1, Window: 65535},
	}
	var writes, reads []capturetest.Segment
	for i := range n {
		at := time.Duration(3+i) * time.Millisecond
		seq := 1 + uint32(i)*size
		writes = append(writes, capturetest.Segment{At: at, Src: srv, Dst: cli, Flags: ".", Seq: seq, Ack: 1, Window: 65535, Len: size, Cut: true})
		reads = append(reads, capturetest.Segment{At: at, Src: cli, Dst: srv, Flags: ".", Seq: seq, Ack: 1, Window: 65535, Len: size, Cut: true},
			capturetest.Segment{At: at, Src: srv, Dst: cli, Flags: ".", Seq: 1, Ack: seq + size, Window: 0})
	}
	for _, tc := range []struct {
		name string
		segs []capturetest.Segment
	}{{"a write of 65 MB", append(hs, writes...)}, {"a read of 65 MB", append(hs, reads...)}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := capturetest.WriteSegments(&buf, tc.segs); err != nil {
				t.Fatal(err)
			}
			res, err := File("huge.pcap", &buf, capture.FlowOptions{Local: capture.HostPort{Addr: srv.Addr()}}, Options{})
			if err != nil || len(res) != 1 || res[0].Err != nil {
				t.Fatalf("%v %v", err, res)
			}
			text := parser.Format(res[0].Script)
			roundTrip(t, tc.name, text, res[0].Script)
			var total int64
			for _, e := range res[0].Script.Events {
				c, ok := e.Action.(*parser.Syscall)
				if !ok || c.Name != "read" && c.Name != "write" {
					continue
				}
				v := c.Result.(*parser.IntLit).Value
				if v > maxCall {
					t.Errorf("%s", parser.FormatEvent(e))
				}
				total += v
			}
			if total != n*size {
				t.Errorf("the calls move %d bytes, want %d", total, n*size)
			}
			if !bytes.Contains(text, []byte("split at 16 MiB")) {
				t.Errorf("no word of the split in the header:\n%s", text[:min(len(text), 3000)])
			}
		})
	}
}
