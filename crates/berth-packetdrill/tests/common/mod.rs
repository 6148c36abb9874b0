//! Shared by the loader and script tests: loading the cdylib the way packetdrill
//! does, calling through the interface table, building and parsing IPv4/TCP
//! packets, and running a call on a second thread that may block.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_longlong, c_uint, c_ulong, c_void, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use libc::{
    epoll_event, iovec, msghdr, nfds_t, off_t, pollfd, size_t, sockaddr, socklen_t, ssize_t,
    timeval, useconds_t,
};
use libloading::Library;

type Ud = *mut c_void;

/// `struct packetdrill_interface` from packetdrill's so_testing.h: 33
/// pointer-sized fields in this exact order.
#[repr(C)]
pub struct Interface {
    pub userdata: Ud,
    pub free: Option<unsafe extern "C" fn(Ud)>,
    pub socket: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int) -> c_int>,
    pub bind: Option<unsafe extern "C" fn(Ud, c_int, *const sockaddr, socklen_t) -> c_int>,
    pub listen: Option<unsafe extern "C" fn(Ud, c_int, c_int) -> c_int>,
    pub accept: Option<unsafe extern "C" fn(Ud, c_int, *mut sockaddr, *mut socklen_t) -> c_int>,
    pub connect: Option<unsafe extern "C" fn(Ud, c_int, *const sockaddr, socklen_t) -> c_int>,
    pub read: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, size_t) -> ssize_t>,
    pub readv: Option<unsafe extern "C" fn(Ud, c_int, *const iovec, c_int) -> ssize_t>,
    pub recv: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, size_t, c_int) -> ssize_t>,
    pub recvfrom: Option<
        unsafe extern "C" fn(
            Ud,
            c_int,
            *mut c_void,
            size_t,
            c_int,
            *mut sockaddr,
            *mut socklen_t,
        ) -> ssize_t,
    >,
    pub recvmsg: Option<unsafe extern "C" fn(Ud, c_int, *mut msghdr, c_int) -> ssize_t>,
    pub write: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, size_t) -> ssize_t>,
    pub writev: Option<unsafe extern "C" fn(Ud, c_int, *const iovec, c_int) -> ssize_t>,
    pub send: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, size_t, c_int) -> ssize_t>,
    pub sendto: Option<
        unsafe extern "C" fn(
            Ud,
            c_int,
            *const c_void,
            size_t,
            c_int,
            *const sockaddr,
            socklen_t,
        ) -> ssize_t,
    >,
    pub sendmsg: Option<unsafe extern "C" fn(Ud, c_int, *const msghdr, c_int) -> ssize_t>,
    // Variadic in C; packetdrill always passes exactly one extra argument.
    pub fcntl: Option<unsafe extern "C" fn(Ud, c_int, c_int, usize) -> c_int>,
    pub ioctl: Option<unsafe extern "C" fn(Ud, c_int, c_ulong, usize) -> c_int>,
    pub close: Option<unsafe extern "C" fn(Ud, c_int) -> c_int>,
    pub shutdown: Option<unsafe extern "C" fn(Ud, c_int, c_int) -> c_int>,
    pub getsockopt:
        Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int>,
    pub setsockopt:
        Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *const c_void, socklen_t) -> c_int>,
    pub poll: Option<unsafe extern "C" fn(Ud, *mut pollfd, nfds_t, c_int) -> c_int>,
    pub netdev_send: Option<unsafe extern "C" fn(Ud, *const c_void, size_t) -> c_int>,
    pub netdev_receive:
        Option<unsafe extern "C" fn(Ud, *mut c_void, *mut size_t, *mut c_longlong) -> c_int>,
    pub usleep: Option<unsafe extern "C" fn(Ud, useconds_t) -> c_int>,
    pub gettimeofday: Option<unsafe extern "C" fn(Ud, *mut timeval, *mut c_void) -> c_int>,
    pub epoll_create: Option<unsafe extern "C" fn(Ud, c_int) -> c_int>,
    pub epoll_ctl: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *mut epoll_event) -> c_int>,
    pub epoll_wait:
        Option<unsafe extern "C" fn(Ud, c_int, *mut epoll_event, c_int, c_int) -> c_int>,
    pub pipe: Option<unsafe extern "C" fn(Ud, *mut c_int) -> c_int>,
    pub splice: Option<
        unsafe extern "C" fn(Ud, c_int, *mut off_t, c_int, *mut off_t, size_t, c_uint) -> ssize_t,
    >,
}

const _: () = assert!(std::mem::size_of::<Interface>() == 33 * std::mem::size_of::<usize>());

/// berth's address (packetdrill's default --local_ip) and packetdrill's side.
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

pub const FIONREAD: c_ulong = 0x541B;
pub const SIOCOUTQ: c_ulong = 0x5411;

