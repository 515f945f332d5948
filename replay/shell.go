package replay

// This file reads a shell command line the way /bin/sh would and picks out
// the commands whose effect pcap2pkt can have itself, exactly: `sysctl`
// setting keys, `ip tcp_metrics flush all`, `tc qdisc add dev DEV root
// pfifo`, and shell scripts (#!/bin/sh or #!/bin/bash) made only of those,
// with comments, `;`, line continuations, quotes, `$((arithmetic))` and
// redirections to /dev/null or between stdout and stderr. Upstream's
// scripts start with `../common/defaults.sh` (some 27 programs); under a
// VM's emulated processor each program start costs some 10 ms of host time
// (0.32 s a defaults.sh, half a suite's time), and natively a few ms.
//
// Only a leading run of such commands is taken: from the first command
// that is anything else (a variable, a pipe, a glob, another program...),
// the rest of the text goes to /bin/sh as before, which sees the same state
// (these commands set no shell variable and change no folder) and, padded
// with the newlines before it, the same line numbers. A text whose rest
// reads $? (the status of a command the shell did not run) goes to the
// shell whole.

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// shellPlan is a command line split into what pcap2pkt runs itself and what
// the shell runs after it.
type shellPlan struct {
	cmds []*shellCmd
	// rest is the text for /bin/sh, padded with newlines so that its line
	// numbers are the original's; "" when every command is in cmds.
	rest string
}

// StartsShell reports whether running the command line text (a script's
// backquoted command) in folder dir starts /bin/sh: false when pcap2pkt
// runs all of it itself.
func StartsShell(text, dir string) bool {
	return planShell(text, dir).rest != ""
}

// simpleCommand gives the words of text when it is one command of literal
// words (quotes allowed; no expansion, redirection, pipe or second
// command), which the shell would start directly.
func simpleCommand(text string) ([]string, bool) {
	p := &shellParser{s: text}
	p.skipBlanks()
	words, redirs, ok := p.command()
	if !ok || len(redirs) > 0 || strings.ContainsAny(text, "$#") {
		return nil, false
	}
	p.skipSeparators()
	return words, p.i == len(p.s) && !strings.Contains(words[0], "=")
}

// shellEnv is the environment the shell gives the programs it starts:
// this process's, with PWD set to the working folder as dash sets it.
func shellEnv() []string {
	env := os.Environ()
	wd, err := os.Getwd()
	if err != nil {
		return env
	}
	if pwd := os.Getenv("PWD"); pwd != "" && filepath.IsAbs(pwd) {
		a, errA := os.Stat(pwd)
		b, errB := os.Stat(wd)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return env
		}
	}
	return append(env, "PWD="+wd)
}

// shellCmd is one command of the subset, ready to run.
type shellCmd struct {
	redirs []shellRedir
	// One of:
	sysctl *sysctlCmd
	flush  bool        // ip tcp_metrics flush all
	qdisc  string      // tc qdisc add dev QDISC root pfifo
	script []*shellCmd // a shell script's commands
	argv   []string    // the command as the shell would run it
	path   string      // the program the shell would start
}

// shellRedir is one redirection: fd (1 or 2) to /dev/null, or a copy of
// another fd (dup, 1 or 2).
type shellRedir struct {
	fd, dup int // dup 0: /dev/null
}

// sysctlCmd is `sysctl [-q] [-w] [-e] KEY=VALUE...` (procps-ng).
type sysctlCmd struct {
	quiet, ignoreMissing bool
	sets                 []sysctlSet
}

type sysctlSet struct{ key, value string }

// maxScriptDepth bounds scripts that run scripts.
const maxScriptDepth = 8

// planShell splits text, run in folder dir, into the commands of the subset
// it begins with and the rest.
func planShell(text, dir string) shellPlan {
	pl := &shellPlanner{dir: dir, paths: map[string]string{}}
	cmds, stop := pl.commands(text, 0)
	if stop < 0 {
		return shellPlan{cmds: cmds}
	}
	rest := text[stop:]
	if len(cmds) == 0 || strings.Contains(rest, "$?") || strings.Contains(rest, "${?") {
		return shellPlan{rest: text}
	}
	return shellPlan{cmds: cmds, rest: strings.Repeat("\n", strings.Count(text[:stop], "\n")) + rest}
}

