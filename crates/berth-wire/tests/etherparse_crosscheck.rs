//! Cross-checks against an independent implementation, etherparse 0.16.
//!
//! - berth emits, etherparse parses: every field agrees, and etherparse's own checksum
//!   computations (`Ipv4Header::calc_header_checksum`, `UdpHeader::calc_checksum_ipv4`,
//!   `TcpHeader::calc_checksum_ipv4`, `Icmpv4Type::calc_checksum`, `Sum16BitWords`)
//!   give the values berth wrote.
//! - etherparse's `PacketBuilder` emits, berth parses: every field agrees.
//!
//! etherparse 0.16 has no ARP parser (it arrived in 0.17), so for Ethernet+ARP it checks
//! the link header, the EtherType and the ARP hardware type constant, and the ARP body
//! is compared byte for byte with a layout typed in from RFC 826.

mod common;

use berth_wire::checksum;
use berth_wire::icmpv4::{DstUnreachable, TimeExceeded};
use berth_wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr, SeqNumber, TcpFlags,
    TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};
use common::*;
use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::{
    ArpHardwareId, Ethernet2Header, IcmpEchoHeader, Icmpv4Header, Icmpv4Type, IpHeaders, IpNumber,
    Ipv4Header, PacketBuilder, SlicedPacket, TcpHeader, TcpOptionElement, TransportSlice,
    UdpHeader,
};
use proptest::prelude::*;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const IP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

// ---------------------------------------------------------------------------------------
// berth → etherparse
// ---------------------------------------------------------------------------------------

/// Emit an IPv4 packet around `transport` (already emitted with `ip`'s addresses).
fn berth_ipv4(ip: &Ipv4Repr, transport: &[u8]) -> Vec<u8> {
    assert_eq!(ip.payload_len, transport.len());
    let mut b = vec![0u8; ip.buffer_len()];
    ip.emit(&mut b);
    b[20..].copy_from_slice(transport);
    b
}

/// Parse the IPv4 header with etherparse, check every field against `ip` and that
/// etherparse computes the same header checksum berth wrote. Returns etherparse's
/// header and the bytes after it.
fn ep_ipv4<'a>(ip: &Ipv4Repr, packet: &'a [u8]) -> (Ipv4Header, &'a [u8]) {
    let (h, rest) = Ipv4Header::from_slice(packet).expect("etherparse parses berth's IPv4");
    assert_eq!(h.source, ip.src_addr.octets());
    assert_eq!(h.destination, ip.dst_addr.octets());
    assert_eq!(h.protocol, IpNumber(ip.protocol.0));
    assert_eq!(h.time_to_live, ip.ttl);
    assert_eq!((h.dscp.value() << 2) | h.ecn.value(), ip.dscp_ecn);
    assert_eq!(h.identification, ip.ident);
    assert_eq!(h.dont_fragment, ip.dont_frag);
    assert_eq!(h.more_fragments, ip.more_frags);
    assert_eq!(h.fragment_offset.byte_offset(), ip.frag_offset);
    assert_eq!(h.header_len(), 20);
    assert!(h.options.is_empty());
    assert_eq!(h.total_len as usize, ip.buffer_len());
    assert_eq!(h.payload_len().unwrap() as usize, ip.payload_len);
    assert_eq!(
        h.header_checksum,
        u16::from_be_bytes([packet[10], packet[11]])
    );
    assert_eq!(
        h.calc_header_checksum(),
        h.header_checksum,
        "etherparse agrees"
    );
    (h, rest)
}

/// TCP options as etherparse decodes them, folded into berth's repr fields.
#[derive(Debug, Clone, Default, PartialEq)]
struct EpOptions {
    mss: Option<u16>,
    ws: Option<u8>,
    sack_permitted: bool,
    ts: Option<(u32, u32)>,
    sack: Vec<(u32, u32)>,
}

fn ep_tcp_options(h: &TcpHeader) -> EpOptions {
    let mut o = EpOptions::default();
    for e in h.options_iterator() {
        match e.expect("etherparse reads berth's options") {
            TcpOptionElement::Noop => {}
            TcpOptionElement::MaximumSegmentSize(m) => o.mss = Some(m),
            TcpOptionElement::WindowScale(w) => o.ws = Some(w),
            TcpOptionElement::SelectiveAcknowledgementPermitted => o.sack_permitted = true,
            TcpOptionElement::Timestamp(v, e) => o.ts = Some((v, e)),
            TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                o.sack = std::iter::once(first)
                    .chain(rest.into_iter().flatten())
                    .collect();
            }
        }
    }
    o
}