/// A call's outcome: the value, or the errno that came with -1.
pub type Ret = Result<i64, i32>;

/// Where cargo put the cdylib: the test binary lives in target/<profile>/deps.
pub fn so_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let deps = exe.parent().expect("test binary has a parent directory");
    let name = "libberth_packetdrill.so";
    let candidates = [
        deps.join(name),
        deps.parent().map(|p| p.join(name)).unwrap_or_default(),
    ];
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "{name} not found in {} or its parent: build it with `cargo build -p berth-packetdrill` \
         (cargo test builds it as part of the package)",
        deps.display()
    );
}

/// One adapter instance: the loaded library and the table init filled in.
pub struct Drill {
    ifc: Interface,
    // Declared after `ifc` so the code stays mapped until free has run.
    _lib: Library,
}

// The adapter is built for packetdrill, which calls it from its main thread and
// its system-call thread at once; the userdata is the adapter's to synchronise.
unsafe impl Send for Drill {}
unsafe impl Sync for Drill {}

impl Drop for Drill {
    fn drop(&mut self) {
        if let Some(free) = self.ifc.free {
            unsafe { free(self.ifc.userdata) };
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ret(v: i64, what: &str) -> Ret {
    match v {
        -1 => Err(errno()),
        v if v < -1 => panic!("{what} returned {v}: only -1 or a non-negative value is allowed"),
        v => Ok(v),
    }
}

macro_rules! f {
    ($self:ident . $name:ident) => {
        $self.ifc.$name.expect(concat!(
            "packetdrill_interface_init left ",
            stringify!($name),
            " NULL"
        ))
    };
}

pub fn sockaddr_in(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// `a` as the `sockaddr_in` or `sockaddr_in6` of its family, and its length.
pub fn to_sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, socklen_t) {
    // SAFETY: sockaddr_storage is plain integers; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            let sa = sockaddr_in(*a.ip(), a.port());
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sa) };
            size_of_sin()
        }
        SocketAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sa) };
            std::mem::size_of::<libc::sockaddr_in6>() as socklen_t
        }
    };
    (ss, len)
}

/// The address in a `sockaddr_in` or `sockaddr_in6` the adapter filled in.
pub fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as c_int {
        libc::AF_INET => {
            // SAFETY: the storage holds an AF_INET address; it is large and aligned enough.
            let sa = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let (ip, port) = from_sockaddr_in(sa);
            Some(SocketAddrV4::new(ip, port).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the storage holds an AF_INET6 address; it is large and aligned enough.
            let sa = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(
                SocketAddrV6::new(
                    Ipv6Addr::from(sa.sin6_addr.s6_addr),
                    u16::from_be(sa.sin6_port),
                    u32::from_be(sa.sin6_flowinfo),
                    sa.sin6_scope_id,
                )
                .into(),
            )
        }
        _ => None,
    }
}

pub fn from_sockaddr_in(sa: &libc::sockaddr_in) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    )
}

impl Drill {
    /// dlopen the adapter and call `packetdrill_interface_init(flags, &ifc)` on a
    /// zeroed table, as packetdrill's so_testing.c does.
    pub fn load(flags: &str) -> Arc<Drill> {
        let path = so_path();
        let lib = unsafe { Library::new(&path) }
            .unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        let mut ifc: Interface = unsafe { std::mem::zeroed() };
        {
            let init: libloading::Symbol<unsafe extern "C" fn(*const c_char, *mut Interface)> =
                unsafe { lib.get(b"packetdrill_interface_init\0") }
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let cflags = CString::new(flags).expect("flags without NUL");
            unsafe { init(cflags.as_ptr(), &mut ifc) };
        }
        let d = Drill { ifc, _lib: lib };
        d.assert_complete();
        Arc::new(d)
    }

    fn assert_complete(&self) {
        let i = &self.ifc;
        let set = [
            ("free", i.free.is_some()),
            ("socket", i.socket.is_some()),
            ("bind", i.bind.is_some()),
            ("listen", i.listen.is_some()),
            ("accept", i.accept.is_some()),
            ("connect", i.connect.is_some()),
            ("read", i.read.is_some()),
            ("readv", i.readv.is_some()),
            ("recv", i.recv.is_some()),
            ("recvfrom", i.recvfrom.is_some()),
            ("recvmsg", i.recvmsg.is_some()),
            ("write", i.write.is_some()),
            ("writev", i.writev.is_some()),
            ("send", i.send.is_some()),
            ("sendto", i.sendto.is_some()),
            ("sendmsg", i.sendmsg.is_some()),
            ("fcntl", i.fcntl.is_some()),
            ("ioctl", i.ioctl.is_some()),
            ("close", i.close.is_some()),
            ("shutdown", i.shutdown.is_some()),
            ("getsockopt", i.getsockopt.is_some()),
            ("setsockopt", i.setsockopt.is_some()),
            ("poll", i.poll.is_some()),
            ("netdev_send", i.netdev_send.is_some()),
            ("netdev_receive", i.netdev_receive.is_some()),
            ("usleep", i.usleep.is_some()),
            ("gettimeofday", i.gettimeofday.is_some()),
            ("epoll_create", i.epoll_create.is_some()),
            ("epoll_ctl", i.epoll_ctl.is_some()),
            ("epoll_wait", i.epoll_wait.is_some()),
            ("pipe", i.pipe.is_some()),
            ("splice", i.splice.is_some()),
        ];
        let missing: Vec<&str> = set.iter().filter(|(_, s)| !s).map(|(n, _)| *n).collect();
        assert!(
            missing.is_empty(),
            "init left these entries NULL: {missing:?}"
        );
    }

