//! `berth ping`: ICMP echo from a berth host on a TUN or TAP device, with
//! iputils ping's flags, lines, summary and exit status (0: a reply came,
//! 1: none did, 2: an error), so that someone who knows `ping` needs no manual.

use crate::args::HostAddrs;
use crate::{args, tun};
use berth::device::{self, Device, Kind};
use berth::sim::workload;
use berth::{RawSocket, Stack, UdpSocket};
use berth_core::wire::IpCidr;
use berth_core::{AddrState, Config};
use clap::Args;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Where the berth host lives: a TUN or TAP device and its address.
#[derive(Args, Clone)]
#[command(group(clap::ArgGroup::new("device").required(true).args(["tun", "tap"])))]
pub struct HostArgs {
    /// TUN device (bare IP packets) the berth host uses.
    #[arg(long, value_name = "NAME")]
    pub tun: Option<String>,
    /// TAP device (Ethernet + ARP) the berth host uses.
    #[arg(long, value_name = "NAME")]
    pub tap: Option<String>,
    /// The berth host's address and prefix on the device, e.g. 192.0.2.2/24;
    /// repeat it for IPv6 addresses beside the one IPv4 address
    /// (--addr 2001:db8::2/64).
    #[arg(long, value_name = "CIDR", required = true, value_parser = args::cidr)]
    pub addr: Vec<IpCidr>,
    /// Default gateway (for destinations off the device's subnets), inside an
    /// --addr prefix of its family (or a link-local IPv6 router); at most one per family.
    #[arg(long, value_name = "ADDR", value_parser = args::ip)]
    pub gateway: Vec<IpAddr>,
    /// Create the device if it does not exist (it vanishes when we exit).
    #[arg(long)]
    pub create: bool,
    /// Seed of the stack's random choices (ISNs, ephemeral ports, IP IDs), for a
    /// reproducible run; by default the operating system draws one, as it must
    /// on a real network (RFC 6528, RFC 6056).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Capture every frame in and out of the device into this pcap file
    /// (Ethernet on a TAP, raw IP on a TUN; as the stack sees them).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
}

impl HostArgs {
    pub fn device_name(&self) -> &str {
        self.tun.as_deref().or(self.tap.as_deref()).unwrap_or("?")
    }

    /// The checked --addr / --gateway flags.
    pub fn addrs(&self) -> io::Result<HostAddrs> {
        HostAddrs::from_flags(&self.addr, &self.gateway)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    /// Fails, saying what to add, when the host has no address of `dst`'s
    /// family to reach it from (an IPv6 destination other than a link-local
    /// one needs an IPv6 --addr).
    pub fn check_reach(&self, dst: IpAddr) -> io::Result<()> {
        let a = self.addrs()?;
        match dst {
            IpAddr::V6(d) if a.v6.is_empty() && d.segments()[0] & 0xffc0 != 0xfe80 => {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "no IPv6 address to reach {d} from; add one in its prefix, \
                         e.g. --addr 2001:db8::2/64 for 2001:db8::1"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// A berth stack with one interface on the device (`berth::device`).
    pub fn start(&self) -> io::Result<(Stack, Device)> {
        let (name, kind) = match (&self.tun, &self.tap) {
            (Some(n), _) => (n, Kind::Tun),
            (None, Some(n)) => (n, Kind::Tap),
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "name a device: --tun NAME or --tap NAME",
                ))
            }
        };
        let stack = Stack::new(Config {
            seed: self.seed,
            ..Config::default()
        });
        let mut o = self.addrs()?.device_options(name, kind);
        o.create = self.create;
        o.pcap = self.pcap.clone();
        let dev = device::attach(&stack, &o)?;
        wait_for_dad(&stack, &dev);
        Ok((stack, dev))
    }
}

/// On a TAP, IPv6 addresses are tentative until Duplicate Address Detection
/// passes (about a second); a client waits for that (at most 3 s) so that its
/// first packet leaves from the address it was given.
fn wait_for_dad(stack: &Stack, dev: &Device) {
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until
        && stack
            .addresses(dev.iface())
            .iter()
            .any(|(_, s)| matches!(s, Some((_, AddrState::Tentative { .. }))))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// iputils' MININTERVAL: a flood (`-i 0`) sends the next request at once when
/// the last one was answered, else this long after it.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// iputils' MINUSERINTERVAL: the shortest interval a user other than root may ask for.
const MIN_USER_INTERVAL: Duration = Duration::from_millis(2);
/// The TTL of berth's own packets (`Config::default_ttl`), for IP_HDRINCL.
const DEFAULT_TTL: u8 = 64;

/// `-M`: path MTU discovery (IP_MTU_DISCOVER / IPV6_MTU_DISCOVER).
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Pmtu {
    /// Set DF and never fragment: a request above the MTU is a local error.
    Do,
    /// Clear DF: fragment a request above the MTU.
    Dont,
    /// DF on requests that fit the MTU, fragments for larger ones (the default).
    Want,
}

/// `-p`: up to 16 pad bytes, repeated through the data.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern(Vec<u8>);

#[derive(Args)]
pub struct PingArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Stop after COUNT requests (with -w: after COUNT replies or the deadline);
    /// default: until Ctrl-C.
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = count)]
    count: Option<u64>,
    /// Seconds between requests, e.g. 0.2 (a unit such as 200ms works too);
    /// default 1, with -f 0. Below 0.002 only for root.
    #[arg(short = 'i', long, value_name = "INTERVAL", value_parser = seconds)]
    interval: Option<Duration>,
    /// Seconds to wait for a reply when none has come (once one has, ping waits
    /// twice the longest round trip), as iputils' -W.
    #[arg(short = 'W', long, value_name = "TIMEOUT", value_parser = seconds, default_value = "10")]
    timeout: Duration,
    /// Stop after DEADLINE seconds, however many requests were sent or answered.
    #[arg(short = 'w', long, value_name = "DEADLINE", value_parser = seconds)]
    deadline: Option<Duration>,
    /// ICMP data bytes per request (below 16 no time is measured, as iputils).
    #[arg(short = 's', long, value_name = "SIZE", default_value_t = 56, value_parser = clap::value_parser!(u16).range(0..=65507))]
    size: u16,
    /// TTL (IPv6: hop limit) of the requests, 1..=255.
    #[arg(short = 't', long, value_name = "TTL", value_parser = ttl)]
    ttl: Option<u8>,
    /// Quiet: only the first line and the summary.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Numeric output only (berth resolves no names, so always so).
    #[arg(short = 'n', long)]
    numeric: bool,
    /// Print the time of day before each line: [seconds.microseconds].
    #[arg(short = 'D', long)]
    timestamp: bool,
    /// Report a request that is still unanswered when the next one is sent.
    #[arg(short = 'O', long)]
    outstanding: bool,
    /// Flood: a dot per request, a backspace per reply; as fast as replies come
    /// (100 a second at least) as root, else give -i 0.002 or more.
    #[arg(short = 'f', long)]
    flood: bool,
    /// Ring the terminal's bell on each reply.
    #[arg(short = 'a', long)]
    audible: bool,
    /// The device (must be the --tun/--tap one) or one of its addresses to send from.
    #[arg(short = 'I', long, value_name = "IFACE|ADDR")]
    interface: Option<String>,
    /// Path MTU discovery: do (DF, never fragment), dont (fragment), want (DF if it fits).
    #[arg(short = 'M', value_name = "HINT", value_enum)]
    pmtudisc: Option<Pmtu>,
    /// Pad bytes in hex, repeated through the data, e.g. -p ff or -p 0a1b2c.
    #[arg(short = 'p', long, value_name = "PATTERN", value_parser = pattern)]
    pattern: Option<Pattern>,
    /// IPv4 only: the destination must be an IPv4 address.
    #[arg(short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 (ICMPv6 echo, as ping -6): the destination must be an IPv6 address.
    #[arg(short = '6')]
    ipv6: bool,
    /// Destination address, IPv4 or IPv6 (berth resolves no names).
    #[arg(value_parser = args::ip)]
    dest: IpAddr,
}

