package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// HostPort names an endpoint for --local/--remote: an address and, if Port
// is not 0, a port.
type HostPort struct {
	Addr netip.Addr
	Port uint16
}

// ParseHostPort parses "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT".
func ParseHostPort(s string) (HostPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return HostPort{ap.Addr().Unmap(), ap.Port()}, nil
	}
	h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		return HostPort{a.Unmap(), 0}, nil
	}
	return HostPort{}, fmt.Errorf("%q: want IP or IP:PORT (IPv6 as [addr]:port)", s)
}

// IsSet reports whether h names anything.
func (h HostPort) IsSet() bool { return h.Addr.IsValid() }

// Matches reports whether ap is the endpoint h names.
func (h HostPort) Matches(ap netip.AddrPort) bool {
	return h.IsSet() && ap.Addr().Unmap() == h.Addr && (h.Port == 0 || ap.Port() == h.Port)
}

func (h HostPort) String() string {
	if h.Port == 0 {
		return h.Addr.String()
	}
	return netip.AddrPortFrom(h.Addr, h.Port).String()
}

// chooseLocal decides which side of f is the kernel under test, in order:
// explicit options, the capture's own direction marks, TX checksum offload,
// untouched initial TTLs, the path delay seen in timestamp echoes, and
// finally the server (receiver of the SYN).
//
// Captures on a veth pair without path delay carry no trace of the capture
// point (both sides' checksums are unfilled, TTLs untouched, and the delays
// are stack noise): they get the server unless --local/--remote says.
func chooseLocal(f *Flow, o *FlowOptions, echo *echoScratch) {
	note := ""
	if o.Local.IsSet() || o.Remote.IsSet() {
		note = " (--local/--remote match neither end)"
	}
	set := func(s Side, why string) { f.Local, f.LocalReason = s, why+note }
	for _, s := range []Side{SideA, SideB} {
		if o.Local.Matches(f.Endpoint(s)) {
			f.Local, f.LocalReason = s, "--local "+o.Local.String()
			return
		}
		if o.Remote.Matches(f.Endpoint(s)) {
			f.Local, f.LocalReason = s.Other(), "--remote "+o.Remote.String()
			return
		}
	}
	for _, by := range [...]func(*evidence) (Side, string, bool){byCaptureDir, bySilence, byChecksum, byTTL} {
		if s, why, ok := by(&f.evidence); ok {
			set(s, why)
			return
		}
	}
	if s, why, ok := byEchoDelay(f, &f.evidence, echo); ok {
		set(s, why)
		return
	}
	if s, why, ok := byHandshakeDelay(&f.evidence); ok {
		set(s, why)
		return
	}
	f.LocalGuessed = true
	switch {
	case f.SYN:
		set(SideB, "guessed: it received the SYN")
	case f.SYNACK:
		set(SideB, "guessed: it sent the SYN-ACK")
	default:
		s := SideB
		if f.A.Port() < f.B.Port() {
			s = SideA
		}
		set(s, "guessed: it has the lower port (no handshake in the capture)")
	}
}

// GuessedNote is what to tell the user about a flow whose local side is
// guessed, naming the flag that settles it; "" when it is not guessed.
func GuessedNote(f *Flow) string {
	if !f.LocalGuessed {
		return ""
	}
	return fmt.Sprintf("flow %d: the local side (the kernel under test) is guessed to be %s, the server: nothing in the capture "+
		"shows which end it was taken on; if it is the other end, say --local %s", f.Index, f.LocalEndpoint(), f.RemoteEndpoint().Addr())
}

