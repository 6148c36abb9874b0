//! Strategies and helpers shared by the integration tests (each test file is its own
//! crate and uses a subset, hence the `dead_code` allowance).
#![allow(dead_code)]

use berth_wire::icmpv4::{DstUnreachable, TimeExceeded};
use berth_wire::tcp::{SeqNumber, TcpFlags, TcpRepr};
use berth_wire::{
    ArpOperation, ArpRepr, EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv4Addr, Ipv4Repr,
};
use proptest::prelude::*;

/// Largest IPv4 payload: total length is a u16 and the header takes 20 bytes.
pub const MAX_IPV4_PAYLOAD: usize = 65_535 - 20;

pub fn arb_ipv4_addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

pub fn arb_mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

/// Every EtherType, with `Unknown` restricted to values that are not a named variant
/// (an `Unknown(0x0800)` would parse back as `Ipv4`, which is correct but not equal).
pub fn arb_ethertype() -> impl Strategy<Value = EtherType> {
    prop_oneof![
        Just(EtherType::Ipv4),
        Just(EtherType::Arp),
        Just(EtherType::Ipv6),
        any::<u16>()
            .prop_filter("named ethertype", |v| !matches!(
                v,
                0x0800 | 0x0806 | 0x86dd
            ))
            .prop_map(EtherType::Unknown),
    ]
}

pub fn arb_ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    (arb_mac(), arb_mac(), arb_ethertype()).prop_map(|(src_addr, dst_addr, ethertype)| {
        EthernetRepr {
            src_addr,
            dst_addr,
            ethertype,
        }
    })
}

pub fn arb_arp_operation() -> impl Strategy<Value = ArpOperation> {
    prop_oneof![
        Just(ArpOperation::Request),
        Just(ArpOperation::Reply),
        any::<u16>()
            .prop_filter("named operation", |v| !matches!(v, 1 | 2))
            .prop_map(ArpOperation::Unknown),
    ]
}

pub fn arb_arp_repr() -> impl Strategy<Value = ArpRepr> {
    (
        arb_arp_operation(),
        arb_mac(),
        arb_ipv4_addr(),
        arb_mac(),
        arb_ipv4_addr(),
    )
        .prop_map(|(operation, sha, spa, tha, tpa)| ArpRepr {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        })
}

/// Any emittable IPv4 header: fragment offsets are multiples of 8 below 2^16, the
/// payload length keeps the total length within a u16.
pub fn arb_ipv4_repr_with(
    protocol: impl Strategy<Value = IpProtocol>,
    payload_len: impl Strategy<Value = usize>,
) -> impl Strategy<Value = Ipv4Repr> {
    (
        arb_ipv4_addr(),
        arb_ipv4_addr(),
        protocol,
        payload_len,
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        0u16..=0x1fff,
    )
        .prop_map(
            |(src_addr, dst_addr, protocol, payload_len, ttl, dscp_ecn, ident, df, mf, fo)| {
                Ipv4Repr {
                    src_addr,
                    dst_addr,
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: fo << 3,
                }
            },
        )
}

/// IPv4 header with any protocol; payload lengths mostly small, sometimes up to the max.
pub fn arb_ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    arb_ipv4_repr_with(
        any::<u8>().prop_map(IpProtocol),
        prop_oneof![4 => 0usize..1500, 1 => 0usize..=MAX_IPV4_PAYLOAD],
    )
}

pub fn arb_dst_unreachable() -> impl Strategy<Value = DstUnreachable> {
    prop_oneof![
        Just(DstUnreachable::NetUnreachable),
        Just(DstUnreachable::HostUnreachable),
        Just(DstUnreachable::ProtoUnreachable),
        Just(DstUnreachable::PortUnreachable),
        any::<u16>().prop_map(|next_hop_mtu| DstUnreachable::FragRequired { next_hop_mtu }),
        Just(DstUnreachable::SrcRouteFailed),
        Just(DstUnreachable::AdminProhibited),
        any::<u8>()
            .prop_filter("named code", |c| !matches!(c, 0..=5 | 13))
            .prop_map(DstUnreachable::Other),
    ]
}

