//! `berth run`'s namespace plumbing: a network namespace whose only link is a
//! TUN device, configured through rtnetlink, whose queue fd comes back to berth
//! in the host's namespace (as slirp4netns and pasta do).
//!
//! berth is multi-threaded, and unshare(CLONE_NEWUSER) needs a single-threaded
//! process, and nothing but async-signal-safe calls may run between fork and
//! exec. So [`start`] re-executes berth itself as a helper (`berth __ns-init`,
//! dispatched before clap so it never shows in --help). The helper makes (or,
//! with `pid`, joins) the namespaces, creates and configures the TUN, sends its
//! fd back with SCM_RIGHTS over a socketpair, waits for the "go" byte of
//! [`Namespace::start_command`] and then execs CMD: the helper's pid is CMD's,
//! so its exit status and signals are CMD's.
//!
//! Wire protocol on the SOCK_SEQPACKET pair (one datagram each):
//! helper → berth: `O` + vnet flag byte, with the TUN fd attached; or `E` +
//! errno (i32, little endian) + message text. berth → helper: `G` (go).

use super::netlink::Rtnl;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::str::FromStr;

/// What namespace to make (or join) and how to set up its TUN link.
#[derive(Debug, Clone)]
pub struct NsConfig {
    /// Program and arguments to exec inside; `None` with `pid`.
    pub cmd: Option<Vec<OsString>>,
    /// Join the user (when not root) and network namespace of this process
    /// instead of making new ones (as slirp4netns does for podman and
    /// rootlesskit); the TUN is created there.
    pub pid: Option<u32>,
    /// Name of the TUN device inside, e.g. "tun0".
    pub tun_name: String,
    /// 68..=65535; at least 1280 with `addr6`.
    pub mtu: u32,
    /// IPv4 address and prefix length on the TUN.
    pub addr4: (Ipv4Addr, u8),
    /// The IPv4 default route goes via this address (inside `addr4`'s subnet).
    pub gateway4: Ipv4Addr,
    /// IPv6 address, prefix length and gateway (default route ::/0 via it),
    /// added with IFA_F_NODAD so it is usable at once.
    pub addr6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    /// Ask for IFF_VNET_HDR with checksum and TSO offload; falls back to plain
    /// when the kernel refuses ([`Namespace::vnet_hdr`] says which).
    pub vnet_hdr: bool,
    /// Bind-mount a file with this content over /etc/resolv.conf inside (in a
    /// new mount namespace; not with `pid`).
    pub resolv_conf: Option<String>,
    /// Install a seccomp filter on CMD (before exec) that passes its
    /// accept(2)/accept4(2) calls to berth ([`super::handoff`]); the filter's
    /// notification fd comes back from [`Namespace::start_command`].
    pub accept_notify: bool,
}

impl Default for NsConfig {
    /// slirp4netns's addresses: 10.0.2.100/24 via 10.0.2.2, MTU 65520.
    fn default() -> NsConfig {
        NsConfig {
            cmd: None,
            pid: None,
            tun_name: "tun0".to_string(),
            mtu: 65520,
            addr4: (Ipv4Addr::new(10, 0, 2, 100), 24),
            gateway4: Ipv4Addr::new(10, 0, 2, 2),
            addr6: None,
            vnet_hdr: true,
            resolv_conf: None,
            accept_notify: false,
        }
    }
}

/// A namespace with its TUN fd, and CMD waiting for [`Namespace::start_command`].
pub struct Namespace {
    /// The TUN queue fd (close-on-exec, blocking), received from inside.
    pub tun: OwnedFd,
    /// Whether the fd carries virtio-net headers (IFF_VNET_HDR with offload).
    pub vnet_hdr: bool,
    /// The CMD process (None with `pid`).
    pub child: Option<NsChild>,
    /// Our end of the socketpair until "go" is sent.
    sock: Option<OwnedFd>,
    /// An accept notification fd is to follow "go".
    accept_notify: bool,
}

/// CMD's process. It is killed (SIGKILL) when the thread that called
/// [`start`] exits, so call [`start`] from a thread that lives as long as CMD
/// should (the main thread).
pub struct NsChild {
    child: Child,
    pid: i32,
    status: Option<ExitStatus>,
}

