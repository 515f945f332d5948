package parser

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// This file reads packet lines: the IP, TCP, UDP and ICMP headers, TCP
// options, and the encapsulations (MPLS, GRE) written before them.

func (p *parser) parseMPLSStack() []MPLSEntry {
	var stack []MPLSEntry
	for p.tok.is('(') {
		e := MPLSEntry{Pos: p.tok.pos}
		p.next()
		p.expectKw("label", `"label"`)
		var lpos, tpos, ttlpos Pos
		e.Label, lpos = p.intTok("MPLS label")
		p.expectChar(',', "','")
		p.expectKw("tc", `"tc"`)
		e.TC, tpos = p.intTok("MPLS traffic class")
		p.expectChar(',', "','")
		if p.tok.is('[') {
			p.next()
			if p.tok.kind != tWord || p.tok.text != "S" {
				p.fail(p.tok.pos, "expected [S] for MPLS label stack bottom")
			}
			p.next()
			p.expectChar(']', "']'")
			p.expectChar(',', "','")
			e.Bottom = true
		}
		p.expectKw("ttl", `"ttl"`)
		e.TTL, ttlpos = p.intTok("MPLS ttl")
		p.expectChar(')', "')'")
		if e.Label < 0 || e.Label >= 1<<20 {
			p.semantic(lpos, "MPLS label out of range for 20 bits")
		}
		if e.TC < 0 || e.TC >= 1<<3 {
			p.semantic(tpos, "MPLS traffic_class out of range for 3 bits")
		}
		if e.TTL < 0 || e.TTL >= 1<<8 {
			p.semantic(ttlpos, "MPLS ttl out of range for 8 bits")
		}
		if len(stack) == mplsMaxEntries {
			p.semantic(e.Pos, "too many MPLS labels")
		}
		stack = append(stack, e)
	}
	return stack
}

// mplsMaxEntries is the reference's limit on an MPLS label stack.
const mplsMaxEntries = 6

func (p *parser) optComma(h *GREHeader) {
	if p.tok.is(',') {
		h.Commas = true
		p.next()
	}
}

func (p *parser) parseGREHeader() *GREHeader {
	h := &GREHeader{Pos: p.tok.pos}
	p.expectKw("flags", `"flags"`)
	if p.tok.is('[') {
		p.next()
		for {
			switch {
			case p.tok.isKw("none"):
				h.FlagNames = append(h.FlagNames, "none")
				p.next()
			case p.tok.isKw("checksum") || p.tok.isKw("key") || p.tok.isKw("sequence#"):
				name := p.tok.text
				p.next()
				if !p.tok.isKw("present") {
					p.expected(fmt.Sprintf(`"present" after %q`, name))
				}
				p.next()
				h.FlagNames = append(h.FlagNames, name+" present")
			default:
				p.expected("GRE flag (none, checksum present, key present or sequence# present)")
			}
			if !p.tok.is(',') {
				break
			}
			p.next()
		}
		p.expectChar(']', "',' or ']' after GRE flags")
	} else {
		h.FlagsValue = p.anyInt("'[' or an integer after \"flags\"")
	}
	p.optComma(h)
	p.expectKw("sum", `"sum"`)
	h.Sum = p.anyInt(`checksum after "sum"`)
	p.optComma(h)
	p.expectKw("off", `"off"`)
	h.Off = p.anyInt(`offset after "off"`)
	p.optComma(h)
	p.expectKw("key", `"key"`)
	if p.tok.is('=') {
		h.KeyEquals = true
		p.next()
	}
	h.Key = p.anyInt(`key after "key"`)
	p.optComma(h)
	p.expectKw("seq", `"seq"`)
	h.Seq = p.anyInt(`sequence number after "seq"`)
	return h
}

