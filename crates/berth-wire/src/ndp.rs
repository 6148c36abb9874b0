//! Neighbor discovery (RFC 4861): router and neighbor solicitations and
//! advertisements, redirects, and their options. The messages are ICMPv6 types
//! 133–137 and reach the caller as [`Icmpv6Repr::Ndp`](crate::Icmpv6Repr::Ndp).
//!
//! The parser makes every check RFC 4861 lists for a message that needs nothing but
//! the message (code 0, lengths, option lengths, target not multicast...). The checks
//! that need the IPv6 header (hop limit 255, link-local source, unspecified source
//! rules) are [`NdpRepr::check_ip`], for berth-core to call with the header it parsed.
//! Options are kept as the validated bytes they came in; [`NdpOptions`] reads them.

use crate::ethernet::EthernetAddress;
use crate::icmpv6::msg_type;
use crate::ipv6::{is_link_local, is_solicited_node};
use crate::{be16, be32, ip6, put16, put32, Error, Result};
use std::net::Ipv6Addr;

/// Hop limit every NDP message is sent with, and must arrive with: a packet that
/// crossed a router cannot carry it (RFC 4861 §3.1).
pub const HOP_LIMIT: u8 = 255;

/// Option types (RFC 4861 §4.6).
pub mod option_type {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
}

/// The Prefix Information option (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpPrefixInfo {
    /// 0..=128 (checked by the parser).
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: the prefix may be used for address autoconfiguration (RFC 4862).
    pub autonomous: bool,
    /// Seconds; 0xffffffff is infinity.
    pub valid_lifetime: u32,
    /// Seconds; 0xffffffff is infinity.
    pub preferred_lifetime: u32,
    pub prefix: Ipv6Addr,
}

/// One NDP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpOption<'a> {
    SourceLinkLayerAddr(EthernetAddress),
    TargetLinkLayerAddr(EthernetAddress),
    PrefixInfo(NdpPrefixInfo),
    /// The quoted IP header and data of a redirect (after the 6 reserved bytes; padding
    /// included when parsed).
    RedirectedHeader(&'a [u8]),
    Mtu(u32),
    /// Another type: RFC 4861 §4.6 says ignore it. `data` follows the type and length
    /// bytes (padding included).
    Unknown {
        option_type: u8,
        data: &'a [u8],
    },
}

impl<'a> NdpOption<'a> {
    /// Bytes the option takes (a multiple of 8).
    pub fn buffer_len(&self) -> usize {
        let raw = match self {
            NdpOption::SourceLinkLayerAddr(_) | NdpOption::TargetLinkLayerAddr(_) => 8,
            NdpOption::PrefixInfo(_) => 32,
            NdpOption::RedirectedHeader(d) => 8 + d.len(),
            NdpOption::Mtu(_) => 8,
            NdpOption::Unknown { data, .. } => 2 + data.len(),
        };
        raw.div_ceil(8).min(255) * 8
    }

