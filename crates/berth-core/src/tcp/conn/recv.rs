//! The receive side: in-order queue, out-of-order reassembly and the window we
//! advertise (RFC 9293 §3.8.6.2.2 receiver SWS avoidance).

use super::*;
use crate::mem::OFO_RANGE_OVERHEAD;

impl Tcb {
    /// Receive space we can offer, bytes.
    pub(super) fn free_space(&self) -> usize {
        self.recv_cap
            .saturating_sub(self.recv.len() + self.ooo.bytes())
    }

    /// The window to advertise: free space, with receiver silly-window avoidance
    /// (RFC 9293 §3.8.6.2.2: advance the right edge only by at least min(cap/2, MSS))
    /// and never shrinking what was already offered.
    pub(super) fn window_bytes(&self) -> usize {
        let free = self.free_space();
        let offered = (self.rcv_adv - self.rcv_nxt).max(0) as usize;
        let step = (self.recv_cap / 2).min(self.mss.max(536));
        let mut w = if free >= offered + step || free == self.recv_cap {
            free
        } else {
            offered
        };
        if self.mem_pressure {
            // Linux __tcp_select_window: under memory pressure the window
            // stops growing past 4 segments (rcv_ssthresh ≤ 4·advmss); what
            // was offered is kept.
            w = w.min(offered.max(4 * self.mss.max(536)));
        }
        w.min(65_535usize << self.rcv_shift)
    }

    pub(super) fn window_field(&mut self) -> u16 {
        let w = self.window_bytes();
        let field = (w >> self.rcv_shift).min(65_535);
        let edge = self.rcv_nxt + (field << self.rcv_shift);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        field as u16
    }

