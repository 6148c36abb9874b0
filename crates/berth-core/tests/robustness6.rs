//! IPv6 robustness: arbitrary and mutated IPv6 frames on both media never panic
//! and leave a stack that still answers IPv4 and IPv6 pings and UDP; each class
//! of bad input (truncated or inconsistent headers, extension-header chains that
//! never end, fragment floods, NDP that breaks RFC 4861's rules) is dropped and
//! moves the counter that names it; the ICMPv6 error rate limit holds under a
//! flood. Addresses from 2001:db8::/32 and fe80::/10 only.

mod common;

use berth_core::wire::ipv6::{solicited_node, MAX_EXT_HEADERS};
use berth_core::wire::{
    EthernetAddress, Icmpv6DstUnreachable, Icmpv6Repr, Icmpv6TimeExceeded, IpCidr, IpProtocol,
    Ipv6Addr, Ipv6Packet, Ipv6Repr, NdpOption, NdpPrefixInfo, NdpRepr, ParamProblemCode, SeqNumber,
    TcpFlags, TcpRepr,
};
use berth_core::{
    Config, Duration, IfaceConfig, IfaceId, Instant, Medium, SocketHandle, Stack, Stats,
};
use common::v6::*;
use common::*;
use proptest::arbitrary::any;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

const VICTIM_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
const REASSEMBLY_MEM: usize = 64 * 1024;

fn medium(eth: bool) -> Medium {
    if eth {
        Medium::Ethernet(VICTIM_MAC)
    } else {
        Medium::Ip
    }
}

