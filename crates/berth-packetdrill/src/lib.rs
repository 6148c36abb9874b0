//! berth-packetdrill: packetdrill's shared-object interface on a berth stack.
//!
//! packetdrill (`--so_filename=libberth_packetdrill.so`) `dlopen`s this library
//! and calls [`packetdrill_interface_init`] once per script; every system call of
//! the script and every packet then goes through the function table filled here,
//! with no kernel, no TUN and no root. berth runs on a virtual clock that moves
//! only through `gettimeofday` (1 µs a call), `usleep` and `netdev_receive` (which
//! jumps to the stack's next timer while no packet is queued), so timer-driven
//! behaviour (retransmissions, delayed ACKs, TIME-WAIT) is exact and a script
//! runs in milliseconds of real time.
//!
//! Layout: `abi.rs` (C structs and Linux constants), `config.rs` (packetdrill's
//! `--ip_version`/`--local_ip`/… flags and `--so_flags`),
//! `instance.rs` (the stack, clock and descriptor table), this file (the C entry
//! points: pointer checks, errno, panics caught at the boundary).
//!
//! Every descriptor handed out is a real host descriptor (a memfd), because
//! packetdrill closes the script's sockets with the host's close(2) at the end.
//! State lives behind `userdata` only: packetdrill keeps the library loaded
//! between scripts (RTLD_NODELETE).

mod abi;
mod config;
mod instance;

pub use abi::PacketdrillInterface;
pub use config::{IpVersion, Options, USAGE};
pub use instance::EPOCH_US;

use abi::*;
use instance::{Errno, Instance};
use std::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What `userdata` points to: the run, or why it could not start.
struct Handle {
    instance: Option<Instance>,
    error: Option<String>,
    /// The start-up error was printed again at the first call.
    reported: std::sync::atomic::AtomicBool,
}

fn set_errno(e: Errno) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// A C return type: how it says "failed".
trait Ret {
    fn fail() -> Self;
}
impl Ret for c_int {
    fn fail() -> Self {
        -1
    }
}
impl Ret for isize {
    fn fail() -> Self {
        -1
    }
}

/// Run `f` on the instance behind `ud`; an error becomes -1 with errno set, a
/// panic becomes EIO (never unwinding into C).
fn run<R: Ret>(ud: Ud, f: impl FnOnce(&Instance) -> Result<R, Errno>) -> R {
    if ud.is_null() {
        set_errno(libc::EINVAL);
        return R::fail();
    }
    // SAFETY: `ud` is the Handle pointer init stored in the table; packetdrill
    // passes it back unchanged and calls `free` only after the last call.
    let h = unsafe { &*(ud as *const Handle) };
    let Some(inst) = &h.instance else {
        // Said at init and once more at the first call; repeating it on every
        // call would bury the script's own output.
        if let Some(e) = &h.error {
            if !h.reported.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("berth-packetdrill: not started: {e}");
            }
        }
        set_errno(libc::EINVAL);
        return R::fail();
    };
    match catch_unwind(AssertUnwindSafe(|| f(inst))) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            R::fail()
        }
        Err(_) => {
            eprintln!("berth-packetdrill: internal error (panic) in a call; returning EIO");
            set_errno(libc::EIO);
            R::fail()
        }
    }
}

/// A `sockaddr_in` or `sockaddr_in6`, by its family field. As Linux, a length
/// short of the family's structure is EINVAL (for AF_INET6 the 24 bytes of
/// RFC 2133's sockaddr_in6, without scope_id, are enough), an unknown family
/// EAFNOSUPPORT. flowinfo and scope_id are not used.
///
/// # Safety
/// `p` must be null or point to `len` readable bytes.
unsafe fn sockaddr(p: *const c_void, len: u32) -> Result<SocketAddr, Errno> {
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    if len < 2 {
        return Err(libc::EINVAL);
    }
    // SAFETY: `len` ≥ 2 readable bytes at `p`: the family field.
    let family = unsafe { std::ptr::read_unaligned(p as *const u16) } as c_int;
    match family {
        AF_INET => {
            if (len as usize) < std::mem::size_of::<SockAddrIn>() {
                return Err(libc::EINVAL);
            }
            // SAFETY: the caller guarantees `len` ≥ 16 readable bytes at `p`.
            let a = unsafe { std::ptr::read_unaligned(p as *const SockAddrIn) };
            Ok(SocketAddrV4::new(Ipv4Addr::from(a.addr), u16::from_be(a.port)).into())
        }
        AF_INET6 => {
            const SIN6_LEN_RFC2133: usize = 24;
            if (len as usize) < SIN6_LEN_RFC2133 {
                return Err(libc::EINVAL);
            }
            let mut a = SockAddrIn6 {
                family: 0,
                port: 0,
                flowinfo: 0,
                addr: [0; 16],
                scope_id: 0,
            };
            let n = (len as usize).min(std::mem::size_of::<SockAddrIn6>());
            // SAFETY: `n` ≤ `len` readable bytes at `p` into a 28-byte plain struct.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    p as *const u8,
                    &mut a as *mut SockAddrIn6 as *mut u8,
                    n,
                )
            };
            Ok(SocketAddrV6::new(Ipv6Addr::from(a.addr), u16::from_be(a.port), 0, 0).into())
        }
        _ => Err(libc::EAFNOSUPPORT),
    }
}

