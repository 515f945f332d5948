package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser/fuzztest"
)

// FuzzCapture feeds arbitrary bytes to the reader and the flow tracker:
// no panic, no input taking over fuzztest.Deadline, every error after the
// header is io.EOF or damage, and the per-packet invariants hold. Run it
// with a short minimisation budget, or a minimising worker reports nothing
// for a minute:
//
//	go test ./capture -run X -fuzz FuzzCapture -fuzztime 60s -fuzzminimizetime 2s
func FuzzCapture(f *testing.F) {
	gen, _ := genCapture(3, 2, 2)
	f.Add(gen)
	ip4, ip6 := synSpec(false).ip(f), synSpec(true).ip(f)
	for _, order := range []bool{false, true} {
		ng := newNg(le)
		if order {
			ng = newNg(be)
		}
		ng.epb(ng.iface(layers.LinkTypeLinuxSLL2, 6), t0, sll2(ip4, sllOutgoing), 0)
		ng.epb(ng.iface(linkTypeNFLOG, 9), t0.Add(time.Second), nflog(ip6, 10, le), 1)
		f.Add(ng.buf.Bytes())
	}
	pc := newPcap(layers.LinkTypeNull, be, true, 100)
	pc.add(t0, nullHdr(ip6, 30, be), 80)
	pc.add(t0, ether(ip4, etherQinQ, etherVLAN), 0)
	f.Add(pc.buf.Bytes())
	ic := newPcap(layers.LinkTypeEthernet, le, false, 65535)
	ic.add(t0, ether(ip4), 0)
	ic.add(t0, ether(icmpErr(f, "10.0.0.2", "10.0.0.1", 3, 4, 1400, ip4)), 0)
	f.Add(ic.buf.Bytes())
	files, _ := filepath.Glob(filepath.Join(sharedDir, "captures", "*", "*.pcap*"))
	seeds, _ := filepath.Glob(filepath.Join(sharedDir, "seed", "*.pcap"))
	for _, name := range append(files, seeds...) {
		if data, err := os.ReadFile(name); err == nil && len(data) <= 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzztest.Within(t, func() error { return readAndTrack(data) })
	})
}

// readAndTrack reads data as a capture and tracks its flows, checking the
// invariants FuzzCapture promises.
func readAndTrack(data []byte) error {
	r, err := NewReader(bytes.NewReader(data), "fuzz")
	if err != nil {
		return nil
	}
	r.ICMPErrors = true
	tr := NewTracker(FlowOptions{PayloadBytes: 8})
	last := 0
	for {
		p, err := r.Next()
		if err != nil {
			if err != io.EOF && !errors.Is(err, ErrDamaged) {
				return fmt.Errorf("error is neither EOF nor damage: %v", err)
			}
			break
		}
		if e := p.ICMPError; e != nil {
			if p.Index <= last || e.PayloadLen < 0 || !e.Src.IsValid() || !e.Dst.IsValid() {
				return fmt.Errorf("ICMP packet %d (after %d): %+v", p.Index, last, e)
			}
			last = p.Index
			tr.Add(p)
			continue
		}
		if p.Index <= last || p.CapLen > MaxRecordLen || len(p.Payload) > p.PayloadLen || p.PayloadLen < 0 ||
			(p.IP.Version != 4 && p.IP.Version != 6) || p.TCP.HeaderLen < 20 {
			return fmt.Errorf("packet %d (after %d): caplen %d payload %d/%d ipv%d tcp header %d",
				p.Index, last, p.CapLen, len(p.Payload), p.PayloadLen, p.IP.Version, p.TCP.HeaderLen)
		}
		last = p.Index
		tcpwire.DecodeOptions(p.TCP.Options)
		tr.Add(p)
	}
	tr.Close()
	if err := WriteFlowTable(io.Discard, tr.Flows()); err != nil {
		return err
	}
	if st := r.Stats(); st.TCP+st.NonIP+st.NonTCP+st.Fragments+st.Short+st.Unsupported != st.Records {
		return fmt.Errorf("stats do not add up: %+v", st)
	}
	return nil
}
