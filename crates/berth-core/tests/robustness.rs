//! Robustness: arbitrary bytes and mutations of valid frames, on both media, never
//! panic; the stack keeps answering pings afterwards; and each class of corruption
//! moves the counter that names it.

mod common;

use berth_core::wire::{
    ArpOperation, DstUnreachable, EtherType, EthernetAddress, Icmpv4Repr, IpProtocol, Ipv4Addr,
    Ipv4Packet, Ipv4Repr, TimeExceeded,
};
use berth_core::{Config, Duration, IfaceConfig, IfaceId, Instant, Medium, Stack, Stats};
use common::*;
use proptest::arbitrary::any;
use proptest::prelude::*;
use std::sync::OnceLock;

const VICTIM_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);

fn medium(eth: bool) -> Medium {
    if eth {
        Medium::Ethernet(VICTIM_MAC)
    } else {
        Medium::Ip
    }
}

/// The stack under test: 192.0.2.1/24 with a few sockets so that inputs reach many
/// code paths (a bound UDP socket, a connected one, raw sockets for ICMP and 253).
fn victim(eth: bool) -> Stack {
    let mut s = Stack::new(Config {
        socket_recv_buffer: 4096,
        reassembly_mem: 64 * 1024,
        ..cfg(42)
    });
    s.add_interface(IfaceConfig {
        medium: medium(eth),
        address: cidr(ip(1), 24),
        mtu: 1500,
    })
    .unwrap();
    let u = s.udp_socket();
    s.udp_bind(u, common::any(9)).unwrap();
    let c = s.udp_socket();
    s.udp_bind(c, common::any(5000)).unwrap();
    s.udp_connect(c, sa(2, 7)).unwrap();
    s.raw_socket(IpProtocol::ICMP).unwrap();
    s.raw_socket(IpProtocol(253)).unwrap();
    s
}

fn frame(eth: bool, ip_pkt: Vec<u8>) -> Vec<u8> {
    if eth {
        common::eth(mac(2), VICTIM_MAC, EtherType::Ipv4, &ip_pkt)
    } else {
        ip_pkt
    }
}

/// Valid IPv4 packets from 192.0.2.2 to the victim, of many kinds.
fn ip_corpus() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let icmp = |id, r: &Icmpv4Repr| {
            build_ip(ip(2), ip(1), IpProtocol::ICMP, id, false, 0, &icmp_bytes(r))
        };
        let quoted = build_udp(sa(1, 5000), sa(2, 7), 9, b"quoted");
        let qh = Ipv4Repr::parse(&Ipv4Packet::new_checked(&quoted[..]).unwrap()).unwrap();
        let mut v = vec![
            build_udp(sa(2, 1234), sa(1, 9), 1, b"hello corpus"),
            build_udp(sa(2, 1234), sa(1, 10), 2, b"closed port"),
            build_udp(sa(2, 7), sa(1, 5000), 3, b"from the connected peer"),
            build_udp(sa(2, 1234), sa(255, 9), 4, b"broadcast"),
            icmp(
                5,
                &Icmpv4Repr::EchoRequest {
                    ident: 1,
                    seq_no: 2,
                    data: b"ping data",
                },
            ),
            icmp(
                6,
                &Icmpv4Repr::EchoReply {
                    ident: 1,
                    seq_no: 2,
                    data: b"pong data",
                },
            ),
            icmp(
                7,
                &Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::PortUnreachable,
                    header: qh,
                    data: &quoted[20..28],
                },
            ),
            icmp(
                8,
                &Icmpv4Repr::TimeExceeded {
                    reason: TimeExceeded::FragReassemblyExpired,
                    header: qh,
                    data: &quoted[20..28],
                },
            ),
            build_ip(ip(2), ip(1), IpProtocol(253), 10, false, 0, b"experimental"),
            build_ip(ip(2), ip(1), IpProtocol(254), 11, false, 0, b"unknown"),
            build_ip(ip(2), ip(1), IpProtocol::TCP, 12, false, 0, &[0u8; 20]),
        ];
        // A 3000-byte UDP datagram in three fragments.
        let big = build_udp(sa(2, 1234), sa(1, 9), 13, &[0x5a; 3000]);
        let payload = &big[20..];
        for (i, off) in [0usize, 1480, 2960].into_iter().enumerate() {
            let end = payload.len().min(off + 1480);
            v.push(build_ip(
                ip(2),
                ip(1),
                IpProtocol::UDP,
                13,
                i < 2,
                off as u16,
                &payload[off..end],
            ));
        }
        v
    })
}

