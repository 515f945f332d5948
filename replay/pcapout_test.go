package replay

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var (
	testIPv4SYN = []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 168, 0, 1,
		0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0}
	testIPv6Empty = append([]byte{0x60, 0, 0, 0, 0, 0, 59, 64}, make([]byte, 32)...)
)

func TestPcapWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.pcap")
	w, err := NewPcapWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123456789)
	packets := []struct {
		at       time.Time
		pkt      []byte
		outgoing bool
		proto    layers.EthernetType
		ptype    layers.LinuxSLL2PacketType
	}{
		{t0, testIPv4SYN, false, layers.EthernetTypeIPv4, layers.LinuxSLL2PacketTypeHost},
		{t0.Add(1500 * time.Nanosecond), testIPv6Empty, true, layers.EthernetTypeIPv6, layers.LinuxSLL2PacketTypeOutgoing},
	}
	for _, p := range packets {
		if err := w.WritePacket(p.at, p.pkt, p.outgoing); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists before Close (stat: %v)", path, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(t0, testIPv4SYN, true); err == nil {
		t.Error("WritePacket after Close succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries after Close, want only the capture", len(entries))
	}

	r := openPcap(t, path)
	if r.LinkType() != layers.LinkTypeLinuxSLL2 {
		t.Fatalf("link type %v, want LINUX_SLL2", r.LinkType())
	}
	for i, want := range packets {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if !ci.Timestamp.Equal(want.at) {
			t.Errorf("packet %d: time %v, want %v (nanoseconds kept)", i+1, ci.Timestamp, want.at)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeLinuxSLL2, gopacket.Default)
		sll, ok := p.Layer(layers.LayerTypeLinuxSLL2).(*layers.LinuxSLL2)
		if !ok {
			t.Fatalf("packet %d: no LINUX_SLL2 header: %v", i+1, p)
		}
		if sll.PacketType != want.ptype || sll.ProtocolType != want.proto || sll.InterfaceIndex != 0 {
			t.Errorf("packet %d: type %v proto %v ifindex %d; want %v %v 0", i+1, sll.PacketType, sll.ProtocolType, sll.InterfaceIndex, want.ptype, want.proto)
		}
		if !bytes.Equal(sll.Payload, want.pkt) {
			t.Errorf("packet %d: payload %x, want %x", i+1, sll.Payload, want.pkt)
		}
	}

	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not installed: not checking that it reads the file")
		return
	}
	out, err := exec.Command(tcpdump, "-nn", "-e", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var dirs []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 2 && (f[2] == "In" || f[2] == "Out") {
			dirs = append(dirs, f[2])
		}
	}
	if strings.Join(dirs, ",") != "In,Out" {
		t.Errorf("tcpdump shows directions %v, want In,Out:\n%s", dirs, out)
	}
}

func TestPcapWriterBadDir(t *testing.T) {
	if _, err := NewPcapWriter(filepath.Join(t.TempDir(), "missing", "run.pcap")); err == nil {
		t.Error("NewPcapWriter in a missing directory succeeded")
	}
}

// openPcap opens a pcap file for reading until the test ends.
func openPcap(t testing.TB, path string) *pcapgo.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
