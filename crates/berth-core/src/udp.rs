//! UDP sockets (RFC 768, RFC 1122 §4.1): bind, connect (a peer filter), send_to /
//! recv_from, a bounded receive queue whose overflows are counted.

use crate::error::{bad_handle, code, error, would_block};
use crate::iface::IfaceId;
use crate::socket::{Family, SocketHandle, SocketInfo, SocketKind};
use crate::stack::{EventKind, Socket, Stack, Transport};
use crate::table::FourTuple;
use crate::time::Instant;
use berth_wire::ipv4::MAX_UDP_PAYLOAD;
use berth_wire::{DstUnreachable, Error as WireError, IpProtocol, IpRepr, UdpPacket, UdpRepr};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Bookkeeping charged per queued datagram on top of its payload, so that a flood
/// of empty datagrams is bounded too (Linux charges skb truesize similarly).
const DATAGRAM_OVERHEAD: usize = 256;

#[derive(Debug)]
pub(crate) struct UdpSocket {
    /// AF_INET or AF_INET6; addresses below are as on the wire.
    pub family: Family,
    /// Bound address; the IP may be 0.0.0.0 (wildcard).
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// Four-tuple registered in the port table while connected.
    pub tuple: Option<FourTuple>,
    pub reuse_addr: bool,
    pub ttl: Option<u8>,
    pub rx: VecDeque<(SocketAddr, Vec<u8>)>,
    pub rx_charged: usize,
    pub rx_payload: usize,
    pub rx_cap: usize,
    pub drops: u64,
    pub pending_error: Option<i32>,
    pub event_pending: bool,
    /// Set on the stack's UDP forwarder (`forward.rs`).
    pub forward: Option<crate::forward::UdpForward>,
    /// The forwarder that made this flow socket.
    pub flow_of: Option<SocketHandle>,
    /// SO_BINDTODEVICE, for limited broadcasts: they leave by this interface.
    pub device: Option<IfaceId>,
}

impl UdpSocket {
    pub fn info(&self, handle: SocketHandle) -> SocketInfo {
        SocketInfo {
            handle,
            kind: SocketKind::Udp,
            // ss shows a connected UDP socket as ESTAB, others as UNCONN.
            state: if self.peer.is_some() {
                "ESTAB"
            } else {
                "UNCONN"
            },
            recv_q: self.rx_payload,
            send_q: 0,
            local: self.family.user_addr(match (self.tuple, self.local) {
                (Some(t), _) => t.local(),
                (None, Some(l)) => l,
                (None, None) => self.family.any(Ipv4Addr::UNSPECIFIED.into()),
            }),
            peer: self.peer.map(|p| self.family.user_addr(p)),
            drops: self.drops,
            tcp: None,
            // berth queues no UDP sends: nothing on the transmit side.
            mem: crate::mem::SkMem {
                rmem_alloc: self.rx_charged,
                rcvbuf: self.rx_cap,
                drops: self.drops,
                ..Default::default()
            },
        }
    }
}

impl Stack {
    fn udp(&mut self, h: SocketHandle) -> io::Result<&mut UdpSocket> {
        match self.sockets.get_mut(h) {
            Some(Socket::Udp(u)) => Ok(u),
            _ => Err(bad_handle()),
        }
    }

    /// socket(AF_INET or AF_INET6, SOCK_DGRAM, 0): the family is that of the
    /// first address the socket is bound, connected or sent to.
    pub fn udp_socket(&mut self) -> SocketHandle {
        self.udp_socket_of(Family::default())
    }

    /// socket(AF_INET6, SOCK_DGRAM, 0): IPv6, and IPv4 through IPv4-mapped
    /// addresses unless [`Stack::udp_set_only_v6`].
    pub fn udp_socket_v6(&mut self) -> SocketHandle {
        self.udp_socket_of(Family::v6())
    }

    fn udp_socket_of(&mut self, family: Family) -> SocketHandle {
        let cap = self.config.socket_recv_buffer;
        self.sockets.insert(Socket::Udp(UdpSocket {
            family,
            local: None,
            peer: None,
            tuple: None,
            reuse_addr: false,
            ttl: None,
            rx: VecDeque::new(),
            rx_charged: 0,
            rx_payload: 0,
            rx_cap: cap,
            drops: 0,
            pending_error: None,
            event_pending: false,
            forward: None,
            flow_of: None,
            device: None,
        }))
    }

    /// IPV6_V6ONLY (before bind): an IPv6 socket that takes no IPv4.
    pub fn udp_set_only_v6(&mut self, h: SocketHandle, on: bool) -> io::Result<()> {
        let u = self.udp(h)?;
        let bound = u.local.is_some();
        u.family.set_v6only(on, bound)
    }

