package replay

// This file holds the behaviour changes of `verify --mutate`: settings of
// the kernel under test that a replay changes in its own network namespace
// after the script's init command, as a kernel change would act, to measure
// whether the script notices. Every one is a per-namespace setting (a
// net.ipv4 sysctl of the namespace, or a metric of its routes): none
// reaches the host.

import (
	"fmt"
	"sort"
	"strings"
)

// Mutation is one behaviour change: a sysctl of the namespace or a metric
// of its routes set to Value.
type Mutation struct {
	Name string // as --mutations names it: "sack-off"
	What string // for people: "SACK off"
	// Sysctl is the setting's name ("net.ipv4.tcp_sack"); RouteMetric is
	// set instead for a metric of the namespace's routes ("initcwnd").
	Sysctl      string
	RouteMetric string
	Value       string
}

// Setting names what the mutation changes, as sysctl(8) or ip-route(8)
// would write it.
func (m Mutation) Setting() string {
	if m.RouteMetric != "" {
		return "route " + m.RouteMetric
	}
	return m.Sysctl
}

func (m Mutation) String() string { return fmt.Sprintf("%s (%s=%s)", m.What, m.Setting(), m.Value) }

// mutations is the catalogue, in the order reports list it. Each one
// changes what a kernel decides on some connection: its handshake options,
// how it grows and paces its window, how and when it retransmits, when it
// acknowledges.
var mutations = []Mutation{
	{Name: "cc-reno", What: "congestion control reno", Sysctl: "net.ipv4.tcp_congestion_control", Value: "reno"},
	{Name: "cc-cubic", What: "congestion control cubic", Sysctl: "net.ipv4.tcp_congestion_control", Value: "cubic"},
	{Name: "cc-bbr", What: "congestion control bbr", Sysctl: "net.ipv4.tcp_congestion_control", Value: "bbr"},
	{Name: "initcwnd-4", What: "initial congestion window 4", RouteMetric: "initcwnd", Value: "4"},
	{Name: "sack-off", What: "SACK off", Sysctl: "net.ipv4.tcp_sack", Value: "0"},
	{Name: "timestamps-off", What: "timestamps off", Sysctl: "net.ipv4.tcp_timestamps", Value: "0"},
	{Name: "wscale-off", What: "window scaling off", Sysctl: "net.ipv4.tcp_window_scaling", Value: "0"},
	{Name: "ecn-on", What: "ECN requested", Sysctl: "net.ipv4.tcp_ecn", Value: "1"},
	{Name: "rack-off", What: "RACK loss detection off", Sysctl: "net.ipv4.tcp_recovery", Value: "0"},
	{Name: "tlp-off", What: "tail loss probes off", Sysctl: "net.ipv4.tcp_early_retrans", Value: "0"},
	{Name: "frto-off", What: "F-RTO off", Sysctl: "net.ipv4.tcp_frto", Value: "0"},
	{Name: "rto-min-400ms", What: "minimum RTO 400 ms", Sysctl: "net.ipv4.tcp_rto_min_us", Value: "400000"},
	{Name: "reordering-10", What: "initial reordering degree 10", Sysctl: "net.ipv4.tcp_reordering", Value: "10"},
	{Name: "dsack-off", What: "D-SACK off", Sysctl: "net.ipv4.tcp_dsack", Value: "0"},
	{Name: "sack-compress-off", What: "SACK compression off", Sysctl: "net.ipv4.tcp_comp_sack_nr", Value: "0"},
	{Name: "thin-linear-rto", What: "linear RTOs for thin streams", Sysctl: "net.ipv4.tcp_thin_linear_timeouts", Value: "1"},
	{Name: "syn-linear-off", What: "exponential SYN timeouts from the first", Sysctl: "net.ipv4.tcp_syn_linear_timeouts", Value: "0"},
	{Name: "syn-retries-1", What: "one SYN retransmission", Sysctl: "net.ipv4.tcp_syn_retries", Value: "1"},
	{Name: "autocork-off", What: "autocorking off", Sysctl: "net.ipv4.tcp_autocorking", Value: "0"},
	{Name: "ssai-off", What: "slow start after idle off", Sysctl: "net.ipv4.tcp_slow_start_after_idle", Value: "0"},
	{Name: "min-tso-segs-8", What: "TSO bursts of at least 8 segments", Sysctl: "net.ipv4.tcp_min_tso_segs", Value: "8"},
	{Name: "quickack", What: "no delayed ACKs", RouteMetric: "quickack", Value: "1"},
	{Name: "rcvbuf-autotune-off", What: "receive buffer autotuning off", Sysctl: "net.ipv4.tcp_moderate_rcvbuf", Value: "0"},
	{Name: "pingpong-3", What: "delayed ACKs only after 3 interactive exchanges", Sysctl: "net.ipv4.tcp_pingpong_thresh", Value: "3"},
}

