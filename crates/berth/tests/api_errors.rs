//! Every error the socket API promises: the `ErrorKind` and, where berth sets one,
//! the Linux errno (`berth::errno`), between two stacks joined by a memory
//! link (192.0.2.1 ↔ 192.0.2.2).

use berth::errno;
use berth::error::code;
use berth::{Domain, Socket, Stack, TcpListener, TcpStream, Type, UdpSocket};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Assert kind and (if given) errno of an error.
#[track_caller]
fn check(e: std::io::Error, kind: ErrorKind, no: Option<i32>) {
    assert_eq!(e.kind(), kind, "wrong kind for {e:?}");
    if let Some(n) = no {
        assert_eq!(errno(&e), Some(n), "wrong errno for {e:?}");
    }
    assert!(!e.to_string().is_empty(), "error without a message");
}

#[test]
fn connection_refused() {
    let (a, _b) = Stack::pair().unwrap();
    let e = TcpStream::connect(&a, "192.0.2.2:1").unwrap_err();
    check(e, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
    let e = TcpStream::connect_timeout(&a, &sa("192.0.2.2:2"), Duration::from_secs(5)).unwrap_err();
    check(e, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    let e = s.connect(&sa("192.0.2.2:3")).unwrap_err();
    check(e, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
    // Connected UDP: ICMP port unreachable surfaces as ConnectionRefused.
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    u.connect("192.0.2.2:9999").unwrap();
    u.send(b"x").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = u.recv(&mut [0u8; 8]).unwrap_err();
    check(e, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
}

#[test]
fn connection_reset_unread_data_and_linger_zero() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:80").unwrap();

    // 1. The server closes with unread data: RFC 2525 says reset.
    let mut c = TcpStream::connect(&a, "192.0.2.2:80").unwrap();
    let (s, _) = l.accept().unwrap();
    c.write_all(b"unread").unwrap();
    // Wait until the data sits in the server's receive queue.
    let t0 = Instant::now();
    while b.with_core(|core, _| core.tcp_recv_queue(s.handle()).unwrap()) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(s);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = c.read(&mut [0u8; 16]).unwrap_err();
    check(e, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
    // BrokenPipe: writing after the peer reset (the reset was reported already).
    let e = c.write(b"more").unwrap_err();
    check(e, ErrorKind::BrokenPipe, Some(code::EPIPE));

    // 2. SO_LINGER 0: close aborts with a reset; the reader sees ConnectionReset.
    let s2 = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    s2.connect(&sa("192.0.2.2:80")).unwrap();
    let (mut srv, _) = l.accept().unwrap();
    s2.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(s2.linger().unwrap(), Some(Duration::ZERO));
    drop(s2);
    srv.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = srv.read(&mut [0u8; 16]).unwrap_err();
    check(e, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
    let e = srv.write(b"x").unwrap_err();
    check(e, ErrorKind::BrokenPipe, Some(code::EPIPE));
}

#[test]
fn reset_while_writing_gives_reset_then_broken_pipe() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:81").unwrap();
    let mut c = TcpStream::connect(&a, "192.0.2.2:81").unwrap();
    let (s, _) = l.accept().unwrap();
    // SO_LINGER 0 on the accepted side through the core escape hatch.
    let h = s.handle();
    b.with_core(|core, _| core.tcp_set_linger(h, Some(Duration::ZERO)))
        .unwrap();
    drop(s);
    // The first write reports the reset (SO_ERROR), later ones EPIPE, as on Linux.
    let e = c.write(b"x").unwrap_err();
    check(e, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
    let e = c.write(b"x").unwrap_err();
    check(e, ErrorKind::BrokenPipe, Some(code::EPIPE));
    // Reads after a reported reset: end of stream (the connection is closed).
    assert_eq!(c.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn addr_in_use_and_not_available() {
    let (a, _b) = Stack::pair().unwrap();
    let _l = TcpListener::bind(&a, "0.0.0.0:8080").unwrap();
    let e = TcpListener::bind(&a, "0.0.0.0:8080").err().unwrap();
    check(e, ErrorKind::AddrInUse, Some(code::EADDRINUSE));
    let e = TcpListener::bind(&a, "192.0.2.1:8080").err().unwrap();
    check(e, ErrorKind::AddrInUse, Some(code::EADDRINUSE));
    // As on Linux, SO_REUSEADDR does not allow binding next to a listener…
    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    assert!(s.reuse_address().unwrap());
    let e = s.bind(&sa("0.0.0.0:8080")).unwrap_err();
    check(e, ErrorKind::AddrInUse, Some(code::EADDRINUSE));
    // …but lets two sockets bind one port; the second listen then conflicts.
    let s1 = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    let s2 = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    for s in [&s1, &s2] {
        s.set_reuse_address(true).unwrap();
        s.bind(&sa("0.0.0.0:8081")).unwrap();
    }
    s1.listen(5).unwrap();
    let e = s2.listen(5).unwrap_err();
    check(e, ErrorKind::AddrInUse, Some(code::EADDRINUSE));
    // Without SO_REUSEADDR bind itself conflicts.
    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    let e = s.bind(&sa("0.0.0.0:8081")).unwrap_err();
    check(e, ErrorKind::AddrInUse, Some(code::EADDRINUSE));

    let _u = UdpSocket::bind(&a, "0.0.0.0:53").unwrap();
    let e = UdpSocket::bind(&a, "0.0.0.0:53").err().unwrap();
    check(e, ErrorKind::AddrInUse, Some(code::EADDRINUSE));
    // TCP and UDP have separate port spaces.
    let _t53 = TcpListener::bind(&a, "0.0.0.0:53").unwrap();

    for r in [
        TcpListener::bind(&a, "10.0.0.1:80").err().unwrap(),
        UdpSocket::bind(&a, "192.0.2.2:0").err().unwrap(),
        Socket::new(&a, Domain::IPV4, Type::STREAM, None)
            .unwrap()
            .bind(&sa("198.51.100.1:1"))
            .unwrap_err(),
    ] {
        check(r, ErrorKind::AddrNotAvailable, Some(code::EADDRNOTAVAIL));
    }
}

#[test]
fn timed_out_connect() {
    // 192.0.2.99 is on the link but no host has it: the peer ignores the SYNs.
    let (a, _b) = Stack::pair().unwrap();
    let t0 = Instant::now();
    let e = TcpStream::connect_timeout(&a, &sa("192.0.2.99:80"), Duration::from_millis(200))
        .unwrap_err();
    let took = t0.elapsed();
    check(e, ErrorKind::TimedOut, Some(code::ETIMEDOUT));
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    let e = s
        .connect_timeout(&sa("192.0.2.99:80"), Duration::from_millis(100))
        .unwrap_err();
    check(e, ErrorKind::TimedOut, Some(code::ETIMEDOUT));
}

#[test]
fn not_connected() {
    let (a, _b) = Stack::pair().unwrap();
    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    check(
        s.peer_addr().unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    check(
        s.send(b"x").unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    check(
        s.recv(&mut [0u8; 4]).unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    check(
        s.shutdown(Shutdown::Both).unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    // A listener is not connected either.
    s.bind(&sa("0.0.0.0:99")).unwrap();
    s.listen(1).unwrap();
    check(
        s.recv(&mut [0u8; 4]).unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    check(
        s.peer_addr().unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    check(
        u.peer_addr().unwrap_err(),
        ErrorKind::NotConnected,
        Some(code::ENOTCONN),
    );
    // send without a peer: EDESTADDRREQ (InvalidInput), as Linux.
    check(
        u.send(b"x").unwrap_err(),
        ErrorKind::InvalidInput,
        Some(code::EDESTADDRREQ),
    );
}

#[test]
fn invalid_input() {
    let (a, _b) = Stack::pair().unwrap();
    let inv = |e: std::io::Error| check(e, ErrorKind::InvalidInput, None);
    // Port 0 where one is needed.
    inv(TcpStream::connect(&a, "192.0.2.2:0").unwrap_err());
    inv(UdpSocket::bind(&a, "0.0.0.0:0")
        .unwrap()
        .send_to(b"x", "192.0.2.2:0")
        .unwrap_err());
    inv(UdpSocket::bind(&a, "0.0.0.0:0")
        .unwrap()
        .connect("192.0.2.2:0")
        .unwrap_err());
    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    check(
        s.connect(&sa("192.0.2.2:0")).unwrap_err(),
        ErrorKind::InvalidInput,
        Some(code::EINVAL),
    );
    // The wrong family (the std-style types take either): an IPv4 address on
    // an AF_INET6 socket must be given IPv4-mapped.
    let s6 = Socket::new(&a, Domain::IPV6, Type::STREAM, None).unwrap();
    check(
        s6.bind(&sa("0.0.0.0:0")).unwrap_err(),
        ErrorKind::InvalidInput,
        Some(code::EAFNOSUPPORT),
    );
    inv(s.bind(&sa("[::1]:80")).unwrap_err());
    inv(s.connect(&sa("[::1]:80")).unwrap_err());
    // Zero timeouts.
    inv(TcpStream::connect_timeout(&a, &sa("192.0.2.2:80"), Duration::ZERO).unwrap_err());
    inv(s
        .connect_timeout(&sa("192.0.2.2:80"), Duration::ZERO)
        .unwrap_err());
    inv(s.set_read_timeout(Some(Duration::ZERO)).unwrap_err());
    inv(s.set_write_timeout(Some(Duration::ZERO)).unwrap_err());
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    inv(u.set_read_timeout(Some(Duration::ZERO)).unwrap_err());
    // Zero buffer sizes, TTL out of range, zero keepalive parameters.
    inv(s.set_recv_buffer_size(0).unwrap_err());
    inv(s.set_send_buffer_size(0).unwrap_err());
    inv(s.set_ttl(0).unwrap_err());
    inv(s.set_ttl(256).unwrap_err());
    inv(u.set_ttl(0).unwrap_err());
    inv(s
        .set_tcp_keepalive(&berth::TcpKeepalive::new().with_time(Duration::ZERO))
        .unwrap_err());
    inv(s
        .set_tcp_keepalive(&berth::TcpKeepalive::new().with_retries(0))
        .unwrap_err());
    // bind twice.
    s.bind(&sa("0.0.0.0:0")).unwrap();
    check(
        s.bind(&sa("0.0.0.0:0")).unwrap_err(),
        ErrorKind::InvalidInput,
        Some(code::EINVAL),
    );
    // accept on a socket that does not listen.
    check(
        s.accept().unwrap_err(),
        ErrorKind::InvalidInput,
        Some(code::EINVAL),
    );
}

/// An IPv6 destination with no route is unreachable (ENETUNREACH), and the
/// message names it; binding the IPv6 wildcard works.
#[test]
fn ipv6_without_a_route_is_unreachable() {
    let (a, _b) = Stack::pair().unwrap();
    UdpSocket::bind(&a, "[::]:53").unwrap();
    for e in [
        TcpStream::connect(&a, "[2001:db8:ffff::2]:80").unwrap_err(),
        UdpSocket::bind(&a, "[::]:0")
            .unwrap()
            .send_to(b"x", "[2001:db8:ffff::2]:53")
            .unwrap_err(),
    ] {
        assert!(e.to_string().contains("2001:db8:ffff::2"), "{e}");
        check(e, ErrorKind::NetworkUnreachable, Some(code::ENETUNREACH));
    }
}

/// As std: bind and connect try every address the argument resolves to, in
/// order, and fail with the last error only when all fail.
#[test]
fn every_resolved_address_is_tried() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let addrs = [
        sa("192.0.2.2:1"),
        sa("[2001:db8:ffff::2]:7"),
        sa("192.0.2.2:7"),
    ];
    let s = TcpStream::connect(&a, &addrs[..]).unwrap();
    assert_eq!(s.peer_addr().unwrap(), sa("192.0.2.2:7"));
    let (_c, from) = l.accept().unwrap();
    assert_eq!(from, s.local_addr().unwrap());
    // All refused: the last error (the listener-less port) is reported.
    let e =
        TcpStream::connect(&a, &[sa("[2001:db8:ffff::2]:7"), sa("192.0.2.2:2")][..]).unwrap_err();
    check(e, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
    // bind: the first address that can be bound wins.
    let u = UdpSocket::bind(&a, &[sa("[2001:db8::99]:53"), sa("0.0.0.0:53")][..]).unwrap();
    assert_eq!(u.local_addr().unwrap(), sa("0.0.0.0:53"));
}

#[test]
fn would_block() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    l.set_nonblocking(true).unwrap();
    let wb = |e: std::io::Error| check(e, ErrorKind::WouldBlock, Some(code::EAGAIN));
    wb(l.accept().unwrap_err());
    let c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    wb((&c).read(&mut [0u8; 4]).unwrap_err());
    s.set_nonblocking(true).unwrap();
    wb((&s).read(&mut [0u8; 4]).unwrap_err());
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    u.set_nonblocking(true).unwrap();
    wb(u.recv_from(&mut [0u8; 4]).unwrap_err());
    let sock = Socket::new(&b, Domain::IPV4, Type::DGRAM, None).unwrap();
    sock.bind(&sa("0.0.0.0:0")).unwrap();
    sock.set_nonblocking(true).unwrap();
    wb(sock.recv_from(&mut [0u8; 4]).unwrap_err());
    let ls = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
    ls.listen(0).unwrap();
    ls.set_nonblocking(true).unwrap();
    wb(ls.accept().unwrap_err());

    // Writing into a full send buffer with a peer that does not read.
    let mut buf_full = false;
    let chunk = vec![7u8; 65536];
    for _ in 0..1000 {
        match (&c).write(&chunk) {
            Ok(n) => assert!(n > 0),
            Err(e) => {
                wb(e);
                buf_full = true;
                break;
            }
        }
    }
    assert!(buf_full, "the send buffer never filled");
}

#[test]
fn stack_shut_down() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (s, _) = l.accept().unwrap();
    let u = UdpSocket::bind(&b, "0.0.0.0:9").unwrap();
    // A reader blocked without a timeout is released by the shutdown.
    let reader = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = (&s).read(&mut [0u8; 4]);
        (r, t0.elapsed(), s)
    });
    let ureader = std::thread::spawn(move || u.recv_from(&mut [0u8; 4]).map(|_| ()));
    std::thread::sleep(Duration::from_millis(100));
    b.shutdown();
    assert!(b.is_shut_down());
    let (r, took, s) = reader.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
    assert!(e.to_string().contains("shut down"), "{e}");
    assert!(took < Duration::from_secs(5));
    assert!(ureader.join().unwrap().is_err());
    // Every call fails at once with the same clear error.
    let errs = vec![
        (&s).write(b"x").unwrap_err(),
        s.peer_addr().unwrap_err(),
        s.local_addr().unwrap_err(),
        s.set_nodelay(true).unwrap_err(),
        l.accept().err().unwrap(),
        l.local_addr().unwrap_err(),
        TcpListener::bind(&b, "0.0.0.0:8").err().unwrap(),
        TcpStream::connect(&b, "192.0.2.1:1").unwrap_err(),
        UdpSocket::bind(&b, "0.0.0.0:0").err().unwrap(),
        Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap_err(),
        berth::Poller::new(&b)
            .wait(&mut Vec::new(), Some(Duration::from_secs(5)))
            .unwrap_err(),
    ];
    for e in errs {
        assert_eq!(e.kind(), ErrorKind::NotConnected, "{e:?}");
        assert!(e.to_string().contains("shut down"), "{e}");
    }
    // The other stack still works, and its connection to the dead host fails
    // by itself eventually; here we just check it does not hang on close.
    drop(c);
    let _ = a.sockets();
}
