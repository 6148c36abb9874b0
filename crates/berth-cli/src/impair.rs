//! `berth impair`: an impairment forwarder between two TUN devices.
//!
//! Every IP packet read from one device is run through the simulator's
//! impairments (see `berth::sim` — MTU aside, the same order and the same
//! meaning: rate with a tail-drop queue, loss, delay + jitter, reorder,
//! duplicate) on the real clock, then written to the other device when it is
//! due. Each direction has its own ChaCha8 stream of the seed and its own
//! heap of (deliver_at, seq, packet), so `--seed` fixes which packets are hit
//! (not when they arrive: that depends on the traffic).
//!
//! `--pcap FILE` captures every packet as it is read from either device, before
//! the impairments (what arrives); `--pcap-out FILE` every packet as it is
//! written to the other device, after them (what leaves: lost packets absent,
//! duplicates twice, reordered ones where they were delivered). Both are raw IP
//! (`LINKTYPE_RAW`), timestamped when read or written.
//!
//! The devices may live in different network namespaces: `--netns-a` and
//! `--netns-b` open each one from a thread that has entered that namespace
//! (setns affects only the calling thread); the file descriptors stay bound to
//! their devices, and forwarding runs in the namespace we started in.

use crate::args;
use crate::tun;
use berth::pcap::{LinkType, PcapFile};
use clap::Args;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct ImpairArgs {
    /// First TUN device.
    #[arg(long = "a", value_name = "TUN")]
    a: String,
    /// Second TUN device.
    #[arg(long = "b", value_name = "TUN")]
    b: String,
    /// Network namespace (as in `ip netns`) that holds device A.
    #[arg(long, value_name = "NS")]
    netns_a: Option<String>,
    /// Network namespace that holds device B.
    #[arg(long, value_name = "NS")]
    netns_b: Option<String>,
    /// Create the devices if they do not exist (they vanish when we exit;
    /// address them with `ip addr` after this command prints "forwarding").
    #[arg(long)]
    create: bool,
    /// Capture every packet read from either device, before the impairments
    /// (what arrives), into this pcap file (raw IP).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Capture every packet written to either device, after the impairments
    /// (what leaves: no lost ones, duplicates twice, in delivery order).
    #[arg(long, value_name = "FILE")]
    pcap_out: Option<PathBuf>,
    #[command(flatten)]
    imp: args::ImpairmentFlags,
}

/// `--pcap` and `--pcap-out`: captures of what arrives and what leaves.
#[derive(Default)]
pub struct Taps {
    pub arrive: Option<PcapFile>,
    pub leave: Option<PcapFile>,
}

impl Taps {
    fn open(arrive: Option<&PathBuf>, leave: Option<&PathBuf>) -> io::Result<Taps> {
        let create = |p: Option<&PathBuf>| p.map(|p| PcapFile::create(p, LinkType::Ip)).transpose();
        Ok(Taps {
            arrive: create(arrive)?,
            leave: create(leave)?,
        })
    }

    /// Write out what is buffered; the first error.
    fn flush(&self) -> io::Result<()> {
        for p in [&self.arrive, &self.leave].into_iter().flatten() {
            p.flush()?;
        }
        Ok(())
    }
}

/// Impairments of one direction (the simulator's `LinkConfig` minus MTU and
/// medium); `loss`, `duplicate` and `reorder` are probabilities 0.0..=1.0.
#[derive(Debug, Clone)]
pub struct Impairments {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub rate_bps: Option<u64>,
    pub queue_limit_bytes: u64,
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Packets read from the source device.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Packets written to the destination device, duplicates included.
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub queue_drops: u64,
    /// Writes the destination device refused (down, no buffer space).
    pub write_errors: u64,
}

/// A packet waiting for its time.
struct Pending {
    at: Instant,
    seq: u64,
    packet: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first;
    /// ties go in the order packets were scheduled.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// One direction: impairment state and the packets in flight.
pub struct Direction {
    cfg: Impairments,
    rng: ChaCha8Rng,
    epoch: Instant,
    /// When the serializer finishes its backlog, in ns since `epoch`.
    busy_until_ns: u128,
    heap: BinaryHeap<Pending>,
    seq: u64,
    pub stats: DirStats,
}

impl Direction {
    pub fn new(cfg: Impairments, seed: u64, stream: u64, epoch: Instant) -> Direction {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Direction {
            cfg,
            rng,
            epoch,
            busy_until_ns: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            stats: DirStats::default(),
        }
    }

