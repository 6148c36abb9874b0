//! Fragmentation and reassembly end to end: the largest UDP datagram over MTU 1500,
//! out-of-order and duplicated fragments, timeouts (with ICMP time exceeded),
//! overlaps, the memory cap.

mod common;

use berth_core::wire::{Icmpv4Repr, IpProtocol, Ipv4Packet, TimeExceeded, UdpRepr};
use berth_core::{errno, Config, Duration, IfaceId};
use common::*;
use std::io::ErrorKind;

const MAX: usize = 65_507;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Deterministic Fisher–Yates with a tiny LCG.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

/// Send `data` from node 0 to node 1 port 9 with every frame captured (not delivered).
fn capture_fragments(data: &[u8]) -> (Net, berth_core::SocketHandle, Vec<Vec<u8>>) {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    net.set_tap(|_| Action::Capture);
    let c = net.nodes[0].udp_socket();
    net.nodes[0].udp_bind(c, any(4444)).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, data, sa(2, 9))
        .unwrap();
    net.pump();
    net.clear_tap();
    let frags = net.captured.drain(..).map(|f| f.bytes).collect();
    (net, srv, frags)
}

fn recv_all(net: &mut Net, h: berth_core::SocketHandle) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = net.nodes[1]
        .udp_recv_from(h, &mut buf)
        .expect("reassembled datagram");
    assert_eq!(from, sa(1, 4444));
    buf.truncate(n);
    buf
}

#[test]
fn largest_datagram_is_fragmented_and_reassembled_byte_exact() {
    let data = pattern(MAX);
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0].udp_bind(c, any(4444)).unwrap();
    assert_eq!(
        net.nodes[0]
            .udp_send_to(net.now, c, &data, sa(2, 9))
            .unwrap(),
        MAX
    );
    net.settle();

    // 65,515 bytes of IP payload in 1,480-byte pieces: 45 fragments.
    let a = net.nodes[0].stats();
    assert_eq!(a.ip_frag_oks, 1);
    assert_eq!(a.ip_frag_creates, 45);
    assert_eq!(a.link_out_frames, 45);
    assert_eq!(a.udp_out_datagrams, 1);
    assert_eq!(net.log.len(), 45);
    let mut expected_off = 0usize;
    let ident = Ipv4Packet::new_checked(&net.log[0].bytes[..])
        .unwrap()
        .ident();
    for (i, f) in net.log.iter().enumerate() {
        assert!(f.bytes.len() <= 1500);
        let p = Ipv4Packet::new_checked(&f.bytes[..]).unwrap();
        assert!(p.verify_checksum(), "fragment {i} header checksum");
        assert_eq!(p.ident(), ident);
        assert_eq!(p.frag_offset() as usize, expected_off);
        assert_eq!(p.more_frags(), i < 44);
        assert!(!p.dont_frag());
        if i < 44 {
            assert_eq!(p.payload().len(), 1480);
        }
        expected_off += p.payload().len();
    }
    assert_eq!(expected_off, MAX + 8);

    let b = net.nodes[1].stats();
    assert_eq!(b.ip_reasm_reqds, 45);
    assert_eq!(b.ip_reasm_oks, 1);
    assert_eq!(b.udp_in_datagrams, 1);
    assert_eq!(b.udp_in_csum_errors, 0);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
    assert_eq!(net.nodes[1].reassembly_pending(), 0);
    assert_eq!(net.nodes[1].udp_next_len(srv).unwrap(), Some(MAX));
    assert!(recv_all(&mut net, srv) == data, "payload differs");

    // And over Ethernet, once the neighbour is known.
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0].udp_bind(c, any(4444)).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"warm up", sa(2, 9))
        .unwrap();
    net.settle();
    recv_all(&mut net, srv);
    net.nodes[0]
        .udp_send_to(net.now, c, &data, sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[0].stats().ip_frag_creates, 45);
    assert!(net.log.iter().all(|f| f.bytes.len() <= 1514));
    assert!(recv_all(&mut net, srv) == data);
}

#[test]
fn oversized_send_is_emsgsize() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let c = net.nodes[0].udp_socket();
    let e = net.nodes[0]
        .udp_send_to(net.now, c, &vec![1u8; MAX + 1], sa(2, 9))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(errno(&e), Some(90));
    assert_eq!(net.pump(), 0);
    assert_eq!(net.nodes[0].stats().ip_frag_creates, 0);
}

#[test]
fn reverse_order_reassembles() {
    let data = pattern(MAX);
    let (mut net, srv, mut frags) = capture_fragments(&data);
    assert_eq!(frags.len(), 45);
    frags.reverse();
    for f in &frags {
        net.inject(1, IfaceId(0), f);
    }
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 1);
    assert!(recv_all(&mut net, srv) == data);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
}

