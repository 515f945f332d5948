package replay

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sysctlPath is the file of a sysctl under /proc/sys, which belongs to the
// network namespace of the thread that opens it.
func sysctlPath(name string) string {
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

// Available says why this host cannot make the change, or nil. It only
// reads: a namespace may choose only a congestion control that the host's
// net.ipv4.tcp_allowed_congestion_control lists (an init-namespace
// setting), and a sysctl must exist on this kernel.
func (m Mutation) Available() error {
	if m.Sysctl == "" {
		return nil
	}
	if _, err := os.Stat(sysctlPath(m.Sysctl)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("this kernel has no %s", m.Sysctl)
	}
	if m.Sysctl != "net.ipv4.tcp_congestion_control" {
		return nil
	}
	b, err := os.ReadFile(sysctlPath("net.ipv4.tcp_allowed_congestion_control"))
	if err != nil {
		return err
	}
	allowed := strings.Fields(string(b))
	for _, a := range allowed {
		if a == m.Value {
			return nil
		}
	}
	return fmt.Errorf("%s is not in this host's net.ipv4.tcp_allowed_congestion_control (%s), and a network namespace may only choose an allowed one; "+
		"as root: sysctl -w net.ipv4.tcp_allowed_congestion_control=\"%s %s\" makes it available", m.Value, strings.Join(allowed, " "), strings.Join(allowed, " "), m.Value)
}

// MutationRun applies one mutation in the network namespace of the calling
// thread (which must stay on it: runtime.LockOSThread), never the host's:
// StartMutation reads the namespace's own value, Apply changes it once the
// script's init command has run, Finish reads where it ended.
type MutationRun struct {
	m      Mutation
	report MutationReport
}

// StartMutation checks that the calling thread is in a network namespace
// other than the host's and that the change can be made, and records the
// setting's value before the script runs. A change this host cannot make
// gives an error; the report then says why (Report).
func StartMutation(m Mutation) (*MutationRun, error) {
	r := &MutationRun{m: m, report: MutationReport{Name: m.Name, Setting: m.Setting(), Value: m.Value}}
	if err := ownNetworkNamespace(); err != nil {
		return nil, err
	}
	if err := m.Available(); err != nil {
		r.report.State, r.report.Why = MutationUnavailable, err.Error()
		return r, err
	}
	v, err := m.read()
	if err != nil {
		return nil, err
	}
	r.report.Default = v
	return r, nil
}

// Apply sets the mutation's value; call it after the script's init
// command, so that the script's own settings cannot undo it.
func (r *MutationRun) Apply() error {
	v, err := r.m.read()
	if err != nil {
		return err
	}
	if v != r.m.Value {
		if err := r.m.write(); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOENT) {
				r.report.State, r.report.Why = MutationUnavailable, err.Error()
			}
			return err
		}
		got, err := r.m.read()
		if err != nil {
			return err
		}
		if got != r.m.Value {
			return fmt.Errorf("%s: wrote %s, reads back %s", r.m.Setting(), r.m.Value, got)
		}
	}
	r.report.applied(v)
	return nil
}

// Finish records the setting's value at the end of the run and returns the
// report.
func (r *MutationRun) Finish() MutationReport {
	if r.report.State == MutationApplied {
		if v, err := r.m.read(); err == nil {
			r.report.ended(v)
		}
	}
	return r.report
}

// Report is the report so far (for a run that stopped early).
func (r *MutationRun) Report() MutationReport { return r.report }

// startNetNS is the network namespace this process started in: the
// host's, for every process but the sandbox (whose namespace was made for
// it by RunSandboxed), and never to be changed.
var startNetNS, startNetNSErr = os.Stat("/proc/self/ns/net")

// ownNetworkNamespace refuses the host's network namespace: the sandbox
// may change its own; any other process only a namespace its calling
// thread entered, not the one the process started in.
func ownNetworkNamespace() error {
	if InSandbox() {
		return nil
	}
	if startNetNSErr != nil {
		return fmt.Errorf("replay: mutation refused: cannot tell this network namespace from the host's: %w", startNetNSErr)
	}
	self, err := os.Stat("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("replay: mutation refused: cannot tell this network namespace from the host's: %w", err)
	}
	if os.SameFile(self, startNetNS) {
		return errors.New("replay: mutation refused: this thread is in the host's network namespace")
	}
	return nil
}

func (m Mutation) read() (string, error) {
	if m.RouteMetric != "" {
		return readRouteMetric(m.RouteMetric)
	}
	b, err := os.ReadFile(sysctlPath(m.Sysctl))
	if err != nil {
		return "", fmt.Errorf("replay: read %s: %w", m.Sysctl, err)
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

func (m Mutation) write() error {
	if m.RouteMetric != "" {
		return writeRouteMetric(m.RouteMetric, m.Value)
	}
	if err := os.WriteFile(sysctlPath(m.Sysctl), []byte(m.Value), 0); err != nil {
		return fmt.Errorf("replay: set %s=%s: %w", m.Sysctl, m.Value, err)
	}
	return nil
}

// routeUnset is how a report shows a route metric that no route sets.
const routeUnset = "unset"

// unicastRoutes lists the routes of the main table through devices other
// than lo, both families: those that a connection's packets take.
func unicastRoutes(nl *netlink.Handle) ([]netlink.Route, error) {
	routes, err := nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("replay: list routes: %w", err)
	}
	var out []netlink.Route
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST || r.LinkIndex == 0 {
			continue
		}
		if l, err := nl.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("replay: no route to set a metric on")
	}
	return out, nil
}

func metricOf(r *netlink.Route, name string) *int {
	switch name {
	case "initcwnd":
		return &r.InitCwnd
	case "quickack":
		return &r.QuickACK
	}
	panic("replay: unknown route metric " + name)
}

// readRouteMetric returns the metric's value on the routes, "unset" when
// none sets it, or the values of all routes when they differ.
func readRouteMetric(name string) (string, error) {
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("replay: netlink: %w", err)
	}
	defer nl.Close()
	routes, err := unicastRoutes(nl)
	if err != nil {
		return "", err
	}
	var vals []string
	for i := range routes {
		v := routeUnset
		if n := *metricOf(&routes[i], name); n != 0 {
			v = strconv.Itoa(n)
		}
		if len(vals) == 0 || vals[len(vals)-1] != v {
			vals = append(vals, v)
		}
	}
	if len(vals) == 1 {
		return vals[0], nil
	}
	return strings.Join(vals, ","), nil
}

// writeRouteMetric sets the metric on every route a connection can take.
func writeRouteMetric(name, value string) error {
	n, err := strconv.Atoi(value)
	if err != nil {
		return fmt.Errorf("replay: route %s %q: %w", name, value, err)
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("replay: netlink: %w", err)
	}
	defer nl.Close()
	routes, err := unicastRoutes(nl)
	if err != nil {
		return err
	}
	for i := range routes {
		r := &routes[i]
		*metricOf(r, name) = n
		if err := nl.RouteReplace(r); err != nil {
			return fmt.Errorf("replay: route %v: set %s %d: %w", r.Dst, name, n, err)
		}
	}
	return nil
}
