//! Path MTU discovery end to end: a router in the path (emulated by the tap)
//! with a smaller next hop answers fragmentation needed (RFC 1191) or Packet
//! Too Big (RFC 8201); TCP adapts its MSS and resends, forged reports are
//! ignored and counted (RFC 5927 §5.2), tiny MTUs are clamped, the cache
//! expires and stays bounded. Addresses from 192.0.2.0/24, 198.51.100.0/24
//! and 2001:db8::/32 only.

mod common;

use berth_core::wire::ipv6::HEADER_LEN;
use berth_core::wire::{
    DstUnreachable, Icmpv4Repr, Icmpv6Repr, IpProtocol, Ipv4Addr, Ipv6Addr, Ipv6Cidr, Ipv6Packet,
    Ipv6Repr,
};
use berth_core::{Duration, IfaceId, SocketHandle, Stack};
use common::*;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

const ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

fn v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)
}

fn s6(n: u16, port: u16) -> SocketAddr {
    SocketAddr::new(v6(n).into(), port)
}

/// A 1500-byte IP link, IPv6 addresses 2001:db8::1 and ::2 beside IPv4's.
fn pair() -> Net {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    for i in 0..2 {
        let now = net.now;
        let c = Ipv6Cidr::new(v6(i as u16 + 1), 64).unwrap();
        net.nodes[i].add_address(now, IfaceId(0), c).unwrap();
    }
    net.settle();
    net
}

/// Fragmentation needed from the router about `pkt` (an IPv4 packet we
/// sent), quoting its header and the first 8 bytes of its payload (RFC 792).
fn frag_needed(pkt: &[u8], mtu: u16) -> Vec<u8> {
    let (header, payload) = parse_ip(pkt).unwrap();
    let msg = Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired { next_hop_mtu: mtu },
        header,
        data: &payload[..payload.len().min(8)],
    };
    build_ip(
        ROUTER4,
        header.src_addr,
        IpProtocol::ICMP,
        7,
        false,
        0,
        &icmp_bytes(&msg),
    )
}

/// Packet Too Big from 2001:db8::fe about `pkt` (an IPv6 packet we sent).
fn packet_too_big(pkt: &[u8], mtu: u32) -> Vec<u8> {
    let header = Ipv6Repr::parse(&Ipv6Packet::new_checked(pkt).unwrap()).unwrap();
    let msg = Icmpv6Repr::PacketTooBig {
        mtu,
        header,
        data: &pkt[HEADER_LEN..],
    };
    let (src, dst) = (v6(0xfe), header.src_addr);
    let mut body = vec![0u8; msg.buffer_len()];
    msg.emit(&mut body, &src, &dst);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::ICMPV6,
        payload_len: body.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut b = vec![0u8; ip.buffer_len()];
    ip.emit(&mut b);
    b[HEADER_LEN..].copy_from_slice(&body);
    b
}

/// A router with a `next_hop` MTU between node 0 and node 1: it drops what
/// node 0 sends that does not fit (with DF, for IPv4) and answers with `icmp`.
/// Returns the count of its answers and the largest packet it passed.
fn router(
    net: &mut Net,
    next_hop: usize,
    icmp: fn(&[u8], usize) -> Option<Vec<u8>>,
) -> (Rc<Cell<u32>>, Rc<Cell<usize>>) {
    let (sent, largest) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (s, l) = (sent.clone(), largest.clone());
    net.set_tap(move |f| {
        if f.node != 0 {
            return Action::Deliver;
        }
        if f.bytes.len() > next_hop {
            if let Some(reply) = icmp(&f.bytes, next_hop) {
                s.set(s.get() + 1);
                return Action::Reply(reply);
            }
        }
        l.set(l.get().max(f.bytes.len()));
        Action::Deliver
    });
    (sent, largest)
}

fn v4_router(pkt: &[u8], mtu: usize) -> Option<Vec<u8>> {
    let (header, _) = parse_ip(pkt)?;
    // Without DF the router would fragment: this one has no need to.
    header.dont_frag.then(|| frag_needed(pkt, mtu as u16))
}

