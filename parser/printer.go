package parser

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// FormatTime prints an event time in canonical form: whole seconds as
// integers, other times with six decimals; "+" for relative times.
func FormatTime(t Time) string {
	switch t.Kind {
	case TimeAny:
		return "*"
	case TimeRelative:
		return "+" + formatSeconds(t.Usecs)
	case TimeAbsoluteRange:
		return formatSeconds(t.Usecs) + "~" + formatSeconds(t.End)
	case TimeRelativeRange:
		return "+" + formatSeconds(t.Usecs) + "~+" + formatSeconds(t.End)
	}
	return formatSeconds(t.Usecs)
}

func formatSeconds(us int64) string {
	sign := ""
	if us < 0 {
		sign = "-"
		us = -us
	}
	if us%1e6 == 0 {
		return sign + strconv.FormatInt(us/1e6, 10)
	}
	return fmt.Sprintf("%s%d.%06d", sign, us/1e6, us%1e6)
}

// FormatPacket prints a packet line without its time, e.g.
// "< S 0:0(0) win 4000 <mss 1000>".
func FormatPacket(p *Packet) string {
	var b strings.Builder
	if p.Dir == Outbound {
		b.WriteString(">")
	} else {
		b.WriteString("<")
	}
	for _, e := range p.Encaps {
		b.WriteString(" ")
		switch e := e.(type) {
		case *EncapIP:
			fmt.Fprintf(&b, "ipv%d", e.Version)
			if e.Info != nil {
				b.WriteString(" " + formatIPInfo(e.Info))
			}
			fmt.Fprintf(&b, " %s > %s:", e.Src, e.Dst)
		case *EncapGRE:
			b.WriteString("gre")
			if e.Header != nil {
				if e.Header.Commas {
					b.WriteString(",")
				}
				b.WriteString(" " + formatGREHeader(e.Header))
			}
			b.WriteString(":")
		case *EncapMPLS:
			b.WriteString("mpls")
			if len(e.Stack) > 0 {
				b.WriteString(" " + formatMPLSStack(e.Stack))
			}
			b.WriteString(":")
		}
	}
	if p.IPInfo != nil {
		b.WriteString(" " + formatIPInfo(p.IPInfo))
	}
	switch {
	case p.UDP != nil:
		b.WriteString(" udp")
		if p.Ports != nil {
			fmt.Fprintf(&b, " %d>%d", p.Ports.Src, p.Ports.Dst)
		}
		fmt.Fprintf(&b, " (%d)", p.UDP.Len)
	case p.ICMP != nil:
		b.WriteString(" " + formatICMP(p.ICMP))
	case p.TCP != nil:
		if p.PSP != nil {
			b.WriteString(" encap psp spi " + FormatExpr(p.PSP.SPI))
		}
		if p.Ports != nil {
			fmt.Fprintf(&b, " %d>%d", p.Ports.Src, p.Ports.Dst)
		}
		b.WriteString(" " + formatTCP(p.TCP))
	}
	return b.String()
}

func formatIPInfo(in *IPInfo) string {
	var parts []string
	switch in.TOS {
	case "":
	case "tos":
		parts = append(parts, fmt.Sprintf("tos %#x", in.TOSValue))
	default:
		parts = append(parts, in.TOS)
	}
	if in.FlowLabel != nil {
		parts = append(parts, fmt.Sprintf("flowlabel %#x", *in.FlowLabel))
	}
	if in.TTL != nil {
		parts = append(parts, fmt.Sprintf("ttl %d", *in.TTL))
	}
	s := strings.Join(parts, ", ")
	if in.Paren {
		return "(" + s + ")"
	}
	return "[" + s + "]"
}

func formatGREHeader(h *GREHeader) string {
	flags := "flags "
	if h.FlagsValue != nil {
		flags += FormatExpr(h.FlagsValue)
	} else {
		flags += "[" + strings.Join(h.FlagNames, ", ") + "]"
	}
	parts := []string{flags, "sum " + FormatExpr(h.Sum), "off " + FormatExpr(h.Off)}
	if h.KeyEquals {
		parts = append(parts, "key="+FormatExpr(h.Key))
	} else {
		parts = append(parts, "key "+FormatExpr(h.Key))
	}
	parts = append(parts, "seq "+FormatExpr(h.Seq))
	if h.Commas {
		return strings.Join(parts, ", ")
	}
	return strings.Join(parts, " ")
}

