//! The DHCPv4 client state machine (RFC 2131 §4.4, figure 5), sans-IO on a
//! core stack: INIT → SELECTING → REQUESTING → BOUND → RENEWING (T1) →
//! REBINDING (T2) → INIT when the lease ends or a NAK arrives. Between
//! REQUESTING and BOUND, on Ethernet, the ACKed address is probed with ARP
//! (RFC 2131 §4.4.1, RFC 5227 §2.1.1); a conflict sends a DECLINE and
//! restarts from INIT after a wait (RFC 2131 §3.1 step 5).

use berth_core::wire::dhcp::{opt, DhcpPacket, DhcpRepr, MessageType, CLIENT_PORT, SERVER_PORT};
use berth_core::wire::{EthernetAddress, IpCidr, Ipv4Addr, Ipv4Cidr};
use berth_core::{Duration, IfaceId, Instant, Medium, SocketHandle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// First retransmission wait, doubled up to [`MAX_BACKOFF`] (RFC 2131 §4.1).
const FIRST_BACKOFF: Duration = Duration::from_secs(4);
/// Longest retransmission wait (RFC 2131 §4.1: 64 s).
const MAX_BACKOFF: Duration = Duration::from_secs(64);
/// REQUESTs sent in REQUESTING before starting over with a DISCOVER.
const REQUEST_TRIES: u32 = 4;
/// Shortest retransmission wait while renewing or rebinding (RFC 2131 §4.4.5).
const MIN_RENEW_WAIT: Duration = Duration::from_secs(60);
/// The options asked for (RFC 2132 §9.8).
const PARAMETERS: [u8; 6] = [
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::DNS_SERVER,
    opt::LEASE_TIME,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
];

/// ARP probes sent for an ACKed address before it is used (RFC 5227's
/// PROBE_NUM is 3).
pub const DEFAULT_PROBES: u32 = 3;
/// Between the probes, and after the last before binding. RFC 5227 spaces
/// probes 1–2 s (PROBE_MIN/PROBE_MAX) and waits 2 s after the last, up to 9 s
/// in all; its §2.2 allows shorter delays where a network answers faster, and
/// a LAN holder answers within milliseconds. NetworkManager (n-acd) scales the
/// whole probe into its ipv4.dad-timeout (commonly 200 ms); 3 × 200 ms here.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// The wait after a DECLINE before starting over (RFC 2131 §3.1 step 5: "a
/// minimum of ten seconds", lest a broken server loop with the client).
pub const DEFAULT_DECLINE_WAIT: Duration = Duration::from_secs(10);

/// What the client is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// The client hardware address (chaddr); default: the interface's MAC
    /// (an IP link has none, so give one there).
    pub client_mac: Option<EthernetAddress>,
    /// A host name to send (option 12), for the server's records and DNS.
    pub host_name: Option<String>,
    /// Seed of the transaction IDs and retransmission jitter (default: the
    /// operating system's, in the runtime).
    pub seed: Option<u64>,
    /// ARP probes of an ACKed address before it is configured (RFC 5227
    /// §2.1.1; default [`DEFAULT_PROBES`]); 0: none, bind at once. Not on an
    /// IP link (no ARP there), nor on renewal.
    pub probes: u32,
    /// Between probes, and after the last before binding (default
    /// [`DEFAULT_PROBE_INTERVAL`]).
    pub probe_interval: Duration,
    /// After a DECLINE, the wait before a new DISCOVER (default
    /// [`DEFAULT_DECLINE_WAIT`], RFC 2131 §3.1's minimum; shorter only for tests).
    pub decline_wait: Duration,
}

impl Default for DhcpConfig {
    fn default() -> DhcpConfig {
        DhcpConfig {
            client_mac: None,
            host_name: None,
            seed: None,
            probes: DEFAULT_PROBES,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            decline_wait: DEFAULT_DECLINE_WAIT,
        }
    }
}

