//! A small Linux TUN opener for `berth impair`:
//! raw `/dev/net/tun` + `TUNSETIFF`, optionally from inside a network
//! namespace (`setns` in a helper thread), plus the SIGINT/SIGTERM flag.
//!
//! `berth impair` needs bare file descriptors opened in two namespaces, which
//! `berth::device` (a device bound to a `Stack`) does not give; ping and nc use
//! `berth::device`.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

// From <linux/if_tun.h> and <linux/sockios.h>.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const SIOCGIFMTU: libc::c_ulong = 0x8921;

/// `struct ifreq`: the name and the first member of the union (flags or MTU),
/// padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', '\0', ' ']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "'{name}' is not a valid interface name (1 to {} characters, no '/' or spaces)",
                    libc::IFNAMSIZ - 1
                ),
            ));
        }
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            value: 0,
            _pad: [0; 20],
        };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(r)
    }
}

/// An open TUN device.
pub struct Tun {
    pub fd: OwnedFd,
    pub name: String,
    pub mtu: usize,
}

/// Open TUN device `name` (bare IP packets, no packet-info header), from inside
/// network namespace `netns` if given. Without `create` the device must exist.
pub fn open(name: &str, netns: Option<&str>, create: bool) -> io::Result<Tun> {
    match netns {
        None => open_here(name, create),
        Some(ns) => {
            let ns_path = format!("/run/netns/{ns}");
            let ns_file = File::open(&ns_path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open network namespace {ns_path}: {e} (made with `ip netns add {ns}`?)"),
                )
            })?;
            let name = name.to_string();
            std::thread::spawn(move || {
                // SAFETY: setns on a valid namespace fd; it only changes this
                // helper thread's network namespace, which ends right after.
                let rc = unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    let e = io::Error::last_os_error();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot enter network namespace {ns_path}: {e} (needs root / CAP_SYS_ADMIN)"),
                    ));
                }
                open_here(&name, create)
            })
            .join()
            .map_err(|_| io::Error::other("the namespace helper thread panicked"))?
        }
    }
}

fn open_here(name: &str, create: bool) -> io::Result<Tun> {
    let mut req = IfReq::new(name)?;
    if !create && index_of(name) == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no device {name}; create it (`ip tuntap add dev {name} mode tun`) or pass --create"
            ),
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open /dev/net/tun: {e} (needs root or CAP_NET_ADMIN, and the tun module)"),
            )
        })?;
    req.value = libc::c_int::from(IFF_TUN | IFF_NO_PI);
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` is one (40
    // bytes, repr(C)) and outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot attach to TUN device {name}: {e} (is it a TAP device, or busy, or are we not root?)"),
        ));
    }
    let mtu = mtu_of(name).unwrap_or(1500);
    Ok(Tun {
        fd: file.into(),
        name: name.to_string(),
        mtu,
    })
}

fn index_of(name: &str) -> u32 {
    let Ok(c) = CString::new(name) else {
        return 0;
    };
    // SAFETY: a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

fn mtu_of(name: &str) -> io::Result<usize> {
    // SAFETY: plain socket(2) call; the fd is owned right after.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `s` is a fresh fd nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(s) };
    let mut req = IfReq::new(name)?;
    // SAFETY: SIOCGIFMTU fills ifr_mtu of a `struct ifreq` we own.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGIFMTU as _, &mut req as *mut IfReq) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(req.value)
        .ok()
        .filter(|&m| m >= 68)
        .ok_or_else(|| io::Error::other("device reports a bad MTU"))
}

pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` writable bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

pub fn write(fd: &OwnedFd, packet: &[u8]) -> io::Result<usize> {
    // SAFETY: `packet` is valid for `packet.len()` readable bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// What `poll_readable` saw on one fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    No,
    Readable,
    /// Error or hang-up: the device is gone.
    Hangup,
}

/// Wait up to `timeout` (microsecond resolution) for any of `fds` to be readable.
pub fn poll_readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<Ready>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd; `ts` outlives the call.
    let n = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pfds
        .iter()
        .map(|p| {
            if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                Ready::Hangup
            } else if p.revents & libc::POLLIN != 0 {
                Ready::Readable
            } else {
                Ready::No
            }
        })
        .collect())
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set a flag (see [`stop_requested`]) instead of killing us,
/// so counters and statistics get printed.
pub fn install_stop_handler() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an
        // atomic, which is async-signal-safe. No SA_RESTART: blocking calls
        // return EINTR so loops notice the flag.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
