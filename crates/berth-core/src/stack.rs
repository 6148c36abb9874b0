//! The stack: owns interfaces, routes, neighbours, sockets, timers and counters, and
//! is driven from outside (sans-IO, in the shape of quinn-proto):
//!
//! - [`Stack::receive`] hands it a frame that arrived on an interface;
//! - [`Stack::poll_transmit`] takes the next frame it wants to send;
//! - [`Stack::poll_timeout`] / [`Stack::handle_timeout`] run its timers;
//! - [`Stack::poll_event`] reports sockets that became readable or got an error;
//! - socket calls (`udp_*`, `raw_*`) are made by [`SocketHandle`].
//!
//! The stack never reads a clock: every call that may send or arm a timer takes `now`.

use crate::config::{Config, IfaceConfig, Medium};
use crate::error::{code, error};
use crate::frag::Reassembler;
use crate::iface::{AddrOrigin, AddrState, IfaceId, Interface, Route, RouteTable};
use crate::mem::{MemPool, MemoryUsage};
use crate::neighbor::{NeighborCache, NeighborEntry, NeighborState};
use crate::raw::RawSocket;
use crate::socket::{Slab, SocketHandle, SocketInfo};
use crate::stats::Stats;
use crate::table::PortTable;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::socket::TcpSocket;
use crate::time::Instant;
use crate::timer::{Timer, TimerQueue};
use crate::udp::UdpSocket;
use berth_wire::{
    EtherType, EthernetAddress, EthernetFrame, IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// A frame the stack wants sent on `iface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The interface the frame leaves by.
    pub iface: IfaceId,
    /// The frame (IP packet or Ethernet frame, by the interface's medium).
    pub frame: Vec<u8>,
}

/// What happened to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Data (or a datagram, or end of stream, or a connection to accept) is queued.
    Readable,
    /// A connection completed, or send-buffer space opened.
    Writable,
    /// An error is pending (e.g. ICMP port unreachable on a connected UDP socket).
    Error,
}

/// A readiness change. Events are edge-triggered: one is queued when a socket's
/// receive queue goes from empty to non-empty, not for every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// The socket the event is for.
    pub handle: SocketHandle,
    /// What happened.
    pub kind: EventKind,
}

#[derive(Debug)]
pub(crate) enum Socket {
    Udp(UdpSocket),
    Raw(RawSocket),
    Tcp(TcpSocket),
}

/// Token bucket limiting ICMP errors (Linux icmp_msgs_per_sec / icmp_msgs_burst).
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            tokens: burst as f64,
            last: Instant::ZERO,
            rate: rate as f64,
            burst: burst as f64,
        }
    }
    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A sans-IO IPv4 and IPv6 host stack. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Stack {
    pub(crate) config: Config,
    pub(crate) ifaces: Vec<Interface>,
    pub(crate) routes: RouteTable,
    pub(crate) neighbors: NeighborCache,
    pub(crate) reasm: Reassembler,
    pub(crate) sockets: Slab<Socket>,
    pub(crate) udp_ports: PortTable,
    pub(crate) tcp_ports: PortTable,
    pub(crate) isn: IsnGenerator,
    pub(crate) cookies: crate::tcp::cookie::CookieJar,
    pub(crate) challenge_bucket: TokenBucket,
    /// Latest `now` seen; used by calls that take no time argument (close).
    pub(crate) last_now: Instant,
    pub(crate) raw_by_proto: HashMap<u8, Vec<SocketHandle>>,
    pub(crate) stats: Stats,
    pub(crate) tx: VecDeque<Transmit>,
    pub(crate) loopback: VecDeque<Vec<u8>>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) timers: TimerQueue,
    pub(crate) rng: SmallRng,
    pub(crate) ip_ident: u16,
    /// Identification of our IPv6 fragments (RFC 8200 §4.5; RFC 7739 asks for
    /// unpredictable values, hence a random start).
    pub(crate) ip6_ident: u32,
    pub(crate) icmp_bucket: TokenBucket,
    /// Deadline of the one armed reassembly timer, if any. A timer per partial
    /// datagram would let a fragment flood grow the timer heap past the memory cap.
    pub(crate) reasm_timer: Option<Instant>,
    /// Path MTUs learnt from ICMP (RFC 1191, RFC 8201).
    pub(crate) pmtu: crate::pmtu::PmtuCache,
    /// Inside `receive_batch`: connections whose output waits for the batch end.
    pub(crate) deferred: Option<Vec<SocketHandle>>,
    /// While one frame of `receive_batch_offload` is taken in: its device
    /// computed its TCP/UDP checksum itself (see there), so it is not verified
    /// again. Cleared for fragments and before any looped-back packet.
    pub(crate) rx_l4_csum_ok: bool,
    /// Stack-wide TCP and datagram memory (tcp_mem, udp_mem).
    pub(crate) tcp_mem: MemPool,
    pub(crate) udp_mem: MemPool,
    /// TCP sockets whose send was refused for want of stack memory: woken
    /// (Writable) once memory is below the high mark again.
    pub(crate) mem_waiters: Vec<SocketHandle>,
    /// The forwarders of forwarding interfaces (`forward.rs`).
    pub(crate) tcp_forwarder: Option<SocketHandle>,
    pub(crate) udp_forwarder: Option<SocketHandle>,
}

