//! `berth nc`: TCP and UDP client, listener and port scanner over a berth host
//! on a TUN or TAP device, with the flags and behaviour of OpenBSD nc (as
//! Debian's netcat-openbsd ships it).
//!
//! stdin goes to the peer and the peer to stdout. stdin's end stops sending;
//! only with `-N` (or `-q SECS`) does it shut the write side (FIN). The peer's
//! half-close stops receiving but not sending: the client goes on until stdin
//! ends too, a listener stops once what stdin holds is sent. `-w` bounds the
//! connect and any idle time. `-q SECS` (SECS >= 0) sends the FIN at stdin's
//! end; as Debian's nc, a TCP session then still ends only with the
//! connection, SECS later (0: at once), while UDP quits SECS after stdin's
//! end. SIGINT or
//! SIGTERM closes the connection with a FIN (a second one, or no
//! acknowledgement within 3 s, with a RST) and then ends berth nc by that
//! signal, as the kernel closes a killed nc's socket. Messages only with `-v`,
//! worded as nc's; exit status 0 when a connection (or scan) succeeded, else 1.

mod session;

use crate::ping::HostArgs;
use berth::{Domain, Socket, TcpListener, TcpStream, Type, UdpSocket};
use clap::Args;
use session::{Ctx, End, Signals};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct NcArgs {
    #[command(flatten)]
    host: HostArgs,
    /// IPv4 only (a listener without an address listens on 0.0.0.0 anyway).
    #[arg(short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 only: a listener without an address listens on [::].
    #[arg(short = '6')]
    ipv6: bool,
    /// Do not read stdin.
    #[arg(short = 'd')]
    no_stdin: bool,
    /// With -l: when a connection ends, accept another (UDP: take datagrams
    /// from any peer, answering the latest).
    #[arg(short = 'k')]
    keep: bool,
    /// Listen for an incoming connection (or the first UDP peer).
    #[arg(short = 'l')]
    listen: bool,
    /// Shut the connection's write side (FIN) when stdin ends.
    #[arg(short = 'N')]
    shutdown_on_eof: bool,
    /// No name or service look-ups (berth nc resolves no host names in any case;
    /// -v then prints `*` for the service).
    #[arg(short = 'n')]
    numeric: bool,
    /// Source port of a connection; with -l the port to listen on.
    #[arg(short = 'p', value_name = "PORT", value_parser = port_arg)]
    port: Option<u16>,
    /// After stdin ends: FIN (implies -N), and quit SECS after the connection
    /// ends (UDP: SECS after stdin's end), as Debian's nc; negative: no FIN,
    /// and quit when the connection ends (the default).
    #[arg(
        short = 'q',
        value_name = "SECS",
        allow_negative_numbers = true,
        allow_hyphen_values = true
    )]
    quit: Option<i64>,
    /// Source address of a connection; with -l the address to listen on.
    #[arg(short = 's', value_name = "ADDR")]
    source: Option<String>,
    /// UDP instead of TCP.
    #[arg(short = 'u')]
    udp: bool,
    /// Say what happens on stderr: connections made, refused, received.
    #[arg(short = 'v')]
    verbose: bool,
    /// Give up a connect, or a connection idle, after SECS (0: no limit).
    #[arg(short = 'w', value_name = "SECS")]
    wait: Option<u64>,
    /// Scan: connect to each port and close at once, sending nothing.
    #[arg(short = 'z')]
    scan: bool,
    /// [HOST] PORT (PORT may be a range LO-HI): where to connect; with -l the
    /// address and port to listen on.
    #[arg(value_name = "ARGS", num_args = 0..=2)]
    rest: Vec<String>,
}

/// The checked flags the connection code needs.
pub(crate) struct Opts {
    pub listen: bool,
    pub keep: bool,
    pub udp: bool,
    pub verbose: bool,
    pub numeric: bool,
    pub scan: bool,
    pub no_stdin: bool,
    /// -N, or -q with SECS >= 0.
    pub half_close: bool,
    /// -q SECS >= 0.
    pub quit_after: Option<Duration>,
    /// -w SECS > 0.
    pub idle: Option<Duration>,
}

impl Opts {
    fn proto(&self) -> &'static str {
        if self.udp {
            "udp"
        } else {
            "tcp"
        }
    }
}

