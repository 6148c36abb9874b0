//! A SYN flood in the simulator: 100,000 spoofed SYNs at the line rate of a
//! 100 Mbit/s link against a listener with backlog 128, while legitimate
//! clients connect and an established connection keeps transferring. With
//! SYN cookies every client completes its handshake within 1 s, during the
//! flood and right after, and the transfer stays byte-exact.

use berth::core::{Config, IfaceConfig, SocketHandle, Stack, Stats, SynCookies, TcpState};
use berth::sim::{Duration, Instant, LinkConfig, Node, Simulator};
use berth::wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Addr, Ipv4Repr,
    SeqNumber, TcpFlags, TcpRepr,
};
use std::net::SocketAddrV4;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const FLOOD: usize = 100_000;
const BULK: usize = 2_000_000;
/// One 78-byte SYN frame every 6.24 µs fills a 100 Mbit/s link.
const FLOOD_GAP_NS: u64 = 6_240;

/// Sends `FLOOD` SYNs from spoofed on-link addresses 192.0.2.100–.249, as
/// fast as its link takes them.
struct Flooder {
    sent: usize,
    next: Instant,
}

impl Flooder {
    fn syn(i: usize) -> Vec<u8> {
        let src = Ipv4Addr::new(192, 0, 2, 100 + (i % 150) as u8);
        let mut t = TcpRepr::new(
            1024 + (i / 150) as u16,
            7,
            SeqNumber((i as u32).wrapping_mul(2_654_435_761)),
            TcpFlags::SYN,
        );
        t.window_len = 64_240;
        t.max_seg_size = Some(1460);
        t.sack_permitted = true;
        t.window_scale = Some(7);
        t.timestamp = Some((i as u32, 0));
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: SERVER,
            protocol: IpProtocol::TCP,
            payload_len: t.buffer_len(),
            ttl: 64,
            dscp_ecn: 0,
            ident: i as u16,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut f = vec![0u8; 14 + ip.buffer_len()];
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 0x66]),
            dst_addr: SERVER_MAC,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
        ip.emit(&mut f[14..]);
        t.emit(&mut f[34..], &src, &SERVER);
        f
    }
}

enum Host {
    Stack(Box<Stack>),
    Flooder(Flooder),
}

impl Host {
    fn stack(&mut self) -> &mut Stack {
        match self {
            Host::Stack(s) => s,
            Host::Flooder(_) => panic!("not a stack"),
        }
    }
}

impl Node for Host {
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]) {
        if let Host::Stack(s) = self {
            Stack::receive(s, now, berth::core::IfaceId(port), frame);
        }
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        match self {
            Host::Stack(s) => Stack::poll_transmit(s, now).map(|t| (t.iface.0, t.frame)),
            Host::Flooder(f) if f.sent < FLOOD && f.next <= now => {
                f.sent += 1;
                f.next += Duration::from_nanos(FLOOD_GAP_NS);
                Some((0, Flooder::syn(f.sent - 1)))
            }
            Host::Flooder(_) => None,
        }
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        match self {
            Host::Stack(s) => Stack::poll_timeout(s),
            Host::Flooder(f) => (f.sent < FLOOD).then_some(f.next),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        if let Host::Stack(s) = self {
            Stack::handle_timeout(s, now);
        }
    }
}

fn stack(n: u8, cookies: SynCookies) -> Host {
    let mut config = Config {
        seed: Some(n as u64),
        ..Config::default()
    };
    config.tcp.syncookies = cookies;
    let mut s = Stack::new(config);
    s.add_interface(IfaceConfig {
        medium: berth::core::Medium::Ethernet(EthernetAddress([2, 0, 0, 0, 0, n])),
        address: format!("192.0.2.{n}/24").parse().unwrap(),
        mtu: 1500,
    })
    .unwrap();
    Host::Stack(Box::new(s))
}

fn link(mbit: u64) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(500),
        rate_bps: Some(mbit * 1_000_000),
        ..LinkConfig::default()
    }
}

