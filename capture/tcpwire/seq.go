package tcpwire

// Seq is a TCP sequence number (or TS value). Comparisons wrap around
// modulo 2^32 (RFC 1982 serial number arithmetic); never compare two Seq
// with < directly.
type Seq uint32

// Add returns s advanced by n.
func (s Seq) Add(n uint32) Seq { return s + Seq(n) }

// Diff returns the signed distance s - o, correct across the wrap when the
// two are less than 2^31 apart.
func (s Seq) Diff(o Seq) int32 { return int32(uint32(s) - uint32(o)) }

// LessThan reports whether s comes before o in sequence space.
func (s Seq) LessThan(o Seq) bool { return s.Diff(o) < 0 }

// LessThanEq reports whether s comes before or equals o in sequence space.
func (s Seq) LessThanEq(o Seq) bool { return s.Diff(o) <= 0 }
