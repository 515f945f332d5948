package synth

import (
	"fmt"
	"strconv"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Linux picks the window scale of its SYN from the largest receive buffer
// the socket may get: ilog2(max(tcp_rmem[2], rmem_max)) - 15, or, when the
// application set SO_RCVBUF, from that buffer (tcp_select_initial_window).
// rmem_max is global; tcp_rmem belongs to the network namespace, where a
// replay runs.
const (
	wscaleShift    = 15
	rmemDefaultMin = 4096
	rmemDefault    = 131072
	// sysctlWScale is the smallest scale set through tcp_rmem: below it,
	// the host-wide rmem_max (4 MiB, scale 7, by default) would win.
	sysctlWScale = 7
)

// environment holds what the script sets up so that the replayed kernel
// behaves as the captured one did: option lines, a shell command run
// before the first event, and the receive buffer the application asked for.
type environment struct {
	options []*parser.Option
	init    []string // shell commands run before the first event
	initWhy []string // comments saying why
	rcvbuf  int64    // SO_RCVBUF to set before listen/connect; 0 if none
	// fastOpenConnect: the client asks for a Fast Open cookie on connect.
	fastOpenConnect bool
	// noDelay: the application turned Nagle's algorithm off (see noDelay).
	noDelay bool
}

func (e *environment) addInit(cmd, why string) {
	e.init, e.initWhy = append(e.init, cmd), append(e.initWhy, why)
}

// setupSYNFeatures turns on what the local SYN or SYN-ACK shows the
// captured kernel had enabled and this namespace's defaults may not: ECN
// negotiation (tcp_ecn) and a Fast Open server (tcp_fastopen).
func (b *builder) setupSYNFeatures(syn *capture.FlowPacket) {
	e := &b.env
	ecn := tcpwire.FlagECE | tcpwire.FlagCWR
	switch {
	case !b.server && syn.Flags&ecn == ecn:
		e.addInit("sysctl -q net.ipv4.tcp_ecn=1", "The captured client asked for ECN (SYN with ECE and CWR): enable it.")
	case b.server && !syn.Flags.Has(tcpwire.FlagECE) && b.remoteSYN() != nil && b.remoteSYN().Flags&ecn == ecn:
		e.addInit("sysctl -q net.ipv4.tcp_ecn=0", "The captured server ignored the client's ECN request: so does this one.")
	}
	if o := syn.Options(); !b.server && o.FastOpen && !o.FastOpenExp && o.CookieLen == 0 && syn.PayloadLen() == 0 {
		// A cookie request without data: what connect() sends with
		// TCP_FASTOPEN_CONNECT and no cookie cached.
		b.env.fastOpenConnect = true
	}
	if !b.opts.Exact {
		b.setupSYNOptions(syn)
	}
	switch o := syn.Options(); {
	case b.server && syn.Flags.Has(tcpwire.FlagACK) && b.fastOpenChild(syn):
		e.addInit("sysctl -q net.ipv4.tcp_fastopen=0x602 net.ipv4.tcp_fastopen_key="+packetdrillTFOKey,
			"The captured server opened the connection with the SYN (Fast Open): accept SYN data on every listener, "+
				"with or without a valid cookie; the key is packetdrill's defaults.sh one, so that its cookies are valid.")
	case b.server && syn.Flags.Has(tcpwire.FlagACK) && o.FastOpen && o.CookieLen > 0:
		e.addInit("sysctl -q net.ipv4.tcp_fastopen=0x402 net.ipv4.tcp_fastopen_key="+packetdrillTFOKey,
			"The captured server answered with a Fast Open cookie: a Fast Open server on every listener, cookies required "+
				"(the cookie's value follows the server's secret key: the SYN-ACK expects one of any value).")
	}
}

// setupSYNOptions turns off in the namespace what the local SYN or
// SYN-ACK shows the captured kernel did not offer although it could
// (a client offers what it has on; a server answers what the client
// offered): timestamps, SACK, window scaling. Under --pcap2pkt the
// handshake's options are checked as a set.
func (b *builder) setupSYNOptions(syn *capture.FlowPacket) {
	o := syn.Options()
	var r tcpwire.Options
	if rs := b.remoteSYNOrSYNACK(); rs != nil {
		r = rs.Options()
	}
	offered := func(mine, theirs bool) bool { return mine || (b.server && !theirs) }
	for _, x := range []struct {
		mine, theirs bool
		sysctl, what string
	}{
		{o.HasTS, r.HasTS, "net.ipv4.tcp_timestamps=0", "timestamps"},
		{o.SACKOK, r.SACKOK, "net.ipv4.tcp_sack=0", "SACK"},
		{o.HasWScale, r.HasWScale, "net.ipv4.tcp_window_scaling=0", "window scaling"},
	} {
		if !offered(x.mine, x.theirs) {
			b.env.addInit("sysctl -q "+x.sysctl, fmt.Sprintf("The captured kernel's SYN offers no %s: it had them off.", x.what))
		}
	}
}

// packetdrillTFOKey is the Fast Open key of the reference's defaults.sh: a
// capture of a packetdrill run carries cookies made with it.
const packetdrillTFOKey = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"

// fastOpenChild reports whether the local server made the connection a
// Fast Open one at the SYN: its SYN-ACK syn acknowledges data of the SYN,
// or it sends data before the handshake's last ACK.
func (b *builder) fastOpenChild(syn *capture.FlowPacket) bool {
	if b.remoteSYNData(syn) {
		return true
	}
	if b.dataFirst == 0 {
		// Asked once per SYN-ACK, and a flow may hold thousands.
		b.dataFirst = -1
		for i := range b.f.Packets.Len() {
			p := b.f.Packets.At(i)
			if p.From == b.remote && p.Flags.Has(tcpwire.FlagACK) && !p.Flags.Has(tcpwire.FlagSYN) {
				break
			}
			if p.From == b.local && p.PayloadLen() > 0 && !p.Flags.Has(tcpwire.FlagSYN) {
				b.dataFirst = 1
				break
			}
		}
	}
	return b.dataFirst > 0
}

// remoteSYNData reports whether the local SYN-ACK syn acknowledges data
// that came in the remote's SYN.
func (b *builder) remoteSYNData(syn *capture.FlowPacket) bool {
	p := b.remoteSYN()
	return p != nil && p.PayloadLen() > 0 && syn.Ack == p.Seq.Add(uint32(p.PayloadLen())+1)
}

// remoteSYNOrSYNACK returns the remote side's first SYN or SYN-ACK, or nil.
func (b *builder) remoteSYNOrSYNACK() *capture.FlowPacket {
	for i := range b.f.Packets.Len() {
		if p := b.f.Packets.At(i); p.From == b.remote && p.Flags.Has(tcpwire.FlagSYN) {
			return p
		}
	}
	return nil
}

// remoteSYN returns the remote side's SYN (not a SYN-ACK), or nil.
func (b *builder) remoteSYN() *capture.FlowPacket {
	if b.remoteSYNAt == 0 {
		// Looked up once: asked for each SYN-ACK (see fastOpenChild).
		b.remoteSYNAt = -1
		for i := range b.f.Packets.Len() {
			p := b.f.Packets.At(i)
			if p.From == b.remote && p.Flags.Has(tcpwire.FlagSYN) && !p.Flags.Has(tcpwire.FlagACK) {
				b.remoteSYNAt = i + 1
				break
			}
		}
	}
	if b.remoteSYNAt < 0 {
		return nil
	}
	return b.f.Packets.At(b.remoteSYNAt - 1)
}

// setupEnvironment keeps the captured ports, the local MTU (seen in the
// local SYN's MSS) and, when the local SYN's options are written exactly,
// its window scale.
func (b *builder) setupEnvironment() {
	e := &b.env
	f := b.f
	opt := func(name string, v int) {
		e.options = append(e.options, &parser.Option{Name: name, Value: strconv.Itoa(v), Set: true})
	}
	if family(f) == "IPv6" {
		e.options = append(e.options, &parser.Option{Name: "ip_version", Value: "ipv6", Set: true})
	}
	if b.server {
		if p := int(f.LocalEndpoint().Port()); p != parser.DefaultPort {
			opt("bind_port", p)
		}
	} else if p := int(f.RemoteEndpoint().Port()); p != parser.DefaultPort {
		opt("connect_port", p)
	}
	if cc := b.opts.CongestionControl; cc != "" {
		e.addInit("sysctl -q net.ipv4.tcp_congestion_control="+cc,
			"The captured kernel's congestion control (given for the synthesis; a capture does not show it).")
	}
	syn := b.localSYN()
	if syn == nil {
		return
	}
	b.setupSYNFeatures(syn)
	e.noDelay = b.noDelay()
	if b.uncollapsedRetrans() {
		e.addInit("sysctl -q net.ipv4.tcp_retrans_collapse=0",
			"The captured kernel retransmitted two short segments that fit in one apart: it did not join them.")
	}
	o := syn.Options()
	if o.HasMSS {
		hdr := 40
		if family(f) == "IPv6" {
			hdr = 60
		}
		if mtu := int(o.MSS) + hdr; mtu != parser.DefaultMTU {
			opt("mtu", mtu)
		}
	}
	if !o.HasWScale || !b.exactOptions(syn) {
		return
	}
	w := int(o.WScale)
	if w >= sysctlWScale {
		why := fmt.Sprintf("The captured kernel's SYN has wscale %d: give this namespace a receive buffer limit that makes it so.", w)
		rmem := int64(rmemDefault)
		if rs := b.remoteSYNOrSYNACK(); rs == nil || !rs.Options().HasWScale {
			// The peer did not scale: windows say nothing of the buffer
			// beyond 64 KiB.
		} else if n, ok := b.initialRcvbuf(w, int64(o.MSS)); ok {
			rmem = n
			why = fmt.Sprintf("The captured kernel's SYN has wscale %d and its first window after the handshake says a receive buffer of about %d bytes (tcp_rmem[1]): give this namespace both.", w, n)
		}
		if !b.opts.Exact && !b.opts.Strict && b.f.Bytes[b.remote] >= rmem/4 {
			// A replay injects through TUN, whose buffers cost the
			// receiver more memory than the captured NIC's or veth's did
			// (a 1448-byte segment is charged about 2.3 KB): with the
			// captured buffer its window would close short of data the
			// peer sent into it, and drop that. Windows are not checked;
			// what is acknowledged is.
			rmem2 := 2 * rmem
			if b.outOfOrder() {
				// Data held out of order, charged at TUN's cost while
				// the hole lasts, is what closes the window early: the
				// buffer is then at least twice the largest window the
				// captured kernel offered, which the replayed one can
				// offer too (a kernel offers the share of its buffer
				// that its segments' payload is of what they are
				// charged). Without a hole buffer autotuning keeps up,
				// and a kernel that stops it (tcp_moderate_rcvbuf=0)
				// still runs short.
				rmem2 = max(rmem2, ceilPow2(2*b.largestWindow(w)))
			}
			rmem = min(rmem2, 1<<(w+wscaleShift)) // not past what keeps the window scale
			why += fmt.Sprintf(" Raised to %d: a TUN injection costs the receiver more memory than the captured path did.", rmem)
		}
		e.addInit(fmt.Sprintf("sysctl -q net.ipv4.tcp_rmem=\"%d %d %d\"", rmemDefaultMin, rmem, max(rmem, 1<<(w+wscaleShift))), why)
		return
	}
	// A small scale means the application set SO_RCVBUF: about N bytes of
	// window for SO_RCVBUF=N (the kernel doubles it and advertises half).
	n := int64(3) << (w + wscaleShift - 1)
	if w == 0 {
		n = smallBuffer(int64(syn.Window), int64(o.MSS), o.HasTS)
	}
	e.rcvbuf = n
}

// largestWindow is the largest window the local side advertised after its
// SYN, in bytes (wscale: its window scale).
func (b *builder) largestWindow(wscale int) int64 {
	var most int64
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From == b.local && !p.Flags.Has(tcpwire.FlagSYN) && p.Flags.Has(tcpwire.FlagACK) {
			most = max(most, int64(p.Window)<<wscale)
		}
	}
	return most
}

