package parser

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Config holds what the reference takes from its command line that
// changes how a script is read.
type Config struct {
	// Defines are the -D NAME=VALUE definitions: a word NAME in the script
	// is read as VALUE (a string if VALUE is "quoted", a command if it is
	// `backquoted`, an integer if it is one, a word otherwise).
	Defines map[string]string
	// AllowUndefined accepts a word that is not defined where a -D
	// symbol can stand for a value (an MSS or window scale, a fast open
	// cookie or MD5 digest), as `fmt` needs: the tree keeps the symbol
	// and no value.
	AllowUndefined bool
}

// maxErrors is how many errors a parse reports before giving up.
const maxErrors = 10

// maxDepth bounds the nesting of expressions (brackets, braces and chains
// of | or adjacent strings), so that hostile input cannot exhaust the stack
// of the parser, the printer or Equal.
const maxDepth = 500

// errorSink collects errors up to maxErrors.
type errorSink struct {
	file string
	list ErrorList
}

func (e *errorSink) add(p Pos, msg string) {
	if len(e.list) < maxErrors {
		e.list = append(e.list, &Error{File: e.file, Pos: p, Msg: msg})
	}
}

func (e *errorSink) full() bool { return len(e.list) >= maxErrors }

// bailout unwinds the parse of one event after a syntax error.
type bailout struct{}

type parser struct {
	lx   *lexer
	errs *errorSink
	tok  token
	prev Pos // end of the last token consumed
	// nest counts the brackets opened and not closed since the event
	// began, so that recovery can skip the continuation lines of a
	// multi-line system call.
	nest  int
	ahead []token
	depth int
	// ntok counts the tokens consumed: the current token is the ntok-th.
	ntok int
	// action is the ntok of the current event's action's first token, or
	// -1 outside an action; breaks collects where the action's tokens
	// began new lines.
	action int
	breaks []Break
	// timeEnd is the end of the current event's time (of its start, for
	// a range); times collects the column span of each event's time.
	timeEnd Pos
	times   []timeSpan
	// undefined is Config.AllowUndefined.
	undefined bool
}

// timeSpan is the columns of an event's time (of its start, for a range):
// first and last character.
type timeSpan struct{ first, last int }

// ParseFile parses one script. src is its text; filename is used in
// positions of errors. A non-nil error is an ErrorList.
func ParseFile(filename string, src []byte, cfg *Config) (*Script, error) {
	errs := &errorSink{file: filename}
	if i := bytes.IndexByte(src, 0); i >= 0 {
		// A NUL byte never occurs in a script: report the file as what it
		// is instead of whatever its first bytes happen to look like.
		line := 1 + bytes.Count(src[:i], []byte("\n"))
		col := i - (bytes.LastIndexByte(src[:i], '\n') + 1) + 1
		errs.add(Pos{Line: line, Col: col}, "binary file (NUL byte): not a packetdrill script")
		return &Script{File: filename}, errs.list
	}
	defines := map[string]string{}
	if cfg != nil {
		for k, v := range cfg.Defines {
			defines[k] = v
		}
	}
	p := &parser{
		lx:        &lexer{src: string(src), line: 1, defines: defines, errs: errs},
		errs:      errs,
		action:    -1,
		undefined: cfg != nil && cfg.AllowUndefined,
	}
	s := p.parseScript(filename, cfg)
	s.Comments = p.lx.comments
	if len(errs.list) > 0 {
		errs.list.Sort()
		return s, errs.list
	}
	return s, nil
}

func (p *parser) next() {
	p.prev = p.tok.end
	if p.tok.kind == tChar && len(p.tok.text) == 1 {
		switch p.tok.text[0] {
		case '(', '[', '{':
			p.nest++
		case ')', ']', '}':
			p.nest--
		}
	}
	if len(p.ahead) > 0 {
		p.tok = p.ahead[0]
		p.ahead = p.ahead[1:]
	} else {
		p.tok = p.lx.next()
	}
	p.ntok++
	if p.action >= 0 && p.tok.pos.Line > p.prev.Line && p.prev.IsValid() {
		// A line break inside an action, which the printer keeps.
		p.breaks = append(p.breaks, Break{Token: p.ntok - p.action, Text: p.tok.raw, Indent: p.lx.indent(int(p.tok.off))})
	}
}

