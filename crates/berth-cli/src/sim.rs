//! `berth sim ping` and `berth sim udp`.

use crate::{args, ss};
use berth::sim::workload::{self, PingConfig, UdpConfig, UdpMode};
use berth::sim::{LinkConfig, LinkId, Medium, Simulator, TwoHosts};
use berth_core::Stack;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub enum SimCommand {
    /// ICMP echo from host A (192.0.2.1) to host B (192.0.2.2), iputils style.
    Ping(PingArgs),
    /// UDP echo or one-way blast from A to B.
    Udp(UdpArgs),
}

/// The link between the two hosts, and the run's seed.
#[derive(Args, Clone)]
pub struct LinkArgs {
    /// Frame loss per direction, e.g. 1%.
    #[arg(long, value_parser = args::percent, default_value = "0%")]
    loss: f64,
    /// One-way delay, e.g. 20ms.
    #[arg(long, value_parser = args::duration, default_value = "0")]
    delay: Duration,
    /// Extra per-frame delay, uniform in [0, jitter], e.g. 5ms.
    #[arg(long, value_parser = args::duration, default_value = "0")]
    jitter: Duration,
    /// Duplicated frames, e.g. 1%.
    #[arg(long, value_parser = args::percent, default_value = "0%")]
    dup: f64,
    /// Frames held back so later ones overtake them, e.g. 2%.
    #[arg(long, value_parser = args::percent, default_value = "0%")]
    reorder: f64,
    /// Bandwidth limit per direction, e.g. 100mbit (tc units).
    #[arg(long, value_parser = args::rate)]
    rate: Option<u64>,
    /// Queue in front of the rate limiter, e.g. 256k.
    #[arg(long, value_parser = args::bytes, default_value = "1m")]
    queue: u64,
    /// Link MTU (IP packet bytes).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(68..))]
    mtu: u16,
    /// Link type: ethernet (with ARP) or ip (bare packets, like TUN).
    #[arg(long, value_enum, default_value_t = MediumArg::Ethernet)]
    medium: MediumArg,
    /// Seed for every random choice; the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every frame on the link to this pcap file.
    #[arg(long)]
    pcap: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MediumArg {
    Ethernet,
    Ip,
}

impl LinkArgs {
    fn link_config(&self) -> LinkConfig {
        LinkConfig {
            delay: self.delay,
            jitter: self.jitter,
            loss: self.loss,
            duplicate: self.dup,
            reorder: self.reorder,
            rate_bps: self.rate,
            mtu: self.mtu as usize,
            queue_limit_bytes: self.queue as usize,
            medium: match self.medium {
                MediumArg::Ethernet => Medium::Ethernet,
                MediumArg::Ip => Medium::Ip,
            },
        }
    }

    fn build(&self) -> io::Result<TwoHosts> {
        let mut hosts = TwoHosts::new(self.seed, self.link_config())?;
        if let Some(p) = &self.pcap {
            hosts.sim.capture(hosts.link, p).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot write capture {}: {e}", p.display()),
                )
            })?;
        }
        Ok(hosts)
    }
}

#[derive(Args)]
pub struct PingArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Echo requests to send.
    #[arg(short = 'c', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=65535))]
    count: u32,
    /// Interval between requests (virtual time).
    #[arg(short = 'i', long, value_parser = args::duration, default_value = "1s")]
    interval: Duration,
    /// ICMP data bytes per request.
    #[arg(short = 's', long, default_value_t = 56, value_parser = clap::value_parser!(u16).range(0..=65507))]
    size: u16,
    /// Time to wait for replies after the last request.
    #[arg(short = 'W', long, value_parser = args::duration, default_value = "2s")]
    timeout: Duration,
}

#[derive(Args)]
pub struct UdpArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// echo: B sends every datagram back; blast: one way, B counts.
    #[arg(long, value_enum, default_value_t = ModeArg::Echo)]
    mode: ModeArg,
    /// Datagrams to send.
    #[arg(short = 'c', long, default_value_t = 1000)]
    count: u64,
    /// Total payload bytes to send (overrides --count), e.g. 10m.
    #[arg(long, value_parser = args::bytes)]
    bytes: Option<u64>,
    /// Payload bytes per datagram (16..=65507; above the MTU they are fragmented).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(16..=65507))]
    size: u32,
    /// Datagrams per second (virtual time).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pps: u64,
    /// B's UDP port.
    #[arg(long, default_value_t = 7)]
    port: u16,
    /// Time to wait for stragglers after the last datagram.
    #[arg(short = 'W', long, value_parser = args::duration, default_value = "2s")]
    timeout: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Echo,
    Blast,
}

