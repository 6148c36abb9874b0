//! The neighbour cache: one state machine for ARP (IPv4) and NDP (IPv6), keyed by
//! (interface, IP address), as Linux's neighbour layer serves both. States and
//! transitions follow RFC 4861 §7.3.2–§7.3.3 and Appendix C (Neighbor Unreachability
//! Detection). The machine is medium-neutral: it tells the caller what to send (a
//! broadcast/multicast solicitation or a unicast probe), which queued packets to
//! flush, when it gave up, and when to arm the entry's timer; `arp.rs` (and an
//! `ndp.rs` beside it) turn that into frames.
//!
//! Timers go through the stack's one heap, at most one live per entry: an entry
//! remembers the earliest deadline it has armed and arms another only for an earlier
//! one, so a flood of state changes cannot grow the heap; a timer that fires early
//! (the entry's deadline moved later) re-arms once. REACHABLE needs no timer: it
//! turns STALE lazily once its reachable time has passed (§7.3.3).
//!
//! FAILED is Linux's name for what RFC 4861 §7.3.3 deletes: an entry whose
//! solicitations or probes went unanswered. It keeps no address and no queue, is
//! reclaimed first when the cache is full, and the next packet resolves afresh.

use crate::iface::IfaceId;
use crate::time::{Duration, Instant};
use berth_wire::EthernetAddress;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;

/// An entry's key: the interface and the neighbour's IP address.
pub(crate) type Key = (IfaceId, IpAddr);

/// Protocol constants for one family's entries (RFC 4861 §10 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeighborParams {
    /// BaseReachableTime (§6.3.2).
    pub base_reachable_time: Duration,
    /// ReachableTime = BaseReachableTime × a factor drawn from this range, in
    /// percent (§6.3.2: MIN_RANDOM_FACTOR 0.5 .. MAX_RANDOM_FACTOR 1.5).
    pub random_factor_pct: (u32, u32),
    /// RetransTimer: between solicitations, and between probes.
    pub retrans_timer: Duration,
    /// DELAY_FIRST_PROBE_TIME.
    pub delay_first_probe_time: Duration,
    /// Solicitations sent to resolve an address (MAX_MULTICAST_SOLICIT).
    pub max_multicast_solicit: u32,
    /// Unicast probes in PROBE before FAILED (MAX_UNICAST_SOLICIT). 0: no unicast
    /// probing; a STALE entry is then not used, sending resolves afresh (RFC 1122
    /// §2.3.2.1's "timeout" validation of an ARP cache).
    pub max_unicast_solicit: u32,
    /// Packets held per INCOMPLETE entry; beyond it the oldest is dropped (Linux
    /// unres_qlen).
    pub queue_len: usize,
}

impl NeighborParams {
    /// RFC 4861 §10's values: what NDP uses.
    pub const RFC4861: NeighborParams = NeighborParams {
        base_reachable_time: Duration::from_secs(30),
        random_factor_pct: (50, 150),
        retrans_timer: Duration::from_secs(1),
        delay_first_probe_time: Duration::from_secs(5),
        max_multicast_solicit: 3,
        max_unicast_solicit: 3,
        queue_len: 101,
    };

    /// ReachableTime for a uniformly drawn `rand` (§6.3.2).
    fn reachable_time(&self, rand: u32) -> Duration {
        let (lo, hi) = self.random_factor_pct;
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        let pct = u64::from(lo) + u64::from(rand) % span;
        let micros = self.base_reachable_time.as_micros() as u64;
        Duration::from_micros(micros.saturating_mul(pct) / 100)
    }
}

/// A neighbour's state as `ip neigh` prints it (RFC 4861 §7.3.2, plus FAILED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NeighborState {
    /// Address resolution in progress; packets wait in a queue.
    Incomplete,
    /// Reachability confirmed within ReachableTime.
    Reachable,
    /// Not known to be reachable; used as is until a packet is sent.
    Stale,
    /// A packet was sent to a STALE entry; probing starts unless confirmed.
    Delay,
    /// Unicast probes are being sent.
    Probe,
    /// Resolution or probing went unanswered.
    Failed,
}

impl NeighborState {
    /// The name `ip neigh` uses.
    pub fn name(self) -> &'static str {
        match self {
            NeighborState::Incomplete => "INCOMPLETE",
            NeighborState::Reachable => "REACHABLE",
            NeighborState::Stale => "STALE",
            NeighborState::Delay => "DELAY",
            NeighborState::Probe => "PROBE",
            NeighborState::Failed => "FAILED",
        }
    }
}

