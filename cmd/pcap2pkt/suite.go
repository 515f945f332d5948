package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// familyArgs are the arguments the upstream runner (run_all.py) gives
// packetdrill for each address family.
var familyArgs = map[string][]string{
	"ipv4": {"--ip_version=ipv4", "--local_ip=192.168.0.1", "--gateway_ip=192.168.0.1",
		"--netmask_ip=255.255.0.0", "--remote_ip=192.0.2.1", "-D", "TFO_COOKIE=3021b9d889017eeb",
		"-D", "CODE=host_unreachable", "-D", "CMSG_LEVEL_IP=SOL_IP", "-D", "CMSG_TYPE_RECVERR=IP_RECVERR"},
	"ipv4-mapped-ipv6": {"--ip_version=ipv4-mapped-ipv6", "--local_ip=192.168.0.1", "--gateway_ip=192.168.0.1",
		"--netmask_ip=255.255.0.0", "--remote_ip=192.0.2.1", "-D", "TFO_COOKIE=3021b9d889017eeb",
		"-D", "CODE=host_unreachable", "-D", "CMSG_LEVEL_IP=SOL_IPV6", "-D", "CMSG_TYPE_RECVERR=IPV6_RECVERR"},
	"ipv6": {"--ip_version=ipv6", "--mtu=1520", "--local_ip=fd3d:0a0b:17d6::1",
		"--gateway_ip=fd3d:0a0b:17d6:8888::1", "--remote_ip=fd3d:fa7b:d17d::1", "-D", "TFO_COOKIE=c1d1e9742a47a9bc",
		"-D", "CMSG_LEVEL_IP=SOL_IPV6", "-D", "CMSG_TYPE_RECVERR=IPV6_RECVERR"},
}

var familyOrder = []string{"ipv4", "ipv4-mapped-ipv6", "ipv6"}

func suiteFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "run `N` scripts at once", DefaultText: "the number of cores"},
		&cli.StringFlag{Name: "families", Usage: "run each script once per `LIST` of families (ipv4,ipv4-mapped-ipv6,ipv6) with the upstream runner's addresses; 'all' for the three"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "report `FORMAT` with several scripts: text, tap, junit or json"},
		&cli.StringFlag{Name: "capture-dir", Usage: "keep one pcap per script run in `DIR`"},
	}, replayShardFlags()...)
}

// suiteMode reports whether the replay command runs a suite: several
// scripts, a folder, or families.
func suiteMode(c *cli.Context) bool {
	if c.NArg() > 1 || c.IsSet("families") || c.IsSet("format") || c.IsSet("capture-dir") || c.IsSet("jobs") || c.IsSet("shard") {
		return true
	}
	fi, err := os.Stat(c.Args().First())
	return err == nil && fi.IsDir()
}

// suiteRun is one script in one family.
type suiteRun struct {
	Script  string        `json:"script"`
	Family  string        `json:"family,omitempty"`
	Verdict string        `json:"verdict"` // pass, fail, timeout, error
	Seconds float64       `json:"seconds"`
	Failure *parser.Error `json:"failure,omitempty"`
	Output  string        `json:"output,omitempty"`
	// Attempts and FailedAttempts: verify's replays of a connection that
	// failed (see --attempts), when more than one ran.
	Attempts       int      `json:"attempts,omitempty"`
	FailedAttempts []string `json:"failed_attempts,omitempty"`

	args []string
}