    fn ud(&self) -> Ud {
        self.ifc.userdata
    }

    pub fn socket(&self, domain: c_int, ty: c_int, proto: c_int) -> Ret {
        ret(
            unsafe { f!(self.socket)(self.ud(), domain, ty, proto) } as i64,
            "socket",
        )
    }

    pub fn bind(&self, fd: i32, ip: Ipv4Addr, port: u16) -> Ret {
        let sa = sockaddr_in(ip, port);
        self.bind_raw(fd, &sa as *const _ as *const sockaddr, size_of_sin())
    }

    pub fn bind_raw(&self, fd: i32, sa: *const sockaddr, len: socklen_t) -> Ret {
        ret(
            unsafe { f!(self.bind)(self.ud(), fd, sa, len) } as i64,
            "bind",
        )
    }

    /// bind with a sockaddr of `a`'s family.
    pub fn bind_addr(&self, fd: i32, a: SocketAddr) -> Ret {
        let (ss, len) = to_sockaddr(a);
        self.bind_raw(fd, &ss as *const _ as *const sockaddr, len)
    }

    /// connect with a sockaddr of `a`'s family.
    pub fn connect_addr(&self, fd: i32, a: SocketAddr) -> Ret {
        let (ss, len) = to_sockaddr(a);
        // SAFETY: the adapter's connect with a sockaddr of `len` bytes.
        ret(
            unsafe { f!(self.connect)(self.ud(), fd, &ss as *const _ as *const sockaddr, len) }
                as i64,
            "connect",
        )
    }

    /// accept into a sockaddr_storage: the new descriptor, the peer address
    /// and the length the adapter reported.
    pub fn accept_addr(&self, fd: i32) -> Result<(i64, Option<SocketAddr>, socklen_t), i32> {
        // SAFETY: sockaddr_storage is plain integers; all-zero is a valid value.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
        // SAFETY: the adapter's accept with storage of `len` bytes.
        let r = ret(
            unsafe { f!(self.accept)(self.ud(), fd, &mut ss as *mut _ as *mut sockaddr, &mut len) }
                as i64,
            "accept",
        )?;
        Ok((r, from_sockaddr(&ss), len))
    }

    pub fn listen(&self, fd: i32, backlog: i32) -> Ret {
        ret(
            unsafe { f!(self.listen)(self.ud(), fd, backlog) } as i64,
            "listen",
        )
    }

    /// accept, returning the new descriptor and the peer address it filled in.
    pub fn accept(&self, fd: i32) -> Result<(i64, Ipv4Addr, u16, socklen_t), i32> {
        let mut sa = sockaddr_in(Ipv4Addr::UNSPECIFIED, 0);
        let mut len = size_of_sin();
        let r = ret(
            unsafe { f!(self.accept)(self.ud(), fd, &mut sa as *mut _ as *mut sockaddr, &mut len) }
                as i64,
            "accept",
        )?;
        let (ip, port) = from_sockaddr_in(&sa);
        Ok((r, ip, port, len))
    }

    pub fn connect(&self, fd: i32, ip: Ipv4Addr, port: u16) -> Ret {
        let sa = sockaddr_in(ip, port);
        ret(
            unsafe {
                f!(self.connect)(
                    self.ud(),
                    fd,
                    &sa as *const _ as *const sockaddr,
                    size_of_sin(),
                )
            } as i64,
            "connect",
        )
    }

    pub fn read(&self, fd: i32, buf: &mut [u8]) -> Ret {
        ret(
            unsafe { f!(self.read)(self.ud(), fd, buf.as_mut_ptr().cast(), buf.len()) } as i64,
            "read",
        )
    }

    pub fn recv(&self, fd: i32, buf: &mut [u8], flags: c_int) -> Ret {
        ret(
            unsafe { f!(self.recv)(self.ud(), fd, buf.as_mut_ptr().cast(), buf.len(), flags) }
                as i64,
            "recv",
        )
    }

