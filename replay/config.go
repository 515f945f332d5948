package replay

// This file holds the run configuration: every option of the reference
// implementation with the reference's defaults, set from the command line
// (Config.Set) or from `--name=value` lines at the top of a script, the
// command line winning as in the reference.

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/pcap2pkt/pcap2pkt/parser"
)

// IP versions accepted by --ip_version.
const (
	ipv4       = "ipv4"
	ipv4Mapped = "ipv4-mapped-ipv6"
	ipv6       = "ipv6"
)

// Config is the configuration of one run. The zero value is not ready: use
// NewConfig, then Set, then (done by Run) Finalize.
type Config struct {
	IPVersion string // ipv4, ipv4-mapped-ipv6 or ipv6; "" means ipv4

	BindPort    uint16 // the local port bind() and inbound SYNs use
	ConnectPort uint16 // the remote port connect() uses

	// The addresses as written; empty means the reference's default for
	// the IP version. RemoteIP may carry a prefix ("192.0.2.1/24").
	LocalIP   string
	RemoteIP  string
	GatewayIP string
	NetmaskIP string

	Speed int // the speed the TUN reports; 0 keeps the current one
	MSS   int // gso_size of injected TCP packets; 0 means none
	MTU   int // MTU of the TUN device

	InitScripts string // comma-separated commands run before the script

	ToleranceUsecs   int64   // timing tolerance
	TolerancePercent float64 // timing tolerance in percent of the interval

	TCPTSECRScaled bool // interpolate inbound TS ecr without a matching TS val
	TCPTSTickUsecs int  // microseconds per TS val tick; 0 disables TS val checks
	StrictSegments bool // do not aggregate outbound segments
	// Extended is set by --pcap2pkt=1: the script uses pcap2pkt's
	// extensions and the matching rules of synthesised scripts (see
	// engine_stream.go).
	Extended        bool
	NonFatalPacket  bool // packet mismatches are warnings
	NonFatalSyscall bool // system call mismatches are warnings
	DryRun          bool // parse only
	IsAnyIP         bool
	SendOmitFree    bool // accepted for compatibility: send buffers are never freed early here
	Verbose         bool
	Debug           int

	CodeCommand string // interpreter for %{ }% blocks
	CodeFormat  string
	CodeSockopt string

	PSPUDPPort int

	// Options of the reference's remote ("wire") mode, accepted so that
	// scripts naming them parse; wire mode itself is not supported.
	WireClient, WireServer                     bool
	WireServerIP, WireClientDev, WireServerDev string
	WireServerPort                             int
	SOFilename, SOFlags                        string

	// Defines are the -D name=value symbols.
	Defines map[string]string

	// explicit records the names set through Set, which script options
	// do not override.
	explicit map[string]bool

	// Resolved by Finalize.
	localAddr, remoteAddr, gatewayAddr netip.Addr
	remotePrefix                       netip.Prefix
	prefixLen                          int
}

// NewConfig returns a Config with the reference's defaults.
func NewConfig() *Config {
	return &Config{
		BindPort:         parser.DefaultPort,
		ConnectPort:      parser.DefaultPort,
		MTU:              parser.DefaultMTU,
		ToleranceUsecs:   parser.DefaultToleranceUsecs,
		TolerancePercent: 12.5,
		CodeCommand:      "python3",
		CodeFormat:       "python",
		WireServerPort:   8081,
		Defines:          map[string]string{},
		explicit:         map[string]bool{},
	}
}

