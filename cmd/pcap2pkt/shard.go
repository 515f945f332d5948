package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// A CI matrix runs one shard per machine: --shard K/N keeps the K-th of N
// parts of the work. The split depends only on the set of items, never on
// the order they were named in (items are sorted by key first), and balances
// the parts by weight: each item, heaviest first, goes to the lightest part
// so far (the lowest numbered on a tie).

func shardFlags(weightUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "shard", Usage: "run only part `K/N` of the work (K from 1 to N), for a CI matrix; the parts are balanced by " + weightUsage},
	}
}

func replayShardFlags() []cli.Flag {
	return append(shardFlags("the durations in --shard-weights, else by script size"),
		&cli.StringFlag{Name: "shard-weights", Usage: "a verdict `FILE` in the format of packetdrill's reference verdicts (path, family, exit code, verdict, wall seconds, ...) whose durations balance --shard"})
}

// shardSpec is a parsed --shard K/N; n == 0 means all.
type shardSpec struct{ k, n int }

func parseShard(s string) (shardSpec, error) {
	if s == "" {
		return shardSpec{}, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(ks)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 1 || k > n {
		return shardSpec{}, fmt.Errorf("--shard %q: want K/N with 1 <= K <= N", s)
	}
	return shardSpec{k, n}, nil
}

// shardItem is one unit of work: a stable key and a weight.
type shardItem struct {
	key    string
	weight float64
}

// pick returns the indices into items of shard s, in items' order.
func (s shardSpec) pick(items []shardItem) []int {
	if s.n <= 1 {
		all := make([]int, len(items))
		for i := range all {
			all[i] = i
		}
		return all
	}
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return items[order[a]].key < items[order[b]].key })
	sort.SliceStable(order, func(a, b int) bool { return items[order[a]].weight > items[order[b]].weight })
	weights := make([]float64, len(order))
	for a, i := range order {
		weights[a] = items[i].weight
	}
	var mine []int
	for a, bin := range leastLoaded(weights, s.n) {
		if bin == s.k-1 {
			mine = append(mine, order[a])
		}
	}
	sort.Ints(mine)
	return mine
}

// leastLoaded deals items out among n bins in the order given, each to the
// bin with the least weight so far (the first of equals), and returns each
// item's bin: with the heaviest first, the greedy balance of --shard's parts
// and of --kernel's VMs.
func leastLoaded(weights []float64, n int) []int {
	load := make([]float64, n)
	bins := make([]int, len(weights))
	for i, w := range weights {
		best := 0
		for j := 1; j < n; j++ {
			if load[j] < load[best] {
				best = j
			}
		}
		load[best] += w
		bins[i] = best
	}
	return bins
}

// referenceDurations reads a verdict file in the format of
// ../shared/conformance/reference-verdicts.tsv (a header line; path
// relative to gtests/net, family and wall seconds in columns 1, 2 and 5):
// path+"\t"+family -> seconds.
func referenceDurations(name string) (map[string]float64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Split(sc.Text(), "\t")
		if line == 1 || len(fields) < 5 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		sec, err := strconv.ParseFloat(fields[4], 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: wall seconds %q: %v", name, line, fields[4], err)
		}
		out[fields[0]+"\t"+fields[1]] = sec
	}
	return out, sc.Err()
}

// durationOf finds a script's reference duration in a family: the entry
// whose path ends the script's path. Without a family (a plain suite) it
// takes the ipv4 one.
func durationOf(ref map[string]float64, script, family string) (float64, bool) {
	if family == "" {
		family = "ipv4"
	}
	p := strings.ReplaceAll(script, string(os.PathSeparator), "/")
	for {
		if d, ok := ref[p+"\t"+family]; ok {
			return d, true
		}
		_, rest, ok := strings.Cut(p, "/")
		if !ok {
			return 0, false
		}
		p = rest
	}
}

// shardRuns keeps the runs of --shard K/N, weighted by --shard-weights
// (a reference verdict file) where it has the script, else by the script's
// size in bytes scaled to the reference's mean duration per byte.
func shardRuns(c *cli.Context, runs []*suiteRun) ([]*suiteRun, error) {
	spec, err := parseShard(c.String("shard"))
	if err != nil || spec.n == 0 {
		return runs, err
	}
	var ref map[string]float64
	if p := c.String("shard-weights"); p != "" {
		if ref, err = referenceDurations(p); err != nil {
			return nil, fmt.Errorf("--shard-weights: %w", err)
		}
	}
	items := make([]shardItem, len(runs))
	var refSum, sizeSum float64
	var missing []int
	for i, r := range runs {
		items[i].key = r.Script + "\t" + r.Family
		size := 1.0
		if fi, err := os.Stat(r.Script); err == nil {
			size = float64(fi.Size())
		}
		if d, ok := durationOf(ref, r.Script, r.Family); ok {
			items[i].weight = d
			refSum += d
			sizeSum += size
			continue
		}
		items[i].weight = size
		missing = append(missing, i)
	}
	if refSum > 0 {
		for _, i := range missing {
			items[i].weight *= refSum / sizeSum
		}
	}
	var out []*suiteRun
	for _, i := range spec.pick(items) {
		out = append(out, runs[i])
	}
	return out, nil
}
