//! POSIX-style socket errors as `std::io::Error`: the right `ErrorKind`, the Linux
//! errno value (see [`errno`]) and a message that says what to do.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// Linux errno values used by berth (x86_64/aarch64 numbering).
pub mod code {
    /// ENOENT: No such entry (an unknown congestion-control name).
    pub const ENOENT: i32 = 2;
    /// EBADF: Not a socket of this stack (closed or never made).
    pub const EBADF: i32 = 9;
    /// EAGAIN: Try again: the call would block.
    pub const EAGAIN: i32 = 11;
    /// EALREADY: A connect is already in progress.
    pub const EALREADY: i32 = 114;
    /// EACCES: Permission denied.
    pub const EACCES: i32 = 13;
    /// EINVAL: Invalid argument or state.
    pub const EINVAL: i32 = 22;
    /// ENONET: Machine is not on the network.
    pub const ENONET: i32 = 64;
    /// ENOPROTOOPT: Option not available for this socket.
    pub const ENOPROTOOPT: i32 = 92;
    /// EHOSTDOWN: Host is down.
    pub const EHOSTDOWN: i32 = 112;
    /// EPIPE: Writing after the connection (or its write side) closed.
    pub const EPIPE: i32 = 32;
    /// EDESTADDRREQ: No destination: the socket is not connected.
    pub const EDESTADDRREQ: i32 = 89;
    /// EMSGSIZE: Message too long for one datagram.
    pub const EMSGSIZE: i32 = 90;
    /// EPROTONOSUPPORT: Protocol not supported for this socket type.
    pub const EPROTONOSUPPORT: i32 = 93;
    /// EOPNOTSUPP: Operation not supported on this kind of socket.
    pub const EOPNOTSUPP: i32 = 95;
    /// EADDRINUSE: Address (port) already in use.
    pub const EADDRINUSE: i32 = 98;
    /// EADDRNOTAVAIL: Address is not one of this host's (or no port is left).
    pub const EADDRNOTAVAIL: i32 = 99;
    /// ENETUNREACH: No route to the network.
    pub const ENETUNREACH: i32 = 101;
    /// ECONNABORTED: Connection aborted.
    pub const ECONNABORTED: i32 = 103;
    /// ECONNRESET: Connection reset by the peer.
    pub const ECONNRESET: i32 = 104;
    /// ENOBUFS: No buffer space (stack memory limit).
    pub const ENOBUFS: i32 = 105;
    /// EISCONN: Already connected.
    pub const EISCONN: i32 = 106;
    /// ENOTCONN: Not connected.
    pub const ENOTCONN: i32 = 107;
    /// ETIMEDOUT: Timed out: retransmissions or keepalive probes went unanswered.
    pub const ETIMEDOUT: i32 = 110;
    /// ECONNREFUSED: Connection refused: the peer answered the SYN with a reset.
    pub const ECONNREFUSED: i32 = 111;
    /// EHOSTUNREACH: No route to the host (or its neighbour resolution failed).
    pub const EHOSTUNREACH: i32 = 113;
    /// EAFNOSUPPORT: Address family not supported by this socket.
    pub const EAFNOSUPPORT: i32 = 97;
}

/// The payload inside every `io::Error` berth returns.
#[derive(Debug)]
pub struct SocketError {
    /// The Linux errno value.
    pub errno: i32,
    /// What happened and what to do. Borrowed when fixed: a call that would
    /// block (the common error of a non-blocking socket) allocates once, not
    /// twice.
    pub message: Cow<'static, str>,
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SocketError {}

/// `ErrorKind` for an errno, as std maps OS errors on Linux.
pub fn kind_of(errno: i32) -> io::ErrorKind {
    use io::ErrorKind as K;
    match errno {
        code::ENOENT => K::NotFound,
        code::EAGAIN | code::EALREADY => K::WouldBlock,
        code::EINVAL | code::EDESTADDRREQ | code::EMSGSIZE | code::EBADF => K::InvalidInput,
        // std has no kind for EAFNOSUPPORT; an address of the wrong family is a
        // wrong argument.
        code::EAFNOSUPPORT => K::InvalidInput,
        code::EACCES => K::PermissionDenied,
        code::EPIPE => K::BrokenPipe,
        code::EADDRINUSE => K::AddrInUse,
        code::EADDRNOTAVAIL => K::AddrNotAvailable,
        code::ENETUNREACH => K::NetworkUnreachable,
        code::EHOSTUNREACH => K::HostUnreachable,
        code::ECONNABORTED => K::ConnectionAborted,
        code::ECONNRESET => K::ConnectionReset,
        code::ENOTCONN => K::NotConnected,
        code::ETIMEDOUT => K::TimedOut,
        code::ECONNREFUSED => K::ConnectionRefused,
        code::EOPNOTSUPP | code::EPROTONOSUPPORT => K::Unsupported,
        code::ENOBUFS => K::OutOfMemory,
        _ => K::Other,
    }
}

/// Build an `io::Error` carrying `errno` and a message.
pub fn error(errno: i32, message: impl Into<Cow<'static, str>>) -> io::Error {
    io::Error::new(
        kind_of(errno),
        SocketError {
            errno,
            message: message.into(),
        },
    )
}

/// The errno inside an error returned by berth (or an OS error), if any.
pub fn errno(e: &io::Error) -> Option<i32> {
    if let Some(n) = e.raw_os_error() {
        return Some(n);
    }
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<SocketError>())
        .map(|s| s.errno)
}

pub(crate) fn would_block() -> io::Error {
    error(code::EAGAIN, "operation would block: no data queued yet")
}

pub(crate) fn bad_handle() -> io::Error {
    error(
        code::EBADF,
        "socket handle is closed or belongs to another protocol",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_errno() {
        let e = error(code::EADDRINUSE, "port 53 in use");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(errno(&e), Some(98));
        assert_eq!(e.to_string(), "port 53 in use");
        assert_eq!(
            kind_of(code::ECONNREFUSED),
            io::ErrorKind::ConnectionRefused
        );
        assert_eq!(errno(&io::Error::from_raw_os_error(111)), Some(111));
    }
}
