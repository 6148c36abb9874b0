//! Raw IPv4 sockets, with Linux semantics: opened by protocol number, every inbound
//! datagram of that protocol addressed to this host is copied to each raw socket
//! *with its IP header* (after reassembly), while the stack also handles it. Sending
//! either lets the stack build the header or, with IP_HDRINCL, takes the caller's
//! header, filling in source address and identification when they are zero and
//! always the total length and the checksum (raw(7)). IPPROTO_RAW (255) implies IP_HDRINCL and
//! receives nothing.

use crate::error::{bad_handle, code, error, would_block};
use crate::socket::{SocketHandle, SocketInfo, SocketKind};
use crate::stack::{EventKind, Socket, Stack};
use crate::time::Instant;
use berth_wire::{checksum, IpProtocol, IpRepr, Ipv4Addr, Ipv4Packet};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

const PACKET_OVERHEAD: usize = 256;
/// IPPROTO_RAW: a raw socket of this protocol sends whole IP packets (IP_HDRINCL) and
/// receives nothing.
pub const IPPROTO_RAW: u8 = 255;

#[derive(Debug)]
pub(crate) struct RawSocket {
    /// AF_INET6: receives the upper-layer message without the IPv6 header and
    /// sends one (raw(7), RFC 3542 §3); ICMPv6 checksums are the stack's.
    pub v6: bool,
    pub protocol: IpProtocol,
    pub hdrincl: bool,
    /// bind(2): receive only datagrams addressed to this address.
    pub bound: Option<IpAddr>,
    /// IP_TRANSPARENT: may bind (and so send from) another host's address.
    pub transparent: bool,
    pub ttl: Option<u8>,
    /// Each datagram's addresses and hop limit, and its data.
    pub rx: VecDeque<(RawRecvMeta, Vec<u8>)>,
    pub rx_charged: usize,
    pub rx_payload: usize,
    pub rx_cap: usize,
    pub drops: u64,
    pub event_pending: bool,
}

/// What recvmsg(2) on a raw socket tells besides the data: the source, the
/// destination (IP_PKTINFO / IPV6_PKTINFO) and the TTL or hop limit the packet
/// arrived with (IP_RECVTTL / IPV6_RECVHOPLIMIT, RFC 3542 §6.3). An IPv6 raw
/// socket's data has no header, so this is the only way to learn the last two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecvMeta {
    /// The source address.
    pub from: IpAddr,
    /// The destination address (in forwarding mode another host's).
    pub to: IpAddr,
    /// IPv4 TTL or IPv6 hop limit, as received.
    pub hop_limit: u8,
}

