package synth

import (
	"encoding/binary"
	"fmt"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// tsOnly converts the option bytes of nearly every packet after the
// handshake, NOP, NOP, timestamp, without the general parser's
// allocations: one slab entry holds the list, and its NOPs are one node
// shared by the script's lists (nothing changes a built tree's nodes).
// A list with the same TS val and ecr as one of the last two made is that
// list again: timestamps tick once a millisecond, and a busy connection
// sends dozens of segments each way in one (two: one per direction).
// False for any other layout.
func (b *builder) tsOnly(raw []byte) (*parser.TCPOptions, bool) {
	if len(raw) != 12 || raw[0] != 1 || raw[1] != 1 || raw[2] != 8 || raw[3] != 10 {
		return nil, false
	}
	val, ecr := binary.BigEndian.Uint32(raw[4:]), binary.BigEndian.Uint32(raw[8:])
	for _, n := range b.tsLast {
		if n != nil && n.ts.TSVal == val && n.ts.TSEcr == ecr {
			return &n.opts, true
		}
	}
	if b.nop == nil {
		b.nop = &parser.TCPOption{Kind: parser.OptNOP}
	}
	n := b.tsSlab.new()
	n.ts = parser.TCPOption{Kind: parser.OptTimestamp, TSVal: val, TSEcr: ecr}
	n.list = [3]*parser.TCPOption{b.nop, b.nop, &n.ts}
	n.opts.List = n.list[:]
	b.tsLast[1], b.tsLast[0] = b.tsLast[0], n
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
		t, ok := parser.TCPOptionFromWire(o)
		if !ok {
			notes = append(notes, leftOut(o))
			continue
		}
		for i, blk := range t.SACK {
			t.SACK[i] = parser.SACKBlock{Left: rel(tcpwire.Seq(blk.Left), sackBase), Right: rel(tcpwire.Seq(blk.Right), sackBase)}
		}
		out = append(out, add(t))
	}
	n := 0
	for _, o := range out {
		n += o.WireLen()
	}
	if n%4 != 0 {
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

// leftOut says why an option the script language cannot write is left
// out.
func leftOut(o tcpwire.Option) string {
	switch o.Kind {
	case tcpwire.OptKindMSS:
		return fmt.Sprintf("mss option of length %d left out", o.Len)
	case tcpwire.OptKindWScale:
		return fmt.Sprintf("wscale option of length %d left out", o.Len)
	case tcpwire.OptKindTimestamp:
		return fmt.Sprintf("timestamp option of length %d left out", o.Len)
	case tcpwire.OptKindSACK:
		return fmt.Sprintf("sack option of length %d (no block) left out", o.Len)
	case tcpwire.OptKindMD5:
		return fmt.Sprintf("md5 option with a digest of %d bytes left out: the script language writes 1 to %d", len(o.Data), parser.MaxMD5DigestBytes)
	case tcpwire.OptKindAccECN0, tcpwire.OptKindAccECN1:
		return fmt.Sprintf("AccECN option of length %d (no counter) left out: the script language writes at least one", o.Len)
	case tcpwire.OptKindExp:
		return fmt.Sprintf("experimental option (kind 254, %d bytes) left out: the script language has no form for it", o.Len)
	}
	return fmt.Sprintf("option kind %d (%d bytes) left out: the script language has no form for it", o.Kind, o.Len)
}

// rel returns s relative to base, wrapping as sequence numbers do.
func rel(s, base tcpwire.Seq) uint32 { return uint32(s - base) }
