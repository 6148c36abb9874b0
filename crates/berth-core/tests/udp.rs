//! UDP end to end between hand-driven stacks: both media, connect, peek, filtering,
//! ephemeral ports, bind/send errors, bounded receive queues, socket snapshots.

mod common;

use berth_core::wire::{ArpOperation, EtherType, IpProtocol, Ipv4Addr};
use berth_core::{errno, Config, EventKind, IfaceId, SocketKind, Stack};
use common::*;
use std::io::ErrorKind;
use std::net::SocketAddr;

fn recv(stack: &mut Stack, h: berth_core::SocketHandle) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = stack
        .udp_recv_from(h, &mut buf)
        .expect("a datagram is queued");
    buf.truncate(n);
    (buf, from)
}

fn assert_would_block(r: std::io::Result<impl std::fmt::Debug>) {
    let e = r.expect_err("nothing should be queued");
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(errno(&e), Some(11));
}

#[test]
fn udp_over_ip_medium_send_to_recv_from_peek() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let server = net.nodes[1].udp_socket();
    assert_eq!(net.nodes[1].udp_bind(server, any(7)).unwrap(), any(7));
    let client = net.nodes[0].udp_socket();
    let n = net.nodes[0]
        .udp_send_to(net.now, client, b"hello", sa(2, 7))
        .unwrap();
    assert_eq!(n, 5);
    // Ephemeral autobind on the wildcard address, within the default range.
    let local = net.nodes[0].udp_local_addr(client).unwrap();
    assert_eq!(local.ip(), Ipv4Addr::UNSPECIFIED);
    assert!((49152..=65535).contains(&local.port()), "{local}");
    net.settle();

    // One bare IP frame crossed the link: no ARP on Medium::Ip.
    assert_eq!(net.log.len(), 1);
    let (ipr, _) = parse_ip(&net.log[0].bytes).unwrap();
    assert_eq!(
        (ipr.src_addr, ipr.dst_addr, ipr.protocol),
        (ip(1), ip(2), IpProtocol::UDP)
    );
    assert_eq!(ipr.ttl, 64);
    assert_eq!(ipr.payload_len, 8 + 5);

    // Peek leaves it queued; recv_from takes it; then WouldBlock.
    let mut small = [0u8; 3];
    let (n, from) = net.nodes[1].udp_peek_from(server, &mut small).unwrap();
    assert_eq!((n, &small[..]), (3, &b"hel"[..]));
    assert_eq!(from, sa(1, local.port()));
    assert_eq!(net.nodes[1].udp_next_len(server).unwrap(), Some(5));
    let mut buf = [0u8; 64];
    let (n, from2) = net.nodes[1].udp_peek_from(server, &mut buf).unwrap();
    assert_eq!((&buf[..n], from2), (&b"hello"[..], from));
    let (data, from3) = recv(&mut net.nodes[1], server);
    assert_eq!((data.as_slice(), from3), (&b"hello"[..], from));
    assert_would_block(net.nodes[1].udp_recv_from(server, &mut buf));
    assert_would_block(net.nodes[1].udp_peek_from(server, &mut buf));
    assert_eq!(net.nodes[1].udp_next_len(server).unwrap(), None);

    // Reply to the address recv_from gave.
    net.nodes[1]
        .udp_send_to(net.now, server, b"world!", from)
        .unwrap();
    net.settle();
    let (data, from) = recv(&mut net.nodes[0], client);
    assert_eq!((data.as_slice(), from), (&b"world!"[..], sa(2, 7)));

    // A datagram longer than the buffer is truncated and the rest discarded.
    net.nodes[0]
        .udp_send_to(net.now, client, b"0123456789", sa(2, 7))
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, client, b"next", sa(2, 7))
        .unwrap();
    net.settle();
    let mut four = [0u8; 4];
    assert_eq!(net.nodes[1].udp_recv(server, &mut four).unwrap(), 4);
    assert_eq!(&four, b"0123");
    assert_eq!(net.nodes[1].udp_recv(server, &mut four).unwrap(), 4);
    assert_eq!(&four, b"next");

    let (a, b) = (net.nodes[0].stats().clone(), net.nodes[1].stats().clone());
    assert_eq!(a.udp_out_datagrams, 3);
    assert_eq!(a.udp_in_datagrams, 1);
    assert_eq!(b.udp_out_datagrams, 1);
    assert_eq!(b.udp_in_datagrams, 3);
    assert_eq!(b.ip_in_receives, 3);
    assert_eq!(b.ip_in_delivers, 3);
    assert_eq!(a.link_out_frames, 3);
    assert_eq!(b.link_in_frames, 3);
    assert_eq!(a.ip_out_requests, 3);
    assert_eq!(a.arp_requests_sent + b.arp_requests_sent, 0);
    assert_eq!(b.udp_no_ports + b.udp_in_errors + b.udp_in_csum_errors, 0);
}

