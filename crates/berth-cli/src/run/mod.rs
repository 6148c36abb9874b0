//! `berth run [OPTIONS] -- CMD [ARGS…]`: run an unmodified program in a new
//! network namespace (with a new user namespace when not root, as
//! `unshare -r` does) whose only link is a TUN device served by berth from the
//! host's namespace, like slirp4netns and pasta.
//!
//! How the pieces fit (each module says more):
//! - [`ns`] makes (or with `--pid` joins) the namespace in a fresh helper
//!   process, creates and configures the TUN there over netlink, passes its
//!   descriptor back over SCM_RIGHTS, then execs CMD once we say go.
//! - This module serves the descriptor with a berth stack whose interface is
//!   in forwarding mode (`berth::forward`): berth owns the gateway address
//!   (.2) and answers pings to it; every TCP/UDP flow the namespace opens, to
//!   any address, is taken by the forwarder and relayed by [`relay`] to a host
//!   socket (the gateway means the host's loopback, .3:53 the host's resolver);
//!   pings to other hosts go through [`icmp`].
//! - `-p` listens on the host and connects into the namespace: through berth,
//!   or, for clients on the host's loopback, with a kernel socket made inside
//!   the namespace by [`nsock`]'s helper, spliced to the host connection by
//!   [`splice`] (no copy through user space, any MTU; as pasta does) -- or,
//!   when CMD's accept comes to berth through the seccomp filter the helper
//!   installs, handed to the server itself ([`handoff`]: no relay at all).
//! - Everything runs on one thread (a current-thread tokio runtime); after
//!   each wake-up it polls for the next packet for a while ([`busy`]) when
//!   recent packets came that close together, so a round trip does not pay
//!   two sleeps and wake-ups.
//! - A control socket answers `berth ss` (the namespace-side sockets) and
//!   `berth ss --relays` (each relayed flow with its host socket).
//! - CMD's exit status is ours (128 + N when a signal N killed it; 125 when
//!   berth itself fails, as podman does); SIGINT/SIGTERM/SIGHUP sent to
//!   berth by another process are passed on to CMD (a terminal's Ctrl-C
//!   reaches CMD by itself, so it is not sent twice).

mod busy;
mod handoff;
pub mod hostping;
mod icmp;
mod netlink;
pub mod ns;
mod nsock;
pub mod relay;
pub mod resolv;
pub mod socks5;
pub mod spec;
mod splice;