impl Stack {
    /// A stack with no interfaces yet.
    pub fn new(config: Config) -> Stack {
        let mut rng = SmallRng::seed_from_u64(config.seed.unwrap_or(0));
        let ip_ident = rng.gen();
        let ip6_ident = ip_ident as u32 ^ 0x5bd1_e995;
        let isn = IsnGenerator::new(rng.gen(), rng.gen());
        let cookies = crate::tcp::cookie::CookieJar::new(&isn);
        let challenge_bucket = TokenBucket::new(
            config.tcp.challenge_ack_limit,
            config.tcp.challenge_ack_limit,
        );
        let (tcp_mem, udp_mem) = (MemPool::new(config.tcp_mem), MemPool::new(config.udp_mem));
        // Its own generator: drawing ReachableTime leaves the stack's `rng` alone.
        let neighbors = NeighborCache::new(
            config.arp_cache_size,
            config.seed.unwrap_or(0) ^ 0x006e_6569_6768,
        );
        Stack {
            reasm: Reassembler::new(config.reassembly_mem, config.reassembly_timeout),
            icmp_bucket: TokenBucket::new(config.icmp_rate_per_sec, config.icmp_burst),
            pmtu: crate::pmtu::PmtuCache::new(config.pmtu_cache_size, config.pmtu_expires),
            config,
            ifaces: Vec::new(),
            routes: RouteTable::default(),
            neighbors,
            sockets: Slab::default(),
            udp_ports: PortTable::default(),
            tcp_ports: PortTable::default(),
            isn,
            cookies,
            challenge_bucket,
            last_now: Instant::ZERO,
            raw_by_proto: HashMap::new(),
            stats: Stats::default(),
            tx: VecDeque::new(),
            loopback: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerQueue::default(),
            rng,
            ip_ident,
            ip6_ident,
            reasm_timer: None,
            deferred: None,
            rx_l4_csum_ok: false,
            tcp_mem,
            udp_mem,
            mem_waiters: Vec::new(),
            tcp_forwarder: None,
            udp_forwarder: None,
        }
    }

    /// The configuration the stack was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Turn automatic ICMP echo replies on or off.
    pub fn set_icmp_echo_reply(&mut self, on: bool) {
        self.config.icmp_echo_reply = on;
    }

