// Package capture reads tcpdump captures (pcap and pcapng, from any io.Reader) and yields TCP packets.
// Data flow: bytes -> Reader (pcapgo records, link layers decoded here and IP/TCP by tcpwire.Decode, into one reused *Packet per Next)
// -> Tracker (TCP connections keyed by 4-tuple, compact per-packet copies) -> []*Flow with the local
// side (the kernel under test) chosen per flow and the reason -> synth, or WriteFlowTable for
// `pcap2pkt flows`. Damaged files yield what came before and then a *DamagedError (ErrDamaged).
package capture
