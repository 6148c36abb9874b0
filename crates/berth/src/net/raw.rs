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
pub struct RawSocket {
    stack: Stack,
    h: SocketHandle,
    nonblocking: AtomicBool,
    timeouts: Timeouts,
}

impl RawSocket {
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

    pub fn send_to(&self, buf: &[u8], addr: IpAddr) -> io::Result<usize> {
        self.stack
            .call(|c, now| c.raw_send_to(now, self.h, buf, addr))
    }

    /// A whole packet (IP header first) and its source.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        let h = self.h;
        let f = |c: &mut berth_core::Stack, _| c.raw_recv_from(h, buf);
        if self.nonblocking.load(Ordering::Relaxed) {
            self.stack.call(f)
        } else {
            let t = self.timeouts.read();
            self.stack.blocking(deadline(t), f)
        }
    }

    /// [`RawSocket::recv_from`] that also gives the packet's destination
    /// (IP_PKTINFO): for IPv6, whose data has no header, the only way to
    /// learn it; with a [`crate::Forwarder`], another host's address.
    pub fn recv_from_to(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr, IpAddr)> {
        let h = self.h;
        let f = |c: &mut berth_core::Stack, _| c.raw_recv_msg(h, buf);
        if self.nonblocking.load(Ordering::Relaxed) {
            self.stack.call(f)
        } else {
            let t = self.timeouts.read();
            self.stack.blocking(deadline(t), f)
        }
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

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.timeouts.set_read(t)
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_u8(ttl)?;
        self.stack.call(|c, _| c.raw_set_ttl(self.h, ttl))
    }

    pub fn handle(&self) -> SocketHandle {
        self.h
    }

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
