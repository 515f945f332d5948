package tcpwire

import (
	"fmt"
	"strings"
)

// Flags is the TCP flags field as a bitmask, including AE (the former NS
// bit, byte 12 bit 0) at bit 8.
type Flags uint16

const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
	FlagAE
)

// FlagECN is the three bits that AccECN reads as one counter (ACE).
const FlagECN = FlagECE | FlagCWR | FlagAE

// aceBits are the bits of the ACE counter, lowest first.
var aceBits = [...]Flags{FlagECE, FlagCWR, FlagAE}

// Has reports whether all flags in m are set.
func (f Flags) Has(m Flags) bool { return f&m == m }

// flagLetters spells each flag in the order scripts write them (the
// upstream scripts' "S.", "FP.", "SEW", "SE.", "U."): ACK's "." last.
var flagLetters = [...]struct {
	f Flags
	c byte
}{{FlagSYN, 'S'}, {FlagFIN, 'F'}, {FlagRST, 'R'}, {FlagPSH, 'P'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'W'}, {FlagAE, 'A'}, {FlagACK, '.'}}

// String spells the flags as a script does: S, F, R, P, U, E (ECE), W
// (CWR), A (AE), then "." for ACK; "-" for none.
func (f Flags) String() string { return f.spell(false) }

// ACEString spells the flags as an AccECN script does: the ECE, CWR and AE
// bits as one digit (ECE 1, CWR 2, AE 4) after the other flags ("S.5").
func (f Flags) ACEString() string { return f.spell(true) }

func (f Flags) spell(ace bool) string {
	var b strings.Builder
	for _, x := range flagLetters {
		if f&x.f != 0 && !(ace && x.f&FlagECN != 0) {
			b.WriteByte(x.c)
		}
	}
	if ace {
		n := 0
		for i, bit := range aceBits {
			if f&bit != 0 {
				n |= 1 << i
			}
		}
		b.WriteByte(byte('0' + n))
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// ParseFlags reads flags as a script writes them: "-" for none, otherwise
// letters of ".FSRPUEWA", or one ACE digit 0-7 instead of the E, W and A
// letters (then ace is true).
func ParseFlags(s string) (f Flags, ace bool, err error) {
	if s == "-" {
		return 0, false, nil
	}
	ecn := false
	for _, c := range s {
		if i := strings.IndexRune("SFRPUEWA.", c); i >= 0 {
			x := flagLetters[i].f
			if x&FlagECN != 0 {
				if ace {
					return 0, false, fmt.Errorf("conflicting TCP flag %q", c)
				}
				ecn = true
			}
			f |= x
			continue
		}
		if c < '0' || c > '7' {
			return 0, false, fmt.Errorf("invalid TCP flag %q", c)
		}
		if ecn || ace {
			return 0, false, fmt.Errorf("conflicting TCP flag %q", c)
		}
		ace = true
		for i, bit := range aceBits {
			if (c-'0')&(1<<i) != 0 {
				f |= bit
			}
		}
	}
	return f, ace, nil
}