#[test]
fn shuffled_with_duplicates_reassembles() {
    for seed in 1..=8u64 {
        let data = pattern(20_000 + seed as usize * 333);
        let (mut net, srv, mut frags) = capture_fragments(&data);
        let n = frags.len();
        shuffle(&mut frags, seed);
        // Duplicate a third of the fragments at random places before the final one,
        // so the datagram completes only with the last injected frame.
        let last = frags.pop().unwrap();
        let mut seq = frags.clone();
        let mut s = seed;
        for (k, f) in frags.iter().enumerate().filter(|(k, _)| k % 3 == 0) {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(k as u64 + 1);
            let at = (s >> 33) as usize % (seq.len() + 1);
            seq.insert(at, f.clone());
        }
        let dups = seq.len() - frags.len();
        seq.push(last);
        for f in &seq {
            net.inject(1, IfaceId(0), f);
        }
        let b = net.nodes[1].stats();
        assert_eq!(b.ip_reasm_reqds as usize, n + dups, "seed {seed}");
        assert_eq!(b.ip_reasm_oks, 1, "seed {seed}");
        assert_eq!(b.ip_reasm_overlap, 0);
        assert!(recv_all(&mut net, srv) == data, "seed {seed}");
        assert_eq!(net.nodes[1].reassembly_memory(), 0);
        assert_eq!(net.nodes[1].reassembly_pending(), 0);
    }
}

#[test]
fn missing_fragment_times_out_with_icmp_time_exceeded() {
    let data = pattern(10_000);
    let (mut net, srv, frags) = capture_fragments(&data);
    assert_eq!(frags.len(), 7);
    let ident = Ipv4Packet::new_checked(&frags[0][..]).unwrap().ident();
    for (i, f) in frags.iter().enumerate() {
        if i != 3 {
            net.inject(1, IfaceId(0), f);
        }
    }
    assert_eq!(net.nodes[1].reassembly_pending(), 1);
    assert!(net.nodes[1].reassembly_memory() >= 6 * 1480);
    let deadline = net.nodes[1].poll_timeout().expect("reassembly timer");
    assert_eq!(deadline, net.now + Duration::from_secs(30));

    net.advance(Duration::from_millis(29_999));
    assert_eq!(net.nodes[1].stats().ip_reasm_timeout, 0);
    assert_eq!(net.nodes[1].reassembly_pending(), 1);
    net.advance(Duration::from_millis(1));
    let b = net.nodes[1].stats();
    assert_eq!(b.ip_reasm_timeout, 1);
    assert_eq!(b.ip_reasm_oks, 0);
    assert_eq!(b.icmp_out_time_excds, 1);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
    assert_eq!(net.nodes[1].reassembly_pending(), 0);
    assert!(net.nodes[1].udp_next_len(srv).unwrap().is_none());

    // The time exceeded went back to the sender, quoting the first fragment.
    let te = net
        .log
        .iter()
        .rev()
        .find(|f| f.node == 1)
        .expect("ICMP sent");
    let (ipr, msg) = icmp_of(&te.bytes).unwrap();
    assert_eq!((ipr.src_addr, ipr.dst_addr), (ip(2), ip(1)));
    match msg {
        Icmpv4Repr::TimeExceeded {
            reason,
            header,
            data,
        } => {
            assert_eq!(reason, TimeExceeded::FragReassemblyExpired);
            assert_eq!(header.ident, ident);
            assert_eq!((header.src_addr, header.dst_addr), (ip(1), ip(2)));
            assert_eq!(header.protocol, IpProtocol::UDP);
            assert_eq!(header.frag_offset, 0);
            assert_eq!(data.len(), 8);
            assert_eq!(&data[0..4], &[0x11, 0x5c, 0, 9], "ports 4444 → 9");
        }
        other => panic!("expected time exceeded, got {other:?}"),
    }
    assert_eq!(net.nodes[0].stats().icmp_in_time_excds, 1);
    assert_eq!(
        net.nodes[1].poll_timeout(),
        None,
        "no stale timer left behind"
    );

    // The late fragment alone starts a new partial datagram that expires quietly:
    // its first fragment never came, so no ICMP this time.
    net.inject(1, IfaceId(0), &frags[3]);
    assert_eq!(net.nodes[1].reassembly_pending(), 1);
    net.advance(Duration::from_secs(31));
    assert_eq!(net.nodes[1].stats().ip_reasm_timeout, 2);
    assert_eq!(net.nodes[1].stats().icmp_out_time_excds, 1);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
}

