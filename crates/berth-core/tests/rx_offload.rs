//! Receive checksum offload (`Stack::receive_batch_offload`): a frame whose
//! device computed its TCP/UDP checksum is not summed again; every other frame,
//! and every fragment, still is.

mod common;

use berth_core::wire::{IpProtocol, SeqNumber, TcpFlags, TcpRepr};
use berth_core::IfaceId;
use common::*;

/// A UDP/IPv4 packet to 192.0.2.2:7 whose checksum field is wrong.
fn bad_udp(data: &[u8]) -> Vec<u8> {
    let mut p = build_udp(sa(1, 9), sa(2, 7), 1, data);
    p[20 + 6] ^= 0x55;
    p
}

/// Two stacks; node 1 has a UDP socket bound to port 7.
fn udp_server(seed: u64) -> (Net, berth_core::SocketHandle) {
    let mut net = Net::ip_pair(cfg(seed), cfg(seed + 1), 1500);
    let s = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(s, any(7)).unwrap();
    (net, s)
}

#[test]
fn a_device_computed_udp_checksum_is_not_checked_again() {
    let (mut net, s) = udp_server(91);
    let now = net.now;
    let p = bad_udp(b"hello");
    let mut buf = [0u8; 64];

    // The device said nothing: verified, dropped, counted.
    net.nodes[1].receive_batch_offload(now, IfaceId(0), [(&p[..], false)]);
    assert_eq!(net.nodes[1].stats().udp_in_csum_errors, 1);
    assert!(net.nodes[1].udp_recv(s, &mut buf).is_err());

    // The device computed it: taken as it is.
    net.nodes[1].receive_batch_offload(now, IfaceId(0), [(&p[..], true)]);
    assert_eq!(net.nodes[1].stats().udp_in_csum_errors, 1);
    assert_eq!(net.nodes[1].udp_recv(s, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");

    // The flag is each frame's own: the next frame of the batch is checked.
    let good = build_udp(sa(1, 9), sa(2, 7), 2, b"again");
    net.nodes[1].receive_batch_offload(now, IfaceId(0), [(&good[..], true), (&p[..], false)]);
    assert_eq!(net.nodes[1].stats().udp_in_csum_errors, 2);
    assert_eq!(net.nodes[1].udp_recv(s, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"again");
    assert!(net.nodes[1].udp_recv(s, &mut buf).is_err());

    // receive and receive_batch verify as before.
    net.inject(1, IfaceId(0), &p);
    net.nodes[1].receive_batch(now, IfaceId(0), [&p[..]]);
    assert_eq!(net.nodes[1].stats().udp_in_csum_errors, 4);
}

#[test]
fn fragments_are_checked_after_reassembly_whatever_the_flag() {
    let (mut net, s) = udp_server(93);
    let now = net.now;
    let data = pattern(100, 3);
    let whole = bad_udp(&data);
    let udp = &whole[20..];
    let first = build_ip(ip(1), ip(2), IpProtocol::UDP, 77, true, 0, &udp[..48]);
    let second = build_ip(ip(1), ip(2), IpProtocol::UDP, 77, false, 48, &udp[48..]);
    net.nodes[1].receive_batch_offload(now, IfaceId(0), [(&first[..], true), (&second[..], true)]);
    assert_eq!(net.nodes[1].stats().ip_reasm_oks, 1);
    assert_eq!(net.nodes[1].stats().udp_in_csum_errors, 1);
    let mut buf = [0u8; 256];
    assert!(net.nodes[1].udp_recv(s, &mut buf).is_err());
}

#[test]
fn a_device_computed_tcp_checksum_is_not_checked_again() {
    let mut net = Net::ip_pair(cfg(95), cfg(96), 1500);
    let _l = net.listen(1, 80, 8);
    let now = net.now;
    let mut r = TcpRepr::new(40000, 80, SeqNumber(1), TcpFlags::SYN);
    r.window_len = 1000;
    let mut p = build_tcp(ip(1), ip(2), &r);
    p[20 + 16] ^= 0x55;
    let from = net.log.len();
    net.nodes[1].receive_batch_offload(now, IfaceId(0), [(&p[..], false)]);
    net.settle();
    assert_eq!(net.nodes[1].stats().tcp_in_csum_errors, 1);
    assert!(
        net.segs_since(from).is_empty(),
        "no answer to a bad checksum"
    );
    net.nodes[1].receive_batch_offload(now, IfaceId(0), [(&p[..], true)]);
    net.settle();
    assert_eq!(net.nodes[1].stats().tcp_in_csum_errors, 1);
    assert!(
        net.segs_since(from).iter().any(|s| s.is_synack()),
        "the SYN the device vouched for is answered"
    );
}
