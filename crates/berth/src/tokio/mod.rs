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
//! ```
//! use berth::tokio::{TcpListener, TcpSocket, TcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (a, b) = berth::Stack::pair()?;
//! let listener = TcpListener::bind(&b, "192.0.2.2:7").await?;
//! // TcpSocket: options and a fixed local port before connecting.
//! let socket = TcpSocket::new_v4(&a)?;
//! socket.set_nodelay(true)?;
//! socket.bind("192.0.2.1:4000".parse().unwrap())?;
//! let client = socket.connect("192.0.2.2:7".parse().unwrap()).await?;
//! let (mut server, peer) = listener.accept().await?;
//! assert_eq!(peer.port(), 4000);
//! // Owned halves: read and write from different tasks.
//! let (mut rd, mut wr) = client.into_split();
//! let writer = tokio::spawn(async move {
//!     wr.write_all(b"ping").await?;
//!     Ok::<_, std::io::Error>(wr)
//! });
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).await?;
//! server.write_all(b"pong").await?;
//! rd.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"pong");
//! let wr = writer.await.expect("writer task")?;
//! let _client = rd.reunite(wr).expect("halves of one stream");
//! # Ok(()) }
//! ```

use crate::dns::ToSocketAddrs;
use crate::net;
use crate::runtime::Stack;
use berth_core::{SocketHandle, TcpInfo};
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::tokio::io::ReadBuf;

mod socket;
mod split;

pub use socket::TcpSocket;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};

/// Resolve `host` ("name:port", `("name", port)` or an address) through
/// `stack`'s resolver, as `tokio::net::lookup_host` does through the host's:
/// the hosts table, then DNS queries sent by the stack itself. The task
/// waits on the stack's wakers and timer; the runtime's thread never blocks.
pub async fn lookup_host(
    stack: &Stack,
    host: impl ToSocketAddrs,
) -> io::Result<impl Iterator<Item = SocketAddr>> {
    resolve(stack, host).await.map(Vec::into_iter)
}

async fn resolve(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    crate::dns::nonblocking::resolve(stack, addr).await
}

/// The calls every async socket passes straight to its blocking `inner` one,
/// and (`debug`) a `Debug` showing the handle and local address.
macro_rules! delegate_to_std {
    ($ty:ident $(, $debug:ident)?) => {
        impl $ty {
            /// getsockname(2).
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.inner.local_addr()
            }

            /// IP_TTL (IPv6: hop limit), 1..=255, of what it sends from now on
            /// (a listener's is inherited by the connections it accepts).
            pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
                self.inner.set_ttl(ttl)
            }

            /// IP_TTL in effect: the value set, else the stack's default (64).
            pub fn ttl(&self) -> io::Result<u32> {
                self.inner.ttl()
            }

            /// SO_ERROR: the pending error, cleared by reading it.
            pub fn take_error(&self) -> io::Result<Option<io::Error>> {
                self.inner.take_error()
            }

            /// The berth socket handle.
            pub fn handle(&self) -> SocketHandle {
                self.inner.handle()
            }

            /// The stack this socket lives on.
            pub fn stack(&self) -> &Stack {
                self.inner.stack()
            }
        }
        $(delegate_to_std!(@$debug $ty);)?
    };
    (@debug $ty:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("handle", &self.handle())
                    .field("local", &self.local_addr().ok())
                    .finish()
            }
        }
    };
}

delegate_to_std!(TcpListener, debug);
delegate_to_std!(TcpStream);
delegate_to_std!(UdpSocket, debug);

/// A listening TCP socket, like `tokio::net::TcpListener`.
///
/// ```
/// use berth::tokio::{TcpListener, TcpStream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (a, b) = berth::Stack::pair()?;
/// let listener = TcpListener::bind(&b, "0.0.0.0:0").await?;
/// let port = listener.local_addr()?.port();
/// let client = TcpStream::connect(&a, ("192.0.2.2", port)).await?;
/// let (_server, peer) = listener.accept().await?;
/// assert_eq!(peer, client.local_addr()?);
/// # Ok(()) }
/// ```
pub struct TcpListener {
    inner: net::TcpListener,
}

