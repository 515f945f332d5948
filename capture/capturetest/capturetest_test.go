package capturetest

import (
	"bytes"
	"testing"
)

func TestGenerate(t *testing.T) {
	for _, c := range []Config{
		{Flows: 3, Concurrent: 2, Rounds: 2, Request: 100, Response: 1948},
		{Flows: 20, Concurrent: 3, Rounds: 5, Response: 32},
		{Flows: 1, Concurrent: 1},
	} {
		data, n := Generate(c)
		if n != c.Packets() || len(data) != c.size() {
			t.Errorf("%+v: %d packets (want %d), %d bytes (want %d)", c, n, c.Packets(), len(data), c.size())
		}
		var buf bytes.Buffer
		if m, err := Write(&buf, c); err != nil || m != n || !bytes.Equal(buf.Bytes(), data) {
			t.Errorf("%+v: Write: %v, %d packets, same bytes %v", c, err, m, bytes.Equal(buf.Bytes(), data))
		}
	}
}