/// A lease: what the server granted and when it runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address and its prefix (from the subnet mask).
    pub address: Ipv4Cidr,
    /// The first router (the default gateway), if the server named one.
    pub router: Option<Ipv4Addr>,
    /// DNS servers, in order.
    pub dns_servers: Vec<Ipv4Addr>,
    /// The server that granted it (option 54).
    pub server: Ipv4Addr,
    /// Length of the lease (option 51).
    pub lease_time: Duration,
    /// Renewal time T1 (option 58; default half the lease, RFC 2131 §4.4.5).
    pub renew_after: Duration,
    /// Rebinding time T2 (option 59; default 7/8 of the lease).
    pub rebind_after: Duration,
    /// When it was granted (the stack's clock): T1, T2 and the end count from here.
    pub acquired: Instant,
    /// How many times it was extended since it was first granted.
    pub renewals: u32,
}

impl Lease {
    /// When the lease runs out.
    pub fn expires(&self) -> Instant {
        self.acquired + self.lease_time
    }
}

/// What happened, from [`Client::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lease was granted and applied (address, route): a new one, or after
    /// the address changed.
    Bound(Lease),
    /// The lease was extended (RENEWING or REBINDING answered).
    Renewed(Lease),
    /// The server refused (NAK, with its message): any lease is dropped and
    /// the client starts over.
    Nak(String),
    /// The lease ran out: address and default route removed; starting over.
    Expired,
    /// The ACKed `address` answered the ARP probe from `owner` (another host
    /// uses it): DECLINE sent to `server`, the address not configured; a new
    /// DISCOVER follows after [`DhcpConfig::decline_wait`] (RFC 2131 §3.1).
    Declined {
        /// The address declined.
        address: Ipv4Addr,
        /// The server that offered it.
        server: Ipv4Addr,
        /// The hardware address of the host that claimed it.
        owner: EthernetAddress,
    },
}

/// The client's state (RFC 2131 figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting to start over after a DECLINE (INIT, RFC 2131 §3.1 step 5).
    Init,
    /// Broadcasting DISCOVERs.
    Selecting,
    /// Asking the chosen server for its offer.
    Requesting,
    /// ARP-probing the ACKed address before configuring it (RFC 5227 §2.1.1).
    Probing,
    /// Configured, until T1.
    Bound,
    /// Asking the granting server to extend (unicast), until T2.
    Renewing,
    /// Asking any server to extend (broadcast), until the lease ends.
    Rebinding,
    /// Released or stopped: nothing more is sent.
    Stopped,
}

/// A DHCPv4 client for one interface of a core stack. Drive it with
/// [`Client::poll`] whenever its socket is readable or [`Client::poll_timeout`]
/// passes; it configures the interface itself (address, connected route,
/// default route) and reports the lease.
#[derive(Debug)]
pub struct Client {
    iface: IfaceId,
    mac: EthernetAddress,
    host_name: Option<String>,
    udp: Option<SocketHandle>,
    state: State,
    xid: u32,
    /// When this acquisition or renewal began (for `secs`).
    began: Instant,
    /// Next transmission (or state change) is due.
    deadline: Instant,
    backoff: Duration,
    tries: u32,
    /// The offer taken in SELECTING: (address, server).
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
    lease: Option<Lease>,
    /// The ACKed lease under an ARP probe, and the probes sent for it.
    probing: Option<(Lease, u32)>,
    /// ARP probes to send; 0 on an IP link.
    probes: u32,
    probe_interval: Duration,
    decline_wait: Duration,
    rng: SmallRng,
}

