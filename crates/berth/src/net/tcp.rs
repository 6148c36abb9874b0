//! `TcpListener` and `TcpStream`, shaped like `std::net`'s.

use super::ToSocketAddrs;
use super::{deadline, each_addr, Timeouts};
use crate::runtime::{invalid, Stack};
use crate::socket::TcpKeepalive;
use berth_core::error::{code, error};
use berth_core::{SocketHandle, TcpInfo, TcpState};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Backlog used by `TcpListener::bind`, as std does (128).
pub const DEFAULT_BACKLOG: usize = 128;

/// A listening TCP socket, like `std::net::TcpListener` with the stack as the
/// first argument of [`TcpListener::bind`]. Dropping it resets the connections
/// still waiting in its accept queue, as closing a listener does on Linux.
///
/// ```
/// use berth::{Stack, TcpListener, TcpStream};
/// # fn main() -> std::io::Result<()> {
/// let (a, b) = Stack::pair()?;
/// let listener = TcpListener::bind(&b, "0.0.0.0:0")?; // an ephemeral port
/// let port = listener.local_addr()?.port();
/// listener.set_ttl(32)?; // inherited by the connections it accepts
/// let _client = TcpStream::connect(&a, ("192.0.2.2", port))?;
/// let (server, _peer) = listener.accept()?;
/// assert_eq!(server.ttl()?, 32);
/// # Ok(()) }
/// ```
pub struct TcpListener {
    stack: Stack,
    h: SocketHandle,
    nonblocking: AtomicBool,
}

impl TcpListener {
    /// socket → bind → listen(128).
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(stack, addr, DEFAULT_BACKLOG)
    }

    /// socket → bind → listen(backlog); backlog 0 is treated as 1, as Linux does.
    pub fn bind_with_backlog(
        stack: &Stack,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let h = each_addr(stack, addr, |addr| {
            stack.call(|c, _| {
                let h = c.tcp_socket();
                let r = c
                    .tcp_set_reuse_addr(h, true)
                    .and_then(|_| c.tcp_bind(h, addr))
                    .and_then(|_| c.tcp_listen(h, backlog));
                match r {
                    Ok(()) => Ok(h),
                    Err(e) => {
                        let _ = c.close(h);
                        Err(e)
                    }
                }
            })
        })?;
        Ok(TcpListener::from_handle(stack, h))
    }

    pub(crate) fn from_handle(stack: &Stack, h: SocketHandle) -> TcpListener {
        TcpListener {
            stack: stack.clone(),
            h,
            nonblocking: AtomicBool::new(false),
        }
    }

    /// The next connection and its peer's address; blocks unless non-blocking.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let f = |c: &mut berth_core::Stack, _| c.tcp_accept(self.h);
        let (h, peer) = if self.nonblocking.load(Ordering::Relaxed) {
            self.stack.call(f)?
        } else {
            self.stack.blocking(None, f)?
        };
        Ok((TcpStream::from_handle(&self.stack, h), peer))
    }

    /// An endless iterator of `accept()` results.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// getsockname(2): the address and port it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.tcp_local_addr(self.h))
    }

    /// O_NONBLOCK: `accept` returns `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// IP_TTL (IPv6: hop limit), 1..=255, for the SYN-ACKs it sends and the
    /// connections it accepts (they inherit it, as on Linux).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        set_tcp_ttl(&self.stack, self.h, ttl)
    }

    /// IP_TTL in effect: the value set, else the stack's default (64).
    pub fn ttl(&self) -> io::Result<u32> {
        tcp_ttl(&self.stack, self.h)
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.stack.call(|c, _| c.tcp_take_error(self.h))
    }

    /// The berth socket handle (for `Poller` and the core API).
    pub fn handle(&self) -> SocketHandle {
        self.h
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let h = self.h;
        let _ = self.stack.call(|c, now| c.close_at(now, h));
        self.stack.forget(h);
    }
}

/// Iterator returned by [`TcpListener::incoming`].
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A connected TCP stream, like `std::net::TcpStream` with the stack as the
/// first argument of [`TcpStream::connect`]; `Read` and `Write` on it and on
/// `&TcpStream`. Dropping it closes gracefully (FIN; the connection finishes its
/// close on its own), unless [`TcpStream::set_linger`] asked for a reset.
///
/// ```
/// use berth::{Stack, TcpListener, TcpStream};
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// # fn main() -> std::io::Result<()> {
/// let (a, b) = Stack::pair()?;
/// let listener = TcpListener::bind(&b, "192.0.2.2:80")?;
/// let mut client = TcpStream::connect(&a, "192.0.2.2:80")?;
/// client.set_nodelay(true)?;
/// client.set_keepalive(true)?; // probes after 2 h idle (RFC 1122 §4.2.3.6)
/// client.write_all(b"GET /")?;
/// let (mut server, _) = listener.accept()?;
/// let mut head = [0; 3];
/// let n = server.peek(&mut head)?; // look without consuming
/// assert_eq!(&head[..n], &b"GET"[..n]);
/// let mut all = [0; 5];
/// server.read_exact(&mut all)?; // the peeked bytes are still there
/// assert_eq!(&all, b"GET /");
/// server.set_read_timeout(Some(Duration::from_millis(10)))?;
/// # Ok(()) }
/// ```
pub struct TcpStream {
    stack: Stack,
    h: SocketHandle,
    /// Shared by `try_clone` copies; the socket closes when the last one drops.
    _closer: Arc<Closer>,
    nonblocking: AtomicBool,
    timeouts: Timeouts,
}

