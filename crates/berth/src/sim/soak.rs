//! Soak test: many hosts on one simulated switch under loss, duplication,
//! reordering, link flaps and host restarts, with TCP echo connections, UDP
//! request/response and ping running between random hosts the whole time.
//! Used by `berth sim soak`.
//!
//! What it checks, in virtual time:
//! - every TCP connection that completed got back exactly the bytes it sent
//!   (checked byte for byte, and the length by the server's end of stream);
//! - no connection is stuck: each either completes or fails with an error
//!   within [`SoakConfig::stuck_after`], the longest time the stack may take to
//!   give up (from the TCP settings) plus slack, counted from its last progress;
//! - every UDP answer and ping reply that arrives is the one that was sent;
//! - after the workload stops and the stack's timers drain (TIME-WAIT,
//!   FIN-WAIT-2, orphans' retransmissions), every host holds what it held at the
//!   start ([`host_memory`]).
//!
//! A host restart replaces the host's stack with a fresh one (new seed, same
//! addresses), as a reboot does: its sockets vanish without a word, so its
//! peers' connections must end by a reset (their next segment reaches a stack
//! that knows nothing of them), or by a timeout, both counted.

use super::workload::{self, EchoServerConn, Payload};
use super::{Duration, Instant, LinkConfig, LinkId, LinkStats, Medium, NodeId, Simulator};
use berth_core::wire::{Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Packet};
use berth_core::{Config, IfaceConfig, SocketHandle, SocketInfo, Stack, TcpConfig, TcpState};
use berth_wire::{EthernetAddress, Ipv4Cidr};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Shutdown, SocketAddr, SocketAddrV4};

/// Settings of a soak run. Durations are virtual time.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Hosts on the switch, 2..=200: 192.0.2.1, 192.0.2.2, …
    pub hosts: usize,
    /// How long the workload and the faults run; the drain comes after.
    pub duration: Duration,
    /// Every host's link to the switch (both directions); a host-to-host path
    /// crosses two such links. Must be Ethernet.
    pub link: LinkConfig,
    /// TCP settings of every host; see [`bounded_tcp`].
    pub tcp: TcpConfig,
    /// Keepalive on every connection (idle, interval, probes): a connection
    /// waiting for data from a peer that rebooted learns of it this way.
    pub keepalive: (Duration, Duration, u32),
    /// Client connections open at once over all hosts.
    pub conns: usize,
    /// Each connection sends (and gets back) 1..=max_bytes bytes.
    pub max_bytes: u64,
    /// Fraction of connections the client closes on purpose before the end,
    /// after a random part of the echo: half with unread data queued, half
    /// with SO_LINGER 0; both reset the connection (RFC 2525 §2.17).
    pub abort_fraction: f64,
    /// Mean time between link flaps (`None`: no flaps); each flap takes one
    /// host's link down for a time uniform in [flap_down / 10, flap_down].
    pub flap_every: Option<Duration>,
    /// Longest a flap keeps the link down.
    pub flap_down: Duration,
    /// Mean time between host restarts (`None`: none). The host's link is down
    /// for `restart_down`; its services listen `boot_delay` after it is back
    /// (connections in between are refused).
    pub restart_every: Option<Duration>,
    /// How long a restarting host's link stays down.
    pub restart_down: Duration,
    /// How long after its link is back a restarted host starts listening.
    pub boot_delay: Duration,
    /// One UDP request from a random host to another's echo port this often.
    pub udp_interval: Duration,
    /// One ping from a random host to another this often.
    pub ping_interval: Duration,
    /// Seed of the simulator, the stacks and every choice of the workload.
    pub seed: u64,
}

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            hosts: 8,
            duration: Duration::from_secs(60),
            link: LinkConfig {
                delay: Duration::from_millis(1),
                loss: 0.01,
                duplicate: 0.005,
                reorder: 0.01,
                rate_bps: Some(10_000_000),
                queue_limit_bytes: 256 << 10,
                ..LinkConfig::default()
            },
            tcp: bounded_tcp(TcpConfig::default()),
            keepalive: (Duration::from_secs(10), Duration::from_secs(2), 3),
            conns: 16,
            max_bytes: 256 << 10,
            abort_fraction: 0.05,
            flap_every: Some(Duration::from_secs(10)),
            flap_down: Duration::from_secs(3),
            restart_every: Some(Duration::from_secs(20)),
            restart_down: Duration::from_secs(1),
            boot_delay: Duration::from_millis(200),
            udp_interval: Duration::from_millis(50),
            ping_interval: Duration::from_millis(500),
            seed: 1,
        }
    }
}

/// `tcp` with its give-up timers capped, as TCP_USER_TIMEOUT would: RTO at
/// most 10 s, 8 data retransmissions, 5 SYN and SYN-ACK retransmissions. The
/// defaults (15 retries up to 120 s) let a dead connection linger for
/// ~15 minutes, longer than a soak run, which would hide a stuck one.
pub fn bounded_tcp(mut tcp: TcpConfig) -> TcpConfig {
    tcp.rto_max = tcp.rto_max.min(Duration::from_secs(10));
    tcp.rto_initial = tcp.rto_initial.min(tcp.rto_max);
    tcp.retries = tcp.retries.min(8);
    tcp.syn_retries = tcp.syn_retries.min(5);
    tcp.synack_retries = tcp.synack_retries.min(5);
    tcp
}

