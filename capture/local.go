package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
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
// untouched initial TTLs, and finally the server (receiver of the SYN).
func chooseLocal(f *Flow, o *FlowOptions) {
	set := func(s Side, why string) { f.Local, f.LocalReason = s, why }
	for _, s := range []Side{SideA, SideB} {
		if o.Local.Matches(f.Endpoint(s)) {
			set(s, "--local "+o.Local.String())
			return
		}
		if o.Remote.Matches(f.Endpoint(s)) {
			set(s.Other(), "--remote "+o.Remote.String())
			return
		}
	}
	if s, why, ok := byCaptureDir(f); ok {
		set(s, why)
		return
	}
	if s, why, ok := byChecksum(f); ok {
		set(s, why)
		return
	}
	if s, why, ok := byTTL(f); ok {
		set(s, why)
		return
	}
	switch {
	case f.SYN:
		set(SideB, "server: received the SYN")
	case f.SYNACK:
		set(SideB, "server: sent the SYN-ACK")
	default:
		s := SideB
		if f.A.Port() < f.B.Port() {
			s = SideA
		}
		set(s, "server guessed by the lower port (no handshake in the capture)")
	}
}

// byCaptureDir uses SLL/SLL2 packet types and pcapng EPB flags: what the
// capturing host sent is from the local side, what it received from the
// remote side. Loopback traffic is both sent and received by the host, so
// conflicting marks decide nothing.
func byCaptureDir(f *Flow) (Side, string, bool) {
	var local [2]int // evidence that side i is local
	for i := range f.Packets {
		p := &f.Packets[i]
		switch p.CaptureDir {
		case DirOut:
			local[p.From]++
		case DirIn:
			local[p.From.Other()]++
		}
	}
	for _, s := range []Side{SideA, SideB} {
		if local[s] > 0 && local[s.Other()] == 0 {
			return s, fmt.Sprintf("capture marks its packets outgoing (%d packets with a direction)", local[s]), true
		}
	}
	return 0, "", false
}

// byChecksum uses TX checksum offload: on the sending host the capture
// sees the checksum before the NIC fills it in, so only the local side's
// packets fail to verify.
func byChecksum(f *Flow) (Side, string, bool) {
	bad := func(s Side) int { return f.Checksum[s][ChecksumPartial] + f.Checksum[s][ChecksumBad] }
	for _, s := range []Side{SideA, SideB} {
		n := bad(s)
		if n > 0 && bad(s.Other()) == 0 && f.Checksum[s.Other()][ChecksumGood] > 0 {
			return s, fmt.Sprintf("its checksums are unfilled (TX offload): %d of %d packets", n, n+f.Checksum[s][ChecksumGood]), true
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
