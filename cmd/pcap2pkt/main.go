// Command pcap2pkt turns tcpdump captures into packetdrill scripts and runs
// packetdrill scripts against the local kernel. See README.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/pcap2pkt/pcap2pkt/replay/vm"
	"github.com/urfave/cli/v2"
)

// Exit codes. They are part of the interface: scripts and CI read them.
const (
	exitOK      = 0 // success
	exitFail    = 1 // a script ran and failed, or a capture did not verify
	exitInput   = 2 // bad usage or bad input: wrong flag, malformed script, missing file
	exitEnv     = 3 // cannot run here: not root, no /dev/net/tun, no namespaces
	exitDamaged = 4 // a capture is truncated or corrupt; output covers what came before
)

// exitError carries an exit code through urfave/cli back to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// reported is the error of a command whose problems were already printed:
// it carries only the exit code.
func reported(code int) error {
	return &exitError{code: code, err: errors.New("")}
}

func failf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func main() {
	if vm.IsGuest() {
		// This binary is the init of a VM that --kernel booted, or its
		// server, or its kernel's module loader.
		os.Exit(vm.GuestMain())
	}
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: tests call it with buffers.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// The sandboxed child is this executable again under the same argv[0]
	// (so that ps shows what ran) but with a 'replay' command line of ours:
	// it must not be read as packetdrill's.
	if len(args) > 0 && isPacketdrillName(args[0]) && !replay.InSandbox() {
		translated, err := packetdrillArgs(args[1:])
		if err != nil {
			fmt.Fprintln(stderr, "packetdrill:", err)
			return exitInput
		}
		args = append([]string{args[0]}, translated...)
	}
	app := newApp(stdin, stdout, stderr)
	args, completing := withoutComplete(args)
	args = normalizeArgs(app, args)
	if completing {
		args = append(args, completeFlag)
	}
	app.Metadata = map[string]any{"args": args}
	err := app.Run(args)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "pcap2pkt:", ee.err)
		}
		return ee.code
	}
	// Anything urfave/cli reports itself (an unknown flag, a missing
	// argument) is a usage error.
	fmt.Fprintln(stderr, "pcap2pkt:", err)
	return exitInput
}

// usageError keeps a wrong flag's message short: the error and where to
// read more, not the whole help text.
func usageError(c *cli.Context, err error, _ bool) error {
	name := c.App.Name
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != name {
		name += " " + c.Command.Name
	}
	return failf(exitInput, "%v (see '%s --help')", err, name)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "pcap2pkt",
		Usage: "turn tcpdump captures into packetdrill scripts, and run packetdrill scripts against this kernel",
		UsageText: `pcap2pkt [flags] CAPTURE           print the packetdrill script of a capture's TCP connection
pcap2pkt flows CAPTURE             list the TCP connections in a capture
pcap2pkt replay [flags] SCRIPT...  run packetdrill scripts against this kernel
pcap2pkt verify [flags] CAPTURE    synthesise and replay: does this kernel still behave as captured?
pcap2pkt check SCRIPT...           parse and check scripts
pcap2pkt fmt [-w|-l|-d] SCRIPT...  print scripts in canonical form
pcap2pkt plot [-o DIR] CAPTURE     draw each connection as a time-sequence graph (SVG)`,
		Description: `Exit codes: 0 success; 1 a script failed or a capture did not verify;
2 bad usage or input (unknown flag, malformed script, missing file);
3 cannot run here (no /dev/net/tun, neither root nor user namespaces); 4 damaged capture (what came before it was used).`,
		Version:                   buildVersion(),
		EnableBashCompletion:      true,
		Reader:                    stdin,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError:              usageError,
		Flags:                     synthFlags(),
		Action:                    synthAction,
		Commands: []*cli.Command{
			flowsCommand(),
			replayCommand(),
			verifyCommand(),
			packetdrillCommand(),
			fmtCommand(),
			checkCommand(),
			plotCommand(),
			versionCommand(),
			completionCommand(),
			manCommand(),
		},
	}
	hideFalseDefaults(app.Flags)
	for _, c := range app.Commands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
		hideFalseDefaults(c.Flags)
	}
	return app
}

// hideFalseDefaults keeps --help from saying "(default: false)" after every
// switch: a switch is off unless given.
func hideFalseDefaults(flags []cli.Flag) {
	for _, f := range flags {
		if b, ok := f.(*cli.BoolFlag); ok && !b.Value {
			b.DisableDefaultText = true
		}
	}
}

// checkPositive fails with a usage error when one of the named integer
// or duration flags was given a value below 1 (or 0 s): a replay cannot
// run zero times, on no cores, or for no time. Flags left unset keep
// their defaults.
func checkPositive(c *cli.Context, cmd string, names ...string) error {
	for _, n := range names {
		if !c.IsSet(n) {
			continue
		}
		switch v := c.Value(n).(type) {
		case int:
			if v < 1 {
				return failf(exitInput, "%s: --%s must be at least 1, not %d", cmd, n, v)
			}
		case time.Duration:
			if v <= 0 {
				return failf(exitInput, "%s: --%s must be a positive duration, not %s", cmd, n, v)
			}
		}
	}
	return nil
}
