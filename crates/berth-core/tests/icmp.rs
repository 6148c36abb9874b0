//! ICMP end to end: ping through a raw socket, echo switched off, port and protocol
//! unreachable (and what sockets see of them), raw delivery of unknown protocols,
//! the ICMP error rate limit.

mod common;

use berth_core::wire::{DstUnreachable, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr};
use berth_core::{errno, Duration, Event, EventKind};
use common::*;
use std::io::ErrorKind;
use std::net::IpAddr;

fn raw_recv(net: &mut Net, node: usize, h: berth_core::SocketHandle) -> (Vec<u8>, IpAddr) {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = net.nodes[node]
        .raw_recv_from(h, &mut buf)
        .expect("a packet");
    buf.truncate(n);
    (buf, from)
}

fn ping_roundtrip(mut net: Net) {
    let raw = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    let req = echo_request(0x4242, 7, b"abcdefgh0123456789");
    let n = net.nodes[0].raw_send_to(net.now, raw, &req, ip(2)).unwrap();
    assert_eq!(n, req.len());
    net.settle();

    assert_eq!(
        net.nodes[0].poll_event(),
        Some(Event {
            handle: raw,
            kind: EventKind::Readable
        })
    );
    let (pkt, from) = raw_recv(&mut net, 0, raw);
    assert_eq!(from, ip(2));
    // The raw socket hands over the whole IP packet, header included.
    let (ipr, icmp) = icmp_of(&pkt).expect("an ICMP packet with a valid IP header");
    assert_eq!((ipr.src_addr, ipr.dst_addr), (ip(2), ip(1)));
    assert_eq!(ipr.protocol, IpProtocol::ICMP);
    assert_eq!(ipr.ttl, 64);
    assert_eq!(
        icmp,
        Icmpv4Repr::EchoReply {
            ident: 0x4242,
            seq_no: 7,
            data: b"abcdefgh0123456789"
        }
    );
    let mut buf = [0u8; 8];
    let e = net.nodes[0].raw_recv_from(raw, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);

    let (a, b) = (net.nodes[0].stats(), net.nodes[1].stats());
    assert_eq!(a.raw_out_packets, 1);
    assert_eq!(a.raw_in_delivers, 1);
    assert_eq!(a.icmp_in_msgs, 1);
    assert_eq!(a.icmp_in_echo_reps, 1);
    assert_eq!(b.icmp_in_msgs, 1);
    assert_eq!(b.icmp_in_echos, 1);
    assert_eq!(b.icmp_out_echo_reps, 1);
    assert_eq!(b.icmp_out_msgs, 1);
    assert_eq!(b.icmp_echo_ignored, 0);
}

#[test]
fn ping_with_raw_socket_over_ip() {
    ping_roundtrip(Net::ip_pair(cfg(1), cfg(2), 1500));
}

#[test]
fn ping_with_raw_socket_over_ethernet() {
    ping_roundtrip(Net::eth_lan(vec![cfg(1), cfg(2)], 1500));
}

#[test]
fn raw_icmp_socket_on_the_target_sees_the_request_too() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let watcher = net.nodes[1].raw_socket(IpProtocol::ICMP).unwrap();
    let pinger = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, pinger, &echo_request(1, 1, b"x"), ip(2))
        .unwrap();
    net.settle();
    let (pkt, from) = raw_recv(&mut net, 1, watcher);
    assert_eq!(from, ip(1));
    assert!(matches!(
        icmp_of(&pkt).unwrap().1,
        Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            ..
        }
    ));
    // ... and the stack still answered.
    assert_eq!(net.nodes[1].stats().icmp_out_echo_reps, 1);
    assert!(raw_recv(&mut net, 0, pinger).0.len() > 20);
}

