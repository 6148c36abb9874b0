//! Workloads for two simulated hosts: ping (ICMP or ICMPv6 echo over a raw
//! socket, as iputils ping does), UDP echo / one-way blast, TCP bulk transfer and TCP echo with many
//! short connections. Used by `berth sim ping|udp|transfer|echo`; library users can
//! run them too. Everything happens in virtual time.

use super::{Duration, Instant, LinkDir, TwoHosts};
use berth_core::wire::{
    Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv6Addr,
};
use berth_core::{EventKind, SocketHandle, Stack, TcpState};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::{mpsc, Arc};
use std::thread;

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
    /// The replying host.
    pub from: IpAddr,
    /// ICMP message bytes (data + 8).
    pub bytes: usize,
    /// iputils numbers from 1.
    pub seq: u16,
    /// The reply's TTL (IPv6: hop limit, which comes beside the message as
    /// IPV6_HOPLIMIT, RFC 3542 §6.3; iputils prints it as ttl= too).
    pub ttl: Option<u8>,
    /// Round-trip time.
    pub rtt: Duration,
    /// A second reply to the same request.
    pub duplicate: bool,
}

/// Totals of a ping run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingReport {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Distinct requests answered.
    pub received: u32,
    /// Replies beyond the first to a request.
    pub duplicates: u32,
    /// Round-trip times of the first reply to each request.
    pub rtts: Vec<Duration>,
    /// From the first request to the end of the run.
    pub elapsed: Duration,
}

impl PingReport {
    /// Share of requests without a reply, in percent (ping's packet loss).
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        100.0 * (self.transmitted - self.received.min(self.transmitted)) as f64
            / self.transmitted as f64
    }
    /// (min, avg, max, mdev) in milliseconds, as iputils computes them: mdev is the
    /// standard deviation sqrt(E\[rtt²\] − E\[rtt\]²).
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

/// Ping host B from host A, over [`TwoHosts::ipv6`]'s family (ICMPv6 echo on a
/// raw AF_INET6 socket, as `ping -6`). `on_reply` sees each reply as it arrives.
pub fn ping(
    hosts: &mut TwoHosts,
    cfg: &PingConfig,
    mut on_reply: impl FnMut(&PingReply),
) -> io::Result<PingReport> {
    let (a, dst) = (hosts.a, hosts.ip_b());
    let sock = if dst.is_ipv6() {
        hosts.sim.node_mut(a).raw_socket_v6(IpProtocol::ICMPV6)?
    } else {
        hosts.sim.node_mut(a).raw_socket(IpProtocol::ICMP)?
    };
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
                let msg = echo_request(dst, cfg.ident, seq, &data);
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

/// An ICMP or ICMPv6 echo request for `dst`. The ICMPv6 checksum is left to
/// the stack (a raw AF_INET6 ICMPv6 socket fills it in, RFC 3542 §3.1).
pub fn echo_request(dst: IpAddr, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    if dst.is_ipv6() {
        let req = Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        };
        let mut msg = vec![0u8; req.buffer_len()];
        req.emit(&mut msg, &Ipv6Addr::UNSPECIFIED, &Ipv6Addr::UNSPECIFIED);
        msg
    } else {
        let req = Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        };
        let mut msg = vec![0u8; req.buffer_len()];
        req.emit(&mut msg);
        msg
    }
}

/// An echo reply with identifier `ident` in what a raw socket of `dst`'s
/// family read: (ICMP message bytes, sequence number, TTL if known). An IPv4
/// raw socket reads whole packets, an IPv6 one the ICMPv6 message alone.
pub fn echo_reply(dst: IpAddr, ident: u16, read: &[u8]) -> Option<(usize, u16, Option<u8>)> {
    if dst.is_ipv6() {
        let icmp = Icmpv6Packet::new_checked(read).ok()?;
        // 129: echo reply (RFC 4443 §4.2).
        (icmp.msg_type() == 129 && icmp.msg_code() == 0 && icmp.echo_ident() == ident)
            .then(|| (read.len(), icmp.echo_seq_no(), None))
    } else {
        let ip = Ipv4Packet::new_checked(read).ok()?;
        let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
        match Icmpv4Repr::parse(&icmp) {
            Ok(Icmpv4Repr::EchoReply {
                ident: id,
                seq_no,
                data,
            }) if id == ident => Some((data.len() + 8, seq_no, Some(ip.ttl()))),
            _ => None,
        }
    }
}

fn drain_replies(
    hosts: &mut TwoHosts,
    sock: SocketHandle,
    ident: u16,
    buf: &mut [u8],
    mut f: impl FnMut(IpAddr, usize, u16, Option<u8>),
) -> io::Result<()> {
    let dst = hosts.ip_b();
    loop {
        let (n, meta) = match hosts.sim.node_mut(hosts.a).raw_recv_meta(sock, buf) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some((bytes, seq, ttl)) = echo_reply(dst, ident, &buf[..n]) {
            f(meta.from, bytes, seq, ttl.or(Some(meta.hop_limit)));
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
/// A UDP run between A and B ([`UdpMode`]).
pub struct UdpConfig {
    /// Echo (round trip) or blast (one way).
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
/// Totals of a UDP run.
pub struct UdpReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams received at the measuring end.
    pub received: u64,
    /// Datagrams sent but never received.
    pub lost: u64,
    /// Extra copies received.
    pub duplicated: u64,
    /// Datagrams that arrived after one with a higher sequence number.
    pub reordered: u64,
    /// Payload bytes of the distinct datagrams received.
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
    let any = SocketAddr::new(hosts.ip_any(), cfg.port);
    let server = hosts.sim.node_mut(b).udp_socket();
    hosts.sim.node_mut(b).udp_bind(server, any)?;
    let client = hosts.sim.node_mut(a).udp_socket();
    let dst = SocketAddr::new(hosts.ip_b(), cfg.port);
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

// ---- TCP ------------------------------------------------------------------------

/// Settings of a bulk TCP transfer from A to B.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Bytes each connection sends.
    pub bytes: u64,
    /// Parallel connections, all into one listening socket on B.
    pub conns: usize,
    /// B's listen backlog (accept queue length).
    pub backlog: usize,
    /// B's port.
    pub port: u16,
    /// TCP_NODELAY on A's sockets.
    pub nodelay: bool,
    /// SO_RCVBUF / SO_SNDBUF for every socket (`None`: the stack default).
    pub rcvbuf: Option<usize>,
    /// SO_SNDBUF for every socket (`None`: the stack default, autotuned).
    pub sndbuf: Option<usize>,
    /// Give up after this much virtual time.
    pub time_limit: Duration,
    /// Seed of the payload; connection `i` sends a stream derived from it and `i`.
    pub data_seed: u64,
    /// Sample every sending connection's tcp_info at this interval of virtual time
    /// (whole microseconds, at least 1 µs) into [`ConnReport::trace`]; `None`: no
    /// sampling. Samples fall on exact multiples of the interval after the start,
    /// from 0 until the sample that shows every byte acknowledged (or the end of
    /// the run for a connection that never gets there). Sampling does not change
    /// the run: the clock only stops at sample times between events.
    pub sample_interval: Option<Duration>,
    /// At most this many samples per connection (`None`: no limit). When a trace
    /// would grow past it, the interval doubles and every other sample is dropped
    /// (goodput recomputed over the new interval), so samples stay on exact
    /// multiples of the interval in force at the end.
    pub sample_limit: Option<usize>,
    /// Data flows from B to A (iperf3's -R): A still connects, B's accepted
    /// sockets send and A's read. Not with `sample_interval` (the sampler
    /// follows A's sockets).
    pub reverse: bool,
    /// Send for this much virtual time instead of `bytes`: each connection
    /// sends until then (finishing the chunk in hand), then shuts down.
    pub duration: Option<Duration>,
    /// Report every this much virtual time (exact multiples from the start)
    /// to [`tcp_transfer_observed`]'s `on_interval`, and once more for the
    /// partial interval at the end.
    pub interval: Option<Duration>,
    /// Asked between steps (e.g. whether Ctrl-C came): when it says true the
    /// run stops, as at its time limit, with [`TransferReport::interrupted`] set.
    pub stop: Option<fn() -> bool>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            bytes: 1 << 20,
            conns: 1,
            backlog: 128,
            port: 5201,
            nodelay: false,
            rcvbuf: None,
            sndbuf: None,
            time_limit: Duration::from_secs(3600),
            data_seed: 1,
            sample_interval: None,
            sample_limit: None,
            reverse: false,
            duration: None,
            interval: None,
            stop: None,
        }
    }
}

/// One interval of a transfer (see [`TransferConfig::interval`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalReport {
    /// Start and end, from the start of the run (virtual time).
    pub start: Duration,
    /// End of the interval.
    pub end: Duration,
    /// Per connection, in connection order.
    pub conns: Vec<IntervalConn>,
}

