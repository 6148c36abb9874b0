//! One structure for every timer in the stack: a binary heap ordered by deadline.
//! Entries are never searched or removed early; a fired entry checks that the state
//! it refers to still wants it (lazy cancellation), so arming is O(log n) and no
//! operation scans all connections.

use crate::iface::IfaceId;
use crate::socket::SocketHandle;
use crate::table::FourTuple;
use crate::time::Instant;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A TCP connection's earliest deadline (RTO, delayed ACK, persist, keepalive,
    /// TIME-WAIT); the connection checks which are due.
    Tcp(SocketHandle),
    /// Retransmit the SYN-ACK of a half-open connection on a listener.
    SynAck(SocketHandle, FourTuple),
    /// A neighbour cache entry's deadline (solicitation retransmit, DELAY, PROBE);
    /// the entry checks whether it still wants it.
    Neighbor(IfaceId, IpAddr),
    /// Duplicate Address Detection of a tentative IPv6 address: next
    /// solicitation, or done.
    Dad(IfaceId, std::net::Ipv6Addr),
    /// Next router solicitation of an autoconfiguring interface.
    RouterSolicit(IfaceId),
    /// An IPv6 address or default router of the interface reaches the end of
    /// a lifetime.
    Lifetimes(IfaceId),
    /// Drop partial datagrams whose fragments stopped arriving. One is armed at a
    /// time, for the oldest partial datagram (see `Stack::arm_reassembly_timer`).
    Reassembly,
    /// Drop expired path MTU entries. One is armed at a time, for the oldest
    /// entry (see `Stack::pmtu_timer`).
    Pmtu,
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    seq: u64,
}

impl TimerQueue {
    /// Every armed entry, in no order (for `Stack::check_invariants`).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Instant, Timer)> + '_ {
        self.heap.iter().map(|Reverse((at, _, t))| (*at, *t))
    }

    pub fn arm(&mut self, at: Instant, t: Timer) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, t)));
    }
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }
    /// Pop one timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e.2),
            _ => None,
        }
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}
