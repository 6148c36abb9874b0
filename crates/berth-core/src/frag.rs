//! Reassembly for both families (IPv4: RFC 791 §3.2; IPv6: RFC 8200 §4.5; RFC 815
//! hole tracking) with a timeout and one memory cap shared by both. Fragment
//! ranges are kept merged; a fragment wholly inside data already held is a
//! duplicate and ignored; a partial overlap drops the datagram (RFC 5722 for
//! IPv6, and as Linux does for IPv4 since 4.19, against overlap attacks).
//!
//! The reassembler knows neither header format: it keeps the first fragment's
//! header bytes as given and returns them with the data joined; the family's
//! input code fixes the length fields.

use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// The reassembly key: IPv4's (source, destination, protocol, identification),
/// RFC 791; IPv6's (source, destination, identification), RFC 8200 §4.5, with
/// `protocol` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub ident: u32,
}

/// One fragment: where its data goes and whether more follow.
pub(crate) struct Fragment<'a> {
    pub key: FragKey,
    /// Offset of `payload` in the datagram's payload, bytes.
    pub offset: usize,
    pub more: bool,
    /// The header to keep if this is the first fragment: IPv4's header, or
    /// IPv6's unfragmentable part with the fragment header taken out.
    pub header: &'a [u8],
    pub payload: &'a [u8],
    /// Largest whole packet, header included: 65,535 for IPv4, 65,575 for IPv6
    /// (whose 16-bit length excludes the 40-byte fixed header).
    pub max_len: usize,
}

/// Most payload bytes kept for the time-exceeded error of an expired datagram
/// (ICMPv6 quotes up to 1280 − 48 bytes in all; ICMPv4 only 8).
const QUOTE_MAX: usize = 1232;

/// Bookkeeping charged against the memory cap for each partial datagram on top of
/// its data (header copy, range list, map entries), so that a flood of tiny
/// fragments with distinct keys is bounded too (Linux charges skb truesize).
const PARTIAL_OVERHEAD: usize = 256;

#[derive(Debug)]
struct Partial {
    /// Header of the first fragment (offset 0), once seen.
    header: Option<Vec<u8>>,
    data: Vec<u8>,
    /// Received byte ranges of the payload, sorted and merged.
    ranges: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (MF=0) arrived.
    total: Option<usize>,
    /// Key in `Reassembler::order`: arrival of the first fragment. Every datagram
    /// has the same timeout, so arrival order is deadline order.
    order_key: (Instant, u64),
}

#[derive(Debug)]
pub(crate) enum FragOutcome {
    Incomplete {
        new_deadline: Option<Instant>,
    },
    /// The first fragment's header followed by the whole payload; the header's
    /// length fields still describe the first fragment.
    Complete(Vec<u8>, usize),
    Duplicate,
    Overlap,
    TooBig,
    Malformed,
    /// The datagram alone would exceed the memory cap.
    NoMemory,
}

/// A datagram given up on, for the ICMP time-exceeded message.
pub(crate) struct Expired {
    pub key: FragKey,
    /// First-fragment header and the payload bytes held from offset 0 (at most
    /// what an ICMPv6 error quotes), when fragment 0 arrived.
    pub first: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug)]
pub(crate) struct Reassembler {
    map: HashMap<FragKey, Partial>,
    /// Live datagrams oldest first, for evicting the oldest when memory runs out.
    order: BTreeMap<(Instant, u64), FragKey>,
    seq: u64,
    mem: usize,
    cap: usize,
    timeout: Duration,
}

impl Reassembler {
    pub fn new(cap: usize, timeout: Duration) -> Self {
        Reassembler {
            map: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            mem: 0,
            cap,
            timeout,
        }
    }

