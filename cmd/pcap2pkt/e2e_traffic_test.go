//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real traffic: a Go client and server talk across the test's namespaces,
// both ends capture with AF_PACKET, and `pcap2pkt verify` must pass on each
// capture (the server's: the kernel under test is the server; the
// client's: it is the client).

const e2ePort = 8080

// exchange is one case's traffic: dial opens a connection from the client
// namespace, accept takes the next one on the server.
type exchange func(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error

// pair runs client and server halves of one connection at once.
func pair(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error),
	client, server func(*net.TCPConn) error) error {
	errc := make(chan error, 1)
	go func() {
		c, err := accept()
		if err != nil {
			errc <- fmt.Errorf("accept: %w", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if err := server(c); err != nil {
			errc <- fmt.Errorf("server: %w", err)
			return
		}
		errc <- nil
	}()
	c, err := dial()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	err = client(c)
	c.Close()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return <-errc
}

func readN(c *net.TCPConn, n int) error {
	_, err := io.ReadFull(c, make([]byte, n))
	return err
}

// readEOF reads until the peer's FIN and checks the byte count.
func readEOF(c *net.TCPConn, want int) error {
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return err
	}
	if int(n) != want {
		return fmt.Errorf("read %d bytes before EOF, want %d", n, want)
	}
	return nil
}

func write(c *net.TCPConn, n int) error {
	_, err := c.Write(bytes.Repeat([]byte{'x'}, n))
	return err
}

// requestResponse: 100 bytes up, 2000 down, the client closes first.
func requestResponse(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
	return pair(dial, accept,
		func(c *net.TCPConn) error {
			if err := write(c, 100); err != nil {
				return err
			}
			return readN(c, 2000)
		},
		func(c *net.TCPConn) error {
			if err := readN(c, 100); err != nil {
				return err
			}
			if err := write(c, 2000); err != nil {
				return err
			}
			return readEOF(c, 0)
		})
}

// exchanges: n request/responses (100 bytes up, 3000 down) on one
// connection, then the client closes.
func exchanges(n int) exchange {
	return func(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
		return pair(dial, accept,
			func(c *net.TCPConn) error {
				for range n {
					if err := write(c, 100); err != nil {
						return err
					}
					if err := readN(c, 3000); err != nil {
						return err
					}
				}
				return nil
			},
			func(c *net.TCPConn) error {
				for range n {
					if err := readN(c, 100); err != nil {
						return err
					}
					if err := write(c, 3000); err != nil {
						return err
					}
				}
				return readEOF(c, 0)
			})
	}
}

// serverClosesFirst: the server answers and closes; the client reads to
// EOF and closes after.
func serverClosesFirst(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
	return pair(dial, accept,
		func(c *net.TCPConn) error {
			if err := write(c, 100); err != nil {
				return err
			}
			return readEOF(c, 500)
		},
		func(c *net.TCPConn) error {
			if err := readN(c, 100); err != nil {
				return err
			}
			return write(c, 500)
		})
}

// bulk: the server sends size bytes and closes, the client reads them all.
func bulk(size int) exchange {
	return func(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
		return pair(dial, accept,
			func(c *net.TCPConn) error {
				if err := write(c, 10); err != nil {
					return err
				}
				return readEOF(c, size)
			},
			func(c *net.TCPConn) error {
				if err := readN(c, 10); err != nil {
					return err
				}
				return write(c, size)
			})
	}
}

// upload: the client sends size bytes and shuts down writing; the server
// reads them all, answers with 10 bytes and closes.
func upload(size int) exchange {
	return func(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
		return pair(dial, accept,
			func(c *net.TCPConn) error {
				if err := write(c, size); err != nil {
					return err
				}
				if err := c.CloseWrite(); err != nil {
					return err
				}
				return readEOF(c, 10)
			},
			func(c *net.TCPConn) error {
				if err := readEOF(c, size); err != nil {
					return err
				}
				return write(c, 10)
			})
	}
}

// clientAbort: after one exchange the client closes with SO_LINGER 0 (a
// RST); the server's next read fails with ECONNRESET.
func clientAbort(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
	return pair(dial, accept,
		func(c *net.TCPConn) error {
			if err := write(c, 100); err != nil {
				return err
			}
			if err := readN(c, 100); err != nil {
				return err
			}
			if err := c.SetLinger(0); err != nil {
				return err
			}
			return c.Close()
		},
		func(c *net.TCPConn) error {
			if err := readN(c, 100); err != nil {
				return err
			}
			if err := write(c, 100); err != nil {
				return err
			}
			_, err := c.Read(make([]byte, 10))
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("read after the peer's abort: %v, want a reset", err)
			}
			return nil
		})
}

