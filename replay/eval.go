package replay

// The evaluator turns the expressions of a system call line into the values
// the call needs: integers (numbers, symbols, `A | B`), byte strings,
// and the memory images of the structs scripts write (linger, in6_addr, GRE
// header, MPLS label stack) for setsockopt. It also compares the values a
// call returned through memory with what the script expects. It never
// touches the kernel.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// evaluator evaluates syscall-line expressions.
type evaluator struct {
	// Defines are the -D name=value definitions. The lexer substitutes
	// them already; the evaluator resolves any name left over so that a
	// tree built without the lexer (e.g. by the synthesiser) still runs.
	Defines map[string]string
}

func errAt(n parser.Node, format string, args ...any) error {
	var pos parser.Pos
	if n != nil {
		pos = n.Position()
	}
	return &parser.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// maxDefineDepth bounds define-to-define resolution so that a cycle
// (-D A=B -D B=A) is an error instead of a hang.
const maxDefineDepth = 16

// int evaluates an integer expression: a number, a symbol, a -D name, a
// `|` of integers, or inet_addr("a.b.c.d") (the address as inet_addr(3)
// returns it: network byte order in memory).
func (ev *evaluator) int(e parser.Expr) (int64, error) {
	return ev.intDepth(e, 0)
}

func (ev *evaluator) intDepth(e parser.Expr, depth int) (int64, error) {
	switch x := e.(type) {
	case nil:
		return 0, errAt(nil, "missing integer expression")
	case *parser.IntLit:
		return x.Value, nil
	case *parser.Word:
		return ev.word(x, x.Name, depth)
	case *parser.Binary:
		switch x.Op {
		case "|":
			a, err := ev.intDepth(x.X, depth)
			if err != nil {
				return 0, err
			}
			b, err := ev.intDepth(x.Y, depth)
			if err != nil {
				return 0, err
			}
			return a | b, nil
		case "=":
			return 0, errAt(x, "expected an integer, got a name=value pair")
		}
		return 0, errAt(x, "operator %q does not give an integer", x.Op)
	case *parser.InAddr:
		if x.In6 {
			return 0, errAt(x, "inet6_addr is not an integer")
		}
		a, err := netip.ParseAddr(x.Addr)
		if err != nil || !a.Is4() {
			return 0, errAt(x, "bad IPv4 address %q", x.Addr)
		}
		b := a.As4()
		return int64(binary.NativeEndian.Uint32(b[:])), nil
	case *parser.Ellipsis:
		return 0, errAt(x, "expected an integer, got ...")
	}
	return 0, errAt(e, "expected an integer, got %s", exprKind(e))
}

// word resolves a name: a -D definition first (its value may be a number or
// another name), then the symbol table.
func (ev *evaluator) word(at parser.Node, name string, depth int) (int64, error) {
	if v, ok := ev.Defines[name]; ok {
		if depth >= maxDefineDepth {
			return 0, errAt(at, "definition of %q refers to itself", name)
		}
		v = strings.TrimSpace(v)
		if n, err := parseCInt(v); err == nil {
			return n, nil
		}
		return ev.word(at, v, depth+1)
	}
	if v, ok := lookupSymbol(name); ok {
		return v, nil
	}
	return 0, errAt(at, "unknown symbol %q", name)
}

// parseCInt parses a decimal or 0x hexadecimal integer, optionally negative.
func parseCInt(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var u uint64
	var err error
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		u, err = strconv.ParseUint(s[2:], 16, 64)
	} else {
		u, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return 0, err
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// int32 evaluates an integer that must fit a C int or unsigned int (as the
// reference requires of most arguments) and returns it as the C int the
// kernel sees.
func (ev *evaluator) int32(e parser.Expr) (int32, error) {
	v, err := ev.sized(e, 32)
	return int32(v), err
}

// uint8 evaluates an integer that must fit a byte (signed or unsigned).
func (ev *evaluator) uint8(e parser.Expr) (uint8, error) {
	v, err := ev.sized(e, 8)
	return uint8(v), err
}

// sized evaluates an integer that must fit in bits bits, signed or
// unsigned.
func (ev *evaluator) sized(e parser.Expr, bits uint) (int64, error) {
	v, err := ev.int(e)
	if err != nil {
		return 0, err
	}
	if v > 1<<bits-1 || v < -(1<<(bits-1)) {
		return 0, errAt(e, "value out of range for %d-bit integer: %d", bits, v)
	}
	return v, nil
}

// isEllipsis reports whether e is `...`.
func isEllipsis(e parser.Expr) bool {
	_, ok := e.(*parser.Ellipsis)
	return ok
}

// buffer evaluates a buffer argument, which is `...` (a live buffer) or
// NULL/0 (a null pointer); it reports whether the pointer is null.
func (ev *evaluator) buffer(e parser.Expr) (isNull bool, err error) {
	if isEllipsis(e) {
		return false, nil
	}
	if v, err := ev.int(e); err == nil && v == 0 {
		return true, nil
	}
	return false, errAt(e, "expected ... or NULL for a buffer, got %s", exprKind(e))
}

// bracketed returns the single element of `[x]`.
func bracketed(e parser.Expr) (parser.Expr, error) {
	l, ok := e.(*parser.List)
	if !ok || l.Brace {
		return nil, errAt(e, "expected [<value>], got %s", exprKind(e))
	}
	if len(l.Elems) != 1 {
		return nil, errAt(e, "expected [<value>] with one element, got %d", len(l.Elems))
	}
	return l.Elems[0], nil
}

// bracketedInt evaluates `[n]`.
func (ev *evaluator) bracketedInt(e parser.Expr) (int64, error) {
	x, err := bracketed(e)
	if err != nil {
		return 0, err
	}
	return ev.int(x)
}

// bracketedInt32 evaluates `[n]` where n must fit a C int.
func (ev *evaluator) bracketedInt32(e parser.Expr) (int32, error) {
	x, err := bracketed(e)
	if err != nil {
		return 0, err
	}
	return ev.int32(x)
}

// bytes evaluates a string expression: a literal (C escapes decoded) or
// adjacent literals (concatenated).
func (ev *evaluator) bytes(e parser.Expr) ([]byte, error) {
	switch x := e.(type) {
	case *parser.StringLit:
		b, err := unescape(x.Value)
		if err != nil {
			return nil, errAt(x, "%v", err)
		}
		return b, nil
	case *parser.Binary:
		if x.Op != "." {
			break
		}
		a, err := ev.bytes(x.X)
		if err != nil {
			return nil, err
		}
		b, err := ev.bytes(x.Y)
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	}
	return nil, errAt(e, "expected a string, got %s", exprKind(e))
}

// isString reports whether e is a string expression.
func isString(e parser.Expr) bool {
	switch x := e.(type) {
	case *parser.StringLit:
		return true
	case *parser.Binary:
		return x.Op == "."
	}
	return false
}

// cEscapes are the one-letter C escapes the script language allows in
// strings.
var cEscapes = map[byte]byte{'\\': '\\', '"': '"', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// unescape decodes the C escapes the script language allows in strings:
// \\ \" \f \n \r \t \v and \xHH.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("string ends with a lone backslash")
		}
		if e, ok := cEscapes[s[i]]; ok {
			out = append(out, e)
			continue
		}
		if s[i] != 'x' {
			return nil, fmt.Errorf("unsupported escape code: '%c'", s[i])
		}
		if i+2 >= len(s) {
			return nil, fmt.Errorf("invalid hex escape (\\xhh): %q", s[i-1:])
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("invalid hex escape (\\xhh): %q", s[i-1:i+3])
		}
		out = append(out, byte(v))
		i += 2
	}
	return out, nil
}

