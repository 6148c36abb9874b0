//! Closing, dropping, leaks, blocking calls with and without timeouts, and many
//! threads at once, between two stacks joined by a memory link.

use berth::core::{errno, Config, TcpConfig};
use berth::error::code;
use berth::{Domain, Protocol, RawSocket, Socket, Stack, TcpListener, TcpStream, Type, UdpSocket};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn short_time_wait() -> (Stack, Stack) {
    let cfg = || Config {
        tcp: TcpConfig {
            time_wait: Duration::from_millis(200),
            ..TcpConfig::default()
        },
        ..Config::default()
    };
    Stack::pair_with(cfg(), cfg(), 65_535).unwrap()
}

/// Wait until `f` holds, at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn dropping_a_stream_closes_gracefully() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (mut s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    c.write_all(b"last words").unwrap();
    drop(c);
    // The peer gets all the data, then end of stream — no reset.
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
    // Writing back to a half-closed peer still works at the TCP level (the
    // closed side answers with a reset, then writes fail).
    assert!(s.take_error().unwrap().is_none());
}

#[test]
fn try_clone_closes_on_last_drop() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let c2 = c.try_clone().unwrap();
    let (mut s, _) = l.accept().unwrap();
    drop(c);
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Still open: the read times out instead of seeing end of stream.
    let e = s.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    drop(c2);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn dropping_a_listener_resets_its_accept_queue() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    // Handshakes complete in the queue; nobody accepts.
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&a, "192.0.2.2:7").unwrap())
        .collect();
    drop(l);
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = c.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e:?}");
        assert_eq!(errno(&e), Some(code::ECONNRESET));
    }
    // The port is free again, and nothing listens meanwhile.
    let e = TcpStream::connect(&a, "192.0.2.2:7").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let _l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
}

#[test]
fn a_connection_reset_before_accept() {
    // The client aborts while its connection waits in the accept queue.
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let c = Socket::new(&a, Domain::IPV4, Type::STREAM, None).unwrap();
    c.connect(&sa("192.0.2.2:7")).unwrap();
    c.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    // berth drops the dead connection from the queue (BSD would fail accept
    // with ECONNABORTED; berth never hands it out): nothing is left to accept
    // and the listener is the only socket left.
    l.set_nonblocking(true).unwrap();
    let e = l.accept().err().unwrap();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e:?}");
    assert_eq!(b.sockets().len(), 1, "{:#?}", b.sockets());
    assert!(
        !b.with_core(|c, _| c.readiness(l.handle()))
            .unwrap()
            .readable
    );
}

#[test]
fn nothing_leaks_after_time_wait() {
    let (a, b) = short_time_wait();
    {
        let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
        let mut conns = Vec::new();
        for i in 0..10 {
            let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
            let (mut s, _) = l.accept().unwrap();
            c.write_all(&[i]).unwrap();
            let mut one = [0u8; 1];
            s.read_exact(&mut one).unwrap();
            s.write_all(&one).unwrap();
            c.read_exact(&mut one).unwrap();
            // Half of them close from the client first, half from the server.
            if i % 2 == 0 {
                conns.push((c, s));
            } else {
                conns.push((c, s));
                let (c, s) = conns.pop().unwrap();
                drop(s);
                drop(c);
            }
        }
        // One refused, one timed out, one reset.
        let _ = TcpStream::connect(&a, "192.0.2.2:9");
        let _ = TcpStream::connect_timeout(&a, &sa("192.0.2.99:9"), Duration::from_millis(50));
        let c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
        let (s, _) = l.accept().unwrap();
        let h = s.handle();
        b.with_core(|core, _| core.tcp_set_linger(h, Some(Duration::ZERO)))
            .unwrap();
        drop(s);
        drop(c);
        // A listener with a connection still in its queue.
        let _queued = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
        // UDP, raw and low-level sockets too.
        let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
        u.send_to(b"x", "192.0.2.2:5353").unwrap();
        let r = RawSocket::new(&a, 1).unwrap();
        r.send_to(
            &[8, 0, 0xf7, 0xff, 0, 0, 0, 0],
            "192.0.2.2".parse().unwrap(),
        )
        .unwrap();
        let s = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&sa("0.0.0.0:0")).unwrap();
        let s2 = Socket::new(&b, Domain::IPV4, Type::DGRAM, None).unwrap();
        s2.bind(&sa("0.0.0.0:0")).unwrap();
        assert!(!a.sockets().is_empty() && !b.sockets().is_empty());
        drop(conns);
    }
    // Everything dropped: after TIME-WAIT (200 ms) both tables are empty.
    let empty = eventually(Duration::from_secs(5), || {
        a.sockets().is_empty() && b.sockets().is_empty()
    });
    assert!(
        empty,
        "leaked sockets:\na: {:#?}\nb: {:#?}",
        a.sockets(),
        b.sockets()
    );
    assert_eq!(a.with_core(|c, _| c.socket_count()), 0);
    assert_eq!(b.with_core(|c, _| c.socket_count()), 0);
}

