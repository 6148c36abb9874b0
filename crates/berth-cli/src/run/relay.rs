//! The relay of `berth run`: every flow the namespace opens, taken by the
//! stack's forwarder, is carried on a host socket to the same destination
//! (or to the host's loopback for the gateway, the host's resolver for the
//! DNS address, or through a SOCKS5 proxy).
//!
//! - **TCP**: the host connection is made first; only when it succeeds is the
//!   namespace's SYN answered, so a refused or unreachable destination looks
//!   the same from inside as it does from the host (RST, or ICMP
//!   unreachable). Bytes then move in two tasks, one per direction, each with
//!   a 256 KiB buffer: one read per buffer, and a side that stops reading
//!   stops the copy, so its peer's TCP window closes (back-pressure, no
//!   unbounded buffering). A FIN is passed on as a FIN; an error on one side
//!   resets the other.
//! - **UDP**: one host socket per flow, connected to the destination; the
//!   flow ends after `udp_idle` without a datagram either way (DNS flows after
//!   `dns_idle`).
//! - Limits: `max_tcp` relayed connections and the forwarder's requests in
//!   flight and UDP flows bound the host descriptors a namespace can take; what
//!   is refused for a limit is counted in [`RelayStats`].

use super::handoff::Handoff;
use super::nsock::NsSockets;
use super::splice;
use berth::forward::{Forwarder, Refusal, TcpRequest, UdpFlow};
use berth::Stack;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Where the relay sends what.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// berth's addresses in the namespace: flows to them go to the host's
    /// loopback (unless `host_loopback` is off: refused).
    pub gateway4: Ipv4Addr,
    pub gateway6: Option<Ipv6Addr>,
    /// The DNS addresses: port 53 there goes to `nameserver`.
    pub dns4: Ipv4Addr,
    pub dns6: Option<Ipv6Addr>,
    pub host_loopback: bool,
    /// The host's resolver (from /etc/resolv.conf); `None`: DNS refused.
    pub nameserver: Option<SocketAddr>,
    /// Relay TCP through this SOCKS5 proxy (address, credentials).
    pub socks5: Option<(SocketAddr, Option<(String, String)>)>,
    /// Most relayed TCP connections at once.
    pub max_tcp: usize,
    /// How long a host connection may take before the namespace's SYN is
    /// answered with ICMP host unreachable.
    pub connect_timeout: Duration,
    /// The forwarder's requests in flight (`--max-pending`). When over half
    /// of them wait for host connections, those waiting over a second are
    /// given up (as Linux gives a SYN queue more than half full fewer SYN-ACK
    /// retries): a flood of SYNs to hosts that never answer then cannot hold
    /// every request for `connect_timeout`, and new connections get through.
    pub max_pending: usize,
    pub udp_idle: Duration,
    pub dns_idle: Duration,
}

/// What the relay did, for `berth ss` and the exit summary.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub tcp_relayed: AtomicU64,
    pub tcp_refused: AtomicU64,
    pub tcp_limit: AtomicU64,
    pub udp_flows: AtomicU64,
    pub udp_idle_closed: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_in: AtomicU64,
    /// `-p` connections carried through the stack, and spliced between
    /// kernel sockets (clients on the host's loopback).
    pub tcp_forwarded: AtomicU64,
    pub tcp_spliced: AtomicU64,
    /// Loopback clients sent through the stack because the namespace socket
    /// helper could not give a socket.
    pub splice_fallbacks: AtomicU64,
}

/// One relayed flow, as `berth ss --relays` shows it.
#[derive(Debug, Clone)]
pub struct FlowRow {
    /// "tcp" and "udp" for flows the namespace opened; "tcp-fwd" (through
    /// the stack) and "tcp-splice" (between kernel sockets) for `-p`
    /// connections into it.
    pub proto: &'static str,
    /// The namespace's end: the client inside, or for `-p` the socket that
    /// connects into the namespace.
    pub inside: SocketAddr,
    /// Where it was going (for `-p`, the server inside).
    pub destination: SocketAddr,
    /// The host socket's two ends.
    pub host_local: Option<SocketAddr>,
    pub host_remote: SocketAddr,
}