/// One connection over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IntervalConn {
    /// Payload bytes the receiver read in the interval.
    pub bytes: u64,
    /// Segments the sender retransmitted in the interval.
    pub retransmits: u64,
    /// The sender's congestion window at the end of the interval, bytes.
    pub cwnd: usize,
}

/// A sending connection's tcp_info at one instant of a transfer (see
/// [`TransferConfig::sample_interval`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSample {
    /// Virtual time since the transfer started.
    pub t: Duration,
    /// Payload bytes the peer has acknowledged so far.
    pub bytes_acked: u64,
    /// Acknowledged payload bits per second over the interval that ends at `t`
    /// (0 for the sample at `t` = 0).
    pub goodput_bps: f64,
    /// Congestion window, bytes (tcp_info's `snd_cwnd_bytes`).
    pub cwnd: usize,
    /// Slow-start threshold, bytes (`None`: not set yet, i.e. infinite).
    pub ssthresh: Option<usize>,
    /// Smoothed round-trip time, microseconds.
    pub srtt_us: u64,
    /// Running totals: segments retransmitted, retransmission timeouts and
    /// loss-recovery episodes.
    pub total_retrans: u64,
    /// Retransmission timeouts so far.
    pub rto_events: u64,
    /// Loss-recovery episodes so far.
    pub recoveries: u64,
    /// Pacing rate, bytes per second (0: not pacing).
    pub pacing_rate: u64,
    /// Receive buffer in use, bytes.
    pub rcv_buf: usize,
    /// The peer's advertised window, bytes.
    pub snd_wnd: usize,
}

/// What happened between two samples of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceEventKind {
    /// Loss recovery entered (fast recovery, SACK or RACK based): `recoveries` rose.
    Recovery,
    /// Segments retransmitted: `total_retrans` rose.
    Retransmit,
    /// Retransmission timeout: `rto_events` rose.
    Rto,
}

/// Events of one kind in the interval that ends at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// End of the interval, from the start of the run.
    pub t: Duration,
    /// Which counter rose.
    pub kind: TraceEventKind,
    /// How much the counter rose.
    pub count: u64,
}

/// Loss recoveries, retransmissions and RTOs of a trace, from the rises of its
/// running totals between consecutive samples, in time order.
pub fn trace_events(trace: &[TraceSample]) -> Vec<TraceEvent> {
    let mut out = Vec::new();
    for w in trace.windows(2) {
        let (p, c) = (&w[0], &w[1]);
        for (kind, before, now) in [
            (TraceEventKind::Recovery, p.recoveries, c.recoveries),
            (TraceEventKind::Retransmit, p.total_retrans, c.total_retrans),
            (TraceEventKind::Rto, p.rto_events, c.rto_events),
        ] {
            if now > before {
                out.push(TraceEvent {
                    t: c.t,
                    kind,
                    count: now - before,
                });
            }
        }
    }
    out
}

/// One connection of a transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnReport {
    /// A's socket (it stays open, so its tcp_info can be listed).
    pub client: SocketHandle,
    /// A's ephemeral port.
    pub local_port: u16,
    /// Bytes A handed to its socket, and bytes B read before end of stream.
    pub bytes_sent: u64,
    /// Bytes B read before end of stream.
    pub bytes_received: u64,
    /// SHA-256 of what A sent and of what B read.
    pub sha_sent: [u8; 32],
    /// SHA-256 of what B read.
    pub sha_received: [u8; 32],
    /// Segments A retransmitted (tcp_info total_retrans).
    pub retransmits: u64,
    /// From connect to B reading end of stream (or to the end of the run).
    pub duration: Duration,
    /// B read end of stream.
    pub complete: bool,
    /// Why the connection failed, if it did.
    pub error: Option<String>,
    /// A's tcp_info over time, when [`TransferConfig::sample_interval`] is set
    /// (empty otherwise).
    pub trace: Vec<TraceSample>,
}

impl ConnReport {
    /// Complete, every byte delivered, and the digests agree.
    pub fn verified(&self) -> bool {
        self.complete
            && self.error.is_none()
            && self.bytes_received == self.bytes_sent
            && self.sha_sent == self.sha_received
    }
}

#[derive(Debug, Clone, PartialEq)]
/// Totals of a TCP transfer run.
pub struct TransferReport {
    /// One report per connection.
    pub conns: Vec<ConnReport>,
    /// Payload bytes B read, over all connections.
    pub bytes: u64,
    /// From the first connect to the last end of stream, virtual time.
    pub duration: Duration,
    /// Payload bits per second over `duration`.
    pub goodput_bps: f64,
    /// Segments retransmitted, over all connections.
    pub retransmits: u64,
    /// The run hit `time_limit` before every connection finished.
    pub timed_out: bool,
    /// The run was stopped through [`TransferConfig::stop`].
    pub interrupted: bool,
}

impl TransferReport {
    /// Every connection completed with every byte delivered and digests equal.
    pub fn all_verified(&self) -> bool {
        !self.conns.is_empty() && self.conns.iter().all(ConnReport::verified)
    }
}

/// Deterministic payload: xorshift64* words, 8 bytes at a time. Fast enough that
/// generating it costs little next to the stack's copies.
pub(crate) struct Payload {
    state: u64,
    left: u64,
}

impl Payload {
    pub(crate) fn new(seed: u64, conn: usize, len: u64) -> Payload {
        // splitmix64 of (seed, conn), never zero (xorshift's fixed point).
        let mut z = seed ^ (conn as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Payload {
            state: z | 1,
            left: len,
        }
    }

    /// Fills `buf` with the next bytes; returns how many (0 at the end).
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let mut words = buf[..n].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let w = self.next().to_le_bytes();
            tail.copy_from_slice(&w[..tail.len()]);
        }
        self.left -= n as u64;
        n
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A's side of one transfer connection.
struct Sender {
    sock: SocketHandle,
    payload: Payload,
    /// The chunk being handed to the socket, from `off`.
    cur: Arc<Vec<u8>>,
    off: usize,
    sent: u64,
    shut: bool,
    error: Option<String>,
}

/// B's side of one transfer connection.
struct Receiver {
    received: u64,
    /// Read but not yet hashed: `acc[..fill]`.
    acc: Vec<u8>,
    fill: usize,
    eof_at: Option<Instant>,
    error: Option<String>,
}

/// Largest chunk generated, read and hashed at once.
const CHUNK: usize = 256 * 1024;

/// SHA-256 of many streams on a helper thread, so hashing (as costly as the rest
/// of the simulation together) overlaps the simulation instead of adding to it.
struct HashPool {
    tx: Option<mpsc::SyncSender<(usize, Arc<Vec<u8>>)>>,
    /// Hashed buffers coming back for reuse (saves an allocation and a memset each).
    spare: mpsc::Receiver<Vec<u8>>,
    worker: Option<thread::JoinHandle<Vec<[u8; 32]>>>,
}

impl HashPool {
    fn new(streams: usize) -> HashPool {
        // Bounded: at most this many chunks wait, so memory stays small.
        let (tx, rx) = mpsc::sync_channel::<(usize, Arc<Vec<u8>>)>(32);
        let (spare_tx, spare) = mpsc::sync_channel(32);
        let worker = thread::spawn(move || {
            let mut h = vec![Sha256::new(); streams];
            for (i, chunk) in rx {
                if let Some(h) = h.get_mut(i) {
                    h.update(&chunk[..]);
                }
                if let Ok(v) = Arc::try_unwrap(chunk) {
                    let _ = spare_tx.try_send(v);
                }
            }
            h.into_iter().map(|h| h.finalize().into()).collect()
        });
        HashPool {
            tx: Some(tx),
            spare,
            worker: Some(worker),
        }
    }

