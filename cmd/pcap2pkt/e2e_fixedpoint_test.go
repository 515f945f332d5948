//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

// The fixed point: replay a script with --capture, synthesise a script
// from that capture, replay it with --capture too. The second replay must
// pass, and its capture must match the first one.
//
// "Matches" means: each capture holds one TCP connection with a handshake;
// per direction (the kernel's segments, the injected ones), in captured
// order, the segments agree in TCP flags, sequence and acknowledgment
// numbers relative to each side's initial sequence number, and payload
// length. Adjacent data segments of one direction that continue each
// other with the same acknowledgment and no SYN, FIN or RST are merged
// first (their flags OR-ed): a kernel cuts one write into segments as its
// TSO/GSO sizing says, and the replay gathers them into one expectation,
// so the cut is not part of the behaviour. Windows, options, times and
// addresses are not compared (the replay uses its own addresses; windows
// follow buffer autotuning that the script does not fix). A RST that
// repeats the packet just before it (same sender, flags and numbers) is
// dropped: the connection is already gone, so the kernel ignores it. That
// is the replay tool's teardown: like packetdrill it injects a RST for
// every connection when a script ends, so the first capture ends with one,
// the synthesised script injects it, and the second run adds its own.

// segment is one (merged) segment in the comparable form.
type segment struct {
	flags    tcpwire.Flags
	seq, ack uint32 // relative to the sender's and the receiver's ISN
	len      int
}

func (s segment) String() string {
	return fmt.Sprintf("%s %d:%d(%d) ack %d", s.flags, s.seq, s.seq+uint32(s.len), s.len, s.ack)
}

// flowSegments reads a pcap with the capture package and returns the
// segments of its single connection, per direction: [0] sent by the local
// side (the kernel under test), [1] by the remote.
func flowSegments(path string) ([2][]segment, error) {
	var out [2][]segment
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	flows, _, err := capture.ReadFlows(f, path, capture.FlowOptions{})
	if err != nil {
		return out, err
	}
	if len(flows) != 1 {
		return out, fmt.Errorf("%s: %d TCP connections, want 1", path, len(flows))
	}
	fl := flows[0]
	if !fl.Handshake() {
		return out, fmt.Errorf("%s: no complete handshake", path)
	}
	const noMerge = tcpwire.FlagSYN | tcpwire.FlagFIN | tcpwire.FlagRST
	var prev *capture.FlowPacket
	for i := range fl.Packets.Len() {
		p := fl.Packets.At(i)
		repeat := prev != nil && p.Flags.Has(tcpwire.FlagRST) && prev.From == p.From &&
			prev.Flags == p.Flags && prev.Seq == p.Seq && prev.Ack == p.Ack
		prev = p
		if repeat {
			continue
		}
		dir := 0
		if p.From != fl.Local {
			dir = 1
		}
		s := segment{flags: p.Flags, seq: uint32(p.Seq - fl.ISN[p.From]), len: p.PayloadLen()}
		if p.Flags.Has(tcpwire.FlagACK) {
			s.ack = uint32(p.Ack - fl.ISN[p.From.Other()])
		}
		list := out[dir]
		if n := len(list); n > 0 {
			last := &list[n-1]
			if last.len > 0 && s.len > 0 && last.flags&noMerge == 0 && s.flags&noMerge == 0 &&
				last.seq+uint32(last.len) == s.seq && last.ack == s.ack {
				last.len += s.len
				last.flags |= s.flags
				continue
			}
		}
		out[dir] = append(list, s)
	}
	return out, nil
}

// compareCaptures returns the first difference between two captures'
// connections, or "" when they match.
func compareCaptures(first, second string) (string, error) {
	a, err := flowSegments(first)
	if err != nil {
		return "", err
	}
	b, err := flowSegments(second)
	if err != nil {
		return "", err
	}
	for dir, name := range []string{"local (kernel) segments", "remote (injected) segments"} {
		x, y := a[dir], b[dir]
		for i := range max(len(x), len(y)) {
			switch {
			case i >= len(x):
				return fmt.Sprintf("%s: the second capture has more (%d vs %d), first extra: %s", name, len(y), len(x), y[i]), nil
			case i >= len(y):
				return fmt.Sprintf("%s: the second capture has fewer (%d vs %d), first missing: %s", name, len(y), len(x), x[i]), nil
			case x[i] != y[i]:
				return fmt.Sprintf("%s #%d: first %s, second %s", name, i+1, x[i], y[i]), nil
			}
		}
	}
	return "", nil
}

