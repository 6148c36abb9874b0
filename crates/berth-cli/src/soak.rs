//! `berth sim soak`: many hosts, random faults, verified traffic; a summary and
//! an exit status that says whether every check held.

use crate::args;
use crate::sim::{fmt_pct, fmt_rate, CcArg, TcpProfile};
use berth::sim::soak::{self, SoakConfig, SoakReport};
use berth::sim::LinkConfig;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct SoakArgs {
    /// Hosts on the simulated switch (192.0.2.1, .2, …).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=200))]
    hosts: u32,
    /// How long the workload and the faults run, in simulated (virtual) time,
    /// e.g. 10m; a drain of a few simulated minutes follows.
    #[arg(long, value_parser = args::duration, default_value = "1m")]
    duration: Duration,
    /// Seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Loss per link direction in percent, e.g. 1% (a bare number is percent
    /// too; a host-to-host path crosses two links).
    #[arg(long, value_name = "PERCENT", value_parser = args::percent, default_value = "1%")]
    loss: f64,
    /// Duplicated frames per link direction in percent, e.g. 0.5%.
    #[arg(long, value_name = "PERCENT", value_parser = args::percent, default_value = "0.5%")]
    dup: f64,
    /// Frames held back by max(delay, 1ms) so later ones overtake them, in
    /// percent, e.g. 1%.
    #[arg(long, value_name = "PERCENT", value_parser = args::percent, default_value = "1%")]
    reorder: f64,
    /// One-way delay of each link.
    #[arg(long, value_parser = args::duration, default_value = "1ms")]
    delay: Duration,
    /// Extra delay per frame, uniform in [0, jitter].
    #[arg(long, value_parser = args::duration, default_value = "0")]
    jitter: Duration,
    /// Bandwidth of each link direction (tc units).
    #[arg(long, value_parser = args::rate, default_value = "10mbit")]
    rate: u64,
    /// Queue in front of each link's rate limiter.
    #[arg(long, value_parser = args::bytes, default_value = "256k")]
    queue: u64,
    /// Link MTU (IP packet bytes).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(68..))]
    mtu: u16,
    /// Mean time between link flaps, e.g. 10s (0: none). A flap takes a
    /// random host's link down for up to --flap-down.
    #[arg(long, value_parser = args::duration, default_value = "10s")]
    flap_every: Duration,
    /// Longest a flapped link stays down (uniform in [1/10, 1] of it).
    #[arg(long, value_parser = args::duration, default_value = "3s")]
    flap_down: Duration,
    /// Mean time between host restarts (0: none). A restart replaces a random
    /// host's stack with a fresh one (its sockets vanish, its peers are not
    /// told); its link is down for --restart-down and its services listen 200ms
    /// after it is back.
    #[arg(long, value_parser = args::duration, default_value = "20s")]
    restart_every: Duration,
    /// How long a restarting host is off the network.
    #[arg(long, value_parser = args::duration, default_value = "1s")]
    restart_down: Duration,
    /// TCP connections open at once over all hosts; a new one starts from a
    /// random host to another as soon as one ends.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    conns: u32,
    /// Each connection sends 1..=max-bytes random bytes and gets them back.
    #[arg(long, value_parser = args::bytes, default_value = "256k")]
    max_bytes: u64,
    /// Connections the client closes on purpose part way through the echo
    /// (half with unread data, half with SO_LINGER 0: both reset).
    #[arg(long, value_parser = args::percent, default_value = "5%")]
    close_early: f64,
    /// One UDP request to a random host's echo port this often.
    #[arg(long, value_parser = args::duration, default_value = "50ms")]
    udp_every: Duration,
    /// One ping to a random host this often.
    #[arg(long, value_parser = args::duration, default_value = "500ms")]
    ping_every: Duration,
    /// TCP defaults of every host, before the soak caps their give-up timers.
    #[arg(long, value_enum, default_value_t = TcpProfile::Berth)]
    tcp_profile: TcpProfile,
    /// Congestion control of every host.
    #[arg(long, value_enum, default_value_t = CcArg::Cubic)]
    cc: CcArg,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn optional(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl SoakArgs {
    fn config(&self) -> io::Result<SoakConfig> {
        if self.max_bytes == 0 {
            return Err(invalid("--max-bytes must be at least 1"));
        }
        if self.udp_every.is_zero() || self.ping_every.is_zero() {
            return Err(invalid(
                "--udp-every and --ping-every must be above zero, e.g. 50ms",
            ));
        }
        if !self.flap_every.is_zero() && self.flap_down.is_zero() {
            return Err(invalid(
                "--flap-down must be above zero; turn flaps off with --flap-every 0",
            ));
        }
        let mut tcp = self.tcp_profile.config();
        tcp.congestion = self.cc.algorithm();
        let d = SoakConfig::default();
        Ok(SoakConfig {
            hosts: self.hosts as usize,
            duration: self.duration,
            link: LinkConfig {
                delay: self.delay,
                jitter: self.jitter,
                loss: self.loss,
                duplicate: self.dup,
                reorder: self.reorder,
                rate_bps: Some(self.rate),
                mtu: self.mtu as usize,
                queue_limit_bytes: self.queue.min(usize::MAX as u64) as usize,
                ..LinkConfig::default()
            },
            tcp: soak::bounded_tcp(tcp),
            conns: self.conns as usize,
            max_bytes: self.max_bytes,
            abort_fraction: self.close_early,
            flap_every: optional(self.flap_every),
            flap_down: self.flap_down,
            restart_every: optional(self.restart_every),
            restart_down: self.restart_down,
            udp_interval: self.udp_every,
            ping_interval: self.ping_every,
            seed: self.seed,
            ..d
        })
    }
}

pub fn run(a: SoakArgs) -> io::Result<()> {
    let cfg = a.config()?;
    if !a.json {
        print_header(&a, &cfg);
    }
    let bar = ProgressBar::new(cfg.duration.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} s of simulated time, {elapsed} wall")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let wall = Instant::now();
    let report = soak::soak(&cfg, |t, _| bar.set_position(t.as_secs()))?;
    let wall = wall.elapsed();
    bar.finish_and_clear();
    let problems = report.problems();
    if a.json {
        let v = to_json(&cfg, &report, wall, &problems);
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(io::Error::other)?
        );
    } else {
        print_summary(&report, wall, &problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "soak failed: {}",
            problems.join("; ")
        )))
    }
}

