package parser

// This file is the syntax tree shared by the parser, the printer, the
// synthesiser (which builds trees) and the replay engine (which runs them).
// Every node carries the position of its first token. Optional parts of the
// grammar are pointers or nil slices, so that the printer can tell "absent"
// from "zero" and print exactly what was written.

import "fmt"

// Pos is a position in a script: 1-based line and column (in bytes).
// The zero Pos means "no position" (a node built by the synthesiser).
type Pos struct {
	Line int
	Col  int
}

// IsValid reports whether the position was set by the parser.
func (p Pos) IsValid() bool { return p.Line > 0 }

func (p Pos) String() string {
	if !p.IsValid() {
		return "-"
	}
	return fmt.Sprintf("%d:%d", p.Line, p.Col)
}

// Node is any node of the tree.
type Node interface {
	Position() Pos
}

// Script is one parsed .pkt file.
type Script struct {
	File     string     // the file name used in errors
	Options  []*Option  // --name=value lines before the first event
	Init     *Command   // an untimed backquoted command before the first event
	Events   []*Event   // the timed events in order
	Cleanup  *Command   // an untimed backquoted command after the last event
	Comments []*Comment // every comment, in source order (for the printer)
	// TimeColumn is the layout of the event times: 0 when each line starts
	// with its time, N when times are right-aligned to end in column N
	// (a range by its start), as most upstream scripts align them in
	// column 5. The parser takes it from the source; built trees leave it
	// 0.
	TimeColumn int
}

// Option is a `--name=value` or `--name` line.
type Option struct {
	Pos   Pos
	End   Pos    // just after the option's last token (zero in built trees)
	Name  string // without the leading "--"
	Value string // the value as written (quotes kept for strings); "" if none
	Set   bool   // whether "=value" was given
}

// Comment is a `// ...` or `/* ... */` comment, delimiters included.
type Comment struct {
	Pos  Pos
	Text string
	// Indent is the blanks before a comment that begins its line, which
	// the printer keeps; "" for trailing comments and in built trees.
	Indent string
}

// TimeKind says how an event's time is written.
type TimeKind int

const (
	TimeAbsolute      TimeKind = iota // 1.5
	TimeRelative                      // +1.5
	TimeAny                           // *
	TimeAbsoluteRange                 // 1~2
	TimeRelativeRange                 // +1~+2
)

// Time is an event time; values are microseconds. For ranges End is the
// upper bound (relative to the previous event for TimeRelativeRange, as in
// the reference).
type Time struct {
	Pos   Pos
	Kind  TimeKind
	Usecs int64
	End   int64
	// Anchor is a pcap2pkt extension (`+0.020^`, an inbound packet of a
	// --pcap2pkt script): the time counts from the kernel's latest
	// transmission of what the packet answers (the last byte it newly
	// acknowledges or SACKs, or the SYN a SYN-ACK answers), not from the
	// line before. So the peer answers what the kernel sent, when it sent
	// it, as the captured peer did.
	// `^N` counts from the N-th transmission of it (a retransmission
	// answered); AnchorN is 0 for `^`, the first.
	Anchor  bool
	AnchorN int
	Text    Spelling // Usecs as written, without '+' (".1", "0.100")
	EndText Spelling // End as written
}

// Spelling is a number as the source wrote it, so that the printer keeps
// ".1" rather than writing 0.100000; "" in built trees. The printer uses a
// spelling only while it still reads as its node's value, so code that
// changes the value need not clear it.
type Spelling string

// Event is one timed line of a script.
type Event struct {
	Pos    Pos
	End    Pos // just after the event's last token (zero in built trees)
	Time   Time
	Action Action // *Packet, *Syscall, *Command or *Code
	// Breaks are where the source continued the action on a new line
	// (a long recvmsg(...) written one field a line), which the printer
	// keeps; nil in built trees and for one-line events.
	Breaks []Break
}

// Break is a line break inside an event: the action's Token-th token
// (counted from 0, its first), Text, began a line after the blanks
// Indent. The printer breaks the line there only while that token is
// still Text, so a tree changed since the parse loses the break, not its
// meaning.
type Break struct {
	Token  int
	Text   string
	Indent string
}

