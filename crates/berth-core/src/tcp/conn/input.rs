//! Segment arrival (RFC 9293 §3.10.7): acceptability, RST/SYN checks, ACK
//! processing and state changes. Data goes on to `recv.rs`.

use super::*;
use crate::tcp::cong::AckEvent;

impl Tcb {
    // ---- segment arrival (RFC 9293 §3.10.7.4) -------------------------------------

    /// Handle a segment for this connection. The segment was already validated by
    /// the parser (checksum, offsets, options).
    pub fn on_segment(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr,
        challenge_ok: &mut dyn FnMut() -> bool,
    ) -> Verdict {
        self.segs_in += 1;
        self.info_on_recv(now, seg.payload.len(), cfg);
        if self.state == TcpState::SynSent {
            return self.on_segment_syn_sent(now, seg);
        }
        let flags = seg.flags;
        let seg_len = seg.segment_len();
        // RFC 7323 §5.3: PAWS. A timestamp older than ts_recent marks an old
        // duplicate (RSTs are exempt).
        if self.ts_ok && !flags.contains(TcpFlags::RST) {
            if let Some((val, _)) = seg.timestamp {
                if (val.wrapping_sub(self.ts_recent) as i32) < 0 && !self.disordered_ack(seg, val) {
                    self.stat_paws += 1;
                    self.dup_ack(now, seg);
                    return Verdict::Ok;
                }
            }
        }
        // Acceptability test (RFC 9293 §3.10.7.4, first check).
        let wnd = self.window_bytes_for_check();
        let acceptable = self.seq_acceptable(seg.seq_number, seg_len, wnd);
        if !acceptable {
            // RFC 9293 §3.10.7.4 TIME-WAIT: the peer's FIN again (at RCV.NXT−1)
            // is acknowledged and restarts the 2 MSL timeout.
            if self.state == TcpState::TimeWait
                && flags.contains(TcpFlags::FIN)
                && !flags.contains(TcpFlags::SYN)
                && !flags.contains(TcpFlags::RST)
                && seg.seq_number + (seg.payload.len() + 1) == self.rcv_nxt
            {
                self.ack_now = true;
                self.timewait_at = Some(now + cfg.time_wait);
                return Verdict::Ok;
            }
            self.stat_out_of_window += 1;
            let len = seg.payload.len();
            if self.sack_ok && len > 0 && seg.seq_number + len <= self.rcv_nxt {
                // Data we already have: report it in a D-SACK (RFC 2883 §4).
                self.dsack_out = Some((seg.seq_number, seg.seq_number + len));
            }
            if !flags.contains(TcpFlags::RST) {
                self.dup_ack(now, seg);
            }
            return Verdict::Ok;
        }
        // Second: RST (RFC 5961 §3.2: reset only on an exact match, else challenge).
        if flags.contains(TcpFlags::RST) {
            if seg.seq_number == self.rcv_nxt {
                return match self.state {
                    TcpState::SynReceived => Verdict::Closed(code::ECONNREFUSED),
                    TcpState::Closing | TcpState::LastAck | TcpState::TimeWait => {
                        Verdict::Closed(0)
                    }
                    _ => Verdict::Closed(code::ECONNRESET),
                };
            }
            if challenge_ok() {
                self.ack_now = true;
            }
            return Verdict::Ok;
        }
        // Fourth: SYN in a synchronized state → challenge ACK (RFC 5961 §4.2).
        if flags.contains(TcpFlags::SYN) {
            if challenge_ok() {
                self.ack_now = true;
            }
            return Verdict::Ok;
        }
        // Fifth: ACK required.
        if !flags.contains(TcpFlags::ACK) {
            return Verdict::Ok;
        }
        self.last_rx = now;
        self.keepalive_probes = 0;
        if let Some(v) = self.on_ack(now, cfg, seg) {
            return v;
        }
        // The path works: forget an ICMP soft error (as Linux's tcp_ack).
        if seg.ack_number >= self.snd_una {
            self.soft_error = None;
        }
        // RFC 7323 §4.3: remember the timestamp of a segment at the left edge —
        // only once its ACK proved acceptable (as Linux's FLAG_UPDATE_TS_RECENT): a
        // forged in-window segment with a far-future TSval and an ACK of data never
        // sent would otherwise raise TS.Recent and make PAWS drop every genuine
        // segment of the peer.
        if self.ts_ok {
            if let Some((val, _)) = seg.timestamp {
                if seg.seq_number <= self.rcv_nxt {
                    self.ts_recent = val;
                }
            }
        }
        // RFC 1122 §4.2.2.13 (and Linux's TCPAbortOnData): new data for a
        // connection the application closed can never be read, so reset it.
        // Queueing it instead fills the receive window of an orphan nobody
        // reads: a peer that echoes (reads only as fast as it can send) then
        // waits on a zero window as the orphan waits on the peer's, both
        // answering each other's probes forever.
        if self.orphan
            && matches!(self.state, TcpState::FinWait1 | TcpState::FinWait2)
            && !seg.payload.is_empty()
            && seg.seq_number + seg.payload.len() > self.rcv_nxt
        {
            return Verdict::AbortOnData(seg.ack_number);
        }
        // Sixth/seventh: data, in the states that receive.
        if matches!(
            self.state,
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
        ) {
            self.on_data(now, cfg, seg);
        } else if !seg.payload.is_empty() {
            // Data after the peer's FIN: just re-acknowledge.
            self.ack_now = true;
        }
        // Eighth: FIN, this segment's or one held from out-of-order data whose
        // hole is now filled.
        let held_fin = self
            .ooo_fin
            .filter(|&f| f == self.rcv_nxt && !flags.contains(TcpFlags::FIN));
        if flags.contains(TcpFlags::FIN) || held_fin.is_some() {
            let fin_at = held_fin.unwrap_or(seg.seq_number + seg.payload.len());
            if fin_at == self.rcv_nxt && !self.fin_received {
                self.ooo_fin = None;
                self.fin_received = true;
                self.rcv_nxt += 1;
                self.ack_now = true;
                match self.state {
                    TcpState::Established => {
                        self.set_state(TcpState::CloseWait);
                        // As Linux (tcp_fin enters pingpong mode): delay the ACK
                        // of a FIN, so that an application closing at once sends
                        // one FIN+ACK instead of an ACK and a FIN — unless more
                        // than a full segment is unacknowledged.
                        if self.unacked_bytes <= self.mss {
                            self.ack_now = false;
                            let at = now + cfg.delayed_ack;
                            self.delack_at = Some(self.delack_at.map_or(at, |d| d.min(at)));
                        }
                    }
                    TcpState::FinWait1 => {
                        // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2).
                        self.set_state(TcpState::Closing);
                    }
                    TcpState::FinWait2 => self.enter_time_wait(now, cfg),
                    _ => {}
                }
            } else if !self.fin_received
                && fin_at > self.rcv_nxt
                && fin_at <= self.rcv_adv
                && matches!(
                    self.state,
                    TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
                )
            {
                self.ooo_fin = Some(fin_at);
            } else if self.fin_received {
                // A FIN after the peer's first one: ACK it again; in TIME-WAIT
                // restart the 2 MSL timer (RFC 9293 §3.10.7.4, eighth step).
                self.ack_now = true;
                if self.state == TcpState::TimeWait {
                    self.timewait_at = Some(now + cfg.time_wait);
                }
            }
        }
        Verdict::Ok
    }

