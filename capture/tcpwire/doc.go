// Package tcpwire holds what capture, synth, parser and replay all know about TCP/IP on the wire:
// sequence numbers (Seq, with wrap-around arithmetic), the flags and their script spelling, the
// option kinds and the one option decoder (EachOption, DecodeOptions), the Internet checksum, and
// the one IPv4/IPv6 datagram decoder (Decode) that reads both captured frames and the packets a
// replayed kernel sends. It imports nothing of this module, as gVisor's seqnum and header do.
package tcpwire
