//! berth: a user-space TCP/IP stack with Berkeley-style sockets.
//!
//! The sockets keep the names and signatures of `std::net` and `tokio::net`;
//! what changes is the import and one more argument: the [`Stack`] a socket
//! lives on (std's sockets use the kernel's, berth's a stack inside the
//! process, reaching the world through an in-memory link, a TUN or a TAP
//! device).
//!
//! ```
//! // was: use std::net::{TcpListener, TcpStream};
//! use berth::{Stack, TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! # fn main() -> std::io::Result<()> {
//! // Two hosts on one memory link: 192.0.2.1 (a) and 192.0.2.2 (b).
//! let (a, b) = Stack::pair()?;
//! let listener = TcpListener::bind(&b, "192.0.2.2:7")?; // was: bind("…")
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _peer) = listener.accept()?;
//!     let mut buf = [0; 64];
//!     let n = conn.read(&mut buf)?;
//!     conn.write_all(&buf[..n]) // echo
//! });
//! let mut client = TcpStream::connect(&a, "192.0.2.2:7")?; // was: connect("…")
//! client.set_nodelay(true)?;
//! client.write_all(b"hello")?;
//! let mut reply = [0; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"hello");
//! server.join().expect("server thread")?;
//! # Ok(()) }
//! ```
//!
//! The same with tokio: `berth::tokio::{TcpListener, TcpStream, UdpSocket,
//! TcpSocket}` in place of `tokio::net`'s (see [`tokio`]).
//!
//! Modules:
//!
//! - [`net`]: blocking sockets shaped like `std::net` ([`TcpListener`],
//!   [`TcpStream`], [`UdpSocket`]), plus [`RawSocket`].
//! - `tokio` (default feature `tokio`): async sockets shaped like `tokio::net`,
//!   usable from any tokio runtime (hyper works on top of them).
//! - [`socket`]: [`Socket`], the BSD calls one by one, shaped like socket2.
//! - [`poll`]: [`Poller`], a level-triggered readiness multiplexer (poll/epoll).
//! - [`sim`]: a deterministic network simulator — hosts joined by in-memory
//!   links with seeded impairments (delay, jitter, loss, duplication,
//!   reordering, rate, MTU) and learning switches, on a virtual clock, with
//!   pcap capture.
//! - `device` (Linux): TUN and TAP devices attached to a [`Stack`], with
//!   optional pcap capture ([`pcap`]).
//! - [`dns`]: name resolution through berth (hosts table, a DNS stub
//!   resolver over the stack's own UDP and TCP), used by every call taking
//!   `"host:port"`; [`net::lookup_host`] and `tokio::lookup_host`.
//! - [`dhcp`]: a DHCPv4 client that configures an interface (address,
//!   default route, DNS servers) from a lease.
//! - [`forward`]: [`Forwarder`], every TCP and UDP flow of an interface handed to
//!   the application with its original destination (tun2socks, `berth run`).
//! - [`core`]: the sans-IO stack underneath (`berth-core`), for the simulator
//!   and for anything the socket API lacks ([`Stack::with_core`]); [`wire`]:
//!   packet formats (parse and build IP, ICMP, TCP, UDP headers).
//!
//! Configuration ([`Config`], [`TcpConfig`]), per-connection details
//! ([`TcpInfo`]) and errors ([`errno`], [`error::code`]) are re-exported here, so
//! `berth` is the only dependency a program needs.

#![warn(missing_docs)]

#[cfg(target_os = "linux")]
pub mod device;
pub mod dhcp;
pub mod dns;
pub mod forward;
pub mod net;
pub mod pcap;
pub mod poll;
mod runtime;
pub mod sim;
pub mod socket;
#[cfg(feature = "tokio")]
pub mod tokio;

/// The sans-IO stack (the `berth-core` crate): a deterministic state machine
/// driven by `receive` / `poll_transmit` / `poll_timeout` / `handle_timeout`,
/// what the [`sim`] simulator runs as its hosts. [`core::Stack`] is that state
/// machine; [`Stack`] is the runtime around it.
pub mod core {
    pub use berth_core::*;
}

pub use berth_core::{error, wire};

pub use berth_core::{
    errno, Config, CongestionAlgorithm, IfaceConfig, IfaceId, Medium, MemLimits, MemoryUsage,
    RawRecvMeta, SocketHandle, SocketInfo, SocketKind, Stats, SynCookies, TcpConfig, TcpInfo,
    TcpState,
};
pub use dns::{ResolverConfig, ToSocketAddrs};
pub use forward::Forwarder;
pub use net::{RawSocket, TcpListener, TcpStream, UdpSocket};
pub use poll::{Interest, PollEvent, Poller};
pub use runtime::{os_seed, DeviceSink, DeviceWriter, Stack, StackBuilder};
pub use socket::{Domain, Protocol, Socket, TcpKeepalive, Type};
