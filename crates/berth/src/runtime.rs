//! The runtime: a berth-core stack behind a mutex, driven in the calling thread.
//!
//! Design (documented for the next engineer):
//! - **Run to completion in the caller.** A socket call locks its stack, runs the
//!   core, then *pumps*: frames the stack emitted are handed to the link's peer
//!   right away, in the same thread — the peer stack is locked (never two at once),
//!   receives, and whatever it answers is pumped back, until no frame is left. So a
//!   write reaches the peer's receive queue before `write` returns, with no thread
//!   hand-off; the reader is woken by its stack's condition variable. This gives
//!   kernel-like latency: one thread switch per direction.
//! - **One timer thread per stack** sleeps until the core's next deadline
//!   (`poll_timeout`) and runs `handle_timeout`; calls that arm an earlier timer
//!   wake it. Nothing polls at a fixed interval; an idle stack sleeps.
//! - **Wake exactly what became ready.** After each step the core's events
//!   (`poll_event`) wake the tokio wakers registered for those sockets; blocking
//!   calls wait on the stack's condition variable and re-check their own socket.
//! - **Devices** that deliver frames from outside (TUN/TAP) call [`Stack::input`]
//!   from their own reader thread; a memory link is just a pointer to the peer.
//! - **Device output is batched per drain.** Frames for a device go to its
//!   [`DeviceSink`]; once the transmit queue is empty every sink is flushed. A sink
//!   may write each frame at once (a plain closure does) or collect them and write
//!   the lot with fewer syscalls at the flush (the TUN offload path coalesces TCP
//!   segments into GSO super-packets). One drain is one flush so that nothing
//!   waits in a sink after the lock is released: no timers, no added latency.

use berth_core::wire::{IpCidr, Ipv4Cidr};
use berth_core::{
    AddrOrigin, AddrState, Config, IfaceConfig, IfaceId, Instant, Medium, SocketHandle,
};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Writes one frame to a device (TUN/TAP), called from the pumping thread.
/// Every such closure is a [`DeviceSink`] that writes at once.
pub type DeviceWriter = Box<dyn FnMut(&[u8]) + Send>;

/// Where the frames leaving a device interface go, called from the pumping thread
/// with the stack locked. `write` may buffer; `flush` is called after the last
/// frame of each drain and must not keep frames past it (nothing else would send
/// them). Closures `FnMut(&[u8])` are sinks without buffering.
pub trait DeviceSink: Send {
    /// One frame (an IP packet or Ethernet frame, by the interface's medium).
    fn write(&mut self, frame: &[u8]);
    /// Send whatever `write` buffered.
    fn flush(&mut self) {}
}

impl<F: FnMut(&[u8]) + Send> DeviceSink for F {
    fn write(&mut self, frame: &[u8]) {
        self(frame)
    }
}

/// Where frames leaving one interface go.
pub(crate) enum Port {
    /// An in-memory link: the peer stack and its interface.
    Memory { peer: Weak<Shared>, iface: IfaceId },
    /// A device that writes frames itself (TUN/TAP), from the pumping thread.
    Device(Box<dyn DeviceSink>),
}

#[derive(Default)]
pub(crate) struct Wakers {
    pub read: Vec<Waker>,
    pub write: Vec<Waker>,
}

pub(crate) struct State {
    pub core: berth_core::Stack,
    pub ports: Vec<Port>,
    /// Keyed by our own handles, never by anything a peer chooses: a fast
    /// unkeyed hash (looked up at every event of every drain).
    pub wakers: FxHashMap<SocketHandle, Wakers>,
    /// When the timer thread will next wake (None: waiting without deadline).
    timer_at: Option<Instant>,
    /// Tasks to wake at a time (async DNS lookups waiting for a retry),
    /// woken by the timer thread.
    alarms: Vec<(Instant, Waker)>,
    pub closed: bool,
    /// Threads asleep on `Shared::cv` in a blocking call. std's futex
    /// Condvar makes a syscall on every notify, waiter or not; async users
    /// (tokio, `berth run`'s relay) never block there, so a drain notifies
    /// only when someone does (1 syscall less per packet for them).
    blocked: usize,
}

