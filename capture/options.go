package capture

import (
	"encoding/binary"
	"fmt"
)

// TCP option kinds (IANA).
const (
	OptKindEOL       = 0
	OptKindNOP       = 1
	OptKindMSS       = 2
	OptKindWScale    = 3
	OptKindSACKOK    = 4
	OptKindSACK      = 5
	OptKindTimestamp = 8
	OptKindMD5       = 19
	OptKindFastOpen  = 34
	OptKindAccECN0   = 172
	OptKindAccECN1   = 174
	OptKindExp       = 254 // experimental; magic 0xF989 is the pre-RFC TCP Fast Open option (FOEXP)
)

// expMagicFastOpen is the ExID of the experimental Fast Open option (RFC 6994).
const expMagicFastOpen = 0xF989

// SACKBlock is one SACK block [Left, Right).
type SACKBlock struct {
	Left, Right Seq
}

// TCPOption is one option in wire order. Data is the value after the kind
// and length bytes (nil for EOL and NOP); it points into the bytes the
// option list was parsed from.
type TCPOption struct {
	Kind uint8
	Len  uint8 // the length byte as on the wire (1 for EOL/NOP)
	Data []byte
}

// TCPOptions is the decoded summary of an option list: the fields the
// synthesiser and the local-side heuristics need without walking the list.
type TCPOptions struct {
	MSS         uint16
	HasMSS      bool
	WScale      uint8
	HasWScale   bool
	SACKOK      bool
	SACK        [4]SACKBlock // at most 4 fit in 40 bytes
	NumSACK     uint8
	HasTS       bool
	TSVal       uint32
	TSEcr       uint32
	FastOpen    bool // kind 34 (or FastOpenExp)
	FastOpenExp bool // experimental kind 254 with magic 0xF989
	CookieLen   uint8
	Cookie      [16]byte // TFO cookie (RFC 7413: 4..16 bytes)
	MD5         bool
	AccECN      bool
	Unknown     int  // options of kinds not listed above
	Malformed   bool // a length byte runs past the end or is < 2
}

// ParseOptions returns the options in wire order. It stops at EOL or at a
// malformed option, returning what came before and an error for the latter.
func ParseOptions(raw []byte) ([]TCPOption, error) {
	var out []TCPOption
	err := walkOptions(raw, func(o TCPOption) { out = append(out, o) })
	return out, err
}

// DecodeOptions decodes raw option bytes into a summary without allocating.
func DecodeOptions(raw []byte) TCPOptions {
	var d TCPOptions
	if err := walkOptions(raw, d.add); err != nil {
		d.Malformed = true
	}
	return d
}

func (d *TCPOptions) add(o TCPOption) {
	v := o.Data
	switch o.Kind {
	case OptKindEOL, OptKindNOP:
	case OptKindMSS:
		if len(v) == 2 {
			d.MSS, d.HasMSS = binary.BigEndian.Uint16(v), true
			return
		}
		d.Malformed = true
	case OptKindWScale:
		if len(v) == 1 {
			d.WScale, d.HasWScale = v[0], true
			return
		}
		d.Malformed = true
	case OptKindSACKOK:
		d.SACKOK = true
	case OptKindSACK:
		if len(v)%8 != 0 {
			d.Malformed = true
		}
		for i := 0; i+8 <= len(v) && int(d.NumSACK) < len(d.SACK); i += 8 {
			d.SACK[d.NumSACK] = SACKBlock{Seq(binary.BigEndian.Uint32(v[i:])), Seq(binary.BigEndian.Uint32(v[i+4:]))}
			d.NumSACK++
		}
	case OptKindTimestamp:
		if len(v) == 8 {
			d.HasTS, d.TSVal, d.TSEcr = true, binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])
			return
		}
		d.Malformed = true
	case OptKindMD5:
		d.MD5 = true
	case OptKindFastOpen:
		d.FastOpen = true
		d.CookieLen = uint8(copy(d.Cookie[:], v))
	case OptKindAccECN0, OptKindAccECN1:
		d.AccECN = true
	case OptKindExp:
		if len(v) >= 2 && binary.BigEndian.Uint16(v) == expMagicFastOpen {
			d.FastOpen, d.FastOpenExp = true, true
			d.CookieLen = uint8(copy(d.Cookie[:], v[2:]))
			return
		}
		d.Unknown++
	default:
		d.Unknown++
	}
}

func walkOptions(raw []byte, fn func(TCPOption)) error {
	for i := 0; i < len(raw); {
		kind := raw[i]
		switch kind {
		case OptKindEOL:
			fn(TCPOption{Kind: kind, Len: 1})
			return nil
		case OptKindNOP:
			fn(TCPOption{Kind: kind, Len: 1})
			i++
			continue
		}
		if i+1 >= len(raw) {
			return fmt.Errorf("tcp option kind %d at byte %d: length byte missing", kind, i)
		}
		n := int(raw[i+1])
		if n < 2 || i+n > len(raw) {
			return fmt.Errorf("tcp option kind %d at byte %d: bad length %d (%d bytes left)", kind, i, n, len(raw)-i)
		}
		fn(TCPOption{Kind: kind, Len: uint8(n), Data: raw[i+2 : i+n]})
		i += n
	}
	return nil
}
