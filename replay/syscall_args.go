package replay

// This file is the argument reader of the system call handlers: each
// handler reads its arguments in one go and checks for an error once.

import (
	"fmt"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// argReader reads a call's arguments and keeps the first error, as
// bufio.Scanner does: a handler reads them all, then checks err() once.
// Once an error is kept, reads evaluate nothing and return zero values.
type argReader struct {
	c     *callContext
	first error
}

// args starts reading the call's arguments, checking that there are n of
// them, or from n to max (fcntl's and ioctl's 2-3).
func (c *callContext) args(n int, max ...int) *argReader {
	a := &argReader{c: c}
	switch {
	case len(max) == 0 && len(c.Args) != n:
		a.failf("expected %d args but got %d", n, len(c.Args))
	case len(max) > 0 && (len(c.Args) < n || len(c.Args) > max[0]):
		a.failf("%s expected %d-%d args but got %d", c.Call.Name, n, max[0], len(c.Args))
	}
	return a
}

// err is the first error of the reads so far.
func (a *argReader) err() error { return a.first }

// ok reports whether every read so far succeeded.
func (a *argReader) ok() bool { return a.first == nil }

// keep keeps err if it is the first, and reports whether there is none.
func (a *argReader) keep(err error) bool {
	if a.first == nil {
		a.first = err
	}
	return a.first == nil
}

// failf keeps an error the handler found in what it read.
func (a *argReader) failf(format string, args ...any) { a.keep(fmt.Errorf(format, args...)) }

// read runs an evaluation of the handler's own, unless a read failed.
func read[T any](a *argReader, eval func() (T, error)) T {
	var v T
	if a.ok() {
		var err error
		v, err = eval()
		a.keep(err)
	}
	return v
}

// arg is argument i (nil after an error, or when it is missing).
func (a *argReader) arg(i int) parser.Expr {
	if a.ok() && (i < 0 || i >= len(a.c.Args)) {
		a.failf("argument %d missing", i+1)
	}
	if !a.ok() {
		return nil
	}
	return a.c.Args[i]
}

// int evaluates argument i as an integer.
func (a *argReader) int(i int) int64 {
	e := a.arg(i)
	return read(a, func() (int64, error) { return a.c.Eval.int(e) })
}

// int32 evaluates argument i as a C int.
func (a *argReader) int32(i int) int32 {
	e := a.arg(i)
	return read(a, func() (int32, error) { return a.c.Eval.int32(e) })
}

// bracketedInt32 evaluates argument i written as `[N]` (an int in memory).
func (a *argReader) bracketedInt32(i int) int32 {
	e := a.arg(i)
	return read(a, func() (int32, error) { return a.c.Eval.bracketedInt32(e) })
}

// scriptFD evaluates argument i as a script fd.
func (a *argReader) scriptFD(i int) int { return int(a.int32(i)) }

// fd evaluates argument i as a script fd and returns its live fd.
func (a *argReader) fd(i int) int {
	_, live := a.fds(i)
	return live
}

// fds evaluates argument i as a script fd and returns it with its live fd,
// for calls that need both (the socket table is keyed by script fd).
func (a *argReader) fds(i int) (scriptFD, liveFD int) {
	scriptFD = a.scriptFD(i)
	liveFD = read(a, func() (int, error) { return a.c.toLiveFD(scriptFD) })
	return scriptFD, liveFD
}

// isEllipsis reports whether argument i is `...`.
func (a *argReader) isEllipsis(i int) bool {
	return a.ok() && i < len(a.c.Args) && isEllipsis(a.c.Args[i])
}

// ellipsis checks that argument i is `...`.
func (a *argReader) ellipsis(i int) {
	if e := a.arg(i); a.ok() && !isEllipsis(e) {
		a.failf("argument %d must be `...` (the replay fills it in)", i+1)
	}
}

// fdWithAddress reads (fd, ..., ...) of bind and accept: the address and
// its length are the replay's to fill in.
func (a *argReader) fdWithAddress() int {
	fd := a.fd(0)
	a.ellipsis(1)
	a.ellipsis(2)
	return fd
}

// family evaluates an address argument that is `...` (-1: the live
// address) or a bare family.
func (a *argReader) family(i int) int64 {
	if a.isEllipsis(i) {
		return -1
	}
	return int64(a.int32(i))
}

// maxBuffer bounds the buffers a script can ask for, so that a typo in a
// count fails the line instead of exhausting memory.
const maxBuffer = 64 << 20

// buffer evaluates a buffer argument: a zeroed buffer of n bytes, or nil
// for NULL.
func (a *argReader) buffer(i, n int) []byte {
	e := a.arg(i)
	isNull := read(a, func() (bool, error) { return a.c.Eval.buffer(e) })
	if !a.ok() || isNull {
		return nil
	}
	if n < 0 || n > maxBuffer {
		a.failf("count %d out of range 0..%d", n, maxBuffer)
		return nil
	}
	return make([]byte, max(n, 1))
}