/// Write `a` as the `sockaddr_in` or `sockaddr_in6` of its family (the
/// instance has already put it in the socket's family).
///
/// # Safety
/// `p` null, or `p` and `len` valid as for accept(2)'s address arguments.
unsafe fn put_sockaddr(p: *mut c_void, len: *mut u32, a: SocketAddr) -> Result<(), Errno> {
    if p.is_null() {
        return Ok(());
    }
    if len.is_null() {
        return Err(libc::EFAULT);
    }
    let v4;
    let v6;
    let bytes: &[u8] = match a {
        SocketAddr::V4(a) => {
            v4 = SockAddrIn {
                family: AF_INET as u16,
                port: a.port().to_be(),
                addr: a.ip().octets(),
                zero: [0; 8],
            };
            // SAFETY: a plain repr(C) struct of integers without padding.
            unsafe {
                std::slice::from_raw_parts(
                    &v4 as *const SockAddrIn as *const u8,
                    std::mem::size_of::<SockAddrIn>(),
                )
            }
        }
        SocketAddr::V6(a) => {
            v6 = SockAddrIn6 {
                family: AF_INET6 as u16,
                port: a.port().to_be(),
                flowinfo: a.flowinfo().to_be(),
                addr: a.ip().octets(),
                scope_id: a.scope_id(),
            };
            // SAFETY: a plain repr(C) struct of integers without padding.
            unsafe {
                std::slice::from_raw_parts(
                    &v6 as *const SockAddrIn6 as *const u8,
                    std::mem::size_of::<SockAddrIn6>(),
                )
            }
        }
    };
    // SAFETY: `len` points to the caller's buffer size; we write at most that many
    // bytes to `p` (truncating as the kernel does) and report the full size.
    unsafe {
        let n = (*len as usize).min(bytes.len());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, n);
        *len = bytes.len() as u32;
    }
    Ok(())
}

/// # Safety
/// `p` null or valid for `n` bytes of writing.
unsafe fn buf_mut<'a>(p: *mut c_void, n: usize) -> Result<&'a mut [u8], Errno> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
}

/// # Safety
/// `p` null or valid for `n` bytes of reading.
unsafe fn buf<'a>(p: *const c_void, n: usize) -> Result<&'a [u8], Errno> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p as *const u8, n) })
}

/// The iovecs of readv/writev/recvmsg/sendmsg.
///
/// # Safety
/// `iov` null or valid for `n` entries.
unsafe fn iovecs<'a>(iov: *const IoVec, n: c_int) -> Result<&'a [IoVec], Errno> {
    if !(0..=1024).contains(&n) {
        return Err(libc::EINVAL);
    }
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts(iov, n as usize) })
}

fn gather(v: &[IoVec]) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    for e in v {
        // SAFETY: each iovec names a caller buffer of `len` bytes.
        out.extend_from_slice(unsafe { buf(e.base, e.len)? });
    }
    Ok(out)
}

fn scatter(v: &[IoVec], mut data: &[u8]) -> Result<(), Errno> {
    for e in v {
        if data.is_empty() {
            break;
        }
        // SAFETY: each iovec names a caller buffer of `len` bytes.
        let dst = unsafe { buf_mut(e.base, e.len)? };
        let n = dst.len().min(data.len());
        dst[..n].copy_from_slice(&data[..n]);
        data = &data[n..];
    }
    Ok(())
}

