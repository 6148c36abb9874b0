//! `berth sim ping`, `udp`, `transfer` and `echo` (`soak` is in soak.rs).

use crate::trace::{self, OutFile};
use crate::{args, ss};
use berth::sim::workload::{self, EchoConfig, PingConfig, TransferConfig, UdpConfig, UdpMode};
use berth::sim::{LinkConfig, LinkId, Medium, Simulator, TwoHosts};
use berth_core::Stack;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub enum SimCommand {
    /// ICMP echo from host A (192.0.2.1) to host B (192.0.2.2), iputils style.
    Ping(PingArgs),
    /// UDP echo or one-way blast from A to B.
    Udp(UdpArgs),
    /// TCP bulk transfer from A to B over parallel connections, SHA-256 verified.
    Transfer(TransferArgs),
    /// Many short TCP connections (connect, send, echo back, close) through one listener.
    Echo(EchoArgs),
    /// Many hosts on a switch under loss, duplication, reordering, link flaps and
    /// host restarts, running verified TCP, UDP and ping traffic for a span of
    /// simulated time; checks that nothing is stuck, corrupt or leaked.
    Soak(crate::soak::SoakArgs),
}

/// The link between the two hosts, and the run's seed.
#[derive(Args, Clone)]
pub struct LinkArgs {
    #[command(flatten)]
    imp: args::ImpairmentFlags,
    /// Link MTU (IP packet bytes).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(68..))]
    mtu: u16,
    /// Link type: ethernet (with ARP) or ip (bare packets, like TUN).
    #[arg(long, value_enum, default_value_t = MediumArg::Ethernet)]
    medium: MediumArg,
    /// Write every frame on the link to this pcap file.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// TCP defaults of both hosts: berth's, or Linux's (TcpConfig::linux: the
    /// options, initial window and timers a stock Linux kernel uses).
    #[arg(long, value_enum, default_value_t = TcpProfile::Berth)]
    tcp_profile: TcpProfile,
    /// Congestion control of both hosts' TCP (TCP_CONGESTION): cubic (with
    /// HyStart++, the default, as on Linux) or reno.
    #[arg(long, value_enum, default_value_t = CcArg::Cubic)]
    cc: CcArg,
    /// Run the workload over IPv6: A is 2001:db8::1, B is 2001:db8::2 (both
    /// hosts always have both families).
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
}

/// `--cc`: a congestion-control algorithm.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CcArg {
    Cubic,
    Reno,
}

