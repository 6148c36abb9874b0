//! IPv6 end to end between core stacks: neighbor discovery on Ethernet, UDP,
//! TCP, ICMPv6 echo and errors, fragmentation and reassembly, extension
//! headers, Duplicate Address Detection, router advertisements and SLAAC.
//! Addresses from 2001:db8::/32 and fe80::/10 only.

mod common;

use berth_core::wire::ipv6::{solicited_node, HEADER_LEN};
use berth_core::wire::{
    EthernetAddress, Icmpv6DstUnreachable, Icmpv6Repr, IpProtocol, Ipv6Addr, Ipv6Packet, Ipv6Repr,
    NdpOption, NdpPrefixInfo, NdpRepr, ParamProblemCode, TcpFlags, TcpPacket, TcpRepr,
};
use berth_core::{AddrOrigin, AddrState, Config, Duration, IfaceId, Medium, NeighborState};
use common::v6::{
    cidr6, eth6, frag6_body, icmp6_of, icmp6_packet as icmp_packet, packet6 as packet, s6,
    udp6_packet as udp_packet, v6,
};
use common::*;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};

/// Node i (0-based) gets 2001:db8::(i+1)/64 on interface 0.
fn number(net: &mut Net) {
    for i in 0..net.nodes.len() {
        let now = net.now;
        net.nodes[i]
            .add_address(now, IfaceId(0), cidr6(v6(i as u16 + 1), 64))
            .unwrap();
    }
    net.settle();
}

/// Every IPv6 packet logged from `from` on, with the node that sent it.
fn v6_packets(net: &Net, from: usize) -> Vec<(usize, Vec<u8>)> {
    net.frames_since(from)
        .iter()
        .filter_map(|f| {
            let medium = net.media[f.node][f.iface.0];
            let pkt = match medium {
                Medium::Ethernet(_) => {
                    if f.bytes.len() < 14 || f.bytes[12..14] != [0x86, 0xdd] {
                        return None;
                    }
                    &f.bytes[14..]
                }
                Medium::Ip => &f.bytes[..],
            };
            (pkt.first()? >> 4 == 6).then(|| (f.node, pkt.to_vec()))
        })
        .collect()
}

fn header(pkt: &[u8]) -> Ipv6Repr {
    Ipv6Repr::parse(&Ipv6Packet::new_checked(pkt).unwrap()).unwrap()
}

/// The ICMPv6 message of a packet without extension headers.
fn icmp6(pkt: &[u8]) -> Option<Icmpv6Repr<'_>> {
    icmp6_of(pkt).map(|(_, m)| m)
}

#[test]
fn udp_over_ethernet_resolves_neighbours_with_ndp() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    number(&mut net);
    let start = net.log.len();
    let (a, b) = (net.nodes[0].udp_socket(), net.nodes[1].udp_socket());
    net.nodes[1].udp_bind(b, s6(0, 53)).unwrap_err();
    net.nodes[1]
        .udp_bind(b, "[::]:53".parse::<SocketAddr>().unwrap())
        .unwrap();
    net.nodes[0]
        .udp_send_to(net.now, a, b"query", s6(2, 53))
        .unwrap();
    net.settle();
    let mut buf = [0u8; 64];
    let (n, from) = net.nodes[1].udp_recv_from(b, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"query");
    assert_eq!(from.ip(), IpAddr::V6(v6(1)));
    // The answer needs no solicitation: the NS taught node 1 node 0's MAC.
    net.nodes[1]
        .udp_send_to(net.now, b, b"answer", from)
        .unwrap();
    net.settle();
    let (n, from) = net.nodes[0].udp_recv_from(a, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"answer"[..], s6(2, 53)));

    // On the wire: NS to the solicited-node group, NA back, the datagrams.
    let pkts = v6_packets(&net, start);
    let ns: Vec<_> = pkts
        .iter()
        .filter(|(_, p)| {
            matches!(
                icmp6(p),
                Some(Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit { .. }))
            )
        })
        .collect();
    assert_eq!(ns.len(), 1, "one solicitation resolves both ways");
    let ip = header(&ns[0].1);
    assert_eq!((ip.dst_addr, ip.hop_limit), (solicited_node(&v6(2)), 255));
    let na = pkts
        .iter()
        .find_map(|(_, p)| match icmp6(p) {
            Some(Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
                solicited_flag,
                override_flag,
                target_addr,
                ..
            })) => Some((solicited_flag, override_flag, target_addr)),
            _ => None,
        })
        .unwrap();
    assert_eq!(na, (true, true, v6(2)));
    let n0 = net.nodes[0].neighbor_entries();
    let e = n0.iter().find(|e| e.ip == IpAddr::V6(v6(2))).unwrap();
    assert_eq!((e.state, e.hw), (NeighborState::Reachable, Some(mac(2))));
    assert_eq!(net.nodes[0].stats().ndp_out_solicits, 1);
    assert_eq!(net.nodes[1].stats().ndp_out_adverts, 1);
}

