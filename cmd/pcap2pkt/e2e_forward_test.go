//go:build linux

package main

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// The kernel has no netem, so the impaired path is a forwarder in a middle
// namespace: two AF_PACKET sockets, one on each veth, that pass Ethernet
// frames across with a delay, and drop, hold back (reorder) or duplicate
// TCP segments by a seeded random source. SYNs pass untouched so that
// every connection is established without a one-second SYN timeout.

// impairment is what the forwarder does to each direction.
type impairment struct {
	delay   time.Duration // one way, every frame
	loss    float64       // probability of dropping a TCP segment
	reorder float64       // probability of holding a TCP segment back by reorderBy
	dup     float64       // probability of sending a TCP segment twice
	seed    uint64
	// synDrops drops the client's first SYNs: a path that loses the
	// opening SYNs, as a firewall or a full queue does.
	synDrops int
	// dropData drops, per direction (0: from the client), the data
	// segments of these 1-based ordinal numbers, retransmissions counted:
	// a loss pattern that is the same in every run.
	dropData [2][]int
}

// reorderBy is how long a held-back segment waits on top of the delay: far
// more than the gap between two back-to-back segments of a bulk transfer.
const reorderBy = 4 * time.Millisecond

// forwarder passes frames between two interfaces of one namespace.
type forwarder struct {
	imp     impairment
	fds     [2]int
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	counts  map[string]int // what was done, for the test log
}

func startForwarder(a, b link, imp impairment) (*forwarder, error) {
	f := &forwarder{imp: imp, fds: [2]int{-1, -1}, counts: map[string]int{}}
	for i, l := range []link{a, b} {
		err := inNS(l.ns, func() error {
			ifi, err := net.InterfaceByName(l.name)
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return err
			}
			f.fds[i] = fd
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				return err
			}
			tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		})
		if err != nil {
			f.closeFDs()
			return nil, fmt.Errorf("forwarder on %s: %w", l.name, err)
		}
	}
	for dir := 0; dir < 2; dir++ {
		q := &frameQueue{kick: make(chan struct{}, 1)}
		f.wg.Add(2)
		go f.receive(f.fds[dir], uint64(dir), q)
		go f.send(f.fds[1-dir], q)
	}
	return f, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (f *forwarder) count(what string) {
	f.mu.Lock()
	f.counts[what]++
	f.mu.Unlock()
}

// Counts reports how many segments were dropped, held back and duplicated.
func (f *forwarder) Counts() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("forwarded %d, dropped %d, reordered %d, duplicated %d",
		f.counts["forward"], f.counts["drop"], f.counts["reorder"], f.counts["dup"])
}

func (f *forwarder) stop() {
	if f.stopped.Swap(true) {
		return
	}
	f.wg.Wait()
	f.closeFDs()
}

func (f *forwarder) closeFDs() {
	for _, fd := range f.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// receive reads frames arriving on fd and queues them for the other side.
func (f *forwarder) receive(fd int, dir uint64, q *frameQueue) {
	defer f.wg.Done()
	buf := make([]byte, 65536)
	isn := map[uint32]uint32{}  // initial sequence number per port pair
	conn := map[uint32]uint32{} // each port pair's connection, in the order their SYNs came
	seen := map[[2]uint32]int{} // segments that ended in each (connection, cell)
	syns, data := 0, 0          // SYNs and data segments that came by
	for !f.stopped.Load() {
		size, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // the receive timeout, to look at stopped
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own transmission on this side
		}
		frame := append([]byte(nil), buf[:size]...)
		due := time.Now().Add(f.imp.delay)
		fixTCPChecksum(frame)
		ports, seq, n, syn := segmentOf(frame)
		if syn {
			isn[ports] = seq
			if _, ok := conn[ports]; !ok {
				conn[ports] = uint32(len(conn))
			}
			if syns++; dir == 0 && syns <= f.imp.synDrops {
				f.count("drop")
				continue
			}
		}
		if n > 0 {
			if data++; slices.Contains(f.imp.dropData[dir], data) {
				f.count("drop")
				continue
			}
			seq -= isn[ports]
			// A segment's fate follows its connection's place among the
			// connections (not its ports) and where its last byte falls
			// in the stream (a fateCell-byte cell; not its exact start and
			// length), with how many segments ending there came before:
			// a run of the same traffic again, on another ephemeral port,
			// with its writes cut into segments a little otherwise, loses,
			// holds back and duplicates the same bytes, so that an
			// unchanged re-capture differs from the original by timing,
			// and a change's re-capture by what the change does. With the
			// ports and exact segments, each run lost other bytes, and the
			// mutation matrix's lossy case took the path's new losses for
			// the changes' doing.
			id, ok := conn[ports]
			if !ok {
				id = ports
			}
			cell := (seq + n - 1) / fateCell
			k := [2]uint32{id, cell}
			nth := seen[k]
			seen[k]++
			chance := func(salt uint64) float64 { return f.imp.chance(salt, dir, id, cell, nth) }
			if chance(1) < f.imp.loss {
				f.count("drop")
				continue
			}
			if chance(2) < f.imp.reorder {
				f.count("reorder")
				due = due.Add(reorderBy)
			}
			if chance(3) < f.imp.dup {
				f.count("dup")
				q.push(due, frame)
			}
		}
		f.count("forward")
		q.push(due, frame)
	}
}

