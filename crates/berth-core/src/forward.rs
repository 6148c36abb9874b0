//! Forwarding mode: terminate flows addressed to *anyone* (gVisor's
//! `tcp.Forwarder` / `udp.Forwarder` are the model; Linux gets the same with
//! TPROXY and IP_TRANSPARENT).
//!
//! An interface in forwarding mode ([`Stack::set_forwarding`]) accepts unicast
//! packets for any destination as if the address were ours. What happens to them:
//!
//! - **TCP.** A segment that matches no socket's exact four-tuple (and, for our
//!   own addresses, no listener) goes to the stack's *TCP forwarder*
//!   ([`Stack::tcp_forwarder`]), a listening socket bound to no port. A SYN
//!   becomes a **pending request**: no SYN-ACK yet, because the application
//!   first decides (typically after connecting to the real destination). It
//!   takes requests with [`Stack::tcp_forward_next`] and either accepts one
//!   ([`Stack::tcp_forward_accept`]: the SYN-ACK goes out from the original
//!   destination, and from then on the entry lives in the forwarder's SYN queue
//!   with the usual retransmission, RST and overflow rules of `listen.rs`) or
//!   refuses it ([`Stack::tcp_forward_refuse`]: a RST, or an ICMP destination
//!   unreachable). The established connection lands in the forwarder's accept
//!   queue; [`Stack::tcp_forward_take`] picks it out by its four-tuple (plain
//!   `tcp_accept` works too). Its local address is the original destination.
//!   Requests in flight (pending plus half-open) are bounded; SYNs over the
//!   bound are dropped and counted (`tcp_forward_drops`), as a full SYN queue
//!   drops them, and the client retransmits.
//! - **UDP.** A datagram that matches no socket goes to the *UDP forwarder*
//!   ([`Stack::udp_forwarder`]), which makes a **flow**: a UDP socket connected
//!   from the original destination to the sender, holding the datagram, queued
//!   for [`Stack::udp_forward_accept`]. Later datagrams of the flow match its
//!   four-tuple; replies sent on it come from the original destination. Flows
//!   are bounded per forwarder (`udp_forward_drops` beyond); an application
//!   reclaims idle ones by closing them.
//! - **ICMP** echo requests to other hosts are not answered by the stack; raw
//!   sockets see them (as they see every ICMP message), and a raw socket with
//!   [`Stack::raw_set_transparent`] may answer from the original destination.

use crate::error::{code, error, would_block};
use crate::iface::IfaceId;
use crate::socket::{Family, SocketHandle};
use crate::stack::{EventKind, Socket, Stack};
use crate::table::FourTuple;
use crate::tcp::listen::{Listener, SynEntry};
use crate::time::Instant;
use berth_wire::{
    DstUnreachable, Icmpv6DstUnreachable, IpProtocol, Ipv4Repr, Ipv6Repr, SeqNumber, TcpFlags,
    TcpRepr,
};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// A connection or flow offered to the application: who opened it and where it
/// was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ForwardRequest {
    /// The original destination: the local address of the connection if accepted.
    pub local: SocketAddr,
    /// The peer that sent the SYN (or the datagram).
    pub remote: SocketAddr,
}

/// How to turn a TCP request down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A reset: the destination refused the connection (ECONNREFUSED at the peer).
    Reset,
    /// ICMP destination unreachable, net (code 0; ICMPv6 no route).
    NetUnreachable,
    /// ICMP destination unreachable, host (code 1; ICMPv6 address unreachable).
    HostUnreachable,
    /// ICMP destination unreachable, administratively prohibited (code 13;
    /// ICMPv6 code 1).
    Prohibited,
}

/// The TCP forwarder's own state, inside its `Listener`.
#[derive(Debug)]
pub(crate) struct TcpForward {
    /// Most requests pending plus half-open at once.
    pub max_in_flight: usize,
    /// SYNs waiting for the application's decision.
    pub pending: HashMap<FourTuple, SynEntry>,
    /// Pending requests not yet handed out by `tcp_forward_next`, oldest first.
    pub fresh: VecDeque<FourTuple>,
}