impl SoakConfig {
    /// Longest a connection may go without progress before the stack must have
    /// ended it: the largest of the SYN, data-retransmission and keepalive
    /// give-up times of `tcp` and `keepalive`, plus slack for the link's delays.
    pub fn stuck_after(&self) -> Duration {
        let t = &self.tcp;
        // SYN: RTOs from rto_initial, doubling, capped at rto_max.
        let mut syn = Duration::ZERO;
        let mut rto = t.rto_initial;
        for _ in 0..=t.syn_retries.max(t.synack_retries) {
            syn += rto.min(t.rto_max);
            rto *= 2;
        }
        // Data: the RTO may already sit at rto_max when the peer vanishes.
        let data = t.rto_max * (t.retries + 1);
        let (idle, intvl, cnt) = self.keepalive;
        let keep = idle + intvl * (cnt + 1);
        let path = (self.link.delay + self.link.jitter) * 8 + Duration::from_secs(10);
        syn.max(data).max(keep) + path
    }

    /// Virtual time run after the workload ends so that closed connections
    /// leave the stacks: TIME-WAIT or FIN-WAIT-2, after an orphan's FIN has
    /// been retransmitted for as long as the stack tries.
    pub fn settle_time(&self) -> Duration {
        self.tcp.time_wait.max(self.tcp.fin_timeout)
            + self.tcp.rto_max * (self.tcp.retries + 1)
            + Duration::from_secs(5)
    }
}

/// What a host holds: its socket table, the stack's memory accounting
/// (`Stack::memory()`) and its timer heap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostMemory {
    /// Sockets, half-open connections included (each is a row of `ss`).
    pub sockets: usize,
    /// Bytes charged to the stack's memory pools: TCP (queues, send buffers,
    /// out-of-order data), UDP and raw queues, and IP reassembly.
    pub bytes: usize,
    /// Armed timers (stale ones included).
    pub timers: usize,
    /// The stack's charge never went over its ceiling (`tcp_mem` high plus
    /// the forced slack, `udp_mem` high): its peaks are within the limits.
    pub peak_within_limits: bool,
}

/// Memory in use on `stack`, as [`HostMemory`] counts it. The one place to
/// change when the stack gains its own accounting.
pub fn host_memory(stack: &Stack) -> HostMemory {
    let m = stack.memory();
    HostMemory {
        sockets: stack.sockets().len(),
        bytes: m.tcp_bytes + m.udp_bytes + m.frag_bytes,
        timers: stack.timer_count(),
        peak_within_limits: m.within_limits()
            && m.tcp_peak <= m.tcp_ceiling()
            && m.udp_peak <= m.udp_ceiling(),
    }
}

/// A connection that made no progress for longer than it should have.
#[derive(Debug, Clone, PartialEq)]
pub struct StuckConn {
    /// "client" or "server".
    pub role: &'static str,
    /// The host's address.
    pub local: Ipv4Addr,
    /// The other end, when connected.
    pub peer: Option<SocketAddr>,
    /// TCP state name as `ss` prints it.
    pub state: String,
    /// Bytes moved by the application: (sent or echoed, received).
    pub progress: (u64, u64),
    /// Time since its last progress.
    pub idle: Duration,
    /// Its row in the socket table (queues and tcp_info) when it was found.
    pub row: Option<SocketInfo>,
    /// The other end's row, if the peer host still has that connection.
    pub peer_row: Option<SocketInfo>,
}

/// Totals of a soak run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoakReport {
    /// Client connections started (`tcp_connect` called).
    pub opened: u64,
    /// Completed: every byte echoed back exactly, then a clean end of stream.
    pub completed: u64,
    /// Closed by the client before the end, on purpose ([`SoakConfig::abort_fraction`]).
    pub closed_early: u64,
    /// Payload bytes verified in completed connections (each way).
    pub bytes_verified: u64,
    /// Failed with an error, by reason: reset, timeout, refused, "aborted: own
    /// host restarted" (the client's host rebooted), or the error's message.
    pub failed: BTreeMap<String, u64>,
    /// Wrong bytes, too many bytes or an early end of stream: must be none.
    pub corrupt: Vec<String>,
    /// Connections that outlived their give-up time: must be none.
    pub stuck: Vec<StuckConn>,
    /// Server side: connections accepted, echoed to the end, failed by reason.
    pub accepted: u64,
    /// Server connections echoed to the end.
    pub served: u64,
    /// Server connections failed, by reason.
    pub server_failed: BTreeMap<String, u64>,
    /// Server connections dropped by their own host's restart.
    pub server_lost: u64,
    /// UDP requests sent.
    pub udp_sent: u64,
    /// UDP requests answered.
    pub udp_answered: u64,
    /// UDP answers received more than once.
    pub udp_duplicates: u64,
    /// Answers whose payload differs from the request: must be none.
    pub udp_corrupt: u64,
    /// UDP sends that failed at once.
    pub udp_send_errors: u64,
    /// Pings sent.
    pub pings_sent: u64,
    /// Pings answered.
    pub pings_answered: u64,
    /// Link flaps done.
    pub flaps: u64,
    /// Host restarts done.
    pub restarts: u64,
    /// Sum over every link and direction.
    pub links: LinkStats,
    /// Per host, at the start (services up) and after the drain.
    pub memory: Vec<(Ipv4Addr, HostMemory, HostMemory)>,
    /// The stuck limit used ([`SoakConfig::stuck_after`]).
    pub stuck_after: Duration,
    /// Virtual time of the workload, and of the drain and settling after it.
    pub workload_time: Duration,
    /// Virtual time of the drain and settling after the workload.
    pub drain_time: Duration,
}

impl SoakReport {
    /// Failed connections, all reasons.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Hosts whose memory is not back to its start: more sockets, queued
    /// bytes or timers than then.
    pub fn leaks(&self) -> Vec<String> {
        self.memory
            .iter()
            .filter(|(_, s, e)| e.sockets > s.sockets || e.bytes > s.bytes || e.timers > s.timers)
            .map(|(a, s, e)| {
                format!(
                    "{a}: {} sockets, {} bytes, {} timers at the end; {} / {} / {} at the start",
                    e.sockets, e.bytes, e.timers, s.sockets, s.bytes, s.timers
                )
            })
            .collect()
    }