// outOfOrder reports whether the remote's data reached the capture out of
// order: a segment above a hole, which the local side held until the hole
// was filled.
func (b *builder) outOfOrder() bool {
	var next tcpwire.Seq
	nextSet := false
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From != b.remote || p.PayloadLen() == 0 {
			continue
		}
		if nextSet && next.Diff(p.Seq) < 0 {
			return true
		}
		if end := p.Seq.Add(uint32(p.PayloadLen())); !nextSet || next.Diff(end) < 0 {
			next, nextSet = end, true
		}
	}
	return false
}

// ceilPow2 is the least power of two not below n (1 for n <= 1).
func ceilPow2(n int64) int64 {
	p := int64(1)
	for p < n {
		p *= 2
	}
	return p
}

// initialRcvbuf derives the initial receive buffer (tcp_rmem[1]) from the
// first window the local side advertises after its SYN: Linux offers half
// the buffer, rounded down to whole MSS and up to the scale's unit
// (tcp_select_initial_window, tcp_select_window). It reports false when
// that window is what the default buffer gives, so scripts of hosts with
// stock settings keep them. A receiver whose buffer differs from the
// captured one's drops or prunes what the captured kernel queued, and
// leaves quick-ack mode at other times: the window stops growing at a
// fixed fraction of the buffer, and a kernel acknowledges each segment
// while it grows, so a buffer 0.5% off moves the ACK pattern. The window
// leaves a range of buffers of about two MSS: roundBuffer picks in it.
func (b *builder) initialRcvbuf(wscale int, mss int64) (int64, bool) {
	if b.server && b.useTS {
		// A server's first window leaves room for the timestamps
		// (tcp_openreq_init_rwin); a client's does not (tcp_connect_init).
		mss -= 12
	}
	if syn := b.localSYN(); syn != nil && syn.Window < 0xffff && mss > 0 {
		// The SYN's window, unscaled, is half the buffer rounded down to
		// whole MSS when that fits in 16 bits: the first window after it
		// may already have grown with data (a server's comes with its
		// first ACK of data).
		win := int64(syn.Window)
		if win <= rmemDefault/2 && rmemDefault/2 < win+mss {
			return 0, false
		}
		return roundBuffer(2*win, 2*win+2*mss), true
	}
	grown := false // the window grew with data received (tcp_grow_window)
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From == b.remote && p.PayloadLen() >= 128 {
			grown = true
		}
		if p.From != b.local || p.Flags.Has(tcpwire.FlagSYN) || !p.Flags.Has(tcpwire.FlagACK) || p.Flags.Has(tcpwire.FlagRST) {
			continue
		}
		win := int64(p.Window) << wscale
		slack := 2 * (int64(1)<<wscale + mss)
		if d := 2*win - rmemDefault; -slack <= d && d <= slack {
			return 0, false
		}
		if grown || mss <= 0 {
			return 2 * win, true
		}
		// Half the buffer rounded down to whole MSS is the largest
		// multiple of mss the window rounds up to.
		unit := int64(1) << wscale
		hi := win / mss * mss
		lo := (win - unit + mss) / mss * mss
		if hi <= win-unit || lo > hi {
			return 2 * win, true
		}
		return roundBuffer(2*lo, 2*hi+2*mss), true
	}
	return 0, false
}

