package replay

// This file builds the bytes of an inbound packet: the script's packet with
// addresses, ports, sequence numbers, SACK blocks and TS ecr mapped into
// the live connection, and checksums filled in.

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// buildInbound maps a compiled inbound packet to live values and encodes
// it (the reference's map_inbound_packet and send_live_ip_packet).
func (e *engine) buildInbound(sp *scriptPacket, s *socket) ([]byte, *tcpwire.TCPHeader, error) {
	src, dst := s.live.remote, s.live.local
	if sp.srcPort != 0 {
		src.port = sp.srcPort
	}
	if sp.dstPort != 0 {
		dst.port = sp.dstPort
	}
	if !src.ip.IsValid() || !dst.ip.IsValid() {
		return nil, nil, fmt.Errorf("no live addresses for this packet's connection")
	}
	hdr := ipHeaderLen(sp.v6)
	var l4 []byte
	var th *tcpwire.TCPHeader
	switch sp.proto {
	case tcpwire.ProtoTCP:
		h, err := e.mapInboundTCP(sp, s)
		if err != nil {
			return nil, nil, err
		}
		h.SrcPort, h.DstPort = src.port, dst.port
		th = h
		l4 = tcpwire.AppendTCP(make([]byte, 0, 20+len(h.Options)+sp.payloadLen), h)
		l4 = l4[:len(l4)+sp.payloadLen]
	case tcpwire.ProtoUDP:
		l4 = make([]byte, 8+sp.udpLen)
		binary.BigEndian.PutUint16(l4[0:], src.port)
		binary.BigEndian.PutUint16(l4[2:], dst.port)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+sp.udpLen))
	case tcpwire.ProtoICMP, tcpwire.ProtoICMPv6:
		l4 = e.buildICMP(sp, s)
	}
	total := hdr + len(l4)
	if total > 0xffff {
		return nil, nil, fmt.Errorf("packet of %d bytes is too large", total)
	}
	b := make([]byte, total)
	ipHeader(b, sp.v6, total, sp.tos, sp.flowLabel, sp.ttl, sp.proto, src.ip, dst.ip)
	copy(b[hdr:], l4)
	fillChecksums(b)
	return b, th, nil
}

// mapInboundTCP computes the live TCP header and options of an inbound
// packet.
func (e *engine) mapInboundTCP(sp *scriptPacket, s *socket) (*tcpwire.TCPHeader, error) {
	isSyn := sp.isSyn()
	h := &tcpwire.TCPHeader{
		Seq:    tcpwire.Seq(sp.seq).Add(s.remoteSeqScriptToLive(isSyn)),
		Ack:    tcpwire.Seq(sp.ack),
		Flags:  sp.flags,
		Window: uint16(sp.win),
		Urgent: sp.urg,
	}
	ackOffset := s.localSeqScriptToLive(isSyn)
	if sp.flags&tcpwire.FlagACK != 0 {
		h.Ack = h.Ack.Add(ackOffset)
	}
	h.Options = append([]byte(nil), sp.options...)
	shiftSACK(h.Options, ackOffset)
	if sp.flags&tcpwire.FlagACK == 0 {
		return h, nil
	}
	for o, err := range tcpwire.EachOption(h.Options) {
		if err != nil {
			return nil, err
		}
		_, ecr, ok := o.Timestamp()
		if !ok {
			continue
		}
		live, ok := s.tsValMap[ecr]
		switch {
		case sp.echoLatest && s.liveTSSeen:
			live = s.lastLiveTSVal
		case ok:
		case e.cfg.TCPTSECRScaled && s.foundFirstTS:
			live = ecr - s.firstScriptTSVal + s.firstActualTSVal
		case e.cfg.Extended && s.foundFirstTS:
			// Under --pcap2pkt an ACK line may be met by another
			// packet than its own, so not every TS val is mapped: the
			// ecr is interpolated from the first pair (both clocks tick
			// in milliseconds), never past what the kernel last sent.
			live = ecr - s.firstScriptTSVal + s.firstActualTSVal
			if s.liveTSSeen && tcpwire.Seq(s.lastLiveTSVal).Diff(tcpwire.Seq(live)) < 0 {
				live = s.lastLiveTSVal
			}
		default:
			return nil, fmt.Errorf("unable to infer live TS ecr for script TS ecr %d; no matching or preceding outbound TS val", ecr)
		}
		binary.BigEndian.PutUint32(o.Data[4:], live)
	}
	return h, nil
}

// shiftSACK moves the edges of the SACK blocks in opts (in place) by off:
// script sequence space to live, or back.
func shiftSACK(opts []byte, off uint32) {
	for o, err := range tcpwire.EachOption(opts) {
		if err != nil || o.Kind != tcpwire.OptKindSACK {
			continue
		}
		for i := 0; i+4 <= len(o.Data); i += 4 {
			binary.BigEndian.PutUint32(o.Data[i:], uint32(tcpwire.Seq(binary.BigEndian.Uint32(o.Data[i:])).Add(off)))
		}
	}
}

// buildICMP encodes an inbound ICMP message quoting the start of a packet
// the kernel sent on this connection, so that the kernel demultiplexes it to
// the socket.
func (e *engine) buildICMP(sp *scriptPacket, s *socket) []byte {
	var echoed []byte
	if sp.echoedProto == tcpwire.ProtoTCP || sp.echoedProto == tcpwire.ProtoUDP {
		l4len := 20
		if sp.echoedProto == tcpwire.ProtoUDP {
			l4len = 8
		}
		ipLen := ipHeaderLen(sp.v6)
		echoed = make([]byte, ipLen+8)
		var local, remote netip.Addr = s.live.local.ip, s.live.remote.ip
		if !local.IsValid() {
			local = e.cfg.localAddr
		}
		if !remote.IsValid() {
			remote = e.cfg.remoteAddr
		}
		full := make([]byte, ipLen)
		ipHeader(full, sp.v6, ipLen+l4len+sp.echoedLen, 0, 0, ttlNone, sp.echoedProto, local, remote)
		copy(echoed, full)
		binary.BigEndian.PutUint16(echoed[ipLen:], s.live.local.port)
		binary.BigEndian.PutUint16(echoed[ipLen+2:], s.live.remote.port)
		if sp.echoedProto == tcpwire.ProtoTCP {
			binary.BigEndian.PutUint32(echoed[ipLen+4:], uint32(tcpwire.Seq(sp.echoedSeq).Add(s.localSeqScriptToLive(false))))
		}
	} else {
		echoed = make([]byte, max(sp.echoedLen-8, 0))
	}
	b := make([]byte, 8+len(echoed))
	b[0], b[1] = sp.icmpType, sp.icmpCode
	if sp.icmpMTU >= 0 {
		if sp.v6 {
			binary.BigEndian.PutUint32(b[4:], uint32(sp.icmpMTU))
		} else {
			binary.BigEndian.PutUint16(b[6:], uint16(sp.icmpMTU))
		}
	}
	if sp.icmpID > 0 {
		binary.BigEndian.PutUint16(b[4:], uint16(sp.icmpID))
	}
	copy(b[8:], echoed)
	return b
}
