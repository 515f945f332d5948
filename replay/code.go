package replay

// The `%{ }%` code blocks, run as the reference runs them: at each block's
// time the socket under test's TCP_INFO, TCP_CC_INFO and SO_MEMINFO are
// read and turned into python assignments (tcpi_rtt = 10052 ...), followed
// by the block's text; after the script ends the whole program is written
// to a temporary file and run once with the configured interpreter
// (python3). A failing assertion fails the script.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// sockoptReader reads a socket option into buf and returns its length; the
// Linux one is a getsockopt(2), tests use fakes.
type sockoptReader func(fd, level, name int, buf []byte) (int, error)

// PythonCode collects and runs a script's code blocks.
type PythonCode struct {
	command    string
	scriptPath string
	stdout     io.Writer
	stderr     io.Writer
	getsockopt sockoptReader
	body       bytes.Buffer // everything after the preamble
	blocks     int
}

// CodeOptions configure a PythonCode; the CLI fills them from the
// --code_command, --code_format and --code_sockopt flags (Config).
type CodeOptions struct {
	Command    string // interpreter command line; "" means python3
	Format     string // "" or "python"
	Sockopt    string // accepted for compatibility: every snapshot reads all three
	ScriptPath string // the script's name in error messages of the code
	Stdout     io.Writer
	Stderr     io.Writer // nil discards
}

// NewPythonCode makes the runner for a script.
func NewPythonCode(o CodeOptions) (*PythonCode, error) {
	if o.Format != "" && o.Format != "python" {
		return nil, fmt.Errorf("unsupported --code_format '%s'", o.Format)
	}
	switch o.Sockopt {
	case "", "TCP_INFO", "TCP_CC_INFO", "SO_MEMINFO":
	default:
		return nil, fmt.Errorf("unsupported --code_sockopt '%s'", o.Sockopt)
	}
	p := &PythonCode{command: o.Command, scriptPath: o.ScriptPath, stdout: o.Stdout, stderr: o.Stderr,
		getsockopt: linuxGetsockopt}
	if p.command == "" {
		p.command = "python3"
	}
	if p.stdout == nil {
		p.stdout = io.Discard
	}
	if p.stderr == nil {
		p.stderr = io.Discard
	}
	return p, nil
}

func linuxGetsockopt(fd, level, name int, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	n := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Sizes the reference asks getsockopt for: its struct _tcp_info, union
// _tcp_cc_info and SK_MEMINFO_VARS u32s.
const (
	tcpInfoLen   = 280
	tcpCCInfoLen = 20
	memInfoVars  = 9
)

// Snapshot records the socket's state at the block's time, then the block.
func (p *PythonCode) Snapshot(ctx context.Context, code *parser.Code, liveFD int) error {
	info := make([]byte, tcpInfoLen)
	n, err := p.getsockopt(liveFD, unix.SOL_TCP, unix.TCP_INFO, info)
	if err != nil {
		return fmt.Errorf("can't find getsockopt to get TCP info: %w", err)
	}
	clear(info[n:]) // an older kernel's shorter struct leaves the rest zero
	writeTCPInfo(&p.body, info)

	cc := make([]byte, tcpCCInfoLen)
	n, err = p.getsockopt(liveFD, unix.SOL_TCP, unix.TCP_CC_INFO, cc)
	if err != nil {
		return fmt.Errorf("can't find getsockopt to get TCP_CC_INFO: %w", err)
	}
	writeCCInfo(&p.body, cc[:n])

	mem := make([]byte, 4*memInfoVars)
	n, err = p.getsockopt(liveFD, unix.SOL_SOCKET, unix.SO_MEMINFO, mem)
	if err != nil {
		return fmt.Errorf("can't find getsockopt to get sk_meminfo: %w", err)
	}
	clear(mem[n:])
	writeMemInfo(&p.body, mem)

	fmt.Fprintf(&p.body, "_file = %s\n_line = %d\n%s\n\n", strconv.Quote(p.scriptPath), code.Pos.Line, code.Text)
	p.blocks++
	return nil
}

// pythonPreamble reports errors in a block with the script's file and line.
// It imports traceback only when there is an error to print: the import
// (tokenize, re and their compiled patterns) costs more than the rest of a
// python3 start, 1.3 s against 0.3 s in a VM under TCG.
const pythonPreamble = `import sys
def excepthook(etype, value, tb):
  import traceback
  sys.stderr.write("%s:%d: error in Python code\n" % (_file, _line))
  traceback.print_exception(etype, value, tb)

sys.excepthook = excepthook

`

// program returns the python program collected so far.
func (p *PythonCode) program() string { return pythonPreamble + "\n" + p.body.String() }

// Finish runs the collected program once; nothing runs if the script had
// no block.
func (p *PythonCode) Finish(ctx context.Context) error {
	if p.blocks == 0 {
		return nil
	}
	f, err := os.CreateTemp("", "code_")
	if err != nil {
		return fmt.Errorf("making the code file: %w", err)
	}
	path := f.Name()
	defer os.Remove(path)
	if _, err := f.WriteString(p.program()); err != nil {
		f.Close()
		return fmt.Errorf("writing the code file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the code file: %w", err)
	}
	// As system(3) does in the reference: the command line is shell text.
	// A simple command is started as the shell would start it, without
	// the shell: in a VM a shell's start costs some 35 ms of host time.
	line := p.command + " " + path
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	if argv, ok := simpleCommand(line); ok {
		if prog, err := exec.LookPath(argv[0]); err == nil {
			cmd = exec.CommandContext(ctx, prog, argv[1:]...)
			cmd.Args[0] = argv[0]
			cmd.Env = shellEnv()
		}
	}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("'%s' got signal %d (%s)", p.command, int(ws.Signal()), ws.Signal())
		}
		return fmt.Errorf("'%s' returned non-zero status %d", p.command, exit.ExitCode())
	}
	return fmt.Errorf("error running '%s': %w", p.command, err)
}

