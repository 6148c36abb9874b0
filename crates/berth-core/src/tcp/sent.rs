//! The record of sent segments (as quinn's `sent_packets` and Linux's
//! retransmission queue): for every segment in flight its sequence range, when it
//! was last transmitted, whether it was retransmitted, SACKed or declared lost.
//! RACK (RFC 8985) reads transmit times from it; loss recovery finds what to
//! retransmit in it; pipe (RFC 6675 §4, Linux tcp_packets_in_flight) is counted
//! from it.

use crate::time::Instant;
use berth_wire::SeqNumber;
use std::collections::VecDeque;

/// Most records kept. Retransmissions with other boundaries split records at
/// their edges (SACK blocks never do); past this, records are no longer split.
pub(crate) const MAX_RECORDS: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentSeg {
    pub start: SeqNumber,
    pub end: SeqNumber,
    /// Last (re)transmission.
    pub xmit: Instant,
    /// TSval it carried (for Eifel / RACK ambiguity checks).
    pub ts_val: Option<u32>,
    pub retrans: bool,
    pub sacked: bool,
    /// Declared lost and not yet retransmitted.
    pub lost: bool,
}

impl SentSeg {
    pub fn len(&self) -> usize {
        (self.end - self.start).max(0) as usize
    }
}

/// A segment newly delivered (cumulatively acknowledged or SACKed) by one ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub end: SeqNumber,
    pub xmit: Instant,
    pub ts_val: Option<u32>,
    pub retrans: bool,
    /// Delivered by a SACK block rather than the cumulative ACK.
    pub sacked: bool,
}

#[derive(Debug, Default)]
pub(crate) struct SentQueue {
    q: VecDeque<SentSeg>,
    /// Bytes in records marked SACKed / lost (kept so pipe is O(1)).
    sacked_bytes: usize,
    lost_bytes: usize,
}

