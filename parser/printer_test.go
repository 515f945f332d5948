package parser

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// TestGolden prints each testdata/golden/*.pkt and compares the result
// with its .golden file; the golden output must itself be a fixed point.
func TestGolden(t *testing.T) {
	for _, path := range testdataFiles(t, "golden") {
		s, _ := readScript(t, path, nil)
		if s == nil {
			continue
		}
		got := Format(s)
		golden := strings.TrimSuffix(path, ".pkt") + ".golden"
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: output differs from %s:\n%s", path, filepath.Base(golden), firstDiff(got, want))
		}
		s2, err := ParseFile(golden, got, nil)
		if err != nil {
			t.Fatalf("%s: reparse: %v", golden, err)
		}
		if !Equal(s, s2) {
			t.Errorf("%s: printed form parses to a different tree", path)
		}
		if again := Format(s2); !bytes.Equal(again, got) {
			t.Errorf("%s: not a fixed point:\n%s", golden, firstDiff(again, got))
		}
	}
}

// TestPrintBuiltTree prints a tree built by code, with no positions.
func TestPrintBuiltTree(t *testing.T) {
	win := uint32(1000)
	ack := uint32(1)
	s := &Script{
		Comments: []*Comment{{Pos: Pos{Line: 1, Col: 1}, Text: "// synthesised"}, {Text: "// no position: dropped"}},
		Events: []*Event{
			{Time: Time{Kind: TimeAbsolute}, Action: &Syscall{Name: "socket",
				Args:   []Expr{&Ellipsis{}, &Word{Name: "SOCK_STREAM"}, &Word{Name: "IPPROTO_TCP"}},
				Result: &IntLit{Value: 3}}},
			{Time: Time{Kind: TimeRelative, Usecs: 100000}, Action: &Packet{Dir: Inbound,
				TCP: &TCP{Flags: ".", Seq: 1, Ack: &ack, Win: &win,
					Options: &TCPOptions{List: []*TCPOption{{Kind: OptNOP}, {Kind: OptNOP}, {Kind: OptTimestamp, TSVal: 5, TSEcr: 6}}}}}},
		},
	}
	want := "// synthesised\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0.100000 < . 1:1(0) ack 1 win 1000 <nop,nop,TS val 5 ecr 6>\n"
	if got := string(Format(s)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	var buf bytes.Buffer
	if err := Print(&buf, s); err != nil || buf.String() != want {
		t.Errorf("Print: %v %q", err, buf.String())
	}
}

func TestFormatTime(t *testing.T) {
	tests := []struct {
		t    Time
		want string
	}{
		{Time{Kind: TimeAbsolute}, "0"},
		{Time{Kind: TimeRelative}, "+0"},
		{Time{Kind: TimeRelative, Usecs: 1e6}, "+1"},
		{Time{Kind: TimeRelative, Usecs: 100000}, "+0.100000"},
		{Time{Kind: TimeAbsolute, Usecs: 2500000}, "2.500000"},
		{Time{Kind: TimeAny}, "*"},
		{Time{Kind: TimeAbsoluteRange, Usecs: 1e6, End: 2e6}, "1~2"},
		{Time{Kind: TimeRelativeRange, Usecs: 0, End: 250000}, "+0~+0.250000"},
		{Time{Kind: TimeRelative, Usecs: 7}, "+0.000007"},
		{Time{Kind: TimeAbsolute, Usecs: 12345678901}, "12345.678901"},
		{Time{Kind: TimeAbsolute, Usecs: -1500010}, "-1.500010"},
	}
	for _, tt := range tests {
		if got := FormatTime(tt.t); got != tt.want {
			t.Errorf("FormatTime(%+v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

// TestCheckBuiltTree: Check reports what a tree built by code gets wrong.
func TestCheckBuiltTree(t *testing.T) {
	win := uint32(70000)
	s := &Script{Events: []*Event{
		{Time: Time{Kind: TimeAbsolute}, Action: &Syscall{Name: "socket", Result: &IntLit{Value: 3}}},
		{Time: Time{Kind: TimeAny}, Action: &Packet{Dir: Inbound, Ports: &Ports{Src: -1, Dst: 80},
			TCP: &TCP{Flags: "SZ", Win: &win, Options: &TCPOptions{Any: true}}}},
	}}
	var msgs []string
	for _, e := range Check(s) {
		msgs = append(msgs, e.Msg)
	}
	got := strings.Join(msgs, "; ")
	for _, want := range []string{"event time * can only be used with outbound packets", "invalid TCP flag 'Z'",
		"<...> for TCP options can only be used with outbound packets", "port out of range", "TCP window value out of range"} {
		if !strings.Contains(got, want) {
			t.Errorf("Check errors %q lack %q", got, want)
		}
	}
}
