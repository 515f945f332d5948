package replay

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// capturedTCP is one TCP packet of a capture file.
type capturedTCP struct {
	at       time.Time
	outgoing bool
	tcp      *layers.TCP
}

// readCapturedTCP returns the TCP packets of a LINUX_SLL2 capture.
func readCapturedTCP(t testing.TB, path string) []capturedTCP {
	t.Helper()
	r := openPcap(t, path)
	var out []capturedTCP
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		p := gopacket.NewPacket(data, layers.LayerTypeLinuxSLL2, gopacket.Default)
		sll, _ := p.Layer(layers.LayerTypeLinuxSLL2).(*layers.LinuxSLL2)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if sll == nil || tcp == nil {
			continue
		}
		out = append(out, capturedTCP{ci.Timestamp, sll.PacketType == layers.LinuxSLL2PacketTypeOutgoing, tcp})
	}
}

// TestTUNCapture captures a handshake: the injected SYN comes first, stamped
// by the kernel before its SYN-ACK, which carries the same timestamp as
// ReadPacket gave.
func TestTUNCapture(t *testing.T) {
	for _, cfg := range netConfigs {
		t.Run(cfg.IPVersion, func(t *testing.T) {
			if !inSandbox(t) {
				return
			}
			dev, w, path := recordingDevice(t, cfg)
			if err := dev.(Capturer).CaptureTo(w); err == nil {
				t.Error("a second CaptureTo succeeded")
			}
			lfd := listenTCP(t, cfg)
			defer unix.Close(lfd)
			if err := dev.WritePacket(buildTCP(t, cfg, layers.TCP{SYN: true, Seq: 1, Window: 65535}, nil)); err != nil {
				t.Fatal(err)
			}
			_, synackAt := readTCP(t, dev, cfg)
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			pkts := readCapturedTCP(t, path)
			if len(pkts) != 2 {
				t.Fatalf("captured %d TCP packets, want SYN and SYN-ACK", len(pkts))
			}
			syn, synack := pkts[0], pkts[1]
			if syn.outgoing || !syn.tcp.SYN || syn.tcp.ACK {
				t.Errorf("first packet: outgoing=%v SYN=%v ACK=%v, want the injected SYN", syn.outgoing, syn.tcp.SYN, syn.tcp.ACK)
			}
			if !synack.outgoing || !synack.tcp.SYN || !synack.tcp.ACK {
				t.Errorf("second packet: outgoing=%v SYN=%v ACK=%v, want the kernel's SYN-ACK", synack.outgoing, synack.tcp.SYN, synack.tcp.ACK)
			}
			if !synack.at.Equal(synackAt) {
				t.Errorf("captured SYN-ACK at %v, ReadPacket said %v", synack.at, synackAt)
			}
			if d := synack.at.Sub(syn.at); d < 0 || d > time.Second {
				t.Errorf("SYN-ACK %v after the SYN", d)
			}
		})
	}
}
