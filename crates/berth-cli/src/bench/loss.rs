//! `berth bench --loss`: TCP goodput through a lossy, delayed path, the kernel's
//! TCP against berth's, sending to the same kind of kernel receiver.
//!
//! Every run gets two fresh network namespaces (so no run inherits the kernel's
//! cached per-destination metrics from another) joined by `berth impair`'s
//! forwarding loop, run in this process on two TUN devices:
//!
//! ```text
//!  NS S (sender)                                            NS R (receiver)
//!  kernel client 192.0.2.2 ─┐
//!                            ├ blimps ─ impair (loss, delay) ─ blimpr ─ kernel 192.0.2.1:5001
//!  berth 192.0.2.3 ─ blberth ┘ (NS S's kernel forwards)                 reading and counting
//! ```
//!
//! Run A is a kernel TCP client in NS S; run B is berth on its own TUN in NS S,
//! whose kernel routes between berth's TUN and the impair TUN (as
//! `tests/netns_impair.rs` does). Both runs of a loss rate use the same seed, so
//! the forwarder draws the same loss decisions for the n-th packet of each
//! direction. Goodput is what the receiving application read in the first
//! `--duration` after connect returned, divided by that time. The forwarder's
//! TUNs get a deep queue (`TUN_QUEUE`) so that only the impairment drops; the
//! kernel's drop counters of both are reported to show it.

use super::tun_mode::{self, Netns};
use super::{progress, CHUNK};
use crate::impair::{self, DirStats, Direction, Impairments};
use crate::tun;
use berth::device::{DeviceOptions, Kind};
use berth::Stack;
use clap::Args;
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct LossArgs {
    /// Instead of the other measurements: TCP goodput through a lossy path
    /// (`berth impair` between two network namespaces), a kernel TCP client
    /// against berth, both sending to a kernel receiver. Needs root,
    /// /dev/net/tun and ip. See --loss-rates, --duration, --delay.
    #[arg(long, conflicts_with_all = ["tun", "tun_only", "bytes", "rtt_count", "conns"])]
    pub loss: bool,
    /// With --loss: loss rates to measure, each applied in both directions.
    #[arg(
        long,
        requires = "loss",
        value_delimiter = ',',
        value_parser = crate::args::percent,
        default_value = "0.1%,1%,2%"
    )]
    pub loss_rates: Vec<f64>,
    /// With --loss: how long each run sends (each rate runs twice: kernel, berth).
    #[arg(long, requires = "loss", value_parser = crate::args::duration, default_value = "30s")]
    pub duration: Duration,
    /// With --loss: delay added in each direction (one way, as `berth impair
    /// --delay`), so the round trip grows by twice this.
    #[arg(long, requires = "loss", value_parser = crate::args::duration, default_value = "20ms")]
    pub delay: Duration,
    /// With --loss: seed of the impairment; every run uses it.
    #[arg(long, requires = "loss", default_value_t = 1)]
    pub seed: u64,
    /// With --loss: the kernel sender's congestion control (TCP_CONGESTION on
    /// its socket, any algorithm the kernel has, e.g. cubic, reno or bbr). The
    /// default compares like with like: cubic, as berth's default.
    #[arg(long, requires = "loss", value_name = "ALGO", default_value = "cubic")]
    pub kernel_cc: Option<String>,
    /// With --loss: berth's congestion control.
    #[arg(long, requires = "loss", value_enum, default_value_t = crate::sim::CcArg::Cubic)]
    pub berth_cc: crate::sim::CcArg,
}

