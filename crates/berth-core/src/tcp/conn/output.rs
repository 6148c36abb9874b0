//! Output: which segment goes next (SYN, retransmission, new data, probes,
//! pure ACKs) and the header fields it carries.

use super::*;
use crate::tcp::sack::seq_max;

impl Tcb {
    /// Payload that fits the next segment: the MSS less the SACK blocks it will
    /// carry (as Linux's tcp_current_mss), so a data segment never outgrows the MTU.
    pub(super) fn cur_mss(&self) -> usize {
        if !self.sack_ok || (self.ooo.is_empty() && self.dsack_out.is_none()) {
            return self.mss;
        }
        let room = if self.ts_ok { 3 } else { 4 };
        let blocks =
            (self.ooo.sack_ranges(None, room).len() + self.dsack_out.is_some() as usize).min(room);
        self.mss.saturating_sub(4 + 8 * blocks).max(16)
    }

    /// PSH for a data segment ending at `end`: set when it carries the last byte
    /// written so far (BSD's rule, for new data and retransmissions alike; Linux
    /// too marks only the segment that ends a write, so a retransmission of the
    /// front of the queue goes without it).
    pub(super) fn push_flag(&self, end: SeqNumber) -> TcpFlags {
        if end == self.snd_una + self.send.len() {
            TcpFlags::PSH
        } else {
            TcpFlags::empty()
        }
    }

    pub(super) fn base(&mut self, now: Instant, seq: SeqNumber, flags: TcpFlags) -> OutSegment {
        let ts = self.ts_ok.then(|| (self.ts_now(now), self.ts_recent));
        let window = self.window_field();
        let mut sack = [None; 4];
        // RFC 2883 §4: a D-SACK block goes first, once.
        let dsack = self.dsack_out.take().filter(|_| self.sack_ok);
        if let Some(d) = dsack {
            sack[0] = Some(d);
        }
        let first = dsack.is_some() as usize;
        if self.sack_ok && !self.ooo.is_empty() {
            // RFC 2018 §4: the block holding the latest segment first.
            for (slot, (s, e)) in sack[first..]
                .iter_mut()
                .zip(self.ooo.sack_ranges(self.ooo_latest, 4))
            {
                let at = |off: u64| self.rcv_nxt + (off - self.rcv_off) as usize;
                *slot = Some((at(s), at(e)));
            }
        }
        OutSegment {
            seq,
            ack: self.rcv_nxt,
            flags,
            window,
            data_off: 0,
            data_len: 0,
            mss: None,
            window_scale: None,
            timestamp: ts,
            sack_permitted: false,
            sack,
        }
    }

    /// The next segment to send, if any. Arms the retransmission timer as data
    /// goes out.
    pub fn next_segment(&mut self, now: Instant, cfg: &TcpConfig) -> Option<OutSegment> {
        let prev_max = self.snd_max;
        let seg = self.next_segment_inner(now, cfg)?;
        self.info_on_send(now, seg.data_len);
        if seg.data_len > 0 && self.state.is_synchronized() {
            let retrans = seg.seq < prev_max;
            self.pace_sent(now, seg.data_len);
            self.on_data_sent(
                now,
                seg.seq,
                seg.data_len,
                retrans,
                seg.timestamp.map(|t| t.0),
            );
            if !retrans {
                self.arm_pto(now, cfg);
            }
        }
        self.segs_out += 1;
        if seg.flags.contains(TcpFlags::ACK) {
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_bytes = 0;
        }
        Some(seg)
    }