// peek returns the token n places after the current one (n >= 1).
func (p *parser) peek(n int) token {
	for len(p.ahead) < n {
		p.ahead = append(p.ahead, p.lx.next())
	}
	return p.ahead[n-1]
}

// fail reports a syntax error and abandons the current event.
func (p *parser) fail(pos Pos, format string, args ...any) {
	p.errs.add(pos, fmt.Sprintf(format, args...))
	panic(bailout{})
}

// semantic reports an error that does not stop the parse of the event.
func (p *parser) semantic(pos Pos, format string, args ...any) {
	p.errs.add(pos, fmt.Sprintf(format, args...))
}

// expected fails with "expected WHAT, found TOKEN".
func (p *parser) expected(what string) {
	if p.tok.kind == tEOF && p.lx.fatal {
		panic(bailout{})
	}
	if p.tok.nl && p.prev.IsValid() && p.tok.pos.Line > p.prev.Line {
		// The line ended early: say so where it ended, not on the next line.
		p.fail(p.prev, "expected %s, found end of line", what)
	}
	p.fail(p.tok.pos, "expected %s, found %s", what, p.tok)
}

func (p *parser) expectChar(c byte, what string) Pos {
	if !p.tok.is(c) {
		p.expected(what)
	}
	pos := p.tok.pos
	p.next()
	return pos
}

func (p *parser) expectKw(kw, what string) Pos {
	if !p.tok.isKw(kw) {
		p.expected(what)
	}
	pos := p.tok.pos
	p.next()
	return pos
}

// intTok consumes an INTEGER token and returns its value.
func (p *parser) intTok(what string) (int64, Pos) {
	if p.tok.kind != tInt {
		p.expected(what)
	}
	t := p.tok
	p.next()
	return p.intValue(t), t.pos
}

func (p *parser) intValue(t token) int64 {
	base := 10
	text := t.text
	if t.kind == tHex {
		base = 16
		text = text[2:]
	}
	v, err := strconv.ParseInt(text, base, 64)
	if err != nil {
		p.semantic(t.pos, "integer %s out of range", t.raw)
	}
	return v
}

// anyInt consumes a decimal or hex integer.
func (p *parser) anyInt(what string) *IntLit {
	if p.tok.kind != tInt && p.tok.kind != tHex {
		p.expected(what)
	}
	t := p.tok
	p.next()
	return &IntLit{Pos: t.pos, Value: p.intValue(t), Hex: t.kind == tHex, Sym: t.sym()}
}

// protect runs f, turning a bailout into a false result.
func (p *parser) protect(f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bailout); !isBail {
				panic(r)
			}
			ok = false
			p.depth = 0
		}
	}()
	f()
	return true
}

// recoverAfter skips to the first token of a later line where parsing
// can resume after an error: one that can start an event, or any one
// once the brackets of the failed event are closed.
func (p *parser) recoverAfter(line int) {
	for p.tok.kind != tEOF {
		if p.tok.nl && p.tok.pos.Line > line && (p.nest <= 0 || p.startsEvent()) {
			return
		}
		p.next()
	}
}

func (p *parser) startsEvent() bool {
	switch p.tok.kind {
	case tInt, tFloat, tBackq, tOption:
		return true
	}
	return p.tok.is('+') || p.tok.is('*')
}

