package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/pcap2pkt/pcap2pkt/synth"
	"github.com/urfave/cli/v2"
)

// verifyReportFlags are verify's --format, with replay's suite formats, and
// --shard, which splits the connections by packet count.
func verifyReportFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "format", Value: "text", Usage: "report `FORMAT`: text, tap, junit or json (as replay's suites)"},
		&cli.StringFlag{Name: "plot", Usage: "write one SVG time-sequence graph per connection into `DIR`: captured and replayed overlaid, the first difference marked"},
	}, shardFlags("packet count")...)
}

func checkVerifyFormat(c *cli.Context) error {
	switch c.String("format") {
	case "text", "tap", "junit", "json":
		return nil
	}
	return failf(exitInput, "verify: --format %q: want text, tap, junit or json", c.String("format"))
}

// shardResults keeps the connections of --shard K/N, balanced by packets.
func shardResults(c *cli.Context, results []synth.Result) ([]synth.Result, error) {
	spec, err := parseShard(c.String("shard"))
	if err != nil || spec.n == 0 {
		return results, err
	}
	items := make([]shardItem, len(results))
	for i, r := range results {
		items[i] = shardItem{key: fmt.Sprintf("%09d", r.Flow.Index), weight: float64(r.Flow.Count)}
	}
	var out []synth.Result
	for _, i := range spec.pick(items) {
		out = append(out, results[i])
	}
	return out, nil
}

// reportVerdicts prints the verdicts in --format (with --mutate's matrix
// when muts is not nil) and returns how many connections failed and how
// many passed.
func reportVerdicts(c *cli.Context, capture string, verdicts []verdict, muts []replay.Mutation, wall time.Duration, jobs int) (failed, passed int, err error) {
	format := c.String("format")
	switch {
	case format == "text":
		failed, passed = printVerdicts(c, verdicts, wall, jobs)
		if muts != nil {
			printMutations(c.App.Writer, verdicts, muts)
		}
		return failed, passed, nil
	case muts != nil:
		for _, v := range verdicts {
			switch v.result {
			case "pass":
				passed++
			case "FAIL", "error":
				failed++
			}
		}
		return failed, passed, writeMutationsJSON(c.App.Writer, capture, verdicts, muts, wall)
	}
	runs := make([]*suiteRun, 0, len(verdicts))
	for _, v := range verdicts {
		r := &suiteRun{
			Script: fmt.Sprintf("%s flow %d %s-%s", capture, v.flow.Index, v.flow.LocalEndpoint(), v.flow.RemoteEndpoint()),
			Output: v.full,
		}
		if v.attempts > 1 {
			r.Attempts, r.FailedAttempts = v.attempts, v.failedAttempts
			r.Output = attemptNotes([]verdict{v}) + r.Output
		}
		switch v.result {
		case "pass":
			r.Verdict = "pass"
			passed++
		case "FAIL":
			r.Verdict = "fail"
			failed++
		case "skipped":
			r.Verdict = "skipped"
		default:
			r.Verdict = "error"
			failed++
		}
		switch {
		case v.failure != nil:
			r.Failure = v.failure
		case v.result != "pass":
			r.Failure = &parser.Error{Msg: v.detail}
		}
		runs = append(runs, r)
	}
	return failed, passed, writeReport(c.App.Writer, format, runs, wall)
}

// plotInto draws a verified connection into --plot's folder, if given; a
// failure to draw is a warning, not the verdict's.
func plotInto(c *cli.Context, dir string, r synth.Result, v verdict) {
	out := c.String("plot")
	if out == "" || v.result == "skipped" {
		return
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: --plot: %v\n", err)
		return
	}
	pcap := filepath.Join(dir, strings.TrimSuffix(synth.FileName(r.Flow), ".pkt")+".replay.pcap")
	if _, err := plotVerdict(out, pcap, v); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: --plot: flow %d: %v\n", r.Flow.Index, err)
	}
}
