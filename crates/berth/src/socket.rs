//! `Socket`: a low-level socket that mirrors the Berkeley calls one by one, shaped
//! after the [socket2](https://docs.rs/socket2) crate, on a berth [`Stack`].
//!
//! ```no_run
//! use berth::{Domain, Protocol, Socket, Stack, Type};
//! use std::net::SocketAddr;
//! # fn main() -> std::io::Result<()> {
//! let (a, b) = Stack::pair()?;
//! // server: socket → setsockopt → bind → listen → accept
//! let srv = Socket::new(&b, Domain::IPV4, Type::STREAM, None)?;
//! srv.set_reuse_address(true)?;
//! srv.bind(&"0.0.0.0:7".parse::<SocketAddr>().unwrap())?;
//! srv.listen(128)?;
//! // client: socket → connect → send
//! let cli = Socket::new(&a, Domain::IPV4, Type::STREAM, Some(berth::Protocol::TCP))?;
//! cli.connect(&"192.0.2.2:7".parse::<SocketAddr>().unwrap())?;
//! let (conn, _peer) = srv.accept()?;
//! cli.send(b"hello")?;
//! let mut buf = [0u8; 16];
//! let n = conn.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok(()) }
//! ```
//!
//! Both families: [`Domain::IPV6`] sockets are dual-stack unless
//! [`Socket::set_only_v6`], reaching IPv4 peers through IPv4-mapped addresses
//! (`::ffff:192.0.2.1`) as on Linux; an IPv6 address on a [`Domain::IPV4`]
//! socket is `InvalidInput` (EAFNOSUPPORT).
//!
//! Differences from socket2, because berth has no file descriptors: addresses
//! are `std::net::SocketAddr`, the socket is named by a [`SocketHandle`] (see
//! [`Socket::handle`], usable with [`crate::Poller`]), and `Socket::new` takes the
//! stack as its first argument.
//!
//! Errors are `std::io::Error`s with the `ErrorKind` and the errno
//! ([`berth_core::errno`]) the Linux call would give. Calls that do not apply to
//! the socket's type (listen on a datagram socket, `send_to` on a stream…) fail
//! with `Unsupported` (EOPNOTSUPP) and a message naming the right call.

use crate::net::{check_timeout, deadline, RawSocket, TcpListener, TcpStream, UdpSocket};
use crate::runtime::{invalid, Stack};
use berth_core::error::{code, error, SocketError};
use berth_core::wire::{IpProtocol, Ipv4Addr, Ipv6Addr};
use berth_core::SocketHandle;
use std::fmt;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Linux EINPROGRESS: a non-blocking connect has started.
pub const EINPROGRESS: i32 = 115;

/// Address family (AF_INET, AF_INET6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Domain(i32);

impl Domain {
    /// AF_INET.
    pub const IPV4: Domain = Domain(2);
    /// AF_INET6: IPv6, and IPv4 through IPv4-mapped addresses unless
    /// [`Socket::set_only_v6`].
    pub const IPV6: Domain = Domain(10);

    /// The domain of an address.
    pub fn for_address(addr: SocketAddr) -> Domain {
        match addr {
            SocketAddr::V4(_) => Domain::IPV4,
            SocketAddr::V6(_) => Domain::IPV6,
        }
    }
}

impl From<i32> for Domain {
    fn from(d: i32) -> Domain {
        Domain(d)
    }
}

/// Socket type (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Type(i32);

impl Type {
    /// SOCK_STREAM: TCP.
    pub const STREAM: Type = Type(1);
    /// SOCK_DGRAM: UDP.
    pub const DGRAM: Type = Type(2);
    /// SOCK_RAW: whole IP packets of one protocol.
    pub const RAW: Type = Type(3);
}

impl From<i32> for Type {
    fn from(t: i32) -> Type {
        Type(t)
    }
}

/// IP protocol number (IPPROTO_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(u8);

impl Protocol {
    /// IPPROTO_ICMP (1).
    pub const ICMP: Protocol = Protocol(1);
    /// IPPROTO_TCP (6).
    pub const TCP: Protocol = Protocol(6);
    /// IPPROTO_UDP (17).
    pub const UDP: Protocol = Protocol(17);

