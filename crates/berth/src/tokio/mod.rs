//! Async sockets with `tokio::net`'s names, on a berth [`Stack`]: the first
//! argument of the constructors is the stack.
//!
//! They run on any tokio runtime (current-thread or multi-thread) and need no
//! reactor of their own: every operation tries the core call under the stack lock
//! and, when it would block, registers the task's waker for that socket before
//! the lock is released; the runtime wakes exactly the tasks whose socket a core
//! event names (see `runtime.rs`). Frames are pumped to the peer in the calling
//! task's thread, like the blocking API.
//!
//! Each type wraps the blocking one from [`crate::net`] (`into_std`/`from_std`
//! convert), so dropping closes the socket the same way: a stream closes
//! gracefully, a listener resets the connections still in its accept queue.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use berth::tokio::{TcpListener, TcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (a, b) = berth::Stack::pair()?;
//! let listener = TcpListener::bind(&b, "192.0.2.2:7").await?;
//! let mut client = TcpStream::connect(&a, "192.0.2.2:7").await?;
//! let (mut server, _peer) = listener.accept().await?;
//! client.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).await?;
//! # Ok(()) }
//! ```

use crate::net;
use crate::runtime::Stack;
use berth_core::{SocketHandle, TcpInfo, TcpState};
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A listening TCP socket, like `tokio::net::TcpListener`.
pub struct TcpListener {
    inner: net::TcpListener,
}

