//! `berth serve`: a berth host on a TUN or TAP device with built-in services
//! (echo, discard, chargen, a static HTTP/1.1 server) and a control endpoint on a
//! Unix domain socket speaking JSON lines: one request object per line
//! (`{"cmd":"sockets"}`, `{"cmd":"stats"}`, `{"cmd":"memory"}`, `{"cmd":"info"}`,
//! `{"cmd":"addresses"}`, `{"cmd":"lease"}` (the DHCP lease, `null` without
//! one), `{"cmd":"resolve","name":N}` (N through berth's resolver)),
//! one answer per line
//! (`{"ok":true,…}` or `{"ok":false,"error":…}`).

use crate::args::{self, HostAddrs};
use crate::ss;
use berth::device::{self, Kind};
use berth::{Stack, TcpListener, TcpStream, UdpSocket};
use berth_core::wire::IpCidr;
use berth_core::{AddrOrigin, AddrState, IfaceId, MemLimits};
use clap::Args;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Run on this TUN device (bare IP packets).
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "tap",
        required_unless_present = "tap"
    )]
    pub tun: Option<String>,
    /// Run on this TAP device (Ethernet frames, ARP).
    #[arg(long, value_name = "NAME")]
    pub tap: Option<String>,
    /// Create the device if it does not exist (needs CAP_NET_ADMIN).
    #[arg(long)]
    pub create: bool,
    /// Plain TUN I/O, one syscall per packet: no IFF_VNET_HDR offload, so no
    /// coalesced writes or GSO super-packets (a TAP never uses offload).
    #[arg(long)]
    pub no_offload: bool,
    /// berth's address and prefix; repeat it for IPv6 addresses beside the one
    /// IPv4 address: --addr 192.0.2.2/24 --addr 2001:db8::2/64.
    #[arg(long, value_name = "CIDR", required_unless_present = "dhcp", value_parser = args::cidr)]
    pub addr: Vec<IpCidr>,
    /// Take the IPv4 address, default gateway and DNS servers from a DHCP
    /// server on the link (RFC 2131), renewing the lease at T1 and releasing
    /// it on exit; a TAP only. IPv6 --addr may still be given.
    #[arg(long, requires = "tap", conflicts_with = "gateway")]
    pub dhcp: bool,
    /// With --dhcp: seconds to wait before asking again after declining an
    /// address another host already uses (RFC 2131 §3.1 asks for at least
    /// 10; less only for tests).
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "dhcp")]
    pub dhcp_decline_wait: u64,
    /// Default gateway, inside an --addr prefix of its family (or a link-local IPv6 router); once per family:
    /// --gateway 192.0.2.1 --gateway 2001:db8::1.
    #[arg(long, value_name = "ADDR", value_parser = args::ip)]
    pub gateway: Vec<IpAddr>,
    /// Take IPv6 router advertisements on the device: addresses from their
    /// prefixes (SLAAC) and a default route via the router, as Linux's
    /// accept_ra=1, autoconf=1 (meant for a TAP on a link with a router).
    #[arg(long)]
    pub autoconf: bool,
    /// TCP and UDP echo on port 7.
    #[arg(long)]
    pub echo: bool,
    /// TCP and UDP discard on port 9.
    #[arg(long)]
    pub discard: bool,
    /// TCP and UDP chargen on port 19.
    #[arg(long)]
    pub chargen: bool,
    /// Serve the files under DIR over HTTP/1.1.
    #[arg(long, value_name = "DIR")]
    pub http: Option<PathBuf>,
    /// Port of the HTTP server.
    #[arg(long, default_value_t = 80)]
    pub http_port: u16,
    /// Listen backlog (accept queue length) of the TCP services, 1 to 4096.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = args::backlog)]
    pub backlog: usize,
    /// Congestion control of the TCP services (TCP_CONGESTION): cubic (with
    /// HyStart++, the default, as on Linux) or reno.
    #[arg(long, value_enum, default_value_t = crate::sim::CcArg::Cubic)]
    pub cc: crate::sim::CcArg,
    /// SYN cookies, as Linux's net.ipv4.tcp_syncookies: 0 never, 1 when a
    /// listener's SYN queue is full (the default), 2 for every SYN.
    #[arg(long, value_name = "0|1|2", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub syncookies: u8,
    /// Seed of the stack's random choices (ISNs, ephemeral ports, IP IDs), for a
    /// reproducible run; by default the operating system draws one (RFC 6528,
    /// RFC 6056).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Stack-wide TCP memory limits LOW,PRESSURE,HIGH in pages of 4096 bytes,
    /// as sysctl net.ipv4.tcp_mem (default 24576,32768,49152: 96/128/192 MiB).
    #[arg(long, value_name = "LOW,PRESSURE,HIGH", value_parser = parse_mem)]
    pub tcp_mem: Option<MemLimits>,
    /// Stack-wide UDP and raw receive-queue memory LOW,PRESSURE,HIGH in pages,
    /// as net.ipv4.udp_mem (default 24576,32768,49152).
    #[arg(long, value_name = "LOW,PRESSURE,HIGH", value_parser = parse_mem)]
    pub udp_mem: Option<MemLimits>,
    /// Control socket (default /run/berth/NAME.sock).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Capture every frame in and out of the device into this pcap file
    /// (Ethernet on a TAP, raw IP on a TUN; as the stack sees them).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