const KERNEL_ADDR: &str = "192.0.2.2/24";
const BERTH_ADDR: &str = "192.0.2.3/24";
const BERTH_HOST: &str = "192.0.2.3/32";
const RECEIVER: &str = "192.0.2.1/24";
const RECEIVER_PORT: &str = "192.0.2.1:5001";
/// The impair forwarder's devices (sender and receiver side) and berth's TUN.
const DEV_S: &str = "blimps";
const DEV_R: &str = "blimpr";
const DEV_BERTH: &str = "blberth";
/// Packets the kernel may queue on each forwarder TUN (txqueuelen; the default
/// 500 overflows when a sender outruns the forwarder, adding drops that are not
/// the configured loss). More than either sender keeps in flight (4 MiB
/// buffers: ~2,900 segments), so the impairment is the only thing that drops.
const TUN_QUEUE: u32 = 10_000;
/// How often blocked calls look at the stop flag.
const TICK: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CC_FILE: &str = "/proc/sys/net/ipv4/tcp_congestion_control";

/// Which TCP sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Kernel,
    Berth,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Kernel => "kernel",
            Who::Berth => "berth",
        }
    }
}

/// One run: one sender, one loss rate.
struct RunOut {
    /// Bytes the receiver read in the window.
    bytes: u64,
    /// The window: connect returned → snapshot.
    seconds: f64,
    /// The sender at the end of the window.
    snap: Snapshot,
    /// NS S's /proc/sys/net/ipv4/tcp_congestion_control.
    ns_default_cc: String,
    /// The forwarder: [sender → receiver (data), receiver → sender (ACKs)],
    /// counted until the run stopped (a moment after the window).
    impair: [DirStats; 2],
    /// Packets the kernel dropped on the way into the forwarder: a TUN's
    /// queue (txqueuelen) overflows when the senders outrun the forwarder.
    /// [data side (NS S), ACK side (NS R)], also counted until the run stopped.
    tun_drops: [u64; 2],
    mtu: usize,
}

impl RunOut {
    fn mbit(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds.max(1e-9) / 1e6
    }

    fn json(&self, kernel_mbit: f64) -> Value {
        let dir = |s: &DirStats| {
            json!({
                "received": s.rx_packets,
                "delivered": s.delivered,
                "lost": s.lost,
                "write_errors": s.write_errors,
            })
        };
        let t = &self.snap;
        json!({
            "bytes": self.bytes,
            "seconds": self.seconds,
            "mbit_per_sec": self.mbit(),
            "ratio_to_kernel_tcp": super::ratio(self.mbit(), kernel_mbit),
            "congestion": t.congestion,
            "retrans": t.retrans,
            "segs_out": t.segs_out,
            "dsack_dups": t.dsack_dups,
            "rto_events": t.rto_events,
            "recoveries": t.recoveries,
            "rtt_us": t.rtt_us,
            "cwnd_bytes": t.cwnd_bytes,
            "device_frames_written": t.frames_written,
            "impair": {
                "data": dir(&self.impair[0]),
                "acks": dir(&self.impair[1]),
            },
            "tun_queue_drops": {
                "data": self.tun_drops[0],
                "acks": self.tun_drops[1],
            },
        })
    }
}

struct RateOut {
    loss: f64,
    kernel: RunOut,
    berth: RunOut,
}

