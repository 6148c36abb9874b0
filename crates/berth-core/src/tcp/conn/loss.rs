//! Loss detection and recovery glue for SACK connections: SACK blocks into the
//! scoreboard and the sent-segment records, RACK (RFC 8985 §6), tail loss probes
//! (RFC 8985 §7), PRR (RFC 6937), D-SACK handling and undo (RFC 2883, RFC 3708),
//! and Eifel detection of spurious timeouts (RFC 3522). Connections without
//! SACK keep NewReno (RFC 6582) in `input.rs`.

use super::*;

/// Worst-case delayed ACK added to a probe timeout when one segment is in flight
/// (RFC 8985 §7.2 WCDelAckT; Linux adds TCP_RTO_MIN there too).
const WC_DEL_ACK: Duration = Duration::from_millis(200);

/// What one ACK's SACK blocks told us.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SackInput {
    pub newly_sacked: usize,
    /// Change in SACKed bytes (see `SackUpdate::sacked_delta`).
    pub sacked_delta: isize,
    pub dsack: Option<(SeqNumber, SeqNumber)>,
}

impl Tcb {
    fn rack_on(&self, cfg: &TcpConfig) -> bool {
        self.sack_ok && cfg.rack
    }

    /// Bytes in the network, as RFC 6675 (scoreboard) or RACK (records) count them.
    pub(super) fn pipe_now(&self, cfg: &TcpConfig) -> usize {
        if self.rack_on(cfg) {
            self.sent.pipe(self.flight())
        } else {
            self.scoreboard
                .pipe(self.snd_una, self.snd_max, self.rec.high_rxt)
        }
    }

    /// Merge the ACK's SACK blocks (RFC 6675 §4) into the scoreboard and the
    /// records; impossible blocks are dropped and counted.
    pub(super) fn sack_input(&mut self, ack: SeqNumber, seg: &TcpRepr) -> SackInput {
        let una = if ack > self.snd_una && ack <= self.snd_max {
            ack
        } else {
            self.snd_una
        };
        let up = self.scoreboard.update(una, self.snd_max, &seg.sack_ranges);
        self.stat_sack_invalid += up.invalid as u64;
        let mut delivered = std::mem::take(&mut self.delivered);
        for (i, &(l, r)) in seg.sack_ranges.iter().flatten().enumerate() {
            if i == 0 && up.dsack.is_some() {
                continue;
            }
            if l < r && l >= una && r <= self.snd_max {
                self.sent.on_sack(l, r, &mut delivered);
            }
        }
        self.delivered = delivered;
        SackInput {
            newly_sacked: up.newly_sacked,
            sacked_delta: up.sacked_delta,
            dsack: up.dsack,
        }
    }

    /// A cumulative ACK moved snd_una: drop the records it covers.
    pub(super) fn records_acked(&mut self, ack: SeqNumber) {
        let mut delivered = std::mem::take(&mut self.delivered);
        self.sent.on_ack(ack, &mut delivered);
        self.delivered = delivered;
    }

    /// RFC 3522 (Eifel): the first ACK of new data after a timeout echoes a
    /// timestamp older than the retransmission's, so the original arrived and
    /// the timeout was spurious: restore the window and stop going back.
    pub(super) fn eifel_check(&mut self, tsecr: Option<u32>) {
        let Some(rto_ts) = self.rto_ts.take() else {
            return;
        };
        if let Some(ecr) = tsecr {
            if ecr != 0 && (ecr.wrapping_sub(rto_ts) as i32) < 0 {
                self.undo_spurious_rto();
                self.sent.clear_marks();
                if self.snd_nxt < self.snd_max {
                    self.snd_nxt = self.snd_max;
                }
            }
        }
    }