fn parse_mem(s: &str) -> Result<MemLimits, String> {
    s.parse()
}

/// Where `berth serve` on device `name` listens for control requests by default.
pub fn default_control(name: &str) -> PathBuf {
    control_dir().join(format!("{name}.sock"))
}

/// Where control sockets live: /run/berth for root; for other users
/// $XDG_RUNTIME_DIR/berth, else /tmp/berth-UID (what `berth run` uses
/// rootless; `berth ss` looks there too).
pub fn control_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/berth");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("berth"),
        _ => PathBuf::from(format!("/tmp/berth-{uid}")),
    }
}

/// An explicit `--control PATH` must be in a directory that exists (only the
/// default one, /run/berth or its rootless equivalent, is created).
fn check_control_dir(path: &Path, device: &str) -> Result<(), String> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let problem = match dir.metadata() {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => "is not a directory".to_string(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be used ({e})"),
    };
    Err(format!(
        "--control {}: directory {} {problem}; create it (mkdir -p {}) or leave \
         --control out for the default {}",
        path.display(),
        dir.display(),
        dir.display(),
        default_control(device).display()
    ))
}

pub fn run(a: ServeArgs) -> Result<(), String> {
    let (name, kind) = match (&a.tun, &a.tap) {
        (Some(n), None) => (n.clone(), Kind::Tun),
        (None, Some(n)) => (n.clone(), Kind::Tap),
        _ => return Err("give exactly one of --tun NAME or --tap NAME".into()),
    };
    if let Some(dir) = &a.http {
        if !dir.is_dir() {
            return Err(format!("--http {}: not a directory", dir.display()));
        }
    }
    // Before the device is opened, so a mistyped path costs no TUN/TAP setup.
    if let Some(path) = &a.control {
        check_control_dir(path, &name)?;
    }
    let addrs = if a.dhcp {
        dhcp::host_addrs(&a.addr)?
    } else {
        HostAddrs::from_flags(&a.addr, &a.gateway)?
    };
    let mut config = berth_core::Config::default();
    config.tcp.congestion = a.cc.algorithm();
    config.tcp.syncookies =
        berth_core::SynCookies::from_sysctl(a.syncookies).ok_or("--syncookies takes 0, 1 or 2")?;
    config.seed = a.seed;
    if let Some(m) = a.tcp_mem {
        config.tcp_mem = m;
    }
    if let Some(m) = a.udp_mem {
        config.udp_mem = m;
    }
    let stack = Stack::builder().config(config).build();
    let mut opts = addrs.device_options(&name, kind);
    opts.create = a.create;
    opts.offload = !a.no_offload;
    opts.autoconf = a.autoconf;
    if a.dhcp {
        opts.mac = Some(dhcp::mac());
    }
    opts.pcap = a.pcap.clone();
    let mut dev = device::attach(&stack, &opts).map_err(|e| e.to_string())?;
    let lease = dhcp::LeaseStatus::default();
    let dhcp_client = if a.dhcp {
        let config = berth::dhcp::DhcpConfig {
            decline_wait: std::time::Duration::from_secs(a.dhcp_decline_wait),
            ..berth::dhcp::DhcpConfig::default()
        };
        Some(lease.start(&stack, dev.iface(), config)?)
    } else {
        None
    };
    let control_path = a.control.clone().unwrap_or_else(|| default_control(&name));
    let info = serde_json::json!({
        "device": dev.name(),
        "kind": kind_name(dev.kind()),
        "addr": format!("{}/{}", addrs.v4.address(), addrs.v4.prefix_len()),
        "addrs": addrs.all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "mtu": dev.mtu(),
        "offload": dev.offload(),
        "mac": dev.mac().map(|m| m.to_string()),
        "pid": std::process::id(),
    });
    // `ss -p` names each service's sockets after it (users:(("berth-echo",…))).
    let mut owned: Vec<(&'static str, u16, String)> = Vec::new();
    for (on, port, name) in [
        (a.echo, 7, "echo"),
        (a.discard, 9, "discard"),
        (a.chargen, 19, "chargen"),
    ] {
        if on {
            owned.push(("tcp", port, format!("berth-{name}")));
            owned.push(("udp", port, format!("berth-{name}")));
        }
    }
    if a.http.is_some() {
        owned.push(("tcp", a.http_port, "berth-http".into()));
    }
    let process = ss::Process::current(owned);
    let control = Control::bind_process(
        &control_path,
        &stack,
        dev.iface(),
        info,
        lease.commands(),
        process,
    )
    .map_err(|e| format!("control socket {}: {e}", control_path.display()))?;

    // The services listen on 0.0.0.0 and, when the server has IPv6 addresses
    // of its own (--addr or --autoconf), on [::] too.
    let families = Families {
        ipv6: !addrs.v6.is_empty() || a.autoconf,
    };
    let mut services = Vec::new();
    let bind_err = |what: &str, e: io::Error| format!("cannot start {what}: {e}");
    if a.echo {
        families
            .each(|any| tcp_service(&stack, any, 7, a.backlog, echo_conn))
            .map_err(|e| bind_err("tcp echo", e))?;
        families
            .each(|any| udp_service(&stack, any, 7, |d| Some(d.to_vec())))
            .map_err(|e| bind_err("udp echo", e))?;
        services.push("echo:7".to_string());
    }
    if a.discard {
        families
            .each(|any| tcp_service(&stack, any, 9, a.backlog, discard_conn))
            .map_err(|e| bind_err("tcp discard", e))?;
        families
            .each(|any| udp_service(&stack, any, 9, |_| None))
            .map_err(|e| bind_err("udp discard", e))?;
        services.push("discard:9".to_string());
    }
    if a.chargen {
        families
            .each(|any| tcp_service(&stack, any, 19, a.backlog, chargen_conn))
            .map_err(|e| bind_err("tcp chargen", e))?;
        families
            .each(|any| udp_service(&stack, any, 19, |_| Some(chargen_block(0, 512))))
            .map_err(|e| bind_err("udp chargen", e))?;
        services.push("chargen:19".to_string());
    }
    if let Some(dir) = &a.http {
        families
            .each(|any| http::start(&stack, any, a.http_port, dir.clone()))
            .map_err(|e| bind_err("http", e))?;
        services.push(format!("http:{}", a.http_port));
    }
    let shown: Vec<String> = addrs
        .all()
        .iter()
        .map(|c| c.address().to_string())
        .collect();
    eprintln!(
        "berth: {} {name} {}{} mtu {}{}{}; services: {}; control {}",
        kind_name(kind),
        if a.dhcp {
            format!("dhcp {}", shown[1..].join(" "))
                .trim_end()
                .to_string()
        } else {
            shown.join(" ")
        },
        if a.autoconf { " autoconf" } else { "" },
        dev.mtu(),
        dev.mac().map(|m| format!(" mac {m}")).unwrap_or_default(),
        if dev.offload() { " offload" } else { "" },
        if services.is_empty() {
            "none (ping only)".to_string()
        } else {
            services.join(" ")
        },
        control_path.display()
    );
    // Run until the device fails (its reader has already said why) or SIGINT /
    // SIGTERM asks us to stop: then connections are reset (the peers learn at
    // once instead of timing out), the control socket file is removed, exit 0.
    crate::tun::install_stop_handler().map_err(|e| format!("cannot handle signals: {e}"))?;
    while dev.is_running() && !crate::tun::stop_requested() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // RELEASE the lease while the device still carries it (RFC 2131 §4.4.6).
    drop(dhcp_client);
    if crate::tun::stop_requested() {
        let open = stack.sockets().len();
        stack.with_core(|core, now| {
            for row in core.sockets() {
                let _ = core.tcp_set_linger(row.handle, Some(berth_core::Duration::ZERO));
                let _ = core.close_at(now, row.handle);
            }
        });
        drop(control);
        drop(dev);
        stack.shutdown();
        eprintln!("berth: {name}: stopped by signal; {open} sockets closed");
        return Ok(());
    }
    let r = dev.wait();
    drop(control);
    r.map_err(|_| format!("{name} failed; server stopped"))
}

mod dhcp {
    //! `--dhcp`: the lease on the device, printed as it changes and answered
    //! to `{"cmd":"lease"}` on the control socket.

    use super::ExtraCommands;
    use crate::args::HostAddrs;
    use berth::dhcp::{Dhcp, DhcpConfig, Event, Lease};
    use berth::Stack;
    use berth_core::wire::{EthernetAddress, IpCidr, Ipv4Addr, Ipv4Cidr};
    use berth_core::IfaceId;
    use std::sync::{Arc, Mutex};

    /// The device starts at 0.0.0.0/32; IPv6 --addr flags are kept.
    pub fn host_addrs(addrs: &[IpCidr]) -> Result<HostAddrs, String> {
        let mut v6 = Vec::new();
        for a in addrs {
            match *a {
                IpCidr::Ipv4(c) => {
                    return Err(format!(
                        "--addr {c} and --dhcp: the IPv4 address comes from DHCP; drop one"
                    ))
                }
                IpCidr::Ipv6(c) => v6.push(c),
            }
        }
        let v4 = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 32).ok_or("0.0.0.0/32")?;
        Ok(HostAddrs {
            v4,
            v6,
            gateway: None,
            gateway6: None,
        })
    }

    /// A locally administered MAC drawn at random (the default one is made
    /// from the IPv4 address, which DHCP has not given yet).
    pub fn mac() -> EthernetAddress {
        let r = berth::os_seed().to_be_bytes();
        EthernetAddress([0x02, 0xb7, r[0], r[1], r[2], r[3]])
    }

    fn json(l: &Lease) -> serde_json::Value {
        serde_json::json!({
            "address": l.address.to_string(),
            "router": l.router.map(|r| r.to_string()),
            "dns": l.dns_servers.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "server": l.server.to_string(),
            "lease_secs": l.lease_time.as_secs(),
            "renew_secs": l.renew_after.as_secs(),
            "rebind_secs": l.rebind_after.as_secs(),
            "renewals": l.renewals,
        })
    }

    fn line(what: &str, l: &Lease) -> String {
        let dns: Vec<String> = l.dns_servers.iter().map(|d| d.to_string()).collect();
        format!(
            "berth: dhcp {what} {} router {} dns {} from {} lease {}s renew {}s rebind {}s",
            l.address,
            l.router.map_or("none".into(), |r| r.to_string()),
            if dns.is_empty() {
                "none".into()
            } else {
                dns.join(",")
            },
            l.server,
            l.lease_time.as_secs(),
            l.renew_after.as_secs(),
            l.rebind_after.as_secs()
        )
    }

    /// The lease as the control socket shows it (`null` without one).
    #[derive(Clone, Default)]
    pub struct LeaseStatus(Arc<Mutex<Option<serde_json::Value>>>);

    impl LeaseStatus {
        /// Start the client on `iface`, printing a line per event.
        pub fn start(
            &self,
            stack: &Stack,
            iface: IfaceId,
            config: DhcpConfig,
        ) -> Result<Dhcp, String> {
            let status = self.clone();
            let wait = config.decline_wait.as_secs();
            Dhcp::start_with(stack, iface, config, move |e| {
                let shown = match e {
                    Event::Bound(l) => Some((line("bound", l), Some(json(l)))),
                    Event::Renewed(l) => Some((line("renewed", l), Some(json(l)))),
                    Event::Nak(m) => Some((format!("berth: dhcp NAK: {m}; starting over"), None)),
                    Event::Expired => {
                        Some(("berth: dhcp lease expired; address removed".into(), None))
                    }
                    // RFC 2131 §3.1 step 5: not configured, DECLINEd.
                    Event::Declined {
                        address,
                        server,
                        owner,
                    } => Some((
                        format!(
                            "berth: dhcp declined {address} from {server}: in use by \
                             {owner} (ARP); asking again in {wait}s"
                        ),
                        None,
                    )),
                };
                if let Some((text, value)) = shown {
                    eprintln!("{text}");
                    *status.0.lock().unwrap_or_else(|p| p.into_inner()) = value;
                }
            })
            .map_err(|e| format!("cannot start DHCP: {e}"))
        }

        /// `{"cmd":"lease"}` for the control socket.
        pub fn commands(&self) -> Option<ExtraCommands> {
            let status = self.clone();
            Some(Arc::new(move |cmd: &str| {
                (cmd == "lease").then(|| {
                    let l = status.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    serde_json::json!({"ok": true, "lease": l})
                })
            }))
        }
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Tun => "tun",
        Kind::Tap => "tap",
    }
}

