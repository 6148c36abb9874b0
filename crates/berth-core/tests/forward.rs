//! Forwarding mode (forward.rs): a stack that terminates flows addressed to
//! other hosts. Node 0 (192.0.2.1, a client with node 1 as its default
//! gateway) talks to 198.51.100.7; node 1 (192.0.2.2) is in forwarding mode on
//! its link and decides about each flow.

mod common;

use berth_core::{ForwardRequest, IfaceId, Refusal, SocketHandle, Stack, TcpState};
use common::v6::v6;
use common::*;
use std::io::ErrorKind;
use std::net::SocketAddr;

fn s(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The client with a default route via node 1, node 1 forwarding.
fn net() -> Net {
    let mut net = common::v6::dual_pair();
    net.nodes[0].set_default_gateway(ip(2)).unwrap();
    net.nodes[0].set_default_gateway(v6(2)).unwrap();
    net.nodes[1].set_forwarding(IfaceId(0), true).unwrap();
    net
}

fn next(st: &mut Stack, f: SocketHandle) -> ForwardRequest {
    st.tcp_forward_next(f).expect("a pending request")
}

/// Accept the request and complete the handshake: the forwarded connection.
fn accept(net: &mut Net, f: SocketHandle, req: &ForwardRequest) -> SocketHandle {
    let now = net.now;
    net.nodes[1].tcp_forward_accept(now, f, req).unwrap();
    net.settle();
    net.nodes[1]
        .tcp_forward_take(f, req)
        .unwrap()
        .expect("established")
}

#[test]
fn a_connection_to_another_host_is_offered_accepted_and_carries_data() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    let c = net.connect(0, s("198.51.100.7:80"));
    net.settle();
    // No SYN-ACK before the decision.
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    let req = next(&mut net.nodes[1], f);
    let local = net.nodes[0].tcp_local_addr(c).unwrap();
    assert_eq!(req.local, s("198.51.100.7:80"));
    assert_eq!(req.remote, local);
    assert_eq!(
        net.nodes[1].tcp_forward_next(f).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let a = accept(&mut net, f, &req);
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    assert_eq!(net.nodes[1].tcp_local_addr(a).unwrap(), req.local);
    assert_eq!(net.nodes[1].tcp_peer_addr(a).unwrap(), local);
    // Both ways, the client sees 198.51.100.7 as its peer.
    let now = net.now;
    net.nodes[0].tcp_send(now, c, b"GET /").unwrap();
    net.settle();
    let mut buf = [0u8; 64];
    let now = net.now;
    let n = net.nodes[1].tcp_recv(now, a, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"GET /");
    net.nodes[1].tcp_send(now, a, b"200 OK").unwrap();
    net.settle();
    let now = net.now;
    let n = net.nodes[0].tcp_recv(now, c, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"200 OK");
    let st = net.nodes[1].stats();
    assert_eq!(st.tcp_forward_requests, 1);
    assert_eq!(st.tcp_passive_opens, 1);
    // ss shows the forwarded connection with both endpoints.
    assert!(net.nodes[1]
        .sockets()
        .iter()
        .any(|r| r.local == req.local && r.peer == Some(local) && r.state == "ESTAB"));
}

#[test]
fn ipv6_connections_are_forwarded_too() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    let c = net.connect(0, s("[2001:db8:1::7]:443"));
    net.settle();
    let req = next(&mut net.nodes[1], f);
    assert_eq!(req.local, s("[2001:db8:1::7]:443"));
    assert_eq!(req.remote.ip(), std::net::IpAddr::V6(v6(1)));
    let a = accept(&mut net, f, &req);
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    let now = net.now;
    net.nodes[1].tcp_send(now, a, b"hello6").unwrap();
    net.settle();
    let mut buf = [0u8; 16];
    let now = net.now;
    let n = net.nodes[0].tcp_recv(now, c, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello6");
}

#[test]
fn a_refused_request_is_reset_and_an_unreachable_one_gets_icmp() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    let c = net.connect(0, s("198.51.100.7:81"));
    net.settle();
    let req = next(&mut net.nodes[1], f);
    let now = net.now;
    net.nodes[1]
        .tcp_forward_refuse(now, f, &req, Refusal::Reset)
        .unwrap();
    net.settle();
    let e = net.nodes[0].tcp_take_error(c).unwrap().expect("refused");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(net.nodes[1].stats().tcp_forward_refused, 1);
    // Deciding twice is an error that says why.
    let now = net.now;
    let again = net.nodes[1].tcp_forward_accept(now, f, &req).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::ConnectionAborted);

    for (dst, how) in [
        ("198.51.100.8:80", Refusal::HostUnreachable),
        ("[2001:db8:1::8]:80", Refusal::HostUnreachable),
        ("198.51.100.9:80", Refusal::Prohibited),
    ] {
        let before4 = net.nodes[0].stats().icmp_in_dest_unreachs;
        let before6 = net.nodes[0].stats().icmp6_in_dest_unreachs;
        let _c = net.connect(0, s(dst));
        net.settle();
        let req = next(&mut net.nodes[1], f);
        let now = net.now;
        net.nodes[1].tcp_forward_refuse(now, f, &req, how).unwrap();
        net.settle();
        let st = net.nodes[0].stats();
        assert_eq!(
            st.icmp_in_dest_unreachs + st.icmp6_in_dest_unreachs,
            before4 + before6 + 1,
            "{dst}: one ICMP unreachable reached the client"
        );
    }
}