    /// A timeout proved spurious (Eifel or F-RTO): restore the window it cut
    /// (RFC 4015), forget its recovery point and its RTO backoff.
    fn undo_spurious_rto(&mut self) {
        self.cc.undo();
        self.rec.undo_retrans = None;
        self.rec.recover = self.snd_una;
        self.rtt.backoff = 0;
        self.spurious_rtos += 1;
    }

    /// A D-SACK arrived (RFC 2883): count it, widen RACK's reordering window,
    /// and undo the last reduction once every retransmission since it proved
    /// needless (RFC 3708 §3; Linux tcp_try_undo_dsack).
    fn on_dsack(&mut self, cfg: &TcpConfig, (l, r): (SeqNumber, SeqNumber)) {
        self.dsack_dups += 1;
        if self.rack_on(cfg) {
            self.rack.on_dsack(self.snd_una, self.snd_max);
        }
        let retransmitted_range = r > self.rec.undo_marker && l < self.snd_max;
        if retransmitted_range && self.rec.on_dsack() {
            self.cc.undo();
            // The reduction is gone, so is its window: a real loss among the
            // data sent before it must cut again (as after an Eifel undo), not
            // "repair without cutting" — with ssthresh restored to infinity
            // that recovery would end with cwnd = ssthresh = usize::MAX.
            self.rec.recover = self.snd_una;
            self.rack.reordering_seen = true;
            if self.rec.in_recovery {
                self.rec.in_recovery = false;
                self.rec.sack_recovery = false;
                self.rack.on_recovery_end();
            }
            self.spurious_recoveries += 1;
        }
    }

    /// After an ACK on a SACK connection: RACK loss detection, entering
    /// recovery, PRR's window, D-SACK, and the tail loss probe bookkeeping.
    /// `delivered`: RFC 6937's DeliveredData for this ACK; `una_advanced`: the
    /// ACK moved SND.UNA (only such an ACK restarts the probe timer).
    pub(super) fn loss_on_ack(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        tsecr: Option<u32>,
        delivered_data: usize,
        una_advanced: bool,
        sack: SackInput,
    ) {
        if let Some(d) = sack.dsack {
            self.on_dsack(cfg, d);
        }
        let mut delivered = std::mem::take(&mut self.delivered);
        let mut newly_lost = false;
        if self.rack_on(cfg) {
            // In sequence order: the SACK blocks were taken before the
            // cumulative ACK, and a segment that ACK covers below a block it
            // brought along arrived in order (RFC 8985 §6.2 step 3 compares with
            // the highest sequence delivered before it; Linux: prior_fack).
            let una = self.snd_una;
            delivered.sort_by_key(|d| d.end - una);
            let min_rtt = self.rtt.min_rtt();
            for d in &delivered {
                self.rack.on_delivered(d, now, min_rtt, tsecr);
            }
            if !delivered.is_empty() || self.sent.sacked_bytes() > 0 {
                newly_lost = self.rack_detect(now) > 0;
            }
        } else if !self.rec.in_recovery
            && self.rec.dupacks < 3
            && self.scoreboard.sacked_bytes() > 2 * self.mss
            && self.snd_una > self.rec.recover - 1
        {
            // RFC 6675 §5 IsLost(SND.UNA): more than (DupThresh − 1)·SMSS SACKed
            // above it, even without three duplicate ACKs.
            self.enter_dupack_recovery(now, true);
        }
        self.delivered = delivered;
        self.delivered.clear();
        if self.snd_una == self.snd_max {
            // Idle: keep no scratch or record memory.
            self.delivered = Vec::new();
            self.sent.release_if_empty();
        }
        if self.rec.in_recovery && self.rec.sack_recovery {
            let pipe = self.pipe_now(cfg);
            // RFC 6937bis SafeACK: SND.UNA advanced and no new loss found.
            let safe = una_advanced && !newly_lost;
            self.rec
                .prr_on_ack(self.cc.as_mut(), delivered_data, pipe, safe);
        }
        self.tlp_on_ack(now, sack.dsack);
        // RFC 8985 §7.2: the PTO restarts after new data goes out or on an ACK
        // that cumulatively acknowledges new data — not on a duplicate ACK,
        // whose later PTO would pass the RTO and cancel the probe (a SACK of
        // the tail alone must still draw the probe 2·SRTT after the send).
        // Entering recovery stops it.
        if una_advanced || self.rec.in_recovery {
            self.arm_pto(now, cfg);
        }
    }