use crate::args;
use berth::device::{self, Kind};
use berth::forward::{Forwarder, ForwarderConfig};
use berth::Stack;
use berth_core::wire::{Ipv4Cidr, Ipv6Cidr};
use clap::Args;
use relay::{Relay, RelayConfig};
use spec::{NetLayout, NetLayout6, PortForward, Proto};
use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The namespace's IPv4 subnet: .100 is the namespace, .2 the gateway
    /// (which also reaches the host's loopback), .3 the DNS forwarder.
    #[arg(long, value_name = "CIDR", default_value = "10.0.2.0/24", value_parser = spec::parse_net)]
    pub net: NetLayout,
    /// The namespace's IPv6 subnet, same layout (::100, ::2, ::3).
    #[arg(long, value_name = "CIDR", default_value = "fd00::/64", value_parser = spec::parse_net6)]
    pub net6: NetLayout6,
    /// No IPv6 in the namespace.
    #[arg(long)]
    pub no_ipv6: bool,
    /// MTU of the namespace's link (65520 as slirp4netns and pasta recommend
    /// for throughput; 1500 like an Ethernet).
    #[arg(long, value_name = "N", default_value_t = 65_520)]
    pub mtu: u32,
    /// Forward a host port into the namespace:
    /// [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp] (repeatable; HOSTIP default 0.0.0.0).
    #[arg(short = 'p', long = "publish", value_name = "SPEC", value_parser = spec::parse_port_forward)]
    pub publish: Vec<PortForward>,
    /// Carry every -p TCP connection through berth's stack. By default a
    /// client on the host's loopback is spliced to a kernel socket inside the
    /// namespace instead (faster; the server inside then sees the connection
    /// come from the namespace's own address rather than from the gateway).
    #[arg(long)]
    pub no_splice: bool,
    /// Do not hand -p connections from the host's loopback to the server's
    /// accept(2). By default a seccomp filter passes CMD's accept calls to
    /// berth, which gives the server the host client's own connection (no
    /// relay in between, as fast as the host's loopback); without it they
    /// are spliced.
    #[arg(long)]
    pub no_handoff: bool,
    /// Serve the network namespace of this running process instead of making
    /// one (no command then); berth exits when that process does.
    #[arg(long, value_name = "PID", conflicts_with = "cmd")]
    pub pid: Option<u32>,
    /// Relay every TCP flow through this SOCKS5 proxy (RFC 1928):
    /// HOST:PORT or socks5://[USER:PASS@]HOST:PORT.
    #[arg(long, value_name = "PROXY", value_parser = socks5::parse_proxy)]
    pub socks5: Option<(SocketAddr, Option<(String, String)>)>,
    /// The gateway does not reach the host's loopback (connections to it are
    /// refused).
    #[arg(long)]
    pub no_host_loopback: bool,
    /// Most relayed TCP connections at once (each holds a host descriptor);
    /// more are refused with a reset.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub max_connections: usize,
    /// Most TCP connection requests waiting for their host connection at once;
    /// more SYNs are dropped (the namespace retransmits them).
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_pending: usize,
    /// A host connection not made within this is given up, and the
    /// namespace's SYN answered with ICMP host unreachable.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = args::duration)]
    pub connect_timeout: Duration,
    /// Most UDP flows at once (each holds a host socket).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_udp_flows: usize,
    /// A UDP flow without a datagram for this long is closed (DNS: 10 s).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = args::duration)]
    pub udp_timeout: Duration,
    /// Control socket for `berth ss` (default: run-PID.sock in berth's
    /// control directory: /run/berth as root, else $XDG_RUNTIME_DIR/berth).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Leave the namespace's /etc/resolv.conf alone (the host's). By default
    /// CMD sees one naming the DNS forwarder (.3) instead of the host's
    /// servers, which may be loopback addresses (systemd-resolved's
    /// 127.0.0.53) that mean nothing inside; its search and options lines are
    /// kept. (Needs a mount namespace; not with --pid.)
    #[arg(long)]
    pub keep_resolv_conf: bool,
    /// TUN without IFF_VNET_HDR offload (one packet per read and write).
    #[arg(long)]
    pub no_offload: bool,
    /// After a wake-up, poll for the next packet for up to USEC microseconds
    /// instead of sleeping (as Linux's SO_BUSY_POLL); wake-ups after windows
    /// that caught nothing are left unpolled, so sparse traffic costs little
    /// CPU. 0: never poll.
    #[arg(long, value_name = "USEC", default_value_t = busy::DEFAULT_WINDOW_US)]
    pub busy_poll: u64,
    /// Say what was set up (addresses, control socket) on stderr, and the
    /// relay's counts at the end.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// The command and its arguments, after `--` (so that a mistyped option
    /// is a usage error rather than a command).
    #[arg(value_name = "CMD", last = true)]
    pub cmd: Vec<OsString>,
}

/// Largest send buffer of the stack's (namespace-side) connections.
const RUN_WMEM_MAX: usize = 1 << 20;

/// Exit status for berth's own failures (podman and docker use 125 too).
const FAILED: u8 = 125;

pub fn run(a: RunArgs) -> ExitCode {
    match run_inner(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth run: {e}");
            ExitCode::from(FAILED)
        }
    }
}

