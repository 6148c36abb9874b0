//! Property tests for every berth-wire repr.
//!
//! 1. Round trips: `parse(emit(r)) == r` for Ethernet, ARP, IPv4, all four ICMPv4
//!    messages, UDP and TCP with any combination of options.
//! 2. Never panics: arbitrary bytes, bytes with valid checksums (so the parsers get past
//!    the checksum and into the option/length logic), and mutations of valid packets
//!    (truncation, bit flips, option-length bytes set to 0/1/255) go through every
//!    `new_checked` + `parse` (and `new_unchecked` + `parse`). Each returns `Ok` or one
//!    of the errors its format can produce; on `Ok`, emitting the value and parsing it
//!    again gives the same value.
//! 3. IPv6 (module `ipv6` at the end): round trips of the fixed header, Hop-by-hop/
//!    destination options, ICMPv6 (every message, the quote cut to the minimum MTU) and
//!    NDP with any options; random valid extension header chains walked to the upper
//!    layer at the offset the layout gives, cut anywhere (truncated), or with a
//!    hop-by-hop header out of place (code 1 at its Next Header field); arbitrary and
//!    mutated bytes through the IPv6 parser, the walker and ICMPv6/NDP never panic, and
//!    every offset and Parameter Problem pointer stays inside the packet.

mod common;

use berth_wire::checksum;
use berth_wire::tcp::TcpOptions;
use berth_wire::{
    ArpPacket, ArpRepr, Error, EtherType, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};
use common::*;
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

// ---------------------------------------------------------------------------------------
// Checkers: run one parser both ways, check the error set and re-emit on success.
// ---------------------------------------------------------------------------------------

fn check_ethernet(b: &[u8]) -> berth_wire::Result<EthernetRepr> {
    let unchecked = EthernetRepr::parse(&EthernetFrame::new_unchecked(b));
    let checked = EthernetFrame::new_checked(b).and_then(|f| {
        assert_eq!(f.payload().len(), b.len() - 14);
        EthernetRepr::parse(&f)
    });
    assert_eq!(checked, unchecked);
    match checked {
        Ok(r) => {
            let mut out = [0u8; 14];
            r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &b[..14], "every header bit is represented");
        }
        Err(e) => assert_eq!(e, Error::Truncated),
    }
    checked
}

fn check_arp(b: &[u8]) -> berth_wire::Result<ArpRepr> {
    let unchecked = ArpRepr::parse(&ArpPacket::new_unchecked(b));
    let checked = ArpPacket::new_checked(b).and_then(|p| {
        let _ = (p.hardware_type(), p.protocol_type(), p.operation());
        let _ = (p.hardware_len(), p.protocol_len());
        ArpRepr::parse(&p)
    });
    match checked {
        Ok(r) => {
            assert_eq!(unchecked, Ok(r));
            let mut out = [0u8; 28];
            r.emit(&mut out);
            assert_eq!(
                &out[..],
                &b[..28],
                "every field of an Ethernet/IPv4 ARP packet"
            );
            let again = ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap());
            assert_eq!(again, Ok(r));
        }
        Err(e) => assert!(
            matches!(e, Error::Truncated | Error::Unsupported | Error::Malformed),
            "{e:?}"
        ),
    }
    checked
}

fn check_ipv4(b: &[u8]) -> berth_wire::Result<Ipv4Repr> {
    let unchecked = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(b));
    let checked = Ipv4Packet::new_checked(b).and_then(|p| {
        // The checked view makes every accessor safe.
        assert!(p.header_len() >= 20 && p.header_len() <= p.total_len());
        assert!(p.total_len() <= b.len());
        assert_eq!(p.packet().len(), p.total_len());
        assert_eq!(p.payload().len(), p.total_len() - p.header_len());
        let _ = (
            p.verify_checksum(),
            p.src_addr(),
            p.dst_addr(),
            p.protocol(),
        );
        let r = Ipv4Repr::parse(&p)?;
        assert_eq!(r.payload_len, p.payload().len());
        // Re-emit (options are not kept: a 20-byte header) and parse again.
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        out[20..].copy_from_slice(p.payload());
        let again = Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).unwrap());
        assert_eq!(again, Ok(r));
        Ok(r)
    });
    match checked {
        Ok(r) => assert_eq!(unchecked, Ok(r)),
        Err(e) => assert!(
            matches!(
                e,
                Error::Truncated
                    | Error::BadLength
                    | Error::BadVersion
                    | Error::BadChecksum
                    | Error::Malformed
            ),
            "{e:?}"
        ),
    }
    checked
}

fn check_icmpv4(b: &[u8]) -> berth_wire::Result<Icmpv4Repr<'_>> {
    let unchecked = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(b));
    let checked = Icmpv4Packet::new_checked(b).and_then(|p| {
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.data());
        let _ = (p.echo_ident(), p.echo_seq_no(), p.verify_checksum());
        let r = Icmpv4Repr::parse(&p)?;
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        assert_eq!(checksum::checksum(&out), 0);
        let p2 = Icmpv4Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p2), Ok(r));
        Ok(r)
    });
    match checked {
        Ok(r) => assert_eq!(unchecked, Ok(r)),
        Err(e) => assert!(
            matches!(
                e,
                Error::Truncated
                    | Error::BadChecksum
                    | Error::Unsupported
                    | Error::BadVersion
                    | Error::BadLength
            ),
            "{e:?}"
        ),
    }
    checked
}

fn check_udp<'a>(b: &'a [u8], src: &Ipv4Addr, dst: &Ipv4Addr) -> berth_wire::Result<UdpRepr<'a>> {
    let unchecked = UdpRepr::parse(&UdpPacket::new_unchecked(b), src, dst);
    let checked = UdpPacket::new_checked(b).and_then(|p| {
        assert!(p.len() >= 8 && p.len() <= b.len());
        assert_eq!(p.payload().len(), p.len() - 8);
        let _ = (p.src_port(), p.dst_port(), p.checksum(), p.is_empty());
        let r = UdpRepr::parse(&p, src, dst)?;
        assert_eq!(r.payload, p.payload());
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, src, dst);
        let p2 = UdpPacket::new_checked(&out[..]).unwrap();
        assert_ne!(p2.checksum(), 0, "emit always fills the checksum");
        assert_eq!(UdpRepr::parse(&p2, src, dst), Ok(r));
        Ok(r)
    });
    match checked {
        Ok(r) => assert_eq!(unchecked, Ok(r)),
        Err(e) => assert!(
            matches!(
                e,
                Error::Truncated | Error::BadLength | Error::Malformed | Error::BadChecksum
            ),
            "{e:?}"
        ),
    }
    checked
}

