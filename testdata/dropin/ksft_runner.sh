#!/bin/bash
# How the kernel's tools/testing/selftests/net/packetdrill/ksft_runner.sh
# calls packetdrill, written for pcap2pkt's tests (used when the kernel's own
# runner is not given): from the script's folder, once per family, the
# packetdrill on PATH in a fresh network namespace, output discarded, one
# KTAP line per family. Beside ../../kselftest/ktap_helpers.sh like the
# kernel's.
. "$(dirname "$(realpath "$0")")/../../kselftest/ktap_helpers.sh"

v4="--ip_version=ipv4 --local_ip=192.168.0.1 --gateway_ip=192.168.0.1 --netmask_ip=255.255.0.0 --remote_ip=192.0.2.1 -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR"
v6="--ip_version=ipv6 --mtu=1520 --local_ip=fd3d:0a0b:17d6::1 --gateway_ip=fd3d:0a0b:17d6:8888::1 --remote_ip=fd3d:fa7b:d17d::1 -D CMSG_LEVEL_IP=SOL_IPV6 -D CMSG_TYPE_RECVERR=IPV6_RECVERR"

[ $# -eq 1 ] || ktap_exit_fail_msg "usage: $0 SCRIPT"
if ! command -v packetdrill >/dev/null; then
	ktap_skip_all "no packetdrill on PATH"
	exit "$KSFT_SKIP"
fi
ktap_print_header
ktap_set_plan 2
for fam in ipv4 ipv6; do
	if [ $fam = ipv4 ]; then args=$v4; else args=$v6; fi
	# $args splits into words on purpose, as the kernel's runner's do.
	if unshare -n packetdrill $args "$(basename "$1")" >/dev/null; then
		ktap_test_pass $fam
	else
		ktap_test_fail $fam
	fi
done
ktap_finished
