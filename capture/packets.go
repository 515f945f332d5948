package capture

import (
	"iter"
	"math/bits"
)

// Packets holds a flow's packet records in chunks of chunkLen records (the
// first grows up to that size as a slice does, so that a short flow takes
// little), so that a long connection's records are never copied to
// larger storage as it grows: copies that left up to as much again as
// garbage, and reserved room the garbage collector counted as live, which
// put its next run off by as much. A record keeps its address while the
// flow grows.
type Packets struct {
	chunks [][]FlowPacket
	n      int
}

// chunkBits gives the size of a chunk: 4,096 records (256 KiB).
const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

// firstChunk is the capacity a flow's first chunk starts with.
const firstChunk = 1 << firstBits

// Len is the number of records.
func (ps *Packets) Len() int { return ps.n }

// At returns record i (0 <= i < Len).
func (ps *Packets) At(i int) *FlowPacket { return &ps.chunks[i>>chunkBits][i&chunkMask] }

// All yields each record with its index, in order.
func (ps *Packets) All() iter.Seq2[int, *FlowPacket] {
	return func(yield func(int, *FlowPacket) bool) {
		i := 0
		for _, c := range ps.chunks {
			for k := range c {
				if !yield(i, &c[k]) {
					return
				}
				i++
			}
		}
	}
}

// Append adds p at the end and returns where it is kept.
func (ps *Packets) Append(p FlowPacket) *FlowPacket {
	if ps.full() {
		ps.grow(nil)
	}
	return ps.add(p)
}

// full reports whether the last chunk has no room for another record.
func (ps *Packets) full() bool {
	if len(ps.chunks) == 0 {
		return true
	}
	c := ps.chunks[len(ps.chunks)-1]
	return len(c) == cap(c)
}

// grow makes room for a record: a new chunk, or the first one larger
// (twice its size, at most chunkLen). Chunks come from pool if it has
// some.
func (ps *Packets) grow(pool *chunkPool) {
	last := len(ps.chunks) - 1
	if last == 0 && len(ps.chunks[0]) < chunkLen {
		c := ps.chunks[0]
		bigger := pool.take(min(2*cap(c), chunkLen))
		ps.chunks[0] = append(bigger, c...)
		pool.put(c[:0])
		return
	}
	want := chunkLen
	if last < 0 {
		want = firstChunk
	}
	ps.chunks = append(ps.chunks, pool.take(want))
}

// add appends p to the last chunk, which has room for it.
func (ps *Packets) add(p FlowPacket) *FlowPacket {
	last := len(ps.chunks) - 1
	c := append(ps.chunks[last], p)
	ps.chunks[last] = c
	ps.n++
	return &c[len(c)-1]
}

// chunkPool keeps the chunks of flows that Release gave back, up to
// maxPooled records of capacity (16 MiB): enough for the flows a busy
// capture ends within a sweep, while a huge flow's storage goes back to
// the garbage collector. free[k] holds empty chunks of capacity from
// firstChunk<<k (chunks have a power of two's capacity, from firstChunk
// to chunkLen).
type chunkPool struct {
	free   [chunkBits - firstBits + 1][][]FlowPacket
	pooled int // records of capacity in free
}

const (
	firstBits = 4 // firstChunk is 1<<firstBits
	maxPooled = 1 << 18
)

// class is the list of free a chunk of capacity n goes to.
func class(n int) int { return bits.Len(uint(n)) - 1 - firstBits }

// take returns an empty chunk of capacity n or more (n a power of two
// from firstChunk to chunkLen): the smallest pooled one large enough, else
// a new one of capacity n. A nil pool has no chunks.
func (pl *chunkPool) take(n int) []FlowPacket {
	if pl != nil {
		for k := class(n); k < len(pl.free); k++ {
			if l := pl.free[k]; len(l) > 0 {
				c := l[len(l)-1]
				l[len(l)-1] = nil
				pl.free[k] = l[:len(l)-1]
				pl.pooled -= cap(c)
				return c
			}
		}
	}
	return make([]FlowPacket, 0, n)
}

// put gives c back to the pool, which keeps it if it has room.
func (pl *chunkPool) put(c []FlowPacket) {
	if pl == nil || cap(c) < firstChunk || pl.pooled+cap(c) > maxPooled {
		return
	}
	// The copies of long option lists would otherwise stay alive in the
	// pool.
	clear(c[:cap(c)])
	k := class(cap(c))
	pl.free[k] = append(pl.free[k], c[:0])
	pl.pooled += cap(c)
}