#[test]
fn udp_over_ethernet_resolves_with_arp() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let server = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(server, any(5353)).unwrap();
    let client = net.nodes[0].udp_socket();
    net.nodes[0].udp_bind(client, sa(1, 0)).unwrap();
    let local = net.nodes[0].udp_local_addr(client).unwrap();
    assert_eq!(local.ip(), ip(1));
    assert!((49152..=65535).contains(&local.port()));

    net.nodes[0]
        .udp_send_to(net.now, client, b"ping over ethernet", sa(2, 5353))
        .unwrap();
    // While resolving: an incomplete entry, and only the ARP request is out.
    assert_eq!(net.nodes[0].neighbors(), vec![(IfaceId(0), ip(2), None)]);
    net.settle();

    // Frame 0: broadcast "who has 192.0.2.2"; frame 1: unicast reply; frame 2: data.
    assert_eq!(net.log.len(), 3, "{:?}", net.log);
    let req = arp_of(&net.log[0].bytes).unwrap();
    assert_eq!(
        eth_dst(&net.log[0].bytes),
        berth_core::wire::EthernetAddress::BROADCAST
    );
    assert_eq!(req.operation, ArpOperation::Request);
    assert_eq!(
        (req.source_protocol_addr, req.target_protocol_addr),
        (ip(1), ip(2))
    );
    assert_eq!(req.source_hardware_addr, mac(1));
    let rep = arp_of(&net.log[1].bytes).unwrap();
    assert_eq!(net.log[1].node, 1);
    assert_eq!(eth_dst(&net.log[1].bytes), mac(1));
    assert_eq!(rep.operation, ArpOperation::Reply);
    assert_eq!(
        (rep.source_protocol_addr, rep.source_hardware_addr),
        (ip(2), mac(2))
    );
    assert_eq!(eth_dst(&net.log[2].bytes), mac(2));
    let pkt = net.ip_of(&net.log[2]).unwrap();
    assert_eq!(parse_ip(pkt).unwrap().0.dst_addr, ip(2));

    assert_eq!(
        net.nodes[0].neighbors(),
        vec![(IfaceId(0), ip(2), Some(mac(2)))]
    );
    // The responder learned the requester from the request (RFC 826 merge).
    assert_eq!(
        net.nodes[1].neighbors(),
        vec![(IfaceId(0), ip(1), Some(mac(1)))]
    );

    let (data, from) = recv(&mut net.nodes[1], server);
    assert_eq!((data.as_slice(), from), (&b"ping over ethernet"[..], local));

    // The reply needs no ARP at all.
    net.nodes[1]
        .udp_send_to(net.now, server, b"pong", from)
        .unwrap();
    net.settle();
    assert_eq!(net.log.len(), 4);
    let (data, from) = recv(&mut net.nodes[0], client);
    assert_eq!((data.as_slice(), from), (&b"pong"[..], sa(2, 5353)));

    let (a, b) = (net.nodes[0].stats(), net.nodes[1].stats());
    assert_eq!((a.arp_requests_sent, a.arp_replies_sent), (1, 0));
    assert_eq!((b.arp_requests_sent, b.arp_replies_sent), (0, 1));
    assert_eq!((a.arp_in, b.arp_in), (1, 1));
    assert_eq!((a.udp_in_datagrams, b.udp_in_datagrams), (1, 1));
    assert_eq!(a.link_out_frames, 2);
    assert_eq!(b.link_out_frames, 2);
}

