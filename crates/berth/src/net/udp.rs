//! `UdpSocket`, shaped like `std::net::UdpSocket`.

use super::tcp::ttl_u8;
use super::ToSocketAddrs;
use super::{deadline, each_addr, first_addr, Timeouts};
use crate::runtime::Stack;
use berth_core::SocketHandle;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A UDP socket, like `std::net::UdpSocket` with the stack as the first
/// argument of [`UdpSocket::bind`]. Dropping it closes it.
///
/// ```
/// use berth::{Stack, UdpSocket};
/// # fn main() -> std::io::Result<()> {
/// let (a, b) = Stack::pair()?;
/// let server = UdpSocket::bind(&b, "192.0.2.2:53")?;
/// let client = UdpSocket::bind(&a, "0.0.0.0:0")?;
/// client.set_ttl(8)?;
/// client.send_to(b"query", "192.0.2.2:53")?;
/// let mut buf = [0; 16];
/// let (n, from) = server.peek_from(&mut buf)?; // still queued
/// assert_eq!((&buf[..n], from.port()), (&b"query"[..], client.local_addr()?.port()));
/// let (n, _) = server.recv_from(&mut buf)?; // now taken
/// assert_eq!(&buf[..n], b"query");
/// # Ok(()) }
/// ```
pub struct UdpSocket {
    stack: Stack,
    h: SocketHandle,
    nonblocking: AtomicBool,
    timeouts: Timeouts,
}

impl UdpSocket {
    /// socket → bind. Port 0 picks an ephemeral port.
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let h = each_addr(stack, addr, |addr| {
            stack.call(|c, _| {
                let h = c.udp_socket();
                match c.udp_bind(h, addr) {
                    Ok(_) => Ok(h),
                    Err(e) => {
                        let _ = c.close(h);
                        Err(e)
                    }
                }
            })
        })?;
        Ok(UdpSocket::from_handle(stack, h))
    }

    /// Wrap a core UDP socket (used by `Socket` conversions).
    pub(crate) fn from_handle(stack: &Stack, h: SocketHandle) -> UdpSocket {
        UdpSocket {
            stack: stack.clone(),
            h,
            nonblocking: AtomicBool::new(false),
            timeouts: Timeouts::default(),
        }
    }

    /// sendto(2): one datagram to the first address `addr` resolves to. Never
    /// waits (a datagram is queued for the link or dropped, as on Linux).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = first_addr(&self.stack, addr)?;
        self.stack
            .call(|c, now| c.udp_send_to(now, self.h, buf, dst))
    }

    fn recv_with<R>(
        &self,
        f: impl FnMut(&mut berth_core::Stack, berth_core::Instant) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return self.stack.call(f);
        }
        let t = self.timeouts.read();
        self.stack.blocking(deadline(t), f)
    }

    /// Blocks until a datagram arrives; a longer datagram is truncated to `buf`.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.h;
        self.recv_with(|c, _| c.udp_recv_from(h, buf))
    }

    /// recvfrom(2) with MSG_PEEK: like `recv_from`, leaving the datagram
    /// queued (the next receive returns it again).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let h = self.h;
        self.recv_with(|c, _| c.udp_peek_from(h, buf))
    }

    /// Fix the peer: only its datagrams are received; `send`/`recv` work.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(&self.stack, addr, |peer| {
            self.stack.call(|c, _| c.udp_connect(self.h, peer))
        })
    }

    /// send(2) to the connected peer; `InvalidInput` (EDESTADDRREQ) when not
    /// connected.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.stack.call(|c, now| c.udp_send(now, self.h, buf))
    }

    /// recv(2): the next datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.h;
        self.recv_with(|c, _| c.udp_recv(h, buf))
    }

    /// recv(2) with MSG_PEEK: like `recv`, leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.peek_from(buf).map(|(n, _)| n)
    }

    /// getsockname(2).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.udp_local_addr(self.h))
    }

    /// getpeername(2): the connected peer; `NotConnected` otherwise.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stack.call(|c, _| c.udp_peer_addr(self.h))
    }

    /// SO_RCVTIMEO: receives wait at most this long, then fail with
    /// `WouldBlock`. `Some(Duration::ZERO)` is `InvalidInput`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_read(t)
    }

    /// SO_RCVTIMEO as set.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeouts.read())
    }

    /// Sends never block on berth (datagrams are queued or dropped); kept for
    /// std compatibility.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_write(t)
    }

    /// SO_SNDTIMEO as set.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeouts.write())
    }

    /// IP_TTL (IPv6: hop limit), 1..=255, of the datagrams sent from now on.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_u8(ttl)?;
        self.stack.call(|c, _| c.udp_set_ttl(self.h, ttl))
    }

    /// IP_TTL in effect: the value set, else the stack's default (64).
    pub fn ttl(&self) -> io::Result<u32> {
        self.stack.call(|c, _| c.udp_ttl(self.h)).map(u32::from)
    }

    /// O_NONBLOCK: receives return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// SO_ERROR: a pending ICMP-reported error (connected sockets).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        // A zero-length peek surfaces and clears the pending error, if any.
        match self.stack.call(|c, _| c.udp_peek_from(self.h, &mut [])) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Ok(Some(e)),
            _ => Ok(None),
        }
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

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let h = self.h;
        let _ = self.stack.call(|c, now| c.close_at(now, h));
        self.stack.forget(h);
    }
}