/// The wildcard addresses the services listen on.
struct Families {
    ipv6: bool,
}

impl Families {
    /// Run `bind` for [::] (when the server has IPv6) and then 0.0.0.0. [::]
    /// comes first: should a [::] socket take IPv4 too (dual-stack, Linux's
    /// default), 0.0.0.0 is then refused as in use, and the [::] socket serves
    /// both families.
    fn each(&self, mut bind: impl FnMut(IpAddr) -> io::Result<()>) -> io::Result<()> {
        if self.ipv6 {
            bind(IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED))?;
        }
        match bind(IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED)) {
            Err(e) if self.ipv6 && e.kind() == io::ErrorKind::AddrInUse => Ok(()),
            r => r,
        }
    }
}

/// A TCP listener on `any`:`port` (accept queue `backlog`) and one thread per
/// connection running `conn`.
fn tcp_service(
    stack: &Stack,
    any: IpAddr,
    port: u16,
    backlog: usize,
    conn: fn(TcpStream),
) -> io::Result<()> {
    let l = TcpListener::bind_with_backlog(stack, (any, port), backlog)?;
    std::thread::Builder::new()
        .name(format!("tcp-{port}"))
        .spawn(move || loop {
            match l.accept() {
                Ok((s, _)) => {
                    let _ = std::thread::Builder::new()
                        .name(format!("tcp-{port}-conn"))
                        .spawn(move || conn(s));
                }
                // The stack shut down (device gone): stop.
                Err(_) if l.stack().is_shut_down() => return,
                Err(_) => {}
            }
        })?;
    Ok(())
}

