//! The socket table for one transport protocol: who owns which port, and which
//! socket an arriving packet belongs to.
//!
//! Each protocol has its own `PortTable`, so TCP and UDP port spaces are separate.
//! Demultiplexing is two hash lookups: the exact four-tuple of connected sockets
//! first, then the bindings on the destination port (specific address before
//! wildcard). No lookup scans all sockets; the per-port list holds only the sockets
//! bound to that one port.

use crate::error::{code, error};
use crate::socket::SocketHandle;
use rand::Rng;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

/// A connection's name, of either family (gVisor's `TransportEndpointID`):
/// local address and port, remote address and port. Addresses, not
/// `SocketAddr`s, so an IPv6 flow label never splits one connection in two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FourTuple {
    /// Local address (as on the wire).
    pub local_addr: IpAddr,
    /// Local port.
    pub local_port: u16,
    /// Remote address.
    pub remote_addr: IpAddr,
    /// Remote port.
    pub remote_port: u16,
}

impl FourTuple {
    /// The tuple of a local and a remote endpoint.
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        FourTuple {
            local_addr: local.ip(),
            local_port: local.port(),
            remote_addr: remote.ip(),
            remote_port: remote.port(),
        }
    }
    /// The local endpoint.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_addr, self.local_port)
    }
    /// The remote endpoint.
    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_addr, self.remote_port)
    }
    /// Feed the tuple to a keyed hash (ISN, timestamp offset, SYN cookie):
    /// each address as its 4 or 16 octets, then its port.
    pub(crate) fn hash_into(&self, h: &mut impl Hasher) {
        let octets = |h: &mut dyn Hasher, a: &IpAddr| match a {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        };
        octets(h, &self.local_addr);
        h.write_u16(self.local_port);
        octets(h, &self.remote_addr);
        h.write_u16(self.remote_port);
    }
}

/// Hashed on every packet (demux): the addresses as one integer each and the
/// two ports in one word, instead of the derived hash's discriminants and
/// length prefixes, which doubled the bytes SipHash reads.
impl std::hash::Hash for FourTuple {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let word = |a: &IpAddr| match a {
            IpAddr::V4(a) => u128::from(u32::from(*a)) | 1 << 127,
            IpAddr::V6(a) => u128::from(*a),
        };
        // IPv4 gets the top bit set, apart from IPv6's ::a.b.c.d (a collision
        // would only cost speed: Eq compares the enums).
        h.write_u128(word(&self.local_addr));
        h.write_u128(word(&self.remote_addr));
        h.write_u32(u32::from(self.local_port) << 16 | u32::from(self.remote_port));
    }
}

impl From<(std::net::Ipv4Addr, u16, std::net::Ipv4Addr, u16)> for FourTuple {
    fn from((l, lp, r, rp): (std::net::Ipv4Addr, u16, std::net::Ipv4Addr, u16)) -> Self {
        FourTuple {
            local_addr: l.into(),
            local_port: lp,
            remote_addr: r.into(),
            remote_port: rp,
        }
    }
}

impl fmt::Display for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ↔ {}", self.local(), self.remote())
    }
}

/// Does a binding of `a` (IPV6_V6ONLY `v6only`) take packets to `x`? The
/// IPv4 wildcard takes IPv4; the IPv6 wildcard takes IPv6 and, unless
/// v6only, IPv4 too (a dual-stack socket, Linux's bindv6only=0 default).
fn covers(a: IpAddr, v6only: bool, x: IpAddr) -> bool {
    match a {
        IpAddr::V4(w) if w.is_unspecified() => x.is_ipv4(),
        IpAddr::V6(w) if w.is_unspecified() => x.is_ipv6() || !v6only,
        _ => a == x,
    }
}

/// Two bindings on one port overlap when either takes the other's address.
fn overlap(a: IpAddr, a6only: bool, b: IpAddr, b6only: bool) -> bool {
    covers(a, a6only, b) || covers(b, b6only, a)
}

