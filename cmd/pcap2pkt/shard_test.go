package main

import (
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const referenceVerdicts = "../../../shared/conformance/reference-verdicts.tsv"

// TestShardUpstream splits the upstream tcp suite's ipv4 runs as a CI
// matrix would: every run in exactly one shard, the same shards whatever
// the order the scripts were named in, and the parts balanced by the
// reference durations to within the longest single script.
func TestShardUpstream(t *testing.T) {
	needShared(t, referenceVerdicts)
	scripts, err := findScripts([]string{"../../../shared/conformance/packetdrill/gtests/net/tcp"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := referenceDurations(referenceVerdicts)
	if err != nil {
		t.Fatal(err)
	}
	var items []shardItem
	longest, total := 0.0, 0.0
	for _, s := range scripts {
		if !familyApplies(s, "ipv4") {
			continue
		}
		d, ok := durationOf(ref, s, "ipv4")
		if !ok {
			t.Fatalf("%s: no reference duration", s)
		}
		items = append(items, shardItem{key: s, weight: d})
		longest, total = max(longest, d), total+d
	}
	for _, n := range []int{2, 3, 4} {
		seen := map[string]int{}
		var loads []float64
		for k := 1; k <= n; k++ {
			load := 0.0
			mine := shardSpec{k, n}.pick(items)
			for _, i := range mine {
				seen[items[i].key]++
				load += items[i].weight
			}
			loads = append(loads, load)

			shuffled := slices.Clone(items)
			rand.New(rand.NewSource(int64(k))).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
			if a, b := keys(items, mine), keys(shuffled, shardSpec{k, n}.pick(shuffled)); !slices.Equal(a, b) {
				t.Errorf("shard %d/%d depends on the order of the scripts", k, n)
			}
		}
		for key, c := range seen {
			if c != 1 {
				t.Errorf("%d shards: %s in %d shards", n, filepath.Base(key), c)
			}
		}
		if len(seen) != len(items) {
			t.Errorf("%d shards hold %d of %d runs", n, len(seen), len(items))
		}
		if spread := slices.Max(loads) - slices.Min(loads); spread > longest {
			t.Errorf("%d shards: loads %.1f s, spread over the longest script (%.1f s)", n, loads, longest)
		}
		t.Logf("%d shards of %.1f s of reference runs: %.1f s", n, total, loads)
	}
}

func keys(items []shardItem, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, items[i].key)
	}
	sort.Strings(out)
	return out
}

func TestParseShard(t *testing.T) {
	for _, bad := range []string{"0/2", "3/2", "1", "a/b", "1/0"} {
		if _, err := parseShard(bad); err == nil {
			t.Errorf("--shard %s accepted", bad)
		}
	}
	if s, err := parseShard("2/3"); err != nil || s != (shardSpec{2, 3}) {
		t.Errorf("2/3: %v %v", s, err)
	}
}

// TestShardReplayDryRun: a shard checks only its own scripts.
func TestShardReplayDryRun(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "a.pkt")
	good := filepath.Join(dir, "b.pkt")
	writeFile(t, bad, "0 socket(..., SOCK_STREAM = 3\n")
	writeFile(t, good, "0 socket(..., SOCK_STREAM, 0 ) = 3\n")
	bads := 0
	for _, k := range []string{"1/2", "2/2"} {
		code, _, errs := runCLI(t, "replay", "--dry_run", "--shard", k, dir)
		switch {
		case code == exitInput && strings.Contains(errs, "a.pkt:1:"):
			bads++
		case code != exitOK:
			t.Errorf("shard %s: exit %d, stderr %q", k, code, errs)
		}
	}
	if bads != 1 {
		t.Errorf("the bad script was checked in %d shards, want 1", bads)
	}
}

func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