    /// recvfrom on an AF_INET socket: the byte count and the source address.
    pub fn recvfrom(&self, fd: i32, buf: &mut [u8]) -> Result<(i64, Ipv4Addr, u16), i32> {
        match self.recvfrom_addr(fd, buf)? {
            (n, Some(SocketAddr::V4(a)), _) => Ok((n, *a.ip(), a.port())),
            (_, other, len) => panic!("recvfrom named {other:?} ({len} bytes), not IPv4"),
        }
    }

    /// recvfrom into a sockaddr_storage: the byte count, the sender and the
    /// address length the adapter reported.
    pub fn recvfrom_addr(
        &self,
        fd: i32,
        buf: &mut [u8],
    ) -> Result<(i64, Option<SocketAddr>, socklen_t), i32> {
        // SAFETY: sockaddr_storage is plain integers; all-zero is a valid value.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
        // SAFETY: the adapter's recvfrom with `buf` and storage of `len` bytes.
        let n = ret(
            unsafe {
                f!(self.recvfrom)(
                    self.ud(),
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    &mut ss as *mut _ as *mut sockaddr,
                    &mut len,
                )
            } as i64,
            "recvfrom",
        )?;
        Ok((n, from_sockaddr(&ss), len))
    }

    /// recvmsg with one iovec and a `namecap`-byte msg_name: the byte count,
    /// the name bytes written and the msg_namelen the adapter reported.
    pub fn recvmsg_name(
        &self,
        fd: i32,
        buf: &mut [u8],
        namecap: usize,
    ) -> Result<(i64, Vec<u8>, socklen_t), i32> {
        let mut name = vec![0xaau8; namecap];
        let mut iov = iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is pointers and integers; all-zero (null, 0) is valid.
        let mut m: msghdr = unsafe { std::mem::zeroed() };
        m.msg_name = name.as_mut_ptr().cast();
        m.msg_namelen = namecap as socklen_t;
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        // SAFETY: the adapter's recvmsg; `m` points at `iov` and `name`, alive here.
        let n = ret(
            unsafe { f!(self.recvmsg)(self.ud(), fd, &mut m, 0) } as i64,
            "recvmsg",
        )?;
        Ok((n, name, m.msg_namelen))
    }

    /// sendto with a sockaddr of `a`'s family.
    pub fn sendto_addr(&self, fd: i32, buf: &[u8], a: SocketAddr) -> Ret {
        let (ss, len) = to_sockaddr(a);
        // SAFETY: the adapter's sendto with `buf` and a sockaddr of `len` bytes.
        ret(
            unsafe {
                f!(self.sendto)(
                    self.ud(),
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    &ss as *const _ as *const sockaddr,
                    len,
                )
            } as i64,
            "sendto",
        )
    }

    pub fn sendto(&self, fd: i32, buf: &[u8], ip: Ipv4Addr, port: u16) -> Ret {
        self.sendto_addr(fd, buf, SocketAddrV4::new(ip, port).into())
    }

    pub fn write(&self, fd: i32, buf: &[u8]) -> Ret {
        ret(
            unsafe { f!(self.write)(self.ud(), fd, buf.as_ptr().cast(), buf.len()) } as i64,
            "write",
        )
    }

    pub fn send(&self, fd: i32, buf: &[u8], flags: c_int) -> Ret {
        ret(
            unsafe { f!(self.send)(self.ud(), fd, buf.as_ptr().cast(), buf.len(), flags) } as i64,
            "send",
        )
    }

    pub fn fcntl(&self, fd: i32, cmd: c_int, arg: usize) -> Ret {
        ret(
            unsafe { f!(self.fcntl)(self.ud(), fd, cmd, arg) } as i64,
            "fcntl",
        )
    }

    /// ioctl with an `int *` argument (FIONREAD, SIOCOUTQ); returns the int.
    pub fn ioctl_int(&self, fd: i32, req: c_ulong) -> Ret {
        let mut v: c_int = -12345;
        ret(
            unsafe { f!(self.ioctl)(self.ud(), fd, req, &mut v as *mut c_int as usize) } as i64,
            "ioctl",
        )?;
        Ok(v as i64)
    }

    pub fn close(&self, fd: i32) -> Ret {
        ret(unsafe { f!(self.close)(self.ud(), fd) } as i64, "close")
    }

    pub fn shutdown(&self, fd: i32, how: c_int) -> Ret {
        ret(
            unsafe { f!(self.shutdown)(self.ud(), fd, how) } as i64,
            "shutdown",
        )
    }

