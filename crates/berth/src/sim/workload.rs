//! Workloads for two simulated hosts: ping (ICMP echo over a raw socket, as iputils
//! ping does) and UDP echo / one-way blast. Used by `berth sim ping` / `berth sim
//! udp`; library users can run them too. Everything happens in virtual time.

use super::{Duration, Instant, TwoHosts};
use berth_core::wire::{Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Packet};
use berth_core::SocketHandle;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddrV4;

/// Settings of a ping run (iputils flag in brackets).
#[derive(Debug, Clone)]
pub struct PingConfig {
    /// Echo requests to send [-c].
    pub count: u32,
    /// Time between requests [-i].
    pub interval: Duration,
    /// ICMP data bytes [-s]; 56 gives 64-byte ICMP messages.
    pub size: usize,
    /// How long to wait for replies after the last request [-W].
    pub timeout: Duration,
    /// ICMP identifier.
    pub ident: u16,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            count: 10,
            interval: Duration::from_secs(1),
            size: 56,
            timeout: Duration::from_secs(2),
            ident: 0x6265, // "be"
        }
    }
}

/// One echo reply as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReply {
    pub from: Ipv4Addr,
    /// ICMP message bytes (data + 8).
    pub bytes: usize,
    /// iputils numbers from 1.
    pub seq: u16,
    pub ttl: u8,
    pub rtt: Duration,
    /// A second reply to the same request.
    pub duplicate: bool,
}

/// Totals of a ping run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingReport {
    pub transmitted: u32,
    /// Distinct requests answered.
    pub received: u32,
    pub duplicates: u32,
    /// Round-trip times of the first reply to each request.
    pub rtts: Vec<Duration>,
    /// From the first request to the end of the run.
    pub elapsed: Duration,
}

impl PingReport {
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        100.0 * (self.transmitted - self.received.min(self.transmitted)) as f64
            / self.transmitted as f64
    }
    /// (min, avg, max, mdev) in milliseconds, as iputils computes them: mdev is the
    /// standard deviation sqrt(E[rtt²] − E[rtt]²).
    pub fn rtt_summary_ms(&self) -> Option<(f64, f64, f64, f64)> {
        if self.rtts.is_empty() {
            return None;
        }
        let ms: Vec<f64> = self.rtts.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let n = ms.len() as f64;
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = ms.iter().sum::<f64>() / n;
        let sq = ms.iter().map(|x| x * x).sum::<f64>() / n;
        let mdev = (sq - avg * avg).max(0.0).sqrt();
        Some((min, avg, max, mdev))
    }
}

/// Ping host B from host A. `on_reply` sees each reply as it arrives.
pub fn ping(
    hosts: &mut TwoHosts,
    cfg: &PingConfig,
    mut on_reply: impl FnMut(&PingReply),
) -> io::Result<PingReport> {
    let (a, dst) = (hosts.a, hosts.addr_b);
    let sock = hosts.sim.node_mut(a).raw_socket(IpProtocol::ICMP)?;
    let start = hosts.sim.now();
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    let mut answered: HashMap<u16, bool> = HashMap::new();
    let mut report = PingReport::default();
    let data: Vec<u8> = (0..cfg.size).map(|i| (i % 256) as u8).collect();
    let mut next_seq: u32 = 1;
    let mut buf = vec![0u8; 65_536];
    let last_send = start + cfg.interval * cfg.count.saturating_sub(1);
    let deadline = last_send + cfg.timeout;
    loop {
        let next_send = (next_seq <= cfg.count).then(|| start + cfg.interval * (next_seq - 1));
        let next_event = hosts.sim.next_event_time();
        match (next_send, next_event) {
            (Some(ts), ev) if ev.is_none_or(|e| ts <= e) => {
                hosts.sim.run_until(ts);
                let seq = next_seq as u16;
                let req = Icmpv4Repr::EchoRequest {
                    ident: cfg.ident,
                    seq_no: seq,
                    data: &data,
                };
                let mut msg = vec![0u8; req.buffer_len()];
                req.emit(&mut msg);
                hosts.sim.node_mut(a).raw_send_to(ts, sock, &msg, dst)?;
                sent_at.insert(seq, ts);
                report.transmitted += 1;
                next_seq += 1;
                hosts.sim.flush();
            }
            (_, Some(e)) if e <= deadline => {
                hosts.sim.step();
            }
            _ => break,
        }
        let now = hosts.sim.now();
        drain_replies(hosts, sock, cfg.ident, &mut buf, |from, bytes, seq, ttl| {
            let Some(&t0) = sent_at.get(&seq) else { return };
            let rtt = now - t0;
            let dup = answered.insert(seq, true).is_some();
            if dup {
                report.duplicates += 1;
            } else {
                report.received += 1;
                report.rtts.push(rtt);
            }
            on_reply(&PingReply {
                from,
                bytes,
                seq,
                ttl,
                rtt,
                duplicate: dup,
            });
        })?;
        if next_seq > cfg.count && report.received == cfg.count && hosts.sim.now() >= last_send {
            break;
        }
    }
    report.elapsed = hosts.sim.now() - start;
    // The socket stays open so the caller can list it; close it with the handle
    // from `Stack::sockets()` if needed.
    Ok(report)
}

