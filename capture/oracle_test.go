package capture

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// TestGopacketOracle decodes every TCP packet of the shared captures again
// with gopacket's full decoder and compares the fields both produce.
func TestGopacketOracle(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedOrSkip(t, "captures"), "*", "*.pcap*"))
	seeds, _ := filepath.Glob(filepath.Join(sharedDir, "seed", "*.pcap"))
	for _, name := range append(files, seeds...) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := NewReader(f, name)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for {
				p, err := r.Next()
				if err != nil {
					break
				}
				g := gopacket.NewPacket(p.Frame, p.LinkType, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
				tl, _ := g.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if tl == nil || g.NetworkLayer() == nil {
					continue // gopacket does not decode this link type or cut frame
				}
				src, dst := g.NetworkLayer().NetworkFlow().Endpoints()
				if src.String() != p.IP.Src.String() || dst.String() != p.IP.Dst.String() ||
					uint16(tl.SrcPort) != p.TCP.SrcPort || uint16(tl.DstPort) != p.TCP.DstPort ||
					tl.Seq != uint32(p.TCP.Seq) || tl.Ack != uint32(p.TCP.Ack) || tl.Window != p.TCP.Window ||
					tl.SYN != p.TCP.Flags.Has(tcpwire.FlagSYN) || tl.FIN != p.TCP.Flags.Has(tcpwire.FlagFIN) || tl.RST != p.TCP.Flags.Has(tcpwire.FlagRST) ||
					tl.ACK != p.TCP.Flags.Has(tcpwire.FlagACK) || tl.NS != p.TCP.Flags.Has(tcpwire.FlagAE) || tl.Checksum != p.TCP.Checksum ||
					int(tl.DataOffset)*4 != p.TCP.HeaderLen {
					t.Fatalf("packet %d: gopacket %v %v %+v\nours %+v %+v", p.Index, src, dst, tl, p.IP, p.TCP)
				}
				if !p.Truncated && len(tl.Payload) != p.PayloadLen {
					t.Fatalf("packet %d: payload %d, gopacket %d", p.Index, p.PayloadLen, len(tl.Payload))
				}
				checked++
			}
			if checked == 0 && r.Stats().TCP > 0 {
				t.Logf("gopacket decoded none of %d packets (link type %v)", r.Stats().TCP, r.LinkType())
			}
		})
	}
}