impl CcArg {
    pub fn algorithm(self) -> berth_core::CongestionAlgorithm {
        match self {
            CcArg::Cubic => berth_core::CongestionAlgorithm::Cubic,
            CcArg::Reno => berth_core::CongestionAlgorithm::Reno,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TcpProfile {
    Berth,
    Linux,
}

impl TcpProfile {
    pub fn config(self) -> berth_core::TcpConfig {
        match self {
            TcpProfile::Berth => berth_core::TcpConfig::default(),
            TcpProfile::Linux => berth_core::TcpConfig::linux(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum MediumArg {
    Ethernet,
    Ip,
}

impl LinkArgs {
    fn link_config(&self) -> LinkConfig {
        LinkConfig {
            delay: self.imp.delay,
            jitter: self.imp.jitter,
            loss: self.imp.loss,
            duplicate: self.imp.dup,
            reorder: self.imp.reorder,
            rate_bps: self.imp.rate,
            mtu: self.mtu as usize,
            queue_limit_bytes: self.imp.queue as usize,
            medium: match self.medium {
                MediumArg::Ethernet => Medium::Ethernet,
                MediumArg::Ip => Medium::Ip,
            },
        }
    }

    fn build(&self) -> io::Result<TwoHosts> {
        let mut tcp = self.tcp_profile.config();
        tcp.congestion = self.cc.algorithm();
        let mut hosts = TwoHosts::with_tcp(self.imp.sim_seed(), self.link_config(), tcp)?;
        hosts.ipv6 = self.ipv6;
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

#[derive(Args)]
pub struct TransferArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Bytes each connection sends, e.g. 10m or 1g.
    #[arg(long, value_parser = args::bytes, default_value = "10m", conflicts_with = "time")]
    bytes: u64,
    /// Send for this much virtual time instead of --bytes, e.g. 10s (iperf3's -t).
    #[arg(short = 't', long, value_name = "D", value_parser = args::duration)]
    time: Option<Duration>,
    /// Print iperf3-style interval lines every D of virtual time, e.g. 1s (iperf3's -i).
    #[arg(short = 'i', long, value_name = "D", value_parser = args::duration)]
    interval: Option<Duration>,
    /// Reverse: B's accepted sockets send and A's receive (iperf3's -R).
    #[arg(short = 'R', long)]
    reverse: bool,
    /// Print the run as JSON (iperf3's -J structure: start, intervals, end)
    /// instead of text.
    #[arg(long)]
    json: bool,
    /// Parallel connections into B's one listening socket (each has its own buffers).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    conns: u32,
    /// B's listen backlog (accept queue length), 1 to 4096.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = args::backlog)]
    backlog: usize,
    /// B's TCP port.
    #[arg(long, default_value_t = 5201, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Turn Nagle's algorithm off on A's sockets (TCP_NODELAY).
    #[arg(long)]
    nodelay: bool,
    /// Receive buffer of every socket (SO_RCVBUF), e.g. 4m; default 256k.
    #[arg(long, value_parser = args::bytes)]
    rcvbuf: Option<u64>,
    /// Send buffer of every socket (SO_SNDBUF), e.g. 4m; default 256k.
    #[arg(long, value_parser = args::bytes)]
    sndbuf: Option<u64>,
    /// Give up after this much virtual time.
    #[arg(long, value_parser = args::duration, default_value = "1h")]
    time_limit: Duration,
    /// Draw each connection's goodput, cwnd/ssthresh with loss events, and
    /// smoothed RTT over virtual time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Write each connection's sampled tcp_info to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    trace: Option<PathBuf>,
    /// Sample tcp_info every D of virtual time for --plot / --trace [default:
    /// 10ms, doubled as often as needed to keep at most 20000 samples per
    /// connection (2 million in all)].
    #[arg(long, value_name = "D", value_parser = args::duration)]
    sample: Option<Duration>,
}

/// Default sampling for --plot / --trace: this interval, coarsened (doubled,
/// every other sample dropped) to stay within `SAMPLES_PER_CONN` per connection
/// and `SAMPLES_TOTAL` over all of them.
const DEFAULT_SAMPLE: Duration = Duration::from_millis(10);
const SAMPLES_PER_CONN: usize = 20_000;
const SAMPLES_TOTAL: usize = 2_000_000;

#[derive(Args)]
pub struct EchoArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Connections to make in total.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    conns: u32,
    /// Connections open at once on A.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=16_000))]
    concurrency: u32,
    /// B's listen backlog (accept queue length), 1 to 4096.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = args::backlog)]
    backlog: usize,
    /// Bytes each connection sends and gets back.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    size: u32,
    /// B's TCP port.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// A opens a new connection at most this often (0: all at once).
    #[arg(long, value_parser = args::duration, default_value = "100us")]
    connect_interval: Duration,
    /// Time B's application spends per accept (0: accept all queued at once).
    #[arg(long, value_parser = args::duration, default_value = "500us")]
    accept_interval: Duration,
    /// Give up after this much virtual time.
    #[arg(long, value_parser = args::duration, default_value = "1h")]
    time_limit: Duration,
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
        SimCommand::Transfer(a) => transfer(a),
        SimCommand::Echo(a) => echo(a),
        SimCommand::Soak(a) => crate::soak::run(a),
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
    let dst = hosts.ip_b();
    if dst.is_ipv6() {
        // iputils ping -6 names no packet size, and puts no space before "(".
        println!("PING {dst}({dst}) {} data bytes", cfg.size);
    } else {
        println!(
            "PING {dst} ({dst}) {}({}) bytes of data.",
            cfg.size,
            cfg.size + 28
        );
    }
    let report = workload::ping(&mut hosts, &cfg, |r| {
        println!(
            "{} bytes from {}: icmp_seq={}{} time={}{}",
            r.bytes,
            r.from,
            r.seq,
            r.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default(),
            fmt_ms(r.rtt),
            if r.duplicate { " (DUP!)" } else { "" }
        );
    })?;
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
    finish(&mut hosts)?;
    // As ping: exit status 1 when no request was answered.
    if report.received == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no reply from {dst}: all {} requests were lost",
                report.transmitted
            ),
        ));
    }
    Ok(())
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
        "UDP {mode} {} -> {}: {} datagrams of {} bytes at {} per second",
        hosts.ip_a(),
        SocketAddr::new(hosts.ip_b(), cfg.port),
        cfg.count,
        cfg.size,
        cfg.pps
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

fn transfer(a: TransferArgs) -> io::Result<()> {
    if a.reverse && (a.plot.is_some() || a.trace.is_some()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--plot and --trace follow A's sockets, which only receive with -R; drop one",
        ));
    }
    if a.interval.is_some_and(|d| d < Duration::from_millis(1))
        || a.time.is_some_and(|d| d.is_zero())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "-i needs at least 1ms and -t more than 0 (virtual time)",
        ));
    }
    // Ctrl-C stops the run and prints what it did so far.
    crate::tun::install_stop_handler()?;
    if a.sample.is_some() && a.plot.is_none() && a.trace.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--sample sets the interval of --plot and --trace; give one of them",
        ));
    }
    if a.sample.is_some_and(|d| d < Duration::from_micros(1)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--sample must be at least 1us (virtual time has microsecond steps)",
        ));
    }
    // Created before the run: a bad path fails now, not after the simulation.
    let plot_out = a
        .plot
        .as_deref()
        .map(|p| OutFile::create(p, "plot"))
        .transpose()?;
    let trace_out = a
        .trace
        .as_deref()
        .map(|p| OutFile::create(p, "trace"))
        .transpose()?;
    let sampling = plot_out.is_some() || trace_out.is_some();
    let mut hosts = a.link.build()?;
    let cfg = TransferConfig {
        bytes: a.bytes,
        conns: a.conns as usize,
        backlog: a.backlog,
        port: a.port,
        nodelay: a.nodelay,
        rcvbuf: a.rcvbuf.map(|v| v.min(usize::MAX as u64) as usize),
        sndbuf: a.sndbuf.map(|v| v.min(usize::MAX as u64) as usize),
        time_limit: a.time_limit,
        data_seed: a.link.imp.sim_seed(),
        sample_interval: sampling.then(|| a.sample.unwrap_or(DEFAULT_SAMPLE)),
        sample_limit: (sampling && a.sample.is_none())
            .then(|| SAMPLES_PER_CONN.min(SAMPLES_TOTAL / a.conns.max(1) as usize)),
        reverse: a.reverse,
        duration: a.time,
        interval: a.interval,
        stop: Some(crate::tun::stop_requested),
    };
    let (from, to) = (hosts.ip_a(), SocketAddr::new(hosts.ip_b(), cfg.port));
    let what = match a.time {
        Some(t) => format!("{} of virtual time", humantime::format_duration(t)),
        None => format!("{} bytes", cfg.bytes),
    };
    if !a.json {
        println!(
            "TCP transfer {} {} {}: {} connection{} x {what}, backlog {}{}",
            from,
            if a.reverse { "<-" } else { "->" },
            to,
            cfg.conns,
            if cfg.conns == 1 { "" } else { "s" },
            cfg.backlog,
            if a.reverse { " (reverse: B sends)" } else { "" }
        );
    }
    let total = cfg.bytes.saturating_mul(cfg.conns as u64);
    // No bar when lines are printed (or JSON), nor when the total is unknown.
    let bar = if a.json || a.interval.is_some() || a.time.is_some() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut last = 0u64;
    let mut intervals: Vec<serde_json::Value> = Vec::new();
    let report = workload::tcp_transfer_observed(
        &mut hosts,
        &cfg,
        |done, _| {
            // Redraw every MiB or so; the bar throttles drawing itself too.
            if done >= last + (1 << 20) || done == total {
                last = done;
                bar.set_position(done);
            }
        },
        |iv| {
            if a.json {
                intervals.push(interval_json(iv));
            } else {
                print_interval(iv);
            }
        },
    )?;
    bar.finish_and_clear();
    if a.json {
        let doc = transfer_json(&a, &cfg, from, to, &report, intervals);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        hosts.sim.finish_captures()?;
        return transfer_verdict(&report);
    }
    if a.interval.is_some() {
        println!("{}", crate::perf::report::SEPARATOR);
    }
    println!(
        "{:>4} {:>6} {:>12} {:>10} {:>14} {:>8}  sha256",
        "conn", "port", "bytes", "time", "goodput", "retrans"
    );
    for (i, c) in report.conns.iter().enumerate() {
        let secs = c.duration.as_secs_f64();
        let rate = fmt_goodput(c.bytes_received, secs);
        let verdict = if c.verified() {
            format!("ok {}", hex(&c.sha_received[..8]))
        } else if let Some(e) = &c.error {
            format!("FAILED: {e}")
        } else {
            format!(
                "MISMATCH: sent {} bytes {}, received {} bytes {}",
                c.bytes_sent,
                hex(&c.sha_sent[..8]),
                c.bytes_received,
                hex(&c.sha_received[..8])
            )
        };
        println!(
            "{:>4} {:>6} {:>12} {:>8.3} s {:>14} {:>8}  {verdict}",
            i + 1,
            c.local_port,
            c.bytes_received,
            secs,
            rate,
            c.retransmits
        );
    }
    let ok = report.conns.iter().filter(|c| c.verified()).count();
    println!(
        "received {} bytes in {:.3} s of virtual time: goodput {}, {} retransmitted segments",
        report.bytes,
        report.duration.as_secs_f64(),
        fmt_goodput(report.bytes, report.duration.as_secs_f64()),
        report.retransmits
    );
    println!(
        "SHA-256 verified end to end for {ok}/{} connections",
        report.conns.len()
    );
    if let Some(first) = report.conns.first().filter(|_| sampling) {
        // Every trace is on the same grid; the first two samples give its step.
        // (A single sample: the interval never had to be coarsened.)
        let step = trace::fmt_ms(
            first
                .trace
                .get(1)
                .map_or(cfg.sample_interval.unwrap_or(DEFAULT_SAMPLE), |s| s.t),
        );
        let samples: usize = report.conns.iter().map(|c| c.trace.len()).sum();
        println!("sampled tcp_info every {step} of virtual time: {samples} samples");
        if let Some(out) = trace_out {
            let path = out.path().display().to_string();
            trace::write_csv(out, &report.conns)?;
            println!("trace written to {path}");
        }
        if let Some(out) = plot_out {
            let path = out.path().display().to_string();
            let congestion = hosts
                .sim
                .node(hosts.a)
                .tcp_info(first.client)
                .map_or("?", |i| i.congestion);
            let title = format!(
                "berth sim transfer: {} x {} bytes, {congestion}: goodput {}, {} retransmitted segments",
                cfg.conns,
                cfg.bytes,
                fmt_goodput(report.bytes, report.duration.as_secs_f64()),
                report.retransmits
            );
            let subtitle = format!(
                "link {}; tcp_info of A's sockets every {step} of virtual time",
                link_summary(&a.link)
            );
            trace::write_svg(out, &report.conns, &title, &subtitle)?;
            println!("plot written to {path}");
        }
    }
    finish(&mut hosts)?;
    transfer_verdict(&report)
}

