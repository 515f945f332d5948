package replay

// The symbol table maps the strace-style constant names a script may write in
// a system call (SOCK_STREAM, MSG_ZEROCOPY, EPOLLOUT, ETIMEDOUT ...) to their
// Linux values. It covers every name the reference accepts on Linux plus the
// few extra names scripts and %{ }% blocks use. Values come from
// golang.org/x/sys/unix so that they follow the build architecture; the ones
// x/sys does not export are written out with the UAPI header they come from.

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Values missing from golang.org/x/sys/unix.
const (
	// include/uapi/asm-generic/poll.h (glibc exposes them under _GNU_SOURCE).
	pollRdNorm = 0x40
	pollRdBand = 0x80
	pollWrNorm = 0x100
	pollWrBand = 0x200
	pollMsg    = 0x400

	// include/uapi/linux/tcp.h: enum tcp_ca_state.
	tcpCAOpen     = 0
	tcpCADisorder = 1
	tcpCACWR      = 2
	tcpCARecovery = 3
	tcpCALoss     = 4

	// include/net/tcp.h: the "infinite" slow start threshold.
	tcpInfiniteSsthresh = 0x7fffffff

	// include/uapi/linux/tcp.h: tcpi_options bits.
	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWscale     = 4
	tcpiOptECN        = 8
	tcpiOptECNSeen    = 16
	tcpiOptSynData    = 32
	tcpiOptUsecTS     = 64
	tcpiOptTFOChild   = 128

	// include/uapi/linux/fcntl.h (glibc spells it F_DUPFD_CLOEXEC = 1030).
	fDupfdCloexec = 1030
)

