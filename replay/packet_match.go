package replay

// This file checks an outbound packet against its script line, the way the
// reference's verify_outbound_live_packet does, but reports every differing
// field by name ("expected ack 2, got ack 1") and prints both packets in
// script syntax, with sequence numbers relative as the script writes them.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// fieldDiff is one field that differs.
type fieldDiff struct {
	field     string
	want, got string
}

// verifyOutbound checks a sniffed packet (TCP numbers already in script
// space) against the script packet.
func (e *engine) verifyOutbound(es *eventState, sp *scriptPacket, s *socket, live *sniffed) error {
	p := live.p
	if !p.ipSumOK {
		return &eventError{kind: fatalError, msg: "error handling packet: bad outbound IP checksum", detail: e.dumpPair(es, sp, live)}
	}
	e.mapOutboundTS(sp, s, p)
	diffs := e.compareHeaders(sp, p)
	if d := e.checkFlowLabel(sp, s, p); d != nil {
		diffs = append(diffs, *d)
	}
	if sp.proto == tcpwire.ProtoTCP && p.isTCP() && !sp.optionsAny {
		diffs = append(diffs, e.compareOptions(es, sp, p)...)
	}
	if !p.isICMP() && len(diffs) == 0 && !bytes.Equal(p.Payload, make([]byte, len(p.Payload))) {
		diffs = append(diffs, fieldDiff{field: "payload", want: fmt.Sprintf("%d zero bytes", sp.payloadLen), got: "other bytes"})
	}
	if len(diffs) > 0 {
		return &eventError{kind: packetError, msg: formatDiffs(diffs), detail: e.dumpPair(es, sp, live)}
	}
	kind, start, end := es.timeKind, es.startUsecs, es.endUsecs
	earliest := es.earliestUsecs
	var latest int64
	// Under --pcap2pkt, data below the bytes the script's lines have
	// reached is a retransmission, the rest new data; each has rules of
	// its own.
	hasData := e.cfg.Extended && p.isTCP() && len(p.Payload) > 0
	retransmission := hasData && e.lineNxtSet && tcpwire.Seq(sp.seq).Diff(e.lineNxt) < 0
	newData := hasData && !retransmission
	if retransmission {
		// A retransmission may come from the first ACK that showed the
		// data lost (see lossSignal).
		if sig, ok := e.lossSignal(tcpwire.Seq(sp.seq), live.at); ok {
			earliest = min(earliest, e.liveUsecs(sig)+e.scriptStart)
			// Or as late as RACK's reordering timer after the line: a
			// kernel in recovery with no reordering seen retransmits on
			// the ACK, one out of it waits a quarter of the round trip
			// (tcp_rack_reo_wnd), or less where the data SACKed after the
			// hole left that much after it. Which it was in follows when
			// the peer's ACKs came against its transmissions, microseconds
			// the replay does not reproduce; a kernel that sent the lost
			// segment in the same burst as the data SACKed after it waits
			// the whole window where the captured one, a segment short,
			// had sent it a round trip before and retransmitted on the
			// ACK. The timer counts in ticks, rounded up, plus two
			// (TCP_TIMEOUT_MIN): at HZ=250 a window of 5.2 ms fires up to
			// 16 ms after the ACK.
			reo := e.pathSlackUsecs() / 2
			latest = max(start, end) + max(reo, e.reoTimerUsecs(reo)-e.cfg.ToleranceUsecs)
		}
	}
	if e.cfg.Extended && earliest < start && kind != parser.TimeAny {
		kind, start, end = parser.TimeAbsoluteRange, earliest, max(start, end)
	}
	if e.cfg.Extended && latest > max(start, end) && kind != parser.TimeAny {
		kind, end = parser.TimeAbsoluteRange, latest
	}
	if newData && kind != parser.TimeAny {
		// New data goes out as the peer's ACKs let it; over a path with a
		// round trip of its own, when they come within it is timing.
		lv := e.liveUsecs(live.at) + e.scriptStart
		if slack := e.newDataSlackUsecs(min(lv, start)) - e.cfg.ToleranceUsecs; slack > 0 {
			kind, start, end = parser.TimeAbsoluteRange, start-slack, max(start, end)+slack
		}
	}
	if lv := e.liveUsecs(live.at) + e.scriptStart; newData && kind != parser.TimeAny {
		switch {
		case lv > max(start, end) && e.heldOneAck(es.index, tcpwire.Seq(sp.seq).Add(uint32(sp.payloadLen)), e.liveTime(max(start, end)), live.at):
			kind, end = parser.TimeAbsoluteRange, lv // new data an ACK later after a loss (see heldOneAck)
		case lv < start && e.earlyOneAck(es.index, live.at):
			kind, start, end = parser.TimeAbsoluteRange, lv, max(start, end) // an ACK earlier (see earlyOneAck)
		}
	}
	terr := e.verifyTime(kind, start, end, e.liveUsecs(live.at), e.lastEventUsecs(), "outbound packet")
	if terr == nil && newData && kind != parser.TimeAny {
		terr = e.verifyPace(es.index, live.at)
	}
	if terr != nil {
		terr.detail = e.dumpPair(es, sp, live)
		return terr
	}
	return nil
}