func (p *parser) parsePacket() *Packet {
	pk := &Packet{Pos: p.tok.pos, Dir: Inbound}
	if p.tok.is('>') {
		pk.Dir = Outbound
	}
	p.next()
	for {
		t := p.tok
		switch {
		case t.isKw("ipv4") || t.isKw("ipv6"):
			p.next()
			e := &EncapIP{Pos: t.pos, Version: 4}
			want := tIPv4
			if t.text == "ipv6" {
				e.Version, want = 6, tIPv6
			}
			e.Info = p.parseOptIPInfo()
			if p.tok.kind != want {
				p.expected(fmt.Sprintf("source address after %s", shorten(t.raw)))
			}
			e.Src = p.tok.text
			p.next()
			p.expectChar('>', "'>' between the addresses")
			if p.tok.kind != want {
				p.expected("destination address")
			}
			e.Dst = p.tok.text
			p.next()
			p.expectChar(':', "':' after the encapsulating addresses")
			pk.Encaps = append(pk.Encaps, e)
			continue
		case t.isKw("gre"):
			p.next()
			e := &EncapGRE{Pos: t.pos}
			if !p.tok.is(':') {
				comma := p.tok.is(',')
				if comma {
					p.next()
				}
				e.Header = p.parseGREHeader()
				e.Header.Commas = e.Header.Commas || comma
			}
			p.expectChar(':', "':' after the GRE header")
			pk.Encaps = append(pk.Encaps, e)
			continue
		case t.isKw("mpls"):
			p.next()
			e := &EncapMPLS{Pos: t.pos, Stack: p.parseMPLSStack()}
			p.expectChar(':', "'(' or ':' after the MPLS label stack")
			pk.Encaps = append(pk.Encaps, e)
			continue
		}
		break
	}
	pk.IPInfo = p.parseOptIPInfo()
	switch {
	case p.tok.isKw("udp"):
		pk.UDP = p.parseUDP(pk)
	case p.tok.isKw("icmp"):
		pk.ICMP = p.parseICMP()
	default:
		if p.tok.isKw("encap") {
			ps := &PSPInfo{Pos: p.tok.pos}
			p.next()
			p.expectKw("psp", `"psp" after "encap"`)
			p.expectKw("spi", `"spi"`)
			ps.SPI = p.anyInt(`SPI after "spi"`)
			pk.PSP = ps
		}
		pk.Ports = p.parseOptPorts()
		pk.TCP = p.parseTCP()
	}
	return pk
}

func (p *parser) parseOptPorts() *Ports {
	if p.tok.kind != tInt || !p.peek(1).is('>') {
		return nil
	}
	ports := &Ports{Pos: p.tok.pos}
	var spos, dpos Pos
	ports.Src, spos = p.intTok("source port")
	p.next()
	ports.Dst, dpos = p.intTok("destination port after '>'")
	if ports.Src < 0 || ports.Src > math.MaxUint16 {
		p.semantic(spos, "src port out of range")
	}
	if ports.Dst < 0 || ports.Dst > math.MaxUint16 {
		p.semantic(dpos, "dst port out of range")
	}
	return ports
}

func (p *parser) parseOptIPInfo() *IPInfo {
	var closer byte
	switch {
	case p.tok.is('('):
		closer = ')'
	case p.tok.is('['):
		closer = ']'
	default:
		return nil
	}
	info := &IPInfo{Pos: p.tok.pos, Paren: closer == ')'}
	p.next()
	t := p.tok
	switch {
	case t.isKw("noecn") || t.isKw("ect0") || t.isKw("ect1") || t.isKw("ce") || t.isKw("ect01"):
		info.TOS = t.text
		p.next()
	case t.isKw("tos"):
		p.next()
		if p.tok.kind != tHex {
			p.expected(`hex value after "tos"`)
		}
		info.TOS = "tos"
		info.TOSValue = p.intValue(p.tok)
		if info.TOSValue < 0 || info.TOSValue > math.MaxUint8 {
			p.semantic(p.tok.pos, "tos out of range for 8 bits")
		}
		p.next()
	case t.isKw("ttl"):
		p.next()
		v, _ := p.intTok(`TTL after "ttl"`)
		info.TTL = &v
		if !p.tok.is(closer) {
			p.expected(fmt.Sprintf("'%c'", closer))
		}
		p.next()
		return info
	case t.isKw("flowlabel"):
	default:
		p.expected("ECN codepoint, tos, flowlabel or ttl")
	}
	if info.TOS != "" && p.tok.is(',') {
		p.next()
		if !p.tok.isKw("flowlabel") {
			p.expected(`"flowlabel"`)
		}
	}
	if p.tok.isKw("flowlabel") {
		p.next()
		if p.tok.kind != tHex {
			p.expected(`hex value after "flowlabel"`)
		}
		v := p.intValue(p.tok)
		if v < 0 || v >= 1<<20 {
			p.semantic(p.tok.pos, "flowlabel out of range for 20 bits")
		}
		info.FlowLabel = &v
		p.next()
	}
	if !p.tok.is(closer) {
		p.expected(fmt.Sprintf("'%c' after the IP information", closer))
	}
	p.next()
	return info
}

