//! tun2socks: every TCP connection and UDP flow that arrives on a TUN device is
//! terminated by berth and carried on an ordinary host socket to where it was
//! going — the blocking [`Forwarder`] API in one file. (A real tun2socks would
//! open its host connections through a SOCKS5 proxy; here they are direct,
//! which is where a SOCKS client would plug in.)
//!
//! ```text
//! tun2socks TUN ADDR/PREFIX [--map FROM_IP=TO_IP]... [--udp-idle SECS]
//! ```
//!
//! - `TUN`: an existing TUN device, opened by name in this process's network
//!   namespace; `ADDR/PREFIX` is berth's own address on it.
//! - `--map FROM_IP=TO_IP`: connect to TO_IP instead when a flow is for
//!   FROM_IP (same port), e.g. to reach a server on the host's loopback.
//! - `--udp-idle SECS`: close a UDP flow after this long without a datagram
//!   either way (default 30).
//!
//! Set up by hand (as root), with a namespace whose only way out is the TUN.
//! The example opens the TUN in the host namespace (where its host sockets
//! live); the device is then moved into the namespace, and the open file
//! descriptor keeps working across the move:
//!
//! ```sh
//! ip tuntap add t2s0 mode tun
//! cargo run -p berth --example tun2socks -- t2s0 192.0.2.1/24 \
//!     --map 198.51.100.1=127.0.0.1 &          # wait for "ready on t2s0"
//! ip netns add t2s
//! ip link set t2s0 netns t2s
//! ip -n t2s addr add 192.0.2.100/24 dev t2s0
//! ip -n t2s link set t2s0 up
//! ip -n t2s link set lo up
//! ip -n t2s route add default dev t2s0
//!
//! python3 -m http.server --bind 127.0.0.1 8000 &   # a server on the host
//! ip netns exec t2s curl http://198.51.100.1:8000/  # from inside, via berth
//! ip netns exec t2s curl http://198.51.100.1:8001/  # refused: a RST at once
//!
//! kill %2 %1; ip netns del t2s                      # the TUN goes with it
//! ```
//!
//! Any other destination is connected to for real from the host. One line on
//! stderr per event (`ready on …`, `tcp A -> B: relaying via host L`,
//! `tcp A -> B: refused (…)`, `tcp A -> B: done, X bytes out, Y in`,
//! `udp A -> B: flow opened …`, `udp A -> B: closed after N s idle …`); the
//! test `tests/tun2socks.rs` relies on them and does all of the above itself
//! (as root: `cargo test -p berth --test tun2socks`).

use berth::device::{self, DeviceOptions, Kind};
use berth::forward::{Forwarder, ForwarderConfig, Refusal, TcpRequest, UdpFlow};
use berth::wire::Ipv4Cidr;
use berth::Stack;
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: tun2socks TUN ADDR/PREFIX [--map FROM_IP=TO_IP]... [--udp-idle SECS]
  TUN             an existing TUN device (ip tuntap add NAME mode tun)
  ADDR/PREFIX     berth's address on it, e.g. 192.0.2.1/24
  --map A=B       connect to B instead of A (same port), e.g. 198.51.100.1=127.0.0.1
  --udp-idle S    close a UDP flow after S seconds without a datagram (default 30)";

/// Relays (TCP connections plus UDP flows) at once: each holds host
/// descriptors and threads, so the namespace cannot exhaust them.
const MAX_RELAYS: usize = 256;
/// How long a host connect may take before the client gets "no route to host".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Blocked calls on berth sockets wake this often to see whether the relay
/// was aborted from the other direction.
const TICK: Duration = Duration::from_millis(250);
/// Copy buffer per direction: one read per buffer (io::copy uses a
/// BufReader's own buffer).
const BUF: usize = 64 * 1024;

struct Args {
    tun: String,
    addr: Ipv4Cidr,
    maps: HashMap<IpAddr, IpAddr>,
    udp_idle: Duration,
}

/// `Ok(None)`: help was asked for.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut maps = HashMap::new();
    let mut udp_idle = Duration::from_secs(30);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--map" => {
                let v = it.next().ok_or("--map needs FROM_IP=TO_IP")?;
                let (from, to) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--map {v}: expected FROM_IP=TO_IP"))?;
                let ip = |s: &str| {
                    s.parse::<IpAddr>()
                        .map_err(|_| format!("--map {v}: '{s}' is not an IP address"))
                };
                maps.insert(ip(from)?, ip(to)?);
            }
            "--udp-idle" => {
                let v = it.next().ok_or("--udp-idle needs SECS")?;
                udp_idle = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| format!("--udp-idle {v}: expected seconds > 0"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => positional.push(a),
        }
    }
    let [tun, addr] = <[String; 2]>::try_from(positional)
        .map_err(|p| format!("expected TUN and ADDR/PREFIX, got {} argument(s)", p.len()))?;
    let addr = addr.parse::<Ipv4Cidr>()?;
    Ok(Some(Args {
        tun,
        addr,
        maps,
        udp_idle,
    }))
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("tun2socks: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("tun2socks: {e}");
        std::process::exit(1);
    }
}