    /// Linux's tcp_disordered_ack: a pure duplicate ACK at RCV.NXT that changes
    /// no window and whose timestamp is within one RTO of TS.Recent was merely
    /// overtaken on the way (reordered ACKs); PAWS lets it through so duplicate
    /// ACK counting and SACK information are not lost.
    fn disordered_ack(&self, seg: &TcpRepr, val: u32) -> bool {
        let wnd = (seg.window_len as usize) << self.snd_shift;
        let rto_ms = self.rtt.rto().as_millis() as u32;
        seg.flags.contains(TcpFlags::ACK)
            && seg.segment_len() == 0
            && seg.seq_number == self.rcv_nxt
            && seg.ack_number == self.snd_una
            && wnd == self.snd_wnd
            && self.ts_recent.wrapping_sub(val) <= rto_ms
    }

    /// Answer an unacceptable segment (old timestamp, outside the window, ACK of
    /// data never sent) with an ACK, as RFC 9293 §3.10.7.4 says — but, for a segment
    /// that carries no data, at most once per [`OOW_ACK_INTERVAL`], as Linux does
    /// (`tcp_invalid_ratelimit`). Two ends that disagree about the sequence space
    /// (after a forged segment was accepted, say) would otherwise answer each
    /// other's ACKs with ACKs forever: an ACK storm. Data segments are always
    /// answered, so a sender whose ACKs were lost still learns what arrived.
    pub(super) fn dup_ack(&mut self, now: Instant, seg: &TcpRepr) {
        let carries_data = seg.segment_len() > 0 && !seg.flags.contains(TcpFlags::SYN);
        if !carries_data {
            if self
                .last_oow_ack
                .is_some_and(|t| now < t + OOW_ACK_INTERVAL)
            {
                return;
            }
            self.last_oow_ack = Some(now);
        }
        self.ack_now = true;
    }