func (p *parser) parseUDP(pk *Packet) *UDP {
	u := &UDP{Pos: p.tok.pos}
	p.next()
	pk.Ports = p.parseOptPorts()
	p.expectChar('(', `'(' and the payload size after "udp"`)
	var lpos Pos
	u.Len, lpos = p.intTok("UDP payload size")
	p.expectChar(')', "')'")
	if u.Len < 0 || u.Len > math.MaxUint16 {
		p.semantic(lpos, "UDP payload size out of range")
	}
	return u
}

func (p *parser) parseICMP() *ICMP {
	ic := &ICMP{Pos: p.tok.pos}
	p.next()
	if p.tok.kind != tWord {
		p.expected(`ICMP type after "icmp"`)
	}
	ic.Type = p.tok.text
	p.next()
	if p.tok.kind == tWord {
		ic.Code, ic.CodeSym = p.tok.text, p.tok.sym()
		p.next()
	}
	if p.tok.isKw("mtu") {
		p.next()
		v, _ := p.intTok(`MTU after "mtu"`)
		ic.MTU = &v
	}
	if p.tok.isKw("id") {
		p.next()
		v, _ := p.intTok(`id after "id"`)
		ic.ID = &v
	}
	if p.tok.is('[') {
		e := &ICMPEchoed{Pos: p.tok.pos}
		p.next()
		switch {
		case p.tok.isKw("udp") || p.tok.isKw("raw"):
			e.Proto = p.tok.text
			p.next()
			p.expectChar('(', "'(' and the payload size")
			e.Len, _ = p.intTok("payload size")
			p.expectChar(')', "')'")
		default:
			e.Proto = "tcp"
			var l uint32
			e.Seq, l = p.parseSeq("")
			e.Len = int64(l)
		}
		p.expectChar(']', "']' after the echoed packet")
		ic.Echoed = e
	}
	return ic
}

// parseSeq reads `start:end(len)`. pending is a start already read by the
// flags (the ".11:11(0)" form); "" if none.
func (p *parser) parseSeq(pending string) (uint32, uint32) {
	var start int64
	var spos Pos
	if pending != "" {
		spos = p.tok.pos
		v, err := strconv.ParseInt(pending, 10, 64)
		if err != nil {
			p.semantic(spos, "integer %s out of range", pending)
		}
		start = v
	} else {
		start, spos = p.intTok("sequence number start:end(length)")
	}
	p.expectChar(':', "':' after the start sequence number")
	end, epos := p.intTok("end sequence number after ':'")
	p.expectChar('(', "'(' and the payload length after the end sequence number")
	n, npos := p.intTok("payload length")
	p.expectChar(')', "')' after the payload length")
	ok := true
	if start < 0 || start > math.MaxUint32 {
		p.semantic(spos, "TCP start sequence number out of range")
		ok = false
	}
	if end < 0 || end > math.MaxUint32 {
		p.semantic(epos, "TCP end sequence number out of range")
		ok = false
	}
	if n < 0 || n > math.MaxUint16 {
		p.semantic(npos, "TCP payload size out of range")
		ok = false
	}
	if ok && end != start+n {
		p.semantic(spos, "inconsistent TCP sequence numbers and payload size: %d + %d != %d", start, n, end)
	}
	return uint32(start), uint32(n)
}

// intIn reads an integer; one outside [0, limit] is reported as
// "<name> out of range" and the parse goes on.
func (p *parser) intIn(what string, limit int64, name string) int64 {
	v, pos := p.intTok(what)
	if v < 0 || v > limit {
		p.semantic(pos, "%s out of range", name)
	}
	return v
}

// headerField reads the number after a TCP header keyword (ack, win, urg).
func (p *parser) headerField(what string, limit int64, name string) *uint32 {
	p.next()
	u := uint32(p.intIn(what, limit, name))
	return &u
}

