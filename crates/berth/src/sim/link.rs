//! One direction of a simulated link: configuration, impairments, counters.

use berth_core::time::{Duration, Instant};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a link carries: decides the MTU check and the pcap link type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Medium {
    /// Ethernet II frames: a frame may be `mtu + 14` bytes (header, no FCS);
    /// captured as `LINKTYPE_ETHERNET`.
    #[default]
    Ethernet,
    /// Bare IP packets, as on a TUN device: a packet may be `mtu` bytes;
    /// captured as `LINKTYPE_RAW`.
    Ip,
}

impl Medium {
    /// Bytes of link-layer header counted on top of the MTU.
    pub fn header_len(self) -> usize {
        match self {
            Medium::Ethernet => 14,
            Medium::Ip => 0,
        }
    }
}

/// Impairments and limits of one link direction (`connect` applies it to both).
///
/// `loss`, `duplicate` and `reorder` are **probabilities, 0.0..=1.0**, not
/// percentages: `loss: 0.01` is 1 % of the frames, `loss: 0.5` is half of them
/// (the `berth` command's `--loss 0.5` is 0.5 %). The `with_*_percent`
/// builders take percentages. Probabilities outside `[0, 1]` are clamped; NaN
/// counts as 0.
///
/// ```
/// use berth::sim::{Duration, LinkConfig};
///
/// let link = LinkConfig {
///     delay: Duration::from_millis(20),
///     ..LinkConfig::default()
/// }
/// .with_loss_percent(0.5);
/// assert_eq!(link.loss, 0.005); // 0.5 %
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way propagation delay.
    pub delay: Duration,
    /// Extra per-frame delay, uniform in `[0, jitter]` (microsecond steps).
    pub jitter: Duration,
    /// Probability, 0.0..=1.0, that a frame is dropped (Bernoulli, per
    /// frame): 0.01 is 1 %.
    pub loss: f64,
    /// Probability, 0.0..=1.0, that a frame is delivered twice: 0.01 is 1 %.
    pub duplicate: f64,
    /// Probability, 0.0..=1.0, that a frame is held back by `max(delay, 1 ms)`
    /// more: 0.01 is 1 %.
    pub reorder: f64,
    /// Serialization rate in bits per second; `None` (or 0) means unlimited.
    pub rate_bps: Option<u64>,
    /// Largest payload (IP packet) the link accepts, in bytes.
    pub mtu: usize,
    /// Depth of the FIFO in front of the serializer; only used with `rate_bps`.
    pub queue_limit_bytes: usize,
    /// Ethernet frames or bare IP packets.
    pub medium: Medium,
}

impl Default for LinkConfig {
    /// No impairments, unlimited rate, MTU 1500, Ethernet, 1 MiB queue.
    fn default() -> Self {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            rate_bps: None,
            mtu: 1500,
            queue_limit_bytes: 1 << 20,
            medium: Medium::Ethernet,
        }
    }
}

impl LinkConfig {
    /// The same, with `loss` set from a percentage: `with_loss_percent(1.0)`
    /// drops 1 % of the frames (`loss` 0.01).
    pub fn with_loss_percent(mut self, percent: f64) -> LinkConfig {
        self.loss = percent / 100.0;
        self
    }

    /// The same, with `duplicate` set from a percentage (1.0 is 1 %).
    pub fn with_duplicate_percent(mut self, percent: f64) -> LinkConfig {
        self.duplicate = percent / 100.0;
        self
    }

    /// The same, with `reorder` set from a percentage (1.0 is 1 %).
    pub fn with_reorder_percent(mut self, percent: f64) -> LinkConfig {
        self.reorder = percent / 100.0;
        self
    }

    /// Largest frame the link accepts: the MTU plus the link-layer header.
    pub fn max_frame_len(&self) -> usize {
        self.mtu.saturating_add(self.medium.header_len())
    }
}

/// Counters of one link direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames offered to the link (including those dropped afterwards).
    pub tx_frames: u64,
    /// Bytes offered to the link.
    pub tx_bytes: u64,
    /// Frames handed to the far end, duplicates included.
    pub delivered: u64,
    /// Frames dropped by `loss`.
    pub lost: u64,
    /// Extra copies made by `duplicate`.
    pub duplicated: u64,
    /// Frames held back by `reorder`.
    pub reordered: u64,
    /// Frames dropped for exceeding the MTU.
    pub mtu_drops: u64,
    /// Frames dropped because the serializer's queue was full.
    pub queue_drops: u64,
    /// Frames dropped because the link was down when they were offered, or
    /// went down while they were in flight ([`super::Simulator::set_link_up`]).
    pub down_drops: u64,
}

