package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/urfave/cli/v2"
)

// pcap2pkt stands in for packetdrill itself: invoked as "packetdrill" (a
// symlink) or as "pcap2pkt packetdrill", it takes packetdrill's command
// line exactly (getopt_long rules: options anywhere, "--opt value" and
// "--opt=value", unique prefixes of long names, -v, -D NAME=VALUE and
// -DNAME=VALUE, "--" ending options) and runs 'replay'.

// isPacketdrillName reports whether argv[0] asks for packetdrill's command
// line.
func isPacketdrillName(argv0 string) bool {
	return filepath.Base(argv0) == "packetdrill"
}

// packetdrillArgs translates packetdrill's arguments into a 'replay'
// command line.
func packetdrillArgs(in []string) ([]string, error) {
	out := []string{"replay"}
	var scripts []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		switch {
		case a == "--":
			scripts = append(scripts, in[i+1:]...)
			i = len(in)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			full, err := longOption(name)
			if err != nil {
				return nil, err
			}
			takes, _ := replay.OptionTakesValue(full)
			switch {
			case takes && !hasVal:
				if i+1 >= len(in) {
					return nil, fmt.Errorf("option '--%s' requires an argument", full)
				}
				i++
				val = in[i]
			case !takes && hasVal:
				return nil, fmt.Errorf("option '--%s' doesn't allow an argument", full)
			}
			switch {
			case full == "define":
				out = append(out, "-D", val)
			case takes:
				out = append(out, "--"+full+"="+val)
			default:
				out = append(out, "--"+full)
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				switch a[j] {
				case 'v':
					out = append(out, "-v")
				case 'D':
					val := a[j+1:]
					if val == "" {
						if i+1 >= len(in) {
							return nil, fmt.Errorf("option requires an argument -- 'D'")
						}
						i++
						val = in[i]
					}
					out = append(out, "-D", val)
					j = len(a)
				default:
					return nil, fmt.Errorf("invalid option -- '%c'", a[j])
				}
			}
		default:
			scripts = append(scripts, a)
		}
	}
	if len(scripts) == 0 {
		return nil, fmt.Errorf("no script given (usage: packetdrill [options] SCRIPT...; see 'pcap2pkt replay --help')")
	}
	return append(out, scripts...), nil
}

// longOption resolves a long option name as getopt_long does: an exact
// name, or a prefix of exactly one name.
func longOption(name string) (string, error) {
	var matches []string
	for _, n := range replay.OptionNames() {
		if n == name {
			return n, nil
		}
		if strings.HasPrefix(n, name) {
			matches = append(matches, n)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", fmt.Errorf("unrecognized option '--%s'", name)
	}
	return "", fmt.Errorf("option '--%s' is ambiguous; possibilities: --%s", name, strings.Join(matches, " --"))
}

func packetdrillCommand() *cli.Command {
	return &cli.Command{
		Name:      "packetdrill",
		Usage:     "take packetdrill's own command line (for runners written for packetdrill)",
		ArgsUsage: "[packetdrill options] SCRIPT...",
		Description: `Accepts exactly the command line of google/packetdrill and runs 'replay', so that
runners written for packetdrill (run_all.py, the Linux kernel's selftests in
tools/testing/selftests/net/packetdrill) can use pcap2pkt unchanged. A symlink
named packetdrill does the same:

   ln -s "$(command -v pcap2pkt)" /usr/local/bin/packetdrill
   packetdrill --ip_version=ipv4 -D CMSG_LEVEL_IP=SOL_IP test.pkt
   pcap2pkt packetdrill --tolerance_usecs 10000 test.pkt`,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args, err := packetdrillArgs(c.Args().Slice())
			if err != nil {
				return withCode(exitInput, fmt.Errorf("packetdrill: %w", err))
			}
			full := append([]string{c.App.Name}, args...)
			c.App.Metadata["args"] = full
			return c.App.Run(full)
		},
	}
}
