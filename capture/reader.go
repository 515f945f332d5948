package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// MaxRecordLen is the longest record accepted (libpcap's MAXIMUM_SNAPLEN,
// 256 KiB). Longer records are treated as damage, so a corrupt length field
// cannot make the reader allocate without bound.
const MaxRecordLen = 256 << 10

// ErrDamaged is matched (errors.Is) by every error about a corrupt or
// truncated capture file, so a caller can pick an exit code for it.
var ErrDamaged = errors.New("damaged capture")

// DamagedError reports where a capture file stops being readable. The
// packets before it have been delivered.
type DamagedError struct {
	Name   string // file name as given to NewReader
	Packet int    // 1-based number of the packet being read; 0 for the file header
	Offset int64  // byte offset of that record or block in the (uncompressed) file
	Msg    string // what is wrong
	Err    error  // underlying error, if any
}

func (e *DamagedError) Error() string {
	if e.Packet == 0 {
		return fmt.Sprintf("%s: file header (offset %d): %s", e.Name, e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s: packet %d (offset %d): %s", e.Name, e.Packet, e.Offset, e.Msg)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func (e *DamagedError) Unwrap() error { return e.Err }

// Format is the container format of a capture.
type Format string

const (
	FormatPcapMicro Format = "pcap-usec"
	FormatPcapNano  Format = "pcap-nsec"
	FormatPcapNG    Format = "pcapng"
)

// Stats counts what the reader saw. Only TCP packets are yielded; the rest
// are counted here and skipped.
type Stats struct {
	Records     int // packet records read
	TCP         int // TCP packets yielded
	NonIP       int // not IPv4/IPv6 (ARP, LLDP, ...)
	NonTCP      int // IP but not TCP
	Fragments   int // IP fragments (not reassembled)
	Short       int // too short or inconsistent to decode down to the TCP header
	Unsupported int // link type not decoded
	Truncated   int // TCP packets whose datagram the snaplen cut (payload length still from the IP header)

	// UnsupportedLink is the first link type not decoded, and
	// UnsupportedMixed says whether others followed (pcapng interfaces).
	UnsupportedLink  layers.LinkType
	UnsupportedMixed bool
}

// linkTypeName is a link type's name as tcpdump's list has it, where
// gopacket has none.
func linkTypeName(lt layers.LinkType) string {
	names := map[layers.LinkType]string{6: "IEEE802_5", 7: "ARCNET_BSD", 129: "ARCNET_LINUX", 189: "USB_LINUX", 220: "USB_LINUX_MMAPPED"}
	if n, ok := names[lt]; ok {
		return n
	}
	return lt.String()
}

// Undecoded says what the reader saw but could not look into, for a user
// told that a capture holds no TCP connection: packets of link types not
// decoded (by name and number), and IP or other packets that were not TCP.
func (s Stats) Undecoded() string {
	var parts []string
	if s.Unsupported > 0 {
		others := ""
		if s.UnsupportedMixed {
			others = " and others"
		}
		parts = append(parts, fmt.Sprintf("%d packets in link type %s (%d)%s not decoded", s.Unsupported, linkTypeName(s.UnsupportedLink), int(s.UnsupportedLink), others))
	}
	if s.NonIP > 0 {
		parts = append(parts, fmt.Sprintf("%d packets not IP", s.NonIP))
	}
	if s.NonTCP > 0 {
		parts = append(parts, fmt.Sprintf("%d IP packets not TCP (nor TCP in a tunnel decoded: IP in IP, GRE, VXLAN, Geneve)", s.NonTCP))
	}
	if s.Fragments > 0 {
		parts = append(parts, fmt.Sprintf("%d IP fragments (not reassembled)", s.Fragments))
	}
	if s.Short > 0 {
		parts = append(parts, fmt.Sprintf("%d packets too short to decode", s.Short))
	}
	return strings.Join(parts, "; ")
}

// Reader reads TCP packets from a pcap or pcapng stream without loading it
// whole and without allocating per packet.
type Reader struct {
	name     string
	count    *countingReader
	br       *bufio.Reader
	pcap     *pcapgo.Reader
	ng       *pcapgo.NgReader
	ngBig    bool // the first pcapng section is big-endian: pcapgo reads EPB flags as little-endian
	format   Format
	linkType layers.LinkType
	dec      decoder
	pkt      Packet
	index    int
	stats    Stats
	err      error // sticky: io.EOF or the damage
	ahead    *readAhead
	batch    *aheadBatch // the batch next reads into, when reading ahead

	// ICMPErrors makes Next return ICMPv4 errors that quote a TCP segment
	// too, as packets with ICMP set (they still count as NonTCP).
	ICMPErrors bool
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

const bufSize = 64 << 10

// NewReader reads the file header from r and returns a Reader. name is used
// in error messages only. The format (pcap in either byte order and
// timestamp resolution, pcapng, either of them gzip-compressed) is sniffed
// from the first bytes.
func NewReader(r io.Reader, name string) (*Reader, error) {
	rd := &Reader{name: name}
	rd.count = &countingReader{r: r}
	rd.br = bufio.NewReaderSize(rd.count, bufSize)
	magic, err := rd.br.Peek(4)
	if len(magic) == 0 && err == io.EOF {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, gerr := gzip.NewReader(rd.br)
		if gerr != nil {
			return nil, rd.headerDamage("gzip: "+gerr.Error(), gerr)
		}
		rd.count = &countingReader{r: gz}
		rd.br = bufio.NewReaderSize(rd.count, bufSize)
		magic, err = rd.br.Peek(4)
	}
	if len(magic) < 4 {
		// A file cut inside the magic number is a damaged capture; any
		// other short file (empty, a few bytes of text) is not a capture.
		if len(magic) == 0 || !magicPrefix(magic) {
			return nil, fmt.Errorf("%s: not a pcap or pcapng file (%d bytes%s)", name, len(magic), startsWith(magic))
		}
		return nil, rd.headerDamage(fmt.Sprintf("truncated file header: want 4 bytes, have %d", len(magic)), err)
	}
	switch binary.BigEndian.Uint32(magic) {
	case 0xD4C3B2A1, 0xA1B2C3D4:
		rd.format = FormatPcapMicro
	case 0x4D3CB2A1, 0xA1B23C4D:
		rd.format = FormatPcapNano
	case 0x0A0D0D0A:
		rd.format = FormatPcapNG
	default:
		return nil, fmt.Errorf("%s: not a pcap or pcapng file (starts with % x)", name, magic)
	}
	if rd.format == FormatPcapNG {
		if h, _ := rd.br.Peek(12); len(h) == 12 {
			rd.ngBig = binary.BigEndian.Uint32(h[8:]) == 0x1A2B3C4D
		}
		rd.ng, err = pcapgo.NewNgReader(rd.br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, rd.headerDamage("pcapng: "+err.Error(), err)
		}
		rd.linkType = rd.ng.LinkType()
		rd.dec.bigEndian = rd.ngBig
		return rd, nil
	}
	rd.dec.bigEndian = magic[0] == 0xA1
	rd.pcap, err = pcapgo.NewReader(rd.br)
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, rd.headerDamage(fmt.Sprintf("truncated file header: want 24 bytes, have %d", rd.offset()), err)
		}
		return nil, rd.headerDamage("pcap: "+err.Error(), err)
	}
	rd.linkType = rd.pcap.LinkType()
	return rd, nil
}

// magicPrefix reports whether b begins one of the magic numbers of pcap
// (either byte order, micro- or nanoseconds) or pcapng.
func magicPrefix(b []byte) bool {
	for _, m := range []uint32{0xD4C3B2A1, 0xA1B2C3D4, 0x4D3CB2A1, 0xA1B23C4D, 0x0A0D0D0A} {
		var w [4]byte
		binary.BigEndian.PutUint32(w[:], m)
		if bytes.HasPrefix(w[:], b) {
			return true
		}
	}
	return false
}

func startsWith(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return fmt.Sprintf(", starting with % x", b)
}

func (r *Reader) headerDamage(msg string, err error) error {
	return &DamagedError{Name: r.name, Msg: msg, Err: err}
}

// offset is the number of bytes of the (uncompressed) file consumed so far.
func (r *Reader) offset() int64 { return r.count.n - int64(r.br.Buffered()) }

// Format returns the container format.
func (r *Reader) Format() Format { return r.format }

// LinkType returns the link type of the file (pcap) or of its first
// interface (pcapng; each packet carries its own in Packet.LinkType).
func (r *Reader) LinkType() layers.LinkType { return r.linkType }

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Next returns the next TCP packet. It returns io.EOF at the clean end of
// the file, and a *DamagedError (errors.Is(err, ErrDamaged)) where the file
// is corrupt or cut short; every later call returns the same error.
//
// The returned *Packet is the same on every call (unless reading ahead)
// and its slices point into the reader's buffer: copy what you keep
// before calling Next again. No
// allocation happens per packet, except one inside pcapgo for a pcapng
// packet that carries EPB flags.
func (r *Reader) Next() (*Packet, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.ahead != nil {
		return r.nextAhead(r.ahead)
	}
	for {
		p, err := r.next()
		if err != nil {
			r.err = err
			return nil, err
		}
		if p != nil {
			return p, nil
		}
	}
}

// next reads one record; it returns nil, nil for a record that is not a TCP
// packet.
func (r *Reader) next() (*Packet, error) {
	start := r.offset()
	var (
		data []byte
		ci   gopacket.CaptureInfo
		err  error
		lt   = r.linkType
		dir  = DirUnknown
	)
	if r.pcap != nil {
		var ok bool
		if data, ci, ok, err = r.pcapRecord(start); err != nil {
			return nil, err
		}
		if !ok {
			data, ci, err = r.pcap.ZeroCopyReadPacketData()
		}
	} else {
		var opts pcapgo.NgPacketOptions
		data, ci, opts, err = r.ng.ZeroCopyReadPacketDataWithOptions()
		if err == nil {
			if len(ci.AncillaryData) > 0 {
				if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					lt = l
				}
			}
			if opts.Flags != nil {
				dir = epbDirection(opts.Flags.ToUint32(), r.ngBig)
			}
		}
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.readDamage(start, ci, err)
	}
	if len(data) > MaxRecordLen {
		return nil, r.damage(start, fmt.Sprintf("record length %d exceeds %d bytes", len(data), MaxRecordLen), nil)
	}
	r.index++
	r.stats.Records++
	p := &r.pkt
	if b := r.batch; b != nil {
		p = &b.pkts[len(b.pkts)-1]
		data = b.keep(data)
	}
	*p = Packet{
		Index:      r.index,
		Offset:     start,
		Time:       ci.Timestamp,
		Interface:  ci.InterfaceIndex,
		LinkType:   lt,
		CaptureDir: dir,
		Frame:      data,
		CapLen:     len(data),
		WireLen:    ci.Length,
		// Options and Payload slices are reset by decode on the TCP path.
	}
	r.dec.icmp = r.ICMPErrors
	switch r.dec.decode(lt, data, p) {
	case outICMP:
		r.stats.NonTCP++
		return p, nil
	case outTCP:
		r.stats.TCP++
		if p.Truncated {
			r.stats.Truncated++
		}
		return p, nil
	case outNonIP:
		r.stats.NonIP++
	case outNonTCP:
		r.stats.NonTCP++
	case outFragment:
		r.stats.Fragments++
	case outShort:
		r.stats.Short++
	case outUnsupported:
		if r.stats.Unsupported == 0 {
			r.stats.UnsupportedLink = lt
		} else if lt != r.stats.UnsupportedLink {
			r.stats.UnsupportedMixed = true
		}
		r.stats.Unsupported++
	}
	return nil, nil
}

// pcapRecord reads a pcap record straight from the buffer when the whole
// of it is there and pcapgo would take it as it is (no longer than the
// snaplen nor the original length): pcapgo reads its header and then its
// bytes through two calls of io.ReadFull, copies them, and decodes the
// time: half of the reader's own time on a capture of small packets.
// Otherwise (ok false) pcapgo reads it, and says what is wrong with it. A
// record longer than MaxRecordLen is damage (start is where it begins).
func (r *Reader) pcapRecord(start int64) (data []byte, ci gopacket.CaptureInfo, ok bool, err error) {
	h, _ := r.br.Peek(16)
	if len(h) < 16 {
		return nil, ci, false, nil
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if r.dec.bigEndian {
		order = binary.BigEndian
	}
	n, orig := order.Uint32(h[8:]), order.Uint32(h[12:])
	if n > MaxRecordLen {
		return nil, ci, false, r.damage(start, fmt.Sprintf("record length %d exceeds %d bytes", n, MaxRecordLen), nil)
	}
	if n > r.pcap.Snaplen() || n > orig {
		return nil, ci, false, nil
	}
	// (Peek may move the buffer's bytes: h is read no further.)
	rec, _ := r.br.Peek(16 + int(n))
	if len(rec) < 16+int(n) {
		return nil, ci, false, nil
	}
	// As pcapgo reads the time: the fraction in 32 bits, times 1,000
	// for microseconds.
	frac := order.Uint32(rec[4:])
	if r.format == FormatPcapMicro {
		frac *= 1000
	}
	ci = gopacket.CaptureInfo{Timestamp: time.Unix(int64(order.Uint32(rec[0:])), int64(frac)).UTC(), CaptureLength: int(n), Length: int(orig)}
	data = rec[16:]
	r.br.Discard(16 + int(n))
	return data, ci, true, nil
}

// epbDirection reads the inbound/outbound bits of pcapng EPB flags. pcapgo
// decodes the flags word as little-endian whatever the section's byte
// order, so a big-endian section's word arrives byte-swapped.
func epbDirection(flags uint32, big bool) Direction {
	if big {
		flags = bits.ReverseBytes32(flags)
	}
	switch flags & 3 {
	case 1:
		return DirIn
	case 2:
		return DirOut
	}
	return DirUnknown
}

func (r *Reader) damage(start int64, msg string, err error) error {
	return &DamagedError{Name: r.name, Packet: r.index + 1, Offset: start, Msg: msg, Err: err}
}

// readDamage turns a pcapgo read error into a DamagedError saying how much
// of the record was there.
func (r *Reader) readDamage(start int64, ci gopacket.CaptureInfo, err error) error {
	have := r.offset() - start
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if r.pcap != nil {
			if have < 16 {
				return r.damage(start, fmt.Sprintf("truncated record header: want 16 bytes, have %d", have), err)
			}
			return r.damage(start, fmt.Sprintf("truncated record: want %d bytes, have %d", ci.CaptureLength, have-16), err)
		}
		return r.damage(start, fmt.Sprintf("truncated block: file ends %d bytes into it", have), err)
	}
	return r.damage(start, err.Error(), err)
}