    pub(super) fn next_segment_inner(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
    ) -> Option<OutSegment> {
        match self.state {
            TcpState::Closed | TcpState::Listen => return None,
            TcpState::SynSent | TcpState::SynReceived => {
                if self.snd_nxt == self.iss {
                    let flags = if self.state == TcpState::SynSent {
                        TcpFlags::SYN
                    } else {
                        TcpFlags::SYN | TcpFlags::ACK
                    };
                    let mut s = self.base(now, self.iss, flags);
                    if self.state == TcpState::SynSent {
                        s.ack = SeqNumber(0);
                        // The SYN's own window is never scaled.
                        s.window = self.recv_cap.min(65_535) as u16;
                    }
                    s.mss = Some(self.our_mss);
                    s.sack_permitted = self.sack_ok;
                    if self.state == TcpState::SynSent {
                        if cfg.window_scaling {
                            s.window_scale = Some(self.rcv_shift);
                        }
                        if !cfg.timestamps {
                            s.timestamp = None;
                        } else {
                            s.timestamp = Some((self.ts_now(now), 0));
                        }
                    } else {
                        // RFC 7323 §2.2: in a SYN-ACK only in answer to a SYN with it.
                        if self.ws_ok {
                            s.window_scale = Some(self.rcv_shift);
                        }
                        s.window = self.recv_cap.min(65_535) as u16;
                    }
                    if self.snd_max > self.iss {
                        // Counted per segment, as Linux's tcpi_total_retrans.
                        self.total_retrans += 1;
                    }
                    self.snd_nxt = self.iss + 1;
                    if self.snd_max < self.snd_nxt {
                        self.snd_max = self.snd_nxt;
                    }
                    if self.rtt_probe.is_none() {
                        self.rtt_probe = Some((self.iss + 1, now));
                    }
                    self.rto_at.get_or_insert(now + self.rtt.rto());
                    return Some(s);
                }
                if self.ack_now && self.state == TcpState::SynReceived {
                    return Some(self.base(now, self.snd_nxt, TcpFlags::ACK));
                }
                return None;
            }
            _ => {}
        }
        // Tail loss probe (RFC 8985 §7.3).
        if self.tlp_now {
            self.tlp_now = false;
            if let Some(s) = self.tlp_probe(now) {
                return Some(s);
            }
        }
        // Fast retransmit / NewReno partial ACK: one segment at snd_una.
        if self.rec.rexmit_once {
            self.rec.rexmit_once = false;
            // Resend only what was sent: with less than an MSS in flight, the
            // buffer's unsent bytes beyond snd_max are new data, which Nagle, the
            // peer's window and cwnd decide on (below), and which would leave the
            // retransmission beyond snd_max. The FIN likewise only if it went out.
            let sent = ((self.snd_max - self.snd_una).max(0) as usize).min(self.send.len());
            let len = sent.min(self.cur_mss());
            let fin = self.fin_queued
                && !self.fin_acked()
                && self.fin_seq_sent.is_some()
                && self.snd_una + len == self.fin_seq();
            if len > 0 || fin {
                let mut flags = TcpFlags::ACK;
                if fin {
                    flags.insert(TcpFlags::FIN);
                    self.fin_seq_sent = Some(self.snd_una + len);
                }
                let mut s = self.base(now, self.snd_una, flags);
                s.data_off = 0;
                s.data_len = len;
                if len > 0 {
                    s.flags.insert(self.push_flag(self.snd_una + len));
                }
                self.total_retrans += 1;
                self.rec.high_rxt = seq_max(self.rec.high_rxt, self.snd_una + len);
                self.rto_at = Some(now + self.rtt.rto());
                return Some(s);
            }
        }
        // SACK-based recovery: while the data in flight ("pipe") leaves room in
        // cwnd (set by PRR), retransmit what RACK declared lost, or with RACK off
        // the next hole below the highest SACKed byte (RFC 6675 §5), else send
        // new data (below).
        // Pacing: data waits for its send time (retransmissions above and the
        // probes below do not).
        let pace_ok = self.pace_ok(now, cfg);
        let sack_room = if self.rec.in_recovery && self.rec.sack_recovery {
            let room = if pace_ok {
                self.cc.cwnd().saturating_sub(self.pipe_now(cfg))
            } else {
                0
            };
            let lost = self
                .sent
                .first_lost()
                .filter(|_| cfg.rack)
                .map(|r| (r.start, r.len()));
            if room >= self.mss.min(self.send.len()).max(1) {
                if let Some(s) = lost.and_then(|(seq, len)| self.repair(now, seq, len)) {
                    return Some(s);
                }
                let hole = if cfg.rack {
                    None
                } else {
                    self.scoreboard.next_hole(self.snd_una, self.rec.high_rxt)
                };
                if let Some(s) = hole.and_then(|(seq, len)| self.repair(now, seq, len)) {
                    return Some(s);
                }
            }
            Some(room)
        } else {
            None
        };
        // New data (or retransmission after a timeout moved snd_nxt back).
        let in_flight = (self.snd_nxt - self.snd_una).max(0) as usize;
        let sent_data = in_flight.min(self.send.len());
        let unsent = self.send.len() - sent_data;
        // Limited Transmit (RFC 3042 §2): each of the first two duplicate ACKs
        // lets one new segment out beyond cwnd (still within the peer's window).
        let limited = if !self.rec.in_recovery && (1..=2).contains(&self.rec.dupacks) {
            self.rec.dupacks as usize * self.mss
        } else {
            0
        };
        let wnd = self.snd_wnd.min(self.cc.cwnd() + limited);
        let usable = match sack_room {
            // In SACK recovery cwnd bounds the pipe, not snd_nxt − snd_una.
            Some(room) => room.min(self.snd_wnd.saturating_sub(in_flight)),
            None => wnd.saturating_sub(in_flight),
        };
        let cur_mss = self.cur_mss();
        let mut len = unsent.min(usable).min(cur_mss);
        if !pace_ok && in_flight > 0 {
            len = 0;
        }
        let fin_pending = self.fin_queued && !self.fin_acked() && self.snd_nxt <= self.fin_seq();
        if len > 0 {
            let full = len == cur_mss;
            let all = len == unsent;
            // Nagle (RFC 9293 §3.7.4): hold a small segment while data is unacked.
            let nagle_blocks = !full && !self.nodelay && in_flight > 0 && !fin_pending;
            // Sender SWS avoidance (RFC 9293 §3.8.6.2.1).
            let sws_blocks = !full && !all && len < self.max_snd_wnd / 2 && !self.sws_override;
            if nagle_blocks || sws_blocks {
                len = 0;
            }
        }
        let fin_now = fin_pending && self.snd_nxt + len == self.fin_seq();
        if len > 0 || fin_now {
            let mut flags = TcpFlags::ACK;
            if fin_now {
                flags.insert(TcpFlags::FIN);
                self.fin_seq_sent = Some(self.snd_nxt + len);
            }
            if len > 0 && len == unsent {
                flags.insert(TcpFlags::PSH);
            }
            let mut s = self.base(now, self.snd_nxt, flags);
            s.data_off = sent_data;
            s.data_len = len;
            self.sws_override = false;
            if in_flight == 0 && self.snd_nxt == self.snd_max && len > 0 {
                // Sending after an idle period (Linux CA_EVENT_TX_START).
                self.cc.on_idle_restart(now);
            }
            if self.snd_nxt < self.snd_max {
                self.total_retrans += 1;
            } else {
                self.bytes_sent += len as u64;
                if self.rtt_probe.is_none() && !self.ts_ok && len > 0 {
                    self.rtt_probe = Some((self.snd_nxt + len, now));
                }
            }
            self.snd_nxt += len + fin_now as usize;
            if self.snd_nxt > self.snd_max {
                self.snd_max = self.snd_nxt;
            }
            if self.rto_at.is_none() {
                self.rto_at = Some(now + self.rtt.rto());
            }
            return Some(s);
        }
        // Zero window with data waiting: persist timer (RFC 9293 §3.8.6.1).
        if self.probe_now {
            self.probe_now = false;
            // Window probes and keepalives are both an ACK with seq = snd_una − 1 and
            // no data, as Linux sends them: the peer must answer with an ACK carrying
            // its current window, and no sequence space is used, so a long zero-window
            // stall never counts as retransmission failures.
            return Some(self.base(now, self.snd_una - 1, TcpFlags::ACK));
        }
        // Nothing in flight and data held back, by a zero window or by sender SWS
        // avoidance in a window too small for a full segment: the persist timer
        // probes the zero window, or (as the SWS override timer of RFC 9293
        // §3.8.6.2.1, and as Linux's probe timer does) sends what the window allows.
        // Without it a small open window would stall the connection for good.
        if unsent > 0 && in_flight == 0 && self.persist_at.is_none() {
            let backoff = 1u32 << self.persist_backoff.min(10);
            let d = (self.rtt.rto() * backoff).clamp(cfg.rto_min, cfg.rto_max);
            self.persist_at = Some(now + d);
        }
        if self.ack_now {
            // A pure ACK carries snd_max, not snd_nxt (as BSD's tcp_output): after
            // a timeout rewound snd_nxt, the peer may already hold data beyond it,
            // and a sequence number below its rcv_nxt would make the peer drop the
            // ACK as unacceptable — with both sides rewound, neither would ever
            // accept the other's ACKs.
            return Some(self.base(now, self.snd_max, TcpFlags::ACK));
        }
        None
    }

