//! ARP end to end: retries and give-up, the pending-packet queue bound, expiry and
//! re-resolution, routing via a default gateway, cache merge and bounds.

mod common;

use berth_core::wire::{ArpOperation, EtherType, EthernetAddress, Ipv4Addr};
use berth_core::{Config, Duration, IfaceId, NeighborState};
use common::*;
use std::net::IpAddr;

#[test]
fn unresolvable_neighbour_retries_then_gives_up_and_drops_queue() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let start = net.now;
    let c = net.nodes[0].udp_socket();
    for i in 0..3u8 {
        net.nodes[0]
            .udp_send_to(net.now, c, &[i], sa(9, 9))
            .unwrap();
    }
    assert_eq!(net.nodes[0].neighbors(), vec![(IfaceId(0), ip(9), None)]);
    net.advance(Duration::from_secs(10));

    let retries = Config::default().arp_retries as u64;
    let a = net.nodes[0].stats();
    assert_eq!(
        a.arp_requests_sent,
        1 + retries,
        "first request plus each retry"
    );
    assert_eq!(a.arp_resolve_failed, 1);
    assert_eq!(a.arp_queue_dropped, 3);
    assert_eq!(a.udp_out_datagrams, 3);
    assert!(net.nodes[0].neighbors().is_empty());

    // One request per retry interval (1 s), all broadcast, all for 192.0.2.9.
    let reqs: Vec<_> = net.log.iter().filter(|f| f.node == 0).collect();
    assert_eq!(reqs.len() as u64, 1 + retries);
    for (i, f) in reqs.iter().enumerate() {
        let a = arp_of(&f.bytes).unwrap();
        assert_eq!(a.operation, ArpOperation::Request);
        assert_eq!(a.target_protocol_addr, ip(9));
        assert_eq!(eth_dst(&f.bytes), EthernetAddress::BROADCAST);
        assert_eq!(f.at, start + Duration::from_secs(i as u64));
    }
    // Node 2 saw every request, answered none (not its address).
    assert_eq!(net.nodes[1].stats().arp_in_not_for_us, 1 + retries);
    assert_eq!(net.nodes[1].stats().arp_replies_sent, 0);
    assert_eq!(net.nodes[0].poll_timeout(), None);

    // A later send starts a fresh resolution.
    net.nodes[0]
        .udp_send_to(net.now, c, b"again", sa(9, 9))
        .unwrap();
    assert_eq!(net.nodes[0].stats().arp_requests_sent, 2 + retries);
}