/// A UDP socket on `any`:`port` answering each datagram with `reply(data)`, if any.
fn udp_service(
    stack: &Stack,
    any: IpAddr,
    port: u16,
    reply: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
) -> io::Result<()> {
    let s = UdpSocket::bind(stack, (any, port))?;
    std::thread::Builder::new()
        .name(format!("udp-{port}"))
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        if let Some(r) = buf.get(..n).and_then(&reply) {
                            let _ = s.send_to(&r, from);
                        }
                    }
                    Err(_) if s.stack().is_shut_down() => return,
                    Err(_) => {}
                }
            }
        })?;
    Ok(())
}

fn echo_conn(s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match (&s).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.get(..n).is_none_or(|d| (&s).write_all(d).is_err()) {
                    return;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}

fn discard_conn(s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = (&s).read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn chargen_conn(s: TcpStream) {
    let mut line = 0;
    loop {
        let block = chargen_block(line, 74 * 64);
        line += 64;
        if (&s).write_all(&block).is_err() {
            return;
        }
    }
}

/// RFC 864 lines (72 printable characters + CRLF, each starting one later),
/// from line `first`, `len` bytes.
fn chargen_block(first: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 74);
    let mut i = first;
    while out.len() < len {
        out.extend((0..72).map(|k| b' ' + ((i + k) % 95) as u8));
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out.truncate(len);
    out
}

/// Answers control commands beyond the common ones (`berth run`'s `relays`);
/// `None`: not one of its commands.
pub type ExtraCommands = Arc<dyn Fn(&str) -> Option<serde_json::Value> + Send + Sync>;

/// The control endpoint; removes its socket file when dropped.
pub struct Control {
    path: PathBuf,
}

impl Control {
    /// Listen on `path` for the JSON-lines control protocol about `stack`'s
    /// interface `iface`; `info` answers `{"cmd":"info"}`.
    pub fn bind(
        path: &Path,
        stack: &Stack,
        iface: IfaceId,
        info: serde_json::Value,
        extra: Option<ExtraCommands>,
    ) -> io::Result<Control> {
        let process = ss::Process::current(Vec::new());
        Control::bind_process(path, stack, iface, info, extra, process)
    }

    /// [`Control::bind`] for a server whose sockets `process` owns: its
    /// pid, uid and service names show in `ss -p` and `ss -e`.
    pub fn bind_process(
        path: &Path,
        stack: &Stack,
        iface: IfaceId,
        info: serde_json::Value,
        extra: Option<ExtraCommands>,
        process: ss::Process,
    ) -> io::Result<Control> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another berth server is running there",
                ));
            }
            // A stale socket from a server that was killed.
            std::fs::remove_file(path)?;
        }
        let l = UnixListener::bind(path)?;
        let info = Arc::new(info);
        let process = Arc::new(process);
        let stack = stack.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for c in l.incoming().flatten() {
                    let (stack, info, extra) = (stack.clone(), Arc::clone(&info), extra.clone());
                    let process = Arc::clone(&process);
                    let _ = std::thread::Builder::new()
                        .name("control-conn".into())
                        .spawn(move || {
                            let ctx = Ctx {
                                stack: &stack,
                                iface,
                                info: &info,
                                extra: extra.as_ref(),
                                process: &process,
                            };
                            control_conn(c, &ctx)
                        });
                }
            })?;
        Ok(Control {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a control connection answers about.
struct Ctx<'a> {
    stack: &'a Stack,
    iface: IfaceId,
    info: &'a serde_json::Value,
    extra: Option<&'a ExtraCommands>,
    process: &'a ss::Process,
}

fn control_conn(c: UnixStream, ctx: &Ctx) {
    let Ok(mut w) = c.try_clone() else { return };
    for line in BufReader::new(c).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let answer = control_answer(&line, ctx);
        if writeln!(w, "{answer}").is_err() {
            return;
        }
    }
}

