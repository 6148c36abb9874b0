//! IPv6 on the stack (RFC 8200, RFC 4291): addresses and their selection,
//! input (validation, extension headers, reassembly, delivery) and output
//! (routing, fragmentation of our own packets). NDP is in `ndp.rs`, ICMPv6 in
//! `icmpv6.rs`; what IPv4 shares with it (link output, the neighbour cache,
//! the reassembler and its memory cap) is family-neutral.

use crate::error::{code, error};
use crate::frag::{Expired, FragKey, FragOutcome, Fragment};
use crate::iface::{AddrOrigin, AddrState, IfaceId};
use crate::ipv4::no_route;
use crate::stack::Stack;
use crate::time::Instant;
use berth_wire::ipv6::{self, is_link_local, solicited_node, walk_ext_headers, HEADER_LEN};
use berth_wire::{
    Error as WireError, IpProtocol, IpRepr, Ipv6Addr, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr,
    ParamProblemCode,
};
use std::io;
use std::net::IpAddr;

/// All-nodes multicast (RFC 4291 §2.7.1): every IPv6 host listens to it.
pub(crate) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-routers multicast: where router solicitations go.
pub(crate) const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

impl Stack {
    // ---- addresses -----------------------------------------------------------------

    /// Is `a` ours: ::1, or an assigned (not tentative) address of any interface
    /// (the weak host model, as for IPv4 and as Linux does).
    pub(crate) fn is_local_v6(&self, a: Ipv6Addr) -> bool {
        a.is_loopback() || self.ifaces.iter().any(|i| i.has_v6(a))
    }

    /// Does `iface` listen to multicast group `group`: all-nodes, and the
    /// solicited-node group of each of its addresses, tentative ones included
    /// (RFC 4862 §5.4.2: DAD needs them).
    pub(crate) fn joined_v6(&self, iface: Option<IfaceId>, group: Ipv6Addr) -> bool {
        if group == ALL_NODES || group == Ipv6Addr::new(0xff01, 0, 0, 0, 0, 0, 0, 1) {
            return true;
        }
        (0..self.ifaces.len())
            .filter(|&i| iface.is_none_or(|x| x.0 == i))
            .any(|i| self.groups_v6(i).any(|g| g == group))
    }

