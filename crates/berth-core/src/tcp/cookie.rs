//! SYN cookies (RFC 4987 §3.6), laid out as Linux's (net/ipv4/syncookies.c).
//!
//! When a listener's SYN queue is full (or always, with `SynCookies::Always`)
//! the SYN-ACK's sequence number carries the state instead of a queue entry:
//!
//! ```text
//! ISS = H1(tuple) + IRS + (count << 24) + ((H2(tuple, count) + mss_index) mod 2^24)
//! ```
//!
//! `count` is a minute counter; `H1`, `H2` are keyed SipHash. The final ACK
//! (ack = ISS + 1, seq = IRS + 1) gives both numbers back: subtracting `H1` and
//! `IRS` yields `count` in the top 8 bits, which must be at most one period old,
//! and then `H2(count)` leaves the MSS index, which must be in the table. A
//! forged cookie passes with probability about 4 / 2^24 per guess.
//!
//! What does not fit in 32 bits — the peer's window scale and SACK-permitted —
//! rides in the low 6 bits of our timestamp when the SYN carried timestamps
//! (Linux cookie_init_timestamp); the ACK echoes it in TSecr. Without
//! timestamps a cookie connection has neither (RFC 4987 §3.6: the cost of
//! cookies).

use super::isn::IsnGenerator;
use crate::table::FourTuple;
use crate::time::Instant;
use berth_wire::SeqNumber;
use siphasher::sip::SipHasher24;
use std::hash::Hasher;

/// MSS values a cookie can name (Linux msstab for IPv4): the most common peer
/// MSS values, so the choice loses little.
pub(crate) const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

const COUNT_SHIFT: u32 = 24;
const COOKIE_MASK: u32 = (1 << COUNT_SHIFT) - 1;
/// A cookie is valid in the period it was made and the next (Linux
/// MAX_SYNCOOKIE_AGE 2): between one and two minutes.
const MAX_AGE: u32 = 2;
/// Length of one counter period (Linux tcp_cookie_time: 60 s).
const PERIOD_MS: u64 = 60_000;

/// Low bits of the timestamp that carry options (Linux TSBITS 6).
const TS_BITS: u32 = 6;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;

/// How long after the last cookie was sent a listener still checks ACKs for
/// cookies (Linux TCP_SYNCOOKIE_VALID, 2 minutes); otherwise a stray ACK is
/// answered with a reset without hashing.
pub(crate) const RECENT: crate::time::Duration = crate::time::Duration::from_secs(120);

/// When a listener answers SYNs with cookies (Linux net.ipv4.tcp_syncookies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynCookies {
    /// Never (0): a SYN to a full SYN queue is dropped.
    Off,
    /// When the listener's SYN queue is full (1, the default).
    #[default]
    OnOverflow,
    /// For every SYN (2): no half-open state at all.
    Always,
}

impl SynCookies {
    /// From Linux's sysctl value: 0, 1 or 2.
    pub fn from_sysctl(v: u8) -> Option<SynCookies> {
        match v {
            0 => Some(SynCookies::Off),
            1 => Some(SynCookies::OnOverflow),
            2 => Some(SynCookies::Always),
            _ => None,
        }
    }
}

/// The keyed hashes behind the cookies; keys derived from the ISN secret.
#[derive(Debug, Clone)]
pub(crate) struct CookieJar {
    k0: u64,
    k1: u64,
}

impl CookieJar {
    pub fn new(isn: &IsnGenerator) -> CookieJar {
        let (k0, k1) = isn.subkeys(b"syncookie");
        CookieJar { k0, k1 }
    }

    fn hash(&self, t: &FourTuple, count: Option<u32>) -> u32 {
        let (k0, k1) = match count {
            None => (self.k0, self.k1),
            Some(_) => (self.k1, self.k0),
        };
        let mut h = SipHasher24::new_with_keys(k0, k1);
        t.hash_into(&mut h);
        if let Some(c) = count {
            h.write_u32(c);
        }
        h.finish() as u32
    }

    fn counter(now: Instant) -> u32 {
        (now.total_millis() / PERIOD_MS) as u32
    }

    /// Index of the largest table MSS not above the peer's (536 when it sent
    /// none, or less).
    pub fn mss_index(peer_mss: Option<u16>) -> u32 {
        let mss = peer_mss.unwrap_or(536);
        MSS_TABLE.iter().rposition(|&m| mss >= m).unwrap_or(0) as u32
    }

    /// The ISS for a SYN from `t` with sequence `irs` (Linux
    /// secure_tcp_syn_cookie).
    pub fn make(
        &self,
        now: Instant,
        t: &FourTuple,
        irs: SeqNumber,
        peer_mss: Option<u16>,
    ) -> SeqNumber {
        let count = Self::counter(now);
        let data = Self::mss_index(peer_mss);
        let v = self
            .hash(t, None)
            .wrapping_add(irs.0)
            .wrapping_add(count << COUNT_SHIFT)
            .wrapping_add(self.hash(t, Some(count)).wrapping_add(data) & COOKIE_MASK);
        SeqNumber(v)
    }

