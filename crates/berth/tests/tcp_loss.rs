//! Loss detection and recovery between two berth stacks in the simulator, on
//! links with enough delay that round trips dwarf the timer granularity: tail
//! loss probes (RFC 8985 §7), RACK's reordering window and D-SACK undo
//! (RFC 8985 §6.2, RFC 2883, RFC 3708), Limited Transmit (RFC 3042).
//!
//! Each host sits behind a tap that sees every frame arriving at it and may
//! deliver it, drop it or hold it back for a while (so later frames overtake
//! it); every frame sent and every frame delivered is logged with its time.
//! A is 192.0.2.1 (the client), B is 192.0.2.2 (the server, port 80).

use berth::core::{Config, IfaceConfig, IfaceId, SocketHandle, Stack, TcpConfig, TcpInfo};
use berth::sim::{Duration, Instant, LinkConfig, Medium, Node, NodeId, Simulator};
use berth::wire::{Ipv4Packet, Ipv4Repr, SeqNumber, TcpPacket, TcpRepr};

/// Default TCP without pacing, for tests that check which segment a given ACK
/// releases.
fn unpaced() -> TcpConfig {
    TcpConfig {
        pacing: false,
        ..TcpConfig::default()
    }
}
use std::cell::RefCell;
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

const A: usize = 0;
const B: usize = 1;
const ADDR: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];

/// Sent by a host, or delivered to its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Tx,
    Rx,
}

/// A TCP segment on the wire.
#[derive(Debug, Clone)]
struct Pkt {
    at: Instant,
    ev: Ev,
    /// The host that sent it.
    from: usize,
    seq: SeqNumber,
    ack: SeqNumber,
    len: usize,
    sack: Vec<(SeqNumber, SeqNumber)>,
}

impl Pkt {
    fn end(&self) -> SeqNumber {
        self.seq + self.len
    }
}

fn parse(frame: &[u8], at: Instant, ev: Ev, from: usize) -> Option<Pkt> {
    let ip = Ipv4Packet::new_checked(frame).ok()?;
    let ipr = Ipv4Repr::parse(&ip).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let r = TcpRepr::parse(&tcp, &ipr.src_addr, &ipr.dst_addr).ok()?;
    Some(Pkt {
        at,
        ev,
        from,
        seq: r.seq_number,
        ack: r.ack_number,
        len: r.payload.len(),
        sack: r.sack_ranges.iter().flatten().copied().collect(),
    })
}

/// What happens to a frame arriving at a host.
enum Fate {
    Deliver,
    Drop,
    /// Deliver it this much later.
    Hold(Duration),
}

type Tap = Box<dyn FnMut(&Pkt) -> Fate>;
type Log = Rc<RefCell<Vec<Pkt>>>;

/// A berth stack behind a tap on its input.
struct Host {
    id: usize,
    stack: Stack,
    tap: Option<Tap>,
    /// Frames held back: (due, arrival order, frame).
    held: Vec<(Instant, u64, Vec<u8>)>,
    arrivals: u64,
    log: Log,
}

impl Host {
    fn deliver(&mut self, now: Instant, frame: &[u8]) {
        if let Some(p) = parse(frame, now, Ev::Rx, 1 - self.id) {
            self.log.borrow_mut().push(p);
        }
        self.stack.receive(now, IfaceId(0), frame);
    }
}

