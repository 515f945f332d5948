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
	for _, by := range [...]func(*Flow) (Side, string, bool){byCaptureDir, bySilence, byChecksum, byTTL} {
		if s, why, ok := by(f); ok {
			set(s, why)
			return
		}
	}
	if s, why, ok := byEchoDelay(f, echo); ok {
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

// byCaptureDir uses SLL/SLL2 packet types and pcapng EPB flags: what the
// capturing host sent is from the local side, what it received from the
// remote side. Loopback traffic is both sent and received by the host, so
// conflicting marks decide nothing.
func byCaptureDir(f *Flow) (Side, string, bool) {
	var out, in [2]int // per sender: packets marked outgoing, incoming
	for i := range f.Packets {
		p := &f.Packets[i]
		switch p.CaptureDir {
		case DirOut:
			out[p.From]++
		case DirIn:
			in[p.From]++
		}
	}
	for _, s := range []Side{SideA, SideB} {
		o := s.Other()
		if out[s]+in[o] > 0 && out[o]+in[s] == 0 {
			return s, fmt.Sprintf("the capture marks %d of its packets outgoing and %d of the peer's incoming", out[s], in[o]), true
		}
	}
	return 0, "", false
}

// bySilence takes the only side that sent anything: a client whose SYNs
// a firewall dropped, say. Its kernel's behaviour (the SYN retransmissions)
// is all the capture shows; the silent side's kernel may never have seen a
// packet, so nothing it did can be checked.
func bySilence(f *Flow) (Side, string, bool) {
	var n [2]int
	for i := range f.Packets {
		n[f.Packets[i].From]++
	}
	for _, s := range []Side{SideA, SideB} {
		if n[s] > 0 && n[s.Other()] == 0 {
			return s, fmt.Sprintf("the only side that sent anything (%d packets; the peer sent none)", n[s]), true
		}
	}
	return 0, "", false
}

// byChecksum uses TX checksum offload: on the sending host the capture
// sees the checksum before the NIC fills it in, so only the local side's
// packets fail to verify, while the peer's, having crossed a wire, verify.
// RSTs are left out: the kernel sends socketless RSTs with a software
// checksum whatever the offload.
func byChecksum(f *Flow) (Side, string, bool) {
	var n [2][4]int
	for i := range f.Packets {
		p := &f.Packets[i]
		if p.Flags&tcpwire.FlagRST == 0 {
			n[p.From][p.ChecksumState]++
		}
	}
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
func byTTL(f *Flow) (Side, string, bool) {
	var ttl [2]uint8
	var seen [2]bool
	for i := range f.Packets {
		p := &f.Packets[i]
		if !seen[p.From] {
			ttl[p.From], seen[p.From] = p.TTL, true
		}
	}
	if !seen[0] || !seen[1] {
		return 0, "", false
	}
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
// is at least a millisecond and ten times the faster side's.
func byEchoDelay(f *Flow, first *echoScratch) (Side, string, bool) {
	for s := range first {
		if len(first[s]) > maxEchoScratch {
			// Clearing costs what the map grew to: let a huge one go.
			first[s] = nil
		}
		clear(first[s])
	}
	var best [2]time.Duration
	var have [2]bool
	// Consecutive packets mostly repeat the TS val of the packet before
	// (one clock tick spans many) and echo the same one: the last val
	// filed and the last echo found spare most map operations.
	var lastVal, lastEcr [2]uint32
	var filed, found [2]bool
	var ecrAt [2]time.Time
	for i := range f.Packets {
		p := &f.Packets[i]
		val, ecr, ok := timestamps(p)
		if !ok {
			continue
		}
		s := p.From
		if !filed[s] || val != lastVal[s] {
			if first[s] == nil {
				first[s] = make(map[uint32]time.Time)
			}
			if _, ok := first[s][val]; !ok {
				first[s][val] = p.Time
			}
			lastVal[s], filed[s] = val, true
		}
		if p.Flags&tcpwire.FlagACK == 0 {
			continue
		}
		t0, ok := ecrAt[s], found[s] && ecr == lastEcr[s]
		if !ok {
			// A miss is not cached: the val may be filed later.
			t0, ok = first[s.Other()][ecr]
			if ok {
				lastEcr[s], ecrAt[s], found[s] = ecr, t0, true
			}
		}
		if ok {
			if d := p.Time.Sub(t0); !have[s] || d < best[s] {
				best[s], have[s] = d, true
			}
		}
	}
	if !have[0] || !have[1] {
		return 0, "", false
	}
	for _, s := range []Side{SideA, SideB} {
		fast, slow := best[s], best[s.Other()]
		if slow >= time.Millisecond && slow >= 10*fast {
			return s, fmt.Sprintf("it echoes timestamps within %v, its peer only after %v (path delay)", fast, slow), true
		}
	}
	return 0, "", false
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
