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

use super::conn::SynOptions;
use crate::socket::SocketHandle;
use crate::table::FourTuple;
use crate::time::Instant;
use berth_wire::SeqNumber;
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

    pub fn syn_full(&self, max_syn_backlog: usize) -> bool {
        self.syn_queue.len() >= self.backlog.min(max_syn_backlog).max(8)
    }
}