fn control_answer(line: &str, ctx: &Ctx) -> serde_json::Value {
    use serde_json::json;
    let Ctx {
        stack,
        iface,
        info,
        extra,
        process,
    } = *ctx;
    let req: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"ok": false, "error": format!("bad JSON: {e}")}),
    };
    match req.get("cmd").and_then(|c| c.as_str()) {
        Some("sockets") => {
            let rows: Vec<_> = stack.with_core(|core, now| {
                let rows = core.sockets_at(now);
                rows.iter()
                    .map(|r| ss::Row::json_owned(r, ss::v6only(core, r), process))
                    .collect()
            });
            json!({"ok": true, "sockets": rows})
        }
        Some("stats") => {
            let s = stack.stats();
            let m: serde_json::Map<_, _> = s
                .iter()
                .map(|(name, _, v)| (name.to_string(), json!(v)))
                .collect();
            json!({"ok": true, "stats": m})
        }
        Some("memory") => json!({"ok": true, "memory": ss::memory_json(&stack.memory())}),
        Some("info") => json!({"ok": true, "info": info}),
        Some("addresses") => json!({"ok": true, "addresses": addresses_json(stack, iface)}),
        Some("resolve") => resolve_json(stack, req.get("name").and_then(|n| n.as_str())),
        Some(c) => extra.and_then(|x| x(c)).unwrap_or_else(|| {
            json!({
                "ok": false,
                "error": format!("unknown cmd {c:?}; try sockets, stats, memory, info, addresses")
            })
        }),
        None => json!({"ok": false, "error": "missing \"cmd\"; try {\"cmd\":\"sockets\"}"}),
    }
}

