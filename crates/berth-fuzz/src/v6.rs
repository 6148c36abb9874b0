//! The harness's IPv6 half: the start state's IPv6 sockets and connections,
//! IPv6 frames on the link, neighbour solicitations answered, the stack's IPv6
//! output followed, and the IPv6 frames the fuzzer shapes: ICMPv6 errors
//! quoting the stack's packets, echo requests, every NDP message (hop limit
//! and source now and then wrong), fragment headers, raw packets with
//! extension-header chains. Addresses from 2001:db8::/32 and fe80::/10.

use super::{cut_fragments, eth, Harness, Input, Medium, BACKLOG, LISTEN_PORT, STACK_MAC};
use super::{PING_PEER6, STACK_IP6};
use berth_core::AddrState;
use berth_wire::ipv6::{is_link_local, multicast_mac, solicited_node, HEADER_LEN};
use berth_wire::{
    EtherType, EthernetAddress, Icmpv6DstUnreachable, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded,
    IpAddr, IpCidr, IpProtocol, Ipv6Addr, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr, NdpOption,
    NdpPrefixInfo, NdpRepr, ParamProblemCode, TcpPacket, TcpRepr,
};
use std::net::{SocketAddr, SocketAddrV6};
use std::time::Duration;

/// An IPv6 peer: mostly on-link hosts of 2001:db8::/64, some by their
/// link-local address, now and then one off-link.
pub(crate) fn peer_ip6(b: u8) -> Ipv6Addr {
    match b % 8 {
        7 => Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, b as u16),
        6 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2 + (b as u16 % 6)),
        _ => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2 + (b as u16 % 6)),
    }
}

fn mac_of6(ip: Ipv6Addr) -> EthernetAddress {
    let o = ip.octets();
    EthernetAddress([0x02, 0x01, o[12], o[13], o[14], o[15]])
}

/// An address as IPv6 (IPv4 as IPv4-mapped).
pub(crate) fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// A whole IPv6 packet: the fixed header, then `payload`.
pub(crate) fn ip6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: IpProtocol,
    hop: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit: hop,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut pkt = vec![0u8; HEADER_LEN + payload.len()];
    repr.emit(&mut pkt);
    pkt[HEADER_LEN..].copy_from_slice(payload);
    pkt
}

fn icmp6_packet(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, msg: &Icmpv6Repr) -> Vec<u8> {
    let mut body = vec![0u8; msg.buffer_len()];
    msg.emit(&mut body, &src, &dst);
    ip6_packet(src, dst, IpProtocol::ICMPV6, hop, &body)
}