#[test]
fn pending_queue_is_bounded_and_keeps_the_newest() {
    let config = Config {
        arp_queue_len: 4,
        ..cfg(1)
    };
    let mut net = Net::eth_lan(vec![config, cfg(2)], 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    for i in 0..10u8 {
        net.nodes[0]
            .udp_send_to(net.now, c, &[i], sa(2, 9))
            .unwrap();
    }
    assert_eq!(net.nodes[0].stats().arp_queue_dropped, 6);
    net.settle();
    let mut got = Vec::new();
    let mut buf = [0u8; 4];
    while let Ok(n) = net.nodes[1].udp_recv(srv, &mut buf) {
        assert_eq!(n, 1);
        got.push(buf[0]);
    }
    assert_eq!(got, vec![6, 7, 8, 9]);
    assert_eq!(net.nodes[0].stats().arp_requests_sent, 1);
    assert_eq!(net.nodes[0].stats().arp_resolve_failed, 0);
}

#[test]
fn entries_expire_and_are_resolved_again() {
    let config = |seed| Config {
        arp_reachable_time: Duration::from_secs(5),
        ..cfg(seed)
    };
    let mut net = Net::eth_lan(vec![config(1), config(2)], 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"1", sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[0].stats().arp_requests_sent, 1);

    net.advance(Duration::from_secs(4));
    net.nodes[0]
        .udp_send_to(net.now, c, b"2", sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(
        net.nodes[0].stats().arp_requests_sent,
        1,
        "still fresh at 4 s"
    );
    assert_eq!(
        net.nodes[0].neighbors(),
        vec![(IfaceId(0), ip(2), Some(mac(2)))]
    );

    net.advance(Duration::from_secs(2));
    net.nodes[0]
        .udp_send_to(net.now, c, b"3", sa(2, 9))
        .unwrap();
    assert_eq!(
        net.nodes[0].stats().arp_requests_sent,
        2,
        "expired at 5 s: asked again"
    );
    assert_eq!(net.nodes[0].neighbors(), vec![(IfaceId(0), ip(2), None)]);
    net.settle();
    assert_eq!(
        net.nodes[0].neighbors(),
        vec![(IfaceId(0), ip(2), Some(mac(2)))]
    );
    let mut buf = [0u8; 4];
    for want in [b'1', b'2', b'3'] {
        assert_eq!(net.nodes[1].udp_recv(srv, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], want);
    }
    assert_eq!(net.nodes[1].stats().arp_replies_sent, 2);
}

#[test]
fn default_gateway_frames_go_to_the_gateway_mac() {
    // host 192.0.2.1, gateway 192.0.2.2, neighbour 192.0.2.3 on one hub.
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2), cfg(3)], 1500);
    net.nodes[0].set_default_gateway(ip(2)).unwrap();
    assert_eq!(net.nodes[0].routes().count(), 2);
    let far = sa4(Ipv4Addr::new(198, 51, 100, 7), 53);
    let c = net.nodes[0].udp_socket();
    net.nodes[0].udp_send_to(net.now, c, b"dns?", far).unwrap();
    net.settle();

    // ARP asks for the gateway, never for the far address.
    let req = arp_of(&net.log[0].bytes).unwrap();
    assert_eq!(req.target_protocol_addr, ip(2));
    let data: Vec<_> = net
        .log
        .iter()
        .filter(|f| f.node == 0 && arp_of(&f.bytes).is_none())
        .collect();
    assert_eq!(data.len(), 1);
    assert_eq!(eth_dst(&data[0].bytes), mac(2));
    let pkt = net.ip_of(data[0]).unwrap();
    let (ipr, _) = parse_ip(pkt).unwrap();
    assert_eq!((ipr.src_addr, ipr.dst_addr), (ip(1), v4(far.ip())));
    assert_eq!(
        net.nodes[0].neighbors(),
        vec![(IfaceId(0), ip(2), Some(mac(2)))]
    );
    // The "router" is a host: it does not forward, it drops and counts.
    assert_eq!(net.nodes[1].stats().ip_in_addr_errors, 1);
    assert_eq!(
        net.nodes[1].stats().link_out_frames,
        1,
        "just the ARP reply"
    );
    // Host 3 saw the unicast frame on the hub and dropped it at the link layer.
    assert_eq!(net.nodes[2].stats().link_in_not_for_us, 2);

    // An on-link destination still goes direct.
    let before = net.log.len();
    net.nodes[0]
        .udp_send_to(net.now, c, b"local", sa(3, 9))
        .unwrap();
    net.settle();
    let req = arp_of(&net.log[before].bytes).unwrap();
    assert_eq!(req.target_protocol_addr, ip(3));
    let last = net.log.iter().rev().find(|f| f.node == 0).unwrap();
    assert_eq!(eth_dst(&last.bytes), mac(3));
}