    /// A packet read at `now`: impair it and schedule what survives.
    pub fn admit(&mut self, now: Instant, packet: &[u8]) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += packet.len() as u64;
        let departure = match self.cfg.rate_bps.filter(|&r| r > 0) {
            Some(rate) => match self.serialize(now, packet.len(), rate) {
                Some(t) => t,
                None => {
                    self.stats.queue_drops += 1;
                    return;
                }
            },
            None => now,
        };
        // Lost after serialization: a lost packet still occupied the wire.
        if self.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return;
        }
        let mut at = departure + self.cfg.delay;
        let jitter_us = u64::try_from(self.cfg.jitter.as_micros()).unwrap_or(u64::MAX);
        if jitter_us > 0 {
            at += Duration::from_micros(self.uniform_inclusive(jitter_us));
        }
        if self.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            at += self.cfg.delay.max(Duration::from_millis(1));
        }
        let dup = self.chance(self.cfg.duplicate);
        if dup {
            self.stats.duplicated += 1;
            self.push(at, packet.to_vec());
        }
        self.push(at, packet.to_vec());
    }

    fn push(&mut self, at: Instant, packet: Vec<u8>) {
        self.seq += 1;
        self.heap.push(Pending {
            at,
            seq: self.seq,
            packet,
        });
    }

    /// The next packet due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.heap.peek().is_some_and(|p| p.at <= now) {
            self.heap.pop().map(|p| p.packet)
        } else {
            None
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|p| p.at)
    }

    /// Queue behind the serializer (tail drop beyond the queue limit); when the
    /// last bit leaves.
    fn serialize(&mut self, now: Instant, len: usize, rate: u64) -> Option<Instant> {
        const NS: u128 = 1_000_000_000;
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos();
        let remaining_ns = self.busy_until_ns.saturating_sub(now_ns);
        let backlog = (remaining_ns * u128::from(rate)).div_ceil(8 * NS);
        if backlog + len as u128 > u128::from(self.cfg.queue_limit_bytes) {
            return None;
        }
        let tx_ns = (len as u128 * 8 * NS).div_ceil(u128::from(rate));
        self.busy_until_ns = self.busy_until_ns.max(now_ns) + tx_ns;
        let ns = u64::try_from(self.busy_until_ns).unwrap_or(u64::MAX);
        Some(self.epoch + Duration::from_nanos(ns))
    }

    /// Bernoulli draw, consuming randomness only for 0 < p < 1 (as the simulator).
    fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let unit = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }

    fn uniform_inclusive(&mut self, max: u64) -> u64 {
        let span = u128::from(max) + 1;
        ((u128::from(self.rng.next_u64()) * span) >> 64) as u64
    }
}

pub fn run(a: ImpairArgs) -> io::Result<()> {
    let cfg = Impairments {
        delay: a.imp.delay,
        jitter: a.imp.jitter,
        loss: a.imp.loss,
        duplicate: a.imp.dup,
        reorder: a.imp.reorder,
        rate_bps: a.imp.rate,
        queue_limit_bytes: a.imp.queue,
    };
    let taps = Taps::open(a.pcap.as_ref(), a.pcap_out.as_ref())?;
    let dev_a = tun::open(&a.a, a.netns_a.as_deref(), a.create)?;
    let dev_b = tun::open(&a.b, a.netns_b.as_deref(), a.create)?;
    tun::set_nonblocking(&dev_a.fd)?;
    tun::set_nonblocking(&dev_b.fd)?;
    tun::install_stop_handler()?;
    let epoch = Instant::now();
    // On a real network the loss pattern is drawn anew each run unless --seed
    // asks for a reproducible one (it is printed, so a run can be repeated).
    let seed = a.imp.seed.unwrap_or_else(berth::os_seed);
    let mut dirs = [
        Direction::new(cfg.clone(), seed, 0, epoch),
        Direction::new(cfg, seed, 1, epoch),
    ];
    println!(
        "forwarding {} <-> {}: loss {}, delay {:?}, jitter {:?}, dup {}, reorder {}, rate {}, seed {} (MTU {}/{})",
        dev_a.name,
        dev_b.name,
        pct(a.imp.loss),
        a.imp.delay,
        a.imp.jitter,
        pct(a.imp.dup),
        pct(a.imp.reorder),
        a.imp.rate
            .map(|r| format!("{r} bit/s"))
            .unwrap_or_else(|| "unlimited".into()),
        seed,
        dev_a.mtu,
        dev_b.mtu
    );
    flush_stdout();
    let result = forward_tapped(
        &dev_a.fd,
        &dev_b.fd,
        &mut dirs,
        [&a.a, &a.b],
        &tun::stop_requested,
        &taps,
    );
    let captured = taps.flush();
    for (i, (from, to)) in [(&a.a, &a.b), (&a.b, &a.a)].into_iter().enumerate() {
        let s = dirs[i].stats;
        println!(
            "{from} -> {to}: received {} packets ({} bytes), delivered {}, lost {}, duplicated {}, reordered {}, queue drops {}, write errors {}",
            s.rx_packets, s.rx_bytes, s.delivered, s.lost, s.duplicated, s.reordered, s.queue_drops, s.write_errors
        );
    }
    flush_stdout();
    result.and(captured)
}