fn drain_replies(
    hosts: &mut TwoHosts,
    sock: SocketHandle,
    ident: u16,
    buf: &mut [u8],
    mut f: impl FnMut(Ipv4Addr, usize, u16, u8),
) -> io::Result<()> {
    loop {
        let n = match hosts.sim.node_mut(hosts.a).raw_recv_from(sock, buf) {
            Ok((n, _)) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let Ok(ip) = Ipv4Packet::new_checked(&buf[..n]) else {
            continue;
        };
        let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
            continue;
        };
        if let Ok(Icmpv4Repr::EchoReply {
            ident: id,
            seq_no,
            data,
        }) = Icmpv4Repr::parse(&icmp)
        {
            if id == ident {
                f(ip.src_addr(), data.len() + 8, seq_no, ip.ttl());
            }
        }
    }
}

/// What `udp` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpMode {
    /// B echoes every datagram back; A counts the echoes (round trip).
    Echo,
    /// A sends, B counts (one way).
    Blast,
}

#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub mode: UdpMode,
    /// Datagrams to send.
    pub count: u64,
    /// Payload bytes per datagram (at least 16: sequence number and send time).
    pub size: usize,
    /// Datagrams per second of virtual time.
    pub pps: u64,
    /// B's port.
    pub port: u16,
    /// How long to wait for stragglers after the last datagram.
    pub timeout: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            mode: UdpMode::Echo,
            count: 1000,
            size: 1000,
            pps: 1000,
            port: 7,
            timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UdpReport {
    pub sent: u64,
    /// Distinct datagrams received at the measuring end.
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Datagrams that arrived after one with a higher sequence number.
    pub reordered: u64,
    pub bytes_received: u64,
    /// From the first send to the last distinct arrival.
    pub duration: Duration,
    /// Received payload bits per second over `duration`.
    pub goodput_bps: f64,
    /// Round trips (echo) or one-way delays (blast), per distinct datagram.
    pub latencies: Vec<Duration>,
}

