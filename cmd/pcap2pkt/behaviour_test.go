package main

// The ground truth of verify --mutate's measurement: whether two captures
// of the same traffic show the local kernel doing something different, by
// the rules a synthesised script judges it by (issue 12): the handshake's
// option set; which bytes it retransmitted, by what kind of trigger and
// when; when it first sent each byte; how far its cumulative ACK and its
// SACK blocks had got by each time, give or take the delayed-ACK slack;
// its FIN and RST. Segment boundaries, PSH, windows and option values that
// the host decides are not behaviour by those rules.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// Tolerances of the comparison.
const (
	// behaviourTolerance is the replay's own default timing tolerance
	// (--tolerance_usecs), and behaviourPercent its --tolerance_percent
	// of the time since the previous event: a timer a second long fires
	// some milliseconds either way (its jiffies, the timer wheel's slack).
	behaviourTolerance = 4 * time.Millisecond
	behaviourPercent   = 12.5
	// ackSlack is the rules' slack for a delayed ACK.
	ackSlack = 48 * time.Millisecond
	// ackReaction is how soon after a packet of the peer a retransmission
	// counts as that packet's doing (fast retransmit, RACK on an ACK); a
	// later one is a timer's.
	ackReaction = time.Millisecond
	// rtoFloor: a timer retransmission of the first unacknowledged byte at
	// least this long after the kernel's last transmission is an RTO
	// (tcp_rto_min is 200 ms; loss probes and RACK's reordering timer fire
	// within a few round trips).
	rtoFloor = 150 * time.Millisecond
)

// behaviour is what the local kernel did on one connection; times are
// from the connection's first packet, sequence numbers relative to each
// side's first byte of data.
type behaviour struct {
	rtt     time.Duration   // of the handshake, seen from the local side
	synOpts string          // option kinds of the local SYN or SYN-ACK
	synECN  string          // its ECN flags
	syns    []time.Duration // each transmission of the local SYN or SYN-ACK
	sent    int64           // bytes of data the local side sent
	first   []txSpan        // first transmissions, by offset
	retrans []retransmission
	acks    []ackStep // cumulative ACK progress
	sacks   []sackSeen
	fin     *time.Duration // first local FIN
	finSeq  int64
	rst     *time.Duration  // first local RST
	times   []time.Duration // of every packet, both ways
	// The peer's first transmission of each byte and its FIN: what the
	// local side's packets answer, and what a replay injects as
	// scripted.
	peerFirst []txSpan
	peerFin   *time.Duration
	// peerAgain is the peer's data that reached the local side a second
	// time (a retransmission of bytes it had, a copy the path made): what
	// a D-SACK answers. A D-SACK the original has and a re-capture lacks
	// is the local kernel's only if this copy came in the re-capture too.
	peerAgain []txSpan
	// peerAcked is when the peer acknowledged the local data, cumulatively
	// or by SACK: each step of its cumulative ACK and each SACK block.
	peerAcked []sackSeen
}

type txSpan struct {
	lo, hi int64
	at     time.Duration
}

// Kinds of retransmission trigger.
const (
	trigAck   = "ack"   // right after a packet of the peer: fast retransmit, RACK on an ACK
	trigProbe = "probe" // a timer, of the highest byte sent: a tail loss probe
	trigRTO   = "rto"   // a timer, of the first unacknowledged byte, long after the last transmission
	trigTimer = "timer" // another timer: RACK's reordering timer
)

type retransmission struct {
	lo, hi int64
	at     time.Duration
	kind   string
	// raced: the peer's ACKs covered its bytes, unacknowledged when it
	// left, within the tolerance after it: the kernel's loss detection
	// fired just before an ACK on its way, which one capture may show and
	// another not. The replay lets such a retransmission be (see
	// replay's raceRetransmission), so the comparison does too.
	raced, ackedBefore bool
}

type ackStep struct {
	ack int64 // relative to the peer's first byte: the SYN counts as -1
	at  time.Duration
}

type sackSeen struct {
	lo, hi int64
	at     time.Duration
	dsack  bool
}

