package capture

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pcap2pkt/pcap2pkt/capture/capturetest"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// readSummary reads a whole capture, reading ahead or not, and returns each
// packet as text (its fields, the bytes its slices hold, its ICMP error),
// then the error that ended it and the reader's counts.
func readSummary(t *testing.T, file []byte, ahead bool) []string {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file), "fixture")
	if err != nil {
		return []string{err.Error()}
	}
	r.ICMPErrors = true
	if ahead {
		r.ReadAhead()
	}
	var out []string
	for {
		p, err := r.Next()
		if err != nil {
			if _, again := r.Next(); again != err {
				t.Errorf("error not sticky: %v, then %v", err, again)
			}
			return append(out, fmt.Sprintf("%v %+v", err, r.Stats()))
		}
		out = append(out, summary(p))
	}
}

// summary is p as text, with a digest of each byte slice.
func summary(p *Packet) string {
	q := *p
	q.ICMPError, q.Frame, q.Payload, q.TCP.Options = nil, nil, nil, nil
	s := fmt.Sprintf("%+v frame %x payload %x options %x", q, sha256.Sum256(p.Frame), sha256.Sum256(p.Payload), p.TCP.Options)
	if e := p.ICMPError; e != nil {
		s += fmt.Sprintf(" icmp %+v", *e)
	}
	return s
}

// TestReadAhead checks that a reader reading ahead hands out the same
// packets as one that does not, then the same error and counts: on
// captures of more packets than a batch holds, with frames larger than a
// batch's room, ICMP errors and packets that are not TCP, cut short
// anywhere.
func TestReadAhead(t *testing.T) {
	gen, _ := capturetest.Generate(capturetest.Config{Flows: 20, Concurrent: 7, Rounds: 40, Request: 100, Response: 3000})
	synack := tcpSpec{src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000, seq: 5000, ack: 101,
		flags: tcpwire.FlagSYN | tcpwire.FlagACK, win: 1000, payload: make([]byte, 10)}.ip(t)
	big := tcpSpec{src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000, seq: 5001, ack: 101,
		flags: tcpwire.FlagACK, win: 1000, payload: bytes.Repeat([]byte{7}, 60000)}.ip(t)
	f := newPcap(layers.LinkTypeEthernet, binary.LittleEndian, true, 1<<18)
	at := time.Unix(1700000000, 0)
	for i := range 2*aheadPackets + 100 {
		var fr []byte
		switch {
		case i%7 == 0:
			fr = ether(icmpErr(t, "10.0.0.1", "10.0.0.2", 3, 4, uint16(1000+i), synack)) // each its own MTU
		case i%300 == 3:
			// Past a batch's room, with the padding after the datagram.
			fr = append(ether(big), make([]byte, aheadRoom+i%3)...)
		case i%100 == 5:
			fr = ether(big)
		default:
			fr = ether(synack)
		}
		f.add(at.Add(time.Duration(i)*time.Microsecond), fr, 0)
	}
	mixed := f.buf.Bytes()
	for name, file := range map[string][]byte{"generated": gen, "mixed": mixed} {
		for _, cut := range []int{len(file), len(file) - 7, len(file) * 2 / 3, 100, 30} {
			data := file[:cut]
			want, got := readSummary(t, data, false), readSummary(t, data, true)
			if len(want) != len(got) {
				t.Errorf("%s cut at %d: %d packets reading ahead, %d without", name, cut, len(got)-1, len(want)-1)
				continue
			}
			for i := range want {
				if want[i] != got[i] {
					t.Errorf("%s cut at %d, packet %d reading ahead:\n%s\nwithout:\n%s", name, cut, i+1, got[i], want[i])
					break
				}
			}
		}
	}
}

// TestReadAheadStop checks that Stop ends the reading goroutine of a caller
// that stops early.
func TestReadAheadStop(t *testing.T) {
	gen, _ := capturetest.Generate(capturetest.Config{Flows: 20, Concurrent: 7, Rounds: 200, Request: 100, Response: 3000})
	before := runtime.NumGoroutine()
	r, err := NewReader(bytes.NewReader(gen), "gen")
	if err != nil {
		t.Fatal(err)
	}
	r.ReadAhead()
	for range 10 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	r.Stop()
	for start := time.Now(); runtime.NumGoroutine() > before; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d goroutines after Stop, %d before reading", runtime.NumGoroutine(), before)
		}
	}
}

// TestPcapRecords checks the records that Reader reads from its buffer
// itself (pcapRecord) against pcapgo's reading of the same file: time,
// lengths and bytes of every record, in both byte orders and timestamp
// resolutions, records of every size across the buffer's boundaries, some
// cut by the snaplen, some longer than the snaplen (which pcapgo reads).
func TestPcapRecords(t *testing.T) {
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nanos := range []bool{false, true} {
			f := newPcap(layers.LinkTypeEthernet, order, nanos, 1500)
			at := time.Unix(1700000000, 999_000_000)
			for i := range 3000 {
				fr := ether(tcpSpec{src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000, seq: uint32(i), ack: 101,
					flags: tcpwire.FlagACK, win: 1000, payload: make([]byte, i%1460)}.ip(t))
				caplen := 0
				if i%5 == 0 {
					caplen = 96
				}
				f.add(at.Add(time.Duration(i)*time.Duration(123_457)), fr, caplen)
			}
			r, err := NewReader(bytes.NewReader(f.buf.Bytes()), "fixture")
			if err != nil {
				t.Fatal(err)
			}
			pr, err := pcapgo.NewReader(bytes.NewReader(f.buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				p, err := r.Next()
				data, ci, perr := pr.ReadPacketData()
				if err != nil || perr != nil {
					if err != io.EOF || perr != io.EOF {
						t.Fatalf("%v nanos %v, record %d: %v, pcapgo %v", order, nanos, i+1, err, perr)
					}
					break
				}
				if !p.Time.Equal(ci.Timestamp) || p.CapLen != ci.CaptureLength || p.WireLen != ci.Length || !bytes.Equal(p.Frame, data) {
					t.Fatalf("%v nanos %v, record %d: %v, %d of %d bytes; pcapgo: %v, %d of %d", order, nanos, i+1,
						p.Time, p.CapLen, p.WireLen, ci.Timestamp, ci.CaptureLength, ci.Length)
				}
			}
		}
	}
}