    /// A buffer of `len` bytes (contents unspecified).
    fn buffer(&self, len: usize) -> Vec<u8> {
        let mut v = self.spare.try_recv().unwrap_or_default();
        v.resize(len, 0);
        v
    }

    fn add(&self, stream: usize, chunk: Arc<Vec<u8>>) -> io::Result<()> {
        let gone = || io::Error::other("hashing thread stopped");
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send((stream, chunk))
            .map_err(|_| gone())
    }

    /// Digests of every stream, in stream order.
    fn finish(mut self) -> io::Result<Vec<[u8; 32]>> {
        self.tx = None;
        self.worker
            .take()
            .ok_or_else(|| io::Error::other("hashing thread already finished"))?
            .join()
            .map_err(|_| io::Error::other("hashing thread panicked"))
    }
}

/// Samples A's sending sockets at exact multiples of an interval of virtual time.
/// The clock is only ever stopped at a sample time that comes before the next
/// event, so the network and the stacks see the same run as without sampling.
struct Sampler {
    start: Instant,
    /// In force now, whole microseconds; doubles when `limit` is hit.
    interval: Duration,
    limit: Option<usize>,
    /// The next sample time.
    next: Instant,
    socks: Vec<SocketHandle>,
    traces: Vec<Vec<TraceSample>>,
}

impl Sampler {
    fn new(
        cfg: &TransferConfig,
        start: Instant,
        socks: Vec<SocketHandle>,
    ) -> io::Result<Option<Sampler>> {
        let Some(interval) = cfg.sample_interval else {
            return Ok(None);
        };
        let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            return Err(invalid(
                "the sample interval must be at least 1 microsecond",
            ));
        }
        if cfg.sample_limit.is_some_and(|l| l < 2) {
            return Err(invalid("the sample limit must be at least 2"));
        }
        Ok(Some(Sampler {
            start,
            interval: Duration::from_micros(micros),
            limit: cfg.sample_limit,
            next: start,
            traces: vec![Vec::new(); socks.len()],
            socks,
        }))
    }

    /// Take every sample that falls before the simulator's next event and not
    /// after `until`. (Nothing is pending at all: the run is over, no samples.)
    fn before_next_event(&mut self, hosts: &mut TwoHosts, until: Instant) {
        // What the application queued leaves now, as the next step would send it.
        hosts.sim.flush();
        self.skip_past(hosts.sim.now());
        while self.next <= until && hosts.sim.next_event_time().is_some_and(|e| self.next < e) {
            self.take(hosts);
        }
    }

    /// Move the clock to the next sample time (running any events up to it) and
    /// sample every connection.
    fn take(&mut self, hosts: &mut TwoHosts) {
        self.skip_past(hosts.sim.now());
        hosts.sim.run_until(self.next);
        let t = self.next - self.start;
        let stack = hosts.sim.node(hosts.a);
        for (&sock, trace) in self.socks.iter().zip(&mut self.traces) {
            let info = stack.tcp_info(sock).unwrap_or_default();
            let goodput_bps = trace.last().map_or(0.0, |p| rate(p, info.bytes_acked, t));
            trace.push(TraceSample {
                t,
                bytes_acked: info.bytes_acked,
                goodput_bps,
                cwnd: info.snd_cwnd_bytes,
                ssthresh: info.ssthresh,
                srtt_us: info.rtt_us,
                total_retrans: info.total_retrans,
                rto_events: info.rto_events,
                recoveries: info.recoveries,
                pacing_rate: info.pacing_rate,
                rcv_buf: info.rcv_buf,
                snd_wnd: info.snd_wnd,
            });
        }
        self.next += self.interval;
        if self
            .limit
            .is_some_and(|l| self.traces.first().is_some_and(|t| t.len() > l))
        {
            self.coarsen();
        }
    }

    /// Double the interval and keep only the samples on its multiples.
    fn coarsen(&mut self) {
        let last = self.next - self.start - self.interval;
        self.interval *= 2;
        let step = self.interval.as_micros();
        for trace in &mut self.traces {
            trace.retain(|s| s.t.as_micros() % step == 0);
            for k in 1..trace.len() {
                trace[k].goodput_bps = rate(&trace[k - 1], trace[k].bytes_acked, trace[k].t);
            }
        }
        // The next multiple of the new interval after the last sample taken.
        let next = (last.as_micros() / step + 1) * step;
        self.next = self.start + Duration::from_micros(next as u64);
    }

    /// A step past a sample time (the clock can outrun sampling only at the end
    /// of the main loop): resume at the first multiple of the interval from `now`.
    fn skip_past(&mut self, now: Instant) {
        if self.next < now {
            let step = self.interval.as_micros();
            let k = (now - self.start).as_micros().div_ceil(step);
            self.next = self.start + Duration::from_micros((k * step) as u64);
        }
    }

    /// Cut each delivered connection's trace (`sent[i]` is `Some(bytes)`) after
    /// its first sample that shows all of them acknowledged, and hand the traces
    /// out.
    fn finish(self, sent: &[Option<u64>]) -> Vec<Vec<TraceSample>> {
        let mut traces = self.traces;
        for (trace, bytes) in traces.iter_mut().zip(sent) {
            let Some(bytes) = *bytes else { continue };
            let end = trace
                .iter()
                .position(|s| s.t > Duration::ZERO && s.bytes_acked >= bytes);
            if let Some(k) = end {
                trace.truncate(k + 1);
            }
        }
        traces
    }

    /// After the main loop, sampling goes on only while some delivered
    /// connection's last sample lacks the acknowledgment of all its bytes (not
    /// past a time limit, not for failed connections alone).
    fn behind(&self, conns: &[ConnReport]) -> bool {
        conns
            .iter()
            .zip(&self.traces)
            .any(|(c, t)| c.complete && t.last().is_none_or(|s| s.bytes_acked < c.bytes_sent))
    }
}

/// Acknowledged bits per second from sample `prev` to `acked` bytes at `t`.
fn rate(prev: &TraceSample, acked: u64, t: Duration) -> f64 {
    let secs = t.saturating_sub(prev.t).as_secs_f64();
    if secs > 0.0 {
        acked.saturating_sub(prev.bytes_acked) as f64 * 8.0 / secs
    } else {
        0.0
    }
}

/// Reports at exact multiples of [`TransferConfig::interval`] of virtual time,
/// stopping the clock only between events (as [`Sampler`] does).
struct Intervals {
    start: Instant,
    every: Duration,
    next: Instant,
    last: Instant,
    /// Per connection: bytes read and the sender's retransmissions so far.
    seen: Vec<(u64, u64)>,
}