impl NsChild {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let s = self.child.wait()?;
        self.status = Some(s);
        Ok(s)
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let s = self.child.try_wait()?;
        if s.is_some() {
            self.status = s;
        }
        Ok(s)
    }

    /// Send signal `sig` to CMD (never to a reaped pid, which may be reused).
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Err(io::Error::other("the command has already exited"));
        }
        // SAFETY: kill(2) takes plain integers; the pid is our unreaped child,
        // so it still names that process.
        if unsafe { libc::kill(self.pid, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Namespace {
    /// Let CMD run: send the "go" byte. Call it once the TUN fd is served.
    /// With [`NsConfig::accept_notify`], returns the seccomp notification fd
    /// of CMD's accept calls, or why the filter could not be installed (CMD
    /// then runs without it).
    pub fn start_command(&mut self) -> io::Result<Option<Result<OwnedFd, String>>> {
        let sock = self.sock.take().ok_or_else(|| {
            io::Error::other("no command waits to start (joined --pid, or already started)")
        })?;
        send(sock.as_raw_fd(), b"G", MsgFlags::MSG_NOSIGNAL).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("starting the command: {e}"),
            )
        })?;
        if !self.accept_notify {
            return Ok(None);
        }
        let mut buf = [0u8; 1024];
        let (n, mut fds) = recv_with_fds(&sock, &mut buf, 1)?;
        Ok(Some(match buf.get(..n) {
            Some([b'F']) if fds.len() == 1 => Ok(fds.remove(0)),
            Some([b'N', text @ ..]) => Err(String::from_utf8_lossy(text).into_owned()),
            _ => Err("the namespace helper sent no accept filter".into()),
        }))
    }
}

impl Drop for Namespace {
    /// Dropped before "go": the helper reads EOF and exits without running
    /// CMD; reap it so no zombie is left.
    fn drop(&mut self) {
        if let Some(sock) = self.sock.take() {
            drop(sock);
            if let Some(c) = self.child.as_mut() {
                let _ = c.wait();
            }
        }
    }
}

/// Make (or join) the namespace, create and configure the TUN there, and get
/// its fd. CMD does not run until [`Namespace::start_command`].
pub fn start(cfg: &NsConfig) -> io::Result<Namespace> {
    validate(cfg)?;
    let (ours, mut child) = spawn_helper(
        "berth's namespace helper (/proc/self/exe)",
        |fd| to_args(cfg, fd),
        |_| {},
    )?;
    let reply = match read_reply(&ours) {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    match reply {
        Reply::Ok { tun, vnet_hdr } => {
            if cfg.pid.is_some() {
                // The helper exits once the fd is sent.
                let status = child.wait()?;
                if !status.success() {
                    return Err(io::Error::other(format!(
                        "berth's namespace helper failed after sending the TUN ({status})"
                    )));
                }
                return Ok(Namespace {
                    tun,
                    vnet_hdr,
                    child: None,
                    sock: None,
                    accept_notify: false,
                });
            }
            let pid = i32::try_from(child.id())
                .map_err(|_| io::Error::other("child pid out of range"))?;
            Ok(Namespace {
                tun,
                vnet_hdr,
                child: Some(NsChild {
                    child,
                    pid,
                    status: None,
                }),
                sock: Some(ours),
                accept_notify: cfg.accept_notify,
            })
        }
        Reply::Err(e) => {
            let _ = child.wait();
            Err(e)
        }
        Reply::Gone => {
            let status = child.wait()?;
            Err(io::Error::other(format!(
                "berth's namespace helper ended without a reply ({status})"
            )))
        }
    }
}

/// Re-execute berth as a helper (`berth __ns-…`) with one end of a
/// SOCK_SEQPACKET pair as its fd `args` names; `setup` adjusts the command
/// (stdio). Returns our end and the helper.
pub(super) fn spawn_helper(
    what: &str,
    args: impl FnOnce(RawFd) -> Vec<OsString>,
    setup: impl FnOnce(&mut Command),
) -> io::Result<(OwnedFd, Child)> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("berth").args(args(fd));
    setup(&mut cmd);
    // SAFETY: runs between fork and exec; fcntl is async-signal-safe and only
    // clears close-on-exec on the helper's end, in the child's copy. Created
    // with CLOEXEC so that processes other threads spawn never inherit it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {what}: {e}")))?;
    drop(theirs);
    Ok((ours, child))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn validate(cfg: &NsConfig) -> io::Result<()> {
    match (&cfg.cmd, cfg.pid) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either a command or a pid to join, not both".into(),
            ))
        }
        (None, None) => return Err(invalid("no command given".into())),
        (Some(c), None) if c.is_empty() => return Err(invalid("no command given".into())),
        _ => {}
    }
    if !(68..=65535).contains(&cfg.mtu) {
        return Err(invalid(format!(
            "MTU {} is out of range: it must be 68 (IPv4's minimum) to 65535 (a TUN's maximum)",
            cfg.mtu
        )));
    }
    if cfg.addr6.is_some() && cfg.mtu < 1280 {
        return Err(invalid(format!(
            "MTU {} is below 1280, IPv6's minimum: raise it or leave out the IPv6 address",
            cfg.mtu
        )));
    }
    let n = &cfg.tun_name;
    if n.is_empty()
        || n.len() >= libc::IFNAMSIZ
        || n.contains(['/', ' ', '\0'])
        || n == "."
        || n == ".."
    {
        return Err(invalid(format!(
            "bad TUN name {n:?} (1 to {} characters, no '/' or space)",
            libc::IFNAMSIZ - 1
        )));
    }
    if cfg.addr4.1 > 32 {
        return Err(invalid(format!("bad IPv4 prefix length /{}", cfg.addr4.1)));
    }
    if let Some((_, p, _)) = cfg.addr6 {
        if p > 128 {
            return Err(invalid(format!("bad IPv6 prefix length /{p}")));
        }
    }
    if let Some(r) = &cfg.resolv_conf {
        if cfg.pid.is_some() {
            return Err(invalid(
                "resolv.conf can only be set in a namespace berth makes, not with a pid to join"
                    .into(),
            ));
        }
        if r.contains('\0') {
            return Err(invalid("resolv.conf content contains a NUL byte".into()));
        }
    }
    Ok(())
}