// reoTimerUsecs is how long after an ACK RACK's reordering timer fires
// for a window of reo microseconds: rounded up to ticks, plus the two
// ticks of TCP_TIMEOUT_MIN (tcp_rack_mark_lost).
func (e *engine) reoTimerUsecs(reo int64) int64 {
	tick := e.host.Tick().Microseconds()
	if tick <= 0 {
		return reo
	}
	return ((reo+tick-1)/tick + 2) * tick
}

// verifyPace judges the line with the script's highest new data by the
// time since the start, where the kernel sent more data than the peer (its
// pace is then its own: the ACK clock, its congestion window): it must
// come within twice the tolerance percent of the capture's time for the
// line (and never less than the tolerance or the half round trip a data
// line may have). Each line alone is judged against the events before it,
// so a kernel a little slower in every round trip (a congestion window
// that grows less, cubic's HyStart leaving slow start early) passed every
// line while the transfer took a third longer. Twice the percent, because
// the replay itself runs a transfer over a delayed path up to an eighth
// longer than captured (its injection and reading latencies add up round
// trip after round trip). On a path whose round trip is within twice the
// tolerance the replay's own speed, not the kernel's pace, times the data,
// and a receiver's answers follow the peer's data, injected at the
// replay's speed: neither is judged.
func (e *engine) verifyPace(index int, at time.Time) *eventError {
	e.lostInCapture()
	if index != e.lastNewLine || !e.paceJudged || e.pathSlackUsecs() <= e.cfg.ToleranceUsecs {
		return nil
	}
	want := e.scriptAt[index] - e.scriptStart
	d := e.liveUsecs(at) - want
	lim := max(e.cfg.ToleranceUsecs, e.pathSlackUsecs(), int64(2*e.cfg.TolerancePercent/100*float64(want)))
	if -lim <= d && d <= lim {
		return nil
	}
	off := fmt.Sprintf("%.3f ms late", float64(d)/1000)
	if d < 0 {
		off = fmt.Sprintf("%.3f ms early", float64(-d)/1000)
	}
	return &eventError{kind: packetError, msg: fmt.Sprintf("pace error: the last new data came at %.3f s, the capture's %.3f s after the start (±%s ms, %g%% of that): %s",
		secs(e.liveUsecs(at)), secs(want), trimFloat(float64(lim)/1000), 2*e.cfg.TolerancePercent, off)}
}

// formatDiffs makes the one-line message: the differing fields, with a
// flags difference as context when other fields differ too.
func formatDiffs(diffs []fieldDiff) string {
	var parts []string
	var flags *fieldDiff
	for i := range diffs {
		d := &diffs[i]
		if d.field == "flags" && len(diffs) > 1 {
			flags = d
			continue
		}
		parts = append(parts, fmt.Sprintf("expected %s %s, got %s %s", d.field, d.want, d.field, d.got))
	}
	msg := strings.Join(parts, "; ")
	if flags != nil {
		msg += fmt.Sprintf(" (flags %s vs %s)", flags.want, flags.got)
	}
	return msg
}

// dumpPair prints the expected and actual packets with their times.
func (e *engine) dumpPair(es *eventState, sp *scriptPacket, live *sniffed) string {
	return fmt.Sprintf("  script packet: %9.6f %s\n  actual packet: %9.6f %s",
		secs(es.startUsecs-e.scriptStart), parser.FormatPacket(sp.ast),
		secs(e.liveUsecs(live.at)), parser.FormatPacket(e.actualToAST(sp, live.p)))
}

