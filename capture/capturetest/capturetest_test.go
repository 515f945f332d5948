package capturetest

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

func TestGenerate(t *testing.T) {
	for _, c := range []Config{
		{Flows: 3, Concurrent: 2, Rounds: 2, Request: 100, Response: 1948},
		{Flows: 20, Concurrent: 3, Rounds: 5, Response: 32},
		{Flows: 1, Concurrent: 1},
		{Flows: 2, Concurrent: 2, Rounds: 3, Response: 2 * mss, Snap: 96},
	} {
		data, n := Generate(c)
		if n != c.Packets() || len(data) != c.size() {
			t.Errorf("%+v: %d packets (want %d), %d bytes (want %d)", c, n, c.Packets(), len(data), c.size())
		}
		var buf bytes.Buffer
		if m, err := Write(&buf, c); err != nil || m != n || !bytes.Equal(buf.Bytes(), data) {
			t.Errorf("%+v: Write: %v, %d packets, same bytes %v", c, err, m, bytes.Equal(buf.Bytes(), data))
		}
	}
}

func TestWriteSegments(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	cli6, srv6 := netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:80")
	segs := []Segment{
		{Src: cli, Dst: srv, Flags: "S", Seq: 7, Window: 1000, Options: []byte{2, 4, 5, 0xb4}},
		{At: -24 * time.Hour, Src: srv, Dst: cli, Flags: "S.", Seq: 9, Ack: 8, Window: 2000},
		{At: time.Second, Src: cli, Dst: srv, Flags: "P.", Seq: 8, Ack: 10, Window: 3000, Len: 65495, Cut: true},
		{At: time.Second, Src: cli6, Dst: srv6, Flags: ".", Seq: 1, Ack: 2, Window: 4000, Len: 100,
			Options: []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}},
	}
	var buf bytes.Buffer
	if err := WriteSegments(&buf, segs); err != nil {
		t.Fatal(err)
	}
	r, err := capture.NewReader(&buf, "segs.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range segs {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if p.Src() != s.Src || p.Dst() != s.Dst || p.TCP.Seq != tcpwire.Seq(s.Seq) || p.TCP.Window != s.Window ||
			p.PayloadLen != s.Len || p.Truncated != s.Cut || !p.Time.Equal(captureStart.Add(s.At)) ||
			!bytes.Equal(p.TCP.Options, s.Options) || p.TCP.ChecksumState != tcpwire.ChecksumGood && !s.Cut {
			t.Errorf("packet %d: %v %v seq %d win %d len %d cut %v at %v opts % x csum %v, want %+v", i+1, p.Src(), p.Dst(),
				p.TCP.Seq, p.TCP.Window, p.PayloadLen, p.Truncated, p.Time, p.TCP.Options, p.TCP.ChecksumState, s)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last packet: %v", err)
	}
}

// TestSnap checks that a cut capture still says each segment's length and
// marks the cut ones truncated.
func TestSnap(t *testing.T) {
	c := Config{Flows: 2, Concurrent: 2, Rounds: 3, Response: 2 * mss, Snap: 96}
	data, n := Generate(c)
	r, err := capture.NewReader(bytes.NewReader(data), "snap.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cut, payload := 0, 0
	for range n {
		p, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if p.CapLen > c.Snap || p.Truncated != (p.WireLen > c.Snap) {
			t.Fatalf("packet %d: %d of %d bytes captured, truncated %v", p.Index, p.CapLen, p.WireLen, p.Truncated)
		}
		if p.Truncated {
			cut++
		}
		payload += p.PayloadLen
	}
	if want := c.Flows * c.Rounds * c.Response; cut != 2*c.Flows*c.Rounds || payload != want {
		t.Errorf("%d packets cut, %d payload bytes (want %d)", cut, payload, want)
	}
}