#[test]
fn arp_merge_updates_known_entries_only() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"x", sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(
        net.nodes[0].neighbors(),
        vec![(IfaceId(0), ip(2), Some(mac(2)))]
    );

    // 192.0.2.2 moves to a new MAC and announces it (gratuitous ARP, target = itself).
    let new_mac = mac(0x22);
    let garp = arp_frame(
        ArpOperation::Request,
        new_mac,
        ip(2),
        EthernetAddress([0; 6]),
        ip(2),
        EthernetAddress::BROADCAST,
    );
    net.inject(0, IfaceId(0), &garp);
    assert_eq!(
        net.nodes[0].neighbors(),
        vec![(IfaceId(0), ip(2), Some(new_mac))]
    );
    // An unknown host's gratuitous ARP does not create an entry.
    let garp = arp_frame(
        ArpOperation::Request,
        mac(0x33),
        ip(33),
        EthernetAddress([0; 6]),
        ip(33),
        EthernetAddress::BROADCAST,
    );
    net.inject(0, IfaceId(0), &garp);
    assert_eq!(net.nodes[0].neighbors().len(), 1);
    assert_eq!(net.nodes[0].stats().arp_in_not_for_us, 2);
    assert_eq!(net.nodes[0].stats().arp_replies_sent, 0);

    // Frames now go to the new MAC.
    net.nodes[0]
        .udp_send_to(net.now, c, b"y", sa(2, 9))
        .unwrap();
    let out = drain(&mut net.nodes[0], net.now);
    assert_eq!(out.len(), 1);
    assert_eq!(eth_dst(&out[0]), new_mac);

    // Malformed and bogus ARP are counted and ignored.
    let mut short = garp.clone();
    short.truncate(14 + 20);
    net.inject(0, IfaceId(0), &short);
    let bcast_sha = arp_frame(
        ArpOperation::Request,
        EthernetAddress::BROADCAST,
        ip(44),
        EthernetAddress([0; 6]),
        ip(1),
        EthernetAddress::BROADCAST,
    );
    net.inject(0, IfaceId(0), &bcast_sha);
    assert_eq!(net.nodes[0].stats().arp_in_malformed, 2);
    assert_eq!(net.nodes[0].neighbors().len(), 1);
    // Padded to the Ethernet minimum (60 bytes), a request is still answered.
    let mut padded = arp_frame(
        ArpOperation::Request,
        mac(5),
        ip(5),
        EthernetAddress([0; 6]),
        ip(1),
        EthernetAddress::BROADCAST,
    );
    padded.resize(60, 0);
    net.inject(0, IfaceId(0), &padded);
    let out = drain(&mut net.nodes[0], net.now);
    assert_eq!(out.len(), 1);
    let reply = arp_of(&out[0]).unwrap();
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(
        (reply.source_protocol_addr, reply.source_hardware_addr),
        (ip(1), mac(1))
    );
    assert_eq!(
        (reply.target_protocol_addr, reply.target_hardware_addr),
        (ip(5), mac(5))
    );
    assert_eq!(eth_dst(&out[0]), mac(5));
}

#[test]
fn neighbour_cache_stays_bounded_under_a_request_flood() {
    let config = Config {
        arp_cache_size: 8,
        ..cfg(1)
    };
    let mut net = Net::eth_lan(vec![config], 1500);
    for i in 0..200u16 {
        let spa = Ipv4Addr::new(192, 0, 2, (i % 250 + 3) as u8);
        let sha = EthernetAddress([0x02, 1, 0, 0, (i >> 8) as u8, i as u8]);
        let req = arp_frame(
            ArpOperation::Request,
            sha,
            spa,
            EthernetAddress([0; 6]),
            ip(1),
            EthernetAddress::BROADCAST,
        );
        net.inject(0, IfaceId(0), &req);
    }
    assert!(
        net.nodes[0].neighbors().len() <= 8,
        "cache grew to {} entries",
        net.nodes[0].neighbors().len()
    );
    // Every request was still answered (answering needs no cache entry).
    assert_eq!(net.nodes[0].stats().arp_replies_sent, 200);
    assert_eq!(drain(&mut net.nodes[0], net.now).len(), 200);
}

#[test]
fn frames_for_other_macs_and_unknown_ethertypes_are_dropped() {
    let mut net = Net::eth_lan(vec![cfg(1)], 1500);
    let pkt = build_udp(sa(2, 1), sa(1, 9), 1, b"x");
    net.inject(0, IfaceId(0), &eth(mac(2), mac(7), EtherType::Ipv4, &pkt));
    // EtherType IPv6 goes to IPv6 input, which refuses an IPv4 packet.
    net.inject(0, IfaceId(0), &eth(mac(2), mac(1), EtherType::Ipv6, &pkt));
    net.inject(
        0,
        IfaceId(0),
        &eth(mac(2), mac(1), EtherType::Unknown(0x88b5), &pkt),
    );
    net.inject(0, IfaceId(0), &[0u8; 13]);
    let s = net.nodes[0].stats();
    assert_eq!(s.link_in_frames, 4);
    assert_eq!(s.link_in_not_for_us, 1);
    assert_eq!(s.link_in_unknown_ethertype, 1);
    assert_eq!((s.ip6_in_receives, s.ip6_in_hdr_errors), (1, 1));
    assert_eq!(s.link_in_truncated, 1);
    assert_eq!(s.ip_in_receives, 0);
}