// mapOutboundTS learns the script->live TS val mapping from an outbound
// packet whose line has a TS option, and rewrites the packet's TS val into
// script space.
func (e *engine) mapOutboundTS(sp *scriptPacket, s *socket, p *wirePacket) {
	if !p.isTCP() || sp.optionsAny {
		return
	}
	sVal, ok := findTSVal(sp.options)
	if !ok {
		return
	}
	aVal, ok := findTSVal(p.TCP.Options)
	if !ok {
		return
	}
	s.tsValMap[sVal] = aVal
	if !s.foundFirstTS {
		s.foundFirstTS = true
		s.firstScriptTSVal, s.firstActualTSVal = sVal, aVal
	}
	opts := append([]byte(nil), p.TCP.Options...)
	for o, err := range tcpwire.EachOption(opts) {
		if _, _, ok := o.Timestamp(); ok && err == nil {
			binary.BigEndian.PutUint32(o.Data, s.firstScriptTSVal+(aVal-s.firstActualTSVal))
		}
	}
	p.TCP.Options = opts
}

// findTSVal returns the TS val of an option list.
func findTSVal(opts []byte) (val uint32, ok bool) {
	val, _, ok = findTS(opts)
	return val, ok
}

// findTS returns the TS val and ecr of an option list, and whether it has
// a timestamps option.
func findTS(opts []byte) (val, ecr uint32, ok bool) {
	for o, err := range tcpwire.EachOption(opts) {
		if v, e, isTS := o.Timestamp(); isTS && err == nil {
			val, ecr, ok = v, e, true
		}
	}
	return val, ecr, ok
}

// flagString prints TCP flags as the script wrote them: with an ACE
// digit when it did.
func flagString(f tcpwire.Flags, ace bool) string {
	if ace {
		return f.ACEString()
	}
	return f.String()
}

// compareHeaders compares the IP and transport headers.
func (e *engine) compareHeaders(sp *scriptPacket, p *wirePacket) []fieldDiff {
	var d []fieldDiff
	add := func(field string, want, got any) {
		d = append(d, fieldDiff{field: field, want: fmt.Sprint(want), got: fmt.Sprint(got)})
	}
	if p.v6() != sp.v6 {
		add("IP version", map[bool]int{false: 4, true: 6}[sp.v6], p.IP.Version)
		return d
	}
	if p.IP.Proto != sp.proto {
		add("protocol", protoName(sp.proto), protoName(p.IP.Proto))
		return d
	}
	if !p.v6() && p.IP.HeaderLen != 20 {
		add("IPv4 header length", 20, p.IP.HeaderLen)
	}
	switch sp.tosCheck {
	case tosECT01:
		if ecn := p.IP.TOS & 3; ecn != ecnECT0 && ecn != ecnECT1 {
			add("ecn", "ect0 or ect1", ecnName(ecn))
		}
	case tosECN:
		if p.IP.TOS&3 != sp.tos {
			add("ecn", ecnName(sp.tos), ecnName(p.IP.TOS&3))
		}
	case tosFull:
		if p.IP.TOS != sp.tos {
			add("tos", fmt.Sprintf("%#x", sp.tos), fmt.Sprintf("%#x", p.IP.TOS))
		}
	}
	if sp.ttl != ttlNone && p.IP.TTL != sp.ttl {
		add("ttl", sp.ttl, p.IP.TTL)
	}
	switch {
	case p.isTCP():
		t := &p.TCP
		if sp.flags != t.Flags {
			add("flags", flagString(sp.flags, sp.ace), flagString(t.Flags, sp.ace))
		}
		if t.Reserved != 0 {
			add("reserved bits", 0, t.Reserved)
		}
		if uint32(t.Seq) != sp.seq {
			add("seq", sp.seq, t.Seq)
		}
		if len(p.Payload) != sp.payloadLen {
			add("length", sp.payloadLen, len(p.Payload))
		}
		if uint32(t.Ack) != sp.ack {
			add("ack", sp.ack, t.Ack)
		}
		if sp.win >= 0 && int(t.Window) != sp.win {
			add("win", sp.win, t.Window)
		}
		if t.Urgent != sp.urg {
			add("urg", sp.urg, t.Urgent)
		}
	case p.isUDP():
		if int(p.UDP.Length) != 8+sp.udpLen {
			add("udp length", sp.udpLen, int(p.UDP.Length)-8)
		}
	case p.isICMP():
		if p.ICMP.Type != sp.icmpType {
			add("icmp type", sp.icmpType, p.ICMP.Type)
		}
		if p.ICMP.Code != sp.icmpCode {
			add("icmp code", sp.icmpCode, p.ICMP.Code)
		}
	}
	return d
}