    /// Every check that failed, in words; empty when the run passed.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let stuck = self.stuck.iter().filter(|s| s.role == "client").count() as u64;
        let ended = self.completed + self.closed_early + self.failed_total() + stuck;
        if ended != self.opened {
            p.push(format!(
                "{} connections opened but {ended} accounted for",
                self.opened
            ));
        }
        if !self.stuck.is_empty() {
            p.push(format!(
                "{} connection(s) stuck (no progress for over {:.0} s, neither finished nor failed)",
                self.stuck.len(),
                self.stuck_after.as_secs_f64()
            ));
        }
        if !self.corrupt.is_empty() {
            p.push(format!(
                "{} connection(s) got wrong data: {}",
                self.corrupt.len(),
                self.corrupt.join("; ")
            ));
        }
        if self.udp_corrupt > 0 {
            p.push(format!(
                "{} UDP answer(s) differ from their request",
                self.udp_corrupt
            ));
        }
        for (a, _, e) in &self.memory {
            if !e.peak_within_limits {
                p.push(format!("{a}: memory charge went over its ceiling"));
            }
        }
        let leaks = self.leaks();
        if !leaks.is_empty() {
            p.push(format!(
                "memory not back to its start: {}",
                leaks.join("; ")
            ));
        }
        p
    }
}

/// Port of every host's TCP and UDP echo services.
const ECHO_PORT: u16 = 7;
/// Port of every host's UDP client socket.
const UDP_CLIENT_PORT: u16 = 9000;
/// Largest chunk written or read at once.
const CHUNK: usize = 16 * 1024;

/// A host's long-lived sockets, opened at boot.
#[derive(Clone, Copy)]
struct Services {
    listener: SocketHandle,
    udp_echo: SocketHandle,
    udp_client: SocketHandle,
    raw: SocketHandle,
}

struct Client {
    len: u64,
    /// Close on purpose once this much of the echo is in (and, with
    /// `linger0`, by SO_LINGER 0).
    abort_at: Option<u64>,
    linger0: bool,
    /// Makes the bytes to send; `check` makes the same bytes to compare the
    /// echo. Both fill whole chunks: the generator is only the same stream when
    /// asked for the same sizes (it makes 8 bytes at a time).
    gen: Payload,
    check: Payload,
    chunk: Vec<u8>,
    off: usize,
    /// Expected echo: `expect[expect_off..]` is what comes next.
    expect: Vec<u8>,
    expect_off: usize,
    sent: u64,
    echoed: u64,
    shut: bool,
    last_progress: Instant,
}

struct Server {
    echo: EchoServerConn,
    sent: u64,
    received: u64,
    last_progress: Instant,
}

struct Host {
    node: NodeId,
    link: LinkId,
    addr: Ipv4Addr,
    boots: u64,
    /// `None` while booting.
    svc: Option<Services>,
    clients: HashMap<SocketHandle, Client>,
    servers: HashMap<SocketHandle, Server>,
    ping_seq: u16,
}

impl Host {
    fn live(&self, sim: &Simulator<Stack>) -> bool {
        self.svc.is_some() && sim.link_is_up(self.link)
    }
}

/// Scheduled fault ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    LinkUp(usize),
    Boot(usize),
}

/// A fresh stack for host `i` (its `boot`-th start), seeded from the run's seed.
fn make_stack(cfg: &SoakConfig, i: usize, boot: u64) -> io::Result<Stack> {
    let mut s = Stack::new(Config {
        seed: Some(
            cfg.seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add((i as u64) << 32 | boot),
        ),
        tcp: cfg.tcp.clone(),
        // The soak's traffic is IPv4; without DAD a host's timers and frames
        // at boot are only its own, so start and end compare exactly.
        dad_transmits: 0,
        ..Config::default()
    });
    let address = Ipv4Cidr::new(host_addr(i), 24)
        .ok_or_else(|| invalid("internal: bad prefix length for host address"))?;
    s.add_interface(IfaceConfig {
        medium: berth_core::Medium::Ethernet(host_mac(i)),
        address,
        mtu: cfg.link.mtu,
    })?;
    Ok(s)
}

fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, (i + 1) as u8)
}

fn host_mac(i: usize) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, (i >> 8) as u8, (i + 1) as u8])
}

fn start_services(stack: &mut Stack) -> io::Result<Services> {
    let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let listener = stack.tcp_socket();
    stack.tcp_bind(listener, any(ECHO_PORT))?;
    stack.tcp_listen(listener, 128)?;
    let udp_echo = stack.udp_socket();
    stack.udp_bind(udp_echo, any(ECHO_PORT))?;
    let udp_client = stack.udp_socket();
    stack.udp_bind(udp_client, any(UDP_CLIENT_PORT))?;
    let raw = stack.raw_socket(IpProtocol::ICMP)?;
    Ok(Services {
        listener,
        udp_echo,
        udp_client,
        raw,
    })
}

/// Failure reason of a connection error, for the summary.
fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "reset".into(),
        io::ErrorKind::TimedOut => "timeout".into(),
        io::ErrorKind::ConnectionRefused => "refused".into(),
        _ => e.to_string(),
    }
}

/// The UDP request with id `id`: the id, then 0..=504 bytes made from it.
fn udp_request(seed: u64, id: u64) -> Vec<u8> {
    let extra = (id.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 55) as usize; // 0..=511
    let mut v = id.to_be_bytes().to_vec();
    v.resize(8 + extra.min(504), 0);
    Payload::new(seed ^ 0x7564_7030, id as usize, extra as u64).fill(&mut v[8..]);
    v
}

