//! Known-answer vectors: real frames captured from Linux, checked field by field.
//!
//! How they were obtained: `tests/data/capture_vectors.py`, run as root under
//! `unshare -n` on Linux 6.18. It makes two throwaway network namespaces joined by a
//! veth pair (A: 192.0.2.1, 02:00:00:00:00:01; B: 192.0.2.2, 02:00:00:00:00:02), turns
//! TX checksum offload off on both ends (so the kernel writes final TCP/UDP checksums
//! rather than CHECKSUM_PARTIAL seeds), and records every frame seen on A's veth with
//! an AF_PACKET socket: an ARP exchange, a UDP datagram to a closed port and the ICMP
//! port-unreachable it draws, an ICMP echo and its reply, a TCP handshake with one data
//! segment, and a SACK from the server. The same script re-checks every IPv4 and
//! transport checksum with its own RFC 1071 sum in Python (`struct`, no berth code).
//! Frames are as captured (no Ethernet padding: they were seen before the wire).
//!
//! The IPv6 frames (module `ipv6_captures` at the end) come from
//! `tests/data/capture_ipv6.sh`; how is told there.
//!
//! Each test parses with berth-wire, compares every field with the value read off the
//! capture by hand, then emits the parsed values and compares with the captured bytes.

use berth_wire::checksum;
use berth_wire::icmpv4::DstUnreachable;
use berth_wire::tcp::{TcpOption, TcpOptions};
use berth_wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr, SeqNumber, TcpFlags,
    TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const IP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// ARP request, kernel of namespace A: who has 192.0.2.2? tell 192.0.2.1.
#[rustfmt::skip]
const ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xc0, 0x00, 0x02, 0x02,
];

/// ARP reply, kernel of namespace B: 192.0.2.2 is at 02:00:00:00:00:02.
#[rustfmt::skip]
const ARP_REPLY: [u8; 42] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
];

/// UDP 192.0.2.1:40000 → 192.0.2.2:9 "berth" (Python socket, kernel-built headers).
#[rustfmt::skip]
const UDP_TO_CLOSED_PORT: [u8; 47] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x21, 0xbe, 0x33, 0x40, 0x00, 0x40, 0x11,
    0xf8, 0x94, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0x9c, 0x40,
    0x00, 0x09, 0x00, 0x0d, 0xa2, 0xac, 0x62, 0x65, 0x72, 0x74, 0x68,
];

/// ICMP destination unreachable (port), kernel of B, quoting the datagram above.
#[rustfmt::skip]
const ICMP_PORT_UNREACHABLE: [u8; 75] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0xc0, 0x00, 0x3d, 0x58, 0xb3, 0x00, 0x00, 0x40, 0x01,
    0x9d, 0x49, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x03, 0x03,
    0x81, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x21, 0xbe, 0x33,
    0x40, 0x00, 0x40, 0x11, 0xf8, 0x94, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00,
    0x02, 0x02, 0x9c, 0x40, 0x00, 0x09, 0x00, 0x0d, 0xa2, 0xac, 0x62, 0x65,
    0x72, 0x74, 0x68,
];

/// ICMP echo request, ident 0x1234 seq 1, 48 data bytes in the iputils style (an 8-byte
/// timestamp, then 0x10..=0x37). ICMP bytes from Python on a raw socket, IPv4 header by
/// the kernel.
#[rustfmt::skip]
const ICMP_ECHO_REQUEST: [u8; 90] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x4c, 0xc9, 0x02, 0x40, 0x00, 0x40, 0x01,
    0xed, 0xaa, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0x08, 0x00,
    0xe1, 0xea, 0x12, 0x34, 0x00, 0x01, 0x65, 0xf0, 0xa1, 0xb2, 0x00, 0x0c,
    0x3d, 0x5e, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
    0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31,
    0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
];

/// ICMP echo reply, kernel of B.
#[rustfmt::skip]
const ICMP_ECHO_REPLY: [u8; 90] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x4c, 0x58, 0xcf, 0x00, 0x00, 0x40, 0x01,
    0x9d, 0xde, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x00, 0x00,
    0xe9, 0xea, 0x12, 0x34, 0x00, 0x01, 0x65, 0xf0, 0xa1, 0xb2, 0x00, 0x0c,
    0x3d, 0x5e, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
    0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31,
    0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
];

/// Linux SYN: MSS 1460, SACK-permitted, timestamps, NOP, window scale 10.
#[rustfmt::skip]
const TCP_SYN: [u8; 74] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x3c, 0x88, 0x7f, 0x40, 0x00, 0x40, 0x06,
    0x2e, 0x39, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0xb8, 0xe2,
    0x1f, 0x90, 0xbe, 0xe4, 0x7a, 0xac, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
    0xfa, 0xf0, 0x42, 0x06, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
    0x08, 0x0a, 0xdc, 0xc7, 0x98, 0x36, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03,
    0x03, 0x0a,
];

/// Linux SYN-ACK with the same options (TSecr echoes the SYN's TSval).
#[rustfmt::skip]
const TCP_SYN_ACK: [u8; 74] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06,
    0xb6, 0xb8, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x1f, 0x90,
    0xb8, 0xe2, 0xac, 0x0b, 0x79, 0xd0, 0xbe, 0xe4, 0x7a, 0xad, 0xa0, 0x12,
    0xfe, 0x88, 0x36, 0xe9, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
    0x08, 0x0a, 0xcb, 0x55, 0x16, 0x42, 0xdc, 0xc7, 0x98, 0x36, 0x01, 0x03,
    0x03, 0x0a,
];

/// Third handshake segment: NOP NOP timestamps.
#[rustfmt::skip]
const TCP_ACK: [u8; 66] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x34, 0x88, 0x80, 0x40, 0x00, 0x40, 0x06,
    0x2e, 0x40, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0xb8, 0xe2,
    0x1f, 0x90, 0xbe, 0xe4, 0x7a, 0xad, 0xac, 0x0b, 0x79, 0xd1, 0x80, 0x10,
    0x00, 0x3f, 0x64, 0x02, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xdc, 0xc7,
    0x98, 0x36, 0xcb, 0x55, 0x16, 0x42,
];

