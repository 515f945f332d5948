package synth

import (
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// Loss probes (RFC 8985 TLP) as Linux schedules them: 2*srtt plus
// probeSlack after the latest transmission or ACK when more than one
// segment is out, on a timer that fires at the jiffy after that (4 ms at
// HZ=250).
const (
	probeSlack  = 2 * time.Millisecond
	probeJiffy  = 4 * time.Millisecond
	probeMargin = 500 * time.Microsecond // how far ahead of the earliest probe a late ACK goes
)

// acksBeforeProbe moves an inbound ACK of new data that came inside the
// window in which the kernel's loss-probe timer could have fired, with no
// probe in between, to just before that window, and the rest of the script
// with it. The capture shows only that the captured timer's jiffy had not
// come yet; a replay's jiffies fall elsewhere, and its probe went first
// (one capture in 36 over a reordering path, 3 replays in 10). The smoothed
// RTT is estimated from the capture as the kernel does (gain 1/8, from
// segments not sent twice); only connections that negotiated SACK probe.
//
// mss is the smaller of the two sides' MSS options; flight is memory for
// the data in flight, returned (emptied) for the next flow.
func acksBeforeProbe(evs []*event, mss int, flight []sentData) []sentData {
	s := probeWindows{mss: mss, flight: flight[:0]}
	s.step(evs, 0, len(evs))
	return s.flight[:0]
}

// probeWindows is acksBeforeProbe's state between its steps.
type probeWindows struct {
	mss int
	// Outbound data not acknowledged yet, in order, from flight[head]:
	// an ACK drops what it covers by moving head, and the list is
	// compacted once half of it is dropped, so that each entry is copied
	// a bounded number of times (copying the rest on each ACK made
	// thousands of segments in flight take quadratic time).
	flight []sentData
	head   int
	sh     shifter
	una    tcpwire.Seq
	armed  time.Time // the latest transmission or ACK of new data
	srtt   time.Duration
	quiet  bool // nothing went out since armed but new data
}

// step goes over evs[from:to].
func (s *probeWindows) step(evs []*event, from, to int) {
	for i, p := range s.sh.packets(evs, from, to) {
		e := evs[i]
		if p.Dir == parser.Outbound {
			if p.TCP.Len > 0 && !strings.ContainsAny(p.TCP.Flags, "SR") {
				end := tcpwire.Seq(p.TCP.Seq).Add(p.TCP.Len)
				s.flight = append(s.flight, sentData{end: end, at: e.at(), resent: !e.fresh})
				s.armed, s.quiet = e.at(), e.fresh
			} else {
				s.quiet = false
			}
			continue
		}
		if p.TCP.Ack == nil || strings.ContainsAny(p.TCP.Flags, "SR") || s.head == len(s.flight) {
			continue
		}
		ack := tcpwire.Seq(*p.TCP.Ack)
		if !s.una.LessThan(ack) && s.una != 0 {
			continue
		}
		if s.quiet && s.srtt > 0 && s.flight[len(s.flight)-1].end.Diff(s.una) > int32(s.mss) {
			earliest := s.armed.Add(2*s.srtt + probeSlack)
			if at := e.at(); !at.Before(earliest) && at.Before(earliest.Add(probeJiffy+probeMargin)) {
				s.sh.moveEarlier(evs, i, earliest.Add(-probeMargin))
			}
		}
		// The RTT sample of the newest segment this ACK covers, unless it
		// was sent twice (Karn); then drop what it acknowledges.
		n := s.head
		var sample time.Duration
		for n < len(s.flight) && s.flight[n].end.LessThanEq(ack) {
			if !s.flight[n].resent {
				sample = e.at().Sub(s.flight[n].at)
			} else {
				sample = 0
			}
			n++
		}
		if sample > 0 {
			if s.srtt == 0 {
				s.srtt = sample
			} else {
				s.srtt += (sample - s.srtt) / 8
			}
		}
		s.head = n
		if 2*s.head >= len(s.flight) {
			s.flight, s.head = s.flight[:copy(s.flight, s.flight[s.head:])], 0 // keeps the storage
		}
		s.una, s.armed, s.quiet = ack, e.at(), s.head < len(s.flight)
	}
}

// probeMSS is the segment size acksBeforeProbe reckons with: the smaller
// of the two sides' MSS options; 0 when the connection did not negotiate
// SACK (only those probe) or no MSS is known.
func (b *builder) probeMSS() int {
	if !b.useSACK {
		return 0
	}
	mss := b.mss[b.remote]
	if l := b.mss[b.local]; l > 0 && (mss == 0 || l < mss) {
		mss = l
	}
	return max(mss, 0)
}

// sentData is outbound data in flight: where it ends, when it left, and
// whether it was sent before.
type sentData struct {
	end    tcpwire.Seq
	at     time.Time
	resent bool
}