fn berth_tcp_options(r: &TcpRepr<'_>) -> EpOptions {
    EpOptions {
        mss: r.max_seg_size,
        ws: r.window_scale,
        sack_permitted: r.sack_permitted,
        ts: r.timestamp,
        sack: r
            .sack_ranges
            .iter()
            .flatten()
            .map(|(l, r)| (l.0, r.0))
            .collect(),
    }
}

fn ep_tcp_flags(h: &TcpHeader) -> u16 {
    [
        (h.fin, TcpFlags::FIN),
        (h.syn, TcpFlags::SYN),
        (h.rst, TcpFlags::RST),
        (h.psh, TcpFlags::PSH),
        (h.ack, TcpFlags::ACK),
        (h.urg, TcpFlags::URG),
        (h.ece, TcpFlags::ECE),
        (h.cwr, TcpFlags::CWR),
        (h.ns, TcpFlags::NS),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(0, |acc, (_, f)| acc | f.0)
}

/// berth IPv4+TCP → etherparse: all fields, options and both checksums agree.
fn crosscheck_tcp(ip: &Ipv4Repr, r: &TcpRepr<'_>) {
    let mut seg = vec![0u8; r.buffer_len()];
    r.emit(&mut seg, &ip.src_addr, &ip.dst_addr);
    let pkt = berth_ipv4(ip, &seg);
    let (iph, rest) = ep_ipv4(ip, &pkt);
    let (h, payload) = TcpHeader::from_slice(rest).expect("etherparse parses berth's TCP");
    assert_eq!(h.source_port, r.src_port);
    assert_eq!(h.destination_port, r.dst_port);
    assert_eq!(h.sequence_number, r.seq_number.0);
    assert_eq!(h.acknowledgment_number, r.ack_number.0);
    assert_eq!(ep_tcp_flags(&h), r.flags.0);
    assert_eq!(h.window_size, r.window_len);
    assert_eq!(h.urgent_pointer, r.urgent_pointer);
    assert_eq!(h.header_len(), r.header_len());
    assert_eq!(payload, r.payload);
    assert_eq!(ep_tcp_options(&h), berth_tcp_options(r));
    assert_eq!(h.checksum, u16::from_be_bytes([seg[16], seg[17]]));
    assert_eq!(h.calc_checksum_ipv4(&iph, payload).unwrap(), h.checksum);
}

fn crosscheck_udp(ip: &Ipv4Repr, r: &UdpRepr<'_>) {
    let mut seg = vec![0u8; r.buffer_len()];
    r.emit(&mut seg, &ip.src_addr, &ip.dst_addr);
    let pkt = berth_ipv4(ip, &seg);
    let (iph, rest) = ep_ipv4(ip, &pkt);
    let (h, payload) = UdpHeader::from_slice(rest).expect("etherparse parses berth's UDP");
    assert_eq!(h.source_port, r.src_port);
    assert_eq!(h.destination_port, r.dst_port);
    assert_eq!(h.length as usize, r.buffer_len());
    assert_eq!(payload, r.payload);
    assert_eq!(h.checksum, u16::from_be_bytes([seg[6], seg[7]]));
    // etherparse also sends a computed 0 as 0xffff.
    assert_eq!(h.calc_checksum_ipv4(&iph, payload).unwrap(), h.checksum);
}

/// The etherparse message type berth's repr should decode to (type, code, bytes 4..8).
fn expected_icmp_type(r: &Icmpv4Repr<'_>) -> Icmpv4Type {
    match *r {
        Icmpv4Repr::EchoRequest { ident, seq_no, .. } => Icmpv4Type::EchoRequest(IcmpEchoHeader {
            id: ident,
            seq: seq_no,
        }),
        Icmpv4Repr::EchoReply { ident, seq_no, .. } => Icmpv4Type::EchoReply(IcmpEchoHeader {
            id: ident,
            seq: seq_no,
        }),
        Icmpv4Repr::DstUnreachable { reason, .. } => {
            let mtu = match reason {
                DstUnreachable::FragRequired { next_hop_mtu } => next_hop_mtu,
                _ => 0,
            };
            match DestUnreachableHeader::from_values(reason.code(), mtu) {
                Some(h) => Icmpv4Type::DestinationUnreachable(h),
                None => Icmpv4Type::Unknown {
                    type_u8: 3,
                    code_u8: reason.code(),
                    bytes5to8: [0, 0, (mtu >> 8) as u8, mtu as u8],
                },
            }
        }
        Icmpv4Repr::TimeExceeded { reason, .. } => Icmpv4Type::TimeExceeded(match reason {
            TimeExceeded::TtlExpired => TimeExceededCode::TtlExceededInTransit,
            TimeExceeded::FragReassemblyExpired => TimeExceededCode::FragmentReassemblyTimeExceeded,
        }),
    }
}

fn crosscheck_icmp(ip: &Ipv4Repr, r: &Icmpv4Repr<'_>) {
    let mut msg = vec![0u8; r.buffer_len()];
    r.emit(&mut msg);
    let pkt = berth_ipv4(ip, &msg);
    let (_, rest) = ep_ipv4(ip, &pkt);
    let (h, payload) = Icmpv4Header::from_slice(rest).expect("etherparse parses berth's ICMP");
    assert_eq!(h.icmp_type, expected_icmp_type(r));
    assert_eq!(h.checksum, u16::from_be_bytes([msg[2], msg[3]]));
    assert_eq!(h.icmp_type.calc_checksum(payload), h.checksum);
    match *r {
        Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
            assert_eq!(payload, data)
        }
        Icmpv4Repr::DstUnreachable { header, data, .. }
        | Icmpv4Repr::TimeExceeded { header, data, .. } => {
            // The quote: an IPv4 header etherparse reads back, then the data.
            let (q, qrest) = Ipv4Header::from_slice(payload).expect("quoted header");
            assert_eq!(q.source, header.src_addr.octets());
            assert_eq!(q.destination, header.dst_addr.octets());
            assert_eq!(q.protocol, IpNumber(header.protocol.0));
            assert_eq!(q.total_len as usize, header.buffer_len());
            assert_eq!(q.calc_header_checksum(), q.header_checksum);
            assert_eq!(qrest, data);
        }
    }
}