/// Every corpus frame for a medium, ARP included on Ethernet.
fn frames(eth: bool) -> Vec<Vec<u8>> {
    let mut v: Vec<_> = ip_corpus().iter().map(|p| frame(eth, p.clone())).collect();
    if eth {
        v.push(arp_frame(
            ArpOperation::Request,
            mac(2),
            ip(2),
            EthernetAddress([0; 6]),
            ip(1),
            EthernetAddress::BROADCAST,
        ));
        v.push(arp_frame(
            ArpOperation::Reply,
            mac(2),
            ip(2),
            VICTIM_MAC,
            ip(1),
            VICTIM_MAC,
        ));
    }
    v
}

fn feed(s: &mut Stack, now: Instant, f: &[u8]) {
    s.receive(now, IfaceId(0), f);
    drain(s, now);
}

/// After arbitrary input: let every timer run, check memory is released and the
/// stack answers a ping.
fn still_healthy(s: &mut Stack, eth: bool, now: Instant) {
    let later = now + Duration::from_secs(120);
    run_timers(s, now, later);
    assert_eq!(
        s.reassembly_memory(),
        0,
        "partial datagrams left after timeouts"
    );
    assert_eq!(s.reassembly_pending(), 0);
    assert!(
        answers_ping(s, later, medium(eth), ip(1), ip(2), mac(2), 77),
        "stack stopped answering pings"
    );
}

fn changed(before: &Stats, after: &Stats) -> Vec<(&'static str, u64)> {
    before
        .iter()
        .zip(after.iter())
        .filter(|(b, a)| a.2 != b.2)
        .map(|(b, a)| (a.0, a.2 - b.2))
        .collect()
}

