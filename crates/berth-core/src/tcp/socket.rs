//! TCP sockets on the stack: the BSD calls (`tcp_socket`, `tcp_bind`, `tcp_listen`,
//! `tcp_accept`, `tcp_connect`, `tcp_send`, `tcp_recv`, `tcp_shutdown`, `close`),
//! segment demultiplexing, resets for segments that match no socket, and timers.

use super::conn::{OutSegment, Tcb, Verdict};
use super::listen::Listener;
use super::{Algorithm, TcpInfo, TcpState};
use crate::error::{bad_handle, code, error, would_block};
use crate::iface::IfaceId;
use crate::socket::{Family, SocketHandle, SocketInfo, SocketKind};
use crate::stack::{EventKind, Socket, Stack, Transport};
use crate::table::FourTuple;
use crate::time::{Duration, Instant};
use crate::timer::Timer;
use berth_wire::{
    Error as WireError, IpProtocol, IpRepr, Ipv4Repr, SeqNumber, TcpFlags, TcpPacket, TcpRepr,
};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};

/// 0.0.0.0:0, what an unbound socket reports (as Linux's getsockname).
fn unspecified() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
}

/// Largest backlog accepted (Linux SOMAXCONN).
pub const SOMAXCONN: usize = 4096;

#[derive(Debug)]
pub(crate) struct TcpSocket {
    /// AF_INET or AF_INET6 (an accepted socket has its listener's); the
    /// addresses below are as on the wire.
    pub family: Family,
    /// Bound address (IP may be 0.0.0.0); `None` until bind/connect.
    pub local: Option<SocketAddr>,
    /// Owns a port binding (accepted children share the listener's port instead).
    pub owns_port: bool,
    pub tuple: Option<FourTuple>,
    pub reuse_addr: bool,
    pub nodelay: bool,
    pub keepalive: bool,
    pub keep_idle: Option<Duration>,
    pub keep_intvl: Option<Duration>,
    pub keep_cnt: Option<u32>,
    pub linger: Option<Duration>,
    pub ttl: Option<u8>,
    /// TCP_MAXSEG: the most payload per segment we offer and send.
    pub user_mss: Option<u16>,
    /// TCP_CONGESTION (`None`: the stack default).
    pub congestion: Option<Algorithm>,
    pub recv_cap: usize,
    pub send_cap: usize,
    /// SO_RCVBUF / SO_SNDBUF set by the user: no autotuning (Linux
    /// SOCK_RCVBUF_LOCK / SOCK_SNDBUF_LOCK).
    pub rcvbuf_locked: bool,
    pub sndbuf_locked: bool,
    pub listener: Option<Listener>,
    pub tcb: Option<Box<Tcb>>,
    /// Pending error (SO_ERROR), reported once.
    pub error: Option<i32>,
    /// The user closed the handle; the connection finishes on its own.
    pub orphan: bool,
    /// In a listener's accept queue.
    pub parent: Option<SocketHandle>,
    pub timer_armed: Option<Instant>,
    pub readable_pending: bool,
    pub writable_pending: bool,
    was_readable: bool,
    was_writable: bool,
    /// Bytes this socket's connection is charged in the stack's tcp_mem (what
    /// `Tcb::mem_charge` was at the last `tcp_mem_sync`).
    pub mem_charged: usize,
    /// In `Stack::mem_waiters`: a send was refused for want of memory.
    pub mem_waiting: bool,
}

impl TcpSocket {
    pub fn state(&self) -> TcpState {
        if self.listener.is_some() {
            TcpState::Listen
        } else {
            self.tcb.as_ref().map_or(TcpState::Closed, |t| t.state)
        }
    }

    pub fn info(&self, handle: SocketHandle, now: crate::time::Instant) -> SocketInfo {
        let (recv_q, send_q) = match (&self.listener, &self.tcb) {
            // ss: a LISTEN socket's Recv-Q is the accept queue, Send-Q the backlog.
            (Some(l), _) => (l.accept_queue.len(), l.backlog),
            (None, Some(t)) => (t.recv.len(), t.send_queue()),
            _ => (0, 0),
        };
        let local = self.family.user_addr(match (self.tuple, self.local) {
            (Some(t), _) => t.local(),
            (None, Some(l)) => l,
            _ => self.family.any(Ipv4Addr::UNSPECIFIED.into()),
        });
        SocketInfo {
            handle,
            kind: SocketKind::Tcp,
            state: self.state().ss_name(),
            recv_q,
            send_q,
            local,
            peer: self.tcb.as_ref().map(|t| self.family.user_addr(t.remote)),
            drops: self.tcb.as_ref().map_or(0, |t| t.skmem().drops),
            tcp: self.tcb.as_ref().map(|t| t.info(now)),
            mem: self.tcb.as_ref().map_or(
                crate::mem::SkMem {
                    rcvbuf: self.recv_cap,
                    sndbuf: self.send_cap,
                    ..Default::default()
                },
                |t| t.skmem(),
            ),
        }
    }
}

fn not_connected() -> io::Error {
    error(
        code::ENOTCONN,
        "socket is not connected; connect it, or accept a connection from a listener",
    )
}

impl Stack {
    fn tcp(&mut self, h: SocketHandle) -> io::Result<&mut TcpSocket> {
        match self.sockets.get_mut(h) {
            Some(Socket::Tcp(t)) if !t.orphan => Ok(t),
            _ => Err(bad_handle()),
        }
    }

    fn tcp_ref(&self, h: SocketHandle) -> io::Result<&TcpSocket> {
        match self.sockets.get(h) {
            Some(Socket::Tcp(t)) if !t.orphan => Ok(t),
            _ => Err(bad_handle()),
        }
    }

    pub(crate) fn new_tcp_socket(&self) -> TcpSocket {
        TcpSocket {
            family: Family::default(),
            local: None,
            owns_port: false,
            tuple: None,
            reuse_addr: false,
            nodelay: false,
            keepalive: false,
            keep_idle: None,
            keep_intvl: None,
            keep_cnt: None,
            linger: None,
            ttl: None,
            user_mss: None,
            congestion: None,
            recv_cap: self.config.tcp.recv_buffer,
            send_cap: self.config.tcp.send_buffer,
            rcvbuf_locked: false,
            sndbuf_locked: false,
            listener: None,
            tcb: None,
            error: None,
            orphan: false,
            parent: None,
            timer_armed: None,
            readable_pending: false,
            writable_pending: false,
            was_readable: false,
            was_writable: false,
            mem_charged: 0,
            mem_waiting: false,
        }
    }

    /// socket(AF_INET or AF_INET6, SOCK_STREAM, 0): the family is that of the
    /// first address the socket is bound or connected to.
    pub fn tcp_socket(&mut self) -> SocketHandle {
        let s = self.new_tcp_socket();
        self.sockets.insert(Socket::Tcp(s))
    }

    /// socket(AF_INET6, SOCK_STREAM, 0): IPv6, and IPv4 through IPv4-mapped
    /// addresses unless [`Stack::tcp_set_only_v6`].
    pub fn tcp_socket_v6(&mut self) -> SocketHandle {
        let mut s = self.new_tcp_socket();
        s.family = Family::v6();
        self.sockets.insert(Socket::Tcp(s))
    }

