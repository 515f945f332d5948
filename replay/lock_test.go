package replay

import (
	"os"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

func TestMain(m *testing.M) {
	replaytest.LockKernelTests("replay tests", InSandbox())
	os.Exit(m.Run())
}