#[test]
fn udp_to_etherparse() {
    let payload = b"berth says hello to etherparse";
    let r = UdpRepr {
        src_port: 40000,
        dst_port: 53,
        payload,
    };
    crosscheck_udp(&ipv4_for(IP_A, IP_B, IpProtocol::UDP, r.buffer_len()), &r);
    // Odd length and an empty payload.
    let r = UdpRepr {
        src_port: 1,
        dst_port: 65535,
        payload: b"x",
    };
    crosscheck_udp(&ipv4_for(IP_A, IP_B, IpProtocol::UDP, 9), &r);
    let r = UdpRepr {
        src_port: 0,
        dst_port: 9,
        payload: b"",
    };
    crosscheck_udp(&ipv4_for(IP_A, IP_B, IpProtocol::UDP, 8), &r);
}

#[test]
fn tcp_syn_and_sack_to_etherparse() {
    let mut syn = TcpRepr::new(47330, 8080, SeqNumber(0xbee4_7aac), TcpFlags::SYN);
    syn.window_len = 64240;
    syn.max_seg_size = Some(1460);
    syn.window_scale = Some(7);
    syn.sack_permitted = true;
    syn.timestamp = Some((0xdcc7_9836, 0));
    crosscheck_tcp(
        &ipv4_for(IP_A, IP_B, IpProtocol::TCP, syn.buffer_len()),
        &syn,
    );

    let mut ack = TcpRepr::new(8080, 47330, SeqNumber(7), TcpFlags::ACK);
    ack.ack_number = SeqNumber(0xffff_fff0);
    ack.window_len = 512;
    ack.timestamp = Some((1, 2));
    ack.sack_ranges = [
        Some((SeqNumber(100), SeqNumber(200))),
        Some((SeqNumber(300), SeqNumber(400))),
        Some((SeqNumber(0xffff_ff00), SeqNumber(0x10))),
        None,
    ];
    ack.payload = b"data after the options";
    crosscheck_tcp(
        &ipv4_for(IP_B, IP_A, IpProtocol::TCP, ack.buffer_len()),
        &ack,
    );

    // Four SACK blocks (no timestamps): the full 36 bytes of option space.
    let mut four = TcpRepr::new(1, 2, SeqNumber(3), TcpFlags::ACK);
    for (i, s) in four.sack_ranges.iter_mut().enumerate() {
        let i = i as u32;
        *s = Some((SeqNumber(1000 * i), SeqNumber(1000 * i + 500)));
    }
    assert_eq!(four.header_len(), 56);
    crosscheck_tcp(
        &ipv4_for(IP_A, IP_B, IpProtocol::TCP, four.buffer_len()),
        &four,
    );
}

