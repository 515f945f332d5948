package replay

// This file runs packet events: it finds (or creates, for a SYN to a
// listener or the SYN of a connect) the socket a script packet belongs to,
// injects inbound packets at their time, and sniffs outbound packets as
// soon as the previous event is done, so that early packets are caught
// too. At the end of the script it resets every live connection so the
// kernel forgets it, as the reference does.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// runPacket runs a packet event. The caller holds e.mu.
func (e *engine) runPacket(es *eventState, p *parser.Packet) error {
	sp, err := compilePacket(p, e.cfg.wireIPv6())
	if err != nil {
		return fatalf("error handling packet: %v", err)
	}
	s, err := e.socketForScriptPacket(sp)
	if err != nil {
		return fatalf("error handling packet: %v", err)
	}
	if p.Dir == parser.Outbound {
		return e.doOutbound(es, sp, s)
	}
	if e.cfg.Extended && es.ev.Time.Anchor && es.timeKind == parser.TimeRelative {
		return e.doAnchoredInbound(es, sp, s)
	}
	if werr := e.waitForEvent(es); werr != nil {
		return werr
	}
	if e.cfg.Extended {
		return e.injectLine(sp, s, e.lastSentSeen, es.index)
	}
	return e.doInbound(sp, s)
}

func (e *engine) wireFamily() int {
	if e.cfg.wireIPv6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// socketForScriptPacket is the reference's
// find_or_create_socket_for_script_packet.
func (e *engine) socketForScriptPacket(sp *scriptPacket) (*socket, error) {
	inbound := sp.ast.Dir == parser.Inbound
	ut := e.underTest
	if sp.proto == tcpwire.ProtoTCP {
		if inbound && (ut == nil || ut.state == sockListening) {
			return e.newPassiveSocket(sp)
		}
		if !inbound && sp.flags&tcpwire.FlagSYN != 0 && sp.flags&tcpwire.FlagACK == 0 && ut != nil && ut.state == sockActiveConnecting {
			ut.state = sockActiveSynSent
			ut.script.local = endpoint{port: sp.srcPort}
			ut.script.remote = endpoint{port: sp.dstPort}
			ut.script.localISN = sp.seq
			return ut, nil
		}
	}
	if ut != nil && scriptPacketMatchesSocket(sp, ut) {
		return ut, nil
	}
	if ut != nil && (sp.srcPort != 0 || sp.dstPort != 0) && (sp.proto == tcpwire.ProtoTCP || sp.proto == tcpwire.ProtoUDP) {
		return ut, nil
	}
	return nil, errors.New("no matching socket for script packet")
}

// scriptPacketMatchesSocket reports whether the socket could send or
// receive the packet.
func scriptPacketMatchesSocket(sp *scriptPacket, s *socket) bool {
	icmp := sp.proto == tcpwire.ProtoICMP || sp.proto == tcpwire.ProtoICMPv6
	switch s.protocol {
	case unix.IPPROTO_TCP:
		return sp.proto == tcpwire.ProtoTCP || icmp
	case unix.IPPROTO_UDP:
		return sp.proto == tcpwire.ProtoUDP || icmp
	case unix.IPPROTO_ICMP:
		return sp.proto == tcpwire.ProtoICMP
	case unix.IPPROTO_ICMPV6:
		return sp.proto == tcpwire.ProtoICMPv6
	}
	return false
}

// newPassiveSocket makes the child socket of an inbound SYN: any further
// packets of the script belong to it.
func (e *engine) newPassiveSocket(sp *scriptPacket) (*socket, error) {
	port, err := e.takeEphemeralPort()
	if err != nil {
		return nil, fmt.Errorf("picking an ephemeral port: %w", err)
	}
	s := e.newSocket()
	s.state = sockPassivePacketRecvd
	s.family = e.wireFamily()
	s.protocol = unix.IPPROTO_TCP
	s.script.remote = endpoint{port: sp.srcPort}
	s.script.local = endpoint{port: sp.dstPort}
	s.script.remoteISN = sp.seq
	s.live.remote = endpoint{ip: e.cfg.remoteAddr, port: port}
	s.live.local = endpoint{ip: e.cfg.localAddr, port: e.cfg.BindPort}
	s.live.remoteISN = sp.seq
	e.underTest = s
	return s, nil
}

// doInbound injects an inbound packet.
func (e *engine) doInbound(sp *scriptPacket, s *socket) error {
	if sp.proto == tcpwire.ProtoTCP && sp.flags&tcpwire.FlagSYN != 0 {
		e.peerShift, e.peerMSS = 0, 0
		for o, err := range tcpwire.EachOption(sp.options) {
			if v, ok := o.WScale(); ok && err == nil {
				e.peerShift = min(int(v), 14) // RFC 7323's limit, as the kernel takes it
			}
			if v, ok := o.MSS(); ok && err == nil {
				e.peerMSS = int(v)
			}
		}
	}
	if sp.proto == tcpwire.ProtoTCP {
		switch {
		case s.state == sockPassiveSynackSent && sp.flags&tcpwire.FlagACK != 0:
			s.state = sockPassiveSynackAcked
		case s.state == sockActiveSynSent && sp.flags&tcpwire.FlagSYN != 0 && sp.flags&tcpwire.FlagACK != 0:
			s.state = sockActiveSynAcked
			s.script.remoteISN = sp.seq
			s.live.remoteISN = sp.seq
		}
	}
	if e.cfg.IsAnyIP && sp.proto != tcpwire.ProtoTCP {
		s.live.remote.ip, s.live.local.ip = e.cfg.remoteAddr, e.cfg.localAddr
		if s.live.remote.port == 0 {
			s.live.remote.port = e.cfg.ConnectPort
		}
		if s.live.local.port == 0 {
			s.live.local.port = e.cfg.BindPort
		}
	}
	b, th, err := e.buildInbound(sp, s)
	if err != nil {
		return fatalf("error handling packet: %v", err)
	}
	if th != nil {
		s.lastInjected = th
		s.lastInjectedPayload = sp.payloadLen
		if sp.payloadLen > 0 && e.cfg.Extended && s == e.underTest {
			start := tcpwire.Seq(sp.seq)
			e.dataIn = append(e.dataIn, injectedData{seqRange{start, start.Add(uint32(sp.payloadLen))}, e.env.Clock.Now()})
		}
	}
	if e.cfg.Verbose {
		fmt.Fprintf(e.env.Stdout, "inbound injected packet: %9.6f %s\n", secs(e.nowUsecs()), parser.FormatPacket(sp.ast))
	}
	return e.inject(b)
}

// inject writes a packet to the device and the capture.
func (e *engine) inject(b []byte) error {
	if err := e.env.Device.WritePacket(b); err != nil {
		return &eventError{kind: fatalError, msg: fmt.Sprintf("error handling packet: injecting: %v", err), err: err}
	}
	if e.env.Capture != nil {
		if err := e.env.Capture.WritePacket(e.env.Clock.Now(), b, false); err != nil {
			return &eventError{kind: fatalError, msg: fmt.Sprintf("capture: %v", err), err: err}
		}
	}
	return nil
}

// sniffed is an outbound live packet with its kernel timestamp.
type sniffed struct {
	p  *wirePacket
	at time.Time
}

// anyTimeLimit bounds the wait for a `*` packet, which the reference waits
// for forever, so that a run cannot hang.
const anyTimeLimit = 2 * time.Minute

// sniffTimeout is how long to wait for an outbound packet: its delay after
// the previous event, plus 2 seconds (whole seconds, as the reference
// computes it); anyTimeLimit for `*`.
func (e *engine) sniffTimeout(es *eventState) time.Duration {
	if es.timeKind == parser.TimeAny {
		return anyTimeLimit
	}
	var lastScript int64
	if e.last != nil {
		lastScript = e.last.startUsecs
	}
	d := max(es.startUsecs-lastScript, es.endUsecs-lastScript)
	return time.Duration(d/1000000+2) * time.Second
}

// sniff reads the next outbound packet of the socket under test, dropping
// others. The caller holds e.mu; it is released while reading.
func (e *engine) sniff(es *eventState, want *socket) (*sniffed, *eventError) {
	ctx, cancel := context.WithTimeout(e.ctx, e.sniffTimeout(es))
	defer cancel()
	return e.sniffCtx(ctx, es, want)
}

// sentBeforeInjected reports whether the reader holds a packet the run has
// yet to read that the kernel sent before the peer's last injected packet.
func (e *engine) sentBeforeInjected() bool {
	q := e.outq
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pkts) > 0 && q.pkts[0].at.Before(e.lastInjected)
}