/// `-c`: at least one request.
pub fn count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a count; give how many requests to send, 1 or more (e.g. -c 5)"
        )),
    }
}

/// `-i`, `-W`, `-w`: seconds without a unit as iputils takes them ("0.2",
/// "1", "5"), or with one as berth took them before ("200ms", "1s").
pub fn seconds(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    // iputils' limit: INT_MAX milliseconds.
    let max = i32::MAX as f64 / 1000.0;
    if let Ok(v) = t.parse::<f64>() {
        if v.is_finite() && (0.0..=max).contains(&v) {
            return Ok(Duration::from_secs_f64(v));
        }
        return Err(format!(
            "'{s}' is not a time; give seconds from 0 to {max:.0}, e.g. 0.2, 1 or 5"
        ));
    }
    args::duration(t).map_err(|_| {
        format!("'{s}' is not a time; give seconds as ping does (e.g. 0.2, 1 or 5), or with a unit (200ms, 1s)")
    })
}

/// `-t`: 1..=255 (a TTL of 0 could not leave the host).
pub fn ttl(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u16>() {
        Ok(v @ 1..=255) => Ok(v as u8),
        _ => Err(format!("'{s}' is not a TTL; give 1..=255 hops, e.g. -t 64")),
    }
}

/// `-p`: hex digits, two per byte (an odd last digit is a byte of its own, as
/// iputils reads them), at most 16 bytes.
pub fn pattern(s: &str) -> Result<Pattern, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "'{s}' is not a pattern; give hex digits, two per byte, e.g. -p ff or -p 0a1b2c"
        ));
    }
    if t.len() > 32 {
        return Err(format!(
            "'{s}' is longer than 16 bytes (32 hex digits); shorten it, it repeats through the data"
        ));
    }
    let bytes = t
        .as_bytes()
        .chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("'{s}' is not a pattern of hex digits"))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    Ok(Pattern(bytes))
}

/// `-I`: the device by name, or an address to send from (an IPv6 one may
/// carry a %device scope, as iputils takes it).
#[derive(Debug, PartialEq)]
enum Source {
    Device(String),
    Addr(IpAddr, Option<String>),
}