impl State {
    /// The earliest of the core's deadline and the alarms.
    fn next_deadline(&self) -> Option<Instant> {
        let alarm = self.alarms.iter().map(|(t, _)| *t).min();
        match (self.core.poll_timeout(), alarm) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where frames leaving `iface` go (slots for interfaces without a port drop
    /// their frames).
    fn set_port(&mut self, iface: IfaceId, port: Port) {
        while self.ports.len() <= iface.0 {
            self.ports.push(Port::Device(Box::new(|_: &[u8]| {})));
        }
        self.ports[iface.0] = port;
    }
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Blocking socket calls wait here.
    pub cv: Condvar,
    timer_cv: Condvar,
    epoch: std::time::Instant,
    /// Hosts table and DNS servers (`dns.rs`).
    resolver: Mutex<crate::dns::ResolverConfig>,
}

impl Shared {
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the core consistent enough to go on
        // (every core call is a complete step), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Frames waiting to be delivered to other stacks by the pumping thread.
type Outbox = VecDeque<(Arc<Shared>, IfaceId, Vec<u8>)>;

/// Who to wake once the stack's lock is released. Waking with the lock held would
/// make the woken thread block on that lock at once: two sleeps instead of one.
#[derive(Default)]
struct Wake {
    /// Some socket's state changed (blocking callers re-check theirs).
    changed: bool,
    /// ... and a thread sleeps on the condition variable.
    notify: bool,
    /// Usually the one task that waits on the socket: kept inline.
    wakers: SmallVec<[Waker; 4]>,
}

impl Wake {
    fn run(self, shared: &Shared) {
        if self.notify {
            shared.cv.notify_all();
        }
        self.wakers.into_iter().for_each(Waker::wake);
    }
}

/// Drain `st`'s transmit queue into `out` (memory links) or devices; collect what
/// became ready; wake the timer thread if its deadline moved earlier.
#[must_use]
fn drain(shared: &Shared, st: &mut State, now: Instant, out: &mut Outbox) -> Wake {
    while let Some(t) = st.core.poll_transmit(now) {
        match st.ports.get_mut(t.iface.0) {
            Some(Port::Memory { peer, iface }) => {
                if let Some(p) = peer.upgrade() {
                    out.push_back((p, *iface, t.frame));
                }
            }
            Some(Port::Device(sink)) => sink.write(&t.frame),
            None => {}
        }
    }
    for p in &mut st.ports {
        if let Port::Device(sink) = p {
            sink.flush();
        }
    }
    let mut wake = Wake::default();
    while let Some(ev) = st.core.poll_event() {
        wake.changed = true;
        // Checked under the lock: a thread not yet counted has not checked
        // its condition yet, and will see this change when it does.
        wake.notify = st.blocked > 0;
        if let Some(w) = st.wakers.get_mut(&ev.handle) {
            match ev.kind {
                berth_core::EventKind::Writable => wake.wakers.extend(w.write.drain(..)),
                _ => {
                    wake.wakers.extend(w.read.drain(..));
                    wake.wakers.extend(w.write.drain(..));
                }
            }
        }
    }
    if let Some(t) = st.next_deadline() {
        if st.timer_at.is_none_or(|at| t < at) {
            st.timer_at = Some(t);
            shared.timer_cv.notify_one();
        }
    }
    wake
}

/// Deliver everything in `out`, and what the receivers answer, until quiet.
fn pump_out(mut out: Outbox) {
    while let Some((peer, iface, frame)) = out.pop_front() {
        let mut st = peer.lock();
        if st.closed {
            continue;
        }
        let now = peer.now();
        st.core.receive(now, iface, &frame);
        // Batch further frames for the same peer under one lock.
        while out.front().is_some_and(|(p, _, _)| Arc::ptr_eq(p, &peer)) {
            if let Some((_, i, f)) = out.pop_front() {
                st.core.receive(now, i, &f);
            }
        }
        let wake = drain(&peer, &mut st, now, &mut out);
        drop(st);
        wake.run(&peer);
    }
}

/// After a core call on `shared` (lock held as `st`) made at `now`: deliver its
/// output and wake. The call's own `now`, not a new clock read (one per call).
pub(crate) fn pump(shared: &Shared, mut st: MutexGuard<'_, State>, now: Instant) {
    let mut out = Outbox::new();
    let wake = drain(shared, &mut st, now, &mut out);
    drop(st);
    wake.run(shared);
    pump_out(out);
}

/// Owns the timer thread: when the last `Stack` clone goes, the stack shuts down.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        shut(&self.shared);
    }
}

fn shut(shared: &Shared) {
    let mut st = shared.lock();
    st.closed = true;
    st.alarms.drain(..).for_each(|(_, w)| w.wake());
    for w in st.wakers.values_mut() {
        w.read.drain(..).for_each(Waker::wake);
        w.write.drain(..).for_each(Waker::wake);
    }
    drop(st);
    shared.cv.notify_all();
    shared.timer_cv.notify_all();
}

/// A berth host: a TCP/IP stack with its interfaces, clock and timer thread.
/// Cheap to clone (all clones are the same host). Sockets keep it alive.
#[derive(Clone)]
pub struct Stack {
    owner: Arc<Owner>,
}

/// Builds a [`Stack`].
#[derive(Default)]
pub struct StackBuilder {
    config: Config,
    resolver: crate::dns::ResolverConfig,
}

impl StackBuilder {
    /// Core settings (TCP buffers, timers, ports, seed …).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// How names are resolved: hosts table, DNS servers, retries.
    pub fn resolver(mut self, resolver: crate::dns::ResolverConfig) -> Self {
        self.resolver = resolver;
        self
    }
    /// DNS servers at these addresses (port 53), keeping the rest of the
    /// resolver's settings.
    pub fn dns_servers(mut self, servers: &[IpAddr]) -> Self {
        self.resolver.servers = crate::dns::ResolverConfig::with_servers(servers).servers;
        self
    }
    /// The stack (see [`Stack::new`]).
    pub fn build(self) -> Stack {
        Stack::with_resolver(self.config, self.resolver)
    }
}

impl Stack {
    /// A [`StackBuilder`] with the default configuration.
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// A stack with no interfaces yet. Without `Config::seed` its random choices
    /// (ISNs, ephemeral ports, IP IDs) come from a seed the operating system
    /// draws (std's `RandomState`), different in every run.
    pub fn new(config: Config) -> Stack {
        Stack::with_resolver(config, crate::dns::ResolverConfig::default())
    }

