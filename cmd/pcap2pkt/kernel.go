package main

// With --kernel, the sandboxed runs of replay and verify happen in VMs that
// boot that kernel (replay/vm), one run at a time per VM; the rest of each
// command (reading scripts, verdicts, reports) is the same code as on the
// host, so its output is the same.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/pcap2pkt/pcap2pkt/replay/vm"
	"github.com/urfave/cli/v2"
)

func kernelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kernel", Usage: "run in VMs (QEMU) that boot kernel `IMAGE` (a bzImage/vmlinuz or a vmlinux) instead of on this kernel", Category: "other kernels"},
		&cli.StringFlag{Name: "modules", Usage: "the kernel's module `DIR` (default /lib/modules/RELEASE)", Category: "other kernels"},
		&cli.BoolFlag{Name: "deterministic", Value: true, Usage: "under TCG, run the VMs in virtual time (one nanosecond per instruction): timing independent of the host's load", Category: "other kernels"},
	}
}

// sandboxRunner runs one sandboxed child (pcap2pkt's own arguments) on this
// kernel or in a VM, and says how it ended (its exit code and the failure
// it reported) and how long it took there.
// A run that exceeds timeout is killed and returns context.DeadlineExceeded.
type sandboxRunner interface {
	run(ctx context.Context, timeout time.Duration, args []string, stdout, stderr io.Writer) (res replay.SandboxResult, took time.Duration, err error)
}

// hostRunner runs children on this kernel.
type hostRunner struct{ stdin io.Reader }

func (h hostRunner) run(ctx context.Context, timeout time.Duration, args []string, stdout, stderr io.Writer) (replay.SandboxResult, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	res, err := replay.RunSandboxed(ctx, args, h.stdin, stdout, stderr)
	return res, time.Since(t0), err
}

// vmRunner runs children in up to max VMs, booting them as runs need them.
type vmRunner struct {
	host *vm.Host
	dir  string // the folder of relative paths in the children's arguments
	idle chan *vm.Machine
	max  int

	mu     sync.Mutex
	booted int
	all    []*vm.Machine
}

// newRunner returns the runner for --kernel (VMs, at most jobs at once, the
// first booted before it returns, so that a kernel that cannot run scripts
// is reported once) or the host's. writable are the host folders that runs
// write into; stdin is the host's children's. The returned function stops
// the VMs.
func newRunner(c *cli.Context, jobs int, stdin io.Reader, writable ...string) (sandboxRunner, func(), error) {
	if !c.IsSet("kernel") {
		if c.IsSet("modules") {
			return nil, nil, failf(exitInput, "--modules goes with --kernel")
		}
		if err := canReplay(); err != nil {
			return nil, nil, withCode(exitEnv, err)
		}
		return hostRunner{stdin}, func() {}, nil
	}
	var w []string
	for _, d := range writable {
		if d != "" {
			w = append(w, d)
		}
	}
	h, err := vm.Prepare(vm.Options{
		Kernel:        c.String("kernel"),
		Modules:       c.String("modules"),
		Deterministic: c.Bool("deterministic"),
		Writable:      w,
	})
	if err != nil {
		return nil, nil, vmError(err)
	}
	dir, err := os.Getwd()
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	r := &vmRunner{host: h, dir: dir, idle: make(chan *vm.Machine, jobs), max: max(1, jobs)}
	m, err := h.Boot(c.Context)
	if err != nil {
		h.Close()
		return nil, nil, vmError(err)
	}
	r.booted = 1
	r.all = append(r.all, m)
	r.idle <- m
	return r, r.stop, nil
}

// vmError gives errors of replay/vm their exit code: a kernel or host that
// cannot run scripts in a VM is exit 3, a file that is no kernel exit 2.
func vmError(err error) error {
	var u *vm.UnsupportedError
	if errors.As(err, &u) {
		return withCode(exitEnv, err)
	}
	return withCode(exitInput, err)
}

func (r *vmRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.all {
		m.Close()
	}
	r.host.Close()
}

// machine returns an idle machine, booting one while fewer than max are.
func (r *vmRunner) machine(ctx context.Context) (*vm.Machine, error) {
	select {
	case m := <-r.idle:
		return m, nil
	default:
	}
	r.mu.Lock()
	if r.booted < r.max {
		r.booted++
		r.mu.Unlock()
		m, err := r.host.Boot(ctx)
		r.mu.Lock()
		if err != nil {
			r.booted--
		} else {
			r.all = append(r.all, m)
		}
		r.mu.Unlock()
		return m, err
	}
	r.mu.Unlock()
	select {
	case m := <-r.idle:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run's timeout and the time it returns are the host's.
func (r *vmRunner) run(ctx context.Context, timeout time.Duration, args []string, stdout, stderr io.Writer) (replay.SandboxResult, time.Duration, error) {
	m, err := r.machine(ctx)
	if err != nil {
		return replay.SandboxResult{ExitCode: -1}, 0, err
	}
	res, took, _, ok, err := r.runOn(ctx, m, timeout, args, stdout, stderr)
	if ok {
		r.idle <- m
	}
	return res, took, err
}

// runOn runs on machine m; cpu is the processor time the run took in the
// guest (vm.Result.CPU); ok says whether m is still usable (otherwise it is
// closed, and the next run boots another).
func (r *vmRunner) runOn(ctx context.Context, m *vm.Machine, timeout time.Duration, args []string, stdout, stderr io.Writer) (_ replay.SandboxResult, took, cpu time.Duration, ok bool, _ error) {
	req := vm.Request{Args: args, Dir: r.dir, SplitStderr: stdout != stderr}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	res, err := m.Run(tctx, req)
	took = time.Since(t0)
	if err != nil {
		// The machine is gone or in an unknown state.
		r.mu.Lock()
		r.booted--
		r.mu.Unlock()
		m.Close()
		if ctx.Err() != nil {
			return replay.SandboxResult{ExitCode: -1}, 0, 0, false, ctx.Err()
		}
		return replay.SandboxResult{ExitCode: -1}, 0, 0, false, fmt.Errorf("VM: %w", err)
	}
	stdout.Write(res.Stdout)
	stderr.Write(res.Stderr)
	sr := replay.SandboxResult{ExitCode: res.Code, Failure: res.Failure}
	switch {
	case res.Canceled && ctx.Err() != nil:
		return sr, took, 0, true, ctx.Err()
	case res.Canceled:
		return sr, took, 0, true, context.DeadlineExceeded
	case res.Err != "":
		return sr, took, 0, true, errors.New(res.Err)
	}
	return sr, took, res.CPU, true, nil
}

// pinnedRunner sends all its runs to one VM of a vmRunner's (another one
// if that one fails), so that what a VM runs, and in which order, does not
// depend on which VM is free first in the host's time. cpu is the guest
// processor time of its last run (0 when it did not finish).
type pinnedRunner struct {
	r   *vmRunner
	m   *vm.Machine
	cpu time.Duration
}

func (p *pinnedRunner) run(ctx context.Context, timeout time.Duration, args []string, stdout, stderr io.Writer) (replay.SandboxResult, time.Duration, error) {
	p.cpu = 0
	if p.m == nil {
		m, err := p.r.machine(ctx)
		if err != nil {
			return replay.SandboxResult{ExitCode: -1}, 0, err
		}
		p.m = m
	}
	res, took, cpu, ok, err := p.r.runOn(ctx, p.m, timeout, args, stdout, stderr)
	p.cpu = cpu
	if !ok {
		p.m = nil
	}
	return res, took, err
}
