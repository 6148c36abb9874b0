//! Name resolution through berth: a DNS stub resolver (RFC 1035, RFC 7766)
//! whose queries go out of the berth stack itself, never the host's resolver.
//!
//! Every call that takes an address ([`TcpStream::connect`](crate::TcpStream::connect),
//! `bind`, `send_to`, the tokio ones) takes a [`ToSocketAddrs`]: socket
//! addresses and `(ip, port)` pairs as they are, `"host:port"` strings and
//! `("host", port)` pairs resolved by the stack's [`ResolverConfig`]: first the
//! hosts table (`localhost` → 127.0.0.1 and ::1, plus entries added with
//! [`Stack::add_host`]), then the DNS servers ([`Stack::set_dns_servers`], or
//! those a [`crate::dhcp`] lease names). Connects try each address in turn.
//!
//! ```
//! use berth::{Stack, TcpListener, TcpStream};
//! # fn main() -> std::io::Result<()> {
//! let (a, b) = Stack::pair()?;
//! a.add_host("server.test", "192.0.2.2".parse().unwrap());
//! let listener = TcpListener::bind(&b, "0.0.0.0:7")?;
//! let client = TcpStream::connect(&a, "server.test:7")?;
//! assert_eq!(client.peer_addr()?, "192.0.2.2:7".parse().unwrap());
//! let addrs: Vec<_> = berth::net::lookup_host(&a, "localhost:80")?.collect();
//! assert_eq!(addrs[0], "127.0.0.1:80".parse().unwrap());
//! # Ok(()) }
//! ```
//!
//! The lookup itself is [`Lookup`], a sans-IO state machine on a core stack:
//! the blocking API waits on the stack, the tokio API registers wakers and a
//! timer (it never blocks the runtime), and the simulator drives it in
//! virtual time.

mod lookup;

pub use lookup::{Families, Lookup};

use crate::runtime::{invalid, Stack};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

/// The DNS port (RFC 1035 §4.2).
pub const DNS_PORT: u16 = 53;

/// Static names: looked up before any DNS server is asked, as /etc/hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    names: HashMap<String, Vec<IpAddr>>,
}

impl Default for Hosts {
    /// `localhost` (and `localhost.`): 127.0.0.1 then ::1 (RFC 6761 §6.3).
    fn default() -> Hosts {
        let mut h = Hosts {
            names: HashMap::new(),
        };
        h.insert("localhost", Ipv4Addr::LOCALHOST.into());
        h.insert("localhost", Ipv6Addr::LOCALHOST.into());
        h
    }
}

impl Hosts {
    /// A table without even `localhost`.
    pub fn empty() -> Hosts {
        Hosts {
            names: HashMap::new(),
        }
    }

    fn key(name: &str) -> String {
        name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
    }

    /// Add `addr` to `name`'s addresses (after those it has).
    pub fn insert(&mut self, name: &str, addr: IpAddr) {
        let v = self.names.entry(Hosts::key(name)).or_default();
        if !v.contains(&addr) {
            v.push(addr);
        }
    }

    /// Forget `name`; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.names.remove(&Hosts::key(name)).is_some()
    }

    /// `name`'s addresses (ASCII case and a final dot do not matter).
    pub fn get(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(&Hosts::key(name)).map(Vec::as_slice)
    }
}

/// How a stack resolves names: its hosts table and DNS servers, and how
/// patiently it asks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// DNS servers, asked in turn (port 53 unless another is given).
    pub servers: Vec<SocketAddr>,
    /// Names answered without asking.
    pub hosts: Hosts,
    /// Transmissions of each query before giving up (resolv.conf `attempts`
    /// is per server; here it counts all, rotating the servers). Default 3.
    pub attempts: u32,
    /// Wait for the first answer; it doubles with each attempt (1 s, 2 s,
    /// 4 s by default, RFC 1536 §1's exponential backoff).
    pub timeout: Duration,
}