// halfClose: the client sends its request and shuts down writing; the
// server reads to EOF, then answers and closes.
func halfClose(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
	return pair(dial, accept,
		func(c *net.TCPConn) error {
			if err := write(c, 300); err != nil {
				return err
			}
			if err := c.CloseWrite(); err != nil {
				return err
			}
			return readEOF(c, 1000)
		},
		func(c *net.TCPConn) error {
			if err := readEOF(c, 300); err != nil {
				return err
			}
			return write(c, 1000)
		})
}

// parallel runs n request/responses at once.
func parallel(n int) exchange {
	return func(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = requestResponse(dial, accept)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

type trafficCase struct {
	name  string
	conns int // connections in the capture (default 1)
	ipv6  bool
	imp   *impairment
	cc    string // congestion control of both ends; "" for the host's
	run   exchange
	// known is why the case does not verify yet (filed in the notes); it
	// still runs, and a failure then skips instead of failing.
	known string
}

var trafficCases = []trafficCase{
	{name: "request_response", run: requestResponse},
	{name: "bulk_1MB", run: bulk(1 << 20), known: knownBulk},
	{name: "upload_1MB", run: upload(1 << 20), known: knownBulk},
	{name: "server_closes_first", run: serverClosesFirst},
	{name: "client_abort_rst", run: clientAbort},
	{name: "half_close", run: halfClose},
	{name: "parallel_4", conns: 4, run: parallel(4)},
	{name: "ipv6_request_response", ipv6: true, run: requestResponse},
	{name: "bulk_delay", imp: &impairment{delay: 10 * time.Millisecond, seed: 1}, run: bulk(1 << 20), known: knownBulk},
	{name: "bulk_loss_1pct", imp: &impairment{delay: 2 * time.Millisecond, loss: 0.01, seed: 2}, run: bulk(1 << 20), known: knownBulk},
	{name: "bulk_reorder", imp: &impairment{delay: 2 * time.Millisecond, reorder: 0.02, seed: 3}, run: bulk(1 << 20), known: knownBulk},
	{name: "bulk_duplicate", imp: &impairment{delay: 2 * time.Millisecond, dup: 0.02, seed: 4}, run: bulk(1 << 20), known: knownBulk},
	// Small writes over an impaired path: retransmissions without bulk.
	{name: "exchanges_loss_5pct", imp: &impairment{delay: 2 * time.Millisecond, loss: 0.05, seed: 5}, run: exchanges(20), known: knownRACK},
	{name: "exchanges_reorder_dup", imp: &impairment{delay: 2 * time.Millisecond, reorder: 0.05, dup: 0.05, seed: 6}, run: exchanges(20), known: knownRACK},
	{name: "ipv6_exchanges_reorder_dup", ipv6: true, imp: &impairment{delay: 2 * time.Millisecond, reorder: 0.05, dup: 0.05, seed: 7}, run: exchanges(20), known: knownRACK},
}

// slowReader: the server sends size bytes and closes; the client reads
// them 4 KiB at a time with a pause between reads, so its window closes
// and opens again.
func slowReader(size int, pause time.Duration) exchange {
	return func(dial func() (*net.TCPConn, error), accept func() (*net.TCPConn, error)) error {
		return pair(dial, accept,
			func(c *net.TCPConn) error {
				if err := c.SetReadBuffer(16 << 10); err != nil {
					return err
				}
				if err := write(c, 10); err != nil {
					return err
				}
				buf := make([]byte, 4<<10)
				n := 0
				for {
					m, err := c.Read(buf)
					n += m
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return err
					}
					time.Sleep(pause)
				}
				if n != size {
					return fmt.Errorf("read %d bytes, want %d", n, size)
				}
				return nil
			},
			func(c *net.TCPConn) error {
				if err := readN(c, 10); err != nil {
					return err
				}
				return write(c, size)
			})
	}
}

// batchCases is the second set of real-traffic cases, for measuring how
// many captures verify (PCAP2PKT_E2E_BATCH=2 runs them instead of
// trafficCases; they take minutes): downloads and uploads of 256 KiB to
// 4 MiB, direct and over 5-20 ms with loss, reordering and duplication,
// bbr and cubic, IPv4 and IPv6; 50 small exchanges; a slow reader.
var batchCases = []trafficCase{
	{name: "get_256k", run: bulk(256 << 10)},
	{name: "get_4m", run: bulk(4 << 20)},
	{name: "put_256k_v6", ipv6: true, run: upload(256 << 10)},
	{name: "get_1m_cubic", cc: "cubic", run: bulk(1 << 20)},
	{name: "get_1m_delay5_loss1", imp: &impairment{delay: 5 * time.Millisecond, loss: 0.01, seed: 11}, run: bulk(1 << 20)},
	{name: "get_4m_delay10_loss1", imp: &impairment{delay: 10 * time.Millisecond, loss: 0.01, seed: 12}, run: bulk(4 << 20)},
	{name: "put_1m_delay10_loss2", imp: &impairment{delay: 10 * time.Millisecond, loss: 0.02, seed: 13}, run: upload(1 << 20)},
	{name: "get_1m_delay20_reorder", imp: &impairment{delay: 20 * time.Millisecond, reorder: 0.05, seed: 14}, run: bulk(1 << 20)},
	{name: "get_1m_delay5_dup5", imp: &impairment{delay: 5 * time.Millisecond, dup: 0.05, seed: 15}, run: bulk(1 << 20)},
	{name: "get_1m_delay10_loss1_cubic", cc: "cubic", imp: &impairment{delay: 10 * time.Millisecond, loss: 0.01, seed: 16}, run: bulk(1 << 20)},
	{name: "get_1m_v6_delay10_loss1", ipv6: true, imp: &impairment{delay: 10 * time.Millisecond, loss: 0.01, seed: 17}, run: bulk(1 << 20)},
	{name: "put_4m_v6_delay5_reorder_dup", ipv6: true, imp: &impairment{delay: 5 * time.Millisecond, reorder: 0.02, dup: 0.02, seed: 18}, run: upload(4 << 20)},
	{name: "exchanges_50", run: exchanges(50)},
	{name: "exchanges_50_delay5_loss2", imp: &impairment{delay: 5 * time.Millisecond, loss: 0.02, seed: 19}, run: exchanges(50)},
	{name: "slow_reader", run: slowReader(256<<10, 2*time.Millisecond)},
}

// knownRACK: these verify for most captures. A segment that filled a SACK
// hole before the captured kernel's RACK timer, and an ACK that came before
// its loss probe, are injected early enough to keep that order (synth's
// fillsEarly, acksBeforeProbe). What is left: a receiver whose immediate
// ACK the replayed kernel delays (it depends on the memory charged for
// received packets; TUN is not a veth). Measured on 2026-11-25 (stock
// settings): 71 of 72 side-captures (twelve capture sets) verify every time.
const knownRACK = "known failure (some captures): a receiver's immediate ACK that the replayed kernel delays"

// knownBulk: bulk transfers. Over a veth the sender's side verifies for
// some captures; its receiver's ACKs follow whether the application held
// the socket while segments came in (taken as one, ACKed once) and the
// memory charged for each received packet, which a script cannot ask of a
// kernel. Over an impaired path the sender's segments and PSH flags follow
// how its kernel sized each transmit and when the writer woke; replayed
// with the captured ACKs its window ends a segment or two short after a
// few dozen round trips. See the README's verify section.
const knownBulk = "known failure: bulk transfers (receiver ACK coalescing; a paced sender's burst sizes), see README"

// runTraffic builds the case's namespaces, runs its exchange with both
// ends capturing, and returns the server-side and client-side pcaps.
func runTraffic(t *testing.T, tc trafficCase, dir string) (serverPcap, clientPcap string) {
	t.Helper()
	serverPcap, clientPcap, err := runTrafficWith(t, tc, dir, trafficSetup{})
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	return serverPcap, clientPcap
}

// trafficSetup changes how runTrafficWith runs a case.
type trafficSetup struct {
	// prepare runs once the namespaces have their addresses, before any
	// traffic: a test changes one side's settings there.
	prepare func(*topo) error
	// clientPort, if set, is the client's port (a path that impairs by
	// segment drops the same bytes in every run whatever the port).
	clientPort uint16
}

// runTrafficWith is runTraffic with a setup; the exchange's error is
// returned (the captures hold what happened), the harness's are fatal.
func runTrafficWith(t *testing.T, tc trafficCase, dir string, setup trafficSetup) (serverPcap, clientPcap string, runErr error) {
	t.Helper()
	tp := newTopo(t, tc.imp)
	if tc.cc != "" {
		if tc.cc == "cubic" {
			allowCubic(t)
		}
		for _, l := range []link{tp.client, tp.server} {
			if err := setSysctl(l.ns, "net.ipv4.tcp_congestion_control", tc.cc); err != nil {
				t.Fatalf("congestion control %s: %v", tc.cc, err)
			}
		}
	}
	if setup.prepare != nil {
		if err := setup.prepare(tp); err != nil {
			t.Fatal(err)
		}
	}
	srv, cli := e2eServer4, e2eClient4
	if tc.ipv6 {
		srv, cli = e2eServer6, e2eClient6
	}
	serverPcap, clientPcap = filepath.Join(dir, "server.pcap"), filepath.Join(dir, "client.pcap")
	ss, err := startSniffer(tp.server, serverPcap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.stop() })
	cs, err := startSniffer(tp.client, clientPcap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.stop() })
	addr := netip.AddrPortFrom(srv, e2ePort)
	ln, err := listenIn(tp.server.ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accept := func() (*net.TCPConn, error) {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		return c.(*net.TCPConn), nil
	}
	from := netip.AddrPortFrom(cli, setup.clientPort)
	dial := func() (*net.TCPConn, error) { return dialFromIn(tp.client.ns, from, addr) }
	runErr = tc.run(dial, accept)
	ln.Close()
	// The last ACKs (and any retransmitted FIN on a lossy path) come after
	// the sockets' close returns.
	time.Sleep(300 * time.Millisecond)
	ns, serr := ss.stop()
	nc, cerr := cs.stop()
	if tp.fwd != nil {
		t.Logf("forwarder: %s", tp.fwd.Counts())
	}
	if serr != nil || cerr != nil {
		t.Fatalf("capture: %v %v", serr, cerr)
	}
	t.Logf("captured %d frames on the server, %d on the client", ns, nc)
	return serverPcap, clientPcap, runErr
}

