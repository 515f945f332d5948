package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/capture"
)

const seedCapture = "../../../shared/seed/catch.pcap"

func needShared(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared test data not available: %v", err)
	}
}

func TestSynthSeed(t *testing.T) {
	needShared(t, seedCapture)
	code, out, errs := runCLI(t, seedCapture)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"--pcap2pkt=1\n",
		"+0 < S 0:0(0) win 4000 <mss 1000>\n",
		"+0 > S. 0:0(0) ack 1 <mss 1460>\n", // the handshake's options are the kernel's decision
		"accept(3, ..., ...) = 4\n",
		"write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n",
		"close(4) = 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("script lacks %q:\n%s", want, out)
		}
	}
	// In packetdrill's own language the script is the article's.
	code, out, errs = runCLI(t, "--exact", seedCapture)
	if code != exitOK {
		t.Fatalf("--exact: exit %d, stderr %q", code, errs)
	}
	if strings.Contains(out, "--pcap2pkt") || !strings.Contains(out, "+0 > S. 0:0(0) ack 1 <...>\n") {
		t.Errorf("--exact script is not packetdrill's language:\n%s", out)
	}
}

func TestSynthOutputs(t *testing.T) {
	needShared(t, seedCapture)
	dir := t.TempDir()
	file := filepath.Join(dir, "seed.pkt")
	if code, out, errs := runCLI(t, "-o", file, seedCapture); code != exitOK || out != "" {
		t.Fatalf("-o FILE: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	_, want, _ := runCLI(t, seedCapture)
	if got, _ := os.ReadFile(file); string(got) != want {
		t.Errorf("-o FILE wrote something else than stdout would show")
	}

	outDir := filepath.Join(dir, "all") + "/"
	if code, _, errs := runCLI(t, "-o", outDir, seedCapture); code != exitOK {
		t.Fatalf("-o DIR/: exit %d, stderr %q", code, errs)
	}
	names, _ := filepath.Glob(filepath.Join(outDir, "*"))
	if len(names) != 2 {
		t.Errorf("-o DIR/ wrote %v, want one script and index.tsv", names)
	}
}

func TestSynthBadInput(t *testing.T) {
	needShared(t, seedCapture)
	data, err := os.ReadFile(seedCapture)
	if err != nil {
		t.Fatal(err)
	}
	truncated := writeTemp(t, "cut.pcap", string(data[:len(data)-30]))
	notPcap := writeTemp(t, "text.pcap", "this is not a capture\n")
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{"missing", []string{filepath.Join(t.TempDir(), "none.pcap")}, exitInput, "none.pcap: no such file", ""},
		{"not a capture", []string{notPcap}, exitInput, "text.pcap", ""},
		{"truncated", []string{truncated}, exitDamaged, "cut.pcap: packet 10", "socket("},
		{"no such flow", []string{"--flow", "7", seedCapture}, exitInput, "no flow 7", ""},
		{"bad --local", []string{"--local", "nonsense", seedCapture}, exitInput, "--local", ""},
		{"flows truncated", []string{"flows", truncated}, exitDamaged, "packet 10", "192.0.2.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(errs, c.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, c.code, errs, c.stderr)
			}
			if c.stdout == "" && out != "" || !strings.Contains(out, c.stdout) {
				t.Errorf("stdout %q, want it to contain %q", out, c.stdout)
			}
		})
	}
}

