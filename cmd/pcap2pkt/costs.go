package main

// With --kernel a suite is shared out among the VMs before the start
// (assignRuns), by what each script costs there. A script's cost is measured
// when it runs, as the processor time its run took in the guest (in
// deterministic time one nanosecond per instruction, whatever the host's
// load), and kept in a small cache under the user's cache folder, one entry
// per script content, family and kernel image. An entry is written once and
// never measured again: a run's processor time still varies a little (a
// guest's state differs with what ran before), and shares cut anew by the
// last run's figures would differ from run to run, which sharing out before
// the start is there to avoid. A script not yet measured gets an estimate.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/urfave/cli/v2"
)

// costFileVersion changes when the meaning of the figures does; a file of
// another version is ignored (and replaced at the next save). 2: shell
// lines of sysctl, ip and tc run in pcap2pkt, no longer in programs (a
// script with defaults.sh 60 ms cheaper).
const costFileVersion = 2

type costFile struct {
	Version int `json:"version"`
	// Costs are guest processor nanoseconds by costKey.
	Costs map[string]int64 `json:"costs"`
}

// costCache is the cache of one suite run: the figures known at the start
// and those measured since.
type costCache struct {
	path   string // "" without a cache folder: estimates only
	kernel string // vm.Kernel.ID
	warn   io.Writer

	mu    sync.Mutex
	known map[string]int64
	added map[string]int64
}

// openCosts reads the cache of path (missing is empty). A cache that cannot
// be read or parsed is ignored with a warning: it only orders the work.
func openCosts(path, kernel string, warn io.Writer) *costCache {
	c := &costCache{path: path, kernel: kernel, warn: warn, known: map[string]int64{}, added: map[string]int64{}}
	if path == "" {
		return c
	}
	if f, err := readCostFile(path); err != nil {
		fmt.Fprintf(warn, "pcap2pkt: warning: ignoring the VM cost cache %s: %v\n", path, err)
	} else {
		c.known = f.Costs
	}
	return c
}

// readCostFile reads a cost file; a missing one is empty.
func readCostFile(path string) (*costFile, error) {
	f := &costFile{Version: costFileVersion, Costs: map[string]int64{}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	var got costFile
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, err
	}
	if got.Version != costFileVersion {
		return nil, fmt.Errorf("version %d, not %d", got.Version, costFileVersion)
	}
	for k, v := range got.Costs {
		if v > 0 {
			f.Costs[k] = v
		}
	}
	return f, nil
}

// defaultCostPath is where the cache lives: the user's cache folder, where
// the extracted vmlinux is too.
func defaultCostPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "pcap2pkt", "vm-costs.json")
}

// key names a run's script by its content (a script edited is another
// script; one copied elsewhere is the same), with its family and the kernel.
// A script that cannot be read has no key.
func (c *costCache) key(r *suiteRun) string {
	b, err := os.ReadFile(r.Script)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return c.kernel + " " + r.Family + " " + hex.EncodeToString(sum[:16])
}

// cost is the run's measured cost, if there is one.
func (c *costCache) cost(key string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.known[key]; ok {
		return time.Duration(v), true
	}
	return 0, false
}

// record keeps a run's first measurement.
func (c *costCache) record(key string, d time.Duration) {
	if key == "" || d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.known[key]; ok {
		return
	}
	if _, ok := c.added[key]; !ok {
		c.added[key] = int64(d)
	}
}

// save adds the new figures to the file as it is now (another pcap2pkt may
// have written it meanwhile; its figures stay), through a temporary file
// renamed over it, so that the file is never half written. A failure is a
// warning.
func (c *costCache) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path == "" || len(c.added) == 0 {
		return
	}
	f, err := readCostFile(c.path)
	if err != nil {
		// Broken: replaced by what this run knows.
		f = &costFile{Version: costFileVersion, Costs: map[string]int64{}}
		for k, v := range c.known {
			f.Costs[k] = v
		}
	}
	for k, v := range c.added {
		if _, ok := f.Costs[k]; !ok {
			f.Costs[k] = v
		}
	}
	if err := writeCostFile(c.path, f); err != nil {
		fmt.Fprintf(c.warn, "pcap2pkt: warning: the VM cost cache %s not written: %v\n", c.path, err)
	}
}

func writeCostFile(path string, f *costFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vm-costs-*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// assignRuns splits runs among n VMs before any runs, the costliest first,
// each to the VM with the least work so far: each VM's scripts and their
// order are then fixed by the suite and the cache alone. A VM that took the
// next run whenever it was free would get scripts in an order that follows
// the host's timing, and a guest's state (its timers, its caches, what ran
// before) differs with what it ran. keys are the runs' cache keys.
func assignRuns(c *cli.Context, costs *costCache, runs []*suiteRun, n int) (shares [][]*suiteRun, keys map[*suiteRun]string) {
	keys = map[*suiteRun]string{}
	cost := map[*suiteRun]time.Duration{}
	for _, r := range runs {
		keys[r] = costs.key(r)
		if d, ok := costs.cost(keys[r]); ok {
			cost[r] = d
		} else {
			cost[r] = estimateCost(c, r.Script, r.Family)
		}
	}
	return shareOut(runs, cost, n), keys
}

// shareOut is assignRuns with the runs' costs given.
func shareOut(runs []*suiteRun, cost map[*suiteRun]time.Duration, n int) [][]*suiteRun {
	order := append([]*suiteRun(nil), runs...)
	sort.SliceStable(order, func(i, j int) bool { return cost[order[i]] > cost[order[j]] })
	weights := make([]float64, len(order))
	for i, r := range order {
		weights[i] = float64(cost[r])
	}
	out := make([][]*suiteRun, n)
	for i, bin := range leastLoaded(weights, n) {
		out[bin] = append(out[bin], order[i])
	}
	return out
}

// What a run costs in a VM's processor time, for a script never measured:
// a script's waits cost nothing (deterministic time skips idle time); what
// costs is the guest's work, most of all starting programs: the sandbox's
// child, and a shell for each shell line that needs one (those of sysctl,
// ip and tc that pcap2pkt runs itself cost little); a %{ }% block costs
// less (one python3 runs them all). Fitted to the measured costs of
// upstream's ipv4 suite in Debian's 6.1 (29-259 ms a script, 13.3 s in
// all): 38 ms a run, 48 ms a line run by the shell, 3.5 ms one run by
// pcap2pkt, 5 ms a block, the events nothing to speak of; the estimates
// are 35% off on average (the cheapest scripts the furthest).
const (
	runCost        = 38 * time.Millisecond
	commandCost    = 48 * time.Millisecond
	ownCommandCost = 4 * time.Millisecond
	codeCost       = 5 * time.Millisecond
)

func estimateCost(c *cli.Context, name, family string) time.Duration {
	cfg, err := replayConfigFor(c, family)
	if err != nil {
		return runCost
	}
	s, _, err := parseScriptFile(name, &parser.Config{Defines: cfg.Defines})
	if err != nil {
		return runCost
	}
	dir := filepath.Dir(name)
	line := func(text string) time.Duration {
		if replay.StartsShell(text, dir) {
			return commandCost
		}
		return ownCommandCost
	}
	d := runCost
	if s.Init != nil {
		d += line(s.Init.Text)
	}
	if s.Cleanup != nil {
		d += line(s.Cleanup.Text)
	}
	for _, e := range s.Events {
		switch a := e.Action.(type) {
		case *parser.Command:
			d += line(a.Text)
		case *parser.Code:
			d += codeCost
		}
	}
	return d
}