    /// Read in-order data; returns bytes copied. Opens the window when reading
    /// frees enough space (RFC 1122 §4.2.3.3).
    pub fn read(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.recv.len());
        let (a, b) = self.recv.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        self.recv.drain(..n);
        self.bytes_read += n as u64;
        if n > 0 {
            self.rcv_space_adjust(now);
        }
        if self.recv.is_empty() && self.recv.capacity() > 64 * 1024 {
            // An idle connection keeps little memory (as Linux frees read skbs).
            self.recv = VecDeque::new();
        }
        if n > 0 && self.state.is_synchronized() && !self.fin_received {
            // Also after autotuning grew the buffer just now.
            self.ack_now |= self.window_opened_enough();
        }
        n
    }

    pub(super) fn on_data(&mut self, now: Instant, cfg: &TcpConfig, seg: &TcpRepr) {
        let mut seq = seg.seq_number;
        let mut data = seg.payload;
        if data.is_empty() {
            return;
        }
        self.rcv_rtt_measure(now, seg);
        // Trim what we already have (left of rcv_nxt).
        let before = self.rcv_nxt - seq;
        if before > 0 {
            let skip = (before as usize).min(data.len());
            if self.sack_ok {
                // Partly old data: D-SACK the duplicate part (RFC 2883 §4.1).
                self.dsack_out = Some((seq, seq + skip));
            }
            data = &data[skip..];
            seq += skip;
        }
        // Trim to the window we offered.
        let wnd_end = self.rcv_adv;
        let room = (wnd_end - seq).max(0) as usize;
        if data.len() > room {
            data = &data[..room];
        }
        if data.is_empty() {
            self.ack_now = true;
            return;
        }
        if self.rx_shutdown {
            // Reads are shut: acknowledge and discard (Linux keeps acking too).
            // Only in-order data moves rcv_nxt, and it takes along the held
            // out-of-order data it reaches: stream offsets below rcv_off must not
            // stay in the assembler (its SACK blocks would map below rcv_nxt).
            if seq == self.rcv_nxt {
                let more = self.ooo.take_from(self.rcv_off + data.len() as u64);
                let n = data.len() + more.len();
                self.rcv_nxt += n;
                self.rcv_off += n as u64;
            }
            self.ack_now = true;
            return;
        }
        if seq == self.rcv_nxt {
            let need = data.len();
            let forced = self.recv.is_empty() && need <= self.mem_forced_room;
            if !self.rmem_schedule(need, self.rcv_off) && !forced {
                // Above the high mark: drop rather than allocate (Linux
                // TCPRcvQDrop); the peer retransmits once memory is back.
                self.stat_rcvq_drop += 1;
                return;
            }
            self.mem_room = self.mem_room.saturating_sub(need);
            self.mem_forced_room = self.mem_forced_room.saturating_sub(need);
            let had_holes = !self.ooo.is_empty();
            self.recv.extend(data);
            self.rcv_nxt += data.len();
            self.rcv_off += data.len() as u64;
            self.bytes_received += data.len() as u64;
            let mut delivered = data.len();
            if had_holes {
                let more = self.ooo.take_from(self.rcv_off);
                self.rcv_nxt += more.len();
                self.rcv_off += more.len() as u64;
                self.bytes_received += more.len() as u64;
                delivered += more.len();
                self.recv.extend(more);
                // RFC 5681 §4.2: ACK at once when a hole is filled.
                self.ack_now = true;
            }
            self.unacked_bytes += delivered;
            if self.quickacks > 0 {
                self.quickacks -= 1;
                self.ack_now = true;
            } else if self.unacked_bytes >= 2 * self.mss {
                // RFC 1122 §4.2.3.2: at least every second full-sized segment.
                self.ack_now = true;
            } else if self.delack_at.is_none() {
                self.delack_at = Some(now + cfg.delayed_ack);
            }
        } else {
            // Out of order: hold it (bounded by the buffer) and send a duplicate ACK
            // at once (RFC 5681 §4.2).
            let off = self.rcv_off + (seq - self.rcv_nxt) as u64;
            let cap = self.recv_cap.saturating_sub(self.recv.len());
            self.rmem_schedule(data.len() + OFO_RANGE_OVERHEAD, off);
            let mut budget = self.mem_room;
            let stored = self.ooo.insert_within(off, data, cap, &mut budget);
            let used = self.mem_room - budget;
            self.mem_room = budget;
            self.mem_forced_room = self.mem_forced_room.saturating_sub(used);
            self.ooo_latest = Some(off);
            if stored < data.len() {
                self.stat_ooo_dropped += 1;
            }
            self.ack_now = true;
        }
    }

    /// Linux tcp_try_rmem_schedule: is there stack memory for `need` more
    /// bytes? If not, prune out-of-order data above stream offset `above`
    /// (tcp_prune_queue → tcp_prune_ofo_queue): just enough normally, all of
    /// it under memory pressure, as Linux keeps pruning while pressure lasts.
    fn rmem_schedule(&mut self, need: usize, above: u64) -> bool {
        if need <= self.mem_room {
            return true;
        }
        self.stat_prune_called += 1;
        let goal = if self.mem_pressure {
            usize::MAX
        } else {
            need - self.mem_room
        };
        let freed = self.ooo.prune_above(above, goal);
        if freed > 0 {
            self.stat_ofo_pruned += 1;
            if self.sack_ok && self.ooo.is_empty() {
                // Nothing left to report (Linux tcp_sack_reset).
                self.ooo_latest = None;
            }
            self.mem_room = self.mem_room.saturating_add(freed);
            self.mem_forced_room = self.mem_forced_room.saturating_add(freed);
        }
        need <= self.mem_room
    }

    /// Dynamic right-sizing (Linux tcp_rcv_space_adjust): once per receiver
    /// RTT, if the application read more than in the last round, grow the
    /// buffer to twice that plus headroom for growth, up to rmem_max, so the
    /// window stays ahead of the sender's congestion window.
    fn rcv_space_adjust(&mut self, now: Instant) {
        let Some(rtt) = self.rcv_rtt.or(self.rtt.srtt()) else {
            return;
        };
        if now < self.rcv_space_time + rtt {
            return;
        }
        let copied = (self.bytes_read - self.rcv_space_mark) as usize;
        if self.rcv_space == 0 {
            // Linux tcp_init_buffer_space: the first round is measured against
            // the initial window.
            self.rcv_space = (10 * self.mss).min(self.recv_cap);
        }
        if copied > self.rcv_space {
            // Under memory pressure windows stop growing (Linux
            // tcp_grow_window / tcp_clamp_window check the same).
            if self.rcv_autotune && !self.mem_pressure {
                let mut rcvwin = 2 * copied + 16 * self.mss;
                let grow = rcvwin as u128 * (copied - self.rcv_space) as u128
                    / self.rcv_space.max(1) as u128;
                rcvwin = rcvwin.saturating_add((grow as usize).saturating_mul(2));
                let cap = rcvwin.min(self.rmem_max);
                // The caller (read) announces the opened window.
                self.recv_cap = self.recv_cap.max(cap);
            }
            self.rcv_space = copied;
        }
        self.rcv_space_mark = self.bytes_read;
        self.rcv_space_time = now;
    }

    /// Receiver RTT from the timestamp a data segment echoes (Linux
    /// tcp_rcv_rtt_measure_ts): the time since we sent that TSval.
    pub(super) fn rcv_rtt_measure(&mut self, now: Instant, seg: &TcpRepr) {
        let Some((_, ecr)) = seg.timestamp.filter(|_| self.ts_ok) else {
            return;
        };
        if ecr == 0 || ecr == self.rcv_rtt_last_tsecr {
            return;
        }
        self.rcv_rtt_last_tsecr = ecr;
        let ms = self.ts_now(now).wrapping_sub(ecr);
        if ms >= 60_000 {
            return;
        }
        let sample = Duration::from_millis(ms.max(1) as u64);
        self.rcv_rtt = Some(match self.rcv_rtt {
            None => sample,
            Some(r) => (r * 7 + sample) / 8,
        });
    }

    /// Would advertising now open the window by at least min(cap/2, 2·MSS)?
    fn window_opened_enough(&self) -> bool {
        let potential = self.rcv_nxt + self.free_space();
        let opened = (potential - self.rcv_adv).max(0) as usize;
        opened >= (self.recv_cap / 2).min(2 * self.mss)
    }
}
