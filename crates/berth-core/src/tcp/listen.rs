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

use super::conn::{SynOptions, Tcb};
use super::socket::*;
use crate::socket::SocketHandle;
use crate::stack::{Socket, Stack};
use crate::table::FourTuple;
use crate::time::Instant;
use crate::timer::Timer;
use berth_wire::{SeqNumber, TcpFlags, TcpRepr};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;

#[derive(Debug, Clone)]
pub(crate) struct SynEntry {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
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
}

#[derive(Debug, Default)]
pub(crate) struct Listener {
    pub backlog: usize,
    pub syn_queue: HashMap<FourTuple, SynEntry>,
    pub accept_queue: VecDeque<SocketHandle>,
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
    pub fn half_open_rows(&self, h: SocketHandle) -> Vec<crate::socket::SocketInfo> {
        let mut rows: Vec<_> = self
            .syn_queue
            .values()
            .map(|e| crate::socket::SocketInfo {
                handle: h,
                kind: crate::socket::SocketKind::Tcp,
                state: super::TcpState::SynReceived.ss_name(),
                recv_q: 0,
                send_q: 0,
                local: e.local,
                peer: Some(e.remote),
                drops: 0,
                tcp: None,
                mem: Default::default(),
            })
            .collect();
        rows.sort_by_key(|r| r.peer.map(|p| (u32::from(*p.ip()), p.port())));
        rows
    }

    pub fn syn_full(&self, max_syn_backlog: usize) -> bool {
        self.syn_queue.len() >= self.backlog.min(max_syn_backlog).max(8)
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
            }
            return;
        }
        let local = SocketAddrV4::new(tuple.0, tuple.1);
        let remote = SocketAddrV4::new(tuple.2, tuple.3);
        if let Some(e) = entry {
            if f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
                // Retransmitted SYN: answer with the same SYN-ACK.
                if seg.seq_number == e.irs {
                    self.send_synack(now, &e);
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
        let (accept_full, syn_full, recv_cap, rcv_locked) = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => match &t.listener {
                Some(l) => (
                    l.accept_full(),
                    l.syn_full(self.config.tcp.max_syn_backlog),
                    t.recv_cap,
                    t.rcvbuf_locked,
                ),
                None => return,
            },
            _ => return,
        };
        if accept_full {
            self.stats.tcp_listen_overflows += 1;
            self.stats.tcp_listen_drops += 1;
            return;
        }
        if syn_full {
            self.stats.tcp_listen_drops += 1;
            return;
        }
        let entry = SynEntry {
            local,
            remote,
            iss: self.isn.isn(now, &tuple),
            irs: seg.seq_number,
            opts: SynOptions::of(seg),
            window: seg.window_len,
            retries: 0,
            next_at: now + self.config.tcp.rto_initial,
            ts_offset: self.isn.ts_offset(&tuple),
            recv_cap,
            rcv_locked,
            mtu: self.tcp_mtu(h, *remote.ip()),
        };
        self.send_synack(now, &entry);
        self.timers.arm(entry.next_at, Timer::SynAck(h, tuple));
        if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
            if let Some(l) = &mut t.listener {
                l.syn_queue.insert(tuple, entry);
            }
        }
        self.stats.tcp_passive_opens += 1;
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
                    l.syn_queue.remove(&tuple);
                }
            }
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
        self.tcp_emit(now, *e.local.ip(), *e.remote.ip(), &r, None);
    }

    /// The timestamp option of our segments for a half-open connection.
    fn synack_timestamp(&self, now: Instant, e: &SynEntry) -> Option<(u32, u32)> {
        if !self.config.tcp.timestamps {
            return None;
        }
        e.opts
            .timestamp
            .map(|(val, _)| ((now.total_millis() as u32).wrapping_add(e.ts_offset), val))
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
                    ),
                )
            }
            _ => return,
        };
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
        ) = template;
        child.local = Some(e.local);
        child.tuple = Some(tuple);
        child.parent = Some(h);
        let mut tcb = tcb;
        apply_options(&mut tcb, &child, cfg);
        if e.retries == 0 {
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
                l.syn_queue.remove(&tuple);
                l.accept_queue.push_back(c);
            }
        }
        // The completing ACK may carry data (and even a FIN).
        self.tcp_conn_input(now, c, seg);
        self.tcp_update_events(h);
    }

    fn send_synack(&mut self, now: Instant, e: &SynEntry) {
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
        self.tcp_emit(now, *e.local.ip(), *e.remote.ip(), &r, None);
    }

    /// Timer for a SYN queue entry: retransmit the SYN-ACK or give up.
    pub(crate) fn tcp_synack_timer(&mut self, now: Instant, h: SocketHandle, tuple: FourTuple) {
        let limit = self.config.tcp.synack_retries;
        let rto = self.config.tcp.rto_initial;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(l) = &mut t.listener else {
            return;
        };
        let Some(e) = l.syn_queue.get_mut(&tuple) else {
            return;
        };
        if e.next_at > now {
            return;
        }
        if e.retries >= limit {
            l.syn_queue.remove(&tuple);
            self.stats.tcp_synack_timeouts += 1;
            return;
        }
        e.retries += 1;
        e.next_at = now + rto * (1u32 << e.retries.min(10));
        let e = e.clone();
        self.stats.tcp_retrans_segs += 1;
        self.send_synack(now, &e);
        self.timers.arm(e.next_at, Timer::SynAck(h, tuple));
    }
}