#[test]
fn link_local_addresses_are_made_for_every_interface() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    let eth = net.nodes[0].addresses(IfaceId(0));
    // EUI-64 from 02:00:00:00:00:01 (RFC 4291 App. A flips the U/L bit).
    let ll: Ipv6Addr = "fe80::ff:fe00:1".parse().unwrap();
    assert_eq!(
        eth[1],
        (
            cidr6(ll, 64).into(),
            Some((AddrOrigin::LinkLocal, AddrState::Preferred))
        )
    );
    // Link-local UDP needs no configured address.
    let (a, b) = (net.nodes[0].udp_socket(), net.nodes[1].udp_socket());
    net.nodes[1]
        .udp_bind(b, "[::]:7".parse::<SocketAddr>().unwrap())
        .unwrap();
    let peer: Ipv6Addr = "fe80::ff:fe00:2".parse().unwrap();
    net.nodes[0]
        .udp_send_to(net.now, a, b"hi", SocketAddr::new(peer.into(), 7))
        .unwrap();
    net.settle();
    let mut buf = [0u8; 8];
    let (n, from) = net.nodes[1].udp_recv_from(b, &mut buf).unwrap();
    assert_eq!((&buf[..n], from.ip()), (&b"hi"[..], IpAddr::V6(ll)));

    // A point-to-point IP link gets a stable identifier instead (RFC 7217).
    let pair = Net::ip_pair(cfg(1), cfg(2), 1500);
    let a = pair.nodes[0].addresses(IfaceId(0));
    let b = pair.nodes[1].addresses(IfaceId(0));
    assert_ne!(a[1].0, b[1].0);
    assert!(matches!(a[1].0.address(), IpAddr::V6(x) if x.segments()[0] == 0xfe80));
    assert_eq!(
        Net::ip_pair(cfg(1), cfg(2), 1500).nodes[0].addresses(IfaceId(0)),
        a,
        "the same seed gives the same address"
    );
}

#[test]
fn echo_is_answered_and_closed_ports_get_port_unreachable() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    number(&mut net);
    let start = net.log.len();
    let req = Icmpv6Repr::EchoRequest {
        ident: 7,
        seq_no: 1,
        data: b"ping",
    };
    net.inject(1, IfaceId(0), &icmp_packet(v6(1), v6(2), 64, &req));
    net.settle();
    let pkts = v6_packets(&net, start);
    assert_eq!(pkts.len(), 1);
    let ip = header(&pkts[0].1);
    assert_eq!((ip.src_addr, ip.dst_addr), (v6(2), v6(1)));
    assert_eq!(
        icmp6(&pkts[0].1),
        Some(Icmpv6Repr::EchoReply {
            ident: 7,
            seq_no: 1,
            data: b"ping"
        })
    );
    assert_eq!(net.nodes[1].stats().icmp6_out_echo_reps, 1);

    // A connected UDP socket learns of the closed port.
    let a = net.nodes[0].udp_socket();
    net.nodes[0].udp_connect(a, s6(2, 9999)).unwrap();
    net.nodes[0].udp_send(net.now, a, b"x").unwrap();
    net.settle();
    assert_eq!(net.nodes[1].stats().icmp6_out_dest_unreachs, 1);
    assert_eq!(net.nodes[0].stats().icmp6_in_dest_unreachs, 1);
    let e = net.nodes[0].udp_recv(a, &mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let last = v6_packets(&net, start).pop().unwrap().1;
    assert!(matches!(
        icmp6(&last),
        Some(Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::PortUnreachable,
            ..
        })
    ));
}