/// Client data segment "hello".
#[rustfmt::skip]
const TCP_PSH_ACK_HELLO: [u8; 71] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x39, 0x88, 0x81, 0x40, 0x00, 0x40, 0x06,
    0x2e, 0x3a, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0xb8, 0xe2,
    0x1f, 0x90, 0xbe, 0xe4, 0x7a, 0xad, 0xac, 0x0b, 0x79, 0xd1, 0x80, 0x18,
    0x00, 0x3f, 0x20, 0x23, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xdc, 0xc7,
    0x98, 0x36, 0xcb, 0x55, 0x16, 0x42, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
];

/// Server ACK of "hello".
#[rustfmt::skip]
const TCP_ACK_FROM_SERVER: [u8; 66] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x34, 0x45, 0x44, 0x40, 0x00, 0x40, 0x06,
    0x71, 0x7c, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x1f, 0x90,
    0xb8, 0xe2, 0xac, 0x0b, 0x79, 0xd1, 0xbe, 0xe4, 0x7a, 0xb2, 0x80, 0x10,
    0x00, 0x40, 0x63, 0xfc, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xcb, 0x55,
    0x16, 0x42, 0xdc, 0xc7, 0x98, 0x36,
];

/// A segment 100 bytes past the client's snd_nxt, built in Python and sent on a raw
/// TCP socket (the IPv4 header is the kernel's) to make the server SACK it.
#[rustfmt::skip]
const TCP_OUT_OF_ORDER: [u8; 71] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x39, 0x3e, 0x54, 0x40, 0x00, 0x40, 0x06,
    0x78, 0x67, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0xb8, 0xe2,
    0x1f, 0x90, 0xbe, 0xe4, 0x7b, 0x16, 0xac, 0x0b, 0x79, 0xd1, 0x80, 0x18,
    0x00, 0x3f, 0x10, 0xc4, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xdc, 0xc7,
    0x98, 0x37, 0xcb, 0x55, 0x16, 0x42, 0x6c, 0x61, 0x74, 0x65, 0x72,
];

/// The server kernel's duplicate ACK: NOP NOP timestamps, NOP NOP SACK with one block.
#[rustfmt::skip]
const TCP_DUP_ACK_SACK: [u8; 78] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x40, 0x45, 0x45, 0x40, 0x00, 0x40, 0x06,
    0x71, 0x6f, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x1f, 0x90,
    0xb8, 0xe2, 0xac, 0x0b, 0x79, 0xd1, 0xbe, 0xe4, 0x7a, 0xb2, 0xb0, 0x10,
    0x00, 0x40, 0xb7, 0x8e, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xcb, 0x55,
    0x18, 0x9d, 0xdc, 0xc7, 0x98, 0x36, 0x01, 0x01, 0x05, 0x0a, 0xbe, 0xe4,
    0x7b, 0x16, 0xbe, 0xe4, 0x7b, 0x1b,
];

// ---------------------------------------------------------------------------------------

fn ethernet(frame: &[u8]) -> EthernetRepr {
    EthernetRepr::parse(&EthernetFrame::new_checked(frame).unwrap()).unwrap()
}

/// Parse Ethernet + IPv4, check the link header and the IPv4 header checksum; returns
/// the IPv4 value and its payload.
fn ipv4(frame: &[u8], from_a: bool) -> (Ipv4Repr, &[u8]) {
    let eth = ethernet(frame);
    let (src, dst) = if from_a {
        (MAC_A, MAC_B)
    } else {
        (MAC_B, MAC_A)
    };
    assert_eq!(eth.src_addr, src);
    assert_eq!(eth.dst_addr, dst);
    assert_eq!(eth.ethertype, EtherType::Ipv4);
    let p = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(p.verify_checksum());
    assert_eq!(checksum::checksum(&frame[14..34]), 0);
    let r = Ipv4Repr::parse(&p).unwrap();
    assert_eq!(
        p.total_len(),
        frame.len() - 14,
        "no link padding in these captures"
    );
    (r, &frame[14 + p.header_len()..14 + p.total_len()])
}

/// The IPv4 header berth would emit for `r`, compared with the captured one.
fn assert_ipv4_emits_same(r: &Ipv4Repr, frame: &[u8]) {
    let mut h = [0u8; 20];
    r.emit(&mut h);
    assert_eq!(&h[..], &frame[14..34]);
}

fn assert_frame_emits_same(frame: &[u8]) {
    let eth = ethernet(frame);
    let mut out = [0u8; 14];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &frame[..14]);
}

fn tcp(frame: &[u8], from_a: bool) -> (Ipv4Repr, TcpRepr<'_>) {
    let (ip, seg) = ipv4(frame, from_a);
    assert_eq!(ip.protocol, IpProtocol::TCP);
    let p = TcpPacket::new_checked(seg).unwrap();
    assert!(p.verify_checksum(&ip.src_addr, &ip.dst_addr));
    (ip, TcpRepr::parse(&p, &ip.src_addr, &ip.dst_addr).unwrap())
}

fn emit_tcp(ip: &Ipv4Repr, r: &TcpRepr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b, &ip.src_addr, &ip.dst_addr);
    b
}

fn options(frame: &[u8]) -> Vec<TcpOption<'_>> {
    let p = TcpPacket::new_checked(&frame[34..]).unwrap();
    let area = &frame[34 + 20..34 + p.header_len()];
    TcpOptions::new(area).map(|o| o.unwrap()).collect()
}

// ---------------------------------------------------------------------------------------
// ARP
// ---------------------------------------------------------------------------------------

#[test]
fn arp_request() {
    let eth = ethernet(&ARP_REQUEST);
    assert!(eth.dst_addr.is_broadcast());
    assert_eq!(eth.src_addr, MAC_A);
    assert_eq!(eth.ethertype, EtherType::Arp);
    let p = ArpPacket::new_checked(&ARP_REQUEST[14..]).unwrap();
    assert_eq!(p.hardware_type(), 1);
    assert_eq!(p.protocol_type(), 0x0800);
    assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
    let r = ArpRepr::parse(&p).unwrap();
    assert_eq!(
        r,
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: MAC_A,
            source_protocol_addr: IP_A,
            // Linux leaves the target hardware address zero in a request.
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: IP_B,
        }
    );
    let mut out = [0u8; 28];
    r.emit(&mut out);
    assert_eq!(&out[..], &ARP_REQUEST[14..]);
    assert_frame_emits_same(&ARP_REQUEST);
}

