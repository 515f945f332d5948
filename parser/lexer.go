package parser

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the class of a token. The classes follow the reference lexer
// (lexer.l): keywords, numbers, words, strings, single characters.
type tokKind int

const (
	tEOF      tokKind = iota
	tOption           // --name (text without the dashes)
	tFloat            // [-]?[0-9]*.[0-9]+
	tInt              // [-]?[0-9]+
	tHex              // 0x[0-9a-fA-F]+
	tWord             // [a-zA-Z0-9_]+ that is not a keyword
	tString           // "..." (text without the quotes)
	tBackq            // `...` (text without the quotes)
	tCode             // %{ ... }% (text trimmed as the reference does)
	tIPv4             // a.b.c.d
	tIPv6             // an IPv6 address
	tEllipsis         // ...
	tKeyword          // a reserved word (text is its canonical spelling)
	tChar             // any other single character
)

var kindNames = [...]string{
	tEOF:      "end of file",
	tOption:   "option",
	tFloat:    "number",
	tInt:      "integer",
	tHex:      "hex integer",
	tWord:     "word",
	tString:   "string",
	tBackq:    "command",
	tCode:     "code block",
	tIPv4:     "IPv4 address",
	tIPv6:     "IPv6 address",
	tEllipsis: "'...'",
	tKeyword:  "keyword",
	tChar:     "character",
}

// token is one lexical token. text is the value the parser uses; raw is
// the source text (they differ for strings, options, keywords spelled in
// an alternative way, and words replaced by a definition).
type token struct {
	kind tokKind
	text string
	raw  string
	pos  Pos
	end  Pos // just after the token
	// nl is set when the token is the first one on its line, which is
	// where error recovery restarts.
	nl bool
	// defined is set when the token is a -D symbol (raw) replaced by its
	// definition (text).
	defined bool
	// off is the offset of the token in the source (int32 keeps the
	// token, copied for every one read, as small as without it).
	off int32
}

// sym returns the -D symbol the source wrote for the token, or "".
func (t token) sym() string {
	if t.defined {
		return t.raw
	}
	return ""
}

func (t token) is(c byte) bool { return t.kind == tChar && len(t.text) == 1 && t.text[0] == c }

func (t token) isKw(kw string) bool { return t.kind == tKeyword && t.text == kw }

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tChar:
		return fmt.Sprintf("'%s'", t.text)
	case tKeyword:
		return fmt.Sprintf("%q", t.raw)
	case tString:
		return "string " + shorten(t.raw)
	case tBackq:
		return "command " + shorten(t.raw)
	case tCode:
		return "code block"
	}
	return fmt.Sprintf("%s %s", kindNames[t.kind], shorten(t.raw))
}

func shorten(s string) string {
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return strconv.Quote(s)
}

// keywords maps each reserved word of the reference lexer to its canonical
// spelling.
var keywords = map[string]string{}

func init() {
	for _, k := range strings.Fields(`sa_family sin_port sin_addr msg_name msg_iov
		msg_flags msg_control cmsg_data cmsg_level cmsg_type ee_errno ee_origin
		ee_type ee_code ee_info ee_data scm_sec scm_nsec fd u32 u64 ptr events
		revents onoff linger htons ipv4 ipv6 icmp udp gre raw sum off key seq
		none checksum present encap psp spi mpls label tc ttl inet_addr
		inet6_addr ack eol ecr mss mtu nop sack sackOK md5 TS FO FOEXP ECN e0b
		e1b ceb tos flowlabel flags val win urg wscale ect01 ect0 ect1 noecn ce
		id`) {
		keywords[k] = k
	}
	keywords["GREv0"] = "gre"
	keywords["Flags"] = "flags"
}

// lexer turns a script into tokens on demand, so that memory stays
// proportional to the longest construct rather than the file.
type lexer struct {
	src      string // the script; tokens are substrings of it, not copies
	off      int
	line     int
	lineOff  int // offset of the first byte of the current line
	lastLine int // line of the previous token, to set token.nl
	defines  map[string]string
	comments []*Comment
	start    int // offset of the token being scanned
	errs     *errorSink
	fatal    bool
}

func isWordChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (l *lexer) pos(off int) Pos { return Pos{Line: l.line, Col: off - l.lineOff + 1} }

// indent returns the blanks before offset off on its line, or "" when
// something else precedes it there.
func (l *lexer) indent(off int) string {
	i := off
	for i > 0 && (l.src[i-1] == ' ' || l.src[i-1] == '\t') {
		i--
	}
	if i > 0 && l.src[i-1] != '\n' {
		return ""
	}
	return l.src[i:off]
}

// advance moves to off, counting the newlines crossed.
func (l *lexer) advance(off int) {
	for i := l.off; i < off; i++ {
		if l.src[i] == '\n' {
			l.line++
			l.lineOff = i + 1
		}
	}
	l.off = off
}

func (l *lexer) next() token {
	for {
		t, ok := l.scan()
		if ok {
			t.end = l.pos(l.off)
			t.off = int32(l.start)
			t.nl = t.pos.Line != l.lastLine
			l.lastLine = t.pos.Line
			return t
		}
	}
}

// scan returns the next token, or ok=false after skipping a comment or
// reporting a bad character.
func (l *lexer) scan() (tok token, ok bool) {
	src := l.src
	for l.off < len(src) {
		c := src[l.off]
		if c == ' ' || c == '\t' || c == '\r' {
			l.off++
			continue
		}
		if c == '\n' {
			l.off++
			l.line++
			l.lineOff = l.off
			continue
		}
		break
	}
	if l.fatal || l.off >= len(src) {
		return token{kind: tEOF, pos: l.pos(l.off)}, true
	}
	start := l.off
	l.start = start
	p := l.pos(start)
	c := src[start]
	switch {
	case c == 0:
		l.stop(p, "binary file: NUL byte")
		return token{}, false
	case c == '/' && start+1 < len(src) && src[start+1] == '/':
		end := start + 2
		for end < len(src) && src[end] != '\n' {
			end++
		}
		l.comment(start, end)
		return token{}, false
	case c == '/' && start+1 < len(src) && src[start+1] == '*':
		if end, ok := l.scanPaired(p, start, '*', '/', "comment not terminated"); ok {
			l.comment(start, end)
		}
		return token{}, false
	case c == '%' && start+1 < len(src) && src[start+1] == '{':
		end, ok := l.scanPaired(p, start, '}', '%', "code block not terminated: expected }%")
		if !ok {
			return token{}, false
		}
		raw := src[start:end]
		l.advance(end)
		return token{kind: tCode, text: trimCode(raw[2 : len(raw)-2]), raw: raw, pos: p}, true
	case c == '"' || c == '`':
		end := start + 1
		for end < len(src) && src[end] != c {
			if src[end] == '\\' && end+1 < len(src) && src[end+1] != '\n' {
				end++
			}
			end++
		}
		if end >= len(src) {
			what := "string"
			if c == '`' {
				what = "command"
			}
			l.stop(p, what+" not terminated")
			return token{}, false
		}
		end++
		raw := src[start:end]
		if !utf8.ValidString(raw) {
			l.stop(p, "invalid UTF-8 (binary file?)")
			return token{}, false
		}
		l.advance(end)
		k := tString
		if c == '`' {
			k = tBackq
		}
		return token{kind: k, text: raw[1 : len(raw)-1], raw: raw, pos: p}, true
	case c == '.' && start+2 < len(src) && src[start+1] == '.' && src[start+2] == '.':
		l.off = start + 3
		return token{kind: tEllipsis, text: "...", raw: "...", pos: p}, true
	}
	if t, n := l.lexWordish(start); n > 0 {
		l.off = start + n
		t.pos = p
		return t, true
	}
	if c >= utf8.RuneSelf {
		r, size := utf8.DecodeRuneInString(src[start:])
		if r == utf8.RuneError && size <= 1 {
			l.stop(p, "invalid UTF-8 (binary file?)")
			return token{}, false
		}
		l.off = start + size
		s := src[start : start+size]
		return token{kind: tChar, text: s, raw: s, pos: p}, true
	}
	l.off = start + 1
	s := src[start : start+1]
	return token{kind: tChar, text: s, raw: s, pos: p}, true
}