pub fn run(a: &LossArgs, offload: bool, json_out: bool) -> io::Result<()> {
    if a.loss_rates.is_empty() {
        return Err(invalid("--loss-rates needs at least one rate"));
    }
    if a.duration < Duration::from_millis(100) {
        return Err(invalid("--duration must be at least 100ms"));
    }
    tun_mode::check("--loss")?;
    tun_mode::watch_for_stop()?;
    let secs = a.duration.as_secs().max(1);
    let bar = progress(secs * 2 * a.loss_rates.len() as u64, "loss", false);
    let mut rates = Vec::new();
    for (i, &loss) in a.loss_rates.iter().enumerate() {
        let one = |who: Who, n: u64| {
            bar.set_message(format!("loss {}: {}", pct(loss), who.name()));
            let out = run_one(a, loss, who, offload, &format!("l{i}{}", &who.name()[..1]));
            bar.set_position(secs * n);
            out
        };
        let kernel = one(Who::Kernel, 2 * i as u64 + 1)?;
        let berth = one(Who::Berth, 2 * i as u64 + 2)?;
        rates.push(RateOut {
            loss,
            kernel,
            berth,
        });
    }
    bar.finish_and_clear();
    if json_out {
        let text = serde_json::to_string_pretty(&to_json(a, &rates)).map_err(io::Error::other)?;
        println!("{text}");
    } else {
        print(a, &rates);
    }
    Ok(())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn pct(p: f64) -> String {
    format!("{}%", (p * 100.0 * 1e6).round() / 1e6)
}

// ---------------------------------------------------------------------------
// One run

/// Sets the flag when dropped, so every thread of a failed run stops too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Namespaces, devices, forwarder, receiver and sender for one run; all torn
/// down (threads joined, devices closed, namespaces deleted) before it returns.
fn run_one(a: &LossArgs, loss: f64, who: Who, offload: bool, tag: &str) -> io::Result<RunOut> {
    // Dropped last (declared first): the namespaces.
    let ns_s = Netns::new(&format!("{tag}s"))?;
    let ns_r = Netns::new(&format!("{tag}r"))?;
    sysctl(&ns_s, "net/ipv4/ip_forward", "1")?;
    sysctl(&ns_s, "net/ipv4/conf/all/rp_filter", "0")?;
    sysctl(&ns_s, "net/ipv4/conf/default/rp_filter", "0")?;
    let ns_default_cc = ns_s
        .enter(|| std::fs::read_to_string(CC_FILE))?
        .trim()
        .to_string();
    let tun_s = ns_s.enter(|| tun::open(DEV_S, None, true))?;
    let tun_r = ns_r.enter(|| tun::open(DEV_R, None, true))?;
    tun::set_nonblocking(&tun_s.fd)?;
    tun::set_nonblocking(&tun_r.fd)?;
    let qlen = TUN_QUEUE.to_string();
    ns_s.ip(&["addr", "add", KERNEL_ADDR, "dev", DEV_S])?;
    ns_s.ip(&["link", "set", DEV_S, "txqueuelen", &qlen, "up"])?;
    ns_r.ip(&["addr", "add", RECEIVER, "dev", DEV_R])?;
    ns_r.ip(&["link", "set", DEV_R, "txqueuelen", &qlen, "up"])?;
    let mtu = tun_s.mtu.min(tun_r.mtu);
    let to: SocketAddr = RECEIVER_PORT.parse().map_err(io::Error::other)?;
    let cfg = Impairments {
        delay: a.delay,
        jitter: Duration::ZERO,
        loss,
        duplicate: 0.0,
        reorder: 0.0,
        rate_bps: None,
        queue_limit_bytes: 1 << 20,
    };

    let stop = AtomicBool::new(false);
    let received = AtomicU64::new(0);
    let stopped = || stop.load(Ordering::SeqCst);
    let out = thread::scope(|sc| -> io::Result<RunOut> {
        let _stop_guard = StopOnDrop(&stop);
        let fwd = thread::Builder::new()
            .name("bench-impair".into())
            .spawn_scoped(sc, || {
                let epoch = Instant::now();
                let mut dirs = [
                    Direction::new(cfg.clone(), a.seed, 0, epoch),
                    Direction::new(cfg.clone(), a.seed, 1, epoch),
                ];
                impair::forward(&tun_s.fd, &tun_r.fd, &mut dirs, [DEV_S, DEV_R], &stopped)
                    .map(|()| [dirs[0].stats, dirs[1].stats])
            })?;
        let listener = ns_r.enter(|| TcpListener::bind(to))?;
        let rx = thread::Builder::new()
            .name("bench-receiver".into())
            .spawn_scoped(sc, || receive(listener, &received, &stopped))?;

        // Declared before the sender, so it is torn down after the sender's
        // socket handles are gone.
        let host = match who {
            Who::Kernel => None,
            Who::Berth => Some(BerthHost::new(&ns_s, offload, a.berth_cc)?),
        };
        let (sender, info) = match &host {
            None => {
                let s = ns_s.enter(|| TcpStream::connect_timeout(&to, CONNECT_TIMEOUT))?;
                if let Some(cc) = &a.kernel_cc {
                    // Before any data: the connection runs on it from the start.
                    set_congestion(&s, cc)?;
                }
                s.set_write_timeout(Some(TICK))?;
                let info = s.try_clone()?;
                (Sender::Kernel(s), Sender::Kernel(info))
            }
            Some(h) => {
                let s = berth::TcpStream::connect_timeout(&h.stack, &to, CONNECT_TIMEOUT)?;
                s.set_write_timeout(Some(TICK))?;
                let info = s.try_clone()?;
                (Sender::Berth(s), Sender::Berth(info))
            }
        };
        let t0 = Instant::now();
        let tx = thread::Builder::new()
            .name("bench-sender".into())
            .spawn_scoped(sc, || send(sender, &stopped))?;

        let end = t0 + a.duration;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if tx.is_finished() || rx.is_finished() || fwd.is_finished() {
                break; // an error: reported below
            }
            thread::sleep((end - now).min(Duration::from_millis(100)));
        }
        let bytes = received.load(Ordering::SeqCst);
        let seconds = t0.elapsed().as_secs_f64();
        let snap = info.snapshot().map(|s| s.with_device(host.as_ref()));
        stop.store(true, Ordering::SeqCst);
        let early = seconds + 0.05 < a.duration.as_secs_f64();
        let joined = |name: &str, r: thread::Result<io::Result<()>>| -> io::Result<()> {
            r.map_err(|_| io::Error::other(format!("the {name} thread panicked")))?
                .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))
        };
        joined("sender", tx.join())?;
        joined("receiver", rx.join())?;
        let tun_drops = [tx_dropped(&ns_s, DEV_S)?, tx_dropped(&ns_r, DEV_R)?];
        drop(info);
        drop(host);
        let impair = fwd
            .join()
            .map_err(|_| io::Error::other("the impair thread panicked"))?
            .map_err(|e| io::Error::new(e.kind(), format!("impair: {e}")))?;
        if early {
            return Err(io::Error::other(format!(
                "{} run at {} loss ended after {seconds:.1} s",
                who.name(),
                pct(loss)
            )));
        }
        Ok(RunOut {
            bytes,
            seconds,
            snap: snap?,
            ns_default_cc,
            impair,
            tun_drops,
            mtu,
        })
    });
    drop((tun_s, tun_r));
    // berth's TUN closes when the last reference to its stack is gone, which
    // can trail the scope by a moment: wait for it, so no device outlives
    // its namespace.
    if who == Who::Berth {
        wait_for_no_device(&ns_s, DEV_BERTH);
    }
    drop(ns_r);
    drop(ns_s);
    out
}