    /// Add an interface; its connected route (address/prefix, on-link) is added too,
    /// and an IPv6 link-local address (fe80::/64, RFC 4862 §5.3): from the MAC
    /// (EUI-64) on Ethernet, an RFC 7217 stable identifier on an IP link. On
    /// Ethernet it is tentative until DAD passes (`Config::dad_transmits`).
    pub fn add_interface(&mut self, config: IfaceConfig) -> io::Result<IfaceId> {
        if config.mtu < 68 {
            // RFC 791: every host must accept 68-byte datagrams unfragmented.
            return Err(error(
                code::EINVAL,
                format!("MTU {} is below IPv4's minimum of 68", config.mtu),
            ));
        }
        let id = IfaceId(self.ifaces.len());
        self.ifaces.push(Interface::new(config));
        self.routes.add(Route {
            dest: config.address.network().into(),
            gateway: None,
            iface: id,
        });
        let fe80 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0);
        let link_local = match config.medium {
            Medium::Ethernet(mac) => {
                berth_wire::ipv6::link_local(berth_wire::ipv6::eui64_interface_id(mac))
            }
            Medium::Ip => self.stable_address(id, fe80, 0),
        };
        if let Some(c) = Ipv6Cidr::new(link_local, 64) {
            let now = self.last_now;
            self.add_address_v6(now, id, c, AddrOrigin::LinkLocal, (None, None))?;
        }
        Ok(id)
    }

    /// Add an IPv6 address to `iface` (as `ip -6 addr add`), with its on-link
    /// prefix route. On Ethernet it is tentative until Duplicate Address
    /// Detection passes (about `dad_transmits` seconds). An interface has one
    /// IPv4 address, the one in its [`IfaceConfig`].
    pub fn add_address(
        &mut self,
        now: Instant,
        iface: IfaceId,
        cidr: impl Into<IpCidr>,
    ) -> io::Result<()> {
        self.note_time(now);
        match cidr.into() {
            IpCidr::Ipv6(c) => self.add_address_v6(now, iface, c, AddrOrigin::Manual, (None, None)),
            IpCidr::Ipv4(c) => Err(error(
                code::EINVAL,
                format!("{c}: an interface has one IPv4 address, set in its IfaceConfig"),
            )),
        }
    }

    /// Accept router advertisements on `iface` and form addresses from their
    /// prefixes (SLAAC, RFC 4862), as Linux's accept_ra=1 with autoconf=1;
    /// router solicitations go out once the link-local address is usable.
    pub fn set_autoconf(&mut self, now: Instant, iface: IfaceId) -> io::Result<()> {
        self.note_time(now);
        if iface.0 >= self.ifaces.len() {
            return Err(error(code::EINVAL, format!("no interface {}", iface.0)));
        }
        self.ndp_enable_autoconf(now, iface);
        Ok(())
    }

    /// The addresses of `iface`, as `ip addr` lists them: the IPv4 one, then
    /// every IPv6 one with its origin and state.
    pub fn addresses(&self, iface: IfaceId) -> Vec<(IpCidr, Option<(AddrOrigin, AddrState)>)> {
        let Some(ifc) = self.ifaces.get(iface.0) else {
            return Vec::new();
        };
        let mut v = vec![(IpCidr::Ipv4(ifc.config.address), None)];
        v.extend(
            ifc.v6
                .iter()
                .map(|a| (IpCidr::Ipv6(a.cidr), Some((a.origin, a.state)))),
        );
        v
    }

    /// Route `dest` via `gateway`, which must be on-link on some interface and of
    /// the same family as `dest`.
    pub fn add_route(
        &mut self,
        dest: impl Into<IpCidr>,
        gateway: impl Into<IpAddr>,
    ) -> io::Result<()> {
        let (dest, gateway) = (dest.into(), gateway.into());
        if dest.address().is_ipv4() != gateway.is_ipv4() {
            return Err(error(
                code::EINVAL,
                format!("gateway {gateway} is not of the family of {dest}; give one that is"),
            ));
        }
        // A link-local router (what router advertisements name) is on-link
        // where route_v6 sends link-local traffic: berth keeps no zone index.
        let link_local = match gateway {
            IpAddr::V6(g) => berth_wire::ipv6::is_link_local(&g),
            IpAddr::V4(_) => false,
        };
        let on_link = if link_local {
            self.ifaces
                .iter()
                .position(|f| !f.v6.is_empty())
                .map(IfaceId)
        } else {
            self.routes
                .lookup(gateway)
                .filter(|r| r.gateway.is_none())
                .map(|r| r.iface)
        };
        let Some(iface) = on_link else {
            return Err(error(
                code::ENETUNREACH,
                format!(
                    "gateway {gateway} is not on any interface's network; add that interface first"
                ),
            ));
        };
        self.routes.add(Route {
            dest,
            gateway: Some(gateway),
            iface,
        });
        Ok(())
    }

    /// Remove the route to `dest` (as `ip route del`); whether there was one.
    pub fn remove_route(&mut self, dest: impl Into<IpCidr>) -> bool {
        self.routes.remove(dest.into())
    }

    /// Give `iface` a new IPv4 address (an interface has one; a DHCP client
    /// sets the leased one, RFC 2131 §4.4.1, and 0.0.0.0/32 again when the
    /// lease ends). The connected route follows: the old prefix's on-link
    /// route via `iface` goes, the new one comes. Routes via gateways stay.
    pub fn set_ipv4_address(&mut self, iface: IfaceId, address: Ipv4Cidr) -> io::Result<()> {
        let Some(ifc) = self.ifaces.get_mut(iface.0) else {
            return Err(error(code::EINVAL, format!("no interface {}", iface.0)));
        };
        let old = std::mem::replace(&mut ifc.config.address, address).network();
        let connected = self
            .routes
            .iter()
            .any(|r| r.dest == IpCidr::Ipv4(old) && r.gateway.is_none() && r.iface == iface);
        if connected {
            self.routes.remove(old.into());
        }
        self.routes.add(Route {
            dest: address.network().into(),
            gateway: None,
            iface,
        });
        Ok(())
    }

    /// Shorthand for `add_route(0.0.0.0/0, gateway)` (or `::/0` for an IPv6 gateway).
    pub fn set_default_gateway(&mut self, gateway: impl Into<IpAddr>) -> io::Result<()> {
        let gateway = gateway.into();
        let any = match gateway {
            IpAddr::V4(_) => IpAddr::from(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
        };
        let any = IpCidr::new(any, 0)
            .ok_or_else(|| error(code::EINVAL, "internal: /0 prefix rejected"))?;
        self.add_route(any, gateway)
    }

    /// The route table.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Every interface with its configuration.
    pub fn interfaces(&self) -> impl Iterator<Item = (IfaceId, &IfaceConfig)> {
        self.ifaces
            .iter()
            .enumerate()
            .map(|(i, f)| (IfaceId(i), &f.config))
    }

    /// Stack-wide counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every socket as `ss` lists it; a listener's half-open connections (its
    /// SYN queue) follow it as SYN-RECV rows, as iproute2 `ss` shows them.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        self.sockets_at(self.last_now)
    }

    /// [`Stack::sockets`] with the times in tcp_info (since the last data,
    /// timers) measured at `now` rather than at the latest time the stack saw.
    pub fn sockets_at(&self, now: Instant) -> Vec<SocketInfo> {
        let mut rows = Vec::with_capacity(self.sockets.len());
        for (h, s) in self.sockets.iter() {
            match s {
                Socket::Udp(u) => rows.push(u.info(h)),
                Socket::Raw(r) => rows.push(r.info(h)),
                Socket::Tcp(t) => {
                    rows.push(t.info(h, now));
                    if let Some(l) = &t.listener {
                        rows.extend(l.half_open_rows(h, t.family));
                    }
                }
            }
        }
        rows
    }

    /// Number of open sockets.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Bytes charged to partially reassembled datagrams: their data plus a fixed
    /// bookkeeping charge each (what `Config::reassembly_mem` bounds).
    pub fn reassembly_memory(&self) -> usize {
        self.reasm.mem()
    }

    /// Stack-wide memory: TCP and datagram bytes charged, pressure state,
    /// reassembly memory. `memory().within_limits()` is the ceiling invariant:
    /// TCP ≤ tcp_mem high + [`crate::TCP_FORCED_SLACK`], datagrams ≤ udp_mem
    /// high, reassembly ≤ `reassembly_mem`.
    pub fn memory(&self) -> MemoryUsage {
        MemoryUsage {
            tcp_bytes: self.tcp_mem.bytes,
            tcp_pages: self.tcp_mem.pages(),
            tcp_peak: self.tcp_mem.peak,
            tcp_limits: self.tcp_mem.limits,
            tcp_pressure: self.tcp_mem.pressure,
            udp_bytes: self.udp_mem.bytes,
            udp_pages: self.udp_mem.pages(),
            udp_peak: self.udp_mem.peak,
            udp_limits: self.udp_mem.limits,
            udp_pressure: self.udp_mem.pages() > self.udp_mem.limits.pressure,
            frag_bytes: self.reasm.mem(),
            frag_limit: self.config.reassembly_mem,
            frag_pending: self.reasm.len(),
            frag6_pending: self.reasm.len_v6(),
        }
    }

    /// Datagrams waiting for more fragments.
    pub fn reassembly_pending(&self) -> usize {
        self.reasm.len()
    }

    /// Armed timers (including ones that will turn out stale when they fire).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// The ARP (IPv4) neighbours as (interface, IP, MAC or `None` while resolving);
    /// FAILED entries are left out. [`Stack::neighbor_entries`] has every entry
    /// with its state.
    pub fn neighbors(&self) -> Vec<(IfaceId, Ipv4Addr, Option<EthernetAddress>)> {
        let mut v: Vec<_> = self
            .neighbors
            .entries(self.last_now)
            .filter_map(|e| match e.ip {
                IpAddr::V4(ip) if e.state != NeighborState::Failed => Some((e.iface, ip, e.hw)),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    /// Every neighbour cache entry (ARP and NDP) with its state, as `ip neigh`
    /// shows them, sorted by interface and address.
    pub fn neighbor_entries(&self) -> Vec<NeighborEntry> {
        let mut v: Vec<_> = self.neighbors.entries(self.last_now).collect();
        v.sort();
        v
    }

    /// Reachability confirmation from an upper layer (RFC 4861 §7.3.1): forward
    /// progress with the on-link neighbour `ip`, e.g. an ACK of new data (Linux
    /// dst_confirm, MSG_CONFIRM). A STALE, DELAY or PROBE entry becomes REACHABLE
    /// without probing. Returns whether `ip` had an entry with an address.
    pub fn confirm_neighbor(&mut self, now: Instant, iface: IfaceId, ip: IpAddr) -> bool {
        self.note_time(now);
        let p = self.neighbor_params(ip);
        self.neighbors.confirm(now, (iface, ip), &p)
    }

    /// Next readiness event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        while let Some(ev) = self.events.pop_front() {
            // `event_pending` tracks a queued Readable event only (see push_event).
            let readable = ev.kind == EventKind::Readable;
            let live = match self.sockets.get_mut(ev.handle) {
                Some(Socket::Udp(u)) => {
                    u.event_pending &= !readable;
                    true
                }
                Some(Socket::Raw(r)) => {
                    r.event_pending &= !readable;
                    true
                }
                Some(Socket::Tcp(t)) => {
                    match ev.kind {
                        EventKind::Readable => t.readable_pending = false,
                        EventKind::Writable => t.writable_pending = false,
                        EventKind::Error => {}
                    }
                    !t.orphan
                }
                None => false,
            };
            if live {
                return Some(ev);
            }
        }
        None
    }

    pub(crate) fn push_event(&mut self, handle: SocketHandle, kind: EventKind) {
        let pending = match self.sockets.get_mut(handle) {
            Some(Socket::Udp(u)) => &mut u.event_pending,
            Some(Socket::Raw(r)) => &mut r.event_pending,
            Some(Socket::Tcp(t)) => {
                let flag = match kind {
                    EventKind::Readable => &mut t.readable_pending,
                    EventKind::Writable => &mut t.writable_pending,
                    EventKind::Error => {
                        self.events.push_back(Event { handle, kind });
                        return;
                    }
                };
                if !*flag {
                    *flag = true;
                    self.events.push_back(Event { handle, kind });
                }
                return;
            }
            None => return,
        };
        // Readable is edge-triggered: at most one queued per socket. An Error event
        // must not mark Readable as queued, or a datagram arriving before the Error is
        // polled would never raise its Readable edge. Callers raise Error only when a
        // new error becomes pending, which bounds those events too.
        if kind == EventKind::Readable {
            if *pending {
                return;
            }
            *pending = true;
        }
        self.events.push_back(Event { handle, kind });
    }

    /// Next frame to send. Packets the stack addressed to itself are processed here.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.note_time(now);
        self.process_loopback(now);
        let t = self.tx.pop_front()?;
        self.stats.link_out_frames += 1;
        Some(t)
    }

    /// Earliest instant at which `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let watch = crate::trace::DropWatch::start(&self.stats);
        self.handle_timeout_inner(now);
        watch.finish(&self.stats, || "timer");
    }

    fn handle_timeout_inner(&mut self, now: Instant) {
        self.note_time(now);
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                Timer::Tcp(h) => self.tcp_timer(now, h),
                Timer::SynAck(h, tuple) => self.tcp_synack_timer(now, h, tuple),
                Timer::Neighbor(iface, ip) => self.neighbor_timer(now, iface, ip),
                Timer::Dad(iface, addr) => self.dad_timer(now, iface, addr),
                Timer::RouterSolicit(iface) => self.router_solicit_timer(now, iface),
                Timer::Lifetimes(iface) => self.lifetimes_timer(now, iface),
                Timer::Reassembly => {
                    self.reasm_timer = None;
                    while let Some(exp) = self.reasm.expire_next(now) {
                        self.reassembly_expired(now, exp);
                    }
                    self.arm_reassembly_timer();
                }
                Timer::Pmtu => self.pmtu_timer(now),
            }
        }
        self.process_loopback(now);
    }

    /// A frame arrived on `iface`. Malformed input is dropped and counted, never panics.
    pub fn receive(&mut self, now: Instant, iface: IfaceId, frame: &[u8]) {
        let watch = crate::trace::DropWatch::start(&self.stats);
        self.receive_inner(now, iface, frame);
        watch.finish(&self.stats, || crate::trace::Frame {
            iface,
            ethernet: self
                .ifaces
                .get(iface.0)
                .is_some_and(|i| matches!(i.config.medium, Medium::Ethernet(_))),
            bytes: frame,
        });
    }

    fn receive_inner(&mut self, now: Instant, iface: IfaceId, frame: &[u8]) {
        self.note_time(now);
        self.stats.link_in_frames += 1;
        let Some(ifc) = self.ifaces.get(iface.0) else {
            return;
        };
        match ifc.config.medium {
            Medium::Ip => self.ip_input_any(now, Some(iface), frame),
            Medium::Ethernet(mac) => {
                let Ok(f) = EthernetFrame::new_checked(frame) else {
                    self.stats.link_in_truncated += 1;
                    return;
                };
                let dst = f.dst_addr();
                // 33:33:… is IPv6 multicast (RFC 2464 §7): only the groups
                // this interface joined, as a NIC's multicast filter.
                let v6_multicast = dst.0[..2] == [0x33, 0x33];
                if v6_multicast && !self.joined_mac(iface, dst) {
                    self.stats.link_in_multicast_filtered += 1;
                    return;
                }
                if dst != mac && !dst.is_broadcast() && !v6_multicast {
                    self.stats.link_in_not_for_us += 1;
                    return;
                }
                match f.ethertype() {
                    EtherType::Ipv4 => self.ip_input(now, Some(iface), f.payload()),
                    EtherType::Ipv6 => self.ipv6_input(now, Some(iface), f.payload()),
                    EtherType::Arp => self.arp_input(now, iface, f.payload(), dst == mac),
                    _ => self.stats.link_in_unknown_ethertype += 1,
                }
            }
        }
        // The device's word is about this frame only.
        self.rx_l4_csum_ok = false;
        self.process_loopback(now);
    }

    /// Frames that arrived together (one batched device read): as `receive` for
    /// each, but a TCP connection answers once, after the whole batch — one ACK
    /// for many segments, as Linux ACKs one GRO super-packet. RFC 1122's "ACK
    /// every second segment" is about ACK clocking, which a batch read at one
    /// instant does not have anyway.
    pub fn receive_batch<'a>(
        &mut self,
        now: Instant,
        iface: IfaceId,
        frames: impl IntoIterator<Item = &'a [u8]>,
    ) {
        self.receive_batch_offload(now, iface, frames.into_iter().map(|f| (f, false)));
    }

    /// [`Stack::receive_batch`] for a device with receive checksum offload:
    /// each frame comes with whether the device itself computed (or, as
    /// hardware does, checked) the checksum of its TCP or UDP segment — a
    /// TUN's CHECKSUM_PARTIAL packets, which the device completes, and the
    /// segments it cuts from a GSO super-packet. Those are not summed a second
    /// time here (Linux: CHECKSUM_UNNECESSARY). Fragments are always checked
    /// after reassembly, whatever the flag.
    pub fn receive_batch_offload<'a>(
        &mut self,
        now: Instant,
        iface: IfaceId,
        frames: impl IntoIterator<Item = (&'a [u8], bool)>,
    ) {
        let outer = self.deferred.replace(Vec::new());
        for (f, csum_ok) in frames {
            self.rx_l4_csum_ok = csum_ok;
            self.receive(now, iface, f);
        }
        self.rx_l4_csum_ok = false;
        let pending = std::mem::replace(&mut self.deferred, outer).unwrap_or_default();
        for h in pending {
            self.tcp_flush(now, h);
        }
    }

    pub(crate) fn process_loopback(&mut self, now: Instant) {
        // Bounded: a looped packet can cause at most a reply, never a loop, because
        // replies to replies are not generated (ICMP rules, UDP has no auto-reply).
        let mut budget = 1024;
        while let Some(p) = self.loopback.pop_front() {
            self.ip_input_any(now, None, &p);
            budget -= 1;
            if budget == 0 {
                break;
            }
        }
    }
}

