package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/replay"
)

// TestMutationReport: the matrix and the JSON of verify --mutate, from
// outcomes made up for two connections.
func TestMutationReport(t *testing.T) {
	muts, err := replay.LookupMutations("cc-cubic,sack-off,timestamps-off")
	if err != nil {
		t.Fatal(err)
	}
	flow := func(n int) *capture.Flow {
		return &capture.Flow{Index: n, A: netip.MustParseAddrPort("10.0.0.1:40000"), B: netip.MustParseAddrPort("10.0.0.2:80")}
	}
	verdicts := []verdict{
		{flow: flow(1), result: "pass", mutations: []mutationOutcome{
			{Mutation: "cc-cubic", Result: mutUnavailable, Detail: "cubic is not in this host's net.ipv4.tcp_allowed_congestion_control"},
			{Mutation: "sack-off", Result: mutDetected, Detail: "f.pkt:5: expected <mss *,sackOK,...>", Note: "replaces the script's own net.ipv4.tcp_sack=2"},
			{Mutation: "timestamps-off", Result: mutMissed},
		}},
		{flow: flow(2), result: "FAIL", detail: "f.pkt:9: expected ack 3, got ack 2", mutations: []mutationOutcome{
			{Mutation: "cc-cubic", Result: mutNotRun}, {Mutation: "sack-off", Result: mutNotRun}, {Mutation: "timestamps-off", Result: mutNotRun},
		}},
	}
	var text bytes.Buffer
	printMutations(&text, verdicts, muts)
	for _, want := range []string{
		"CHANGE          SETTING                                FLOW 1         FLOW 2",
		"sack-off        net.ipv4.tcp_sack=0                    detected       -",
		"timestamps-off  net.ipv4.tcp_timestamps=0              missed         -",
		"cc-cubic        net.ipv4.tcp_congestion_control=cubic  not available  -",
		"flow 1: detects 1 of 2 changes (1 not available)",
		"flow 2: not measured: it does not verify unchanged",
		"cc-cubic: not available: cubic is not in",
		"sack-off: replaces the script's own net.ipv4.tcp_sack=2",
		"flow 1, sack-off: f.pkt:5: expected",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := writeMutationsJSON(&js, "x.pcap", verdicts, muts, time.Second); err != nil {
		t.Fatal(err)
	}
	var back mutationsJSON
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Mutations) != 3 || len(back.Connections) != 2 || back.Connections[0].Mutations[1].Result != mutDetected ||
		back.Connections[1].Verdict != "fail" || back.Counts[mutNotRun] != 3 || back.Counts[mutDetected] != 1 {
		t.Errorf("JSON report:\n%s", js.String())
	}
}

func TestMutateInputErrors(t *testing.T) {
	needShared(t, seedCapture)
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"verify", "--mutations", "sack-off,nope", seedCapture}, `no mutation "nope"`},
		{[]string{"verify", "--mutate", "--format", "tap", seedCapture}, "--mutate reports as text or json"},
		{[]string{"replay", "--mutation", "nope", "x.pkt"}, `no mutation "nope"`},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, c.args...)
		if code != exitInput || !strings.Contains(errs, c.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errs, exitInput, c.stderr)
		}
	}
}