impl fmt::Display for NeighborState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One neighbour cache entry, as a row of `ip neigh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NeighborEntry {
    /// The interface the neighbour is on.
    pub iface: IfaceId,
    /// The neighbour's IP address.
    pub ip: IpAddr,
    /// The link-layer address; `None` while INCOMPLETE and when FAILED.
    pub hw: Option<EthernetAddress>,
    /// NUD state (RFC 4861 §7.3.2).
    pub state: NeighborState,
}

#[derive(Debug)]
enum State {
    Incomplete {
        queue: VecDeque<Vec<u8>>,
        solicits: u32,
        next: Instant,
    },
    Reachable {
        hw: EthernetAddress,
        until: Instant,
    },
    Stale {
        hw: EthernetAddress,
    },
    Delay {
        hw: EthernetAddress,
        until: Instant,
    },
    Probe {
        hw: EthernetAddress,
        probes: u32,
        next: Instant,
    },
    Failed,
}

impl State {
    fn hw(&self) -> Option<EthernetAddress> {
        match self {
            State::Reachable { hw, .. }
            | State::Stale { hw }
            | State::Delay { hw, .. }
            | State::Probe { hw, .. } => Some(*hw),
            State::Incomplete { .. } | State::Failed => None,
        }
    }

    /// When this state's timer is due, if it has one.
    fn deadline(&self) -> Option<Instant> {
        match self {
            State::Incomplete { next, .. } | State::Probe { next, .. } => Some(*next),
            State::Delay { until, .. } => Some(*until),
            _ => None,
        }
    }

    fn public(&self, now: Instant) -> NeighborState {
        match self {
            State::Incomplete { .. } => NeighborState::Incomplete,
            State::Reachable { until, .. } if *until > now => NeighborState::Reachable,
            State::Reachable { .. } | State::Stale { .. } => NeighborState::Stale,
            State::Delay { .. } => NeighborState::Delay,
            State::Probe { .. } => NeighborState::Probe,
            State::Failed => NeighborState::Failed,
        }
    }
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Earliest deadline this entry has in the timer heap (lazy cancellation).
    armed: Option<Instant>,
}

impl Entry {
    /// §7.3.3: REACHABLE becomes STALE once ReachableTime has passed.
    fn age(&mut self, now: Instant) {
        if let State::Reachable { hw, until } = self.state {
            if until <= now {
                self.state = State::Stale { hw };
            }
        }
    }

    /// A timer at `at`, unless one at or before `at` is already armed.
    fn want_timer(&mut self, at: Instant) -> Option<Instant> {
        match self.armed {
            Some(a) if a <= at => None,
            _ => {
                self.armed = Some(at);
                Some(at)
            }
        }
    }
}

/// How a solicitation goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Solicit {
    /// To resolve: a broadcast ARP request, an NS to the solicited-node group.
    Multicast,
    /// A NUD probe (§7.3.3 PROBE): an ARP request or NS sent to the cached address.
    Unicast(EthernetAddress),
}

/// Why an entry became FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Resolution unanswered; this many queued packets were dropped (§7.2.2: the
    /// caller may send ICMP address-unreachable errors for them).
    Resolution { dropped: usize },
    /// Unicast probes of a known address unanswered.
    Probes,
}

/// What the caller must do after an input.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub solicit: Option<Solicit>,
    /// Arm the entry's timer (`Timer::Neighbor`) at this instant.
    pub arm: Option<Instant>,
    /// Resolved: send these queued packets, oldest first, to this address.
    pub flush: Option<(EthernetAddress, VecDeque<Vec<u8>>)>,
    pub failed: Option<Failure>,
    /// The cached link-layer address was replaced.
    pub lladdr_changed: bool,
    /// Entries reclaimed to make room in a full cache.
    pub reclaimed: usize,
}

/// What became of a packet handed to [`NeighborCache::resolve`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Send it now to this address.
    Send(EthernetAddress, Vec<u8>),
    /// Held until resolution; `true` if the oldest held packet was dropped for it.
    Queued(bool),
    /// The cache is full of entries that cannot be reclaimed; dropped.
    CacheFull,
}

/// A received message carrying a neighbour's link-layer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Learn {
    /// NS, RS or redirect with a source/target link-layer option (§7.2.3, §7.3.3);
    /// an ARP request, gratuitous ARP or broadcast reply: a new or changed address
    /// is STALE, an unchanged one keeps its state.
    Solicitation,
    /// NA (§7.2.5); a unicast ARP reply is a solicited one with override.
    Advertisement { solicited: bool, override_: bool },
}

/// The neighbour cache, bounded to `cap` entries.
#[derive(Debug)]
pub(crate) struct NeighborCache {
    map: HashMap<Key, Entry>,
    cap: usize,
    /// State of the generator for ReachableTime's random factor (splitmix64),
    /// seeded by the caller: the same seed gives the same times.
    rng: u64,
}

impl NeighborCache {
    pub fn new(cap: usize, seed: u64) -> NeighborCache {
        NeighborCache {
            map: HashMap::new(),
            cap,
            rng: seed,
        }
    }

    fn rand(&mut self) -> u32 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    fn reachable(&mut self, now: Instant, hw: EthernetAddress, p: &NeighborParams) -> State {
        let until = now + p.reachable_time(self.rand());
        State::Reachable { hw, until }
    }

    /// When the cache is full, drop FAILED and STALE entries (unused since their
    /// last confirmation), as Linux's forced garbage collection does. The scan runs
    /// only when the cache is full. Returns how many went.
    fn make_room(&mut self, now: Instant) -> usize {
        if self.map.len() < self.cap {
            return 0;
        }
        let before = self.map.len();
        self.map.retain(|_, e| {
            e.age(now);
            !matches!(e.state, State::Stale { .. } | State::Failed)
        });
        before - self.map.len()
    }

    /// The address of a REACHABLE neighbour: the common case of sending, which
    /// changes no state (one hash lookup; `resolve` handles every other case).
    pub fn reachable_hw(&self, now: Instant, key: Key) -> Option<EthernetAddress> {
        match self.map.get(&key)?.state {
            State::Reachable { hw, until } if until > now => Some(hw),
            _ => None,
        }
    }

    /// A packet for `key` (§7.2.2, §7.3.3 "sending a packet"): send it to the
    /// cached address, or hold it while the address is resolved.
    pub fn resolve(
        &mut self,
        now: Instant,
        key: Key,
        pkt: Vec<u8>,
        p: &NeighborParams,
    ) -> (Resolve, Output) {
        let mut out = Output::default();
        if !self.map.contains_key(&key) {
            out.reclaimed = self.make_room(now);
            if self.map.len() >= self.cap {
                return (Resolve::CacheFull, out);
            }
        }
        let entry = self.map.entry(key).or_insert(Entry {
            state: State::Failed,
            armed: None,
        });
        entry.age(now);
        let res = match &mut entry.state {
            State::Incomplete { queue, .. } => {
                let full = queue.len() >= p.queue_len;
                if full {
                    queue.pop_front();
                }
                queue.push_back(pkt);
                Resolve::Queued(full)
            }
            State::Reachable { hw, .. } | State::Delay { hw, .. } | State::Probe { hw, .. } => {
                Resolve::Send(*hw, pkt)
            }
            State::Stale { hw } if p.max_unicast_solicit > 0 => {
                // STALE, packet to send: DELAY, and send with the cached address.
                let hw = *hw;
                let until = now + p.delay_first_probe_time;
                entry.state = State::Delay { hw, until };
                out.arm = entry.want_timer(until);
                Resolve::Send(hw, pkt)
            }
            State::Stale { .. } | State::Failed => {
                // No entry (or no usable one), packet to send: INCOMPLETE, send a
                // multicast solicitation, start the retransmit timer.
                let next = now + p.retrans_timer;
                entry.state = State::Incomplete {
                    queue: VecDeque::from([pkt]),
                    solicits: 1,
                    next,
                };
                out.solicit = Some(Solicit::Multicast);
                out.arm = entry.want_timer(next);
                Resolve::Queued(false)
            }
        };
        (res, out)
    }

    /// `key`'s timer fired. Timers the entry no longer wants are ignored.
    pub fn timer(&mut self, now: Instant, key: Key, p: &NeighborParams) -> Output {
        let mut out = Output::default();
        let Some(entry) = self.map.get_mut(&key) else {
            return out;
        };
        match entry.armed {
            Some(a) if a <= now => entry.armed = None,
            _ => return out,
        }
        let Some(deadline) = entry.state.deadline() else {
            return out;
        };
        if deadline > now {
            out.arm = entry.want_timer(deadline);
            return out;
        }
        let next = now + p.retrans_timer;
        match &mut entry.state {
            State::Incomplete {
                queue,
                solicits,
                next: at,
            } => {
                if *solicits < p.max_multicast_solicit {
                    // Retransmit timeout, fewer than N: retransmit.
                    *solicits += 1;
                    *at = next;
                    out.solicit = Some(Solicit::Multicast);
                    out.arm = entry.want_timer(next);
                } else {
                    // N or more: give up, drop what waited.
                    out.failed = Some(Failure::Resolution {
                        dropped: queue.len(),
                    });
                    entry.state = State::Failed;
                }
            }
            State::Delay { hw, .. } if p.max_unicast_solicit > 0 => {
                // Delay timeout: PROBE, first unicast probe.
                let hw = *hw;
                entry.state = State::Probe {
                    hw,
                    probes: 1,
                    next,
                };
                out.solicit = Some(Solicit::Unicast(hw));
                out.arm = entry.want_timer(next);
            }
            State::Probe { hw, probes, .. } if *probes < p.max_unicast_solicit => {
                let (hw, probes) = (*hw, *probes + 1);
                entry.state = State::Probe { hw, probes, next };
                out.solicit = Some(Solicit::Unicast(hw));
                out.arm = entry.want_timer(next);
            }
            State::Delay { .. } | State::Probe { .. } => {
                // Retransmit timeout, N or more probes: FAILED (§7.3.3 deletes).
                out.failed = Some(Failure::Probes);
                entry.state = State::Failed;
            }
            _ => {}
        }
        out
    }

    /// A message from `key` carrying its link-layer address `hw` (§7.2.3, §7.2.5,
    /// Appendix C). `create`: make an entry if there is none (an NS, RS or redirect;
    /// for ARP, anything targeted at us, RFC 826's merge), within the cache bound;
    /// otherwise a message for an unknown neighbour is ignored.
    pub fn learn(
        &mut self,
        now: Instant,
        key: Key,
        hw: EthernetAddress,
        msg: Learn,
        create: bool,
        p: &NeighborParams,
    ) -> Output {
        let mut out = Output::default();
        if !self.map.contains_key(&key) {
            if !create {
                return out;
            }
            out.reclaimed = self.make_room(now);
            if self.map.len() >= self.cap {
                return out;
            }
            self.map.insert(
                key,
                Entry {
                    state: State::Failed,
                    armed: None,
                },
            );
        }
        let reachable = self.reachable(now, hw, p);
        let Some(entry) = self.map.get_mut(&key) else {
            return out;
        };
        entry.age(now);
        match entry.state.hw() {
            None => {
                // INCOMPLETE (or new, or FAILED): record the address, send what
                // waited; REACHABLE if a solicited NA, else STALE.
                let queue = match &mut entry.state {
                    State::Incomplete { queue, .. } => std::mem::take(queue),
                    _ => VecDeque::new(),
                };
                entry.state = match msg {
                    Learn::Advertisement {
                        solicited: true, ..
                    } => reachable,
                    _ => State::Stale { hw },
                };
                if !queue.is_empty() {
                    out.flush = Some((hw, queue));
                }
            }
            Some(old) => {
                let changed = old != hw;
                match msg {
                    // §7.2.3: a different address replaces the cached one, STALE.
                    Learn::Solicitation if changed => {
                        entry.state = State::Stale { hw };
                        out.lladdr_changed = true;
                    }
                    Learn::Solicitation => {}
                    // §7.2.5 I: no override and a different address: a REACHABLE
                    // entry becomes STALE (address kept), others ignore it.
                    Learn::Advertisement {
                        override_: false, ..
                    } if changed => {
                        if let State::Reachable { .. } = entry.state {
                            entry.state = State::Stale { hw: old };
                        }
                    }
                    // §7.2.5 II: record the address; solicited: REACHABLE; not
                    // solicited and changed: STALE; else unchanged.
                    Learn::Advertisement {
                        solicited: true, ..
                    } => {
                        entry.state = reachable;
                        out.lladdr_changed = changed;
                    }
                    Learn::Advertisement { .. } if changed => {
                        entry.state = State::Stale { hw };
                        out.lladdr_changed = true;
                    }
                    Learn::Advertisement { .. } => {}
                }
            }
        }
        out
    }

    /// Reachability confirmation from an upper layer (§7.3.1, e.g. TCP's ACK of new
    /// data) or a hint the family treats as one: any state with an address becomes
    /// REACHABLE. Returns whether there was such an entry.
    pub fn confirm(&mut self, now: Instant, key: Key, p: &NeighborParams) -> bool {
        let rand = self.rand();
        let Some(entry) = self.map.get_mut(&key) else {
            return false;
        };
        let Some(hw) = entry.state.hw() else {
            return false;
        };
        let until = now + p.reachable_time(rand);
        entry.state = State::Reachable { hw, until };
        true
    }

    /// Is there an entry (in any state) for `key`?
    pub fn contains(&self, key: Key) -> bool {
        self.map.contains_key(&key)
    }

    /// Every entry as `ip neigh` shows it at `now`, in no order.
    pub fn entries(&self, now: Instant) -> impl Iterator<Item = NeighborEntry> + '_ {
        self.map.iter().map(move |(&(iface, ip), e)| NeighborEntry {
            iface,
            ip,
            hw: e.state.hw(),
            state: e.state.public(now),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const P: NeighborParams = NeighborParams {
        random_factor_pct: (100, 100),
        ..NeighborParams::RFC4861
    };
    const IF0: IfaceId = IfaceId(0);

    fn key(n: u16) -> Key {
        (IF0, IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n)))
    }
    fn hw(n: u8) -> EthernetAddress {
        EthernetAddress([2, 0, 0, 0, 0, n])
    }
    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }
    fn cache() -> NeighborCache {
        NeighborCache::new(16, 7)
    }
    fn state(
        c: &NeighborCache,
        k: Key,
        now: Instant,
    ) -> Option<(NeighborState, Option<EthernetAddress>)> {
        c.entries(now)
            .find(|e| (e.iface, e.ip) == k)
            .map(|e| (e.state, e.hw))
    }
    const NA_S: Learn = Learn::Advertisement {
        solicited: true,
        override_: false,
    };
    const NA_SO: Learn = Learn::Advertisement {
        solicited: true,
        override_: true,
    };
    const NA_O: Learn = Learn::Advertisement {
        solicited: false,
        override_: true,
    };
    const NA: Learn = Learn::Advertisement {
        solicited: false,
        override_: false,
    };

    /// An entry in `st` for key(1) with address hw(1), at t(0).
    fn with(st: NeighborState) -> NeighborCache {
        let mut c = cache();
        let k = key(1);
        match st {
            NeighborState::Incomplete => {
                c.resolve(t(0), k, vec![1], &P);
            }
            NeighborState::Reachable => {
                c.learn(t(0), k, hw(1), Learn::Solicitation, true, &P);
                assert!(c.confirm(t(0), k, &P));
            }
            NeighborState::Stale => {
                c.learn(t(0), k, hw(1), Learn::Solicitation, true, &P);
            }
            NeighborState::Delay => {
                c.learn(t(0), k, hw(1), Learn::Solicitation, true, &P);
                c.resolve(t(0), k, vec![1], &P);
            }
            NeighborState::Probe => {
                c.learn(t(0), k, hw(1), Learn::Solicitation, true, &P);
                c.resolve(t(0), k, vec![1], &P);
                c.timer(t(5_000), k, &P);
            }
            NeighborState::Failed => {
                c.resolve(t(0), k, vec![1], &P);
                for s in 1..=3 {
                    c.timer(t(s * 1000), k, &P);
                }
            }
        }
        assert_eq!(state(&c, k, t(0)).map(|s| s.0), Some(st));
        c
    }

    const KNOWN: [NeighborState; 4] = [
        NeighborState::Reachable,
        NeighborState::Stale,
        NeighborState::Delay,
        NeighborState::Probe,
    ];

    #[test]
    fn no_entry_packet_to_send_creates_incomplete_and_solicits() {
        let mut c = cache();
        let (r, out) = c.resolve(t(0), key(1), vec![1], &P);
        assert_eq!(r, Resolve::Queued(false));
        assert_eq!(out.solicit, Some(Solicit::Multicast));
        assert_eq!(out.arm, Some(t(1000)));
        assert_eq!(
            state(&c, key(1), t(0)),
            Some((NeighborState::Incomplete, None))
        );
        // More packets queue; no second solicitation or timer.
        let (r, out) = c.resolve(t(10), key(1), vec![2], &P);
        assert_eq!(r, Resolve::Queued(false));
        assert_eq!((out.solicit, out.arm), (None, None));
    }

    #[test]
    fn incomplete_retransmits_then_fails_and_drops_the_queue() {
        let mut c = with(NeighborState::Incomplete);
        c.resolve(t(1), key(1), vec![2], &P);
        for s in 1..3 {
            let out = c.timer(t(s * 1000), key(1), &P);
            assert_eq!(out.solicit, Some(Solicit::Multicast), "retransmit {s}");
            assert_eq!(out.arm, Some(t(s * 1000 + 1000)));
        }
        let out = c.timer(t(3000), key(1), &P);
        assert_eq!(out.solicit, None);
        assert_eq!(out.failed, Some(Failure::Resolution { dropped: 2 }));
        assert_eq!(out.arm, None);
        assert_eq!(
            state(&c, key(1), t(3000)),
            Some((NeighborState::Failed, None))
        );
        // FAILED, packet to send: resolution starts afresh.
        let (r, out) = c.resolve(t(4000), key(1), vec![3], &P);
        assert_eq!(r, Resolve::Queued(false));
        assert_eq!(out.solicit, Some(Solicit::Multicast));
    }

    #[test]
    fn incomplete_unsolicited_na_or_ns_gives_stale_and_flushes() {
        for msg in [NA, NA_O, Learn::Solicitation] {
            let mut c = with(NeighborState::Incomplete);
            let out = c.learn(t(5), key(1), hw(1), msg, false, &P);
            let (a, q) = out.flush.expect("queued packets flushed");
            assert_eq!((a, Vec::from(q)), (hw(1), vec![vec![1]]));
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Stale, Some(hw(1)))),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn incomplete_solicited_na_gives_reachable_and_flushes() {
        for msg in [NA_S, NA_SO] {
            let mut c = with(NeighborState::Incomplete);
            let out = c.learn(t(5), key(1), hw(1), msg, false, &P);
            assert!(out.flush.is_some());
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Reachable, Some(hw(1))))
            );
            // The retransmit timer, when it fires, is stale.
            let out = c.timer(t(1000), key(1), &P);
            assert_eq!((out.solicit, out.arm, out.failed), (None, None, None));
        }
    }

    #[test]
    fn known_solicited_na_same_address_gives_reachable() {
        for st in KNOWN {
            let mut c = with(st);
            c.learn(t(5), key(1), hw(1), NA_S, false, &P);
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Reachable, Some(hw(1)))),
                "from {st}"
            );
        }
    }

    #[test]
    fn reachable_na_without_override_and_new_address_gives_stale_keeping_address() {
        for msg in [NA_S, NA] {
            let mut c = with(NeighborState::Reachable);
            let out = c.learn(t(5), key(1), hw(2), msg, false, &P);
            assert!(!out.lladdr_changed);
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Stale, Some(hw(1))))
            );
        }
    }

    #[test]
    fn stale_delay_probe_ignore_na_without_override_and_new_address() {
        for st in [
            NeighborState::Stale,
            NeighborState::Delay,
            NeighborState::Probe,
        ] {
            for msg in [NA_S, NA] {
                let mut c = with(st);
                c.learn(t(5), key(1), hw(2), msg, false, &P);
                assert_eq!(state(&c, key(1), t(5)), Some((st, Some(hw(1)))));
            }
        }
    }

    #[test]
    fn known_solicited_na_with_override_records_address_and_gives_reachable() {
        for st in KNOWN {
            let mut c = with(st);
            let out = c.learn(t(5), key(1), hw(2), NA_SO, false, &P);
            assert!(out.lladdr_changed);
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Reachable, Some(hw(2))))
            );
        }
    }

    #[test]
    fn known_unsolicited_na_same_address_or_no_override_leaves_state() {
        for st in KNOWN {
            for (msg, a) in [(NA, hw(1)), (NA_O, hw(1))] {
                let mut c = with(st);
                let out = c.learn(t(5), key(1), a, msg, false, &P);
                assert!(!out.lladdr_changed);
                assert_eq!(state(&c, key(1), t(5)), Some((st, Some(hw(1)))));
            }
        }
    }

    #[test]
    fn known_unsolicited_na_with_override_and_new_address_gives_stale() {
        for st in KNOWN {
            let mut c = with(st);
            let out = c.learn(t(5), key(1), hw(2), NA_O, false, &P);
            assert!(out.lladdr_changed);
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Stale, Some(hw(2))))
            );
        }
    }

    #[test]
    fn upper_layer_confirmation_gives_reachable_unless_incomplete() {
        for st in KNOWN {
            let mut c = with(st);
            assert!(c.confirm(t(5), key(1), &P));
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Reachable, Some(hw(1))))
            );
        }
        let mut c = with(NeighborState::Incomplete);
        assert!(!c.confirm(t(5), key(1), &P));
        assert!(!c.confirm(t(5), key(9), &P));
        assert_eq!(
            state(&c, key(1), t(5)),
            Some((NeighborState::Incomplete, None))
        );
    }

    #[test]
    fn reachable_times_out_to_stale() {
        let c = with(NeighborState::Reachable);
        let rt = P.base_reachable_time.as_millis() as u64;
        assert_eq!(
            state(&c, key(1), t(rt - 1)).unwrap().0,
            NeighborState::Reachable
        );
        assert_eq!(state(&c, key(1), t(rt)).unwrap().0, NeighborState::Stale);
        // No timer was needed for it.
        let mut c = cache();
        let out = c.learn(t(0), key(1), hw(1), Learn::Solicitation, true, &P);
        assert_eq!(out.arm, None);
        c.confirm(t(0), key(1), &P);
        let (r, out) = c.resolve(t(rt), key(1), vec![1], &P);
        assert_eq!(r, Resolve::Send(hw(1), vec![1]));
        assert_eq!(out.arm, Some(t(rt + 5000)), "STALE, then DELAY on send");
    }

    #[test]
    fn solicitation_creates_stale_updates_changed_address_leaves_same() {
        let mut c = cache();
        // No entry: an NS/RS creates one (STALE); an NA does not.
        c.learn(t(0), key(2), hw(2), NA_SO, false, &P);
        assert_eq!(state(&c, key(2), t(0)), None);
        c.learn(t(0), key(2), hw(2), Learn::Solicitation, false, &P);
        assert_eq!(state(&c, key(2), t(0)), None, "create=false");
        c.learn(t(0), key(1), hw(1), Learn::Solicitation, true, &P);
        assert_eq!(
            state(&c, key(1), t(0)),
            Some((NeighborState::Stale, Some(hw(1))))
        );
        for st in KNOWN {
            let mut c = with(st);
            c.learn(t(5), key(1), hw(1), Learn::Solicitation, true, &P);
            assert_eq!(state(&c, key(1), t(5)), Some((st, Some(hw(1)))), "same");
            let out = c.learn(t(5), key(1), hw(2), Learn::Solicitation, true, &P);
            assert!(out.lladdr_changed);
            assert_eq!(
                state(&c, key(1), t(5)),
                Some((NeighborState::Stale, Some(hw(2)))),
                "changed, from {st}"
            );
        }
    }

    #[test]
    fn stale_send_delays_then_probes_by_unicast_then_fails() {
        let mut c = with(NeighborState::Stale);
        let (r, out) = c.resolve(t(0), key(1), vec![9], &P);
        assert_eq!(r, Resolve::Send(hw(1), vec![9]));
        assert_eq!((out.solicit, out.arm), (None, Some(t(5000))));
        // DELAY, packet to send: sent, unchanged.
        let (r, _) = c.resolve(t(100), key(1), vec![8], &P);
        assert_eq!(r, Resolve::Send(hw(1), vec![8]));
        assert_eq!(state(&c, key(1), t(100)).unwrap().0, NeighborState::Delay);
        // Delay timeout: PROBE with a unicast probe.
        let out = c.timer(t(5000), key(1), &P);
        assert_eq!(out.solicit, Some(Solicit::Unicast(hw(1))));
        assert_eq!(out.arm, Some(t(6000)));
        // PROBE, packet to send: sent with the cached address.
        let (r, _) = c.resolve(t(5500), key(1), vec![7], &P);
        assert_eq!(r, Resolve::Send(hw(1), vec![7]));
        for s in [6000, 7000] {
            let out = c.timer(t(s), key(1), &P);
            assert_eq!(out.solicit, Some(Solicit::Unicast(hw(1))), "at {s}");
        }
        let out = c.timer(t(8000), key(1), &P);
        assert_eq!(out.failed, Some(Failure::Probes));
        assert_eq!(out.solicit, None);
        assert_eq!(
            state(&c, key(1), t(8000)),
            Some((NeighborState::Failed, None))
        );
    }

    #[test]
    fn delay_or_probe_confirmed_goes_reachable_and_its_timer_is_stale() {
        for st in [NeighborState::Delay, NeighborState::Probe] {
            let mut c = with(st);
            let out = c.learn(t(5000), key(1), hw(1), NA_S, false, &P);
            assert_eq!(out.arm, None);
            for at in [5000, 6000] {
                let out = c.timer(t(at), key(1), &P);
                assert_eq!((out.solicit, out.arm, out.failed), (None, None, None));
            }
            assert_eq!(
                state(&c, key(1), t(6000)).unwrap().0,
                NeighborState::Reachable
            );
        }
    }

    #[test]
    fn without_unicast_probes_a_stale_entry_is_resolved_again() {
        let p = NeighborParams {
            max_unicast_solicit: 0,
            ..P
        };
        let mut c = with(NeighborState::Stale);
        let (r, out) = c.resolve(t(0), key(1), vec![1], &p);
        assert_eq!(r, Resolve::Queued(false));
        assert_eq!(out.solicit, Some(Solicit::Multicast));
        assert_eq!(
            state(&c, key(1), t(0)),
            Some((NeighborState::Incomplete, None))
        );
    }

    #[test]
    fn failed_entry_learns_like_incomplete() {
        let mut c = with(NeighborState::Failed);
        c.learn(t(9000), key(1), hw(3), NA_S, false, &P);
        assert_eq!(
            state(&c, key(1), t(9000)),
            Some((NeighborState::Reachable, Some(hw(3))))
        );
    }

    #[test]
    fn queue_is_bounded_and_drops_the_oldest() {
        let p = NeighborParams { queue_len: 3, ..P };
        let mut c = cache();
        let mut dropped = 0;
        for i in 0..10u8 {
            if let (Resolve::Queued(true), _) = c.resolve(t(0), key(1), vec![i], &p) {
                dropped += 1;
            }
        }
        assert_eq!(dropped, 7);
        let out = c.learn(t(1), key(1), hw(1), NA_S, false, &p);
        let (_, q) = out.flush.unwrap();
        assert_eq!(Vec::from(q), vec![vec![7], vec![8], vec![9]]);
    }

    #[test]
    fn cache_is_bounded_and_reclaims_stale_and_failed_entries() {
        let mut c = NeighborCache::new(4, 1);
        // Two resolving, one REACHABLE, one FAILED.
        c.resolve(t(0), key(1), vec![1], &P);
        c.resolve(t(0), key(2), vec![1], &P);
        c.learn(t(0), key(3), hw(3), NA_S, true, &P);
        c.resolve(t(0), key(4), vec![1], &P);
        for s in 1..=3 {
            c.timer(t(s * 1000), key(4), &P);
        }
        c.learn(t(3000), key(1), hw(1), NA_S, false, &P);
        c.learn(t(3000), key(2), hw(2), NA_S, false, &P);
        assert_eq!(c.len(), 4);
        // Full: a new one reclaims the FAILED entry only.
        let (r, out) = c.resolve(t(3000), key(5), vec![1], &P);
        assert_eq!((r, out.reclaimed), (Resolve::Queued(false), 1));
        // Full of live entries: the next is refused, and a solicitation makes none.
        let (r, _) = c.resolve(t(3000), key(6), vec![1], &P);
        assert_eq!(r, Resolve::CacheFull);
        c.learn(t(3000), key(7), hw(7), Learn::Solicitation, true, &P);
        assert_eq!(c.len(), 4);
        // Once REACHABLE entries go STALE they are reclaimed.
        let (r, out) = c.resolve(t(40_000), key(6), vec![1], &P);
        assert_eq!(r, Resolve::Queued(false));
        assert_eq!(out.reclaimed, 3);
        assert!(c.len() <= 4);
    }

    #[test]
    fn state_changes_arm_at_most_one_timer_each_and_early_timers_rearm_once() {
        let mut c = with(NeighborState::Stale);
        let mut armed = 0;
        // STALE → DELAY → REACHABLE → (aged) STALE → DELAY ..., a thousand times
        // within one DELAY period: one timer in all.
        for i in 0..1000u64 {
            let now = t(i);
            c.learn(now, key(1), hw(2), NA_O, false, &P);
            c.learn(now, key(1), hw(1), NA_O, false, &P);
            let (_, out) = c.resolve(now, key(1), vec![1], &P);
            armed += usize::from(out.arm.is_some());
        }
        assert_eq!(armed, 1);
        // The DELAY entered at 999 ms is due at 5999: the timer at 5000 re-arms once.
        let out = c.timer(t(5000), key(1), &P);
        assert_eq!((out.solicit, out.arm), (None, Some(t(5999))));
        let out = c.timer(t(5999), key(1), &P);
        assert_eq!(out.solicit, Some(Solicit::Unicast(hw(1))));
        // A timer for an entry that is gone, or not the entry's own, does nothing.
        assert_eq!(c.timer(t(6000), key(9), &P).arm, None);
        assert_eq!(c.timer(t(6000), key(1), &P).solicit, None, "armed for 6999");
    }

    #[test]
    fn reachable_time_is_randomised_within_the_factor_and_seeded() {
        let p = NeighborParams::RFC4861;
        let times = |seed| {
            let mut c = NeighborCache::new(64, seed);
            (0..50)
                .map(|_| {
                    let r = c.rand();
                    p.reachable_time(r)
                })
                .collect::<Vec<_>>()
        };
        let a = times(1);
        assert_eq!(a, times(1));
        assert_ne!(a, times(2));
        for d in &a {
            assert!((15..=45).contains(&d.as_secs()), "{d:?}");
        }
        assert!(a.iter().any(|d| d.as_secs() < 25) && a.iter().any(|d| d.as_secs() > 35));
        assert_eq!(P.reachable_time(12345), Duration::from_secs(30));
    }
}
