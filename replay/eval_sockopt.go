package replay

// Memory images of setsockopt/getsockopt option values, as the reference
// builds them: `[n]` is a C int, a string is its bytes, {onoff=, linger=}
// is struct linger, inet6_addr() is struct in6_addr, a GRE header is
// struct gre and an MPLS stack is the reference's struct mpls_stack.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// GRE flag bits (RFC 2784/2890), as the script's `flags [...]` names them.
const (
	greFlagChecksum = 0x8000
	greFlagKey      = 0x2000
	greFlagSequence = 0x1000
)

// greStructLen is sizeof(struct gre) in the reference: flags, proto and
// twelve bytes of optional fields.
const greStructLen = 16

// mplsStackMaxEntries and mplsStackStructLen describe the reference's
// struct mpls_stack: six big-endian label stack entries and an int count.
const (
	mplsStackMaxEntries = 6
	mplsStackStructLen  = mplsStackMaxEntries*4 + 4
)

// sockoptValue returns the optval buffer setsockopt passes for e. The
// buffer is at least optlen bytes long (zero-padded) so the kernel never
// reads past it; the call passes optlen itself as the length.
func (ev *evaluator) sockoptValue(e parser.Expr, optlen int) ([]byte, error) {
	val, err := ev.sockoptImage(e)
	if err != nil {
		return nil, err
	}
	if len(val) < optlen {
		val = append(val, make([]byte, optlen-len(val))...)
	}
	return val, nil
}

func (ev *evaluator) sockoptImage(e parser.Expr) ([]byte, error) {
	switch x := e.(type) {
	case *parser.Linger:
		return lingerBytes(x.OnOff, x.Linger), nil
	case *parser.InAddr:
		return inAddrBytes(x)
	case *parser.GREExpr:
		return ev.greBytes(x.Header)
	case *parser.MPLSStackExpr:
		return mplsStackBytes(x)
	case *parser.List:
		v, err := ev.bracketedInt32(x)
		if err != nil {
			return nil, err
		}
		return int32Bytes(v), nil
	}
	if isString(e) {
		b, err := ev.bytes(e)
		if err != nil {
			return nil, err
		}
		// The reference passes a C string: keep its terminating NUL so an
		// optlen one past the text reads what the reference's would.
		return append(b, 0), nil
	}
	return nil, errAt(e, "unsupported setsockopt value type: %s", exprKind(e))
}

// int32Bytes is the memory image of a C int.
func int32Bytes(v int32) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(v))
}

// lingerBytes is the memory image of struct linger.
func lingerBytes(onoff, linger int64) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(int32(onoff)))
	return binary.NativeEndian.AppendUint32(b, uint32(int32(linger)))
}

func inAddrBytes(x *parser.InAddr) ([]byte, error) {
	a, err := netip.ParseAddr(x.Addr)
	if err != nil {
		return nil, errAt(x, "bad address %q", x.Addr)
	}
	if x.In6 {
		b := a.As16()
		return b[:], nil
	}
	if !a.Is4() {
		return nil, errAt(x, "bad IPv4 address %q", x.Addr)
	}
	b := a.As4()
	return b[:], nil
}

// greBytes is the reference's struct gre for a header expression: flags,
// proto 0, then checksum and offset (16 bits each), key, sequence number.
func (ev *evaluator) greBytes(h *parser.GREHeader) ([]byte, error) {
	if h == nil {
		return make([]byte, greStructLen), nil
	}
	var flags int64
	if h.FlagsValue != nil {
		flags = h.FlagsValue.Value
	}
	for _, name := range h.FlagNames {
		switch name {
		case "none":
		case "checksum present":
			flags |= greFlagChecksum
		case "key present":
			flags |= greFlagKey
		case "sequence present":
			flags |= greFlagSequence
		default:
			return nil, &parser.Error{Pos: h.Pos, Msg: fmt.Sprintf("unknown GRE flag %q", name)}
		}
	}
	val := func(l *parser.IntLit) int64 {
		if l == nil {
			return 0
		}
		return l.Value
	}
	b := make([]byte, greStructLen)
	binary.BigEndian.PutUint16(b[0:], uint16(flags))
	binary.BigEndian.PutUint16(b[4:], uint16(val(h.Sum)))
	binary.BigEndian.PutUint16(b[6:], uint16(val(h.Off)))
	binary.BigEndian.PutUint32(b[8:], uint32(val(h.Key)))
	binary.BigEndian.PutUint32(b[12:], uint32(val(h.Seq)))
	return b, nil
}