#[test]
fn arp_reply() {
    let eth = ethernet(&ARP_REPLY);
    assert_eq!((eth.src_addr, eth.dst_addr), (MAC_B, MAC_A));
    assert_eq!(eth.ethertype, EtherType::Arp);
    let r = ArpRepr::parse(&ArpPacket::new_checked(&ARP_REPLY[14..]).unwrap()).unwrap();
    assert_eq!(r.operation, ArpOperation::Reply);
    assert_eq!(r.source_hardware_addr, MAC_B);
    assert_eq!(r.source_protocol_addr, IP_B);
    assert_eq!(r.target_hardware_addr, MAC_A);
    assert_eq!(r.target_protocol_addr, IP_A);
    let mut out = [0u8; 28];
    r.emit(&mut out);
    assert_eq!(&out[..], &ARP_REPLY[14..]);
}

// ---------------------------------------------------------------------------------------
// UDP and ICMP
// ---------------------------------------------------------------------------------------

#[test]
fn udp_datagram() {
    let (ip, seg) = ipv4(&UDP_TO_CLOSED_PORT, true);
    assert_eq!(
        ip,
        Ipv4Repr {
            src_addr: IP_A,
            dst_addr: IP_B,
            protocol: IpProtocol::UDP,
            payload_len: 13,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0xbe33,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    );
    assert_eq!(
        &UDP_TO_CLOSED_PORT[24..26],
        &[0xf8, 0x94],
        "IPv4 checksum as captured"
    );
    assert_ipv4_emits_same(&ip, &UDP_TO_CLOSED_PORT);

    let p = UdpPacket::new_checked(seg).unwrap();
    assert_eq!(p.checksum(), 0xa2ac);
    assert_eq!(p.len(), 13);
    let r = UdpRepr::parse(&p, &IP_A, &IP_B).unwrap();
    assert_eq!(
        r,
        UdpRepr {
            src_port: 40000,
            dst_port: 9,
            payload: b"berth",
        }
    );
    let mut out = [0u8; 13];
    r.emit(&mut out, &IP_A, &IP_B);
    assert_eq!(&out[..], seg, "same bytes, same checksum 0xa2ac");
    assert_eq!(checksum::transport_v4(&IP_A, &IP_B, 17, seg), 0);
}

#[test]
fn icmp_port_unreachable() {
    let (ip, msg) = ipv4(&ICMP_PORT_UNREACHABLE, false);
    assert_eq!(ip.protocol, IpProtocol::ICMP);
    assert_eq!((ip.src_addr, ip.dst_addr), (IP_B, IP_A));
    // Linux sends ICMP errors with DSCP CS6 (TOS 0xc0), without DF.
    assert_eq!(ip.dscp_ecn, 0xc0);
    assert!(!ip.dont_frag);
    assert_eq!(ip.ident, 0x58b3);
    assert_eq!(ip.ttl, 64);
    assert_eq!(ip.payload_len, 41);
    assert_ipv4_emits_same(&ip, &ICMP_PORT_UNREACHABLE);

    let p = Icmpv4Packet::new_checked(msg).unwrap();
    assert_eq!((p.msg_type(), p.msg_code(), p.checksum()), (3, 3, 0x811f));
    let r = Icmpv4Repr::parse(&p).unwrap();
    let Icmpv4Repr::DstUnreachable {
        reason,
        header,
        data,
    } = r
    else {
        panic!("not an unreachable: {r:?}");
    };
    assert_eq!(reason, DstUnreachable::PortUnreachable);
    // The quote is the whole original datagram: its IPv4 header and all 13 UDP bytes.
    let (orig, orig_seg) = ipv4(&UDP_TO_CLOSED_PORT, true);
    assert_eq!(header, orig);
    assert_eq!(data, orig_seg);
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut out);
    assert_eq!(&out[..], msg);
}

#[test]
fn icmp_echo_request_and_reply() {
    let payload: Vec<u8> = [0x65, 0xf0, 0xa1, 0xb2, 0x00, 0x0c, 0x3d, 0x5e]
        .into_iter()
        .chain(0x10..0x38)
        .collect();
    for (frame, from_a, ident, df, csum) in [
        (&ICMP_ECHO_REQUEST, true, 0xc902, true, 0xe1ea),
        (&ICMP_ECHO_REPLY, false, 0x58cf, false, 0xe9ea),
    ] {
        let (ip, msg) = ipv4(frame, from_a);
        assert_eq!(ip.protocol, IpProtocol::ICMP);
        assert_eq!(
            (ip.ident, ip.dont_frag, ip.ttl, ip.payload_len),
            (ident, df, 64, 56)
        );
        assert_ipv4_emits_same(&ip, frame);
        let p = Icmpv4Packet::new_checked(msg).unwrap();
        assert_eq!(p.checksum(), csum);
        let r = Icmpv4Repr::parse(&p).unwrap();
        let expect = if from_a {
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: &payload,
            }
        } else {
            Icmpv4Repr::EchoReply {
                ident: 0x1234,
                seq_no: 1,
                data: &payload,
            }
        };
        assert_eq!(r, expect);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        assert_eq!(&out[..], msg);
    }
}

// ---------------------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------------------

