//! IPv6 packet builders and a health probe for tests that hand-craft input.
//! Addresses from 2001:db8::/32 and fe80::/10 only.

use super::drain;
use berth_core::wire::ipv6::{multicast_mac, HEADER_LEN};
use berth_core::wire::{
    EtherType, EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Addr, Ipv6Cidr,
    Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr, NdpOption, NdpRepr, UdpRepr,
};
use berth_core::{IfaceId, Instant, Medium, Stack};
use std::net::{IpAddr, SocketAddr};

/// 2001:db8::n.
pub fn v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)
}

/// Two stacks on an IP link, each with both families: 192.0.2.{1,2} and
/// 2001:db8::{1,2}.
pub fn dual_pair() -> super::Net {
    let mut net = super::Net::ip_pair(super::cfg(1), super::cfg(2), 1500);
    for i in 0..2 {
        let now = net.now;
        net.nodes[i]
            .add_address(now, IfaceId(0), cidr6(v6(i as u16 + 1), 64))
            .unwrap();
    }
    net
}

/// [2001:db8::n]:port.
pub fn s6(n: u16, port: u16) -> SocketAddr {
    SocketAddr::new(v6(n).into(), port)
}

pub fn cidr6(a: Ipv6Addr, len: u8) -> Ipv6Cidr {
    Ipv6Cidr::new(a, len).unwrap()
}

/// A whole IPv6 packet: fixed header, then `payload` (extension headers included).
pub fn packet6(src: Ipv6Addr, dst: Ipv6Addr, next: IpProtocol, hop: u8, payload: &[u8]) -> Vec<u8> {
    let r = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit: hop,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b);
    b[HEADER_LEN..].copy_from_slice(payload);
    b
}

/// The bytes of an ICMPv6 message (checksum over `src`/`dst`).
pub fn icmp6_bytes(src: Ipv6Addr, dst: Ipv6Addr, msg: &Icmpv6Repr) -> Vec<u8> {
    let mut body = vec![0u8; msg.buffer_len()];
    msg.emit(&mut body, &src, &dst);
    body
}

pub fn icmp6_packet(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, msg: &Icmpv6Repr) -> Vec<u8> {
    packet6(
        src,
        dst,
        IpProtocol::ICMPV6,
        hop,
        &icmp6_bytes(src, dst, msg),
    )
}

/// A UDP datagram's bytes (header and data) over the IPv6 pseudo-header.
pub fn udp6_bytes(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src.ip(), dst.ip()) else {
        panic!("IPv6 addresses expected")
    };
    let u = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        payload: data,
    };
    let mut seg = vec![0u8; u.buffer_len()];
    u.emit(&mut seg, &s, &d);
    seg
}

pub fn udp6_packet(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src.ip(), dst.ip()) else {
        panic!("IPv6 addresses expected")
    };
    packet6(s, d, IpProtocol::UDP, 64, &udp6_bytes(src, dst, data))
}

/// A fragment header (`next` after reassembly) followed by `data`.
pub fn frag6_body(next: IpProtocol, ident: u32, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8; 8 + data.len()];
    Ipv6FragmentRepr {
        next_header: next,
        frag_offset: offset,
        more_frags: more,
        ident,
    }
    .emit(&mut body);
    body[8..].copy_from_slice(data);
    body
}

/// An options header (hop-by-hop or destination options) of `8 * (len8 + 1)`
/// bytes, PadN only, followed by `rest`.
pub fn opts_header(next: IpProtocol, len8: u8, rest: &[u8]) -> Vec<u8> {
    let size = 8 * (len8 as usize + 1);
    let mut h = vec![0u8; size];
    h[0] = next.0;
    h[1] = len8;
    h[2] = 1; // PadN
    h[3] = (size - 4) as u8;
    h.extend_from_slice(rest);
    h
}

/// An Ethernet II frame carrying an IPv6 packet.
pub fn eth6(src: EthernetAddress, dst: EthernetAddress, pkt: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + pkt.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
    f.extend_from_slice(pkt);
    f
}

/// `pkt` as it arrives on `medium` from `peer_mac`: on Ethernet addressed to the
/// destination's multicast MAC or to the interface's own.
pub fn frame6(medium: Medium, peer_mac: EthernetAddress, pkt: &[u8]) -> Vec<u8> {
    match medium {
        Medium::Ip => pkt.to_vec(),
        Medium::Ethernet(me) => {
            let dst = pkt
                .get(24..40)
                .and_then(|d| <[u8; 16]>::try_from(d).ok())
                .and_then(|d| multicast_mac(&Ipv6Addr::from(d)))
                .unwrap_or(me);
            eth6(peer_mac, dst, pkt)
        }
    }
}

/// The ICMPv6 message of an IPv6 packet without extension headers.
pub fn icmp6_of(pkt: &[u8]) -> Option<(Ipv6Repr, Icmpv6Repr<'_>)> {
    let ip = Ipv6Repr::parse(&Ipv6Packet::new_checked(pkt).ok()?).ok()?;
    if ip.next_header != IpProtocol::ICMPV6 {
        return None;
    }
    let p = Icmpv6Packet::new_checked(pkt.get(HEADER_LEN..)?).ok()?;
    Some((ip, Icmpv6Repr::parse(&p, &ip.src_addr, &ip.dst_addr).ok()?))
}

/// Does `stack` (alone, interface 0 of `medium`, address `me`) answer an ICMPv6
/// echo request from `peer` (`peer_mac` on Ethernet)? Neighbour solicitations for
/// the peer are answered; the reply is accepted whatever its destination MAC.
pub fn answers_ping6(
    stack: &mut Stack,
    now: Instant,
    medium: Medium,
    me: Ipv6Addr,
    peer: Ipv6Addr,
    peer_mac: EthernetAddress,
    seq: u16,
) -> bool {
    let req = Icmpv6Repr::EchoRequest {
        ident: 0xbeef,
        seq_no: seq,
        data: b"still alive?",
    };
    let ping = icmp6_packet(peer, me, 64, &req);
    stack.receive(now, IfaceId(0), &frame6(medium, peer_mac, &ping));
    for _round in 0..4 {
        let out = drain(stack, now);
        if out.is_empty() {
            return false;
        }
        for f in out {
            let pkt = match medium {
                Medium::Ip => &f[..],
                Medium::Ethernet(_) if f.len() > 14 && f[12..14] == [0x86, 0xdd] => &f[14..],
                Medium::Ethernet(_) => continue,
            };
            match icmp6_of(pkt) {
                Some((ip, Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit { target_addr, .. })))
                    if target_addr == peer =>
                {
                    let mut opts = [0u8; 8];
                    NdpOption::emit_all(&[NdpOption::TargetLinkLayerAddr(peer_mac)], &mut opts);
                    let na = Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
                        router_flag: false,
                        solicited_flag: true,
                        override_flag: true,
                        target_addr: peer,
                        options: &opts,
                    });
                    let dst = if ip.src_addr.is_unspecified() {
                        "ff02::1".parse().unwrap()
                    } else {
                        ip.src_addr
                    };
                    let reply = icmp6_packet(peer, dst, 255, &na);
                    stack.receive(now, IfaceId(0), &frame6(medium, peer_mac, &reply));
                }
                Some((
                    ip,
                    Icmpv6Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    },
                )) if ip.dst_addr == peer
                    && ident == 0xbeef
                    && seq_no == seq
                    && data == b"still alive?" =>
                {
                    return true;
                }
                _ => {}
            }
        }
    }
    false
}