fn parse_source(s: &str) -> io::Result<Source> {
    if s.contains(':') {
        let (addr, scope) = match s.split_once('%') {
            Some((a, d)) => (a, Some(d.to_string())),
            None => (s, None),
        };
        return addr
            .parse::<Ipv6Addr>()
            .map(|a| Source::Addr(a.into(), scope))
            .map_err(|_| {
                invalid(format!(
                    "invalid source address: {s}; give -I an address of the host (e.g. -I 2001:db8::2) or its device"
                ))
            });
    }
    Ok(match s.parse::<Ipv4Addr>() {
        Ok(a) => Source::Addr(a.into(), None),
        Err(_) => Source::Device(s.to_string()),
    })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// An errno's text as strerror(3) gives it ("Network is unreachable").
fn strerror(e: &io::Error) -> String {
    match berth_core::errno(e) {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// `berth ping`: the exit status as iputils': 0 when a reply came (and with
/// -w and -c, all COUNT of them), 1 when not, 2 on an error.
pub fn run(a: PingArgs) -> ExitCode {
    match ping(a) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            let _ = io::stdout().flush();
            eprintln!("ping: {e}");
            ExitCode::from(2)
        }
    }
}

fn ping(a: PingArgs) -> io::Result<bool> {
    let dst = a.dest;
    if (a.ipv6 && dst.is_ipv4()) || (a.ipv4 && dst.is_ipv6()) {
        let (flag, fam) = if a.ipv6 {
            ("-6", "IPv6")
        } else {
            ("-4", "IPv4")
        };
        return Err(invalid(format!(
            "{dst} is not an {fam} address; drop {flag} or give an {fam} address"
        )));
    }
    let interval = match (a.interval, a.flood) {
        (Some(i), _) => i,
        (None, true) => Duration::ZERO,
        (None, false) => Duration::from_secs(1),
    };
    // iputils counts whole milliseconds; below 2 only root may go.
    if interval.as_millis() < MIN_USER_INTERVAL.as_millis() && !nix::unistd::getuid().is_root() {
        return Err(invalid(format!(
            "cannot flood; minimal interval allowed for user is {}ms (give -i 0.002 or more, or run as root)",
            MIN_USER_INTERVAL.as_millis()
        )));
    }
    let dev_name = a.host.device_name().to_string();
    let bind = match a.interface.as_deref().map(parse_source).transpose()? {
        None => None,
        Some(Source::Device(d)) | Some(Source::Addr(_, Some(d))) if d != dev_name => {
            return Err(invalid(format!(
                "SO_BINDTODEVICE {d}: No such device; berth's host has one device, {dev_name}: \
                 give -I {dev_name}, one of its addresses, or no -I"
            )))
        }
        Some(Source::Device(_)) => None,
        Some(Source::Addr(addr, _)) => {
            if addr.is_ipv4() != dst.is_ipv4() {
                return Err(invalid(format!(
                    "-I {addr} and {dst} are of different families; give -I an address of {dst}'s"
                )));
            }
            Some(addr)
        }
    };
    a.host.check_reach(dst)?;
    if let Some(Pattern(p)) = &a.pattern {
        if !a.quiet {
            let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
            println!("PATTERN: 0x{hex}");
        }
    }
    let (stack, dev) = a.host.start()?;
    let src = route_source(&stack, dst, bind)?;
    tun::install_stop_handler()?;
    // ICMP (1) on AF_INET; ICMPv6 (58) on AF_INET6, whose checksum the stack fills in.
    let sock = match dst {
        IpAddr::V4(_) => RawSocket::new(&stack, 1)?,
        IpAddr::V6(_) => RawSocket::new_v6(&stack, 58)?,
    };
    if let Some(b) = bind {
        sock.bind(b).map_err(|e| bind_error(&e, b))?;
    }
    if let Some(t) = a.ttl {
        sock.set_ttl(t.into())?;
    }
    // -M do / dont on IPv4: berth's raw sockets set DF as IP_PMTUDISC_WANT
    // does; the other two build their own header (IP_HDRINCL) with DF set or not.
    let header = match (dst, a.pmtudisc) {
        (IpAddr::V4(d), Some(m @ (Pmtu::Do | Pmtu::Dont))) => {
            sock.set_header_included(true)?;
            Some(V4Header {
                src: match bind {
                    Some(IpAddr::V4(s)) => s,
                    _ => Ipv4Addr::UNSPECIFIED,
                },
                dst: d,
                ttl: a.ttl.unwrap_or(DEFAULT_TTL),
                df: m == Pmtu::Do,
            })
        }
        _ => None,
    };
    match dst {
        IpAddr::V4(_) => println!(
            "PING {dst} ({dst}) from {src} {dev_name}: {}({}) bytes of data.",
            a.size,
            a.size as usize + 28
        ),
        IpAddr::V6(_) => println!(
            "PING {dst}({dst}) from {src} {dev_name}: {} data bytes",
            a.size
        ),
    }
    let _ = io::stdout().flush();
    let mut p = Pinger::new(&a, sock, header, &dev, interval);
    p.run()?;
    Ok(p.finish())
}

/// What iputils learns from connect(2) on a UDP probe before it sends anything:
/// whether there is a route to `dst` (if not, "connect: Network is
/// unreachable" and nothing is sent), and the source address for the first line.
fn route_source(stack: &Stack, dst: IpAddr, bind: Option<IpAddr>) -> io::Result<IpAddr> {
    let local = bind.unwrap_or(match dst {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    });
    let probe =
        UdpSocket::bind(stack, SocketAddr::new(local, 0)).map_err(|e| bind_error(&e, local))?;
    probe
        .connect(SocketAddr::new(dst, 1025))
        .map_err(|e| io::Error::new(e.kind(), format!("connect: {}", strerror(&e))))?;
    Ok(probe.local_addr()?.ip())
}

/// iputils' "bind: Cannot assign requested address", and what to give instead.
fn bind_error(e: &io::Error, addr: IpAddr) -> io::Error {
    invalid(format!(
        "bind: {} ({addr} is not an address of berth's host; give -I one of its --addr addresses)",
        strerror(e)
    ))
}

/// The IPv4 header of a request sent with IP_HDRINCL (for -M do / dont); the
/// stack fills in the length, identification, checksum and (when 0.0.0.0)
/// the source.
struct V4Header {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    df: bool,
}

impl V4Header {
    fn packet(&self, icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20 + icmp.len()];
        p[0] = 0x45;
        let len = (p.len().min(65_535) as u16).to_be_bytes();
        p[2..4].copy_from_slice(&len);
        p[6] = if self.df { 0x40 } else { 0 };
        p[8] = self.ttl;
        p[9] = 1;
        p[12..16].copy_from_slice(&self.src.octets());
        p[16..20].copy_from_slice(&self.dst.octets());
        p[20..].copy_from_slice(icmp);
        p
    }
}