/// Runs the soak. `progress(elapsed, duration)` is called about once per
/// virtual second of the workload.
pub fn soak(
    cfg: &SoakConfig,
    mut progress: impl FnMut(Duration, Duration),
) -> io::Result<SoakReport> {
    if !(2..=200).contains(&cfg.hosts) {
        return Err(invalid("a soak needs 2 to 200 hosts"));
    }
    if cfg.link.medium != Medium::Ethernet {
        return Err(invalid(
            "soak hosts share an Ethernet switch; the link must be Ethernet",
        ));
    }
    if cfg.max_bytes == 0 {
        return Err(invalid("max bytes must be at least 1"));
    }
    if cfg.udp_interval.is_zero() || cfg.ping_interval.is_zero() {
        return Err(invalid("UDP and ping intervals must be above zero"));
    }
    if cfg.flap_every.is_some_and(|d| d.is_zero()) || cfg.restart_every.is_some_and(|d| d.is_zero())
    {
        return Err(invalid(
            "flap and restart intervals must be above zero (or off)",
        ));
    }
    let mut sim: Simulator<Stack> = Simulator::new(cfg.seed);
    // Its own stream: the workload's choices never shift the links' draws.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(u64::MAX);
    let sw = sim.add_switch();
    let mut hosts = Vec::with_capacity(cfg.hosts);
    for i in 0..cfg.hosts {
        let node = sim.add_node(make_stack(cfg, i, 0)?);
        let link = sim.attach(sw, (node, 0), cfg.link.clone());
        let svc = start_services(sim.node_mut(node))?;
        hosts.push(Host {
            node,
            link,
            addr: host_addr(i),
            boots: 0,
            svc: Some(svc),
            clients: HashMap::new(),
            servers: HashMap::new(),
            ping_seq: 0,
        });
    }
    let start_mem: Vec<HostMemory> = hosts
        .iter()
        .map(|h| host_memory(sim.node(h.node)))
        .collect();

    let mut st = State {
        cfg,
        report: SoakReport {
            stuck_after: cfg.stuck_after(),
            ..SoakReport::default()
        },
        udp_out: HashMap::new(),
        pings_out: HashMap::new(),
        next_conn: 0,
        next_udp_id: 0,
        buf: vec![0u8; 65_536],
    };
    let start = sim.now();
    let end = start + cfg.duration;
    let stuck_after = cfg.stuck_after();
    let mut actions: Vec<(Instant, Action)> = Vec::new();
    let jittered = |rng: &mut ChaCha8Rng, mean: Duration| -> Duration {
        // Uniform in [mean/2, 3·mean/2]: regular on average, never in lockstep.
        let m = micros(mean);
        Duration::from_micros(rng.gen_range(m / 2..=m.saturating_mul(3) / 2).max(1))
    };
    let mut next_flap = cfg.flap_every.map(|d| start + jittered(&mut rng, d));
    let mut next_restart = cfg.restart_every.map(|d| start + jittered(&mut rng, d));
    let mut next_udp = start;
    let mut next_ping = start;
    let mut next_stuck_check = start + Duration::from_secs(1);
    let mut next_progress = start;
    let drain_limit = end + stuck_after + Duration::from_secs(5);

    loop {
        let now = sim.now();
        // Faults end.
        let mut i = 0;
        while i < actions.len() {
            if actions[i].0 > now {
                i += 1;
                continue;
            }
            let (_, a) = actions.swap_remove(i);
            match a {
                Action::LinkUp(h) => sim.set_link_up(hosts[h].link, true),
                Action::Boot(h) => {
                    let svc = start_services(sim.node_mut(hosts[h].node))?;
                    hosts[h].svc = Some(svc);
                }
            }
        }
        let running = now < end;
        if running {
            if now >= next_progress {
                progress(now - start, cfg.duration);
                next_progress = now + Duration::from_secs(1);
            }
            // Faults begin: only on hosts that are up, so faults never overlap.
            if let (Some(at), Some(every)) = (next_flap, cfg.flap_every) {
                if at <= now {
                    next_flap = Some(now + jittered(&mut rng, every));
                    if let Some(h) = pick(&mut rng, &hosts, |h| h.live(&sim)) {
                        let hi = micros(cfg.flap_down);
                        let down = Duration::from_micros(rng.gen_range(hi / 10..=hi));
                        sim.set_link_up(hosts[h].link, false);
                        actions.push((now + down, Action::LinkUp(h)));
                        st.report.flaps += 1;
                    }
                }
            }
            if let (Some(at), Some(every)) = (next_restart, cfg.restart_every) {
                if at <= now {
                    next_restart = Some(now + jittered(&mut rng, every));
                    if let Some(h) = pick(&mut rng, &hosts, |h| h.live(&sim)) {
                        restart(cfg, &mut sim, &mut hosts[h], h, &mut st.report)?;
                        actions.push((now + cfg.restart_down, Action::LinkUp(h)));
                        actions.push((now + cfg.restart_down + cfg.boot_delay, Action::Boot(h)));
                    }
                }
            }
            // Keep `conns` client connections open.
            let open: usize = hosts.iter().map(|h| h.clients.len()).sum();
            for _ in open..cfg.conns {
                let Some(c) = pick(&mut rng, &hosts, |h| h.live(&sim)) else {
                    break;
                };
                let s = pick_other(&mut rng, hosts.len(), c);
                let len = rng.gen_range(1..=cfg.max_bytes);
                let abort = rng.gen_bool(cfg.abort_fraction.clamp(0.0, 1.0));
                let abort_at = abort.then(|| (rng.gen_range(0..len), rng.gen_bool(0.5)));
                st.open_conn(&mut sim, &mut hosts[c], host_addr(s), len, abort_at, now);
            }
            if now >= next_udp {
                next_udp = now + cfg.udp_interval;
                if let Some(c) = pick(&mut rng, &hosts, |h| h.live(&sim)) {
                    let s = pick_other(&mut rng, hosts.len(), c);
                    st.send_udp(&mut sim, &hosts[c], c, host_addr(s), now);
                }
            }
            if now >= next_ping {
                next_ping = now + cfg.ping_interval;
                if let Some(c) = pick(&mut rng, &hosts, |h| h.live(&sim)) {
                    let s = pick_other(&mut rng, hosts.len(), c);
                    st.send_ping(&mut sim, &mut hosts[c], c, host_addr(s), now);
                }
            }
        }
        for (i, h) in hosts.iter_mut().enumerate() {
            st.handle_events(&mut sim, h, i, now);
        }
        if now >= next_stuck_check {
            next_stuck_check = now + Duration::from_secs(1);
            let found = st.report.stuck.len();
            for h in &mut hosts {
                st.reap_stuck(&mut sim, h, now, Some(stuck_after));
            }
            st.peer_rows(&sim, &hosts, found);
        }
        let busy = hosts
            .iter()
            .any(|h| !h.clients.is_empty() || !h.servers.is_empty());
        if !running && ((!busy && actions.is_empty()) || now >= drain_limit) {
            break;
        }
        // Wake for our own schedule too, not only for network events.
        let mut wake = [Some(next_stuck_check), actions.iter().map(|a| a.0).min()]
            .into_iter()
            .flatten()
            .min();
        if running {
            wake = [
                wake,
                Some(end),
                Some(next_udp),
                Some(next_ping),
                next_flap,
                next_restart,
            ]
            .into_iter()
            .flatten()
            .min();
        }
        match (wake, sim.next_event_time()) {
            (Some(w), ev) if ev.is_none_or(|e| w <= e) => sim.run_until(w),
            (_, Some(_)) => {
                sim.step();
            }
            _ => break,
        }
    }
    st.report.workload_time = end - start;
    // Anything still open outlived the drain: stuck.
    let now = sim.now();
    let found = st.report.stuck.len();
    for h in &mut hosts {
        st.reap_stuck(&mut sim, h, now, None);
    }
    st.peer_rows(&sim, &hosts, found);
    // Let closed connections leave, then read the stragglers' answers.
    sim.run_for(cfg.settle_time());
    let now = sim.now();
    for (i, h) in hosts.iter_mut().enumerate() {
        st.handle_events(&mut sim, h, i, now);
        st.drain_datagrams(&mut sim, h, i, now);
    }
    // Whatever that made the stacks send leaves before the count.
    sim.run_for(Duration::from_secs(1));
    st.report.drain_time = sim.now() - end;
    for (h, m0) in hosts.iter().zip(start_mem) {
        st.report
            .memory
            .push((h.addr, m0, host_memory(sim.node(h.node))));
        let (ab, ba) = sim.link_stats(h.link);
        add_stats(&mut st.report.links, &ab);
        add_stats(&mut st.report.links, &ba);
    }
    progress(cfg.duration, cfg.duration);
    Ok(st.report)
}