/// Walk an options area with `TcpOptions`: it must end, and yield nothing after an error.
fn check_options(area: &[u8]) -> Option<Error> {
    let mut it = TcpOptions::new(area);
    let mut n = 0;
    let mut err = None;
    for item in it.by_ref() {
        n += 1;
        assert!(n <= area.len() + 1, "iterator does not advance");
        if let Err(e) = item {
            assert_eq!(e, Error::BadOption);
            err = Some(e);
            break;
        }
    }
    if err.is_some() {
        assert!(it.next().is_none(), "iterator stops after an error");
    }
    err
}

fn check_tcp<'a>(b: &'a [u8], src: &Ipv4Addr, dst: &Ipv4Addr) -> berth_wire::Result<TcpRepr<'a>> {
    let unchecked = TcpRepr::parse(&TcpPacket::new_unchecked(b), src, dst);
    let checked = TcpPacket::new_checked(b).and_then(|p| {
        assert!(p.header_len() >= 20 && p.header_len() <= b.len());
        assert_eq!(p.options().len() + p.payload().len() + 20, b.len());
        let _ = (p.seq_number(), p.ack_number(), p.flags(), p.window_len());
        let _ = (
            p.checksum(),
            p.urgent_pointer(),
            p.verify_checksum(src, dst),
        );
        let _ = check_options(p.options());
        let r = TcpRepr::parse(&p, src, dst)?;
        assert!(r.src_port != 0 && r.dst_port != 0);
        assert_eq!(r.payload, p.payload());
        assert!(r.flags.0 < 0x200);
        assert!(sack_prefix_len(&r) == r.sack_ranges.iter().flatten().count());
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, src, dst);
        let p2 = TcpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p2, src, dst), Ok(tcp_after_emit(&r)));
        Ok(r)
    });
    match checked {
        Ok(r) => assert_eq!(unchecked, Ok(r)),
        Err(e) => assert!(
            matches!(
                e,
                Error::Truncated
                    | Error::BadLength
                    | Error::Malformed
                    | Error::BadChecksum
                    | Error::BadOption
            ),
            "{e:?}"
        ),
    }
    checked
}

/// Every parser on the same bytes, as if each were the start of its header.
fn check_all(b: &[u8]) {
    let _ = check_ethernet(b);
    let _ = check_arp(b);
    let _ = check_ipv4(b);
    let _ = check_icmpv4(b);
    let _ = check_udp(b, &SRC, &DST);
    let _ = check_tcp(b, &SRC, &DST);
    let _ = check_options(b);
}

/// Parse a frame the way a stack would: Ethernet, then ARP or IPv4, then the transport.
/// Returns how many layers parsed.
fn check_stack(frame: &[u8]) -> usize {
    let Ok(eth) = check_ethernet(frame) else {
        return 0;
    };
    let rest = &frame[14..];
    match eth.ethertype {
        EtherType::Arp => 1 + check_arp(rest).is_ok() as usize,
        EtherType::Ipv4 => {
            let Ok(ip) = check_ipv4(rest) else {
                return 1;
            };
            let Ok(p) = Ipv4Packet::new_checked(rest) else {
                unreachable!("check_ipv4 accepted it");
            };
            let payload = p.payload();
            let ok = match ip.protocol {
                IpProtocol::TCP => check_tcp(payload, &ip.src_addr, &ip.dst_addr).is_ok(),
                IpProtocol::UDP => check_udp(payload, &ip.src_addr, &ip.dst_addr).is_ok(),
                IpProtocol::ICMP => check_icmpv4(payload).is_ok(),
                _ => false,
            };
            2 + ok as usize
        }
        _ => 1,
    }
}

// ---------------------------------------------------------------------------------------
// Valid packets to mutate.
// ---------------------------------------------------------------------------------------

fn emit_tcp_segment(r: &TcpRepr<'_>, src: &Ipv4Addr, dst: &Ipv4Addr) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b, src, dst);
    b
}

fn emit_udp_segment(r: &UdpRepr<'_>, src: &Ipv4Addr, dst: &Ipv4Addr) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b, src, dst);
    b
}

fn emit_icmp(r: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b);
    b
}

/// Ethernet + IPv4 + `transport` bytes (already emitted with the IPv4 addresses).
fn frame_ipv4(proto: IpProtocol, src: Ipv4Addr, dst: Ipv4Addr, transport: &[u8]) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: berth_wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: berth_wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: EtherType::Ipv4,
    };
    let ip = ipv4_for(src, dst, proto, transport.len());
    let mut b = vec![0u8; 14 + ip.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
    ip.emit(&mut b[14..]);
    b[34..].copy_from_slice(transport);
    b
}

fn frame_arp(r: &ArpRepr) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: r.source_hardware_addr,
        dst_addr: berth_wire::EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    };
    let mut b = vec![0u8; 14 + 28];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
    r.emit(&mut b[14..]);
    b
}