#[test]
fn tcp_linux_syn() {
    let (ip, r) = tcp(&TCP_SYN, true);
    assert_eq!((ip.ident, ip.dont_frag, ip.payload_len), (0x887f, true, 40));
    assert_ipv4_emits_same(&ip, &TCP_SYN);
    // Options exactly as Linux orders them: MSS, SACK-permitted, TS, NOP, WS.
    assert_eq!(
        options(&TCP_SYN),
        vec![
            TcpOption::MaxSegmentSize(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp(0xdcc7_9836, 0),
            TcpOption::NoOperation,
            TcpOption::WindowScale(10),
        ]
    );
    let mut expect = TcpRepr::new(47330, 8080, SeqNumber(0xbee4_7aac), TcpFlags::SYN);
    expect.window_len = 64240;
    expect.max_seg_size = Some(1460);
    expect.sack_permitted = true;
    expect.timestamp = Some((0xdcc7_9836, 0));
    expect.window_scale = Some(10);
    assert_eq!(r, expect);
    assert_eq!(r.segment_len(), 1);
    assert_eq!(
        TcpPacket::new_checked(&TCP_SYN[34..]).unwrap().checksum(),
        0x4206
    );

    // berth writes Linux's option layout and order: the whole segment is the
    // same, byte for byte.
    let out = emit_tcp(&ip, &r);
    assert_eq!(out.len(), 40);
    assert_eq!(&out[..], &TCP_SYN[34..74]);
    let p = TcpPacket::new_checked(&out[..]).unwrap();
    assert_eq!(TcpRepr::parse(&p, &IP_A, &IP_B).unwrap(), r);
}

#[test]
fn tcp_linux_syn_ack() {
    let (ip, r) = tcp(&TCP_SYN_ACK, false);
    // Linux sends the SYN-ACK with IP ident 0 and DF.
    assert_eq!((ip.ident, ip.dont_frag), (0, true));
    assert_ipv4_emits_same(&ip, &TCP_SYN_ACK);
    let mut expect = TcpRepr::new(8080, 47330, SeqNumber(0xac0b_79d0), TcpFlags::SYN);
    expect.flags.insert(TcpFlags::ACK);
    expect.ack_number = SeqNumber(0xbee4_7aad);
    expect.window_len = 65160;
    expect.max_seg_size = Some(1460);
    expect.sack_permitted = true;
    expect.timestamp = Some((0xcb55_1642, 0xdcc7_9836));
    expect.window_scale = Some(10);
    assert_eq!(r, expect);
    // The SYN-ACK acknowledges the SYN's one sequence number and echoes its TSval.
    let (_, syn) = tcp(&TCP_SYN, true);
    assert_eq!(r.ack_number, syn.seq_number + syn.segment_len());
    assert_eq!(r.timestamp.unwrap().1, syn.timestamp.unwrap().0);
}

/// A captured established-state segment and the values read off it by hand.
struct Established {
    frame: &'static [u8],
    from_a: bool,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    win: u16,
    tsval: u32,
    tsecr: u32,
    payload: &'static [u8],
    csum: u16,
}

#[test]
fn tcp_established_segments_emit_byte_identical() {
    let cases = [
        Established {
            frame: &TCP_ACK[..],
            from_a: true,
            seq: 0xbee4_7aad,
            ack: 0xac0b_79d1,
            flags: TcpFlags::ACK,
            win: 63,
            tsval: 0xdcc7_9836,
            tsecr: 0xcb55_1642,
            payload: b"",
            csum: 0x6402,
        },
        Established {
            frame: &TCP_PSH_ACK_HELLO[..],
            from_a: true,
            seq: 0xbee4_7aad,
            ack: 0xac0b_79d1,
            flags: TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0),
            win: 63,
            tsval: 0xdcc7_9836,
            tsecr: 0xcb55_1642,
            payload: b"hello",
            csum: 0x2023,
        },
        Established {
            frame: &TCP_ACK_FROM_SERVER[..],
            from_a: false,
            seq: 0xac0b_79d1,
            ack: 0xbee4_7ab2,
            flags: TcpFlags::ACK,
            win: 64,
            tsval: 0xcb55_1642,
            tsecr: 0xdcc7_9836,
            payload: b"",
            csum: 0x63fc,
        },
        Established {
            frame: &TCP_OUT_OF_ORDER[..],
            from_a: true,
            seq: 0xbee4_7b16,
            ack: 0xac0b_79d1,
            flags: TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0),
            win: 63,
            tsval: 0xdcc7_9837,
            tsecr: 0xcb55_1642,
            payload: b"later",
            csum: 0x10c4,
        },
    ];
    for c in cases {
        let Established {
            frame,
            from_a,
            seq,
            ack,
            flags,
            win,
            tsval,
            tsecr,
            payload,
            csum,
        } = c;
        let (ip, r) = tcp(frame, from_a);
        assert_ipv4_emits_same(&ip, frame);
        assert_eq!(
            options(frame),
            vec![
                TcpOption::NoOperation,
                TcpOption::NoOperation,
                TcpOption::Timestamp(tsval, tsecr)
            ]
        );
        let (sp, dp) = if from_a { (47330, 8080) } else { (8080, 47330) };
        let mut expect = TcpRepr::new(sp, dp, SeqNumber(seq), flags);
        expect.ack_number = SeqNumber(ack);
        expect.window_len = win;
        expect.timestamp = Some((tsval, tsecr));
        expect.payload = payload;
        assert_eq!(r, expect);
        assert_eq!(
            TcpPacket::new_checked(&frame[34..]).unwrap().checksum(),
            csum
        );
        assert_eq!(
            emit_tcp(&ip, &r),
            &frame[34..],
            "NOP NOP TS is Linux's layout too"
        );
    }
}

#[test]
fn tcp_linux_sack() {
    let (ip, r) = tcp(&TCP_DUP_ACK_SACK, false);
    assert_eq!(ip.payload_len, 44);
    assert_ipv4_emits_same(&ip, &TCP_DUP_ACK_SACK);
    assert_eq!(
        options(&TCP_DUP_ACK_SACK),
        vec![
            TcpOption::NoOperation,
            TcpOption::NoOperation,
            TcpOption::Timestamp(0xcb55_189d, 0xdcc7_9836),
            TcpOption::NoOperation,
            TcpOption::NoOperation,
            TcpOption::SackRange([
                Some((SeqNumber(0xbee4_7b16), SeqNumber(0xbee4_7b1b))),
                None,
                None,
                None
            ]),
        ]
    );
    let mut expect = TcpRepr::new(8080, 47330, SeqNumber(0xac0b_79d1), TcpFlags::ACK);
    expect.ack_number = SeqNumber(0xbee4_7ab2);
    expect.window_len = 64;
    expect.timestamp = Some((0xcb55_189d, 0xdcc7_9836));
    expect.sack_ranges[0] = Some((SeqNumber(0xbee4_7b16), SeqNumber(0xbee4_7b1b)));
    assert_eq!(r, expect);
    // The SACK block covers exactly the out-of-order segment; the cumulative ACK did
    // not move past "hello".
    let (_, ooo) = tcp(&TCP_OUT_OF_ORDER, true);
    assert_eq!(
        r.sack_ranges[0],
        Some((ooo.seq_number, ooo.seq_number + ooo.payload.len()))
    );
    let (_, hello) = tcp(&TCP_PSH_ACK_HELLO, true);
    assert_eq!(r.ack_number, hello.seq_number + hello.payload.len());
    assert_eq!(
        TcpPacket::new_checked(&TCP_DUP_ACK_SACK[34..])
            .unwrap()
            .checksum(),
        0xb78e
    );
    assert_eq!(emit_tcp(&ip, &r), &TCP_DUP_ACK_SACK[34..]);
}

