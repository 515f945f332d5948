package parser

import "testing"

func TestEqual(t *testing.T) {
	base := "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // c\n+0 > S 0:0(0) <mss 1460>\n"
	tests := []struct {
		other string
		equal bool
	}{
		{"   0   socket(...,SOCK_STREAM,IPPROTO_TCP)=3   // c\n\n\n+0.000 > S 0:0(0) <mss 1460>", true},
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // d\n+0 > S 0:0(0) <mss 1460>\n", false},
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // c\n+0 > S. 0:0(0) <mss 1460>\n", false},
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // c\n+0 > S 0:0(0) <mss 1461>\n", false},
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // c\n+0 > S 0:0(0)\n", false},
		{"0 socket(..., SOCK_STREAM, IPPROTO_UDP) = 3 // c\n+0 > S 0:0(0) <mss 1460>\n", false},
		{"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // c\n0 > S 0:0(0) <mss 1460>\n", false},
	}
	a := mustParse(t, base)
	for _, tt := range tests {
		b := mustParse(t, tt.other)
		if got := Equal(a, b); got != tt.equal {
			t.Errorf("Equal(%q, %q) = %v", base, tt.other, got)
		}
	}
	if !Equal(nil, nil) || Equal(a, nil) {
		t.Error("nil handling")
	}
}