func TestFlowsSeed(t *testing.T) {
	needShared(t, seedCapture)
	code, out, errs := runCLI(t, "flows", seedCapture)
	if code != exitOK || !strings.Contains(out, "192.0.2.1") || !strings.Contains(out, ":8080") {
		t.Fatalf("flows: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden holds the README's first command: the script synthesised from
// the embedded example capture.
func TestGolden(t *testing.T) {
	code, out, errs := runCLI(t, "../../testdata/article.pcap")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	golden := "../../testdata/article.golden.pkt"
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s:\n%s", golden, unifiedDiff(golden, want, []byte(out)))
	}
}

// TestGuessedLocalSide: on a capture taken on one end of a veth pair,
// nothing shows where it was taken: the side is a guess, and flows, the
// script header and a warning on stderr say so, naming --local. With
// --local nothing is guessed.
func TestGuessedLocalSide(t *testing.T) {
	capFile := "../../../shared/captures/local/zero_window_probe_cliside_eth.pcap"
	needShared(t, capFile)
	const warning = "warning: flow 1: the local side (the kernel under test) is guessed to be 10.77.0.2:9004, the server"
	code, out, errs := runCLI(t, "flows", capFile)
	if code != exitOK || !strings.Contains(out, "guessed: it received the SYN") || !strings.Contains(errs, warning) || !strings.Contains(errs, "--local 10.77.0.1") {
		t.Errorf("flows: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = runCLI(t, capFile)
	if code != exitOK || !strings.Contains(out, "the server, GUESSED (it received the SYN)") || !strings.Contains(errs, warning) {
		t.Errorf("synthesis: exit %d, stderr %q, header:\n%s", code, errs, out[:min(len(out), 600)])
	}
	code, out, errs = runCLI(t, "--local", "10.77.0.1", capFile)
	if code != exitOK || strings.Contains(out, "GUESSED") || errs != "" || !strings.Contains(out, "chosen because: --local 10.77.0.1") {
		t.Errorf("--local: exit %d, stderr %q", code, errs)
	}
}

// TestFlowsAreWiresharkStreams: flow N of 'pcap2pkt flows' is Wireshark's
// tcp.stream N-1 on every shared capture, as flows says.
func TestFlowsAreWiresharkStreams(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("no tshark here")
	}
	files, _ := filepath.Glob("../../../shared/captures/*/*.pcap*")
	if len(files) == 0 {
		t.Skip("shared captures not available")
	}
	norm := func(a, b string) string {
		a, b = strings.Trim(a, "[]"), strings.Trim(b, "[]")
		if a > b {
			a, b = b, a
		}
		return a + " " + b
	}
	for _, f := range files {
		out, err := exec.Command("tshark", "-r", f, "-Y", "tcp", "-T", "fields", "-E", "separator=/t",
			"-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport").Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", f, err)
		}
		want := map[int]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			x := strings.Split(l, "\t")
			n, err := strconv.Atoi(x[0])
			if err != nil || len(x) < 7 {
				continue
			}
			if _, ok := want[n]; !ok {
				want[n] = norm(net.JoinHostPort(x[1]+x[2], x[3]), net.JoinHostPort(x[4]+x[5], x[6]))
			}
		}
		code, js, errs := runCLI(t, "flows", "--format", "json", f)
		if code != exitOK {
			t.Errorf("%s: flows exit %d, %s", f, code, errs)
			continue
		}
		var rows []capture.FlowRow
		if err := json.Unmarshal([]byte(js), &rows); err != nil {
			t.Fatal(err)
		}
		got := map[int]string{}
		for _, r := range rows {
			got[r.TCPStream] = norm(r.Local, r.Remote)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: tcp.stream -> endpoints: ours %v, tshark %v", filepath.Base(f), got, want)
		}
	}
}

// TestNoTCPSaysWhatWasNotDecoded: a capture of a link type not decoded is
// reported with its packet count and link type, not as empty.
func TestNoTCPSaysWhatWasNotDecoded(t *testing.T) {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 129) // ARCNET_LINUX
	rec := append([]byte{1, 2, 0, 0, 0x45}, make([]byte, 39)...)
	for i := 0; i < 412; i++ {
		for _, v := range []uint32{1, uint32(i), uint32(len(rec)), uint32(len(rec))} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		b = append(b, rec...)
	}
	p := writeTemp(t, "arcnet.pcap", string(b))
	for _, args := range [][]string{{p}, {"flows", p}} {
		code, _, errs := runCLI(t, args...)
		if code != exitInput || !strings.Contains(errs, "no TCP connection in the capture: 412 packets in link type ARCNET_LINUX (129) not decoded") {
			t.Errorf("%s: exit %d, stderr %q", args, code, errs)
		}
	}
}
