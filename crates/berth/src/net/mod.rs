//! Blocking sockets with `std::net`'s names and signatures, on a berth [`Stack`](crate::Stack)
//! instead of the kernel: the first argument of the constructors is the stack.
//!
//! ```
//! use berth::{Stack, TcpListener, TcpStream};
//! use std::io::{Read, Write};
//! # fn main() -> std::io::Result<()> {
//! let (a, b) = Stack::pair()?; // 192.0.2.1 and 192.0.2.2 on one memory link
//! let listener = TcpListener::bind(&b, "192.0.2.2:7")?;
//! let mut client = TcpStream::connect(&a, "192.0.2.2:7")?;
//! let (mut server, peer) = listener.accept()?;
//! assert_eq!(peer, client.local_addr()?);
//! client.write_all(b"hello")?;
//! let mut buf = [0; 5];
//! server.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"hello");
//! # Ok(()) }
//! ```

mod raw;
mod tcp;
mod udp;

pub use raw::RawSocket;
pub(crate) use tcp::{connect_progress, wait_connected};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

pub use crate::dns::ToSocketAddrs;

use crate::runtime::invalid;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Try `f` on every address `addr` resolves to (through `stack`'s resolver),
/// in order, until one succeeds; else the last error (std's `each_addr`,
/// used by bind and connect).
pub(crate) fn each_addr<T>(
    stack: &crate::Stack,
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in crate::dns::resolve(stack, addr)? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| invalid("the address resolved to no address at all")))
}

/// The first address `addr` resolves to (std's `send_to` uses only that one).
pub(crate) fn first_addr(stack: &crate::Stack, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    crate::dns::resolve(stack, addr)?
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the address resolved to no address at all"))
}

/// Resolve `host` ("name:port", `("name", port)` or an address) through
/// `stack`: its hosts table, then its DNS servers over the stack itself,
/// as `tokio::net::lookup_host` does through the host's resolver. Blocks
/// until the answer (or the resolver's timeouts, 7 s by default).
pub fn lookup_host(
    stack: &crate::Stack,
    host: impl ToSocketAddrs,
) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    crate::dns::resolve(stack, host).map(Vec::into_iter)
}

/// A socket's SO_RCVTIMEO / SO_SNDTIMEO, settable through `&self` as with std.
#[derive(Debug, Default)]
pub(crate) struct Timeouts {
    read: Mutex<Option<Duration>>,
    write: Mutex<Option<Duration>>,
}

impl Timeouts {
    pub fn set_read(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = t;
        Ok(())
    }
    pub fn read(&self) -> Option<Duration> {
        *self.read.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn set_write(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        *self.write.lock().unwrap_or_else(|p| p.into_inner()) = t;
        Ok(())
    }
    pub fn write(&self) -> Option<Duration> {
        *self.write.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The same settings, for a `try_clone` copy.
    pub fn copy(&self) -> Timeouts {
        Timeouts {
            read: Mutex::new(self.read()),
            write: Mutex::new(self.write()),
        }
    }
}

pub(crate) fn deadline(t: Option<std::time::Duration>) -> Option<std::time::Instant> {
    t.map(|d| std::time::Instant::now() + d)
}

/// std rejects a zero timeout with InvalidInput; so do we.
pub(crate) fn check_timeout(t: Option<std::time::Duration>) -> io::Result<()> {
    if t.is_some_and(|d| d.is_zero()) {
        return Err(invalid(
            "a zero timeout is not allowed; pass None to block without a timeout",
        ));
    }
    Ok(())
}
