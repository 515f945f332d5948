package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/parser/fuzztest"
)

func pos(l, c int) parser.Pos { return parser.Pos{Line: l, Col: c} }

func word(name string) *parser.Word { return &parser.Word{Pos: pos(3, 7), Name: name} }

func intLit(v int64) *parser.IntLit { return &parser.IntLit{Pos: pos(3, 7), Value: v} }

func or(x, y parser.Expr) *parser.Binary {
	return &parser.Binary{Pos: pos(3, 7), Op: "|", X: x, Y: y}
}

func bracket(e parser.Expr) *parser.List {
	return &parser.List{Pos: pos(3, 7), Elems: []parser.Expr{e}}
}

func TestEvaluatorInt(t *testing.T) {
	ev := &evaluator{Defines: map[string]string{"ONE": "1", "HEXY": "0x10", "ALIAS": "MSG_MORE", "LOOP": "LOOP"}}
	tests := []struct {
		name    string
		expr    parser.Expr
		want    int64
		wantErr string
	}{
		{"int", intLit(42), 42, ""},
		{"negative", intLit(-1), -1, ""},
		{"symbol", word("SOCK_STREAM"), 1, ""},
		{"or", or(word("MSG_ERRQUEUE"), word("MSG_TRUNC")), 0x2000 | 0x20, ""},
		{"nested or", or(or(intLit(1), intLit(2)), word("MSG_MORE")), 3 | 0x8000, ""},
		{"define number", word("ONE"), 1, ""},
		{"define hex", word("HEXY"), 16, ""},
		{"define symbol", word("ALIAS"), 0x8000, ""},
		{"define cycle", word("LOOP"), 0, `3:7: definition of "LOOP" refers to itself`},
		{"inet_addr", &parser.InAddr{Addr: "1.2.3.4"}, int64(binary.NativeEndian.Uint32([]byte{1, 2, 3, 4})), ""},
		{"unknown", word("FOO"), 0, `3:7: unknown symbol "FOO"`},
		{"ellipsis", &parser.Ellipsis{Pos: pos(2, 9)}, 0, "2:9: expected an integer, got ..."},
		{"string", &parser.StringLit{Pos: pos(1, 1), Value: "x"}, 0, "1:1: expected an integer, got a string"},
		{"equals", &parser.Binary{Pos: pos(4, 2), Op: "=", X: word("A"), Y: intLit(1)}, 0, "4:2: expected an integer, got a name=value pair"},
		{"nil", nil, 0, "missing integer expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ev.int(tc.expr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Int() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Int() = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestEvaluatorInt32Range(t *testing.T) {
	ev := &evaluator{}
	tests := []struct {
		v    int64
		want int32
		ok   bool
	}{
		{0xffffffff, -1, true},
		{-0x80000000, -0x80000000, true},
		{0x100000000, 0, false},
		{-0x80000001, 0, false},
	}
	for _, tc := range tests {
		got, err := ev.int32(intLit(tc.v))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Int32(%d) = %d, %v", tc.v, got, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{`abc`, "abc", ""},
		{`\xf7\x63`, "\xf7\x63", ""},
		{`a\n\t\r\f\v`, "a\n\t\r\f\v", ""},
		{`\\ \"`, `\ "`, ""},
		{`\x4`, "", "invalid hex escape"},
		{`\xzz`, "", "invalid hex escape"},
		{`\q`, "", "unsupported escape code"},
		{`abc\`, "", "lone backslash"},
	}
	for _, tc := range tests {
		got, err := unescape(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Unescape(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEvaluatorBytesAndBuffer(t *testing.T) {
	ev := &evaluator{}
	cat := &parser.Binary{Op: ".", X: &parser.StringLit{Value: `ab`}, Y: &parser.StringLit{Value: `\x00c`}}
	b, err := ev.bytes(cat)
	if err != nil || !bytes.Equal(b, []byte("ab\x00c")) {
		t.Fatalf("Bytes(concat) = %q, %v", b, err)
	}
	if _, err := ev.bytes(intLit(1)); err == nil {
		t.Errorf("Bytes(int) succeeded")
	}
	tests := []struct {
		e      parser.Expr
		isNull bool
		ok     bool
	}{
		{&parser.Ellipsis{}, false, true},
		{word("NULL"), true, true},
		{intLit(0), true, true},
		{intLit(5), false, false},
	}
	for _, tc := range tests {
		isNull, err := ev.buffer(tc.e)
		if isNull != tc.isNull || (err == nil) != tc.ok {
			t.Errorf("Buffer(%s) = %v, %v", exprKind(tc.e), isNull, err)
		}
	}
}

func TestSockoptValue(t *testing.T) {
	ev := &evaluator{}
	le := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.NativeEndian.AppendUint32(b, v)
		}
		return b
	}
	tests := []struct {
		name   string
		e      parser.Expr
		optlen int
		want   []byte
	}{
		{"int", bracket(word("SO_REUSEADDR")), 4, le(2)},
		{"or", bracket(or(word("SOF_TIMESTAMPING_SOFTWARE"), word("SOF_TIMESTAMPING_OPT_ID"))), 4, le(0x10 | 0x80)},
		{"linger", &parser.Linger{OnOff: 1, Linger: 0}, 8, le(1, 0)},
		{"string", &parser.StringLit{Value: `\xf7\x63`}, 2, []byte{0xf7, 0x63, 0}},
		{"short optlen pads", bracket(intLit(7)), 8, append(le(7), 0, 0, 0, 0)},
		{"in6", &parser.InAddr{In6: true, Addr: "::1"}, 16, append(make([]byte, 15), 1)},
		{"gre", &parser.GREExpr{Header: &parser.GREHeader{
			FlagNames: []string{"key present"}, Key: &parser.IntLit{Value: 0x01020304},
		}}, 16, []byte{0x20, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0}},
		{"mpls", &parser.MPLSStackExpr{Stack: []parser.MPLSEntry{{Label: 1, TC: 2, Bottom: true, TTL: 64}}},
			28, append(append([]byte{0, 0, 0x15, 0x40}, make([]byte, 20)...), le(1)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ev.sockoptValue(tc.e, tc.optlen)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("SockoptValue() = %x, %v; want %x", got, err, tc.want)
			}
		})
	}
	if _, err := ev.sockoptValue(&parser.Pollfd{Pos: pos(9, 1)}, 4); err == nil ||
		!strings.Contains(err.Error(), "9:1: unsupported setsockopt value type: a pollfd") {
		t.Errorf("SockoptValue(pollfd) error = %v", err)
	}
}

func TestCheckSockoptValue(t *testing.T) {
	ev := &evaluator{}
	four := int32Bytes(1100)
	tests := []struct {
		name    string
		e       parser.Expr
		optlen  int
		live    []byte
		wantErr string
	}{
		{"int ok", bracket(intLit(1100)), 4, four, ""},
		{"int bad", bracket(intLit(1000)), 4, four, "bad getsockopt optval: expected: 1000 actual: 1100"},
		{"unsigned", bracket(intLit(0xffffffff)), 4, int32Bytes(-1), ""},
		{"optlen", bracket(intLit(1100)), 4, four[:2], "bad getsockopt optlen: expected: 4 actual: 2"},
		{"int optlen 8", bracket(intLit(1)), 8, make([]byte, 8), "unsupported getsockopt optlen: 8"},
		{"string ok", &parser.StringLit{Value: "cubic"}, 5, []byte("cubic"), ""},
		{"string len", &parser.StringLit{Value: "cubic"}, 6, []byte("cubic\x00"), "does not match length"},
		{"string bad", &parser.StringLit{Value: "cubic"}, 5, []byte("reno\x00"), "expected: 'cubic' actual: 'reno\\x00'"},
		{"linger", &parser.Linger{OnOff: 1, Linger: 5}, 8, lingerBytes(1, 5), ""},
		{"ellipsis", &parser.Ellipsis{}, 3, []byte{1, 2, 3}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ev.checkSockoptValue(tc.e, tc.optlen, tc.live)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckSockoptValue() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckSockoptValue() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzUnescape checks that any string from a script decodes or fails
// cleanly within fuzztest.Deadline, and that text without backslashes
// comes back unchanged.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`abc`, `\xf7\x63\xbf`, `\n\t\\`, `\x`, `\`, `\q`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fuzztest.Within(t, func() error {
			b, err := unescape(s)
			if err != nil {
				return nil
			}
			if len(b) > len(s) {
				return fmt.Errorf("Unescape(%q) grew to %d bytes", s, len(b))
			}
			if !strings.Contains(s, `\`) && string(b) != s {
				return fmt.Errorf("Unescape(%q) = %q", s, b)
			}
			return nil
		})
	})
}
