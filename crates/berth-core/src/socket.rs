//! Socket handles, storage and the operator's view of sockets.

use berth_wire::IpProtocol;
use std::fmt;
use std::net::SocketAddr;

/// A socket's name inside one stack. Handles are not reused while a stale copy could
/// reach a new socket: each slot carries a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    index: u32,
    gen: u32,
}

impl SocketHandle {
    pub const fn from_raw(index: u32, gen: u32) -> Self {
        SocketHandle { index, gen }
    }
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
    Tcp,
    Udp,
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
    pub handle: SocketHandle,
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