impl TcpListener {
    /// socket → bind → listen(128). Nothing waits: the future is ready at once.
    pub async fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = resolve(stack, addr).await?;
        net::TcpListener::bind(stack, &addrs[..]).map(TcpListener::from_std)
    }

    /// socket → bind → listen(backlog); backlog 0 is treated as 1, as Linux does.
    pub async fn bind_with_backlog(
        stack: &Stack,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let addrs = resolve(stack, addr).await?;
        net::TcpListener::bind_with_backlog(stack, &addrs[..], backlog).map(TcpListener::from_std)
    }

    /// Wrap a blocking listener (its non-blocking flag does not matter here).
    pub fn from_std(inner: net::TcpListener) -> TcpListener {
        TcpListener { inner }
    }

    /// The blocking listener inside.
    pub fn into_std(self) -> net::TcpListener {
        self.inner
    }

    /// The next connection and its peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// `accept` as a poll function (for hand-written futures).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stack, h) = (self.inner.stack(), self.inner.handle());
        stack
            .poll_call(cx, h, false, |c, _| c.tcp_accept(h))
            .map_ok(|(child, peer)| {
                let s = net::TcpStream::from_handle(stack, child);
                (TcpStream::from_std(s), peer)
            })
    }
}

/// A connected TCP stream, like `tokio::net::TcpStream`; implements tokio's
/// `AsyncRead` and `AsyncWrite` (`poll_shutdown` is `shutdown(Write)`: FIN).
///
/// Besides the async traits: readiness ([`TcpStream::readable`],
/// [`TcpStream::writable`]) with non-blocking attempts
/// ([`TcpStream::try_read`], [`TcpStream::try_write`]), [`TcpStream::peek`],
/// and halves for concurrent reading and writing ([`TcpStream::split`],
/// [`TcpStream::into_split`]).
///
/// ```
/// use berth::tokio::{TcpListener, TcpStream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (a, b) = berth::Stack::pair()?;
/// let listener = TcpListener::bind(&b, "192.0.2.2:7").await?;
/// let client = TcpStream::connect(&a, "192.0.2.2:7").await?;
/// let (server, _) = listener.accept().await?;
/// client.writable().await?;
/// assert_eq!(client.try_write(b"hello")?, 5);
/// let mut buf = [0; 16];
/// let n = server.peek(&mut buf).await?; // still queued after this
/// assert_eq!(&buf[..n], b"hello");
/// server.readable().await?;
/// assert_eq!(server.try_read(&mut buf)?, 5);
/// assert_eq!(server.try_read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
/// # Ok(()) }
/// ```
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
        for a in resolve(stack, addr).await? {
            match TcpStream::connect_one(stack, a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            crate::runtime::invalid("the address resolved to no address at all")
        }))
    }

    async fn connect_one(stack: &Stack, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::from_std(net::TcpStream::start_connect(stack, addr)?)
            .connected()
            .await
    }

    /// Wait for the handshake of a socket that has sent its SYN.
    async fn connected(self) -> io::Result<TcpStream> {
        let (stack, h) = (self.stack(), self.handle());
        poll_fn(|cx| stack.poll_call(cx, h, true, |c, _| net::connect_progress(c, h))).await?;
        Ok(self)
    }

    /// Wrap a blocking stream (its non-blocking flag and timeouts do not matter
    /// here).
    pub fn from_std(inner: net::TcpStream) -> TcpStream {
        TcpStream { inner }
    }

    /// The blocking stream inside.
    pub fn into_std(self) -> net::TcpStream {
        self.inner
    }

    /// getpeername(2).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// SO_LINGER: `Some(Duration::ZERO)` makes drop reset the connection.
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

    /// shutdown(2) with any direction (`AsyncWriteExt::shutdown` is Write only).
    pub fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Linux `tcp_info`.
    pub fn tcp_info(&self) -> io::Result<TcpInfo> {
        self.inner.tcp_info()
    }

    /// Wait until a read would not block: data, end of stream or an error.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Wait until a write would not block: send-buffer space, or an error.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// `readable` as a poll function: `Ready` when readable, else the task is
    /// woken when that may have changed.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_ready(self.stack(), self.handle(), cx, false)
    }

    /// `writable` as a poll function.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_ready(self.stack(), self.handle(), cx, true)
    }

    /// Read what is there without waiting: `WouldBlock` when nothing is,
    /// `Ok(0)` at end of stream.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.handle();
        self.stack().call(|c, now| c.tcp_recv(now, h, buf))
    }

    /// Queue what fits in the send buffer without waiting: `WouldBlock` when
    /// nothing does.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let h = self.handle();
        self.stack().call(|c, now| c.tcp_send(now, h, buf))
    }

    /// recv(2) with MSG_PEEK: wait for data and copy it into `buf` without
    /// consuming it; the next read returns the same bytes. `Ok(0)` at end of
    /// stream.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.handle();
        poll_fn(|cx| {
            self.stack()
                .poll_call(cx, h, false, |c, _| c.tcp_peek(h, buf))
        })
        .await
    }

    /// `peek` as a poll function: fills `buf` with queued data, leaving it
    /// queued, and returns how many bytes that was.
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        let h = self.handle();
        let dst = buf.initialize_unfilled();
        match self
            .stack()
            .poll_call(cx, h, false, |c, _| c.tcp_peek(h, dst))
        {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// Borrowed halves, for reading and writing at once in one task (e.g. with
    /// `tokio::join!` or `tokio::io::copy` both ways).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned halves, for reading and writing from different tasks; put them
    /// back together with [`OwnedReadHalf::reunite`]. Dropping the write half
    /// shuts the write direction down (FIN), as tokio does, unless
    /// [`OwnedWriteHalf::forget`]; the connection closes when both are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let s = Arc::new(self);
        (
            OwnedReadHalf { inner: s.clone() },
            OwnedWriteHalf {
                inner: s,
                shutdown_on_drop: true,
            },
        )
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

    /// `AsyncRead::poll_read` through `&self`, for the stream and its halves.
    fn poll_read_buf(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
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

/// Readable (or writable) now, else register the waker and wait: level
/// triggered, from the core's readiness.
fn poll_ready(
    stack: &Stack,
    h: SocketHandle,
    cx: &mut Context<'_>,
    write: bool,
) -> Poll<io::Result<()>> {
    stack.poll_call(cx, h, write, |c, _| {
        let r = c.readiness(h)?;
        if (write && r.writable) || (!write && r.readable) {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    })
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// A UDP socket, like `tokio::net::UdpSocket`. Sends never wait (a datagram is
/// queued or dropped, as on Linux); receives wait for a datagram.
///
/// ```
/// use berth::tokio::UdpSocket;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (a, b) = berth::Stack::pair()?;
/// let server = UdpSocket::bind(&b, "192.0.2.2:53").await?;
/// let client = UdpSocket::bind(&a, "0.0.0.0:0").await?;
/// client.connect("192.0.2.2:53").await?;
/// client.writable().await?;
/// client.try_send(b"query")?;
/// server.readable().await?;
/// let mut buf = [0; 512];
/// let (n, from) = server.try_recv_from(&mut buf)?;
/// server.try_send_to(&buf[..n], from)?;
/// let n = client.recv(&mut buf).await?;
/// assert_eq!(&buf[..n], b"query");
/// # Ok(()) }
/// ```
pub struct UdpSocket {
    inner: net::UdpSocket,
}

impl UdpSocket {
    /// socket → bind. Port 0 picks an ephemeral port.
    pub async fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addrs = resolve(stack, addr).await?;
        net::UdpSocket::bind(stack, &addrs[..]).map(UdpSocket::from_std)
    }

    /// Wrap a blocking socket (its non-blocking flag and timeouts do not
    /// matter here).
    pub fn from_std(inner: net::UdpSocket) -> UdpSocket {
        UdpSocket { inner }
    }

    /// The blocking socket inside.
    pub fn into_std(self) -> net::UdpSocket {
        self.inner
    }

    /// Fix the peer: only its datagrams are received; `send`/`recv` work.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = resolve(self.stack(), addr).await?;
        self.inner.connect(&addrs[..])
    }

    /// sendto(2); ready at once (sends never wait).
    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let addrs = resolve(self.stack(), addr).await?;
        self.inner.send_to(buf, &addrs[..])
    }

    /// send(2) to the connected peer; ready at once.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.send(buf)
    }

    /// sendto(2) without waiting (berth's sends never wait, so this is
    /// `send_to` to one address).
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.inner.send_to(buf, target)
    }

    /// send(2) to the connected peer without waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
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

    /// A queued datagram and its source without waiting: `WouldBlock` when
    /// none is queued.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.handle();
        self.stack().call(|c, _| c.udp_recv_from(h, buf))
    }

    /// A queued datagram from the connected peer without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.handle();
        self.stack().call(|c, _| c.udp_recv(h, buf))
    }

    /// Like `try_recv_from`, leaving the datagram queued.
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.handle();
        self.stack().call(|c, _| c.udp_peek_from(h, buf))
    }

    /// Wait until a datagram (or a pending error) is queued.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_recv_ready(cx)).await
    }

    /// Wait until a send would not block: at once, since sends never wait.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await
    }

    /// `readable` as a poll function.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_ready(self.stack(), self.handle(), cx, false)
    }

    /// `writable` as a poll function.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_ready(self.stack(), self.handle(), cx, true)
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

    /// getpeername(2).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// A raw socket, like [`net::RawSocket`], whose receives wait as a task (no
/// thread blocked on the stack).
pub struct RawSocket {
    inner: net::RawSocket,
}

impl RawSocket {
    /// Wrap a blocking raw socket.
    pub fn from_std(inner: net::RawSocket) -> RawSocket {
        RawSocket { inner }
    }

    /// The blocking socket inside.
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