impl Intervals {
    /// Report every interval that ends before the simulator's next event.
    #[allow(clippy::too_many_arguments)]
    fn before_next_event(
        &mut self,
        hosts: &mut TwoHosts,
        until: Instant,
        snd_host: super::NodeId,
        senders: &[Sender],
        accepted: &[bool],
        receivers: &[Receiver],
        f: &mut impl FnMut(&IntervalReport),
    ) {
        hosts.sim.flush();
        while self.next <= until && hosts.sim.next_event_time().is_some_and(|e| self.next < e) {
            hosts.sim.run_until(self.next);
            let at = self.next;
            self.emit(hosts, at, snd_host, senders, accepted, receivers, f);
        }
    }

    /// Report the interval from the last report to `at` (nothing if empty).
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        hosts: &TwoHosts,
        at: Instant,
        snd_host: super::NodeId,
        senders: &[Sender],
        accepted: &[bool],
        receivers: &[Receiver],
        f: &mut impl FnMut(&IntervalReport),
    ) {
        if at <= self.last {
            return;
        }
        let stack = hosts.sim.node(snd_host);
        let mut conns = Vec::with_capacity(senders.len());
        for (i, (s, r)) in senders.iter().zip(receivers).enumerate() {
            let info = accepted[i]
                .then(|| stack.tcp_info(s.sock).ok())
                .flatten()
                .unwrap_or_default();
            let (bytes0, retr0) = self.seen[i];
            conns.push(IntervalConn {
                bytes: r.received - bytes0,
                retransmits: info.total_retrans.saturating_sub(retr0),
                cwnd: info.snd_cwnd_bytes,
            });
            self.seen[i] = (r.received, info.total_retrans.max(retr0));
        }
        f(&IntervalReport {
            start: self.last - self.start,
            end: at - self.start,
            conns,
        });
        self.last = at;
        while self.next <= at {
            self.next += self.every;
        }
    }
}

/// Bulk transfer: B listens on one socket with `backlog`; A opens `conns`
/// connections, each sends `bytes` of pseudo-random data and shuts down its write
/// side; B reads every connection to end of stream, hashing as it goes, then closes
/// it. `progress(received, total)` is called as data arrives at B.
///
/// The loop is event-driven: after each simulator step only sockets named by
/// `Stack::poll_event` are serviced, so many connections cost no per-step scan.
pub fn tcp_transfer(
    hosts: &mut TwoHosts,
    cfg: &TransferConfig,
    progress: impl FnMut(u64, u64),
) -> io::Result<TransferReport> {
    tcp_transfer_observed(hosts, cfg, progress, |_| {})
}