pub fn arb_time_exceeded() -> impl Strategy<Value = TimeExceeded> {
    prop_oneof![
        Just(TimeExceeded::TtlExpired),
        Just(TimeExceeded::FragReassemblyExpired)
    ]
}

/// Which ICMPv4 message to build from the shared parts (the repr borrows its data, so
/// strategies yield the owned parts and tests assemble the repr).
#[derive(Debug, Clone)]
pub enum IcmpKind {
    EchoRequest {
        ident: u16,
        seq_no: u16,
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
    },
    DstUnreachable {
        reason: DstUnreachable,
        header: Ipv4Repr,
    },
    TimeExceeded {
        reason: TimeExceeded,
        header: Ipv4Repr,
    },
}

pub fn arb_icmp_kind() -> impl Strategy<Value = IcmpKind> {
    prop_oneof![
        (any::<u16>(), any::<u16>())
            .prop_map(|(ident, seq_no)| IcmpKind::EchoRequest { ident, seq_no }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(ident, seq_no)| IcmpKind::EchoReply { ident, seq_no }),
        (arb_dst_unreachable(), arb_ipv4_repr())
            .prop_map(|(reason, header)| IcmpKind::DstUnreachable { reason, header }),
        (arb_time_exceeded(), arb_ipv4_repr())
            .prop_map(|(reason, header)| IcmpKind::TimeExceeded { reason, header }),
    ]
}

impl IcmpKind {
    pub fn repr<'a>(&self, data: &'a [u8]) -> berth_wire::Icmpv4Repr<'a> {
        use berth_wire::Icmpv4Repr as R;
        match *self {
            IcmpKind::EchoRequest { ident, seq_no } => R::EchoRequest {
                ident,
                seq_no,
                data,
            },
            IcmpKind::EchoReply { ident, seq_no } => R::EchoReply {
                ident,
                seq_no,
                data,
            },
            IcmpKind::DstUnreachable { reason, header } => R::DstUnreachable {
                reason,
                header,
                data,
            },
            IcmpKind::TimeExceeded { reason, header } => R::TimeExceeded {
                reason,
                header,
                data,
            },
        }
    }
}

/// Bytes of TCP option space used by berth's layout for everything but SACK blocks
/// (computed here from the layout rules, independently of `TcpRepr::header_len`):
/// MSS 4, NOP+WS 4, (NOP NOP | SACK-permitted)+TS 12, or NOP NOP+SACK-permitted 4.
pub fn fixed_option_bytes(r: &TcpRepr<'_>) -> usize {
    let mut n = 0;
    if r.max_seg_size.is_some() {
        n += 4;
    }
    if r.window_scale.is_some() {
        n += 4;
    }
    match (r.timestamp.is_some(), r.sack_permitted) {
        (true, _) => n += 12,
        (false, true) => n += 4,
        (false, false) => {}
    }
    n
}

/// How many SACK blocks fit in the 40-byte option space after the fixed options, with
/// the NOP NOP kind length prefix (RFC 2018 §3: 4 + 8n bytes).
pub fn sack_blocks_that_fit(r: &TcpRepr<'_>) -> usize {
    (40usize.saturating_sub(fixed_option_bytes(r) + 4) / 8).min(4)
}

/// Number of leading `Some` SACK blocks.
pub fn sack_prefix_len(r: &TcpRepr<'_>) -> usize {
    r.sack_ranges.iter().take_while(|s| s.is_some()).count()
}

/// The repr `parse(emit(r))` should give: SACK blocks beyond what fits are dropped.
pub fn tcp_after_emit<'a>(r: &TcpRepr<'a>) -> TcpRepr<'a> {
    let keep = sack_prefix_len(r).min(sack_blocks_that_fit(r));
    let mut e = *r;
    for (i, s) in e.sack_ranges.iter_mut().enumerate() {
        if i >= keep {
            *s = None;
        }
    }
    e
}

