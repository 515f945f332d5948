package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/urfave/cli/v2"
)

// referenceFlags are packetdrill's own options, under its names, so that
// runners written for packetdrill can call 'pcap2pkt replay' instead.
func referenceFlags() []cli.Flag {
	usage := map[string]string{
		"ip_version":        "`FAMILY` of the run: ipv4, ipv6 or ipv4-mapped-ipv6 (default ipv4)",
		"local_ip":          "local `ADDRESS` of the kernel under test (default 192.168.0.1, or fd3d:fa7b:d17d::1)",
		"remote_ip":         "`ADDRESS` of the scripted remote peer (default 192.0.2.1, or 2001:db8::1)",
		"gateway_ip":        "`ADDRESS` of the gateway towards the remote peer",
		"netmask_ip":        "IPv4 netmask of the local address (default 255.255.0.0)",
		"bind_port":         "local `PORT` of bind() and inbound SYNs (default 8080)",
		"connect_port":      "remote `PORT` of connect() (default 8080)",
		"mtu":               "`MTU` of the TUN device (default 1500)",
		"mss":               "gso_size of injected TCP packets",
		"tolerance_usecs":   "timing tolerance in `MICROSECONDS` (default 4000)",
		"tolerance_percent": "timing tolerance in `PERCENT` of the interval (default 12.5)",
		"non_fatal":         "`KINDS` of mismatch that only warn: packet, syscall (comma-separated)",
		"init_scripts":      "`COMMANDS` to run before each script",
		"tcp_ts_tick_usecs": "microseconds per TCP timestamp tick; enables TS val checks",
		"tcp_ts_ecr_scaled": "scale inbound TS ecr values without a matching TS val",
		"strict_segments":   "do not combine outbound segments when matching",
		"dry_run":           "parse and check options only; do not run",
		"send_omit_free":    "accepted for packetdrill compatibility",
		"verbose":           "print each event and packet as it runs",
	}
	var flags []cli.Flag
	for _, name := range replay.OptionNames() {
		if name == "define" {
			continue // defineFlag, shared with fmt and check
		}
		takes, _ := replay.OptionTakesValue(name)
		u, ok := usage[name]
		hidden := !ok
		if !ok {
			u = "packetdrill option, accepted for compatibility"
		}
		var aliases []string
		if name == "verbose" {
			aliases = []string{"v"}
		}
		if takes {
			flags = append(flags, &cli.StringFlag{Name: name, Usage: u, Hidden: hidden, Category: "packetdrill options"})
		} else {
			flags = append(flags, &cli.BoolFlag{Name: name, Aliases: aliases, Usage: u, Hidden: hidden, Category: "packetdrill options"})
		}
	}
	return flags
}

func replayCommand() *cli.Command {
	flags := append(append(referenceFlags(), suiteFlags()...), defineFlag,
		&cli.StringFlag{Name: "capture", Usage: "write every packet that crossed the TUN device to `FILE` (pcap, LINUX_SLL2 with directions)"},
		&cli.DurationFlag{Name: "timeout", Value: 120 * time.Second, Usage: "give up on a script after `DURATION`"},
		&cli.BoolFlag{Name: "stats", Usage: "print how far packets and calls were from their scheduled times (p50, p99, max)"},
		&cli.StringFlag{Name: "mutation", Usage: "change `NAME` (one of verify --mutate's) in the run's namespace after the script's init command"},
		// Where the sandboxed child writes what the mutation came to, as
		// JSON, for verify --mutate.
		&cli.StringFlag{Name: "mutation-report", Hidden: true},
	)
	flags = append(flags, kernelFlags()...)
	return &cli.Command{
		Name:      "replay",
		Usage:     "run packetdrill scripts against this kernel",
		ArgsUsage: "SCRIPT...",
		Description: `Runs each script against the local kernel, as packetdrill does: '<' packets are
injected through a TUN device, system calls are made, and every '>' packet and
return value is checked, on time. Each script runs in a network namespace of its
own, created for it and gone afterwards: the host's network is never touched.
Needs /dev/net/tun, and root or user namespaces (without root each script runs
in a user namespace of its own, as unshare -U -r -n).

Success prints nothing (shell commands of the script print as they run) and exits
0. A failure prints the script line, what differed field by field, the expected and
the actual packet in script syntax and the timing offset, and exits 1.

Options use packetdrill's names, so runners written for packetdrill work unchanged:

   sudo pcap2pkt replay test.pkt
   sudo pcap2pkt replay --capture run.pcap test.pkt        # then: tcpdump -r run.pcap
   sudo pcap2pkt replay --ip_version=ipv6 --tolerance_usecs=10000 tests/*.pkt`,
		Flags:  flags,
		Action: replayAction,
	}
}

func replayAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return failf(exitInput, "replay: no script given (usage: pcap2pkt replay [flags] SCRIPT...)")
	}
	if err := checkPositive(c, "replay", "jobs", "timeout"); err != nil {
		return err
	}
	cfg, err := replayConfig(c)
	if err != nil {
		return err
	}
	if replay.InSandbox() {
		return replayInSandbox(c, cfg)
	}
	if m := c.String("mutation"); m != "" {
		mut, err := replay.LookupMutation(m)
		if err != nil {
			return failf(exitInput, "--mutation: %v", err)
		}
		// With --kernel the guest's settings decide, and the replay in
		// the VM reports a change it cannot make.
		if err := mut.Available(); err != nil && !c.IsSet("kernel") {
			return failf(exitEnv, "--mutation %s: not available here: %v", m, err)
		}
	}
	if suiteMode(c) {
		return runSuite(c)
	}
	if c.NArg() > 1 && c.String("capture") != "" {
		return failf(exitInput, "replay: --capture takes one script; got %d", c.NArg())
	}

	// Everything that can be checked without running is checked first, so
	// that a typo is reported as such even where replay cannot run.
	for _, name := range c.Args().Slice() {
		if _, _, err := loadScript(name, cfg); err != nil {
			printErrors(c.App.ErrWriter, err)
			return reported(exitInput)
		}
	}
	if c.Bool("dry_run") {
		return nil
	}
	capDir := ""
	if p := c.String("capture"); p != "" {
		capDir = filepath.Dir(p)
	}
	runner, stopRunner, err := newRunner(c, 1, c.App.Reader, capDir)
	if err != nil {
		return err
	}
	defer stopRunner()

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	prefix := sandboxPrefix(c)
	failed := 0
	for _, name := range c.Args().Slice() {
		res, _, err := runner.run(ctx, c.Duration("timeout"), append(prefix, name), c.App.Writer, c.App.ErrWriter)
		code := res.ExitCode
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprintf(c.App.ErrWriter, "%s: timed out after %s; its namespace and processes were removed\n", name, c.Duration("timeout"))
			failed++
		case ctx.Err() != nil:
			return withCode(exitFail, fmt.Errorf("interrupted; namespace and processes removed"))
		case err != nil:
			return withCode(exitEnv, err)
		case code == exitOK:
		case code == exitFail:
			failed++
		default:
			return reported(code)
		}
	}
	if failed > 0 {
		noteUserNamespace(c)
		if c.NArg() > 1 {
			return withCode(exitFail, fmt.Errorf("%d of %d scripts failed", failed, c.NArg()))
		}
		return reported(exitFail)
	}
	return nil
}

// sandboxPrefix is the command line that the sandboxed child gets before
// the one script it runs: the same command and flags as ours.
func sandboxPrefix(c *cli.Context) []string {
	args, _ := c.App.Metadata["args"].([]string)
	n := len(args) - c.NArg()
	for i := 1; i < n; i++ {
		if args[i] == "replay" {
			return append([]string(nil), args[1:n]...)
		}
	}
	return []string{"replay"}
}

