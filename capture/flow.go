package capture

import (
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// FlowKey identifies a TCP 4-tuple independently of direction: Lo is the
// smaller endpoint (address, then port), Hi the larger.
type FlowKey struct {
	Lo, Hi netip.AddrPort
}

// MakeFlowKey returns the canonical key of the tuple (a, b).
func MakeFlowKey(a, b netip.AddrPort) FlowKey {
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return FlowKey{a, b}
}

// Side names one end of a flow: SideA is the client (the SYN sender if the
// capture has the SYN, else the first sender), SideB the other.
type Side uint8

const (
	SideA Side = 0
	SideB Side = 1
)

// Other returns the opposite side.
func (s Side) Other() Side { return s ^ 1 }

func (s Side) String() string {
	if s == SideA {
		return "A"
	}
	return "B"
}

// FlowPacket is a compact copy of one packet of a flow: header fields, the
// raw option bytes (decode with Options or OptionList) and the payload
// length (the first payload bytes, with FlowOptions.PayloadBytes, are the
// flow's: Flow.Payload). A long connection keeps millions, so a record is
// 64 bytes: the time in nanoseconds, the packet number and payload length
// in 32 bits, the IP header's rarer fields in one word (FlowLabel, DF,
// Truncated, IPVersion), and options longer than a timestamp option (SACK
// blocks, a handshake's) in storage of their own.
type FlowPacket struct {
	ns            int64                         // Time, in nanoseconds since 1970
	longOpts      *[tcpwire.MaxOptionBytes]byte // the options, when they do not fit in opts
	Seq, Ack      tcpwire.Seq
	payloadLen    int32  // PayloadLen
	index         uint32 // Index
	ip            uint32 // FlowLabel, then the ipDF, ipTruncated and IP version bits
	Flags         tcpwire.Flags
	Window        uint16
	Urgent        uint16
	Checksum      uint16
	IPID          uint16
	TTL           uint8
	TOS           uint8
	From          Side      // sender within the flow
	CaptureDir    Direction // as the capture recorded it
	ChecksumState tcpwire.ChecksumState
	optLen        uint8
	opts          [inlineOptions]byte // the options, when they fit
}

// The bits of FlowPacket.ip above the 20 of the flow label.
const (
	ipDF          = 1 << 20
	ipTruncated   = 1 << 21
	ipLogged      = 1 << 22 // an NFLOG record (see Logged)
	ipVersionBits = 24      // the IP version, in 8 bits from here
	ipFlowLabel   = 1<<20 - 1
)

// inlineOptions is how many option bytes a FlowPacket holds in itself:
// NOP, NOP, timestamp, which nearly every packet after a handshake has.
const inlineOptions = 12

// IPFields are the IP header fields of a FlowPacket packed in one word,
// for SetIP.
type IPFields struct {
	Version   uint8
	FlowLabel uint32 // 20 bits
	DF        bool
	Truncated bool // the snaplen cut the datagram
}

// SetIP sets the packed IP fields.
func (p *FlowPacket) SetIP(f IPFields) {
	p.ip = f.FlowLabel&ipFlowLabel | uint32(f.Version)<<ipVersionBits
	if f.DF {
		p.ip |= ipDF
	}
	if f.Truncated {
		p.ip |= ipTruncated
	}
}

// Index is the packet's number in the file (1-based), modulo 2^32: a
// capture of more packets (300 GB of the shortest) numbers its later
// packets from 0 again.
func (p *FlowPacket) Index() int { return int(p.index) }

// PayloadLen is the TCP payload's length from the IP header.
func (p *FlowPacket) PayloadLen() int { return int(p.payloadLen) }

// SetPayloadLen sets the payload length, for a packet made up.
func (p *FlowPacket) SetPayloadLen(n int) { p.payloadLen = int32(n) }

// Time is the capture timestamp.
func (p *FlowPacket) Time() time.Time { return time.Unix(0, p.ns).UTC() }

// SetTime sets the capture timestamp (kept in nanoseconds since 1970: a
// time outside 1678-2262 does not fit).
func (p *FlowPacket) SetTime(t time.Time) { p.ns = t.UnixNano() }

// IPVersion is 4 or 6.
func (p *FlowPacket) IPVersion() uint8 { return uint8(p.ip >> ipVersionBits) }

// FlowLabel is the IPv6 flow label (0 for IPv4).
func (p *FlowPacket) FlowLabel() uint32 { return p.ip & ipFlowLabel }

// DF reports the IPv4 don't-fragment bit.
func (p *FlowPacket) DF() bool { return p.ip&ipDF != 0 }

// Truncated reports whether the snaplen cut the datagram.
func (p *FlowPacket) Truncated() bool { return p.ip&ipTruncated != 0 }

// Logged reports whether the packet came from an NFLOG record: netfilter
// logs a packet once for each rule that logs it, so such a capture may
// hold one packet several times.
func (p *FlowPacket) Logged() bool { return p.ip&ipLogged != 0 }

// FlowICMP is an ICMP error about one of a flow's segments.
type FlowICMP struct {
	Index      int // packet number in the file (1-based)
	Time       time.Time
	To         Side // the side whose segment it quotes, which it reports to
	Type, Code uint8
	MTU        uint16      // the next-hop MTU of a "fragmentation needed" message
	Seq        tcpwire.Seq // the quoted segment's sequence number
	PayloadLen int         // the quoted segment's payload length
}

// SetOptions replaces the TCP option bytes (at most 40), for a packet made
// up from what the capture shows (a SYN whose SYN-ACK alone was captured).
func (p *FlowPacket) SetOptions(raw []byte) error {
	if len(raw) > tcpwire.MaxOptionBytes {
		return fmt.Errorf("%d bytes of TCP options: at most %d fit", len(raw), tcpwire.MaxOptionBytes)
	}
	p.setOptions(raw)
	return nil
}

// setOptions stores raw, at most tcpwire.MaxOptionBytes long.
func (p *FlowPacket) setOptions(raw []byte) {
	p.optLen, p.longOpts = uint8(len(raw)), nil
	if len(raw) <= inlineOptions {
		copy(p.opts[:], raw)
		return
	}
	p.longOpts = new([tcpwire.MaxOptionBytes]byte)
	copy(p.longOpts[:], raw)
}

// RawOptions returns the TCP option bytes as captured.
func (p *FlowPacket) RawOptions() []byte {
	if p.longOpts != nil {
		return p.longOpts[:p.optLen]
	}
	return p.opts[:p.optLen]
}

// Options decodes the TCP options.
func (p *FlowPacket) Options() tcpwire.Options { return tcpwire.DecodeOptions(p.RawOptions()) }

// OptionList returns the TCP options in wire order (allocates).
func (p *FlowPacket) OptionList() ([]tcpwire.Option, error) {
	return tcpwire.ParseOptions(p.RawOptions())
}

// Flow is one TCP connection.
type Flow struct {
	Index   int     // 1-based, in order of first packet
	Key     FlowKey // the 4-tuple
	A, B    netip.AddrPort
	Packets Packets // empty with FlowOptions.NoPackets
	Count   int     // packets filed (len(Packets) when they are kept)
	// payload holds the first payload bytes of each packet, with
	// FlowOptions.PayloadBytes: those of Packets[i] end at payloadEnd[i].
	payload    []byte
	payloadEnd []int
	ICMP       []FlowICMP // ICMP errors about its segments, in capture order (with Reader.ICMPErrors)
	Bytes      [2]int64   // payload bytes sent by SideA, SideB (from IP lengths)
	First      time.Time
	Last       time.Time

	SYN      bool           // a SYN (no ACK) from A was seen
	SYNACK   bool           // a SYN-ACK from B was seen
	FIN      [2]bool        // a FIN was seen from A, B
	RST      bool           // a RST was seen (either side)
	ISN      [2]tcpwire.Seq // initial sequence numbers of A (from the SYN) and B (from the SYN-ACK)
	HasISN   [2]bool        // whether ISN[i] is known
	Checksum [2][4]int      // per side, packets per tcpwire.ChecksumState

	// LoopbackCopies counts packets dropped as the second copy of a
	// loopback packet: on `-i any`, lo shows each packet outgoing, then
	// incoming.
	LoopbackCopies int

	Local       Side   // the side of the kernel under test
	LocalReason string // why that side was chosen, for humans
	// LocalGuessed is set when nothing in the capture (nor --local or
	// --remote) showed which end it was taken on: Local is then the
	// server by convention, and must be presented as a guess.
	LocalGuessed bool

	evidence    evidence   // for the choice of the local side
	light       bool       // keeps no packets (FlowOptions.NoPackets, Keep)
	last        FlowPacket // the packet filed last, when light
	clientFixed bool       // A/B are settled by a SYN or SYN-ACK
	pastSYN     bool       // a packet without SYN was seen
	done        bool       // handed out by the tracker
}

// Payload returns the first payload bytes of Packets[i] that the flow
// keeps (FlowOptions.PayloadBytes; nil without).
func (f *Flow) Payload(i int) []byte {
	if i >= len(f.payloadEnd) {
		return nil
	}
	start := 0
	if i > 0 {
		start = f.payloadEnd[i-1]
	}
	return f.payload[start:f.payloadEnd[i]]
}

// KeptPackets reports whether f keeps its packets (see FlowOptions.NoPackets
// and Keep).
func (f *Flow) KeptPackets() bool { return !f.light }

// Endpoint returns the address and port of side s.
func (f *Flow) Endpoint(s Side) netip.AddrPort {
	if s == SideA {
		return f.A
	}
	return f.B
}

// LocalEndpoint returns the endpoint chosen as the kernel under test.
func (f *Flow) LocalEndpoint() netip.AddrPort { return f.Endpoint(f.Local) }

// RemoteEndpoint returns the peer of the kernel under test.
func (f *Flow) RemoteEndpoint() netip.AddrPort { return f.Endpoint(f.Local.Other()) }

// Handshake reports whether the capture has the SYN and the SYN-ACK.
func (f *Flow) Handshake() bool { return f.SYN && f.SYNACK }

// Closed reports whether the connection ended in the capture: FIN both
// ways, or a RST.
func (f *Flow) Closed() bool { return f.RST || (f.FIN[0] && f.FIN[1]) }

// Complete reports whether the capture has both the handshake and the close.
func (f *Flow) Complete() bool { return f.Handshake() && f.Closed() }

// Duration is the time from the first to the last packet.
func (f *Flow) Duration() time.Duration { return f.Last.Sub(f.First) }

// sideOf returns the side that sent p, which must belong to f.
func (f *Flow) sideOf(p *Packet) Side {
	if p.Src() == f.A {
		return SideA
	}
	return SideB
}

// swap exchanges A and B, when a late SYN shows who the client was.
func (f *Flow) swap() {
	f.A, f.B = f.B, f.A
	f.Bytes[0], f.Bytes[1] = f.Bytes[1], f.Bytes[0]
	f.FIN[0], f.FIN[1] = f.FIN[1], f.FIN[0]
	f.ISN[0], f.ISN[1] = f.ISN[1], f.ISN[0]
	f.HasISN[0], f.HasISN[1] = f.HasISN[1], f.HasISN[0]
	f.Checksum[0], f.Checksum[1] = f.Checksum[1], f.Checksum[0]
	for _, c := range f.Packets.chunks {
		for i := range c {
			c[i].From ^= 1
		}
	}
	f.last.From ^= 1
	f.evidence.swap()
	for i := range f.ICMP {
		f.ICMP[i].To ^= 1
	}
}

// FlowOptions configures flow tracking and the choice of the local side.
type FlowOptions struct {
	// NoPackets keeps no packets: a flow's Packets stay empty, and its
	// counters, state and local side are all it holds ('pcap2pkt flows'),
	// so memory grows with the flows, not with their packets (the
	// timestamp echoes that may choose the local side excepted: the first
	// time of each TS val, about a thousand a second of a connection).
	NoPackets bool
	// Keep, if set, is asked about each new flow (its number and
	// endpoints known): one it rejects keeps no packets, as with
	// NoPackets, while the others keep theirs.
	Keep func(*Flow) bool
	// PayloadBytes is how many payload bytes of each packet a flow keeps
	// (Flow.Payload; 0: none).
	PayloadBytes int
	// Local and Remote, if set, name the kernel under test or its peer
	// (--local/--remote IP[:PORT]); they win over every heuristic.
	Local, Remote HostPort
	// Done, if set, makes the tracker stream: each flow is handed to Done
	// once it is over (superseded by a new connection on its tuple, or closed
	// and idle for Linger in capture time, or at Close) and then forgotten,
	// so memory grows with open flows only. If nil, the tracker keeps every
	// flow and Flows returns them.
	Done func(*Flow)
	// Linger is how long in capture time a closed flow waits for late
	// packets before Done gets it; 0 means DefaultLinger.
	Linger time.Duration
}

// DefaultLinger is the default FlowOptions.Linger: long enough for
// retransmitted FINs and TIME_WAIT ACKs.
const DefaultLinger = 2 * time.Minute

// Tracker groups packets into TCP connections.
type Tracker struct {
	opts      FlowOptions
	table     map[FlowKey]*Flow
	all       []*Flow // every flow, when not streaming
	closed    []*Flow // closed flows awaiting Linger, when streaming
	n         int
	lastSweep time.Time
	mu        sync.Mutex // guards the pool: Release may run on another goroutine
	pool      chunkPool  // packet storage given back by Release, for new flows
	echo      echoScratch
}

// NewTracker returns an empty tracker.
func NewTracker(opts FlowOptions) *Tracker {
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	return &Tracker{opts: opts, table: make(map[FlowKey]*Flow)}
}

// Add files p into its flow (copying what it keeps) and returns that flow.
// An ICMP error goes to the flow of the segment it quotes, if that flow is
// open; else Add returns nil.
func (t *Tracker) Add(p *Packet) *Flow {
	if e := p.ICMPError; e != nil {
		f := t.table[MakeFlowKey(e.Src, e.Dst)]
		if f == nil {
			return nil
		}
		to := SideA
		if e.Src != f.A {
			to = SideB
		}
		f.ICMP = append(f.ICMP, FlowICMP{Index: p.Index, Time: p.Time, To: to, Type: e.Type, Code: e.Code,
			MTU: e.MTU, Seq: e.Seq, PayloadLen: e.PayloadLen})
		return f
	}
	src, dst := p.Src(), p.Dst()
	key := MakeFlowKey(src, dst)
	f := t.table[key]
	syn := p.TCP.Flags&(tcpwire.FlagSYN|tcpwire.FlagACK) == tcpwire.FlagSYN
	if f != nil && syn && t.newConnection(f, p) {
		delete(t.table, key)
		t.finish(f)
		f = nil
	}
	if f == nil {
		t.n++
		f = &Flow{Index: t.n, Key: key, A: src, B: dst, First: p.Time}
		f.light = t.opts.NoPackets || t.opts.Keep != nil && !t.opts.Keep(f)
		if f.light {
			f.evidence.echo = new(echoTrack)
		}
		t.table[key] = f
		if t.opts.Done == nil {
			t.all = append(t.all, f)
		}
	}
	if loopbackCopy(f, p) {
		f.LoopbackCopies++
		return f
	}
	wasClosed := f.Closed()
	t.update(f, p)
	if t.opts.Done != nil {
		if !wasClosed && f.Closed() {
			t.closed = append(t.closed, f)
		}
		t.sweep(p.Time)
	}
	return f
}

// newConnection reports whether a SYN on f's tuple starts a new connection:
// f is closed, or the SYN's ISN differs from the one f already has from
// that sender while f got past the handshake (a retransmitted SYN keeps
// its ISN).
func (t *Tracker) newConnection(f *Flow, p *Packet) bool {
	if f.Closed() {
		return true
	}
	s := f.sideOf(p)
	return f.HasISN[s] && f.ISN[s] != p.TCP.Seq && f.pastSYN
}

// loopbackCopy reports whether p is the incoming copy of the outgoing
// packet just before it in f.
func loopbackCopy(f *Flow, p *Packet) bool {
	if p.CaptureDir != DirIn || f.Count == 0 {
		return false
	}
	q := &f.last
	if n := f.Packets.Len(); n > 0 {
		q = f.Packets.At(n - 1)
	}
	return q.CaptureDir == DirOut && q.From == f.sideOf(p) && q.Seq == p.TCP.Seq && q.Ack == p.TCP.Ack &&
		q.Flags == p.TCP.Flags && q.PayloadLen() == p.PayloadLen && q.IPID == p.IP.ID && q.Window == p.TCP.Window &&
		q.Checksum == p.TCP.Checksum
}

func (t *Tracker) update(f *Flow, p *Packet) {
	s := f.sideOf(p)
	fl := p.TCP.Flags
	if fl&tcpwire.FlagSYN != 0 {
		// The SYN comes from the client, side A, and the SYN-ACK from the
		// server, side B: the first of them seen fixes which side is which.
		want := SideA
		if fl&tcpwire.FlagACK != 0 {
			want = SideB
		}
		if !f.clientFixed && s != want {
			f.swap()
			s = want
		}
		f.clientFixed = true
		if s == want {
			if s == SideA {
				f.SYN = true
			} else {
				f.SYNACK = true
			}
			if !f.HasISN[s] {
				f.ISN[s], f.HasISN[s] = p.TCP.Seq, true
			}
		}
	}
	if fl&tcpwire.FlagSYN == 0 {
		f.pastSYN = true
	}
	if fl&tcpwire.FlagFIN != 0 {
		f.FIN[s] = true
	}
	if fl&tcpwire.FlagRST != 0 {
		f.RST = true
	}
	f.Bytes[s] += int64(p.PayloadLen)
	f.Checksum[s][p.TCP.ChecksumState]++
	f.Last = p.Time
	fp := FlowPacket{
		ns:            p.Time.UnixNano(),
		index:         uint32(p.Index),
		From:          s,
		CaptureDir:    p.CaptureDir,
		TTL:           p.IP.TTL,
		TOS:           p.IP.TOS,
		IPID:          p.IP.ID,
		Seq:           p.TCP.Seq,
		Ack:           p.TCP.Ack,
		Flags:         fl,
		Window:        p.TCP.Window,
		Urgent:        p.TCP.Urgent,
		Checksum:      p.TCP.Checksum,
		ChecksumState: p.TCP.ChecksumState,
		payloadLen:    int32(p.PayloadLen),
	}
	fp.SetIP(IPFields{Version: p.IP.Version, FlowLabel: p.IP.FlowLabel, DF: p.IP.DF, Truncated: p.Truncated})
	if p.LinkType == linkTypeNFLOG {
		fp.ip |= ipLogged
	}
	fp.setOptions(p.TCP.Options[:min(len(p.TCP.Options), tcpwire.MaxOptionBytes)])
	f.Count++
	if f.light {
		f.last = fp
		f.evidence.add(&f.last)
		return
	}
	if t.opts.PayloadBytes > 0 {
		f.payload = append(f.payload, p.Payload[:min(t.opts.PayloadBytes, len(p.Payload))]...)
		f.payloadEnd = append(f.payloadEnd, len(f.payload))
	}
	if f.Packets.full() {
		t.mu.Lock()
		f.Packets.grow(&t.pool)
		t.mu.Unlock()
	}
	f.evidence.add(f.Packets.add(fp))
}

// sweep hands out closed flows idle for Linger. It runs at most once per
// second of capture time, so its cost stays off the per-packet path.
func (t *Tracker) sweep(now time.Time) {
	if now.Sub(t.lastSweep) < time.Second {
		return
	}
	t.lastSweep = now
	keep := t.closed[:0]
	for _, f := range t.closed {
		switch {
		case f.done:
		case now.Sub(f.Last) >= t.opts.Linger:
			if t.table[f.Key] == f {
				delete(t.table, f.Key)
			}
			t.finish(f)
		default:
			keep = append(keep, f)
		}
	}
	clear(t.closed[len(keep):])
	t.closed = keep
}

// finish chooses the local side and, when streaming, hands the flow out.
func (t *Tracker) finish(f *Flow) {
	if f.done {
		return
	}
	f.done = true
	chooseLocal(f, &t.opts, &t.echo)
	f.evidence.echo = nil // its maps are done with
	if t.opts.Done != nil {
		t.opts.Done(f)
	}
}

// Release gives the packet storage of f, a flow the streaming tracker
// handed to Done, back to the tracker, which reuses it for a later flow;
// f.Packets is empty afterwards. Call it once nothing refers to f.Packets
// or its elements any more. A capture has thousands of flows: reusing
// their storage spares an allocation (and its growth) per flow and the
// garbage collector most of its work. Other flows are left alone. Release
// may be called on another goroutine than the one adding packets (one
// that synthesises the flows Done handed out).
func (t *Tracker) Release(f *Flow) {
	if t.opts.Done == nil || !f.done || f.Packets.chunks == nil {
		return
	}
	chunks := f.Packets.chunks
	f.Packets = Packets{}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range chunks {
		t.pool.put(c)
	}
}

// Close finishes every remaining flow (in index order). When streaming,
// they go to Done; otherwise Flows returns them all.
func (t *Tracker) Close() {
	rest := t.all
	if t.opts.Done != nil {
		rest = make([]*Flow, 0, len(t.table))
		for _, f := range t.table {
			rest = append(rest, f)
		}
		slices.SortFunc(rest, func(a, b *Flow) int { return a.Index - b.Index })
	}
	for _, f := range rest {
		t.finish(f)
	}
	clear(t.table)
	t.closed = nil
}

// Flows returns every flow in index order (empty when streaming). Call
// Close first so each has its local side chosen.
func (t *Tracker) Flows() []*Flow { return t.all }

// ReadFlows reads a whole capture and returns its TCP connections in order
// of first packet, each with its local side chosen (opts.Done is ignored:
// every flow is kept). On a damaged file it returns the flows read so far
// together with the *DamagedError; name appears in error messages. With
// more than one core, it reads ahead (Reader.ReadAhead).
func ReadFlows(r io.Reader, name string, opts FlowOptions) ([]*Flow, Stats, error) {
	opts.Done = nil
	rd, err := NewReader(r, name)
	if err != nil {
		return nil, Stats{}, err
	}
	rd.ICMPErrors = true
	if runtime.GOMAXPROCS(0) > 1 {
		rd.ReadAhead()
	}
	t := NewTracker(opts)
	for {
		p, err := rd.Next()
		if err != nil {
			t.Close()
			if err == io.EOF {
				err = nil
			}
			return t.Flows(), rd.Stats(), err
		}
		t.Add(p)
	}
}