#[test]
fn icmp_echo_and_unreachable_to_etherparse() {
    let data: Vec<u8> = (0u8..56).collect();
    let echo = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 1,
        data: &data,
    };
    crosscheck_icmp(
        &ipv4_for(IP_A, IP_B, IpProtocol::ICMP, echo.buffer_len()),
        &echo,
    );
    let reply = Icmpv4Repr::EchoReply {
        ident: 0x1234,
        seq_no: 1,
        data: &data,
    };
    crosscheck_icmp(
        &ipv4_for(IP_B, IP_A, IpProtocol::ICMP, reply.buffer_len()),
        &reply,
    );

    let quoted = ipv4_for(IP_A, IP_B, IpProtocol::UDP, 13);
    let udp_head = [0x9c, 0x40, 0x00, 0x09, 0x00, 0x0d, 0xa2, 0xac];
    for reason in [
        DstUnreachable::PortUnreachable,
        DstUnreachable::HostUnreachable,
        DstUnreachable::FragRequired { next_hop_mtu: 1280 },
        DstUnreachable::AdminProhibited,
    ] {
        let r = Icmpv4Repr::DstUnreachable {
            reason,
            header: quoted,
            data: &udp_head,
        };
        crosscheck_icmp(&ipv4_for(IP_B, IP_A, IpProtocol::ICMP, r.buffer_len()), &r);
    }
    let r = Icmpv4Repr::TimeExceeded {
        reason: TimeExceeded::TtlExpired,
        header: quoted,
        data: &udp_head,
    };
    crosscheck_icmp(&ipv4_for(IP_B, IP_A, IpProtocol::ICMP, r.buffer_len()), &r);
}

/// RFC 826 layout of an Ethernet/IPv4 ARP request, typed in field by field.
fn rfc826_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ArpHardwareId::ETHER.0.to_be_bytes()); // ar$hrd
    b.extend_from_slice(&etherparse::EtherType::IPV4.0.to_be_bytes()); // ar$pro
    b.push(6); // ar$hln
    b.push(4); // ar$pln
    b.extend_from_slice(&1u16.to_be_bytes()); // ar$op = REQUEST
    b.extend_from_slice(&sha); // ar$sha
    b.extend_from_slice(&spa); // ar$spa
    b.extend_from_slice(&[0; 6]); // ar$tha
    b.extend_from_slice(&tpa); // ar$tpa
    b
}

#[test]
fn ethernet_arp_to_etherparse() {
    let eth = EthernetRepr {
        src_addr: EthernetAddress(MAC_A),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    };
    let arp = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(MAC_A),
        source_protocol_addr: IP_A,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Addr::new(192, 0, 2, 2),
    };
    let mut frame = vec![0u8; 14 + 28];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    arp.emit(&mut frame[14..]);

    let (h, rest) = Ethernet2Header::from_slice(&frame).unwrap();
    assert_eq!(h.source, MAC_A);
    assert_eq!(h.destination, [0xff; 6]);
    assert_eq!(h.ether_type, etherparse::EtherType::ARP);
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    assert!(sliced.net.is_none() && sliced.transport.is_none());
    let ep = sliced.ether_payload().unwrap();
    assert_eq!(ep.ether_type, etherparse::EtherType::ARP);
    assert_eq!(ep.payload, rest);
    assert_eq!(
        rest,
        &rfc826_request(MAC_A, IP_A.octets(), [192, 0, 2, 2])[..]
    );
}

// ---------------------------------------------------------------------------------------
// etherparse → berth
// ---------------------------------------------------------------------------------------