// OptionNames returns the long names of every option, sorted.
func OptionNames() []string {
	names := make([]string, 0, len(parser.ScriptOptions))
	for n := range parser.ScriptOptions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OptionTakesValue reports whether the named option needs a value
// (false for flags such as send_omit_free) and whether it exists.
func OptionTakesValue(name string) (takesValue, ok bool) {
	takesValue, ok = parser.ScriptOptions[canonicalOption(name)]
	return takesValue, ok
}

func canonicalOption(name string) string {
	switch name {
	case "D":
		return "define"
	case "v":
		return "verbose"
	}
	return name
}

// Set applies one option given on the command line, by its reference name
// ("tolerance_usecs", "D" or "define" with "NAME=value", "v" or "verbose").
// Flags take "" or a boolean value. Options set here win over the same
// options written in the script.
func (c *Config) Set(name, value string) error {
	name = canonicalOption(name)
	if err := c.apply(name, value); err != nil {
		return err
	}
	if c.explicit == nil {
		c.explicit = map[string]bool{}
	}
	c.explicit[name] = true
	if name == "define" {
		sym, _, _ := strings.Cut(value, "=")
		c.explicit["define:"+sym] = true
	}
	return nil
}

// applyScriptOptions applies the `--name=value` lines of a script, leaving
// alone the options set on the command line (defines merge, the command
// line winning per symbol).
func (c *Config) applyScriptOptions(s *parser.Script) error {
	for _, o := range s.Options {
		if err := o.Check(); err != nil {
			return &parser.Error{File: s.File, Pos: lineOf(o.Pos), Msg: err.Error()}
		}
		name := o.Name
		value := unquoteOption(o.Value)
		if name == "define" {
			if sym, _, found := strings.Cut(value, "="); found && c.explicit["define:"+sym] {
				continue
			}
		} else if c.explicit[name] && name != "non_fatal" {
			continue
		}
		if err := c.apply(name, value); err != nil {
			return &parser.Error{File: s.File, Pos: lineOf(o.Pos), Msg: err.Error()}
		}
	}
	return nil
}

func unquoteOption(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func parseFlag(name, value string) (bool, error) {
	if value == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("bad --%s: %s", name, value)
	}
	return b, nil
}

func parsePort(name, value string) (uint16, error) {
	p, err := strconv.Atoi(value)
	if err != nil || p <= 0 || p > 0xffff {
		return 0, fmt.Errorf("bad --%s: %s", name, value)
	}
	return uint16(p), nil
}

// setNumber sets *dst to value, a decimal integer within [lo, hi]; false
// (*dst unchanged) if it is not one.
func setNumber[T ~int | ~int64](dst *T, value string, lo, hi int64) bool {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < lo || n > hi {
		return false
	}
	*dst = T(n)
	return true
}

// apply sets one option, validating it as the reference does.
func (c *Config) apply(name, value string) error {
	bad := func() error { return fmt.Errorf("bad --%s: %s", name, value) }
	var err error
	switch name {
	case "ip_version":
		switch value {
		case ipv4, ipv4Mapped, ipv6:
			c.IPVersion = value
		default:
			return bad()
		}
	case "bind_port":
		c.BindPort, err = parsePort(name, value)
	case "connect_port":
		c.ConnectPort, err = parsePort(name, value)
	case "code_command":
		c.CodeCommand = value
	case "code_format":
		c.CodeFormat = value
	case "code_sockopt":
		c.CodeSockopt = value
	case "remote_ip":
		c.RemoteIP = value
	case "local_ip":
		c.LocalIP = value
	case "gateway_ip":
		c.GatewayIP = value
	case "netmask_ip":
		c.NetmaskIP = value
	case "speed":
		if !setNumber(&c.Speed, value, 0, math.MaxUint32) {
			return bad()
		}
	case "mss":
		if !setNumber(&c.MSS, value, 1, math.MaxInt) {
			return bad()
		}
	case "mtu":
		if !setNumber(&c.MTU, value, 0, math.MaxInt) {
			return bad()
		}
	case "init_scripts":
		c.InitScripts = value
	case "tolerance_usecs":
		if !setNumber(&c.ToleranceUsecs, value, 1, math.MaxInt64) {
			return bad()
		}
	case "tolerance_percent":
		f, e := strconv.ParseFloat(value, 64)
		if e != nil || f < 0 || f > 100 {
			return bad()
		}
		c.TolerancePercent = f
	case "tcp_ts_ecr_scaled":
		c.TCPTSECRScaled, err = parseFlag(name, value)
	case "tcp_ts_tick_usecs":
		if !setNumber(&c.TCPTSTickUsecs, value, 0, 1000000) {
			return bad()
		}
	case "strict_segments":
		c.StrictSegments, err = parseFlag(name, value)
	case parser.Pcap2pktOption:
		if value != parser.Pcap2pktVersion {
			return bad()
		}
		c.Extended = true
	case "non_fatal":
		for _, tok := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' }) {
			switch tok {
			case "packet":
				c.NonFatalPacket = true
			case "syscall":
				c.NonFatalSyscall = true
			}
		}
	case "dry_run":
		c.DryRun, err = parseFlag(name, value)
	case "is_anyip":
		c.IsAnyIP, err = parseFlag(name, value)
	case "send_omit_free":
		c.SendOmitFree, err = parseFlag(name, value)
	case "verbose":
		c.Verbose, err = parseFlag(name, value)
	case "debug":
		c.Debug++
	case "psp_udp_port":
		p, e := parsePort(name, value)
		if e != nil {
			return e
		}
		c.PSPUDPPort = int(p)
	case "wire_client":
		c.WireClient, c.WireServer = true, false
	case "wire_server":
		c.WireServer, c.WireClient = true, false
	case "wire_server_ip", "wire_server_at":
		c.WireServerIP, c.WireClient = value, true
	case "wire_server_port":
		p, e := parsePort(name, value)
		if e != nil {
			return e
		}
		c.WireServerPort = int(p)
	case "wire_client_dev":
		c.WireClientDev = value
	case "wire_server_dev":
		c.WireServerDev = value
	case "so_filename":
		c.SOFilename = value
	case "so_flags":
		c.SOFlags = value
	case "define":
		sym, val, found := strings.Cut(value, "=")
		if !found || sym == "" {
			return fmt.Errorf("bad definition: %s", value)
		}
		if c.Defines == nil {
			c.Defines = map[string]string{}
		}
		c.Defines[sym] = val
	default:
		return fmt.Errorf("option '%s' unknown", name)
	}
	return err
}

