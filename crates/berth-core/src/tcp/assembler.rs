//! Out-of-order segment store for the receiver: any number of holes, bounded by a
//! byte cap so a peer cannot make us hold more than the receive window allows.

use crate::mem::OFO_RANGE_OVERHEAD;
use std::collections::BTreeMap;

/// Segments received beyond `rcv_nxt`, keyed by their offset from `rcv_nxt` at the
/// time of insertion... stored by absolute offset in a 64-bit stream space so keys
/// never wrap (the connection maps sequence numbers to stream offsets).
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// stream offset → bytes; ranges never overlap.
    segs: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
}

impl Assembler {
    /// Fuzzing invariants: segments non-empty, disjoint, all beyond the
    /// in-order point `rcv_off`, and `bytes` is their total.
    pub(crate) fn check(&self, rcv_off: u64) -> Result<(), String> {
        // The first segment must start beyond rcv_off (one at rcv_off would have
        // been taken); later ones may touch the one before but not overlap it.
        let mut end = rcv_off + 1;
        let mut total = 0;
        for (&s, v) in &self.segs {
            if v.is_empty() || s < end {
                return Err(format!(
                    "out-of-order segment at {s} (+{}) overlaps, is empty or is not beyond {end} (rcv_off {rcv_off})",
                    v.len()
                ));
            }
            end = s + v.len() as u64;
            total += v.len();
        }
        if total != self.bytes {
            return Err(format!(
                "assembler counts {} bytes, holds {total}",
                self.bytes
            ));
        }
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Memory charged for what is held: bytes plus a bookkeeping charge per
    /// range (see `crate::mem`).
    pub fn mem(&self) -> usize {
        self.bytes + self.segs.len() * OFO_RANGE_OVERHEAD
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Number of separate ranges held (holes + 1 when non-empty).
    #[cfg(test)]
    pub fn ranges(&self) -> usize {
        self.segs.len()
    }

    /// Store `data` at stream offset `off` (which is beyond the in-order point).
    /// Parts already held are not stored twice. Returns bytes newly stored; stops
    /// storing once `cap` bytes are held (the rest is dropped, to be retransmitted).
    #[cfg(test)]
    pub fn insert(&mut self, off: u64, data: &[u8], cap: usize) -> usize {
        let mut unlimited = usize::MAX;
        self.insert_within(off, data, cap, &mut unlimited)
    }

    /// `insert`, also charging each stored range (bytes + overhead) against
    /// `budget`, the stack-wide memory this connection may still take.
    pub fn insert_within(
        &mut self,
        mut off: u64,
        mut data: &[u8],
        cap: usize,
        budget: &mut usize,
    ) -> usize {
        let mut stored = 0;
        while !data.is_empty() {
            // Skip what an existing range starting at or before `off` covers.
            if let Some((&s, v)) = self.segs.range(..=off).next_back() {
                let e = s + v.len() as u64;
                if e > off {
                    let skip = ((e - off) as usize).min(data.len());
                    off += skip as u64;
                    data = &data[skip..];
                    continue;
                }
            }
            // Store up to the start of the next range.
            let limit = match self.segs.range(off + 1..).next() {
                Some((&s, _)) => ((s - off) as usize).min(data.len()),
                None => data.len(),
            };
            let room = cap
                .saturating_sub(self.bytes)
                .min(budget.saturating_sub(OFO_RANGE_OVERHEAD));
            let take = limit.min(room);
            if take == 0 {
                break;
            }
            self.segs.insert(off, data[..take].to_vec());
            self.bytes += take;
            *budget -= take + OFO_RANGE_OVERHEAD;
            stored += take;
            off += take as u64;
            data = &data[take..];
            if take < limit {
                break;
            }
        }
        stored
    }

    /// Held ranges as `[start, end)` stream offsets, adjacent pieces merged, for
    /// SACK blocks (RFC 2018 §4): the range holding `latest` first, then the
    /// others from the highest down; at most `max`.
    pub fn sack_ranges(&self, latest: Option<u64>, max: usize) -> Vec<(u64, u64)> {
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (&s, v) in &self.segs {
            let e = s + v.len() as u64;
            match merged.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => merged.push((s, e)),
            }
        }
        let first = latest.and_then(|l| merged.iter().position(|&(s, e)| s <= l && l < e));
        let mut out = Vec::with_capacity(max.min(merged.len()));
        if let Some(i) = first {
            out.push(merged[i]);
        }
        for (i, r) in merged.iter().enumerate().rev() {
            if out.len() >= max {
                break;
            }
            if Some(i) != first {
                out.push(*r);
            }
        }
        out.truncate(max);
        out
    }

    /// Free memory as Linux's tcp_prune_ofo_queue: drop whole ranges from the
    /// highest sequence down, stopping at a range that starts at or below
    /// `above` (data arriving at `above` would then land last, so pruning more
    /// cannot make room for it) or once `goal` bytes of memory are freed.
    /// Returns the memory freed (bytes plus overhead).
    pub fn prune_above(&mut self, above: u64, goal: usize) -> usize {
        let mut freed = 0;
        while freed < goal {
            let Some((&s, _)) = self.segs.last_key_value() else {
                break;
            };
            if s <= above {
                break;
            }
            let Some((_, v)) = self.segs.pop_last() else {
                break;
            };
            self.bytes -= v.len();
            freed += v.len() + OFO_RANGE_OVERHEAD;
        }
        freed
    }

    /// Remove and return the bytes contiguous from `off` (the new in-order point),
    /// discarding anything held below it.
    pub fn take_from(&mut self, off: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = off;
        while let Some((&s, _)) = self.segs.first_key_value() {
            if s > at {
                break;
            }
            let Some((s, v)) = self.segs.pop_first() else {
                break;
            };
            self.bytes -= v.len();
            let e = s + v.len() as u64;
            if e > at {
                out.extend_from_slice(&v[(at - s) as usize..]);
                at = e;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_fill_in_any_order() {
        let mut a = Assembler::default();
        assert_eq!(a.insert(20, b"cc", 100), 2);
        assert_eq!(a.insert(10, b"aa", 100), 2);
        assert_eq!(a.insert(15, b"bbbbb", 100), 5);
        assert_eq!(a.ranges(), 3);
        assert_eq!(a.take_from(5), b"");
        assert_eq!(a.take_from(10), b"aa");
        assert_eq!(a.take_from(12), b"", "hole at 12..15");
        assert_eq!(a.take_from(15), b"bbbbbcc");
        assert!(a.is_empty());
        assert_eq!(a.bytes(), 0);
    }

    #[test]
    fn overlaps_are_stored_once() {
        let mut a = Assembler::default();
        a.insert(10, b"0123456789", 100);
        assert_eq!(a.insert(5, b"xxxxx01234567890123", 100), 5 + 4);
        assert_eq!(a.bytes(), 19);
        let got = a.take_from(5);
        assert_eq!(got, b"xxxxx0123456789\x30\x31\x32\x33".to_vec());
    }

    #[test]
    fn cap_is_respected() {
        let mut a = Assembler::default();
        assert_eq!(a.insert(100, &[1; 50], 60), 50);
        assert_eq!(a.insert(200, &[2; 50], 60), 10);
        assert_eq!(a.bytes(), 60);
        assert_eq!(a.insert(300, &[3; 5], 60), 0);
    }

    #[test]
    fn sack_ranges_merge_and_put_latest_first() {
        let mut a = Assembler::default();
        a.insert(10, b"aa", 100);
        a.insert(12, b"bb", 100);
        a.insert(20, b"cc", 100);
        a.insert(30, b"dd", 100);
        assert_eq!(
            a.sack_ranges(Some(12), 4),
            vec![(10, 14), (30, 32), (20, 22)]
        );
        assert_eq!(a.sack_ranges(None, 2), vec![(30, 32), (20, 22)]);
    }

    #[test]
    fn budget_charges_bytes_and_overhead() {
        let mut a = Assembler::default();
        let mut budget = 2 * OFO_RANGE_OVERHEAD + 30;
        assert_eq!(a.insert_within(100, &[1; 20], 1000, &mut budget), 20);
        assert_eq!(budget, OFO_RANGE_OVERHEAD + 10);
        assert_eq!(a.insert_within(200, &[2; 20], 1000, &mut budget), 10);
        assert_eq!(budget, 0);
        assert_eq!(a.insert_within(300, &[3; 5], 1000, &mut budget), 0);
        assert_eq!(a.mem(), 30 + 2 * OFO_RANGE_OVERHEAD);
    }

    #[test]
    fn prune_drops_from_the_highest_sequence_down() {
        let mut a = Assembler::default();
        a.insert(10, b"aa", 100);
        a.insert(20, b"bb", 100);
        a.insert(30, b"cc", 100);
        a.insert(40, b"dd", 100);
        // One range is enough for the goal: only the highest goes.
        assert_eq!(a.prune_above(0, 1), 2 + OFO_RANGE_OVERHEAD);
        assert_eq!(a.sack_ranges(None, 4), vec![(30, 32), (20, 22), (10, 12)]);
        // Data arriving at 20 would land last below 20: ranges above it go,
        // the one at 20 and below stay.
        assert_eq!(a.prune_above(20, usize::MAX), 2 + OFO_RANGE_OVERHEAD);
        assert_eq!(a.sack_ranges(None, 4), vec![(20, 22), (10, 12)]);
        assert_eq!(a.prune_above(0, usize::MAX), 4 + 2 * OFO_RANGE_OVERHEAD);
        assert!(a.is_empty());
        assert_eq!(a.mem(), 0);
    }

    #[test]
    fn take_discards_below_point() {
        let mut a = Assembler::default();
        a.insert(10, b"abcdef", 100);
        assert_eq!(a.take_from(13), b"def");
        assert_eq!(a.bytes(), 0);
    }
}
