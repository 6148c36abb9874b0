//! A lower path MTU (RFC 1191, RFC 8201): the send MSS drops, and what is in
//! flight goes again in segments that fit (Linux tcp_mtu_reduced).

use super::*;

impl Tcb {
    /// Payload bytes per segment: the peer's MSS, ours, and the path MTU's
    /// (MTU − 40, RFC 9293 §3.7.1), less the timestamp option (RFC 7323).
    pub(super) fn send_mss(&self) -> usize {
        let path = self.pmtu.saturating_sub(40).clamp(88, 65_495);
        let mut mss = self.peer_mss.min(self.our_mss as usize).min(path);
        if self.ts_ok {
            mss = mss.saturating_sub(12);
        }
        mss.max(16)
    }

    /// The path MTU (as the TCB counts it, see `pmtu`) fell to `mtu`. Returns
    /// whether the send MSS dropped; then what is in flight is resent.
    pub fn mtu_reduced(&mut self, mtu: usize) -> bool {
        if mtu >= self.pmtu {
            return false;
        }
        self.pmtu = mtu;
        // Before the handshake ends the MSS is not chosen yet:
        // apply_syn_options takes the path MTU into account.
        if !self.state.is_synchronized() {
            return false;
        }
        let mss = self.send_mss();
        if mss >= self.mss {
            return false;
        }
        self.mss = mss;
        self.cc.set_mss(mss);
        self.rec.set_mss(mss);
        if self.snd_una < self.snd_max {
            self.simple_retransmit();
        }
        true
    }

    /// Linux tcp_simple_retransmit: the segments in flight were dropped for
    /// their size, not for congestion, so go back to snd_una and send them
    /// again at the new MSS with the window unchanged (no congestion event).
    /// The SACK state is cleared as after a timeout: going back resends the
    /// SACKed data too.
    fn simple_retransmit(&mut self) {
        self.rec.on_mtu_reduced(self.snd_max);
        self.forget_loss_marks();
        self.rtt_probe = None;
        self.frto = None;
        self.rto_ts = None;
        self.snd_nxt = self.snd_una;
        // A fresh timer for the retransmission (armed as it goes out).
        self.rto_at = None;
    }
}