impl TcpStream {
    pub(crate) fn from_handle(stack: &Stack, h: SocketHandle) -> TcpStream {
        TcpStream {
            stack: stack.clone(),
            h,
            _closer: Arc::new(Closer {
                stack: stack.clone(),
                h,
            }),
            nonblocking: AtomicBool::new(false),
            timeouts: Timeouts::default(),
        }
    }

    /// socket → connect; blocks until established, refused or timed out (SYN
    /// retries, about 127 s by default).
    pub fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(stack, addr, |a| TcpStream::connect_inner(stack, a, None))
    }

    /// connect with a time limit; `TimedOut` when it passes.
    pub fn connect_timeout(
        stack: &Stack,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(invalid("connect_timeout needs a non-zero timeout"));
        }
        TcpStream::connect_inner(stack, *addr, Some(timeout))
    }

    fn connect_inner(
        stack: &Stack,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let stream = TcpStream::start_connect(stack, addr)?;
        wait_connected(stack, stream.h, deadline(timeout))?;
        Ok(stream)
    }

    /// socket → connect without waiting: the SYN is sent, the handshake runs
    /// (blocking and async connects wait for it each their way). Owned from
    /// here on, so dropping it closes the half-open socket.
    pub(crate) fn start_connect(stack: &Stack, addr: SocketAddr) -> io::Result<TcpStream> {
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
        Ok(TcpStream::from_handle(stack, h))
    }

    /// getpeername(2); `NotConnected` before the handshake completes.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.tcp_peer_addr(self.h))
    }

    /// getsockname(2): the local address and port of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.tcp_local_addr(self.h))
    }

    /// shutdown(2): Write sends FIN after queued data; Read makes reads return 0.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stack.call(|c, now| c.tcp_shutdown(now, self.h, how))
    }

    /// recv(2) with MSG_PEEK: copy what is readable into `buf` without taking
    /// it out of the receive queue; the next read returns the same bytes.
    /// Blocks like a read (read timeout, non-blocking mode); `Ok(0)` at end of
    /// stream.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.h;
        self.reading(|c, _| c.tcp_peek(h, buf))
    }

    /// SO_LINGER: `Some(Duration::ZERO)` makes close (drop) reset the
    /// connection instead of closing it with a FIN. Other values are recorded:
    /// close never blocks on berth.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.stack.call(|c, _| c.tcp_set_linger(self.h, linger))
    }

    /// SO_LINGER as set.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.stack.call(|c, _| c.tcp_linger(self.h))
    }

    /// SO_KEEPALIVE: after the connection is idle for TCP_KEEPIDLE (default
    /// 7200 s) send a probe every TCP_KEEPINTVL (75 s); after TCP_KEEPCNT (9)
    /// unanswered probes the connection is aborted and the next call fails
    /// with `TimedOut` (ETIMEDOUT). The defaults come from the stack's
    /// `TcpConfig`; [`TcpStream::set_tcp_keepalive`] sets them per socket.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        set_keepalive(&self.stack, self.h, on, &TcpKeepalive::new())
    }

    /// SO_KEEPALIVE as set.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.stack.call(|c, _| c.tcp_keepalive(self.h))
    }

    /// SO_KEEPALIVE on, with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT from
    /// `params` (fields left `None` keep their current value). Zero values are
    /// `InvalidInput`.
    pub fn set_tcp_keepalive(&self, params: &TcpKeepalive) -> io::Result<()> {
        set_keepalive(&self.stack, self.h, true, params)
    }

    /// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT in effect (all three set).
    pub fn tcp_keepalive(&self) -> io::Result<TcpKeepalive> {
        tcp_keepalive(&self.stack, self.h)
    }

    /// TCP_NODELAY: `true` turns Nagle's algorithm off (small writes leave at
    /// once instead of waiting for the ACK of data in flight).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stack.call(|c, now| c.tcp_set_nodelay(now, self.h, on))
    }

    /// TCP_NODELAY as set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.stack.call(|c, _| c.tcp_nodelay(self.h))
    }

    /// SO_RCVTIMEO: reads and peeks block at most this long, then fail with
    /// `WouldBlock` (as on Linux). `Some(Duration::ZERO)` is `InvalidInput`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_read(t)
    }

    /// SO_RCVTIMEO as set.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeouts.read())
    }

    /// SO_SNDTIMEO: writes block at most this long for send-buffer space.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_write(t)
    }

    /// SO_SNDTIMEO as set.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeouts.write())
    }

    /// IP_TTL (IPv6: hop limit), 1..=255, of this connection's segments from
    /// now on.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        set_tcp_ttl(&self.stack, self.h, ttl)
    }

    /// IP_TTL in effect: the value set (or inherited from the listener), else
    /// the stack's default (64).
    pub fn ttl(&self) -> io::Result<u32> {
        tcp_ttl(&self.stack, self.h)
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.stack.call(|c, _| c.tcp_take_error(self.h))
    }

    /// O_NONBLOCK: reads, peeks and writes return `WouldBlock` instead of
    /// waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Linux `tcp_info`: RTT, RTO, congestion window (in segments and in
    /// bytes), bytes, retransmissions…
    pub fn tcp_info(&self) -> io::Result<TcpInfo> {
        self.stack.call(|c, _| c.tcp_info(self.h))
    }

    /// The berth socket handle (for `Poller` and the core API).
    pub fn handle(&self) -> SocketHandle {
        self.h
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Run a receive-side call once (non-blocking) or until it stops returning
    /// `WouldBlock`, bounded by the read timeout.
    fn reading<R>(
        &self,
        f: impl FnMut(&mut berth_core::Stack, berth_core::Instant) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return self.stack.call(f);
        }
        self.stack.blocking(deadline(self.timeouts.read()), f)
    }

    fn do_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.h;
        self.reading(|c, now| c.tcp_recv(now, h, buf))
    }

    fn do_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let h = self.h;
        let f = |c: &mut berth_core::Stack, now| c.tcp_send(now, h, buf);
        if self.nonblocking.load(Ordering::Relaxed) {
            return self.stack.call(f);
        }
        let t = self.timeouts.write();
        self.stack.blocking(deadline(t), f)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TcpStream {
    /// Another handle to the same connection (for a reader and a writer thread);
    /// the connection closes when the last handle is dropped.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            stack: self.stack.clone(),
            h: self.h,
            _closer: self._closer.clone(),
            nonblocking: AtomicBool::new(self.nonblocking.load(Ordering::Relaxed)),
            timeouts: self.timeouts.copy(),
        })
    }
}

