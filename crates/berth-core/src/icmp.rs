//! ICMPv4 (RFC 792, RFC 1122 §3.2.2): automatic echo replies, errors for closed UDP
//! ports and unknown protocols (rate-limited), and errors received for our sockets.

use crate::error::code;
use crate::stack::{EventKind, Socket, Stack};
use crate::time::Instant;
use berth_wire::{
    DstUnreachable, Error as WireError, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Packet,
    Ipv4Repr, TimeExceeded,
};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// An ICMP error quotes the offending header and as much payload as fits in a
/// 576-byte datagram (RFC 1812 §4.3.2.3; Linux does the same).
const MAX_QUOTE: usize = 576 - 20 - 8 - 20;

impl Stack {
    pub(crate) fn icmp_input(
        &mut self,
        now: Instant,
        _packet: &[u8],
        ip: &Ipv4Repr,
        payload: &[u8],
    ) {
        self.stats.icmp_in_msgs += 1;
        let pkt = match Icmpv4Packet::new_checked(payload) {
            Ok(p) => p,
            Err(_) => {
                self.stats.icmp_in_errors += 1;
                return;
            }
        };
        let repr = match Icmpv4Repr::parse(&pkt) {
            Ok(r) => r,
            Err(WireError::Unsupported) => {
                self.stats.icmp_in_unsupported += 1;
                return;
            }
            Err(_) => {
                self.stats.icmp_in_errors += 1;
                return;
            }
        };
        self.stats.ip_in_delivers += 1;
        match repr {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                self.stats.icmp_in_echos += 1;
                // Linux ignores broadcast echo by default (icmp_echo_ignore_broadcasts).
                if !self.config.icmp_echo_reply || !self.is_local_addr(ip.dst_addr) {
                    self.stats.icmp_echo_ignored += 1;
                    return;
                }
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                if self
                    .icmp_send(now, Some(ip.dst_addr), ip.src_addr, &reply)
                    .is_ok()
                {
                    self.stats.icmp_out_echo_reps += 1;
                }
            }
            Icmpv4Repr::EchoReply { .. } => self.stats.icmp_in_echo_reps += 1,
            Icmpv4Repr::DstUnreachable {
                reason,
                header,
                data,
            } => {
                self.stats.icmp_in_dest_unreachs += 1;
                if let DstUnreachable::FragRequired { next_hop_mtu } = reason {
                    // RFC 1191 §4; a router that leaves the MTU 0 (RFC 792)
                    // gets the plateau guess of §5.
                    self.stats.icmp_in_frag_needed += 1;
                    let mtu = match next_hop_mtu {
                        0 => crate::pmtu::plateau_below(20 + header.payload_len),
                        m => m as usize,
                    };
                    self.pmtu_report(now, quoted(&header), header.protocol, data, mtu);
                }
                // RFC 1122 §4.1.3.3: UDP passes unreachable up to the application.
                // Linux reports only "hard" errors, and only to connected sockets.
                let errno = match reason {
                    DstUnreachable::PortUnreachable | DstUnreachable::ProtoUnreachable => {
                        Some(code::ECONNREFUSED)
                    }
                    _ => None,
                };
                if let (Some(errno), IpProtocol::UDP) = (errno, header.protocol) {
                    self.udp_icmp_error(quoted(&header), data, errno);
                }
                if header.protocol == IpProtocol::TCP {
                    if let Some((errno, hard)) = tcp_unreachable_error(reason) {
                        self.tcp_icmp_error(quoted(&header), data, errno, hard);
                    }
                }
            }
            Icmpv4Repr::TimeExceeded { header, data, .. } => {
                self.stats.icmp_in_time_excds += 1;
                // RFC 1122 §4.2.3.9: tell the application, do not abort (Linux:
                // EHOSTUNREACH, soft).
                if header.protocol == IpProtocol::TCP {
                    self.tcp_icmp_error(quoted(&header), data, code::EHOSTUNREACH, false);
                }
            }
        }
    }

    /// Mark a connected UDP socket whose datagram bounced. `quoted`: the
    /// (source, destination) of the quoted header, of either family.
    pub(crate) fn udp_icmp_error(&mut self, quoted: (IpAddr, IpAddr), data: &[u8], errno: i32) {
        if data.len() < 4 || !self.is_local_addr(quoted.0) {
            return;
        }
        let sport = u16::from_be_bytes([data[0], data[1]]);
        let dport = u16::from_be_bytes([data[2], data[3]]);
        let local = SocketAddr::new(quoted.0, sport);
        let remote = SocketAddr::new(quoted.1, dport);
        let Some(h) = self.udp_ports.lookup(local, remote) else {
            return;
        };
        if let Some(Socket::Udp(u)) = self.sockets.get_mut(h) {
            if u.peer == Some(remote) {
                // One event per error that becomes pending: a flood of ICMP errors
                // (anyone can send them) must not grow the event queue.
                if u.pending_error.replace(errno).is_none() {
                    self.push_event(h, EventKind::Error);
                }
            }
        }
    }

    pub(crate) fn icmp_send(
        &mut self,
        now: Instant,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        repr: &Icmpv4Repr,
    ) -> io::Result<()> {
        let ttl = self.config.default_ttl;
        self.send_ipv4(
            now,
            src,
            dst,
            IpProtocol::ICMP,
            ttl,
            repr.buffer_len(),
            false,
            |buf, _, _| repr.emit(buf),
        )?;
        self.stats.icmp_out_msgs += 1;
        Ok(())
    }

    /// May we send an ICMP error about this datagram? RFC 1122 §3.2.2: never about an
    /// ICMP error, a broadcast or multicast, a non-initial fragment, or a packet whose
    /// source is not a unicast host.
    fn icmp_error_allowed(&self, ip: &Ipv4Repr, payload: &[u8]) -> bool {
        let src = ip.src_addr;
        if src.is_unspecified()
            || src.is_broadcast()
            || src.is_multicast()
            || self.is_broadcast(src)
        {
            return false;
        }
        if ip.dst_addr.is_multicast() || self.is_broadcast(ip.dst_addr) {
            return false;
        }
        if ip.frag_offset != 0 {
            return false;
        }
        if ip.protocol == IpProtocol::ICMP {
            // Only queries (echo, timestamp, …) may provoke an error.
            return matches!(payload.first(), Some(0 | 8 | 13 | 14 | 15 | 16 | 17 | 18));
        }
        true
    }

    fn take_icmp_token(&mut self, now: Instant) -> bool {
        if self.icmp_bucket.take(now) {
            true
        } else {
            self.stats.icmp_out_rate_limited += 1;
            false
        }
    }

    /// Send destination unreachable about `packet` (a whole datagram we received).
    pub(crate) fn icmp_dest_unreachable(
        &mut self,
        now: Instant,
        packet: &[u8],
        ip: &Ipv4Repr,
        reason: DstUnreachable,
    ) {
        let hl = Ipv4Packet::new_unchecked(packet).header_len();
        let payload = &packet[hl..];
        if !self.icmp_error_allowed(ip, payload) || !self.take_icmp_token(now) {
            return;
        }
        let quote = &payload[..payload.len().min(MAX_QUOTE)];
        let repr = Icmpv4Repr::DstUnreachable {
            reason,
            header: *ip,
            data: quote,
        };
        if self
            .icmp_send(now, Some(ip.dst_addr), ip.src_addr, &repr)
            .is_ok()
        {
            self.stats.icmp_out_dest_unreachs += 1;
        }
    }

    /// Time exceeded (fragment reassembly) about a datagram given up on, when its
    /// first fragment arrived (RFC 792, RFC 1122 §3.3.2).
    pub(crate) fn icmp_reassembly_expired(&mut self, now: Instant, header: &[u8], data: &[u8]) {
        if header.len() < 20 {
            return;
        }
        let mut ip = quoted_repr(&Ipv4Packet::new_unchecked(header));
        ip.payload_len = ip.payload_len.max(data.len());
        if !self.icmp_error_allowed(&ip, data) || !self.take_icmp_token(now) {
            return;
        }
        let repr = Icmpv4Repr::TimeExceeded {
            reason: TimeExceeded::FragReassemblyExpired,
            header: ip,
            data,
        };
        if self
            .icmp_send(now, Some(ip.dst_addr), ip.src_addr, &repr)
            .is_ok()
        {
            self.stats.icmp_out_time_excds += 1;
        }
    }
}

