//! Raw sockets end to end: IP_HDRINCL header completion (raw(7)), IPPROTO_RAW,
//! stack-built headers, copies of UDP/ICMP to raw sockets, bind filtering.

mod common;

use berth_core::wire::{IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr};
use berth_core::{errno, IfaceId, IPPROTO_RAW};
use common::*;
use std::io::ErrorKind;

/// A hand-made header: ident, checksum and source as given.
fn header(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = build_ip(src, dst, IpProtocol(253), ident, false, 0, payload);
    v[10] = 0;
    v[11] = 0;
    v
}

fn wire_packet(net: &Net, idx: usize) -> (Ipv4Repr, Vec<u8>) {
    let bytes = net.log[idx].bytes.clone();
    let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&bytes[..]).unwrap())
        .expect("valid header (checksum included) on the wire");
    (repr, bytes)
}

#[test]
fn hdrincl_fills_ident_checksum_and_source() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let rx = net.nodes[1].raw_socket(IpProtocol(253)).unwrap();
    let tx = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    net.nodes[0].raw_set_hdrincl(tx, true).unwrap();

    // ident 0, checksum 0, source 0.0.0.0: all filled in.
    let pkt = header(Ipv4Addr::UNSPECIFIED, ip(2), 0, b"payload");
    assert_eq!(
        net.nodes[0].raw_send_to(net.now, tx, &pkt, ip(2)).unwrap(),
        pkt.len()
    );
    net.settle();
    let (r, bytes) = wire_packet(&net, 0);
    assert_ne!(r.ident, 0);
    assert_ne!(u16::from_be_bytes([bytes[10], bytes[11]]), 0);
    assert_eq!(r.src_addr, ip(1));
    assert_eq!(r.protocol, IpProtocol(253));
    assert_eq!(&bytes[20..], b"payload");
    let mut buf = [0u8; 64];
    let (n, from) = net.nodes[1].raw_recv_from(rx, &mut buf).unwrap();
    assert_eq!((n, v4(from)), (27, ip(1)));
    assert_eq!(&buf[20..n], b"payload");

    // Given ident and source are kept.
    let pkt = header(ip(1), ip(2), 0x1234, b"p2");
    net.nodes[0].raw_send_to(net.now, tx, &pkt, ip(2)).unwrap();
    net.settle();
    let (r, _) = wire_packet(&net, 1);
    assert_eq!((r.ident, r.src_addr), (0x1234, ip(1)));

    // Two zero-ident packets get distinct idents.
    net.nodes[0]
        .raw_send_to(net.now, tx, &header(ip(1), ip(2), 0, b"a"), ip(2))
        .unwrap();
    net.nodes[0]
        .raw_send_to(net.now, tx, &header(ip(1), ip(2), 0, b"b"), ip(2))
        .unwrap();
    net.settle();
    assert_ne!(wire_packet(&net, 2).0.ident, wire_packet(&net, 3).0.ident);
    assert_eq!(net.nodes[0].stats().raw_out_packets, 4);
    assert_eq!(net.nodes[1].stats().ip_in_bad_checksum, 0);
}

#[test]
fn hdrincl_checksum_is_always_recomputed() {
    // raw(7): "IP checksum: always filled in". A caller that computed the checksum
    // over ident 0 (or over a wrong total length) must still get a valid packet out,
    // after the stack changed those fields.
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let rx = net.nodes[1].raw_socket(IpProtocol(253)).unwrap();
    let tx = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    net.nodes[0].raw_set_hdrincl(tx, true).unwrap();

    let with_csum = build_ip(
        ip(1),
        ip(2),
        IpProtocol(253),
        0,
        false,
        0,
        b"csum over ident 0",
    );
    assert!(Ipv4Packet::new_checked(&with_csum[..])
        .unwrap()
        .verify_checksum());
    net.nodes[0]
        .raw_send_to(net.now, tx, &with_csum, ip(2))
        .unwrap();

    let mut wrong_len = build_ip(ip(1), ip(2), IpProtocol(253), 7, false, 0, b"xyz");
    wrong_len[2..4].copy_from_slice(&100u16.to_be_bytes());
    Ipv4Packet::new_unchecked(&mut wrong_len[..]).fill_checksum();
    net.nodes[0]
        .raw_send_to(net.now, tx, &wrong_len, ip(2))
        .unwrap();
    net.settle();

    let (r0, _) = wire_packet(&net, 0);
    assert_ne!(r0.ident, 0);
    let (r1, b1) = wire_packet(&net, 1);
    assert_eq!(r1.payload_len, 3);
    assert_eq!(b1.len(), 23);
    assert_eq!(net.nodes[1].stats().ip_in_bad_checksum, 0);
    let mut buf = [0u8; 64];
    assert!(net.nodes[1].raw_recv_from(rx, &mut buf).is_ok());
    assert!(net.nodes[1].raw_recv_from(rx, &mut buf).is_ok());
}