#[derive(Debug, Clone, Copy)]
struct Binding {
    addr: IpAddr,
    /// IPV6_V6ONLY of the socket (matters for the IPv6 wildcard only).
    v6only: bool,
    handle: SocketHandle,
    reuse_addr: bool,
    /// Connected sockets own their port but only match their own four-tuple.
    connected: bool,
    /// A TCP listener: SO_REUSEADDR never lets a second socket share its address.
    listening: bool,
}

/// The port bindings of one transport (the stack has one table for TCP, one
/// for UDP): which sockets hold which local port (bind, ephemeral ports,
/// SO_REUSEADDR).
#[derive(Debug, Default)]
pub struct PortTable {
    ports: HashMap<u16, Vec<Binding>>,
    connected: HashMap<FourTuple, SocketHandle>,
}

impl PortTable {
    /// Every binding as (port, handle, listening) and every connected tuple, for
    /// `Stack::check_invariants`.
    pub(crate) fn entries(
        &self,
    ) -> (
        impl Iterator<Item = (u16, SocketHandle, bool)> + '_,
        impl Iterator<Item = (&FourTuple, &SocketHandle)> + '_,
    ) {
        let bindings = self
            .ports
            .iter()
            .flat_map(|(p, bs)| bs.iter().map(move |b| (*p, b.handle, b.listening)));
        (bindings, self.connected.iter())
    }

    /// Does `handle` hold a binding on `port`?
    pub(crate) fn is_bound(&self, handle: SocketHandle, port: u16) -> bool {
        self.ports
            .get(&port)
            .is_some_and(|bs| bs.iter().any(|b| b.handle == handle))
    }

    /// The socket registered for `tuple`.
    pub(crate) fn tuple_owner(&self, tuple: &FourTuple) -> Option<SocketHandle> {
        self.connected.get(tuple).copied()
    }

    /// Would binding `addr:port` conflict? Two bindings overlap when the addresses are
    /// equal or either is the wildcard; overlap is allowed only when both sockets set
    /// SO_REUSEADDR (Linux semantics for UDP; TCP adds a LISTEN rule on top).
    fn conflicts(&self, addr: IpAddr, v6only: bool, port: u16, reuse_addr: bool) -> bool {
        self.ports.get(&port).is_some_and(|bs| {
            bs.iter().any(|b| {
                overlap(b.addr, b.v6only, addr, v6only)
                    && (!(reuse_addr && b.reuse_addr) || b.listening)
            })
        })
    }

