//! `berth bench`: berth against the kernel's TCP over 127.0.0.1 and the kernel's
//! Unix domain stream sockets, in one run and in the same program shape (a server
//! thread and a client thread per measurement).
//!
//! Every measurement is written once, generic over the transport ([`Accept`] and
//! [`Stream`]), so the three columns run the same code; only the socket types differ.
//!
//! `--tun` (root) adds one bulk row through TUN devices in network namespaces
//! made for the run and removed after it (also on SIGINT/SIGTERM): a kernel
//! client sending to berth on a TUN, against kernel to kernel through two TUNs
//! joined by an in-process forwarder. See `tun_mode`.
//!
//! `--loss` (root) measures only TCP goodput through a lossy, delayed path
//! (`berth impair`'s forwarding loop between two namespaces), a kernel TCP
//! client against berth sending to a kernel receiver. See `loss`.

mod loss;

use berth::Stack;
use berth_core::{Config, Duration as CoreDuration};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::io::{self, IsTerminal, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Bytes sent over one connection in the bulk test, e.g. 1g or 64m.
    #[arg(long, value_parser = crate::args::bytes, default_value = "1g")]
    bytes: u64,
    /// 1-byte request/response round trips in the latency test.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    rtt_count: u64,
    /// Connections opened in the connection-rate test, and kept open in the
    /// memory test.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    conns: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also measure bulk TCP through TUN devices in network namespaces (needs
    /// root and /dev/net/tun): a kernel client sending to berth, against kernel
    /// to kernel through a TUN-to-TUN forwarder. Uses `--bytes`.
    #[arg(long)]
    tun: bool,
    /// Only the TUN measurements (implies --tun).
    #[arg(long)]
    tun_only: bool,
    /// With --tun or --loss: attach berth without TUN offload (one syscall per packet),
    /// to see what batching gains.
    #[arg(long)]
    no_offload: bool,
    #[command(flatten)]
    loss: loss::LossArgs,
}

impl BenchArgs {
    /// A combination clap cannot state: --no-offload changes how berth attaches
    /// to a TUN, so it needs one of the modes that use one.
    pub fn usage_error(&self) -> Option<&'static str> {
        (self.no_offload && !(self.tun || self.tun_only || self.loss.loss)).then_some(
            "--no-offload needs --tun, --tun-only or --loss: it turns off TUN offload, \
             and the other measurements use no TUN",
        )
    }
}

/// Write and read size of the bulk test (all three transports).
const CHUNK: usize = 256 * 1024;
/// Send and receive buffers of both berth stacks in the bulk test.
const BULK_BUFFER: usize = 4 << 20;
/// TIME-WAIT of the berth stacks in the connection-rate test.
const SHORT_TIME_WAIT_MS: u64 = 100;
/// Round trips run before the latency test's clock starts.
const RTT_WARMUP: u64 = 100;
/// Port of the berth listener (stack B, 192.0.2.2).
const BERTH_PORT: u16 = 5001;

/// What the berth stacks were set to, printed with the results.
const TUNING: [&str; 4] = [
    "bulk: berth TCP send/receive buffers 4 MiB on both stacks (default 256 KiB); link MTU 65535 like lo",
    "rtt: TCP_NODELAY on berth and kernel TCP sockets",
    "conns: berth TIME-WAIT 100 ms (default 60 s) and ephemeral ports 1024-65535",
    "memory: default berth config (256 KiB buffers); RSS from /proc/self/statm",
];

pub fn run(a: BenchArgs) -> io::Result<()> {
    if a.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--bytes must be at least 1",
        ));
    }
    if a.loss.loss {
        return loss::run(&a.loss, !a.no_offload, a.json);
    }
    let with_tun = a.tun || a.tun_only;
    if with_tun {
        // Fail before anything is measured.
        tun_mode::check("--tun")?;
    }
    let local = if a.tun_only {
        None
    } else {
        Some(run_local(&a)?)
    };
    let interrupted = local.as_ref().is_some_and(|l| l.interrupted);
    let tun = if with_tun && !interrupted {
        Some(tun_mode::run(a.bytes, !a.no_offload)?)
    } else {
        None
    };
    let report = Report { local, tun };
    if a.json {
        let v = report.json(&a);
        let text = serde_json::to_string_pretty(&v).map_err(io::Error::other)?;
        println!("{text}");
    } else {
        report.print(&a);
    }
    if interrupted {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    Ok(())
}