fn total(v: &[IoVec]) -> usize {
    v.iter().map(|e| e.len).sum()
}

fn as_isize(n: usize) -> isize {
    n.min(isize::MAX as usize) as isize
}

// ---- the table ------------------------------------------------------------------

unsafe extern "C" fn pd_free(ud: Ud) {
    if ud.is_null() {
        return;
    }
    // SAFETY: `ud` came from Box::into_raw in init and is freed once, last.
    let h = unsafe { Box::from_raw(ud as *mut Handle) };
    if let Some(i) = h.instance {
        i.release();
    }
}

unsafe extern "C" fn pd_socket(ud: Ud, domain: c_int, ty: c_int, proto: c_int) -> c_int {
    run(ud, |i| i.socket(domain, ty, proto))
}

unsafe extern "C" fn pd_bind(ud: Ud, fd: c_int, a: *const c_void, len: u32) -> c_int {
    // SAFETY: packetdrill passes a sockaddr of `len` bytes.
    run(ud, |i| i.bind(fd, unsafe { sockaddr(a, len)? }).map(|_| 0))
}

unsafe extern "C" fn pd_listen(ud: Ud, fd: c_int, backlog: c_int) -> c_int {
    run(ud, |i| i.listen(fd, backlog).map(|_| 0))
}

unsafe extern "C" fn pd_accept(ud: Ud, fd: c_int, a: *mut c_void, len: *mut u32) -> c_int {
    run(ud, |i| {
        let (nfd, peer) = i.accept(fd)?;
        // SAFETY: accept(2)'s address arguments, null or valid.
        unsafe { put_sockaddr(a, len, peer)? };
        Ok(nfd)
    })
}

unsafe extern "C" fn pd_connect(ud: Ud, fd: c_int, a: *const c_void, len: u32) -> c_int {
    // SAFETY: packetdrill passes a sockaddr of `len` bytes.
    run(ud, |i| {
        i.connect(fd, unsafe { sockaddr(a, len)? }).map(|_| 0)
    })
}

unsafe extern "C" fn pd_read(ud: Ud, fd: c_int, b: *mut c_void, n: usize) -> isize {
    // SAFETY: read(2)'s buffer.
    run(ud, |i| {
        i.recv(fd, unsafe { buf_mut(b, n)? }, 0)
            .map(|r| as_isize(r.0))
    })
}

unsafe extern "C" fn pd_readv(ud: Ud, fd: c_int, iov: *const IoVec, n: c_int) -> isize {
    run(ud, |i| {
        // SAFETY: readv(2)'s iovec array.
        let v = unsafe { iovecs(iov, n)? };
        let mut tmp = vec![0u8; total(v)];
        let (got, _) = i.recv(fd, &mut tmp, 0)?;
        scatter(v, &tmp[..got])?;
        Ok(as_isize(got))
    })
}

unsafe extern "C" fn pd_recv(ud: Ud, fd: c_int, b: *mut c_void, n: usize, flags: c_int) -> isize {
    // SAFETY: recv(2)'s buffer.
    run(ud, |i| {
        i.recv(fd, unsafe { buf_mut(b, n)? }, flags)
            .map(|r| as_isize(r.0))
    })
}

unsafe extern "C" fn pd_recvfrom(
    ud: Ud,
    fd: c_int,
    b: *mut c_void,
    n: usize,
    flags: c_int,
    a: *mut c_void,
    len: *mut u32,
) -> isize {
    run(ud, |i| {
        // SAFETY: recvfrom(2)'s buffer.
        let (got, from) = i.recv(fd, unsafe { buf_mut(b, n)? }, flags)?;
        if let Some(from) = from {
            // SAFETY: recvfrom(2)'s address arguments.
            unsafe { put_sockaddr(a, len, from)? };
        }
        Ok(as_isize(got))
    })
}

