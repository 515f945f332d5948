package main

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
	"github.com/pcap2pkt/pcap2pkt/synth"
	"github.com/urfave/cli/v2"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// A connection drawn as TCP engineers read it (tcptrace's time-sequence
// graph, Wireshark's Stevens graph): the data one side sends, as sequence
// numbers relative to its ISN against seconds since the first packet, with
// the peer's ACK line and the window it advertised above it, and
// retransmissions marked.

// seqGraph is what one connection's graph shows of one capture of it.
type seqGraph struct {
	data, retrans plotter.XYs // segment ends (time, relative sequence number)
	acks, window  plotter.XYs // the peer's ACK line and ACK + advertised window
	sender        string      // "client" or "server"
}

// diffMark is where the first difference of a failed replay is: the time
// and sequence number of the script packet the report names, and the line.
type diffMark struct {
	t    float64
	seq  float64
	line int
	text string
}

// graphOf builds the graph of the data that side role ("client", the SYN's
// sender, or "server") sends in f.
func graphOf(f *capture.Flow, role string) seqGraph {
	s := capture.SideB
	if role == "client" {
		s = capture.SideA
	}
	g := seqGraph{sender: role}
	if f.Packets.Len() == 0 {
		return g
	}
	isn := f.ISN[s]
	if !f.HasISN[s] {
		isn = firstSeq(f, s) - 1
	}
	// The window scale applies when both SYNs offered one; the peer's own
	// value scales the windows it advertises.
	scale := uint(0)
	if ws, ok := synWScale(f, s.Other()); ok {
		if _, ok2 := synWScale(f, s); ok2 {
			scale = uint(ws)
		}
	}
	t0 := f.Packets.At(0).Time()
	var high tcpwire.Seq
	seen := false
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		t := p.Time().Sub(t0).Seconds()
		if p.From == s {
			n := p.PayloadLen()
			if p.Flags.Has(tcpwire.FlagSYN) || p.Flags.Has(tcpwire.FlagFIN) {
				n++
			}
			if n == 0 {
				continue
			}
			end := p.Seq.Add(uint32(n))
			pt := plotter.XY{X: t, Y: float64(uint32(end - isn))}
			if seen && !high.LessThan(end) {
				g.retrans = append(g.retrans, pt)
			} else {
				g.data = append(g.data, pt)
				high, seen = end, true
			}
			continue
		}
		if p.Flags.Has(tcpwire.FlagACK) {
			ack := float64(uint32(p.Ack - isn))
			g.acks = append(g.acks, plotter.XY{X: t, Y: ack})
			g.window = append(g.window, plotter.XY{X: t, Y: ack + float64(uint32(p.Window)<<scale)})
		}
	}
	return g
}

func firstSeq(f *capture.Flow, s capture.Side) tcpwire.Seq {
	for i := range f.Packets.Len() {
		if f.Packets.At(i).From == s {
			return f.Packets.At(i).Seq
		}
	}
	return 0
}

func synWScale(f *capture.Flow, s capture.Side) (uint8, bool) {
	for i := range f.Packets.Len() {
		p := f.Packets.At(i)
		if p.From == s && p.Flags.Has(tcpwire.FlagSYN) {
			o := p.Options()
			return o.WScale, o.HasWScale
		}
	}
	return 0, false
}

// dataSender is the role of the side that sent more payload.
func dataSender(f *capture.Flow) string {
	if f.Bytes[capture.SideB] > f.Bytes[capture.SideA] {
		return "server"
	}
	return "client"
}

var (
	reportLine = regexp.MustCompile(`^\S+\.pkt:(\d+):(?:\d+:)? (.*)$`)
	// A packet that differed: "script packet:  0.300658 > . 11:11(0) ack 3".
	scriptPacket = regexp.MustCompile(`script packet:\s+([0-9.]+)\s+[<>]\s+\S+\s+(\d+):\d+\(`)
	// An event off its time: "expected inbound packet at 0.008 s (...)",
	// then "script line: +0 < S 0:0(0) ...".
	expectedAt = regexp.MustCompile(`expected .*? at ([0-9.]+) s\b`)
	scriptSeq  = regexp.MustCompile(`script line:.*?[<>]\s+\S+\s+(\d+):\d+\(`)
)

