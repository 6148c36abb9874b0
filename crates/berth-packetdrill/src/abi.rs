//! C layouts and Linux constants packetdrill passes through the interface. All
//! values are Linux's (packetdrill translates script symbols to them).

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

pub type Ud = *mut c_void;

/// `struct packetdrill_interface` (packetdrill.h): 33 pointer-sized fields.
/// `fcntl` and `ioctl` are variadic in C; on x86_64 and aarch64 Linux a variadic
/// caller passes the extra argument exactly where a fixed fourth argument goes.
#[repr(C)]
pub struct PacketdrillInterface {
    pub userdata: Ud,
    pub free: Option<unsafe extern "C" fn(Ud)>,
    pub socket: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int) -> c_int>,
    pub bind: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, u32) -> c_int>,
    pub listen: Option<unsafe extern "C" fn(Ud, c_int, c_int) -> c_int>,
    pub accept: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, *mut u32) -> c_int>,
    pub connect: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, u32) -> c_int>,
    pub read: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, usize) -> isize>,
    pub readv: Option<unsafe extern "C" fn(Ud, c_int, *const IoVec, c_int) -> isize>,
    pub recv: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, usize, c_int) -> isize>,
    pub recvfrom: Option<
        unsafe extern "C" fn(Ud, c_int, *mut c_void, usize, c_int, *mut c_void, *mut u32) -> isize,
    >,
    pub recvmsg: Option<unsafe extern "C" fn(Ud, c_int, *mut MsgHdr, c_int) -> isize>,
    pub write: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, usize) -> isize>,
    pub writev: Option<unsafe extern "C" fn(Ud, c_int, *const IoVec, c_int) -> isize>,
    pub send: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, usize, c_int) -> isize>,
    pub sendto: Option<
        unsafe extern "C" fn(Ud, c_int, *const c_void, usize, c_int, *const c_void, u32) -> isize,
    >,
    pub sendmsg: Option<unsafe extern "C" fn(Ud, c_int, *const MsgHdr, c_int) -> isize>,
    pub fcntl: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_ulong) -> c_int>,
    pub ioctl: Option<unsafe extern "C" fn(Ud, c_int, c_ulong, *mut c_void) -> c_int>,
    pub close: Option<unsafe extern "C" fn(Ud, c_int) -> c_int>,
    pub shutdown: Option<unsafe extern "C" fn(Ud, c_int, c_int) -> c_int>,
    pub getsockopt:
        Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *mut c_void, *mut u32) -> c_int>,
    pub setsockopt:
        Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *const c_void, u32) -> c_int>,
    pub poll: Option<unsafe extern "C" fn(Ud, *mut PollFd, c_ulong, c_int) -> c_int>,
    pub netdev_send: Option<unsafe extern "C" fn(Ud, *const c_void, usize) -> c_int>,
    pub netdev_receive:
        Option<unsafe extern "C" fn(Ud, *mut c_void, *mut usize, *mut i64) -> c_int>,
    pub usleep: Option<unsafe extern "C" fn(Ud, c_uint) -> c_int>,
    pub gettimeofday: Option<unsafe extern "C" fn(Ud, *mut TimeVal, *mut c_void) -> c_int>,
    pub epoll_create: Option<unsafe extern "C" fn(Ud, c_int) -> c_int>,
    pub epoll_ctl: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *mut EpollEvent) -> c_int>,
    pub epoll_wait: Option<unsafe extern "C" fn(Ud, c_int, *mut EpollEvent, c_int, c_int) -> c_int>,
    pub pipe: Option<unsafe extern "C" fn(Ud, *mut c_int) -> c_int>,
    pub splice:
        Option<unsafe extern "C" fn(Ud, c_int, *mut i64, c_int, *mut i64, usize, c_uint) -> isize>,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IoVec {
    pub base: *mut c_void,
    pub len: usize,
}

/// glibc `struct msghdr`.
#[repr(C)]
pub struct MsgHdr {
    pub name: *mut c_void,
    pub namelen: u32,
    pub iov: *mut IoVec,
    pub iovlen: usize,
    pub control: *mut c_void,
    pub controllen: usize,
    pub flags: c_int,
}

#[repr(C)]
pub struct PollFd {
    pub fd: c_int,
    pub events: i16,
    pub revents: i16,
}

#[repr(C)]
pub struct TimeVal {
    pub sec: c_long,
    pub usec: c_long,
}

/// `struct epoll_event`: packed on x86_64 (12 bytes), naturally aligned elsewhere.
#[cfg_attr(target_arch = "x86_64", repr(C, packed))]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[derive(Clone, Copy)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}

/// `struct sockaddr_in`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockAddrIn {
    pub family: u16,
    /// Network byte order.
    pub port: u16,
    /// Network byte order.
    pub addr: [u8; 4],
    pub zero: [u8; 8],
}

