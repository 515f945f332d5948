package main

import (
	"fmt"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// completeFlag is the hidden flag with which urfave/cli prints the words
// that may come next; the completion scripts below call the binary with it.
const completeFlag = "--generate-bash-completion"

// buildVersion says which build this is, from what the Go toolchain
// recorded in the binary: the module version, the VCS revision and time
// (with "+dirty" for uncommitted changes) and the Go version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	out := v
	if rev != "" {
		out += fmt.Sprintf(", revision %s%s", rev, dirty)
		if when != "" {
			out += " of " + when
		}
	}
	return out + ", " + bi.GoVersion
}

func init() {
	// Without the -v alias: replay's -v is packetdrill's --verbose.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version, VCS revision and Go version of this build", DisableDefaultText: true}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, VCS revision and Go version of this build",
		Action: func(c *cli.Context) error {
			cli.VersionPrinter(c)
			return nil
		},
	}
}

// The completion scripts ask the binary itself for the words that may come
// next (commands, then flags when the word starts with "-") and fall back
// to file names, so that they follow the command definitions.
const bashCompletion = `# bash completion for pcap2pkt; load with: source <(pcap2pkt completion bash)
_pcap2pkt_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]} words
	words=$("${COMP_WORDS[@]:0:COMP_CWORD}" ${cur:+"$cur"} ` + completeFlag + ` 2>/dev/null)
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -o bashdefault -F _pcap2pkt_complete pcap2pkt
`

const zshCompletion = `#compdef pcap2pkt
# zsh completion for pcap2pkt; load with: source <(pcap2pkt completion zsh)
_pcap2pkt() {
	local -a words_next
	local cur=${words[CURRENT]}
	words_next=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[@]:0:CURRENT-1} ${cur:+$cur} ` + completeFlag + ` 2>/dev/null)}")
	if [[ -n ${words_next[1]} ]]; then
		_describe 'pcap2pkt' words_next
	fi
	_files
}
if (( $+functions[compdef] )); then
	compdef _pcap2pkt pcap2pkt
fi
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints a script that completes pcap2pkt's commands, flags and file names.

   source <(pcap2pkt completion bash)       # in ~/.bashrc
   source <(pcap2pkt completion zsh)        # in ~/.zshrc
   pcap2pkt completion fish > ~/.config/fish/completions/pcap2pkt.fish`,
		Action: func(c *cli.Context) error {
			var text string
			switch c.Args().First() {
			case "bash":
				text = bashCompletion
			case "zsh":
				text = zshCompletion
			case "fish":
				t, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				text = t
			default:
				return failf(exitInput, "completion: want bash, zsh or fish, got %q", c.Args().First())
			}
			_, err := fmt.Fprint(c.App.Writer, text)
			return err
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (troff), made from the command definitions",
		Description: `   pcap2pkt man > /usr/local/share/man/man1/pcap2pkt.1
   pcap2pkt man | man -l -`,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}

// withoutComplete takes a trailing completeFlag off args: urfave/cli
// looks for it last, after the reordering of normalizeArgs.
func withoutComplete(args []string) ([]string, bool) {
	if n := len(args); n > 1 && args[n-1] == completeFlag {
		return args[:n-1], true
	}
	return args, false
}
