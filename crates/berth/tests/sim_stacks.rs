//! Two berth-core stacks in the simulator: ping and UDP under impairments,
//! fragmentation end to end, same-seed determinism, and a tshark check of captures.

mod common;
use common::tshark_complaints;

use berth::sim::workload::{self, PingConfig, UdpConfig, UdpMode};
use berth::sim::{Duration, Instant, LinkConfig, Medium, TwoHosts};
use berth::wire::{IpProtocol, Ipv4Addr};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn impaired(seed_medium: Medium) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        medium: seed_medium,
        ..LinkConfig::default()
    }
}

#[test]
fn ping_rtt_reflects_delay_and_jitter() {
    let mut h = TwoHosts::new(7, impaired(Medium::Ip)).unwrap();
    let cfg = PingConfig {
        count: 100,
        ..PingConfig::default()
    };
    let mut lines = 0;
    let r = workload::ping(&mut h, &cfg, |_| lines += 1).unwrap();
    assert_eq!((r.transmitted, r.received, r.duplicates), (100, 100, 0));
    assert_eq!(lines, 100);
    let (min, avg, max, mdev) = r.rtt_summary_ms().unwrap();
    // Two traversals of 20 ms plus up to 5 ms jitter each.
    assert!(min >= 40.0 && max <= 50.0, "min {min} max {max}");
    assert!(avg > 42.0 && avg < 48.0, "avg {avg}");
    assert!(mdev > 0.5, "jitter must show in mdev, got {mdev}");
    assert_eq!(r.loss_percent(), 0.0);
}

#[test]
fn ping_over_ethernet_resolves_arp_first() {
    let mut h = TwoHosts::new(1, impaired(Medium::Ethernet)).unwrap();
    let cfg = PingConfig {
        count: 3,
        ..PingConfig::default()
    };
    let mut rtts = Vec::new();
    let r = workload::ping(&mut h, &cfg, |p| rtts.push(p.rtt)).unwrap();
    assert_eq!(r.received, 3);
    // The first request waits for an ARP round trip (another 40 ms or more).
    assert!(rtts[0] >= Duration::from_millis(80), "{rtts:?}");
    assert!(rtts[1] < Duration::from_millis(51), "{rtts:?}");
    assert_eq!(h.sim.node(h.a).stats().arp_requests_sent, 1);
    assert_eq!(h.sim.node(h.b).stats().arp_replies_sent, 1);
}

#[test]
fn ping_with_loss_counts_losses() {
    let link = LinkConfig {
        loss: 0.2,
        delay: Duration::from_millis(1),
        medium: Medium::Ip,
        ..LinkConfig::default()
    };
    let mut h = TwoHosts::new(3, link).unwrap();
    let cfg = PingConfig {
        count: 200,
        interval: Duration::from_millis(10),
        ..PingConfig::default()
    };
    let r = workload::ping(&mut h, &cfg, |_| {}).unwrap();
    // Each round trip survives with probability 0.8² = 0.64.
    assert!(r.received > 100 && r.received < 160, "{}", r.received);
    let expect = 100.0 * (200 - r.received) as f64 / 200.0;
    assert!((r.loss_percent() - expect).abs() < 1e-9);
}

#[test]
fn udp_echo_counts_loss_duplicates_reordering() {
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        loss: 0.02,
        duplicate: 0.02,
        reorder: 0.05,
        medium: Medium::Ip,
        ..LinkConfig::default()
    };
    let mut h = TwoHosts::new(11, link).unwrap();
    let cfg = UdpConfig {
        count: 5000,
        pps: 10_000,
        ..UdpConfig::default()
    };
    let r = workload::udp(&mut h, &cfg, |_, _| {}).unwrap();
    assert_eq!(r.sent, 5000);
    assert_eq!(r.received + r.lost, 5000);
    assert!(r.lost > 100 && r.lost < 300, "lost {}", r.lost);
    assert!(r.duplicated > 0 && r.reordered > 0);
    assert!(r.goodput_bps > 0.0);
    let (ab, ba) = h.sim.link_stats(h.link);
    assert_eq!(ab.tx_frames, 5000);
    assert!(ab.lost + ba.lost > 0);
}

