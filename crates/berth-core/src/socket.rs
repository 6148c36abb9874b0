//! Socket handles, storage and the operator's view of sockets.

use crate::error::{code, error};
use berth_wire::IpProtocol;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A socket's name inside one stack. Handles are not reused while a stale copy could
/// reach a new socket: each slot carries a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    index: u32,
    gen: u32,
}

impl SocketHandle {
    /// A handle from its slot index and generation.
    pub const fn from_raw(index: u32, gen: u32) -> Self {
        SocketHandle { index, gen }
    }
    /// The slot index.
    pub const fn index(&self) -> u32 {
        self.index
    }
}

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index)
    }
}

/// A slab of values addressed by generation-checked handles. O(1) insert, get, remove.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, v: T) -> SocketHandle {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(v);
            SocketHandle::from_raw(i, slot.0)
        } else {
            self.slots.push((0, Some(v)));
            SocketHandle::from_raw((self.slots.len() - 1) as u32, 0)
        }
    }
    pub fn get(&self, h: SocketHandle) -> Option<&T> {
        match self.slots.get(h.index as usize) {
            Some((g, Some(v))) if *g == h.gen => Some(v),
            _ => None,
        }
    }
    pub fn get_mut(&mut self, h: SocketHandle) -> Option<&mut T> {
        match self.slots.get_mut(h.index as usize) {
            Some((g, Some(v))) if *g == h.gen => Some(v),
            _ => None,
        }
    }
    pub fn remove(&mut self, h: SocketHandle) -> Option<T> {
        match self.slots.get_mut(h.index as usize) {
            Some((g, v @ Some(_))) if *g == h.gen => {
                self.free.push(h.index);
                self.len -= 1;
                v.take()
            }
            _ => None,
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (SocketHandle, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, (g, v))| {
            v.as_ref()
                .map(|v| (SocketHandle::from_raw(i as u32, *g), v))
        })
    }
    pub fn len(&self) -> usize {
        self.len
    }
}

/// Transport of a socket, as `ss` names it in its Netid column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// TCP (ss: tcp).
    Tcp,
    /// UDP (ss: udp).
    Udp,
    /// Raw IP of one protocol (ss: raw).
    Raw(IpProtocol),
}

impl SocketKind {
    /// The `ss` Netid: tcp, udp, raw.
    pub fn netid(&self) -> &'static str {
        match self {
            SocketKind::Tcp => "tcp",
            SocketKind::Udp => "udp",
            SocketKind::Raw(_) => "raw",
        }
    }
}

/// One row of the socket listing, as `ss` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// The socket.
    pub handle: SocketHandle,
    /// Its transport.
    pub kind: SocketKind,
    /// `ss` state name: UNCONN, ESTAB, LISTEN, SYN-SENT, …
    pub state: &'static str,
    /// Bytes waiting to be read (for LISTEN: accept-queue length).
    pub recv_q: usize,
    /// Bytes not yet acknowledged / sent (for LISTEN: the backlog).
    pub send_q: usize,
    /// Local address; 0.0.0.0:0 when unbound. Raw sockets show the protocol as port.
    pub local: SocketAddr,
    /// Peer address; `None` prints as `*` / `0.0.0.0:*`.
    pub peer: Option<SocketAddr>,
    /// Datagrams dropped because the receive queue was full (ss -m "d" field).
    pub drops: u64,
    /// TCP connection details (`ss -i`), for TCP sockets with a connection.
    pub tcp: Option<crate::tcp::TcpInfo>,
    /// Memory held (`ss -m` skmem).
    pub mem: crate::mem::SkMem,
}

/// The address family of a TCP or UDP socket (AF_INET or AF_INET6), fixed by
/// the call that made it or else by its first bind, connect or send. An
/// AF_INET6 socket reaches IPv4 peers through IPv4-mapped addresses
/// (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2) unless IPV6_V6ONLY is set, as on
/// Linux. The stack keeps wire addresses (IPv4 for an IPv4 flow); the socket
/// calls translate at the boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Family {
    /// `Some(true)`: AF_INET6; `Some(false)`: AF_INET; `None`: not yet known.
    pub v6: Option<bool>,
    /// IPV6_V6ONLY.
    pub v6only: bool,
}

impl Family {
    pub fn v6() -> Family {
        Family {
            v6: Some(true),
            v6only: false,
        }
    }

    /// The address a user gave, as the stack uses it on the wire: an IPv4-mapped
    /// address becomes IPv4. Fixes the family of a socket that had none.
    pub fn wire_addr(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let v6 = *self.v6.get_or_insert(addr.is_ipv6());
        match (v6, addr) {
            (false, SocketAddr::V4(_)) => Ok(addr),
            (false, SocketAddr::V6(_)) => Err(error(
                code::EAFNOSUPPORT,
                format!("{addr} is an IPv6 address and this is an IPv4 (AF_INET) socket"),
            )),
            (true, SocketAddr::V4(_)) => Err(error(
                code::EAFNOSUPPORT,
                format!(
                    "{addr} is an IPv4 address and this is an IPv6 (AF_INET6) socket; \
                     give it as ::ffff:{}",
                    addr.ip()
                ),
            )),
            (true, SocketAddr::V6(a)) => match a.ip().to_ipv4_mapped() {
                Some(v4) if self.v6only => Err(error(
                    code::ENETUNREACH,
                    format!("{v4} is IPv4 and this socket is IPv6-only (IPV6_V6ONLY)"),
                )),
                Some(v4) => Ok(SocketAddr::new(v4.into(), a.port())),
                None => Ok(addr),
            },
        }
    }

    /// As [`Family::wire_addr`], for UDP: Linux's UDPv6 connect and sendmsg
    /// also take an IPv4 address on a dual-stack socket, as if IPv4-mapped
    /// (ip6_datagram_connect, udpv6_sendmsg).
    pub fn udp_wire_addr(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        match addr {
            SocketAddr::V4(_) if self.v6 == Some(true) && !self.v6only => Ok(addr),
            _ => self.wire_addr(addr),
        }
    }

    /// An address the stack holds, as this socket's family shows it.
    pub fn user_addr(&self, addr: SocketAddr) -> SocketAddr {
        match (self.v6, addr) {
            (Some(true), SocketAddr::V4(a)) => {
                SocketAddr::new(a.ip().to_ipv6_mapped().into(), a.port())
            }
            _ => addr,
        }
    }

    /// The wildcard of this family, port 0 (what an implicit bind takes); for a
    /// socket of no family yet, that of `toward`.
    pub fn any(&self, toward: IpAddr) -> SocketAddr {
        let v6 = self.v6.unwrap_or(toward.is_ipv6());
        let ip: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        SocketAddr::new(ip, 0)
    }

    /// IPV6_V6ONLY, before bind (Linux: EINVAL once bound).
    pub fn set_v6only(&mut self, on: bool, bound: bool) -> io::Result<()> {
        if self.v6 != Some(true) {
            return Err(error(
                code::ENOPROTOOPT,
                "IPV6_V6ONLY applies to IPv6 (AF_INET6) sockets only",
            ));
        }
        if bound {
            return Err(error(
                code::EINVAL,
                "IPV6_V6ONLY must be set before bind or connect",
            ));
        }
        self.v6only = on;
        Ok(())
    }
}
