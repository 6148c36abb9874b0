//! Interoperability with smoltcp: a berth-core stack and a smoltcp interface on
//! the two ends of one simulated in-memory link (bare IP, no Ethernet, so no
//! ARP or NDP: smoltcp's `Medium::Ip`), TCP in both directions (berth client →
//! smoltcp server, smoltcp client → berth server) on clean and lossy links, UDP
//! and ICMP echo both ways, and a tshark check of a capture; over IPv4 and, with
//! the same drivers, over IPv6 (the `v6_` tests).
//!
//! berth is 192.0.2.1/24, smoltcp is 192.0.2.2/24; in an IPv6 world berth is
//! 2001:db8::1/64 and smoltcp 2001:db8::2/64 (berth also has its automatic
//! link-local address; a bare IP link runs no DAD). smoltcp's clock is the
//! simulator's virtual clock; its timer comes from `Interface::poll_at`.

mod common;
use common::tshark_complaints;

use berth::core::{
    Config, CongestionAlgorithm, IfaceConfig, IfaceId, SocketHandle, Stack, TcpConfig, TcpState,
};
use berth::sim::{Duration, Instant, LinkConfig, LinkId, Medium, Node, NodeId, Simulator};
use berth::wire::{Icmpv4Repr, Icmpv6Repr, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv6Cidr};
use smoltcp::iface::{Config as SmolConfig, Interface, SocketHandle as SmolHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use std::cell::Cell;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;

const BERTH_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SMOL_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const BERTH_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const SMOL_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// The address family a world's traffic uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn berth(self) -> IpAddr {
        match self {
            Family::V4 => BERTH_ADDR.into(),
            Family::V6 => BERTH_ADDR6.into(),
        }
    }

    fn smol(self) -> IpAddr {
        match self {
            Family::V4 => SMOL_ADDR.into(),
            Family::V6 => SMOL_ADDR6.into(),
        }
    }

    /// IP plus UDP header bytes.
    fn udp_overhead(self) -> usize {
        match self {
            Family::V4 => 28,
            Family::V6 => 48,
        }
    }
}
const MTU: usize = 1500;

// ---------------------------------------------------------------------------
// smoltcp as a simulator node
// ---------------------------------------------------------------------------

/// An in-memory smoltcp device: frames the simulator delivered, frames
/// smoltcp wants sent.
#[derive(Default)]
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct RxToken(Vec<u8>);
struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = phy::Medium::Ip;
        caps.max_transmission_unit = MTU;
        // Compute and verify every checksum: berth's must be right.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

thread_local! {
    /// Virtual time of the smoltcp node being polled on this thread, for the
    /// TCP timestamp generator (a plain `fn() -> u32`).
    static SMOL_NOW_MS: Cell<u64> = const { Cell::new(0) };
}

fn smol_tsval() -> u32 {
    // Offset so the clock does not start at 0.
    SMOL_NOW_MS.with(|c| c.get() as u32).wrapping_add(1_000_000)
}

fn smol_time(t: Instant) -> SmolInstant {
    SmolInstant::from_micros(t.total_micros() as i64)
}

/// A smoltcp interface with its device and sockets.
struct Smol {
    iface: Interface,
    dev: Queues,
    sockets: SocketSet<'static>,
    now: Instant,
    /// Test impairment: in each burst of frames, send a FIN-carrying TCP
    /// segment ahead of the segments queued before it (out of order).
    fin_first: bool,
}

/// A bare IP frame carrying a TCP segment with FIN set (an IPv6 one without
/// extension headers, as smoltcp sends them).
fn is_tcp_fin(frame: &[u8]) -> bool {
    let version = frame.first().copied().unwrap_or(0) >> 4;
    let (proto_at, hlen) = if version == 6 {
        (6, 40)
    } else {
        (9, (frame.first().copied().unwrap_or(0) & 0x0f) as usize * 4)
    };
    frame.len() > hlen + 13 && frame[proto_at] == 6 && frame[hlen + 13] & 0x01 != 0
}

impl Smol {
    fn new(seed: u64, family: Family) -> Smol {
        let mut dev = Queues::default();
        let mut config = SmolConfig::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut dev, SmolInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(IpAddress::Ipv4(SMOL_ADDR), 24))
                .unwrap();
            if family == Family::V6 {
                addrs
                    .push(IpCidr::new(IpAddress::Ipv6(SMOL_ADDR6), 64))
                    .unwrap();
            }
        });
        Smol {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            now: Instant::ZERO,
            fin_first: false,
        }
    }

    fn poll(&mut self, now: Instant) {
        self.now = self.now.max(now);
        SMOL_NOW_MS.with(|c| c.set(self.now.total_millis()));
        self.iface
            .poll(smol_time(self.now), &mut self.dev, &mut self.sockets);
    }

    /// A TCP socket with `buf`-byte send and receive buffers.
    fn tcp_socket(&mut self, buf: usize, timestamps: bool) -> SmolHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; buf]),
            tcp::SocketBuffer::new(vec![0; buf]),
        );
        if timestamps {
            s.set_tsval_generator(Some(smol_tsval));
        }
        self.sockets.add(s)
    }

    fn tcp(&mut self, h: SmolHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}