func (p *parser) parseScript(filename string, cfg *Config) *Script {
	s := &Script{File: filename}
	p.next()
	for p.tok.kind == tOption && !p.errs.full() {
		start := p.tok.pos.Line
		if !p.protect(func() {
			o := p.parseOption()
			o.End = p.prev
			s.Options = append(s.Options, o)
			if err := o.Check(); err != nil {
				p.semantic(o.Pos, "%s", err)
			}
		}) {
			p.recoverAfter(start)
		}
	}
	p.applyScriptDefines(s.Options, cfg)
	if p.tok.kind == tBackq {
		s.Init = &Command{Pos: p.tok.pos, End: p.tok.end, Text: p.tok.text}
		p.next()
	}
	for p.tok.kind != tEOF && !p.errs.full() {
		start := p.tok.pos.Line
		p.nest = 0
		if p.tok.kind == tBackq {
			s.Cleanup = &Command{Pos: p.tok.pos, End: p.tok.end, Text: p.tok.text}
			p.next()
			if p.tok.kind != tEOF {
				p.errs.add(s.Cleanup.Pos, "a command without a time must be the first or the last thing in the script")
				s.Cleanup = nil
			}
			continue
		}
		if !p.protect(func() {
			ev := p.parseEvent()
			ev.End = p.prev
			s.Events = append(s.Events, ev)
			p.checkEvent(ev)
		}) {
			p.recoverAfter(start)
		}
	}
	if len(s.Events) == 0 && len(p.errs.list) == 0 {
		p.errs.add(p.tok.pos, "script has no events: at least one timed event is required")
	}
	s.TimeColumn = timeColumn(p.times)
	return s
}

// timeColumn finds how a script lays out its times: the column N in which
// the most times end, counting a time that starts its line and ends after
// N as laid out so too (it is too long to right-align), or 0 when more
// times start their lines than that (N = 1). A tie goes to the smaller N.
func timeColumn(spans []timeSpan) int {
	ending := map[int]int{} // times by the column they end in
	var flushLast []int     // where the times that start their lines end
	for _, t := range spans {
		ending[t.last]++
		if t.first == 1 {
			flushLast = append(flushLast, t.last)
		}
	}
	slices.Sort(flushLast)
	best, bestN := 0, len(flushLast)
	for col, n := range ending {
		// The flush times that end after col.
		i, _ := slices.BinarySearch(flushLast, col+1)
		n += len(flushLast) - i
		if col > 1 && (n > bestN || n == bestN && best != 0 && col < best) {
			best, bestN = col, n
		}
	}
	return best
}

// applyScriptDefines adds the script's --define=NAME=VALUE options to the
// definitions; as in the reference, the command line wins.
func (p *parser) applyScriptDefines(opts []*Option, cfg *Config) {
	for _, o := range opts {
		if o.Name != "define" || !o.Set {
			continue
		}
		name, value, ok := strings.Cut(o.Value, "=")
		if !ok || name == "" {
			p.semantic(o.Pos, "bad definition: %s", o.Value)
			continue
		}
		if cfg != nil {
			if _, fromCmdline := cfg.Defines[name]; fromCmdline {
				continue
			}
		}
		p.lx.defines[name] = value
	}
}

func (p *parser) parseOption() *Option {
	o := &Option{Pos: p.tok.pos, Name: p.tok.text}
	p.next()
	if !p.tok.is('=') {
		return o
	}
	p.next()
	o.Set = true
	t := p.tok
	switch {
	case t.kind == tInt || t.kind == tIPv4 || t.kind == tIPv6 || t.isKw("ipv4") || t.isKw("ipv6"):
		o.Value = t.raw
	case t.kind == tString:
		o.Value = `"` + t.text + `"`
	case t.kind == tWord:
		o.Value = t.text
		if p.peek(1).is('=') {
			p.next()
			p.next()
			switch p.tok.kind {
			case tWord:
				o.Value += "=" + p.tok.text
			case tString:
				o.Value += `="` + p.tok.text + `"`
			case tBackq:
				o.Value += "=`" + p.tok.text + "`"
			default:
				p.expected("word, string or command after '='")
			}
		}
	default:
		p.expected(fmt.Sprintf("value of option --%s", o.Name))
	}
	p.next()
	return o
}