// roundTrip runs the fixed point: first is the first replay's command
// line, which writes cap1. It returns "" on success, else why not, and
// whether the first run does not qualify (its replay failed, or its
// capture is not one connection): then the script is not counted.
// synth names extra synthesis flags: the congestion control the first
// replay ran under, which a capture does not show.
func roundTrip(t *testing.T, bin string, first []string, cap1, dir string, synth ...string) (why string, notCounted bool) {
	pkt2, cap2 := filepath.Join(dir, "second.pkt"), filepath.Join(dir, "second.pcap")
	// A run can miss a timing on a loaded machine: each replay gets a
	// second chance, and only a second failure counts.
	replayTwice := func(a ...string) (int, string) {
		var code int
		var out, errs string
		for range 2 {
			code, out, errs = execCLI(t, bin, a...)
			if code == 0 {
				break
			}
		}
		return code, out + errs
	}
	if code, out := replayTwice(first...); code != 0 {
		return fmt.Sprintf("first replay: exit %d: %s", code, failureText(out)), true
	}
	if _, err := flowSegments(cap1); err != nil {
		return err.Error(), true
	}
	if code, out, errs := execCLI(t, bin, append(append([]string{"-o", pkt2}, synth...), cap1)...); code != 0 {
		return fmt.Sprintf("synthesis: exit %d: %s", code, firstLine(out+errs)), false
	}
	if code, out := replayTwice("replay", "--capture", cap2, pkt2); code != 0 {
		return fmt.Sprintf("second replay: exit %d: %s", code, failureText(out)), false
	}
	diff, err := compareCaptures(cap1, cap2)
	if err != nil {
		return err.Error(), false
	}
	if diff != "" {
		return "captures differ: " + diff, false
	}
	return "", false
}

// failureText is the first "file:line: message" line of a replay's output.
func failureText(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ".pkt:") {
			return strings.TrimSpace(l)
		}
	}
	return firstLine(out)
}

func TestE2EFixedPointSeed(t *testing.T) {
	requireReplay(t)
	src, err := os.ReadFile("../../../shared/seed/article.pkt")
	if err != nil {
		t.Skipf("the seed is not here: %v", err)
	}
	var kept []string
	for _, l := range strings.Split(string(src), "\n") {
		if !strings.Contains(l, "`sleep 10`") {
			kept = append(kept, l)
		}
	}
	dir := keepDir(t)
	script := filepath.Join(dir, "article.pkt")
	if err := os.WriteFile(script, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := buildCLI(t)
	cap1 := filepath.Join(dir, "first.pcap")
	if why, _ := roundTrip(t, bin, []string{"replay", "--capture", cap1, script}, cap1, dir); why != "" {
		t.Fatalf("the seed does not round-trip: %s (files in %s)", why, dir)
	}
}

// upstreamTree copies the upstream gtests/net folder into a temporary
// folder and makes tcp/common/defaults.sh the symlink it stands for.
func upstreamTree(t *testing.T) string {
	t.Helper()
	src := "../../../shared/conformance/packetdrill/gtests/net"
	if _, err := os.Stat(src); err != nil {
		t.Skipf("the upstream scripts are not here: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "net")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dst, "tcp/common/defaults.sh")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../common/defaults.sh", link); err != nil {
		t.Fatal(err)
	}
	return dst
}

// conformanceList reads the ipv4 scripts that replay passes here.
func conformanceList(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../replay/testdata/conformance-ipv4.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestE2EFixedPointUpstream runs the fixed point over every upstream ipv4
// script that replay passes, with the upstream runner's ipv4 arguments.
// Scripts with more than one connection are not counted. Of the rest, the
// ones in upstreamRoundTrips must round-trip; the count is logged.
func TestE2EFixedPointUpstream(t *testing.T) {
	requireReplay(t)
	if testing.Short() {
		t.Skip("about two minutes of replays; skipped with -short")
	}
	tree := upstreamTree(t)
	allowCubic(t)
	scripts := conformanceList(t)
	bin := buildCLI(t)
	type result struct {
		script, why string
		counted     bool
	}
	results := make([]result, len(scripts))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s := scripts[i]
				dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
				os.MkdirAll(dir, 0o755)
				// The suite form names the capture after the script and family.
				cap1 := filepath.Join(dir, strings.TrimSuffix(filepath.Base(s), ".pkt")+"_ipv4.pcap")
				first := []string{"replay", "--families=ipv4", "--capture-dir", dir, filepath.Join(tree, s)}
				why, notCounted := roundTrip(t, bin, first, cap1, dir, upstreamCC...)
				results[i] = result{script: s, why: why, counted: !notCounted}
			}
		}()
	}
	for i := range scripts {
		work <- i
	}
	close(work)
	wg.Wait()

	// A listed script that failed gets one more round trip on its own, after
	// the parallel runs: a regression fails twice, a timing miss on a
	// loaded machine does not.
	for i, r := range results {
		if r.counted && r.why != "" && slices.Contains(upstreamRoundTrips, r.script) {
			dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
			os.MkdirAll(dir, 0o755)
			cap1 := filepath.Join(dir, strings.TrimSuffix(filepath.Base(r.script), ".pkt")+"_ipv4.pcap")
			first := []string{"replay", "--families=ipv4", "--capture-dir", dir, filepath.Join(tree, r.script)}
			if why, _ := roundTrip(t, bin, first, cap1, dir, upstreamCC...); why == "" {
				t.Logf("%s round-trips at the second try; the first: %s", r.script, r.why)
				results[i].why = ""
			}
		}
	}

	var pass, counted int
	for _, r := range results {
		if !r.counted {
			t.Logf("not counted: %s: %s", r.script, r.why)
			continue
		}
		counted++
		switch {
		case r.why == "":
			pass++
			if !slices.Contains(upstreamRoundTrips, r.script) {
				t.Logf("round-trips now (add it to upstreamRoundTrips): %s", r.script)
			}
		case slices.Contains(upstreamRoundTrips, r.script):
			t.Errorf("%s no longer round-trips: %s", r.script, r.why)
		default:
			t.Logf("does not round-trip: %s: %s", r.script, r.why)
		}
	}
	t.Logf("%d of %d one-connection upstream ipv4 scripts round-trip (%d listed as passing here)", pass, counted, len(scripts))
}

