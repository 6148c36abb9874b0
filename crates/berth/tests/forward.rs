//! The forwarding API (`berth::forward`) between two in-memory stacks: stack A
//! is a client whose default gateway is B; B forwards and decides about every
//! flow to 198.51.100.0/24 (another host, as far as either stack knows).

use berth::forward::{Forwarder, ForwarderConfig, Refusal};
use berth::{IfaceId, Stack, TcpStream, UdpSocket};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

fn s(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn pair() -> (Stack, Stack) {
    let (a, b) = Stack::pair().unwrap();
    a.set_default_gateway(std::net::Ipv4Addr::new(192, 0, 2, 2))
        .unwrap();
    a.set_default_gateway("2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap())
        .unwrap();
    (a, b)
}

#[test]
fn blocking_forwarder_accepts_refuses_and_relays() {
    let (a, b) = pair();
    let fwd = Forwarder::new(&b, &[IfaceId(0)], ForwarderConfig::default()).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let req = fwd.accept_tcp().unwrap();
            let dst = req.original_destination();
            match dst.port() {
                80 | 443 => {
                    let mut conn = req.accept().unwrap();
                    assert_eq!(conn.local_addr().unwrap(), dst);
                    let mut buf = [0u8; 5];
                    conn.read_exact(&mut buf).unwrap();
                    conn.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                        .unwrap();
                }
                _ => req.refuse(Refusal::Reset).unwrap(),
            }
        }
        fwd
    });
    for dst in ["198.51.100.7:80", "[2001:db8:1::7]:443"] {
        let mut c = TcpStream::connect(&a, dst).unwrap();
        assert_eq!(c.peer_addr().unwrap(), s(dst));
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HELLO");
    }
    let e = TcpStream::connect(&a, "198.51.100.7:81").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let fwd = server.join().unwrap();
    let st = b.stats();
    assert_eq!(st.tcp_forward_requests, 3);
    assert_eq!(st.tcp_forward_refused, 1);
    // Dropped undecided: a RST.
    let t = std::thread::spawn(move || TcpStream::connect(&a, "198.51.100.9:9"));
    drop(fwd.accept_tcp().unwrap());
    assert_eq!(
        t.join().unwrap().unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    assert!(matches!(
        fwd.try_accept_tcp().map(drop).unwrap_err().kind(),
        ErrorKind::WouldBlock
    ));
}

#[test]
fn udp_flows_answer_from_the_original_destination_and_end_when_dropped() {
    let (a, b) = pair();
    let fwd = Forwarder::new(&b, &[IfaceId(0)], ForwarderConfig::default()).unwrap();
    let c = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(b"q1", "198.51.100.53:53").unwrap();
    let flow = fwd.accept_udp().unwrap();
    assert_eq!(flow.original_destination(), s("198.51.100.53:53"));
    let mut buf = [0u8; 16];
    let n = flow.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"q1");
    flow.send(b"a1").unwrap();
    let (n, from) = c.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"a1"[..], s("198.51.100.53:53")));
    assert_eq!(b.stats().udp_forward_flows, 1);
    // The socket is listed with both endpoints while it lives.
    assert!(b
        .sockets()
        .iter()
        .any(|r| r.local == s("198.51.100.53:53") && r.peer == Some(flow.peer_addr())));
    drop(flow);
    assert!(!b.sockets().iter().any(|r| r.local == s("198.51.100.53:53")));
    c.send_to(b"q2", "198.51.100.53:53").unwrap();
    let flow = fwd.accept_udp().unwrap();
    let n = flow.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"q2");
    assert_eq!(b.stats().udp_forward_flows, 2);
}

#[test]
fn tokio_forwarder_relays_concurrent_connections() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, b) = pair();
        let fwd = Forwarder::new(&b, &[IfaceId(0)], ForwarderConfig::default()).unwrap();
        let server = tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let req = fwd.accept_tcp_async().await.unwrap();
                tasks.push(tokio::spawn(async move {
                    let port = req.original_destination().port();
                    let mut conn = req.accept_async().await.unwrap();
                    conn.write_all(&port.to_be_bytes()).await.unwrap();
                    conn.shutdown().await.unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            fwd
        });
        let mut clients = Vec::new();
        for port in 1000..1050u16 {
            let a = a.clone();
            clients.push(tokio::spawn(async move {
                let dst = format!("198.51.100.{}:{port}", port % 200 + 1);
                let mut c = berth::tokio::TcpStream::connect(&a, dst).await.unwrap();
                let mut got = Vec::new();
                c.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, port.to_be_bytes());
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        let fwd = server.await.unwrap();
        // UDP through the async accept.
        let c = UdpSocket::bind(&a, "[::]:0").unwrap();
        c.send_to(b"x", "[2001:db8:1::53]:53").unwrap();
        let flow = fwd.accept_udp_async().await.unwrap();
        assert_eq!(flow.original_destination(), s("[2001:db8:1::53]:53"));
    });
}