unsafe extern "C" fn pd_recvmsg(ud: Ud, fd: c_int, m: *mut MsgHdr, flags: c_int) -> isize {
    run(ud, |i| {
        if m.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: packetdrill passes a valid msghdr.
        let m = unsafe { &mut *m };
        // SAFETY: the msghdr's iovec array.
        let v = unsafe { iovecs(m.iov, m.iovlen.min(c_int::MAX as usize) as c_int)? };
        let mut tmp = vec![0u8; total(v)];
        let (got, from) = i.recv(fd, &mut tmp, flags)?;
        scatter(v, &tmp[..got])?;
        match from {
            // SAFETY: msg_name/msg_namelen as recvmsg(2) defines them.
            Some(a) => unsafe { put_sockaddr(m.name, &mut m.namelen, a)? },
            None => m.namelen = 0,
        }
        m.controllen = 0;
        m.flags = 0;
        Ok(as_isize(got))
    })
}

unsafe extern "C" fn pd_write(ud: Ud, fd: c_int, b: *const c_void, n: usize) -> isize {
    // SAFETY: write(2)'s buffer.
    run(ud, |i| {
        i.send(fd, unsafe { buf(b, n)? }, 0, None).map(as_isize)
    })
}

unsafe extern "C" fn pd_writev(ud: Ud, fd: c_int, iov: *const IoVec, n: c_int) -> isize {
    run(ud, |i| {
        // SAFETY: writev(2)'s iovec array.
        let data = gather(unsafe { iovecs(iov, n)? })?;
        i.send(fd, &data, 0, None).map(as_isize)
    })
}

unsafe extern "C" fn pd_send(ud: Ud, fd: c_int, b: *const c_void, n: usize, flags: c_int) -> isize {
    // SAFETY: send(2)'s buffer.
    run(ud, |i| {
        i.send(fd, unsafe { buf(b, n)? }, flags, None).map(as_isize)
    })
}

unsafe extern "C" fn pd_sendto(
    ud: Ud,
    fd: c_int,
    b: *const c_void,
    n: usize,
    flags: c_int,
    a: *const c_void,
    len: u32,
) -> isize {
    run(ud, |i| {
        // SAFETY: sendto(2)'s address, null or `len` bytes.
        let to = if a.is_null() {
            None
        } else {
            Some(unsafe { sockaddr(a, len)? })
        };
        // SAFETY: sendto(2)'s buffer.
        i.send(fd, unsafe { buf(b, n)? }, flags, to).map(as_isize)
    })
}

unsafe extern "C" fn pd_sendmsg(ud: Ud, fd: c_int, m: *const MsgHdr, flags: c_int) -> isize {
    run(ud, |i| {
        if m.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: packetdrill passes a valid msghdr.
        let m = unsafe { &*m };
        // SAFETY: the msghdr's iovec array and optional address.
        let data = gather(unsafe { iovecs(m.iov, m.iovlen.min(c_int::MAX as usize) as c_int)? })?;
        let to = if m.name.is_null() {
            None
        } else {
            // SAFETY: msg_name of msg_namelen bytes.
            Some(unsafe { sockaddr(m.name, m.namelen)? })
        };
        if m.controllen != 0 {
            // Ancillary data (cmsg) is not supported.
            return Err(libc::EINVAL);
        }
        i.send(fd, &data, flags, to).map(as_isize)
    })
}

unsafe extern "C" fn pd_fcntl(ud: Ud, fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    run(ud, |i| i.fcntl(fd, cmd, arg))
}

