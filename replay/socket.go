package replay

// This file is the socket table, after the reference's struct socket: for
// each connection the script's view (addresses, ports, ISNs as written) and
// the live view (what the kernel and the engine actually use), the state
// the handshake has reached, and the learned mappings (TS val, flow label).
// Script fds map to live fds through the fd table.

import (
	"fmt"
	"net/netip"

	"github.com/pcap2pkt/pcap2pkt/capture/tcpwire"
)

// sockState is how far a socket has gone, as in the reference.
type sockState int

const (
	sockInit               sockState = iota
	sockNew                          // after socket()
	sockListening                    // after listen()
	sockPassivePacketRecvd           // a SYN arrived for a listener
	sockPassiveSynackSent            // the kernel sent its SYN-ACK
	sockPassiveSynackAcked           // the handshake's ACK arrived
	sockActiveConnecting             // after connect()
	sockActiveSynSent                // the kernel sent its SYN
	sockActiveSynAcked               // the SYN-ACK arrived
)

// endpoint is an address and port.
type endpoint struct {
	ip   netip.Addr
	port uint16
}

// sockSide is the script's or the live view of a connection.
type sockSide struct {
	local, remote       endpoint
	localISN, remoteISN uint32
}

// socket is one connection (or listener) the engine tracks.
type socket struct {
	fd       *fdEntry
	state    sockState
	family   int // AF_INET or AF_INET6
	typ      int
	protocol int // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP...

	script, live sockSide

	// The TS vals the kernel sent, script value -> live value, to map the
	// ecr of inbound packets; and the first pair, the baseline to map
	// outbound TS vals into script space.
	tsValMap                           map[uint32]uint32
	foundFirstTS                       bool
	firstScriptTSVal, firstActualTSVal uint32
	// lastLiveTSVal is the latest TS val the kernel sent (liveTSSeen: one
	// did), under --pcap2pkt.
	lastLiveTSVal                  uint32
	liveTSSeen                     bool
	flowlabelScript, flowlabelLive uint32
	lastOutbound                   *tcpwire.TCPHeader // the last TCP header the kernel sent
	lastInjected                   *tcpwire.TCPHeader // the last TCP header injected
	lastInjectedPayload            int
}

// fdEntry is a script fd and the live fd it stands for; sockets made by a
// packet have -1 for both until accept().
type fdEntry struct {
	scriptFD, liveFD int
	closed           bool
	sock             *socket // nil for pipes, epoll fds and files
}

// fdTable is every fd and socket of the run, newest first (the order in
// which the end of the script closes them, as the reference does).
type fdTable struct {
	entries []*fdEntry
}

func (t *fdTable) byScript(fd int) *fdEntry {
	for _, f := range t.entries {
		if !f.closed && f.scriptFD == fd && fd >= 0 {
			return f
		}
	}
	return nil
}

func (t *fdTable) byLive(fd int) *fdEntry {
	for _, f := range t.entries {
		if !f.closed && f.liveFD == fd && fd >= 0 {
			return f
		}
	}
	return nil
}

// add records a new fd, refusing duplicates as the reference does.
func (t *fdTable) add(f *fdEntry) error {
	if f.scriptFD >= 0 && t.byScript(f.scriptFD) != nil {
		return fmt.Errorf("duplicate fd %d in script", f.scriptFD)
	}
	if f.liveFD >= 0 && t.byLive(f.liveFD) != nil {
		return fmt.Errorf("duplicate live fd %d", f.liveFD)
	}
	t.entries = append([]*fdEntry{f}, t.entries...)
	return nil
}

// newSocket makes a socket tracked by the fd table.
func (e *engine) newSocket() *socket {
	s := &socket{tsValMap: map[uint32]uint32{}}
	s.fd = &fdEntry{scriptFD: -1, liveFD: -1, sock: s}
	e.fds.entries = append([]*fdEntry{s.fd}, e.fds.entries...)
	return s
}

// newSyscallSocket records a socket made by socket(); it becomes the
// socket under test.
func (e *engine) newSyscallSocket(scriptFD, liveFD, domain, typ, protocol int) error {
	if scriptFD < 0 {
		return fmt.Errorf("invalid socket fd %d in script", scriptFD)
	}
	if liveFD < 0 {
		return fmt.Errorf("invalid live socket fd %d", liveFD)
	}
	if e.fds.byScript(scriptFD) != nil {
		return fmt.Errorf("duplicate fd %d in script", scriptFD)
	}
	if e.fds.byLive(liveFD) != nil {
		return fmt.Errorf("duplicate live fd %d", liveFD)
	}
	s := e.newSocket()
	s.state = sockNew
	s.family, s.typ, s.protocol = domain, typ, protocol
	s.fd.scriptFD, s.fd.liveFD = scriptFD, liveFD
	e.underTest = s
	return nil
}

// takeEphemeralPort returns the remote port for a connection the script's
// packets open: the port cached at the start, then fresh ones.
func (e *engine) takeEphemeralPort() (uint16, error) {
	if e.nextEphemeral >= 0 {
		p := uint16(e.nextEphemeral)
		e.nextEphemeral = -1
		return p, nil
	}
	return e.host.EphemeralPort(e.cfg.socketIPv6())
}

// localSeqScriptToLive is the offset from script to live sequence space of
// the kernel's own sequence numbers. A SYN's numbers are absolute in the
// script; the rest are relative to the ISN, as tcpdump prints them.
func (s *socket) localSeqScriptToLive(isSyn bool) uint32 {
	if isSyn {
		return s.live.localISN - s.script.localISN
	}
	return s.live.localISN
}

// remoteSeqScriptToLive is the same offset for the injected side.
func (s *socket) remoteSeqScriptToLive(isSyn bool) uint32 {
	if isSyn {
		return 0
	}
	return s.live.remoteISN
}