fn run_inner(a: RunArgs) -> io::Result<ExitCode> {
    if a.cmd.is_empty() && a.pid.is_none() {
        return Err(invalid(
            "give a command after --, e.g. `berth run -- curl http://10.0.2.2:8000/`, \
             or --pid PID to serve a running process's namespace",
        ));
    }
    let ipv6 = !a.no_ipv6;
    if ipv6 && a.mtu < 1280 {
        return Err(invalid(format!(
            "--mtu {}: IPv6 needs at least 1280 (RFC 8200 §5); raise it or add --no-ipv6",
            a.mtu
        )));
    }
    let (l4, l6) = (a.net, a.net6);
    let nofile = raise_nofile_limit();
    // Leave room for the UDP flows, the namespace's TUN, stdio and friends.
    let max_tcp = a
        .max_connections
        .min(nofile.saturating_sub(a.max_udp_flows as u64 + 64).max(16) as usize);
    let nameserver = resolv::host_nameserver().ok();
    if a.pid.is_none() {
        // Processes CMD leaves behind come to us when their parent dies, so
        // that they can be ended with it.
        // SAFETY: prctl with integer arguments; affects only this process.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }
    let cfg = ns::NsConfig {
        cmd: (!a.cmd.is_empty()).then(|| a.cmd.clone()),
        pid: a.pid,
        tun_name: "tun0".into(),
        mtu: a.mtu,
        addr4: (l4.guest, l4.net.1),
        gateway4: l4.gateway,
        addr6: ipv6.then_some((l6.guest, l6.net.1, l6.gateway)),
        vnet_hdr: !a.no_offload,
        accept_notify: handoff_wanted(&a),
        resolv_conf: (!a.keep_resolv_conf && a.pid.is_none()).then(|| {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            resolv::inside(&host, l4.dns, ipv6.then_some(l6.dns))
        }),
    };
    // On the main thread: CMD is tied to it (PR_SET_PDEATHSIG).
    let mut nsp = ns::start(&cfg)?;
    let tun = nsp.tun.try_clone()?;
    let mut config = berth_core::Config::default();
    // No pacing on a link to the same machine, as Linux does without the fq
    // qdisc: with microsecond RTTs it only wakes the timer thread to send
    // what could go at once (11 % of a core in a bulk transfer).
    config.tcp.pacing = false;
    // Every connection of this stack crosses only the TUN to the namespace's
    // kernel, microseconds away: 1 MiB of send buffer is many times its
    // bandwidth-delay product. The 8 MiB autotuning allows elsewhere only made
    // the send ring a cache-cold 8 MiB that every byte is copied into.
    config.tcp.wmem_max = RUN_WMEM_MAX;
    let stack = Stack::new(config);
    let gw4 = Ipv4Cidr::new(l4.gateway, l4.net.1).ok_or_else(|| invalid("bad --net prefix"))?;
    let mut opts =
        device::DeviceOptions::new(&format!("run-{}", std::process::id()), Kind::Tun, gw4);
    if ipv6 {
        opts.ipv6 =
            vec![Ipv6Cidr::new(l6.gateway, l6.net.1).ok_or_else(|| invalid("bad --net6 prefix"))?];
    }
    opts.mtu = Some(a.mtu as usize);
    // The relay's runtime reads the TUN itself: the tasks a batch of packets
    // wakes then run on the reading worker, without a wake-up of another
    // thread per packet (a round trip costs one hop less).
    opts.external_reader = true;
    let mut dev = device::attach_fd(&stack, tun, nsp.vnet_hdr, &opts)?;
    let reader = dev
        .take_reader()
        .ok_or_else(|| io::Error::other("the device has no reader to take"))?;
    let fwd = Arc::new(Forwarder::new(
        &stack,
        &[dev.iface()],
        ForwarderConfig {
            tcp_max_in_flight: a.max_pending,
            udp_max_flows: a.max_udp_flows,
        },
    )?);
    let relay = Relay::new(RelayConfig {
        gateway4: l4.gateway,
        gateway6: ipv6.then_some(l6.gateway),
        dns4: l4.dns,
        dns6: ipv6.then_some(l6.dns),
        host_loopback: !a.no_host_loopback,
        nameserver,
        socks5: a.socks5.clone(),
        max_tcp,
        connect_timeout: a.connect_timeout,
        max_pending: a.max_pending,
        udp_idle: a.udp_timeout,
        dns_idle: Duration::from_secs(10),
    });
    let busy = (a.busy_poll > 0)
        .then(|| Arc::new(busy::BusyPoll::new(Duration::from_micros(a.busy_poll))));
    let rt = RelayRuntime::start(busy.clone())?;
    if let Some(bp) = &busy {
        let (bp, stats) = (Arc::clone(bp), dev.stats_handle());
        rt.spawn(async move { bp.run(|| stats.frames()).await });
    }
    rt.spawn(read_tun(reader)?);
    rt.spawn(Arc::clone(&relay).run(Arc::clone(&fwd)));
    let pings = icmp::start(&stack, rt.handle(), l4.guest, ipv6.then_some(l6.guest))?;
    let ns_pid = nsp.child.as_ref().map(|c| c.pid() as u32).or(a.pid);
    let handoff = cfg.accept_notify.then(|| {
        handoff::Handoff::new(
            a.publish
                .iter()
                .filter(|p| p.proto == Proto::Tcp)
                .map(|p| p.guest_port)
                .collect(),
        )
    });
    let direct = match ns_pid {
        Some(pid) if !a.no_splice && a.publish.iter().any(|p| p.proto == Proto::Tcp) => {
            match nsock::NsSockets::start(pid) {
                Ok(s) => Some(relay::Direct {
                    ns: Arc::new(s),
                    handoff: handoff.clone(),
                }),
                Err(e) => {
                    eprintln!("berth run: -p connections go through the stack (no splicing): {e}");
                    None
                }
            }
        }
        _ => None,
    };
    for &p in &a.publish {
        let guest = match p.host.ip() {
            IpAddr::V6(_) if ipv6 => SocketAddr::new(l6.guest.into(), p.guest_port),
            _ => SocketAddr::new(l4.guest.into(), p.guest_port),
        };
        let fwd = Forward {
            relay: Arc::clone(&relay),
            stack: stack.clone(),
            direct: direct.clone(),
        };
        publish(rt.handle(), fwd, p, guest, a.udp_timeout)?;
    }
    let control_path = a.control.clone().unwrap_or_else(|| {
        crate::serve::control_dir().join(format!("run-{}.sock", std::process::id()))
    });
    if let Some(dir) = control_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let info = serde_json::json!({
        "device": "tun0",
        "kind": "run",
        "addr": format!("{}/{}", l4.gateway, l4.net.1),
        "namespace": l4.guest.to_string(),
        "mtu": a.mtu,
        "offload": dev.offload(),
        "pid": std::process::id(),
        "command_pid": nsp.child.as_ref().map(|c| c.pid()),
    });
    let relays = {
        let relay = Arc::clone(&relay);
        Arc::new(move |cmd: &str| {
            (cmd == "relays").then(|| {
                let rows: Vec<_> = relay.flows().iter().map(|r| r.json()).collect();
                serde_json::json!({"ok": true, "relays": rows})
            })
        }) as crate::serve::ExtraCommands
    };
    let control =
        crate::serve::Control::bind(&control_path, &stack, dev.iface(), info, Some(relays))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("control socket {}: {e}", control_path.display()),
                )
            })?;
    if a.verbose {
        eprintln!(
            "berth run: namespace {}{} via {}{}, dns {}{}, mtu {}{}, control {}",
            l4.guest,
            if ipv6 {
                format!(" {}", l6.guest)
            } else {
                String::new()
            },
            l4.gateway,
            if ipv6 {
                format!(" {}", l6.gateway)
            } else {
                String::new()
            },
            l4.dns,
            match nameserver {
                Some(n) => format!(" (→ {n})"),
                None => " (no host resolver in /etc/resolv.conf)".into(),
            },
            a.mtu,
            if dev.offload() { " offload" } else { "" },
            control_path.display()
        );
    }
    let signals = SignalPipe::install()?;
    let status = match nsp.child.as_ref().map(|c| c.pid()) {
        Some(pid) => {
            match nsp.start_command()? {
                Some(Ok(fd)) => match &handoff {
                    Some(h) => h.attach(fd)?,
                    None => drop(fd),
                },
                Some(Err(why)) if a.verbose => {
                    eprintln!("berth run: -p connections are spliced, not handed off: {why}")
                }
                _ => {}
            }
            signals.forward_to(pid);
            let child = nsp
                .child
                .as_mut()
                .ok_or_else(|| io::Error::other("the command vanished"))?;
            let s = child.wait()?;
            end_leftovers();
            match (s.code(), s.signal()) {
                (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(255)),
                (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(255)),
                _ => ExitCode::from(FAILED),
            }
        }
        None => {
            // --pid: until that process (and with it the namespace's TUN) is
            // gone, or we are told to stop.
            let pid = a.pid.unwrap_or(0) as i32;
            while process_alive(pid) && dev.is_running() && !signals.stop_requested() {
                std::thread::sleep(Duration::from_millis(100));
            }
            ExitCode::SUCCESS
        }
    };
    // Everything goes now: relayed connections (host sockets closed with
    // the runtime's tasks), the control socket file, the stack.
    drop(control);
    rt.stop();
    if a.verbose {
        let s = &relay.stats;
        let g = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "berth run: relayed {} TCP ({} refused, {} over the limit), {} UDP flows ({} idle), \
             {} pings; -p: {} TCP through the stack, {} spliced ({} fallbacks); {} bytes out, {} in",
            g(&s.tcp_relayed),
            g(&s.tcp_refused),
            g(&s.tcp_limit),
            g(&s.udp_flows),
            g(&s.udp_idle_closed),
            g(&pings.requests),
            g(&s.tcp_forwarded),
            g(&s.tcp_spliced),
            g(&s.splice_fallbacks),
            g(&s.bytes_out),
            g(&s.bytes_in)
        );
        if let Some(h) = &handoff {
            eprintln!(
                "berth run: accept hand-off: {} host connections handed to the server, {} other connections passed on, {} spliced",
                g(&h.handed),
                g(&h.passed),
                g(&h.spliced)
            );
        }
        if let Some(bp) = &busy {
            let (hits, misses) = bp.score();
            eprintln!(
                "berth run: busy polling: {} polls, {} paused as the CPU was wanted, {hits} windows caught a packet, {misses} caught none",
                bp.polls(),
                bp.backoffs(),
            );
        }
    }
    drop(fwd);
    drop(dev);
    stack.shutdown();
    Ok(status)
}