func (l *lexer) comment(start, end int) {
	c := &Comment{Pos: l.pos(start), Text: l.src[start:end], Indent: l.indent(start)}
	l.advance(end)
	if !utf8.ValidString(c.Text) {
		// Comments may hold any text, but the printer writes them back,
		// so keep them valid for the tools that read its output.
		c.Text = strings.ToValidUTF8(c.Text, "\uFFFD")
	}
	l.comments = append(l.comments, c)
}

// stop reports an error the lexer cannot go on after (the rest of the
// file would be misread): it returns EOF from then on.
func (l *lexer) stop(p Pos, msg string) {
	l.errs.add(p, msg)
	l.fatal = true
}

// scanPaired finds the end of the comment or code block at start (two
// opening bytes, then a body that is, as in the reference lexer, any
// number of (non-a) or (a then non-b), closed by "ab"). It returns the
// offset after the closing pair, or stops the lexer with msg (at p) when
// the file ends first.
func (l *lexer) scanPaired(p Pos, start int, a, b byte, msg string) (int, bool) {
	src := l.src
	for i := start + 2; i < len(src); {
		if src[i] == a {
			if i+1 >= len(src) {
				break
			}
			if src[i+1] == b {
				return i + 2, true
			}
			i += 2
			continue
		}
		i++
	}
	l.stop(p, msg)
	return 0, false
}

// trimCode strips blanks from both ends of a code block, as the reference
// does for Python's sake (newlines are kept).
func trimCode(s string) string { return strings.Trim(s, " \t") }

// lexWordish matches the longest of the reference's keyword, option,
// number, word and address rules at start, preferring the earlier rule on
// a tie, as flex does. n is 0 when none matches.
func (l *lexer) lexWordish(start int) (token, int) {
	src := l.src
	c := src[start]
	var best tokKind
	n := 0
	try := func(k tokKind, m int) {
		if m > n {
			best, n = k, m
		}
	}
	w := 0
	for start+w < len(src) && isWordChar(src[start+w]) {
		w++
	}
	if w > 0 && !isDigit(c) && c != '_' {
		word := src[start : start+w]
		if _, ok := keywords[word]; ok {
			try(tKeyword, w)
		} else if word == "sequence" && start+w < len(src) && src[start+w] == '#' {
			try(tKeyword, w+1)
		}
	}
	if c == '-' && start+1 < len(src) && src[start+1] == '-' {
		o := 2
		for start+o < len(src) && isWordChar(src[start+o]) {
			o++
		}
		if o > 2 {
			try(tOption, o)
		}
	}
	i := start
	if c == '-' {
		i++
	}
	d := i
	for d < len(src) && isDigit(src[d]) {
		d++
	}
	if d < len(src) && src[d] == '.' {
		f := d + 1
		for f < len(src) && isDigit(src[f]) {
			f++
		}
		if f > d+1 {
			try(tFloat, f-start)
		}
	}
	if d > i {
		try(tInt, d-start)
	}
	if c == '0' && start+2 < len(src) && src[start+1] == 'x' && isHexDigit(src[start+2]) {
		h := start + 2
		for h < len(src) && isHexDigit(src[h]) {
			h++
		}
		try(tHex, h-start)
	}
	try(tWord, w)
	if isDigit(c) {
		try(tIPv4, matchIPv4(src[start:]))
	}
	if (isHexDigit(c) || c == ':') && colonSoon(src[start:]) {
		try(tIPv6, matchIPv6Prefix(src[start:]))
	}
	if n == 0 {
		return token{}, 0
	}
	raw := src[start : start+n]
	t := token{kind: best, text: raw, raw: raw}
	switch best {
	case tKeyword:
		if raw == "sequence#" {
			t.text = raw
		} else {
			t.text = keywords[raw]
		}
	case tOption:
		t.text = raw[2:]
	case tWord:
		if len(l.defines) > 0 {
			if v, ok := l.defines[raw]; ok {
				t = defineToken(raw, v)
			}
		}
	}
	return t, n
}

