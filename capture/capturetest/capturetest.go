// Package capturetest is test support: it generates synthetic captures for
// tests and benchmarks (capture's and synth's), so that they measure the
// same kind of traffic without each carrying its own generator.
package capturetest

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/netip"
	"os"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// Config describes a generated capture: Flows TCP connections between
// clients 10.x.y.z and the server 192.168.0.1:80, Concurrent of them open
// at a time and interleaved packet by packet. Each connection has a
// handshake (MSS 1460, SACK permitted, timestamps, window scale 7), Rounds
// exchanges, and a close (client FIN, server ACK, server FIN, client ACK).
// An exchange is a Request-byte request from the client (none if 0), a
// Response-byte answer from the server in segments of at most 1448 bytes,
// PSH on the last, and the client's ACK. Every packet after the SYNs
// carries a timestamp option; packets are 10 µs apart. Snap, if not 0,
// keeps at most Snap bytes of each frame in the file, as tcpdump -s does
// (the checksums stay those of the whole segment).
type Config struct {
	Flows, Concurrent, Rounds int
	Request, Response         int
	Snap                      int
}

// mss is the payload of a full segment with timestamps (1460 - 12).
const mss = 1448

// Packets returns the number of packets c generates.
func (c Config) Packets() int { return c.Flows * c.perFlow() }

func (c Config) perFlow() int { return 3 + c.Rounds*len(c.round()) + 4 }

// round returns the steps of one exchange.
func (c Config) round() []step {
	var r []step
	if c.Request > 0 {
		r = append(r, step{false, psh | ack, c.Request})
	}
	for left := c.Response; left > 0; left -= mss {
		n, fl := min(left, mss), byte(ack)
		if left <= mss {
			fl |= psh
		}
		r = append(r, step{true, fl, n})
	}
	return append(r, step{false, ack, 0})
}

// steps returns the packets of one connection, in order.
func (c Config) steps() []step {
	steps := []step{{false, syn, 0}, {true, syn | ack, 0}, {false, ack, 0}}
	round := c.round()
	for range c.Rounds {
		steps = append(steps, round...)
	}
	return append(steps, step{false, fin | ack, 0}, step{true, ack, 0}, step{true, fin | ack, 0}, step{false, ack, 0})
}

// step is one packet of a connection: its sender, TCP flags and payload.
type step struct {
	srv   bool
	flags byte
	n     int
}

// frameLen is the length of st's Ethernet frame: SYNs carry 20 bytes of
// options, other packets 12 (timestamps).
func (st step) frameLen() int {
	if st.flags&syn != 0 {
		return 14 + 20 + 20 + 20 + st.n
	}
	return 14 + 20 + 20 + 12 + st.n
}

const fin, syn, psh, ack = 1, 2, 8, 16

// Generate returns the capture as a pcap file (Ethernet, microseconds) and
// its number of packets.
func Generate(c Config) ([]byte, int) {
	var buf sliceWriter
	buf.b = make([]byte, 0, c.size())
	n, _ := write(&buf, c)
	return buf.b, n
}