/// The in-process measurements: berth memory link, kernel TCP over 127.0.0.1,
/// Unix sockets. Ctrl-C (SIGINT/SIGTERM) starts no further measurement: the
/// one under way finishes (or, failing because of the signal, is dropped) and
/// the summary shows what was measured so far.
fn run_local(a: &BenchArgs) -> io::Result<Local> {
    crate::tun::install_stop_handler()?;
    let mut l = Local::default();
    // A phase's result; `None` once stopped (an error caused by the stop too).
    fn phase<T>(r: impl FnOnce() -> io::Result<T>) -> io::Result<Option<T>> {
        if crate::tun::stop_requested() {
            return Ok(None);
        }
        match r() {
            Ok(v) => Ok(Some(v)),
            Err(_) if crate::tun::stop_requested() => Ok(None),
            Err(e) => Err(e),
        }
    }
    // Memory first: a fresh heap makes the RSS difference mean what it says.
    l.memory = phase(|| memory_per_connection(a.conns as usize))?;

    let bar = progress(a.bytes * 3, "bulk throughput", true);
    l.bulk = phase(|| {
        run_all(
            &Bulk {
                bytes: a.bytes,
                bar: bar.clone(),
            },
            bulk_config(),
        )
    })?;
    bar.finish_and_clear();

    let bar = progress(a.rtt_count * 3, "1-byte round trips", false);
    l.rtt = phase(|| {
        run_all(
            &RoundTrips {
                count: a.rtt_count,
                bar: bar.clone(),
            },
            Config::default(),
        )
    })?;
    bar.finish_and_clear();

    let bar = progress(a.conns * 3, "new connections", false);
    l.conns = phase(|| {
        run_all(
            &Connections {
                count: a.conns,
                bar: bar.clone(),
            },
            conns_config(),
        )
    })?;
    bar.finish_and_clear();
    l.interrupted = crate::tun::stop_requested();
    Ok(l)
}

fn progress(len: u64, what: &str, bytes: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    let template = if bytes {
        "{msg:28} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}"
    } else {
        "{msg:28} {bar:30} {pos}/{len} {per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

fn bulk_config() -> Config {
    let mut c = Config::default();
    c.tcp.send_buffer = BULK_BUFFER;
    c.tcp.recv_buffer = BULK_BUFFER;
    c
}

fn conns_config() -> Config {
    let mut c = Config::default();
    c.tcp.time_wait = CoreDuration::from_millis(SHORT_TIME_WAIT_MS);
    c.ephemeral_ports = 1024..=65535;
    c
}

// ---------------------------------------------------------------------------
// Transports

/// A connected byte stream of any of the three transports.
trait Stream: Read + Write + Send + 'static {
    fn shutdown_write(&self) -> io::Result<()>;
    /// TCP_NODELAY where the transport has it.
    fn nodelay(&self) -> io::Result<()>;
}

impl Stream for berth::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn nodelay(&self) -> io::Result<()> {
        self.set_nodelay(true)
    }
}

impl Stream for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn nodelay(&self) -> io::Result<()> {
        self.set_nodelay(true)
    }
}

impl Stream for UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn nodelay(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket of any of the three transports.
trait Accept: Send + 'static {
    type Stream: Stream;
    fn accept_stream(&self) -> io::Result<Self::Stream>;
}

impl Accept for berth::TcpListener {
    type Stream = berth::TcpStream;
    fn accept_stream(&self) -> io::Result<berth::TcpStream> {
        self.accept().map(|(s, _)| s)
    }
}