impl Node for Smol {
    fn receive(&mut self, now: Instant, _port: usize, frame: &[u8]) {
        self.dev.rx.push_back(frame.to_vec());
        self.poll(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        if self.dev.tx.is_empty() {
            // smoltcp sends at most one segment per socket and poll: poll until
            // it has nothing more, so the whole burst is queued.
            loop {
                let before = self.dev.tx.len();
                self.poll(now);
                if self.dev.tx.len() == before {
                    break;
                }
            }
            if self.fin_first {
                if let Some(i) = self.dev.tx.iter().position(|f| is_tcp_fin(f)) {
                    if i > 0 {
                        let fin = self.dev.tx.remove(i).unwrap();
                        self.dev.tx.push_front(fin);
                    }
                }
            }
        }
        self.dev.tx.pop_front().map(|f| (0, f))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        if !self.dev.rx.is_empty() {
            return Some(self.now);
        }
        let at = self.iface.poll_at(smol_time(self.now), &self.sockets)?;
        Some(Instant::from_micros(at.total_micros().max(0) as u64))
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.poll(now);
    }
}

/// The two kinds of host on the link.
enum Host {
    Berth(Box<Stack>),
    Smol(Box<Smol>),
}

impl Node for Host {
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]) {
        match self {
            Host::Berth(s) => Node::receive(&mut **s, now, port, frame),
            Host::Smol(s) => s.receive(now, port, frame),
        }
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        match self {
            Host::Berth(s) => Node::poll_transmit(&mut **s, now),
            Host::Smol(s) => s.poll_transmit(now),
        }
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        match self {
            Host::Berth(s) => Node::poll_timeout(&mut **s),
            Host::Smol(s) => s.poll_timeout(),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Host::Berth(s) => Node::handle_timeout(&mut **s, now),
            Host::Smol(s) => s.handle_timeout(now),
        }
    }
}

/// berth (node 0) and smoltcp (node 1) on one bare-IP link.
struct World {
    sim: Simulator<Host>,
    berth: NodeId,
    smol: NodeId,
    link: LinkId,
    /// The family of the test traffic (berth and smoltcp have IPv4 addresses
    /// in both; IPv6 ones only in a V6 world).
    family: Family,
    /// smoltcp's TCP sockets send timestamps (RFC 7323).
    timestamps: bool,
    /// Steps in a row that did not advance the clock.
    same_instant: u32,
}

impl World {
    fn new(seed: u64, loss: f64, reorder: f64) -> World {
        World::with(seed, loss, reorder, 0.0, false)
    }

    /// [`World::new`] with IPv6 test traffic.
    fn new6(seed: u64, loss: f64, reorder: f64) -> World {
        World::build(
            Family::V6,
            seed,
            loss,
            reorder,
            0.0,
            false,
            TcpConfig::default(),
        )
    }

    /// Link impairments per direction; with `timestamps` smoltcp's TCP sockets
    /// use RFC 7323 timestamps (smoltcp ≤ 0.12 did not count the option when
    /// sizing segments, so its full segments were 1512 bytes and the 1500-byte
    /// link dropped them).
    fn with(seed: u64, loss: f64, reorder: f64, duplicate: f64, timestamps: bool) -> World {
        World::with_tcp(
            seed,
            loss,
            reorder,
            duplicate,
            timestamps,
            TcpConfig::default(),
        )
    }

    /// [`World::with`], berth on the TCP settings `tcp`.
    fn with_tcp(
        seed: u64,
        loss: f64,
        reorder: f64,
        duplicate: f64,
        timestamps: bool,
        tcp: TcpConfig,
    ) -> World {
        World::build(Family::V4, seed, loss, reorder, duplicate, timestamps, tcp)
    }

    /// [`World::with_tcp`] for test traffic of `family`.
    fn build(
        family: Family,
        seed: u64,
        loss: f64,
        reorder: f64,
        duplicate: f64,
        timestamps: bool,
        tcp: TcpConfig,
    ) -> World {
        let cfg = LinkConfig {
            delay: Duration::from_millis(5),
            loss,
            reorder,
            duplicate,
            mtu: MTU,
            medium: Medium::Ip,
            ..LinkConfig::default()
        };
        let mut stack = Stack::new(Config {
            seed: Some(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1)),
            tcp,
            ..Config::default()
        });
        stack
            .add_interface(IfaceConfig {
                medium: berth::core::Medium::Ip,
                address: Ipv4Cidr::new(BERTH_ADDR, 24).unwrap(),
                mtu: MTU,
            })
            .unwrap();
        if family == Family::V6 {
            stack
                .add_address(
                    Instant::ZERO,
                    IfaceId(0),
                    Ipv6Cidr::new(BERTH_ADDR6, 64).unwrap(),
                )
                .unwrap();
        }
        let mut sim = Simulator::new(seed);
        let berth = sim.add_node(Host::Berth(Box::new(stack)));
        let smol = sim.add_node(Host::Smol(Box::new(Smol::new(seed ^ 0x5eed, family))));
        let link = sim.connect((berth, 0), (smol, 0), cfg);
        World {
            sim,
            berth,
            smol,
            link,
            family,
            timestamps,
            same_instant: 0,
        }
    }

    fn now(&self) -> Instant {
        self.sim.now()
    }

    fn b(&mut self) -> &mut Stack {
        match self.sim.node_mut(self.berth) {
            Host::Berth(s) => s,
            Host::Smol(_) => unreachable!(),
        }
    }

    fn s(&mut self) -> &mut Smol {
        match self.sim.node_mut(self.smol) {
            Host::Smol(s) => s,
            Host::Berth(_) => unreachable!(),
        }
    }

    /// One simulator step; panics if nothing is pending (a stuck run) or if
    /// the clock stops moving (a node whose timer stays due).
    fn step(&mut self) {
        let before = self.sim.now();
        self.sim.flush();
        assert!(self.sim.step().is_some(), "simulation ran out of events");
        if self.sim.now() == before {
            self.same_instant += 1;
            assert!(self.same_instant < 100_000, "clock stuck at {before:?}");
        } else {
            self.same_instant = 0;
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn data(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 131 + salt as usize + i / 251) % 256) as u8)
        .collect()
}