// TestE2ETraffic runs each case and verifies both captures.
func TestE2ETraffic(t *testing.T) {
	requireReplay(t)
	bin := buildCLI(t)
	cases := trafficCases
	if os.Getenv("PCAP2PKT_E2E_BATCH") == "2" {
		cases = batchCases
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := keepDir(t)
			sp, cp := runTraffic(t, tc, dir)
			var failures []string
			srv, cli := e2eServer4, e2eClient4
			if tc.ipv6 {
				srv, cli = e2eServer6, e2eClient6
			}
			// The local side is named: on a veth both directions can carry
			// unfilled checksums, so the capture alone may not tell.
			for _, side := range []struct {
				name, pcap string
				local      netip.Addr
			}{{"server", sp, srv}, {"client", cp, cli}} {
				// verify replays a failing connection again itself
				// (--attempts): its verdict is the product's.
				args := []string{"verify", "--local", side.local.String(), "--keep", filepath.Join(dir, side.name)}
				if tc.cc != "" {
					args = append(args, "--congestion-control", tc.cc)
				}
				code, out, errs := execCLI(t, bin, append(args, side.pcap)...)
				// verify exits 0 when it skips every connection (an
				// incomplete capture): each must have passed.
				passed := strings.Count(out, "  pass  ")
				var why string
				if code != 0 || passed != max(tc.conns, 1) {
					why = fmt.Sprintf("%s side: pcap2pkt verify --local %s %s: exit %d, %d of %d connection(s) pass\n%s%s",
						side.name, side.local, side.pcap, code, passed, max(tc.conns, 1), out, errs)
				} else if strings.Contains(out, "passed on its replay") {
					t.Logf("%s side: %s", side.name, out)
				}
				if why != "" {
					failures = append(failures, why)
				}
			}
			switch {
			case len(failures) > 0 && tc.known != "":
				t.Log(strings.Join(failures, "\n"))
				t.Skip(tc.known)
			case len(failures) > 0:
				t.Error(strings.Join(failures, "\n"))
			case tc.known != "":
				t.Logf("verifies now: drop its known failure (%s)", tc.known)
			}
		})
	}
}
