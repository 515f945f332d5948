// Package vm runs pcap2pkt's sandboxed commands inside another kernel booted in
// QEMU. The host side (Prepare, Boot) writes an initramfs whose init is this
// same static binary, boots the kernel with the host's root shared read-only
// over 9p, and sends each command as a JSON line over a serial port; the guest
// side (GuestMain) mounts the host's userland, runs the command with
// replay.RunSandboxed as on the host, and answers with its exit code and output.
package vm
