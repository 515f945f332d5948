package capture

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// FlowRow is one connection as 'pcap2pkt flows' lists it, in every format.
type FlowRow struct {
	Flow         int     `json:"flow"`
	TCPStream    int     `json:"tcp_stream"` // Wireshark's tcp.stream: Flow-1
	Local        string  `json:"local"`
	Remote       string  `json:"remote"`
	LocalRole    string  `json:"local_role"` // client or server
	Packets      int     `json:"packets"`
	Bytes        int64   `json:"bytes"` // TCP payload, both directions
	Seconds      float64 `json:"seconds"`
	State        string  `json:"state"`
	LocalGuessed bool    `json:"local_guessed"`
	LocalReason  string  `json:"local_reason"`
}

// Row returns f's row. Flows are numbered in order of first packet, as
// Wireshark numbers tcp.stream from 0 (they agree on every shared capture).
func Row(f *Flow) FlowRow {
	role := "client"
	if f.Local == SideB {
		role = "server"
	}
	return FlowRow{
		Flow: f.Index, TCPStream: f.Index - 1,
		Local: f.LocalEndpoint().String(), Remote: f.RemoteEndpoint().String(), LocalRole: role,
		Packets: f.Count, Bytes: f.Bytes[0] + f.Bytes[1], Seconds: f.Duration().Seconds(),
		State: flowState(f), LocalGuessed: f.LocalGuessed, LocalReason: f.LocalReason,
	}
}

// FlowTableLegend is the line above the text table that says how to read it.
const FlowTableLegend = "# LOCAL is the kernel under test; -> it is the client, <- the server; BYTES: TCP payload, both ways; " +
	"DURATION in seconds; flow N is Wireshark's tcp.stream N-1"

// WriteFlowTable prints one line per flow for `pcap2pkt flows`, below a
// legend: index, endpoints (local first; the arrow points from client to
// server), packets, payload bytes, duration, completeness, and the local
// side with the reason.
func WriteFlowTable(w io.Writer, flows []*Flow) error {
	if _, err := fmt.Fprintln(w, FlowTableLegend); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tLOCAL\t\tREMOTE\tPACKETS\tBYTES\tDURATION\tSTATE\tLOCAL CHOSEN BECAUSE")
	for _, f := range flows {
		r := Row(f)
		arrow := "->"
		if r.LocalRole == "server" {
			arrow = "<-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%.6f\t%s\t%s\n",
			r.Flow, r.Local, arrow, r.Remote, r.Packets, r.Bytes, r.Seconds, r.State, r.LocalReason)
	}
	return tw.Flush()
}

// WriteFlowTSV prints the rows as tab-separated values with a header line,
// for scripts (fields never hold a tab or a newline).
func WriteFlowTSV(w io.Writer, flows []*Flow) error {
	if _, err := fmt.Fprintln(w, "flow\ttcp_stream\tlocal\tremote\tlocal_role\tpackets\tbytes\tseconds\tstate\tlocal_guessed\tlocal_reason"); err != nil {
		return err
	}
	clean := strings.NewReplacer("\t", " ", "\n", " ")
	for _, f := range flows {
		r := Row(f)
		if _, err := fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%d\t%d\t%.6f\t%s\t%s\t%s\n", r.Flow, r.TCPStream, r.Local, r.Remote,
			r.LocalRole, r.Packets, r.Bytes, r.Seconds, r.State, strconv.FormatBool(r.LocalGuessed), clean.Replace(r.LocalReason)); err != nil {
			return err
		}
	}
	return nil
}

// WriteFlowJSON prints the rows as one JSON array.
func WriteFlowJSON(w io.Writer, flows []*Flow) error {
	rows := make([]FlowRow, 0, len(flows))
	for _, f := range flows {
		rows = append(rows, Row(f))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

func flowState(f *Flow) string {
	var missing []string
	if !f.Handshake() {
		missing = append(missing, "no handshake")
	}
	if !f.Closed() {
		missing = append(missing, "no close")
	}
	if len(missing) == 0 {
		return "complete"
	}
	return "partial (" + strings.Join(missing, ", ") + ")"
}
