package replay

// Control messages (msg_control of sendmsg/recvmsg). A script's list of
// {cmsg_level=, cmsg_type=, cmsg_data=} is turned into the buffer the
// reference builds: for sendmsg it is what is sent, for recvmsg its size is
// the room given to the kernel and its contents are the expectation. The
// received messages are then compared one by one, with the reference's
// rules: struct sock_extended_err field by field, SCM_TIMESTAMPING within
// the timing tolerance, SCM_TIMESTAMPING_OPT_STATS attribute by attribute,
// anything else byte for byte.

import (
	"encoding/binary"
	"fmt"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// cmsgHdrLen is CMSG_ALIGN(sizeof(struct cmsghdr)).
const cmsgHdrLen = unix.SizeofCmsghdr

func cmsgAlign(n int) int { return (n + cmsgAlignTo - 1) &^ (cmsgAlignTo - 1) }

// cmsgAlignTo is sizeof(size_t), the alignment glibc's CMSG_ALIGN uses.
const cmsgAlignTo = 8

func cmsgSpace(n int) int { return cmsgHdrLen + cmsgAlign(n) }

// Sizes of the structs a control message may carry (include/uapi/linux/
// errqueue.h, in.h, in6.h; struct scm_timestamping is three timespecs).
const (
	sockExtendedErrLen = 16
	sockaddrIn4Len     = 16
	sockaddrIn6Len     = 28
	scmTimestampingLen = 48
	nlaHdrLen          = 4
)

// nlaIgnore is the reference's "any value" marker for an attribute written
// as `...` (its OPT_NLA_IGNORE_VAL, ~0U, cut to the attribute's size).
const nlaIgnore = 0xffffffff

// tcpNLASizes is the payload size of each TCP_NLA_* attribute of
// SCM_TIMESTAMPING_OPT_STATS (include/uapi/linux/tcp.h), by type.
var tcpNLASizes = []struct {
	name string
	size int
}{
	{"TCP_NLA_PAD", 4}, {"TCP_NLA_BUSY", 8}, {"TCP_NLA_RWND_LIMITED", 8},
	{"TCP_NLA_SNDBUF_LIMITED", 8}, {"TCP_NLA_DATA_SEGS_OUT", 8},
	{"TCP_NLA_TOTAL_RETRANS", 8}, {"TCP_NLA_PACING_RATE", 8},
	{"TCP_NLA_DELIVERY_RATE", 8}, {"TCP_NLA_SND_CWND", 4}, {"TCP_NLA_REORDERING", 4},
	{"TCP_NLA_MIN_RTT", 4}, {"TCP_NLA_RECUR_RETRANS", 1},
	{"TCP_NLA_DELIVERY_RATE_APP_LMT", 1}, {"TCP_NLA_SNDQ_SIZE", 4},
	{"TCP_NLA_CA_STATE", 1}, {"TCP_NLA_SND_SSTHRESH", 4}, {"TCP_NLA_DELIVERED", 4},
	{"TCP_NLA_DELIVERED_CE", 4}, {"TCP_NLA_BYTES_SENT", 8},
	{"TCP_NLA_BYTES_RETRANS", 8}, {"TCP_NLA_DSACK_DUPS", 4}, {"TCP_NLA_REORD_SEEN", 4},
	{"TCP_NLA_SRTT", 4},
}

// The TCP_NLA_* types whose values are times, compared within the
// tolerance (the reference's busy/rwnd/sndbuf-limited group).
var tcpNLATimes = map[int]bool{1: true, 2: true, 3: true}

// cmsg is one control message: level, type and data bytes.
type cmsg struct {
	Level, Type int32
	Data        []byte
}

// buildControl evaluates a msg_control list into control messages and the
// buffer holding them (each message CMSG_SPACE-aligned, as CMSG_NXTHDR
// walks them). A nil expression is an empty list.
func (ev *evaluator) buildControl(e parser.Expr) ([]cmsg, []byte, error) {
	if e == nil {
		return nil, nil, nil
	}
	l, ok := e.(*parser.List)
	if !ok {
		return nil, nil, errAt(e, "msg_control must be a list, got %s", exprKind(e))
	}
	var msgs []cmsg
	var buf []byte
	for _, el := range l.Elems {
		ce, ok := el.(*parser.Cmsg)
		if !ok {
			return nil, nil, errAt(el, "msg_control element must be a cmsg, got %s", exprKind(el))
		}
		m, err := ev.cmsg(ce)
		if err != nil {
			return nil, nil, err
		}
		msgs = append(msgs, m)
		buf = appendCmsg(buf, m)
	}
	return msgs, buf, nil
}

func appendCmsg(buf []byte, m cmsg) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, cmsgSpace(len(m.Data)))...)
	binary.NativeEndian.PutUint64(buf[start:], uint64(cmsgHdrLen+len(m.Data)))
	binary.NativeEndian.PutUint32(buf[start+8:], uint32(m.Level))
	binary.NativeEndian.PutUint32(buf[start+12:], uint32(m.Type))
	copy(buf[start+cmsgHdrLen:], m.Data)
	return buf
}