/// FNV-1a, to report mismatches briefly.
fn hash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    assert!(
        got == want,
        "{what}: bytes differ (hash {:016x} vs {:016x}; first difference at {})",
        hash(got),
        hash(want),
        got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0)
    );
}

/// What one TCP run measured.
#[derive(Debug)]
struct Report {
    /// Virtual time from connect until both sides saw everything.
    elapsed: Duration,
    berth_retrans: u64,
    link_drops: (u64, u64),
    /// berth's congestion control (tcp_info).
    congestion: &'static str,
}

impl Report {
    fn show(&self, what: &str) {
        eprintln!(
            "{what}: {:.3} s virtual, berth retransmissions {}, link losses {} / {}",
            self.elapsed.as_secs_f64(),
            self.berth_retrans,
            self.link_drops.0,
            self.link_drops.1
        );
    }
}

fn link_drops(w: &World) -> (u64, u64) {
    let (ab, ba) = w.sim.link_stats(w.link);
    (ab.lost, ba.lost)
}

// ---------------------------------------------------------------------------
// TCP: berth client → smoltcp server
// ---------------------------------------------------------------------------

/// berth connects to smoltcp's listener, sends `payload` and shuts down its
/// write side; smoltcp echoes everything back and closes when it has read the
/// FIN; berth reads the echo to end of file. Checks both copies byte-exact,
/// then the close: smoltcp's socket reaches CLOSED, berth TIME-WAIT and, after
/// 2×MSL, CLOSED.
fn berth_to_smol(w: &mut World, payload: &[u8], limit: Duration) -> Report {
    let ts = w.timestamps;
    let server = w.s().tcp_socket(65_536, ts);
    w.s().tcp(server).listen(80).unwrap();
    let c = w.b().tcp_socket();
    let start = w.now();
    let smol_ip = w.family.smol();
    w.b()
        .tcp_connect(start, c, SocketAddr::new(smol_ip, 80))
        .unwrap();

    let deadline = start + limit;
    let (mut sent, mut shut) = (0, false);
    let mut at_server = Vec::new();
    let mut echo_pending: VecDeque<u8> = VecDeque::new();
    let mut server_closed = false;
    let mut echoed = Vec::new();
    let mut eof = false;
    let mut buf = vec![0u8; 65_536];
    while !(eof && server_closed) {
        assert!(
            w.now() < deadline,
            "not done by {:?}: sent {sent}, server got {}, echo got {}, berth {:?}, smoltcp {:?}",
            deadline,
            at_server.len(),
            echoed.len(),
            w.b().tcp_state(c),
            w.s().tcp(server).state()
        );
        let now = w.now();
        // berth client: send, then half-close.
        let st = w.b().tcp_state(c).unwrap();
        if st != TcpState::SynSent {
            while sent < payload.len() {
                match w.b().tcp_send(now, c, &payload[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            if sent == payload.len() && !shut {
                w.b().tcp_shutdown(now, c, Shutdown::Write).unwrap();
                shut = true;
            }
        }
        // smoltcp server: echo.
        {
            let s = w.s().tcp(server);
            while s.can_recv() {
                let n = s.recv_slice(&mut buf).unwrap();
                at_server.extend_from_slice(&buf[..n]);
                echo_pending.extend(&buf[..n]);
            }
            while !echo_pending.is_empty() && s.can_send() {
                let (a, _) = echo_pending.as_slices();
                let n = s.send_slice(a).unwrap();
                echo_pending.drain(..n);
                if n == 0 {
                    break;
                }
            }
            // The client's FIN has arrived and everything is echoed: close.
            if !server_closed
                && !s.may_recv()
                && !matches!(s.state(), tcp::State::Listen | tcp::State::SynReceived)
                && echo_pending.is_empty()
            {
                s.close();
                server_closed = true;
            }
        }
        // berth client: read the echo.
        loop {
            match w.b().tcp_recv(now, c, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        if eof && server_closed {
            break;
        }
        w.step();
    }
    let elapsed = w.now() - start;
    assert_same("smoltcp server received", &at_server, payload);
    assert_same("berth client received the echo", &echoed, payload);

    // Close: smoltcp goes LAST-ACK → CLOSED, berth FIN-WAIT-2 → TIME-WAIT. Under
    // heavy loss smoltcp's backed-off FIN retransmission may come late.
    let until = w.now() + Duration::from_secs(600);
    let mut saw_time_wait = false;
    while w.now() < until && w.s().tcp(server).state() != tcp::State::Closed {
        saw_time_wait |= w.b().tcp_state(c).unwrap() == TcpState::TimeWait;
        w.step();
    }
    saw_time_wait |= w.b().tcp_state(c).unwrap() == TcpState::TimeWait;
    assert_eq!(w.s().tcp(server).state(), tcp::State::Closed);
    assert!(saw_time_wait, "berth never in TIME-WAIT");
    let info = w.b().tcp_info(c).unwrap();
    assert_eq!(info.bytes_acked, payload.len() as u64);
    let t = w.now();
    w.sim.run_until(t + Duration::from_secs(61));
    assert_eq!(w.b().tcp_state(c).unwrap(), TcpState::Closed);
    w.b().close(c).unwrap();
    Report {
        elapsed,
        berth_retrans: info.total_retrans,
        link_drops: link_drops(w),
        congestion: info.congestion,
    }
}

// ---------------------------------------------------------------------------
// TCP: smoltcp client → berth server
// ---------------------------------------------------------------------------

/// smoltcp connects to berth's listener, sends `payload` and closes (FIN
/// after the data; it keeps reading); berth accepts, echoes, and shuts down
/// its write side after end of file. Checks both copies byte-exact, then the
/// close: berth LAST-ACK → CLOSED, smoltcp TIME-WAIT → CLOSED.
fn smol_to_berth(w: &mut World, payload: &[u8], limit: Duration) -> Report {
    let l = w.b().tcp_socket();
    let berth_ip = w.family.berth();
    w.b().tcp_bind(l, SocketAddr::new(berth_ip, 80)).unwrap();
    w.b().tcp_listen(l, 8).unwrap();
    let ts = w.timestamps;
    let client = w.s().tcp_socket(65_536, ts);
    {
        let s = w.s();
        let cx = s.iface.context();
        s.sockets
            .get_mut::<tcp::Socket>(client)
            .connect(cx, IpEndpoint::new(IpAddress::from(berth_ip), 80), 49_500)
            .unwrap();
    }
    let start = w.now();
    let deadline = start + limit;
    let (mut sent, mut client_closed) = (0, false);
    let mut server: Option<SocketHandle> = None;
    let mut at_server = Vec::new();
    let mut echo_pending: Vec<u8> = Vec::new();
    let mut server_eof = false;
    let mut server_shut = false;
    let mut echoed = Vec::new();
    let mut client_eof = false;
    let mut buf = vec![0u8; 65_536];
    loop {
        assert!(
            w.now() < deadline,
            "not done by {:?}: sent {sent}, server got {}, echo got {}, smoltcp {:?}",
            deadline,
            at_server.len(),
            echoed.len(),
            w.s().tcp(client).state()
        );
        let now = w.now();
        // smoltcp client: send, close, read the echo.
        {
            let s = w.s().tcp(client);
            while sent < payload.len() && s.can_send() {
                let n = s.send_slice(&payload[sent..]).unwrap();
                sent += n;
                if n == 0 {
                    break;
                }
            }
            if sent == payload.len() && !client_closed && s.may_send() {
                s.close();
                client_closed = true;
            }
            while s.can_recv() {
                let n = s.recv_slice(&mut buf).unwrap();
                echoed.extend_from_slice(&buf[..n]);
            }
            if client_closed && !s.may_recv() && !s.can_recv() {
                client_eof = true;
            }
        }
        // berth server: accept, echo, shut down after EOF.
        if server.is_none() {
            if let Ok((h, peer)) = w.b().tcp_accept(l) {
                assert_eq!(peer, SocketAddr::new(w.family.smol(), 49_500));
                server = Some(h);
            }
        }
        if let Some(h) = server {
            while !server_eof {
                match w.b().tcp_recv(now, h, &mut buf) {
                    Ok(0) => server_eof = true,
                    Ok(n) => {
                        at_server.extend_from_slice(&buf[..n]);
                        echo_pending.extend_from_slice(&buf[..n]);
                    }
                    Err(_) => break,
                }
            }
            while !echo_pending.is_empty() {
                match w.b().tcp_send(now, h, &echo_pending) {
                    Ok(n) => {
                        echo_pending.drain(..n);
                    }
                    Err(_) => break,
                }
            }
            if server_eof && echo_pending.is_empty() && !server_shut {
                w.b().tcp_shutdown(now, h, Shutdown::Write).unwrap();
                server_shut = true;
            }
        }
        if client_eof && server_shut {
            break;
        }
        w.step();
    }
    let elapsed = w.now() - start;
    let h = server.unwrap();
    assert_same("berth server received", &at_server, payload);
    assert_same("smoltcp client received the echo", &echoed, payload);

    // Close: berth LAST-ACK → CLOSED; smoltcp TIME-WAIT (10 s) → CLOSED.
    let until = w.now() + Duration::from_secs(600);
    while w.now() < until && w.b().tcp_state(h).unwrap() != TcpState::Closed {
        w.step();
    }
    assert_eq!(w.b().tcp_state(h).unwrap(), TcpState::Closed);
    assert!(
        matches!(
            w.s().tcp(client).state(),
            tcp::State::TimeWait | tcp::State::Closed
        ),
        "smoltcp {:?}",
        w.s().tcp(client).state()
    );
    let info = w.b().tcp_info(h).unwrap();
    let t = w.now();
    w.sim.run_until(t + Duration::from_secs(11));
    assert_eq!(w.s().tcp(client).state(), tcp::State::Closed);
    assert_eq!(w.b().tcp_state(l).unwrap(), TcpState::Listen);
    w.b().close(h).unwrap();
    w.b().close(l).unwrap();
    Report {
        elapsed,
        berth_retrans: info.total_retrans,
        link_drops: link_drops(w),
        congestion: info.congestion,
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

const MB: usize = 1_000_000;

#[test]
fn berth_client_smoltcp_server_one_byte() {
    let mut w = World::new(11, 0.0, 0.0);
    let r = berth_to_smol(&mut w, b"x", Duration::from_secs(10));
    assert_eq!(r.berth_retrans, 0);
}

#[test]
fn berth_client_smoltcp_server_1mb_clean() {
    let mut w = World::new(12, 0.0, 0.0);
    let r = berth_to_smol(&mut w, &data(MB, 1), Duration::from_secs(120));
    r.show("berth → smoltcp 1 MB echo, clean");
    assert_eq!(r.berth_retrans, 0);
}

#[test]
fn berth_client_smoltcp_server_1mb_lossy() {
    let mut w = World::new(13, 0.01, 0.0);
    let r = berth_to_smol(&mut w, &data(MB, 2), Duration::from_secs(1200));
    r.show("berth → smoltcp 1 MB echo, 1 % loss");
    assert!(r.link_drops.0 > 0 && r.link_drops.1 > 0, "{r:?}");
}

#[test]
fn berth_client_smoltcp_server_one_byte_lossy() {
    for seed in 20..30 {
        let mut w = World::new(seed, 0.01, 0.0);
        berth_to_smol(&mut w, b"y", Duration::from_secs(120));
    }
}

#[test]
fn smoltcp_client_berth_server_one_byte() {
    let mut w = World::new(31, 0.0, 0.0);
    let r = smol_to_berth(&mut w, b"z", Duration::from_secs(10));
    assert_eq!(r.berth_retrans, 0);
}

#[test]
fn smoltcp_client_berth_server_1mb_clean() {
    let mut w = World::new(32, 0.0, 0.0);
    let r = smol_to_berth(&mut w, &data(MB, 3), Duration::from_secs(120));
    r.show("smoltcp → berth 1 MB echo, clean");
    assert_eq!(r.berth_retrans, 0);
}

#[test]
fn smoltcp_client_berth_server_1mb_lossy() {
    let mut w = World::new(33, 0.01, 0.0);
    let r = smol_to_berth(&mut w, &data(MB, 4), Duration::from_secs(1200));
    r.show("smoltcp → berth 1 MB echo, 1 % loss");
    assert!(r.link_drops.0 > 0 && r.link_drops.1 > 0, "{r:?}");
}

#[test]
fn smoltcp_client_berth_server_1mb_lossy_reordering() {
    let mut w = World::new(34, 0.01, 0.01);
    let r = smol_to_berth(&mut w, &data(MB, 5), Duration::from_secs(1200));
    r.show("smoltcp → berth 1 MB echo, 1 % loss + 1 % reorder");
    let (ab, ba) = w.sim.link_stats(w.link);
    assert!(ab.reordered > 0 && ba.reordered > 0);
}

#[test]
fn smoltcp_client_berth_server_one_byte_lossy() {
    for seed in 40..50 {
        let mut w = World::new(seed, 0.01, 0.01);
        smol_to_berth(&mut w, b"w", Duration::from_secs(120));
    }
}

#[test]
fn berth_client_smoltcp_server_lossy_reordering() {
    let mut w = World::new(14, 0.01, 0.01);
    let r = berth_to_smol(&mut w, &data(MB, 6), Duration::from_secs(1200));
    r.show("berth → smoltcp 1 MB echo, 1 % loss + 1 % reorder");
}

#[test]
fn timestamps_both_directions_lossy() {
    let mut w = World::with(15, 0.01, 0.01, 0.0, true);
    let r = berth_to_smol(&mut w, &data(MB, 7), Duration::from_secs(1200));
    r.show("berth → smoltcp 1 MB echo, timestamps, 1 % loss + 1 % reorder");
    let mut w = World::with(16, 0.01, 0.01, 0.0, true);
    let r = smol_to_berth(&mut w, &data(MB, 8), Duration::from_secs(1200));
    r.show("smoltcp → berth 1 MB echo, timestamps, 1 % loss + 1 % reorder");
    // PAWS drops only what reordering made old: ACKs overtaken by newer ones
    // (older TSval, acking less than snd_una), as Linux drops them too. A PAWS
    // drop of anything else would exceed the frames the link reordered.
    let (ab, ba) = w.sim.link_stats(w.link);
    let paws = w.b().stats().tcp_paws_drops;
    assert!(
        paws <= ab.reordered + ba.reordered,
        "PAWS drops {paws}, reordered {} / {}",
        ab.reordered,
        ba.reordered
    );
}

/// Each congestion control alone (TCP_CONGESTION reno, cubic) stays byte-exact
/// against smoltcp at 1 % loss, both directions (the second with timestamps).
fn one_algorithm_lossy(alg: CongestionAlgorithm, seed: u64) {
    let tcp = TcpConfig {
        congestion: alg,
        ..TcpConfig::default()
    };
    let mut w = World::with_tcp(seed, 0.01, 0.0, 0.0, false, tcp.clone());
    let r = berth_to_smol(&mut w, &data(MB, 10), Duration::from_secs(1200));
    r.show(&format!("{alg}: berth → smoltcp 1 MB echo, 1 % loss"));
    assert_eq!(r.congestion, alg.name());
    assert!(r.link_drops.0 > 0 && r.link_drops.1 > 0, "{r:?}");
    assert!(r.berth_retrans > 0, "{r:?}");
    let mut w = World::with_tcp(seed + 1, 0.01, 0.0, 0.0, true, tcp);
    let r = smol_to_berth(&mut w, &data(MB, 11), Duration::from_secs(1200));
    r.show(&format!(
        "{alg}: smoltcp → berth 1 MB echo, timestamps, 1 % loss"
    ));
    assert_eq!(r.congestion, alg.name());
    assert!(r.link_drops.0 > 0 && r.link_drops.1 > 0, "{r:?}");
    assert!(r.berth_retrans > 0, "{r:?}");
}

#[test]
fn reno_only_lossy_both_directions() {
    one_algorithm_lossy(CongestionAlgorithm::Reno, 17);
}

#[test]
fn cubic_only_lossy_both_directions() {
    one_algorithm_lossy(CongestionAlgorithm::Cubic, 19);
}

/// Many seeds, both directions, 2 % reordering and duplication, a third of the
/// runs with timestamps; longer: `SEEDS=60 LOSS=0.2 BYTES=300000 cargo test -p berth --test
/// smoltcp_interop stress_seeds -- --nocapture`.
#[test]
fn stress_seeds() {
    let loss: f64 = std::env::var("LOSS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.01);
    let n: usize = std::env::var("BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    // 12 seeds by default; SEEDS=60 (or more) for a longer run.
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for seed in 100..100 + seeds {
        both_directions(Family::V4, seed, loss, seed % 3 == 0, n);
    }
}

/// One run each way on a link with `loss`, 2 % reordering and 2 %
/// duplication, byte-exact.
fn both_directions(family: Family, seed: u64, loss: f64, ts: bool, n: usize) {
    let tcp = TcpConfig::default;
    let mut w = World::build(family, seed, loss, 0.02, 0.02, ts, tcp());
    let r = berth_to_smol(&mut w, &data(n, seed as u8), Duration::from_secs(3600));
    r.show(&format!("{family:?} seed {seed} ts {ts} b2s"));
    let mut w = World::build(family, seed, loss, 0.02, 0.02, ts, tcp());
    let r = smol_to_berth(&mut w, &data(n, seed as u8), Duration::from_secs(3600));
    r.show(&format!("{family:?} seed {seed} ts {ts} s2b"));
}

/// smoltcp's last data segment carries its FIN and overtakes the segments
/// before it: berth keeps the FIN with the out-of-order data and reaches
/// end of file as soon as the hole is filled, without waiting for smoltcp to
/// retransmit the FIN (smoltcp 0.12 never did: both ends hung).
#[test]
fn fin_ahead_of_a_hole_is_kept() {
    let mut w = World::new(71, 0.0, 0.0);
    let l = w.b().tcp_socket();
    w.b()
        .tcp_bind(l, SocketAddrV4::new(BERTH_ADDR, 80))
        .unwrap();
    w.b().tcp_listen(l, 8).unwrap();
    let client = w.s().tcp_socket(65_536, false);
    {
        let s = w.s();
        let cx = s.iface.context();
        s.sockets
            .get_mut::<tcp::Socket>(client)
            .connect(cx, IpEndpoint::new(IpAddress::Ipv4(BERTH_ADDR), 80), 49_501)
            .unwrap();
    }
    while w.s().tcp(client).state() != tcp::State::Established {
        w.step();
    }
    let h = loop {
        if let Ok((h, _)) = w.b().tcp_accept(l) {
            break h;
        }
        w.step();
    };
    let payload = data(5000, 9);
    w.s().fin_first = true;
    {
        let s = w.s().tcp(client);
        assert_eq!(s.send_slice(&payload).unwrap(), payload.len());
        s.close();
    }
    let sent_at = w.now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let now = w.now();
        match w.b().tcp_recv(now, h, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => w.step(),
        }
        assert!(w.now() < sent_at + Duration::from_secs(10), "no EOF");
    }
    assert_same("data before the early FIN", &got, &payload);
    // One-way delay 5 ms; a FIN retransmission would take an RTO (≥ 200 ms).
    let eof_after = w.now() - sent_at;
    assert!(
        eof_after < Duration::from_millis(20),
        "EOF after {eof_after:?}"
    );
    assert_eq!(w.b().tcp_state(h).unwrap(), TcpState::CloseWait);
}

#[test]
fn udp_both_ways() {
    udp_both_ways_in(World::new(51, 0.0, 0.0));
}

/// smoltcp → berth one datagram, berth → smoltcp a 1-byte one and one that
/// fills the MTU, byte-exact and with the right addresses.
fn udp_both_ways_in(mut w: World) {
    let (berth_ip, smol_ip) = (w.family.berth(), w.family.smol());
    let u = w.b().udp_socket();
    w.b().udp_bind(u, SocketAddr::new(berth_ip, 7)).unwrap();
    let su = {
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 16_384]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 16_384]),
        );
        s.bind(9).unwrap();
        w.s().sockets.add(s)
    };
    // smoltcp → berth
    let msg1 = data(1000, 7);
    w.s()
        .sockets
        .get_mut::<udp::Socket>(su)
        .send_slice(&msg1, IpEndpoint::new(IpAddress::from(berth_ip), 7))
        .unwrap();
    w.sim.run_for(Duration::from_millis(20));
    let mut buf = vec![0u8; 4096];
    let (n, from) = w.b().udp_recv_from(u, &mut buf).unwrap();
    assert_eq!(from, SocketAddr::new(smol_ip, 9));
    assert_same("udp smoltcp → berth", &buf[..n], &msg1);
    // berth → smoltcp, and a datagram that needs the whole MTU.
    for len in [1usize, MTU - w.family.udp_overhead()] {
        let msg = data(len, 9);
        let now = w.now();
        w.b()
            .udp_send_to(now, u, &msg, SocketAddr::new(smol_ip, 9))
            .unwrap();
        w.sim.run_for(Duration::from_millis(20));
        let s = w.s().sockets.get_mut::<udp::Socket>(su);
        let (got, meta) = s.recv().unwrap();
        assert_same("udp berth → smoltcp", got, &msg);
        assert_eq!(meta.endpoint, IpEndpoint::new(IpAddress::from(berth_ip), 7));
    }
}

#[test]
fn ping_both_ways() {
    ping_both_ways_in(World::new(52, 0.0, 0.0));
}

/// An echo request or reply as `family`'s ICMP emits it (for ICMPv6 with the
/// checksum over berth → smoltcp, the direction of every message built here).
fn echo_bytes(family: Family, reply: bool, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    match family {
        Family::V4 => {
            let r = if reply {
                Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                }
            } else {
                Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
            };
            let mut msg = vec![0u8; r.buffer_len()];
            r.emit(&mut msg);
            msg
        }
        Family::V6 => {
            let r = if reply {
                Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                }
            } else {
                Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
            };
            let mut msg = vec![0u8; r.buffer_len()];
            r.emit(&mut msg, &BERTH_ADDR6, &SMOL_ADDR6);
            msg
        }
    }
}

/// Echo both ways: berth's raw socket (ICMP, or ICMPv6 whose data starts after
/// the IPv6 header) pings smoltcp, whose interface answers by itself; smoltcp's
/// ICMP socket pings berth, whose core answers. smoltcp checks every checksum.
fn ping_both_ways_in(mut w: World) {
    let family = w.family;
    let (berth_ip, smol_ip) = (family.berth(), family.smol());
    let raw = match family {
        Family::V4 => w.b().raw_socket(IpProtocol::ICMP).unwrap(),
        Family::V6 => w.b().raw_socket_v6(IpProtocol::ICMPV6).unwrap(),
    };
    let payload = data(56, 1);
    for seq in 1..=3u16 {
        let msg = echo_bytes(family, false, 0x4242, seq, &payload);
        let now = w.now();
        w.b().raw_send_to(now, raw, &msg, smol_ip).unwrap();
        w.sim.run_for(Duration::from_millis(20));
        let mut buf = vec![0u8; 2048];
        let (n, from) = w.b().raw_recv_from(raw, &mut buf).unwrap();
        assert_eq!(from, smol_ip);
        let icmp = match family {
            Family::V4 => {
                let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
                ip.payload().to_vec()
            }
            Family::V6 => buf[..n].to_vec(),
        };
        // The reply is the request with type "reply": compare whole messages
        // (smoltcp's checksum over the reversed addresses is the same sum).
        let want = echo_bytes(family, true, 0x4242, seq, &payload);
        assert_same("echo reply from smoltcp", &icmp, &want);
    }
    match family {
        Family::V4 => assert_eq!(w.b().stats().icmp_in_echo_reps, 3),
        Family::V6 => assert_eq!(w.b().stats().icmp6_in_echo_reps, 3),
    }

    let caps = ChecksumCapabilities::default();
    let ident = 0x1234;
    let sh = {
        let mut s = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 4096]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 4096]),
        );
        s.bind(icmp::Endpoint::Ident(ident)).unwrap();
        w.s().sockets.add(s)
    };
    for seq in 1..=3u16 {
        {
            let s = w.s().sockets.get_mut::<icmp::Socket>(sh);
            let msg = echo_bytes(family, false, ident, seq, &payload);
            // smoltcp's socket computes the checksum itself.
            s.send_slice(&msg, IpAddress::from(berth_ip)).unwrap();
        }
        w.sim.run_for(Duration::from_millis(20));
        let s = w.s().sockets.get_mut::<icmp::Socket>(sh);
        let (bytes, from) = s.recv().unwrap();
        assert_eq!(from, IpAddress::from(berth_ip));
        // Parsing verifies the checksum berth computed.
        let (id, seq_no, data) = match family {
            Family::V4 => {
                use smoltcp::wire::{Icmpv4Packet as P, Icmpv4Repr as R};
                match R::parse(&P::new_checked(bytes).unwrap(), &caps).unwrap() {
                    R::EchoReply {
                        ident,
                        seq_no,
                        data,
                    } => (ident, seq_no, data),
                    other => panic!("not an echo reply: {other:?}"),
                }
            }
            Family::V6 => {
                use smoltcp::wire::{Icmpv6Packet as P, Icmpv6Repr as R};
                let pkt = P::new_checked(bytes).unwrap();
                match R::parse(&BERTH_ADDR6, &SMOL_ADDR6, &pkt, &caps).unwrap() {
                    R::EchoReply {
                        ident,
                        seq_no,
                        data,
                    } => (ident, seq_no, data),
                    other => panic!("not an echo reply: {other:?}"),
                }
            }
        };
        assert_eq!((id, seq_no), (ident, seq));
        assert_same("echo reply from berth", data, &payload);
    }
    let st = w.b().stats();
    match family {
        Family::V4 => assert_eq!(st.icmp_in_echos, 3),
        Family::V6 => {
            assert_eq!(st.icmp6_in_echos, 3);
            assert_eq!(st.icmp6_out_echo_reps, 3);
            assert_eq!(st.icmp6_in_csum_errors, 0);
        }
    }
}

