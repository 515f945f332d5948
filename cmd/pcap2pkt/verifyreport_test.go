package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/urfave/cli/v2"
)

// TestVerifyFormats: verify's verdicts in replay's suite formats, a
// skipped connection as a TAP SKIP and a JUnit skipped case.
func TestVerifyFormats(t *testing.T) {
	flow := func(n int) *capture.Flow {
		return &capture.Flow{Index: n, A: netip.MustParseAddrPort("10.0.0.1:40000"), B: netip.MustParseAddrPort("10.0.0.2:80")}
	}
	verdicts := []verdict{
		{flow: flow(1), result: "pass"},
		{flow: flow(2), result: "FAIL", detail: "f.pkt:9: expected ack 3, got ack 2", full: "f.pkt:9: expected ack 3, got ack 2\n"},
		{flow: flow(3), result: "skipped", detail: "the capture starts after its SYN"},
	}
	report := func(format string) (string, int, int) {
		var out bytes.Buffer
		set := flag.NewFlagSet("verify", flag.ContinueOnError)
		set.String("format", format, "")
		app := &cli.App{Writer: &out}
		failed, passed, err := reportVerdicts(cli.NewContext(app, set, nil), "x.pcap", verdicts, nil, 1500*time.Millisecond, 2)
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), failed, passed
	}
	tap, failed, passed := report("tap")
	if failed != 1 || passed != 1 {
		t.Errorf("failed %d, passed %d", failed, passed)
	}
	for _, want := range []string{"1..3\n", "ok 1 - x.pcap flow 1 10.0.0.1:40000-10.0.0.2:80\n", "not ok 2 - x.pcap flow 2",
		"ok 3 - x.pcap flow 3 10.0.0.1:40000-10.0.0.2:80 # SKIP the capture starts after its SYN\n", "# 1 passed, 1 failed, 1 skipped\n"} {
		if !strings.Contains(tap, want) {
			t.Errorf("tap lacks %q:\n%s", want, tap)
		}
	}
	junit, _, _ := report("junit")
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal([]byte(junit), &suite); err != nil || suite.Tests != 3 || suite.Failures != 1 || suite.Cases[2].Skipped == nil {
		t.Errorf("junit: %v %+v\n%s", err, suite, junit)
	}
	if js, _, _ := report("json"); !strings.Contains(js, `"verdict": "skipped"`) {
		t.Errorf("json:\n%s", js)
	}
	if text, _, _ := report("text"); !strings.HasSuffix(text, "3 connection(s): 1 passed, 1 failed, 1 not replayed; 1.5s, 2 at a time\n") {
		t.Errorf("text:\n%s", text)
	}
}
