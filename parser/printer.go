package parser

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// FormatTime prints an event time: as the source spelled it (Text,
// EndText), else in canonical form: whole seconds as integers, other times
// with six decimals; "+" for relative times.
func FormatTime(t Time) string { return string(appendTime(nil, t)) }

func appendTime(b []byte, t Time) []byte {
	switch t.Kind {
	case TimeAny:
		return append(b, '*')
	case TimeRelative:
		b = t.Text.append(append(b, '+'), t.Usecs)
		if t.Anchor {
			b = append(b, '^')
			if t.AnchorN > 0 {
				b = strconv.AppendInt(b, int64(t.AnchorN), 10)
			}
		}
		return b
	case TimeAbsoluteRange:
		return t.EndText.append(append(t.Text.append(b, t.Usecs), '~'), t.End)
	case TimeRelativeRange:
		return t.EndText.append(append(t.Text.append(append(b, '+'), t.Usecs), "~+"...), t.End)
	}
	return t.Text.append(b, t.Usecs)
}

// append appends a time of us microseconds as spelled, if the spelling is
// a number that reads as that time, else in canonical form.
func (s Spelling) append(b []byte, us int64) []byte {
	if s != "" && isNumber(string(s)) {
		if v, err := parseSeconds(string(s)); err == "" && v == us {
			return append(b, s...)
		}
	}
	return appendSeconds(b, us)
}

// isNumber reports whether s is one INTEGER or FLOAT token: [-]digits,
// [-][digits].digits.
func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	if dot && frac == "" || !dot && whole == "" {
		return false
	}
	for _, c := range []byte(whole + frac) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func appendSeconds(b []byte, us int64) []byte {
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	if frac == 0 {
		return b
	}
	// Six decimals, zero-padded: every packet line has a time, and fmt
	// costs several times more.
	b = append(b, ".000000"...)
	for i := len(b) - 1; frac > 0; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	return b
}

// FormatPacket prints a packet line without its time, e.g.
// "< S 0:0(0) win 4000 <mss 1000>".
func FormatPacket(p *Packet) string { return string(appendPacket(nil, p)) }