#[test]
fn connected_socket_sends_receives_and_filters_other_peers() {
    // Three hosts on one hub: 1 = client, 2 = server, 3 = stranger.
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2), cfg(3)], 1500);
    let server = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(server, any(9)).unwrap();
    let client = net.nodes[0].udp_socket();
    net.nodes[0].udp_connect(client, sa(2, 9)).unwrap();
    assert_eq!(net.nodes[0].udp_peer_addr(client).unwrap(), sa(2, 9));
    // After connect the local address is concrete: the route's source.
    let local = net.nodes[0].udp_local_addr(client).unwrap();
    assert_eq!(local.ip(), ip(1));
    assert!((49152..=65535).contains(&local.port()));

    net.nodes[0].udp_send(net.now, client, b"one").unwrap();
    net.settle();
    let (d, from) = recv(&mut net.nodes[1], server);
    assert_eq!((d.as_slice(), from), (&b"one"[..], local));

    // Stranger (also on port 9, from its own socket) writes to the client's port.
    let stranger = net.nodes[2].udp_socket();
    net.nodes[2].udp_bind(stranger, any(9)).unwrap();
    net.nodes[2]
        .udp_send_to(net.now, stranger, b"intruder", local)
        .unwrap();
    // Server writes from another port: also filtered (wrong peer port).
    let server2 = net.nodes[1].udp_socket();
    net.nodes[1]
        .udp_send_to(net.now, server2, b"other port", local)
        .unwrap();
    // And the real peer.
    net.nodes[1]
        .udp_send_to(net.now, server, b"two", local)
        .unwrap();
    net.settle();

    let mut buf = [0u8; 64];
    assert_eq!(net.nodes[0].udp_recv(client, &mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"two");
    assert_would_block(net.nodes[0].udp_recv(client, &mut buf));
    let a = net.nodes[0].stats();
    assert_eq!(
        a.udp_no_ports, 2,
        "intruder and wrong-port datagrams had no socket"
    );
    assert_eq!(a.udp_in_datagrams, 1);
    assert_eq!(a.icmp_out_dest_unreachs, 2);
    // The rejected senders got port unreachable back.
    assert_eq!(net.nodes[2].stats().icmp_in_dest_unreachs, 1);
    assert_eq!(net.nodes[1].stats().icmp_in_dest_unreachs, 1);
    // The unconnected senders do not get an error from it.
    assert_would_block(net.nodes[2].udp_recv(stranger, &mut buf));
    assert_would_block(net.nodes[1].udp_recv(server2, &mut buf));
    // The hub showed the stranger the unicast frames for others; it dropped them.
    assert!(net.nodes[2].stats().link_in_not_for_us > 0);

    // Disconnect: the socket now accepts anyone again.
    net.nodes[0].udp_disconnect(client).unwrap();
    let e = net.nodes[0].udp_peer_addr(client).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
    assert_eq!(errno(&e), Some(107));
    let port = local.port();
    net.nodes[2]
        .udp_send_to(net.now, stranger, b"welcome", sa(1, port))
        .unwrap();
    net.settle();
    let (d, from) = recv(&mut net.nodes[0], client);
    assert_eq!((d.as_slice(), from), (&b"welcome"[..], sa(3, 9)));
    // send() without a peer now needs an address.
    let e = net.nodes[0].udp_send(net.now, client, b"x").unwrap_err();
    assert_eq!(errno(&e), Some(89));

    // Re-connecting to another peer switches the filter.
    net.nodes[0].udp_connect(client, sa(3, 9)).unwrap();
    net.nodes[1]
        .udp_send_to(net.now, server, b"old peer", sa(1, port))
        .unwrap();
    net.nodes[2]
        .udp_send_to(net.now, stranger, b"new peer", sa(1, port))
        .unwrap();
    net.settle();
    let (d, from) = recv(&mut net.nodes[0], client);
    assert_eq!((d.as_slice(), from), (&b"new peer"[..], sa(3, 9)));
    assert_would_block(net.nodes[0].udp_recv(client, &mut buf));
}