fn v6_router(pkt: &[u8], mtu: usize) -> Option<Vec<u8>> {
    (pkt.first()? >> 4 == 6).then(|| packet_too_big(pkt, mtu as u32))
}

/// Node 1 listens on port 80 of `to`'s family; node 0 connects to `to`.
/// Returns (client, server) sockets.
fn open(net: &mut Net, to: SocketAddr) -> (SocketHandle, SocketHandle) {
    let l = net.nodes[1].tcp_socket();
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => "0.0.0.0:80".parse().unwrap(),
        SocketAddr::V6(_) => "[::]:80".parse().unwrap(),
    };
    net.nodes[1].tcp_bind(l, any).unwrap();
    net.nodes[1].tcp_listen(l, 4).unwrap();
    let c = net.connect(0, to);
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    (c, s)
}

/// 10 MB from node 0 to `to` through a router with a `hop`-byte next hop:
/// the transfer completes byte-exact and the send MSS goes from `mss` to
/// `new_mss`, resent at once (no timeout). Returns the router's ICMP count.
fn adapts(
    to: SocketAddr,
    hop: usize,
    icmp: fn(&[u8], usize) -> Option<Vec<u8>>,
    (mss, new_mss): (usize, usize),
) -> (Net, u32) {
    let mut net = pair();
    let (icmps, largest) = router(&mut net, hop, icmp);
    let (c, s) = open(&mut net, to);
    let before = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!((before.pmtu, before.snd_mss), (1500, mss));
    let data = pattern(10 << 20, 3);
    let got = net.transfer((0, c), (1, s), &data, Duration::from_secs(600));
    assert!(
        got == data,
        "{} of {} bytes arrived, or differ",
        got.len(),
        data.len()
    );
    let after = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!((after.pmtu, after.snd_mss), (hop, new_mss));
    assert_eq!(largest.get(), hop, "full-sized segments after the drop");
    assert_eq!(net.nodes[0].path_mtu(to.ip()), Some(hop));
    let st = net.nodes[0].stats();
    eprintln!(
        "{to}: {} ICMP from the router, {} segments retransmitted, {} sent",
        icmps.get(),
        st.tcp_retrans_segs,
        st.tcp_out_segs
    );
    // The initial window's segments bounce; one lowers the path MTU.
    assert!((1..=20).contains(&icmps.get()), "{}", icmps.get());
    assert_eq!((st.pmtu_lowered, st.tcp_mss_reduced), (1, 1));
    assert_eq!(st.tcp_rto_events, 0, "resent at once, not on a timeout");
    net.nodes[0].check_invariants().unwrap();
    let n = icmps.get();
    (net, n)
}

#[test]
fn ipv4_transfer_adapts_to_a_576_byte_hop() {
    // MSS 536 (576 − 40), less 12 for timestamps, as tcpi_snd_mss counts.
    let (net, icmps) = adapts(sa(2, 80), 576, v4_router, (1448, 524));
    assert_eq!(net.nodes[0].stats().icmp_in_frag_needed, icmps as u64);
}

#[test]
fn ipv6_transfer_adapts_to_a_1280_byte_hop() {
    // 1280 − 60 = 1220, less 12 for timestamps.
    let (net, icmps) = adapts(s6(2, 80), 1280, v6_router, (1428, 1208));
    assert_eq!(net.nodes[0].stats().icmp6_in_pkt_too_bigs, icmps as u64);
}

/// A connection from node 0 to node 1 (`to`) with `n` bytes sent and held
/// in flight (node 0's frames captured): (net, client, first data packet).
fn in_flight(to: SocketAddr, n: usize) -> (Net, SocketHandle, Vec<u8>) {
    let mut net = pair();
    let (c, _) = open(&mut net, to);
    net.set_tap(|f| {
        if f.node == 0 {
            Action::Capture
        } else {
            Action::Deliver
        }
    });
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &pattern(n, 1)).unwrap();
    net.settle();
    let first = net.captured[0].bytes.clone();
    (net, c, first)
}