#[test]
fn hdrincl_rejects_invalid_headers_and_routes_by_header() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let tx = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    net.nodes[0].raw_set_hdrincl(tx, true).unwrap();
    let now = net.now;
    let s = &mut net.nodes[0];
    for bad in [
        vec![0x45u8; 19], // shorter than a header
        {
            let mut v = header(ip(1), ip(2), 0, b"x");
            v[0] = 0x65; // version 6
            v
        },
        {
            let mut v = header(ip(1), ip(2), 0, b"x");
            v[0] = 0x4f; // IHL 60 bytes > packet
            v
        },
        {
            let mut v = header(ip(1), ip(2), 0, b"x");
            v[0] = 0x44; // IHL 16 bytes
            v
        },
    ] {
        let e = s.raw_send_to(now, tx, &bad, ip(2)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(errno(&e), Some(22));
    }
    assert_eq!(s.stats().raw_out_packets, 0);
    // The header's destination decides where it goes (the sendto address is ignored,
    // as on Linux): here, to ourselves.
    let me = s.raw_socket(IpProtocol(253)).unwrap();
    s.raw_send_to(now, tx, &header(ip(1), ip(1), 0, b"loop"), ip(2))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = s.raw_recv_from(me, &mut buf).unwrap();
    assert_eq!(&buf[20..n], b"loop");
    assert_eq!(net.pump(), 0);
}

#[test]
fn hdrincl_big_packet_is_fragmented_and_reassembled() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let rx = net.nodes[1].raw_socket(IpProtocol(253)).unwrap();
    let tx = net.nodes[0].raw_socket(IpProtocol(IPPROTO_RAW)).unwrap();
    let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    net.nodes[0]
        .raw_send_to(net.now, tx, &header(ip(1), ip(2), 0, &payload), ip(2))
        .unwrap();
    net.settle();
    assert_eq!(net.log.len(), 3);
    let mut buf = vec![0u8; 5000];
    let (n, _) = net.nodes[1].raw_recv_from(rx, &mut buf).unwrap();
    assert_eq!(n, 4020);
    assert_eq!(&buf[20..n], &payload[..]);
    // With DF set it is refused instead.
    let mut df = header(ip(1), ip(2), 0, &payload);
    df[6] = 0x40;
    let e = net.nodes[0]
        .raw_send_to(net.now, tx, &df, ip(2))
        .unwrap_err();
    assert_eq!(errno(&e), Some(90));
    assert_eq!(net.nodes[0].stats().ip_out_discards, 1);
}

