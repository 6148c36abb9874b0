//! The SACK scoreboard (RFC 6675 §3): what the peer reported holding above the
//! cumulative ACK, as sorted, disjoint sequence ranges, and the two questions
//! recovery asks of it: how much is still in the network ("pipe") and which hole
//! to retransmit next (NextSeg rule 1).

use berth_wire::SeqNumber;

/// Most ranges kept. More holes than this fall back to NewReno behaviour for the
/// rest: they are retransmitted by partial ACKs or the RTO. A hostile peer
/// reporting thousands of tiny blocks cannot grow the scoreboard past this.
pub(crate) const SCOREBOARD_MAX: usize = 64;

pub(crate) fn seq_max(a: SeqNumber, b: SeqNumber) -> SeqNumber {
    if a > b {
        a
    } else {
        b
    }
}

pub(crate) fn seq_min(a: SeqNumber, b: SeqNumber) -> SeqNumber {
    if a < b {
        a
    } else {
        b
    }
}

/// What one ACK's SACK blocks did to the scoreboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SackUpdate {
    /// Bytes newly reported as held (not counting what was already SACKed).
    pub newly_sacked: usize,
    /// Change in SACKed bytes above the cumulative ACK: newly SACKed less what
    /// the ACK's advance took off the scoreboard (RFC 6937's ΔSACKd, which can
    /// be negative).
    pub sacked_delta: isize,
    /// Blocks dropped as impossible: beyond what was sent, or reversed.
    pub invalid: u32,
    /// A D-SACK block (RFC 2883 §4): the first block lies below the cumulative
    /// ACK, or inside the second block; it reports a duplicate, not new data.
    pub dsack: Option<(SeqNumber, SeqNumber)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Scoreboard {
    ranges: Vec<(SeqNumber, SeqNumber)>,
}

impl Scoreboard {
    /// Fuzzing invariants: ranges sorted, disjoint, non-empty, inside [una, max].
    pub(crate) fn check(&self, una: SeqNumber, max: SeqNumber) -> Result<(), String> {
        let mut prev: Option<SeqNumber> = None;
        for &(l, r) in &self.ranges {
            if r <= l || l < una || r > max || prev.is_some_and(|p| l <= p) {
                return Err(format!(
                    "scoreboard {:?} not sorted disjoint ranges in snd_una {una} .. snd_max {max}",
                    self.ranges
                ));
            }
            prev = Some(r);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    #[cfg(test)]
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges
    }

    /// Highest SACKed sequence number (end of the last range).
    pub fn high_sacked(&self) -> Option<SeqNumber> {
        self.ranges.last().map(|r| r.1)
    }

    /// Total bytes SACKed.
    pub fn sacked_bytes(&self) -> usize {
        self.ranges
            .iter()
            .map(|&(l, r)| (r - l).max(0) as usize)
            .sum()
    }

    /// Merge an ACK's SACK blocks (RFC 6675 §4) and forget what the cumulative ACK
    /// `una` covers. Blocks outside [una, snd_max] are ignored (RFC 2018 §3);
    /// a first block below `una` or inside the second is a D-SACK (RFC 2883).
    pub fn update(
        &mut self,
        una: SeqNumber,
        snd_max: SeqNumber,
        blocks: &[Option<(SeqNumber, SeqNumber)>],
    ) -> SackUpdate {
        let mut up = SackUpdate::default();
        let before = self.sacked_bytes();
        let blocks: Vec<(SeqNumber, SeqNumber)> = blocks.iter().flatten().copied().collect();
        for (i, &(l, r)) in blocks.iter().enumerate() {
            if i == 0 && l < r && r <= snd_max {
                let below_ack = r <= una;
                let inside_second = blocks.get(1).is_some_and(|&(l2, r2)| l >= l2 && r <= r2);
                if below_ack || inside_second {
                    up.dsack = Some((l, r));
                    continue;
                }
            }
            if r <= una && l < r {
                // Old news (below the cumulative ACK): harmless, not counted.
                continue;
            }
            if !(l < r && l >= una && r <= snd_max) {
                up.invalid += 1;
                continue;
            }
            let (mut l, mut r) = (l, r);
            // Absorb every range that overlaps or touches [l, r).
            self.ranges.retain(|&(a, b)| {
                if b < l || a > r {
                    true
                } else {
                    l = seq_min(l, a);
                    r = seq_max(r, b);
                    false
                }
            });
            let at = self.ranges.partition_point(|&(a, _)| a < l);
            self.ranges.insert(at, (l, r));
        }
        self.ranges.retain(|&(_, b)| b > una);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = seq_max(first.0, una);
        }
        if self.ranges.len() > SCOREBOARD_MAX {
            // Keep the lowest ranges: they bound the holes retransmitted first.
            self.ranges.truncate(SCOREBOARD_MAX);
        }
        let after = self.sacked_bytes();
        up.newly_sacked = after.saturating_sub(before);
        up.sacked_delta = after as isize - before as isize;
        up
    }