#[test]
fn echo_reply_switched_off() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    net.nodes[1].set_icmp_echo_reply(false);
    assert!(!net.nodes[1].config().icmp_echo_reply);
    let raw = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, raw, &echo_request(9, 1, b"hello?"), ip(2))
        .unwrap();
    net.advance(Duration::from_secs(2));
    assert_eq!(net.log.len(), 1, "only the request crossed the link");
    let mut buf = [0u8; 64];
    assert_eq!(
        net.nodes[0]
            .raw_recv_from(raw, &mut buf)
            .unwrap_err()
            .kind(),
        ErrorKind::WouldBlock
    );
    let b = net.nodes[1].stats();
    assert_eq!(b.icmp_in_echos, 1);
    assert_eq!(b.icmp_echo_ignored, 1);
    assert_eq!(b.icmp_out_msgs, 0);

    // Switched back on, it answers again.
    net.nodes[1].set_icmp_echo_reply(true);
    net.nodes[0]
        .raw_send_to(net.now, raw, &echo_request(9, 2, b"hello?"), ip(2))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[1].stats().icmp_out_echo_reps, 1);
    assert!(net.nodes[0].raw_recv_from(raw, &mut buf).is_ok());
}

#[test]
fn broadcast_echo_is_ignored() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let raw = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, raw, &echo_request(9, 1, b"all?"), ip(255))
        .unwrap();
    net.settle();
    assert_eq!(net.log.len(), 1);
    assert_eq!(net.nodes[1].stats().icmp_in_echos, 1);
    assert_eq!(net.nodes[1].stats().icmp_echo_ignored, 1);
    assert_eq!(net.nodes[1].stats().icmp_out_msgs, 0);
}