// symbols is the whole table; errno names are in errnos below and are
// resolved by LookupSymbol too, as in the reference.
var symbols = map[string]int64{
	// Address and protocol families, socket types, protocols.
	"AF_UNSPEC": unix.AF_UNSPEC, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6,
	"AF_PACKET": unix.AF_PACKET, "AF_UNIX": unix.AF_UNIX, "AF_LOCAL": unix.AF_LOCAL,
	"PF_INET": unix.AF_INET, "PF_INET6": unix.AF_INET6, "PF_UNSPEC": unix.AF_UNSPEC,
	"SOCK_STREAM": unix.SOCK_STREAM, "SOCK_DGRAM": unix.SOCK_DGRAM, "SOCK_RAW": unix.SOCK_RAW,
	"SOCK_SEQPACKET": unix.SOCK_SEQPACKET, "SOCK_NONBLOCK": unix.SOCK_NONBLOCK,
	"SOCK_CLOEXEC": unix.SOCK_CLOEXEC,
	"IPPROTO_IP":   unix.IPPROTO_IP, "IPPROTO_IPV6": unix.IPPROTO_IPV6,
	"IPPROTO_ICMP": unix.IPPROTO_ICMP, "IPPROTO_ICMPV6": unix.IPPROTO_ICMPV6,
	"IPPROTO_TCP": unix.IPPROTO_TCP, "IPPROTO_UDP": unix.IPPROTO_UDP,
	"IPPROTO_RAW": unix.IPPROTO_RAW, "IPPROTO_GRE": unix.IPPROTO_GRE,
	"IPPROTO_MPTCP": unix.IPPROTO_MPTCP, "IPPROTO_SCTP": unix.IPPROTO_SCTP,
	"SHUT_RD": unix.SHUT_RD, "SHUT_WR": unix.SHUT_WR, "SHUT_RDWR": unix.SHUT_RDWR,
	"NULL": 0,

	// Option levels.
	"SOL_SOCKET": unix.SOL_SOCKET, "SOL_IP": unix.SOL_IP, "SOL_IPV6": unix.SOL_IPV6,
	"SOL_TCP": unix.SOL_TCP, "SOL_UDP": unix.SOL_UDP,

	// SOL_SOCKET options.
	"SO_ACCEPTCONN": unix.SO_ACCEPTCONN, "SO_ATTACH_FILTER": unix.SO_ATTACH_FILTER,
	"SO_BINDTODEVICE": unix.SO_BINDTODEVICE, "SO_BROADCAST": unix.SO_BROADCAST,
	"SO_BSDCOMPAT": unix.SO_BSDCOMPAT, "SO_DEBUG": unix.SO_DEBUG,
	"SO_DETACH_FILTER": unix.SO_DETACH_FILTER, "SO_DONTROUTE": unix.SO_DONTROUTE,
	"SO_ERROR": unix.SO_ERROR, "SO_KEEPALIVE": unix.SO_KEEPALIVE, "SO_LINGER": unix.SO_LINGER,
	"SO_MARK": unix.SO_MARK, "SO_NO_CHECK": unix.SO_NO_CHECK, "SO_OOBINLINE": unix.SO_OOBINLINE,
	"SO_PASSCRED": unix.SO_PASSCRED, "SO_PEERCRED": unix.SO_PEERCRED,
	"SO_PEERNAME": unix.SO_PEERNAME, "SO_PEERSEC": unix.SO_PEERSEC,
	"SO_PRIORITY": unix.SO_PRIORITY, "SO_RCVBUF": unix.SO_RCVBUF,
	"SO_RCVLOWAT": unix.SO_RCVLOWAT, "SO_RCVTIMEO": unix.SO_RCVTIMEO,
	"SO_REUSEADDR": unix.SO_REUSEADDR, "SO_REUSEPORT": unix.SO_REUSEPORT,
	"SO_SECURITY_AUTHENTICATION":       unix.SO_SECURITY_AUTHENTICATION,
	"SO_SECURITY_ENCRYPTION_NETWORK":   unix.SO_SECURITY_ENCRYPTION_NETWORK,
	"SO_SECURITY_ENCRYPTION_TRANSPORT": unix.SO_SECURITY_ENCRYPTION_TRANSPORT,
	"SO_SNDBUF":                        unix.SO_SNDBUF, "SO_SNDLOWAT": unix.SO_SNDLOWAT,
	"SO_SNDTIMEO": unix.SO_SNDTIMEO, "SO_TIMESTAMP": unix.SO_TIMESTAMP,
	"SO_TIMESTAMPING": unix.SO_TIMESTAMPING, "SO_TYPE": unix.SO_TYPE,
	"SO_MAX_PACING_RATE": unix.SO_MAX_PACING_RATE, "SO_ZEROCOPY": unix.SO_ZEROCOPY,
	"SO_MEMINFO": unix.SO_MEMINFO, "SO_COOKIE": unix.SO_COOKIE,
	"SO_INCOMING_CPU": unix.SO_INCOMING_CPU, "SO_TXTIME": unix.SO_TXTIME,

	// Extended errors (include/uapi/linux/errqueue.h).
	"SO_EE_ORIGIN_NONE": unix.SO_EE_ORIGIN_NONE, "SO_EE_ORIGIN_LOCAL": unix.SO_EE_ORIGIN_LOCAL,
	"SO_EE_ORIGIN_ICMP": unix.SO_EE_ORIGIN_ICMP, "SO_EE_ORIGIN_ICMP6": unix.SO_EE_ORIGIN_ICMP6,
	"SO_EE_ORIGIN_TXSTATUS":      unix.SO_EE_ORIGIN_TXSTATUS,
	"SO_EE_ORIGIN_TIMESTAMPING":  unix.SO_EE_ORIGIN_TIMESTAMPING,
	"SO_EE_ORIGIN_ZEROCOPY":      unix.SO_EE_ORIGIN_ZEROCOPY,
	"SO_EE_CODE_ZEROCOPY_COPIED": unix.SO_EE_CODE_ZEROCOPY_COPIED,

	// Timestamping (include/uapi/linux/net_tstamp.h, errqueue.h).
	"SOF_TIMESTAMPING_TX_HARDWARE":  unix.SOF_TIMESTAMPING_TX_HARDWARE,
	"SOF_TIMESTAMPING_TX_SOFTWARE":  unix.SOF_TIMESTAMPING_TX_SOFTWARE,
	"SOF_TIMESTAMPING_RX_HARDWARE":  unix.SOF_TIMESTAMPING_RX_HARDWARE,
	"SOF_TIMESTAMPING_RX_SOFTWARE":  unix.SOF_TIMESTAMPING_RX_SOFTWARE,
	"SOF_TIMESTAMPING_SOFTWARE":     unix.SOF_TIMESTAMPING_SOFTWARE,
	"SOF_TIMESTAMPING_SYS_HARDWARE": unix.SOF_TIMESTAMPING_SYS_HARDWARE,
	"SOF_TIMESTAMPING_RAW_HARDWARE": unix.SOF_TIMESTAMPING_RAW_HARDWARE,
	"SOF_TIMESTAMPING_OPT_ID":       unix.SOF_TIMESTAMPING_OPT_ID,
	"SOF_TIMESTAMPING_TX_SCHED":     unix.SOF_TIMESTAMPING_TX_SCHED,
	"SOF_TIMESTAMPING_TX_ACK":       unix.SOF_TIMESTAMPING_TX_ACK,
	"SOF_TIMESTAMPING_OPT_CMSG":     unix.SOF_TIMESTAMPING_OPT_CMSG,
	"SOF_TIMESTAMPING_OPT_TSONLY":   unix.SOF_TIMESTAMPING_OPT_TSONLY,
	"SOF_TIMESTAMPING_OPT_STATS":    unix.SOF_TIMESTAMPING_OPT_STATS,
	"SOF_TIMESTAMPING_OPT_PKTINFO":  unix.SOF_TIMESTAMPING_OPT_PKTINFO,
	"SOF_TIMESTAMPING_OPT_TX_SWHW":  unix.SOF_TIMESTAMPING_OPT_TX_SWHW,
	"SOF_TIMESTAMPING_OPT_ID_TCP":   unix.SOF_TIMESTAMPING_OPT_ID_TCP,
	"SCM_TIMESTAMPING":              unix.SCM_TIMESTAMPING,
	"SCM_TSTAMP_SND":                unix.SCM_TSTAMP_SND,
	"SCM_TSTAMP_SCHED":              unix.SCM_TSTAMP_SCHED,
	"SCM_TSTAMP_ACK":                unix.SCM_TSTAMP_ACK,
	"SCM_TIMESTAMPING_OPT_STATS":    unix.SCM_TIMESTAMPING_OPT_STATS,
	"SCM_TIMESTAMPING_PKTINFO":      unix.SCM_TIMESTAMPING_PKTINFO,
	"SCM_RIGHTS":                    unix.SCM_RIGHTS,
	"SCM_CREDENTIALS":               unix.SCM_CREDENTIALS,

	// Attributes of SCM_TIMESTAMPING_OPT_STATS (include/uapi/linux/tcp.h,
	// enum following TCP_NLA_PAD = 0).
	"TCP_NLA_BUSY": 1, "TCP_NLA_RWND_LIMITED": 2,
	"TCP_NLA_SNDBUF_LIMITED":        3,
	"TCP_NLA_DATA_SEGS_OUT":         4,
	"TCP_NLA_TOTAL_RETRANS":         5,
	"TCP_NLA_PACING_RATE":           6,
	"TCP_NLA_DELIVERY_RATE":         7,
	"TCP_NLA_SND_CWND":              8,
	"TCP_NLA_REORDERING":            9,
	"TCP_NLA_MIN_RTT":               10,
	"TCP_NLA_RECUR_RETRANS":         11,
	"TCP_NLA_DELIVERY_RATE_APP_LMT": 12,
	"TCP_NLA_SNDQ_SIZE":             13,
	"TCP_NLA_CA_STATE":              14,
	"TCP_NLA_SND_SSTHRESH":          15,
	"TCP_NLA_DELIVERED":             16,
	"TCP_NLA_DELIVERED_CE":          17,
	"TCP_NLA_BYTES_SENT":            18,
	"TCP_NLA_BYTES_RETRANS":         19,
	"TCP_NLA_DSACK_DUPS":            20,
	"TCP_NLA_REORD_SEEN":            21,
	"TCP_NLA_SRTT":                  22,

	// Congestion avoidance states, as both the reference's symbol spelling
	// and the kernel's (used by %{ }% blocks).
	"TCP_CA_OPEN": tcpCAOpen, "TCP_CA_DISORDER": tcpCADisorder, "TCP_CA_CWR": tcpCACWR,
	"TCP_CA_RECOVERY": tcpCARecovery, "TCP_CA_LOSS": tcpCALoss,
	"TCP_CA_Open": tcpCAOpen, "TCP_CA_Disorder": tcpCADisorder,
	"TCP_CA_Recovery": tcpCARecovery, "TCP_CA_Loss": tcpCALoss,
	"TCP_INFINITE_SSTHRESH": tcpInfiniteSsthresh,

	// TCP states (include/net/tcp_states.h).
	"TCP_ESTABLISHED": unix.BPF_TCP_ESTABLISHED, "TCP_SYN_SENT": unix.BPF_TCP_SYN_SENT,
	"TCP_SYN_RECV": unix.BPF_TCP_SYN_RECV, "TCP_FIN_WAIT1": unix.BPF_TCP_FIN_WAIT1,
	"TCP_FIN_WAIT2": unix.BPF_TCP_FIN_WAIT2, "TCP_TIME_WAIT": unix.BPF_TCP_TIME_WAIT,
	"TCP_CLOSE": unix.BPF_TCP_CLOSE, "TCP_CLOSE_WAIT": unix.BPF_TCP_CLOSE_WAIT,
	"TCP_LAST_ACK": unix.BPF_TCP_LAST_ACK, "TCP_LISTEN": unix.BPF_TCP_LISTEN,
	"TCP_CLOSING": unix.BPF_TCP_CLOSING, "TCP_NEW_SYN_RECV": unix.BPF_TCP_NEW_SYN_RECV,

	"TCPI_OPT_TIMESTAMPS": tcpiOptTimestamps, "TCPI_OPT_SACK": tcpiOptSACK,
	"TCPI_OPT_WSCALE": tcpiOptWscale, "TCPI_OPT_ECN": tcpiOptECN,
	"TCPI_OPT_ECN_SEEN": tcpiOptECNSeen, "TCPI_OPT_SYN_DATA": tcpiOptSynData,
	"TCPI_OPT_USEC_TS": tcpiOptUsecTS, "TCPI_OPT_TFO_CHILD": tcpiOptTFOChild,

	// IP and IPv6 options.
	"IP_TOS": unix.IP_TOS, "IP_TTL": unix.IP_TTL, "IP_MTU_DISCOVER": unix.IP_MTU_DISCOVER,
	"IPV6_MTU_DISCOVER": unix.IPV6_MTU_DISCOVER,
	"IP_PMTUDISC_WANT":  unix.IP_PMTUDISC_WANT, "IP_PMTUDISC_DONT": unix.IP_PMTUDISC_DONT,
	"IP_PMTUDISC_DO": unix.IP_PMTUDISC_DO, "IP_PMTUDISC_PROBE": unix.IP_PMTUDISC_PROBE,
	"IP_RECVERR": unix.IP_RECVERR, "IPV6_RECVERR": unix.IPV6_RECVERR,
	"IP_FREEBIND": unix.IP_FREEBIND, "IP_MTU": unix.IP_MTU, "IPV6_MTU": unix.IPV6_MTU,
	"IPV6_TCLASS": unix.IPV6_TCLASS, "IPV6_HOPLIMIT": unix.IPV6_HOPLIMIT,
	"IP_TRANSPARENT": unix.IP_TRANSPARENT, "IPV6_V6ONLY": unix.IPV6_V6ONLY,
	"IP_RECVTOS": unix.IP_RECVTOS, "IPV6_RECVTCLASS": unix.IPV6_RECVTCLASS,

	// TCP options.
	"TCP_NODELAY": unix.TCP_NODELAY, "TCP_MAXSEG": unix.TCP_MAXSEG, "TCP_CORK": unix.TCP_CORK,
	"TCP_KEEPIDLE": unix.TCP_KEEPIDLE, "TCP_KEEPINTVL": unix.TCP_KEEPINTVL,
	"TCP_KEEPCNT": unix.TCP_KEEPCNT, "TCP_SYNCNT": unix.TCP_SYNCNT,
	"TCP_LINGER2": unix.TCP_LINGER2, "TCP_DEFER_ACCEPT": unix.TCP_DEFER_ACCEPT,
	"TCP_WINDOW_CLAMP": unix.TCP_WINDOW_CLAMP,
	"TCP_INFO":         unix.TCP_INFO, "TCP_QUICKACK": unix.TCP_QUICKACK,
	"TCP_CONGESTION": unix.TCP_CONGESTION, "TCP_MD5SIG": unix.TCP_MD5SIG,
	"TCP_COOKIE_TRANSACTIONS":  unix.TCP_COOKIE_TRANSACTIONS,
	"TCP_THIN_LINEAR_TIMEOUTS": unix.TCP_THIN_LINEAR_TIMEOUTS,
	"TCP_THIN_DUPACK":          unix.TCP_THIN_DUPACK,
	"TCP_USER_TIMEOUT":         unix.TCP_USER_TIMEOUT,
	"TCP_REPAIR":               unix.TCP_REPAIR,
	"TCP_FASTOPEN":             unix.TCP_FASTOPEN,
	"TCP_FASTOPEN_CONNECT":     unix.TCP_FASTOPEN_CONNECT,
	"TCP_FASTOPEN_KEY":         unix.TCP_FASTOPEN_KEY,
	"TCP_FASTOPEN_NO_COOKIE":   unix.TCP_FASTOPEN_NO_COOKIE,
	"TCP_TIMESTAMP":            unix.TCP_TIMESTAMP,
	"TCP_NOTSENT_LOWAT":        unix.TCP_NOTSENT_LOWAT,
	"TCP_CC_INFO":              unix.TCP_CC_INFO,
	"TCP_SAVE_SYN":             unix.TCP_SAVE_SYN,
	"TCP_SAVED_SYN":            unix.TCP_SAVED_SYN,
	"TCP_INQ":                  unix.TCP_INQ,
	"TCP_CM_INQ":               unix.TCP_CM_INQ,
	"TCP_TX_DELAY":             unix.TCP_TX_DELAY,
	"TCP_ZEROCOPY_RECEIVE":     unix.TCP_ZEROCOPY_RECEIVE,

	// open(2) and fcntl(2).
	"O_RDONLY": unix.O_RDONLY, "O_WRONLY": unix.O_WRONLY, "O_RDWR": unix.O_RDWR,
	"O_ACCMODE": unix.O_ACCMODE, "O_CREAT": unix.O_CREAT, "O_EXCL": unix.O_EXCL,
	"O_NOCTTY": unix.O_NOCTTY, "O_TRUNC": unix.O_TRUNC, "O_APPEND": unix.O_APPEND,
	"O_NONBLOCK": unix.O_NONBLOCK, "O_CLOEXEC": unix.O_CLOEXEC,
	"F_DUPFD": unix.F_DUPFD, "F_GETFD": unix.F_GETFD, "F_SETFD": unix.F_SETFD,
	"F_GETFL": unix.F_GETFL, "F_SETFL": unix.F_SETFL, "F_GETLK": unix.F_GETLK,
	"F_SETLK": unix.F_SETLK, "F_SETLKW": unix.F_SETLKW, "F_GETOWN": unix.F_GETOWN,
	"F_SETOWN": unix.F_SETOWN, "F_SETSIG": unix.F_SETSIG, "F_GETSIG": unix.F_GETSIG,
	"F_SETLK64": unix.F_SETLK64, "F_SETLKW64": unix.F_SETLKW64, "F_GETLK64": unix.F_GETLK64,
	"F_SETLEASE": unix.F_SETLEASE, "F_GETLEASE": unix.F_GETLEASE, "F_NOTIFY": unix.F_NOTIFY,
	"F_DUPFD_CLOEXEC": fDupfdCloexec, "FD_CLOEXEC": unix.FD_CLOEXEC,
	"LOCK_SH": unix.LOCK_SH, "LOCK_EX": unix.LOCK_EX, "LOCK_NB": unix.LOCK_NB,
	"LOCK_UN": unix.LOCK_UN,
	"F_RDLCK": unix.F_RDLCK, "F_WRLCK": unix.F_WRLCK, "F_UNLCK": unix.F_UNLCK,
	"F_EXLCK": unix.F_EXLCK, "F_SHLCK": unix.F_SHLCK,
	"SEEK_SET": unix.SEEK_SET, "SEEK_CUR": unix.SEEK_CUR, "SEEK_END": unix.SEEK_END,

	// send/recv flags.
	"MSG_OOB": unix.MSG_OOB, "MSG_DONTROUTE": unix.MSG_DONTROUTE, "MSG_PEEK": unix.MSG_PEEK,
	"MSG_CTRUNC": unix.MSG_CTRUNC, "MSG_PROXY": unix.MSG_PROXY, "MSG_EOR": unix.MSG_EOR,
	"MSG_WAITALL": unix.MSG_WAITALL, "MSG_TRUNC": unix.MSG_TRUNC,
	"MSG_ERRQUEUE": unix.MSG_ERRQUEUE, "MSG_DONTWAIT": unix.MSG_DONTWAIT,
	"MSG_CONFIRM": unix.MSG_CONFIRM, "MSG_FIN": unix.MSG_FIN, "MSG_SYN": unix.MSG_SYN,
	"MSG_RST": unix.MSG_RST, "MSG_NOSIGNAL": unix.MSG_NOSIGNAL, "MSG_MORE": unix.MSG_MORE,
	"MSG_CMSG_CLOEXEC": unix.MSG_CMSG_CLOEXEC, "MSG_FASTOPEN": unix.MSG_FASTOPEN,
	"MSG_ZEROCOPY": unix.MSG_ZEROCOPY, "MSG_WAITFORONE": unix.MSG_WAITFORONE,
	"MSG_BATCH": unix.MSG_BATCH,

	// ioctl(2) requests.
	"SIOCINQ": unix.SIOCINQ, "SIOCOUTQ": unix.SIOCOUTQ,
	// asm-generic/ioctls.h: FIONREAD is TIOCINQ.
	"FIONREAD":    unix.TIOCINQ,
	"SIOCOUTQNSD": unix.SIOCOUTQNSD,

	// poll(2) events.
	"POLLIN": unix.POLLIN, "POLLPRI": unix.POLLPRI, "POLLOUT": unix.POLLOUT,
	"POLLRDNORM": pollRdNorm, "POLLRDBAND": pollRdBand, "POLLWRNORM": pollWrNorm,
	"POLLWRBAND": pollWrBand, "POLLMSG": pollMsg, "POLLRDHUP": unix.POLLRDHUP,
	"POLLERR": unix.POLLERR, "POLLHUP": unix.POLLHUP, "POLLNVAL": unix.POLLNVAL,

	// epoll(7).
	"EPOLLIN": unix.EPOLLIN, "EPOLLPRI": unix.EPOLLPRI, "EPOLLOUT": unix.EPOLLOUT,
	"EPOLLRDNORM": unix.EPOLLRDNORM, "EPOLLRDBAND": unix.EPOLLRDBAND,
	"EPOLLWRNORM": unix.EPOLLWRNORM, "EPOLLWRBAND": unix.EPOLLWRBAND,
	"EPOLLMSG": unix.EPOLLMSG, "EPOLLERR": unix.EPOLLERR, "EPOLLHUP": unix.EPOLLHUP,
	"EPOLLRDHUP": unix.EPOLLRDHUP, "EPOLLONESHOT": unix.EPOLLONESHOT,
	"EPOLLET": unix.EPOLLET, "EPOLLEXCLUSIVE": unix.EPOLLEXCLUSIVE,
	"EPOLLWAKEUP":   unix.EPOLLWAKEUP,
	"EPOLL_CTL_ADD": unix.EPOLL_CTL_ADD, "EPOLL_CTL_MOD": unix.EPOLL_CTL_MOD,
	"EPOLL_CTL_DEL": unix.EPOLL_CTL_DEL, "EPOLL_CLOEXEC": unix.EPOLL_CLOEXEC,

	// splice(2).
	"SPLICE_F_MOVE": unix.SPLICE_F_MOVE, "SPLICE_F_NONBLOCK": unix.SPLICE_F_NONBLOCK,
	"SPLICE_F_MORE": unix.SPLICE_F_MORE, "SPLICE_F_GIFT": unix.SPLICE_F_GIFT,

	// capget/capset (linux/capability.h), accepted for scripts that name them.
	"CAP_EFFECTIVE": 0, "CAP_PERMITTED": 1, "CAP_INHERITABLE": 2,
	"CAP_CLEAR": 0, "CAP_SET": 1,
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE":  unix.CAP_LINUX_IMMUTABLE,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST":    unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK,
	"CAP_IPC_OWNER": unix.CAP_IPC_OWNER, "CAP_SYS_MODULE": unix.CAP_SYS_MODULE,
	"CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO, "CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT,
	"CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE, "CAP_SYS_PACCT": unix.CAP_SYS_PACCT,
	"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_BOOT": unix.CAP_SYS_BOOT,
	"CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG,
	"CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE,
	"CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE, "CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL,
	"CAP_SETFCAP": unix.CAP_SETFCAP, "CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE,
	"CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN, "CAP_SYSLOG": unix.CAP_SYSLOG,
	"CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM, "CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND,
}

