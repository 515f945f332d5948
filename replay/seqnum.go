package replay

// seqnum is a TCP sequence number (or TS val): 32 bits that wrap around,
// compared only through their signed distance, never with a bare `<`.
type seqnum uint32

// add returns v moved forward by d (modulo 2^32).
func (v seqnum) add(d uint32) seqnum { return v + seqnum(d) }

// dist is the signed distance from w to v (v - w), valid when the two are
// less than 2^31 apart.
func (v seqnum) dist(w seqnum) int32 { return int32(uint32(v) - uint32(w)) }