#[test]
fn requests_in_flight_are_bounded_and_retransmitted_syns_do_not_count_twice() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(2).unwrap();
    let _a = net.connect(0, s("198.51.100.7:1"));
    let _b = net.connect(0, s("198.51.100.7:2"));
    let _c = net.connect(0, s("198.51.100.7:3"));
    net.settle();
    assert_eq!(net.nodes[1].stats().tcp_forward_requests, 2);
    assert_eq!(net.nodes[1].stats().tcp_forward_drops, 1);
    // The clients retransmit their SYNs: still two requests, the third dropped.
    net.advance(berth_core::Duration::from_millis(1100));
    assert_eq!(net.nodes[1].stats().tcp_forward_requests, 2);
    assert!(net.nodes[1].stats().tcp_forward_drops >= 2);
    let r1 = next(&mut net.nodes[1], f);
    let r2 = next(&mut net.nodes[1], f);
    assert_ne!(r1, r2);
    assert!(net.nodes[1].tcp_forward_next(f).is_err());
    // Deciding frees a place: the third client's next SYN is offered.
    let now = net.now;
    net.nodes[1]
        .tcp_forward_refuse(now, f, &r1, Refusal::Reset)
        .unwrap();
    net.advance(berth_core::Duration::from_millis(2100));
    let r3 = next(&mut net.nodes[1], f);
    assert_eq!(r3.local, s("198.51.100.7:3"));
}

#[test]
fn listeners_keep_their_own_addresses_and_other_ports_go_to_the_forwarder() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    // A wildcard listener on port 80 is for node 1's own addresses only.
    let l = net.nodes[1].tcp_socket();
    net.nodes[1].tcp_bind(l, any(80)).unwrap();
    net.nodes[1].tcp_listen(l, 8).unwrap();
    let _c = net.connect(0, s("198.51.100.7:80"));
    let _d = net.connect(0, sa(2, 80));
    let _e = net.connect(0, sa(2, 8080));
    net.settle();
    assert!(
        net.nodes[1].tcp_accept(l).is_ok(),
        "192.0.2.2:80 is the listener's"
    );
    let r1 = next(&mut net.nodes[1], f);
    let r2 = next(&mut net.nodes[1], f);
    let mut got = [r1.local, r2.local];
    got.sort();
    assert_eq!(got, [sa(2, 8080), s("198.51.100.7:80")]);
}