func formatMPLSStack(stack []MPLSEntry) string {
	parts := make([]string, len(stack))
	for i, e := range stack {
		bottom := ""
		if e.Bottom {
			bottom = "[S], "
		}
		parts[i] = fmt.Sprintf("(label %d, tc %d, %sttl %d)", e.Label, e.TC, bottom, e.TTL)
	}
	return strings.Join(parts, " ")
}

func formatICMP(ic *ICMP) string {
	var b strings.Builder
	b.WriteString("icmp " + ic.Type)
	if ic.Code != "" {
		b.WriteString(" " + ic.Code)
	}
	if ic.MTU != nil {
		fmt.Fprintf(&b, " mtu %d", *ic.MTU)
	}
	if ic.ID != nil {
		fmt.Fprintf(&b, " id %d", *ic.ID)
	}
	if e := ic.Echoed; e != nil {
		switch e.Proto {
		case "udp", "raw":
			fmt.Fprintf(&b, " [%s (%d)]", e.Proto, e.Len)
		default:
			fmt.Fprintf(&b, " [%d:%d(%d)]", e.Seq, int64(e.Seq)+e.Len, e.Len)
		}
	}
	return b.String()
}

func formatTCP(t *TCP) string {
	var b strings.Builder
	flags := t.Flags
	if flags == "" {
		flags = "-"
	}
	fmt.Fprintf(&b, "%s %d:%d(%d)", flags, t.Seq, int64(t.Seq)+int64(t.Len), t.Len)
	if t.Ack != nil {
		fmt.Fprintf(&b, " ack %d", *t.Ack)
	}
	if t.Win != nil {
		fmt.Fprintf(&b, " win %d", *t.Win)
	}
	if t.Urg != nil {
		fmt.Fprintf(&b, " urg %d", *t.Urg)
	}
	if t.Options != nil {
		b.WriteString(" " + FormatTCPOptions(t.Options))
	}
	return b.String()
}

// FormatTCPOptions prints a `<...>` option list as upstream scripts write
// it: "<mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>"; "" for no list.
func FormatTCPOptions(o *TCPOptions) string {
	if o == nil {
		return ""
	}
	if o.Any {
		return "<...>"
	}
	parts := make([]string, len(o.List))
	for i, opt := range o.List {
		parts[i] = formatTCPOption(opt)
	}
	return "<" + strings.Join(parts, ",") + ">"
}

func formatTCPOption(o *TCPOption) string {
	switch o.Kind {
	case OptNOP:
		return "nop"
	case OptEOL:
		return "eol"
	case OptMSS:
		return fmt.Sprintf("mss %d", o.Value)
	case OptWScale:
		return fmt.Sprintf("wscale %d", o.Value)
	case OptSACKOK:
		return "sackOK"
	case OptSACK:
		s := "sack"
		for _, b := range o.SACK {
			s += fmt.Sprintf(" %d:%d", b.Left, b.Right)
		}
		return s
	case OptMD5:
		return "md5 " + o.Cookie
	case OptTimestamp:
		return fmt.Sprintf("TS val %d ecr %d", o.TSVal, o.TSEcr)
	case OptFastOpen, OptFastOpenExp:
		s := "FO"
		if o.Kind == OptFastOpenExp {
			s = "FOEXP"
		}
		if o.Cookie != "" {
			s += " " + o.Cookie
		}
		return s
	case OptAccECN:
		s := "ECN"
		for _, f := range o.AccECN {
			s += fmt.Sprintf(" %s %d", f.Name, f.Value)
		}
		return s
	}
	return fmt.Sprintf("?option%d", o.Kind)
}

// FormatSyscall prints a system call line without its time, e.g.
// "connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)".
func FormatSyscall(c *Syscall) string {
	var b strings.Builder
	if c.End != nil {
		b.WriteString("..." + FormatTime(Time{Kind: TimeAbsolute, Usecs: c.End.Usecs}) + " ")
	}
	b.WriteString(c.Name + "(")
	for i, a := range c.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(FormatExpr(a))
	}
	b.WriteString(") = ")
	if c.Result != nil {
		b.WriteString(FormatExpr(c.Result))
	}
	if c.Errno != "" {
		fmt.Fprintf(&b, " %s (%s)", c.Errno, c.ErrnoNote)
	}
	if c.HasNote {
		fmt.Fprintf(&b, " (%s)", c.Note)
	}
	return b.String()
}

