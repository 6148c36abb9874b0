//! IPv4 on the stack (RFC 791, RFC 1122): addresses, input (validation,
//! martians, reassembly, delivery to raw sockets and transports) and output
//! (source selection, routing, fragmentation). IPv6 stands beside it in its own
//! file; what both share (link output, the neighbour cache) is in `link.rs`
//! and `neighbor.rs`.

use crate::error::{code, error};
use crate::frag::{FragKey, FragOutcome, Fragment};
use crate::iface::IfaceId;
use crate::stack::Stack;
use crate::time::Instant;
use crate::timer::Timer;
use berth_wire::{Error as WireError, IpProtocol, IpRepr, Ipv4Addr, Ipv4Packet, Ipv4Repr};
use std::io;
use std::net::IpAddr;

impl Stack {
    // ---- addresses -----------------------------------------------------------------

    /// Is `addr` one of this host's unicast IPv4 addresses (or loopback)?
    /// 0.0.0.0, the address of an interface not configured yet (DHCP,
    /// RFC 2131 §4.1), is nobody's.
    pub(crate) fn is_local_v4(&self, addr: Ipv4Addr) -> bool {
        addr.is_loopback()
            || (!addr.is_unspecified() && self.ifaces.iter().any(|i| i.addr() == addr))
    }

    pub(crate) fn is_broadcast(&self, addr: Ipv4Addr) -> bool {
        addr == Ipv4Addr::BROADCAST || self.ifaces.iter().any(|i| i.is_broadcast(addr))
    }

    /// Source address this host would use to reach `dst`.
    pub(crate) fn source_for_v4(&self, dst: Ipv4Addr) -> io::Result<Ipv4Addr> {
        if self.is_local_v4(dst) {
            return Ok(dst);
        }
        if dst == Ipv4Addr::BROADCAST {
            return self
                .ifaces
                .first()
                .map(|i| i.addr())
                .ok_or_else(|| no_route(dst));
        }
        match self.routes.lookup(dst) {
            Some(r) => Ok(self.ifaces[r.iface.0].addr()),
            None => Err(no_route(dst)),
        }
    }

    pub(crate) fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    // ---- IPv4 input ---------------------------------------------------------------

    pub(crate) fn ip_input(&mut self, now: Instant, iface: Option<IfaceId>, pkt: &[u8]) {
        self.stats.ip_in_receives += 1;
        // The version before any IPv4 field: on a TUN the kernel's own IPv6
        // packets (router solicitations, MLD) arrive here, and they are
        // another protocol, not IPv4 with a bad header length.
        if pkt.first().is_some_and(|b| b >> 4 != 4) {
            self.stats.ip_in_bad_version += 1;
            return;
        }
        let repr = match Ipv4Packet::new_checked(pkt).and_then(|p| Ipv4Repr::parse(&p)) {
            Ok(r) => r,
            Err(e) => {
                match e {
                    WireError::Truncated => self.stats.ip_in_truncated += 1,
                    WireError::BadLength => self.stats.ip_in_bad_length += 1,
                    WireError::BadVersion => self.stats.ip_in_bad_version += 1,
                    WireError::BadChecksum => self.stats.ip_in_bad_checksum += 1,
                    _ => self.stats.ip_in_malformed += 1,
                }
                return;
            }
        };
        let p = Ipv4Packet::new_unchecked(pkt);
        let packet = p.packet();
        let dst = repr.dst_addr;
        let for_us = self.is_local_v4(dst)
            || self.is_broadcast(dst)
            || (self.forwarding(iface) && !dst.is_multicast() && !dst.is_unspecified());
        // 127.0.0.0/8 never appears outside a host (RFC 1122 §3.2.1.3): from a device
        // it is a martian, or services bound to loopback would be reachable remotely.
        let martian = iface.is_some() && (dst.is_loopback() || repr.src_addr.is_loopback());
        if !for_us || martian || repr.src_addr.is_broadcast() || repr.src_addr.is_multicast() {
            // A host does not forward (RFC 1122 §3.3.1.1 allows silent discard).
            self.stats.ip_in_addr_errors += 1;
            return;
        }
        if repr.is_fragment() {
            self.stats.ip_reasm_reqds += 1;
            let hl = p.header_len();
            // No device sums a fragment's transport checksum: the datagram's is checked whole.
            self.rx_l4_csum_ok = false;
            let mut evicted = 0;
            let frag = Fragment {
                key: FragKey {
                    src: repr.src_addr.into(),
                    dst: repr.dst_addr.into(),
                    protocol: repr.protocol.0,
                    ident: repr.ident.into(),
                },
                offset: repr.frag_offset as usize,
                more: repr.more_frags,
                header: &packet[..hl],
                payload: &packet[hl..],
                max_len: 65_535,
            };
            let out = self.reasm.add(now, &frag, &mut evicted);
            self.stats.ip_reasm_mem_evict += evicted;
            match out {
                FragOutcome::Incomplete { new_deadline } => {
                    if new_deadline.is_some() {
                        self.arm_reassembly_timer();
                    }
                }
                FragOutcome::Complete(mut whole, hl) => {
                    // Total length, MF and offset cleared (DF kept), checksum.
                    let tl = whole.len() as u16;
                    whole[2..4].copy_from_slice(&tl.to_be_bytes());
                    whole[6] &= 0x40;
                    whole[7] = 0;
                    Ipv4Packet::new_unchecked(&mut whole[..hl]).fill_checksum();
                    self.stats.ip_reasm_oks += 1;
                    let Ok(r) =
                        Ipv4Packet::new_checked(&whole[..]).and_then(|p| Ipv4Repr::parse(&p))
                    else {
                        self.stats.ip_in_malformed += 1;
                        return;
                    };
                    self.deliver(now, iface, &whole, &r);
                }
                FragOutcome::Duplicate => {}
                FragOutcome::Overlap => self.stats.ip_reasm_overlap += 1,
                FragOutcome::TooBig => self.stats.ip_reasm_too_big += 1,
                FragOutcome::Malformed => self.stats.ip_in_malformed += 1,
                FragOutcome::NoMemory => self.stats.ip_reasm_mem_evict += 1,
            }
            return;
        }
        self.deliver(now, iface, packet, &repr);
    }

