//! Level-triggered readiness of any socket, for poll/epoll-style multiplexers and
//! for blocking calls that wait for a condition.

use crate::error::bad_handle;
use crate::socket::SocketHandle;
use crate::stack::{Socket, Stack};
use crate::tcp::TcpState;
use std::io;

/// What a socket can do now without blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// A read (or accept) would not block: data, end of stream, a connection to
    /// accept, or a pending error.
    pub readable: bool,
    /// A write would not block (or would fail at once with an error).
    pub writable: bool,
    /// An error is pending (SO_ERROR).
    pub error: bool,
    /// The peer closed its side (end of stream seen) or the connection is gone.
    pub hup: bool,
}

impl Stack {
    /// What socket `h` can do now without blocking (level triggered, as poll(2)).
    pub fn readiness(&self, h: SocketHandle) -> io::Result<Readiness> {
        match self.sockets.get(h) {
            Some(Socket::Udp(u)) => Ok(Readiness {
                readable: !u.rx.is_empty()
                    || u.pending_error.is_some()
                    || u.forward.as_ref().is_some_and(|f| !f.fresh.is_empty()),
                writable: true,
                error: u.pending_error.is_some(),
                hup: false,
            }),
            Some(Socket::Raw(r)) => Ok(Readiness {
                readable: !r.rx.is_empty(),
                writable: true,
                error: false,
                hup: false,
            }),
            Some(Socket::Tcp(t)) if !t.orphan => {
                let error = t.error.is_some();
                if let Some(l) = &t.listener {
                    return Ok(Readiness {
                        readable: !l.accept_queue.is_empty()
                            || l.forward.as_ref().is_some_and(|f| !f.fresh.is_empty()),
                        writable: false,
                        error,
                        hup: false,
                    });
                }
                let Some(c) = &t.tcb else {
                    return Ok(Readiness {
                        readable: error,
                        writable: error,
                        error,
                        hup: error,
                    });
                };
                let closed = c.state == TcpState::Closed;
                let eof = c.fin_received || c.rx_shutdown;
                let open_for_send =
                    matches!(c.state, TcpState::Established | TcpState::CloseWait) && !c.fin_queued;
                Ok(Readiness {
                    readable: !c.recv.is_empty() || eof || closed || error,
                    // A send refused for want of stack memory waits for the wake.
                    writable: (open_for_send && c.send_space() > 0 && !t.mem_waiting)
                        || closed
                        || error,
                    error,
                    hup: eof || closed,
                })
            }
            _ => Err(bad_handle()),
        }
    }
}