    /// getsockopt into a buffer of `cap` bytes; returns the bytes written.
    pub fn getsockopt(
        &self,
        fd: i32,
        level: c_int,
        name: c_int,
        cap: usize,
    ) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; cap];
        let mut len = cap as socklen_t;
        ret(
            unsafe {
                f!(self.getsockopt)(
                    self.ud(),
                    fd,
                    level,
                    name,
                    buf.as_mut_ptr().cast(),
                    &mut len,
                )
            } as i64,
            "getsockopt",
        )?;
        assert!(
            len as usize <= cap,
            "getsockopt reported {len} bytes for a {cap}-byte buffer"
        );
        buf.truncate(len as usize);
        Ok(buf)
    }

    pub fn getsockopt_int(&self, fd: i32, level: c_int, name: c_int) -> Ret {
        let b = self.getsockopt(fd, level, name, 4)?;
        assert_eq!(
            b.len(),
            4,
            "int option {level}/{name} returned {} bytes",
            b.len()
        );
        Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as i64)
    }

    pub fn setsockopt_bytes(&self, fd: i32, level: c_int, name: c_int, val: &[u8]) -> Ret {
        ret(
            unsafe {
                f!(self.setsockopt)(
                    self.ud(),
                    fd,
                    level,
                    name,
                    val.as_ptr().cast(),
                    val.len() as socklen_t,
                )
            } as i64,
            "setsockopt",
        )
    }

    pub fn setsockopt_int(&self, fd: i32, level: c_int, name: c_int, val: c_int) -> Ret {
        self.setsockopt_bytes(fd, level, name, &val.to_ne_bytes())
    }

    pub fn poll(&self, fds: &mut [pollfd], timeout_ms: c_int) -> Ret {
        ret(
            unsafe { f!(self.poll)(self.ud(), fds.as_mut_ptr(), fds.len() as nfds_t, timeout_ms) }
                as i64,
            "poll",
        )
    }

    /// Inject one raw IPv4 packet. Returns the adapter's status unchanged.
    pub fn netdev_send(&self, pkt: &[u8]) -> c_int {
        unsafe { f!(self.netdev_send)(self.ud(), pkt.as_ptr().cast(), pkt.len()) }
    }

    /// The next packet berth sent and its send time (µs, gettimeofday's base);
    /// None when the adapter gave up after its deadline.
    pub fn netdev_receive(&self) -> Option<(Vec<u8>, i64)> {
        let mut buf = vec![0u8; 65536];
        let mut count: size_t = buf.len();
        let mut t: c_longlong = -1;
        let r = unsafe {
            f!(self.netdev_receive)(self.ud(), buf.as_mut_ptr().cast(), &mut count, &mut t)
        };
        assert!(r >= 0, "netdev_receive failed: {r}, errno {}", errno());
        if count == 0 {
            return None;
        }
        assert!(
            count <= buf.len(),
            "netdev_receive count {count} beyond the buffer"
        );
        buf.truncate(count);
        Some((buf, t))
    }

    pub fn usleep(&self, us: u32) -> Ret {
        ret(unsafe { f!(self.usleep)(self.ud(), us) } as i64, "usleep")
    }

    /// Virtual time in µs (each call advances the clock by 1 µs).
    pub fn now_us(&self) -> i64 {
        let mut tv = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let r = unsafe { f!(self.gettimeofday)(self.ud(), &mut tv, std::ptr::null_mut()) };
        assert_eq!(r, 0, "gettimeofday failed, errno {}", errno());
        tv.tv_sec * 1_000_000 + tv.tv_usec
    }

    pub fn epoll_create(&self, size: c_int) -> Ret {
        ret(
            unsafe { f!(self.epoll_create)(self.ud(), size) } as i64,
            "epoll_create",
        )
    }

    pub fn epoll_ctl(&self, epfd: i32, op: c_int, fd: i32, ev: Option<epoll_event>) -> Ret {
        let mut e = ev.unwrap_or(epoll_event { events: 0, u64: 0 });
        let p = if ev.is_some() {
            &mut e as *mut epoll_event
        } else {
            std::ptr::null_mut()
        };
        ret(
            unsafe { f!(self.epoll_ctl)(self.ud(), epfd, op, fd, p) } as i64,
            "epoll_ctl",
        )
    }

    pub fn epoll_wait(
        &self,
        epfd: i32,
        max: usize,
        timeout_ms: c_int,
    ) -> Result<Vec<epoll_event>, i32> {
        let mut evs = vec![epoll_event { events: 0, u64: 0 }; max];
        let n = ret(
            unsafe {
                f!(self.epoll_wait)(self.ud(), epfd, evs.as_mut_ptr(), max as c_int, timeout_ms)
            } as i64,
            "epoll_wait",
        )?;
        evs.truncate(n as usize);
        Ok(evs)
    }

    pub fn pipe(&self) -> Ret {
        let mut fds = [-1 as c_int; 2];
        ret(
            unsafe { f!(self.pipe)(self.ud(), fds.as_mut_ptr()) } as i64,
            "pipe",
        )
    }

    pub fn splice(&self, fd_in: i32, fd_out: i32, len: usize) -> Ret {
        ret(
            unsafe {
                f!(self.splice)(
                    self.ud(),
                    fd_in,
                    std::ptr::null_mut(),
                    fd_out,
                    std::ptr::null_mut(),
                    len,
                    0,
                )
            } as i64,
            "splice",
        )
    }
}