    /// Fast retransmit and recovery found by duplicate ACKs (RFC 6582) or
    /// RFC 6675's IsLost: one reduction; the probe episode, if any, ends.
    pub(super) fn enter_dupack_recovery(&mut self, now: Instant, sack: bool) {
        self.tlp_high = None;
        let flight = self.flight();
        self.rec.enter(
            now,
            self.cc.as_mut(),
            flight,
            self.snd_una,
            self.snd_max,
            sack,
        );
    }

    /// RFC 8985 §6.2 step 5 and the reordering timer; enters recovery when a
    /// segment is found lost — newly, or earlier by a recovery that ended (a
    /// D-SACK undo, or the recovery point acknowledged) before it was
    /// retransmitted: only recovery retransmits what RACK marked, so such a
    /// segment would otherwise wait for the RTO. Returns how many were newly
    /// found lost.
    pub(super) fn rack_detect(&mut self, now: Instant) -> usize {
        let sacked_segs = self.sent.sacked_bytes() / self.mss.max(1);
        let reo = self.rack.reo_wnd(
            self.rec.in_recovery,
            sacked_segs,
            self.rtt.min_rtt(),
            self.rtt.srtt(),
        );
        let (lost, timer) = self.rack.detect_loss(&mut self.sent, now, reo);
        self.rack_at = timer;
        // Not while a timeout's go-back-N resend is under way (snd_nxt below
        // snd_max): it resends everything from snd_una in order already, and a
        // recovery alongside it would send the lost segments a second time.
        let lost_pending = lost > 0 || self.sent.first_lost().is_some();
        if lost_pending
            && !self.rec.in_recovery
            && self.rto_ts.is_none()
            && self.frto.is_none()
            && self.snd_nxt == self.snd_max
        {
            // One reduction per window of data (RFC 6582's recover point).
            let flight = self.flight();
            if self.snd_una > self.rec.recover - 1 {
                self.rec
                    .enter_sack(now, self.cc.as_mut(), flight, self.snd_una, self.snd_max);
            } else {
                // Same window as the last reduction: repair without cutting again.
                self.rec.in_recovery = true;
                self.rec.sack_recovery = true;
                self.rec.prr_delivered = 0;
                self.rec.prr_out = 0;
                self.rec.recover_fs = flight.max(1);
                self.rec.recover = self.snd_max;
            }
            self.rec.undo_marker = self.snd_una;
            // Recovery takes over the tail: the probe episode ends without a
            // reduction of its own (Linux tcp_init_cwnd_reduction clears
            // tlp_high_seq), else the ACK of the probe's data cut cwnd again.
            self.tlp_at = None;
            self.tlp_high = None;
        }
        lost
    }

    /// The RACK reordering timer fired (RFC 8985 §6.3).
    pub(super) fn rack_timeout(&mut self, now: Instant, cfg: &TcpConfig) {
        if self.rack_on(cfg) && self.snd_una < self.snd_max {
            self.rack_detect(now);
            if self.rec.in_recovery && self.rec.sack_recovery {
                let pipe = self.pipe_now(cfg);
                self.rec.prr_on_ack(self.cc.as_mut(), 0, pipe, false);
            }
        }
    }

