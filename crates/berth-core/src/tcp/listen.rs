//! Passive open: the listen backlog as BSD and Linux keep it, two queues per
//! listening socket.
//!
//! - The **SYN queue** holds half-open connections (a SYN arrived, our SYN-ACK is
//!   out, the handshake is not finished) as small entries, not full sockets. Each
//!   retransmits its SYN-ACK with exponential backoff (1 s, 2 s, 4 s, …) and is
//!   dropped after `synack_retries`. Its size is bounded by
//!   min(backlog, `max_syn_backlog`) — at least 8.
//! - The **accept queue** holds established connections not yet accepted, bounded
//!   by the backlog.
//!
//! Overflow follows Linux (net.ipv4.tcp_abort_on_overflow = 0): when the accept
//! queue is full, a completing ACK is dropped (the entry stays in the SYN queue and
//! its SYN-ACK is retransmitted, so the client's ACK comes again later) and new
//! SYNs go unanswered (the client retransmits its SYN). Nobody gets a reset; the
//! drops are counted in `tcp_listen_overflows` / `tcp_listen_drops`.
//!
//! A full SYN queue does not lock clients out: with `TcpConfig::syncookies` at
//! its default, a SYN that finds it full is answered with a SYN cookie
//! (`cookie.rs`) and no state; the final ACK recreates the connection straight
//! into the accept queue. And as Linux's reqsk_timer_handler does, a queue more
//! than half full gives its old entries fewer SYN-ACK retransmissions (down to
//! 2), so a flood of never-answered SYNs clears out in 7 s instead of 63 s.

use super::conn::{SynOptions, Tcb};
use super::cookie::{self, SynCookies};
use super::socket::*;
use crate::socket::SocketHandle;
use crate::stack::{Socket, Stack};
use crate::table::FourTuple;
use crate::time::Instant;
use crate::timer::Timer;
use berth_wire::{SeqNumber, TcpFlags, TcpRepr};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub(crate) struct SynEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub iss: SeqNumber,
    pub irs: SeqNumber,
    pub opts: SynOptions,
    /// The window of the peer's SYN (unscaled).
    pub window: u16,
    pub retries: u32,
    pub next_at: Instant,
    pub ts_offset: u32,
    /// The listener's receive buffer: fixes the window scale we offer.
    pub recv_cap: usize,
    /// The listener's SO_RCVBUF was set (fixes the window scale to it).
    pub rcv_locked: bool,
    /// MTU the MSS we offer comes from (lowered by the listener's TCP_MAXSEG).
    pub mtu: usize,
    /// Answered with a cookie: not queued; the timestamp carries options.
    pub cookie: bool,
    /// The listener's IP_TTL: the SYN-ACK carries it, as the connection's
    /// segments will (Linux sends the SYN-ACK with the listener's uc_ttl).
    pub ttl: Option<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct Listener {
    pub backlog: usize,
    pub syn_queue: HashMap<FourTuple, SynEntry>,
    pub accept_queue: VecDeque<SocketHandle>,
    /// SYN-queue entries whose SYN-ACK was never retransmitted (Linux
    /// qlen_young): under a flood these are the few worth waiting for.
    pub young: usize,
    /// When this listener last sent a SYN cookie: only then are ACKs checked
    /// for cookies (Linux tcp_synq_no_recent_overflow).
    pub last_cookie: Option<Instant>,
    /// Set on the stack's TCP forwarder (`forward.rs`): SYNs wait for the
    /// application's decision before any SYN-ACK.
    pub forward: Option<crate::forward::TcpForward>,
}

impl Listener {
    pub fn new(backlog: usize) -> Self {
        Listener {
            backlog,
            ..Listener::default()
        }
    }

    /// Linux's sk_acceptq_is_full: full only when the queue holds *more* than
    /// the backlog, so `listen(fd, n)` queues n + 1 connections (and backlog 0
    /// still admits one).
    pub fn accept_full(&self) -> bool {
        self.accept_queue.len() > self.backlog
    }

    /// The SYN queue as `ss` rows (SYN-RECV, sorted by peer), under handle `h`
    /// of their listener.
    pub fn half_open_rows(
        &self,
        h: SocketHandle,
        family: crate::socket::Family,
    ) -> Vec<crate::socket::SocketInfo> {
        let mut rows: Vec<_> = self
            .syn_queue
            .values()
            .map(|e| crate::socket::SocketInfo {
                handle: h,
                kind: crate::socket::SocketKind::Tcp,
                state: super::TcpState::SynReceived.ss_name(),
                recv_q: 0,
                send_q: 0,
                local: family.user_addr(e.local),
                peer: Some(family.user_addr(e.remote)),
                drops: 0,
                tcp: None,
                mem: Default::default(),
            })
            .collect();
        rows.sort_by_key(|r| r.peer);
        rows
    }