// readBehaviour reads the capture's one connection between the given
// local address and the peer, as the local side did it.
func readBehaviour(pcap string, local capture.HostPort) (*behaviour, error) {
	f, err := os.Open(pcap)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	flows, _, err := capture.ReadFlows(f, pcap, capture.FlowOptions{Local: local})
	if err != nil {
		return nil, err
	}
	var fl *capture.Flow
	for _, x := range flows {
		if x.Handshake() {
			if fl != nil {
				return nil, fmt.Errorf("%s: more than one connection", pcap)
			}
			fl = x
		}
	}
	if fl == nil {
		return nil, fmt.Errorf("%s: no connection with a handshake", pcap)
	}
	return flowBehaviour(fl), nil
}

// flowBehaviour extracts the local side's behaviour from a flow.
func flowBehaviour(fl *capture.Flow) *behaviour {
	b := &behaviour{}
	loc, rem := fl.Local, fl.Local.Other()
	start := fl.Packets.At(0).Time()
	var (
		highest     int64    // local bytes sent so far (offset past the last)
		peerHighest int64    // the same of the peer
		peerGot     []txSpan // the peer's data that reached the local side
		una         int64    // the peer's cumulative ACK of local data
		lastIn      = time.Duration(-1 << 62)
		lastOut     = time.Duration(-1 << 62) // the last transmission that arms the retransmission timer
		ack         = int64(-2)
		synSent     time.Duration
		synAnswered bool
		sackHave    []txSpan // SACKed ranges so far (at is unused)
		peerSacked  []txSpan // the same of local data, by the peer
	)
	rel := func(s tcpwire.Seq, side capture.Side) int64 {
		return int64(s.Diff(fl.ISN[side].Add(1)))
	}
	for i := range fl.Packets.Len() {
		p := fl.Packets.At(i)
		at := p.Time().Sub(start)
		b.times = append(b.times, at)
		if p.From == rem {
			if p.Flags.Has(tcpwire.FlagACK) && fl.HasISN[loc] {
				if a := rel(p.Ack, loc); a > una {
					una = a
					b.peerAcked = append(b.peerAcked, sackSeen{lo: -1, hi: a, at: at})
				}
				opts := p.Options()
				for j := len(b.retrans) - 1; j >= 0 && at-b.retrans[j].at <= behaviourTolerance; j-- {
					r := &b.retrans[j]
					covered := una >= r.hi
					for _, blk := range opts.SACK[:opts.NumSACK] {
						covered = covered || rel(blk.Left, loc) <= r.lo && r.hi <= rel(blk.Right, loc)
					}
					r.raced = r.raced || covered && !r.ackedBefore
				}
				for _, blk := range opts.SACK[:opts.NumSACK] {
					lo, hi := rel(blk.Left, loc), rel(blk.Right, loc)
					if !covered(peerSacked, lo, hi) {
						b.peerAcked = append(b.peerAcked, sackSeen{lo: lo, hi: hi, at: at})
					}
					peerSacked = addSpan(peerSacked, lo, hi)
				}
			}
			if !synAnswered && len(b.syns) > 0 && p.Flags.Has(tcpwire.FlagACK) {
				b.rtt, synAnswered = at-synSent, true
			}
			if fl.HasISN[rem] && p.PayloadLen() > 0 {
				lo := rel(p.Seq, rem)
				hi := lo + int64(p.PayloadLen())
				if hi > peerHighest {
					b.peerFirst = append(b.peerFirst, txSpan{max(lo, peerHighest), hi, at})
					peerHighest = hi
				}
				if overlapsSpans(peerGot, lo, hi) {
					b.peerAgain = append(b.peerAgain, txSpan{lo, hi, at})
				}
				peerGot = addSpan(peerGot, lo, hi)
			}
			if p.Flags.Has(tcpwire.FlagFIN) && b.peerFin == nil {
				t := at
				b.peerFin = &t
			}
			lastIn = at
			continue
		}
		if p.Flags.Has(tcpwire.FlagSYN) {
			if len(b.syns) == 0 {
				b.synOpts = optionKinds(p)
				b.synECN = (p.Flags & (tcpwire.FlagECE | tcpwire.FlagCWR | tcpwire.FlagAE)).String()
			}
			b.syns = append(b.syns, at)
			synSent = at
			lastOut = at
			continue
		}
		if p.Flags.Has(tcpwire.FlagRST) && b.rst == nil {
			t := at
			b.rst = &t
		}
		if p.Flags.Has(tcpwire.FlagACK) && fl.HasISN[rem] {
			if a := rel(p.Ack, rem); a > ack {
				ack = a
				b.acks = append(b.acks, ackStep{a, at})
			}
			opts := p.Options()
			for _, blk := range opts.SACK[:opts.NumSACK] {
				lo, hi := rel(blk.Left, rem), rel(blk.Right, rem)
				dsack := lo < ack || covered(sackHave, lo, hi)
				if !dsack {
					sackHave = addSpan(sackHave, lo, hi)
				}
				if !sackCovers(b.sacks, lo, hi, dsack) {
					b.sacks = append(b.sacks, sackSeen{lo, hi, at, dsack})
				}
			}
		}
		if fl.HasISN[loc] && p.PayloadLen() > 0 {
			lo := rel(p.Seq, loc)
			hi := lo + int64(p.PayloadLen())
			if lo < highest {
				// Acknowledged before it left, cumulatively or by SACK, as
				// the replay's raceRetransmission reads it: no race.
				acked := min(hi, highest) <= una || covered(peerSacked, lo, min(hi, highest))
				r := retransmission{lo: lo, hi: min(hi, highest), at: at, ackedBefore: acked}
				switch {
				case at-lastIn <= ackReaction:
					r.kind = trigAck
				case lo <= una && at-lastOut >= rtoFloor:
					r.kind = trigRTO
				case r.hi == highest:
					r.kind = trigProbe
				default:
					r.kind = trigTimer
				}
				b.retrans = append(b.retrans, r)
			}
			if hi > highest {
				b.first = append(b.first, txSpan{max(lo, highest), hi, at})
				highest = hi
			}
		}
		if p.Flags.Has(tcpwire.FlagFIN) && b.fin == nil && fl.HasISN[loc] {
			t := at
			b.fin = &t
			b.finSeq = rel(p.Seq, loc) + int64(p.PayloadLen())
		}
		if p.PayloadLen() > 0 || p.Flags.Has(tcpwire.FlagFIN) {
			// A pure ACK does not arm the retransmission timer: an RTO
			// that fired after the kernel answered the peer's copy with a
			// D-SACK is still an RTO.
			lastOut = at
		}
	}
	b.sent = highest
	return b
}

