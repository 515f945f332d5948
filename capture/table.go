package capture

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteFlowTable prints one line per flow for `pcap2pkt flows`: index,
// endpoints (local first; the arrow points from client to server), packets,
// payload bytes, duration, completeness, and the local side with the reason.
func WriteFlowTable(w io.Writer, flows []*Flow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tLOCAL\t\tREMOTE\tPACKETS\tBYTES\tDURATION\tSTATE\tLOCAL CHOSEN BECAUSE")
	for _, f := range flows {
		arrow := "->"
		if f.Local == SideB {
			arrow = "<-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
			f.Index, f.LocalEndpoint(), arrow, f.RemoteEndpoint(), len(f.Packets),
			f.Bytes[0]+f.Bytes[1], f.Duration().Round(time.Microsecond), flowState(f), f.LocalReason)
	}
	return tw.Flush()
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