#[test]
fn missing_first_fragment_times_out_without_icmp() {
    let config = Config {
        reassembly_timeout: Duration::from_secs(5),
        ..cfg(2)
    };
    let mut net = Net::ip_pair(cfg(1), config, 1500);
    net.set_tap(|_| Action::Capture);
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, &pattern(5000), sa(2, 9))
        .unwrap();
    net.pump();
    net.clear_tap();
    let frags: Vec<_> = net.captured.drain(..).map(|f| f.bytes).collect();
    for f in &frags[1..] {
        net.inject(1, IfaceId(0), f);
    }
    net.advance(Duration::from_millis(4_999));
    assert_eq!(net.nodes[1].stats().ip_reasm_timeout, 0);
    net.advance(Duration::from_millis(1));
    let b = net.nodes[1].stats();
    assert_eq!(b.ip_reasm_timeout, 1);
    assert_eq!(b.icmp_out_msgs, 0);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
}

/// Split a whole IP payload into fragments of `chunk` bytes (multiple of 8).
fn fragments(payload: &[u8], ident: u16, chunk: usize) -> Vec<Vec<u8>> {
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let piece = &payload[i * chunk..payload.len().min((i + 1) * chunk)];
            build_ip(
                ip(1),
                ip(2),
                IpProtocol::UDP,
                ident,
                i + 1 < n,
                (i * chunk) as u16,
                piece,
            )
        })
        .collect()
}

fn udp_segment(data: &[u8]) -> Vec<u8> {
    let u = UdpRepr {
        src_port: 4444,
        dst_port: 9,
        payload: data,
    };
    let mut v = vec![0u8; u.buffer_len()];
    u.emit(&mut v, &ip(1), &ip(2));
    v
}

#[test]
fn overlapping_fragments_are_dropped_and_counted() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let seg = udp_segment(&pattern(56)); // 64 bytes
                                         // 0..32 then 16..48: a partial overlap.
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 77, true, 0, &seg[..32]),
    );
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 77, true, 16, &seg[16..48]),
    );
    let b = net.nodes[1].stats();
    assert_eq!(b.ip_reasm_overlap, 1);
    assert_eq!(net.nodes[1].reassembly_pending(), 0);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
    // The rest arrives: it cannot complete the dropped datagram.
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 77, false, 48, &seg[48..]),
    );
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 0);
    assert!(net.nodes[1].udp_next_len(srv).unwrap().is_none());

    // A fragment covering more than one already held (superset) is an overlap too.
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 78, true, 8, &seg[8..16]),
    );
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 78, true, 0, &seg[..32]),
    );
    assert_eq!(net.nodes[1].stats().ip_reasm_overlap, 2);

    // An exact duplicate is not an overlap; the datagram still completes.
    let frags = fragments(&seg, 79, 16);
    net.inject(1, IfaceId(0), &frags[0]);
    net.inject(1, IfaceId(0), &frags[1]);
    net.inject(1, IfaceId(0), &frags[1]);
    net.inject(1, IfaceId(0), &frags[2]);
    net.inject(1, IfaceId(0), &frags[3]);
    assert_eq!(net.nodes[1].stats().ip_reasm_overlap, 2);
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 1);
    let mut buf = [0u8; 64];
    let n = net.nodes[1].udp_recv(srv, &mut buf).unwrap();
    assert_eq!(&buf[..n], &pattern(56)[..]);
    // Let the timer of the partial that was dropped at the start fire: nothing counted.
    net.advance(Duration::from_secs(31));
    assert_eq!(
        net.nodes[1].stats().ip_reasm_timeout,
        1,
        "only the lone last fragment of 77 timed out"
    );
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
}