unsafe extern "C" fn pd_ioctl(ud: Ud, fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    run(ud, |i| {
        if arg.is_null() {
            return Err(libc::EFAULT);
        }
        // FIONBIO reads an int; FIONREAD/SIOCOUTQ write one.
        // SAFETY: the ioctl's argument is a pointer to an int for these requests.
        let input = (req == FIONBIO).then(|| unsafe { *(arg as *const c_int) });
        let n = i.ioctl(fd, req, input)?;
        if req != FIONBIO {
            // SAFETY: as above.
            unsafe { *(arg as *mut c_int) = n };
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_close(ud: Ud, fd: c_int) -> c_int {
    run(ud, |i| i.close(fd).map(|_| 0))
}

unsafe extern "C" fn pd_shutdown(ud: Ud, fd: c_int, how: c_int) -> c_int {
    run(ud, |i| i.shutdown(fd, how).map(|_| 0))
}

unsafe extern "C" fn pd_getsockopt(
    ud: Ud,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut u32,
) -> c_int {
    run(ud, |i| {
        if val.is_null() || len.is_null() {
            return Err(libc::EFAULT);
        }
        let bytes = i.getsockopt(fd, level, name)?;
        // SAFETY: getsockopt(2)'s value buffer of *len bytes; truncated to it.
        unsafe {
            let n = (*len as usize).min(bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), val as *mut u8, n);
            *len = n as u32;
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_setsockopt(
    ud: Ud,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: u32,
) -> c_int {
    // SAFETY: setsockopt(2)'s value of `len` bytes.
    run(ud, |i| {
        i.setsockopt(fd, level, name, unsafe { buf(val, len as usize)? })
            .map(|_| 0)
    })
}

unsafe extern "C" fn pd_poll(ud: Ud, fds: *mut PollFd, n: c_ulong, timeout: c_int) -> c_int {
    run(ud, |i| {
        if n > 4096 {
            return Err(libc::EINVAL);
        }
        let p: &mut [PollFd] = if n == 0 {
            &mut []
        } else if fds.is_null() {
            return Err(libc::EFAULT);
        } else {
            // SAFETY: poll(2)'s array of `n` pollfd.
            unsafe { std::slice::from_raw_parts_mut(fds, n as usize) }
        };
        let mut v: Vec<(i32, u32, u32)> = p
            .iter()
            .map(|f| (f.fd, f.events as u16 as u32, 0))
            .collect();
        let r = i.poll(&mut v, timeout)?;
        for (f, (_, _, re)) in p.iter_mut().zip(v) {
            f.revents = re as u16 as i16;
        }
        Ok(r)
    })
}

unsafe extern "C" fn pd_netdev_send(ud: Ud, b: *const c_void, n: usize) -> c_int {
    run(ud, |i| {
        // SAFETY: the packet buffer of `n` bytes.
        i.netdev_send(unsafe { buf(b, n)? });
        Ok(0)
    })
}

unsafe extern "C" fn pd_netdev_receive(
    ud: Ud,
    b: *mut c_void,
    n: *mut usize,
    t: *mut i64,
) -> c_int {
    run(ud, |i| {
        if n.is_null() || t.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `n` points to the buffer size, `b` to that many bytes.
        let cap = unsafe { *n };
        let dst = unsafe { buf_mut(b, cap)? };
        match i.netdev_receive() {
            Ok((pkt, at)) => {
                if pkt.len() > dst.len() {
                    eprintln!(
                        "berth-packetdrill: a {}-byte packet does not fit packetdrill's {}-byte buffer; truncated",
                        pkt.len(),
                        dst.len()
                    );
                }
                let k = pkt.len().min(dst.len());
                dst[..k].copy_from_slice(&pkt[..k]);
                // SAFETY: checked non-null above.
                unsafe {
                    *n = k;
                    *t = at as i64;
                }
            }
            Err(why) => {
                // A zero-length packet ends the run in packetdrill with a parse
                // error; the diagnostic above it says why.
                eprintln!("{why}");
                // SAFETY: checked non-null above.
                unsafe { *n = 0 };
            }
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_usleep(ud: Ud, us: c_uint) -> c_int {
    run(ud, |i| {
        i.usleep(us as u64);
        Ok(0)
    })
}

unsafe extern "C" fn pd_gettimeofday(ud: Ud, tv: *mut TimeVal, _tz: *mut c_void) -> c_int {
    run(ud, |i| {
        let t = i.gettimeofday();
        if !tv.is_null() {
            // SAFETY: gettimeofday(2)'s timeval.
            unsafe {
                (*tv).sec = (t / 1_000_000) as _;
                (*tv).usec = (t % 1_000_000) as _;
            }
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_epoll_create(ud: Ud, size: c_int) -> c_int {
    run(ud, |i| i.epoll_create(size))
}

unsafe extern "C" fn pd_epoll_ctl(
    ud: Ud,
    ep: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut EpollEvent,
) -> c_int {
    run(ud, |i| {
        // SAFETY: epoll_ctl(2)'s event, null or valid (read unaligned: packed).
        let e = (!ev.is_null()).then(|| unsafe { std::ptr::read_unaligned(ev) });
        i.epoll_ctl(ep, op, fd, e.map(|e| (e.events, e.data)))
            .map(|_| 0)
    })
}

unsafe extern "C" fn pd_epoll_wait(
    ud: Ud,
    ep: c_int,
    out: *mut EpollEvent,
    max: c_int,
    timeout: c_int,
) -> c_int {
    run(ud, |i| {
        if max <= 0 {
            return Err(libc::EINVAL);
        }
        if out.is_null() {
            return Err(libc::EFAULT);
        }
        let ready = i.epoll_wait(ep, max as usize, timeout)?;
        for (k, (events, data)) in ready.iter().enumerate() {
            // SAFETY: epoll_wait(2)'s array of `max` events; k < max.
            unsafe {
                std::ptr::write_unaligned(
                    out.add(k),
                    EpollEvent {
                        events: *events,
                        data: *data,
                    },
                )
            };
        }
        Ok(ready.len() as c_int)
    })
}

unsafe extern "C" fn pd_pipe(ud: Ud, _fds: *mut c_int) -> c_int {
    run(ud, |_| Err::<c_int, _>(libc::ENOSYS))
}

unsafe extern "C" fn pd_splice(
    ud: Ud,
    _in: c_int,
    _off_in: *mut i64,
    _out: c_int,
    _off_out: *mut i64,
    _len: usize,
    _flags: c_uint,
) -> isize {
    run(ud, |_| Err::<isize, _>(libc::ENOSYS))
}

/// packetdrill's entry point: fill `ifc` for one script run.
///
/// # Safety
/// `flags` is null or a NUL-terminated string; `ifc` points to a writable
/// `struct packetdrill_interface`.
#[no_mangle]
pub unsafe extern "C" fn packetdrill_interface_init(
    flags: CStrPtr,
    ifc: *mut PacketdrillInterface,
) {
    if ifc.is_null() {
        eprintln!("berth-packetdrill: packetdrill_interface_init called with a null table");
        return;
    }
    let text = if flags.is_null() {
        Ok(String::new())
    } else {
        // SAFETY: packetdrill passes its NUL-terminated --so_flags string.
        unsafe { CStr::from_ptr(flags) }
            .to_str()
            .map(str::to_string)
            .map_err(|_| "--so_flags is not UTF-8".to_string())
    };
    let started = text
        .and_then(|t| Options::from_packetdrill(&config::own_args(), &t))
        .and_then(|o| Instance::new(&o));
    let handle = match started {
        Ok(i) => Handle {
            instance: Some(i),
            error: None,
            reported: Default::default(),
        },
        Err(e) => {
            eprintln!("berth-packetdrill: {e}");
            Handle {
                instance: None,
                error: Some(e),
                reported: Default::default(),
            }
        }
    };
    let t = PacketdrillInterface {
        userdata: Box::into_raw(Box::new(handle)) as Ud,
        free: Some(pd_free),
        socket: Some(pd_socket),
        bind: Some(pd_bind),
        listen: Some(pd_listen),
        accept: Some(pd_accept),
        connect: Some(pd_connect),
        read: Some(pd_read),
        readv: Some(pd_readv),
        recv: Some(pd_recv),
        recvfrom: Some(pd_recvfrom),
        recvmsg: Some(pd_recvmsg),
        write: Some(pd_write),
        writev: Some(pd_writev),
        send: Some(pd_send),
        sendto: Some(pd_sendto),
        sendmsg: Some(pd_sendmsg),
        fcntl: Some(pd_fcntl),
        ioctl: Some(pd_ioctl),
        close: Some(pd_close),
        shutdown: Some(pd_shutdown),
        getsockopt: Some(pd_getsockopt),
        setsockopt: Some(pd_setsockopt),
        poll: Some(pd_poll),
        netdev_send: Some(pd_netdev_send),
        netdev_receive: Some(pd_netdev_receive),
        usleep: Some(pd_usleep),
        gettimeofday: Some(pd_gettimeofday),
        epoll_create: Some(pd_epoll_create),
        epoll_ctl: Some(pd_epoll_ctl),
        epoll_wait: Some(pd_epoll_wait),
        pipe: Some(pd_pipe),
        splice: Some(pd_splice),
    };
    // SAFETY: `ifc` is writable per the function's contract.
    unsafe { std::ptr::write(ifc, t) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_33_pointer_sized_fields() {
        assert_eq!(
            std::mem::size_of::<PacketdrillInterface>(),
            33 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn linux_struct_sizes() {
        assert_eq!(std::mem::size_of::<abi::TcpInfo>(), 248);
        assert_eq!(std::mem::size_of::<MsgHdr>(), 56);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(std::mem::size_of::<EpollEvent>(), 12);
    }
}
