package capture

// This file reads a capture ahead of its reader's caller, on a goroutine
// of its own (Reader.ReadAhead).

// aheadBatch is packets that the read-ahead goroutine read and decoded,
// with what they point to.
type aheadBatch struct {
	pkts []Packet
	icmp []ICMPError // the ICMP errors of pkts
	data []byte      // the frames of pkts (but one too long to fit)
	err  error       // after the last packet: io.EOF or the damage
}

// A batch holds up to aheadPackets packets, and ends early when less than
// aheadRoom bytes of its frames' room are left.
const (
	aheadPackets = 1024
	aheadBytes   = 256 << 10
	aheadRoom    = 64 << 10
)

// readAhead is the state of a reader that reads ahead.
type readAhead struct {
	batches chan *aheadBatch // read, in order
	free    chan *aheadBatch // handed out and done with, for reuse (room for all: fill, batches and cur hold at most three)
	quit    chan struct{}    // Stop was called
	cur     *aheadBatch      // the batch Next hands packets out of
	i       int              // the next packet of cur to hand out
}

// ReadAhead makes the reader read and decode the capture on a goroutine of
// its own, a few batches of packets ahead of Next, so that reading takes a
// core while the caller works on the packets on another (a capture of a
// few long connections spends the first part of its synthesis reading
// them, a core otherwise idle). What Next returns stays as without it
// (each packet valid until the next call); Stats may be called only once
// Next returned an error, and Stop ends the reading when the caller stops
// before that. Call it before the first Next.
func (r *Reader) ReadAhead() {
	if r.ahead != nil || r.err != nil {
		return
	}
	a := &readAhead{batches: make(chan *aheadBatch, 1), free: make(chan *aheadBatch, 4), quit: make(chan struct{})}
	r.ahead = a
	go r.fill(a)
}

// Stop ends the reading ahead: the caller will call Next no more.
func (r *Reader) Stop() {
	if a := r.ahead; a != nil {
		select {
		case <-a.quit:
		default:
			close(a.quit)
		}
	}
}

// fill reads batches until the capture ends or the caller stops.
func (r *Reader) fill(a *readAhead) {
	for {
		var b *aheadBatch
		select {
		case b = <-a.free:
			b.pkts, b.icmp, b.data = b.pkts[:0], b.icmp[:0], b.data[:0]
		default:
			b = &aheadBatch{pkts: make([]Packet, 0, aheadPackets), data: make([]byte, 0, aheadBytes)}
		}
		r.batch = b
		for b.err == nil && len(b.pkts) < aheadPackets && cap(b.data)-len(b.data) >= aheadRoom {
			n := len(b.pkts)
			b.pkts = b.pkts[:n+1] // next decodes into this packet
			p, err := r.next()
			switch {
			case err != nil:
				b.err = err
				b.pkts = b.pkts[:n]
			case p == nil:
				b.pkts = b.pkts[:n]
			case p.ICMPError != nil:
				if b.icmp == nil {
					// Room for every packet: pointers into it stay.
					b.icmp = make([]ICMPError, 0, aheadPackets)
				}
				b.icmp = append(b.icmp, *p.ICMPError)
				p.ICMPError = &b.icmp[len(b.icmp)-1]
			}
		}
		r.batch = nil
		select {
		case a.batches <- b:
		case <-a.quit:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// keep copies a frame into the batch's room, so that the packet decoded
// from it stays valid when the reader reads on.
func (b *aheadBatch) keep(frame []byte) []byte {
	if cap(b.data)-len(b.data) < len(frame) {
		return append([]byte(nil), frame...)
	}
	n := len(b.data)
	b.data = append(b.data, frame...)
	return b.data[n:len(b.data):len(b.data)]
}

// nextAhead is Next reading ahead.
func (r *Reader) nextAhead(a *readAhead) (*Packet, error) {
	for {
		if b := a.cur; b != nil {
			if a.i < len(b.pkts) {
				a.i++
				return &b.pkts[a.i-1], nil
			}
			if b.err != nil {
				r.err = b.err
				return nil, b.err
			}
			select {
			case a.free <- b:
			default:
			}
		}
		a.cur, a.i = <-a.batches, 0
	}
}