#[test]
fn closed_port_gives_port_unreachable_and_connection_refused() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let conn = net.nodes[0].udp_socket();
    net.nodes[0].udp_connect(conn, sa(2, 9999)).unwrap();
    let unconn = net.nodes[0].udp_socket();
    let conn_local = net.nodes[0].udp_local_addr(conn).unwrap();

    net.nodes[0]
        .udp_send(net.now, conn, b"anyone home?")
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, unconn, b"anyone home?", sa(2, 9998))
        .unwrap();
    net.settle();

    // The target counted both and answered with port unreachable.
    let b = net.nodes[1].stats();
    assert_eq!(b.udp_no_ports, 2);
    assert_eq!(b.icmp_out_dest_unreachs, 2);
    assert_eq!(b.icmp_out_msgs, 2);
    let icmps: Vec<_> = net
        .log
        .iter()
        .filter(|f| f.node == 1)
        .map(|f| f.bytes.clone())
        .collect();
    assert_eq!(icmps.len(), 2);
    let (ipr, msg) = icmp_of(&icmps[0]).unwrap();
    assert_eq!((ipr.src_addr, ipr.dst_addr), (ip(2), ip(1)));
    match msg {
        Icmpv4Repr::DstUnreachable {
            reason,
            header,
            data,
        } => {
            assert_eq!(reason, DstUnreachable::PortUnreachable);
            assert_eq!((header.src_addr, header.dst_addr), (ip(1), ip(2)));
            assert_eq!(header.protocol, IpProtocol::UDP);
            // The quote holds the UDP header and the payload (small datagram).
            assert_eq!(&data[0..2], &conn_local.port().to_be_bytes());
            assert_eq!(&data[2..4], &9999u16.to_be_bytes());
            assert_eq!(&data[8..], b"anyone home?");
        }
        other => panic!("expected port unreachable, got {other:?}"),
    }

    let a = net.nodes[0].stats();
    assert_eq!(a.icmp_in_msgs, 2);
    assert_eq!(a.icmp_in_dest_unreachs, 2);

    // Only the connected socket gets an Error event.
    assert_eq!(
        net.nodes[0].poll_event(),
        Some(Event {
            handle: conn,
            kind: EventKind::Error
        })
    );
    assert_eq!(net.nodes[0].poll_event(), None);

    // Its next recv reports ECONNREFUSED, once.
    let mut buf = [0u8; 16];
    let e = net.nodes[0].udp_recv(conn, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(errno(&e), Some(111));
    assert_eq!(
        net.nodes[0].udp_recv(conn, &mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // The unconnected socket never sees it.
    assert_eq!(
        net.nodes[0].udp_recv(unconn, &mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    net.nodes[0]
        .udp_send_to(net.now, unconn, b"again", sa(2, 9998))
        .unwrap();

    // Send again; the next *send* reports it this time.
    net.nodes[0].udp_send(net.now, conn, b"still?").unwrap();
    net.settle();
    let e = net.nodes[0].udp_send(net.now, conn, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(errno(&e), Some(111));
    // Cleared by reporting: sending works again.
    net.nodes[0].udp_send(net.now, conn, b"x").unwrap();

    // Once something listens there, the connected socket exchanges data normally.
    net.settle();
    let _ = net.nodes[0].udp_recv(conn, &mut buf); // consume the latest refusal
    while net.nodes[0].poll_event().is_some() {}
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, sa(2, 9999)).unwrap();
    net.nodes[0].udp_send(net.now, conn, b"hi").unwrap();
    net.settle();
    let (n, from) = net.nodes[1].udp_recv_from(srv, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"hi"[..], conn_local));
    net.nodes[1].udp_send_to(net.now, srv, b"yo", from).unwrap();
    net.settle();
    assert_eq!(
        net.nodes[0].poll_event(),
        Some(Event {
            handle: conn,
            kind: EventKind::Readable
        })
    );
    assert_eq!(net.nodes[0].udp_recv(conn, &mut buf).unwrap(), 2);
}

#[test]
fn error_event_does_not_swallow_a_later_readable_event() {
    // An Error event is pending (not yet polled) when a datagram arrives: the
    // receive queue went from empty to non-empty, so a Readable event is owed too.
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let conn = net.nodes[0].udp_socket();
    net.nodes[0].udp_connect(conn, sa(2, 53)).unwrap();
    let local = net.nodes[0].udp_local_addr(conn).unwrap();
    net.nodes[0].udp_send(net.now, conn, b"q").unwrap();
    net.settle(); // port unreachable comes back: Error event queued
    let srv = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(srv, any(53)).unwrap();
    net.nodes[1]
        .udp_send_to(net.now, srv, b"late answer", local)
        .unwrap();
    net.settle();

    let mut kinds = Vec::new();
    while let Some(ev) = net.nodes[0].poll_event() {
        assert_eq!(ev.handle, conn);
        kinds.push(ev.kind);
    }
    assert_eq!(kinds, vec![EventKind::Error, EventKind::Readable]);
    let mut buf = [0u8; 32];
    assert_eq!(
        net.nodes[0].udp_recv(conn, &mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    let n = net.nodes[0].udp_recv(conn, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"late answer");
}

#[test]
fn flood_of_icmp_errors_does_not_grow_the_event_queue() {
    // Anyone can send ICMP errors quoting a connected socket's tuple; an application
    // that has not polled yet must not accumulate one event per message.
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let conn = net.nodes[0].udp_socket();
    net.nodes[0].udp_connect(conn, sa(2, 53)).unwrap();
    let local = net.nodes[0].udp_local_addr(conn).unwrap();
    let quoted = build_udp(local, sa(2, 53), 1, b"q");
    let quoted_repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&quoted[..]).unwrap()).unwrap();
    let msg = icmp_bytes(&Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::PortUnreachable,
        header: quoted_repr,
        data: &quoted[20..28],
    });
    let pkt = build_ip(ip(2), ip(1), IpProtocol::ICMP, 5, false, 0, &msg);
    for _ in 0..1000 {
        net.inject(0, berth_core::IfaceId(0), &pkt);
    }
    assert_eq!(net.nodes[0].stats().icmp_in_dest_unreachs, 1000);
    let mut events = 0;
    while net.nodes[0].poll_event().is_some() {
        events += 1;
    }
    assert_eq!(events, 1, "one pending error, one event");
    let mut buf = [0u8; 4];
    assert_eq!(
        net.nodes[0].udp_recv(conn, &mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    // After the error was consumed, a new one raises a new event.
    net.inject(0, berth_core::IfaceId(0), &pkt);
    assert_eq!(
        net.nodes[0].poll_event().map(|e| e.kind),
        Some(EventKind::Error)
    );
}

#[test]
fn icmp_error_quoting_another_peer_is_ignored_by_connected_socket() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let conn = net.nodes[0].udp_socket();
    net.nodes[0].udp_connect(conn, sa(2, 53)).unwrap();
    let local = net.nodes[0].udp_local_addr(conn).unwrap();
    // Quotes a datagram to port 54, not the connected peer's 53.
    let quoted = build_udp(local, sa(2, 54), 1, b"q");
    let quoted_repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&quoted[..]).unwrap()).unwrap();
    let msg = icmp_bytes(&Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::PortUnreachable,
        header: quoted_repr,
        data: &quoted[20..28],
    });
    net.inject(
        0,
        berth_core::IfaceId(0),
        &build_ip(ip(2), ip(1), IpProtocol::ICMP, 5, false, 0, &msg),
    );
    assert_eq!(net.nodes[0].poll_event(), None);
    let mut buf = [0u8; 4];
    assert_eq!(
        net.nodes[0].udp_recv(conn, &mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn unknown_protocol_gets_protocol_unreachable_unless_a_raw_socket_takes_it() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let sender = net.nodes[0].raw_socket(IpProtocol(253)).unwrap();
    let icmp_watch = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    let payload: Vec<u8> = (0..40u8).collect();
    net.nodes[0]
        .raw_send_to(net.now, sender, &payload, ip(2))
        .unwrap();
    net.settle();

    let b = net.nodes[1].stats().clone();
    assert_eq!(b.ip_in_unknown_protos, 1);
    assert_eq!(b.icmp_out_dest_unreachs, 1);
    assert_eq!(b.ip_in_delivers, 0);
    let (pkt, _) = raw_recv(&mut net, 0, icmp_watch);
    match icmp_of(&pkt).unwrap().1 {
        Icmpv4Repr::DstUnreachable {
            reason,
            header,
            data,
        } => {
            assert_eq!(reason, DstUnreachable::ProtoUnreachable);
            assert_eq!(header.protocol, IpProtocol(253));
            assert_eq!(header.payload_len, 40);
            assert_eq!(data, &payload[..]);
        }
        other => panic!("expected protocol unreachable, got {other:?}"),
    }
    assert_eq!(net.nodes[0].stats().icmp_in_dest_unreachs, 1);
    // The sender's own raw socket for 253 got nothing back.
    let mut buf = [0u8; 128];
    assert!(net.nodes[0].raw_recv_from(sender, &mut buf).is_err());

    // With a raw socket for 253 open on the target: delivered with its IP header,
    // and no ICMP is sent.
    let taker = net.nodes[1].raw_socket(IpProtocol(253)).unwrap();
    let logged = net.log.len();
    net.nodes[0]
        .raw_send_to(net.now, sender, &payload, ip(2))
        .unwrap();
    net.settle();
    assert_eq!(net.log.len(), logged + 1, "no ICMP back");
    let (pkt, from) = raw_recv(&mut net, 1, taker);
    assert_eq!(from, ip(1));
    let (ipr, body) = parse_ip(&pkt).unwrap();
    assert_eq!(
        (ipr.protocol, ipr.src_addr, ipr.dst_addr),
        (IpProtocol(253), ip(1), ip(2))
    );
    assert_eq!(body, &payload[..]);
    let b2 = net.nodes[1].stats();
    assert_eq!(b2.ip_in_unknown_protos, 1);
    assert_eq!(b2.icmp_out_msgs, b.icmp_out_msgs);
    assert_eq!(b2.ip_in_delivers, 1);
    assert_eq!(b2.raw_in_delivers, 1);

    // Closing the raw socket restores protocol unreachable.
    net.nodes[1].close(taker).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, sender, &payload, ip(2))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[1].stats().ip_in_unknown_protos, 2);
    assert_eq!(net.nodes[1].stats().icmp_out_dest_unreachs, 2);
}