func (ev *evaluator) cmsg(ce *parser.Cmsg) (cmsg, error) {
	level, err := ev.int32(ce.Level)
	if err != nil {
		return cmsg{}, err
	}
	typ, err := ev.int32(ce.Type)
	if err != nil {
		return cmsg{}, err
	}
	m := cmsg{Level: level, Type: typ}
	switch d := ce.Data.(type) {
	case *parser.ScmTimestamping:
		m.Data = make([]byte, scmTimestampingLen)
		binary.NativeEndian.PutUint64(m.Data, uint64(d.Sec))
		binary.NativeEndian.PutUint64(m.Data[8:], uint64(d.Nsec))
	case *parser.SockExtendedErr:
		m.Data, err = ev.extendedErr(d)
		if err != nil {
			return cmsg{}, err
		}
		// ip(v6)_recv_error appends the offender's address to the struct.
		if level == unix.SOL_IP {
			m.Data = append(m.Data, make([]byte, sockaddrIn4Len)...)
		} else {
			m.Data = append(m.Data, make([]byte, sockaddrIn6Len)...)
		}
	case *parser.List:
		m.Data, err = ev.optStats(d)
		if err != nil {
			return cmsg{}, err
		}
	default:
		v, err := ev.int32(ce.Data)
		if err != nil {
			return cmsg{}, errAt(ce.Data, "unrecognized type for cmsg_data: %v", err)
		}
		m.Data = int32Bytes(v)
	}
	return m, nil
}

// extendedErr is struct sock_extended_err.
func (ev *evaluator) extendedErr(d *parser.SockExtendedErr) ([]byte, error) {
	b := make([]byte, sockExtendedErrLen)
	errno, err := ev.int32(d.Errno)
	if err != nil {
		return nil, err
	}
	binary.NativeEndian.PutUint32(b, uint32(errno))
	for i, e := range []parser.Expr{d.Origin, d.Type, d.Code} {
		v, err := ev.uint8(e)
		if err != nil {
			return nil, err
		}
		b[4+i] = v
	}
	info, err := ev.int32(d.Info)
	if err != nil {
		return nil, err
	}
	data, err := ev.int32(d.Data)
	if err != nil {
		return nil, err
	}
	binary.NativeEndian.PutUint32(b[8:], uint32(info))
	binary.NativeEndian.PutUint32(b[12:], uint32(data))
	return b, nil
}