/// TCP header fields and options without the payload; `sack_wanted` is how many SACK
/// blocks the generator asked for before they are cut to what fits.
pub fn arb_tcp_header() -> impl Strategy<Value = (TcpRepr<'static>, usize)> {
    (
        (
            1..=u16::MAX,
            1..=u16::MAX,
            any::<u32>(),
            any::<u32>(),
            0u16..0x200,
            any::<u16>(),
            any::<u16>(),
        ),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u8>()),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
            0usize..=4,
            proptest::array::uniform4((any::<u32>(), any::<u32>())),
        ),
    )
        .prop_map(
            |((sp, dp, seq, ack, flags, win, urg), (mss, ws, sack_perm, ts, n_sack, blocks))| {
                let mut r = TcpRepr::new(sp, dp, SeqNumber(seq), TcpFlags(flags));
                r.ack_number = SeqNumber(ack);
                r.window_len = win;
                r.urgent_pointer = urg;
                r.max_seg_size = mss;
                r.window_scale = ws;
                r.sack_permitted = sack_perm;
                r.timestamp = ts;
                let n = n_sack.min(sack_blocks_that_fit(&r));
                for (i, (l, rr)) in blocks.iter().enumerate().take(n) {
                    r.sack_ranges[i] = Some((SeqNumber(*l), SeqNumber(*rr)));
                }
                (r, n_sack)
            },
        )
}

pub fn arb_payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// An IPv4 header for a transport payload of `len` bytes with protocol `proto`.
pub fn ipv4_for(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, len: usize) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto,
        payload_len: len,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0x1c46,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
}

// ---------------------------------------------------------------------------------------
// IPv6, ICMPv6, NDP
// ---------------------------------------------------------------------------------------

pub fn arb_ipv6_addr() -> impl Strategy<Value = berth_wire::Ipv6Addr> {
    any::<u128>().prop_map(berth_wire::Ipv6Addr::from)
}

/// Any address but a multicast one (NDP targets and redirect destinations).
pub fn arb_ipv6_unicast() -> impl Strategy<Value = berth_wire::Ipv6Addr> {
    arb_ipv6_addr().prop_filter("not multicast", |a| !a.is_multicast())
}

/// Largest IPv6 payload length.
pub const MAX_IPV6_PAYLOAD: usize = 65_535;

pub fn arb_ipv6_repr_with(
    payload_len: impl Strategy<Value = usize>,
) -> impl Strategy<Value = berth_wire::Ipv6Repr> {
    (
        arb_ipv6_addr(),
        arb_ipv6_addr(),
        any::<u8>(),
        payload_len,
        any::<u8>(),
        any::<u8>(),
        0u32..(1 << 20),
    )
        .prop_map(
            |(src_addr, dst_addr, nh, payload_len, hop_limit, traffic_class, flow_label)| {
                berth_wire::Ipv6Repr {
                    src_addr,
                    dst_addr,
                    next_header: IpProtocol(nh),
                    payload_len,
                    hop_limit,
                    traffic_class,
                    flow_label,
                }
            },
        )
}

/// IPv6 headers whose payload length is anything a quoted header may claim.
pub fn arb_ipv6_repr() -> impl Strategy<Value = berth_wire::Ipv6Repr> {
    arb_ipv6_repr_with(0..=MAX_IPV6_PAYLOAD)
}

/// Which ICMPv6 message (not NDP) to build; `repr` borrows the data.
#[derive(Debug, Clone)]
pub enum Icmpv6Kind {
    EchoRequest {
        ident: u16,
        seq_no: u16,
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
    },
    DstUnreachable {
        code: u8,
        header: berth_wire::Ipv6Repr,
    },
    PacketTooBig {
        mtu: u32,
        header: berth_wire::Ipv6Repr,
    },
    TimeExceeded {
        frag: bool,
        header: berth_wire::Ipv6Repr,
    },
    ParamProblem {
        code: u8,
        pointer: u32,
        header: berth_wire::Ipv6Repr,
    },
    /// `data` is the body (at least 4 bytes are prepended by `repr`'s caller).
    Unknown {
        msg_type: u8,
        code: u8,
    },
}