/// Rewrite the sequence number of the TCP segment in `pkt` (the quote is
/// all the router sends back, so no checksum matters).
fn with_seq(mut pkt: Vec<u8>, delta: u32) -> Vec<u8> {
    let off = if pkt[0] >> 4 == 6 { HEADER_LEN } else { 20 };
    let s = u32::from_be_bytes(pkt[off + 4..off + 8].try_into().unwrap());
    pkt[off + 4..off + 8].copy_from_slice(&s.wrapping_add(delta).to_be_bytes());
    pkt
}

#[test]
fn forged_reports_out_of_window_are_ignored_and_tiny_mtus_clamped() {
    // IPv4.
    let (mut net, c, first) = in_flight(sa(2, 80), 4000);
    for delta in [100_000u32, 0u32.wrapping_sub(70_000)] {
        net.inject(
            0,
            IfaceId(0),
            &frag_needed(&with_seq(first.clone(), delta), 576),
        );
    }
    let st = net.nodes[0].stats().clone();
    assert_eq!(
        (st.tcp_pmtu_out_of_window, st.tcp_icmp_out_of_window),
        (2, 2)
    );
    assert_eq!(st.pmtu_lowered, 0);
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), None);
    assert_eq!(net.nodes[0].tcp_info(c).unwrap().snd_mss, 1448);
    // In the window, with an MTU below IPv4's 552: clamped to it, and what
    // was in flight goes again at once in segments that fit.
    let sent = net.captured.len();
    net.inject(0, IfaceId(0), &frag_needed(&first, 200));
    net.pump();
    let st = net.nodes[0].stats().clone();
    assert_eq!(
        (st.pmtu_clamped, st.pmtu_lowered, st.tcp_mss_reduced),
        (1, 1, 1)
    );
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), Some(552));
    let info = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!((info.pmtu, info.snd_mss), (552, 552 - 40 - 12));
    let resent: Vec<_> = net.captured[sent..].iter().map(|f| f.bytes.len()).collect();
    assert!(
        !resent.is_empty() && resent.iter().all(|&l| l <= 552),
        "{resent:?}"
    );
    assert_eq!(st.tcp_rto_events, 0);
    // A report of a larger MTU changes nothing.
    net.inject(0, IfaceId(0), &frag_needed(&first, 1000));
    assert_eq!(net.nodes[0].stats().pmtu_ignored, 1);
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), Some(552));
    net.nodes[0].check_invariants().unwrap();

    // IPv6: the same, with 1280 as the floor.
    let (mut net, c, first) = in_flight(s6(2, 80), 4000);
    net.inject(
        0,
        IfaceId(0),
        &packet_too_big(&with_seq(first.clone(), 1 << 30), 1280),
    );
    assert_eq!(net.nodes[0].stats().tcp_pmtu_out_of_window, 1);
    assert_eq!(net.nodes[0].path_mtu(v6(2).into()), None);
    net.inject(0, IfaceId(0), &packet_too_big(&first, 600));
    net.pump();
    let st = net.nodes[0].stats().clone();
    assert_eq!((st.pmtu_clamped, st.tcp_mss_reduced), (1, 1));
    assert_eq!(net.nodes[0].path_mtu(v6(2).into()), Some(1280));
    let info = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!((info.pmtu, info.snd_mss), (1280, 1280 - 60 - 12));
    // A report about no connection is counted and changes nothing.
    let mut other = first.clone();
    other[HEADER_LEN + 2] ^= 0x55; // another destination port
    net.inject(0, IfaceId(0), &packet_too_big(&other, 1300));
    assert_eq!(net.nodes[0].stats().tcp_pmtu_no_socket, 1);
    net.nodes[0].check_invariants().unwrap();
}