// FormatExpr prints an expression on one line.
func FormatExpr(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

func writeExprs(b *strings.Builder, list []Expr) {
	for i, e := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		writeExpr(b, e)
	}
}

func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case nil:
	case *Ellipsis:
		b.WriteString("...")
	case *IntLit:
		if e.Hex && e.Value >= 0 {
			fmt.Fprintf(b, "%#x", e.Value)
		} else {
			b.WriteString(strconv.FormatInt(e.Value, 10))
		}
	case *Word:
		b.WriteString(e.Name)
	case *StringLit:
		b.WriteString(`"` + e.Value + `"`)
		if e.Ellipsis {
			b.WriteString("...")
		}
	case *Binary:
		writeExpr(b, e.X)
		switch e.Op {
		case ".":
			b.WriteString(" ")
		default:
			b.WriteString(e.Op)
		}
		writeExpr(b, e.Y)
	case *List:
		open, closer := "[", "]"
		if e.Brace {
			open, closer = "{", "}"
		}
		b.WriteString(open)
		writeExprs(b, e.Elems)
		b.WriteString(closer)
	case *InAddr:
		// Addr is the string as written, escapes included.
		if e.In6 {
			b.WriteString(`inet6_addr("` + e.Addr + `")`)
		} else {
			b.WriteString(`inet_addr("` + e.Addr + `")`)
		}
	case *Sockaddr:
		fmt.Fprintf(b, `{sa_family=%s, sin_port=htons(%d), sin_addr=inet_addr("%s")}`, e.Family, e.Port, e.Addr)
	case *Msghdr:
		b.WriteString("{msg_name(...)=..., msg_iov(")
		writeExpr(b, e.IovLen)
		b.WriteString(")=")
		writeExpr(b, e.Iov)
		b.WriteString(", msg_flags=")
		writeExpr(b, e.Flags)
		if e.Control != nil {
			b.WriteString(", msg_control=")
			writeExpr(b, e.Control)
		}
		b.WriteString("}")
	case *Iovec:
		b.WriteString("{..., ")
		writeExpr(b, e.Len)
		b.WriteString("}")
	case *Pollfd:
		b.WriteString("{fd=")
		writeExpr(b, e.FD)
		b.WriteString(", events=")
		writeExpr(b, e.Events)
		if e.Revents != nil {
			b.WriteString(", revents=")
			writeExpr(b, e.Revents)
		}
		b.WriteString("}")
	case *EpollEvent:
		b.WriteString("{events=")
		writeExpr(b, e.Events)
		b.WriteString(", " + e.Field + "=")
		writeExpr(b, e.Value)
		b.WriteString("}")
	case *Linger:
		fmt.Fprintf(b, "{onoff=%d, linger=%d}", e.OnOff, e.Linger)
	case *Cmsg:
		b.WriteString("{cmsg_level=")
		writeExpr(b, e.Level)
		b.WriteString(", cmsg_type=")
		writeExpr(b, e.Type)
		b.WriteString(", cmsg_data=")
		writeExpr(b, e.Data)
		b.WriteString("}")
	case *ScmTimestamping:
		fmt.Fprintf(b, "{scm_sec=%d, scm_nsec=%d}", e.Sec, e.Nsec)
	case *SockExtendedErr:
		fields := []struct {
			name string
			x    Expr
		}{{"ee_errno", e.Errno}, {"ee_origin", e.Origin}, {"ee_type", e.Type},
			{"ee_code", e.Code}, {"ee_info", e.Info}, {"ee_data", e.Data}}
		b.WriteString("{")
		for i, f := range fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.name + "=")
			writeExpr(b, f.x)
		}
		b.WriteString("}")
	case *MPLSStackExpr:
		b.WriteString("{" + formatMPLSStack(e.Stack) + "}")
	case *GREExpr:
		b.WriteString("{" + formatGREHeader(e.Header) + "}")
	default:
		fmt.Fprintf(b, "?%T", e)
	}
}

// formatAction prints the action of an event.
func formatAction(a Action) string {
	switch a := a.(type) {
	case *Packet:
		return FormatPacket(a)
	case *Syscall:
		return FormatSyscall(a)
	case *Command:
		return "`" + a.Text + "`"
	case *Code:
		open, closer := "%{ ", " }%"
		if strings.HasPrefix(a.Text, "\n") {
			open = "%{"
		}
		if strings.HasSuffix(a.Text, "\n") {
			closer = "}%"
		}
		return open + a.Text + closer
	}
	return fmt.Sprintf("?%T", a)
}

