//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use crate::time::Duration;

/// SRTT / RTTVAR / RTO per RFC 6298 §2, with a configurable floor (Linux uses
/// 200 ms rather than the RFC's 1 s) and exponential backoff (§5.5).
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// Smallest sample seen (for HyStart++ and RACK's reordering window).
    min_rtt: Option<Duration>,
    rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    /// Consecutive backoffs since the last valid sample.
    pub backoff: u32,
}

impl RttEstimator {
    pub fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: None,
            rto: initial,
            min_rto,
            max_rto,
            backoff: 0,
        }
    }

    /// Feed one measurement (RFC 6298 §2.2, §2.3 with α = 1/8, β = 1/4, K = 4, and a
    /// clock granularity G of 1 ms).
    pub fn sample(&mut self, r: Duration) {
        let r = r.max(Duration::from_micros(1));
        self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        let g = Duration::from_millis(1);
        self.rto = (srtt + (self.rttvar * 4).max(g)).clamp(self.min_rto, self.max_rto);
        self.backoff = 0;
    }

    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The current timeout including backoff.
    pub fn rto(&self) -> Duration {
        let factor = 1u32 << self.backoff.min(16);
        (self.rto * factor).min(self.max_rto)
    }

    /// §5.5: double the timer after a retransmission timeout.
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_sample_and_smoothing() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        assert_eq!(e.rto(), ms(1000));
        e.sample(ms(100));
        // SRTT = 100, RTTVAR = 50, RTO = 100 + 200 = 300.
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        assert_eq!(e.rto(), ms(300));
        e.sample(ms(100));
        // RTTVAR = 3/4·50 + 0 = 37.5; SRTT = 100; RTO = 250.
        assert_eq!(e.rto(), Duration::from_micros(250_000));
    }

    #[test]
    fn floor_backoff_and_ceiling() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        e.sample(ms(1));
        assert_eq!(e.rto(), ms(200));
        e.back_off();
        e.back_off();
        assert_eq!(e.rto(), ms(800));
        for _ in 0..20 {
            e.back_off();
        }
        assert_eq!(e.rto(), ms(120_000));
        e.sample(ms(1));
        assert_eq!(e.rto(), ms(200), "a valid sample clears the backoff");
    }
}
