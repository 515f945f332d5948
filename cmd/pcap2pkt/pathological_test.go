package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

var (
	pathCli = netip.MustParseAddrPort("10.0.0.1:40000")
	pathSrv = netip.MustParseAddrPort("10.0.0.2:80")
)

// pathHandshake opens a connection between pathCli and pathSrv (ISNs 0
// and 1000) at time at.
func pathHandshake(at time.Duration) []capturetest.Segment {
	mss := []byte{2, 4, 5, 0xb4}
	return []capturetest.Segment{
		{At: at, Src: pathCli, Dst: pathSrv, Flags: "S", Seq: 0, Window: 65535, Options: mss},
		{At: at + time.Millisecond, Src: pathSrv, Dst: pathCli, Flags: "S.", Seq: 1000, Ack: 1, Window: 65535, Options: mss},
		{At: at + 2*time.Millisecond, Src: pathCli, Dst: pathSrv, Flags: ".", Seq: 1, Ack: 1001, Window: 65535},
	}
}

// pathologicalCaptures are captures whose numbers no kernel would send:
// each must give a script (or a clear error) in bounded time, with the
// header saying what the synthesis made of them.
var pathologicalCaptures = []struct {
	name  string
	segs  func() []capturetest.Segment
	notes []string // in the script's header (or standard error)
}{{
	name: "sequence numbers jumping by 2 and 4 GB",
	segs: func() []capturetest.Segment {
		s := pathHandshake(0)
		seq, ack := uint32(1), uint32(1001)
		for i := range 3000 {
			at := time.Duration(3+i) * time.Millisecond
			jump := []uint32{1 << 31, 1<<32 - 1, 1<<31 - 1, 12345}[i%4]
			s = append(s, capturetest.Segment{At: at, Src: pathCli, Dst: pathSrv, Flags: "P.", Seq: seq, Ack: ack, Window: 65535, Len: 100},
				capturetest.Segment{At: at, Src: pathSrv, Dst: pathCli, Flags: ".", Seq: ack, Ack: seq + 100, Window: 65535})
			seq += jump
			ack += jump / 3
		}
		return s
	},
	notes: []string{"out of order", "wraps past 2^32"},
}, {
	name: "packets claiming the largest lengths, windows, pointers and options",
	segs: func() []capturetest.Segment {
		s := pathHandshake(0)
		// Window scale 14, SACK blocks, a timestamp: 40 bytes of options.
		opts := []byte{3, 3, 14, 1, 5, 26, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1,
			0x7f, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 8, 10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		for i := range 2000 {
			at := time.Duration(3+i) * time.Millisecond
			seq := 1001 + uint32(i)*65455
			s = append(s, capturetest.Segment{At: at, Src: pathSrv, Dst: pathCli, Flags: "U.", Seq: seq, Ack: 1,
				Window: 65535, Options: opts, Len: 65455, Cut: true})
		}
		return s
	},
	notes: []string{"cut by the snaplen"},
}, {
	name: "thousands of tiny connections",
	segs: func() []capturetest.Segment {
		var s []capturetest.Segment
		for i := range 5000 {
			cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(1024+i))
			at := time.Duration(i) * time.Microsecond
			s = append(s, capturetest.Segment{At: at, Src: cli, Dst: pathSrv, Flags: "S", Seq: uint32(i), Window: 100},
				capturetest.Segment{At: at, Src: pathSrv, Dst: cli, Flags: "R.", Ack: uint32(i) + 1})
		}
		return s
	},
	notes: []string{"the capture has 5000 TCP connections"},
}, {
	name: "timestamps going backwards and forwards by years",
	segs: func() []capturetest.Segment {
		s := pathHandshake(40 * 365 * 24 * time.Hour)
		year := 365 * 24 * time.Hour
		for i := range 1000 {
			at := 40*year + time.Duration(i)*time.Millisecond
			if i%2 == 1 {
				at -= 30 * year
			}
			s = append(s, capturetest.Segment{At: at, Src: pathCli, Dst: pathSrv, Flags: "P.", Seq: 1 + uint32(i)*10, Ack: 1001, Window: 65535, Len: 10},
				capturetest.Segment{At: at, Src: pathSrv, Dst: pathCli, Flags: ".", Seq: 1001, Ack: 11 + uint32(i)*10, Window: 65535})
		}
		return s
	},
	notes: []string{"time-stamped before the packet captured ahead of them", "wait(s) of over an hour between events"},
}}

// TestPathologicalCaptures runs the binary on each pathological capture,
// printing one script and writing one per connection: each run must end
// (a generous deadline guards against a hang; speed is measured by the
// benchmarks), exit 0, say what it made of the capture, and write
// scripts that parse.
func TestPathologicalCaptures(t *testing.T) {
	bin := buildCLI(t)
	for _, pc := range pathologicalCaptures {
		t.Run(pc.name, func(t *testing.T) {
			dir := t.TempDir()
			capFile := filepath.Join(dir, "path.pcap")
			var buf bytes.Buffer
			if err := capturetest.WriteSegments(&buf, pc.segs()); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(capFile, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			outDir := filepath.Join(dir, "out") + "/"
			for _, args := range [][]string{{"--local", pathSrv.Addr().String(), capFile}, {"-o", outDir, capFile}, {"flows", capFile}} {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				cmd := exec.CommandContext(ctx, bin, args...)
				var out, errw bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errw
				err := cmd.Run()
				hung := ctx.Err() != nil
				cancel()
				if hung {
					t.Fatalf("pcap2pkt %s: still running after 2 minutes", strings.Join(args, " "))
				}
				var ee *exec.ExitError
				if errors.As(err, &ee) || err != nil {
					t.Fatalf("pcap2pkt %s: %v\n%s", strings.Join(args, " "), err, errw.String())
				}
				if args[0] != "--local" {
					continue
				}
				for _, n := range pc.notes {
					if !strings.Contains(out.String()+errw.String(), n) {
						t.Errorf("pcap2pkt %s: no %q in the header or on standard error:\n%s\n%s", strings.Join(args, " "), n, errw.String(), head(out.String(), 40))
					}
				}
				if _, err := parser.ParseFile("stdout.pkt", out.Bytes(), nil); err != nil {
					t.Errorf("pcap2pkt %s: the script does not parse: %v", strings.Join(args, " "), err)
				}
			}
			scripts, _ := filepath.Glob(filepath.Join(outDir, "*.pkt"))
			if len(scripts) == 0 {
				t.Fatalf("-o %s wrote no script", outDir)
			}
			for _, s := range scripts {
				text, err := os.ReadFile(s)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := parser.ParseFile(s, text, nil); err != nil {
					t.Errorf("%s does not parse: %v", filepath.Base(s), err)
				}
			}
		})
	}
}

// head returns the first n lines of text.
func head(text string, n int) string {
	lines := strings.SplitAfterN(text, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "")
}
