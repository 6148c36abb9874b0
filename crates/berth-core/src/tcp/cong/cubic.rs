//! CUBIC (RFC 9438) with HyStart++ slow start (RFC 9406), as Linux's default.
//!
//! Windows are kept in bytes; the cubic function works in segments as the RFC
//! writes it (W in MSS units, t in seconds).

use super::{initial_window, AckEvent, Controller};
use crate::time::{Duration, Instant};

/// RFC 9438 §4.1: C = 0.4, β_cubic = 0.7.
const C: f64 = 0.4;
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3(1 − β)/(1 + β), the Reno-friendly additive increase.
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// HyStart++ constants (RFC 9406 §4.3).
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u32 = 8;
const CSS_GROWTH_DIVISOR: usize = 4;
const CSS_ROUNDS: u32 = 5;

/// HyStart++ state (RFC 9406 §4.2).
#[derive(Debug, Clone, Default)]
pub(crate) struct HyStart {
    /// End of the current round: the round ends when this is acknowledged.
    window_end: Option<berth_wire::SeqNumber>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
    /// In Conservative Slow Start since this baseline RTT.
    css_baseline_min_rtt: Option<Duration>,
    css_rounds: u32,
    /// Rounds in which HyStart++ ended slow start (for tests and counters).
    pub exits: u32,
}

impl HyStart {
    /// Track rounds and RTTs; returns true when slow start should end now
    /// (CSS ran CSS_ROUNDS rounds).
    fn on_ack(&mut self, ev: &AckEvent) -> bool {
        let mut end_ss = false;
        let new_round = self.window_end.is_none_or(|w| ev.snd_una >= w);
        if new_round {
            self.window_end = Some(ev.snd_max);
            self.last_round_min_rtt = self.current_round_min_rtt.take();
            self.rtt_sample_count = 0;
            if self.css_baseline_min_rtt.is_some() {
                self.css_rounds += 1;
                if self.css_rounds >= CSS_ROUNDS {
                    end_ss = true;
                }
            }
        }
        if let Some(rtt) = ev.rtt {
            self.current_round_min_rtt =
                Some(self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.rtt_sample_count += 1;
        }
        match (self.css_baseline_min_rtt, self.current_round_min_rtt) {
            (None, Some(cur)) => {
                // Standard slow start: look for the RTT increase.
                if let Some(last) = self.last_round_min_rtt {
                    if self.rtt_sample_count >= N_RTT_SAMPLE {
                        let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                        if cur >= last + thresh {
                            self.css_baseline_min_rtt = Some(cur);
                            self.css_rounds = 0;
                        }
                    }
                }
            }
            // §4.2: a lower RTT in CSS means the increase was spurious.
            (Some(base), Some(cur)) if self.rtt_sample_count >= N_RTT_SAMPLE && cur < base => {
                self.css_baseline_min_rtt = None;
                self.css_rounds = 0;
            }
            _ => {}
        }
        end_ss
    }

    fn in_css(&self) -> bool {
        self.css_baseline_min_rtt.is_some()
    }

    fn reset(&mut self) {
        *self = HyStart {
            exits: self.exits,
            ..HyStart::default()
        };
    }
}

#[derive(Debug, Clone)]
struct Saved {
    cwnd: f64,
    ssthresh: usize,
    w_max: f64,
    k: f64,
    epoch_start: Option<Instant>,
    cwnd_epoch: f64,
    w_est: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    /// cwnd in bytes, fractional so per-ACK growth of less than a byte adds up.
    cwnd: f64,
    ssthresh: usize,
    mss: usize,
    /// W_max (segments): the window before the last reduction.
    w_max: f64,
    /// K (seconds): when the cubic function reaches W_max again.
    k: f64,
    epoch_start: Option<Instant>,
    /// cwnd (segments) when the epoch began.
    cwnd_epoch: f64,
    /// W_est (segments): the Reno-friendly estimate (RFC 9438 §4.3).
    w_est: f64,
    /// cwnd (segments) when ssthresh was last set (cwnd_prior).
    cwnd_prior: f64,
    pub hystart: HyStart,
    prior: Option<Saved>,
}

impl Cubic {
    pub fn new(mss: usize, iw_segments: Option<u32>) -> Cubic {
        Cubic {
            cwnd: initial_window(mss, iw_segments) as f64,
            ssthresh: usize::MAX,
            mss: mss.max(1),
            w_max: 0.0,
            k: 0.0,
            epoch_start: None,
            cwnd_epoch: 0.0,
            w_est: 0.0,
            cwnd_prior: 0.0,
            hystart: HyStart::default(),
            prior: None,
        }
    }