    /// IPV6_V6ONLY (before bind): an IPv6 socket that takes no IPv4.
    pub fn tcp_set_only_v6(&mut self, h: SocketHandle, on: bool) -> io::Result<()> {
        let t = self.tcp(h)?;
        let bound = t.local.is_some();
        t.family.set_v6only(on, bound)
    }

    /// IPV6_V6ONLY.
    pub fn tcp_only_v6(&self, h: SocketHandle) -> io::Result<bool> {
        Ok(self.tcp_ref(h)?.family.v6only)
    }

    /// bind(2). Port 0 picks an ephemeral port.
    pub fn tcp_bind(
        &mut self,
        h: SocketHandle,
        addr: impl Into<SocketAddr>,
    ) -> io::Result<SocketAddr> {
        let t = self.tcp(h)?;
        let (bound, reuse) = (t.local.is_some(), t.reuse_addr);
        let addr = t.family.wire_addr(addr.into())?;
        let v6only = t.family.v6only;
        let local = self.bind_port(Transport::Tcp, h, addr, bound, reuse, v6only)?;
        let t = self.tcp(h)?;
        t.local = Some(local);
        t.owns_port = true;
        Ok(t.family.user_addr(local))
    }

    /// listen(2): the socket becomes a listening socket whose accept queue holds
    /// `backlog` + 1 connections, as on Linux (backlog capped at SOMAXCONN). Binds
    /// an ephemeral port if unbound, as Linux does.
    pub fn tcp_listen(&mut self, h: SocketHandle, backlog: usize) -> io::Result<()> {
        let t = self.tcp(h)?;
        if t.tcb.is_some() {
            return Err(error(
                code::EISCONN,
                "socket is connected; listen needs a fresh, bound socket",
            ));
        }
        let backlog = backlog.min(SOMAXCONN);
        if let Some(l) = &mut t.listener {
            // listen() again only changes the backlog.
            l.backlog = backlog;
            return Ok(());
        }
        if t.local.is_none() {
            let any = t.family.any(Ipv4Addr::UNSPECIFIED.into());
            self.tcp_bind(h, any)?;
        }
        let t = self.tcp(h)?;
        let local = t.local.ok_or_else(bad_handle)?;
        let (v6only, shown) = (t.family.v6only, t.family.user_addr(local));
        if self
            .tcp_ports
            .listener_conflict(h, local.ip(), v6only, local.port())
        {
            return Err(error(
                code::EADDRINUSE,
                format!("another socket already listens on {shown}"),
            ));
        }
        self.tcp_ports.set_listening(h, local.port(), true);
        let t = self.tcp(h)?;
        t.listener = Some(Listener::new(backlog));
        Ok(())
    }

    /// accept(2): the next established connection, as a new socket, with the peer's
    /// address. `WouldBlock` when the accept queue is empty.
    pub fn tcp_accept(&mut self, h: SocketHandle) -> io::Result<(SocketHandle, SocketAddr)> {
        let t = self.tcp(h)?;
        let Some(l) = &mut t.listener else {
            return Err(error(
                code::EINVAL,
                "accept needs a listening socket; call listen first",
            ));
        };
        let Some(child) = l.accept_queue.pop_front() else {
            t.was_readable = false;
            return Err(would_block());
        };
        let empty = l.accept_queue.is_empty();
        if empty {
            t.was_readable = false;
        }
        let Some(Socket::Tcp(c)) = self.sockets.get_mut(child) else {
            return Err(would_block());
        };
        c.parent = None;
        let peer = c
            .tcb
            .as_ref()
            .map(|t| c.family.user_addr(t.remote))
            .unwrap_or_else(unspecified);
        // Its data may already be readable.
        self.tcp_update_events(child);
        Ok((child, peer))
    }