#[test]
fn tcp_over_ipv6_offers_mss_of_mtu_minus_60_and_moves_data_both_ways() {
    for eth in [false, true] {
        let mut net = if eth {
            Net::eth_lan(vec![cfg(1), cfg(2)], 1500)
        } else {
            Net::ip_pair(cfg(1), cfg(2), 1500)
        };
        number(&mut net);
        let start = net.log.len();
        let l = net.nodes[1].tcp_socket();
        net.nodes[1]
            .tcp_bind(l, "[::]:80".parse::<SocketAddr>().unwrap())
            .unwrap();
        net.nodes[1].tcp_listen(l, 8).unwrap();
        let c = net.connect(0, s6(2, 80));
        net.settle();
        let (s, peer) = net.nodes[1].tcp_accept(l).unwrap();
        assert_eq!(peer, net.nodes[0].tcp_local_addr(c).unwrap());
        assert_eq!(peer.ip(), IpAddr::V6(v6(1)));
        let syn = v6_packets(&net, start)
            .into_iter()
            .find_map(|(_, p)| {
                let ip = header(&p);
                if ip.next_header != IpProtocol::TCP {
                    return None;
                }
                let t = TcpPacket::new_checked(&p[HEADER_LEN..]).ok()?;
                let r = TcpRepr::parse(&t, &ip.src_addr, &ip.dst_addr).ok()?;
                (r.flags == TcpFlags::SYN).then_some(r.max_seg_size)
            })
            .unwrap();
        assert_eq!(syn, Some(1440));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mut got = Vec::new();
        let mut sent = 0;
        let mut buf = vec![0u8; 65536];
        while got.len() < data.len() {
            if sent < data.len() {
                sent += net.nodes[0]
                    .tcp_send(net.now, c, &data[sent..])
                    .unwrap_or(0);
            }
            net.advance(Duration::from_millis(1));
            while let Ok(n) = net.nodes[1].tcp_recv(net.now, s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, data, "eth={eth}");
        net.nodes[1].tcp_send(net.now, s, b"bye").unwrap();
        net.nodes[1].close(s).unwrap();
        net.advance(Duration::from_millis(5));
        let n = net.nodes[0].tcp_recv(net.now, c, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"bye");
        assert_eq!(net.nodes[0].tcp_recv(net.now, c, &mut buf).unwrap(), 0);
        // Every TCP segment went over IPv6.
        assert!(net.nodes[0].stats().ip6_out_requests > 100);
        assert_eq!(net.nodes[0].stats().ip_out_requests, 0, "eth={eth}");
    }
}

#[test]
fn large_datagrams_are_fragmented_and_reassembled() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1280);
    number(&mut net);
    let start = net.log.len();
    let (a, b) = (net.nodes[0].udp_socket(), net.nodes[1].udp_socket());
    net.nodes[1].udp_bind(b, s6(2, 9)).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    net.nodes[0]
        .udp_send_to(net.now, a, &data, s6(2, 9))
        .unwrap();
    net.settle();
    let mut buf = vec![0u8; 8000];
    let (n, _) = net.nodes[1].udp_recv_from(b, &mut buf).unwrap();
    assert_eq!(&buf[..n], &data[..]);
    let frags = v6_packets(&net, start);
    assert_eq!(frags.len(), 5);
    for (_, f) in &frags {
        assert!(f.len() <= 1280);
        assert_eq!(header(f).next_header, IpProtocol::IPV6_FRAG);
    }
    let s = net.nodes[0].stats();
    assert_eq!((s.ip6_frag_oks, s.ip6_frag_creates), (1, 5));
    assert_eq!(net.nodes[1].stats().ip6_reasm_oks, 1);
}

/// A fragment of a UDP datagram from 2001:db8::1 to ::2 (port 9).
fn fragment(ident: u32, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let body = frag6_body(IpProtocol::UDP, ident, offset, more, data);
    packet(v6(1), v6(2), IpProtocol::IPV6_FRAG, 64, &body)
}

