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
