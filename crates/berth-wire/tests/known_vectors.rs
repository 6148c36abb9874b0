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