#[test]
fn overlapping_and_incomplete_fragments_are_dropped_and_counted() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    number(&mut net);
    let b = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(b, s6(2, 9)).unwrap();
    let whole = udp_packet(s6(1, 5), s6(2, 9), &[0x55; 64]);
    let udp = &whole[HEADER_LEN..];
    // RFC 5722: an overlap drops the datagram, even if it would complete.
    net.inject(1, IfaceId(0), &fragment(1, 0, true, &udp[..32]));
    net.inject(1, IfaceId(0), &fragment(1, 24, false, &udp[24..]));
    net.settle();
    assert_eq!(net.nodes[1].stats().ip6_reasm_overlap, 1);
    assert!(net.nodes[1].udp_recv(b, &mut [0u8; 80]).is_err());
    // In order it completes; an atomic fragment (RFC 6946) needs no partner.
    net.inject(1, IfaceId(0), &fragment(2, 0, true, &udp[..32]));
    net.inject(1, IfaceId(0), &fragment(2, 32, false, &udp[32..]));
    net.inject(1, IfaceId(0), &fragment(3, 0, false, udp));
    net.settle();
    assert_eq!(net.nodes[1].udp_recv(b, &mut [0u8; 80]).unwrap(), 64);
    assert_eq!(net.nodes[1].udp_recv(b, &mut [0u8; 80]).unwrap(), 64);
    assert_eq!(net.nodes[1].stats().ip6_atomic_frags, 1);
    // A first fragment alone times out (60 s in IPv6; berth's reassembly
    // timeout is shared) with Time Exceeded to the sender.
    let start = net.log.len();
    net.inject(1, IfaceId(0), &fragment(4, 0, true, &udp[..32]));
    assert_eq!(net.nodes[1].reassembly_pending(), 1);
    net.advance(Config::default().reassembly_timeout + Duration::from_secs(1));
    assert_eq!(net.nodes[1].reassembly_pending(), 0);
    assert_eq!(net.nodes[1].stats().ip6_reasm_timeout, 1);
    assert_eq!(net.nodes[1].stats().icmp6_out_time_excds, 1);
    let te = v6_packets(&net, start)
        .into_iter()
        .filter(|(n, _)| *n == 1)
        .count();
    assert_eq!(te, 1);
}

#[test]
fn bad_extension_headers_get_parameter_problems() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    number(&mut net);
    let start = net.log.len();
    // Routing header type 0 with segments left (RFC 5095): code 0 at its
    // routing type.
    let rh0 = [IpProtocol::UDP.0, 0, 0, 1, 0, 0, 0, 0];
    net.inject(
        1,
        IfaceId(0),
        &packet(v6(1), v6(2), IpProtocol::IPV6_ROUTE, 64, &rh0),
    );
    // Hop-by-hop after another header: code 1 at the field naming it.
    let dst_opts = [IpProtocol::HOPOPT.0, 0, 1, 4, 0, 0, 0, 0];
    let hbh = [IpProtocol::UDP.0, 0, 1, 4, 0, 0, 0, 0];
    let mut chain = dst_opts.to_vec();
    chain.extend_from_slice(&hbh);
    net.inject(
        1,
        IfaceId(0),
        &packet(v6(1), v6(2), IpProtocol::IPV6_OPTS, 64, &chain),
    );
    // An unknown upper layer: code 1 at the fixed header's Next Header.
    net.inject(
        1,
        IfaceId(0),
        &packet(v6(1), v6(2), IpProtocol(253), 64, &[0; 8]),
    );
    // A chain that runs past the packet: dropped silently.
    net.inject(
        1,
        IfaceId(0),
        &packet(v6(1), v6(2), IpProtocol::IPV6_OPTS, 64, &[17, 9, 0, 0]),
    );
    net.settle();
    let problems: Vec<_> = v6_packets(&net, start)
        .into_iter()
        .filter_map(|(_, p)| match icmp6(&p) {
            Some(Icmpv6Repr::ParamProblem {
                reason, pointer, ..
            }) => Some((reason, pointer)),
            _ => None,
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            (ParamProblemCode::ErroneousHeaderField, 42),
            (ParamProblemCode::UnrecognizedNextHeader, 40),
            (ParamProblemCode::UnrecognizedNextHeader, 6),
        ]
    );
    let s = net.nodes[1].stats();
    assert_eq!(s.ip6_in_hdr_errors, 3);
    assert_eq!(s.ip6_in_unknown_protos, 1);
    assert_eq!(s.icmp6_out_parm_problems, 3);
}