// firstDifference reads where a failed replay's report says the script and
// the kernel first differed: the script's time for the event, the sequence
// number of its packet (0 for a system call) and the line. ok is false when
// the report gives no time.
func firstDifference(report string) (m diffMark, ok bool) {
	for _, l := range strings.Split(report, "\n") {
		if r := reportLine.FindStringSubmatch(l); r != nil && m.line == 0 {
			m.line, _ = strconv.Atoi(r[1])
			m.text = r[2]
		}
	}
	if s := scriptPacket.FindStringSubmatch(report); s != nil {
		m.t, _ = strconv.ParseFloat(s[1], 64)
		m.seq, _ = strconv.ParseFloat(s[2], 64)
		return m, true
	}
	s := expectedAt.FindStringSubmatch(m.text)
	if s == nil {
		return m, false
	}
	m.t, _ = strconv.ParseFloat(s[1], 64)
	if q := scriptSeq.FindStringSubmatch(report); q != nil {
		m.seq, _ = strconv.ParseFloat(q[1], 64)
	}
	return m, true
}

var (
	capturedColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	replayedColor = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	retransColor  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// drawGraph adds one capture's graph to p in its colour.
func drawGraph(p *plot.Plot, g seqGraph, name string, c color.Color) error {
	if len(g.data) > 0 {
		s, err := plotter.NewScatter(g.data)
		if err != nil {
			return err
		}
		s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = c, vg.Points(1.2), draw.CircleGlyph{}
		p.Add(s)
		p.Legend.Add(name+": "+g.sender+"'s segments (end)", s)
	}
	if len(g.retrans) > 0 {
		s, err := plotter.NewScatter(g.retrans)
		if err != nil {
			return err
		}
		s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = retransColor, vg.Points(2.5), draw.CrossGlyph{}
		p.Add(s)
		p.Legend.Add(name+": retransmissions", s)
	}
	if len(g.acks) > 0 {
		l, err := plotter.NewLine(g.acks)
		if err != nil {
			return err
		}
		l.StepStyle, l.LineStyle.Color, l.LineStyle.Width = plotter.PreStep, c, vg.Points(0.6)
		p.Add(l)
		p.Legend.Add(name+": ACKs", l)
		w, err := plotter.NewLine(g.window)
		if err != nil {
			return err
		}
		w.StepStyle, w.LineStyle.Color, w.LineStyle.Width = plotter.PreStep, c, vg.Points(0.4)
		w.LineStyle.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(w)
		p.Legend.Add(name+": ACK + window", w)
	}
	return nil
}

// writeSeqPlot writes the SVG of a captured connection, with its replay
// overlaid and the first difference marked when given; markX is where on
// the canvas (in points) the mark's line was drawn.
func writeSeqPlot(w io.Writer, title string, captured seqGraph, replayed *seqGraph, mark *diffMark) (markX float64, err error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since the first packet"
	p.Y.Label.Text = captured.sender + "'s sequence number (relative)"
	p.Legend.Top, p.Legend.Left = true, true
	if err := drawGraph(p, captured, "captured", capturedColor); err != nil {
		return 0, err
	}
	if replayed != nil {
		if err := drawGraph(p, *replayed, "replayed", replayedColor); err != nil {
			return 0, err
		}
	}
	if mark != nil {
		top := mark.seq
		for _, set := range []plotter.XYs{captured.data, captured.window} {
			for _, xy := range set {
				top = max(top, xy.Y)
			}
		}
		l, err := plotter.NewLine(plotter.XYs{{X: mark.t, Y: 0}, {X: mark.t, Y: top}})
		if err != nil {
			return 0, err
		}
		l.LineStyle.Color, l.LineStyle.Width = retransColor, vg.Points(1)
		l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(l)
		labels, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    []plotter.XY{{X: mark.t, Y: mark.seq}},
			Labels: []string{fmt.Sprintf("first difference (line %d)", mark.line)},
		})
		if err != nil {
			return 0, err
		}
		p.Add(labels)
		p.Legend.Add(fmt.Sprintf("first difference, line %d: %s", mark.line, mark.text), l)
	}
	c := vgsvg.NewWith(vgsvg.UseWH(10*vg.Inch, 6*vg.Inch), vgsvg.EmbedFonts(false))
	dc := draw.New(c)
	p.Draw(dc)
	if mark != nil {
		data := p.DataCanvas(dc)
		x, _ := p.Transforms(&data)
		markX = x(mark.t).Points()
	}
	_, err = c.WriteTo(w)
	return markX, err
}