/// What to do: connect to HOST at each port in turn, or listen.
enum Plan {
    Connect {
        host: IpAddr,
        ports: Vec<u16>,
        /// -s / -p: bind the connecting socket here first.
        local: Option<SocketAddr>,
    },
    Listen {
        at: SocketAddr,
    },
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

fn port_arg(s: &str) -> Result<u16, String> {
    port_or_service(s, "tcp").map_err(|e| e.to_string())
}

/// A port number 1..65535 or a service name from /etc/services.
fn port_or_service(s: &str, proto: &str) -> io::Result<u16> {
    if let Ok(p) = s.parse::<u32>() {
        return u16::try_from(p)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| invalid(format!("port number {s} is out of range (1..65535)")));
    }
    services()
        .into_iter()
        .find(|(name, _, pr)| name == s && pr == proto)
        .map(|(_, port, _)| port)
        .ok_or_else(|| invalid(format!("service \"{s}\" unknown: give a port number")))
}

/// PORT or LO-HI (either order), as nc's port list.
fn port_list(s: &str, proto: &str) -> io::Result<Vec<u16>> {
    match s.split_once('-') {
        Some((lo, hi)) if s.starts_with(|c: char| c.is_ascii_digit()) => {
            let (a, b) = (port_or_service(lo, proto)?, port_or_service(hi, proto)?);
            Ok((a.min(b)..=a.max(b)).collect())
        }
        _ => Ok(vec![port_or_service(s, proto)?]),
    }
}

/// (name, port, protocol) of every entry in /etc/services; empty without it.
fn services() -> Vec<(String, u16, String)> {
    let Ok(text) = std::fs::read_to_string("/etc/services") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or_default();
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let (port, proto) = f.next()?.split_once('/')?;
            Some((name.to_string(), port.parse().ok()?, proto.to_string()))
        })
        .collect()
}

/// The service name -v shows for a port (nc's getservbyport), or `*`.
fn service_name(port: u16, proto: &str, numeric: bool) -> String {
    if numeric {
        return "*".into();
    }
    services()
        .into_iter()
        .find(|(_, p, pr)| *p == port && pr == proto)
        .map(|(name, _, _)| name)
        .unwrap_or_else(|| "*".into())
}

/// An address literal; IPv6 may be bracketed ([2001:db8::2]), as in URLs.
fn parse_host(s: &str) -> io::Result<IpAddr> {
    let t = s
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(s);
    t.parse().map_err(|_| {
        invalid(format!(
            "'{s}' is not an IP address, e.g. 192.0.2.1 or 2001:db8::1 (berth nc resolves no names)"
        ))
    })
}

impl NcArgs {
    /// The flags checked against each other, as nc checks them.
    fn opts(&self) -> io::Result<Opts> {
        if self.listen && self.scan {
            return Err(invalid("cannot use -z and -l"));
        }
        if self.keep && !self.listen {
            return Err(invalid("must use -l with -k"));
        }
        let quit_after = self
            .quit
            .and_then(|q| u64::try_from(q).ok())
            .map(Duration::from_secs);
        Ok(Opts {
            listen: self.listen,
            keep: self.keep,
            udp: self.udp,
            verbose: self.verbose,
            numeric: self.numeric,
            scan: self.scan,
            no_stdin: self.no_stdin,
            half_close: self.shutdown_on_eof || quit_after.is_some(),
            quit_after,
            idle: self.wait.filter(|&w| w > 0).map(Duration::from_secs),
        })
    }

    /// A host of the family -4 / -6 allow.
    fn family_ok(&self, h: IpAddr, what: &str) -> io::Result<IpAddr> {
        if (self.ipv4 && h.is_ipv6()) || (self.ipv6 && h.is_ipv4()) {
            let v = if self.ipv6 { 6 } else { 4 };
            return Err(invalid(format!(
                "{what} {h} is not an IPv{v} address; drop -{v} or give an address of that family"
            )));
        }
        Ok(h)
    }

