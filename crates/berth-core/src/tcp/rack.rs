//! RACK-TLP (RFC 8985): time-based loss detection. A segment is lost when a
//! segment sent after it was delivered and more than RTT + reordering window
//! has passed since it was sent. The reordering window starts at zero while no
//! reordering has been seen, grows to min_RTT/4 (times a multiplier that D-SACKs
//! raise) once it has, and is capped at SRTT. Tail loss probes (§7) live in the
//! connection's timers and output.

use super::sent::{Delivered, SentQueue};
use crate::time::{Duration, Instant};
use berth_wire::SeqNumber;

/// RFC 8985 §6.2: DupThresh for the "enough SACKed" test of the reordering window.
const DUP_THRESH: usize = 3;

#[derive(Debug, Clone, Default)]
pub(crate) struct Rack {
    /// Transmit time and end of the most recently sent segment delivered.
    xmit_ts: Option<Instant>,
    end_seq: SeqNumber,
    /// RTT of that segment.
    rtt: Duration,
    /// Highest sequence delivered (RFC 8985 RACK.fack); `None` before the
    /// first delivery (sequence numbers compare modulo 2^32: a zero start
    /// would lie "above" every sequence number in its far half).
    fack: Option<SeqNumber>,
    pub reordering_seen: bool,
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    /// D-SACK round: adapt the window at most once per round trip (§6.2 step 4).
    dsack_round: Option<SeqNumber>,
    /// Times reordering was detected (tcpi_reord_seen): original segments
    /// delivered below the highest sequence already delivered, each time, not
    /// only the first (after which `reordering_seen` stays set).
    pub reord_events: u64,
}

/// RFC 8985 RACK_sent_after: was (t1, seq1) sent after (t2, seq2)?
fn sent_after(t1: Instant, seq1: SeqNumber, t2: Instant, seq2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && seq1 > seq2)
}

impl Rack {
    pub fn new() -> Rack {
        Rack {
            reo_wnd_mult: 1,
            ..Rack::default()
        }
    }

    /// §6.2 steps 2 and 3 for one newly delivered segment. `tsecr` is the ACK's
    /// echoed timestamp: a retransmitted segment whose cumulative ACK echoes an
    /// older TSval was delivered by its original transmission, so its time is
    /// ambiguous. Not for a SACKed segment: the receiver echoes the TSval of the
    /// segment that last advanced its left edge (RFC 7323 §4.3), never that of
    /// an out-of-order one, so the echo says nothing about which copy arrived
    /// (and a tail loss probe beyond a hole would never count as delivered).
    pub fn on_delivered(
        &mut self,
        d: &Delivered,
        now: Instant,
        min_rtt: Option<Duration>,
        tsecr: Option<u32>,
    ) {
        if d.retrans {
            let too_soon = min_rtt.is_some_and(|m| now.saturating_duration_since(d.xmit) < m);
            let old_echo = !d.sacked
                && matches!((tsecr, d.ts_val), (Some(e), Some(v)) if (e.wrapping_sub(v) as i32) < 0);
            // Without timestamps a cumulative ACK of a retransmitted segment may
            // be the original's (a spurious timeout): its send time is unknown,
            // and taking the retransmission's would declare every original
            // sent before it lost at once.
            let unknown = !d.sacked && d.ts_val.is_none();
            if too_soon || old_echo || unknown {
                return;
            }
        }
        self.rtt = now.saturating_duration_since(d.xmit);
        if self
            .xmit_ts
            .is_none_or(|t| sent_after(d.xmit, d.end, t, self.end_seq))
        {
            self.xmit_ts = Some(d.xmit);
            self.end_seq = d.end;
        }
        // Step 3: delivered below the highest delivered sequence, and never
        // retransmitted: the network reordered it.
        if self.fack.is_some_and(|f| d.end < f) {
            if !d.retrans {
                self.reordering_seen = true;
                self.reord_events += 1;
            }
        } else {
            self.fack = Some(d.end);
        }
    }

