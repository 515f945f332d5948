package replay

// This file defines how a failed run is reported: a *parser.Error names the
// script line, says what differed in one line, and carries the details
// (expected and actual packets in script syntax, timing) below it.

import (
	"fmt"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// lineOf is the position a replay reports a failure at: the line of the
// event (its column says nothing of what differed).
func lineOf(p parser.Pos) parser.Pos { return parser.Pos{Line: p.Line} }

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