#[test]
fn icmp_error_rate_limit_burst_then_refill() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let c = net.nodes[0].udp_socket();
    for i in 0..200u16 {
        net.nodes[0]
            .udp_send_to(net.now, c, b"x", sa(2, 1000 + i))
            .unwrap();
    }
    net.settle();
    let b = net.nodes[1].stats().clone();
    assert_eq!(b.udp_no_ports, 200);
    assert_eq!(b.icmp_out_dest_unreachs, 50, "icmp_burst");
    assert_eq!(b.icmp_out_rate_limited, 150);
    assert_eq!(net.nodes[0].stats().icmp_in_dest_unreachs, 50);

    // Echo replies are not rate limited.
    let raw = net.nodes[0].raw_socket(IpProtocol::ICMP).unwrap();
    net.nodes[0]
        .raw_send_to(net.now, raw, &echo_request(1, 1, b"p"), ip(2))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[1].stats().icmp_out_echo_reps, 1);

    // 10 ms at 1000/s: ten more tokens.
    net.advance(Duration::from_millis(10));
    for i in 0..50u16 {
        net.nodes[0]
            .udp_send_to(net.now, c, b"x", sa(2, 2000 + i))
            .unwrap();
    }
    net.settle();
    let b2 = net.nodes[1].stats().clone();
    assert_eq!(b2.icmp_out_dest_unreachs, 60);
    assert_eq!(b2.icmp_out_rate_limited, 190);

    // A full second refills to the burst, not beyond.
    net.advance(Duration::from_secs(1));
    for i in 0..200u16 {
        net.nodes[0]
            .udp_send_to(net.now, c, b"x", sa(2, 3000 + i))
            .unwrap();
    }
    net.settle();
    let b3 = net.nodes[1].stats();
    assert_eq!(b3.icmp_out_dest_unreachs, 110);
    assert_eq!(b3.icmp_out_rate_limited, 340);
    assert_eq!(b3.udp_no_ports, 450);
}