// findScripts expands folders into the .pkt files below them, sorted.
func findScripts(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: no such file", a)
			}
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".pkt") {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func parseFamilies(s string) ([]string, error) {
	if s == "" {
		return []string{""}, nil
	}
	if s == "all" {
		return familyOrder, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "ipv4-mapped-v6" {
			f = "ipv4-mapped-ipv6"
		}
		if _, ok := familyArgs[f]; !ok {
			return nil, fmt.Errorf("--families: unknown family %q (want ipv4, ipv4-mapped-ipv6, ipv6 or all)", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// familyApplies follows the upstream runner: scripts named *v6.pkt are
// IPv6-only and *v4.pkt IPv4-only.
func familyApplies(script, family string) bool {
	switch family {
	case "ipv4", "ipv4-mapped-ipv6":
		return !strings.HasSuffix(script, "v6.pkt")
	case "ipv6":
		return !strings.HasSuffix(script, "v4.pkt")
	}
	return true
}

func runSuite(c *cli.Context) error {
	format := c.String("format")
	switch format {
	case "text", "tap", "junit", "json":
	default:
		return failf(exitInput, "--format %q: want text, tap, junit or json", format)
	}
	families, err := parseFamilies(c.String("families"))
	if err != nil {
		return withCode(exitInput, err)
	}
	scripts, err := findScripts(c.Args().Slice())
	if err != nil {
		return withCode(exitInput, err)
	}
	if len(scripts) == 0 {
		return failf(exitInput, "replay: no .pkt script found in %s", strings.Join(c.Args().Slice(), " "))
	}
	capDir := c.String("capture-dir")
	if capDir != "" {
		if err := os.MkdirAll(capDir, 0o755); err != nil {
			return withCode(exitInput, err)
		}
	}

	prefix := sandboxPrefix(c)
	var runs []*suiteRun
	for _, s := range scripts {
		for _, fam := range families {
			if !familyApplies(s, fam) {
				continue
			}
			r := &suiteRun{Script: s, Family: fam}
			args := append([]string{"replay"}, familyArgs[fam]...)
			args = append(args, prefix[1:]...)
			if capDir != "" {
				base := strings.TrimSuffix(filepath.Base(s), ".pkt")
				if fam != "" {
					base += "_" + fam
				}
				args = append(args, "--capture", filepath.Join(capDir, base+".pcap"))
			}
			r.args = append(args, s)
			runs = append(runs, r)
		}
	}
	if runs, err = shardRuns(c, runs); err != nil {
		return withCode(exitInput, err)
	}
	if c.Bool("dry_run") {
		// Each script is checked as it would run: with its family's
		// arguments (which define symbols such as CODE).
		failed := false
		for _, r := range runs {
			fcfg, err := replayConfigFor(c, r.Family)
			if err != nil {
				return err
			}
			if _, _, err := loadScript(r.Script, fcfg); err != nil {
				var msgs strings.Builder
				printErrors(&msgs, err)
				for _, l := range strings.Split(strings.TrimRight(msgs.String(), "\n"), "\n") {
					if r.Family != "" {
						l += " [" + r.Family + "]"
					}
					fmt.Fprintln(c.App.ErrWriter, l)
				}
				failed = true
			}
		}
		if failed {
			return reported(exitInput)
		}
		return nil
	}
	jobs := c.Int("jobs")
	if jobs <= 0 {
		jobs = max(1, runtimeCores())
	}
	runner, stopRunner, err := newRunner(c, jobs, nil, capDir)
	if err != nil {
		return err
	}
	defer stopRunner()
	prog := newSuiteStatus(c.App.ErrWriter, len(runs), format == "text" && isTerminal(c.App.ErrWriter))
	ctx := c.Context
	var wg sync.WaitGroup
	worker := func(runner sandboxRunner, work <-chan *suiteRun, ran func(*suiteRun)) {
		defer wg.Done()
		for r := range work {
			if ctx.Err() != nil {
				return
			}
			prog.start(r)
			runOne(ctx, c, runner, r)
			if ran != nil {
				ran(r)
			}
			prog.finish(r, r.Verdict == "pass", r.Verdict != "pass")
		}
	}
	start := time.Now()
	if vr, ok := runner.(*vmRunner); ok {
		// Each VM runs a share fixed before the start (assignRuns), and
		// what each run costs is kept for the next suite's shares.
		costs := openCosts(defaultCostPath(), vr.host.Kernel.ID, c.App.ErrWriter)
		defer costs.save()
		shares, keys := assignRuns(c, costs, runs, jobs)
		for _, share := range shares {
			work := make(chan *suiteRun, len(share))
			for _, r := range share {
				work <- r
			}
			close(work)
			wg.Add(1)
			p := &pinnedRunner{r: vr}
			go worker(p, work, func(r *suiteRun) {
				// A run cut short (a timeout, an error) measured nothing.
				if r.Verdict == "pass" || r.Verdict == "fail" {
					costs.record(keys[r], p.cpu)
				}
			})
		}
	} else {
		work := make(chan *suiteRun)
		for i := 0; i < jobs; i++ {
			wg.Add(1)
			go worker(runner, work, nil)
		}
		for _, r := range runs {
			if ctx.Err() != nil {
				break
			}
			work <- r
		}
		close(work)
	}
	wg.Wait()
	prog.clear()
	if ctx.Err() != nil {
		return withCode(exitFail, errors.New("interrupted; namespaces and processes removed"))
	}

	var failed int
	for _, r := range runs {
		if r.Verdict != "pass" {
			failed++
		}
	}
	if err := writeReport(c.App.Writer, format, runs, time.Since(start)); err != nil {
		return err
	}
	if failed > 0 {
		noteUserNamespace(c)
		return reported(exitFail)
	}
	return nil
}

// runOne runs one script in its own sandbox. Its shell commands run in the
// script's folder, as under the upstream runner.
func runOne(ctx context.Context, c *cli.Context, runner sandboxRunner, r *suiteRun) {
	var out bytes.Buffer
	res, took, err := runner.run(ctx, c.Duration("timeout"), r.args, &out, &out)
	r.Seconds = took.Seconds()
	r.Output = out.String()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		r.Verdict = "timeout"
		r.Failure = &parser.Error{Msg: fmt.Sprintf("timed out after %s; its namespace and processes were removed", c.Duration("timeout"))}
	case err != nil:
		r.Verdict = "error"
		r.Failure = &parser.Error{Msg: err.Error()}
	case res.ExitCode == exitOK:
		r.Verdict = "pass"
	default:
		r.Verdict = "fail"
		if res.ExitCode != exitFail {
			r.Verdict = "error"
		}
		// The child reports its failure as data; one that died before it
		// could (a crash, a signal) leaves only its output.
		r.Failure = res.Failure
		if r.Failure == nil {
			r.Failure = &parser.Error{Msg: firstLine(r.Output)}
		}
	}
}

func runtimeCores() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		return set.Count()
	}
	return 1
}

// newSuiteStatus is a suite's status line over total scripts, named by
// runName.
func newSuiteStatus(w io.Writer, total int, on bool) *statusLine[*suiteRun] {
	return newStatusLine(w, total, on, func(done, total, pass, fail int) string {
		return fmt.Sprintf("[%d/%d] %d passed, %d failed", done, total, pass, fail)
	}, "running", runName)
}

func runName(r *suiteRun) string {
	if r.Family == "" {
		return r.Script
	}
	return r.Script + " (" + r.Family + ")"
}

func writeReport(w io.Writer, format string, runs []*suiteRun, wall time.Duration) error {
	counts := map[string]int{}
	for _, r := range runs {
		counts[r.Verdict]++
	}
	summary := fmt.Sprintf("%d passed, %d failed", counts["pass"], len(runs)-counts["pass"]-counts["skipped"])
	if counts["timeout"] > 0 {
		summary += fmt.Sprintf(" (%d timed out)", counts["timeout"])
	}
	if counts["skipped"] > 0 {
		// verify skips connections it cannot replay.
		summary += fmt.Sprintf(", %d skipped", counts["skipped"])
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Runs    []*suiteRun    `json:"runs"`
			Counts  map[string]int `json:"counts"`
			Seconds float64        `json:"seconds"`
		}{runs, counts, wall.Seconds()})
	case "tap":
		fmt.Fprintf(w, "TAP version 13\n1..%d\n", len(runs))
		for i, r := range runs {
			if r.Verdict == "skipped" {
				fmt.Fprintf(w, "ok %d - %s # SKIP %s\n", i+1, runName(r), r.Failure.Msg)
				continue
			}
			status := "ok"
			if r.Verdict != "pass" {
				status = "not ok"
			}
			fmt.Fprintf(w, "%s %d - %s\n", status, i+1, runName(r))
			if r.Failure != nil {
				fmt.Fprintf(w, "  ---\n  message: %q\n  line: %d\n  verdict: %s\n  ...\n", r.Failure.Msg, r.Failure.Pos.Line, r.Verdict)
			}
		}
		fmt.Fprintf(w, "# %s\n", summary)
		return nil
	case "junit":
		return writeJUnit(w, runs, wall)
	}
	for _, r := range runs {
		fmt.Fprintf(w, "%-7s %s %.2fs\n", strings.ToUpper(r.Verdict), runName(r), r.Seconds)
		if r.Verdict != "pass" {
			for _, l := range strings.Split(strings.TrimRight(r.Output, "\n"), "\n") {
				if l != "" {
					fmt.Fprintf(w, "        %s\n", l)
				}
			}
		}
	}
	fmt.Fprintf(w, "%s in %.1fs\n", summary, wall.Seconds())
	return nil
}

func writeJUnit(w io.Writer, runs []*suiteRun, wall time.Duration) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *failure `xml:"skipped,omitempty"`
		SystemOut string   `xml:"system-out,omitempty"`
	}
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Time     string     `xml:"time,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := testsuite{Name: "pcap2pkt replay", Tests: len(runs), Time: fmt.Sprintf("%.3f", wall.Seconds())}
	for _, r := range runs {
		tc := testcase{Name: r.Script, Classname: "pcap2pkt." + r.Family, Time: fmt.Sprintf("%.3f", r.Seconds), SystemOut: r.Output}
		if r.Family == "" {
			tc.Classname = "pcap2pkt"
		}
		switch {
		case r.Verdict == "skipped":
			tc.Skipped = &failure{Message: r.Failure.Msg, Type: r.Verdict}
		case r.Failure != nil:
			s.Failures++
			tc.Failure = &failure{Message: r.Failure.Msg, Type: r.Verdict, Text: r.Output}
		}
		s.Cases = append(s.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
