// Command refvm made reference-FAMILY.tsv beside it: it runs the reference
// packetdrill binary (built apart; its code is not in this repository) over
// the upstream tcp suite in deterministic VMs booted by replay/vm, the same
// kind as `pcap2pkt replay --kernel`, so that the two are compared in the
// same guest. It lives in testdata so that `go build ./...` leaves it out;
// build it static, as the VM's init must be:
//
//	CGO_ENABLED=0 go build -o /tmp/refvm ./testdata/kernel-6.1/refvm
//	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
//	  /tmp/refvm -kernel /boot/vmlinuz-6.1.0-57-amd64 -family ipv4 -j 2 \
//	  -packetdrill PATH/TO/packetdrill CORPUS > reference-ipv4.tsv
//
// CORPUS holds tcp/ and common/ (the conformance corpus with its symbolic
// links restored). Each script runs as upstream's run_all.py runs it: from
// its own folder, in a fresh network namespace with its loopback up, with
// the family's arguments; the scripts are handed to the VMs in path order,
// each to the next VM that is free.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcap2pkt/pcap2pkt/replay"
	"github.com/pcap2pkt/pcap2pkt/replay/vm"
)

// familyArgs are run_all.py's arguments per family.
var familyArgs = map[string]string{
	"ipv4": "--ip_version=ipv4 --local_ip=192.168.0.1 --gateway_ip=192.168.0.1 --netmask_ip=255.255.0.0 --remote_ip=192.0.2.1 " +
		"-D TFO_COOKIE=3021b9d889017eeb -D CODE=host_unreachable -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR",
	"ipv4-mapped-ipv6": "--ip_version=ipv4-mapped-ipv6 --local_ip=192.168.0.1 --gateway_ip=192.168.0.1 --netmask_ip=255.255.0.0 --remote_ip=192.0.2.1 " +
		"-D TFO_COOKIE=3021b9d889017eeb -D CODE=host_unreachable -D CMSG_LEVEL_IP=SOL_IPV6 -D CMSG_TYPE_RECVERR=IPV6_RECVERR",
	"ipv6": "--ip_version=ipv6 --mtu=1520 --local_ip=fd3d:0a0b:17d6::1 --gateway_ip=fd3d:0a0b:17d6:8888::1 --remote_ip=fd3d:fa7b:d17d::1 " +
		"-D TFO_COOKIE=c1d1e9742a47a9bc -D CMSG_LEVEL_IP=SOL_IPV6 -D CMSG_TYPE_RECVERR=IPV6_RECVERR",
}

// maxRuntime is run_all.py's limit per script.
const maxRuntime = 180 * time.Second

func main() {
	if vm.IsGuest() {
		os.Exit(vm.GuestMain())
	}
	if replay.InSandbox() {
		os.Exit(child(os.Args[1:]))
	}
	kernel := flag.String("kernel", "", "the kernel image to boot")
	family := flag.String("family", "ipv4", "ipv4, ipv6 or ipv4-mapped-ipv6")
	jobs := flag.Int("j", 2, "VMs")
	pd := flag.String("packetdrill", "", "the reference binary")
	flag.Parse()
	fargs, ok := familyArgs[*family]
	if *kernel == "" || *pd == "" || flag.NArg() != 1 || !ok {
		fmt.Fprintln(os.Stderr, "usage: refvm -kernel IMAGE -family FAMILY -j N -packetdrill BIN CORPUS")
		os.Exit(2)
	}
	if err := run(*kernel, *family, fargs, *jobs, *pd, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "refvm:", err)
		os.Exit(1)
	}
}

// child runs in the sandbox's new network namespace: loopback up, as
// run_all.py's in_netns.sh does, then the reference binary in its place.
func child(argv []string) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		ifr, err := unix.NewIfreq("lo")
		if err == nil {
			err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
		}
		if err == nil {
			ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
			err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
		}
		unix.Close(fd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "refvm: loopback up:", err)
		return 1
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PCAP2PKT_") {
			env = append(env, kv)
		}
	}
	err = unix.Exec(argv[0], argv, env)
	fmt.Fprintln(os.Stderr, "refvm: exec:", err)
	return 1
}

type row struct {
	path, line string
}

func run(kernel, family, fargs string, jobs int, pd, corpus string) error {
	corpus, err := filepath.Abs(corpus)
	if err != nil {
		return err
	}
	pd, err = filepath.Abs(pd)
	if err != nil {
		return err
	}
	var scripts []string
	err = filepath.WalkDir(filepath.Join(corpus, "tcp"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".pkt") {
			return err
		}
		// run_all.py: no *v6.pkt in the ipv4 families, no *v4.pkt in ipv6.
		if (family == "ipv6" && strings.HasSuffix(p, "v4.pkt")) || (family != "ipv6" && strings.HasSuffix(p, "v6.pkt")) {
			return nil
		}
		scripts = append(scripts, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(scripts)

	h, err := vm.Prepare(vm.Options{Kernel: kernel, Deterministic: true})
	if err != nil {
		return err
	}
	defer h.Close()
	ctx := context.Background()
	next := make(chan string, len(scripts))
	for _, s := range scripts {
		next <- s
	}
	close(next)
	var (
		mu   sync.Mutex
		rows []row
		errs []error
		wg   sync.WaitGroup
	)
	for i := 0; i < jobs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := h.Boot(ctx)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer m.Close()
			for s := range next {
				r, err := one(ctx, m, s, family, fargs, pd, corpus)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", s, err))
				} else {
					rows = append(rows, r)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].path < rows[j].path })
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "# path\tfamily\texit\tverdict\thost_seconds\tfirst_error")
	for _, r := range rows {
		fmt.Fprintln(w, r.line)
	}
	return w.Flush()
}

// one runs a script and makes its row.
func one(ctx context.Context, m *vm.Machine, script, family, fargs, pd, corpus string) (row, error) {
	args := append([]string{pd, "--send_omit_free"}, strings.Fields(fargs)...)
	args = append(args, filepath.Base(script))
	rctx, cancel := context.WithTimeout(ctx, maxRuntime)
	defer cancel()
	start := time.Now()
	res, err := m.Run(rctx, vm.Request{Args: args, Dir: filepath.Dir(script), SplitStderr: true})
	secs := time.Since(start).Seconds()
	if err != nil {
		return row{}, err
	}
	verdict := "pass"
	switch {
	case res.Canceled:
		verdict = "timeout"
	case res.Err != "":
		return row{}, fmt.Errorf("the run failed: %s", res.Err)
	case res.Code != 0:
		verdict = "fail"
	}
	rel, _ := filepath.Rel(corpus, script)
	return row{rel, fmt.Sprintf("%s\t%s\t%d\t%s\t%.2f\t%s", rel, family, res.Code, verdict, secs, firstError(res.Stderr, filepath.Base(script)))}, nil
}

// firstError is the first line of the reference's errors: one that names
// the script (an error at a line of it) or its own assertion failures.
func firstError(stderr []byte, name string) string {
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, name+":") || strings.Contains(line, "assertion") {
			return strings.ReplaceAll(line, "\t", " ")
		}
	}
	return ""
}
