//! Congestion control: slow start and congestion avoidance (RFC 5681) with the
//! initial window of RFC 6928 and NewReno fast recovery (RFC 6582), or, when the
//! peer sends SACK blocks, the cwnd side of RFC 6675 recovery (the pipe and hole
//! selection live in conn.rs).

use berth_wire::SeqNumber;

#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    pub cwnd: usize,
    pub ssthresh: usize,
    mss: usize,
    /// Bytes acknowledged in congestion avoidance not yet turned into cwnd growth.
    ca_acked: usize,
    /// RFC 6582 "recover": highest sequence sent when recovery began.
    pub recover: SeqNumber,
    pub in_recovery: bool,
    /// The current recovery is SACK-based (RFC 6675): no window inflation.
    pub sack_recovery: bool,
}

impl NewReno {
    /// `iw_segments` overrides RFC 6928's initial window with a segment count
    /// (Linux: 10 whatever the MSS).
    pub fn new(mss: usize, iss: SeqNumber, iw_segments: Option<u32>) -> Self {
        // RFC 6928: IW = min(10·MSS, max(2·MSS, 14600)).
        let iw = match iw_segments {
            Some(n) => n.max(1) as usize * mss,
            None => (10 * mss).min((2 * mss).max(14_600)),
        };
        NewReno {
            cwnd: iw,
            ssthresh: usize::MAX,
            mss,
            ca_acked: 0,
            recover: iss,
            in_recovery: false,
            sack_recovery: false,
        }
    }

    /// New data acknowledged outside recovery (RFC 5681 §3.1; appropriate byte
    /// counting with L = 2·SMSS per RFC 3465 in slow start).
    pub fn on_ack(&mut self, acked: usize) {
        if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(2 * self.mss);
        } else {
            self.ca_acked += acked;
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }

    /// Third duplicate ACK (RFC 6582 §3.2 step 2): halve, enter recovery. With
    /// SACK (RFC 6675 §5 step 4.2) cwnd is ssthresh and the sender counts the
    /// data in flight ("pipe") instead of inflating cwnd per duplicate ACK.
    pub fn enter_recovery(&mut self, flight: usize, snd_max: SeqNumber, sack: bool) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = if sack {
            self.ssthresh
        } else {
            self.ssthresh + 3 * self.mss
        };
        self.recover = snd_max;
        self.in_recovery = true;
        self.sack_recovery = sack;
    }

    /// Further duplicate ACK in recovery: inflate by one segment (step 3); not
    /// with SACK, whose pipe already shrank by what the ACK reported.
    pub fn on_dupack_in_recovery(&mut self) {
        if !self.sack_recovery {
            self.cwnd += self.mss;
        }
    }

    /// ACK of new data during recovery. Returns true for a partial ACK (step 5:
    /// retransmit the next hole, deflate), false when recovery ends (full ACK).
    pub fn on_ack_in_recovery(&mut self, ack: SeqNumber, acked: usize, flight: usize) -> bool {
        if ack >= self.recover {
            // Full acknowledgment (step 4, option 1 of RFC 6582 §3.2).
            self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
            self.in_recovery = false;
            self.sack_recovery = false;
            false
        } else {
            if !self.sack_recovery {
                self.cwnd = self.cwnd.saturating_sub(acked) + self.mss;
                self.cwnd = self.cwnd.max(self.mss);
            }
            true
        }
    }

    /// Retransmission timeout (RFC 5681 §3.1 eqn. 4, and loss window of 1 SMSS).
    pub fn on_rto(&mut self, flight: usize, snd_max: SeqNumber) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.ca_acked = 0;
        self.in_recovery = false;
        self.sack_recovery = false;
        // RFC 6582 §3.2 step 4 note: no fast retransmit for data sent before the RTO.
        self.recover = snd_max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_rfc6928() {
        assert_eq!(NewReno::new(1460, SeqNumber(0), None).cwnd, 14_600);
        assert_eq!(NewReno::new(536, SeqNumber(0), None).cwnd, 5360);
        assert_eq!(NewReno::new(9000, SeqNumber(0), None).cwnd, 18_000);
        assert_eq!(NewReno::new(9000, SeqNumber(0), Some(10)).cwnd, 90_000);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(1000, SeqNumber(0), None);
        c.ssthresh = 20_000;
        let w0 = c.cwnd;
        c.on_ack(1000);
        assert_eq!(c.cwnd, w0 + 1000);
        c.cwnd = 20_000;
        for _ in 0..20 {
            c.on_ack(1000);
        }
        assert_eq!(c.cwnd, 21_000, "one MSS per window in avoidance");
    }

    #[test]
    fn recovery_partial_and_full_ack() {
        let mut c = NewReno::new(1000, SeqNumber(0), None);
        c.enter_recovery(20_000, SeqNumber(20_000), false);
        assert_eq!(c.ssthresh, 10_000);
        assert_eq!(c.cwnd, 13_000);
        c.on_dupack_in_recovery();
        assert_eq!(c.cwnd, 14_000);
        assert!(c.on_ack_in_recovery(SeqNumber(5000), 5000, 15_000));
        assert_eq!(c.cwnd, 10_000);
        assert!(!c.on_ack_in_recovery(SeqNumber(20_000), 15_000, 0));
        assert!(!c.in_recovery);
        assert_eq!(c.cwnd, 2000);
    }

    #[test]
    fn rto_collapses_window() {
        let mut c = NewReno::new(1000, SeqNumber(0), None);
        c.on_rto(30_000, SeqNumber(30_000));
        assert_eq!(c.cwnd, 1000);
        assert_eq!(c.ssthresh, 15_000);
    }
}