/// Every captured frame parses through the whole stack and re-checks with the plain
/// RFC 1071 reference sum, not only the wide one.
#[test]
fn all_vectors_reference_checksums() {
    for frame in [
        &UDP_TO_CLOSED_PORT[..],
        &ICMP_PORT_UNREACHABLE,
        &ICMP_ECHO_REQUEST,
        &ICMP_ECHO_REPLY,
        &TCP_SYN,
        &TCP_SYN_ACK,
        &TCP_ACK,
        &TCP_PSH_ACK_HELLO,
        &TCP_ACK_FROM_SERVER,
        &TCP_OUT_OF_ORDER,
        &TCP_DUP_ACK_SACK,
    ] {
        let ip = &frame[14..];
        assert_eq!(checksum::reference_sum(&ip[..20]), 0xffff);
        let seg = &ip[20..];
        let transport = match ip[9] {
            1 => checksum::reference_sum(seg),
            proto => {
                let ph = checksum::pseudo_header_v4(
                    &Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
                    &Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
                    proto,
                    seg.len() as u32,
                );
                checksum::combine(ph, checksum::reference_sum(seg))
            }
        };
        assert_eq!(transport, 0xffff, "{:02x?}", &frame[..40]);
    }
}

// ---------------------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------------------

/// IPv6 frames captured from Linux 6.18 by `tests/data/capture_ipv6.sh` (run as root):
/// two throwaway namespaces, w6test (veth0, 02:00:00:00:00:01, 2001:db8::1/64) and
/// w6test-b (veth1, 02:00:00:00:00:02, 2001:db8::2/64), TX checksum offload off on both
/// ends, tshark on veth1 from before veth0 came up. Kernel-built except where a comment
/// says a user program made the payload. Link-local addresses are the kernel's EUI-64
/// ones (fe80::ff:fe00:1 and fe80::ff:fe00:2). The namespaces were deleted afterwards.
/// Every frame is parsed and checked field by field against values read off tshark's
/// decode, then emitted again and compared byte for byte with the capture.
mod ipv6_captures {
    use super::{MAC_A, MAC_B};
    use berth_wire::icmpv6::{msg_type, Icmpv6DstUnreachable};
    use berth_wire::ipv6::{
        eui64_interface_id, link_local, multicast_mac, solicited_node, walk_ext_headers,
    };
    use berth_wire::ndp::HOP_LIMIT;
    use berth_wire::tcp::{TcpOption, TcpOptions};
    use berth_wire::{
        EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv6Packet, Icmpv6Repr,
        IpProtocol, Ipv6Addr, Ipv6ExtHeaders, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr, NdpOption,
        NdpRepr, SeqNumber, TcpFlags, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
    };

    const IP6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const IP6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// MLDv2 report from :: to ff02::16 (w6test-b while its addresses were tentative):
    /// hop-by-hop header with Router Alert 0 and PadN, then ICMPv6 type 143.
    /// Frame 1 of the capture, 90 bytes.
    const MLD_REPORT: &str = concat!(
        "33330000001602000000000286dd600000000024000100000000000000000000000000000000ff0200000000",
        "000000000000000000163a000502000001008f006f880000000104000000ff0200000000000000000001ff00",
        "0002",
    );

    /// Duplicate address detection (w6test-b): neighbor solicitation from :: to the
    /// solicited-node address of 2001:db8::2, hop limit 255, with a nonce option (type 14,
    /// RFC 7527) and no source link-layer address.
    /// Frame 3 of the capture, 86 bytes.
    const DAD_NS: &str = concat!(
        "3333ff00000202000000000286dd6000000000203aff00000000000000000000000000000000ff0200000000",
        "000000000001ff00000287007d350000000020010db80000000000000000000000020e0113603a9573b7",
    );

    /// Router solicitation from fe80::ff:fe00:2 to ff02::2 with a source link-layer option.
    /// Frame 10 of the capture, 70 bytes.
    const ROUTER_SOLICIT: &str = concat!(
        "33330000000202000000000286dd6000000000103afffe80000000000000000000fffe000002ff0200000000",
        "0000000000000000000285007b2a000000000101020000000002",
    );

    /// Neighbor solicitation from 2001:db8::1 for 2001:db8::2 (before the first echo),
    /// to its solicited-node address, with a source link-layer option.
    /// Frame 15 of the capture, 86 bytes.
    const NEIGHBOR_SOLICIT: &str = concat!(
        "3333ff00000202000000000186dd6000000000203aff20010db8000000000000000000000001ff0200000000",
        "000000000001ff00000287001c270000000020010db80000000000000000000000020101020000000001",
    );

    /// Neighbor advertisement from 2001:db8::2: solicited and override, target link-layer
    /// option.
    /// Frame 16 of the capture, 86 bytes.
    const NEIGHBOR_ADVERT: &str = concat!(
        "02000000000102000000000286dd6000000000203aff20010db800000000000000000000000220010db80000",
        "0000000000000000000188008a716000000020010db80000000000000000000000020201020000000002",
    );

    /// `ping -6 -c 1 -p 6265727468` ("berth"): echo request, 56 data bytes (a 16-byte
    /// timestamp, then the pattern).
    /// Frame 17 of the capture, 118 bytes.
    const ECHO_REQUEST: &str = concat!(
        "02000000000202000000000186dd600e6ff100403a4020010db800000000000000000000000120010db80000",
        "000000000000000000028000b883674400018f350e6b00000000094a01000000000065727468626572746862",
        "657274686265727468626572746862657274686265727468626572746862",
    );

    /// The echo reply from w6test-b.
    /// Frame 18 of the capture, 118 bytes.
    const ECHO_REPLY: &str = concat!(
        "02000000000102000000000286dd60040c8300403a4020010db800000000000000000000000220010db80000",
        "000000000000000000018100b783674400018f350e6b00000000094a01000000000065727468626572746862",
        "657274686265727468626572746862657274686265727468626572746862",
    );

    /// UDP [2001:db8::1]:40000 → [2001:db8::2]:9 "berth" (Python socket).
    /// Frame 19 of the capture, 67 bytes.
    const UDP_DATAGRAM: &str = concat!(
        "02000000000202000000000186dd600048ad000d114020010db800000000000000000000000120010db80000",
        "000000000000000000029c400009000dcb3b6265727468",
    );