    pub(super) fn window_bytes_for_check(&self) -> usize {
        (self.rcv_adv - self.rcv_nxt).max(0) as usize
    }

    /// RFC 9293 §3.10.7.4 table: is any part of the segment inside the window?
    pub(super) fn seq_acceptable(&self, seq: SeqNumber, len: usize, wnd: usize) -> bool {
        let nxt = self.rcv_nxt;
        match (len, wnd) {
            (0, 0) => seq == nxt,
            (0, _) => seq >= nxt && seq < nxt + wnd,
            (_, 0) => false,
            (_, _) => {
                (seq >= nxt && seq < nxt + wnd) || {
                    let last = seq + (len - 1);
                    last >= nxt && last < nxt + wnd
                }
            }
        }
    }

    pub(super) fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.set_state(TcpState::TimeWait);
        self.timewait_at = Some(now + cfg.time_wait);
        self.rto_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.finwait2_at = None;
        self.delack_at = None;
    }

    /// ACK processing. Returns a verdict when the connection ends here.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr,
    ) -> Option<Verdict> {
        let ack = seg.ack_number;
        if self.state == TcpState::SynReceived {
            // Simultaneous open: our SYN is acknowledged.
            if ack > self.snd_una && ack <= self.snd_max {
                self.set_state(TcpState::Established);
                // The SYN's sequence number is not data.
                self.snd_una = self.iss + 1;
                self.retries = 0;
                self.rto_at = None;
                self.snd_wnd = (seg.window_len as usize) << self.snd_shift;
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seg.seq_number;
                self.snd_wl2 = ack;
                if self.fin_queued {
                    self.set_state(TcpState::FinWait1);
                }
            } else {
                return Some(Verdict::SendReset(ack));
            }
        }
        // RFC 5961 §5.2: acceptable ACKs lie in [snd_una − max_snd_wnd, snd_max].
        if ack > self.snd_max {
            self.stat_bad_acks += 1;
            self.dup_ack(now, seg);
            return Some(Verdict::Ok);
        }
        let too_old = self.snd_una - ack > self.max_snd_wnd.max(65_535) as i32;
        if too_old {
            self.stat_bad_acks += 1;
            self.dup_ack(now, seg);
            return Some(Verdict::Ok);
        }
        let seg_wnd = (seg.window_len as usize) << self.snd_shift;
        let tsecr = seg.timestamp.filter(|_| self.ts_ok).map(|t| t.1);
        let sack = if self.sack_ok {
            self.sack_input(ack, seg)
        } else {
            super::loss::SackInput::default()
        };
        let mut data_acked_now = 0;
        let prior_una = self.snd_una;
        if ack > self.snd_una {
            let acked = (ack - self.snd_una) as usize;
            // Grow cwnd only while it limits the sender (RFC 7661 §4.1, Linux's
            // tcp_is_cwnd_limited); an application- or rwnd-limited flow keeps it.
            let cwnd_limited = 2 * self.flight() >= self.cc.cwnd();
            let in_flight = self.flight();
            // The FIN occupies one sequence number beyond the buffered data.
            let data_acked = acked.min(self.send.len());
            self.send.consume(data_acked);
            self.bytes_acked += data_acked as u64;
            data_acked_now = data_acked;
            self.snd_una = ack;
            if self.sack_ok {
                self.records_acked(ack);
            }
            if self.snd_nxt < self.snd_una {
                self.snd_nxt = self.snd_una;
            }
            self.retries = 0;
            self.persist_backoff = 0;
            // RTT sample: timestamps (RFC 7323 §4) or Karn-safe timing.
            let mut rtt_sample = None;
            if let Some((_, ecr)) = seg.timestamp.filter(|_| self.ts_ok) {
                let now_ts = self.ts_now(now);
                let ms = now_ts.wrapping_sub(ecr);
                if ecr != 0 && ms < 60_000 {
                    rtt_sample = Some(Duration::from_millis(ms as u64));
                }
            } else if let Some((seq, sent)) = self.rtt_probe {
                if ack >= seq {
                    rtt_sample = Some(now - sent);
                    self.rtt_probe = None;
                }
            }
            if let Some(r) = rtt_sample {
                self.rtt.sample(r);
            }
            self.eifel_check(tsecr);
            self.frto_on_ack(ack);
            // Congestion control.
            if self.rec.in_recovery && self.rec.sack_recovery {
                // SACK recovery: PRR sets the window (loss_on_ack); it ends
                // when the recovery point is acknowledged (RFC 6675 §5).
                if ack >= self.rec.recover {
                    let flight = self.flight();
                    self.rec
                        .exit_sack(self.cc.as_mut(), flight, cfg.gentle_recovery_exit);
                    self.rack.on_recovery_end();
                    self.rec.dupacks = 0;
                } else if !cfg.rack && self.scoreboard.is_empty() {
                    self.rec.rexmit_once = true;
                }
            } else if self.rec.in_recovery {
                let flight = self.flight();
                if self.rec.on_ack(self.cc.as_mut(), ack, acked, flight) {
                    // Partial ACK. With SACK information the holes are found
                    // from the scoreboard (next_hole); without, NewReno resends
                    // the segment at snd_una (RFC 6582 §3.2 step 5).
                    if !self.rec.sack_recovery || self.scoreboard.is_empty() {
                        self.rec.rexmit_once = true;
                    }
                } else {
                    self.rec.dupacks = 0;
                }
            } else {
                // Grow by what this ACK newly delivered in order (RFC 6937's
                // DeliveredData: SACKed bytes count when SACKed, so those the
                // ACK now covers are not counted again; without SACK, one
                // segment per duplicate ACK was reported delivered, as Linux's
                // tcp_remove_reno_sacks). Data that arrived out of order, or
                // after a hole, does not grow the window (RFC 5681 §3.1: ACKs
                // of new data do; Linux tcp_may_raise_cwnd): after two dupacks
                // and Limited Transmit, the ACK of the reordered pair raises
                // cwnd by one segment, not three.
                let grow = if self.sack_ok {
                    (acked as isize + sack.sacked_delta).max(0) as usize
                } else {
                    acked
                        .saturating_sub(self.rec.dupacks as usize * self.mss)
                        .max(acked.min(self.mss))
                };
                let ev = AckEvent {
                    now,
                    acked: grow,
                    rtt: rtt_sample,
                    min_rtt: self.rtt.min_rtt(),
                    in_flight,
                    app_limited: !cwnd_limited,
                    snd_una: self.snd_una,
                    snd_max: self.snd_max,
                };
                self.cc.on_ack(&ev);
                self.rec.dupacks = 0;
                // Linux tcp_sndbuf_expand: room for twice the window, but not
                // under memory pressure (tcp_should_expand_sndbuf).
                if self.snd_autotune && !self.mem_pressure {
                    let want = (2 * self.cc.cwnd()).min(self.wmem_max);
                    if want > self.send_cap {
                        self.send_cap = want;
                    }
                }
            }
            // RFC 6298 §5.2/5.3: restart or stop the timer.
            self.rto_at = if self.snd_una < self.snd_max {
                Some(now + self.rtt.rto())
            } else {
                None
            };
        } else if ack == self.snd_una
            && self.snd_una < self.snd_max
            && (sack.newly_sacked > 0
                || (seg.payload.is_empty()
                    && !seg.flags.contains(TcpFlags::FIN)
                    && seg_wnd == self.snd_wnd))
        {
            // Duplicate ACK (RFC 5681 §2; with SACK, RFC 6675 §2 also counts an
            // ACK that SACKs new data, whatever its window or payload).
            self.frto_on_dupack();
            self.rec.dupacks += 1;
            if self.rec.in_recovery {
                self.rec.on_dupack(self.cc.as_mut());
            } else if self.rec.dupacks == 3
                && self.snd_una > self.rec.recover - 1
                && !(self.sack_ok && cfg.rack)
            {
                // RFC 6582 §3.2 step 2 (the "recover" check avoids a second
                // reduction for losses from the same window).
                self.enter_dupack_recovery(now, self.sack_ok);
            }
        }
        if self.sack_ok {
            let una_advanced = self.snd_una != prior_una;
            // RFC 6937 DeliveredData: Δsnd.una + ΔSACKd.
            let delivered = (data_acked_now as isize + sack.sacked_delta).max(0) as usize;
            self.loss_on_ack(now, cfg, tsecr, delivered, una_advanced, sack);
        }
        self.info_on_ack(now, data_acked_now + sack.newly_sacked);
        self.update_pacing_rate(cfg);
        // Window update (RFC 9293 §3.10.7.4, SND.WL1/WL2 rule).
        if self.snd_wl1 < seg.seq_number || (self.snd_wl1 == seg.seq_number && self.snd_wl2 <= ack)
        {
            self.snd_wnd = seg_wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(seg_wnd);
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
            if seg_wnd > 0 {
                self.persist_at = None;
            }
        }
        // State changes driven by our FIN being acknowledged.
        if self.fin_acked() {
            match self.state {
                TcpState::FinWait1 => {
                    self.set_state(TcpState::FinWait2);
                    if self.orphan {
                        self.finwait2_at = Some(now + cfg.fin_timeout);
                    }
                }
                TcpState::Closing => self.enter_time_wait(now, cfg),
                TcpState::LastAck => return Some(Verdict::Closed(0)),
                _ => {}
            }
        }
        None
    }

    pub(super) fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr) -> Verdict {
        let f = seg.flags;
        let ack_ok = f.contains(TcpFlags::ACK)
            && seg.ack_number > self.iss
            && seg.ack_number <= self.snd_max;
        if f.contains(TcpFlags::ACK) && !ack_ok {
            if f.contains(TcpFlags::RST) {
                return Verdict::Ok;
            }
            return Verdict::SendReset(seg.ack_number);
        }
        if f.contains(TcpFlags::RST) {
            // RFC 9293 §3.10.7.3: with an acceptable ACK the connection is refused.
            return if ack_ok {
                Verdict::Closed(code::ECONNREFUSED)
            } else {
                Verdict::Ok
            };
        }
        if !f.contains(TcpFlags::SYN) {
            return Verdict::Ok;
        }
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        self.apply_syn_options(&SynOptions::of(seg));
        self.last_rx = now;
        if ack_ok {
            self.soft_error = None;
            self.snd_una = seg.ack_number;
            self.snd_wnd = seg.window_len as usize; // SYN windows are unscaled
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = seg.ack_number;
            self.set_state(TcpState::Established);
            if let Some((_, ecr)) = seg.timestamp.filter(|_| self.ts_ok) {
                let ms = self.ts_now(now).wrapping_sub(ecr);
                if ms < 60_000 {
                    self.rtt.sample(Duration::from_millis(ms as u64));
                }
            } else if let Some((_, sent)) = self.rtt_probe.take() {
                if self.retries == 0 {
                    self.rtt.sample(now - sent);
                }
            }
            self.rtt_probe = None;
            self.retries = 0;
            self.rto_at = None;
            self.rcv_adv = self.rcv_nxt + self.window_bytes();
            self.ack_now = true;
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8): SYN-RECEIVED, resend our
            // SYN with an ACK.
            self.set_state(TcpState::SynReceived);
            self.snd_nxt = self.iss;
            self.rcv_adv = self.rcv_nxt + self.window_bytes();
        }
        Verdict::Ok
    }
}
