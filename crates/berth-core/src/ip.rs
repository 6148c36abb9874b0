//! The IP layer as transports see it, for either family: which addresses are
//! ours, which source reaches a destination, its MTU, and sending a transport
//! payload. Each call dispatches to the family's own file (`ipv4.rs`; IPv6
//! beside it), so TCP, UDP and raw sockets name no IP version.

use crate::error::{code, error};
use crate::stack::Stack;
use crate::time::Instant;
use berth_wire::IpProtocol;
use std::io;
use std::net::IpAddr;

/// The error for an IPv6 address on a stack that has no IPv6 yet.
pub(crate) fn no_ipv6(addr: IpAddr) -> io::Error {
    error(
        code::EAFNOSUPPORT,
        format!("{addr} is an IPv6 address and this stack speaks only IPv4; use an IPv4 address"),
    )
}

impl Stack {
    /// Is `addr` one of this host's unicast addresses (or loopback)?
    pub fn is_local_addr(&self, addr: impl Into<IpAddr>) -> bool {
        match addr.into() {
            IpAddr::V4(a) => self.is_local_v4(a),
            IpAddr::V6(_) => false,
        }
    }

    /// Source address this host would use to reach `dst`.
    pub fn source_for(&self, dst: impl Into<IpAddr>) -> io::Result<IpAddr> {
        match dst.into() {
            IpAddr::V4(a) => self.source_for_v4(a).map(IpAddr::V4),
            a @ IpAddr::V6(_) => Err(no_ipv6(a)),
        }
    }

    /// Interface MTU toward `dst` (for the MSS we offer).
    pub(crate) fn mtu_for(&self, dst: impl Into<IpAddr>) -> usize {
        let dst = dst.into();
        if self.is_local_addr(dst) {
            return 65_535;
        }
        match dst {
            IpAddr::V4(a) => self
                .routes
                .lookup(a)
                .map_or(1500, |r| self.ifaces[r.iface.0].config.mtu),
            IpAddr::V6(_) => 1280,
        }
    }

    /// Build and send an IP packet of `dst`'s family whose payload `fill`
    /// writes (given the source chosen and the destination). See `send_ipv4`
    /// for `pmtu_want`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_ip(
        &mut self,
        now: Instant,
        src: Option<IpAddr>,
        dst: IpAddr,
        protocol: IpProtocol,
        ttl: u8,
        payload_len: usize,
        pmtu_want: bool,
        fill: impl FnOnce(&mut [u8], IpAddr, IpAddr),
    ) -> io::Result<()> {
        let fill4 = |b: &mut [u8], s: std::net::Ipv4Addr, d: std::net::Ipv4Addr| {
            fill(b, s.into(), d.into())
        };
        match (src, dst) {
            (None, IpAddr::V4(d)) => {
                self.send_ipv4(now, None, d, protocol, ttl, payload_len, pmtu_want, fill4)
            }
            (Some(IpAddr::V4(s)), IpAddr::V4(d)) => self.send_ipv4(
                now,
                Some(s),
                d,
                protocol,
                ttl,
                payload_len,
                pmtu_want,
                fill4,
            ),
            (Some(s @ IpAddr::V6(_)), IpAddr::V4(_)) => Err(error(
                code::EINVAL,
                format!("cannot send from {s} to {dst}: the addresses are of different families"),
            )),
            (_, d @ IpAddr::V6(_)) => Err(no_ipv6(d)),
        }
    }
}