/// What destination unreachable means to TCP: (errno, hard). RFC 1122
/// §4.2.3.9: protocol and port unreachable are hard errors, the others soft;
/// errno values as Linux's icmp_err_convert. Fragmentation needed (code 4) is
/// path MTU discovery's business (`pmtu.rs`), not an error; codes above 15 are
/// ignored.
fn tcp_unreachable_error(reason: DstUnreachable) -> Option<(i32, bool)> {
    Some(match reason {
        DstUnreachable::ProtoUnreachable => (code::ENOPROTOOPT, true),
        DstUnreachable::PortUnreachable => (code::ECONNREFUSED, true),
        DstUnreachable::FragRequired { .. } => return None,
        DstUnreachable::SrcRouteFailed => (code::EOPNOTSUPP, false),
        DstUnreachable::NetUnreachable | DstUnreachable::Other(6 | 9 | 11) => {
            (code::ENETUNREACH, false)
        }
        DstUnreachable::Other(7) => (code::EHOSTDOWN, false),
        DstUnreachable::Other(8) => (code::ENONET, false),
        DstUnreachable::HostUnreachable
        | DstUnreachable::AdminProhibited
        | DstUnreachable::Other(10 | 12 | 14 | 15) => (code::EHOSTUNREACH, false),
        DstUnreachable::Other(_) => return None,
    })
}

/// (source, destination) of a quoted header.
fn quoted(h: &Ipv4Repr) -> (IpAddr, IpAddr) {
    (h.src_addr.into(), h.dst_addr.into())
}

/// The header fields of a (first-fragment) header whose total length describes only
/// the fragment; used as the quote of an ICMP error.
fn quoted_repr(p: &Ipv4Packet<&[u8]>) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: p.src_addr(),
        dst_addr: p.dst_addr(),
        protocol: p.protocol(),
        payload_len: p.total_len().saturating_sub(p.header_len()),
        ttl: p.ttl(),
        dscp_ecn: p.dscp_ecn(),
        ident: p.ident(),
        dont_frag: p.dont_frag(),
        more_frags: p.more_frags(),
        frag_offset: p.frag_offset(),
    }
}