    /// RFC 6675 §4 "pipe": what is still in the network. Bytes above the highest
    /// SACKed byte are in flight; un-SACKed bytes below it are lost unless this
    /// recovery retransmitted them (below `high_rxt`), when they are in flight again.
    pub fn pipe(&self, snd_una: SeqNumber, snd_max: SeqNumber, high_rxt: SeqNumber) -> usize {
        let Some(high_sack) = self.high_sacked() else {
            return (snd_max - snd_una).max(0) as usize;
        };
        let above = (snd_max - high_sack).max(0) as usize;
        let limit = seq_min(high_rxt, high_sack);
        let mut rexmitted = 0usize;
        let mut at = snd_una;
        for &(l, r) in &self.ranges {
            if at >= limit {
                break;
            }
            if at < l {
                rexmitted += (seq_min(l, limit) - at).max(0) as usize;
            }
            at = seq_max(at, r);
        }
        above + rexmitted
    }

    /// The next hole to retransmit (RFC 6675 NextSeg rule 1): its start and
    /// length, at or above `high_rxt` and below the highest SACKed byte.
    pub fn next_hole(&self, snd_una: SeqNumber, high_rxt: SeqNumber) -> Option<(SeqNumber, usize)> {
        let high_sack = self.high_sacked()?;
        let mut at = seq_max(snd_una, high_rxt);
        for &(l, r) in &self.ranges {
            if at >= high_sack {
                return None;
            }
            if at < l {
                return Some((at, (l - at) as usize));
            }
            at = seq_max(at, r);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn blocks(v: &[(u32, u32)]) -> [Option<(SeqNumber, SeqNumber)>; 4] {
        let mut b = [None; 4];
        for (slot, &(l, r)) in b.iter_mut().zip(v) {
            *slot = Some((s(l), s(r)));
        }
        b
    }

    #[test]
    fn merges_and_finds_holes() {
        let mut sb = Scoreboard::default();
        let up = sb.update(s(1000), s(10_000), &blocks(&[(3000, 4000), (5000, 6000)]));
        assert_eq!(up.newly_sacked, 2000);
        assert_eq!(sb.ranges(), &[(s(3000), s(4000)), (s(5000), s(6000))]);
        // Touching blocks merge.
        sb.update(s(1000), s(10_000), &blocks(&[(4000, 5000)]));
        assert_eq!(sb.ranges(), &[(s(3000), s(6000))]);
        assert_eq!(sb.next_hole(s(1000), s(1000)), Some((s(1000), 2000)));
        // Above HighRxt only.
        assert_eq!(sb.next_hole(s(1000), s(3000)), None);
    }

    #[test]
    fn pipe_counts_above_high_sack_and_retransmissions() {
        let mut sb = Scoreboard::default();
        sb.update(s(0), s(10_000), &blocks(&[(2000, 3000), (5000, 6000)]));
        // Nothing retransmitted: 4000 above the highest SACK.
        assert_eq!(sb.pipe(s(0), s(10_000), s(0)), 4000);
        // Retransmitted the first hole [0, 2000): back in flight.
        assert_eq!(sb.pipe(s(0), s(10_000), s(2000)), 6000);
        // And part of the second.
        assert_eq!(sb.pipe(s(0), s(10_000), s(4000)), 7000);
    }

    #[test]
    fn cumulative_ack_trims() {
        let mut sb = Scoreboard::default();
        sb.update(s(0), s(10_000), &blocks(&[(2000, 3000), (5000, 6000)]));
        sb.update(s(5500), s(10_000), &blocks(&[]));
        assert_eq!(sb.ranges(), &[(s(5500), s(6000))]);
        sb.update(s(6000), s(10_000), &blocks(&[]));
        assert!(sb.is_empty());
    }

    #[test]
    fn impossible_blocks_are_dropped_and_counted() {
        let mut sb = Scoreboard::default();
        // Beyond snd_max, reversed, and empty.
        let up = sb.update(
            s(1000),
            s(5000),
            &blocks(&[(4000, 9000), (3000, 2000), (7000, 8000), (2000, 2000)]),
        );
        assert_eq!(up.invalid, 4);
        assert!(sb.is_empty());
    }

    #[test]
    fn dsack_is_recognised_not_merged() {
        let mut sb = Scoreboard::default();
        // First block below the cumulative ACK: a duplicate (RFC 2883 §4.1).
        let up = sb.update(s(5000), s(9000), &blocks(&[(1000, 2000)]));
        assert_eq!(up.dsack, Some((s(1000), s(2000))));
        assert!(sb.is_empty());
        // First block inside the second: duplicate of SACKed data (§4.2).
        let up = sb.update(s(5000), s(9000), &blocks(&[(6000, 6500), (6000, 7000)]));
        assert_eq!(up.dsack, Some((s(6000), s(6500))));
        assert_eq!(sb.ranges(), &[(s(6000), s(7000))]);
    }

    #[test]
    fn bounded_under_many_blocks() {
        let mut sb = Scoreboard::default();
        for i in 0..1000u32 {
            let l = 1000 + i * 20;
            sb.update(s(0), s(100_000), &blocks(&[(l, l + 10)]));
        }
        assert_eq!(sb.ranges().len(), SCOREBOARD_MAX);
    }
}
