// Package synth turns one captured TCP connection into a packetdrill script.
// Data flow: capture.Flow (packets, local side) -> Synthesize: packets become
// `<`/`>` lines with sequence numbers relative to each side's ISN, and the
// system calls an application must have made are inferred around them -> a
// *parser.Script that the parser's printer writes out; File does it for a whole capture.
package synth