// FormatEvent prints an event on one line (multi-line commands and code
// blocks keep their newlines).
func FormatEvent(ev *Event) string {
	return FormatTime(ev.Time) + " " + formatAction(ev.Action)
}

func formatOption(o *Option) string {
	if o.Set {
		return "--" + o.Name + "=" + o.Value
	}
	return "--" + o.Name
}

// item is one printed element of a script with its source span.
type item struct {
	start   Pos
	end     Pos // just after the last token; zero if unknown
	text    string
	endLine int // last source line of the element
}

func lastLine(start Pos, end Pos, text string) int {
	if end.IsValid() {
		return end.Line
	}
	if !start.IsValid() {
		return 0
	}
	return start.Line + strings.Count(text, "\n")
}

// Format returns the canonical text of a script.
func Format(s *Script) []byte {
	var buf bytes.Buffer
	printScript(&buf, s)
	return buf.Bytes()
}

// Print writes the canonical text of a script: one line per option and
// event, times as FormatTime prints them, comments where the source had
// them (a comment that ended an event's line still ends it), and at most
// one blank line wherever the source had blank lines. In trees built by
// code (zero positions), a comment at line L is printed before the L-th
// element (option, command or event).
func Print(w io.Writer, s *Script) error {
	_, err := w.Write(Format(s))
	return err
}

func printScript(buf *bytes.Buffer, s *Script) {
	var items []item
	add := func(start, end Pos, text string) {
		items = append(items, item{start: start, end: end, text: text, endLine: lastLine(start, end, text)})
	}
	for _, o := range s.Options {
		add(o.Pos, o.End, formatOption(o))
	}
	if s.Init != nil {
		add(s.Init.Pos, s.Init.End, formatAction(s.Init))
	}
	for _, ev := range s.Events {
		add(ev.Pos, ev.End, FormatEvent(ev))
	}
	if s.Cleanup != nil {
		add(s.Cleanup.Pos, s.Cleanup.End, formatAction(s.Cleanup))
	}
	var comments []*Comment
	for _, c := range s.Comments {
		if c.Pos.IsValid() {
			comments = append(comments, c)
		}
	}
	ci := 0
	prevLine := 0 // last source line printed so far; 0 if unknown
	atLine := func(line int) {
		if prevLine > 0 && line > prevLine+1 {
			buf.WriteString("\n")
		}
	}
	virtual := 0
	for _, it := range items {
		virtual++
		if !it.start.IsValid() {
			for ci < len(comments) && comments[ci].Pos.Line <= virtual {
				buf.WriteString(comments[ci].Text + "\n")
				ci++
			}
			buf.WriteString(it.text + "\n")
			prevLine = 0
			continue
		}
		virtual = it.endLine
		// Comments before the item, and those inside a multi-line item
		// that the one-line form cannot keep in place, go on their own
		// lines before it.
		for ci < len(comments) && before(comments[ci].Pos, it) {
			c := comments[ci]
			// A comment from inside the item counts as being on its
			// first line, so no blank line separates it from the item.
			line := min(c.Pos.Line, it.start.Line)
			atLine(line)
			buf.WriteString(c.Text + "\n")
			prevLine = line + strings.Count(c.Text, "\n")
			ci++
		}
		atLine(it.start.Line)
		buf.WriteString(it.text)
		prevLine = it.endLine
		for ci < len(comments) && comments[ci].Pos.Line == it.endLine {
			c := comments[ci]
			buf.WriteString(" " + c.Text)
			prevLine = c.Pos.Line + strings.Count(c.Text, "\n")
			ci++
		}
		buf.WriteString("\n")
	}
	for ; ci < len(comments); ci++ {
		c := comments[ci]
		atLine(c.Pos.Line)
		buf.WriteString(c.Text + "\n")
		prevLine = c.Pos.Line + strings.Count(c.Text, "\n")
	}
}

// before reports whether a comment at p cannot trail the item's last line.
func before(p Pos, it item) bool {
	if p.Line < it.endLine {
		return true
	}
	if p.Line > it.endLine {
		return false
	}
	if it.end.IsValid() {
		return p.Col < it.end.Col
	}
	return p.Line == it.start.Line && p.Col < it.start.Col
}