/// What a packet read from the raw socket says about our requests.
#[derive(Debug, PartialEq)]
enum Incoming {
    /// An echo reply: ICMP bytes, sequence number, TTL (from the IPv4
    /// header; an ICMPv6 message has none, its hop limit comes beside it).
    Reply {
        bytes: usize,
        seq: u16,
        ttl: Option<u8>,
    },
    /// An ICMP error quoting one of our requests; `error` is false for the
    /// advisory ones (redirect, source quench) that iputils only prints.
    Error { seq: u16, text: String, error: bool },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Classify what the raw socket read (a whole IPv4 packet, or an ICMPv6
/// message); `None` for anything not about our requests to `dst`.
fn classify(dst: IpAddr, ident: u16, read: &[u8]) -> Option<Incoming> {
    if let Some((bytes, seq, ttl)) = workload::echo_reply(dst, ident, read) {
        return Some(Incoming::Reply { bytes, seq, ttl });
    }
    match dst {
        IpAddr::V4(d) => icmp4_error(d, ident, read),
        IpAddr::V6(d) => icmp6_error(d, ident, read),
    }
}

fn icmp4_error(dst: Ipv4Addr, ident: u16, packet: &[u8]) -> Option<Incoming> {
    let hl = usize::from(packet.first()? & 0x0f) * 4;
    let icmp = packet.get(hl.max(20)..)?;
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    if !matches!(ty, 3 | 4 | 5 | 11 | 12) {
        return None;
    }
    // The request it quotes: IPv4 header, then 8 bytes of our echo request.
    let inner = icmp.get(8..)?;
    let ihl = usize::from(inner.first()? & 0x0f) * 4;
    if ihl < 20 || *inner.get(9)? != 1 || inner.get(16..20)? != dst.octets() {
        return None;
    }
    let echo = inner.get(ihl..ihl + 8)?;
    if echo[0] != 8 || be16(echo, 4)? != ident {
        return None;
    }
    let seq = be16(echo, 6)?;
    let text = match ty {
        3 => match code {
            0 => "Destination Net Unreachable".into(),
            1 => "Destination Host Unreachable".into(),
            2 => "Destination Protocol Unreachable".into(),
            3 => "Destination Port Unreachable".into(),
            4 => format!("Frag needed and DF set (mtu = {})", be16(icmp, 6)?),
            5 => "Source Route Failed".into(),
            6 => "Destination Net Unknown".into(),
            7 => "Destination Host Unknown".into(),
            8 => "Source Host Isolated".into(),
            9 => "Destination Net Prohibited".into(),
            10 => "Destination Host Prohibited".into(),
            11 => "Destination Net Unreachable for Type of Service".into(),
            12 => "Destination Host Unreachable for Type of Service".into(),
            13 => "Packet filtered".into(),
            14 => "Precedence Violation".into(),
            15 => "Precedence Cutoff".into(),
            c => format!("Dest Unreachable, Bad Code: {c}"),
        },
        4 => "Source Quench".into(),
        5 => {
            let kind = match code {
                0 => "Redirect Network".to_string(),
                1 => "Redirect Host".into(),
                2 => "Redirect Type of Service and Network".into(),
                3 => "Redirect Type of Service and Host".into(),
                c => format!("Redirect, Bad Code: {c}"),
            };
            let gw = Ipv4Addr::from(be32(icmp, 4)?);
            format!("{kind}(New nexthop: {gw})")
        }
        11 => match code {
            0 => "Time to live exceeded".into(),
            1 => "Frag reassembly time exceeded".into(),
            c => format!("Time exceeded, Bad Code: {c}"),
        },
        _ => format!("Parameter problem: pointer = {}", icmp.get(4)?),
    };
    Some(Incoming::Error {
        seq,
        text,
        error: !matches!(ty, 4 | 5),
    })
}

fn icmp6_error(dst: Ipv6Addr, ident: u16, msg: &[u8]) -> Option<Incoming> {
    let (ty, code) = (*msg.first()?, *msg.get(1)?);
    if !(1..=4).contains(&ty) {
        return None;
    }
    let info = be32(msg, 4)?;
    // The request it quotes: IPv6 header (maybe a fragment header), then our echo request.
    let inner = msg.get(8..)?;
    if inner.get(24..40)? != dst.octets() {
        return None;
    }
    let (next, at) = match *inner.get(6)? {
        44 => (*inner.get(40)?, 48),
        n => (n, 40),
    };
    let echo = inner.get(at..at + 8)?;
    if next != 58 || echo[0] != 128 || be16(echo, 4)? != ident {
        return None;
    }
    let seq = be16(echo, 6)?;
    let text = match ty {
        1 => format!(
            "Destination unreachable: {}",
            match code {
                0 => "No route".to_string(),
                1 => "Administratively prohibited".into(),
                2 => "Beyond scope of source address".into(),
                3 => "Address unreachable".into(),
                4 => "Port unreachable".into(),
                c => format!("Unknown code {c}"),
            }
        ),
        2 if code == 0 => format!("Packet too big: mtu={info}"),
        2 => format!("Packet too big: mtu={info}, code={code}"),
        3 => format!(
            "Time exceeded: {}",
            match code {
                0 => "Hop limit".to_string(),
                1 => "Defragmentation failure".into(),
                c => format!("code {c}"),
            }
        ),
        _ => format!(
            "Parameter problem: {}at {info}",
            match code {
                0 => "Wrong header field ".to_string(),
                1 => "Unknown header ".into(),
                2 => "Unknown option ".into(),
                c => format!("code {c} "),
            }
        ),
    };
    Some(Incoming::Error {
        seq,
        text,
        error: true,
    })
}

/// One `berth ping` run: iputils' pinger, main loop and statistics.
struct Pinger<'a> {
    a: &'a PingArgs,
    sock: RawSocket,
    header: Option<V4Header>,
    mtu: usize,
    interval: Duration,
    ident: u16,
    /// The data of every request (pattern or 0, 1, 2, …; a timeval first).
    data: Vec<u8>,
    /// Whether round trips are timed (iputils: 16 data bytes or more).
    timing: bool,
    transmitted: u64,
    received: u64,
    duplicates: u64,
    errors: u64,
    /// The latest request answered (by a reply or an error), for in-flight.
    acked: u64,
    sent_at: HashMap<u16, Instant>,
    /// Requests answered by a reply (cleared as the sequence number is reused).
    answered: HashSet<u16>,
    /// Round trips in microseconds: sum, sum of squares, min, max, and
    /// iputils' moving average (8 × the RTT).
    tsum: i64,
    tsum2: f64,
    tmin: i64,
    tmax: i64,
    ewma8: i64,
    start: Instant,
    last_send: Option<Instant>,
    next_due: Instant,
    deadline: Option<Instant>,
    exit_at: Option<Instant>,
}

impl<'a> Pinger<'a> {
    fn new(
        a: &'a PingArgs,
        sock: RawSocket,
        header: Option<V4Header>,
        dev: &Device,
        interval: Duration,
    ) -> Pinger<'a> {
        let data: Vec<u8> = match &a.pattern {
            Some(Pattern(p)) if !p.is_empty() => {
                (0..a.size as usize).map(|i| p[i % p.len()]).collect()
            }
            _ => (0..a.size).map(|i| i as u8).collect(),
        };
        let start = Instant::now();
        Pinger {
            a,
            sock,
            header,
            mtu: dev.mtu(),
            interval,
            ident: (std::process::id() & 0xffff) as u16,
            data,
            timing: a.size >= 16,
            transmitted: 0,
            received: 0,
            duplicates: 0,
            errors: 0,
            acked: 0,
            sent_at: HashMap::new(),
            answered: HashSet::new(),
            tsum: 0,
            tsum2: 0.0,
            tmin: i64::MAX,
            tmax: 0,
            ewma8: 0,
            start,
            last_send: None,
            next_due: start,
            deadline: a.deadline.map(|d| start + d),
            exit_at: None,
        }
    }