/// `struct sockaddr_in6` (28 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockAddrIn6 {
    pub family: u16,
    /// Network byte order.
    pub port: u16,
    /// Network byte order.
    pub flowinfo: u32,
    pub addr: [u8; 16],
    pub scope_id: u32,
}

/// Linux `struct tcp_info` (include/uapi/linux/tcp.h) up to tcpi_total_rto_time.
/// Fields berth does not track stay zero.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct TcpInfo {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub options: u8,
    /// snd_wscale in the low nibble, rcv_wscale in the high one (C bitfields on
    /// little-endian Linux).
    pub wscale: u8,
    pub app_limited: u8,
    pub rto: u32,
    pub ato: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub fackets: u32,
    pub last_data_sent: u32,
    pub last_ack_sent: u32,
    pub last_data_recv: u32,
    pub last_ack_recv: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt: u32,
    pub rttvar: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub pacing_rate: u64,
    pub max_pacing_rate: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub notsent_bytes: u32,
    pub min_rtt: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub delivery_rate: u64,
    pub busy_time: u64,
    pub rwnd_limited: u64,
    pub sndbuf_limited: u64,
    pub delivered: u32,
    pub delivered_ce: u32,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    pub rcv_ooopack: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub rehash: u32,
    pub total_rto: u16,
    pub total_rto_recoveries: u16,
    pub total_rto_time: u32,
}

// Address families, socket types, protocols.
pub const AF_INET: c_int = 2;
pub const AF_INET6: c_int = 10;
pub const SOCK_STREAM: c_int = 1;
pub const SOCK_DGRAM: c_int = 2;
pub const SOCK_NONBLOCK: c_int = 0o4000;
pub const SOCK_CLOEXEC: c_int = 0o2000000;
pub const IPPROTO_TCP: c_int = 6;
pub const IPPROTO_UDP: c_int = 17;
pub const SOL_SOCKET: c_int = 1;
pub const IPPROTO_IPV6: c_int = 41;

// IPPROTO_IPV6 options.
pub const IPV6_V6ONLY: c_int = 26;

// SOL_SOCKET options.
pub const SO_REUSEADDR: c_int = 2;
pub const SO_TYPE: c_int = 3;
pub const SO_ERROR: c_int = 4;
pub const SO_SNDBUF: c_int = 7;
pub const SO_RCVBUF: c_int = 8;
pub const SO_KEEPALIVE: c_int = 9;
pub const SO_LINGER: c_int = 13;

// IPPROTO_TCP options.
pub const TCP_NODELAY: c_int = 1;
pub const TCP_MAXSEG: c_int = 2;
pub const TCP_KEEPIDLE: c_int = 4;
pub const TCP_KEEPINTVL: c_int = 5;
pub const TCP_KEEPCNT: c_int = 6;
pub const TCP_INFO: c_int = 11;
pub const TCP_CONGESTION: c_int = 13;

// fcntl and ioctl.
pub const F_GETFD: c_int = 1;
pub const F_SETFD: c_int = 2;
pub const F_GETFL: c_int = 3;
pub const F_SETFL: c_int = 4;
pub const O_RDWR: c_int = 2;
pub const O_NONBLOCK: c_int = 0o4000;
pub const FIONREAD: c_ulong = 0x541b; // = SIOCINQ
pub const SIOCOUTQ: c_ulong = 0x5411; // = TIOCOUTQ
pub const FIONBIO: c_ulong = 0x5421;

// send/recv flags.
pub const MSG_PEEK: c_int = 0x2;
pub const MSG_DONTWAIT: c_int = 0x40;
pub const MSG_NOSIGNAL: c_int = 0x4000;

// poll and epoll events (same bit values).
pub const POLLIN: u32 = 0x1;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLHUP: u32 = 0x10;
pub const POLLNVAL: u32 = 0x20;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLWRNORM: u32 = 0x100;
pub const POLLRDHUP: u32 = 0x2000;
pub const EPOLL_CTL_ADD: c_int = 1;
pub const EPOLL_CTL_DEL: c_int = 2;
pub const EPOLL_CTL_MOD: c_int = 3;

// shutdown.
pub const SHUT_RD: c_int = 0;
pub const SHUT_WR: c_int = 1;
pub const SHUT_RDWR: c_int = 2;

/// Linux TCP state numbers (tcpi_state).
pub fn linux_state(s: berth_core::TcpState) -> u8 {
    use berth_core::TcpState::*;
    match s {
        Established => 1,
        SynSent => 2,
        SynReceived => 3,
        FinWait1 => 4,
        FinWait2 => 5,
        TimeWait => 6,
        Closed => 7,
        CloseWait => 8,
        LastAck => 9,
        Listen => 10,
        Closing => 11,
    }
}

/// The `flags` argument of `packetdrill_interface_init` (`--so_flags`, or NULL).
pub type CStrPtr = *const c_char;
