//! `berth ping`: ICMP echo from a berth host on a TUN device, iputils style.

use crate::args::HostAddrs;
use crate::{args, tun};
use berth::device::{self, Device, Kind};
use berth::sim::workload::{self, PingReport};
use berth::{RawSocket, Stack};
use berth_core::wire::IpCidr;
use berth_core::{AddrState, Config};
use clap::Args;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

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

    /// Our address of `dst`'s family on the device, for messages.
    pub fn source_for(stack: &Stack, dev: &Device, dst: IpAddr) -> String {
        let addrs = stack.addresses(dev.iface());
        let of_family = |global: bool| {
            addrs.iter().map(|(c, _)| c.address()).find(|a| {
                a.is_ipv6() == dst.is_ipv6()
                    && (!global
                        || matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 != 0xfe80))
            })
        };
        of_family(dst.is_ipv6())
            .or_else(|| of_family(false))
            .map(|a| a.to_string())
            .unwrap_or_else(|| "?".into())
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

#[derive(Args)]
pub struct PingArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Stop after this many requests (default: until Ctrl-C).
    #[arg(short = 'c', long, value_parser = clap::value_parser!(u32).range(1..=65535))]
    count: Option<u32>,
    /// Interval between requests.
    #[arg(short = 'i', long, value_parser = args::duration, default_value = "1s")]
    interval: Duration,
    /// ICMP data bytes per request.
    #[arg(short = 's', long, default_value_t = 56, value_parser = clap::value_parser!(u16).range(0..=65507))]
    size: u16,
    /// Time to wait for replies after the last request.
    #[arg(short = 'W', long, value_parser = args::duration, default_value = "2s")]
    timeout: Duration,
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

pub fn run(a: PingArgs) -> io::Result<()> {
    if a.interval.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "-i must be above 0",
        ));
    }
    let dst = a.dest;
    if (a.ipv6 && dst.is_ipv4()) || (a.ipv4 && dst.is_ipv6()) {
        let (flag, fam) = if a.ipv6 {
            ("-6", "IPv6")
        } else {
            ("-4", "IPv4")
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{dst} is not an {fam} address; drop {flag} or give an {fam} address"),
        ));
    }
    a.host.check_reach(dst)?;
    let (stack, dev) = a.host.start()?;
    tun::install_stop_handler()?;
    // ICMP (1) on AF_INET; ICMPv6 (58) on AF_INET6, whose checksum the stack fills in.
    let sock = match dst {
        IpAddr::V4(_) => RawSocket::new(&stack, 1)?,
        IpAddr::V6(_) => RawSocket::new_v6(&stack, 58)?,
    };
    let ident = (std::process::id() & 0xffff) as u16;
    let data: Vec<u8> = (0..a.size).map(|i| (i % 256) as u8).collect();
    // iputils' first line for each family.
    let from = HostArgs::source_for(&stack, &dev, dst);
    let dev = a.host.device_name();
    match dst {
        IpAddr::V4(_) => println!(
            "PING {dst} ({dst}) from {from} {dev}: {}({}) bytes of data.",
            a.size,
            a.size as usize + 28
        ),
        IpAddr::V6(_) => println!(
            "PING {dst} ({dst}) from {from} {dev}: {} data bytes",
            a.size
        ),
    }
    let _ = io::stdout().flush();

    let start = Instant::now();
    let mut report = PingReport::default();
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    let mut answered: HashSet<u16> = HashSet::new();
    let mut next_seq: u32 = 1;
    let mut buf = vec![0u8; 65_536];
    let mut deadline: Option<Instant> = None;
    loop {
        if tun::stop_requested() {
            break;
        }
        let now = Instant::now();
        let more = a.count.is_none_or(|c| next_seq <= c);
        let next_send = more.then(|| start + a.interval * (next_seq - 1));
        if let Some(ts) = next_send.filter(|&ts| ts <= now) {
            let msg = workload::echo_request(dst, ident, next_seq as u16, &data);
            match sock.send_to(&msg, dst) {
                Ok(_) => {}
                Err(e) => eprintln!("ping: sendmsg: {e}"),
            }
            sent_at.insert(next_seq as u16, ts);
            report.transmitted += 1;
            next_seq += 1;
            if a.count.is_some_and(|c| next_seq > c) {
                deadline = Some(Instant::now() + a.timeout);
            }
            continue;
        }
        if a.count
            .is_some_and(|c| next_seq > c && report.received >= c)
        {
            break;
        }
        let until = match (next_send, deadline) {
            (Some(t), _) => t,
            (None, Some(d)) => d,
            (None, None) => now + Duration::from_millis(100),
        };
        if until <= now {
            break;
        }
        // Wake at least every 100 ms to notice Ctrl-C.
        let wait = (until - now).clamp(Duration::from_micros(100), Duration::from_millis(100));
        sock.set_read_timeout(Some(wait))?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let Some((bytes, seq_no, ttl)) = workload::echo_reply(dst, ident, &buf[..n]) else {
            continue;
        };
        let Some(&t0) = sent_at.get(&seq_no) else {
            continue;
        };
        let rtt = Instant::now() - t0;
        // A reply for a sequence already answered is a duplicate.
        let duplicate = !answered.insert(seq_no);
        if duplicate {
            report.duplicates += 1;
        } else {
            report.received += 1;
            report.rtts.push(rtt);
        }
        println!(
            "{bytes} bytes from {from}: icmp_seq={seq_no}{} time={:.3} ms{}",
            ttl.map(|t| format!(" ttl={t}")).unwrap_or_default(),
            rtt.as_secs_f64() * 1e3,
            if duplicate { " (DUP!)" } else { "" }
        );
        let _ = io::stdout().flush();
    }
    report.elapsed = Instant::now() - start;
    println!();
    println!("--- {dst} ping statistics ---");
    let dups = if report.duplicates > 0 {
        format!(", +{} duplicates", report.duplicates)
    } else {
        String::new()
    };
    println!(
        "{} packets transmitted, {} received{dups}, {}% packet loss, time {}ms",
        report.transmitted,
        report.received,
        fmt_pct(report.loss_percent()),
        report.elapsed.as_millis()
    );
    if let Some((min, avg, max, mdev)) = report.rtt_summary_ms() {
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
    if report.received == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no reply from {dst}"),
        ));
    }
    Ok(())
}

fn fmt_pct(p: f64) -> String {
    if p == p.trunc() {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}