#[test]
fn duplicate_address_detection_finds_a_conflict() {
    let dad = Config {
        dad_transmits: 1,
        ..cfg(1)
    };
    let mut net = Net::eth_lan(
        vec![
            dad.clone(),
            Config {
                seed: Some(2),
                ..dad
            },
        ],
        1500,
    );
    // Both link-locals are tentative for a second, then usable.
    let ll = |net: &Net, n: usize| net.nodes[n].addresses(IfaceId(0))[1].1;
    assert_eq!(
        ll(&net, 0),
        Some((AddrOrigin::LinkLocal, AddrState::Tentative { left: 1 }))
    );
    net.advance(Duration::from_millis(1100));
    assert_eq!(
        ll(&net, 0),
        Some((AddrOrigin::LinkLocal, AddrState::Preferred))
    );
    assert_eq!(net.nodes[0].stats().ndp_dad_ok, 1);
    // Each node's DAD probe went to a group only its sender joined: the other
    // filtered it at the link layer, as a NIC's multicast filter does.
    let s1 = net.nodes[1].stats();
    assert_eq!((s1.link_in_multicast_filtered, s1.ip6_in_receives), (1, 0));
    // Node 0 holds 2001:db8::7; node 1 tries the same and finds it taken.
    let now = net.now;
    net.nodes[0]
        .add_address(now, IfaceId(0), cidr6(v6(7), 64))
        .unwrap();
    net.advance(Duration::from_millis(1100));
    let start = net.log.len();
    net.nodes[1]
        .add_address(net.now, IfaceId(0), cidr6(v6(7), 64))
        .unwrap();
    net.advance(Duration::from_millis(1100));
    let a = net.nodes[1].addresses(IfaceId(0));
    assert_eq!(a[2].1, Some((AddrOrigin::Manual, AddrState::Duplicate)));
    assert_eq!(net.nodes[1].stats().ndp_dad_failed, 1);
    // The DAD probe came from :: to the solicited-node group; node 0's NA went
    // to all nodes.
    let pkts = v6_packets(&net, start);
    let probe = header(&pkts[0].1);
    assert_eq!(
        (probe.src_addr, probe.dst_addr),
        (Ipv6Addr::UNSPECIFIED, solicited_node(&v6(7)))
    );
    let na = pkts.iter().find(|(n, _)| *n == 0).unwrap();
    assert_eq!(
        header(&na.1).dst_addr,
        "ff02::1".parse::<Ipv6Addr>().unwrap()
    );
    // A duplicate is never a source.
    let u = net.nodes[1].udp_socket();
    assert!(net.nodes[1].udp_bind(u, s6(7, 1)).is_err());
}

/// A router advertisement from fe80::1 (MAC 02:00:00:00:00:99).
fn router_advert(
    hop: u8,
    lifetime: u16,
    prefix: Ipv6Addr,
    valid: u32,
    mtu: Option<u32>,
) -> Vec<u8> {
    let router_mac = EthernetAddress([2, 0, 0, 0, 0, 0x99]);
    let mut opts = vec![0u8; 8 + 32 + 8];
    let mut list = vec![
        NdpOption::SourceLinkLayerAddr(router_mac),
        NdpOption::PrefixInfo(NdpPrefixInfo {
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: valid,
            preferred_lifetime: valid / 2,
            prefix,
        }),
    ];
    if let Some(m) = mtu {
        list.push(NdpOption::Mtu(m));
    }
    let n = NdpOption::emit_all(&list, &mut opts);
    let ra = Icmpv6Repr::Ndp(NdpRepr::RouterAdvert {
        cur_hop_limit: 64,
        managed_flag: false,
        other_flag: false,
        router_lifetime: lifetime,
        reachable_time: 0,
        retrans_timer: 0,
        options: &opts[..n],
    });
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let dst: Ipv6Addr = "ff02::1".parse().unwrap();
    eth6(
        router_mac,
        EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        &icmp_packet(src, dst, hop, &ra),
    )
}