#[test]
fn specific_binding_wins_over_wildcard_and_reuseaddr_shares() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let s = &mut net.nodes[1];
    let wild = s.udp_socket();
    let spec = s.udp_socket();
    s.udp_set_reuse_addr(wild, true).unwrap();
    s.udp_set_reuse_addr(spec, true).unwrap();
    s.udp_bind(wild, any(53)).unwrap();
    s.udp_bind(spec, sa(2, 53)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"q", sa(2, 53))
        .unwrap();
    net.settle();
    let mut buf = [0u8; 8];
    assert_eq!(net.nodes[1].udp_recv(spec, &mut buf).unwrap(), 1);
    assert_would_block(net.nodes[1].udp_recv(wild, &mut buf));
    // Closing the specific one hands the port back to the wildcard socket.
    net.nodes[1].close(spec).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"r", sa(2, 53))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[1].udp_recv(wild, &mut buf).unwrap(), 1);
    assert_eq!(buf[0], b'r');
}

#[test]
fn ephemeral_range_from_config_is_honoured() {
    let config = Config {
        ephemeral_ports: 40000..=40015,
        ..cfg(9)
    };
    let mut net = Net::ip_pair(config, cfg(2), 1500);
    let mut seen = std::collections::HashSet::new();
    for i in 0..8 {
        let h = net.nodes[0].udp_socket();
        let l = net.nodes[0].udp_bind(h, any(0)).unwrap();
        assert!((40000..=40015).contains(&l.port()), "{l}");
        assert!(seen.insert(l.port()));
        let h2 = net.nodes[0].udp_socket();
        // Autobind by send_to and by connect use the same range.
        if i % 2 == 0 {
            net.nodes[0]
                .udp_send_to(net.now, h2, b"x", sa(2, 9))
                .unwrap();
        } else {
            net.nodes[0].udp_connect(h2, sa(2, 9)).unwrap();
        }
        let l2 = net.nodes[0].udp_local_addr(h2).unwrap();
        assert!((40000..=40015).contains(&l2.port()), "{l2}");
        assert!(seen.insert(l2.port()));
    }
    // All 16 used: the next one fails with EADDRNOTAVAIL.
    let h = net.nodes[0].udp_socket();
    let e = net.nodes[0].udp_bind(h, any(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    assert_eq!(errno(&e), Some(99));
    let e = net.nodes[0]
        .udp_send_to(net.now, h, b"x", sa(2, 9))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    // A fixed port outside the range is still fine.
    net.nodes[0].udp_bind(h, any(8080)).unwrap();
}

#[test]
fn bind_and_send_errors() {
    let mut net = Net::ip_pair(
        Config {
            ephemeral_ports: 50000..=50002,
            ..cfg(3)
        },
        cfg(4),
        1500,
    );
    let now = net.now;
    let s = &mut net.nodes[0];

    // Bind twice on one socket → EINVAL.
    let a = s.udp_socket();
    s.udp_bind(a, any(5000)).unwrap();
    let e = s.udp_bind(a, any(5001)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(errno(&e), Some(22));

    // Same port on another socket → EADDRINUSE, for the wildcard and specific address.
    let b = s.udp_socket();
    let e = s.udp_bind(b, any(5000)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert_eq!(errno(&e), Some(98));
    let e = s.udp_bind(b, sa(1, 5000)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    // The failed binds left b unbound: it can still bind elsewhere.
    s.udp_bind(b, any(5002)).unwrap();

    // SO_REUSEADDR on both → shared; on only one → still in use.
    let (r1, r2, r3) = (s.udp_socket(), s.udp_socket(), s.udp_socket());
    s.udp_set_reuse_addr(r1, true).unwrap();
    s.udp_set_reuse_addr(r2, true).unwrap();
    s.udp_bind(r1, any(6000)).unwrap();
    s.udp_bind(r2, any(6000)).unwrap();
    let e = s.udp_bind(r3, any(6000)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);

    // Not one of our addresses → EADDRNOTAVAIL.
    let c = s.udp_socket();
    let e = s.udp_bind(c, sa(99, 7000)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    assert_eq!(errno(&e), Some(99));
    // Loopback and our own address are fine.
    s.udp_bind(c, sa4(Ipv4Addr::LOCALHOST, 7000)).unwrap();

    // send on an unconnected socket → EDESTADDRREQ.
    let e = s.udp_send(now, b, b"x").unwrap_err();
    assert_eq!(errno(&e), Some(89));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // peer_addr unconnected → ENOTCONN; local_addr unbound → EINVAL.
    assert_eq!(errno(&s.udp_peer_addr(b).unwrap_err()), Some(107));
    let fresh = s.udp_socket();
    assert_eq!(errno(&s.udp_local_addr(fresh).unwrap_err()), Some(22));
    // Destination / peer port 0 and TTL 0 are invalid.
    assert_eq!(
        errno(&s.udp_send_to(now, b, b"x", sa(2, 0)).unwrap_err()),
        Some(22)
    );
    assert_eq!(errno(&s.udp_connect(b, sa(2, 0)).unwrap_err()), Some(22));
    assert_eq!(errno(&s.udp_connect(b, any(9)).unwrap_err()), Some(22));
    assert_eq!(errno(&s.udp_set_ttl(b, 0).unwrap_err()), Some(22));

    // No route → ENETUNREACH, counted; for send_to and connect.
    let before = s.stats().ip_out_no_routes;
    let e = s
        .udp_send_to(now, b, b"x", sa4(Ipv4Addr::new(203, 0, 113, 5), 9))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NetworkUnreachable);
    assert_eq!(errno(&e), Some(101));
    assert_eq!(s.stats().ip_out_no_routes, before + 1);
    assert_eq!(s.stats().udp_out_datagrams, 0);
    let e = s
        .udp_connect(fresh, sa4(Ipv4Addr::new(203, 0, 113, 5), 9))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NetworkUnreachable);
    // A gateway that is not on-link cannot be added.
    let e = s
        .set_default_gateway(Ipv4Addr::new(198, 51, 100, 1))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NetworkUnreachable);
    // An MTU below 68 is refused.
    let e = s
        .add_interface(berth_core::IfaceConfig {
            medium: berth_core::Medium::Ip,
            address: cidr(Ipv4Addr::new(198, 51, 100, 1), 24),
            mtu: 67,
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    // Exhausted ephemeral range (3 ports) → EADDRNOTAVAIL. The failed connect above
    // already autobound `fresh` (as Linux's inet_autobind does), so two remain.
    let fresh_port = s.udp_local_addr(fresh).unwrap().port();
    assert!((50000..=50002).contains(&fresh_port));
    let mut eph = Vec::new();
    for _ in 0..2 {
        let h = s.udp_socket();
        s.udp_send_to(now, h, b"x", sa(2, 9)).unwrap();
        eph.push(h);
    }
    let h = s.udp_socket();
    let e = s.udp_send_to(now, h, b"x", sa(2, 9)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    // Closing one frees its port for reuse.
    s.close(eph[1]).unwrap();
    s.udp_send_to(now, h, b"x", sa(2, 9)).unwrap();

    // Operations on a closed handle → EBADF, and closing twice is an error.
    let dead = s.udp_socket();
    s.udp_bind(dead, any(7100)).unwrap();
    s.close(dead).unwrap();
    let mut buf = [0u8; 4];
    for e in [
        s.udp_bind(dead, any(7101)).map(|_| ()).unwrap_err(),
        s.udp_send_to(now, dead, b"x", sa(2, 9))
            .map(|_| ())
            .unwrap_err(),
        s.udp_send(now, dead, b"x").map(|_| ()).unwrap_err(),
        s.udp_recv_from(dead, &mut buf).map(|_| ()).unwrap_err(),
        s.udp_peek_from(dead, &mut buf).map(|_| ()).unwrap_err(),
        s.udp_connect(dead, sa(2, 9)).unwrap_err(),
        s.udp_local_addr(dead).map(|_| ()).unwrap_err(),
        s.udp_set_reuse_addr(dead, true).unwrap_err(),
        s.close(dead).unwrap_err(),
        s.raw_send_to(now, dead, b"x", ip(2))
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(errno(&e), Some(9), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
    // Its port was released on close.
    let again = s.udp_socket();
    s.udp_bind(again, any(7100)).unwrap();
    // The slot is reused with a new generation: the stale handle must not reach it.
    assert_ne!(again, dead);
    assert!(s.udp_local_addr(dead).is_err());
    assert_eq!(s.udp_local_addr(again).unwrap(), any(7100));
    // A UDP handle is not a raw socket and vice versa.
    let raw = s.raw_socket(IpProtocol::ICMP).unwrap();
    assert_eq!(errno(&s.raw_set_hdrincl(again, true).unwrap_err()), Some(9));
    assert_eq!(errno(&s.udp_bind(raw, any(1)).unwrap_err()), Some(9));
    // Raw protocol 0 is not supported.
    let e = s.raw_socket(IpProtocol(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(errno(&e), Some(93));
}

#[test]
fn maximum_and_oversized_datagram_sizes() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let c = net.nodes[0].udp_socket();
    let e = net.nodes[0]
        .udp_send_to(net.now, c, &vec![0u8; 65_508], sa(2, 9))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(errno(&e), Some(90));
    assert_eq!(net.pump(), 0, "nothing may be sent");
    assert_eq!(net.nodes[0].stats().udp_out_datagrams, 0);
    // Empty datagrams are legal and delivered as such.
    let s = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(s, any(9)).unwrap();
    net.nodes[0].udp_send_to(net.now, c, b"", sa(2, 9)).unwrap();
    net.settle();
    let mut buf = [0u8; 4];
    let (n, _) = net.nodes[1].udp_recv_from(s, &mut buf).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn bounded_receive_queue_counts_drops_and_drains() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let server = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(server, any(9)).unwrap();
    // Each 100-byte datagram is charged 100 + 256 bytes: 5 fit in 2000.
    net.nodes[1].udp_set_recv_buffer(server, 2000).unwrap();
    let client = net.nodes[0].udp_socket();
    for i in 0..20u8 {
        net.nodes[0]
            .udp_send_to(net.now, client, &[i; 100], sa(2, 9))
            .unwrap();
    }
    net.settle();
    let b = net.nodes[1].stats();
    assert_eq!(b.udp_rcvbuf_errors, 15);
    assert_eq!(b.udp_in_datagrams, 5);
    assert_eq!(b.ip_in_receives, 20);
    let row = net.nodes[1]
        .sockets()
        .into_iter()
        .find(|r| r.handle == server)
        .unwrap();
    assert_eq!(row.drops, 15);
    assert_eq!(row.recv_q, 500);
    // Edge-triggered: one Readable for the whole burst.
    assert_eq!(
        net.nodes[1].poll_event(),
        Some(berth_core::Event {
            handle: server,
            kind: EventKind::Readable
        })
    );
    assert_eq!(net.nodes[1].poll_event(), None);
    // The five that fit are the first five, in order.
    let mut buf = [0u8; 200];
    for i in 0..5u8 {
        let n = net.nodes[1].udp_recv(server, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 100][..]);
    }
    assert_would_block(net.nodes[1].udp_recv(server, &mut buf));
    let row = net.nodes[1]
        .sockets()
        .into_iter()
        .find(|r| r.handle == server)
        .unwrap();
    assert_eq!(row.recv_q, 0);

    // Drained: the queue takes datagrams again, and a fresh Readable edge fires.
    for i in 0..5u8 {
        net.nodes[0]
            .udp_send_to(net.now, client, &[100 + i; 100], sa(2, 9))
            .unwrap();
    }
    net.settle();
    assert_eq!(net.nodes[1].stats().udp_rcvbuf_errors, 15);
    assert_eq!(
        net.nodes[1].poll_event().map(|e| e.kind),
        Some(EventKind::Readable)
    );
    for i in 0..5u8 {
        let n = net.nodes[1].udp_recv(server, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[100 + i; 100][..]);
    }

    // Empty datagrams are bounded too (per-datagram overhead): 7 × 256 ≤ 2000.
    for _ in 0..10 {
        net.nodes[0]
            .udp_send_to(net.now, client, b"", sa(2, 9))
            .unwrap();
    }
    net.settle();
    assert_eq!(net.nodes[1].stats().udp_rcvbuf_errors, 18);
    let mut got = 0;
    while net.nodes[1].udp_recv(server, &mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 7);
}

#[test]
fn socket_snapshot_rows() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let s = &mut net.nodes[1];
    let unbound = s.udp_socket();
    let bound = s.udp_socket();
    s.udp_bind(bound, any(7)).unwrap();
    let conn = s.udp_socket();
    s.udp_connect(conn, sa(1, 4000)).unwrap();
    let conn_local = s.udp_local_addr(conn).unwrap();
    let icmp = s.raw_socket(IpProtocol::ICMP).unwrap();
    let p253 = s.raw_socket(IpProtocol(253)).unwrap();
    s.raw_bind(p253, ip(2)).unwrap();
    assert_eq!(s.socket_count(), 5);

    let c = net.nodes[0].udp_socket();
    net.nodes[0].udp_bind(c, any(4000)).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"12345", sa(2, 7))
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"1234567", sa(2, 7))
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, c, b"abc", conn_local)
        .unwrap();
    net.settle();

    let rows = net.nodes[1].sockets();
    assert_eq!(rows.len(), 5);
    let row = |h| rows.iter().find(|r| r.handle == h).unwrap().clone();

    let r = row(unbound);
    assert_eq!(
        (r.kind, r.kind.netid(), r.state),
        (SocketKind::Udp, "udp", "UNCONN")
    );
    assert_eq!(
        (r.local, r.peer, r.recv_q, r.send_q, r.drops),
        (any(0), None, 0, 0, 0)
    );

    let r = row(bound);
    assert_eq!((r.state, r.local, r.peer), ("UNCONN", any(7), None));
    assert_eq!(
        r.recv_q, 12,
        "Recv-Q counts payload bytes of both datagrams"
    );

    let r = row(conn);
    assert_eq!(r.state, "ESTAB");
    assert_eq!(r.local, conn_local);
    assert_eq!(r.local.ip(), ip(2));
    assert_eq!(r.peer, Some(sa(1, 4000)));
    assert_eq!(r.recv_q, 3);

    let r = row(icmp);
    assert_eq!(
        (r.kind, r.kind.netid()),
        (SocketKind::Raw(IpProtocol::ICMP), "raw")
    );
    assert_eq!(r.local, any(1), "raw sockets show the protocol as port");
    assert_eq!(r.state, "UNCONN");
    let r = row(p253);
    assert_eq!(r.kind, SocketKind::Raw(IpProtocol(253)));
    assert_eq!(r.local, sa(2, 253));
    assert_eq!(r.recv_q, 0);

    net.nodes[1].close(bound).unwrap();
    assert_eq!(net.nodes[1].socket_count(), 4);
    assert!(net.nodes[1].sockets().iter().all(|r| r.handle != bound));
}

#[test]
fn broadcast_udp_is_received_and_not_answered_with_icmp() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2), cfg(3)], 1500);
    let s2 = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(s2, any(67)).unwrap();
    let c = net.nodes[0].udp_socket();
    net.nodes[0]
        .udp_send_to(net.now, c, b"anyone?", sa(255, 67))
        .unwrap();
    net.settle();
    // Broadcast goes out without ARP, to ff:ff:ff:ff:ff:ff.
    assert_eq!(net.log.len(), 1);
    assert_eq!(
        berth_core::wire::EthernetFrame::new_checked(&net.log[0].bytes[..])
            .unwrap()
            .ethertype(),
        EtherType::Ipv4
    );
    assert_eq!(
        eth_dst(&net.log[0].bytes),
        berth_core::wire::EthernetAddress::BROADCAST
    );
    let mut buf = [0u8; 16];
    let (n, from) = net.nodes[1].udp_recv_from(s2, &mut buf).unwrap();
    assert_eq!((&buf[..n], v4(from.ip())), (&b"anyone?"[..], ip(1)));
    // Host 3 has no socket on 67: counted, but no ICMP for a broadcast.
    assert_eq!(net.nodes[2].stats().udp_no_ports, 1);
    assert_eq!(net.nodes[2].stats().icmp_out_msgs, 0);
}

#[test]
fn loopback_to_own_address_is_delivered_locally() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let s = &mut net.nodes[0];
    let a = s.udp_socket();
    s.udp_bind(a, any(1000)).unwrap();
    let b = s.udp_socket();
    s.udp_send_to(net.now, b, b"to myself", sa(1, 1000))
        .unwrap();
    s.udp_send_to(net.now, b, b"via lo", sa4(Ipv4Addr::LOCALHOST, 1000))
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = s.udp_recv_from(a, &mut buf).unwrap();
    assert_eq!((&buf[..n], v4(from.ip())), (&b"to myself"[..], ip(1)));
    let (n, from) = s.udp_recv_from(a, &mut buf).unwrap();
    assert_eq!(
        (&buf[..n], v4(from.ip())),
        (&b"via lo"[..], Ipv4Addr::LOCALHOST)
    );
    assert_eq!(net.pump(), 0, "nothing leaves the host");
}
