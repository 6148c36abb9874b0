//! berth: a user-space TCP/IP stack with Berkeley-style sockets.
//!
//! This crate turns the sans-IO core (`berth-core`) into something a program
//! uses. Modules:
//!
//! - [`sim`]: a deterministic network simulator — hosts joined by in-memory
//!   links with seeded impairments (delay, jitter, loss, duplication,
//!   reordering, rate, MTU) and learning switches, on a virtual clock, with
//!   pcap capture.

pub mod net;
mod runtime;
pub mod sim;

pub use net::{RawSocket, TcpListener, TcpStream, UdpSocket};
pub use runtime::{Stack, StackBuilder};
