//! Stack-wide memory accounting, after Linux's tcp_mem / udp_mem
//! (net/core/sock.c __sk_mem_raise_allocated, net/ipv4/tcp.c
//! tcp_enter_memory_pressure).
//!
//! What is charged is what berth holds, in bytes:
//! - TCP: payload bytes in receive queues and send buffers, plus out-of-order
//!   data with [`OFO_RANGE_OVERHEAD`] per stored range (so a flood of one-byte
//!   segments is bounded too, as Linux charges skb truesize). Connections in an
//!   accept queue are ordinary sockets and are charged the same way; SYN-queue
//!   entries hold no data and are bounded by `max_syn_backlog` instead.
//! - Datagrams (UDP and raw): payload plus a fixed per-datagram overhead, the
//!   same sum each socket's SO_RCVBUF is checked against.
//! - IP reassembly keeps its own cap (`Config::reassembly_mem`) and is reported
//!   beside the others, as Linux's sockstat reports FRAG memory.
//!
//! TCP keeps a running total, updated whenever a connection's buffers may have
//! changed (`Stack::tcp_mem_sync`), so admission decisions never scan sockets.

use crate::config::{MemLimits, PAGE_SIZE};

/// Charged per out-of-order range on top of its bytes: the map node and the
/// allocation holding the range.
pub const OFO_RANGE_OVERHEAD: usize = 64;

/// How far TCP may go above `tcp_mem.high`: in-order data arriving on a
/// connection whose receive queue is empty is accepted even above the high
/// mark (Linux sk_forced_mem_schedule in tcp_data_queue), so a reader blocked
/// on an empty queue can always make progress, but only while the whole stack
/// is less than this many bytes over. Total TCP memory never exceeds
/// `tcp_mem.high × PAGE_SIZE + TCP_FORCED_SLACK`.
pub const TCP_FORCED_SLACK: usize = 64 * 1024;

/// Linux's guaranteed minimum per socket under pressure (`tcp_rmem[0]` /
/// `tcp_wmem[0]`): a socket holding less than this is never refused below the
/// high mark.
const SOCK_MEM_MIN: usize = 4096;

/// One pool (TCP or datagrams): bytes charged and the pressure state.
#[derive(Debug, Clone)]
pub(crate) struct MemPool {
    pub limits: MemLimits,
    pub bytes: usize,
    pub pressure: bool,
    /// Highest `bytes` ever, for tests and operators.
    pub peak: usize,
}

impl MemPool {
    pub fn new(limits: MemLimits) -> MemPool {
        MemPool {
            limits,
            bytes: 0,
            pressure: false,
            peak: 0,
        }
    }

    /// Replace `old` charged bytes by `new`. Returns true when this entered
    /// memory pressure: above `pressure` pages; left only below `low` pages
    /// (Linux sk_enter_memory_pressure / sk_leave_memory_pressure).
    pub fn adjust(&mut self, old: usize, new: usize) -> bool {
        self.bytes = self.bytes.saturating_sub(old).saturating_add(new);
        self.peak = self.peak.max(self.bytes);
        let pages = self.pages();
        if !self.pressure && pages > self.limits.pressure {
            self.pressure = true;
            return true;
        }
        if self.pressure && pages < self.limits.low {
            self.pressure = false;
        }
        false
    }

    /// Charged memory in whole pages (rounded up, as Linux counts pages).
    pub fn pages(&self) -> usize {
        self.bytes.div_ceil(PAGE_SIZE)
    }

    /// Bytes left below the high mark.
    pub fn free(&self) -> usize {
        self.limits.high_bytes().saturating_sub(self.bytes)
    }

    /// At or above the high mark: nothing new may be allocated.
    pub fn exhausted(&self) -> bool {
        self.free() == 0
    }