/// Run a UDP echo or blast from A to B. `progress(sent, total)` is called as
/// datagrams leave.
pub fn udp(
    hosts: &mut TwoHosts,
    cfg: &UdpConfig,
    mut progress: impl FnMut(u64, u64),
) -> io::Result<UdpReport> {
    if cfg.size < 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "datagram size must be at least 16 bytes (sequence number and timestamp)",
        ));
    }
    if cfg.pps == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "packets per second must be at least 1",
        ));
    }
    let (a, b) = (hosts.a, hosts.b);
    let server = hosts.sim.node_mut(b).udp_socket();
    hosts
        .sim
        .node_mut(b)
        .udp_bind(server, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port))?;
    let client = hosts.sim.node_mut(a).udp_socket();
    let dst = SocketAddrV4::new(hosts.addr_b, cfg.port);
    hosts.sim.node_mut(a).udp_connect(client, dst)?;

    let interval = Duration::from_nanos(1_000_000_000 / cfg.pps);
    let start = hosts.sim.now();
    let mut payload = vec![0u8; cfg.size];
    for (i, b) in payload.iter_mut().enumerate().skip(16) {
        *b = (i % 251) as u8;
    }
    let mut seen = vec![false; cfg.count as usize];
    let mut highest: Option<u64> = None;
    let mut report = UdpReport::default();
    let mut last_rx = start;
    let mut buf = vec![0u8; 65_536];
    let mut sent: u64 = 0;
    let at = |k: u64| start + Duration::from_nanos(interval.as_nanos() as u64 * k);
    let last_send = at(cfg.count.saturating_sub(1));
    let deadline = last_send + cfg.timeout;
    loop {
        let next_send = (sent < cfg.count).then(|| at(sent));
        let next_event = hosts.sim.next_event_time();
        match (next_send, next_event) {
            (Some(ts), ev) if ev.is_none_or(|e| ts <= e) => {
                hosts.sim.run_until(ts);
                payload[..8].copy_from_slice(&sent.to_be_bytes());
                payload[8..16].copy_from_slice(&ts.total_micros().to_be_bytes());
                hosts.sim.node_mut(a).udp_send(ts, client, &payload)?;
                sent += 1;
                progress(sent, cfg.count);
                hosts.sim.flush();
            }
            (_, Some(e)) if e <= deadline => {
                hosts.sim.step();
            }
            _ => break,
        }
        let now = hosts.sim.now();
        // B: echo or count.
        loop {
            let (n, from) = match hosts.sim.node_mut(b).udp_recv_from(server, &mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            match cfg.mode {
                UdpMode::Echo => {
                    // A full receive queue at A shows up as loss, like a real echo.
                    let _ = hosts
                        .sim
                        .node_mut(b)
                        .udp_send_to(now, server, &buf[..n], from);
                }
                UdpMode::Blast => account(
                    &buf[..n],
                    now,
                    &mut seen,
                    &mut highest,
                    &mut report,
                    &mut last_rx,
                ),
            }
        }
        // A: count echoes.
        loop {
            let n = match hosts.sim.node_mut(a).udp_recv(client, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            if cfg.mode == UdpMode::Echo {
                account(
                    &buf[..n],
                    now,
                    &mut seen,
                    &mut highest,
                    &mut report,
                    &mut last_rx,
                );
            }
        }
        hosts.sim.flush();
        if sent == cfg.count && report.received == cfg.count {
            break;
        }
    }
    report.sent = sent;
    report.lost = sent - report.received;
    report.duration = last_rx - start;
    let secs = report.duration.as_secs_f64();
    report.goodput_bps = if secs > 0.0 {
        report.bytes_received as f64 * 8.0 / secs
    } else {
        0.0
    };
    // Sockets stay open so the caller can list them (`Stack::sockets`).
    Ok(report)
}

fn account(
    d: &[u8],
    now: Instant,
    seen: &mut [bool],
    highest: &mut Option<u64>,
    r: &mut UdpReport,
    last_rx: &mut Instant,
) {
    if d.len() < 16 {
        return;
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&d[..8]);
    let seq = u64::from_be_bytes(s);
    s.copy_from_slice(&d[8..16]);
    let t0 = Instant::from_micros(u64::from_be_bytes(s));
    let Some(slot) = seen.get_mut(seq as usize) else {
        return;
    };
    if *slot {
        r.duplicated += 1;
        return;
    }
    *slot = true;
    r.received += 1;
    r.bytes_received += d.len() as u64;
    r.latencies.push(now - t0);
    *last_rx = now;
    match highest {
        Some(h) if seq < *h => r.reordered += 1,
        _ => *highest = Some(seq),
    }
}
