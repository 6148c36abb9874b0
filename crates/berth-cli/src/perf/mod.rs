//! `berth perf`: an iperf3 client and server on a berth host, speaking iperf3's
//! protocol, so either end can be the real iperf3: `berth perf -s` on a TUN or
//! TAP device serves `iperf3 -c`, and `berth perf -c HOST` measures against
//! `iperf3 -s`. With the flags iperf3 has (-s -c -p -t -n -i -R -P -u -b -l -w
//! -M -N -C -J -1) and its output: interval lines, the sender/receiver
//! summary, or `-J`'s JSON document. `--sim` runs both ends in this process,
//! on two berth hosts joined by an in-memory link.

mod client;
mod proto;
pub(crate) mod report;
mod server;
mod stream;

use crate::ping::HostArgs;
use crate::{args, tun};
use berth::{Stack, TcpStream};
use clap::Args;
use proto::Params;
use std::io::{self, Read};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Args)]
#[command(
    mut_group("device", |g| g.required(false)),
    mut_arg("addr", |a| a.required(false))
)]
pub struct PerfArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Both ends in this process: a client on 192.0.2.1 and a one-off server on
    /// 192.0.2.2, two berth hosts joined by an in-memory link (MTU 1500);
    /// give -c 192.0.2.2 and no device.
    #[arg(long, conflicts_with_all = ["tun", "tap", "server"])]
    sim: bool,
    /// Run as a server.
    #[arg(short = 's', long = "server", conflicts_with = "client")]
    server: bool,
    /// Run as a client, connecting to HOST (an address: berth resolves no names).
    #[arg(short = 'c', long = "client", value_name = "HOST")]
    client: Option<String>,
    /// Server port to listen on / connect to.
    #[arg(short = 'p', long = "port", default_value_t = 5201, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Time in seconds to transmit for [default: 10].
    #[arg(short = 't', long = "time", value_name = "SECS", conflicts_with = "bytes", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    time: Option<u32>,
    /// Bytes to transmit instead of -t, e.g. 10M (K/M/G: powers of 1024).
    #[arg(short = 'n', long = "bytes", value_name = "N", value_parser = args::bytes)]
    bytes: Option<u64>,
    /// Seconds between periodic reports (0: none).
    #[arg(
        short = 'i',
        long = "interval",
        value_name = "SECS",
        default_value_t = 1.0
    )]
    interval: f64,
    /// Reverse the direction: the server sends, the client receives.
    #[arg(short = 'R', long = "reverse")]
    reverse: bool,
    /// Parallel streams.
    #[arg(short = 'P', long = "parallel", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=128))]
    parallel: u32,
    /// UDP instead of TCP.
    #[arg(short = 'u', long = "udp")]
    udp: bool,
    /// Target bitrate per stream in bits/s, e.g. 10M (K/M/G: powers of 1000;
    /// 0: unlimited) [default: 1M for UDP, unlimited for TCP].
    #[arg(short = 'b', long = "bitrate", value_name = "RATE", value_parser = iperf_rate)]
    bitrate: Option<u64>,
    /// Bytes per write / per datagram [default: 128K for TCP; the path MSS for UDP].
    #[arg(short = 'l', long = "length", value_name = "N", value_parser = args::bytes)]
    length: Option<u64>,
    /// Socket buffer sizes (SO_SNDBUF and SO_RCVBUF), e.g. 256K.
    #[arg(short = 'w', long = "window", value_name = "N", value_parser = args::bytes)]
    window: Option<u64>,
    /// TCP maximum segment size (TCP_MAXSEG).
    #[arg(short = 'M', long = "set-mss", value_name = "MSS", value_parser = clap::value_parser!(u16).range(88..=65_495))]
    mss: Option<u16>,
    /// TCP_NODELAY: turn Nagle's algorithm off.
    #[arg(short = 'N', long = "no-delay")]
    nodelay: bool,
    /// TCP congestion control algorithm (TCP_CONGESTION): cubic or reno.
    #[arg(short = 'C', long = "congestion", value_name = "ALGO", value_enum)]
    congestion: Option<crate::sim::CcArg>,
    /// Output JSON, in iperf3's structure (start / intervals / end).
    #[arg(short = 'J', long = "json")]
    json: bool,
    /// Server: handle one client, then exit.
    #[arg(short = '1', long = "one-off")]
    one_off: bool,
}