// readFlows reads every connection of a capture file.
func readFlows(name string) ([]*capture.Flow, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	flows, _, err := capture.ReadFlows(f, name, capture.FlowOptions{})
	if err != nil && !errors.Is(err, capture.ErrDamaged) {
		return nil, err
	}
	return flows, nil
}

// plotVerdict writes the graph of one verified connection into dir: the
// captured connection, its replay (from the pcap verify recorded) and the
// first difference of a failure.
func plotVerdict(dir, replayPcap string, v verdict) (string, error) {
	role := dataSender(v.flow)
	captured := graphOf(v.flow, role)
	var replayed *seqGraph
	if flows, err := readFlows(replayPcap); err == nil && len(flows) > 0 {
		g := graphOf(flows[0], role)
		replayed = &g
	}
	var mark *diffMark
	if v.result == "FAIL" {
		if m, ok := firstDifference(v.full); ok {
			mark = &m
		}
	}
	name := filepath.Join(dir, strings.TrimSuffix(synth.FileName(v.flow), ".pkt")+".svg")
	var buf bytes.Buffer
	title := fmt.Sprintf("flow %d %s - %s: %s", v.flow.Index, v.flow.LocalEndpoint(), v.flow.RemoteEndpoint(), v.result)
	if _, err := writeSeqPlot(&buf, title, captured, replayed, mark); err != nil {
		return "", err
	}
	return name, writeFileAtomic(name, buf.Bytes())
}

func plotCommand() *cli.Command {
	return &cli.Command{
		Name:      "plot",
		Usage:     "draw each TCP connection of a capture as a time-sequence graph (SVG)",
		ArgsUsage: "CAPTURE",
		Description: `Writes one SVG per connection into DIR (-o, default: the current folder): the
data of the side that sent more, as sequence numbers relative to its ISN against
seconds since the first packet, with the peer's ACK line and ACK + advertised
window (dashed) above it, and retransmissions marked with red crosses, as
tcptrace and Wireshark's Stevens graph draw it. 'pcap2pkt verify --plot DIR'
draws each verified connection with its replay overlaid.

   pcap2pkt plot -o graphs/ catch.pcap`,
		Flags: append(flowFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: ".", Usage: "write the SVG files into `DIR`"},
			flowFlag("draw only the connections FLOW names"),
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf(exitInput, "plot: want one capture (usage: pcap2pkt plot [-o DIR] CAPTURE)")
			}
			name := c.Args().First()
			sel, chosen, err := flowSelection(c)
			if err != nil {
				return err
			}
			in, fo, err := openFlows(c, name)
			if err != nil {
				return err
			}
			defer in.Close()
			flows, stats, rerr := capture.ReadFlows(in, name, fo)
			if rerr != nil && !errors.Is(rerr, capture.ErrDamaged) {
				return captureError(rerr)
			}
			if len(flows) == 0 {
				return withCode(max(exitInput, codeOf(rerr)), noTCP(c, name, &stats))
			}
			dir := c.String("output")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return withCode(exitInput, err)
			}
			n := 0
			for _, f := range flows {
				if chosen && !sel.matches(f) {
					continue
				}
				var buf bytes.Buffer
				title := fmt.Sprintf("flow %d %s - %s", f.Index, f.LocalEndpoint(), f.RemoteEndpoint())
				if _, err := writeSeqPlot(&buf, title, graphOf(f, dataSender(f)), nil, nil); err != nil {
					return err
				}
				out := filepath.Join(dir, strings.TrimSuffix(synth.FileName(f), ".pkt")+".svg")
				if err := writeFileAtomic(out, buf.Bytes()); err != nil {
					return withCode(exitInput, err)
				}
				n++
			}
			if n == 0 {
				return failf(exitInput, "no flow %s: the capture has %d TCP connection(s) (see 'pcap2pkt flows')", sel.text, len(flows))
			}
			fmt.Fprintf(c.App.ErrWriter, "pcap2pkt: wrote %d graph(s) to %s\n", n, dir)
			return captureExit(rerr)
		},
	}
}