#[test]
fn expired_entries_make_room_in_a_full_cache() {
    // A host that talked to arp_cache_size neighbours long ago must still be able to
    // resolve a new one: stale entries are reclaimed when the cache is full.
    let config = Config {
        arp_cache_size: 3,
        arp_reachable_time: Duration::from_secs(5),
        ..cfg(1)
    };
    let mut cfgs = vec![config];
    cfgs.extend((2..=5).map(cfg));
    let mut net = Net::eth_lan(cfgs, 1500);
    let c = net.nodes[0].udp_socket();
    for n in 2..=4u8 {
        net.nodes[0]
            .udp_send_to(net.now, c, b"hi", sa(n, 9))
            .unwrap();
        net.settle();
    }
    assert_eq!(net.nodes[0].neighbors().len(), 3);
    // While they are fresh the cache is full: a fourth neighbour cannot be added.
    net.nodes[0]
        .udp_send_to(net.now, c, b"hi", sa(5, 9))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[0].stats().arp_cache_full, 1);
    assert_eq!(net.nodes[4].stats().ip_in_receives, 0);

    net.advance(Duration::from_secs(10));
    net.nodes[0]
        .udp_send_to(net.now, c, b"hi", sa(5, 9))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[0].stats().arp_cache_full, 1);
    assert_eq!(
        net.nodes[4].stats().ip_in_receives,
        1,
        "the new neighbour was reached"
    );
    assert!(net.nodes[0]
        .neighbors()
        .contains(&(IfaceId(0), ip(5), Some(mac(5)))));
    assert!(net.nodes[0].neighbors().len() <= 3);
}

// ---- neighbour unreachability detection (RFC 4861 §7.3 applied to ARP) ------------

/// Linux's ARP NUD: STALE entries are used, then probed by unicast.
fn nud(seed: u64) -> Config {
    Config {
        arp_ucast_probes: 3,
        arp_merge_confirms: false,
        arp_reachable_time: Duration::from_secs(5),
        ..cfg(seed)
    }
}

fn state_of(s: &berth_core::Stack, n: u8) -> Option<(NeighborState, Option<EthernetAddress>)> {
    s.neighbor_entries()
        .iter()
        .find(|e| e.ip == IpAddr::V4(ip(n)))
        .map(|e| (e.state, e.hw))
}