    /// IPV6_V6ONLY.
    pub fn udp_only_v6(&mut self, h: SocketHandle) -> io::Result<bool> {
        Ok(self.udp(h)?.family.v6only)
    }

    /// SO_BINDTODEVICE, as far as berth needs it: datagrams to the limited
    /// broadcast 255.255.255.255 leave by `iface`, from its address (0.0.0.0
    /// while it has none, as a DHCP client sends, RFC 2131 §4.1). Without it
    /// they leave by the first interface. `None` undoes it.
    pub fn udp_bind_device(&mut self, h: SocketHandle, iface: Option<IfaceId>) -> io::Result<()> {
        if let Some(i) = iface {
            if i.0 >= self.ifaces.len() {
                return Err(error(code::EINVAL, format!("no interface {}", i.0)));
            }
        }
        self.udp(h)?.device = iface;
        Ok(())
    }

    /// SO_REUSEADDR; must be set before bind.
    pub fn udp_set_reuse_addr(&mut self, h: SocketHandle, on: bool) -> io::Result<()> {
        self.udp(h)?.reuse_addr = on;
        Ok(())
    }

    /// SO_RCVBUF: receive queue size in bytes (payload plus per-datagram overhead).
    pub fn udp_set_recv_buffer(&mut self, h: SocketHandle, bytes: usize) -> io::Result<()> {
        self.udp(h)?.rx_cap = bytes.max(DATAGRAM_OVERHEAD + 1);
        Ok(())
    }

    /// IP_TTL for datagrams from this socket.
    pub fn udp_set_ttl(&mut self, h: SocketHandle, ttl: u8) -> io::Result<()> {
        if ttl == 0 {
            return Err(error(code::EINVAL, "TTL 0 is not allowed; use 1..=255"));
        }
        self.udp(h)?.ttl = Some(ttl);
        Ok(())
    }

    /// IP_TTL (IPv6: the unicast hop limit) of datagrams from this socket: the
    /// value set, else the stack default.
    pub fn udp_ttl(&self, h: SocketHandle) -> io::Result<u8> {
        let ttl = match self.sockets.get(h) {
            Some(Socket::Udp(u)) => u.ttl,
            _ => return Err(bad_handle()),
        };
        Ok(ttl.unwrap_or(self.config.default_ttl))
    }

    /// bind(2). Port 0 picks an ephemeral port. The address must be 0.0.0.0 or one of
    /// this host's addresses.
    pub fn udp_bind(
        &mut self,
        h: SocketHandle,
        addr: impl Into<SocketAddr>,
    ) -> io::Result<SocketAddr> {
        let u = self.udp(h)?;
        let (bound, reuse) = (u.local.is_some(), u.reuse_addr);
        let addr = u.family.wire_addr(addr.into())?;
        let v6only = u.family.v6only;
        let local = self.bind_port(Transport::Udp, h, addr, bound, reuse, v6only)?;
        let u = self.udp(h)?;
        u.local = Some(local);
        Ok(u.family.user_addr(local))
    }

    /// The bound address (on the wire), binding the wildcard of the socket's
    /// family (or of `toward`'s) to an ephemeral port first if unbound.
    fn udp_autobind(&mut self, h: SocketHandle, toward: IpAddr) -> io::Result<SocketAddr> {
        let u = self.udp(h)?;
        match u.local {
            Some(l) => Ok(l),
            None => {
                let any = u.family.any(toward);
                self.udp_bind(h, any)?;
                self.udp(h)?.local.ok_or_else(bad_handle)
            }
        }
    }

    /// connect(2): fix the peer; only its datagrams are received afterwards, and ICMP
    /// port unreachable from it surfaces as ConnectionRefused.
    pub fn udp_connect(&mut self, h: SocketHandle, peer: impl Into<SocketAddr>) -> io::Result<()> {
        let given = peer.into();
        if given.port() == 0 || given.ip().is_unspecified() {
            return Err(error(
                code::EINVAL,
                format!("cannot connect to {given}: give a peer address and a non-zero port"),
            ));
        }
        let peer = self.udp(h)?.family.udp_wire_addr(given)?;
        let local = self.udp_autobind(h, peer.ip())?;
        let src = if local.ip().is_unspecified() {
            self.source_for(peer.ip())?
        } else {
            local.ip()
        };
        if src.is_ipv4() != peer.is_ipv4() {
            return Err(error(
                code::EINVAL,
                format!("the socket is bound to {local} and cannot reach {given}"),
            ));
        }
        let tuple = FourTuple::new(SocketAddr::new(src, local.port()), peer);
        let old = self.udp(h)?.tuple;
        self.udp_ports.connect(h, old, tuple)?;
        let u = self.udp(h)?;
        u.peer = Some(peer);
        u.tuple = Some(tuple);
        u.pending_error = None;
        Ok(())
    }