#[test]
fn blocking_reads_with_and_without_timeouts() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (mut s, _) = l.accept().unwrap();

    // With a timeout: WouldBlock (EAGAIN) after about the timeout, as Linux.
    s.set_read_timeout(Some(Duration::from_millis(80))).unwrap();
    assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(80)));
    let t0 = Instant::now();
    let e = s.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(80));
    assert!(t0.elapsed() < Duration::from_secs(2));

    // Without: blocks until data arrives from another thread.
    s.set_read_timeout(None).unwrap();
    let w = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        c.write_all(b"late").unwrap();
        c
    });
    let t0 = Instant::now();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"late");
    assert!(t0.elapsed() >= Duration::from_millis(90));
    let mut c = w.join().unwrap();

    // A blocked writer (full buffers) times out with WouldBlock, then resumes
    // once the peer reads.
    c.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let chunk = vec![1u8; 1 << 16];
    let mut sent = 0usize;
    let t0 = Instant::now();
    let e = loop {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never blocked");
    };
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    let reader = std::thread::spawn(move || {
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while total < sent + 10 {
            total += s.read(&mut buf).unwrap();
        }
        total
    });
    c.set_write_timeout(None).unwrap();
    c.write_all(&[2u8; 10]).unwrap();
    assert_eq!(reader.join().unwrap(), sent + 10);

    // accept: blocking without a timeout, and Socket's accept with one.
    let t = std::thread::spawn({
        let a = a.clone();
        move || {
            std::thread::sleep(Duration::from_millis(50));
            TcpStream::connect(&a, "192.0.2.2:7").unwrap()
        }
    });
    let (_s2, _) = l.accept().unwrap();
    let _c2 = t.join().unwrap();
    let ls = Socket::new(&b, Domain::IPV4, Type::STREAM, None).unwrap();
    ls.listen(4).unwrap();
    ls.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(ls.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(50));

    // UDP recv_from with a timeout and without.
    let u = UdpSocket::bind(&b, "0.0.0.0:9").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(
        u.recv_from(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    u.set_read_timeout(None).unwrap();
    let t = std::thread::spawn({
        let a = a.clone();
        move || {
            std::thread::sleep(Duration::from_millis(50));
            let c = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
            c.send_to(b"dgram", "192.0.2.2:9").unwrap();
        }
    });
    let mut buf = [0u8; 16];
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"dgram");
    assert_eq!(from.ip().to_string(), "192.0.2.1");
    t.join().unwrap();
}

#[test]
fn shutdown_write_and_read() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.write_all(b"req").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let e = c.write(b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    let mut req = Vec::new();
    s.read_to_end(&mut req).unwrap();
    assert_eq!(req, b"req");
    s.write_all(b"resp").unwrap();
    s.shutdown(Shutdown::Both).unwrap();
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    assert_eq!(resp, b"resp");
    // Read shutdown: reads return end of stream at once.
    let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (_s, _) = l.accept().unwrap();
    c.shutdown(Shutdown::Read).unwrap();
    assert_eq!(c.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn sixteen_threads_at_once() {
    let (a, b) = Stack::pair().unwrap();
    const N: usize = 16;
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let server = std::thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..N {
            let (mut s, _) = l.accept().unwrap();
            workers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 8192];
                let mut total = 0;
                loop {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        return total;
                    }
                    total += n;
                    s.write_all(&buf[..n]).unwrap();
                }
            }));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .sum::<usize>()
    });
    let udp_srv = UdpSocket::bind(&b, "0.0.0.0:9").unwrap();
    let udp_srv = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..N * 10 {
            let (n, from) = udp_srv.recv_from(&mut buf).unwrap();
            udp_srv.send_to(&buf[..n], from).unwrap();
        }
    });
    let barrier = Arc::new(Barrier::new(N));
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let a = a.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
                let data: Vec<u8> = (0..200_000).map(|j| (i * 7 + j) as u8).collect();
                let mut w = c.try_clone().unwrap();
                let d2 = data.clone();
                let writer = std::thread::spawn(move || {
                    for chunk in d2.chunks(10_000) {
                        w.write_all(chunk).unwrap();
                    }
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                c.read_to_end(&mut got).unwrap();
                writer.join().unwrap();
                assert!(got == data, "thread {i}: echo differs");
                // And some datagrams, each answered.
                let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
                u.connect("192.0.2.2:9").unwrap();
                for k in 0..10u8 {
                    u.send(&[i as u8, k]).unwrap();
                    let mut buf = [0u8; 8];
                    let n = u.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..n], &[i as u8, k]);
                }
                data.len()
            })
        })
        .collect();
    let sent: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(server.join().unwrap(), sent);
    udp_srv.join().unwrap();
}

#[test]
fn incoming_iterates_connections() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..3 {
            let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
            c.write_all(b"!").unwrap();
        }
    });
    for s in l.incoming().take(3) {
        let mut s = s.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
        assert_eq!(&one, b"!");
    }
    t.join().unwrap();
}

#[test]
fn raw_and_low_level_sockets_close_on_drop() {
    let (a, _b) = Stack::pair().unwrap();
    let before = a.sockets().len();
    {
        let _r = RawSocket::new(&a, 1).unwrap();
        let _s = Socket::new(&a, Domain::IPV4, Type::RAW, Some(Protocol::ICMP)).unwrap();
        let _u = Socket::new(&a, Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        assert_eq!(a.sockets().len(), before + 3);
    }
    assert_eq!(a.sockets().len(), before);
}