#[test]
fn router_advertisements_give_slaac_addresses_a_default_route_and_an_mtu() {
    let mut net = Net::eth_lan(vec![cfg(1)], 1500);
    let start = net.log.len();
    net.nodes[0].set_autoconf(net.now, IfaceId(0)).unwrap();
    net.settle();
    // Router solicitations: three, 4 s apart, from the link-local address.
    net.advance(Duration::from_secs(9));
    let rs = v6_packets(&net, start)
        .into_iter()
        .filter(|(_, p)| {
            matches!(
                icmp6(p),
                Some(Icmpv6Repr::Ndp(NdpRepr::RouterSolicit { .. }))
            )
        })
        .count();
    assert_eq!(rs, 3);
    let prefix: Ipv6Addr = "2001:db8:1::".parse().unwrap();
    // Hop limit 254: not from a neighbour, dropped (RFC 4861 §6.1.2).
    net.inject(
        0,
        IfaceId(0),
        &router_advert(254, 1800, prefix, 3600, Some(1400)),
    );
    assert_eq!(net.nodes[0].stats().ndp_in_invalid, 1);
    assert_eq!(net.nodes[0].addresses(IfaceId(0)).len(), 2);
    net.inject(
        0,
        IfaceId(0),
        &router_advert(255, 1800, prefix, 3600, Some(1400)),
    );
    net.settle();
    let addrs = net.nodes[0].addresses(IfaceId(0));
    let slaac = addrs
        .iter()
        .find(|(_, s)| matches!(s, Some((AddrOrigin::Autoconf, _))))
        .unwrap();
    let IpAddr::V6(a) = slaac.0.address() else {
        panic!()
    };
    assert_eq!(a.segments()[..4], prefix.segments()[..4]);
    // RFC 7217: stable, and not the MAC's EUI-64.
    assert_ne!(a.segments()[4..], [0x0000, 0x00ff, 0xfe00, 0x0001]);
    let default = net.nodes[0]
        .routes()
        .find(|r| r.dest.prefix_len() == 0 && r.dest.address().is_ipv6())
        .copied()
        .unwrap();
    assert_eq!(default.gateway, Some("fe80::1".parse().unwrap()));
    assert_eq!(net.nodes[0].stats().ndp_slaac_addrs, 1);
    // The address expires with its valid lifetime, the route with the router's.
    net.advance(Duration::from_secs(3601));
    assert_eq!(net.nodes[0].addresses(IfaceId(0)).len(), 2);
    assert!(net.nodes[0].routes().all(|r| r.gateway.is_none()));
    assert_eq!(net.nodes[0].stats().ndp_addrs_expired, 1);
}

#[test]
fn unsolicited_advertisements_and_bad_ndp_are_ignored() {
    let mut net = Net::eth_lan(vec![cfg(1)], 1500);
    number(&mut net);
    let other = EthernetAddress([2, 0, 0, 0, 0, 0x42]);
    let mut opts = [0u8; 8];
    NdpOption::emit_all(&[NdpOption::TargetLinkLayerAddr(other)], &mut opts);
    let na = Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
        router_flag: false,
        solicited_flag: false,
        override_flag: true,
        target_addr: v6(9),
        options: &opts,
    });
    let all: Ipv6Addr = "ff02::1".parse().unwrap();
    net.inject(
        0,
        IfaceId(0),
        &eth6(
            other,
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            &icmp_packet(v6(9), all, 255, &na),
        ),
    );
    assert_eq!(net.nodes[0].stats().ndp_in_unsolicited_ignored, 1);
    assert!(net.nodes[0].neighbor_entries().is_empty());
    // An NS for one of our addresses from a non-neighbour (hop limit 64).
    let ns = Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit {
        target_addr: v6(1),
        options: &[],
    });
    net.inject(
        0,
        IfaceId(0),
        &eth6(other, mac(1), &icmp_packet(v6(9), v6(1), 64, &ns)),
    );
    assert_eq!(net.nodes[0].stats().ndp_in_invalid, 1);
    assert_eq!(net.nodes[0].stats().ndp_out_adverts, 0);
}

#[test]
fn raw_icmpv6_sockets_ping_with_stack_checksums() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    number(&mut net);
    let r = net.nodes[0].raw_socket_v6(IpProtocol::ICMPV6).unwrap();
    // Type 128 code 0, checksum left 0 for the stack, ident 0x4242, seq 1.
    let req = [128, 0, 0, 0, 0x42, 0x42, 0, 1, b'p', b'i', b'n', b'g'];
    net.nodes[0]
        .raw_send_to(net.now, r, &req, IpAddr::V6(v6(2)))
        .unwrap();
    net.settle();
    assert_eq!(net.nodes[1].stats().icmp6_in_csum_errors, 0);
    assert_eq!(net.nodes[1].stats().icmp6_out_echo_reps, 1);
    let mut buf = [0u8; 64];
    let (n, meta) = net.nodes[0].raw_recv_meta(r, &mut buf).unwrap();
    assert_eq!(meta.from, IpAddr::V6(v6(2)));
    assert_eq!(meta.to, IpAddr::V6(v6(1)));
    // The header is not in the data: its hop limit comes with it
    // (IPV6_RECVHOPLIMIT, RFC 3542 §6.3), the replier's default of 64.
    assert_eq!(meta.hop_limit, 64);
    // The reply without its IPv6 header (RFC 3542 §3).
    assert_eq!((buf[0], &buf[4..n]), (129, &req[4..]));
    // Families do not mix.
    let e = net.nodes[0]
        .raw_send_to(net.now, r, &req, IpAddr::from([192, 0, 2, 2]))
        .unwrap_err();
    assert_eq!(berth_core::errno(&e), Some(97));
    assert!(net.nodes[0].raw_set_hdrincl(r, true).is_err());
    let rows = net.nodes[0].sockets();
    assert!(rows
        .iter()
        .any(|row| row.handle == r && row.local == "[::]:58".parse().unwrap()));
}

