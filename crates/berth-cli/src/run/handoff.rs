//! Handing a `-p` connection from the host's loopback straight to CMD's
//! accept(2): the server inside then reads and writes the host client's own
//! kernel TCP connection, one loopback connection end to end, with no relay
//! in the data path at all (what bypass4netns does for rootless containers,
//! here only for accept).
//!
//! Why: a spliced forward ([`super::splice`]) is two kernel TCP connections
//! joined by a relay thread, about 70 % of one loopback connection on a
//! 2-CPU machine (README, `berth run`); pasta's spliced forward is the same
//! path, so splicing can only tie with it.
//!
//! How: before CMD execs, the namespace helper installs a seccomp filter
//! ([`install_filter`]) that turns CMD's accept(2) and accept4(2) into user
//! notifications (seccomp_unotify(2)) read by a thread of berth's. For a TCP
//! listener on a forwarded port, berth accepts in CMD's place (on a copy of
//! its listening socket from pidfd_getfd(2)). A connection that berth itself
//! made into the namespace for a waiting host client ([`Handoff::reserve`]) is
//! swapped for that host connection (SECCOMP_IOCTL_NOTIF_ADDFD puts it into
//! CMD as the call's result, with the host client's address); any other
//! connection (a client inside the namespace, one through the stack) is
//! passed on as accepted. Every other accept continues in the kernel
//! untouched. A blocking accept waits in berth until the listener is
//! readable; a non-blocking one gets EAGAIN as it would from the kernel.
//!
//! Only processes under the filter (CMD and what it starts, not a server
//! started inside with nsenter) come to berth, so a host client is offered
//! for hand-off only on a port where such a process has accepted before;
//! elsewhere it is spliced at once (as the first client of a server that
//! polls its listener before accepting is: its accept then marks the port).
//! Nothing is lost when a hand-off does not happen: a host client whose
//! connection is not accepted through berth within [`OFFER_WAIT`] (CMD busy,
//! or accepting some way the filter does not see, such as io_uring) is
//! spliced as before, and its namespace-side connection is then passed on
//! like any other.
//!
//! What CMD sees differently on a handed-off connection: getsockname gives
//! the host end of the forward (127.0.0.1:HOSTPORT) and getpeername the host
//! client's own address, where a spliced connection shows the namespace's
//! addresses; the socket belongs to the host's network namespace, and is an
//! IPv4 socket even from an IPv6 (dual-stack) listener, which gets the
//! address v4-mapped as from the kernel. Of the options a listener passes to
//! its connections, TCP_NODELAY and SO_KEEPALIVE are copied. It is not
//! relayed, so `berth ss --relays` does not list it.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    accept4, getpeername, getsockname, getsockopt, sockopt, SockFlag, SockaddrLike, SockaddrStorage,
};
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a host client waits for CMD's accept before it is spliced.
pub const OFFER_WAIT: Duration = Duration::from_millis(500);
/// Accepts held at once (each holds a copy of a listener); past it, an
/// accept continues in the kernel, so CMD's threads cannot use up berth's
/// descriptors.
const MAX_HELD: usize = 1024;
/// How often held accepts are checked for having been interrupted.
const TICK: Duration = Duration::from_millis(100);

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Install the filter on this process (and what it execs): accept and
/// accept4 of this architecture go to the returned notification fd,
/// everything else is allowed. Needs CAP_SYS_ADMIN in the current user
/// namespace (the helper has it in the namespace it made, or as root).
pub fn install_filter() -> io::Result<OwnedFd> {
    use libc::{sock_filter, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld = |k: u32| sock_filter {
        code: (BPF_LD | BPF_W | BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| sock_filter {
        code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ret = |k: u32| sock_filter {
        code: (BPF_RET | BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    // struct seccomp_data: nr at 0, arch at 4.
    let prog = [
        ld(4),
        jeq(AUDIT_ARCH, 0, 3),
        ld(0),
        jeq(libc::SYS_accept as u32, 2, 0),
        jeq(libc::SYS_accept4 as u32, 1, 0),
        ret(libc::SECCOMP_RET_ALLOW),
        ret(libc::SECCOMP_RET_USER_NOTIF),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    // SAFETY: seccomp(2) reads `fprog` and the program it points to, both
    // alive for the call; with NEW_LISTENER it returns a new fd we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot install the accept filter (seccomp): {e}"),
        ));
    }
    // SAFETY: seccomp just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A host connection waiting for CMD's accept.
struct Pending {
    host: OwnedFd,
    client: SocketAddr,
    /// None: handed to CMD; Some: given back, to be spliced.
    done: oneshot::Sender<Option<OwnedFd>>,
}

pub struct Handoff {
    /// Guest ports with a TCP forward: listeners on them are served by berth;
    /// true once a process under the filter has accepted on one.
    ports: HashMap<u16, AtomicBool>,
    /// By the local address of berth's connection into the namespace.
    pending: Mutex<HashMap<SocketAddr, Pending>>,
    attached: std::sync::OnceLock<()>,
    pub handed: AtomicU64,
    pub passed: AtomicU64,
    pub spliced: AtomicU64,
}

impl Handoff {
    pub fn new(ports: HashSet<u16>) -> Arc<Handoff> {
        Arc::new(Handoff {
            ports: ports
                .into_iter()
                .map(|p| (p, AtomicBool::new(false)))
                .collect(),
            pending: Mutex::new(HashMap::new()),
            attached: std::sync::OnceLock::new(),
            handed: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            spliced: AtomicU64::new(0),
        })
    }

    /// Serve CMD's accepts from `notify` (the filter's fd) on a thread of
    /// its own, until CMD and everything it started are gone.
    pub fn attach(self: &Arc<Self>, notify: OwnedFd) -> io::Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("berth-accept".into())
            .spawn(move || me.serve(notify))?;
        let _ = self.attached.set(());
        Ok(())
    }

    /// Offer `host` (a client of a forward, on the host's loopback) to CMD's
    /// next accept on the listener that berth's connection into the
    /// namespace, bound to `inside_local` and not yet connected, will queue
    /// on. Reserved before the connect, so that an accept that comes at once
    /// finds it. Err: not offered (no accept through berth on `guest_port`
    /// so far), splice it (None: lost).
    pub fn reserve(
        self: &Arc<Self>,
        inside_local: SocketAddr,
        guest_port: u16,
        host: tokio::net::TcpStream,
        client: SocketAddr,
    ) -> Result<Ticket, Option<tokio::net::TcpStream>> {
        let accepted_here = self
            .ports
            .get(&guest_port)
            .is_some_and(|s| s.load(Ordering::Relaxed));
        if self.attached.get().is_none() || !accepted_here {
            self.spliced.fetch_add(1, Ordering::Relaxed);
            return Err(Some(host));
        }
        // Fails only if tokio cannot deregister it; the stream is gone then.
        let host = OwnedFd::from(host.into_std().map_err(|_| None)?);
        let (tx, rx) = oneshot::channel();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(
            inside_local,
            Pending {
                host,
                client,
                done: tx,
            },
        );
        Ok(Ticket {
            owner: Arc::clone(self),
            local: inside_local,
            rx,
        })
    }
}

impl Ticket {
    /// The connect failed: `host` back (None if it was taken meanwhile).
    pub fn cancel(self) -> Option<tokio::net::TcpStream> {
        let p = self
            .owner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.local)?;
        to_tokio(p.host)
    }

    /// Wait for CMD's accept. Ok: CMD has the connection now. Err: not taken
    /// within [`OFFER_WAIT`], given back to be spliced.
    pub async fn wait(self) -> Result<(), tokio::net::TcpStream> {
        let Ticket {
            owner,
            local,
            mut rx,
        } = self;
        let back = match tokio::time::timeout(OFFER_WAIT, &mut rx).await {
            Ok(r) => r.ok().flatten(),
            Err(_) => {
                let mine = owner
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&local);
                match mine {
                    Some(p) => Some(p.host),
                    // Taken this very moment: its answer is on the way.
                    None => rx.await.ok().flatten(),
                }
            }
        };
        match back.map(to_tokio) {
            None => Ok(()),
            Some(t) => {
                owner.spliced.fetch_add(1, Ordering::Relaxed);
                // None: no reactor to register with; the connection is
                // dropped (the client sees it closed).
                t.map_or(Ok(()), Err)
            }
        }
    }
}

impl Handoff {
    fn serve(&self, notify: OwnedFd) {
        let mut held: Vec<Held> = Vec::new();
        loop {
            let mut fds = vec![PollFd::new(notify.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                held.iter()
                    .map(|h| PollFd::new(h.listener.as_fd(), PollFlags::POLLIN)),
            );
            let tick = PollTimeout::try_from(TICK).unwrap_or(PollTimeout::NONE);
            match poll(&mut fds, tick) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            let ev = fds[0].revents().unwrap_or(PollFlags::empty());
            drop(fds);
            if ev.contains(PollFlags::POLLIN) {
                if let Some(n) = recv_notif(&notify) {
                    if held.len() >= MAX_HELD {
                        respond(&notify, n.id, Reply::Continue);
                    } else if let Some(h) = self.take(&notify, &n) {
                        held.push(h);
                    }
                }
            } else if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                // No process is left under the filter.
                return;
            }
            // Serve or drop held accepts (a readable listener, or a call
            // that was interrupted: a signal ends the notification).
            held.retain_mut(|h| !self.try_serve(&notify, h));
        }
    }

    /// A new notification: held (ours to serve) or answered now.
    fn take(&self, notify: &OwnedFd, n: &libc::seccomp_notif) -> Option<Held> {
        let a = n.data.args;
        let flags = if i64::from(n.data.nr) == libc::SYS_accept4 {
            a[3] as i32
        } else {
            0
        };
        let forwarded = i32::try_from(a[0])
            .ok()
            .and_then(|fd| getfd(n.pid, fd).ok())
            .and_then(|l| self.forwarded(&l).map(|v6| (l, v6)));
        let Some((listener, v6)) = forwarded else {
            respond(notify, n.id, Reply::Continue);
            return None;
        };
        Some(Held {
            v6,
            id: n.id,
            pid: n.pid,
            listener,
            addr: a[1],
            addrlen: a[2],
            flags,
        })
    }

    /// For a TCP listening socket on a forwarded port: whether it is IPv6
    /// (maybe dual-stack). None for any other socket.
    fn forwarded(&self, fd: &OwnedFd) -> Option<bool> {
        let listening = getsockopt(fd, sockopt::AcceptConn).unwrap_or(false);
        let stream = matches!(
            getsockopt(fd, sockopt::SockType),
            Ok(nix::sys::socket::SockType::Stream)
        );
        let addr = getsockname::<SockaddrStorage>(fd.as_raw_fd()).ok()?;
        let seen = self.ports.get(&to_std(&addr)?.port())?;
        if !(listening && stream) {
            return None;
        }
        seen.store(true, Ordering::Relaxed);
        Some(addr.as_sockaddr_in6().is_some())
    }

    /// Accept for `h` if a connection is there: true when `h` is done.
    fn try_serve(&self, notify: &OwnedFd, h: &Held) -> bool {
        if !id_valid(notify, h.id) {
            return true;
        }
        let readable = {
            let mut p = [PollFd::new(h.listener.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0)
        };
        let fl = fcntl(&h.listener, FcntlArg::F_GETFL)
            .map(OFlag::from_bits_truncate)
            .ok();
        if !readable {
            let nonblocking = fl.is_some_and(|f| f.contains(OFlag::O_NONBLOCK));
            if nonblocking {
                respond(notify, h.id, Reply::Error(Errno::EAGAIN));
            }
            return nonblocking;
        }
        // Non-blocking for this one accept (the flag is the guest's file's,
        // so it is put back): should something outside the filter take the
        // connection first, this thread must not block in accept.
        let toggled = fl
            .filter(|f| !f.contains(OFlag::O_NONBLOCK))
            .is_some_and(|f| fcntl(&h.listener, FcntlArg::F_SETFL(f | OFlag::O_NONBLOCK)).is_ok());
        let accepted = accept4(h.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC);
        if let (true, Some(f)) = (toggled, fl) {
            let _ = fcntl(&h.listener, FcntlArg::F_SETFL(f));
        }
        let conn = match accepted {
            // SAFETY: accept4 returned a new fd; nothing else owns it.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => return false,
            Err(e) => {
                respond(notify, h.id, Reply::Error(e));
                return true;
            }
        };
        let peer = getpeername::<SockaddrStorage>(conn.as_raw_fd())
            .ok()
            .and_then(|s| to_std(&s));
        let mine = peer.and_then(|p| {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&p)
        });
        match mine {
            Some(p) => {
                inherit(&h.listener, &p.host);
                match deliver(notify, h, p.host, p.client) {
                    Ok(()) => {
                        self.handed.fetch_add(1, Ordering::Relaxed);
                        let _ = p.done.send(None);
                    }
                    Err(host) => {
                        let _ = p.done.send(Some(host));
                    }
                }
                // `conn`, berth's own connection's other end, closes here.
            }
            None => {
                if deliver(notify, h, conn, peer_or(peer)).is_ok() {
                    self.passed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        true
    }
}

fn peer_or(p: Option<SocketAddr>) -> SocketAddr {
    p.unwrap_or_else(|| SocketAddr::new(IpAddr::from([0u8; 4]), 0))
}

/// A host connection reserved for hand-off ([`Handoff::reserve`]).
pub struct Ticket {
    owner: Arc<Handoff>,
    local: SocketAddr,
    rx: oneshot::Receiver<Option<OwnedFd>>,
}

fn to_tokio(fd: OwnedFd) -> Option<tokio::net::TcpStream> {
    tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd)).ok()
}

/// An accept of CMD's that berth answers.
struct Held {
    id: u64,
    pid: u32,
    /// berth's copy of CMD's listening socket.
    listener: OwnedFd,
    /// CMD's sockaddr and socklen pointers (0: not wanted).
    addr: u64,
    addrlen: u64,
    /// accept4 flags (SOCK_NONBLOCK, SOCK_CLOEXEC).
    flags: i32,
    /// The listener is IPv6 (maybe dual-stack).
    v6: bool,
}

/// What an accepted socket inherits from its listener in Linux and a
/// server may have set there for its connections: TCP_NODELAY, SO_KEEPALIVE.
fn inherit(listener: &OwnedFd, host: &OwnedFd) {
    if let Ok(v) = getsockopt(listener, sockopt::TcpNoDelay) {
        let _ = nix::sys::socket::setsockopt(host, sockopt::TcpNoDelay, &v);
    }
    if let Ok(v) = getsockopt(listener, sockopt::KeepAlive) {
        let _ = nix::sys::socket::setsockopt(host, sockopt::KeepAlive, &v);
    }
}

/// Put `fd` into CMD as the result of its accept, with `peer` written where
/// it asked. Gives `fd` back when CMD is gone.
fn deliver(notify: &OwnedFd, h: &Held, fd: OwnedFd, peer: SocketAddr) -> Result<(), OwnedFd> {
    let mut fl = fcntl(&fd, FcntlArg::F_GETFL)
        .map(OFlag::from_bits_truncate)
        .unwrap_or(OFlag::empty());
    fl.set(OFlag::O_NONBLOCK, h.flags & libc::SOCK_NONBLOCK != 0);
    let _ = fcntl(&fd, FcntlArg::F_SETFL(fl));
    if h.addr != 0 && h.addrlen != 0 {
        write_addr(h, peer);
    }
    let req = libc::seccomp_notif_addfd {
        id: h.id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if h.flags & libc::SOCK_CLOEXEC != 0 {
            libc::O_CLOEXEC as u32
        } else {
            0
        },
    };
    // SAFETY: the ioctl reads `req`, alive for the call; it copies `fd`
    // into CMD and answers the notification with the new number.
    let r = unsafe {
        libc::ioctl(
            notify.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD as _,
            &req as *const libc::seccomp_notif_addfd,
        )
    };
    if r < 0 {
        return Err(fd);
    }
    Ok(())
}

/// The peer address into CMD's memory, as accept(2) does: at most *addrlen
/// bytes, and the full length back in *addrlen.
fn write_addr(h: &Held, peer: SocketAddr) {
    // An IPv6 listener gets IPv4 peers v4-mapped, as from the kernel.
    let peer = match (h.v6, peer) {
        (true, SocketAddr::V4(a)) => SocketAddr::new(a.ip().to_ipv6_mapped().into(), a.port()),
        _ => peer,
    };
    let sa = SockaddrStorage::from(peer);
    // SAFETY: `as_ptr` points at `len()` initialised bytes of `sa`.
    let bytes = unsafe { std::slice::from_raw_parts(sa.as_ptr().cast::<u8>(), sa.len() as usize) };
    let pid = Pid::from_raw(h.pid as i32);
    let mut len = [0u8; 4];
    let read = process_vm_readv(
        pid,
        &mut [IoSliceMut::new(&mut len)],
        &[RemoteIoVec {
            base: h.addrlen as usize,
            len: 4,
        }],
    );
    if read != Ok(4) {
        return;
    }
    let room = (u32::from_ne_bytes(len) as usize).min(bytes.len());
    let _ = process_vm_writev(
        pid,
        &[IoSlice::new(&bytes[..room])],
        &[RemoteIoVec {
            base: h.addr as usize,
            len: room,
        }],
    );
    let _ = process_vm_writev(
        pid,
        &[IoSlice::new(&(bytes.len() as u32).to_ne_bytes())],
        &[RemoteIoVec {
            base: h.addrlen as usize,
            len: 4,
        }],
    );
}

/// As a std address, v4-mapped IPv6 ones (on a dual-stack listener) as IPv4.
fn to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    let v6 = SocketAddr::from(*s.as_sockaddr_in6()?);
    Some(match v6.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => v6,
        },
        IpAddr::V4(_) => v6,
    })
}

