package parser

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// markerRE finds the expected-error markers of a test file: ERROR
// followed by a quoted regular expression, as in go/types testdata.
var markerRE = regexp.MustCompile(`ERROR ("(?:[^"\\]|\\.)*")`)

type marker struct {
	line int
	re   *regexp.Regexp
	hit  bool
}

func readMarkers(t *testing.T, src []byte) []*marker {
	t.Helper()
	var ms []*marker
	for i, line := range strings.Split(string(src), "\n") {
		for _, m := range markerRE.FindAllStringSubmatch(line, -1) {
			// The marker is a regular expression; only \" is unescaped.
			pat := strings.ReplaceAll(m[1][1:len(m[1])-1], `\"`, `"`)
			re, err := regexp.Compile(pat)
			if err != nil {
				t.Fatalf("line %d: bad marker %s: %v", i+1, m[1], err)
			}
			ms = append(ms, &marker{line: i + 1, re: re})
		}
	}
	return ms
}

// matchMarkers checks that each error matches a marker on its line and
// that every marker is matched.
func matchMarkers(t *testing.T, path string, errs ErrorList, ms []*marker) {
	t.Helper()
	for _, e := range errs {
		found := false
		for _, m := range ms {
			if m.line == e.Pos.Line && m.re.MatchString(e.Msg) {
				m.hit, found = true, true
				break
			}
		}
		if !found {
			t.Errorf("%s: unexpected error: %v", path, e)
		}
	}
	for _, m := range ms {
		if !m.hit {
			t.Errorf("%s:%d: expected error matching %q not reported", path, m.line, m.re)
		}
	}
}

func testdataFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.pkt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in testdata/%s: %v", dir, err)
	}
	return files
}

// TestParseErrors checks the errors ParseFile reports for the files of
// testdata/errors against the markers they carry.
func TestParseErrors(t *testing.T) {
	for _, path := range testdataFiles(t, "errors") {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ms := readMarkers(t, src)
		if len(ms) > maxErrors {
			t.Fatalf("%s: %d markers, but at most %d errors are reported", path, len(ms), maxErrors)
		}
		_, err = ParseFile(path, src, nil)
		var errs ErrorList
		if err != nil {
			var ok bool
			if errs, ok = err.(ErrorList); !ok {
				t.Fatalf("%s: error is %T, want ErrorList", path, err)
			}
		}
		matchMarkers(t, path, errs, ms)
	}
}

// TestCheck checks the errors Check reports for the files of
// testdata/check, which must parse.
func TestCheck(t *testing.T) {
	for _, path := range testdataFiles(t, "check") {
		s, src := readScript(t, path, nil)
		if s == nil {
			continue
		}
		matchMarkers(t, path, Check(s), readMarkers(t, src))
	}
}

// TestCheckCorpus: the upstream scripts pass the static checks.
func TestCheckCorpus(t *testing.T) {
	for _, path := range corpusFiles(t) {
		s, _ := readScript(t, path, &Config{Defines: definesFor(path)})
		if s == nil {
			continue
		}
		if errs := Check(s); len(errs) > 0 {
			t.Errorf("%v", errs)
		}
	}
}
