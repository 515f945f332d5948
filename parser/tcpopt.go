package parser

// This file maps the script's TCP options to the bytes on the wire and
// back: replay encodes the options of inbound packets and prints what the
// kernel sent; synth writes captured options as script options.

import (
	"encoding/hex"
	"fmt"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// WireLen is the option's length on the wire.
func (o *TCPOption) WireLen() int {
	switch o.Kind {
	case OptNOP, OptEOL:
		return 1
	case OptMSS:
		return 4
	case OptWScale:
		return 3
	case OptSACKOK:
		return 2
	case OptSACK:
		return 2 + 8*len(o.SACK)
	case OptMD5:
		return 2 + len(o.Cookie)/2
	case OptTimestamp:
		return 10
	case OptFastOpen, OptFastOpenExp:
		n := len(o.Cookie) / 2
		if o.Wild&WildCookie != 0 {
			n = wildCookieBytes
		}
		if o.Kind == OptFastOpenExp {
			return 4 + n
		}
		return 2 + n
	case OptAccECN:
		return 2 + 3*len(o.AccECN)
	}
	return 0
}

// MaxMD5DigestBytes is the length of an MD5 signature (RFC 2385), the
// most an md5 option holds.
const MaxMD5DigestBytes = 16

// wildCookieBytes is the size taken for a cookie written `*`: Linux's
// Fast Open cookies are 8 bytes (TCP_FASTOPEN_COOKIE_SIZE); the matcher
// takes a cookie of any length.
const wildCookieBytes = 8

// WireLen is the length on the wire of the option list: 0 for none or
// for <...>.
func (o *TCPOptions) WireLen() int {
	if o == nil || o.Any {
		return 0
	}
	n := 0
	for _, opt := range o.List {
		n += opt.WireLen()
	}
	return n
}

// EncodeTCPOptions turns an option list into wire bytes. Like the
// reference, it does not pad: a list that is not a multiple of 4 bytes is
// an error, since the script must say where its NOPs go.
func EncodeTCPOptions(list []*TCPOption) ([]byte, error) {
	var b []byte
	for _, o := range list {
		switch o.Kind {
		case OptNOP:
			b = append(b, tcpwire.OptKindNOP)
		case OptEOL:
			b = append(b, tcpwire.OptKindEOL)
		case OptMSS:
			if o.Value < 0 || o.Value > 0xffff {
				return nil, fmt.Errorf("mss value out of range")
			}
			b = append(b, tcpwire.OptKindMSS, 4, byte(o.Value>>8), byte(o.Value))
		case OptWScale:
			if o.Value < 0 || o.Value > 0xff {
				return nil, fmt.Errorf("window scale shift count out of range")
			}
			b = append(b, tcpwire.OptKindWScale, 3, byte(o.Value))
		case OptSACKOK:
			b = append(b, tcpwire.OptKindSACKOK, 2)
		case OptSACK:
			b = append(b, tcpwire.OptKindSACK, byte(2+8*len(o.SACK)))
			for _, blk := range o.SACK {
				b = append(b, byte(blk.Left>>24), byte(blk.Left>>16), byte(blk.Left>>8), byte(blk.Left))
				b = append(b, byte(blk.Right>>24), byte(blk.Right>>16), byte(blk.Right>>8), byte(blk.Right))
			}
		case OptTimestamp:
			b = append(b, tcpwire.OptKindTimestamp, 10)
			b = append(b, byte(o.TSVal>>24), byte(o.TSVal>>16), byte(o.TSVal>>8), byte(o.TSVal))
			b = append(b, byte(o.TSEcr>>24), byte(o.TSEcr>>16), byte(o.TSEcr>>8), byte(o.TSEcr))
		case OptMD5:
			d, err := hex.DecodeString(padHex(o.Cookie))
			if err != nil || len(d) > MaxMD5DigestBytes {
				return nil, fmt.Errorf("TCP MD5 digest is not a valid hex string of at most 16 bytes")
			}
			b = append(b, tcpwire.OptKindMD5, byte(2+len(o.Cookie)/2))
			b = append(b, d[:len(o.Cookie)/2]...)
		case OptFastOpen, OptFastOpenExp:
			if len(o.Cookie)%2 != 0 {
				return nil, fmt.Errorf("TCP fast open cookie has an odd number of digits")
			}
			c, err := hex.DecodeString(o.Cookie)
			if err != nil {
				return nil, fmt.Errorf("TCP fast open cookie '%s' is not a valid hex string", o.Cookie)
			}
			if o.Wild&WildCookie != 0 {
				c = make([]byte, wildCookieBytes) // room for a cookie of Linux's size
			}
			// The room is what the kind and length bytes (and FOEXP's
			// magic) leave of the options' 40 bytes.
			room := tcpwire.MaxOptionBytes - (o.WireLen() - len(c))
			if len(c) > room {
				return nil, fmt.Errorf("TCP fast open cookie of %d bytes exceeds maximum cookie length of %d bytes", len(c), room)
			}
			if o.Kind == OptFastOpen {
				b = append(b, tcpwire.OptKindFastOpen, byte(2+len(c)))
			} else {
				b = append(b, tcpwire.OptKindExp, byte(4+len(c)), tcpwire.ExpFastOpen>>8, tcpwire.ExpFastOpen&0xff)
			}
			b = append(b, c...)
		case OptAccECN:
			enc, err := encodeAccECN(o.AccECN)
			if err != nil {
				return nil, err
			}
			b = append(b, enc...)
		default:
			return nil, fmt.Errorf("unsupported TCP option kind %d", o.Kind)
		}
	}
	if len(b) > tcpwire.MaxOptionBytes {
		return nil, fmt.Errorf("TCP option list too long (%d bytes)", len(b))
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("TCP options are not padded correctly to ensure TCP header is a multiple of 4 bytes: %d excess bytes", len(b)%4)
	}
	return b, nil
}

// padHex pads an odd-length digest with a trailing 0, so that a short
// digest still encodes (the reference tolerates short digests).
func padHex(s string) string {
	if len(s)%2 == 1 {
		return s + "0"
	}
	return s
}

// encodeAccECN builds an AccECN option: kind 172 when e0b comes first,
// kind 174 when e1b does; 24-bit counters in the kind's order, as many as
// the last one written.
func encodeAccECN(fields []AccECNField) ([]byte, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty AccECN option")
	}
	kind := byte(tcpwire.OptKindAccECN0)
	if fields[0].Name == "e1b" {
		kind = tcpwire.OptKindAccECN1
	}
	order := tcpwire.AccECNNames(kind)
	vals := map[string]uint32{}
	for _, f := range fields {
		if f.Value > 0xffffff {
			return nil, fmt.Errorf("TCP AccECN field value out of range")
		}
		vals[f.Name] = f.Value
	}
	n := 0
	for i, name := range order {
		if _, ok := vals[name]; ok {
			n = i + 1
		}
	}
	b := []byte{kind, byte(2 + 3*n)}
	for _, name := range order[:n] {
		v := vals[name]
		b = append(b, byte(v>>16), byte(v>>8), byte(v))
	}
	return b, nil
}

