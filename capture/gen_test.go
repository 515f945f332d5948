package capture

import (
	"encoding/binary"
	"time"
)

// genCapture builds a pcap (Ethernet, IPv4, microseconds) of nflows TCP
// connections, each with a handshake, request/response data with
// timestamp options, and a FIN close; conc connections run interleaved.
// Every packet has a valid checksum. It returns the file and its number of
// packets.
func genCapture(nflows, dataPerFlow, conc int) ([]byte, int) {
	g := &gen{}
	g.out = newPcap(1, le, false, 262144).buf.Bytes()
	type state struct {
		c, s     [4]byte
		cp       uint16
		cseq     uint32
		sseq     uint32
		step     int
		lastStep int
	}
	var active []*state
	next := 0
	open := func() *state {
		next++
		return &state{
			c: [4]byte{10, byte(next >> 16), byte(next >> 8), byte(next)}, s: [4]byte{192, 168, 0, 1},
			cp: uint16(10000 + next%50000), cseq: uint32(next) * 7919, sseq: uint32(next) * 104729,
			lastStep: 3 + 2*dataPerFlow + 3,
		}
	}
	for len(active) < conc && next < nflows {
		active = append(active, open())
	}
	for len(active) > 0 {
		for i := 0; i < len(active); i++ {
			st := active[i]
			c2s := true
			var flags TCPFlags
			n := 0
			switch k := st.step; {
			case k == 0:
				flags = FlagSYN
			case k == 1:
				flags, c2s = FlagSYN|FlagACK, false
			case k == 2:
				flags = FlagACK
			case k < 3+2*dataPerFlow:
				c2s = (k-3)%2 == 1
				flags, n = FlagACK|FlagPSH, 32
				if c2s {
					flags, n = FlagACK, 0
				}
			case k == st.lastStep-3:
				flags = FlagFIN | FlagACK
			case k == st.lastStep-2:
				flags, c2s = FlagFIN|FlagACK, false
			default:
				flags = FlagACK
			}
			if c2s {
				g.packet(st.c, st.s, st.cp, 80, st.cseq, st.sseq, flags, n)
				st.cseq += uint32(n)
				if flags&(FlagSYN|FlagFIN) != 0 {
					st.cseq++
				}
			} else {
				g.packet(st.s, st.c, 80, st.cp, st.sseq, st.cseq, flags, n)
				st.sseq += uint32(n)
				if flags&(FlagSYN|FlagFIN) != 0 {
					st.sseq++
				}
			}
			st.step++
			if st.step > st.lastStep {
				if next < nflows {
					active[i] = open()
				} else {
					active = append(active[:i], active[i+1:]...)
					i--
				}
			}
		}
	}
	return g.out, g.n
}

type gen struct {
	out []byte
	n   int
	buf [128]byte
}

// packet appends one frame: Ethernet, IPv4, TCP with a timestamp option
// (and MSS/SACK-permitted/window-scale on SYNs), n payload bytes.
func (g *gen) packet(src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags TCPFlags, n int) {
	g.n++
	ts := time.Unix(1700000000, 0).Add(time.Duration(g.n) * 10 * time.Microsecond)
	b := g.buf[:0]
	b = append(b, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00)
	var opts []byte
	if flags&FlagSYN != 0 {
		opts = []byte{2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	} else {
		opts = []byte{1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1}
	}
	tcpLen := 20 + len(opts) + n
	ip := len(b)
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0)
	binary.BigEndian.PutUint16(b[ip+2:], uint16(20+tcpLen))
	binary.BigEndian.PutUint16(b[ip+4:], uint16(g.n))
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], ^fold(sum16(b[ip:ip+20], 0)))
	th := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ack)
	b = append(b, byte((20+len(opts))/4)<<4, byte(flags), 0xFF, 0xFF, 0, 0, 0, 0)
	b = append(b, opts...)
	for i := 0; i < n; i++ {
		b = append(b, byte('a'+i%26))
	}
	ph := sum16(src[:], 0)
	ph = sum16(dst[:], ph) + 6 + uint32(tcpLen)
	binary.BigEndian.PutUint16(b[th+16:], ^fold(sum16(b[th:], ph)))
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(ts.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(b)))
	g.out = append(g.out, h[:]...)
	g.out = append(g.out, b...)
}
