package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// progressThreshold is the capture size from which reading it shows a
// progress line (on a terminal only).
const progressThreshold = 64 << 20

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readProgress wraps a capture being read and, on a terminal, keeps a line
// saying how far the reading has come. Stop clears the line.
type readProgress struct {
	r     io.Reader
	n     atomic.Int64
	total int64
	name  string
	out   io.Writer
	done  chan struct{}
	wg    sync.WaitGroup
}

func (p *readProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// withProgress returns r itself, or a reader that reports progress to
// stderr when r is a large file and stderr a terminal.
func withProgress(r io.Reader, name string, stderr io.Writer) (io.Reader, func()) {
	f, ok := r.(*os.File)
	if !ok || !isTerminal(stderr) {
		return r, func() {}
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() < progressThreshold {
		return r, func() {}
	}
	p := &readProgress{r: r, total: fi.Size(), name: name, out: stderr, done: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p, func() {
		close(p.done)
		p.wg.Wait()
		fmt.Fprint(p.out, "\r\033[K")
	}
}

func (p *readProgress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			n := p.n.Load()
			rate := float64(n) / time.Since(start).Seconds()
			fmt.Fprintf(p.out, "\r\033[Kreading %s: %d%% (%d of %d MB, %.0f MB/s)", p.name, n*100/p.total, n>>20, p.total>>20, rate/(1<<20))
		}
	}
}

// statusLine keeps one line on a terminal while work runs, as replay's
// suites and verify do (a replay takes a second or more, and a suite or a
// capture holds dozens): how much is done, passed and failed (by counts),
// and what is running (by name, sorted), each redraw replacing the line.
// Off (not a terminal, or a report format other than text), it writes
// nothing.
type statusLine[K comparable] struct {
	mu                      sync.Mutex
	w                       io.Writer
	on                      bool
	counts                  func(done, total, pass, fail int) string
	name                    func(K) string
	running                 string // what precedes the names of the running
	total, done, pass, fail int
	now                     map[K]bool
}

func newStatusLine[K comparable](w io.Writer, total int, on bool, counts func(done, total, pass, fail int) string, running string, name func(K) string) *statusLine[K] {
	return &statusLine[K]{w: w, on: on, total: total, counts: counts, running: running, name: name, now: map[K]bool{}}
}

// start notes that k began.
func (s *statusLine[K]) start(k K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now[k] = true
	s.draw()
}

// finish notes that k ended, and whether it passed or failed (or
// neither: skipped).
func (s *statusLine[K]) finish(k K, passed, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.now, k)
	s.done++
	switch {
	case passed:
		s.pass++
	case failed:
		s.fail++
	}
	s.draw()
}

func (s *statusLine[K]) draw() {
	if !s.on {
		return
	}
	var names []string
	for k := range s.now {
		names = append(names, s.name(k))
	}
	slices.Sort(names)
	line := s.counts(s.done, s.total, s.pass, s.fail)
	if len(names) > 0 {
		line += "; " + s.running + " " + strings.Join(names, ", ")
	}
	if len(line) > 120 {
		line = line[:117] + "..."
	}
	fmt.Fprintf(s.w, "\r\033[K%s", line)
}

// clear removes the line.
func (s *statusLine[K]) clear() {
	if s.on {
		fmt.Fprint(s.w, "\r\033[K")
	}
}

// newVerifyStatus is verify's status line over total connections, named
// by their flow numbers.
func newVerifyStatus(w io.Writer, total int, on bool) *statusLine[int] {
	return newStatusLine(w, total, on, func(done, total, pass, fail int) string {
		return fmt.Sprintf("verify: %d of %d connection(s) done, %d passed, %d failed", done, total, pass, fail)
	}, "replaying flow", strconv.Itoa)
}
