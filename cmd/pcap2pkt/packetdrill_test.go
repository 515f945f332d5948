package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestPacketdrillArgs(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
		err  string
	}{
		{in: []string{"t.pkt"}, want: []string{"replay", "t.pkt"}},
		{in: []string{"--ip_version=ipv6", "-D", "A=1", "-DB=2", "t.pkt", "-v"},
			want: []string{"replay", "--ip_version=ipv6", "-D", "A=1", "-D", "B=2", "-v", "t.pkt"}},
		{in: []string{"--tolerance_usecs", "10000", "--send_omit_free", "t.pkt"},
			want: []string{"replay", "--tolerance_usecs=10000", "--send_omit_free", "t.pkt"}},
		{in: []string{"--ip_v=ipv4", "--def", "X=y", "-vv", "--", "-odd.pkt"},
			want: []string{"replay", "--ip_version=ipv4", "-D", "X=y", "-v", "-v", "-odd.pkt"}},
		{in: []string{"--tol=1", "t.pkt"}, err: "ambiguous"},
		{in: []string{"--bogus", "t.pkt"}, err: "unrecognized option '--bogus'"},
		{in: []string{"--dry_run=1", "t.pkt"}, err: "doesn't allow an argument"},
		{in: []string{"t.pkt", "--mtu"}, err: "requires an argument"},
		{in: []string{"-x", "t.pkt"}, err: "invalid option -- 'x'"},
		{in: []string{"-v"}, err: "no script given"},
	}
	for _, c := range cases {
		got, err := packetdrillArgs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestPacketdrillName checks that the binary answers to packetdrill's name
// and command line: a usage error there is reported in packetdrill's words.
func TestPacketdrillName(t *testing.T) {
	var out, errw strings.Builder
	code := run([]string{"/usr/local/bin/packetdrill", "--bogus", "t.pkt"}, strings.NewReader(""), &out, &errw)
	if code != exitInput || !strings.Contains(errw.String(), "packetdrill: unrecognized option '--bogus'") {
		t.Errorf("exit %d, stderr %q", code, errw.String())
	}
	bad := writeTemp(t, "bad.pkt", "0 socket(..., SOCK_STREAM = 3\n")
	code, _, errs := runCLI(t, "packetdrill", "--ip_version=ipv4", bad)
	if code != exitInput || !strings.Contains(errs, "bad.pkt:1:") {
		t.Errorf("pcap2pkt packetdrill with a bad script: exit %d, stderr %q", code, errs)
	}
}