    /// [`Stack::new`] resolving names by `resolver` (hosts table, DNS servers).
    pub fn with_resolver(mut config: Config, resolver: crate::dns::ResolverConfig) -> Stack {
        if config.seed.is_none() {
            config.seed = Some(os_seed());
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core: berth_core::Stack::new(config),
                ports: Vec::new(),
                wakers: FxHashMap::default(),
                timer_at: None,
                alarms: Vec::new(),
                closed: false,
                blocked: 0,
            }),
            cv: Condvar::new(),
            timer_cv: Condvar::new(),
            epoch: std::time::Instant::now(),
            resolver: Mutex::new(resolver),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("berth-timer".into())
            .spawn(move || timer_thread(weak))
            .map(drop)
            .unwrap_or_else(|e| {
                // Without a timer thread retransmissions would never fire; say so.
                eprintln!("berth: cannot start the timer thread: {e}");
            });
        Stack {
            owner: Arc::new(Owner { shared }),
        }
    }

    /// Two stacks joined by an in-memory link, both families on it: 192.0.2.1/24
    /// and 2001:db8::1/64 on one, 192.0.2.2/24 and 2001:db8::2/64 on the other
    /// (RFC 5737 and RFC 3849 documentation addresses), bare IP packets, MTU
    /// 65,535 like the kernel's loopback. The IPv6 addresses are usable at once
    /// (an IP link has no Duplicate Address Detection).
    pub fn pair() -> io::Result<(Stack, Stack)> {
        Stack::pair_with(Config::default(), Config::default(), 65_535)
    }