impl Accept for std::net::TcpListener {
    type Stream = std::net::TcpStream;
    fn accept_stream(&self) -> io::Result<std::net::TcpStream> {
        self.accept().map(|(s, _)| s)
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    fn accept_stream(&self) -> io::Result<UnixStream> {
        self.accept().map(|(s, _)| s)
    }
}

/// One measurement, run the same way on each transport: `listener` serves in a
/// server thread, `connect` opens client connections in the calling thread (of
/// the listener's transport, or kernel TCP to a berth listener in `--tun` mode).
trait Measure {
    type Out;
    fn run<L: Accept, C: Stream>(
        &self,
        name: &str,
        listener: L,
        connect: impl Fn() -> io::Result<C>,
    ) -> io::Result<Self::Out>;
}

/// The three results of one measurement.
struct Trio<T> {
    berth: T,
    tcp: T,
    unix: T,
}

/// Run `m` on berth (two stacks with `config`, joined by a memory link), kernel
/// TCP over 127.0.0.1 and a kernel Unix socket in the temp directory.
fn run_all<M: Measure>(m: &M, config: Config) -> io::Result<Trio<M::Out>> {
    let (a, b) = Stack::pair_with(config.clone(), config, 65_535)?;
    let l = berth::TcpListener::bind(&b, ("0.0.0.0", BERTH_PORT))?;
    let berth = m.run("berth", l, || {
        berth::TcpStream::connect(&a, ("192.0.2.2", BERTH_PORT))
    })?;
    drop((a, b));

    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let tcp = m.run("kernel TCP", l, || std::net::TcpStream::connect(addr))?;

    let path = UnixPath::new()?;
    let l = UnixListener::bind(&path.0)?;
    let unix = m.run("unix socket", l, || UnixStream::connect(&path.0))?;
    drop(path);

    Ok(Trio { berth, tcp, unix })
}

/// A Unix socket path under the temp directory, removed on drop.
struct UnixPath(PathBuf);

impl UnixPath {
    fn new() -> io::Result<UnixPath> {
        let p = std::env::temp_dir().join(format!("berth-bench-{}.sock", std::process::id()));
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(UnixPath(p))
    }
}

impl Drop for UnixPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run `f` in a named server thread; its error (or panic) comes back on join.
fn server<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<thread::JoinHandle<io::Result<T>>> {
    thread::Builder::new().name("bench-server".into()).spawn(f)
}

fn join<T>(h: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    h.join()
        .map_err(|_| io::Error::other("the server thread panicked"))?
}

fn fail(name: &str, what: &str) -> io::Error {
    io::Error::other(format!("{name}: {what}"))
}

// ---------------------------------------------------------------------------
// (a) bulk throughput

struct Bulk {
    bytes: u64,
    bar: ProgressBar,
}

struct BulkOut {
    seconds: f64,
}

impl Measure for Bulk {
    type Out = BulkOut;
    fn run<L: Accept, C: Stream>(
        &self,
        name: &str,
        listener: L,
        connect: impl Fn() -> io::Result<C>,
    ) -> io::Result<BulkOut> {
        self.bar.set_message(format!("bulk: {name}"));
        // Server: read everything, then close (the client's EOF marks the end).
        let srv = server(move || {
            let mut s = listener.accept_stream()?;
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0u64;
            loop {
                match s.read(&mut buf)? {
                    0 => return Ok(got),
                    n => got += n as u64,
                }
            }
        })?;
        let mut c = connect()?;
        let data = vec![0x5au8; CHUNK];
        let start = Instant::now();
        let mut left = self.bytes;
        // Ctrl-C cuts the transfer short; the phase is then dropped.
        while left > 0 && !crate::tun::stop_requested() {
            let n = left.min(CHUNK as u64) as usize;
            c.write_all(&data[..n])?;
            left -= n as u64;
            self.bar.inc(n as u64);
        }
        c.shutdown_write()?;
        let mut rest = [0u8; 16];
        if c.read(&mut rest)? != 0 {
            return Err(fail(name, "the bulk sink sent data"));
        }
        let seconds = start.elapsed().as_secs_f64();
        let got = join(srv)?;
        if got != self.bytes {
            return Err(fail(
                name,
                &format!("sent {} bytes but the server read {got}", self.bytes),
            ));
        }
        Ok(BulkOut { seconds })
    }
}

// ---------------------------------------------------------------------------
// (b) 1-byte round trips

struct RoundTrips {
    count: u64,
    bar: ProgressBar,
}

struct RttOut {
    /// Each round trip, sorted, in nanoseconds.
    sorted_ns: Vec<u64>,
}

impl RttOut {
    fn mean_us(&self) -> f64 {
        let sum: u128 = self.sorted_ns.iter().map(|&n| n as u128).sum();
        sum as f64 / self.sorted_ns.len().max(1) as f64 / 1e3
    }
    /// Nearest-rank percentile, microseconds.
    fn pct_us(&self, p: f64) -> f64 {
        let n = self.sorted_ns.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.sorted_ns[rank.clamp(1, n) - 1] as f64 / 1e3
    }
}

impl Measure for RoundTrips {
    type Out = RttOut;
    fn run<L: Accept, C: Stream>(
        &self,
        name: &str,
        listener: L,
        connect: impl Fn() -> io::Result<C>,
    ) -> io::Result<RttOut> {
        self.bar.set_message(format!("rtt: {name}"));
        // Server: echo every byte until EOF.
        let srv = server(move || {
            let mut s = listener.accept_stream()?;
            s.nodelay()?;
            let mut b = [0u8; 1];
            loop {
                if s.read(&mut b)? == 0 {
                    return Ok(());
                }
                s.write_all(&b)?;
            }
        })?;
        let mut c = connect()?;
        c.nodelay()?;
        let mut b = [0u8; 1];
        let mut one = |c: &mut C| -> io::Result<()> {
            c.write_all(&[7])?;
            c.read_exact(&mut b)
        };
        for _ in 0..RTT_WARMUP {
            one(&mut c)?;
        }
        let mut sorted_ns = Vec::with_capacity(self.count as usize);
        for i in 0..self.count {
            let t = Instant::now();
            one(&mut c)?;
            sorted_ns.push(t.elapsed().as_nanos() as u64);
            if i % 256 == 255 {
                self.bar.inc(256);
            }
        }
        self.bar.inc(self.count % 256);
        c.shutdown_write()?;
        drop(c);
        join(srv)?;
        sorted_ns.sort_unstable();
        Ok(RttOut { sorted_ns })
    }
}

// ---------------------------------------------------------------------------
// (c) new connections per second

struct Connections {
    count: u64,
    bar: ProgressBar,
}

struct ConnsOut {
    seconds: f64,
}

impl Measure for Connections {
    type Out = ConnsOut;
    fn run<L: Accept, C: Stream>(
        &self,
        name: &str,
        listener: L,
        connect: impl Fn() -> io::Result<C>,
    ) -> io::Result<ConnsOut> {
        self.bar.set_message(format!("conns: {name}"));
        let count = self.count;
        // Server: accept, read one byte, answer one byte, wait for the client's
        // close, close.
        let srv = server(move || {
            let mut b = [0u8; 1];
            for _ in 0..count {
                let mut s = listener.accept_stream()?;
                s.read_exact(&mut b)?;
                s.write_all(&b)?;
                let _ = s.read(&mut b)?;
            }
            Ok(())
        })?;
        let start = Instant::now();
        let mut b = [0u8; 1];
        for i in 0..count {
            let mut c = connect()?;
            c.write_all(&[1])?;
            c.read_exact(&mut b)?;
            drop(c); // close: the client takes TIME-WAIT
            if i % 64 == 63 {
                self.bar.inc(64);
            }
        }
        join(srv)?;
        let seconds = start.elapsed().as_secs_f64();
        self.bar.inc(count % 64);
        Ok(ConnsOut { seconds })
    }
}

// ---------------------------------------------------------------------------
// (d) memory per idle established berth connection

struct MemoryOut {
    conns: usize,
    rss_before: u64,
    rss_open: u64,
    rss_used: u64,
}

impl MemoryOut {
    /// Bytes per connection (both ends, two sockets) after opening.
    fn per_conn_open(&self) -> f64 {
        self.rss_open.saturating_sub(self.rss_before) as f64 / self.conns.max(1) as f64
    }
    /// … and after one byte each way on every connection.
    fn per_conn_used(&self) -> f64 {
        self.rss_used.saturating_sub(self.rss_before) as f64 / self.conns.max(1) as f64
    }
}

/// Resident set size of this process: /proc/self/statm's second field (pages)
/// times the page size (from /proc/self/smaps' KernelPageSize, 4 KiB otherwise).
fn rss_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("cannot parse /proc/self/statm"))?;
    Ok(pages * page_size())
}

fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

fn memory_per_connection(n: usize) -> io::Result<MemoryOut> {
    let bar = progress(n as u64 * 2, "memory: open, then 1 byte", false);
    let (a, b) = Stack::pair()?;
    let l = berth::TcpListener::bind(&b, ("0.0.0.0", BERTH_PORT))?;
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    let rss_before = rss_bytes()?;
    for _ in 0..n {
        clients.push(berth::TcpStream::connect(&a, ("192.0.2.2", BERTH_PORT))?);
        servers.push(l.accept()?.0);
        bar.inc(1);
    }
    let rss_open = rss_bytes()?;
    let mut byte = [0u8; 1];
    for (c, s) in clients.iter_mut().zip(servers.iter_mut()) {
        c.write_all(&[1])?;
        s.read_exact(&mut byte)?;
        s.write_all(&byte)?;
        c.read_exact(&mut byte)?;
        bar.inc(1);
    }
    let rss_used = rss_bytes()?;
    bar.finish_and_clear();
    drop((clients, servers, l));
    Ok(MemoryOut {
        conns: n,
        rss_before,
        rss_open,
        rss_used,
    })
}

// ---------------------------------------------------------------------------
// Output

/// The in-process results; a measurement Ctrl-C kept from running is `None`.
#[derive(Default)]
struct Local {
    bulk: Option<Trio<BulkOut>>,
    rtt: Option<Trio<RttOut>>,
    conns: Option<Trio<ConnsOut>>,
    memory: Option<MemoryOut>,
    /// Stopped by SIGINT/SIGTERM before every measurement ran.
    interrupted: bool,
}

struct Report {
    /// `None` with `--tun-only`.
    local: Option<Local>,
    /// `Some` with `--tun` or `--tun-only`.
    tun: Option<tun_mode::TunOut>,
}

fn gbit(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 * 8.0 / seconds.max(1e-9) / 1e9
}

fn per_sec(count: u64, seconds: f64) -> f64 {
    count as f64 / seconds.max(1e-9)
}

/// `x / base`, 0 when the base is 0.
fn ratio(x: f64, base: f64) -> f64 {
    if base > 0.0 {
        x / base
    } else {
        0.0
    }
}

const NAMES: [&str; 3] = ["berth", "kernel TCP", "unix"];

/// One table row: three cells (the unix one may be absent) and two ratios to
/// the kernel TCP cell.
fn row(test: &str, v: [Option<f64>; 3], unit: &str, prec: usize) {
    let cell = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$} {unit}"));
    let rat = |x: Option<f64>| {
        x.zip(v[1])
            .map_or_else(|| "-".to_string(), |(x, k)| format!("{:.2}x", ratio(x, k)))
    };
    println!(
        "{:<30} {:>14} {:>14} {:>14} {:>12} {:>12}",
        test,
        cell(v[0]),
        cell(v[1]),
        cell(v[2]),
        rat(v[0]),
        rat(v[2]),
    );
}