/// Pattern bytes for the long transfer.
fn byte(i: usize) -> u8 {
    ((i * 131 + i / 251) % 251) as u8
}

/// What one flood run saw.
struct Run {
    /// Per client: when it started (after the flood began) and how long its
    /// handshake took, if it completed.
    clients: Vec<(Duration, Option<Duration>)>,
    flood_took: Duration,
    accepted: usize,
    max_half_open: usize,
    bulk_sent: usize,
    bulk_echoed_back: usize,
    server: Stats,
}

impl Run {
    fn during(&self) -> impl Iterator<Item = &(Duration, Option<Duration>)> {
        self.clients.iter().filter(|(at, _)| *at < self.flood_took)
    }
}

fn flood_run(cookies: SynCookies) -> Run {
    let mut sim: Simulator<Host> = Simulator::new(11);
    let sw = sim.add_switch();
    let client = sim.add_node(stack(1, cookies));
    let server = sim.add_node(stack(2, cookies));
    sim.attach(sw, (client, 0), link(1000));
    sim.attach(sw, (server, 0), link(1000));

    let now = sim.now();
    let s = sim.node_mut(server).stack();
    let l = s.tcp_socket();
    s.tcp_bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
        .unwrap();
    s.tcp_listen(l, 128).unwrap();
    let dst = SocketAddrV4::new(SERVER, 7);

    // The long-running connection, established before the flood.
    let c = sim.node_mut(client).stack();
    let bulk = c.tcp_socket();
    c.tcp_connect(now, bulk, dst).unwrap();
    sim.run_for(Duration::from_millis(50));
    let (bulk_srv, _) = sim.node_mut(server).stack().tcp_accept(l).unwrap();

    // The flood starts now, from a host on a 100 Mbit/s link.
    let start = sim.now();
    let flooder = sim.add_node(Host::Flooder(Flooder {
        sent: 0,
        next: start,
    }));
    sim.attach(sw, (flooder, 0), link(100));

    // Legitimate clients: one every 50 ms for 1.5 s (the flood takes 0.62 s).
    let mut clients: Vec<(Instant, SocketHandle, Option<Duration>)> = Vec::new();
    let mut accepted = Vec::new();
    let (mut sent, mut echoed, mut got) = (0usize, 0usize, 0usize);
    let mut buf = vec![0u8; 65536];
    let mut pending: Vec<u8> = Vec::new();
    let mut next_client = start;
    let mut max_half_open = 0;
    let mut next_census = start;
    let end = start + Duration::from_millis(3_000);
    while sim.now() < end {
        let now = sim.now();
        if now >= next_client && now < start + Duration::from_millis(1_500) {
            let c = sim.node_mut(client).stack();
            let h = c.tcp_socket();
            c.tcp_connect(now, h, dst).unwrap();
            clients.push((now, h, None));
            next_client += Duration::from_millis(50);
        }
        // Client side: handshake times; the bulk sender and its checker.
        let c = sim.node_mut(client).stack();
        for (at, h, done) in clients.iter_mut() {
            if done.is_none() && c.tcp_state(*h).ok() == Some(TcpState::Established) {
                *done = Some(now - *at);
            }
        }
        while sent < BULK {
            let chunk: Vec<u8> = (sent..(sent + 16_384).min(BULK)).map(byte).collect();
            match c.tcp_send(now, bulk, &chunk) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
        while let Ok(n) = c.tcp_recv(now, bulk, &mut buf) {
            if n == 0 {
                break;
            }
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, byte(got + k), "echoed byte {} differs", got + k);
            }
            got += n;
        }
        // Server side: accept and echo.
        let s = sim.node_mut(server).stack();
        while let Ok((h, _)) = s.tcp_accept(l) {
            accepted.push(h);
        }
        loop {
            // Echo what is pending first; read more only when all of it went.
            while !pending.is_empty() {
                match s.tcp_send(now, bulk_srv, &pending) {
                    Ok(m) if m > 0 => {
                        echoed += m;
                        pending.drain(..m);
                    }
                    _ => break,
                }
            }
            if !pending.is_empty() {
                break;
            }
            match s.tcp_recv(now, bulk_srv, &mut buf) {
                Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        if now >= next_census {
            // The SYN-RECV rows, once per simulated millisecond.
            next_census = now + Duration::from_millis(1);
            let rows = s.sockets();
            let half_open = rows.iter().filter(|r| r.state == "SYN-RECV").count();
            max_half_open = max_half_open.max(half_open);
        }
        if sim.step().is_none() {
            break;
        }
    }
    let flood_took = match sim.node(flooder) {
        Host::Flooder(f) => {
            assert_eq!(f.sent, FLOOD);
            f.next - start
        }
        Host::Stack(_) => unreachable!(),
    };
    let server = sim.node_mut(server).stack().stats().clone();
    let _ = echoed;
    Run {
        clients: clients.iter().map(|(at, _, d)| (*at - start, *d)).collect(),
        flood_took,
        accepted: accepted.len(),
        max_half_open,
        bulk_sent: sent,
        bulk_echoed_back: got,
        server,
    }
}

#[test]
fn clients_connect_within_a_second_during_and_after_a_100k_syn_flood() {
    let r = flood_run(SynCookies::OnOverflow);
    let during = r.during().count();
    let times: Vec<Duration> = r
        .clients
        .iter()
        .map(|(at, d)| d.unwrap_or_else(|| panic!("client started at {at:?} never connected")))
        .collect();
    eprintln!(
        "cookies: flood of {FLOOD} SYNs in {:?} ({:.0} SYN/s); {} clients ({during} during the flood), handshake max {:?}",
        r.flood_took,
        FLOOD as f64 / r.flood_took.as_secs_f64(),
        times.len(),
        times.iter().max()
    );
    assert!(during >= 10, "clients connected during the flood: {during}");
    for (i, t) in times.iter().enumerate() {
        assert!(*t < Duration::from_secs(1), "client {i} took {t:?}");
    }
    assert_eq!(r.accepted, r.clients.len());
    assert_eq!(r.max_half_open, 128, "the SYN queue was full");

    // The transfer running through the flood is byte-exact (checked byte by
    // byte as it came back).
    assert_eq!(r.bulk_sent, BULK);
    assert_eq!(r.bulk_echoed_back, BULK);

    // Counters: every SYN that found the queue full got a cookie; every
    // client that completed while the queue was full came back through one.
    let st = &r.server;
    let arrived = st.tcp_syncookies_sent + st.tcp_passive_opens - st.tcp_syncookies_recv;
    assert_eq!(arrived, FLOOD as u64 + r.clients.len() as u64 + 1, "{st:?}");
    assert_eq!(st.tcp_req_q_full_do_cookies, st.tcp_syncookies_sent);
    assert!(st.tcp_syncookies_recv >= during as u64 - 1, "{st:?}");
    assert_eq!(st.tcp_syncookies_failed, 0);
    assert_eq!(st.tcp_listen_drops, 0);
}

#[test]
fn without_cookies_the_same_flood_locks_clients_out() {
    // The baseline the cookies are for: the SYN queue stays full and the
    // clients' SYNs are dropped until their retransmissions find room.
    let r = flood_run(SynCookies::Off);
    let during: Vec<_> = r.during().collect();
    let locked_out = during
        .iter()
        .filter(|(_, d)| d.is_none_or(|d| d >= Duration::from_secs(1)))
        .count();
    eprintln!(
        "no cookies: {locked_out} of {} clients during the flood took 1 s or more: {:?}",
        during.len(),
        during
    );
    assert!(locked_out * 2 > during.len(), "{during:?}");
    assert!(r.server.tcp_req_q_full_drop > (FLOOD as u64) * 9 / 10);
    assert_eq!(r.server.tcp_syncookies_sent, 0);
}