enum Reply {
    Ok { tun: OwnedFd, vnet_hdr: bool },
    Err(io::Error),
    Gone,
}

/// One datagram into `buf`, with the fds it carries (close-on-exec), at most
/// `max_fds` of them: (bytes, fds).
pub(super) fn recv_with_fds(
    sock: &OwnedFd,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut cmsg = vec![0u8; nix::sys::socket::cmsg_space::<RawFd>() * max_fds.max(1)];
    let (bytes, fds) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = loop {
            match recvmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(Errno::EINTR) => continue,
                r => break r?,
            }
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        (msg.bytes, fds)
    };
    // SAFETY: SCM_RIGHTS just installed these fds in this process; nothing
    // else knows them, so each gets exactly one owner here.
    let owned = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    Ok((bytes, owned))
}

fn read_reply(sock: &OwnedFd) -> io::Result<Reply> {
    let mut buf = [0u8; 4096];
    let (bytes, mut owned) = recv_with_fds(sock, &mut buf, 1)?;
    match buf.get(..bytes) {
        Some([]) | None => Ok(Reply::Gone),
        Some([b'O', v]) if owned.len() == 1 => Ok(Reply::Ok {
            tun: owned.remove(0),
            vnet_hdr: *v != 0,
        }),
        Some([b'E', e0, e1, e2, e3, text @ ..]) => {
            let errno = i32::from_le_bytes([*e0, *e1, *e2, *e3]);
            let kind = io::Error::from_raw_os_error(errno).kind();
            Ok(Reply::Err(io::Error::new(
                kind,
                String::from_utf8_lossy(text).into_owned(),
            )))
        }
        Some(_) => Err(io::Error::other(
            "berth's namespace helper sent a malformed reply",
        )),
    }
}

// ---- the helper side: `berth __ns-init` ----

/// The helper's configuration, passed as arguments (they also show in `ps`).
struct InitArgs {
    sock: RawFd,
    parent: i32,
    tun: String,
    mtu: u32,
    addr4: (Ipv4Addr, u8),
    gw4: Ipv4Addr,
    addr6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    vnet_hdr: bool,
    accept_notify: bool,
    pid: Option<u32>,
    resolv_conf: Option<String>,
    cmd: Vec<OsString>,
}

fn to_args(cfg: &NsConfig, sock: RawFd) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["__ns-init".into()];
    let mut kv = |k: &str, v: String| {
        a.push(k.into());
        a.push(v.into());
    };
    kv("--sock", sock.to_string());
    kv("--parent", std::process::id().to_string());
    kv("--tun", cfg.tun_name.clone());
    kv("--mtu", cfg.mtu.to_string());
    kv("--addr4", format!("{}/{}", cfg.addr4.0, cfg.addr4.1));
    kv("--gw4", cfg.gateway4.to_string());
    if let Some((a6, p, g)) = cfg.addr6 {
        kv("--addr6", format!("{a6}/{p}"));
        kv("--gw6", g.to_string());
    }
    if let Some(pid) = cfg.pid {
        kv("--pid", pid.to_string());
    }
    if let Some(r) = &cfg.resolv_conf {
        kv("--resolv-conf", r.clone());
    }
    if cfg.vnet_hdr {
        a.push("--vnet-hdr".into());
    }
    if cfg.accept_notify && cfg.cmd.is_some() {
        a.push("--accept-notify".into());
    }
    if let Some(cmd) = &cfg.cmd {
        a.push("--".into());
        a.extend(cmd.iter().cloned());
    }
    a
}