impl Local {
    fn bulk_gbit(b: &Trio<BulkOut>, bytes: u64) -> [f64; 3] {
        [b.berth.seconds, b.tcp.seconds, b.unix.seconds].map(|s| gbit(bytes, s))
    }

    fn conns_per_sec(c: &Trio<ConnsOut>, count: u64) -> [f64; 3] {
        [c.berth.seconds, c.tcp.seconds, c.unix.seconds].map(|s| per_sec(count, s))
    }

    fn rtts(r: &Trio<RttOut>) -> [&RttOut; 3] {
        [&r.berth, &r.tcp, &r.unix]
    }

    fn print_rows(&self, a: &BenchArgs) {
        let some = |v: [f64; 3]| v.map(Some);
        if let Some(b) = &self.bulk {
            row(
                "bulk throughput (1 conn)",
                some(Local::bulk_gbit(b, a.bytes)),
                "Gb/s",
                2,
            );
        }
        if let Some(r) = &self.rtt {
            let r = Local::rtts(r);
            row(
                "1-byte round trip, mean",
                some(r.map(|x| x.mean_us())),
                "us",
                1,
            );
            row(
                "1-byte round trip, p50",
                some(r.map(|x| x.pct_us(50.0))),
                "us",
                1,
            );
            row(
                "1-byte round trip, p99",
                some(r.map(|x| x.pct_us(99.0))),
                "us",
                1,
            );
        }
        if let Some(c) = &self.conns {
            row(
                "new connections",
                some(Local::conns_per_sec(c, a.conns)),
                "/s",
                0,
            );
        }
        if let Some(m) = &self.memory {
            println!(
                "{:<30} {:>14}",
                "memory / idle conn (berth)",
                format!("{:.1} KiB", m.per_conn_used() / 1024.0)
            );
        }
    }

    fn print_notes(&self) {
        if let Some(m) = &self.memory {
            println!(
                "memory: {} berth connections (both ends, {} sockets) in this process; RSS {} before, \
                 {} after opening ({:.1} KiB/conn), {} after 1 byte each way ({:.1} KiB/conn, \
                 {:.1} KiB/socket)",
                m.conns,
                m.conns * 2,
                human_bytes(m.rss_before),
                human_bytes(m.rss_open),
                m.per_conn_open() / 1024.0,
                human_bytes(m.rss_used),
                m.per_conn_used() / 1024.0,
                m.per_conn_used() / 2048.0,
            );
        }
        if self.interrupted {
            println!("interrupted: the measurements above are the ones that ran");
        }
    }

    fn json(&self, a: &BenchArgs, out: &mut serde_json::Map<String, Value>) {
        if let Some(b) = &self.bulk {
            let g = Local::bulk_gbit(b, a.bytes);
            let bulk = |i: usize, s: f64| bulk_json(a.bytes, s, g[i], g[1]);
            out.insert(
                "bulk".into(),
                json!({
                    "berth": bulk(0, b.berth.seconds),
                    "kernel_tcp": bulk(1, b.tcp.seconds),
                    "unix": bulk(2, b.unix.seconds),
                }),
            );
        }
        if let Some(r) = &self.rtt {
            let r = Local::rtts(r);
            let rtt = |i: usize| {
                json!({
                    "count": a.rtt_count,
                    "mean_us": r[i].mean_us(),
                    "p50_us": r[i].pct_us(50.0),
                    "p99_us": r[i].pct_us(99.0),
                    "mean_ratio_to_kernel_tcp": ratio(r[i].mean_us(), r[1].mean_us()),
                })
            };
            out.insert(
                "rtt".into(),
                json!({
                    "berth": rtt(0),
                    "kernel_tcp": rtt(1),
                    "unix": rtt(2),
                }),
            );
        }
        if let Some(cs) = &self.conns {
            let c = Local::conns_per_sec(cs, a.conns);
            let conn = |i: usize, s: f64| {
                json!({
                    "count": a.conns,
                    "seconds": s,
                    "per_sec": c[i],
                    "ratio_to_kernel_tcp": ratio(c[i], c[1]),
                })
            };
            out.insert(
                "conns".into(),
                json!({
                    "berth": conn(0, cs.berth.seconds),
                    "kernel_tcp": conn(1, cs.tcp.seconds),
                    "unix": conn(2, cs.unix.seconds),
                }),
            );
        }
        if let Some(m) = &self.memory {
            out.insert(
                "memory".into(),
                json!({
                    "berth": {
                        "connections": m.conns,
                        "rss_before": m.rss_before,
                        "rss_open": m.rss_open,
                        "rss_used": m.rss_used,
                        "bytes_per_conn_open": m.per_conn_open(),
                        "bytes_per_conn": m.per_conn_used(),
                        "bytes_per_socket": m.per_conn_used() / 2.0,
                    }
                }),
            );
        }
        if self.interrupted {
            out.insert("interrupted".into(), json!(true));
        }
    }
}