// defineToken is the token a -D definition stands for, as the reference's
// word() decides it: a quoted value is a string or command, a value strtol
// parses whole is an integer, anything else is a word.
func defineToken(name, v string) token {
	t := token{kind: tWord, text: v, raw: name, defined: true}
	if len(v) >= 2 && (v[0] == '"' || v[0] == '`') {
		t.text = v[1 : len(v)-1]
		t.kind = tString
		if v[0] == '`' {
			t.kind = tBackq
		}
		return t
	}
	if v == "" {
		// strtol consumes nothing and stops at the terminating NUL.
		t.kind, t.text = tInt, "0"
		return t
	}
	if strtolParses(v) {
		n, _ := strconv.ParseInt(strings.TrimLeft(v, " \t\n\v\f\r"), 0, 64)
		t.kind = tInt
		t.text = strconv.FormatInt(n, 10)
	}
	return t
}

// strtolParses reports whether C's strtol(v, &end, 0) consumes all of v
// without overflow: optional blanks and sign, then decimal, 0x hex or 0
// octal digits (Go's base-0 syntax also allows 0b, 0o and underscores,
// which strtol does not).
func strtolParses(v string) bool {
	s := strings.TrimLeft(v, " \t\n\v\f\r")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if s == "" || strings.Contains(s, "_") {
		return false
	}
	if len(s) > 1 && s[0] == '0' && strings.ContainsRune("oObB", rune(s[1])) {
		return false
	}
	_, err := strconv.ParseInt(strings.TrimLeft(v, " \t\n\v\f\r"), 0, 64)
	return err == nil
}

// matchIPv4 returns the length of [0-9]+.[0-9]+.[0-9]+.[0-9]+ at the start
// of s, or 0.
func matchIPv4(s string) int {
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i {
			return 0
		}
		i = j
	}
	return i
}

// colonSoon reports whether s has a ':' within its first five bytes,
// which any IPv6 address has (a group is at most four digits): a cheap
// test before matchIPv6Prefix.
func colonSoon(s string) bool {
	for i := 0; i < 5 && i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

// matchIPv6Prefix returns the length of the longest prefix of s that is an
// IPv6 address in the reference lexer's sense, or 0. Its forms are: eight
// groups of 1-4 hex digits; groups, "::", groups, with at most seven
// groups in all; "::ffff:" or "::ffff:0:" then an IPv4 address; one to
// four groups, "::", then an IPv4 address. One pass over s, which stops
// where no longer prefix can match, keeps lexing linear.
func matchIPv6Prefix(s string) int {
	best := 0
	for _, p := range []string{"::ffff:", "::ffff:0:", "::ffff:00:", "::ffff:000:", "::ffff:0000:"} {
		if len(s) > len(p) && s[:len(p)] == p {
			if n := matchIPv4(s[len(p):]); n > 0 {
				best = max(best, len(p)+n)
			}
		}
	}
	i, k, m := 0, 0, 0 // position, groups before "::", groups after
	double := false
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		double, i = true, 2
		best = max(best, 2)
	}
	for {
		g := 0
		for i+g < len(s) && g < 4 && isHexDigit(s[i+g]) {
			g++
		}
		if g == 0 {
			return best
		}
		i += g
		if double {
			m++
		} else {
			k++
		}
		if double && k+m <= 7 || !double && k == 8 {
			best = max(best, i)
		}
		if k+m >= 8 || i >= len(s) || s[i] != ':' {
			return best
		}
		i++ // the ':' after the group
		if i < len(s) && s[i] == ':' {
			if double {
				return best
			}
			double = true
			i++
			if k <= 7 {
				best = max(best, i)
			}
			if k <= 4 {
				if n := matchIPv4(s[i:]); n > 0 {
					best = max(best, i+n)
				}
			}
		}
	}
}