    /// The protocol number.
    pub fn number(self) -> u8 {
        self.0
    }
}

impl From<u8> for Protocol {
    fn from(p: u8) -> Protocol {
        Protocol(p)
    }
}

/// TCP keepalive parameters for [`Socket::set_tcp_keepalive`] (TCP_KEEPIDLE,
/// TCP_KEEPINTVL, TCP_KEEPCNT); unset fields keep the stack's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Idle time before the first probe (TCP_KEEPIDLE).
    pub time: Option<Duration>,
    /// Time between probes (TCP_KEEPINTVL).
    pub interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT).
    pub retries: Option<u32>,
}

impl TcpKeepalive {
    /// No values set: every one keeps the stack's default.
    pub const fn new() -> TcpKeepalive {
        TcpKeepalive {
            time: None,
            interval: None,
            retries: None,
        }
    }
    /// Idle time before the first probe (TCP_KEEPIDLE).
    pub const fn with_time(self, time: Duration) -> TcpKeepalive {
        TcpKeepalive {
            time: Some(time),
            ..self
        }
    }
    /// Time between probes (TCP_KEEPINTVL).
    pub const fn with_interval(self, interval: Duration) -> TcpKeepalive {
        TcpKeepalive {
            interval: Some(interval),
            ..self
        }
    }
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT).
    pub const fn with_retries(self, retries: u32) -> TcpKeepalive {
        TcpKeepalive {
            retries: Some(retries),
            ..self
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Tcp,
    Udp,
    Raw(u8),
}

/// Values of options the core has no getter for, as set through this socket.
#[derive(Default)]
struct Opts {
    reuse_address: bool,
    linger: Option<Duration>,
    keepalive: bool,
    ttl: Option<u32>,
    udp_recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    raw_bound: Option<IpAddr>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// socket(2): one socket of a berth stack, driven call by call as with the BSD API.
/// Dropping it closes it (close(2)).
pub struct Socket {
    stack: Stack,
    h: SocketHandle,
    kind: Kind,
    domain: Domain,
    nonblocking: AtomicBool,
    opts: Mutex<Opts>,
    /// False once the handle has moved into another type (`From<Socket>`).
    owned: bool,
}

fn unsupported(msg: impl Into<std::borrow::Cow<'static, str>>) -> io::Error {
    error(code::EOPNOTSUPP, msg)
}

fn in_progress() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        SocketError {
            errno: EINPROGRESS,
            message: "connection in progress (EINPROGRESS): wait for writable readiness, \
                      then check take_error"
                .into(),
        },
    )
}

fn ttl_u8(ttl: u32) -> io::Result<u8> {
    match u8::try_from(ttl) {
        Ok(t) if t > 0 => Ok(t),
        _ => Err(error(
            code::EINVAL,
            format!("TTL {ttl} is out of range; use 1..=255"),
        )),
    }
}

/// An AF_INET socket takes IPv4 addresses only (Linux: EAFNOSUPPORT); an
/// AF_INET6 one's addresses are checked by the stack (IPv4-mapped ones reach
/// IPv4).
fn sockaddr_of(domain: Domain, addr: &SocketAddr) -> io::Result<SocketAddr> {
    match (domain, addr) {
        (Domain::IPV4, SocketAddr::V6(_)) => Err(error(
            code::EAFNOSUPPORT,
            format!("{addr} is an IPv6 address and this is an IPv4 (Domain::IPV4) socket"),
        )),
        _ => Ok(*addr),
    }
}