// Action is what an event does.
type Action interface {
	Node
	action()
}

// Command is a backquoted shell command.
type Command struct {
	Pos  Pos
	End  Pos    // just after the closing backquote (zero in built trees)
	Text string // the text between the backquotes
}

// Code is a `%{ ... }%` block (python run after the script, as the reference
// does).
type Code struct {
	Pos  Pos
	Text string // the text between the delimiters, trimmed of blanks as the reference does
}

// Direction of a packet line.
type Direction int

const (
	Inbound  Direction = iota // "<": injected into the kernel under test
	Outbound                  // ">": expected from the kernel under test
)

// Packet is a `<` or `>` line.
type Packet struct {
	Pos    Pos
	Dir    Direction
	Encaps []Encap  // outer headers from the outermost in, as written
	IPInfo *IPInfo  // `[ecn ...]`/`(tos ...)` before the transport; nil if absent
	PSP    *PSPInfo // `encap psp spi N`; TCP only
	Ports  *Ports   // `src>dst` ports; nil if absent
	TCP    *TCP     // exactly one of TCP, UDP, ICMP is set
	UDP    *UDP
	ICMP   *ICMP
}

// Encap is an outer header of an encapsulated packet.
type Encap interface {
	Node
	encap()
}

// EncapIP is `ipv4 [info] a.b.c.d > e.f.g.h:` or the ipv6 form.
type EncapIP struct {
	Pos     Pos
	Version int // 4 or 6
	Info    *IPInfo
	Src     string
	Dst     string
}

// EncapGRE is `gre:` or `gre flags ... sum ... off ... key ... seq ...:`.
type EncapGRE struct {
	Pos    Pos
	Header *GREHeader // nil for a bare `gre:`
}

// EncapMPLS is `mpls (label ..., tc ..., [S], ttl ...) ...:`.
type EncapMPLS struct {
	Pos   Pos
	Stack []MPLSEntry
}

// GREHeader is the header expression of a GRE encapsulation (also usable as
// an expression in braces).
type GREHeader struct {
	Pos        Pos
	FlagNames  []string // e.g. ["checksum present", "key present"]; nil when FlagsValue is used
	FlagsValue *IntLit  // `flags 0x2000`
	Sum        *IntLit
	Off        *IntLit
	Key        *IntLit
	KeyEquals  bool // `key=N` rather than `key N`
	Seq        *IntLit
	Commas     bool // whether the parts were separated by commas
}

// MPLSEntry is one `(label L, tc T, [S], ttl N)` entry.
type MPLSEntry struct {
	Pos    Pos
	Label  int64
	TC     int64
	Bottom bool
	TTL    int64
}

// IPInfo is the bracketed IP information of a packet.
type IPInfo struct {
	Pos       Pos
	Paren     bool   // written with ( ) rather than [ ]
	TOS       string // "", "noecn", "ect0", "ect1", "ce", "ect01" or "tos"
	TOSValue  int64  // the value of `tos 0xNN`
	FlowLabel *int64 // `flowlabel 0xNNN`
	TTL       *int64 // `ttl N`
}

// PSPInfo is `encap psp spi N`.
type PSPInfo struct {
	Pos Pos
	SPI *IntLit
}

// Ports is `src>dst` before the flags.
type Ports struct {
	Pos Pos
	Src int64
	Dst int64
}

// TCP is the TCP part of a packet line.
type TCP struct {
	Pos     Pos
	Flags   string // as written: "S", "S.", "P.", "F.", "R", "." ...; "-" for none
	Seq     uint32 // start sequence number
	Len     uint32 // payload length; the end is Seq+Len
	Ack     *uint32
	Win     *uint32
	Urg     *uint32
	Options *TCPOptions // nil when no <...> list is written
}

// TCPOptions is the `<...>` list. Any is `<...>`: options not checked.
type TCPOptions struct {
	Pos  Pos
	Any  bool
	List []*TCPOption
}