/// Which port space a bind goes to (TCP and UDP ports are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Udp,
}

impl Stack {
    /// The common part of bind(2) for TCP and UDP: refuse a second bind, check the
    /// address is ours (UDP may also bind a broadcast address), then take the port
    /// (0 = ephemeral) in that transport's table.
    pub(crate) fn bind_port(
        &mut self,
        transport: Transport,
        h: SocketHandle,
        addr: SocketAddr,
        already_bound: bool,
        reuse: bool,
        v6only: bool,
    ) -> io::Result<SocketAddr> {
        if already_bound {
            return Err(error(
                code::EINVAL,
                "socket is already bound; bind once per socket (open a new socket to rebind)",
            ));
        }
        let ip = addr.ip();
        let broadcast_ok =
            transport == Transport::Udp && matches!(ip, IpAddr::V4(a) if self.is_broadcast(a));
        if !ip.is_unspecified() && !self.is_local_addr(ip) && !broadcast_ok {
            return Err(error(
                code::EADDRNOTAVAIL,
                format!(
                    "{ip} is not an address of this host; bind 0.0.0.0, :: or an interface address"
                ),
            ));
        }
        let range = self.config.ephemeral_ports.clone();
        let table = match transport {
            Transport::Tcp => &mut self.tcp_ports,
            Transport::Udp => &mut self.udp_ports,
        };
        let port = table.bind(h, ip, v6only, addr.port(), reuse, &range, &mut self.rng)?;
        Ok(SocketAddr::new(ip, port))
    }
}
