package synth

// This file holds what the builder learns from the whole flow before it
// walks the packets: how the connection ends (a refused SYN, a teardown
// RST, a shutdown), and where the local side's writes end.

import (
	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// lastUnpushed returns the index of the local side's last segment of new
// data if it carries no PSH, is a whole number of full segments and no
// local FIN follows, or -1. The kernel pushes the last segment of a write
// unless more of it waits in the queue (for cwnd or the peer's window):
// then the application wrote more than the capture saw leave.
func (b *builder) lastUnpushed() int {
	last := -1
	var high highMark
	for i := range b.f.Packets.Len() {
		p := b.f.Packets.At(i)
		if p.From != b.local {
			continue
		}
		if p.Flags.Has(tcpwire.FlagFIN) {
			return -1
		}
		if p.PayloadLen() == 0 || p.Flags.Has(tcpwire.FlagSYN) {
			continue
		}
		if high.advance(p.Seq.Add(uint32(p.PayloadLen()))) {
			last = i
		}
	}
	if last < 0 || b.opts.Strict {
		return -1
	}
	p := b.f.Packets.At(last)
	if p.Flags&(tcpwire.FlagPSH|tcpwire.FlagRST) != 0 || b.segSize(p, b.local) == 0 || b.short(p) {
		return -1
	}
	return last
}

// unpushedEnds returns the sequence numbers where a retransmission of the
// local side's data without PSH ends. The kernel marks PSH on the last
// segment of a write (tcp_push) and keeps it there when it cuts a queued
// segment (tcp_fragment), so a retransmitted piece ending at a write's end
// carries it; the PSH of a first transmission says less: a TSO
// super-segment carries one wherever it ends. So a super-segment with PSH
// that ends where a retransmission without PSH ends is inside a write.
func unpushedEnds(f *capture.Flow, local capture.Side) map[tcpwire.Seq]bool {
	var out map[tcpwire.Seq]bool
	var high highMark
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From != local || p.PayloadLen() == 0 || p.Flags.Has(tcpwire.FlagSYN) {
			continue
		}
		end := p.Seq.Add(uint32(p.PayloadLen()))
		switch {
		case high.advance(end):
		case !p.Flags.Has(tcpwire.FlagPSH):
			if out == nil {
				out = map[tcpwire.Seq]bool{}
			}
			out[end] = true
		}
	}
	return out
}

// refusedSYN reports whether the local side's first answer to the SYN is a
// RST: no socket listened on the port.
func refusedSYN(f *capture.Flow, local capture.Side) bool {
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From != local {
			continue
		}
		return p.Flags.Has(tcpwire.FlagRST)
	}
	return false
}

// teardownRST returns the index of a final RST from the remote that comes
// after both FINs were sent and acknowledged, or -1. Such a RST has no
// effect the script could observe (the local socket is gone or in
// TIME_WAIT); the reference sends one for every connection it leaves open
// when a script ends, so a capture of a packetdrill run ends with it.
func teardownRST(f *capture.Flow, remote capture.Side) int {
	n := f.Packets.Len()
	last := f.Packets.At(n - 1)
	if n < 2 || last.From != remote || !last.Flags.Has(tcpwire.FlagRST) {
		return -1
	}
	var finEnd [2]tcpwire.Seq
	var fin, acked [2]bool
	for i := range n - 1 {
		p := f.Packets.At(i)
		if p.Flags.Has(tcpwire.FlagFIN) && !fin[p.From] {
			fin[p.From] = true
			finEnd[p.From] = p.Seq.Add(uint32(p.PayloadLen()) + 1)
		}
		o := p.From.Other()
		if fin[o] && p.Flags.Has(tcpwire.FlagACK) && finEnd[o].LessThanEq(p.Ack) {
			acked[o] = true
		}
	}
	if acked[0] && acked[1] {
		return n - 1
	}
	return -1
}

// closedInSYNSent reports whether the local side answers the first SYN-ACK
// with a RST that acknowledges nothing: the kernel does that for a socket
// closed while it waited for the SYN-ACK (tcp_rcv_synsent_state_process on
// an orphan); an application closing afterwards would make it ACK first.
func closedInSYNSent(f *capture.Flow, local capture.Side) bool {
	synack := false
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From != local {
			synack = synack || p.Flags.Has(tcpwire.FlagSYN|tcpwire.FlagACK)
			continue
		}
		if synack {
			return p.Flags&(tcpwire.FlagRST|tcpwire.FlagACK) == tcpwire.FlagRST
		}
	}
	return false
}

// shutdownFIN returns the index of the local side's first FIN if new data
// from the remote still arrives after it and the local side takes it (the
// application then shut down only its sending half), or -1. After close()
// the kernel would answer such data with a RST instead.
func shutdownFIN(f *capture.Flow, local capture.Side) int {
	at := -1
	var high highMark
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From == local {
			if at < 0 && p.Flags.Has(tcpwire.FlagFIN) {
				at = i
			}
			continue
		}
		if p.PayloadLen() == 0 {
			continue
		}
		if !high.advance(p.Seq.Add(uint32(p.PayloadLen()))) {
			continue
		}
		if at < 0 {
			continue
		}
		for j := i + 1; j < f.Packets.Len(); j++ {
			if q := f.Packets.At(j); q.From == local {
				if q.Flags.Has(tcpwire.FlagRST) {
					return -1
				}
				return at
			}
		}
		return at
	}
	return -1
}