// upstreamRoundTrips are the upstream scripts that round-trip here (103 of
// the 106 one-connection ones on 2026-12-06, on a stock host: the test
// allows cubic for its run and synthesises with it, see allowCubic). Left:
// mtu_probe/basic-v4 (its route changes are not in a capture),
// sack/sack-route-refresh-ip-tos (TSO marks PSH on every super-segment, so
// one 14600-byte write is split into several and the replayed RACK timer
// comes 7 ms late) and cubic/cubic-rack-reo-timeout-retrans-failed-incoming-data
// (its qdisc drops every packet for a while, which a capture cannot show:
// the second run's kernel sends the retransmission the first one's qdisc
// dropped, which the synthesised script rightly fails as a packet the
// capture does not have).
var upstreamRoundTrips = []string{
	"tcp/blocking/blocking-accept.pkt",
	"tcp/blocking/blocking-connect.pkt",
	"tcp/blocking/blocking-read.pkt",
	"tcp/blocking/blocking-write.pkt",
	"tcp/close/close-local-close-then-remote-fin.pkt",
	"tcp/close/close-on-syn-sent.pkt",
	"tcp/close/close-remote-fin-then-close.pkt",
	"tcp/cubic/cubic-hystart-delay-min-rtt-jumps-downward.pkt",
	"tcp/cubic/cubic-hystart-delay-rtt-jumps-upward.pkt",
	"tcp/cubic/cubic-rto-ss-ca-cwnd-bump.pkt",
	"tcp/cwnd_moderation/cwnd-moderation-disorder-no-moderation.pkt",
	"tcp/ecn/ecn-uses-ect0.pkt",
	"tcp/eor/no-coalesce-large.pkt",
	"tcp/eor/no-coalesce-retrans.pkt",
	"tcp/eor/no-coalesce-small.pkt",
	"tcp/eor/no-coalesce-subsequent.pkt",
	"tcp/epoll/epoll_in_edge.pkt",
	"tcp/fast_recovery/prr-ss-10pkt-lost-1.pkt",
	"tcp/fast_recovery/prr-ss-30pkt-lost-1_4-11_16.pkt",
	"tcp/fast_recovery/prr-ss-30pkt-lost1_4.pkt",
	"tcp/fast_recovery/prr-ss-ack-below-snd_una-cubic.pkt",
	"tcp/fast_retransmit/fr-4pkt-fack-last-byte.pkt",
	"tcp/fast_retransmit/fr-4pkt-sack.pkt",
	"tcp/fast_retransmit/fr-4pkt.pkt",
	"tcp/fastopen/client/fastopen-connect-keepalive.pkt",
	"tcp/fastopen/server/basic-cookie-not-reqd.pkt",
	"tcp/fastopen/server/basic-non-tfo-listener.pkt",
	"tcp/fastopen/server/basic-rw.pkt",
	"tcp/fastopen/server/basic-zero-payload.pkt",
	"tcp/fastopen/server/fin-close-socket.pkt",
	"tcp/fastopen/server/icmp-baseline.pkt",
	"tcp/fastopen/server/icmp-before-accept.pkt",
	"tcp/fastopen/server/listener-closed-trigger-rst.pkt",
	"tcp/fastopen/server/opt34/basic-cookie-not-reqd.pkt",
	"tcp/fastopen/server/opt34/basic-non-tfo-listener.pkt",
	"tcp/fastopen/server/opt34/basic-rw.pkt",
	"tcp/fastopen/server/opt34/basic-zero-payload.pkt",
	"tcp/fastopen/server/opt34/fin-close-socket.pkt",
	"tcp/fastopen/server/opt34/icmp-before-accept.pkt",
	"tcp/fastopen/server/opt34/listener-closed-trigger-rst.pkt",
	"tcp/fastopen/server/opt34/reset-after-accept.pkt",
	"tcp/fastopen/server/opt34/reset-before-accept.pkt",
	"tcp/fastopen/server/opt34/reset-close-with-unread-data.pkt",
	"tcp/fastopen/server/opt34/reset-non-tfo-socket.pkt",
	"tcp/fastopen/server/opt34/unread-data-closed-trigger-rst.pkt",
	"tcp/fastopen/server/reset-after-accept.pkt",
	"tcp/fastopen/server/reset-before-accept.pkt",
	"tcp/fastopen/server/reset-close-with-unread-data.pkt",
	"tcp/fastopen/server/reset-non-tfo-socket.pkt",
	"tcp/fastopen/server/unread-data-closed-trigger-rst.pkt",
	"tcp/inq/client.pkt",
	"tcp/inq/server.pkt",
	"tcp/limited_transmit/limited-transmit-no-sack.pkt",
	"tcp/limited_transmit/limited-transmit-sack.pkt",
	"tcp/md5/md5-only-on-client-ack.pkt",
	"tcp/mss/mss-getsockopt-tcp_maxseg-server.pkt",
	"tcp/mss/mss-setsockopt-tcp_maxseg-client.pkt",
	"tcp/mss/mss-setsockopt-tcp_maxseg-server.pkt",
	"tcp/nagle/https_client.pkt",
	"tcp/nagle/sendmsg_msg_more.pkt",
	"tcp/nagle/sockopt_cork_nodelay.pkt",
	"tcp/notsent_lowat/notsent-lowat-setsockopt.pkt",
	"tcp/notsent_lowat/notsent-lowat-sysctl.pkt",
	"tcp/sack/sack-shift-sacked-2-6-8-3-9-nofack.pkt",
	"tcp/sack/sack-shift-sacked-7-3-4-8-9-fack.pkt",
	"tcp/sack/sack-shift-sacked-7-5-6-8-9-fack.pkt",
	"tcp/sendfile/sendfile-simple.pkt",
	"tcp/shutdown/shutdown-rd-close.pkt",
	"tcp/shutdown/shutdown-rd-wr-close.pkt",
	"tcp/shutdown/shutdown-rdwr-close.pkt",
	"tcp/shutdown/shutdown-wr-close.pkt",
	"tcp/slow_start/slow-start-ack-per-1pkt.pkt",
	"tcp/slow_start/slow-start-ack-per-2pkt-send-5pkt.pkt",
	"tcp/slow_start/slow-start-ack-per-2pkt-send-6pkt.pkt",
	"tcp/slow_start/slow-start-ack-per-2pkt.pkt",
	"tcp/slow_start/slow-start-ack-per-4pkt.pkt",
	"tcp/slow_start/slow-start-after-idle.pkt",
	"tcp/slow_start/slow-start-after-win-update.pkt",
	"tcp/slow_start/slow-start-app-limited-9-packets-out.pkt",
	"tcp/slow_start/slow-start-app-limited.pkt",
	"tcp/splice/tcp_splice_loop_test.pkt",
	"tcp/syscall_bad_arg/fastopen-invalid-buf-ptr.pkt",
	"tcp/syscall_bad_arg/sendmsg-empty-iov.pkt",
	"tcp/syscall_bad_arg/syscall-invalid-buf-ptr.pkt",
	"tcp/tcp_info/tcp-info-last_data_recv.pkt",
	"tcp/tcp_info/tcp-info-rwnd-limited.pkt",
	"tcp/timestamping/client-only-last-byte.pkt",
	"tcp/timestamping/partial.pkt",
	"tcp/timestamping/server.pkt",
	"tcp/ts_recent/fin_tsval.pkt",
	"tcp/ts_recent/reset_tsval.pkt",
	"tcp/user_timeout/user-timeout-probe.pkt",
	"tcp/user_timeout/user_timeout.pkt",
	"tcp/validate/validate-established-no-flags.pkt",
	"tcp/zerocopy/basic.pkt",
	"tcp/zerocopy/batch.pkt",
	"tcp/zerocopy/client.pkt",
	"tcp/zerocopy/closed.pkt",
	"tcp/zerocopy/epoll_edge.pkt",
	"tcp/zerocopy/epoll_exclusive.pkt",
	"tcp/zerocopy/epoll_oneshot.pkt",
	"tcp/zerocopy/fastopen-server.pkt",
	"tcp/zerocopy/maxfrags.pkt",
	"tcp/zerocopy/small.pkt",
}