// roundBuffer returns the number in [lo, hi) that people would write: a
// power of two or three times one (from 1024), else the multiple of the
// largest power of ten (from 1000), else the middle. tcp_rmem is set by
// hand or by distributions, to round numbers.
func roundBuffer(lo, hi int64) int64 {
	for p := int64(1024); p < hi; p *= 2 {
		for _, m := range [...]int64{p, 3 * p} {
			if lo <= m && m < hi {
				return m
			}
		}
	}
	best := (lo + hi) / 2
	for p := int64(1000); p < hi; p *= 10 {
		if m := (lo + p - 1) / p * p; m < hi {
			best = m
		}
	}
	return best
}

// smallBuffer guesses the SO_RCVBUF behind a SYN window win without
// scaling: the kernel offers the buffer's window rounded down to whole
// segments, so the buffer lies in [win, win+seg); applications tend to ask
// for powers of two, and a buffer smaller than the one captured would drop
// data the captured kernel took.
func smallBuffer(win, mss int64, ts bool) int64 {
	seg := mss
	if ts {
		seg -= 12
	}
	p := int64(1)
	for p <= win {
		p <<= 1
	}
	if seg > 0 && p < win+seg {
		return p
	}
	return win + 1
}

// localSYN returns the local side's SYN or SYN-ACK, or nil.
func (b *builder) localSYN() *capture.FlowPacket {
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From == b.local && p.Flags.Has(tcpwire.FlagSYN) {
			return p
		}
	}
	return nil
}