pub fn arb_icmpv6_kind() -> impl Strategy<Value = Icmpv6Kind> {
    prop_oneof![
        (any::<u16>(), any::<u16>())
            .prop_map(|(ident, seq_no)| Icmpv6Kind::EchoRequest { ident, seq_no }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(ident, seq_no)| Icmpv6Kind::EchoReply { ident, seq_no }),
        (any::<u8>(), arb_ipv6_repr())
            .prop_map(|(code, header)| Icmpv6Kind::DstUnreachable { code, header }),
        (any::<u32>(), arb_ipv6_repr())
            .prop_map(|(mtu, header)| Icmpv6Kind::PacketTooBig { mtu, header }),
        (any::<bool>(), arb_ipv6_repr())
            .prop_map(|(frag, header)| Icmpv6Kind::TimeExceeded { frag, header }),
        (any::<u8>(), any::<u32>(), arb_ipv6_repr()).prop_map(|(code, pointer, header)| {
            Icmpv6Kind::ParamProblem {
                code,
                pointer,
                header,
            }
        }),
        (any::<u8>(), any::<u8>())
            .prop_filter("not a type berth parses", |(t, _)| !matches!(
                t,
                1..=4 | 128 | 129 | 133..=137
            ))
            .prop_map(|(msg_type, code)| Icmpv6Kind::Unknown { msg_type, code }),
    ]
}

impl Icmpv6Kind {
    pub fn repr<'a>(&self, data: &'a [u8]) -> berth_wire::Icmpv6Repr<'a> {
        use berth_wire::icmpv6::Icmpv6TimeExceeded;
        use berth_wire::{Icmpv6DstUnreachable, Icmpv6Repr as R, ParamProblemCode};
        match *self {
            Icmpv6Kind::EchoRequest { ident, seq_no } => R::EchoRequest {
                ident,
                seq_no,
                data,
            },
            Icmpv6Kind::EchoReply { ident, seq_no } => R::EchoReply {
                ident,
                seq_no,
                data,
            },
            Icmpv6Kind::DstUnreachable { code, header } => R::DstUnreachable {
                reason: Icmpv6DstUnreachable::from_code(code),
                header,
                data,
            },
            Icmpv6Kind::PacketTooBig { mtu, header } => R::PacketTooBig { mtu, header, data },
            Icmpv6Kind::TimeExceeded { frag, header } => R::TimeExceeded {
                reason: if frag {
                    Icmpv6TimeExceeded::FragReassemblyExceeded
                } else {
                    Icmpv6TimeExceeded::HopLimitExceeded
                },
                header,
                data,
            },
            Icmpv6Kind::ParamProblem {
                code,
                pointer,
                header,
            } => R::ParamProblem {
                reason: ParamProblemCode::from_code(code),
                pointer,
                header,
                data,
            },
            Icmpv6Kind::Unknown { msg_type, code } if msg_type < 128 => R::UnknownError {
                msg_type,
                code,
                body: data,
            },
            Icmpv6Kind::Unknown { msg_type, code } => R::UnknownInformational {
                msg_type,
                code,
                body: data,
            },
        }
    }
}

/// An NDP option with owned data; `option()` borrows it.
#[derive(Debug, Clone)]
pub enum NdpOptSpec {
    Source(EthernetAddress),
    Target(EthernetAddress),
    Prefix(berth_wire::NdpPrefixInfo),
    Mtu(u32),
    /// Length a multiple of 8, so the parsed option is the same bytes.
    Redirected(Vec<u8>),
    /// Data length 6 mod 8, same reason; type not one RFC 4861 defines.
    Unknown(u8, Vec<u8>),
}

impl NdpOptSpec {
    pub fn option(&self) -> berth_wire::NdpOption<'_> {
        use berth_wire::NdpOption as O;
        match self {
            NdpOptSpec::Source(m) => O::SourceLinkLayerAddr(*m),
            NdpOptSpec::Target(m) => O::TargetLinkLayerAddr(*m),
            NdpOptSpec::Prefix(p) => O::PrefixInfo(*p),
            NdpOptSpec::Mtu(m) => O::Mtu(*m),
            NdpOptSpec::Redirected(d) => O::RedirectedHeader(d),
            NdpOptSpec::Unknown(t, d) => O::Unknown {
                option_type: *t,
                data: d,
            },
        }
    }
}