func (p *parser) parseTCP() *TCP {
	tcp := &TCP{Pos: p.tok.pos}
	pending := ""
	// floatFlags handles a FLOAT in the flags: the reference's AccECN form
	// (".5": ACK plus an ACE value), or the seed's ".11:11(0)" where the
	// ACK flag touches the sequence number.
	floatFlags := func() {
		f := p.tok.text
		if strings.HasPrefix(f, ".") && p.peek(1).is(':') {
			tcp.Flags += "."
			pending = f[1:]
		} else {
			tcp.Flags += f
		}
		p.next()
	}
	switch {
	case p.tok.kind == tWord:
		tcp.Flags = p.tok.text
		p.next()
		if p.tok.is('.') {
			tcp.Flags += "."
			p.next()
		} else if p.tok.kind == tFloat {
			floatFlags()
		}
	case p.tok.kind == tFloat:
		floatFlags()
	case p.tok.is('.'):
		tcp.Flags = "."
		p.next()
	case p.tok.is('-'):
		tcp.Flags = "-"
		p.next()
	default:
		p.expected("TCP flags, udp or icmp")
	}
	tcp.Seq, tcp.Len = p.parseSeq(pending)
	if p.tok.isKw("ack") {
		tcp.Ack = p.headerField(`ack number after "ack"`, math.MaxUint32, "TCP ack sequence number")
	}
	if p.tok.isKw("win") {
		tcp.Win = p.headerField(`window after "win"`, math.MaxUint16, "TCP window value")
	}
	if p.tok.isKw("urg") {
		tcp.Urg = p.headerField(`urgent pointer after "urg"`, math.MaxUint16, "urg_ptr value")
	}
	if p.tok.is('<') {
		tcp.Options = p.parseTCPOptions()
	}
	return tcp
}

func (p *parser) parseTCPOptions() *TCPOptions {
	opts := &TCPOptions{Pos: p.tok.pos}
	p.next()
	if p.tok.kind == tEllipsis {
		p.next()
		opts.Any = true
		p.expectChar('>', "'>' after '<...'")
		return opts
	}
	for {
		opts.List = append(opts.List, p.parseTCPOption())
		if !p.tok.is(',') {
			break
		}
		p.next()
	}
	p.expectChar('>', "',' or '>' in the TCP options")
	return opts
}

// hexBlob reads a cookie or digest: a word or an integer, as written; sym
// is the -D symbol written for it.
func (p *parser) hexBlob() (text string, pos Pos, sym string, ok bool) {
	// A one-byte blob can spell a keyword ("fd", "ce"): it is hex here.
	if p.tok.kind != tWord && p.tok.kind != tInt && !(p.tok.kind == tKeyword && isHexString(p.tok.text)) {
		return "", Pos{}, "", false
	}
	t := p.tok
	p.next()
	if !t.defined && p.undefined && t.kind == tWord && !isHexString(t.text) {
		// An undefined symbol such as TFO_COOKIE: no value.
		return "", t.pos, t.text, true
	}
	return t.text, t.pos, t.sym(), true
}

// optionInt reads the value of a TCP option (an MSS, a shift count) and
// the -D symbol written for it; an undefined symbol, where allowed, has
// no value.
func (p *parser) optionInt(what string, limit int64, name string) (int64, string) {
	if p.tok.kind == tWord && p.undefined {
		sym := p.tok.text
		p.next()
		return 0, sym
	}
	if p.tok.kind == tWord {
		p.fail(p.tok.pos, "%s is not defined: expected %s (define it with -D %s=VALUE)", p.tok.text, what, p.tok.text)
	}
	sym := p.tok.sym()
	return p.intIn(what, limit, name), sym
}