/// [`tcp_transfer`], with `on_interval` called for every
/// [`TransferConfig::interval`] of virtual time (and for the partial one at the
/// end), and with [`TransferConfig::reverse`], [`TransferConfig::duration`] and
/// [`TransferConfig::stop`] honoured.
pub fn tcp_transfer_observed(
    hosts: &mut TwoHosts,
    cfg: &TransferConfig,
    mut progress: impl FnMut(u64, u64),
    mut on_interval: impl FnMut(&IntervalReport),
) -> io::Result<TransferReport> {
    if cfg.conns == 0 {
        return Err(invalid("at least one connection is needed"));
    }
    if cfg.reverse && cfg.sample_interval.is_some() {
        return Err(invalid(
            "sampling follows A's sockets, which only receive in a reverse transfer",
        ));
    }
    if cfg.interval.is_some_and(|d| d.as_micros() == 0) {
        return Err(invalid(
            "the report interval must be at least 1 microsecond",
        ));
    }
    let (a, b) = (hosts.a, hosts.b);
    // Which host's sockets send.
    let snd_host = if cfg.reverse { b } else { a };
    let start = hosts.sim.now();
    let deadline = start + cfg.time_limit;
    let send_until = cfg.duration.map(|d| start + d);

    let listener = {
        let any = SocketAddr::new(hosts.ip_any(), cfg.port);
        let sb = hosts.sim.node_mut(b);
        let l = sb.tcp_socket();
        sb.tcp_set_buffers(l, cfg.rcvbuf, cfg.sndbuf)?;
        sb.tcp_bind(l, any)?;
        sb.tcp_listen(l, cfg.backlog)?;
        l
    };

    let dst = SocketAddr::new(hosts.ip_b(), cfg.port);
    // Chunks shrink with many connections so buffers stay near 64 MiB in total.
    let chunk = (64 << 20) / cfg.conns;
    let chunk = chunk.clamp(16 * 1024, CHUNK);
    // Streams 0..n are what the sender sent, n..2n what the receiver read.
    let hashes = HashPool::new(2 * cfg.conns);
    let payload_len = if cfg.duration.is_some() {
        u64::MAX
    } else {
        cfg.bytes
    };
    let mut senders = Vec::with_capacity(cfg.conns);
    let mut clients = Vec::with_capacity(cfg.conns);
    // Sockets (on their own host) that send, and that receive.
    let mut send_by: HashMap<SocketHandle, usize> = HashMap::new();
    let mut recv_by: HashMap<SocketHandle, usize> = HashMap::new();
    let mut by_port: HashMap<u16, usize> = HashMap::new();
    for i in 0..cfg.conns {
        let sa = hosts.sim.node_mut(a);
        let s = sa.tcp_socket();
        sa.tcp_set_buffers(s, cfg.rcvbuf, cfg.sndbuf)?;
        sa.tcp_set_nodelay(start, s, cfg.nodelay)?;
        sa.tcp_connect(start, s, dst)?;
        let port = sa.tcp_local_addr(s)?.port();
        clients.push(s);
        if cfg.reverse {
            recv_by.insert(s, i);
        } else {
            send_by.insert(s, i);
        }
        by_port.insert(port, i);
        senders.push(Sender {
            // In reverse, B's accepted socket, once there is one.
            sock: s,
            payload: Payload::new(cfg.data_seed, i, payload_len),
            cur: Arc::new(Vec::new()),
            off: 0,
            sent: 0,
            shut: false,
            error: None,
        });
    }
    let mut accepted = vec![!cfg.reverse; cfg.conns];
    let mut receivers: Vec<Receiver> = (0..cfg.conns)
        .map(|_| Receiver {
            received: 0,
            acc: Vec::new(),
            fill: 0,
            eof_at: None,
            error: None,
        })
        .collect();
    let n = cfg.conns;
    let total = cfg.bytes.saturating_mul(cfg.conns as u64);
    let mut received_total = 0u64;
    let mut finished = 0usize;
    let mut done = vec![false; cfg.conns];
    let mut timed_out = false;
    let mut interrupted = false;
    let mut cut = false;
    let mut sampler = Sampler::new(cfg, start, senders.iter().map(|s| s.sock).collect())?;
    let mut intervals = cfg.interval.map(|d| Intervals {
        start,
        every: Duration::from_micros(d.as_micros().min(u64::MAX as u128) as u64),
        next: start + Duration::from_micros(d.as_micros().min(u64::MAX as u128) as u64),
        last: start,
        seen: vec![(0, 0); cfg.conns],
    });

    while finished < cfg.conns {
        let now = hosts.sim.now();
        // -t: the time is up; every sender finishes its chunk and shuts down.
        if !cut && send_until.is_some_and(|t| now >= t) {
            cut = true;
            for (i, s) in senders.iter_mut().enumerate() {
                s.payload.left = 0;
                if accepted[i] && s.error.is_none() && !done[i] {
                    if let Err(e) = pump(hosts.sim.node_mut(snd_host), now, s, &hashes, i, chunk) {
                        s.error = Some(format!("sender: {e}"));
                        mark_done(&mut done, &mut finished, i);
                    }
                }
            }
        }
        for host in [a, b] {
            while let Some(ev) = hosts.sim.node_mut(host).poll_event() {
                let stack = hosts.sim.node_mut(host);
                let side = if host == a { "A" } else { "B" };
                if host == b && ev.handle == listener {
                    loop {
                        let (child, peer) = match stack.tcp_accept(listener) {
                            Ok(x) => x,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        };
                        let Some(&i) = by_port.get(&peer.port()) else {
                            // Not one of ours: nothing here should connect.
                            let _ = stack.close(child);
                            continue;
                        };
                        if done[i] {
                            continue;
                        }
                        // Data may be sent, or have arrived, with the handshake.
                        if cfg.reverse {
                            send_by.insert(child, i);
                            accepted[i] = true;
                            let s = &mut senders[i];
                            s.sock = child;
                            stack.tcp_set_nodelay(now, child, cfg.nodelay)?;
                            if let Err(e) = pump(stack, now, s, &hashes, i, chunk) {
                                s.error = Some(format!("B: {e}"));
                                mark_done(&mut done, &mut finished, i);
                            }
                        } else {
                            recv_by.insert(child, i);
                            let r = &mut receivers[i];
                            match drain(stack, now, child, r, &hashes, n + i, chunk) {
                                Ok((got, eof)) => {
                                    received_total += got;
                                    if eof {
                                        mark_done(&mut done, &mut finished, i);
                                    }
                                }
                                Err(e) => {
                                    r.error = Some(format!("B: {e}"));
                                    mark_done(&mut done, &mut finished, i);
                                }
                            }
                        }
                    }
                    continue;
                }
                if host == snd_host {
                    if let Some(&i) = send_by.get(&ev.handle) {
                        let s = &mut senders[i];
                        if s.error.is_some() || done[i] {
                            continue;
                        }
                        if ev.kind == EventKind::Error {
                            if let Ok(Some(e)) = stack.tcp_take_error(ev.handle) {
                                s.error = Some(format!("{side}: {e}"));
                                mark_done(&mut done, &mut finished, i);
                            }
                            continue;
                        }
                        if let Err(e) = pump(stack, now, s, &hashes, i, chunk) {
                            s.error = Some(format!("{side}: {e}"));
                            mark_done(&mut done, &mut finished, i);
                        }
                        continue;
                    }
                }
                let Some(&i) = recv_by.get(&ev.handle) else {
                    continue;
                };
                if done[i] {
                    continue;
                }
                let r = &mut receivers[i];
                match drain(stack, now, ev.handle, r, &hashes, n + i, chunk) {
                    Ok((got, eof)) => {
                        received_total += got;
                        if eof {
                            mark_done(&mut done, &mut finished, i);
                        }
                    }
                    Err(e) => {
                        r.error = Some(format!("{side}: {e}"));
                        mark_done(&mut done, &mut finished, i);
                    }
                }
            }
        }
        progress(received_total, total);
        if finished == cfg.conns {
            break;
        }
        if now >= deadline {
            timed_out = true;
            break;
        }
        if cfg.stop.is_some_and(|stop| stop()) {
            interrupted = true;
            break;
        }
        if let Some(sm) = &mut sampler {
            sm.before_next_event(hosts, deadline);
        }
        if let Some(iv) = &mut intervals {
            iv.before_next_event(
                hosts,
                deadline,
                snd_host,
                &senders,
                &accepted,
                &receivers,
                &mut on_interval,
            );
        }
        match hosts.sim.step() {
            Some(_) => {}
            None => break, // nothing pending: every connection is stuck
        }
    }
    let end_all = hosts.sim.now();
    if let Some(iv) = &mut intervals {
        iv.emit(
            hosts,
            end_all,
            snd_host,
            &senders,
            &accepted,
            &receivers,
            &mut on_interval,
        );
    }
    // A sample due right now (the main loop stops after the events at a time, and
    // samples wait for those): the state the run ended in.
    if let Some(sm) = sampler.as_mut().filter(|sm| sm.next == end_all) {
        sm.take(hosts);
    }

    // Whatever a failed connection had read but not hashed yet.
    for (i, r) in receivers.iter_mut().enumerate() {
        flush_hash(r, &hashes, n + i)?;
    }
    let digests = hashes.finish()?;
    let mut conns = Vec::with_capacity(cfg.conns);
    let mut last_eof = start;
    for (i, (s, r)) in senders.into_iter().zip(receivers).enumerate() {
        let info = accepted[i]
            .then(|| hosts.sim.node(snd_host).tcp_info(s.sock).ok())
            .flatten();
        let end = r.eof_at.unwrap_or(end_all);
        if r.eof_at.is_some() {
            last_eof = last_eof.max(end);
        }
        let complete = r.eof_at.is_some() && r.error.is_none() && s.error.is_none();
        let error = s.error.or(r.error).or_else(|| {
            (!complete).then(|| {
                if interrupted {
                    "interrupted".to_string()
                } else if timed_out {
                    "time limit reached".to_string()
                } else {
                    "stalled: no events left".to_string()
                }
            })
        });
        let local_port = by_port
            .iter()
            .find(|&(_, &j)| j == i)
            .map_or(0, |(&p, _)| p);
        conns.push(ConnReport {
            client: clients[i],
            local_port,
            bytes_sent: s.sent,
            bytes_received: r.received,
            sha_sent: digests[i],
            sha_received: digests[n + i],
            retransmits: info.map_or(0, |t| t.total_retrans),
            duration: end - start,
            complete,
            error,
            trace: Vec::new(),
        });
    }
    // Let the closing handshakes finish so the socket table shows settled states
    // (A in TIME-WAIT); bounded so a dead link cannot hold us.
    // (Not after Ctrl-C: the user wants the summary now.)
    let settle = hosts.sim.now()
        + if interrupted {
            Duration::ZERO
        } else {
            Duration::from_secs(5)
        };
    while hosts.sim.now() < settle {
        let settled = conns.iter().all(|c| {
            hosts.sim.node(a).tcp_state(c.client).map_or(true, |st| {
                matches!(st, TcpState::TimeWait | TcpState::Closed)
            })
        });
        if settled || hosts.sim.next_event_time().is_none_or(|t| t > settle) {
            break;
        }
        if let Some(sm) = sampler.as_mut().filter(|sm| sm.behind(&conns)) {
            sm.before_next_event(hosts, settle);
        }
        hosts.sim.step();
    }
    if let Some(mut sm) = sampler {
        while sm.next <= settle && sm.behind(&conns) {
            sm.take(hosts);
        }
        let sent: Vec<Option<u64>> = conns
            .iter()
            .map(|c| c.complete.then_some(c.bytes_sent))
            .collect();
        for (c, trace) in conns.iter_mut().zip(sm.finish(&sent)) {
            c.trace = trace;
        }
    }
    // A's last ACKs still need to reach B to end its LAST-ACK states.
    let link = hosts.sim.link_config(hosts.link, LinkDir::AToB);
    let one_way = link.delay + link.jitter + Duration::from_millis(1);
    hosts.sim.run_until((hosts.sim.now() + one_way).min(settle));
    // Stopped from outside: the time it ran, whether or not anything ended.
    let duration = if interrupted {
        end_all - start
    } else {
        last_eof - start
    };
    let retransmits = conns.iter().map(|c| c.retransmits).sum();
    let secs = duration.as_secs_f64();
    Ok(TransferReport {
        conns,
        bytes: received_total,
        duration,
        goodput_bps: if secs > 0.0 {
            received_total as f64 * 8.0 / secs
        } else {
            0.0
        },
        retransmits,
        timed_out,
        interrupted,
    })
}