fn ll(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The stack under test and its dual-stack UDP socket on port 9.
struct Victim {
    s: Stack,
    eth: bool,
    udp: SocketHandle,
}

/// 192.0.2.1/24 and 2001:db8::1/64 (DAD off: usable at once) with sockets so
/// that inputs reach many paths: a dual-stack UDP socket on [::]:9, one
/// connected to [2001:db8::2]:7, raw ICMPv6 and next-header-253 sockets, a TCP
/// listener on [::]:80.
fn victim(eth: bool) -> Victim {
    victim_with(eth, |_| {})
}

/// [`victim`] on a config `tune` has adjusted.
fn victim_with(eth: bool, tune: impl FnOnce(&mut Config)) -> Victim {
    let mut c = Config {
        socket_recv_buffer: 4096,
        reassembly_mem: REASSEMBLY_MEM,
        ..cfg(42)
    };
    tune(&mut c);
    let mut s = Stack::new(c);
    s.add_interface(IfaceConfig {
        medium: medium(eth),
        address: cidr(ip(1), 24),
        mtu: 1500,
    })
    .unwrap();
    s.add_address(t0(), IfaceId(0), cidr6(v6(1), 64)).unwrap();
    let udp = s.udp_socket();
    s.udp_bind(udp, "[::]:9".parse::<SocketAddr>().unwrap())
        .unwrap();
    let c = s.udp_socket();
    s.udp_bind(c, s6(1, 5000)).unwrap();
    s.udp_connect(c, s6(2, 7)).unwrap();
    s.raw_socket_v6(IpProtocol::ICMPV6).unwrap();
    s.raw_socket_v6(IpProtocol(253)).unwrap();
    let l = s.tcp_socket();
    s.tcp_bind(l, "[::]:80".parse::<SocketAddr>().unwrap())
        .unwrap();
    s.tcp_listen(l, 8).unwrap();
    Victim { s, eth, udp }
}

impl Victim {
    fn medium(&self) -> Medium {
        medium(self.eth)
    }

    /// An IPv6 packet from 2001:db8::2 (MAC 02:00:00:00:00:02), framed.
    fn frame(&self, pkt: &[u8]) -> Vec<u8> {
        frame6(self.medium(), mac(2), pkt)
    }

    fn feed(&mut self, now: Instant, f: &[u8]) {
        self.s.receive(now, IfaceId(0), f);
        drain(&mut self.s, now);
    }

    fn feed_pkt(&mut self, now: Instant, pkt: &[u8]) {
        let f = self.frame(pkt);
        self.feed(now, &f);
    }

    fn stats(&self) -> &Stats {
        self.s.stats()
    }

    /// After arbitrary input: let every timer run, check reassembly memory is
    /// released, and that the stack answers IPv4 and IPv6 pings and takes UDP
    /// datagrams of both families.
    fn still_healthy(&mut self, now: Instant) {
        let later = now + Duration::from_secs(120);
        run_timers(&mut self.s, now, later);
        let m = self.medium();
        let s = &mut self.s;
        assert_eq!(s.reassembly_memory(), 0, "partial datagrams left");
        assert_eq!(s.reassembly_pending(), 0);
        s.check_invariants().unwrap();
        assert!(
            answers_ping(s, later, m, ip(1), ip(2), mac(2), 77),
            "stack stopped answering IPv4 pings"
        );
        assert!(
            answers_ping6(s, later, m, v6(1), v6(2), mac(2), 78),
            "stack stopped answering IPv6 pings"
        );
        // UDP of both families reaches the dual-stack socket (emptied first:
        // input may have filled its queue).
        let mut buf = [0u8; 2048];
        while s.udp_recv_from(self.udp, &mut buf).is_ok() {}
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        for (pkt, from) in [
            (build_udp(sa(2, 1111), sa(1, 9), 9, b"v4 ok"), mapped),
            (udp6_packet(s6(2, 1111), s6(1, 9), b"v6 ok"), v6(2).into()),
        ] {
            let f = match (from.is_ipv6() && from != mapped, m) {
                (_, Medium::Ip) => pkt,
                (true, _) => frame6(m, mac(2), &pkt),
                (false, Medium::Ethernet(me)) => {
                    eth(mac(2), me, berth_core::wire::EtherType::Ipv4, &pkt)
                }
            };
            s.receive(later, IfaceId(0), &f);
            let (n, got) = s.udp_recv_from(self.udp, &mut buf).expect("UDP lost");
            assert_eq!(
                (&buf[2..n], got),
                (&b" ok"[..], SocketAddr::new(from, 1111))
            );
        }
        s.check_invariants().unwrap();
    }
}

fn changed(before: &Stats, after: &Stats) -> Vec<(&'static str, u64)> {
    before
        .iter()
        .zip(after.iter())
        .filter(|(b, a)| a.2 != b.2)
        .map(|(b, a)| (a.0, a.2 - b.2))
        .collect()
}

// ---- the corpus -----------------------------------------------------------------

fn icmp(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, m: &Icmpv6Repr) -> Vec<u8> {
    icmp6_packet(src, dst, hop, m)
}

fn ndp(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, m: NdpRepr) -> Vec<u8> {
    icmp(src, dst, hop, &Icmpv6Repr::Ndp(m))
}

fn lladdr_opt(target: bool, hw: EthernetAddress) -> Vec<u8> {
    let mut o = vec![0u8; 8];
    let opt = if target {
        NdpOption::TargetLinkLayerAddr(hw)
    } else {
        NdpOption::SourceLinkLayerAddr(hw)
    };
    NdpOption::emit_all(&[opt], &mut o);
    o
}

/// A neighbour solicitation for `target` to its solicited-node group.
fn ns(src: Ipv6Addr, target: Ipv6Addr, hop: u8) -> Vec<u8> {
    ns_to(src, solicited_node(&target), target, hop)
}

fn ns_to(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, hop: u8) -> Vec<u8> {
    let o = lladdr_opt(false, mac(2));
    let m = NdpRepr::NeighborSolicit {
        target_addr: target,
        options: &o,
    };
    ndp(src, dst, hop, m)
}

fn na(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, solicited: bool, hop: u8) -> Vec<u8> {
    let o = lladdr_opt(true, EthernetAddress([2, 0, 0, 0, 0, 0x42]));
    let m = NdpRepr::NeighborAdvert {
        router_flag: false,
        solicited_flag: solicited,
        override_flag: true,
        target_addr: target,
        options: &o,
    };
    ndp(src, dst, hop, m)
}

fn ra(src: Ipv6Addr, hop: u8) -> Vec<u8> {
    let mut o = vec![0u8; 8 + 32 + 8];
    let n = NdpOption::emit_all(
        &[
            NdpOption::SourceLinkLayerAddr(mac(0x99)),
            NdpOption::PrefixInfo(NdpPrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 3600,
                preferred_lifetime: 1800,
                prefix: ll("2001:db8:1::"),
            }),
            NdpOption::Mtu(1400),
        ],
        &mut o,
    );
    let m = NdpRepr::RouterAdvert {
        cur_hop_limit: 64,
        managed_flag: false,
        other_flag: false,
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
        options: &o[..n],
    };
    ndp(src, ll("ff02::1"), hop, m)
}