fn flush_stdout() {
    use std::io::Write;
    let _ = io::stdout().flush();
}

fn pct(p: f64) -> String {
    format!("{}%", p * 100.0)
}

/// The forwarding loop: `dirs[0]` impairs A → B, `dirs[1]` B → A. Returns Ok
/// once `stop()` says so (checked at least every 200 ms; `berth impair` passes
/// the SIGINT/SIGTERM flag, `berth bench --loss` its own), or a device error.
pub fn forward(
    fd_a: &OwnedFd,
    fd_b: &OwnedFd,
    dirs: &mut [Direction; 2],
    names: [&str; 2],
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    forward_tapped(fd_a, fd_b, dirs, names, stop, &Taps::default())
}

/// [`forward`], capturing what arrives and what leaves into `taps`.
pub fn forward_tapped(
    fd_a: &OwnedFd,
    fd_b: &OwnedFd,
    dirs: &mut [Direction; 2],
    names: [&str; 2],
    stop: &dyn Fn() -> bool,
    taps: &Taps,
) -> io::Result<()> {
    let fds = [fd_a, fd_b];
    let mut buf = vec![0u8; 65_536];
    loop {
        if stop() {
            return Ok(());
        }
        let now = Instant::now();
        for (d, dir) in dirs.iter_mut().enumerate() {
            let out = fds[1 - d];
            while let Some(p) = dir.pop_due(now) {
                if let Some(t) = &taps.leave {
                    t.write(&p);
                }
                match tun::write(out, &p) {
                    Ok(_) => dir.stats.delivered += 1,
                    Err(_) => dir.stats.write_errors += 1,
                }
            }
        }
        let next = dirs.iter().filter_map(Direction::next_due).min();
        let wait = next
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(200))
            .min(Duration::from_millis(200));
        let ready = match tun::poll_readable(&[fd_a.as_raw_fd(), fd_b.as_raw_fd()], wait) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for (d, r) in ready.iter().enumerate() {
            match r {
                tun::Ready::No => {}
                tun::Ready::Hangup => {
                    return Err(io::Error::other(format!(
                        "device {} went away; stopping",
                        names[d]
                    )))
                }
                tun::Ready::Readable => {
                    // A bounded batch, so one busy side cannot starve the other.
                    for _ in 0..64 {
                        match tun::read(fds[d], &mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if let Some(t) = &taps.arrive {
                                    t.write(&buf[..n]);
                                }
                                dirs[d].admit(Instant::now(), &buf[..n])
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                            Err(e) => {
                                return Err(io::Error::new(
                                    e.kind(),
                                    format!("reading {}: {e}; stopping", names[d]),
                                ))
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Impairments {
        Impairments {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            rate_bps: None,
            queue_limit_bytes: 1 << 20,
        }
    }

    #[test]
    fn clean_link_forwards_in_order_at_once() {
        let t0 = Instant::now();
        let mut d = Direction::new(cfg(), 1, 0, t0);
        for i in 0..10u8 {
            d.admit(t0, &[i]);
        }
        let got: Vec<u8> = std::iter::from_fn(|| d.pop_due(t0)).map(|p| p[0]).collect();
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn loss_is_seeded_and_near_its_rate() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut d = Direction::new(Impairments { loss: 0.1, ..cfg() }, seed, 0, t0);
            for _ in 0..10_000 {
                d.admit(t0, &[0; 100]);
            }
            d.stats.lost
        };
        assert_eq!(run(7), run(7));
        assert!((800..1200).contains(&run(7)), "{}", run(7));
    }

    #[test]
    fn delay_reorder_dup_and_rate() {
        let t0 = Instant::now();
        let mut d = Direction::new(
            Impairments {
                delay: Duration::from_millis(10),
                reorder: 1.0,
                duplicate: 1.0,
                ..cfg()
            },
            1,
            0,
            t0,
        );
        d.admit(t0, &[1]);
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(20)));
        assert!(d.pop_due(t0 + Duration::from_millis(19)).is_none());
        let t = t0 + Duration::from_millis(20);
        assert!(d.pop_due(t).is_some() && d.pop_due(t).is_some());
        assert_eq!((d.stats.reordered, d.stats.duplicated), (1, 1));

        // 1000 bytes at 8 Mbit/s: 1 ms each; a 3500-byte queue takes three.
        let mut r = Direction::new(
            Impairments {
                rate_bps: Some(8_000_000),
                queue_limit_bytes: 3500,
                ..cfg()
            },
            1,
            0,
            t0,
        );
        for _ in 0..4 {
            r.admit(t0, &[0; 1000]);
        }
        assert_eq!(r.stats.queue_drops, 1);
        assert_eq!(r.heap.len(), 3);
        assert_eq!(
            r.heap.iter().map(|p| p.at).max(),
            Some(t0 + Duration::from_millis(3))
        );
    }
}
