//! Stack-wide invariants for the whole-stack fuzzers (`berth-fuzz`): the socket
//! table, the demultiplexing tables, listeners' queues, timers and each
//! connection's sequence space and queues agree with one another. Not a public
//! interface: the fuzz harness calls it after every step and panics on an `Err`.

use crate::raw::IPPROTO_RAW;
use crate::stack::{Socket, Stack};
use crate::tcp::TcpState;
use crate::timer::Timer;
use std::collections::BTreeSet;

impl Stack {
    /// Check the stack's internal consistency; `Err` says what is broken. O(n)
    /// in sockets, bindings and timers; for tests and fuzzing only.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let timers: BTreeSet<_> = self.timers.entries().collect();
        let kinds: BTreeSet<_> = timers.iter().map(|(_, t)| *t).collect();
        for (h, s) in self.sockets.iter() {
            let ctx = |e: String| format!("socket {h}: {e}");
            match s {
                Socket::Udp(u) => {
                    let (n, payload) =
                        u.rx.iter()
                            .fold((0, 0), |(n, p), (_, d)| (n + 1, p + d.len()));
                    if u.rx_payload != payload || u.rx_charged < payload + n {
                        return Err(ctx(format!(
                            "UDP queue of {n} datagrams / {payload} bytes, counted {} / charged {}",
                            u.rx_payload, u.rx_charged
                        )));
                    }
                    if let Some(l) = u.local {
                        if !self.udp_ports.is_bound(h, l.port()) {
                            return Err(ctx(format!(
                                "UDP socket bound to {l} missing from the port table"
                            )));
                        }
                    }
                    if let Some(t) = u.tuple {
                        if self.udp_ports.tuple_owner(&t) != Some(h) || u.peer.is_none() {
                            return Err(ctx(format!("UDP tuple {t:?} not registered to it")));
                        }
                    }
                }
                Socket::Raw(r) => {
                    let payload: usize = r.rx.iter().map(|(_, d)| d.len()).sum();
                    if r.rx_payload != payload {
                        return Err(ctx(format!(
                            "raw queue holds {payload} bytes, counted {}",
                            r.rx_payload
                        )));
                    }
                    let listed = self
                        .raw_by_proto
                        .get(&r.protocol.0)
                        .is_some_and(|v| v.contains(&h));
                    if listed != (r.protocol.0 != IPPROTO_RAW) {
                        return Err(ctx(format!(
                            "raw socket of protocol {} listed for delivery: {listed}",
                            r.protocol.0
                        )));
                    }
                }
                Socket::Tcp(t) => {
                    if t.owns_port {
                        let bound = t
                            .local
                            .is_some_and(|l| self.tcp_ports.is_bound(h, l.port()));
                        if !bound {
                            return Err(ctx(format!("owns a port but {:?} is not bound", t.local)));
                        }
                    }
                    if let Some(tuple) = t.tuple {
                        if self.tcp_ports.tuple_owner(&tuple) != Some(h) {
                            return Err(ctx(format!("tuple {tuple:?} not registered to it")));
                        }
                    }
                    if let Some(a) = t.timer_armed {
                        if !timers.contains(&(a, Timer::Tcp(h))) {
                            return Err(ctx(format!("timer armed for {a:?} but not in the heap")));
                        }
                    }
                    if let Some(p) = t.parent {
                        let queued = matches!(self.sockets.get(p), Some(Socket::Tcp(pt))
                            if pt.listener.as_ref().is_some_and(|l| l.accept_queue.contains(&h)));
                        if !queued {
                            return Err(ctx(format!("parent {p} does not queue it for accept")));
                        }
                    }
                    if let Some(l) = &t.listener {
                        if t.tcb.is_some() {
                            return Err(ctx("a listener with a connection".into()));
                        }
                        // Linux's sk_acceptq_is_full admits backlog + 1.
                        if l.accept_queue.len() > l.backlog + 1 {
                            return Err(ctx(format!(
                                "accept queue {} over backlog {} + 1",
                                l.accept_queue.len(),
                                l.backlog
                            )));
                        }
                        let syn_max = l.backlog.min(self.config.tcp.max_syn_backlog).max(8);
                        if l.syn_queue.len() > syn_max {
                            return Err(ctx(format!(
                                "SYN queue {} over its bound {syn_max}",
                                l.syn_queue.len()
                            )));
                        }
                        for c in &l.accept_queue {
                            let ok = matches!(self.sockets.get(*c), Some(Socket::Tcp(ct))
                                if ct.parent == Some(h) && ct.tcb.is_some());
                            if !ok {
                                return Err(ctx(format!("accept queue holds {c}, not its child")));
                            }
                        }
                        let young = l.syn_queue.values().filter(|e| e.retries == 0).count();
                        if young != l.young {
                            return Err(ctx(format!(
                                "young count {} but {young} entries never retransmitted",
                                l.young
                            )));
                        }
                        if l.syn_queue.values().any(|e| e.cookie) {
                            return Err(ctx("a cookie SYN-ACK left a SYN-queue entry".into()));
                        }
                        for tuple in l.syn_queue.keys() {
                            if !kinds.contains(&Timer::SynAck(h, *tuple)) {
                                return Err(ctx(format!(
                                    "half-open {tuple:?} has no SYN-ACK timer"
                                )));
                            }
                        }
                    }
                    if let Some(c) = &t.tcb {
                        c.check().map_err(ctx)?;
                        let closed = c.state == TcpState::Closed;
                        if closed == t.tuple.is_some() {
                            return Err(ctx(format!("state {} with tuple {:?}", c.state, t.tuple)));
                        }
                        if t.orphan && closed {
                            return Err(ctx("a closed orphan was not freed".into()));
                        }
                        if let Some(d) = c.next_deadline() {
                            if t.timer_armed.is_none_or(|a| a > d) {
                                return Err(ctx(format!(
                                    "{} connection due at {d:?}, timer armed {:?} ({})",
                                    c.state,
                                    t.timer_armed,
                                    c.deadlines()
                                )));
                            }
                        }
                    }
                }
            }
        }
        // The other direction: every table entry names a live socket that agrees.
        for (proto, list) in &self.raw_by_proto {
            for h in list {
                if !matches!(self.sockets.get(*h), Some(Socket::Raw(r)) if r.protocol.0 == *proto) {
                    return Err(format!(
                        "raw delivery list {proto} names {h}, not such a socket"
                    ));
                }
            }
        }
        let (bindings, tuples) = self.udp_ports.entries();
        for (port, h, _) in bindings {
            let ok = matches!(self.sockets.get(h), Some(Socket::Udp(u)) if u.local.is_some_and(|l| l.port() == port));
            if !ok {
                return Err(format!(
                    "UDP port {port} bound to {h}, not a UDP socket bound there"
                ));
            }
        }
        for (tuple, h) in tuples {
            if !matches!(self.sockets.get(*h), Some(Socket::Udp(u)) if u.tuple == Some(*tuple)) {
                return Err(format!(
                    "UDP tuple {tuple:?} names {h}, which is not connected so"
                ));
            }
        }
        let (bindings, tuples) = self.tcp_ports.entries();
        for (port, h, listening) in bindings {
            let ok = matches!(self.sockets.get(h), Some(Socket::Tcp(t))
                if t.owns_port && t.local.is_some_and(|l| l.port() == port)
                    && (!listening || t.listener.is_some()));
            if !ok {
                return Err(format!(
                    "TCP port {port} bound to {h} (listening {listening}), which disagrees"
                ));
            }
        }
        for (tuple, h) in tuples {
            if !matches!(self.sockets.get(*h), Some(Socket::Tcp(t)) if t.tuple == Some(*tuple)) {
                return Err(format!(
                    "TCP tuple {tuple:?} names {h}, which is not connected so"
                ));
            }
        }
        self.pmtu.check()?;
        if let Some(at) = self.pmtu.next_expiry() {
            if self.pmtu.timer.is_none_or(|armed| armed > at) {
                return Err(format!(
                    "path MTU entry expires at {at:?}, timer armed {:?}",
                    self.pmtu.timer
                ));
            }
        }
        Ok(())
    }
}
