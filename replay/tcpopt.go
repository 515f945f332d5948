package replay

// This file encodes the TCP options of a script packet into wire bytes and
// decodes wire options back into the script's option list, for building
// inbound packets, comparing outbound ones and printing what the kernel
// sent.

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// encodeOptions turns a script option list into wire bytes. Like the
// reference, it does not pad: a list that is not a multiple of 4 bytes is
// an error, since the script must say where its NOPs go.
func encodeOptions(list []*parser.TCPOption) ([]byte, error) {
	var b []byte
	for _, o := range list {
		switch o.Kind {
		case parser.OptNOP:
			b = append(b, tcpwire.OptKindNOP)
		case parser.OptEOL:
			b = append(b, tcpwire.OptKindEOL)
		case parser.OptMSS:
			if o.Value < 0 || o.Value > 0xffff {
				return nil, fmt.Errorf("mss value out of range")
			}
			b = append(b, tcpwire.OptKindMSS, 4, byte(o.Value>>8), byte(o.Value))
		case parser.OptWScale:
			if o.Value < 0 || o.Value > 0xff {
				return nil, fmt.Errorf("window scale shift count out of range")
			}
			b = append(b, tcpwire.OptKindWScale, 3, byte(o.Value))
		case parser.OptSACKOK:
			b = append(b, tcpwire.OptKindSACKOK, 2)
		case parser.OptSACK:
			b = append(b, tcpwire.OptKindSACK, byte(2+8*len(o.SACK)))
			for _, blk := range o.SACK {
				b = binary.BigEndian.AppendUint32(b, blk.Left)
				b = binary.BigEndian.AppendUint32(b, blk.Right)
			}
		case parser.OptTimestamp:
			b = append(b, tcpwire.OptKindTimestamp, 10)
			b = binary.BigEndian.AppendUint32(b, o.TSVal)
			b = binary.BigEndian.AppendUint32(b, o.TSEcr)
		case parser.OptMD5:
			d, err := hex.DecodeString(padHex(o.Cookie))
			if err != nil || len(d) > 16 {
				return nil, fmt.Errorf("TCP MD5 digest is not a valid hex string of at most 16 bytes")
			}
			b = append(b, tcpwire.OptKindMD5, byte(2+len(o.Cookie)/2))
			b = append(b, d[:len(o.Cookie)/2]...)
		case parser.OptFastOpen, parser.OptFastOpenExp:
			if len(o.Cookie)%2 != 0 {
				return nil, fmt.Errorf("TCP fast open cookie has an odd number of digits")
			}
			c, err := hex.DecodeString(o.Cookie)
			if err != nil {
				return nil, fmt.Errorf("TCP fast open cookie '%s' is not a valid hex string", o.Cookie)
			}
			if o.Wild&parser.WildCookie != 0 {
				// Room for a cookie of Linux's size; the matcher takes any.
				c = make([]byte, wildCookieLen)
			}
			if o.Kind == parser.OptFastOpen {
				if len(c) > tcpwire.MaxOptionBytes-2 {
					return nil, fmt.Errorf("TCP fast open cookie of %d bytes exceeds maximum cookie length of %d bytes", len(c), tcpwire.MaxOptionBytes-2)
				}
				b = append(b, tcpwire.OptKindFastOpen, byte(2+len(c)))
			} else {
				if len(c) > tcpwire.MaxOptionBytes-4 {
					return nil, fmt.Errorf("TCP fast open cookie of %d bytes exceeds maximum cookie length of %d bytes", len(c), tcpwire.MaxOptionBytes-4)
				}
				b = append(b, tcpwire.OptKindExp, byte(4+len(c)), tcpwire.ExpFastOpen>>8, tcpwire.ExpFastOpen&0xff)
			}
			b = append(b, c...)
		case parser.OptAccECN:
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

// wildCookieLen is the room an outbound `FO *` takes in the encoded list
// (Linux's cookies are 8 bytes); the matcher accepts a cookie of any length.
const wildCookieLen = 8

// padHex pads an odd-length digest with a trailing 0, so that a short
// digest still parses (the reference tolerates short digests).
func padHex(s string) string {
	if len(s)%2 == 1 {
		return s + "0"
	}
	return s
}

// encodeAccECN builds an AccECN option: kind 172 when e0b comes first
// (fields e0b, ceb, e1b), kind 174 when e1b comes first (e1b, ceb, e0b);
// 24-bit counters, as many as the last field written.
func encodeAccECN(fields []parser.AccECNField) ([]byte, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty AccECN option")
	}
	order := []string{"e0b", "ceb", "e1b"}
	kind := byte(tcpwire.OptKindAccECN0)
	if fields[0].Name == "e1b" {
		order = []string{"e1b", "ceb", "e0b"}
		kind = tcpwire.OptKindAccECN1
	}
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

// optionsToAST converts wire options into the script's option list, for
// printing. Options the script language cannot write come out as NOPs
// with their kind in the note returned.
func optionsToAST(opts []tcpwire.Option) (*parser.TCPOptions, []string) {
	res := &parser.TCPOptions{}
	var unknown []string
	for _, o := range opts {
		var t *parser.TCPOption
		switch {
		case o.Kind == tcpwire.OptKindNOP:
			t = &parser.TCPOption{Kind: parser.OptNOP}
		case o.Kind == tcpwire.OptKindEOL:
			t = &parser.TCPOption{Kind: parser.OptEOL}
		case o.Kind == tcpwire.OptKindMSS && len(o.Data) == 2:
			t = &parser.TCPOption{Kind: parser.OptMSS, Value: int64(binary.BigEndian.Uint16(o.Data))}
		case o.Kind == tcpwire.OptKindWScale && len(o.Data) == 1:
			t = &parser.TCPOption{Kind: parser.OptWScale, Value: int64(o.Data[0])}
		case o.Kind == tcpwire.OptKindSACKOK && len(o.Data) == 0:
			t = &parser.TCPOption{Kind: parser.OptSACKOK}
		case o.Kind == tcpwire.OptKindSACK && len(o.Data)%8 == 0:
			t = &parser.TCPOption{Kind: parser.OptSACK}
			for i := 0; i < len(o.Data); i += 8 {
				t.SACK = append(t.SACK, parser.SACKBlock{Left: binary.BigEndian.Uint32(o.Data[i:]), Right: binary.BigEndian.Uint32(o.Data[i+4:])})
			}
		case o.Kind == tcpwire.OptKindTimestamp && len(o.Data) == 8:
			t = &parser.TCPOption{Kind: parser.OptTimestamp, TSVal: binary.BigEndian.Uint32(o.Data), TSEcr: binary.BigEndian.Uint32(o.Data[4:])}
		case o.Kind == tcpwire.OptKindMD5:
			t = &parser.TCPOption{Kind: parser.OptMD5, Cookie: hex.EncodeToString(o.Data)}
		case o.Kind == tcpwire.OptKindFastOpen:
			t = &parser.TCPOption{Kind: parser.OptFastOpen, Cookie: hex.EncodeToString(o.Data)}
		case o.Kind == tcpwire.OptKindExp && len(o.Data) >= 2 && binary.BigEndian.Uint16(o.Data) == tcpwire.ExpFastOpen:
			t = &parser.TCPOption{Kind: parser.OptFastOpenExp, Cookie: hex.EncodeToString(o.Data[2:])}
		case (o.Kind == tcpwire.OptKindAccECN0 || o.Kind == tcpwire.OptKindAccECN1) && len(o.Data)%3 == 0:
			order := []string{"e0b", "ceb", "e1b"}
			if o.Kind == tcpwire.OptKindAccECN1 {
				order = []string{"e1b", "ceb", "e0b"}
			}
			t = &parser.TCPOption{Kind: parser.OptAccECN}
			for i := 0; i+3 <= len(o.Data) && i/3 < 3; i += 3 {
				v := uint32(o.Data[i])<<16 | uint32(o.Data[i+1])<<8 | uint32(o.Data[i+2])
				t.AccECN = append(t.AccECN, parser.AccECNField{Name: order[i/3], Value: v})
			}
		default:
			unknown = append(unknown, fmt.Sprintf("kind %d len %d", o.Kind, o.Len))
			continue
		}
		res.List = append(res.List, t)
	}
	return res, unknown
}

// describeOption prints one wire option in script syntax.
func describeOption(o tcpwire.Option) string {
	l, unknown := optionsToAST([]tcpwire.Option{o})
	if len(unknown) > 0 {
		return unknown[0]
	}
	return strings.Trim(parser.FormatTCPOptions(l), "<>")
}
