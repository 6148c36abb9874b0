//! The async API (`berth::tokio`) on tokio runtimes of both flavours, and hyper
//! serving and fetching HTTP/1.1 over berth streams between two stacks.
#![cfg(feature = "tokio")]

use berth::core::SocketKind;
use berth::tokio::{TcpListener, TcpStream, UdpSocket};
use berth::Stack;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
/// No test should come near this; it turns a hang into a failure.
const LIMIT: Duration = Duration::from_secs(30);

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().expect("literal address")
}

/// A server on `b` that echoes every connection until end of stream.
async fn echo_server(b: &Stack, port: u16) -> TcpListener {
    TcpListener::bind(b, addr(B, port)).await.expect("bind")
}

fn spawn_echo(l: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    })
}

/// Write `data` and read the echo back concurrently (the echo may exceed the
/// buffers, so one direction must not wait for the other).
async fn echo_roundtrip(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.expect("write");
        w.shutdown().await.expect("shutdown");
        w
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.expect("read to end");
    let _w = writer.await.expect("writer task");
    got
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn echo_once(mb: usize) {
    let (a, b) = Stack::pair().expect("pair");
    let server = spawn_echo(echo_server(&b, 7).await);
    let s = TcpStream::connect(&a, addr(B, 7)).await.expect("connect");
    assert_eq!(s.peer_addr().expect("peer"), addr(B, 7));
    assert_eq!(s.local_addr().expect("local").ip(), addr(A, 1).ip());
    s.set_nodelay(true).expect("nodelay");
    assert!(s.nodelay().expect("nodelay"));
    let data = pattern(mb * 1024 * 1024 + 123, 7);
    let got = echo_roundtrip(s, data.clone()).await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_multi_thread() {
    timeout(LIMIT, echo_once(4)).await.expect("timed out");
}

#[tokio::test(flavor = "current_thread")]
async fn echo_current_thread() {
    timeout(LIMIT, echo_once(4)).await.expect("timed out");
}

async fn many(n: usize) {
    let (a, b) = Stack::pair().expect("pair");
    let server = spawn_echo(echo_server(&b, 8).await);
    let mut tasks = Vec::new();
    for i in 0..n {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let s = TcpStream::connect(&a, addr(B, 8)).await.expect("connect");
            let data = pattern(10_000 + i * 97, i as u8);
            let got = echo_roundtrip(s, data.clone()).await;
            assert!(got == data, "connection {i}: echo differs");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_connections_multi_thread() {
    timeout(LIMIT, many(100)).await.expect("timed out");
}

#[tokio::test(flavor = "current_thread")]
async fn many_connections_current_thread() {
    timeout(LIMIT, many(100)).await.expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_echo() {
    timeout(LIMIT, async {
        let (a, b) = Stack::pair().expect("pair");
        let server = UdpSocket::bind(&b, addr(B, 9)).await.expect("bind");
        assert_eq!(server.local_addr().expect("local"), addr(B, 9));
        let echo = tokio::spawn(async move {
            let mut buf = [0; 2048];
            for _ in 0..10 {
                let (n, from) = server.recv_from(&mut buf).await.expect("recv_from");
                server.send_to(&buf[..n], from).await.expect("send_to");
            }
        });
        // Unconnected: send_to / recv_from.
        let c = UdpSocket::bind(&a, addr(A, 0)).await.expect("bind");
        let mut buf = [0; 2048];
        for i in 0..5u8 {
            let msg = vec![i; 100 + i as usize];
            c.send_to(&msg, addr(B, 9)).await.expect("send_to");
            let (n, from) = c.recv_from(&mut buf).await.expect("recv_from");
            assert_eq!(from, addr(B, 9));
            assert_eq!(&buf[..n], &msg[..]);
        }
        // Connected: send / recv (and a peek first).
        c.connect(addr(B, 9)).await.expect("connect");
        assert_eq!(c.peer_addr().expect("peer"), addr(B, 9));
        for i in 5..10u8 {
            let msg = vec![i; 1000];
            c.send(&msg).await.expect("send");
            let (n, from) = c.peek_from(&mut buf).await.expect("peek");
            assert_eq!((n, from), (1000, addr(B, 9)));
            let n = c.recv(&mut buf).await.expect("recv");
            assert_eq!(&buf[..n], &msg[..]);
        }
        echo.await.expect("echo task");
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "current_thread")]
async fn read_sees_eof_after_peer_shutdown() {
    timeout(LIMIT, async {
        let (a, b) = Stack::pair().expect("pair");
        let l = TcpListener::bind(&b, addr(B, 10)).await.expect("bind");
        assert_eq!(l.local_addr().expect("local"), addr(B, 10));
        let (c, accepted) = tokio::join!(TcpStream::connect(&a, addr(B, 10)), l.accept());
        let mut c = c.expect("connect");
        let (mut s, peer) = accepted.expect("accept");
        assert_eq!(peer, c.local_addr().expect("local"));
        // A reader waiting before the FIN arrives is woken by it.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.expect("read_to_end");
            got
        });
        tokio::task::yield_now().await;
        c.write_all(b"last words").await.expect("write");
        c.shutdown().await.expect("shutdown");
        assert_eq!(reader.await.expect("reader"), b"last words");
        // Writing after our own shutdown(Write) is a broken pipe.
        let e = c
            .write_all(b"more")
            .await
            .expect_err("write after shutdown");
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refused() {
    timeout(LIMIT, async {
        let (a, _b) = Stack::pair().expect("pair");
        let e = TcpStream::connect(&a, addr(B, 11))
            .await
            .expect_err("nobody listens");
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        // Nothing is left behind by the failed attempt.
        assert!(a.sockets().is_empty(), "{:?}", a.sockets());
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "current_thread")]
async fn stack_shutdown_wakes_waiters() {
    timeout(LIMIT, async {
        let (_a, b) = Stack::pair().expect("pair");
        let l = TcpListener::bind(&b, addr(B, 12)).await.expect("bind");
        let stopper = b.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stopper.shutdown();
        });
        let e = l.accept().await.expect_err("stack shut down");
        assert_eq!(e.kind(), ErrorKind::NotConnected);
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_closes_sockets() {
    timeout(LIMIT, async {
        let (a, b) = Stack::pair().expect("pair");
        let l = TcpListener::bind(&b, addr(B, 13)).await.expect("bind");
        let c = TcpStream::connect(&a, addr(B, 13)).await.expect("connect");
        let (mut s, _) = l.accept().await.expect("accept");
        drop(c);
        // The client's drop sends FIN: the server reads end of stream.
        let mut buf = [0; 8];
        assert_eq!(s.read(&mut buf).await.expect("read"), 0);
        drop(s);
        drop(l);
        let u = UdpSocket::bind(&a, addr(A, 14)).await.expect("bind");
        drop(u);
        // Only connections finishing their close remain: no listener, no UDP.
        for st in [&a, &b] {
            let left = st.sockets();
            assert!(
                left.iter()
                    .all(|s| s.kind == SocketKind::Tcp && s.state != "LISTEN"),
                "{left:?}"
            );
        }
    })
    .await
    .expect("timed out");
}

mod http {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::{Method, Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;

    /// GET /hello → "hello from berth"; POST /echo → the request body; else 404.
    async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/hello") => Ok(Response::new(Full::new(Bytes::from_static(
                b"hello from berth",
            )))),
            (&Method::POST, "/echo") => {
                let body = req.into_body().collect().await?.to_bytes();
                Ok(Response::new(Full::new(body)))
            }
            _ => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NOT_FOUND;
                Ok(r)
            }
        }
    }

    async fn serve(l: TcpListener) {
        loop {
            let Ok((s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(handle);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    }

    async fn fetch(
        sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> (StatusCode, Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, B)
            .body(Full::new(body))
            .expect("request");
        // On a kept-alive connection the dispatcher must finish the previous
        // exchange before it takes the next request.
        sender.ready().await.expect("connection ready");
        let resp = sender.send_request(req).await.expect("send_request");
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        (status, body)
    }

    async fn hyper_roundtrips() {
        let (a, b) = Stack::pair().expect("pair");
        let l = TcpListener::bind(&b, addr(B, 80)).await.expect("bind");
        let server = tokio::spawn(serve(l));

        let s = TcpStream::connect(&a, addr(B, 80)).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .expect("handshake");
        let conn = tokio::spawn(conn);

        let (status, body) = fetch(&mut sender, Method::GET, "/hello", Bytes::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"hello from berth");

        let big = Bytes::from(pattern(1024 * 1024, 3));
        let (status, body) = fetch(&mut sender, Method::POST, "/echo", big.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), big.len());
        assert!(body == big, "1 MB echo differs");

        // Keep-alive: a third request on the same connection.
        let (status, _) = fetch(&mut sender, Method::GET, "/missing", Bytes::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        drop(sender);
        conn.await.expect("conn task").expect("client connection");
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hyper_http1_multi_thread() {
        timeout(LIMIT, hyper_roundtrips()).await.expect("timed out");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hyper_http1_current_thread() {
        timeout(LIMIT, hyper_roundtrips()).await.expect("timed out");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_read_leaves_socket_usable() {
    timeout(LIMIT, async {
        let (a, b) = Stack::pair().expect("pair");
        let l = TcpListener::bind(&b, addr(B, 15)).await.expect("bind");
        let mut c = TcpStream::connect(&a, addr(B, 15)).await.expect("connect");
        let (mut s, _) = l.accept().await.expect("accept");
        let mut buf = [0; 16];
        // A read abandoned while pending (its waker stays registered) …
        let r = timeout(Duration::from_millis(10), s.read(&mut buf)).await;
        assert!(r.is_err(), "nothing was sent yet");
        // … does not disturb the next one.
        c.write_all(b"late").await.expect("write");
        let n = s.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"late");
    })
    .await
    .expect("timed out");
}

/// The async types over IPv6 and dual-stack: a listener on `[::]` takes an
/// IPv6 client and an IPv4 one (seen IPv4-mapped), and UDP echoes over IPv6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_and_dual_stack() {
    timeout(LIMIT, async {
        let (a, b) = Stack::pair().expect("pair");
        let l = TcpListener::bind(&b, "[::]:11").await.expect("bind [::]");
        let server = spawn_echo(l);
        let s6 = TcpStream::connect(&a, "[2001:db8::2]:11")
            .await
            .expect("connect v6");
        assert_eq!(
            s6.local_addr().expect("local").ip().to_string(),
            "2001:db8::1"
        );
        let data = pattern(300_000, 3);
        assert!(
            echo_roundtrip(s6, data.clone()).await == data,
            "IPv6 echo differs"
        );
        let s4 = TcpStream::connect(&a, addr(B, 11))
            .await
            .expect("connect v4");
        let data = pattern(100_000, 4);
        assert!(
            echo_roundtrip(s4, data.clone()).await == data,
            "IPv4 echo differs"
        );
        server.abort();
        // The peer of the IPv4 client as the dual-stack listener saw it.
        let l = TcpListener::bind(&b, "[::]:12")
            .await
            .expect("bind [::]:12");
        let (c, accepted) = tokio::join!(TcpStream::connect(&a, addr(B, 12)), l.accept());
        let (_, peer) = accepted.expect("accept");
        let local = c.expect("connect").local_addr().expect("local");
        assert_eq!(peer.to_string(), format!("[::ffff:{A}]:{}", local.port()));

        let srv = UdpSocket::bind(&b, "[2001:db8::2]:13")
            .await
            .expect("bind udp");
        let cli = UdpSocket::bind(&a, "[::]:0").await.expect("bind udp [::]");
        cli.send_to(b"over six", "[2001:db8::2]:13")
            .await
            .expect("send_to");
        let mut buf = [0; 64];
        let (n, from) = srv.recv_from(&mut buf).await.expect("recv_from");
        assert_eq!(&buf[..n], b"over six");
        assert_eq!(from.ip().to_string(), "2001:db8::1");
        srv.send_to(b"back", from).await.expect("send_to back");
        let (n, _) = cli.recv_from(&mut buf).await.expect("recv back");
        assert_eq!(&buf[..n], b"back");
    })
    .await
    .expect("timed out");
}