    /// [`Stack::pair`] with explicit configurations and MTU.
    pub fn pair_with(a: Config, b: Config, mtu: usize) -> io::Result<(Stack, Stack)> {
        let a = Stack::new(Config {
            seed: a.seed.map(|s| s ^ 1),
            ..a
        });
        let b = Stack::new(Config {
            seed: b.seed.map(|s| s ^ 2),
            ..b
        });
        let (ia, ib) = a.connect_memory(
            "192.0.2.1/24".parse().map_err(invalid)?,
            &b,
            "192.0.2.2/24".parse().map_err(invalid)?,
            mtu,
        )?;
        a.add_address(ia, "2001:db8::1/64".parse::<IpCidr>().map_err(invalid)?)?;
        b.add_address(ib, "2001:db8::2/64".parse::<IpCidr>().map_err(invalid)?)?;
        Ok((a, b))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// Join this stack and `peer` with an in-memory point-to-point link carrying bare
    /// IP packets of either family; `addr` here, `peer_addr` there. Returns the
    /// interface on each side (this stack's first), e.g. for
    /// [`Stack::add_address`]: each side also has an IPv6 link-local address.
    pub fn connect_memory(
        &self,
        addr: Ipv4Cidr,
        peer: &Stack,
        peer_addr: Ipv4Cidr,
        mtu: usize,
    ) -> io::Result<(IfaceId, IfaceId)> {
        if Arc::ptr_eq(self.shared(), peer.shared()) {
            return Err(invalid("a memory link needs two different stacks"));
        }
        let mine = self.add_interface(addr, mtu)?;
        let theirs = peer.add_interface(peer_addr, mtu)?;
        self.set_port(
            mine,
            Port::Memory {
                peer: Arc::downgrade(peer.shared()),
                iface: theirs,
            },
        );
        peer.set_port(
            theirs,
            Port::Memory {
                peer: Arc::downgrade(self.shared()),
                iface: mine,
            },
        );
        Ok((mine, theirs))
    }

    fn add_interface(&self, address: Ipv4Cidr, mtu: usize) -> io::Result<IfaceId> {
        let mut st = self.shared().lock();
        let id = st.core.add_interface(IfaceConfig {
            medium: Medium::Ip,
            address,
            mtu,
        })?;
        // Frames go nowhere until `set_port` joins the interface to something.
        st.set_port(id, Port::Device(Box::new(|_: &[u8]| {})));
        Ok(id)
    }

    pub(crate) fn set_port(&self, iface: IfaceId, port: Port) {
        self.shared().lock().set_port(iface, port);
    }

    /// Add an interface whose frames are written by `write` (a TUN/TAP device);
    /// frames read from the device go to [`Stack::input`].
    pub fn add_device(&self, config: IfaceConfig, write: DeviceWriter) -> io::Result<IfaceId> {
        self.add_device_sink(config, Box::new(write))
    }

    /// [`Stack::add_device`] with a sink that may batch: it is flushed after the
    /// last frame of every drain.
    pub fn add_device_sink(
        &self,
        config: IfaceConfig,
        sink: Box<dyn DeviceSink>,
    ) -> io::Result<IfaceId> {
        let mut st = self.shared().lock();
        let id = st.core.add_interface(config)?;
        st.set_port(id, Port::Device(sink));
        Ok(id)
    }

    /// A frame arrived from a device on `iface`.
    pub fn input(&self, iface: IfaceId, frame: &[u8]) {
        let shared = self.shared();
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let now = shared.now();
        st.core.receive(now, iface, frame);
        pump(shared, st, now);
    }

    /// Frames that arrived together from a device on `iface`: received under one
    /// lock, each TCP connection answering once for the batch (one ACK, as Linux
    /// ACKs a GRO super-packet), and everything sent in one pump (batched input).
    pub fn input_batch<'a>(&self, iface: IfaceId, frames: impl IntoIterator<Item = &'a [u8]>) {
        self.input_batch_offload(iface, frames.into_iter().map(|f| (f, false)));
    }

