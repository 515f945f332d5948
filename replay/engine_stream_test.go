package replay

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

// TestStreamMatching runs outbound lines of a --pcap2pkt=1 script against
// kernels that cut the same byte stream differently.
func TestStreamMatching(t *testing.T) {
	mss := []byte{2, 4, 0x05, 0xb4}
	synack := kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0)}
	data := func(at time.Duration, flags tcpwire.Flags, from, n int) kernelPacket {
		return kernelPacket{at, kernelTCP(flags|tcpwire.FlagACK, kernelISN+1+uint32(from), 1, 502, nil, n)}
	}
	tests := []struct {
		name     string
		extended bool
		lines    string
		kernel   []kernelPacket
		want     []string // substrings of the error; none means success
	}{
		{"FIN line, FIN sent after the data", true, "+0 > FP. 1:301(300) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 300), data(0, tcpwire.FlagFIN, 300, 0)}, nil},
		{"FIN line, FIN on the data", true, "+0 > FP. 1:301(300) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH|tcpwire.FlagFIN, 0, 300)}, nil},
		{"data and FIN lines, FIN on the data", true, "+0 > P. 1:301(300) ack 1\n+0 > F. 301:301(0) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH|tcpwire.FlagFIN, 0, 300)}, nil},
		{"packetdrill's rule: FIN on the data is not a data line", false, "+0 > P. 1:301(300) ack 1\n+0 > F. 301:301(0) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH|tcpwire.FlagFIN, 0, 300)}, []string{"expected flags P., got flags FP."}},
		{"one segment for two lines", true, "+0 > P. 1:101(100) ack 1\n+0 > P. 101:201(100) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 200)}, nil},
		{"PSH anywhere", true, "+0 > P. 1:201(200) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 100), data(0, 0, 100, 100)}, nil},
		{"packetdrill's rule: PSH where written", false, "+0 > P. 1:201(200) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 100), data(0, 0, 100, 100)}, []string{"expected flags P., got flags ."}},
		{"a hole in the stream", true, "+0 > P. 1:201(200) ack 1\n",
			[]kernelPacket{data(0, 0, 0, 100), data(0, tcpwire.FlagPSH, 150, 50)}, []string{"expected the stream to go on at seq 101, got seq 151"}},
		{"a retransmission before the new data the lines expect first", true,
			"+0 > P. 1:1001(1000) ack 1\n+0 > P. 1001:2001(1000) ack 1\n+0 > . 1:1001(1000) ack 1\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 1000), data(time.Millisecond, 0, 0, 1000), data(time.Millisecond, tcpwire.FlagPSH, 1000, 1000)}, nil},
		{"a packet no line expects", true, "+0 > P. 1:101(100) ack 1\n+0.010 < . 1:1(0) ack 101 win 4000\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 100), data(5*time.Millisecond, tcpwire.FlagPSH, 100, 100)},
			[]string{"test.pkt:6: expected nothing, got > P. 101:201(100) ack 1", "no line of the script expects"}},
		{"packetdrill's rule: what no line reads is not judged", false, "+0 > P. 1:101(100) ack 1\n+0.010 < . 1:1(0) ack 101 win 4000\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 100), data(5*time.Millisecond, tcpwire.FlagPSH, 100, 100)}, nil},
		{"the answer to the last line is not judged", true, "+0 > P. 1:101(100) ack 1\n+0.010 < . 1:1(0) ack 101 win 4000\n",
			[]kernelPacket{data(0, tcpwire.FlagPSH, 0, 100), data(10*time.Millisecond+100*time.Microsecond, tcpwire.FlagPSH, 100, 100)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + tc.lines
			var opts []string
			if tc.extended {
				opts = append(opts, "pcap2pkt=1")
			}
			_, err := fakeRun(t, src, append([]kernelPacket{synack}, tc.kernel...), opts...)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestWildOptions matches `*` option values of a --pcap2pkt=1 script.
func TestWildOptions(t *testing.T) {
	opts := []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1}
	synack := kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, opts, 0)
	tests := []struct {
		name, line string
		want       []string
	}{
		{"every value *", "> S. 0:0(0) ack 1 <mss *,sackOK,TS val * ecr *,nop,wscale *,FO *,nop,nop>", nil},
		{"values given", "> S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 7,FO *,nop,nop>", nil},
		{"a value differs", "> S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 8,FO *,nop,nop>",
			[]string{"expected option wscale 8, got option wscale 7"}},
		{"an option missing", "> S. 0:0(0) ack 1 <mss *,sackOK,TS val * ecr *,nop,wscale *,nop,nop,nop,nop>",
			[]string{"expected options <mss *,sackOK,TS val * ecr *,nop,wscale *,nop,nop,nop,nop>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeRun(t, handshakeScript(tc.line), []kernelPacket{{0, synack}}, "pcap2pkt=1")
			checkRunError(t, err, tc.want)
		})
	}
}

// checkRunError checks a run's outcome: success when want is empty, else a
// script failure (a parser.Error) that says each of want.
func checkRunError(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected failure: %v", err)
		}
		return
	}
	var se *parser.Error
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a parser.Error", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// TestACKProgress runs ACK lines of a --pcap2pkt=1 script: what the kernel
// acknowledged by the line's time (within the tolerance and the delayed-ACK
// slack), on any packet.
func TestACKProgress(t *testing.T) {
	mss := []byte{2, 4, 0x05, 0xb4}
	synack := kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0)}
	ack := func(at time.Duration, flags tcpwire.Flags, from, n int, ack uint32, opts []byte) kernelPacket {
		return kernelPacket{at, kernelTCP(flags|tcpwire.FlagACK, kernelISN+1+uint32(from), ack, 502, opts, n)}
	}
	sack := func(l, r uint32) []byte {
		b := []byte{1, 1, 5, 10}
		b = binary.BigEndian.AppendUint32(b, l)
		return binary.BigEndian.AppendUint32(b, r)
	}
	const in = "+0 < P. 1:1001(1000) ack 1 win 4000\n"
	ms := time.Millisecond
	tests := []struct {
		name   string
		lines  string
		kernel []kernelPacket
		want   []string
	}{
		{"the ACK on the data that follows", in + "+0 > . 1:1(0) ack 1001\n+0 > P. 1:101(100) ack 1001\n",
			[]kernelPacket{ack(0, tcpwire.FlagPSH, 0, 100, 1001, nil)}, nil},
		{"a quick ACK where the capture had a delayed one", in + "+0.040~+0.048 > . 1:1(0) ack 1001\n",
			[]kernelPacket{ack(0, 0, 0, 0, 1001, nil)}, nil},
		{"a delayed ACK where the capture had a quick one", in + "+0 > . 1:1(0) ack 1001\n",
			[]kernelPacket{ack(44*ms, 0, 0, 0, 1001, nil)}, nil},
		{"too late even for a delayed ACK", in + "+0 > . 1:1(0) ack 1001\n",
			[]kernelPacket{ack(80*ms, 0, 0, 0, 1001, nil)},
			[]string{"test.pkt:8: expected the kernel to acknowledge ack 1001 by 0.052 s, the most it acknowledged: ack 1"}},
		{"less than the line", in + "+0 > . 1:1(0) ack 1001\n",
			[]kernelPacket{ack(0, 0, 0, 0, 501, nil)},
			[]string{"expected the kernel to acknowledge ack 1001", "the most it acknowledged: ack 501"}},
		{"SACK blocks over several ACKs", "+0 < P. 1001:2001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 1 <nop,nop,sack 1001:2001>\n",
			[]kernelPacket{ack(0, 0, 0, 0, 1, sack(1001, 1501)), ack(0, 0, 0, 0, 1, sack(1001, 2001))}, nil},
		{"a SACK block short", "+0 < P. 1001:2001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 1 <nop,nop,sack 1001:2001>\n",
			[]kernelPacket{ack(0, 0, 0, 0, 1, sack(1001, 1501))},
			[]string{"expected the kernel to acknowledge ack 1 with sack 1001:2001"}},
		// A duplicate of data received: the kernel reports it in a
		// D-SACK block below its ack (unless tcp_dsack=0).
		{"a D-SACK", in + "+0 > . 1:1(0) ack 1001\n+0.01 < P. 1:1001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 1001 <nop,nop,sack 1:1001>\n",
			[]kernelPacket{ack(0, 0, 0, 0, 1001, nil), ack(10*ms, 0, 0, 0, 1001, sack(1, 1001))}, nil},
		{"a D-SACK never sent", in + "+0 > . 1:1(0) ack 1001\n+0.01 < P. 1:1001(1000) ack 1 win 4000\n+0 > . 1:1(0) ack 1001 <nop,nop,sack 1:1001>\n",
			[]kernelPacket{ack(0, 0, 0, 0, 1001, nil), ack(10*ms, 0, 0, 0, 1001, nil)},
			[]string{"expected the kernel to acknowledge ack 1001 with sack 1:1001"}},
		{"the data's ack lags, a pure ACK follows", in + "+0 > P. 1:101(100) ack 1001\n",
			[]kernelPacket{ack(0, tcpwire.FlagPSH, 0, 100, 1, nil), ack(ms, 0, 100, 0, 1001, nil)}, nil},
		// A window probe (one below the stream) is a timer's decision,
		// not progress: its line wants it, at its time.
		{"a window probe", "+0 > P. 1:101(100) ack 1\n+0.2~+0.21 > . 100:100(0) ack 1\n",
			[]kernelPacket{ack(0, tcpwire.FlagPSH, 0, 100, 1, nil), ack(205*ms, 0, 99, 0, 1, nil)}, nil},
		{"a window probe that never comes", "+0 > P. 1:101(100) ack 1\n+0.2~+0.21 > . 100:100(0) ack 1\n+0.1 < . 1:1(0) ack 101 win 4000\n",
			[]kernelPacket{ack(0, tcpwire.FlagPSH, 0, 100, 1, nil)}, []string{"test.pkt:8: error handling packet: timed out waiting for packet"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + "+0 < . 1:1(0) ack 1 win 4000\n" + tc.lines
			_, err := fakeRun(t, src, append([]kernelPacket{synack}, tc.kernel...), "pcap2pkt=1")
			checkRunError(t, err, tc.want)
		})
	}
}

// TestAnchoredInbound: an inbound line anchored with ^ goes in that long
// after the kernel sent what it acknowledges, even while an outbound line
// before it waits.
func TestAnchoredInbound(t *testing.T) {
	mss := []byte{2, 4, 0x05, 0xb4}
	synack := kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, mss, 0)}
	data := func(at time.Duration, from, n int) kernelPacket {
		return kernelPacket{at, kernelTCP(tcpwire.FlagPSH|tcpwire.FlagACK, kernelISN+1+uint32(from), 1, 502, nil, n)}
	}
	ms := time.Millisecond
	tests := []struct {
		name   string
		lines  string
		kernel []kernelPacket
		want   []string
	}{
		{"after the data it acknowledges",
			"+0 > P. 1:1001(1000) ack 1\n+0.010^ < . 1:1(0) ack 1001 win 4000\n+0 > P. 1001:2001(1000) ack 1\n",
			[]kernelPacket{data(0, 0, 1000), data(10*ms, 1000, 1000)}, nil},
		{"ahead of an outbound line that waits",
			"+0 > P. 1:1001(1000) ack 1\n+0 > P. 1001:2001(1000) ack 1\n+0.002^ < . 1:1(0) ack 1001 win 4000\n",
			[]kernelPacket{data(0, 0, 1000), data(3*ms, 1000, 1000)}, nil},
		// The anchored ACK was due 2 ms after the data, but the line
		// before it holds it until 8 ms; the duplicate ACK after it, which
		// answers nothing new and is not anchored, counts from when the
		// anchored one went in.
		{"a line after an anchored one that went in late",
			"+0 > P. 1:1001(1000) ack 1\n+0.008 < . 1:1(0) ack 1 win 4000\n+0.002^ < . 1:1(0) ack 1001 win 4000\n+0.000004 < . 1:1(0) ack 1001 win 4000\n",
			[]kernelPacket{data(0, 0, 1000)}, nil},
		{"what it acknowledges never sent",
			"+0 > P. 1:1001(1000) ack 1\n+0.010^ < . 1:1(0) ack 2001 win 4000\n",
			[]kernelPacket{data(0, 0, 1000)}, []string{"this packet answers seq 1:2001, which the kernel has not sent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + "+0.001^ < . 1:1(0) ack 1 win 4000\n" + tc.lines
			dev, err := fakeRun(t, src, append([]kernelPacket{synack}, tc.kernel...), "pcap2pkt=1")
			checkRunError(t, err, tc.want)
			if err != nil {
				return
			}
			// The injected ACKs, in order: the handshake's, then the line's.
			var acks []uint32
			for _, p := range injectedACKs(dev) {
				acks = append(acks, uint32(p.TCP.Ack)-kernelISN)
			}
			if len(acks) < 2 || acks[0] != 1 || !slices.Contains(acks[1:], 1001) {
				t.Errorf("injected acks %v, want 1, then 1001 among the rest", acks)
			}
		})
	}
}

// TestHandshakeOptionSet: with --pcap2pkt a SYN-ACK's options are a set:
// another order and other padding match, a missing or different option
// does not; packetdrill's rule stays positional.
func TestHandshakeOptionSet(t *testing.T) {
	linux := []byte{2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7} // mss 1460, nop, nop, sackOK, nop, wscale 7
	tests := []struct {
		name     string
		extended bool
		synack   string
		want     []string
	}{
		{"another order", true, "> S. 0:0(0) ack 1 <sackOK,wscale 7,nop,nop,nop,mss 1460>", nil},
		{"packetdrill's rule: in order", false, "> S. 0:0(0) ack 1 <sackOK,wscale 7,nop,nop,nop,mss 1460>", []string{"expected options"}},
		{"a wildcard in another order", true, "> S. 0:0(0) ack 1 <wscale *,mss 1460,sackOK,nop,nop,nop>", nil},
		{"an option missing", true, "> S. 0:0(0) ack 1 <mss 1460,sackOK,nop,wscale 7,nop,nop,nop,nop,TS val 1 ecr 0>", []string{"expected options"}},
		{"an option the script lacks", true, "> S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>", []string{"expected options"}},
		{"another value", true, "> S. 0:0(0) ack 1 <wscale 8,mss 1460,sackOK,nop,nop,nop>", []string{"expected option wscale 8"}},
		// Bytes after an EOL are padding, so the wire list is shorter
		// than the script's: its `*` marks must still line up.
		{"a wildcard before eols", true, "> S. 0:0(0) ack 1 <mss 1460,nop,wscale *,sackOK,eol,eol>", nil},
		{"a value before eols", true, "> S. 0:0(0) ack 1 <mss 1460,nop,wscale 8,sackOK,eol,eol>", []string{"expected option wscale 8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []string
			if tc.extended {
				opts = append(opts, "pcap2pkt=1")
			}
			synack := kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, linux, 0)}
			_, err := fakeRun(t, handshakeScript(tc.synack), []kernelPacket{synack}, opts...)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestHoleBetweenSACKs: a retransmission may come as soon as an ACK shows
// its data lost, whether the hole is at the ACK or between two SACK
// blocks (RACK in recovery marks a hole lost on the first SACK above it),
// earlier than the captured kernel sent it; not before any ACK showed it.
func TestHoleBetweenSACKs(t *testing.T) {
	synack := synAck1000()
	us := time.Microsecond
	const lines = "+0 > P. 1:5001(5000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:2001>\n" +
		"+0.020^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 3001:4001 1001:2001>\n" +
		"+0.006 > . 2001:3001(1000) ack 1\n"
	tests := []struct {
		name string
		at   time.Duration
		want []string
	}{
		{"on the first SACK above the hole", 20*time.Millisecond + 50*us, nil},
		{"before any SACK above it", 11 * time.Millisecond, []string{"ms early"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := sackHandshake + "+0.001 < . 1:1(0) ack 1 win 4000\n" + lines
			start := 1 * time.Millisecond
			_, err := fakeRun(t, src, []kernelPacket{synack, dataSeg(start, 0, 5000), dataSeg(start+tc.at, 2000, 1000)})
			checkRunError(t, err, tc.want)
		})
	}
}

// TestRACKReorderWindow: over a path whose round trip is 20 ms (the
// handshake's), a retransmission that an ACK showed lost may come as late
// after its line as RACK's reordering timer fires (a quarter of the round
// trip, which a kernel out of recovery waits, in ticks rounded up plus two:
// 16 ms with the fake host's 4 ms tick); later fails, and so does a
// retransmission 8 ms late that no ACK showed lost (a timer's).
func TestRACKReorderWindow(t *testing.T) {
	synack := synAck1000()
	ms := time.Millisecond
	const head = sackHandshake +
		"+0.020^ < . 1:1(0) ack 1 win 4000\n+0 > P. 1:3001(3000) ack 1\n"
	const sacked = head + "+0.020^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:3001>\n+0 > . 1:1001(1000) ack 1\n"
	const timer = head + "+0.020 > . 1:1001(1000) ack 1\n"
	tests := []struct {
		name string
		src  string
		late time.Duration // after the line's time (20 ms after the data)
		want []string
	}{
		{"on the SACK", sacked, 0, nil},
		{"a reordering window late", sacked, 8 * ms, nil},
		{"as late as the window's timer fires", sacked, 15 * ms, nil},
		{"later than that", sacked, 18 * ms, []string{"ms late"}},
		{"as late with no ACK showing it lost", timer, 8 * ms, []string{"ms late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := 20 * ms
			_, err := fakeRun(t, tc.src, []kernelPacket{synack, dataSeg(start, 0, 3000), dataSeg(start+20*ms+tc.late, 0, 1000)})
			checkRunError(t, err, tc.want)
		})
	}
}

// TestPathSlack: over a path whose round trip is 20 ms (the handshake's),
// new data may come half of it from its line's time; a round trip late
// still fails, and over a path of a millisecond the tolerance rules.
func TestPathSlack(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		rtt  string
		at   time.Duration // after the handshake's ACK
		want []string
	}{
		{"7 ms late over 20 ms", "0.020", 7 * ms, nil},
		{"8 ms early over 20 ms", "0.020", -8 * ms, nil},
		{"a round trip late over 20 ms", "0.020", 20 * ms, []string{"ms late"}},
		{"7 ms late over 1 ms", "0.001", 7 * ms, []string{"ms late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rtt, err := time.ParseDuration(tc.rtt + "s")
			if err != nil {
				t.Fatal(err)
			}
			src := sackHandshake +
				"+" + tc.rtt + "^ < . 1:1(0) ack 1 win 4000\n" +
				"+0.010 > P. 1:1001(1000) ack 1\n"
			kernel := []kernelPacket{
				synAck1000(),
				{rtt + 10*ms + tc.at, kernelTCP(tcpwire.FlagACK|tcpwire.FlagPSH, kernelISN+1, 1, 502, nil, 1000)},
			}
			_, err = fakeRun(t, src, kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestPathSlackAfterRecovery: once an ACK has shown a hole, new data may
// come a whole round trip from its line's time (20 ms here), early or
// late; more than that still fails, and so does data as late before any
// ACK showed a hole (TestPathSlack).
func TestPathSlackAfterRecovery(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	const src = sackHandshake +
		"+0.020^ < . 1:1(0) ack 1 win 4000\n" +
		"+0 > P. 1:3001(3000) ack 1\n" +
		"+0.020^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:3001>\n" +
		"+0 > . 1:1001(1000) ack 1\n" +
		"+0.020^2 < . 1:1(0) ack 3001 win 4000\n" +
		"+0.001 > P. 3001:4001(1000) ack 1\n"
	tests := []struct {
		name string
		at   time.Duration // after the line's time (61 ms)
		want []string
	}{
		{"15 ms late", 15 * ms, nil},
		{"12 ms early", -12 * ms, nil},
		{"more than a round trip late", 26 * ms, []string{"ms late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{
				synAck1000(),
				dataSeg(20*ms, 0, 3000), dataSeg(40*ms+50*us, 0, 1000), dataSeg(61*ms+tc.at, 3000, 1000),
			}
			_, err := fakeRun(t, src, kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestHeldBackRetransmission: a retransmission the script does not have
// passes when the captured path held its bytes back, delivered late from
// their only transmission, longer than a quarter of the round trip (10 ms
// here) after an ACK SACKed bytes above them, and the kernel resent them
// once an ACK showed them lost; it fails when the capture held them less
// than that, or when the kernel resent them before any ACK showed them
// lost.
func TestHeldBackRetransmission(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(held string) string {
		return sackHandshake +
			"+0.040^ < . 1:1(0) ack 1 win 4000\n" +
			"+0 > P. 1:4001(4000) ack 1\n" +
			"+0.040^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 2001:4001>\n" +
			"+" + held + " < . 1:1(0) ack 4001 win 4000\n" +
			"+0.010 < . 1:1(0) ack 4001 win 4000\n"
	}
	tests := []struct {
		name string
		held string
		at   time.Duration
		want []string
	}{
		{"held 12 ms, resent on the SACK", "0.012", 80*ms + 100*us, nil},
		{"held 8 ms, resent on the SACK", "0.008", 80*ms + 100*us, []string{"expected nothing"}},
		{"held 12 ms, resent before the SACK", "0.012", 70 * ms, []string{"expected nothing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{synAck1000(), dataSeg(40*ms, 0, 4000), dataSeg(tc.at, 1000, 1000)}
			_, err := fakeRun(t, script(tc.held), kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestPartialFromLaterLine: the kernel retransmits before new data (the
// captured one after) and then holds the rest of its data for an ACK. The
// peer acknowledges what it got, as the later line that answers the
// retransmission does (the line before it would SACK the new data and
// leave the retransmission out, which no peer that got them in that order
// sends), with the window ending where that line's does.
func TestPartialFromLaterLine(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	src := sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 4000\n" +
		"+0 > . 1:1001(1000) ack 1\n" +
		"+0 > . 1001:1501(500) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:1501>\n" +
		"+0.011 > . 1501:2501(1000) ack 1\n" +
		"+0 > . 1:1001(1000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:2501>\n" +
		"+0.001^2 < . 1:1(0) ack 2501 win 1000\n"
	kernel := []kernelPacket{
		synAck1000(),
		dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 500),
		dataSeg(11*ms+50*us, 0, 1000),    // the retransmission first
		dataSeg(11*ms+100*us, 1500, 500), // then half the new data
		dataSeg(22*ms, 2000, 500),        // the rest, once an ACK came
	}
	gotDev, err := fakeRun(t, src, kernel)
	if err != nil {
		t.Fatalf("unexpected failure: %v", err)
	}
	type ackWin struct{ ack, win int }
	var got []ackWin
	for _, p := range injectedACKs(gotDev) {
		got = append(got, ackWin{int(uint32(p.TCP.Ack) - kernelISN), int(p.TCP.Window)})
	}
	// The answer to the retransmission its delay after it (what came
	// before it, engine_fifo.go), the partial ACK once the kernel waits,
	// the SACK line no lower than they were (its window ending where its
	// own does), the line.
	want := []ackWin{{1, 4000}, {1, 4000}, {1501, 2000}, {2001, 1500}, {2501, 1500}, {2501, 1000}}
	if !slices.Equal(got, want) {
		t.Errorf("injected (ack, window) %v, want %v", got, want)
	}
}

// TestRaceRetransmission: a retransmission the script does not have passes
// when the peer's ACK of its bytes came within the tolerance after it (the
// kernel's timer raced an ACK on its way), and fails when it came earlier
// than that or when the bytes had been acknowledged already.
func TestRaceRetransmission(t *testing.T) {
	ms := time.Millisecond
	const src = sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 4000\n" +
		"+0 > . 1:2001(2000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 2001 win 4000\n" +
		"+0.010 > . 2001:3001(1000) ack 1\n"
	tests := []struct {
		name string
		at   time.Duration
		want []string
	}{
		{"2 ms before the ACK", 9 * ms, nil},
		{"6 ms before the ACK", 5 * ms, []string{"expected nothing"}},
		{"after the ACK", 12 * ms, []string{"expected nothing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{
				synAck1000(),
				dataSeg(1*ms, 0, 2000), dataSeg(tc.at, 0, 1000), dataSeg(21*ms, 2000, 1000),
			}
			_, err := fakeRun(t, src, kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestHeldOneAck: in loss recovery (an ACK showed a hole), and after it,
// new data the captured kernel sent on an ACK may come on the next one, a
// round trip later at the end of a flight, or on the one before; with no
// hole ever shown (a smaller initial window, say) it fails, and so does
// data that came on no ACK.
func TestHeldOneAck(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(acks, after string) string {
		return sackHandshake +
			"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
			"+0 > . 1:4001(4000) ack 1\n" +
			acks +
			"+0 > . 4001:5001(1000) ack 1\n" +
			after
	}
	const (
		hole      = "+0.010^ < . 1:1(0) ack 1001 win 8000 <nop,nop,sack 2001:3001>\n"
		holeSACK  = "+0.020^ < . 1:1(0) ack 1001 win 8000 <nop,nop,sack 2001:4001>\n"
		filled    = "+0.010^ < . 1:1(0) ack 3001 win 8000\n"
		filledACK = "+0.020^ < . 1:1(0) ack 4001 win 8000\n"
		// filledLate: the hole filled 20 ms after its segment left.
		filledLate = "+0.020^ < . 1:1(0) ack 3001 win 8000\n"
	)
	tests := []struct {
		name        string
		acks, after string
		at          time.Duration
		want        []string
	}{
		{"on the next ACK in recovery", hole, holeSACK, 21*ms + 50*us, nil},
		{"on no ACK in recovery", hole, holeSACK, 16 * ms, []string{"ms late"}},
		{"on the next ACK after a recovery (a hole the path filled)", hole + filled, filledACK, 21*ms + 50*us, nil},
		{"on the next ACK with no hole before", "+0.010^ < . 1:1(0) ack 1001 win 8000\n" + filled, filledACK, 21*ms + 50*us, []string{"test.pkt:11", "ms late"}},
		{"on the next ACK out of recovery", "+0.010^ < . 1:1(0) ack 3001 win 8000\n", holeSACK, 21*ms + 50*us, []string{"ms late"}},
		// The mirror (earlyOneAck): the ACK that let the data out in the
		// capture (ack 3001) comes 10 ms after the one before.
		{"on the ACK before after a hole", hole + filledLate, filledACK, 11*ms + 50*us, nil},
		{"on the ACK before with no hole before", "+0.010^ < . 1:1(0) ack 1001 win 8000\n" + filledLate, filledACK, 11*ms + 50*us, []string{"test.pkt:11", "ms early"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{
				synAck1000(),
				dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000), dataSeg(1*ms, 2000, 1000), dataSeg(1*ms, 3000, 1000),
				dataSeg(tc.at, 4000, 1000),
			}
			_, err := fakeRun(t, script(tc.acks, tc.after), kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestReorderedAnswer: the ACK of a segment a reordering path held back
// (anchored to a transmission older than the lines before it answer) comes
// its captured delay after the kernel sent that segment, ahead of those
// lines when the kernel sent the later data late: acknowledging what the
// peer had by then. Before, it waited behind them, 2.9 ms past its time
// here, and a kernel's RACK took the segment for lost meanwhile (traffic2's
// IPv6 4 MiB upload over reordering, its client, 2242269).
func TestReorderedAnswer(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	const src = sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
		"+0 > . 1:3001(3000) ack 1\n" +
		"+0.004 > . 3001:4001(1000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:3001>\n" +
		"+0.010^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:4001>\n" +
		"+0.015^ < . 1:1(0) ack 3001 win 8000 <nop,nop,sack 3001:4001>\n"
	tests := []struct {
		name string
		at   time.Duration // when the kernel sends 3001:4001
		want []ackSummary
	}{
		{"the later data on time", 5 * ms, []ackSummary{{1, ""}, {1, "1001:3001"}, {1, "1001:4001"}, {3001, "3001:4001"}}},
		// The answer reports what the peer had of what the kernel sent
		// by the segment (not 3001:4001); the line before, due after it,
		// goes in after it, acknowledging all both report; the line
		// itself then too (a peer's cumulative ACK does not go back).
		{"the later data late", 8*ms + 900*us, []ackSummary{{1, ""}, {1, "1001:3001"}, {3001, ""}, {4001, ""}, {4001, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantACKs(t, src, []kernelPacket{synAck1000(), dataSeg(1*ms, 0, 3000), dataSeg(tc.at, 3000, 1000)}, tc.want)
		})
	}
}

// TestHoleAnswerTiming: the ACK that fills a hole comes its captured delay
// after the held-back segment's transmission, not after the transmission
// its line is anchored to (the last of the bytes it newly acknowledges): a
// kernel that sent the segment 2.5 ms earlier against the rest gets it
// that much earlier, ahead of a SACK line due after it.
func TestHoleAnswerTiming(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	const src = sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
		"+0.003 > . 1:1001(1000) ack 1\n" +
		"+0.001 > . 1001:3001(2000) ack 1\n" +
		"+0.004 > . 3001:4001(1000) ack 1\n" +
		"+0.006^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:3001>\n" +
		"+0.006^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:4001>\n" +
		"+0.011^ < . 1:1(0) ack 3001 win 8000 <nop,nop,sack 3001:4001>\n"
	tests := []struct {
		name string
		at   time.Duration // when the kernel sends 1:1001
		want []ackSummary
	}{
		{"the segment on time", 4 * ms, []ackSummary{{1, ""}, {1, "1001:3001"}, {1, "1001:4001"}, {3001, "3001:4001"}}},
		{"the segment early", 1*ms + 500*us, []ackSummary{{1, ""}, {1, "1001:3001"}, {3001, ""}, {4001, ""}, {4001, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantACKs(t, src, []kernelPacket{synAck1000(), dataSeg(tc.at, 0, 1000), dataSeg(5*ms, 1000, 2000), dataSeg(9*ms, 3000, 1000)}, tc.want)
		})
	}
}

// wantACKs runs script src against the fake kernel's packets and checks
// that it passes having injected the pure ACKs want, in order.
func wantACKs(t *testing.T, src string, kernel []kernelPacket, want []ackSummary) {
	t.Helper()
	dev, err := fakeRun(t, src, kernel)
	checkRunError(t, err, nil)
	if got := ackSummaries(dev); !slices.Equal(got, want) {
		t.Errorf("injected ACKs %v, want %v", got, want)
	}
}

// TestHeldOneBurst: ACKs injected back to back count as one for
// heldOneAck: data that left on the last of a burst (the part of it the
// first ACK let out gone already) was held by the ACK before the burst.
// A burst that began more than the tolerance before the data does not
// count so.
func TestHeldOneBurst(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(gap string) string {
		return sackHandshake +
			"+0.001^ < . 1:1(0) ack 1 win 9000\n" +
			"+0 > . 1:8001(8000) ack 1\n" +
			"+0.010^ < . 1:1(0) ack 1001 win 9000 <nop,nop,sack 2001:3001>\n" +
			"+0 > . 8001:9001(1000) ack 1\n" +
			"+0.020^ < . 1:1(0) ack 1001 win 9000 <nop,nop,sack 2001:8001>\n" +
			"+" + gap + " < . 1:1(0) ack 8001 win 9000\n"
	}
	tests := []struct {
		name string
		gap  string        // between the two ACKs after the data line
		at   time.Duration // when the kernel sends 8001:9001
		want []string
	}{
		{"on the last ACK of a burst", "0.0001", 21*ms + 150*us, nil},
		{"on an ACK 5 ms after the one before", "0.005", 26*ms + 50*us, []string{"test.pkt:10", "ms late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{synAck1000()}
			for k := range 8 {
				kernel = append(kernel, dataSeg(1*ms, k*1000, 1000))
			}
			kernel = append(kernel, dataSeg(tc.at, 8000, 1000))
			_, err := fakeRun(t, script(tc.gap), kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestHeldShortOfWindow: heldOneAck's second way. A kernel a segment short
// of the data line's end when the line was due (a window a segment smaller
// than the captured one's), that sends the rest on the first ACK injected
// after that, was held by one ACK, whatever the ACK between reported (here
// 6001 bytes where the line that released the data reported 2001: it
// answers data the kernel sent before, and went in ahead of the data
// line). Short by more than ackClockSegments segments, or sent on a later
// ACK, the data is late.
func TestHeldShortOfWindow(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(n int, extra string) string {
		return sackHandshake +
			"+0.001^ < . 1:1(0) ack 1 win 20000\n" +
			"+0 > . 1:8001(8000) ack 1\n" +
			"+0.010^ < . 1:1(0) ack 1001 win 20000 <nop,nop,sack 2001:3001>\n" +
			fmt.Sprintf("+0~+0.005 > . 8001:%d(%d) ack 1\n", 8001+1000*n, 1000*n) +
			"+0.012^ < . 1:1(0) ack 1001 win 20000 <nop,nop,sack 2001:7001>\n" +
			extra +
			"+0.024^ < . 1:1(0) ack 1001 win 20000 <nop,nop,sack 2001:8001>\n"
	}
	tests := []struct {
		name  string
		n     int // the data line's segments of 1000 bytes, which the kernel sends late
		extra string
		want  []string
	}{
		{"a segment short, on the first ACK after", 1, "", nil},
		{"four segments short", 4, "", []string{"test.pkt:10", "ms late"}},
		{"on the second ACK after", 1, "+0.018^ < . 1:1(0) ack 1001 win 20000 <nop,nop,sack 2001:7501>\n", []string{"test.pkt:10", "ms late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{synAck1000()}
			for k := range 8 {
				kernel = append(kernel, dataSeg(1*ms, k*1000, 1000))
			}
			for k := range tc.n {
				kernel = append(kernel, dataSeg(25*ms+100*us, 8000+k*1000, 1000))
			}
			_, err := fakeRun(t, script(tc.n, tc.extra), kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// synAck1000 is the kernel's SYN-ACK, with an MSS of 1000, at the start of
// a fake run.
func synAck1000() kernelPacket {
	return kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, []byte{2, 4, 0x03, 0xe8}, 0)}
}

// dataSeg is a segment of the kernel's at at: n bytes from stream offset
// from, ack 1.
func dataSeg(at time.Duration, from, n int) kernelPacket {
	return kernelPacket{at, kernelTCP(tcpwire.FlagACK, kernelISN+1+uint32(from), 1, 502, nil, n)}
}

// TestDSACKLineAnchored: a D-SACK inside the next SACK block (a duplicate
// the path made of bytes the peer had reported) answers the transmission
// of its bytes: it goes in its delay after it, ahead of an outbound line
// before it, and the ACK after it follows, though it reports nothing new.
func TestDSACKLineAnchored(t *testing.T) {
	ms := time.Millisecond
	src := sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
		"+0 > . 1:4001(4000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:3001>\n" +
		"+0 > . 4001:5001(1000) ack 1\n" +
		"+0.013^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 2001:3001 1001:3001>\n" +
		"+0.001 < . 1:1(0) ack 4001 win 8000\n"
	kernel := []kernelPacket{synAck1000(), dataSeg(1*ms, 0, 4000), dataSeg(16*ms, 4000, 1000)}
	var at []time.Duration // when each ACK went in
	wrap := func(d *replaytest.Device, c *replaytest.Clock) Device {
		return notifyDevice{d, func() {
			b := <-d.Written()
			if p, err := decodePacket(b); err == nil && p.isTCP() && p.TCP.Flags == tcpwire.FlagACK {
				at = append(at, c.Now().Sub(replaytest.Epoch))
			}
		}}
	}
	_, err := fakeRunWith(t, src, kernel, wrap)
	checkRunError(t, err, nil)
	want := []time.Duration{1 * ms, 11 * ms, 14 * ms, 15 * ms}
	if !slices.Equal(at, want) {
		t.Errorf("ACKs went in at %v, want %v", at, want)
	}
}

// TestPace: over a 20 ms path, a kernel whose every round of data leaves a
// few milliseconds after its line (each within the half round trip a data
// line may have) fails at the last new data once the rounds' lateness adds
// up to more than twice the tolerance percent of the capture's time for
// it; a little lateness in all passes, and neither on a LAN path nor on a
// receiver's (its peer sent more data) is the pace judged.
func TestPace(t *testing.T) {
	ms := time.Millisecond
	script := func(rtt string, peerData bool) string {
		s := "--pcap2pkt=1\n" + listenPrefix +
			"+0 < S 0:0(0) win 4000 <mss 1000,nop,nop,sackOK>\n" +
			"+0 > S. 0:0(0) ack 1 <...>\n" +
			"+" + rtt + "^ < . 1:1(0) ack 1 win 8000\n"
		if peerData {
			s += "+0 < . 1:8001(8000) ack 1 win 8000\n"
		} else {
			// A duplicate that answers nothing new goes in at once.
			s += "+0.060^ < . 1:1(0) ack 1 win 8000\n"
		}
		for k := range 5 {
			s += fmt.Sprintf("+0 > . %d:%d(1000) ack 1\n", 1+k*1000, 1001+k*1000)
			s += fmt.Sprintf("+%s^ < . 1:1(0) ack %d win 8000\n", rtt, 1001+k*1000)
		}
		return s
	}
	tests := []struct {
		name      string
		rtt       string
		rttD      time.Duration
		late      time.Duration // of each round's data after its line
		peerData  bool          // the peer sends more data than the kernel
		wantError []string
	}{
		{"late by 7 ms a round", "0.020", 20 * ms, 7 * ms, false, []string{"pace error", "35.000 ms late"}},
		{"late by 4 ms a round", "0.020", 20 * ms, 4 * ms, false, nil},
		{"on time", "0.020", 20 * ms, 0, false, nil},
		{"late by 1 ms a round on a LAN path", "0.002", 2 * ms, 1 * ms, false, nil},
		{"late by 7 ms a round, the peer sending more", "0.020", 20 * ms, 7 * ms, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{synAck1000()}
			for k := range 5 {
				// Each round's ACK answers the kernel's data a round
				// trip after it left; the next round's line follows it.
				at := time.Duration(k+1) * (tc.rttD + tc.late)
				kernel = append(kernel, dataSeg(at, k*1000, 1000))
			}
			_, err := fakeRun(t, script(tc.rtt, tc.peerData), kernel)
			checkRunError(t, err, tc.wantError)
		})
	}
}

// TestDSACKOwed: a D-SACK line is owed when the kernel sent a packet
// between the duplicate's injection and the next segment's (an ACK then
// without the block fails); a kernel that took the duplicate and the next
// segment before it acknowledged anything reports no D-SACK (tcp_data_queue
// clears it), and its one later ACK passes.
func TestDSACKOwed(t *testing.T) {
	ms := time.Millisecond
	const script = sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
		"+0 < . 1:1001(1000) ack 1 win 8000\n" +
		"+0 < . 1:1001(1000) ack 1 win 8000\n" +
		"+0 > . 1:1(0) ack 1001 <nop,nop,sack 1:1001>\n" +
		"+0.0005 < . 1001:2001(1000) ack 1 win 8000\n" +
		"+0 > . 1:1(0) ack 2001\n"
	us := time.Microsecond
	ack := func(at time.Duration, n uint32, opts []byte) kernelPacket {
		return kernelPacket{at, kernelTCP(tcpwire.FlagACK, kernelISN+1, n, 502, opts, 0)}
	}
	dsack := []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 3, 0xe9}
	tests := []struct {
		name   string
		kernel []kernelPacket
		want   []string
	}{
		{"acked in between with the D-SACK", []kernelPacket{synAck1000(), ack(ms+200*us, 1001, dsack), ack(2*ms, 2001, nil)}, nil},
		{"acked in between without it", []kernelPacket{synAck1000(), ack(ms+200*us, 1001, nil), ack(2*ms, 2001, nil)},
			[]string{"sack 1:1001"}},
		{"one ACK after the next segment", []kernelPacket{synAck1000(), ack(2*ms, 2001, nil)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeRun(t, script, tc.kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestWritesAhead: a write between an outbound line that waits and an
// anchored ACK that goes in ahead of it is made before the ACK, as the
// captured application wrote before the captured peer's ACK came; a call
// of another kind stays in its place and holds the writes after it, and a
// write made early that returns what the script does not say fails at its
// own line.
func TestWritesAhead(t *testing.T) {
	ms := time.Millisecond
	data := func(at time.Duration, from, n int) kernelPacket {
		return kernelPacket{at, kernelTCP(tcpwire.FlagPSH|tcpwire.FlagACK, kernelISN+1+uint32(from), 1, 502, nil, n)}
	}
	const head = "+0.001^ < . 1:1(0) ack 1 win 4000\n+0 accept(3, ..., ...) = 4\n+0 > P. 1:1001(1000) ack 1\n+0 > P. 1001:2001(1000) ack 1\n"
	const tail = "+0.002^ < . 1:1(0) ack 1001 win 4000\n+0 > P. 2001:3001(1000) ack 1\n"
	tests := []struct {
		name  string
		calls string
		order string // of the writes (w) and the ACK of 1001 (a)
		want  []string
	}{
		{"a write goes in before the ACK", "+0 write(4, ..., 1000) = 1000\n", "wa", nil},
		{"two writes", "+0 write(4, ..., 500) = 500\n+0 write(4, ..., 500) = 500\n", "wwa", nil},
		{"a call of another kind holds the writes after it", "+0 read(4, ..., 1000) = -1 EAGAIN (Resource temporarily unavailable)\n+0 write(4, ..., 1000) = 1000\n", "aw", nil},
		{"a write on another fd stays in its place", "+0 write(5, ..., 1000) = 1000\n", "aw", nil},
		{"a write that returns otherwise fails at its line", "+0 write(4, ..., 1000) = 999\n", "wa", []string{"test.pkt:10:", "expected result 999"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var order strings.Builder
			calls := acceptingSyscalls()
			write := calls["write"]
			calls["write"] = func(c *callContext) (int64, syscall.Errno, error) {
				order.WriteByte('w')
				return write(c)
			}
			acks := &ackLog{order: &order}
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + head + tc.calls + tail
			kernel := []kernelPacket{{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, []byte{2, 4, 0x05, 0xb4}, 0)},
				data(ms, 0, 1000), data(4*ms, 1000, 1000), data(4*ms, 2000, 1000)}
			_, err := fakeRunCalls(t, src, kernel, func(d *replaytest.Device, _ *replaytest.Clock) Device {
				acks.Device = d
				return acks
			}, calls, "pcap2pkt=1")
			checkRunError(t, err, tc.want)
			if got := order.String(); got != tc.order {
				t.Errorf("writes (w) and the ACK of 1001 (a) in the order %q, want %q", got, tc.order)
			}
		})
	}
}

// ackLog is a device that notes an injected ACK of 1001 in order.
type ackLog struct {
	Device
	order *strings.Builder
}

func (d *ackLog) WritePacket(b []byte) error {
	if p, err := decodePacket(b); err == nil && p.isTCP() && p.TCP.Flags == tcpwire.FlagACK && uint32(p.TCP.Ack)-kernelISN == 1001 {
		d.order.WriteByte('a')
	}
	return d.Device.WritePacket(b)
}

// TestAheadInTimeOrder: a run behind its schedule (a write that took 3 ms)
// reads a packet the kernel sent before an anchored ACK fell due before it
// injects that ACK ahead, and with it the line the packet answers and the
// calls after it go first; a packet sent after the ACK's time comes after
// the ACK, as before.
func TestAheadInTimeOrder(t *testing.T) {
	ms := time.Millisecond
	data := func(at time.Duration, from, n int) kernelPacket {
		return kernelPacket{at, kernelTCP(tcpwire.FlagPSH|tcpwire.FlagACK, kernelISN+1+uint32(from), 1, 502, nil, n)}
	}
	// The ACK of 1001 is due 2.5 ms after the kernel sent 1:1001 (at 1
	// ms): at 3.5 ms, while the run, done with the slow write at 4 ms,
	// waits for 1001:2001.
	const lines = "+0.001^ < . 1:1(0) ack 1 win 4000\n+0 accept(3, ..., ...) = 4\n+0 > P. 1:1001(1000) ack 1\n+0 write(4, ..., 1000) = 1000\n" +
		"+0 > P. 1001:2001(1000) ack 1\n+0 read(4, ..., 1000) = -1 EAGAIN (Resource temporarily unavailable)\n+0.0025^ < . 1:1(0) ack 1001 win 4000\n"
	tests := []struct {
		name  string
		sent  time.Duration // when the kernel sent 1001:2001
		order string        // of the read (r) and the ACK of 1001 (a)
	}{
		{"sent before the ACK was due", 3 * ms, "ra"},
		{"sent after the ACK was due", 3800 * time.Microsecond, "ar"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var order strings.Builder
			calls := acceptingSyscalls()
			write := calls["write"]
			calls["write"] = func(c *callContext) (int64, syscall.Errno, error) {
				c.e.env.Clock.(*replaytest.Clock).Advance(3 * ms)
				return write(c)
			}
			read := calls["read"]
			calls["read"] = func(c *callContext) (int64, syscall.Errno, error) {
				order.WriteByte('r')
				return read(c)
			}
			src := handshakeScript("> S. 0:0(0) ack 1 <...>") + lines
			kernel := []kernelPacket{{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, []byte{2, 4, 0x05, 0xb4}, 0)},
				data(ms, 0, 1000), data(tc.sent, 1000, 1000)}
			_, err := fakeRunCalls(t, src, kernel, func(d *replaytest.Device, _ *replaytest.Clock) Device {
				return &ackLog{d, &order}
			}, calls, "pcap2pkt=1")
			checkRunError(t, err, nil)
			if got := order.String(); got != tc.order {
				t.Errorf("the read (r) and the ACK of 1001 (a) in the order %q, want %q", got, tc.order)
			}
		})
	}
}

// TestOvertakenACK: a run behind its schedule (a write that took 3 ms)
// with two anchored ACKs due by then injects only the later one when it
// tells all the earlier one does; both when the run is on time, when the
// later one acknowledges nothing more (an ACK count the kernel may act
// on), or when the kernel is recovering and the later one moves the
// cumulative ACK (PRR sends a segment more on each such ACK); while
// recovering, a later ACK that only SACKs more is folded.
func TestOvertakenACK(t *testing.T) {
	ms := time.Millisecond
	const ack1001 = "+0.002^ < . 1:1(0) ack 1001 win 4000"
	tests := []struct {
		name          string
		slow          time.Duration // how long the write takes
		first, second string        // the ACK lines
		recovering    bool
		want          []uint32
	}{
		{"behind", 3 * ms, ack1001, "+0.002^ < . 1:1(0) ack 2001 win 4000", false, []uint32{1, 2001}},
		{"on time", 0, ack1001, "+0.002^ < . 1:1(0) ack 2001 win 4000", false, []uint32{1, 1001, 2001}},
		{"no more acknowledged", 3 * ms, ack1001, "+0 < . 1:1(0) ack 1001 win 5000", false, []uint32{1, 1001, 1001}},
		{"recovering", 3 * ms, ack1001, "+0.002^ < . 1:1(0) ack 2001 win 4000", true, []uint32{1, 1001, 2001}},
		{"recovering, only SACKed more", 3 * ms, "+0.002^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:1501>",
			"+0.002^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:2001>", true, []uint32{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := acceptingSyscalls()
			write := calls["write"]
			calls["write"] = func(c *callContext) (int64, syscall.Errno, error) {
				c.e.env.Clock.(*replaytest.Clock).Advance(tc.slow)
				return write(c)
			}
			// The kernel sends 1:2001 at 1 ms, 2001:3001 at 6 ms: both
			// ACKs are due at 3 ms, and the write ends at 4 ms.
			src := sackHandshake + "+0.001^ < . 1:1(0) ack 1 win 4000\n+0 accept(3, ..., ...) = 4\n" +
				"+0 > . 1:1001(1000) ack 1\n+0 > . 1001:2001(1000) ack 1\n+0 write(4, ..., 1000) = 1000\n" +
				"+0.005 > . 2001:3001(1000) ack 1\n" + tc.first + "\n" + tc.second + "\n"
			kernel := []kernelPacket{{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240, []byte{2, 4, 0x03, 0xe8, 4, 2, 1, 1}, 0)},
				dataSeg(ms, 0, 1000), dataSeg(ms, 1000, 1000), dataSeg(6*ms, 2000, 1000)}
			dev, err := fakeRunHost(t, src, kernel, nil, calls, &fakeHost{recovering: tc.recovering})
			checkRunError(t, err, nil)
			var log []uint32
			for _, p := range injectedACKs(dev) {
				log = append(log, uint32(p.TCP.Ack)-kernelISN)
			}
			if !slices.Equal(log, tc.want) {
				t.Errorf("ACKs injected %v, want %v", log, tc.want)
			}
		})
	}
}

// acceptingSyscalls is fakeSyscalls with an accept that returns live fd
// 200 as the accepted socket, for tests that wrap a call on it.
func acceptingSyscalls() map[string]syscallFunc {
	calls := fakeSyscalls()
	calls["accept"] = func(c *callContext) (int64, syscall.Errno, error) {
		c.resultIsFD()
		c.afterResultFD(200, func(scriptFD int) error { return c.e.acceptSocket(scriptFD, 200) })
		return 200, 0, nil
	}
	return calls
}

// TestRecutRetransmission: a kernel whose segments were cut otherwise
// than the captured one's retransmits a lost range at its own boundaries:
// a head of bytes sent before and a tail the peer had SACKed, each at most
// a segment, count for nothing; more, or a tail the peer lacked, fails.
func TestRecutRetransmission(t *testing.T) {
	ms := time.Millisecond
	const head = sackHandshake + "+0.001 < . 1:1(0) ack 1 win 4000\n" +
		"+0 > P. 1:5001(5000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:2001>\n"
	const line = "+0.006 > . 2001:3001(1000) ack 1\n"
	sacked := head + "+0.020^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 3001:4001 1001:2001>\n" + line
	lacked := head + "+0.020^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 3501:4001 1001:2001>\n" + line
	tests := []struct {
		name   string
		src    string
		pieces [][2]int // from, n
		want   []string
	}{
		{"as captured", sacked, [][2]int{{2000, 1000}}, nil},
		{"a head and a SACKed tail", sacked, [][2]int{{1500, 1000}, {2500, 1000}}, nil},
		{"in one segment", sacked, [][2]int{{1500, 2000}}, nil},
		{"a head of more than a segment", sacked, [][2]int{{0, 2500}, {2500, 500}}, []string{"timed out waiting for packet", "actual #0:       0.021050 > . 1:2501(2500)"}},
		{"a tail of more than a segment", sacked, [][2]int{{1500, 1000}, {2500, 2000}}, []string{"expected nothing, got > . 3001:4501(1500)"}},
		{"a tail the peer had not SACKed", lacked, [][2]int{{1500, 1000}, {2500, 1000}}, []string{"expected nothing, got > . 3001:3501(500)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := 1 * ms
			kernel := []kernelPacket{synAck1000(), dataSeg(start, 0, 5000)}
			for _, p := range tc.pieces {
				kernel = append(kernel, dataSeg(start+20*ms+50*time.Microsecond, p[0], p[1]))
			}
			_, err := fakeRun(t, tc.src, kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// TestRetransmissionAnswer: the captured kernel sent new data, then its
// retransmission, and the peer's answer to the retransmission (`^2`)
// acknowledges both. A kernel that sends the retransmission first gets,
// as from a peer on a path that keeps order, the answer to it (what it had
// sent by then) before the SACK of the data it sent after it: at the
// answer's delay after the retransmission, or just before that SACK when
// the SACK falls due first; the SACK line then acknowledges what the
// answer did. A kernel that sends them in the captured order gets the
// lines as written; one that retransmits late still fails. An ACK sooner
// than half a round trip after the retransmission (the handshake's, here
// 1 ms) does not answer it: a late earlier copy made it, on a path that
// reorders.
func TestRetransmissionAnswer(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(answerDelay string) string {
		answer := "ack 3001 win 4000"
		if after, ok := strings.CutPrefix(answerDelay, "dsack "); ok {
			answerDelay, answer = after, "ack 3001 win 4000 <nop,nop,sack 1:1001>"
		}
		return sackHandshake +
			"+0.001^ < . 1:1(0) ack 1 win 4000\n" +
			"+0 > . 1:1001(1000) ack 1\n" +
			"+0 > . 1001:2001(1000) ack 1\n" +
			"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:2001>\n" +
			"+0 > . 2001:3001(1000) ack 1\n" +
			"+0 > . 1:1001(1000) ack 1\n" +
			"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 1001:3001>\n" +
			"+" + answerDelay + "^2 < . 1:1(0) " + answer + "\n"
	}
	type ack = ackSummary
	tests := []struct {
		name        string
		answerDelay string
		kernel      []kernelPacket
		want        []ack
		fail        []string
	}{
		{"retransmission first, the answer due first", "0.010", []kernelPacket{
			dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000),
			dataSeg(11*ms+50*us, 0, 1000), dataSeg(11*ms+300*us, 2000, 1000),
		}, []ack{{1, ""}, {1, "1001:2001"}, {2001, ""}, {3001, ""}, {3001, ""}}, nil},
		{"retransmission first, the SACK due first", "0.0105", []kernelPacket{
			dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000),
			dataSeg(11*ms+50*us, 0, 1000), dataSeg(11*ms+300*us, 2000, 1000),
		}, []ack{{1, ""}, {1, "1001:2001"}, {2001, ""}, {3001, ""}, {3001, ""}}, nil},
		{"the captured order", "0.010", []kernelPacket{
			dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000),
			dataSeg(11*ms+50*us, 2000, 1000), dataSeg(11*ms+300*us, 0, 1000),
		}, []ack{{1, ""}, {1, "1001:2001"}, {1, "1001:3001"}, {3001, ""}}, nil},
		{"an ACK sooner than half a round trip", "0.0004", []kernelPacket{
			dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000),
			dataSeg(11*ms+50*us, 0, 1000), dataSeg(11*ms+300*us, 2000, 1000),
		}, []ack{{1, ""}, {1, "1001:2001"}, {1, "1001:3001"}, {3001, ""}}, nil},
		{"an ACK that reports a duplicate", "dsack 0.010", []kernelPacket{
			dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000),
			dataSeg(11*ms+50*us, 0, 1000), dataSeg(11*ms+300*us, 2000, 1000),
		}, []ack{{1, ""}, {1, "1001:2001"}, {1, "1001:3001"}, {3001, "1:1001"}}, nil},
		{"a late retransmission", "0.010", []kernelPacket{
			dataSeg(1*ms, 0, 1000), dataSeg(1*ms, 1000, 1000),
			dataSeg(11*ms+50*us, 2000, 1000), dataSeg(30*ms, 0, 1000),
		}, nil, []string{"test.pkt:12", "late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotDev, err := fakeRun(t, script(tc.answerDelay), append([]kernelPacket{synAck1000()}, tc.kernel...))
			checkRunError(t, err, tc.fail)
			if tc.fail != nil {
				return
			}
			got := ackSummaries(gotDev)
			if !slices.Equal(got, tc.want) {
				t.Errorf("injected ACKs %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAnswersInPathOrder: the answers to two retransmissions the kernel
// sent 10 µs apart go in in that order, though the captured delays (the
// peer answered both at once) put the second's due time first, and an
// answer that tells all its line tells is the line: it does not go in
// twice. Before the fix the second answer (ack 3001) went in first, and
// the first line went in raised to it.
func TestAnswersInPathOrder(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(between string) string {
		return sackHandshake +
			"+0.001^ < . 1:1(0) ack 1 win 4000\n" +
			"+0 > . 1:3001(3000) ack 1\n" +
			"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,sack 2001:3001>\n" +
			"+0 > . 1:1001(1000) ack 1\n" +
			"+0 > . 1001:2001(1000) ack 1\n" +
			between +
			"+0.010^2 < . 1:1(0) ack 1001 win 4000 <nop,nop,sack 2001:3001>\n" +
			"+0.009970^2 < . 1:1(0) ack 3001 win 4000\n"
	}
	type ack = ackSummary
	want := []ack{{1, ""}, {1, "2001:3001"}, {1001, "2001:3001"}, {3001, ""}}
	kernel := []kernelPacket{synAck1000(), dataSeg(1*ms, 0, 3000), dataSeg(11*ms+50*us, 0, 1000), dataSeg(11*ms+60*us, 1000, 1000)}
	tests := []struct {
		name    string
		between string // a line between the retransmissions and their answers
		kernel  []kernelPacket
	}{
		{"waiting at the first answer's line", "", kernel},
		{"waiting at new data after both", "+0.0105 > . 3001:4001(1000) ack 1\n", append(kernel, dataSeg(21*ms+560*us, 3000, 1000))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotDev, err := fakeRun(t, script(tc.between), tc.kernel)
			checkRunError(t, err, nil)
			got := ackSummaries(gotDev)
			if !slices.Equal(got, want) {
				t.Errorf("injected ACKs %v, want %v", got, want)
			}
		})
	}
}

// tsOption is a TCP timestamp option (with two NOPs before it).
func tsOption(val, ecr uint32) []byte {
	o := []byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(o[4:], val)
	binary.BigEndian.PutUint32(o[8:], ecr)
	return o
}

// tsSeg is a data segment of the kernel's from byte from (relative), n
// bytes, with TS val and ecr.
func tsSeg(at time.Duration, from, n int, val, ecr uint32) kernelPacket {
	return kernelPacket{at, kernelTCP(tcpwire.FlagACK, kernelISN+1+uint32(from), 1, 502, tsOption(val, ecr), n)}
}

// tsSynAck is the kernel's SYN-ACK (MSS 1000, SACK, timestamps) at 0.
func tsSynAck(val, ecr uint32) kernelPacket {
	return kernelPacket{0, kernelTCP(tcpwire.FlagSYN|tcpwire.FlagACK, kernelISN, 1, 64240,
		append([]byte{2, 4, 0x03, 0xe8, 1, 1, 4, 2}, tsOption(val, ecr)...), 0)}
}

// TestPartialEchoesLatest: a partial ACK (the kernel quiet with part of
// what a line answers sent) echoes the latest TS val the kernel sent, not
// the line's TS ecr interpolated from the capture's clock, which, with the
// replay behind the capture, is older than what the ACK answers (a
// kernel takes such an ACK for one its original transmission made and
// undoes a recovery). The line itself echoes its own, mapped.
func TestPartialEchoesLatest(t *testing.T) {
	ms := time.Millisecond
	seg := func(at time.Duration, from, n int, val uint32) kernelPacket { return tsSeg(at, from, n, val, 11) }
	const src = "--pcap2pkt=1\n" + listenPrefix +
		"+0 < S 0:0(0) win 4000 <mss 1000,sackOK,TS val 10 ecr 0>\n" +
		"+0 > S. 0:0(0) ack 1 <mss 1000,nop,nop,sackOK,nop,nop,TS val 500 ecr 10>\n" +
		"+0.001^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 11 ecr 500>\n" +
		"+0 > . 1:1001(1000) ack 1 <nop,nop,TS val 501 ecr 11>\n" +
		"+0.010 > . 1001:2001(1000) ack 1 <nop,nop,TS val 510 ecr 11>\n" +
		"+0.005^ < . 1:1(0) ack 2001 win 4000 <nop,nop,TS val 20 ecr 510>\n"
	synack := tsSynAck(500, 10)
	// The kernel's clock runs 30 ms ahead of the capture's by 1:1001.
	kernel := []kernelPacket{synack, seg(1*ms, 0, 1000, 530), seg(11*ms, 1000, 1000, 540)}
	gotDev, err := fakeRun(t, src, kernel)
	if err != nil {
		t.Fatalf("unexpected failure: %v", err)
	}
	type ackEcr struct{ ack, ecr int }
	var got []ackEcr
	for _, p := range injectedACKs(gotDev) {
		for o, err := range tcpwire.EachOption(p.TCP.Options) {
			if _, ecr, ok := o.Timestamp(); ok && err == nil {
				got = append(got, ackEcr{int(uint32(p.TCP.Ack) - kernelISN), int(ecr)})
			}
		}
	}
	want := []ackEcr{{1, 500}, {1001, 530}, {2001, 540}}
	if !slices.Equal(got, want) {
		t.Errorf("injected (ack, TS ecr) %v, want %v", got, want)
	}
}

// TestPartialPeerClock: an ACK injected for a line still to come (the
// answer to a retransmission, engine_fifo.go) carries the TS val the
// peer last sent, not its line's later one: the lines that go in after it
// carry older TS vals than that line, and a kernel drops a segment whose
// TS val is older than the latest it got (PAWS) unless it is a pure
// duplicate ACK.
func TestPartialPeerClock(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	seg := func(at time.Duration, from, n int, val uint32) kernelPacket { return tsSeg(at, from, n, val, 10) }
	const src = "--pcap2pkt=1\n" + listenPrefix +
		"+0 < S 0:0(0) win 4000 <mss 1000,sackOK,TS val 10 ecr 0>\n" +
		"+0 > S. 0:0(0) ack 1 <mss 1000,nop,nop,sackOK,nop,nop,TS val 500 ecr 10>\n" +
		"+0.001^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 11 ecr 500>\n" +
		"+0 > . 1:1001(1000) ack 1 <nop,nop,TS val 501 ecr 11>\n" +
		"+0 > . 1001:2001(1000) ack 1 <nop,nop,TS val 501 ecr 11>\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 20 ecr 501,nop,nop,sack 1001:2001>\n" +
		"+0 > . 2001:3001(1000) ack 1 <nop,nop,TS val 511 ecr 20>\n" +
		"+0 > . 1:1001(1000) ack 1 <nop,nop,TS val 512 ecr 20>\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 30 ecr 511,nop,nop,sack 1001:3001>\n" +
		"+0.010^2 < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 40 ecr 512>\n"
	synack := tsSynAck(500, 10)
	kernel := []kernelPacket{synack,
		seg(1*ms, 0, 1000, 501), seg(1*ms, 1000, 1000, 501),
		seg(11*ms+50*us, 0, 1000, 512), seg(11*ms+300*us, 2000, 1000, 512),
	}
	gotDev, err := fakeRun(t, src, kernel)
	if err != nil {
		t.Fatalf("unexpected failure: %v", err)
	}
	type ackTS struct{ ack, val int }
	var got []ackTS
	for _, p := range injectedACKs(gotDev) {
		v, _ := findTSVal(p.TCP.Options)
		got = append(got, ackTS{int(uint32(p.TCP.Ack) - kernelISN), int(v)})
	}
	want := []ackTS{{1, 11}, {1, 20}, {2001, 20}, {3001, 30}, {3001, 40}}
	if !slices.Equal(got, want) {
		t.Errorf("injected (ack, TS val) %v, want %v", got, want)
	}
}

// TestReleasedAfter: new data the captured kernel sent on an ACK, which
// the synthesis put after the ACKs that came within a millisecond after it
// (acksAhead), may leave on that ACK though the last of those comes late:
// here the kernel sent 1001:2001 8 ms early and 2001:3001 3.9 ms late, so
// ack 2001 went in 12 ms before ack 3001, and the data it released counts
// from the line before the ACKs. Data as early whose line follows no such
// ACKs (it follows the late one alone, which acknowledges the data's own
// bytes) still fails.
func TestReleasedAfter(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	script := func(last string) string {
		return sackHandshake +
			"+0.020^ < . 1:1(0) ack 1 win 8000\n" +
			"+0 > . 1:1001(1000) ack 1\n" +
			"+0.010 > . 1001:2001(1000) ack 1\n" +
			"+0.011^ < . 1:1(0) ack 1001 win 8000\n" +
			"+0 > . 2001:3001(1000) ack 1\n" +
			"+0.020^ < . 1:1(0) ack 2001 win 8000\n" +
			"+0.0195^ < . 1:1(0) " + last + "\n" +
			"+0 > . 3001:4001(1000) ack 1\n"
	}
	kernel := []kernelPacket{synAck1000(), dataSeg(20*ms, 0, 1000), dataSeg(22*ms, 1000, 1000),
		dataSeg(34*ms+900*us, 2000, 1000), dataSeg(42*ms+50*us, 3000, 1000)}
	tests := []struct {
		name string
		last string
		want []string
	}{
		{"on the ACK before the late one", "ack 3001 win 8000", nil},
		{"before the ACK of its own bytes", "ack 4001 win 8000", []string{"test.pkt:14", "ms early"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeRun(t, script(tc.last), kernel)
			checkRunError(t, err, tc.want)
		})
	}
}

// injectedACKs drains what the run wrote to dev and returns its pure ACKs,
// in order.
func injectedACKs(dev *replaytest.Device) []*wirePacket {
	var out []*wirePacket
	for len(dev.Written()) > 0 {
		p, err := decodePacket(<-dev.Written())
		if err == nil && p.isTCP() && p.TCP.Flags == tcpwire.FlagACK {
			out = append(out, p)
		}
	}
	return out
}

// TestAnswerReportsDataBefore: a kernel that sent new data just before its
// retransmission, where the captured one sent it just after, gets that data
// acknowledged with the answer to the retransmission, as the captured peer
// had it by its next line: a peer on a path that keeps order got it first.
// Without it, the answer acknowledges the retransmission alone, and RACK
// takes the data, sent before a segment the peer acknowledged, for lost.
func TestAnswerReportsDataBefore(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	const src = sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
		"+0 > . 1:2001(2000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:2001>\n" +
		"+0.005 > . 1:1001(1000) ack 1\n" +
		"+0 > . 2001:3001(1000) ack 1\n" +
		"+0.0105 > . 3001:4001(1000) ack 1\n" +
		"+0.010^2 < . 1:1(0) ack 2001 win 8000\n" +
		"+0.0101^ < . 1:1(0) ack 3001 win 8000\n"
	tests := []struct {
		name   string
		kernel []kernelPacket
		want   []int // the injected ACKs' numbers
	}{
		{"the captured order", []kernelPacket{dataSeg(1*ms, 0, 2000), dataSeg(16*ms, 0, 1000), dataSeg(16*ms+20*us, 2000, 1000), dataSeg(26*ms+500*us, 3000, 1000)}, []int{1, 1, 2001, 3001}},
		{"new data just before the retransmission", []kernelPacket{dataSeg(1*ms, 0, 2000), dataSeg(16*ms-20*us, 2000, 1000), dataSeg(16*ms, 0, 1000), dataSeg(26*ms+500*us, 3000, 1000)}, []int{1, 1, 3001, 3001, 3001}},
		// The run reaches the answer's line before its time (3001:4001
		// comes 3.5 ms early): the line itself reports the data.
		{"the line itself after new data", []kernelPacket{dataSeg(1*ms, 0, 2000), dataSeg(16*ms-20*us, 2000, 1000), dataSeg(16*ms, 0, 1000), dataSeg(23*ms, 3000, 1000)}, []int{1, 1, 3001, 3001}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, err := fakeRun(t, src, append([]kernelPacket{synAck1000()}, tc.kernel...))
			checkRunError(t, err, nil)
			var got []int
			for _, p := range injectedACKs(dev) {
				got = append(got, int(uint32(p.TCP.Ack)-kernelISN))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("injected ACKs %v, want %v", got, tc.want)
			}
		})
	}
}

// ackSummary is an injected ACK as tests compare it: its number and its
// SACK blocks, relative to the kernel's ISN.
type ackSummary struct {
	ack   int
	sacks string
}

// ackSummaries drains the injected pure ACKs of dev (injectedACKs) into
// summaries.
func ackSummaries(dev *replaytest.Device) []ackSummary {
	var out []ackSummary
	for _, p := range injectedACKs(dev) {
		var sacks []string
		for b := range eachSACK(p.TCP.Options) {
			sacks = append(sacks, fmt.Sprintf("%d:%d", uint32(b.start)-kernelISN, uint32(b.end)-kernelISN))
		}
		out = append(out, ackSummary{int(uint32(p.TCP.Ack) - kernelISN), strings.Join(sacks, " ")})
	}
	return out
}

// sackHandshake begins a --pcap2pkt=1 script: a listener, the peer's SYN
// (MSS 1000, SACK) and the kernel's SYN-ACK; the handshake's ACK, whose
// delay sets the path's round trip, is each test's.
const sackHandshake = "--pcap2pkt=1\n" + listenPrefix +
	"+0 < S 0:0(0) win 4000 <mss 1000,sackOK,nop,nop>\n" +
	"+0 > S. 0:0(0) ack 1 <...>\n"

// TestAnswerAfterEarlierACKs: the answer to a retransmission does not go
// in ahead of a line that answers data the kernel sent before that
// retransmission, though the captured delays make the answer due first
// (the replayed kernel sent the two 0.5 ms apart, the captured one 5 ms):
// on a path that keeps order the peer got the data first and answered it
// first, so the line goes in just before the answer, at the answer's time.
// Before the fix the answer (ack 3001) went in first, with no room in a
// real answer's blocks for what the line before it SACKs, and RACK took
// that data for lost (traffic2's 4 MiB lossy download's server).
func TestAnswerAfterEarlierACKs(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	const src = sackHandshake +
		"+0.001^ < . 1:1(0) ack 1 win 8000\n" +
		"+0 > . 1:2001(2000) ack 1\n" +
		"+0.010^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:2001>\n" +
		"+0 > . 2001:3001(1000) ack 1\n" +
		"+0.005 > . 1:1001(1000) ack 1\n" +
		"+0.0065 > . 3001:4001(1000) ack 1\n" +
		"+0.012^ < . 1:1(0) ack 1 win 8000 <nop,nop,sack 1001:3001>\n" +
		"+0.010^2 < . 1:1(0) ack 3001 win 8000\n"
	kernel := []kernelPacket{synAck1000(), dataSeg(1*ms, 0, 2000), dataSeg(15*ms, 2000, 1000),
		dataSeg(15*ms+500*us, 0, 1000), dataSeg(25*ms+900*us, 3000, 1000)}
	wantACKs(t, src, kernel, []ackSummary{{1, ""}, {1, "1001:2001"}, {1, "1001:3001"}, {3001, ""}})
}

// TestRelativeToKernelSend: under --pcap2pkt an event after an outbound
// line counts its relative time from when the kernel sent the line's
// packet, not from when the run read it, up to readLagUsecs: a write 2 ms
// after data the kernel sent at 3.5 ms, which the run read at 4 ms (it
// waited for the line before), goes in at 5.5 ms, not 6; one after data
// sent at 1.5 ms, at 5 ms (4 ms less readLagUsecs, plus 2).
func TestRelativeToKernelSend(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	for _, tc := range []struct {
		name string
		sent time.Duration // of the data
		want time.Duration // when the write after it goes in
	}{
		{"read 0.5 ms after it was sent", 3500 * us, 5500 * us},
		{"read 2.5 ms after it was sent", 1500 * us, 5 * ms},
		{"read as it was sent", 4 * ms, 6 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := sackHandshake + "+0.001^ < . 1:1(0) ack 1 win 4000\n+0 accept(3, ..., ...) = 4\n" +
				"+0.003 < . 1:1(0) ack 1 win 5000\n" + // the run waits for it, until 4 ms
				"+0 > P. 1:1001(1000) ack 1\n" +
				"+0.002 write(4, ..., 1000) = 1000\n"
			kernel := []kernelPacket{synAck1000(), {tc.sent, kernelTCP(tcpwire.FlagACK|tcpwire.FlagPSH, kernelISN+1, 1, 502, nil, 1000)}}
			calls := acceptingSyscalls()
			var wrote []time.Duration
			write := calls["write"]
			calls["write"] = func(c *callContext) (int64, syscall.Errno, error) {
				wrote = append(wrote, c.e.env.Clock.Now().Sub(c.e.liveStart))
				return write(c)
			}
			_, err := fakeRunCalls(t, src, kernel, nil, calls)
			checkRunError(t, err, nil)
			if len(wrote) != 1 || wrote[0] != tc.want {
				t.Errorf("the write went in at %v, want %v", wrote, tc.want)
			}
		})
	}
}

// TestPreemptedRetransmission: the captured kernel resent 1:1001 2 ms
// before the peer's ACK of its first transmission came (the path had held
// that back; the ACK echoes its TS val). A kernel that resends within the
// tolerance of the ACK's time gets the ACK after its retransmission, as
// the captured one did; one that has not resent by then gets the ACK, and
// the line is needless: a kernel that resends after that ACK, or a line
// whose ACK echoes the retransmission's TS val (it answered that one),
// still fails.
func TestPreemptedRetransmission(t *testing.T) {
	ms := time.Millisecond
	script := func(ecr int) string {
		return "--pcap2pkt=1\n" + listenPrefix +
			"+0 < S 0:0(0) win 4000 <mss 1000,sackOK,TS val 10 ecr 0>\n" +
			"+0 > S. 0:0(0) ack 1 <mss 1000,nop,nop,sackOK,nop,nop,TS val 500 ecr 10>\n" +
			"+0.001^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 11 ecr 500>\n" +
			"+0 > . 1:3001(3000) ack 1 <nop,nop,TS val 501 ecr 11>\n" +
			"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 20 ecr 500,nop,nop,sack 1001:3001>\n" +
			"+0.002 > . 1:1001(1000) ack 1 <nop,nop,TS val 513 ecr 20>\n" +
			fmt.Sprintf("+0.013^ < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 21 ecr %d>\n", ecr) +
			"+0.010 > . 3001:4001(1000) ack 1 <nop,nop,TS val 540 ecr 21>\n"
	}
	tests := []struct {
		name   string
		ecr    int
		resend time.Duration // 0: never
		want   []string
		ackAt  time.Duration // when the ACK of 3001 went in
	}{
		{"resent on time", 501, 13 * ms, nil, 14 * ms},
		{"resent 2 ms after the ACK's time", 501, 16 * ms, nil, 16 * ms},
		{"not resent", 501, 0, nil, 18 * ms},
		{"resent after the ACK", 501, 25 * ms, []string{"expected nothing"}, 18 * ms},
		{"the ACK answers the retransmission", 513, 0, []string{"timed out"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kernel := []kernelPacket{tsSynAck(500, 10), tsSeg(1*ms, 0, 3000, 501, 11)}
			if tc.resend > 0 {
				kernel = append(kernel, tsSeg(tc.resend, 0, 1000, 500+uint32(tc.resend/ms), 20))
			}
			if tc.ackAt > 0 {
				kernel = append(kernel, tsSeg(tc.ackAt+10*ms, 3000, 1000, 540, 21))
			}
			slices.SortFunc(kernel, func(a, b kernelPacket) int { return cmp.Compare(a.at, b.at) })
			var ackAt time.Duration
			wrap := func(d *replaytest.Device, c *replaytest.Clock) Device {
				return notifyDevice{d, func() {
					b := <-d.Written()
					if p, err := decodePacket(b); err == nil && p.isTCP() && p.TCP.Flags == tcpwire.FlagACK && uint32(p.TCP.Ack)-kernelISN == 3001 {
						ackAt = c.Now().Sub(replaytest.Epoch)
					}
				}}
			}
			_, err := fakeRunWith(t, script(tc.ecr), kernel, wrap)
			checkRunError(t, err, tc.want)
			if tc.ackAt > 0 && ackAt != tc.ackAt {
				t.Errorf("the ACK of 3001 went in at %v, want %v", ackAt, tc.ackAt)
			}
		})
	}
}

// TestNotePreempted: a retransmission line may be needless when the peer's
// next ACK of its bytes came within the tolerance after it and echoes the
// earlier transmission's TS val; not when the ACK came later, echoes the
// retransmission's, or reports the retransmission's copy (a D-SACK: the
// copy came after the hole filled, and the ACK answers it).
func TestNotePreempted(t *testing.T) {
	const head = "--pcap2pkt=1\n" + listenPrefix +
		"+0 < S 0:0(0) win 4000 <mss 1000,sackOK,TS val 10 ecr 0>\n" +
		"+0 > S. 0:0(0) ack 1 <mss 1000,nop,nop,sackOK,nop,nop,TS val 500 ecr 10>\n" +
		"+0.001^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 11 ecr 500>\n" +
		"+0 > . 1:3001(3000) ack 1 <nop,nop,TS val 501 ecr 11>\n" +
		"+0.010^ < . 1:1(0) ack 1 win 4000 <nop,nop,TS val 20 ecr 500,nop,nop,sack 1001:3001>\n" +
		"+0.002 > . 1:1001(1000) ack 1 <nop,nop,TS val 513 ecr 20>\n"
	tests := []struct {
		name, ack string
		want      bool
	}{
		{"1 ms after, the first transmission's ecr", "+0.013^ < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 21 ecr 501>", true},
		{"10 ms after", "+0.022^ < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 21 ecr 501>", false},
		{"the retransmission's ecr", "+0.001^2 < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 21 ecr 513>", false},
		{"a D-SACK of the copy", "+0.001^2 < . 1:1(0) ack 3001 win 4000 <nop,nop,TS val 21 ecr 501,nop,nop,sack 1:1001>", false},
	}
	for _, tc := range tests {
		s, err := parser.ParseFile("t.pkt", []byte(head+tc.ack+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := NewConfig()
		cfg.Extended = true
		e := &engine{script: s, cfg: cfg}
		e.lostInCapture()
		if got := len(e.preempted) > 0; got != tc.want {
			t.Errorf("%s: preempted %v, want %v", tc.name, e.preempted, tc.want)
		}
	}
}

// TestSentBeforeInjected: a retransmission line the peer's ACK made
// needless still takes a packet the reader holds that the kernel sent
// before that ACK went in (a retransmission ahead of the line); not one
// sent after it, nor when the reader holds nothing.
func TestSentBeforeInjected(t *testing.T) {
	at := replaytest.Epoch.Add(time.Second)
	tests := []struct {
		name string
		pkts []rawOut
		want bool
	}{
		{"a packet sent before the injection", []rawOut{{at: at.Add(-time.Millisecond)}}, true},
		{"a packet sent after it", []rawOut{{at: at.Add(time.Millisecond)}}, false},
		{"nothing held", nil, false},
	}
	for _, tc := range tests {
		e := &engine{outq: &outQueue{pkts: tc.pkts}, lastInjected: at}
		if got := e.sentBeforeInjected(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if (&engine{lastInjected: at}).sentBeforeInjected() {
		t.Error("no reader: true")
	}
}
