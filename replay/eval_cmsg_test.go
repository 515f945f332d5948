package replay

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

func cmsgExpr(level, typ string, data parser.Expr) *parser.Cmsg {
	return &parser.Cmsg{Level: word(level), Type: word(typ), Data: data}
}

func extErr(errno, origin string, info string, data int64) *parser.SockExtendedErr {
	return &parser.SockExtendedErr{
		Errno: word(errno), Origin: word(origin), Type: intLit(0), Code: intLit(0),
		Info: word(info), Data: intLit(data),
	}
}

func TestBuildControl(t *testing.T) {
	ev := &evaluator{}
	list := &parser.List{Elems: []parser.Expr{
		cmsgExpr("SOL_SOCKET", "SCM_TIMESTAMPING", &parser.ScmTimestamping{Sec: 0, Nsec: 10000000}),
		cmsgExpr("SOL_IP", "IP_RECVERR", extErr("ENOMSG", "SO_EE_ORIGIN_TIMESTAMPING", "SCM_TSTAMP_SND", 1999)),
		cmsgExpr("SOL_IPV6", "IPV6_RECVERR", extErr("ENOMSG", "SO_EE_ORIGIN_TIMESTAMPING", "SCM_TSTAMP_ACK", 7)),
		cmsgExpr("SOL_TCP", "TCP_CM_INQ", intLit(8000)),
	}}
	msgs, buf, err := ev.buildControl(list)
	if err != nil {
		t.Fatal(err)
	}
	wantLens := []int{48, 16 + 16, 16 + 28, 4}
	if len(msgs) != len(wantLens) {
		t.Fatalf("got %d messages", len(msgs))
	}
	space := 0
	for i, m := range msgs {
		if len(m.Data) != wantLens[i] {
			t.Errorf("message %d: data length %d, want %d", i, len(m.Data), wantLens[i])
		}
		space += cmsgSpace(wantLens[i])
	}
	if len(buf) != space {
		t.Errorf("buffer length %d, want %d", len(buf), space)
	}
	back := parseControl(buf)
	if err := checkControl(msgs, back, cmsgTiming{}); err != nil {
		t.Errorf("a buffer does not match itself: %v", err)
	}
	if got := binary.NativeEndian.Uint32(msgs[1].Data[12:]); got != 1999 {
		t.Errorf("ee_data = %d", got)
	}
	if msgs[3].Level != unix.SOL_TCP || msgs[3].Type != unix.TCP_CM_INQ {
		t.Errorf("TCP_CM_INQ message = %+v", msgs[3])
	}

	if _, _, err := ev.buildControl(&parser.List{Elems: []parser.Expr{intLit(1)}}); err == nil {
		t.Errorf("BuildControl accepted a non-cmsg element")
	}
	if msgs, buf, err := ev.buildControl(nil); err != nil || msgs != nil || buf != nil {
		t.Errorf("BuildControl(nil) = %v, %v, %v", msgs, buf, err)
	}
}