// shellPlanner resolves the commands of one command line.
type shellPlanner struct {
	dir string
	// paths caches PATH lookups: under a VM each failed lookup in a
	// folder is a round trip to the host, a few for each program.
	paths map[string]string
}

// lookPath finds a program as the shell would, "" if it finds none.
func (pl *shellPlanner) lookPath(name string) string {
	path, ok := pl.paths[name]
	if !ok {
		path, _ = exec.LookPath(name)
		pl.paths[name] = path
	}
	return path
}

// commands reads commands of the subset from text; stop is the offset of
// the first command that is not one (-1 if none is).
func (pl *shellPlanner) commands(text string, depth int) (cmds []*shellCmd, stop int) {
	p := &shellParser{s: text}
	for {
		p.skipSeparators()
		if p.i >= len(p.s) {
			return cmds, -1
		}
		start := p.i
		words, redirs, ok := p.command()
		if !ok {
			return cmds, start
		}
		c := pl.resolve(words, depth)
		if c == nil {
			return cmds, start
		}
		c.redirs = redirs
		cmds = append(cmds, c)
	}
}

// shellParser reads the subset's syntax: a command ends at a newline or a
// `;` outside quotes; anything the subset does not cover makes command fail.
type shellParser struct {
	s string
	i int
}

func (p *shellParser) peek(k int) byte {
	if p.i+k < len(p.s) {
		return p.s[p.i+k]
	}
	return 0
}

// skipBlanks skips spaces, tabs and line continuations.
func (p *shellParser) skipBlanks() {
	for p.i < len(p.s) {
		switch {
		case p.s[p.i] == ' ' || p.s[p.i] == '\t':
			p.i++
		case p.s[p.i] == '\\' && p.peek(1) == '\n':
			p.i += 2
		default:
			return
		}
	}
}