// pyVar is one python assignment from a struct field.
type pyVar struct {
	name string
	off  int
	size int // 1, 2, 4 or 8 bytes
}

// tcpInfoVars are the fields of the reference's struct _tcp_info, in the
// order it prints them (the bit fields are handled apart).
var tcpInfoVars = []pyVar{
	{"tcpi_state", 0, 1}, {"tcpi_ca_state", 1, 1}, {"tcpi_retransmits", 2, 1},
	{"tcpi_probes", 3, 1}, {"tcpi_backoff", 4, 1}, {"tcpi_options", 5, 1},
	{"tcpi_snd_wscale", -1, 0}, {"tcpi_rcv_wscale", -2, 0},
	{"tcpi_delivery_rate_app_limited", -3, 0},
	{"tcpi_rto", 8, 4}, {"tcpi_ato", 12, 4}, {"tcpi_snd_mss", 16, 4}, {"tcpi_rcv_mss", 20, 4},
	{"tcpi_unacked", 24, 4}, {"tcpi_sacked", 28, 4}, {"tcpi_lost", 32, 4},
	{"tcpi_retrans", 36, 4}, {"tcpi_fackets", 40, 4}, {"tcpi_last_data_sent", 44, 4},
	{"tcpi_last_ack_sent", 48, 4}, {"tcpi_last_data_recv", 52, 4},
	{"tcpi_last_ack_recv", 56, 4}, {"tcpi_pmtu", 60, 4}, {"tcpi_rcv_ssthresh", 64, 4},
	{"tcpi_rtt", 68, 4}, {"tcpi_rttvar", 72, 4}, {"tcpi_snd_ssthresh", 76, 4},
	{"tcpi_snd_cwnd", 80, 4}, {"tcpi_advmss", 84, 4}, {"tcpi_reordering", 88, 4},
	{"tcpi_total_retrans", 100, 4}, {"tcpi_pacing_rate", 104, 8},
	{"tcpi_max_pacing_rate", 112, 8}, {"tcpi_rcv_rtt", 92, 4}, {"tcpi_rcv_space", 96, 4},
	{"tcpi_bytes_acked", 120, 8}, {"tcpi_bytes_received", 128, 8},
	{"tcpi_segs_out", 136, 4}, {"tcpi_segs_in", 140, 4}, {"tcpi_notsent_bytes", 144, 4},
	{"tcpi_min_rtt", 148, 4}, {"tcpi_data_segs_in", 152, 4}, {"tcpi_data_segs_out", 156, 4},
	{"tcpi_delivery_rate", 160, 8}, {"tcpi_busy_time", 168, 8},
	{"tcpi_rwnd_limited", 176, 8}, {"tcpi_sndbuf_limited", 184, 8},
	{"tcpi_delivered", 192, 4}, {"tcpi_delivered_ce", 196, 4},
	{"tcpi_bytes_sent", 200, 8}, {"tcpi_bytes_retrans", 208, 8},
	{"tcpi_dsack_dups", 216, 4}, {"tcpi_reord_seen", 220, 4}, {"tcpi_rcv_ooopack", 224, 4},
	{"tcpi_snd_wnd", 228, 4}, {"tcpi_rcv_wnd", 232, 4}, {"tcpi_rehash", 236, 4},
	{"tcpi_total_rto", 240, 2}, {"tcpi_total_rto_recoveries", 242, 2},
	{"tcpi_total_rto_time", 244, 4},
	{"tcpi_ecn_mode", -4, 0}, {"tcpi_accecn_opt_seen", -5, 0},
	{"tcpi_accecn_fail_mode", -6, 0}, {"tcpi_options2", -7, 0},
	{"tcpi_received_ce", 248, 4}, {"tcpi_delivered_e1_bytes", 252, 4},
	{"tcpi_delivered_e0_bytes", 256, 4}, {"tcpi_delivered_ce_bytes", 260, 4},
	{"tcpi_received_e1_bytes", 264, 4}, {"tcpi_received_e0_bytes", 268, 4},
	{"tcpi_received_ce_bytes", 272, 4},
}