func (p *parser) parseEvent() *Event {
	ev := &Event{Pos: p.tok.pos}
	ev.Time = p.parseEventTime()
	if p.timeEnd.Line == ev.Pos.Line {
		p.times = append(p.times, timeSpan{ev.Pos.Col, p.timeEnd.Col - 1})
	}
	p.action, p.breaks = p.ntok, p.breaks[:0]
	defer func() {
		// Keep the breaks before tokens of the action, not the one
		// before the next event's first token.
		n, k := p.ntok-p.action, 0
		for k < len(p.breaks) && p.breaks[k].Token < n {
			k++
		}
		if k > 0 {
			ev.Breaks = slices.Clone(p.breaks[:k])
		}
		p.action = -1
	}()
	switch {
	case p.tok.is('<') || p.tok.is('>'):
		ev.Action = p.parsePacket()
	case p.tok.kind == tWord || p.tok.kind == tEllipsis:
		ev.Action = p.parseSyscall()
	case p.tok.kind == tBackq:
		ev.Action = &Command{Pos: p.tok.pos, End: p.tok.end, Text: p.tok.text}
		p.next()
	case p.tok.kind == tCode:
		ev.Action = &Code{Pos: p.tok.pos, Text: p.tok.text}
		p.next()
	default:
		p.expected("packet, system call, command or code block after the event time")
	}
	return ev
}

func (p *parser) parseEventTime() Time {
	t := Time{Pos: p.tok.pos}
	switch {
	case p.tok.is('*'):
		t.Kind = TimeAny
		p.next()
		p.timeEnd = p.prev
	case p.tok.is('+'):
		p.next()
		t.Kind = TimeRelative
		t.Usecs, t.Text = p.parseTimeValue("time after '+'")
		p.timeEnd = p.prev
		if p.tok.is('^') {
			p.next()
			t.Anchor = true
			if p.tok.kind == tInt {
				t.AnchorN = int(p.intIn("transmission number after '^'", 1<<16, "transmission number"))
				if t.AnchorN < 1 {
					p.semantic(t.Pos, "transmissions are counted from 1")
				}
			}
			p.timeEnd = p.prev
			break
		}
		if p.tok.is('~') {
			p.next()
			p.expectChar('+', "'+' before the end of a relative time range")
			t.Kind = TimeRelativeRange
			t.End, t.EndText = p.parseTimeValue("end of time range")
		}
	case p.tok.kind == tInt || p.tok.kind == tFloat:
		t.Kind = TimeAbsolute
		t.Usecs, t.Text = p.parseTimeValue("time")
		p.timeEnd = p.prev
		if p.tok.is('~') {
			p.next()
			t.Kind = TimeAbsoluteRange
			t.End, t.EndText = p.parseTimeValue("end of time range")
		}
	default:
		if p.tok.kind == tEOF {
			p.expected("event time")
		}
		p.fail(p.tok.pos, "unexpected %s: expected an event time", p.tok)
	}
	if (t.Kind == TimeAbsoluteRange || t.Kind == TimeRelativeRange) && t.End < t.Usecs {
		p.semantic(t.Pos, "time range is backwards")
	}
	return t
}

// parseTimeValue reads a time in seconds (INTEGER or FLOAT) as
// microseconds. The decimal text is converted exactly, digits beyond the
// microsecond being dropped as the reference's conversion drops them. The
// reference multiplies a double, which gives one microsecond less for
// about 1.5% of six-digit values (0.000249 becomes 248); exact conversion
// keeps printed times parsing back to the same value, and no script of
// the upstream corpus is affected.
func (p *parser) parseTimeValue(what string) (int64, Spelling) {
	if p.tok.kind != tInt && p.tok.kind != tFloat {
		p.expected(what)
	}
	t := p.tok
	p.next()
	usecs, err := parseSeconds(t.text)
	if err != "" {
		p.semantic(t.pos, "%s", err)
	}
	return usecs, Spelling(t.text)
}