#[test]
fn stale_entry_is_used_then_probed_by_unicast() {
    let mut net = Net::eth_lan(vec![nud(1), nud(2)], 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"1", sa(2, 9))
        .unwrap();
    net.settle();
    // A unicast reply confirms; a request only records its sender (STALE).
    let reachable = Some((NeighborState::Reachable, Some(mac(2))));
    assert_eq!(state_of(&net.nodes[0], 2), reachable);
    assert_eq!(
        state_of(&net.nodes[1], 1),
        Some((NeighborState::Stale, Some(mac(1))))
    );

    // Reachable time passed: STALE, still used, with no request first.
    net.advance(Duration::from_secs(6));
    assert_eq!(
        state_of(&net.nodes[0], 2),
        Some((NeighborState::Stale, Some(mac(2))))
    );
    let before = net.log.len();
    net.nodes[0]
        .udp_send_to(net.now, c, b"2", sa(2, 9))
        .unwrap();
    net.settle();
    let sent = net.frames_since(before);
    assert_eq!(sent.len(), 1);
    assert!(arp_of(&sent[0].bytes).is_none());
    assert_eq!(eth_dst(&sent[0].bytes), mac(2));
    assert_eq!(state_of(&net.nodes[0], 2).unwrap().0, NeighborState::Delay);

    // DELAY_FIRST_PROBE_TIME later: one unicast request, answered: REACHABLE.
    let sent_at = net.now;
    let before = net.log.len();
    net.advance(Duration::from_secs(5));
    let probes: Vec<_> = net
        .frames_since(before)
        .iter()
        .filter(|f| f.node == 0)
        .collect();
    assert_eq!(probes.len(), 1);
    let req = arp_of(&probes[0].bytes).unwrap();
    assert_eq!(
        (req.operation, req.target_protocol_addr),
        (ArpOperation::Request, ip(2))
    );
    assert_eq!(eth_dst(&probes[0].bytes), mac(2), "a unicast probe");
    assert_eq!(probes[0].at, sent_at + Duration::from_secs(5));
    assert_eq!(state_of(&net.nodes[0], 2), reachable);
    let s = net.nodes[0].stats();
    assert_eq!((s.arp_requests_sent, s.neigh_ucast_probes), (2, 1));

    // An upper-layer confirmation in DELAY makes the probe unnecessary.
    net.advance(Duration::from_secs(6));
    net.nodes[0]
        .udp_send_to(net.now, c, b"3", sa(2, 9))
        .unwrap();
    assert_eq!(state_of(&net.nodes[0], 2).unwrap().0, NeighborState::Delay);
    assert!(net.nodes[0].confirm_neighbor(net.now, IfaceId(0), IpAddr::V4(ip(2))));
    assert_eq!(state_of(&net.nodes[0], 2), reachable);
    net.advance(Duration::from_secs(4));
    assert_eq!(net.nodes[0].stats().neigh_ucast_probes, 1);

    // The neighbour stops answering: three unicast probes, one a second, then FAILED.
    net.advance(Duration::from_secs(2));
    net.set_tap(|f| {
        if f.node == 1 {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    net.nodes[0]
        .udp_send_to(net.now, c, b"4", sa(2, 9))
        .unwrap();
    let sent_at = net.now;
    let before = net.log.len();
    net.advance(Duration::from_secs(10));
    let probes: Vec<_> = net
        .frames_since(before)
        .iter()
        .filter(|f| f.node == 0 && arp_of(&f.bytes).is_some())
        .map(|f| (f.at - sent_at, eth_dst(&f.bytes)))
        .collect();
    let secs = Duration::from_secs;
    assert_eq!(
        probes,
        vec![(secs(5), mac(2)), (secs(6), mac(2)), (secs(7), mac(2))]
    );
    assert_eq!(
        state_of(&net.nodes[0], 2),
        Some((NeighborState::Failed, None))
    );
    assert!(net.nodes[0].neighbors().is_empty(), "FAILED is not listed");
    let s = net.nodes[0].stats();
    assert_eq!((s.neigh_failed, s.arp_resolve_failed), (1, 0));
    assert_eq!(net.nodes[0].poll_timeout(), None);

    // The next packet resolves afresh, by broadcast.
    net.clear_tap();
    let before = net.log.len();
    net.nodes[0]
        .udp_send_to(net.now, c, b"5", sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(
        eth_dst(&net.frames_since(before)[0].bytes),
        EthernetAddress::BROADCAST
    );
    assert_eq!(state_of(&net.nodes[0], 2), reachable);
    let mut buf = [0u8; 4];
    for want in [b'1', b'2', b'3', b'4', b'5'] {
        assert_eq!(net.nodes[1].udp_recv(srv, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], want);
    }
}

#[test]
fn changed_mac_from_unsolicited_reply_or_gratuitous_arp_replaces_the_entry() {
    // Default ARP: every ARP packet from a neighbour confirms it (REACHABLE);
    // Linux NUD: only a unicast reply does, the others leave it STALE.
    for (config, learned) in [
        (cfg(1), NeighborState::Reachable),
        (nud(1), NeighborState::Stale),
    ] {
        let mut net = Net::eth_lan(vec![config.clone(), cfg(2)], 1500);
        let c = net.nodes[0].udp_socket();
        net.nodes[0]
            .udp_send_to(net.now, c, b"x", sa(2, 9))
            .unwrap();
        net.settle();
        assert_eq!(
            state_of(&net.nodes[0], 2).unwrap().0,
            NeighborState::Reachable
        );
        let zero = EthernetAddress([0; 6]);
        let bcast = EthernetAddress::BROADCAST;

        // An unsolicited broadcast reply with a new MAC.
        let f = arp_frame(ArpOperation::Reply, mac(0x22), ip(2), zero, ip(1), bcast);
        net.inject(0, IfaceId(0), &f);
        assert_eq!(state_of(&net.nodes[0], 2), Some((learned, Some(mac(0x22)))));
        // Used at once, with no request.
        net.nodes[0]
            .udp_send_to(net.now, c, b"y", sa(2, 9))
            .unwrap();
        let out = drain(&mut net.nodes[0], net.now);
        assert_eq!(out.len(), 1);
        assert_eq!(eth_dst(&out[0]), mac(0x22));

        // A gratuitous ARP (request for its own address) with another.
        let f = arp_frame(ArpOperation::Request, mac(0x23), ip(2), zero, ip(2), bcast);
        net.inject(0, IfaceId(0), &f);
        assert_eq!(state_of(&net.nodes[0], 2), Some((learned, Some(mac(0x23)))));

        // A unicast reply: a solicited advertisement with override, REACHABLE.
        let f = arp_frame(ArpOperation::Reply, mac(0x24), ip(2), mac(1), ip(1), mac(1));
        net.inject(0, IfaceId(0), &f);
        assert_eq!(
            state_of(&net.nodes[0], 2),
            Some((NeighborState::Reachable, Some(mac(0x24))))
        );
        // The same MAC again changes nothing.
        let f = arp_frame(ArpOperation::Request, mac(0x24), ip(2), zero, ip(2), bcast);
        net.inject(0, IfaceId(0), &f);
        assert_eq!(
            state_of(&net.nodes[0], 2),
            Some((NeighborState::Reachable, Some(mac(0x24))))
        );
        let s = net.nodes[0].stats();
        assert_eq!(s.neigh_lladdr_changed, 3);
        assert_eq!(s.arp_requests_sent, 1);
    }
}

#[test]
fn cache_and_timers_stay_bounded_under_a_flood_of_resolutions() {
    // Nobody answers: 253 neighbours, three packets each, five rounds a second
    // apart, into a cache of 8 entries with queues of 2: memory is bounded by
    // 8 × 2 packets, the heap by the live entries.
    let config = Config {
        arp_cache_size: 8,
        arp_queue_len: 2,
        ..cfg(1)
    };
    let mut net = Net::eth_lan(vec![config], 1500);
    let c = net.nodes[0].udp_socket();
    for round in 0..5u32 {
        // Each round starts elsewhere, so new addresses meet FAILED entries.
        for k in 0..253u32 {
            let n = (2 + (k + round * 37) % 253) as u8;
            for _ in 0..3 {
                net.nodes[0]
                    .udp_send_to(net.now, c, b"?", sa(n, 9))
                    .unwrap();
            }
            let s = &net.nodes[0];
            assert!(s.neighbor_entries().len() <= 8);
            assert!(s.timer_count() <= 16, "{} timers", s.timer_count());
        }
        net.advance(Duration::from_secs(1));
    }
    let s = net.nodes[0].stats();
    assert!(s.arp_cache_full > 3000, "{}", s.arp_cache_full);
    assert!(s.arp_queue_dropped > 0);
    assert!(s.neigh_reclaimed > 0, "FAILED entries made room");
    assert_eq!(s.udp_out_datagrams, 5 * 253 * 3);
    // Everything waiting fails in time; no timer is left.
    net.advance(Duration::from_secs(10));
    assert_eq!(net.nodes[0].poll_timeout(), None);
    assert_eq!(net.nodes[0].timer_count(), 0);
    assert!(net.nodes[0].neighbors().is_empty());
}

#[test]
fn a_flood_of_state_changes_does_not_grow_the_timer_heap() {
    // One neighbour whose MAC flips on every packet (gratuitous ARP), with Linux
    // NUD: STALE → DELAY → STALE … a thousand times, one timer armed throughout.
    let mut net = Net::eth_lan(vec![nud(1)], 1500);
    let c = net.nodes[0].udp_socket();
    let zero = EthernetAddress([0; 6]);
    let bcast = EthernetAddress::BROADCAST;
    let hello = arp_frame(ArpOperation::Request, mac(2), ip(2), zero, ip(1), bcast);
    net.inject(0, IfaceId(0), &hello);
    for i in 0..1000u32 {
        let m = mac(if i % 2 == 0 { 0x22 } else { 0x23 });
        let garp = arp_frame(ArpOperation::Request, m, ip(2), zero, ip(2), bcast);
        net.inject(0, IfaceId(0), &garp);
        net.nodes[0]
            .udp_send_to(net.now, c, b"!", sa(2, 9))
            .unwrap();
        assert_eq!(
            state_of(&net.nodes[0], 2),
            Some((NeighborState::Delay, Some(m)))
        );
        assert!(
            net.nodes[0].timer_count() <= 1,
            "{}",
            net.nodes[0].timer_count()
        );
        net.advance(Duration::from_millis(1));
    }
    assert_eq!(net.nodes[0].stats().neigh_lladdr_changed, 1000);
    // Then unanswered unicast probes, FAILED, and no timer left.
    net.advance(Duration::from_secs(10));
    let s = net.nodes[0].stats();
    assert_eq!((s.neigh_ucast_probes, s.neigh_failed), (3, 1));
    assert_eq!(net.nodes[0].poll_timeout(), None);
}

// ---- address conflict detection (RFC 5227) ------------------------------------------

#[test]
fn probe_is_sent_from_zero_and_a_quiet_link_shows_no_conflict() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    net.nodes[0].arp_probe(IfaceId(0), ip(9)).unwrap();
    net.settle();
    let f = net.log.iter().find(|f| f.node == 0).expect("the probe");
    let a = arp_of(&f.bytes).expect("an ARP frame");
    // RFC 5227 §2.1.1: broadcast request, our MAC, sender IP 0, target MAC 0.
    assert_eq!(eth_dst(&f.bytes), EthernetAddress::BROADCAST);
    assert_eq!(a.operation, ArpOperation::Request);
    assert_eq!(a.source_hardware_addr, mac(1));
    assert_eq!(a.source_protocol_addr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(a.target_hardware_addr, EthernetAddress([0; 6]));
    assert_eq!(a.target_protocol_addr, ip(9));
    let s = net.nodes[0].stats();
    assert_eq!(
        (s.arp_probes_sent, s.arp_requests_sent, s.arp_conflicts),
        (1, 0, 0)
    );
    // No one learns a mapping from a probe, no one has 192.0.2.9.
    assert!(net.nodes[1].neighbors().is_empty());
    assert_eq!(net.nodes[1].stats().arp_in_not_for_us, 1);
    assert_eq!(net.nodes[1].stats().arp_in_malformed, 0);
    net.advance(Duration::from_secs(2));
    assert_eq!(net.nodes[0].arp_conflict(IfaceId(0), ip(9)), None);
    // An IP link has no ARP; a bad interface or address is refused.
    let mut ipnet = Net::ip_pair(cfg(1), cfg(2), 1500);
    assert!(ipnet.nodes[0].arp_probe(IfaceId(0), ip(9)).is_err());
    assert!(net.nodes[0].arp_probe(IfaceId(7), ip(9)).is_err());
    assert!(net.nodes[0]
        .arp_probe(IfaceId(0), Ipv4Addr::UNSPECIFIED)
        .is_err());
    assert_eq!(net.nodes[0].stats().arp_probes_sent, 1);
    assert_eq!(ipnet.nodes[0].stats().arp_probes_sent, 0);
}

#[test]
fn the_holder_answers_a_probe_and_the_prober_sees_the_conflict() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    net.nodes[0].arp_probe(IfaceId(0), ip(2)).unwrap();
    net.settle();
    // Node 2 answers unicast (target 0.0.0.0), learning nothing.
    let r = net.log.iter().find(|f| f.node == 1).expect("a reply");
    let a = arp_of(&r.bytes).unwrap();
    assert_eq!(a.operation, ArpOperation::Reply);
    assert_eq!(eth_dst(&r.bytes), mac(1));
    assert_eq!(
        (a.source_protocol_addr, a.target_protocol_addr),
        (ip(2), Ipv4Addr::UNSPECIFIED)
    );
    assert!(net.nodes[1].neighbors().is_empty());
    assert_eq!(net.nodes[1].stats().arp_replies_sent, 1);
    assert_eq!(net.nodes[0].arp_conflict(IfaceId(0), ip(2)), Some(mac(2)));
    assert_eq!(net.nodes[0].stats().arp_conflicts, 1);
    // Probing again keeps the conflict; more packets do not count it again.
    net.nodes[0].arp_probe(IfaceId(0), ip(2)).unwrap();
    net.settle();
    assert_eq!(net.nodes[0].arp_conflict(IfaceId(0), ip(2)), Some(mac(2)));
    assert_eq!(net.nodes[0].stats().arp_conflicts, 1);
    // Done: forgotten, and a later reply is no conflict.
    net.nodes[0].arp_probe_done(IfaceId(0), ip(2));
    assert_eq!(net.nodes[0].arp_conflict(IfaceId(0), ip(2)), None);
}

#[test]
fn conflicts_are_any_arp_from_the_address_or_another_hosts_probe() {
    let zero = EthernetAddress([0; 6]);
    let bcast = EthernetAddress::BROADCAST;
    let cases = [
        // A gratuitous ARP (request for its own address).
        arp_frame(ArpOperation::Request, mac(7), ip(9), zero, ip(9), bcast),
        // A request for someone else from the address.
        arp_frame(ArpOperation::Request, mac(7), ip(9), zero, ip(3), bcast),
        // A broadcast reply.
        arp_frame(ArpOperation::Reply, mac(7), ip(9), zero, ip(3), bcast),
        // Another host probing the same address (RFC 5227 §2.1.1).
        arp_frame(
            ArpOperation::Request,
            mac(7),
            Ipv4Addr::UNSPECIFIED,
            zero,
            ip(9),
            bcast,
        ),
    ];
    for f in &cases {
        let mut net = Net::eth_lan(vec![cfg(1)], 1500);
        net.nodes[0].arp_probe(IfaceId(0), ip(9)).unwrap();
        net.inject(0, IfaceId(0), f);
        assert_eq!(
            net.nodes[0].arp_conflict(IfaceId(0), ip(9)),
            Some(mac(7)),
            "{:?}",
            arp_of(f)
        );
        assert_eq!(net.nodes[0].stats().arp_conflicts, 1);
    }
    let not = [
        // Our own probe reflected back.
        arp_frame(
            ArpOperation::Request,
            mac(1),
            Ipv4Addr::UNSPECIFIED,
            zero,
            ip(9),
            bcast,
        ),
        // A request for the address from another (ordinary resolution).
        arp_frame(ArpOperation::Request, mac(7), ip(3), zero, ip(9), bcast),
        // Another host probing another address.
        arp_frame(
            ArpOperation::Request,
            mac(7),
            Ipv4Addr::UNSPECIFIED,
            zero,
            ip(8),
            bcast,
        ),
        // Cut short.
        arp_frame(ArpOperation::Reply, mac(7), ip(9), zero, ip(3), bcast)[..30].to_vec(),
    ];
    for f in &not {
        let mut net = Net::eth_lan(vec![cfg(1)], 1500);
        net.nodes[0].arp_probe(IfaceId(0), ip(9)).unwrap();
        net.inject(0, IfaceId(0), f);
        assert_eq!(net.nodes[0].arp_conflict(IfaceId(0), ip(9)), None, "{f:?}");
        assert_eq!(net.nodes[0].stats().arp_conflicts, 0);
    }
    // Without a probe nothing is watched or counted.
    let mut net = Net::eth_lan(vec![cfg(1)], 1500);
    net.inject(0, IfaceId(0), &cases[0]);
    assert_eq!(net.nodes[0].arp_conflict(IfaceId(0), ip(9)), None);
    assert_eq!(net.nodes[0].stats().arp_conflicts, 0);
}

#[test]
fn the_watch_set_is_bounded() {
    let mut net = Net::eth_lan(vec![cfg(1)], 1500);
    for n in 10..=200u8 {
        net.nodes[0].arp_probe(IfaceId(0), ip(n)).unwrap();
    }
    let zero = EthernetAddress([0; 6]);
    let bcast = EthernetAddress::BROADCAST;
    for n in 10..=200u8 {
        let f = arp_frame(ArpOperation::Reply, mac(7), ip(n), zero, ip(3), bcast);
        net.inject(0, IfaceId(0), &f);
    }
    // The four newest are watched; the older ones were dropped.
    let seen: Vec<u8> = (10..=200u8)
        .filter(|&n| net.nodes[0].arp_conflict(IfaceId(0), ip(n)).is_some())
        .collect();
    assert_eq!(seen, [197, 198, 199, 200]);
    assert_eq!(net.nodes[0].stats().arp_conflicts, 4);
}
