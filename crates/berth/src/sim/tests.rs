//! Simulator tests with a scripted probe node; all in virtual time.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

use super::*;

const BROADCAST: [u8; 6] = [0xff; 6];
/// IEEE local experimental EtherType.
const ETHERTYPE_TEST: [u8; 2] = [0x88, 0xb5];

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// An Ethernet frame carrying `seq`, padded to `len` bytes.
fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE_TEST);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(len.max(f.len()), seq as u8);
    f
}

fn seq_of(frame: &[u8]) -> u32 {
    let bytes: [u8; 4] = frame[14..18]
        .try_into()
        .expect("test frame has a sequence number");
    u32::from_be_bytes(bytes)
}

/// A test host: sends scripted frames at scheduled times via its own timer,
/// optionally ticks periodically, and records every arrival with its time.
#[derive(Default)]
struct Probe {
    mac: [u8; 6],
    /// (when, port, frame), ascending in time.
    schedule: VecDeque<(Instant, usize, Vec<u8>)>,
    outbox: VecDeque<(usize, Vec<u8>)>,
    received: Vec<(Instant, usize, Vec<u8>)>,
    /// Next tick and period of a periodic timer, if any.
    tick: Option<(Instant, Duration)>,
    ticks: u64,
}

impl Probe {
    fn new(n: u8) -> Probe {
        Probe {
            mac: mac(n),
            ..Probe::default()
        }
    }

    /// Schedules `count` frames of `len` bytes to `dst`, one every
    /// `interval` from `start`, numbered from 0.
    fn send_train(
        &mut self,
        dst: [u8; 6],
        count: u32,
        start: Instant,
        interval: Duration,
        len: usize,
    ) {
        for i in 0..count {
            let at = start + interval * i;
            self.schedule
                .push_back((at, 0, frame(dst, self.mac, i, len)));
        }
    }

    fn send_at(&mut self, at: Instant, frame: Vec<u8>) {
        self.schedule.push_back((at, 0, frame));
    }

    fn seqs(&self) -> Vec<u32> {
        self.received.iter().map(|(_, _, f)| seq_of(f)).collect()
    }
}

impl Node for Probe {
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]) {
        self.received.push((now, port, frame.to_vec()));
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<(usize, Vec<u8>)> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let send = self.schedule.front().map(|s| s.0);
        let tick = self.tick.map(|t| t.0);
        match (send, tick) {
            (Some(s), Some(t)) => Some(s.min(t)),
            (s, t) => s.or(t),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.schedule.front().is_some_and(|s| s.0 <= now) {
            if let Some((_, port, f)) = self.schedule.pop_front() {
                self.outbox.push_back((port, f));
            }
        }
        if let Some((next, period)) = self.tick {
            if next <= now {
                self.ticks += 1;
                self.tick = Some((next + period, period));
            }
        }
    }
}

/// Two probes (MACs 1 and 2) joined on port 0 by one link.
fn pair(seed: u64, cfg: LinkConfig) -> (Simulator<Probe>, NodeId, NodeId, LinkId) {
    let mut sim = Simulator::new(seed);
    let a = sim.add_node(Probe::new(1));
    let b = sim.add_node(Probe::new(2));
    let link = sim.connect((a, 0), (b, 0), cfg);
    (sim, a, b, link)
}

