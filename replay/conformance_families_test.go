package replay

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// familyScripts are the corpus scripts whose verdict depends on the family:
// ICMP messages (the ICMPv6 names, and CODE, defined only for IPv4
// families), the IPv6 header's payload length and flow label, socket
// addresses of AF_INET6 sockets carrying IPv4 (accept, connect, MD5 keys),
// control messages at CMSG_LEVEL_IP, --mtu, and scripts that hard-code
// addresses. Each takes about half a second, so every family runs them by
// default, while the full families other than ipv4 only run on request.
var familyScripts = []string{
	"tcp/blocking/blocking-accept.pkt",
	"tcp/fastopen/client/simultaneous-fast-open.pkt",
	"tcp/fastopen/client/syn-data-icmp-unreach-frag-needed.pkt",
	"tcp/fastopen/client/syn-data-icmp-unreach-frag-needed-with-seq-ipv6.pkt",
	"tcp/fastopen/server/icmp-baseline.pkt",
	"tcp/fastopen/server/opt34/basic-rw.pkt",
	"tcp/fastopen/server/opt34/icmp-before-accept.pkt",
	"tcp/md5/md5-only-on-client-ack.pkt",
	"tcp/mtu_probe/basic-v4.pkt",
	"tcp/mtu_probe/basic-v6.pkt",
	"tcp/nagle/https_client.pkt",
	"tcp/timestamping/server.pkt",
	"tcp/zerocopy/basic.pkt",
}

// TestConformanceFamilies runs familyScripts for ipv6 and ipv4-mapped-ipv6
// (ipv4 runs them within TestConformance) and checks both directions of
// parity: a script in the family's list of passes must pass, and one the
// reference fails for a reason other than timing must fail (an accidental
// pass would mean a family's packets or addresses are built wrong).
func TestConformanceFamilies(t *testing.T) {
	conformanceParent(t)
	root := copyCorpus(t)
	defer ensureCubicAllowed(t)()
	for _, family := range []string{"ipv6", "ipv4-mapped-ipv6"} {
		t.Run(family, func(t *testing.T) {
			verdicts := readVerdicts(t, family)
			expected := readExpected(t, family)
			for _, rel := range familyScripts {
				ref, ok := verdicts[rel]
				if !ok {
					continue
				}
				timeout := time.Duration(max(3*ref.wall, 30) * float64(time.Second))
				pass, out := runConformanceChild(t, family, filepath.Join(root, rel), timeout)
				for try := 0; !pass && expected[rel] && try < 2; try++ {
					pass, out = runConformanceChild(t, family, filepath.Join(root, rel), timeout)
				}
				switch {
				case expected[rel] && !pass:
					t.Errorf("%s fails (listed in %s):\n%s", rel, expectedPath(family), lastLines(out, 15))
				case !ref.pass && pass && !timingReason(ref.reason):
					t.Errorf("%s passes, but the reference fails it here (%s)", rel, ref.reason)
				default:
					t.Logf("%s: %s (reference: %s)", rel, verdictWord(pass), strings.TrimSpace(verdictWord(ref.pass)+" "+ref.reason))
				}
			}
		})
	}
}

// timingReason reports whether the reference's failure class is about
// timing on the machine, so that either verdict is acceptable here: timer
// or scheduling jitter, flaky runs, and tcp_info assertions (the values
// asserted, such as tcpi_busy_time, are times counted in 4 ms jiffies).
func timingReason(reason string) bool {
	return strings.Contains(reason, "timing") || strings.Contains(reason, "flaky") ||
		strings.HasPrefix(reason, "assert:tcp_info")
}

func verdictWord(pass bool) string {
	if pass {
		return "pass"
	}
	return "fail"
}