impl Default for ResolverConfig {
    fn default() -> ResolverConfig {
        ResolverConfig {
            servers: Vec::new(),
            hosts: Hosts::default(),
            attempts: 3,
            timeout: Duration::from_secs(1),
        }
    }
}

impl ResolverConfig {
    /// Servers at `ips`, port 53.
    pub fn with_servers(ips: &[IpAddr]) -> ResolverConfig {
        ResolverConfig {
            servers: ips
                .iter()
                .map(|&ip| SocketAddr::new(ip, DNS_PORT))
                .collect(),
            ..ResolverConfig::default()
        }
    }
}

/// What an address argument names: addresses ready to use, or a host name
/// (and port) to resolve through the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Socket addresses, in order.
    Addrs(Vec<SocketAddr>),
    /// A name to resolve, and the port to put on its addresses.
    Name(String, u16),
}

/// std's `ToSocketAddrs` for berth: the same argument types (`SocketAddr`,
/// `(IpAddr, u16)`, `"host:port"`, `("host", port)`, `&[SocketAddr]`,
/// `String` …), but a host name is resolved by the stack's own resolver
/// (hosts table, then DNS through berth), never the host's.
pub trait ToSocketAddrs {
    /// The addresses, or the name to resolve. Parsing only: no I/O.
    fn to_target(&self) -> io::Result<Target>;
}

fn addrs(a: impl IntoIterator<Item = SocketAddr>) -> io::Result<Target> {
    Ok(Target::Addrs(a.into_iter().collect()))
}

impl ToSocketAddrs for SocketAddr {
    fn to_target(&self) -> io::Result<Target> {
        addrs([*self])
    }
}
impl ToSocketAddrs for SocketAddrV4 {
    fn to_target(&self) -> io::Result<Target> {
        addrs([SocketAddr::V4(*self)])
    }
}
impl ToSocketAddrs for SocketAddrV6 {
    fn to_target(&self) -> io::Result<Target> {
        addrs([SocketAddr::V6(*self)])
    }
}
impl ToSocketAddrs for (IpAddr, u16) {
    fn to_target(&self) -> io::Result<Target> {
        addrs([SocketAddr::from(*self)])
    }
}
impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn to_target(&self) -> io::Result<Target> {
        addrs([SocketAddr::from(*self)])
    }
}
impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn to_target(&self) -> io::Result<Target> {
        addrs([SocketAddr::from(*self)])
    }
}
impl ToSocketAddrs for (&str, u16) {
    fn to_target(&self) -> io::Result<Target> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => addrs([SocketAddr::new(ip, port)]),
            Err(_) => Ok(Target::Name(host.to_string(), port)),
        }
    }
}
impl ToSocketAddrs for (String, u16) {
    fn to_target(&self) -> io::Result<Target> {
        (self.0.as_str(), self.1).to_target()
    }
}
impl ToSocketAddrs for str {
    /// `"ip:port"`, `"[ipv6]:port"` or `"host:port"`.
    fn to_target(&self) -> io::Result<Target> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return addrs([a]);
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("{self:?}: give host:port, e.g. example.org:80")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(format!("{self:?}: {port:?} is not a port number")))?;
        (host, port).to_target()
    }
}
impl ToSocketAddrs for String {
    fn to_target(&self) -> io::Result<Target> {
        self.as_str().to_target()
    }
}
impl ToSocketAddrs for [SocketAddr] {
    fn to_target(&self) -> io::Result<Target> {
        addrs(self.iter().copied())
    }
}
impl ToSocketAddrs for Vec<SocketAddr> {
    fn to_target(&self) -> io::Result<Target> {
        addrs(self.iter().copied())
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_target(&self) -> io::Result<Target> {
        (**self).to_target()
    }
}

fn with_port(ips: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect()
}

/// A lookup of `name` on `stack`: the hosts table's answer, or a [`Lookup`]
/// to run.
pub(crate) enum Start {
    Known(Vec<IpAddr>),
    Ask(Box<Lookup>),
}

pub(crate) fn start(stack: &Stack, name: &str) -> Start {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Start::Known(vec![ip]);
    }
    let config = stack.resolver_config();
    if let Some(ips) = config.hosts.get(name) {
        return Start::Known(ips.to_vec());
    }
    let families = stack.with_core(|core, _| Families::of(core));
    Start::Ask(Box::new(Lookup::new(
        &config,
        name,
        families,
        crate::runtime::os_seed(),
    )))
}