#[test]
fn largest_datagram_fragments_and_reassembles_byte_exact() {
    let mut h = TwoHosts::new(5, impaired(Medium::Ethernet)).unwrap();
    let (a, b) = (h.a, h.b);
    let rx = h.sim.node_mut(b).udp_socket();
    h.sim
        .node_mut(b)
        .udp_bind(rx, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9))
        .unwrap();
    let tx = h.sim.node_mut(a).udp_socket();
    let data: Vec<u8> = (0..65_507u32).map(|i| (i * 31 % 253) as u8).collect();
    let now = h.sim.now();
    h.sim
        .node_mut(a)
        .udp_send_to(now, tx, &data, SocketAddrV4::new(h.addr_b, 9))
        .unwrap();
    h.sim.run_until(Instant::from_millis(2_000));
    let mut buf = vec![0u8; 70_000];
    let (n, from) = h.sim.node_mut(b).udp_recv_from(rx, &mut buf).unwrap();
    assert_eq!(n, data.len());
    assert!(buf[..n] == data[..], "payload differs");
    assert_eq!(from.ip(), h.addr_a);
    assert_eq!(h.sim.node(a).stats().ip_frag_creates, 45);
    assert_eq!(h.sim.node(b).stats().ip_reasm_oks, 1);
    assert_eq!(h.sim.node(b).reassembly_memory(), 0);
}

/// Run a mixed workload with every impairment on, capturing to `pcap`; return the
/// reports as text so two runs can be compared.
fn mixed_run(seed: u64, pcap: &Path) -> String {
    let link = LinkConfig {
        delay: Duration::from_millis(3),
        jitter: Duration::from_millis(2),
        loss: 0.03,
        duplicate: 0.02,
        reorder: 0.03,
        rate_bps: Some(50_000_000),
        ..LinkConfig::default()
    };
    let mut h = TwoHosts::new(seed, link).unwrap();
    h.sim.capture(h.link, pcap).unwrap();
    let p = workload::ping(
        &mut h,
        &PingConfig {
            count: 20,
            interval: Duration::from_millis(100),
            size: 3000, // fragmented
            ..PingConfig::default()
        },
        |_| {},
    )
    .unwrap();
    let u = workload::udp(
        &mut h,
        &UdpConfig {
            count: 500,
            pps: 5000,
            mode: UdpMode::Blast,
            ..UdpConfig::default()
        },
        |_, _| {},
    )
    .unwrap();
    // Something for the error paths: a closed UDP port and an unknown protocol.
    let a = h.a;
    let now = h.sim.now();
    let s = h.sim.node_mut(a).udp_socket();
    for _ in 0..3 {
        h.sim
            .node_mut(a)
            .udp_send_to(now, s, b"anyone?", SocketAddrV4::new(h.addr_b, 4444))
            .unwrap();
    }
    let raw = h.sim.node_mut(a).raw_socket(IpProtocol(253)).unwrap();
    h.sim
        .node_mut(a)
        .raw_send_to(now, raw, b"experimental", h.addr_b)
        .unwrap();
    h.sim.run_until(now + Duration::from_secs(1));
    h.sim.finish_captures().unwrap();
    let stats_a = format!("{:?}", h.sim.node(h.a).stats());
    let stats_b = format!("{:?}", h.sim.node(h.b).stats());
    format!(
        "{p:?}\n{u:?}\n{stats_a}\n{stats_b}\n{:?}",
        h.sim.link_stats(h.link)
    )
}