fn print_header(a: &SoakArgs, cfg: &SoakConfig) {
    println!(
        "berth sim soak: {} hosts on one switch, {} of simulated time, seed {}",
        cfg.hosts,
        humantime::format_duration(cfg.duration),
        cfg.seed
    );
    println!(
        "links: delay {}, jitter {}, loss {}%, dup {}%, reorder {}%, rate {}, queue {} bytes, mtu {} (a host-to-host path crosses two)",
        humantime::format_duration(a.delay),
        humantime::format_duration(a.jitter),
        fmt_pct(a.loss * 100.0),
        fmt_pct(a.dup * 100.0),
        fmt_pct(a.reorder * 100.0),
        fmt_rate(a.rate as f64),
        a.queue,
        a.mtu
    );
    let every = |d: Option<Duration>| {
        d.map_or("off".to_string(), |d| {
            format!("every ~{}", humantime::format_duration(d))
        })
    };
    println!(
        "faults: link flaps {} (down up to {}), host restarts {} (down {})",
        every(cfg.flap_every),
        humantime::format_duration(cfg.flap_down),
        every(cfg.restart_every),
        humantime::format_duration(cfg.restart_down)
    );
    println!(
        "traffic: {} TCP echo connections at once, 1..={} bytes each, {}% closed early; UDP every {}; ping every {}",
        cfg.conns,
        cfg.max_bytes,
        fmt_pct(cfg.abort_fraction * 100.0),
        humantime::format_duration(cfg.udp_interval),
        humantime::format_duration(cfg.ping_interval)
    );
    let (idle, intvl, cnt) = cfg.keepalive;
    println!(
        "TCP: rto max {}, {} retries, {} SYN retries, keepalive {}+{}x{}: a connection without progress for {:.0} s is stuck",
        humantime::format_duration(cfg.tcp.rto_max),
        cfg.tcp.retries,
        cfg.tcp.syn_retries,
        humantime::format_duration(idle),
        cnt,
        humantime::format_duration(intvl),
        cfg.stuck_after().as_secs_f64()
    );
}

