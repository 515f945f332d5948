package parser

import (
	"fmt"
	"net/netip"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// Limits of the reference's packet buffers.
const (
	maxHeaders       = 6         // headers in one packet, encapsulations included
	maxDatagramBytes = 64 * 1024 // an IP datagram
)

// Syscalls is the set of system call names the reference can run (its
// run_system_call.c table).
var Syscalls = map[string]bool{
	"socket": true, "bind": true, "listen": true, "accept": true, "connect": true,
	"read": true, "readv": true, "recv": true, "recvfrom": true, "recvmsg": true,
	"write": true, "writev": true, "send": true, "sendto": true, "sendmsg": true,
	"fcntl": true, "ioctl": true, "close": true, "shutdown": true,
	"getsockopt": true, "setsockopt": true, "poll": true, "cap_set": true,
	"open": true, "sendfile": true, "epoll_create": true, "epoll_ctl": true,
	"epoll_wait": true, "pipe": true, "splice": true, "psp_rx_assoc": true,
	"psp_tx_assoc": true,
}

// checkEvent reports the errors the reference finds while parsing an
// event (it dies on them before running anything).
func (p *parser) checkEvent(ev *Event) {
	eventErrors(ev, p.errs.add)
}

// eventErrors checks one event the way the reference's parser actions do.
func eventErrors(ev *Event, report func(Pos, string)) {
	pk, isPacket := ev.Action.(*Packet)
	outbound := isPacket && pk.Dir == Outbound
	switch ev.Time.Kind {
	case TimeAny:
		if !outbound {
			report(ev.Time.Pos, "event time * can only be used with outbound packets")
		}
	case TimeAbsoluteRange, TimeRelativeRange:
		if !outbound {
			report(ev.Time.Pos, "event time range can only be used with outbound packets")
		}
	}
	if isPacket {
		packetErrors(pk, report)
	}
}

func packetErrors(pk *Packet, report func(Pos, string)) {
	inbound := pk.Dir == Inbound
	if pk.IPInfo != nil && pk.IPInfo.TOS == "ect01" && inbound && pk.UDP == nil {
		report(pk.IPInfo.Pos, "[ect01] can only be used with outbound packets")
	}
	if pk.UDP != nil && pk.IPInfo != nil {
		switch pk.IPInfo.TOS {
		case "noecn", "ect0", "ect1", "ce":
			report(pk.IPInfo.Pos, "ECN can only be used with TCP packets")
		}
	}
	headers := len(pk.Encaps) + 2 // the encapsulations, IP, transport
	if pk.PSP != nil {
		headers += 2 // UDP and PSP
	}
	if headers > maxHeaders {
		report(pk.Pos, fmt.Sprintf("too many headers: %d, at most %d", headers, maxHeaders))
	}
	for _, e := range pk.Encaps {
		if ip, ok := e.(*EncapIP); ok {
			for _, a := range []string{ip.Src, ip.Dst} {
				if addr, err := netip.ParseAddr(a); err != nil || addr.Is4() != (ip.Version == 4) {
					report(ip.Pos, fmt.Sprintf("bad IPv%d address: '%s'", ip.Version, a))
				}
			}
		}
	}
	// The sizes below assume the smallest IP header (IPv4, 20 bytes):
	// the family is only known when the script runs.
	if pk.UDP != nil && 20+8+pk.UDP.Len > maxDatagramBytes {
		report(pk.UDP.Pos, "UDP datagram too large")
	}
	if pk.TCP == nil {
		return
	}
	tcp := pk.TCP
	if _, _, err := tcpwire.ParseFlags(tcp.Flags); err != nil {
		report(tcp.Pos, err.Error())
	}
	if tcp.Options != nil && tcp.Options.Any && inbound {
		report(tcp.Options.Pos, "<...> for TCP options can only be used with outbound packets")
	}
	if tcp.Win == nil && inbound {
		report(tcp.Pos, "window must be specified for inbound packets")
	}
	n := tcp.Options.WireLen()
	if tcp.Options != nil && !tcp.Options.Any {
		known := true
		for _, o := range tcp.Options.List {
			// An undefined symbol's cookie or digest has no length.
			known = known && (o.Sym == "" || o.Cookie != "" || o.Kind == OptMSS || o.Kind == OptWScale)
		}
		switch {
		case !known:
			// The size is not known: nothing to check.
		case n > tcpwire.MaxOptionBytes:
			report(tcp.Options.Pos, fmt.Sprintf("TCP option list too long: %d bytes, at most %d fit", n, tcpwire.MaxOptionBytes))
		case n%4 != 0:
			report(tcp.Options.Pos, fmt.Sprintf("TCP options are not padded correctly to ensure TCP header is a multiple of 4 bytes: %d excess bytes", n%4))
		}
	}
	if int(tcp.Len) > MaxSegmentBytes(n) {
		report(tcp.Pos, "TCP segment too large")
	}
}

// MaxSegmentBytes is the most payload a TCP packet line can carry with
// optionBytes bytes of TCP options: the reference's packet buffer holds
// one IP datagram, counted with the smallest headers (IPv4 and TCP, 20
// bytes each), as the family is known only when the script runs.
func MaxSegmentBytes(optionBytes int) int { return maxDatagramBytes - 20 - 20 - optionBytes }

// Check reports the static errors of a script: the reference's parse-time
// semantic errors (so trees built by code are checked too), system calls
// the reference does not know, absolute times earlier than the event
// before, and outbound packets without ports expected before any socket()
// call.
func Check(s *Script) ErrorList {
	var errs ErrorList
	report := func(p Pos, msg string) {
		errs = append(errs, &Error{File: s.File, Pos: p, Msg: msg})
	}
	for _, o := range s.Options {
		if err := o.Check(); err != nil {
			report(o.Pos, err.Error())
		}
	}
	extended := Extended(s)
	var now int64
	socket := false
	for i, ev := range s.Events {
		eventErrors(ev, report)
		switch ev.Time.Kind {
		case TimeAbsolute, TimeAbsoluteRange:
			if i > 0 && ev.Time.Usecs < now {
				report(ev.Time.Pos, fmt.Sprintf("time %s is before the previous event's time %s",
					FormatTime(Time{Usecs: ev.Time.Usecs}), FormatTime(Time{Usecs: now})))
			}
			now = ev.Time.Usecs
		case TimeRelative, TimeRelativeRange:
			now += ev.Time.Usecs
		}
		if _, isPacket := ev.Action.(*Packet); ev.Time.Anchor && !isPacket {
			report(ev.Time.Pos, "a time anchored with ^ is for inbound TCP packets (it counts from what they answer)")
		}
		switch a := ev.Action.(type) {
		case *Syscall:
			if !Syscalls[a.Name] {
				report(a.NamePos, fmt.Sprintf("unknown system call %s", shorten(a.Name)))
			}
			if a.Name == "socket" {
				socket = true
			}
		case *Packet:
			rangeErrors(a, report)
			wildErrors(a, extended, report)
			switch {
			case !ev.Time.Anchor:
			case a.Dir != Inbound || a.TCP == nil:
				report(ev.Time.Pos, "a time anchored with ^ is for inbound TCP packets (it counts from what they answer)")
			case !extended:
				report(ev.Time.Pos, fmt.Sprintf("a time anchored with ^ is a pcap2pkt extension: say --%s=%s at the top", Pcap2pktOption, Pcap2pktVersion))
			}
			// With explicit ports a packet needs no socket (the reference
			// then uses them as they are: a SYN to a closed port and the
			// kernel's RST, say).
			if a.Dir == Outbound && !socket && a.Ports == nil {
				report(a.Pos, "outbound packet expected before any socket() call (give its ports to match packets of no socket)")
			}
			if a.ICMP != nil {
				icmpErrors(a.ICMP, report)
			}
		}
	}
	errs.Sort()
	return errs
}

// wildErrors checks `*` option values: a pcap2pkt extension, for
// outbound packets only (an injected packet needs every value).
func wildErrors(pk *Packet, extended bool, report func(Pos, string)) {
	if pk.TCP == nil || pk.TCP.Options == nil {
		return
	}
	for _, o := range pk.TCP.Options.List {
		switch {
		case o.Wild == 0:
		case pk.Dir == Inbound:
			report(o.Pos, "an inbound packet's option values must be given (`*` is for outbound packets)")
		case !extended:
			report(o.Pos, fmt.Sprintf("`*` as an option value is a pcap2pkt extension: say --%s=%s at the top", Pcap2pktOption, Pcap2pktVersion))
		}
	}
}

// icmpCodes maps the ICMP type names the reference knows (for IPv4 or
// IPv6) to the code names it knows for them.
var icmpCodes = map[string][]string{
	"echo_reply": nil, "source_quench": nil, "redirect": nil, "echo_request": nil,
	"timestamp_request": nil, "timestamp_reply": nil, "information_request": nil,
	"information_reply": nil, "address_mask_request": nil, "address_mask_reply": nil,
	"packet_too_big": nil,
	"unreachable": {"net_unreachable", "host_unreachable", "protocol_unreachable",
		"port_unreachable", "frag_needed", "source_route_failed", "net_unknown",
		"host_unknown", "source_host_isolated", "net_prohibited", "host_prohibited",
		"net_unreachable_for_tos", "host_unreachable_for_tos", "packet_filtered",
		"precedence_violation", "precedence_cutoff", "no_route", "admin_prohibited",
		"not_neighbour", "address_unreachable"},
	"time_exceeded":     {"exceeded_hop_limit", "exceeded_frag_time"},
	"parameter_problem": {"header_field", "unknown_next_header", "unknown_option"},
}

// icmpErrors checks ICMP type and code names against the reference's
// tables (either family's), allowing its type_N and code_N forms.
func icmpErrors(ic *ICMP, report func(Pos, string)) {
	var n int
	codes, known := icmpCodes[ic.Type]
	if _, err := fmt.Sscanf(ic.Type, "type_%d", &n); err == nil {
		known = true
	}
	if !known {
		report(ic.Pos, fmt.Sprintf("unknown ICMP type %s", shorten(ic.Type)))
		return
	}
	if ic.Code == "" {
		return
	}
	if _, err := fmt.Sscanf(ic.Code, "code_%d", &n); err == nil {
		return
	}
	for _, c := range codes {
		if c == ic.Code {
			return
		}
	}
	report(ic.Pos, fmt.Sprintf("unknown ICMP code %s for type %s", shorten(ic.Code), ic.Type))
}

// rangeErrors checks the values a tree built by code may hold but the
// script language cannot express; the parser reports these as it reads
// the numbers.
func rangeErrors(pk *Packet, report func(Pos, string)) {
	if p := pk.Ports; p != nil && (p.Src < 0 || p.Src > 0xffff || p.Dst < 0 || p.Dst > 0xffff) {
		report(p.Pos, "port out of range")
	}
	infos := []*IPInfo{pk.IPInfo}
	for _, e := range pk.Encaps {
		if ip, ok := e.(*EncapIP); ok {
			infos = append(infos, ip.Info)
		}
	}
	for _, in := range infos {
		if in == nil {
			continue
		}
		if in.TOSValue < 0 || in.TOSValue > 0xff {
			report(in.Pos, "tos out of range for 8 bits")
		}
		if in.FlowLabel != nil && (*in.FlowLabel < 0 || *in.FlowLabel >= 1<<20) {
			report(in.Pos, "flowlabel out of range for 20 bits")
		}
	}
	if pk.UDP != nil && (pk.UDP.Len < 0 || pk.UDP.Len > 0xffff) {
		report(pk.UDP.Pos, "UDP payload size out of range")
	}
	tcp := pk.TCP
	if tcp == nil {
		return
	}
	if tcp.Len > 0xffff {
		report(tcp.Pos, "TCP payload size out of range")
	}
	if tcp.Win != nil && *tcp.Win > 0xffff {
		report(tcp.Pos, "TCP window value out of range")
	}
	if tcp.Urg != nil && *tcp.Urg > 0xffff {
		report(tcp.Pos, "urg_ptr value out of range")
	}
	if tcp.Options == nil {
		return
	}
	for _, o := range tcp.Options.List {
		switch {
		case o.Kind == OptMSS && (o.Value < 0 || o.Value > 0xffff):
			report(o.Pos, "mss value out of range")
		case o.Kind == OptWScale && (o.Value < 0 || o.Value > 0xff):
			report(o.Pos, "window scale shift count out of range")
		case o.Kind == OptSACK && len(o.SACK) == 0:
			report(o.Pos, "TCP SACK option without blocks")
		}
	}
}