func parseSeconds(text string) (int64, string) {
	negative := strings.HasPrefix(text, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(text, "-"), ".")
	var secs int64
	for i := 0; i < len(whole); i++ {
		if secs > (math.MaxInt64/1_000_000-9)/10 {
			return 0, "time out of range"
		}
		secs = secs*10 + int64(whole[i]-'0')
	}
	var us int64
	for i := 0; i < 6; i++ {
		us *= 10
		if i < len(frac) {
			us += int64(frac[i] - '0')
		}
	}
	if negative && secs*1e6+us > 0 {
		// The reference rejects times below zero; "-0" is zero.
		return 0, "negative time"
	}
	return secs*1e6 + us, ""
}

func (p *parser) parseSyscall() *Syscall {
	c := &Syscall{Pos: p.tok.pos}
	if p.tok.kind == tEllipsis {
		p.next()
		end := Time{Pos: p.tok.pos, Kind: TimeAbsolute}
		end.Usecs, end.Text = p.parseTimeValue("end time after '...'")
		c.End = &end
	}
	if p.tok.kind != tWord {
		p.expected("system call name")
	}
	c.Name, c.NamePos = p.tok.text, p.tok.pos
	p.next()
	if !p.tok.is('(') {
		p.expected(fmt.Sprintf("'(' after system call name %s", shorten(c.Name)))
	}
	p.next()
	if !p.tok.is(')') {
		c.Args = p.parseExprList(')')
	}
	p.expectChar(')', "',' or ')' in the system call arguments")
	if !p.tok.is('=') {
		p.expected(fmt.Sprintf("'=' and the expected result after %s(...)", c.Name))
	}
	p.next()
	c.Result = p.parseExpr()
	if p.tok.kind == tWord {
		c.Errno = p.tok.text
		p.next()
		if !p.tok.is('(') {
			p.expected(fmt.Sprintf("'(' and the error text after errno %s", c.Errno))
		}
		c.ErrnoNote = p.parseNote()
	}
	if p.tok.is('(') {
		c.Note = p.parseNote()
		c.HasNote = true
	}
	return c
}

// parseNote reads `(word word ...)`.
func (p *parser) parseNote() string {
	p.next()
	var words []string
	for p.tok.kind == tWord || p.tok.kind == tKeyword {
		words = append(words, p.tok.raw)
		p.next()
	}
	if len(words) == 0 {
		p.expected("words of a note")
	}
	p.expectChar(')', "')' at the end of the note")
	return strings.Join(words, " ")
}

func (p *parser) parseExprList(closer byte) []Expr {
	list := []Expr{p.parseExpr()}
	for p.tok.is(',') {
		p.next()
		list = append(list, p.parseExpr())
	}
	if !p.tok.is(closer) {
		p.expected(fmt.Sprintf("',' or '%c'", closer))
	}
	return list
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.tok.pos, "expression nested too deeply")
	}
}

// parseExpr reads an expression; `|` groups to the right as the
// reference's grammar (which shifts on conflicts) does.
func (p *parser) parseExpr() Expr {
	var operands []Expr
	saved := p.depth
	for {
		p.enter()
		operands = append(operands, p.parsePrimary())
		if !p.tok.is('|') {
			break
		}
		p.next()
	}
	p.depth = saved
	e := operands[len(operands)-1]
	for i := len(operands) - 2; i >= 0; i-- {
		e = &Binary{Pos: operands[i].Position(), Op: "|", X: operands[i], Y: e}
	}
	return e
}

