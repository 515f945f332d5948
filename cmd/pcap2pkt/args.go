package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// normalizeArgs puts a command line as people type it into the order that
// urfave/cli reads: it stops at the first positional argument, so flags
// given after one ("pcap2pkt replay bad.pkt --dry_run", "pcap2pkt cap.pcap
// -o z.pkt") would be taken as file names. Each command's flags move before
// its positional arguments, keeping their values; "--" still ends the
// flags. "help CMD" becomes "CMD --help". The packetdrill command parses its
// own arguments and is left alone.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// The root's flags come before a command's name and the command's own
	// after it: a command name counts only as the first positional argument.
	first := firstPositional(app.Flags, args[1:]) + 1
	if first == len(args) {
		return args
	}
	word := args[first]
	out := append([]string{args[0]}, args[1:first]...)
	if word == "help" {
		if first+1 < len(args) && app.Command(args[first+1]) != nil {
			return append(out, args[first+1], "--help")
		}
		return append(out, "--help")
	}
	cmd := app.Command(word)
	if cmd == nil {
		flags, pos := splitFlags(app.Flags, args[1:])
		return append(append([]string{args[0]}, flags...), pos...)
	}
	out = append(out, word)
	if cmd.SkipFlagParsing {
		return append(out, args[first+1:]...)
	}
	flags, pos := splitFlags(cmd.Flags, args[first+1:])
	return append(append(out, flags...), pos...)
}

// valueFlags says, for each name of defs, whether the flag takes a value.
func valueFlags(defs []cli.Flag) map[string]bool {
	takes := map[string]bool{}
	for _, f := range defs {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takes[n] = !isBool
		}
	}
	return takes
}

// flagLen is how many arguments the flag at args[0] spans: 2 when it
// takes its value from the next argument.
func flagLen(takes map[string]bool, args []string) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
	if takes[name] && !hasValue && len(args) > 1 {
		return 2
	}
	return 1
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// firstPositional is the index in args of the first positional argument
// (len(args) if none, or if "--" comes first).
func firstPositional(defs []cli.Flag, args []string) int {
	takes := valueFlags(defs)
	for i := 0; i < len(args); {
		switch {
		case args[i] == "--":
			return len(args)
		case !isFlag(args[i]):
			return i
		}
		i += flagLen(takes, args[i:])
	}
	return len(args)
}

// splitFlags separates the flags among args (with the values they take)
// from the positional arguments, in order. The positional arguments start
// with "--" when the command line had one and a positional argument after
// it starts with "-".
func splitFlags(defs []cli.Flag, args []string) (flags, positional []string) {
	takes := valueFlags(defs)
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" {
			rest := args[i+1:]
			for _, r := range rest {
				if strings.HasPrefix(r, "-") {
					return flags, append(append(positional, "--"), rest...)
				}
			}
			return flags, append(positional, rest...)
		}
		if !isFlag(a) {
			positional = append(positional, a)
			i++
			continue
		}
		n := flagLen(takes, args[i:])
		flags = append(flags, args[i:i+n]...)
		i += n
	}
	return flags, positional
}

// suggestCommand is what to say when word, given where a capture was
// expected, is no file but is close to a command's name: "did you mean
// 'pcap2pkt flows'?". It is empty when no command is close.
func suggestCommand(app *cli.App, word string) string {
	if word == "-" || strings.ContainsAny(word, "/.") {
		return ""
	}
	if _, err := os.Stat(word); err == nil {
		return ""
	}
	best, bestDist := "", 3
	for _, c := range app.Commands {
		if c.Hidden {
			continue
		}
		if d := smetrics.WagnerFischer(word, c.Name, 1, 1, 2); d < bestDist && d <= len(c.Name)/2 {
			best, bestDist = c.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("%s: no such file or command; did you mean '%s %s'?", word, app.Name, best)
}