#[test]
fn the_corpus_itself_is_valid_and_handled() {
    for eth in [false, true] {
        let mut s = victim(eth);
        let now = t0();
        for f in frames(eth) {
            feed(&mut s, now, &f);
        }
        let st = s.stats();
        assert_eq!(
            st.ip_in_bad_checksum + st.ip_in_truncated + st.ip_in_bad_length,
            0
        );
        assert_eq!(
            st.udp_in_csum_errors + st.udp_in_errors + st.icmp_in_errors,
            0
        );
        assert_eq!(
            st.udp_in_datagrams, 4,
            "hello, connected peer, broadcast, reassembled"
        );
        assert_eq!(st.ip_reasm_oks, 1);
        assert_eq!(st.icmp_in_echos, 1);
        assert_eq!(st.icmp_in_echo_reps, 1);
        assert_eq!(st.icmp_in_dest_unreachs, 1);
        assert_eq!(st.icmp_in_time_excds, 1);
        assert_eq!(st.ip_in_unknown_protos, 1, "254 (253 has a raw socket)");
        assert_eq!(st.tcp_in_segs, 1);
        assert_eq!(st.udp_no_ports, 1);
        if eth {
            assert_eq!(st.arp_in, 2);
            assert_eq!(st.arp_in_malformed, 0);
        }
        still_healthy(&mut s, eth, now);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Integration tests have no lib.rs to persist next to; failures print the seed.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(
        eth in any::<bool>(),
        inputs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..8),
    ) {
        let mut s = victim(eth);
        let now = t0();
        for f in &inputs {
            feed(&mut s, now, f);
        }
        prop_assert_eq!(s.stats().link_in_frames, inputs.len() as u64);
        still_healthy(&mut s, eth, now);
    }

    #[test]
    fn arbitrary_payload_behind_a_valid_ip_header_never_panics(
        eth in any::<bool>(),
        proto in prop::sample::select(vec![1u8, 6, 17, 253, 254]),
        more_frags in any::<bool>(),
        offset_units in prop_oneof![Just(0u16), 0u16..8192],
        ident in 0u16..4,
        dst_bcast in any::<bool>(),
        payload in prop::collection::vec(any::<u8>(), 0..1480),
        count in 1usize..6,
    ) {
        let mut s = victim(eth);
        let now = t0();
        let dst = if dst_bcast { ip(255) } else { ip(1) };
        for k in 0..count {
            let off = offset_units.wrapping_add(k as u16 * 7) & 0x1fff;
            let pkt = build_ip(ip(2), dst, IpProtocol(proto), ident, more_frags, off << 3, &payload);
            feed(&mut s, now, &frame(eth, pkt));
        }
        prop_assert_eq!(s.stats().ip_in_bad_checksum, 0);
        still_healthy(&mut s, eth, now);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        eth in any::<bool>(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
        extend in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let corpus = frames(eth);
        let mut s = victim(eth);
        let now = t0();
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
            feed(&mut s, now, &f);
        }
        still_healthy(&mut s, eth, now);
    }

    #[test]
    fn ip_header_byte_flip_is_a_bad_checksum(
        eth in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        pos in prop::sample::select(vec![1usize, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]),
        x in 1u8..=255,
    ) {
        let mut pkt = pick.get(ip_corpus()).clone();
        pkt[pos] ^= x;
        let mut s = victim(eth);
        let before = s.stats().clone();
        feed(&mut s, t0(), &frame(eth, pkt));
        let d = changed(&before, s.stats());
        prop_assert_eq!(
            d,
            vec![("link_in_frames", 1), ("ip_in_receives", 1), ("ip_in_bad_checksum", 1)]
        );
        still_healthy(&mut s, eth, t0());
    }

    #[test]
    fn ip_version_other_than_4_is_counted(
        eth in any::<bool>(),
        v in (0u8..15).prop_map(|v| if v >= 4 { v + 1 } else { v }),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut pkt = pick.get(ip_corpus()).clone();
        pkt[0] = (v << 4) | 5;
        Ipv4Packet::new_unchecked(&mut pkt[..]).fill_checksum();
        let mut s = victim(eth);
        feed(&mut s, t0(), &frame(eth, pkt));
        if v == 6 && !eth {
            // On an IP link the version picks the input: IPv6 refuses it.
            prop_assert_eq!(s.stats().ip6_in_receives, 1);
            prop_assert_eq!(s.stats().ip6_in_delivers, 0);
        } else {
            prop_assert_eq!(s.stats().ip_in_bad_version, 1);
        }
        prop_assert_eq!(s.stats().ip_in_delivers, 0);
    }

    #[test]
    fn ip_length_corruptions_are_counted(
        eth in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        mode in 0u8..3,
        n in any::<prop::sample::Index>(),
    ) {
        let mut pkt = pick.get(ip_corpus()).clone();
        let len = pkt.len();
        let mut s = victim(eth);
        match mode {
            0 => {
                // Truncated below the total length (link-level cut).
                pkt.truncate(n.index(len));
                feed(&mut s, t0(), &frame(eth, pkt));
                prop_assert_eq!(s.stats().ip_in_truncated, 1);
            }
            1 => {
                // Total length below the header length.
                let tl = n.index(20) as u16;
                pkt[2..4].copy_from_slice(&tl.to_be_bytes());
                feed(&mut s, t0(), &frame(eth, pkt));
                prop_assert_eq!(s.stats().ip_in_bad_length, 1);
            }
            _ => {
                // Total length beyond the data present (checksum fixed up).
                let tl = (len + 1 + n.index(100)) as u16;
                pkt[2..4].copy_from_slice(&tl.to_be_bytes());
                Ipv4Packet::new_unchecked(&mut pkt[..]).fill_checksum();
                feed(&mut s, t0(), &frame(eth, pkt));
                prop_assert_eq!(s.stats().ip_in_truncated, 1);
            }
        }
        prop_assert_eq!(s.stats().ip_in_delivers, 0);
        still_healthy(&mut s, eth, t0());
    }

    #[test]
    fn udp_corruptions_are_counted(
        eth in any::<bool>(),
        pos in 8usize..20,
        x in 1u8..=255,
        bad_len in prop_oneof![0u16..8, 21u16..2000],
    ) {
        // "hello corpus" to port 9: 8-byte header + 12 bytes.
        let base = ip_corpus()[0].clone();
        let mut s = victim(eth);
        let mut flipped = base.clone();
        flipped[20 + pos] ^= x;
        feed(&mut s, t0(), &frame(eth, flipped));
        prop_assert_eq!(s.stats().udp_in_csum_errors, 1);
        let mut lenbad = base.clone();
        lenbad[24..26].copy_from_slice(&bad_len.to_be_bytes());
        feed(&mut s, t0(), &frame(eth, lenbad));
        prop_assert_eq!(s.stats().udp_in_errors, 1);
        prop_assert_eq!(s.stats().udp_in_datagrams, 0);
        prop_assert_eq!(s.stats().ip_in_bad_checksum, 0);
        still_healthy(&mut s, eth, t0());
    }

    #[test]
    fn icmp_byte_flip_is_an_icmp_error(eth in any::<bool>(), pos in 0usize..17, x in 1u8..=255) {
        // The echo request: 8-byte header + "ping data".
        let mut pkt = ip_corpus()[4].clone();
        pkt[20 + pos] ^= x;
        let mut s = victim(eth);
        feed(&mut s, t0(), &frame(eth, pkt));
        let st = s.stats();
        prop_assert_eq!(st.icmp_in_msgs, 1);
        prop_assert_eq!(st.icmp_in_errors + st.icmp_in_unsupported, 1);
        prop_assert_eq!(st.icmp_out_echo_reps, 0);
        still_healthy(&mut s, eth, t0());
    }

    #[test]
    fn ethernet_header_corruptions_are_counted(
        cut in 0usize..14,
        dst_flip in 1u8..=255,
        ethertype in any::<u16>(),
    ) {
        prop_assume!(ethertype != 0x0800 && ethertype != 0x0806);
        let f = frame(true, ip_corpus()[0].clone());
        let mut s = victim(true);
        feed(&mut s, t0(), &f[..cut]);
        prop_assert_eq!(s.stats().link_in_truncated, 1);
        let mut g = f.clone();
        g[5] ^= dst_flip;
        feed(&mut s, t0(), &g);
        // A flipped last byte of our unicast MAC is someone else's MAC.
        prop_assert_eq!(s.stats().link_in_not_for_us, 1);
        let mut h = f.clone();
        h[12..14].copy_from_slice(&ethertype.to_be_bytes());
        feed(&mut s, t0(), &h);
        prop_assert_eq!(s.stats().link_in_unknown_ethertype, 1);
        prop_assert_eq!(s.stats().ip_in_receives, 0);
        // ARP cut short is malformed.
        let arp = frames(true).last().unwrap().clone();
        feed(&mut s, t0(), &arp[..14 + cut.min(27)]);
        prop_assert_eq!(s.stats().arp_in_malformed, 1);
        still_healthy(&mut s, true, t0());
    }
}