// sniffCtx is sniff until ctx ends. Meanwhile it injects the anchored
// inbound lines that fall due (engine_peer.go).
func (e *engine) sniffCtx(ctx context.Context, es *eventState, want *socket) (*sniffed, *eventError) {
	for {
		wake, aerr := e.injectAhead()
		if aerr != nil {
			return nil, &eventError{kind: fatalError, msg: aerr.Error(), err: aerr}
		}
		// Answers to the kernel's retransmissions fall due on their own
		// (engine_fifo.go), whatever line the run is at.
		answer, aerr := e.injectAnswers(true)
		if aerr != nil {
			return nil, &eventError{kind: fatalError, msg: aerr.Error(), err: aerr}
		}
		if !answer.IsZero() && (wake.IsZero() || answer.Before(wake)) {
			wake = answer
		}
		if e.racedWaitSet && e.told.ackSet && e.told.ack.Diff(e.racedWait.end) >= 0 && !e.sentBeforeInjected() {
			// The peer acknowledged what the line waited for the kernel
			// to send again: it has no more cause to (notePreempted).
			// Unless the kernel had sent it before: the reader may hold
			// a retransmission the kernel made ahead of the line, before
			// that ACK went in.
			return nil, &eventError{kind: fatalError, msg: "preempted", err: errPreempted}
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if !wake.IsZero() {
			rctx, cancel = context.WithDeadline(ctx, wake)
		}
		e.mu.Unlock()
		b, at, err := e.readOut(rctx)
		e.mu.Lock()
		cancel()
		if err != nil && ctx.Err() == nil && (rctx.Err() != nil || errors.Is(err, errDeadlinePassed)) {
			continue // an anchored line fell due
		}
		var cerr *captureError
		if errors.As(err, &cerr) {
			return nil, &eventError{kind: fatalError, msg: cerr.Error(), err: cerr.err}
		}
		if err != nil {
			if e.ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return nil, &eventError{kind: fatalError, msg: fmt.Sprintf("error handling packet: timed out waiting for packet (the expected packet never came within %v)", e.sniffTimeout(es))}
			}
			if e.ctx.Err() != nil {
				return nil, &eventError{kind: fatalError, msg: "run ended: " + context.Cause(e.ctx).Error(), err: err}
			}
			return nil, &eventError{kind: fatalError, msg: fmt.Sprintf("error handling packet: reading the device: %v", err), err: err}
		}
		p, derr := decodePacket(b)
		if derr != nil {
			continue
		}
		s := e.socketForLivePacket(p)
		if s == nil {
			continue
		}
		if s != want {
			return nil, fatalf("error handling packet: packet is not for expected socket")
		}
		return &sniffed{p: p, at: at}, nil
	}
}

