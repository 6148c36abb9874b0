//! IPv4 reassembly (RFC 791 §3.2, RFC 815 hole tracking) with a timeout and a memory
//! cap. Fragment ranges are kept merged; a fragment wholly inside data already held
//! is a duplicate and ignored; a partial overlap drops the datagram (as Linux does
//! since 4.19, against overlap attacks, cf. RFC 5722 for IPv6).

use crate::time::{Duration, Instant};
use berth_wire::{Ipv4Addr, Ipv4Repr};
use std::collections::{BTreeMap, HashMap};

/// (source, destination, protocol, identification): RFC 791's reassembly key.
pub(crate) type FragKey = (Ipv4Addr, Ipv4Addr, u8, u16);

const MAX_DATAGRAM: usize = 65_535;

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
    Complete(Vec<u8>),
    Duplicate,
    Overlap,
    TooBig,
    Malformed,
    /// The datagram alone would exceed the memory cap.
    NoMemory,
}

/// A datagram given up on, for the ICMP time-exceeded message.
pub(crate) struct Expired {
    /// First-fragment header and up to 8 payload bytes, when fragment 0 arrived.
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

    /// Add one fragment. `header` is its IP header bytes; `payload` its data.
    /// Evicted datagrams (memory pressure) are reported through `evicted`.
    pub fn add(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        header: &[u8],
        payload: &[u8],
        evicted: &mut u64,
    ) -> FragOutcome {
        let key = (repr.src_addr, repr.dst_addr, repr.protocol.0, repr.ident);
        let start = repr.frag_offset as usize;
        let end = start + payload.len();
        if header.len() + end > MAX_DATAGRAM {
            self.drop_key(&key);
            return FragOutcome::TooBig;
        }
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        if repr.more_frags && (payload.len() & 7 != 0 || payload.is_empty()) {
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
        if !repr.more_frags {
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
        // Rewrite total length, clear MF and offset (keep DF), fix the checksum.
        let tl = out.len() as u16;
        out[2..4].copy_from_slice(&tl.to_be_bytes());
        out[6] &= 0x40;
        out[7] = 0;
        out[10] = 0;
        out[11] = 0;
        let c = berth_wire::checksum::checksum(&out[..hl]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
        FragOutcome::Complete(out)
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
            (Some(h), Some(&(0, e))) => Some((h.clone(), p.data[..e.min(8)].to_vec())),
            _ => None,
        };
        Some(Expired { first })
    }
}