impl TcpListener {
    /// socket → bind → listen(128). Nothing waits: the future is ready at once.
    pub async fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        net::TcpListener::bind(stack, addr).map(TcpListener::from_std)
    }

    /// socket → bind → listen(backlog); backlog 0 is treated as 1, as Linux does.
    pub async fn bind_with_backlog(
        stack: &Stack,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        net::TcpListener::bind_with_backlog(stack, addr, backlog).map(TcpListener::from_std)
    }

    /// Wrap a blocking listener (its non-blocking flag does not matter here).
    pub fn from_std(inner: net::TcpListener) -> TcpListener {
        TcpListener { inner }
    }

    pub fn into_std(self) -> net::TcpListener {
        self.inner
    }

    /// The next connection and its peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stack, h) = (self.inner.stack(), self.inner.handle());
        stack
            .poll_call(cx, h, false, |c, _| c.tcp_accept(h))
            .map_ok(|(child, peer)| {
                let s = net::TcpStream::from_handle(stack, child);
                (TcpStream::from_std(s), peer)
            })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    pub fn handle(&self) -> SocketHandle {
        self.inner.handle()
    }

    pub fn stack(&self) -> &Stack {
        self.inner.stack()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("handle", &self.handle())
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

/// A connected TCP stream, like `tokio::net::TcpStream`; implements tokio's
/// `AsyncRead` and `AsyncWrite` (`poll_shutdown` is `shutdown(Write)`: FIN).
pub struct TcpStream {
    inner: net::TcpStream,
}

impl TcpStream {
    /// socket → connect; resolves when the handshake completes, is refused
    /// (`ConnectionRefused`) or times out (SYN retries). Dropping the future
    /// closes the half-open socket.
    /// Every address `addr` resolves to is tried in order, as tokio does.
    pub async fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_one(stack, a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            crate::runtime::invalid("the address resolved to no address at all")
        }))
    }

    async fn connect_one(stack: &Stack, addr: std::net::SocketAddr) -> io::Result<TcpStream> {
        let h = stack.call(|c, now| {
            let h = c.tcp_socket();
            match c.tcp_connect(now, h, addr) {
                Ok(()) => Ok(h),
                Err(e) => {
                    let _ = c.close(h);
                    Err(e)
                }
            }
        })?;
        // Owned from here on, so cancelling the wait closes the socket.
        let stream = TcpStream::from_std(net::TcpStream::from_handle(stack, h));
        poll_fn(|cx| {
            stack.poll_call(cx, h, true, |c, _| {
                if let Some(e) = c.tcp_take_error(h)? {
                    return Err(e);
                }
                match c.tcp_state(h)? {
                    TcpState::SynSent | TcpState::SynReceived => {
                        Err(io::Error::new(io::ErrorKind::WouldBlock, "connecting"))
                    }
                    TcpState::Closed => Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        "connection failed",
                    )),
                    _ => Ok(()),
                }
            })
        })
        .await?;
        Ok(stream)
    }

    /// Wrap a blocking stream (its non-blocking flag and timeouts do not matter
    /// here).
    pub fn from_std(inner: net::TcpStream) -> TcpStream {
        TcpStream { inner }
    }

    pub fn into_std(self) -> net::TcpStream {
        self.inner
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// SO_LINGER: `Some(0)` makes drop reset the connection.
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// shutdown(2) with any direction (`AsyncWriteExt::shutdown` is Write only).
    pub fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Linux `tcp_info`.
    pub fn tcp_info(&self) -> io::Result<TcpInfo> {
        self.inner.tcp_info()
    }

    pub fn handle(&self) -> SocketHandle {
        self.inner.handle()
    }

    pub fn stack(&self) -> &Stack {
        self.inner.stack()
    }

    /// Read into `buf`; `Ok(0)` at end of stream.
    pub fn poll_read_slice(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let h = self.handle();
        self.stack()
            .poll_call(cx, h, false, |c, now| c.tcp_recv(now, h, buf))
    }

    fn poll_write_slice(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let h = self.handle();
        self.stack()
            .poll_call(cx, h, true, |c, now| c.tcp_send(now, h, buf))
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // tokio's contract: a full buffer reads nothing and is ready at once.
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let n = match self.poll_read_slice(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_slice(cx, buf)
    }

    /// Written bytes are already in the stack's send buffer (and sent as the
    /// window allows), as with a kernel socket: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown(Shutdown::Write))
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// A UDP socket, like `tokio::net::UdpSocket`. Sends never wait (a datagram is
/// queued or dropped, as on Linux); receives wait for a datagram.
pub struct UdpSocket {
    inner: net::UdpSocket,
}

impl UdpSocket {
    /// socket → bind. Port 0 picks an ephemeral port.
    pub async fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        net::UdpSocket::bind(stack, addr).map(UdpSocket::from_std)
    }

    pub fn from_std(inner: net::UdpSocket) -> UdpSocket {
        UdpSocket { inner }
    }

    pub fn into_std(self) -> net::UdpSocket {
        self.inner
    }

    /// Fix the peer: only its datagrams are received; `send`/`recv` work.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.inner.connect(addr)
    }

    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        self.inner.send_to(buf, addr)
    }

    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.send(buf)
    }

    /// The next datagram; a longer one is truncated to `buf`.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.handle();
        poll_fn(|cx| {
            self.stack()
                .poll_call(cx, h, false, |c, _| c.udp_recv_from(h, buf))
        })
        .await
    }

    /// Like `recv_from`, leaving the datagram queued.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.handle();
        poll_fn(|cx| {
            self.stack()
                .poll_call(cx, h, false, |c, _| c.udp_peek_from(h, buf))
        })
        .await
    }

    /// The next datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.handle();
        poll_fn(|cx| {
            self.stack()
                .poll_call(cx, h, false, |c, _| c.udp_recv(h, buf))
        })
        .await
    }

    /// `recv_from` as a poll function (for hand-written futures).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let h = self.handle();
        let dst = buf.initialize_unfilled();
        let (n, from) = match self
            .stack()
            .poll_call(cx, h, false, |c, _| c.udp_recv_from(h, dst))
        {
            Poll::Ready(Ok(r)) => r,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(from))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    pub fn handle(&self) -> SocketHandle {
        self.inner.handle()
    }

    pub fn stack(&self) -> &Stack {
        self.inner.stack()
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("handle", &self.handle())
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

/// A raw socket, like [`net::RawSocket`], whose receives wait as a task (no
/// thread blocked on the stack).
pub struct RawSocket {
    inner: net::RawSocket,
}

impl RawSocket {
    pub fn from_std(inner: net::RawSocket) -> RawSocket {
        RawSocket { inner }
    }

    pub fn into_std(self) -> net::RawSocket {
        self.inner
    }

    /// The next packet (see [`net::RawSocket::recv_from`]).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, std::net::IpAddr)> {
        self.recv_from_to(buf).await.map(|(n, from, _)| (n, from))
    }

    /// The next packet, its source and its destination (IP_PKTINFO).
    pub async fn recv_from_to(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, std::net::IpAddr, std::net::IpAddr)> {
        let (stack, h) = (self.inner.stack(), self.inner.handle());
        poll_fn(|cx| stack.poll_call(cx, h, false, |c, _| c.raw_recv_msg(h, buf))).await
    }

    /// Sending never waits (see [`net::RawSocket::send_to`]).
    pub async fn send_to(&self, buf: &[u8], addr: std::net::IpAddr) -> io::Result<usize> {
        self.inner.send_to(buf, addr)
    }
}

impl std::fmt::Debug for RawSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSocket")
            .field("handle", &self.inner.handle())
            .finish()
    }
}