    /// connect(2), non-blocking: sends the SYN and returns. Completion is reported by
    /// a Writable event (or an Error event: refused, timed out); `tcp_state` and
    /// `tcp_take_error` tell which.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        h: SocketHandle,
        remote: impl Into<SocketAddr>,
    ) -> io::Result<()> {
        let given = remote.into();
        self.note_time(now);
        let t = self.tcp(h)?;
        let remote = t.family.wire_addr(given)?;
        if t.listener.is_some() {
            return Err(error(code::EINVAL, "a listening socket cannot connect"));
        }
        if let Some(tcb) = &t.tcb {
            return Err(match tcb.state {
                TcpState::SynSent | TcpState::SynReceived => error(
                    code::EALREADY,
                    "connection already in progress; wait for it to complete",
                ),
                _ => error(code::EISCONN, "socket is already connected"),
            });
        }
        let broadcast = matches!(remote.ip(), IpAddr::V4(a) if a.is_broadcast());
        if remote.port() == 0 || remote.ip().is_unspecified() || broadcast {
            return Err(error(
                code::EINVAL,
                format!("cannot connect to {given}: give a unicast address and a non-zero port"),
            ));
        }
        let src_ip = match t.local {
            Some(l) if !l.ip().is_unspecified() => l.ip(),
            _ => self.source_for(remote.ip())?,
        };
        if src_ip.is_ipv4() != remote.is_ipv4() {
            return Err(error(
                code::EINVAL,
                format!("the socket is bound to {src_ip} and cannot reach {given}"),
            ));
        }
        let t = self.tcp(h)?;
        if t.local.is_none() {
            let any = t.family.any(remote.ip());
            self.tcp_bind(h, any)?;
        }
        let local_port = self.tcp(h)?.local.map(|l| l.port()).unwrap_or(0);
        let tuple = FourTuple::new(SocketAddr::new(src_ip, local_port), remote);
        self.tcp_ports.connect(h, None, tuple)?;
        let mtu = self.tcp_mtu(h, remote.ip());
        let iss = self.isn.isn(now, &tuple);
        let ts_offset = self.isn.ts_offset(&tuple);
        let cfg = &self.config.tcp;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return Err(bad_handle());
        };
        let mut tcb = Tcb::connect(
            cfg,
            now,
            SocketAddr::new(src_ip, local_port),
            remote,
            iss,
            mtu,
            t.recv_cap,
            t.send_cap,
            ts_offset,
            t.rcvbuf_locked,
        );
        apply_options(&mut tcb, t, cfg);
        t.tcb = Some(Box::new(tcb));
        t.tuple = Some(tuple);
        self.stats.tcp_active_opens += 1;
        self.tcp_flush(now, h);
        Ok(())
    }

    /// write(2): queue as much of `data` as fits; `WouldBlock` when the send buffer
    /// is full.
    pub fn tcp_send(&mut self, now: Instant, h: SocketHandle, data: &[u8]) -> io::Result<usize> {
        self.note_time(now);
        let t = self.tcp(h)?;
        if let Some(e) = t.error.take() {
            return Err(tcp_error(e));
        }
        let Some(tcb) = &mut t.tcb else {
            return Err(not_connected());
        };
        match tcb.state {
            TcpState::Established | TcpState::CloseWait if !tcb.fin_queued => {}
            TcpState::SynSent | TcpState::SynReceived => return Err(would_block()),
            TcpState::Closed => {
                return Err(error(code::EPIPE, "connection is closed; open a new one"))
            }
            _ => {
                return Err(error(
                    code::EPIPE,
                    "cannot send after shutdown(Write) or close",
                ))
            }
        }
        if data.is_empty() {
            return Ok(0);
        }
        // Linux sk_stream_memory_free / sk_wmem_schedule: no send-buffer
        // growth above tcp_mem's high mark (nor past the fair share under
        // pressure); the socket is woken when memory is back.
        let own = t.mem_charged;
        let room = self.tcp_mem.room(own, self.sockets.len());
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return Err(bad_handle());
        };
        let Some(tcb) = &mut t.tcb else {
            return Err(not_connected());
        };
        let n = tcb.write(&data[..data.len().min(room)]);
        if n == 0 {
            t.was_writable = false;
            if room == 0 && tcb.send_space() > 0 {
                self.stats.tcp_mem_send_blocked += 1;
                if !t.mem_waiting {
                    t.mem_waiting = true;
                    self.mem_waiters.push(h);
                }
            }
            return Err(would_block());
        }
        self.tcp_flush(now, h);
        Ok(n)
    }

    /// read(2): `Ok(0)` at end of stream, `WouldBlock` when nothing is queued yet.
    pub fn tcp_recv(&mut self, now: Instant, h: SocketHandle, buf: &mut [u8]) -> io::Result<usize> {
        self.note_time(now);
        let pressure = self.tcp_mem.pressure;
        let t = self.tcp(h)?;
        if let Some(r) = empty_read(t) {
            return r;
        }
        let Some(tcb) = &mut t.tcb else {
            return Err(not_connected());
        };
        if buf.is_empty() {
            return Ok(0);
        }
        tcb.mem_pressure = pressure;
        let n = tcb.read(now, buf);
        if tcb.recv.is_empty() && !tcb.fin_received {
            t.was_readable = false;
        }
        self.tcp_flush(now, h);
        Ok(n)
    }

    /// recv(2) with MSG_PEEK: copy readable data without consuming it. Same
    /// results as `tcp_recv` otherwise (Ok(0) at end of stream, WouldBlock, a
    /// pending error), but the window does not move.
    pub fn tcp_peek(&mut self, h: SocketHandle, buf: &mut [u8]) -> io::Result<usize> {
        let t = self.tcp(h)?;
        if let Some(r) = empty_read(t) {
            return r;
        }
        let Some(tcb) = &t.tcb else {
            return Err(not_connected());
        };
        let n = buf.len().min(tcb.recv.len());
        for (d, s) in buf.iter_mut().zip(tcb.recv.iter()) {
            *d = *s;
        }
        Ok(n)
    }

    /// Bytes readable now (FIONREAD).
    pub fn tcp_recv_queue(&self, h: SocketHandle) -> io::Result<usize> {
        Ok(self.tcp_ref(h)?.tcb.as_ref().map_or(0, |t| t.recv.len()))
    }

    /// Bytes not yet acknowledged (SIOCOUTQ).
    pub fn tcp_send_queue(&self, h: SocketHandle) -> io::Result<usize> {
        Ok(self.tcp_ref(h)?.tcb.as_ref().map_or(0, |t| t.send_queue()))
    }

    /// Free space in the send buffer.
    pub fn tcp_send_space(&self, h: SocketHandle) -> io::Result<usize> {
        Ok(self.tcp_ref(h)?.tcb.as_ref().map_or(0, |t| t.send_space()))
    }

    /// shutdown(2). Write sends FIN after queued data; Read makes reads return end of
    /// stream (later data is acknowledged and discarded).
    pub fn tcp_shutdown(&mut self, now: Instant, h: SocketHandle, how: Shutdown) -> io::Result<()> {
        self.note_time(now);
        let t = self.tcp(h)?;
        let Some(tcb) = &mut t.tcb else {
            return Err(not_connected());
        };
        if matches!(tcb.state, TcpState::SynSent | TcpState::Closed) {
            return Err(not_connected());
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            tcb.rx_shutdown = true;
            tcb.recv.clear();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            tcb.close_send();
        }
        self.tcp_flush(now, h);
        Ok(())
    }

    /// The connection's state (LISTEN for a listener).
    pub fn tcp_state(&self, h: SocketHandle) -> io::Result<TcpState> {
        Ok(self.tcp_ref(h)?.state())
    }

    /// Linux `tcp_info` of this socket.
    pub fn tcp_info(&self, h: SocketHandle) -> io::Result<TcpInfo> {
        let t = self.tcp_ref(h)?;
        Ok(t.tcb
            .as_ref()
            .map(|c| c.info(self.last_now))
            .unwrap_or(TcpInfo {
                state: Some(t.state()),
                ..TcpInfo::default()
            }))
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn tcp_take_error(&mut self, h: SocketHandle) -> io::Result<Option<io::Error>> {
        Ok(self.tcp(h)?.error.take().map(tcp_error))
    }

    /// getsockname(2).
    pub fn tcp_local_addr(&self, h: SocketHandle) -> io::Result<SocketAddr> {
        let t = self.tcp_ref(h)?;
        match (t.tuple, t.local) {
            (Some(tp), _) => Ok(t.family.user_addr(tp.local())),
            (None, Some(l)) => Ok(t.family.user_addr(l)),
            _ => Err(error(code::EINVAL, "socket is not bound")),
        }
    }

    /// getpeername(2); ENOTCONN before the handshake completes.
    pub fn tcp_peer_addr(&self, h: SocketHandle) -> io::Result<SocketAddr> {
        let s = self.tcp_ref(h)?;
        s.tcb
            .as_ref()
            .filter(|t| t.state != TcpState::SynSent)
            .map(|t| s.family.user_addr(t.remote))
            .ok_or_else(not_connected)
    }

    // ---- options ----------------------------------------------------------------

    /// SO_REUSEADDR (before bind).
    pub fn tcp_set_reuse_addr(&mut self, h: SocketHandle, on: bool) -> io::Result<()> {
        self.tcp(h)?.reuse_addr = on;
        Ok(())
    }

    /// TCP_NODELAY: turn Nagle's algorithm off.
    pub fn tcp_set_nodelay(&mut self, now: Instant, h: SocketHandle, on: bool) -> io::Result<()> {
        let t = self.tcp(h)?;
        t.nodelay = on;
        if let Some(c) = &mut t.tcb {
            c.nodelay = on;
        }
        self.tcp_flush(now, h);
        Ok(())
    }

    /// TCP_NODELAY as set.
    pub fn tcp_nodelay(&self, h: SocketHandle) -> io::Result<bool> {
        Ok(self.tcp_ref(h)?.nodelay)
    }

    /// SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (`None` keeps
    /// the stack default).
    pub fn tcp_set_keepalive(
        &mut self,
        now: Instant,
        h: SocketHandle,
        on: bool,
        idle: Option<Duration>,
        interval: Option<Duration>,
        count: Option<u32>,
    ) -> io::Result<()> {
        if idle.is_some_and(|d| d.is_zero())
            || interval.is_some_and(|d| d.is_zero())
            || count == Some(0)
        {
            return Err(error(
                code::EINVAL,
                "keepalive idle, interval and count must be greater than zero",
            ));
        }
        let cfg = &self.config.tcp;
        let Some(Socket::Tcp(t)) = self
            .sockets
            .get_mut(h)
            .filter(|s| !matches!(s, Socket::Tcp(t) if t.orphan))
        else {
            return Err(bad_handle());
        };
        t.keepalive = on;
        t.keep_idle = idle.or(t.keep_idle);
        t.keep_intvl = interval.or(t.keep_intvl);
        t.keep_cnt = count.or(t.keep_cnt);
        if let Some(c) = &mut t.tcb {
            c.keepalive = on;
            c.keep_idle = t.keep_idle.unwrap_or(cfg.keepalive_idle);
            c.keep_intvl = t.keep_intvl.unwrap_or(cfg.keepalive_interval);
            c.keep_cnt = t.keep_cnt.unwrap_or(cfg.keepalive_count);
            c.refresh_keepalive();
        }
        self.tcp_flush(now, h);
        Ok(())
    }

    /// SO_LINGER: `Some(0)` makes close abort with a reset.
    pub fn tcp_set_linger(&mut self, h: SocketHandle, linger: Option<Duration>) -> io::Result<()> {
        self.tcp(h)?.linger = linger;
        Ok(())
    }

    /// SO_RCVBUF / SO_SNDBUF; effective for connections made afterwards (set them
    /// before connect or listen, as with BSD sockets).
    pub fn tcp_set_buffers(
        &mut self,
        h: SocketHandle,
        recv: Option<usize>,
        send: Option<usize>,
    ) -> io::Result<()> {
        let t = self.tcp(h)?;
        if let Some(r) = recv {
            t.recv_cap = r.clamp(2048, 64 << 20);
            t.rcvbuf_locked = true;
            if let Some(c) = &mut t.tcb {
                c.rcv_autotune = false;
            }
        }
        if let Some(s) = send {
            t.send_cap = s.clamp(2048, 64 << 20);
            t.sndbuf_locked = true;
            if let Some(c) = &mut t.tcb {
                c.send_cap = t.send_cap;
                c.snd_autotune = false;
            }
        }
        Ok(())
    }

    /// SO_RCVBUF and SO_SNDBUF in effect, bytes.
    pub fn tcp_buffers(&self, h: SocketHandle) -> io::Result<(usize, usize)> {
        let t = self.tcp_ref(h)?;
        Ok((t.recv_cap, t.send_cap))
    }

    /// TCP_CONGESTION: the congestion-control algorithm of this socket. As on
    /// Linux it may change at any time; a connection keeps its cwnd and ssthresh.
    pub fn tcp_set_congestion(&mut self, h: SocketHandle, alg: Algorithm) -> io::Result<()> {
        let t = self.tcp(h)?;
        t.congestion = Some(alg);
        if let Some(tcb) = &mut t.tcb {
            tcb.set_congestion(alg);
        }
        Ok(())
    }

    /// TCP_CONGESTION by name ("reno", "cubic"); ENOENT for others, as Linux.
    pub fn tcp_set_congestion_name(&mut self, h: SocketHandle, name: &str) -> io::Result<()> {
        let alg = Algorithm::from_name(name).ok_or_else(|| {
            error(
                code::ENOENT,
                format!("unknown congestion control {name:?}; use \"reno\" or \"cubic\""),
            )
        })?;
        self.tcp_set_congestion(h, alg)
    }

    /// TCP_CONGESTION in effect (the socket's, else the stack default).
    pub fn tcp_congestion(&self, h: SocketHandle) -> io::Result<Algorithm> {
        let t = self.tcp_ref(h)?;
        Ok(t.tcb
            .as_ref()
            .map(|c| c.cc_algorithm)
            .or(t.congestion)
            .unwrap_or(self.config.tcp.congestion))
    }

    /// TCP_MAXSEG: cap the MSS offered in the SYN and the payload per segment
    /// (88..=65495 as Linux accepts; effective for connections made afterwards).
    pub fn tcp_set_maxseg(&mut self, h: SocketHandle, mss: u16) -> io::Result<()> {
        if !(88..=65_495).contains(&mss) {
            return Err(error(
                code::EINVAL,
                format!("TCP_MAXSEG {mss} is out of range; use 88..=65495"),
            ));
        }
        self.tcp(h)?.user_mss = Some(mss);
        Ok(())
    }

    /// The MSS in use: the connection's send MSS once connected, else TCP_MAXSEG
    /// or the default (536, as Linux reports before a connection exists).
    pub fn tcp_maxseg(&self, h: SocketHandle) -> io::Result<usize> {
        let t = self.tcp_ref(h)?;
        Ok(match &t.tcb {
            Some(c) if c.state.is_synchronized() => c.mss,
            _ => t.user_mss.map_or(536, usize::from),
        })
    }

    /// IP_TTL for this connection's segments.
    pub fn tcp_set_ttl(&mut self, h: SocketHandle, ttl: u8) -> io::Result<()> {
        if ttl == 0 {
            return Err(error(code::EINVAL, "TTL 0 is not allowed; use 1..=255"));
        }
        self.tcp(h)?.ttl = Some(ttl);
        Ok(())
    }

    /// IP_TTL (IPv6: the unicast hop limit) this socket's segments carry: the
    /// value set, else the stack default.
    pub fn tcp_ttl(&self, h: SocketHandle) -> io::Result<u8> {
        Ok(self.tcp_ref(h)?.ttl.unwrap_or(self.config.default_ttl))
    }

    /// The IP_TTL set on socket `h`, if any (`None`: the stack default).
    pub(super) fn tcp_own_ttl(&self, h: SocketHandle) -> Option<u8> {
        self.tcp_ref(h).ok().and_then(|t| t.ttl)
    }

    /// SO_KEEPALIVE.
    pub fn tcp_keepalive(&self, h: SocketHandle) -> io::Result<bool> {
        Ok(self.tcp_ref(h)?.keepalive)
    }

    /// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT in effect: the socket's own
    /// values, else the stack defaults (`TcpConfig::keepalive_*`).
    pub fn tcp_keepalive_params(&self, h: SocketHandle) -> io::Result<(Duration, Duration, u32)> {
        let t = self.tcp_ref(h)?;
        let cfg = &self.config.tcp;
        Ok((
            t.keep_idle.unwrap_or(cfg.keepalive_idle),
            t.keep_intvl.unwrap_or(cfg.keepalive_interval),
            t.keep_cnt.unwrap_or(cfg.keepalive_count),
        ))
    }

    /// SO_LINGER.
    pub fn tcp_linger(&self, h: SocketHandle) -> io::Result<Option<Duration>> {
        Ok(self.tcp_ref(h)?.linger)
    }

    // ---- closing ----------------------------------------------------------------

    /// close(2) for a TCP socket.
    pub(crate) fn tcp_close(&mut self, h: SocketHandle) {
        let now = self.last_now;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        if let Some(l) = t.listener.take() {
            // Unaccepted connections are reset, as Linux does on close of a listener.
            for child in l.accept_queue {
                self.tcp_abort(now, child, true);
            }
            self.tcp_release(h);
            return;
        }
        let Some(tcb) = &mut t.tcb else {
            self.tcp_release(h);
            return;
        };
        let abort = t.linger == Some(Duration::ZERO) || !tcb.recv.is_empty();
        match tcb.state {
            TcpState::SynSent | TcpState::Closed => {
                self.tcp_release(h);
            }
            _ if abort => {
                // Linger 0, or unread data (RFC 2525 §2.17): reset instead of FIN.
                self.tcp_abort(now, h, true);
            }
            TcpState::TimeWait => {
                t.orphan = true;
            }
            _ => {
                tcb.close_send();
                tcb.set_orphan(now, &self.config.tcp);
                t.orphan = true;
                self.tcp_flush(now, h);
            }
        }
    }

    /// Send a reset for a connection and free it.
    fn tcp_abort(&mut self, now: Instant, h: SocketHandle, send_rst: bool) {
        if let Some(Socket::Tcp(t)) = self.sockets.get(h) {
            if let (true, Some(tcb)) = (send_rst, &t.tcb) {
                if tcb.state.is_synchronized() || tcb.state == TcpState::SynReceived {
                    let (local, remote, seq, ack) =
                        (tcb.local, tcb.remote, tcb.snd_nxt, tcb.rcv_nxt);
                    self.tcp_send_rst(now, local, remote, seq, Some(ack));
                }
            }
        }
        self.tcp_release(h);
    }

    /// Remove a socket entirely: port binding, four-tuple, slab slot, and
    /// its memory charge.
    fn tcp_release(&mut self, h: SocketHandle) {
        if let Some(Socket::Tcp(t)) = self.sockets.remove(h) {
            if let Some(c) = &t.tcb {
                crate::trace::tcp_state(c.local, c.remote, c.state, TcpState::Closed);
            }
            self.tcp_unhash(h, &t);
            self.tcp_mem.adjust(t.mem_charged, 0);
            self.tcp_mem_wake();
        }
    }

    /// Tell connection `h` how much stack memory it may take now and whether
    /// the stack is under pressure (see `crate::mem`).
    fn tcp_mem_grant(&mut self, h: SocketHandle) {
        let sockets = self.sockets.len();
        let pool = &self.tcp_mem;
        if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
            let own = t.mem_charged;
            if let Some(tcb) = &mut t.tcb {
                tcb.mem_room = pool.room(own, sockets);
                tcb.mem_forced_room = pool.forced_room();
                tcb.mem_pressure = pool.pressure;
            }
        }
    }

    /// Bring the stack's tcp_mem total up to date with connection `h`'s
    /// buffers; count entering pressure; wake senders once memory is back.
    pub(crate) fn tcp_mem_sync(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let charge = t.tcb.as_ref().map_or(0, |c| c.mem_charge());
        let old = std::mem::replace(&mut t.mem_charged, charge);
        if old == charge {
            return;
        }
        if self.tcp_mem.adjust(old, charge) {
            self.stats.tcp_memory_pressures += 1;
        }
        if charge < old {
            self.tcp_mem_wake();
        }
    }

    /// Senders refused for want of memory get a Writable edge once the pool
    /// is below its high mark again.
    fn tcp_mem_wake(&mut self) {
        if self.mem_waiters.is_empty() || self.tcp_mem.exhausted() {
            return;
        }
        for w in std::mem::take(&mut self.mem_waiters) {
            if let Some(Socket::Tcp(t)) = self.sockets.get_mut(w) {
                t.mem_waiting = false;
                self.tcp_update_events(w);
            }
        }
    }

    fn tcp_unhash(&mut self, h: SocketHandle, t: &TcpSocket) {
        if let Some(tuple) = t.tuple {
            self.tcp_ports.remove_tuple(h, tuple);
        }
        if t.owns_port {
            if let Some(l) = t.local {
                self.tcp_ports.unbind(h, l.port(), None);
            }
        }
    }

    /// The connection ended (`errno` 0 = cleanly). An orphan is freed; a socket the
    /// user still holds keeps its handle in CLOSED with the error pending.
    fn tcp_finish(&mut self, h: SocketHandle, errno: i32) {
        if !matches!(self.sockets.get(h), Some(Socket::Tcp(_))) {
            return;
        }
        if errno == code::ECONNRESET {
            self.stats.tcp_estab_resets += 1;
        }
        if errno == code::ETIMEDOUT {
            self.stats.tcp_timeouts += 1;
        }
        if errno == code::ECONNREFUSED {
            self.stats.tcp_attempt_fails += 1;
        }
        if errno != 0 {
            if let Some(Socket::Tcp(TcpSocket { tcb: Some(c), .. })) = self.sockets.get(h) {
                crate::trace::tcp_error(c.local, c.remote, errno);
            }
        }
        self.tcp_end(h, errno);
    }

    /// `tcp_finish` without the counters.
    fn tcp_end(&mut self, h: SocketHandle, errno: i32) {
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        if t.orphan || t.parent.is_some() {
            let parent = t.parent;
            self.tcp_release(h);
            if let Some(p) = parent {
                if let Some(Socket::Tcp(l)) = self.sockets.get_mut(p) {
                    if let Some(l) = &mut l.listener {
                        l.accept_queue.retain(|c| *c != h);
                    }
                }
            }
            return;
        }
        if let Some(tcb) = &mut t.tcb {
            tcb.set_state(TcpState::Closed);
            tcb.stop_timers();
        }
        if errno != 0 {
            t.error = Some(errno);
        }
        // Free the four-tuple now; the port stays bound until close, as on Linux.
        if let Some(tuple) = t.tuple.take() {
            self.tcp_ports.remove_tuple(h, tuple);
        }
        self.push_event(h, EventKind::Error);
        self.tcp_update_events(h);
    }

    // ---- input ------------------------------------------------------------------

    pub(crate) fn tcp_input(
        &mut self,
        now: Instant,
        iface: Option<IfaceId>,
        ip: &IpRepr,
        payload: &[u8],
    ) {
        self.stats.tcp_in_segs += 1;
        let seg = match TcpPacket::new_checked(payload).and_then(|p| {
            TcpRepr::parse_with(&p, &ip.src_addr(), &ip.dst_addr(), !self.rx_l4_csum_ok)
        }) {
            Ok(s) => s,
            Err(WireError::BadChecksum) => {
                self.stats.tcp_in_csum_errors += 1;
                return;
            }
            Err(_) => {
                self.stats.tcp_in_errs += 1;
                return;
            }
        };
        // Only unicast to one of our addresses (RFC 9293 §3.10.7.1 / RFC 1122 §4.2.3.10),
        // or to anyone on a forwarding interface.
        let ours = self.is_local_addr(ip.dst_addr());
        let forwarding = self.forwarding(iface);
        if !ours && !forwarding {
            self.stats.tcp_in_errs += 1;
            return;
        }
        let f = seg.flags;
        let local = SocketAddr::new(ip.dst_addr(), seg.dst_port);
        let remote = SocketAddr::new(ip.src_addr(), seg.src_port);
        let tuple = FourTuple::new(local, remote);
        // Another host's address: only its forwarded connections, never our
        // listeners (a wildcard listener is for our addresses).
        let found = if ours {
            self.tcp_ports.lookup(local, remote)
        } else {
            self.tcp_ports.lookup_exact(&tuple)
        };
        let forwarder = self.tcp_forwarder.filter(|_| forwarding);
        let Some(h) = found else {
            match forwarder {
                Some(fh) => self.tcp_forward_input(now, fh, tuple, &seg),
                None => self.tcp_no_socket(now, local, remote, &seg),
            }
            return;
        };
        let (is_listener, is_tw) = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => (
                t.listener.is_some(),
                t.tcb
                    .as_ref()
                    .is_some_and(|c| c.state == TcpState::TimeWait),
            ),
            _ => {
                self.tcp_no_socket(now, local, remote, &seg);
                return;
            }
        };
        if is_tw
            && f.contains(TcpFlags::SYN)
            && !f.contains(TcpFlags::ACK)
            && !f.contains(TcpFlags::FIN)
        {
            // RFC 6191: a new SYN with a newer timestamp (or sequence number) may
            // reopen a TIME-WAIT four-tuple; the old connection goes away. A
            // SYN+FIN opens nothing (LISTEN drops it): it gets the challenge ACK
            // of any other SYN (RFC 9293 §3.10.7.4, RFC 5961 §4).
            let ok = match self.sockets.get(h) {
                Some(Socket::Tcp(t)) => t
                    .tcb
                    .as_ref()
                    .is_some_and(|c| c.time_wait_accepts_syn(&seg)),
                _ => false,
            };
            if ok {
                self.stats.tcp_tw_recycled += 1;
                self.tcp_finish(h, 0);
                if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
                    if let Some(tp) = t.tuple.take() {
                        self.tcp_ports.remove_tuple(h, tp);
                    }
                }
                if let Some(l) = self.tcp_ports.lookup(local, remote).filter(|_| ours) {
                    if l != h {
                        self.tcp_listen_input(now, l, tuple, &seg);
                        return;
                    }
                }
                match forwarder {
                    Some(fh) => self.tcp_forward_input(now, fh, tuple, &seg),
                    None => self.tcp_no_socket(now, local, remote, &seg),
                }
                return;
            }
        }
        let exact = matches!(self.sockets.get(h), Some(Socket::Tcp(t)) if t.tuple == Some(tuple));
        if exact {
            self.tcp_conn_input(now, h, &seg);
        } else if is_listener {
            self.tcp_listen_input(now, h, tuple, &seg);
        } else {
            // Bound but neither listening nor connected to this peer.
            self.tcp_no_socket(now, local, remote, &seg);
        }
    }

    /// A segment for the TCP forwarder `fh` (forward.rs): handled as by a
    /// listener, if `fh` still is the forwarder.
    fn tcp_forward_input(
        &mut self,
        now: Instant,
        fh: SocketHandle,
        tuple: FourTuple,
        seg: &TcpRepr,
    ) {
        let is_forwarder = matches!(self.sockets.get(fh), Some(Socket::Tcp(t))
            if t.listener.as_ref().is_some_and(|l| l.forward.is_some()));
        if is_forwarder {
            self.tcp_listen_input(now, fh, tuple, seg);
        } else {
            self.tcp_no_socket(now, tuple.local(), tuple.remote(), seg);
        }
    }

    /// The connection an ICMP error about TCP is for, if it quotes a segment
    /// in flight (`quoted`: the quoted source and destination, `data`: the
    /// first bytes of the TCP header). RFC 5927 §4.1 / §5.2: only about data
    /// in flight (Linux OutOfWindowIcmps), which an off-path attacker must guess.
    /// An out-of-window quote is counted.
    fn tcp_icmp_target(&mut self, quoted: (IpAddr, IpAddr), data: &[u8]) -> IcmpTarget {
        let (Some(ports), Some(seq)) = (data.get(0..4), data.get(4..8)) else {
            return IcmpTarget::NoConnection;
        };
        if !self.is_local_addr(quoted.0) {
            return IcmpTarget::NoConnection;
        }
        let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let local = SocketAddr::new(quoted.0, port(&ports[0..2]));
        let remote = SocketAddr::new(quoted.1, port(&ports[2..4]));
        let seq = SeqNumber(u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]));
        let tuple = FourTuple::new(local, remote);
        let Some(h) = self.tcp_ports.lookup(local, remote) else {
            return IcmpTarget::NoConnection;
        };
        let Some(Socket::Tcp(t)) = self.sockets.get(h) else {
            return IcmpTarget::NoConnection;
        };
        let Some(tcb) = t.tcb.as_ref().filter(|_| t.tuple == Some(tuple)) else {
            return IcmpTarget::NoConnection;
        };
        if matches!(tcb.state, TcpState::TimeWait | TcpState::Closed) {
            return IcmpTarget::NoConnection;
        }
        if seq < tcb.snd_una || seq >= tcb.snd_max {
            self.stats.tcp_icmp_out_of_window += 1;
            return IcmpTarget::OutOfWindow;
        }
        IcmpTarget::InFlight(h)
    }

    /// An ICMP error quoting one of our segments (see `tcp_icmp_target`). A
    /// hard error (RFC 1122 §4.2.3.9) aborts a connection being opened;
    /// otherwise, and in synchronized states (RFC 5927 §5.2, as Linux), the
    /// error is only remembered and reported if the connection then times out.
    pub(crate) fn tcp_icmp_error(
        &mut self,
        quoted: (IpAddr, IpAddr),
        data: &[u8],
        errno: i32,
        hard: bool,
    ) {
        let IcmpTarget::InFlight(h) = self.tcp_icmp_target(quoted, data) else {
            return;
        };
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(tcb) = t.tcb.as_mut() else {
            return;
        };
        self.stats.tcp_icmp_errors += 1;
        if hard && matches!(tcb.state, TcpState::SynSent | TcpState::SynReceived) {
            self.stats.tcp_attempt_fails += 1;
            self.tcp_end(h, errno);
        } else {
            tcb.soft_error = Some(errno);
        }
    }

    /// Fragmentation needed / Packet Too Big about one of our segments, with
    /// the next hop's `mtu`. Believed only for a segment in flight (RFC 5927
    /// §5.2); then the destination's path MTU drops and the connection's MSS
    /// follows, resending what is in flight in smaller segments at once
    /// (Linux tcp_v4_mtu_reduced → tcp_simple_retransmit).
    pub(crate) fn tcp_pmtu_error(
        &mut self,
        now: Instant,
        quoted: (IpAddr, IpAddr),
        data: &[u8],
        mtu: usize,
    ) {
        let h = match self.tcp_icmp_target(quoted, data) {
            IcmpTarget::InFlight(h) => h,
            IcmpTarget::NoConnection => {
                self.stats.tcp_pmtu_no_socket += 1;
                return;
            }
            IcmpTarget::OutOfWindow => {
                self.stats.tcp_pmtu_out_of_window += 1;
                return;
            }
        };
        self.pmtu_lower(now, quoted.1, mtu);
        // The cache may already hold this or a lower MTU (another connection
        // to the destination learnt it): this one follows all the same.
        let tcb_mtu = self.tcp_mtu(h, quoted.1);
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(tcb) = t.tcb.as_mut() else {
            return;
        };
        if tcb.mtu_reduced(tcb_mtu) {
            self.stats.tcp_mss_reduced += 1;
            self.tcp_flush(now, h);
        }
    }

    pub(super) fn tcp_conn_input(&mut self, now: Instant, h: SocketHandle, seg: &TcpRepr) {
        self.tcp_mem_grant(h);
        let cfg = &self.config.tcp;
        let bucket = &mut self.challenge_bucket;
        let stats = &mut self.stats;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(tcb) = &mut t.tcb else {
            return;
        };
        let before = (
            tcb.stat_paws,
            tcb.stat_out_of_window,
            tcb.stat_bad_acks,
            tcb.stat_ooo_dropped,
            tcb.stat_sack_invalid,
            tcb.stat_rcvq_drop,
            tcb.stat_prune_called,
            tcb.stat_ofo_pruned,
        );
        let mut challenge = || {
            if bucket.take(now) {
                stats.tcp_challenge_acks += 1;
                true
            } else {
                stats.tcp_challenge_ack_limited += 1;
                false
            }
        };
        let verdict = tcb.on_segment(now, cfg, seg, &mut challenge);
        stats.tcp_paws_drops += tcb.stat_paws - before.0;
        stats.tcp_out_of_window += tcb.stat_out_of_window - before.1;
        stats.tcp_bad_acks += tcb.stat_bad_acks - before.2;
        stats.tcp_ofo_drops += tcb.stat_ooo_dropped - before.3;
        stats.tcp_sack_invalid += tcb.stat_sack_invalid - before.4;
        stats.tcp_rcvq_drops += tcb.stat_rcvq_drop - before.5;
        stats.tcp_prune_called += tcb.stat_prune_called - before.6;
        stats.tcp_ofo_pruned += tcb.stat_ofo_pruned - before.7;
        tcb.refresh_keepalive();
        let (l, r) = (tcb.local, tcb.remote);
        // Before anything else runs, so the total is exact at every step.
        self.tcp_mem_sync(h);
        match verdict {
            Verdict::Ok => {}
            Verdict::Closed(e) => {
                self.tcp_finish(h, e);
                return;
            }
            Verdict::SendReset(seq) => {
                self.tcp_send_rst(now, l, r, seq, None);
                return;
            }
            Verdict::AbortOnData(seq) => {
                self.stats.tcp_abort_on_data += 1;
                self.tcp_send_rst(now, l, r, seq, None);
                self.tcp_end(h, code::ECONNRESET);
                return;
            }
        }
        match &mut self.deferred {
            // In a batch: answer once at its end (see Stack::receive_batch).
            Some(d) => {
                if !d.contains(&h) {
                    d.push(h);
                }
            }
            None => self.tcp_flush(now, h),
        }
    }

    /// A segment no socket wants: reset it as RFC 9293 §3.10.7.1 prescribes.
    fn tcp_no_socket(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr,
    ) {
        self.stats.tcp_no_socket += 1;
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        if seg.flags.contains(TcpFlags::ACK) {
            self.tcp_send_rst(now, local, remote, seg.ack_number, None);
        } else {
            let ack = seg.seq_number + seg.segment_len();
            self.tcp_send_rst(now, local, remote, SeqNumber(0), Some(ack));
        }
    }

    pub(crate) fn tcp_send_rst(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seq: SeqNumber,
        ack: Option<SeqNumber>,
    ) {
        let mut flags = TcpFlags::RST;
        if ack.is_some() {
            flags.insert(TcpFlags::ACK);
        }
        let mut r = TcpRepr::new(local.port(), remote.port(), seq, flags);
        r.ack_number = ack.unwrap_or(SeqNumber(0));
        self.stats.tcp_out_rsts += 1;
        self.tcp_emit(now, local.ip(), remote.ip(), &r, None);
    }

    /// Build and route one segment.
    pub(super) fn tcp_emit(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        r: &TcpRepr,
        ttl: Option<u8>,
    ) {
        self.stats.tcp_out_segs += 1;
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        if let Some(pkt) = build_packet(self.next_ident(), src, dst, ttl, r) {
            let _ = self.route_any(now, pkt);
        }
    }

    /// Send everything the connection wants to send, re-arm its timer and raise
    /// readiness events.
    pub(crate) fn tcp_flush(&mut self, now: Instant, h: SocketHandle) {
        if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
            if let Some(tcb) = &mut t.tcb {
                // The window advertised below depends on it.
                tcb.mem_pressure = self.tcp_mem.pressure;
            }
        }
        loop {
            self.ip_ident = self.ip_ident.wrapping_add(1);
            let ident = self.ip_ident;
            let cfg = &self.config.tcp;
            let default_ttl = self.config.default_ttl;
            let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
                return;
            };
            let ttl = t.ttl.unwrap_or(default_ttl);
            let Some(tcb) = &mut t.tcb else {
                break;
            };
            let retrans_before = tcb.total_retrans;
            let Some(seg) = tcb.next_segment(now, cfg) else {
                break;
            };
            let payload = tcb.send.slice(seg.data_off, seg.data_len);
            let repr = out_repr(tcb, &seg, &payload);
            let pkt = build_packet(ident, tcb.local.ip(), tcb.remote.ip(), ttl, &repr);
            self.stats.tcp_retrans_segs += tcb.total_retrans - retrans_before;
            self.stats.tcp_out_segs += 1;
            let Some(pkt) = pkt else {
                break;
            };
            if self.route_any(now, pkt).is_err() {
                break;
            }
        }
        self.tcp_mem_sync(h);
        self.tcp_arm_timer(h);
        self.tcp_update_events(h);
    }

    pub(super) fn tcp_arm_timer(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(d) = t.tcb.as_ref().and_then(|c| c.next_deadline()) else {
            return;
        };
        if t.timer_armed.is_none_or(|a| d < a) {
            t.timer_armed = Some(d);
            self.timers.arm(d, Timer::Tcp(h));
        }
    }

    /// The connection timer fired.
    pub(crate) fn tcp_timer(&mut self, now: Instant, h: SocketHandle) {
        let cfg = &self.config.tcp;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        if t.timer_armed.is_some_and(|a| a > now) {
            return;
        }
        t.timer_armed = None;
        let Some(tcb) = &mut t.tcb else {
            return;
        };
        let before = tcb.rto_events;
        let verdict = tcb.on_timer(now, cfg);
        self.stats.tcp_rto_events += tcb.rto_events - before;
        let soft_error = tcb.soft_error;
        match verdict {
            Verdict::Closed(code::ETIMEDOUT) => {
                // Linux resets a connection it gives up on (keepalive, retries).
                self.tcp_abort_keep_handle(now, h);
                // A remembered ICMP soft error says why (Linux sk_err_soft).
                self.stats.tcp_timeouts += 1;
                self.tcp_end(h, soft_error.unwrap_or(code::ETIMEDOUT));
            }
            Verdict::Closed(e) => self.tcp_finish(h, e),
            _ => self.tcp_flush(now, h),
        }
    }

    fn tcp_abort_keep_handle(&mut self, now: Instant, h: SocketHandle) {
        if let Some(Socket::Tcp(t)) = self.sockets.get(h) {
            if let Some(tcb) = &t.tcb {
                if tcb.state.is_synchronized() {
                    let (l, r, s, a) = (tcb.local, tcb.remote, tcb.snd_nxt, tcb.rcv_nxt);
                    self.tcp_send_rst(now, l, r, s, Some(a));
                }
            }
        }
    }

    /// Raise Readable / Writable edges for a TCP socket.
    pub(crate) fn tcp_update_events(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        if t.orphan || t.parent.is_some() {
            return;
        }
        let readable = match (&t.listener, &t.tcb) {
            (Some(l), _) => {
                !l.accept_queue.is_empty()
                    || l.forward.as_ref().is_some_and(|f| !f.fresh.is_empty())
            }
            (None, Some(c)) => c.readable() || c.state == TcpState::Closed,
            _ => false,
        };
        // A socket refused for want of stack memory waits for tcp_mem_wake.
        let writable = t.tcb.as_ref().is_some_and(|c| {
            (matches!(c.state, TcpState::Established | TcpState::CloseWait)
                && c.send_space() > 0
                && !t.mem_waiting)
                || c.state == TcpState::Closed
        });
        let raise_r = readable && !t.was_readable;
        let raise_w = writable && !t.was_writable;
        t.was_readable = readable;
        t.was_writable = writable;
        if raise_r {
            self.push_event(h, EventKind::Readable);
        }
        if raise_w {
            self.push_event(h, EventKind::Writable);
        }
    }

    /// MTU for `h`'s connection to `dst`: the interface's, lowered so that the
    /// MSS (MTU − 40) does not exceed the socket's TCP_MAXSEG. The TCB counts
    /// 40 header bytes, IPv4's and TCP's; IPv6's header is 20 bytes longer, so
    /// its MTU is given 20 bytes lower (RFC 8200 §5: MSS = MTU − 60).
    pub(super) fn tcp_mtu(&self, h: SocketHandle, dst: IpAddr) -> usize {
        let extra = if dst.is_ipv6() { 20 } else { 0 };
        let mtu = self.mtu_for(dst).saturating_sub(extra);
        match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => t.user_mss.map_or(mtu, |m| mtu.min(m as usize + 40)),
            _ => mtu,
        }
    }

    pub(crate) fn note_time(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }
}

