package replay

import (
	"strings"
	"testing"
)

// TestMutationRefusesHost: outside a namespace of its own, a mutation
// refuses to start and changes nothing.
func TestMutationRefusesHost(t *testing.T) {
	requireRoot(t)
	if InSandbox() {
		t.Skip("in a sandbox")
	}
	m, _ := LookupMutation("sack-off")
	before, err := m.read()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartMutation(m); err == nil || !strings.Contains(err.Error(), "host's network namespace") {
		t.Errorf("StartMutation in the host's namespace: %v", err)
	}
	if after, _ := m.read(); after != before {
		t.Fatalf("the host's %s changed from %s to %s", m.Sysctl, before, after)
	}
}

// TestMutationApply makes every change this host allows in a sandbox's
// namespace, with its TUN routes up, and reads it back.
func TestMutationApply(t *testing.T) {
	if !inSandbox(t) {
		return
	}
	cfg := NewConfig()
	if err := cfg.finalize(); err != nil {
		t.Fatal(err)
	}
	dev, err := SetupNetwork(cfg.NetConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	for _, m := range Mutations() {
		run, err := StartMutation(m)
		if m.Available() != nil {
			if err == nil || run.Report().State != MutationUnavailable {
				t.Errorf("%s: not available here, but started: %v", m.Name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		if err := run.Apply(); err != nil {
			t.Errorf("%s: apply: %v", m.Name, err)
			continue
		}
		rep := run.Finish()
		if got, _ := m.read(); got != m.Value || (rep.State != MutationApplied && rep.State != MutationNoChange) {
			t.Errorf("%s: reads %s after the change, report %+v", m.Name, got, rep)
		}
		if rep.State == MutationNoChange && rep.Default != m.Value {
			t.Errorf("%s: no change although the namespace had %s", m.Name, rep.Default)
		}
	}
}
