package parser

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// lexAll returns the tokens of src as "kind:text" strings.
func lexAll(src string, defines map[string]string) []string {
	errs := &errorSink{}
	l := &lexer{src: src, line: 1, defines: defines, errs: errs}
	var out []string
	for {
		t := l.next()
		if t.kind == tEOF {
			break
		}
		out = append(out, fmt.Sprintf("%s:%s", kindNames[t.kind], t.text))
	}
	for _, e := range errs.list {
		out = append(out, "error:"+e.Msg)
	}
	return out
}

func TestLexer(t *testing.T) {
	tests := []struct {
		src     string
		defines map[string]string
		want    string
	}{
		{"+0", nil, "character:+ integer:0"},
		{"+.1 0.100 -1 -.5", nil, "character:+ number:.1 number:0.100 integer:-1 number:-.5"},
		{"1:1001(1000)", nil, "integer:1 character:: integer:1001 character:( integer:1000 character:)"},
		{".11:11(0)", nil, "number:.11 character:: integer:11 character:( integer:0 character:)"},
		{"S. P.", nil, "word:S character:. word:P character:."},
		{"0x1f 0x 12ab", nil, "hex integer:0x1f word:0x word:12ab"},
		{"192.168.0.1 1.2.3", nil, "IPv4 address:192.168.0.1 number:1.2 number:.3"},
		{"fd::1 2001:DB8::1 ::1 ::ffff:1.2.3.4 1:2:3:4:5:6:7:8", nil,
			"IPv6 address:fd::1 IPv6 address:2001:DB8::1 IPv6 address:::1 IPv6 address:::ffff:1.2.3.4 IPv6 address:1:2:3:4:5:6:7:8"},
		{"ack acks sackOK sequence# Flags GREv0", nil, "keyword:ack word:acks keyword:sackOK keyword:sequence# keyword:flags keyword:gre"},
		{"--ip_version=ipv4 --x", nil, "option:ip_version character:= keyword:ipv4 option:x"},
		{`"a\"b" ` + "`echo hi`", nil, `string:a\"b command:echo hi`},
		{"...0.010 ... .02", nil, "'...':... number:0.010 '...':... number:.02"},
		{"%{ x = 1 }% %{\nprint(1)\n}%", nil, "code block:x = 1 code block:\nprint(1)\n"},
		{"a // c\nb /* x\n*/ c", nil, "word:a word:b word:c"},
		{"/* a **/ b */ c", nil, "word:c"},
		{"TFO_COOKIE CODE N S Q B", map[string]string{
			"TFO_COOKIE": "3021b9d889017eeb", "CODE": "host_unreachable", "N": "0x10",
			"S": `"str"`, "Q": "`cmd`", "B": "1_000"},
			"word:3021b9d889017eeb word:host_unreachable integer:16 string:str command:cmd word:1_000"},
		{"a\x00b", nil, "word:a error:binary file: NUL byte"},
		{"a \xff", nil, "word:a error:invalid UTF-8 (binary file?)"},
		{`"abc`, nil, "error:string not terminated"},
		{"/* abc", nil, "error:comment not terminated"},
		{"é", nil, "character:é"},
	}
	for _, tt := range tests {
		got := strings.Join(lexAll(tt.src, tt.defines), " ")
		if got != tt.want {
			t.Errorf("lex %q:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

// TestLexerLongRun: a long run of IPv6-like text lexes in linear time
// (the address matcher looks at a bounded window).
func TestLexerLongRun(t *testing.T) {
	src := strings.Repeat("1:2:3:4:5:6:7:8:", 100000)
	toks := lexAll(src, nil)
	if len(toks) == 0 {
		t.Fatal("no tokens")
	}
}

// ipv6Regexp is the reference lexer's ipv6_addr definition written as a
// POSIX (leftmost-longest) regular expression, to check matchIPv6Prefix.
var ipv6Regexp = func() *regexp.Regexp {
	seg := `[0-9a-fA-F]{1,4}`
	ipv4 := `[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+`
	forms := []string{
		`[:][:]`,
		`(` + seg + `[:]){7}` + seg,
		`(` + seg + `[:]){1,7}[:]`,
		`(` + seg + `[:]){1,6}[:]` + seg,
		`(` + seg + `[:]){1,5}([:]` + seg + `){1,2}`,
		`(` + seg + `[:]){1,4}([:]` + seg + `){1,3}`,
		`(` + seg + `[:]){1,3}([:]` + seg + `){1,4}`,
		`(` + seg + `[:]){1,2}([:]` + seg + `){1,5}`,
		seg + `[:](([:]` + seg + `){1,6})`,
		`[:]([:]` + seg + `){1,7}`,
		`[:][:]ffff[:]` + ipv4,
		`[:][:]ffff[:](0){1,4}[:]` + ipv4,
		`(` + seg + `[:]){1,4}[:]` + ipv4,
	}
	return regexp.MustCompilePOSIX(`^(` + strings.Join(forms, "|") + `)`)
}()

// prefixMatch is the length of re's match at the start of s (0 if none).
// POSIX mode makes ^ match after newlines too, hence the index check.
func prefixMatch(re *regexp.Regexp, s string) int {
	loc := re.FindStringIndex(s)
	if loc == nil || loc[0] != 0 {
		return 0
	}
	return loc[1]
}

// TestIPv6MatchesReference compares matchIPv6Prefix with the reference's
// regular expression on random strings of address characters.
func TestIPv6MatchesReference(t *testing.T) {
	for _, s := range []string{"::ffff:1.2.3.4", "::ffff:0:1.2.3.4", "::ffff:0000:1.2.3.4x", "::ffff:00000:1.2.3.4",
		"1:2:3:4::1.2.3.4", "1:2:3:4:5::1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "fd3d:fa7b:d17d::1",
		"12345::1", "1::2::3", ":::", "1:1001", "2001:DB8::1/32"} {
		if got, want := matchIPv6Prefix(s), prefixMatch(ipv6Regexp, s); got != want {
			t.Errorf("matchIPv6Prefix(%q) = %d, reference regexp matches %d", s, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0f:::..1aF9g"
	for i := 0; i < 200000; i++ {
		b := make([]byte, 1+rng.IntN(24))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		want := prefixMatch(ipv6Regexp, s)
		if got := matchIPv6Prefix(s); got != want {
			t.Fatalf("matchIPv6Prefix(%q) = %d, reference regexp matches %d", s, got, want)
		}
	}
}

// referenceRule is one rule of the reference lexer (lexer.l), as a POSIX
// regular expression, with the token kind it gives (-1: skipped text).
type referenceRule struct {
	re   *regexp.Regexp
	kind tokKind
}

// referenceRules lists lexer.l's rules in its order (flex takes the
// longest match, the earlier rule on a tie). Negated classes spell out
// \n, which flex's include and Go's POSIX mode's do not. Backslash
// escapes in strings are left out: they are the one place this lexer
// differs on purpose. (A function, not a variable: keywords is filled by
// an init function.)
func referenceRules() []referenceRule {
	var kws []string
	for k := range keywords {
		kws = append(kws, regexp.QuoteMeta(k))
	}
	kws = append(kws, "sequence#")
	rules := []struct {
		pat  string
		kind tokKind
	}{
		{strings.Join(kws, "|"), tKeyword},
		{`[.][.][.]`, tEllipsis},
		{`--[a-zA-Z0-9_]+`, tOption},
		{`[-]?[0-9]*[.][0-9]+`, tFloat},
		{`[-]?[0-9]+`, tInt},
		{`0x[0-9a-fA-F]+`, tHex},
		{`[a-zA-Z0-9_]+`, tWord},
		{`"([^"]|\n)*"`, tString},
		{"`([^`]|\n)*`", tBackq},
		{`[^ \t\n]`, tChar},
		{`[ \t\n]+`, -1},
		{`//[^\n]*\n`, -1},
		{`/\*([^*]|\n|\*([^/]|\n))*\*/`, -1},
		{`%\{([^}]|\n|\}([^%]|\n))*\}%`, tCode},
		{`[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+`, tIPv4},
	}
	var out []referenceRule
	for _, r := range rules {
		out = append(out, referenceRule{regexp.MustCompilePOSIX(`^(` + r.pat + `)`), r.kind})
	}
	return append(out, referenceRule{ipv6Regexp, tIPv6})
}

// referenceLex tokenises src with referenceRules.
func referenceLex(rules []referenceRule, src string) []string {
	var out []string
	for len(src) > 0 {
		best, kind := 0, tokKind(-1)
		for _, r := range rules {
			if n := prefixMatch(r.re, src); n > best {
				best, kind = n, r.kind
			}
		}
		if kind >= 0 {
			out = append(out, fmt.Sprintf("%s:%s", kindNames[kind], src[:best]))
		}
		src = src[best:]
	}
	return out
}

// TestLexerMatchesReference compares the lexer with referenceRules on
// random texts made of the pieces scripts are made of.
func TestLexerMatchesReference(t *testing.T) {
	pieces := []string{"ack", "acks", "S", ".", "..", ":", "::", "0", "1", "9", "x", "0x", "f", "a", "-", "--",
		"_", " ", "\n", "\"", "`", "%{", "}%", "}", "%", "/", "*", "//", "/*", "*/", "#", "sequence", "ffff",
		"1.2", "e0b", "ect0", "ect01", "GREv0", "ipv4", "+", "<", ">", "(", ")", "[", "]", ",", "="}
	rng := rand.New(rand.NewPCG(3, 4))
	rules := referenceRules()
	compared, n := 0, 20000
	if testing.Short() {
		n = 4000
	}
	for i := 0; i < n; i++ {
		var b strings.Builder
		for n := 1 + rng.IntN(12); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		b.WriteString("\n")
		src := b.String()
		errs := &errorSink{}
		l := &lexer{src: src, line: 1, errs: errs}
		var got []string
		for tok := l.next(); tok.kind != tEOF; tok = l.next() {
			got = append(got, fmt.Sprintf("%s:%s", kindNames[tok.kind], tok.raw))
		}
		if len(errs.list) > 0 {
			continue // unterminated constructs: an error here, stray characters there
		}
		compared++
		want := referenceLex(rules, src)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("lex %q:\n got %q\nwant %q", src, got, want)
		}
	}
	if compared < n/2 {
		t.Errorf("only %d inputs compared", compared)
	}
}