    /// Arm the probe timeout (RFC 8985 §7.2): 2·SRTT (plus the worst-case
    /// delayed ACK when one segment is out), unless the RTO comes first.
    pub(super) fn arm_pto(&mut self, now: Instant, cfg: &TcpConfig) {
        let can = self.sack_ok
            && cfg.tlp
            && self.state.is_synchronized()
            && self.snd_una < self.snd_max
            && !self.rec.in_recovery
            && self.tlp_high.is_none()
            && self.rto_ts.is_none()
            && self.retries == 0;
        let Some(srtt) = self.rtt.srtt().filter(|_| can) else {
            self.tlp_at = None;
            return;
        };
        let mut pto = srtt * 2;
        if self.flight() <= self.mss {
            pto += WC_DEL_ACK;
        } else {
            pto += Duration::from_millis(2);
        }
        let at = now + pto;
        match self.rto_at {
            Some(rto) if at >= rto => self.tlp_at = None,
            _ => self.tlp_at = Some(at),
        }
    }

    /// Build the tail loss probe (RFC 8985 §7.3): one new segment if the
    /// windows allow, else the last segment sent again.
    pub(super) fn tlp_probe(&mut self, now: Instant) -> Option<OutSegment> {
        let in_flight = self.flight();
        let sent_data = in_flight.min(self.send.len());
        let unsent = self.send.len() - sent_data;
        let cur_mss = self.cur_mss();
        let fin_sent = self.fin_seq_sent.is_some();
        let mut s = if unsent > 0
            && self.snd_nxt == self.snd_max
            && in_flight + unsent.min(cur_mss) <= self.snd_wnd
        {
            let len = unsent.min(cur_mss);
            let flags = TcpFlags::ACK | self.push_flag(self.snd_nxt + len);
            let mut s = self.base(now, self.snd_nxt, flags);
            s.data_off = sent_data;
            s.data_len = len;
            self.bytes_sent += len as u64;
            self.snd_nxt += len;
            self.snd_max = self.snd_nxt;
            self.tlp_high = Some((self.snd_max, None));
            s
        } else {
            // The last segment the peer has not SACKed (a SACKed one would
            // only draw a D-SACK, from which RACK learns nothing: the probe
            // would be wasted and the RTO pushed back): its record, or the
            // last MSS of the data.
            let data_end = self.snd_una + sent_data;
            let (start, end) = match self.sent.last_unsacked() {
                Some(r) if r.end <= data_end && r.start >= self.snd_una => (r.start, r.end),
                _ => (data_end - sent_data.min(cur_mss), data_end),
            };
            let start = if (end - start).max(0) as usize > cur_mss {
                end - cur_mss
            } else {
                start
            };
            let len = (end - start).max(0) as usize;
            // The FIN follows the data only on the last segment.
            let fin = fin_sent && end == data_end;
            let mut flags = TcpFlags::ACK;
            if fin {
                flags.insert(TcpFlags::FIN);
            }
            if len == 0 && !fin {
                return None;
            }
            if len > 0 {
                flags.insert(self.push_flag(data_end));
            }
            let mut s = self.base(now, start, flags);
            s.data_off = (start - self.snd_una).max(0) as usize;
            s.data_len = len;
            self.total_retrans += 1;
            self.tlp_high = Some((self.snd_max, Some(end)));
            s
        };
        s.flags.insert(TcpFlags::ACK);
        self.tlp_probes += 1;
        // §7.3: after the probe the RTO guards the tail.
        self.rto_at = Some(now + self.rtt.rto());
        Some(s)
    }

    /// RFC 8985 §7.4: an ACK covering the probe. If the probe was a
    /// retransmission and no D-SACK says it was needless, the tail really was
    /// lost: reduce the window once, as a recovery would have.
    fn tlp_on_ack(&mut self, now: Instant, dsack: Option<(SeqNumber, SeqNumber)>) {
        let Some((high, resent)) = self.tlp_high else {
            return;
        };
        if self.snd_una < high {
            return;
        }
        self.tlp_high = None;
        let Some(probe_end) = resent else {
            return;
        };
        let probe_dsacked = dsack.is_some_and(|(_, r)| r >= probe_end);
        if !probe_dsacked && !self.rec.in_recovery {
            let flight = self.flight();
            self.cc.on_congestion_event(now, flight.max(self.cc.cwnd()));
            self.rec.episodes += 1;
            self.rec.undo_retrans = None;
        }
    }