/// `A/P` into an address and a prefix length.
pub(crate) fn parse_cidr<T: FromStr>(s: &str) -> Result<(T, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX"))?;
    let a = a.parse().map_err(|_| format!("{s:?}: bad address"))?;
    let p = p.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
    Ok((a, p))
}

fn parse<T: FromStr>(k: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{k}: bad value {v:?}"))
}

impl InitArgs {
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<InitArgs, String> {
        let mut it = args.into_iter();
        let mut m = std::collections::HashMap::new();
        let mut vnet_hdr = false;
        let mut accept_notify = false;
        let mut cmd = Vec::new();
        while let Some(k) = it.next() {
            let k = k
                .into_string()
                .map_err(|k| format!("unexpected argument {k:?}"))?;
            match k.as_str() {
                "--" => {
                    cmd.extend(it.by_ref());
                    break;
                }
                "--vnet-hdr" => vnet_hdr = true,
                "--accept-notify" => accept_notify = true,
                _ => {
                    let v = it
                        .next()
                        .and_then(|v| v.into_string().ok())
                        .ok_or_else(|| format!("{k}: missing value"))?;
                    m.insert(k, v);
                }
            }
        }
        let get = |k: &str| m.get(k).ok_or_else(|| format!("missing {k}"));
        let addr6 = match (m.get("--addr6"), m.get("--gw6")) {
            (Some(a), Some(g)) => {
                let (a, p) = parse_cidr(a)?;
                Some((a, p, parse("--gw6", g)?))
            }
            (None, None) => None,
            _ => return Err("--addr6 and --gw6 go together".into()),
        };
        Ok(InitArgs {
            sock: parse("--sock", get("--sock")?)?,
            parent: parse("--parent", get("--parent")?)?,
            tun: get("--tun")?.clone(),
            mtu: parse("--mtu", get("--mtu")?)?,
            addr4: parse_cidr(get("--addr4")?)?,
            gw4: parse("--gw4", get("--gw4")?)?,
            addr6,
            vnet_hdr,
            accept_notify,
            pid: m.get("--pid").map(|p| parse("--pid", p)).transpose()?,
            resolv_conf: m.get("--resolv-conf").cloned(),
            cmd,
        })
    }
}

/// `berth __ns-init …`: the helper process [`start`] spawns. Never returns
/// when CMD execs.
pub fn init_main() -> ExitCode {
    let a = match InitArgs::parse(std::env::args_os().skip(2)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "berth __ns-init: {e} (an internal helper of `berth run`, not for direct use)"
            );
            return ExitCode::from(125);
        }
    };
    // SAFETY: the fd number is the socket our parent left open for us; this
    // is its only owner in this process.
    let sock = unsafe { OwnedFd::from_raw_fd(a.sock) };
    // CMD must not inherit it.
    if fcntl(&sock, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
        return ExitCode::from(125);
    }
    match setup(&a) {
        Ok((tun, vnet)) => {
            let msg = [b'O', u8::from(vnet)];
            let fds = [tun.as_raw_fd()];
            let sent = sendmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &[IoSlice::new(&msg)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
            // Our copy of the TUN fd goes; berth holds the device now.
            drop(tun);
            if sent.is_err() {
                return ExitCode::from(125);
            }
        }
        Err(e) => {
            let mut msg = vec![b'E'];
            msg.extend(e.raw_os_error().unwrap_or(0).to_le_bytes());
            msg.extend(e.to_string().as_bytes());
            // Past the 4 KiB the reader takes, the text is cut.
            msg.truncate(4096);
            let _ = send(sock.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL);
            return ExitCode::from(1);
        }
    }
    let Some(prog) = a.cmd.first() else {
        // Joined `pid`: nothing to run.
        return ExitCode::SUCCESS;
    };
    let mut go = [0u8; 1];
    loop {
        match recv(sock.as_raw_fd(), &mut go, MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            Ok(1) if go[0] == b'G' => break,
            // berth gave up (or died) before starting CMD.
            _ => return ExitCode::from(125),
        }
    }
    // CMD never outlives berth. The signal fires when the parent *thread*
    // ends; if berth ended before this call, nothing would fire, so check.
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err()
        || nix::unistd::getppid().as_raw() != a.parent
    {
        return ExitCode::from(125);
    }
    if a.accept_notify {
        // Installed last, so none of the helper's own calls are caught; it
        // stays on CMD and everything CMD starts.
        let sent = match super::handoff::install_filter() {
            Ok(fd) => sendmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &[IoSlice::new(b"F")],
                &[ControlMessage::ScmRights(&[fd.as_raw_fd()])],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map(drop),
            Err(e) => {
                let mut msg = b"N".to_vec();
                msg.extend(e.to_string().as_bytes());
                msg.truncate(1024);
                send(sock.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL).map(drop)
            }
        };
        if sent.is_err() {
            return ExitCode::from(125);
        }
    }
    drop(sock);
    // std's exec searches PATH, and resets the signal mask and SIGPIPE.
    let e = Command::new(prog).args(&a.cmd[1..]).exec();
    let errno = e.raw_os_error().unwrap_or(0);
    let why = if errno != 0 {
        Errno::from_raw(errno).desc().to_string()
    } else {
        e.to_string()
    };
    eprintln!("berth run: cannot run {}: {why}", prog.to_string_lossy());
    // As shells do: 127 not found, 126 found but not executable.
    ExitCode::from(if errno == libc::ENOENT { 127 } else { 126 })
}