func appendPacket(b []byte, p *Packet) []byte {
	if p.Dir == Outbound {
		b = append(b, '>')
	} else {
		b = append(b, '<')
	}
	for _, e := range p.Encaps {
		b = append(b, ' ')
		switch e := e.(type) {
		case *EncapIP:
			b = fmt.Appendf(b, "ipv%d", e.Version)
			if e.Info != nil {
				b = append(append(b, ' '), formatIPInfo(e.Info)...)
			}
			b = fmt.Appendf(b, " %s > %s:", e.Src, e.Dst)
		case *EncapGRE:
			b = append(b, "gre"...)
			if e.Header != nil {
				if e.Header.Commas {
					b = append(b, ',')
				}
				b = append(append(b, ' '), formatGREHeader(e.Header)...)
			}
			b = append(b, ':')
		case *EncapMPLS:
			b = append(b, "mpls"...)
			if len(e.Stack) > 0 {
				b = append(append(b, ' '), formatMPLSStack(e.Stack)...)
			}
			b = append(b, ':')
		}
	}
	if p.IPInfo != nil {
		b = append(append(b, ' '), formatIPInfo(p.IPInfo)...)
	}
	switch {
	case p.UDP != nil:
		b = append(b, " udp"...)
		if p.Ports != nil {
			b = fmt.Appendf(b, " %d>%d", p.Ports.Src, p.Ports.Dst)
		}
		b = fmt.Appendf(b, " (%d)", p.UDP.Len)
	case p.ICMP != nil:
		b = append(append(b, ' '), formatICMP(p.ICMP)...)
	case p.TCP != nil:
		if p.PSP != nil {
			b = append(append(b, " encap psp spi "...), FormatExpr(p.PSP.SPI)...)
		}
		if p.Ports != nil {
			b = fmt.Appendf(b, " %d>%d", p.Ports.Src, p.Ports.Dst)
		}
		b = appendTCP(append(b, ' '), p.TCP)
	}
	return b
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
	switch {
	case ic.CodeSym != "":
		b.WriteString(" " + ic.CodeSym)
	case ic.Code != "":
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

func appendTCP(b []byte, t *TCP) []byte {
	if t.Flags == "" {
		b = append(b, '-')
	} else {
		b = append(b, t.Flags...)
	}
	b = strconv.AppendUint(append(b, ' '), uint64(t.Seq), 10)
	b = strconv.AppendInt(append(b, ':'), int64(t.Seq)+int64(t.Len), 10)
	b = append(strconv.AppendUint(append(b, '('), uint64(t.Len), 10), ')')
	if t.Ack != nil {
		b = strconv.AppendUint(append(b, " ack "...), uint64(*t.Ack), 10)
	}
	if t.Win != nil {
		b = strconv.AppendUint(append(b, " win "...), uint64(*t.Win), 10)
	}
	if t.Urg != nil {
		b = strconv.AppendUint(append(b, " urg "...), uint64(*t.Urg), 10)
	}
	if t.Options != nil {
		b = appendTCPOptions(append(b, ' '), t.Options)
	}
	return b
}

// FormatTCPOptions prints a `<...>` option list as upstream scripts write
// it: "<mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>"; "" for no list.
func FormatTCPOptions(o *TCPOptions) string { return string(appendTCPOptions(nil, o)) }

func appendTCPOptions(b []byte, o *TCPOptions) []byte {
	if o == nil {
		return b
	}
	if o.Any {
		return append(b, "<...>"...)
	}
	b = append(b, '<')
	for i, opt := range o.List {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTCPOption(b, opt)
	}
	return append(b, '>')
}

func appendTCPOption(b []byte, o *TCPOption) []byte {
	if o.Kind < 0 || int(o.Kind) >= len(optionNames) {
		return fmt.Appendf(b, "?option%d", o.Kind)
	}
	b = append(b, optionNames[o.Kind]...)
	if o.Sym != "" {
		// The -D symbol written for the value, cookie or digest.
		return append(append(b, ' '), o.Sym...)
	}
	switch o.Kind {
	case OptMSS, OptWScale:
		b = appendWildInt(append(b, ' '), o, WildValue, o.Value)
	case OptSACK:
		for _, s := range o.SACK {
			b = strconv.AppendUint(append(b, ' '), uint64(s.Left), 10)
			b = strconv.AppendUint(append(b, ':'), uint64(s.Right), 10)
		}
	case OptMD5:
		b = append(append(b, ' '), o.Cookie...)
	case OptTimestamp:
		b = appendWildInt(append(b, " val "...), o, WildTSVal, int64(o.TSVal))
		b = appendWildInt(append(b, " ecr "...), o, WildTSEcr, int64(o.TSEcr))
	case OptFastOpen, OptFastOpenExp:
		switch {
		case o.Wild&WildCookie != 0:
			b = append(b, " *"...)
		case o.Cookie != "":
			b = append(append(b, ' '), o.Cookie...)
		}
	case OptAccECN:
		for _, f := range o.AccECN {
			b = fmt.Appendf(b, " %s %d", f.Name, f.Value)
		}
	}
	return b
}

// appendWildInt appends v, or `*` when o marks the value w as a wildcard.
func appendWildInt(b []byte, o *TCPOption, w OptWild, v int64) []byte {
	if o.Wild&w != 0 {
		return append(b, '*')
	}
	return strconv.AppendInt(b, v, 10)
}

// FormatSyscall prints a system call line without its time, e.g.
// "connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)".
func FormatSyscall(c *Syscall) string { return string(appendSyscall(nil, c)) }

func appendSyscall(b []byte, c *Syscall) []byte {
	if c.End != nil {
		end := c.End.Text
		if strings.HasPrefix(string(end), ".") {
			end = "0" + end // "...0.02", not "....02"
		}
		b = append(end.append(append(b, "..."...), c.End.Usecs), ' ')
	}
	b = append(append(b, c.Name...), '(')
	for i, a := range c.Args {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendExpr(b, a)
	}
	b = append(b, ") = "...)
	if c.Result != nil {
		b = appendExpr(b, c.Result)
	}
	if c.Errno != "" {
		b = append(append(append(append(append(b, ' '), c.Errno...), " ("...), c.ErrnoNote...), ')')
	}
	if c.HasNote {
		b = append(append(append(b, " ("...), c.Note...), ')')
	}
	return b
}

// appendExpr appends an expression: the common leaves directly, the rest
// as writeExpr prints them.
func appendExpr(b []byte, e Expr) []byte {
	switch e := e.(type) {
	case *Ellipsis:
		return append(b, "..."...)
	case *IntLit:
		if (!e.Hex || e.Value < 0) && e.Sym == "" {
			return strconv.AppendInt(b, e.Value, 10)
		}
	case *Word:
		if e.Sym == "" {
			return append(b, e.Name...)
		}
	}
	return append(b, FormatExpr(e)...)
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
		if e.Sym != "" {
			b.WriteString(e.Sym)
		} else if e.Hex && e.Value >= 0 {
			fmt.Fprintf(b, "%#x", e.Value)
		} else {
			b.WriteString(strconv.FormatInt(e.Value, 10))
		}
	case *Word:
		if e.Sym != "" {
			b.WriteString(e.Sym)
		} else {
			b.WriteString(e.Name)
		}
	case *StringLit:
		if e.Sym != "" {
			b.WriteString(e.Sym)
		} else {
			b.WriteString(`"` + e.Value + `"`)
		}
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
	case fieldLit:
		writeFields(b, e.fields())
	case *MPLSStackExpr:
		b.WriteString("{" + formatMPLSStack(e.Stack) + "}")
	case *GREExpr:
		b.WriteString("{" + formatGREHeader(e.Header) + "}")
	default:
		fmt.Fprintf(b, "?%T", e)
	}
}

// writeFields prints a brace literal of fields.
func writeFields(b *strings.Builder, fields []field) {
	b.WriteString("{")
	for i, f := range fields {
		if f.optional && *f.expr == nil {
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if f.chosen != nil {
			b.WriteString(*f.chosen)
		} else {
			b.WriteString(f.name)
		}
		b.WriteString("=")
		if f.num != nil {
			b.WriteString(strconv.FormatInt(*f.num, 10))
		} else {
			writeExpr(b, *f.expr)
		}
	}
	b.WriteString("}")
}

func appendAction(b []byte, a Action) []byte {
	switch a := a.(type) {
	case *Packet:
		return appendPacket(b, a)
	case *Syscall:
		return appendSyscall(b, a)
	case *Command:
		return append(append(append(b, '`'), a.Text...), '`')
	case *Code:
		open, closer := "%{ ", " }%"
		if strings.HasPrefix(a.Text, "\n") {
			open = "%{"
		}
		if strings.HasSuffix(a.Text, "\n") {
			closer = "}%"
		}
		return append(append(append(b, open...), a.Text...), closer...)
	}
	return fmt.Appendf(b, "?%T", a)
}

// FormatEvent prints an event on one line (multi-line commands and code
// blocks keep their newlines).
func FormatEvent(ev *Event) string { return string(appendEvent(nil, ev)) }

func appendEvent(b []byte, ev *Event) []byte {
	return appendEventAction(appendTime(b, ev.Time), ev)
}

// appendEventAction appends what follows an event's time.
func appendEventAction(b []byte, ev *Event) []byte {
	if c, ok := ev.Action.(*Syscall); !ok || c.End == nil {
		// "+0...0.010 read(...)": the end of a blocking call follows the
		// time as upstream scripts write it.
		b = append(b, ' ')
	}
	return appendAction(b, ev.Action)
}

// alignTime right-aligns the time in b[from:] (its start, for a range) to
// end in column col, as Script.TimeColumn says; a longer time stays at the
// start of its line.
func alignTime(b []byte, from, col int) []byte {
	width := len(b) - from
	if i := bytes.IndexByte(b[from:], '~'); i >= 0 {
		width = i
	}
	pad := col - width
	if pad <= 0 {
		return b
	}
	n := len(b)
	b = append(b, make([]byte, pad)...)
	copy(b[from+pad:], b[from:n])
	for i := from; i < from+pad; i++ {
		b[i] = ' '
	}
	return b
}

// breakLines starts a new line where each break says in the action
// printed in b[from:]: before its Token-th token, after its indent. A
// break whose token is not there (a tree changed since the parse) is
// dropped.
func breakLines(b []byte, from int, breaks []Break) []byte {
	act := string(b[from:])
	starts := tokenStarts(act, breaks[len(breaks)-1].Token+1)
	out := b[:from]
	prev := 0
	for _, br := range breaks {
		k := br.Token
		if k <= 0 || k >= len(starts) || starts[k] <= prev || !strings.HasPrefix(act[starts[k]:], br.Text) {
			continue
		}
		cut := strings.TrimRight(act[prev:starts[k]], " ")
		out = append(out, cut...)
		out = append(append(out, '\n'), br.Indent...)
		prev = starts[k]
	}
	return append(out, act[prev:]...)
}

// tokenStarts returns the offsets of the first n tokens of text.
func tokenStarts(text string, n int) []int {
	l := &lexer{src: text, line: 1, errs: &errorSink{}}
	starts := make([]int, 0, n)
	for len(starts) < n {
		t := l.next()
		if t.kind == tEOF {
			break
		}
		starts = append(starts, int(t.off))
	}
	return starts
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
	endLine int // last source line of the element
}

func lastLine(start Pos, end Pos, text []byte) int {
	if end.IsValid() {
		return end.Line
	}
	if !start.IsValid() {
		return 0
	}
	return start.Line + bytes.Count(text, []byte("\n"))
}

// Format returns the canonical text of a script (see Print).
func Format(s *Script) []byte {
	sc := scratchPool.Get().(*scratch)
	defer sc.put()
	sc.out.Reset()
	printScript(&sc.out, s, sc)
	return bytes.Clone(sc.out.Bytes())
}

// Print writes the canonical text of a script: one line per option and
// event, times as FormatTime prints them, comments where the source had
// them (a comment that ended an event's line still ends it), and at most
// one blank line wherever the source had blank lines. In trees built by
// code (zero positions), a comment at line L is printed before the L-th
// element (option, command or event). It writes as it goes, element by
// element: a script of millions of lines needs no copy of its text.
func Print(w io.Writer, s *Script) error {
	sc := scratchPool.Get().(*scratch)
	defer sc.put()
	bw := writerPool.Get().(*bufio.Writer)
	defer writerPool.Put(bw)
	bw.Reset(w)
	printScript(bw, s, sc)
	err := bw.Flush()
	bw.Reset(nil) // not to keep w alive
	return err
}

// writerPool holds Print's buffers: large enough for few writes to a file
// of a long script, reused because a capture prints thousands of short
// ones.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// sink is where printScript writes: a bytes.Buffer or a bufio.Writer,
// whose write errors it keeps for Flush.
type sink interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
}

// scratch is the printer's working memory, kept between calls: a capture
// prints thousands of scripts. text holds one element's, out a script's
// for Format, which copies it out once its size is known.
type scratch struct {
	text []byte
	out  bytes.Buffer
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxScratch is the most memory a scratch keeps for the next script.
const maxScratch = 16 << 20

// put gives sc back to the pool, unless a huge script made it too large.
func (sc *scratch) put() {
	if cap(sc.text)+sc.out.Cap() <= maxScratch {
		scratchPool.Put(sc)
	}
}

// printScript prints s to buf in one pass: each element (option, command,
// event) is formatted on its own into sc.text, then written after the
// comments that go before it.
func printScript(buf sink, s *Script, sc *scratch) {
	comments := s.Comments
	// next skips the comments without a position, which print nowhere.
	next := func() *Comment {
		for len(comments) > 0 && !comments[0].Pos.IsValid() {
			comments = comments[1:]
		}
		if len(comments) == 0 {
			return nil
		}
		return comments[0]
	}
	prevLine := 0 // last source line printed so far; 0 if unknown
	atLine := func(line int) {
		if prevLine > 0 && line > prevLine+1 {
			buf.WriteString("\n")
		}
	}
	virtual := 0
	emit := func(start, end Pos, text []byte) {
		it := item{start: start, end: end, endLine: lastLine(start, end, text)}
		virtual++
		if !it.start.IsValid() {
			for c := next(); c != nil && c.Pos.Line <= virtual; c = next() {
				buf.WriteString(c.Text)
				buf.WriteByte('\n')
				comments = comments[1:]
			}
			buf.Write(text)
			buf.WriteByte('\n')
			prevLine = 0
			return
		}
		virtual = it.endLine
		// Comments before the item, and those inside a multi-line item
		// that the one-line form cannot keep in place, go on their own
		// lines before it.
		for c := next(); c != nil && before(c.Pos, it); c = next() {
			// A comment from inside the item counts as being on its
			// first line, so no blank line separates it from the item.
			line := min(c.Pos.Line, it.start.Line)
			atLine(line)
			buf.WriteString(c.Indent)
			buf.WriteString(c.Text)
			buf.WriteByte('\n')
			prevLine = line + strings.Count(c.Text, "\n")
			comments = comments[1:]
		}
		atLine(it.start.Line)
		buf.Write(text)
		prevLine = it.endLine
		for c := next(); c != nil && c.Pos.Line == it.endLine; c = next() {
			buf.WriteByte(' ')
			buf.WriteString(c.Text)
			prevLine = c.Pos.Line + strings.Count(c.Text, "\n")
			comments = comments[1:]
		}
		buf.WriteString("\n")
	}
	text := sc.text
	for _, o := range s.Options {
		text = append(text[:0], formatOption(o)...)
		emit(o.Pos, o.End, text)
	}
	if s.Init != nil {
		text = appendAction(text[:0], s.Init)
		emit(s.Init.Pos, s.Init.End, text)
	}
	for _, ev := range s.Events {
		text = appendTime(text[:0], ev.Time)
		if s.TimeColumn > 1 {
			text = alignTime(text, 0, s.TimeColumn)
		}
		act := len(text)
		text = appendEventAction(text, ev)
		if len(ev.Breaks) > 0 {
			text = breakLines(text, act, ev.Breaks)
		}
		emit(ev.Pos, ev.End, text)
	}
	if s.Cleanup != nil {
		text = appendAction(text[:0], s.Cleanup)
		emit(s.Cleanup.Pos, s.Cleanup.End, text)
	}
	sc.text = text
	for c := next(); c != nil; c = next() {
		atLine(c.Pos.Line)
		buf.WriteString(c.Indent)
		buf.WriteString(c.Text)
		buf.WriteByte('\n')
		prevLine = c.Pos.Line + strings.Count(c.Text, "\n")
		comments = comments[1:]
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