/// A valid frame of any kind berth parses, and how many layers it has.
fn arb_valid_frame() -> impl Strategy<Value = (Vec<u8>, usize)> {
    prop_oneof![
        (
            arb_tcp_header(),
            arb_payload(64),
            arb_ipv4_addr(),
            arb_ipv4_addr()
        )
            .prop_map(|((header, _), payload, s, d)| {
                let r = TcpRepr {
                    payload: &payload,
                    ..header
                };
                (
                    frame_ipv4(IpProtocol::TCP, s, d, &emit_tcp_segment(&r, &s, &d)),
                    3,
                )
            }),
        (
            any::<u16>(),
            1..=u16::MAX,
            arb_payload(64),
            arb_ipv4_addr(),
            arb_ipv4_addr()
        )
            .prop_map(|(sp, dp, payload, s, d)| {
                let r = UdpRepr {
                    src_port: sp,
                    dst_port: dp,
                    payload: &payload,
                };
                (
                    frame_ipv4(IpProtocol::UDP, s, d, &emit_udp_segment(&r, &s, &d)),
                    3,
                )
            }),
        (arb_icmp_kind(), arb_payload(64)).prop_map(|(k, data)| {
            (
                frame_ipv4(IpProtocol::ICMP, SRC, DST, &emit_icmp(&k.repr(&data))),
                3,
            )
        }),
        arb_arp_repr().prop_map(|r| (frame_arp(&r), 2)),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    FlipBit(usize, u8),
    SetByte(usize, u8),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (
            any::<usize>(),
            prop_oneof![Just(0u8), Just(1), Just(255), any::<u8>()]
        )
            .prop_map(|(i, v)| Mutation::SetByte(i, v)),
    ]
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    if b.is_empty() {
        return;
    }
    match *m {
        Mutation::Truncate(n) => b.truncate(n % b.len()),
        Mutation::FlipBit(i, bit) => {
            let i = i % b.len();
            b[i] ^= 1 << bit;
        }
        Mutation::SetByte(i, v) => {
            let i = i % b.len();
            b[i] = v;
        }
    }
}

/// Offsets of the length bytes of the TCP options in an emitted segment.
fn option_length_offsets(seg: &[u8]) -> Vec<usize> {
    let hl = ((seg[12] >> 4) as usize) * 4;
    let mut out = Vec::new();
    let mut i = 20;
    while i < hl {
        match seg[i] {
            0 => break,
            1 => i += 1,
            _ => {
                out.push(i + 1);
                i += seg[i + 1] as usize;
            }
        }
    }
    out
}