/// Namespaces, TUN, addresses and routes. Returns the TUN fd and whether it
/// has virtio-net headers.
fn setup(a: &InitArgs) -> io::Result<(OwnedFd, bool)> {
    let rootless = !nix::unistd::geteuid().is_root();
    match a.pid {
        Some(pid) => join(pid, rootless)?,
        None => create(a, rootless)?,
    }
    let (tun, vnet) = open_tun(&a.tun, a.vnet_hdr, rootless)?;
    configure(a, rootless)?;
    Ok((tun, vnet))
}

/// The system's words for `e`, without std's "(os error N)".
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// "WHAT: REASON".
fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {}", describe(&e)))
}

/// "WHAT: REASON — WHAT TO CHANGE".
fn hint(e: io::Error, what: impl std::fmt::Display, fix: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {} — {fix}", describe(&e)))
}

fn errno_ctx(e: Errno, what: impl std::fmt::Display) -> io::Error {
    ctx(io::Error::from(e), what)
}

fn errno_hint(e: Errno, what: impl std::fmt::Display, fix: impl std::fmt::Display) -> io::Error {
    hint(io::Error::from(e), what, fix)
}

fn sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Why unprivileged user namespaces fail here, from the sysctls that forbid them.
fn userns_blockers() -> Vec<String> {
    let mut v = Vec::new();
    if sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        v.push("user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)".into());
    }
    if sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        v.push(
            "kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)"
                .into(),
        );
    }
    if sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        v.push(
            "AppArmor restricts unprivileged user namespaces \
             (sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor \
             profile for berth with `userns,`)"
                .into(),
        );
    }
    v
}

fn userns_error(e: Errno) -> io::Error {
    let b = userns_blockers();
    let why = if b.is_empty() {
        "unprivileged user namespaces are disabled or used up: check \
         /proc/sys/user/max_user_namespaces (must be above 0), \
         kernel.unprivileged_userns_clone (must be 1 where it exists) and \
         kernel.apparmor_restrict_unprivileged_userns (must be 0 where it exists); \
         in a container, its seccomp profile may forbid them"
            .to_string()
    } else {
        b.join("; ")
    };
    errno_hint(
        e,
        "cannot create a user namespace",
        format!("{why}; or run berth as root"),
    )
}

/// EPERM inside our own user namespace: AppArmor may have let the namespace
/// be made but stripped its capabilities.
fn rootless_eperm(e: io::Error, what: String, rootless: bool) -> io::Error {
    if rootless && e.raw_os_error() == Some(libc::EPERM) {
        let b = userns_blockers();
        if !b.is_empty() {
            return hint(e, what, b.join("; "));
        }
    }
    ctx(e, what)
}

