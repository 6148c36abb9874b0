//! Determinism: the same scripted exchange with the same seeds gives the same frames,
//! byte for byte and instant for instant; another seed changes the random choices
//! (ephemeral ports, IP identification).

mod common;

use berth_core::wire::{IpProtocol, Ipv4Packet};
use berth_core::{Duration, Stats};
use common::*;

struct Run {
    frames: Vec<Frame>,
    stats: Vec<Stats>,
    ephemeral: u16,
    first_ident: u16,
}

fn script(seed_a: u64, seed_b: u64) -> Run {
    let mut net = Net::eth_lan(vec![cfg(seed_a), cfg(seed_b)], 1500);
    let echo = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(echo, any(7)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"hello", sa(2, 7))
        .unwrap();
    let ephemeral = net.nodes[0].udp_local_addr(c).unwrap().port();
    net.settle();
    let mut buf = vec![0u8; 8192];
    let (n, from) = net.nodes[1].udp_recv_from(echo, &mut buf).unwrap();
    net.nodes[1]
        .udp_send_to(net.now, echo, &buf[..n], from)
        .unwrap();
    net.advance(Duration::from_millis(3));

    let raw = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, raw, &echo_request(1, 1, b"ping"), ip(2))
        .unwrap();
    net.advance(Duration::from_millis(5));
    let big: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    net.nodes[0]
        .udp_send_to(net.now, c, &big, sa(2, 7))
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"closed", sa(2, 9))
        .unwrap();
    let eph2 = net.nodes[1].udp_socket();
    net.nodes[1]
        .udp_send_to(net.now, eph2, b"back", sa(1, 9))
        .unwrap();
    net.advance(Duration::from_secs(2));
    net.nodes[0]
        .udp_send_to(net.now, c, b"void", sa(9, 9))
        .unwrap();
    net.advance(Duration::from_secs(10));

    let first_ident = net
        .log
        .iter()
        .filter(|f| f.node == 0)
        .find_map(|f| {
            net.ip_of(f)
                .map(|p| Ipv4Packet::new_checked(p).unwrap().ident())
        })
        .unwrap();
    Run {
        frames: net.log.clone(),
        stats: net.nodes.iter().map(|s| s.stats().clone()).collect(),
        ephemeral,
        first_ident,
    }
}

#[test]
fn same_seed_same_frames() {
    let a = script(1, 2);
    let b = script(1, 2);
    assert!(
        a.frames.len() > 15,
        "the script exercises enough: {}",
        a.frames.len()
    );
    assert_eq!(a.frames.len(), b.frames.len());
    for (i, (x, y)) in a.frames.iter().zip(&b.frames).enumerate() {
        assert_eq!(x, y, "frame {i} differs");
    }
    assert_eq!(a.stats, b.stats);
    assert_eq!((a.ephemeral, a.first_ident), (b.ephemeral, b.first_ident));
    // The run covered fragments, ICMP and ARP retries.
    assert!(a.stats[0].ip_frag_creates >= 4);
    assert_eq!(a.stats[1].icmp_out_dest_unreachs, 1);
    assert_eq!(a.stats[0].arp_resolve_failed, 1);
}

#[test]
fn other_seed_changes_random_choices() {
    let a = script(1, 2);
    let b = script(3, 2);
    assert_ne!(a.ephemeral, b.ephemeral, "ephemeral port follows the seed");
    assert_ne!(
        a.first_ident, b.first_ident,
        "IP identification follows the seed"
    );
    assert_ne!(a.frames, b.frames);
    // Only the random choices differ: the same amount of traffic at the same times.
    assert_eq!(a.frames.len(), b.frames.len());
    for (x, y) in a.frames.iter().zip(&b.frames) {
        assert_eq!((x.node, x.at, x.bytes.len()), (y.node, y.at, y.bytes.len()));
    }
    assert_eq!(a.stats, b.stats);
    // Several seeds give several ports.
    let ports: std::collections::HashSet<u16> = (10..20).map(|s| script(s, 2).ephemeral).collect();
    assert!(ports.len() >= 8, "{ports:?}");
}
