//! `Stack::pair` gives both families; `connect_memory` + `add_address` build
//! other IPv6 links; TCP and UDP run over IPv6 through the std-shaped API.

use berth::core::Config;
use berth::wire::IpCidr;
use berth::{Stack, TcpListener, TcpStream, UdpSocket};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn pair_has_both_families_usable_at_once() {
    let (a, b) = Stack::pair().unwrap();
    let ifaces =
        |s: &Stack| s.with_core(|c, _| c.interfaces().map(|(id, _)| id).collect::<Vec<_>>());
    let addrs: Vec<String> = a
        .addresses(ifaces(&a)[0])
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    assert_eq!(addrs[0], "192.0.2.1/24");
    assert!(addrs.contains(&"2001:db8::1/64".to_string()), "{addrs:?}");
    // Link-local too, as every interface has.
    assert!(addrs.iter().any(|a| a.starts_with("fe80::")), "{addrs:?}");
    assert!(b
        .addresses(ifaces(&b)[0])
        .iter()
        .any(|(c, _)| c.to_string() == "2001:db8::2/64"));

    // TCP over IPv6, no DAD wait on a memory link.
    let l = TcpListener::bind(&b, "[2001:db8::2]:7").unwrap();
    let mut s = TcpStream::connect(&a, "[2001:db8::2]:7").unwrap();
    let (mut c, from) = l.accept().unwrap();
    assert_eq!(from, s.local_addr().unwrap());
    assert_eq!(from.ip(), sa("[2001:db8::1]:0").ip());
    s.write_all(b"over six").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over six");

    // UDP over IPv6, and IPv4 beside it on the same pair.
    let u = UdpSocket::bind(&b, "[2001:db8::2]:53").unwrap();
    let v = UdpSocket::bind(&a, "[::]:0").unwrap();
    v.send_to(b"q6", "[2001:db8::2]:53").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from.ip()),
        (&b"q6"[..], sa("[2001:db8::1]:0").ip())
    );
    let u4 = UdpSocket::bind(&b, "192.0.2.2:53").unwrap();
    UdpSocket::bind(&a, "0.0.0.0:0")
        .unwrap()
        .send_to(b"q4", "192.0.2.2:53")
        .unwrap();
    let (n, from) = u4.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from.ip()), (&b"q4"[..], sa("192.0.2.1:0").ip()));
}

#[test]
fn connect_memory_then_add_address_and_a_route() {
    let a = Stack::new(Config::default());
    let b = Stack::new(Config::default());
    let (ia, ib) = a
        .connect_memory(
            "198.51.100.1/24".parse().unwrap(),
            &b,
            "198.51.100.2/24".parse().unwrap(),
            1500,
        )
        .unwrap();
    a.add_address(ia, "2001:db8:5::1/64".parse::<IpCidr>().unwrap())
        .unwrap();
    b.add_address(ib, "2001:db8:5::2/64".parse::<IpCidr>().unwrap())
        .unwrap();
    // A second prefix on B, reached from A through B as its IPv6 gateway.
    b.add_address(ib, "2001:db8:6::2/64".parse::<IpCidr>().unwrap())
        .unwrap();
    a.set_default_gateway(sa("[2001:db8:5::2]:0").ip()).unwrap();
    let l = TcpListener::bind(&b, "[2001:db8:6::2]:80").unwrap();
    let s = TcpStream::connect(&a, "[2001:db8:6::2]:80").unwrap();
    let (_c, from) = l.accept().unwrap();
    assert_eq!(from, s.local_addr().unwrap());

    // Errors say what to do.
    let e = a
        .add_address(ia, "192.0.2.9/24".parse::<IpCidr>().unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("IfaceConfig"), "{e}");
    let e = a
        .add_address(ia, "2001:db8:5::1/64".parse::<IpCidr>().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("already"), "{e}");
    let e = a
        .set_default_gateway(sa("[2001:db8:7::1]:0").ip())
        .unwrap_err();
    assert!(e.to_string().contains("not on any interface"), "{e}");
}