// evidence is what chooseLocal weighs, gathered packet by packet as the
// tracker files them (add), so that a flow whose packets are not kept
// (FlowOptions.NoPackets) has its local side chosen as one that keeps
// them. Counts are per sender.
type evidence struct {
	out, in [2]int    // packets marked outgoing, incoming by the capture
	sent    [2]int    // packets
	csum    [2][4]int // packets per ChecksumState, RSTs left out
	ttl     [2]uint8  // TTL (hop limit) of the first packet
	ttlSeen [2]bool
	// echo, when not nil, gathers the timestamp echoes too; otherwise
	// byEchoDelay reads them from the flow's packets, only for a flow
	// that the cheaper evidence does not settle.
	echo *echoTrack
	hs   handshakeTimes // for byHandshakeDelay
}

// handshakeTimes is when the capture saw the client's SYN, the server's
// SYN-ACK and the client's first ACK after it, with how many SYNs and
// SYN-ACKs it saw before that ACK.
type handshakeTimes struct {
	syn, synack, ack time.Time
	syns, synacks    int
}

// add notes p, which side A (the client, once a SYN or SYN-ACK fixed the
// sides) or B sent.
func (h *handshakeTimes) add(p *FlowPacket) {
	if !h.ack.IsZero() {
		return
	}
	syn, ack := p.Flags&tcpwire.FlagSYN != 0, p.Flags&tcpwire.FlagACK != 0
	switch {
	case syn && !ack && p.From == SideA:
		h.syn, h.syns = p.Time(), h.syns+1
	case syn && ack && p.From == SideB:
		h.synack, h.synacks = p.Time(), h.synacks+1
	case !syn && ack && p.From == SideA && h.synacks > 0 && h.syns > 0:
		h.ack = p.Time()
	}
}

// add counts packet p.
func (e *evidence) add(p *FlowPacket) {
	s := p.From
	switch p.CaptureDir {
	case DirOut:
		e.out[s]++
	case DirIn:
		e.in[s]++
	}
	e.sent[s]++
	if p.Flags&tcpwire.FlagRST == 0 {
		e.csum[s][p.ChecksumState]++
	}
	if !e.ttlSeen[s] {
		e.ttl[s], e.ttlSeen[s] = p.TTL, true
	}
	if e.echo != nil {
		e.echo.add(p)
	}
	e.hs.add(p)
}

// swap exchanges the sides, as Flow.swap does.
func (e *evidence) swap() {
	e.out[0], e.out[1] = e.out[1], e.out[0]
	e.in[0], e.in[1] = e.in[1], e.in[0]
	e.sent[0], e.sent[1] = e.sent[1], e.sent[0]
	e.csum[0], e.csum[1] = e.csum[1], e.csum[0]
	e.ttl[0], e.ttl[1] = e.ttl[1], e.ttl[0]
	e.ttlSeen[0], e.ttlSeen[1] = e.ttlSeen[1], e.ttlSeen[0]
	if e.echo != nil {
		e.echo.swap()
	}
}

// byCaptureDir uses SLL/SLL2 packet types and pcapng EPB flags: what the
// capturing host sent is from the local side, what it received from the
// remote side. Loopback traffic is both sent and received by the host, so
// conflicting marks decide nothing.
func byCaptureDir(e *evidence) (Side, string, bool) {
	for _, s := range []Side{SideA, SideB} {
		o := s.Other()
		if e.out[s]+e.in[o] > 0 && e.out[o]+e.in[s] == 0 {
			return s, fmt.Sprintf("the capture marks %d of its packets outgoing and %d of the peer's incoming", e.out[s], e.in[o]), true
		}
	}
	return 0, "", false
}

// bySilence takes the only side that sent anything: a client whose SYNs
// a firewall dropped, say. Its kernel's behaviour (the SYN retransmissions)
// is all the capture shows; the silent side's kernel may never have seen a
// packet, so nothing it did can be checked.
func bySilence(e *evidence) (Side, string, bool) {
	for _, s := range []Side{SideA, SideB} {
		if e.sent[s] > 0 && e.sent[s.Other()] == 0 {
			return s, fmt.Sprintf("the only side that sent anything (%d packets; the peer sent none)", e.sent[s]), true
		}
	}
	return 0, "", false
}

