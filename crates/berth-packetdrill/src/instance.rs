//! One packetdrill run: a berth core stack on a virtual clock, its descriptor
//! table and the queue of packets it sent. Every call returns `Result<_, Errno>`;
//! the C layer (lib.rs) turns an error into -1 and errno.
//!
//! Threading: all state sits behind one mutex. Calls that must wait (a blocking
//! accept, connect, read, write, poll or epoll_wait) sleep on the condition
//! variable; anything that changes the stack (an injected packet, the clock
//! moving, another call) notifies it. packetdrill tells a blocked call from a
//! running one by the thread's kernel state, so waiting must sleep, never spin.

use crate::abi::*;
use crate::config::{Options, V4_LOCAL, V4_PREFIX};
use berth_core::wire::{Ipv4Cidr, Ipv6Cidr};
use berth_core::{
    Config, IfaceConfig, IfaceId, Instant, Medium, Readiness, SocketHandle, Stack, TcpState,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

pub type Errno = i32;

/// Virtual wall clock at stack time zero: gettimeofday reports EPOCH + stack time.
pub const EPOCH_US: u64 = 1_700_000_000 * 1_000_000;

/// Host-side descriptor standing in for a berth socket (see `host_fd`).
struct HostFd {
    fd: OwnedFd,
    ino: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
}

struct Sock {
    h: SocketHandle,
    kind: Kind,
    /// AF_INET6: addresses in and out are sockaddr_in6 (IPv4 as ::ffff:a.b.c.d).
    v6: bool,
    nonblock: bool,
    keepalive: bool,
    _host: HostFd,
}

struct Epoll {
    /// fd → (events, data): level-triggered interest list.
    interest: BTreeMap<i32, (u32, u64)>,
    _host: HostFd,
}

enum Fd {
    Sock(Sock),
    Epoll(Epoll),
}

struct Inner {
    stack: Stack,
    iface: IfaceId,
    /// Virtual time, µs since stack time zero.
    now: u64,
    /// Packets berth sent, with their send time, not yet handed to packetdrill.
    out: VecDeque<(Vec<u8>, u64)>,
    fds: HashMap<i32, Fd>,
}

pub struct Instance {
    inner: Mutex<Inner>,
    cv: Condvar,
    /// Virtual µs netdev_receive waits for a packet before giving up.
    deadline_us: u64,
}

/// A fresh host descriptor: a memfd, so that packetdrill's final host close(2) of
/// script sockets is harmless, and with an inode of its own, so that `free` can
/// tell whether a number still names our descriptor before closing it.
fn host_fd() -> Result<HostFd, Errno> {
    // SAFETY: FFI call with a valid NUL-terminated name; the result is checked.
    let raw = unsafe { libc::memfd_create(c"berth-socket".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(last_errno());
    }
    // SAFETY: `raw` is a descriptor we just opened and own exclusively.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ino = inode(raw).ok_or(libc::EIO)?;
    Ok(HostFd { fd, ino })
}

fn inode(fd: i32) -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: FFI call writing into a properly sized stat buffer.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    // SAFETY: fstat succeeded, so it initialised the buffer.
    (r == 0).then(|| unsafe { st.assume_init() }.st_ino)
}

fn last_errno() -> Errno {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The errno of a berth error (berth errors carry Linux errno values).
fn errno_of(e: &io::Error) -> Errno {
    // berth's own errno first: EALREADY and EINPROGRESS share WouldBlock's kind.
    if let Some(n) = berth_core::errno(e).or(e.raw_os_error()) {
        return n;
    }
    if e.kind() == io::ErrorKind::WouldBlock {
        return libc::EAGAIN;
    }
    libc::EINVAL
}

/// An address given to a socket of family `v6` (AF_INET6) or not, as Linux
/// takes it: each family wants its own sockaddr (EAFNOSUPPORT otherwise).
fn address_for(v6: bool, a: SocketAddr) -> Result<SocketAddr, Errno> {
    match (v6, a) {
        (false, SocketAddr::V4(_)) | (true, SocketAddr::V6(_)) => Ok(a),
        _ => Err(libc::EAFNOSUPPORT),
    }
}

/// An address as a socket of family `v6` reports it: an AF_INET6 socket names
/// an IPv4 peer by its IPv4-mapped address (`::ffff:192.0.2.1`), an AF_INET
/// socket only ever sees IPv4.
fn name_for(v6: bool, a: SocketAddr) -> SocketAddr {
    match (v6, a) {
        (true, SocketAddr::V4(a)) => {
            SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0).into()
        }
        (false, SocketAddr::V6(a)) => match a.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddrV4::new(ip, a.port()).into(),
            None => a.into(),
        },
        _ => a,
    }
}

