//! The blocking API next to `std::net`: peek, linger, keepalive, TTL and
//! nodelay on `TcpStream`, TTL on `TcpListener`, TTL and peek on `UdpSocket`,
//! with what they do on the wire; keepalive's timing in the simulator on
//! virtual time (RFC 1122 §4.2.3.6, Linux's 7200 / 75 / 9 defaults).
//!
//! Everything is imported from `berth` alone: no `berth_core`.

use berth::core::Stack as CoreStack;
use berth::error::code;
use berth::sim::{
    Duration as SimDuration, Instant, LinkConfig, Medium as LinkMedium, Node, NodeId, Simulator,
};
use berth::wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket, UdpPacket};
use berth::{
    errno, Config, IfaceConfig, Medium, Stack, TcpKeepalive, TcpListener, TcpStream, UdpSocket,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn connected(a: &Stack, b: &Stack, port: u16) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(b, ("0.0.0.0", port)).unwrap();
    let c = TcpStream::connect(a, ("192.0.2.2", port)).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

// ---- peek --------------------------------------------------------------------

#[test]
fn tcp_peek_does_not_consume() {
    let (a, b) = Stack::pair().unwrap();
    let (mut c, mut s) = connected(&a, &b, 7);
    c.write_all(b"hello world").unwrap();
    let mut head = [0u8; 5];
    for _ in 0..2 {
        assert_eq!(s.peek(&mut head).unwrap(), 5);
        assert_eq!(&head, b"hello");
    }
    let mut all = [0u8; 11];
    s.read_exact(&mut all).unwrap();
    assert_eq!(&all, b"hello world", "peeked bytes are read again");

    // Nothing queued: a non-blocking peek would block, a blocking one waits
    // for the read timeout.
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.peek(&mut head).unwrap_err().kind(), ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(s.peek(&mut head).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(50));

    // A peek waiting for data returns once it arrives, and leaves it queued.
    s.set_read_timeout(None).unwrap();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        c.write_all(b"late").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        c
    });
    let mut buf = [0u8; 16];
    let n = s.peek(&mut buf).unwrap();
    assert_eq!(&buf[..n], &b"late"[..n]);
    let _c = writer.join().unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"late");
    // At end of stream peek says 0, like read.
    assert_eq!(s.peek(&mut buf).unwrap(), 0);
}

#[test]
fn udp_peek_and_peek_from_leave_the_datagram() {
    let (a, b) = Stack::pair().unwrap();
    let srv = UdpSocket::bind(&b, "192.0.2.2:5300").unwrap();
    let cli = UdpSocket::bind(&a, "192.0.2.1:5301").unwrap();
    cli.connect("192.0.2.2:5300").unwrap();
    srv.connect("192.0.2.1:5301").unwrap();
    cli.send(b"one").unwrap();
    cli.send(b"two").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(srv.peek(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"one");
    let (n, from) = srv.peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"one"[..], sa("192.0.2.1:5301")));
    assert_eq!(srv.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"one", "peeking left the first datagram first");
    assert_eq!(srv.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"two");
    srv.set_nonblocking(true).unwrap();
    assert_eq!(
        srv.peek(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

// ---- options: what is set is what is read back and what happens --------------

#[test]
fn linger_nodelay_keepalive_read_back() {
    let (a, b) = Stack::pair().unwrap();
    let (c, s) = connected(&a, &b, 8);
    assert_eq!(c.linger().unwrap(), None);
    c.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(3)));

    assert!(!c.nodelay().unwrap());
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());

    // Off by default (RFC 1122 §4.2.3.6); Linux's defaults when turned on.
    assert!(!c.keepalive().unwrap());
    c.set_keepalive(true).unwrap();
    assert!(c.keepalive().unwrap());
    let k = c.tcp_keepalive().unwrap();
    assert_eq!(
        (k.time, k.interval, k.retries),
        (
            Some(Duration::from_secs(7200)),
            Some(Duration::from_secs(75)),
            Some(9)
        )
    );
    // Per socket, like TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT; unset fields stay.
    c.set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::from_secs(600)))
        .unwrap();
    let k = c.tcp_keepalive().unwrap();
    assert_eq!(
        (k.time, k.interval, k.retries),
        (
            Some(Duration::from_secs(600)),
            Some(Duration::from_secs(75)),
            Some(9)
        )
    );
    assert_eq!(
        s.tcp_keepalive().unwrap().time,
        Some(Duration::from_secs(7200)),
        "the other end keeps the defaults"
    );
    c.set_keepalive(false).unwrap();
    assert!(!c.keepalive().unwrap());
    let e = c
        .set_tcp_keepalive(&TcpKeepalive::new().with_retries(0))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn linger_zero_resets_on_drop() {
    let (a, b) = Stack::pair().unwrap();
    let (c, mut s) = connected(&a, &b, 9);
    c.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    let e = s.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    assert_eq!(errno(&e), Some(code::ECONNRESET));
}

