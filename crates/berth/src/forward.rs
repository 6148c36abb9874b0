//! Terminate every flow of an interface: the building block of tun2socks-style
//! VPN and proxy applications and of `berth run` (gVisor's `tcp.Forwarder` and
//! `udp.Forwarder` are the model; berth-core's `forward` module has the rules).
//!
//! A [`Forwarder`] puts interfaces in forwarding mode. Each TCP SYN to any
//! address that no berth socket wants becomes a [`TcpRequest`] carrying the
//! original destination; the application typically connects to that
//! destination first and then [accepts](TcpRequest::accept) the request (the
//! handshake completes and a [`TcpStream`] whose local address is the original
//! destination comes back) or [refuses](TcpRequest::refuse) it with a RST or an
//! ICMP unreachable. A request dropped undecided is refused with a RST. Each new
//! UDP four-tuple becomes a [`UdpFlow`]: a connected socket that receives the
//! flow's datagrams and answers from the original destination; drop it when
//! idle to reclaim its place.
//!
//! Every call has a blocking form and, with the `tokio` feature, an async one
//! (`*_async`), like the rest of the API.
//!
//! ```no_run
//! use berth::forward::{Forwarder, ForwarderConfig, Refusal};
//! # fn demo(stack: berth::Stack, iface: berth::IfaceId) -> std::io::Result<()> {
//! let fwd = Forwarder::new(&stack, &[iface], ForwarderConfig::default())?;
//! loop {
//!     let req = fwd.accept_tcp()?;
//!     match std::net::TcpStream::connect(req.original_destination()) {
//!         Ok(_upstream) => {
//!             let _inside = req.accept()?; // relay between the two
//!         }
//!         Err(_) => req.refuse(Refusal::Reset)?,
//!     }
//! }
//! # }
//! ```

use crate::net::{TcpStream, UdpSocket};
use crate::runtime::Stack;
pub use berth_core::{ForwardRequest, Refusal};
use berth_core::{IfaceId, SocketHandle};
use std::io;
use std::net::SocketAddr;

/// Limits of a [`Forwarder`].
#[derive(Debug, Clone, Copy)]
pub struct ForwarderConfig {
    /// TCP requests pending (waiting for a decision) plus half-open at once;
    /// further SYNs are dropped (`tcp_forward_drops`) and retransmitted by
    /// their clients later, as a full SYN queue does.
    pub tcp_max_in_flight: usize,
    /// UDP flows alive at once; datagrams that would open another are dropped
    /// (`udp_forward_drops`).
    pub udp_max_flows: usize,
}

impl Default for ForwarderConfig {
    /// 1,024 TCP requests in flight (gVisor's tun2socks uses a few hundred),
    /// 4,096 UDP flows.
    fn default() -> Self {
        ForwarderConfig {
            tcp_max_in_flight: 1024,
            udp_max_flows: 4096,
        }
    }
}

/// The forwarding side of a stack: hands out the flows of its interfaces.
/// Dropping it ends forwarding mode on those interfaces, resets the TCP
/// connections not yet taken and drops the UDP flows not yet accepted.
pub struct Forwarder {
    stack: Stack,
    tcp: SocketHandle,
    udp: SocketHandle,
    ifaces: Vec<IfaceId>,
}

impl Forwarder {
    /// Put `ifaces` in forwarding mode and make the stack's forwarders. A stack
    /// has at most one `Forwarder` at a time.
    pub fn new(stack: &Stack, ifaces: &[IfaceId], config: ForwarderConfig) -> io::Result<Self> {
        let (tcp, udp) = stack.call(|c, _| {
            let tcp = c.tcp_forwarder(config.tcp_max_in_flight)?;
            let udp = match c.udp_forwarder(config.udp_max_flows) {
                Ok(u) => u,
                Err(e) => {
                    let _ = c.close(tcp);
                    return Err(e);
                }
            };
            for &i in ifaces {
                if let Err(e) = c.set_forwarding(i, true) {
                    let _ = c.close(tcp);
                    let _ = c.close(udp);
                    return Err(e);
                }
            }
            Ok((tcp, udp))
        })?;
        Ok(Forwarder {
            stack: stack.clone(),
            tcp,
            udp,
            ifaces: ifaces.to_vec(),
        })
    }

    /// The next TCP connection request; blocks until one arrives.
    pub fn accept_tcp(&self) -> io::Result<TcpRequest> {
        let req = self
            .stack
            .blocking(None, |c, _| c.tcp_forward_next(self.tcp))?;
        Ok(self.request(req))
    }

    /// The next TCP request if one is waiting (`WouldBlock` otherwise).
    pub fn try_accept_tcp(&self) -> io::Result<TcpRequest> {
        let req = self.stack.call(|c, _| c.tcp_forward_next(self.tcp))?;
        Ok(self.request(req))
    }

    fn request(&self, req: ForwardRequest) -> TcpRequest {
        TcpRequest {
            stack: self.stack.clone(),
            fwd: self.tcp,
            req,
            decided: false,
        }
    }

    /// The next new UDP flow; blocks until one arrives.
    pub fn accept_udp(&self) -> io::Result<UdpFlow> {
        let (h, req) = self
            .stack
            .blocking(None, |c, _| c.udp_forward_accept(self.udp))?;
        Ok(self.flow(h, req))
    }