// MPLS label stack entry layout (RFC 3032).
const (
	mplsLabelShift = 12
	mplsTCShift    = 9
	mplsStackShift = 8
)

func mplsStackBytes(x *parser.MPLSStackExpr) ([]byte, error) {
	if len(x.Stack) > mplsStackMaxEntries {
		return nil, errAt(x, "MPLS label stack has %d entries, at most %d allowed",
			len(x.Stack), mplsStackMaxEntries)
	}
	b := make([]byte, mplsStackStructLen)
	for i, m := range x.Stack {
		entry := uint32(m.Label)<<mplsLabelShift | uint32(m.TC&7)<<mplsTCShift |
			uint32(m.TTL&0xff)
		if m.Bottom {
			entry |= 1 << mplsStackShift
		}
		binary.BigEndian.PutUint32(b[4*i:], entry)
	}
	binary.NativeEndian.PutUint32(b[4*mplsStackMaxEntries:], uint32(len(x.Stack)))
	return b, nil
}

// checkSockoptValue compares what getsockopt returned (live, already cut
// to the returned optlen) with the script's expected value e and optlen,
// with the reference's rules and messages.
func (ev *evaluator) checkSockoptValue(e parser.Expr, scriptOptlen int, live []byte) error {
	if len(live) != scriptOptlen {
		return errAt(e, "bad getsockopt optlen: expected: %d actual: %d", scriptOptlen, len(live))
	}
	switch x := e.(type) {
	case *parser.Ellipsis:
		return nil
	case *parser.List:
		if scriptOptlen != 4 {
			return errAt(e, "unsupported getsockopt optlen: %d", scriptOptlen)
		}
		want, err := ev.bracketedInt32(x)
		if err != nil {
			return err
		}
		got := int32(binary.NativeEndian.Uint32(live))
		if got != want {
			return errAt(e, "bad getsockopt optval: expected: %d actual: %d", want, got)
		}
		return nil
	case *parser.Linger:
		if scriptOptlen != 8 {
			return errAt(e, "unsupported getsockopt optlen: %d", scriptOptlen)
		}
		onoff := int32(binary.NativeEndian.Uint32(live))
		linger := int32(binary.NativeEndian.Uint32(live[4:]))
		if int64(onoff) != x.OnOff || int64(linger) != x.Linger {
			return errAt(e, "bad getsockopt optval: expected: {onoff=%d, linger=%d} actual: {onoff=%d, linger=%d}",
				x.OnOff, x.Linger, onoff, linger)
		}
		return nil
	case *parser.GREExpr:
		if scriptOptlen != greStructLen {
			return errAt(e, "unsupported getsockopt optlen: %d", scriptOptlen)
		}
		want, err := ev.greBytes(x.Header)
		if err != nil {
			return err
		}
		// The protocol field (bytes 2-3) is not compared, as in the reference.
		if !bytes.Equal(want[:2], live[:2]) || !bytes.Equal(want[4:], live[4:]) {
			return errAt(e, "bad getsockopt optval: expected GRE header %x actual %x", want, live)
		}
		return nil
	case *parser.InAddr:
		if !x.In6 {
			break
		}
		if scriptOptlen != 16 {
			return errAt(e, "unsupported getsockopt optlen: %d", scriptOptlen)
		}
		want, err := inAddrBytes(x)
		if err != nil {
			return err
		}
		if !bytes.Equal(want, live) {
			got := netip.AddrFrom16([16]byte(live))
			return errAt(e, "bad getsockopt optval: expected: %s actual: %s", x.Addr, got)
		}
		return nil
	}
	if isString(e) {
		want, err := ev.bytes(e)
		if err != nil {
			return err
		}
		if len(want) != scriptOptlen {
			return errAt(e, "bad getsockopt optval: expected optlen (%d bytes) does not match length of expected optval string '%s' (%d bytes)",
				scriptOptlen, printable(want), len(want))
		}
		if !bytes.Equal(want, live) {
			return errAt(e, "bad getsockopt optval: expected: '%s' actual: '%s'", printable(want), printable(live))
		}
		return nil
	}
	return errAt(e, "unsupported getsockopt value type: %s", exprKind(e))
}

// printable renders bytes for an error message: printable ASCII as is,
// everything else as \xHH.
func printable(b []byte) string {
	var sb bytes.Buffer
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	return sb.String()
}
