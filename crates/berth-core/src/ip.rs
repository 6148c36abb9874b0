//! The IP layer as transports see it, for either family: which addresses are
//! ours, which source reaches a destination, its MTU, and sending a transport
//! payload. Each call dispatches to the family's own file (`ipv4.rs`; IPv6
//! beside it), so TCP, UDP and raw sockets name no IP version.

use crate::error::{code, error};
use crate::iface::IfaceId;
use crate::stack::Stack;
use crate::time::Instant;
use berth_wire::{IpProtocol, IpVersion};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl Stack {
    /// An IP packet of either family (a TUN, a point-to-point link, loopback):
    /// the version nibble picks the input.
    pub(crate) fn ip_input_any(&mut self, now: Instant, iface: Option<IfaceId>, pkt: &[u8]) {
        match IpVersion::of_packet(pkt) {
            Some(IpVersion::V6) => self.ipv6_input(now, iface, pkt),
            // IPv4, and anything else for IPv4 to count as a bad version.
            _ => self.ip_input(now, iface, pkt),
        }
    }

    /// Route a whole packet built by a transport, of either family.
    pub(crate) fn route_any(&mut self, now: Instant, pkt: Vec<u8>) -> io::Result<()> {
        match IpVersion::of_packet(&pkt) {
            Some(IpVersion::V6) => self.route_packet_v6(now, pkt, None),
            _ => self.route_packet(now, pkt),
        }
    }

    /// A partial datagram timed out: count it and send the time-exceeded error
    /// its family asks for (RFC 792 / RFC 4443 §3.3: only if fragment 0 came).
    pub(crate) fn reassembly_expired(&mut self, now: Instant, exp: crate::frag::Expired) {
        match exp.key.src {
            IpAddr::V4(_) => {
                self.stats.ip_reasm_timeout += 1;
                if let Some((header, data)) = exp.first {
                    // ICMPv4 quotes the header and 8 bytes of data (RFC 792).
                    self.icmp_reassembly_expired(now, &header, &data[..data.len().min(8)]);
                }
            }
            IpAddr::V6(_) => self.ipv6_reassembly_expired(now, exp),
        }
    }

    /// Is `addr` one of this host's unicast addresses (or loopback)?
    pub fn is_local_addr(&self, addr: impl Into<IpAddr>) -> bool {
        match addr.into() {
            IpAddr::V4(a) => self.is_local_v4(a),
            IpAddr::V6(a) => self.is_local_v6(a),
        }
    }

    /// Source address this host would use to reach `dst`.
    pub fn source_for(&self, dst: impl Into<IpAddr>) -> io::Result<IpAddr> {
        match dst.into() {
            IpAddr::V4(a) => self.source_for_v4(a).map(IpAddr::V4),
            IpAddr::V6(a) => self.source_for_v6(a).map(IpAddr::V6),
        }
    }

    /// MTU toward `dst`: the route's, or the path MTU learnt for `dst` if
    /// lower (RFC 1191, RFC 8201). TCP's MSS and IPv4's DF follow it.
    pub(crate) fn mtu_for(&self, dst: impl Into<IpAddr>) -> usize {
        let dst = dst.into();
        let route = self.route_mtu(dst);
        self.pmtu
            .get(self.last_now, dst)
            .map_or(route, |p| p.min(route))
    }

    /// The MTU of the interface the route to `dst` takes (65,535 to ourselves).
    pub(crate) fn route_mtu(&self, dst: IpAddr) -> usize {
        if self.is_local_addr(dst) {
            return 65_535;
        }
        match dst {
            IpAddr::V4(a) => self
                .routes
                .lookup(a)
                .map_or(1500, |r| self.ifaces[r.iface.0].config.mtu),
            IpAddr::V6(a) => self.route_v6(a).map_or(1280, |(i, _)| {
                let f = &self.ifaces[i.0];
                f.mtu6.unwrap_or(f.config.mtu)
            }),
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
        match (src, dst) {
            (None | Some(IpAddr::V4(_)), IpAddr::V4(d)) => {
                let s = match src {
                    Some(IpAddr::V4(s)) => Some(s),
                    _ => None,
                };
                let fill4 =
                    move |b: &mut [u8], s: Ipv4Addr, d: Ipv4Addr| fill(b, s.into(), d.into());
                self.send_ipv4(now, s, d, protocol, ttl, payload_len, pmtu_want, fill4)
            }
            (None | Some(IpAddr::V6(_)), IpAddr::V6(d)) => {
                let s = match src {
                    Some(IpAddr::V6(s)) => Some(s),
                    _ => None,
                };
                let fill6 =
                    move |b: &mut [u8], s: Ipv6Addr, d: Ipv6Addr| fill(b, s.into(), d.into());
                self.send_ipv6(now, s, d, protocol, ttl, payload_len, fill6)
            }
            (Some(s), d) => Err(error(
                code::EINVAL,
                format!("cannot send from {s} to {d}: the addresses are of different families"),
            )),
        }
    }
}