fn redirect(src: Ipv6Addr, hop: u8) -> Vec<u8> {
    let m = NdpRepr::Redirect {
        target_addr: ll("fe80::99"),
        dest_addr: v6(5),
        options: &[],
    };
    ndp(src, v6(1), hop, m)
}

/// The fixed header of a packet the victim sent to 2001:db8::2:7 (for errors).
fn quoted() -> (Ipv6Repr, Vec<u8>) {
    let q = udp6_packet(s6(1, 5000), s6(2, 7), b"quoted");
    let h = Ipv6Repr::parse(&Ipv6Packet::new_checked(&q[..]).unwrap()).unwrap();
    (h, q[40..].to_vec())
}

/// A TCP SYN from [2001:db8::2]:40000 to port 80.
fn syn() -> Vec<u8> {
    let mut r = TcpRepr::new(40000, 80, SeqNumber(1000), TcpFlags::SYN);
    r.window_len = 65535;
    r.max_seg_size = Some(1440);
    let mut seg = vec![0u8; r.buffer_len()];
    r.emit(&mut seg, &v6(2), &v6(1));
    packet6(v6(2), v6(1), IpProtocol::TCP, 64, &seg)
}

/// Valid IPv6 packets to the victim, of many kinds.
fn corpus() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let (qh, qd) = quoted();
        let (me, peer) = (v6(1), v6(2));
        let to_me = |m: &Icmpv6Repr| icmp(peer, me, 64, m);
        let udp9 = udp6_bytes(s6(2, 1234), s6(1, 9), b"behind extension headers");
        let mut v = vec![
            udp6_packet(s6(2, 1234), s6(1, 9), b"hello corpus"),
            udp6_packet(s6(2, 1234), s6(1, 10), b"closed port"),
            udp6_packet(s6(2, 7), s6(1, 5000), b"from the connected peer"),
            to_me(&Icmpv6Repr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: b"ping data",
            }),
            to_me(&Icmpv6Repr::EchoReply {
                ident: 1,
                seq_no: 2,
                data: b"pong data",
            }),
            to_me(&Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::PortUnreachable,
                header: qh,
                data: &qd,
            }),
            to_me(&Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::HopLimitExceeded,
                header: qh,
                data: &qd,
            }),
            to_me(&Icmpv6Repr::ParamProblem {
                reason: ParamProblemCode::ErroneousHeaderField,
                pointer: 4,
                header: qh,
                data: &qd,
            }),
            to_me(&Icmpv6Repr::PacketTooBig {
                mtu: 1280,
                header: qh,
                data: &qd,
            }),
            syn(),
            ns(peer, me, 255),
            na(peer, me, peer, false, 255),
            ra(ll("fe80::1"), 255),
            redirect(ll("fe80::1"), 255),
            // Router solicitation (a host ignores it).
            ndp(peer, me, 255, NdpRepr::RouterSolicit { options: &[] }),
            // Hop-by-hop then destination options then UDP to port 9.
            packet6(
                peer,
                me,
                IpProtocol::HOPOPT,
                64,
                &opts_header(
                    IpProtocol::IPV6_OPTS,
                    0,
                    &opts_header(IpProtocol::UDP, 1, &udp9),
                ),
            ),
            // Routing type 0 with segments left: Parameter Problem (RFC 5095).
            packet6(
                peer,
                me,
                IpProtocol::IPV6_ROUTE,
                64,
                &[17, 0, 0, 1, 0, 0, 0, 0],
            ),
            packet6(peer, me, IpProtocol(253), 64, b"experimental"),
            packet6(peer, me, IpProtocol(254), 64, b"unknown"),
            // An atomic fragment (RFC 6946).
            packet6(
                peer,
                me,
                IpProtocol::IPV6_FRAG,
                64,
                &frag6_body(IpProtocol::UDP, 99, 0, false, &udp9),
            ),
        ];
        // A 3000-byte UDP datagram to port 9 in three fragments.
        let big = udp6_bytes(s6(2, 1234), s6(1, 9), &[0x5a; 3000]);
        for (off, end) in [(0usize, 1232), (1232, 2464), (2464, big.len())] {
            let body = frag6_body(
                IpProtocol::UDP,
                7,
                off as u16,
                end < big.len(),
                &big[off..end],
            );
            v.push(packet6(peer, me, IpProtocol::IPV6_FRAG, 64, &body));
        }
        v
    })
}

