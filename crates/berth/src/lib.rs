//! berth: a user-space TCP/IP stack with Berkeley-style sockets.
//!
//! This crate turns the sans-IO core (`berth-core`) into something a program
//! uses. Modules:
//!
//! - [`sim`]: a deterministic network simulator — hosts joined by in-memory
//!   links with seeded impairments (delay, jitter, loss, duplication,
//!   reordering, rate, MTU) and learning switches, on a virtual clock, with
//!   pcap capture.
//! - `device` (Linux): TUN and TAP devices attached to a [`Stack`].
//! - [`net`]: blocking sockets shaped like `std::net`.
//! - [`forward`]: [`Forwarder`], every TCP and UDP flow of an interface handed to
//!   the application with its original destination (tun2socks, `berth run`).
//! - [`socket`]: [`Socket`], the BSD calls one by one, shaped like socket2.
//! - [`poll`]: [`Poller`], a level-triggered readiness multiplexer (poll/epoll).
//! - `tokio` (default feature `tokio`): async sockets shaped like `tokio::net`,
//!   usable from any tokio runtime (hyper works on top of them).

#[cfg(target_os = "linux")]
pub mod device;
pub mod forward;
pub mod net;
pub mod poll;
mod runtime;
pub mod sim;
pub mod socket;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use berth_core::IfaceId;
pub use forward::Forwarder;
pub use net::{RawSocket, TcpListener, TcpStream, UdpSocket};
pub use poll::{Interest, PollEvent, Poller};
pub use runtime::{os_seed, DeviceSink, DeviceWriter, Stack, StackBuilder};
pub use socket::{Domain, Protocol, Socket, TcpKeepalive, Type};