// byChecksum uses TX checksum offload: on the sending host the capture
// sees the checksum before the NIC fills it in, so only the local side's
// packets fail to verify, while the peer's, having crossed a wire, verify.
// RSTs are left out: the kernel sends socketless RSTs with a software
// checksum whatever the offload.
func byChecksum(e *evidence) (Side, string, bool) {
	n := &e.csum
	bad := func(s Side) int { return n[s][tcpwire.ChecksumPartial] + n[s][tcpwire.ChecksumBad] }
	for _, s := range []Side{SideA, SideB} {
		b := bad(s)
		if b > 0 && bad(s.Other()) == 0 && n[s.Other()][tcpwire.ChecksumGood] > 0 {
			return s, fmt.Sprintf("its checksums are unfilled (TX offload): %d of %d packets", b, b+n[s][tcpwire.ChecksumGood]), true
		}
	}
	return 0, "", false
}

// byTTL uses initial TTLs: a packet still carrying 64, 128 or 255 has not
// crossed a router, so it was captured on its sender, while the peer's
// decremented TTL shows it came from elsewhere.
func byTTL(e *evidence) (Side, string, bool) {
	if !e.ttlSeen[0] || !e.ttlSeen[1] {
		return 0, "", false
	}
	ttl := e.ttl
	initial := func(t uint8) bool { return t == 64 || t == 128 || t == 255 }
	for _, s := range []Side{SideA, SideB} {
		if initial(ttl[s]) && !initial(ttl[s.Other()]) {
			return s, "TTL " + strconv.Itoa(int(ttl[s])) + " is an initial value; the peer's " + strconv.Itoa(int(ttl[s.Other()])) + " was decremented", true
		}
	}
	return 0, "", false
}

// byEchoDelay uses TCP timestamp echoes to see the path delay: the capture
// point's own side echoes a timestamp soon after the peer's packet carrying
// it was captured, while the peer's echo of a local timestamp shows up a
// round trip later. It decides only when the slower side's quickest echo
// is at least a millisecond and ten times the faster side's. The echoes
// are e.echo's when it gathered them, else read from f's packets with the
// tracker's scratch maps.
func byEchoDelay(f *Flow, e *evidence, scratch *echoScratch) (Side, string, bool) {
	t := e.echo
	if t == nil {
		t = &echoTrack{first: *scratch}
		for s := range t.first {
			if len(t.first[s]) > maxEchoScratch {
				// Clearing costs what the map grew to: let a huge one go.
				t.first[s] = nil
			}
			clear(t.first[s])
		}
		for i := range f.Packets.Len() {
			t.add(f.Packets.At(i))
		}
		*scratch = t.first
	}
	if !t.have[0] || !t.have[1] {
		return 0, "", false
	}
	for _, s := range []Side{SideA, SideB} {
		fast, slow := t.best[s], t.best[s.Other()]
		if slow >= time.Millisecond && slow >= 10*fast {
			return s, fmt.Sprintf("it echoes timestamps within %v, its peer only after %v (path delay)", fast, slow), true
		}
	}
	return 0, "", false
}

// byHandshakeDelay is byEchoDelay for a connection without timestamps:
// captured on the client, the SYN-ACK comes a round trip after the SYN and
// the client's ACK at once; captured on the server, the SYN-ACK follows the
// SYN at once and the ACK comes a round trip later. It decides by the same
// rule (the slower gap at least a millisecond and ten times the faster),
// and only for a handshake of one SYN and one SYN-ACK: a SYN-ACK that
// came after a retransmitted SYN may answer the first one.
func byHandshakeDelay(e *evidence) (Side, string, bool) {
	h := &e.hs
	if h.ack.IsZero() || h.syns != 1 || h.synacks != 1 {
		return 0, "", false
	}
	toSynack, toAck := h.synack.Sub(h.syn), h.ack.Sub(h.synack)
	if toSynack < 0 || toAck < 0 {
		return 0, "", false
	}
	switch {
	case toSynack >= time.Millisecond && toSynack >= 10*toAck:
		return SideA, fmt.Sprintf("its ACK followed the SYN-ACK within %v, which came %v after its SYN (path delay)", toAck, toSynack), true
	case toAck >= time.Millisecond && toAck >= 10*toSynack:
		return SideB, fmt.Sprintf("its SYN-ACK followed the SYN within %v, and the ACK came %v later (path delay)", toSynack, toAck), true
	}
	return 0, "", false
}