/// iperf3's rates: a number with an optional K, M, G or T (powers of 1000).
fn iperf_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        Some('T') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a bitrate; write e.g. 100M, 1G or 500K"))?;
    let bps = v * mult;
    if !(0.0..=1e15).contains(&bps) {
        return Err(format!("bitrate '{s}' is out of range"));
    }
    Ok(bps as u64)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

impl PerfArgs {
    /// The parameters a client sends.
    fn params(&self) -> io::Result<Params> {
        if self.udp && (self.mss.is_some() || self.nodelay || self.congestion.is_some()) {
            return Err(invalid("-M, -N and -C are TCP options; drop them with -u"));
        }
        let max = if self.udp {
            proto::MAX_UDP_BLOCK
        } else {
            proto::MAX_TCP_BLOCK
        };
        if let Some(l) = self.length {
            if l == 0 || l > max || (self.udp && l < 16) {
                return Err(invalid(format!(
                    "-l {l} is out of range: {}..={max} bytes",
                    if self.udp { 16 } else { 1 }
                )));
            }
        }
        if self.window.is_some_and(|w| w == 0 || w > 1 << 30) {
            return Err(invalid("-w must be between 1 byte and 1G"));
        }
        if !(self.interval == 0.0 || (0.1..=60.0).contains(&self.interval)) {
            return Err(invalid("-i takes 0 (no reports) or 0.1..60 seconds"));
        }
        Ok(Params {
            udp: self.udp,
            time: if self.bytes.is_some() {
                0
            } else {
                self.time.unwrap_or(10) as u64
            },
            bytes: self.bytes.unwrap_or(0),
            mss: self.mss.map_or(0, u64::from),
            nodelay: self.nodelay,
            parallel: self.parallel as u64,
            reverse: self.reverse,
            window: self.window.unwrap_or(0),
            len: self.length.unwrap_or(0),
            bandwidth: self.bitrate.unwrap_or(0),
            congestion: self.congestion.map(|c| c.algorithm().name().to_string()),
            ..Params::default()
        })
    }

    fn host_ip(&self) -> io::Result<Option<IpAddr>> {
        self.client
            .as_deref()
            .map(|h| {
                let t = h
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(h);
                t.parse().map_err(|_| {
                    invalid(format!(
                        "'{h}' is not an IP address, e.g. 192.0.2.1 or 2001:db8::1 (berth perf resolves no names)"
                    ))
                })
            })
            .transpose()
    }
}

/// `berth perf`: errors as iperf3 words them ("iperf3: error - …").
pub fn main(a: PerfArgs) -> std::process::ExitCode {
    match run(a) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            eprintln!("berth perf: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("berth perf: error - {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(a: PerfArgs) -> io::Result<()> {
    let host = a.host_ip()?;
    if a.server == host.is_some() {
        return Err(invalid(
            "give -s (server) or -c HOST (client): berth perf -s --tun NAME --addr CIDR, \
             or berth perf -c 192.0.2.1 --tun NAME --addr 192.0.2.2/24",
        ));
    }
    if a.one_off && !a.server {
        return Err(invalid("-1 is a server option; give it with -s"));
    }
    let params = a.params()?;
    if a.server && (a.reverse || a.udp || a.time.is_some() || a.bytes.is_some()) {
        return Err(invalid(
            "-R, -u, -t and -n are client options: the client tells the server",
        ));
    }
    tun::install_stop_handler()?;
    let copts = |host: IpAddr| client::Opts {
        host,
        port: a.port,
        params: params.clone(),
        interval: a.interval,
        json: a.json,
    };
    if a.sim {
        let Some(host) = host else {
            return Err(invalid("--sim runs a client: give -c 192.0.2.2"));
        };
        return sim(copts(host), a.port);
    }
    if a.host.tun.is_none() && a.host.tap.is_none() {
        return Err(invalid(
            "name a device: --tun NAME or --tap NAME with --addr CIDR, or run both ends with --sim",
        ));
    }
    if a.host.addr.is_empty() {
        return Err(invalid(
            "give the berth host's address on the device: --addr 192.0.2.2/24",
        ));
    }
    if let Some(h) = host {
        a.host.check_reach(h)?;
    }
    let (stack, _dev) = a.host.start()?;
    match host {
        Some(h) => client::run(&stack, &copts(h)),
        None => server::run(
            &stack,
            &server::Opts {
                port: a.port,
                interval: a.interval,
                json: a.json,
                one_off: a.one_off,
                quiet: false,
            },
        ),
    }
}

/// `--sim`: a one-off server on 192.0.2.2 in a thread, the client here on
/// 192.0.2.1.
fn sim(o: client::Opts, port: u16) -> io::Result<()> {
    let mtu = 1500;
    let (a, b) = Stack::pair_with(berth::Config::default(), berth::Config::default(), mtu)?;
    let b_addrs: [IpAddr; 2] = [
        [192, 0, 2, 2].into(),
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 2].into(),
    ];
    if !b_addrs.contains(&o.host) {
        return Err(invalid(format!(
            "with --sim the server is 192.0.2.2 (or 2001:db8::2), not {}",
            o.host
        )));
    }
    let listening = server::listen(&b, port)?;
    let sopts = server::Opts {
        port,
        interval: o.interval,
        json: true,
        one_off: true,
        quiet: true,
    };
    let srv = std::thread::Builder::new()
        .name("perf-sim-server".into())
        .spawn(move || server::serve(&b, listening, &sopts))?;
    let r = client::run(&a, &o);
    // The server ends with the test (or by itself when the client never came).
    let s = srv
        .join()
        .map_err(|_| io::Error::other("the simulated server panicked"))?;
    r.and(s)
}

/// Reads that wait at most until a deadline, polling for Ctrl-C; the control
/// connection's JSON and cookies are read through it.
pub(crate) struct Deadline<'a> {
    pub s: &'a TcpStream,
    pub until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&*self.s).read(buf) {
                Err(e) => keep_waiting(
                    e,
                    self.until,
                    "the peer went silent on the control connection",
                )?,
                r => return r,
            }
        }
    }
}