fn bulk_json(bytes: u64, seconds: f64, gbit_per_sec: f64, kernel_gbit: f64) -> Value {
    json!({
        "bytes": bytes,
        "seconds": seconds,
        "gbit_per_sec": gbit_per_sec,
        "ratio_to_kernel_tcp": ratio(gbit_per_sec, kernel_gbit),
    })
}

impl Report {
    fn print(&self, a: &BenchArgs) {
        let cpus = thread::available_parallelism().map_or(0, |n| n.get());
        if self.local.is_some() {
            println!(
                "berth bench: {} bulk bytes, {} round trips, {} connections ({cpus} CPUs)",
                human_bytes(a.bytes),
                a.rtt_count,
                a.conns,
            );
            println!("berth tuning:");
            for t in TUNING {
                println!("  {t}");
            }
        } else {
            println!(
                "berth bench --tun-only: {} bulk bytes ({cpus} CPUs)",
                human_bytes(a.bytes)
            );
        }
        if let Some(t) = &self.tun {
            t.print_setup();
        }
        println!();
        println!(
            "{:<30} {:>14} {:>14} {:>14} {:>12} {:>12}",
            "test", NAMES[0], NAMES[1], NAMES[2], "berth/TCP", "unix/TCP"
        );
        if let Some(l) = &self.local {
            l.print_rows(a);
        }
        if let Some(t) = &self.tun {
            let g = t.gbit(a.bytes);
            row(
                "bulk via TUN, netns (1 conn)",
                [Some(g[0]), Some(g[1]), None],
                "Gb/s",
                2,
            );
        }
        println!();
        if let Some(l) = &self.local {
            l.print_notes();
        }
        println!(
            "ratios: above 1 is better for throughput and connections, below 1 for round trips"
        );
    }

