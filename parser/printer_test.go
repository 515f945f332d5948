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

// TestFormatTimeSpelling: a time keeps its spelling while the spelling
// reads as its value; a changed value prints in canonical form.
func TestFormatTimeSpelling(t *testing.T) {
	tests := []struct {
		t    Time
		want string
	}{
		{Time{Kind: TimeRelative, Usecs: 100000, Text: ".1"}, "+.1"},
		{Time{Kind: TimeRelative, Usecs: 200000, Text: ".1"}, "+0.200000"},
		{Time{Kind: TimeAbsolute, Usecs: 0, Text: "0.000"}, "0.000"},
		{Time{Kind: TimeRelativeRange, Usecs: 300000, Text: ".3", End: 310000, EndText: ".310"}, "+.3~+.310"},
		{Time{Kind: TimeAbsoluteRange, Usecs: 1e6, Text: "1.0", End: 2e6, EndText: "3"}, "1.0~2"},
		// Not a number: canonical form.
		{Time{Kind: TimeRelative, Usecs: 1e6, Text: "1e0"}, "+1"},
		{Time{Kind: TimeRelative, Usecs: 1e6, Text: "1."}, "+1"},
		{Time{Kind: TimeRelative, Usecs: 0, Text: "."}, "+0"},
	}
	for _, tt := range tests {
		if got := FormatTime(tt.t); got != tt.want {
			t.Errorf("FormatTime(%+v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

// TestLayoutKept: a script laid out as upstream scripts are (times
// right-aligned in column 5, numbers as written, a call continued on
// lines indented with spaces or a tab, indented comments) prints
// unchanged; each line not so laid out is laid out so.
func TestLayoutKept(t *testing.T) {
	kept := "`../common/defaults.sh`\n\n" +
		"    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" +
		"   +0 bind(3, ..., ...) = 0\n" +
		"   // indented comment\n" +
		" +.01 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n" +
		"+0.100 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>\n" +
		"  +.1~+.105 > . 1:1(0) ack 1\n" +
		"   +0...0.020 sendmsg(4, {msg_name(...)=...,\n" +
		"                          msg_iov(1)=[{..., 1000}],\n" +
		"\t\t\t  msg_flags=0}, MSG_FASTOPEN) = 1000 // blocks\n" +
		"    * > . 1:1(0) ack 1\n"
	for _, tt := range []struct{ src, want string }{
		{kept, kept},
		// Times starting their lines stay so.
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+.1 close(3) = 0\n", ""},
		// The minority is realigned, and blanks between tokens are one.
		{"   0 socket(..., SOCK_STREAM,  IPPROTO_TCP) = 3\n  +0 close(3) = 0\n+0 close(3) = 0\n  +.1 >  .  1:1(0) ack 1\n",
			"   0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n  +0 close(3) = 0\n  +0 close(3) = 0\n +.1 > . 1:1(0) ack 1\n"},
	} {
		want := tt.want
		if want == "" {
			want = tt.src
		}
		s := mustParse(t, tt.src)
		got := Format(s)
		if string(got) != want {
			t.Errorf("printed\n%s\nwant\n%s", got, want)
		}
		s2 := mustParse(t, string(got))
		if !Equal(s, s2) || !bytes.Equal(Format(s2), got) {
			t.Errorf("not a fixed point:\n%s", got)
		}
	}
}

// TestLayoutOfChangedTree: line breaks kept from the source follow the
// tokens they were before, and a tree changed since the parse still
// prints as a script that parses to it.
func TestLayoutOfChangedTree(t *testing.T) {
	s := mustParse(t, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"+
		"+0 setsockopt(3, SOL_SOCKET,\n              SO_REUSEADDR, [1],\n              4) = 0\n")
	c := s.Events[1].Action.(*Syscall)
	c.Args = c.Args[:2] // fewer tokens than the breaks count
	s.Events[1].Time.Usecs = 5000
	got := string(Format(s))
	want := "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0.005000 setsockopt(3, SOL_SOCKET) = 0\n"
	if got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
	if !Equal(s, mustParse(t, got)) {
		t.Errorf("printed form parses to a different tree:\n%s", got)
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
