//! One TCP connection: the transmission control block and its state machine.
//!
//! The TCB knows nothing of IP or sockets: [`Tcb::on_segment`] takes a parsed
//! segment, [`Tcb::next_segment`] says what to send next, [`Tcb::on_timer`] runs
//! due timers. The stack turns `OutSegment`s into packets.

use super::assembler::Assembler;
use super::cong::NewReno;
use super::rtt::RttEstimator;
use super::{TcpConfig, TcpInfo, TcpState};
use crate::error::code;
use crate::time::{Duration, Instant};
use berth_wire::{SeqNumber, TcpFlags, TcpRepr};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

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
pub(crate) fn our_shift(cfg: &TcpConfig, recv_cap: usize) -> u8 {
    match (cfg.window_scaling, cfg.window_scale) {
        (false, _) => 0,
        (true, Some(s)) => s.min(14),
        (true, None) => scale_for(recv_cap),
    }
}

/// Most SACK scoreboard ranges kept (more holes than this fall back to NewReno
/// behaviour for the rest: they are retransmitted by partial ACKs or the RTO).
const SCOREBOARD_MAX: usize = 64;

fn seq_max(a: SeqNumber, b: SeqNumber) -> SeqNumber {
    if a > b {
        a
    } else {
        b
    }
}

fn seq_min(a: SeqNumber, b: SeqNumber) -> SeqNumber {
    if a < b {
        a
    } else {
        b
    }
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
}