    /// The wildcard address of the family -6 / -4 (or `like`) selects.
    fn wildcard(&self, like: Option<IpAddr>) -> IpAddr {
        match like {
            Some(IpAddr::V6(_)) => Ipv6Addr::UNSPECIFIED.into(),
            Some(IpAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
            None if self.ipv6 => Ipv6Addr::UNSPECIFIED.into(),
            None => Ipv4Addr::UNSPECIFIED.into(),
        }
    }

    fn plan(&self, o: &Opts) -> io::Result<Plan> {
        let proto = o.proto();
        let source = self
            .source
            .as_deref()
            .map(|s| self.family_ok(parse_host(s)?, "-s"))
            .transpose()?;
        if self.listen {
            let (host, port) = match self.rest.as_slice() {
                [] => (None, None),
                [p] => (None, Some(p)),
                [h, p] => (Some(self.family_ok(parse_host(h)?, "HOST")?), Some(p)),
                _ => return Err(usage()),
            };
            if host.is_some() && source.is_some() {
                return Err(invalid(
                    "give the address to listen on once: as HOST or with -s",
                ));
            }
            let port = match (port, self.port) {
                (Some(p), None) => {
                    if p.contains('-') && p.starts_with(|c: char| c.is_ascii_digit()) {
                        return Err(invalid("cannot use -l with a port range"));
                    }
                    port_or_service(p, proto)?
                }
                (None, Some(p)) => p,
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "give the port to listen on once: as PORT or with -p",
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        "-l needs a port: berth nc -l -p PORT (or -l PORT, -l ADDR PORT)",
                    ))
                }
            };
            let ip = host.or(source).unwrap_or_else(|| self.wildcard(None));
            return Ok(Plan::Listen {
                at: SocketAddr::new(ip, port),
            });
        }
        let [h, p] = self.rest.as_slice() else {
            return Err(usage());
        };
        let host = self.family_ok(parse_host(h)?, "HOST")?;
        if let Some(s) = source {
            if s.is_ipv4() != host.is_ipv4() {
                return Err(invalid(format!(
                    "-s {s} and {host} are of different families; give a source address of {host}'s"
                )));
            }
        }
        let local = match (source, self.port) {
            (None, None) => None,
            (s, p) => Some(SocketAddr::new(
                s.unwrap_or_else(|| self.wildcard(Some(host))),
                p.unwrap_or(0),
            )),
        };
        Ok(Plan::Connect {
            host,
            ports: port_list(p, proto)?,
            local,
        })
    }
}

fn usage() -> io::Error {
    invalid(
        "usage: berth nc [-46dklNnuvz] [-p PORT] [-q SECS] [-s ADDR] [-w SECS] HOST PORT[-PORT], \
         or berth nc -l [-ku] [-p] PORT",
    )
}

