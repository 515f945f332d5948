package main

// verify --mutate measures how strong each connection's script is: it
// replays the script again under each behaviour change of the replay
// package's catalogue (applied in the replay's namespace after the
// script's init command, as a kernel change would act) and reports which
// changes the script detects, that is, fails under.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/urfave/cli/v2"
)

func mutateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "mutate", Usage: "replay each connection that verifies again under behaviour changes of the kernel's settings, and report which ones its script detects"},
		&cli.StringFlag{Name: "mutations", Usage: "the changes of --mutate: a comma-separated `LIST` of names, or 'all' (the default); implies --mutate"},
	}
}

// chosenMutations returns the changes --mutate or --mutations ask for, or
// nil for neither.
func chosenMutations(c *cli.Context) ([]replay.Mutation, error) {
	if !c.Bool("mutate") && !c.IsSet("mutations") {
		return nil, nil
	}
	if f := c.String("format"); f != "text" && f != "json" {
		return nil, failf(exitInput, "verify: --mutate reports as text or json, not %s", f)
	}
	muts, err := replay.LookupMutations(c.String("mutations"))
	if err != nil {
		return nil, failf(exitInput, "--mutations: %v", err)
	}
	if len(muts) == 0 {
		return nil, failf(exitInput, "--mutations %q names no change", c.String("mutations"))
	}
	return muts, nil
}

// What a change came to for one connection (mutationOutcome.Result).
const (
	mutDetected    = "detected"  // the script fails under the change
	mutMissed      = "missed"    // the script passes under the change
	mutNoChange    = "no change" // the setting had that value already
	mutUnavailable = replay.MutationUnavailable
	mutOverridden  = replay.MutationOverridden // the script set it back
	mutNotRun      = "not run"                 // the connection did not verify unchanged
	mutError       = "error"
)

// mutationOutcome is what one change came to for one connection.
type mutationOutcome struct {
	Mutation string `json:"mutation"`
	Result   string `json:"result"`
	Detail   string `json:"detail,omitempty"` // the first difference, or why
	// Note says that the change replaced a value the script's init
	// command had set.
	Note string `json:"note,omitempty"`
	// Attempts and FailedAttempts: the replays under the change, when more
	// than one ran, and the first difference of each that failed.
	Attempts       int      `json:"attempts,omitempty"`
	FailedAttempts []string `json:"failed_attempts,omitempty"`

	replayFailed bool // the replay ran and failed (not a timeout)
}