/// The relay's tokio runtime: one thread, as slirp4netns and pasta have one
/// loop. The TUN reader, the relay tasks and the host sockets then share
/// it: a packet read from the TUN wakes its task on the same thread, and a
/// round trip costs no hand-over between threads.
struct RelayRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RelayRuntime {
    /// `busy`: the poller each wake-up of the thread starts.
    fn start(busy: Option<Arc<busy::BusyPoll>>) -> io::Result<RelayRuntime> {
        let mut b = tokio::runtime::Builder::new_current_thread();
        b.enable_all();
        if let Some(bp) = busy {
            b.on_thread_unpark(move || bp.unparked());
        }
        let rt = b.build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("berth-relay".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
                // Relayed connections end with the tasks that hold them.
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(RelayRuntime {
            handle,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    fn spawn<F>(&self, f: F)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f);
    }

    /// End every task (closing what they hold) and the thread.
    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The TUN's packets into the stack, read when the runtime says the fd is
/// readable, until the stack shuts down or the device fails.
fn read_tun(
    mut reader: device::ExternalReader,
) -> io::Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    // A duplicate to wait on: readiness is the open file's, shared by both.
    let fd = reader.fd().try_clone_to_owned()?;
    Ok(async move {
        // SAFETY: `fd` is an owned, open descriptor that the AsyncFd keeps
        // (and closes when dropped), so it stays the same file meanwhile.
        let afd = match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(a) => a,
            Err(e) => {
                eprintln!("berth run: cannot poll the TUN: {e}");
                return;
            }
        };
        // After a wake-up, one read first: its packets go to the stack and
        // the tasks they wake run (a request reaches the host socket) before
        // the reads that find the queue empty, which a round trip then does
        // not wait for. Then batches until EAGAIN, as readiness is an edge.
        let mut max_reads = 1;
        loop {
            let Ok(mut ready) = afd.readable().await else {
                return;
            };
            match reader.read_some(max_reads) {
                Ok(device::ReadStatus::Drained) => {
                    ready.clear_ready();
                    max_reads = 1;
                }
                Ok(device::ReadStatus::More) => {
                    drop(ready);
                    max_reads = usize::MAX;
                    tokio::task::yield_now().await;
                }
                Ok(device::ReadStatus::Closed) | Err(_) => return,
            }
        }
    })
}

/// CMD's accepts go through berth ([`handoff`]) when there is a TCP forward
/// to splice (a made namespace, not --pid: the filter goes on before exec).
fn handoff_wanted(a: &RunArgs) -> bool {
    !a.no_handoff
        && !a.no_splice
        && a.pid.is_none()
        && !a.cmd.is_empty()
        && a.publish.iter().any(|p| p.proto == Proto::Tcp)
}

/// What a `-p` listener needs to carry its connections.
struct Forward {
    relay: Arc<Relay>,
    stack: Stack,
    /// Sockets from inside the namespace, for splicing and hand-off (None:
    /// --no-splice).
    direct: Option<relay::Direct>,
}

/// Listen on the host for one `-p` and connect each client into the namespace.
fn publish(
    rt: &tokio::runtime::Handle,
    fwd: Forward,
    p: PortForward,
    guest: SocketAddr,
    idle: Duration,
) -> io::Result<()> {
    let Forward {
        relay,
        stack,
        direct,
    } = fwd;
    let what = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("-p {p}: cannot listen on {}: {e}", p.host),
        )
    };
    // Bound here, so that a port in use is an error before CMD starts.
    let _in_runtime = rt.enter();
    match p.proto {
        Proto::Tcp => {
            let l = std::net::TcpListener::bind(p.host)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(what)?;
            rt.spawn(async move {
                while let Ok((c, _)) = l.accept().await {
                    let (relay, stack) = (Arc::clone(&relay), stack.clone());
                    tokio::spawn(relay.port_forward_tcp(stack, c, guest, direct.clone()));
                }
            });
        }
        Proto::Udp => {
            let s = std::net::UdpSocket::bind(p.host)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(tokio::net::UdpSocket::from_std)
                .map_err(what)?;
            rt.spawn(async move { publish_udp(stack, Arc::new(s), guest, idle).await });
        }
    }
    Ok(())
}