    /// The next UDP flow if one is waiting (`WouldBlock` otherwise).
    pub fn try_accept_udp(&self) -> io::Result<UdpFlow> {
        let (h, req) = self.stack.call(|c, _| c.udp_forward_accept(self.udp))?;
        Ok(self.flow(h, req))
    }

    fn flow(&self, h: SocketHandle, req: ForwardRequest) -> UdpFlow {
        UdpFlow {
            socket: UdpSocket::from_handle(&self.stack, h),
            req,
        }
    }

    /// The stack it forwards for.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    #[cfg(feature = "tokio")]
    /// The next TCP connection request.
    pub async fn accept_tcp_async(&self) -> io::Result<TcpRequest> {
        let h = self.tcp;
        let req = std::future::poll_fn(|cx| {
            self.stack
                .poll_call(cx, h, false, |c, _| c.tcp_forward_next(h))
        })
        .await?;
        Ok(self.request(req))
    }

    #[cfg(feature = "tokio")]
    /// The next new UDP flow.
    pub async fn accept_udp_async(&self) -> io::Result<UdpFlow> {
        let h = self.udp;
        let (s, req) = std::future::poll_fn(|cx| {
            self.stack
                .poll_call(cx, h, false, |c, _| c.udp_forward_accept(h))
        })
        .await?;
        Ok(self.flow(s, req))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let (tcp, udp) = (self.tcp, self.udp);
        let ifaces = std::mem::take(&mut self.ifaces);
        let _ = self.stack.call(|c, _| {
            for i in ifaces {
                let _ = c.set_forwarding(i, false);
            }
            let _ = c.close(tcp);
            c.close(udp)
        });
        self.stack.forget(tcp);
        self.stack.forget(udp);
    }
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("ifaces", &self.ifaces)
            .finish()
    }
}

/// A TCP connection request: a client's SYN to `original_destination`, not
/// answered yet. Dropped undecided, it is refused with a RST.
pub struct TcpRequest {
    stack: Stack,
    fwd: SocketHandle,
    req: ForwardRequest,
    decided: bool,
}

impl TcpRequest {
    /// Where the client was connecting to.
    pub fn original_destination(&self) -> SocketAddr {
        self.req.local
    }

    /// The client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.req.remote
    }

    /// Answer the SYN and wait for the handshake to complete: the connection,
    /// whose local address is the original destination. Fails with
    /// `ConnectionAborted` when the client gave up first.
    pub fn accept(mut self) -> io::Result<TcpStream> {
        self.decided = true;
        let (fwd, req) = (self.fwd, self.req);
        self.stack
            .call(|c, now| c.tcp_forward_accept(now, fwd, &req))?;
        let h = self.stack.blocking(None, |c, _| {
            c.tcp_forward_take(fwd, &req)?
                .ok_or_else(|| io::ErrorKind::WouldBlock.into())
        })?;
        Ok(TcpStream::from_handle(&self.stack, h))
    }

    #[cfg(feature = "tokio")]
    /// [`TcpRequest::accept`], awaiting the handshake.
    pub async fn accept_async(mut self) -> io::Result<crate::tokio::TcpStream> {
        self.decided = true;
        let (fwd, req) = (self.fwd, self.req);
        self.stack
            .call(|c, now| c.tcp_forward_accept(now, fwd, &req))?;
        let h = std::future::poll_fn(|cx| {
            self.stack.poll_call(cx, fwd, false, |c, _| {
                c.tcp_forward_take(fwd, &req)?
                    .ok_or_else(|| io::ErrorKind::WouldBlock.into())
            })
        })
        .await?;
        Ok(crate::tokio::TcpStream::from_std(TcpStream::from_handle(
            &self.stack,
            h,
        )))
    }

    /// Turn the request down: a RST (the client sees "connection refused") or
    /// an ICMP destination unreachable ("no route to host" and the like).
    pub fn refuse(mut self, how: Refusal) -> io::Result<()> {
        self.decided = true;
        let (fwd, req) = (self.fwd, self.req);
        self.stack
            .call(|c, now| c.tcp_forward_refuse(now, fwd, &req, how))
    }
}

impl std::fmt::Debug for TcpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpRequest")
            .field("request", &self.req)
            .finish()
    }
}

impl std::fmt::Debug for UdpFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpFlow").field("flow", &self.req).finish()
    }
}

impl Drop for TcpRequest {
    fn drop(&mut self) {
        if !self.decided {
            let (fwd, req) = (self.fwd, self.req);
            let _ = self
                .stack
                .call(|c, now| c.tcp_forward_refuse(now, fwd, &req, Refusal::Reset));
        }
    }
}

/// A UDP flow: the datagrams between one client port and one original
/// destination. Its socket is connected: `recv` gets the client's datagrams,
/// `send` answers from the original destination. Dropping it closes the flow;
/// a later datagram opens a new one.
pub struct UdpFlow {
    socket: UdpSocket,
    req: ForwardRequest,
}

impl UdpFlow {
    /// Where the client's datagrams were going.
    pub fn original_destination(&self) -> SocketAddr {
        self.req.local
    }

    /// The client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.req.remote
    }

    /// The flow's socket (read and write timeouts apply, as on any socket).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The flow's socket, for a relay that keeps it.
    pub fn into_socket(self) -> UdpSocket {
        self.socket
    }

    /// The next datagram from the client.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }

    /// A datagram to the client, from the original destination.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send(buf)
    }
}
