//! Dual-stack sockets, as on Linux (bindv6only=0): an AF_INET6 socket bound to
//! `[::]` also takes IPv4, seen as IPv4-mapped addresses (`::ffff:192.0.2.1`),
//! unless IPV6_V6ONLY is set; TCP and UDP port spaces are shared across the
//! families, so `[::]:80` conflicts with `0.0.0.0:80` unless V6ONLY.

mod common;

use berth_core::wire::Ipv6Addr;
use berth_core::{errno, Duration, Stack};
use common::v6::v6;
use common::*;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};

fn s(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn pair() -> Net {
    common::v6::dual_pair()
}

fn listen6(st: &mut Stack, port: u16, v6only: bool) -> berth_core::SocketHandle {
    let l = st.tcp_socket_v6();
    st.tcp_set_only_v6(l, v6only).unwrap();
    st.tcp_bind(l, SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
        .unwrap();
    st.tcp_listen(l, 8).unwrap();
    l
}

#[test]
fn an_ipv6_listener_takes_ipv4_clients_as_mapped_addresses() {
    let mut net = pair();
    let l = listen6(&mut net.nodes[1], 80, false);
    let c4 = net.connect(0, s("192.0.2.2:80"));
    let c6 = net.connect(0, s("[2001:db8::2]:80"));
    net.settle();
    let (a4, from4) = net.nodes[1].tcp_accept(l).unwrap();
    let (a6, from6) = net.nodes[1].tcp_accept(l).unwrap();
    let c4_local = net.nodes[0].tcp_local_addr(c4).unwrap();
    assert_eq!(c4_local.ip(), IpAddr::from([192, 0, 2, 1]));
    assert_eq!(from4, s(&format!("[::ffff:192.0.2.1]:{}", c4_local.port())));
    assert_eq!(
        net.nodes[1].tcp_local_addr(a4).unwrap(),
        s("[::ffff:192.0.2.2]:80")
    );
    assert_eq!(from6, net.nodes[0].tcp_local_addr(c6).unwrap());
    assert_eq!(from6.ip(), IpAddr::V6(v6(1)));
    assert_eq!(
        net.nodes[1].tcp_local_addr(a6).unwrap(),
        s("[2001:db8::2]:80")
    );
    // The IPv4 connection is IPv4 on the wire.
    assert!(net.nodes[1].stats().ip_in_receives > 0);
    net.nodes[1].tcp_send(net.now, a4, b"mapped").unwrap();
    net.settle();
    let mut buf = [0u8; 16];
    let n = net.nodes[0].tcp_recv(net.now, c4, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"mapped");
    // ss shows the mapped addresses for the IPv6 socket's connections.
    let rows = net.nodes[1].sockets();
    assert!(rows
        .iter()
        .any(|r| r.local == s("[::ffff:192.0.2.2]:80") && r.state == "ESTAB"));
    assert!(rows
        .iter()
        .any(|r| r.local == s("[::]:80") && r.state == "LISTEN"));
    // A dual-stack socket connects to a mapped address over IPv4.
    let d = net.nodes[0].tcp_socket_v6();
    let l4 = net.nodes[1].tcp_socket();
    net.nodes[1].tcp_bind(l4, s("192.0.2.2:81")).unwrap();
    net.nodes[1].tcp_listen(l4, 8).unwrap();
    net.nodes[0]
        .tcp_connect(net.now, d, s("[::ffff:192.0.2.2]:81"))
        .unwrap();
    net.settle();
    let (_, peer) = net.nodes[1].tcp_accept(l4).unwrap();
    assert_eq!(peer.ip(), IpAddr::from([192, 0, 2, 1]));
    assert_eq!(
        net.nodes[0].tcp_peer_addr(d).unwrap(),
        s("[::ffff:192.0.2.2]:81")
    );
}

#[test]
fn v6only_refuses_ipv4() {
    let mut net = pair();
    let _l = listen6(&mut net.nodes[1], 80, true);
    let c4 = net.connect(0, s("192.0.2.2:80"));
    net.settle();
    let e = net.nodes[0].tcp_take_error(c4).unwrap().unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // An IPv6-only socket cannot name an IPv4 peer.
    let d = net.nodes[0].tcp_socket_v6();
    net.nodes[0].tcp_set_only_v6(d, true).unwrap();
    let e = net.nodes[0]
        .tcp_connect(net.now, d, s("[::ffff:192.0.2.2]:80"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NetworkUnreachable);
    // V6ONLY is an IPv6 option, and set before bind.
    let v4 = net.nodes[0].tcp_socket();
    net.nodes[0].tcp_bind(v4, s("0.0.0.0:0")).unwrap();
    assert_eq!(
        errno(&net.nodes[0].tcp_set_only_v6(v4, true).unwrap_err()),
        Some(92)
    );
    let bound = net.nodes[0].tcp_socket_v6();
    net.nodes[0].tcp_bind(bound, s("[::]:0")).unwrap();
    assert_eq!(
        net.nodes[0]
            .tcp_set_only_v6(bound, true)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn port_spaces_are_shared_across_families_unless_v6only() {
    let mut net = pair();
    let st = &mut net.nodes[1];
    for tcp in [true, false] {
        let bind = |st: &mut Stack, v6: bool, v6only: bool, addr: &str| {
            let (h, r) = if tcp {
                let h = if v6 {
                    st.tcp_socket_v6()
                } else {
                    st.tcp_socket()
                };
                if v6only {
                    st.tcp_set_only_v6(h, true).unwrap();
                }
                (h, st.tcp_bind(h, s(addr)).map(|_| ()))
            } else {
                let h = if v6 {
                    st.udp_socket_v6()
                } else {
                    st.udp_socket()
                };
                if v6only {
                    st.udp_set_only_v6(h, true).unwrap();
                }
                (h, st.udp_bind(h, s(addr)).map(|_| ()))
            };
            (h, r.map_err(|e| e.kind()))
        };
        let base = if tcp { 1000 } else { 2000 };
        let p = |n: u16| base + n;
        // [::] (dual) then 0.0.0.0: in use, and the other order too.
        assert!(bind(st, true, false, &format!("[::]:{}", p(1))).1.is_ok());
        assert_eq!(
            bind(st, false, false, &format!("0.0.0.0:{}", p(1))).1,
            Err(ErrorKind::AddrInUse)
        );
        assert!(bind(st, false, false, &format!("0.0.0.0:{}", p(2)))
            .1
            .is_ok());
        assert_eq!(
            bind(st, true, false, &format!("[::]:{}", p(2))).1,
            Err(ErrorKind::AddrInUse)
        );
        // A specific IPv4 address is covered by a dual [::] too.
        assert!(bind(st, true, false, &format!("[::]:{}", p(3))).1.is_ok());
        assert_eq!(
            bind(st, false, false, &format!("192.0.2.2:{}", p(3))).1,
            Err(ErrorKind::AddrInUse)
        );
        // With V6ONLY the families are apart.
        assert!(bind(st, true, true, &format!("[::]:{}", p(4))).1.is_ok());
        assert!(bind(st, false, false, &format!("0.0.0.0:{}", p(4)))
            .1
            .is_ok());
        // 0.0.0.0 does not cover a specific IPv6 address.
        assert!(bind(st, false, false, &format!("0.0.0.0:{}", p(5)))
            .1
            .is_ok());
        assert!(bind(st, true, false, &format!("[2001:db8::2]:{}", p(5)))
            .1
            .is_ok());
    }
}

#[test]
fn udp_dual_stack_receives_mapped_and_answers_over_ipv4() {
    let mut net = pair();
    let srv = net.nodes[1].udp_socket_v6();
    net.nodes[1].udp_bind(srv, s("[::]:53")).unwrap();
    let c4 = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c4, b"v4", s("192.0.2.2:53"))
        .unwrap();
    let c6 = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c6, b"v6", s("[2001:db8::2]:53"))
        .unwrap();
    net.settle();
    let mut buf = [0u8; 8];
    let (n, from4) = net.nodes[1].udp_recv_from(srv, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"v4");
    let c4_port = net.nodes[0].udp_local_addr(c4).unwrap().port();
    assert_eq!(from4, s(&format!("[::ffff:192.0.2.1]:{c4_port}")));
    let (n, from6) = net.nodes[1].udp_recv_from(srv, &mut buf).unwrap();
    assert_eq!((&buf[..n], from6.ip()), (&b"v6"[..], IpAddr::V6(v6(1))));
    // Answers to the mapped address leave as IPv4; a plain IPv4 destination
    // works too (Linux's UDPv6 takes AF_INET destinations).
    let v4_out = net.nodes[1].stats().ip_out_requests;
    net.nodes[1]
        .udp_send_to(net.now, srv, b"re", from4)
        .unwrap();
    net.nodes[1]
        .udp_send_to(net.now, srv, b"re2", s(&format!("192.0.2.1:{c4_port}")))
        .unwrap();
    net.advance(Duration::from_millis(1));
    assert_eq!(net.nodes[1].stats().ip_out_requests, v4_out + 2);
    let (n, from) = net.nodes[0].udp_recv_from(c4, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"re"[..], s("192.0.2.2:53")));
    assert_eq!(net.nodes[0].udp_recv(c4, &mut buf).unwrap(), 3);
    // The listing shows the IPv6 socket's wildcard.
    assert!(net.nodes[1]
        .sockets()
        .iter()
        .any(|r| r.handle == srv && r.local == s("[::]:53")));
    // connect takes a plain IPv4 address on a dual-stack socket too (Linux's
    // ip6_datagram_connect); the peer reads back IPv4-mapped.
    let d = net.nodes[1].udp_socket_v6();
    net.nodes[1].udp_connect(d, s("192.0.2.1:9")).unwrap();
    assert_eq!(
        net.nodes[1].udp_peer_addr(d).unwrap(),
        s("[::ffff:192.0.2.1]:9")
    );
    // An AF_INET socket takes no IPv6 address once its family is set.
    let e = net.nodes[0]
        .udp_send_to(net.now, c4, b"x", s("[2001:db8::2]:53"))
        .unwrap_err();
    assert_eq!(errno(&e), Some(97));
}