// optionKinds names the TCP options of a packet, sorted, without NOP/EOL.
func optionKinds(p *capture.FlowPacket) string {
	list, _ := p.OptionList()
	var kinds []string
	for _, o := range list {
		if o.Kind == tcpwire.OptKindNOP || o.Kind == tcpwire.OptKindEOL {
			continue
		}
		kinds = append(kinds, map[uint8]string{
			tcpwire.OptKindMSS: "mss", tcpwire.OptKindWScale: "wscale", tcpwire.OptKindSACKOK: "sackOK",
			tcpwire.OptKindTimestamp: "TS", tcpwire.OptKindFastOpen: "FO", tcpwire.OptKindMD5: "md5",
		}[o.Kind])
		if kinds[len(kinds)-1] == "" {
			kinds[len(kinds)-1] = fmt.Sprintf("kind%d", o.Kind)
		}
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ",")
}

func addSpan(spans []txSpan, lo, hi int64) []txSpan {
	spans = append(spans, txSpan{lo: lo, hi: hi})
	slices.SortFunc(spans, func(a, b txSpan) int { return int(a.lo - b.lo) })
	out := spans[:1]
	for _, s := range spans[1:] {
		if last := &out[len(out)-1]; s.lo <= last.hi {
			last.hi = max(last.hi, s.hi)
		} else {
			out = append(out, s)
		}
	}
	return out
}

// overlapsSpans reports whether [lo, hi) shares a byte with the spans.
func overlapsSpans(spans []txSpan, lo, hi int64) bool {
	for _, s := range spans {
		if s.lo < hi && lo < s.hi {
			return true
		}
	}
	return false
}

func covered(spans []txSpan, lo, hi int64) bool {
	for _, s := range spans {
		if s.lo <= lo && hi <= s.hi {
			return true
		}
	}
	return false
}

func sackCovers(seen []sackSeen, lo, hi int64, dsack bool) bool {
	for _, s := range seen {
		if s.dsack == dsack && s.lo <= lo && hi <= s.hi {
			return true
		}
	}
	return false
}