// finalize fills in the address defaults of the IP version and checks the
// addresses. Run calls it after applying the script's options.
func (c *Config) finalize() error {
	if c.IPVersion == "" {
		c.IPVersion = ipv4
	}
	if c.WireClient || c.WireServer || c.SOFilename != "" {
		return fmt.Errorf("wire mode and --so_filename are not supported")
	}
	v6 := c.IPVersion == ipv6
	remote := c.RemoteIP
	if remote == "" {
		remote = "192.0.2.1/24"
		if v6 {
			remote = "2001:DB8::1/32"
		}
	}
	var err error
	if strings.Contains(remote, "/") {
		c.remotePrefix, err = netip.ParsePrefix(remote)
		if err != nil {
			return fmt.Errorf("bad --remote_ip: %s", remote)
		}
		c.remoteAddr = c.remotePrefix.Addr()
		c.remotePrefix = c.remotePrefix.Masked()
	} else {
		c.remoteAddr, err = netip.ParseAddr(remote)
		if err != nil {
			return fmt.Errorf("bad --remote_ip: %s", remote)
		}
		c.remotePrefix = netip.PrefixFrom(c.remoteAddr, c.remoteAddr.BitLen())
	}
	local := c.LocalIP
	gateway := c.GatewayIP
	if v6 {
		if local == "" {
			local = "fd3d:fa7b:d17d::1"
		}
		if gateway == "" {
			gateway = "fd3d:fa7b:d17d:8888::"
		}
		c.prefixLen = 48
	} else {
		if local == "" {
			local = "192.168.0.1"
		}
		if gateway == "" {
			gateway = "192.168.0.1"
		}
		mask := c.NetmaskIP
		if mask == "" {
			mask = "255.255.0.0"
		}
		m, err := netip.ParseAddr(mask)
		if err != nil || !m.Is4() {
			return fmt.Errorf("bad --netmask_ip: %s", mask)
		}
		b := m.As4()
		bits := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		n := 0
		for bits&0x80000000 != 0 {
			n++
			bits <<= 1
		}
		c.prefixLen = n
	}
	if c.localAddr, err = netip.ParseAddr(local); err != nil {
		return fmt.Errorf("bad --local_ip: %s", local)
	}
	if c.gatewayAddr, err = netip.ParseAddr(gateway); err != nil {
		return fmt.Errorf("bad --gateway_ip: %s", gateway)
	}
	if c.localAddr.Is6() != v6 || c.remoteAddr.Is6() != v6 {
		return fmt.Errorf("addresses %s and %s do not match --ip_version=%s", c.localAddr, c.remoteAddr, c.IPVersion)
	}
	return nil
}

// wireIPv6 reports whether packets on the wire are IPv6.
func (c *Config) wireIPv6() bool { return c.IPVersion == ipv6 }

// socketIPv6 reports whether sockets are AF_INET6 (ipv6 and ipv4-mapped-ipv6).
func (c *Config) socketIPv6() bool { return c.IPVersion != ipv4 && c.IPVersion != "" }

// clone returns a deep copy, so that Run can apply a script's options
// without touching the caller's Config.
func (c *Config) clone() *Config {
	n := *c
	n.Defines = make(map[string]string, len(c.Defines))
	for k, v := range c.Defines {
		n.Defines[k] = v
	}
	n.explicit = make(map[string]bool, len(c.explicit))
	for k, v := range c.explicit {
		n.explicit[k] = v
	}
	return &n
}

// Resolve returns the configuration a script runs with: a copy of c with
// the script's options applied (the command line winning) and the
// addresses resolved. Run does the same; the CLI calls it first to set up
// the network (NetConfig) before Run.
func (c *Config) Resolve(s *parser.Script) (*Config, error) {
	r := c.clone()
	if err := r.applyScriptOptions(s); err != nil {
		return nil, err
	}
	if err := r.finalize(); err != nil {
		return nil, &parser.Error{File: s.File, Msg: err.Error(), Err: err}
	}
	if err := r.checkPackets(s); err != nil {
		return nil, err
	}
	return r, nil
}

// NetConfig is the network the run needs (after Resolve or Finalize).
func (c *Config) NetConfig() NetConfig {
	nc := NetConfig{
		IPVersion: c.IPVersion,
		LocalIP:   c.localAddr,
		RemoteIP:  c.remoteAddr,
		GatewayIP: c.gatewayAddr,
		PrefixLen: c.prefixLen,
		MTU:       c.MTU,
		MSS:       c.MSS,
	}
	if c.remotePrefix.IsValid() && c.remotePrefix.Bits() < c.remoteAddr.BitLen() {
		nc.RemotePrefix = c.remotePrefix
	}
	return nc
}
