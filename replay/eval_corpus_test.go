package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// corpusFamilies are the -D definitions of the conformance runs.
var corpusFamilies = map[string]map[string]string{
	"ipv4": {"TFO_COOKIE": "3021b9d889017eeb", "CODE": "host_unreachable",
		"CMSG_LEVEL_IP": "SOL_IP", "CMSG_TYPE_RECVERR": "IP_RECVERR"},
	"ipv4-mapped-ipv6": {"TFO_COOKIE": "3021b9d889017eeb", "CODE": "host_unreachable",
		"CMSG_LEVEL_IP": "SOL_IPV6", "CMSG_TYPE_RECVERR": "IPV6_RECVERR"},
	"ipv6": {"TFO_COOKIE": "c1d1e9742a47a9bc",
		"CMSG_LEVEL_IP": "SOL_IPV6", "CMSG_TYPE_RECVERR": "IPV6_RECVERR"},
}

// corpusScripts parses every script of the corpus's tcp folder (the one
// with reference verdicts) once per family.
func corpusScripts(t *testing.T, fn func(family string, s *parser.Script)) {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	err := filepath.WalkDir(filepath.Join(corpusDir, "tcp"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pkt") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for fam, defs := range corpusFamilies {
			s, err := parser.ParseFile(path, src, &parser.Config{Defines: defs})
			if err != nil {
				t.Errorf("%s: %v", fam, err)
				continue
			}
			fn(fam, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// walkExpr calls fn on e and every expression inside it.
func walkExpr(e parser.Expr, fn func(parser.Expr)) {
	if e == nil {
		return
	}
	fn(e)
	switch x := e.(type) {
	case *parser.Binary:
		walkExpr(x.X, fn)
		walkExpr(x.Y, fn)
	case *parser.List:
		for _, el := range x.Elems {
			walkExpr(el, fn)
		}
	case *parser.Msghdr:
		walkExpr(x.Iov, fn)
		walkExpr(x.Flags, fn)
		walkExpr(x.Control, fn)
	case *parser.Pollfd:
		walkExpr(x.FD, fn)
		walkExpr(x.Events, fn)
		walkExpr(x.Revents, fn)
	case *parser.EpollEvent:
		walkExpr(x.Events, fn)
		walkExpr(x.Value, fn)
	case *parser.Cmsg:
		walkExpr(x.Level, fn)
		walkExpr(x.Type, fn)
		walkExpr(x.Data, fn)
	case *parser.SockExtendedErr:
		for _, f := range []parser.Expr{x.Errno, x.Origin, x.Type, x.Code, x.Info, x.Data} {
			walkExpr(f, fn)
		}
	}
}

// TestCorpusParsedSymbols checks, on the parsed corpus, that every word in
// a system call resolves, every errno is known, and every msghdr, iovec
// array and control message list of the corpus evaluates.
func TestCorpusParsedSymbols(t *testing.T) {
	calls := 0
	corpusScripts(t, func(fam string, s *parser.Script) {
		ev := &evaluator{}
		for _, e := range s.Events {
			sc, ok := e.Action.(*parser.Syscall)
			if !ok {
				continue
			}
			calls++
			for _, a := range append(append([]parser.Expr{}, sc.Args...), sc.Result) {
				walkExpr(a, func(x parser.Expr) {
					if w, ok := x.(*parser.Word); ok {
						if _, ok := lookupSymbol(w.Name); !ok {
							t.Errorf("%s:%s (%s): unknown symbol %q", s.File, w.Pos, fam, w.Name)
						}
					}
					if m, ok := x.(*parser.Msghdr); ok {
						if _, err := msghdr(ev, m); err != nil {
							t.Errorf("%s (%s): %v", s.File, fam, err)
						}
					}
				})
			}
			if sc.Errno != "" {
				if _, ok := lookupErrno(sc.Errno); !ok {
					t.Errorf("%s:%s (%s): unknown errno %q", s.File, sc.Pos, fam, sc.Errno)
				}
			}
			if _, err := ev.int(sc.Result); err != nil {
				t.Errorf("%s:%s (%s): result: %v", s.File, sc.Pos, fam, err)
			}
		}
	})
	if calls < 1000 {
		t.Errorf("only %d system calls in the corpus; the walk is broken", calls)
	}
}