// exactOptions reports whether the outbound packet p gets its option list
// written exactly: with Strict, when it carries the timestamps that the
// reference maps inbound TS ecr values through, or when it is a SYN or
// SYN-ACK of a script with pcap2pkt's rules: what a handshake negotiates
// is the kernel's decision (values that follow a secret are written `*`).
func (b *builder) exactOptions(p *capture.FlowPacket) bool {
	return b.opts.Strict || (b.useTS && p.Options().HasTS) || (!b.opts.Exact && p.Flags.Has(tcpwire.FlagSYN))
}

// rcvbufCall emits the SO_RCVBUF setsockopt the application made, if any.
func (b *builder) rcvbufCall(fd int64) {
	if b.env.rcvbuf == 0 {
		return
	}
	b.comment(fmt.Sprintf("The captured SYN's window scale says the application shrank its receive buffer: about %d bytes.", b.env.rcvbuf))
	b.call(b.f.Packets.At(0).Time(), "setsockopt", 0, num(fd), word("SOL_SOCKET"), word("SO_RCVBUF"), &parser.List{Elems: []parser.Expr{num(b.env.rcvbuf)}}, num(4))
}

// noDelay reports whether the local side sent a segment of new data
// shorter than the MSS while an earlier such segment was not yet
// acknowledged: Linux's Nagle test (tcp_nagle_check, Minshall's variant)
// holds such a segment back until that ACK, so the application had set
// TCP_NODELAY (or queued the data as separate segments, which TCP_NODELAY
// reproduces too). A FIN is never held.
func (b *builder) noDelay() bool {
	var high highMark
	var una, sml tcpwire.Seq
	var acked, small bool
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From == b.remote {
			if p.Flags.Has(tcpwire.FlagACK) && (!acked || una.LessThan(p.Ack)) {
				una, acked = p.Ack, true
			}
			continue
		}
		if p.PayloadLen() == 0 || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST) != 0 {
			continue
		}
		end := p.Seq.Add(uint32(p.PayloadLen()))
		if !high.advance(end) {
			continue // a retransmission
		}
		// Only a segment below the MSS counts as short: a larger one may be
		// an MTU probe, which does not update the Nagle state
		// (tcp_mtu_probe), and a TSO super-segment with a short tail is
		// not told from it.
		if m := b.segSize(p, b.local); m == 0 || p.PayloadLen() >= m {
			continue
		}
		if small && acked && una.LessThan(sml) && !p.Flags.Has(tcpwire.FlagFIN) {
			return true
		}
		sml, small = end, true
	}
	return false
}