/// The UDP forwarder's state.
#[derive(Debug)]
pub(crate) struct UdpForward {
    pub max_flows: usize,
    /// Flows alive (accepted or not) that this forwarder made.
    pub live: usize,
    /// Flows made but not yet accepted, oldest first.
    pub fresh: VecDeque<SocketHandle>,
}

impl Stack {
    /// Put interface `iface` in forwarding mode (or take it out): unicast
    /// packets for any address are taken in, and flows that match no socket go
    /// to the forwarders. Without forwarders they are reset or dropped as for
    /// a closed port.
    pub fn set_forwarding(&mut self, iface: IfaceId, on: bool) -> io::Result<()> {
        let i = self
            .ifaces
            .get_mut(iface.0)
            .ok_or_else(|| error(code::EINVAL, format!("no interface {}", iface.0)))?;
        i.forwarding = on;
        Ok(())
    }

    /// Whether packets arriving on `iface` are in forwarding mode.
    pub fn forwarding(&self, iface: Option<IfaceId>) -> bool {
        iface
            .and_then(|i| self.ifaces.get(i.0))
            .is_some_and(|i| i.forwarding)
    }

    /// Whether `dst`, arriving on `iface`, is another host's unicast address
    /// taken in by forwarding mode.
    pub(crate) fn other_host(&self, iface: Option<IfaceId>, dst: IpAddr) -> bool {
        self.forwarding(iface)
            && unicast(dst)
            && !self.is_local_addr(dst)
            && !matches!(dst, IpAddr::V4(a) if self.is_broadcast(a))
    }

    /// The stack's TCP forwarder: a listening socket, bound to no port, that
    /// receives the SYNs of forwarding interfaces no socket wants. At most
    /// `max_in_flight` requests are pending or half-open at once (and as many
    /// established connections wait to be taken). One per stack: closing it
    /// frees the place.
    pub fn tcp_forwarder(&mut self, max_in_flight: usize) -> io::Result<SocketHandle> {
        if self
            .tcp_forwarder
            .is_some_and(|h| self.sockets.get(h).is_some())
        {
            return Err(error(
                code::EADDRINUSE,
                "this stack already has a TCP forwarder; close it first",
            ));
        }
        let max = max_in_flight.clamp(1, 65_535);
        // No family: requests and connections show plain IPv4 and IPv6
        // addresses, never IPv4-mapped ones.
        let mut t = self.new_tcp_socket();
        t.family = Family::default();
        let mut l = Listener::new(max);
        l.forward = Some(TcpForward {
            max_in_flight: max,
            pending: HashMap::new(),
            fresh: VecDeque::new(),
        });
        t.listener = Some(l);
        let h = self.sockets.insert(Socket::Tcp(t));
        self.tcp_forwarder = Some(h);
        Ok(h)
    }

    fn tcp_forward_state(&mut self, h: SocketHandle) -> io::Result<&mut TcpForward> {
        match self.sockets.get_mut(h) {
            Some(Socket::Tcp(t)) => t
                .listener
                .as_mut()
                .and_then(|l| l.forward.as_mut())
                .ok_or_else(|| {
                    error(
                        code::EINVAL,
                        "not a TCP forwarder; make one with tcp_forwarder",
                    )
                }),
            _ => Err(crate::error::bad_handle()),
        }
    }