impl Node for Host {
    fn receive(&mut self, now: Instant, _port: usize, frame: &[u8]) {
        let fate = match (parse(frame, now, Ev::Rx, 1 - self.id), self.tap.as_mut()) {
            (Some(p), Some(tap)) => tap(&p),
            _ => Fate::Deliver,
        };
        match fate {
            Fate::Deliver => self.deliver(now, frame),
            Fate::Drop => {}
            Fate::Hold(d) => {
                self.held.push((now + d, self.arrivals, frame.to_vec()));
                self.arrivals += 1;
            }
        }
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        let t = self.stack.poll_transmit(now)?;
        if let Some(p) = parse(&t.frame, now, Ev::Tx, self.id) {
            self.log.borrow_mut().push(p);
        }
        Some((t.iface.0, t.frame))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let held = self.held.iter().map(|h| h.0).min();
        match (self.stack.poll_timeout(), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.held.sort_by_key(|h| (h.0, h.1));
        while self.held.first().is_some_and(|h| h.0 <= now) {
            let (_, _, frame) = self.held.remove(0);
            self.deliver(now, &frame);
        }
        if self.stack.poll_timeout().is_some_and(|t| t <= now) {
            self.stack.handle_timeout(now);
        }
    }
}

struct World {
    sim: Simulator<Host>,
    ids: [NodeId; 2],
    log: Log,
}

/// A bare-IP link with `delay` each way and no impairments.
fn link(delay: Duration) -> LinkConfig {
    LinkConfig {
        delay,
        medium: Medium::Ip,
        ..LinkConfig::default()
    }
}

impl World {
    fn new(seed: u64, tcp: TcpConfig, link: LinkConfig) -> World {
        let log: Log = Rc::default();
        let mut sim = Simulator::new(seed);
        let mut ids = Vec::new();
        for id in [A, B] {
            let mut stack = Stack::new(Config {
                seed: Some(seed * 2 + id as u64),
                tcp: tcp.clone(),
                ..Config::default()
            });
            stack
                .add_interface(IfaceConfig {
                    medium: berth::core::Medium::Ip,
                    address: berth::wire::Ipv4Cidr::new(ADDR[id], 24).unwrap(),
                    mtu: link.mtu,
                })
                .unwrap();
            ids.push(sim.add_node(Host {
                id,
                stack,
                tap: None,
                held: Vec::new(),
                arrivals: 0,
                log: log.clone(),
            }));
        }
        sim.connect((ids[A], 0), (ids[B], 0), link);
        World {
            sim,
            ids: [ids[A], ids[B]],
            log,
        }
    }

    fn now(&self) -> Instant {
        self.sim.now()
    }

    fn stack(&mut self, h: usize) -> &mut Stack {
        &mut self.sim.node_mut(self.ids[h]).stack
    }

    fn info(&self, h: usize, sock: SocketHandle) -> TcpInfo {
        self.sim.node(self.ids[h]).stack.tcp_info(sock).unwrap()
    }

    fn set_tap(&mut self, h: usize, tap: impl FnMut(&Pkt) -> Fate + 'static) {
        self.sim.node_mut(self.ids[h]).tap = Some(Box::new(tap));
    }

    /// Frames held back by the tap of `h` so far.
    fn held_count(&self, h: usize) -> u64 {
        self.sim.node(self.ids[h]).arrivals
    }

    fn step(&mut self) {
        assert!(self.sim.step().is_some(), "nothing pending");
    }

    /// A connects to B's listener; returns (A's socket, B's accepted socket).
    fn connect(&mut self) -> (SocketHandle, SocketHandle) {
        let l = self.stack(B).tcp_socket();
        self.stack(B)
            .tcp_bind(l, SocketAddrV4::new(ADDR[B], 80))
            .unwrap();
        self.stack(B).tcp_listen(l, 4).unwrap();
        let c = self.stack(A).tcp_socket();
        let now = self.now();
        self.stack(A)
            .tcp_connect(now, c, SocketAddrV4::new(ADDR[B], 80))
            .unwrap();
        let limit = now + Duration::from_secs(10);
        loop {
            if let Ok((s, _)) = self.stack(B).tcp_accept(l) {
                return (c, s);
            }
            assert!(self.now() < limit, "no connection");
            self.step();
        }
    }

    /// Read everything queued on (h, sock) into `into`.
    fn read(&mut self, h: usize, sock: SocketHandle, into: &mut Vec<u8>) {
        let now = self.now();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = self.stack(h).tcp_recv(now, sock, &mut buf) {
            if n == 0 {
                break;
            }
            into.extend_from_slice(&buf[..n]);
        }
    }

