package main

import (
	"bytes"
	"fmt"
	"strings"
)

// unifiedDiff returns a unified diff (3 lines of context) from a to b, both
// named name, or nil when they are equal. It uses Myers' O(ND) algorithm, so
// a reformatting that touches few lines of a large file stays cheap.
func unifiedDiff(name string, a, b []byte) []byte {
	if bytes.Equal(a, b) {
		return nil
	}
	x, y := splitLines(a), splitLines(b)
	ops := myers(x, y)
	var out bytes.Buffer
	fmt.Fprintf(&out, "--- %s\n+++ %s (formatted)\n", name, name)
	const context = 3
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk: from context lines before the first change to context
		// lines after the last change that is within 2*context of the next.
		start := max(i-context, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		ai, bi := ops[start].ai, ops[start].bi
		var an, bn int
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				an++
			}
			if op.kind != '-' {
				bn++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(ai, an), hunkRange(bi, bn))
		for _, op := range ops[start:end] {
			out.WriteByte(op.kind)
			out.WriteString(op.line)
			if !strings.HasSuffix(op.line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return out.Bytes()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(b []byte) []string {
	s := string(b)
	var lines []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

type diffOp struct {
	kind   byte // ' ', '-' or '+'
	line   string
	ai, bi int // index of the line in a and b where the op applies
}

// myers computes a shortest edit script turning x into y.
func myers(x, y []string) []diffOp {
	n, m := len(x), len(y)
	maxD := n + m
	offset := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	for d := 0; d <= maxD; d++ {
		trace = append(trace, append([]int(nil), v...))
		for k := -d; k <= d; k += 2 {
			var i int
			if k == -d || (k != d && v[offset+k-1] < v[offset+k+1]) {
				i = v[offset+k+1]
			} else {
				i = v[offset+k-1] + 1
			}
			j := i - k
			for i < n && j < m && x[i] == y[j] {
				i++
				j++
			}
			v[offset+k] = i
			if i >= n && j >= m {
				return backtrack(x, y, trace, d, offset)
			}
		}
	}
	return nil
}

func backtrack(x, y []string, trace [][]int, d, offset int) []diffOp {
	var ops []diffOp
	i, j := len(x), len(y)
	for ; d > 0; d-- {
		prev := trace[d] // the furthest reaching paths after round d-1
		k := i - j
		pk := k - 1
		if k == -d || (k != d && prev[offset+k-1] < prev[offset+k+1]) {
			pk = k + 1
		}
		pi := prev[offset+pk]
		pj := pi - pk
		mi, mj := pi, pj+1 // where the one edit of this round lands
		if pk == k-1 {
			mi, mj = pi+1, pj
		}
		for i > mi && j > mj {
			i--
			j--
			ops = append(ops, diffOp{' ', x[i], i, j})
		}
		if pk == k+1 {
			j--
			ops = append(ops, diffOp{'+', y[j], i, j})
		} else {
			i--
			ops = append(ops, diffOp{'-', x[i], i, j})
		}
	}
	for i > 0 && j > 0 {
		i--
		j--
		ops = append(ops, diffOp{' ', x[i], i, j})
	}
	for l, r := 0, len(ops)-1; l < r; l, r = l+1, r-1 {
		ops[l], ops[r] = ops[r], ops[l]
	}
	return ops
}
