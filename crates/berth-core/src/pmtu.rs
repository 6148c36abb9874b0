//! Path MTU cache (RFC 1191 for IPv4, RFC 8201 for IPv6): the MTU learnt for a
//! destination from fragmentation-needed / Packet Too Big, lower than the
//! route's. Entries expire (RFC 8201 §4 "at least 5 minutes"; Linux
//! ip_rt_mtu_expires 10 minutes) so that a path that grew is found again by
//! new connections. Bounded: a flood of forged ICMP for many destinations
//! evicts the oldest entries, and one timer is armed at a time (for the
//! oldest), so neither memory nor the timer heap grows with it.

use crate::stack::Stack;
use crate::time::{Duration, Instant};
use crate::timer::Timer;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Least path MTU believed for IPv4 (Linux min_pmtu 552): a lower value in a
/// fragmentation-needed message is clamped to it.
pub(crate) const MIN_PMTU_V4: usize = 552;
/// IPv6's minimum link MTU (RFC 8200 §5, RFC 8201 §4): a Packet Too Big
/// below it sets 1280.
pub(crate) const MIN_PMTU_V6: usize = 1280;

/// The MTU plateaus of RFC 1191 §7, for a fragmentation-needed message from
/// a router that does not fill in the next-hop MTU (code 4 with MTU 0).
const PLATEAUS: [usize; 10] = [
    32_000, 17_914, 8_166, 4_352, 2_002, 1_492, 1_006, 508, 296, 68,
];

/// RFC 1191 §5: without a next-hop MTU, guess the largest plateau below the
/// total length of the datagram that was too big.
pub(crate) fn plateau_below(total_len: usize) -> usize {
    PLATEAUS
        .iter()
        .copied()
        .find(|&p| p < total_len)
        .unwrap_or(68)
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    mtu: usize,
    expires: Instant,
    /// Key of this entry in `PmtuCache::order`.
    stamp: u64,
}

/// Learnt path MTUs by destination, oldest update first in `order`.
#[derive(Debug)]
pub(crate) struct PmtuCache {
    entries: HashMap<IpAddr, Entry>,
    /// (expiry, stamp) → destination: the oldest entry first. All entries live
    /// equally long, so the oldest update is also the first to expire.
    order: BTreeMap<(Instant, u64), IpAddr>,
    stamp: u64,
    capacity: usize,
    lifetime: Duration,
    /// Deadline of the one armed `Timer::Pmtu`, if any.
    pub(crate) timer: Option<Instant>,
}

/// What `PmtuCache::lower` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// The path MTU of the destination is now this.
    Lowered(usize),
    /// Not lower than what is known already.
    Ignored,
}

impl PmtuCache {
    pub(crate) fn new(capacity: usize, lifetime: Duration) -> PmtuCache {
        PmtuCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            stamp: 0,
            capacity,
            lifetime,
            timer: None,
        }
    }

    /// The path MTU learnt for `dst`, unless it has expired by `now`.
    pub(crate) fn get(&self, now: Instant, dst: IpAddr) -> Option<usize> {
        self.entries
            .get(&dst)
            .filter(|e| e.expires > now)
            .map(|e| e.mtu)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Record `mtu` for `dst` if it is below `current` (the route's MTU or
    /// the entry's); the entry's lifetime starts again (as Linux's
    /// __ip_rt_update_pmtu). Entries evicted to make room are added to `evicted`.
    pub(crate) fn lower(
        &mut self,
        now: Instant,
        dst: IpAddr,
        mtu: usize,
        current: usize,
        evicted: &mut u64,
    ) -> Update {
        if mtu >= current {
            return Update::Ignored;
        }
        if let Some(old) = self.entries.remove(&dst) {
            self.order.remove(&(old.expires, old.stamp));
        }
        while self.entries.len() >= self.capacity.max(1) {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&victim);
            *evicted += 1;
        }
        self.stamp += 1;
        let expires = now + self.lifetime;
        self.entries.insert(
            dst,
            Entry {
                mtu,
                expires,
                stamp: self.stamp,
            },
        );
        self.order.insert((expires, self.stamp), dst);
        Update::Lowered(mtu)
    }

    /// Drop every entry expired by `now`; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> u64 {
        let mut n = 0;
        while let Some((&(at, stamp), &dst)) = self.order.first_key_value() {
            if at > now {
                break;
            }
            self.order.remove(&(at, stamp));
            self.entries.remove(&dst);
            n += 1;
        }
        n
    }

    /// When the oldest entry expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.order.first_key_value().map(|(&(at, _), _)| at)
    }

    /// The index and the order agree (for `Stack::check_invariants`).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.entries.len() != self.order.len() || self.entries.len() > self.capacity.max(1) {
            return Err(format!(
                "path MTU cache: {} entries, {} in order, capacity {}",
                self.entries.len(),
                self.order.len(),
                self.capacity
            ));
        }
        for (&(at, stamp), dst) in &self.order {
            match self.entries.get(dst) {
                Some(e) if e.expires == at && e.stamp == stamp => {}
                _ => return Err(format!("path MTU cache: {dst} out of order")),
            }
        }
        Ok(())
    }
}