    /// Bytes a socket already holding `own` may add now. Below pressure: up to
    /// the high mark. Under pressure, a socket keeps growing only within its
    /// fair share, high / sockets, or while it holds less than SOCK_MEM_MIN
    /// (Linux __sk_mem_raise_allocated). `sockets` is every open socket (Linux
    /// counts TCP sockets only; counting all is stricter and needs no tally).
    pub fn room(&self, own: usize, sockets: usize) -> usize {
        let free = self.free();
        if !self.pressure {
            return free;
        }
        let fair = self.limits.high_bytes() / sockets.max(1);
        let share = fair.max(SOCK_MEM_MIN).saturating_sub(own);
        free.min(share)
    }

    /// Room for a forced allocation (see [`TCP_FORCED_SLACK`]).
    pub fn forced_room(&self) -> usize {
        (self.limits.high_bytes() + TCP_FORCED_SLACK).saturating_sub(self.bytes)
    }
}

/// Stack-wide memory in use, what [`crate::Stack::memory`] returns: the
/// numbers of Linux's /proc/net/sockstat `mem` fields, in bytes and pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryUsage {
    /// TCP bytes charged now (see the module docs for what counts).
    pub tcp_bytes: usize,
    /// The same in pages, rounded up (sockstat "TCP: … mem N").
    pub tcp_pages: usize,
    /// Largest TCP charge seen since the stack started.
    pub tcp_peak: usize,
    /// tcp_mem limits in effect.
    pub tcp_limits: MemLimits,
    /// TCP memory pressure (Linux tcp_memory_pressure).
    pub tcp_pressure: bool,
    /// UDP and raw receive-queue bytes charged now.
    pub udp_bytes: usize,
    /// UDP and raw receive-queue bytes in pages, rounded up.
    pub udp_pages: usize,
    /// Largest UDP and raw charge seen since the stack started.
    pub udp_peak: usize,
    /// udp_mem limits in effect.
    pub udp_limits: MemLimits,
    /// Above udp_mem's pressure mark (Linux has no UDP pressure mode; shown
    /// for the operator only).
    pub udp_pressure: bool,
    /// Bytes held by partially reassembled datagrams (sockstat "FRAG: memory").
    pub frag_bytes: usize,
    /// Their cap, `Config::reassembly_mem`.
    pub frag_limit: usize,
    /// Datagrams waiting for fragments (sockstat "FRAG: inuse").
    pub frag_pending: usize,
    /// Of those, IPv6 datagrams (sockstat6 "FRAG6: inuse").
    pub frag6_pending: usize,
}

impl MemoryUsage {
    /// The most TCP may ever hold: the high mark plus [`TCP_FORCED_SLACK`].
    pub fn tcp_ceiling(&self) -> usize {
        self.tcp_limits.high_bytes() + TCP_FORCED_SLACK
    }

    /// The most datagram queues may ever hold: the high mark, exactly.
    pub fn udp_ceiling(&self) -> usize {
        self.udp_limits.high_bytes()
    }

    /// Every pool within its ceiling — the invariant tests and fuzzers assert.
    pub fn within_limits(&self) -> bool {
        self.tcp_bytes <= self.tcp_ceiling()
            && self.udp_bytes <= self.udp_ceiling()
            && self.frag_bytes <= self.frag_limit
    }
}

/// One socket's memory, the fields of iproute2 `ss -m`
/// `skmem:(r…,rb…,t…,tb…,f…,w…,o…,bl…,d…)` (Linux SK_MEMINFO_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkMem {
    /// r: receive memory held (queued data, out-of-order data, datagrams).
    pub rmem_alloc: usize,
    /// rb: receive buffer size (SO_RCVBUF, grown by autotuning).
    pub rcvbuf: usize,
    /// t: transmit memory held. berth copies segments out at once, so this is
    /// its send buffer (unacknowledged and unsent bytes), as `w`.
    pub wmem_alloc: usize,
    /// tb: send buffer size (SO_SNDBUF).
    pub sndbuf: usize,
    /// f: memory reserved ahead (berth reserves none).
    pub fwd_alloc: usize,
    /// w: bytes queued for sending.
    pub wmem_queued: usize,
    /// o: option memory (none in berth).
    pub optmem: usize,
    /// bl: backlog (berth processes each packet at once: 0).
    pub backlog: usize,
    /// d: packets dropped for want of buffer or stack memory.
    pub drops: u64,
}