// mutateFlows replays every connection that verified under each change.
// unavailable holds, by name, why this host cannot make a change.
func mutateFlows(ctx context.Context, c *cli.Context, runner sandboxRunner, verdicts []verdict, muts []replay.Mutation) error {
	// A change this host cannot make is reported without a replay; with
	// --kernel the guest's settings decide, and its replay reports.
	unavailable := map[string]error{}
	for _, m := range muts {
		if err := m.Available(); err != nil && !c.IsSet("kernel") {
			unavailable[m.Name] = err
		}
	}
	progress := isTerminal(c.App.ErrWriter)
	if progress {
		defer fmt.Fprint(c.App.ErrWriter, "\r\033[K")
	}
	for i := range verdicts {
		v := &verdicts[i]
		for j, m := range muts {
			if progress {
				fmt.Fprintf(c.App.ErrWriter, "\r\033[Kmutate: flow %d (%d of %d), %s (%d of %d)", v.flow.Index, i+1, len(verdicts), m.Name, j+1, len(muts))
			}
			var o mutationOutcome
			switch {
			case v.result != "pass":
				o = mutationOutcome{Mutation: m.Name, Result: mutNotRun, Detail: "the connection does not verify unchanged"}
			case unavailable[m.Name] != nil:
				o = mutationOutcome{Mutation: m.Name, Result: mutUnavailable, Detail: unavailable[m.Name].Error()}
			default:
				o = mutateFlow(ctx, c, runner, v.base, m)
			}
			v.mutations = append(v.mutations, o)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// mutateFlow replays one connection's script under one change, again
// while it fails and --attempts allows: the change is detected when every
// replay fails (verify would pass a kernel so changed once one passes).
func mutateFlow(ctx context.Context, c *cli.Context, runner sandboxRunner, base string, m replay.Mutation) mutationOutcome {
	o, failed, runs := untilPass(ctx, attempts(c), func() mutationOutcome { return mutateOnce(ctx, c, runner, base, m) },
		func(o mutationOutcome) (string, bool) { return o.Detail, o.replayFailed })
	if runs > 1 {
		o.Attempts, o.FailedAttempts = runs, failed
	}
	if o.Result == mutMissed && len(failed) > 0 {
		o.Detail = fmt.Sprintf("replay %d passed (replay 1 failed: %s)", runs, failed[0])
	}
	return o
}

// mutateOnce replays one connection's script under one change once.
func mutateOnce(ctx context.Context, c *cli.Context, runner sandboxRunner, base string, m replay.Mutation) mutationOutcome {
	o := mutationOutcome{Mutation: m.Name}
	reportPath := base + "." + m.Name + ".mutation.json"
	os.Remove(reportPath) // from an earlier run with the same --keep
	run := replayFlow(ctx, c, runner, base, m.Name)
	var rep replay.MutationReport
	b, rerr := os.ReadFile(reportPath)
	if rerr == nil {
		rerr = json.Unmarshal(b, &rep)
	}
	switch {
	case rerr == nil && rep.State == replay.MutationUnavailable:
		o.Result, o.Detail = mutUnavailable, rep.Why
	case errors.Is(run.err, context.DeadlineExceeded):
		o.Result, o.Detail = mutDetected, fmt.Sprintf("timed out after %s", c.Duration("timeout"))
	case run.err != nil:
		o.Result, o.Detail = mutError, run.err.Error()
	case rerr != nil:
		o.Result, o.Detail = mutError, fmt.Sprintf("replay exited %d without saying what the change came to: %s", run.code, firstLine(run.out))
	case rep.State == replay.MutationNoChange:
		o.Result, o.Detail = mutNoChange, rep.Why
	case rep.State == replay.MutationOverridden:
		o.Result, o.Detail = mutOverridden, rep.Why
	case rep.State != replay.MutationApplied:
		o.Result, o.Detail = mutError, fmt.Sprintf("the change came to %q", rep.State)
	}
	if o.Result != "" {
		return o
	}
	o.Note = rep.Why // applied: only when it replaced the script's value
	switch {
	case run.code == exitOK:
		o.Result = mutMissed
	case run.code == exitFail:
		o.Result, o.Detail, o.replayFailed = mutDetected, run.firstDifference(), true
	default:
		o.Result, o.Detail = mutError, fmt.Sprintf("replay exited %d: %s", run.code, firstLine(run.out))
	}
	return o
}

// mutationCell is how the text matrix shows an outcome.
func mutationCell(result string) string {
	if result == mutNotRun {
		return "-"
	}
	return result
}

// mutationTally counts one connection's outcomes: detected and missed
// are the changes that acted on the replayed kernel.
type mutationTally map[string]int

func tally(outcomes []mutationOutcome) mutationTally {
	t := mutationTally{}
	for _, o := range outcomes {
		t[o.Result]++
	}
	return t
}

func (t mutationTally) String() string {
	s := fmt.Sprintf("detects %d of %d changes", t[mutDetected], t[mutDetected]+t[mutMissed])
	var rest []string
	for _, r := range []string{mutNoChange, mutOverridden, mutUnavailable, mutError} {
		if t[r] > 0 {
			rest = append(rest, fmt.Sprintf("%d %s", t[r], r))
		}
	}
	if len(rest) > 0 {
		s += " (" + strings.Join(rest, ", ") + ")"
	}
	return s
}

// printMutations writes the matrix (a row per change, a column per
// connection), each connection's count, why changes were not available,
// and the first difference under each detected change.
func printMutations(w io.Writer, verdicts []verdict, muts []replay.Mutation) {
	fmt.Fprintln(w, "\nChanges each script detects (detected: it fails under the change; missed: it passes; no change: the setting already had that value):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "CHANGE\tSETTING")
	for _, v := range verdicts {
		fmt.Fprintf(tw, "\tFLOW %d", v.flow.Index)
	}
	fmt.Fprintln(tw)
	for i, m := range muts {
		fmt.Fprintf(tw, "%s\t%s=%s", m.Name, m.Setting(), m.Value)
		for _, v := range verdicts {
			cell := "-"
			if i < len(v.mutations) {
				cell = mutationCell(v.mutations[i].Result)
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, v := range verdicts {
		if v.result != "pass" {
			fmt.Fprintf(w, "flow %d: not measured: it does not verify unchanged\n", v.flow.Index)
			continue
		}
		fmt.Fprintf(w, "flow %d: %s\n", v.flow.Index, tally(v.mutations))
	}
	// Why a change could not be made, or what it replaced, once per
	// change and reason.
	said := map[string]bool{}
	for _, v := range verdicts {
		for _, o := range v.mutations {
			line := ""
			switch {
			case o.Result == mutUnavailable || o.Result == mutError || o.Result == mutOverridden:
				line = fmt.Sprintf("%s: %s: %s", o.Mutation, o.Result, o.Detail)
			case o.Note != "":
				line = fmt.Sprintf("%s: %s", o.Mutation, o.Note)
			}
			if line != "" && !said[line] {
				said[line] = true
				fmt.Fprintln(w, line)
			}
		}
	}
	first := true
	for _, v := range verdicts {
		for _, o := range v.mutations {
			if o.Result != mutDetected {
				continue
			}
			if first {
				fmt.Fprintln(w, "\nFirst difference under each detected change:")
				first = false
			}
			fmt.Fprintf(w, "flow %d, %s: %s\n", v.flow.Index, o.Mutation, o.Detail)
		}
	}
}

// mutationsJSON is verify --mutate --format json.
type mutationsJSON struct {
	Capture     string           `json:"capture"`
	Mutations   []mutationJSON   `json:"mutations"`
	Connections []connectionJSON `json:"connections"`
	Counts      map[string]int   `json:"counts"` // outcomes over every connection and change
	Seconds     float64          `json:"seconds"`
}

type mutationJSON struct {
	Name    string `json:"name"`
	What    string `json:"what"`
	Setting string `json:"setting"`
	Value   string `json:"value"`
}

type connectionJSON struct {
	Flow      int               `json:"flow"`
	Local     string            `json:"local"`
	Remote    string            `json:"remote"`
	Verdict   string            `json:"verdict"` // pass, fail, skipped, error, nothing to check
	Detail    string            `json:"detail,omitempty"`
	Output    string            `json:"output,omitempty"`
	Mutations []mutationOutcome `json:"mutations"`
}

func writeMutationsJSON(w io.Writer, capture string, verdicts []verdict, muts []replay.Mutation, wall time.Duration) error {
	out := mutationsJSON{Capture: capture, Counts: map[string]int{}, Seconds: wall.Seconds()}
	for _, m := range muts {
		out.Mutations = append(out.Mutations, mutationJSON{Name: m.Name, What: m.What, Setting: m.Setting(), Value: m.Value})
	}
	for _, v := range verdicts {
		cj := connectionJSON{
			Flow: v.flow.Index, Local: v.flow.LocalEndpoint().String(), Remote: v.flow.RemoteEndpoint().String(),
			Verdict: strings.ToLower(v.result), Detail: v.detail, Mutations: v.mutations,
		}
		if v.result != "pass" {
			cj.Output = v.full
		}
		for _, o := range v.mutations {
			out.Counts[o.Result]++
		}
		out.Connections = append(out.Connections, cj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
