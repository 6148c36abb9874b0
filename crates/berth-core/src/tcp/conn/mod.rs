//! One TCP connection: the transmission control block and its state machine.
//!
//! The TCB knows nothing of IP or sockets: [`Tcb::on_segment`] takes a parsed
//! segment, [`Tcb::next_segment`] says what to send next, [`Tcb::on_timer`] runs
//! due timers. The stack turns `OutSegment`s into packets.
//!
//! One concern a file: `input.rs` (segment arrival, RFC 9293 §3.10.7), `recv.rs`
//! (receive queue, reassembly and the advertised window), `output.rs` (what to
//! send next), `timers.rs` (retransmission, delayed ACK, persist, keepalive,
//! TIME-WAIT), `pmtu.rs` (a lower path MTU); the send ring, the SACK scoreboard and congestion control live in
//! sibling modules of `tcp`.

mod check;
mod info;
mod input;
mod loss;
mod output;
mod pmtu;
mod recv;
mod timers;

use super::assembler::Assembler;
use super::cong::{Algorithm, Controller};
use super::rack::Rack;
use super::recovery::Recovery;
use super::rtt::RttEstimator;
use super::sack::Scoreboard;
use super::send_buf::SendBuf;
use super::sent::{Delivered, SentQueue};
use super::{TcpConfig, TcpInfo, TcpState};
use crate::error::code;
use crate::time::{Duration, Instant};
use berth_wire::{SeqNumber, TcpFlags, TcpRepr};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Least time between two ACKs sent in answer to unacceptable segments without
/// data (Linux tcp_invalid_ratelimit: 500 ms).
const OOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

/// Window scale shift we would need for `buf` bytes (RFC 7323 §2.3: at most 14).
pub(crate) fn scale_for(buf: usize) -> u8 {
    let mut s = 0u8;
    while s < 14 && (buf >> s) > 65_535 {
        s += 1;
    }
    s
}

/// The window-scale shift we offer (0 when scaling is off).
pub(crate) fn our_shift(cfg: &TcpConfig, recv_cap: usize, locked: bool) -> u8 {
    match (cfg.window_scaling, cfg.window_scale) {
        (false, _) => 0,
        (true, Some(s)) => s.min(14),
        // As Linux's tcp_select_initial_window: an autotuned buffer may grow to
        // rmem_max, so the shift must allow that; a locked one only its size.
        (true, None) if locked || !cfg.moderate_rcvbuf => scale_for(recv_cap),
        (true, None) => scale_for(recv_cap.max(cfg.rmem_max)),
    }
}

/// F-RTO's state (RFC 5682 §2): waiting for the first ACK after the timeout's
/// retransmission of `una..una+len`, or, after new data went out instead of more
/// retransmissions, for the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frto {
    First { una: SeqNumber, recover: SeqNumber },
    Second { recover: SeqNumber },
}

/// What the peer offered in its SYN.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SynOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub timestamp: Option<(u32, u32)>,
    pub sack_permitted: bool,
}

impl SynOptions {
    pub fn of(seg: &TcpRepr) -> Self {
        SynOptions {
            mss: seg.max_seg_size,
            window_scale: seg.window_scale,
            timestamp: seg.timestamp,
            sack_permitted: seg.sack_permitted,
        }
    }
}

/// A segment to send: header fields plus a range of the send buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutSegment {
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    pub window: u16,
    /// Offset into the send buffer and length of the payload.
    pub data_off: usize,
    pub data_len: usize,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub timestamp: Option<(u32, u32)>,
    pub sack_permitted: bool,
    /// SACK blocks (RFC 2018) to report, most recent first.
    pub sack: [Option<(SeqNumber, SeqNumber)>; 4],
}

/// What the stack must do after the TCB handled something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// The connection is gone; report `errno` (0 for a clean end) and free it.
    Closed(i32),
    /// Reply with a reset `<SEQ=seq><CTL=RST>` and drop the segment.
    SendReset(SeqNumber),
    /// Reply with a reset `<SEQ=seq><CTL=RST>` and free the connection: new
    /// data reached a connection the application has closed.
    AbortOnData(SeqNumber),
}

