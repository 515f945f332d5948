package synth

import (
	"fmt"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// rtoMin is Linux's least retransmission timeout (TCP_RTO_MIN): a
// retransmission after at least this long without an ACK can be the RTO's.
const rtoMin = 200 * time.Millisecond

// retransLookback bounds how far back retransCause looks for the data's
// first transmission, so that synthesis stays linear in the packets.
const retransLookback = 4096

const retransUndecided = "The kernel retransmits (its own timer or fast retransmit)."

// retransCause says, from what the capture shows before packet i (a local
// retransmission of data; sndMax is the highest sequence number sent before
// it), what sent it: fast retransmit or RACK when the peer reported
// duplicate ACKs or SACK blocks since the data was first sent; an RTO when
// nothing came from the peer for at least rtoMin and it is the oldest
// unacknowledged data; a tail loss probe when it repeats the last segment
// sent sooner than an RTO could fire. Anything else is said to be
// undecided rather than guessed.
func retransCause(f *capture.Flow, i int, local capture.Side, sndMax tcpwire.Seq) string {
	p := f.Packets.At(i)
	end := p.Seq.Add(uint32(p.PayloadLen()))
	var lastIn time.Time
	var lastAck tcpwire.Seq
	ackSeen, found := false, false
	dup, sacked := 0, false
	var prevAck tcpwire.Seq // the ACK before the one looked at, going back
	for j := i - 1; j >= 0 && j >= i-retransLookback; j-- {
		q := f.Packets.At(j)
		if q.From == local {
			if !found && q.PayloadLen() > 0 && !q.Seq.Add(uint32(q.PayloadLen())).LessThan(end) && q.Seq.LessThan(end) && !p.Seq.LessThan(q.Seq) {
				found = true
			}
			continue
		}
		if found && !lastIn.IsZero() {
			break
		}
		if lastIn.IsZero() {
			lastIn = q.Time()
		}
		if !q.Flags.Has(tcpwire.FlagACK) {
			continue
		}
		if !ackSeen {
			lastAck, ackSeen = q.Ack, true
		} else if !found && q.Ack == prevAck && q.PayloadLen() == 0 {
			dup++
		}
		prevAck = q.Ack
		if !found && q.Options().NumSACK > 0 {
			sacked = true
		}
	}
	if !found || lastIn.IsZero() {
		return retransUndecided
	}
	quiet := p.Time().Sub(lastIn)
	switch {
	case sacked:
		return fmt.Sprintf("The kernel retransmits: fast retransmit or RACK (the peer sent %d duplicate ACKs with SACK blocks since the data was first sent).", dup)
	case dup >= 3:
		return fmt.Sprintf("The kernel retransmits: fast retransmit or RACK (the peer sent %d duplicate ACKs since the data was first sent).", dup)
	case quiet >= rtoMin && ackSeen && lastAck == p.Seq:
		return fmt.Sprintf("The kernel retransmits: RTO (nothing from the peer for %s; this is the oldest unacknowledged data).", fmtDur(quiet))
	case quiet < rtoMin && end == sndMax:
		return fmt.Sprintf("The kernel retransmits: tail loss probe (the last segment sent, again after %s without an ACK).", fmtDur(quiet))
	}
	return retransUndecided
}
