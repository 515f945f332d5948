package replay

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestLookupSymbol(t *testing.T) {
	tests := []struct {
		name string
		want int64
	}{
		{"SOCK_STREAM", 1},
		{"IPPROTO_TCP", 6},
		{"SOL_TCP", 6},
		{"SO_REUSEADDR", 2},
		{"MSG_ZEROCOPY", 0x4000000},
		{"MSG_FASTOPEN", 0x20000000},
		{"TCP_FASTOPEN_CONNECT", 30},
		{"TCP_CM_INQ", 36},
		{"SO_EE_ORIGIN_ZEROCOPY", 5},
		{"SO_EE_ORIGIN_TIMESTAMPING", 4},
		{"SCM_TSTAMP_ACK", 2},
		{"SOF_TIMESTAMPING_OPT_ID", 1 << 7},
		{"EPOLLEXCLUSIVE", 1 << 28},
		{"POLLRDNORM", 0x40},
		{"TCP_NLA_SRTT", 22},
		{"TCP_CA_LOSS", 4},
		{"NULL", 0},
		{"EINPROGRESS", 115},
		{"EWOULDBLOCK", 11},
		{"SIOCINQ", 0x541b},
		{"FIONREAD", 0x541b},
	}
	for _, tc := range tests {
		got, ok := lookupSymbol(tc.name)
		if !ok || got != tc.want {
			t.Errorf("LookupSymbol(%q) = %d, %v; want %d, true", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := lookupSymbol("NO_SUCH_THING"); ok {
		t.Errorf("LookupSymbol(NO_SUCH_THING) resolved")
	}
}

func TestErrnoNames(t *testing.T) {
	tests := []struct {
		e    syscall.Errno
		name string
	}{
		{syscall.EAGAIN, "EAGAIN"},
		{syscall.EDEADLK, "EDEADLK"},
		{syscall.EOPNOTSUPP, "EOPNOTSUPP"},
		{syscall.ETIMEDOUT, "ETIMEDOUT"},
		{syscall.Errno(4000), "errno 4000"},
	}
	for _, tc := range tests {
		if got := errnoName(tc.e); got != tc.name {
			t.Errorf("ErrnoName(%d) = %q, want %q", int(tc.e), got, tc.name)
		}
	}
	for name, e := range errnos {
		got, ok := lookupErrno(name)
		if !ok || got != e {
			t.Errorf("lookupErrno(%q) = %d, %v", name, got, ok)
		}
		if !errnoAliases[name] && errnoName(e) != name {
			t.Errorf("ErrnoName(%d) = %q, want %q", int(e), errnoName(e), name)
		}
	}
}

// corpusDir is the upstream test corpus, read in place.
const corpusDir = "../../shared/conformance/packetdrill/gtests/net"

// corpusDefines are the -D names the conformance runs define; they are
// substituted before evaluation and so are not symbols.
var corpusDefines = map[string]bool{
	"TFO_COOKIE": true, "CODE": true, "CMSG_LEVEL_IP": true, "CMSG_TYPE_RECVERR": true,
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	codeBlock    = regexp.MustCompile(`(?s)%\{.*?\}%`)
	backquoted   = regexp.MustCompile("(?s)`.*?`")
	quoted       = regexp.MustCompile(`"(?:[^"\\\n]|\\.)*"`)
	syscallStart = regexp.MustCompile(`(?m)^[ \t]*(?:[-+0-9.*~]+[ \t]*)?(?:\.\.\.[ \t]*[-+0-9.]+[ \t]*)?([a-z_][a-z_0-9]*)\(`)
	upperWord    = regexp.MustCompile(`\b[A-Z][A-Z0-9_]+\b`)
)

// corpusSyscallWords returns, per corpus file, the upper-case words written
// in system call lines (arguments, result and errno).
func corpusSyscallWords(t *testing.T) map[string][]string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	out := map[string][]string{}
	err := filepath.WalkDir(corpusDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pkt") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := blockComment.ReplaceAllString(string(data), "")
		text = codeBlock.ReplaceAllString(text, "")
		text = backquoted.ReplaceAllString(text, "")
		text = quoted.ReplaceAllString(text, `""`)
		for _, m := range syscallStart.FindAllStringIndex(text, -1) {
			call := syscallText(text, m[1]-1)
			out[path] = append(out[path], upperWord.FindAllString(call, -1)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// syscallText returns a call from its opening parenthesis at open through
// the end of the line holding the matching closing parenthesis, without
// comments and without the parenthesised notes after the result.
func syscallText(text string, open int) string {
	depth := 0
	i := open
	for ; i < len(text); i++ {
		switch text[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
		if depth == 0 {
			break
		}
	}
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		end = len(text) - i
	}
	rest := text[i : i+end]
	if c := strings.Index(rest, "//"); c >= 0 {
		rest = rest[:c]
	}
	if c := strings.Index(rest[1:], "("); c >= 0 {
		rest = rest[:c+1]
	}
	args := text[open:i]
	var lines []string
	for _, l := range strings.Split(args, "\n") {
		if c := strings.Index(l, "//"); c >= 0 {
			l = l[:c]
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n") + rest
}

func TestCorpusSymbolsResolve(t *testing.T) {
	words := corpusSyscallWords(t)
	seen := 0
	for path, ws := range words {
		for _, w := range ws {
			seen++
			if corpusDefines[w] {
				continue
			}
			if _, ok := lookupSymbol(w); !ok {
				t.Errorf("%s: unknown symbol %q", path, w)
			}
		}
	}
	if seen < 1000 {
		t.Errorf("found only %d symbol uses in the corpus; the scan is broken", seen)
	}
}