#[derive(Debug)]
pub(crate) struct Tcb {
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    // Send sequence space (RFC 9293 §3.3.1).
    pub iss: SeqNumber,
    pub snd_una: SeqNumber,
    pub snd_nxt: SeqNumber,
    /// Highest sequence number sent (snd_nxt may go back on a timeout).
    pub snd_max: SeqNumber,
    pub snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    max_snd_wnd: usize,
    pub snd_shift: u8,
    pub send: SendBuf,
    pub send_cap: usize,
    /// shutdown(Write) or close: send FIN after the data.
    pub fin_queued: bool,
    /// Sequence number our FIN occupies, once sent.
    fin_seq_sent: Option<SeqNumber>,
    // Receive sequence space.
    pub irs: SeqNumber,
    pub rcv_nxt: SeqNumber,
    /// Stream offset of rcv_nxt (bytes received in order so far).
    rcv_off: u64,
    pub rcv_shift: u8,
    /// Right edge of the window last advertised; never moved left (RFC 9293 §3.8.6.2.2).
    rcv_adv: SeqNumber,
    pub recv: VecDeque<u8>,
    pub recv_cap: usize,
    ooo: Assembler,
    /// Sequence number of a FIN that came with out-of-order data: acted on when
    /// rcv_nxt reaches it (Linux keeps the FIN in its out-of-order queue too), so
    /// the peer need not retransmit it.
    ooo_fin: Option<SeqNumber>,
    pub fin_received: bool,
    pub rx_shutdown: bool,
    // Options.
    /// Payload bytes per segment we send (peer MSS, our MTU, options).
    pub mss: usize,
    pub peer_mss: usize,
    /// MSS we advertise.
    our_mss: u16,
    /// Path MTU as the TCB counts it (40 header bytes; an IPv6 path's MTU
    /// less 20): the interface's at first, lowered by `mtu_reduced`.
    pmtu: usize,
    pub ts_ok: bool,
    /// Window scaling agreed: we offered it (config) and so did the peer
    /// (RFC 7323 §2.2); Linux's wscale_ok, TCPI_OPT_WSCALE in tcp_info.
    pub ws_ok: bool,
    /// SACK agreed: we offered it (config) and so did the peer.
    pub sack_ok: bool,
    /// Stream offset of the latest out-of-order segment, for the first SACK block.
    ooo_latest: Option<u64>,
    ts_recent: u32,
    ts_offset: u32,
    // Timing and recovery.
    rtt: RttEstimator,
    /// Karn timing without timestamps: (sequence that must be acked, send time).
    rtt_probe: Option<(SeqNumber, Instant)>,
    pub cc: Box<dyn Controller>,
    /// Congestion-control algorithm (TCP_CONGESTION); fixed once the SYN is out.
    pub cc_algorithm: Algorithm,
    pub rec: Recovery,
    /// Sent-segment records (SACK connections): per-segment times for RACK.
    sent: SentQueue,
    rack: Rack,
    /// Scratch list of segments one ACK delivered.
    delivered: Vec<Delivered>,
    /// RACK reordering timer and tail-loss-probe timer (RFC 8985 §6.3, §7.2).
    rack_at: Option<Instant>,
    tlp_at: Option<Instant>,
    /// Send a tail loss probe on the next output.
    tlp_now: bool,
    /// snd_max when the outstanding probe went out (RFC 8985 TLP.end_seq)
    /// and, if it was a retransmission (TLP.is_retrans), the end of what it
    /// resent.
    tlp_high: Option<(SeqNumber, Option<SeqNumber>)>,
    /// TSval of the first retransmission after a timeout, for Eifel (RFC 3522).
    rto_ts: Option<u32>,
    /// F-RTO (RFC 5682) after a timeout on a connection without timestamps.
    frto: Option<Frto>,
    /// D-SACK block to report in the next segment (RFC 2883 §4).
    dsack_out: Option<(SeqNumber, SeqNumber)>,
    // Buffer autotuning (Linux tcp_rcv_space_adjust, tcp_sndbuf_expand).
    pub rcv_autotune: bool,
    pub snd_autotune: bool,
    rmem_max: usize,
    wmem_max: usize,
    /// Bytes the application read in the last measured round trip, and when
    /// and at which read total that round began (Linux rcvq_space).
    rcv_space: usize,
    rcv_space_mark: u64,
    rcv_space_time: Instant,
    /// Bytes the application has read in all.
    bytes_read: u64,
    /// The receiver's RTT estimate from echoed timestamps (Linux rcv_rtt_est).
    rcv_rtt: Option<Duration>,
    rcv_rtt_last_tsecr: u32,
    /// Pacing (bytes per second; 0 until an RTT is known), the earliest time
    /// the next data segment may leave, and whether output waits for it.
    pub pacing_rate: u64,
    pace_next: Option<Instant>,
    pace_blocked: bool,
    /// SACK scoreboard (RFC 6675 §3): ranges above snd_una the peer reported
    /// holding, sorted and disjoint; at most SCOREBOARD_MAX of them.
    scoreboard: Scoreboard,
    /// Initial window override in segments (TcpConfig::initial_window).
    initial_window: Option<u32>,
    /// Consecutive timeouts without progress.
    pub retries: u32,
    rto_at: Option<Instant>,
    delack_at: Option<Instant>,
    persist_at: Option<Instant>,
    persist_backoff: u32,
    keepalive_at: Option<Instant>,
    keepalive_probes: u32,
    pub timewait_at: Option<Instant>,
    finwait2_at: Option<Instant>,
    // ACK scheduling (RFC 1122 §4.2.3.2).
    ack_now: bool,
    unacked_bytes: usize,
    quickacks: u32,
    /// Send a keepalive / zero-window probe on the next output.
    probe_now: bool,
    /// When we last answered an unacceptable data-less segment (see `dup_ack`).
    last_oow_ack: Option<Instant>,
    /// The SWS override timer fired (RFC 9293 §3.8.6.2.1): send a less than
    /// full-sized segment the peer's small window allows.
    sws_override: bool,
    // Options set by the user.
    pub nodelay: bool,
    pub keepalive: bool,
    pub keep_idle: Duration,
    pub keep_intvl: Duration,
    pub keep_cnt: u32,
    pub orphan: bool,
    pub last_rx: Instant,
    /// An ICMP soft error (Linux sk_err_soft): reported instead of ETIMEDOUT if
    /// the connection times out (RFC 1122 §4.2.3.9); cleared by an ACK.
    pub soft_error: Option<i32>,
    // Counters for tcp_info.
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    /// Segments retransmitted (tcpi_total_retrans).
    pub total_retrans: u64,
    /// Retransmission timeouts (for the stack's tcp_rto_events).
    pub rto_events: u64,
    /// Segments we drop or reject, for the stack's counters.
    pub stat_bad_acks: u64,
    pub stat_out_of_window: u64,
    pub stat_paws: u64,
    pub stat_ooo_dropped: u64,
    /// SACK blocks dropped as impossible (beyond snd_max, reversed).
    pub stat_sack_invalid: u64,
    /// D-SACKs received (tcpi_dsack_dups).
    pub dsack_dups: u64,
    /// Timeouts and fast recoveries undone as spurious.
    pub spurious_rtos: u64,
    pub spurious_recoveries: u64,
    /// Tail loss probes sent.
    pub tlp_probes: u64,
    // Stack-wide memory (tcp_mem), set by the stack before every input, read
    // and write: bytes this connection may still take, bytes it may take by
    // force (in-order data into an empty queue, see `crate::mem`), and
    // whether the stack is under memory pressure. Unlimited until set.
    pub mem_room: usize,
    pub mem_forced_room: usize,
    pub mem_pressure: bool,
    /// In-order segments dropped for want of memory (Linux TCPRcvQDrop),
    /// prunes (PruneCalled) and out-of-order queues pruned (OfoPruned).
    pub stat_rcvq_drop: u64,
    pub stat_prune_called: u64,
    pub stat_ofo_pruned: u64,
    /// Times and counts for `tcp_info` (see `info.rs`).
    marks: info::InfoMarks,
}