/// Write `value` to /proc/sys/`key` inside `ns`.
fn sysctl(ns: &Netns, key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{key}");
    ns.enter(|| std::fs::write(&path, value))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot set {path} to {value}: {e}")))
}

/// The kernel's TX drop counter of `dev` in `ns` (`ip -s link`): packets
/// the kernel meant for the forwarder but its TUN queue had no room for.
fn tx_dropped(ns: &Netns, dev: &str) -> io::Result<u64> {
    let o = std::process::Command::new("ip")
        .args(["-n", &ns.name, "-j", "-s", "link", "show", "dev", dev])
        .stdin(std::process::Stdio::null())
        .output()?;
    let v: Value = serde_json::from_slice(&o.stdout).map_err(|e| {
        io::Error::other(format!(
            "ip -j -s link show dev {dev}: {e}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    })?;
    v[0]["stats64"]["tx"]["dropped"]
        .as_u64()
        .ok_or_else(|| io::Error::other(format!("no TX drop counter for {dev} in {v}")))
}

fn wait_for_no_device(ns: &Netns, dev: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && ns.ip(&["link", "show", dev]).is_ok() {
        thread::sleep(Duration::from_millis(20));
    }
}

/// berth on its own TUN in the sender's namespace, routed by that namespace's
/// kernel. Dropping it closes the device and shuts the stack down.
struct BerthHost {
    stack: Stack,
    dev: Option<berth::device::Device>,
}

impl BerthHost {
    fn new(ns: &Netns, offload: bool, cc: crate::sim::CcArg) -> io::Result<BerthHost> {
        // berth's defaults, as the kernel runs with its own: buffers start at
        // 256 KiB and autotune.
        let mut config = berth_core::Config::default();
        config.tcp.congestion = cc.algorithm();
        let stack = Stack::new(config);
        let mut o = DeviceOptions::new(
            DEV_BERTH,
            Kind::Tun,
            BERTH_ADDR
                .parse()
                .map_err(|_| io::Error::other("internal: bad prefix"))?,
        );
        o.create = true;
        o.offload = offload;
        let dev = {
            let stack = stack.clone();
            ns.enter(move || berth::device::attach(&stack, &o))
        };
        let host = BerthHost {
            stack,
            dev: Some(dev?),
        };
        ns.ip(&["link", "set", DEV_BERTH, "up"])?;
        ns.ip(&["route", "add", BERTH_HOST, "dev", DEV_BERTH])?;
        Ok(host)
    }
}

impl Drop for BerthHost {
    fn drop(&mut self) {
        drop(self.dev.take());
        self.stack.shutdown();
    }
}

enum Sender {
    Kernel(TcpStream),
    Berth(berth::TcpStream),
}

/// The sender's view at the end of the window (its tcp_info).
struct Snapshot {
    /// Kernel: the socket's TCP_CONGESTION; berth: tcp_info.
    congestion: String,
    /// Segments retransmitted (tcpi_total_retrans).
    retrans: u64,
    /// Segments sent (kernel: tcpi_data_segs_out; berth: segs_out).
    segs_out: u64,
    /// Segments the receiver reported twice (D-SACK).
    dsack_dups: u64,
    /// Retransmission timeouts (kernel: tcpi_total_rto).
    rto_events: u64,
    /// berth only: loss-recovery episodes.
    recoveries: Option<u64>,
    rtt_us: u64,
    cwnd_bytes: u64,
    /// berth only: whether its TUN batches (offload) and the frames it
    /// handed to the device (before GSO coalescing).
    offload: Option<bool>,
    frames_written: Option<u64>,
}

impl Sender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sender::Kernel(s) => s.write(buf),
            Sender::Berth(s) => s.write(buf),
        }
    }

    fn snapshot(&self) -> io::Result<Snapshot> {
        match self {
            Sender::Kernel(s) => {
                let i = kernel_tcp_info(s)?;
                Ok(Snapshot {
                    congestion: congestion(s)?,
                    retrans: u64::from(i.tcpi_total_retrans),
                    segs_out: u64::from(i.tcpi_data_segs_out),
                    dsack_dups: u64::from(i.tcpi_dsack_dups),
                    rto_events: u64::from(i.tcpi_total_rto),
                    recoveries: None,
                    rtt_us: u64::from(i.tcpi_rtt),
                    cwnd_bytes: u64::from(i.tcpi_snd_cwnd) * u64::from(i.tcpi_snd_mss),
                    offload: None,
                    frames_written: None,
                })
            }
            Sender::Berth(s) => {
                let i = s.tcp_info()?;
                Ok(Snapshot {
                    congestion: i.congestion.to_string(),
                    retrans: i.total_retrans,
                    segs_out: i.segs_out,
                    dsack_dups: i.dsack_dups,
                    rto_events: i.rto_events,
                    recoveries: Some(i.recoveries),
                    rtt_us: i.rtt_us,
                    cwnd_bytes: i.snd_cwnd_bytes as u64,
                    offload: None,
                    frames_written: None,
                })
            }
        }
    }
}

impl Snapshot {
    fn with_device(mut self, host: Option<&BerthHost>) -> Snapshot {
        if let Some(d) = host.and_then(|h| h.dev.as_ref()) {
            self.offload = Some(d.offload());
            self.frames_written = Some(d.stats().frames_written);
        }
        self
    }
}

/// setsockopt(TCP_CONGESTION) on a kernel socket.
fn set_congestion(s: &TcpStream, name: &str) -> io::Result<()> {
    // SAFETY: `name` is valid for `name.len()` bytes; the fd is an open socket.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "--kernel-cc {name}: {e} (see /proc/sys/net/ipv4/tcp_available_congestion_control)"
            ),
        ));
    }
    Ok(())
}