// TestE2ECompareCaptures checks the comparison itself on stored captures
// (no root needed): a capture matches itself, the seed's IPv6 capture of
// the same script matches its IPv4 one (addresses are not compared), and
// another connection does not.
func TestE2ECompareCaptures(t *testing.T) {
	seed := "../../../shared/seed/"
	other := "../../../shared/captures/local/http_get_v4_srvside_eth.pcap"
	for _, p := range []string{seed + "catch.pcap", seed + "catch-ipv6.pcap", other} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("stored captures are not here: %v", err)
		}
	}
	cases := []struct {
		a, b  string
		match bool
	}{
		{seed + "catch.pcap", seed + "catch.pcap", true},
		{seed + "catch.pcap", seed + "catch-ipv6.pcap", true},
		{seed + "catch.pcap", other, false},
	}
	for _, c := range cases {
		diff, err := compareCaptures(c.a, c.b)
		if err != nil {
			t.Fatal(err)
		}
		if (diff == "") != c.match {
			t.Errorf("compare %s %s: %q, want match=%v", c.a, c.b, diff, c.match)
		}
	}
}

// TestE2EVerifySeedCaptures runs `pcap2pkt verify` on the seed's captures
// exactly as a user would (no flags, so the default tolerance): each
// connection must pass. A second attempt absorbs one timing miss on a
// loaded machine.
func TestE2EVerifySeedCaptures(t *testing.T) {
	requireReplay(t)
	seed := "../../../shared/seed/"
	if _, err := os.Stat(seed + "catch.pcap"); err != nil {
		t.Skipf("the seed is not here: %v", err)
	}
	bin := buildCLI(t)
	for _, name := range []string{"catch.pcap", "catch-ipv6.pcap"} {
		var why string
		for range 2 {
			code, out, errs := execCLI(t, bin, "verify", seed+name)
			if code == 0 && strings.Contains(out, "  pass  ") && !strings.Contains(out, "skipped") {
				why = ""
				break
			}
			why = fmt.Sprintf("pcap2pkt verify %s: exit %d\n%s%s", name, code, out, errs)
		}
		if why != "" {
			t.Error(why)
		}
	}
}