    /// Write the option, zero-padded to 8n bytes, at the start of `buf`; returns its
    /// length. A redirected header or unknown data too long for the length byte is cut
    /// (the caller cuts a redirected header to fit 1280 bytes, RFC 4861 §4.6.3).
    /// Panics if `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf.fill(0);
        buf[1] = (len / 8) as u8;
        match *self {
            NdpOption::SourceLinkLayerAddr(mac) | NdpOption::TargetLinkLayerAddr(mac) => {
                buf[0] = if matches!(self, NdpOption::SourceLinkLayerAddr(_)) {
                    option_type::SOURCE_LLADDR
                } else {
                    option_type::TARGET_LLADDR
                };
                buf[2..8].copy_from_slice(&mac.0);
            }
            NdpOption::PrefixInfo(p) => {
                buf[0] = option_type::PREFIX_INFO;
                buf[2] = p.prefix_len;
                buf[3] = (p.on_link as u8) << 7 | (p.autonomous as u8) << 6;
                put32(buf, 4, p.valid_lifetime);
                put32(buf, 8, p.preferred_lifetime);
                buf[16..32].copy_from_slice(&p.prefix.octets());
            }
            NdpOption::RedirectedHeader(d) => {
                buf[0] = option_type::REDIRECTED_HEADER;
                let n = d.len().min(len - 8);
                buf[8..8 + n].copy_from_slice(&d[..n]);
            }
            NdpOption::Mtu(mtu) => {
                buf[0] = option_type::MTU;
                put32(buf, 4, mtu);
            }
            NdpOption::Unknown { option_type, data } => {
                buf[0] = option_type;
                let n = data.len().min(len - 2);
                buf[2..2 + n].copy_from_slice(&data[..n]);
            }
        }
        len
    }

    /// Write `options` one after another; returns the bytes written. Panics if `buf`
    /// is too short.
    pub fn emit_all(options: &[NdpOption<'_>], buf: &mut [u8]) -> usize {
        let mut at = 0;
        for o in options {
            at += o.emit(&mut buf[at..]);
        }
        at
    }
}

/// Iterate over an NDP options area. Yields `Err(BadOption)` once and stops on an
/// option of length 0 (RFC 4861 §4.6: "nodes MUST silently discard"), one running past
/// the area, or a known option of the wrong size; a prefix length over 128 is
/// `Err(Malformed)`.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> NdpOptions<'a> {
    pub fn new(area: &'a [u8]) -> Self {
        NdpOptions {
            rest: area,
            done: false,
        }
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let fail = |s: &mut Self, e| {
            s.done = true;
            Some(Err(e))
        };
        if self.rest.len() < 2 {
            return fail(self, Error::BadOption);
        }
        let len = self.rest[1] as usize * 8;
        if len == 0 || len > self.rest.len() {
            return fail(self, Error::BadOption);
        }
        let o = &self.rest[..len];
        self.rest = &self.rest[len..];
        let mac = |o: &[u8]| EthernetAddress([o[2], o[3], o[4], o[5], o[6], o[7]]);
        let opt = match (o[0], len) {
            // Ethernet addresses take one unit (RFC 2464 §6); berth has no other links.
            (option_type::SOURCE_LLADDR, 8) => NdpOption::SourceLinkLayerAddr(mac(o)),
            (option_type::TARGET_LLADDR, 8) => NdpOption::TargetLinkLayerAddr(mac(o)),
            (option_type::PREFIX_INFO, 32) => {
                if o[2] > 128 {
                    return fail(self, Error::Malformed);
                }
                NdpOption::PrefixInfo(NdpPrefixInfo {
                    prefix_len: o[2],
                    on_link: o[3] & 0x80 != 0,
                    autonomous: o[3] & 0x40 != 0,
                    valid_lifetime: be32(o, 4),
                    preferred_lifetime: be32(o, 8),
                    prefix: ip6(o, 16),
                })
            }
            (option_type::REDIRECTED_HEADER, _) => NdpOption::RedirectedHeader(&o[8..]),
            (option_type::MTU, 8) => NdpOption::Mtu(be32(o, 4)),
            (
                option_type::SOURCE_LLADDR
                | option_type::TARGET_LLADDR
                | option_type::PREFIX_INFO
                | option_type::MTU,
                _,
            ) => return fail(self, Error::BadOption),
            (t, _) => NdpOption::Unknown {
                option_type: t,
                data: &o[2..],
            },
        };
        Some(Ok(opt))
    }
}

/// Check every option of an area.
fn check_options(area: &[u8]) -> Result<()> {
    NdpOptions::new(area).try_for_each(|o| o.map(|_| ()))
}