// noDelayCall emits the TCP_NODELAY setsockopt on fd when noDelay said so.
func (b *builder) noDelayCall(at time.Time, fd int64) {
	if !b.env.noDelay {
		return
	}
	b.comment("A short segment left while an earlier short one was unacknowledged: Nagle's algorithm was off.")
	b.call(at, "setsockopt", 0, num(fd), word("SOL_TCP"), word("TCP_NODELAY"), &parser.List{Elems: []parser.Expr{num(1)}}, num(4))
}

// uncollapsedRetrans reports whether the local side retransmitted a short
// segment alone and then, separately, the data right after it, where both
// fit in one segment: Linux joins such a pair when it retransmits the first
// (tcp_retrans_try_collapse) unless net.ipv4.tcp_retrans_collapse is off or
// the application ended a record between them (MSG_EOR).
func (b *builder) uncollapsedRetrans() bool {
	var high highMark
	var prevEnd tcpwire.Seq
	var prev bool
	prevLen := 0
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From != b.local || p.PayloadLen() == 0 || p.Flags&(tcpwire.FlagSYN|tcpwire.FlagRST|tcpwire.FlagFIN) != 0 {
			continue
		}
		end := p.Seq.Add(uint32(p.PayloadLen()))
		if high.advance(end) {
			continue
		}
		m := b.segSize(p, b.local)
		if prev && p.Seq == prevEnd && m > 0 && prevLen+p.PayloadLen() <= m {
			return true
		}
		prev, prevEnd, prevLen = true, end, p.PayloadLen()
	}
	return false
}

// Send buffers: the replayed application's writes must not block where the
// captured one's did not. The captured application may have written more
// than a stock initial send buffer holds (tcp_wmem[1], 16 KiB) in one call,
// or its host had a larger one; a script's write that does not fit blocks
// the script, so a script whose largest write exceeds stockSndbuf/2 gives
// the namespace an initial buffer of bigSndbuf (or four times that write).
// The size of the send buffer decides only when an application blocks, not
// what TCP sends.
const (
	stockSndbuf = 16384
	bigSndbuf   = 4 << 20
)

// sendBuffer returns the command that sets tcp_wmem and the comment lines
// saying why, or "" when the writes, the largest of largest bytes, fit a
// stock buffer.
func (b *builder) sendBuffer(largest int64) (string, []string) {
	if largest <= stockSndbuf/2 {
		return "", nil
	}
	n := max(int64(bigSndbuf), 4*largest)
	return fmt.Sprintf("sysctl -q net.ipv4.tcp_wmem=\"4096 %d %d\"", n, n),
		[]string{fmt.Sprintf("Writes of up to %d bytes: a send buffer that holds them, so that no write blocks where the captured one did not.", largest)}
}
