package replay

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// describe is a plan in a few words: each command taken and the rest.
func (p shellPlan) describe() string {
	var parts []string
	for _, c := range p.cmds {
		parts = append(parts, describeCmd(c))
	}
	if p.rest != "" {
		parts = append(parts, "rest "+strings.TrimLeft(p.rest, "\n"))
	}
	return strings.Join(parts, " | ")
}

func describeCmd(c *shellCmd) string {
	var s string
	switch {
	case c.sysctl != nil:
		s = "sysctl"
		if c.sysctl.quiet {
			s += " -q"
		}
		if c.sysctl.ignoreMissing {
			s += " -e"
		}
		for _, kv := range c.sysctl.sets {
			s += " " + kv.key + "=" + kv.value
		}
	case c.flush:
		s = "flush"
	case c.qdisc != "":
		s = "pfifo " + c.qdisc
	default:
		var in []string
		for _, sc := range c.script {
			in = append(in, describeCmd(sc))
		}
		s = "script(" + strings.Join(in, "; ") + ")"
	}
	for _, r := range c.redirs {
		if r.dup == 0 {
			s += " " + string(rune('0'+r.fd)) + ">null"
		} else {
			s += " " + string(rune('0'+r.fd)) + ">&" + string(rune('0'+r.dup))
		}
	}
	return s
}

// requireShellTools skips unless the programs the subset covers are on
// PATH: a command whose program is missing goes to the shell.
func requireShellTools(t *testing.T) {
	t.Helper()
	for _, p := range []string{"sysctl", "ip", "tc"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s is not on PATH", p)
		}
	}
}

func TestPlanShell(t *testing.T) {
	requireShellTools(t)
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("ok.sh", "#!/bin/bash\n# a comment\nsysctl -q net.ipv4.tcp_sack=1 # trailing\n\nip tcp_metrics flush all > /dev/null 2>&1\n", 0o755)
	write("dash.sh", "#!/bin/sh\nsysctl -q \\\n  net.ipv4.tcp_dsack=1; tc qdisc add dev tun0 root pfifo\n", 0o755)
	write("other.sh", "#!/bin/bash\nsysctl -q net.ipv4.tcp_sack=1\necho hi\n", 0o755)
	write("python.sh", "#!/usr/bin/env python3\nprint(1)\n", 0o755)
	write("noexec.sh", "#!/bin/sh\nsysctl -q net.ipv4.tcp_sack=1\n", 0o644)
	write("nested.sh", "#!/bin/sh\n./ok.sh\n./dash.sh 2>/dev/null\n", 0o755)
	for _, tc := range []struct{ text, want string }{
		{"sysctl -q net.ipv4.tcp_sack=1", "sysctl -q net.ipv4.tcp_sack=1"},
		{`sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"`, "sysctl -q net.ipv4.tcp_rmem=4096 540000 15728640"},
		{`sysctl -qe 'net.ipv4.tcp_wmem=4096  '$((256*1024))" $(( (1+2)*-3 % 4 ))"`, "sysctl -q -e net.ipv4.tcp_wmem=4096  262144 -1"},
		{"sysctl -w net/ipv4/tcp_sack=1 net.ipv4.tcp_nonexistent=2", "sysctl net/ipv4/tcp_sack=1 net.ipv4.tcp_nonexistent=2"},
		{"sysctl -q net.ipv4.tcp_sack=1 2>&1 >/dev/null", "sysctl -q net.ipv4.tcp_sack=1 2>&1 1>null"},
		{"tc qdisc add dev tun0 root pfifo\n\tip tcp_metrics flush all>>/dev/null", "pfifo tun0 | flush 1>null"},
		{"./ok.sh", "script(sysctl -q net.ipv4.tcp_sack=1; flush 1>null 2>&1)"},
		{"./nested.sh >/dev/null", "script(script(sysctl -q net.ipv4.tcp_sack=1; flush 1>null 2>&1); script(sysctl -q net.ipv4.tcp_dsack=1; pfifo tun0) 2>null) 1>null"},
		// The rest goes to the shell, with the lines before it.
		{"./ok.sh\n ./python.sh a=1", "script(sysctl -q net.ipv4.tcp_sack=1; flush 1>null 2>&1) | rest ./python.sh a=1"},
		{"sysctl -q net.ipv4.tcp_sack=1; echo $((1+1))", "sysctl -q net.ipv4.tcp_sack=1 | rest echo $((1+1))"},
		{"./other.sh", "rest ./other.sh"},
		{"./noexec.sh", "rest ./noexec.sh"},
		{"sysctl -q net.ipv4.tcp_sack=1\ntrue\necho $?", "rest sysctl -q net.ipv4.tcp_sack=1\ntrue\necho $?"},
		// Not in the subset.
		{"sysctl net.ipv4.tcp_sack", "rest sysctl net.ipv4.tcp_sack"},
		{"sysctl -n net.ipv4.tcp_sack=1", "rest sysctl -n net.ipv4.tcp_sack=1"},
		{"sysctl net.ipv4.tcp_sack=1 -q", "rest sysctl net.ipv4.tcp_sack=1 -q"},
		{"sysctl -q net.ipv4.tcp_sack=$X", "rest sysctl -q net.ipv4.tcp_sack=$X"},
		{"sysctl -q net.ipv4.tcp_sack=`echo 1`", "rest sysctl -q net.ipv4.tcp_sack=`echo 1`"},
		{"sysctl -q net.ipv4.tcp_sack=$((010))", "rest sysctl -q net.ipv4.tcp_sack=$((010))"},
		{"sysctl -q net.ipv4.tcp_sack=$((1/0))", "rest sysctl -q net.ipv4.tcp_sack=$((1/0))"},
		{"sysctl -q net.ipv4.tcp_sack=$((x+1))", "rest sysctl -q net.ipv4.tcp_sack=$((x+1))"},
		{`sysctl -q "net.ipv4.tcp_sack= 1"`, `rest sysctl -q "net.ipv4.tcp_sack= 1"`},
		{"sysctl -q net.ipv4.tcp_sack=", "rest sysctl -q net.ipv4.tcp_sack="},
		{"sysctl -q net.ipv4/tcp_sack=1", "rest sysctl -q net.ipv4/tcp_sack=1"},
		{"sysctl -q net.ipv4.tcp_available_congestion_control=reno", "rest sysctl -q net.ipv4.tcp_available_congestion_control=reno"},
		{"sysctl -q net.ipv4=1", "rest sysctl -q net.ipv4=1"},
		{"sysctl -q net.ipv4.tcp_sack=1 | cat", "rest sysctl -q net.ipv4.tcp_sack=1 | cat"},
		{"sysctl -q net.ipv4.tcp_sack=1 && true", "rest sysctl -q net.ipv4.tcp_sack=1 && true"},
		{"sysctl -q net.ipv4.tcp_sack=1 &> /dev/null", "rest sysctl -q net.ipv4.tcp_sack=1 &> /dev/null"},
		{"sysctl -q net.ipv4.tcp_sack=1 > /tmp/x", "rest sysctl -q net.ipv4.tcp_sack=1 > /tmp/x"},
		{"sysctl -q net.ipv4.tcp_sack=1 < /dev/null", "rest sysctl -q net.ipv4.tcp_sack=1 < /dev/null"},
		{"sysctl -q net.ipv4.tcp_sack=1 3>/dev/null", "rest sysctl -q net.ipv4.tcp_sack=1 3>/dev/null"},
		{"sysctl -q net.ipv4.tcp_sack=1 >&3", "rest sysctl -q net.ipv4.tcp_sack=1 >&3"},
		{"sysctl -q net.ipv4.tcp_sack=[1]", "rest sysctl -q net.ipv4.tcp_sack=[1]"},
		{"X=1 sysctl -q net.ipv4.tcp_sack=1", "rest X=1 sysctl -q net.ipv4.tcp_sack=1"},
		{"; sysctl -q net.ipv4.tcp_sack=1", "rest ; sysctl -q net.ipv4.tcp_sack=1"},
		{"tc qdisc add dev tun0 root fq", "rest tc qdisc add dev tun0 root fq"},
		{"tc qdisc replace dev tun0 root pfifo", "rest tc qdisc replace dev tun0 root pfifo"},
		{"ip tcp_metrics flush", "rest ip tcp_metrics flush"},
		{"sysctl -q 'net.ipv4.tcp_sack=1", "rest sysctl -q 'net.ipv4.tcp_sack=1"},
		{"", ""},
		{"# only a comment\n", ""},
	} {
		if got := planShell(tc.text, dir).describe(); got != tc.want {
			t.Errorf("planShell(%q):\n got %s\nwant %s", tc.text, got, tc.want)
		}
	}
}