    /// Hand a whole datagram to raw sockets and its transport.
    fn deliver(&mut self, now: Instant, iface: Option<IfaceId>, packet: &[u8], repr: &Ipv4Repr) {
        let ip = IpRepr::Ipv4(*repr);
        let raw = self.raw_deliver(packet, &ip);
        let hl = Ipv4Packet::new_unchecked(packet).header_len();
        let payload = &packet[hl..];
        match repr.protocol {
            IpProtocol::ICMP => self.icmp_input(now, packet, repr, payload),
            IpProtocol::UDP => self.udp_input(now, iface, packet, &ip, payload),
            IpProtocol::TCP => {
                self.stats.ip_in_delivers += 1;
                self.tcp_input(now, iface, &ip, payload)
            }
            _ => {
                if raw {
                    self.stats.ip_in_delivers += 1;
                } else {
                    self.stats.ip_in_unknown_protos += 1;
                    self.icmp_dest_unreachable(
                        now,
                        packet,
                        repr,
                        berth_wire::DstUnreachable::ProtoUnreachable,
                    );
                }
            }
        }
    }

    /// Arm the reassembly timer for the oldest partial datagram unless one is armed
    /// for that deadline or earlier. Newer datagrams time out later (one timeout for
    /// all), so with a monotonic clock one timer suffices; if it fires early (its
    /// datagram completed or was evicted), the handler re-arms for the next oldest.
    pub(crate) fn arm_reassembly_timer(&mut self) {
        if let Some(at) = self.reasm.next_deadline() {
            let sooner = match self.reasm_timer {
                Some(armed) => at < armed,
                None => true,
            };
            if sooner {
                self.timers.arm(at, Timer::Reassembly);
                self.reasm_timer = Some(at);
            }
        }
    }

    // ---- IPv4 output --------------------------------------------------------------