/// Every corpus packet framed for a medium.
fn frames(eth: bool) -> Vec<Vec<u8>> {
    corpus()
        .iter()
        .map(|p| frame6(medium(eth), mac(2), p))
        .collect()
}

#[test]
fn the_corpus_itself_is_valid_and_handled() {
    for eth in [false, true] {
        let mut v = victim(eth);
        let now = t0();
        for f in frames(eth) {
            v.feed(now, &f);
        }
        let st = v.stats();
        assert_eq!(st.ip6_in_receives, corpus().len() as u64);
        assert_eq!(st.ip6_in_truncated + st.ip6_in_addr_errors, 0);
        assert_eq!(st.icmp6_in_errors + st.icmp6_in_csum_errors, 0);
        assert_eq!(st.udp_in_csum_errors + st.udp_in_errors, 0);
        assert_eq!(
            st.udp_in_datagrams, 5,
            "hello, connected peer, extension headers, atomic, reassembled"
        );
        assert_eq!((st.ip6_reasm_oks, st.ip6_atomic_frags), (1, 1));
        assert_eq!((st.icmp6_in_echos, st.icmp6_out_echo_reps), (1, 1));
        assert_eq!(st.icmp6_in_echo_reps, 1);
        assert_eq!(st.icmp6_in_dest_unreachs, 1);
        assert_eq!(st.icmp6_in_time_excds, 1);
        assert_eq!(st.icmp6_in_parm_problems, 1);
        assert_eq!(st.icmp6_in_pkt_too_bigs, 1);
        assert_eq!(st.ndp_in_invalid, 0);
        assert_eq!(
            (
                st.ndp_in_solicits,
                st.ndp_in_adverts,
                st.ndp_in_router_adverts
            ),
            (1, 1, 1)
        );
        assert_eq!(st.ndp_in_ignored, 2, "redirect and router solicitation");
        assert_eq!(st.ip6_in_hdr_errors, 1, "routing type 0");
        assert_eq!(st.ip6_in_unknown_protos, 1, "254 (253 has a raw socket)");
        assert_eq!(st.tcp_in_segs, 1);
        assert_eq!(st.udp_no_ports, 1);
        assert_eq!(st.icmp6_out_dest_unreachs, 1);
        assert_eq!(
            st.icmp6_out_parm_problems, 2,
            "routing type 0, next header 254"
        );
        v.still_healthy(now);
    }
}

// ---- targeted bad input -------------------------------------------------------

#[test]
fn truncated_and_inconsistent_headers_are_counted() {
    for eth in [false, true] {
        let base = corpus()[0].clone();
        let mut v = victim(eth);
        // Cut inside the fixed header, and cut inside the payload.
        for cut in [0usize, 1, 20, 39, 41, base.len() - 1] {
            let before = v.stats().ip6_in_truncated;
            v.feed_pkt(t0(), &base[..cut]);
            if eth || cut > 0 {
                assert_eq!(v.stats().ip6_in_truncated, before + 1, "cut {cut}");
            }
        }
        // Payload length beyond the data present.
        let mut long = base.clone();
        long[4..6].copy_from_slice(&((base.len() - 40 + 1) as u16).to_be_bytes());
        let before = v.stats().ip6_in_truncated;
        v.feed_pkt(t0(), &long);
        assert_eq!(v.stats().ip6_in_truncated, before + 1);
        // A version other than 6 behind the IPv6 EtherType.
        if eth {
            let mut bad = base.clone();
            bad[0] = 0x40;
            let before = v.stats().ip6_in_hdr_errors;
            v.feed_pkt(t0(), &bad);
            assert_eq!(v.stats().ip6_in_hdr_errors, before + 1);
        }
        assert_eq!(v.stats().ip6_in_delivers, 0);
        assert_eq!(v.stats().udp_in_datagrams, 0);
        v.still_healthy(t0());
    }
}