pub fn run(cmd: SimCommand) -> io::Result<()> {
    match cmd {
        SimCommand::Ping(a) => ping(a),
        SimCommand::Udp(a) => udp(a),
    }
}

fn ping(a: PingArgs) -> io::Result<()> {
    let mut hosts = a.link.build()?;
    let cfg = PingConfig {
        count: a.count,
        interval: a.interval,
        size: a.size as usize,
        timeout: a.timeout,
        ..PingConfig::default()
    };
    println!(
        "PING {dst} ({dst}) {}({}) bytes of data.",
        cfg.size,
        cfg.size + 28,
        dst = hosts.addr_b
    );
    let report = workload::ping(&mut hosts, &cfg, |r| {
        println!(
            "{} bytes from {}: icmp_seq={} ttl={} time={}{}",
            r.bytes,
            r.from,
            r.seq,
            r.ttl,
            fmt_ms(r.rtt),
            if r.duplicate { " (DUP!)" } else { "" }
        );
    })?;
    println!();
    println!("--- {} ping statistics ---", hosts.addr_b);
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
    finish(&mut hosts)
}

fn udp(a: UdpArgs) -> io::Result<()> {
    let mut hosts = a.link.build()?;
    let count = match a.bytes {
        Some(b) => b.div_ceil(a.size as u64).max(1),
        None => a.count,
    };
    let cfg = UdpConfig {
        mode: match a.mode {
            ModeArg::Echo => UdpMode::Echo,
            ModeArg::Blast => UdpMode::Blast,
        },
        count,
        size: a.size as usize,
        pps: a.pps,
        port: a.port,
        timeout: a.timeout,
    };
    let mode = if cfg.mode == UdpMode::Echo {
        "echo"
    } else {
        "blast"
    };
    println!(
        "UDP {mode} {} -> {}:{}: {} datagrams of {} bytes at {} per second",
        hosts.addr_a, hosts.addr_b, cfg.port, cfg.count, cfg.size, cfg.pps
    );
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} datagrams sent ({percent}%)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = workload::udp(&mut hosts, &cfg, |done, _| {
        if done % 256 == 0 {
            bar.set_position(done);
        }
    })?;
    bar.finish_and_clear();
    println!(
        "sent {}, received {}, lost {} ({}%), duplicated {}, reordered {}",
        report.sent,
        report.received,
        report.lost,
        fmt_pct(if report.sent > 0 {
            100.0 * report.lost as f64 / report.sent as f64
        } else {
            0.0
        }),
        report.duplicated,
        report.reordered
    );
    println!(
        "goodput {} over {:.3} s of virtual time ({} payload bytes)",
        fmt_rate(report.goodput_bps),
        report.duration.as_secs_f64(),
        report.bytes_received
    );
    if !report.latencies.is_empty() {
        let ms: Vec<f64> = report
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = ms.iter().sum::<f64>() / ms.len() as f64;
        let what = if cfg.mode == UdpMode::Echo {
            "rtt"
        } else {
            "one-way delay"
        };
        println!("{what} min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms");
    }
    finish(&mut hosts)
}

/// Print the link counters, both socket tables and the non-zero drop counters, and
/// close the capture.
fn finish(hosts: &mut TwoHosts) -> io::Result<()> {
    println!();
    print_link(&hosts.sim, hosts.link);
    for (name, id, addr) in [("A", hosts.a, hosts.addr_a), ("B", hosts.b, hosts.addr_b)] {
        let stack: &Stack = hosts.sim.node(id);
        println!();
        println!("host {name} ({addr}) sockets:");
        print!("{}", ss::table(&stack.sockets()));
        let c = ss::counters(stack.stats());
        if !c.is_empty() {
            println!("host {name} counters (non-zero):");
            print!("{c}");
        }
    }
    hosts.sim.finish_captures()
}

fn print_link(sim: &Simulator<Stack>, link: LinkId) {
    let (ab, ba) = sim.link_stats(link);
    println!("link            frames   lost  dup  reordered  mtu-drop  queue-drop");
    for (dir, s) in [("A->B", ab), ("B->A", ba)] {
        println!(
            "{dir:<12} {:>9} {:>6} {:>4} {:>10} {:>9} {:>11}",
            s.tx_frames, s.lost, s.duplicated, s.reordered, s.mtu_drops, s.queue_drops
        );
    }
}

fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

fn fmt_pct(p: f64) -> String {
    if p == p.trunc() {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

fn fmt_rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.2} kbit/s", bps / 1e3)
    } else {
        format!("{bps:.0} bit/s")
    }
}
