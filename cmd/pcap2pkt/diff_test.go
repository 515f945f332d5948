package main

import (
	"strings"
	"testing"
)

// applyDiff rebuilds b from a and the ops, checking the ops describe a real
// edit of a into b.
func TestMyersRebuilds(t *testing.T) {
	cases := []struct{ a, b string }{
		{"", "x\n"},
		{"x\n", ""},
		{"a\nb\nc\n", "a\nc\n"},
		{"a\nb\nc\n", "a\nB\nc\nd\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n"},
		{"+.1 < . 1:1(0) ack 1 win 1000\n", "+0.100000 < . 1:1(0) ack 1 win 1000\n"},
	}
	for _, c := range cases {
		x, y := splitLines([]byte(c.a)), splitLines([]byte(c.b))
		ops := myers(x, y)
		var gotA, gotB strings.Builder
		for _, op := range ops {
			if op.kind != '+' {
				gotA.WriteString(op.line)
			}
			if op.kind != '-' {
				gotB.WriteString(op.line)
			}
		}
		if gotA.String() != c.a || gotB.String() != c.b {
			t.Errorf("myers(%q, %q) rebuilt %q, %q", c.a, c.b, gotA.String(), gotB.String())
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\n"
	b := "l1\nl2\nl3\nl4\nL5\nl6\nl7\nl8\nl9\n"
	got := string(unifiedDiff("t.pkt", []byte(a), []byte(b)))
	want := "--- t.pkt\n+++ t.pkt (formatted)\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+L5\n l6\n l7\n l8\n"
	if got != want {
		t.Errorf("unifiedDiff:\n%s\nwant:\n%s", got, want)
	}
	if d := unifiedDiff("t.pkt", []byte(a), []byte(a)); d != nil {
		t.Errorf("equal inputs gave a diff: %q", d)
	}
}
