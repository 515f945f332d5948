#!/bin/sh
# A stand-in, written for pcap2pkt's tests, for packetdrill's
# gtests/net/packetdrill/in_netns.sh, which run_all.py puts before each
# packetdrill command: run the command in a network namespace of its own.
exec unshare -n "$@"