// TCPOptionKind names a TCP option form of the script language.
type TCPOptionKind int

const (
	OptNOP TCPOptionKind = iota
	OptEOL
	OptMSS
	OptWScale
	OptSACKOK
	OptSACK
	OptMD5
	OptTimestamp
	OptFastOpen    // FO [cookie]
	OptFastOpenExp // FOEXP [cookie]
	OptAccECN      // ECN e0b N [ceb N [e1b N]] in any of the grammar's orders
)

// optionNames spells each option kind as scripts write it; the parser and
// the printer both read it.
var optionNames = [...]string{
	OptNOP: "nop", OptEOL: "eol", OptMSS: "mss", OptWScale: "wscale", OptSACKOK: "sackOK", OptSACK: "sack",
	OptMD5: "md5", OptTimestamp: "TS", OptFastOpen: "FO", OptFastOpenExp: "FOEXP", OptAccECN: "ECN",
}

// TCPOption is one option of a `<...>` list.
type TCPOption struct {
	Pos    Pos
	Kind   TCPOptionKind
	Value  int64         // mss, wscale
	SACK   []SACKBlock   // sack
	TSVal  uint32        // TS val
	TSEcr  uint32        // TS ecr
	Cookie string        // FO/FOEXP cookie or md5 digest, hex as written; "" if none
	AccECN []AccECNField // ECN fields in the order written
	Wild   OptWild       // values written as `*` (a pcap2pkt extension)
	// Sym is the -D symbol written for the value (mss, wscale) or the
	// cookie or digest (FO, FOEXP, md5), which the printer writes back;
	// "" when the value was written. Value or Cookie hold the symbol's
	// definition, or nothing when it was undefined (Config.AllowUndefined).
	Sym string
}

// OptWild marks the values of a TCP option written as `*`: `mss *`,
// `wscale *`, `TS val * ecr *`, `FO *`. This is a pcap2pkt extension
// (scripts that say --pcap2pkt at the top): in an outbound packet the
// option must be there, with any value, where the value follows the host or
// a secret rather than the connection (the MSS from the route, the window
// scale from the buffer sizes, a Fast Open cookie from the server's key).
type OptWild uint8

const (
	WildValue  OptWild = 1 << iota // mss, wscale
	WildTSVal                      // TS val
	WildTSEcr                      // TS ecr
	WildCookie                     // FO, FOEXP
)

// SACKBlock is `left:right`.
type SACKBlock struct {
	Left, Right uint32
}

// AccECNField is one `e0b N`, `ceb N` or `e1b N` of an AccECN option.
type AccECNField struct {
	Name  string // "e0b", "ceb", "e1b"
	Value uint32
}

// UDP is `udp (N)`.
type UDP struct {
	Pos Pos
	Len int64
}

// ICMP is `icmp type [code] [mtu N] [id N] [[echoed]]`.
type ICMP struct {
	Pos     Pos
	Type    string
	Code    string // "" if absent
	CodeSym string // the -D symbol written for the code; "" if the code was written
	MTU     *int64
	ID      *int64
	Echoed  *ICMPEchoed // the quoted inner packet; nil if absent
}

// ICMPEchoed is the bracketed description of the packet an ICMP error quotes.
type ICMPEchoed struct {
	Pos   Pos
	Proto string // "tcp" (written as seq), "udp" or "raw"
	Seq   uint32 // tcp only
	Len   int64
}

// Syscall is a system call line: `[...  end] name(args) = result [ERRNO (note)] [(note)]`.
type Syscall struct {
	Pos       Pos
	End       *Time // end time after `...` for a blocking call; nil otherwise
	Name      string
	NamePos   Pos
	Args      []Expr // nil for "()"
	Result    Expr
	Errno     string // e.g. "EINPROGRESS"; "" if none
	ErrnoNote string // the parenthesised strerror after the errno
	Note      string // an extra parenthesised note; "" if none
	HasNote   bool
}

// Expr is an expression in a system call.
type Expr interface {
	Node
	expr()
}

// Ellipsis is `...`: anything, or "fill in the live value".
type Ellipsis struct{ Pos Pos }