impl Socket {
    /// socket(domain, type, protocol). `protocol` may be `None` for streams (TCP)
    /// and datagrams (UDP); raw sockets need one (e.g. [`Protocol::ICMP`]).
    pub fn new(
        stack: &Stack,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<Socket> {
        if domain != Domain::IPV4 && domain != Domain::IPV6 {
            return Err(error(
                code::EAFNOSUPPORT,
                format!(
                    "address family {} is not supported; use Domain::IPV4 or Domain::IPV6",
                    domain.0
                ),
            ));
        }
        let v6 = domain == Domain::IPV6;
        let kind = match (ty, protocol) {
            (Type::STREAM, None | Some(Protocol::TCP)) => Kind::Tcp,
            (Type::DGRAM, None | Some(Protocol::UDP)) => Kind::Udp,
            (Type::RAW, Some(p)) if p.0 != 0 => Kind::Raw(p.0),
            (Type::RAW, _) => {
                return Err(error(
                    code::EPROTONOSUPPORT,
                    "raw sockets need a protocol, e.g. Some(Protocol::ICMP)",
                ))
            }
            (Type::STREAM | Type::DGRAM, Some(p)) => {
                return Err(error(
                    code::EPROTONOSUPPORT,
                    format!(
                        "protocol {} does not fit socket type {:?}: streams are TCP, datagrams UDP",
                        p.0, ty
                    ),
                ))
            }
            _ => {
                return Err(error(
                    code::EINVAL,
                    format!("socket type {ty:?} is not supported; use STREAM, DGRAM or RAW"),
                ))
            }
        };
        let h = stack.call(|c, _| match (kind, v6) {
            (Kind::Tcp, false) => Ok(c.tcp_socket()),
            (Kind::Tcp, true) => Ok(c.tcp_socket_v6()),
            (Kind::Udp, false) => Ok(c.udp_socket()),
            (Kind::Udp, true) => Ok(c.udp_socket_v6()),
            (Kind::Raw(p), false) => c.raw_socket(IpProtocol(p)),
            (Kind::Raw(p), true) => c.raw_socket_v6(IpProtocol(p)),
        })?;
        Ok(Socket::from_parts(stack, h, kind, domain))
    }

    fn from_parts(stack: &Stack, h: SocketHandle, kind: Kind, domain: Domain) -> Socket {
        Socket {
            stack: stack.clone(),
            h,
            kind,
            domain,
            nonblocking: AtomicBool::new(false),
            opts: Mutex::new(Opts::default()),
            owned: true,
        }
    }

    fn opts(&self) -> std::sync::MutexGuard<'_, Opts> {
        self.opts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The berth socket handle (for [`crate::Poller`] and the core API).
    pub fn handle(&self) -> SocketHandle {
        self.h
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// SO_TYPE.
    pub fn r#type(&self) -> Type {
        match self.kind {
            Kind::Tcp => Type::STREAM,
            Kind::Udp => Type::DGRAM,
            Kind::Raw(_) => Type::RAW,
        }
    }

    /// SO_PROTOCOL.
    pub fn protocol(&self) -> Protocol {
        match self.kind {
            Kind::Tcp => Protocol::TCP,
            Kind::Udp => Protocol::UDP,
            Kind::Raw(p) => Protocol(p),
        }
    }

    /// SO_DOMAIN.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// IPV6_V6ONLY (before bind): an IPv6 socket that takes no IPv4.
    pub fn set_only_v6(&self, on: bool) -> io::Result<()> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_set_only_v6(h, on)),
            Kind::Udp => self.stack.call(|c, _| c.udp_set_only_v6(h, on)),
            Kind::Raw(_) => Err(error(
                code::ENOPROTOOPT,
                "IPV6_V6ONLY applies to TCP and UDP sockets",
            )),
        }
    }

    /// IPV6_V6ONLY.
    pub fn only_v6(&self) -> io::Result<bool> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_only_v6(h)),
            Kind::Udp => self.stack.call(|c, _| c.udp_only_v6(h)),
            Kind::Raw(_) => Ok(false),
        }
    }

    fn nb(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Run a call once (non-blocking) or until it stops returning WouldBlock.
    fn run<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnMut(&mut berth_core::Stack, berth_core::Instant) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nb() {
            self.stack.call(f)
        } else {
            self.stack.blocking(deadline(timeout), f)
        }
    }

    fn need_tcp(&self, what: &str) -> io::Result<()> {
        match self.kind {
            Kind::Tcp => Ok(()),
            _ => Err(unsupported(format!(
                "{what} applies to stream (TCP) sockets only; this is a {} socket",
                self.kind_name()
            ))),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Tcp => "stream",
            Kind::Udp => "datagram",
            Kind::Raw(_) => "raw",
        }
    }

    // ---- the calls ----------------------------------------------------------

    /// bind(2). Port 0 picks an ephemeral port (raw sockets have no ports: only
    /// the address counts).
    pub fn bind(&self, addr: &SocketAddr) -> io::Result<()> {
        let a = sockaddr_of(self.domain, addr)?;
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_bind(h, a)).map(drop),
            Kind::Udp => self.stack.call(|c, _| c.udp_bind(h, a)).map(drop),
            Kind::Raw(_) => {
                self.stack.call(|c, _| c.raw_bind(h, a.ip()))?;
                self.opts().raw_bound = Some(a.ip());
                Ok(())
            }
        }
    }

    /// listen(2). A backlog of 0 is treated as 1 and a negative one or one above
    /// SOMAXCONN (4096) as SOMAXCONN, as Linux does. Binds an ephemeral port when
    /// the socket is unbound.
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        if self.kind != Kind::Tcp {
            return Err(unsupported(format!(
                "listen needs a stream (TCP) socket; this is a {} socket",
                self.kind_name()
            )));
        }
        let backlog = usize::try_from(backlog).unwrap_or(usize::MAX);
        self.stack.call(|c, _| c.tcp_listen(self.h, backlog))
    }

    /// accept(2): the next connection as a new socket, and its peer's address.
    /// Blocks (up to the read timeout) unless non-blocking; then `WouldBlock`.
    pub fn accept(&self) -> io::Result<(Socket, SocketAddr)> {
        if self.kind != Kind::Tcp {
            return Err(unsupported(format!(
                "accept needs a listening stream (TCP) socket; this is a {} socket",
                self.kind_name()
            )));
        }
        let t = self.opts().read_timeout;
        let h = self.h;
        let (child, peer) = self.run(t, |c, _| c.tcp_accept(h))?;
        Ok((
            Socket::from_parts(&self.stack, child, Kind::Tcp, self.domain),
            peer,
        ))
    }

    /// connect(2). Streams: blocks until the handshake completes (refused, reset or
    /// timed out otherwise); in non-blocking mode returns `WouldBlock` with errno
    /// EINPROGRESS at once, and completion shows as writable readiness, with
    /// [`Socket::take_error`] telling success from failure. Datagrams: fixes the
    /// peer. Raw sockets: not supported.
    pub fn connect(&self, addr: &SocketAddr) -> io::Result<()> {
        self.connect_inner(addr, None)
    }

    /// connect(2) with a time limit (blocking); `TimedOut` when it passes.
    pub fn connect_timeout(&self, addr: &SocketAddr, timeout: Duration) -> io::Result<()> {
        if timeout.is_zero() {
            return Err(invalid("connect_timeout needs a non-zero timeout"));
        }
        self.connect_inner(addr, Some(timeout))
    }

    fn connect_inner(&self, addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<()> {
        let a = sockaddr_of(self.domain, addr)?;
        let h = self.h;
        match self.kind {
            Kind::Udp => self.stack.call(|c, _| c.udp_connect(h, a)),
            Kind::Raw(_) => Err(unsupported(
                "connect is not supported on raw sockets; use send_to with an address",
            )),
            Kind::Tcp => {
                self.stack.call(|c, now| c.tcp_connect(now, h, a))?;
                if self.nb() && timeout.is_none() {
                    return Err(in_progress());
                }
                self.wait_connected(deadline(timeout))
            }
        }
    }

    fn wait_connected(&self, deadline: Option<std::time::Instant>) -> io::Result<()> {
        crate::net::wait_connected(&self.stack, self.h, deadline)
    }

    /// O_NONBLOCK: calls return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// O_NONBLOCK as set.
    pub fn nonblocking(&self) -> io::Result<bool> {
        Ok(self.nb())
    }

    /// SO_RCVTIMEO: blocking receives and accepts wait at most this long, then
    /// fail with `WouldBlock` (as on Linux). `Some(0)` is `InvalidInput`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.opts().read_timeout = t;
        Ok(())
    }

    /// SO_RCVTIMEO as set.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().read_timeout)
    }

    /// SO_SNDTIMEO: blocking stream sends wait at most this long.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.opts().write_timeout = t;
        Ok(())
    }

    /// SO_SNDTIMEO as set.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().write_timeout)
    }

    /// send(2): streams queue as much as fits (blocking until some fits);
    /// datagrams need a connected peer (else `InvalidInput`, EDESTADDRREQ).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => {
                let t = self.opts().write_timeout;
                self.run(t, |c, now| c.tcp_send(now, h, buf))
            }
            Kind::Udp => self.stack.call(|c, now| c.udp_send(now, h, buf)),
            Kind::Raw(_) => Err(error(
                code::EDESTADDRREQ,
                "raw sockets are not connected: use send_to with a destination",
            )),
        }
    }

    /// sendto(2) for datagram and raw sockets (the port of `addr` is ignored for
    /// raw sockets). Streams use [`Socket::send`].
    pub fn send_to(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        let a = sockaddr_of(self.domain, addr)?;
        let h = self.h;
        match self.kind {
            Kind::Udp => self.stack.call(|c, now| c.udp_send_to(now, h, buf, a)),
            Kind::Raw(_) => self.stack.call(|c, now| c.raw_send_to(now, h, buf, a.ip())),
            Kind::Tcp => Err(unsupported(
                "send_to is for datagram and raw sockets; on a stream, connect and use send",
            )),
        }
    }

    /// recv(2): streams give `Ok(0)` at end of stream; datagrams one datagram
    /// (truncated to `buf`); raw sockets one whole IP packet.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.h;
        let t = self.opts().read_timeout;
        match self.kind {
            Kind::Tcp => self.run(t, |c, now| c.tcp_recv(now, h, buf)),
            Kind::Udp => self.run(t, |c, _| c.udp_recv(h, buf)),
            Kind::Raw(_) => self.run(t, |c, _| c.raw_recv_from(h, buf).map(|(n, _)| n)),
        }
    }

    /// recvfrom(2): data and its source (for raw sockets, port 0; for streams,
    /// the peer).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.h;
        let t = self.opts().read_timeout;
        match self.kind {
            Kind::Tcp => {
                let n = self.run(t, |c, now| c.tcp_recv(now, h, buf))?;
                Ok((n, self.peer_addr()?))
            }
            Kind::Udp => self.run(t, |c, _| c.udp_recv_from(h, buf)),
            Kind::Raw(_) => self
                .run(t, |c, _| c.raw_recv_from(h, buf))
                .map(|(n, a)| (n, SocketAddr::new(a, 0))),
        }
    }

    /// recvfrom(2) with MSG_PEEK, for datagram sockets: the datagram stays queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        if self.kind != Kind::Udp {
            return Err(unsupported("peek_from is available on datagram sockets"));
        }
        let h = self.h;
        let t = self.opts().read_timeout;
        self.run(t, |c, _| c.udp_peek_from(h, buf))
    }

    /// shutdown(2), for streams.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.need_tcp("shutdown")?;
        self.stack.call(|c, now| c.tcp_shutdown(now, self.h, how))
    }

    /// getsockname(2).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_local_addr(h)),
            Kind::Udp => self.stack.call(|c, _| c.udp_local_addr(h)),
            Kind::Raw(_) => {
                self.stack.call(|_, _| Ok(()))?;
                let ip = self
                    .opts()
                    .raw_bound
                    .unwrap_or(if self.domain == Domain::IPV6 {
                        Ipv6Addr::UNSPECIFIED.into()
                    } else {
                        Ipv4Addr::UNSPECIFIED.into()
                    });
                Ok(SocketAddr::new(ip, 0))
            }
        }
    }

    /// getpeername(2); `NotConnected` (ENOTCONN) when there is no peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_peer_addr(h)),
            Kind::Udp => self.stack.call(|c, _| c.udp_peer_addr(h)),
            Kind::Raw(_) => Err(error(code::ENOTCONN, "raw sockets have no peer")),
        }
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_take_error(h)),
            // A zero-length peek surfaces and clears the pending error, if any.
            Kind::Udp => match self.stack.call(|c, _| c.udp_peek_from(h, &mut [])) {
                Ok(_) => Ok(None),
                Err(e) => match berth_core::errno(&e) {
                    Some(code::EAGAIN) => Ok(None),
                    Some(_) => Ok(Some(e)),
                    // Not a socket error: the stack is shut down.
                    None => Err(e),
                },
            },
            Kind::Raw(_) => self.stack.call(|_, _| Ok(None)),
        }
    }

    // ---- options ------------------------------------------------------------

    /// SO_REUSEADDR (set before bind). No effect on raw sockets.
    pub fn set_reuse_address(&self, on: bool) -> io::Result<()> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_set_reuse_addr(h, on))?,
            Kind::Udp => self.stack.call(|c, _| c.udp_set_reuse_addr(h, on))?,
            Kind::Raw(_) => self.stack.call(|_, _| Ok(()))?,
        }
        self.opts().reuse_address = on;
        Ok(())
    }

    /// SO_REUSEADDR as set.
    pub fn reuse_address(&self) -> io::Result<bool> {
        Ok(self.opts().reuse_address)
    }

    /// SO_RCVBUF in bytes (streams: set before connect or listen). 0 is
    /// `InvalidInput`.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        if size == 0 {
            return Err(invalid(
                "receive buffer size 0 is not allowed; give a size in bytes",
            ));
        }
        let h = self.h;
        match self.kind {
            Kind::Tcp => self
                .stack
                .call(|c, _| c.tcp_set_buffers(h, Some(size), None)),
            Kind::Udp => {
                self.stack.call(|c, _| c.udp_set_recv_buffer(h, size))?;
                self.opts().udp_recv_buffer = Some(size);
                Ok(())
            }
            Kind::Raw(_) => Err(unsupported(
                "SO_RCVBUF is not adjustable on berth raw sockets (the stack default applies)",
            )),
        }
    }

    /// SO_RCVBUF as in effect.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_buffers(h)).map(|b| b.0),
            _ => {
                let set = self.opts().udp_recv_buffer;
                self.stack
                    .call(|c, _| Ok(set.unwrap_or(c.config().socket_recv_buffer)))
            }
        }
    }

    /// SO_SNDBUF in bytes. 0 is `InvalidInput`. Datagram and raw sends never
    /// queue on berth, so there it is recorded only.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        if size == 0 {
            return Err(invalid(
                "send buffer size 0 is not allowed; give a size in bytes",
            ));
        }
        let h = self.h;
        match self.kind {
            Kind::Tcp => self
                .stack
                .call(|c, _| c.tcp_set_buffers(h, None, Some(size))),
            _ => {
                self.stack.call(|_, _| Ok(()))?;
                self.opts().send_buffer = Some(size);
                Ok(())
            }
        }
    }

    /// SO_SNDBUF as in effect.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_buffers(h)).map(|b| b.1),
            _ => {
                let set = self.opts().send_buffer;
                self.stack
                    .call(|c, _| Ok(set.unwrap_or(c.config().socket_recv_buffer)))
            }
        }
    }

    /// SO_LINGER, for streams: `Some(Duration::ZERO)` makes close reset the
    /// connection instead of closing gracefully.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.need_tcp("SO_LINGER")?;
        self.stack.call(|c, _| c.tcp_set_linger(self.h, linger))?;
        self.opts().linger = linger;
        Ok(())
    }

    /// SO_LINGER as set.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().linger)
    }

    /// SO_KEEPALIVE, for streams, with the stack's default parameters.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.need_tcp("SO_KEEPALIVE")?;
        self.stack
            .call(|c, now| c.tcp_set_keepalive(now, self.h, on, None, None, None))?;
        self.opts().keepalive = on;
        Ok(())
    }

    /// SO_KEEPALIVE as set.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(self.opts().keepalive)
    }

    /// SO_KEEPALIVE on, with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT. Zero
    /// values are `InvalidInput`.
    pub fn set_tcp_keepalive(&self, params: &TcpKeepalive) -> io::Result<()> {
        self.need_tcp("TCP keepalive")?;
        self.stack.call(|c, now| {
            c.tcp_set_keepalive(
                now,
                self.h,
                true,
                params.time,
                params.interval,
                params.retries,
            )
        })?;
        self.opts().keepalive = true;
        Ok(())
    }

    /// TCP_NODELAY: turn Nagle's algorithm off.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.need_tcp("TCP_NODELAY")?;
        self.stack.call(|c, now| c.tcp_set_nodelay(now, self.h, on))
    }

    /// TCP_NODELAY as set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.need_tcp("TCP_NODELAY")?;
        self.stack.call(|c, _| c.tcp_nodelay(self.h))
    }

    /// TCP_CONGESTION: the congestion-control algorithm by name ("cubic", the
    /// default, or "reno"). Unknown names are `NotFound` (ENOENT), as on Linux.
    pub fn set_congestion(&self, name: &str) -> io::Result<()> {
        self.need_tcp("TCP_CONGESTION")?;
        self.stack
            .call(|c, _| c.tcp_set_congestion_name(self.h, name))
    }

    /// TCP_CONGESTION as in effect.
    pub fn congestion(&self) -> io::Result<String> {
        self.need_tcp("TCP_CONGESTION")?;
        self.stack
            .call(|c, _| c.tcp_congestion(self.h).map(|a| a.name().to_string()))
    }

    /// IP_TTL (1..=255).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let t = ttl_u8(ttl)?;
        let h = self.h;
        match self.kind {
            Kind::Tcp => self.stack.call(|c, _| c.tcp_set_ttl(h, t))?,
            Kind::Udp => self.stack.call(|c, _| c.udp_set_ttl(h, t))?,
            Kind::Raw(_) => self.stack.call(|c, _| c.raw_set_ttl(h, t))?,
        }
        self.opts().ttl = Some(ttl);
        Ok(())
    }

    /// IP_TTL as in effect.
    pub fn ttl(&self) -> io::Result<u32> {
        let set = self.opts().ttl;
        self.stack
            .call(|c, _| Ok(set.unwrap_or(c.config().default_ttl as u32)))
    }

    /// IP_HDRINCL, for raw sockets: `send_to` takes whole IP packets.
    pub fn set_header_included(&self, on: bool) -> io::Result<()> {
        if !matches!(self.kind, Kind::Raw(_)) {
            return Err(unsupported("IP_HDRINCL applies to raw sockets only"));
        }
        self.stack.call(|c, _| c.raw_set_hdrincl(self.h, on))
    }

    /// Give up ownership of the handle (it is not closed on drop).
    fn into_parts(mut self) -> (Stack, SocketHandle, bool, Opts) {
        self.owned = false;
        let opts = std::mem::take(&mut *self.opts());
        (self.stack.clone(), self.h, self.nb(), opts)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.owned {
            let h = self.h;
            let _ = self.stack.call(|c, now| c.close_at(now, h));
            self.stack.forget(h);
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("handle", &self.h)
            .field("type", &self.r#type())
            .field("protocol", &self.protocol())
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

/// A connected stream socket as a [`TcpStream`] (keeps non-blocking mode and
/// timeouts). Converting a socket of another type gives a stream whose calls fail.
impl From<Socket> for TcpStream {
    fn from(s: Socket) -> TcpStream {
        let (stack, h, nb, o) = s.into_parts();
        let t = TcpStream::from_handle(&stack, h);
        let _ = t.set_nonblocking(nb);
        let _ = t.set_read_timeout(o.read_timeout);
        let _ = t.set_write_timeout(o.write_timeout);
        t
    }
}

/// A listening stream socket as a [`TcpListener`] (keeps non-blocking mode).
impl From<Socket> for TcpListener {
    fn from(s: Socket) -> TcpListener {
        let (stack, h, nb, _) = s.into_parts();
        let l = TcpListener::from_handle(&stack, h);
        let _ = l.set_nonblocking(nb);
        l
    }
}

/// A datagram socket as a [`UdpSocket`] (keeps non-blocking mode and timeouts).
impl From<Socket> for UdpSocket {
    fn from(s: Socket) -> UdpSocket {
        let (stack, h, nb, o) = s.into_parts();
        let u = UdpSocket::from_handle(&stack, h);
        let _ = u.set_nonblocking(nb);
        let _ = u.set_read_timeout(o.read_timeout);
        let _ = u.set_write_timeout(o.write_timeout);
        u
    }
}

/// A raw socket as a [`RawSocket`] (keeps non-blocking mode and read timeout).
impl From<Socket> for RawSocket {
    fn from(s: Socket) -> RawSocket {
        let (stack, h, nb, o) = s.into_parts();
        let r = RawSocket::from_handle(&stack, h);
        let _ = r.set_nonblocking(nb);
        let _ = r.set_read_timeout(o.read_timeout);
        r
    }
}
