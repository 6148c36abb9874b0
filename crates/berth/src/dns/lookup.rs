//! One name looked up, as a sans-IO state machine on a core stack: the same
//! code runs under the blocking API, the tokio API and the simulator.
//!
//! A and AAAA queries go out together over UDP (RFC 1035 §4.2.1), each with
//! its own random ID from a random source port (RFC 5452 §9.2). A query
//! unanswered after the timeout is sent again to the next server, the
//! timeout doubling (RFC 1035 §4.2.1, RFC 1536 §1: 1 s, 2 s, 4 s by
//! default); a truncated answer (TC) is asked again over TCP with the
//! two-octet length prefix (RFC 7766 §5, §8). An answer counts only from the
//! server asked, with the query's ID and question (RFC 5452 §9.1).

use super::ResolverConfig;
use berth_core::{Duration, Instant, SocketHandle, TcpState};
use berth_wire::dns::{self, rtype, DnsPacket, Name, RData, Rcode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::Poll;

/// How long a query may wait for its TCP answer (connect, send, receive).
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Most CNAMEs followed inside one answer.
const MAX_CNAME_CHAIN: usize = 8;

/// Which address families to ask for: those the stack has an address of
/// (getaddrinfo's AI_ADDRCONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// Ask for A records.
    pub ipv4: bool,
    /// Ask for AAAA records.
    pub ipv6: bool,
}

impl Families {
    /// The families `core` has a usable address of, other than loopback and
    /// IPv6 link-local; both if it has none at all (so the lookup still says
    /// what the name is).
    pub fn of(core: &berth_core::Stack) -> Families {
        let ids: Vec<_> = core.interfaces().map(|(id, _)| id).collect();
        let mut f = Families {
            ipv4: false,
            ipv6: false,
        };
        for id in ids {
            for (cidr, how) in core.addresses(id) {
                match cidr.address() {
                    IpAddr::V4(a) => f.ipv4 |= !a.is_unspecified() && !a.is_loopback(),
                    IpAddr::V6(a) => {
                        let usable = how.is_some_and(|(origin, state)| {
                            origin != berth_core::AddrOrigin::LinkLocal
                                && matches!(
                                    state,
                                    berth_core::AddrState::Preferred
                                        | berth_core::AddrState::Deprecated
                                )
                        });
                        f.ipv6 |= usable && !a.is_loopback();
                    }
                }
            }
        }
        if !f.ipv4 && !f.ipv6 {
            f = Families {
                ipv4: true,
                ipv6: true,
            };
        }
        f
    }
}

/// How one query ended.
#[derive(Debug, Clone)]
enum Answer {
    /// Addresses (possibly none: the name exists without records of the type).
    Addrs(Vec<IpAddr>),
    /// RCODE 3: the name does not exist.
    NxDomain(SocketAddr),
    /// No usable answer within the attempts.
    Failed(String),
}

#[derive(Debug)]
enum Phase {
    /// Sent over UDP to the attempt's server; resent or given up at `deadline`.
    Udp {
        deadline: Instant,
    },
    /// Asked again over TCP after a truncated answer.
    Tcp {
        h: SocketHandle,
        out: Vec<u8>,
        sent: usize,
        rx: Vec<u8>,
        deadline: Instant,
    },
    Done(Answer),
}

#[derive(Debug)]
struct Query {
    qtype: u16,
    id: u16,
    msg: Vec<u8>,
    attempt: u32,
    phase: Phase,
}

/// What an answer to a query means for it.
enum Verdict {
    Done(Answer),
    /// TC set: ask over TCP.
    Truncated,
    /// SERVFAIL, REFUSED, …: the next server.
    NextServer(String),
}

/// A lookup of one name's addresses; see the module docs. Drive it with
/// [`Lookup::poll`] whenever one of its sockets ([`Lookup::handles`]) is
/// ready or [`Lookup::poll_timeout`] passes; [`Lookup::close`] frees its
/// sockets if it is abandoned early.
#[derive(Debug)]
pub struct Lookup {
    name: String,
    servers: Vec<SocketAddr>,
    attempts: u32,
    timeout: Duration,
    queries: Vec<Query>,
    udp: Option<SocketHandle>,
    started: bool,
    rng: SmallRng,
}