impl Instance {
    pub fn new(o: &Options) -> Result<Instance, String> {
        let mut cfg = Config {
            seed: Some(o.seed),
            ..Config::default()
        };
        cfg.tcp = if o.linux {
            berth_core::TcpConfig::linux()
        } else {
            berth_core::TcpConfig::default()
        };
        if let Some(ws) = o.wscale {
            cfg.tcp.window_scale = Some(ws);
        }
        let mut stack = Stack::new(cfg);
        // The interface's one IPv4 address: packetdrill's in ipv4 and
        // ipv4-mapped-ipv6 modes; in ipv6 mode IPv4 is unused and it keeps the
        // IPv4 default.
        let (v4, v4_prefix) = match o.local {
            IpAddr::V4(a) => (a, o.prefix),
            IpAddr::V6(_) => (V4_LOCAL, V4_PREFIX),
        };
        let address = Ipv4Cidr::new(v4, v4_prefix)
            .ok_or_else(|| format!("prefix /{v4_prefix} is not a valid IPv4 prefix length"))?;
        let iface = stack
            .add_interface(IfaceConfig {
                medium: Medium::Ip,
                address,
                mtu: o.mtu,
            })
            .map_err(|e| format!("cannot add the interface {address}: {e}"))?;
        if let IpAddr::V6(a) = o.local {
            let c = Ipv6Cidr::new(a, o.prefix)
                .ok_or_else(|| format!("prefix /{} is not a valid IPv6 prefix length", o.prefix))?;
            // An IP link has no DAD: the address is usable at once, as on a TUN.
            stack
                .add_address(Instant::from_micros(0), iface, c)
                .map_err(|e| format!("cannot add the address {c}: {e}"))?;
        }
        stack
            .set_default_gateway(o.gateway)
            .map_err(|e| format!("gateway {}: {e}", o.gateway))?;
        Ok(Instance {
            inner: Mutex::new(Inner {
                stack,
                iface,
                now: 0,
                out: VecDeque::new(),
                fds: HashMap::new(),
            }),
            cv: Condvar::new(),
            deadline_us: o.deadline_secs.saturating_mul(1_000_000),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic inside a call is caught at the C boundary; the stack is still
        // consistent between core calls, so go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleep until something changes. The timeout only bounds a lost wake-up.
    fn wait<'a>(&self, g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        match self.cv.wait_timeout(g, StdDuration::from_millis(200)) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Run one blocking operation: try it; while it would block and the socket
    /// blocks, sleep until the stack changes and try again.
    fn blocking<T>(
        &self,
        fd: i32,
        dontwait: bool,
        mut op: impl FnMut(&mut Inner) -> Result<Option<T>, Errno>,
    ) -> Result<T, Errno> {
        let mut g = self.lock();
        loop {
            let nonblock = match g.fds.get(&fd) {
                Some(Fd::Sock(s)) => s.nonblock || dontwait,
                Some(Fd::Epoll(_)) => return Err(libc::EINVAL),
                None => return Err(libc::EBADF),
            };
            let r = op(&mut g);
            g.flush();
            match r {
                Ok(Some(v)) => {
                    self.cv.notify_all();
                    return Ok(v);
                }
                Err(e) => {
                    self.cv.notify_all();
                    return Err(e);
                }
                Ok(None) if nonblock => return Err(libc::EAGAIN),
                // Nothing changed: wake no one, or two blocked threads would wake
                // each other forever (and look busy to packetdrill).
                Ok(None) => g = self.wait(g),
            }
        }
    }

    // ---- clock and packets ---------------------------------------------------------

    pub fn gettimeofday(&self) -> u64 {
        let mut g = self.lock();
        let t = g.now;
        // packetdrill spins on gettimeofday while it waits: the clock must move.
        g.advance_to(t + 1);
        self.cv.notify_all();
        EPOCH_US + t
    }

    pub fn usleep(&self, us: u64) {
        let mut g = self.lock();
        let to = g.now + us;
        g.advance_to(to);
        self.cv.notify_all();
    }

    pub fn netdev_send(&self, pkt: &[u8]) {
        let mut g = self.lock();
        let (now, iface) = (Instant::from_micros(g.now), g.iface);
        // Malformed packets are dropped and counted by the stack.
        g.stack.receive(now, iface, pkt);
        g.flush();
        self.cv.notify_all();
    }

    /// The next packet berth sent and its virtual send time (EPOCH-based µs).
    /// While none is queued, the clock jumps to the stack's next timer.
    pub fn netdev_receive(&self) -> Result<(Vec<u8>, u64), String> {
        let mut g = self.lock();
        let start = g.now;
        loop {
            if let Some((p, t)) = g.out.pop_front() {
                return Ok((p, EPOCH_US + t));
            }
            let next = g.stack.poll_timeout().map(|t| t.total_micros());
            match next {
                Some(t) if t.saturating_sub(start) <= self.deadline_us => {
                    let to = t.max(g.now);
                    g.advance_to(to);
                    self.cv.notify_all();
                }
                _ => {
                    let why = match next {
                        Some(t) => format!(
                            "its next timer is {:.3} s away, beyond the deadline",
                            (t - start) as f64 / 1e6
                        ),
                        None => "no timer is pending, so nothing will ever be sent".into(),
                    };
                    return Err(format!(
                        "berth-packetdrill: the script expects a packet but berth sent none \
                         within {} s of virtual time ({why}); check the script's expectations \
                         or raise deadline= in --so_flags",
                        self.deadline_us / 1_000_000
                    ));
                }
            }
        }
    }

    // ---- descriptors -----------------------------------------------------------------

    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<i32, Errno> {
        let v6 = match domain {
            AF_INET => false,
            AF_INET6 => true,
            _ => return Err(libc::EAFNOSUPPORT),
        };
        let nonblock = ty & SOCK_NONBLOCK != 0;
        let kind = match (ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC), protocol) {
            (SOCK_STREAM, 0 | IPPROTO_TCP) => Kind::Tcp,
            (SOCK_DGRAM, 0 | IPPROTO_UDP) => Kind::Udp,
            (SOCK_STREAM | SOCK_DGRAM, _) => return Err(libc::EPROTONOSUPPORT),
            _ => return Err(libc::ESOCKTNOSUPPORT),
        };
        let host = host_fd()?;
        let fd = host.fd.as_raw_fd();
        let mut g = self.lock();
        let h = match (kind, v6) {
            (Kind::Tcp, false) => g.stack.tcp_socket(),
            (Kind::Tcp, true) => g.stack.tcp_socket_v6(),
            (Kind::Udp, false) => g.stack.udp_socket(),
            (Kind::Udp, true) => g.stack.udp_socket_v6(),
        };
        g.fds.insert(
            fd,
            Fd::Sock(Sock {
                h,
                kind,
                v6,
                nonblock,
                keepalive: false,
                _host: host,
            }),
        );
        Ok(fd)
    }

    fn with_sock<T>(
        &self,
        fd: i32,
        f: impl FnOnce(&mut Inner, SocketHandle, Kind) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let mut g = self.lock();
        let (h, kind) = g.sock_kind(fd)?;
        let r = f(&mut g, h, kind);
        g.flush();
        self.cv.notify_all();
        r
    }

    pub fn bind(&self, fd: i32, addr: SocketAddr) -> Result<(), Errno> {
        let addr = address_for(self.is_v6(fd)?, addr)?;
        self.with_sock(fd, |g, h, k| {
            match k {
                Kind::Tcp => g.stack.tcp_bind(h, addr),
                Kind::Udp => g.stack.udp_bind(h, addr),
            }
            .map(|_| ())
            .map_err(|e| errno_of(&e))
        })
    }

    pub fn listen(&self, fd: i32, backlog: i32) -> Result<(), Errno> {
        self.with_sock(fd, |g, h, k| match k {
            Kind::Udp => Err(libc::EOPNOTSUPP),
            // Linux: a negative backlog means SOMAXCONN.
            Kind::Tcp => {
                let b = if backlog < 0 {
                    usize::MAX
                } else {
                    backlog as usize
                };
                g.stack.tcp_listen(h, b).map_err(|e| errno_of(&e))
            }
        })
    }

    pub fn accept(&self, fd: i32) -> Result<(i32, SocketAddr), Errno> {
        let v6 = self.is_v6(fd)?;
        let host = host_fd()?;
        let (child, peer) = self.blocking(fd, false, |g| {
            let h = g.sock(fd)?;
            match g.stack.tcp_accept(h) {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(errno_of(&e)),
            }
        })?;
        let nfd = host.fd.as_raw_fd();
        self.lock().fds.insert(
            nfd,
            Fd::Sock(Sock {
                h: child,
                kind: Kind::Tcp,
                v6,
                nonblock: false,
                keepalive: false,
                _host: host,
            }),
        );
        Ok((nfd, name_for(v6, peer)))
    }

    pub fn connect(&self, fd: i32, addr: SocketAddr) -> Result<(), Errno> {
        let addr = address_for(self.is_v6(fd)?, addr)?;
        let is_tcp = self.with_sock(fd, |g, h, k| match k {
            Kind::Udp => g
                .stack
                .udp_connect(h, addr)
                .map(|_| false)
                .map_err(|e| errno_of(&e)),
            Kind::Tcp => {
                let now = Instant::from_micros(g.now);
                g.stack
                    .tcp_connect(now, h, addr)
                    .map(|_| true)
                    .map_err(|e| errno_of(&e))
            }
        })?;
        if !is_tcp {
            return Ok(());
        }
        if self.is_nonblocking(fd)? {
            return Err(libc::EINPROGRESS);
        }
        self.blocking(fd, false, |g| {
            let h = g.sock(fd)?;
            if let Some(e) = g.stack.tcp_take_error(h).map_err(|e| errno_of(&e))? {
                return Err(errno_of(&e));
            }
            match g.stack.tcp_state(h).map_err(|e| errno_of(&e))? {
                TcpState::SynSent | TcpState::SynReceived => Ok(None),
                TcpState::Closed => Err(libc::ECONNREFUSED),
                _ => Ok(Some(())),
            }
        })
    }

    /// Whether `fd` is an AF_INET6 socket.
    fn is_v6(&self, fd: i32) -> Result<bool, Errno> {
        match self.lock().fds.get(&fd) {
            Some(Fd::Sock(s)) => Ok(s.v6),
            Some(Fd::Epoll(_)) => Err(libc::ENOTSOCK),
            None => Err(libc::EBADF),
        }
    }

    fn is_nonblocking(&self, fd: i32) -> Result<bool, Errno> {
        match self.lock().fds.get(&fd) {
            Some(Fd::Sock(s)) => Ok(s.nonblock),
            Some(Fd::Epoll(_)) => Ok(false),
            None => Err(libc::EBADF),
        }
    }

    /// recv/read/recvfrom/recvmsg: bytes read into `buf` and, for UDP, the sender.
    pub fn recv(
        &self,
        fd: i32,
        buf: &mut [u8],
        flags: i32,
    ) -> Result<(usize, Option<SocketAddr>), Errno> {
        if flags & !(MSG_DONTWAIT | MSG_PEEK | MSG_NOSIGNAL) != 0 {
            return Err(libc::EINVAL);
        }
        let peek = flags & MSG_PEEK != 0;
        let v6 = self.is_v6(fd)?;
        let (n, from) = self.blocking(fd, flags & MSG_DONTWAIT != 0, |g| {
            let (h, kind) = g.sock_kind(fd)?;
            let tcp = kind == Kind::Tcp;
            let now = Instant::from_micros(g.now);
            let r = if tcp {
                if peek {
                    g.stack.tcp_peek(h, buf).map(|n| (n, None))
                } else {
                    g.stack.tcp_recv(now, h, buf).map(|n| (n, None))
                }
            } else if peek {
                g.stack
                    .udp_peek_from(h, buf)
                    .map(|(n, from)| (n, Some(from)))
            } else {
                g.stack
                    .udp_recv_from(h, buf)
                    .map(|(n, from)| (n, Some(from)))
            };
            match r {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(errno_of(&e)),
            }
        })?;
        Ok((n, from.map(|a| name_for(v6, a))))
    }

    /// send/write/sendto/sendmsg. A blocking TCP send queues everything, waiting
    /// for room as Linux does; a non-blocking one queues what fits.
    pub fn send(
        &self,
        fd: i32,
        data: &[u8],
        flags: i32,
        to: Option<SocketAddr>,
    ) -> Result<usize, Errno> {
        if flags & !(MSG_DONTWAIT | MSG_NOSIGNAL) != 0 {
            return Err(libc::EINVAL);
        }
        let dontwait = flags & MSG_DONTWAIT != 0;
        let v6 = self.is_v6(fd)?;
        // An AF_INET6 UDP socket may be given an AF_INET destination: Linux
        // sends it as IPv4 (udpv6_sendmsg), which is its mapped address here.
        let to = match to {
            Some(a) if v6 => Some(name_for(true, a)),
            Some(a) => Some(address_for(false, a)?),
            None => None,
        };
        let mut sent = 0usize;
        let r = self.blocking(fd, dontwait, |g| {
            let (h, kind) = g.sock_kind(fd)?;
            let tcp = kind == Kind::Tcp;
            let now = Instant::from_micros(g.now);
            if !tcp {
                let r = match to {
                    Some(dst) => g.stack.udp_send_to(now, h, data, dst),
                    None => g.stack.udp_send(now, h, data),
                };
                return r.map(Some).map_err(|e| errno_of(&e));
            }
            if to.is_some() {
                return Err(libc::EISCONN);
            }
            loop {
                if sent == data.len() {
                    return Ok(Some(sent));
                }
                match g.stack.tcp_send(now, h, &data[sent..]) {
                    Ok(0) => return Ok(None),
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    // Part went out before the error: report that part now; the
                    // error shows on the next call, as on Linux.
                    Err(_) if sent > 0 => return Ok(Some(sent)),
                    Err(e) => return Err(errno_of(&e)),
                }
            }
        });
        match r {
            Err(libc::EAGAIN) if sent > 0 => Ok(sent),
            other => other,
        }
    }

    pub fn close(&self, fd: i32) -> Result<(), Errno> {
        let mut g = self.lock();
        let entry = g.fds.remove(&fd).ok_or(libc::EBADF)?;
        if let Fd::Sock(s) = &entry {
            let now = Instant::from_micros(g.now);
            let _ = g.stack.close_at(now, s.h);
        }
        // Forget the descriptor in every epoll set, as the kernel does on close.
        for f in g.fds.values_mut() {
            if let Fd::Epoll(e) = f {
                e.interest.remove(&fd);
            }
        }
        g.flush();
        self.cv.notify_all();
        drop(g);
        drop(entry); // closes the host descriptor
        Ok(())
    }

    pub fn shutdown(&self, fd: i32, how: i32) -> Result<(), Errno> {
        let how = match how {
            SHUT_RD => Shutdown::Read,
            SHUT_WR => Shutdown::Write,
            SHUT_RDWR => Shutdown::Both,
            _ => return Err(libc::EINVAL),
        };
        self.with_sock(fd, |g, h, k| match k {
            Kind::Udp => Err(libc::ENOTCONN),
            Kind::Tcp => {
                let now = Instant::from_micros(g.now);
                g.stack.tcp_shutdown(now, h, how).map_err(|e| errno_of(&e))
            }
        })
    }

    pub fn fcntl(&self, fd: i32, cmd: i32, arg: u64) -> Result<i32, Errno> {
        let mut g = self.lock();
        let s = match g.fds.get_mut(&fd) {
            Some(Fd::Sock(s)) => s,
            Some(Fd::Epoll(_)) => return Err(libc::EINVAL),
            None => return Err(libc::EBADF),
        };
        match cmd {
            F_GETFL => Ok(O_RDWR | if s.nonblock { O_NONBLOCK } else { 0 }),
            F_SETFL => {
                s.nonblock = arg as i32 & O_NONBLOCK != 0;
                Ok(0)
            }
            // Descriptors are close-on-exec; there is no exec in a script.
            F_GETFD => Ok(libc::FD_CLOEXEC),
            F_SETFD => Ok(0),
            _ => Err(libc::EINVAL),
        }
    }

    /// FIONREAD/SIOCINQ, SIOCOUTQ; FIONBIO sets non-blocking mode from `arg`.
    pub fn ioctl(&self, fd: i32, request: u64, arg: Option<i32>) -> Result<i32, Errno> {
        if request == FIONBIO {
            let on = arg.ok_or(libc::EFAULT)? != 0;
            return match self.lock().fds.get_mut(&fd) {
                Some(Fd::Sock(s)) => {
                    s.nonblock = on;
                    Ok(0)
                }
                Some(Fd::Epoll(_)) => Err(libc::ENOTTY),
                None => Err(libc::EBADF),
            };
        }
        self.with_sock(fd, |g, h, k| {
            let n = match (request, k) {
                (FIONREAD, Kind::Tcp) => g.stack.tcp_recv_queue(h),
                (SIOCOUTQ, Kind::Tcp) => g.stack.tcp_send_queue(h),
                (FIONREAD, Kind::Udp) => g.stack.udp_next_len(h).map(|n| n.unwrap_or(0)),
                _ => return Err(libc::EINVAL),
            };
            let n = n.map_err(|e| errno_of(&e))?;
            Ok(n.min(i32::MAX as usize) as i32)
        })
    }

    pub fn getsockopt(&self, fd: i32, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let int = |v: i64| {
            (v.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                .to_ne_bytes()
                .to_vec()
        };
        self.with_sock(fd, |g, h, k| {
            let tcp = k == Kind::Tcp;
            let e = |e: io::Error| errno_of(&e);
            match (level, name) {
                (SOL_SOCKET, SO_ERROR) => {
                    let err = if tcp {
                        g.stack.tcp_take_error(h).map_err(e)?.map(|x| errno_of(&x))
                    } else {
                        None
                    };
                    Ok(int(err.unwrap_or(0) as i64))
                }
                (SOL_SOCKET, SO_TYPE) => Ok(int(if tcp { 1 } else { 2 })),
                // Linux (ipv6_getsockopt): IPv6 options on an AF_INET socket
                // are ENOPROTOOPT; the core says so for IPV6_V6ONLY.
                (IPPROTO_IPV6, IPV6_V6ONLY) => {
                    let on = if tcp {
                        g.stack.tcp_only_v6(h)
                    } else {
                        g.stack.udp_only_v6(h)
                    };
                    let v6 = matches!(g.fds.get(&fd), Some(Fd::Sock(s)) if s.v6);
                    if !v6 {
                        return Err(libc::ENOPROTOOPT);
                    }
                    Ok(int(on.map_err(e)? as i64))
                }
                (SOL_SOCKET, SO_RCVBUF) if tcp => {
                    Ok(int(g.stack.tcp_buffers(h).map_err(e)?.0 as i64))
                }
                (SOL_SOCKET, SO_SNDBUF) if tcp => {
                    Ok(int(g.stack.tcp_buffers(h).map_err(e)?.1 as i64))
                }
                (IPPROTO_TCP, TCP_NODELAY) if tcp => {
                    Ok(int(g.stack.tcp_nodelay(h).map_err(e)? as i64))
                }
                (IPPROTO_TCP, TCP_MAXSEG) if tcp => {
                    Ok(int(g.stack.tcp_maxseg(h).map_err(e)? as i64))
                }
                (IPPROTO_TCP, TCP_CONGESTION) if tcp => {
                    // A NUL-padded name, as Linux returns it (TCP_CA_NAME_MAX 16).
                    let mut v = g
                        .stack
                        .tcp_congestion(h)
                        .map_err(e)?
                        .name()
                        .as_bytes()
                        .to_vec();
                    v.resize(16, 0);
                    Ok(v)
                }
                (IPPROTO_TCP, TCP_INFO) if tcp => {
                    let state = g.stack.tcp_state(h).map_err(e)?;
                    let info = g.stack.tcp_info(h).map_err(e)?;
                    Ok(tcp_info_bytes(state, &info))
                }
                _ => Err(libc::EINVAL),
            }
        })
    }

    pub fn setsockopt(&self, fd: i32, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let int = || -> Result<i32, Errno> {
            let b: [u8; 4] = val
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(libc::EINVAL)?;
            Ok(i32::from_ne_bytes(b))
        };
        let mut g = self.lock();
        let now = Instant::from_micros(g.now);
        let (h, kind) = g.sock_kind(fd)?;
        let tcp = kind == Kind::Tcp;
        let secs = |v: i32| -> Result<berth_core::Duration, Errno> {
            if v <= 0 {
                return Err(libc::EINVAL);
            }
            Ok(berth_core::Duration::from_secs(v as u64))
        };
        let r: io::Result<()> = match (level, name, tcp) {
            (SOL_SOCKET, SO_REUSEADDR, true) => g.stack.tcp_set_reuse_addr(h, int()? != 0),
            (SOL_SOCKET, SO_REUSEADDR, false) => g.stack.udp_set_reuse_addr(h, int()? != 0),
            (SOL_SOCKET, SO_RCVBUF, true) => {
                g.stack
                    .tcp_set_buffers(h, Some(int()?.max(0) as usize), None)
            }
            (SOL_SOCKET, SO_SNDBUF, true) => {
                g.stack
                    .tcp_set_buffers(h, None, Some(int()?.max(0) as usize))
            }
            (SOL_SOCKET, SO_RCVBUF, false) => {
                g.stack.udp_set_recv_buffer(h, int()?.max(0) as usize)
            }
            (SOL_SOCKET, SO_LINGER, true) => {
                let b: [u8; 8] = val
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(libc::EINVAL)?;
                let on = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                let secs = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]).max(0);
                g.stack.tcp_set_linger(
                    h,
                    (on != 0).then(|| berth_core::Duration::from_secs(secs as u64)),
                )
            }
            (SOL_SOCKET, SO_KEEPALIVE, true) => {
                let on = int()? != 0;
                if let Some(Fd::Sock(s)) = g.fds.get_mut(&fd) {
                    s.keepalive = on;
                }
                g.stack.tcp_set_keepalive(now, h, on, None, None, None)
            }
            (IPPROTO_TCP, TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT, true) => {
                let v = int()?;
                let on = matches!(g.fds.get(&fd), Some(Fd::Sock(s)) if s.keepalive);
                let (idle, intvl, cnt) = match name {
                    TCP_KEEPIDLE => (Some(secs(v)?), None, None),
                    TCP_KEEPINTVL => (None, Some(secs(v)?), None),
                    _ => (
                        None,
                        None,
                        Some(u32::try_from(v).map_err(|_| libc::EINVAL)?),
                    ),
                };
                g.stack.tcp_set_keepalive(now, h, on, idle, intvl, cnt)
            }
            (IPPROTO_TCP, TCP_NODELAY, true) => g.stack.tcp_set_nodelay(now, h, int()? != 0),
            (IPPROTO_TCP, TCP_CONGESTION, true) => {
                // The name up to the first NUL (Linux copies at most 16 bytes).
                let raw = &val[..val.len().min(16)];
                let name = raw.split(|&b| b == 0).next().unwrap_or(&[]);
                let name = std::str::from_utf8(name).map_err(|_| libc::ENOENT)?;
                g.stack.tcp_set_congestion_name(h, name)
            }
            (IPPROTO_IPV6, IPV6_V6ONLY, _) => {
                let v6 = matches!(g.fds.get(&fd), Some(Fd::Sock(s)) if s.v6);
                if !v6 {
                    return Err(libc::ENOPROTOOPT);
                }
                let on = int()? != 0;
                if tcp {
                    g.stack.tcp_set_only_v6(h, on)
                } else {
                    g.stack.udp_set_only_v6(h, on)
                }
            }
            (IPPROTO_TCP, TCP_MAXSEG, true) => {
                let v = u16::try_from(int()?).map_err(|_| libc::EINVAL)?;
                g.stack.tcp_set_maxseg(h, v)
            }
            _ => return Err(libc::EINVAL),
        };
        g.flush();
        self.cv.notify_all();
        r.map_err(|e| errno_of(&e))
    }

    // ---- poll and epoll --------------------------------------------------------------

    /// Wait until `check` finds something ready or `timeout_ms` of virtual time
    /// pass (negative: no limit; 0: just check).
    fn wait_ready<T>(
        &self,
        timeout_ms: i32,
        mut check: impl FnMut(&mut Inner) -> Result<Option<T>, Errno>,
        empty: T,
    ) -> Result<T, Errno> {
        let mut g = self.lock();
        let until = (timeout_ms >= 0).then(|| g.now + timeout_ms as u64 * 1000);
        loop {
            if let Some(v) = check(&mut g)? {
                return Ok(v);
            }
            if until.is_some_and(|u| g.now >= u) {
                return Ok(empty);
            }
            g = self.wait(g);
        }
    }

    /// poll(2) over `fds`: (fd, events) → revents, in place.
    pub fn poll(&self, fds: &mut [(i32, u32, u32)], timeout_ms: i32) -> Result<i32, Errno> {
        self.wait_ready(
            timeout_ms,
            |g| {
                let mut n = 0;
                for (fd, events, revents) in fds.iter_mut() {
                    *revents = if *fd < 0 {
                        0
                    } else {
                        match g.events_of(*fd) {
                            Some(m) => m & (*events | POLLERR | POLLHUP),
                            None => POLLNVAL,
                        }
                    };
                    n += (*revents != 0) as i32;
                }
                Ok((n > 0).then_some(n))
            },
            0,
        )
    }

    pub fn epoll_create(&self, size: i32) -> Result<i32, Errno> {
        if size <= 0 {
            return Err(libc::EINVAL);
        }
        let host = host_fd()?;
        let fd = host.fd.as_raw_fd();
        self.lock().fds.insert(
            fd,
            Fd::Epoll(Epoll {
                interest: BTreeMap::new(),
                _host: host,
            }),
        );
        Ok(fd)
    }

    pub fn epoll_ctl(
        &self,
        epfd: i32,
        op: i32,
        fd: i32,
        ev: Option<(u32, u64)>,
    ) -> Result<(), Errno> {
        let mut g = self.lock();
        if !g.fds.contains_key(&fd) {
            return Err(libc::EBADF);
        }
        if fd == epfd {
            return Err(libc::EINVAL);
        }
        let ep = match g.fds.get_mut(&epfd) {
            Some(Fd::Epoll(e)) => e,
            Some(Fd::Sock(_)) => return Err(libc::EINVAL),
            None => return Err(libc::EBADF),
        };
        match op {
            EPOLL_CTL_ADD => {
                if ep.interest.contains_key(&fd) {
                    return Err(libc::EEXIST);
                }
                ep.interest.insert(fd, ev.ok_or(libc::EFAULT)?);
            }
            EPOLL_CTL_MOD => {
                let slot = ep.interest.get_mut(&fd).ok_or(libc::ENOENT)?;
                *slot = ev.ok_or(libc::EFAULT)?;
            }
            EPOLL_CTL_DEL => {
                ep.interest.remove(&fd).ok_or(libc::ENOENT)?;
            }
            _ => return Err(libc::EINVAL),
        }
        drop(g);
        self.cv.notify_all();
        Ok(())
    }

    /// Level-triggered epoll_wait: up to `max` (events, data) pairs.
    pub fn epoll_wait(
        &self,
        epfd: i32,
        max: usize,
        timeout_ms: i32,
    ) -> Result<Vec<(u32, u64)>, Errno> {
        if max == 0 {
            return Err(libc::EINVAL);
        }
        match self.lock().fds.get(&epfd) {
            Some(Fd::Epoll(_)) => {}
            Some(Fd::Sock(_)) => return Err(libc::EINVAL),
            None => return Err(libc::EBADF),
        }
        self.wait_ready(
            timeout_ms,
            |g| {
                let interest: Vec<(i32, u32, u64)> = match g.fds.get(&epfd) {
                    Some(Fd::Epoll(e)) => {
                        e.interest.iter().map(|(&f, &(ev, d))| (f, ev, d)).collect()
                    }
                    _ => return Err(libc::EBADF),
                };
                let ready: Vec<(u32, u64)> = interest
                    .into_iter()
                    .filter_map(|(fd, ev, data)| {
                        let m = g.events_of(fd)? & (ev | POLLERR | POLLHUP);
                        (m != 0).then_some((m, data))
                    })
                    .take(max)
                    .collect();
                Ok((!ready.is_empty()).then_some(ready))
            },
            Vec::new(),
        )
    }

    /// Close the host descriptors packetdrill has not closed itself: a number is
    /// ours only while it still names the same memfd inode.
    pub fn release(self) {
        let mut g = self.lock();
        let fds: Vec<(i32, Fd)> = g.fds.drain().collect();
        drop(g);
        for (fd, f) in fds {
            let host = match f {
                Fd::Sock(s) => s._host,
                Fd::Epoll(e) => e._host,
            };
            if inode(fd) == Some(host.ino) {
                drop(host.fd);
            } else {
                // packetdrill closed it (and the number may be reused): not ours.
                std::mem::forget(host.fd);
            }
        }
    }
}

impl Inner {
    /// Move everything the stack wants to send into the outbound queue.
    fn flush(&mut self) {
        let now = Instant::from_micros(self.now);
        while let Some(t) = self.stack.poll_transmit(now) {
            self.out.push_back((t.frame, self.now));
        }
        while self.stack.poll_event().is_some() {}
    }