impl Stack {
    /// The path MTU learnt for `dst`, if any (RFC 1191, RFC 8201).
    pub fn path_mtu(&self, dst: IpAddr) -> Option<usize> {
        self.pmtu.get(self.last_now, dst)
    }

    /// Destinations with a learnt path MTU (expired ones until the expiry
    /// timer removes them).
    pub fn path_mtu_entries(&self) -> usize {
        self.pmtu.len()
    }

    /// A router says packets to `dst` must be at most `mtu` bytes: clamp to
    /// the family's minimum, then lower the cached path MTU if that is below
    /// the current one. Returns the new path MTU, `None` when nothing changed.
    pub(crate) fn pmtu_lower(&mut self, now: Instant, dst: IpAddr, mtu: usize) -> Option<usize> {
        let min = match dst {
            IpAddr::V4(_) => MIN_PMTU_V4,
            IpAddr::V6(_) => MIN_PMTU_V6,
        };
        let mtu = if mtu < min {
            self.stats.pmtu_clamped += 1;
            min
        } else {
            mtu
        };
        let current = self.mtu_for(dst);
        let mut evicted = 0;
        let update = self.pmtu.lower(now, dst, mtu, current, &mut evicted);
        self.stats.pmtu_evicted += evicted;
        match update {
            Update::Ignored => {
                self.stats.pmtu_ignored += 1;
                None
            }
            Update::Lowered(m) => {
                self.stats.pmtu_lowered += 1;
                self.arm_pmtu_timer();
                Some(m)
            }
        }
    }

    /// Fragmentation needed (RFC 1191) or Packet Too Big (RFC 8201) about a
    /// packet we sent: `quoted` its (source, destination), `protocol` and
    /// `data` the start of its payload, `mtu` the size the router allows.
    /// About TCP the report is believed only for a segment in flight (RFC
    /// 5927 §5.2, in `tcp_pmtu_error`); about UDP, raw and ICMP, which keep
    /// no sequence state, it is taken as Linux takes it, clamped.
    pub(crate) fn pmtu_report(
        &mut self,
        now: Instant,
        quoted: (IpAddr, IpAddr),
        protocol: berth_wire::IpProtocol,
        data: &[u8],
        mtu: usize,
    ) {
        if !self.is_local_addr(quoted.0) || self.is_local_addr(quoted.1) {
            return;
        }
        if protocol == berth_wire::IpProtocol::TCP {
            self.tcp_pmtu_error(now, quoted, data, mtu);
        } else {
            self.pmtu_lower(now, quoted.1, mtu);
        }
    }

    /// Arm the expiry timer for the oldest entry unless one is armed for that
    /// deadline or earlier (as `arm_reassembly_timer`).
    fn arm_pmtu_timer(&mut self) {
        if let Some(at) = self.pmtu.next_expiry() {
            if self.pmtu.timer.is_none_or(|armed| at < armed) {
                self.timers.arm(at, Timer::Pmtu);
                self.pmtu.timer = Some(at);
            }
        }
    }

    /// `Timer::Pmtu` fired: drop expired entries, arm for the next.
    pub(crate) fn pmtu_timer(&mut self, now: Instant) {
        if self.pmtu.timer.is_some_and(|armed| armed > now) {
            return;
        }
        self.pmtu.timer = None;
        self.stats.pmtu_expired += self.pmtu.expire(now);
        self.arm_pmtu_timer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n))
    }

    #[test]
    fn lowers_only_expires_and_evicts_the_oldest() {
        let mut c = PmtuCache::new(3, Duration::from_secs(600));
        let t = Instant::from_millis(1000);
        let mut ev = 0;
        assert_eq!(c.lower(t, a(1), 1400, 1500, &mut ev), Update::Lowered(1400));
        assert_eq!(c.lower(t, a(1), 1400, 1400, &mut ev), Update::Ignored);
        assert_eq!(c.get(t, a(1)), Some(1400));
        for n in 2..=4 {
            c.lower(t + Duration::from_secs(n as u64), a(n), 1000, 1500, &mut ev);
        }
        assert_eq!((c.len(), ev), (3, 1));
        assert_eq!(c.get(t, a(1)), None, "the oldest was evicted");
        c.check().unwrap();
        let late = t + Duration::from_secs(603);
        assert_eq!(c.get(late, a(2)), None);
        assert_eq!(c.get(late, a(4)), Some(1000));
        assert_eq!(c.expire(late), 2);
        assert_eq!(c.len(), 1);
        c.check().unwrap();
    }

    #[test]
    fn plateaus_follow_rfc_1191() {
        assert_eq!(plateau_below(1500), 1492);
        assert_eq!(plateau_below(1492), 1006);
        assert_eq!(plateau_below(1006), 508);
        assert_eq!(plateau_below(65_535), 32_000);
        assert_eq!(plateau_below(40), 68);
    }
}