/// UDP port forward: one berth socket per host client, connected to the
/// namespace's port, closed after `idle` without a datagram.
async fn publish_udp(
    stack: Stack,
    host: Arc<tokio::net::UdpSocket>,
    guest: SocketAddr,
    idle: Duration,
) {
    use std::collections::HashMap;
    use tokio::sync::mpsc;
    let mut clients: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, from)) = host.recv_from(&mut buf).await {
        clients.retain(|_, tx| !tx.is_closed());
        if let Some(tx) = clients.get(&from) {
            let _ = tx.try_send(buf[..n].to_vec());
            continue;
        }
        let any: SocketAddr = if guest.is_ipv4() {
            "0.0.0.0:0".parse().unwrap_or(guest)
        } else {
            "[::]:0".parse().unwrap_or(guest)
        };
        let Ok(inside) = berth::tokio::UdpSocket::bind(&stack, any).await else {
            continue;
        };
        if inside.connect(guest).await.is_err() {
            continue;
        }
        let _ = inside.send(&buf[..n]).await;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        clients.insert(from, tx);
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            let mut b = vec![0u8; 65_536];
            loop {
                tokio::select! {
                    d = rx.recv() => match d {
                        Some(d) => { let _ = inside.send(&d).await; }
                        None => break,
                    },
                    r = inside.recv(&mut b) => match r {
                        Ok(n) => { let _ = host.send_to(&b[..n], from).await; }
                        Err(_) => break,
                    },
                    _ = tokio::time::sleep(idle) => break,
                }
            }
        });
    }
}