    /// May data leave now? Linux's internal pacing (tcp_update_pacing_rate):
    /// cwnd/SRTT × 200 % in slow start (cwnd < ssthresh/2), × 120 % after, so a
    /// window goes out over the round trip instead of as one burst. A burst of
    /// about 1 ms of data (at least two segments, at most 64 KiB) may leave at
    /// once, as Linux sizes TSO bursts (tcp_tso_autosize).
    pub(super) fn pace_ok(&mut self, now: Instant, cfg: &TcpConfig) -> bool {
        if !cfg.pacing || self.pacing_rate == 0 {
            return true;
        }
        let Some(next) = self.pace_next else {
            return true;
        };
        let burst = self.pace_burst();
        if next <= now + burst {
            return true;
        }
        self.pace_blocked = true;
        false
    }

    fn pace_burst(&self) -> Duration {
        let two = (2 * self.mss) as f64 / self.pacing_rate.max(1) as f64;
        let cap = (64 * 1024) as f64 / self.pacing_rate.max(1) as f64;
        Duration::from_secs_f64(two.max(0.001_f64.min(cap)))
    }

    /// Update the pacing rate from cwnd and SRTT (on every ACK).
    pub(super) fn update_pacing_rate(&mut self, cfg: &TcpConfig) {
        if !cfg.pacing {
            self.pacing_rate = 0;
            return;
        }
        let Some(srtt) = self.rtt.srtt() else {
            return;
        };
        // The window that limits the flow: cwnd, or the peer's window when
        // that is smaller (pacing a window that cannot be used would burst).
        let window = self
            .cc
            .cwnd()
            .min(self.snd_wnd.max(self.mss))
            .max(self.flight());
        self.pacing_rate = self.cc.pacing_rate(window, srtt);
    }

    /// A data segment of `len` bytes left: the next may leave len/rate later.
    pub(super) fn pace_sent(&mut self, now: Instant, len: usize) {
        if self.pacing_rate == 0 {
            return;
        }
        let d = Duration::from_secs_f64(len as f64 / self.pacing_rate as f64);
        let from = self.pace_next.filter(|&t| t > now).unwrap_or(now);
        self.pace_next = Some(from + d);
    }

    /// A recovery retransmission of up to `len` bytes at `seq` (a lost record or
    /// an RFC 6675 hole), at most one segment; raises HighRxt.
    fn repair(&mut self, now: Instant, seq: SeqNumber, len: usize) -> Option<OutSegment> {
        let off = (seq - self.snd_una).max(0) as usize;
        let len = len
            .min(self.cur_mss())
            .min(self.send.len().saturating_sub(off));
        if len == 0 {
            return None;
        }
        let flags = TcpFlags::ACK | self.push_flag(seq + len);
        let mut s = self.base(now, seq, flags);
        s.data_off = off;
        s.data_len = len;
        self.total_retrans += 1;
        self.rec.high_rxt = seq_max(self.rec.high_rxt, seq + len);
        Some(s)
    }
}
