package synth

import (
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// sentLog is what the local side sent that occupies sequence space, in
// the order it was captured, indexed by 64 KiB blocks of sequence space:
// an inbound ACK looks up the transmissions of one byte among the few
// segments that touch its block, not among every segment sent before (a
// bulk sender's capture has hundreds of thousands, and as many ACKs).
type sentLog struct {
	segs   []sentSeg
	blocks map[uint32][]int32 // block (seq >> blockShift) -> indices into segs, in order
}

// sentSeg is a local segment that occupies sequence space, as captured.
type sentSeg struct {
	start, end tcpwire.Seq
	at         time.Time
}

const blockShift = 16

// add logs a segment [start, end), non-empty, shorter than 2^31 bytes.
func (l *sentLog) add(start, end tcpwire.Seq, at time.Time) {
	if l.blocks == nil {
		l.blocks = make(map[uint32][]int32)
	}
	i := int32(len(l.segs))
	l.segs = append(l.segs, sentSeg{start, end, at})
	last := uint32(end.Add(^uint32(0))) >> blockShift
	for blk := uint32(start) >> blockShift; ; blk = (blk + 1) & (1<<(32-blockShift) - 1) {
		l.blocks[blk] = append(l.blocks[blk], i)
		if blk == last {
			break
		}
	}
}

// latest returns the capture time of the last segment logged that holds
// byte x and was sent no later than t, and how many such segments there
// are (0: none).
func (l *sentLog) latest(x tcpwire.Seq, t time.Time) (time.Time, int) {
	var at time.Time
	n := 0
	for _, i := range l.blocks[uint32(x)>>blockShift] {
		s := &l.segs[i]
		if s.start.LessThanEq(x) && x.LessThan(s.end) && !t.Before(s.at) {
			at, n = s.at, n+1
		}
	}
	return at, n
}