fn options(list: &[NdpOption]) -> Vec<u8> {
    let mut area = vec![0u8; list.iter().map(|o| o.buffer_len()).sum()];
    let n = NdpOption::emit_all(list, &mut area);
    area.truncate(n);
    area
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ROUTER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

impl Harness {
    /// The IPv6 half of the start state: autoconfiguration on (router
    /// advertisements are taken), DAD finished, a V6ONLY listener on [::]:80,
    /// UDP on [::]:53 (V6ONLY) and one connected, raw ICMPv6 and next-header-253
    /// sockets, an established client connection and an accepted one.
    pub(crate) fn setup_v6(&mut self) {
        let now = self.now;
        let _ = self.stack.set_autoconf(now, self.iface);
        // DAD of the link-local and the configured address (Ethernet).
        self.advance(Duration::from_secs(2));
        assert!(self.v6_usable(), "2001:db8::1 not usable after DAD");
        let s = &mut self.stack;
        let l = s.tcp_socket_v6();
        let any6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, LISTEN_PORT, 0, 0));
        let _ = s.tcp_set_only_v6(l, true);
        s.tcp_bind(l, any6).expect("bind [::]:80");
        s.tcp_listen(l, BACKLOG).expect("listen");
        self.tcp.push(l);
        let u = s.udp_socket_v6();
        let _ = s.udp_set_only_v6(u, true);
        s.udp_bind(u, SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 53, 0, 0))
            .expect("udp bind [::]:53");
        self.udp.push(u);
        let u = s.udp_socket_v6();
        s.udp_connect(u, SocketAddrV6::new(PING_PEER6, 7, 0, 0))
            .expect("udp connect");
        self.udp.push(u);
        for proto in [IpProtocol::ICMPV6, IpProtocol(253)] {
            self.raw.push(s.raw_socket_v6(proto).expect("raw IPv6"));
        }
        self.active_open(SocketAddrV6::new(PING_PEER6, 8080, 0, 0).into());
        let peer = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);
        let local = SocketAddrV6::new(STACK_IP6, LISTEN_PORT, 0, 0);
        self.passive_open(l, local.into(), SocketAddrV6::new(peer, 40000, 0, 0).into());
    }

    /// Put an IPv6 packet on the link: on Ethernet from the source's MAC to the
    /// destination group's MAC or the stack's.
    pub(crate) fn inject_ip6(&mut self, pkt: &[u8]) {
        let addr = |at: usize| {
            pkt.get(at..at + 16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(Ipv6Addr::from)
        };
        let frame = match self.medium {
            Medium::Ip => pkt.to_vec(),
            Medium::Ethernet => {
                let src = addr(8).unwrap_or(PING_PEER6);
                let dst = addr(24)
                    .and_then(|d| multicast_mac(&d))
                    .unwrap_or(STACK_MAC);
                eth(mac_of6(src), dst, EtherType::Ipv6, pkt)
            }
        };
        self.stack.receive(self.now, self.iface, &frame);
    }

    /// One of the stack's IPv6 packets: remember it for errors to quote,
    /// answer a neighbour solicitation, follow TCP, spot the ping reply.
    pub(crate) fn learn6(&mut self, ip: &[u8]) {
        let Ok(p) = Ipv6Packet::new_checked(ip) else {
            return;
        };
        let Ok(repr) = Ipv6Repr::parse(&p) else {
            return;
        };
        self.sent.push_back(ip.to_vec());
        if self.sent.len() > super::MAX_SENT {
            self.sent.pop_front();
        }
        let Some(payload) = ip.get(HEADER_LEN..HEADER_LEN + repr.payload_len) else {
            return;
        };
        let (src, dst) = (repr.src_addr, repr.dst_addr);
        match repr.next_header {
            IpProtocol::TCP => {
                let Ok(seg) =
                    TcpPacket::new_checked(payload).and_then(|t| TcpRepr::parse(&t, &src, &dst))
                else {
                    return;
                };
                let local = SocketAddrV6::new(src, seg.src_port, 0, 0);
                let remote = SocketAddrV6::new(dst, seg.dst_port, 0, 0);
                self.learn_tcp(local.into(), remote.into(), &seg);
            }
            IpProtocol::ICMPV6 => {
                let Ok(msg) = Icmpv6Packet::new_checked(payload)
                    .and_then(|m| Icmpv6Repr::parse(&m, &src, &dst))
                else {
                    return;
                };
                match msg {
                    Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit { target_addr, .. }) => {
                        self.answer_ns(src, target_addr)
                    }
                    Icmpv6Repr::EchoReply { ident, seq_no, .. }
                        if (ident, seq_no) == (0xbe57, 0x1234) && dst == PING_PEER6 =>
                    {
                        self.ping6_seen = true;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Is `a` one of the stack's IPv6 addresses (any state)?
    fn is_ours(&self, a: Ipv6Addr) -> bool {
        self.stack
            .addresses(self.iface)
            .iter()
            .any(|(c, _)| matches!(c, IpCidr::Ipv6(c) if c.address() == a))
    }

    /// The peer `target` answers the stack's solicitation, as a host on the
    /// link would (DAD probes and solicitations for the stack's own addresses
    /// go unanswered).
    fn answer_ns(&mut self, src: Ipv6Addr, target: Ipv6Addr) {
        if !self.arp_answer || src.is_unspecified() || self.is_ours(target) {
            return;
        }
        let tlla = options(&[NdpOption::TargetLinkLayerAddr(mac_of6(target))]);
        let na = Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
            router_flag: false,
            solicited_flag: true,
            override_flag: true,
            target_addr: target,
            options: &tlla,
        });
        let pkt = icmp6_packet(target, src, 255, &na);
        self.inject_ip6(&pkt);
    }

    /// An ICMPv6 message to the stack: an error quoting one of its recent IPv6
    /// packets, an echo request, or a neighbour-discovery message; the hop
    /// limit is 255 unless the fuzzer picks one.
    pub(crate) fn fuzz_icmp6(&mut self, input: &mut Input) -> Option<Vec<u8>> {
        let kind = input.u8();
        let hop = if kind & 0x80 != 0 { input.u8() } else { 255 };
        let peer = peer_ip6(input.u8());
        let me = STACK_IP6;
        let data = input.bytes(64);
        let msg = match kind % 16 {
            0..=5 => {
                let orig = self.recent_sent(input.u8(), 6)?;
                let header = Ipv6Repr::parse(&Ipv6Packet::new_checked(&orig[..]).ok()?).ok()?;
                let quoted = 8 + input.u8() as usize % 64;
                let q = &orig[HEADER_LEN..(HEADER_LEN + quoted).min(orig.len())];
                let msg = match kind % 16 {
                    0 => Icmpv6Repr::PacketTooBig {
                        mtu: match input.u8() {
                            0..=127 => 1280,
                            128..=191 => input.u16() as u32,
                            _ => input.u32(),
                        },
                        header,
                        data: q,
                    },
                    1 => Icmpv6Repr::DstUnreachable {
                        reason: Icmpv6DstUnreachable::PortUnreachable,
                        header,
                        data: q,
                    },
                    2 => Icmpv6Repr::DstUnreachable {
                        reason: match input.u8() % 8 {
                            0 => Icmpv6DstUnreachable::NoRoute,
                            1 => Icmpv6DstUnreachable::AdminProhibited,
                            2 => Icmpv6DstUnreachable::BeyondScope,
                            3 => Icmpv6DstUnreachable::AddrUnreachable,
                            4 => Icmpv6DstUnreachable::FailedPolicy,
                            5 => Icmpv6DstUnreachable::RejectRoute,
                            _ => Icmpv6DstUnreachable::Other(input.u8()),
                        },
                        header,
                        data: q,
                    },
                    3 => Icmpv6Repr::TimeExceeded {
                        reason: if input.bool() {
                            Icmpv6TimeExceeded::HopLimitExceeded
                        } else {
                            Icmpv6TimeExceeded::FragReassemblyExceeded
                        },
                        header,
                        data: q,
                    },
                    _ => Icmpv6Repr::ParamProblem {
                        reason: match input.u8() % 4 {
                            0 => ParamProblemCode::ErroneousHeaderField,
                            1 => ParamProblemCode::UnrecognizedNextHeader,
                            2 => ParamProblemCode::UnrecognizedOption,
                            _ => ParamProblemCode::Other(input.u8()),
                        },
                        pointer: input.u8() as u32,
                        header,
                        data: q,
                    },
                };
                // From the destination the stack wrote to, or from a router.
                let from = if kind & 0x40 != 0 {
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe)
                } else {
                    header.dst_addr
                };
                let mut body = vec![0u8; msg.buffer_len()];
                msg.emit(&mut body, &from, &me);
                return Some(ip6_packet(from, me, IpProtocol::ICMPV6, hop, &body));
            }
            6 | 7 => Icmpv6Repr::EchoRequest {
                ident: input.u16(),
                seq_no: input.u16(),
                data: &data,
            },
            _ => return self.fuzz_ndp(kind, hop, peer, &data, input),
        };
        let dst = if kind & 0x40 != 0 { ALL_NODES } else { me };
        Some(icmp6_packet(peer, dst, hop, &msg))
    }

    /// Neighbour discovery: solicitations (DAD probes from :: among them) and
    /// advertisements for the stack's addresses or a peer's, router
    /// advertisements with prefix and MTU options, redirects, router
    /// solicitations; from a link-local or a global source; options valid or
    /// taken from the input.
    fn fuzz_ndp(
        &mut self,
        kind: u8,
        hop: u8,
        peer: Ipv6Addr,
        raw_opts: &[u8],
        input: &mut Input,
    ) -> Option<Vec<u8>> {
        let sel = input.u8();
        let lladdr = if sel & 1 != 0 {
            EthernetAddress([0x02, 0x01, 0, 0, input.u8(), input.u8()])
        } else {
            mac_of6(peer)
        };
        // The target: the stack's address, its link-local one, or a peer.
        let target = match sel >> 1 & 3 {
            0 => STACK_IP6,
            1 => self
                .stack
                .addresses(self.iface)
                .iter()
                .find_map(|(c, _)| match c {
                    IpCidr::Ipv6(c) if is_link_local(&c.address()) => Some(c.address()),
                    _ => None,
                })
                .unwrap_or(STACK_IP6),
            _ => peer,
        };
        let raw = sel & 8 != 0;
        let router_src = if sel & 16 != 0 { peer } else { ROUTER_LL };
        let (src, dst, opts, msg_kind);
        match kind % 16 {
            8 | 9 => {
                // A solicitation; from :: it is another node's DAD probe.
                src = if sel & 32 != 0 {
                    Ipv6Addr::UNSPECIFIED
                } else {
                    peer
                };
                dst = if sel & 64 != 0 {
                    STACK_IP6
                } else {
                    solicited_node(&target)
                };
                opts = if src.is_unspecified() {
                    Vec::new()
                } else {
                    options(&[NdpOption::SourceLinkLayerAddr(lladdr)])
                };
                msg_kind = 0;
            }
            10 | 11 => {
                src = if target == peer { peer } else { peer_ip6(sel) };
                dst = if sel & 64 != 0 { ALL_NODES } else { STACK_IP6 };
                opts = options(&[NdpOption::TargetLinkLayerAddr(lladdr)]);
                msg_kind = 1;
            }
            12 | 13 => {
                src = router_src;
                dst = ALL_NODES;
                let prefix = match input.u8() % 4 {
                    0 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
                    1 => Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0, 0, 0, 0, 0),
                    2 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
                    _ => Ipv6Addr::new(0x2001, 0xdb8, input.u16(), 0, 0, 0, 0, 0),
                };
                let flags = input.u8();
                let lifetime = |b: u8, input: &mut Input| match b % 4 {
                    0 => 0,
                    1 => 30,
                    2 => u32::MAX,
                    _ => input.u32(),
                };
                let valid = lifetime(flags >> 2, input);
                let preferred = lifetime(flags >> 4, input);
                let mut list = vec![
                    NdpOption::SourceLinkLayerAddr(lladdr),
                    NdpOption::PrefixInfo(NdpPrefixInfo {
                        prefix_len: if flags & 64 != 0 {
                            input.u8() % 129
                        } else {
                            64
                        },
                        on_link: flags & 1 != 0,
                        autonomous: flags & 2 != 0,
                        valid_lifetime: valid,
                        preferred_lifetime: preferred,
                        prefix,
                    }),
                ];
                if flags & 128 != 0 {
                    list.push(NdpOption::Mtu(input.u16() as u32));
                }
                opts = options(&list);
                msg_kind = 2;
            }
            14 => {
                src = router_src;
                dst = STACK_IP6;
                opts = Vec::new();
                msg_kind = 3;
            }
            _ => {
                src = peer;
                dst = STACK_IP6;
                opts = options(&[NdpOption::SourceLinkLayerAddr(lladdr)]);
                msg_kind = 4;
            }
        }
        let options: &[u8] = if raw { raw_opts } else { &opts };
        let ndp = match msg_kind {
            0 => NdpRepr::NeighborSolicit {
                target_addr: target,
                options,
            },
            1 => NdpRepr::NeighborAdvert {
                router_flag: sel & 32 != 0,
                solicited_flag: sel & 128 != 0,
                override_flag: input.bool(),
                target_addr: target,
                options,
            },
            2 => NdpRepr::RouterAdvert {
                cur_hop_limit: input.u8(),
                managed_flag: false,
                other_flag: false,
                router_lifetime: match input.u8() % 4 {
                    0 => 0,
                    1 => 1800,
                    _ => input.u16(),
                },
                reachable_time: input.u16() as u32,
                retrans_timer: input.u16() as u32,
                options,
            },
            3 => NdpRepr::Redirect {
                target_addr: peer,
                dest_addr: peer_ip6(input.u8()),
                options,
            },
            _ => NdpRepr::RouterSolicit { options },
        };
        Some(icmp6_packet(src, dst, hop, &Icmpv6Repr::Ndp(ndp)))
    }

    /// Fragments of an IPv6 packet the harness built (no extension headers),
    /// each with a fragment header, cut and ordered as IPv4's are.
    pub(crate) fn fragments6(&mut self, whole: &[u8], input: &mut Input) {
        let Ok(repr) = Ipv6Packet::new_checked(whole).and_then(|p| Ipv6Repr::parse(&p)) else {
            return;
        };
        let payload = &whole[HEADER_LEN..];
        let ident = input.u32();
        for (s, e) in cut_fragments(payload.len(), input) {
            let mut body = vec![0u8; 8 + e - s];
            Ipv6FragmentRepr {
                next_header: repr.next_header,
                frag_offset: s as u16,
                more_frags: e < payload.len(),
                ident,
            }
            .emit(&mut body);
            body[8..].copy_from_slice(&payload[s..e]);
            let pkt = ip6_packet(
                repr.src_addr,
                repr.dst_addr,
                IpProtocol::IPV6_FRAG,
                repr.hop_limit,
                &body,
            );
            self.inject_ip6(&pkt);
            if input.u8().is_multiple_of(16) {
                self.inject_ip6(&pkt);
            }
        }
    }

    /// A raw IPv6 packet: a valid fixed header (payload length now and then
    /// wrong) before a chain of extension headers whose next-header and
    /// length bytes come from the input, then arbitrary bytes.
    pub(crate) fn raw_ip6(&mut self, input: &mut Input) -> Vec<u8> {
        let first = Self::next_header(input.u8(), input);
        let mut body = Vec::new();
        // Each header names the next; the last names whatever the input says,
        // so the chain may end in a transport, in nothing, or past the packet.
        for _ in 0..input.u8() % 10 {
            let next = Self::next_header(input.u8(), input);
            let len8 = input.u8() % 4;
            let mut h = vec![0u8; 8 * (len8 as usize + 1)];
            h[0] = next.0;
            h[1] = len8;
            let fill = input.bytes(h.len() - 2);
            h[2..2 + fill.len()].copy_from_slice(&fill);
            body.extend_from_slice(&h);
        }
        body.extend_from_slice(&input.bytes(255));
        let src = match input.u8() % 4 {
            0 => Ipv6Addr::UNSPECIFIED,
            1 => ROUTER_LL,
            _ => peer_ip6(input.u8()),
        };
        let dst = match input.u8() % 4 {
            0 => ALL_NODES,
            1 => solicited_node(&STACK_IP6),
            _ => STACK_IP6,
        };
        let mut pkt = ip6_packet(src, dst, first, input.u8(), &body);
        if input.u8().is_multiple_of(8) {
            pkt[4..6].copy_from_slice(&input.u16().to_be_bytes());
        }
        pkt
    }

    /// A next-header value: mostly extension headers and transports.
    fn next_header(b: u8, input: &mut Input) -> IpProtocol {
        IpProtocol(match b % 12 {
            0 => 0,   // hop-by-hop
            1 => 43,  // routing
            2 => 44,  // fragment
            3 => 60,  // destination options
            4 => 59,  // no next header
            5 => 58,  // ICMPv6
            6 => 6,   // TCP
            7 => 17,  // UDP
            8 => 253, // experimental: a raw socket has it
            9 => 51,  // AH, not handled
            _ => input.u8(),
        })
    }

    /// 2001:db8::1 is past DAD and not found duplicate.
    fn v6_usable(&self) -> bool {
        self.stack.addresses(self.iface).iter().any(|(c, st)| {
            matches!(c, IpCidr::Ipv6(c) if c.address() == STACK_IP6)
                && matches!(st, Some((_, AddrState::Preferred | AddrState::Deprecated)))
        })
    }

    /// The IPv6 half of the final check: an echo request from a peer on the
    /// link must be answered (the peer answers the stack's solicitation).
    pub(crate) fn final_ping6(&mut self) {
        if !self.v6_usable() {
            // DAD found it duplicate (the input answered for it): nothing to ping.
            return;
        }
        self.ping6_seen = false;
        let echo = Icmpv6Repr::EchoRequest {
            ident: 0xbe57,
            seq_no: 0x1234,
            data: b"still alive?",
        };
        let pkt = icmp6_packet(PING_PEER6, STACK_IP6, 64, &echo);
        self.inject_ip6(&pkt);
        self.drain();
        assert!(
            self.ping6_seen,
            "the stack did not answer an IPv6 ping at the end; stats: {:?}",
            self.stack.stats()
        );
        self.check(|| "the final IPv6 ping".into());
    }
}