// upstreamCC is the congestion control of the upstream scripts' runs: their
// defaults.sh sets cubic; a synthesised script must ask for it too, since
// its namespace's default is the host's.
var upstreamCC = []string{"--congestion-control", "cubic"}

// allowCubic adds cubic to the host's allowed congestion control algorithms
// for the test, as the conformance test in replay does: the upstream
// defaults.sh asks for cubic, and a new namespace can only pick an allowed
// algorithm (this kind of machine allows "reno bbr"). The list is restored
// when the test ends. The kernel-test lock (TestMain) keeps replay's tests,
// which change the same setting, from running meanwhile.
func allowCubic(t *testing.T) {
	was, added, err := replaytest.AllowCubic()
	if err != nil {
		t.Logf("cannot add cubic to net.ipv4.tcp_allowed_congestion_control: %v; scripts that set cubic are not counted", err)
		return
	}
	if !added {
		return
	}
	t.Logf("host sysctl net.ipv4.tcp_allowed_congestion_control=%q for the test (was %q)", strings.Join(was, " ")+" cubic", strings.Join(was, " "))
	t.Cleanup(func() {
		if err := replaytest.RestoreAllowed(was); err != nil {
			t.Errorf("restoring net.ipv4.tcp_allowed_congestion_control: %v", err)
		}
	})
}