    /// Advance the virtual clock to `t`, firing every timer due on the way at its
    /// own time (so a retransmission is stamped when its timer fired).
    fn advance_to(&mut self, t: u64) {
        while let Some(d) = self.stack.poll_timeout().map(|d| d.total_micros()) {
            if d > t {
                break;
            }
            self.now = self.now.max(d);
            self.stack.handle_timeout(Instant::from_micros(self.now));
            self.flush();
        }
        self.now = self.now.max(t);
        self.flush();
    }

    fn sock(&self, fd: i32) -> Result<SocketHandle, Errno> {
        self.sock_kind(fd).map(|(h, _)| h)
    }

    fn sock_kind(&self, fd: i32) -> Result<(SocketHandle, Kind), Errno> {
        match self.fds.get(&fd) {
            Some(Fd::Sock(s)) => Ok((s.h, s.kind)),
            Some(Fd::Epoll(_)) => Err(libc::ENOTSOCK),
            None => Err(libc::EBADF),
        }
    }

    /// poll/epoll mask of `fd`, as Linux's tcp_poll / datagram_poll compute it;
    /// `None` for an unknown descriptor.
    fn events_of(&self, fd: i32) -> Option<u32> {
        let (h, kind) = self.sock_kind(fd).ok()?;
        let tcp = kind == Kind::Tcp;
        let r: Readiness = self.stack.readiness(h).ok()?;
        let mut m = 0;
        if r.readable {
            m |= POLLIN | POLLRDNORM;
        }
        if r.writable {
            m |= POLLOUT | POLLWRNORM;
        }
        if r.error {
            m |= POLLERR;
        }
        if tcp && r.hup {
            // Linux: RDHUP once the peer's FIN is in; HUP once both directions
            // are shut (or the connection is gone).
            m |= POLLRDHUP | POLLIN | POLLRDNORM;
            let state = self.stack.tcp_state(h).ok()?;
            if matches!(
                state,
                TcpState::Closed | TcpState::TimeWait | TcpState::LastAck | TcpState::Closing
            ) {
                m |= POLLHUP;
            }
        }
        Some(m)
    }
}

/// Linux `struct tcp_info` bytes for berth's view of a connection.
fn tcp_info_bytes(state: TcpState, i: &berth_core::TcpInfo) -> Vec<u8> {
    let mss = i.snd_mss.max(1);
    let c = |v: u64| v.min(u32::MAX as u64) as u32;
    let mut t = TcpInfo {
        state: linux_state(state),
        retransmits: i.retransmits.min(255) as u8,
        options: (i.timestamps as u8) | (i.window_scaling as u8) << 2,
        wscale: (i.snd_wscale & 0xf) | (i.rcv_wscale & 0xf) << 4,
        rto: c(i.rto_us),
        snd_mss: c(i.snd_mss as u64),
        rcv_mss: c(i.rcv_mss as u64),
        rtt: c(i.rtt_us),
        rttvar: c(i.rttvar_us),
        // Linux counts cwnd and ssthresh in segments; "infinite" is 0x7fffffff.
        snd_ssthresh: i.ssthresh.map_or(0x7fff_ffff, |s| c((s / mss) as u64)),
        snd_cwnd: c((i.snd_cwnd_bytes / mss) as u64),
        advmss: c(i.rcv_mss as u64),
        total_retrans: c(i.total_retrans),
        bytes_acked: i.bytes_acked,
        bytes_received: i.bytes_received,
        segs_out: c(i.segs_out),
        segs_in: c(i.segs_in),
        bytes_sent: i.bytes_sent,
        snd_wnd: c(i.snd_wnd as u64),
        rcv_wnd: c(i.rcv_wnd as u64),
        pacing_rate: i.pacing_rate,
        dsack_dups: c(i.dsack_dups),
        reord_seen: c(i.reord_seen),
        total_rto: i.rto_events.min(u16::MAX as u64) as u16,
        ..TcpInfo::default()
    };
    if state == TcpState::Listen {
        t.options = 0;
    }
    let p = &t as *const TcpInfo as *const u8;
    // SAFETY: TcpInfo is a plain repr(C) struct of integers; reading its bytes
    // (padding included, zeroed by Default) is defined.
    unsafe { std::slice::from_raw_parts(p, std::mem::size_of::<TcpInfo>()) }.to_vec()
}