// ---------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------

#[test]
fn v6_berth_client_smoltcp_server_one_byte() {
    let mut w = World::new6(111, 0.0, 0.0);
    let r = berth_to_smol(&mut w, b"x", Duration::from_secs(10));
    assert_eq!(r.berth_retrans, 0);
    assert!(w.b().stats().ip6_in_delivers > 0);
    assert_eq!(w.b().stats().ip_in_receives, 0, "IPv4 in an IPv6 run");
}

#[test]
fn v6_smoltcp_client_berth_server_one_byte() {
    let mut w = World::new6(131, 0.0, 0.0);
    let r = smol_to_berth(&mut w, b"z", Duration::from_secs(10));
    assert_eq!(r.berth_retrans, 0);
    assert_eq!(w.b().stats().ip_in_receives, 0, "IPv4 in an IPv6 run");
}

#[test]
fn v6_berth_client_smoltcp_server_1mb_lossy() {
    let mut w = World::new6(113, 0.01, 0.0);
    let r = berth_to_smol(&mut w, &data(MB, 21), Duration::from_secs(1200));
    r.show("IPv6 berth → smoltcp 1 MB echo, 1 % loss");
    assert!(r.link_drops.0 > 0 && r.link_drops.1 > 0, "{r:?}");
    assert!(r.berth_retrans > 0, "{r:?}");
}

