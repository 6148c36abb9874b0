//! Loss recovery: when to declare loss and how fast to send while repairing it.
//! Duplicate-ACK counting and fast retransmit (RFC 5681 §3.2), NewReno's
//! recovery point and partial ACKs (RFC 6582) for connections without SACK;
//! with SACK, loss is found by RACK (`rack.rs`, RFC 8985) or, with RACK off, by
//! RFC 6675 (`sack.rs`), and the sending rate during recovery follows
//! Proportional Rate Reduction (RFC 6937). The window reduction itself is the
//! congestion controller's ([`Controller::on_congestion_event`]); a reduction
//! found spurious by D-SACKs (RFC 2883, RFC 3708) or timestamps (RFC 3522) is
//! undone through [`Controller::undo`].

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
    /// PRR (RFC 6937 §3): data delivered and sent since recovery began, and the
    /// flight size when it began.
    pub prr_delivered: usize,
    pub prr_out: usize,
    pub recover_fs: usize,
    /// Undo (Linux undo_marker / undo_retrans): segments retransmitted since the
    /// last reduction and not yet shown needless by a D-SACK. `None` when there
    /// is nothing to undo.
    pub undo_retrans: Option<i64>,
    /// snd_una when the reduction happened: D-SACKs below it are older news.
    pub undo_marker: SeqNumber,
    /// Recovery episodes entered (tcp_info).
    pub episodes: u64,
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
            prr_delivered: 0,
            prr_out: 0,
            recover_fs: 0,
            undo_retrans: None,
            undo_marker: iss,
            episodes: 0,
        }
    }

    /// Enter SACK-based recovery (RACK found a loss, or RFC 6675's DupThresh):
    /// one reduction per window of data (RFC 6582's recover point), then PRR.
    pub fn enter_sack(
        &mut self,
        now: Instant,
        cc: &mut dyn Controller,
        flight: usize,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
    ) {
        cc.on_congestion_event(now, flight);
        self.recover = snd_max;
        self.in_recovery = true;
        self.sack_recovery = true;
        self.high_rxt = snd_una;
        self.prr_delivered = 0;
        self.prr_out = 0;
        self.recover_fs = flight.max(1);
        self.undo_retrans = Some(0);
        self.undo_marker = snd_una;
        self.episodes += 1;
    }

    /// PRR on an ACK during recovery, as RFC 6937 §3.1 revised by RFC 6937bis
    /// (and Linux's tcp_cwnd_reduction): `delivered` bytes newly acknowledged
    /// or SACKed (DeliveredData), `pipe` what is in the network now, `safe`
    /// the ACK advanced SND.UNA without revealing a new loss (SafeACK). Sets
    /// the congestion window to use until the next ACK: pipe + sndcnt.
    pub fn prr_on_ack(
        &mut self,
        cc: &mut dyn Controller,
        delivered: usize,
        pipe: usize,
        safe: bool,
    ) {
        self.prr_delivered += delivered;
        let ssthresh = cc.ssthresh();
        let mut sndcnt = if pipe > ssthresh {
            // Proportional part: ceil(prr_delivered · ssthresh / RecoverFS) − prr_out,
            // the target rounded up to whole segments (as Linux counts it, in
            // packets): a fraction of an MSS would send nothing until a later
            // ACK, and on the first ACK of recovery not even the retransmission.
            let num = self.prr_delivered as u128 * ssthresh as u128;
            let d = self.recover_fs as u128;
            let target = (num.div_ceil(d) as usize).div_ceil(self.mss) * self.mss;
            target.saturating_sub(self.prr_out)
        } else {
            // PRR-CRB (conservation: no more out than delivered), and one
            // segment more (PRR-SSRB, slow start towards ssthresh) only on a
            // SafeACK — an ACK that also reports a new loss repairs it within
            // what was delivered.
            let mut limit = self
                .prr_delivered
                .saturating_sub(self.prr_out)
                .max(delivered);
            if safe {
                limit += self.mss;
            }
            (ssthresh - pipe).min(limit)
        };
        // The first ACK of recovery sends at least one segment: the fast
        // retransmit itself.
        if self.prr_out == 0 {
            sndcnt = sndcnt.max(self.mss);
        }
        cc.set_cwnd(pipe + sndcnt);
    }

    /// A segment went out during recovery.
    pub fn on_send(&mut self, len: usize, retransmission: bool) {
        if self.in_recovery {
            self.prr_out += len;
        }
        if retransmission {
            if let Some(n) = &mut self.undo_retrans {
                *n += 1;
            }
        }
    }

    /// SACK-based recovery ends (the ACK covers `recover`): cwnd = ssthresh
    /// (RFC 6937 §3.1), but no more than the data in flight plus one segment
    /// (RFC 6582 §3.2 step 3, option 1's burst avoidance) and no less than
    /// ssthresh/2. When the peer's window was full of holes, nothing new went
    /// out during recovery and the flight is near zero at its end: a jump to
    /// ssthresh sends a window-sized burst into the queue that just overflowed
    /// (a second loss episode in `sim transfer --rate 1gbit --delay 25ms`),
    /// while restarting from one segment costs a whole slow start. From
    /// ssthresh/2, slow start refills the window in one round trip.
    /// `gentle` off: cwnd = ssthresh, Linux's tcp_end_cwnd_reduction.
    pub fn exit_sack(&mut self, cc: &mut dyn Controller, flight: usize, gentle: bool) {
        let ssthresh = cc.ssthresh();
        // (An undo may have restored an infinite ssthresh: keep cwnd then.)
        if ssthresh != usize::MAX {
            let cwnd = if gentle {
                (ssthresh.min(flight.max(self.mss) + self.mss)).max(ssthresh / 2)
            } else {
                ssthresh
            };
            cc.set_cwnd(cwnd);
        }
        self.in_recovery = false;
        self.sack_recovery = false;
    }

    /// A D-SACK reported a retransmission needless. Returns true when every
    /// retransmission since the reduction was (RFC 3708 §3): undo it.
    pub fn on_dsack(&mut self) -> bool {
        match &mut self.undo_retrans {
            Some(n) => {
                *n -= 1;
                if *n <= 0 {
                    self.undo_retrans = None;
                    true
                } else {
                    false
                }
            }
            None => false,
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
        self.prr_delivered = 0;
        self.prr_out = 0;
        self.recover_fs = flight.max(1);
        self.undo_retrans = Some(0);
        self.undo_marker = snd_una;
        self.episodes += 1;
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

    /// The send MSS changed (a lower path MTU).
    pub fn set_mss(&mut self, mss: usize) {
        self.mss = mss;
    }

    /// Everything in flight is resent after a lower path MTU (Linux
    /// tcp_simple_retransmit): recovery ends without undo state, and, as
    /// after a timeout, no fast retransmit for data sent before.
    pub fn on_mtu_reduced(&mut self, snd_max: SeqNumber) {
        self.in_recovery = false;
        self.sack_recovery = false;
        self.dupacks = 0;
        self.rexmit_once = false;
        self.recover = snd_max;
    }

    /// Retransmission timeout: recovery ends; RFC 6582 §3.2 step 4 note: no fast
    /// retransmit for data sent before the RTO.
    pub fn on_rto(&mut self, snd_max: SeqNumber) {
        self.undo_retrans = Some(0);
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

    /// RFC 6937 §3.1's example shape: with ssthresh half of RecoverFS, PRR
    /// sends one segment for every two delivered while pipe > ssthresh.
    #[test]
    fn prr_sends_half_per_delivered_while_pipe_above_ssthresh() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        cc.set_cwnd(20_000);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        assert_eq!(cc.ssthresh(), 10_000);
        let mut pipe = 19_000; // one segment lost, SACKs of the others arrive
        let mut sent = 0;
        for _ in 0..10 {
            pipe -= 1000; // a SACKed segment left the network
            r.prr_on_ack(&mut cc, 1000, pipe, false);
            let budget = cc.cwnd().saturating_sub(pipe);
            r.on_send(budget, false);
            pipe += budget;
            sent += budget;
        }
        assert_eq!(sent, 5000, "half of what was delivered");
        assert_eq!(r.prr_out, 5000);
    }

    /// The first ACK of recovery always lets the fast retransmit out, although
    /// its proportional share (here half a segment) is below one MSS.
    #[test]
    fn prr_forces_the_fast_retransmit() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        r.prr_on_ack(&mut cc, 1000, 18_000, false);
        assert_eq!(cc.cwnd(), 18_000 + 1000, "one full segment");
        r.on_send(1000, true);
        // Then the proportional rate again: 2000 · ½ − 1000 = 0.
        r.prr_on_ack(&mut cc, 1000, 18_000, false);
        assert_eq!(cc.cwnd(), 18_000);
    }

    /// The proportional share is counted in whole segments: the ACK that
    /// enters recovery, with half a segment's share, still sends the
    /// retransmission, and then one segment goes out per two delivered.
    #[test]
    fn prr_rounds_the_share_up_to_whole_segments() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        cc.set_cwnd(20_000);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        let mut pipe = 16_000; // three SACKed, one lost
        let mut out = Vec::new();
        for _ in 0..6 {
            r.prr_on_ack(&mut cc, 1000, pipe, false);
            let budget = cc.cwnd().saturating_sub(pipe) / 1000 * 1000;
            r.on_send(budget, false);
            pipe += budget;
            pipe -= 1000; // the next SACK
            out.push(budget / 1000);
        }
        assert_eq!(out, vec![1, 0, 1, 0, 1, 0]);
    }

    /// Once pipe falls below ssthresh, PRR-SSRB grows it back at most one MSS
    /// above what was delivered per ACK.
    #[test]
    fn prr_ssrb_below_ssthresh() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        // Heavy loss: pipe far below ssthresh (10 000). An ACK that found
        // the loss (not a SafeACK) sends what it delivered: conservation.
        r.prr_on_ack(&mut cc, 1000, 2000, false);
        assert_eq!(cc.cwnd(), 2000 + 1000, "delivered");
        r.on_send(1000, true);
        // A SafeACK (SND.UNA advanced, no new loss) adds one MSS: slow start.
        r.prr_on_ack(&mut cc, 1000, 2000, true);
        // prr_delivered − prr_out = 1000, so max(1000, 1000) + MSS.
        assert_eq!(cc.cwnd(), 2000 + 2000);
        r.on_send(2000, true);
        r.prr_on_ack(&mut cc, 1000, 3000, true);
        // prr_delivered − prr_out = 0, so max(0, 1000) + MSS.
        assert_eq!(cc.cwnd(), 3000 + 2000);
        r.exit_sack(&mut cc, 20_000, true);
        assert_eq!(cc.cwnd(), 10_000);
        // Little in flight at the end: no burst up to ssthresh.
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        r.exit_sack(&mut cc, 6000, true);
        assert_eq!(cc.cwnd(), 7000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        r.exit_sack(&mut cc, 0, true);
        assert_eq!(cc.cwnd(), cc.ssthresh() / 2);
    }

    /// RFC 6937bis: the first ACK of recovery may send one segment even when
    /// the proportional share rounds to nothing.
    #[test]
    fn prr_first_ack_sends_the_fast_retransmit() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        cc.set_cwnd(20_000);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        // Nothing delivered yet (a RACK timer found the loss), pipe above ssthresh.
        r.prr_on_ack(&mut cc, 0, 15_000, false);
        assert_eq!(cc.cwnd(), 16_000);
        r.on_send(1000, true);
        r.prr_on_ack(&mut cc, 0, 15_000, false);
        assert_eq!(cc.cwnd(), 15_000, "only once");
    }

    #[test]
    fn undo_when_every_retransmission_was_dsacked() {
        let now = Instant::from_millis(0);
        let mut cc = NewReno::new(1000, None);
        let mut r = Recovery::new(SeqNumber(0), 1000);
        r.enter_sack(now, &mut cc, 20_000, SeqNumber(0), SeqNumber(20_000));
        r.on_send(1000, true);
        r.on_send(1000, true);
        assert!(!r.on_dsack());
        assert!(r.on_dsack());
        assert!(!r.on_dsack(), "once");
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