    /// connect(AF_UNSPEC): forget the peer.
    pub fn udp_disconnect(&mut self, h: SocketHandle) -> io::Result<()> {
        let u = self.udp(h)?;
        let tuple = u.tuple.take();
        u.peer = None;
        if let Some(t) = tuple {
            self.udp_ports.disconnect(h, t);
        }
        Ok(())
    }

    /// getsockname(2).
    pub fn udp_local_addr(&mut self, h: SocketHandle) -> io::Result<SocketAddr> {
        let u = self.udp(h)?;
        match (u.tuple, u.local) {
            (Some(t), _) => Ok(u.family.user_addr(t.local())),
            (None, Some(l)) => Ok(u.family.user_addr(l)),
            (None, None) => Err(error(
                code::EINVAL,
                "socket is not bound; bind it or send a datagram first",
            )),
        }
    }

    /// getpeername(2); ENOTCONN when not connected.
    pub fn udp_peer_addr(&mut self, h: SocketHandle) -> io::Result<SocketAddr> {
        let u = self.udp(h)?;
        u.peer.map(|p| u.family.user_addr(p)).ok_or_else(|| {
            error(
                code::ENOTCONN,
                "socket is not connected; call connect first",
            )
        })
    }

    fn take_pending_error(&mut self, h: SocketHandle) -> io::Result<()> {
        let u = self.udp(h)?;
        match u.pending_error.take() {
            Some(e) => Err(error(
                e,
                match u.peer.map(|p| u.family.user_addr(p)) {
                    Some(p) => {
                        format!("{p} answered with ICMP port unreachable: nothing listens there")
                    }
                    None => "the peer refused the datagram (ICMP unreachable)".to_string(),
                },
            )),
            None => Ok(()),
        }
    }

    /// sendto(2). Binds an ephemeral port first if needed. Datagrams larger than the
    /// MTU are fragmented; the maximum is 65,507 bytes.
    pub fn udp_send_to(
        &mut self,
        now: Instant,
        h: SocketHandle,
        data: &[u8],
        dst: impl Into<SocketAddr>,
    ) -> io::Result<usize> {
        let dst = dst.into();
        let wire = self.udp(h)?.family.udp_wire_addr(dst)?;
        self.udp_send_wire(now, h, data, wire)
    }

    /// sendto(2) to a destination already in wire form.
    fn udp_send_wire(
        &mut self,
        now: Instant,
        h: SocketHandle,
        data: &[u8],
        dst: SocketAddr,
    ) -> io::Result<usize> {
        self.take_pending_error(h)?;
        if data.len() > MAX_UDP_PAYLOAD {
            return Err(error(
                code::EMSGSIZE,
                format!(
                    "{} bytes exceed the largest UDP datagram ({MAX_UDP_PAYLOAD}); split the message",
                    data.len()
                ),
            ));
        }
        if dst.port() == 0 {
            return Err(error(code::EINVAL, "destination port 0 is not allowed"));
        }
        let local = self.udp_autobind(h, dst.ip())?;
        let (src, ttl) = {
            let u = self.udp(h)?;
            let src = match u.tuple {
                Some(t) if Some(dst) == u.peer => Some(t.local_addr),
                _ => Some(local.ip()).filter(|ip| {
                    !ip.is_unspecified() && !matches!(ip, IpAddr::V4(a) if a.is_broadcast())
                }),
            };
            (src, u.ttl)
        };
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        let repr = UdpRepr {
            src_port: local.port(),
            dst_port: dst.port(),
            payload: data,
        };
        let device = self.udp(h)?.device;
        if let (Some(iface), IpAddr::V4(Ipv4Addr::BROADCAST)) = (device, dst.ip()) {
            let emit = |buf: &mut [u8], s: Ipv4Addr, d: Ipv4Addr| {
                repr.emit(buf, &IpAddr::V4(s), &IpAddr::V4(d))
            };
            self.send_ipv4_broadcast_on(now, iface, IpProtocol::UDP, ttl, repr.buffer_len(), emit)?;
            self.stats.udp_out_datagrams += 1;
            return Ok(data.len());
        }
        self.send_ip(
            now,
            src,
            dst.ip(),
            IpProtocol::UDP,
            ttl,
            repr.buffer_len(),
            true,
            |buf, s, d| repr.emit(buf, &s, &d),
        )?;
        self.stats.udp_out_datagrams += 1;
        self.process_loopback(now);
        Ok(data.len())
    }

    /// send(2) on a connected socket.
    pub fn udp_send(&mut self, now: Instant, h: SocketHandle, data: &[u8]) -> io::Result<usize> {
        let peer = self.udp(h)?.peer.ok_or_else(|| {
            error(
                code::EDESTADDRREQ,
                "socket is not connected: use send_to with a destination, or connect first",
            )
        })?;
        self.udp_send_wire(now, h, data, peer)
    }