// TCPOptionFromWire returns the script form of a wire option; false for
// an option the script language cannot write: an unknown kind, an MSS,
// window scale or timestamp option of the wrong length, and (the parser,
// as the reference's, wants at least one block, a 1-16 byte digest, one
// counter) a SACK option without a whole block, an MD5 option without a
// digest or with one over 16 bytes, an AccECN option without a whole
// counter. SACK blocks keep their absolute edges; a SACK option keeps its
// whole blocks and an AccECN option its whole counters.
func TCPOptionFromWire(o tcpwire.Option) (TCPOption, bool) {
	switch o.Kind {
	case tcpwire.OptKindNOP:
		return TCPOption{Kind: OptNOP}, true
	case tcpwire.OptKindEOL:
		return TCPOption{Kind: OptEOL}, true
	case tcpwire.OptKindMSS:
		v, ok := o.MSS()
		return TCPOption{Kind: OptMSS, Value: int64(v)}, ok
	case tcpwire.OptKindWScale:
		v, ok := o.WScale()
		return TCPOption{Kind: OptWScale, Value: int64(v)}, ok
	case tcpwire.OptKindSACKOK:
		return TCPOption{Kind: OptSACKOK}, true
	case tcpwire.OptKindSACK:
		t := TCPOption{Kind: OptSACK}
		for i := range o.NumSACK() {
			blk := o.SACKBlock(i)
			t.SACK = append(t.SACK, SACKBlock{Left: uint32(blk.Left), Right: uint32(blk.Right)})
		}
		return t, len(t.SACK) > 0
	case tcpwire.OptKindTimestamp:
		val, ecr, ok := o.Timestamp()
		return TCPOption{Kind: OptTimestamp, TSVal: val, TSEcr: ecr}, ok
	case tcpwire.OptKindMD5:
		return TCPOption{Kind: OptMD5, Cookie: hex.EncodeToString(o.Data)}, len(o.Data) > 0 && len(o.Data) <= MaxMD5DigestBytes
	case tcpwire.OptKindAccECN0, tcpwire.OptKindAccECN1:
		t := TCPOption{Kind: OptAccECN}
		for i, name := range tcpwire.AccECNNames(o.Kind) {
			v, ok := o.AccECNCounter(i)
			if !ok {
				break
			}
			t.AccECN = append(t.AccECN, AccECNField{Name: name, Value: v})
		}
		return t, len(t.AccECN) > 0
	}
	if c, exp, ok := o.FastOpenCookie(); ok {
		if exp {
			return TCPOption{Kind: OptFastOpenExp, Cookie: hex.EncodeToString(c)}, true
		}
		return TCPOption{Kind: OptFastOpen, Cookie: hex.EncodeToString(c)}, true
	}
	return TCPOption{}, false
}