/// Success when every connection verified; after Ctrl-C, "interrupted".
fn transfer_verdict(report: &workload::TransferReport) -> io::Result<()> {
    if report.interrupted {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    if report.all_verified() {
        return Ok(());
    }
    let ok = report.conns.iter().filter(|c| c.verified()).count();
    Err(io::Error::other(format!(
        "{} of {} connections failed verification{}",
        report.conns.len() - ok,
        report.conns.len(),
        if report.timed_out {
            " (time limit reached; raise --time-limit)"
        } else {
            ""
        }
    )))
}

/// -i: iperf3's interval lines, one per connection (and a sum with several).
fn print_interval(iv: &workload::IntervalReport) {
    use crate::perf::report;
    let (st, et) = (iv.start.as_secs_f64(), iv.end.as_secs_f64());
    if iv.start.is_zero() {
        println!("{}", report::HEADER_RETR_CWND);
    } else if iv.conns.len() > 1 {
        println!("{}", report::SEPARATOR);
    }
    for (i, c) in iv.conns.iter().enumerate() {
        println!(
            "{}",
            report::line_retr_cwnd(
                Some(i as u64 + 1),
                st,
                et,
                c.bytes,
                c.retransmits,
                c.cwnd as u64
            )
        );
    }
    if iv.conns.len() > 1 {
        let bytes = iv.conns.iter().map(|c| c.bytes).sum();
        let retr = iv.conns.iter().map(|c| c.retransmits).sum();
        println!(
            "{}",
            report::line_retr(None, st, et, bytes, et - st, retr, "")
        );
    }
}

fn bits_per_second(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 * 8.0 / secs
    } else {
        0.0
    }
}