#[test]
fn extension_header_chains_that_never_end_are_dropped() {
    for eth in [false, true] {
        let mut v = victim(eth);
        let (peer, me) = (v6(2), v6(1));
        // More than MAX_EXT_HEADERS destination-options headers, each naming
        // another: the walk gives up.
        let mut chain = udp6_bytes(s6(2, 1234), s6(1, 9), b"never");
        for i in 0..MAX_EXT_HEADERS + 2 {
            let next = if i == 0 {
                IpProtocol::UDP
            } else {
                IpProtocol::IPV6_OPTS
            };
            chain = opts_header(next, 0, &chain);
        }
        let d = v.stats().ip6_in_hdr_errors;
        v.feed_pkt(t0(), &packet6(peer, me, IpProtocol::IPV6_OPTS, 64, &chain));
        assert_eq!(v.stats().ip6_in_hdr_errors, d + 1, "chain too long");
        // A chain whose last header names another that is not there, and one
        // whose length runs past the payload.
        let dangling = opts_header(IpProtocol::IPV6_OPTS, 0, &[]);
        let mut past = opts_header(IpProtocol::UDP, 0, &[]);
        past[1] = 200;
        for body in [dangling, past] {
            let before = v.stats().clone();
            v.feed_pkt(t0(), &packet6(peer, me, IpProtocol::IPV6_OPTS, 64, &body));
            let st = v.stats();
            let dropped = (st.ip6_in_hdr_errors + st.ip6_in_truncated)
                - (before.ip6_in_hdr_errors + before.ip6_in_truncated);
            assert_eq!(dropped, 1);
        }
        // Hop-by-hop anywhere but first: Parameter Problem, code 1.
        let body = opts_header(IpProtocol::HOPOPT, 0, &opts_header(IpProtocol::UDP, 0, &[]));
        let pp = v.stats().icmp6_out_parm_problems;
        v.feed_pkt(t0(), &packet6(peer, me, IpProtocol::IPV6_OPTS, 64, &body));
        assert_eq!(v.stats().icmp6_out_parm_problems, pp + 1);
        assert_eq!(v.stats().udp_in_datagrams, 0);
        v.still_healthy(t0());
    }
}

/// Many datagrams, each a first fragment that is never completed: memory stays
/// under the cap, partial datagrams and timers stay bounded, evictions are
/// counted, and everything is gone after the reassembly timeout.
fn fragment_flood(v: &mut Victim, idents: u32, size: usize, with_v4: bool) {
    let (peer, me) = (v6(2), v6(1));
    let timers_before = v.s.timer_count();
    let data = vec![0xa5u8; size - size % 8];
    for ident in 0..idents {
        let body = frag6_body(IpProtocol::UDP, ident, 0, true, &data);
        v.feed_pkt(t0(), &packet6(peer, me, IpProtocol::IPV6_FRAG, 64, &body));
        if with_v4 && ident % 4 == 0 {
            // IPv4 fragments share the memory cap.
            let p = build_ip(ip(2), ip(1), IpProtocol::UDP, ident as u16, true, 0, &data);
            let f = if v.eth {
                eth(mac(2), VICTIM_MAC, berth_core::wire::EtherType::Ipv4, &p)
            } else {
                p
            };
            v.feed(t0(), &f);
        }
        assert!(v.s.reassembly_memory() <= REASSEMBLY_MEM);
        // Each partial datagram is charged at least its data.
        assert!(v.s.reassembly_pending() <= REASSEMBLY_MEM / data.len().max(1) + 1);
        assert!(
            v.s.timer_count() <= timers_before + v.s.reassembly_pending() + 8,
            "timers {} for {} partial datagrams",
            v.s.timer_count(),
            v.s.reassembly_pending()
        );
        v.s.check_invariants().unwrap();
    }
    assert_eq!(v.stats().ip6_reasm_reqds, idents as u64);
    assert_eq!(v.stats().ip6_reasm_oks, 0);
    assert_eq!(v.stats().udp_in_datagrams, 0);
}