#[test]
fn v6_smoltcp_client_berth_server_1mb_lossy() {
    let mut w = World::new6(133, 0.01, 0.0);
    let r = smol_to_berth(&mut w, &data(MB, 22), Duration::from_secs(1200));
    r.show("IPv6 smoltcp → berth 1 MB echo, 1 % loss");
    assert!(r.link_drops.0 > 0 && r.link_drops.1 > 0, "{r:?}");
}

/// Both directions with 2 % loss, reordering and duplication, RFC 7323
/// timestamps on smoltcp's side every other seed, 200 kB each.
#[test]
fn v6_lossy_reordering_timestamps_seeds() {
    for seed in 140..144 {
        both_directions(Family::V6, seed, 0.02, seed % 2 == 0, 200_000);
    }
}

#[test]
fn v6_one_byte_lossy_seeds() {
    for seed in 150..160 {
        let mut w = World::new6(seed, 0.01, 0.01);
        berth_to_smol(&mut w, b"y", Duration::from_secs(120));
        let mut w = World::new6(seed, 0.01, 0.01);
        smol_to_berth(&mut w, b"w", Duration::from_secs(120));
    }
}

#[test]
fn v6_udp_both_ways() {
    udp_both_ways_in(World::new6(151, 0.0, 0.0));
}

