//! Loss recovery: when to declare loss and how fast to send while repairing it.
//! Duplicate-ACK counting and fast retransmit (RFC 5681 §3.2), NewReno's
//! recovery point and partial ACKs (RFC 6582), SACK-based recovery (RFC 6675,
//! with the scoreboard in `sack.rs`). The window reduction itself is the
//! congestion controller's ([`Controller::on_congestion_event`]).

use super::cong::Controller;
use crate::time::Instant;
use berth_wire::SeqNumber;

#[derive(Debug, Clone)]
pub(crate) struct Recovery {
    pub in_recovery: bool,
    /// RFC 6582 "recover": highest sequence sent when recovery began.
    pub recover: SeqNumber,
    /// The current recovery is SACK-based (RFC 6675): no window inflation.
    pub sack_recovery: bool,
    /// HighRxt (RFC 6675 §2): end of what this recovery retransmitted.
    pub high_rxt: SeqNumber,
    pub dupacks: u32,
    /// Retransmit one segment at snd_una on the next output (fast retransmit).
    pub rexmit_once: bool,
    mss: usize,
}

impl Recovery {
    pub fn new(iss: SeqNumber, mss: usize) -> Recovery {
        Recovery {
            in_recovery: false,
            recover: iss,
            sack_recovery: false,
            high_rxt: iss,
            dupacks: 0,
            rexmit_once: false,
            mss,
        }
    }

    /// Third duplicate ACK (RFC 6582 §3.2 step 2): the controller cuts the window;
    /// without SACK it is inflated by the three segments that left the network.
    /// With SACK (RFC 6675 §5 step 4.2) cwnd is ssthresh and the sender counts the
    /// data in flight ("pipe") instead.
    pub fn enter(
        &mut self,
        now: Instant,
        cc: &mut dyn Controller,
        flight: usize,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        sack: bool,
    ) {
        cc.on_congestion_event(now, flight);
        if !sack {
            cc.set_cwnd(cc.ssthresh() + 3 * self.mss);
        }
        self.recover = snd_max;
        self.in_recovery = true;
        self.sack_recovery = sack;
        self.high_rxt = snd_una;
        self.rexmit_once = true;
    }

    /// Further duplicate ACK in recovery: inflate by one segment (step 3); not
    /// with SACK, whose pipe already shrank by what the ACK reported.
    pub fn on_dupack(&mut self, cc: &mut dyn Controller) {
        if !self.sack_recovery {
            cc.set_cwnd(cc.cwnd() + self.mss);
        }
    }

    /// ACK of new data during recovery. Returns true for a partial ACK (step 5:
    /// retransmit the next hole, deflate), false when recovery ends (full ACK).
    pub fn on_ack(
        &mut self,
        cc: &mut dyn Controller,
        ack: SeqNumber,
        acked: usize,
        flight: usize,
    ) -> bool {
        if ack >= self.recover {
            // Full acknowledgment (step 4, option 1 of RFC 6582 §3.2).
            cc.set_cwnd(cc.ssthresh().min(flight.max(self.mss) + self.mss));
            self.in_recovery = false;
            self.sack_recovery = false;
            false
        } else {
            if !self.sack_recovery {
                cc.set_cwnd((cc.cwnd().saturating_sub(acked) + self.mss).max(self.mss));
            }
            true
        }
    }

    /// Retransmission timeout: recovery ends; RFC 6582 §3.2 step 4 note: no fast
    /// retransmit for data sent before the RTO.
    pub fn on_rto(&mut self, snd_max: SeqNumber) {
        self.in_recovery = false;
        self.sack_recovery = false;
        self.dupacks = 0;
        self.recover = snd_max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::cong::reno::NewReno;

    #[test]
    fn recovery_partial_and_full_ack() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000), false);
        assert_eq!(cc.ssthresh(), 10_000);
        assert_eq!(cc.cwnd(), 13_000);
        r.on_dupack(&mut cc);
        assert_eq!(cc.cwnd(), 14_000);
        assert!(r.on_ack(&mut cc, SeqNumber(5000), 5000, 15_000));
        assert_eq!(cc.cwnd(), 10_000);
        assert!(!r.on_ack(&mut cc, SeqNumber(20_000), 15_000, 0));
        assert!(!r.in_recovery);
        assert_eq!(cc.cwnd(), 2000);
    }

    #[test]
    fn sack_recovery_does_not_inflate() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000), true);
        assert_eq!(cc.cwnd(), 10_000);
        r.on_dupack(&mut cc);
        assert_eq!(cc.cwnd(), 10_000);
    }
}
