package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// validSVG parses an SVG document whole and returns its text.
func validSVG(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not valid XML: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, not svg", name, root)
	}
	return string(b)
}

func TestPlotCapture(t *testing.T) {
	capFile := "../../../shared/captures/public/tcpdump__tfo-5c1fa7f9ae91.pcap"
	needShared(t, capFile)
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "plot", "-o", dir, capFile); code != exitOK {
		t.Fatalf("plot: exit %d, stderr %q", code, errs)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	if len(files) != 3 {
		t.Fatalf("plot wrote %v, want one SVG per connection (3)", files)
	}
	for _, f := range files {
		if svg := validSVG(t, f); !strings.Contains(svg, "sequence number (relative)") {
			t.Errorf("%s lacks the axis label", f)
		}
	}
	if code, _, errs := runCLI(t, "plot", "--flow", "9", "-o", dir, capFile); code != exitInput || !strings.Contains(errs, "no flow 9") {
		t.Errorf("--flow 9: exit %d, stderr %q", code, errs)
	}
}

// TestPlotFirstDifference draws a failed verdict: the mark is at the time
// and line of the script packet the report names, and its dashed line is
// drawn where the time axis puts that time.
func TestPlotFirstDifference(t *testing.T) {
	capFile := "../../../shared/captures/local/http_get_v4_srvside_eth.pcap"
	needShared(t, capFile)
	flows, err := readFlows(capFile)
	if err != nil {
		t.Fatal(err)
	}
	report := "flow001.pkt:19: expected ack 3, got ack 2\n" +
		"  script packet:  0.000142 > P. 1:101(100) ack 3\n" +
		"  actual packet:  0.000150 > P. 1:101(100) ack 2 win 509\n"
	m, ok := firstDifference(report)
	if !ok || m.line != 19 || m.t != 0.000142 || m.seq != 1 || m.text != "expected ack 3, got ack 2" {
		t.Fatalf("first difference %+v, %v", m, ok)
	}
	timing := "flow001.pkt:17: timing error: expected inbound packet at 0.008 s (±0.001 ms), happened at 0.009 s: 1 ms late\n" +
		"  script line: +0 < . 1:1(0) ack 1 win 4000\n"
	if m2, ok := firstDifference(timing); !ok || m2.line != 17 || m2.t != 0.008 || m2.seq != 1 {
		t.Errorf("timing error: first difference %+v, %v", m2, ok)
	}
	var buf bytes.Buffer
	x, err := writeSeqPlot(&buf, "flow 1", graphOf(flows[0], "server"), nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	if !strings.Contains(svg, "first difference (line 19)") {
		t.Error("the mark's label is missing")
	}
	// The mark is the one red dashed path: a vertical line at x.
	re := regexp.MustCompile(`<path d="M([0-9.e+-]+),[0-9.e+-]+L([0-9.e+-]+),[0-9.e+-]+" style="[^"]*stroke:#D62728;[^"]*stroke-dasharray`)
	got := re.FindStringSubmatch(svg)
	if got == nil {
		t.Fatalf("no dashed red mark line in the SVG")
	}
	x1, _ := strconv.ParseFloat(got[1], 64)
	x2, _ := strconv.ParseFloat(got[2], 64)
	if math.Abs(x1-x) > 0.01 || math.Abs(x2-x) > 0.01 {
		t.Errorf("mark drawn at x %.3f..%.3f, the time axis puts %.6f s at %.3f", x1, x2, m.t, x)
	}
}