// socketForLivePacket finds the socket a sniffed outbound packet comes
// from: the socket under test, or the one whose connect() it starts (then
// the local address, port and ISN are learned from it).
func (e *engine) socketForLivePacket(p *wirePacket) *socket {
	s := e.underTest
	if s == nil {
		return nil
	}
	sport, dport := p.ports()
	icmp := p.isICMP() && (s.protocol == unix.IPPROTO_ICMP || s.protocol == unix.IPPROTO_ICMPV6)
	lo, re := s.live.local, s.live.remote
	if p.IP.Src == lo.ip && p.IP.Dst == re.ip && (icmp || sport == lo.port && dport == re.port) {
		return s
	}
	udp := p.isUDP() && s.protocol == unix.IPPROTO_UDP && s.state == sockActiveConnecting
	icmpConn := icmp && s.state == sockActiveConnecting
	tcp := p.isTCP() && p.TCP.Flags&tcpwire.FlagSYN != 0 && p.TCP.Flags&tcpwire.FlagACK == 0 && s.protocol == unix.IPPROTO_TCP && s.state == sockActiveSynSent
	if !udp && !tcp && !icmpConn {
		return nil
	}
	if p.IP.Dst != s.live.remote.ip || (!icmpConn && dport != s.live.remote.port) {
		return nil
	}
	s.live.local = endpoint{ip: p.IP.Src, port: sport}
	if p.isTCP() {
		s.live.localISN = uint32(p.TCP.Seq)
	}
	return s
}