// skipSeparators skips blanks, comments and empty lines between commands.
func (p *shellParser) skipSeparators() {
	for {
		p.skipBlanks()
		switch p.peek(0) {
		case '\n':
			p.i++
		case '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

// command reads one simple command up to and including its terminator.
func (p *shellParser) command() (words []string, redirs []shellRedir, ok bool) {
	for {
		p.skipBlanks()
		switch c := p.peek(0); {
		case p.i >= len(p.s):
			return words, redirs, len(words) > 0
		case c == '\n' || c == ';':
			p.i++
			return words, redirs, len(words) > 0
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case c == '>' || (c == '1' || c == '2') && p.peek(1) == '>':
			r, ok := p.redirection()
			if !ok {
				return nil, nil, false
			}
			redirs = append(redirs, r)
		case p.wordEnds(0):
			return nil, nil, false // &, |, <, ( or )
		default:
			w, ok := p.word()
			if !ok {
				return nil, nil, false
			}
			words = append(words, w)
		}
	}
}

// redirection reads [1|2]>[>] /dev/null, [1|2]>&1 or [1|2]>&2.
func (p *shellParser) redirection() (shellRedir, bool) {
	r := shellRedir{fd: 1}
	if c := p.peek(0); c != '>' {
		r.fd = int(c - '0')
		p.i++
	}
	p.i++ // '>'
	switch p.peek(0) {
	case '>':
		p.i++
	case '&':
		p.i++
		c := p.peek(0)
		if c != '1' && c != '2' || !p.wordEnds(1) {
			return r, false
		}
		r.dup = int(c - '0')
		p.i++
		return r, true
	case '|':
		return r, false
	}
	p.skipBlanks()
	if p.wordEnds(0) {
		return r, false
	}
	target, ok := p.word()
	return r, ok && target == "/dev/null"
}

// wordEnds reports whether the byte k ahead ends a word.
func (p *shellParser) wordEnds(k int) bool {
	switch p.peek(k) {
	case 0, ' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')':
		return true
	}
	return p.i+k >= len(p.s)
}

// word reads one word and expands it: quotes removed, arithmetic done.
// Expansions the subset does not cover (variables, commands, globs, a
// tilde) fail.
func (p *shellParser) word() (string, bool) {
	var b strings.Builder
	for !p.wordEnds(0) {
		switch c := p.s[p.i]; c {
		case '\'':
			end := strings.IndexByte(p.s[p.i+1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(p.s[p.i+1 : p.i+1+end])
			p.i += end + 2
		case '"':
			p.i++
			if !p.doubleQuoted(&b) {
				return "", false
			}
		case '\\':
			switch p.peek(1) {
			case 0:
				return "", false
			case '\n':
			default:
				b.WriteByte(p.peek(1))
			}
			p.i += 2
		case '$':
			v, ok := p.arithmetic()
			if !ok {
				return "", false
			}
			b.WriteString(v)
		case '`', '*', '?', '[', ']', '{', '}', '~', '!':
			return "", false
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return b.String(), true
}

// doubleQuoted reads the inside of "..." after its opening quote.
func (p *shellParser) doubleQuoted(b *strings.Builder) bool {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case '"':
			p.i++
			return true
		case '\\':
			switch n := p.peek(1); n {
			case '$', '`', '"', '\\':
				b.WriteByte(n)
			case '\n':
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			p.i += 2
		case '$':
			v, ok := p.arithmetic()
			if !ok {
				return false
			}
			b.WriteString(v)
		case '`':
			return false
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return false
}

// arithmetic reads $((EXPR)) of decimal integers, + - * / %, unary minus
// and parentheses, and gives its value as the shell prints it.
func (p *shellParser) arithmetic() (string, bool) {
	if !strings.HasPrefix(p.s[p.i:], "$((") {
		return "", false
	}
	end := strings.Index(p.s[p.i:], "))")
	if end < 0 {
		return "", false
	}
	e := &arith{s: p.s[p.i+3 : p.i+end]}
	// The first "))" may close an inner group: take the longest prefix
	// whose parentheses balance.
	for strings.Count(e.s, "(") > strings.Count(e.s, ")") {
		next := strings.Index(p.s[p.i+end+1:], "))")
		if next < 0 {
			return "", false
		}
		end += next + 1
		e.s = p.s[p.i+3 : p.i+end]
	}
	v, ok := e.expr()
	e.blanks()
	if !ok || e.i != len(e.s) {
		return "", false
	}
	p.i += end + 2
	return strconv.FormatInt(v, 10), true
}

// arith evaluates the arithmetic the subset covers, in 64 bits as dash
// and bash do.
type arith struct {
	s string
	i int
}

func (a *arith) blanks() {
	for a.i < len(a.s) && (a.s[a.i] == ' ' || a.s[a.i] == '\t' || a.s[a.i] == '\n') {
		a.i++
	}
}

func (a *arith) op(ops string) byte {
	a.blanks()
	if a.i < len(a.s) && strings.IndexByte(ops, a.s[a.i]) >= 0 {
		a.i++
		return a.s[a.i-1]
	}
	return 0
}

func (a *arith) expr() (int64, bool) {
	v, ok := a.term()
	for ok {
		switch a.op("+-") {
		case '+':
			w, k := a.term()
			ok = k && (w >= 0) == (v+w >= v)
			v += w
		case '-':
			w, k := a.term()
			ok = k && (w >= 0) == (v-w <= v)
			v -= w
		default:
			return v, true
		}
	}
	return 0, false
}

func (a *arith) term() (int64, bool) {
	v, ok := a.unary()
	for ok {
		o := a.op("*/%")
		if o == 0 {
			return v, true
		}
		w, k := a.unary()
		switch {
		case !k:
			return 0, false
		case o == '*':
			if w != 0 && ((v*w)/w != v || v == math.MinInt64 && w == -1) {
				return 0, false // overflow: not covered
			}
			v = v * w
		case w == 0 || w == -1:
			// Division by zero is the shell's error; by -1 can overflow.
			return 0, false
		case o == '/':
			v = v / w
		default:
			v = v % w
		}
	}
	return 0, false
}

func (a *arith) unary() (int64, bool) {
	switch a.op("-+(") {
	case '-':
		v, ok := a.unary()
		return -v, ok
	case '+':
		return a.unary()
	case '(':
		v, ok := a.expr()
		if !ok || a.op(")") == 0 {
			return 0, false
		}
		return v, true
	}
	start := a.i
	for a.i < len(a.s) && a.s[a.i] >= '0' && a.s[a.i] <= '9' {
		a.i++
	}
	digits := a.s[start:a.i]
	// A leading 0 is octal (0x hexadecimal) to the shell: not covered.
	if digits == "" || len(digits) > 1 && digits[0] == '0' || a.i < len(a.s) && isNameByte(a.s[a.i]) {
		return 0, false
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	return v, err == nil
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// resolve gives the command of the subset that words are, or nil.
func (pl *shellPlanner) resolve(words []string, depth int) *shellCmd {
	name := words[0]
	if strings.Contains(name, "/") {
		if len(words) > 1 || depth >= maxScriptDepth {
			return nil
		}
		return pl.script(name, depth)
	}
	if strings.Contains(name, "=") {
		return nil // an assignment
	}
	path := pl.lookPath(name)
	if path == "" {
		return nil
	}
	c := &shellCmd{argv: words, path: path}
	args := words[1:]
	switch name {
	case "sysctl":
		c.sysctl = parseSysctl(args)
		if c.sysctl == nil {
			return nil
		}
	case "ip":
		if strings.Join(args, " ") != "tcp_metrics flush all" {
			return nil
		}
		c.flush = true
	case "tc":
		if len(args) != 6 || strings.Join(args[:3], " ") != "qdisc add dev" || args[4] != "root" || args[5] != "pfifo" || !validIfName(args[3]) {
			return nil
		}
		c.qdisc = args[3]
	default:
		return nil
	}
	return c
}

// validIfName reports whether s is a name Linux takes for an interface.
func validIfName(s string) bool {
	return s != "" && len(s) < 16 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n")
}

// script gives a shell script whose every command is in the subset,
// or nil. The kernel starts it, as the shell would, by its #! line.
func (pl *shellPlanner) script(name string, depth int) *shellCmd {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(pl.dir, name)
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || unix.Access(path, unix.X_OK) != nil {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	first, body, _ := bytes.Cut(b, []byte("\n"))
	switch strings.TrimRight(string(first), " \t") {
	case "#!/bin/sh", "#!/bin/bash":
	default:
		return nil
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return nil
	}
	// Line one is the #! line, a comment to the shell.
	cmds, stop := pl.commands(string(body), depth+1)
	if stop >= 0 {
		return nil
	}
	return &shellCmd{script: cmds, argv: []string{name}, path: path}
}

// parseSysctl reads procps-ng sysctl's arguments when they only set keys,
// in the forms whose handling is known exactly; nil otherwise.
func parseSysctl(args []string) *sysctlCmd {
	c := &sysctlCmd{}
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		if len(args[i]) < 2 {
			return nil
		}
		for _, o := range args[i][1:] {
			switch o {
			case 'q':
				c.quiet = true
			case 'e':
				c.ignoreMissing = true
			case 'w':
			default:
				return nil
			}
		}
	}
	if i == len(args) {
		return nil
	}
	for _, a := range args[i:] {
		key, value, ok := strings.Cut(a, "=")
		if !ok || !validSysctlKey(key) || value == "" || strings.TrimSpace(value) != value || strings.ContainsAny(value, "\t\n\r") {
			return nil
		}
		if !sysctlWritable(sysctlPath(key)) {
			return nil
		}
		c.sets = append(c.sets, sysctlSet{key, value})
	}
	return c
}

// validSysctlKey: components of letters, digits, '_' and '-' (not first),
// separated by '.' or by '/' (not both: procps swaps them in ways not
// covered here).
func validSysctlKey(k string) bool {
	if k == "" || k[0] == '-' || strings.Contains(k, ".") && strings.Contains(k, "/") {
		return false
	}
	for _, part := range strings.FieldsFunc(k, func(r rune) bool { return r == '.' || r == '/' }) {
		for i := 0; i < len(part); i++ {
			if !isNameByte(part[i]) && part[i] != '-' {
				return false
			}
		}
	}
	return !strings.Contains(k, "..") && !strings.Contains(k, "//") && strings.Trim(k, "./") == k
}

// sysctlWritable reports whether procps-ng's handling of the key's file is
// known: a file its owner may write, or none at all ("cannot stat"). A
// read-only file gets a stale error message and exit status 0 from it.
func sysctlWritable(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return os.IsNotExist(err)
	}
	return writableFile(fi)
}

func writableFile(fi os.FileInfo) bool {
	return fi.Mode().IsRegular() && fi.Mode().Perm()&0o200 != 0
}