// tolerance is the timing window of the comparison: the replay's
// tolerance, or half the round trip where that is longer (a shift by a
// round trip is a different round of the protocol; less is jitter).
func (b *behaviour) tolerance() time.Duration {
	return max(behaviourTolerance, b.rtt/2)
}

// clock compares the times of events of one capture (from) with those of
// their counterparts in another (to), as a replay judges them: each event
// against the time of the last earlier event both share (a SYN
// transmission by its number, the first transmission of a byte by either
// side, a retransmission of the same bytes by the same trigger, either
// FIN), not against the first packet, so that a timer that fired 5 ms
// early, here or at the peer, does not make everything after it early;
// within the larger of the tolerance and behaviourPercent of the time
// since the previous packet.
type clock struct {
	tol   time.Duration
	times []time.Duration // of every packet of from
	refs  [][2]time.Duration
}

func newClock(from, to *behaviour, tol time.Duration) *clock {
	c := &clock{tol: tol, times: from.times}
	for i := range min(len(from.syns), len(to.syns)) {
		c.refs = append(c.refs, [2]time.Duration{from.syns[i], to.syns[i]})
	}
	for _, s := range from.first {
		if tb, ok := to.firstAt(s.lo); ok {
			c.refs = append(c.refs, [2]time.Duration{s.at, tb})
		}
	}
	for _, s := range from.peerFirst {
		if tb, ok := firstAt(to.peerFirst, s.lo); ok {
			c.refs = append(c.refs, [2]time.Duration{s.at, tb})
		}
	}
	used := make([]bool, len(to.retrans))
	for _, r := range from.retrans {
		for i, s := range to.retrans {
			if !used[i] && s.lo == r.lo && s.kind == r.kind {
				used[i] = true
				c.refs = append(c.refs, [2]time.Duration{r.at, s.at})
				break
			}
		}
	}
	for _, f := range [][2]*time.Duration{{from.fin, to.fin}, {from.peerFin, to.peerFin}} {
		if f[0] != nil && f[1] != nil {
			c.refs = append(c.refs, [2]time.Duration{*f[0], *f[1]})
		}
	}
	slices.SortFunc(c.refs, func(a, b [2]time.Duration) int { return int(a[0] - b[0]) })
	return c
}

// drift is how much later the other capture was at the last shared event
// before t.
func (c *clock) drift(t time.Duration) time.Duration {
	i := sort.Search(len(c.refs), func(i int) bool { return c.refs[i][0] >= t })
	if i == 0 {
		return 0
	}
	return c.refs[i-1][1] - c.refs[i-1][0]
}

// tolerance at t: the larger of the tolerance and behaviourPercent of the
// time since the packet before t.
func (c *clock) tolerance(t time.Duration) time.Duration {
	i := sort.Search(len(c.times), func(i int) bool { return c.times[i] >= t })
	if i == 0 {
		return c.tol
	}
	return max(c.tol, time.Duration(behaviourPercent/100*float64(t-c.times[i-1])))
}

// late is how much later than its counterpart at ta one at tb is, beyond
// the drift before ta (negative: earlier).
func (c *clock) late(ta, tb time.Duration) time.Duration { return tb - ta - c.drift(ta) }

// near reports whether tb is ta's time within the tolerance.
func (c *clock) near(ta, tb time.Duration) bool {
	d, tol := c.late(ta, tb), c.tolerance(ta)
	return -tol <= d && d <= tol
}

// nearBy reports whether tb is ta's time within the tolerance or within
// slack, whichever is longer.
func (c *clock) nearBy(ta, tb, slack time.Duration) bool {
	d, tol := c.late(ta, tb), max(c.tolerance(ta), slack)
	return -tol <= d && d <= tol
}

// firstAt returns when byte off was first sent, or false.
func (b *behaviour) firstAt(off int64) (time.Duration, bool) { return firstAt(b.first, off) }

// firstAt returns when spans first held byte off, or false.
func firstAt(spans []txSpan, off int64) (time.Duration, bool) {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].hi > off })
	if i == len(spans) || spans[i].lo > off {
		return 0, false
	}
	return spans[i].at, true
}

