package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShareOut: each VM's share is fixed by the costs alone, the costliest
// first, each to the VM with the least work so far.
func TestShareOut(t *testing.T) {
	cost := map[*suiteRun]time.Duration{}
	var runs []*suiteRun
	for _, s := range []struct {
		name string
		cost time.Duration
	}{{"d", 10}, {"b", 60}, {"a", 100}, {"c", 50}, {"e", 10}} {
		r := &suiteRun{Script: s.name}
		runs = append(runs, r)
		cost[r] = s.cost
	}
	names := func(shares [][]*suiteRun) string {
		var parts []string
		for _, share := range shares {
			var b strings.Builder
			for _, r := range share {
				b.WriteString(r.Script)
			}
			parts = append(parts, b.String())
		}
		return strings.Join(parts, "|")
	}
	// a: VM 0 (100); b: VM 1 (60); c: VM 1 (110); d: VM 0 (110); e
	// (stable among equals: d came first in runs): VM 0, the first of two
	// equal loads.
	if got := names(shareOut(runs, cost, 2)); got != "ade|bc" {
		t.Errorf("shares %s, want ade|bc", got)
	}
	// More VMs than runs: the rest get nothing.
	if got := names(shareOut(runs[:1], cost, 3)); got != "d||" {
		t.Errorf("shares %s, want d||", got)
	}
}

// TestCostCache: a run's first measurement is kept, later ones are not
// (shares stay as they were); the file is replaced whole; a broken file is
// a warning, then replaced; figures another run saved meanwhile stay.
func TestCostCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cache", "vm-costs.json")
	script := filepath.Join(dir, "a.pkt")
	if err := os.WriteFile(script, []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &suiteRun{Script: script, Family: "ipv4"}
	var warn bytes.Buffer

	c := openCosts(path, "k1", &warn)
	key := c.key(r)
	if key == "" {
		t.Fatal("no key for a readable script")
	}
	if _, ok := c.cost(key); ok {
		t.Fatal("a cost before any was measured")
	}
	c.record(key, 3*time.Second)
	c.record(key, 5*time.Second) // a second measurement in the same run
	c.save()
	if warn.Len() != 0 {
		t.Fatalf("warnings: %s", warn.String())
	}

	c = openCosts(path, "k1", &warn)
	if d, ok := c.cost(key); !ok || d != 3*time.Second {
		t.Fatalf("cost %v %v, want the first measurement, 3s", d, ok)
	}
	c.record(key, 7*time.Second)
	c.save()
	if d, _ := openCosts(path, "k1", &warn).cost(key); d != 3*time.Second {
		t.Errorf("cost %v after another run, want 3s still", d)
	}
	// Another kernel, another family: other keys.
	if other := openCosts(path, "k2", &warn).key(r); other == key {
		t.Errorf("the same key for another kernel")
	}
	if other := c.key(&suiteRun{Script: script, Family: "ipv6"}); other == key {
		t.Errorf("the same key for another family")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("files left beside the cache: %v", ents)
	}

	// Another run saves meanwhile: both runs' figures are in the file.
	a := openCosts(path, "k1", &warn)
	b := openCosts(path, "k1", &warn)
	a.record("ka", time.Second)
	b.record("kb", 2*time.Second)
	a.save()
	b.save()
	c = openCosts(path, "k1", &warn)
	for _, k := range []string{key, "ka", "kb"} {
		if _, ok := c.cost(k); !ok {
			t.Errorf("%s lost", k)
		}
	}

	// A broken file: a warning, no figures, and the next save replaces it.
	if err := os.WriteFile(path, []byte(`{"version":1,"costs":{"x":`), 0o644); err != nil {
		t.Fatal(err)
	}
	warn.Reset()
	c = openCosts(path, "k1", &warn)
	if !strings.Contains(warn.String(), "warning: ignoring the VM cost cache "+path) {
		t.Errorf("warning %q", warn.String())
	}
	if _, ok := c.cost(key); ok {
		t.Error("a cost from a broken file")
	}
	c.record(key, 4*time.Second)
	c.save()
	warn.Reset()
	if d, _ := openCosts(path, "k1", &warn).cost(key); d != 4*time.Second || warn.Len() != 0 {
		t.Errorf("after the broken file was replaced: cost %v, warnings %q", d, warn.String())
	}

	// A folder that cannot be written: a warning, nothing else.
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		c = openCosts(filepath.Join(ro, "vm-costs.json"), "k1", &warn)
		c.record(key, time.Second)
		warn.Reset()
		c.save()
		if !strings.Contains(warn.String(), "not written") {
			t.Errorf("warning %q", warn.String())
		}
	}
}