#[test]
fn fragment_floods_stay_within_the_memory_cap() {
    for eth in [false, true] {
        let mut v = victim(eth);
        fragment_flood(&mut v, 2000, 1200, true);
        let st = v.stats();
        assert!(st.ip6_reasm_mem_evict > 0, "no eviction counted");
        v.still_healthy(t0());
        assert!(v.stats().ip6_reasm_timeout > 0);
        // A whole datagram still reassembles after the flood.
        let mut w = victim(eth);
        fragment_flood(&mut w, 500, 64, false);
        for f in &corpus()[corpus().len() - 3..] {
            w.feed_pkt(t0(), f);
        }
        assert_eq!(w.stats().ip6_reasm_oks, 1);
        w.still_healthy(t0());
    }
}

#[test]
fn ndp_with_a_hop_limit_other_than_255_is_invalid() {
    for eth in [false, true] {
        for hop in [0u8, 1, 64, 254] {
            let mut v = victim(eth);
            let (peer, me) = (v6(2), v6(1));
            let neighbors = v.s.neighbor_entries().len();
            for pkt in [
                ns(peer, me, hop),
                na(peer, me, peer, true, hop),
                ra(ll("fe80::1"), hop),
                redirect(ll("fe80::1"), hop),
                ndp(peer, me, hop, NdpRepr::RouterSolicit { options: &[] }),
            ] {
                v.feed_pkt(t0(), &pkt);
            }
            let st = v.stats();
            assert_eq!(st.ndp_in_invalid, 5, "hop limit {hop}");
            assert_eq!(st.ndp_out_adverts, 0);
            assert_eq!(st.ndp_in_solicits + st.ndp_in_adverts, 0);
            assert_eq!(v.s.neighbor_entries().len(), neighbors);
            v.still_healthy(t0());
        }
    }
}

fn has_default_route6(s: &Stack) -> bool {
    s.routes()
        .any(|r| matches!(r.dest, IpCidr::Ipv6(c) if c.prefix_len() == 0))
}

#[test]
fn router_messages_from_a_global_source_are_invalid() {
    for eth in [false, true] {
        let mut v = victim(eth);
        v.s.set_autoconf(t0(), IfaceId(0)).unwrap();
        drain(&mut v.s, t0());
        let addrs = v.s.addresses(IfaceId(0)).len();
        for src in [v6(2), ll("2001:db8:ffff::1"), Ipv6Addr::UNSPECIFIED] {
            v.feed_pkt(t0(), &ra(src, 255));
            v.feed_pkt(t0(), &redirect(src, 255));
        }
        let st = v.stats();
        assert_eq!(st.ndp_in_invalid, 6);
        assert_eq!(st.ndp_in_router_adverts + st.ndp_in_ignored, 0);
        assert_eq!(st.ndp_slaac_addrs, 0);
        assert_eq!(v.s.addresses(IfaceId(0)).len(), addrs, "a prefix was taken");
        assert!(!has_default_route6(&v.s));
        // From a link-local source the same RA is taken.
        v.feed_pkt(t0(), &ra(ll("fe80::1"), 255));
        assert_eq!(v.stats().ndp_in_router_adverts, 1);
        assert!(has_default_route6(&v.s));
        v.still_healthy(t0());
    }
}

