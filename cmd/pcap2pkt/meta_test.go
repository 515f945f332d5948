package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: --version and 'version' say the Go version and, when the
// toolchain recorded one, the VCS revision of the binary.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pcap2pkt")
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	rev := ""
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision=") {
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, errs := execCLI(t, bin, args...)
		if code != exitOK || !strings.HasPrefix(out, "pcap2pkt version ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, rev) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q (revision %q)", args, code, out, errs, rev)
		}
	}
	t.Logf("revision recorded: %q", rev)
}

// TestCompletion runs the bash completion script as bash would: the words
// typed so far, and what it offers.
func TestCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := buildCLI(t)
	dir := filepath.Dir(bin)
	code, script, _ := execCLI(t, bin, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d", code)
	}
	complete := func(words ...string) string {
		t.Helper()
		var sb strings.Builder
		sb.WriteString(script)
		sb.WriteString("COMP_WORDS=(")
		for _, w := range words {
			sb.WriteString(" '" + w + "'")
		}
		sb.WriteString(")\nCOMP_CWORD=" + string(rune('0'+len(words)-1)) + "\n_pcap2pkt_complete\necho \"${COMPREPLY[*]}\"\n")
		cmd := exec.Command("bash", "-c", sb.String())
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("pcap2pkt", "re"); got != "replay" {
		t.Errorf("pcap2pkt re<TAB> offers %q, want replay", got)
	}
	if got := complete("pcap2pkt", "replay", "--tolerance_u"); got != "--tolerance_usecs" {
		t.Errorf("pcap2pkt replay --tolerance_u<TAB> offers %q", got)
	}
	if got := complete("pcap2pkt", "flows", "--"); !strings.Contains(got, "--local") || strings.Contains(got, "--tolerance_usecs") {
		t.Errorf("pcap2pkt flows --<TAB> offers %q", got)
	}

	for _, sh := range []string{"zsh", "fish"} {
		code, text, errs := execCLI(t, bin, "completion", sh)
		if code != exitOK || !strings.Contains(text, "pcap2pkt") {
			t.Errorf("completion %s: exit %d, stderr %q", sh, code, errs)
			continue
		}
		if _, err := exec.LookPath(sh); err != nil {
			t.Logf("no %s here to check its script's syntax", sh)
			continue
		}
		check := exec.Command(sh, "-n")
		check.Stdin = strings.NewReader(text)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}

// TestManPage: the page is troff with every visible command, and man(1)
// renders it without warnings where it is installed.
func TestManPage(t *testing.T) {
	code, page, errs := runCLI(t, "man")
	if code != exitOK || !strings.Contains(page, ".TH pcap2pkt 1") {
		t.Fatalf("man: exit %d, stderr %q", code, errs)
	}
	for _, c := range newApp(nil, nil, nil).Commands {
		if !strings.Contains(page, ".SH "+c.Name) && !strings.Contains(page, "\n"+c.Name+"\n") && !strings.Contains(page, "# "+c.Name) {
			t.Errorf("the man page lacks the %s command", c.Name)
		}
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Log("no groff here to render the page")
		return
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}