    fn in_flight(&self) -> u64 {
        self.transmitted - self.acked
    }

    /// iputils' acknowledge(): the latest request answered moves forward.
    fn acknowledge(&mut self, seq: u16) {
        let back = (self.transmitted as u16).wrapping_sub(seq) as u64;
        if back < 0x8000 && back <= self.transmitted {
            self.acked = self.acked.max(self.transmitted - back);
        }
    }

    fn more_to_send(&self) -> bool {
        !(self
            .a
            .count
            .is_some_and(|c| self.transmitted >= c && self.a.deadline.is_none()))
    }

    /// When the next request may go: every interval (at most one interval of
    /// catching up after a late one); with interval 0, once the last one is
    /// answered or MIN_INTERVAL after it.
    fn due(&self) -> Instant {
        match self.last_send {
            None => self.start,
            Some(last) if self.interval.is_zero() => {
                if self.in_flight() == 0 {
                    last
                } else {
                    last + MIN_INTERVAL
                }
            }
            Some(_) => self.next_due,
        }
    }

    fn run(&mut self) -> io::Result<()> {
        let dst = self.a.dest;
        let mut buf = vec![0u8; 65_536];
        loop {
            if tun::stop_requested() {
                break;
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) || self.exit_at.is_some_and(|e| now >= e) {
                break;
            }
            if self
                .a
                .count
                .is_some_and(|c| self.received + self.errors >= c)
            {
                break;
            }
            if self.a.deadline.is_some() && self.errors > 0 {
                break;
            }
            let more = self.more_to_send();
            if more && self.due() <= now {
                self.send(now);
                if !self.more_to_send() {
                    self.exit_at = Some(now + self.linger());
                }
                continue;
            }
            let until = [more.then(|| self.due()), self.exit_at, self.deadline]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100));
            if until <= now {
                continue;
            }
            // Wake at least every 100 ms to notice Ctrl-C.
            let wait = (until - now).clamp(Duration::from_micros(100), Duration::from_millis(100));
            self.sock.set_read_timeout(Some(wait))?;
            let (n, meta) = match self.sock.recv_meta(&mut buf) {
                Ok(x) => x,
                // Nothing came in time, or a signal (Ctrl-C) woke us.
                Err(e) if nothing_read(&e) => continue,
                Err(e) => return Err(e),
            };
            let from = meta.from;
            match classify(dst, self.ident, &buf[..n]) {
                // An ICMPv6 reply comes without its header: its hop limit is
                // the IPV6_HOPLIMIT ancillary data, which iputils prints as
                // ttl= too (RFC 3542 §6.3).
                Some(Incoming::Reply { bytes, seq, ttl }) => {
                    self.reply(from, bytes, seq, ttl.or(Some(meta.hop_limit)))
                }
                Some(Incoming::Error { seq, text, error }) => {
                    self.icmp_error(from, seq, &text, error)
                }
                None => {}
            }
        }
        Ok(())
    }

    /// iputils' __schedule_exit(): after the last request, wait twice the
    /// longest round trip (at least an interval) once a reply has come, else -W.
    fn linger(&self) -> Duration {
        if self.received > 0 {
            Duration::from_micros(2 * self.tmax.max(0) as u64).max(self.interval)
        } else {
            self.a.timeout
        }
    }

    fn stamp(&self) -> String {
        if !self.a.timestamp {
            return String::new();
        }
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        format!("[{}.{:06}] ", t.as_secs(), t.subsec_micros())
    }

    fn out(&self, s: &str) {
        let mut o = io::stdout().lock();
        let _ = o.write_all(s.as_bytes());
        let _ = o.flush();
    }

    fn send(&mut self, now: Instant) {
        if self.a.outstanding
            && self.transmitted > 0
            && !self.answered.contains(&(self.transmitted as u16))
        {
            self.out(&format!(
                "{}no answer yet for icmp_seq={}\n",
                self.stamp(),
                self.transmitted as u16
            ));
        }
        let seq = (self.transmitted + 1) as u16;
        self.answered.remove(&seq);
        if self.timing {
            // struct timeval, as iputils puts it first in the data.
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.data[..8].copy_from_slice(&(t.as_secs() as i64).to_ne_bytes());
            self.data[8..16].copy_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
        }
        let dst = self.a.dest;
        let msg = workload::echo_request(dst, self.ident, seq, &self.data);
        let sent =
            if dst.is_ipv6() && self.a.pmtudisc == Some(Pmtu::Do) && 40 + msg.len() > self.mtu {
                Err(berth_core::error::error(
                    libc::EMSGSIZE,
                    "above the MTU with -M do",
                ))
            } else {
                match &self.header {
                    Some(h) => self.sock.send_to(&h.packet(&msg), dst),
                    None => self.sock.send_to(&msg, dst),
                }
            };
        // As iputils, a request that could not be sent counts as transmitted.
        self.transmitted += 1;
        self.last_send = Some(now);
        self.next_due = self
            .next_due
            .max(now.checked_sub(self.interval).unwrap_or(now))
            + self.interval;
        match sent {
            Ok(_) => {
                self.sent_at.insert(seq, now);
                if self.a.flood && !self.a.quiet {
                    self.out(".");
                }
            }
            // iputils: a local error from the error queue; with -q it is not
            // even counted.
            Err(e) if berth_core::errno(&e) == Some(libc::EMSGSIZE) => {
                if !self.a.quiet {
                    if self.a.flood {
                        self.out("E");
                    } else {
                        eprintln!("ping: local error: message too long, mtu={}", self.mtu);
                    }
                    self.errors += 1;
                }
            }
            Err(e) => {
                if !self.a.quiet {
                    if self.a.flood {
                        self.out("E");
                    } else {
                        eprintln!("ping: sendmsg: {}", strerror(&e));
                    }
                }
            }
        }
    }

    /// iputils' gather_statistics() and the line it prints.
    fn reply(&mut self, from: IpAddr, bytes: usize, seq: u16, ttl: Option<u8>) {
        let Some(&sent) = self.sent_at.get(&seq) else {
            return; // not a request of this run
        };
        let now = Instant::now();
        self.received += 1;
        self.acknowledge(seq);
        let trip = self.timing.then(|| (now - sent).as_micros() as i64);
        if let Some(t) = trip {
            self.tsum += t;
            self.tsum2 += (t as f64) * (t as f64);
            self.tmin = self.tmin.min(t);
            self.tmax = self.tmax.max(t);
            self.ewma8 = if self.ewma8 == 0 {
                t * 8
            } else {
                self.ewma8 + t - self.ewma8 / 8
            };
        }
        let dup = !self.answered.insert(seq);
        if dup {
            self.duplicates += 1;
            self.received -= 1;
        }
        if self.a.quiet {
            return;
        }
        let bell = if self.a.audible { "\x07" } else { "" };
        if self.a.flood {
            self.out(&format!("\x08 \x08{bell}"));
            return;
        }
        let mut line = format!("{}{bytes} bytes from {from}: icmp_seq={seq}", self.stamp());
        if let Some(t) = ttl {
            line += &format!(" ttl={t}");
        }
        if bytes < self.data.len() + 8 {
            self.out(&format!("{line} (truncated)\n"));
            return;
        }
        if let Some(t) = trip {
            line += &format!(" time={} ms", fmt_trip(t));
        }
        if dup {
            line += " (DUP!)";
        }
        if from != self.a.dest {
            line += " (DIFFERENT ADDRESS!)";
        }
        self.out(&format!("{line}{bell}\n"));
    }

    /// An ICMP error about request `seq` from `from`: counted and printed as
    /// iputils does with what its error queue gives it.
    fn icmp_error(&mut self, from: IpAddr, seq: u16, text: &str, error: bool) {
        if !self.sent_at.contains_key(&seq) {
            return;
        }
        if !error {
            if !self.a.quiet && !self.a.flood {
                self.out(&format!(
                    "{}From {from}: icmp_seq={seq} {text}\n",
                    self.stamp()
                ));
            }
            return;
        }
        self.acknowledge(seq);
        self.errors += 1;
        if self.a.quiet {
            return;
        }
        if self.a.flood {
            self.out("\x08E");
        } else {
            self.out(&format!(
                "{}From {from} icmp_seq={seq} {text}\n",
                self.stamp()
            ));
        }
    }

    /// The summary (iputils' finish()); true for exit status 0.
    fn finish(&self) -> bool {
        let elapsed = self.last_send.map(|t| t - self.start).unwrap_or_default();
        let summary = Summary {
            transmitted: self.transmitted,
            received: self.received,
            duplicates: self.duplicates,
            errors: self.errors,
            elapsed,
            rtt: (self.timing && self.received > 0).then_some(RttStats {
                count: (self.received + self.duplicates) as i64,
                sum: self.tsum,
                sum2: self.tsum2,
                min: self.tmin,
                max: self.tmax,
            }),
            ipg_ewma: (self.received > 0
                && (self.interval.is_zero() || self.a.flood)
                && self.transmitted > 1)
                .then_some(self.ewma8),
        };
        let mut text = String::from("\n");
        for l in summary.lines(&self.a.dest.to_string()) {
            text += &l;
            text.push('\n');
        }
        self.out(&text);
        self.received > 0
            && !(self.a.deadline.is_some() && self.a.count.is_some_and(|c| self.received < c))
    }
}

