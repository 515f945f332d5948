package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// icmpErr builds an ICMPv4 error from src to dst quoting the first 8 bytes
// of TCP of the datagram quoted (whose IP total length still says its whole
// size, as a router's quote does).
func icmpErr(t testing.TB, src, dst string, typ, code uint8, mtu uint16, quoted []byte) []byte {
	t.Helper()
	ihl := int(quoted[0]&0x0F) * 4
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	// The second header word is unused, or holds the MTU in its low half
	// (gopacket's Seq).
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Seq: mtu}
	buf := gopacket.NewSerializeBuffer()
	so := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, so, ip, ic, gopacket.Payload(quoted[:ihl+8])); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func TestICMPErrors(t *testing.T) {
	synack := tcpSpec{src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000, seq: 5000, ack: 101,
		flags: tcpwire.FlagSYN | tcpwire.FlagACK, win: 1000, payload: make([]byte, 10)}.ip(t)
	other := tcpSpec{src: "10.0.0.2", dst: "10.0.0.9", sport: 80, dport: 40000, seq: 1, flags: tcpwire.FlagACK}.ip(t)
	frames := [][]byte{
		tcpSpec{src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, seq: 100, flags: tcpwire.FlagSYN, win: 1000}.ip(t),
		synack,
		icmpErr(t, "10.0.0.1", "10.0.0.2", 3, 1, 0, synack),      // host unreachable, about the SYN-ACK
		icmpErr(t, "10.0.0.254", "10.0.0.2", 3, 4, 1400, synack), // a router: fragmentation needed
		icmpErr(t, "10.0.0.9", "10.0.0.2", 3, 1, 0, other),       // about no flow here
		icmpErr(t, "10.0.0.1", "10.0.0.2", 8, 0, 0, synack),      // echo request: not an error
	}
	file := func() *bytes.Reader {
		f := newPcap(layers.LinkTypeEthernet, binary.LittleEndian, false, 65535)
		at := time.Unix(1700000000, 0)
		for i, fr := range frames {
			f.add(at.Add(time.Duration(i)*time.Millisecond), ether(fr), 0)
		}
		return bytes.NewReader(f.buf.Bytes())
	}

	flows, st, err := ReadFlows(file(), "icmp.pcap", FlowOptions{})
	if err != nil || len(flows) != 1 {
		t.Fatalf("%v, %d flows", err, len(flows))
	}
	if st.TCP != 2 || st.NonTCP != 4 {
		t.Errorf("stats %+v", st)
	}
	got := flows[0].ICMP
	want := []FlowICMP{
		{Index: 3, To: SideB, Type: 3, Code: 1, Seq: 5000, PayloadLen: 10},
		{Index: 4, To: SideB, Type: 3, Code: 4, MTU: 1400, Seq: 5000, PayloadLen: 10},
	}
	if len(got) != len(want) {
		t.Fatalf("ICMP %+v, want %+v", got, want)
	}
	for i := range want {
		got[i].Time = time.Time{}
		if got[i] != want[i] {
			t.Errorf("ICMP #%d: %+v, want %+v", i+1, got[i], want[i])
		}
	}

	// Without ICMPErrors the reader yields TCP only, as before.
	rd, err := NewReader(file(), "icmp.pcap")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil || p.ICMPError != nil {
			t.Fatalf("%v %+v", err, p)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d packets, want 2", n)
	}
}