/// `{"cmd":"resolve","name":N}`: N's addresses by berth's own resolver
/// (hosts table, then the DNS servers, e.g. from the DHCP lease).
fn resolve_json(stack: &Stack, name: Option<&str>) -> serde_json::Value {
    let Some(name) = name else {
        return serde_json::json!({"ok": false, "error": "give \"name\", e.g. {\"cmd\":\"resolve\",\"name\":\"example.org\"}"});
    };
    match berth::dns::lookup_ip(stack, name) {
        Ok(ips) => {
            let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
            serde_json::json!({"ok": true, "name": name, "addresses": ips})
        }
        Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
    }
}

/// The device interface's addresses as `ip -j addr` would name them: the
/// address with its prefix, where it came from (`manual`, `link-local`,
/// `autoconf`; none for the IPv4 one) and its DAD state.
fn addresses_json(stack: &Stack, iface: IfaceId) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = stack
        .addresses(iface)
        .iter()
        .map(|(cidr, how)| {
            let origin = how.map(|(o, _)| match o {
                AddrOrigin::LinkLocal => "link-local",
                AddrOrigin::Manual => "manual",
                AddrOrigin::Autoconf => "autoconf",
            });
            let state = how.map(|(_, s)| match s {
                AddrState::Tentative { .. } => "tentative",
                AddrState::Preferred => "preferred",
                AddrState::Deprecated => "deprecated",
                AddrState::Duplicate => "dadfailed",
            });
            serde_json::json!({"addr": cidr.to_string(), "origin": origin, "state": state})
        })
        .collect();
    serde_json::Value::Array(rows)
}

