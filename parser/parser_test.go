package parser

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Script {
	t.Helper()
	s, err := ParseFile("test.pkt", []byte(src), nil)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return s
}

// TestEventForms parses one event per case and checks its canonical form.
func TestEventForms(t *testing.T) {
	tests := []struct{ src, want string }{
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"},
		{"+.1 < S 0:0(0) win 4000 <mss 1000>", "+.1 < S 0:0(0) win 4000 <mss 1000>"},
		{"+0 > S. 0:0(0) ack 1 <...>", "+0 > S. 0:0(0) ack 1 <...>"},
		{"+0 > .11:11(0) ack 2", "+0 > . 11:11(0) ack 2"},
		{"+0 > S.11:11(0) ack 2", "+0 > S. 11:11(0) ack 2"},
		{"+0 > S .5 0:0(0) ack 2", "+0 > S.5 0:0(0) ack 2"},
		{"+0 > - 1:1(0)", "+0 > - 1:1(0)"},
		{"2.5 > F . 1:1(0) urg 3", "2.5 > F. 1:1(0) urg 3"},
		{"0.1~0.2 > . 1:1(0)", "0.1~0.2 > . 1:1(0)"},
		{"+1~+2 > . 1:1(0)", "+1~+2 > . 1:1(0)"},
		{"* > . 1:1(0)", "* > . 1:1(0)"},
		{"+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
			"+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)"},
		{"+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\", 0) = -1 (Invalid Argument)",
			"+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\", 0) = -1 (Invalid Argument)"},
		{"+0 ... .02 sendto(4, ..., 6000, MSG_FASTOPEN, ..., ...) = 6000",
			"+0...0.02 sendto(4, ..., 6000, MSG_FASTOPEN, ..., ...) = 6000"},
		{"+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0", "+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0"},
		{"+0 write(3, \"a\" \"b\", 2) = 2", "+0 write(3, \"a\" \"b\", 2) = 2"},
		{"+0 write(3, \"abc\"..., 2) = 2", "+0 write(3, \"abc\"..., 2) = 2"},
		{"+0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1,linger=0}, [8]) = 0",
			"+0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, [8]) = 0"},
		{"+0 poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0", "+0 poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0"},
		{"+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, ptr=0x1}) = 0",
			"+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, ptr=0x1}) = 0"},
		{"+0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16) = 0",
			"+0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16) = 0"},
		{"+0 setsockopt(3, IPPROTO_IPV6, IPV6_ADDR, inet6_addr(\"::1\"), 16) = 0",
			"+0 setsockopt(3, IPPROTO_IPV6, IPV6_ADDR, inet6_addr(\"::1\"), 16) = 0"},
		{"+0 x(TCP_INFO, {x=1, y=[1, 2]}, [], {..., 10}) = 0", "+0 x(TCP_INFO, {x=1, y=[1, 2]}, [], {..., 10}) = 0"},
		{"+0 x({scm_sec=1,scm_nsec=2}) = 0", "+0 x({scm_sec=1, scm_nsec=2}) = 0"},
		{"+0 x({}) = 0", "+0 x({}) = 0"},
		{"+0 x({(label 1, tc 2, [S], ttl 3)}) = 0", "+0 x({(label 1, tc 2, [S], ttl 3)}) = 0"},
		{"+0 x({flags [checksum present, key present] sum 0 off 0 key=1 seq 2}) = 0",
			"+0 x({flags [checksum present, key present] sum 0 off 0 key=1 seq 2}) = 0"},
		{"+0 x() = 0", "+0 x() = 0"},
		{"+0 `echo hi`", "+0 `echo hi`"},
		{"+0 %{   assert x == 1   }%", "+0 %{ assert x == 1 }%"},
		{"+0 %{\nassert x == 1\n}%", "+0 %{\nassert x == 1\n}%"},
		{"+0 < [ect0] S 0:0(0) win 1", "+0 < [ect0] S 0:0(0) win 1"},
		{"+0 > (tos 0x10, flowlabel 0x1) S 0:0(0)", "+0 > (tos 0x10, flowlabel 0x1) S 0:0(0)"},
		{"+0 > [ttl 64] S 0:0(0)", "+0 > [ttl 64] S 0:0(0)"},
		{"+0 < 1234>80 S 0:0(0) win 1", "+0 < 1234>80 S 0:0(0) win 1"},
		{"+0 < udp (100)", "+0 < udp (100)"},
		{"+0 < udp 1>2 (100)", "+0 < udp 1>2 (100)"},
		{"+0 < icmp unreachable frag_needed mtu 1400 [1:11(10)]", "+0 < icmp unreachable frag_needed mtu 1400 [1:11(10)]"},
		{"+0 < icmp echo_reply id 5 [udp (10)]", "+0 < icmp echo_reply id 5 [udp (10)]"},
		{"+0 < ipv4 192.168.0.1 > 192.0.2.1: gre: S 0:0(0) win 1", "+0 < ipv4 192.168.0.1 > 192.0.2.1: gre: S 0:0(0) win 1"},
		{"+0 < ipv6 fd::1 > fd::2: mpls (label 1, tc 0, [S], ttl 64): S 0:0(0) win 1",
			"+0 < ipv6 fd::1 > fd::2: mpls (label 1, tc 0, [S], ttl 64): S 0:0(0) win 1"},
		{"+0 < gre, flags 0x2000, sum 0, off 0, key 5, seq 0: S 0:0(0) win 1",
			"+0 < gre, flags 0x2000, sum 0, off 0, key 5, seq 0: S 0:0(0) win 1"},
		{"+0 > encap psp spi 0x10 P. 1:11(10) ack 1", "+0 > encap psp spi 0x10 P. 1:11(10) ack 1"},
		{"+0 > S 0:0(0) <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>", "+0 > S 0:0(0) <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>"},
		{"+0 > S 0:0(0) <sack 1:2 3:4,nop,nop>", "+0 > S 0:0(0) <sack 1:2 3:4,nop,nop>"},
		{"+0 > S 0:0(0) <FO 0011223344556677,nop,nop>", "+0 > S 0:0(0) <FO 0011223344556677,nop,nop>"},
		{"+0 > S 0:0(0) <FO,nop,nop>", "+0 > S 0:0(0) <FO,nop,nop>"},
		{"+0 > S 0:0(0) <FOEXP abcd,nop,nop>", "+0 > S 0:0(0) <FOEXP abcd,nop,nop>"},
		{"+0 > S 0:0(0) <md5 fd,nop>", "+0 > S 0:0(0) <md5 fd,nop>"},
		{"+0 > S 0:0(0) <FO ce,eol>", "+0 > S 0:0(0) <FO ce,eol>"},
		{"+0 > S 0:0(0) <md5 000102030405060708090a0b0c0d0e0f,nop,nop>", "+0 > S 0:0(0) <md5 000102030405060708090a0b0c0d0e0f,nop,nop>"},
		{"+0 > S 0:0(0) <ECN e1b 1 ceb 2 e0b 3,nop>", "+0 > S 0:0(0) <ECN e1b 1 ceb 2 e0b 3,nop>"},
		{"+0 > S 0:0(0) <eol,nop,nop,nop>", "+0 > S 0:0(0) <eol,nop,nop,nop>"},
	}
	for _, tt := range tests {
		s, err := ParseFile("t.pkt", []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"+tt.src), nil)
		if err != nil {
			t.Errorf("parse %q: %v", tt.src, err)
			continue
		}
		if got := FormatEvent(s.Events[len(s.Events)-1]); got != tt.want {
			t.Errorf("parse %q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

// TestTreeValues checks what the replay engine reads from the tree.
func TestTreeValues(t *testing.T) {
	s := mustParse(t, "--tolerance_usecs=10000\n`init`\n0.1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"+
		"+.25 < S 100:110(10) win 4000\n+1 > S. 0:0(0) ack 1 <...>\n+0 > .11:11(0) ack 2\n`cleanup`\n")
	if len(s.Options) != 1 || s.Options[0].Name != "tolerance_usecs" || s.Options[0].Value != "10000" || !s.Options[0].Set {
		t.Errorf("options: %+v", s.Options)
	}
	if s.Init == nil || s.Init.Text != "init" || s.Cleanup == nil || s.Cleanup.Text != "cleanup" {
		t.Errorf("init %+v cleanup %+v", s.Init, s.Cleanup)
	}
	if s.Events[0].Time.Usecs != 100000 || s.Events[0].Time.Kind != TimeAbsolute {
		t.Errorf("time 0: %+v", s.Events[0].Time)
	}
	if s.Events[1].Time.Usecs != 250000 || s.Events[1].Time.Kind != TimeRelative {
		t.Errorf("time 1: %+v", s.Events[1].Time)
	}
	in := s.Events[1].Action.(*Packet)
	if in.Dir != Inbound || in.TCP.Flags != "S" || in.TCP.Seq != 100 || in.TCP.Len != 10 ||
		in.TCP.Ack != nil || *in.TCP.Win != 4000 || in.TCP.Urg != nil || in.TCP.Options != nil {
		t.Errorf("inbound packet: %+v", in.TCP)
	}
	out := s.Events[2].Action.(*Packet)
	if out.Dir != Outbound || out.TCP.Flags != "S." || *out.TCP.Ack != 1 || out.TCP.Win != nil || !out.TCP.Options.Any {
		t.Errorf("outbound packet: %+v", out.TCP)
	}
	seed := s.Events[3].Action.(*Packet)
	if seed.TCP.Flags != "." || seed.TCP.Seq != 11 || seed.TCP.Len != 0 {
		t.Errorf("seed form: %+v", seed.TCP)
	}
	if s.Events[2].Time.Usecs != 1e6 {
		t.Errorf("+1 is %d usecs", s.Events[2].Time.Usecs)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1", 1e6}, {".1", 100000}, {"0.100", 100000}, {"1.001", 1001000},
		{"0.0000009", 0}, {"2.5", 2500000}, {"0.000001", 1}, {"-0", 0}, {"-0.0", 0},
	}
	for _, tt := range tests {
		if got, err := parseSeconds(tt.in); err != "" || got != tt.want {
			t.Errorf("parseSeconds(%q) = %d, %q; want %d", tt.in, got, err, tt.want)
		}
	}
}

// TestWholeFileErrors covers inputs that fail as a whole.
func TestWholeFileErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "test.pkt:1:1: script has no events"},
		{"comments only", "// nothing\n/* here */\n", "test.pkt:3:1: script has no events"},
		{"options only", "--mss=1000\n", "script has no events"},
		{"binary", "0 socket(\x00\x01\x02", "test.pkt:1:10: binary file (NUL byte): not a packetdrill script"},
		{"invalid utf8", "0 close(3) = 0\n\xfe\xff", "test.pkt:2:1: invalid UTF-8"},
		{"unterminated command", "0 `echo", "test.pkt:1:3: command not terminated"},
		{"unterminated code", "0 %{ x", "code block not terminated"},
		{"cleanup in the middle", "0 close(3) = 0\n`x`\n+0 close(3) = 0\n", "test.pkt:2:1: a command without a time"},
		{"deep nesting", "0 x(" + strings.Repeat("[", 100000) + ") = 0", "expression nested too deeply"},
		{"long or chain", "0 x(" + strings.Repeat("A|", 100000) + "A) = 0", "expression nested too deeply"},
		{"long string chain", "0 x(" + strings.Repeat(`"a" `, 100000) + ") = 0", "expression nested too deeply"},
		{"many errors", strings.Repeat("0 < S\n", 50), "(and 9 more errors)"},
	}
	for _, tt := range tests {
		_, err := ParseFile("test.pkt", []byte(tt.src), nil)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Errorf("%s: error is %T", tt.name, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not contain %q", tt.name, err, tt.want)
		}
	}
}

// TestHugeLine: a 10 MB line is handled without a crash and in linear
// time (the limit is loose because the test machine may be loaded).
func TestHugeLine(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: parses several 10 MB lines")
	}
	const size = 10 << 20
	inputs := map[string]string{
		"garbage": "0 close(3) = 0\n" + strings.Repeat("@", size),
		"comment": "0 close(3) = 0 // " + strings.Repeat("x", size),
		"string":  "0 write(3, \"" + strings.Repeat("x", size) + "\", 1) = 1",
		"ipv6ish": "0 x(" + strings.Repeat("1:2:3:4:5:6:7:8:", size/16) + ") = 0",
		"events":  strings.Repeat("+0 close(3) = 0 ", size/16),
		"args":    "0 x(" + strings.Repeat("1, ", size/3) + "1) = 0",
	}
	for name, src := range inputs {
		start := time.Now()
		_, err := ParseFile("huge.pkt", []byte(src), nil)
		if d := time.Since(start); d > time.Minute {
			t.Errorf("%s: took %v", name, d)
		}
		t.Logf("%s: %v in %v", name, err, time.Since(start))
	}
}

func TestErrorListError(t *testing.T) {
	l := ErrorList{{File: "a.pkt", Pos: Pos{2, 3}, Msg: "m1"}, {File: "a.pkt", Pos: Pos{1, 1}, Msg: "m0"}}
	l.Sort()
	if got := l.Error(); got != "a.pkt:1:1: m0 (and 1 more errors)" {
		t.Errorf("got %q", got)
	}
	if (ErrorList{}).Err() != nil || l.Err() == nil {
		t.Error("Err")
	}
}

// TestDefines: -D values become the token kinds the reference gives them,
// and a script's --define options apply after the options, the command
// line winning.
func TestDefines(t *testing.T) {
	src := "--define=FAM=AF_INET\n0 x(FAM, X, S, Q) = N\n"
	s, err := ParseFile("d.pkt", []byte(src), &Config{Defines: map[string]string{
		"X": "7", "S": `"str"`, "Q": "word", "N": "0x10"}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Events[0].Action.(*Syscall)
	values := []Expr{c.Args[0], c.Args[1], c.Args[2], c.Args[3], c.Result}
	want := []Expr{&Word{Name: "AF_INET", Sym: "FAM"}, &IntLit{Value: 7, Sym: "X"},
		&StringLit{Value: "str", Sym: "S"}, &Word{Name: "word", Sym: "Q"}, &IntLit{Value: 16, Sym: "N"}}
	for i := range want {
		if FormatExpr(values[i]) != FormatExpr(want[i]) || !Equal(&Script{Events: []*Event{{Action: &Syscall{Result: values[i]}}}},
			&Script{Events: []*Event{{Action: &Syscall{Result: want[i]}}}}) {
			t.Errorf("value %d: got %#v, want %#v", i, values[i], want[i])
		}
	}
	// The printer writes the symbols back.
	if got, want := FormatEvent(s.Events[0]), "0 x(FAM, X, S, Q) = N"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestUndefinedSymbols: with Config.AllowUndefined, a symbol that stands
// for a TCP option's value, cookie or digest parses without its -D
// definition and prints as written, as it does with the definition;
// without it, the error names the -D flag.
func TestUndefinedSymbols(t *testing.T) {
	src := "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" +
		"+0 < S 0:0(0) win 1000 <mss MSS,sackOK,nop,nop,FO TFO_COOKIE,nop,nop>\n" +
		"+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale WS,md5 DIGEST,nop,nop>\n" +
		"+0 < icmp unreachable CODE [0:10(10)]\n"
	s, err := ParseFile("u.pkt", []byte(src), &Config{AllowUndefined: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := Format(s); string(got) != src {
		t.Errorf("printed\n%s", got)
	}
	opts := s.Events[1].Action.(*Packet).TCP.Options.List
	if opts[0].Sym != "MSS" || opts[0].Value != 0 || opts[4].Sym != "TFO_COOKIE" || opts[4].Cookie != "" {
		t.Errorf("options: %+v %+v", opts[0], opts[4])
	}
	defined := &Config{AllowUndefined: true, Defines: map[string]string{"MSS": "1440",
		"TFO_COOKIE": "3021b9d889017eeb", "WS": "7", "DIGEST": "000102030405060708090a0b0c0d0e0f", "CODE": "host_unreachable"}}
	s2, err := ParseFile("u.pkt", []byte(src), defined)
	if err != nil {
		t.Fatal(err)
	}
	if got := Format(s2); string(got) != src {
		t.Errorf("printed with definitions\n%s", got)
	}
	opts = s2.Events[1].Action.(*Packet).TCP.Options.List
	if opts[0].Value != 1440 || opts[4].Cookie != "3021b9d889017eeb" {
		t.Errorf("defined options: %+v %+v", opts[0], opts[4])
	}
	if ic := s2.Events[3].Action.(*Packet).ICMP; ic.Code != "host_unreachable" || ic.CodeSym != "CODE" {
		t.Errorf("icmp: %+v", ic)
	}
	_, err = ParseFile("u.pkt", []byte(src), nil)
	if err == nil || !strings.Contains(err.Error(), "MSS is not defined") || !strings.Contains(err.Error(), "-D MSS=VALUE") {
		t.Errorf("without definitions: %v", err)
	}
}