/// getsockopt(TCP_CONGESTION) on a kernel socket.
fn congestion(s: &TcpStream) -> io::Result<String> {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes; the fd is an open socket.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let b = &buf[..(len as usize).min(buf.len())];
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Ok(String::from_utf8_lossy(&b[..end]).into_owned())
}

/// getsockopt(TCP_INFO) on a kernel socket.
fn kernel_tcp_info(s: &TcpStream) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes and outlives the call; the fd is
    // an open socket owned by `s`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Write as fast as the connection takes it until `stopped()`.
fn send(mut s: Sender, stopped: &dyn Fn() -> bool) -> io::Result<()> {
    let buf = vec![0x5au8; CHUNK];
    while !stopped() {
        match s.write(&buf) {
            Ok(0) => return Err(io::Error::other("the connection took no more data")),
            Ok(_) => {}
            Err(e) if would_block(&e) => {}
            Err(_) if stopped() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Accept one connection and count what it delivers until `stopped()`.
fn receive(l: TcpListener, count: &AtomicU64, stopped: &dyn Fn() -> bool) -> io::Result<()> {
    l.set_nonblocking(true)?;
    let mut s = loop {
        if stopped() {
            return Ok(());
        }
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if would_block(&e) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e),
        }
    };
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(TICK))?;
    let mut buf = vec![0u8; CHUNK];
    while !stopped() {
        match s.read(&mut buf) {
            Ok(0) => return Err(io::Error::other("the sender closed the connection")),
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e) if would_block(&e) => {}
            Err(_) if stopped() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Output

fn path_lines(a: &LossArgs, r: &[RateOut]) -> [String; 4] {
    let first = &r[0];
    let offload = first.berth.snap.offload.unwrap_or(false);
    [
        format!(
            "path: sender in NS S -> TUN (MTU {}, txqueuelen {TUN_QUEUE}) -> berth impair in this process (loss P in each direction, \
             delay {:?} each way so RTT >= {:?}, no jitter, no rate limit, seed {}) -> TUN -> kernel receiver {} in NS R, reading and counting",
            first.kernel.mtu,
            a.delay,
            a.delay * 2,
            a.seed,
            RECEIVER_PORT,
        ),
        format!(
            "  kernel: kernel TCP client {} in NS S; congestion control {} ({}; NS S's {CC_FILE}: {})",
            KERNEL_ADDR.trim_end_matches("/24"),
            first.kernel.snap.congestion,
            if a.kernel_cc.is_some() {
                "set with --kernel-cc"
            } else {
                "the socket's TCP_CONGESTION"
            },
            first.kernel.ns_default_cc,
        ),
        format!(
            "  berth: berth {} on its own TUN in NS S (default autotuned buffers, TUN offload {}), NS S's kernel forwarding to the impair TUN; \
             congestion control {} (tcp_info)",
            BERTH_ADDR.trim_end_matches("/24"),
            if offload { "on" } else { "off" },
            first.berth.snap.congestion
        ),
        format!(
            "goodput: bytes the receiver read in the {:?} after connect returned, over that time; fresh namespaces for every run",
            a.duration
        ),
    ]
}

fn print(a: &LossArgs, rates: &[RateOut]) {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let list: Vec<String> = rates.iter().map(|r| pct(r.loss)).collect();
    println!(
        "berth bench --loss: TCP goodput through a lossy path at {} loss, {:?} per run, kernel then berth ({cpus} CPUs)",
        list.join(", "),
        a.duration,
    );
    for l in path_lines(a, rates) {
        println!("{l}");
    }
    println!();
    println!(
        "{:>6} {:>14} {:>14} {:>12} {:>15} {:>15} {:>21}",
        "loss",
        "kernel TCP",
        "berth",
        "berth/kernel",
        "retrans kernel",
        "retrans berth",
        "data lost kern/berth"
    );
    for r in rates {
        let (k, b) = (r.kernel.mbit(), r.berth.mbit());
        println!(
            "{:>6} {:>14} {:>14} {:>12} {:>15} {:>15} {:>21}",
            pct(r.loss),
            format!("{k:.2} Mb/s"),
            format!("{b:.2} Mb/s"),
            format!("{:.2}x", super::ratio(b, k)),
            r.kernel.snap.retrans,
            r.berth.snap.retrans,
            format!("{} / {}", r.kernel.impair[0].lost, r.berth.impair[0].lost),
        );
    }
    println!();
    for r in rates {
        let detail = |o: &RunOut| {
            let t = &o.snap;
            let mut s = format!(
                "{} bytes; sender: {} segments, {} retransmitted, {} D-SACKed, {} RTOs",
                o.bytes, t.segs_out, t.retrans, t.dsack_dups, t.rto_events,
            );
            if let Some(rec) = t.recoveries {
                s.push_str(&format!(", {rec} recoveries"));
            }
            s.push_str(&format!(
                ", rtt {:.1} ms, cwnd {}; impair: {} data packets ({} lost), {} ACK packets ({} lost); \
                 TUN queue drops {}",
                t.rtt_us as f64 / 1e3,
                super::human_bytes(t.cwnd_bytes),
                o.impair[0].rx_packets,
                o.impair[0].lost,
                o.impair[1].rx_packets,
                o.impair[1].lost,
                o.tun_drops[0] + o.tun_drops[1],
            ));
            s
        };
        println!("{}: kernel {}", pct(r.loss), detail(&r.kernel));
        println!("{}: berth  {}", pct(r.loss), detail(&r.berth));
    }
    println!(
        "retrans: segments the sender retransmitted (tcpi_total_retrans / berth tcp_info total_retrans); \
         data lost: packets the impairment dropped sender -> receiver; impair and TUN counters run until the run stops, \
         a moment after the window"
    );
}

fn to_json(a: &LossArgs, rates: &[RateOut]) -> Value {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let first = &rates[0];
    json!({
        "config": {
            "mode": "loss",
            "loss_rates": a.loss_rates,
            "duration_s": a.duration.as_secs_f64(),
            "delay_ms_each_way": a.delay.as_secs_f64() * 1e3,
            "seed": a.seed,
            "cpus": cpus,
            "kernel_cc_set": a.kernel_cc,
        },
        "loss": {
            "path": path_lines(a, rates),
            "mtu": first.kernel.mtu,
            "berth_offload": first.berth.snap.offload,
            "kernel_congestion": first.kernel.snap.congestion,
            "kernel_namespace_default_congestion": first.kernel.ns_default_cc,
            "berth_congestion": first.berth.snap.congestion,
            "runs": rates.iter().map(|r| json!({
                "loss": r.loss,
                "kernel_tcp": r.kernel.json(r.kernel.mbit()),
                "berth": r.berth.json(r.kernel.mbit()),
            })).collect::<Vec<_>>(),
        },
    })
}
