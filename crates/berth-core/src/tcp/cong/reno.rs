//! NewReno's window: slow start and congestion avoidance (RFC 5681) from the
//! initial window of RFC 6928, halving on a congestion event. The fast-recovery
//! part of RFC 6582 (the "recover" point, partial ACKs) is loss recovery and lives
//! in `recovery.rs`.

use super::{initial_window, AckEvent, Controller};
use crate::time::Instant;

#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    mss: usize,
    /// Bytes acknowledged in congestion avoidance not yet turned into cwnd growth.
    ca_acked: usize,
    /// cwnd and ssthresh before the last reduction, for undo.
    prior: Option<(usize, usize)>,
}

impl NewReno {
    pub fn new(mss: usize, iw_segments: Option<u32>) -> Self {
        NewReno {
            cwnd: initial_window(mss, iw_segments),
            ssthresh: usize::MAX,
            mss,
            ca_acked: 0,
            prior: None,
        }
    }
}

impl Controller for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.max(self.mss);
    }

    /// RFC 5681 §3.1, with appropriate byte counting (L = 2·SMSS, RFC 3465) in
    /// slow start.
    fn set_ssthresh(&mut self, ssthresh: usize) {
        self.ssthresh = ssthresh;
    }

    fn on_ack(&mut self, ev: &AckEvent) {
        if ev.app_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += ev.acked.min(2 * self.mss);
        } else {
            self.ca_acked += ev.acked;
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }

    /// RFC 5681 §3.2 eqn. 4: ssthresh = max(FlightSize / 2, 2·SMSS).
    fn on_congestion_event(&mut self, _now: Instant, in_flight: usize) {
        self.prior = Some((self.cwnd, self.ssthresh));
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.ca_acked = 0;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        self.prior = Some((self.cwnd, self.ssthresh));
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.ca_acked = 0;
    }

    fn undo(&mut self) {
        if let Some((cwnd, ssthresh)) = self.prior.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = ssthresh;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::SeqNumber;

    fn ack(acked: usize) -> AckEvent {
        AckEvent {
            now: Instant::from_millis(0),
            acked,
            rtt: None,
            min_rtt: None,
            in_flight: 0,
            app_limited: false,
            snd_una: SeqNumber(0),
            snd_max: SeqNumber(0),
        }
    }

    #[test]
    fn initial_window_rfc6928() {
        assert_eq!(NewReno::new(1460, None).cwnd(), 14_600);
        assert_eq!(NewReno::new(536, None).cwnd(), 5360);
        assert_eq!(NewReno::new(9000, None).cwnd(), 18_000);
        assert_eq!(NewReno::new(9000, Some(10)).cwnd(), 90_000);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(1000, None);
        c.ssthresh = 20_000;
        let w0 = c.cwnd;
        c.on_ack(&ack(1000));
        assert_eq!(c.cwnd, w0 + 1000);
        c.cwnd = 20_000;
        for _ in 0..20 {
            c.on_ack(&ack(1000));
        }
        assert_eq!(c.cwnd, 21_000, "one MSS per window in avoidance");
        let mut limited = ack(1000);
        limited.app_limited = true;
        c.on_ack(&limited);
        assert_eq!(c.cwnd, 21_000, "no growth when not cwnd-limited (RFC 7661)");
    }

    #[test]
    fn congestion_event_halves_and_undo_restores() {
        let mut c = NewReno::new(1000, None);
        c.cwnd = 20_000;
        c.on_congestion_event(Instant::from_millis(0), 20_000);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.cwnd(), 10_000);
        c.undo();
        assert_eq!(c.cwnd(), 20_000);
        assert_eq!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn pacing_rate_follows_linux_gains() {
        let mut c = NewReno::new(1000, None);
        let srtt = crate::time::Duration::from_millis(100);
        // Slow start (ssthresh infinite): 200 % of window/SRTT.
        assert_eq!(c.pacing_rate(10_000, srtt), 200_000);
        c.on_congestion_event(Instant::from_millis(0), 20_000);
        // Congestion avoidance: 120 %.
        assert_eq!(c.pacing_rate(10_000, srtt), 120_000);
    }

    #[test]
    fn rto_collapses_window() {
        let mut c = NewReno::new(1000, None);
        c.on_rto(Instant::from_millis(0), 30_000);
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 15_000);
    }
}
