package parser

import "fmt"

// The reference's defaults for the options that both a replay and the
// synthesiser reason about (its config.c set_default_config): a script
// that does not set them runs with these.
const (
	DefaultPort           = 8080 // --bind_port and --connect_port
	DefaultMTU            = 1500 // --mtu (TUN_DRIVER_DEFAULT_MTU)
	DefaultToleranceUsecs = 4000 // --tolerance_usecs
)

// ScriptOptions are the --name options the reference accepts in a script
// (its config.c table), mapped to whether they take a value.
var ScriptOptions = map[string]bool{
	"ip_version": true, "bind_port": true, "code_command": true, "code_format": true,
	"code_sockopt": true, "connect_port": true, "remote_ip": true, "local_ip": true,
	"gateway_ip": true, "netmask_ip": true, "speed": true, "mss": true, "mtu": true,
	"init_scripts": true, "tolerance_usecs": true, "tolerance_percent": true,
	"wire_client": false, "wire_server": false, "wire_server_ip": true,
	"wire_server_at": true, "wire_server_port": true, "wire_client_dev": true,
	"wire_server_dev": true, "so_filename": true, "so_flags": true,
	"tcp_ts_ecr_scaled": false, "tcp_ts_tick_usecs": true, "strict_segments": false,
	"non_fatal": true, "dry_run": false, "is_anyip": false, "send_omit_free": false,
	"psp_udp_port": true, "debug": false, "define": true, "verbose": false,
	Pcap2pktOption: true,
}

// Pcap2pktOption names the option line that marks a script written with
// pcap2pkt's extensions (`--pcap2pkt=1` at the top): `*` option values,
// and the matching rules of synthesised scripts (see the README). The
// reference rejects the unknown option, so such a script fails clearly
// under packetdrill instead of meaning something else there.
const Pcap2pktOption = "pcap2pkt"

// Pcap2pktVersion is the only version of the extensions there is.
const Pcap2pktVersion = "1"

// Extended reports whether s says --pcap2pkt at the top.
func Extended(s *Script) bool {
	for _, o := range s.Options {
		if o.Name == Pcap2pktOption {
			return true
		}
	}
	return false
}

// Check checks the option against ScriptOptions, as the reference does
// once it has read the options (it stops on these errors).
func (o *Option) Check() error {
	hasArg, known := ScriptOptions[o.Name]
	switch {
	case !known:
		return fmt.Errorf("option --%s unknown", o.Name)
	case hasArg && !o.Set:
		return fmt.Errorf("option --%s requires an argument", o.Name)
	case !hasArg && o.Set:
		return fmt.Errorf("option --%s forbids an argument", o.Name)
	case o.Name == Pcap2pktOption && o.Value != Pcap2pktVersion:
		return fmt.Errorf("--%s=%s: this build knows version %s of pcap2pkt's extensions", o.Name, o.Value, Pcap2pktVersion)
	}
	return nil
}
