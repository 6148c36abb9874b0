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

/// A device sink is flushed at the end of every drain: nothing a socket call
/// produced is still buffered in it when the call returns. A plain closure is
/// still a device writer.
#[test]
fn device_sink_flushed_by_every_call() {
    use berth::core::{Config, IfaceConfig, Medium};
    use berth::DeviceSink;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Log {
        pending: usize,
        written: usize,
    }
    struct Sink(Arc<Mutex<Log>>);
    impl DeviceSink for Sink {
        fn write(&mut self, _frame: &[u8]) {
            self.0.lock().unwrap().pending += 1;
        }
        fn flush(&mut self) {
            let mut l = self.0.lock().unwrap();
            l.written += l.pending;
            l.pending = 0;
        }
    }
    let iface = || IfaceConfig {
        medium: Medium::Ip,
        address: "192.0.2.2/24".parse().unwrap(),
        mtu: 1500,
    };

    let log = Arc::new(Mutex::new(Log::default()));
    let s = Stack::new(Config::default());
    s.add_device_sink(iface(), Box::new(Sink(Arc::clone(&log))))
        .unwrap();
    let u = UdpSocket::bind(&s, "0.0.0.0:0").unwrap();
    for i in 1..=5 {
        u.send_to(b"x", "192.0.2.1:9").unwrap();
        let l = log.lock().unwrap();
        assert_eq!((l.pending, l.written), (0, i));
    }

    let frames = Arc::new(Mutex::new(0));
    let s = Stack::new(Config::default());
    let n = Arc::clone(&frames);
    s.add_device(iface(), Box::new(move |_frame| *n.lock().unwrap() += 1))
        .unwrap();
    UdpSocket::bind(&s, "0.0.0.0:0")
        .unwrap()
        .send_to(b"x", "192.0.2.1:9")
        .unwrap();
    assert_eq!(*frames.lock().unwrap(), 1);
}