fn interval_json(iv: &workload::IntervalReport) -> serde_json::Value {
    let (st, et) = (iv.start.as_secs_f64(), iv.end.as_secs_f64());
    let secs = et - st;
    let streams: Vec<serde_json::Value> = iv
        .conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({"socket": i + 1, "start": st, "end": et, "seconds": secs,
                "bytes": c.bytes, "bits_per_second": bits_per_second(c.bytes, secs),
                "retransmits": c.retransmits, "snd_cwnd": c.cwnd, "omitted": false,
                "sender": true})
        })
        .collect();
    let bytes: u64 = iv.conns.iter().map(|c| c.bytes).sum();
    let retr: u64 = iv.conns.iter().map(|c| c.retransmits).sum();
    serde_json::json!({"streams": streams, "sum": {"start": st, "end": et, "seconds": secs,
        "bytes": bytes, "bits_per_second": bits_per_second(bytes, secs), "retransmits": retr,
        "omitted": false, "sender": true}})
}

/// `--json`: the run in iperf3's -J structure, plus the digests.
fn transfer_json(
    a: &TransferArgs,
    cfg: &TransferConfig,
    from: std::net::IpAddr,
    to: SocketAddr,
    report: &workload::TransferReport,
    intervals: Vec<serde_json::Value>,
) -> serde_json::Value {
    let secs = report.duration.as_secs_f64();
    let streams: Vec<serde_json::Value> = report
        .conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let t = c.duration.as_secs_f64();
            serde_json::json!({
                "sender": {"socket": i + 1, "start": 0.0, "end": t, "seconds": t,
                    "bytes": c.bytes_sent, "bits_per_second": bits_per_second(c.bytes_sent, t),
                    "retransmits": c.retransmits, "sender": true},
                "receiver": {"socket": i + 1, "start": 0.0, "end": t, "seconds": t,
                    "bytes": c.bytes_received,
                    "bits_per_second": bits_per_second(c.bytes_received, t), "sender": true},
                "local_port": c.local_port,
                "sha256_sent": hex(&c.sha_sent),
                "sha256_received": hex(&c.sha_received),
                "verified": c.verified(),
                "error": c.error,
            })
        })
        .collect();
    let sent: u64 = report.conns.iter().map(|c| c.bytes_sent).sum();
    serde_json::json!({
        "start": {
            "connecting_to": {"host": to.ip().to_string(), "port": to.port()},
            "local_host": from.to_string(),
            "link": link_summary(&a.link),
            "test_start": {"protocol": "TCP", "num_streams": cfg.conns,
                "bytes": if cfg.duration.is_some() { 0 } else { cfg.bytes },
                "duration": cfg.duration.map_or(0.0, |d| d.as_secs_f64()),
                "reverse": u8::from(cfg.reverse), "backlog": cfg.backlog},
        },
        "intervals": intervals,
        "end": {
            "streams": streams,
            "sum_sent": {"start": 0.0, "end": secs, "seconds": secs, "bytes": sent,
                "bits_per_second": bits_per_second(sent, secs),
                "retransmits": report.retransmits, "sender": true},
            "sum_received": {"start": 0.0, "end": secs, "seconds": secs, "bytes": report.bytes,
                "bits_per_second": report.goodput_bps, "sender": true},
            "virtual_time": true,
            "verified": report.all_verified(),
            "timed_out": report.timed_out,
            "interrupted": report.interrupted,
        },
    })
}