    /// Per data segment sent: the record, PRR's count, undo's count.
    pub(super) fn on_data_sent(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: usize,
        retransmission: bool,
        ts_val: Option<u32>,
    ) {
        if !self.sack_ok || len == 0 {
            if retransmission {
                self.rec.on_send(len, true);
            }
            return;
        }
        self.sent.on_send(seq, seq + len, now, ts_val);
        self.rec.on_send(len, retransmission);
    }

    /// F-RTO (RFC 5682 §2) on an ACK that advanced snd_una after a timeout.
    pub(super) fn frto_on_ack(&mut self, ack: SeqNumber) {
        match self.frto {
            Some(Frto::First { una, recover }) => {
                let unsent = self.send.len() > self.flight().min(self.send.len());
                // Step 2a: the ACK covers everything sent before the timeout, or
                // not all the retransmission carried, or nothing new can be
                // sent: the timeout was genuine.
                let retransmitted = self.mss.min((recover - una).max(0) as usize);
                if ack >= recover || ack < una + retransmitted || !unsent {
                    self.frto = None;
                    return;
                }
                // Step 2b: send new data instead of retransmitting more.
                self.snd_nxt = self.snd_max;
                self.frto = Some(Frto::Second { recover });
            }
            Some(Frto::Second { .. }) => {
                // Step 3b: a second ACK of data not retransmitted: the timeout was
                // spurious (RFC 4015 response: restore the window).
                self.frto = None;
                self.undo_spurious_rto();
            }
            None => {}
        }
    }

