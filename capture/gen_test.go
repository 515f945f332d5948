package capture

import "github.com/pcap2pkt/pcap2pkt/capture/capturetest"

// genCapture builds a pcap (Ethernet, IPv4, microseconds) of nflows TCP
// connections, each with a handshake, dataPerFlow rounds of 32 bytes from
// the server and the client's ACK, and a FIN close; conc connections run
// interleaved. Every packet has a valid checksum. It returns the file and
// its number of packets.
func genCapture(nflows, dataPerFlow, conc int) ([]byte, int) {
	return capturetest.Generate(capturetest.Config{Flows: nflows, Concurrent: conc, Rounds: dataPerFlow, Response: 32})
}