// Write writes the capture to w as a pcap file and returns its number of
// packets.
func Write(w io.Writer, c Config) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	n, err := write(bw, c)
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// WriteFile writes the capture to the file name (a benchmark's: the
// capture is not held in memory) and returns its number of packets.
func WriteFile(name string, c Config) (int, error) {
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	n, err := Write(f, c)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// size returns the size of the file c generates.
func (c Config) size() int {
	const hdr = 16 + 14 + 20 + 20 + 12 // record, Ethernet, IPv4, TCP, timestamps
	if c.Snap > 0 {
		per := 0
		for _, st := range c.steps() {
			per += 16 + min(st.frameLen(), c.Snap)
		}
		return 24 + c.Flows*per
	}
	payload := 2*8 + c.Rounds*(c.Request+c.Response)
	return 24 + c.Flows*(c.perFlow()*hdr+payload)
}

func write(w io.Writer, c Config) (int, error) {
	hdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0}
	if _, err := w.Write(hdr); err != nil {
		return 0, err
	}
	steps := c.steps()

	type flow struct {
		cli        [4]byte
		port       uint16
		cseq, sseq uint32
		step       int
	}
	next := 0
	open := func() *flow {
		next++
		return &flow{cli: [4]byte{10, byte(next >> 16), byte(next >> 8), byte(next)}, port: uint16(10000 + next%50000),
			cseq: uint32(next) * 7919, sseq: uint32(next) * 104729}
	}
	var active []*flow
	for len(active) < c.Concurrent && next < c.Flows {
		active = append(active, open())
	}
	srv := [4]byte{192, 168, 0, 1}
	frame := make([]byte, 0, 16+14+20+20+20+mss)
	n := 0
	for len(active) > 0 {
		for i := 0; i < len(active); i++ {
			f := active[i]
			st := steps[f.step]
			src, dst, sp, dp, seq, ackn := f.cli, srv, f.port, uint16(80), f.cseq, f.sseq
			if st.srv {
				src, dst, sp, dp, seq, ackn = srv, f.cli, 80, f.port, f.sseq, f.cseq
			}
			if st.flags&ack == 0 {
				ackn = 0
			}
			n++
			frame = record(frame[:0], n, src, dst, sp, dp, seq, ackn, st.flags, st.n)
			if c.Snap > 0 && len(frame) > 16+c.Snap {
				frame = frame[:16+c.Snap]
				binary.LittleEndian.PutUint32(frame[8:], uint32(c.Snap))
			}
			if _, err := w.Write(frame); err != nil {
				return n, err
			}
			adv := uint32(st.n)
			if st.flags&(syn|fin) != 0 {
				adv++
			}
			if st.srv {
				f.sseq += adv
			} else {
				f.cseq += adv
			}
			if f.step++; f.step == len(steps) {
				if next < c.Flows {
					active[i] = open()
				} else {
					active = append(active[:i], active[i+1:]...)
					i--
				}
			}
		}
	}
	return n, nil
}

// record appends the pcap record of the n-th packet: an Ethernet/IPv4/TCP
// frame with valid checksums, a timestamp option whose value grows with
// time (and MSS, SACK permitted, window scale on SYNs), and payload bytes
// of a repeating alphabet.
func record(b []byte, n int, src, dst [4]byte, sport, dport uint16, seq, ackn uint32, flags byte, payload int) []byte {
	var opts []byte
	if flags&syn != 0 {
		opts = []byte{2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7}
	} else {
		opts = []byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	}
	binary.BigEndian.PutUint32(opts[len(opts)-12+4:], uint32(n/100+1))
	tcpLen := 20 + len(opts) + payload
	frameLen := 14 + 20 + tcpLen
	us := int64(n) * 10
	b = binary.LittleEndian.AppendUint32(b, uint32(1700000000+us/1e6))
	b = binary.LittleEndian.AppendUint32(b, uint32(us%1e6))
	b = binary.LittleEndian.AppendUint32(b, uint32(frameLen))
	b = binary.LittleEndian.AppendUint32(b, uint32(frameLen))
	b = append(b, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00)
	ip := len(b)
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0)
	binary.BigEndian.PutUint16(b[ip+2:], uint16(20+tcpLen))
	binary.BigEndian.PutUint16(b[ip+4:], uint16(n))
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], tcpwire.Checksum(b[ip:ip+20], 0))
	th := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ackn)
	b = append(b, byte((20+len(opts))/4)<<4, flags, 0x01, 0xF5, 0, 0, 0, 0)
	b = append(b, opts...)
	for i := range payload {
		b = append(b, byte('a'+i%26))
	}
	ph := tcpwire.PseudoHeaderSum(netip.AddrFrom4(src), netip.AddrFrom4(dst), 6, tcpLen)
	binary.BigEndian.PutUint16(b[th+16:], tcpwire.Checksum(b[th:], ph))
	return b
}