// optStats builds the netlink attributes of SCM_TIMESTAMPING_OPT_STATS
// from `{TCP_NLA_X=value, ...}`; `...` as a value matches anything.
func (ev *evaluator) optStats(l *parser.List) ([]byte, error) {
	var b []byte
	for _, el := range l.Elems {
		bin, ok := el.(*parser.Binary)
		if !ok || bin.Op != "=" {
			return nil, errAt(el, "expected TCP_NLA_<name>=<value>, got %s", exprKind(el))
		}
		key, err := ev.int(bin.X)
		if err != nil {
			return nil, err
		}
		if key < 0 || key >= int64(len(tcpNLASizes)) {
			return nil, errAt(bin.X, "bad NLA type %d", key)
		}
		size := tcpNLASizes[key].size
		var val uint64 = nlaIgnore
		if !isEllipsis(bin.Y) {
			v, err := ev.int(bin.Y)
			if err != nil {
				return nil, errAt(bin.Y, "values must be numeric or ellipsis")
			}
			if (size == 1 && (v < 0 || v > 0xff)) || (size == 4 && (v < 0 || v > 0xffffffff)) {
				return nil, errAt(bin.Y, "out of bound %d-byte value %d for %s", size, v, tcpNLASizes[key].name)
			}
			val = uint64(v)
		}
		attr := make([]byte, (nlaHdrLen+size+3)&^3)
		binary.NativeEndian.PutUint16(attr, uint16(nlaHdrLen+size))
		binary.NativeEndian.PutUint16(attr[2:], uint16(key))
		var v8 [8]byte
		binary.NativeEndian.PutUint64(v8[:], val)
		copy(attr[nlaHdrLen:], v8[:size])
		b = append(b, attr...)
	}
	return b, nil
}

// parseControl splits a received msg_control buffer (cut to the returned
// msg_controllen) into messages, walking it as CMSG_FIRSTHDR/CMSG_NXTHDR
// do and stopping at a zero cmsg_len as the reference's loop does.
func parseControl(buf []byte) []cmsg {
	var out []cmsg
	off := 0
	for off+cmsgHdrLen <= len(buf) {
		n := int(binary.NativeEndian.Uint64(buf[off:]))
		if n < cmsgHdrLen || off+n > len(buf) {
			break
		}
		out = append(out, cmsg{
			Level: int32(binary.NativeEndian.Uint32(buf[off+8:])),
			Type:  int32(binary.NativeEndian.Uint32(buf[off+12:])),
			Data:  buf[off+cmsgHdrLen : off+n],
		})
		off += cmsgAlign(n)
	}
	return out
}

// cmsgTiming converts and compares the times of SCM_TIMESTAMPING checks.
type cmsgTiming struct {
	// ScriptToLiveUsecs turns a script time into the live wall-clock time
	// (microseconds since the epoch) it stands for.
	ScriptToLiveUsecs func(scriptUsecs int64) int64
	// LiveStartUsecs is the live time of script time 0, for messages.
	LiveStartUsecs int64
	ToleranceUsecs int64
}

// checkControl compares received control messages with the expected ones.
func checkControl(want, got []cmsg, timing cmsgTiming) error {
	i := 0
	for ; i < len(want) && i < len(got); i++ {
		w, g := want[i], got[i]
		if g.Level != w.Level {
			return fmt.Errorf("bad level in cmsg %d: expected=%d actual=%d", i, w.Level, g.Level)
		}
		if g.Type != w.Type {
			return fmt.Errorf("bad type in cmsg %d: expected=%d actual=%d", i, w.Type, g.Type)
		}
		if len(g.Data) != len(w.Data) {
			return fmt.Errorf("bad len in cmsg %d: expected=%d actual=%d", i, cmsgHdrLen+len(w.Data), cmsgHdrLen+len(g.Data))
		}
		var err error
		switch {
		case (g.Level == unix.SOL_IP && g.Type == unix.IP_RECVERR) ||
			(g.Level == unix.SOL_IPV6 && g.Type == unix.IPV6_RECVERR):
			err = checkExtendedErr(i, w.Data, g.Data)
		case g.Level == unix.SOL_SOCKET && g.Type == unix.SCM_TIMESTAMPING:
			err = checkTimestamping(i, w.Data, g.Data, timing)
		case g.Level == unix.SOL_SOCKET && g.Type == unix.SCM_TIMESTAMPING_OPT_STATS:
			err = checkOptStats(i, w.Data, g.Data, timing.ToleranceUsecs)
		default:
			if string(g.Data) != string(w.Data) {
				err = fmt.Errorf("bad data in cmsg %d: expected=%s actual=%s", i, printable(w.Data), printable(g.Data))
			}
		}
		if err != nil {
			return err
		}
	}
	switch {
	case len(got) > i:
		return fmt.Errorf("received more than %d cmsgs", i)
	case len(want) > i:
		return fmt.Errorf("received only %d cmsgs", i)
	}
	return nil
}