/// Recompute the TCP checksum of `seg` in place.
fn refill_tcp_checksum(seg: &mut [u8], src: &Ipv4Addr, dst: &Ipv4Addr) {
    seg[16] = 0;
    seg[17] = 0;
    let c = checksum::transport_v4(src, dst, 6, seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// 1. Round trips.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ethernet_round_trip(r in arb_ethernet_repr(), payload in arb_payload(64)) {
        let mut buf = vec![0u8; r.header_len() + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        r.emit(&mut f);
        f.payload_mut().copy_from_slice(&payload);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), r);
        prop_assert_eq!(f.payload(), &payload[..]);
        prop_assert_eq!(f.ethertype(), r.ethertype);
    }

    #[test]
    fn arp_round_trip(r in arb_arp_repr(), pad in 0usize..18) {
        // Trailing bytes model Ethernet minimum-frame padding; they are ignored.
        let mut buf = vec![0xeeu8; r.buffer_len() + pad];
        r.emit(&mut buf);
        prop_assert_eq!(&buf[..6], &[0, 1, 8, 0, 6, 4][..]);
        prop_assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), u16::from(r.operation));
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(ArpRepr::parse(&p).unwrap(), r);
    }

    #[test]
    fn ipv4_round_trip(r in arb_ipv4_repr(), fill in any::<u8>(), pad in 0usize..8) {
        let mut buf = vec![fill; r.buffer_len() + pad];
        r.emit(&mut buf);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(p.header_len(), r.header_len());
        prop_assert_eq!(p.total_len(), r.buffer_len());
        prop_assert_eq!(p.payload().len(), r.payload_len);
        prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
        prop_assert_eq!(r.is_fragment(), r.more_frags || r.frag_offset != 0);
    }

    #[test]
    fn icmpv4_round_trip(kind in arb_icmp_kind(), data in arb_payload(128)) {
        let r = kind.repr(&data);
        let buf = emit_icmp(&r);
        prop_assert_eq!(buf.len(), r.buffer_len());
        prop_assert_eq!(checksum::checksum(&buf), 0, "emitted checksum verifies");
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn udp_round_trip(
        src in arb_ipv4_addr(),
        dst in arb_ipv4_addr(),
        src_port in any::<u16>(),
        dst_port in 1..=u16::MAX,
        payload in arb_payload(600),
    ) {
        let r = UdpRepr { src_port, dst_port, payload: &payload };
        let buf = emit_udp_segment(&r, &src, &dst);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_ne!(p.checksum(), 0, "a computed 0 is sent as 0xffff");
        prop_assert!(p.verify_checksum(&src, &dst));
        prop_assert_eq!(p.len(), buf.len());
        prop_assert_eq!(UdpRepr::parse(&p, &src, &dst).unwrap(), r);
    }

    #[test]
    fn tcp_round_trip(
        (header, sack_wanted) in arb_tcp_header(),
        payload in arb_payload(300),
        src in arb_ipv4_addr(),
        dst in arb_ipv4_addr(),
    ) {
        let r = TcpRepr { payload: &payload, ..header };
        let n = sack_prefix_len(&r);
        prop_assert_eq!(n, sack_wanted.min(sack_blocks_that_fit(&r)));
        // Header length from the layout rules, independently of TcpRepr::header_len.
        let sack_len = if n > 0 { 4 + 8 * n } else { 0 };
        let expect_hl = 20 + fixed_option_bytes(&r) + sack_len;
        prop_assert_eq!(r.header_len(), expect_hl);
        prop_assert!(expect_hl <= 60);
        prop_assert_eq!(expect_hl % 4, 0);

        let buf = emit_tcp_segment(&r, &src, &dst);
        prop_assert_eq!(buf.len(), expect_hl + payload.len());
        prop_assert_eq!((buf[12] >> 4) as usize * 4, expect_hl, "data offset");
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum(&src, &dst));
        prop_assert_eq!(check_options(p.options()), None);
        prop_assert_eq!(TcpRepr::parse(&p, &src, &dst).unwrap(), r);
        prop_assert_eq!(r.segment_len(), payload.len()
            + r.flags.contains(berth_wire::TcpFlags::SYN) as usize
            + r.flags.contains(berth_wire::TcpFlags::FIN) as usize);
    }

    /// Asking for more SACK blocks than fit: the first ones that fit are kept.
    #[test]
    fn tcp_excess_sack_blocks_are_dropped(
        (header, _) in arb_tcp_header(),
        blocks in proptest::array::uniform4((any::<u32>(), any::<u32>())),
    ) {
        let mut r = header;
        for (slot, (l, rr)) in r.sack_ranges.iter_mut().zip(blocks) {
            *slot = Some((berth_wire::SeqNumber(l), berth_wire::SeqNumber(rr)));
        }
        let fit = sack_blocks_that_fit(&r);
        let sack_len = if fit > 0 { 4 + 8 * fit } else { 0 };
        prop_assert_eq!(r.header_len(), 20 + fixed_option_bytes(&r) + sack_len);
        prop_assert!(r.header_len() <= 60);
        let buf = emit_tcp_segment(&r, &SRC, &DST);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        let back = TcpRepr::parse(&p, &SRC, &DST).unwrap();
        prop_assert_eq!(sack_prefix_len(&back), fit);
        prop_assert_eq!(back, tcp_after_emit(&r));
    }

    /// The wide checksum equals the RFC 1071 word-at-a-time reference at every length
    /// and alignment.
    #[test]
    fn checksum_matches_reference(data in arb_payload(3000), skip in 0usize..8) {
        let s = &data[skip.min(data.len())..];
        prop_assert_eq!(checksum::sum(s), checksum::reference_sum(s));
        prop_assert_eq!(checksum::checksum(s), !checksum::reference_sum(s));
    }

    /// RFC 1624 incremental update gives the same header as recomputing.
    #[test]
    fn incremental_update_matches_recompute(
        r in arb_ipv4_repr(),
        ttl in any::<u8>(),
        new_src in arb_ipv4_addr(),
    ) {
        let mut h = vec![0u8; 20];
        Ipv4Repr { payload_len: 0, ..r }.emit(&mut h);
        let hc = u16::from_be_bytes([h[10], h[11]]);
        let old16 = u16::from_be_bytes([h[8], h[9]]);
        h[8] = ttl;
        let hc = checksum::update(hc, old16, u16::from_be_bytes([h[8], h[9]]));
        let old32 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        h[12..16].copy_from_slice(&new_src.octets());
        let hc = checksum::update32(hc, old32, u32::from(new_src));
        h[10..12].copy_from_slice(&hc.to_be_bytes());
        prop_assert_eq!(checksum::checksum(&h), 0);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Never panics.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_all(&b);
        let _ = check_stack(&b);
    }

    /// Random IPv4 headers made well-formed (version 4, IHL within the buffer, total
    /// length within the buffer, reserved bit clear, checksum filled) always parse,
    /// options included, and the payload is exactly [IHL×4, total length).
    #[test]
    fn ipv4_with_valid_header_parses(
        mut b in proptest::collection::vec(any::<u8>(), 20..120),
        ihl in 5u8..=15,
        tl_seed in any::<usize>(),
    ) {
        let ihl = ihl.min((b.len() / 4) as u8);
        let hl = ihl as usize * 4;
        let tl = hl + tl_seed % (b.len() - hl + 1);
        b[0] = 0x40 | ihl;
        b[2..4].copy_from_slice(&(tl as u16).to_be_bytes());
        b[6] &= 0x7f;
        b[10] = 0;
        b[11] = 0;
        let c = checksum::checksum(&b[..hl]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        let r = check_ipv4(&b);
        prop_assert!(r.is_ok(), "{:?}", r);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        prop_assert_eq!(p.payload(), &b[hl..tl]);
        prop_assert_eq!(r.unwrap().payload_len, tl - hl);
    }

    /// Random TCP segments with nonzero ports, any data offset that fits and a valid
    /// checksum: the option area is random, so the result is Ok or BadOption, never
    /// anything else and never a panic.
    #[test]
    fn tcp_with_valid_checksum_parses_or_bad_option(
        mut b in proptest::collection::vec(any::<u8>(), 20..100),
        doff in 5u8..=15,
        sp in 1..=u16::MAX,
        dp in 1..=u16::MAX,
    ) {
        let doff = doff.min((b.len() / 4) as u8);
        b[0..2].copy_from_slice(&sp.to_be_bytes());
        b[2..4].copy_from_slice(&dp.to_be_bytes());
        b[12] = (doff << 4) | (b[12] & 0x0f);
        refill_tcp_checksum(&mut b, &SRC, &DST);
        let area = &b[20..doff as usize * 4];
        let opt_err = check_options(area);
        match check_tcp(&b, &SRC, &DST) {
            Ok(r) => {
                prop_assert_eq!(opt_err, None);
                prop_assert_eq!(r.payload, &b[doff as usize * 4..]);
            }
            Err(e) => {
                prop_assert_eq!(e, Error::BadOption);
                prop_assert_eq!(opt_err, Some(Error::BadOption));
            }
        }
    }

    /// Random UDP with the length field = buffer length, nonzero destination port and a
    /// valid checksum always parses.
    #[test]
    fn udp_with_valid_checksum_parses(
        mut b in proptest::collection::vec(any::<u8>(), 8..100),
        dp in 1..=u16::MAX,
    ) {
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&dp.to_be_bytes());
        b[4..6].copy_from_slice(&len.to_be_bytes());
        b[6] = 0;
        b[7] = 0;
        let c = match checksum::transport_v4(&SRC, &DST, 17, &b) {
            0 => 0xffff,
            c => c,
        };
        b[6..8].copy_from_slice(&c.to_be_bytes());
        let r = check_udp(&b, &SRC, &DST);
        prop_assert!(r.is_ok(), "{:?}", r);
        prop_assert_eq!(r.unwrap().payload, &b[8..]);
    }

    /// Random ICMP messages with a valid checksum: echo always parses; errors parse the
    /// quoted header or fail with a typed error.
    #[test]
    fn icmp_with_valid_checksum(
        mut b in proptest::collection::vec(any::<u8>(), 8..100),
        ty in prop_oneof![Just(0u8), Just(8), Just(3), Just(11), any::<u8>()],
        code in prop_oneof![Just(0u8), Just(1), any::<u8>()],
        quote_v4 in any::<bool>(),
    ) {
        b[0] = ty;
        b[1] = code;
        if quote_v4 && b.len() > 8 {
            // Make the quoted header plausibly IPv4 so the quote parser runs deep.
            b[8] = 0x40 | (b[8] & 0x0f);
        }
        b[2] = 0;
        b[3] = 0;
        let c = checksum::checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        let r = check_icmpv4(&b);
        if matches!((ty, code), (0, 0) | (8, 0)) {
            prop_assert!(r.is_ok(), "{:?}", r);
        }
        if !matches!((ty, code), (0, 0) | (8, 0) | (3, _) | (11, 0) | (11, 1)) {
            prop_assert_eq!(r, Err(Error::Unsupported));
        }
    }

    /// Valid frames with up to four random mutations (truncation, bit flips, bytes set
    /// to 0/1/255/anything) never panic any parser, at any layer.
    #[test]
    fn mutated_frames_never_panic(
        (frame, layers) in arb_valid_frame(),
        muts in proptest::collection::vec(arb_mutation(), 0..4),
    ) {
        prop_assert_eq!(check_stack(&frame), layers, "unmutated frame parses fully");
        let mut b = frame;
        for m in &muts {
            apply(&mut b, m);
        }
        let _ = check_stack(&b);
        check_all(&b);
        if b.len() > 14 {
            check_all(&b[14..]);
        }
        if b.len() > 34 {
            check_all(&b[34..]);
        }
    }

    /// Truncating a valid frame anywhere before its end: the layer that loses bytes
    /// reports Truncated (or, for a TCP/ICMP payload cut, the checksum no longer holds).
    #[test]
    fn truncated_frames_are_rejected((frame, layers) in arb_valid_frame(), cut in any::<usize>()) {
        let cut = cut % frame.len();
        let b = &frame[..cut];
        let parsed = check_stack(b);
        prop_assert!(parsed < layers, "cut at {} of {} still parses all layers", cut, frame.len());
        if cut < 14 {
            prop_assert_eq!(check_ethernet(b), Err(Error::Truncated));
        } else if frame[12..14] == [0x08, 0x00] {
            // The IPv4 total length now exceeds the buffer.
            prop_assert_eq!(check_ipv4(&b[14..]), Err(Error::Truncated));
        } else {
            prop_assert_eq!(check_arp(&b[14..]), Err(Error::Truncated));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any single bit flip in a TCP segment is caught: the checksum covers every bit
    /// and the pseudo-header length is unchanged.
    #[test]
    fn tcp_bit_flip_is_rejected(
        (header, _) in arb_tcp_header(),
        payload in arb_payload(64),
        pos in any::<usize>(),
        bit in 0u8..8,
    ) {
        let r = TcpRepr { payload: &payload, ..header };
        let mut seg = emit_tcp_segment(&r, &SRC, &DST);
        let i = pos % seg.len();
        seg[i] ^= 1 << bit;
        prop_assert!(check_tcp(&seg, &SRC, &DST).is_err(), "flip byte {} bit {}", i, bit);
    }

    /// Option length bytes set to 0, 1 or 255: BadOption once the checksum is made to
    /// hold again, BadChecksum before.
    #[test]
    fn tcp_option_length_garbage(
        (header, _) in arb_tcp_header(),
        which in any::<usize>(),
        val in prop_oneof![Just(0u8), Just(1), Just(255)],
    ) {
        let seg = emit_tcp_segment(&header, &SRC, &DST);
        let offsets = option_length_offsets(&seg);
        prop_assume!(!offsets.is_empty());
        let at = offsets[which % offsets.len()];
        let mut bad = seg.clone();
        bad[at] = val;
        prop_assert_eq!(check_tcp(&bad, &SRC, &DST), Err(Error::BadChecksum));
        refill_tcp_checksum(&mut bad, &SRC, &DST);
        prop_assert_eq!(check_tcp(&bad, &SRC, &DST), Err(Error::BadOption));
        prop_assert_eq!(check_options(&bad[20..header.header_len()]), Some(Error::BadOption));
    }

    /// Any single bit flip in an ICMP message fails its checksum.
    #[test]
    fn icmp_bit_flip_is_rejected(
        kind in arb_icmp_kind(),
        data in arb_payload(64),
        pos in any::<usize>(),
        bit in 0u8..8,
    ) {
        let mut b = emit_icmp(&kind.repr(&data));
        let i = pos % b.len();
        b[i] ^= 1 << bit;
        prop_assert_eq!(check_icmpv4(&b), Err(Error::BadChecksum));
    }

    /// A bit flip in an IPv4 header (past the version/IHL byte) is always rejected.
    #[test]
    fn ipv4_header_bit_flip_is_rejected(
        r in arb_ipv4_repr_with(any::<u8>().prop_map(IpProtocol), 0usize..64),
        pos in 1usize..20,
        bit in 0u8..8,
    ) {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        b[pos] ^= 1 << bit;
        prop_assert!(check_ipv4(&b).is_err());
    }

    /// A bit flip in a UDP datagram outside the length field is rejected, unless it
    /// turns the checksum into 0 ("no checksum", RFC 768).
    #[test]
    fn udp_bit_flip_is_rejected(
        sp in any::<u16>(),
        dp in 1..=u16::MAX,
        payload in arb_payload(64),
        pos in any::<usize>(),
        bit in 0u8..8,
    ) {
        let r = UdpRepr { src_port: sp, dst_port: dp, payload: &payload };
        let mut b = emit_udp_segment(&r, &SRC, &DST);
        let i = pos % b.len();
        prop_assume!(i != 4 && i != 5);
        b[i] ^= 1 << bit;
        prop_assume!(b[6..8] != [0, 0]);
        prop_assert!(check_udp(&b, &SRC, &DST).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// IPv6, its extension headers, ICMPv6 and NDP.
// ---------------------------------------------------------------------------------------

mod ipv6 {
    use super::{apply, arb_mutation, common::*};
    use berth_wire::icmpv6::MAX_ERROR_QUOTE;
    use berth_wire::ipv6::{walk_ext_headers, MAX_EXT_HEADERS};
    use berth_wire::{
        Error, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Addr, Ipv6FragmentRepr, Ipv6Option,
        Ipv6Options, Ipv6Packet, Ipv6Repr, NdpOptions,
    };
    use proptest::prelude::*;

    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// `new_checked` + `parse` + the walk, both ways; on success re-emit and parse again,
    /// and check the walk's offsets and pointers stay inside the packet.
    fn check_ipv6(b: &[u8]) -> berth_wire::Result<Ipv6Repr> {
        let unchecked = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(b));
        let checked = Ipv6Packet::new_checked(b).and_then(|p| {
            assert!(40 + p.payload_len() <= b.len());
            let _ = (
                p.traffic_class(),
                p.flow_label(),
                p.next_header(),
                p.packet(),
            );
            let r = Ipv6Repr::parse(&p)?;
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out);
            out[40..].copy_from_slice(p.payload());
            assert_eq!(
                &out[..],
                p.packet(),
                "every fixed header bit is represented"
            );
            let end = 40 + p.payload_len();
            match p.ext_headers() {
                Ok(w) => {
                    assert!(w.payload_offset <= end && w.payload_offset >= 40);
                    assert!(w.upper_layer_pointer < w.payload_offset.max(40));
                    assert!(w.count <= MAX_EXT_HEADERS);
                    if let Some((at, f)) = w.fragment {
                        assert!(at + 8 <= end);
                        if !f.is_atomic() {
                            assert_eq!(w.payload_offset, at + 8);
                        }
                    }
                    let u = r.upper_layer(&w);
                    assert_eq!(u.payload_len, end - w.payload_offset);
                }
                Err(e) => {
                    if let Some((_, ptr)) = e.param_problem {
                        assert!((ptr as usize) < end, "pointer {ptr} inside the packet");
                    }
                    assert!(matches!(
                        e.error,
                        Error::Truncated | Error::Malformed | Error::BadOption | Error::Unsupported
                    ));
                }
            }
            Ok(r)
        });
        match checked {
            Ok(r) => assert_eq!(unchecked, Ok(r)),
            Err(e) => assert!(matches!(e, Error::Truncated | Error::BadVersion), "{e:?}"),
        }
        checked
    }

    fn check_icmpv6<'a>(
        b: &'a [u8],
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> berth_wire::Result<Icmpv6Repr<'a>> {
        let unchecked = Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(b), src, dst);
        let checked = Icmpv6Packet::new_checked(b).and_then(|p| {
            let _ = (
                p.msg_type(),
                p.msg_code(),
                p.body(),
                p.data(),
                p.mtu(),
                p.pointer(),
            );
            let r = Icmpv6Repr::parse(&p, src, dst)?;
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, src, dst);
            let p2 = Icmpv6Packet::new_checked(&out[..]).unwrap();
            assert!(p2.verify_checksum(src, dst));
            // Echo and unknown messages keep every byte; errors and NDP drop their
            // unused/reserved fields (zero when sent, ignored when received).
            if matches!(
                r,
                Icmpv6Repr::EchoRequest { .. }
                    | Icmpv6Repr::EchoReply { .. }
                    | Icmpv6Repr::UnknownError { .. }
                    | Icmpv6Repr::UnknownInformational { .. }
            ) {
                // The checksum aside: 0x0000 and 0xffff both verify.
                assert_eq!((&out[..2], &out[4..]), (&b[..2], &b[4..]), "bytes kept");
            } else if b.len() <= 8 + MAX_ERROR_QUOTE {
                assert_eq!(out.len(), b.len());
            }
            assert_eq!(Icmpv6Repr::parse(&p2, src, dst), Ok(r));
            if let Icmpv6Repr::Ndp(n) = r {
                assert!(n.options().all(|o| o.is_ok()), "parsed options are valid");
                let _ = (
                    n.source_lladdr(),
                    n.target_lladdr(),
                    n.mtu(),
                    n.redirected_header(),
                );
                let _ = n.prefix_infos().count();
                let _ = n.check_ip(src, dst, 255);
            }
            Ok(r)
        });
        match checked {
            Ok(r) => assert_eq!(unchecked, Ok(r)),
            Err(e) => assert!(
                matches!(
                    e,
                    Error::Truncated
                        | Error::BadChecksum
                        | Error::BadVersion
                        | Error::Malformed
                        | Error::BadOption
                ),
                "{e:?}"
            ),
        }
        checked
    }

    fn fill_icmpv6_checksum(b: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) {
        if b.len() >= 4 {
            b[2] = 0;
            b[3] = 0;
            let c = berth_wire::checksum::transport(&(*src).into(), &(*dst).into(), 58, b);
            b[2..4].copy_from_slice(&c.to_be_bytes());
        }
    }

    /// One extension header for the chain strategy.
    #[derive(Debug, Clone)]
    enum Ext {
        /// Hop-by-hop (first only) or destination options: (type, data) options, of
        /// types PadN, Router Alert or unknown with action "skip".
        Opts {
            hbh: bool,
            options: Vec<(u8, Vec<u8>)>,
        },
        /// Routing header of any type with segments left 0 and `units` × 8 more bytes.
        Route {
            rtype: u8,
            units: u8,
        },
        AtomicFrag {
            ident: u32,
        },
    }

    fn arb_option() -> impl Strategy<Value = (u8, Vec<u8>)> {
        prop_oneof![
            proptest::collection::vec(Just(0u8), 0..6).prop_map(|d| (1u8, d)),
            any::<u16>().prop_map(|v| (5u8, v.to_be_bytes().to_vec())),
            (
                (2u8..0x40).prop_filter("not router alert", |t| *t != 5),
                proptest::collection::vec(any::<u8>(), 0..12)
            ),
        ]
    }

    fn arb_ext(hbh: bool) -> impl Strategy<Value = Ext> {
        let opts = proptest::collection::vec(arb_option(), 0..4)
            .prop_map(move |options| Ext::Opts { hbh, options });
        if hbh {
            opts.boxed()
        } else {
            prop_oneof![
                opts,
                (any::<u8>(), 0u8..4).prop_map(|(rtype, units)| Ext::Route { rtype, units }),
                any::<u32>().prop_map(|ident| Ext::AtomicFrag { ident }),
            ]
            .boxed()
        }
    }

    fn arb_chain() -> impl Strategy<Value = Vec<Ext>> {
        (
            proptest::option::of(arb_ext(true)),
            proptest::collection::vec(arb_ext(false), 0..MAX_EXT_HEADERS),
        )
            .prop_map(|(first, rest)| first.into_iter().chain(rest).collect())
    }

    fn protocol(e: &Ext) -> IpProtocol {
        match e {
            Ext::Opts { hbh: true, .. } => IpProtocol::HOPOPT,
            Ext::Opts { .. } => IpProtocol::IPV6_OPTS,
            Ext::Route { .. } => IpProtocol::IPV6_ROUTE,
            Ext::AtomicFrag { .. } => IpProtocol::IPV6_FRAG,
        }
    }

    /// The bytes of `e` followed by `next`, laid out from RFC 8200 §4 by hand (options
    /// padded with Pad1/PadN to 8n bytes).
    fn ext_bytes(e: &Ext, next: IpProtocol) -> Vec<u8> {
        match e {
            Ext::Opts { options, .. } => {
                let mut h = vec![next.0, 0];
                for (t, d) in options {
                    h.push(*t);
                    h.push(d.len() as u8);
                    h.extend_from_slice(d);
                }
                match (8 - h.len() % 8) % 8 {
                    0 => {}
                    1 => h.push(0),
                    n => {
                        h.extend([1, n as u8 - 2]);
                        h.extend(std::iter::repeat_n(0, n - 2));
                    }
                }
                h[1] = (h.len() / 8 - 1) as u8;
                h
            }
            Ext::Route { rtype, units } => {
                let mut h = vec![next.0, *units, *rtype, 0, 0, 0, 0, 0];
                h.extend(std::iter::repeat_n(0xa5, *units as usize * 8));
                h
            }
            Ext::AtomicFrag { ident } => {
                let mut h = vec![next.0, 0, 0, 0];
                h.extend(ident.to_be_bytes());
                h
            }
        }
    }

    fn upper_protocol() -> impl Strategy<Value = IpProtocol> {
        prop_oneof![
            Just(IpProtocol::TCP),
            Just(IpProtocol::UDP),
            Just(IpProtocol::ICMPV6),
            Just(IpProtocol::IPV6_NONXT),
        ]
    }

    /// A whole packet: fixed header, `chain`, `upper` with `payload`.
    fn chain_packet(chain: &[Ext], upper: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, e) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map(protocol).unwrap_or(upper);
            body.extend(ext_bytes(e, next));
        }
        body.extend_from_slice(payload);
        let r = Ipv6Repr {
            src_addr: SRC6,
            dst_addr: DST6,
            next_header: chain.first().map(protocol).unwrap_or(upper),
            payload_len: body.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut b = vec![0u8; 40];
        r.emit(&mut b);
        b.extend(body);
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn ipv6_round_trip(r in arb_ipv6_repr_with(0usize..1500), fill in any::<u8>(), pad in 0usize..8) {
            let mut buf = vec![fill; r.buffer_len() + pad];
            r.emit(&mut buf);
            prop_assert_eq!(buf[0] >> 4, 6);
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(p.payload().len(), r.payload_len);
            prop_assert_eq!(p.packet().len(), r.buffer_len());
            prop_assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
            prop_assert_eq!(check_ipv6(&buf), Ok(r));
        }

        /// A chain of valid extension headers is walked to its upper layer, at the
        /// offset the layout gives, however many headers and of whatever kind.
        #[test]
        fn ext_header_chain_walk(
            chain in arb_chain(),
            upper in upper_protocol(),
            payload in arb_payload(64),
        ) {
            let b = chain_packet(&chain, upper, &payload);
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            let w = p.ext_headers().unwrap();
            prop_assert_eq!(w.upper_layer, upper);
            prop_assert_eq!(w.payload_offset, b.len() - payload.len());
            prop_assert_eq!(w.count, chain.len());
            prop_assert_eq!(&b[w.payload_offset..], &payload[..]);
            prop_assert_eq!(b[w.upper_layer_pointer], upper.0);
            let expect_alert = match chain.first() {
                Some(Ext::Opts { hbh: true, options }) => {
                    options.iter().rev().find(|(t, _)| *t == 5).map(|(_, d)| u16::from_be_bytes([d[0], d[1]]))
                }
                _ => None,
            };
            prop_assert_eq!(w.router_alert, expect_alert);
            let last_frag = chain.iter().rev().find_map(|e| match e {
                Ext::AtomicFrag { ident } => Some(*ident),
                _ => None,
            });
            prop_assert_eq!(w.fragment.map(|(_, f)| f.ident), last_frag);
            if let Some((at, f)) = w.fragment {
                prop_assert!(f.is_atomic());
                prop_assert_eq!(Ipv6FragmentRepr::parse(&b[at..]), Ok(f));
            }
            let r = Ipv6Repr::parse(&p).unwrap().upper_layer(&w);
            prop_assert_eq!((r.next_header, r.payload_len), (upper, payload.len()));
            check_ipv6(&b).unwrap();
        }

        /// Cut anywhere inside the chain, the walk fails as truncated, never reads past.
        #[test]
        fn ext_header_chain_cut(chain in arb_chain(), cut in any::<usize>()) {
            prop_assume!(!chain.is_empty());
            let b = chain_packet(&chain, IpProtocol::UDP, &[]);
            let cut = 40 + cut % (b.len() - 40);
            let first = chain.first().map(protocol).unwrap();
            let e = walk_ext_headers(first, &b[40..cut]).unwrap_err();
            prop_assert_eq!(e.error, Error::Truncated);
            prop_assert_eq!(e.param_problem, None);
        }

        /// A hop-by-hop header anywhere but first is refused with code 1 at the Next
        /// Header field naming it.
        #[test]
        fn hop_by_hop_not_first(mut chain in arb_chain(), at in any::<usize>()) {
            chain.retain(|e| !matches!(e, Ext::Opts { hbh: true, .. }));
            prop_assume!(!chain.is_empty() && chain.len() < MAX_EXT_HEADERS);
            let at = 1 + at % chain.len();
            chain.insert(at, Ext::Opts { hbh: true, options: vec![] });
            let b = chain_packet(&chain, IpProtocol::TCP, &[]);
            let e = Ipv6Packet::new_checked(&b[..]).unwrap().ext_headers().unwrap_err();
            let (code, ptr) = e.param_problem.unwrap();
            prop_assert_eq!(code, berth_wire::ParamProblemCode::UnrecognizedNextHeader);
            prop_assert_eq!(b[ptr as usize], 0);
        }

        #[test]
        fn ipv6_options_round_trip(opts in proptest::collection::vec(arb_option(), 0..6)) {
            let opts: Vec<Ipv6Option<'_>> = opts.iter().map(|(t, d)| match *t {
                1 => Ipv6Option::PadN(d.len() as u8),
                5 => Ipv6Option::RouterAlert(u16::from_be_bytes([d[0], d[1]])),
                t => Ipv6Option::Unknown { option_type: t, data: d },
            }).collect();
            let mut area = vec![0u8; opts.iter().map(|o| o.buffer_len()).sum()];
            let mut at = 0;
            for o in &opts {
                at += o.emit(&mut area[at..]);
            }
            let back: Vec<_> = Ipv6Options::new(&area).map(|o| o.unwrap().1).collect();
            prop_assert_eq!(back, opts);
        }

        #[test]
        fn icmpv6_round_trip(
            kind in arb_icmpv6_kind(),
            data in arb_payload(200),
            src in arb_ipv6_addr(),
            dst in arb_ipv6_addr(),
        ) {
            let mut body = vec![0u8, 1, 2, 3];
            body.extend_from_slice(&data);
            let data = if matches!(kind, Icmpv6Kind::Unknown { .. }) { &body[..] } else { &data[..] };
            let r = kind.repr(data);
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut buf, &src, &dst);
            let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(&src, &dst));
            prop_assert_eq!(Icmpv6Repr::parse(&p, &src, &dst).unwrap(), r);
        }

        /// An error's quote is cut so the message fits the minimum MTU.
        #[test]
        fn icmpv6_error_quote_is_cut(kind in arb_icmpv6_kind(), len in 0usize..4000) {
            prop_assume!(!matches!(kind, Icmpv6Kind::Unknown { .. } | Icmpv6Kind::EchoRequest { .. } | Icmpv6Kind::EchoReply { .. }));
            let data = vec![0x77u8; len];
            let r = kind.repr(&data);
            prop_assert_eq!(r.buffer_len(), 8 + 40 + len.min(MAX_ERROR_QUOTE - 40));
            prop_assert!(r.buffer_len() <= 1280 - 40);
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut buf, &SRC6, &DST6);
            check_icmpv6(&buf, &SRC6, &DST6).unwrap();
        }

        #[test]
        fn ndp_round_trip(
            kind in arb_ndp_kind(),
            specs in proptest::collection::vec(arb_ndp_option(), 0..5),
            src in arb_ipv6_addr(),
            dst in arb_ipv6_addr(),
        ) {
            let area = ndp_area(&specs);
            let n = kind.repr(&area);
            let r = Icmpv6Repr::Ndp(n);
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut buf, &src, &dst);
            let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
            let back = Icmpv6Repr::parse(&p, &src, &dst).unwrap();
            prop_assert_eq!(back, r);
            let opts: Vec<_> = NdpOptions::new(&area).map(|o| o.unwrap()).collect();
            let want: Vec<_> = specs.iter().map(|s| s.option()).collect();
            prop_assert_eq!(opts, want);
            check_icmpv6(&buf, &src, &dst).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_ipv6_bytes_never_panic(
            mut b in proptest::collection::vec(any::<u8>(), 0..200),
            fix in any::<bool>(),
            first in any::<u8>(),
        ) {
            if fix && b.len() >= 40 {
                // Version 6 and a payload length within the buffer.
                b[0] = 0x60 | (b[0] & 0x0f);
                let pl = (b[4] as usize * 256 + b[5] as usize) % (b.len() - 39);
                b[4..6].copy_from_slice(&(pl as u16).to_be_bytes());
                prop_assert!(check_ipv6(&b).is_ok());
            } else {
                let _ = check_ipv6(&b);
            }
            // The walker over any bytes with any first header.
            match walk_ext_headers(IpProtocol(first), &b) {
                Ok(w) => prop_assert!(w.payload_offset <= 40 + b.len()),
                Err(e) => if let Some((_, ptr)) = e.param_problem {
                    prop_assert!((ptr as usize) < 40 + b.len());
                },
            }
        }

        #[test]
        fn arbitrary_icmpv6_never_panics(
            mut b in proptest::collection::vec(any::<u8>(), 0..200),
            t in prop_oneof![Just(None), (1u8..5).prop_map(Some), (128u8..138).prop_map(Some), any::<u8>().prop_map(Some)],
            zero_code in any::<bool>(),
        ) {
            if let (Some(t), false) = (t, b.is_empty()) {
                b[0] = t;
                if zero_code && b.len() > 1 {
                    b[1] = 0;
                }
            }
            fill_icmpv6_checksum(&mut b, &SRC6, &DST6);
            let r = check_icmpv6(&b, &SRC6, &DST6);
            if b.len() >= 8 {
                prop_assert_ne!(r, Err(Error::BadChecksum));
            }
        }

        /// Valid chains and NDP messages, damaged: never a panic, and whatever parses
        /// re-emits to the same value.
        #[test]
        fn mutated_ipv6_never_panics(
            chain in arb_chain(),
            payload in arb_payload(40),
            muts in proptest::collection::vec(arb_mutation(), 1..4),
            kind in arb_ndp_kind(),
            specs in proptest::collection::vec(arb_ndp_option(), 0..4),
            refill in any::<bool>(),
        ) {
            let mut b = chain_packet(&chain, IpProtocol::ICMPV6, &payload);
            for m in &muts {
                apply(&mut b, m);
            }
            let _ = check_ipv6(&b);
            let area = ndp_area(&specs);
            let r = Icmpv6Repr::Ndp(kind.repr(&area));
            let mut m = vec![0u8; r.buffer_len()];
            r.emit(&mut m, &SRC6, &DST6);
            for mu in &muts {
                apply(&mut m, mu);
            }
            if refill {
                fill_icmpv6_checksum(&mut m, &SRC6, &DST6);
            }
            let _ = check_icmpv6(&m, &SRC6, &DST6);
        }
    }
}
