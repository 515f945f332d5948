package main

import (
	"os"
	"testing"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/pcap2pkt/pcap2pkt/replay/replaytest"
)

func TestMain(m *testing.M) {
	replaytest.LockKernelTests("cmd/pcap2pkt tests", replay.InSandbox())
	os.Exit(m.Run())
}
