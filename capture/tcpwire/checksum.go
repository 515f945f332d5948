package tcpwire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum adds b as big-endian 16-bit words to s, one's complement, and folds
// the sum to 16 bits (0 only if s and b are all zeros). It adds 64 bits at
// a time, carries counted apart: a capture has every packet verified, and
// 2^64 ≡ 1 modulo 2^16-1, so the folded sum is the same.
func Sum(b []byte, s uint32) uint32 {
	acc := uint64(s)
	var carries, c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		carries += c
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), 0)
		carries += c
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), 0)
		carries += c
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), 0)
		carries += c
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		carries += c
		b = b[8:]
	}
	var tail uint64
	for len(b) >= 2 {
		tail += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0]) << 8
	}
	acc, c = bits.Add64(acc, tail, 0)
	carries += c
	acc, c = bits.Add64(acc, carries, 0)
	acc += c // cannot carry again: acc wrapped to less than carries
	acc = acc>>32 + acc&0xFFFFFFFF
	for acc>>16 != 0 {
		acc = acc&0xFFFF + acc>>16
	}
	return uint32(acc)
}

// Fold folds a one's complement sum to 16 bits.
func Fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return uint16(s)
}

// Checksum is the Internet checksum of b with initial added (a pseudo
// header's sum): 0 when b holds a correct checksum.
func Checksum(b []byte, initial uint32) uint16 { return ^Fold(Sum(b, initial)) }

// PseudoHeaderSum is the sum of the TCP, UDP or ICMPv6 pseudo header, not
// folded.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint32
	if src.Is4() && dst.Is4() {
		a, b := src.As4(), dst.As4()
		s = Sum(b[:], Sum(a[:], 0))
	} else {
		a, b := src.As16(), dst.As16()
		s = Sum(b[:], Sum(a[:], 0))
	}
	return s + uint32(proto) + uint32(length)
}