    /// recvfrom(2). A datagram longer than `buf` is truncated and the rest discarded,
    /// as with the BSD call. `WouldBlock` when nothing is queued.
    pub fn udp_recv_from(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        self.take_pending_error(h)?;
        let u = self.udp(h)?;
        let (from, data) = u.rx.pop_front().ok_or_else(would_block)?;
        u.rx_charged -= data.len() + DATAGRAM_OVERHEAD;
        u.rx_payload -= data.len();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        let from = u.family.user_addr(from);
        self.udp_mem.adjust(data.len() + DATAGRAM_OVERHEAD, 0);
        Ok((n, from))
    }

    /// recvfrom(2) with MSG_PEEK: the datagram stays queued.
    pub fn udp_peek_from(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        self.take_pending_error(h)?;
        let u = self.udp(h)?;
        let (from, data) = u.rx.front().ok_or_else(would_block)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok((n, u.family.user_addr(*from)))
    }

    /// recv(2) on a connected socket (works unconnected too, dropping the address).
    pub fn udp_recv(&mut self, h: SocketHandle, buf: &mut [u8]) -> io::Result<usize> {
        self.udp_recv_from(h, buf).map(|(n, _)| n)
    }

    /// Length of the next queued datagram (FIONREAD for UDP).
    pub fn udp_next_len(&mut self, h: SocketHandle) -> io::Result<Option<usize>> {
        Ok(self.udp(h)?.rx.front().map(|d| d.1.len()))
    }

    pub(crate) fn udp_close(&mut self, h: SocketHandle, u: UdpSocket) {
        self.udp_mem.adjust(u.rx_charged, 0);
        if let Some(l) = u.local {
            self.udp_ports.unbind(h, l.port(), u.tuple);
        }
        self.udp_forward_closed(u.flow_of, u.forward);
    }

    pub(crate) fn udp_input(
        &mut self,
        now: Instant,
        iface: Option<IfaceId>,
        packet: &[u8],
        ip: &IpRepr,
        payload: &[u8],
    ) {
        let repr = match UdpPacket::new_checked(payload).and_then(|p| {
            UdpRepr::parse_with(&p, &ip.src_addr(), &ip.dst_addr(), !self.rx_l4_csum_ok)
        }) {
            Ok(r) => r,
            Err(WireError::BadChecksum) => {
                self.stats.udp_in_csum_errors += 1;
                return;
            }
            Err(_) => {
                self.stats.udp_in_errors += 1;
                return;
            }
        };
        let local = SocketAddr::new(ip.dst_addr(), repr.dst_port);
        let remote = SocketAddr::new(ip.src_addr(), repr.src_port);
        // Another host's address (forwarding mode): only its flows' sockets.
        let found = if self.other_host(iface, ip.dst_addr()) {
            self.udp_ports.lookup_exact(&FourTuple::new(local, remote))
        } else {
            self.udp_ports.lookup(local, remote)
        };
        let found = found.or_else(|| {
            self.forwarding(iface)
                .then(|| self.udp_forward_flow(local, remote))
                .flatten()
        });
        let Some(h) = found else {
            self.stats.udp_no_ports += 1;
            // RFC 1122 §4.1.3.1: port unreachable, but not for broadcasts.
            if self.is_local_addr(ip.dst_addr()) {
                match ip {
                    IpRepr::Ipv4(ip) => {
                        self.icmp_dest_unreachable(now, packet, ip, DstUnreachable::PortUnreachable)
                    }
                    IpRepr::Ipv6(_) => self.icmpv6_port_unreachable(now, packet),
                }
            }
            return;
        };
        let Some(Socket::Udp(u)) = self.sockets.get_mut(h) else {
            self.stats.udp_no_ports += 1;
            return;
        };
        let charge = repr.payload.len() + DATAGRAM_OVERHEAD;
        if u.rx_charged + charge > u.rx_cap {
            u.drops += 1;
            self.stats.udp_rcvbuf_errors += 1;
            return;
        }
        // Stack-wide: nothing is queued above udp_mem's high mark (Linux
        // __udp_enqueue_schedule_skb → -ENOBUFS, counted as MemErrors).
        if charge > self.udp_mem.free() {
            u.drops += 1;
            self.stats.udp_mem_errors += 1;
            return;
        }
        self.udp_mem.adjust(0, charge);
        let was_empty = u.rx.is_empty();
        u.rx.push_back((remote, repr.payload.to_vec()));
        u.rx_charged += charge;
        u.rx_payload += repr.payload.len();
        self.stats.udp_in_datagrams += 1;
        match ip {
            IpRepr::Ipv4(_) => self.stats.ip_in_delivers += 1,
            IpRepr::Ipv6(_) => self.stats.ip6_in_delivers += 1,
        }
        if was_empty {
            self.push_event(h, EventKind::Readable);
        }
    }
}