#[test]
fn same_seed_gives_byte_identical_run() {
    let (p1, p2, p3) = (tmp("det1.pcap"), tmp("det2.pcap"), tmp("det3.pcap"));
    let r1 = mixed_run(42, &p1);
    let r2 = mixed_run(42, &p2);
    let r3 = mixed_run(43, &p3);
    let (b1, b2, b3) = (
        std::fs::read(&p1).unwrap(),
        std::fs::read(&p2).unwrap(),
        std::fs::read(&p3).unwrap(),
    );
    assert!(b1.len() > 100_000, "capture too small: {}", b1.len());
    assert_eq!(r1, r2);
    assert!(b1 == b2, "same seed, different capture");
    assert_ne!(r1, r3);
    assert!(b1 != b3, "different seed, same capture");
    for p in [p1, p2, p3] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn tshark_finds_no_malformed_packet_or_bad_checksum() {
    let pcap = tmp("tshark.pcap");
    mixed_run(9, &pcap);
    let Some(complaints) = tshark_complaints(&pcap) else {
        return;
    };
    assert!(
        complaints.is_empty(),
        "tshark complaints:\n{}",
        complaints.join("\n")
    );
    // The check itself must be able to fail: corrupt one IPv4 header checksum.
    let mut bytes = std::fs::read(&pcap).unwrap();
    // pcap global header 24 bytes, record header 16; first frame is ARP, so walk to
    // the first IPv4 frame (EtherType 0x0800 at offset 12 of the frame).
    let mut off = 24;
    loop {
        let len = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = off + 16;
        if bytes[frame + 12..frame + 14] == [0x08, 0x00] {
            bytes[frame + 14 + 10] ^= 0xff;
            break;
        }
        off = frame + len;
    }
    let bad = tmp("tshark-bad.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    let complaints = tshark_complaints(&bad).unwrap();
    assert_eq!(
        complaints.len(),
        1,
        "corruption not detected: {complaints:?}"
    );
    let _ = std::fs::remove_file(pcap);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn three_hosts_on_a_switch_exchange_udp() {
    use berth::core::{Config, IfaceConfig, Stack};
    use berth::sim::Simulator;
    use berth::wire::EthernetAddress;

    let mut sim: Simulator<Stack> = Simulator::new(5);
    let sw = sim.add_switch();
    let mut ids = Vec::new();
    for n in 1..=3u8 {
        let mut s = Stack::new(Config {
            seed: Some(n as u64),
            ..Config::default()
        });
        s.add_interface(IfaceConfig {
            medium: berth::core::Medium::Ethernet(EthernetAddress([2, 0, 0, 0, 0, n])),
            address: format!("192.0.2.{n}/24").parse().unwrap(),
            mtu: 1500,
        })
        .unwrap();
        let id = sim.add_node(s);
        sim.attach(
            sw,
            (id, 0),
            LinkConfig {
                delay: Duration::from_millis(1),
                ..LinkConfig::default()
            },
        );
        ids.push(id);
    }
    // Host 3 listens; hosts 1 and 2 each send it a datagram.
    let rx = sim.node_mut(ids[2]).udp_socket();
    sim.node_mut(ids[2])
        .udp_bind(rx, "0.0.0.0:9".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    for (i, &id) in ids[..2].iter().enumerate() {
        let now = sim.now();
        let s = sim.node_mut(id).udp_socket();
        sim.node_mut(id)
            .udp_send_to(
                now,
                s,
                &[i as u8; 100],
                "192.0.2.3:9".parse::<std::net::SocketAddr>().unwrap(),
            )
            .unwrap();
    }
    sim.run_until(Instant::from_millis(100));
    let mut got = Vec::new();
    let mut buf = [0u8; 200];
    while let Ok((n, from)) = sim.node_mut(ids[2]).udp_recv_from(rx, &mut buf) {
        assert_eq!(n, 100);
        got.push((from.ip(), buf[0]));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (Ipv4Addr::new(192, 0, 2, 1).into(), 0),
            (Ipv4Addr::new(192, 0, 2, 2).into(), 1)
        ]
    );
    // Host 2 saw host 1's ARP broadcast but none of the unicast UDP.
    let s2 = sim.node(ids[1]).stats();
    assert_eq!(s2.udp_in_datagrams, 0);
    assert_eq!(
        s2.link_in_not_for_us, 0,
        "switch must not flood learned unicast"
    );
    // Each host resolved host 3 and no more.
    for &id in &ids[..2] {
        let n = sim.node(id).neighbors();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].1, Ipv4Addr::new(192, 0, 2, 3));
        assert_eq!(n[0].2, Some(EthernetAddress([2, 0, 0, 0, 0, 3])));
    }
}