// TestPlanShellDefaults: upstream's defaults.sh is run by pcap2pkt whole.
func TestPlanShellDefaults(t *testing.T) {
	requireShellTools(t)
	dir := filepath.Join(conformanceRoot, "tcp", "eor")
	if _, err := os.Stat(filepath.Join(conformanceRoot, "common", "defaults.sh")); err != nil {
		t.Skipf("skipping: no conformance corpus: %v", err)
	}
	p := planShell("../../common/defaults.sh", dir)
	if p.rest != "" || len(p.cmds) != 1 || len(p.cmds[0].script) < 20 {
		t.Fatalf("defaults.sh is not run whole by pcap2pkt: %s", p.describe())
	}
}

// TestPlanShellRest: the shell's part keeps its line numbers.
func TestPlanShellRest(t *testing.T) {
	requireShellTools(t)
	p := planShell("sysctl -q net.ipv4.tcp_sack=1\n# two\necho $LINENO", t.TempDir())
	if len(p.cmds) != 1 || p.rest != "\n\necho $LINENO" {
		t.Fatalf("got %d commands and rest %q", len(p.cmds), p.rest)
	}
}

func FuzzPlanShell(f *testing.F) {
	for _, s := range []string{"sysctl -q a.b=\"1 $((2*3))\" 2>&1 >/dev/null; ip tcp_metrics flush all\n# c", "tc qdisc add dev x root pfifo \\\n", "$((((1)))", "'\"`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p := planShell(text, "/nonexistent")
		if p.rest != "" && !strings.HasSuffix(text, strings.TrimLeft(p.rest, "\n")) {
			t.Fatalf("rest %q is not the end of %q", p.rest, text)
		}
	})
}

func TestSimpleCommand(t *testing.T) {
	for _, tc := range []struct {
		text string
		want string // words joined by |, "" when not simple
	}{
		{"python3 /tmp/code_1", "python3|/tmp/code_1"},
		{"  python3 -u 'a b'  /tmp/code_1\n", "python3|-u|a b|/tmp/code_1"},
		{"/usr/bin/python3 x;", "/usr/bin/python3|x"},
		{"python3 x > /dev/null", ""},
		{"python3 x; echo y", ""},
		{"python3 x | cat", ""},
		{"python3 $HOME/x", ""},
		{"python3 x # c", ""},
		{"PYTHONPATH=/x python3 x", ""},
		{"python3 *.py", ""},
		{"", ""},
	} {
		words, ok := simpleCommand(tc.text)
		got := ""
		if ok {
			got = strings.Join(words, "|")
		}
		if got != tc.want {
			t.Errorf("simpleCommand(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}