/// The process of thread `tid` (a notification names the calling thread,
/// and pidfd_open wants a process).
fn tgid(tid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(tid)
}

/// A copy of fd `fd` of the process of thread `tid`.
fn getfd(tid: u32, fd: RawFd) -> io::Result<OwnedFd> {
    let pid = tgid(tid);
    // SAFETY: pidfd_open takes plain integers and returns a new fd we own.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just returned by pidfd_open; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes plain integers and returns a new fd we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just returned by pidfd_getfd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

fn recv_notif(notify: &OwnedFd) -> Option<libc::seccomp_notif> {
    // SAFETY: an all-zero seccomp_notif is valid (plain integers), and the
    // kernel wants it zeroed.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl fills `n`, alive and writable for the call.
    let r = unsafe {
        libc::ioctl(
            notify.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut n as *mut libc::seccomp_notif,
        )
    };
    (r == 0).then_some(n)
}

fn id_valid(notify: &OwnedFd, id: u64) -> bool {
    // SAFETY: the ioctl reads the u64, alive for the call.
    let r = unsafe {
        libc::ioctl(
            notify.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
            &id as *const u64,
        )
    };
    r == 0
}

enum Reply {
    /// Let the kernel run the call as made.
    Continue,
    Error(Errno),
}

fn respond(notify: &OwnedFd, id: u64, reply: Reply) {
    let (error, flags) = match reply {
        Reply::Continue => (0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        Reply::Error(e) => (-(e as i32), 0),
    };
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    // SAFETY: the ioctl reads `resp`, alive for the call. A failure means
    // the caller is gone (interrupted or dead): nothing to do.
    let _ = unsafe {
        libc::ioctl(
            notify.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mapped_addresses_key_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.100]:4000".parse().unwrap();
        let got = to_std(&SockaddrStorage::from(mapped));
        assert_eq!(got, Some("192.0.2.100:4000".parse().unwrap()));
        let v6: SocketAddr = "[2001:db8::100]:4000".parse().unwrap();
        assert_eq!(to_std(&SockaddrStorage::from(v6)), Some(v6));
        let v4: SocketAddr = "192.0.2.2:53".parse().unwrap();
        assert_eq!(to_std(&SockaddrStorage::from(v4)), Some(v4));
    }

    #[test]
    fn a_threads_process_is_found() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert_ne!(tid, std::process::id());
        assert_eq!(tgid(tid), std::process::id());
        drop(stop_tx);
        t.join().unwrap();
    }

    #[test]
    fn reserve_splices_until_a_port_has_accepted_through_berth() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let h = Handoff::new([7000].into_iter().collect());
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
                .await
                .unwrap();
            let local: SocketAddr = "192.0.2.100:40000".parse().unwrap();
            let client = c.local_addr().unwrap();
            // Not attached, and no accept seen: given straight back.
            let back = h.reserve(local, 7000, c, client);
            assert!(matches!(back, Err(Some(_))));
            assert_eq!(h.spliced.load(Ordering::Relaxed), 1);
            assert!(h.pending.lock().unwrap().is_empty());
        });
    }
}
