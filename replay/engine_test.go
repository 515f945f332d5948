package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

// fakeHost is a Host for engine tests: no fds, a fixed ephemeral port,
// threads asleep as soon as they are in a call, and the start time is now.
type fakeHost struct {
	mu         sync.Mutex
	closed     []int
	recovering bool
}

const fakeEphemeralPort = 40000

func (h *fakeHost) CloseFD(fd int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = append(h.closed, fd)
	return nil
}

func (h *fakeHost) EphemeralPort(bool) (uint16, error) { return fakeEphemeralPort, nil }
func (h *fakeHost) ThreadSleeping(int) bool            { return true }
func (h *fakeHost) StartTime(c Clock) time.Time        { return c.Now() }
func (h *fakeHost) Tick() time.Duration                { return 4 * time.Millisecond }
func (h *fakeHost) Recovering(int) bool                { return h.recovering }

// fakeSyscalls stands in for the kernel's socket calls: socket returns
// live fd 100+n, the others succeed.
func fakeSyscalls() map[string]syscallFunc {
	next := 100
	ok := func(c *callContext) (int64, syscall.Errno, error) {
		a := c.args(len(c.Args))
		a.fd(0)
		return 0, 0, a.err()
	}
	return map[string]syscallFunc{
		"socket": func(c *callContext) (int64, syscall.Errno, error) {
			c.resultIsFD()
			live := next
			next++
			c.afterResultFD(int64(live), func(scriptFD int) error {
				return c.addSocket(scriptFD, live, syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
			})
			return int64(live), 0, nil
		},
		"bind": ok,
		"listen": func(c *callContext) (int64, syscall.Errno, error) {
			a := c.args(2)
			fd, _ := a.fds(0)
			if err := a.err(); err != nil {
				return 0, 0, err
			}
			c.after(func() error {
				c.e.fds.byScript(fd).sock.state = sockListening
				return nil
			})
			return 0, 0, nil
		},
		"write": func(c *callContext) (int64, syscall.Errno, error) {
			a := c.args(3)
			n := a.int(2)
			return n, 0, a.err()
		},
		"read": func(c *callContext) (int64, syscall.Errno, error) {
			return -1, syscall.EAGAIN, nil
		},
	}
}

// kernelTCP builds a TCP packet as the kernel under test would send it
// (local 192.168.0.1:8080 to remote 192.0.2.1:40000).
func kernelTCP(flags tcpwire.Flags, seq, ack uint32, win uint16, opts []byte, payload int) []byte {
	local := netip.MustParseAddr("192.168.0.1")
	remote := netip.MustParseAddr("192.0.2.1")
	h := tcpwire.TCPHeader{SrcPort: 8080, DstPort: fakeEphemeralPort, Seq: tcpwire.Seq(seq), Ack: tcpwire.Seq(ack), Flags: flags, Window: win, Options: opts}
	b := tcpwire.AppendTCP(make([]byte, 20), &h)
	b = append(b, make([]byte, payload)...)
	ipHeader(b, false, len(b), 0, 0, 64, tcpwire.ProtoTCP, local, remote)
	fillChecksums(b)
	return b
}

// fakeRun runs src with a fake device, clock and syscalls; kernel packets
// are queued on the device at the given offsets from the start.
type kernelPacket struct {
	at  time.Duration
	pkt []byte
}

func fakeRun(t *testing.T, src string, kernel []kernelPacket, opts ...string) (*replaytest.Device, error) {
	t.Helper()
	return fakeRunWith(t, src, kernel, nil, opts...)
}

// fakeRunWith is fakeRun with the engine's device wrapped by wrap (nil: as
// it is), which sees the run's clock.
func fakeRunWith(t *testing.T, src string, kernel []kernelPacket, wrap func(*replaytest.Device, *replaytest.Clock) Device, opts ...string) (*replaytest.Device, error) {
	t.Helper()
	return fakeRunCalls(t, src, kernel, wrap, fakeSyscalls(), opts...)
}

// fakeRunCalls is fakeRunWith with the system calls calls.
func fakeRunCalls(t *testing.T, src string, kernel []kernelPacket, wrap func(*replaytest.Device, *replaytest.Clock) Device, calls map[string]syscallFunc, opts ...string) (*replaytest.Device, error) {
	t.Helper()
	return fakeRunHost(t, src, kernel, wrap, calls, &fakeHost{}, opts...)
}

// fakeRunHost is fakeRunCalls with the given host.
func fakeRunHost(t *testing.T, src string, kernel []kernelPacket, wrap func(*replaytest.Device, *replaytest.Clock) Device, calls map[string]syscallFunc, host Host, opts ...string) (*replaytest.Device, error) {
	t.Helper()
	s, err := parser.ParseFile("test.pkt", []byte(src), nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	cfg := NewConfig()
	for _, o := range opts {
		n, v, _ := strings.Cut(o, "=")
		if err := cfg.Set(n, v); err != nil {
			t.Fatal(err)
		}
	}
	dev := replaytest.NewDevice()
	clock := replaytest.NewClock()
	start := clock.Now()
	for _, k := range kernel {
		if err := dev.Inject(k.pkt, start.Add(k.at)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d Device = dev
	if wrap != nil {
		d = wrap(dev, clock)
	}
	err = Run(ctx, s, cfg, &Env{Device: d, Clock: clock, syscalls: calls, Host: host, Stdout: &out, Stderr: &out, Dir: t.TempDir()})
	return dev, err
}

const listenPrefix = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
`

func TestInboundSYNBytes(t *testing.T) {
	dev, err := fakeRun(t, listenPrefix+"+0 < S 0:0(0) win 4000 <mss 1000>\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	select {
	case got = <-dev.Written():
	default:
		t.Fatal("no packet written")
	}
	p, err := decodePacket(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.IP.Src != netip.MustParseAddr("192.0.2.1") || p.IP.Dst != netip.MustParseAddr("192.168.0.1") {
		t.Errorf("addresses %v > %v", p.IP.Src, p.IP.Dst)
	}
	if p.TCP.SrcPort != fakeEphemeralPort || p.TCP.DstPort != 8080 {
		t.Errorf("ports %d > %d", p.TCP.SrcPort, p.TCP.DstPort)
	}
	if p.TCP.Flags != tcpwire.FlagSYN || p.TCP.Seq != 0 || p.TCP.Ack != 0 || p.TCP.Window != 4000 {
		t.Errorf("tcp %+v", p.TCP)
	}
	if !bytes.Equal(p.TCP.Options, []byte{2, 4, 0x03, 0xe8}) {
		t.Errorf("options % x", p.TCP.Options)
	}
	if p.IP.TTL != 255 || p.IP.TOS != 0 || !p.ipSumOK {
		t.Errorf("ip ttl %d tos %d checksum ok %v", p.IP.TTL, p.IP.TOS, p.ipSumOK)
	}
	if sum := tcpwire.Checksum(got[20:], tcpwire.PseudoHeaderSum(p.IP.Src, p.IP.Dst, tcpwire.ProtoTCP, len(got)-20)); sum != 0 {
		t.Errorf("TCP checksum does not verify (%#x)", sum)
	}
	// The RST that frees the connection at the end.
	select {
	case rst := <-dev.Written():
		r, err := decodePacket(rst)
		if err != nil || r.TCP.Flags != tcpwire.FlagRST|tcpwire.FlagACK {
			t.Errorf("end of script: want R., got %v %+v", err, r)
		}
	default:
		t.Error("no RST at the end of the script")
	}
}

// handshake is the script and kernel side of a passive open with the
// kernel's ISN at 1000000.
const kernelISN = 1000000

func handshakeScript(synack string) string {
	if !strings.HasPrefix(synack, "+") {
		synack = "+0 " + synack
	}
	return listenPrefix + "+0 < S 0:0(0) win 4000 <mss 1000>\n" + synack + "\n"
}

func TestOutboundMatch(t *testing.T) {
	mss := []byte{2, 4, 0x05, 0xb4}
	tests := []struct {
		name   string
		line   string
		kernel []byte
		at     time.Duration
		want   []string // substrings of the error; none means success
	}{
		{"match any options", "> S. 0:0(0) ack 1 <...>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0), 0, nil},
		{"match options", "> S. 0:0(0) ack 1 <mss 1460>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0), 0, nil},
		{"ack differs", "> S. 0:0(0) ack 1 <...>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 2, 64240, mss, 0), 0,
			[]string{"test.pkt:5: expected ack 1, got ack 2", "script packet:", "> S. 0:0(0) ack 1 <...>", "actual packet:", "> S. 0:0(0) ack 2 win 64240 <mss 1460>"}},
		{"flags and ack differ", "> S. 0:0(0) ack 1 <...>", kernelTCP(tcpwire.FlagSYN, kernelISN, 0, 64240, mss, 0), 0,
			[]string{"expected ack 1, got ack 0 (flags S. vs S)"}},
		{"option differs", "> S. 0:0(0) ack 1 <mss 1000>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0), 0,
			[]string{"expected option mss 1000, got option mss 1460"}},
		{"window", "> S. 0:0(0) ack 1 win 100 <...>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0), 0,
			[]string{"expected win 100, got win 64240"}},
		{"late", "+0.3 > S. 0:0(0) ack 1 <...>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0), 407351 * time.Microsecond,
			[]string{"timing error: expected outbound packet at 0.300 s (±37.5 ms), happened at 0.407 s: 107.351 ms late"}},
		{"early", "+0.3 > S. 0:0(0) ack 1 <...>", kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0), 100 * time.Millisecond,
			[]string{"expected outbound packet at 0.300 s", "200.000 ms early"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handshakeScript(tc.line)
			_, err := fakeRun(t, src, []kernelPacket{{tc.at, tc.kernel}})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected failure: %v", err)
				}
				return
			}
			var se *parser.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *parser.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSyscallResultMismatch(t *testing.T) {
	_, err := fakeRun(t, listenPrefix+"+0 read(3, ..., 10) = 0\n", nil)
	if err == nil || !strings.Contains(err.Error(), "test.pkt:4: read: expected result 0 but got -1 with errno 11 (EAGAIN)") {
		t.Fatalf("got %v", err)
	}
	_, err = fakeRun(t, listenPrefix+"+0 read(3, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)\n", nil)
	if err != nil {
		t.Fatalf("got %v", err)
	}
}

func TestNonFatalPacket(t *testing.T) {
	src := handshakeScript("> S. 0:0(0) ack 1 win 5 <...>")
	_, err := fakeRun(t, src, []kernelPacket{{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, nil, 0)}}, "non_fatal=packet")
	if err != nil {
		t.Fatalf("--non_fatal=packet should make the mismatch a warning: %v", err)
	}
}

func TestScriptRules(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"first event not at 0", "1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "first event should be at time 0"},
		{"time backwards", listenPrefix + "0.5 listen(3, 1) = 0\n0.2 listen(3, 1) = 0\n", "time goes backward"},
		{"unknown call", "0 frobnicate(3) = 0\n", "Unknown system call"},
		{"bad fd", "0 listen(7, 1) = 0\n", "unable to find fd with script fd 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeRun(t, tc.src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSeqnum(t *testing.T) {
	tests := []struct {
		a, b tcpwire.Seq
		dist int32
	}{
		{1, 2, -1}, {2, 1, 1}, {0xffffffff, 0, -1}, {0, 0xffffffff, 1}, {5, 5, 0},
	}
	for _, tc := range tests {
		if got := tc.a.Diff(tc.b); got != tc.dist {
			t.Errorf("%d - %d = %d, want %d", tc.a, tc.b, got, tc.dist)
		}
	}
	if tcpwire.Seq(0xfffffff0).Add(0x20) != 0x10 {
		t.Error("add does not wrap")
	}
}

func TestConfigSetAndScriptOptions(t *testing.T) {
	cfg := NewConfig()
	if err := cfg.Set("tolerance_usecs", "10000"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("D", "X=1"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("bind_port", "0"); err == nil {
		t.Error("bind_port 0 accepted")
	}
	s, err := parser.ParseFile("o.pkt", []byte("--tolerance_usecs=5\n--mtu=1400\n0 `true`\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cfg.Resolve(s)
	if err != nil {
		t.Fatal(err)
	}
	if r.ToleranceUsecs != 10000 || r.MTU != 1400 || r.Defines["X"] != "1" {
		t.Errorf("resolved %+v", r)
	}
	nc := r.NetConfig()
	if nc.LocalIP.String() != "192.168.0.1" || nc.RemoteIP.String() != "192.0.2.1" || nc.PrefixLen != 16 || !nc.RemotePrefix.IsValid() {
		t.Errorf("net config %+v", nc)
	}
	if cfg.MTU != 1500 {
		t.Error("Resolve changed the caller's config")
	}
}

// notifyDevice is a fake Device that calls onWrite for each injected packet.
type notifyDevice struct {
	*replaytest.Device
	onWrite func()
}

func (d notifyDevice) WritePacket(b []byte) error {
	err := d.Device.WritePacket(b)
	d.onWrite()
	return err
}

func TestBlockingSyscall(t *testing.T) {
	tests := []struct {
		name, end, want string
	}{
		{"returns on time", "0.1", ""},
		{"returns late", "0.05", "test.pkt:4: timing error: expected system call return at 0.050 s (±6.25 ms), happened at 0.100 s: 50.000 ms late"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := listenPrefix + "+0..." + tc.end + " read(3, ..., 10) = 5\n+0.1 < S 0:0(0) win 4000 <mss 1000>\n"
			s, err := parser.ParseFile("test.pkt", []byte(src), nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			released := make(chan struct{})
			var once sync.Once
			dev := notifyDevice{replaytest.NewDevice(), func() { once.Do(func() { close(released) }) }}
			calls := fakeSyscalls()
			calls["read"] = func(c *callContext) (int64, syscall.Errno, error) {
				a := c.args(3)
				if a.fd(0); a.err() != nil {
					return 0, 0, a.err()
				}
				ret, errno := c.invoke(func() (int64, syscall.Errno) {
					<-released
					return 5, 0
				})
				return ret, errno, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = Run(ctx, s, NewConfig(), &Env{Device: dev, Clock: replaytest.NewClock(), syscalls: calls, Host: &fakeHost{}, Dir: t.TempDir()})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOutboundAggregation(t *testing.T) {
	src := handshakeScript("> S. 0:0(0) ack 1 <...>") + "+0 < . 1:1(0) ack 1 win 1000\n+0 > P. 1:2001(2000) ack 1\n"
	kernel := []kernelPacket{
		{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, nil, 0)},
		{0, kernelTCP(tcpwire.FlagACK, kernelISN+1, 1, 64240, nil, 1000)},
		{0, kernelTCP(tcpwire.FlagACK|tcpwire.FlagPSH, kernelISN+1001, 1, 64240, nil, 1000)},
	}
	if _, err := fakeRun(t, src, kernel); err != nil {
		t.Fatalf("two segments should make the expected packet: %v", err)
	}
	_, err := fakeRun(t, src, kernel, "strict_segments=")
	if err == nil || !strings.Contains(err.Error(), "test.pkt:7: error handling packet: live packet payload: expected 2000 bytes vs actual 1000 bytes") {
		t.Fatalf("--strict_segments: got %v", err)
	}
}

func TestCommands(t *testing.T) {
	src := "0 `echo hello; echo 'sysctl: permission denied on key \"net.ipv4.tcp_congestion_control\"' >&2`\n+0 `exit 3`\n"
	s, err := parser.ParseFile("cmd.pkt", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = Run(context.Background(), s, NewConfig(), &Env{Device: replaytest.NewDevice(), Clock: replaytest.NewClock(), Host: &fakeHost{}, Stdout: &out, Stderr: &errOut, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cmd.pkt:2: error executing `exit 3` command: non-zero status 3") {
		t.Errorf("got %v", err)
	}
	if out.String() != "hello\n" {
		t.Errorf("stdout %q", out.String())
	}
	if !strings.Contains(errOut.String(), "cmd.pkt:1: warning: a sysctl of this command was refused") {
		t.Errorf("no sysctl warning in stderr:\n%s", errOut.String())
	}
}

func TestTimestampMapping(t *testing.T) {
	ts := func(val, ecr uint32) []byte {
		return []byte{1, 1, 8, 10, byte(val >> 24), byte(val >> 16), byte(val >> 8), byte(val), byte(ecr >> 24), byte(ecr >> 16), byte(ecr >> 8), byte(ecr)}
	}
	src := listenPrefix + "+0 < S 0:0(0) win 4000 <nop,nop,TS val 700 ecr 0>\n" +
		"+0 > S. 0:0(0) ack 1 <nop,nop,TS val 100 ecr 700>\n" +
		"+0 < . 1:1(0) ack 1 win 1000 <nop,nop,TS val 800 ecr 100>\n"
	kernel := []kernelPacket{{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, ts(5555, 700), 0)}}
	dev, err := fakeRun(t, src, kernel)
	if err != nil {
		t.Fatal(err)
	}
	<-dev.Written() // the SYN
	p, err := decodePacket(<-dev.Written())
	if err != nil {
		t.Fatal(err)
	}
	val, _ := findTSVal(p.TCP.Options)
	ecr := binary.BigEndian.Uint32(p.TCP.Options[8:])
	if val != 800 || ecr != 5555 {
		t.Errorf("injected TS val %d ecr %d, want 800 and the kernel's 5555", val, ecr)
	}
	if p.TCP.Ack != kernelISN+1 {
		t.Errorf("injected ack %d, want the kernel's ISN + 1", p.TCP.Ack)
	}

	// An ecr that no outbound TS val maps to is an error, unless
	// --tcp_ts_ecr_scaled interpolates it.
	bad := strings.Replace(src, "TS val 800 ecr 100", "TS val 800 ecr 150", 1)
	if _, err := fakeRun(t, bad, kernel); err == nil || !strings.Contains(err.Error(), "unable to infer live TS ecr for script TS ecr 150") {
		t.Errorf("unmapped ecr: got %v", err)
	}
	if _, err := fakeRun(t, bad, kernel, "tcp_ts_ecr_scaled="); err != nil {
		t.Errorf("--tcp_ts_ecr_scaled: %v", err)
	}
}

// TestRestoreScriptRemoved: the restore script upstream's set_sysctls.py
// writes for the run's namespace is gone after the run (it still exists
// for the script's own last command), and one that was there before the
// run is not touched.
func TestRestoreScriptRemoved(t *testing.T) {
	path := fmt.Sprintf("/tmp/sysctl_restore_%d.sh", os.Getpid())
	if _, err := os.Stat(path); err == nil {
		t.Skipf("%s exists already", path)
	}
	run := func(src string) error {
		s, err := parser.ParseFile("restore.pkt", []byte(src), nil)
		if err != nil {
			t.Fatal(err)
		}
		return Run(context.Background(), s, NewConfig(), &Env{Device: replaytest.NewDevice(), Clock: replaytest.NewClock(), Host: &fakeHost{}, Dir: t.TempDir()})
	}
	write := "0 `echo 'echo 1 > /dev/null' > /tmp/sysctl_restore_${PACKETDRILL_PID}.sh`\n" +
		"+0 `sh /tmp/sysctl_restore_${PACKETDRILL_PID}.sh`\n"
	if err := run(write); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		os.Remove(path)
		t.Fatalf("%s left after the run (%v)", path, err)
	}

	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	if err := run("0 `true`\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a restore script older than the run was removed: %v", err)
	}
}
