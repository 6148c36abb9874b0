//! `berth::tokio` next to `tokio::net`: stream halves (borrowed and owned,
//! with reunite), readiness with try_read / try_write, peek, `TcpSocket`, and
//! the UDP socket's readiness and try_* calls.
#![cfg(feature = "tokio")]

use berth::tokio::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use berth::{Config, Stack, TcpConfig};
use std::future::poll_fn;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::time::timeout;

/// No test should come near this; it turns a hang into a failure.
const LIMIT: Duration = Duration::from_secs(30);

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

async fn pair_on(a: &Stack, b: &Stack, port: u16) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(b, ("0.0.0.0", port)).await.unwrap();
    let c = TcpStream::connect(a, ("192.0.2.2", port)).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Owned halves in two tasks move data both ways at once (more than the
/// buffers hold, so neither direction can finish first), then reunite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn into_split_halves_work_concurrently_and_reunite() {
    let (a, b) = Stack::pair().unwrap();
    let (c, s) = pair_on(&a, &b, 7).await;
    const N: usize = 4 << 20;
    let (mut cr, mut cw) = c.into_split();
    let (mut sr, mut sw) = s.into_split();
    let data = pattern(N);
    let up = tokio::spawn({
        let data = data.clone();
        async move {
            cw.write_all(&data).await.unwrap();
            cw
        }
    });
    let down = tokio::spawn({
        let data = data.clone();
        async move {
            sw.write_all(&data).await.unwrap();
            sw
        }
    });
    let at_server = tokio::spawn(async move {
        let mut got = vec![0; N];
        sr.read_exact(&mut got).await.unwrap();
        (sr, got)
    });
    let mut got = vec![0; N];
    timeout(LIMIT, cr.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == data, "client read what the server wrote");
    let (sr, at_s) = timeout(LIMIT, at_server).await.unwrap().unwrap();
    assert!(at_s == data, "server read what the client wrote");
    let cw = up.await.unwrap();
    let sw = down.await.unwrap();

    // Halves of different streams do not fit together: both come back.
    let err = cr.reunite(sw).unwrap_err();
    let (cr, sw) = (err.0, err.1);
    let mut c = cr.reunite(cw).expect("the client's own halves");
    let mut s = sw.reunite(sr).expect("the server's own halves");
    // The reunited stream is the same connection, still open both ways.
    c.write_all(b"again").await.unwrap();
    let mut buf = [0; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"again");
}

/// Dropping the owned write half sends FIN (the peer reads end of stream)
/// while the read half still reads; `forget` drops it without FIN.
#[tokio::test]
async fn dropping_the_owned_write_half_shuts_down_writing() {
    let (a, b) = Stack::pair().unwrap();
    let (c, mut s) = pair_on(&a, &b, 8).await;
    let (mut cr, cw) = c.into_split();
    drop(cw);
    let mut buf = [0; 8];
    assert_eq!(timeout(LIMIT, s.read(&mut buf)).await.unwrap().unwrap(), 0);
    s.write_all(b"still").await.unwrap();
    cr.read_exact(&mut buf[..5]).await.unwrap();
    assert_eq!(&buf[..5], b"still", "reading goes on after the FIN");

    let (c, mut s) = pair_on(&a, &b, 9).await;
    let (_cr, cw) = c.into_split();
    cw.forget();
    let r = timeout(Duration::from_millis(100), s.read(&mut buf)).await;
    assert!(r.is_err(), "no FIN after forget: the read is still waiting");
}

/// Borrowed halves: read and write at once in one task.
#[tokio::test]
async fn split_halves_echo_in_one_task() {
    let (a, b) = Stack::pair().unwrap();
    let (mut c, mut s) = pair_on(&a, &b, 10).await;
    const N: usize = 1 << 20;
    let data = pattern(N);
    let server = tokio::spawn(async move {
        let (mut r, mut w) = s.split();
        let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        n
    });
    let (mut r, mut w) = c.split();
    let mut back = Vec::new();
    let (wrote, read) = timeout(LIMIT, async {
        tokio::join!(
            async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            },
            r.read_to_end(&mut back)
        )
    })
    .await
    .unwrap();
    let () = wrote;
    assert_eq!(read.unwrap(), N);
    assert!(back == data);
    assert_eq!(server.await.unwrap(), N as u64);
}