    /// `from` sends all of `data` on `tx`, `to` reads it on `rx`; `each` runs
    /// after every simulator step. Returns what was read (all of it, or what
    /// arrived within `limit`).
    fn transfer(
        &mut self,
        (from, tx): (usize, SocketHandle),
        (to, rx): (usize, SocketHandle),
        data: &[u8],
        limit: Duration,
        mut each: impl FnMut(&mut World),
    ) -> Vec<u8> {
        let deadline = self.now() + limit;
        let mut sent = 0;
        let mut got = Vec::new();
        while got.len() < data.len() && self.now() < deadline {
            let now = self.now();
            while sent < data.len() {
                match self.stack(from).tcp_send(now, tx, &data[sent..]) {
                    Ok(n) if n > 0 => sent += n,
                    _ => break,
                }
            }
            self.step();
            self.read(to, rx, &mut got);
            each(self);
        }
        got
    }

    fn log(&self) -> Vec<Pkt> {
        self.log.borrow().clone()
    }
}

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 131 + salt as usize * 7 + i / 251) % 251) as u8)
        .collect()
}

/// xorshift64*, for the taps' random choices (fixed seeds, reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A 10-segment response whose last 3 segments are lost is repaired by a tail
/// loss probe (RFC 8985 §7): the probe (the last segment again) leaves 2·SRTT
/// (+ 2 ms, flight > 1 segment) after the last ACK, its SACK lets RACK mark the
/// other two lost at once, and everything is there 1.5 RTT after the probe —
/// long before a retransmission timeout (≥ 200 ms after that ACK) would fire.
/// With `tlp: false` the tail waits for the RTO.
#[test]
fn tail_loss_is_repaired_by_a_probe_not_a_timeout() {
    let d = Duration::from_millis(25);
    let rtt = d * 2;
    // Unpaced, so the response leaves as one window (pacing has its own test).
    let mut w = World::new(1, unpaced(), link(d));
    let (c, s) = w.connect();
    let mss = w.info(B, s).snd_mss;
    // A asks, B answers with exactly 10 full segments (its initial window).
    let now = w.now();
    w.stack(A).tcp_send(now, c, b"GET /tail\r\n\r\n").unwrap();
    let mut req = Vec::new();
    while req.len() < 13 {
        w.step();
        w.read(B, s, &mut req);
    }
    // Drop the first transmission of segments 8, 9 and 10 on their way to A.
    let mut first: Option<SeqNumber> = None;
    let mut dropped = HashSet::new();
    w.set_tap(A, move |p| {
        if p.from == B && p.len > 0 {
            let f = *first.get_or_insert(p.seq);
            if p.seq >= f + 7 * mss && dropped.insert(p.seq) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    let response = pattern(10 * mss, 1);
    let now = w.now();
    assert_eq!(w.stack(B).tcp_send(now, s, &response).unwrap(), 10 * mss);
    let mut got = Vec::new();
    let limit = now + Duration::from_secs(5);
    while got.len() < response.len() && w.now() < limit {
        w.step();
        w.read(A, c, &mut got);
    }
    let done = w.now();
    assert!(
        got == response,
        "byte-exact ({} of {})",
        got.len(),
        response.len()
    );
    assert_eq!(w.info(B, s).rto_events, 0, "no retransmission timeout");
    assert_eq!(w.stack(B).stats().tcp_rto_events, 0);

    let log = w.log();
    let data: Vec<&Pkt> = log
        .iter()
        .filter(|p| p.ev == Ev::Tx && p.from == B && p.len > 0)
        .collect();
    let sent_at = data[0].at;
    let base = data[0].seq;
    assert!(
        data[..10].iter().all(|p| p.at == sent_at),
        "the response leaves as one initial window"
    );
    // The probe: B's first retransmission, the last segment again.
    let probe = data[10];
    assert_eq!(
        probe.seq,
        base + 9 * mss,
        "the probe resends the last segment"
    );
    let last_ack = log
        .iter()
        .filter(|p| p.ev == Ev::Rx && p.from == A && p.len == 0 && p.at < probe.at)
        .map(|p| p.at)
        .max()
        .unwrap();
    let pto = probe.at - last_ack;
    let repair = done - probe.at;
    eprintln!(
        "tail loss, RTT {:.0} ms: response sent at {sent_at}, last ACK +{:.1} ms, probe +{:.1} ms \
         (PTO {:.1} ms after the ACK), complete +{:.1} ms ({:.1} ms after the probe)",
        ms(rtt),
        ms(last_ack - sent_at),
        ms(probe.at - sent_at),
        ms(pto),
        ms(done - sent_at),
        ms(repair)
    );
    assert!(
        pto >= rtt * 2 && pto <= rtt * 2 + Duration::from_millis(3),
        "PTO = 2·SRTT + 2 ms, got {pto:?}"
    );
    // Probe → SACK (1 RTT) → segment 8 again; its ACK (1 RTT) → segment 9
    // (½ RTT): PRR lets one segment out on the ACK that enters recovery
    // without advancing SND.UNA, then one more per delivered, as Linux's
    // tcp_cwnd_reduction does. 2½ RTT, where the RTO alone would take 200 ms
    // before anything was resent.
    assert!(
        repair <= rtt * 5 / 2 + Duration::from_millis(2),
        "repaired {repair:?} after the probe"
    );
    let retrans: Vec<SeqNumber> = data[10..].iter().map(|p| p.seq).collect();
    assert_eq!(
        retrans,
        vec![base + 9 * mss, base + 7 * mss, base + 8 * mss],
        "probe, then exactly the two holes"
    );
    // The probe left long before an RTO could (≥ rto_min = 200 ms after the
    // last ACK), and the repair needed none.
    assert!(probe.at < last_ack + Duration::from_millis(200));
    let info = w.info(B, s);
    assert_eq!(info.total_retrans, 3);
    assert_eq!(info.reord_seen, 0, "nothing was reordered");
}

/// 3 % of the data segments arrive late, by up to a quarter of the RTT, and
/// nothing is lost. The first late segment, passed by dozens, costs a spurious
/// retransmission (RACK's window is zero while no reordering was seen); the
/// D-SACK undoes the reduction and widens the window, which from then on
/// covers every late segment: the second half of a long transfer retransmits
/// nothing, and each late segment counts in reord_seen. With `rack: false`
/// (RFC 6675, three duplicate ACKs) late segments keep being retransmitted.
#[test]
fn reordering_within_a_quarter_rtt_stops_causing_retransmissions() {
    let d = Duration::from_millis(20);
    let quarter = d / 2;
    let mut w = World::new(2, TcpConfig::default(), link(d));
    let (c, s) = w.connect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = 0;
    w.set_tap(B, move |p| {
        if p.from == A && p.len > 0 {
            n += 1;
        }
        // From the 1000th segment on: the window is full (the receive buffer's
        // 180 segments a round trip), so a late segment is passed by dozens.
        if p.from == A && p.len > 0 && n == 1001 {
            return Fate::Hold(quarter);
        }
        if p.from == A && p.len > 0 && n > 1001 && rng.unit() < 0.03 {
            // Uniform in [0.1 ms, RTT/4].
            let us = 100 + (rng.next() % (quarter.as_micros() as u64 - 99));
            return Fate::Hold(Duration::from_micros(us));
        }
        Fate::Deliver
    });
    let data = pattern(16 << 20, 2);
    let half = data.len() as u64 / 2;
    let mut at_half: Option<(u64, u64, Instant)> = None;
    let got = w.transfer((A, c), (B, s), &data, Duration::from_secs(60), |w| {
        if at_half.is_none() {
            let i = w.info(A, c);
            if i.bytes_acked >= half {
                at_half = Some((i.total_retrans, w.held_count(B), w.now()));
            }
        }
    });
    assert!(got == data, "byte-exact");
    let info = w.info(A, c);
    let (retrans_half, held_half, t_half) = at_half.unwrap();
    let held = w.held_count(B);
    eprintln!(
        "reordering: {held} of {} segments held (≤ {:.0} ms, RTT {:.0} ms); retransmissions {} \
         (first half {retrans_half}, second half {}), reord_seen {}, dsack_dups {}, \
         recoveries {}, half-way at {t_half}, done at {}",
        w.log()
            .iter()
            .filter(|p| p.ev == Ev::Tx && p.from == A && p.len > 0)
            .count(),
        ms(quarter),
        ms(d * 2),
        info.total_retrans,
        info.total_retrans - retrans_half,
        info.reord_seen,
        info.dsack_dups,
        info.recoveries,
        w.now(),
    );
    assert!(held - held_half > 100, "the second half was reordered too");
    assert!(
        retrans_half > 0 && info.dsack_dups > 0,
        "the first late segment cost a retransmission"
    );
    assert!(info.reord_seen > 100, "reordering seen, each time");
    assert_eq!(
        info.total_retrans, retrans_half,
        "no retransmission in the second half"
    );
    assert_eq!(info.rto_events, 0);
}

/// One segment overtaken by the rest of its flight: with no reordering seen
/// yet RACK's window is zero, so the segment is retransmitted and the window
/// cut. The original arrives first, the receiver reports the retransmission
/// in a D-SACK (RFC 2883), and the sender undoes the reduction (RFC 3708):
/// ssthresh back to what it was, cwnd at least what it was.
#[test]
fn spurious_rack_retransmission_is_undone_by_dsack() {
    let d = Duration::from_millis(20);
    let mut w = World::new(3, TcpConfig::default(), link(d));
    let (c, s) = w.connect();
    // Hold the 35th data segment (mid third round trip) by half an RTT.
    let mut n = 0;
    let held_seq: Rc<RefCell<Option<SeqNumber>>> = Rc::default();
    let held2 = held_seq.clone();
    w.set_tap(B, move |p| {
        if p.from == A && p.len > 0 && held2.borrow().is_none_or(|h| h != p.seq) {
            n += 1;
            if n == 35 {
                *held2.borrow_mut() = Some(p.seq);
                return Fate::Hold(d);
            }
        }
        Fate::Deliver
    });
    let data = pattern(400_000, 3);
    let mut prev: Option<TcpInfo> = None;
    let mut before: Option<TcpInfo> = None;
    let mut reduced: Option<TcpInfo> = None;
    let mut after: Option<(Instant, TcpInfo)> = None;
    let got = w.transfer((A, c), (B, s), &data, Duration::from_secs(30), |w| {
        let i = w.info(A, c);
        if before.is_none() && i.ssthresh.is_some() {
            before = prev.clone();
            reduced = Some(i.clone());
        }
        if after.is_none() && i.dsack_dups > 0 {
            after = Some((w.now(), i.clone()));
        }
        prev = Some(i);
    });
    assert!(got == data, "byte-exact");
    let held = held_seq.borrow().expect("a segment was held");
    let log = w.log();
    let rexmits: Vec<&Pkt> = log
        .iter()
        .filter(|p| p.ev == Ev::Tx && p.from == A && p.len > 0)
        .scan(SeqNumber(0), |max, p| {
            let re = p.seq < *max;
            if p.end() > *max {
                *max = p.end();
            }
            Some((re, p))
        })
        .filter(|(re, _)| *re)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(rexmits.len(), 1, "one retransmission");
    assert_eq!(rexmits[0].seq, held, "of the held segment");
    let dsack = log
        .iter()
        .find(|p| p.ev == Ev::Rx && p.from == B && p.sack.first().is_some_and(|b| b.1 <= p.ack))
        .expect("a D-SACK reached A");
    assert_eq!(
        dsack.sack[0],
        (held, rexmits[0].end()),
        "naming the retransmission"
    );
    let before = before.expect("the window was cut");
    let reduced = reduced.unwrap();
    let (t_after, after) = after.expect("D-SACK counted");
    eprintln!(
        "D-SACK undo: cwnd {} / ssthresh {:?} before, {} / {:?} after the RACK retransmission \
         at {}, {} / {:?} after the D-SACK at {t_after}",
        before.snd_cwnd_bytes,
        before.ssthresh,
        reduced.snd_cwnd_bytes,
        reduced.ssthresh,
        rexmits[0].at,
        after.snd_cwnd_bytes,
        after.ssthresh
    );
    assert!(reduced.snd_cwnd_bytes < before.snd_cwnd_bytes, "cut");
    assert_eq!(t_after, dsack.at);
    assert_eq!(after.dsack_dups, 1);
    assert_eq!(after.ssthresh, before.ssthresh, "ssthresh restored");
    assert!(
        after.snd_cwnd_bytes >= before.snd_cwnd_bytes,
        "cwnd restored"
    );
    let end = w.info(A, c);
    assert_eq!(end.ssthresh, before.ssthresh, "no real loss, no reduction");
    assert_eq!(end.total_retrans, 1);
}

/// Limited Transmit (RFC 3042): a cwnd-limited sender that gets the first and
/// the second duplicate ACK sends one new segment (beyond the previous
/// SND.MAX) on each; on the third RACK declares the hole lost.
#[test]
fn limited_transmit_sends_new_data_on_the_first_two_duplicate_acks() {
    let d = Duration::from_millis(20);
    // 10 Mbit/s spaces the segments (1.2 ms each) and so the duplicate ACKs.
    let cfg = LinkConfig {
        rate_bps: Some(10_000_000),
        ..link(d)
    };
    // Unpaced: each duplicate ACK's answer is exactly what it allowed.
    let mut w = World::new(4, unpaced(), cfg);
    let (c, s) = w.connect();
    let mut n = 0;
    let lost: Rc<RefCell<Option<SeqNumber>>> = Rc::default();
    let lost2 = lost.clone();
    w.set_tap(B, move |p| {
        if p.from == A && p.len > 0 && lost2.borrow().is_none() {
            n += 1;
            if n == 15 {
                *lost2.borrow_mut() = Some(p.seq);
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    let data = pattern(300_000, 4);
    let got = w.transfer((A, c), (B, s), &data, Duration::from_secs(30), |_| {});
    assert!(got == data, "byte-exact");
    let hole = lost.borrow().expect("a segment was dropped");
    let log = w.log();
    // The duplicate ACKs for the hole as A gets them.
    let dups: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, p)| p.ev == Ev::Rx && p.from == B && p.ack == hole && !p.sack.is_empty())
        .map(|(i, _)| i)
        .collect();
    assert!(dups.len() >= 3);
    let mut new_segs = Vec::new();
    for (k, &i) in dups[..3].iter().enumerate() {
        let at = log[i].at;
        assert!(k == 0 || log[dups[k - 1]].at < at, "distinct instants");
        let snd_max = log[..i]
            .iter()
            .filter(|p| p.ev == Ev::Tx && p.from == A)
            .map(Pkt::end)
            .fold(SeqNumber(0), |m, e| if e > m { e } else { m });
        // What A sent in answer, before anything else reached it.
        let answer: Vec<&Pkt> = log[i + 1..]
            .iter()
            .take_while(|p| p.at == at && !(p.ev == Ev::Rx && p.from == B))
            .filter(|p| p.ev == Ev::Tx && p.from == A && p.len > 0)
            .collect();
        eprintln!(
            "dup ACK {} at {at}: SND.MAX {snd_max}, A sends {:?}",
            k + 1,
            answer.iter().map(|p| (p.seq, p.len)).collect::<Vec<_>>()
        );
        if k < 2 {
            assert_eq!(answer.len(), 1, "one new segment on dup ACK {}", k + 1);
            assert_eq!(answer[0].seq, snd_max, "new data, beyond SND.MAX");
            new_segs.push(answer[0].seq);
        } else {
            assert!(
                answer.first().is_some_and(|p| p.seq == hole),
                "third duplicate ACK: the hole is retransmitted"
            );
        }
    }
    assert!(new_segs[1] > new_segs[0]);
    let info = w.info(A, c);
    assert_eq!(info.reord_seen, 0, "nothing was reordered");
    assert_eq!(info.total_retrans, 1);
}

/// Segments 8 and 9 of a 10-segment response are lost, and so are their
/// first two retransmissions; segment 10 arrives and is SACKed. After the
/// timeout (unavoidable: nothing sent after the lost retransmissions could
/// show them lost) segment 9 is lost once more, and the probe that follows
/// must resend it — the highest segment not SACKed — rather than segment 10,
/// which the peer holds: a probe of segment 10 draws a D-SACK that tells
/// RACK nothing, and a second timeout (pushed back by the probe) repairs it.
#[test]
fn tail_loss_probe_resends_the_last_segment_not_sacked() {
    let d = Duration::from_millis(25);
    let rtt = d * 2;
    let mut w = World::new(5, TcpConfig::default(), link(d));
    let (c, s) = w.connect();
    let mss = w.info(B, s).snd_mss;
    let now = w.now();
    w.stack(A).tcp_send(now, c, b"GET /tail\r\n\r\n").unwrap();
    let mut req = Vec::new();
    while req.len() < 13 {
        w.step();
        w.read(B, s, &mut req);
    }
    let mut first: Option<SeqNumber> = None;
    let mut copies = std::collections::HashMap::new();
    w.set_tap(A, move |p| {
        if p.from == B && p.len > 0 {
            let f = *first.get_or_insert(p.seq);
            if p.seq == f + 7 * mss || p.seq == f + 8 * mss {
                let n = copies.entry(p.seq).or_insert(0);
                *n += 1;
                if *n <= 2 {
                    return Fate::Drop;
                }
            }
        }
        Fate::Deliver
    });
    let response = pattern(10 * mss, 5);
    let now = w.now();
    w.stack(B).tcp_send(now, s, &response).unwrap();
    let mut got = Vec::new();
    let limit = now + Duration::from_secs(5);
    while got.len() < response.len() && w.now() < limit {
        w.step();
        w.read(A, c, &mut got);
    }
    let done = w.now();
    assert!(got == response, "byte-exact");
    let log = w.log();
    let data: Vec<&Pkt> = log
        .iter()
        .filter(|p| p.ev == Ev::Tx && p.from == B && p.len > 0)
        .collect();
    let base = data[0].seq;
    let seg = |p: &Pkt| (p.seq - base) as usize / mss + 1;
    let after: Vec<(Instant, usize)> = data[10..].iter().map(|p| (p.at, seg(p))).collect();
    eprintln!("retransmissions (time, segment): {after:?}; done at {done}");
    let info = w.info(B, s);
    assert_eq!(info.rto_events, 1, "one timeout, not two");
    // The last transmission is the probe: segment 9, 2·SRTT + 2 ms after the
    // ACK that followed the timeout's retransmission; then it is all there.
    let (probe_at, probe_seg) = *after.last().unwrap();
    assert_eq!(
        probe_seg, 9,
        "the probe resends the hole, not SACKed segment 10"
    );
    let ack = log
        .iter()
        .filter(|p| p.ev == Ev::Rx && p.from == A && p.at < probe_at)
        .map(|p| p.at)
        .max()
        .unwrap();
    // The probe timer restarts only on ACKs that advance SND.UNA (RFC 8985
    // §7.2), so it fires at most 2·SRTT + 2 ms after the last ACK.
    assert!(probe_at - ack <= rtt * 2 + Duration::from_millis(2));
    assert_eq!(done - probe_at, d);
}