// doOutbound sniffs and checks an outbound packet (the reference's
// do_outbound_script_packet): without --strict_segments, consecutive
// segments are gathered until they carry the script's payload.
func (e *engine) doOutbound(es *eventState, sp *scriptPacket, s *socket) error {
	synack := sp.proto == tcpwire.ProtoTCP && sp.flags&tcpwire.FlagSYN != 0 && sp.flags&tcpwire.FlagACK != 0
	if s.state == sockPassivePacketRecvd && synack {
		s.script.localISN = sp.seq
	}
	if e.cfg.Extended {
		defer e.noteLine(sp)
	}
	e.lineOutAt = time.Time{}
	if e.ackLine(sp) {
		return e.doACKLine(es, sp, s)
	}
	if e.streamMatch(sp) {
		return e.doOutboundStream(es, sp, s)
	}
	want := sp.payloadLen
	var got []*sniffed
	total := 0
	for {
		sn, err := e.nextOutbound(es, s, synack)
		if err != nil {
			err.detail = e.dumpSniffed(es, sp, got)
			return err
		}
		e.noteLineOut(sn)
		if e.cfg.Verbose {
			fmt.Fprintf(e.env.Stdout, "outbound sniffed packet: %9.6f %s\n", secs(e.liveUsecs(sn.at)), parser.FormatPacket(e.actualToAST(sp, sn.p)))
		}
		n := len(sn.p.Payload)
		if len(got) > 0 {
			prev := got[len(got)-1]
			if !sameTuple(prev.p, sn.p) {
				got, total = nil, 0
			} else if msg := fragmentMismatch(sn.p, prev.p, n, total, want); msg != "" {
				return &eventError{kind: fatalError, msg: "error handling packet: " + msg, detail: e.dumpSniffed(es, sp, append(got, sn))}
			}
		}
		got = append(got, sn)
		total += n
		if total >= want || e.cfg.StrictSegments {
			break
		}
	}
	if total != want {
		return &eventError{kind: fatalError, msg: fmt.Sprintf("error handling packet: live packet payload: expected %d bytes vs actual %d bytes", want, total), detail: e.dumpSniffed(es, sp, got)}
	}
	live := got[0]
	if len(got) > 1 {
		live = aggregate(got)
	}
	return e.verifyOutbound(es, sp, s, live)
}

// nextOutbound returns the next outbound packet of socket s, its TCP
// numbers in script space: the rest of a segment that the previous line
// took only in part (see engine_stream.go), else a sniffed packet.
func (e *engine) nextOutbound(es *eventState, s *socket, synack bool) (*sniffed, *eventError) {
	if len(e.leftover) > 0 {
		p := e.leftover[0]
		e.leftover = e.leftover[1:]
		return p, nil
	}
	return e.pullOne(es, s, synack)
}

// pullOne sniffs the next packet of socket s (see nextOutbound); under
// --pcap2pkt, pure ACKs on the way count as progress.
func (e *engine) pullOne(es *eventState, s *socket, synack bool) (*sniffed, *eventError) {
	for {
		sn, err := e.sniff(es, s)
		if err != nil {
			return nil, err
		}
		e.learn(s, sn, synack)
		if e.outq != nil && e.noteAck(s, sn) {
			// With --pcap2pkt a pure ACK is progress, not a piece of the
			// stream: ACK lines judge it (engine_stream.go).
			continue
		}
		return sn, nil
	}
}