    fn segs(&self, bytes: f64) -> f64 {
        bytes / self.mss as f64
    }

    /// W_cubic(t) = C·(t − K)³ + W_max (RFC 9438 §4.2, eqn. 1), segments.
    pub fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    fn save(&mut self) {
        self.prior = Some(Saved {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
            k: self.k,
            epoch_start: self.epoch_start,
            cwnd_epoch: self.cwnd_epoch,
            w_est: self.w_est,
        });
    }

    /// Multiplicative decrease (RFC 9438 §4.6) with fast convergence (§4.7).
    fn reduce(&mut self) {
        let cwnd_segs = self.segs(self.cwnd);
        self.w_max = if cwnd_segs < self.w_max {
            cwnd_segs * (1.0 + BETA) / 2.0
        } else {
            cwnd_segs
        };
        self.cwnd_prior = cwnd_segs;
        self.ssthresh = ((self.cwnd * BETA) as usize).max(2 * self.mss);
        self.epoch_start = None;
        self.hystart.reset();
    }

    fn congestion_avoidance(&mut self, ev: &AckEvent) {
        let cwnd_segs = self.segs(self.cwnd);
        let epoch = *self.epoch_start.get_or_insert_with(|| {
            // §4.2: a new epoch; K from the distance to W_max.
            self.cwnd_epoch = cwnd_segs;
            self.w_est = cwnd_segs;
            if self.w_max < cwnd_segs {
                self.w_max = cwnd_segs;
            }
            self.k = ((self.w_max - cwnd_segs).max(0.0) / C).cbrt();
            ev.now
        });
        let t = ev.now.saturating_duration_since(epoch).as_secs_f64();
        let rtt = ev.min_rtt.or(ev.rtt).unwrap_or(Duration::from_millis(100));
        let acked_segs = self.segs(ev.acked as f64);
        // §4.3: the Reno-friendly region.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        self.w_est += alpha * acked_segs / cwnd_segs;
        let w_cubic_t = self.w_cubic(t);
        let new_segs = if w_cubic_t < self.w_est {
            self.w_est.max(cwnd_segs)
        } else {
            // §4.4/4.5: concave and convex regions, target one RTT ahead, clamped
            // to [cwnd, 1.5·cwnd].
            let target = self
                .w_cubic(t + rtt.as_secs_f64())
                .clamp(cwnd_segs, 1.5 * cwnd_segs);
            cwnd_segs + (target - cwnd_segs) / cwnd_segs * acked_segs
        };
        self.cwnd = new_segs * self.mss as f64;
    }
}

impl Controller for Cubic {
    fn cwnd(&self) -> usize {
        self.cwnd as usize
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.max(self.mss) as f64;
    }

    fn set_ssthresh(&mut self, ssthresh: usize) {
        self.ssthresh = ssthresh;
    }

    fn on_ack(&mut self, ev: &AckEvent) {
        // §5.8 / RFC 7661: an application-limited flow does not grow the window.
        if ev.app_limited {
            return;
        }
        if (self.cwnd as usize) < self.ssthresh {
            let end = self.hystart.on_ack(ev);
            // Slow start without an ABC limit (RFC 9406 §4.2: L = ∞ when paced, as
            // Linux); Conservative Slow Start grows a quarter as fast.
            let inc = if self.hystart.in_css() {
                ev.acked / CSS_GROWTH_DIVISOR
            } else {
                ev.acked
            };
            self.cwnd += inc as f64;
            if end {
                // §4.2: CSS lasted CSS_ROUNDS rounds: slow start is over.
                self.ssthresh = self.cwnd as usize;
                self.hystart.exits += 1;
                self.hystart.reset();
            }
            return;
        }
        self.congestion_avoidance(ev);
    }

