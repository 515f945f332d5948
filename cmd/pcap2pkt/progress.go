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

// verifyStatus keeps one status line on a terminal while verify replays a
// capture's connections (a replay takes a second or more, and a capture
// may hold dozens): how many are done, passed and failed, and which
// connections are being replayed.
type verifyStatus struct {
	mu                      sync.Mutex
	w                       io.Writer
	on                      bool
	total, done, pass, fail int
	running                 map[int]bool // flow numbers
}

func newVerifyStatus(w io.Writer, total int, on bool) *verifyStatus {
	return &verifyStatus{w: w, on: on, total: total, running: map[int]bool{}}
}

// start notes that flow n's replays began.
func (s *verifyStatus) start(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running[n] = true
	s.draw()
}

// finish notes flow n's verdict.
func (s *verifyStatus) finish(n int, result string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, n)
	s.done++
	switch result {
	case "pass":
		s.pass++
	case "FAIL", "error":
		s.fail++
	}
	s.draw()
}

func (s *verifyStatus) draw() {
	if !s.on {
		return
	}
	var flows []int
	for n := range s.running {
		flows = append(flows, n)
	}
	slices.Sort(flows)
	line := fmt.Sprintf("verify: %d of %d connection(s) done, %d passed, %d failed", s.done, s.total, s.pass, s.fail)
	if len(flows) > 0 {
		var names []string
		for _, n := range flows {
			names = append(names, strconv.Itoa(n))
		}
		line += "; replaying flow " + strings.Join(names, ", ")
	}
	if len(line) > 120 {
		line = line[:117] + "..."
	}
	fmt.Fprintf(s.w, "\r\033[K%s", line)
}

// clear removes the status line.
func (s *verifyStatus) clear() {
	if s.on {
		fmt.Fprint(s.w, "\r\033[K")
	}
}