// send writes queued frames to fd when they are due.
func (f *forwarder) send(fd int, q *frameQueue) {
	defer f.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !f.stopped.Load() {
		wait := 20 * time.Millisecond
		for {
			frame, next, ok := q.popDue(time.Now())
			if !ok {
				if !next.IsZero() {
					wait = min(wait, time.Until(next))
				}
				break
			}
			unix.Write(fd, frame) // a lost frame is what this path does anyway
		}
		timer.Reset(wait)
		select {
		case <-q.kick:
		case <-timer.C:
		}
	}
}

// frameQueue orders frames by due time, then by arrival.
type frameQueue struct {
	mu   sync.Mutex
	h    frameHeap
	n    uint64
	kick chan struct{}
}

type queued struct {
	due   time.Time
	n     uint64
	frame []byte
}

type frameHeap []queued

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].n < h[j].n
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(queued)) }
func (h *frameHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (q *frameQueue) push(due time.Time, frame []byte) {
	q.mu.Lock()
	q.n++
	heap.Push(&q.h, queued{due, q.n, frame})
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// popDue returns the first frame due by now, or the time the next one is.
func (q *frameQueue) popDue(now time.Time) (frame []byte, next time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 {
		return nil, time.Time{}, false
	}
	if q.h[0].due.After(now) {
		return nil, q.h[0].due, false
	}
	return heap.Pop(&q.h).(queued).frame, time.Time{}, true
}

// tcpOffset returns where the TCP header of an Ethernet frame starts and
// the IP version, or 0 if the frame is not TCP over IPv4/IPv6.
func tcpOffset(frame []byte) (int, int) {
	if len(frame) < 14 {
		return 0, 0
	}
	ip := frame[14:]
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
			return 0, 0
		}
		hl := int(ip[0]&0xf) * 4
		if len(ip) < hl+20 {
			return 0, 0
		}
		return 14 + hl, 4
	case 0x86dd:
		if len(ip) < 60 || ip[6] != unix.IPPROTO_TCP {
			return 0, 0
		}
		return 14 + 40, 6
	}
	return 0, 0
}

// segmentOf returns the port pair, sequence number, payload length and
// SYN flag of a TCP frame (length 0 for other frames).
func segmentOf(frame []byte) (ports, seq, n uint32, syn bool) {
	off, v := tcpOffset(frame)
	if off == 0 {
		return 0, 0, 0, false
	}
	ports = binary.BigEndian.Uint32(frame[off:])
	seq = binary.BigEndian.Uint32(frame[off+4:])
	syn = frame[off+13]&0x02 != 0
	ip := frame[14:]
	end := 14 + 40 + int(binary.BigEndian.Uint16(ip[4:]))
	if v == 4 {
		end = 14 + int(binary.BigEndian.Uint16(ip[2:]))
	}
	data := end - off - int(frame[off+12]>>4)*4
	if data <= 0 || end > len(frame) {
		return ports, seq, 0, syn
	}
	return ports, seq, uint32(data), syn
}