pub(super) fn apply_options(tcb: &mut Tcb, t: &TcpSocket, cfg: &super::TcpConfig) {
    tcb.nodelay = t.nodelay;
    tcb.keepalive = t.keepalive;
    tcb.keep_idle = t.keep_idle.unwrap_or(cfg.keepalive_idle);
    tcb.keep_intvl = t.keep_intvl.unwrap_or(cfg.keepalive_interval);
    tcb.keep_cnt = t.keep_cnt.unwrap_or(cfg.keepalive_count);
    tcb.refresh_keepalive();
    tcb.rcv_autotune = cfg.moderate_rcvbuf && !t.rcvbuf_locked;
    tcb.snd_autotune = !t.sndbuf_locked;
    if let Some(a) = t.congestion {
        tcb.set_congestion(a);
    }
}

/// What a read (or peek) returns when there is nothing to copy: the pending
/// error, end of stream (Ok(0)) or WouldBlock; `None` when data is waiting.
fn empty_read(t: &mut TcpSocket) -> Option<io::Result<usize>> {
    let Some(tcb) = &t.tcb else {
        return Some(Err(t.error.take().map_or_else(not_connected, tcp_error)));
    };
    if !tcb.recv.is_empty() {
        return None;
    }
    if let Some(e) = t.error.take() {
        return Some(Err(tcp_error(e)));
    }
    if tcb.fin_received || tcb.rx_shutdown || tcb.state == TcpState::Closed {
        return Some(Ok(0));
    }
    // Not readable until new data arrives (a handshake in progress never was).
    if !matches!(tcb.state, TcpState::SynSent | TcpState::SynReceived) {
        t.was_readable = false;
    }
    Some(Err(would_block()))
}

