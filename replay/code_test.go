package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"golang.org/x/sys/unix"
)

// fakeSockopts answers getsockopt with fixed TCP_INFO, TCP_CC_INFO (none,
// as for cubic) and SO_MEMINFO contents.
func fakeSockopts(rtt, cwnd uint32) sockoptReader {
	return func(fd, level, name int, buf []byte) (int, error) {
		switch {
		case level == unix.SOL_TCP && name == unix.TCP_INFO:
			b := make([]byte, tcpInfoLen)
			b[0] = 1      // TCP_ESTABLISHED
			b[6] = 0x87   // snd_wscale 7, rcv_wscale 8
			b[5] = 1 | 32 // TIMESTAMPS|SYN_DATA
			binary.NativeEndian.PutUint32(b[68:], rtt)
			binary.NativeEndian.PutUint32(b[80:], cwnd)
			binary.NativeEndian.PutUint64(b[104:], 1<<40)
			binary.NativeEndian.PutUint32(b[276:], 2|3<<2|5<<4|9<<8)
			return copy(buf, b), nil
		case level == unix.SOL_TCP && name == unix.TCP_CC_INFO:
			return 0, nil
		case level == unix.SOL_SOCKET && name == unix.SO_MEMINFO:
			binary.NativeEndian.PutUint32(buf[4:], 87380)
			return 36, nil
		}
		return 0, unix.ENOPROTOOPT
	}
}

func newTestCode(t *testing.T, command string) (*PythonCode, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	p, err := NewPythonCode(CodeOptions{Command: command, Format: "python", ScriptPath: "test.pkt", Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	p.getsockopt = fakeSockopts(10052, 10)
	return p, &out
}

func TestPythonCodeProgram(t *testing.T) {
	p, _ := newTestCode(t, "python3")
	code := &parser.Code{Pos: parser.Pos{Line: 12, Col: 4}, Text: "assert tcpi_snd_cwnd == 10"}
	if err := p.Snapshot(context.Background(), code, 3); err != nil {
		t.Fatal(err)
	}
	prog := p.program()
	for _, want := range []string{
		"sys.excepthook = excepthook\n",
		"TCP_ESTABLISHED = 1\n", "TCP_CA_Loss = 4\n", "TCPI_OPT_SYN_DATA = 32\n",
		"tcpi_state = 1\n", "tcpi_options = 33\n", "tcpi_snd_wscale = 7\n", "tcpi_rcv_wscale = 8\n",
		"tcpi_rtt = 10052\n", "tcpi_snd_cwnd = 10\n", "tcpi_pacing_rate = 1099511627776\n",
		"tcpi_ecn_mode = 2\n", "tcpi_accecn_opt_seen = 3\n", "tcpi_accecn_fail_mode = 5\n",
		"tcpi_options2 = 9\n", "SK_MEMINFO_RCVBUF = 87380\n",
		"_file = \"test.pkt\"\n_line = 12\nassert tcpi_snd_cwnd == 10\n",
	} {
		if !strings.Contains(prog, want) {
			t.Errorf("program lacks %q", want)
		}
	}
	if strings.Contains(prog, "bbr_bw") {
		t.Errorf("program defines bbr names without TCP_CC_INFO data")
	}
}

func TestPythonCodeErrors(t *testing.T) {
	if _, err := NewPythonCode(CodeOptions{Format: "perl"}); err == nil {
		t.Errorf("accepted --code_format=perl")
	}
	p, _ := newTestCode(t, "python3")
	p.getsockopt = func(int, int, int, []byte) (int, error) { return 0, unix.EBADF }
	err := p.Snapshot(context.Background(), &parser.Code{Text: "pass"}, 3)
	if err == nil || !strings.Contains(err.Error(), "can't find getsockopt to get TCP info") {
		t.Errorf("Snapshot() = %v", err)
	}
	if err := p.Finish(context.Background()); err != nil {
		t.Errorf("Finish() without blocks = %v", err)
	}
}

func TestPythonCodeRun(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skipf("python3 not available: %v", err)
	}
	tests := []struct {
		name string
		text string
		err  string
		out  string
	}{
		{"pass", "assert 5000 <= tcpi_rtt <= 20000, 'srtt=%d us' % tcpi_rtt", "", ""},
		{"fail", "assert tcpi_snd_cwnd == 11, tcpi_snd_cwnd", "returned non-zero status 1", "test.pkt:7: error in Python code"},
		{"own names", "TCP_INFINITE_SSTHRESH = 0x7fffffff\nassert tcpi_snd_ssthresh != TCP_INFINITE_SSTHRESH", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, out := newTestCode(t, "python3")
			if err := p.Snapshot(context.Background(), &parser.Code{Pos: parser.Pos{Line: 7}, Text: tc.text}, 3); err != nil {
				t.Fatal(err)
			}
			err := p.Finish(context.Background())
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Finish() = %v; output:\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Finish() = %v, want %q", err, tc.err)
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("output %q lacks %q", out, tc.out)
			}
		})
	}
}