    fn on_congestion_event(&mut self, _now: Instant, _in_flight: usize) {
        self.save();
        self.reduce();
        self.cwnd = self.ssthresh as f64;
    }

    fn on_rto(&mut self, _now: Instant, _in_flight: usize) {
        self.save();
        self.reduce();
        self.cwnd = self.mss as f64;
    }

    fn undo(&mut self) {
        if let Some(p) = self.prior.take() {
            self.cwnd = self.cwnd.max(p.cwnd);
            self.ssthresh = p.ssthresh;
            self.w_max = p.w_max;
            self.k = p.k;
            self.epoch_start = p.epoch_start;
            self.cwnd_epoch = p.cwnd_epoch;
            self.w_est = p.w_est;
        }
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        // Linux (bictcp_cwnd_event TX_START): idle time is not growth time.
        self.epoch_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::SeqNumber;

    const MSS: usize = 1000;

    fn ev(now_ms: u64, acked: usize, rtt_ms: u64, una: u32, max: u32) -> AckEvent {
        AckEvent {
            now: Instant::from_millis(now_ms),
            acked,
            rtt: Some(Duration::from_millis(rtt_ms)),
            min_rtt: Some(Duration::from_millis(rtt_ms)),
            in_flight: 0,
            app_limited: false,
            snd_una: SeqNumber(una),
            snd_max: SeqNumber(max),
        }
    }

    #[test]
    fn reduction_by_beta_and_fast_convergence() {
        let mut c = Cubic::new(MSS, None);
        c.cwnd = 100_000.0;
        c.on_congestion_event(Instant::from_millis(0), 100_000);
        assert_eq!(c.ssthresh(), 70_000);
        assert_eq!(c.cwnd(), 70_000);
        assert!((c.w_max - 100.0).abs() < 1e-9);
        // A second loss below W_max: W_max = cwnd·(1 + β)/2 (§4.7).
        c.on_congestion_event(Instant::from_millis(0), 70_000);
        assert!((c.w_max - 70.0 * 1.7 / 2.0).abs() < 1e-9);
        assert_eq!(c.cwnd(), 49_000);
    }

    /// The window follows W_cubic(t) = C(t − K)³ + W_max with
    /// K = ∛(W_max(1 − β)/C) (RFC 9438 eqns. 1 and 2), where the curve is above
    /// the Reno-friendly estimate (large W_max, long RTT).
    #[test]
    fn window_follows_the_cubic_curve() {
        let mut c = Cubic::new(MSS, None);
        c.cwnd = 1_000_000.0;
        c.on_congestion_event(Instant::from_millis(0), 1_000_000);
        let k = (1000.0 * (1.0 - BETA) / C).cbrt();
        assert!((c.segs(c.cwnd) - 700.0).abs() < 1e-6);
        let rtt_ms = 100u64;
        let mut now = 1u64;
        let mut seq = 0u32;
        let mut checked = 0;
        while now < 14_000 {
            // One ACK per segment, cwnd segments per RTT.
            for _ in 0..c.cwnd() / MSS {
                seq = seq.wrapping_add(MSS as u32);
                c.on_ack(&ev(now, MSS, rtt_ms, seq, seq.wrapping_add(1 << 20)));
            }
            now += rtt_ms;
            if now % 1000 < rtt_ms {
                // The window aims one RTT ahead of the curve.
                let t = now as f64 / 1000.0;
                let expect = C * (t - k).powi(3) + 1000.0;
                let got = c.segs(c.cwnd);
                assert!(
                    (got - expect).abs() <= expect * 0.03 + 2.0,
                    "t={t} got {got} expected {expect}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 12);
        assert!((k - 750f64.cbrt()).abs() < 1e-9);
    }

    #[test]
    fn reno_friendly_region_for_small_windows() {
        // Small W_max, long RTT: W_est (Reno) outgrows the cubic curve.
        let mut c = Cubic::new(MSS, None);
        c.cwnd = 10_000.0;
        c.on_congestion_event(Instant::from_millis(0), 10_000);
        let mut now = 1u64;
        let mut seq = 0u32;
        for _ in 0..50 {
            for _ in 0..c.cwnd() / MSS {
                seq += MSS as u32;
                c.on_ack(&ev(now, MSS, 100, seq, seq + 10 * MSS as u32));
            }
            now += 100;
        }
        // 50 RTTs: Reno with α ≈ 0.53, then 1 segment per RTT from 7 segments.
        assert!(c.segs(c.cwnd) >= 7.0 + 0.5 * 50.0 * 0.5, "{}", c.cwnd);
    }

    #[test]
    fn undo_restores_window() {
        let mut c = Cubic::new(MSS, None);
        c.cwnd = 50_000.0;
        c.ssthresh = 60_000;
        c.on_congestion_event(Instant::from_millis(0), 50_000);
        assert_eq!(c.cwnd(), 35_000);
        c.undo();
        assert_eq!(c.cwnd(), 50_000);
        assert_eq!(c.ssthresh(), 60_000);
    }

    #[test]
    fn rto_sets_loss_window() {
        let mut c = Cubic::new(MSS, None);
        c.cwnd = 50_000.0;
        c.on_rto(Instant::from_millis(0), 50_000);
        assert_eq!(c.cwnd(), MSS);
        assert_eq!(c.ssthresh(), 35_000);
    }

    /// HyStart++ (RFC 9406): an RTT rise of more than max(4 ms, minRTT/8) after
    /// N_RTT_SAMPLE samples enters Conservative Slow Start; CSS_ROUNDS rounds
    /// later slow start ends with ssthresh = cwnd.
    #[test]
    fn hystart_exits_slow_start_on_rtt_increase() {
        let mut c = Cubic::new(MSS, Some(10));
        let mut seq = 0u32;
        let mut now = 0u64;
        let mut round = 0;
        let mut css_seen = false;
        while c.ssthresh() == usize::MAX && round < 40 {
            // RTT: 40 ms for 5 rounds, then 60 ms (queue building).
            let rtt = if round < 5 { 40 } else { 60 };
            let segs = c.cwnd() / MSS;
            let round_end = seq + segs as u32 * MSS as u32;
            for _ in 0..segs {
                seq += MSS as u32;
                c.on_ack(&ev(
                    now,
                    MSS,
                    rtt,
                    seq,
                    round_end + segs as u32 * MSS as u32,
                ));
            }
            css_seen |= c.hystart.in_css();
            now += rtt;
            round += 1;
        }
        assert!(css_seen, "entered CSS");
        assert_eq!(c.hystart.exits, 1);
        assert!(c.ssthresh() <= c.cwnd() && c.ssthresh() > 20 * MSS);
        // Standard slow start would have doubled every round from round 5.
        assert!(round <= 5 + CSS_ROUNDS as usize + 2, "round {round}");
    }

    #[test]
    fn hystart_css_back_to_slow_start_when_rtt_drops() {
        let mut h = HyStart::default();
        let mut seq = 0u32;
        let mut feed = |h: &mut HyStart, rtt: u64| {
            // One byte beyond the round's end is out when its first ACK arrives,
            // so the round ends with the next feed's first ACK.
            let end = seq + 8001;
            for _ in 0..8 {
                seq += 1000;
                h.on_ack(&ev(0, 1000, rtt, seq, end));
            }
        };
        feed(&mut h, 40);
        feed(&mut h, 40);
        feed(&mut h, 50);
        assert!(h.in_css());
        feed(&mut h, 30);
        assert!(!h.in_css());
    }

    #[test]
    fn app_limited_does_not_grow() {
        let mut c = Cubic::new(MSS, None);
        let w = c.cwnd();
        let mut e = ev(0, MSS, 10, 1000, 2000);
        e.app_limited = true;
        c.on_ack(&e);
        assert_eq!(c.cwnd(), w);
    }
}
