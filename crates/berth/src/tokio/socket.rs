//! `TcpSocket`: a TCP socket not yet connected or listening, for setting
//! options and the local address first, like `tokio::net::TcpSocket`.

use super::{TcpListener, TcpStream};
use crate::net;
use crate::runtime::Stack;
use crate::socket::{Domain, Socket, TcpKeepalive, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// A TCP socket before `connect` or `listen`, like `tokio::net::TcpSocket`,
/// with the stack as the argument of [`TcpSocket::new_v4`] /
/// [`TcpSocket::new_v6`]. Options set here carry over to the stream or
/// listener (and a listener's to the connections it accepts).
///
/// ```
/// use berth::tokio::TcpSocket;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (a, b) = berth::Stack::pair()?;
/// let server = TcpSocket::new_v6(&b)?; // dual-stack: takes IPv4 too
/// server.set_reuseaddr(true)?;
/// server.set_recv_buffer_size(1 << 20)?;
/// server.bind("[::]:8080".parse().unwrap())?;
/// let listener = server.listen(1024)?;
///
/// let client = TcpSocket::new_v4(&a)?;
/// client.set_linger(Some(std::time::Duration::ZERO))?; // drop resets
/// let stream = client.connect("192.0.2.2:8080".parse().unwrap()).await?;
/// let (_conn, peer) = listener.accept().await?;
/// assert_eq!(peer.port(), stream.local_addr()?.port());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    inner: Socket,
}

impl TcpSocket {
    /// socket(AF_INET, SOCK_STREAM, 0).
    pub fn new_v4(stack: &Stack) -> io::Result<TcpSocket> {
        Socket::new(stack, Domain::IPV4, Type::STREAM, None).map(|inner| TcpSocket { inner })
    }

    /// socket(AF_INET6, SOCK_STREAM, 0): IPv6, and IPv4 through IPv4-mapped
    /// addresses (dual-stack, as Linux's default).
    pub fn new_v6(stack: &Stack) -> io::Result<TcpSocket> {
        Socket::new(stack, Domain::IPV6, Type::STREAM, None).map(|inner| TcpSocket { inner })
    }

    /// SO_REUSEADDR (before bind): bind a port whose old connections are
    /// still in TIME-WAIT. berth has no SO_REUSEPORT.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_address(on)
    }

    /// SO_REUSEADDR as set.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.inner.reuse_address()
    }

    /// SO_KEEPALIVE with the stack's default timing (see
    /// [`net::TcpStream::set_keepalive`]).
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.inner.set_keepalive(on)
    }

    /// SO_KEEPALIVE as set.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.inner.keepalive()
    }

    /// SO_KEEPALIVE on, with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT.
    pub fn set_tcp_keepalive(&self, params: &TcpKeepalive) -> io::Result<()> {
        self.inner.set_tcp_keepalive(params)
    }

    /// SO_LINGER: `Some(Duration::ZERO)` makes dropping the stream reset it.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    /// SO_LINGER as set.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.inner.linger()
    }

    /// TCP_NODELAY: `true` turns Nagle's algorithm off.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// TCP_NODELAY as set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// SO_SNDBUF in bytes (turns send-buffer autotuning off, as on Linux).
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_send_buffer_size(size as usize)
    }

    /// SO_SNDBUF in effect.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.inner.send_buffer_size().map(saturate)
    }

    /// SO_RCVBUF in bytes (turns receive-buffer autotuning off and fixes the
    /// window scale offered, as on Linux).
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_recv_buffer_size(size as usize)
    }

    /// SO_RCVBUF in effect.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.inner.recv_buffer_size().map(saturate)
    }

    /// IP_TTL (IPv6: hop limit), 1..=255, for the SYN and everything after.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// bind(2): the local address and port; port 0 picks an ephemeral one.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(&addr)
    }

    /// getsockname(2).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// connect(2), from the bound address if any: resolves when the handshake
    /// completes, is refused (`ConnectionRefused`) or times out (SYN retries).
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        // Non-blocking connect: the SYN leaves, then the wait is a task's.
        self.inner.set_nonblocking(true)?;
        match self.inner.connect(&addr) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        TcpStream::from_std(net::TcpStream::from(self.inner))
            .connected()
            .await
    }

    /// listen(2): binds an ephemeral port when unbound. A backlog above
    /// SOMAXCONN (4096) is SOMAXCONN, 0 is 1, as on Linux.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.inner
            .listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        Ok(TcpListener::from_std(net::TcpListener::from(self.inner)))
    }

    /// The berth socket handle.
    pub fn handle(&self) -> berth_core::SocketHandle {
        self.inner.handle()
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
