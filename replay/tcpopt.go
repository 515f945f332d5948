package replay

// This file prints the TCP options the kernel sent in script syntax.

import (
	"fmt"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// optionsToAST converts wire options into the script's option list, for
// printing. Options the script language cannot write are left out and
// described in the notes returned.
func optionsToAST(opts []tcpwire.Option) (*parser.TCPOptions, []string) {
	res := &parser.TCPOptions{}
	var unknown []string
	for _, o := range opts {
		t, ok := parser.TCPOptionFromWire(o)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("kind %d len %d", o.Kind, o.Len))
			continue
		}
		res.List = append(res.List, &t)
	}
	return res, unknown
}

// describeOption prints one wire option in script syntax.
func describeOption(o tcpwire.Option) string {
	l, unknown := optionsToAST([]tcpwire.Option{o})
	if len(unknown) > 0 {
		return unknown[0]
	}
	return strings.Trim(parser.FormatTCPOptions(l), "<>")
}

// formatWireOptions prints wire options in script syntax.
func formatWireOptions(opts []tcpwire.Option) string {
	if len(opts) == 0 {
		return "<>"
	}
	l, unknown := optionsToAST(opts)
	s := parser.FormatTCPOptions(l)
	if len(unknown) > 0 {
		s += " and " + strings.Join(unknown, ", ")
	}
	return s
}