/// Parse an Ethernet+IPv4 frame with berth down to the IPv4 payload.
fn berth_eth_ipv4(frame: &[u8]) -> (EthernetRepr, Ipv4Repr, &[u8]) {
    let f = EthernetFrame::new_checked(frame).unwrap();
    let eth = EthernetRepr::parse(&f).unwrap();
    assert_eq!(eth.ethertype, EtherType::Ipv4);
    let p = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let ip = Ipv4Repr::parse(&p).unwrap();
    let hl = p.header_len();
    (eth, ip, &frame[14 + hl..14 + p.total_len()])
}

#[test]
fn etherparse_udp_to_berth() {
    let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A.octets(), IP_B.octets(), 20)
        .udp(5353, 53);
    let payload = b"from etherparse";
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).unwrap();

    let (eth, ip, seg) = berth_eth_ipv4(&frame);
    assert_eq!(eth.src_addr, EthernetAddress(MAC_A));
    assert_eq!(eth.dst_addr, EthernetAddress(MAC_B));
    assert_eq!((ip.src_addr, ip.dst_addr), (IP_A, IP_B));
    assert_eq!(ip.protocol, IpProtocol::UDP);
    assert_eq!(ip.ttl, 20);
    assert!(ip.dont_frag, "etherparse's Ipv4Header::new sets DF");
    let u = UdpRepr::parse(&UdpPacket::new_checked(seg).unwrap(), &IP_A, &IP_B).unwrap();
    assert_eq!(
        u,
        UdpRepr {
            src_port: 5353,
            dst_port: 53,
            payload
        }
    );
}

#[test]
fn etherparse_custom_ipv4_header_to_berth() {
    let mut h = Ipv4Header::new(0, 3, IpNumber::UDP, IP_B.octets(), IP_A.octets()).unwrap();
    h.dscp = etherparse::Ipv4Dscp::try_new(46).unwrap(); // EF
    h.ecn = etherparse::Ipv4Ecn::ONE;
    h.identification = 0xabcd;
    h.dont_fragment = false;
    h.more_fragments = true;
    h.fragment_offset = etherparse::IpFragOffset::try_new(185).unwrap();
    h.options = [1u8, 1, 1, 0].into(); // NOP NOP NOP EOL: IHL 6
    let builder = PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ip(IpHeaders::Ipv4(h, Default::default()))
        .udp(7, 9);
    let mut frame = Vec::new();
    builder.write(&mut frame, b"fragment").unwrap();
    let (_, ip, seg) = berth_eth_ipv4(&frame);
    assert_eq!(
        ip,
        Ipv4Repr {
            src_addr: IP_B,
            dst_addr: IP_A,
            protocol: IpProtocol::UDP,
            payload_len: 16,
            ttl: 3,
            dscp_ecn: (46 << 2) | 1,
            ident: 0xabcd,
            dont_frag: false,
            more_frags: true,
            frag_offset: 185 * 8,
        }
    );
    assert!(ip.is_fragment());
    assert_eq!(
        frame[14] & 0x0f,
        6,
        "options made it IHL 6, which berth skips"
    );
    assert_eq!(seg.len(), 16);
}

#[test]
fn etherparse_icmp_to_berth() {
    let data = b"ping data";
    let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A.octets(), IP_B.octets(), 64)
        .icmpv4_echo_request(0x0bee, 42);
    let mut frame = Vec::new();
    builder.write(&mut frame, data).unwrap();
    let (_, ip, msg) = berth_eth_ipv4(&frame);
    assert_eq!(ip.protocol, IpProtocol::ICMP);
    let r = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(msg).unwrap()).unwrap();
    assert_eq!(
        r,
        Icmpv4Repr::EchoRequest {
            ident: 0x0bee,
            seq_no: 42,
            data
        }
    );

    // Destination unreachable (fragmentation needed) quoting an etherparse UDP packet.
    let inner = PacketBuilder::ipv4(IP_B.octets(), IP_A.octets(), 61).udp(4000, 4001);
    let mut quote = Vec::new();
    inner.write(&mut quote, b"abcdefgh").unwrap();
    let builder = PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(IP_A.octets(), IP_B.octets(), 255)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ));
    let mut frame = Vec::new();
    builder.write(&mut frame, &quote).unwrap();
    let (_, _, msg) = berth_eth_ipv4(&frame);
    let r = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(msg).unwrap()).unwrap();
    let Icmpv4Repr::DstUnreachable {
        reason,
        header,
        data,
    } = r
    else {
        panic!("{r:?}");
    };
    assert_eq!(reason, DstUnreachable::FragRequired { next_hop_mtu: 1400 });
    assert_eq!((header.src_addr, header.dst_addr), (IP_B, IP_A));
    assert_eq!(header.protocol, IpProtocol::UDP);
    assert_eq!(header.ttl, 61);
    assert_eq!(header.payload_len, 16);
    assert_eq!(data, &quote[20..]);

    // Time exceeded in transit.
    let builder = PacketBuilder::ipv4(IP_A.octets(), IP_B.octets(), 255).icmpv4(
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
    );
    let mut pkt = Vec::new();
    builder.write(&mut pkt, &quote).unwrap();
    let p = Ipv4Packet::new_checked(&pkt[..]).unwrap();
    let r = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(p.payload()).unwrap()).unwrap();
    assert!(matches!(
        r,
        Icmpv4Repr::TimeExceeded {
            reason: TimeExceeded::TtlExpired,
            ..
        }
    ));
}