pub fn arb_ndp_option() -> impl Strategy<Value = NdpOptSpec> {
    prop_oneof![
        arb_mac().prop_map(NdpOptSpec::Source),
        arb_mac().prop_map(NdpOptSpec::Target),
        (
            0u8..=128,
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            arb_ipv6_addr()
        )
            .prop_map(|(prefix_len, on_link, autonomous, v, p, prefix)| {
                NdpOptSpec::Prefix(berth_wire::NdpPrefixInfo {
                    prefix_len,
                    on_link,
                    autonomous,
                    valid_lifetime: v,
                    preferred_lifetime: p,
                    prefix,
                })
            }),
        any::<u32>().prop_map(NdpOptSpec::Mtu),
        (0usize..6)
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 8))
            .prop_map(NdpOptSpec::Redirected),
        (
            any::<u8>().prop_filter("undefined type", |t| !(1..=5).contains(t)),
            (0usize..4).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), 6 + n * 8))
        )
            .prop_map(|(t, d)| NdpOptSpec::Unknown(t, d)),
    ]
}

/// The options area of `specs`, emitted by berth.
pub fn ndp_area(specs: &[NdpOptSpec]) -> Vec<u8> {
    let opts: Vec<_> = specs.iter().map(|s| s.option()).collect();
    let mut area = vec![0u8; opts.iter().map(|o| o.buffer_len()).sum()];
    let n = berth_wire::NdpOption::emit_all(&opts, &mut area);
    assert_eq!(n, area.len());
    area
}

/// Which NDP message to build around an options area.
#[derive(Debug, Clone)]
pub enum NdpKind {
    RouterSolicit,
    RouterAdvert {
        cur_hop_limit: u8,
        managed_flag: bool,
        other_flag: bool,
        router_lifetime: u16,
        reachable_time: u32,
        retrans_timer: u32,
    },
    NeighborSolicit {
        target_addr: berth_wire::Ipv6Addr,
    },
    NeighborAdvert {
        flags: (bool, bool, bool),
        target_addr: berth_wire::Ipv6Addr,
    },
    Redirect {
        target_addr: berth_wire::Ipv6Addr,
        dest_addr: berth_wire::Ipv6Addr,
    },
}

pub fn arb_ndp_kind() -> impl Strategy<Value = NdpKind> {
    prop_oneof![
        Just(NdpKind::RouterSolicit),
        (
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(h, m, o, l, r, t)| NdpKind::RouterAdvert {
                cur_hop_limit: h,
                managed_flag: m,
                other_flag: o,
                router_lifetime: l,
                reachable_time: r,
                retrans_timer: t,
            }),
        arb_ipv6_unicast().prop_map(|target_addr| NdpKind::NeighborSolicit { target_addr }),
        (any::<(bool, bool, bool)>(), arb_ipv6_unicast())
            .prop_map(|(flags, target_addr)| NdpKind::NeighborAdvert { flags, target_addr }),
        (any::<[u8; 8]>(), arb_ipv6_unicast(), any::<bool>()).prop_map(|(iid, dest_addr, on)| {
            NdpKind::Redirect {
                target_addr: if on {
                    dest_addr
                } else {
                    berth_wire::ipv6::link_local(iid)
                },
                dest_addr,
            }
        }),
    ]
}

impl NdpKind {
    pub fn repr<'a>(&self, options: &'a [u8]) -> berth_wire::NdpRepr<'a> {
        use berth_wire::NdpRepr as R;
        match *self {
            NdpKind::RouterSolicit => R::RouterSolicit { options },
            NdpKind::RouterAdvert {
                cur_hop_limit,
                managed_flag,
                other_flag,
                router_lifetime,
                reachable_time,
                retrans_timer,
            } => R::RouterAdvert {
                cur_hop_limit,
                managed_flag,
                other_flag,
                router_lifetime,
                reachable_time,
                retrans_timer,
                options,
            },
            NdpKind::NeighborSolicit { target_addr } => R::NeighborSolicit {
                target_addr,
                options,
            },
            NdpKind::NeighborAdvert { flags, target_addr } => R::NeighborAdvert {
                router_flag: flags.0,
                solicited_flag: flags.1,
                override_flag: flags.2,
                target_addr,
                options,
            },
            NdpKind::Redirect {
                target_addr,
                dest_addr,
            } => R::Redirect {
                target_addr,
                dest_addr,
                options,
            },
        }
    }
}
