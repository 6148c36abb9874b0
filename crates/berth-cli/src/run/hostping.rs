//! ICMP echo through the host's sockets, for `berth run`: the namespace's
//! pings to any destination are sent again from the host and the replies
//! handed back.
//!
//! Socket: an unprivileged ICMP datagram socket (Linux "ping socket",
//! allowed when a group of the caller is in net.ipv4.ping_group_range,
//! which covers ICMPv6 too), else a raw socket (needs CAP_NET_RAW).
//!
//! Identifiers: a ping socket's echo identifier is its "port", which the
//! kernel writes into every request and uses to filter replies; a raw
//! socket sees every echo reply reaching the host. So one socket per
//! family serves all namespace flows, and [`HostPinger`] rewrites them: each
//! request goes out with the socket's identifier and a fresh sequence
//! number, and a table maps that number back to the namespace's
//! (identifier, sequence, destination). The caller sends and receives in
//! the namespace's numbering only. The table holds at most 65536 entries
//! (one per wire sequence number; the oldest are reused), entries older than
//! [`REPLY_WINDOW`] no longer match, and a reply matches only when it comes
//! from the address its request went to. One descriptor per family, never
//! one per flow: a namespace that pings many hosts cannot use up the host's
//! descriptors.

use berth_wire::checksum;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// How long a request's entry can match a reply (iputils ping waits 10 s
/// for the last one by default, its MAXWAIT; be generous).
pub const REPLY_WINDOW: Duration = Duration::from_secs(60);

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// linux/icmp.h ICMP_FILTER (level SOL_RAW) and linux/icmpv6.h
/// ICMPV6_FILTER (level IPPROTO_ICMPV6): type bitmaps, a set bit blocks.
const ICMP_FILTER: libc::c_int = 1;
const ICMPV6_FILTER: libc::c_int = 1;
const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Which kind of host socket carries the echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// SOCK_DGRAM + IPPROTO_ICMP(V6): unprivileged, per ping_group_range.
    Datagram,
    /// SOCK_RAW: needs CAP_NET_RAW.
    Raw,
}

/// An echo reply, in the namespace's numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered: the destination of the matching request.
    pub src: IpAddr,
    /// The identifier and sequence number the namespace sent.
    pub ident: u16,
    pub seq: u16,
    pub payload: Vec<u8>,
}

/// One host ICMP socket of one family, with the sequence-rewriting table.
/// `Send + Sync`: `send` and `recv` may run on different tasks at once.
pub struct HostPinger {
    fd: AsyncFd<OwnedFd>,
    v6: bool,
    kind: SocketKind,
    /// The identifier on the wire: the socket's port for a datagram
    /// socket (the kernel writes it), a random one for a raw socket.
    ident: u16,
    state: Mutex<State>,
}

struct State {
    next_seq: u16,
    pending: HashMap<u16, Pending>,
    buf: Box<[u8]>,
}

struct Pending {
    dst: IpAddr,
    ident: u16,
    seq: u16,
    sent: Instant,
}

impl HostPinger {
    /// Opens the IPv4 (`v6 == false`) or IPv6 pinger: a datagram ICMP
    /// socket, else a raw one; when both are refused the error says what to
    /// change. Must be called within a tokio runtime with I/O enabled.
    pub fn open(v6: bool) -> io::Result<HostPinger> {
        let dgram = match Self::open_kind(v6, SocketKind::Datagram) {
            Ok(p) => return Ok(p),
            Err(e) => e,
        };
        let raw = match Self::open_kind(v6, SocketKind::Raw) {
            Ok(p) => return Ok(p),
            Err(e) => e,
        };
        let range = std::fs::read_to_string(PING_GROUP_RANGE)
            .ok()
            .and_then(|s| parse_group_range(&s));
        let (gid, groups) = caller_groups();
        let kind = if is_permission(&dgram) || is_permission(&raw) {
            io::ErrorKind::PermissionDenied
        } else {
            dgram.kind()
        };
        Err(io::Error::new(
            kind,
            no_socket_message(v6, range, gid, &groups, &dgram, &raw),
        ))
    }

