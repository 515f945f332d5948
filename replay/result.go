package replay

// This file defines how a failed run is reported: a ScriptError names the
// script line, says what differed in one line, and carries the details
// (expected and actual packets in script syntax, timing) below it.

import (
	"fmt"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// ScriptError is a failure at one line of a script.
type ScriptError struct {
	File   string
	Pos    parser.Pos
	Msg    string // one line: what differed
	Detail string // optional further lines (packet dumps, timing)
	Err    error  // the underlying error, if any
}

// Line is the 1-based line of the failure (0 when unknown).
func (e *ScriptError) Line() int { return e.Pos.Line }

func (e *ScriptError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.IsValid() {
		fmt.Fprintf(&b, ":%d", e.Pos.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Detail != "" {
		b.WriteString("\n")
		b.WriteString(strings.TrimRight(e.Detail, "\n"))
	}
	return b.String()
}

func (e *ScriptError) Unwrap() error { return e.Err }

// errorKind says which --non_fatal class a failure belongs to.
type errorKind int

const (
	fatalError   errorKind = iota // never downgraded
	packetError                   // --non_fatal=packet makes it a warning
	syscallError                  // --non_fatal=syscall makes it a warning
)

// eventError is a failure while running one event, before the file and
// line are attached.
type eventError struct {
	kind   errorKind
	msg    string
	detail string
	err    error
}

func (e *eventError) Error() string { return e.msg }
func (e *eventError) Unwrap() error { return e.err }

func fatalf(format string, args ...any) *eventError {
	return &eventError{kind: fatalError, msg: fmt.Sprintf(format, args...)}
}