#[test]
fn a_report_without_the_next_hop_mtu_gets_the_plateau_below() {
    // RFC 1191 §5 / §7: an old router's code 4 with MTU 0, about a 1500-byte
    // packet, means the 1492 plateau.
    let (mut net, c, first) = in_flight(sa(2, 80), 3000);
    assert_eq!(first.len(), 1500);
    net.inject(0, IfaceId(0), &frag_needed(&first, 0));
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), Some(1492));
    assert_eq!(net.nodes[0].tcp_info(c).unwrap().snd_mss, 1492 - 40 - 12);
}

#[test]
fn the_cache_expires_after_ten_minutes_and_new_connections_grow_again() {
    let (mut net, c, first) = in_flight(sa(2, 80), 3000);
    net.inject(0, IfaceId(0), &frag_needed(&first, 576));
    net.clear_tap();
    net.advance(Duration::from_secs(1));
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), Some(576));
    // A connection opened now offers and uses the path MTU's MSS.
    let c2 = net.connect(0, sa(2, 80));
    net.settle();
    assert_eq!(net.nodes[0].tcp_info(c2).unwrap().snd_mss, 524);
    net.advance(Duration::from_secs(598));
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), Some(576));
    net.advance(Duration::from_secs(2));
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), None);
    let st = net.nodes[0].stats();
    assert_eq!((st.pmtu_expired, net.nodes[0].path_mtu_entries()), (1, 0));
    // The old connection keeps its MSS (no probing, RFC 8201 §4 allows it);
    // a new one uses the whole interface MTU again.
    assert_eq!(net.nodes[0].tcp_info(c).unwrap().snd_mss, 524);
    let c3 = net.connect(0, sa(2, 80));
    net.settle();
    let info = net.nodes[0].tcp_info(c3).unwrap();
    assert_eq!((info.pmtu, info.snd_mss), (1500, 1448));
    net.nodes[0].check_invariants().unwrap();
}

#[test]
fn udp_over_a_smaller_path_is_fragmented_locally_without_df() {
    let mut net = pair();
    let (icmps, _) = router(&mut net, 576, v4_router);
    let (a, b) = (net.nodes[0].udp_socket(), net.nodes[1].udp_socket());
    net.nodes[0].udp_bind(a, sa(1, 5000)).unwrap();
    net.nodes[1].udp_bind(b, sa(2, 7)).unwrap();
    let big = pattern(1000, 9);
    let mut buf = vec![0u8; 2000];
    // The first goes with DF (it fits the interface), is dropped by the
    // router and teaches the path MTU (RFC 1191 for UDP, as Linux).
    let now = net.now;
    net.nodes[0].udp_send_to(now, a, &big, sa(2, 7)).unwrap();
    net.settle();
    assert_eq!(icmps.get(), 1);
    assert_eq!(net.nodes[0].path_mtu(ip(2).into()), Some(576));
    assert!(net.nodes[1].udp_recv_from(b, &mut buf).is_err());
    // Then: cut to 576 without DF (IP_PMTUDISC_WANT); small ones keep DF.
    let from = net.log.len();
    let now = net.now;
    net.nodes[0].udp_send_to(now, a, &big, sa(2, 7)).unwrap();
    net.nodes[0]
        .udp_send_to(now, a, b"small", sa(2, 7))
        .unwrap();
    net.settle();
    let pkts: Vec<_> = net
        .frames_since(from)
        .iter()
        .filter(|f| f.node == 0)
        .collect();
    let lens: Vec<_> = pkts.iter().map(|f| f.bytes.len()).collect();
    assert_eq!(lens.len(), 3, "{lens:?}");
    assert!(lens.iter().all(|&l| l <= 576), "{lens:?}");
    let df: Vec<_> = pkts
        .iter()
        .map(|f| parse_ip(&f.bytes).unwrap().0.dont_frag)
        .collect();
    assert_eq!(df, [false, false, true]);
    let (n, _) = net.nodes[1].udp_recv_from(b, &mut buf).unwrap();
    assert_eq!(&buf[..n], &big[..]);
    assert_eq!(icmps.get(), 1);
}