func protoName(p uint8) string {
	switch p {
	case tcpwire.ProtoTCP:
		return "tcp"
	case tcpwire.ProtoUDP:
		return "udp"
	case tcpwire.ProtoICMP, tcpwire.ProtoICMPv6:
		return "icmp"
	}
	return fmt.Sprintf("protocol %d", p)
}

func ecnName(ecn uint8) string {
	return [...]string{"noecn", "ect1", "ect0", "ce"}[ecn&3]
}

// checkFlowLabel checks an IPv6 flow label the way the reference does: the
// first labelled packet sets the mapping; a different script label must
// come with a different live one, the same script label with the same.
func (e *engine) checkFlowLabel(sp *scriptPacket, s *socket, p *wirePacket) *fieldDiff {
	if !p.v6() || sp.flowLabel == 0 {
		return nil
	}
	if p.IP.FlowLabel == 0 {
		return &fieldDiff{field: "flowlabel", want: "a label", got: "none"}
	}
	if s.flowlabelScript == 0 {
		s.flowlabelScript, s.flowlabelLive = sp.flowLabel, p.IP.FlowLabel
		return nil
	}
	if sp.flowLabel != s.flowlabelScript {
		if p.IP.FlowLabel != s.flowlabelLive {
			s.flowlabelScript, s.flowlabelLive = sp.flowLabel, p.IP.FlowLabel
			return nil
		}
		return &fieldDiff{field: "flowlabel", want: "a different label", got: fmt.Sprintf("the same %#x", p.IP.FlowLabel)}
	}
	if p.IP.FlowLabel != s.flowlabelLive {
		return &fieldDiff{field: "flowlabel", want: fmt.Sprintf("%#x", s.flowlabelLive), got: fmt.Sprintf("%#x", p.IP.FlowLabel)}
	}
	return nil
}

// compareOptions compares TCP options in order: same kinds, same bytes,
// except a TS val (checked within the tolerance when --tcp_ts_tick_usecs is
// set) and a TS ecr (never checked), as in the reference; with --pcap2pkt,
// a SYN's as a set (compareOptionSet).
func (e *engine) compareOptions(es *eventState, sp *scriptPacket, p *wirePacket) []fieldDiff {
	want, _ := tcpwire.ParseOptions(sp.options)
	got, err := tcpwire.ParseOptions(p.TCP.Options)
	mismatch := func() []fieldDiff {
		w := formatWireOptions(want)
		if o := sp.ast.TCP.Options; o != nil && !o.Any {
			w = parser.FormatTCPOptions(o) // as written: `*` stays `*`
		}
		return []fieldDiff{{field: "options", want: w, got: formatWireOptions(got)}}
	}
	if err != nil {
		return mismatch()
	}
	tol := e.cfg.ToleranceUsecs
	if dyn := int64(e.cfg.TolerancePercent / 100 * float64(es.startUsecs-e.scriptStart)); dyn > tol {
		tol = dyn
	}
	wild := optionWilds(sp, len(want))
	if e.cfg.Extended && sp.flags&tcpwire.FlagSYN != 0 {
		return e.compareOptionSet(want, got, wild, tol, mismatch)
	}
	if len(want) != len(got) {
		return mismatch()
	}
	for i := range want {
		if want[i].Kind != got[i].Kind {
			return mismatch()
		}
		if d := e.compareOption(want[i], got[i], wild[i], tol); d != nil {
			return []fieldDiff{*d}
		}
	}
	return nil
}