    /// Bind `handle` to `addr:port`; port 0 picks an ephemeral port (RFC 6056
    /// Algorithm 1: random start, then sequential search of the range).
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &mut self,
        handle: SocketHandle,
        addr: IpAddr,
        v6only: bool,
        port: u16,
        reuse_addr: bool,
        range: &RangeInclusive<u16>,
        rng: &mut impl Rng,
    ) -> io::Result<u16> {
        let port = if port == 0 {
            self.pick_ephemeral(addr, v6only, reuse_addr, range, rng)?
        } else {
            if self.conflicts(addr, v6only, port, reuse_addr) {
                return Err(error(
                    code::EADDRINUSE,
                    format!(
                        "address {} is already in use; choose another port, \
                         or set SO_REUSEADDR on every socket sharing it",
                        SocketAddr::new(addr, port)
                    ),
                ));
            }
            port
        };
        self.ports.entry(port).or_default().push(Binding {
            addr,
            v6only,
            handle,
            reuse_addr,
            connected: false,
            listening: false,
        });
        Ok(port)
    }

    fn pick_ephemeral(
        &self,
        addr: IpAddr,
        v6only: bool,
        reuse_addr: bool,
        range: &RangeInclusive<u16>,
        rng: &mut impl Rng,
    ) -> io::Result<u16> {
        let (lo, hi) = (*range.start() as u32, *range.end() as u32);
        if lo == 0 || hi < lo {
            return Err(error(
                code::EINVAL,
                "ephemeral port range is empty or includes port 0; configure e.g. 49152..=65535",
            ));
        }
        let n = hi - lo + 1;
        let start = rng.gen_range(0..n);
        for i in 0..n {
            let port = (lo + (start + i) % n) as u16;
            if !self.conflicts(addr, v6only, port, reuse_addr) {
                return Ok(port);
            }
        }
        Err(error(
            code::EADDRNOTAVAIL,
            format!("all {n} ephemeral ports are in use; widen the range or close sockets"),
        ))
    }

    /// Remove `handle`'s binding on `port`, and its four-tuple if it was connected.
    pub fn unbind(&mut self, handle: SocketHandle, port: u16, tuple: Option<FourTuple>) {
        if let Some(bs) = self.ports.get_mut(&port) {
            bs.retain(|b| b.handle != handle);
            if bs.is_empty() {
                self.ports.remove(&port);
            }
        }
        if let Some(t) = tuple {
            self.remove_tuple(handle, t);
        }
    }

    /// Is another socket already listening on an address overlapping `addr:port`?
    pub fn listener_conflict(
        &self,
        handle: SocketHandle,
        addr: IpAddr,
        v6only: bool,
        port: u16,
    ) -> bool {
        self.ports.get(&port).is_some_and(|bs| {
            bs.iter().any(|b| {
                b.handle != handle && b.listening && overlap(b.addr, b.v6only, addr, v6only)
            })
        })
    }

    /// Mark `handle`'s binding on `port` as listening (or not).
    pub fn set_listening(&mut self, handle: SocketHandle, port: u16, on: bool) {
        if let Some(bs) = self.ports.get_mut(&port) {
            for b in bs.iter_mut().filter(|b| b.handle == handle) {
                b.listening = on;
            }
        }
    }

    /// Register a four-tuple for a socket that owns no binding of its own (a TCP
    /// connection accepted from a listener shares the listener's port).
    pub fn insert_tuple(&mut self, handle: SocketHandle, tuple: FourTuple) -> io::Result<()> {
        if self.connected.contains_key(&tuple) {
            return Err(error(
                code::EADDRINUSE,
                format!("{tuple} is already in use"),
            ));
        }
        self.connected.insert(tuple, handle);
        Ok(())
    }

    /// Forget `tuple` if it belongs to `handle`.
    pub fn remove_tuple(&mut self, handle: SocketHandle, tuple: FourTuple) {
        if self.connected.get(&tuple) == Some(&handle) {
            self.connected.remove(&tuple);
        }
    }

    /// Register the four-tuple of a connected socket already bound to `tuple.1`,
    /// replacing `old` (its previous tuple, if it was connected before).
    pub fn connect(
        &mut self,
        handle: SocketHandle,
        old: Option<FourTuple>,
        tuple: FourTuple,
    ) -> io::Result<()> {
        if let Some(&other) = self.connected.get(&tuple) {
            if other != handle {
                return Err(error(
                    code::EADDRINUSE,
                    format!(
                        "{} is already connected to {} by another socket",
                        tuple.local(),
                        tuple.remote()
                    ),
                ));
            }
        }
        if let Some(o) = old {
            self.remove_tuple(handle, o);
        }
        self.connected.insert(tuple, handle);
        if let Some(bs) = self.ports.get_mut(&tuple.local_port) {
            for b in bs.iter_mut().filter(|b| b.handle == handle) {
                b.connected = true;
            }
        }
        Ok(())
    }

    /// Forget the four-tuple of `handle` (UDP connect to AF_UNSPEC).
    pub fn disconnect(&mut self, handle: SocketHandle, tuple: FourTuple) {
        let port = tuple.local_port;
        self.remove_tuple(handle, tuple);
        if let Some(bs) = self.ports.get_mut(&port) {
            for b in bs.iter_mut().filter(|b| b.handle == handle) {
                b.connected = false;
            }
        }
    }

    /// The socket for a packet from `remote` to `local`: exact four-tuple, then a
    /// socket bound to the local address, then one bound to the wildcard of its
    /// family, then (for IPv4) a dual-stack IPv6 wildcard. Among SO_REUSEADDR
    /// sockets sharing a binding the most recent wins (as Linux does for unicast
    /// UDP).
    pub fn lookup(&self, local: SocketAddr, remote: SocketAddr) -> Option<SocketHandle> {
        let tuple = FourTuple::new(local, remote);
        if let Some(&h) = self.connected.get(&tuple) {
            return Some(h);
        }
        let bs = self.ports.get(&local.port())?;
        let unconnected = || bs.iter().rev().filter(|b| !b.connected);
        let ip = local.ip();
        unconnected()
            .find(|b| b.addr == ip)
            .or_else(|| {
                unconnected().find(|b| b.addr.is_unspecified() && b.addr.is_ipv4() == ip.is_ipv4())
            })
            .or_else(|| unconnected().find(|b| covers(b.addr, b.v6only, ip)))
            .map(|b| b.handle)
    }

    /// Only the socket connected with exactly this four-tuple.
    pub fn lookup_exact(&self, tuple: &FourTuple) -> Option<SocketHandle> {
        self.connected.get(tuple).copied()
    }

    /// Number of bindings (for tests and statistics).
    pub fn len(&self) -> usize {
        self.ports.values().map(Vec::len).sum()
    }

    /// No binding at all.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn h(i: u32) -> SocketHandle {
        SocketHandle::from_raw(i, 0)
    }
    use std::net::{Ipv4Addr, SocketAddrV4};

    const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    fn sa(ip: IpAddr, port: u16) -> SocketAddr {
        SocketAddr::new(ip, port)
    }
    fn tuple(l: IpAddr, lp: u16, r: IpAddr, rp: u16) -> FourTuple {
        FourTuple::new(sa(l, lp), sa(r, rp))
    }

    #[test]
    fn bind_conflicts_and_reuse() {
        let mut t = PortTable::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let r = 49152..=65535;
        t.bind(h(1), ANY, false, 53, false, &r, &mut rng).unwrap();
        let e = t.bind(h(2), A, false, 53, false, &r, &mut rng).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        // Both with SO_REUSEADDR may share.
        t.bind(h(3), A, false, 54, true, &r, &mut rng).unwrap();
        t.bind(h(4), A, false, 54, true, &r, &mut rng).unwrap();
        assert!(t.bind(h(5), ANY, false, 54, false, &r, &mut rng).is_err());
        // Different specific addresses never conflict.
        t.bind(h(6), A, false, 55, false, &r, &mut rng).unwrap();
        t.bind(h(7), B, false, 55, false, &r, &mut rng).unwrap();
    }

    #[test]
    fn lookup_order() {
        let mut t = PortTable::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let r = 49152..=65535;
        t.bind(h(1), ANY, false, 7, false, &r, &mut rng).unwrap();
        t.bind(h(2), A, false, 7, false, &r, &mut rng).unwrap_err();
        t.bind(h(3), B, false, 8, false, &r, &mut rng).unwrap();
        let peer: SocketAddr = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 999).into();
        assert_eq!(t.lookup(sa(A, 7), peer), Some(h(1)));
        assert_eq!(t.lookup(sa(A, 8), peer), None);
        assert_eq!(t.lookup(sa(B, 8), peer), Some(h(3)));
        // A connected socket only matches its peer.
        t.connect(h(3), None, tuple(B, 8, peer.ip(), 999)).unwrap();
        assert_eq!(t.lookup(sa(B, 8), peer), Some(h(3)));
        let other: SocketAddr = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 999).into();
        assert_eq!(t.lookup(sa(B, 8), other), None);
        t.unbind(h(3), 8, Some(tuple(B, 8, peer.ip(), 999)));
        assert_eq!(t.lookup(sa(B, 8), peer), None);
    }

    #[test]
    fn ephemeral_in_range_and_exhaustion() {
        let mut t = PortTable::default();
        let mut rng = SmallRng::seed_from_u64(7);
        let r = 50000..=50009;
        let mut got = std::collections::HashSet::new();
        for i in 0..10 {
            let p = t.bind(h(i), ANY, false, 0, false, &r, &mut rng).unwrap();
            assert!(r.contains(&p));
            assert!(got.insert(p), "port {p} handed out twice");
        }
        let e = t
            .bind(h(99), ANY, false, 0, false, &r, &mut rng)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
    }
}