/// A UDP/IPv6 packet from node 0 to `dst` as a Packet Too Big would quote it.
fn udp6_quote(dst: Ipv6Addr) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: v6(1),
        dst_addr: dst,
        next_header: IpProtocol::UDP,
        payload_len: 1452,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut b = vec![0u8; ip.buffer_len()];
    ip.emit(&mut b);
    b[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&[0x13, 0x88, 0, 7]);
    b
}

#[test]
fn the_cache_stays_bounded_under_a_flood_for_random_destinations() {
    let mut net = pair();
    let s: &mut Stack = &mut net.nodes[0];
    let timers = s.timer_count();
    let now = net.now;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let frame = if i % 2 == 0 {
            let w = |k: u32| (x >> k) as u16 | 0x100;
            let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, w(48), w(32), w(16), w(0));
            packet_too_big(&udp6_quote(dst), 1280 + (x % 200) as u32)
        } else {
            let dst = Ipv4Addr::new(198, 51, 100, x as u8);
            let dst = if x & 0x100 == 0 {
                dst
            } else {
                Ipv4Addr::from(x as u32)
            };
            let quote = build_udp(sa(1, 5000), SocketAddr::new(dst.into(), 7), 1, &[0; 1400]);
            frag_needed(&quote, 600 + (x % 800) as u16)
        };
        s.receive(now, IfaceId(0), &frame);
        assert!(s.path_mtu_entries() <= 1024);
    }
    let st = s.stats();
    eprintln!(
        "flood: {} lowered, {} evicted, {} entries, timers {} -> {}",
        st.pmtu_lowered,
        st.pmtu_evicted,
        s.path_mtu_entries(),
        timers,
        s.timer_count()
    );
    assert_eq!(s.path_mtu_entries(), 1024);
    // Lowering a known destination again evicts nothing.
    assert!(st.pmtu_lowered >= st.pmtu_evicted + 1024);
    assert!(st.pmtu_evicted > 15_000, "{}", st.pmtu_evicted);
    assert!(s.timer_count() <= timers + 1, "{} timers", s.timer_count());
    s.check_invariants().unwrap();
    // All expire together ten minutes later.
    let later = now + Duration::from_secs(601);
    s.handle_timeout(later);
    assert_eq!(s.path_mtu_entries(), 0);
    assert_eq!(s.stats().pmtu_expired, 1024);
}

#[test]
fn a_lossy_path_that_shrinks_midway_still_delivers_everything() {
    // The path MTU drops while the connection is in full flight, with loss
    // recovery under way: every 50th packet is lost besides the oversized ones.
    for to in [sa(2, 80), s6(2, 80)] {
        let mut net = pair();
        let (c, s) = open(&mut net, to);
        let hop = if to.is_ipv4() { 576 } else { 1280 };
        let (count, icmps) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u32)));
        let (n, k) = (count.clone(), icmps.clone());
        net.set_tap(move |f| {
            if f.node != 0 {
                return Action::Deliver;
            }
            n.set(n.get() + 1);
            // Shrink after 2000 packets.
            if n.get() > 2000 && f.bytes.len() > hop {
                let reply = if to.is_ipv4() {
                    v4_router(&f.bytes, hop)
                } else {
                    v6_router(&f.bytes, hop)
                };
                if let Some(r) = reply {
                    k.set(k.get() + 1);
                    return Action::Reply(r);
                }
            }
            if n.get() % 50 == 0 {
                return Action::Drop;
            }
            Action::Deliver
        });
        let data = pattern(4 << 20, 5);
        let got = net.transfer((0, c), (1, s), &data, Duration::from_secs(600));
        assert!(got == data, "{to}: {} of {} bytes", got.len(), data.len());
        let info = net.nodes[0].tcp_info(c).unwrap();
        assert_eq!(info.pmtu, hop);
        let st = net.nodes[0].stats();
        eprintln!(
            "{to}: {} ICMP, {} retransmitted, {} RTOs, {} recoveries",
            icmps.get(),
            st.tcp_retrans_segs,
            st.tcp_rto_events,
            info.recoveries
        );
        assert_eq!(st.tcp_mss_reduced, 1);
        net.nodes[0].check_invariants().unwrap();
    }
}
