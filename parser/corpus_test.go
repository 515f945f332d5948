package parser

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upstreamDefines are the -D definitions upstream's run_all.py passes
// (ipv4 family).
var upstreamDefines = map[string]string{
	"TFO_COOKIE":        "3021b9d889017eeb",
	"CODE":              "host_unreachable",
	"CMSG_LEVEL_IP":     "SOL_IP",
	"CMSG_TYPE_RECVERR": "IP_RECVERR",
}

const (
	corpusDir = "../../shared/conformance/packetdrill"
	seedFile  = "../../shared/seed/article.pkt"
)

// definesFor returns the definitions upstream runs a script with: the
// run_all.py ones, plus MSS=1440 for the PSP scripts (their commit message
// gives that command line).
func definesFor(path string) map[string]string {
	d := map[string]string{}
	for k, v := range upstreamDefines {
		d[k] = v
	}
	if strings.Contains(filepath.ToSlash(path), "/psp/") {
		d["MSS"] = "1440"
	}
	return d
}

// corpusFiles lists every upstream script plus the seed article script.
func corpusFiles(tb testing.TB) []string {
	tb.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		tb.Skipf("conformance corpus not available: %v", err)
	}
	var files []string
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".pkt") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(seedFile); err == nil {
		files = append(files, seedFile)
	}
	return files
}

// TestCorpus parses every upstream script and the seed, and checks that
// printing is the inverse of parsing and that the canonical form is a
// fixed point.
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	// 177 upstream scripts and the seed: a short walk means a broken path.
	if len(files) < 178 {
		t.Errorf("found %d scripts, want at least 178", len(files))
	}
	withoutDefines, fixedPoints, unchanged := 0, 0, 0
	for _, path := range files {
		s, src := readScript(t, path, &Config{Defines: definesFor(path)})
		if s == nil {
			continue
		}
		if _, err := ParseFile(path, src, nil); err != nil {
			withoutDefines++
			t.Logf("without defines: %v", err)
		}
		out := Format(s)
		if bytes.Equal(out, src) {
			unchanged++
		}
		// As fmt reads it: symbols print as written, defined or not.
		s0, err := ParseFile(path, src, &Config{AllowUndefined: true})
		if err != nil {
			t.Errorf("without defines, undefined symbols allowed: %v", err)
		} else if out0 := Format(s0); !bytes.Equal(out0, out) {
			t.Errorf("%s: printed differently without the defines:\n%s", path, firstDiff(out0, out))
		}
		s2, err := ParseFile(path, out, &Config{Defines: definesFor(path)})
		if err != nil {
			t.Errorf("%s: reparse of printed form: %v", path, err)
			continue
		}
		if !Equal(s, s2) {
			t.Errorf("%s: printed form parses to a different tree", path)
		}
		if out2 := Format(s2); !bytes.Equal(out, out2) {
			t.Errorf("%s: Format is not a fixed point:\n%s", path, firstDiff(out, out2))
		} else {
			fixedPoints++
		}
	}
	t.Logf("%d files, %d round trips to a fixed point, %d unchanged by Format; %d fail to parse without the upstream defines",
		len(files), fixedPoints, unchanged, withoutDefines)
	// Format keeps the layout most upstream scripts have (number
	// spellings, the time column, line breaks in calls); what it changes
	// in the others is blanks inside lines and runs of blank lines.
	if want := 71; unchanged < want {
		t.Errorf("Format leaves %d of the scripts unchanged, want at least %d", unchanged, want)
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return "- " + la[i] + "\n+ " + lb[i]
		}
	}
	return "length differs"
}

// readScript reads and parses the script at path; a parse error fails the
// test (and the script is nil), a read error stops it.
func readScript(tb testing.TB, path string, cfg *Config) (*Script, []byte) {
	tb.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ParseFile(path, src, cfg)
	if err != nil {
		tb.Errorf("%v", err)
		return nil, src
	}
	return s, src
}
