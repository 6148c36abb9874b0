//! ICMPv6 (RFC 4443): automatic echo replies, errors for closed ports, unknown
//! next headers, bad extension headers and expired reassembly (rate-limited
//! with ICMPv4's token bucket, as Linux shares icmp_msgs_per_sec), errors
//! received for our sockets, and dispatch of neighbor discovery to `ndp.rs`.

use crate::error::code;
use crate::iface::IfaceId;
use crate::stack::Stack;
use crate::time::Instant;
use berth_wire::ipv6::HEADER_LEN;
use berth_wire::{
    Error as WireError, Icmpv6DstUnreachable, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded,
    IpProtocol, Ipv6Addr, Ipv6Packet, Ipv6Repr, ParamProblemCode,
};
use std::io;

impl Stack {
    /// An ICMPv6 message for us. `packet` is the whole IPv6 packet, `ip` its
    /// header as the upper layer sees it, `payload` the ICMPv6 message.
    pub(crate) fn icmpv6_input(
        &mut self,
        now: Instant,
        iface: Option<IfaceId>,
        _packet: &[u8],
        ip: &Ipv6Repr,
        payload: &[u8],
    ) {
        self.stats.icmp6_in_msgs += 1;
        let (src, dst) = (ip.src_addr, ip.dst_addr);
        let repr = match Icmpv6Packet::new_checked(payload)
            .and_then(|p| Icmpv6Repr::parse(&p, &src, &dst))
        {
            Ok(r) => r,
            Err(WireError::BadChecksum) => {
                self.stats.icmp6_in_csum_errors += 1;
                return;
            }
            Err(_) => {
                self.stats.icmp6_in_errors += 1;
                return;
            }
        };
        self.stats.ip6_in_delivers += 1;
        match repr {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                self.stats.icmp6_in_echos += 1;
                if !self.config.icmp_echo_reply {
                    self.stats.icmp6_echo_ignored += 1;
                    return;
                }
                // A request to a group is answered from our own unicast address
                // (RFC 4443 §4.2), as Linux does by default.
                let from = if dst.is_multicast() {
                    iface.and_then(|i| self.source_on(i, src))
                } else {
                    Some(dst)
                };
                let Some(from) = from else { return };
                let reply = Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                if self.icmpv6_send(now, from, src, &reply, None).is_ok() {
                    self.stats.icmp6_out_echo_reps += 1;
                }
            }
            Icmpv6Repr::EchoReply { .. } => self.stats.icmp6_in_echo_reps += 1,
            Icmpv6Repr::DstUnreachable {
                reason,
                header,
                data,
            } => {
                self.stats.icmp6_in_dest_unreachs += 1;
                // As ICMPv4 (RFC 1122 §4.2.3.9 / RFC 4443 §3.1): port
                // unreachable is hard, the others soft; errno as Linux's
                // icmpv6_err_convert.
                let (errno, hard) = match reason {
                    Icmpv6DstUnreachable::PortUnreachable => (code::ECONNREFUSED, true),
                    Icmpv6DstUnreachable::NoRoute => (code::ENETUNREACH, false),
                    Icmpv6DstUnreachable::AdminProhibited
                    | Icmpv6DstUnreachable::FailedPolicy
                    | Icmpv6DstUnreachable::RejectRoute => (code::EACCES, true),
                    _ => (code::EHOSTUNREACH, false),
                };
                self.icmpv6_error_to_socket(&header, data, errno, hard);
            }
            Icmpv6Repr::PacketTooBig { mtu, header, data } => {
                self.stats.icmp6_in_pkt_too_bigs += 1;
                // RFC 8201 §4. Only a quote that starts with the transport
                // header is understood, as for the other errors.
                let quoted = (header.src_addr.into(), header.dst_addr.into());
                let mtu = usize::try_from(mtu).unwrap_or(usize::MAX);
                self.pmtu_report(now, quoted, header.next_header, data, mtu);
            }
            Icmpv6Repr::TimeExceeded { header, data, .. } => {
                self.stats.icmp6_in_time_excds += 1;
                self.icmpv6_error_to_socket(&header, data, code::EHOSTUNREACH, false);
            }
            Icmpv6Repr::ParamProblem { header, data, .. } => {
                self.stats.icmp6_in_parm_problems += 1;
                // Linux: EPROTO, hard.
                self.icmpv6_error_to_socket(&header, data, 71, true);
            }
            Icmpv6Repr::Ndp(msg) => self.ndp_input(now, iface, ip, &msg),
            Icmpv6Repr::UnknownError { .. } => self.stats.icmp6_in_unknown += 1,
            // RFC 4443 §2.4(b): unknown informational messages are dropped
            // (MLD reports from the kernel on a TUN land here).
            Icmpv6Repr::UnknownInformational { .. } => self.stats.icmp6_in_unknown += 1,
        }
    }

    /// Hand an error to the socket whose packet it quotes. Only a quote that
    /// starts with the transport header is understood (no extension headers:
    /// berth sends none).
    fn icmpv6_error_to_socket(&mut self, header: &Ipv6Repr, data: &[u8], errno: i32, hard: bool) {
        let quoted = (header.src_addr.into(), header.dst_addr.into());
        match header.next_header {
            IpProtocol::TCP => self.tcp_icmp_error(quoted, data, errno, hard),
            IpProtocol::UDP if errno == code::ECONNREFUSED => {
                self.udp_icmp_error(quoted, data, errno)
            }
            _ => {}
        }
    }

    /// Send an ICMPv6 message from `src` to `dst` (on `iface` for link-scope
    /// destinations). NDP messages go with hop limit 255 (RFC 4861 §6.1).
    pub(crate) fn icmpv6_send(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        repr: &Icmpv6Repr,
        iface: Option<IfaceId>,
    ) -> io::Result<()> {
        let hop_limit = match repr {
            Icmpv6Repr::Ndp(_) => berth_wire::ndp::HOP_LIMIT,
            _ => self.config.default_ttl,
        };
        let pkt = crate::ipv6::ipv6_packet(
            src,
            dst,
            IpProtocol::ICMPV6,
            hop_limit,
            repr.buffer_len(),
            |buf, s, d| repr.emit(buf, &s, &d),
        );
        self.route_packet_v6(now, pkt, iface)?;
        self.stats.icmp6_out_msgs += 1;
        Ok(())
    }

    /// May we send an error about `packet` (RFC 4443 §2.4(e))? Not about an
    /// ICMPv6 error, nor a packet to a multicast group (Packet Too Big and
    /// Parameter Problem code 2 excepted, which callers decide), nor one from
    /// an address that does not name a single node.
    fn icmpv6_error_allowed(&self, packet: &[u8], multicast_ok: bool) -> bool {
        let p = Ipv6Packet::new_unchecked(packet);
        if packet.len() < HEADER_LEN {
            return false;
        }
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if src.is_unspecified() || src.is_multicast() {
            return false;
        }
        if dst.is_multicast() && !multicast_ok {
            return false;
        }
        if p.next_header() == IpProtocol::ICMPV6 {
            // Only informational messages (type ≥ 128) may provoke an error.
            return packet.get(HEADER_LEN).is_some_and(|&t| t >= 128);
        }
        true
    }

    /// Send the error `make` builds from `packet`'s fixed header and the bytes
    /// after it, if RFC 4443 §2.4(e) and the rate limit allow.
    fn icmpv6_error<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
        multicast_ok: bool,
        make: impl FnOnce(Ipv6Repr, &'a [u8]) -> Icmpv6Repr<'a>,
    ) {
        let Ok(header) = Ipv6Repr::parse_header(packet) else {
            return;
        };
        if !self.icmpv6_error_allowed(packet, multicast_ok) || !self.icmpv6_token(now) {
            return;
        }
        let repr = make(header, &packet[HEADER_LEN..]);
        let p = Ipv6Packet::new_unchecked(packet);
        let (to, about) = (p.src_addr(), p.dst_addr());
        // From the address the packet was sent to if it is ours, else the best
        // source toward the sender.
        let from = if self.is_local_v6(about) {
            Some(about)
        } else {
            self.source_for_v6(to).ok()
        };
        let Some(from) = from else { return };
        if self.icmpv6_send(now, from, to, &repr, None).is_ok() {
            match repr {
                Icmpv6Repr::DstUnreachable { .. } => self.stats.icmp6_out_dest_unreachs += 1,
                Icmpv6Repr::TimeExceeded { .. } => self.stats.icmp6_out_time_excds += 1,
                Icmpv6Repr::ParamProblem { .. } => self.stats.icmp6_out_parm_problems += 1,
                _ => {}
            }
        }
    }

    fn icmpv6_token(&mut self, now: Instant) -> bool {
        if self.icmp_bucket.take(now) {
            true
        } else {
            self.stats.icmp6_out_rate_limited += 1;
            false
        }
    }

    /// Destination unreachable (port) about a UDP datagram no socket wanted.
    pub(crate) fn icmpv6_port_unreachable(&mut self, now: Instant, packet: &[u8]) {
        self.icmpv6_dest_unreachable(now, packet, Icmpv6DstUnreachable::PortUnreachable);
    }

    /// Destination unreachable about `packet`, for `reason`.
    pub(crate) fn icmpv6_dest_unreachable(
        &mut self,
        now: Instant,
        packet: &[u8],
        reason: Icmpv6DstUnreachable,
    ) {
        self.icmpv6_error(now, packet, false, |header, data| {
            Icmpv6Repr::DstUnreachable {
                reason,
                header,
                data,
            }
        });
    }

    /// Parameter Problem about `packet` at `pointer` (RFC 4443 §3.4). Code 2
    /// (an unrecognised option whose action asks for it) may answer multicast.
    pub(crate) fn icmpv6_param_problem(
        &mut self,
        now: Instant,
        packet: &[u8],
        reason: ParamProblemCode,
        pointer: u32,
    ) {
        let multicast_ok = reason == ParamProblemCode::UnrecognizedOption;
        self.icmpv6_error(now, packet, multicast_ok, |header, data| {
            Icmpv6Repr::ParamProblem {
                reason,
                pointer,
                header,
                data,
            }
        });
    }

    /// Time Exceeded code 1 about a datagram whose reassembly expired; `packet`
    /// is its first fragment's header and data.
    pub(crate) fn icmpv6_reassembly_expired(&mut self, now: Instant, packet: &[u8]) {
        self.icmpv6_error(now, packet, false, |header, data| {
            Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::FragReassemblyExceeded,
                header,
                data,
            }
        });
    }
}