    /// [`Stack::input_batch`] from a device with receive checksum offload:
    /// each frame with whether the device computed its TCP/UDP checksum
    /// itself (berth_core's `receive_batch_offload`).
    pub fn input_batch_offload<'a>(
        &self,
        iface: IfaceId,
        frames: impl IntoIterator<Item = (&'a [u8], bool)>,
    ) {
        let shared = self.shared();
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let now = shared.now();
        // One answer per connection for the whole batch (berth_core's receive_batch).
        st.core.receive_batch_offload(now, iface, frames);
        pump(shared, st, now);
    }

    /// Route `dest` via `gateway` (either family; both of the same one).
    pub fn add_route(&self, dest: impl Into<IpCidr>, gateway: impl Into<IpAddr>) -> io::Result<()> {
        self.shared().lock().core.add_route(dest, gateway)
    }

    /// Route everything of `gateway`'s family via `gateway` (0.0.0.0/0 or ::/0).
    pub fn set_default_gateway(&self, gateway: impl Into<IpAddr>) -> io::Result<()> {
        self.shared().lock().core.set_default_gateway(gateway)
    }

    /// Add an IPv6 address to `iface` (as `ip -6 addr add`), with its on-link
    /// prefix route. On Ethernet (a TAP) it is tentative until Duplicate Address
    /// Detection passes, about a second (`Config::dad_transmits`); on an IP link
    /// (memory, TUN) usable at once. An interface's one IPv4 address is the one
    /// it was made with.
    pub fn add_address(&self, iface: IfaceId, cidr: impl Into<IpCidr>) -> io::Result<()> {
        let cidr = cidr.into();
        self.call(|core, now| core.add_address(now, iface, cidr))
    }

    /// Take router advertisements on `iface` and form addresses from their
    /// prefixes (SLAAC, RFC 4862), with a default route via the router, as
    /// Linux's accept_ra=1 and autoconf=1.
    pub fn set_autoconf(&self, iface: IfaceId) -> io::Result<()> {
        self.call(|core, now| core.set_autoconf(now, iface))
    }

    /// The addresses of `iface`, as `ip addr` lists them: the IPv4 one, then each
    /// IPv6 one with where it came from and its DAD state.
    pub fn addresses(&self, iface: IfaceId) -> Vec<(IpCidr, Option<(AddrOrigin, AddrState)>)> {
        self.shared().lock().core.addresses(iface)
    }

    /// Every socket as an `ss` row.
    pub fn sockets(&self) -> Vec<berth_core::SocketInfo> {
        self.shared().lock().core.sockets()
    }

    /// Stack-wide memory in use and the limits (tcp_mem, udp_mem, reassembly);
    /// see [`berth_core::Stack::memory`].
    pub fn memory(&self) -> berth_core::MemoryUsage {
        self.shared().lock().core.memory()
    }

    /// The core's counters.
    pub fn stats(&self) -> berth_core::Stats {
        self.shared().lock().core.stats().clone()
    }

