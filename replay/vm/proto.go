package vm

import (
	"time"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// The host and the guest speak in JSON lines over the guest's second serial
// port (ttyS1; the first is the kernel's console): the guest says it is
// ready (or why it cannot run scripts), then answers each Request with one
// Result, in order. A request's timeout is the host's to keep, in the
// host's clock: it sends a cancel line and the guest kills the run. A timer
// in the guest would not do: deterministic time jumps to the guest's next
// timer whenever the guest waits for the host (a file read over 9p), so a
// guest's 120 s timer, when it is the only one, expires at the first such
// wait.

// Request is one sandboxed run: the arguments of pcap2pkt's child, as
// replay.RunSandboxed takes them, run from folder Dir.
type Request struct {
	Args []string `json:"args"`
	Dir  string   `json:"dir"`
	// Cancel, alone in a line, stops the run in progress.
	Cancel bool `json:"cancel,omitempty"`
	// SplitStderr keeps the child's standard error apart in Result.Stderr;
	// otherwise both streams are in Stdout, in the order written.
	SplitStderr bool `json:"split_stderr,omitempty"`
}

// Result is what a run gave in the guest.
type Result struct {
	Code     int    `json:"code"`
	Stdout   []byte `json:"stdout,omitempty"`
	Stderr   []byte `json:"stderr,omitempty"`
	Canceled bool   `json:"canceled,omitempty"` // the host canceled the run; it was killed
	Err      string `json:"err,omitempty"`      // the child could not be run
	// Failure is the failure the child reported (replay.SandboxResult).
	Failure *parser.Error `json:"failure,omitempty"`
	// CPU is the processor time the run's processes used in the guest
	// (the child and what it waited for: shells, python3): in
	// deterministic time one nanosecond per instruction, what the run
	// costs the host, whatever the host's load and the script's own waits.
	CPU time.Duration `json:"cpu_ns,omitempty"`
}

// guestMessage is one line from the guest.
type guestMessage struct {
	Ready   string  `json:"ready,omitempty"`   // the guest's kernel release
	Missing string  `json:"missing,omitempty"` // why this kernel cannot run scripts
	Fatal   string  `json:"fatal,omitempty"`   // any other failure of the guest's set-up
	Result  *Result `json:"result,omitempty"`
}

// guestConfig is written into the initramfs for the guest's init.
type guestConfig struct {
	Modules string   `json:"modules,omitempty"` // the host's module folder ("" without one)
	Preload []string `json:"preload,omitempty"` // initramfs paths of the 9p modules, in load order
	Env     []string `json:"env"`
	Shares  []share  `json:"shares,omitempty"`
	// Layer says that the initramfs's /ram holds copies of the host's
	// programs to lay over its root (userland.go).
	Layer bool `json:"layer,omitempty"`
	// Opaque are folders the layer holds whole; Binds are empty folders in
	// those over which the host's are mounted (userland.go's layer).
	Opaque []string `json:"opaque,omitempty"`
	Binds  []string `json:"binds,omitempty"`
	// Seed credits the guest's random pool at boot (see seedRandom).
	Seed []byte `json:"seed"`
}

// share is a host folder the guest may write, exported as its own 9p tag.
type share struct {
	Tag  string `json:"tag"`
	Path string `json:"path"`
}

const (
	configPath = "/pcap2pkt-vm.json" // in the initramfs
	rootTag    = "hostroot"
	hostMount  = "/host" // where the guest's init mounts the host's root
	layerDir   = "/ram"  // copies of the host's programs, in the initramfs
	rootMount  = "/root" // the layer over the host's root
	serverEnv  = "PCAP2PKT_VM_SERVER"
	protoPort  = "/dev/ttyS1"
)