#[test]
fn neighbour_unreachability_detection_probes_by_unicast() {
    let mut net = Net::eth_lan(vec![cfg(1), cfg(2)], 1500);
    number(&mut net);
    let (a, b) = (net.nodes[0].udp_socket(), net.nodes[1].udp_socket());
    net.nodes[1].udp_bind(b, s6(2, 9)).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, a, b"1", s6(2, 9))
        .unwrap();
    net.settle();
    let state = |net: &Net| {
        net.nodes[0]
            .neighbor_entries()
            .into_iter()
            .find(|e| e.ip == IpAddr::V6(v6(2)))
            .map(|e| e.state)
    };
    assert_eq!(state(&net), Some(NeighborState::Reachable));
    // RFC 4861 §6.3.2: ReachableTime is 15–45 s (30 s × 0.5–1.5).
    net.advance(Duration::from_secs(46));
    assert_eq!(state(&net), Some(NeighborState::Stale));
    // A packet to a STALE neighbour goes out at once (DELAY), and 5 s later
    // (DELAY_FIRST_PROBE_TIME) a unicast solicitation probes it (PROBE); the
    // solicited advertisement makes it REACHABLE again.
    let start = net.log.len();
    net.nodes[0]
        .udp_send_to(net.now, a, b"2", s6(2, 9))
        .unwrap();
    net.settle();
    assert_eq!(state(&net), Some(NeighborState::Delay));
    assert_eq!(net.nodes[1].udp_recv(b, &mut [0u8; 4]).unwrap(), 1);
    net.advance(Duration::from_secs(6));
    assert_eq!(state(&net), Some(NeighborState::Reachable));
    let probes: Vec<_> = v6_packets(&net, start)
        .into_iter()
        .filter(|(n, p)| {
            *n == 0
                && matches!(
                    icmp6(p),
                    Some(Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit { .. }))
                )
        })
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!(
        header(&probes[0].1).dst_addr,
        v6(2),
        "unicast, not solicited-node"
    );
    assert_eq!(net.nodes[0].stats().neigh_ucast_probes, 1);
}

#[test]
fn a_link_local_router_can_be_the_default_gateway() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    number(&mut net);
    let router: Ipv6Addr = "fe80::1".parse().unwrap();
    net.nodes[0].set_default_gateway(router).unwrap();
    let default = net.nodes[0]
        .routes()
        .find(|r| r.dest.prefix_len() == 0)
        .copied()
        .unwrap();
    assert_eq!(
        (default.gateway, default.iface),
        (Some(router.into()), IfaceId(0))
    );
    let start = net.log.len();
    let a = net.nodes[0].udp_socket();
    let far: SocketAddr = "[2001:db8:9::1]:9".parse().unwrap();
    net.nodes[0]
        .udp_send_to(net.now, a, b"off-link", far)
        .unwrap();
    net.settle();
    let out = v6_packets(&net, start);
    assert_eq!(out.len(), 1);
    assert_eq!(
        header(&out[0].1).dst_addr,
        "2001:db8:9::1".parse::<Ipv6Addr>().unwrap()
    );
    // Delivered UDP counts as IPv6 (Ip6InDelivers), not IPv4.
    let b = net.nodes[1].udp_socket();
    net.nodes[1].udp_bind(b, s6(2, 9)).unwrap();
    net.nodes[0]
        .udp_send_to(net.now, a, b"x", s6(2, 9))
        .unwrap();
    net.settle();
    let s = net.nodes[1].stats();
    assert_eq!((s.ip6_in_delivers, s.ip_in_delivers), (1, 0));
}