/// `berth nc`: its exit status, or death by the signal that stopped it.
pub fn run(a: NcArgs) -> ExitCode {
    // Before any thread starts (the stack's timer, the device reader): they
    // inherit the blocked mask, so only the signal thread sees SIGINT/SIGTERM.
    let sig = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth nc: cannot watch SIGINT and SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = start(&a, &sig);
    if sig.count() > 0 {
        return sig.die();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth nc: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start(a: &NcArgs, sig: &std::sync::Arc<Signals>) -> io::Result<ExitCode> {
    let o = a.opts()?;
    let plan = a.plan(&o)?;
    if let Plan::Connect { host, .. } = &plan {
        a.host.check_reach(*host)?;
    }
    let (stack, _dev) = a.host.start()?;
    let ctx = Ctx::new(&stack, sig.clone(), o);
    match plan {
        Plan::Connect { host, ports, local } => connect_each(&ctx, host, &ports, local),
        Plan::Listen { at } if ctx.o.udp => listen_udp(&ctx, at),
        Plan::Listen { at } => listen_tcp(&ctx, at),
    }
}

/// Why a connection was not made.
pub(crate) enum ConnectError {
    /// Setting up the socket failed (-s not ours, -p in use…): nc gives up.
    Fatal(io::Error),
    /// The peer refused, or the network said no: nc goes on with the next port.
    Failed(io::Error),
    /// -w passed first.
    TimedOut,
    /// SIGINT or SIGTERM.
    Interrupted,
}

/// nc's strerror wording of a berth error ("Connection refused").
fn strerror(e: &io::Error) -> String {
    match berth_core::error::errno(e) {
        Some(n) => {
            let s = io::Error::from_raw_os_error(n).to_string();
            s.strip_suffix(&format!(" (os error {n})"))
                .map(str::to_string)
                .unwrap_or(s)
        }
        None => e.to_string(),
    }
}

/// Connect to `host` at each port in turn (nc's port list): scan, or pipe
/// stdin and stdout through each connection made.
fn connect_each(
    ctx: &Ctx,
    host: IpAddr,
    ports: &[u16],
    local: Option<SocketAddr>,
) -> io::Result<ExitCode> {
    let o = &ctx.o;
    let proto = o.proto();
    let mut any = false;
    for &port in ports {
        let dst = SocketAddr::new(host, port);
        let made = if o.udp {
            ctx.udp_connect(dst, local).map(Conn::Udp)
        } else {
            ctx.tcp_connect(dst, local).map(Conn::Tcp)
        };
        let conn = match made {
            Ok(c) => c,
            Err(ConnectError::Fatal(e)) => return Err(e),
            Err(ConnectError::Interrupted) => return Ok(ExitCode::FAILURE),
            Err(ConnectError::TimedOut) => {
                if o.verbose {
                    eprintln!(
                        "nc: connect to {host} port {port} ({proto}) timed out: Operation now in progress"
                    );
                }
                continue;
            }
            Err(ConnectError::Failed(e)) => {
                if o.verbose {
                    eprintln!(
                        "nc: connect to {host} port {port} ({proto}) failed: {}",
                        strerror(&e)
                    );
                }
                continue;
            }
        };
        any = true;
        if o.verbose {
            eprintln!(
                "Connection to {host} {port} port [{proto}/{}] succeeded!",
                service_name(port, proto, o.numeric)
            );
        }
        let end = match conn {
            Conn::Tcp(s) if o.scan => ctx.close_tcp(s, End::Done, session::SCAN_LINGER),
            Conn::Tcp(s) => {
                let end = ctx.tcp_session(&s)?;
                ctx.close_tcp(s, end, session::linger_for(end))
            }
            Conn::Udp(_) if o.scan => End::Done,
            Conn::Udp(s) => ctx.udp_session(&s, Some(dst), false)?,
        };
        if end == End::Signal {
            break;
        }
    }
    Ok(if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// A socket bound to `at` (and listening, for TCP), non-blocking, of `at`'s
/// family (an IPv6 one dual-stack, as Linux's default); with -v nc's line
/// saying where it waits.
fn listening(ctx: &Ctx, at: SocketAddr, ty: Type) -> io::Result<Socket> {
    let s = Socket::new(&ctx.stack, Domain::for_address(at), ty, None)?;
    s.set_reuse_address(true)?;
    let stream = ty == Type::STREAM;
    s.bind(&at)
        .and_then(|()| if stream { s.listen(1) } else { Ok(()) })
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {at}: {e}")))?;
    s.set_nonblocking(true)?;
    if ctx.o.verbose {
        let shown = s.local_addr()?;
        let what = if stream { "Listening on" } else { "Bound on" };
        eprintln!("{what} {} {}", shown.ip(), shown.port());
    }
    Ok(s)
}

/// `-l`: accept a connection (with -k one after another), piping each.
fn listen_tcp(ctx: &Ctx, at: SocketAddr) -> io::Result<ExitCode> {
    let l = TcpListener::from(listening(ctx, at, Type::STREAM)?);
    loop {
        let Some((conn, from)) = ctx.accept(&l)? else {
            return Ok(ExitCode::FAILURE);
        };
        if ctx.o.verbose {
            eprintln!("Connection received on {} {}", from.ip(), from.port());
        }
        let end = ctx.tcp_session(&conn)?;
        if ctx.close_tcp(conn, end, session::linger_for(end)) == End::Signal || !ctx.o.keep {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// `-l -u`: talk to the first peer that writes (with -k to whoever wrote last).
fn listen_udp(ctx: &Ctx, at: SocketAddr) -> io::Result<ExitCode> {
    let u = UdpSocket::from(listening(ctx, at, Type::DGRAM)?);
    ctx.udp_session(&u, None, true)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        nc: NcArgs,
    }

    fn args(a: &[&str]) -> NcArgs {
        let mut v = vec!["nc", "--tun", "t0", "--addr", "192.0.2.2/24"];
        v.extend_from_slice(a);
        T::try_parse_from(v).expect("parses").nc
    }

    fn plan(a: &[&str]) -> io::Result<Plan> {
        let a = args(a);
        let o = a.opts()?;
        a.plan(&o)
    }

    #[test]
    fn openbsd_flags_parse_combined() {
        let a = args(&["-zvn", "-w", "2", "192.0.2.1", "20-25"]);
        assert!(a.scan && a.verbose && a.numeric);
        let o = a.opts().unwrap();
        assert_eq!(o.idle, Some(Duration::from_secs(2)));
        match a.plan(&o).unwrap() {
            Plan::Connect { ports, local, .. } => {
                assert_eq!(ports, (20..=25).collect::<Vec<_>>());
                assert!(local.is_none());
            }
            Plan::Listen { .. } => panic!("a client"),
        }
        let a = args(&["-q", "-1", "-N", "-d", "192.0.2.1", "7"]);
        let o = a.opts().unwrap();
        assert!(o.half_close && o.no_stdin && o.quit_after.is_none());
        let o = args(&["-q", "0", "192.0.2.1", "7"]).opts().unwrap();
        assert!(o.half_close, "-q 0 implies -N");
        assert_eq!(o.quit_after, Some(Duration::ZERO));
        assert!(!args(&["192.0.2.1", "7"]).opts().unwrap().half_close);
    }

    #[test]
    fn ports_ranges_and_services() {
        assert_eq!(port_list("25-20", "tcp").unwrap().len(), 6);
        assert_eq!(port_list("7", "tcp").unwrap(), vec![7]);
        assert!(port_list("0", "tcp").is_err());
        assert!(port_list("70000", "tcp").is_err());
        assert!(port_list("20-x", "tcp").is_err());
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(port_list("echo", "tcp").unwrap(), vec![7]);
            assert_eq!(service_name(7, "tcp", false), "echo");
        }
        assert_eq!(service_name(7, "tcp", true), "*");
        assert_eq!(service_name(1, "bogus", false), "*");
    }

    #[test]
    fn listen_and_source_plans() {
        match plan(&["-l", "-p", "7"]).unwrap() {
            Plan::Listen { at } => assert_eq!(at, "0.0.0.0:7".parse().unwrap()),
            Plan::Connect { .. } => panic!("a listener"),
        }
        match plan(&["-l", "-6", "7"]).unwrap() {
            Plan::Listen { at } => assert_eq!(at, "[::]:7".parse().unwrap()),
            Plan::Connect { .. } => panic!("a listener"),
        }
        match plan(&["-l", "-s", "192.0.2.2", "7"]).unwrap() {
            Plan::Listen { at } => assert_eq!(at, "192.0.2.2:7".parse().unwrap()),
            Plan::Connect { .. } => panic!("a listener"),
        }
        match plan(&["-s", "192.0.2.2", "-p", "4000", "192.0.2.1", "7"]).unwrap() {
            Plan::Connect { local, .. } => {
                assert_eq!(local, Some("192.0.2.2:4000".parse().unwrap()))
            }
            Plan::Listen { .. } => panic!("a client"),
        }
        match plan(&["-p", "4000", "[2001:db8::1]", "7"]).unwrap() {
            Plan::Connect { local, host, .. } => {
                assert_eq!(local, Some("[::]:4000".parse().unwrap()));
                assert_eq!(host, "2001:db8::1".parse::<IpAddr>().unwrap());
            }
            Plan::Listen { .. } => panic!("a client"),
        }
    }

    #[test]
    fn bad_combinations_say_what_is_wrong() {
        let err = |a: &[&str]| plan(a).err().expect("refused").to_string();
        assert_eq!(err(&["-l", "-z", "7"]), "cannot use -z and -l");
        assert_eq!(err(&["-k", "192.0.2.1", "7"]), "must use -l with -k");
        assert!(err(&["-l"]).contains("-l needs a port"));
        assert!(err(&["-l", "20-25"]).contains("port range"));
        assert!(err(&["192.0.2.1"]).starts_with("usage:"));
        assert!(err(&["-6", "192.0.2.1", "7"]).contains("not an IPv6 address"));
        assert!(err(&["-s", "2001:db8::2", "192.0.2.1", "7"]).contains("different families"));
        assert!(err(&["example.org", "7"]).contains("resolves no names"));
    }

    #[test]
    fn strerror_reads_like_libc() {
        let e = berth_core::error::error(berth_core::error::code::ECONNREFUSED, "refused by peer");
        assert_eq!(strerror(&e), "Connection refused");
        let e = berth_core::error::error(berth_core::error::code::ENETUNREACH, "no route");
        assert_eq!(strerror(&e), "Network is unreachable");
    }
}
