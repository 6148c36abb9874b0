//! The ARP neighbour cache (RFC 826, RFC 1122 §2.3.2): resolved entries expire; a
//! resolution in progress holds a bounded queue of packets and retries a bounded
//! number of times (RFC 1122 §2.3.2.1 asks for a rate limit of one request per
//! second per destination; the retry interval is that limit).

use crate::iface::IfaceId;
use crate::time::Instant;
use berth_wire::{EthernetAddress, Ipv4Addr};
use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
enum Entry {
    Reachable {
        hw: EthernetAddress,
        expires: Instant,
    },
    Incomplete {
        queue: VecDeque<Vec<u8>>,
        retries_left: u32,
        next_retry: Instant,
    },
}

pub(crate) enum Enqueue {
    /// A new resolution started: send a request and arm the retry timer.
    Started,
    Queued,
    QueueFull,
    CacheFull,
}

pub(crate) enum Retry {
    Resend,
    /// Gave up; this many packets were dropped.
    GaveUp(usize),
    /// The timer no longer applies (resolved meanwhile, or re-armed).
    Stale,
}

#[derive(Debug, Default)]
pub(crate) struct NeighborCache {
    map: HashMap<(IfaceId, Ipv4Addr), Entry>,
}

impl NeighborCache {
    /// The hardware address for `ip`, if resolved and not expired.
    pub fn lookup(
        &mut self,
        now: Instant,
        iface: IfaceId,
        ip: Ipv4Addr,
    ) -> Option<EthernetAddress> {
        match self.map.get(&(iface, ip)) {
            Some(Entry::Reachable { hw, expires }) if *expires > now => Some(*hw),
            Some(Entry::Reachable { .. }) => {
                self.map.remove(&(iface, ip));
                None
            }
            _ => None,
        }
    }

    pub fn contains(&self, iface: IfaceId, ip: Ipv4Addr) -> bool {
        self.map.contains_key(&(iface, ip))
    }

    /// Is there room for one more entry (at most `cap`)? When the cache is full,
    /// expired entries are reclaimed first (as Linux's forced garbage collection
    /// does); this scan runs only when the cache is full.
    pub fn has_room(&mut self, now: Instant, cap: usize) -> bool {
        if self.map.len() < cap {
            return true;
        }
        self.map
            .retain(|_, e| !matches!(e, Entry::Reachable { expires, .. } if *expires <= now));
        self.map.len() < cap
    }

    /// Mark `ip` resolved; returns packets that waited for it.
    pub fn set_reachable(
        &mut self,
        iface: IfaceId,
        ip: Ipv4Addr,
        hw: EthernetAddress,
        expires: Instant,
    ) -> VecDeque<Vec<u8>> {
        match self
            .map
            .insert((iface, ip), Entry::Reachable { hw, expires })
        {
            Some(Entry::Incomplete { queue, .. }) => queue,
            _ => VecDeque::new(),
        }
    }

    /// Queue `pkt` until `ip` resolves. When the queue is full the oldest packet is
    /// dropped (Linux's unres_qlen behaviour), keeping the most recent.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &mut self,
        now: Instant,
        iface: IfaceId,
        ip: Ipv4Addr,
        pkt: Vec<u8>,
        queue_len: usize,
        cache_size: usize,
        retries: u32,
        retry_at: Instant,
    ) -> Enqueue {
        let key = (iface, ip);
        match self.map.get_mut(&key) {
            Some(Entry::Incomplete { queue, .. }) => {
                let full = queue.len() >= queue_len;
                if full {
                    queue.pop_front();
                }
                queue.push_back(pkt);
                if full {
                    Enqueue::QueueFull
                } else {
                    Enqueue::Queued
                }
            }
            other => {
                if other.is_none() && !self.has_room(now, cache_size) {
                    return Enqueue::CacheFull;
                }
                let mut queue = VecDeque::new();
                queue.push_back(pkt);
                self.map.insert(
                    key,
                    Entry::Incomplete {
                        queue,
                        retries_left: retries,
                        next_retry: retry_at,
                    },
                );
                Enqueue::Started
            }
        }
    }

    /// The retry timer for `ip` fired.
    pub fn retry(&mut self, now: Instant, iface: IfaceId, ip: Ipv4Addr, next: Instant) -> Retry {
        let key = (iface, ip);
        let Some(Entry::Incomplete {
            queue,
            retries_left,
            next_retry,
        }) = self.map.get_mut(&key)
        else {
            return Retry::Stale;
        };
        if *next_retry > now {
            return Retry::Stale;
        }
        if *retries_left == 0 {
            let n = queue.len();
            self.map.remove(&key);
            return Retry::GaveUp(n);
        }
        *retries_left -= 1;
        *next_retry = next;
        Retry::Resend
    }

    /// (ip, hw or None while resolving) for display.
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = (IfaceId, Ipv4Addr, Option<EthernetAddress>)> + '_ {
        self.map.iter().map(|(&(i, ip), e)| match e {
            Entry::Reachable { hw, .. } => (i, ip, Some(*hw)),
            Entry::Incomplete { .. } => (i, ip, None),
        })
    }
}