#[test]
fn martian_loopback_addresses_from_the_wire_are_dropped() {
    // 127.0.0.0/8 must never appear outside a host (RFC 1122 §3.2.1.3): a service
    // bound to 127.0.0.1 must not be reachable from the network.
    for eth in [false, true] {
        let mut s = victim(eth);
        let lo = s.udp_socket();
        s.udp_bind(lo, sa4(Ipv4Addr::LOCALHOST, 631)).unwrap();
        let to_lo = build_udp(sa(2, 1), sa4(Ipv4Addr::LOCALHOST, 631), 1, b"x");
        let from_lo = build_udp(sa4(Ipv4Addr::LOCALHOST, 631), sa(1, 9), 2, b"y");
        feed(&mut s, t0(), &frame(eth, to_lo));
        feed(&mut s, t0(), &frame(eth, from_lo));
        let mut buf = [0u8; 8];
        assert!(
            s.udp_recv(lo, &mut buf).is_err(),
            "loopback service reached from the wire"
        );
        assert_eq!(s.stats().ip_in_addr_errors, 2);
        assert_eq!(s.stats().udp_in_datagrams, 0);
        // Locally, loopback still works.
        let c = s.udp_socket();
        s.udp_send_to(t0(), c, b"ok", sa4(Ipv4Addr::LOCALHOST, 631))
            .unwrap();
        assert_eq!(s.udp_recv(lo, &mut buf).unwrap(), 2);
    }
}

#[test]
fn ipv6_from_a_tun_goes_to_ipv6_input() {
    // A router solicitation as Linux sends it on a new TUN, to all routers
    // (ff02::2), which a host does not join: IPv6 input drops it, and IPv4's
    // counters (whose header length it would read as 0) stay clean.
    let mut rs = vec![0u8; 48];
    rs[0] = 0x60;
    rs[4..6].copy_from_slice(&8u16.to_be_bytes());
    rs[6] = 58; // ICMPv6
    rs[7] = 255;
    rs[24] = 0xff;
    rs[25] = 0x02;
    rs[39] = 2;
    rs[40] = 133; // Router Solicitation
    let mut s = victim(false);
    feed(&mut s, t0(), &rs);
    assert_eq!(s.stats().ip6_in_receives, 1);
    assert_eq!(s.stats().ip6_in_addr_errors, 1);
    assert_eq!(s.stats().ip_in_bad_version, 0);
    assert_eq!(s.stats().ip_in_bad_length, 0);
}