    /// §6.2 step 4 on a D-SACK: widen the window, at most once per round trip,
    /// and keep it wide for 16 recoveries.
    pub fn on_dsack(&mut self, snd_una: SeqNumber, snd_max: SeqNumber) {
        if self.dsack_round.is_some_and(|r| snd_una >= r) {
            self.dsack_round = None;
        }
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_max);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1).min(64);
            self.reo_wnd_persist = 16;
        }
    }

    /// Loss recovery ended: count down the widened window's persistence.
    pub fn on_recovery_end(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        }
    }

    /// §6.2 step 4: the reordering window.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segs: usize,
        min_rtt: Option<Duration>,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segs >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let base = min_rtt.unwrap_or(Duration::ZERO) / 4 * self.reo_wnd_mult.max(1);
        match srtt {
            Some(s) => base.min(s),
            None => base,
        }
    }

    /// §6.2 step 5: mark lost every segment sent before the most recently
    /// delivered one whose time plus RTT plus the window has passed. Returns how
    /// many were marked and, for the others, when to look again (the RACK
    /// reordering timer).
    pub fn detect_loss(
        &self,
        sent: &mut SentQueue,
        now: Instant,
        reo_wnd: Duration,
    ) -> (usize, Option<Instant>) {
        let Some(xmit_ts) = self.xmit_ts else {
            return (0, None);
        };
        let mut marked = 0;
        let mut timer: Option<Instant> = None;
        for i in 0..sent.len() {
            let Some(r) = sent.get(i).copied() else {
                break;
            };
            if r.sacked || r.lost {
                continue;
            }
            // A retransmission must have left strictly before the delivered
            // segment: at equal times the sequence tie-break would call a fresh
            // retransmission lost again at once (zero-RTT links).
            if !sent_after(xmit_ts, self.end_seq, r.xmit, r.end) || (r.retrans && r.xmit >= xmit_ts)
            {
                continue;
            }
            let deadline = r.xmit + self.rtt + reo_wnd;
            if deadline <= now {
                sent.mark_lost(i);
                marked += 1;
            } else {
                timer = Some(timer.map_or(deadline, |t| t.max(deadline)));
            }
        }
        (marked, timer)
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
    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn queue(n: u32) -> SentQueue {
        let mut q = SentQueue::default();
        for i in 0..n {
            q.on_send(s(i * 1000), s(i * 1000 + 1000), t(i as u64), None);
        }
        q
    }

    fn deliver(rack: &mut Rack, q: &mut SentQueue, l: u32, r: u32, now: Instant) {
        let mut d = Vec::new();
        q.on_sack(s(l), s(r), &mut d);
        for x in &d {
            rack.on_delivered(x, now, Some(ms(100)), None);
        }
    }

    #[test]
    fn segment_before_a_delivered_one_is_lost_after_rtt_plus_window() {
        let mut rack = Rack::new();
        let mut q = queue(10);
        // Segment 5 (sent at 5 ms) delivered at 105 ms: RTT 100 ms.
        deliver(&mut rack, &mut q, 5000, 6000, t(105));
        // No reordering seen, fewer than 3 SACKed: window min_rtt/4 = 25 ms.
        let w = rack.reo_wnd(false, 1, Some(ms(100)), Some(ms(100)));
        assert_eq!(w, ms(25));
        let (lost, timer) = rack.detect_loss(&mut q, t(105), w);
        assert_eq!(lost, 0);
        // Segment 0 was sent at 0: lost at 0 + 100 + 25; the timer covers the last.
        assert_eq!(timer, Some(t(4 + 125)));
        let (lost, _) = rack.detect_loss(&mut q, t(125), w);
        assert_eq!(lost, 1);
        let (lost, timer) = rack.detect_loss(&mut q, t(129), w);
        assert_eq!((lost, timer), (4, None));
        assert_eq!(q.lost_bytes(), 5000);
    }

    /// Deliveries in order far from zero in sequence space (upper half, where
    /// SeqNumber(0) compares as higher) are not reordering.
    #[test]
    fn in_order_delivery_in_the_upper_half_is_not_reordering() {
        let mut rack = Rack::new();
        let mut q = SentQueue::default();
        let base = 0x9000_0000u32;
        for i in 0..4 {
            q.on_send(
                s(base + i * 1000),
                s(base + i * 1000 + 1000),
                t(i as u64),
                None,
            );
        }
        let mut d = Vec::new();
        q.on_ack(s(base + 2000), &mut d);
        q.on_ack(s(base + 4000), &mut d);
        for x in &d {
            rack.on_delivered(x, t(110), Some(ms(100)), None);
        }
        assert!(!rack.reordering_seen);
        assert_eq!(rack.reord_events, 0);
        assert_eq!(
            rack.reo_wnd(false, 3, Some(ms(100)), Some(ms(100))),
            Duration::ZERO
        );
    }

    /// The first delivery sets RACK.fack: with sequence numbers more than 2^31
    /// from 0 (half of all ISSs), an initial fack of 0 compared as "above"
    /// them and in-order SACKs were taken for reordering.
    #[test]
    fn in_order_delivery_far_from_zero_is_not_reordering() {
        let base = 3_893_296_177u32;
        let mut rack = Rack::new();
        let mut q = SentQueue::default();
        for i in 0..4u32 {
            let l = base.wrapping_add(i * 1000);
            q.on_send(s(l), s(l.wrapping_add(1000)), t(0), None);
        }
        for i in 1..4u32 {
            let l = base.wrapping_add(i * 1000);
            deliver(&mut rack, &mut q, l, l.wrapping_add(1000), t(100));
        }
        assert!(!rack.reordering_seen);
        assert_eq!(rack.reord_events, 0);
        // Three SACKed, no reordering: zero window, the first is lost at once.
        let w = rack.reo_wnd(false, 3, Some(ms(100)), Some(ms(100)));
        assert_eq!(w, Duration::ZERO);
        assert_eq!(rack.detect_loss(&mut q, t(100), w).0, 1);
    }

    #[test]
    fn three_sacked_means_zero_window_without_reordering() {
        let rack = Rack::new();
        assert_eq!(
            rack.reo_wnd(false, 3, Some(ms(100)), Some(ms(100))),
            Duration::ZERO
        );
        assert_eq!(
            rack.reo_wnd(true, 0, Some(ms(100)), Some(ms(100))),
            Duration::ZERO
        );
    }

    #[test]
    fn reordering_widens_window_and_dsack_grows_it() {
        let mut rack = Rack::new();
        let mut q = queue(10);
        deliver(&mut rack, &mut q, 5000, 6000, t(105));
        assert!(!rack.reordering_seen);
        // Segment 2, never retransmitted, arrives after 5: reordering.
        deliver(&mut rack, &mut q, 2000, 3000, t(106));
        assert!(rack.reordering_seen);
        assert_eq!(rack.reord_events, 1);
        // Each later reordering counts too (tcpi_reord_seen).
        deliver(&mut rack, &mut q, 3000, 4000, t(107));
        assert_eq!(rack.reord_events, 2);
        // Now the window stays min_rtt/4 even with many SACKed and in recovery.
        assert_eq!(rack.reo_wnd(true, 10, Some(ms(100)), Some(ms(200))), ms(25));
        rack.on_dsack(s(0), s(10_000));
        assert_eq!(rack.reo_wnd(true, 10, Some(ms(100)), Some(ms(200))), ms(50));
        // Once per round: a second D-SACK in the same round does not widen more.
        rack.on_dsack(s(100), s(10_000));
        assert_eq!(rack.reo_wnd(true, 10, Some(ms(100)), Some(ms(200))), ms(50));
        // Capped at SRTT.
        for r in 1..10u32 {
            rack.on_dsack(s(10_000 * r), s(10_000 * (r + 1)));
        }
        assert_eq!(
            rack.reo_wnd(true, 10, Some(ms(100)), Some(ms(120))),
            ms(120)
        );
        // 16 recoveries later it is back to one quarter.
        for _ in 0..16 {
            rack.on_recovery_end();
        }
        assert_eq!(rack.reo_wnd(true, 10, Some(ms(100)), Some(ms(200))), ms(25));
    }

    #[test]
    fn ambiguous_retransmission_is_not_used() {
        let mut rack = Rack::new();
        let d = Delivered {
            end: s(1000),
            xmit: t(100),
            ts_val: Some(100),
            retrans: true,
            sacked: false,
        };
        // ACK 10 ms after the retransmission with min_rtt 100 ms: it acks the original.
        rack.on_delivered(&d, t(110), Some(ms(100)), None);
        assert!(rack.xmit_ts.is_none());
        // ACK echoing an older TSval: also the original.
        rack.on_delivered(&d, t(300), Some(ms(100)), Some(50));
        assert!(rack.xmit_ts.is_none());
        rack.on_delivered(&d, t(300), Some(ms(100)), Some(100));
        assert_eq!(rack.xmit_ts, Some(t(100)));
    }

    /// A SACK's echo is the TSval of the receiver's left edge, older than any
    /// out-of-order retransmission: only min_RTT decides there.
    #[test]
    fn sacked_retransmission_ignores_the_echo() {
        let mut rack = Rack::new();
        let d = Delivered {
            end: s(1000),
            xmit: t(100),
            ts_val: Some(100),
            retrans: true,
            sacked: true,
        };
        rack.on_delivered(&d, t(300), Some(ms(100)), Some(50));
        assert_eq!(rack.xmit_ts, Some(t(100)));
    }
}
