package tcpwire

import (
	"encoding/binary"
	"fmt"
	"iter"
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
	OptKindAccECN0   = 172 // AccECN counters in the order e0b, ceb, e1b
	OptKindAccECN1   = 174 // AccECN counters in the order e1b, ceb, e0b
	OptKindExp       = 254 // experimental; with ExpFastOpen, the pre-RFC TCP Fast Open option (FOEXP)
)

// ExpFastOpen is the ExID of the experimental Fast Open option (RFC 6994).
const ExpFastOpen = 0xF989

// MaxOptionBytes is the room for options in a TCP header.
const MaxOptionBytes = 40

// SACKBlock is one SACK block [Left, Right).
type SACKBlock struct {
	Left, Right Seq
}

// Option is one option in wire order. Data is the value after the kind
// and length bytes (nil for EOL and NOP); it points into the bytes the
// option list was read from, so writing it rewrites them.
type Option struct {
	Kind uint8
	Len  uint8 // the length byte as on the wire (1 for EOL/NOP)
	Data []byte
}

// EachOption yields the options of raw in wire order, up to and including
// an EOL (what follows it is padding). A malformed option (a length byte
// missing, below 2 or past the end) ends the walk with an error.
func EachOption(raw []byte) iter.Seq2[Option, error] {
	return func(yield func(Option, error) bool) {
		for i := 0; i < len(raw); {
			kind := raw[i]
			switch kind {
			case OptKindEOL:
				yield(Option{Kind: kind, Len: 1}, nil)
				return
			case OptKindNOP:
				if !yield(Option{Kind: kind, Len: 1}, nil) {
					return
				}
				i++
				continue
			}
			if i+1 >= len(raw) {
				yield(Option{}, fmt.Errorf("tcp option kind %d at byte %d: length byte missing", kind, i))
				return
			}
			n := int(raw[i+1])
			if n < 2 || i+n > len(raw) {
				yield(Option{}, fmt.Errorf("tcp option kind %d at byte %d: bad length %d (%d bytes left)", kind, i, n, len(raw)-i))
				return
			}
			if !yield(Option{Kind: kind, Len: uint8(n), Data: raw[i+2 : i+n]}, nil) {
				return
			}
			i += n
		}
	}
}

// ParseOptions returns the options in wire order. It stops at EOL or at a
// malformed option, returning what came before and an error for the latter.
func ParseOptions(raw []byte) ([]Option, error) {
	var out []Option
	for o, err := range EachOption(raw) {
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Options is the decoded summary of an option list: the fields the
// synthesiser and the local-side heuristics need without walking the list.
type Options struct {
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
	Malformed   bool // a length byte runs past the end or is < 2, or a known option has the wrong length
}

// DecodeOptions decodes raw option bytes into a summary without allocating.
func DecodeOptions(raw []byte) Options {
	var d Options
	for o, err := range EachOption(raw) {
		if err != nil {
			d.Malformed = true
			break
		}
		d.add(o)
	}
	return d
}

func (d *Options) add(o Option) {
	switch o.Kind {
	case OptKindEOL, OptKindNOP:
	case OptKindMSS:
		if v, ok := o.MSS(); ok {
			d.MSS, d.HasMSS = v, true
		} else {
			d.Malformed = true
		}
	case OptKindWScale:
		if v, ok := o.WScale(); ok {
			d.WScale, d.HasWScale = v, true
		} else {
			d.Malformed = true
		}
	case OptKindSACKOK:
		d.SACKOK = true
	case OptKindSACK:
		if len(o.Data)%8 != 0 {
			d.Malformed = true
		}
		for i := 0; i < o.NumSACK() && int(d.NumSACK) < len(d.SACK); i++ {
			d.SACK[d.NumSACK] = o.SACKBlock(i)
			d.NumSACK++
		}
	case OptKindTimestamp:
		if val, ecr, ok := o.Timestamp(); ok {
			d.TSVal, d.TSEcr, d.HasTS = val, ecr, true
		} else {
			d.Malformed = true
		}
	case OptKindMD5:
		d.MD5 = true
	case OptKindFastOpen, OptKindExp:
		c, exp, ok := o.FastOpenCookie()
		if !ok {
			d.Unknown++
			return
		}
		d.FastOpen = true
		d.FastOpenExp = d.FastOpenExp || exp
		d.CookieLen = uint8(copy(d.Cookie[:], c))
	case OptKindAccECN0, OptKindAccECN1:
		d.AccECN = true
	default:
		d.Unknown++
	}
}

// MSS returns the value of an MSS option; false if o is not one of the
// right length.
func (o Option) MSS() (uint16, bool) {
	if o.Kind != OptKindMSS || len(o.Data) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(o.Data), true
}

// WScale returns the shift count of a window scale option; false if o is
// not one of the right length.
func (o Option) WScale() (uint8, bool) {
	if o.Kind != OptKindWScale || len(o.Data) != 1 {
		return 0, false
	}
	return o.Data[0], true
}

// Timestamp returns the val and ecr of a timestamp option; false if o is
// not one of the right length.
func (o Option) Timestamp() (val, ecr uint32, ok bool) {
	if o.Kind != OptKindTimestamp || len(o.Data) != 8 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(o.Data), binary.BigEndian.Uint32(o.Data[4:]), true
}

// NumSACK is the number of whole blocks in a SACK option (0 for another
// kind).
func (o Option) NumSACK() int {
	if o.Kind != OptKindSACK {
		return 0
	}
	return len(o.Data) / 8
}

// SACKBlock returns block i (< NumSACK) of a SACK option.
func (o Option) SACKBlock(i int) SACKBlock {
	b := o.Data[8*i:]
	return SACKBlock{Seq(binary.BigEndian.Uint32(b)), Seq(binary.BigEndian.Uint32(b[4:]))}
}

// FastOpenCookie returns the cookie of a Fast Open option, kind 34 or the
// experimental kind 254 with magic 0xF989 (exp); false for another option.
func (o Option) FastOpenCookie() (cookie []byte, exp, ok bool) {
	switch {
	case o.Kind == OptKindFastOpen:
		return o.Data, false, true
	case o.Kind == OptKindExp && len(o.Data) >= 2 && binary.BigEndian.Uint16(o.Data) == ExpFastOpen:
		return o.Data[2:], true, true
	}
	return nil, false, false
}

var (
	accECN0Names = []string{"e0b", "ceb", "e1b"}
	accECN1Names = []string{"e1b", "ceb", "e0b"}
)

// AccECNNames returns the names of an AccECN option's counters in wire
// order: e0b, ceb, e1b for kind 172; e1b, ceb, e0b for kind 174.
func AccECNNames(kind uint8) []string {
	if kind == OptKindAccECN1 {
		return accECN1Names
	}
	return accECN0Names
}

// AccECNCounter returns counter i of an AccECN option: each is 24 bits;
// an option holds as many as fit in its length (at most 3).
func (o Option) AccECNCounter(i int) (uint32, bool) {
	if (o.Kind != OptKindAccECN0 && o.Kind != OptKindAccECN1) || i > 2 || 3*i+3 > len(o.Data) {
		return 0, false
	}
	b := o.Data[3*i:]
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]), true
}