    /// Opens exactly the given kind of socket.
    pub fn open_kind(v6: bool, kind: SocketKind) -> io::Result<HostPinger> {
        let (domain, proto) = if v6 {
            (libc::AF_INET6, libc::IPPROTO_ICMPV6)
        } else {
            (libc::AF_INET, libc::IPPROTO_ICMP)
        };
        let ty = match kind {
            SocketKind::Datagram => libc::SOCK_DGRAM,
            SocketKind::Raw => libc::SOCK_RAW,
        };
        // SAFETY: FFI call with constant arguments; returns a new fd or -1.
        let raw_fd =
            unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) };
        if raw_fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw_fd was just returned by socket() and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw_fd) };
        let ident = match kind {
            SocketKind::Datagram => bind_any(fd.as_raw_fd(), v6)?,
            SocketKind::Raw => {
                only_echo_replies(fd.as_raw_fd(), v6)?;
                random_u16()
            }
        };
        // SAFETY: the OwnedFd moves into the AsyncFd, keeps the descriptor
        // open for its whole life and always returns the same one.
        let fd = unsafe { AsyncFd::register(fd) }?;
        Ok(HostPinger {
            fd,
            v6,
            kind,
            ident,
            state: Mutex::new(State {
                next_seq: random_u16(),
                pending: HashMap::new(),
                buf: vec![0u8; 65536].into_boxed_slice(),
            }),
        })
    }

    #[cfg(test)]
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    #[cfg(test)]
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Sends an echo request to `dst` for the namespace's (`ident`, `seq`);
    /// the reply comes back from [`recv`](Self::recv) with those numbers.
    pub async fn send(&self, dst: IpAddr, ident: u16, seq: u16, payload: &[u8]) -> io::Result<()> {
        if dst.is_ipv6() != self.v6 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{dst} is not of this pinger's family"),
            ));
        }
        let wire_seq = {
            let mut st = lock(&self.state);
            let s = st.next_seq;
            st.next_seq = s.wrapping_add(1);
            st.pending.insert(
                s,
                Pending {
                    dst,
                    ident,
                    seq,
                    sent: Instant::now(),
                },
            );
            s
        };
        let pkt = echo_request(self.v6, self.kind, self.ident, wire_seq, payload);
        let (sa, len) = sockaddr(dst);
        self.fd
            .async_io(Interest::WRITABLE, |fd| {
                // SAFETY: FFI call; pkt and sa are live for the call and len
                // is the size of the sockaddr written into sa.
                let n = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        pkt.as_ptr().cast(),
                        pkt.len(),
                        0,
                        (&raw const sa).cast(),
                        len,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            })
            .await
    }

    /// The next echo reply that answers a request sent by [`send`](Self::send),
    /// in the namespace's numbering. Anything else is skipped.
    pub async fn recv(&self) -> io::Result<EchoReply> {
        loop {
            match self
                .fd
                .async_io(Interest::READABLE, |fd| self.recv_one(fd.as_raw_fd()))
                .await
            {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One datagram: `Ok(None)` when it is not a reply of ours.
    fn recv_one(&self, fd: RawFd) -> io::Result<Option<EchoReply>> {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let mut from = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let mut from_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: FFI call; buf and from are live, writable and as long as
        // the lengths given.
        let n = unsafe {
            libc::recvfrom(
                fd,
                st.buf.as_mut_ptr().cast(),
                st.buf.len(),
                0,
                from.as_mut_ptr().cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let data = &st.buf[..n as usize];
        // SAFETY: zero-initialised and then filled in by recvfrom; every
        // bit pattern is a valid sockaddr_storage.
        let Some(src) = sockaddr_ip(unsafe { &from.assume_init() }) else {
            return Ok(None);
        };
        let icmp = match (self.v6, self.kind) {
            // A raw IPv4 socket reads the IP header too (raw(7)); the
            // kernel does not check the ICMP checksum before raw delivery.
            (false, SocketKind::Raw) => match strip_ipv4(data) {
                Some(icmp) if checksum::sum(icmp) == 0xffff => icmp,
                _ => return Ok(None),
            },
            _ => data,
        };
        let Some((ident, wire_seq, payload)) = parse_echo_reply(self.v6, icmp) else {
            return Ok(None);
        };
        // A raw socket sees every host ping's replies; a ping socket only its own.
        if self.kind == SocketKind::Raw && ident != self.ident {
            return Ok(None);
        }
        let Some(p) = st.pending.get(&wire_seq) else {
            return Ok(None);
        };
        if p.dst != src || p.sent.elapsed() > REPLY_WINDOW {
            return Ok(None);
        }
        Ok(Some(EchoReply {
            src,
            ident: p.ident,
            seq: p.seq,
            payload: payload.to_vec(),
        }))
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The table stays consistent across a panic elsewhere: keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An echo request (RFC 792 "Echo or Echo Reply Message"; RFC 4443 §4.1).
/// The kernel fills in the identifier and checksum of a ping socket, and the
/// checksum of any ICMPv6 socket (RFC 3542 §3.1); only raw IPv4 needs ours.
fn echo_request(v6: bool, kind: SocketKind, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.push(if v6 {
        ICMPV6_ECHO_REQUEST
    } else {
        ICMP_ECHO_REQUEST
    });
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 && kind == SocketKind::Raw {
        let c = checksum::checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// `(ident, seq, payload)` of an echo reply; `None` for anything else.
fn parse_echo_reply(v6: bool, icmp: &[u8]) -> Option<(u16, u16, &[u8])> {
    let want = if v6 {
        ICMPV6_ECHO_REPLY
    } else {
        ICMP_ECHO_REPLY
    };
    if icmp.len() < 8 || icmp[0] != want || icmp[1] != 0 {
        return None;
    }
    let ident = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((ident, seq, &icmp[8..]))
}

/// The ICMP message inside an IPv4 packet read from a raw socket.
fn strip_ipv4(pkt: &[u8]) -> Option<&[u8]> {
    let first = *pkt.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || pkt.len() < ihl || pkt[9] != libc::IPPROTO_ICMP as u8 {
        return None;
    }
    Some(&pkt[ihl..])
}

/// Binds a ping socket to port 0 so the kernel picks its identifier, and
/// returns it.
fn bind_any(fd: RawFd, v6: bool) -> io::Result<u16> {
    let any = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let (sa, len) = sockaddr(any);
    // SAFETY: FFI call; sa is live and len is the size of what it holds.
    if unsafe { libc::bind(fd, (&raw const sa).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut out_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: FFI call; out is live, writable and out_len long.
    if unsafe { libc::getsockname(fd, out.as_mut_ptr().cast(), &mut out_len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, then filled in by getsockname.
    let out = unsafe { out.assume_init() };
    Ok(sockaddr_port(&out))
}

/// Lets only echo replies reach a raw socket, so the host's other ICMP
/// traffic is not copied to us.
fn only_echo_replies(fd: RawFd, v6: bool) -> io::Result<()> {
    let rc = if v6 {
        let mut filt = [u32::MAX; 8];
        let t = usize::from(ICMPV6_ECHO_REPLY);
        filt[t >> 5] &= !(1u32 << (t & 31));
        // SAFETY: FFI call; filt is live and exactly the kernel's struct
        // icmp6_filter (eight u32).
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_ICMPV6,
                ICMPV6_FILTER,
                filt.as_ptr().cast(),
                size_of::<[u32; 8]>() as libc::socklen_t,
            )
        }
    } else {
        let filt: u32 = !(1u32 << ICMP_ECHO_REPLY);
        // SAFETY: FFI call; filt is live and exactly the kernel's struct
        // icmp_filter (one u32).
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_RAW,
                ICMP_FILTER,
                (&raw const filt).cast(),
                size_of::<u32>() as libc::socklen_t,
            )
        }
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn sockaddr_ip(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    sockaddr_to_std(ss).map(|a| a.ip())
}

fn sockaddr_port(ss: &libc::sockaddr_storage) -> u16 {
    sockaddr_to_std(ss).map_or(0, |a| a.port())
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), 0, 0).into())
        }
        _ => None,
    }
}

fn random_u16() -> u16 {
    // RandomState is seeded from the OS per process; enough to keep two
    // raw-socket pingers on one host apart.
    RandomState::new().build_hasher().finish() as u16
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

/// net.ipv4.ping_group_range: "LOW\tHIGH"; LOW > HIGH allows no group.
fn parse_group_range(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split_whitespace().map(|x| x.parse::<u32>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some((lo, hi))
}

/// The effective gid and the supplementary groups: the kernel admits a ping
/// socket if any of them is in the range (net/ipv4/ping.c, ping_init_sock).
fn caller_groups() -> (u32, Vec<u32>) {
    // SAFETY: FFI call without arguments; cannot fail.
    let gid = unsafe { libc::getegid() };
    // SAFETY: FFI call; size 0 with a null list only asks for the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0 as libc::gid_t; usize::try_from(n).unwrap_or(0)];
    // SAFETY: FFI call; groups is live and holds n entries.
    let got = unsafe { libc::getgroups(n.max(0), groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(got).unwrap_or(0));
    (gid, groups)
}

/// What to change when neither ICMP socket can be opened.
fn no_socket_message(
    v6: bool,
    range: Option<(u32, u32)>,
    gid: u32,
    groups: &[u32],
    dgram: &io::Error,
    raw: &io::Error,
) -> String {
    let (fam, proto) = if v6 {
        ("IPv6", "AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6")
    } else {
        ("IPv4", "AF_INET, SOCK_DGRAM, IPPROTO_ICMP")
    };
    let mut others: Vec<u32> = groups.iter().copied().filter(|&g| g != gid).collect();
    others.sort_unstable();
    others.dedup();
    let who = if others.is_empty() {
        format!("your group id {gid}")
    } else {
        let list: Vec<String> = others.iter().map(u32::to_string).collect();
        format!("your group id {gid} (and groups {})", list.join(", "))
    };
    let range_text = match range {
        None => format!("{PING_GROUP_RANGE} could not be read"),
        Some((lo, hi)) if lo > hi => {
            format!("net.ipv4.ping_group_range is \"{lo} {hi}\", which allows no group")
        }
        Some((lo, hi)) => {
            let inside = std::iter::once(gid)
                .chain(others.iter().copied())
                .any(|g| (lo..=hi).contains(&g));
            if inside {
                format!(
                    "net.ipv4.ping_group_range is \"{lo} {hi}\", which includes {who}, \
                     so the refusal has another cause"
                )
            } else {
                format!("net.ipv4.ping_group_range is \"{lo} {hi}\", which excludes {who}")
            }
        }
    };
    format!(
        "cannot relay ping ({fam} ICMP echo) from the namespace: the host refused an \
         unprivileged ICMP socket ({proto}): {dgram}; {range_text}; and a raw ICMP socket: \
         {raw} (it needs CAP_NET_RAW). To allow ping for your group: \
         sudo sysctl -w net.ipv4.ping_group_range=\"{gid} {gid}\" (or \"0 2147483647\", every \
         group, as systemd sets it; it covers IPv6 too), or run as root"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn is_root() -> bool {
        // SAFETY: FFI call without arguments.
        unsafe { libc::geteuid() == 0 }
    }

    async fn ping_loopback(p: &HostPinger) {
        let dst: IpAddr = if p.is_v6() {
            Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        // Two namespace flows with the same sequence numbers come back
        // apart, each in its own numbering.
        p.send(dst, 0x1234, 7, b"flow one").await.unwrap();
        p.send(dst, 0x4321, 7, b"flow two").await.unwrap();
        p.send(dst, 0x1234, 8, &[0xab; 1400]).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let r = tokio::time::timeout(Duration::from_secs(5), p.recv())
                .await
                .expect("echo reply within 5 s")
                .unwrap();
            assert_eq!(r.src, dst);
            got.push((r.ident, r.seq, r.payload));
        }
        got.sort();
        assert_eq!(
            got,
            vec![
                (0x1234, 7, b"flow one".to_vec()),
                (0x1234, 8, vec![0xab; 1400]),
                (0x4321, 7, b"flow two".to_vec()),
            ]
        );
        // Wrong family is refused, not sent.
        let other: IpAddr = if p.is_v6() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv6Addr::LOCALHOST.into()
        };
        let e = p.send(other, 1, 1, b"").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn hostping_raw_socket_echo_to_loopback() {
        if !is_root() {
            eprintln!("skipped: a raw ICMP socket needs CAP_NET_RAW (run as root)");
            return;
        }
        let p = HostPinger::open_kind(false, SocketKind::Raw).unwrap();
        ping_loopback(&p).await;
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("skipped IPv6: no ::1 on this host");
            return;
        }
        let p = HostPinger::open_kind(true, SocketKind::Raw).unwrap();
        ping_loopback(&p).await;
    }

    #[tokio::test]
    async fn hostping_open_falls_back_to_what_the_host_allows() {
        match HostPinger::open(false) {
            Ok(p) => {
                eprintln!("opened a {:?} ICMP socket", p.kind());
                ping_loopback(&p).await;
            }
            Err(e) => {
                // Neither allowed: the message must say what to change.
                eprintln!("skipped the echo: {e}");
                assert!(
                    e.to_string()
                        .contains("sysctl -w net.ipv4.ping_group_range"),
                    "{e}"
                );
            }
        }
    }

    /// The datagram path, in a network namespace of this thread's own where
    /// ping_group_range can be opened to every group without touching the
    /// host's setting.
    #[test]
    fn hostping_datagram_socket_echo_in_private_netns() {
        let r = std::thread::spawn(|| {
            if !enter_private_netns() {
                return;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let p = HostPinger::open_kind(false, SocketKind::Datagram).unwrap();
                assert_eq!(p.kind(), SocketKind::Datagram);
                ping_loopback(&p).await;
                // open() now takes the unprivileged path first.
                assert_eq!(
                    HostPinger::open(false).unwrap().kind(),
                    SocketKind::Datagram
                );
                match HostPinger::open_kind(true, SocketKind::Datagram) {
                    Ok(p) => ping_loopback(&p).await,
                    Err(e) => eprintln!("skipped IPv6: {e}"),
                }
            });
        })
        .join();
        if let Err(panic) = r {
            std::panic::resume_unwind(panic);
        }
    }

    /// Moves this thread into a new network namespace with `lo` up and
    /// ping sockets allowed for every group; false (and why) if it cannot.
    fn enter_private_netns() -> bool {
        // SAFETY: FFI call; CLONE_NEWNET moves only the calling thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "skipped: cannot create a network namespace ({}); needs CAP_SYS_ADMIN",
                io::Error::last_os_error()
            );
            return false;
        }
        // Never write the sysctl unless this thread really left the host's
        // namespace: /proc/sys/net is the writer's namespace.
        let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let process = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(
            mine, process,
            "unshare did not change this thread's namespace"
        );
        std::fs::write(PING_GROUP_RANGE, "0 2147483647").unwrap();
        set_lo_up();
        true
    }

    fn set_lo_up() {
        // SAFETY: FFI call with constant arguments.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        assert!(s >= 0, "{}", io::Error::last_os_error());
        // SAFETY: s was just returned by socket().
        let s = unsafe { OwnedFd::from_raw_fd(s) };
        // SAFETY: ifreq is plain data; all zeroes is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = CString::new("lo").unwrap();
        for (d, c) in ifr.ifr_name.iter_mut().zip(name.as_bytes_with_nul()) {
            *d = *c as libc::c_char;
        }
        // SAFETY: FFI calls; ifr is live and names the interface.
        unsafe {
            assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr), 0);
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr), 0);
        }
    }

    #[test]
    fn hostping_error_text_says_what_to_change() {
        let eacces = || io::Error::from_raw_os_error(libc::EACCES);
        let eperm = || io::Error::from_raw_os_error(libc::EPERM);

        let m = no_socket_message(false, Some((1, 0)), 1000, &[1000], &eacces(), &eperm());
        assert!(m.contains("IPv4 ICMP echo"), "{m}");
        assert!(m.contains("IPPROTO_ICMP)"), "{m}");
        assert!(m.contains("\"1 0\", which allows no group"), "{m}");
        assert!(
            m.contains("sysctl -w net.ipv4.ping_group_range=\"1000 1000\""),
            "{m}"
        );
        assert!(m.contains("\"0 2147483647\""), "{m}");
        assert!(m.contains("CAP_NET_RAW"), "{m}");
        assert!(m.contains("Permission denied"), "{m}");
        assert!(m.contains("Operation not permitted"), "{m}");

        let m = no_socket_message(
            true,
            Some((100, 200)),
            1000,
            &[27, 1000, 27],
            &eacces(),
            &eperm(),
        );
        assert!(m.contains("IPPROTO_ICMPV6"), "{m}");
        assert!(
            m.contains("\"100 200\", which excludes your group id 1000 (and groups 27)"),
            "{m}"
        );

        // In range, yet refused: say so rather than blame the range.
        let eafnosupport = io::Error::from_raw_os_error(libc::EAFNOSUPPORT);
        let m = no_socket_message(
            true,
            Some((0, 2147483647)),
            1000,
            &[],
            &eafnosupport,
            &eperm(),
        );
        assert!(m.contains("which includes your group id 1000"), "{m}");
        assert!(m.contains("another cause"), "{m}");

        let m = no_socket_message(false, None, 5, &[], &eacces(), &eperm());
        assert!(m.contains("ping_group_range could not be read"), "{m}");
    }

    #[test]
    fn hostping_group_range_parses() {
        assert_eq!(parse_group_range("1\t0\n"), Some((1, 0)));
        assert_eq!(parse_group_range("0 2147483647"), Some((0, 2147483647)));
        assert_eq!(parse_group_range("x y"), None);
        assert_eq!(parse_group_range("5"), None);
        assert_eq!(parse_group_range(""), None);
    }

    #[test]
    fn hostping_packets_build_and_parse() {
        // Raw IPv4 requests carry a correct checksum.
        let req = echo_request(false, SocketKind::Raw, 0x1234, 0x0102, b"abc");
        assert_eq!(req[..2], [ICMP_ECHO_REQUEST, 0]);
        assert_eq!(req[4..8], [0x12, 0x34, 0x01, 0x02]);
        assert_eq!(checksum::sum(&req), 0xffff);
        // The kernel checksums the others.
        let req6 = echo_request(true, SocketKind::Raw, 1, 2, b"abc");
        assert_eq!(req6[..4], [ICMPV6_ECHO_REQUEST, 0, 0, 0]);

        let mut reply = req.clone();
        reply[0] = ICMP_ECHO_REPLY;
        assert_eq!(
            parse_echo_reply(false, &reply),
            Some((0x1234, 0x0102, &b"abc"[..]))
        );
        assert_eq!(parse_echo_reply(true, &reply), None);
        assert_eq!(parse_echo_reply(false, &req), None); // a request
        assert_eq!(parse_echo_reply(false, &reply[..7]), None);
        reply[1] = 1;
        assert_eq!(parse_echo_reply(false, &reply), None); // nonzero code

        // An IPv4 header in front is stripped; garbage gives None, never a panic.
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        ip.extend_from_slice(&req);
        assert_eq!(strip_ipv4(&ip), Some(&req[..]));
        assert_eq!(strip_ipv4(&[]), None);
        assert_eq!(strip_ipv4(&[0x4f, 0, 0]), None); // IHL beyond the data
        assert_eq!(strip_ipv4(&[0x44; 20]), None); // IHL < 5
        assert_eq!(strip_ipv4(&[0x65; 40]), None); // not IPv4
        ip[9] = 17;
        assert_eq!(strip_ipv4(&ip), None); // not ICMP
    }
}