#[tokio::test]
async fn readiness_with_try_read_and_try_write() {
    // Small fixed buffers so that the send side fills up.
    let cfg = || Config {
        tcp: TcpConfig {
            send_buffer: 16 * 1024,
            recv_buffer: 16 * 1024,
            ..TcpConfig::default()
        },
        ..Config::default()
    };
    let (a, b) = Stack::pair_with(cfg(), cfg(), 65_535).unwrap();
    let (c, s) = pair_on(&a, &b, 11).await;
    let mut buf = [0; 64];
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // readable() waits for the peer's data.
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.writable().await.unwrap();
        assert_eq!(c.try_write(b"hi").unwrap(), 2);
        c
    });
    timeout(LIMIT, s.readable()).await.unwrap().unwrap();
    assert_eq!(s.try_read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"hi");
    let c = writer.await.unwrap();

    // Fill the send buffer and the peer's window: then try_write would block,
    // and writable() waits until the peer reads.
    let chunk = vec![1u8; 4096];
    let mut queued = 0;
    loop {
        match c.try_write(&chunk) {
            Ok(n) => queued += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(queued < 1 << 20, "the buffers never filled");
    }
    let w = c.writable();
    tokio::pin!(w);
    assert!(
        timeout(Duration::from_millis(50), &mut w).await.is_err(),
        "not writable while everything is full"
    );
    let mut drained = 0;
    let mut big = vec![0; 64 * 1024];
    while drained < queued {
        s.readable().await.unwrap();
        match s.try_read(&mut big) {
            Ok(n) => drained += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    timeout(LIMIT, w).await.unwrap().unwrap();
    assert!(c.try_write(b"x").unwrap() > 0);
    assert_eq!(c.try_write(b"").unwrap(), 0);
}

#[tokio::test]
async fn peek_and_poll_peek_do_not_consume() {
    let (a, b) = Stack::pair().unwrap();
    let (mut c, mut s) = pair_on(&a, &b, 12).await;
    c.write_all(b"peekaboo").await.unwrap();
    let mut buf = [0; 4];
    assert_eq!(s.peek(&mut buf).await.unwrap(), 4);
    assert_eq!(&buf, b"peek");
    let mut store = [0; 16];
    let mut rb = ReadBuf::new(&mut store);
    let n = poll_fn(|cx| s.poll_peek(cx, &mut rb)).await.unwrap();
    assert_eq!(n, 8);
    assert_eq!(rb.filled(), b"peekaboo");
    let mut all = [0; 8];
    s.read_exact(&mut all).await.unwrap();
    assert_eq!(&all, b"peekaboo", "peeked bytes are read again");

    // A peek with nothing queued waits for data.
    let (mut cr, cw) = c.into_split();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut cw = cw;
        cw.write_all(b"late").await.unwrap();
        cw
    });
    let n = timeout(LIMIT, s.peek(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], &b"late"[..n]);
    let _cw = late.await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"late");
    // Owned read halves peek too.
    s.write_all(b"back").await.unwrap();
    assert_eq!(cr.peek(&mut buf).await.unwrap(), 4);
    cr.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"back");
}

