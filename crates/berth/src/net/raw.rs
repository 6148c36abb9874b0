//! `RawSocket`: whole IPv4 packets, or IPv6 upper-layer messages, for one IP
//! protocol (what `ping` and `ping -6` use).

use super::tcp::ttl_u8;
use super::{deadline, Timeouts};
use crate::runtime::Stack;
use berth_core::wire::IpProtocol;
use berth_core::SocketHandle;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// socket(AF_INET, SOCK_RAW, protocol). Receives every datagram of its protocol
/// addressed to the host, IP header included; sends payloads (the stack builds
/// the header) or, with [`RawSocket::set_header_included`], whole packets.
///
/// ```
/// use berth::wire::{IpProtocol, Icmpv4Repr, Ipv4Packet};
/// use berth::{RawSocket, Stack};
/// use std::time::Duration;
/// # fn main() -> std::io::Result<()> {
/// let (a, _b) = Stack::pair()?;
/// let ping = RawSocket::new(&a, 1)?; // IPPROTO_ICMP
/// let request = Icmpv4Repr::EchoRequest { ident: 7, seq_no: 1, data: b"hi" };
/// let mut msg = vec![0; request.buffer_len()];
/// request.emit(&mut msg);
/// ping.send_to(&msg, "192.0.2.2".parse().unwrap())?;
/// ping.set_read_timeout(Some(Duration::from_secs(5)))?;
/// let mut buf = [0; 1500];
/// let (n, from) = ping.recv_from(&mut buf)?; // the echo reply, IP header first
/// assert_eq!(from.to_string(), "192.0.2.2");
/// let ip = Ipv4Packet::new_checked(&buf[..n]).expect("an IPv4 packet");
/// assert_eq!(ip.protocol(), IpProtocol::ICMP);
/// # Ok(()) }
/// ```
pub struct RawSocket {
    stack: Stack,
    h: SocketHandle,
    nonblocking: AtomicBool,
    timeouts: Timeouts,
}

impl RawSocket {
    /// socket(AF_INET, SOCK_RAW, protocol), e.g. 1 (ICMP) for `ping`.
    pub fn new(stack: &Stack, protocol: u8) -> io::Result<RawSocket> {
        let h = stack.call(|c, _| c.raw_socket(IpProtocol(protocol)))?;
        Ok(RawSocket::from_handle(stack, h))
    }

    /// socket(AF_INET6, SOCK_RAW, protocol), e.g. 58 (ICMPv6) for `ping -6`:
    /// sends and receives the message after the IPv6 header (no header on
    /// either side); ICMPv6 checksums are filled in by the stack.
    pub fn new_v6(stack: &Stack, protocol: u8) -> io::Result<RawSocket> {
        let h = stack.call(|c, _| c.raw_socket_v6(IpProtocol(protocol)))?;
        Ok(RawSocket::from_handle(stack, h))
    }

    /// Wrap a core raw socket (used by `Socket` conversions).
    pub(crate) fn from_handle(stack: &Stack, h: SocketHandle) -> RawSocket {
        RawSocket {
            stack: stack.clone(),
            h,
            nonblocking: AtomicBool::new(false),
            timeouts: Timeouts::default(),
        }
    }

    /// IP_HDRINCL.
    pub fn set_header_included(&self, on: bool) -> io::Result<()> {
        self.stack.call(|c, _| c.raw_set_hdrincl(self.h, on))
    }

    /// sendto(2): `buf` as the payload of one IP packet to `addr` (the whole
    /// packet with IP_HDRINCL). Never waits.
    pub fn send_to(&self, buf: &[u8], addr: IpAddr) -> io::Result<usize> {
        self.stack
            .call(|c, now| c.raw_send_to(now, self.h, buf, addr))
    }

    /// One receive call: at once when non-blocking, else waiting up to the
    /// read timeout (SO_RCVTIMEO).
    fn recv_with<R>(
        &self,
        mut f: impl FnMut(&mut berth_core::Stack) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.load(Ordering::Relaxed) {
            self.stack.call(|c, _| f(c))
        } else {
            let t = self.timeouts.read();
            self.stack.blocking(deadline(t), |c, _| f(c))
        }
    }

    /// A whole packet (IP header first) and its source.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        let h = self.h;
        self.recv_with(|c| c.raw_recv_from(h, buf))
    }

    /// [`RawSocket::recv_from`] that also gives the packet's destination
    /// (IP_PKTINFO): for IPv6, whose data has no header, the only way to
    /// learn it; with a [`crate::Forwarder`], another host's address.
    pub fn recv_from_to(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr, IpAddr)> {
        let h = self.h;
        self.recv_with(|c| c.raw_recv_msg(h, buf))
    }

    /// [`RawSocket::recv_from_to`] that also gives the TTL or hop limit the
    /// packet came with (IP_RECVTTL / IPV6_RECVHOPLIMIT): for IPv6, as for
    /// the destination, the header is not in the data.
    pub fn recv_meta(&self, buf: &mut [u8]) -> io::Result<(usize, berth_core::RawRecvMeta)> {
        let h = self.h;
        self.recv_with(|c| c.raw_recv_meta(h, buf))
    }

    /// IP_TRANSPARENT: may be bound to another host's address, to answer for
    /// it in forwarding mode.
    pub fn set_transparent(&self, on: bool) -> io::Result<()> {
        self.stack.call(|c, _| c.raw_set_transparent(self.h, on))
    }

    /// bind(2): only packets to `addr` are received, and sent ones come from it.
    pub fn bind(&self, addr: IpAddr) -> io::Result<()> {
        self.stack.call(|c, _| c.raw_bind(self.h, addr))
    }

    /// SO_RCVTIMEO: receives wait at most this long, then fail with
    /// `WouldBlock`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_read(t)
    }

    /// O_NONBLOCK: receives return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// IP_TTL (IPv6: hop limit), 1..=255, of the packets sent from now on.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_u8(ttl)?;
        self.stack.call(|c, _| c.raw_set_ttl(self.h, ttl))
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

impl Drop for RawSocket {
    fn drop(&mut self) {
        let h = self.h;
        let _ = self.stack.call(|c, now| c.close_at(now, h));
        self.stack.forget(h);
    }
}