/// Reboots host `h`: its stack is replaced by a fresh one with the same
/// address (every socket gone, the peers not told), its link goes down, and
/// the application's state on it is dropped.
fn restart(
    cfg: &SoakConfig,
    sim: &mut Simulator<Stack>,
    host: &mut Host,
    h: usize,
    report: &mut SoakReport,
) -> io::Result<()> {
    host.boots += 1;
    sim.replace_node(host.node, make_stack(cfg, h, host.boots)?);
    sim.set_link_up(host.link, false);
    host.svc = None;
    *report
        .failed
        .entry("aborted: own host restarted".into())
        .or_default() += host.clients.len() as u64;
    report.server_lost += host.servers.len() as u64;
    host.clients.clear();
    host.servers.clear();
    report.restarts += 1;
    Ok(())
}

fn pick(rng: &mut ChaCha8Rng, hosts: &[Host], ok: impl Fn(&Host) -> bool) -> Option<usize> {
    let live: Vec<usize> = (0..hosts.len()).filter(|&i| ok(&hosts[i])).collect();
    if live.is_empty() {
        return None;
    }
    Some(live[rng.gen_range(0..live.len())])
}

/// A host other than `not`, uniformly (`n` ≥ 2).
fn pick_other(rng: &mut ChaCha8Rng, n: usize, not: usize) -> usize {
    let k = rng.gen_range(0..n - 1);
    if k >= not {
        k + 1
    } else {
        k
    }
}

fn add_stats(t: &mut LinkStats, s: &LinkStats) {
    t.tx_frames += s.tx_frames;
    t.tx_bytes += s.tx_bytes;
    t.delivered += s.delivered;
    t.lost += s.lost;
    t.duplicated += s.duplicated;
    t.reordered += s.reordered;
    t.mtu_drops += s.mtu_drops;
    t.queue_drops += s.queue_drops;
    t.down_drops += s.down_drops;
}

/// The workload's bookkeeping across hosts.
struct State<'a> {
    cfg: &'a SoakConfig,
    report: SoakReport,
    /// UDP requests in flight: id → (sending host, answered yet).
    udp_out: HashMap<u64, (usize, bool)>,
    /// Pings in flight: (host, seq) → answered yet.
    pings_out: HashMap<(usize, u16), bool>,
    next_conn: u64,
    next_udp_id: u64,
    buf: Vec<u8>,
}