impl Lookup {
    /// A lookup of `name` by `config`'s servers for the record types of
    /// `families` (AAAA first, then A), its query IDs drawn from `seed`.
    pub fn new(config: &ResolverConfig, name: &str, families: Families, seed: u64) -> Lookup {
        let mut qtypes = Vec::new();
        if families.ipv6 {
            qtypes.push(rtype::AAAA);
        }
        if families.ipv4 {
            qtypes.push(rtype::A);
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        let queries = qtypes
            .into_iter()
            .map(|qtype| Query {
                qtype,
                id: rng.gen(),
                msg: Vec::new(),
                attempt: 0,
                phase: Phase::Done(Answer::Failed(String::new())),
            })
            .collect();
        Lookup {
            name: name.strip_suffix('.').unwrap_or(name).to_string(),
            servers: config.servers.clone(),
            attempts: config.attempts.max(1),
            timeout: config.timeout,
            queries,
            udp: None,
            started: false,
            rng,
        }
    }

    /// The sockets the lookup waits on (its UDP socket and any TCP ones).
    pub fn handles(&self) -> Vec<SocketHandle> {
        let tcp = self.queries.iter().filter_map(|q| match q.phase {
            Phase::Tcp { h, .. } => Some(h),
            _ => None,
        });
        self.udp.into_iter().chain(tcp).collect()
    }

    /// When [`Lookup::poll`] must run again at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queries
            .iter()
            .filter_map(|q| match q.phase {
                Phase::Udp { deadline } | Phase::Tcp { deadline, .. } => Some(deadline),
                Phase::Done(_) => None,
            })
            .min()
    }

    /// Send, receive and time out what is due; `Ready` with the addresses
    /// (AAAA then A, each in the server's order) once every query ended.
    /// `NotFound` for a name that does not exist or has no address,
    /// `TimedOut` when no server answered.
    pub fn poll(
        &mut self,
        core: &mut berth_core::Stack,
        now: Instant,
    ) -> Poll<io::Result<Vec<IpAddr>>> {
        if !self.started {
            self.started = true;
            if let Err(e) = self.start(core, now) {
                self.close(core, now);
                return Poll::Ready(Err(e));
            }
        }
        self.receive_udp(core, now);
        for i in 0..self.queries.len() {
            self.progress(core, now, i);
        }
        if self
            .queries
            .iter()
            .any(|q| !matches!(q.phase, Phase::Done(_)))
        {
            return Poll::Pending;
        }
        self.close(core, now);
        Poll::Ready(self.result())
    }

    /// Free the sockets (the lookup is over or abandoned).
    pub fn close(&mut self, core: &mut berth_core::Stack, now: Instant) {
        for h in self.handles() {
            let _ = core.close_at(now, h);
        }
        self.udp = None;
        for q in &mut self.queries {
            if let Phase::Tcp { .. } = q.phase {
                q.phase = Phase::Done(Answer::Failed("abandoned".into()));
            }
        }
    }

