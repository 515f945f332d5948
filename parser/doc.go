// Package parser reads and writes packetdrill scripts (.pkt files).
// ParseFile turns script text into the syntax tree of ast.go (the language
// of the reference's lexer.l and parser.y), Check adds static checks, and
// Print/Format write a tree back in canonical form. The synthesiser builds
// trees and prints them; the replay engine parses scripts and runs trees.
package parser