// compareOptionSet compares a handshake's options as a set (--pcap2pkt):
// which options a SYN carries, and their values, are the kernel's
// decisions; their order and the padding between them are not (a capture
// of another system's stack puts them in its own order).
func (e *engine) compareOptionSet(want, got []tcpwire.Option, wild []parser.OptWild, tol int64, mismatch func() []fieldDiff) []fieldDiff {
	padding := func(o tcpwire.Option) bool { return o.Kind == tcpwire.OptKindEOL || o.Kind == tcpwire.OptKindNOP }
	used := make([]bool, len(got))
	for i, w := range want {
		if padding(w) {
			continue
		}
		j := -1
		for k, g := range got {
			if !used[k] && g.Kind == w.Kind {
				j = k
				break
			}
		}
		if j < 0 {
			return mismatch()
		}
		used[j] = true
		if d := e.compareOption(w, got[j], wild[i], tol); d != nil {
			return []fieldDiff{*d}
		}
	}
	for k, g := range got {
		if !used[k] && !padding(g) {
			return mismatch() // an option the script lacks
		}
	}
	return nil
}

// compareOption compares one option of the kind the script wants with
// the kernel's, within its `*` marks; tol bounds a TS val's distance.
func (e *engine) compareOption(w, g tcpwire.Option, wild parser.OptWild, tol int64) *fieldDiff {
	if wild&(parser.WildValue|parser.WildCookie) != 0 {
		return nil // `mss *`, `wscale *`, `FO *`: present, any value
	}
	if w.Kind == tcpwire.OptKindTimestamp && wild&parser.WildTSVal != 0 {
		return nil
	}
	switch w.Kind {
	case tcpwire.OptKindEOL, tcpwire.OptKindNOP:
	case tcpwire.OptKindTimestamp:
		if e.cfg.TCPTSTickUsecs == 0 || len(w.Data) != 8 || len(g.Data) != 8 {
			return nil
		}
		sv, av := tcpwire.Seq(binary.BigEndian.Uint32(w.Data)), tcpwire.Seq(binary.BigEndian.Uint32(g.Data))
		dist := int64(av.Diff(sv))
		if dist < 0 {
			dist = -dist
		}
		if dist*int64(e.cfg.TCPTSTickUsecs) > tol {
			return &fieldDiff{field: "TS val", want: fmt.Sprintf("%d (±%d µs)", uint32(sv), tol), got: fmt.Sprint(uint32(av))}
		}
	default:
		if w.Len != g.Len || !bytes.Equal(w.Data, g.Data) {
			return &fieldDiff{field: "option", want: describeOption(w), got: describeOption(g)}
		}
	}
	return nil
}

// optionWilds returns the `*` marks of the script packet's options, one per
// wire option (the encoder writes one wire option per script option), or
// none when the script has fewer.
func optionWilds(sp *scriptPacket, n int) []parser.OptWild {
	w := make([]parser.OptWild, n)
	// The wire list ends at the first EOL (what follows is padding), so
	// the script's list may be longer; up to there the two line up.
	if sp.ast == nil || sp.ast.TCP == nil || sp.ast.TCP.Options == nil || len(sp.ast.TCP.Options.List) < n {
		return w
	}
	for i, o := range sp.ast.TCP.Options.List[:n] {
		w[i] = o.Wild
	}
	return w
}