    /// ICMPv6 destination unreachable (port), quoting the datagram above whole.
    /// Frame 20 of the capture, 115 bytes.
    const PORT_UNREACHABLE: &str = concat!(
        "02000000000102000000000286dd6006c72b003d3a4020010db800000000000000000000000220010db80000",
        "000000000000000000010104e93200000000600048ad000d114020010db80000000000000000000000012001",
        "0db80000000000000000000000029c400009000dcb3b6265727468",
    );

    /// TCP SYN [2001:db8::1]:40001 → [2001:db8::2]:8080: MSS 1440, SACK-permitted,
    /// timestamps, NOP, window scale 10.
    /// Frame 21 of the capture, 94 bytes.
    const TCP_SYN: &str = concat!(
        "02000000000202000000000186dd600c64c00028064020010db800000000000000000000000120010db80000",
        "000000000000000000029c411f908e242fef00000000a002fd20257e0000020405a00402080a8f3ec0d90000",
        "00000103030a",
    );

    /// The listener's SYN-ACK.
    /// Frame 22 of the capture, 94 bytes.
    const TCP_SYN_ACK: &str = concat!(
        "02000000000102000000000286dd6003818b0028064020010db800000000000000000000000220010db80000",
        "000000000000000000011f909c41604d94f58e242ff0a012fb04d3130000020405a00402080ac3b89b798f3e",
        "c0d90103030a",
    );

    /// `ping -6 -c 1 -s 3000`: the echo request in three fragments (ident 0x2f21200d).
    /// First: offset 0, M=1, 1448 bytes of the ICMPv6 message.
    /// Frame 28 of the capture, 1510 bytes.
    const FRAG_FIRST: &str = concat!(
        "02000000000202000000000186dd600e6ff105b02c4020010db800000000000000000000000120010db80000",
        "000000000000000000023a0000012f21200d800046b26847000191350e6b00000000e5460500000000001011",
        "12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d",
        "3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869",
        "6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495",
        "969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1",
        "c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebeced",
        "eeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819",
        "1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445",
        "464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071",
        "72737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d",
        "9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9",
        "cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5",
        "f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021",
        "22232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d",
        "4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879",
        "7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5",
        "a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1",
        "d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfd",
        "feff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",
        "2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455",
        "565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081",
        "82838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacad",
        "aeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9",
        "dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405",
        "060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031",
        "32333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d",
        "5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889",
        "8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5",
        "b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1",
        "e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d",
        "0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839",
        "3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465",
        "666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091",
        "92939495969798999a9b9c9d9e9f",
    );

    /// Second fragment: offset 1448, M=1.
    /// Frame 29 of the capture, 1510 bytes.
    const FRAG_SECOND: &str = concat!(
        "02000000000202000000000186dd600e6ff105b02c4020010db800000000000000000000000120010db80000",
        "000000000000000000023a0005a92f21200da0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9",
        "babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5",
        "e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011",
        "12131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d",
        "3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263646566676869",
        "6a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495",
        "969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1",
        "c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebeced",
        "eeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819",
        "1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445",
        "464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071",
        "72737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d",
        "9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9",
        "cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5",
        "f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021",
        "22232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d",
        "4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879",
        "7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5",
        "a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1",
        "d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfd",
        "feff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",
        "2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455",
        "565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081",
        "82838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacad",
        "aeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9",
        "dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405",
        "060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031",
        "32333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d",
        "5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889",
        "8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5",
        "b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1",
        "e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d",
        "0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839",
        "3a3b3c3d3e3f4041424344454647",
    );

    /// Last fragment: offset 2896, M=0, 112 bytes.
    /// Frame 30 of the capture, 174 bytes.
    const FRAG_LAST: &str = concat!(
        "02000000000202000000000186dd600e6ff100782c4020010db800000000000000000000000120010db80000",
        "000000000000000000023a000b502f21200d48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f6061",
        "62636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d",
        "8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7",
    );

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    struct Parsed {
        eth: EthernetRepr,
        ip: Ipv6Repr,
        ext: Ipv6ExtHeaders,
    }