/// Settings of a TCP echo run: many short connections through one listener.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Connections to make in total.
    pub conns: usize,
    /// Connections open at once on A; a new one starts when one ends.
    pub concurrency: usize,
    /// B's listen backlog (accept queue length).
    pub backlog: usize,
    /// Bytes each connection sends (and gets back).
    pub size: usize,
    /// B's port.
    pub port: u16,
    /// TCP_NODELAY on every socket.
    pub nodelay: bool,
    /// A opens a new connection at most this often (zero: `concurrency` at once).
    pub connect_interval: Duration,
    /// B's application takes this long per accept, so a burst of handshakes
    /// queues up (zero: B accepts everything queued at once).
    pub accept_interval: Duration,
    /// Give up after this much virtual time.
    pub time_limit: Duration,
    /// Seed of the payloads.
    pub data_seed: u64,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            conns: 1000,
            concurrency: 100,
            backlog: 8,
            size: 1000,
            port: 7,
            nodelay: true,
            connect_interval: Duration::from_micros(100),
            accept_interval: Duration::from_micros(500),
            time_limit: Duration::from_secs(3600),
            data_seed: 1,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
/// Totals of an echo run (many short connections).
pub struct EchoReport {
    /// Connections that got their whole echo back, byte-exact.
    pub completed: u64,
    /// Connections that ended in an error (refused, timed out, reset, wrong data).
    pub failed: u64,
    /// Connections not finished when the run ended (time limit).
    pub unfinished: u64,
    /// Distinct failure reasons with their counts.
    pub errors: Vec<(String, u64)>,
    /// Connections B accepted.
    pub accepted: u64,
    /// Longest accept queue B's listener had when B came to accept.
    pub max_accept_queue: usize,
    /// Per completed connection: connect to the last echoed byte.
    pub latencies: Vec<Duration>,
    /// From the first connect to the last connection's end, virtual time.
    pub duration: Duration,
    /// B's listen counters over the run (Linux ListenOverflows / ListenDrops).
    pub listen_overflows: u64,
    /// B's ListenDrops over the run.
    pub listen_drops: u64,
    /// A's retransmission timeouts (SYNs a full queue left unanswered, among
    /// others) and segments it retransmitted.
    pub client_rto_events: u64,
    /// Segments A retransmitted.
    pub client_retransmits: u64,
}

struct EchoClient {
    payload: Vec<u8>,
    sent: usize,
    echoed: usize,
    started: Instant,
}

/// One echo server connection's state (also the soak's servers).
#[derive(Default)]
pub(super) struct EchoServerConn {
    /// Read but not yet echoed: `pending[off..]`.
    pending: Vec<u8>,
    off: usize,
    eof: bool,
}

