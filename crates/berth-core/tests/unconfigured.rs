//! What a DHCP client needs from the core (RFC 2131 §4.1): an Ethernet
//! interface without an address (0.0.0.0/32) sends limited broadcasts from
//! 0.0.0.0 out of the interface a UDP socket is bound to, receives broadcasts
//! on port 68, answers no ARP for 0.0.0.0, and takes the leased address and
//! its connected route later.

mod common;

use berth_core::wire::{ArpOperation, EtherType, EthernetAddress, IpProtocol, Ipv4Addr, UdpPacket};
use berth_core::{IfaceConfig, IfaceId, Medium, Stack};
use common::*;
use std::net::{IpAddr, SocketAddr};

fn unconfigured() -> (Stack, IfaceId, IfaceId) {
    let mut s = Stack::new(cfg(7));
    // A configured interface first, so "the first interface" is the wrong one.
    let lan = s
        .add_interface(IfaceConfig {
            medium: Medium::Ethernet(mac(1)),
            address: cidr(Ipv4Addr::new(198, 51, 100, 1), 24),
            mtu: 1500,
        })
        .unwrap();
    let dhcp = s
        .add_interface(IfaceConfig {
            medium: Medium::Ethernet(mac(2)),
            address: cidr(Ipv4Addr::UNSPECIFIED, 32),
            mtu: 1500,
        })
        .unwrap();
    (s, lan, dhcp)
}

fn bcast(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::BROADCAST.into(), port)
}

#[test]
fn broadcast_leaves_the_bound_interface_from_its_address() {
    let (mut s, lan, dhcp) = unconfigured();
    let now = t0();
    let h = s.udp_socket();
    s.udp_bind(h, any(68)).unwrap();
    s.udp_bind_device(h, Some(dhcp)).unwrap();
    s.udp_send_to(now, h, b"discover", bcast(67)).unwrap();
    let t = s.poll_transmit(now).expect("a broadcast frame");
    assert_eq!(t.iface, dhcp);
    assert_eq!(eth_dst(&t.frame), EthernetAddress::BROADCAST);
    let (ipr, payload) = parse_ip(ip_packet(Medium::Ethernet(mac(2)), &t.frame).unwrap()).unwrap();
    assert_eq!(ipr.src_addr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(ipr.dst_addr, Ipv4Addr::BROADCAST);
    assert_eq!(ipr.protocol, IpProtocol::UDP);
    let udp = UdpPacket::new_checked(payload).unwrap();
    assert!(udp.verify_checksum(&IpAddr::from(ipr.src_addr), &IpAddr::from(ipr.dst_addr)));
    assert_eq!((udp.src_port(), udp.dst_port()), (68, 67));
    assert_eq!(udp.payload(), b"discover");
    assert!(s.poll_transmit(now).is_none());

    // Not bound to a device: the first interface, from its address.
    s.udp_bind_device(h, None).unwrap();
    s.udp_send_to(now, h, b"x", bcast(67)).unwrap();
    let t = s.poll_transmit(now).unwrap();
    assert_eq!(t.iface, lan);
    let (ipr, _) = parse_ip(ip_packet(Medium::Ethernet(mac(1)), &t.frame).unwrap()).unwrap();
    assert_eq!(ipr.src_addr, Ipv4Addr::new(198, 51, 100, 1));
    assert!(s.udp_bind_device(h, Some(IfaceId(9))).is_err());
}

#[test]
fn broadcast_reaches_port_68_and_no_arp_for_zero() {
    let (mut s, _lan, dhcp) = unconfigured();
    let now = t0();
    let h = s.udp_socket();
    s.udp_bind(h, any(68)).unwrap();
    let server = SocketAddr::new(ip(1).into(), 67);
    let pkt = build_udp(server, bcast(68), 1, b"offer");
    s.receive(
        now,
        dhcp,
        &eth(mac(9), EthernetAddress::BROADCAST, EtherType::Ipv4, &pkt),
    );
    let mut buf = [0u8; 16];
    let (n, from) = s.udp_recv_from(h, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"offer"[..], server));

    // Someone asking for 0.0.0.0 gets no answer from an unconfigured interface.
    let req = arp_frame(
        ArpOperation::Request,
        mac(9),
        ip(1),
        EthernetAddress([0; 6]),
        Ipv4Addr::UNSPECIFIED,
        EthernetAddress::BROADCAST,
    );
    s.receive(now, dhcp, &req);
    assert!(drain(&mut s, now).is_empty());
    assert!(!s.is_local_addr(Ipv4Addr::UNSPECIFIED));
}

#[test]
fn leased_address_replaces_the_connected_route() {
    let (mut s, _lan, dhcp) = unconfigured();
    let leased = cidr(ip(50), 24);
    s.set_ipv4_address(dhcp, leased).unwrap();
    assert!(s.is_local_addr(ip(50)));
    assert_eq!(s.source_for(ip(1)).unwrap(), IpAddr::from(ip(50)));
    let routes: Vec<_> = s
        .routes()
        .filter(|r| r.iface == dhcp)
        .map(|r| r.dest.to_string())
        .collect();
    assert_eq!(routes, ["192.0.2.0/24"]);
    s.set_default_gateway(ip(1)).unwrap();
    assert_eq!(
        s.source_for(Ipv4Addr::new(203, 0, 113, 1)).unwrap(),
        IpAddr::from(ip(50))
    );
    // Lease over: the default route and the address go.
    let any4: berth_core::wire::IpCidr = "0.0.0.0/0".parse().unwrap();
    assert!(s.remove_route(any4));
    assert!(!s.remove_route(any4));
    s.set_ipv4_address(dhcp, cidr(Ipv4Addr::UNSPECIFIED, 32))
        .unwrap();
    assert!(!s.is_local_addr(ip(50)));
    assert!(s.source_for(ip(1)).is_err());
    assert!(s.set_ipv4_address(IfaceId(5), leased).is_err());
}