fn run_to_idle(sim: &mut Simulator<Probe>) {
    // Bounded so a scheduling bug fails the test instead of hanging it.
    for _ in 0..10_000_000 {
        if sim.step().is_none() {
            return;
        }
    }
    panic!("simulation did not go idle");
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn inversions(seqs: &[u32]) -> usize {
    seqs.windows(2).filter(|w| w[1] < w[0]).count()
}

#[test]
fn empty_simulator_is_idle() {
    let mut sim: Simulator<Probe> = Simulator::new(1);
    assert_eq!(sim.next_event_time(), None);
    assert_eq!(sim.step(), None);
    sim.run_until(Instant::from_millis(5));
    assert_eq!(sim.now(), Instant::from_millis(5));
}

#[test]
fn delay_is_honoured_exactly() {
    let cfg = LinkConfig {
        delay: ms(7),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(1, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 100, Instant::ZERO, ms(1), 100);
    run_to_idle(&mut sim);

    let got = &sim.node(b).received;
    assert_eq!(got.len(), 100);
    for (i, (at, port, f)) in got.iter().enumerate() {
        assert_eq!(*port, 0);
        assert_eq!(seq_of(f), i as u32);
        assert_eq!(*at, Instant::from_millis(i as u64 + 7));
    }
    let (ab, ba) = sim.link_stats(link);
    assert_eq!(
        (ab.tx_frames, ab.tx_bytes, ab.delivered),
        (100, 10_000, 100)
    );
    assert_eq!(ba, LinkStats::default());
    assert_eq!(sim.now(), Instant::from_millis(99 + 7));
}

#[test]
fn jitter_stays_within_bounds() {
    let cfg = LinkConfig {
        delay: ms(5),
        jitter: ms(2),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(2, cfg);
    let interval = us(100);
    sim.node_mut(a)
        .send_train(mac(2), 2000, Instant::ZERO, interval, 64);
    run_to_idle(&mut sim);

    let got = &sim.node(b).received;
    assert_eq!(got.len(), 2000);
    let latencies: Vec<Duration> = got
        .iter()
        .map(|(at, _, f)| *at - (Instant::ZERO + interval * seq_of(f)))
        .collect();
    assert!(latencies.iter().all(|&l| l >= ms(5) && l <= ms(7)));
    // The draws cover the whole interval.
    assert!(latencies.iter().any(|&l| l < ms(5) + us(100)));
    assert!(latencies.iter().any(|&l| l > ms(7) - us(100)));
    // Jitter far above the spacing lets frames overtake each other, but no
    // frame was held back by the reorder impairment.
    assert!(inversions(&sim.node(b).seqs()) > 0);
    assert_eq!(sim.link_stats(link).0.reordered, 0);
}

#[test]
fn loss_rate_matches_configuration() {
    let cfg = LinkConfig {
        loss: 0.1,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(3, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 10_000, Instant::ZERO, us(10), 64);
    run_to_idle(&mut sim);

    let (ab, _) = sim.link_stats(link);
    let received = sim.node(b).received.len() as u64;
    assert_eq!(ab.tx_frames, 10_000);
    assert_eq!(ab.delivered, received);
    assert_eq!(ab.lost + ab.delivered, 10_000);
    // Expected 1000 lost, standard deviation 30: allow 5 sigma.
    assert!((850..=1150).contains(&ab.lost), "lost {}", ab.lost);
}

#[test]
fn duplicates_are_delivered_and_counted() {
    let cfg = LinkConfig {
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(4, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 10_000, Instant::ZERO, us(10), 64);
    run_to_idle(&mut sim);

    let (ab, _) = sim.link_stats(link);
    assert!(
        (350..=650).contains(&ab.duplicated),
        "duplicated {}",
        ab.duplicated
    );
    let seqs = sim.node(b).seqs();
    assert_eq!(seqs.len() as u64, 10_000 + ab.duplicated);
    assert_eq!(ab.delivered, seqs.len() as u64);
    // A copy arrives right after its original.
    let doubled = seqs.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    assert_eq!(doubled, ab.duplicated);
}

#[test]
fn reorder_holds_frames_back() {
    let cfg = LinkConfig {
        delay: ms(1),
        reorder: 0.1,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(5, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 1000, Instant::ZERO, us(100), 64);
    run_to_idle(&mut sim);

    let (ab, _) = sim.link_stats(link);
    assert!(
        (50..=150).contains(&ab.reordered),
        "reordered {}",
        ab.reordered
    );
    let seqs = sim.node(b).seqs();
    assert_eq!(seqs.len(), 1000);
    assert!(inversions(&seqs) > 0);
    // A held-back frame is late by exactly max(delay, 1 ms) more.
    for (at, _, f) in &sim.node(b).received {
        let sent = Instant::ZERO + us(100) * seq_of(f);
        let latency = *at - sent;
        assert!(latency == ms(1) || latency == ms(2), "latency {latency:?}");
    }
}

#[test]
fn no_reordering_without_impairments() {
    for cfg in [
        LinkConfig::default(),
        LinkConfig {
            delay: ms(3),
            rate_bps: Some(100_000_000),
            ..LinkConfig::default()
        },
    ] {
        let (mut sim, a, b, link) = pair(6, cfg);
        sim.node_mut(a)
            .send_train(mac(2), 5000, Instant::ZERO, us(7), 200);
        run_to_idle(&mut sim);
        let seqs = sim.node(b).seqs();
        assert_eq!(seqs, (0..5000).collect::<Vec<u32>>());
        let (ab, _) = sim.link_stats(link);
        assert_eq!(ab.reordered + ab.lost + ab.duplicated + ab.queue_drops, 0);
    }
}

#[test]
fn rate_limit_serializes_frames() {
    // 1250 bytes at 10 Mbit/s take exactly 1 ms each.
    let cfg = LinkConfig {
        rate_bps: Some(10_000_000),
        queue_limit_bytes: 2_000_000,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, _) = pair(7, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 1000, Instant::ZERO, Duration::ZERO, 1250);
    run_to_idle(&mut sim);

    let got = &sim.node(b).received;
    assert_eq!(got.len(), 1000);
    for (i, (at, _, _)) in got.iter().enumerate() {
        assert_eq!(*at, Instant::from_millis(i as u64 + 1));
    }
    assert_eq!(sim.now(), Instant::from_millis(1000));
}

#[test]
fn rate_and_delay_add_up() {
    let cfg = LinkConfig {
        delay: ms(20),
        rate_bps: Some(1_000_000),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, _) = pair(7, cfg);
    // 125 bytes at 1 Mbit/s: 1 ms on the wire, then 20 ms of propagation.
    sim.node_mut(a)
        .send_train(mac(2), 3, Instant::ZERO, Duration::ZERO, 125);
    run_to_idle(&mut sim);
    let times: Vec<Instant> = sim.node(b).received.iter().map(|r| r.0).collect();
    assert_eq!(times, [21, 22, 23].map(Instant::from_millis).to_vec());
}

#[test]
fn full_queue_tail_drops() {
    // 1 Mbit/s: a 1250-byte frame takes 10 ms; the queue holds 10 of them.
    let cfg = LinkConfig {
        rate_bps: Some(1_000_000),
        queue_limit_bytes: 12_500,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(8, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 100, Instant::ZERO, Duration::ZERO, 1250);
    // Once the queue has drained, frames pass again.
    sim.node_mut(a)
        .send_at(Instant::from_millis(200), frame(mac(2), mac(1), 100, 1250));
    run_to_idle(&mut sim);

    let (ab, _) = sim.link_stats(link);
    assert_eq!(ab.queue_drops, 90);
    assert_eq!(ab.delivered, 11);
    assert_eq!(
        sim.node(b).seqs(),
        (0..10).chain([100]).collect::<Vec<u32>>()
    );
    assert_eq!(sim.node(b).received[10].0, Instant::from_millis(210));
}

#[test]
fn oversized_frames_are_dropped() {
    for (medium, max) in [(Medium::Ethernet, 1514), (Medium::Ip, 1500)] {
        let cfg = LinkConfig {
            medium,
            ..LinkConfig::default()
        };
        let (mut sim, a, b, link) = pair(9, cfg);
        sim.node_mut(a)
            .send_at(Instant::ZERO, frame(mac(2), mac(1), 0, max));
        sim.node_mut(a)
            .send_at(Instant::ZERO, frame(mac(2), mac(1), 1, max + 1));
        run_to_idle(&mut sim);
        assert_eq!(sim.node(b).seqs(), vec![0]);
        let (ab, _) = sim.link_stats(link);
        assert_eq!((ab.tx_frames, ab.mtu_drops, ab.delivered), (2, 1, 1));
    }
}

#[test]
fn switch_learns_and_stops_flooding() {
    let mut sim = Simulator::new(10);
    let sw = sim.add_switch();
    let cfg = LinkConfig {
        delay: ms(1),
        ..LinkConfig::default()
    };
    let ids: Vec<NodeId> = (1..=3).map(|n| sim.add_node(Probe::new(n))).collect();
    let links: Vec<LinkId> = ids
        .iter()
        .map(|&id| sim.attach(sw, (id, 0), cfg.clone()))
        .collect();
    let (a, b, c) = (ids[0], ids[1], ids[2]);

    // A→B (B unknown: flooded), B→A (A learned: unicast), A→B (unicast),
    // then a broadcast that must reach everyone.
    sim.node_mut(a)
        .send_at(Instant::ZERO, frame(mac(2), mac(1), 0, 64));
    sim.node_mut(b)
        .send_at(Instant::from_millis(10), frame(mac(1), mac(2), 1, 64));
    sim.node_mut(a)
        .send_at(Instant::from_millis(20), frame(mac(2), mac(1), 2, 64));
    sim.node_mut(a)
        .send_at(Instant::from_millis(30), frame(BROADCAST, mac(1), 3, 64));
    run_to_idle(&mut sim);

    assert_eq!(sim.node(a).seqs(), vec![1]);
    assert_eq!(sim.node(b).seqs(), vec![0, 2, 3]);
    assert_eq!(sim.node(c).seqs(), vec![0, 3]);
    // Two hops of 1 ms each.
    assert_eq!(sim.node(b).received[0].0, Instant::from_millis(2));
    let stats = sim.switch_stats(sw);
    assert_eq!(
        (
            stats.received,
            stats.flooded,
            stats.forwarded,
            stats.filtered
        ),
        (4, 2, 2, 0)
    );
    // Toward C only the unknown-destination flood and the broadcast.
    assert_eq!(sim.link_stats(links[2]).1.delivered, 2);
}

#[test]
fn switch_drops_runts_and_filters_same_port() {
    let mut sim = Simulator::new(11);
    let sw = sim.add_switch();
    let a = sim.add_node(Probe::new(1));
    let b = sim.add_node(Probe::new(2));
    sim.attach(sw, (a, 0), LinkConfig::default());
    sim.attach(sw, (b, 0), LinkConfig::default());
    sim.node_mut(a).send_at(Instant::ZERO, vec![0; 10]);
    // A frame addressed to its own sender's port is not sent back.
    sim.node_mut(a)
        .send_at(Instant::from_millis(1), frame(mac(2), mac(1), 0, 64));
    sim.node_mut(a)
        .send_at(Instant::from_millis(2), frame(mac(1), mac(1), 1, 64));
    run_to_idle(&mut sim);
    let stats = sim.switch_stats(sw);
    assert_eq!((stats.runts, stats.filtered, stats.flooded), (1, 1, 1));
    assert!(sim.node(a).received.is_empty());
}

#[test]
fn full_duplex_directions_are_independent() {
    let (mut sim, a, b, link) = pair(12, LinkConfig::default());
    sim.set_link_config(
        link,
        LinkDir::BToA,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    sim.node_mut(a)
        .send_train(mac(2), 50, Instant::ZERO, ms(1), 64);
    sim.node_mut(b)
        .send_train(mac(1), 40, Instant::ZERO, ms(1), 64);
    run_to_idle(&mut sim);
    let (ab, ba) = sim.link_stats(link);
    assert_eq!((ab.tx_frames, ab.delivered, ab.lost), (50, 50, 0));
    assert_eq!((ba.tx_frames, ba.delivered, ba.lost), (40, 0, 40));
    assert_eq!(sim.link_config(link, LinkDir::BToA).loss, 1.0);
}

#[test]
fn unconnected_port_drops_are_counted() {
    let (mut sim, a, _, _) = pair(13, LinkConfig::default());
    let f = frame(mac(2), mac(1), 0, 64);
    sim.node_mut(a).schedule.push_back((Instant::ZERO, 3, f));
    run_to_idle(&mut sim);
    assert_eq!(sim.unconnected_drops(), 1);
}

#[test]
fn virtual_clock_jumps_between_timers() {
    let mut sim = Simulator::new(14);
    let a = sim.add_node(Probe::new(1));
    sim.node_mut(a).tick = Some((Instant::ZERO, Duration::from_secs(1)));
    // Ten simulated minutes, one event per second: 600 steps, not 600 s.
    sim.run_until(Instant::ZERO + Duration::from_secs(600));
    assert_eq!(sim.node(a).ticks, 601);
    assert_eq!(sim.now(), Instant::ZERO + Duration::from_secs(600));
    assert_eq!(
        sim.next_event_time(),
        Some(Instant::ZERO + Duration::from_secs(601))
    );
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.node(a).ticks, 601);
    assert_eq!(sim.now(), Instant::from_millis(600_500));
}

#[test]
fn overdue_timer_never_moves_the_clock_back() {
    let mut sim = Simulator::new(15);
    let a = sim.add_node(Probe::new(1));
    sim.run_until(Instant::from_millis(100));
    sim.node_mut(a).tick = Some((Instant::from_millis(40), Duration::from_millis(1000)));
    assert_eq!(sim.next_event_time(), Some(Instant::from_millis(100)));
    assert_eq!(sim.step(), Some(Instant::from_millis(100)));
    assert_eq!(sim.node(a).ticks, 1);
}

#[test]
fn flush_sends_what_the_application_queued() {
    let cfg = LinkConfig {
        delay: ms(4),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, _) = pair(16, cfg);
    sim.run_until(Instant::from_millis(10));
    sim.node_mut(a)
        .outbox
        .push_back((0, frame(mac(2), mac(1), 9, 64)));
    sim.flush();
    assert_eq!(sim.frames_in_flight(), 1);
    run_to_idle(&mut sim);
    assert_eq!(sim.node(b).received[0].0, Instant::from_millis(14));
}

/// A writer the test can read back after the simulator owns it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("buffer lock").clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every impairment at once, traffic both ways; returns the pcap bytes.
fn impaired_run(seed: u64) -> Vec<u8> {
    let cfg = LinkConfig {
        delay: ms(3),
        jitter: ms(2),
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        rate_bps: Some(50_000_000),
        queue_limit_bytes: 20_000,
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(seed, cfg);
    let buf = SharedBuf::default();
    sim.capture_to(link, buf.clone()).expect("capture starts");
    sim.node_mut(a)
        .send_train(mac(2), 2000, Instant::ZERO, us(50), 1000);
    sim.node_mut(b)
        .send_train(mac(1), 500, Instant::ZERO, us(200), 80);
    run_to_idle(&mut sim);
    sim.finish_captures().expect("capture flushes");
    buf.bytes()
}

#[test]
fn same_seed_gives_identical_pcap() {
    let first = impaired_run(77);
    assert!(first.len() > 24);
    assert_eq!(first, impaired_run(77));
    assert_ne!(first, impaired_run(78));
}

fn temp_pcap(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("berth-sim-{}-{name}.pcap", std::process::id()))
}

#[test]
fn pcap_file_parses_back() {
    for (medium, datalink) in [
        (Medium::Ethernet, DataLink::ETHERNET),
        (Medium::Ip, DataLink::RAW),
    ] {
        let cfg = LinkConfig {
            delay: ms(2),
            duplicate: 0.2,
            loss: 0.2,
            medium,
            ..LinkConfig::default()
        };
        let (mut sim, a, b, link) = pair(17, cfg);
        let path = temp_pcap(&format!("{medium:?}"));
        sim.capture(link, &path).expect("capture file");
        sim.node_mut(a)
            .send_train(mac(2), 300, Instant::ZERO, ms(1), 100);
        sim.node_mut(b)
            .send_train(mac(1), 100, Instant::ZERO, ms(3), 60);
        run_to_idle(&mut sim);
        sim.finish_captures().expect("capture flushes");

        let file = std::fs::File::open(&path).expect("capture exists");
        let mut reader = PcapReader::new(file).expect("pcap header");
        assert_eq!(reader.header().datalink, datalink);
        let mut count = 0u64;
        let mut last = std::time::Duration::ZERO;
        while let Some(packet) = reader.next_packet() {
            let packet = packet.expect("valid record");
            // Timestamps are virtual send times: whole milliseconds here.
            assert_eq!(packet.timestamp.subsec_micros() % 1000, 0);
            assert!(packet.timestamp >= last);
            last = packet.timestamp;
            count += 1;
        }
        std::fs::remove_file(&path).expect("remove capture");

        let (ab, ba) = sim.link_stats(link);
        assert!(ab.duplicated > 0 && ab.lost > 0);
        assert_eq!(
            count,
            ab.tx_frames + ba.tx_frames + ab.duplicated + ba.duplicated
        );
    }
}

#[test]
fn boxed_nodes_of_different_types_mix() {
    /// Answers nothing, counts arrivals.
    #[derive(Default)]
    struct Sink(u64);
    impl Node for Sink {
        fn receive(&mut self, _now: Instant, _port: usize, _frame: &[u8]) {
            self.0 += 1;
        }
        fn poll_transmit(&mut self, _now: Instant) -> Option<(usize, Vec<u8>)> {
            None
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            None
        }
        fn handle_timeout(&mut self, _now: Instant) {}
    }

    let mut sim: Simulator<Box<dyn Node>> = Simulator::new(18);
    let mut probe = Probe::new(1);
    probe.send_train(mac(2), 5, Instant::ZERO, ms(1), 64);
    let a = sim.add_node(Box::new(probe));
    let b = sim.add_node(Box::new(Sink::default()));
    let link = sim.connect((a, 0), (b, 0), LinkConfig::default());
    sim.run_until(Instant::from_millis(10));
    assert_eq!(sim.link_stats(link).0.delivered, 5);
}

#[test]
fn link_down_drops_offered_and_in_flight_frames() {
    let cfg = LinkConfig {
        delay: ms(10),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, link) = pair(1, cfg);
    // Frames at 0, 1, …, 29 ms; each takes 10 ms to cross.
    sim.node_mut(a)
        .send_train(mac(2), 30, Instant::ZERO, ms(1), 64);
    sim.run_until(Instant::from_millis(5) + us(500));
    assert!(sim.link_is_up(link));
    // Down at 5.5 ms: frames 0..=5 are on the wire and lost.
    sim.set_link_up(link, false);
    sim.set_link_up(link, false); // idempotent: no second epoch
    assert!(!sim.link_is_up(link));
    sim.run_until(Instant::from_millis(19) + us(500));
    // Up at 19.5 ms: frames 6..=19 were offered while down.
    sim.set_link_up(link, true);
    run_to_idle(&mut sim);

    assert_eq!(sim.node(b).seqs(), (20..30).collect::<Vec<u32>>());
    let (ab, ba) = sim.link_stats(link);
    assert_eq!(ab.tx_frames, 30);
    assert_eq!(ab.down_drops, 20);
    assert_eq!(ab.delivered, 10);
    assert_eq!(ba, LinkStats::default());
}

#[test]
fn link_down_cuts_switched_paths_both_ways() {
    let mut sim = Simulator::new(3);
    let a = sim.add_node(Probe::new(1));
    let b = sim.add_node(Probe::new(2));
    let sw = sim.add_switch();
    let la = sim.attach(sw, (a, 0), LinkConfig::default());
    let _lb = sim.attach(sw, (b, 0), LinkConfig::default());
    sim.set_link_up(la, false);
    sim.node_mut(a)
        .send_at(Instant::ZERO, frame(mac(2), mac(1), 1, 64));
    sim.node_mut(b)
        .send_at(Instant::from_millis(1), frame(mac(1), mac(2), 2, 64));
    run_to_idle(&mut sim);
    assert!(sim.node(a).received.is_empty());
    assert!(sim.node(b).received.is_empty());
    let (to_sw, from_sw) = sim.link_stats(la);
    assert_eq!((to_sw.down_drops, from_sw.down_drops), (1, 1));

    sim.set_link_up(la, true);
    sim.node_mut(a)
        .send_at(Instant::from_millis(2), frame(mac(2), mac(1), 3, 64));
    run_to_idle(&mut sim);
    assert_eq!(sim.node(b).seqs(), vec![3]);
}

#[test]
fn replaced_node_gets_later_frames() {
    let cfg = LinkConfig {
        delay: ms(10),
        ..LinkConfig::default()
    };
    let (mut sim, a, b, _link) = pair(1, cfg);
    sim.node_mut(a)
        .send_train(mac(2), 4, Instant::ZERO, ms(10), 64);
    sim.run_until(Instant::from_millis(25));
    let old = sim.replace_node(b, Probe::new(2));
    run_to_idle(&mut sim);
    assert_eq!(old.seqs(), vec![0, 1]);
    assert_eq!(sim.node(b).seqs(), vec![2, 3]);
}