/// What every relay needs to know.
struct Relay {
    maps: HashMap<IpAddr, IpAddr>,
    udp_idle: Duration,
    active: AtomicUsize,
}

impl Relay {
    /// The host address for a flow's original destination.
    fn target(&self, dst: SocketAddr) -> SocketAddr {
        match self.maps.get(&dst.ip()) {
            Some(&ip) => SocketAddr::new(ip, dst.port()),
            None => dst,
        }
    }

    /// A place among the MAX_RELAYS, given back on drop.
    fn slot(self: &Arc<Self>) -> Option<Slot> {
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_RELAYS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(self)))
    }
}

struct Slot(Arc<Relay>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run(a: Args) -> Result<(), String> {
    let stack = Stack::builder().build();
    let dev =
        device::attach(&stack, &DeviceOptions::new(&a.tun, Kind::Tun, a.addr)).map_err(|e| {
            let missing = !std::path::Path::new("/sys/class/net").join(&a.tun).exists();
            if e.kind() == io::ErrorKind::NotFound && missing {
                // device.rs suggests berth's --create, which this example lacks.
                format!(
                    "no network device {0}: create it first (ip tuntap add {0} mode tun)",
                    a.tun
                )
            } else {
                e.to_string()
            }
        })?;
    let fwd = Arc::new(
        Forwarder::new(&stack, &[dev.iface()], ForwarderConfig::default())
            .map_err(|e| format!("cannot make the forwarder: {e}"))?,
    );
    let relay = Arc::new(Relay {
        maps: a.maps,
        udp_idle: a.udp_idle,
        active: AtomicUsize::new(0),
    });
    {
        let (fwd, relay) = (Arc::clone(&fwd), Arc::clone(&relay));
        thread::Builder::new()
            .name("udp-accept".into())
            .spawn(move || {
                // Ends when the stack does; the TCP loop reports why.
                while let Ok(flow) = fwd.accept_udp() {
                    start_udp(flow, &relay);
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
    }
    eprintln!(
        "ready on {} as {} (MTU {}, offload {})",
        dev.name(),
        a.addr,
        dev.mtu(),
        if dev.offload() { "on" } else { "off" }
    );
    loop {
        let req = fwd
            .accept_tcp()
            .map_err(|e| format!("the forwarder stopped: {e}"))?;
        start_tcp(req, &relay);
    }
}

fn start_tcp(req: TcpRequest, relay: &Arc<Relay>) {
    let tag = format!("tcp {} -> {}", req.peer_addr(), req.original_destination());
    let Some(slot) = relay.slot() else {
        eprintln!("{tag}: refused with a reset: {MAX_RELAYS} relays active");
        let _ = req.refuse(Refusal::Reset);
        return;
    };
    let target = relay.target(req.original_destination());
    let t = tag.clone();
    // connect_timeout blocks, so each request gets its own thread; a request
    // dropped with the closure (spawn failed) is refused with a RST.
    if let Err(e) = thread::Builder::new().name("tcp".into()).spawn(move || {
        let _slot = slot;
        relay_tcp(req, target, &t);
    }) {
        eprintln!("{tag}: refused with a reset: cannot start a thread ({e})");
    }
}

/// How a failed host connect looks from inside: as it looked from the host.
fn refusal(kind: io::ErrorKind) -> (Refusal, &'static str) {
    match kind {
        io::ErrorKind::ConnectionRefused => (Refusal::Reset, "reset"),
        io::ErrorKind::HostUnreachable | io::ErrorKind::TimedOut => {
            (Refusal::HostUnreachable, "ICMP host unreachable")
        }
        io::ErrorKind::NetworkUnreachable => (Refusal::NetUnreachable, "ICMP net unreachable"),
        io::ErrorKind::PermissionDenied => (Refusal::Prohibited, "ICMP prohibited"),
        _ => (Refusal::Reset, "reset"),
    }
}

fn relay_tcp(req: TcpRequest, target: SocketAddr, tag: &str) {
    // Connect first: only a reachable destination gets a SYN-ACK.
    let host = match std::net::TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        Ok(h) => h,
        Err(e) => {
            let (how, what) = refusal(e.kind());
            eprintln!("{tag}: refused ({e}), answered with {what}");
            if let Err(e) = req.refuse(how) {
                eprintln!("{tag}: cannot refuse: {e}");
            }
            return;
        }
    };
    let via = host
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let dst = req.original_destination();
    let inside = match req.accept() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{tag}: the client went away before the handshake ended ({e})");
            return;
        }
    };
    let mapped = if target == dst {
        String::new()
    } else {
        format!(" to {target}")
    };
    eprintln!("{tag}: relaying via host {via}{mapped}");
    let (out, inn, why) = pipe(inside, host);
    match why {
        None => eprintln!("{tag}: done, {out} bytes out, {inn} in"),
        Some(why) => eprintln!("{tag}: reset ({why}), {out} bytes out, {inn} in"),
    }
}

/// A relay's two directions share this: the first error aborts both.
#[derive(Default)]
struct Abort {
    done: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Abort {
    fn is_set(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Reset the inside (SO_LINGER 0: the RST goes out when the last handle
    /// closes) and shut the host socket, which wakes its blocked reads and
    /// writes. std has no stable set_linger, so the host side gets a FIN (or
    /// a RST from the kernel when unread data is left).
    fn abort(&self, why: String, inside: &berth::TcpStream, host: &std::net::TcpStream) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        *self.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        let _ = inside.set_linger(Some(Duration::ZERO));
        let _ = host.shutdown(Shutdown::Both);
    }
}

/// berth's end of the relay, with reads and writes that give up once the
/// relay is aborted (berth's blocking calls are woken only by the stack, so
/// they wait in TICK slices and look at the flag in between).
struct Inside<'a> {
    s: &'a berth::TcpStream,
    abort: &'a Abort,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Inside<'_> {
    fn check(&self) -> io::Result<()> {
        if self.abort.is_set() {
            return Err(io::Error::other("aborted"));
        }
        Ok(())
    }
    fn side(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("client side: {e}"))
    }
}

impl Read for Inside<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.check()?;
            match (&mut &*self.s).read(buf) {
                Err(e) if timed_out(&e) => continue,
                r => return r.map_err(Self::side),
            }
        }
    }
}