/// TcpSocket: bind, then connect from that address and port; options set
/// before connect hold on the stream.
#[tokio::test]
async fn tcp_socket_bind_then_connect_uses_the_local_port() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "192.0.2.2:80").await.unwrap();
    let sock = TcpSocket::new_v4(&a).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_linger(Some(Duration::from_secs(1))).unwrap();
    sock.set_keepalive(true).unwrap();
    sock.set_recv_buffer_size(32 * 1024).unwrap();
    sock.set_send_buffer_size(48 * 1024).unwrap();
    assert_eq!(sock.recv_buffer_size().unwrap(), 32 * 1024);
    assert_eq!(sock.send_buffer_size().unwrap(), 48 * 1024);
    sock.bind(sa("192.0.2.1:40000")).unwrap();
    assert_eq!(sock.local_addr().unwrap(), sa("192.0.2.1:40000"));
    let c = timeout(LIMIT, sock.connect(sa("192.0.2.2:80")))
        .await
        .unwrap()
        .unwrap();
    let (s, peer) = l.accept().await.unwrap();
    assert_eq!(peer, sa("192.0.2.1:40000"), "the peer sees the bound port");
    assert_eq!(c.local_addr().unwrap(), sa("192.0.2.1:40000"));
    assert!(c.nodelay().unwrap());
    assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(1)));
    assert!(c.into_std().keepalive().unwrap());
    drop(s);

    // A refused connect fails like tokio's.
    let sock = TcpSocket::new_v4(&a).unwrap();
    let e = timeout(LIMIT, sock.connect(sa("192.0.2.2:81")))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // An IPv6 address on an IPv4 socket is refused before anything is sent.
    let sock = TcpSocket::new_v4(&a).unwrap();
    assert!(sock.connect(sa("[2001:db8::2]:80")).await.is_err());
}

/// TcpSocket: reuseaddr, bind, listen(backlog); a v6 socket takes IPv4 peers
/// through IPv4-mapped addresses.
#[tokio::test]
async fn tcp_socket_listen_dual_stack() {
    let (a, b) = Stack::pair().unwrap();
    let sock = TcpSocket::new_v6(&b).unwrap();
    sock.set_reuseaddr(true).unwrap();
    assert!(sock.reuseaddr().unwrap());
    sock.bind(sa("[::]:8080")).unwrap();
    let l = sock.listen(16).unwrap();
    assert_eq!(l.local_addr().unwrap(), sa("[::]:8080"));
    let mut c4 = TcpStream::connect(&a, "192.0.2.2:8080").await.unwrap();
    let (mut s4, peer4) = l.accept().await.unwrap();
    assert_eq!(
        peer4.to_string(),
        format!("[::ffff:192.0.2.1]:{}", c4.local_addr().unwrap().port())
    );
    let c6 = TcpStream::connect(&a, "[2001:db8::2]:8080").await.unwrap();
    let (_s6, peer6) = l.accept().await.unwrap();
    assert_eq!(peer6, c6.local_addr().unwrap());
    c4.write_all(b"v4").await.unwrap();
    let mut buf = [0; 2];
    s4.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"v4");
}

#[tokio::test]
async fn udp_readiness_and_try_calls() {
    let (a, b) = Stack::pair().unwrap();
    let srv = UdpSocket::bind(&b, "192.0.2.2:53").await.unwrap();
    let cli = UdpSocket::bind(&a, "192.0.2.1:5353").await.unwrap();
    let mut buf = [0; 64];
    assert_eq!(
        srv.try_recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(
        srv.try_peek_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    cli.writable().await.unwrap();
    assert_eq!(cli.try_send_to(b"q1", sa("192.0.2.2:53")).unwrap(), 2);
    timeout(LIMIT, srv.readable()).await.unwrap().unwrap();
    let (n, from) = srv.peek_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"q1"[..], sa("192.0.2.1:5353")));
    let (n, from) = srv.try_peek_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"q1"[..], sa("192.0.2.1:5353")),
        "still queued"
    );
    let (n, from) = srv.try_recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"q1"[..], sa("192.0.2.1:5353")));
    assert_eq!(
        srv.try_recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );

    // Connected: try_send / try_recv; readable() waits for the answer.
    cli.connect("192.0.2.2:53").await.unwrap();
    assert_eq!(
        cli.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let answer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        srv.send_to(b"a1", "192.0.2.1:5353").await.unwrap();
        srv
    });
    timeout(LIMIT, cli.readable()).await.unwrap().unwrap();
    assert_eq!(cli.try_recv(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"a1");
    let srv = answer.await.unwrap();
    assert_eq!(cli.try_send(b"q2").unwrap(), 2);
    let n = srv.recv_from(&mut buf).await.unwrap().0;
    assert_eq!(&buf[..n], b"q2");
    cli.set_ttl(17).unwrap();
    assert_eq!(cli.ttl().unwrap(), 17);
}