    /// The MSS a cookie encodes, if it is ours, for this tuple and IRS, and
    /// fresh (Linux check_tcp_syn_cookie).
    pub fn check(
        &self,
        now: Instant,
        t: &FourTuple,
        irs: SeqNumber,
        cookie: SeqNumber,
    ) -> Option<u16> {
        let v = cookie
            .0
            .wrapping_sub(self.hash(t, None))
            .wrapping_sub(irs.0);
        let made = v >> COUNT_SHIFT;
        // Periods are compared in the 8 bits the cookie keeps.
        let age = Self::counter(now).wrapping_sub(made) & 0xff;
        if age >= MAX_AGE {
            return None;
        }
        let count = Self::counter(now).wrapping_sub(age);
        let data = v.wrapping_sub(self.hash(t, Some(count))) & COOKIE_MASK;
        MSS_TABLE.get(data as usize).copied()
    }
}

/// Our timestamp clock value (before the per-connection offset) for a cookie
/// SYN-ACK: the current millisecond clock with its low bits replaced by the
/// options, never ahead of the clock (Linux cookie_init_timestamp).
pub(crate) fn encode_ts(ts_now: u32, window_scale: Option<u8>, sack: bool) -> u32 {
    let mut opts = window_scale.map_or(TS_WSCALE_MASK, |s| u32::from(s.min(14)));
    if sack {
        opts |= TS_SACK;
    }
    let ts = (ts_now >> TS_BITS << TS_BITS) | opts;
    if ts > ts_now {
        ts.wrapping_sub(1 << TS_BITS)
    } else {
        ts
    }
}

/// The options an echoed cookie timestamp carries (Linux
/// cookie_timestamp_decode): the 4-bit field is a shift of 0–14, or 15 for
/// "no window scaling".
pub(crate) fn decode_ts(tsecr: u32) -> (Option<u8>, bool) {
    let ws = tsecr & TS_WSCALE_MASK;
    let window_scale = (ws != TS_WSCALE_MASK).then_some(ws as u8);
    (window_scale, tsecr & TS_SACK != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::Ipv4Addr;

    fn tuple(port: u16) -> FourTuple {
        FourTuple::from((
            Ipv4Addr::new(192, 0, 2, 1),
            80,
            Ipv4Addr::new(198, 51, 100, 7),
            port,
        ))
    }

    #[test]
    fn round_trip_every_mss_and_period_edge() {
        let jar = CookieJar::new(&IsnGenerator::new(7, 9));
        let t = tuple(40000);
        for (mss, want) in [
            (None, 536),
            (Some(100), 536),
            (Some(1299), 536),
            (Some(1300), 1300),
            (Some(1459), 1440),
            (Some(1460), 1460),
            (Some(8960), 1460),
        ] {
            for made_ms in [0u64, 59_999, 60_000, 3_600_000] {
                let made = Instant::from_millis(made_ms);
                let irs = SeqNumber(0xfffffff0);
                let c = jar.make(made, &t, irs, mss);
                assert_eq!(jar.check(made, &t, irs, c), Some(want));
                // Still valid in the next period, not the one after.
                let next = Instant::from_millis(made_ms / PERIOD_MS * PERIOD_MS + PERIOD_MS);
                assert_eq!(jar.check(next, &t, irs, c), Some(want));
                let stale = Instant::from_millis(made_ms / PERIOD_MS * PERIOD_MS + 2 * PERIOD_MS);
                assert_eq!(jar.check(stale, &t, irs, c), None);
            }
        }
    }

    #[test]
    fn forged_cookies_fail() {
        let jar = CookieJar::new(&IsnGenerator::new(7, 9));
        let now = Instant::from_millis(5_000);
        let t = tuple(40000);
        let irs = SeqNumber(1234);
        let c = jar.make(now, &t, irs, Some(1460));
        // Another tuple, another IRS, another key, or a nearby value.
        assert_eq!(jar.check(now, &tuple(40001), irs, c), None);
        assert_eq!(jar.check(now, &t, irs + 0x10000, c), None);
        // (As in Linux, the MSS index is added in: IRS + 1 reads as index 2.)
        assert_eq!(jar.check(now, &t, irs + 1, c), Some(1440));
        let other = CookieJar::new(&IsnGenerator::new(8, 9));
        assert_eq!(other.check(now, &t, irs, c), None);
        let mut accepted = 0;
        for d in 1..=10_000usize {
            if jar.check(now, &t, irs, c + d).is_some() {
                accepted += 1;
            }
        }
        // Only values whose low 24 bits land on another table index pass.
        assert!(accepted <= 3, "{accepted} forged cookies accepted");
    }

    #[test]
    fn timestamp_carries_wscale_and_sack() {
        for now in [0u32, 63, 64, 1_000_007, u32::MAX] {
            for ws in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    let ts = encode_ts(now, ws, sack);
                    assert!(now.wrapping_sub(ts) < 64, "ts {ts} now {now}");
                    assert_eq!(decode_ts(ts), (ws, sack));
                }
            }
        }
    }
}