// tcpInfoBits reads the bit fields (negative offsets in tcpInfoVars): the
// wscale nibbles at byte 6, the app-limited bit at byte 7, and the AccECN
// word at byte 276; first-declared bit fields are the low bits.
func tcpInfoBits(info []byte, which int) uint64 {
	ecn := binary.NativeEndian.Uint32(info[276:])
	switch which {
	case -1:
		return uint64(info[6] & 0xf)
	case -2:
		return uint64(info[6] >> 4)
	case -3:
		return uint64(info[7] & 1)
	case -4:
		return uint64(ecn & 3)
	case -5:
		return uint64(ecn >> 2 & 3)
	case -6:
		return uint64(ecn >> 4 & 0xf)
	}
	return uint64(ecn >> 8)
}

func field(b []byte, off, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[off])
	case 2:
		return uint64(binary.NativeEndian.Uint16(b[off:]))
	case 4:
		return uint64(binary.NativeEndian.Uint32(b[off:]))
	}
	return binary.NativeEndian.Uint64(b[off:])
}

// codeSymbols are the names the reference defines before each TCP_INFO
// snapshot, in its order.
var codeSymbols = []string{
	"TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV", "TCP_FIN_WAIT1", "TCP_FIN_WAIT2",
	"TCP_TIME_WAIT", "TCP_CLOSE", "TCP_CLOSE_WAIT", "TCP_LAST_ACK", "TCP_LISTEN",
	"TCP_CLOSING", "TCP_CA_Open", "TCP_CA_Disorder", "TCP_CA_CWR", "TCP_CA_Recovery",
	"TCP_CA_Loss", "TCPI_OPT_TIMESTAMPS", "TCPI_OPT_SACK", "TCPI_OPT_WSCALE", "TCPI_OPT_ECN",
	"TCPI_OPT_ECN_SEEN", "TCPI_OPT_SYN_DATA", "TCPI_OPT_USEC_TS", "TCPI_OPT_TFO_CHILD",
}

func emit(w *bytes.Buffer, name string, v uint64) {
	fmt.Fprintf(w, "%s = %d\n", name, v)
}

func writeTCPInfo(w *bytes.Buffer, info []byte) {
	for _, name := range codeSymbols {
		v, _ := lookupSymbol(name)
		emit(w, name, uint64(v))
	}
	for _, f := range tcpInfoVars {
		if f.off < 0 {
			emit(w, f.name, tcpInfoBits(info, f.off))
			continue
		}
		emit(w, f.name, field(info, f.off, f.size))
	}
	w.WriteString("\n")
}

// writeCCInfo reads the union _tcp_cc_info as each of its members that
// fits in what the kernel returned, as the reference does (so a bbr socket
// also defines dctcp_* and tcpv_* names from the same bytes).
func writeCCInfo(w *bytes.Buffer, cc []byte) {
	u32 := func(off int) uint64 { return field(cc, off, 4) }
	if len(cc) >= 20 {
		emit(w, "bbr_bw_lo", u32(0))
		emit(w, "bbr_bw_hi", u32(4))
		emit(w, "bbr_bw", u32(4)<<32+u32(0))
		emit(w, "bbr_min_rtt", u32(8))
		emit(w, "bbr_pacing_gain", u32(12))
		emit(w, "bbr_cwnd_gain", u32(16))
	}
	if len(cc) >= 16 {
		emit(w, "dctcp_enabled", field(cc, 0, 2))
		emit(w, "dctcp_ce_state", field(cc, 2, 2))
		emit(w, "dctcp_alpha", u32(4))
		emit(w, "dctcp_ab_ecn", u32(8))
		emit(w, "dctcp_ab_tot", u32(12))
		emit(w, "tcpv_enabled", u32(0))
		emit(w, "tcpv_rttcnt", u32(4))
		emit(w, "tcp_rtt", u32(8))
		emit(w, "tcp_minrtt", u32(12))
	}
	w.WriteString("\n")
}

var memInfoNames = []string{
	"SK_MEMINFO_RMEM_ALLOC", "SK_MEMINFO_RCVBUF", "SK_MEMINFO_WMEM_ALLOC", "SK_MEMINFO_SNDBUF",
	"SK_MEMINFO_FWD_ALLOC", "SK_MEMINFO_WMEM_QUEUED", "SK_MEMINFO_OPTMEM", "SK_MEMINFO_BACKLOG",
	"SK_MEMINFO_DROPS",
}

func writeMemInfo(w *bytes.Buffer, mem []byte) {
	for i, name := range memInfoNames {
		emit(w, name, field(mem, 4*i, 4))
	}
	w.WriteString("\n")
}
