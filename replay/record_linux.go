package replay

// Capturing a run as tcpdump on the TUN device would: a second packet socket
// sees both the packets we inject (PACKET_HOST, stamped when the kernel
// receives them) and those the kernel sends (PACKET_OUTGOING), in the order
// they passed, with the kernel's timestamps. A goroutine copies them to the
// PcapWriter until the device is closed.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// capture is a running CaptureTo.
type capture struct {
	ps   *packetSocket
	w    *PcapWriter
	done chan error // the copier's first error, once it has stopped
}

// CaptureTo records every packet on the device, both ways, to w until the
// device is closed. It may be called once.
func (d *tunDevice) CaptureTo(w *PcapWriter) error {
	d.capMu.Lock()
	defer d.capMu.Unlock()
	if d.closed.Load() {
		return errDeviceClosed
	}
	if d.capture != nil {
		return errors.New("replay: the device is already being captured")
	}
	ps, err := openPacketSocket(d.ifindex, false)
	if err != nil {
		return err
	}
	c := &capture{ps: ps, w: w, done: make(chan error, 1)}
	d.capture = c
	go func() { c.done <- c.copy() }()
	return nil
}

// copy writes packets to the file as they come until the socket's read
// deadline passes, then what is still queued.
func (c *capture) copy() error {
	var werr error
	drain := func(fd uintptr) bool {
		for {
			pkt, pkttype, at, ok, err := c.ps.recv(fd)
			if err != nil {
				werr = err
				return true
			}
			if !ok {
				return false
			}
			if err := c.w.WritePacket(at, pkt, pkttype == unix.PACKET_OUTGOING); err != nil {
				werr = err
				return true
			}
		}
	}
	err := c.ps.conn.Read(drain)
	if werr != nil {
		return werr
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("replay: capture: %w", err)
	}
	// Read refuses to run past the deadline; Control runs drain once more
	// to empty the queue.
	if err := c.ps.conn.Control(func(fd uintptr) { drain(fd) }); err != nil && werr == nil {
		werr = fmt.Errorf("replay: capture: %w", err)
	}
	return werr
}

// stopCapture ends a capture after copying what the socket still holds.
func (d *tunDevice) stopCapture() error {
	d.capMu.Lock()
	defer d.capMu.Unlock()
	c := d.capture
	if c == nil {
		return nil
	}
	d.capture = nil
	_ = c.ps.f.SetReadDeadline(time.Unix(1, 0))
	err := <-c.done
	if cerr := c.ps.close(); err == nil {
		err = cerr
	}
	return err
}