    /// Run `f` on the sans-IO core (escape hatch for anything the API lacks); output
    /// is delivered afterwards.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut berth_core::Stack, Instant) -> R) -> R {
        let shared = self.shared();
        let mut st = shared.lock();
        let now = shared.now();
        let r = f(&mut st.core, now);
        pump(shared, st, now);
        r
    }

    /// How this stack resolves names (see [`crate::dns`]).
    pub fn resolver_config(&self) -> crate::dns::ResolverConfig {
        self.shared()
            .resolver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replace how this stack resolves names.
    pub fn set_resolver_config(&self, config: crate::dns::ResolverConfig) {
        *self
            .shared()
            .resolver
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Ask these DNS servers (port 53), in turn; the hosts table stays.
    pub fn set_dns_servers(&self, servers: &[IpAddr]) {
        let mut r = self
            .shared()
            .resolver
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        r.servers = crate::dns::ResolverConfig::with_servers(servers).servers;
    }

    /// The DNS servers asked.
    pub fn dns_servers(&self) -> Vec<std::net::SocketAddr> {
        self.resolver_config().servers
    }

    /// Resolve `name` to `addr` without asking DNS (after the addresses it
    /// already has), as a line of /etc/hosts.
    pub fn add_host(&self, name: &str, addr: IpAddr) {
        self.shared()
            .resolver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hosts
            .insert(name, addr);
    }

    /// Wake every blocked call to re-check its condition (with the lock
    /// taken, so a thread between its check and its wait cannot miss it).
    pub(crate) fn notify(&self) {
        let shared = self.shared();
        let _st = shared.lock();
        shared.cv.notify_all();
    }

    /// The wall-clock instant of the stack time `t`.
    pub(crate) fn std_instant(&self, t: Instant) -> std::time::Instant {
        self.shared().epoch + Duration::from_micros(t.total_micros())
    }

    /// One step of something run on the core from a task (a socket call, a
    /// DNS lookup): `Ready` ends it; `Wait` registers the task's waker for the
    /// sockets' readiness (read or write interest) and an alarm at `until`,
    /// before the lock is released, so the event that ends the wait cannot
    /// slip in between. Output is pumped either way: the attempt may have
    /// produced frames (ACKs, window updates) the peer needs before it can
    /// make us ready.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_machine<R, I: IntoIterator<Item = (SocketHandle, bool)>>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut berth_core::Stack, Instant) -> Step<io::Result<R>, I>,
    ) -> Poll<io::Result<R>> {
        let shared = self.shared();
        let mut st = shared.lock();
        if st.closed {
            return Poll::Ready(Err(stack_closed()));
        }
        let now = shared.now();
        let r = match f(&mut st.core, now) {
            Step::Ready(r) => Poll::Ready(r),
            Step::Wait { interest, until } => {
                for (h, write) in interest {
                    Stack::register_waker(&mut st, h, write, cx.waker());
                }
                if let Some(t) = until {
                    let w = cx.waker();
                    st.alarms.retain(|(_, x)| !x.will_wake(w));
                    st.alarms.push((t, w.clone()));
                }
                Poll::Pending
            }
        };
        pump(shared, st, now);
        r
    }

    /// Stop the stack: every socket call fails from now on, blocked calls return.
    pub fn shutdown(&self) {
        shut(self.shared());
    }

    /// [`Stack::shutdown`] was called (or the last handle dropped).
    pub fn is_shut_down(&self) -> bool {
        self.shared().lock().closed
    }

    /// The stack's current time.
    pub fn now(&self) -> Instant {
        self.shared().now()
    }

    /// Run a socket call: lock, check the stack is up, call, pump output.
    pub(crate) fn call<R>(
        &self,
        f: impl FnOnce(&mut berth_core::Stack, Instant) -> io::Result<R>,
    ) -> io::Result<R> {
        let shared = self.shared();
        let mut st = shared.lock();
        if st.closed {
            return Err(stack_closed());
        }
        let now = shared.now();
        let r = f(&mut st.core, now);
        pump(shared, st, now);
        r
    }

    /// Run `f` until it stops returning `WouldBlock`, sleeping on the stack's
    /// condition variable in between; `deadline` bounds the wait (then the
    /// `WouldBlock` error is returned, as a timed-out socket call does on Linux).
    pub(crate) fn blocking<R>(
        &self,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&mut berth_core::Stack, Instant) -> io::Result<R>,
    ) -> io::Result<R> {
        let shared = self.shared();
        let mut st = shared.lock();
        loop {
            if st.closed {
                return Err(stack_closed());
            }
            let now = shared.now();
            match f(&mut st.core, now) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Deliver whatever the attempt produced before sleeping.
                    let mut out = Outbox::new();
                    let wake = drain(shared, &mut st, now, &mut out);
                    if !out.is_empty() || wake.changed || !wake.wakers.is_empty() {
                        drop(st);
                        wake.run(shared);
                        pump_out(out);
                        st = shared.lock();
                        continue;
                    }
                    let left =
                        deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
                    if left.is_some_and(|l| l.is_zero()) {
                        return Err(e);
                    }
                    st.blocked += 1;
                    st = match left {
                        None => shared.cv.wait(st).unwrap_or_else(|p| p.into_inner()),
                        Some(left) => {
                            shared
                                .cv
                                .wait_timeout(st, left)
                                .unwrap_or_else(|p| p.into_inner())
                                .0
                        }
                    };
                    st.blocked -= 1;
                }
                r => {
                    pump(shared, st, now);
                    return r;
                }
            }
        }
    }

    /// Try `f` once; on `WouldBlock` register the task's waker for `h` (read or
    /// write interest) before the lock is released, so the readiness event that
    /// ends the wait cannot slip in between the try and the registration.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_call<R>(
        &self,
        cx: &mut Context<'_>,
        h: SocketHandle,
        write: bool,
        f: impl FnOnce(&mut berth_core::Stack, Instant) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        // An array, not a Vec: no allocation on every call that has to wait.
        self.poll_machine(cx, |core, now| match f(core, now) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Wait {
                interest: [(h, write)],
                until: None,
            },
            r => Step::Ready(r),
        })
    }

    /// Register a tokio waker for `h` (read or write interest).
    pub(crate) fn register_waker(st: &mut State, h: SocketHandle, write: bool, w: &Waker) {
        let e = st.wakers.entry(h).or_default();
        let list = if write { &mut e.write } else { &mut e.read };
        if !list.iter().any(|x| x.will_wake(w)) {
            list.push(w.clone());
        }
    }

    /// Forget wakers of a closed socket.
    pub(crate) fn forget(&self, h: SocketHandle) {
        self.shared().lock().wakers.remove(&h);
    }
}