/// New network namespace; as non-root inside a new user namespace where we
/// are root (as `unshare -r`); with resolv.conf also a mount namespace.
fn create(a: &InitArgs, rootless: bool) -> io::Result<()> {
    let mut flags = CloneFlags::CLONE_NEWNET;
    if a.resolv_conf.is_some() {
        flags |= CloneFlags::CLONE_NEWNS;
    }
    if rootless {
        // Read before unshare: inside, our ids are unmapped until the maps exist.
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        unshare(flags | CloneFlags::CLONE_NEWUSER).map_err(userns_error)?;
        let write = |path: &str, text: String| {
            std::fs::write(path, text)
                .map_err(|e| rootless_eperm(e, format!("cannot write {path}"), true))
        };
        // Needed before an unprivileged gid_map (kernels since 3.19 have it).
        if std::path::Path::new("/proc/self/setgroups").exists() {
            write("/proc/self/setgroups", "deny".into())?;
        }
        write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    } else {
        unshare(flags).map_err(|e| errno_ctx(e, "cannot create a network namespace"))?;
    }
    if let Some(text) = &a.resolv_conf {
        resolv_conf(text)?;
    }
    Ok(())
}

/// Bind-mount a file holding `text` over /etc/resolv.conf in our new mount
/// namespace. The file lives on a tmpfs briefly mounted on /tmp and detached
/// again at once: the bind mount keeps it alive, and nothing of it shows
/// anywhere else. (A memfd cannot be bind-mounted: it is on no mount of ours.)
fn resolv_conf(text: &str) -> io::Result<()> {
    let what = |s: &str| format!("setting /etc/resolv.conf: {s}");
    // Our mounts must not propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| errno_ctx(e, what("making mounts private")))?;
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=1m"),
    )
    .map_err(|e| errno_ctx(e, what("mounting a tmpfs on /tmp")))?;
    let written = std::fs::write("/tmp/resolv.conf", text)
        .map_err(|e| ctx(e, what("writing the file")))
        .and_then(|()| {
            mount(
                Some("/tmp/resolv.conf"),
                "/etc/resolv.conf",
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                errno_hint(
                    e,
                    what("bind-mounting over it"),
                    "it must exist (a dangling symlink will not do)",
                )
            })
        });
    let detached = umount2("/tmp", MntFlags::MNT_DETACH)
        .map_err(|e| errno_ctx(e, what("unmounting the tmpfs from /tmp")));
    written.and(detached)
}

/// Enter `pid`'s network namespace (and, unless root, its user namespace).
pub(super) fn join(pid: u32, rootless: bool) -> io::Result<()> {
    let open = |kind: &str| {
        File::open(format!("/proc/{pid}/ns/{kind}")).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(
                e.kind(),
                format!("no process {pid} to join: it does not exist or has ended"),
            ),
            io::ErrorKind::PermissionDenied => io::Error::new(
                e.kind(),
                format!(
                    "may not join the namespaces of process {pid}: it belongs to another user \
                     (run berth as that user, or as root)"
                ),
            ),
            _ => ctx(e, format!("cannot open /proc/{pid}/ns/{kind}")),
        })
    };
    let net = open("net")?;
    // Our own namespace would get a second default route and berth's
    // addresses: the host's networking, broken.
    if same_ns(&net, "/proc/self/ns/net")? {
        return Err(invalid(format!(
            "process {pid} is in berth's own network namespace: --pid is for a process in a \
             namespace of its own (as `unshare -rn` makes)"
        )));
    }
    if rootless {
        let user = open("user")?;
        // setns into the namespace we are already in fails (EINVAL).
        if !same_ns(&user, "/proc/self/ns/user")? {
            setns(&user, CloneFlags::CLONE_NEWUSER).map_err(|e| {
                errno_hint(
                    e,
                    format!("cannot join the user namespace of process {pid}"),
                    "only the user who made it (or root) may",
                )
            })?;
        }
    }
    setns(&net, CloneFlags::CLONE_NEWNET).map_err(|e| {
        errno_hint(
            e,
            format!("cannot join the network namespace of process {pid}"),
            "it must belong to a user namespace this user made; or run berth as root",
        )
    })
}

/// Whether namespace file `f` is the namespace at `path`.
fn same_ns(f: &File, path: &str) -> io::Result<bool> {
    let ours = std::fs::metadata(path)?;
    let theirs = f.metadata()?;
    Ok((ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino()))
}

/// `struct ifreq` with the name and the flags member of the union, padded to
/// the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        // validate() keeps names below IFNAMSIZ; the last byte stays NUL.
        let n = name.len().min(libc::IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }
}

