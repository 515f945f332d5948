package synth

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// expMagicFastOpen is the ExID of the experimental Fast Open option.
const expMagicFastOpen = 0xF989

// tsOnly converts the option bytes of nearly every packet after the
// handshake, NOP, NOP, timestamp, without the general parser's
// allocations: one slab entry holds the list, and its NOPs are one node
// shared by the script's lists (nothing changes a built tree's nodes).
// False for any other layout.
func (b *builder) tsOnly(raw []byte) (*parser.TCPOptions, bool) {
	if len(raw) != 12 || raw[0] != 1 || raw[1] != 1 || raw[2] != 8 || raw[3] != 10 {
		return nil, false
	}
	if b.nop == nil {
		b.nop = &parser.TCPOption{Kind: parser.OptNOP}
	}
	n := b.tsSlab.new()
	n.ts = parser.TCPOption{Kind: parser.OptTimestamp, TSVal: binary.BigEndian.Uint32(raw[4:]), TSEcr: binary.BigEndian.Uint32(raw[8:])}
	n.list = [3]*parser.TCPOption{b.nop, b.nop, &n.ts}
	n.opts.List = n.list[:]
	return &n.opts, true
}

// tsNodes holds the nodes of a NOP, NOP, timestamp option list but the
// shared NOP.
type tsNodes struct {
	opts parser.TCPOptions
	list [3]*parser.TCPOption
	ts   parser.TCPOption
}

// convertOptions turns captured option bytes into the script's option list.
// SACK blocks are made relative to sackBase (the ISN of the side whose data
// they acknowledge), as the reference reads them. Options the script
// language cannot express are left out and described in the returned notes.
func convertOptions(raw []byte, sackBase tcpwire.Seq) ([]*parser.TCPOption, []string) {
	list, err := tcpwire.ParseOptions(raw)
	// One backing array for the options of a packet: a capture has millions.
	slab := make([]parser.TCPOption, 0, len(list))
	add := func(o parser.TCPOption) *parser.TCPOption {
		slab = append(slab, o)
		return &slab[len(slab)-1]
	}
	out := make([]*parser.TCPOption, 0, len(list))
	var notes []string
	if err != nil {
		notes = append(notes, "malformed TCP options cut short: "+err.Error())
	}
	for _, o := range list {
		v := o.Data
		switch o.Kind {
		case tcpwire.OptKindNOP:
			out = append(out, add(parser.TCPOption{Kind: parser.OptNOP}))
		case tcpwire.OptKindEOL:
			out = append(out, add(parser.TCPOption{Kind: parser.OptEOL}))
		case tcpwire.OptKindMSS:
			if len(v) != 2 {
				notes = append(notes, fmt.Sprintf("mss option of length %d left out", o.Len))
				continue
			}
			out = append(out, add(parser.TCPOption{Kind: parser.OptMSS, Value: int64(binary.BigEndian.Uint16(v))}))
		case tcpwire.OptKindWScale:
			if len(v) != 1 {
				notes = append(notes, fmt.Sprintf("wscale option of length %d left out", o.Len))
				continue
			}
			out = append(out, add(parser.TCPOption{Kind: parser.OptWScale, Value: int64(v[0])}))
		case tcpwire.OptKindSACKOK:
			out = append(out, add(parser.TCPOption{Kind: parser.OptSACKOK}))
		case tcpwire.OptKindSACK:
			opt := add(parser.TCPOption{Kind: parser.OptSACK})
			for i := 0; i+8 <= len(v); i += 8 {
				l := tcpwire.Seq(binary.BigEndian.Uint32(v[i:]))
				r := tcpwire.Seq(binary.BigEndian.Uint32(v[i+4:]))
				opt.SACK = append(opt.SACK, parser.SACKBlock{Left: rel(l, sackBase), Right: rel(r, sackBase)})
			}
			out = append(out, opt)
		case tcpwire.OptKindTimestamp:
			if len(v) != 8 {
				notes = append(notes, fmt.Sprintf("timestamp option of length %d left out", o.Len))
				continue
			}
			out = append(out, add(parser.TCPOption{Kind: parser.OptTimestamp,
				TSVal: binary.BigEndian.Uint32(v), TSEcr: binary.BigEndian.Uint32(v[4:])}))
		case tcpwire.OptKindMD5:
			out = append(out, add(parser.TCPOption{Kind: parser.OptMD5, Cookie: hex.EncodeToString(v)}))
		case tcpwire.OptKindFastOpen:
			out = append(out, add(parser.TCPOption{Kind: parser.OptFastOpen, Cookie: hex.EncodeToString(v)}))
		case tcpwire.OptKindAccECN0, tcpwire.OptKindAccECN1:
			out = append(out, add(accECN(o.Kind, v)))
		case tcpwire.OptKindExp:
			if len(v) >= 2 && binary.BigEndian.Uint16(v) == expMagicFastOpen {
				out = append(out, add(parser.TCPOption{Kind: parser.OptFastOpenExp, Cookie: hex.EncodeToString(v[2:])}))
				continue
			}
			notes = append(notes, fmt.Sprintf("experimental option (kind 254, %d bytes) left out: the script language has no form for it", o.Len))
		default:
			notes = append(notes, fmt.Sprintf("option kind %d (%d bytes) left out: the script language has no form for it", o.Kind, o.Len))
		}
	}
	if n := optionsLen(out); n%4 != 0 {
		pad := 4 - n%4
		if len(out) > 0 && out[len(out)-1].Kind == parser.OptEOL {
			// Bytes after an EOL are padding already: more EOLs keep that.
			for range pad {
				out = append(out, add(parser.TCPOption{Kind: parser.OptEOL}))
			}
		} else {
			notes = append(notes, fmt.Sprintf("%d nop(s) added: the reference wants the option list padded to 4 bytes", pad))
			for range pad {
				out = append(out, add(parser.TCPOption{Kind: parser.OptNOP}))
			}
		}
	}
	return out, notes
}

// optionsLen is the length on the wire of an option list.
func optionsLen(list []*parser.TCPOption) int {
	n := 0
	for _, o := range list {
		switch o.Kind {
		case parser.OptNOP, parser.OptEOL:
			n++
		case parser.OptMSS:
			n += 4
		case parser.OptWScale:
			n += 3
		case parser.OptSACKOK:
			n += 2
		case parser.OptSACK:
			n += 2 + 8*len(o.SACK)
		case parser.OptTimestamp:
			n += 10
		case parser.OptMD5, parser.OptFastOpen:
			n += 2 + len(o.Cookie)/2
		case parser.OptFastOpenExp:
			n += 4 + len(o.Cookie)/2
		case parser.OptAccECN:
			n += 2 + 3*len(o.AccECN)
		}
	}
	return n
}

// accECN converts an AccECN option: kind 172 counts e0b, ceb, e1b in that
// order, kind 174 e1b, ceb, e0b; each field is 3 bytes and may be absent.
func accECN(kind uint8, v []byte) parser.TCPOption {
	names := []string{"e0b", "ceb", "e1b"}
	if kind == tcpwire.OptKindAccECN1 {
		names = []string{"e1b", "ceb", "e0b"}
	}
	opt := parser.TCPOption{Kind: parser.OptAccECN}
	for i, name := range names {
		if 3*i+3 > len(v) {
			break
		}
		b := v[3*i:]
		opt.AccECN = append(opt.AccECN, parser.AccECNField{Name: name, Value: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])})
	}
	return opt
}

// rel returns s relative to base, wrapping as sequence numbers do.
func rel(s, base tcpwire.Seq) uint32 { return uint32(s - base) }