// fateCell is the size of the stream's cells a segment's fate follows
// (see receive).
const fateCell = 1024

// withSeedSalt mixes $PCAP2PKT_E2E_SEED (a number; none by default) into
// the impairment's seed: another capture set then meets other losses,
// reorderings and duplicates, sampled on purpose rather than by where the
// kernel happened to cut its segments.
func withSeedSalt(imp impairment) impairment {
	var salt uint64
	if s := os.Getenv("PCAP2PKT_E2E_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &salt); err == nil && salt != 0 {
			imp.seed = splitmix64(imp.seed ^ salt)
		}
	}
	return imp
}

// chance is a number in [0, 1) fixed by the seed, the kind of impairment
// (salt) and the segment: its direction, connection, the cell its last
// byte falls in and how many segments ending there came before.
func (imp impairment) chance(salt, dir uint64, conn, cell uint32, nth int) float64 {
	h := imp.seed
	for _, v := range []uint64{salt, dir, uint64(conn), uint64(cell), uint64(nth)} {
		h = splitmix64(h ^ v)
	}
	return float64(h>>11) / (1 << 53)
}

// splitmix64 is SplitMix64's output function: every input bit moves every
// output bit, so segments that differ in one field get unrelated chances.
func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// fixTCPChecksum fills in the TCP checksum of a TCP frame: a frame read
// from a veth whose peer offloads checksums carries only the pseudo-header
// sum, and the receiving stack would drop it.
func fixTCPChecksum(frame []byte) {
	off, v := tcpOffset(frame)
	if off == 0 {
		return
	}
	ip := frame[14:]
	var seg []byte
	var sum uint32
	if v == 4 {
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) || total < off-14 {
			return
		}
		seg = ip[off-14 : total]
		sum = sumWords(ip[12:20], 0)
	} else {
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return
		}
		seg = ip[40 : 40+plen]
		sum = sumWords(ip[8:40], 0)
	}
	sum += unix.IPPROTO_TCP + uint32(len(seg))
	seg[16], seg[17] = 0, 0
	sum = sumWords(seg, sum)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(seg[16:], ^uint16(sum))
}

func sumWords(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// TestE2EForwarderHelpers checks the forwarder's frame handling without a
// network: checksums it fills in match gopacket's, segmentOf reads the
// fields back, and the chances are spread evenly.
func TestE2EForwarderHelpers(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 8080, Seq: 123456, Ack: 1, ACK: true, PSH: true, Window: 512}
		var ip gopacket.SerializableLayer
		if v6 {
			eth.EthernetType = layers.EthernetTypeIPv6
			l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
				SrcIP: e2eClient6.AsSlice(), DstIP: e2eServer6.AsSlice()}
			tcp.SetNetworkLayerForChecksum(l)
			ip = l
		} else {
			eth.EthernetType = layers.EthernetTypeIPv4
			l := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
				SrcIP: e2eClient4.AsSlice(), DstIP: e2eServer4.AsSlice()}
			tcp.SetNetworkLayerForChecksum(l)
			ip = l
		}
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(make([]byte, 100))); err != nil {
			t.Fatal(err)
		}
		frame := buf.Bytes()
		off, _ := tcpOffset(frame)
		want := binary.BigEndian.Uint16(frame[off+16:])
		frame[off+16], frame[off+17] = 0xde, 0xad
		fixTCPChecksum(frame)
		if got := binary.BigEndian.Uint16(frame[off+16:]); got != want {
			t.Errorf("v6=%v: checksum %#04x, want %#04x", v6, got, want)
		}
		ports, seq, n, syn := segmentOf(frame)
		if ports != 40000<<16|8080 || seq != 123456 || n != 100 || syn {
			t.Errorf("v6=%v: segmentOf = %d %d %d %v", v6, ports, seq, n, syn)
		}
	}
	imp := impairment{seed: 1}
	const draws = 20000
	hits := 0
	for i := range draws {
		if imp.chance(1, 0, 7, uint32(i), 0) < 0.05 {
			hits++
		}
	}
	if hits < draws*4/100 || hits > draws*6/100 {
		t.Errorf("a 5%% chance hit %d of %d segments", hits, draws)
	}
}
