package synth

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pcap2pkt/pcap2pkt/capture"
	"github.com/pcap2pkt/pcap2pkt/parser"
)

// hostile are texts a capture may carry (its file name, pcapng comments and
// interface names) that would become script lines of their own, a shell
// command or a python block, if a script wrote them as they are.
var hostile = []string{
	"x\n0 `touch PWNED`\n.pcap",
	"a */ b\n%{ import os; os.system('touch PWNED') }%\n.pcap",
	"\r\n+0 `touch PWNED`\r\n",
	"*/ `touch PWNED` /*",
	"%{\nopen('PWNED', 'w')\n}%",
	"ctl\x00\x01\x08\x0b\x0c\x1b[2K\x7f.pcap",
	"bad utf-8 \xff\xfe\xc0.pcap",
	"line\u2028sep\u2029arator\u0085.pcap",
	"--tolerance_usecs=1\n--init_scripts=/tmp/PWNED.sh\n",
}

// hostileNg rewrites the pcap capture data as a pcapng file whose section
// header, interface description and every packet carry text in options.
func hostileNg(t *testing.T, data []byte, text string) []byte {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	intf := pcapgo.NgInterface{Name: text, Comment: text, Description: text, Filter: text, OS: text,
		LinkType: r.LinkType(), SnapLength: 65536}
	w, err := pcapgo.NewNgWriterInterface(&buf, intf, pcapgo.NgWriterOptions{
		SectionInfo: pcapgo.NgSectionInfo{Hardware: text, OS: text, Application: text, Comment: text}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		frame, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ci.InterfaceIndex = 0
		if err := w.WritePacketWithOptions(ci, frame, pcapgo.NgPacketOptions{Comments: []string{text, text}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHostileText synthesises a capture under hostile file names, and
// rewritten with hostile pcapng options: each script must parse, and differ
// from the script of a plainly named capture in comment text only, so that
// no line came from the capture. Comments hold no control byte.
func TestHostileText(t *testing.T) {
	data := conversation(t, append(handshake(),
		seg{flags: "P.", seq: 1, ack: 1, n: 100, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "P.", seq: 1, ack: 101, n: 300, win: 4000, dt: time.Millisecond},
		seg{flags: "F.", seq: 101, ack: 301, win: 4000, dt: time.Millisecond},
		seg{srv: true, flags: "F.", seq: 301, ack: 102, win: 4000, dt: time.Millisecond},
		seg{flags: ".", seq: 102, ack: 302, win: 4000, dt: time.Millisecond}))
	synth := func(name string, data []byte) *parser.Script {
		t.Helper()
		res, err := File(name, bytes.NewReader(data), capture.FlowOptions{}, Options{CongestionControl: "cubic"})
		if err != nil || len(res) != 1 || res[0].Err != nil {
			t.Fatalf("%q: %v %v", name, err, res)
		}
		return res[0].Script
	}
	plain := synth("plain.pcap", data)
	plainComments := len(plain.Comments)
	plain.Comments = nil
	plainLines := parser.Format(plain)
	for _, text := range hostile {
		for _, ng := range []bool{false, true} {
			name, input := "dir/"+text, data
			if ng {
				name, input = "capture.pcapng", hostileNg(t, data, text)
			}
			s := synth(name, input)
			printed := parser.Format(s)
			roundTrip(t, name, printed, s)
			parsed, err := parser.ParseFile(name, printed, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(parsed.Comments) != plainComments {
				t.Errorf("%q: %d comment lines, %d with a plain name", name, len(parsed.Comments), plainComments)
			}
			for _, c := range parsed.Comments {
				if strings.ContainsFunc(c.Text, func(r rune) bool { return r < ' ' || r == 0x7f }) {
					t.Errorf("%q: comment %q holds a control byte", name, c.Text)
				}
			}
			// What runs (option lines, the shell command, events) is what
			// a plainly named capture gives.
			parsed.Comments = nil
			if got := parser.Format(parsed); !bytes.Equal(got, plainLines) {
				t.Errorf("%q: the script's lines differ from a plain capture's:\n%s", name, firstDiff(plainLines, got))
			}
		}
	}
}

// TestCongestionControlName: a congestion control name that is not one
// never reaches the script's shell line.
func TestCongestionControlName(t *testing.T) {
	data := conversation(t, handshake())
	for _, cc := range []string{"cubic; touch PWNED", "bbr\n0 `touch PWNED`", "$(touch PWNED)", "a b"} {
		res, err := File("c.pcap", bytes.NewReader(data), capture.FlowOptions{}, Options{CongestionControl: cc})
		if err != nil || len(res) != 1 {
			t.Fatalf("%q: %v %v", cc, err, res)
		}
		if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "not an algorithm name") {
			t.Errorf("%q: got %v, want an error", cc, res[0].Err)
		}
	}
	for _, cc := range []string{"cubic", "bbr", "dctcp", "h-tcp_2"} {
		res, err := File("c.pcap", bytes.NewReader(data), capture.FlowOptions{}, Options{CongestionControl: cc})
		if err != nil || len(res) != 1 || res[0].Err != nil {
			t.Errorf("%q: %v %v", cc, err, res)
		}
	}
}