    /// The groups interface `i` listens to: all-nodes, and the solicited-node
    /// group of each address that is not a duplicate.
    fn groups_v6(&self, i: usize) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.ifaces[i]
            .v6
            .iter()
            .filter(|a| a.state != AddrState::Duplicate)
            .map(|a| solicited_node(&a.addr()))
            .chain([ALL_NODES])
    }

    /// Does `iface` listen to the Ethernet multicast address `mac` (33:33 and
    /// the group's low 32 bits, RFC 2464 §7)? What a NIC's multicast filter
    /// does: frames for groups nobody here joined never reach IPv6.
    pub(crate) fn joined_mac(&self, iface: IfaceId, mac: berth_wire::EthernetAddress) -> bool {
        self.groups_v6(iface.0)
            .any(|g| berth_wire::ipv6::multicast_mac(&g) == Some(mac))
    }

    /// Source address for `dst` (RFC 6724 §5, the rules that matter to a host):
    /// the destination itself if it is ours; on the outgoing interface, an
    /// address of the destination's scope (link-local for link-local), preferred
    /// before deprecated, the longest common prefix first.
    pub(crate) fn source_for_v6(&self, dst: Ipv6Addr) -> io::Result<Ipv6Addr> {
        if dst.is_loopback() {
            return Ok(Ipv6Addr::LOCALHOST);
        }
        if self.is_local_v6(dst) {
            return Ok(dst);
        }
        let iface = self.route_v6(dst).map(|(i, _)| i)?;
        self.source_on(iface, dst).ok_or_else(|| {
            error(
                code::EADDRNOTAVAIL,
                format!(
                    "interface {} has no usable IPv6 address to reach {dst} from \
                     (still tentative, or none configured); add one or wait for DAD",
                    iface.0
                ),
            )
        })
    }

    /// The best source on `iface` for `dst`, if it has one.
    pub(crate) fn source_on(&self, iface: IfaceId, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        let want_ll = is_link_local(&dst) || dst.is_multicast() && dst.segments()[0] & 0xf == 2;
        let common = |a: Ipv6Addr| (u128::from(a) ^ u128::from(dst)).leading_zeros();
        self.ifaces
            .get(iface.0)?
            .v6
            .iter()
            .filter(|a| a.is_assigned())
            .max_by_key(|a| {
                (
                    is_link_local(&a.addr()) == want_ll,
                    a.state == AddrState::Preferred,
                    common(a.addr()),
                )
            })
            .map(|a| a.addr())
    }

    /// Outgoing interface and next hop for `dst`. Link-local destinations go out
    /// of the first interface that has a link-local route (berth keeps no zone
    /// index: with several interfaces, give the route explicitly).
    pub(crate) fn route_v6(&self, dst: Ipv6Addr) -> io::Result<(IfaceId, Ipv6Addr)> {
        if is_link_local(&dst) {
            return match self.ifaces.iter().position(|f| !f.v6.is_empty()) {
                Some(i) => Ok((IfaceId(i), dst)),
                None => Err(no_route(dst)),
            };
        }
        match self.routes.lookup(dst) {
            Some(r) => {
                let hop = match r.gateway {
                    Some(IpAddr::V6(g)) => g,
                    _ => dst,
                };
                Ok((r.iface, hop))
            }
            None => Err(no_route(dst)),
        }
    }

    // ---- input ---------------------------------------------------------------------

    pub(crate) fn ipv6_input(&mut self, now: Instant, iface: Option<IfaceId>, pkt: &[u8]) {
        self.stats.ip6_in_receives += 1;
        if pkt.first().is_some_and(|b| b >> 4 != 6) {
            self.stats.ip6_in_hdr_errors += 1;
            return;
        }
        let repr = match Ipv6Packet::new_checked(pkt).and_then(|p| Ipv6Repr::parse(&p)) {
            Ok(r) => r,
            Err(WireError::Truncated) => {
                self.stats.ip6_in_truncated += 1;
                return;
            }
            Err(_) => {
                self.stats.ip6_in_hdr_errors += 1;
                return;
            }
        };
        // Bytes past the payload length (Ethernet padding) are not the packet's.
        let packet = &pkt[..HEADER_LEN + repr.payload_len];
        let (src, dst) = (repr.src_addr, repr.dst_addr);
        // RFC 4291 §2.7: never from a multicast source; ::1 never on a link
        // (§2.5.3); both are martians, like IPv4's 127/8 from a device.
        let martian = iface.is_some() && (src.is_loopback() || dst.is_loopback());
        if src.is_multicast() || martian {
            self.stats.ip6_in_addr_errors += 1;
            return;
        }
        let for_us = if dst.is_multicast() {
            self.joined_v6(iface, dst)
        } else {
            self.is_local_v6(dst) || (self.forwarding(iface) && !dst.is_unspecified())
        };
        if !for_us {
            // A host does not forward (RFC 8200 §4 leaves that to routers).
            self.stats.ip6_in_addr_errors += 1;
            return;
        }
        self.ipv6_process(now, iface, &repr, packet, false);
    }

    /// Walk the extension headers of a whole packet addressed to us, reassemble
    /// it if it is a fragment, and deliver it.
    fn ipv6_process(
        &mut self,
        now: Instant,
        iface: Option<IfaceId>,
        repr: &Ipv6Repr,
        packet: &[u8],
        reassembled: bool,
    ) {
        let ext = match walk_ext_headers(repr.next_header, &packet[HEADER_LEN..]) {
            Ok(e) => e,
            Err(e) => {
                self.stats.ip6_in_hdr_errors += 1;
                if let Some((code, ptr)) = e.param_problem_for(&repr.dst_addr) {
                    self.icmpv6_param_problem(now, packet, code, ptr);
                }
                return;
            }
        };
        if let Some((at, frag)) = ext.fragment.filter(|(_, f)| !f.is_atomic()) {
            if reassembled {
                // A fragment inside a reassembled packet: nothing sends that.
                self.stats.ip6_reasm_fails += 1;
                return;
            }
            self.ipv6_fragment_input(now, iface, repr, packet, at, &frag);
            return;
        }
        if ext.fragment.is_some() {
            // RFC 6946: an atomic fragment is a whole packet.
            self.stats.ip6_atomic_frags += 1;
        }
        let upper = repr.upper_layer(&ext);
        let payload = &packet[ext.payload_offset..];
        let ip = IpRepr::Ipv6(upper);
        let raw = self.raw_deliver(payload, &ip);
        match upper.next_header {
            IpProtocol::ICMPV6 => self.icmpv6_input(now, iface, packet, &upper, payload),
            IpProtocol::UDP => self.udp_input(now, iface, packet, &ip, payload),
            IpProtocol::TCP => {
                self.stats.ip6_in_delivers += 1;
                self.tcp_input(now, iface, &ip, payload)
            }
            // RFC 8200 §4.7: nothing follows; not an error.
            IpProtocol::IPV6_NONXT => self.stats.ip6_in_delivers += 1,
            _ if raw => self.stats.ip6_in_delivers += 1,
            _ => {
                // RFC 8200 §4: an unrecognised Next Header is a Parameter Problem
                // (code 1) pointing at that field.
                self.stats.ip6_in_unknown_protos += 1;
                if !repr.dst_addr.is_multicast() {
                    self.icmpv6_param_problem(
                        now,
                        packet,
                        ParamProblemCode::UnrecognizedNextHeader,
                        ext.upper_layer_pointer as u32,
                    );
                }
            }
        }
    }

    /// A fragment (RFC 8200 §4.5): the unfragmentable part of the first
    /// fragment is kept, with the Next Header field that named the fragment
    /// header rewritten to the fragmented protocol.
    fn ipv6_fragment_input(
        &mut self,
        now: Instant,
        iface: Option<IfaceId>,
        repr: &Ipv6Repr,
        packet: &[u8],
        at: usize,
        frag: &Ipv6FragmentRepr,
    ) {
        self.stats.ip6_reasm_reqds += 1;
        // No device sums a fragment's transport checksum: the datagram's is checked whole.
        self.rx_l4_csum_ok = false;
        let mut header = packet[..at].to_vec();
        if let Some(field) = naming_field(packet, repr.next_header, at) {
            header[field] = frag.next_header.0;
        }
        let key = FragKey {
            src: repr.src_addr.into(),
            dst: repr.dst_addr.into(),
            protocol: 0,
            ident: frag.ident,
        };
        let f = Fragment {
            key,
            offset: frag.frag_offset as usize,
            more: frag.more_frags,
            header: &header,
            payload: &packet[at + ipv6::FRAG_HEADER_LEN..],
            max_len: HEADER_LEN + 65_535,
        };
        let mut evicted = 0;
        let out = self.reasm.add(now, &f, &mut evicted);
        self.stats.ip6_reasm_mem_evict += evicted;
        match out {
            FragOutcome::Incomplete { new_deadline } => {
                if new_deadline.is_some() {
                    self.arm_reassembly_timer();
                }
            }
            FragOutcome::Complete(mut whole, _) => {
                let len = (whole.len() - HEADER_LEN) as u16;
                whole[4..6].copy_from_slice(&len.to_be_bytes());
                let Ok(r) = Ipv6Packet::new_checked(&whole[..]).and_then(|p| Ipv6Repr::parse(&p))
                else {
                    self.stats.ip6_reasm_fails += 1;
                    return;
                };
                self.stats.ip6_reasm_oks += 1;
                self.ipv6_process(now, iface, &r, &whole, true);
            }
            FragOutcome::Duplicate => {}
            // RFC 5722: overlapping fragments drop the whole datagram, silently.
            FragOutcome::Overlap => self.stats.ip6_reasm_overlap += 1,
            FragOutcome::TooBig | FragOutcome::Malformed => self.stats.ip6_reasm_fails += 1,
            FragOutcome::NoMemory => self.stats.ip6_reasm_mem_evict += 1,
        }
    }

    /// A partial IPv6 datagram timed out: Time Exceeded code 1, only when its
    /// first fragment arrived (RFC 8200 §4.5).
    pub(crate) fn ipv6_reassembly_expired(&mut self, now: Instant, exp: Expired) {
        self.stats.ip6_reasm_timeout += 1;
        if let Some((header, data)) = exp.first {
            let mut pkt = header;
            pkt.extend_from_slice(&data);
            self.icmpv6_reassembly_expired(now, &pkt);
        }
    }

    // ---- output --------------------------------------------------------------------

    /// Build and send an IPv6 packet whose payload `fill` writes (given the
    /// source chosen and the destination).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_ipv6(
        &mut self,
        now: Instant,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        next_header: IpProtocol,
        hop_limit: u8,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8], Ipv6Addr, Ipv6Addr),
    ) -> io::Result<()> {
        if payload_len > 65_535 {
            return Err(error(
                code::EMSGSIZE,
                format!("{payload_len} bytes do not fit one IPv6 packet (65,535 max payload)"),
            ));
        }
        let src = match src {
            Some(s) if !s.is_unspecified() => s,
            _ => match self.source_for_v6(dst) {
                Ok(s) => s,
                Err(e) => {
                    self.stats.ip6_out_no_routes += 1;
                    return Err(e);
                }
            },
        };
        let pkt = ipv6_packet(src, dst, next_header, hop_limit, payload_len, fill);
        self.route_packet_v6(now, pkt, None)
    }

    /// Route a complete IPv6 packet: to ourselves, to a link-scope group on
    /// `iface` (or the first interface), or out of the interface its route names.
    pub(crate) fn route_packet_v6(
        &mut self,
        now: Instant,
        pkt: Vec<u8>,
        iface: Option<IfaceId>,
    ) -> io::Result<()> {
        self.stats.ip6_out_requests += 1;
        let dst = Ipv6Packet::new_unchecked(&pkt[..]).dst_addr();
        if self.is_local_v6(dst) {
            self.loopback.push_back(pkt);
            return Ok(());
        }
        let (iface, hop) = if dst.is_multicast() {
            match iface.or_else(|| (!self.ifaces.is_empty()).then_some(IfaceId(0))) {
                Some(i) => (i, dst),
                None => {
                    self.stats.ip6_out_no_routes += 1;
                    return Err(no_route(dst));
                }
            }
        } else {
            match self.route_v6(dst) {
                Ok((i, hop)) => (iface.unwrap_or(i), hop),
                Err(e) => {
                    self.stats.ip6_out_no_routes += 1;
                    return Err(e);
                }
            }
        };
        // Only the source fragments in IPv6 (RFC 8200 §5): to the path MTU
        // when one was learnt (RFC 8201 §5.1).
        let mut mtu = self.ifaces[iface.0].config.mtu;
        if let Some(pmtu) = self.pmtu.get(now, dst.into()) {
            mtu = mtu.min(pmtu);
        }
        if pkt.len() <= mtu {
            self.link_send(now, iface, hop.into(), pkt);
            return Ok(());
        }
        let frags = self.ipv6_fragment(&pkt, mtu)?;
        for f in frags {
            self.link_send(now, iface, hop.into(), f);
        }
        Ok(())
    }

    /// Fragment one of our own packets (RFC 8200 §4.5): the fixed header is
    /// the unfragmentable part (the stack sends no extension headers).
    fn ipv6_fragment(&mut self, pkt: &[u8], mtu: usize) -> io::Result<Vec<Vec<u8>>> {
        let chunk = (mtu.saturating_sub(HEADER_LEN + ipv6::FRAG_HEADER_LEN) / 8) * 8;
        if chunk == 0 {
            self.stats.ip6_frag_fails += 1;
            return Err(error(
                code::EMSGSIZE,
                format!("MTU {mtu} is too small to carry an IPv6 fragment"),
            ));
        }
        self.ip6_ident = self.ip6_ident.wrapping_add(1);
        let ident = self.ip6_ident;
        let next = IpProtocol(pkt[6]);
        let data = &pkt[HEADER_LEN..];
        let mut out = Vec::with_capacity(data.len() / chunk + 1);
        for (i, piece) in data.chunks(chunk).enumerate() {
            let off = i * chunk;
            let mut f = vec![0u8; HEADER_LEN + ipv6::FRAG_HEADER_LEN + piece.len()];
            f[..HEADER_LEN].copy_from_slice(&pkt[..HEADER_LEN]);
            f[6] = IpProtocol::IPV6_FRAG.0;
            let len = (ipv6::FRAG_HEADER_LEN + piece.len()) as u16;
            f[4..6].copy_from_slice(&len.to_be_bytes());
            Ipv6FragmentRepr {
                next_header: next,
                frag_offset: off as u16,
                more_frags: off + piece.len() < data.len(),
                ident,
            }
            .emit(&mut f[HEADER_LEN..]);
            f[HEADER_LEN + ipv6::FRAG_HEADER_LEN..].copy_from_slice(piece);
            out.push(f);
        }
        self.stats.ip6_frag_oks += 1;
        self.stats.ip6_frag_creates += out.len() as u64;
        Ok(out)
    }

    /// Add a configured IPv6 address (and its on-link prefix route) to `iface`.
    /// On Ethernet it is tentative until Duplicate Address Detection passes
    /// (RFC 4862 §5.4); on a point-to-point IP link it is usable at once.
    pub(crate) fn add_address_v6(
        &mut self,
        now: Instant,
        iface: IfaceId,
        cidr: berth_wire::Ipv6Cidr,
        origin: AddrOrigin,
        lifetimes: (Option<Instant>, Option<Instant>),
    ) -> io::Result<()> {
        let a = cidr.address();
        if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
            return Err(error(
                code::EINVAL,
                format!("{a} cannot be an interface address; give a unicast address"),
            ));
        }
        let Some(ifc) = self.ifaces.get(iface.0) else {
            return Err(error(code::EINVAL, format!("no interface {}", iface.0)));
        };
        if ifc.v6.iter().any(|x| x.addr() == a) {
            return Err(error(
                code::EADDRINUSE,
                format!("{a} is already an address of interface {}", iface.0),
            ));
        }
        let ethernet = matches!(ifc.config.medium, crate::config::Medium::Ethernet(_));
        let dad = ethernet && self.config.dad_transmits > 0;
        let state = if dad {
            AddrState::Tentative {
                left: self.config.dad_transmits,
            }
        } else {
            AddrState::Preferred
        };
        self.ifaces[iface.0].v6.push(crate::iface::Addr6 {
            cidr,
            origin,
            state,
            valid_until: lifetimes.0,
            preferred_until: lifetimes.1,
        });
        // fe80::/64 is on-link on every interface; route_v6 handles it
        // without a table entry (`ip -6 route` shows one per interface).
        if cidr.prefix_len() < 128 && origin != AddrOrigin::LinkLocal {
            self.routes.add(crate::iface::Route {
                dest: cidr.network().into(),
                gateway: None,
                iface,
            });
        }
        if dad {
            self.dad_start(now, iface, a);
        }
        Ok(())
    }
}