/// TCP echo: A runs `conns` short connections, `concurrency` at a time, each
/// connecting to B, sending `size` bytes, reading them back and closing. B accepts
/// from one listener with `backlog`, echoes everything and closes at end of stream.
/// With a small backlog and many simultaneous handshakes the accept queue overflows;
/// clients then retry (Linux policy: no reset), which the counters show.
/// `progress(done, total)` is called as connections end.
pub fn tcp_echo(
    hosts: &mut TwoHosts,
    cfg: &EchoConfig,
    mut progress: impl FnMut(u64, u64),
) -> io::Result<EchoReport> {
    if cfg.conns == 0 || cfg.concurrency == 0 {
        return Err(invalid("connections and concurrency must be at least 1"));
    }
    if cfg.size == 0 {
        return Err(invalid("echo size must be at least 1 byte"));
    }
    let (a, b) = (hosts.a, hosts.b);
    let start = hosts.sim.now();
    let deadline = start + cfg.time_limit;
    let stats0 = hosts.sim.node(b).stats().clone();
    let retrans0 = hosts.sim.node(a).stats().tcp_retrans_segs;
    let rto0 = hosts.sim.node(a).stats().tcp_rto_events;
    let listener = {
        let any = SocketAddr::new(hosts.ip_any(), cfg.port);
        let sb = hosts.sim.node_mut(b);
        let l = sb.tcp_socket();
        sb.tcp_bind(l, any)?;
        sb.tcp_listen(l, cfg.backlog)?;
        l
    };
    let dst = SocketAddr::new(hosts.ip_b(), cfg.port);
    let mut report = EchoReport::default();
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut clients: HashMap<SocketHandle, EchoClient> = HashMap::new();
    let mut servers: HashMap<SocketHandle, EchoServerConn> = HashMap::new();
    let mut started = 0usize;
    let mut ended = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_end = start;
    let mut next_connect = start;
    let mut next_accept = start;
    // The listener raised Readable and its queue may not be empty yet.
    let mut listener_ready = false;

    loop {
        let now = hosts.sim.now();
        // A: keep `concurrency` connections open.
        while started < cfg.conns && clients.len() < cfg.concurrency && next_connect <= now {
            if !cfg.connect_interval.is_zero() {
                next_connect = now + cfg.connect_interval;
            }
            let mut payload = vec![0u8; cfg.size];
            Payload::new(cfg.data_seed, started, cfg.size as u64).fill(&mut payload);
            started += 1;
            let sa = hosts.sim.node_mut(a);
            let s = sa.tcp_socket();
            let opened = sa
                .tcp_set_nodelay(now, s, cfg.nodelay)
                .and_then(|()| sa.tcp_connect(now, s, dst));
            match opened {
                Ok(()) => {
                    clients.insert(
                        s,
                        EchoClient {
                            payload,
                            sent: 0,
                            echoed: 0,
                            started: now,
                        },
                    );
                }
                Err(e) => {
                    let _ = sa.close(s);
                    *errors.entry(format!("connect: {e}")).or_default() += 1;
                    report.failed += 1;
                    ended += 1;
                }
            }
        }
        // A: handshakes done, send space, echoes, errors.
        while let Some(ev) = hosts.sim.node_mut(a).poll_event() {
            let sa = hosts.sim.node_mut(a);
            let Some(c) = clients.get_mut(&ev.handle) else {
                continue;
            };
            match client_io(sa, now, ev.handle, c, &mut buf) {
                Ok(false) => continue,
                Ok(true) => {
                    report.completed += 1;
                    report.latencies.push(now - c.started);
                }
                Err(e) => {
                    *errors.entry(e.to_string()).or_default() += 1;
                    report.failed += 1;
                }
            }
            // Done either way: close (a clean FIN after a full echo) and move on.
            let _ = sa.close(ev.handle);
            clients.remove(&ev.handle);
            ended += 1;
            last_end = now;
            progress(ended as u64, cfg.conns as u64);
        }
        // B: accept (paced by accept_interval), echo, close at end of stream.
        let mut ready = Vec::new();
        while let Some(ev) = hosts.sim.node_mut(b).poll_event() {
            if ev.handle == listener {
                listener_ready = true;
            } else {
                ready.push(ev.handle);
            }
        }
        if listener_ready && next_accept <= now {
            if !cfg.accept_interval.is_zero() {
                // One accept per turn: read the queue's length from the socket
                // table (a scan, but only once per accept).
                let q = hosts
                    .sim
                    .node(b)
                    .sockets()
                    .into_iter()
                    .find(|r| r.handle == listener);
                if let Some(r) = q {
                    report.max_accept_queue = report.max_accept_queue.max(r.recv_q);
                }
            }
            let sb = hosts.sim.node_mut(b);
            let mut taken = 0;
            loop {
                match sb.tcp_accept(listener) {
                    Ok((child, _)) => {
                        let _ = sb.tcp_set_nodelay(now, child, cfg.nodelay);
                        servers.insert(child, EchoServerConn::default());
                        report.accepted += 1;
                        ready.push(child);
                        taken += 1;
                        if !cfg.accept_interval.is_zero() {
                            next_accept = now + cfg.accept_interval;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        listener_ready = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            // Unpaced, everything queued was taken at once: that was its length.
            report.max_accept_queue = report.max_accept_queue.max(taken);
        }
        let sb = hosts.sim.node_mut(b);
        for h in ready {
            let Some(conn) = servers.get_mut(&h) else {
                continue;
            };
            // On error the client sees the failure too and counts it.
            let finished = server_io(sb, now, h, conn, &mut buf, |_, _| {}).unwrap_or(true);
            if finished {
                let _ = sb.close(h);
                servers.remove(&h);
            }
        }
        if ended >= cfg.conns || now >= deadline {
            break;
        }
        // Wake for our own pacing too, not only for network events.
        let want_connect = started < cfg.conns && clients.len() < cfg.concurrency;
        let wake = [
            (want_connect && next_connect > now).then_some(next_connect),
            (listener_ready && next_accept > now).then_some(next_accept),
        ]
        .into_iter()
        .flatten()
        .min();
        match (wake, hosts.sim.next_event_time()) {
            (Some(w), ev) if ev.is_none_or(|e| w <= e) => hosts.sim.run_until(w.min(deadline)),
            (_, Some(_)) => {
                hosts.sim.step();
            }
            _ => break,
        }
    }
    report.unfinished = (cfg.conns - ended) as u64;
    report.duration = last_end - start;
    let mut errors: Vec<(String, u64)> = errors.into_iter().collect();
    errors.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    report.errors = errors;
    let st = hosts.sim.node(b).stats();
    report.listen_overflows = st.tcp_listen_overflows - stats0.tcp_listen_overflows;
    report.listen_drops = st.tcp_listen_drops - stats0.tcp_listen_drops;
    report.client_retransmits = hosts.sim.node(a).stats().tcp_retrans_segs - retrans0;
    report.client_rto_events = hosts.sim.node(a).stats().tcp_rto_events - rto0;
    Ok(report)
}

/// Client side of one echo connection: send the rest, read what came back and
/// check it. `Ok(true)` when the whole echo is in.
fn client_io(
    stack: &mut Stack,
    now: Instant,
    h: SocketHandle,
    c: &mut EchoClient,
    buf: &mut [u8],
) -> io::Result<bool> {
    if let Some(e) = stack.tcp_take_error(h)? {
        return Err(e);
    }
    if stack.tcp_state(h)? == TcpState::SynSent {
        return Ok(false);
    }
    while c.sent < c.payload.len() {
        match stack.tcp_send(now, h, &c.payload[c.sent..]) {
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    loop {
        match stack.tcp_recv(now, h, buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed before the whole echo came back",
                ))
            }
            Ok(n) => {
                let want = c.payload.get(c.echoed..c.echoed + n);
                if want != Some(&buf[..n]) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "echo differs from what was sent",
                    ));
                }
                c.echoed += n;
                if c.echoed == c.payload.len() {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Server side: read, echo, and report `true` once the client's end of stream
/// is in and everything has been echoed. `progress(sent, received)` hears of
/// every byte moved.
pub(super) fn server_io(
    stack: &mut Stack,
    now: Instant,
    h: SocketHandle,
    c: &mut EchoServerConn,
    buf: &mut [u8],
    mut progress: impl FnMut(usize, usize),
) -> io::Result<bool> {
    loop {
        // Echo what is pending first, so the buffer stays bounded by the window.
        while c.off < c.pending.len() {
            match stack.tcp_send(now, h, &c.pending[c.off..]) {
                Ok(n) => {
                    c.off += n;
                    progress(n, 0);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        c.pending.clear();
        c.off = 0;
        if c.eof {
            return Ok(true);
        }
        match stack.tcp_recv(now, h, buf) {
            Ok(0) => c.eof = true,
            Ok(n) => {
                c.pending.extend_from_slice(&buf[..n]);
                progress(0, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Hand the socket as much of the sender's stream as it takes; shut down the
/// write side once everything is queued. Each new chunk goes to hashing stream
/// `stream` as it is made.
fn pump(
    stack: &mut Stack,
    now: Instant,
    s: &mut Sender,
    hashes: &HashPool,
    stream: usize,
    chunk: usize,
) -> io::Result<()> {
    loop {
        if s.off == s.cur.len() {
            if s.payload.left == 0 {
                if !s.shut {
                    stack.tcp_shutdown(now, s.sock, Shutdown::Write)?;
                    s.shut = true;
                }
                return Ok(());
            }
            let len = chunk.min(s.payload.left.min(usize::MAX as u64) as usize);
            // Reuse our last chunk if the hasher is done with it.
            let mut v = match Arc::get_mut(&mut s.cur) {
                Some(v) => std::mem::take(v),
                None => hashes.buffer(len),
            };
            v.resize(len, 0);
            let n = s.payload.fill(&mut v);
            v.truncate(n);
            s.cur = Arc::new(v);
            s.off = 0;
            hashes.add(stream, Arc::clone(&s.cur))?;
        }
        match stack.tcp_send(now, s.sock, &s.cur[s.off..]) {
            Ok(n) => {
                s.off += n;
                s.sent += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Read everything queued on B's socket straight into the hashing chunk. Returns
/// (bytes, reached end of stream); at end of stream the socket is closed, as a
/// server would.
fn drain(
    stack: &mut Stack,
    now: Instant,
    sock: SocketHandle,
    r: &mut Receiver,
    hashes: &HashPool,
    stream: usize,
    chunk: usize,
) -> io::Result<(u64, bool)> {
    let mut got = 0u64;
    loop {
        if r.acc.len() != chunk {
            r.acc = hashes.buffer(chunk);
        }
        match stack.tcp_recv(now, sock, &mut r.acc[r.fill..]) {
            Ok(0) => {
                flush_hash(r, hashes, stream)?;
                r.eof_at = Some(now);
                stack.close(sock)?;
                return Ok((got, true));
            }
            Ok(n) => {
                r.fill += n;
                r.received += n as u64;
                got += n as u64;
                if r.fill == r.acc.len() {
                    flush_hash(r, hashes, stream)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((got, false)),
            Err(e) => return Err(e),
        }
    }
}

/// Send what the receiver has accumulated to the hashing thread.
fn flush_hash(r: &mut Receiver, hashes: &HashPool, stream: usize) -> io::Result<()> {
    if r.fill == 0 {
        return Ok(());
    }
    let mut v = std::mem::take(&mut r.acc);
    v.truncate(r.fill);
    r.fill = 0;
    hashes.add(stream, Arc::new(v))
}

fn mark_done(done: &mut [bool], finished: &mut usize, i: usize) {
    if !done[i] {
        done[i] = true;
        *finished += 1;
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

#[cfg(test)]
mod tcp_tests {
    use super::*;
    use crate::sim::{LinkConfig, Medium};

    fn hosts(seed: u64, loss: f64) -> TwoHosts {
        let link = LinkConfig {
            delay: Duration::from_millis(2),
            loss,
            medium: Medium::Ip,
            ..LinkConfig::default()
        };
        TwoHosts::new(seed, link).unwrap()
    }

    #[test]
    fn payload_is_deterministic_per_connection() {
        let take = |conn| {
            let mut v = vec![0u8; 1001];
            let n = Payload::new(7, conn, 1000).fill(&mut v);
            v.truncate(n);
            v
        };
        assert_eq!(take(0).len(), 1000);
        assert_eq!(take(0), take(0));
        assert_ne!(take(0), take(1));
    }

    #[test]
    fn transfer_verifies_every_connection_under_loss() {
        let mut h = hosts(3, 0.02);
        let cfg = TransferConfig {
            bytes: 200_000,
            conns: 3,
            backlog: 1,
            ..TransferConfig::default()
        };
        let mut last = 0;
        let r = tcp_transfer(&mut h, &cfg, |done, total| {
            assert!(done >= last && done <= total);
            last = done;
        })
        .unwrap();
        assert!(r.all_verified(), "{r:?}");
        assert_eq!(r.bytes, 600_000);
        assert_eq!(last, 600_000);
        assert!(r.retransmits > 0);
        assert!(r.goodput_bps > 0.0);
        let first = &r.conns[0];
        assert_eq!(
            first.sha_sent,
            <[u8; 32]>::from(Sha256::digest({
                let mut v = vec![0u8; 200_000];
                Payload::new(cfg.data_seed, 0, 200_000).fill(&mut v);
                v
            }))
        );
        // A's sockets stay open, finished in TIME-WAIT.
        for c in &r.conns {
            assert_eq!(
                h.sim.node(h.a).tcp_state(c.client).unwrap(),
                TcpState::TimeWait
            );
        }
    }

    /// The report without its traces, to compare runs with and without sampling.
    fn untraced(mut r: TransferReport) -> TransferReport {
        for c in &mut r.conns {
            c.trace.clear();
        }
        r
    }

    #[test]
    fn sampling_traces_each_connection_at_exact_multiples() {
        let interval = Duration::from_millis(3);
        let base = TransferConfig {
            bytes: 300_000,
            conns: 2,
            ..TransferConfig::default()
        };
        let cfg = TransferConfig {
            sample_interval: Some(interval),
            ..base.clone()
        };
        let mut h = hosts(5, 0.01);
        let r = tcp_transfer(&mut h, &cfg, |_, _| {}).unwrap();
        assert!(r.all_verified(), "{r:?}");
        for c in &r.conns {
            let tr = &c.trace;
            assert!(tr.len() > 10, "{} samples", tr.len());
            for (k, s) in tr.iter().enumerate() {
                assert_eq!(s.t, interval * k as u32, "sample {k}");
            }
            assert_eq!(tr[0].goodput_bps, 0.0);
            for w in tr.windows(2) {
                assert!(w[1].bytes_acked >= w[0].bytes_acked);
                assert!(w[1].total_retrans >= w[0].total_retrans);
                let want = (w[1].bytes_acked - w[0].bytes_acked) as f64 * 8.0 / 0.003;
                assert!((w[1].goodput_bps - want).abs() < 1e-6 * want.max(1.0));
            }
            // Ends with the first sample showing every byte acknowledged.
            let last = tr.last().unwrap();
            assert_eq!(last.bytes_acked, 300_000);
            assert!(tr[tr.len() - 2].bytes_acked < 300_000);
            assert!(last.cwnd > 0 && last.srtt_us >= 4_000, "{last:?}");
            assert_eq!(last.total_retrans, c.retransmits);
        }
        // Loss shows up as events; retransmissions add up to the final count.
        let total: u64 = r
            .conns
            .iter()
            .flat_map(|c| trace_events(&c.trace))
            .filter(|e| e.kind == TraceEventKind::Retransmit)
            .map(|e| e.count)
            .sum();
        assert_eq!(total, r.retransmits);
        assert!(total > 0);
        // Sampling changes nothing about the run itself.
        let plain = tcp_transfer(&mut hosts(5, 0.01), &base, |_, _| {}).unwrap();
        assert!(plain.conns.iter().all(|c| c.trace.is_empty()));
        assert_eq!(untraced(r), plain);
    }

    #[test]
    fn sample_limit_coarsens_the_interval() {
        let cfg = TransferConfig {
            bytes: 500_000,
            sample_interval: Some(Duration::from_micros(500)),
            sample_limit: Some(16),
            ..TransferConfig::default()
        };
        let r = tcp_transfer(&mut hosts(6, 0.0), &cfg, |_, _| {}).unwrap();
        assert!(r.all_verified());
        let tr = &r.conns[0].trace;
        assert!(tr.len() >= 8 && tr.len() <= 16, "{} samples", tr.len());
        // Still evenly spaced from 0, at a power-of-two multiple of 500 µs.
        let step = tr[1].t;
        assert!(step > Duration::from_micros(500));
        assert_eq!(step.as_micros() % 500, 0);
        assert!((step.as_micros() / 500).is_power_of_two());
        for (k, s) in tr.iter().enumerate() {
            assert_eq!(s.t, step * k as u32);
        }
        for w in tr.windows(2) {
            let want = (w[1].bytes_acked - w[0].bytes_acked) as f64 * 8.0 / step.as_secs_f64();
            assert!((w[1].goodput_bps - want).abs() < 1e-6 * want.max(1.0));
        }
        assert_eq!(tr.last().unwrap().bytes_acked, 500_000);
        let zero = TransferConfig {
            sample_interval: Some(Duration::from_nanos(10)),
            ..TransferConfig::default()
        };
        assert!(tcp_transfer(&mut hosts(6, 0.0), &zero, |_, _| {}).is_err());
    }

    #[test]
    fn sampling_stops_where_a_failed_run_gives_up() {
        let cfg = TransferConfig {
            bytes: 10 << 20,
            time_limit: Duration::from_millis(20),
            sample_interval: Some(Duration::from_millis(5)),
            ..TransferConfig::default()
        };
        let r = tcp_transfer(&mut hosts(7, 0.0), &cfg, |_, _| {}).unwrap();
        assert!(r.timed_out && !r.all_verified());
        let times: Vec<u64> = r.conns[0]
            .trace
            .iter()
            .map(|s| s.t.as_millis() as u64)
            .collect();
        assert_eq!(times, [0, 5, 10, 15, 20]);
        assert!(r.conns[0].trace[4].bytes_acked > 0);
    }

    #[test]
    fn trace_events_come_from_rising_totals() {
        let s = |ms, retrans, rto, rec| TraceSample {
            t: Duration::from_millis(ms),
            bytes_acked: 0,
            goodput_bps: 0.0,
            cwnd: 0,
            ssthresh: None,
            srtt_us: 0,
            total_retrans: retrans,
            rto_events: rto,
            recoveries: rec,
            pacing_rate: 0,
            rcv_buf: 0,
            snd_wnd: 0,
        };
        let tr = [
            s(0, 0, 0, 0),
            s(10, 3, 0, 1),
            s(20, 3, 0, 1),
            s(30, 4, 1, 1),
        ];
        let ev = |ms, kind, count| TraceEvent {
            t: Duration::from_millis(ms),
            kind,
            count,
        };
        assert_eq!(
            trace_events(&tr),
            [
                ev(10, TraceEventKind::Recovery, 1),
                ev(10, TraceEventKind::Retransmit, 3),
                ev(30, TraceEventKind::Retransmit, 1),
                ev(30, TraceEventKind::Rto, 1),
            ]
        );
        assert!(trace_events(&tr[..1]).is_empty());
    }

    #[test]
    fn echo_completes_every_connection_despite_overflow() {
        let mut h = hosts(4, 0.0);
        let cfg = EchoConfig {
            conns: 200,
            concurrency: 50,
            backlog: 2,
            size: 3000,
            ..EchoConfig::default()
        };
        let r = tcp_echo(&mut h, &cfg, |_, _| {}).unwrap();
        assert_eq!((r.completed, r.failed, r.unfinished), (200, 0, 0), "{r:?}");
        assert_eq!(r.accepted, 200);
        assert!(r.listen_overflows > 0 && r.listen_drops > 0, "{r:?}");
        // Linux semantics: the accept queue holds backlog + 1.
        assert!(r.max_accept_queue <= 3, "{r:?}");
        assert_eq!(r.latencies.len(), 200);
    }

    #[test]
    fn zero_connections_is_an_error() {
        let mut h = hosts(1, 0.0);
        let cfg = TransferConfig {
            conns: 0,
            ..TransferConfig::default()
        };
        assert!(tcp_transfer(&mut h, &cfg, |_, _| {}).is_err());
        let cfg = EchoConfig {
            size: 0,
            ..EchoConfig::default()
        };
        assert!(tcp_echo(&mut h, &cfg, |_, _| {}).is_err());
    }
}