#[test]
fn ipproto_raw_always_includes_header_and_receives_nothing() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let s = &mut net.nodes[1];
    let r = s.raw_socket(IpProtocol(IPPROTO_RAW)).unwrap();
    let e = s.raw_set_hdrincl(r, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(errno(&e), Some(22));
    s.raw_set_hdrincl(r, true).unwrap();
    // Protocol 255 packets arriving are not delivered to it: protocol unreachable.
    net.inject(
        1,
        IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol(IPPROTO_RAW), 1, false, 0, b"x"),
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        net.nodes[1].raw_recv_from(r, &mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(net.nodes[1].stats().ip_in_unknown_protos, 1);
    assert_eq!(net.nodes[1].stats().icmp_out_dest_unreachs, 1);
}

#[test]
fn stack_built_header_uses_socket_protocol_and_ttl() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let tx = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    net.nodes[0].raw_set_ttl(tx, 3).unwrap();
    assert_eq!(
        errno(&net.nodes[0].raw_set_ttl(tx, 0).unwrap_err()),
        Some(22)
    );
    net.nodes[0]
        .raw_send_to(net.now, tx, b"body", ip(2))
        .unwrap();
    net.pump();
    let (r, bytes) = wire_packet(&net, 0);
    assert_eq!(
        (r.protocol, r.ttl, r.src_addr, r.dst_addr),
        (IpProtocol(253), 3, ip(1), ip(2))
    );
    assert_eq!(&bytes[20..], b"body");
    // A raw socket bound to a local address sends from it.
    let e = net.nodes[0].raw_bind(tx, ip(9)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    net.nodes[0].raw_bind(tx, Ipv4Addr::LOCALHOST).unwrap();
    let logged = net.log.len();
    let me = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, tx, b"lo", Ipv4Addr::LOCALHOST)
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = net.nodes[0].raw_recv_from(me, &mut buf).unwrap();
    assert_eq!((v4(from), &buf[20..n]), (Ipv4Addr::LOCALHOST, &b"lo"[..]));
    // A bound raw socket only receives what is addressed to its address.
    assert_eq!(
        net.nodes[0]
            .raw_recv_from(tx, &mut buf)
            .map(|(_, a)| a)
            .unwrap(),
        Ipv4Addr::LOCALHOST
    );
    net.nodes[0]
        .raw_send_to(net.now, me, b"to eth", ip(1))
        .unwrap();
    assert!(net.nodes[0].raw_recv_from(me, &mut buf).is_ok());
    assert!(
        net.nodes[0].raw_recv_from(tx, &mut buf).is_err(),
        "bound to 127.0.0.1"
    );
    assert_eq!(net.pump(), 0);
    assert_eq!(net.log.len(), logged);
}

#[test]
fn raw_udp_socket_gets_a_copy_while_udp_still_delivers() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let spy = net.nodes[1].raw_socket(IpProtocol::UDP).unwrap();
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(9)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"both", sa(2, 9))
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"closed", sa(2, 10))
        .unwrap();
    net.settle();
    let mut buf = [0u8; 64];
    assert_eq!(net.nodes[1].udp_recv(srv, &mut buf).unwrap(), 4);
    let (n, _) = net.nodes[1].raw_recv_from(spy, &mut buf).unwrap();
    assert_eq!(&buf[28..n], b"both");
    let (n, _) = net.nodes[1].raw_recv_from(spy, &mut buf).unwrap();
    assert_eq!(&buf[28..n], b"closed");
    // Linux still sends port unreachable for the closed port even though a raw
    // socket saw the datagram.
    assert_eq!(net.nodes[1].stats().udp_no_ports, 1);
    assert_eq!(net.nodes[1].stats().icmp_out_dest_unreachs, 1);
    assert_eq!(net.nodes[1].stats().raw_in_delivers, 2);
}

#[test]
fn raw_receive_queue_is_bounded() {
    let mut net = Net::ip_pair(
        cfg(1),
        berth_core::Config {
            socket_recv_buffer: 1000,
            ..cfg(2)
        },
        1500,
    );
    let rx = net.nodes[1].raw_socket(IpProtocol(253)).unwrap();
    let tx = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    for _ in 0..10 {
        net.nodes[0]
            .raw_send_to(net.now, tx, &[0u8; 80], ip(2))
            .unwrap();
    }
    net.settle();
    // 100-byte packets charged 356 each: 2 fit in 1000.
    assert_eq!(net.nodes[1].stats().raw_in_delivers, 2);
    assert_eq!(net.nodes[1].stats().raw_rcvbuf_errors, 8);
    let row = net.nodes[1]
        .sockets()
        .into_iter()
        .find(|r| r.handle == rx)
        .unwrap();
    assert_eq!((row.drops, row.recv_q), (8, 200));
    // Dropped for lack of room is not "unknown protocol": no ICMP.
    assert_eq!(net.nodes[1].stats().icmp_out_msgs, 0);
}
