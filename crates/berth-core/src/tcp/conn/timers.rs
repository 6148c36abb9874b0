//! Timers: retransmission (RFC 6298), delayed ACK, persist, keepalive,
//! FIN-WAIT-2 and TIME-WAIT.

use super::*;

impl Tcb {
    /// Earliest timer deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.rto_at,
            self.pace_next.filter(|_| self.pace_blocked),
            self.rack_at,
            self.tlp_at,
            self.delack_at,
            self.persist_at,
            self.keepalive_at,
            self.timewait_at,
            self.finwait2_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether keepalive probes run in this state: every state where a
    /// connection can sit idle with nothing of ours unacknowledged, as on Linux
    /// (tcp_keepalive_timer probes in any state but CLOSE and SYN-SENT). A
    /// half-closed connection waiting for the rest of the peer's data
    /// (FIN-WAIT-2) or for the application (CLOSE-WAIT) would otherwise never
    /// learn that the peer rebooted. SYN-RECEIVED, FIN-WAIT-1, CLOSING and
    /// LAST-ACK have a SYN or FIN outstanding: the retransmission timer covers them.
    fn keepalive_state(&self) -> bool {
        matches!(
            self.state,
            TcpState::Established | TcpState::FinWait2 | TcpState::CloseWait
        )
    }

    /// The connection ended: nothing is due any more. A deadline left behind
    /// (refresh_keepalive runs after the segment that closed it, an RTO or
    /// TIME-WAIT timer still set) would run timer work on a CLOSED connection.
    pub fn stop_timers(&mut self) {
        self.rto_at = None;
        self.pace_next = None;
        self.pace_blocked = false;
        self.rack_at = None;
        self.tlp_at = None;
        self.tlp_now = false;
        self.delack_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.timewait_at = None;
        self.finwait2_at = None;
        self.probe_now = false;
    }

    /// Forget what loss detection knew of the data in flight (SACK marks, the
    /// tail loss probe, RACK's timer) before all of it is sent again from
    /// snd_una.
    pub(super) fn forget_loss_marks(&mut self) {
        self.scoreboard.clear();
        self.sent.clear_marks();
        self.tlp_at = None;
        self.tlp_now = false;
        self.tlp_high = None;
        self.rack_at = None;
    }

    /// Arm the keepalive timer if enabled and idle (called after activity).
    /// RFC 1122 §4.2.3.6: keep-alives are off by default, sent only after an
    /// idle interval (configurable, default no less than two hours), and an
    /// unanswered one is no reason by itself to drop the connection — hence
    /// `keep_cnt` probes `keep_intvl` apart before it is aborted, as Linux.
    pub fn refresh_keepalive(&mut self) {
        if self.keepalive && self.keepalive_state() {
            let at = self.last_rx
                + if self.keepalive_probes == 0 {
                    self.keep_idle
                } else {
                    self.keep_intvl
                };
            self.keepalive_at = Some(at);
        } else {
            self.keepalive_at = None;
        }
    }

    /// Run due timers. `Closed(errno)` means the connection must be torn down (and,
    /// for a timeout, reset).
    pub fn on_timer(&mut self, now: Instant, cfg: &TcpConfig) -> Verdict {
        if self.timewait_at.is_some_and(|t| t <= now) {
            self.timewait_at = None;
            return Verdict::Closed(0);
        }
        if self.finwait2_at.is_some_and(|t| t <= now) {
            self.finwait2_at = None;
            return Verdict::Closed(0);
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            if self.snd_una < self.snd_max {
                let limit = match self.state {
                    TcpState::SynSent | TcpState::SynReceived => cfg.syn_retries,
                    _ => cfg.retries,
                };
                if self.retries >= limit {
                    return Verdict::Closed(code::ETIMEDOUT);
                }
                self.retries += 1;
                self.rtt.back_off();
                // Karn: no RTT sample from retransmitted data.
                self.rtt_probe = None;
                let flight = self.flight();
                self.cc.on_rto(now, flight);
                self.rec.on_rto(self.snd_max);
                self.rec.undo_marker = self.snd_una;
                // RFC 2018 §8: after a timeout the SACK state is not trusted.
                self.forget_loss_marks();
                // Eifel (RFC 3522 §3): remember the first retransmission's TSval;
                // without timestamps, F-RTO (RFC 5682) tells a spurious timeout.
                self.frto = None;
                if self.retries == 1 && self.state.is_synchronized() {
                    if self.ts_ok {
                        self.rto_ts = Some(self.ts_now(now));
                    } else if cfg.frto {
                        self.frto = Some(Frto::First {
                            una: self.snd_una,
                            recover: self.snd_max,
                        });
                    }
                }
                // Go back: resend from snd_una (RFC 6298 §5.4).
                self.snd_nxt = self.snd_una;
                if matches!(self.state, TcpState::SynSent | TcpState::SynReceived) {
                    self.snd_nxt = self.iss;
                }
                self.rto_events += 1;
            }
        }
        if self.pace_blocked && self.pace_next.is_none_or(|t| t <= now) {
            // The send time came: output runs after the timers.
            self.pace_blocked = false;
        }
        if self.rack_at.is_some_and(|t| t <= now) {
            self.rack_at = None;
            self.rack_timeout(now, cfg);
        }
        if self.tlp_at.is_some_and(|t| t <= now) {
            self.tlp_at = None;
            if self.snd_una < self.snd_max && !self.rec.in_recovery && self.tlp_high.is_none() {
                self.tlp_now = true;
            }
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            // Data beyond snd_nxt waits for the window: unsent data, or data a
            // timeout rewound for retransmission (still below snd_max, so
            // `flight()` would count it as in flight and nothing would probe).
            let outstanding = (self.snd_nxt - self.snd_una).max(0) as usize;
            if self.send.len() > outstanding {
                if self.snd_wnd == 0 {
                    self.probe_now = true;
                    self.persist_backoff += 1;
                } else {
                    self.sws_override = true;
                }
            }
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = None;
            if self.keepalive && self.keepalive_state() {
                if self.keepalive_probes >= self.keep_cnt {
                    return Verdict::Closed(code::ETIMEDOUT);
                }
                self.keepalive_probes += 1;
                self.probe_now = true;
                self.keepalive_at = Some(now + self.keep_intvl);
            }
        }
        Verdict::Ok
    }
}