// ackedBy returns when the cumulative ACK first reached ack, or false.
func (b *behaviour) ackedBy(ack int64) (time.Duration, bool) {
	for _, s := range b.acks {
		if s.ack >= ack {
			return s.at, true
		}
	}
	return 0, false
}

// sackedBy returns when the range was first reported (SACKed, or
// cumulatively acknowledged unless it is a D-SACK), or false.
func (b *behaviour) sackedBy(lo, hi int64, dsack bool) (time.Duration, bool) {
	best, ok := time.Duration(0), false
	for _, s := range b.sacks {
		if s.dsack == dsack && s.lo <= lo && hi <= s.hi && (!ok || s.at < best) {
			best, ok = s.at, true
		}
	}
	if !dsack {
		if at, acked := b.ackedBy(hi); acked && (!ok || at < best) {
			best, ok = at, true
		}
	}
	return best, ok
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// behaviourDiff lists how re differs from orig by the rules, the first few
// of each kind; nothing means the same behaviour.
func behaviourDiff(orig, re *behaviour) []string { return behaviourDiffN(orig, re, 3) }

// behaviourDiffN is behaviourDiff listing up to limit differences of each
// kind.
func behaviourDiffN(orig, re *behaviour, limit int) []string {
	var out []string
	tol := max(orig.tolerance(), re.tolerance())
	fwd, back := newClock(orig, re, tol), newClock(re, orig, tol)
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	if orig.synOpts != re.synOpts {
		add("handshake options %s, now %s", orig.synOpts, re.synOpts)
	}
	if orig.synECN != re.synECN {
		add("handshake ECN flags %s, now %s", orig.synECN, re.synECN)
	}
	if len(orig.syns) != len(re.syns) {
		add("%d SYN transmission(s), now %d", len(orig.syns), len(re.syns))
	} else {
		for i := range orig.syns {
			if !fwd.near(orig.syns[i], re.syns[i]) {
				add("SYN transmission %d at %s, now %s", i+1, ms(orig.syns[i]), ms(re.syns[i]))
				break
			}
		}
	}
	if orig.sent != re.sent {
		add("sent %d bytes, now %d", orig.sent, re.sent)
	}
	// First transmissions: compared at every segment edge of either;
	// once the kernel has been in loss recovery (its first retransmission
	// in either capture), within a round trip (replay's newDataSlackUsecs).
	rtt := max(orig.rtt, re.rtt)
	firstLoss := time.Duration(-1)
	for _, b := range []*behaviour{orig, re} {
		for _, r := range b.retrans {
			if firstLoss < 0 || r.at < firstLoss {
				firstLoss = r.at
			}
		}
	}
	recovered := func(at time.Duration) bool { return firstLoss >= 0 && firstLoss <= at }
	n := 0
	for _, pair := range [][2]*behaviour{{orig, re}, {re, orig}} {
		for _, s := range pair[0].first {
			for _, off := range []int64{s.lo, s.hi - 1} {
				ta, _ := orig.firstAt(off)
				tb, ok := re.firstAt(off)
				if !ok {
					continue // counted in sent
				}
				if !fwd.near(ta, tb) && !(recovered(ta) && fwd.nearBy(ta, tb, rtt)) && n < limit {
					add("byte %d first sent at %s, now %s", off, ms(ta), ms(tb))
					n++
				}
			}
		}
	}
	// Each transmission is compared with the one before it: a kernel
	// that falls behind a little in every round trip shows here instead.
	if len(orig.first) > 0 && len(re.first) > 0 {
		ta, tb := orig.first[len(orig.first)-1].at, re.first[len(re.first)-1].at
		if d := tb - ta; d > max(tol, time.Duration(behaviourPercent/100*float64(ta))) || -d > max(tol, time.Duration(behaviourPercent/100*float64(ta))) {
			add("the last new data sent at %s, now %s", ms(ta), ms(tb))
		}
	}
	out = append(out, retransDiff(orig, re, fwd, back, tol, "", limit)...)
	out = append(out, retransDiff(re, orig, back, fwd, tol, "now ", limit)...)
	n = 0
	for _, s := range orig.acks {
		at, ok := re.ackedBy(s.ack)
		if (!ok || fwd.late(s.at, at) > fwd.tolerance(s.at)+ackSlack) && n < limit {
			if ok {
				add("ack %d at %s, now at %s", s.ack, ms(s.at), ms(at))
			} else {
				add("ack %d at %s, now never", s.ack, ms(s.at))
			}
			n++
		}
	}
	n = 0
	for _, s := range orig.sacks {
		at, ok := re.sackedBy(s.lo, s.hi, s.dsack)
		if !ok && s.dsack && !overlapsSpans(re.peerAgain, s.lo, s.hi) {
			// No copy of those bytes came twice in the re-capture: the
			// peer's spurious retransmission (or the path's duplicate)
			// the D-SACK answered is what is missing, not the local
			// kernel's report of it.
			continue
		}
		if (!ok || fwd.late(s.at, at) > fwd.tolerance(s.at)+ackSlack) && n < limit {
			what := "SACK"
			if s.dsack {
				what = "D-SACK"
			}
			add("%s %d:%d at %s, now %s", what, s.lo, s.hi, ms(s.at), atOrNever(at, ok))
			n++
		}
	}
	switch {
	case (orig.fin == nil) != (re.fin == nil):
		add("FIN %s, now %s", present(orig.fin), present(re.fin))
	case orig.fin != nil && (orig.finSeq != re.finSeq || !fwd.near(*orig.fin, *re.fin)):
		add("FIN after %d bytes at %s, now after %d at %s", orig.finSeq, ms(*orig.fin), re.finSeq, ms(*re.fin))
	}
	switch {
	case (orig.rst == nil) != (re.rst == nil):
		add("RST %s, now %s", present(orig.rst), present(re.rst))
	case orig.rst != nil && !fwd.near(*orig.rst, *re.rst):
		add("RST at %s, now at %s", ms(*orig.rst), ms(*re.rst))
	}
	return out
}

// sameTrigger reports whether two retransmissions' triggers are of one
// kind as scripts count them: fast retransmit and RACK, on an ACK or when
// RACK's reordering timer fires (which of the two follows when the ACKs
// came, microseconds a re-capture does not repeat), a loss probe, an RTO.
func sameTrigger(a, b string) bool {
	rack := func(k string) bool { return k == trigAck || k == trigTimer }
	return a == b || rack(a) && rack(b)
}

func atOrNever(at time.Duration, ok bool) string {
	if !ok {
		return "never"
	}
	return "at " + ms(at)
}

func present(t *time.Duration) string {
	if t == nil {
		return "none"
	}
	return "at " + ms(*t)
}

// retransDiff lists retransmissions of a that b has no counterpart of: an
// overlapping range, a trigger of the same kind (sameTrigger), near in
// time by c (from a to b) or by rev (from b to a: the tolerance is of the
// time since the event before, and the two captures may have other events
// before it; a script judges by the original's). A retransmission whose
// bytes b's peer had acknowledged sooner after their first transmission
// than a's kernel waited for it, where a's peer had not, answers what the
// path did to a's packets or its peer's ACKs (unansweredSooner): the
// peer's input differed, not the kernel's decision, and a replay, which
// injects the captured peer's answers, cannot see it.
func retransDiff(a, b *behaviour, c, rev *clock, tol time.Duration, now string, limit int) []string {
	var out []string
	for _, r := range a.retrans {
		if r.raced || unansweredSooner(r, a, b, tol) {
			continue
		}
		found := false
		for _, s := range b.retrans {
			if s.lo < r.hi && r.lo < s.hi && sameTrigger(s.kind, r.kind) && (c.near(r.at, s.at) || rev.near(s.at, r.at)) {
				found = true
				break
			}
		}
		if !found && len(out) < limit {
			out = append(out, fmt.Sprintf("%sretransmission of %d:%d (%s) at %s has no counterpart", now, r.lo, r.hi, r.kind, ms(r.at)))
		}
	}
	return out
}

// unansweredSooner reports whether a's retransmission r went out only
// because a's peer had not acknowledged its bytes, where b's peer had
// acknowledged them sooner (more than tol) after their first transmission
// than r came after theirs in a: the first transmission or the ACK was
// lost on a's path and not on b's (a loss that fell elsewhere from run to
// run). A retransmission of bytes its peer had acknowledged (spurious) is
// the kernel's own.
func unansweredSooner(r retransmission, a, b *behaviour, tol time.Duration) bool {
	if r.ackedBefore {
		return false
	}
	sentA, ok1 := a.firstAt(r.hi - 1)
	sentB, ok2 := b.firstAt(r.hi - 1)
	ackB, ok3 := b.peerAckedAt(r.lo, r.hi)
	return ok1 && ok2 && ok3 && ackB-sentB+tol < r.at-sentA
}

// peerAckedAt returns when the peer first acknowledged [lo, hi) of the
// local data, cumulatively or by SACK, or false.
func (b *behaviour) peerAckedAt(lo, hi int64) (time.Duration, bool) {
	for _, s := range b.peerAcked {
		if s.hi >= hi && (s.lo < 0 || s.lo <= lo) {
			return s.at, true
		}
	}
	return 0, false
}

// TestBehaviourPathLoss: two captures of one exchange over a path that
// loses 5% (testdata/behaviour, the mutation matrix's; README there), each
// pair the same kernel's behaviour on inputs the path made differ, where
// rules that read the path's doing as the kernel's found a difference.
func TestBehaviourPathLoss(t *testing.T) {
	read := func(name string, local string) *behaviour {
		b, err := readBehaviour(filepath.Join("../../testdata/behaviour", name), capture.HostPort{Addr: netip.MustParseAddr(local)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	find := func(b *behaviour, lo int64) retransmission {
		for _, r := range b.retrans {
			if r.lo == lo {
				return r
			}
		}
		t.Fatalf("no retransmission of byte %d in %+v", lo, b.retrans)
		return retransmission{}
	}
	// The client's request 300:400 is lost; its RTO fires 210 ms later in
	// one capture, 218 ms in the other, 1.4 ms after it answered the
	// server's own RTO with a D-SACK: a pure ACK does not arm the timer,
	// so both are RTOs; and they are counterparts whichever capture's
	// times the tolerance is taken from (the original's: 12.5% of 210 ms).
	c1, c2 := read("exchanges-loss-client.pcap", "10.200.0.1"), read("exchanges-loss-client-again.pcap", "10.200.0.1")
	for _, b := range []*behaviour{c1, c2} {
		if r := find(b, 300); r.kind != trigRTO {
			t.Errorf("retransmission of 300:400 by %s, want %s", r.kind, trigRTO)
		}
	}
	if d := behaviourDiff(c1, c2); len(d) != 0 {
		t.Errorf("client: differences %v", d)
	}
	// The server's response 42000:45000: the client acknowledged it all
	// in 5 ms in one capture; in the other the path lost its last segment,
	// which the server sent again by RTO. Its peer's input differed.
	s1, s2 := read("exchanges-loss-server.pcap", "10.200.0.2"), read("exchanges-loss-server-again.pcap", "10.200.0.2")
	if r := find(s2, 44896); r.kind != trigRTO || r.ackedBefore {
		t.Errorf("retransmission of 44896:45000: %+v, want an RTO of unacknowledged bytes", r)
	}
	if d := behaviourDiff(s1, s2); len(d) != 0 {
		t.Errorf("server: differences %v", d)
	}
	// Had the first capture's peer acknowledged them no sooner than the
	// second's RTO came, the RTO would be the kernel's doing.
	for i := range s1.peerAcked {
		if s1.peerAcked[i].hi >= 45000 {
			s1.peerAcked[i].at += 300 * time.Millisecond
		}
	}
	if d := behaviourDiff(s1, s2); len(d) == 0 {
		t.Errorf("server: an RTO its peer's input did not call for, no difference")
	}
}

// TestBehaviourDiff: a real capture with losses (a 4 MB transfer over 20
// ms with 1% loss, the server's side) is the same as itself, and each kind
// of change the rules judge makes it differ; changes they do not judge
// (an ACK late by less than the delayed-ACK slack) do not.
func TestBehaviourDiff(t *testing.T) {
	const pcap = "../../../shared/captures/local/bulk4m_delay20_loss1_srvside_snap128.pcap"
	needShared(t, pcap)
	f, err := os.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flows, _, err := capture.ReadFlows(f, pcap, capture.FlowOptions{})
	if err != nil || len(flows) != 1 {
		t.Fatalf("%d flows, %v", len(flows), err)
	}
	read := func() *behaviour { return flowBehaviour(flows[0]) }
	orig := read()
	kinds := map[string]int{}
	for _, r := range orig.retrans {
		kinds[r.kind]++
	}
	t.Logf("rtt %s, %d bytes sent, %d first transmissions, retransmissions by trigger %v, %d ACK steps",
		orig.rtt, orig.sent, len(orig.first), kinds, len(orig.acks))
	if len(orig.retrans) == 0 || orig.sent < 4<<20 || orig.fin == nil || orig.rtt < 20*time.Millisecond {
		t.Fatalf("behaviour of the capture not read: %+v", orig)
	}
	if d := behaviourDiff(orig, read()); len(d) != 0 {
		t.Fatalf("a capture differs from itself: %v", d)
	}
	later := func(d time.Duration) func(b *behaviour) {
		return func(b *behaviour) {
			for i := len(b.first) / 2; i < len(b.first); i++ {
				b.first[i].at += d
			}
		}
	}
	// laterFrom shifts the data from its i-th first transmission on, its
	// retransmissions too; laterAll the second half of it.
	laterFrom := func(i int, d time.Duration) func(b *behaviour) {
		return func(b *behaviour) {
			from := b.first[i].at
			for j := i; j < len(b.first); j++ {
				b.first[j].at += d
			}
			for j := range b.retrans {
				if b.retrans[j].at >= from {
					b.retrans[j].at += d
				}
			}
		}
	}
	laterAll := func(d time.Duration) func(b *behaviour) { return laterFrom(len(orig.first)/2, d) }
	beforeLoss := 0 // first transmissions before the first retransmission
	for beforeLoss < len(orig.first) && orig.first[beforeLoss].at < orig.retrans[0].at {
		beforeLoss++
	}
	cases := []struct {
		name   string
		change func(b *behaviour)
		differ bool
	}{
		{"handshake options", func(b *behaviour) { b.synOpts = "mss" }, true},
		{"half the data a round trip and a half later", laterAll(orig.rtt * 3 / 2), true},
		{"half the data 3/4 of a round trip later, after a loss", laterAll(orig.rtt * 3 / 4), false},
		{"data before the first loss 3/4 of a round trip later", laterFrom(beforeLoss/2, orig.rtt*3/4), true},
		{"half the data 1 ms later", later(time.Millisecond), false},
		{"a retransmission missing", func(b *behaviour) { b.retrans = b.retrans[1:] }, true},
		{"a retransmission by another trigger", func(b *behaviour) { b.retrans[0].kind += "x" }, true},
		{"RACK's timer for RACK on an ACK", func(b *behaviour) {
			for i := range b.retrans {
				if b.retrans[i].kind == trigAck {
					b.retrans[i].kind = trigTimer
					return
				}
			}
			t.Fatal("no retransmission on an ACK to change")
		}, false},
		{"an ACK 30 ms late", func(b *behaviour) { b.acks[len(b.acks)/2].at += 30 * time.Millisecond }, false},
		{"an ACK 100 ms late", func(b *behaviour) { b.acks[len(b.acks)/2].at += 100 * time.Millisecond }, true},
		{"no FIN", func(b *behaviour) { b.fin = nil }, true},
		{"a RST", func(b *behaviour) { at := time.Second; b.rst = &at }, true},
	}
	for _, c := range cases {
		re := read()
		c.change(re)
		d := behaviourDiff(orig, re)
		if (len(d) > 0) != c.differ {
			t.Errorf("%s: differences %v, want some: %v", c.name, d, c.differ)
		}
	}
	// A D-SACK the original sent for a copy of 1000:2000 that came twice:
	// a re-capture without it differs only if that copy came twice there
	// too (else the peer's spurious retransmission is what is missing).
	dup := txSpan{1000, 2000, time.Second}
	withDSACK := read()
	withDSACK.sacks = append(withDSACK.sacks, sackSeen{lo: 1000, hi: 2000, dsack: true, at: time.Second})
	withDSACK.peerAgain = append(withDSACK.peerAgain, dup)
	if d := behaviourDiff(withDSACK, read()); len(d) != 0 {
		t.Errorf("no copy came twice, no D-SACK owed: differences %v", d)
	}
	again := read()
	again.peerAgain = append(again.peerAgain, dup)
	if d := behaviourDiff(withDSACK, again); len(d) == 0 {
		t.Errorf("the copy came twice and no D-SACK answered it: no difference")
	}
}