impl Write for Inside<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.check()?;
            match (&mut &*self.s).write(buf) {
                Err(e) if timed_out(&e) => continue,
                r => return r.map_err(Self::side),
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The host's end, with errors that say so.
struct Host<'a>(&'a std::net::TcpStream);

impl Host<'_> {
    fn side(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("host side: {e}"))
    }
}

impl Read for Host<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self.0).read(buf).map_err(Self::side)
    }
}

impl Write for Host<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self.0).write(buf).map_err(Self::side)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts what reached the writer.
struct Counted<W> {
    w: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Copy both ways until both sides have closed (a FIN is passed on as a FIN)
/// or one fails (then both are reset). Bytes out (client to host), bytes in,
/// and why it was aborted.
fn pipe(inside: berth::TcpStream, host: std::net::TcpStream) -> (u64, u64, Option<String>) {
    let abort = Arc::new(Abort::default());
    // Timeouts first: try_clone copies them.
    let _ = inside.set_read_timeout(Some(TICK));
    let _ = inside.set_write_timeout(Some(TICK));
    let clones = inside.try_clone().and_then(|i| Ok((i, host.try_clone()?)));
    let (inside2, host2) = match clones {
        Ok(c) => c,
        Err(e) => {
            abort.abort(format!("cannot clone a socket: {e}"), &inside, &host);
            return (0, 0, abort.why.lock().ok().and_then(|mut w| w.take()));
        }
    };
    // Out: client to host, in its own thread.
    let up = {
        let abort = Arc::clone(&abort);
        thread::Builder::new()
            .name("tcp-out".into())
            .spawn(move || {
                let (inside, host) = (inside2, host2);
                let mut r = BufReader::with_capacity(
                    BUF,
                    Inside {
                        s: &inside,
                        abort: &abort,
                    },
                );
                let mut w = Counted {
                    w: Host(&host),
                    n: 0,
                };
                match io::copy(&mut r, &mut w) {
                    // The client's FIN, passed on.
                    Ok(_) => {
                        let _ = host.shutdown(Shutdown::Write);
                    }
                    Err(e) => abort.abort(e.to_string(), &inside, &host),
                }
                w.n
            })
    };
    let up = match up {
        Ok(h) => h,
        Err(e) => {
            abort.abort(format!("cannot start a thread: {e}"), &inside, &host);
            return (0, 0, abort.why.lock().ok().and_then(|mut w| w.take()));
        }
    };
    // In: host to client, on this thread.
    let mut r = BufReader::with_capacity(BUF, Host(&host));
    let mut w = Counted {
        w: Inside {
            s: &inside,
            abort: &abort,
        },
        n: 0,
    };
    match io::copy(&mut r, &mut w) {
        // A read of 0 after an abort is the shutdown, not the server's FIN.
        Ok(_) if abort.is_set() => {}
        Ok(_) => {
            let _ = inside.shutdown(Shutdown::Write);
        }
        Err(e) => abort.abort(e.to_string(), &inside, &host),
    }
    let inn = w.n;
    let out = up.join().unwrap_or(0);
    let why = abort.why.lock().ok().and_then(|mut w| w.take());
    (out, inn, why)
}

fn start_udp(flow: UdpFlow, relay: &Arc<Relay>) {
    let tag = format!(
        "udp {} -> {}",
        flow.peer_addr(),
        flow.original_destination()
    );
    let Some(slot) = relay.slot() else {
        // Dropping the flow closes it; its next datagram asks again.
        eprintln!("{tag}: dropped: {MAX_RELAYS} relays active");
        return;
    };
    let target = relay.target(flow.original_destination());
    let any = match target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let host = match std::net::UdpSocket::bind(any).and_then(|s| {
        s.connect(target)?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{tag}: dropped: no host socket to {target} ({e})");
            return;
        }
    };
    let via = host
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    eprintln!("{tag}: flow opened via host {via}");
    let idle = relay.udp_idle;
    let t = tag.clone();
    if let Err(e) = thread::Builder::new().name("udp".into()).spawn(move || {
        let _slot = slot;
        relay_udp(flow.into_socket(), host, idle, &t);
    }) {
        eprintln!("{tag}: closed: cannot start a thread ({e})");
    }
}

/// The idle clock of a UDP flow, shared by its two directions.
struct Idle {
    limit: Duration,
    last: Mutex<Instant>,
    over: AtomicBool,
}

impl Idle {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    fn idle_for(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
    /// Whether the flow is over (idle too long, or ended by the other side).
    fn over(&self) -> bool {
        if self.idle_for() >= self.limit {
            self.over.store(true, Ordering::SeqCst);
        }
        self.over.load(Ordering::SeqCst)
    }
    fn end(&self) {
        self.over.store(true, Ordering::SeqCst);
    }
}

fn relay_udp(flow: berth::UdpSocket, host: std::net::UdpSocket, limit: Duration, tag: &str) {
    // Both directions wake at least this often to look at the idle clock.
    let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let _ = flow.set_read_timeout(Some(tick));
    let _ = host.set_read_timeout(Some(tick));
    let idle = Arc::new(Idle {
        limit,
        last: Mutex::new(Instant::now()),
        over: AtomicBool::new(false),
    });
    let flow = Arc::new(flow);
    let inn = Arc::new(AtomicU64::new(0));
    let error = Arc::new(Mutex::new(None::<String>));
    let fail = |error: &Mutex<Option<String>>, idle: &Idle, e: String| {
        idle.end();
        error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    };
    // In: host to client.
    let down = {
        let (flow, idle, inn, error) = (
            Arc::clone(&flow),
            Arc::clone(&idle),
            Arc::clone(&inn),
            Arc::clone(&error),
        );
        let host = match host.try_clone() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{tag}: closed: cannot clone the host socket ({e})");
                return;
            }
        };
        thread::Builder::new().name("udp-in".into()).spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !idle.over() {
                match host.recv(&mut buf) {
                    Ok(n) => {
                        idle.touch();
                        inn.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = flow.send(&buf[..n]) {
                            fail(&error, &idle, format!("client side: {e}"));
                        }
                    }
                    Err(e) if timed_out(&e) => {}
                    // ICMP port unreachable from the destination: it may yet
                    // come up; the flow stays until idle, as in a NAT.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(e) => fail(&error, &idle, format!("host side: {e}")),
                }
            }
        })
    };
    let down = match down {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{tag}: closed: cannot start a thread ({e})");
            return;
        }
    };
    // Out: client to host, on this thread.
    let mut out = 0u64;
    let mut buf = vec![0u8; 65_535];
    while !idle.over() {
        match flow.recv(&mut buf) {
            Ok(n) => {
                idle.touch();
                out += 1;
                // A refused or dropped send is a lost datagram, as on a router.
                let _ = host.send(&buf[..n]);
            }
            Err(e) if timed_out(&e) => {}
            Err(e) => fail(&error, &idle, format!("client side: {e}")),
        }
    }
    let _ = down.join();
    let inn = inn.load(Ordering::Relaxed);
    let error = error.lock().unwrap_or_else(|p| p.into_inner()).take();
    match error {
        None => eprintln!(
            "{tag}: closed after {:.1} s idle, {out} datagrams out, {inn} in",
            idle.idle_for().as_secs_f64()
        ),
        Some(e) => eprintln!("{tag}: closed ({e}), {out} datagrams out, {inn} in"),
    }
}