/// What one step of a protocol machine asks of [`Stack::poll_machine`].
pub(crate) enum Step<R, I = Vec<(SocketHandle, bool)>> {
    /// Finished.
    Ready(R),
    /// Not yet: wake the task when one of the sockets is ready (for reading,
    /// or writing if the flag is set) or at `until`.
    Wait { interest: I, until: Option<Instant> },
}

fn timer_thread(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let now = shared.now();
        match st.next_deadline() {
            Some(t) if t <= now => {
                if st.core.poll_timeout().is_some_and(|c| c <= now) {
                    st.core.handle_timeout(now);
                }
                let mut due = Vec::new();
                st.alarms.retain(|(t, w)| {
                    let fire = *t <= now;
                    if fire {
                        due.push(w.clone());
                    }
                    !fire
                });
                st.timer_at = None;
                pump(&shared, st, now);
                due.into_iter().for_each(Waker::wake);
            }
            next => {
                st.timer_at = next;
                let wait = next.map(|t| t - now).unwrap_or(Duration::from_secs(3600));
                // Hold only a weak reference while asleep, so dropping the stack
                // ends the thread (the Owner's drop also wakes it).
                let _ = shared.timer_cv.wait_timeout(st, wait).map(|(g, _)| drop(g));
            }
        }
    }
}

pub(crate) fn stack_closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the berth stack is shut down; create a new Stack",
    )
}

pub(crate) fn invalid(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// 64 random bits from the operating system: std seeds every `RandomState`
/// from the OS random source (getrandom), so its hasher keys are a seed no
/// earlier run can predict.
pub fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}