#[test]
fn icmpv6_error_rate_limit_holds_under_a_flood() {
    let (rate, burst) = (100u32, 10u32);
    let mut v = victim_with(false, |c| {
        c.icmp_rate_per_sec = rate;
        c.icmp_burst = burst;
    });
    // 4000 datagrams to a closed port over 2 s, one every 0.5 ms.
    let n = 4000u64;
    let mut sent = 0u64;
    let mut now = t0();
    for i in 0..n {
        now = t0() + Duration::from_micros(i * 500);
        let pkt = udp6_packet(s6(2, 1234), s6(1, 10), b"closed");
        v.s.receive(now, IfaceId(0), &pkt);
        for f in drain(&mut v.s, now) {
            if let Some((_, Icmpv6Repr::DstUnreachable { .. })) = icmp6_of(&f) {
                sent += 1;
            }
        }
    }
    let elapsed = (now - t0()).as_secs_f64();
    let st = v.stats();
    let ceiling = burst as u64 + (rate as f64 * elapsed).ceil() as u64;
    eprintln!(
        "{n} datagrams to a closed port in {elapsed:.3} s: {sent} errors sent, {} rate-limited (ceiling {ceiling})",
        st.icmp6_out_rate_limited
    );
    assert_eq!(st.udp_no_ports, n);
    assert_eq!(st.icmp6_out_dest_unreachs, sent);
    assert!(
        sent <= ceiling,
        "{sent} errors in {elapsed} s, ceiling {ceiling}"
    );
    // The limiter refills: far more than the burst got through.
    assert!(sent >= ceiling * 9 / 10, "{sent} errors, ceiling {ceiling}");
    assert_eq!(st.icmp6_out_rate_limited, n - sent);
    v.still_healthy(now);
}

// ---- random and mutated frames ------------------------------------------------