/// A socket call that failed with `e` while waiting for the peer until
/// `until`: Ok (try again) when it only timed out and time is left; else the
/// error, a TimedOut saying `what` past the deadline, or Ctrl-C's.
pub(crate) fn keep_waiting(e: io::Error, until: Instant, what: &str) -> io::Result<()> {
    if !matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        return Err(e);
    }
    if Instant::now() >= until {
        return Err(io::Error::new(io::ErrorKind::TimedOut, what.to_string()));
    }
    if tun::stop_requested() {
        return Err(interrupted());
    }
    Ok(())
}

/// The error a run stopped by Ctrl-C ends with, after its summary.
pub(crate) fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted")
}

/// How long a peer may take with a control message it owes.
pub(crate) const CONTROL_WAIT: Duration = Duration::from_secs(30);
/// How often the control loops wake (interval lines, Ctrl-C, deadlines).
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Read one control byte, waiting at most POLL; `None` when none came.
pub(crate) fn poll_state(s: &TcpStream) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match (&*s).read(&mut b) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the control connection",
        )),
        Ok(_) => Ok(Some(b[0])),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Send one state byte.
pub(crate) fn send_state(s: &TcpStream, st: proto::State) -> io::Result<()> {
    use std::io::Write;
    (&*s).write_all(&[st.byte()])
}

/// TCP_MAXSEG of a berth TCP socket (berth's Socket has no call for it).
pub(crate) fn set_maxseg(stack: &Stack, h: berth::SocketHandle, mss: u16) -> io::Result<()> {
    stack.with_core(|c, _| c.tcp_set_maxseg(h, mss))
}

/// TCP_CONGESTION of an accepted stream by name (berth's TcpStream has no
/// call for it).
pub(crate) fn set_congestion(stack: &Stack, h: berth::SocketHandle, name: &str) -> io::Result<()> {
    stack.with_core(|c, _| c.tcp_set_congestion_name(h, name))
}

/// TCP_CONGESTION in effect on a socket.
pub(crate) fn congestion(stack: &Stack, h: berth::SocketHandle) -> Option<String> {
    stack
        .with_core(|c, _| c.tcp_congestion(h))
        .ok()
        .map(|a| a.name().to_string())
}

/// The MSS a connected socket sends with.
pub(crate) fn maxseg(stack: &Stack, h: berth::SocketHandle) -> usize {
    stack.with_core(|c, _| c.tcp_maxseg(h)).unwrap_or(0)
}

/// This process's CPU time: (user, system) seconds.
fn cpu_times() -> (f64, f64) {
    // SAFETY: FFI. getrusage writes a whole `rusage` into the zeroed value we
    // own; RUSAGE_SELF is always valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return (0.0, 0.0);
        }
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// CPU use over a test, as iperf3's cpu_util measures it: percent of the wall
/// time spent in user and system mode.
pub(crate) struct Cpu {
    wall: Instant,
    user: f64,
    system: f64,
}

