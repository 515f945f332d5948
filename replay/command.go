package replay

// This file runs backquoted shell commands the way the reference's
// system(3) does: as `/bin/sh -c` in the script's folder would, with
// PACKETDRILL_PID exported, output passed through. Lines a command writes on stderr that
// start with "sysctl:" are also reported as warnings naming the line, since
// a refused sysctl (for example a congestion control that is not allowed in
// the namespace) silently changes what the script tests.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// runShell runs a command; es is the event (nil for the init and cleanup
// commands). The caller holds e.mu; it is released while the command runs.
func (e *engine) runShell(text string, es *eventState) error {
	if e.shellSince.IsZero() {
		e.shellSince = time.Now()
	}
	env := append(os.Environ(), "PACKETDRILL_PID="+strconv.Itoa(os.Getpid()))
	watch := &sysctlWatch{out: e.env.Stderr}
	e.mu.Unlock()
	err := runShellText(e.ctx, text, e.dir, env, e.env.Stdout, watch, true)
	e.mu.Lock()
	where := e.script.File
	if es != nil {
		where = fmt.Sprintf("%s:%d", e.script.File, es.ev.Pos.Line)
	}
	for _, l := range watch.refused() {
		fmt.Fprintf(e.env.Stderr, "%s: warning: a sysctl of this command was refused, the test runs with the kernel's setting instead: %s\n", where, l)
	}
	return err
}

// runShellText runs text as `/bin/sh -c` would in dir; with subset, the
// commands it begins with that pcap2pkt can run itself (shell.go) run
// here and only the rest in /bin/sh. The error says how a failure ended.
func runShellText(ctx context.Context, text, dir string, env []string, stdout, stderr io.Writer, subset bool) error {
	plan := shellPlan{rest: text}
	if subset {
		plan = planShell(text, dir)
	}
	status := 0
	r := &shellRunner{dir: dir, env: env, start: startNormalPriority}
	for _, c := range plan.cmds {
		status = r.run(c, stdout, stderr)
	}
	if plan.rest == "" {
		if status != 0 {
			return fmt.Errorf("non-zero status %d", status)
		}
		return nil
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", plan.rest)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	err := startNormalPriority(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("got signal %d (%s)", ws.Signal(), ws.Signal())
		}
		return fmt.Errorf("non-zero status %d", ee.ExitCode())
	}
	return err
}

// removeRestoreScript removes /tmp/sysctl_restore_${PACKETDRILL_PID}.sh
// when a command of this run wrote it (the upstream scripts' set_sysctls.py
// does, and their last command runs it but leaves it). It undoes settings
// of this run's namespace, which is gone when the run ends; left behind,
// a suite leaves one per script in /tmp, and a later process given the
// same pid could run it where it does harm: under the reference, which
// runs in the host's namespace, against the host's own settings. A file
// older than the run's first command (with a second's margin for the
// coarse clock of file times) is not this run's and stays.
func removeRestoreScript(since time.Time) {
	path := fmt.Sprintf("/tmp/sysctl_restore_%d.sh", os.Getpid())
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.ModTime().After(since.Add(-time.Second)) {
		os.Remove(path)
	}
}

// runInitScripts runs --init_scripts, a comma-separated list of commands.
func (e *engine) runInitScripts() error {
	if e.cfg.InitScripts == "" {
		return nil
	}
	for _, c := range strings.Split(e.cfg.InitScripts, ",") {
		if err := e.runShell(c, nil); err != nil {
			return &parser.Error{File: e.script.File, Msg: fmt.Sprintf("error executing init script '%s': %v", c, err), Err: err}
		}
	}
	return nil
}

// sysctlWatch passes a command's stderr through and keeps the lines that
// report a sysctl failure.
type sysctlWatch struct {
	out     io.Writer
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (w *sysctlWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.note(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return w.out.Write(p)
}

func (w *sysctlWatch) note(line string) {
	if strings.HasPrefix(strings.TrimSpace(line), "sysctl:") {
		w.lines = append(w.lines, strings.TrimSpace(line))
	}
}

// refused returns the sysctl failure lines seen.
func (w *sysctlWatch) refused() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.note(string(w.partial))
		w.partial = nil
	}
	return w.lines
}