/// Whom an ICMP error about TCP concerns (`Stack::tcp_icmp_target`).
enum IcmpTarget {
    /// The connection `h`, whose segment in flight it quotes.
    InFlight(SocketHandle),
    /// No connection has the quoted four-tuple.
    NoConnection,
    /// A connection whose window does not hold the quoted sequence number.
    OutOfWindow,
}

fn tcp_error(e: i32) -> io::Error {
    let msg = match e {
        code::ECONNREFUSED => {
            "connection refused: the peer answered with a reset (nothing listens there)"
        }
        code::ECONNRESET => "connection reset by peer",
        code::ETIMEDOUT => "connection timed out: the peer stopped answering",
        code::EHOSTUNREACH => "no route to host: a router reported the host unreachable",
        code::ENETUNREACH => "network unreachable: a router reported the network unreachable",
        code::ENOPROTOOPT => "protocol unreachable: the peer host does not run TCP",
        code::EPIPE => "broken pipe: the connection is closed",
        _ => "connection failed",
    };
    error(e, msg)
}

fn out_repr<'a>(tcb: &Tcb, seg: &OutSegment, payload: &'a [u8]) -> TcpRepr<'a> {
    let mut r = TcpRepr::new(tcb.local.port(), tcb.remote.port(), seg.seq, seg.flags);
    r.ack_number = seg.ack;
    r.window_len = seg.window;
    r.max_seg_size = seg.mss;
    r.window_scale = seg.window_scale;
    r.timestamp = seg.timestamp;
    r.sack_permitted = seg.sack_permitted;
    r.sack_ranges = seg.sack;
    r.payload = payload;
    r
}

/// An IP packet carrying `r` (for IPv4 with DF set, as for path MTU
/// discovery; IPv6 routers never fragment); `None` for mixed families.
pub(super) fn build_packet(
    ident: u16,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    r: &TcpRepr,
) -> Option<Vec<u8>> {
    let (src, dst) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s, d),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            return Some(crate::ipv6::ipv6_packet_with_payload(
                s,
                d,
                IpProtocol::TCP,
                ttl,
                r.header_len(),
                r.payload,
                |b, s, d| r.emit_around_payload(b, &s, &d),
            ))
        }
        _ => return None,
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::TCP,
        payload_len: r.buffer_len(),
        ttl,
        dscp_ecn: 0,
        ident,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    // Zeroed headers, then the payload appended: a 64 KiB segment is not
    // zeroed first only to be overwritten.
    let mut pkt = Vec::with_capacity(ip.buffer_len());
    pkt.resize(20 + r.header_len(), 0);
    pkt.extend_from_slice(r.payload);
    ip.emit(&mut pkt);
    r.emit_around_payload(&mut pkt[20..], &src, &dst);
    Some(pkt)
}
