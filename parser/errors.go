package parser

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Error is one problem with a script, at a position: a syntax error found
// by the parser, or a failure found by running it (a replay reports the
// line of the event, column 0, and what differed in Msg, with the packets
// or times in Detail). It is the one error type for both, as go/scanner
// has one.
type Error struct {
	File   string
	Pos    Pos    // Col is 0 when only the line is known
	Msg    string // one line
	Detail string // optional further lines (packet dumps, timing)
	Err    error  // the underlying error, if any
}

// Error prints "file:line:col: msg" ("file:line: msg" without a column),
// then the detail lines.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	switch {
	case e.Pos.Col > 0:
		fmt.Fprintf(&b, "%d:%d: ", e.Pos.Line, e.Pos.Col)
	case e.Pos.Line > 0:
		fmt.Fprintf(&b, "%d: ", e.Pos.Line)
	case e.File == "":
		b.WriteString("-: ")
	default:
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	if e.Detail != "" {
		b.WriteByte('\n')
		b.WriteString(strings.TrimRight(e.Detail, "\n"))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errorJSON is the JSON form of an Error: what `--format=json` prints for
// a failure, and what a sandboxed replay hands its parent.
type errorJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

// MarshalJSON writes {"file", "line", "column", "message", "detail"}.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorJSON{File: e.File, Line: e.Pos.Line, Column: e.Pos.Col, Message: e.Msg, Detail: e.Detail})
}

// UnmarshalJSON reads what MarshalJSON writes (Err is not carried).
func (e *Error) UnmarshalJSON(b []byte) error {
	var j errorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Error{File: j.File, Pos: Pos{Line: j.Line, Col: j.Column}, Msg: j.Message, Detail: j.Detail}
	return nil
}

// ErrorList is a list of errors sorted by position.
type ErrorList []*Error

func (l ErrorList) Len() int      { return len(l) }
func (l ErrorList) Swap(i, j int) { l[i], l[j] = l[j], l[i] }
func (l ErrorList) Less(i, j int) bool {
	a, b := l[i], l[j]
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Pos.Line != b.Pos.Line {
		return a.Pos.Line < b.Pos.Line
	}
	return a.Pos.Col < b.Pos.Col
}

// Sort sorts the list by file and position, keeping the order of errors
// reported at the same position.
func (l ErrorList) Sort() { sort.Stable(l) }

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	return fmt.Sprintf("%s (and %d more errors)", l[0], len(l)-1)
}

// Err returns nil for an empty list and the list itself otherwise, so that
// callers can return it as an error without a typed-nil trap.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
