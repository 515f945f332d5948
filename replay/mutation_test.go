package replay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

func TestMutationCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Mutations() {
		if seen[m.Name] || m.Name == "all" {
			t.Errorf("mutation name %q twice or reserved", m.Name)
		}
		seen[m.Name] = true
		if (m.Sysctl == "") == (m.RouteMetric == "") || m.Value == "" || m.What == "" {
			t.Errorf("%s: want one setting, a value and a description: %+v", m.Name, m)
		}
		if m.Sysctl != "" && !strings.HasPrefix(m.Sysctl, "net.ipv4.tcp_") {
			// Only the namespace's TCP settings: nothing of the host's.
			t.Errorf("%s: %s is not a per-namespace TCP sysctl", m.Name, m.Sysctl)
		}
	}
	got, err := LookupMutations("sack-off, cc-reno")
	if err != nil || len(got) != 2 || got[0].Name != "cc-reno" || got[1].Name != "sack-off" {
		t.Errorf("LookupMutations: %v, %v; want cc-reno, sack-off in the catalogue's order", got, err)
	}
	if all, _ := LookupMutations("all"); len(all) != len(Mutations()) {
		t.Errorf("all: %d of %d", len(all), len(Mutations()))
	}
	if _, err := LookupMutations("sack-off,nope"); err == nil || !strings.Contains(err.Error(), `no mutation "nope"`) {
		t.Errorf("unknown name: %v", err)
	}
}

func TestMutationReportStates(t *testing.T) {
	cases := []struct {
		def, script, end string
		state, why       string
	}{
		{"1", "1", "0", MutationApplied, ""},
		{"1", "2", "0", MutationApplied, "replaces the script's own net.ipv4.tcp_sack=2"},
		{"1", "0", "0", MutationNoChange, "the script's init command sets"},
		{"0", "0", "0", MutationNoChange, "in a new namespace already"},
		{"1", "1", "1", MutationOverridden, "the script set net.ipv4.tcp_sack=1 during its run"},
	}
	for _, c := range cases {
		r := MutationReport{Setting: "net.ipv4.tcp_sack", Value: "0", Default: c.def}
		r.applied(c.script)
		r.ended(c.end)
		if r.State != c.state || !strings.Contains(r.Why, c.why) || (c.why == "" && r.Why != "") {
			t.Errorf("default %s, script %s, end %s: %s (%s); want %s (%s)", c.def, c.script, c.end, r.State, r.Why, c.state, c.why)
		}
	}
}

// TestAfterInit: the hook runs after the init command and before the
// first event, and its error stops the run there.
func TestAfterInit(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "init-ran")
	src := "`touch " + mark + "`\n0 `test -e after-init`\n"
	s, err := parser.ParseFile(filepath.Join(dir, "hook.pkt"), []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(hook func() error) error {
		var out bytes.Buffer
		return Run(context.Background(), s, NewConfig(), &Env{Device: replaytest.NewDevice(), Clock: replaytest.NewClock(), Host: &fakeHost{},
			Stdout: &out, Stderr: &out, Dir: dir, AfterInit: hook})
	}
	err = run(func() error {
		if _, err := os.Stat(mark); err != nil {
			t.Errorf("the hook ran before the init command: %v", err)
		}
		return os.WriteFile(filepath.Join(dir, "after-init"), nil, 0o644)
	})
	if err != nil {
		t.Errorf("run with the hook: %v", err)
	}
	os.Remove(filepath.Join(dir, "after-init"))
	boom := errors.New("boom")
	err = run(func() error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "after the init command: boom") {
		t.Errorf("a failing hook: %v", err)
	}
}