impl Tcb {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cfg: &TcpConfig,
        now: Instant,
        state: TcpState,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        iface_mtu: usize,
        recv_cap: usize,
        send_cap: usize,
        ts_offset: u32,
        rcv_locked: bool,
    ) -> Tcb {
        let our_mss = iface_mtu.saturating_sub(40).clamp(88, 65_495) as u16;
        Tcb {
            state,
            local,
            remote,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: SeqNumber(0),
            max_snd_wnd: 0,
            snd_shift: 0,
            send: SendBuf::default(),
            send_cap,
            fin_queued: false,
            fin_seq_sent: None,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_off: 0,
            rcv_shift: our_shift(cfg, recv_cap, rcv_locked),
            rcv_adv: SeqNumber(0),
            recv: VecDeque::new(),
            recv_cap,
            ooo: Assembler::default(),
            ooo_fin: None,
            fin_received: false,
            rx_shutdown: false,
            mss: 536,
            peer_mss: 536,
            our_mss,
            pmtu: iface_mtu,
            ts_ok: cfg.timestamps,
            ws_ok: cfg.window_scaling,
            sack_ok: cfg.sack,
            ooo_latest: None,
            ts_recent: 0,
            ts_offset,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_probe: None,
            cc: cfg.congestion.controller(536, cfg.initial_window),
            cc_algorithm: cfg.congestion,
            rec: Recovery::new(iss, 536),
            sent: SentQueue::default(),
            rack: Rack::new(),
            delivered: Vec::new(),
            rack_at: None,
            tlp_at: None,
            tlp_now: false,
            tlp_high: None,
            rto_ts: None,
            frto: None,
            dsack_out: None,
            rcv_autotune: cfg.moderate_rcvbuf && !rcv_locked,
            snd_autotune: true,
            rmem_max: cfg.rmem_max,
            wmem_max: cfg.wmem_max,
            rcv_space: 0,
            rcv_space_mark: 0,
            rcv_space_time: now,
            bytes_read: 0,
            rcv_rtt: None,
            rcv_rtt_last_tsecr: 0,
            pacing_rate: 0,
            pace_next: None,
            pace_blocked: false,
            scoreboard: Scoreboard::default(),
            initial_window: cfg.initial_window,
            retries: 0,
            rto_at: None,
            delack_at: None,
            persist_at: None,
            persist_backoff: 0,
            keepalive_at: None,
            keepalive_probes: 0,
            timewait_at: None,
            finwait2_at: None,
            ack_now: false,
            unacked_bytes: 0,
            quickacks: 16,
            probe_now: false,
            last_oow_ack: None,
            sws_override: false,
            nodelay: false,
            keepalive: false,
            keep_idle: cfg.keepalive_idle,
            keep_intvl: cfg.keepalive_interval,
            keep_cnt: cfg.keepalive_count,
            orphan: false,
            last_rx: now,
            soft_error: None,
            bytes_sent: 0,
            bytes_acked: 0,
            bytes_received: 0,
            segs_in: 0,
            segs_out: 0,
            total_retrans: 0,
            rto_events: 0,
            stat_bad_acks: 0,
            stat_out_of_window: 0,
            stat_paws: 0,
            stat_ooo_dropped: 0,
            mem_room: usize::MAX,
            mem_forced_room: usize::MAX,
            mem_pressure: false,
            stat_rcvq_drop: 0,
            stat_prune_called: 0,
            stat_ofo_pruned: 0,
            marks: info::InfoMarks::new(now),
            stat_sack_invalid: 0,
            dsack_dups: 0,
            spurious_rtos: 0,
            spurious_recoveries: 0,
            tlp_probes: 0,
        }
    }

    /// Move to state `to` (an event on `berth::tcp` when it differs).
    pub(crate) fn set_state(&mut self, to: TcpState) {
        crate::trace::tcp_state(self.local, self.remote, self.state, to);
        self.state = to;
    }

    /// Active open: a TCB in SYN-SENT that will send its SYN on the next output.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        cfg: &TcpConfig,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        iface_mtu: usize,
        recv_cap: usize,
        send_cap: usize,
        ts_offset: u32,
        rcv_locked: bool,
    ) -> Tcb {
        crate::trace::tcp_state(local, remote, TcpState::Closed, TcpState::SynSent);
        Tcb::new(
            cfg,
            now,
            TcpState::SynSent,
            local,
            remote,
            iss,
            iface_mtu,
            recv_cap,
            send_cap,
            ts_offset,
            rcv_locked,
        )
    }

    /// Passive open completed: the SYN queue entry turned into an ESTABLISHED TCB.
    #[allow(clippy::too_many_arguments)]
    pub fn accepted(
        cfg: &TcpConfig,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        irs: SeqNumber,
        syn: SynOptions,
        syn_window: u16,
        iface_mtu: usize,
        recv_cap: usize,
        send_cap: usize,
        ts_offset: u32,
        rcv_locked: bool,
    ) -> Tcb {
        crate::trace::tcp_state(local, remote, TcpState::SynReceived, TcpState::Established);
        let mut t = Tcb::new(
            cfg,
            now,
            TcpState::Established,
            local,
            remote,
            iss,
            iface_mtu,
            recv_cap,
            send_cap,
            ts_offset,
            rcv_locked,
        );
        t.irs = irs;
        t.rcv_nxt = irs + 1;
        t.apply_syn_options(&syn);
        t.snd_una = iss + 1;
        t.snd_nxt = iss + 1;
        t.snd_max = iss + 1;
        // The SYN's window is never scaled (RFC 7323 §2.2).
        t.snd_wnd = syn_window as usize;
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = irs;
        t.snd_wl2 = iss + 1;
        t.rcv_adv = t.rcv_nxt + t.window_bytes();
        t
    }

    /// The window-scale shift and MSS we put in a SYN / SYN-ACK.
    pub fn our_syn_options(
        cfg: &TcpConfig,
        iface_mtu: usize,
        recv_cap: usize,
        rcv_locked: bool,
    ) -> (u16, u8) {
        let mss = iface_mtu.saturating_sub(40).clamp(88, 65_495) as u16;
        (mss, our_shift(cfg, recv_cap, rcv_locked))
    }

    fn apply_syn_options(&mut self, syn: &SynOptions) {
        // RFC 7323 §2.2: scaling only if both sides sent the option; a
        // shift above 14 is taken as 14 (§2.3).
        self.ws_ok &= syn.window_scale.is_some();
        match syn.window_scale {
            Some(s) if self.ws_ok => self.snd_shift = s.min(14),
            _ => {
                self.snd_shift = 0;
                self.rcv_shift = 0;
            }
        }
        // RFC 7323 §3.2: timestamps only if the SYN carried one.
        match syn.timestamp {
            Some((val, _)) if self.ts_ok => self.ts_recent = val,
            _ => self.ts_ok = false,
        }
        // RFC 2018 §2: SACK only if both SYNs carried SACK-permitted.
        self.sack_ok &= syn.sack_permitted;
        // RFC 9293 §3.7.1: 536 when the peer sends no MSS option.
        self.peer_mss = syn.mss.map_or(536, |m| m.max(64) as usize);
        self.mss = self.send_mss();
        self.cc = self.cc_algorithm.controller(self.mss, self.initial_window);
        self.rec = Recovery::new(self.snd_max, self.mss);
    }

    /// Switch the congestion controller, keeping the window (Linux
    /// tcp_reinit_congestion_control keeps cwnd and ssthresh in the socket).
    pub fn set_congestion(&mut self, alg: Algorithm) {
        if alg == self.cc_algorithm {
            return;
        }
        let (cwnd, ssthresh) = (self.cc.cwnd(), self.cc.ssthresh());
        self.cc_algorithm = alg;
        self.cc = alg.controller(self.mss, self.initial_window);
        if self.state.is_synchronized() {
            self.cc.set_cwnd(cwnd);
            self.cc.set_ssthresh(ssthresh);
        }
    }

    pub fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    // ---- user calls ----------------------------------------------------------------

    /// Room in the send buffer.
    pub fn send_space(&self) -> usize {
        self.send_cap.saturating_sub(self.send.len())
    }

    /// Queue data; returns bytes taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.send_space());
        self.send.push(&data[..n]);
        n
    }

    /// shutdown(Write) / close: send FIN after queued data.
    pub fn close_send(&mut self) {
        if self.fin_queued {
            return;
        }
        match self.state {
            TcpState::Established => {
                self.fin_queued = true;
                self.set_state(TcpState::FinWait1);
            }
            TcpState::CloseWait => {
                self.fin_queued = true;
                self.set_state(TcpState::LastAck);
            }
            TcpState::SynReceived => {
                self.fin_queued = true;
            }
            _ => {}
        }
    }

    /// Sequence number of our FIN (after all data); meaningful until it is acked.
    fn fin_seq(&self) -> SeqNumber {
        self.snd_una + self.send.len()
    }

    fn fin_acked(&self) -> bool {
        self.fin_seq_sent.is_some_and(|f| self.snd_una > f)
    }

    /// Bytes in flight (sent, not acknowledged).
    pub fn flight(&self) -> usize {
        (self.snd_max - self.snd_una).max(0) as usize
    }

    /// RFC 6191: may a new SYN reuse this TIME-WAIT connection's four-tuple?
    pub fn time_wait_accepts_syn(&self, seg: &TcpRepr) -> bool {
        if self.ts_ok {
            if let Some((val, _)) = seg.timestamp {
                return (val.wrapping_sub(self.ts_recent) as i32) > 0;
            }
        }
        seg.seq_number > self.rcv_nxt
    }

    /// An RTT measured outside the TCB (the passive open's SYN-ACK → ACK time).
    pub fn rtt_sample(&mut self, d: Duration) {
        self.rtt.sample(d);
    }

    /// The handle was closed: finish on our own, with a FIN-WAIT-2 time limit.
    pub fn set_orphan(&mut self, now: Instant, cfg: &TcpConfig) {
        self.orphan = true;
        if self.state == TcpState::FinWait2 {
            self.finwait2_at = Some(now + cfg.fin_timeout);
        }
    }

    /// Readable: data queued, or end of stream.
    /// Receive memory held: in-order queue plus out-of-order data (ss -m r).
    pub fn rmem(&self) -> usize {
        self.recv.len() + self.ooo.mem()
    }

    /// Everything this connection is charged in the stack's tcp_mem.
    pub fn mem_charge(&self) -> usize {
        self.rmem() + self.send.len()
    }

    /// The `ss -m` fields.
    pub fn skmem(&self) -> crate::mem::SkMem {
        crate::mem::SkMem {
            rmem_alloc: self.rmem(),
            rcvbuf: self.recv_cap,
            wmem_alloc: self.send.len(),
            sndbuf: self.send_cap,
            wmem_queued: self.send.len(),
            drops: self.stat_ooo_dropped + self.stat_rcvq_drop,
            ..Default::default()
        }
    }

    pub fn readable(&self) -> bool {
        !self.recv.is_empty() || self.fin_received
    }

    /// Bytes not yet acknowledged by the peer (ss Send-Q).
    pub fn send_queue(&self) -> usize {
        self.send.len()
    }
}