    /// Parse Ethernet and IPv6 and walk the extension headers; check that berth emits
    /// the same link and fixed IPv6 headers.
    fn parse(frame: &[u8]) -> Parsed {
        let eth = EthernetRepr::parse(&EthernetFrame::new_checked(frame).unwrap()).unwrap();
        assert_eq!(eth.ethertype, EtherType::Ipv6);
        let mut out = [0u8; 14];
        eth.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &frame[..14]);
        let p = Ipv6Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(p.packet().len(), frame.len() - 14, "no link padding");
        let ip = Ipv6Repr::parse(&p).unwrap();
        let mut h = [0u8; 40];
        ip.emit(&mut h);
        assert_eq!(&h[..], &frame[14..54]);
        let ext = p.ext_headers().unwrap();
        // RFC 2464 §7: multicast goes to 33:33 and the low 32 bits.
        if ip.dst_addr.is_multicast() {
            assert_eq!(Some(eth.dst_addr), multicast_mac(&ip.dst_addr));
        }
        Parsed { eth, ip, ext }
    }

    /// The upper-layer bytes of a parsed frame.
    fn upper<'a>(frame: &'a [u8], p: &Parsed) -> &'a [u8] {
        &frame[14 + p.ext.payload_offset..]
    }

    fn icmp<'a>(frame: &'a [u8], p: &Parsed) -> Icmpv6Repr<'a> {
        assert_eq!(p.ext.upper_layer, IpProtocol::ICMPV6);
        let b = upper(frame, p);
        let pkt = Icmpv6Packet::new_checked(b).unwrap();
        assert!(pkt.verify_checksum(&p.ip.src_addr, &p.ip.dst_addr));
        let r = Icmpv6Repr::parse(&pkt, &p.ip.src_addr, &p.ip.dst_addr).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, &p.ip.src_addr, &p.ip.dst_addr);
        assert_eq!(&out[..], b, "ICMPv6 emits byte-identical");
        r
    }

    fn ndp<'a>(frame: &'a [u8], p: &Parsed) -> NdpRepr<'a> {
        assert_eq!(p.ip.hop_limit, HOP_LIMIT);
        let Icmpv6Repr::Ndp(n) = icmp(frame, p) else {
            panic!("not NDP")
        };
        assert_eq!(
            n.check_ip(&p.ip.src_addr, &p.ip.dst_addr, p.ip.hop_limit),
            Ok(())
        );
        n
    }

    #[test]
    fn mld_report_with_hop_by_hop_router_alert() {
        let f = hex(MLD_REPORT);
        let p = parse(&f);
        assert_eq!(p.eth.src_addr, MAC_B);
        assert_eq!(p.ip.src_addr, Ipv6Addr::UNSPECIFIED);
        assert_eq!(p.ip.dst_addr, "ff02::16".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            (p.ip.next_header, p.ip.hop_limit, p.ip.payload_len),
            (IpProtocol::HOPOPT, 1, 36)
        );
        assert_eq!(p.ext.count, 1);
        assert_eq!(p.ext.router_alert, Some(0));
        assert_eq!((p.ext.payload_offset, p.ext.upper_layer_pointer), (48, 40));
        assert_eq!(p.ext.fragment, None);
        // MLDv2 (type 143) is informational and not berth's: a value, not an error.
        match icmp(&f, &p) {
            Icmpv6Repr::UnknownInformational {
                msg_type,
                code,
                body,
            } => {
                assert_eq!((msg_type, code, body.len()), (143, 0, 24));
            }
            other => panic!("{other:?}"),
        }
        let u = p.ip.upper_layer(&p.ext);
        assert_eq!((u.next_header, u.payload_len), (IpProtocol::ICMPV6, 28));
    }

    #[test]
    fn duplicate_address_detection() {
        let f = hex(DAD_NS);
        let p = parse(&f);
        assert_eq!(p.ip.src_addr, Ipv6Addr::UNSPECIFIED);
        assert_eq!(p.ip.dst_addr, solicited_node(&IP6_B));
        assert_eq!(p.ext.count, 0);
        let n = ndp(&f, &p);
        let NdpRepr::NeighborSolicit { target_addr, .. } = n else {
            panic!("{n:?}")
        };
        assert_eq!(target_addr, IP6_B);
        assert_eq!(n.source_lladdr(), None);
        let opts: Vec<_> = n.options().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            vec![NdpOption::Unknown {
                option_type: 14,
                data: &[0x13, 0x60, 0x3a, 0x95, 0x73, 0xb7]
            }]
        );
    }

    #[test]
    fn router_solicitation() {
        let f = hex(ROUTER_SOLICIT);
        let p = parse(&f);
        // Linux derived its link-local address from the MAC as RFC 4291 App. A says.
        assert_eq!(p.ip.src_addr, link_local(eui64_interface_id(MAC_B)));
        assert_eq!(p.ip.dst_addr, "ff02::2".parse::<Ipv6Addr>().unwrap());
        let n = ndp(&f, &p);
        assert!(matches!(n, NdpRepr::RouterSolicit { .. }));
        assert_eq!(n.source_lladdr(), Some(MAC_B));
    }

    #[test]
    fn neighbor_solicitation_and_advertisement() {
        let f = hex(NEIGHBOR_SOLICIT);
        let p = parse(&f);
        assert_eq!((p.eth.src_addr, p.ip.src_addr), (MAC_A, IP6_A));
        assert_eq!(p.ip.dst_addr, solicited_node(&IP6_B));
        assert_eq!(p.eth.dst_addr, EthernetAddress([0x33, 0x33, 0xff, 0, 0, 2]));
        let n = ndp(&f, &p);
        assert!(matches!(n, NdpRepr::NeighborSolicit { target_addr, .. } if target_addr == IP6_B));
        assert_eq!(n.source_lladdr(), Some(MAC_A));

        let f = hex(NEIGHBOR_ADVERT);
        let p = parse(&f);
        assert_eq!((p.eth.src_addr, p.eth.dst_addr), (MAC_B, MAC_A));
        assert_eq!((p.ip.src_addr, p.ip.dst_addr), (IP6_B, IP6_A));
        let n = ndp(&f, &p);
        let mut tl = [0u8; 8];
        NdpOption::TargetLinkLayerAddr(MAC_B).emit(&mut tl);
        assert_eq!(
            n,
            NdpRepr::NeighborAdvert {
                router_flag: false,
                solicited_flag: true,
                override_flag: true,
                target_addr: IP6_B,
                options: &tl,
            }
        );
        assert_eq!(n.target_lladdr(), Some(MAC_B));
    }

    #[test]
    fn echo_request_and_reply() {
        let f = hex(ECHO_REQUEST);
        let p = parse(&f);
        assert_eq!((p.ip.src_addr, p.ip.dst_addr), (IP6_A, IP6_B));
        assert_eq!(
            (p.ip.flow_label, p.ip.traffic_class, p.ip.hop_limit),
            (0xe6ff1, 0, 64)
        );
        assert_eq!(
            (p.ip.next_header, p.ip.payload_len),
            (IpProtocol::ICMPV6, 64)
        );
        let Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = icmp(&f, &p)
        else {
            panic!()
        };
        assert_eq!((ident, seq_no, data.len()), (0x6744, 1, 56));
        // After the 16-byte timestamp, the pattern (as the capture shows it).
        assert_eq!(&data[16..30], b"erthberthberth");

        let f = hex(ECHO_REPLY);
        let p = parse(&f);
        assert_eq!(
            (p.ip.src_addr, p.ip.dst_addr, p.ip.flow_label),
            (IP6_B, IP6_A, 0x40c83)
        );
        let Icmpv6Repr::EchoReply {
            ident,
            seq_no,
            data: reply,
        } = icmp(&f, &p)
        else {
            panic!()
        };
        assert_eq!((ident, seq_no), (0x6744, 1));
        assert_eq!(reply, data);
    }

    #[test]
    fn udp_and_port_unreachable() {
        let f = hex(UDP_DATAGRAM);
        let p = parse(&f);
        assert_eq!(p.ext.upper_layer, IpProtocol::UDP);
        let seg = upper(&f, &p);
        let u = UdpPacket::new_checked(seg).unwrap();
        assert!(u.verify_checksum(&p.ip.src_addr, &p.ip.dst_addr));
        let r = UdpRepr::parse(&u, &p.ip.src_addr, &p.ip.dst_addr).unwrap();
        assert_eq!(
            (r.src_port, r.dst_port, r.payload),
            (40000, 9, &b"berth"[..])
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, &p.ip.src_addr, &p.ip.dst_addr);
        assert_eq!(&out[..], seg);
        let udp_ip = p.ip;

        let f = hex(PORT_UNREACHABLE);
        let p = parse(&f);
        assert_eq!((p.ip.src_addr, p.ip.dst_addr), (IP6_B, IP6_A));
        match icmp(&f, &p) {
            Icmpv6Repr::DstUnreachable {
                reason,
                header,
                data,
            } => {
                assert_eq!(reason, Icmpv6DstUnreachable::PortUnreachable);
                assert_eq!(header, udp_ip);
                assert_eq!(data, seg);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f[54], msg_type::DST_UNREACHABLE);
    }

    fn tcp<'a>(frame: &'a [u8], p: &Parsed) -> TcpRepr<'a> {
        assert_eq!(p.ext.upper_layer, IpProtocol::TCP);
        let seg = upper(frame, p);
        let t = TcpPacket::new_checked(seg).unwrap();
        assert!(t.verify_checksum(&p.ip.src_addr, &p.ip.dst_addr));
        let r = TcpRepr::parse(&t, &p.ip.src_addr, &p.ip.dst_addr).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, &p.ip.src_addr, &p.ip.dst_addr);
        assert_eq!(&out[..], seg, "TCP over IPv6 emits byte-identical");
        r
    }

    #[test]
    fn tcp_syn_and_syn_ack() {
        let f = hex(TCP_SYN);
        let p = parse(&f);
        let r = tcp(&f, &p);
        let mut expect = TcpRepr::new(40001, 8080, SeqNumber(0x8e24_2fef), TcpFlags::SYN);
        expect.window_len = 64800;
        expect.max_seg_size = Some(1440);
        expect.sack_permitted = true;
        expect.timestamp = Some((0x8f3e_c0d9, 0));
        expect.window_scale = Some(10);
        assert_eq!(r, expect);
        let opts: Vec<_> = TcpOptions::new(&upper(&f, &p)[20..40])
            .map(|o| o.unwrap())
            .collect();
        assert_eq!(opts[0], TcpOption::MaxSegmentSize(1440));

        let f = hex(TCP_SYN_ACK);
        let p = parse(&f);
        let r = tcp(&f, &p);
        assert_eq!(r.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(r.ack_number, SeqNumber(0x8e24_2ff0));
        assert_eq!((r.window_len, r.max_seg_size), (64260, Some(1440)));
    }

    #[test]
    fn fragmented_echo_request() {
        let frames = [hex(FRAG_FIRST), hex(FRAG_SECOND), hex(FRAG_LAST)];
        let mut message = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let p = parse(f);
            assert_eq!((p.ip.src_addr, p.ip.dst_addr), (IP6_A, IP6_B));
            assert_eq!(p.ip.next_header, IpProtocol::IPV6_FRAG);
            let (at, frag) = p.ext.fragment.unwrap();
            assert_eq!(at, 40);
            assert_eq!(
                frag,
                Ipv6FragmentRepr {
                    next_header: IpProtocol::ICMPV6,
                    frag_offset: [0, 1448, 2896][i],
                    more_frags: i < 2,
                    ident: 0x2f21_200d,
                }
            );
            assert!(!frag.is_atomic());
            // The walk stops at a fragment: its data is a piece of the message.
            assert_eq!(
                (p.ext.upper_layer, p.ext.payload_offset),
                (IpProtocol::ICMPV6, 48)
            );
            let mut h = [0u8; 8];
            frag.emit(&mut h);
            assert_eq!(&h[..], &f[54..62]);
            assert_eq!(frag.frag_offset as usize, message.len());
            message.extend_from_slice(upper(f, &p));
            // The walker over the payload alone gives the same answer.
            assert_eq!(walk_ext_headers(IpProtocol::IPV6_FRAG, &f[54..]), Ok(p.ext));
        }
        // Reassembled, the message is a whole echo request whose checksum verifies.
        assert_eq!(message.len(), 3008);
        let pkt = Icmpv6Packet::new_checked(&message[..]).unwrap();
        match Icmpv6Repr::parse(&pkt, &IP6_A, &IP6_B).unwrap() {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                assert_eq!((ident, seq_no, data.len()), (0x6847, 1, 3000));
                // iputils fills after the 16-byte timestamp with 0x10, 0x11, ...
                assert!(data[16..]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == (0x10 + i) as u8));
            }
            other => panic!("{other:?}"),
        }
    }

    /// The captures, damaged: each damage is refused with the error it calls for.
    #[test]
    fn damaged_captures_are_refused() {
        use berth_wire::Error;
        let f = hex(NEIGHBOR_SOLICIT);
        // Cut anywhere: the fixed header or the payload it announces is missing.
        for n in 14..f.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&f[14..n]).unwrap_err(),
                Error::Truncated
            );
        }
        // Payload length one more than the buffer holds.
        let mut g = f.clone();
        g[19] += 1;
        assert_eq!(
            Ipv6Packet::new_checked(&g[14..]).unwrap_err(),
            Error::Truncated
        );
        // NDP option length 0 (RFC 4861 §4.6), checksum made right again.
        let mut g = f.clone();
        g[14 + 40 + 25] = 0;
        let mut msg = g[54..].to_vec();
        Icmpv6Packet::new_unchecked(&mut msg[..]).fill_checksum(&IP6_A, &solicited_node(&IP6_B));
        let pkt = Icmpv6Packet::new_checked(&msg[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&pkt, &IP6_A, &solicited_node(&IP6_B)),
            Err(Error::BadOption)
        );
        // The same message with a hop limit a router would have decremented.
        let p = parse(&f);
        let Icmpv6Repr::Ndp(n) = icmp(&f, &p) else {
            panic!()
        };
        assert_eq!(
            n.check_ip(&p.ip.src_addr, &p.ip.dst_addr, 254),
            Err(Error::Malformed)
        );
        // The MLD report's hop-by-hop header, said to be 40 bytes long: runs past
        // the 36-byte payload.
        let mut g = hex(MLD_REPORT);
        g[55] = 4;
        let pkt = Ipv6Packet::new_checked(&g[14..]).unwrap();
        assert_eq!(pkt.ext_headers().unwrap_err().error, Error::Truncated);
        // Its Router Alert option, said to be 7 bytes long: runs past the header;
        // Parameter Problem code 0 pointing at that length byte.
        let mut g = hex(MLD_REPORT);
        g[57] = 7;
        let e = Ipv6Packet::new_checked(&g[14..])
            .unwrap()
            .ext_headers()
            .unwrap_err();
        assert_eq!(e.error, Error::BadOption);
        assert_eq!(
            e.param_problem,
            Some((berth_wire::ParamProblemCode::ErroneousHeaderField, 43))
        );
    }
}