    pub fn mem(&self) -> usize {
        self.mem
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Datagrams waiting for fragments that are IPv6 (the rest are IPv4).
    pub fn len_v6(&self) -> usize {
        self.map.keys().filter(|k| k.src.is_ipv6()).count()
    }

    /// Add one fragment. Evicted datagrams (memory pressure) are reported through
    /// `evicted`.
    pub fn add(&mut self, now: Instant, f: &Fragment, evicted: &mut u64) -> FragOutcome {
        let (key, header, payload) = (f.key, f.header, f.payload);
        let start = f.offset;
        let end = start + payload.len();
        if header.len() + end > f.max_len {
            self.drop_key(&key);
            return FragOutcome::TooBig;
        }
        // RFC 791, RFC 8200 §4.5: every fragment but the last carries a multiple
        // of 8 bytes.
        if f.more && (payload.len() & 7 != 0 || payload.is_empty()) {
            return FragOutcome::Malformed;
        }
        if end + PARTIAL_OVERHEAD > self.cap {
            // This datagram can never fit: release what is held of it now rather
            // than at its timeout.
            self.drop_key(&key);
            return FragOutcome::NoMemory;
        }
        let mut new_deadline = None;
        if !self.map.contains_key(&key) {
            let deadline = now + self.timeout;
            self.seq += 1;
            self.mem += PARTIAL_OVERHEAD;
            let order_key = (now, self.seq);
            self.map.insert(
                key,
                Partial {
                    header: None,
                    data: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                    order_key,
                },
            );
            self.order.insert(order_key, key);
            new_deadline = Some(deadline);
        }
        // Memory: growth of this datagram's buffer.
        let grow = {
            let p = &self.map[&key];
            end.saturating_sub(p.data.len())
        };
        // Evict the oldest other datagrams until this one fits.
        while self.mem + grow > self.cap {
            let victim = self.order.values().copied().find(|k| *k != key);
            let Some(old) = victim else { break };
            if self.drop_key(&old) {
                *evicted += 1;
            }
        }
        if self.mem + grow > self.cap {
            self.drop_key(&key);
            return FragOutcome::NoMemory;
        }
        let Some(p) = self.map.get_mut(&key) else {
            return FragOutcome::NoMemory;
        };
        // Last fragment fixes the total; a second, different total is malformed.
        if !f.more {
            match p.total {
                Some(t) if t != end => {
                    self.drop_key(&key);
                    return FragOutcome::Malformed;
                }
                _ => p.total = Some(end),
            }
        }
        if let Some(t) = p.total {
            if end > t || p.ranges.last().is_some_and(|r| r.1 > t) {
                self.drop_key(&key);
                return FragOutcome::Malformed;
            }
        }
        // Duplicate or overlap?
        for &(s, e) in &p.ranges {
            if start >= s && end <= e {
                return FragOutcome::Duplicate;
            }
            if start < e && end > s {
                self.drop_key(&key);
                return FragOutcome::Overlap;
            }
        }
        if p.data.len() < end {
            self.mem += end - p.data.len();
            p.data.resize(end, 0);
        }
        p.data[start..end].copy_from_slice(payload);
        if start == 0 {
            p.header = Some(header.to_vec());
        }
        // Insert and merge the range.
        let pos = p.ranges.partition_point(|r| r.0 < start);
        p.ranges.insert(pos, (start, end));
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(p.ranges.len());
        for &(s, e) in &p.ranges {
            match merged.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => merged.push((s, e)),
            }
        }
        p.ranges = merged;
        let complete = p.total.is_some_and(|t| p.ranges == [(0, t)]) && p.header.is_some();
        if !complete {
            return FragOutcome::Incomplete { new_deadline };
        }
        let Some(p) = self.remove(&key) else {
            return FragOutcome::Malformed;
        };
        let Some(mut out) = p.header else {
            return FragOutcome::Malformed;
        };
        let hl = out.len();
        out.extend_from_slice(&p.data);
        FragOutcome::Complete(out, hl)
    }

    fn remove(&mut self, key: &FragKey) -> Option<Partial> {
        let p = self.map.remove(key)?;
        self.mem -= p.data.len() + PARTIAL_OVERHEAD;
        self.order.remove(&p.order_key);
        Some(p)
    }

    fn drop_key(&mut self, key: &FragKey) -> bool {
        self.remove(key).is_some()
    }

    /// When the oldest partial datagram times out, if there is one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.order.keys().next().map(|&(at, _)| at + self.timeout)
    }

    /// Give up on the oldest partial datagram if its deadline has passed. Called in
    /// a loop when the (single) reassembly timer fires.
    pub fn expire_next(&mut self, now: Instant) -> Option<Expired> {
        let (&(at, _), &key) = self.order.iter().next()?;
        if at + self.timeout > now {
            return None;
        }
        let p = self.remove(&key)?;
        let first = match (&p.header, p.ranges.first()) {
            (Some(h), Some(&(0, e))) => Some((h.clone(), p.data[..e.min(QUOTE_MAX)].to_vec())),
            _ => None,
        };
        Some(Expired { key, first })
    }
}