// learn takes what a sniffed packet of socket s tells about the live
// connection (the ISN of a SYN-ACK that synack says a line expects, or
// that came first under --pcap2pkt), and maps its TCP numbers into script
// space.
func (e *engine) learn(s *socket, sn *sniffed, synack bool) {
	t := sn.p.tcpHeader()
	if t == nil {
		return
	}
	if s.state == sockPassivePacketRecvd && (synack || e.outq != nil && t.Flags&(tcpwire.FlagSYN|tcpwire.FlagACK) == tcpwire.FlagSYN|tcpwire.FlagACK) {
		s.state = sockPassiveSynackSent
		s.live.localISN = uint32(t.Seq)
	}
	h := *t
	s.lastOutbound = &h
	s.toScriptSeq(t)
}

// liveUsecs converts a live instant to microseconds since the start.
func (e *engine) liveUsecs(t time.Time) int64 {
	return t.Sub(e.liveStart).Microseconds()
}

// toScriptSeq maps a sniffed TCP header's seq, ack and SACK blocks into
// script space.
func (s *socket) toScriptSeq(h *tcpwire.TCPHeader) {
	isSyn := h.Flags&tcpwire.FlagSYN != 0
	h.Seq = h.Seq.Add(-s.localSeqScriptToLive(isSyn))
	ackOffset := -s.remoteSeqScriptToLive(isSyn)
	if h.Flags&tcpwire.FlagACK != 0 {
		h.Ack = h.Ack.Add(ackOffset)
	}
	opts := append([]byte(nil), h.Options...)
	shiftSACK(opts, ackOffset)
	h.Options = opts
}

// sameTuple reports whether two packets have the same addresses and ports.
func sameTuple(a, b *wirePacket) bool {
	as, ad := a.ports()
	bs, bd := b.ports()
	return a.IP.Src == b.IP.Src && a.IP.Dst == b.IP.Dst && as == bs && ad == bd
}

// fragmentMismatch checks that a segment can follow the previous one in
// an aggregate (the reference's non-strict header check); "" if it can.
func fragmentMismatch(cur, prev *wirePacket, n, sniffedSoFar, want int) string {
	if (!cur.isTCP()) != (!prev.isTCP()) || cur.IP.Proto != prev.IP.Proto {
		return "aggregate candidate packet header layers differ"
	}
	if cur.isTCP() {
		c, p := &cur.TCP, &prev.TCP
		const strictOnly = tcpwire.FlagFIN | tcpwire.FlagPSH | tcpwire.FlagCWR
		switch {
		case c.HeaderLen != p.HeaderLen:
			return "aggregate candidate field tcp_data_offset differs"
		case c.Flags&^strictOnly != p.Flags&^strictOnly:
			return "aggregate candidate TCP flags differ"
		case c.Seq != p.Seq.Add(uint32(len(prev.Payload))):
			return fmt.Sprintf("aggregate candidate field tcp_seq: expected: %d vs actual: %d", p.Seq.Add(uint32(len(prev.Payload))), c.Seq)
		case c.Ack != p.Ack:
			return fmt.Sprintf("aggregate candidate field tcp_ack_seq: expected: %d vs actual: %d", p.Ack, c.Ack)
		case c.Window != p.Window:
			return fmt.Sprintf("aggregate candidate field tcp_window: expected: %d vs actual: %d", p.Window, c.Window)
		case c.Urgent != p.Urgent:
			return "aggregate candidate field tcp_urg_ptr differs"
		}
	}
	if n < want-sniffedSoFar && n != len(prev.Payload) {
		return fmt.Sprintf("fragment payload: expected %d bytes vs actual %d bytes; total payload: expected %d bytes vs actual %d bytes", len(prev.Payload), n, want, n+sniffedSoFar)
	}
	return ""
}

