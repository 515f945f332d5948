// Package replay runs a parsed packetdrill script against the local Linux kernel and
// judges it as the reference implementation does. Run walks the script's one timeline:
// inbound packets are built from the syntax tree and injected through a Device (a TUN in a
// sandboxed network namespace), outbound packets are sniffed and matched field by field,
// system calls run on OS threads (blocking ones concurrently), and any difference is a
// *parser.Error naming the line (the error type the parser reports with).
package replay