#[test]
fn malformed_and_unsupported_icmp_is_counted_not_answered() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    // Timestamp request (type 13): well-formed but unsupported.
    let mut ts = vec![13u8, 0, 0, 0, 0, 1, 0, 1];
    ts.extend_from_slice(&[0; 12]);
    let c = berth_core::wire::checksum::checksum(&ts);
    ts[2..4].copy_from_slice(&c.to_be_bytes());
    net.inject(
        1,
        berth_core::IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::ICMP, 1, false, 0, &ts),
    );
    // Corrupted echo request: bad ICMP checksum.
    let mut bad = echo_request(1, 1, b"zz");
    bad[9] ^= 0xff;
    net.inject(
        1,
        berth_core::IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::ICMP, 2, false, 0, &bad),
    );
    // Truncated ICMP (4 bytes).
    net.inject(
        1,
        berth_core::IfaceId(0),
        &build_ip(ip(1), ip(2), IpProtocol::ICMP, 3, false, 0, &[8, 0, 0, 0]),
    );
    net.settle();
    let b = net.nodes[1].stats();
    assert_eq!(b.icmp_in_msgs, 3);
    assert_eq!(b.icmp_in_unsupported, 1);
    assert_eq!(b.icmp_in_errors, 2);
    assert_eq!(b.icmp_out_msgs, 0);
    assert_eq!(net.log.len(), 0);
}