// exprKind names an expression's form for error messages.
func exprKind(e parser.Expr) string {
	switch x := e.(type) {
	case nil:
		return "nothing"
	case *parser.Ellipsis:
		return "..."
	case *parser.IntLit:
		return "an integer"
	case *parser.Word:
		return "a symbol"
	case *parser.StringLit:
		return "a string"
	case *parser.Binary:
		return "an expression with " + x.Op
	case *parser.List:
		if x.Brace {
			return "a {...} list"
		}
		return "an array"
	case *parser.InAddr:
		if x.In6 {
			return "an inet6_addr"
		}
		return "an inet_addr"
	case *parser.Sockaddr:
		return "a sockaddr"
	case *parser.Msghdr:
		return "a msghdr"
	case *parser.Iovec:
		return "an iovec"
	case *parser.Pollfd:
		return "a pollfd"
	case *parser.EpollEvent:
		return "an epoll_event"
	case *parser.Linger:
		return "a linger"
	case *parser.Cmsg:
		return "a cmsg"
	case *parser.ScmTimestamping:
		return "a scm_timestamping"
	case *parser.SockExtendedErr:
		return "a sock_extended_err"
	case *parser.MPLSStackExpr:
		return "an MPLS label stack"
	case *parser.GREExpr:
		return "a GRE header"
	}
	return fmt.Sprintf("%T", e)
}