    /// F-RTO on a duplicate ACK: the timeout was genuine (steps 2a, 3a); go back
    /// to retransmitting from snd_una with at most three segments of window.
    pub(super) fn frto_on_dupack(&mut self) {
        if let Some(state) = self.frto.take() {
            if matches!(state, Frto::Second { .. }) {
                self.snd_nxt = self.snd_una;
                let w = self.cc.cwnd().min(3 * self.mss);
                self.cc.set_cwnd(w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::sack::SCOREBOARD_MAX;
    use crate::tcp::sent::MAX_RECORDS;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const ISS: u32 = 0xfff0_0000; // close to the wrap
    const IRS: u32 = 5000;

    /// An established server-side TCB (SACK, no timestamps, window scale 7)
    /// with 4 MiB in flight: an initial window big enough to send it at once.
    fn in_flight(cfg: &TcpConfig, now: Instant) -> (Tcb, usize) {
        let syn = SynOptions {
            mss: Some(1460),
            window_scale: Some(7),
            timestamp: None,
            sack_permitted: true,
        };
        let mut t = Tcb::accepted(
            cfg,
            now,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80).into(),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40_000).into(),
            SeqNumber(ISS),
            SeqNumber(IRS),
            syn,
            65_535,
            1500,
            1 << 20,
            4 << 20,
            0,
            false,
        );
        t.nodelay = true;
        assert_eq!(t.write(&vec![7u8; 4 << 20]), 4 << 20);
        // Open the window (65 535 · 2^7).
        let a = t.snd_una;
        t.on_segment(now, cfg, &ack(a, &[]), &mut || true);
        let n = drain(&mut t, now, cfg);
        assert_eq!(t.flight(), 4 << 20);
        (t, n)
    }

    fn ack(a: SeqNumber, blocks: &[(SeqNumber, SeqNumber)]) -> TcpRepr<'static> {
        let mut r = TcpRepr::new(40_000, 80, SeqNumber(IRS + 1), TcpFlags::ACK);
        r.ack_number = a;
        r.window_len = 65_535;
        for (slot, &b) in r.sack_ranges.iter_mut().zip(blocks) {
            *slot = Some(b);
        }
        r
    }

    /// Everything the TCB wants to send now; panics if it never stops.
    fn drain(t: &mut Tcb, now: Instant, cfg: &TcpConfig) -> usize {
        for n in 0..100_000 {
            if t.next_segment(now, cfg).is_none() {
                return n;
            }
        }
        panic!("output never ends");
    }

    fn check(t: &Tcb, cfg: &TcpConfig) {
        assert!(t.sent.len() <= MAX_RECORDS, "{} records", t.sent.len());
        assert!(t.scoreboard.ranges().len() <= SCOREBOARD_MAX);
        assert!(t.sent.sacked_bytes() <= t.flight());
        assert!(t.pipe_now(cfg) <= t.flight());
        for w in t.scoreboard.ranges().windows(2) {
            assert!(w[0].1 < w[1].0, "scoreboard sorted and disjoint");
        }
        if let Some(&(l, r)) = t.scoreboard.ranges().first() {
            assert!(t.snd_una <= l && l < r);
        }
        if let Some(&(_, r)) = t.scoreboard.ranges().last() {
            assert!(r <= t.snd_max);
        }
    }

    /// A peer SACKing single bytes all over the flight (each block splits the
    /// sent records twice), and between those blocks data never sent, blocks
    /// across and below SND.UNA, and D-SACKs for everything: the records stay
    /// at most MAX_RECORDS, the scoreboard at most SCOREBOARD_MAX ranges,
    /// sorted, inside [SND.UNA, SND.MAX]; the impossible blocks are counted;
    /// output always ends; and a truthful cumulative ACK of everything leaves
    /// nothing behind.
    #[test]
    fn hostile_sack_blocks_keep_the_records_bounded_and_sane() {
        let cfg = TcpConfig {
            initial_window: Some(4000),
            ..TcpConfig::default()
        };
        let mut now = Instant::from_millis(1000);
        let (mut t, sent) = in_flight(&cfg, now);
        assert!(sent > 2800, "{sent} segments");
        let una = t.snd_una;
        let max = t.snd_max;
        let mut invalid = 0;
        let mut k: usize = 0;
        for round in 0..4000u32 {
            now += Duration::from_micros(100);
            let b: Vec<_> = (0..3)
                .map(|_| {
                    k += 1;
                    let off = (k * 2 * 1021) % (4 << 20) + 1;
                    (una + off, una + (off + 1))
                })
                .collect();
            let seg = match round % 5 {
                // Single bytes: split, split, split.
                0..=2 => ack(una, &b),
                // Data never sent, reversed, and across SND.UNA.
                3 => {
                    invalid += 3;
                    ack(
                        una,
                        &[
                            (max + 1, max + 1000),
                            (una + 3000, una + 1000),
                            (una - 10, una + 10),
                        ],
                    )
                }
                // A D-SACK below SND.UNA, then old news.
                _ => ack(una, &[(una - 1448, una), (una - 9000, una - 8000)]),
            };
            t.on_segment(now, &cfg, &seg, &mut || true);
            drain(&mut t, now, &cfg);
            check(&t, &cfg);
        }
        assert_eq!(t.stat_sack_invalid, invalid);
        assert_eq!(t.dsack_dups, 800);
        // SACK blocks no longer split records (only whole segments are marked),
        // so the records stay one per segment sent, under the cap.
        assert!(t.sent.len() <= MAX_RECORDS, "bounded: {}", t.sent.len());
        // The truth: everything arrived.
        let end = t.snd_max;
        t.on_segment(now, &cfg, &ack(end, &[]), &mut || true);
        drain(&mut t, now, &cfg);
        check(&t, &cfg);
        assert_eq!(t.flight(), 0);
        assert_eq!(t.sent.len(), 0);
        assert_eq!(t.sent.sacked_bytes(), 0);
        assert!(t.scoreboard.is_empty());
        assert_eq!(t.send_queue(), 0);
    }
}
