package capture_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/pcap2pkt/pcap2pkt/capture"
)

// handshake writes a LINUX_SLL2 capture of a SYN and SYN-ACK taken on the
// server, as tcpdump -i any would.
func handshake() []byte {
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	w.WriteFileHeader(262144, layers.LinkTypeLinuxSLL2)
	c, s := net.IP{192, 0, 2, 1}, net.IP{192, 168, 0, 1}
	for i, pt := range []layers.LinuxSLL2PacketType{layers.LinuxSLL2PacketTypeHost, layers.LinuxSLL2PacketTypeOutgoing} {
		// gopacket cannot serialise SLL2: protocol, reserved, ifindex,
		// hatype, packet type, address length, address.
		sll := []byte{0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, byte(pt), 6, 2, 0, 0, 0, 0, 1, 0, 0}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: c, DstIP: s}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 8080, Seq: 1, SYN: true, Window: 4000}
		if i == 1 {
			ip.SrcIP, ip.DstIP = s, c
			tcp = &layers.TCP{SrcPort: 8080, DstPort: 40000, Seq: 7, Ack: 2, SYN: true, ACK: true, Window: 65535}
		}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp)
		frame := append(sll, buf.Bytes()...)
		ts := time.Unix(1700000000, int64(i)*1500)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}, frame)
	}
	return b.Bytes()
}

func ExampleReader() {
	r, err := capture.NewReader(bytes.NewReader(handshake()), "catch.pcap")
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err) // a *capture.DamagedError: errors.Is(err, capture.ErrDamaged)
			break
		}
		fmt.Println(p.Index, p.CaptureDir, p.Src(), ">", p.Dst(), p.TCP.Flags, p.TCP.Seq, p.TCP.ChecksumState)
	}
	// Output:
	// 1 in 192.0.2.1:40000 > 192.168.0.1:8080 S 1 good
	// 2 out 192.168.0.1:8080 > 192.0.2.1:40000 S. 7 good
}

func ExampleReadFlows() {
	flows, _, err := capture.ReadFlows(bytes.NewReader(handshake()), "catch.pcap", capture.FlowOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := flows[0]
	fmt.Println("local", f.LocalEndpoint(), "remote", f.RemoteEndpoint())
	for _, p := range f.Packets.All() {
		fmt.Println(p.From == f.Local, p.Flags, p.Seq-f.ISN[p.From], p.Time().Sub(f.First))
	}
	capture.WriteFlowTable(os.Stdout, flows)
	// Output:
	// local 192.168.0.1:8080 remote 192.0.2.1:40000
	// false S 0 0s
	// true S. 0 1.5µs
	// # LOCAL is the kernel under test; -> it is the client, <- the server; BYTES: TCP payload, both ways; DURATION in seconds; flow N is Wireshark's tcp.stream N-1
	// #  LOCAL                 REMOTE           PACKETS  BYTES  DURATION  STATE               LOCAL CHOSEN BECAUSE
	// 1  192.168.0.1:8080  <-  192.0.2.1:40000  2        0      0.000002  partial (no close)  the capture marks 1 of its packets outgoing and 1 of the peer's incoming
}