impl State<'_> {
    fn fail(&mut self, e: &io::Error) {
        *self.report.failed.entry(reason(e)).or_default() += 1;
    }

    fn open_conn(
        &mut self,
        sim: &mut Simulator<Stack>,
        host: &mut Host,
        dst: Ipv4Addr,
        len: u64,
        abort_at: Option<(u64, bool)>,
        now: Instant,
    ) {
        let id = self.next_conn;
        self.next_conn += 1;
        self.report.opened += 1;
        let (idle, intvl, cnt) = self.cfg.keepalive;
        let stack = sim.node_mut(host.node);
        let s = stack.tcp_socket();
        let opened = stack
            .tcp_set_keepalive(now, s, true, Some(idle), Some(intvl), Some(cnt))
            .and_then(|()| stack.tcp_connect(now, s, SocketAddrV4::new(dst, ECHO_PORT)));
        if let Err(e) = opened {
            let _ = stack.close(s);
            self.fail(&e);
            return;
        }
        // Each connection's bytes come from (seed, id): reproducible, distinct.
        let data_seed = self.cfg.seed ^ 0x736f_616b;
        host.clients.insert(
            s,
            Client {
                len,
                abort_at: abort_at.map(|a| a.0),
                linger0: abort_at.is_some_and(|a| a.1),
                gen: Payload::new(data_seed, id as usize, len),
                check: Payload::new(data_seed, id as usize, len),
                chunk: Vec::new(),
                off: 0,
                expect: Vec::new(),
                expect_off: 0,
                sent: 0,
                echoed: 0,
                shut: false,
                last_progress: now,
            },
        );
    }

    fn send_udp(
        &mut self,
        sim: &mut Simulator<Stack>,
        host: &Host,
        h: usize,
        dst: Ipv4Addr,
        now: Instant,
    ) {
        let Some(svc) = &host.svc else { return };
        let id = self.next_udp_id;
        self.next_udp_id += 1;
        let req = udp_request(self.cfg.seed, id);
        let to = SocketAddrV4::new(dst, ECHO_PORT);
        match sim
            .node_mut(host.node)
            .udp_send_to(now, svc.udp_client, &req, to)
        {
            Ok(_) => {
                self.report.udp_sent += 1;
                self.udp_out.insert(id, (h, false));
            }
            Err(_) => self.report.udp_send_errors += 1,
        }
    }

    fn send_ping(
        &mut self,
        sim: &mut Simulator<Stack>,
        host: &mut Host,
        h: usize,
        dst: Ipv4Addr,
        now: Instant,
    ) {
        let Some(svc) = &host.svc else { return };
        host.ping_seq = host.ping_seq.wrapping_add(1);
        let seq = host.ping_seq;
        let req = Icmpv4Repr::EchoRequest {
            ident: ping_ident(h),
            seq_no: seq,
            data: &[0x62; 56],
        };
        let mut msg = vec![0u8; req.buffer_len()];
        req.emit(&mut msg);
        if sim
            .node_mut(host.node)
            .raw_send_to(now, svc.raw, &msg, dst)
            .is_ok()
        {
            self.report.pings_sent += 1;
            self.pings_out.insert((h, seq), false);
        }
    }

    /// Everything the host's stack reported: accept, echo, client I/O, datagrams.
    fn handle_events(
        &mut self,
        sim: &mut Simulator<Stack>,
        host: &mut Host,
        h: usize,
        now: Instant,
    ) {
        let mut ready: Vec<SocketHandle> = Vec::new();
        let mut datagrams = false;
        while let Some(ev) = sim.node_mut(host.node).poll_event() {
            // Every kind (readable, writable, error) means: look at the socket.
            match host.svc {
                Some(svc) if ev.handle == svc.listener => self.accept(sim, host, now),
                Some(svc)
                    if ev.handle == svc.udp_echo
                        || ev.handle == svc.udp_client
                        || ev.handle == svc.raw =>
                {
                    datagrams = true
                }
                _ => ready.push(ev.handle),
            }
        }
        if datagrams {
            self.drain_datagrams(sim, host, h, now);
        }
        ready.sort_unstable();
        ready.dedup();
        let stack = sim.node_mut(host.node);
        for s in ready {
            if let Some(c) = host.clients.get_mut(&s) {
                match client_io(stack, now, s, c, &mut self.buf) {
                    Ok(ClientStep::Open) => continue,
                    Ok(ClientStep::Done) => {
                        self.report.completed += 1;
                        self.report.bytes_verified += c.len;
                    }
                    Ok(ClientStep::Abort) => {
                        self.report.closed_early += 1;
                        if c.linger0 {
                            let _ = stack.tcp_set_linger(s, Some(Duration::ZERO));
                        }
                    }
                    Err(Failure::Io(e)) => self.fail(&e),
                    Err(Failure::Corrupt(why)) => self.report.corrupt.push(format!(
                        "{} -> {}: {why}",
                        host.addr,
                        stack.tcp_peer_addr(s).map_or("?".into(), |a| a.to_string())
                    )),
                }
                let _ = stack.close(s);
                host.clients.remove(&s);
            } else if let Some(c) = host.servers.get_mut(&s) {
                match server_io(stack, now, s, c, &mut self.buf) {
                    Ok(false) => continue,
                    Ok(true) => self.report.served += 1,
                    Err(e) => *self.report.server_failed.entry(reason(&e)).or_default() += 1,
                }
                let _ = stack.close(s);
                host.servers.remove(&s);
            }
        }
    }

    fn accept(&mut self, sim: &mut Simulator<Stack>, host: &mut Host, now: Instant) {
        let Some(svc) = &host.svc else { return };
        let (idle, intvl, cnt) = self.cfg.keepalive;
        let stack = sim.node_mut(host.node);
        let mut accepted = Vec::new();
        while let Ok((child, _)) = stack.tcp_accept(svc.listener) {
            // A server waiting for a client whose host rebooted learns of it by keepalive.
            let _ = stack.tcp_set_keepalive(now, child, true, Some(idle), Some(intvl), Some(cnt));
            host.servers.insert(
                child,
                Server {
                    echo: EchoServerConn::default(),
                    sent: 0,
                    received: 0,
                    last_progress: now,
                },
            );
            self.report.accepted += 1;
            accepted.push(child);
        }
        // Data may have come with the handshake: no further event would say so.
        for child in accepted {
            let Some(c) = host.servers.get_mut(&child) else {
                continue;
            };
            match server_io(stack, now, child, c, &mut self.buf) {
                Ok(false) => continue,
                Ok(true) => self.report.served += 1,
                Err(e) => *self.report.server_failed.entry(reason(&e)).or_default() += 1,
            }
            let _ = stack.close(child);
            host.servers.remove(&child);
        }
    }

    /// UDP echo service, UDP answers and ping replies.
    fn drain_datagrams(
        &mut self,
        sim: &mut Simulator<Stack>,
        host: &mut Host,
        h: usize,
        now: Instant,
    ) {
        let Some(svc) = &host.svc else { return };
        let stack = sim.node_mut(host.node);
        while let Ok((n, from)) = stack.udp_recv_from(svc.udp_echo, &mut self.buf) {
            // A full send queue or a pending ARP drop is a loss like any other.
            let _ = stack.udp_send_to(now, svc.udp_echo, &self.buf[..n], from);
        }
        while let Ok((n, _)) = stack.udp_recv_from(svc.udp_client, &mut self.buf) {
            let got = &self.buf[..n];
            let Some(id) = got
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                self.report.udp_corrupt += 1;
                continue;
            };
            match self.udp_out.get_mut(&id) {
                Some((from, answered)) if *from == h => {
                    if udp_request(self.cfg.seed, id) != got {
                        self.report.udp_corrupt += 1;
                    } else if *answered {
                        self.report.udp_duplicates += 1;
                    } else {
                        *answered = true;
                        self.report.udp_answered += 1;
                    }
                }
                // An answer to a request this host never sent.
                _ => self.report.udp_corrupt += 1,
            }
        }
        while let Ok((n, _)) = stack.raw_recv_from(svc.raw, &mut self.buf) {
            let Ok(ip) = Ipv4Packet::new_checked(&self.buf[..n]) else {
                continue;
            };
            let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
                continue;
            };
            if let Ok(Icmpv4Repr::EchoReply { ident, seq_no, .. }) = Icmpv4Repr::parse(&icmp) {
                if ident == ping_ident(h) {
                    if let Some(answered) = self.pings_out.get_mut(&(h, seq_no)) {
                        if !*answered {
                            *answered = true;
                            self.report.pings_answered += 1;
                        }
                    }
                }
            }
        }
    }

    /// Fills in the other end of each stuck connection from `from` on.
    fn peer_rows(&mut self, sim: &Simulator<Stack>, hosts: &[Host], from: usize) {
        for st in &mut self.report.stuck[from..] {
            let Some(peer) = st.peer else { continue };
            let Some(h) = hosts.iter().find(|h| h.addr == peer.ip()) else {
                continue;
            };
            st.peer_row = sim.node(h.node).sockets().into_iter().find(|r| {
                r.local == peer
                    && r.peer.is_some_and(|p| p.ip() == st.local)
                    && r.kind.netid() == "tcp"
            });
        }
    }

    /// Closes and records connections idle for longer than `limit` (`None`:
    /// every connection still open).
    fn reap_stuck(
        &mut self,
        sim: &mut Simulator<Stack>,
        host: &mut Host,
        now: Instant,
        limit: Option<Duration>,
    ) {
        let stale_since = |last: Instant| limit.is_none_or(|l| now - last > l);
        let stack = sim.node_mut(host.node);
        let describe = |stack: &Stack, s: SocketHandle| {
            (
                stack.tcp_peer_addr(s).ok(),
                stack
                    .tcp_state(s)
                    .map_or_else(|e| e.to_string(), |t| state_name(t).to_string()),
                // A scan of the table, but only for a connection that is stuck.
                stack.sockets().into_iter().find(|r| r.handle == s),
            )
        };
        let clients = take_stale(&mut host.clients, |c| stale_since(c.last_progress))
            .into_iter()
            .map(|(s, c)| (s, "client", (c.sent, c.echoed), c.last_progress));
        let servers = take_stale(&mut host.servers, |c| stale_since(c.last_progress))
            .into_iter()
            .map(|(s, c)| (s, "server", (c.sent, c.received), c.last_progress));
        for (s, role, progress, last) in clients.chain(servers) {
            let (peer, state, row) = describe(stack, s);
            self.report.stuck.push(StuckConn {
                role,
                local: host.addr,
                peer,
                state,
                progress,
                idle: now - last,
                row,
                peer_row: None,
            });
            let _ = stack.close(s);
        }
    }
}