/// A neighbor discovery message. `options` is the options area, every option
/// validated by the parser (read it with [`NdpRepr::options`]; build one with
/// [`NdpOption::emit_all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpRepr<'a> {
    /// RFC 4861 §4.1.
    RouterSolicit { options: &'a [u8] },
    /// RFC 4861 §4.2.
    RouterAdvert {
        /// 0: unspecified.
        cur_hop_limit: u8,
        /// M: addresses from DHCPv6.
        managed_flag: bool,
        /// O: other configuration from DHCPv6.
        other_flag: bool,
        /// Seconds; 0: not a default router.
        router_lifetime: u16,
        /// Milliseconds; 0: unspecified.
        reachable_time: u32,
        /// Milliseconds; 0: unspecified.
        retrans_timer: u32,
        options: &'a [u8],
    },
    /// RFC 4861 §4.3.
    NeighborSolicit {
        target_addr: Ipv6Addr,
        options: &'a [u8],
    },
    /// RFC 4861 §4.4.
    NeighborAdvert {
        /// R: the sender is a router.
        router_flag: bool,
        /// S: sent in answer to a solicitation.
        solicited_flag: bool,
        /// O: override an existing cache entry.
        override_flag: bool,
        target_addr: Ipv6Addr,
        options: &'a [u8],
    },
    /// RFC 4861 §4.5.
    Redirect {
        target_addr: Ipv6Addr,
        dest_addr: Ipv6Addr,
        options: &'a [u8],
    },
}

impl<'a> NdpRepr<'a> {
    /// Parse a whole ICMPv6 message of type 133–137 whose checksum was verified.
    pub(crate) fn parse(b: &'a [u8]) -> Result<Self> {
        if b.len() < 8 {
            return Err(Error::Truncated);
        }
        // RFC 4861 §6.1.1, §6.1.2, §7.1.1, §7.1.2, §8.1: ICMP Code is 0, the ICMP length
        // holds the fixed part, and every option has a length > 0.
        if b[1] != 0 {
            return Err(Error::Malformed);
        }
        let fixed = match b[0] {
            msg_type::ROUTER_SOLICIT => 8,
            msg_type::ROUTER_ADVERT => 16,
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => 24,
            msg_type::REDIRECT => 40,
            _ => return Err(Error::Unsupported),
        };
        if b.len() < fixed {
            return Err(Error::Truncated);
        }
        let options = &b[fixed..];
        check_options(options)?;
        let repr = match b[0] {
            msg_type::ROUTER_SOLICIT => NdpRepr::RouterSolicit { options },
            msg_type::ROUTER_ADVERT => NdpRepr::RouterAdvert {
                cur_hop_limit: b[4],
                managed_flag: b[5] & 0x80 != 0,
                other_flag: b[5] & 0x40 != 0,
                router_lifetime: be16(b, 6),
                reachable_time: be32(b, 8),
                retrans_timer: be32(b, 12),
                options,
            },
            msg_type::NEIGHBOR_SOLICIT => NdpRepr::NeighborSolicit {
                target_addr: ip6(b, 8),
                options,
            },
            msg_type::NEIGHBOR_ADVERT => NdpRepr::NeighborAdvert {
                router_flag: b[4] & 0x80 != 0,
                solicited_flag: b[4] & 0x40 != 0,
                override_flag: b[4] & 0x20 != 0,
                target_addr: ip6(b, 8),
                options,
            },
            _ => NdpRepr::Redirect {
                target_addr: ip6(b, 8),
                dest_addr: ip6(b, 24),
                options,
            },
        };
        match repr {
            // §7.1.1, §7.1.2: the target is not a multicast address.
            NdpRepr::NeighborSolicit { target_addr, .. }
            | NdpRepr::NeighborAdvert { target_addr, .. }
                if target_addr.is_multicast() =>
            {
                Err(Error::Malformed)
            }
            // §8.1: the destination is not multicast, and the target is link-local (a
            // better router) or the destination itself (it is on-link).
            NdpRepr::Redirect {
                target_addr,
                dest_addr,
                ..
            } if dest_addr.is_multicast()
                || (!is_link_local(&target_addr) && target_addr != dest_addr) =>
            {
                Err(Error::Malformed)
            }
            r => Ok(r),
        }
    }