    fn json(&self, a: &BenchArgs) -> Value {
        let mut out = serde_json::Map::new();
        out.insert(
            "config".into(),
            json!({
                "bytes": a.bytes,
                "rtt_count": a.rtt_count,
                "conns": a.conns,
                "cpus": thread::available_parallelism().map_or(0, |n| n.get()),
                "berth_tuning": TUNING,
                "tun": self.tun.is_some(),
                "tun_only": self.local.is_none(),
            }),
        );
        if let Some(l) = &self.local {
            l.json(a, &mut out);
        }
        if let Some(t) = &self.tun {
            out.insert("tun".into(), t.json(a.bytes));
        }
        Value::Object(out)
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

// ---------------------------------------------------------------------------
// --tun: bulk TCP through TUN devices in network namespaces

mod tun_mode {
    use super::{gbit, progress, Bulk, Measure, BERTH_PORT};
    use crate::tun;
    use berth::device::{DeviceOptions, Kind};
    use berth::Stack;
    use berth_core::wire::Ipv4Cidr;
    use serde_json::{json, Value};
    use std::fs::File;
    use std::io;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::Duration;

    /// The kernel's side of every TUN link, and the far side (berth in the
    /// first measurement, the kernel in NS2 in the second).
    const NEAR: &str = "192.0.2.1/24";
    const FAR: &str = "192.0.2.2/24";
    const FAR_ADDR: &str = "192.0.2.2";
    /// Device names, inside our own namespaces.
    const DEV_BERTH: &str = "bbench0";
    const DEV_A: &str = "bbencha";
    const DEV_B: &str = "bbenchb";
    /// Stalls longer than this fail the measurement instead of hanging it.
    const IO_TIMEOUT: Duration = Duration::from_secs(60);

    pub struct TunOut {
        mtu: usize,
        /// berth's TUN batches through IFF_VNET_HDR offload.
        offload: bool,
        /// Kernel client in NS → TUN → berth.
        berth_seconds: f64,
        /// Kernel client in NS1 → TUN → forwarder → TUN → kernel server in NS2.
        kernel_seconds: f64,
        forwarded_packets: u64,
    }

    impl TunOut {
        /// [berth, kernel TCP] in Gb/s.
        pub fn gbit(&self, bytes: u64) -> [f64; 2] {
            [
                gbit(bytes, self.berth_seconds),
                gbit(bytes, self.kernel_seconds),
            ]
        }

        pub fn print_setup(&self) {
            println!("TUN rows (network namespaces, TUN MTU {}):", self.mtu);
            println!(
                "  berth: kernel TCP client in NS ({NEAR}) -> TUN -> berth ({FAR}, 4 MiB buffers, TUN offload {}) reading and discarding",
                if self.offload { "on" } else { "off" }
            );
            println!(
                "  kernel TCP: kernel client in NS1 ({NEAR}) -> TUN -> in-process forwarder ({} packets) -> TUN -> kernel server in NS2 ({FAR})",
                self.forwarded_packets
            );
        }

        pub fn json(&self, bytes: u64) -> Value {
            let g = self.gbit(bytes);
            json!({
                "mtu": self.mtu,
                "berth_offload": self.offload,
                "berth_path": format!("kernel TCP client in NS ({NEAR}) -> TUN -> berth ({FAR})"),
                "kernel_tcp_path": format!("kernel TCP client in NS1 ({NEAR}) -> TUN -> forwarder -> TUN -> kernel TCP server in NS2 ({FAR})"),
                "forwarded_packets": self.forwarded_packets,
                "bulk": {
                    "berth": super::bulk_json(bytes, self.berth_seconds, g[0], g[1]),
                    "kernel_tcp": super::bulk_json(bytes, self.kernel_seconds, g[1], g[1]),
                },
            })
        }
    }

    /// Root, /dev/net/tun and `ip`, or an error that says what is missing
    /// (naming `flag`, the option that needs them).
    pub fn check(flag: &str) -> io::Result<()> {
        let mut why = Vec::new();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            why.push("root (network namespaces and TUN devices; run with sudo)");
        }
        if !Path::new("/dev/net/tun").exists() {
            why.push("/dev/net/tun (modprobe tun, or --device /dev/net/tun in a container)");
        }
        let ip = Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !ip.is_ok_and(|s| s.success()) {
            why.push("the ip command (iproute2)");
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{flag} needs {}", why.join(", and ")),
            ))
        }
    }

    pub fn run(bytes: u64, offload: bool) -> io::Result<TunOut> {
        watch_for_stop()?;
        let bar = progress(bytes * 2, "bulk via TUN", true);
        let bulk = Bulk {
            bytes,
            bar: bar.clone(),
        };
        let (berth, mtu, offload) = kernel_to_berth(&bulk, offload)?;
        let (kernel, forwarded_packets) = kernel_to_kernel(&bulk)?;
        bar.finish_and_clear();
        Ok(TunOut {
            mtu,
            offload,
            berth_seconds: berth,
            kernel_seconds: kernel,
            forwarded_packets,
        })
    }

    fn cidr(s: &str) -> io::Result<Ipv4Cidr> {
        s.parse()
            .map_err(|_| io::Error::other(format!("internal: bad prefix {s}")))
    }

    fn far() -> io::Result<SocketAddr> {
        format!("{FAR_ADDR}:{BERTH_PORT}")
            .parse()
            .map_err(io::Error::other)
    }

    /// A kernel TCP connection to FAR, opened inside `ns`.
    fn connect_in(ns: &Netns) -> io::Result<TcpStream> {
        let addr = far()?;
        let s = ns.enter(move || TcpStream::connect_timeout(&addr, Duration::from_secs(10)))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(s)
    }

    /// (1) Kernel client in NS → TUN → berth on the same TUN.
    /// Returns the seconds, the MTU and whether offload was on.
    fn kernel_to_berth(bulk: &Bulk, offload: bool) -> io::Result<(f64, usize, bool)> {
        let ns = Netns::new("k2b")?;
        let stack = Stack::new(super::bulk_config());
        let dev = {
            let mut o = DeviceOptions::new(DEV_BERTH, Kind::Tun, cidr(FAR)?);
            o.create = true;
            o.offload = offload;
            let stack = stack.clone();
            ns.enter(move || berth::device::attach(&stack, &o))?
        };
        ns.ip(&["addr", "add", NEAR, "dev", DEV_BERTH])?;
        ns.ip(&["link", "set", DEV_BERTH, "up"])?;
        let (mtu, offload) = (dev.mtu(), dev.offload());
        let l = berth::TcpListener::bind(&stack, ("0.0.0.0", BERTH_PORT))?;
        let out = bulk.run("kernel -> TUN -> berth", l, || connect_in(&ns))?;
        drop(dev);
        stack.shutdown();
        drop(ns);
        Ok((out.seconds, mtu, offload))
    }

    /// (2) Kernel client in NS1 → TUN → forwarder → TUN → kernel server in NS2.
    fn kernel_to_kernel(bulk: &Bulk) -> io::Result<(f64, u64)> {
        let ns1 = Netns::new("k2k1")?;
        let ns2 = Netns::new("k2k2")?;
        let a = ns1.enter(|| tun::open(DEV_A, None, true))?;
        let b = ns2.enter(|| tun::open(DEV_B, None, true))?;
        ns1.ip(&["addr", "add", NEAR, "dev", DEV_A])?;
        ns1.ip(&["link", "set", DEV_A, "up"])?;
        ns2.ip(&["addr", "add", FAR, "dev", DEV_B])?;
        ns2.ip(&["link", "set", DEV_B, "up"])?;
        let stop = Arc::new(AtomicBool::new(false));
        let fwd = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("bench-forwarder".into())
                .spawn(move || forward(a.fd, b.fd, &stop))?
        };
        let addr = far()?;
        let measured = ns2
            .enter(move || TcpListener::bind(addr))
            .and_then(|l| bulk.run("kernel -> TUN -> TUN -> kernel", l, || connect_in(&ns1)));
        stop.store(true, Ordering::SeqCst);
        let forwarded = fwd
            .join()
            .map_err(|_| io::Error::other("the forwarder thread panicked"))?;
        let out = measured?;
        drop((ns1, ns2));
        Ok((out.seconds, forwarded?))
    }

    /// Copy every packet read from one TUN to the other until `stop`; returns
    /// the packets forwarded. `berth impair` with no impairments, minus the
    /// scheduling heap.
    fn forward(a: OwnedFd, b: OwnedFd, stop: &AtomicBool) -> io::Result<u64> {
        tun::set_nonblocking(&a)?;
        tun::set_nonblocking(&b)?;
        let fds = [&a, &b];
        let raw = [a.as_raw_fd(), b.as_raw_fd()];
        let mut buf = vec![0u8; 65_536];
        let mut packets = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let ready = match tun::poll_readable(&raw, Duration::from_millis(50)) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for (d, r) in ready.iter().enumerate() {
                match r {
                    tun::Ready::No => {}
                    tun::Ready::Hangup => {
                        return Err(io::Error::other("forwarder: a TUN device went away"))
                    }
                    tun::Ready::Readable => {
                        for _ in 0..64 {
                            match tun::read(fds[d], &mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    // A refused write is a dropped packet; TCP retransmits.
                                    if tun::write(fds[1 - d], &buf[..n]).is_ok() {
                                        packets += 1;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                                    ) =>
                                {
                                    break
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
            }
        }
        Ok(packets)
    }

    // -----------------------------------------------------------------------
    // Namespaces

    /// Names of the namespaces that exist now, for the ctrl-c handler.
    static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// SIGINT/SIGTERM: delete our namespaces, then exit 130 (a watcher thread
    /// does it; the signal handler only sets a flag).
    pub fn watch_for_stop() -> io::Result<()> {
        tun::install_stop_handler()?;
        thread::Builder::new()
            .name("bench-stop".into())
            .spawn(|| loop {
                if tun::stop_requested() {
                    let names = LIVE.lock().map(|v| v.clone()).unwrap_or_default();
                    for n in names {
                        del_netns(&n);
                    }
                    eprintln!("berth: interrupted; namespaces removed");
                    std::process::exit(130);
                }
                thread::sleep(Duration::from_millis(50));
            })?;
        Ok(())
    }

    fn del_netns(name: &str) {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A network namespace of ours, deleted (with its devices) on drop.
    pub struct Netns {
        pub name: String,
        file: File,
    }

    impl Netns {
        pub fn new(tag: &str) -> io::Result<Netns> {
            let name = format!("berth-bench-{tag}-{}", std::process::id());
            ip(&["netns", "add", &name])?;
            // Registered before anything else can fail, so Drop and ctrl-c see it.
            if let Ok(mut v) = LIVE.lock() {
                v.push(name.clone());
            }
            let file = match File::open(format!("/run/netns/{name}")) {
                Ok(f) => f,
                Err(e) => {
                    del_netns(&name);
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot open /run/netns/{name}: {e}"),
                    ));
                }
            };
            let ns = Netns { name, file };
            ns.ip(&["link", "set", "lo", "up"])?;
            Ok(ns)
        }

        /// `ip -n NS ARGS…`.
        pub fn ip(&self, args: &[&str]) -> io::Result<()> {
            let mut a = vec!["-n", self.name.as_str()];
            a.extend_from_slice(args);
            ip(&a)
        }

        /// Run `f` in a thread that has entered this namespace; sockets and
        /// devices it opens stay in the namespace wherever they are used.
        pub fn enter<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
            let fd = self.file.as_raw_fd();
            let name = &self.name;
            thread::scope(|s| {
                s.spawn(move || {
                    // SAFETY: setns on a namespace fd we hold open; it changes only
                    // this scoped thread, which ends right after `f`.
                    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                        let e = io::Error::last_os_error();
                        return Err(io::Error::new(
                            e.kind(),
                            format!("cannot enter network namespace {name}: {e}"),
                        ));
                    }
                    f()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a namespace thread panicked")))
            })
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            del_netns(&self.name);
            if let Ok(mut v) = LIVE.lock() {
                v.retain(|n| n != &self.name);
            }
        }
    }

    fn ip(args: &[&str]) -> io::Result<()> {
        let o = Command::new("ip")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run ip (iproute2): {e}")))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let r = RttOut {
            sorted_ns: (1..=100).map(|i| i * 1000).collect(),
        };
        assert_eq!(r.pct_us(50.0), 50.0);
        assert_eq!(r.pct_us(99.0), 99.0);
        assert_eq!(r.mean_us(), 50.5);
        assert_eq!(RttOut { sorted_ns: vec![] }.pct_us(50.0), 0.0);
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