fn ping_ident(h: usize) -> u16 {
    0x5000 + h as u16
}

fn state_name(s: TcpState) -> &'static str {
    match s {
        TcpState::Closed => "CLOSED",
        TcpState::Listen => "LISTEN",
        TcpState::SynSent => "SYN-SENT",
        TcpState::SynReceived => "SYN-RECV",
        TcpState::Established => "ESTAB",
        TcpState::FinWait1 => "FIN-WAIT-1",
        TcpState::FinWait2 => "FIN-WAIT-2",
        TcpState::CloseWait => "CLOSE-WAIT",
        TcpState::Closing => "CLOSING",
        TcpState::LastAck => "LAST-ACK",
        TcpState::TimeWait => "TIME-WAIT",
    }
}

enum ClientStep {
    Open,
    Done,
    /// Time to close on purpose (`Client::abort_at`).
    Abort,
}

enum Failure {
    Io(io::Error),
    Corrupt(String),
}

/// Client side: send the rest, shut down the write side when all is queued,
/// check what comes back. Done at the server's end of stream after exactly
/// `len` bytes came back.
fn client_io(
    stack: &mut Stack,
    now: Instant,
    s: SocketHandle,
    c: &mut Client,
    buf: &mut [u8],
) -> Result<ClientStep, Failure> {
    if let Some(e) = stack.tcp_take_error(s).map_err(Failure::Io)? {
        return Err(Failure::Io(e));
    }
    if stack.tcp_state(s).map_err(Failure::Io)? == TcpState::SynSent {
        return Ok(ClientStep::Open);
    }
    if c.abort_at.is_some_and(|a| c.echoed >= a) {
        return Ok(ClientStep::Abort);
    }
    loop {
        if c.off == c.chunk.len() {
            if c.sent == c.len {
                if !c.shut {
                    stack
                        .tcp_shutdown(now, s, Shutdown::Write)
                        .map_err(Failure::Io)?;
                    c.shut = true;
                }
                break;
            }
            c.chunk.resize(CHUNK, 0);
            let n = c.gen.fill(&mut c.chunk);
            c.chunk.truncate(n);
            c.off = 0;
        }
        match stack.tcp_send(now, s, &c.chunk[c.off..]) {
            Ok(n) => {
                c.off += n;
                c.sent += n as u64;
                c.last_progress = now;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(Failure::Io(e)),
        }
    }
    loop {
        match stack.tcp_recv(now, s, buf) {
            Ok(0) if c.echoed == c.len => return Ok(ClientStep::Done),
            Ok(0) => {
                return Err(Failure::Corrupt(format!(
                    "end of stream after {} of {} bytes",
                    c.echoed, c.len
                )))
            }
            Ok(n) => {
                let mut got = &buf[..n];
                while !got.is_empty() {
                    if c.expect_off == c.expect.len() {
                        c.expect.resize(CHUNK, 0);
                        let made = c.check.fill(&mut c.expect);
                        c.expect.truncate(made);
                        c.expect_off = 0;
                        if made == 0 {
                            return Err(Failure::Corrupt(format!(
                                "{} bytes came back beyond the {} sent",
                                got.len(),
                                c.len
                            )));
                        }
                    }
                    let k = got.len().min(c.expect.len() - c.expect_off);
                    if got[..k] != c.expect[c.expect_off..c.expect_off + k] {
                        return Err(Failure::Corrupt(format!(
                            "echo differs from what was sent within bytes {}..{} of {}",
                            c.echoed,
                            c.echoed + k as u64,
                            c.len
                        )));
                    }
                    c.expect_off += k;
                    c.echoed += k as u64;
                    got = &got[k..];
                }
                c.last_progress = now;
                if c.abort_at.is_some_and(|a| c.echoed >= a) && c.echoed < c.len {
                    return Ok(ClientStep::Abort);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ClientStep::Open),
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

/// Server side: echo everything; `true` once the client's end of stream is in
/// and all of it went back.
fn server_io(
    stack: &mut Stack,
    now: Instant,
    s: SocketHandle,
    c: &mut Server,
    buf: &mut [u8],
) -> io::Result<bool> {
    if let Some(e) = stack.tcp_take_error(s)? {
        return Err(e);
    }
    let (echo, sent, received, last) = (
        &mut c.echo,
        &mut c.sent,
        &mut c.received,
        &mut c.last_progress,
    );
    workload::server_io(stack, now, s, echo, buf, |out, inn| {
        *sent += out as u64;
        *received += inn as u64;
        *last = now;
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Removes and returns the entries of `conns` that `stale` picks, in handle
/// order, not hash order: closing them sends segments, and the same seed must
/// give the same run.
fn take_stale<T>(
    conns: &mut HashMap<SocketHandle, T>,
    stale: impl Fn(&T) -> bool,
) -> Vec<(SocketHandle, T)> {
    let mut handles: Vec<SocketHandle> = conns
        .iter()
        .filter(|(_, c)| stale(c))
        .map(|(&s, _)| s)
        .collect();
    handles.sort_unstable();
    handles
        .into_iter()
        .filter_map(|s| conns.remove(&s).map(|c| (s, c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(seed: u64) -> SoakConfig {
        SoakConfig {
            hosts: 4,
            duration: Duration::from_secs(40),
            conns: 8,
            max_bytes: 64 << 10,
            flap_every: Some(Duration::from_secs(4)),
            restart_every: Some(Duration::from_secs(5)),
            seed,
            ..SoakConfig::default()
        }
    }

    #[test]
    fn short_soak_passes_its_checks() {
        let r = soak(&short(7), |_, _| {}).expect("soak runs");
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        assert!(r.completed > 0 && r.failed_total() > 0, "{r:?}");
        assert!(r.flaps > 0 && r.restarts > 0);
        // Same seed, same run: a failure found by a soak can be replayed.
        assert_eq!(soak(&short(7), |_, _| {}).expect("soak runs"), r);
    }

    #[test]
    fn stuck_limit_follows_the_tcp_settings() {
        let cfg = SoakConfig::default();
        // Data give-up (9 RTOs of at most 10 s) beats SYN (1+2+4+8+10+10 s)
        // and keepalive (10 + 4·2 s); plus slack for the path.
        let slack = Duration::from_millis(8) + Duration::from_secs(10);
        assert_eq!(cfg.stuck_after(), Duration::from_secs(90) + slack);
        let tcp = bounded_tcp(TcpConfig::linux());
        assert_eq!(
            (tcp.rto_max, tcp.retries, tcp.syn_retries),
            (Duration::from_secs(10), 8, 5)
        );
    }
}