// IntLit is an integer; Hex keeps how it was written.
type IntLit struct {
	Pos   Pos
	Value int64
	Hex   bool
	Sym   string // the -D symbol written for it (Value is 0 if undefined); "" if none
}

// Word is a symbol such as SOCK_STREAM or a -D definition's name.
type Word struct {
	Pos  Pos
	Name string
	Sym  string // the -D symbol written, when Name is its definition; "" if none
}

// StringLit is a double-quoted string; Ellipsis is the `"abc"...` form.
type StringLit struct {
	Pos      Pos
	Value    string // as written between the quotes (escapes not decoded)
	Ellipsis bool
	Sym      string // the -D symbol written, when Value is its definition; "" if none
}

// Binary is `x | y`, `x . y` (adjacent strings) or `name = value`.
type Binary struct {
	Pos Pos
	Op  string // "|", "." or "="
	X   Expr
	Y   Expr
}

// List is `[a, b]` (an array) or `{a, b}` (a brace list).
type List struct {
	Pos   Pos
	Brace bool
	Elems []Expr
}

// InAddr is `inet_addr("1.2.3.4")`; In6 marks `inet6_addr("::1")`.
type InAddr struct {
	Pos  Pos
	In6  bool
	Addr string
}

// Sockaddr is `{sa_family=AF_INET, sin_port=htons(N), sin_addr=inet_addr("...")}`.
type Sockaddr struct {
	Pos    Pos
	Family string
	Port   int64
	Addr   string
}

// Msghdr is `{msg_name(...)=..., msg_iov(N)=[...], msg_flags=F[, msg_control=[...]]}`.
type Msghdr struct {
	Pos     Pos
	IovLen  *IntLit
	Iov     Expr // a *List
	Flags   Expr
	Control Expr // a *List; nil if absent
}

// Iovec is `{..., N}`.
type Iovec struct {
	Pos Pos
	Len *IntLit
}

// Pollfd is `{fd=F, events=E[, revents=R]}`.
type Pollfd struct {
	Pos     Pos
	FD      Expr
	Events  Expr
	Revents Expr // nil if absent
}

// EpollEvent is `{events=E, fd|ptr|u32|u64=V}`.
type EpollEvent struct {
	Pos    Pos
	Events Expr
	Field  string // "fd", "ptr", "u32" or "u64"
	Value  Expr
}

// Linger is `{onoff=N, linger=M}`.
type Linger struct {
	Pos    Pos
	OnOff  int64
	Linger int64
}

// Cmsg is `{cmsg_level=L, cmsg_type=T, cmsg_data=D}`.
type Cmsg struct {
	Pos   Pos
	Level Expr
	Type  Expr
	Data  Expr
}

// ScmTimestamping is `{scm_sec=S, scm_nsec=N}`.
type ScmTimestamping struct {
	Pos  Pos
	Sec  int64
	Nsec int64
}

// SockExtendedErr is `{ee_errno=..., ee_origin=..., ee_type=..., ee_code=..., ee_info=..., ee_data=...}`.
type SockExtendedErr struct {
	Pos                                   Pos
	Errno, Origin, Type, Code, Info, Data Expr
}

// A field is one `name=value` member of a brace literal whose members are
// fixed (a fieldLit). The parser reads and the printer writes each such
// literal from its one list of fields. The value is an expression (expr)
// or an integer (num).
type field struct {
	name     string
	expr     *Expr
	num      *int64
	optional bool     // the last field, which may be left out; printed when set
	choices  []string // the name is one of these, kept in *chosen (instead of name)
	chosen   *string
}

// fieldLit is a brace literal made of fields.
type fieldLit interface {
	Expr
	fields() []field
}

func (n *Pollfd) fields() []field {
	return []field{{name: "fd", expr: &n.FD}, {name: "events", expr: &n.Events}, {name: "revents", expr: &n.Revents, optional: true}}
}

func (n *EpollEvent) fields() []field {
	return []field{{name: "events", expr: &n.Events}, {choices: []string{"fd", "ptr", "u32", "u64"}, chosen: &n.Field, expr: &n.Value}}
}