#[test]
fn without_forwarding_other_hosts_packets_are_dropped() {
    let mut net = net();
    net.nodes[1].set_forwarding(IfaceId(0), false).unwrap();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    let c = net.connect(0, s("198.51.100.7:80"));
    net.settle();
    assert!(net.nodes[1].tcp_forward_next(f).is_err());
    assert!(net.nodes[1].stats().ip_in_addr_errors >= 1);
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    // Forwarding without a forwarder: a closed port's reset.
    net.nodes[1].set_forwarding(IfaceId(0), true).unwrap();
    net.nodes[1].close(f).unwrap();
    let c2 = net.connect(0, s("198.51.100.7:80"));
    net.settle();
    let e = net.nodes[0].tcp_take_error(c2).unwrap().expect("reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // The place is free again.
    assert!(net.nodes[1].tcp_forwarder(4).is_ok());
    assert_eq!(
        net.nodes[1].tcp_forwarder(4).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
}

#[test]
fn a_client_that_gives_up_is_reported_when_taken() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    let c = net.connect(0, s("198.51.100.7:80"));
    net.settle();
    let req = next(&mut net.nodes[1], f);
    // The client's socket goes away before the decision: the SYN-ACK then
    // draws a reset, and the connection is reported gone.
    net.nodes[0].close(c).unwrap();
    let now = net.now;
    net.nodes[1].tcp_forward_accept(now, f, &req).unwrap();
    net.settle();
    let e = net.nodes[1].tcp_forward_take(f, &req).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionAborted);
}

#[test]
fn udp_datagrams_become_flows_that_answer_from_the_original_destination() {
    let mut net = net();
    let f = net.nodes[1].udp_forwarder(1).unwrap();
    let c = net.nodes[0].udp_socket();
    let now = net.now;
    net.nodes[0]
        .udp_send_to(now, c, b"query", s("198.51.100.53:53"))
        .unwrap();
    net.nodes[0]
        .udp_send_to(now, c, b"again", s("198.51.100.53:53"))
        .unwrap();
    net.settle();
    let (flow, req) = net.nodes[1].udp_forward_accept(f).unwrap();
    assert_eq!(req.local, s("198.51.100.53:53"));
    let port = net.nodes[0].udp_local_addr(c).unwrap().port();
    assert_eq!(req.remote, SocketAddr::new(ip(1).into(), port));
    let mut buf = [0u8; 64];
    let n = net.nodes[1].udp_recv(flow, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"query");
    // The second datagram matched the flow's four-tuple.
    let n = net.nodes[1].udp_recv(flow, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"again");
    let now = net.now;
    net.nodes[1].udp_send(now, flow, b"answer").unwrap();
    net.settle();
    let (n, from) = net.nodes[0].udp_recv_from(c, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"answer"[..], s("198.51.100.53:53")));
    // One flow at most: a second destination is dropped and counted.
    let now = net.now;
    net.nodes[0]
        .udp_send_to(now, c, b"other", s("198.51.100.54:53"))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[1].stats().udp_forward_drops, 1);
    assert!(net.nodes[1].udp_forward_accept(f).is_err());
    // Closing the flow (an idle timeout in the application) frees the place.
    net.nodes[1].close(flow).unwrap();
    let now = net.now;
    net.nodes[0]
        .udp_send_to(now, c, b"other", s("198.51.100.54:53"))
        .unwrap();
    net.settle();
    let (flow2, req2) = net.nodes[1].udp_forward_accept(f).unwrap();
    assert_eq!(req2.local, s("198.51.100.54:53"));
    assert_eq!(net.nodes[1].stats().udp_forward_flows, 2);
    // Unaccepted flows go with their forwarder; accepted ones stay.
    net.nodes[1].close(f).unwrap();
    let n = net.nodes[1].udp_recv(flow2, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"other");
}