// aggregate joins segments into one packet: the last one's headers, the
// first one's seq and CWR, every payload.
func aggregate(got []*sniffed) *sniffed {
	last := got[len(got)-1]
	p := *last.p
	var payload []byte
	for _, g := range got {
		payload = append(payload, g.p.Payload...)
	}
	p.Payload = payload
	if p.isTCP() {
		first := &got[0].p.TCP
		p.TCP.Seq = first.Seq
		p.TCP.Flags = p.TCP.Flags&^tcpwire.FlagCWR | first.Flags&tcpwire.FlagCWR
	}
	return &sniffed{p: &p, at: last.at}
}

// dumpSniffed prints the script packet and the sniffed segments.
func (e *engine) dumpSniffed(es *eventState, sp *scriptPacket, got []*sniffed) string {
	d := fmt.Sprintf("  script packet: %9.6f %s", secs(es.startUsecs), parser.FormatPacket(sp.ast))
	for i, g := range got {
		d += fmt.Sprintf("\n  actual #%d:      %9.6f %s", i, secs(e.liveUsecs(g.at)), parser.FormatPacket(e.actualToAST(sp, g.p)))
	}
	return d
}

// closeAll closes the live fds the script left open and resets every TCP
// connection the kernel may still hold (the reference's close_all_fds).
func (e *engine) closeAll() error {
	var errs []error
	for _, f := range e.fds.entries {
		if f.liveFD >= 0 && !f.closed {
			if err := e.host.CloseFD(f.liveFD); err != nil {
				errs = append(errs, fmt.Errorf("closing live fd %d: %w", f.liveFD, err))
			}
			f.closed = true
		}
		s := f.sock
		if s != nil && s.protocol == unix.IPPROTO_TCP && s.live.local.port != 0 && s.live.remote.port != 0 {
			if err := e.resetConnection(s); err != nil {
				errs = append(errs, fmt.Errorf("error resetting connection: %w", err))
			}
		}
	}
	if len(errs) > 0 {
		return &parser.Error{File: e.script.File, Msg: errors.Join(errs...).Error(), Err: errors.Join(errs...)}
	}
	return nil
}

// resetConnection injects a RST the kernel accepts for the connection, so
// that it stops retransmitting into later runs.
func (e *engine) resetConnection(s *socket) error {
	rst := tcpwire.TCPHeader{SrcPort: s.live.remote.port, DstPort: s.live.local.port, Flags: tcpwire.FlagRST | tcpwire.FlagACK}
	switch {
	case s.lastInjected != nil && s.lastInjected.Flags&tcpwire.FlagACK != 0:
		h := s.lastInjected
		rst.Seq = h.Seq.Add(uint32(s.lastInjectedPayload))
		if h.Flags&tcpwire.FlagSYN != 0 {
			rst.Seq++
		}
		if h.Flags&tcpwire.FlagFIN != 0 {
			rst.Seq++
		}
		rst.Ack, rst.Window = h.Ack, h.Window
	case s.lastOutbound != nil && s.lastOutbound.Flags&tcpwire.FlagACK != 0:
		rst.Seq, rst.Ack = s.lastOutbound.Ack, s.lastOutbound.Seq
	case s.lastOutbound != nil:
		rst.Ack = s.lastOutbound.Seq + 1
	default:
		rst.Ack = 1
	}
	v6 := e.cfg.wireIPv6()
	hdr := ipHeaderLen(v6)
	b := tcpwire.AppendTCP(make([]byte, hdr, hdr+20), &rst)
	ipHeader(b, v6, len(b), 0, 0, ttlNone, tcpwire.ProtoTCP, s.live.remote.ip, s.live.local.ip)
	fillChecksums(b)
	if err := e.env.Device.WritePacket(b); err != nil {
		return err
	}
	if e.env.Capture != nil {
		return e.env.Capture.WritePacket(e.env.Clock.Now(), b, false)
	}
	return nil
}

// noteLineOut notes that the outbound line being run took sn: the event
// after the line counts its relative time from the latest such packet
// (adjustRelativeTimes).
func (e *engine) noteLineOut(sn *sniffed) {
	if sn.at.After(e.lineOutAt) {
		e.lineOutAt = sn.at
	}
}