// Mutations returns the catalogue.
func Mutations() []Mutation { return append([]Mutation(nil), mutations...) }

// LookupMutations returns the mutations a comma-separated list names, in
// the catalogue's order; "all" or "" names every one.
func LookupMutations(list string) ([]Mutation, error) {
	if list == "" || list == "all" {
		return Mutations(), nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, err := LookupMutation(n); err != nil {
			return nil, err
		}
		want[n] = true
	}
	var out []Mutation
	for _, m := range mutations {
		if want[m.Name] {
			out = append(out, m)
		}
	}
	return out, nil
}

// LookupMutation returns the mutation of that name.
func LookupMutation(name string) (Mutation, error) {
	for _, m := range mutations {
		if m.Name == name {
			return m, nil
		}
	}
	names := make([]string, len(mutations))
	for i, m := range mutations {
		names[i] = m.Name
	}
	sort.Strings(names)
	return Mutation{}, fmt.Errorf("no mutation %q (known: %s)", name, strings.Join(names, ", "))
}

// What a mutation came to in one run (MutationReport.State).
const (
	// MutationApplied: the setting had another value after the script's
	// init command, and held the mutation's value to the end.
	MutationApplied = "applied"
	// MutationNoChange: the setting already had the mutation's value after
	// the script's init command (the namespace's default, or the script
	// set it): the run was the unchanged one.
	MutationNoChange = "no change"
	// MutationOverridden: the script set the setting again during its run.
	MutationOverridden = "overridden"
	// MutationUnavailable: this host cannot make the change (a congestion
	// control the host does not allow, a setting this kernel lacks).
	MutationUnavailable = "not available"
)

// MutationReport is what a mutation came to in one run; it travels from
// the sandbox to verify as JSON.
type MutationReport struct {
	Name    string `json:"name"`
	Setting string `json:"setting"`
	Value   string `json:"value"`   // what the mutation sets
	Default string `json:"default"` // the namespace's value before the script's init command
	Script  string `json:"script"`  // after the script's init command
	End     string `json:"end"`     // when the script ended
	State   string `json:"state"`
	Why     string `json:"why,omitempty"`
}

// applied records the state once the mutation's value was written (or
// found there): script is the value after the init command.
func (r *MutationReport) applied(script string) {
	r.Script = script
	switch {
	case script == r.Value && r.Default != r.Value:
		r.State, r.Why = MutationNoChange, fmt.Sprintf("the script's init command sets %s=%s itself", r.Setting, r.Value)
	case script == r.Value:
		r.State, r.Why = MutationNoChange, fmt.Sprintf("%s is %s in a new namespace already", r.Setting, r.Value)
	default:
		r.State = MutationApplied
		if script != r.Default {
			r.Why = fmt.Sprintf("replaces the script's own %s=%s", r.Setting, script)
		}
	}
}

// ended records the value the setting had when the script ended.
func (r *MutationReport) ended(end string) {
	r.End = end
	if r.State == MutationApplied && end != r.Value {
		r.State, r.Why = MutationOverridden, fmt.Sprintf("the script set %s=%s during its run", r.Setting, end)
	}
}