    /// A SYN on a forwarding interface that no socket wants (`listen.rs` calls
    /// this where a listener would answer with a SYN-ACK): queue it for the
    /// application. Retransmitted SYNs of a pending request change nothing.
    pub(crate) fn tcp_forward_syn(&mut self, h: SocketHandle, tuple: FourTuple, e: SynEntry) {
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return;
        };
        let Some(l) = &mut t.listener else { return };
        let half_open = l.syn_queue.len();
        let Some(f) = &mut l.forward else { return };
        if f.pending.contains_key(&tuple) {
            return;
        }
        if f.pending.len() + half_open >= f.max_in_flight {
            self.stats.tcp_forward_drops += 1;
            return;
        }
        f.pending.insert(tuple, e);
        f.fresh.push_back(tuple);
        self.stats.tcp_forward_requests += 1;
        self.tcp_update_events(h);
        // The forwarder may be readable already (a connection waits to be
        // taken), so readiness does not change and raises nothing; whoever
        // waits for requests must hear of this one.
        self.tcp_forward_wake(h);
    }

    /// A RST for a pending request: the client gave up. RFC 5961 §3.2 as for
    /// a half-open connection: only one at exactly the next sequence number.
    pub(crate) fn tcp_forward_rst(&mut self, h: SocketHandle, tuple: FourTuple, seq: SeqNumber) {
        if let Ok(f) = self.tcp_forward_state(h) {
            if f.pending.get(&tuple).is_some_and(|e| seq == e.irs + 1) {
                f.pending.remove(&tuple);
                f.fresh.retain(|t| *t != tuple);
            }
        }
        self.tcp_update_events(h);
    }

    /// A forwarder's half-open connection completed or failed: wake whoever
    /// waits in `tcp_forward_take` (the readiness of the forwarder may not
    /// change, so `tcp_update_events` would raise nothing).
    pub(crate) fn tcp_forward_wake(&mut self, h: SocketHandle) {
        if matches!(self.sockets.get(h), Some(Socket::Tcp(t))
            if t.listener.as_ref().is_some_and(|l| l.forward.is_some()))
        {
            self.push_event(h, EventKind::Readable);
        }
    }

    /// The next request not handed out yet. `WouldBlock` when there is none.
    pub fn tcp_forward_next(&mut self, h: SocketHandle) -> io::Result<ForwardRequest> {
        let family = match self.sockets.get(h) {
            Some(Socket::Tcp(t)) => t.family,
            _ => return Err(crate::error::bad_handle()),
        };
        let f = self.tcp_forward_state(h)?;
        let mut next = None;
        while let Some(tuple) = f.fresh.pop_front() {
            if f.pending.contains_key(&tuple) {
                next = Some(ForwardRequest {
                    local: family.user_addr(tuple.local()),
                    remote: family.user_addr(tuple.remote()),
                });
                break;
            }
        }
        self.tcp_update_events(h);
        next.ok_or_else(would_block)
    }

    fn forward_tuple(h: &ForwardRequest) -> FourTuple {
        FourTuple::new(unmap(h.local), unmap(h.remote))
    }

    fn take_pending(&mut self, h: SocketHandle, req: &ForwardRequest) -> io::Result<SynEntry> {
        let tuple = Self::forward_tuple(req);
        let f = self.tcp_forward_state(h)?;
        let e = f.pending.remove(&tuple).ok_or_else(|| {
            error(
                code::ECONNABORTED,
                format!(
                    "no pending connection from {} to {}: the client gave up or it was decided already",
                    req.remote, req.local
                ),
            )
        })?;
        f.fresh.retain(|t| *t != tuple);
        self.tcp_update_events(h);
        Ok(e)
    }

    /// Accept a pending request: answer its SYN with a SYN-ACK from the original
    /// destination. The connection is ready for [`Stack::tcp_forward_take`]
    /// once the client's ACK arrives.
    pub fn tcp_forward_accept(
        &mut self,
        now: Instant,
        h: SocketHandle,
        req: &ForwardRequest,
    ) -> io::Result<()> {
        self.note_time(now);
        let e = self.take_pending(h, req)?;
        let tuple = Self::forward_tuple(req);
        // Time the handshake from now: the wait for the decision is not path RTT.
        let mut e = e;
        e.next_at = now + self.config.tcp.rto_initial;
        self.tcp_send_synack(now, &e);
        self.tcp_syn_queue_add(h, tuple, e);
        Ok(())
    }

    /// Refuse a pending request with a RST or an ICMP destination unreachable
    /// sent from the original destination's side.
    pub fn tcp_forward_refuse(
        &mut self,
        now: Instant,
        h: SocketHandle,
        req: &ForwardRequest,
        how: Refusal,
    ) -> io::Result<()> {
        self.note_time(now);
        let e = self.take_pending(h, req)?;
        self.stats.tcp_forward_refused += 1;
        let ack = e.irs + 1;
        if how == Refusal::Reset {
            self.tcp_send_rst(now, e.local, e.remote, SeqNumber(0), Some(ack));
            return Ok(());
        }
        // The ICMP error quotes the SYN (RFC 792: IP header + 8 bytes, enough
        // for the peer to find its connection by ports and sequence number).
        let syn = TcpRepr::new(e.remote.port(), e.local.port(), e.irs, TcpFlags::SYN);
        let mut tcp = vec![0u8; syn.buffer_len()];
        syn.emit(&mut tcp, &e.remote.ip(), &e.local.ip());
        match (e.remote.ip(), e.local.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let ip = Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: IpProtocol::TCP,
                    payload_len: tcp.len(),
                    ttl: 64,
                    dscp_ecn: 0,
                    ident: 0,
                    dont_frag: true,
                    more_frags: false,
                    frag_offset: 0,
                };
                let mut pkt = vec![0u8; 20 + tcp.len()];
                ip.emit(&mut pkt[..20]);
                pkt[20..].copy_from_slice(&tcp);
                let reason = match how {
                    Refusal::NetUnreachable => DstUnreachable::NetUnreachable,
                    Refusal::HostUnreachable => DstUnreachable::HostUnreachable,
                    _ => DstUnreachable::Other(13),
                };
                self.icmp_dest_unreachable(now, &pkt, &ip, reason);
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let ip = Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::TCP,
                    payload_len: tcp.len(),
                    hop_limit: 64,
                    traffic_class: 0,
                    flow_label: 0,
                };
                let mut pkt = vec![0u8; 40 + tcp.len()];
                ip.emit(&mut pkt[..40]);
                pkt[40..].copy_from_slice(&tcp);
                let reason = match how {
                    Refusal::NetUnreachable => Icmpv6DstUnreachable::NoRoute,
                    Refusal::HostUnreachable => Icmpv6DstUnreachable::AddrUnreachable,
                    _ => Icmpv6DstUnreachable::AdminProhibited,
                };
                self.icmpv6_dest_unreachable(now, &pkt, reason);
            }
            _ => {}
        }
        self.process_loopback(now);
        Ok(())
    }

    /// The established connection of an accepted request, taken out of the
    /// forwarder's accept queue: `Ok(None)` while the handshake is still on;
    /// an error when the connection is gone (the client reset it, or never
    /// answered the SYN-ACKs).
    pub fn tcp_forward_take(
        &mut self,
        h: SocketHandle,
        req: &ForwardRequest,
    ) -> io::Result<Option<SocketHandle>> {
        let tuple = Self::forward_tuple(req);
        self.tcp_forward_state(h)?;
        let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) else {
            return Err(crate::error::bad_handle());
        };
        let Some(l) = &mut t.listener else {
            return Err(crate::error::bad_handle());
        };
        if l.syn_queue.contains_key(&tuple) {
            return Ok(None);
        }
        let children: Vec<SocketHandle> = l.accept_queue.iter().copied().collect();
        let found = children.into_iter().find(|&c| {
            matches!(self.sockets.get(c), Some(Socket::Tcp(ct)) if ct.tuple == Some(tuple)
                || ct.tcb.as_ref().is_some_and(|b| b.local == tuple.local() && b.remote == tuple.remote()))
        });
        let Some(c) = found else {
            return Err(error(
                code::ECONNABORTED,
                format!(
                    "the connection from {} to {} is gone: the client reset it or never completed the handshake",
                    req.remote, req.local
                ),
            ));
        };
        if let Some(Socket::Tcp(t)) = self.sockets.get_mut(h) {
            if let Some(l) = &mut t.listener {
                l.accept_queue.retain(|&x| x != c);
            }
        }
        self.tcp_update_events(h);
        if let Some(Socket::Tcp(ct)) = self.sockets.get_mut(c) {
            ct.parent = None;
        }
        self.tcp_update_events(c);
        Ok(Some(c))
    }

    // ---- UDP ------------------------------------------------------------------------

    /// The stack's UDP forwarder: datagrams on forwarding interfaces that no
    /// socket wants become flows (see the module documentation), at most
    /// `max_flows` alive at once. One per stack.
    pub fn udp_forwarder(&mut self, max_flows: usize) -> io::Result<SocketHandle> {
        if self
            .udp_forwarder
            .is_some_and(|h| self.sockets.get(h).is_some())
        {
            return Err(error(
                code::EADDRINUSE,
                "this stack already has a UDP forwarder; close it first",
            ));
        }
        let h = self.udp_socket();
        if let Some(Socket::Udp(u)) = self.sockets.get_mut(h) {
            u.forward = Some(UdpForward {
                max_flows: max_flows.max(1),
                live: 0,
                fresh: VecDeque::new(),
            });
        }
        self.udp_forwarder = Some(h);
        Ok(h)
    }

    /// A datagram from `remote` to `local` that no socket wants, on a forwarding
    /// interface: the socket of a new flow for it, or `None` (no forwarder, or
    /// its flows are all in use: dropped and counted).
    pub(crate) fn udp_forward_flow(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketHandle> {
        let fh = self.udp_forwarder?;
        if !unicast(local.ip()) || !unicast(remote.ip()) || remote.port() == 0 || local.port() == 0
        {
            return None;
        }
        let Some(Socket::Udp(fwd)) = self.sockets.get(fh) else {
            return None;
        };
        let f = fwd.forward.as_ref()?;
        if f.live >= f.max_flows {
            self.stats.udp_forward_drops += 1;
            return None;
        }
        let tuple = FourTuple::new(local, remote);
        let h = if local.is_ipv6() {
            self.udp_socket_v6()
        } else {
            self.udp_socket()
        };
        if self.udp_ports.insert_tuple(h, tuple).is_err() {
            self.sockets.remove(h);
            return None;
        }
        if let Some(Socket::Udp(u)) = self.sockets.get_mut(h) {
            u.local = Some(local);
            u.peer = Some(remote);
            u.tuple = Some(tuple);
            u.flow_of = Some(fh);
        }
        if let Some(Socket::Udp(fwd)) = self.sockets.get_mut(fh) {
            if let Some(f) = &mut fwd.forward {
                f.live += 1;
                f.fresh.push_back(h);
                // Every new flow is news (one queued event at most).
                self.push_event(fh, EventKind::Readable);
            }
        }
        self.stats.udp_forward_flows += 1;
        Some(h)
    }

    /// The next new flow: its socket (connected, its local address the original
    /// destination) and addresses. `WouldBlock` when there is none.
    pub fn udp_forward_accept(
        &mut self,
        h: SocketHandle,
    ) -> io::Result<(SocketHandle, ForwardRequest)> {
        loop {
            let f = match self.sockets.get_mut(h) {
                Some(Socket::Udp(u)) => u.forward.as_mut().ok_or_else(|| {
                    error(
                        code::EINVAL,
                        "not a UDP forwarder; make one with udp_forwarder",
                    )
                })?,
                _ => return Err(crate::error::bad_handle()),
            };
            let Some(c) = f.fresh.pop_front() else {
                return Err(would_block());
            };
            if let Some(Socket::Udp(u)) = self.sockets.get(c) {
                if let (Some(l), Some(r)) = (u.local, u.peer) {
                    let req = ForwardRequest {
                        local: u.family.user_addr(l),
                        remote: u.family.user_addr(r),
                    };
                    return Ok((c, req));
                }
            }
        }
    }

    /// A flow socket closes: its forwarder may make another. A forwarder that
    /// closes takes its unaccepted flows with it.
    pub(crate) fn udp_forward_closed(
        &mut self,
        flow_of: Option<SocketHandle>,
        fwd: Option<UdpForward>,
    ) {
        if let Some(fh) = flow_of {
            if let Some(Socket::Udp(u)) = self.sockets.get_mut(fh) {
                if let Some(f) = &mut u.forward {
                    f.live = f.live.saturating_sub(1);
                }
            }
        }
        if let Some(f) = fwd {
            for c in f.fresh {
                let _ = self.close(c);
            }
        }
    }
}

/// An IPv4-mapped address as the IPv4 address on the wire.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}
