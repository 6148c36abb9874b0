//! Kernel sockets made inside the namespace, for spliced port forwards.
//!
//! A `-p` connection from the host's own loopback need not cross the TUN and
//! berth's stack at all: a kernel TCP socket *created* in the namespace
//! connects there (a socket keeps the network namespace it was made in,
//! whichever process later calls connect), and the two kernel connections
//! are joined with splice(2) (see [`super::splice`]). pasta does the same for
//! its "spliced" loopback forwards.
//!
//! berth's own process cannot enter a user namespace (it is multi-threaded),
//! so a small helper, `berth __ns-sockets`, joins the namespaces of CMD (or of
//! `--pid`) the way `--pid` does, and hands out fresh unconnected sockets over
//! a SOCK_SEQPACKET pair. It holds nothing else, dies with berth
//! (PR_SET_PDEATHSIG) and exits when its end of the pair closes.
//!
//! Wire protocol (one datagram each): berth → helper: `S` + family (`4` or
//! `6`) + count (1..=[`BATCH`]); helper → berth: `O` with that many fds, or
//! `E` + errno (i32, little endian) + text.

use super::ns;
use nix::errno::Errno;
use nix::sys::socket::{
    recv, send, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use std::ffi::OsString;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Mutex;

/// Sockets asked for at once: one round trip to the helper per this many
/// connections.
const BATCH: u8 = 16;

/// berth's side: a pool of unconnected TCP sockets from the namespace.
pub struct NsSockets {
    inner: Mutex<Inner>,
}

struct Inner {
    sock: OwnedFd,
    child: Child,
    pool4: Vec<OwnedFd>,
    pool6: Vec<OwnedFd>,
}

impl NsSockets {
    /// Start the helper in the user and network namespaces of process `pid`.
    pub fn start(pid: u32) -> io::Result<NsSockets> {
        let (ours, child) = ns::spawn_helper(
            "berth's namespace socket helper",
            |fd| helper_args(fd, pid),
            |cmd| {
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
            },
        )?;
        let s = NsSockets {
            inner: Mutex::new(Inner {
                sock: ours,
                child,
                pool4: Vec::new(),
                pool6: Vec::new(),
            }),
        };
        // The first batch shows at once whether the helper could join.
        let first = s.take(false)?;
        s.give_back(false, first);
        Ok(s)
    }

    /// A fresh unconnected TCP socket of the namespace (close-on-exec,
    /// blocking).
    pub fn take(&self, v6: bool) -> io::Result<OwnedFd> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("namespace socket pool poisoned"))?;
        let inner = &mut *g;
        let pool = if v6 {
            &mut inner.pool6
        } else {
            &mut inner.pool4
        };
        if let Some(s) = pool.pop() {
            return Ok(s);
        }
        let req = [b'S', if v6 { b'6' } else { b'4' }, BATCH];
        send(inner.sock.as_raw_fd(), &req, MsgFlags::MSG_NOSIGNAL).map_err(|e| {
            io::Error::new(io::Error::from(e).kind(), format!("socket helper: {e}"))
        })?;
        let mut fds = read_reply(&inner.sock)?;
        let s = fds
            .pop()
            .ok_or_else(|| io::Error::other("socket helper sent no socket"))?;
        pool.extend(fds);
        Ok(s)
    }

    fn give_back(&self, v6: bool, s: OwnedFd) {
        if let Ok(mut g) = self.inner.lock() {
            if v6 {
                g.pool6.push(s);
            } else {
                g.pool4.push(s);
            }
        }
    }
}

impl Drop for NsSockets {
    /// Closing our end makes the helper exit (it waits in recv); then reap
    /// it. No kill: when CMD has exited, `end_leftovers` may have reaped it
    /// already, and its pid could name another process by now (wait then
    /// just fails with ECHILD).
    fn drop(&mut self) {
        if let Ok(g) = self.inner.get_mut() {
            g.pool4.clear();
            g.pool6.clear();
            let _ =
                nix::sys::socket::shutdown(g.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            let _ = g.child.wait();
        }
    }
}

fn read_reply(sock: &OwnedFd) -> io::Result<Vec<OwnedFd>> {
    let mut buf = [0u8; 1024];
    let (bytes, owned) = ns::recv_with_fds(sock, &mut buf, BATCH as usize)?;
    match buf.get(..bytes) {
        Some([b'O']) if !owned.is_empty() => Ok(owned),
        Some([b'E', e0, e1, e2, e3, text @ ..]) => {
            let errno = i32::from_le_bytes([*e0, *e1, *e2, *e3]);
            Err(io::Error::new(
                io::Error::from_raw_os_error(errno).kind(),
                String::from_utf8_lossy(text).into_owned(),
            ))
        }
        Some([]) | None => Err(io::Error::other("berth's namespace socket helper ended")),
        Some(_) => Err(io::Error::other(
            "berth's namespace socket helper sent a malformed reply",
        )),
    }
}

fn helper_args(sock: RawFd, pid: u32) -> Vec<OsString> {
    vec![
        "__ns-sockets".into(),
        sock.to_string().into(),
        std::process::id().to_string().into(),
        pid.to_string().into(),
    ]
}

// ---- the helper: `berth __ns-sockets SOCK PARENT PID` ----

/// Join PID's namespaces, then answer requests until berth closes the pair.
pub fn helper_main() -> ExitCode {
    let args: Vec<i64> = std::env::args()
        .skip(2)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [sock, parent, pid] = args[..] else {
        eprintln!(
            "berth __ns-sockets: expected SOCK PARENT PID (an internal helper of `berth run`, \
             not for direct use)"
        );
        return ExitCode::from(125);
    };
    let (Ok(sock), Ok(parent), Ok(pid)) = (
        RawFd::try_from(sock),
        i32::try_from(parent),
        u32::try_from(pid),
    ) else {
        return ExitCode::from(125);
    };
    // SAFETY: the fd number is the socket berth left open for us; this is its
    // only owner in this process.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // Never outlive berth; if it ended before this call nothing would fire.
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err()
        || nix::unistd::getppid().as_raw() != parent
    {
        return ExitCode::from(125);
    }
    let joined = ns::join(pid, !nix::unistd::geteuid().is_root());
    let mut req = [0u8; 8];
    loop {
        let n = match recv(sock.as_raw_fd(), &mut req, MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            Ok(0) | Err(_) => return ExitCode::SUCCESS,
            Ok(n) => n,
        };
        let made = match (&joined, &req[..n]) {
            (Err(e), _) => Err(io::Error::new(e.kind(), e.to_string())),
            (Ok(()), [b'S', fam @ (b'4' | b'6'), count]) => {
                let family = if *fam == b'6' {
                    AddressFamily::Inet6
                } else {
                    AddressFamily::Inet
                };
                (0..(*count).clamp(1, BATCH))
                    .map(|_| {
                        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
                            .map_err(io::Error::from)
                    })
                    .collect::<io::Result<Vec<OwnedFd>>>()
            }
            (Ok(()), _) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "malformed request",
            )),
        };
        let sent = match made {
            Ok(fds) => {
                let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
                sendmsg::<UnixAddr>(
                    sock.as_raw_fd(),
                    &[IoSlice::new(b"O")],
                    &[ControlMessage::ScmRights(&raw)],
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map(drop)
            }
            Err(e) => {
                let mut msg = vec![b'E'];
                msg.extend(e.raw_os_error().unwrap_or(0).to_le_bytes());
                msg.extend(e.to_string().as_bytes());
                msg.truncate(1024);
                send(sock.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL).map(drop)
            }
        };
        if sent.is_err() {
            return ExitCode::SUCCESS;
        }
    }
}