fn echo(a: EchoArgs) -> io::Result<()> {
    let mut hosts = a.link.build()?;
    let cfg = EchoConfig {
        conns: a.conns as usize,
        concurrency: a.concurrency as usize,
        backlog: a.backlog,
        size: a.size as usize,
        port: a.port,
        connect_interval: a.connect_interval,
        accept_interval: a.accept_interval,
        time_limit: a.time_limit,
        data_seed: a.link.imp.sim_seed(),
        ..EchoConfig::default()
    };
    println!(
        "TCP echo {} -> {}: {} connections, {} at a time, {} bytes each, backlog {}",
        hosts.ip_a(),
        SocketAddr::new(hosts.ip_b(), cfg.port),
        cfg.conns,
        cfg.concurrency,
        cfg.size,
        cfg.backlog
    );
    let bar = ProgressBar::new(cfg.conns as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} connections done ({percent}%)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = workload::tcp_echo(&mut hosts, &cfg, |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    println!(
        "completed {}, failed {}, unfinished {} in {:.3} s of virtual time",
        report.completed,
        report.failed,
        report.unfinished,
        report.duration.as_secs_f64()
    );
    for (why, n) in &report.errors {
        println!("  {n:>6} x {why}");
    }
    if !report.latencies.is_empty() {
        let mut ms: Vec<f64> = report
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
        println!(
            "connection time min/p50/p99/max = {:.3}/{:.3}/{:.3}/{:.3} ms",
            ms[0],
            pct(0.5),
            pct(0.99),
            ms[ms.len() - 1]
        );
    }
    println!(
        "listener: accepted {}, longest accept queue {} (backlog {}), listen overflows {}, listen drops {}",
        report.accepted,
        report.max_accept_queue,
        cfg.backlog,
        report.listen_overflows,
        report.listen_drops
    );
    println!(
        "clients: {} retransmission timeouts, {} segments retransmitted",
        report.client_rto_events, report.client_retransmits
    );
    finish_with(&mut hosts, Some(ECHO_ROWS))?;
    if report.completed == cfg.conns as u64 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} of {} connections did not complete",
            cfg.conns as u64 - report.completed,
            cfg.conns
        )))
    }
}