/// RLIMIT_NOFILE raised to its hard limit (as most servers do at start):
/// the relay needs a descriptor per flow. Returns the limit in force.
fn raise_nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    r.rlim_cur
}

/// CMD is gone: end what it left running (reparented to us, the
/// subreaper), SIGTERM first and SIGKILL after half a second, until none is
/// left. A PID namespace would do the same; this keeps CMD's /proc true.
fn end_leftovers() {
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    let mut sig = libc::SIGTERM;
    for _ in 0..200 {
        let kids = children();
        if kids.is_empty() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            sig = libc::SIGKILL;
        }
        for &k in &kids {
            // SAFETY: kill(2) with plain integers; `k` is our child (not yet
            // reaped, so its pid is not reused).
            unsafe {
                libc::kill(k, sig);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        // SAFETY: reaping our own exited children; no status is kept.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
}

/// Our child processes, from /proc (field 4 of /proc/PID/stat is the parent).
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    // The command name may hold spaces and parentheses.
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1).map(|p| p == me)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

fn invalid(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// SIGINT, SIGTERM and SIGHUP caught into a pipe, so berth outlives them and
/// decides: pass them on to CMD, or stop (`--pid`).
struct SignalPipe {
    read: std::os::fd::OwnedFd,
}

static SIGNAL_WRITE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A terminal's signals (si_code SI_KERNEL) reach CMD through its process
    // group already; only signals sent by a process (kill: SI_USER, SI_QUEUE,
    // SI_TKILL, all ≤ 0) are passed on. The byte says which, and whether.
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let code = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_code }
    };
    let byte = [sig as u8 | if code > 0 { 0x80 } else { 0 }];
    let fd = SIGNAL_WRITE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; the fd stays open for the process.
    unsafe {
        libc::write(fd, byte.as_ptr().cast(), 1);
    }
}

impl SignalPipe {
    fn install() -> io::Result<SignalPipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two-element array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned here; the
        // write end is deliberately kept open (leaked) for the handler.
        let read = unsafe { std::os::fd::FromRawFd::from_raw_fd(fds[0]) };
        SIGNAL_WRITE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with our handler and SA_SIGINFO is valid.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(SignalPipe { read })
    }

    fn next(&self) -> Option<u8> {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into our buffer from our pipe.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.read),
                b.as_mut_ptr().cast(),
                1,
            )
        };
        (n == 1).then_some(b[0])
    }

    /// Pass signals sent to berth on to `pid` (until berth exits).
    fn forward_to(&self, pid: i32) {
        let Ok(fd) = self.read.try_clone() else {
            return;
        };
        let me = SignalPipe { read: fd };
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                while let Some(b) = me.next() {
                    if b & 0x80 == 0 {
                        // SAFETY: kill(2) with plain integers; pid is CMD.
                        unsafe {
                            libc::kill(pid, i32::from(b & 0x7f));
                        }
                    }
                }
            });
    }

    /// Whether a stop signal arrived (non-blocking check, for `--pid`).
    fn stop_requested(&self) -> bool {
        let mut p = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&self.read),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 && self.next().is_some() }
    }
}