func (p *parser) parseTCPOption() *TCPOption {
	t := p.tok
	o := &TCPOption{Pos: t.pos}
	if t.kind != tKeyword {
		p.expected("TCP option")
	}
	p.next()
	kind := slices.Index(optionNames[:], t.text)
	if kind < 0 {
		p.fail(t.pos, "expected TCP option, found %s", t)
	}
	o.Kind = TCPOptionKind(kind)
	switch o.Kind {
	case OptMSS:
		if !p.wild(o, WildValue) {
			o.Value, o.Sym = p.optionInt(`MSS value after "mss"`, math.MaxUint16, "mss value")
		}
	case OptWScale:
		if !p.wild(o, WildValue) {
			o.Value, o.Sym = p.optionInt(`shift count after "wscale"`, math.MaxUint8, "window scale shift count")
		}
	case OptSACK:
		for p.tok.kind == tInt || len(o.SACK) == 0 {
			l, lpos := p.intTok("SACK block left:right")
			p.expectChar(':', "':' in the SACK block")
			r, rpos := p.intTok("SACK block right edge")
			if l < 0 || l > math.MaxUint32 {
				p.semantic(lpos, "TCP SACK left sequence number out of range")
			}
			if r < 0 || r > math.MaxUint32 {
				p.semantic(rpos, "TCP SACK right sequence number out of range")
			}
			o.SACK = append(o.SACK, SACKBlock{Left: uint32(l), Right: uint32(r)})
		}
	case OptMD5:
		d, pos, sym, ok := p.hexBlob()
		if !ok {
			p.expected(`digest after "md5"`)
		}
		o.Cookie, o.Sym = d, sym
		switch {
		case d == "":
			// An undefined symbol.
		case len(d)/2 > MaxMD5DigestBytes:
			p.semantic(pos, "TCP MD5 digest longer than 16 bytes")
		case !isHexString(d):
			p.semantic(pos, "TCP MD5 digest is not a valid hex string")
		}
	case OptTimestamp:
		p.expectKw("val", `"val" after "TS"`)
		if !p.wild(o, WildTSVal) {
			v, vpos := p.intTok(`timestamp value after "val"`)
			if v < 0 || v > math.MaxUint32 {
				p.semantic(vpos, "ts val out of range")
			}
			o.TSVal = uint32(v)
		}
		p.expectKw("ecr", `"ecr"`)
		if !p.wild(o, WildTSEcr) {
			e, epos := p.intTok(`echo reply after "ecr"`)
			if e < 0 || e > math.MaxUint32 {
				p.semantic(epos, "ecr val out of range")
			}
			o.TSEcr = uint32(e)
		}
	case OptFastOpen, OptFastOpenExp:
		limit := tcpwire.MaxOptionBytes - 2
		if o.Kind == OptFastOpenExp {
			limit = tcpwire.MaxOptionBytes - 4
		}
		if p.wild(o, WildCookie) {
			break
		}
		if c, pos, sym, ok := p.hexBlob(); ok {
			o.Cookie, o.Sym = c, sym
			switch {
			case c == "":
				// An undefined symbol.
			case len(c)%2 != 0:
				p.semantic(pos, "TCP fast open cookie has an odd number of digits")
			case len(c)/2 > limit:
				p.semantic(pos, "TCP fast open cookie of %d bytes exceeds maximum cookie length of %d bytes", len(c)/2, limit)
			case !isHexString(c):
				p.semantic(pos, "TCP fast open cookie '%s' is not a valid hex string", c)
			}
		}
	case OptAccECN:
		o.AccECN = p.parseAccECN()
	}
	return o
}

// wild consumes a `*` written for an option's value (a pcap2pkt extension,
// see OptWild) and marks it in o.
func (p *parser) wild(o *TCPOption, w OptWild) bool {
	if !p.tok.is('*') {
		return false
	}
	p.next()
	o.Wild |= w
	return true
}

func isHexString(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// parseAccECN reads the fields of an AccECN option in one of the orders
// the reference accepts: e0b [ceb [e1b]] or e1b [ceb [e0b]].
func (p *parser) parseAccECN() []AccECNField {
	var first, last string
	switch {
	case p.tok.isKw("e0b"):
		first, last = "e0b", "e1b"
	case p.tok.isKw("e1b"):
		first, last = "e1b", "e0b"
	default:
		p.expected(`"e0b" or "e1b" after "ECN"`)
	}
	fields := []AccECNField{p.accECNField(first)}
	if p.tok.isKw("ceb") {
		fields = append(fields, p.accECNField("ceb"))
		if p.tok.isKw(last) {
			fields = append(fields, p.accECNField(last))
		}
	}
	return fields
}

func (p *parser) accECNField(name string) AccECNField {
	p.next()
	if p.tok.kind != tInt {
		p.expected(fmt.Sprintf("counter after %q", name))
	}
	v, pos := p.intTok("")
	if v < 0 || v >= 1<<24 {
		p.semantic(pos, "TCP AccECN field value out of range")
	}
	return AccECNField{Name: name, Value: uint32(v)}
}