/// An interesting address for the random packets.
fn addr_strategy() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        Just(v6(1)),
        Just(v6(2)),
        Just(ll("fe80::1")),
        Just(ll("fe80::ff:fe00:1")),
        Just(Ipv6Addr::UNSPECIFIED),
        Just(Ipv6Addr::LOCALHOST),
        Just(ll("ff02::1")),
        Just(solicited_node(&v6(1))),
        Just(ll("::ffff:192.0.2.2")),
        any::<u128>().prop_map(Ipv6Addr::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// An NA for an address the victim never asked about creates no entry; an NS
    /// for a target that is not ours is not answered, whether sent to our
    /// address (as a NUD probe), to our solicited-node group (a target that
    /// shares its low 24 bits) or to the target's group (not joined: an
    /// address error).
    #[test]
    fn unasked_adverts_and_foreign_solicits_are_ignored(
        eth in any::<bool>(),
        host in 3u16..0xffff,
        solicited in any::<bool>(),
    ) {
        let mut v = victim(eth);
        let target = v6(host);
        v.feed_pkt(t0(), &na(v6(2), v6(1), target, solicited, 255));
        prop_assert_eq!(v.stats().ndp_in_unsolicited_ignored, 1);
        prop_assert!(v.s.neighbor_entries().iter().all(|e| e.ip != IpAddr::V6(target)));
        v.feed_pkt(t0(), &ns_to(v6(2), v6(1), target, 255));
        prop_assert_eq!(v.stats().ndp_in_not_for_us, 1);
        let same_group = Ipv6Addr::new(0x2001, 0xdb8, host, 0, 0, 0, 0, 1);
        v.feed_pkt(t0(), &ns(v6(2), same_group, 255));
        prop_assert_eq!(v.stats().ndp_in_not_for_us, 2);
        // A group not joined: dropped by the link's multicast filter on
        // Ethernet, by IPv6 input on an IP link.
        let not_joined = |s: &Stats| s.ip6_in_addr_errors + s.link_in_multicast_filtered;
        let before = not_joined(v.stats());
        v.feed_pkt(t0(), &ns(v6(2), target, 255));
        prop_assert_eq!(not_joined(v.stats()), before + 1);
        prop_assert_eq!(v.stats().ndp_in_solicits, 2);
        prop_assert_eq!(v.stats().ndp_out_adverts, 0);
        v.still_healthy(t0());
    }

    #[test]
    fn arbitrary_bytes_behind_the_ipv6_ethertype_never_panic(
        eth in any::<bool>(),
        inputs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..8),
    ) {
        let mut v = victim(eth);
        for f in &inputs {
            let mut f = f.clone();
            if let Some(b) = f.first_mut() {
                *b = 0x60 | (*b & 0x0f);
            }
            v.feed_pkt(t0(), &f);
        }
        prop_assert_eq!(v.stats().link_in_frames, inputs.len() as u64);
        v.still_healthy(t0());
    }

    #[test]
    fn random_payload_behind_a_valid_ipv6_header_never_panics(
        eth in any::<bool>(),
        src in addr_strategy(),
        dst in addr_strategy(),
        next in prop::sample::select(vec![0u8, 6, 17, 43, 44, 58, 59, 60, 253, 254]),
        hop in prop_oneof![Just(255u8), any::<u8>()],
        payload in prop::collection::vec(any::<u8>(), 0..1500),
        count in 1usize..6,
    ) {
        let mut v = victim(eth);
        for k in 0..count {
            let mut p = payload.clone();
            if let Some(b) = p.get_mut(k) {
                *b = b.wrapping_add(k as u8);
            }
            v.feed_pkt(t0(), &packet6(src, dst, IpProtocol(next), hop, &p));
        }
        // Errors the victim sends to its own address (a source from the wire
        // it holds) come back through loopback; frames for a multicast group
        // it did not join stop at the link's filter.
        let st = v.stats();
        prop_assert!(st.ip6_in_receives + st.link_in_multicast_filtered >= count as u64);
        prop_assert_eq!(v.stats().link_in_frames, count as u64);
        v.still_healthy(t0());
    }

    #[test]
    fn random_extension_header_chains_never_panic(
        eth in any::<bool>(),
        chain in prop::collection::vec(
            (prop::sample::select(vec![0u8, 43, 44, 59, 60, 17, 58, 6]), 0u8..4, any::<u8>()),
            1..12,
        ),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
    ) {
        // Each header: next header, length in 8-byte units, one free byte.
        let mut body = tail;
        let first = chain[0].0;
        for (i, (_, len8, x)) in chain.iter().enumerate().rev() {
            let next = chain.get(i + 1).map(|c| c.0).unwrap_or(17);
            let mut h = vec![0u8; 8 * (*len8 as usize + 1)];
            h[0] = next;
            h[1] = *len8;
            h[2] = *x;
            h.extend_from_slice(&body);
            body = h;
        }
        body.truncate(cut.index(body.len() + 1));
        let mut v = victim(eth);
        v.feed_pkt(t0(), &packet6(v6(2), v6(1), IpProtocol(first), 64, &body));
        prop_assert_eq!(v.stats().ip6_in_receives, 1);
        v.still_healthy(t0());
    }

    #[test]
    fn mutated_valid_ipv6_frames_never_panic(
        eth in any::<bool>(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
        extend in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let corpus = frames(eth);
        let mut v = victim(eth);
        for p in &picks {
            let mut f = p.get(&corpus).clone();
            for (at, x) in &flips {
                let i = at.index(f.len());
                f[i] ^= x;
            }
            if let Some(c) = cut {
                f.truncate(c.index(f.len() + 1));
            }
            f.extend_from_slice(&extend);
            v.feed(t0(), &f);
        }
        v.still_healthy(t0());
    }

    /// A changed address byte in a packet whose transport has a checksum (over
    /// the pseudo-header with both addresses) is dropped in exactly one place:
    /// not ours (link or IP) or a bad checksum.
    #[test]
    fn address_byte_changes_are_dropped_once(
        eth in any::<bool>(),
        pick in 0usize..15,
        pos in 8usize..40,
        x in 1u8..=255,
    ) {
        let mut pkt = corpus()[pick].clone();
        pkt[pos] ^= x;
        let mut v = victim(eth);
        let before = v.stats().clone();
        v.feed_pkt(t0(), &pkt);
        let st = v.stats();
        let drops = |s: &Stats| {
            s.link_in_not_for_us
                + s.link_in_multicast_filtered
                + s.ip6_in_addr_errors
                + s.udp_in_csum_errors
                + s.icmp6_in_csum_errors
                + s.tcp_in_csum_errors
        };
        prop_assert_eq!(drops(st) - drops(&before), 1, "{:?}", changed(&before, st));
        // Nothing reached a socket or was answered.
        prop_assert_eq!(st.udp_in_datagrams + st.icmp6_in_echos, 0);
        prop_assert_eq!(st.tcp_passive_opens + st.tcp_out_segs, 0);
        prop_assert_eq!(st.ndp_in_solicits + st.ndp_in_adverts + st.ndp_in_router_adverts, 0);
        v.still_healthy(t0());
    }
}