    pub fn syn_full(&self, max_syn_backlog: usize) -> bool {
        self.syn_queue.len() >= self.backlog.min(max_syn_backlog).max(8)
    }

    fn remove_half_open(&mut self, tuple: &FourTuple) -> Option<SynEntry> {
        let e = self.syn_queue.remove(tuple)?;
        if e.retries == 0 {
            self.young -= 1;
        }
        Some(e)
    }

    /// SYN-ACK retransmissions an entry gets now (Linux reqsk_timer_handler):
    /// when the queue is more than half the backlog, one fewer for each
    /// halving of the young share, down to 2. Under a flood nearly nothing is
    /// young, so entries go after 2 retransmissions (7 s) instead of 5 (63 s).
    fn synack_retries(&self, configured: u32) -> u32 {
        let qlen = self.syn_queue.len();
        let mut max = configured;
        if qlen * 2 > self.backlog.max(8) {
            let mut young = self.young * 2;
            while max > 2 && qlen >= young {
                max -= 1;
                young *= 2;
            }
        }
        max
    }
}

impl Stack {
    /// A segment for a listening socket (RFC 9293 §3.10.7.2).
    pub(super) fn tcp_listen_input(
        &mut self,
        now: Instant,
        h: SocketHandle,
        tuple: FourTuple,
        seg: &TcpRepr,
    ) {
        let f = seg.flags;
        let entry = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => t
                .listener
                .as_ref()
                .and_then(|l| l.syn_queue.get(&tuple).cloned()),
            _ => None,
        };
        if f.contains(TcpFlags::RST) {
            if let Some(e) = entry {
                self.syn_queue_rst(now, h, tuple, &e, seg);
            } else {
                self.tcp_forward_rst(h, tuple, seg.seq_number);
            }
            return;
        }
        let (local, remote) = (tuple.local(), tuple.remote());
        if let Some(e) = entry {
            if f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
                // Retransmitted SYN: answer with the same SYN-ACK.
                if seg.seq_number == e.irs {
                    self.tcp_send_synack(now, &e);
                }
                return;
            }
            if !f.contains(TcpFlags::ACK) {
                return;
            }
            if seg.ack_number != e.iss + 1 {
                self.tcp_send_rst(now, local, remote, seg.ack_number, None);
                return;
            }
            if seg.seq_number != e.irs + 1 {
                // Not the next sequence number: re-ACK with a SYN-ACK later; drop.
                return;
            }
            self.tcp_complete_handshake(now, h, tuple, e, seg);
            return;
        }
        if f.contains(TcpFlags::ACK) {
            if !f.contains(TcpFlags::SYN) && self.tcp_cookie_ack(now, h, tuple, seg) {
                return;
            }
            // RFC 9293: an ACK to a listener with no half-open entry gets a reset.
            self.tcp_send_rst(now, local, remote, seg.ack_number, None);
            return;
        }
        if !f.contains(TcpFlags::SYN) {
            return;
        }
        if f.contains(TcpFlags::FIN) {
            // SYN+FIN opens nothing: Linux drops it in LISTEN (tcp_rcv_state_process).
            self.stats.tcp_in_errs += 1;
            return;
        }
        let (accept_full, syn_full, recv_cap, rcv_locked, forwarder) = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => match &t.listener {
                Some(l) => (
                    l.accept_full(),
                    l.syn_full(self.config.tcp.max_syn_backlog),
                    t.recv_cap,
                    t.rcvbuf_locked,
                    l.forward.is_some(),
                ),
                None => return,
            },
            _ => return,
        };
        // Linux tcp_conn_request: cookies when asked to always, or when the
        // SYN queue is full; a full accept queue drops the SYN either way.
        // The forwarder's application decides first (forward.rs): its limit
        // replaces the queues', and no cookies, which answer at once.
        let want_cookie = !forwarder
            && match self.config.tcp.syncookies {
                SynCookies::Off => false,
                SynCookies::OnOverflow => syn_full,
                SynCookies::Always => true,
            };
        if syn_full && !want_cookie && !forwarder {
            self.stats.tcp_req_q_full_drop += 1;
            self.stats.tcp_listen_drops += 1;
            return;
        }
        if accept_full && !forwarder {
            self.stats.tcp_listen_overflows += 1;
            self.stats.tcp_listen_drops += 1;
            return;
        }
        let iss = if want_cookie {
            self.cookies
                .make(now, &tuple, seg.seq_number, seg.max_seg_size)
        } else {
            self.isn.isn(now, &tuple)
        };
        let mut opts = SynOptions::of(seg);
        if want_cookie && (opts.timestamp.is_none() || !self.config.tcp.timestamps) {
            // Nowhere to keep window scale and SACK-permitted: offer neither,
            // or the peer would scale windows we cannot (Linux
            // tcp_clear_options in tcp_conn_request).
            opts.window_scale = None;
            opts.sack_permitted = false;
        }
        let entry = SynEntry {
            local,
            remote,
            iss,
            irs: seg.seq_number,
            opts,
            window: seg.window_len,
            retries: 0,
            next_at: now + self.config.tcp.rto_initial,
            ts_offset: self.isn.ts_offset(&tuple),
            recv_cap,
            rcv_locked,
            mtu: self.tcp_mtu(h, remote.ip()),
            cookie: want_cookie,
            ttl: self.tcp_own_ttl(h),
        };
        if forwarder {
            self.tcp_forward_syn(h, tuple, entry);
            return;
        }
        self.tcp_send_synack(now, &entry);
        if want_cookie {
            self.stats.tcp_syncookies_sent += 1;
            if syn_full {
                self.stats.tcp_req_q_full_do_cookies += 1;
            }
            if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
                if let Some(l) = &mut t.listener {
                    l.last_cookie = Some(now);
                }
            }
            return;
        }
        self.tcp_syn_queue_add(h, tuple, entry);
    }

    /// A SYN-ACK is out for `entry`: it waits in `h`'s SYN queue, its
    /// retransmission timer armed (a listener's new SYN, or a request the
    /// forwarder's application accepted).
    pub(crate) fn tcp_syn_queue_add(&mut self, h: SocketHandle, tuple: FourTuple, entry: SynEntry) {
        crate::trace::tcp_state(
            std::net::SocketAddr::new(tuple.local_addr, tuple.local_port),
            std::net::SocketAddr::new(tuple.remote_addr, tuple.remote_port),
            super::TcpState::Listen,
            super::TcpState::SynReceived,
        );
        self.timers.arm(entry.next_at, Timer::SynAck(h, tuple));
        if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
            if let Some(l) = &mut t.listener {
                l.syn_queue.insert(tuple, entry);
                l.young += 1;
            }
        }
        self.stats.tcp_passive_opens += 1;
    }

    /// An ACK to a listener with no half-open entry: if it returns a valid SYN
    /// cookie, recreate the connection (Linux cookie_v4_check). Checked only
    /// while the listener has sent cookies recently. True when the segment
    /// was dealt with (a connection made, or dropped quietly); false: reset.
    fn tcp_cookie_ack(
        &mut self,
        now: Instant,
        h: SocketHandle,
        tuple: FourTuple,
        seg: &TcpRepr,
    ) -> bool {
        if self.config.tcp.syncookies == SynCookies::Off {
            return false;
        }
        let (recv_cap, rcv_locked) = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => match &t.listener {
                Some(l) if l.last_cookie.is_some_and(|at| now - at <= cookie::RECENT) => {
                    (t.recv_cap, t.rcvbuf_locked)
                }
                _ => return false,
            },
            _ => return false,
        };
        let irs = seg.seq_number - 1;
        let iss = seg.ack_number - 1;
        let Some(mss) = self.cookies.check(now, &tuple, irs, iss) else {
            self.stats.tcp_syncookies_failed += 1;
            // A segment with data or FIN is most likely from a client whose
            // cookie ACK was lost or dropped on a full accept queue: it
            // believes it is connected and sent on, so only its first
            // segment (SEQ = IRS + 1) still names the cookie. A reset would
            // kill it; dropping it lets its retransmission from SEQ = IRS + 1
            // revalidate once there is room. (Linux resets here.) A bare
            // forged or stale ACK still gets its reset.
            return !seg.payload.is_empty() || seg.flags.contains(TcpFlags::FIN);
        };
        // The options the SYN had come back in the echoed timestamp; without
        // timestamps the connection has no window scaling and no SACK.
        let ts_offset = self.isn.ts_offset(&tuple);
        let cfg = &self.config.tcp;
        let (window_scale, sack_permitted, timestamp) = match seg.timestamp {
            Some((val, ecr)) if cfg.timestamps => {
                let (ws, sack) = cookie::decode_ts(ecr.wrapping_sub(ts_offset));
                (
                    ws.filter(|_| cfg.window_scaling),
                    sack && cfg.sack,
                    Some((val, ecr)),
                )
            }
            _ => (None, false, None),
        };
        self.stats.tcp_syncookies_recv += 1;
        let e = SynEntry {
            local: tuple.local(),
            remote: tuple.remote(),
            iss,
            irs,
            opts: SynOptions {
                mss: Some(mss),
                window_scale,
                timestamp,
                sack_permitted,
            },
            // The SYN's window is gone; the ACK's, scaled, is applied when
            // the ACK itself is processed as the connection's first segment.
            window: 0,
            retries: 0,
            next_at: now,
            ts_offset,
            recv_cap,
            rcv_locked,
            mtu: self.tcp_mtu(h, tuple.remote_addr),
            cookie: true,
            ttl: self.tcp_own_ttl(h),
        };
        self.tcp_complete_handshake(now, h, tuple, e, seg);
        true
    }

    /// A reset for a half-open connection (SYN-RECEIVED). RFC 5961 §3.2 holds in
    /// every state but SYN-SENT: only a RST at RCV.NXT removes the entry; one
    /// elsewhere in the window our SYN-ACK offered draws a challenge ACK; others
    /// are dropped. (Linux's tcp_check_req drops the request on any in-window RST.)
    fn syn_queue_rst(
        &mut self,
        now: Instant,
        h: SocketHandle,
        tuple: FourTuple,
        e: &SynEntry,
        seg: &TcpRepr,
    ) {
        let nxt = e.irs + 1;
        let wnd = e.recv_cap.min(65_535);
        if seg.seq_number == nxt {
            if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
                if let Some(l) = &mut t.listener {
                    l.remove_half_open(&tuple);
                }
            }
            self.tcp_forward_wake(h);
        } else if seg.seq_number > nxt && seg.seq_number < nxt + wnd {
            if self.challenge_bucket.take(now) {
                self.stats.tcp_challenge_acks += 1;
                self.send_syn_queue_ack(now, e);
            } else {
                self.stats.tcp_challenge_ack_limited += 1;
            }
        } else {
            self.stats.tcp_out_of_window += 1;
        }
    }

    /// `<SEQ=ISS+1><ACK=IRS+1><CTL=ACK>` for a half-open connection, as Linux's
    /// tcp_v4_reqsk_send_ack.
    fn send_syn_queue_ack(&mut self, now: Instant, e: &SynEntry) {
        let cfg = &self.config.tcp;
        let (_, ws) = Tcb::our_syn_options(cfg, e.mtu, e.recv_cap, e.rcv_locked);
        let shift = if e.opts.window_scale.is_some() && cfg.window_scaling {
            ws
        } else {
            0
        };
        let mut r = TcpRepr::new(e.local.port(), e.remote.port(), e.iss + 1, TcpFlags::ACK);
        r.ack_number = e.irs + 1;
        r.window_len = (e.recv_cap >> shift).min(65_535) as u16;
        r.timestamp = self.synack_timestamp(now, e);
        self.tcp_emit(now, e.local.ip(), e.remote.ip(), &r, e.ttl);
    }

    /// The timestamp option of our segments for a half-open connection.
    fn synack_timestamp(&self, now: Instant, e: &SynEntry) -> Option<(u32, u32)> {
        let cfg = &self.config.tcp;
        if !cfg.timestamps {
            return None;
        }
        let mut ts = now.total_millis() as u32;
        if e.cookie {
            let ws = e.opts.window_scale.filter(|_| cfg.window_scaling);
            ts = cookie::encode_ts(ts, ws, cfg.sack && e.opts.sack_permitted);
        }
        e.opts
            .timestamp
            .map(|(val, _)| (ts.wrapping_add(e.ts_offset), val))
    }

    fn tcp_complete_handshake(
        &mut self,
        now: Instant,
        h: SocketHandle,
        tuple: FourTuple,
        e: SynEntry,
        seg: &TcpRepr,
    ) {
        let (recv_cap, send_cap, template) = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => {
                if t.listener.as_ref().is_some_and(|l| l.accept_full()) {
                    // Linux: drop the ACK, keep the half-open entry; its SYN-ACK
                    // retransmission will provoke another ACK later.
                    self.stats.tcp_listen_overflows += 1;
                    return;
                }
                (
                    t.recv_cap,
                    t.send_cap,
                    (
                        t.nodelay,
                        t.keepalive,
                        t.keep_idle,
                        t.keep_intvl,
                        t.keep_cnt,
                        t.ttl,
                        t.linger,
                        t.congestion,
                        t.rcvbuf_locked,
                        t.sndbuf_locked,
                        t.family,
                    ),
                )
            }
            _ => return,
        };
        if e.cookie {
            self.stats.tcp_passive_opens += 1;
        }
        let mtu = e.mtu;
        let cfg = &self.config.tcp;
        let tcb = Tcb::accepted(
            cfg,
            now,
            e.local,
            e.remote,
            e.iss,
            e.irs,
            e.opts,
            e.window,
            mtu,
            recv_cap,
            send_cap,
            e.ts_offset,
            e.rcv_locked,
        );
        let mut child = self.new_tcp_socket();
        child.recv_cap = recv_cap;
        child.send_cap = send_cap;
        (
            child.nodelay,
            child.keepalive,
            child.keep_idle,
            child.keep_intvl,
            child.keep_cnt,
            child.ttl,
            child.linger,
            child.congestion,
            child.rcvbuf_locked,
            child.sndbuf_locked,
            child.family,
        ) = template;
        child.local = Some(e.local);
        child.tuple = Some(tuple);
        child.parent = Some(h);
        let mut tcb = tcb;
        apply_options(&mut tcb, &child, cfg);
        if e.retries == 0 && !e.cookie {
            // Karn: only an unretransmitted SYN-ACK times the round trip.
            tcb.rtt_sample(now - (e.next_at - cfg.rto_initial));
        }
        child.tcb = Some(Box::new(tcb));
        let c = self.sockets.insert(Socket::Tcp(child));
        if self.tcp_ports.insert_tuple(c, tuple).is_err() {
            self.sockets.remove(c);
            return;
        }
        if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
            if let Some(l) = &mut t.listener {
                l.remove_half_open(&tuple);
                l.accept_queue.push_back(c);
            }
        }
        // The completing ACK may carry data (and even a FIN).
        self.tcp_conn_input(now, c, seg);
        self.tcp_update_events(h);
        self.tcp_forward_wake(h);
    }

    pub(crate) fn tcp_send_synack(&mut self, now: Instant, e: &SynEntry) {
        let (mss, ws) = Tcb::our_syn_options(&self.config.tcp, e.mtu, e.recv_cap, e.rcv_locked);
        let ts = self.synack_timestamp(now, e);
        let mut r = TcpRepr::new(
            e.local.port(),
            e.remote.port(),
            e.iss,
            TcpFlags::SYN | TcpFlags::ACK,
        );
        r.ack_number = e.irs + 1;
        r.window_len = e.recv_cap.min(65_535) as u16;
        r.max_seg_size = Some(mss);
        if e.opts.window_scale.is_some() && self.config.tcp.window_scaling {
            r.window_scale = Some(ws);
        }
        r.timestamp = ts;
        // RFC 2018 §2: only in answer to a SYN that offered it.
        r.sack_permitted = self.config.tcp.sack && e.opts.sack_permitted;
        self.tcp_emit(now, e.local.ip(), e.remote.ip(), &r, e.ttl);
    }

    /// Timer for a SYN queue entry: retransmit the SYN-ACK or give up.
    pub(crate) fn tcp_synack_timer(&mut self, now: Instant, h: SocketHandle, tuple: FourTuple) {
        let rto = self.config.tcp.rto_initial;
        let configured = self.config.tcp.synack_retries;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(l) = &mut t.listener else {
            return;
        };
        let limit = l.synack_retries(configured);
        let Some(e) = l.syn_queue.get_mut(&tuple) else {
            return;
        };
        if e.next_at > now {
            return;
        }
        if e.retries >= limit {
            l.remove_half_open(&tuple);
            self.stats.tcp_synack_timeouts += 1;
            self.tcp_forward_wake(h);
            return;
        }
        if e.retries == 0 {
            l.young -= 1;
        }
        e.retries += 1;
        e.next_at = now + rto * (1u32 << e.retries.min(10));
        let e = e.clone();
        self.stats.tcp_retrans_segs += 1;
        self.tcp_send_synack(now, &e);
        self.timers.arm(e.next_at, Timer::SynAck(h, tuple));
    }
}