    fn start(&mut self, core: &mut berth_core::Stack, now: Instant) -> io::Result<()> {
        if self.servers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "cannot look up {}: no DNS server configured (Stack::set_dns_servers, or DHCP)",
                    self.name
                ),
            ));
        }
        for q in &mut self.queries {
            q.msg = dns::query(q.id, &self.name, q.qtype).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{:?} is not a domain name: labels of 1 to 63 octets, 255 in all",
                        self.name
                    ),
                )
            })?;
        }
        let h = core.udp_socket();
        self.udp = Some(h);
        for i in 0..self.queries.len() {
            self.send_udp(core, now, i);
        }
        Ok(())
    }

    fn server(&self, attempt: u32) -> SocketAddr {
        self.servers[attempt as usize % self.servers.len()]
    }

    /// Send query `i` over UDP for its attempt (to that attempt's server) and
    /// wait the attempt's timeout: `timeout` × 2^attempt.
    fn send_udp(&mut self, core: &mut berth_core::Stack, now: Instant, i: usize) {
        let server = self.server(self.queries[i].attempt);
        let q = &mut self.queries[i];
        let wait = self.timeout.saturating_mul(1 << q.attempt.min(16));
        q.phase = Phase::Udp {
            deadline: now + wait,
        };
        // A send that fails (no route yet) is an attempt that gets no answer.
        if let Some(h) = self.udp {
            let _ = core.udp_send_to(now, h, &q.msg, server);
        }
    }

    /// Query `i` got no usable answer in its attempt: the next attempt, to
    /// the next server, or the end.
    fn next_attempt(&mut self, core: &mut berth_core::Stack, now: Instant, i: usize, why: String) {
        if let Phase::Tcp { h, .. } = self.queries[i].phase {
            let _ = core.close_at(now, h);
        }
        let q = &mut self.queries[i];
        q.attempt += 1;
        if q.attempt >= self.attempts {
            q.phase = Phase::Done(Answer::Failed(why));
            return;
        }
        // A fresh ID for every transmission, so a late answer to the old one
        // is not taken for this one (RFC 5452 §9.2).
        q.id = self.rng.gen();
        if let Ok(m) = dns::query(q.id, &self.name, q.qtype) {
            q.msg = m;
        }
        self.send_udp(core, now, i);
    }

    fn receive_udp(&mut self, core: &mut berth_core::Stack, now: Instant) {
        let Some(h) = self.udp else { return };
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = core.udp_recv_from(h, &mut buf) {
            let Some(msg) = buf.get(..n) else { continue };
            let Ok(p) = DnsPacket::new_checked(msg) else {
                continue;
            };
            let Some(i) = self
                .queries
                .iter()
                .position(|q| q.id == p.id() && matches!(q.phase, Phase::Udp { .. }))
            else {
                continue;
            };
            let q = &self.queries[i];
            // RFC 5452 §9.1: from the server asked, to the question asked.
            if from != self.server(q.attempt) {
                continue;
            }
            match verdict(&p, &self.name, q.qtype, from) {
                None => {}
                Some(Verdict::Done(a)) => self.queries[i].phase = Phase::Done(a),
                Some(Verdict::NextServer(why)) => self.next_attempt(core, now, i, why),
                Some(Verdict::Truncated) => self.start_tcp(core, now, i, from),
            }
        }
    }

    /// RFC 7766 §5: a truncated UDP answer is asked again over TCP, of the
    /// same server.
    fn start_tcp(
        &mut self,
        core: &mut berth_core::Stack,
        now: Instant,
        i: usize,
        server: SocketAddr,
    ) {
        let h = core.tcp_socket();
        if let Err(e) = core.tcp_connect(now, h, server) {
            let _ = core.close_at(now, h);
            self.next_attempt(core, now, i, format!("TCP to {server}: {e}"));
            return;
        }
        let q = &mut self.queries[i];
        let out = dns::tcp_frame(&q.msg).unwrap_or_default();
        q.phase = Phase::Tcp {
            h,
            out,
            sent: 0,
            rx: Vec::new(),
            deadline: now + TCP_TIMEOUT,
        };
    }

    fn progress(&mut self, core: &mut berth_core::Stack, now: Instant, i: usize) {
        let server = self.server(self.queries[i].attempt);
        match &mut self.queries[i].phase {
            Phase::Udp { deadline } if now >= *deadline => {
                let why = format!("no answer from {server}");
                self.next_attempt(core, now, i, why);
            }
            Phase::Tcp {
                h,
                out,
                sent,
                rx,
                deadline,
            } => {
                let h = *h;
                let step = tcp_step(core, now, h, out, sent, rx);
                let timed_out = now >= *deadline;
                match step {
                    Ok(Some(msg)) => {
                        let _ = core.close_at(now, h);
                        let name = self.name.clone();
                        let qtype = self.queries[i].qtype;
                        let v = DnsPacket::new_checked(&msg[..])
                            .ok()
                            .filter(|p| p.id() == self.queries[i].id)
                            .and_then(|p| verdict(&p, &name, qtype, server));
                        self.queries[i].phase = Phase::Done(Answer::Failed(String::new()));
                        match v {
                            Some(Verdict::Done(a)) => self.queries[i].phase = Phase::Done(a),
                            // Truncated even over TCP: what came is all there is.
                            Some(Verdict::Truncated) | None => self.next_attempt(
                                core,
                                now,
                                i,
                                format!("{server} sent an unusable answer over TCP"),
                            ),
                            Some(Verdict::NextServer(why)) => self.next_attempt(core, now, i, why),
                        }
                    }
                    Ok(None) if !timed_out => {}
                    Ok(None) => {
                        let why = format!("no answer over TCP from {server}");
                        self.next_attempt(core, now, i, why)
                    }
                    Err(e) => {
                        let why = format!("TCP to {server}: {e}");
                        self.next_attempt(core, now, i, why)
                    }
                }
            }
            _ => {}
        }
    }

    fn result(&self) -> io::Result<Vec<IpAddr>> {
        let mut addrs = Vec::new();
        let mut nx = None;
        let mut failed = None;
        let mut nodata = false;
        for q in &self.queries {
            match &q.phase {
                Phase::Done(Answer::Addrs(a)) if a.is_empty() => nodata = true,
                Phase::Done(Answer::Addrs(a)) => addrs.extend_from_slice(a),
                Phase::Done(Answer::NxDomain(s)) => nx = Some(*s),
                Phase::Done(Answer::Failed(why)) => failed = Some(why.clone()),
                _ => {}
            }
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        let name = &self.name;
        let not_found = |msg: String| Err(io::Error::new(io::ErrorKind::NotFound, msg));
        match (nx, nodata, failed) {
            (Some(s), _, _) => not_found(format!("{name}: no such name (NXDOMAIN from {s})")),
            (None, true, None) => not_found(format!("{name} has no address (no A or AAAA record)")),
            (_, _, Some(why)) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "cannot look up {name}: {why} after {} attempts (servers {})",
                    self.attempts,
                    list(&self.servers)
                ),
            )),
            (None, _, None) => not_found(format!("{name}: nothing to ask for")),
        }
    }
}