#[test]
fn ttl_read_back_and_range() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:10").unwrap();
    assert_eq!(l.ttl().unwrap(), 64, "the stack default");
    l.set_ttl(200).unwrap();
    assert_eq!(l.ttl().unwrap(), 200);
    let c = TcpStream::connect(&a, "192.0.2.2:10").unwrap();
    let (s, _) = l.accept().unwrap();
    assert_eq!(s.ttl().unwrap(), 200, "inherited from the listener");
    assert_eq!(c.ttl().unwrap(), 64);
    c.set_ttl(1).unwrap();
    assert_eq!(c.ttl().unwrap(), 1);
    for bad in [0, 256] {
        assert_eq!(c.set_ttl(bad).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(l.set_ttl(bad).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    assert_eq!(u.ttl().unwrap(), 64);
    u.set_ttl(3).unwrap();
    assert_eq!(u.ttl().unwrap(), 3);
    assert_eq!(u.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
}

// ---- TTL on the wire ------------------------------------------------------------

/// Two runtime stacks joined through device sinks, with every frame copied to
/// a log on its way: a wiretap. Frames cross on forwarding threads (a sink runs
/// with its stack locked, so it cannot call the peer's `input` itself).
struct Tapped {
    a: Stack,
    b: Stack,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Tapped {
    fn new() -> Tapped {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (to_b, from_a) = mpsc::channel::<Vec<u8>>();
        let (to_a, from_b) = mpsc::channel::<Vec<u8>>();
        let (a, ia) = tapped_host(1, to_b);
        let (b, ib) = tapped_host(2, to_a);
        let mut threads = Vec::new();
        for (rx, dst, iface) in [(from_a, b.clone(), ib), (from_b, a.clone(), ia)] {
            let (frames, stop) = (frames.clone(), stop.clone());
            threads.push(thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(f) = rx.recv_timeout(Duration::from_millis(20)) {
                        frames.lock().unwrap().push(f.clone());
                        dst.input(iface, &f);
                    }
                }
            }));
        }
        Tapped {
            a,
            b,
            frames,
            stop,
            threads,
        }
    }

    /// (TTL or hop limit, transport protocol, source port, payload) of every
    /// frame so far.
    fn seen(&self) -> Vec<(u8, IpProtocol, u16, TcpFlags, Vec<u8>)> {
        let frames = self.frames.lock().unwrap();
        frames
            .iter()
            .filter_map(|f| {
                let (ttl, proto, l4) = if let Ok(p) = Ipv4Packet::new_checked(&f[..]) {
                    (p.ttl(), p.protocol(), p.payload().to_vec())
                } else {
                    let p = Ipv6Packet::new_checked(&f[..]).ok()?;
                    (p.hop_limit(), p.next_header(), p.payload().to_vec())
                };
                match proto {
                    IpProtocol::TCP => {
                        let t = TcpPacket::new_checked(&l4[..]).ok()?;
                        Some((ttl, proto, t.src_port(), t.flags(), t.payload().to_vec()))
                    }
                    IpProtocol::UDP => {
                        let u = UdpPacket::new_checked(&l4[..]).ok()?;
                        Some((
                            ttl,
                            proto,
                            u.src_port(),
                            TcpFlags::default(),
                            u.payload().to_vec(),
                        ))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// Wait until a frame matching `f` went by.
    fn wait_for(
        &self,
        f: impl Fn(&(u8, IpProtocol, u16, TcpFlags, Vec<u8>)) -> bool,
    ) -> (u8, IpProtocol, u16, TcpFlags, Vec<u8>) {
        let t0 = std::time::Instant::now();
        loop {
            if let Some(x) = self.seen().into_iter().find(|x| f(x)) {
                return x;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "frame never seen");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A stack with 192.0.2.`n`/24 and 2001:db8::`n`/64 on a device whose frames
/// go to `out`.
fn tapped_host(n: u8, out: mpsc::Sender<Vec<u8>>) -> (Stack, berth::IfaceId) {
    let s = Stack::new(Config::default());
    let config = IfaceConfig {
        medium: Medium::Ip,
        address: format!("192.0.2.{n}/24").parse().unwrap(),
        mtu: 1500,
    };
    let iface = s
        .add_device(
            config,
            Box::new(move |f: &[u8]| {
                let _ = out.send(f.to_vec());
            }),
        )
        .unwrap();
    let v6: berth::wire::IpCidr = format!("2001:db8::{n}/64").parse().unwrap();
    s.add_address(iface, v6).unwrap();
    (s, iface)
}

impl Drop for Tapped {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn ttl_appears_on_the_wire() {
    let tap = Tapped::new();
    let l = TcpListener::bind(&tap.b, "0.0.0.0:80").unwrap();
    l.set_ttl(33).unwrap();
    let mut c = TcpStream::connect(&tap.a, "192.0.2.2:80").unwrap();
    let (mut s, _) = l.accept().unwrap();
    let syn = tap.wait_for(|x| {
        x.1 == IpProtocol::TCP && x.3.contains(TcpFlags::SYN) && !x.3.contains(TcpFlags::ACK)
    });
    assert_eq!(syn.0, 64, "the SYN carries the default TTL");
    let synack = tap.wait_for(|x| x.2 == 80 && x.3.contains(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!(synack.0, 33, "the SYN-ACK carries the listener's TTL");

    c.set_ttl(7).unwrap();
    c.write_all(b"seven").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(tap.wait_for(|x| x.4 == b"seven").0, 7);
    s.write_all(b"thirty-three").unwrap();
    let mut buf = [0u8; 12];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(
        tap.wait_for(|x| x.4 == b"thirty-three").0,
        33,
        "accepted stream inherits it"
    );

    // UDP over both families: IP_TTL and the IPv6 hop limit.
    let u = UdpSocket::bind(&tap.a, "0.0.0.0:0").unwrap();
    u.set_ttl(9).unwrap();
    u.send_to(b"udp4", "192.0.2.2:9").unwrap();
    assert_eq!(tap.wait_for(|x| x.4 == b"udp4").0, 9);
    let u6 = UdpSocket::bind(&tap.a, "[::]:0").unwrap();
    u6.set_ttl(5).unwrap();
    u6.send_to(b"udp6", "[2001:db8::2]:9").unwrap();
    assert_eq!(tap.wait_for(|x| x.4 == b"udp6").0, 5);
}

// ---- keepalive ------------------------------------------------------------------

/// A dead peer, through the runtime: the peer stack is shut down (it drops
/// every frame), short keepalive settings, and a blocked read learns of it.
#[test]
fn keepalive_aborts_a_dead_peer_through_the_api() {
    let (a, b) = Stack::pair().unwrap();
    let (mut c, _s) = connected(&a, &b, 11);
    c.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(Duration::from_millis(300))
            .with_interval(Duration::from_millis(100))
            .with_retries(3),
    )
    .unwrap();
    b.shutdown();
    let t0 = std::time::Instant::now();
    let e = c.read(&mut [0u8; 8]).unwrap_err();
    let waited = t0.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert_eq!(errno(&e), Some(code::ETIMEDOUT));
    // Idle time plus three probe intervals: 0.6 s.
    assert!(waited >= Duration::from_millis(550), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

/// A core stack that keeps a copy of every frame it sends, with the time.
struct Recorder {
    stack: CoreStack,
    sent: Vec<(Instant, Vec<u8>)>,
}

impl Node for Recorder {
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]) {
        self.stack.receive(now, berth::IfaceId(port), frame);
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        let t = self.stack.poll_transmit(now)?;
        self.sent.push((now, t.frame.clone()));
        Some((t.iface.0, t.frame))
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.stack.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.stack.handle_timeout(now);
    }
}

fn recorder(n: u8) -> Recorder {
    let mut stack = CoreStack::new(Config {
        seed: Some(n as u64),
        ..Config::default()
    });
    stack
        .add_interface(IfaceConfig {
            medium: Medium::Ip,
            address: format!("192.0.2.{n}/24").parse().unwrap(),
            mtu: 1500,
        })
        .unwrap();
    Recorder {
        stack,
        sent: Vec::new(),
    }
}

/// A connection in the simulator between A (192.0.2.1) and B (192.0.2.2),
/// idle from the moment A saw it established; A has SO_KEEPALIVE with the
/// stack defaults (7200 s / 75 s / 9).
struct KeepaliveSim {
    sim: Simulator<Recorder>,
    a: NodeId,
    link: berth::sim::LinkId,
    conn: berth::SocketHandle,
    idle_from: Instant,
    /// SND.UNA once established: A's ISS + 1 (the SYN's sequence number).
    snd_una: u32,
}

impl KeepaliveSim {
    fn new() -> KeepaliveSim {
        let mut sim = Simulator::new(7);
        let a = sim.add_node(recorder(1));
        let b = sim.add_node(recorder(2));
        let link = sim.connect(
            (a, 0),
            (b, 0),
            LinkConfig {
                delay: SimDuration::from_millis(10),
                medium: LinkMedium::Ip,
                ..LinkConfig::default()
            },
        );
        let l = sim.node_mut(b).stack.tcp_socket();
        sim.node_mut(b)
            .stack
            .tcp_bind(l, sa("192.0.2.2:22"))
            .unwrap();
        sim.node_mut(b).stack.tcp_listen(l, 1).unwrap();
        let conn = sim.node_mut(a).stack.tcp_socket();
        let now = sim.now();
        sim.node_mut(a)
            .stack
            .tcp_connect(now, conn, sa("192.0.2.2:22"))
            .unwrap();
        // A is established when the SYN-ACK arrives: its last segment received.
        while sim.node(a).stack.tcp_state(conn).unwrap() != berth::TcpState::Established {
            assert!(sim.step().is_some(), "handshake stalled");
        }
        let idle_from = sim.now();
        sim.node_mut(a)
            .stack
            .tcp_set_keepalive(idle_from, conn, true, None, None, None)
            .unwrap();
        let syn_seq = sim
            .node(a)
            .sent
            .iter()
            .find_map(|(_, f)| {
                let ip = Ipv4Packet::new_checked(&f[..]).ok()?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                tcp.flags()
                    .contains(TcpFlags::SYN)
                    .then_some(tcp.seq_number().0)
            })
            .expect("A sent its SYN");
        sim.node_mut(a).sent.clear();
        sim.run_for(SimDuration::from_secs(1));
        assert!(sim.node_mut(b).stack.tcp_accept(l).is_ok());
        KeepaliveSim {
            sim,
            a,
            link,
            conn,
            idle_from,
            snd_una: syn_seq.wrapping_add(1),
        }
    }

    /// Segments A sent while idle: (seconds idle, seq, payload length, flags).
    fn sent(&self) -> Vec<(u64, u32, usize, TcpFlags)> {
        self.sim
            .node(self.a)
            .sent
            .iter()
            .filter_map(|(t, f)| {
                let ip = Ipv4Packet::new_checked(&f[..]).ok()?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                Some((
                    (*t - self.idle_from).as_secs(),
                    tcp.seq_number().0,
                    tcp.payload().len(),
                    tcp.flags(),
                ))
            })
            .collect()
    }

    /// Keepalive probes: the bare ACKs among them.
    fn probes(&self) -> Vec<(u64, u32, usize, TcpFlags)> {
        let mut s = self.sent();
        s.retain(|x| x.3 == TcpFlags::ACK);
        s
    }

    fn run_idle(&mut self, secs: u64) {
        let t = self.idle_from + SimDuration::from_secs(secs);
        self.sim.run_until(t);
    }
}

#[test]
fn keepalive_aborts_a_dead_peer_in_virtual_time() {
    let mut k = KeepaliveSim::new();
    // The peer vanishes (cable pulled): nothing A sends is answered.
    k.sim.set_link_up(k.link, false);
    k.run_idle(7199);
    assert!(k.probes().is_empty(), "silent for tcp_keepalive_time");
    k.run_idle(7200 + 8 * 75);
    let p = k.probes();
    // Probes at 7200 s, then every 75 s: nine of them (tcp_keepalive_probes).
    let at: Vec<u64> = p.iter().map(|x| x.0).collect();
    assert_eq!(at, (0..9).map(|i| 7200 + i * 75).collect::<Vec<_>>());
    // Each one is seq = SND.UNA − 1 with no data: the peer must answer with an
    // ACK, and the probe uses no sequence space.
    let probe_seq = k.snd_una.wrapping_sub(1);
    assert!(p.iter().all(|x| x.1 == probe_seq && x.2 == 0), "{p:?}");
    let now = k.sim.now();
    let (a, conn) = (k.a, k.conn);
    assert_eq!(
        k.sim.node(a).stack.tcp_state(conn).unwrap(),
        berth::TcpState::Established,
        "still hoping at the ninth probe"
    );
    assert!(k
        .sim
        .node_mut(a)
        .stack
        .tcp_recv(now, conn, &mut [0u8; 8])
        .is_err());
    // The ninth goes unanswered for another interval: aborted, ETIMEDOUT.
    k.run_idle(7200 + 9 * 75);
    let now = k.sim.now();
    let e = k
        .sim
        .node_mut(a)
        .stack
        .tcp_recv(now, conn, &mut [0u8; 8])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert_eq!(errno(&e), Some(code::ETIMEDOUT));
    // Linux resets a connection it gives up on (tcp_keepalive_timer), and
    // probes no more.
    let sent = k.sent();
    assert_eq!(sent.len(), 10, "{sent:?}");
    assert_eq!(sent[9].0, 7200 + 9 * 75);
    assert!(sent[9].3.contains(TcpFlags::RST), "{sent:?}");
}

#[test]
fn keepalive_answered_keeps_the_connection() {
    let mut k = KeepaliveSim::new();
    k.run_idle(3 * 7200 + 60);
    // One probe per idle period: each is answered, which resets the count.
    let at: Vec<u64> = k.probes().iter().map(|x| x.0).collect();
    assert_eq!(at, vec![7200, 14400, 21600], "{at:?}");
    let (a, conn) = (k.a, k.conn);
    assert_eq!(
        k.sim.node(a).stack.tcp_state(conn).unwrap(),
        berth::TcpState::Established
    );
}