impl FlowRow {
    /// The row as the control protocol's `relays` answer carries it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "proto": self.proto,
            "inside": self.inside.to_string(),
            "destination": self.destination.to_string(),
            "host_local": self.host_local.map(|a| a.to_string()),
            "host_remote": self.host_remote.to_string(),
        })
    }
}

pub struct Relay {
    cfg: RelayConfig,
    pub stats: RelayStats,
    tcp_live: AtomicUsize,
    /// Host connections being made now.
    connecting: AtomicUsize,
    flows: Mutex<HashMap<u64, FlowRow>>,
    next_id: AtomicU64,
}

/// Removes its flow from the table when the relay of that flow ends.
struct FlowGuard<'a> {
    relay: &'a Relay,
    id: u64,
}

impl Drop for FlowGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.relay.flows.lock() {
            f.remove(&self.id);
        }
    }
}

impl Relay {
    pub fn new(cfg: RelayConfig) -> Arc<Relay> {
        Arc::new(Relay {
            cfg,
            stats: RelayStats::default(),
            tcp_live: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            flows: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// The relayed flows now, oldest first.
    pub fn flows(&self) -> Vec<FlowRow> {
        let f = match self.flows.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        let mut rows: Vec<(u64, FlowRow)> = f.iter().map(|(k, v)| (*k, v.clone())).collect();
        rows.sort_by_key(|r| r.0);
        rows.into_iter().map(|r| r.1).collect()
    }

    fn track(&self, row: FlowRow) -> FlowGuard<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.flows.lock() {
            f.insert(id, row);
        }
        FlowGuard { relay: self, id }
    }

    /// The host address a flow to `dst` goes to, or `None` to refuse it.
    pub fn target(&self, dst: SocketAddr) -> Option<SocketAddr> {
        let c = &self.cfg;
        let ip = dst.ip();
        if self.is_dns(dst) {
            return if dst.port() == 53 { c.nameserver } else { None };
        }
        if ip == IpAddr::V4(c.gateway4) {
            return c
                .host_loopback
                .then(|| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dst.port()));
        }
        if c.gateway6.is_some_and(|g| ip == IpAddr::V6(g)) {
            return c
                .host_loopback
                .then(|| SocketAddr::new(Ipv6Addr::LOCALHOST.into(), dst.port()));
        }
        Some(dst)
    }

    fn is_dns(&self, dst: SocketAddr) -> bool {
        let ip = dst.ip();
        ip == IpAddr::V4(self.cfg.dns4) || self.cfg.dns6.is_some_and(|d| ip == IpAddr::V6(d))
    }

    /// Serve the forwarder's flows until it fails (the stack shut down).
    pub async fn run(self: Arc<Self>, fwd: Arc<Forwarder>) {
        let tcp = {
            let (me, fwd) = (Arc::clone(&self), Arc::clone(&fwd));
            tokio::spawn(async move {
                while let Ok(req) = fwd.accept_tcp_async().await {
                    tokio::spawn(Arc::clone(&me).tcp(req));
                }
            })
        };
        let udp = {
            let me = Arc::clone(&self);
            tokio::spawn(async move {
                while let Ok(flow) = fwd.accept_udp_async().await {
                    tokio::spawn(Arc::clone(&me).udp(flow));
                }
            })
        };
        let _ = tokio::join!(tcp, udp);
    }

    async fn tcp(self: Arc<Self>, req: TcpRequest) {
        let dst = req.original_destination();
        let Some(target) = self.target(dst) else {
            self.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
            let _ = req.refuse(Refusal::Reset);
            return;
        };
        if self.tcp_live.fetch_add(1, Ordering::AcqRel) >= self.cfg.max_tcp {
            self.tcp_live.fetch_sub(1, Ordering::AcqRel);
            self.stats.tcp_limit.fetch_add(1, Ordering::Relaxed);
            let _ = req.refuse(Refusal::Reset);
            return;
        }
        self.tcp_connected(req, dst, target).await;
        self.tcp_live.fetch_sub(1, Ordering::AcqRel);
    }

    async fn tcp_connected(&self, req: TcpRequest, dst: SocketAddr, target: SocketAddr) {
        let connect = async {
            match &self.cfg.socks5 {
                Some((proxy, auth)) => super::socks5::connect(*proxy, auth.clone(), target).await,
                None => tokio::net::TcpStream::connect(target).await,
            }
        };
        let up = self.connect_bounded(connect).await;
        let up = match up {
            Ok(s) => s,
            Err(e) => {
                self.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
                let _ = req.refuse(refusal_for(&e));
                return;
            }
        };
        let inside_peer = req.peer_addr();
        let Ok(inside) = req.accept_async().await else {
            return;
        };
        self.stats.tcp_relayed.fetch_add(1, Ordering::Relaxed);
        let _guard = self.track(FlowRow {
            proto: "tcp",
            inside: inside_peer,
            destination: dst,
            host_local: up.local_addr().ok(),
            host_remote: target,
        });
        if let Ok((out, back)) = pipe(inside, up).await {
            self.stats.bytes_out.fetch_add(out, Ordering::Relaxed);
            self.stats.bytes_in.fetch_add(back, Ordering::Relaxed);
        }
    }

    /// `connect` within `connect_timeout`, or within a second when the
    /// forwarder's requests are under pressure (see `RelayConfig::max_pending`).
    async fn connect_bounded(
        &self,
        connect: impl std::future::Future<Output = io::Result<tokio::net::TcpStream>>,
    ) -> io::Result<tokio::net::TcpStream> {
        const SLICE: Duration = Duration::from_secs(1);
        let start = tokio::time::Instant::now();
        self.connecting.fetch_add(1, Ordering::AcqRel);
        let mut connect = std::pin::pin!(connect);
        let r = loop {
            match tokio::time::timeout(SLICE, &mut connect).await {
                Ok(r) => break r,
                Err(_) => {
                    let pressure =
                        self.connecting.load(Ordering::Acquire) * 2 > self.cfg.max_pending;
                    if pressure || start.elapsed() >= self.cfg.connect_timeout {
                        break Err(io::ErrorKind::TimedOut.into());
                    }
                }
            }
        };
        self.connecting.fetch_sub(1, Ordering::AcqRel);
        r
    }

    async fn udp(self: Arc<Self>, flow: UdpFlow) {
        let dst = flow.original_destination();
        let inside_peer = flow.peer_addr();
        let Some(target) = self.target(dst) else {
            return;
        };
        let any: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let host = match tokio::net::UdpSocket::bind(any).await {
            Ok(h) => h,
            Err(_) => return,
        };
        if host.connect(target).await.is_err() {
            return;
        }
        self.stats.udp_flows.fetch_add(1, Ordering::Relaxed);
        let _guard = self.track(FlowRow {
            proto: "udp",
            inside: inside_peer,
            destination: dst,
            host_local: host.local_addr().ok(),
            host_remote: target,
        });
        let idle = if self.is_dns(dst) {
            self.cfg.dns_idle
        } else {
            self.cfg.udp_idle
        };
        let inside = berth::tokio::UdpSocket::from_std(flow.into_socket());
        let mut a = vec![0u8; 65_536];
        let mut b = vec![0u8; 65_536];
        loop {
            tokio::select! {
                r = inside.recv(&mut a) => match r {
                    Ok(n) => {
                        self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = host.send(&a[..n]).await;
                    }
                    Err(_) => break,
                },
                r = host.recv(&mut b) => match r {
                    Ok(n) => {
                        self.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = inside.send(&b[..n]).await;
                    }
                    // ICMP port unreachable from the destination: a connected
                    // UDP socket reports it once; the flow goes on.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(_) => break,
                },
                _ = tokio::time::sleep(idle) => {
                    self.stats.udp_idle_closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }

    /// Flows to the stack's own addresses on ports given with `-p` are not
    /// relayed: port forwards connect *into* the namespace. This carries one
    /// host connection to `guest` inside: spliced to a kernel socket of the
    /// namespace when the client is on the host's loopback and `direct` is
    /// given, else through `stack` (the namespace then sees it come from the
    /// gateway).
    pub async fn port_forward_tcp(
        self: Arc<Self>,
        stack: Stack,
        host: tokio::net::TcpStream,
        guest: SocketAddr,
        direct: Option<Direct>,
    ) {
        let client = match host.peer_addr() {
            Ok(a) => a,
            Err(_) => return,
        };
        if let Some(d) = direct.filter(|_| from_loopback(client.ip())) {
            match d.ns.take(guest.is_ipv6()) {
                Ok(fd) => {
                    return self
                        .splice_forward(host, fd, client, guest, d.handoff)
                        .await
                }
                Err(_) => {
                    self.stats.splice_fallbacks.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let inside = match berth::tokio::TcpStream::connect(&stack, guest).await {
            Ok(s) => s,
            Err(_) => {
                // As the closed port inside would answer.
                reset_on_drop(&host);
                return;
            }
        };
        self.stats.tcp_forwarded.fetch_add(1, Ordering::Relaxed);
        let _guard = self.track(FlowRow {
            proto: "tcp-fwd",
            inside: inside.local_addr().unwrap_or(guest),
            destination: guest,
            host_local: host.local_addr().ok(),
            host_remote: client,
        });
        if let Ok((out, back)) = pipe(inside, host).await {
            self.stats.bytes_out.fetch_add(out, Ordering::Relaxed);
            self.stats.bytes_in.fetch_add(back, Ordering::Relaxed);
        }
    }

    /// A port forward from the host's loopback: connect a kernel socket made
    /// in the namespace to `guest` (over the namespace's loopback, so it comes
    /// from the namespace's own address) and splice the two connections.
    async fn splice_forward(
        &self,
        host: tokio::net::TcpStream,
        fd: std::os::fd::OwnedFd,
        client: SocketAddr,
        guest: SocketAddr,
        handoff: Option<Arc<Handoff>>,
    ) {
        let s = std::net::TcpStream::from(fd);
        if s.set_nonblocking(true).is_err() {
            reset_on_drop(&host);
            return;
        }
        let sock = tokio::net::TcpSocket::from_std_stream(s);
        // The server's accept may take the host connection itself; berth's
        // own connection inside then only carried it to the accept queue. It
        // is bound first, so that the reservation is there before the
        // connection can be accepted. (None, None): reserve lost the stream.
        let bound = handoff.as_ref().and_then(|h| {
            sock.bind(SocketAddr::new(guest.ip(), 0))
                .and_then(|()| sock.local_addr())
                .ok()
                .map(|l| (h, l))
        });
        let (host, ticket) = match bound {
            Some((h, local)) => match h.reserve(local, guest.port(), host, client) {
                Ok(t) => (None, Some(t)),
                Err(back) => (back, None),
            },
            None => (Some(host), None),
        };
        let inside = match tokio::time::timeout(self.cfg.connect_timeout, sock.connect(guest)).await
        {
            Ok(Ok(s)) => s,
            _ => {
                if let Some(host) = ticket.and_then(|t| t.cancel()).or(host) {
                    reset_on_drop(&host);
                }
                return;
            }
        };
        let host = match (ticket, host) {
            (Some(t), _) => match t.wait().await {
                Ok(()) => return,
                Err(host) => host,
            },
            (None, Some(host)) => host,
            (None, None) => return,
        };
        self.stats.tcp_spliced.fetch_add(1, Ordering::Relaxed);
        let _ = inside.set_nodelay(true);
        let _ = host.set_nodelay(true);
        let _guard = self.track(FlowRow {
            proto: "tcp-splice",
            inside: inside.local_addr().unwrap_or(guest),
            destination: guest,
            host_local: host.local_addr().ok(),
            host_remote: client,
        });
        match splice::both_ways(&host, &inside).await {
            Ok((into, out)) => {
                self.stats.bytes_in.fetch_add(into, Ordering::Relaxed);
                self.stats.bytes_out.fetch_add(out, Ordering::Relaxed);
            }
            Err(_) => {
                reset_on_drop(&host);
                reset_on_drop(&inside);
            }
        }
    }
}

/// How `-p` connections from the host's loopback skip the stack: sockets
/// made in the namespace (splicing) and, when CMD's accepts come to berth,
/// the hand-off of the host connection itself.
#[derive(Clone)]
pub struct Direct {
    pub ns: Arc<NsSockets>,
    pub handoff: Option<Arc<Handoff>>,
}

/// A client on the host itself (127.0.0.0/8, ::1, or v4-mapped loopback).
fn from_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Copy both ways between a berth connection and a host one until both are
/// done: bytes (inside → host, host → inside). A FIN is passed on as a FIN;
/// when one side fails (typically reset) the other is reset as well, as a
/// peer that vanished would.
///
/// Each direction runs in its own task, so a wake-up polls only the direction
/// it is for: a request from the namespace does not look at the host socket,
/// and a reply from the host does not take the stack's lock to find the
/// namespace side idle (copy_bidirectional polls both directions on every
/// wake-up: one useless poll of the berth side per round trip).
async fn pipe(
    inside: berth::tokio::TcpStream,
    host: tokio::net::TcpStream,
) -> io::Result<(u64, u64)> {
    let _ = inside.set_nodelay(true);
    let _ = host.set_nodelay(true);
    let (mut in_r, in_w) = inside.into_split();
    let (host_r, mut host_w) = host.into_split();
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    // Ended with this future if it is dropped (the runtime shutting down).
    let mut down = AbortOnDrop(tokio::spawn(host_to_inside(host_r, in_w, cancelled)));
    let result = {
        let up = async {
            let r = one_way(&mut in_r, &mut host_w).await;
            if r.is_err() {
                reset_both(in_r.as_ref(), host_w.as_ref());
            }
            r
        };
        tokio::pin!(up);
        /// The direction that ended first, and how.
        enum First {
            Up(io::Result<u64>),
            Down(io::Result<u64>),
        }
        let first = tokio::select! {
            r = &mut up => First::Up(r),
            d = &mut down.0 => First::Down(joined(d)),
        };
        match first {
            First::Down(Ok(n)) => up.await.map(|m| (m, n)),
            First::Down(Err(e)) => Err(e),
            First::Up(Ok(m)) => joined((&mut down.0).await).map(|n| (m, n)),
            First::Up(Err(e)) => {
                // Already reset: the other task stops without a FIN.
                let _ = cancel.send(());
                let _ = (&mut down.0).await;
                Err(e)
            }
        }
    };
    if result.is_err() {
        // A reset socket is not shut down again on drop (no FIN after it).
        host_w.forget();
    }
    result
}

/// A direction task's outcome; a panic in it is an error like any other.
fn joined(r: Result<io::Result<u64>, tokio::task::JoinError>) -> io::Result<u64> {
    r.unwrap_or_else(|join| Err(io::Error::other(join)))
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The host → inside direction (its own task, see [`pipe`]); `cancelled`
/// ends it when the other direction failed and reset both sockets.
async fn host_to_inside(
    mut host_r: tokio::net::tcp::OwnedReadHalf,
    mut in_w: berth::tokio::OwnedWriteHalf,
    cancelled: tokio::sync::oneshot::Receiver<()>,
) -> io::Result<u64> {
    let r = tokio::select! {
        r = one_way(&mut host_r, &mut in_w) => r,
        _ = cancelled => Err(io::ErrorKind::ConnectionReset.into()),
    };
    if r.is_err() {
        reset_both(in_w.as_ref(), host_r.as_ref());
        in_w.forget();
    }
    r
}

/// Copy `r` to `w` until `r`'s end, then shut `w`'s write side down (the FIN
/// passed on): bytes copied. One buffer of [`RELAY_BUF`] per direction: one
/// read per buffer, and a writer that stops taking bytes stops the reading,
/// so the reader's peer sees its TCP window close (no unbounded buffering).
async fn one_way<R, W>(r: &mut R, w: &mut W) -> io::Result<u64>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; RELAY_BUF];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.shutdown().await?;
            return Ok(total);
        }
        w.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Bytes read (and written) at once by each direction of a relayed connection.
const RELAY_BUF: usize = 256 * 1024;

/// After an error: the next close of either socket resets it.
fn reset_both(inside: &berth::tokio::TcpStream, host: &tokio::net::TcpStream) {
    let _ = inside.set_linger(Some(Duration::ZERO));
    reset_on_drop(host);
}

/// SO_LINGER 0: the close that follows resets the connection. (tokio
/// deprecates set_linger because a non-zero linger blocks on drop; zero
/// never does.)
#[allow(deprecated)]
fn reset_on_drop(s: &tokio::net::TcpStream) {
    let _ = s.set_linger(Some(Duration::ZERO));
}

/// How the namespace learns that the host could not connect: as it would
/// from the destination itself.
fn refusal_for(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Refusal::Reset,
        io::ErrorKind::HostUnreachable | io::ErrorKind::TimedOut => Refusal::HostUnreachable,
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::AddrNotAvailable => {
            Refusal::NetUnreachable
        }
        io::ErrorKind::PermissionDenied => Refusal::Prohibited,
        _ => Refusal::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(host_loopback: bool) -> Arc<Relay> {
        Relay::new(RelayConfig {
            gateway4: Ipv4Addr::new(192, 0, 2, 2),
            gateway6: Some("2001:db8::2".parse().unwrap()),
            dns4: Ipv4Addr::new(192, 0, 2, 3),
            dns6: Some("2001:db8::3".parse().unwrap()),
            host_loopback,
            nameserver: Some("127.0.0.53:53".parse().unwrap()),
            socks5: None,
            max_tcp: 8,
            connect_timeout: Duration::from_secs(30),
            max_pending: 64,
            udp_idle: Duration::from_secs(60),
            dns_idle: Duration::from_secs(10),
        })
    }

    #[test]
    fn targets_map_the_gateway_and_dns_and_keep_the_rest() {
        let r = relay(true);
        let t = |s: &str| r.target(s.parse().unwrap());
        assert_eq!(t("192.0.2.2:8000"), Some("127.0.0.1:8000".parse().unwrap()));
        assert_eq!(t("[2001:db8::2]:80"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(t("192.0.2.3:53"), Some("127.0.0.53:53".parse().unwrap()));
        assert_eq!(
            t("[2001:db8::3]:53"),
            Some("127.0.0.53:53".parse().unwrap())
        );
        assert_eq!(t("192.0.2.3:80"), None);
        assert_eq!(
            t("198.51.100.7:443"),
            Some("198.51.100.7:443".parse().unwrap())
        );
        let r = relay(false);
        assert_eq!(r.target("192.0.2.2:8000".parse().unwrap()), None);
    }

    /// (relay's berth end, the app's end inside) over two linked stacks, and
    /// (relay's host end, the app's end on the host) over the loopback.
    async fn ends() -> (
        berth::tokio::TcpStream,
        berth::tokio::TcpStream,
        tokio::net::TcpStream,
        tokio::net::TcpStream,
        (Stack, Stack),
    ) {
        let (a, b) = Stack::pair().unwrap();
        let l = berth::tokio::TcpListener::bind(&b, "192.0.2.2:7")
            .await
            .unwrap();
        let (inside, app) = tokio::join!(
            berth::tokio::TcpStream::connect(&a, "192.0.2.2:7"),
            l.accept()
        );
        let hl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (host, happ) = tokio::join!(
            tokio::net::TcpStream::connect(hl.local_addr().unwrap()),
            hl.accept()
        );
        (
            inside.unwrap(),
            app.unwrap().0,
            host.unwrap(),
            happ.unwrap().0,
            (a, b),
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pipe_carries_both_ways_and_passes_each_fin_on() {
        let (inside, mut app, host, mut happ, _stacks) = ends().await;
        let relay = tokio::spawn(pipe(inside, host));
        let up: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let down: Vec<u8> = (0..2_000_000u32).map(|i| (i * 13 + 5) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let app = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut r, mut w) = app.split();
            let send = async {
                w.write_all(&up2).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let (_, n) = tokio::join!(send, r.read_to_end(&mut got));
            n.unwrap();
            got
        });
        let host_app = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut got = Vec::new();
            // Reads to the end first: the app's FIN arrived as one.
            happ.read_to_end(&mut got).await.unwrap();
            happ.write_all(&down2).await.unwrap();
            happ.shutdown().await.unwrap();
            got
        });
        let limit = Duration::from_secs(30);
        let at_host = tokio::time::timeout(limit, host_app)
            .await
            .unwrap()
            .unwrap();
        let at_app = tokio::time::timeout(limit, app).await.unwrap().unwrap();
        assert!(at_host == up, "inside → host bytes differ");
        assert!(at_app == down, "host → inside bytes differ");
        let n = tokio::time::timeout(limit, relay)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(n, (up.len() as u64, down.len() as u64));
    }

    /// The relay task ends, within 10 s, with an error (after a reset).
    async fn assert_relay_failed(relay: tokio::task::JoinHandle<io::Result<(u64, u64)>>) {
        let r = tokio::time::timeout(Duration::from_secs(10), relay).await;
        assert!(r.expect("the relay ends").expect("no panic").is_err());
    }

    /// The first read on the far side after a reset: an error, not an end
    /// of stream (no FIN may go out before the reset).
    #[tokio::test(flavor = "current_thread")]
    async fn a_reset_on_either_side_resets_the_other_without_a_fin() {
        use tokio::io::AsyncReadExt;
        let limit = Duration::from_secs(10);
        // The host end resets: the app inside sees the reset.
        let (inside, mut app, host, happ, _stacks) = ends().await;
        let relay = tokio::spawn(pipe(inside, host));
        reset_on_drop(&happ);
        drop(happ);
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(limit, app.read(&mut b)).await.unwrap();
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::ConnectionReset));
        assert_relay_failed(relay).await;

        // The app inside resets: the host end sees the reset.
        let (inside, app, host, mut happ, _stacks) = ends().await;
        let relay = tokio::spawn(pipe(inside, host));
        app.set_linger(Some(Duration::ZERO)).unwrap();
        drop(app);
        let r = tokio::time::timeout(limit, happ.read(&mut b))
            .await
            .unwrap();
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::ConnectionReset));
        assert_relay_failed(relay).await;
    }

    #[test]
    fn host_errors_become_the_answers_a_destination_would_give() {
        let k = |k: io::ErrorKind| refusal_for(&io::Error::from(k));
        assert_eq!(k(io::ErrorKind::ConnectionRefused), Refusal::Reset);
        assert_eq!(k(io::ErrorKind::HostUnreachable), Refusal::HostUnreachable);
        assert_eq!(
            k(io::ErrorKind::NetworkUnreachable),
            Refusal::NetUnreachable
        );
        assert_eq!(k(io::ErrorKind::PermissionDenied), Refusal::Prohibited);
    }
}
