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

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// TCP option kinds on the wire.
const (
	optKindEOL       = 0
	optKindNOP       = 1
	optKindMSS       = 2
	optKindWScale    = 3
	optKindSACKOK    = 4
	optKindSACK      = 5
	optKindTimestamp = 8
	optKindMD5       = 19
	optKindFastOpen  = 34
	optKindAccECN0   = 172
	optKindAccECN1   = 174
	optKindExp       = 254

	fastOpenExpMagic = 0xf989
	maxTCPOptionLen  = 40
)

// wireOption is one decoded option: its kind and its bytes after kind and
// length (nil for EOL and NOP).
type wireOption struct {
	kind byte
	data []byte
	len  int // the length byte (1 for EOL and NOP)
}

// encodeOptions turns a script option list into wire bytes. Like the
// reference, it does not pad: a list that is not a multiple of 4 bytes is
// an error, since the script must say where its NOPs go.
func encodeOptions(list []*parser.TCPOption) ([]byte, error) {
	var b []byte
	for _, o := range list {
		switch o.Kind {
		case parser.OptNOP:
			b = append(b, optKindNOP)
		case parser.OptEOL:
			b = append(b, optKindEOL)
		case parser.OptMSS:
			if o.Value < 0 || o.Value > 0xffff {
				return nil, fmt.Errorf("mss value out of range")
			}
			b = append(b, optKindMSS, 4, byte(o.Value>>8), byte(o.Value))
		case parser.OptWScale:
			if o.Value < 0 || o.Value > 0xff {
				return nil, fmt.Errorf("window scale shift count out of range")
			}
			b = append(b, optKindWScale, 3, byte(o.Value))
		case parser.OptSACKOK:
			b = append(b, optKindSACKOK, 2)
		case parser.OptSACK:
			b = append(b, optKindSACK, byte(2+8*len(o.SACK)))
			for _, blk := range o.SACK {
				b = binary.BigEndian.AppendUint32(b, blk.Left)
				b = binary.BigEndian.AppendUint32(b, blk.Right)
			}
		case parser.OptTimestamp:
			b = append(b, optKindTimestamp, 10)
			b = binary.BigEndian.AppendUint32(b, o.TSVal)
			b = binary.BigEndian.AppendUint32(b, o.TSEcr)
		case parser.OptMD5:
			d, err := hex.DecodeString(padHex(o.Cookie))
			if err != nil || len(d) > 16 {
				return nil, fmt.Errorf("TCP MD5 digest is not a valid hex string of at most 16 bytes")
			}
			b = append(b, optKindMD5, byte(2+len(o.Cookie)/2))
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
				if len(c) > maxTCPOptionLen-2 {
					return nil, fmt.Errorf("TCP fast open cookie of %d bytes exceeds maximum cookie length of %d bytes", len(c), maxTCPOptionLen-2)
				}
				b = append(b, optKindFastOpen, byte(2+len(c)))
			} else {
				if len(c) > maxTCPOptionLen-4 {
					return nil, fmt.Errorf("TCP fast open cookie of %d bytes exceeds maximum cookie length of %d bytes", len(c), maxTCPOptionLen-4)
				}
				b = append(b, optKindExp, byte(4+len(c)), fastOpenExpMagic>>8, fastOpenExpMagic&0xff)
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
	if len(b) > maxTCPOptionLen {
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
	kind := byte(optKindAccECN0)
	if fields[0].Name == "e1b" {
		order = []string{"e1b", "ceb", "e0b"}
		kind = optKindAccECN1
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

// decodeOptions splits wire options. A malformed list is an error.
func decodeOptions(b []byte) ([]wireOption, error) {
	var out []wireOption
	for i := 0; i < len(b); {
		k := b[i]
		if k == optKindEOL || k == optKindNOP {
			out = append(out, wireOption{kind: k, len: 1})
			i++
			continue
		}
		if i+1 >= len(b) {
			return out, fmt.Errorf("TCP option %d truncated", k)
		}
		l := int(b[i+1])
		if l < 2 || i+l > len(b) {
			return out, fmt.Errorf("TCP option %d has bad length %d", k, l)
		}
		out = append(out, wireOption{kind: k, data: b[i+2 : i+l], len: l})
		i += l
	}
	return out, nil
}

// optionsToAST converts wire options into the script's option list, for
// printing. Options the script language cannot write come out as NOPs
// with their kind in the note returned.
func optionsToAST(opts []wireOption) (*parser.TCPOptions, []string) {
	res := &parser.TCPOptions{}
	var unknown []string
	for _, o := range opts {
		var t *parser.TCPOption
		switch {
		case o.kind == optKindNOP:
			t = &parser.TCPOption{Kind: parser.OptNOP}
		case o.kind == optKindEOL:
			t = &parser.TCPOption{Kind: parser.OptEOL}
		case o.kind == optKindMSS && len(o.data) == 2:
			t = &parser.TCPOption{Kind: parser.OptMSS, Value: int64(binary.BigEndian.Uint16(o.data))}
		case o.kind == optKindWScale && len(o.data) == 1:
			t = &parser.TCPOption{Kind: parser.OptWScale, Value: int64(o.data[0])}
		case o.kind == optKindSACKOK && len(o.data) == 0:
			t = &parser.TCPOption{Kind: parser.OptSACKOK}
		case o.kind == optKindSACK && len(o.data)%8 == 0:
			t = &parser.TCPOption{Kind: parser.OptSACK}
			for i := 0; i < len(o.data); i += 8 {
				t.SACK = append(t.SACK, parser.SACKBlock{Left: binary.BigEndian.Uint32(o.data[i:]), Right: binary.BigEndian.Uint32(o.data[i+4:])})
			}
		case o.kind == optKindTimestamp && len(o.data) == 8:
			t = &parser.TCPOption{Kind: parser.OptTimestamp, TSVal: binary.BigEndian.Uint32(o.data), TSEcr: binary.BigEndian.Uint32(o.data[4:])}
		case o.kind == optKindMD5:
			t = &parser.TCPOption{Kind: parser.OptMD5, Cookie: hex.EncodeToString(o.data)}
		case o.kind == optKindFastOpen:
			t = &parser.TCPOption{Kind: parser.OptFastOpen, Cookie: hex.EncodeToString(o.data)}
		case o.kind == optKindExp && len(o.data) >= 2 && binary.BigEndian.Uint16(o.data) == fastOpenExpMagic:
			t = &parser.TCPOption{Kind: parser.OptFastOpenExp, Cookie: hex.EncodeToString(o.data[2:])}
		case (o.kind == optKindAccECN0 || o.kind == optKindAccECN1) && len(o.data)%3 == 0:
			order := []string{"e0b", "ceb", "e1b"}
			if o.kind == optKindAccECN1 {
				order = []string{"e1b", "ceb", "e0b"}
			}
			t = &parser.TCPOption{Kind: parser.OptAccECN}
			for i := 0; i+3 <= len(o.data) && i/3 < 3; i += 3 {
				v := uint32(o.data[i])<<16 | uint32(o.data[i+1])<<8 | uint32(o.data[i+2])
				t.AccECN = append(t.AccECN, parser.AccECNField{Name: order[i/3], Value: v})
			}
		default:
			unknown = append(unknown, fmt.Sprintf("kind %d len %d", o.kind, o.len))
			continue
		}
		res.List = append(res.List, t)
	}
	return res, unknown
}

// describeOption prints one wire option in script syntax.
func describeOption(o wireOption) string {
	l, unknown := optionsToAST([]wireOption{o})
	if len(unknown) > 0 {
		return unknown[0]
	}
	return strings.Trim(parser.FormatTCPOptions(l), "<>")
}