impl Cpu {
    pub fn start() -> Cpu {
        let (user, system) = cpu_times();
        Cpu {
            wall: Instant::now(),
            user,
            system,
        }
    }

    /// [total, user, system] in percent since `start`.
    pub fn percent(&self) -> [f64; 3] {
        let wall = self.wall.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return [0.0; 3];
        }
        let (u, s) = cpu_times();
        let user = 100.0 * (u - self.user) / wall;
        let system = 100.0 * (s - self.system) / wall;
        [user + system, user, system]
    }
}

/// uname -a's fields from /proc, for `start.system_info`.
pub(crate) fn system_info() -> String {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{} {} {} {} {}",
        read("ostype"),
        read("hostname"),
        read("osrelease"),
        read("version"),
        std::env::consts::ARCH
    )
}

/// `start.timestamp`: RFC 1123 time and seconds since the epoch.
pub(crate) fn timestamp() -> serde_json::Value {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    serde_json::json!({"time": rfc1123(secs), "timesecs": secs})
}

/// "Tue, 05 Mar 2024 10:01:02 UTC" (strftime's "%a, %d %b %Y %H:%M:%S %Z" in UTC).
fn rfc1123(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} UTC",
        WD[(days.rem_euclid(7)) as usize],
        MO[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        perf: PerfArgs,
    }

    fn parse(a: &[&str]) -> Result<PerfArgs, clap::Error> {
        let mut v = vec!["perf"];
        v.extend_from_slice(a);
        T::try_parse_from(v).map(|t| t.perf)
    }

    #[test]
    fn iperf3_flags_parse() {
        let a = parse(&[
            "--tun",
            "t0",
            "--addr",
            "192.0.2.2/24",
            "-c",
            "192.0.2.1",
            "-u",
            "-b",
            "10M",
            "-l",
            "1000",
            "-P",
            "2",
            "-R",
            "-t",
            "1",
            "-i",
            "0.5",
            "-J",
        ])
        .unwrap();
        let p = a.params().unwrap();
        assert!(p.udp && p.reverse);
        assert_eq!(
            (p.time, p.parallel, p.len, p.bandwidth),
            (1, 2, 1000, 10_000_000)
        );
        let a = parse(&[
            "--sim",
            "-c",
            "192.0.2.2",
            "-n",
            "1M",
            "-w",
            "256K",
            "-M",
            "1000",
            "-N",
            "-C",
            "reno",
        ])
        .unwrap();
        let p = a.params().unwrap();
        assert_eq!(
            (p.time, p.bytes, p.window, p.mss),
            (0, 1 << 20, 256 << 10, 1000)
        );
        assert!(p.nodelay);
        assert_eq!(p.congestion.as_deref(), Some("reno"));
        assert!(parse(&["-s", "-1", "--tap", "t0", "--addr", "192.0.2.2/24"]).is_ok());
    }

    #[test]
    fn bad_flags_say_what_to_do() {
        assert!(parse(&["--sim", "-s"]).is_err());
        assert!(parse(&["--sim", "--tun", "t0", "-c", "192.0.2.2"]).is_err());
        assert!(parse(&["--sim", "-c", "192.0.2.2", "-t", "1", "-n", "1M"]).is_err());
        assert!(parse(&["--sim", "-c", "192.0.2.2", "-C", "bbr"]).is_err());
        let a = parse(&["--sim", "-c", "192.0.2.2", "-u", "-N"]).unwrap();
        assert!(a.params().unwrap_err().to_string().contains("TCP options"));
        let a = parse(&["--sim", "-c", "example.org"]).unwrap();
        assert!(a
            .host_ip()
            .unwrap_err()
            .to_string()
            .contains("resolves no names"));
        let a = parse(&["--sim", "-c", "192.0.2.2", "-u", "-l", "70000"]).unwrap();
        assert!(a.params().is_err());
    }

    #[test]
    fn rates_in_powers_of_1000() {
        assert_eq!(iperf_rate("10M").unwrap(), 10_000_000);
        assert_eq!(iperf_rate("1.5g").unwrap(), 1_500_000_000);
        assert_eq!(iperf_rate("0").unwrap(), 0);
        assert!(iperf_rate("fast").is_err());
    }

    #[test]
    fn rfc1123_dates() {
        assert_eq!(rfc1123(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(rfc1123(1_709_632_862), "Tue, 05 Mar 2024 10:01:02 UTC");
    }
}
