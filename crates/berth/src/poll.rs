//! `Poller`: a readiness multiplexer over many sockets of one berth stack, like
//! poll(2)/epoll(7) in level-triggered mode.
//!
//! ```no_run
//! use berth::{Interest, PollEvent, Poller, Stack, TcpListener};
//! use std::time::Duration;
//! # fn main() -> std::io::Result<()> {
//! let (_a, b) = Stack::pair()?;
//! let listener = TcpListener::bind(&b, "0.0.0.0:7")?;
//! listener.set_nonblocking(true)?;
//! let poller = Poller::new(&b);
//! poller.register(listener.handle(), 0, Interest::READABLE)?;
//! let mut events: Vec<PollEvent> = Vec::new();
//! loop {
//!     poller.wait(&mut events, Some(Duration::from_secs(1)))?;
//!     for ev in &events {
//!         if ev.token == 0 && ev.readable {
//!             let (_conn, _peer) = listener.accept()?;
//!         }
//!     }
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! Readiness comes from the core ([`berth_core::Stack::readiness`]) and is level
//! triggered: a socket is reported on every `wait` while it stays ready. `wait`
//! checks every registered socket under the stack's lock and, if none is ready,
//! sleeps on the stack's condition variable, which the runtime notifies whenever
//! the core reports a readiness change — there is no spinning and no polling
//! interval. Errors and hang-ups are always reported, whatever the interest, as
//! epoll does. A registered socket that is closed is dropped from the set
//! silently, as closing a file descriptor removes it from an epoll set.

use crate::runtime::Stack;
use berth_core::error::{code, error};
use berth_core::SocketHandle;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest {
    /// Wait for readable (EPOLLIN).
    pub readable: bool,
    /// Wait for writable (EPOLLOUT).
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Readable or writable.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// One ready socket, named by the token it was registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollEvent {
    /// The token the socket was registered with.
    pub token: usize,
    /// A read, recv or accept would not block (EPOLLIN).
    pub readable: bool,
    /// A write or send would not block (EPOLLOUT); also a finished non-blocking
    /// connect.
    pub writable: bool,
    /// An error is pending; `take_error` returns it (EPOLLERR).
    pub error: bool,
    /// The peer closed its side or the connection is gone (EPOLLHUP/EPOLLRDHUP).
    pub hup: bool,
}

/// A set of sockets of one stack and the interest in each (an epoll instance).
pub struct Poller {
    stack: Stack,
    regs: Mutex<HashMap<SocketHandle, (usize, Interest)>>,
    notified: AtomicBool,
}

impl Poller {
    /// An empty set for sockets of `stack`.
    pub fn new(stack: &Stack) -> Poller {
        Poller {
            stack: stack.clone(),
            regs: Mutex::new(HashMap::new()),
            notified: AtomicBool::new(false),
        }
    }

    fn regs(&self) -> std::sync::MutexGuard<'_, HashMap<SocketHandle, (usize, Interest)>> {
        self.regs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wake a thread blocked in `wait`, from another thread (as the registered
    /// sets change, say); that `wait` returns at once, with whatever is ready.
    pub fn notify(&self) {
        self.notified.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Make a waiting `wait` re-check its set (after a change to it).
    fn wake(&self) {
        // Take the stack's lock so the waiter is either before its check or
        // already asleep on the condition variable: the wake cannot be lost.
        drop(self.stack.shared().lock());
        self.stack.shared().cv.notify_all();
    }

    /// EPOLL_CTL_ADD: watch `h` and report it as `token`. A socket of another
    /// stack or a closed one is `InvalidInput` (EBADF); one already registered
    /// is `AlreadyExists` (EEXIST).
    pub fn register(&self, h: SocketHandle, token: usize, interest: Interest) -> io::Result<()> {
        self.stack.call(|c, _| c.readiness(h).map(drop))?;
        {
            let mut regs = self.regs();
            if regs.contains_key(&h) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    berth_core::SocketError {
                        errno: EEXIST,
                        message: format!("socket {h} is already registered; use modify").into(),
                    },
                ));
            }
            regs.insert(h, (token, interest));
        }
        self.wake();
        Ok(())
    }

    /// EPOLL_CTL_MOD: change the token and interest of a registered socket;
    /// `NotFound` (ENOENT) if it is not registered.
    pub fn modify(&self, h: SocketHandle, token: usize, interest: Interest) -> io::Result<()> {
        self.stack.call(|_, _| Ok(()))?;
        {
            let mut regs = self.regs();
            let Some(r) = regs.get_mut(&h) else {
                return Err(not_registered(h));
            };
            *r = (token, interest);
        }
        self.wake();
        Ok(())
    }

    /// EPOLL_CTL_DEL: stop watching `h`; `NotFound` (ENOENT) if it is not
    /// registered.
    pub fn deregister(&self, h: SocketHandle) -> io::Result<()> {
        match self.regs().remove(&h) {
            Some(_) => Ok(()),
            None => Err(not_registered(h)),
        }
    }

    /// How many sockets are registered.
    pub fn len(&self) -> usize {
        self.regs().len()
    }

    /// No socket is registered.
    pub fn is_empty(&self) -> bool {
        self.regs().is_empty()
    }

    /// epoll_wait: clear `events`, then fill it with the sockets that are ready,
    /// waiting up to `timeout` (`None`: without limit; `Some(ZERO)`: just check)
    /// for one to become ready. Returns how many events were stored: 0 when the
    /// timeout passed (or [`Poller::notify`] was called) with nothing ready. A shut
    /// down stack is an error (and unblocks a waiting call).
    pub fn wait(
        &self,
        events: &mut Vec<PollEvent>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        events.clear();
        let deadline = timeout.map(|d| std::time::Instant::now() + d);
        let r = self.stack.blocking(deadline, |c, _| {
            let mut regs = self.regs();
            regs.retain(|h, (token, interest)| match c.readiness(*h) {
                Ok(r) => {
                    let ev = PollEvent {
                        token: *token,
                        readable: interest.readable && r.readable,
                        writable: interest.writable && r.writable,
                        error: r.error,
                        hup: r.hup,
                    };
                    if ev.readable || ev.writable || ev.error || ev.hup {
                        events.push(ev);
                    }
                    true
                }
                // Closed: drop it, as closing an fd removes it from epoll.
                Err(_) => false,
            });
            let notified = self.notified.swap(false, Ordering::SeqCst);
            if !events.is_empty() || notified {
                Ok(())
            } else {
                Err(error(code::EAGAIN, "nothing ready"))
            }
        });
        match r {
            Ok(()) => Ok(events.len()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The stack whose sockets this poller watches.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }
}

/// Linux EEXIST.
const EEXIST: i32 = 17;
/// Linux ENOENT.
const ENOENT: i32 = 2;

fn not_registered(h: SocketHandle) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        berth_core::SocketError {
            errno: ENOENT,
            message: format!("socket {h} is not registered with this poller").into(),
        },
    )
}