/// A read that ended without a packet: its timeout, or a signal.
fn nothing_read(e: &io::Error) -> bool {
    use io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

/// A round trip of `t` microseconds as iputils prints it: 3 significant
/// decimals below 1 ms, 2 below 10 ms, 1 below 100 ms, none above.
fn fmt_trip(t: i64) -> String {
    if t >= 100_000 - 50 {
        format!("{}", (t + 500) / 1000)
    } else if t >= 10_000 - 5 {
        format!("{}.{}", (t + 50) / 1000, ((t + 50) % 1000) / 100)
    } else if t >= 1000 {
        format!("{}.{:02}", (t + 5) / 1000, ((t + 5) % 1000) / 10)
    } else {
        format!("{}.{:03}", t / 1000, t % 1000)
    }
}

/// printf's %g: six significant digits, trailing zeros dropped, an exponent
/// below 1e-4 and from 1e6 on.
fn fmt_g(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    // The exponent after rounding to six digits.
    let sci = format!("{v:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mant.to_string()), exp.abs());
    }
    trim(format!("{v:.*}", (5 - exp).max(0) as usize))
}

/// iputils' round-trip sums, in microseconds (duplicates included, as there).
struct RttStats {
    count: i64,
    sum: i64,
    sum2: f64,
    min: i64,
    max: i64,
}

/// The statistics iputils prints at the end.
struct Summary {
    transmitted: u64,
    received: u64,
    duplicates: u64,
    errors: u64,
    /// From the start to the last request sent (the final wait is not counted).
    elapsed: Duration,
    rtt: Option<RttStats>,
    /// With -f or -i 0: the moving average of the RTT × 8, for "ipg/ewma".
    ipg_ewma: Option<i64>,
}

impl Summary {
    fn lines(&self, host: &str) -> Vec<String> {
        let mut counts = format!(
            "{} packets transmitted, {} received",
            self.transmitted, self.received
        );
        if self.duplicates > 0 {
            counts += &format!(", +{} duplicates", self.duplicates);
        }
        if self.errors > 0 {
            counts += &format!(", +{} errors", self.errors);
        }
        let ms = self.elapsed.as_secs() * 1000
            + (u64::from(self.elapsed.subsec_nanos()) + 500_000) / 1_000_000;
        if self.transmitted > 0 {
            // iputils computes the loss as a float.
            let loss = ((self.transmitted as f64 - self.received as f64) * 100.0
                / self.transmitted as f64) as f32;
            counts += &format!(", {}% packet loss, time {ms}ms", fmt_g(loss.into()));
        }
        let ms3 = |us: i64| format!("{}.{:03}", us / 1000, us % 1000);
        let mut last = Vec::new();
        if let Some(r) = &self.rtt {
            let avg = r.sum / r.count;
            let var = if r.sum < i64::from(i32::MAX) {
                ((r.sum2 - ((r.sum * r.sum) / r.count) as f64) / r.count as f64) as i64
            } else {
                (r.sum2 / r.count as f64) as i64 - avg * avg
            };
            let mdev = (var.max(0) as f64).sqrt() as i64;
            last.push(format!(
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
                ms3(r.min),
                ms3(avg),
                ms3(r.max),
                ms3(mdev)
            ));
        }
        if let Some(ewma8) = self.ipg_ewma {
            let ipg = self.elapsed.as_micros() as i64 / (self.transmitted as i64 - 1).max(1);
            last.push(format!("ipg/ewma {}/{} ms", ms3(ipg), ms3(ewma8 / 8)));
        }
        vec![
            format!("--- {host} ping statistics ---"),
            counts,
            last.join(", "),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ping: PingArgs,
    }

    fn parse(flags: &[&str]) -> Result<PingArgs, String> {
        let mut v = vec!["ping", "--tun", "bt0", "--addr", "192.0.2.2/24"];
        v.extend_from_slice(flags);
        v.push("192.0.2.1");
        Cli::try_parse_from(v)
            .map(|c| c.ping)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_iputils_flag_parses_with_plain_seconds() {
        let a = parse(&[
            "-c", "5", "-i", "0.2", "-W", "1", "-w", "5", "-s", "100", "-t", "9", "-q", "-n", "-D",
            "-O", "-f", "-a", "-I", "bt0", "-M", "do", "-p", "0a1", "-4",
        ])
        .unwrap();
        assert_eq!(a.count, Some(5));
        assert_eq!(a.interval, Some(Duration::from_millis(200)));
        assert_eq!(a.timeout, Duration::from_secs(1));
        assert_eq!(a.deadline, Some(Duration::from_secs(5)));
        assert_eq!((a.size, a.ttl), (100, Some(9)));
        assert!(a.quiet && a.numeric && a.timestamp && a.outstanding && a.flood && a.audible);
        assert!(a.ipv4 && !a.ipv6);
        assert_eq!(a.interface.as_deref(), Some("bt0"));
        assert_eq!(a.pmtudisc, Some(Pmtu::Do));
        // An odd last digit is a byte of its own, as iputils' %2x reads it.
        assert_eq!(a.pattern, Some(Pattern(vec![0x0a, 0x01])));
        // Defaults as iputils: 1 s apart, 10 s for a first reply, 56 bytes.
        let d = parse(&[]).unwrap();
        assert_eq!((d.count, d.interval, d.deadline), (None, None, None));
        assert_eq!((d.timeout, d.size), (Duration::from_secs(10), 56));
        // The forms berth took before still work.
        let old = parse(&["-i", "20ms", "-W", "2s"]).unwrap();
        assert_eq!(old.interval, Some(Duration::from_millis(20)));
        assert_eq!(old.timeout, Duration::from_secs(2));
        for m in ["dont", "want"] {
            assert!(parse(&["-M", m]).is_ok());
        }
    }

    #[test]
    fn bad_values_say_what_to_give() {
        assert!(seconds("-1").unwrap_err().contains("e.g. 0.2, 1 or 5"));
        assert!(seconds("NaN").is_err());
        assert!(seconds("3000000").is_err());
        assert_eq!(seconds("0").unwrap(), Duration::ZERO);
        assert_eq!(seconds(" 1.5 ").unwrap(), Duration::from_millis(1500));
        assert!(ttl("256").unwrap_err().contains("1..=255"));
        assert!(count("-3").unwrap_err().contains("1 or more"));
        assert!(pattern("").unwrap_err().contains("hex digits"));
        assert!(pattern("0x11").unwrap_err().contains("hex digits"));
        assert!(parse(&["-M", "sometimes"])
            .err()
            .is_some_and(|e| e.contains("do, dont, want")));
        assert_eq!(
            parse_source("fe80::2%bt0").unwrap(),
            Source::Addr("fe80::2".parse().unwrap(), Some("bt0".into()))
        );
        assert_eq!(parse_source("tap1").unwrap(), Source::Device("tap1".into()));
        assert!(parse_source("2001:db8::g").is_err());
    }

    #[test]
    fn numbers_print_as_iputils_prints_them() {
        assert_eq!(fmt_trip(123), "0.123");
        assert_eq!(fmt_trip(7236), "7.24");
        assert_eq!(fmt_trip(12_345), "12.3");
        assert_eq!(fmt_trip(99_949), "99.9");
        assert_eq!(fmt_trip(123_456), "123");
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(100.0), "100");
        assert_eq!(fmt_g(f64::from((100.0f64 / 3.0) as f32)), "33.3333");
        assert_eq!(fmt_g(0.05), "0.05");
        assert_eq!(fmt_g(0.00002), "2e-05");
        let s = Summary {
            transmitted: 3,
            received: 2,
            duplicates: 1,
            errors: 1,
            elapsed: Duration::from_micros(400_499),
            rtt: Some(RttStats {
                count: 3,
                sum: 600,
                sum2: 100.0f64.powi(2) + 200.0f64.powi(2) + 300.0f64.powi(2),
                min: 100,
                max: 300,
            }),
            ipg_ewma: Some(1600),
        };
        assert_eq!(
            s.lines("192.0.2.1"),
            [
                "--- 192.0.2.1 ping statistics ---",
                "3 packets transmitted, 2 received, +1 duplicates, +1 errors, 33.3333% packet loss, time 400ms",
                "rtt min/avg/max/mdev = 0.100/0.200/0.300/0.081 ms, ipg/ewma 200.249/0.200 ms",
            ]
        );
    }

    #[test]
    fn icmp_errors_about_our_requests_are_recognised() {
        let dst = Ipv4Addr::new(198, 51, 100, 2);
        // Time exceeded from 192.0.2.1 quoting our request (ident 7, seq 3).
        let mut p = vec![
            0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        p.extend_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x45, 0, 0, 84, 0, 0, 0x40, 0, 1, 1, 0, 0, 192, 0, 2, 2]);
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[8, 0, 0, 0, 0, 7, 0, 3]);
        let error = |seq, text: &str| {
            Some(Incoming::Error {
                seq,
                text: text.into(),
                error: true,
            })
        };
        assert_eq!(
            classify(dst.into(), 7, &p),
            error(3, "Time to live exceeded")
        );
        // Another ping's ident, or cut short: not ours.
        assert_eq!(classify(dst.into(), 8, &p), None);
        assert_eq!(classify(dst.into(), 7, &p[..p.len() - 1]), None);
        // ICMPv6 destination unreachable (address) quoting an echo request.
        let d6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut m = vec![1, 3, 0, 0, 0, 0, 0, 0];
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 16, 58, 64];
        ip6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        ip6.extend_from_slice(&d6.octets());
        m.extend_from_slice(&ip6);
        m.extend_from_slice(&[128, 0, 0, 0, 0, 7, 0, 9]);
        assert_eq!(
            classify(d6.into(), 7, &m),
            error(9, "Destination unreachable: Address unreachable")
        );
    }
}