fn list(servers: &[SocketAddr]) -> String {
    let v: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
    v.join(", ")
}

/// One TCP step of a query: connect, send what is left, read; the message
/// once its length prefix is satisfied (RFC 7766 §8).
fn tcp_step(
    core: &mut berth_core::Stack,
    now: Instant,
    h: SocketHandle,
    out: &[u8],
    sent: &mut usize,
    rx: &mut Vec<u8>,
) -> io::Result<Option<Vec<u8>>> {
    if let Some(e) = core.tcp_take_error(h)? {
        return Err(e);
    }
    match core.tcp_state(h)? {
        TcpState::SynSent | TcpState::SynReceived => return Ok(None),
        TcpState::Closed => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection failed",
            ))
        }
        _ => {}
    }
    while *sent < out.len() {
        match core.tcp_send(now, h, &out[*sent..]) {
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    let mut buf = [0u8; 4096];
    loop {
        match core.tcp_recv(now, h, &mut buf) {
            Ok(0) => break,
            Ok(n) => rx.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
        if rx.len() > 2 + 65_535 {
            break;
        }
    }
    if rx.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rx[0], rx[1]]));
        if rx.len() >= 2 + len {
            return Ok(Some(rx[2..2 + len].to_vec()));
        }
    }
    if core.tcp_state(h)? == TcpState::CloseWait || core.tcp_state(h)? == TcpState::Closed {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed before a whole answer",
        ));
    }
    Ok(None)
}

/// What the answer `p` from `server` to `name`/`qtype` means; `None` if it
/// is not an answer to that question (ignored, RFC 5452 §9.1).
fn verdict(p: &DnsPacket<&[u8]>, name: &str, qtype: u16, server: SocketAddr) -> Option<Verdict> {
    let flags = p.flags();
    if !flags.response || p.question_count() != 1 {
        return None;
    }
    let q = p.questions().next()?;
    if !q.name.matches(name) || q.qtype != qtype || q.qclass != dns::CLASS_IN {
        return None;
    }
    if flags.truncated {
        return Some(Verdict::Truncated);
    }
    Some(match flags.rcode {
        Rcode::NoError => Verdict::Done(Answer::Addrs(addresses(p, q.name, qtype))),
        Rcode::NxDomain => Verdict::Done(Answer::NxDomain(server)),
        other => Verdict::NextServer(format!("{server} answered {other:?}")),
    })
}

/// The addresses of type `qtype` for `qname` in the answer section,
/// following CNAMEs (RFC 1034 §3.6.2, §5.3.3), in the server's order.
fn addresses(p: &DnsPacket<&[u8]>, qname: Name<'_>, qtype: u16) -> Vec<IpAddr> {
    let mut owner = qname;
    let mut out = Vec::new();
    for _ in 0..=MAX_CNAME_CHAIN {
        let mut next = None;
        for r in p.answers().filter(|r| r.name.same_as(&owner)) {
            match (r.data(), qtype) {
                (Ok(RData::A(a)), rtype::A) => out.push(IpAddr::V4(a)),
                (Ok(RData::Aaaa(a)), rtype::AAAA) => out.push(IpAddr::V6(a)),
                (Ok(RData::Cname(target)), _) => next = Some(target),
                _ => {}
            }
        }
        match next {
            Some(t) if out.is_empty() => owner = t,
            _ => break,
        }
    }
    out
}
