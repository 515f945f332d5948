package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/synth"
	"github.com/urfave/cli/v2"
)

// flowSelector is what --flow names: a connection's number in 'pcap2pkt
// flows', one endpoint (IP:PORT, or :PORT for a port on either side), or
// both ends (IP:PORT-IP:PORT, in either order).
type flowSelector struct {
	text  string
	index int                // 0 unless a number was given
	ends  []capture.HostPort // one or two
	port  uint16             // for :PORT
}

func flowFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "flow", Usage: usage +
		"; `FLOW` is a number from 'pcap2pkt flows', IP:PORT-IP:PORT (either order), IP:PORT, or :PORT (either side)"}
}

func parseFlowSelector(s string) (flowSelector, error) {
	sel := flowSelector{text: s}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 {
			return sel, fmt.Errorf("--flow %s: connections are numbered from 1", s)
		}
		sel.index = n
		return sel, nil
	}
	if p, ok := strings.CutPrefix(s, ":"); ok {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return sel, fmt.Errorf("--flow %s: want a port number after ':'", s)
		}
		sel.port = uint16(n)
		return sel, nil
	}
	parts := strings.Split(s, "-")
	if len(parts) > 2 {
		return sel, fmt.Errorf("--flow %s: want N, IP:PORT-IP:PORT, IP:PORT or :PORT", s)
	}
	for _, p := range parts {
		hp, err := capture.ParseHostPort(p)
		if err != nil {
			return sel, fmt.Errorf("--flow %s: %v", s, err)
		}
		sel.ends = append(sel.ends, hp)
	}
	return sel, nil
}

// matches reports whether f is a connection sel names.
func (sel flowSelector) matches(f *capture.Flow) bool {
	switch {
	case sel.index > 0:
		return f.Index == sel.index
	case sel.port != 0:
		return f.A.Port() == sel.port || f.B.Port() == sel.port
	case len(sel.ends) == 1:
		return sel.ends[0].Matches(f.A) || sel.ends[0].Matches(f.B)
	}
	return sel.ends[0].Matches(f.A) && sel.ends[1].Matches(f.B) ||
		sel.ends[0].Matches(f.B) && sel.ends[1].Matches(f.A)
}

// flowSelection reads --flow; ok is false when it is not given.
func flowSelection(c *cli.Context) (sel flowSelector, ok bool, err error) {
	if !c.IsSet("flow") {
		return sel, false, nil
	}
	sel, err = parseFlowSelector(c.String("flow"))
	if err != nil {
		return sel, false, withCode(exitInput, err)
	}
	return sel, true, nil
}

// selectResults keeps the connections --flow names (all of them without
// it); chosen says whether --flow was given. Naming none is an error.
func selectResults(c *cli.Context, results []synth.Result) (only []synth.Result, chosen bool, err error) {
	sel, chosen, err := flowSelection(c)
	if err != nil || !chosen {
		return results, chosen, err
	}
	for _, r := range results {
		if sel.matches(r.Flow) {
			only = append(only, r)
		}
	}
	if len(only) == 0 {
		return nil, true, failf(exitInput, "no flow %s: the capture has %d TCP connection(s) (see 'pcap2pkt flows')", sel.text, len(results))
	}
	return only, true, nil
}