#[test]
fn udp_to_our_own_address_without_a_socket_becomes_a_flow_over_ipv6_too() {
    let mut net = net();
    let f = net.nodes[1].udp_forwarder(8).unwrap();
    let c = net.nodes[0].udp_socket_v6();
    let now = net.now;
    let gw = SocketAddr::new(v6(2).into(), 53);
    net.nodes[0].udp_send_to(now, c, b"q6", gw).unwrap();
    net.settle();
    let (flow, req) = net.nodes[1].udp_forward_accept(f).unwrap();
    assert_eq!(req.local, gw);
    let now = net.now;
    net.nodes[1].udp_send(now, flow, b"a6").unwrap();
    net.settle();
    let mut buf = [0u8; 8];
    let (n, from) = net.nodes[0].udp_recv_from(c, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"a6"[..], gw));
    assert_eq!(net.nodes[0].stats().icmp6_in_dest_unreachs, 0);
}

#[test]
fn a_transparent_raw_socket_answers_pings_for_another_host() {
    let mut net = net();
    let r = net.nodes[1]
        .raw_socket(berth_core::wire::IpProtocol::ICMP)
        .unwrap();
    let p = net.nodes[0]
        .raw_socket(berth_core::wire::IpProtocol::ICMP)
        .unwrap();
    let dst: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let now = net.now;
    net.nodes[0]
        .raw_send_to(now, p, &echo_request(7, 1, b"ping"), dst)
        .unwrap();
    net.settle();
    // The stack does not answer for another host; the raw socket sees it.
    let mut buf = [0u8; 128];
    let (n, from) = net.nodes[1].raw_recv_from(r, &mut buf).unwrap();
    assert_eq!(from, std::net::IpAddr::V4(ip(1)));
    let (hdr, _) = parse_ip(&buf[..n]).unwrap();
    assert_eq!(hdr.dst_addr, v4(dst));
    assert_eq!(net.nodes[1].stats().icmp_out_echo_reps, 0);
    // Bound to another host's address only with IP_TRANSPARENT.
    let t = net.nodes[1]
        .raw_socket(berth_core::wire::IpProtocol::ICMP)
        .unwrap();
    assert_eq!(
        net.nodes[1].raw_bind(t, dst).unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    net.nodes[1].raw_set_transparent(t, true).unwrap();
    net.nodes[1].raw_bind(t, dst).unwrap();
    let mut reply = echo_request(7, 1, b"ping");
    reply[0] = 0; // echo reply
    reply[2..4].fill(0);
    let c = berth_core::wire::checksum::checksum(&reply);
    reply[2..4].copy_from_slice(&c.to_be_bytes());
    let now = net.now;
    net.nodes[1].raw_send_to(now, t, &reply, ip(1)).unwrap();
    net.settle();
    let mut got = None;
    while let Ok((n, from)) = net.nodes[0].raw_recv_from(p, &mut buf) {
        if buf.get(20) == Some(&0) {
            got = Some((from, buf[..n].to_vec()));
        }
    }
    let (from, pkt) = got.expect("the echo reply reached the client");
    assert_eq!(from, dst);
    assert_eq!(&pkt[pkt.len() - 4..], b"ping");
}

#[test]
fn a_new_request_is_an_event_even_while_a_connection_waits_to_be_taken() {
    let mut net = net();
    let f = net.nodes[1].tcp_forwarder(16).unwrap();
    let _c = net.connect(0, s("198.51.100.7:80"));
    net.settle();
    let req = next(&mut net.nodes[1], f);
    let now = net.now;
    net.nodes[1].tcp_forward_accept(now, f, &req).unwrap();
    net.settle();
    // Established, not taken: the forwarder stays readable.
    while net.nodes[1].poll_event().is_some() {}
    let _d = net.connect(0, s("198.51.100.8:80"));
    net.settle();
    let mut readable = false;
    while let Some(ev) = net.nodes[1].poll_event() {
        readable |= ev.handle == f && ev.kind == berth_core::EventKind::Readable;
    }
    assert!(
        readable,
        "the second request raised no event: its waiter sleeps on"
    );
    assert_eq!(next(&mut net.nodes[1], f).local, s("198.51.100.8:80"));
}
