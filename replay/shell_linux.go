package replay

// Running the commands of the shell subset (shell.go) in this process. A
// command does what the program would: sysctl writes the key's file, ip and
// tc send the netlink requests they send. Where the outcome is one whose
// message is not known exactly (a refused netlink request, a sysctl key
// whose file cannot be opened, an unusual errno), the program itself is run
// for that command, or that key: a refused request changed nothing, so
// running it again gives the program's own message and status.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// tcpMetricsCmdDel is TCP_METRICS_CMD_DEL (linux/tcp_metrics.h); without
// an address it flushes the whole table, as `ip tcp_metrics flush all`.
const tcpMetricsCmdDel = 2

// shellRunner runs planned commands in a folder and environment, starting
// programs (when it must) with start.
type shellRunner struct {
	dir   string
	env   []string
	start func(*exec.Cmd) error
}

// run runs c with stdout and stderr (nil: /dev/null) and gives its exit
// status.
func (r *shellRunner) run(c *shellCmd, stdout, stderr io.Writer) int {
	fds := [3]io.Writer{nil, stdout, stderr}
	for _, rd := range c.redirs {
		if rd.dup == 0 {
			fds[rd.fd] = nil
		} else {
			fds[rd.fd] = fds[rd.dup]
		}
	}
	stdout, stderr = fds[1], fds[2]
	switch {
	case c.sysctl != nil:
		return r.sysctl(c, stdout, stderr)
	case c.flush:
		if flushTCPMetrics() == nil {
			return 0
		}
	case c.qdisc != "":
		if addPfifo(c.qdisc) == nil {
			return 0
		}
	default:
		status := 0
		for _, s := range c.script {
			status = r.run(s, stdout, stderr)
		}
		return status
	}
	return r.program(c.path, c.argv, stdout, stderr)
}

// program runs a program and gives its status as the shell would.
func (r *shellRunner) program(path string, argv []string, stdout, stderr io.Writer) int {
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: r.dir, Env: r.env, Stdout: stdout, Stderr: stderr}
	if err := r.start(cmd); err != nil {
		if stderr != nil {
			fmt.Fprintf(stderr, "%s: %v\n", argv[0], err)
		}
		return 127
	}
	cmd.Wait()
	return exitStatus(cmd.ProcessState)
}

// sysctl sets the keys as procps-ng's sysctl: each in turn, a failure
// reported and the next key set anyway, status 1 if any failed. Its
// stdout is written at its end, as a buffered stdout to a pipe is.
func (r *shellRunner) sysctl(c *shellCmd, stdout, stderr io.Writer) int {
	var out bytes.Buffer
	failed := false
	for _, s := range c.sysctl.sets {
		path := sysctlPath(s.key)
		name := sysctlName(s.key)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			if !c.sysctl.ignoreMissing {
				writeIf(stderr, fmt.Sprintf("sysctl: cannot stat %s: No such file or directory\n", path))
				failed = true
			}
			continue
		}
		if err == nil && writableFile(fi) {
			err = writeSysctl(path, s.value)
			if err == nil {
				if !c.sysctl.quiet {
					fmt.Fprintf(&out, "%s = %s\n", name, s.value)
				}
				continue
			}
			if msg, ok := errnoMessage(err); ok {
				writeIf(stderr, fmt.Sprintf("sysctl: setting key \"%s\": %s\n", name, msg))
				failed = true
				continue
			}
		}
		argv := []string{c.argv[0]}
		if c.sysctl.quiet {
			argv = append(argv, "-q")
		}
		if c.sysctl.ignoreMissing {
			argv = append(argv, "-e")
		}
		if r.program(c.path, append(argv, s.key+"="+s.value), stdout, stderr) != 0 {
			failed = true
		}
	}
	writeIf(stdout, out.String())
	if failed {
		return 1
	}
	return 0
}

// sysctlName is the key as procps prints it.
func sysctlName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if c == '/' {
			b[i] = '.'
		}
	}
	return string(b)
}

// writeSysctl writes the value as procps does: opened for writing without
// creating, the value and a newline in one write.
func writeSysctl(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		// Opening failed: procps words this case differently; the
		// caller runs sysctl for it.
		return &os.PathError{Op: "open", Path: path, Err: errOpenFailed}
	}
	_, err = f.Write([]byte(value + "\n"))
	f.Close()
	return err
}

var errOpenFailed = errors.New("open failed")

// errnoMessage is the C library's message for the errors a sysctl write
// commonly gets, as procps prints them.
func errnoMessage(err error) (string, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "", false
	}
	switch errno {
	case unix.EINVAL:
		return "Invalid argument", true
	case unix.ENOENT:
		return "No such file or directory", true
	case unix.EPERM:
		return "Operation not permitted", true
	case unix.EACCES:
		return "Permission denied", true
	case unix.EBUSY:
		return "Device or resource busy", true
	case unix.ERANGE:
		return "Numerical result out of range", true
	}
	return "", false
}

func writeIf(w io.Writer, s string) {
	if w != nil && s != "" {
		io.WriteString(w, s)
	}
}

// flushTCPMetrics is `ip tcp_metrics flush all`.
func flushTCPMetrics() error {
	fam, err := netlink.GenlFamilyGet("tcp_metrics")
	if err != nil {
		return err
	}
	req := nl.NewNetlinkRequest(int(fam.ID), unix.NLM_F_ACK)
	req.AddData(&nl.Genlmsg{Command: tcpMetricsCmdDel, Version: uint8(fam.Version)})
	_, err = req.Execute(unix.NETLINK_GENERIC, 0)
	return err
}

// addPfifo is `tc qdisc add dev DEV root pfifo`: no options, so the
// device's queue length is the limit.
func addPfifo(dev string) error {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	return netlink.QdiscAdd(&netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Parent: netlink.HANDLE_ROOT},
		QdiscType:  "pfifo",
	})
}