func TestCheckControl(t *testing.T) {
	ev := &evaluator{}
	build := func(elems ...parser.Expr) []cmsg {
		t.Helper()
		msgs, _, err := ev.buildControl(&parser.List{Elems: elems})
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	zc := func(data int64) parser.Expr {
		return cmsgExpr("SOL_IP", "IP_RECVERR", &parser.SockExtendedErr{
			Errno: intLit(0), Origin: word("SO_EE_ORIGIN_ZEROCOPY"), Type: intLit(0),
			Code: word("SO_EE_CODE_ZEROCOPY_COPIED"), Info: intLit(0), Data: intLit(data),
		})
	}
	ts := func(nsec int64) parser.Expr {
		return cmsgExpr("SOL_SOCKET", "SCM_TIMESTAMPING", &parser.ScmTimestamping{Nsec: nsec})
	}
	inq := func(v int64) parser.Expr { return cmsgExpr("SOL_TCP", "TCP_CM_INQ", intLit(v)) }
	timing := cmsgTiming{
		ScriptToLiveUsecs: func(us int64) int64 { return 1_000_000_000 + us },
		LiveStartUsecs:    1_000_000_000,
		ToleranceUsecs:    4000,
	}
	// The kernel's timestamp: 1000 s + 12 ms, as a timespec.
	live := build(ts(0))
	binary.NativeEndian.PutUint64(live[0].Data, 1000)
	binary.NativeEndian.PutUint64(live[0].Data[8:], 12_000_000)

	tests := []struct {
		name      string
		want, got []cmsg
		err       string
	}{
		{"same", build(zc(3), inq(5)), build(zc(3), inq(5)), ""},
		{"ee_data", build(zc(3)), build(zc(4)), "bad data in extended err 0: expected=3 actual=4"},
		{"int data", build(inq(8000)), build(inq(0)), "bad data in cmsg 0"},
		{"more", build(inq(1)), build(inq(1), inq(2)), "received more than 1 cmsgs"},
		{"fewer", build(inq(1), inq(2)), build(inq(1)), "received only 1 cmsgs"},
		{"type", build(inq(1)), build(zc(1)), "bad level in cmsg 0"},
		{"timestamp within tolerance", build(ts(10_000_000)), live, ""},
		{"timestamp off", build(ts(1_000_000)), live, "bad timestamp 0 in scm_timestamping 0: expected=1000001000 (1000) actual=1000012000 (12000)"},
		{"timestamp unchecked", build(ts(0)), live, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkControl(tc.want, tc.got, timing)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("CheckControl() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("CheckControl() = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestOptStats(t *testing.T) {
	ev := &evaluator{}
	eq := func(k string, v parser.Expr) parser.Expr {
		return &parser.Binary{Op: "=", X: word(k), Y: v}
	}
	build := func(elems ...parser.Expr) []cmsg {
		t.Helper()
		msgs, _, err := ev.buildControl(&parser.List{Elems: []parser.Expr{
			cmsgExpr("SOL_SOCKET", "SCM_TIMESTAMPING_OPT_STATS", &parser.List{Brace: true, Elems: elems}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	want := build(eq("TCP_NLA_BUSY", intLit(10000)), eq("TCP_NLA_SND_CWND", &parser.Ellipsis{}),
		eq("TCP_NLA_CA_STATE", word("TCP_CA_OPEN")), eq("TCP_NLA_DATA_SEGS_OUT", intLit(3)))
	if n := len(want[0].Data); n != 12+8+8+12 {
		t.Fatalf("attribute bytes = %d", n)
	}
	got := build(eq("TCP_NLA_BUSY", intLit(12000)), eq("TCP_NLA_SND_CWND", intLit(10)),
		eq("TCP_NLA_CA_STATE", intLit(0)), eq("TCP_NLA_DATA_SEGS_OUT", intLit(3)))
	if err := checkControl(want, got, cmsgTiming{ToleranceUsecs: 4000}); err != nil {
		t.Errorf("within tolerance: %v", err)
	}
	bad := build(eq("TCP_NLA_BUSY", intLit(10000)), eq("TCP_NLA_SND_CWND", intLit(10)),
		eq("TCP_NLA_CA_STATE", intLit(0)), eq("TCP_NLA_DATA_SEGS_OUT", intLit(4)))
	if err := checkControl(want, bad, cmsgTiming{ToleranceUsecs: 4000}); err == nil ||
		!strings.Contains(err.Error(), "bad TCP_NLA_DATA_SEGS_OUT: expected=3 actual=4") {
		t.Errorf("CheckControl() = %v", err)
	}
	if _, _, err := ev.buildControl(&parser.List{Elems: []parser.Expr{
		cmsgExpr("SOL_SOCKET", "SCM_TIMESTAMPING_OPT_STATS", &parser.List{Elems: []parser.Expr{intLit(1)}}),
	}}); err == nil {
		t.Errorf("accepted a stats list without name=value")
	}
}

func TestParseControlStopsAtBadLength(t *testing.T) {
	buf := appendCmsg(nil, cmsg{Level: 1, Type: 2, Data: []byte{1, 2, 3, 4}})
	buf = append(buf, make([]byte, cmsgHdrLen)...) // a zero cmsg_len
	if got := parseControl(buf); len(got) != 1 {
		t.Errorf("ParseControl() = %d messages, want 1", len(got))
	}
	if got := parseControl(buf[:cmsgHdrLen+2]); len(got) != 0 {
		t.Errorf("ParseControl(truncated) = %d messages, want 0", len(got))
	}
}