fn open_dev() -> io::Result<OwnedFd> {
    let path = "/dev/net/tun";
    match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => Ok(f.into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(hint(
            e,
            "cannot open /dev/net/tun",
            "load the tun module (as root: modprobe tun); in a container, pass the \
             device in (--device /dev/net/tun)",
        )),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let mode = std::fs::metadata(path)
                .map(|m| format!("mode {:04o}", m.mode() & 0o7777))
                .unwrap_or_else(|_| "its mode".into());
            Err(hint(
                e,
                "cannot open /dev/net/tun",
                format!(
                    "{mode} lets only its owner open it; most distributions ship it 0666, which \
                     is safe (making a TUN device still needs CAP_NET_ADMIN): as root, \
                     chmod 0666 /dev/net/tun"
                ),
            ))
        }
        Err(e) => Err(ctx(e, "cannot open /dev/net/tun")),
    }
}

fn tunsetiff(fd: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<()> {
    let mut req = IfReq::new(name);
    req.flags = libc::c_short::try_from(flags).map_err(io::Error::other)?;
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` is one
    // (repr(C), 40 bytes) and outlives the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn if_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| errno_ctx(e, format!("no device {name}")))
}

/// Create TUN `name` in this namespace, with virtio-net headers and
/// checksum/TSO offload when asked and the kernel allows.
fn open_tun(name: &str, vnet: bool, rootless: bool) -> io::Result<(OwnedFd, bool)> {
    if if_index(name).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("a network device named {name} already exists in the namespace: pick another TUN name"),
        ));
    }
    let plain = libc::IFF_TUN | libc::IFF_NO_PI;
    let fail =
        |e: io::Error| rootless_eperm(e, format!("cannot create TUN device {name}"), rootless);
    if vnet {
        let fd = open_dev()?;
        match tunsetiff(&fd, name, plain | libc::IFF_VNET_HDR) {
            Ok(()) => {
                let offload = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
                // SAFETY: TUNSETOFFLOAD takes its flags by value; fd is our TUN.
                let rc = unsafe {
                    libc::ioctl(
                        fd.as_raw_fd(),
                        libc::TUNSETOFFLOAD,
                        libc::c_ulong::from(offload),
                    )
                };
                if rc == 0 {
                    return Ok((fd, true));
                }
                // Closing our only fd destroys the device; make it again, plain.
                drop(fd);
            }
            // An old kernel without IFF_VNET_HDR: plain below.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(fail(e)),
        }
    }
    let fd = open_dev()?;
    tunsetiff(&fd, name, plain).map_err(fail)?;
    Ok((fd, false))
}

/// lo up; the TUN's MTU, up, addresses; default routes via the gateways.
fn configure(a: &InitArgs, rootless: bool) -> io::Result<()> {
    let eperm = |e: io::Error, what: String| rootless_eperm(e, what, rootless);
    let mut nl = Rtnl::open().map_err(|e| ctx(e, "cannot open an rtnetlink socket"))?;
    let lo = if_index("lo")?;
    nl.link_up(lo, None)
        .map_err(|e| eperm(e, "cannot bring lo up".into()))?;
    let dev = &a.tun;
    let idx = if_index(dev)?;
    nl.link_up(idx, Some(a.mtu)).map_err(|e| {
        eperm(
            e,
            format!("cannot set {dev}'s MTU to {} and bring it up", a.mtu),
        )
    })?;
    let (v4, p4) = a.addr4;
    nl.addr_add(idx, IpAddr::V4(v4), p4)
        .map_err(|e| eperm(e, format!("cannot add {v4}/{p4} to {dev}")))?;
    if let Some((v6, p6, _)) = a.addr6 {
        nl.addr_add(idx, IpAddr::V6(v6), p6).map_err(|e| {
            let what = format!("cannot add {v6}/{p6} to {dev}");
            if e.raw_os_error() == Some(libc::EACCES) {
                hint(
                    e,
                    what,
                    "IPv6 is disabled there (net.ipv6.conf.default.disable_ipv6)",
                )
            } else {
                eperm(e, what)
            }
        })?;
    }
    let route = |nl: &mut Rtnl, gw: IpAddr, subnet: String| {
        nl.default_route(idx, gw).map_err(|e| {
            let what = format!("cannot add the default route via {gw}");
            match e.raw_os_error() {
                Some(libc::ENETUNREACH) => {
                    hint(e, what, format!("the gateway must be inside {subnet}"))
                }
                Some(libc::EEXIST) => hint(e, what, "the namespace has one already"),
                _ => eperm(e, what),
            }
        })
    };
    route(&mut nl, IpAddr::V4(a.gw4), format!("{v4}/{p4}"))?;
    if let Some((v6, p6, g6)) = a.addr6 {
        route(&mut nl, IpAddr::V6(g6), format!("{v6}/{p6}"))?;
    }
    Ok(())
}

// ---- `berth __ns-test`: the plumbing alone, for tests/run_ns.rs ----

/// The name and IFF_* flags of the TUN device behind `fd` (TUNGETIFF).
pub fn tun_info(fd: BorrowedFd<'_>) -> io::Result<(String, i32)> {
    let mut req = IfReq::new("");
    // SAFETY: TUNGETIFF fills a `struct ifreq`; `req` is one and outlives the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNGETIFF, &mut req as *mut IfReq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(req.name.len());
    let name = String::from_utf8_lossy(&req.name[..end]).into_owned();
    Ok((name, i32::from(req.flags)))
}

/// Hidden test command: start the namespace, say what came back (on stderr,
/// so stdout is CMD's alone), send "go" and exit with CMD's status (128+N
/// when a signal N killed it). With --pid, hold the TUN until stdin closes.
#[derive(clap::Parser)]
#[command(name = "berth __ns-test")]
struct TestArgs {
    #[arg(long, default_value = "tun0")]
    tun: String,
    #[arg(long, default_value_t = 65520)]
    mtu: u32,
    /// ADDRESS/PREFIX
    #[arg(long, default_value = "10.0.2.100/24")]
    addr: String,
    #[arg(long, default_value = "10.0.2.2")]
    gateway: Ipv4Addr,
    /// ADDRESS/PREFIX
    #[arg(long, requires = "gateway6")]
    addr6: Option<String>,
    #[arg(long, requires = "addr6")]
    gateway6: Option<Ipv6Addr>,
    #[arg(long)]
    vnet_hdr: bool,
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long)]
    resolv_conf: Option<String>,
    /// Drop the namespace without sending "go" (CMD must never run).
    #[arg(long)]
    no_go: bool,
    /// Send this signal to CMD right after "go".
    #[arg(long)]
    signal: Option<i32>,
    #[arg(last = true)]
    cmd: Vec<OsString>,
}

pub fn test_main() -> ExitCode {
    use clap::Parser;
    use std::io::Read;
    let t = TestArgs::parse_from(std::env::args_os().skip(1));
    let run = || -> io::Result<ExitCode> {
        let addr4 = parse_cidr(&t.addr).map_err(invalid)?;
        let addr6 = match (&t.addr6, t.gateway6) {
            (Some(a), Some(g)) => {
                let (a, p) = parse_cidr(a).map_err(invalid)?;
                Some((a, p, g))
            }
            _ => None,
        };
        let cfg = NsConfig {
            accept_notify: false,
            cmd: (!t.cmd.is_empty()).then(|| t.cmd.clone()),
            pid: t.pid,
            tun_name: t.tun.clone(),
            mtu: t.mtu,
            addr4,
            gateway4: t.gateway,
            addr6,
            vnet_hdr: t.vnet_hdr,
            resolv_conf: t.resolv_conf.clone(),
        };
        let mut ns = start(&cfg)?;
        let (name, flags) = tun_info(ns.tun.as_fd())?;
        eprintln!(
            "ns-test: tun={name} vnet_hdr={} iff_vnet_hdr={} child={}",
            ns.vnet_hdr,
            flags & libc::IFF_VNET_HDR != 0,
            ns.child.as_ref().map_or(0, NsChild::pid)
        );
        if t.no_go {
            drop(ns);
            return Ok(ExitCode::SUCCESS);
        }
        let Some(mut child) = ns.child.take() else {
            eprintln!("ns-test: ready");
            let mut sink = Vec::new();
            let _ = io::stdin().read_to_end(&mut sink);
            return Ok(ExitCode::SUCCESS);
        };
        ns.start_command()?;
        let status = match t.signal {
            None => child.wait()?,
            Some(sig) => {
                child.signal(sig)?;
                loop {
                    if let Some(s) = child.try_wait()? {
                        break s;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        };
        Ok(match (status.code(), status.signal()) {
            (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(255)),
            (None, Some(s)) => {
                eprintln!("ns-test: killed by signal {s}");
                ExitCode::from(u8::try_from(128 + s).unwrap_or(255))
            }
            _ => ExitCode::FAILURE,
        })
    };
    match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether argv\[1\] is one of the hidden commands above.
pub fn hidden(arg: Option<&OsStr>) -> Option<fn() -> ExitCode> {
    match arg?.to_str()? {
        "__ns-init" => Some(init_main),
        "__ns-test" => Some(test_main),
        "__ns-sockets" => Some(super::nsock::helper_main),
        _ => None,
    }
}
