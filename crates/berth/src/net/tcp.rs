//! `TcpListener` and `TcpStream`, shaped like `std::net`'s.

use super::{deadline, each_addr, Timeouts};
use crate::runtime::{invalid, Stack};
use berth_core::{SocketHandle, TcpInfo, TcpState};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Backlog used by `TcpListener::bind`, as std does (128).
pub const DEFAULT_BACKLOG: usize = 128;

/// A listening TCP socket. Dropping it resets the connections still waiting in its
/// accept queue, as closing a listener does on Linux.
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
        let h = each_addr(addr, |addr| {
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

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.tcp_local_addr(self.h))
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_u8(ttl)?;
        self.stack.call(|c, _| c.tcp_set_ttl(self.h, ttl))
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.stack.call(|c, _| c.tcp_take_error(self.h))
    }

    /// The berth socket handle (for `Poller` and the core API).
    pub fn handle(&self) -> SocketHandle {
        self.h
    }

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

/// A connected TCP stream. Dropping it closes gracefully (FIN; the connection
/// finishes its close on its own).
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
        each_addr(addr, |a| TcpStream::connect_inner(stack, a, None))
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
        let stream = TcpStream::from_handle(stack, h);
        stream.wait_connected(deadline(timeout))?;
        Ok(stream)
    }

    /// Wait for the handshake to finish (used by connect and the BSD-style Socket).
    pub(crate) fn wait_connected(&self, deadline: Option<std::time::Instant>) -> io::Result<()> {
        let h = self.h;
        let r = self.stack.blocking(deadline, |c, _| {
            if let Some(e) = c.tcp_take_error(h)? {
                return Err(e);
            }
            match c.tcp_state(h)? {
                TcpState::SynSent | TcpState::SynReceived => {
                    Err(io::Error::new(io::ErrorKind::WouldBlock, "connecting"))
                }
                TcpState::Closed => Err(berth_core::error::error(
                    berth_core::error::code::ECONNREFUSED,
                    "connection failed",
                )),
                _ => Ok(()),
            }
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(berth_core::error::error(
                berth_core::error::code::ETIMEDOUT,
                "connect timed out: no answer within the time limit",
            )),
            r => r,
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.tcp_peer_addr(self.h))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.tcp_local_addr(self.h))
    }

    /// shutdown(2): Write sends FIN after queued data; Read makes reads return 0.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stack.call(|c, now| c.tcp_shutdown(now, self.h, how))
    }

    /// SO_LINGER: `Some(0)` makes close (drop) reset the connection instead
    /// of closing it with a FIN.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.stack.call(|c, _| c.tcp_set_linger(self.h, linger))
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stack.call(|c, now| c.tcp_set_nodelay(now, self.h, on))
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        self.stack.call(|c, _| c.tcp_nodelay(self.h))
    }

    /// Reads block at most this long, then fail with `WouldBlock` (as on Linux).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_read(t)
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeouts.read())
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_write(t)
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeouts.write())
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_u8(ttl)?;
        self.stack.call(|c, _| c.tcp_set_ttl(self.h, ttl))
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.stack.call(|c, _| c.tcp_take_error(self.h))
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Linux `tcp_info`: RTT, RTO, cwnd, bytes, retransmissions…
    pub fn tcp_info(&self) -> io::Result<TcpInfo> {
        self.stack.call(|c, _| c.tcp_info(self.h))
    }

    pub fn handle(&self) -> SocketHandle {
        self.h
    }

    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    fn do_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.h;
        let f = |c: &mut berth_core::Stack, now| c.tcp_recv(now, h, buf);
        if self.nonblocking.load(Ordering::Relaxed) {
            return self.stack.call(f);
        }
        let t = self.timeouts.read();
        self.stack.blocking(deadline(t), f)
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

pub(crate) fn ttl_u8(ttl: u32) -> io::Result<u8> {
    match u8::try_from(ttl) {
        Ok(t) if t > 0 => Ok(t),
        _ => Err(invalid(format!("TTL {ttl} is out of range; use 1..=255"))),
    }
}