impl SkMem {
    /// The iproute2 text: `skmem:(r0,rb131072,t0,tb87040,f0,w0,o0,bl0,d0)`.
    pub fn ss_format(&self) -> String {
        format!(
            "skmem:(r{},rb{},t{},tb{},f{},w{},o{},bl{},d{})",
            self.rmem_alloc,
            self.rcvbuf,
            self.wmem_alloc,
            self.sndbuf,
            self.fwd_alloc,
            self.wmem_queued,
            self.optmem,
            self.backlog,
            self.drops
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> MemPool {
        MemPool::new(MemLimits::new(2, 4, 8).unwrap())
    }

    #[test]
    fn pressure_enters_above_pressure_and_leaves_below_low() {
        let mut p = pool();
        assert!(!p.adjust(0, 4 * PAGE_SIZE), "4 pages is not above 4");
        assert!(!p.pressure);
        assert!(p.adjust(0, 1), "one byte more: 5 pages");
        assert!(p.pressure);
        // Back to 3 pages: still under pressure (hysteresis).
        assert!(!p.adjust(2 * PAGE_SIZE, 0));
        assert_eq!(p.pages(), 3);
        assert!(p.pressure);
        // 2 pages is not below low = 2.
        p.adjust(PAGE_SIZE, 0);
        assert_eq!(p.pages(), 2);
        assert!(p.pressure);
        p.adjust(1, 0);
        assert_eq!(p.pages(), 1);
        assert!(!p.pressure);
        // Entering again counts again.
        assert!(p.adjust(0, 4 * PAGE_SIZE));
        assert_eq!(p.peak, 5 * PAGE_SIZE);
    }

    #[test]
    fn room_is_the_fair_share_under_pressure() {
        let mut p = pool();
        assert_eq!(p.room(0, 100), 8 * PAGE_SIZE);
        p.adjust(0, 5 * PAGE_SIZE);
        assert!(p.pressure);
        // Fair share 8 pages / 4 sockets = 2 pages.
        assert_eq!(p.room(0, 4), 2 * PAGE_SIZE);
        assert_eq!(p.room(PAGE_SIZE, 4), PAGE_SIZE);
        assert_eq!(p.room(3 * PAGE_SIZE, 4), 0);
        // Tiny shares still get the minimum, within what is free.
        assert_eq!(p.room(0, 1000), SOCK_MEM_MIN);
        p.adjust(0, 3 * PAGE_SIZE);
        assert!(p.exhausted());
        assert_eq!(p.room(0, 1), 0);
        assert_eq!(p.forced_room(), TCP_FORCED_SLACK);
    }

    #[test]
    fn limits_parse_like_sysctl() {
        let l: MemLimits = "1,2,3".parse().unwrap();
        assert_eq!(l, MemLimits::new(1, 2, 3).unwrap());
        let l: MemLimits = "10 20 30".parse().unwrap();
        assert_eq!(l.high_bytes(), 30 * PAGE_SIZE);
        assert!("1,2".parse::<MemLimits>().is_err());
        assert!("3,2,1".parse::<MemLimits>().is_err());
        assert!("0,1,2".parse::<MemLimits>().is_err());
        assert!("a,b,c".parse::<MemLimits>().unwrap_err().contains("'a'"));
    }

    #[test]
    fn skmem_text_is_iproute2s() {
        let m = SkMem {
            rcvbuf: 131_072,
            sndbuf: 87_040,
            ..SkMem::default()
        };
        assert_eq!(
            m.ss_format(),
            "skmem:(r0,rb131072,t0,tb87040,f0,w0,o0,bl0,d0)"
        );
    }
}