// errnos maps errno names to numbers. Aliases (EWOULDBLOCK, EDEADLOCK,
// ENOTSUP) are listed so scripts may use them; ErrnoName prints the primary name.
var errnos = map[string]syscall.Errno{
	"EPERM": unix.EPERM, "ENOENT": unix.ENOENT, "ESRCH": unix.ESRCH, "EINTR": unix.EINTR,
	"EIO": unix.EIO, "ENXIO": unix.ENXIO, "E2BIG": unix.E2BIG, "ENOEXEC": unix.ENOEXEC,
	"EBADF": unix.EBADF, "ECHILD": unix.ECHILD, "EAGAIN": unix.EAGAIN, "ENOMEM": unix.ENOMEM,
	"EACCES": unix.EACCES, "EFAULT": unix.EFAULT, "ENOTBLK": unix.ENOTBLK, "EBUSY": unix.EBUSY,
	"EEXIST": unix.EEXIST, "EXDEV": unix.EXDEV, "ENODEV": unix.ENODEV, "ENOTDIR": unix.ENOTDIR,
	"EISDIR": unix.EISDIR, "EINVAL": unix.EINVAL, "ENFILE": unix.ENFILE, "EMFILE": unix.EMFILE,
	"ENOTTY": unix.ENOTTY, "ETXTBSY": unix.ETXTBSY, "EFBIG": unix.EFBIG, "ENOSPC": unix.ENOSPC,
	"ESPIPE": unix.ESPIPE, "EROFS": unix.EROFS, "EMLINK": unix.EMLINK, "EPIPE": unix.EPIPE,
	"EDOM": unix.EDOM, "ERANGE": unix.ERANGE, "EDEADLK": unix.EDEADLK,
	"ENAMETOOLONG": unix.ENAMETOOLONG, "ENOLCK": unix.ENOLCK, "ENOSYS": unix.ENOSYS,
	"ENOTEMPTY": unix.ENOTEMPTY, "ELOOP": unix.ELOOP, "EWOULDBLOCK": unix.EWOULDBLOCK,
	"ENOMSG": unix.ENOMSG, "EIDRM": unix.EIDRM, "ECHRNG": unix.ECHRNG,
	"EL2NSYNC": unix.EL2NSYNC, "EL3HLT": unix.EL3HLT, "EL3RST": unix.EL3RST,
	"ELNRNG": unix.ELNRNG, "EUNATCH": unix.EUNATCH, "ENOCSI": unix.ENOCSI,
	"EL2HLT": unix.EL2HLT, "EBADE": unix.EBADE, "EBADR": unix.EBADR, "EXFULL": unix.EXFULL,
	"ENOANO": unix.ENOANO, "EBADRQC": unix.EBADRQC, "EBADSLT": unix.EBADSLT,
	"EDEADLOCK": unix.EDEADLOCK, "EBFONT": unix.EBFONT, "ENOSTR": unix.ENOSTR,
	"ENODATA": unix.ENODATA, "ETIME": unix.ETIME, "ENOSR": unix.ENOSR, "ENONET": unix.ENONET,
	"ENOPKG": unix.ENOPKG, "EREMOTE": unix.EREMOTE, "ENOLINK": unix.ENOLINK,
	"EADV": unix.EADV, "ESRMNT": unix.ESRMNT, "ECOMM": unix.ECOMM, "EPROTO": unix.EPROTO,
	"EMULTIHOP": unix.EMULTIHOP, "EDOTDOT": unix.EDOTDOT, "EBADMSG": unix.EBADMSG,
	"EOVERFLOW": unix.EOVERFLOW, "ENOTUNIQ": unix.ENOTUNIQ, "EBADFD": unix.EBADFD,
	"EREMCHG": unix.EREMCHG, "ELIBACC": unix.ELIBACC, "ELIBBAD": unix.ELIBBAD,
	"ELIBSCN": unix.ELIBSCN, "ELIBMAX": unix.ELIBMAX, "ELIBEXEC": unix.ELIBEXEC,
	"EILSEQ": unix.EILSEQ, "ERESTART": unix.ERESTART, "ESTRPIPE": unix.ESTRPIPE,
	"EUSERS": unix.EUSERS, "ENOTSOCK": unix.ENOTSOCK, "EDESTADDRREQ": unix.EDESTADDRREQ,
	"EMSGSIZE": unix.EMSGSIZE, "EPROTOTYPE": unix.EPROTOTYPE,
	"ENOPROTOOPT": unix.ENOPROTOOPT, "EPROTONOSUPPORT": unix.EPROTONOSUPPORT,
	"ESOCKTNOSUPPORT": unix.ESOCKTNOSUPPORT, "EOPNOTSUPP": unix.EOPNOTSUPP,
	"ENOTSUP": unix.ENOTSUP, "EPFNOSUPPORT": unix.EPFNOSUPPORT,
	"EAFNOSUPPORT": unix.EAFNOSUPPORT, "EADDRINUSE": unix.EADDRINUSE,
	"EADDRNOTAVAIL": unix.EADDRNOTAVAIL, "ENETDOWN": unix.ENETDOWN,
	"ENETUNREACH": unix.ENETUNREACH, "ENETRESET": unix.ENETRESET,
	"ECONNABORTED": unix.ECONNABORTED, "ECONNRESET": unix.ECONNRESET,
	"ENOBUFS": unix.ENOBUFS, "EISCONN": unix.EISCONN, "ENOTCONN": unix.ENOTCONN,
	"ESHUTDOWN": unix.ESHUTDOWN, "ETOOMANYREFS": unix.ETOOMANYREFS,
	"ETIMEDOUT": unix.ETIMEDOUT, "ECONNREFUSED": unix.ECONNREFUSED,
	"EHOSTDOWN": unix.EHOSTDOWN, "EHOSTUNREACH": unix.EHOSTUNREACH,
	"EALREADY": unix.EALREADY, "EINPROGRESS": unix.EINPROGRESS, "ESTALE": unix.ESTALE,
	"EUCLEAN": unix.EUCLEAN, "ENOTNAM": unix.ENOTNAM, "ENAVAIL": unix.ENAVAIL,
	"EISNAM": unix.EISNAM, "EREMOTEIO": unix.EREMOTEIO, "EDQUOT": unix.EDQUOT,
	"ENOMEDIUM": unix.ENOMEDIUM, "EMEDIUMTYPE": unix.EMEDIUMTYPE,
	"ECANCELED": unix.ECANCELED, "ENOKEY": unix.ENOKEY, "EKEYEXPIRED": unix.EKEYEXPIRED,
	"EKEYREVOKED": unix.EKEYREVOKED, "EKEYREJECTED": unix.EKEYREJECTED,
	"EOWNERDEAD": unix.EOWNERDEAD, "ENOTRECOVERABLE": unix.ENOTRECOVERABLE,
	"ERFKILL": unix.ERFKILL, "EHWPOISON": unix.EHWPOISON,
}

// errnoAliases are names that share a number with a primary name; they are
// never printed.
var errnoAliases = map[string]bool{"EWOULDBLOCK": true, "EDEADLOCK": true, "ENOTSUP": true}

// errnoNames is the reverse of errnos without the aliases.
var errnoNames = func() map[syscall.Errno]string {
	m := make(map[syscall.Errno]string, len(errnos))
	for name, e := range errnos {
		if !errnoAliases[name] {
			m[e] = name
		}
	}
	return m
}()

// lookupSymbol returns the value of a constant name (including errno names),
// and whether the name is known.
func lookupSymbol(name string) (int64, bool) {
	if v, ok := symbols[name]; ok {
		return v, true
	}
	if e, ok := errnos[name]; ok {
		return int64(e), true
	}
	return 0, false
}

// lookupErrno returns the errno named name (e.g. "EINPROGRESS").
func lookupErrno(name string) (syscall.Errno, bool) {
	e, ok := errnos[name]
	return e, ok
}

// errnoName returns the symbolic name of e ("ETIMEDOUT"), or "errno N" for a
// number without a name.
func errnoName(e syscall.Errno) string {
	if name, ok := errnoNames[e]; ok {
		return name
	}
	return "errno " + strconv.Itoa(int(e))
}