func (n *Linger) fields() []field {
	return []field{{name: "onoff", num: &n.OnOff}, {name: "linger", num: &n.Linger}}
}

func (n *Cmsg) fields() []field {
	return []field{{name: "cmsg_level", expr: &n.Level}, {name: "cmsg_type", expr: &n.Type}, {name: "cmsg_data", expr: &n.Data}}
}

func (n *ScmTimestamping) fields() []field {
	return []field{{name: "scm_sec", num: &n.Sec}, {name: "scm_nsec", num: &n.Nsec}}
}

func (n *SockExtendedErr) fields() []field {
	return []field{{name: "ee_errno", expr: &n.Errno}, {name: "ee_origin", expr: &n.Origin}, {name: "ee_type", expr: &n.Type},
		{name: "ee_code", expr: &n.Code}, {name: "ee_info", expr: &n.Info}, {name: "ee_data", expr: &n.Data}}
}

// MPLSStackExpr is `{ (label ...) ... }` as an expression.
type MPLSStackExpr struct {
	Pos   Pos
	Stack []MPLSEntry
}

// GREExpr is `{ flags ... }` as an expression.
type GREExpr struct {
	Pos    Pos
	Header *GREHeader
}

func (n *Option) Position() Pos          { return n.Pos }
func (n *Comment) Position() Pos         { return n.Pos }
func (n *Event) Position() Pos           { return n.Pos }
func (n *Command) Position() Pos         { return n.Pos }
func (n *Code) Position() Pos            { return n.Pos }
func (n *Packet) Position() Pos          { return n.Pos }
func (n *Syscall) Position() Pos         { return n.Pos }
func (n *EncapIP) Position() Pos         { return n.Pos }
func (n *EncapGRE) Position() Pos        { return n.Pos }
func (n *EncapMPLS) Position() Pos       { return n.Pos }
func (n *Ellipsis) Position() Pos        { return n.Pos }
func (n *IntLit) Position() Pos          { return n.Pos }
func (n *Word) Position() Pos            { return n.Pos }
func (n *StringLit) Position() Pos       { return n.Pos }
func (n *Binary) Position() Pos          { return n.Pos }
func (n *List) Position() Pos            { return n.Pos }
func (n *InAddr) Position() Pos          { return n.Pos }
func (n *Sockaddr) Position() Pos        { return n.Pos }
func (n *Msghdr) Position() Pos          { return n.Pos }
func (n *Iovec) Position() Pos           { return n.Pos }
func (n *Pollfd) Position() Pos          { return n.Pos }
func (n *EpollEvent) Position() Pos      { return n.Pos }
func (n *Linger) Position() Pos          { return n.Pos }
func (n *Cmsg) Position() Pos            { return n.Pos }
func (n *ScmTimestamping) Position() Pos { return n.Pos }
func (n *SockExtendedErr) Position() Pos { return n.Pos }
func (n *MPLSStackExpr) Position() Pos   { return n.Pos }
func (n *GREExpr) Position() Pos         { return n.Pos }

func (*Command) action() {}
func (*Code) action()    {}
func (*Packet) action()  {}
func (*Syscall) action() {}

func (*EncapIP) encap()   {}
func (*EncapGRE) encap()  {}
func (*EncapMPLS) encap() {}

func (*Ellipsis) expr()        {}
func (*IntLit) expr()          {}
func (*Word) expr()            {}
func (*StringLit) expr()       {}
func (*Binary) expr()          {}
func (*List) expr()            {}
func (*InAddr) expr()          {}
func (*Sockaddr) expr()        {}
func (*Msghdr) expr()          {}
func (*Iovec) expr()           {}
func (*Pollfd) expr()          {}
func (*EpollEvent) expr()      {}
func (*Linger) expr()          {}
func (*Cmsg) expr()            {}
func (*ScmTimestamping) expr() {}
func (*SockExtendedErr) expr() {}
func (*MPLSStackExpr) expr()   {}
func (*GREExpr) expr()         {}