// noteUserNamespace tells, after a failure, that the runs were in a user
// namespace: there, what needs the host's root fails, which is not the
// kernel's doing.
func noteUserNamespace(c *cli.Context) {
	if replay.Unprivileged() {
		fmt.Fprintln(c.App.ErrWriter, "pcap2pkt: note: not root, so each run was in a user namespace of its own (as 'unshare -U -r -n'); "+
			"what needs the host's root there fails (a sysctl of the initial namespace, a file only root may write): run with sudo to rule that out")
	}
}

// canReplay says why replay cannot run here, with what to do about it.
func canReplay() error {
	if replay.Unprivileged() {
		if err := replay.UserNamespacesAllowed(); err != nil {
			return fmt.Errorf("replay needs root, or user namespaces to run without it (%v); run it with sudo", err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("replay needs /dev/net/tun (%v); load the tun module (modprobe tun) or, in a container, pass the device in (--device /dev/net/tun)", err)
	}
	return nil
}

func replayConfig(c *cli.Context) (*replay.Config, error) {
	return replayConfigFor(c, "")
}

// replayConfigFor is the configuration of a run in an address family of
// the upstream runner ("" for none): the family's arguments, then the
// command line's flags, which win.
func replayConfigFor(c *cli.Context, family string) (*replay.Config, error) {
	cfg := replay.NewConfig()
	fam := familyArgs[family]
	for i := 0; i < len(fam); i++ {
		name, value, _ := strings.Cut(strings.TrimPrefix(fam[i], "--"), "=")
		if fam[i] == "-D" {
			i++
			name, value = "define", fam[i]
		}
		if err := cfg.Set(name, value); err != nil {
			return nil, failf(exitInput, "family %s: %s: %v", family, fam[i], err)
		}
	}
	for _, name := range replay.OptionNames() {
		if name == "define" || !c.IsSet(name) {
			continue
		}
		takes, _ := replay.OptionTakesValue(name)
		v := "true"
		if takes {
			v = c.String(name)
		}
		if err := cfg.Set(name, v); err != nil {
			return nil, failf(exitInput, "--%s: %v", name, err)
		}
	}
	for _, d := range c.StringSlice("define") {
		if !strings.Contains(d, "=") {
			return nil, failf(exitInput, "-D %q: want NAME=VALUE", d)
		}
		if err := cfg.Set("define", d); err != nil {
			return nil, failf(exitInput, "-D %s: %v", d, err)
		}
	}
	return cfg, nil
}

// loadScript reads and parses a script with the run's definitions and
// resolves the configuration it runs with (its option lines applied).
func loadScript(name string, cfg *replay.Config) (*parser.Script, *replay.Config, error) {
	s, _, err := parseScriptFile(name, &parser.Config{Defines: cfg.Defines})
	if err != nil {
		return nil, nil, err
	}
	rc, err := cfg.Resolve(s)
	if err != nil {
		return nil, nil, err
	}
	return s, rc, nil
}

// replayInSandbox runs one script; this process is the child that
// RunSandboxed started in a new network namespace. Its parent gets the
// failure it ends with as data (replay.ReportFailure), besides its output.
func replayInSandbox(c *cli.Context, cfg *replay.Config) error {
	err := runInSandbox(c, cfg)
	if ee := (*exitError)(nil); errors.As(err, &ee) && ee.err.Error() != "" {
		replay.ReportFailure(ee.err)
	}
	return err
}

func runInSandbox(c *cli.Context, cfg *replay.Config) error {
	name := c.Args().First()
	s, rc, err := loadScript(name, cfg)
	if err != nil {
		printErrors(c.App.ErrWriter, err)
		replay.ReportFailure(err)
		return reported(exitInput)
	}
	dev, err := replay.SetupNetwork(rc.NetConfig())
	if err != nil {
		return withCode(exitEnv, fmt.Errorf("%s: setting up the namespace's network: %w", name, err))
	}
	defer dev.Close()

	env := &replay.Env{
		Device: dev,
		Clock:  replay.SystemClock{},
		Stdout: c.App.Writer,
		Stderr: c.App.ErrWriter,
		Dir:    filepath.Dir(name),
	}
	code, err := replay.NewPythonCode(replay.CodeOptions{
		Command: rc.CodeCommand, Format: rc.CodeFormat, Sockopt: rc.CodeSockopt,
		ScriptPath: name, Stdout: c.App.Writer, Stderr: c.App.ErrWriter,
	})
	if err != nil {
		return withCode(exitInput, fmt.Errorf("%s: %w", name, err))
	}
	env.Code = code
	if p := c.String("capture"); p != "" {
		w, err := replay.NewPcapWriter(p)
		if err != nil {
			return withCode(exitInput, fmt.Errorf("--capture: %w", err))
		}
		// The device records every packet both ways as tcpdump on tun0
		// would, whether or not a line of the script reads it; else the
		// engine records what it injects and reads.
		capturer, ok := dev.(replay.Capturer)
		if ok {
			if err := capturer.CaptureTo(w); err != nil {
				ok = false
			}
		}
		if !ok {
			env.Capture = w
		}
		defer func() {
			if ok {
				dev.Close() // the capture ends with the device
			}
			if err := w.Close(); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: --capture %s: %v\n", p, err)
			}
		}()
	}
	var stats timingStats
	if c.Bool("stats") {
		env.Timing = stats.add
	}
	mut, err := startMutation(c, env)
	if err != nil {
		return err
	}
	start := time.Now()
	err = replay.Run(c.Context, s, cfg, env)
	if c.Bool("stats") {
		stats.write(c.App.ErrWriter, time.Since(start))
	}
	if mut != nil {
		if merr := mut.finish(c); merr != nil || mut.failed {
			if err != nil {
				fmt.Fprintln(c.App.ErrWriter, err)
			}
			return withCode(exitEnv, errors.Join(merr, fmt.Errorf("--mutation %s: cannot make the change here", c.String("mutation"))))
		}
	}
	if err != nil {
		fmt.Fprintln(c.App.ErrWriter, err)
		replay.ReportFailure(err)
		return reported(exitFail)
	}
	return nil
}

// sandboxMutation is the --mutation of a sandboxed run.
type sandboxMutation struct {
	run    *replay.MutationRun
	failed bool // applying it failed: the run says nothing of the script
}

// startMutation reads the setting --mutation changes, as the new
// namespace has it, and makes the engine change it after the script's init
// command. It returns nil without --mutation.
func startMutation(c *cli.Context, env *replay.Env) (*sandboxMutation, error) {
	name := c.String("mutation")
	if name == "" {
		return nil, nil
	}
	m, err := replay.LookupMutation(name)
	if err != nil {
		return nil, failf(exitInput, "--mutation: %v", err)
	}
	run, err := replay.StartMutation(m)
	if err != nil {
		sm := &sandboxMutation{run: run, failed: true}
		if run != nil {
			err = errors.Join(err, sm.finish(c))
		}
		return nil, withCode(exitEnv, fmt.Errorf("--mutation %s: %w", name, err))
	}
	sm := &sandboxMutation{run: run}
	env.AfterInit = func() error {
		if err := run.Apply(); err != nil {
			sm.failed = true
			return err
		}
		return nil
	}
	return sm, nil
}

// finish records where the setting ended and writes the report: as JSON
// into --mutation-report for verify, else as a note for people.
func (sm *sandboxMutation) finish(c *cli.Context) error {
	rep := sm.run.Finish()
	if p := c.String("mutation-report"); p != "" {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		return writeFileAtomic(p, b)
	}
	note := fmt.Sprintf("pcap2pkt: --mutation %s: %s=%s: %s", rep.Name, rep.Setting, rep.Value, rep.State)
	if rep.Why != "" {
		note += " (" + rep.Why + ")"
	}
	fmt.Fprintln(c.App.ErrWriter, note)
	return nil
}