impl SentQueue {
    /// Fuzzing invariants: records sorted, disjoint and non-empty, inside
    /// [una, max]; the SACKed / lost byte counts match the records.
    pub(crate) fn check(&self, una: SeqNumber, max: SeqNumber) -> Result<(), String> {
        let (mut sacked, mut lost) = (0, 0);
        let mut prev: Option<SeqNumber> = None;
        for r in &self.q {
            if r.end <= r.start {
                return Err(format!("sent record {r:?} is empty or reversed"));
            }
            if prev.is_some_and(|p| r.start < p) {
                return Err(format!(
                    "sent record {r:?} overlaps or precedes the one before"
                ));
            }
            if r.start < una || r.end > max {
                return Err(format!(
                    "sent record {r:?} outside snd_una {una} .. snd_max {max}"
                ));
            }
            prev = Some(r.end);
            if r.sacked {
                sacked += r.len();
            } else if r.lost {
                lost += r.len();
            }
        }
        if (sacked, lost) != (self.sacked_bytes, self.lost_bytes) {
            return Err(format!(
                "sent queue counts sacked {} lost {}, records hold {sacked} / {lost}",
                self.sacked_bytes, self.lost_bytes
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn sacked_bytes(&self) -> usize {
        self.sacked_bytes
    }

    #[cfg(test)]
    pub fn lost_bytes(&self) -> usize {
        self.lost_bytes
    }

    /// Bytes in the network: sent, not acknowledged, not SACKed, not lost
    /// (Linux: packets_out − sacked_out − lost_out + retrans_out, with lost
    /// cleared on retransmission).
    pub fn pipe(&self, flight: usize) -> usize {
        flight.saturating_sub(self.sacked_bytes + self.lost_bytes)
    }

    /// Index of the record holding `seq`.
    fn find(&self, seq: SeqNumber) -> Option<usize> {
        let i = self.q.partition_point(|s| s.end <= seq);
        (i < self.q.len() && self.q[i].start <= seq).then_some(i)
    }

    /// Split the record holding `at` so that a record starts there.
    fn split_at(&mut self, at: SeqNumber) {
        if self.q.len() >= MAX_RECORDS {
            return;
        }
        if let Some(i) = self.find(at) {
            let r = self.q[i];
            if r.start < at {
                let mut right = r;
                right.start = at;
                self.q[i].end = at;
                self.q.insert(i + 1, right);
            }
        }
    }

    fn account(&mut self, r: &SentSeg, sign: bool) {
        let n = r.len();
        let f = |v: &mut usize| {
            if sign {
                *v += n
            } else {
                *v = v.saturating_sub(n)
            }
        };
        if r.sacked {
            f(&mut self.sacked_bytes);
        } else if r.lost {
            f(&mut self.lost_bytes);
        }
    }

    /// A data segment [start, end) left now: a new record, or the records it
    /// retransmits are stamped again and are no longer lost.
    pub fn on_send(&mut self, start: SeqNumber, end: SeqNumber, now: Instant, ts_val: Option<u32>) {
        if end <= start {
            return;
        }
        let tail = self.q.back().map(|r| r.end);
        if tail.is_none_or(|t| start >= t) {
            self.q.push_back(SentSeg {
                start,
                end,
                xmit: now,
                ts_val,
                retrans: false,
                sacked: false,
                lost: false,
            });
            return;
        }
        self.split_at(start);
        self.split_at(end);
        let mut i = self.q.partition_point(|s| s.end <= start);
        while i < self.q.len() && self.q[i].start < end {
            let r = self.q[i];
            self.account(&r, false);
            let r = &mut self.q[i];
            r.xmit = now;
            r.ts_val = ts_val;
            r.retrans = true;
            r.lost = false;
            let r = *r;
            self.account(&r, true);
            i += 1;
        }
        if let Some(t) = self.q.back().map(|r| r.end) {
            if end > t {
                self.on_send(t, end, now, ts_val);
            }
        }
    }

    /// Give the memory back once nothing is in flight (an idle connection keeps
    /// little, as Linux frees acknowledged skbs).
    pub fn release_if_empty(&mut self) {
        if self.q.is_empty() && self.q.capacity() > 0 {
            self.q = VecDeque::new();
        }
    }

    /// Cumulative ACK up to `una`: drop what it covers. Returns the records
    /// delivered by it that had not been SACKed before.
    pub fn on_ack(&mut self, una: SeqNumber, out: &mut Vec<Delivered>) {
        while let Some(r) = self.q.front().copied() {
            if r.end <= una {
                self.account(&r, false);
                if !r.sacked {
                    out.push(Delivered {
                        end: r.end,
                        xmit: r.xmit,
                        ts_val: r.ts_val,
                        retrans: r.retrans,
                        sacked: false,
                    });
                }
                self.q.pop_front();
            } else {
                if r.start < una {
                    self.account(&r, false);
                    let f = &mut self.q[0];
                    f.start = una;
                    let f = *f;
                    self.account(&f, true);
                }
                break;
            }
        }
    }

    /// Mark the records inside SACK block [l, r) as SACKed; returns those newly
    /// delivered by it. A record the block covers only in part stays un-SACKed
    /// (records are not split at SACK edges): a segment is delivered whole or not
    /// at all, so a block that cuts one (a receiver or middlebox that splits
    /// segments, or a forged SACK of one byte) says nothing about it — as
    /// Linux's tcp_match_skb_to_sack, which tags whole MSS units only.
    pub fn on_sack(&mut self, l: SeqNumber, r: SeqNumber, out: &mut Vec<Delivered>) {
        let mut i = self.q.partition_point(|s| s.end <= l);
        while i < self.q.len() && self.q[i].start < r {
            let rec = self.q[i];
            if !rec.sacked && rec.start >= l && rec.end <= r {
                self.account(&rec, false);
                self.q[i].sacked = true;
                self.q[i].lost = false;
                let rec2 = self.q[i];
                self.account(&rec2, true);
                out.push(Delivered {
                    end: rec.end,
                    xmit: rec.xmit,
                    ts_val: rec.ts_val,
                    retrans: rec.retrans,
                    sacked: true,
                });
            }
            i += 1;
        }
    }

    /// Declare record `i` lost (it will be retransmitted).
    pub fn mark_lost(&mut self, i: usize) {
        let r = self.q[i];
        if r.sacked || r.lost {
            return;
        }
        self.q[i].lost = true;
        self.lost_bytes += r.len();
    }

    /// Forget SACK and loss marks (the peer may have reneged; RFC 2018 §8).
    pub fn clear_marks(&mut self) {
        for r in self.q.iter_mut() {
            r.sacked = false;
            r.lost = false;
        }
        self.sacked_bytes = 0;
        self.lost_bytes = 0;
    }

    /// The first record declared lost: what to retransmit next.
    pub fn first_lost(&self) -> Option<&SentSeg> {
        if self.lost_bytes == 0 {
            return None;
        }
        self.q.iter().find(|r| r.lost)
    }

    pub fn get(&self, i: usize) -> Option<&SentSeg> {
        self.q.get(i)
    }

    /// The highest record not SACKed.
    pub fn last_unsacked(&self) -> Option<&SentSeg> {
        self.q.iter().rev().find(|r| !r.sacked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn send_ack_and_sack_keep_counts() {
        let mut q = SentQueue::default();
        for i in 0..10u32 {
            q.on_send(s(i * 100), s(i * 100 + 100), t(i as u64), None);
        }
        assert_eq!(q.len(), 10);
        let mut d = Vec::new();
        q.on_sack(s(300), s(500), &mut d);
        assert_eq!(d.len(), 2);
        assert_eq!(q.sacked_bytes(), 200);
        assert_eq!(q.pipe(1000), 800);
        q.mark_lost(0);
        assert_eq!(q.lost_bytes(), 100);
        assert_eq!(q.pipe(1000), 700);
        assert_eq!(q.first_lost().map(|r| r.start), Some(s(0)));
        // Retransmitting the lost record puts it back in flight.
        q.on_send(s(0), s(100), t(50), None);
        assert_eq!(q.lost_bytes(), 0);
        assert!(q.get(0).is_some_and(|r| r.retrans && r.xmit == t(50)));
        // Cumulative ACK past the SACKed records: only un-SACKed ones are new.
        d.clear();
        q.on_ack(s(550), &mut d);
        assert_eq!(
            d.iter().map(|x| x.end).collect::<Vec<_>>(),
            vec![s(100), s(200), s(300)]
        );
        assert_eq!(q.sacked_bytes(), 0);
        assert_eq!(q.get(0).map(|r| (r.start, r.end)), Some((s(550), s(600))));
    }

    #[test]
    fn retransmission_with_other_boundaries_splits() {
        let mut q = SentQueue::default();
        q.on_send(s(0), s(1000), t(0), None);
        q.on_send(s(1000), s(2000), t(1), None);
        q.on_send(s(500), s(1500), t(9), None);
        let v: Vec<_> =
            q.q.iter()
                .map(|r| (r.start.0, r.end.0, r.retrans))
                .collect();
        assert_eq!(
            v,
            vec![
                (0, 500, false),
                (500, 1000, true),
                (1000, 1500, true),
                (1500, 2000, false)
            ]
        );
    }

    /// A SACK block that covers a record only in part neither splits nor SACKs
    /// it: a peer SACKing every other byte cannot blow up the queue, and a
    /// block of the last byte of a segment does not make it delivered.
    #[test]
    fn partial_sack_blocks_tag_nothing() {
        let mut q = SentQueue::default();
        q.on_send(s(0), s(10_000_000), t(0), None);
        let mut d = Vec::new();
        for i in 0..(MAX_RECORDS as u32 * 2) {
            q.on_sack(s(i * 4 + 1), s(i * 4 + 2), &mut d);
        }
        assert_eq!((q.len(), q.sacked_bytes()), (1, 0));
        assert!(d.is_empty());
        let mut q = queue4();
        q.on_sack(s(3999), s(4000), &mut d);
        assert!(d.is_empty());
        assert_eq!((q.len(), q.sacked_bytes()), (4, 0));
        // A block over whole records and part of the next tags the whole ones.
        q.on_sack(s(1000), s(3500), &mut d);
        assert_eq!(
            d.iter().map(|x| x.end).collect::<Vec<_>>(),
            vec![s(2000), s(3000)]
        );
        assert_eq!((q.len(), q.sacked_bytes()), (4, 2000));
    }

    fn queue4() -> SentQueue {
        let mut q = SentQueue::default();
        for i in 0..4u32 {
            q.on_send(s(i * 1000), s(i * 1000 + 1000), t(0), None);
        }
        q
    }
}