/// The whole IPv6 packet: fixed header, then `fill` writes the payload.
pub(crate) fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: IpProtocol,
    hop_limit: u8,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8], Ipv6Addr, Ipv6Addr),
) -> Vec<u8> {
    ipv6_packet_with_payload(src, dst, next_header, hop_limit, payload_len, &[], fill)
}

/// [`ipv6_packet`] whose transport payload ends in `data` (after `head`
/// bytes of transport header that `fill` writes around it): the buffer is not
/// zeroed under `data` first.
pub(crate) fn ipv6_packet_with_payload(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: IpProtocol,
    hop_limit: u8,
    head: usize,
    data: &[u8],
    fill: impl FnOnce(&mut [u8], Ipv6Addr, Ipv6Addr),
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header,
        payload_len: head + data.len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut pkt = Vec::with_capacity(repr.buffer_len());
    pkt.resize(HEADER_LEN + head, 0);
    pkt.extend_from_slice(data);
    repr.emit(&mut pkt);
    fill(&mut pkt[HEADER_LEN..], src, dst);
    pkt
}

/// Offset of the Next Header field that names the header at `at` (6 for the
/// first; else the first byte of the header before it). The chain up to `at`
/// was validated by the walk that found `at`.
fn naming_field(packet: &[u8], first: IpProtocol, at: usize) -> Option<usize> {
    let (mut field, mut next, mut pos) = (6usize, first, HEADER_LEN);
    while pos < at {
        let len = if next == IpProtocol::IPV6_FRAG {
            ipv6::FRAG_HEADER_LEN
        } else {
            (*packet.get(pos + 1)? as usize + 1) * 8
        };
        field = pos;
        next = IpProtocol(*packet.get(pos)?);
        pos += len;
    }
    (pos == at).then_some(field)
}