impl RawSocket {
    pub fn info(&self, handle: SocketHandle) -> SocketInfo {
        SocketInfo {
            handle,
            kind: SocketKind::Raw(self.protocol),
            state: "UNCONN",
            recv_q: self.rx_payload,
            send_q: 0,
            // ss shows the protocol number in the port column for raw sockets.
            local: SocketAddr::new(
                self.bound.unwrap_or(if self.v6 {
                    Ipv6Addr::UNSPECIFIED.into()
                } else {
                    Ipv4Addr::UNSPECIFIED.into()
                }),
                self.protocol.0 as u16,
            ),
            peer: None,
            drops: self.drops,
            tcp: None,
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
    fn raw(&mut self, h: SocketHandle) -> io::Result<&mut RawSocket> {
        match self.sockets.get_mut(h) {
            Some(Socket::Raw(r)) => Ok(r),
            _ => Err(bad_handle()),
        }
    }

    /// socket(AF_INET, SOCK_RAW, protocol)
    pub fn raw_socket(&mut self, protocol: IpProtocol) -> io::Result<SocketHandle> {
        self.raw_socket_of(protocol, false)
    }

    /// socket(AF_INET6, SOCK_RAW, protocol), e.g. ICMPv6 for `ping -6`: data
    /// in both directions is the message after the IPv6 header; for ICMPv6 the
    /// stack fills in the checksum (RFC 3542 §3.1).
    pub fn raw_socket_v6(&mut self, protocol: IpProtocol) -> io::Result<SocketHandle> {
        if protocol.0 == IPPROTO_RAW {
            return Err(error(
                code::EPROTONOSUPPORT,
                "IPPROTO_RAW is IPv4's; an IPv6 raw socket names its next header",
            ));
        }
        self.raw_socket_of(protocol, true)
    }

    fn raw_socket_of(&mut self, protocol: IpProtocol, v6: bool) -> io::Result<SocketHandle> {
        if protocol.0 == 0 {
            return Err(error(
                code::EPROTONOSUPPORT,
                "raw sockets need a protocol number (e.g. 1 for ICMP, 255 for IPPROTO_RAW)",
            ));
        }
        let cap = self.config.socket_recv_buffer;
        let h = self.sockets.insert(Socket::Raw(RawSocket {
            v6,
            protocol,
            hdrincl: protocol.0 == IPPROTO_RAW,
            bound: None,
            transparent: false,
            ttl: None,
            rx: VecDeque::new(),
            rx_charged: 0,
            rx_payload: 0,
            rx_cap: cap,
            drops: 0,
            event_pending: false,
        }));
        if protocol.0 != IPPROTO_RAW {
            self.raw_by_proto.entry(protocol.0).or_default().push(h);
        }
        Ok(h)
    }

    /// IP_HDRINCL: the caller supplies the IP header when sending.
    pub fn raw_set_hdrincl(&mut self, h: SocketHandle, on: bool) -> io::Result<()> {
        let r = self.raw(h)?;
        if r.v6 {
            return Err(error(
                code::ENOPROTOOPT,
                "IP_HDRINCL is an IPv4 option; IPv6 raw sockets send the payload only",
            ));
        }
        if !on && r.protocol.0 == IPPROTO_RAW {
            return Err(error(
                code::EINVAL,
                "IPPROTO_RAW sockets always include the header",
            ));
        }
        r.hdrincl = on;
        Ok(())
    }

    /// IP_TTL (IPv6: hop limit) for packets from this socket.
    pub fn raw_set_ttl(&mut self, h: SocketHandle, ttl: u8) -> io::Result<()> {
        if ttl == 0 {
            return Err(error(code::EINVAL, "TTL 0 is not allowed; use 1..=255"));
        }
        self.raw(h)?.ttl = Some(ttl);
        Ok(())
    }

    /// IP_TRANSPARENT (Linux ip(7)): the socket may be bound to an address
    /// that is not this host's, to answer for a forwarded destination
    /// (`forward.rs`) from that destination's address.
    pub fn raw_set_transparent(&mut self, h: SocketHandle, on: bool) -> io::Result<()> {
        self.raw(h)?.transparent = on;
        Ok(())
    }

    /// bind(2) for a raw socket: only the address matters (there are no ports).
    pub fn raw_bind(&mut self, h: SocketHandle, addr: impl Into<IpAddr>) -> io::Result<()> {
        let addr = addr.into();
        let v6 = self.raw(h)?.v6;
        if addr.is_ipv6() != v6 {
            return Err(wrong_family(addr, v6));
        }
        let transparent = self.raw(h)?.transparent;
        if !addr.is_unspecified() && !transparent && !self.is_local_addr(addr) {
            return Err(error(
                code::EADDRNOTAVAIL,
                format!(
                    "{addr} is not an address of this host (set IP_TRANSPARENT to answer for it)"
                ),
            ));
        }
        self.raw(h)?.bound = Some(addr).filter(|a| !a.is_unspecified());
        Ok(())
    }

    /// sendto(2). Without IP_HDRINCL `data` is the payload; with it, a whole packet.
    pub fn raw_send_to(
        &mut self,
        now: Instant,
        h: SocketHandle,
        data: &[u8],
        dst: impl Into<IpAddr>,
    ) -> io::Result<usize> {
        let dst = dst.into();
        let (protocol, hdrincl, bound, ttl, v6) = {
            let r = self.raw(h)?;
            (r.protocol, r.hdrincl, r.bound, r.ttl, r.v6)
        };
        if dst.is_ipv6() != v6 {
            return Err(wrong_family(dst, v6));
        }
        let icmpv6 = v6 && protocol == IpProtocol::ICMPV6;
        if icmpv6 && data.len() < 4 {
            return Err(error(
                code::EINVAL,
                format!(
                    "{} bytes are not an ICMPv6 message (4-byte header)",
                    data.len()
                ),
            ));
        }
        if !hdrincl {
            let ttl = ttl.unwrap_or(self.config.default_ttl);
            self.send_ip(
                now,
                bound,
                dst,
                protocol,
                ttl,
                data.len(),
                true,
                |buf, s, d| {
                    buf.copy_from_slice(data);
                    if icmpv6 {
                        // RFC 3542 §3.1: the kernel computes ICMPv6 checksums.
                        buf[2..4].fill(0);
                        let c = checksum::transport(&s, &d, IpProtocol::ICMPV6.0, buf);
                        buf[2..4].copy_from_slice(&c.to_be_bytes());
                    }
                },
            )?;
            self.stats.raw_out_packets += 1;
            self.process_loopback(now);
            return Ok(data.len());
        }
        if data.len() < 20 || data.len() > 65_535 {
            return Err(error(
                code::EINVAL,
                format!(
                    "IP_HDRINCL packet of {} bytes: need a 20..=65535-byte IPv4 packet",
                    data.len()
                ),
            ));
        }
        let mut pkt = data.to_vec();
        let hl = ((pkt[0] & 0x0f) as usize) * 4;
        if pkt[0] >> 4 != 4 || hl < 20 || hl > pkt.len() {
            return Err(error(
                code::EINVAL,
                "IP_HDRINCL packet has no valid IPv4 header (version 4, IHL 5..=15 within the data)",
            ));
        }
        let tl = (pkt.len() as u16).to_be_bytes();
        pkt[2..4].copy_from_slice(&tl);
        if pkt[4..6] == [0, 0] {
            let id = self.next_ident().to_be_bytes();
            pkt[4..6].copy_from_slice(&id);
        }
        if pkt[12..16] == [0, 0, 0, 0] {
            let hdr_dst = Ipv4Packet::new_unchecked(&pkt[..]).dst_addr();
            let src = self.source_for_v4(hdr_dst)?;
            pkt[12..16].copy_from_slice(&src.octets());
        }
        // raw(7): "IP checksum: always filled in" — the fields above may have changed.
        Ipv4Packet::new_unchecked(&mut pkt[..]).fill_checksum();
        let _ = dst; // routing follows the header's destination, as Linux does
        self.route_packet(now, pkt)?;
        self.stats.raw_out_packets += 1;
        self.process_loopback(now);
        Ok(data.len())
    }

    /// recvfrom(2): a whole IP packet (header included) and its source address.
    pub fn raw_recv_from(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
    ) -> io::Result<(usize, IpAddr)> {
        self.raw_recv_msg(h, buf).map(|(n, from, _)| (n, from))
    }

    /// recvmsg(2) with IP_PKTINFO / IPV6_RECVPKTINFO: also the destination
    /// the packet was sent to (for IPv6, whose raw data has no header, the
    /// only way to learn it; in forwarding mode another host's address).
    pub fn raw_recv_msg(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
    ) -> io::Result<(usize, IpAddr, IpAddr)> {
        self.raw_recv_meta(h, buf).map(|(n, m)| (n, m.from, m.to))
    }

    /// recvmsg(2) with IP_PKTINFO and IP_RECVTTL (IPv6: IPV6_RECVPKTINFO and
    /// IPV6_RECVHOPLIMIT): the data and [`RawRecvMeta`].
    pub fn raw_recv_meta(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
    ) -> io::Result<(usize, RawRecvMeta)> {
        let r = self.raw(h)?;
        let (meta, data) = r.rx.pop_front().ok_or_else(would_block)?;
        r.rx_charged -= data.len() + PACKET_OVERHEAD;
        r.rx_payload -= data.len();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.udp_mem.adjust(data.len() + PACKET_OVERHEAD, 0);
        Ok((n, meta))
    }

    pub(crate) fn raw_close(&mut self, h: SocketHandle, r: RawSocket) {
        self.udp_mem.adjust(r.rx_charged, 0);
        if let Some(v) = self.raw_by_proto.get_mut(&r.protocol.0) {
            v.retain(|x| *x != h);
            if v.is_empty() {
                self.raw_by_proto.remove(&r.protocol.0);
            }
        }
    }

    /// Copy a datagram to every raw socket of its protocol and family (for IPv6,
    /// `packet` is the upper-layer message). Returns whether any took it.
    pub(crate) fn raw_deliver(&mut self, packet: &[u8], ip: &IpRepr) -> bool {
        let Some(list) = self.raw_by_proto.get(&ip.protocol().0) else {
            return false;
        };
        let list = list.clone();
        let mut any = false;
        for h in list {
            let Some(Socket::Raw(r)) = self.sockets.get_mut(h) else {
                continue;
            };
            if r.v6 != matches!(ip, IpRepr::Ipv6(_)) || r.bound.is_some_and(|b| b != ip.dst_addr())
            {
                continue;
            }
            any = true;
            let charge = packet.len() + PACKET_OVERHEAD;
            if r.rx_charged + charge > r.rx_cap {
                r.drops += 1;
                self.stats.raw_rcvbuf_errors += 1;
                continue;
            }
            // Raw queues share udp_mem (Linux leaves them unaccounted).
            if charge > self.udp_mem.free() {
                r.drops += 1;
                self.stats.raw_mem_errors += 1;
                continue;
            }
            self.udp_mem.adjust(0, charge);
            let was_empty = r.rx.is_empty();
            let meta = RawRecvMeta {
                from: ip.src_addr(),
                to: ip.dst_addr(),
                hop_limit: ip.hop_limit(),
            };
            r.rx.push_back((meta, packet.to_vec()));
            r.rx_charged += charge;
            r.rx_payload += packet.len();
            self.stats.raw_in_delivers += 1;
            if was_empty {
                self.push_event(h, EventKind::Readable);
            }
        }
        any
    }

    /// [`Stack::close`] at a known time (the runtime's clock), so the FIN or RST it
    /// sends is stamped with `now` rather than the last time the stack saw.
    pub fn close_at(&mut self, now: Instant, h: SocketHandle) -> io::Result<()> {
        self.note_time(now);
        self.close(h)
    }

    /// close(2) for any socket. Closing a closed handle is an error (EBADF). A TCP
    /// connection finishes its close on its own (FIN, TIME-WAIT) after the handle is
    /// gone; with unread data or SO_LINGER 0 it is reset instead.
    pub fn close(&mut self, h: SocketHandle) -> io::Result<()> {
        if let Some(Socket::Tcp(t)) = self.sockets.get(h) {
            if t.orphan {
                return Err(bad_handle());
            }
            self.tcp_close(h);
            self.process_loopback(self.last_now);
            return Ok(());
        }
        match self.sockets.remove(h) {
            Some(Socket::Udp(u)) => self.udp_close(h, u),
            Some(Socket::Raw(r)) => self.raw_close(h, r),
            Some(Socket::Tcp(_)) | None => return Err(bad_handle()),
        }
        Ok(())
    }
}

fn wrong_family(addr: IpAddr, v6: bool) -> io::Error {
    let (this, want) = if v6 {
        ("IPv6 (AF_INET6)", "an IPv6")
    } else {
        ("IPv4 (AF_INET)", "an IPv4")
    };
    error(
        code::EAFNOSUPPORT,
        format!("{addr}: this raw socket is {this}; give it {want} address"),
    )
}