#[test]
fn etherparse_ethernet_arp_to_berth() {
    let eth = Ethernet2Header {
        source: MAC_B,
        destination: [0xff; 6],
        ether_type: etherparse::EtherType::ARP,
    };
    let mut frame = eth.to_bytes().to_vec();
    frame.extend_from_slice(&rfc826_request(MAC_B, [198, 51, 100, 2], [198, 51, 100, 1]));
    frame.resize(60, 0); // minimum Ethernet frame (without FCS), zero padded
    let e = EthernetRepr::parse(&EthernetFrame::new_checked(&frame[..]).unwrap()).unwrap();
    assert_eq!(e.ethertype, EtherType::Arp);
    assert!(e.dst_addr.is_broadcast());
    assert_eq!(e.src_addr, EthernetAddress(MAC_B));
    let a = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    assert_eq!(a.operation, ArpOperation::Request);
    assert_eq!(a.source_hardware_addr, EthernetAddress(MAC_B));
    assert_eq!(a.source_protocol_addr, Ipv4Addr::new(198, 51, 100, 2));
    assert_eq!(a.target_protocol_addr, Ipv4Addr::new(198, 51, 100, 1));
}

// ---------------------------------------------------------------------------------------
// Property-based cross-checks
// ---------------------------------------------------------------------------------------