/// Closes the connection when the last `TcpStream` copy goes away.
struct Closer {
    stack: Stack,
    h: SocketHandle,
}

impl Drop for Closer {
    fn drop(&mut self) {
        let h = self.h;
        let _ = self.stack.call(|c, now| c.close_at(now, h));
        self.stack.forget(h);
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("handle", &self.h)
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

/// Where a connecting socket stands: `Ok` once established, `WouldBlock`
/// while the handshake runs, else why it failed (refused, reset, timed out).
/// One check for the blocking, BSD-style and async connects.
pub(crate) fn connect_progress(c: &mut berth_core::Stack, h: SocketHandle) -> io::Result<()> {
    if let Some(e) = c.tcp_take_error(h)? {
        return Err(e);
    }
    match c.tcp_state(h)? {
        TcpState::SynSent | TcpState::SynReceived => {
            Err(io::Error::new(io::ErrorKind::WouldBlock, "connecting"))
        }
        TcpState::Closed => Err(error(code::ECONNREFUSED, "connection failed")),
        _ => Ok(()),
    }
}

/// Block until `h`'s handshake finishes; `TimedOut` (ETIMEDOUT) once `deadline`
/// passes.
pub(crate) fn wait_connected(
    stack: &Stack,
    h: SocketHandle,
    deadline: Option<std::time::Instant>,
) -> io::Result<()> {
    match stack.blocking(deadline, |c, _| connect_progress(c, h)) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(error(
            code::ETIMEDOUT,
            "connect timed out: no answer within the time limit",
        )),
        r => r,
    }
}

fn set_tcp_ttl(stack: &Stack, h: SocketHandle, ttl: u32) -> io::Result<()> {
    let ttl = ttl_u8(ttl)?;
    stack.call(|c, _| c.tcp_set_ttl(h, ttl))
}

fn tcp_ttl(stack: &Stack, h: SocketHandle) -> io::Result<u32> {
    stack.call(|c, _| c.tcp_ttl(h)).map(u32::from)
}

/// SO_KEEPALIVE with the TCP_KEEP* values `params` sets (shared by the
/// blocking, BSD-style and async sockets).
pub(crate) fn set_keepalive(
    stack: &Stack,
    h: SocketHandle,
    on: bool,
    params: &TcpKeepalive,
) -> io::Result<()> {
    stack.call(|c, now| {
        c.tcp_set_keepalive(now, h, on, params.time, params.interval, params.retries)
    })
}

/// The TCP_KEEP* values in effect.
pub(crate) fn tcp_keepalive(stack: &Stack, h: SocketHandle) -> io::Result<TcpKeepalive> {
    let (idle, intvl, cnt) = stack.call(|c, _| c.tcp_keepalive_params(h))?;
    Ok(TcpKeepalive::new()
        .with_time(idle)
        .with_interval(intvl)
        .with_retries(cnt))
}

pub(crate) fn ttl_u8(ttl: u32) -> io::Result<u8> {
    match u8::try_from(ttl) {
        Ok(t) if t > 0 => Ok(t),
        _ => Err(invalid(format!("TTL {ttl} is out of range; use 1..=255"))),
    }
}
