//! `berth::Socket`: the BSD call sequences for stream, datagram and raw sockets,
//! options, non-blocking connect, wrong-type calls and conversions.

use berth::errno;
use berth::error::code;
use berth::{
    Domain, Interest, PollEvent, Poller, Protocol, RawSocket, Socket, Stack, TcpKeepalive,
    TcpListener, TcpStream, Type, UdpSocket,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn stream_call_sequence() {
    let (a, b) = Stack::pair().unwrap();
    // Server: socket → setsockopt → bind → listen → accept → recv/send → close.
    let srv = Socket::new(&b, Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    assert_eq!(srv.r#type(), Type::STREAM);
    assert_eq!(srv.protocol(), Protocol::TCP);
    assert_eq!(srv.domain(), Domain::IPV4);
    srv.set_reuse_address(true).unwrap();
    srv.set_recv_buffer_size(64 * 1024).unwrap();
    srv.set_send_buffer_size(32 * 1024).unwrap();
    assert_eq!(srv.recv_buffer_size().unwrap(), 64 * 1024);
    assert_eq!(srv.send_buffer_size().unwrap(), 32 * 1024);
    srv.bind(&sa("0.0.0.0:7000")).unwrap();
    assert_eq!(srv.local_addr().unwrap(), sa("0.0.0.0:7000"));
    srv.listen(0).unwrap(); // 0 → 1, as Linux
    let server = std::thread::spawn(move || {
        let (conn, peer) = srv.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "192.0.2.1");
        assert_eq!(conn.peer_addr().unwrap(), peer);
        assert_eq!(conn.local_addr().unwrap(), sa("192.0.2.2:7000"));
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        loop {
            let n = conn.recv(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(conn.send(&got).unwrap(), got.len());
        conn.shutdown(Shutdown::Write).unwrap();
        got
    });
    // Client: socket → options → connect → send → shutdown → recv → close.
    let cli = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    cli.set_nodelay(true).unwrap();
    assert!(cli.nodelay().unwrap());
    cli.set_keepalive(true).unwrap();
    assert!(cli.keepalive().unwrap());
    cli.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(Duration::from_secs(30))
            .with_interval(Duration::from_secs(5))
            .with_retries(3),
    )
    .unwrap();
    cli.set_ttl(32).unwrap();
    assert_eq!(cli.ttl().unwrap(), 32);
    cli.set_linger(Some(Duration::from_secs(1))).unwrap();
    cli.connect(&sa("192.0.2.2:7000")).unwrap();
    assert_eq!(cli.peer_addr().unwrap(), sa("192.0.2.2:7000"));
    assert_eq!(cli.local_addr().unwrap().ip().to_string(), "192.0.2.1");
    // connect again: EISCONN.
    let e = cli.connect(&sa("192.0.2.2:7000")).unwrap_err();
    assert_eq!(errno(&e), Some(code::EISCONN));
    assert_eq!(cli.send(b"hello, ").unwrap(), 7);
    assert_eq!(cli.send(b"world").unwrap(), 5);
    cli.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    loop {
        let (n, from) = cli.recv_from(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(from, sa("192.0.2.2:7000"));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"hello, world");
    assert_eq!(server.join().unwrap(), b"hello, world");
    assert!(cli.take_error().unwrap().is_none());
}

#[test]
fn datagram_call_sequence() {
    let (a, b) = Stack::pair().unwrap();
    let srv = Socket::new(&b, Domain::IPV4, Type::DGRAM, None).unwrap();
    srv.set_reuse_address(true).unwrap();
    srv.set_recv_buffer_size(16 * 1024).unwrap();
    assert_eq!(srv.recv_buffer_size().unwrap(), 16 * 1024);
    srv.set_ttl(10).unwrap();
    srv.bind(&sa("0.0.0.0:5300")).unwrap();
    let cli = Socket::new(&a, Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    // sendto binds an ephemeral port.
    assert_eq!(cli.send_to(b"ping", &sa("192.0.2.2:5300")).unwrap(), 4);
    let local = cli.local_addr().unwrap();
    assert_ne!(local.port(), 0);
    let mut buf = [0u8; 16];
    let (n, from) = srv.peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from.port()), (&b"ping"[..], local.port()));
    let (n, from) = srv.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(from.ip().to_string(), "192.0.2.1");
    srv.send_to(b"pong", &from).unwrap();
    let (n, _) = cli.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
    // connect → send/recv; peer_addr.
    cli.connect(&sa("192.0.2.2:5300")).unwrap();
    assert_eq!(cli.peer_addr().unwrap(), sa("192.0.2.2:5300"));
    cli.send(b"again").unwrap();
    let n = srv.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"again");
    // A datagram larger than the buffer is truncated.
    cli.send(&[9u8; 100]).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(srv.recv(&mut small).unwrap(), 10);
    assert!(srv.take_error().unwrap().is_none());
    // ICMP port unreachable → SO_ERROR on the connected socket.
    let lonely = Socket::new(&a, Domain::IPV4, Type::DGRAM, None).unwrap();
    lonely.connect(&sa("192.0.2.2:1")).unwrap();
    lonely.send(b"?").unwrap();
    let e = lonely.take_error().unwrap().expect("pending ECONNREFUSED");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(lonely.take_error().unwrap().is_none());
}

#[test]
fn raw_icmp_echo() {
    let (a, _b) = Stack::pair().unwrap();
    let s = Socket::new(&a, Domain::IPV4, Type::RAW, Some(Protocol::ICMP)).unwrap();
    assert_eq!(s.r#type(), Type::RAW);
    assert_eq!(s.protocol(), Protocol::from(1));
    s.bind(&sa("192.0.2.1:0")).unwrap();
    assert_eq!(s.local_addr().unwrap(), sa("192.0.2.1:0"));
    s.set_ttl(64).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // ICMP echo request: type 8, code 0, checksum, id 0x1234, seq 1, payload.
    let mut pkt = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
    pkt.extend_from_slice(b"berth ping");
    let sum = checksum(&pkt);
    pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(s.send_to(&pkt, &sa("192.0.2.2:0")).unwrap(), pkt.len());
    // The reply: a whole IP packet from 192.0.2.2 (the peer answers by itself).
    let mut buf = [0u8; 1500];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(from, sa("192.0.2.2:0"));
    let ihl = ((buf[0] & 0x0f) as usize) * 4;
    assert_eq!(buf[9], 1, "protocol ICMP");
    let icmp = &buf[ihl..n];
    assert_eq!(icmp[0], 0, "echo reply");
    assert_eq!(&icmp[4..8], &[0x12, 0x34, 0, 1]);
    assert_eq!(&icmp[8..], b"berth ping");
    // Raw sockets have no peer, no connect, no listen.
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(
        s.connect(&sa("192.0.2.2:0")).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(s.send(b"x").unwrap_err().kind(), ErrorKind::InvalidInput);
    // Nothing more queued: non-blocking recv → WouldBlock.
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Header-included mode sends a whole packet.
    s.set_header_included(true).unwrap();
    // Raw socket without protocol: EPROTONOSUPPORT.
    let e = Socket::new(&a, Domain::IPV4, Type::RAW, None).unwrap_err();
    assert_eq!(errno(&e), Some(code::EPROTONOSUPPORT));
    // Converted into a RawSocket.
    let r: RawSocket = Socket::new(&a, Domain::IPV4, Type::RAW, Some(Protocol::ICMP))
        .unwrap()
        .into();
    r.send_to(&pkt, "192.0.2.2".parse().unwrap()).unwrap();
    r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, _) = r.recv_from(&mut buf).unwrap();
    assert!(n > 20);
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn wrong_type_calls_fail_clearly() {
    let (a, _b) = Stack::pair().unwrap();
    let d = Socket::new(&a, Domain::IPV4, Type::DGRAM, None).unwrap();
    let unsupported = |e: std::io::Error| {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e:?}");
        assert_eq!(errno(&e), Some(code::EOPNOTSUPP));
        assert!(e.to_string().len() > 20, "terse message: {e}");
    };
    unsupported(d.listen(5).unwrap_err());
    unsupported(d.accept().unwrap_err());
    unsupported(d.shutdown(Shutdown::Both).unwrap_err());
    unsupported(d.set_nodelay(true).unwrap_err());
    unsupported(d.set_linger(None).unwrap_err());
    unsupported(d.set_keepalive(true).unwrap_err());
    unsupported(d.set_header_included(true).unwrap_err());
    let l = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    l.listen(8).unwrap();
    unsupported(l.send_to(b"x", &sa("192.0.2.2:9")).unwrap_err());
    unsupported(l.peek_from(&mut [0u8; 4]).unwrap_err());
    assert_eq!(l.send(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    // The wrong protocol for a type.
    let e = Socket::new(&a, Domain::IPV4, Type::STREAM, Some(Protocol::UDP)).unwrap_err();
    assert_eq!(errno(&e), Some(code::EPROTONOSUPPORT));
    let e = Socket::new(&a, Domain::IPV4, Type::DGRAM, Some(Protocol::TCP)).unwrap_err();
    assert_eq!(errno(&e), Some(code::EPROTONOSUPPORT));
    let e = Socket::new(&a, Domain::IPV4, Type::from(5), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = Socket::new(&a, Domain::from(1), Type::STREAM, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // AF_INET6 is supported (dual-stack); its domain is reported back.
    let s6 = Socket::new(&a, Domain::IPV6, Type::STREAM, None).unwrap();
    assert_eq!(s6.domain(), Domain::IPV6);
}

#[test]
fn listen_backlog_like_linux() {
    let (a, b) = Stack::pair().unwrap();
    let l = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&sa("0.0.0.0:7")).unwrap();
    l.listen(0).unwrap();
    // Backlog 0 → 1: one connection completes and waits; the next one's SYN is
    // dropped (it keeps retrying) until the queue has room.
    let _c1 = TcpStream::connect_timeout(&a, &sa("192.0.2.2:7"), Duration::from_secs(2)).unwrap();
    let e =
        TcpStream::connect_timeout(&a, &sa("192.0.2.2:7"), Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    let (_s1, _) = l.accept().unwrap();
    // listen again only changes the backlog; negative is SOMAXCONN.
    l.listen(-1).unwrap();
    let _c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let _d = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    // An unbound socket's listen picks an ephemeral port.
    let e = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
    e.listen(1).unwrap();
    assert_ne!(e.local_addr().unwrap().port(), 0);
}

#[test]
fn nonblocking_connect_completes_via_writable_and_take_error() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let poller = Poller::new(&a);
    let mut events: Vec<PollEvent> = Vec::new();

    // Success.
    let s = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_nonblocking(true).unwrap();
    assert!(s.nonblocking().unwrap());
    let e = s.connect(&sa("192.0.2.2:7")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(errno(&e), Some(berth::socket::EINPROGRESS));
    poller.register(s.handle(), 1, Interest::WRITABLE).unwrap();
    let n = poller
        .wait(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(events[0].token, 1);
    assert!(events[0].writable && !events[0].error);
    assert!(s.take_error().unwrap().is_none());
    assert_eq!(s.peer_addr().unwrap(), sa("192.0.2.2:7"));
    let (mut srv, _) = l.accept().unwrap();
    // Non-blocking recv with nothing pending; then data.
    assert_eq!(
        s.recv(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    srv.write_all(b"hi").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(s.recv(&mut buf).unwrap(), 2);
    poller.deregister(s.handle()).unwrap();

    // Refused: writable + error, take_error says ConnectionRefused.
    let r = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    r.set_nonblocking(true).unwrap();
    let e = r.connect(&sa("192.0.2.2:8")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    poller.register(r.handle(), 2, Interest::WRITABLE).unwrap();
    assert_eq!(
        poller
            .wait(&mut events, Some(Duration::from_secs(5)))
            .unwrap(),
        1
    );
    assert!(events[0].writable && events[0].error, "{:?}", events[0]);
    let e = r.take_error().unwrap().expect("refused");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(errno(&e), Some(code::ECONNREFUSED));

    // Still in progress (no answer): a second connect says EALREADY.
    let p = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    p.set_nonblocking(true).unwrap();
    let _ = p.connect(&sa("192.0.2.99:7")).unwrap_err();
    let e = p.connect(&sa("192.0.2.99:7")).unwrap_err();
    assert_eq!(errno(&e), Some(code::EALREADY));
    assert_eq!(p.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    // Its readiness stays quiet.
    let poller2 = Poller::new(&a);
    poller2.register(p.handle(), 3, Interest::BOTH).unwrap();
    assert_eq!(
        poller2
            .wait(&mut events, Some(Duration::from_millis(50)))
            .unwrap(),
        0
    );
}

#[test]
fn conversions_into_std_shaped_sockets() {
    let (a, b) = Stack::pair().unwrap();
    let ls = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
    ls.bind(&sa("0.0.0.0:7")).unwrap();
    ls.listen(16).unwrap();
    let l: TcpListener = ls.into();
    assert_eq!(l.local_addr().unwrap(), sa("0.0.0.0:7"));
    let cs = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    cs.set_read_timeout(Some(Duration::from_millis(40)))
        .unwrap();
    cs.connect(&sa("192.0.2.2:7")).unwrap();
    let mut c: TcpStream = cs.into();
    // The read timeout came along.
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(40)));
    let (s, _) = l.accept().unwrap();
    assert_eq!(
        c.read(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    (&s).write_all(b"conv").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"conv");
    // Converting did not close: the connection is still there, and dropping the
    // converted stream closes it gracefully.
    drop(c);
    let mut rest = Vec::new();
    (&s).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    let us = Socket::new(&a, Domain::IPV4, Type::DGRAM, None).unwrap();
    us.bind(&sa("0.0.0.0:5000")).unwrap();
    us.set_nonblocking(true).unwrap();
    let u: UdpSocket = us.into();
    assert_eq!(u.local_addr().unwrap(), sa("0.0.0.0:5000"));
    // Non-blocking mode came along.
    assert_eq!(
        u.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let other = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    other.send_to(b"dg", "192.0.2.1:5000").unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"dg");
    // Sockets accepted through Socket convert as well.
    let ls = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    ls.bind(&sa("0.0.0.0:8")).unwrap();
    ls.listen(1).unwrap();
    let _c = TcpStream::connect(&b, "192.0.2.1:8").unwrap();
    let (acc, peer) = ls.accept().unwrap();
    assert!(!acc.nonblocking().unwrap());
    let acc: TcpStream = acc.into();
    assert_eq!(acc.peer_addr().unwrap(), peer);
}

/// TCP_CONGESTION: cubic by default, settable by name before and after connect,
/// inherited by accepted sockets, unknown names refused as Linux does (ENOENT).
#[test]
fn congestion_control_by_name() {
    let (a, b) = Stack::pair().unwrap();
    let srv = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
    assert_eq!(srv.congestion().unwrap(), "cubic");
    srv.set_congestion("reno").unwrap();
    srv.bind(&sa("0.0.0.0:7001")).unwrap();
    srv.listen(4).unwrap();
    let cli = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    let e = cli.set_congestion("bbr9").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("reno"), "says what to use: {e}");
    cli.connect(&sa("192.0.2.2:7001")).unwrap();
    let (conn, _) = srv.accept().unwrap();
    assert_eq!(
        conn.congestion().unwrap(),
        "reno",
        "inherited from the listener"
    );
    assert_eq!(cli.congestion().unwrap(), "cubic");
    cli.set_congestion("reno").unwrap();
    assert_eq!(
        cli.congestion().unwrap(),
        "reno",
        "switched while connected"
    );
    let info = a.with_core(|c, _| {
        c.sockets().into_iter().find_map(|s| {
            s.tcp
                .filter(|t| t.state == Some(berth::core::TcpState::Established))
        })
    });
    assert_eq!(info.map(|i| i.congestion), Some("reno"));
    let udp = Socket::new(&a, Domain::IPV4, Type::DGRAM, None).unwrap();
    assert!(udp.set_congestion("reno").is_err(), "TCP only");
}