/// A list of TCP options etherparse can write (≤ 40 bytes), in random order, with the
/// values berth should read back.
fn arb_ep_options() -> impl Strategy<Value = (Vec<TcpOptionElement>, EpOptions)> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
        0usize..3,
    )
        .prop_flat_map(|(mss, ws, sp, ts, sack, noops)| {
            let mut els = Vec::new();
            els.extend(mss.map(TcpOptionElement::MaximumSegmentSize));
            els.extend(ws.map(TcpOptionElement::WindowScale));
            if sp {
                els.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
            }
            els.extend(ts.map(|(a, b)| TcpOptionElement::Timestamp(a, b)));
            els.extend((0..noops).map(|_| TcpOptionElement::Noop));
            let fixed = 4 * mss.is_some() as usize
                + 3 * ws.is_some() as usize
                + 2 * sp as usize
                + 10 * ts.is_some() as usize
                + noops;
            // As many SACK blocks as etherparse can fit after the rest.
            let room = 40usize.saturating_sub(fixed);
            let n = if room >= 10 {
                sack.len().min((room - 2) / 8)
            } else {
                0
            };
            let sack = sack[..n].to_vec();
            if let Some((&first, rest)) = sack.split_first() {
                let mut more = [None; 3];
                for (slot, b) in more.iter_mut().zip(rest) {
                    *slot = Some(*b);
                }
                els.push(TcpOptionElement::SelectiveAcknowledgement(first, more));
            }
            let expect = EpOptions {
                mss,
                ws,
                sack_permitted: sp,
                ts,
                sack,
            };
            (Just(els).prop_shuffle(), Just(expect))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// berth's wide checksum = etherparse's Sum16BitWords on any bytes.
    #[test]
    fn checksum_matches_etherparse(data in arb_payload(2000)) {
        let ep = etherparse::checksum::Sum16BitWords::new()
            .add_slice(&data)
            .ones_complement()
            .to_be();
        prop_assert_eq!(checksum::checksum(&data), ep);
    }

    /// Any berth TCP segment (all option combinations) reads the same in etherparse,
    /// and etherparse computes the same checksums.
    #[test]
    fn berth_tcp_reads_same_in_etherparse(
        (header, _) in arb_tcp_header(),
        payload in arb_payload(200),
        src in arb_ipv4_addr(),
        dst in arb_ipv4_addr(),
    ) {
        let r = TcpRepr { payload: &payload, ..header };
        crosscheck_tcp(&ipv4_for(src, dst, IpProtocol::TCP, r.buffer_len()), &r);
    }

    /// Any berth UDP datagram in any IPv4 header reads the same in etherparse.
    #[test]
    fn berth_udp_reads_same_in_etherparse(
        ip in arb_ipv4_repr_with(Just(IpProtocol::UDP), Just(0usize)),
        sp in any::<u16>(),
        dp in any::<u16>(),
        payload in arb_payload(600),
    ) {
        let r = UdpRepr { src_port: sp, dst_port: dp, payload: &payload };
        crosscheck_udp(&Ipv4Repr { payload_len: r.buffer_len(), ..ip }, &r);
    }

    /// Any berth ICMP message reads the same in etherparse.
    #[test]
    fn berth_icmp_reads_same_in_etherparse(kind in arb_icmp_kind(), data in arb_payload(100)) {
        let r = kind.repr(&data);
        crosscheck_icmp(&ipv4_for(IP_A, IP_B, IpProtocol::ICMP, r.buffer_len()), &r);
    }

    /// etherparse-built TCP segments with random options in random order parse in
    /// berth to the same values.
    #[test]
    fn etherparse_tcp_reads_same_in_berth(
        (opts, expect) in arb_ep_options(),
        sp in 1..=u16::MAX,
        dp in 1..=u16::MAX,
        seq in any::<u32>(),
        ack in proptest::option::of(any::<u32>()),
        win in any::<u16>(),
        syn in any::<bool>(),
        payload in arb_payload(100),
    ) {
        let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(IP_A.octets(), IP_B.octets(), 64)
            .tcp(sp, dp, seq, win);
        if syn {
            b = b.syn();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let b = b.options(&opts).unwrap();
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).unwrap();

        // etherparse itself agrees it wrote what we think.
        let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(TransportSlice::Tcp(ts)) = sliced.transport else {
            panic!("etherparse did not slice TCP");
        };
        prop_assert_eq!(ts.payload(), &payload[..]);

        let (_, ip, seg) = berth_eth_ipv4(&frame);
        let p = TcpPacket::new_checked(seg).unwrap();
        let r = TcpRepr::parse(&p, &ip.src_addr, &ip.dst_addr).unwrap();
        prop_assert_eq!((r.src_port, r.dst_port), (sp, dp));
        prop_assert_eq!(r.seq_number, SeqNumber(seq));
        prop_assert_eq!(r.ack_number, SeqNumber(ack.unwrap_or(0)));
        prop_assert_eq!(r.flags.contains(TcpFlags::SYN), syn);
        prop_assert_eq!(r.flags.contains(TcpFlags::ACK), ack.is_some());
        prop_assert_eq!(r.window_len, win);
        prop_assert_eq!(r.payload, &payload[..]);
        prop_assert_eq!(berth_tcp_options(&r), expect);
    }

    /// etherparse-built UDP reads the same in berth.
    #[test]
    fn etherparse_udp_reads_same_in_berth(
        src in arb_ipv4_addr(),
        dst in arb_ipv4_addr(),
        ttl in any::<u8>(),
        sp in any::<u16>(),
        dp in 1..=u16::MAX,
        payload in arb_payload(600),
    ) {
        let b = PacketBuilder::ipv4(src.octets(), dst.octets(), ttl).udp(sp, dp);
        let mut pkt = Vec::new();
        b.write(&mut pkt, &payload).unwrap();
        let p = Ipv4Packet::new_checked(&pkt[..]).unwrap();
        let ip = Ipv4Repr::parse(&p).unwrap();
        prop_assert_eq!((ip.src_addr, ip.dst_addr, ip.ttl), (src, dst, ttl));
        let u = UdpRepr::parse(&UdpPacket::new_checked(p.payload()).unwrap(), &src, &dst).unwrap();
        prop_assert_eq!(u, UdpRepr { src_port: sp, dst_port: dp, payload: &payload });
    }
}