mod http {
    //! A small static file server: GET and HEAD, files under one directory.

    use berth::Stack;
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{header, Method, Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use std::io;
    use std::path::{Component, Path, PathBuf};
    use std::sync::Arc;

    pub fn start(stack: &Stack, any: std::net::IpAddr, port: u16, root: PathBuf) -> io::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("http")
            .build()?;
        let l = rt.block_on(berth::tokio::TcpListener::bind(stack, (any, port)))?;
        let root = Arc::new(root);
        let stack = stack.clone();
        std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || {
                rt.block_on(async move {
                    loop {
                        let s = match l.accept().await {
                            Ok((s, _)) => s,
                            Err(_) if stack.is_shut_down() => return,
                            Err(_) => continue,
                        };
                        let root = Arc::clone(&root);
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                let root = Arc::clone(&root);
                                async move { Ok::<_, hyper::Error>(handle(&root, req)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(s), svc)
                                .await;
                        });
                    }
                })
            })?;
        Ok(())
    }

    fn handle(root: &Path, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let head = req.method() == Method::HEAD;
        if req.method() != Method::GET && !head {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        }
        let Some(mut path) = resolve(root, req.uri().path()) else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        if path.is_dir() {
            path = path.join("index.html");
        }
        match std::fs::read(&path) {
            Ok(data) => {
                let len = data.len();
                let body = if head {
                    Bytes::new()
                } else {
                    Bytes::from(data)
                };
                let mut r = Response::new(Full::new(body));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(content_type(&path)),
                );
                r
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                text(StatusCode::NOT_FOUND, "not found\n")
            }
            Err(_) => text(StatusCode::FORBIDDEN, "cannot read\n"),
        }
    }

    /// `root` + the URL path, refusing anything that leaves `root`.
    fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
        let mut p = root.to_path_buf();
        for c in Path::new(url_path.trim_start_matches('/')).components() {
            match c {
                Component::Normal(s) => p.push(s),
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(p)
    }

    fn content_type(p: &Path) -> &'static str {
        match p.extension().and_then(|e| e.to_str()) {
            Some("html" | "htm") => "text/html; charset=utf-8",
            Some("txt") => "text/plain; charset=utf-8",
            Some("json") => "application/json",
            Some("css") => "text/css",
            Some("js") => "text/javascript",
            Some("png") => "image/png",
            _ => "application/octet-stream",
        }
    }

    fn text(code: StatusCode, msg: &'static str) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from_static(msg.as_bytes())));
        *r.status_mut() = code;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// `berth serve` with the flags in `line` (split at spaces).
    fn parse(line: &str) -> Result<ServeArgs, String> {
        let argv = std::iter::once("serve").chain(line.split(' '));
        Cmd::try_parse_from(argv)
            .map(|c| c.serve)
            .map_err(|e| e.to_string())
    }

    fn addrs(line: &str) -> Result<HostAddrs, String> {
        let a = parse(line)?;
        HostAddrs::from_flags(&a.addr, &a.gateway)
    }

    const DUAL: &str = "--tap t0 --addr 192.0.2.2/24 --addr 2001:db8::2/64";

    #[test]
    fn addr_repeats_and_takes_ipv6_gateway_once_per_family() {
        let a = parse(&format!(
            "{DUAL} --gateway 192.0.2.1 --gateway 2001:db8::1 --autoconf"
        ))
        .unwrap();
        assert_eq!(a.addr.len(), 2);
        assert!(a.autoconf);
        let h = HostAddrs::from_flags(&a.addr, &a.gateway).unwrap();
        assert_eq!(h.v4.to_string(), "192.0.2.2/24");
        assert_eq!(h.v6[0].to_string(), "2001:db8::2/64");
        let text = |g: Option<String>| g.unwrap_or_default();
        assert_eq!(text(h.gateway.map(|g| g.to_string())), "192.0.2.1");
        assert_eq!(text(h.gateway6.map(|g| g.to_string())), "2001:db8::1");
        // The IPv4-only form of before still parses, without autoconf.
        let a = parse("--tun t0 --addr 192.0.2.2/24 --echo").unwrap();
        assert!(!a.autoconf && a.gateway.is_empty());
    }

    #[test]
    fn bad_addr_flags_say_what_to_do() {
        let e = parse("--tun t0").err().unwrap();
        assert!(e.contains("--addr"), "{e}");
        let e = parse("--tun t0 --addr 2001:db8::2").err().unwrap();
        assert!(e.contains("2001:db8::2/64"), "{e}");
        let e = parse("--tun t0 --addr 192.0.2.2/24 --gateway gw")
            .err()
            .unwrap();
        assert!(e.contains("e.g. 192.0.2.1 or 2001:db8::1"), "{e}");
        let e = addrs("--tun t0 --addr 2001:db8::2/64").unwrap_err();
        assert!(e.contains("--addr 192.0.2.2/24"), "{e}");
        let e = addrs(&format!(
            "{DUAL} --gateway 2001:db8::1 --gateway 2001:db8::3"
        ))
        .unwrap_err();
        assert!(e.contains("one default gateway per family"), "{e}");
        let e = addrs(&format!("{DUAL} --gateway 2001:db8:9::1")).unwrap_err();
        assert!(e.contains("not inside any IPv6 --addr prefix"), "{e}");
    }
}