fn reasons(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

fn print_summary(r: &SoakReport, wall: Duration, problems: &[String]) {
    println!();
    println!(
        "TCP: opened {}, completed byte-exact {}, closed early on purpose {}, failed with an error {}, stuck {}",
        r.opened,
        r.completed,
        r.closed_early,
        r.failed_total(),
        r.stuck.len()
    );
    println!("  failed by reason: {}", reasons(&r.failed));
    println!(
        "  bytes verified {} ({} each way)",
        2 * r.bytes_verified,
        r.bytes_verified
    );
    println!(
        "  servers: accepted {}, echoed to the end {}, failed {} ({}), lost with their host {}",
        r.accepted,
        r.served,
        r.server_failed.values().sum::<u64>(),
        reasons(&r.server_failed),
        r.server_lost
    );
    for s in &r.stuck {
        println!(
            "  STUCK {} {} -> {}: {} after {}/{} bytes, idle {:.1} s",
            s.role,
            s.local,
            s.peer.map_or("?".into(), |p| p.to_string()),
            s.state,
            s.progress.0,
            s.progress.1,
            s.idle.as_secs_f64()
        );
        for (whose, row) in [("this end", &s.row), ("other end", &s.peer_row)] {
            match row {
                Some(row) => {
                    for line in crate::ss::table(std::slice::from_ref(row)).lines().skip(1) {
                        println!("    {whose}: {line}");
                    }
                }
                None => println!("    {whose}: no such socket"),
            }
        }
    }
    for c in &r.corrupt {
        println!("  CORRUPT {c}");
    }
    println!(
        "UDP: sent {}, answered {} ({}), duplicates {}, corrupt {}, send errors {}",
        r.udp_sent,
        r.udp_answered,
        pct(r.udp_answered, r.udp_sent),
        r.udp_duplicates,
        r.udp_corrupt,
        r.udp_send_errors
    );
    println!(
        "ping: sent {}, answered {} ({})",
        r.pings_sent,
        r.pings_answered,
        pct(r.pings_answered, r.pings_sent)
    );
    println!(
        "faults: link flaps {}, host restarts {}",
        r.flaps, r.restarts
    );
    let l = &r.links;
    println!(
        "links: frames {}, lost {}, duplicated {}, reordered {}, dropped while down {}, queue drops {}",
        l.tx_frames, l.lost, l.duplicated, l.reordered, l.down_drops, l.queue_drops
    );
    println!("memory per host (sockets / charged bytes / timers), start -> end:");
    for (addr, s, e) in &r.memory {
        let ok = if e.sockets > s.sockets || e.bytes > s.bytes || e.timers > s.timers {
            "  NOT BACK"
        } else {
            ""
        };
        println!(
            "  {addr:<12} {}/{}/{} -> {}/{}/{}{ok}",
            s.sockets, s.bytes, s.timers, e.sockets, e.bytes, e.timers
        );
    }
    println!(
        "time: {:.3} s simulated ({:.3} s workload + {:.3} s drain), {:.2} s wall ({:.0}x)",
        (r.workload_time + r.drain_time).as_secs_f64(),
        r.workload_time.as_secs_f64(),
        r.drain_time.as_secs_f64(),
        wall.as_secs_f64(),
        (r.workload_time + r.drain_time).as_secs_f64() / wall.as_secs_f64().max(1e-9)
    );
    if problems.is_empty() {
        println!("result: PASS (every completed transfer byte-exact, none stuck, memory back to its start)");
    } else {
        println!("result: FAIL");
        for p in problems {
            println!("  {p}");
        }
    }
}

fn to_json(cfg: &SoakConfig, r: &SoakReport, wall: Duration, problems: &[String]) -> Value {
    let memory: Vec<Value> = r
        .memory
        .iter()
        .map(|(addr, s, e)| {
            json!({
                "host": addr.to_string(),
                "start": {"sockets": s.sockets, "bytes": s.bytes, "timers": s.timers},
                "end": {"sockets": e.sockets, "bytes": e.bytes, "timers": e.timers},
            })
        })
        .collect();
    let stuck: Vec<Value> = r
        .stuck
        .iter()
        .map(|s| {
            json!({
                "role": s.role,
                "local": s.local.to_string(),
                "peer": s.peer.map(|p| p.to_string()),
                "state": s.state,
                "progress": [s.progress.0, s.progress.1],
                "idle_s": s.idle.as_secs_f64(),
            })
        })
        .collect();
    json!({
        "hosts": cfg.hosts,
        "seed": cfg.seed,
        "tcp": {
            "opened": r.opened,
            "completed": r.completed,
            "closed_early": r.closed_early,
            "failed": r.failed_total(),
            "failed_by_reason": r.failed,
            "stuck": stuck,
            "corrupt": r.corrupt,
            "bytes_verified": r.bytes_verified,
            "accepted": r.accepted,
            "served": r.served,
            "server_failed_by_reason": r.server_failed,
            "server_lost": r.server_lost,
        },
        "udp": {
            "sent": r.udp_sent,
            "answered": r.udp_answered,
            "duplicates": r.udp_duplicates,
            "corrupt": r.udp_corrupt,
            "send_errors": r.udp_send_errors,
        },
        "ping": {"sent": r.pings_sent, "answered": r.pings_answered},
        "faults": {"flaps": r.flaps, "restarts": r.restarts},
        "links": {
            "frames": r.links.tx_frames,
            "lost": r.links.lost,
            "duplicated": r.links.duplicated,
            "reordered": r.links.reordered,
            "down_drops": r.links.down_drops,
            "queue_drops": r.links.queue_drops,
        },
        "memory": memory,
        "stuck_after_s": r.stuck_after.as_secs_f64(),
        "sim_time_s": (r.workload_time + r.drain_time).as_secs_f64(),
        "workload_time_s": r.workload_time.as_secs_f64(),
        "wall_time_s": wall.as_secs_f64(),
        "passed": problems.is_empty(),
        "problems": problems,
    })
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}