func (p *parser) parsePrimary() Expr {
	t := p.tok
	switch {
	case t.kind == tEllipsis:
		p.next()
		return &Ellipsis{Pos: t.pos}
	case t.kind == tInt || t.kind == tHex:
		return p.anyInt("integer")
	case t.kind == tWord:
		p.next()
		w := &Word{Pos: t.pos, Name: t.text, Sym: t.sym()}
		if p.tok.is('=') {
			p.next()
			p.enter()
			return &Binary{Pos: t.pos, Op: "=", X: w, Y: p.parseExpr()}
		}
		return w
	case t.kind == tString:
		p.next()
		if p.tok.kind == tEllipsis {
			p.next()
			return &StringLit{Pos: t.pos, Value: t.text, Ellipsis: true, Sym: t.sym()}
		}
		var e Expr = &StringLit{Pos: t.pos, Value: t.text, Sym: t.sym()}
		for p.tok.kind == tString {
			p.enter()
			e = &Binary{Pos: t.pos, Op: ".", X: e, Y: &StringLit{Pos: p.tok.pos, Value: p.tok.text, Sym: p.tok.sym()}}
			p.next()
		}
		return e
	case t.is('['):
		p.next()
		l := &List{Pos: t.pos}
		if !p.tok.is(']') {
			l.Elems = p.parseExprList(']')
		}
		p.next()
		return l
	case t.isKw("inet_addr") || t.isKw("inet6_addr"):
		p.next()
		if !p.tok.is('(') {
			p.expected(fmt.Sprintf("'(' after %s", t.text))
		}
		p.next()
		if p.tok.kind != tString {
			p.expected("address string")
		}
		a := &InAddr{Pos: t.pos, In6: t.text == "inet6_addr", Addr: p.tok.text}
		apos := p.tok.pos
		p.next()
		p.expectChar(')', "')'")
		if a.In6 {
			if ip, err := netip.ParseAddr(a.Addr); err != nil || !ip.Is6() {
				p.semantic(apos, "cannot parse in6_addr %s", shorten(a.Addr))
			}
		}
		return a
	case t.is('{'):
		return p.parseBrace()
	}
	p.expected("expression")
	return nil
}

func (p *parser) expectField(kw string) {
	if !p.tok.isKw(kw) {
		p.expected(strconv.Quote(kw))
	}
	p.next()
	if !p.tok.is('=') {
		p.expected("'=' after " + strconv.Quote(kw))
	}
	p.next()
}

func (p *parser) parseBrace() Expr {
	pos := p.tok.pos
	p.next()
	t := p.tok
	if newLit := fieldLits[t.text]; t.kind == tKeyword && newLit != nil {
		lit := newLit(pos)
		p.parseFields(lit.fields())
		return lit
	}
	switch {
	case t.isKw("sa_family"):
		return p.parseSockaddr(pos)
	case t.isKw("msg_name"):
		return p.parseMsghdr(pos)
	case t.kind == tEllipsis && p.peek(1).is(','):
		p.next()
		p.next()
		if p.tok.kind != tInt {
			p.expected("iovec length")
		}
		iov := &Iovec{Pos: pos, Len: p.anyInt("iovec length")}
		p.expectChar('}', "'}'")
		return iov
	case t.is('(') || t.is('}'):
		m := &MPLSStackExpr{Pos: pos, Stack: p.parseMPLSStack()}
		p.expectChar('}', "'(' or '}'")
		return m
	case t.isKw("flags"):
		g := &GREExpr{Pos: pos, Header: p.parseGREHeader()}
		p.expectChar('}', "'}'")
		return g
	}
	l := &List{Pos: pos, Brace: true, Elems: p.parseExprList('}')}
	p.next()
	return l
}

// fieldLits makes the brace literals that are a fixed list of fields, by
// the name of their first field.
var fieldLits = map[string]func(Pos) fieldLit{
	"cmsg_level": func(pos Pos) fieldLit { return &Cmsg{Pos: pos} },
	"scm_sec":    func(pos Pos) fieldLit { return &ScmTimestamping{Pos: pos} },
	"ee_errno":   func(pos Pos) fieldLit { return &SockExtendedErr{Pos: pos} },
	"fd":         func(pos Pos) fieldLit { return &Pollfd{Pos: pos} },
	"events":     func(pos Pos) fieldLit { return &EpollEvent{Pos: pos} },
	"onoff":      func(pos Pos) fieldLit { return &Linger{Pos: pos} },
}