impl Client {
    /// A client for `iface` of `core`; it opens its UDP socket (port 68,
    /// bound to the interface) at once and sends the first DISCOVER on the
    /// first poll. `iface` should have address 0.0.0.0/32 until then.
    pub fn new(
        core: &mut berth_core::Stack,
        now: Instant,
        iface: IfaceId,
        config: &DhcpConfig,
    ) -> io::Result<Client> {
        let medium = core
            .interfaces()
            .find(|(id, _)| *id == iface)
            .map(|(_, c)| c.medium)
            .ok_or_else(|| invalid(format!("no interface {}", iface.0)))?;
        let mac = match (config.client_mac, medium) {
            (Some(m), _) | (None, Medium::Ethernet(m)) => m,
            (None, Medium::Ip) => {
                return Err(invalid(
                    "an IP link has no MAC: give DhcpConfig::client_mac for DHCP there",
                ))
            }
        };
        let h = core.udp_socket();
        let bound = core
            .udp_set_reuse_addr(h, true)
            .and_then(|_| {
                core.udp_bind(
                    h,
                    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), CLIENT_PORT),
                )
            })
            .and_then(|_| core.udp_bind_device(h, Some(iface)));
        if let Err(e) = bound {
            let _ = core.close_at(now, h);
            return Err(e);
        }
        // RFC 5227 probes need ARP: none on an IP link.
        let probes = match medium {
            Medium::Ethernet(_) => config.probes,
            Medium::Ip => 0,
        };
        let mut rng = SmallRng::seed_from_u64(config.seed.unwrap_or(0));
        Ok(Client {
            iface,
            mac,
            host_name: config.host_name.clone(),
            udp: Some(h),
            state: State::Selecting,
            xid: rng.gen(),
            began: now,
            deadline: now,
            backoff: FIRST_BACKOFF,
            tries: 0,
            offer: None,
            lease: None,
            probing: None,
            probes,
            probe_interval: config.probe_interval,
            decline_wait: config.decline_wait,
            rng,
        })
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The lease in force, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The client's UDP socket (for readiness).
    pub fn handle(&self) -> Option<SocketHandle> {
        self.udp
    }

    /// When [`Client::poll`] must run again at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state != State::Stopped).then_some(self.deadline)
    }

    /// Take what arrived, send what is due, change state; what happened.
    pub fn poll(&mut self, core: &mut berth_core::Stack, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        if self.state == State::Stopped {
            return events;
        }
        self.receive(core, now, &mut events);
        if self.state == State::Probing {
            // A conflict ends the probe at once (RFC 5227 §2.1.1).
            self.check_probe(core, now, &mut events);
        }
        if now >= self.deadline {
            self.timeout(core, now, &mut events);
        }
        events
    }

    /// RELEASE the lease (RFC 2131 §4.4.6: unicast to its server), remove
    /// the address and default route, close the socket; nothing more is sent.
    pub fn release(&mut self, core: &mut berth_core::Stack, now: Instant) {
        if let Some(l) = self.lease.take() {
            let mut r = DhcpRepr::new(MessageType::Release, self.rng.gen(), self.mac);
            r.ciaddr = l.address.address();
            r.server_id = Some(l.server);
            let bytes = emit(&r);
            self.send_bytes(core, now, &bytes, l.server);
            self.unconfigure(core, &l);
        }
        if let Some((p, _)) = self.probing.take() {
            core.arp_probe_done(self.iface, p.address.address());
        }
        if let Some(h) = self.udp.take() {
            let _ = core.close_at(now, h);
        }
        self.state = State::Stopped;
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // RFC 2131 §4.1: randomized by ±1 s.
        let ms = self.rng.gen_range(0..=2000u64);
        (d + Duration::from_millis(ms)).saturating_sub(Duration::from_secs(1))
    }

    fn message(&self, t: MessageType, now: Instant) -> DhcpRepr<'_> {
        let mut r = DhcpRepr::new(t, self.xid, self.mac);
        r.secs =
            u16::try_from(now.saturating_duration_since(self.began).as_secs()).unwrap_or(u16::MAX);
        r.parameter_request_list = Some(&PARAMETERS);
        r.max_message_size = Some(1500);
        r.host_name = self.host_name.as_deref().map(str::as_bytes);
        r
    }

    /// Broadcast a DISCOVER (RFC 2131 §4.4.1), BROADCAST flag set: the client
    /// cannot take unicast before it has an address.
    fn discover(&mut self, core: &mut berth_core::Stack, now: Instant) {
        let mut r = self.message(MessageType::Discover, now);
        r.broadcast = true;
        if let Some(l) = &self.lease {
            r.requested_ip = Some(l.address.address());
        }
        let bytes = emit(&r);
        self.send_bytes(core, now, &bytes, Ipv4Addr::BROADCAST);
        let wait = self.jitter(self.backoff);
        self.deadline = now + wait;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn send_bytes(
        &mut self,
        core: &mut berth_core::Stack,
        now: Instant,
        bytes: &[u8],
        to: Ipv4Addr,
    ) {
        if let Some(h) = self.udp {
            let _ = core.udp_send_to(now, h, bytes, SocketAddr::new(to.into(), SERVER_PORT));
        }
    }

    /// The REQUEST of each state (RFC 2131 §4.3.2 table 4): SELECTING names
    /// the server and the offered address; RENEWING (unicast) and REBINDING
    /// (broadcast) put the address in ciaddr.
    fn request(&mut self, core: &mut berth_core::Stack, now: Instant) {
        let mut r = self.message(MessageType::Request, now);
        let to = match (self.state, self.offer, &self.lease) {
            (State::Requesting, Some((addr, server)), _) => {
                r.broadcast = true;
                r.requested_ip = Some(addr);
                r.server_id = Some(server);
                Ipv4Addr::BROADCAST
            }
            (State::Renewing, _, Some(l)) => {
                r.ciaddr = l.address.address();
                l.server
            }
            (State::Rebinding, _, Some(l)) => {
                r.ciaddr = l.address.address();
                Ipv4Addr::BROADCAST
            }
            _ => return,
        };
        let bytes = emit(&r);
        self.send_bytes(core, now, &bytes, to);
    }

    fn start_over(&mut self, core: &mut berth_core::Stack, now: Instant) {
        self.state = State::Selecting;
        self.xid = self.rng.gen();
        self.began = now;
        self.backoff = FIRST_BACKOFF;
        self.tries = 0;
        self.offer = None;
        self.discover(core, now);
    }

    fn timeout(&mut self, core: &mut berth_core::Stack, now: Instant, events: &mut Vec<Event>) {
        match self.state {
            State::Init => self.start_over(core, now),
            State::Probing => self.probe(core, now, events),
            State::Selecting => self.discover(core, now),
            State::Requesting => {
                if self.tries >= REQUEST_TRIES {
                    self.start_over(core, now);
                    return;
                }
                self.tries += 1;
                self.request(core, now);
                let wait = self.jitter(self.backoff);
                self.deadline = now + wait;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            State::Bound | State::Renewing | State::Rebinding => {
                let Some(l) = self.lease.clone() else {
                    self.start_over(core, now);
                    return;
                };
                let t1 = l.acquired + l.renew_after;
                let t2 = l.acquired + l.rebind_after;
                let end = l.expires();
                if now >= end {
                    // RFC 2131 §4.4.5: the lease is gone; so is the address.
                    self.unconfigure(core, &l);
                    self.lease = None;
                    events.push(Event::Expired);
                    self.start_over(core, now);
                    return;
                }
                if now >= t2 {
                    if self.state != State::Rebinding {
                        self.state = State::Rebinding;
                        self.xid = self.rng.gen();
                        self.began = now;
                    }
                } else if now >= t1 && self.state == State::Bound {
                    self.state = State::Renewing;
                    self.xid = self.rng.gen();
                    self.began = now;
                }
                if self.state == State::Bound {
                    self.deadline = t1;
                    return;
                }
                self.request(core, now);
                // §4.4.5: wait half the time left to T2 (RENEWING) or to
                // the end (REBINDING), at least 60 s, but never past them.
                let limit = if self.state == State::Renewing {
                    t2
                } else {
                    end
                };
                let half = limit.saturating_duration_since(now) / 2;
                self.deadline = (now + half.max(MIN_RENEW_WAIT)).min(limit);
            }
            State::Stopped => {}
        }
    }

    fn receive(&mut self, core: &mut berth_core::Stack, now: Instant, events: &mut Vec<Event>) {
        let Some(h) = self.udp else { return };
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = core.udp_recv_from(h, &mut buf) {
            if from.port() != SERVER_PORT {
                continue;
            }
            let Some(bytes) = buf.get(..n) else { continue };
            let Ok(r) = DhcpPacket::new_checked(bytes).and_then(|p| DhcpRepr::parse(&p)) else {
                continue;
            };
            // Ours: this transaction, this hardware address (RFC 2131 §4.4.1).
            if r.xid != self.xid || r.chaddr != self.mac {
                continue;
            }
            self.answer(core, now, &r, events);
        }
    }

    fn answer(
        &mut self,
        core: &mut berth_core::Stack,
        now: Instant,
        r: &DhcpRepr<'_>,
        events: &mut Vec<Event>,
    ) {
        match (self.state, r.message_type) {
            (State::Selecting, MessageType::Offer) => {
                let Some(server) = r.server_id else { return };
                if r.yiaddr.is_unspecified() || r.yiaddr.is_broadcast() {
                    return;
                }
                // The first offer is taken (RFC 2131 §4.4.1 leaves the choice).
                self.offer = Some((r.yiaddr, server));
                self.state = State::Requesting;
                self.backoff = FIRST_BACKOFF;
                self.tries = 1;
                self.request(core, now);
                let wait = self.jitter(self.backoff);
                self.deadline = now + wait;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Ack) => {
                if self.state == State::Requesting
                    && r.server_id.is_some()
                    && r.server_id != self.offer.map(|o| o.1)
                {
                    return;
                }
                let Some(lease) = self.lease_from(r, now) else {
                    return;
                };
                if self.state == State::Requesting && self.probes > 0 {
                    // RFC 2131 §4.4.1: check the address before using it
                    // (only a new one: a renewal keeps what is in use).
                    self.state = State::Probing;
                    self.offer = None;
                    self.probing = Some((lease, 0));
                    self.probe(core, now, events);
                    return;
                }
                let renewed = self.state != State::Requesting
                    && self
                        .lease
                        .as_ref()
                        .is_some_and(|l| l.address == lease.address);
                let lease = Lease {
                    renewals: match (&self.lease, renewed) {
                        (Some(l), true) => l.renewals + 1,
                        _ => 0,
                    },
                    ..lease
                };
                self.bind(core, lease, renewed, events);
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Nak) => {
                // RFC 2131 §4.4.5 (and §3.1 step 5): back to INIT.
                if let Some(old) = self.lease.take() {
                    self.unconfigure(core, &old);
                }
                let why = r
                    .message
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .unwrap_or_default();
                events.push(Event::Nak(why));
                self.start_over(core, now);
            }
            _ => {}
        }
    }

    /// Apply `lease` and enter BOUND.
    fn bind(
        &mut self,
        core: &mut berth_core::Stack,
        lease: Lease,
        renewed: bool,
        events: &mut Vec<Event>,
    ) {
        if !renewed {
            if let Some(old) = self.lease.take() {
                self.unconfigure(core, &old);
            }
        }
        self.configure(core, &lease);
        self.state = State::Bound;
        self.offer = None;
        self.deadline = lease.acquired + lease.renew_after;
        self.lease = Some(lease.clone());
        events.push(if renewed {
            Event::Renewed(lease)
        } else {
            Event::Bound(lease)
        });
    }

    /// PROBING's timer: the next ARP probe (RFC 5227 §2.1.1), or, once all
    /// were sent and the last waited for with no conflict, BOUND.
    fn probe(&mut self, core: &mut berth_core::Stack, now: Instant, events: &mut Vec<Event>) {
        if self.check_probe(core, now, events) {
            return;
        }
        let Some((lease, sent)) = self.probing.take() else {
            self.start_over(core, now);
            return;
        };
        let addr = lease.address.address();
        if sent >= self.probes {
            core.arp_probe_done(self.iface, addr);
            self.bind(core, lease, false, events);
            return;
        }
        if core.arp_probe(self.iface, addr).is_err() {
            // No ARP after all: nothing to probe with.
            self.bind(core, lease, false, events);
            return;
        }
        self.probing = Some((lease, sent + 1));
        self.deadline = now + self.probe_interval;
    }

    /// Whether the address under probe was claimed by another host; if so,
    /// DECLINE it (RFC 2131 §4.4.1, table 5: requested address and server
    /// id, ciaddr 0, broadcast) and wait in INIT before starting over
    /// (§3.1 step 5).
    fn check_probe(
        &mut self,
        core: &mut berth_core::Stack,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some((lease, _)) = &self.probing else {
            return false;
        };
        let (address, server) = (lease.address.address(), lease.server);
        let Some(owner) = core.arp_conflict(self.iface, address) else {
            return false;
        };
        self.probing = None;
        core.arp_probe_done(self.iface, address);
        let mut r = DhcpRepr::new(MessageType::Decline, self.xid, self.mac);
        r.requested_ip = Some(address);
        r.server_id = Some(server);
        r.message = Some(b"address in use (ARP)");
        let bytes = emit(&r);
        self.send_bytes(core, now, &bytes, Ipv4Addr::BROADCAST);
        events.push(Event::Declined {
            address,
            server,
            owner,
        });
        self.state = State::Init;
        self.offer = None;
        self.deadline = now + self.decline_wait;
        true
    }

    /// The lease an ACK grants; `None` if it lacks what a lease needs.
    fn lease_from(&self, r: &DhcpRepr<'_>, now: Instant) -> Option<Lease> {
        if r.yiaddr.is_unspecified() {
            return None;
        }
        let server = r
            .server_id
            .or(self.offer.map(|o| o.1))
            .or(self.lease.as_ref().map(|l| l.server))?;
        let lease_secs = r.lease_time?;
        let lease_time = Duration::from_secs(u64::from(lease_secs));
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        // RFC 2131 §4.4.5: T1 < T2 < lease, else the defaults.
        let (mut t1, mut t2) = (
            r.renewal_time.map(secs).unwrap_or(lease_time / 2),
            r.rebinding_time.map(secs).unwrap_or(lease_time * 7 / 8),
        );
        if t2 >= lease_time || t2 == Duration::ZERO {
            t2 = lease_time * 7 / 8;
        }
        if t1 >= t2 || t1 == Duration::ZERO {
            t1 = t2.min(lease_time / 2);
        }
        let prefix = match r.subnet_mask {
            Some(m) => mask_prefix(m)?,
            None => classful_prefix(r.yiaddr),
        };
        Some(Lease {
            address: Ipv4Cidr::new(r.yiaddr, prefix)?,
            router: r.routers.first(),
            dns_servers: r.dns_servers.iter().collect(),
            server,
            lease_time,
            renew_after: t1,
            rebind_after: t2,
            acquired: now,
            renewals: 0,
        })
    }

    /// Put the lease on the interface: address, connected route, default route.
    fn configure(&self, core: &mut berth_core::Stack, l: &Lease) {
        let _ = core.set_ipv4_address(self.iface, l.address);
        if let Some(g) = l.router {
            let _ = core.set_default_gateway(g);
        }
    }

    /// Take the lease off: the default route through its router, the address.
    fn unconfigure(&self, core: &mut berth_core::Stack, l: &Lease) {
        if let Some(g) = l.router {
            let via_router = core.routes().any(|r| {
                r.dest.prefix_len() == 0
                    && r.gateway == Some(IpAddr::V4(g))
                    && r.iface == self.iface
            });
            if via_router {
                if let Some(any) = IpCidr::new(Ipv4Addr::UNSPECIFIED.into(), 0) {
                    core.remove_route(any);
                }
            }
        }
        if let Some(zero) = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 32) {
            let _ = core.set_ipv4_address(self.iface, zero);
        }
    }
}

fn emit(r: &DhcpRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf);
    buf
}

/// The prefix length of a contiguous mask; `None` for a mask with holes.
fn mask_prefix(m: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(m);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The class's prefix when the server gives no mask (RFC 1122 §3.3.1.1
/// lets a host assume the natural mask).
fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(classful_prefix(Ipv4Addr::new(192, 0, 2, 9)), 24);
        assert_eq!(classful_prefix(Ipv4Addr::new(10, 0, 0, 1)), 8);
    }
}