/// Run `lookup` on `stack` to the end, blocking the calling thread.
fn run_blocking(stack: &Stack, lookup: &mut Lookup) -> io::Result<Vec<IpAddr>> {
    // The first poll sends the queries and sets the first deadline; before
    // it there is none, and a wait without one would outlast a silent server.
    if let std::task::Poll::Ready(r) = stack.call(|core, now| Ok(lookup.poll(core, now)))? {
        return r;
    }
    loop {
        let deadline = lookup.poll_timeout().map(|t| stack.std_instant(t));
        let r = stack.blocking(deadline, |core, now| match lookup.poll(core, now) {
            std::task::Poll::Ready(r) => Ok(r),
            std::task::Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        });
        match r {
            Ok(r) => return r,
            // The deadline passed: poll again (timeouts and retries).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                let _ = stack.call(|core, now| {
                    lookup.close(core, now);
                    Ok(())
                });
                return Err(e);
            }
        }
    }
}

/// The addresses of `name` (an address literal as it is, else the hosts
/// table, then DNS), blocking.
pub fn lookup_ip(stack: &Stack, name: &str) -> io::Result<Vec<IpAddr>> {
    match start(stack, name) {
        Start::Known(ips) => Ok(ips),
        Start::Ask(mut l) => run_blocking(stack, &mut l),
    }
}

/// Resolve `addr` on `stack`, blocking: what std's `to_socket_addrs` does,
/// through berth.
pub fn resolve(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    match addr.to_target()? {
        Target::Addrs(a) => Ok(a),
        Target::Name(name, port) => Ok(with_port(&lookup_ip(stack, &name)?, port)),
    }
}

/// The async forms (the tokio API uses them): the lookup waits on the
/// stack's wakers and timer, never blocking the runtime's thread.
#[cfg(feature = "tokio")]
pub(crate) mod nonblocking {
    use super::*;
    use crate::runtime::Step;
    use std::future::poll_fn;

    /// Closes the lookup's sockets if the future is dropped early.
    struct Running<'a> {
        stack: &'a Stack,
        lookup: Box<Lookup>,
    }

    impl Drop for Running<'_> {
        fn drop(&mut self) {
            let lookup = &mut self.lookup;
            let _ = self.stack.call(|core, now| {
                lookup.close(core, now);
                Ok(())
            });
        }
    }

    /// [`super::lookup_ip`], async.
    pub async fn lookup_ip(stack: &Stack, name: &str) -> io::Result<Vec<IpAddr>> {
        let lookup = match start(stack, name) {
            Start::Known(ips) => return Ok(ips),
            Start::Ask(l) => l,
        };
        let mut run = Running { stack, lookup };
        poll_fn(|cx| {
            let lookup = &mut run.lookup;
            stack.poll_machine(cx, |core, now| match lookup.poll(core, now) {
                std::task::Poll::Ready(r) => Step::Ready(r),
                std::task::Poll::Pending => Step::Wait {
                    // Read for answers, write for a TCP connect completing.
                    interest: lookup
                        .handles()
                        .into_iter()
                        .flat_map(|h| [(h, false), (h, true)])
                        .collect::<Vec<_>>(),
                    until: lookup.poll_timeout(),
                },
            })
        })
        .await
    }

    /// [`super::resolve`], async.
    pub async fn resolve(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
        match addr.to_target()? {
            Target::Addrs(a) => Ok(a),
            Target::Name(name, port) => Ok(with_port(&lookup_ip(stack, &name).await?, port)),
        }
    }
}
