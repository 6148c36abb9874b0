//! berth-core: the stack itself, sans-IO.
//!
//! No threads, no clock, no I/O: a [`Stack`] is a deterministic state machine. Frames
//! go in with [`Stack::receive`], come out of [`Stack::poll_transmit`]; time is passed
//! in (`now`) and timers are run with [`Stack::poll_timeout`] /
//! [`Stack::handle_timeout`]. Same inputs, same outputs — which is what makes the
//! simulator, fuzzing and packet-level tests possible.
//!
//! Layout (one concern a file):
//! - `stack.rs`: the driver surface (receive, poll_transmit, timers, events, bind);
//! - `ip.rs`: the family-neutral IP calls transports make (local addresses,
//!   source selection, MTU, send), dispatching to `ipv4.rs` or `ipv6.rs`;
//! - `ipv6.rs`: IPv6 addresses and source selection, input (extension headers,
//!   reassembly), output (routing, fragmentation); `icmpv6.rs`: ICMPv6;
//!   `ndp.rs`: neighbor discovery, DAD, router advertisements and SLAAC;
//! - `ipv4.rs`: IPv4 addresses, input, output and fragmentation; `arp.rs`: ARP;
//! - `link.rs`: framing and next-hop resolution on an interface's medium;
//! - `frag.rs`: reassembly for both families; `pmtu.rs`: the path MTU cache;
//!   `neighbor.rs`: the neighbour cache (NUD) for ARP and NDP; `iface.rs`:
//!   interfaces, their IPv6 addresses and the route table;
//! - `socket.rs`: handles, `ss` rows, and a socket's family (AF_INET/AF_INET6,
//!   IPv4-mapped addresses at the API boundary);
//! - `icmp.rs`, `udp.rs`, `raw.rs`: protocols and their sockets;
//! - `table.rs`: ports and demultiplexing (hash maps, never a scan over sockets);
//! - `mem.rs`: stack-wide memory accounting (tcp_mem / udp_mem);
//! - `timer.rs`: all timers in one heap; `stats.rs`: drop counters; `error.rs`;
//!   `trace.rs`: `tracing` events (targets `berth::tcp`, `berth::drop`).

#![warn(missing_docs)]

mod arp;
mod check;
pub mod config;
pub mod error;
pub mod forward;
mod frag;
mod icmp;
mod icmpv6;
pub mod iface;
mod ip;
mod ipv4;
mod ipv6;
mod link;
pub mod mem;
mod ndp;
mod neighbor;
mod pmtu;
mod raw;
pub mod ready;
pub mod socket;
mod stack;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod time;
mod timer;
mod trace;
mod udp;

pub use berth_wire as wire;
pub use config::{Config, IfaceConfig, Medium, MemLimits, PAGE_SIZE};
pub use error::{errno, SocketError};
pub use forward::{ForwardRequest, Refusal};
pub use iface::{AddrOrigin, AddrState, IfaceId, Route};
pub use mem::{MemoryUsage, SkMem, TCP_FORCED_SLACK};
pub use neighbor::{NeighborEntry, NeighborState};
pub use raw::{RawRecvMeta, IPPROTO_RAW};
pub use ready::Readiness;
pub use socket::{SocketHandle, SocketInfo, SocketKind};
pub use stack::{Event, EventKind, Stack, Transmit};
pub use stats::Stats;
pub use tcp::{
    Algorithm as CongestionAlgorithm, SynCookies, TcpConfig, TcpInfo, TcpState, TcpTimer,
    TcpTimerKind,
};
pub use time::{Duration, Instant};