/// Socket rows listed per host after an echo run (thousands of TIME-WAIT sockets
/// would bury the rest); the state summary covers them all.
const ECHO_ROWS: usize = 12;

/// Goodput, or "-" when no virtual time passed (a link without delay or rate).
fn fmt_goodput(bytes: u64, secs: f64) -> String {
    if secs > 0.0 {
        fmt_rate(bytes as f64 * 8.0 / secs)
    } else {
        "-".to_string()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Print the link counters, both socket tables and the non-zero drop counters, and
/// close the capture.
fn finish(hosts: &mut TwoHosts) -> io::Result<()> {
    finish_with(hosts, None)
}

/// [`finish`], listing at most `max_rows` sockets per host (with a count of sockets
/// per state when some are left out).
fn finish_with(hosts: &mut TwoHosts, max_rows: Option<usize>) -> io::Result<()> {
    println!();
    print_link(&hosts.sim, hosts.link);
    for (name, id, addr) in [("A", hosts.a, hosts.ip_a()), ("B", hosts.b, hosts.ip_b())] {
        let stack: &mut Stack = hosts.sim.node_mut(id);
        println!();
        println!("host {name} ({addr}) sockets:");
        let mut rows = stack.sockets();
        match max_rows {
            Some(max) if rows.len() > max => {
                let mut by_state: Vec<(&str, usize)> = Vec::new();
                for r in &rows {
                    let label = if r.kind.netid() == "tcp" {
                        r.state
                    } else {
                        r.kind.netid()
                    };
                    match by_state.iter_mut().find(|(s, _)| *s == label) {
                        Some((_, n)) => *n += 1,
                        None => by_state.push((label, 1)),
                    }
                }
                let summary: Vec<String> =
                    by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
                println!("{} sockets: {}", rows.len(), summary.join(", "));
                // Listeners first: they carry the accept-queue story.
                rows.sort_by_key(|r| r.state != "LISTEN");
                let left = rows.len() - max;
                rows.truncate(max);
                print!("{}", ss::table_of(stack, &rows));
                println!("... {left} more");
            }
            _ => print!("{}", ss::table_of(stack, &rows)),
        }
        let c = ss::counters(stack.stats());
        if !c.is_empty() {
            println!("host {name} counters (non-zero):");
            print!("{c}");
        }
    }
    hosts.sim.finish_captures()
}

/// The link's settings in a line, e.g. "delay 10ms, loss 1%, rate 100mbit, mtu 1500".
fn link_summary(l: &LinkArgs) -> String {
    let imp = &l.imp;
    let mut parts = vec![format!("delay {}", humantime::format_duration(imp.delay))];
    if !imp.jitter.is_zero() {
        parts.push(format!("jitter {}", humantime::format_duration(imp.jitter)));
    }
    for (name, p) in [
        ("loss", imp.loss),
        ("dup", imp.dup),
        ("reorder", imp.reorder),
    ] {
        if p > 0.0 {
            parts.push(format!("{name} {}%", fmt_pct(p * 100.0)));
        }
    }
    match imp.rate {
        Some(r) => parts.push(format!(
            "rate {}, queue {} bytes",
            fmt_rate(r as f64),
            imp.queue
        )),
        None => parts.push("rate unlimited".to_string()),
    }
    parts.push(format!("mtu {}", l.mtu));
    parts.push(format!("seed {}", imp.sim_seed()));
    parts.join(", ")
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

/// A percentage with as many decimals as it needs (0.05, 1, 2.5), not rounded
/// to one decimal: 0.05 % loss must not read 0.1 %.
pub(crate) fn fmt_pct(p: f64) -> String {
    let s = format!("{p:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn fmt_rate(bps: f64) -> String {
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
