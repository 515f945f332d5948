package replay

// The capture of a run: every packet injected and every packet the kernel
// sent, in a pcap file like `tcpdump -i any` writes (Linux cooked v2 headers,
// which carry the direction), so that the capture side of pcap2pkt and
// tcpdump or Wireshark read it back. The file appears only when complete.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// LINUX_SLL2 header fields (pcap-linktype(7), linux/if_packet.h).
const (
	sll2HeaderLen   = 20
	sll2ARPHRDNone  = 0xfffe // a TUN device has no link layer
	sll2PacketHost  = 0      // PACKET_HOST: to us, i.e. injected
	sll2PacketOut   = 4      // PACKET_OUTGOING: sent by the kernel
	pcapSnapLen     = 262144 // tcpdump's default
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	capturePerm     = 0o644
	captureBufBytes = 64 << 10
)

// PcapWriter writes a run's packets to a LINUX_SLL2 pcap file with
// nanosecond timestamps. It is safe for concurrent use.
type PcapWriter struct {
	// Ifindex is the interface index written in every packet header. It is
	// 0 by default: a reader would map a real index to one of its own
	// interfaces (tcpdump prints "?" for 0).
	Ifindex int

	mu   sync.Mutex
	path string
	tmp  *os.File
	buf  *bufio.Writer
	w    *pcapgo.Writer
	hdr  [sll2HeaderLen]byte
	err  error // the first write error; Close reports it and drops the file
	done bool
}

// NewPcapWriter starts a capture that Close will publish at path. Until then
// the packets go to a temporary file in the same directory.
func NewPcapWriter(path string) (*PcapWriter, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("replay: capture %s: %w", path, err)
	}
	buf := bufio.NewWriterSize(tmp, captureBufBytes)
	w := pcapgo.NewWriterNanos(buf)
	if err := w.WriteFileHeader(pcapSnapLen, layers.LinkTypeLinuxSLL2); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("replay: capture %s: %w", path, err)
	}
	return &PcapWriter{path: path, tmp: tmp, buf: buf, w: w}, nil
}

// WritePacket records IP packet pkt at time at: outgoing for a packet the
// kernel sent, otherwise a packet injected into the kernel.
func (p *PcapWriter) WritePacket(at time.Time, pkt []byte, outgoing bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return errors.New("replay: capture: write after Close")
	}
	if p.err != nil {
		return p.err
	}
	h := p.hdr[:]
	clear(h)
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		binary.BigEndian.PutUint16(h[0:2], etherTypeIPv6)
	} else {
		binary.BigEndian.PutUint16(h[0:2], etherTypeIPv4)
	}
	binary.BigEndian.PutUint32(h[4:8], uint32(p.Ifindex))
	binary.BigEndian.PutUint16(h[8:10], sll2ARPHRDNone)
	h[10] = sll2PacketHost
	if outgoing {
		h[10] = sll2PacketOut
	}
	frame := append(h, pkt...)
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(frame), Length: len(frame)}
	if len(frame) > pcapSnapLen {
		ci.CaptureLength = pcapSnapLen
		frame = frame[:pcapSnapLen]
	}
	if err := p.w.WritePacket(ci, frame); err != nil {
		p.err = fmt.Errorf("replay: capture %s: %w", p.path, err)
		return p.err
	}
	return nil
}

// Close completes the file and renames it to its path. After a write error
// it removes the temporary file instead and returns that error, so that a
// partial capture never appears at path.
func (p *PcapWriter) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	p.done = true
	err := p.err
	if err == nil {
		err = p.buf.Flush()
	}
	if err == nil {
		err = p.tmp.Chmod(capturePerm)
	}
	if err == nil {
		err = p.tmp.Sync()
	}
	if cerr := p.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p.tmp.Name(), p.path)
	}
	if err != nil {
		os.Remove(p.tmp.Name())
		if p.err != nil {
			return p.err
		}
		return fmt.Errorf("replay: capture %s: %w", p.path, err)
	}
	return nil
}