func checkExtendedErr(i int, want, got []byte) error {
	if len(want) < sockExtendedErrLen || len(got) < sockExtendedErrLen {
		return fmt.Errorf("bad len in extended err %d", i)
	}
	u32 := func(b []byte, off int) uint32 { return binary.NativeEndian.Uint32(b[off:]) }
	fields := []struct {
		name      string
		want, got uint32
	}{
		{"errno", u32(want, 0), u32(got, 0)},
		{"origin", uint32(want[4]), uint32(got[4])},
		{"type", uint32(want[5]), uint32(got[5])},
		{"code", uint32(want[6]), uint32(got[6])},
		{"info", u32(want, 8), u32(got, 8)},
		{"data", u32(want, 12), u32(got, 12)},
	}
	for _, f := range fields {
		if f.want != f.got {
			return fmt.Errorf("bad %s in extended err %d: expected=%d actual=%d", f.name, i, f.want, f.got)
		}
	}
	return nil
}

func checkTimestamping(i int, want, got []byte, timing cmsgTiming) error {
	for k := 0; k < 3 && 16*k+16 <= len(want) && 16*k+16 <= len(got); k++ {
		sec := int64(binary.NativeEndian.Uint64(want[16*k:]))
		nsec := int64(binary.NativeEndian.Uint64(want[16*k+8:]))
		if sec == 0 && nsec == 0 {
			continue // the script does not check this one
		}
		exp := sec*1000000 + nsec/1000
		if timing.ScriptToLiveUsecs != nil {
			exp = timing.ScriptToLiveUsecs(exp)
		}
		act := int64(binary.NativeEndian.Uint64(got[16*k:]))*1000000 +
			int64(binary.NativeEndian.Uint64(got[16*k+8:]))/1000
		if d := exp - act; d > timing.ToleranceUsecs || -d > timing.ToleranceUsecs {
			start := timing.LiveStartUsecs
			return fmt.Errorf("bad timestamp %d in scm_timestamping %d: expected=%d (%d) actual=%d (%d) start=%d",
				k, i, exp, exp-start, act, act-start, start)
		}
	}
	return nil
}

func checkOptStats(i int, want, got []byte, toleranceUsecs int64) error {
	for off := 0; off+nlaHdrLen <= len(want); {
		if off+nlaHdrLen > len(got) {
			return fmt.Errorf("bad nla_len %d: attribute missing", i)
		}
		wl, wt := int(binary.NativeEndian.Uint16(want[off:])), int(binary.NativeEndian.Uint16(want[off+2:]))
		gl, gt := int(binary.NativeEndian.Uint16(got[off:])), int(binary.NativeEndian.Uint16(got[off+2:]))
		if wt != gt {
			return fmt.Errorf("bad nla_type %d: expected=%d actual=%d", i, wt, gt)
		}
		if wl != gl {
			return fmt.Errorf("bad nla_len %d: expected=%d actual=%d", i, wl, gl)
		}
		if wt <= 0 || wt >= len(tcpNLASizes) || wl < nlaHdrLen || off+wl > len(want) || off+wl > len(got) {
			return fmt.Errorf("bad nla %d: unexpected attribute type %d", i, wt)
		}
		name := tcpNLASizes[wt].name
		var w8, g8 [8]byte
		copy(w8[:], want[off+nlaHdrLen:off+wl])
		copy(g8[:], got[off+nlaHdrLen:off+wl])
		ev, av := binary.NativeEndian.Uint64(w8[:]), binary.NativeEndian.Uint64(g8[:])
		ok := ev == av
		switch size := tcpNLASizes[wt].size; {
		case tcpNLATimes[wt]:
			d := int64(ev - av)
			ok = ev == nlaIgnore || (ev != 0 && d <= toleranceUsecs && -d <= toleranceUsecs) || (ev == 0 && av == 0)
		case size == 8 || size == 4:
			ok = ok || ev == nlaIgnore
		case size == 1:
			ok = ok || ev == 0xff
		}
		if !ok {
			return fmt.Errorf("bad %s: expected=%d actual=%d", name, ev, av)
		}
		off += (wl + 3) &^ 3
	}
	return nil
}