// actualToAST describes a sniffed packet (numbers in script space) as a
// script packet line, for messages.
func (e *engine) actualToAST(sp *scriptPacket, p *wirePacket) *parser.Packet {
	out := &parser.Packet{Dir: parser.Outbound}
	if sp.ast.IPInfo != nil {
		in := &parser.IPInfo{Paren: sp.ast.IPInfo.Paren}
		switch sp.tosCheck {
		case tosECN, tosECT01:
			in.TOS = ecnName(p.IP.TOS)
		case tosFull:
			in.TOS, in.TOSValue = "tos", int64(p.IP.TOS)
		}
		if sp.ast.IPInfo.FlowLabel != nil {
			fl := int64(p.IP.FlowLabel)
			in.FlowLabel = &fl
		}
		if sp.ast.IPInfo.TTL != nil {
			ttl := int64(p.IP.TTL)
			in.TTL = &ttl
		}
		out.IPInfo = in
	}
	if sp.ast.Ports != nil {
		src, dst := p.ports()
		out.Ports = &parser.Ports{Src: int64(src), Dst: int64(dst)}
	}
	switch {
	case p.isTCP():
		t := &p.TCP
		tcp := &parser.TCP{Flags: flagString(t.Flags, sp.ace), Seq: uint32(t.Seq), Len: uint32(len(p.Payload))}
		if t.Flags&tcpwire.FlagACK != 0 || t.Ack != 0 {
			ack := uint32(t.Ack)
			tcp.Ack = &ack
		}
		win := uint32(t.Window)
		tcp.Win = &win
		if t.Flags&tcpwire.FlagURG != 0 || t.Urgent != 0 {
			urg := uint32(t.Urgent)
			tcp.Urg = &urg
		}
		if len(t.Options) > 0 {
			opts, _ := tcpwire.ParseOptions(t.Options)
			tcp.Options, _ = optionsToAST(opts)
		}
		out.TCP = tcp
	case p.isUDP():
		out.UDP = &parser.UDP{Len: int64(len(p.Payload))}
	case p.isICMP():
		typ, code := icmpNames(p.v6(), p.ICMP.Type, p.ICMP.Code)
		out.ICMP = &parser.ICMP{Type: typ, Code: code}
	}
	return out
}

// newDataSlackUsecs is how far from its line's time new data may go out
// (see pathSlackUsecs): half the round trip, or a whole one once the
// kernel has been in loss recovery (an ACK injected before, script
// microseconds, the earlier of the line's time and the kernel's
// transmission, showed a hole). In and after a recovery a kernel sends
// from a congestion window and a pacing rate that followed the ACKs'
// microsecond timing (bbr's bandwidth samples, cubic's clock, PRR's
// count), and from an estimate of what is in flight that follows which
// held-back segments RACK had marked lost by then: which ACK of a round
// trip lets a segment out is anywhere in it. traffic6's IPv6 upload's
// client over a reordering, duplicating 10.8 ms path: new data 5.5 to 10
// ms early or late after its recoveries in 16 of 30 replays (its line's
// window half a round trip), in 1 of 210 with a whole one (12 ms early). A kernel more
// than a round trip early or late still fails, and verifyPace judges the
// whole transfer's pace.
func (e *engine) newDataSlackUsecs(before int64) int64 {
	slack := e.pathSlackUsecs()
	k := sort.Search(len(e.signals), func(k int) bool { return !e.signals[k].began.Before(e.liveTime(before)) })
	if e.recovered(k) {
		return 2 * slack
	}
	return slack
}

// pathSlackUsecs is half the round trip of the captured path: new data
// sent as the peer's ACKs allowed may be sent that much earlier or later
// than captured. Which ACK of a round trip lets a segment out follows how
// the kernel's transmissions were timed against the peer's ACKs, a matter
// of microseconds the replay does not reproduce; a kernel that sends a
// round trip late (a smaller initial window, a slower recovery) still
// fails. It is the rule verify --mutate's ground truth judges re-captures
// by (cmd/pcap2pkt/behaviour_test.go). The round trip is the handshake's,
// as the local side saw it: the delay of the anchored line that answers
// its SYN or SYN-ACK; without a handshake, the tenth percentile of the
// anchored lines' delays (each the captured peer's answer to a
// transmission; a low percentile leaves out the answers to a late
// duplicate). On a path of microseconds it is below the tolerance, which
// rules.
func (e *engine) pathSlackUsecs() int64 {
	if e.pathSlackSet {
		return e.pathSlack
	}
	e.pathSlackSet = true
	var delays []int64
	synSent := false
	for _, ev := range e.script.Events {
		p, ok := ev.Action.(*parser.Packet)
		if !ok || p.TCP == nil {
			continue
		}
		anchored := ev.Time.Anchor && ev.Time.Kind == parser.TimeRelative
		if p.Dir == parser.Outbound {
			synSent = synSent || strings.Contains(p.TCP.Flags, "S")
			continue
		}
		if synSent && anchored {
			e.pathSlack = ev.Time.Usecs / 2 // the handshake's
			return e.pathSlack
		}
		if anchored && ev.Time.Usecs > 0 {
			delays = append(delays, ev.Time.Usecs)
		}
	}
	if len(delays) == 0 {
		return 0
	}
	slices.Sort(delays)
	e.pathSlack = delays[len(delays)/10] / 2
	return e.pathSlack
}