    /// Build and send an IPv4 packet whose payload `fill` writes. `pmtu_want`:
    /// set DF when the packet fits the route's MTU, as Linux does for sockets
    /// (IP_PMTUDISC_WANT, the default); the stack's own ICMP messages go without
    /// DF (Linux's ICMP socket uses IP_PMTUDISC_DONT).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_ipv4(
        &mut self,
        now: Instant,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        ttl: u8,
        payload_len: usize,
        pmtu_want: bool,
        fill: impl FnOnce(&mut [u8], Ipv4Addr, Ipv4Addr),
    ) -> io::Result<()> {
        if 20 + payload_len > 65_535 {
            return Err(error(
                code::EMSGSIZE,
                format!("{payload_len} bytes do not fit one IPv4 datagram (65,515 max payload)"),
            ));
        }
        let src = match src {
            Some(s) if !s.is_unspecified() => s,
            _ => match self.source_for_v4(dst) {
                Ok(s) => s,
                Err(e) => {
                    // No route to pick a source from: Linux counts OutNoRoutes here too.
                    self.stats.ip_out_no_routes += 1;
                    return Err(e);
                }
            },
        };
        let dont_frag = pmtu_want && 20 + payload_len <= self.mtu_for(dst);
        let pkt = self.ipv4_packet(src, dst, protocol, ttl, payload_len, dont_frag, fill);
        self.route_packet(now, pkt)
    }

    /// An IPv4 packet from `src` to `dst` whose payload `fill` writes.
    #[allow(clippy::too_many_arguments)]
    fn ipv4_packet(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        ttl: u8,
        payload_len: usize,
        dont_frag: bool,
        fill: impl FnOnce(&mut [u8], Ipv4Addr, Ipv4Addr),
    ) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len,
            ttl,
            dscp_ecn: 0,
            ident: self.next_ident(),
            dont_frag,
            more_frags: false,
            frag_offset: 0,
        };
        let mut pkt = vec![0u8; repr.buffer_len()];
        fill(&mut pkt[20..], src, dst);
        repr.emit(&mut pkt);
        pkt
    }

    /// Send a limited broadcast (255.255.255.255) out of `iface`, from that
    /// interface's address, 0.0.0.0 while it has none: how a DHCP client
    /// talks before it is configured (RFC 2131 §4.1, RFC 1122 §3.3.6).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_ipv4_broadcast_on(
        &mut self,
        now: Instant,
        iface: IfaceId,
        protocol: IpProtocol,
        ttl: u8,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8], Ipv4Addr, Ipv4Addr),
    ) -> io::Result<()> {
        let Some(ifc) = self.ifaces.get(iface.0) else {
            return Err(error(code::EINVAL, format!("no interface {}", iface.0)));
        };
        if 20 + payload_len > ifc.config.mtu {
            return Err(error(
                code::EMSGSIZE,
                format!(
                    "{payload_len} bytes do not fit the MTU {} of a broadcast",
                    ifc.config.mtu
                ),
            ));
        }
        let src = ifc.addr();
        let dst = Ipv4Addr::BROADCAST;
        let pkt = self.ipv4_packet(src, dst, protocol, ttl, payload_len, false, fill);
        self.stats.ip_out_requests += 1;
        self.link_send(now, iface, dst.into(), pkt);
        Ok(())
    }

    /// Route a complete IPv4 packet: to ourselves, or out of an interface.
    pub(crate) fn route_packet(&mut self, now: Instant, pkt: Vec<u8>) -> io::Result<()> {
        self.stats.ip_out_requests += 1;
        let p = Ipv4Packet::new_unchecked(&pkt[..]);
        let dst = p.dst_addr();
        if self.is_local_v4(dst) {
            self.loopback.push_back(pkt);
            return Ok(());
        }
        let (iface, next_hop) = if dst == Ipv4Addr::BROADCAST {
            match self.ifaces.first() {
                Some(_) => (IfaceId(0), dst),
                None => {
                    self.stats.ip_out_no_routes += 1;
                    return Err(no_route(dst));
                }
            }
        } else {
            match self.routes.lookup(dst) {
                Some(r) => match r.gateway {
                    Some(IpAddr::V4(g)) => (r.iface, g),
                    _ => (r.iface, dst),
                },
                None => {
                    self.stats.ip_out_no_routes += 1;
                    return Err(no_route(dst));
                }
            }
        };
        self.output_packet(now, iface, next_hop, pkt)
    }

    /// Fragment if needed (RFC 791 §3.2) and hand to the link.
    fn output_packet(
        &mut self,
        now: Instant,
        iface: IfaceId,
        next_hop: Ipv4Addr,
        pkt: Vec<u8>,
    ) -> io::Result<()> {
        let p = Ipv4Packet::new_unchecked(&pkt[..]);
        let mut mtu = self.ifaces[iface.0].config.mtu;
        // IP_PMTUDISC_WANT: with DF the packet goes whole if the interface
        // takes it (a router answers if the path does not); without DF it is
        // cut to the learnt path MTU, as Linux's ip_skb_dst_mtu.
        if !p.dont_frag() {
            if let Some(pmtu) = self.pmtu.get(now, p.dst_addr().into()) {
                mtu = mtu.min(pmtu);
            }
        }
        if pkt.len() <= mtu {
            self.link_send(now, iface, next_hop.into(), pkt);
            return Ok(());
        }
        if p.dont_frag() {
            self.stats.ip_out_discards += 1;
            return Err(error(
                code::EMSGSIZE,
                format!(
                    "{} bytes exceed the MTU {mtu} and DF is set; send less",
                    pkt.len()
                ),
            ));
        }
        let hl = p.header_len();
        let base_off = p.frag_offset() as usize;
        let last_mf = p.more_frags();
        let chunk = ((mtu - hl) / 8) * 8;
        let payload = &pkt[hl..p.total_len()];
        let mut frags = Vec::with_capacity(payload.len() / chunk + 1);
        for (i, piece) in payload.chunks(chunk).enumerate() {
            let off = base_off + i * chunk;
            let more = i * chunk + piece.len() < payload.len() || last_mf;
            let mut f = Vec::with_capacity(hl + piece.len());
            f.extend_from_slice(&pkt[..hl]);
            f.extend_from_slice(piece);
            let tl = (hl + piece.len()) as u16;
            f[2..4].copy_from_slice(&tl.to_be_bytes());
            let mut ff = ((off / 8) as u16) & 0x1fff;
            if more {
                ff |= 0x2000;
            }
            f[6..8].copy_from_slice(&ff.to_be_bytes());
            let mut fp = Ipv4Packet::new_unchecked(&mut f[..]);
            fp.fill_checksum();
            frags.push(f);
        }
        self.stats.ip_frag_oks += 1;
        self.stats.ip_frag_creates += frags.len() as u64;
        for f in frags {
            self.link_send(now, iface, next_hop.into(), f);
        }
        Ok(())
    }
}

pub(crate) fn no_route(dst: impl std::fmt::Display) -> io::Error {
    error(
        code::ENETUNREACH,
        format!("no route to {dst}; add an interface on its network or a gateway"),
    )
}