// parseFields reads `name=value` fields in the order given, and the
// closing brace.
func (p *parser) parseFields(fields []field) {
	for i, f := range fields {
		if i > 0 {
			if f.optional && !p.tok.is(',') {
				break
			}
			p.expectChar(',', "','")
		}
		if f.chosen != nil {
			if !slices.ContainsFunc(f.choices, p.tok.isKw) {
				last := len(f.choices) - 1
				p.expected(strings.Join(f.choices[:last], ", ") + " or " + f.choices[last])
			}
			*f.chosen = p.tok.text
			p.next()
			p.expectChar('=', "'='")
		} else {
			p.expectField(f.name)
		}
		if f.num != nil {
			*f.num, _ = p.intTok("integer")
		} else {
			*f.expr = p.parseExpr()
		}
	}
	p.expectChar('}', "'}'")
}

// wrapped reads `fn(X)`, X read by arg.
func (p *parser) wrapped(fn string, arg func()) {
	p.expectKw(fn, strconv.Quote(fn))
	p.expectChar('(', "'('")
	arg()
	p.expectChar(')', "')'")
}

func (p *parser) parseSockaddr(pos Pos) *Sockaddr {
	s := &Sockaddr{Pos: pos}
	p.expectField("sa_family")
	if p.tok.kind != tWord {
		p.expected("address family")
	}
	s.Family = p.tok.text
	fpos := p.tok.pos
	p.next()
	p.expectChar(',', "','")
	p.expectField("sin_port")
	p.wrapped("htons", func() { s.Port, _ = p.intTok("port number") })
	p.expectChar(',', "','")
	p.expectField("sin_addr")
	var apos Pos
	p.wrapped("inet_addr", func() {
		if p.tok.kind != tString {
			p.expected("address string")
		}
		s.Addr, apos = p.tok.text, p.tok.pos
		p.next()
	})
	p.expectChar('}', "'}'")
	ip, err := netip.ParseAddr(s.Addr)
	switch s.Family {
	case "AF_INET":
		if err != nil || !ip.Is4() {
			p.semantic(apos, "invalid IPv4 address %s", shorten(s.Addr))
		}
	case "AF_INET6":
		if err != nil || !ip.Is6() {
			p.semantic(apos, "invalid IPv6 address %s", shorten(s.Addr))
		}
	default:
		p.semantic(fpos, "unsupported sa_family %s: expected AF_INET or AF_INET6", s.Family)
	}
	return s
}

func (p *parser) parseMsghdr(pos Pos) *Msghdr {
	m := &Msghdr{Pos: pos}
	p.next()
	p.expectChar('(', "'(' after msg_name")
	if p.tok.kind != tEllipsis {
		p.expected("'...' in msg_name(...)")
	}
	p.next()
	p.expectChar(')', "')'")
	p.expectChar('=', "'='")
	if p.tok.kind != tEllipsis {
		p.expected("'...' after msg_name(...)=")
	}
	p.next()
	p.expectChar(',', "','")
	p.expectKw("msg_iov", `"msg_iov"`)
	p.expectChar('(', "'(' after msg_iov")
	if p.tok.kind != tInt {
		p.expected("iovec count")
	}
	m.IovLen = p.anyInt("iovec count")
	p.expectChar(')', "')'")
	p.expectChar('=', "'='")
	if !p.tok.is('[') {
		p.expected("'[' and the iovec array")
	}
	m.Iov = p.parsePrimary()
	p.expectChar(',', "','")
	p.expectField("msg_flags")
	m.Flags = p.parseExpr()
	if p.tok.is(',') {
		p.next()
		p.expectField("msg_control")
		if !p.tok.is('[') {
			p.expected("'[' and the control messages")
		}
		m.Control = p.parsePrimary()
	}
	p.expectChar('}', "'}'")
	return m
}