pub fn size_of_sin() -> socklen_t {
    std::mem::size_of::<libc::sockaddr_in>() as socklen_t
}

// ---------------------------------------------------------------- threads

/// A call running on its own thread, which may block inside the adapter.
pub struct Pending<T> {
    rx: mpsc::Receiver<T>,
    tid: Arc<AtomicI32>,
    done: Arc<AtomicBool>,
}

/// What a pending call is doing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Activity {
    Returned,
    Blocked,
}

pub fn spawn_call<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
    let (tx, rx) = mpsc::channel();
    let tid = Arc::new(AtomicI32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (tid2, done2) = (tid.clone(), done.clone());
    std::thread::spawn(move || {
        let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        tid2.store(me, Ordering::SeqCst);
        let r = f();
        // The receiver may be gone when the test already failed.
        let _ = tx.send(r);
        done2.store(true, Ordering::SeqCst);
    });
    Pending { rx, tid, done }
}

/// The scheduler state letter of one of our threads ('R', 'S', 'D', ...).
fn thread_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (comm) S ...": comm may hold spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// CPU time (utime + stime, clock ticks) one of our threads has used.
fn thread_ticks(tid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After "(comm)": state is field 3, utime 14 and stime 15 of the whole line.
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

impl<T> Pending<T> {
    /// CPU clock ticks the call's thread has used so far.
    pub fn cpu_ticks(&self) -> u64 {
        thread_ticks(self.tid.load(Ordering::SeqCst)).unwrap_or(0)
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Wait until the call has returned or sleeps inside the adapter (seen
    /// sleeping twice, 1 ms apart, as packetdrill checks its syscall thread).
    pub fn settle(&self, timeout: Duration) -> Result<Activity, String> {
        let start = Instant::now();
        let mut sleeping_since: Option<Instant> = None;
        loop {
            if self.is_done() {
                return Ok(Activity::Returned);
            }
            let tid = self.tid.load(Ordering::SeqCst);
            let sleeping = tid != 0 && thread_state(tid) == Some('S');
            match (sleeping, sleeping_since) {
                (true, None) => sleeping_since = Some(Instant::now()),
                (true, Some(t)) if t.elapsed() >= Duration::from_millis(1) => {
                    if self.is_done() {
                        return Ok(Activity::Returned);
                    }
                    return Ok(Activity::Blocked);
                }
                (false, _) => sleeping_since = None,
                _ => {}
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "call neither returned nor blocked within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The result, waiting up to `timeout` for it.
    pub fn join(&self, timeout: Duration) -> Result<T, String> {
        self.rx
            .recv_timeout(timeout)
            .map_err(|e| format!("call did not return within {timeout:?}: {e}"))
    }

    pub fn try_result(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Run a call that must not block; fails (instead of hanging the test) if it does.
pub fn quick<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let p = spawn_call(f);
    match p.settle(Duration::from_secs(5)) {
        Ok(Activity::Returned) => p
            .join(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{what}: {e}")),
        Ok(Activity::Blocked) => panic!("{what} blocked; it should have returned at once"),
        Err(e) => panic!("{what}: {e}"),
    }
}

// ---------------------------------------------------------------- packets

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOpt {
    Eol,
    Nop,
    Mss(u16),
    Ws(u8),
    SackOk,
    Ts(u32, u32),
    Sack(Vec<(u32, u32)>),
    Other(u8, Vec<u8>),
}

pub fn encode_opts(opts: &[TcpOpt]) -> Vec<u8> {
    let mut b = Vec::new();
    for o in opts {
        match o {
            TcpOpt::Eol => b.push(0),
            TcpOpt::Nop => b.push(1),
            TcpOpt::Mss(m) => {
                b.extend_from_slice(&[2, 4]);
                b.extend_from_slice(&m.to_be_bytes());
            }
            TcpOpt::Ws(s) => b.extend_from_slice(&[3, 3, *s]),
            TcpOpt::SackOk => b.extend_from_slice(&[4, 2]),
            TcpOpt::Ts(v, e) => {
                b.extend_from_slice(&[8, 10]);
                b.extend_from_slice(&v.to_be_bytes());
                b.extend_from_slice(&e.to_be_bytes());
            }
            TcpOpt::Sack(blocks) => {
                b.extend_from_slice(&[5, 2 + 8 * blocks.len() as u8]);
                for (l, r) in blocks {
                    b.extend_from_slice(&l.to_be_bytes());
                    b.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOpt::Other(k, d) => {
                b.extend_from_slice(&[*k, 2 + d.len() as u8]);
                b.extend_from_slice(d);
            }
        }
    }
    b
}

pub fn decode_opts(mut b: &[u8]) -> Result<Vec<TcpOpt>, String> {
    let mut out = Vec::new();
    while let Some(&kind) = b.first() {
        match kind {
            0 => {
                out.push(TcpOpt::Eol);
                b = &b[1..];
                continue;
            }
            1 => {
                out.push(TcpOpt::Nop);
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let len = *b.get(1).ok_or("TCP option without length")? as usize;
        if len < 2 || len > b.len() {
            return Err(format!("TCP option kind {kind} with bad length {len}"));
        }
        let d = &b[2..len];
        let be32 = |i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        out.push(match (kind, len) {
            (2, 4) => TcpOpt::Mss(u16::from_be_bytes([d[0], d[1]])),
            (3, 3) => TcpOpt::Ws(d[0]),
            (4, 2) => TcpOpt::SackOk,
            (8, 10) => TcpOpt::Ts(be32(0), be32(4)),
            (5, l) if l >= 10 && (l - 2) % 8 == 0 => TcpOpt::Sack(
                (0..(l - 2) / 8)
                    .map(|i| (be32(8 * i), be32(8 * i + 4)))
                    .collect(),
            ),
            (2 | 3 | 4 | 8 | 5, l) => {
                return Err(format!("TCP option kind {kind} with bad length {l}"))
            }
            _ => TcpOpt::Other(kind, d.to_vec()),
        });
        b = &b[len..];
    }
    Ok(out)
}

/// One IPv4 or IPv6 + TCP packet as plain values (the family of `src`; for
/// IPv6, `tos` is the traffic class, `ttl` the hop limit, `ip_id` and `df`
/// unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub tos: u8,
    pub ip_id: u16,
    pub df: bool,
    pub ttl: u8,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub win: u16,
    pub urg: u16,
    pub opts: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Seg {
    /// An inbound segment from packetdrill's side to berth.
    pub fn inbound(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, win: u16) -> Seg {
        Seg {
            src: REMOTE_IP.into(),
            dst: LOCAL_IP.into(),
            tos: 0,
            ip_id: 0,
            df: true,
            ttl: 64,
            sport,
            dport,
            seq,
            ack,
            flags,
            win,
            urg: 0,
            opts: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// The same segment between other addresses (IPv6 ones make it IPv6).
    pub fn between(mut self, src: IpAddr, dst: IpAddr) -> Seg {
        self.src = src;
        self.dst = dst;
        self
    }

    pub fn with_opts(mut self, opts: &[TcpOpt]) -> Seg {
        self.opts = encode_opts(opts);
        self
    }

    pub fn with_payload(mut self, p: &[u8]) -> Seg {
        self.payload = p.to_vec();
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(
            self.opts.len().is_multiple_of(4) && self.opts.len() <= 40,
            "TCP options must be whole words"
        );
        let mut tcp = Vec::with_capacity(20 + self.opts.len() + self.payload.len());
        tcp.extend_from_slice(&self.sport.to_be_bytes());
        tcp.extend_from_slice(&self.dport.to_be_bytes());
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        tcp.push((((20 + self.opts.len()) / 4) as u8) << 4);
        tcp.push(self.flags);
        tcp.extend_from_slice(&self.win.to_be_bytes());
        tcp.extend_from_slice(&[0, 0]);
        tcp.extend_from_slice(&self.urg.to_be_bytes());
        tcp.extend_from_slice(&self.opts);
        tcp.extend_from_slice(&self.payload);
        let c = tcp_checksum(self.src, self.dst, &tcp);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut p = ip_header(self.src, self.dst, 6, tcp.len(), self.tos, self.ttl);
        if p.len() == 20 {
            p[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
            p[6..8].copy_from_slice(&(if self.df { 0x4000u16 } else { 0 }).to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&[&p[..20]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(&tcp);
        p
    }

    /// Parse a packet berth sent, verifying both checksums and every length.
    pub fn parse(b: &[u8]) -> Result<Seg, String> {
        let ip = IpHeader::parse(b)?;
        if ip.proto != 6 {
            return Err(format!("IP protocol {} is not TCP", ip.proto));
        }
        let t = &b[ip.len..];
        if t.len() < 20 {
            return Err(format!("TCP header truncated: {} bytes", t.len()));
        }
        let doff = (t[12] >> 4) as usize * 4;
        if doff < 20 || doff > t.len() {
            return Err(format!("TCP data offset {doff} with {} bytes", t.len()));
        }
        if tcp_checksum(ip.src, ip.dst, t) != 0 {
            return Err("bad TCP checksum".into());
        }
        let be32 = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        Ok(Seg {
            src: ip.src,
            dst: ip.dst,
            tos: ip.tos,
            ip_id: ip.id,
            df: ip.df,
            ttl: ip.ttl,
            sport: u16::from_be_bytes([t[0], t[1]]),
            dport: u16::from_be_bytes([t[2], t[3]]),
            seq: be32(4),
            ack: be32(8),
            flags: t[13],
            win: u16::from_be_bytes([t[14], t[15]]),
            urg: u16::from_be_bytes([t[18], t[19]]),
            opts: t[20..doff].to_vec(),
            payload: t[doff..].to_vec(),
        })
    }

    pub fn options(&self) -> Result<Vec<TcpOpt>, String> {
        decode_opts(&self.opts)
    }

    /// The timestamp option's (val, ecr), if present.
    pub fn ts(&self) -> Option<(u32, u32)> {
        self.options().ok()?.into_iter().find_map(|o| match o {
            TcpOpt::Ts(v, e) => Some((v, e)),
            _ => None,
        })
    }
}

/// Internet checksum over the concatenation of `parts` (0 when a packet
/// that carries its checksum is intact).
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &byte in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, byte])),
                None => odd = Some(byte),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IP header of a packet berth sent: IPv4 (options allowed, no fragments)
/// or IPv6 (no extension headers), with its lengths and checksum verified.
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub ttl: u8,
    /// Header length: where the transport header starts.
    pub len: usize,
}

impl IpHeader {
    pub fn parse(b: &[u8]) -> Result<IpHeader, String> {
        match b.first().map(|v| v >> 4) {
            Some(4) => {}
            Some(6) => {
                if b.len() < 40 {
                    return Err(format!("{} bytes: shorter than an IPv6 header", b.len()));
                }
                let plen = u16::from_be_bytes([b[4], b[5]]) as usize;
                if plen + 40 != b.len() {
                    return Err(format!(
                        "IPv6 payload length {plen} with {} bytes received",
                        b.len()
                    ));
                }
                let addr = |i: usize| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&b[i..i + 16]);
                    IpAddr::from(Ipv6Addr::from(o))
                };
                return Ok(IpHeader {
                    src: addr(8),
                    dst: addr(24),
                    proto: b[6],
                    tos: ((u16::from_be_bytes([b[0], b[1]]) >> 4) & 0xff) as u8,
                    id: 0,
                    df: true,
                    ttl: b[7],
                    len: 40,
                });
            }
            v => return Err(format!("IP version {v:?}")),
        }
        if b.len() < 20 {
            return Err(format!("{} bytes: shorter than an IPv4 header", b.len()));
        }
        let ihl = (b[0] & 0xf) as usize * 4;
        let total = u16::from_be_bytes([b[2], b[3]]) as usize;
        if ihl < 20 || total != b.len() || ihl > total {
            return Err(format!(
                "IHL {ihl}, total length {total}, {} bytes received",
                b.len()
            ));
        }
        if checksum(&[&b[..ihl]]) != 0 {
            return Err("bad IPv4 header checksum".into());
        }
        let frag = u16::from_be_bytes([b[6], b[7]]);
        if frag & 0x3fff != 0 {
            return Err(format!("fragment (flags/offset {frag:#06x})"));
        }
        Ok(IpHeader {
            src: Ipv4Addr::new(b[12], b[13], b[14], b[15]).into(),
            dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]).into(),
            proto: b[9],
            tos: b[1],
            id: u16::from_be_bytes([b[4], b[5]]),
            df: frag & 0x4000 != 0,
            ttl: b[8],
            len: ihl,
        })
    }
}

/// An IPv4 (id 0, DF clear, checksum filled in) or IPv6 header, by the
/// family of `src`, for `payload_len` bytes of protocol `proto`.
pub fn ip_header(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload_len: usize,
    tos: u8,
    ttl: u8,
) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = vec![0x45, tos];
            p.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, ttl, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let c = checksum(&[&p]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let vtf = (6u32 << 28) | (u32::from(tos) << 20);
            let mut p = vtf.to_be_bytes().to_vec();
            p.extend_from_slice(&(payload_len as u16).to_be_bytes());
            p.extend_from_slice(&[proto, ttl]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p
        }
        _ => panic!("addresses of two families: {src} > {dst}"),
    }
}

/// The IPv4 or IPv6 pseudo-header (RFC 793 3.1, RFC 8200 8.1).
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("addresses of two families: {src} > {dst}"),
    }
    p
}

pub fn tcp_checksum(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, tcp: &[u8]) -> u16 {
    let pseudo = pseudo_header(src.into(), dst.into(), 6, tcp.len());
    checksum(&[&pseudo, tcp])
}

pub fn flags_str(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(SYN, 'S'), (FIN, 'F'), (RST, 'R'), (PSH, 'P'), (URG, 'U')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if f & ACK != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}