/// ICMPv6 echo both ways (see [`ping_both_ways_in`]).
#[test]
fn v6_ping_both_ways() {
    ping_both_ways_in(World::new6(152, 0.0, 0.0));
}

// ---------------------------------------------------------------------------
// tshark check of a capture
// ---------------------------------------------------------------------------

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-smoltcp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Number of TCP segments tshark decodes in the capture.
fn tshark_count(pcap: &Path, filter: &str) -> usize {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", filter])
        .output()
        .expect("tshark");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn tshark_accepts_an_interop_capture() {
    tshark_accepts_in(World::new(61, 0.01, 0.0), "interop.pcap");
}

#[test]
fn v6_tshark_accepts_an_interop_capture() {
    tshark_accepts_in(World::new6(62, 0.01, 0.0), "interop6.pcap");
}

/// A lossy berth → smoltcp run captured, then checked by tshark: no complaint,
/// and it really decoded the family's headers (SYNs, data both ways).
fn tshark_accepts_in(mut w: World, name: &str) {
    let pcap = tmp(name);
    let link = w.link;
    w.sim.capture(link, &pcap).unwrap();
    berth_to_smol(&mut w, &data(200_000, 6), Duration::from_secs(600));
    w.sim.finish_captures().unwrap();
    let Some(complaints) = tshark_complaints(&pcap) else {
        return;
    };
    assert!(
        complaints.is_empty(),
        "tshark complaints:\n{}",
        complaints.join("\n")
    );
    let (ip, other) = match w.family {
        Family::V4 => ("ip", "ipv6"),
        Family::V6 => ("ipv6", "ip"),
    };
    assert!(tshark_count(&pcap, &format!("{ip} && tcp.flags.syn == 1")) >= 2);
    for host in [w.family.berth(), w.family.smol()] {
        let filter = format!("{ip}.src == {host} && tcp.len > 0");
        assert!(tshark_count(&pcap, &filter) > 100, "{filter}");
    }
    assert_eq!(tshark_count(&pcap, other), 0, "{other} in the capture");
    let _ = std::fs::remove_file(pcap);
}
