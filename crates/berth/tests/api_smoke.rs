//! The blocking API between two stacks joined by a memory link.

use berth::{Stack, TcpListener, TcpStream, UdpSocket};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn tcp_echo_between_threads() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let srv = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "192.0.2.1");
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            s.write_all(&buf[..n]).unwrap();
        }
        total
    });
    let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let c2 = TcpStream::connect(&a, "192.0.2.2:7");
    drop(c2);
    let writer = {
        let data = data.clone();
        let mut w = c.try_clone().unwrap();
        std::thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
            w
        })
    };
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let _w = writer.join().unwrap();
    assert_eq!(srv.join().unwrap(), data.len());
    assert!(got == data);
}

#[test]
fn udp_and_timeouts() {
    let (a, b) = Stack::pair().unwrap();
    let s = UdpSocket::bind(&b, "0.0.0.0:9").unwrap();
    let c = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    c.send_to(b"hi", "192.0.2.2:9").unwrap();
    let mut buf = [0u8; 10];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    assert_eq!(
        from,
        c.local_addr()
            .unwrap()
            .to_string()
            .replace("0.0.0.0", "192.0.2.1")
            .parse()
            .unwrap()
    );
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let t0 = Instant::now();
    let e = s.recv_from(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(50));
}