// echoTrack follows a flow's timestamp echoes packet by packet: per
// sender, the time each TS val was first seen, and the quickest echo of
// the peer's.
type echoTrack struct {
	first echoScratch
	best  [2]time.Duration
	have  [2]bool
	// Consecutive packets mostly repeat the TS val of the packet before
	// (one clock tick spans many) and echo the same one: the last val
	// filed and the last echo found spare most map operations.
	lastVal, lastEcr [2]uint32
	filed, found     [2]bool
	ecrAt            [2]time.Time
}

// add follows packet p.
func (t *echoTrack) add(p *FlowPacket) {
	val, ecr, ok := timestamps(p)
	if !ok {
		return
	}
	s := p.From
	if !t.filed[s] || val != t.lastVal[s] {
		if t.first[s] == nil {
			t.first[s] = make(map[uint32]time.Time)
		}
		if _, ok := t.first[s][val]; !ok {
			t.first[s][val] = p.Time()
		}
		t.lastVal[s], t.filed[s] = val, true
	}
	if p.Flags&tcpwire.FlagACK == 0 {
		return
	}
	t0, ok := t.ecrAt[s], t.found[s] && ecr == t.lastEcr[s]
	if !ok {
		// A miss is not cached: the val may be filed later.
		t0, ok = t.first[s.Other()][ecr]
		if ok {
			t.lastEcr[s], t.ecrAt[s], t.found[s] = ecr, t0, true
		}
	}
	if ok {
		if d := p.Time().Sub(t0); !t.have[s] || d < t.best[s] {
			t.best[s], t.have[s] = d, true
		}
	}
}

// swap exchanges the sides.
func (t *echoTrack) swap() {
	t.first[0], t.first[1] = t.first[1], t.first[0]
	t.best[0], t.best[1] = t.best[1], t.best[0]
	t.have[0], t.have[1] = t.have[1], t.have[0]
	t.lastVal[0], t.lastVal[1] = t.lastVal[1], t.lastVal[0]
	t.lastEcr[0], t.lastEcr[1] = t.lastEcr[1], t.lastEcr[0]
	t.filed[0], t.filed[1] = t.filed[1], t.filed[0]
	t.found[0], t.found[1] = t.found[1], t.found[0]
	t.ecrAt[0], t.ecrAt[1] = t.ecrAt[1], t.ecrAt[0]
}

// timestamps returns the TS val and ecr of p, if it has them. Nearly
// every packet's options are NOP, NOP, timestamp: read without decoding.
func timestamps(p *FlowPacket) (val, ecr uint32, ok bool) {
	raw := p.RawOptions()
	if len(raw) == 12 && raw[0] == tcpwire.OptKindNOP && raw[1] == tcpwire.OptKindNOP && raw[2] == tcpwire.OptKindTimestamp && raw[3] == 10 {
		return binary.BigEndian.Uint32(raw[4:]), binary.BigEndian.Uint32(raw[8:]), true
	}
	o := tcpwire.DecodeOptions(raw)
	return o.TSVal, o.TSEcr, o.HasTS
}

// maxEchoScratch is the most TS vals per sender that byEchoDelay's maps
// keep room for from one flow to the next.
const maxEchoScratch = 1 << 12

// echoScratch is byEchoDelay's memory, per sender the time each TS val
// was first seen; the tracker keeps it from flow to flow.
type echoScratch [2]map[uint32]time.Time