#[test]
fn memory_cap_evicts_the_oldest_partial_datagram() {
    let config = Config {
        reassembly_mem: 4000,
        ..cfg(2)
    };
    let mut net = Net::ip_pair(cfg(1), config, 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let segs: Vec<Vec<u8>> = (0..3)
        .map(|i| udp_segment(&vec![i as u8; 1480 + 92]))
        .collect();
    let frs: Vec<Vec<Vec<u8>>> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| fragments(s, 100 + i as u16, 1480))
        .collect();
    assert_eq!(frs[0].len(), 2);
    // First fragments of X (t), Y (t+1ms), Z (t+2ms): 3 × 1480 > 4000 → X evicted.
    for (i, f) in frs.iter().enumerate() {
        net.inject(1, IfaceId(0), &f[0]);
        if i < 2 {
            assert_eq!(net.nodes[1].stats().ip_reasm_mem_evict, 0);
        }
        net.advance(Duration::from_millis(1));
    }
    assert_eq!(net.nodes[1].stats().ip_reasm_mem_evict, 1);
    assert_eq!(net.nodes[1].reassembly_pending(), 2);
    assert!(net.nodes[1].reassembly_memory() <= 4000);
    // Y and Z complete; X's tail alone cannot.
    net.inject(1, IfaceId(0), &frs[1][1]);
    net.inject(1, IfaceId(0), &frs[2][1]);
    net.inject(1, IfaceId(0), &frs[0][1]);
    let mut buf = vec![0u8; 2000];
    let n = net.nodes[1].udp_recv(srv, &mut buf).unwrap();
    assert_eq!(&buf[..n], &vec![1u8; 1572][..]);
    let n = net.nodes[1].udp_recv(srv, &mut buf).unwrap();
    assert_eq!(&buf[..n], &vec![2u8; 1572][..]);
    assert!(net.nodes[1].udp_recv(srv, &mut buf).is_err());
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 2);
    // Everything is released after the timeout.
    net.advance(Duration::from_secs(31));
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
    assert_eq!(net.nodes[1].reassembly_pending(), 0);

    // A single datagram larger than the whole cap is refused, counted, and leaves
    // nothing behind.
    let big = udp_segment(&pattern(6000));
    for f in fragments(&big, 200, 1480) {
        net.inject(1, IfaceId(0), &f);
    }
    assert!(net.nodes[1].stats().ip_reasm_mem_evict >= 2);
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 2);
    // The doomed datagram does not keep holding memory until its timeout.
    assert_eq!(net.nodes[1].reassembly_pending(), 0);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
}

#[test]
fn fragments_past_65535_bytes_are_dropped() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    // Offset 65528 + 16 bytes + 20 header > 65535.
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 5, false, 65_528, &[0u8; 16]),
    );
    assert_eq!(net.nodes[1].stats().ip_reasm_too_big, 1);
    assert_eq!(net.nodes[1].reassembly_memory(), 0);
    // A non-final fragment whose size is not a multiple of 8 is malformed.
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::UDP, 6, true, 0, &[0u8; 12]),
    );
    assert_eq!(net.nodes[1].stats().ip_in_malformed, 1);
    assert_eq!(net.nodes[1].reassembly_pending(), 0);
}

#[test]
fn small_mtu_fragmentation_round_trip() {
    // MTU 68 (the IPv4 minimum): 48-byte pieces.
    let mut net = Net::ip_pair(cfg(1), cfg(2), 68);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    let data = pattern(1000);
    net.nodes[0]
        .udp_send_to(net.now, c, &data, sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(
        net.nodes[0].stats().ip_frag_creates,
        1008usize.div_ceil(48) as u64
    );
    assert!(net.log.iter().all(|f| f.bytes.len() <= 68));
    let mut buf = vec![0u8; 2000];
    let n = net.nodes[1].udp_recv(srv, &mut buf).unwrap();
    assert!(buf[..n] == data[..]);
}

#[test]
fn largest_datagram_to_an_unresolved_neighbour_survives_arp() {
    // All 45 fragments wait for ARP together; with the default queue they must all
    // be kept (Linux keeps ~101 full frames per unresolved neighbour).
    let data = pattern(MAX);
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0].udp_bind(c, any(4444)).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, &data, sa(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[0].stats().arp_queue_dropped, 0);
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 1);
    assert!(recv_all(&mut net, srv) == data);
}

#[test]
fn flood_of_tiny_fragments_stays_within_the_memory_cap() {
    // Thousands of one-fragment "datagrams" (distinct identifications) must be bounded
    // by reassembly_mem including each one's bookkeeping, not just its 8 data bytes,
    // and must not leave one timer per datagram behind.
    let cap = 64 * 1024;
    let config = Config {
        reassembly_mem: cap,
        ..cfg(2)
    };
    let mut net = Net::ip_pair(cfg(1), config, 1500);
    for proto in [17u8, 253] {
        for id in 0..10_000u16 {
            let f = build_ip(ip(1), ip(2), IpProtocol(proto), id, true, 0, &[0u8; 8]);
            net.inject(1, IfaceId(0), &f);
        }
    }
    let s = &net.nodes[1];
    assert!(s.reassembly_memory() <= cap);
    assert!(
        s.reassembly_pending() <= cap / 128,
        "{} partial datagrams held under a {cap}-byte cap",
        s.reassembly_pending()
    );
    assert_eq!(
        s.stats().ip_reasm_mem_evict as usize + s.reassembly_pending(),
        20_000
    );
    assert!(s.timer_count() <= 4, "{} timers armed", s.timer_count());
    // The survivors still expire on time, and every timer is gone afterwards.
    net.advance(Duration::from_secs(30));
    let s = &net.nodes[1];
    assert_eq!(s.reassembly_pending(), 0);
    assert_eq!(s.reassembly_memory(), 0);
    assert_eq!(s.poll_timeout(), None);
}