    /// The checks of RFC 4861 §6.1.1, §6.1.2, §7.1.1, §7.1.2 and §8.1 that need the
    /// IPv6 header the message came in: hop limit 255; router advertisements and
    /// redirects from a link-local address; from the unspecified address, a
    /// solicitation carries no source link-layer option and a neighbor solicitation
    /// goes to a solicited-node address; an advertisement to a multicast address is
    /// not solicited. `Err(Malformed)` means drop the message.
    pub fn check_ip(&self, src: &Ipv6Addr, dst: &Ipv6Addr, hop_limit: u8) -> Result<()> {
        if hop_limit != HOP_LIMIT {
            return Err(Error::Malformed);
        }
        let ok = match self {
            NdpRepr::RouterSolicit { .. } => {
                !src.is_unspecified() || self.source_lladdr().is_none()
            }
            NdpRepr::RouterAdvert { .. } | NdpRepr::Redirect { .. } => is_link_local(src),
            NdpRepr::NeighborSolicit { .. } => {
                !src.is_unspecified() || (is_solicited_node(dst) && self.source_lladdr().is_none())
            }
            NdpRepr::NeighborAdvert { solicited_flag, .. } => {
                !(dst.is_multicast() && *solicited_flag)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Malformed)
        }
    }

    pub fn options_area(&self) -> &'a [u8] {
        match *self {
            NdpRepr::RouterSolicit { options }
            | NdpRepr::RouterAdvert { options, .. }
            | NdpRepr::NeighborSolicit { options, .. }
            | NdpRepr::NeighborAdvert { options, .. }
            | NdpRepr::Redirect { options, .. } => options,
        }
    }

    /// The options (validated when parsed; a hand-built area may yield errors).
    pub fn options(&self) -> NdpOptions<'a> {
        NdpOptions::new(self.options_area())
    }

    /// The first source link-layer address option.
    pub fn source_lladdr(&self) -> Option<EthernetAddress> {
        self.options().find_map(|o| match o {
            Ok(NdpOption::SourceLinkLayerAddr(m)) => Some(m),
            _ => None,
        })
    }

    /// The first target link-layer address option.
    pub fn target_lladdr(&self) -> Option<EthernetAddress> {
        self.options().find_map(|o| match o {
            Ok(NdpOption::TargetLinkLayerAddr(m)) => Some(m),
            _ => None,
        })
    }

    /// The first MTU option.
    pub fn mtu(&self) -> Option<u32> {
        self.options().find_map(|o| match o {
            Ok(NdpOption::Mtu(m)) => Some(m),
            _ => None,
        })
    }

    /// Every prefix information option, in order.
    pub fn prefix_infos(&self) -> impl Iterator<Item = NdpPrefixInfo> + 'a {
        self.options().filter_map(|o| match o {
            Ok(NdpOption::PrefixInfo(p)) => Some(p),
            _ => None,
        })
    }

    /// The redirected header option's bytes.
    pub fn redirected_header(&self) -> Option<&'a [u8]> {
        self.options().find_map(|o| match o {
            Ok(NdpOption::RedirectedHeader(d)) => Some(d),
            _ => None,
        })
    }

    pub fn msg_type(&self) -> u8 {
        match self {
            NdpRepr::RouterSolicit { .. } => msg_type::ROUTER_SOLICIT,
            NdpRepr::RouterAdvert { .. } => msg_type::ROUTER_ADVERT,
            NdpRepr::NeighborSolicit { .. } => msg_type::NEIGHBOR_SOLICIT,
            NdpRepr::NeighborAdvert { .. } => msg_type::NEIGHBOR_ADVERT,
            NdpRepr::Redirect { .. } => msg_type::REDIRECT,
        }
    }

    fn fixed_len(&self) -> usize {
        match self {
            NdpRepr::RouterSolicit { .. } => 8,
            NdpRepr::RouterAdvert { .. } => 16,
            NdpRepr::NeighborSolicit { .. } | NdpRepr::NeighborAdvert { .. } => 24,
            NdpRepr::Redirect { .. } => 40,
        }
    }

    pub fn buffer_len(&self) -> usize {
        self.fixed_len() + self.options_area().len()
    }

    /// Write the message (reserved fields zero, checksum left zero: the ICMPv6 emit
    /// fills it) into the first `buffer_len()` bytes of `buf`.
    pub(crate) fn emit(&self, buf: &mut [u8]) {
        let fixed = self.fixed_len();
        buf[..fixed].fill(0);
        buf[0] = self.msg_type();
        match *self {
            NdpRepr::RouterSolicit { .. } => {}
            NdpRepr::RouterAdvert {
                cur_hop_limit,
                managed_flag,
                other_flag,
                router_lifetime,
                reachable_time,
                retrans_timer,
                ..
            } => {
                buf[4] = cur_hop_limit;
                buf[5] = (managed_flag as u8) << 7 | (other_flag as u8) << 6;
                put16(buf, 6, router_lifetime);
                put32(buf, 8, reachable_time);
                put32(buf, 12, retrans_timer);
            }
            NdpRepr::NeighborSolicit { target_addr, .. } => {
                buf[8..24].copy_from_slice(&target_addr.octets());
            }
            NdpRepr::NeighborAdvert {
                router_flag,
                solicited_flag,
                override_flag,
                target_addr,
                ..
            } => {
                buf[4] = (router_flag as u8) << 7
                    | (solicited_flag as u8) << 6
                    | (override_flag as u8) << 5;
                buf[8..24].copy_from_slice(&target_addr.octets());
            }
            NdpRepr::Redirect {
                target_addr,
                dest_addr,
                ..
            } => {
                buf[8..24].copy_from_slice(&target_addr.octets());
                buf[24..40].copy_from_slice(&dest_addr.octets());
            }
        }
        let opts = self.options_area();
        buf[fixed..fixed + opts.len()].copy_from_slice(opts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmpv6::{Icmpv6Packet, Icmpv6Repr};

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    fn emit(r: NdpRepr<'_>, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let r = Icmpv6Repr::Ndp(r);
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, src, dst);
        b
    }

    fn parse<'a>(b: &'a [u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<NdpRepr<'a>> {
        match Icmpv6Repr::parse(&Icmpv6Packet::new_checked(b)?, src, dst)? {
            Icmpv6Repr::Ndp(n) => Ok(n),
            other => panic!("not NDP: {other:?}"),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let prefix = NdpPrefixInfo {
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 86400,
            preferred_lifetime: 14400,
            prefix: "2001:db8:1::".parse().unwrap(),
        };
        let mut area = [0u8; 8 + 32 + 8 + 8];
        let n = NdpOption::emit_all(
            &[
                NdpOption::SourceLinkLayerAddr(MAC),
                NdpOption::PrefixInfo(prefix),
                NdpOption::Mtu(1500),
                NdpOption::Unknown {
                    option_type: 25,
                    data: &[1, 2, 3],
                },
            ],
            &mut area,
        );
        assert_eq!(n, area.len());
        let ra = NdpRepr::RouterAdvert {
            cur_hop_limit: 64,
            managed_flag: true,
            other_flag: false,
            router_lifetime: 1800,
            reachable_time: 30000,
            retrans_timer: 1000,
            options: &area,
        };
        let b = emit(ra, &LL, &ALL_NODES);
        assert_eq!(&b[..2], &[134, 0]);
        assert_eq!(&b[4..8], &[64, 0x80, 0x07, 0x08]);
        let r = parse(&b, &LL, &ALL_NODES).unwrap();
        assert_eq!(r, ra);
        assert_eq!(r.source_lladdr(), Some(MAC));
        assert_eq!(r.mtu(), Some(1500));
        assert_eq!(r.prefix_infos().collect::<Vec<_>>(), vec![prefix]);
        assert_eq!(r.check_ip(&LL, &ALL_NODES, 255), Ok(()));
        assert_eq!(r.check_ip(&A, &ALL_NODES, 255), Err(Error::Malformed));
        assert_eq!(r.check_ip(&LL, &ALL_NODES, 254), Err(Error::Malformed));

        let mut tl = [0u8; 8];
        NdpOption::TargetLinkLayerAddr(MAC).emit(&mut tl);
        let mut sl = [0u8; 8];
        NdpOption::SourceLinkLayerAddr(MAC).emit(&mut sl);
        let msgs = [
            NdpRepr::RouterSolicit { options: &sl },
            NdpRepr::NeighborSolicit {
                target_addr: B,
                options: &sl,
            },
            NdpRepr::NeighborAdvert {
                router_flag: true,
                solicited_flag: true,
                override_flag: true,
                target_addr: B,
                options: &tl,
            },
            NdpRepr::Redirect {
                target_addr: LL,
                dest_addr: B,
                options: &tl,
            },
        ];
        for m in msgs {
            let b = emit(m, &A, &B);
            assert_eq!(parse(&b, &A, &B), Ok(m));
        }
        let b = emit(msgs[2], &A, &B);
        assert_eq!(b[4], 0xe0);
        assert_eq!(parse(&b, &A, &B).unwrap().target_lladdr(), Some(MAC));
    }

    #[test]
    fn redirected_header_option() {
        let quoted = [0x60u8; 45];
        let o = NdpOption::RedirectedHeader(&quoted);
        assert_eq!(o.buffer_len(), 56);
        let mut area = [0xffu8; 56];
        o.emit(&mut area);
        assert_eq!(&area[..8], &[4, 7, 0, 0, 0, 0, 0, 0]);
        let r = NdpRepr::Redirect {
            target_addr: B,
            dest_addr: B,
            options: &area,
        };
        let b = emit(r, &LL, &A);
        let got = parse(&b, &LL, &A).unwrap();
        let d = got.redirected_header().unwrap();
        assert_eq!(&d[..45], &quoted);
        assert!(d[45..].iter().all(|&x| x == 0));
        assert_eq!(got.check_ip(&LL, &A, 255), Ok(()));
    }

    fn with_checksum(mut b: Vec<u8>, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        Icmpv6Packet::new_unchecked(&mut b[..]).fill_checksum(src, dst);
        b
    }

    #[test]
    fn bad_messages() {
        let ns = |target: Ipv6Addr, opts: &[u8]| {
            let mut b = vec![135, 0, 0, 0, 0, 0, 0, 0];
            b.extend(target.octets());
            b.extend(opts);
            with_checksum(b, &A, &B)
        };
        // Option length 0 (RFC 4861 §4.6).
        assert_eq!(
            parse(&ns(B, &[1, 0, 2, 0, 0, 0, 0, 1]), &A, &B),
            Err(Error::BadOption)
        );
        // An option running past the message; a lone type byte.
        assert_eq!(
            parse(&ns(B, &[1, 2, 2, 0, 0, 0, 0, 1]), &A, &B),
            Err(Error::BadOption)
        );
        assert_eq!(parse(&ns(B, &[1]), &A, &B), Err(Error::BadOption));
        // A link-layer option of two units; a prefix option of the wrong size.
        let mut two = vec![1, 2];
        two.extend([0; 14]);
        assert_eq!(parse(&ns(B, &two), &A, &B), Err(Error::BadOption));
        let mut p = vec![3, 2];
        p.extend([0; 14]);
        assert_eq!(parse(&ns(B, &p), &A, &B), Err(Error::BadOption));
        // Multicast target.
        assert_eq!(parse(&ns(ALL_NODES, &[]), &A, &B), Err(Error::Malformed));
        // Non-zero code.
        let mut c = ns(B, &[]);
        c[1] = 1;
        let c = with_checksum(c, &A, &B);
        assert_eq!(parse(&c, &A, &B), Err(Error::Malformed));
        // Too short for the fixed part.
        let short = with_checksum(vec![136, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80], &A, &B);
        assert_eq!(parse(&short, &A, &B), Err(Error::Truncated));
        let short = with_checksum(vec![134, 0, 0, 0, 64, 0, 0, 0], &A, &B);
        assert_eq!(parse(&short, &A, &B), Err(Error::Truncated));
        // Prefix length over 128.
        let mut pi = [0u8; 32];
        NdpOption::PrefixInfo(NdpPrefixInfo {
            prefix_len: 64,
            on_link: true,
            autonomous: false,
            valid_lifetime: 1,
            preferred_lifetime: 1,
            prefix: A,
        })
        .emit(&mut pi);
        pi[2] = 129;
        let mut ra = vec![134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ra.extend(pi);
        let ra = with_checksum(ra, &LL, &ALL_NODES);
        assert_eq!(parse(&ra, &LL, &ALL_NODES), Err(Error::Malformed));
        // Redirect: multicast destination; target neither link-local nor the destination.
        let redirect = |t: Ipv6Addr, d: Ipv6Addr| {
            let mut b = vec![137, 0, 0, 0, 0, 0, 0, 0];
            b.extend(t.octets());
            b.extend(d.octets());
            with_checksum(b, &LL, &A)
        };
        assert_eq!(
            parse(&redirect(LL, ALL_NODES), &LL, &A),
            Err(Error::Malformed)
        );
        assert_eq!(parse(&redirect(A, B), &LL, &A), Err(Error::Malformed));
        assert!(parse(&redirect(B, B), &LL, &A).is_ok());
    }

    #[test]
    fn ip_header_checks() {
        let mut sl = [0u8; 8];
        NdpOption::SourceLinkLayerAddr(MAC).emit(&mut sl);
        let dad = NdpRepr::NeighborSolicit {
            target_addr: A,
            options: &[],
        };
        let unspecified = Ipv6Addr::UNSPECIFIED;
        let sn = crate::ipv6::solicited_node(&A);
        // DAD: from :: to the solicited-node address, no source link-layer option.
        assert_eq!(dad.check_ip(&unspecified, &sn, 255), Ok(()));
        assert_eq!(dad.check_ip(&unspecified, &A, 255), Err(Error::Malformed));
        let with_sl = NdpRepr::NeighborSolicit {
            target_addr: A,
            options: &sl,
        };
        assert_eq!(
            with_sl.check_ip(&unspecified, &sn, 255),
            Err(Error::Malformed)
        );
        assert_eq!(with_sl.check_ip(&B, &sn, 255), Ok(()));
        let rs = NdpRepr::RouterSolicit { options: &sl };
        assert_eq!(
            rs.check_ip(&unspecified, &ALL_NODES, 255),
            Err(Error::Malformed)
        );
        assert_eq!(rs.check_ip(&LL, &ALL_NODES, 255), Ok(()));
        let na = |solicited_flag| NdpRepr::NeighborAdvert {
            router_flag: false,
            solicited_flag,
            override_flag: true,
            target_addr: A,
            options: &[],
        };
        assert_eq!(
            na(true).check_ip(&A, &ALL_NODES, 255),
            Err(Error::Malformed)
        );
        assert_eq!(na(false).check_ip(&A, &ALL_NODES, 255), Ok(()));
        assert_eq!(na(true).check_ip(&A, &B, 255), Ok(()));
        assert_eq!(na(true).check_ip(&A, &B, 64), Err(Error::Malformed));
        let redirect = NdpRepr::Redirect {
            target_addr: B,
            dest_addr: B,
            options: &[],
        };
        assert_eq!(redirect.check_ip(&A, &B, 255), Err(Error::Malformed));
    }
}