/// Which direction of a link: from its first endpoint to its second or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkDir {
    /// From the first endpoint given to `connect` (or the node, for `attach`).
    AToB,
    /// The reverse direction.
    BToA,
}

impl LinkDir {
    pub(crate) fn index(self) -> usize {
        match self {
            LinkDir::AToB => 0,
            LinkDir::BToA => 1,
        }
    }
}

/// When a frame that survived the impairments arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub at: Instant,
    /// Arrival of the extra copy, if the frame was duplicated.
    pub duplicate_at: Option<Instant>,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Impairment state of one link direction.
pub(crate) struct DirState {
    pub cfg: LinkConfig,
    pub stats: LinkStats,
    rng: ChaCha8Rng,
    /// When the serializer finishes its backlog, in nanoseconds: microsecond
    /// rounding per frame would accumulate error over long bursts.
    busy_until_ns: u64,
}

impl DirState {
    /// `stream` selects an independent ChaCha stream for this direction, so
    /// adding traffic on one link never shifts the random draws of another.
    pub fn new(cfg: LinkConfig, seed: u64, stream: u64) -> DirState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        DirState {
            cfg,
            stats: LinkStats::default(),
            rng,
            busy_until_ns: 0,
        }
    }

    /// Runs a frame of `len` bytes entering at `now` through the impairments
    /// and counts it; `None` if it is dropped.
    pub fn admit(&mut self, now: Instant, len: usize) -> Option<Arrival> {
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += len as u64;

        if len > self.cfg.max_frame_len() {
            self.stats.mtu_drops += 1;
            return None;
        }

        let departure = match self.cfg.rate_bps.filter(|&r| r > 0) {
            Some(rate) => self.serialize(now, len, rate)?,
            None => now,
        };

        // Lost after serialization: a lost frame still occupied the wire.
        if self.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return None;
        }

        let mut at = departure + self.cfg.delay;
        let jitter_us = duration_micros(self.cfg.jitter);
        if jitter_us > 0 {
            at += Duration::from_micros(self.uniform_inclusive(jitter_us));
        }
        if self.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            at += self.cfg.delay.max(Duration::from_millis(1));
        }
        let duplicate_at = if self.chance(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            Some(at)
        } else {
            None
        };
        Some(Arrival { at, duplicate_at })
    }

    /// Queues the frame behind the serializer's backlog (tail drop beyond
    /// `queue_limit_bytes`) and returns when its last bit leaves.
    fn serialize(&mut self, now: Instant, len: usize, rate: u64) -> Option<Instant> {
        let now_ns = now.total_micros().saturating_mul(1000);
        let remaining_ns = u128::from(self.busy_until_ns.saturating_sub(now_ns));
        // Bytes still waiting or on the wire, rounded up.
        let backlog = (remaining_ns * u128::from(rate)).div_ceil(8 * NANOS_PER_SEC);
        if backlog + len as u128 > self.cfg.queue_limit_bytes as u128 {
            self.stats.queue_drops += 1;
            return None;
        }
        let tx_ns = (len as u128 * 8 * NANOS_PER_SEC).div_ceil(u128::from(rate));
        let start = self.busy_until_ns.max(now_ns);
        let finish = u128::from(start) + tx_ns;
        self.busy_until_ns = u64::try_from(finish).unwrap_or(u64::MAX);
        Some(Instant::from_micros(
            u64::try_from(finish.div_ceil(1000)).unwrap_or(u64::MAX),
        ))
    }

    /// Bernoulli draw; consumes randomness only when `p` is strictly between
    /// 0 and 1, so an impairment that is off leaves the stream untouched.
    fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits give a uniform f64 in [0, 1), independent of rand's
        // distribution code so runs stay identical across rand versions.
        let unit = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }

    /// Uniform integer in `[0, max]` by multiply-shift (bias max/2^64, negligible).
    fn uniform_inclusive(&mut self, max: u64) -> u64 {
        let span = u128::from(max) + 1;
        ((u128::from(self.rng.next_u64()) * span) >> 64) as u64
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