/// Send buffer: a ring holding unacknowledged and unsent data starting at `snd_una`.
/// A ring, not a Vec compacted now and then, so acknowledging never moves bytes; it
/// grows (doubling) up to the socket's send buffer size.
#[derive(Debug, Default)]
pub(crate) struct SendBuf {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl SendBuf {
    pub fn len(&self) -> usize {
        self.len
    }
    /// `len` bytes from `off`; borrowed unless the range wraps around the ring.
    pub fn slice(&self, off: usize, len: usize) -> Cow<'_, [u8]> {
        let cap = self.buf.len();
        if len == 0 || cap == 0 {
            return Cow::Borrowed(&[]);
        }
        let start = (self.head + off) % cap;
        if start + len <= cap {
            Cow::Borrowed(&self.buf[start..start + len])
        } else {
            let first = cap - start;
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(&self.buf[start..]);
            v.extend_from_slice(&self.buf[..len - first]);
            Cow::Owned(v)
        }
    }
    fn push(&mut self, d: &[u8]) {
        if d.is_empty() {
            return;
        }
        if self.len + d.len() > self.buf.len() {
            let new_cap = (self.buf.len() * 2).max(self.len + d.len()).max(4096);
            let mut nb = Vec::with_capacity(new_cap);
            let old = self.slice(0, self.len).into_owned();
            nb.extend_from_slice(&old);
            nb.resize(new_cap, 0);
            self.buf = nb;
            self.head = 0;
        }
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let first = d.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&d[..first]);
        self.buf[..d.len() - first].copy_from_slice(&d[first..]);
        self.len += d.len();
    }
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if self.buf.is_empty() {
            return;
        }
        self.head = (self.head + n) % self.buf.len();
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
            // An idle connection holds no send memory (as Linux frees acked skbs);
            // large buffers of busy bulk connections are kept to avoid re-zeroing.
            if self.buf.len() <= 64 * 1024 {
                self.buf = Vec::new();
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Tcb {
    pub state: TcpState,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
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
    pub ts_ok: bool,
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
    pub cc: NewReno,
    /// SACK scoreboard (RFC 6675 §3): ranges above snd_una the peer reported
    /// holding, sorted and disjoint; at most SCOREBOARD_MAX of them.
    scoreboard: Vec<(SeqNumber, SeqNumber)>,
    /// HighRxt (RFC 6675 §2): end of what this recovery retransmitted.
    high_rxt: SeqNumber,
    /// Initial window override in segments (TcpConfig::initial_window).
    initial_window: Option<u32>,
    dupacks: u32,
    /// Retransmit one segment at snd_una on the next output (fast retransmit).
    rexmit_once: bool,
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
}

impl Tcb {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cfg: &TcpConfig,
        now: Instant,
        state: TcpState,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        iface_mtu: usize,
        recv_cap: usize,
        send_cap: usize,
        ts_offset: u32,
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
            rcv_shift: our_shift(cfg, recv_cap),
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
            ts_ok: cfg.timestamps,
            sack_ok: cfg.sack,
            ooo_latest: None,
            ts_recent: 0,
            ts_offset,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_probe: None,
            cc: NewReno::new(536, iss, cfg.initial_window),
            scoreboard: Vec::new(),
            high_rxt: iss,
            initial_window: cfg.initial_window,
            dupacks: 0,
            rexmit_once: false,
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
        }
    }

    /// Active open: a TCB in SYN-SENT that will send its SYN on the next output.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        cfg: &TcpConfig,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        iface_mtu: usize,
        recv_cap: usize,
        send_cap: usize,
        ts_offset: u32,
    ) -> Tcb {
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
        )
    }

    /// Passive open completed: the SYN queue entry turned into an ESTABLISHED TCB.
    #[allow(clippy::too_many_arguments)]
    pub fn accepted(
        cfg: &TcpConfig,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        irs: SeqNumber,
        syn: SynOptions,
        syn_window: u16,
        iface_mtu: usize,
        recv_cap: usize,
        send_cap: usize,
        ts_offset: u32,
    ) -> Tcb {
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
    pub fn our_syn_options(cfg: &TcpConfig, iface_mtu: usize, recv_cap: usize) -> (u16, u8) {
        let mss = iface_mtu.saturating_sub(40).clamp(88, 65_495) as u16;
        (mss, our_shift(cfg, recv_cap))
    }

    fn apply_syn_options(&mut self, syn: &SynOptions) {
        // RFC 7323 §2.2: scaling only if both sides sent the option.
        match syn.window_scale {
            Some(s) if self.rcv_shift > 0 || s > 0 => {
                self.snd_shift = s.min(14);
            }
            Some(_) => self.snd_shift = 0,
            None => {
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
        let mut mss = self.peer_mss.min(self.our_mss as usize);
        if self.ts_ok {
            mss -= 12;
        }
        self.mss = mss.max(16);
        self.cc = NewReno::new(self.mss, self.snd_max, self.initial_window);
    }

    pub fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// Receive space we can offer, bytes.
    fn free_space(&self) -> usize {
        self.recv_cap
            .saturating_sub(self.recv.len() + self.ooo.bytes())
    }

    /// The window to advertise: free space, with receiver silly-window avoidance
    /// (RFC 9293 §3.8.6.2.2: advance the right edge only by at least min(cap/2, MSS))
    /// and never shrinking what was already offered.
    fn window_bytes(&self) -> usize {
        let free = self.free_space();
        let offered = (self.rcv_adv - self.rcv_nxt).max(0) as usize;
        let step = (self.recv_cap / 2).min(self.mss.max(536));
        let w = if free >= offered + step || free == self.recv_cap {
            free
        } else {
            offered
        };
        w.min(65_535usize << self.rcv_shift)
    }

    fn window_field(&mut self) -> u16 {
        let w = self.window_bytes();
        let field = (w >> self.rcv_shift).min(65_535);
        let edge = self.rcv_nxt + (field << self.rcv_shift);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        field as u16
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

    /// Read in-order data; returns bytes copied. Opens the window when reading
    /// frees enough space (RFC 1122 §4.2.3.3).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.recv.len());
        let (a, b) = self.recv.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        self.recv.drain(..n);
        if n > 0 && self.state.is_synchronized() && !self.fin_received {
            let potential = self.rcv_nxt + self.free_space();
            let opened = (potential - self.rcv_adv).max(0) as usize;
            let step = (self.recv_cap / 2).min(2 * self.mss);
            if opened >= step {
                self.ack_now = true;
            }
        }
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
                self.state = TcpState::FinWait1;
            }
            TcpState::CloseWait => {
                self.fin_queued = true;
                self.state = TcpState::LastAck;
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
        if self.state == TcpState::SynSent {
            return self.on_segment_syn_sent(now, seg);
        }
        let flags = seg.flags;
        let seg_len = seg.segment_len();
        // RFC 7323 §5.3: PAWS. A timestamp older than ts_recent marks an old
        // duplicate (RSTs are exempt).
        if self.ts_ok && !flags.contains(TcpFlags::RST) {
            if let Some((val, _)) = seg.timestamp {
                if (val.wrapping_sub(self.ts_recent) as i32) < 0 {
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
            self.stat_out_of_window += 1;
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
                        self.state = TcpState::CloseWait;
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
                        self.state = TcpState::Closing;
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
            } else if self.fin_received && fin_at + 1 == self.rcv_nxt {
                // Retransmitted FIN: ACK again; in TIME-WAIT restart the 2 MSL timer.
                self.ack_now = true;
                if self.state == TcpState::TimeWait {
                    self.timewait_at = Some(now + cfg.time_wait);
                }
            }
        }
        Verdict::Ok
    }

    /// Answer an unacceptable segment (old timestamp, outside the window, ACK of
    /// data never sent) with an ACK, as RFC 9293 §3.10.7.4 says — but, for a segment
    /// that carries no data, at most once per [`OOW_ACK_INTERVAL`], as Linux does
    /// (`tcp_invalid_ratelimit`). Two ends that disagree about the sequence space
    /// (after a forged segment was accepted, say) would otherwise answer each
    /// other's ACKs with ACKs forever: an ACK storm. Data segments are always
    /// answered, so a sender whose ACKs were lost still learns what arrived.
    fn dup_ack(&mut self, now: Instant, seg: &TcpRepr) {
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

    fn window_bytes_for_check(&self) -> usize {
        (self.rcv_adv - self.rcv_nxt).max(0) as usize
    }

    /// RFC 9293 §3.10.7.4 table: is any part of the segment inside the window?
    fn seq_acceptable(&self, seq: SeqNumber, len: usize, wnd: usize) -> bool {
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

    fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = TcpState::TimeWait;
        self.timewait_at = Some(now + cfg.time_wait);
        self.rto_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.finwait2_at = None;
        self.delack_at = None;
    }

    /// ACK processing. Returns a verdict when the connection ends here.
    fn on_ack(&mut self, now: Instant, cfg: &TcpConfig, seg: &TcpRepr) -> Option<Verdict> {
        let ack = seg.ack_number;
        if self.state == TcpState::SynReceived {
            // Simultaneous open: our SYN is acknowledged.
            if ack > self.snd_una && ack <= self.snd_max {
                self.state = TcpState::Established;
                // The SYN's sequence number is not data.
                self.snd_una = self.iss + 1;
                self.retries = 0;
                self.rto_at = None;
                self.snd_wnd = (seg.window_len as usize) << self.snd_shift;
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seg.seq_number;
                self.snd_wl2 = ack;
                if self.fin_queued {
                    self.state = TcpState::FinWait1;
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
        if self.sack_ok {
            self.sack_update(ack, seg);
        }
        if ack > self.snd_una {
            let acked = (ack - self.snd_una) as usize;
            // Grow cwnd only while it limits the sender (RFC 7661 §4.1, Linux's
            // tcp_is_cwnd_limited); an application- or rwnd-limited flow keeps it.
            let cwnd_limited = 2 * self.flight() >= self.cc.cwnd;
            // The FIN occupies one sequence number beyond the buffered data.
            let data_acked = acked.min(self.send.len());
            self.send.consume(data_acked);
            self.bytes_acked += data_acked as u64;
            self.snd_una = ack;
            if self.snd_nxt < self.snd_una {
                self.snd_nxt = self.snd_una;
            }
            self.retries = 0;
            self.persist_backoff = 0;
            // RTT sample: timestamps (RFC 7323 §4) or Karn-safe timing.
            if let Some((_, ecr)) = seg.timestamp.filter(|_| self.ts_ok) {
                let now_ts = self.ts_now(now);
                let ms = now_ts.wrapping_sub(ecr);
                if ecr != 0 && ms < 60_000 {
                    self.rtt.sample(Duration::from_millis(ms as u64));
                }
            } else if let Some((seq, sent)) = self.rtt_probe {
                if ack >= seq {
                    self.rtt.sample(now - sent);
                    self.rtt_probe = None;
                }
            }
            // Congestion control.
            if self.cc.in_recovery {
                let flight = self.flight();
                if self.cc.on_ack_in_recovery(ack, acked, flight) {
                    // Partial ACK. With SACK information the holes are found
                    // from the scoreboard (next_hole); without, NewReno resends
                    // the segment at snd_una (RFC 6582 §3.2 step 5).
                    if !self.cc.sack_recovery || self.scoreboard.is_empty() {
                        self.rexmit_once = true;
                    }
                } else {
                    self.dupacks = 0;
                }
            } else {
                if cwnd_limited {
                    self.cc.on_ack(acked);
                }
                self.dupacks = 0;
            }
            // RFC 6298 §5.2/5.3: restart or stop the timer.
            self.rto_at = if self.snd_una < self.snd_max {
                Some(now + self.rtt.rto())
            } else {
                None
            };
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.contains(TcpFlags::FIN)
            && seg_wnd == self.snd_wnd
            && self.snd_una < self.snd_max
        {
            // Duplicate ACK (RFC 5681 §2).
            self.dupacks += 1;
            if self.cc.in_recovery {
                self.cc.on_dupack_in_recovery();
            } else if self.dupacks == 3 && self.snd_una > self.cc.recover - 1 {
                // RFC 6582 §3.2 step 2 (the "recover" check avoids a second
                // reduction for losses from the same window).
                let flight = self.flight();
                self.cc.enter_recovery(flight, self.snd_max, self.sack_ok);
                self.high_rxt = self.snd_una;
                self.rexmit_once = true;
            }
        }
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
                    self.state = TcpState::FinWait2;
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

    fn on_data(&mut self, now: Instant, cfg: &TcpConfig, seg: &TcpRepr) {
        let mut seq = seg.seq_number;
        let mut data = seg.payload;
        if data.is_empty() {
            return;
        }
        // Trim what we already have (left of rcv_nxt).
        let before = self.rcv_nxt - seq;
        if before > 0 {
            let skip = (before as usize).min(data.len());
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
            self.rcv_nxt += data.len();
            self.rcv_off += data.len() as u64;
            self.ack_now = true;
            return;
        }
        if seq == self.rcv_nxt {
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
            let stored = self.ooo.insert(off, data, cap);
            self.ooo_latest = Some(off);
            if stored < data.len() {
                self.stat_ooo_dropped += 1;
            }
            self.ack_now = true;
        }
    }

    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr) -> Verdict {
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
            self.snd_una = seg.ack_number;
            self.snd_wnd = seg.window_len as usize; // SYN windows are unscaled
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = seg.ack_number;
            self.state = TcpState::Established;
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
            self.state = TcpState::SynReceived;
            self.snd_nxt = self.iss;
            self.rcv_adv = self.rcv_nxt + self.window_bytes();
        }
        Verdict::Ok
    }

    // ---- output ---------------------------------------------------------------------

    /// Merge the SACK blocks of an ACK into the scoreboard (RFC 6675 §4) and drop
    /// what the cumulative ACK covers. Blocks outside (snd_una, snd_max] are
    /// ignored (RFC 2018 §3; D-SACK blocks below the ACK are not used).
    fn sack_update(&mut self, ack: SeqNumber, seg: &TcpRepr) {
        let una = if ack > self.snd_una && ack <= self.snd_max {
            ack
        } else {
            self.snd_una
        };
        for &(l, r) in seg.sack_ranges.iter().flatten() {
            if !(l < r && l >= una && r <= self.snd_max) {
                continue;
            }
            let (mut l, mut r) = (l, r);
            // Absorb every range that overlaps or touches [l, r).
            self.scoreboard.retain(|&(a, b)| {
                if b < l || a > r {
                    true
                } else {
                    l = seq_min(l, a);
                    r = seq_max(r, b);
                    false
                }
            });
            let at = self.scoreboard.partition_point(|&(a, _)| a < l);
            self.scoreboard.insert(at, (l, r));
        }
        // Forget what is now cumulatively acknowledged.
        self.scoreboard.retain(|&(_, b)| b > una);
        if let Some(first) = self.scoreboard.first_mut() {
            first.0 = seq_max(first.0, una);
        }
        if self.scoreboard.len() > SCOREBOARD_MAX {
            // Keep the lowest ranges: they bound the holes retransmitted first.
            self.scoreboard.truncate(SCOREBOARD_MAX);
        }
    }

    /// RFC 6675 §4 "pipe": what is still in the network. Bytes above the highest
    /// SACKed byte are in flight; un-SACKed bytes below it are lost unless this
    /// recovery retransmitted them (below HighRxt), when they are in flight again.
    fn pipe(&self) -> usize {
        let Some(&(_, high_sack)) = self.scoreboard.last() else {
            return self.flight();
        };
        let above = (self.snd_max - high_sack).max(0) as usize;
        let limit = seq_min(self.high_rxt, high_sack);
        let mut rexmitted = 0usize;
        let mut at = self.snd_una;
        for &(l, r) in &self.scoreboard {
            if at >= limit {
                break;
            }
            if at < l {
                rexmitted += (seq_min(l, limit) - at).max(0) as usize;
            }
            at = seq_max(at, r);
        }
        above + rexmitted
    }

    /// The next hole to retransmit (RFC 6675 NextSeg rule 1): its start and
    /// length, at or above HighRxt and below the highest SACKed byte.
    fn next_hole(&self) -> Option<(SeqNumber, usize)> {
        let high_sack = self.scoreboard.last()?.1;
        let mut at = seq_max(self.snd_una, self.high_rxt);
        for &(l, r) in &self.scoreboard {
            if at >= high_sack {
                return None;
            }
            if at < l {
                return Some((at, (l - at) as usize));
            }
            at = seq_max(at, r);
        }
        None
    }

    /// Payload that fits the next segment: the MSS less the SACK blocks it will
    /// carry (as Linux's tcp_current_mss), so a data segment never outgrows the MTU.
    fn cur_mss(&self) -> usize {
        if !self.sack_ok || self.ooo.is_empty() {
            return self.mss;
        }
        let room = if self.ts_ok { 3 } else { 4 };
        let blocks = self.ooo.sack_ranges(None, room).len();
        self.mss.saturating_sub(4 + 8 * blocks).max(16)
    }

    fn base(&mut self, now: Instant, seq: SeqNumber, flags: TcpFlags) -> OutSegment {
        let ts = self.ts_ok.then(|| (self.ts_now(now), self.ts_recent));
        let window = self.window_field();
        let mut sack = [None; 4];
        if self.sack_ok && !self.ooo.is_empty() {
            // RFC 2018 §4: the block holding the latest segment first.
            for (slot, (s, e)) in sack
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
        let seg = self.next_segment_inner(now, cfg)?;
        self.segs_out += 1;
        if seg.flags.contains(TcpFlags::ACK) {
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_bytes = 0;
        }
        Some(seg)
    }

    fn next_segment_inner(&mut self, now: Instant, cfg: &TcpConfig) -> Option<OutSegment> {
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
                        if self.snd_shift > 0 || self.rcv_shift > 0 {
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
        // Fast retransmit / NewReno partial ACK: one segment at snd_una.
        if self.rexmit_once {
            self.rexmit_once = false;
            let len = self.send.len().min(self.cur_mss());
            let fin = self.fin_queued && !self.fin_acked() && self.snd_una + len == self.fin_seq();
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
                    s.flags.insert(TcpFlags::PSH);
                }
                self.total_retrans += 1;
                self.high_rxt = seq_max(self.high_rxt, self.snd_una + len);
                self.rto_at = Some(now + self.rtt.rto());
                return Some(s);
            }
        }
        // SACK-based recovery (RFC 6675 §5): while the data in flight ("pipe")
        // leaves room in cwnd, retransmit the next hole below the highest SACKed
        // byte, else send new data (below).
        let sack_room = if self.cc.in_recovery && self.cc.sack_recovery {
            let room = self.cc.cwnd.saturating_sub(self.pipe());
            if room >= self.mss.min(self.send.len()).max(1) {
                if let Some((seq, hole)) = self.next_hole() {
                    let off = (seq - self.snd_una).max(0) as usize;
                    let len = hole
                        .min(self.cur_mss())
                        .min(self.send.len().saturating_sub(off));
                    if len > 0 {
                        let mut s = self.base(now, seq, TcpFlags::ACK | TcpFlags::PSH);
                        s.data_off = off;
                        s.data_len = len;
                        self.total_retrans += 1;
                        self.high_rxt = seq + len;
                        return Some(s);
                    }
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
        let wnd = self.snd_wnd.min(self.cc.cwnd);
        let usable = match sack_room {
            // In SACK recovery cwnd bounds the pipe, not snd_nxt − snd_una.
            Some(room) => room.min(self.snd_wnd.saturating_sub(in_flight)),
            None => wnd.saturating_sub(in_flight),
        };
        let cur_mss = self.cur_mss();
        let mut len = unsent.min(usable).min(cur_mss);
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

    /// Earliest timer deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.rto_at,
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

    /// Arm the keepalive timer if enabled and idle (called after activity).
    pub fn refresh_keepalive(&mut self) {
        if self.keepalive && self.state == TcpState::Established {
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
                self.cc.on_rto(flight, self.snd_max);
                self.dupacks = 0;
                // RFC 2018 §8: after a timeout the SACK state is not trusted.
                self.scoreboard.clear();
                // Go back: resend from snd_una (RFC 6298 §5.4).
                self.snd_nxt = self.snd_una;
                if matches!(self.state, TcpState::SynSent | TcpState::SynReceived) {
                    self.snd_nxt = self.iss;
                }
                self.rto_events += 1;
            }
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            if self.send.len() > self.flight() {
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
            if self.keepalive && self.state == TcpState::Established {
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

    pub fn info(&self) -> TcpInfo {
        TcpInfo {
            state: Some(self.state),
            rtt_us: self.rtt.srtt().map_or(0, |d| d.as_micros() as u64),
            rttvar_us: self.rtt.rttvar().as_micros() as u64,
            rto_us: self.rtt.rto().as_micros() as u64,
            cwnd: self.cc.cwnd,
            ssthresh: (self.cc.ssthresh != usize::MAX).then_some(self.cc.ssthresh),
            snd_mss: self.mss,
            rcv_mss: self.peer_mss,
            bytes_sent: self.bytes_sent,
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            segs_out: self.segs_out,
            segs_in: self.segs_in,
            total_retrans: self.total_retrans,
            retransmits: self.retries,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.window_bytes(),
            snd_wscale: self.snd_shift,
            rcv_wscale: self.rcv_shift,
            timestamps: self.ts_ok,
            congestion: "reno",
            rto_events: self.rto_events,
            recoveries: 0,
            dsack_dups: 0,
            reord_seen: 0,
            pacing_rate: 0,
            rcv_buf: self.recv_cap,
            snd_buf: self.send_cap,
        }
    }

    /// Readable: data queued, or end of stream.
    pub fn readable(&self) -> bool {
        !self.recv.is_empty() || self.fin_received
    }

    /// Bytes not yet acknowledged by the peer (ss Send-Q).
    pub fn send_queue(&self) -> usize {
        self.send.len()
    }
}

#[cfg(test)]
mod send_buf_tests {
    use super::SendBuf;

    #[test]
    fn ring_wraps_grows_and_slices() {
        let mut b = SendBuf::default();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        b.push(&data[..3000]);
        assert_eq!(b.len(), 3000);
        b.consume(2500);
        // Wraps inside the 4096-byte ring.
        b.push(&data[3000..6000]);
        assert_eq!(b.len(), 3500);
        assert_eq!(&*b.slice(0, 3500), &data[2500..6000]);
        assert_eq!(&*b.slice(1000, 100), &data[3500..3600]);
        // Grows while wrapped, keeping order.
        b.push(&data[6000..10_000]);
        assert_eq!(&*b.slice(0, 7500), &data[2500..10_000]);
        b.consume(7500);
        assert_eq!(b.len(), 0);
        assert!(b.slice(0, 0).is_empty());
    }
}
