//! `berth nc`: TCP and UDP client and listener over a berth host on a TUN
//! device, piping stdin to the peer and the peer to stdout, like OpenBSD nc.
//!
//! TCP: when stdin ends, our side is shut down for writing (half-close, as
//! OpenBSD `nc -N`); we exit when the peer closes. UDP: each read from stdin
//! is one datagram; a listener answers the first peer that writes to it; with
//! `-w` we exit after that long without traffic once stdin has ended.

use crate::ping::HostArgs;
use crate::tun;
use berth::{TcpListener, TcpStream, UdpSocket};
use clap::Args;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct NcArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Listen for one incoming connection (or the first UDP peer).
    #[arg(short = 'l')]
    listen: bool,
    /// UDP instead of TCP.
    #[arg(short = 'u')]
    udp: bool,
    /// IPv4 only (the default for a listener without an address).
    #[arg(short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 only: a listener without an address listens on [::].
    #[arg(short = '6')]
    ipv6: bool,
    /// Local port (with -l: the port to listen on).
    #[arg(short = 'p', value_name = "PORT")]
    port: Option<u16>,
    /// Connect timeout, and for UDP the idle time after stdin ends before exiting.
    #[arg(short = 'w', value_name = "SECS")]
    wait: Option<u64>,
    /// [host] port: where to connect, or with -l the address and port to listen on.
    #[arg(value_name = "ARGS", num_args = 0..=2)]
    rest: Vec<String>,
}

/// Where to connect or listen, from the positional arguments and -p.
struct Target {
    host: Option<IpAddr>,
    port: u16,
}

fn parse_port(s: &str) -> io::Result<u16> {
    s.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| invalid(format!("'{s}' is not a port number (1..65535)")))
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

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// [`target_args`], checked against -4 / -6.
fn target(a: &NcArgs) -> io::Result<Target> {
    let t = target_args(a)?;
    if let Some(h) = t.host {
        if (a.ipv4 && h.is_ipv6()) || (a.ipv6 && h.is_ipv4()) {
            return Err(invalid(format!(
                "{h} is not an IPv{} address; drop -{} or give an address of that family",
                if a.ipv6 { 6 } else { 4 },
                if a.ipv6 { 6 } else { 4 },
            )));
        }
    }
    Ok(t)
}

/// The wildcard address of the family -6 / -4 (or the peer `host`) selects.
fn wildcard(a: &NcArgs, host: Option<IpAddr>) -> IpAddr {
    match host {
        Some(IpAddr::V6(_)) => Ipv6Addr::UNSPECIFIED.into(),
        Some(IpAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
        None if a.ipv6 => Ipv6Addr::UNSPECIFIED.into(),
        None => Ipv4Addr::UNSPECIFIED.into(),
    }
}

fn target_args(a: &NcArgs) -> io::Result<Target> {
    match (a.listen, a.rest.as_slice()) {
        (true, []) => match a.port {
            Some(port) => Ok(Target { host: None, port }),
            None => Err(invalid(
                "-l needs a port: berth nc -l -p PORT (or -l PORT)".into(),
            )),
        },
        (true, [p]) => Ok(Target {
            host: None,
            port: parse_port(p)?,
        }),
        (true, [h, p]) => Ok(Target {
            host: Some(parse_host(h)?),
            port: parse_port(p)?,
        }),
        (false, [h, p]) => Ok(Target {
            host: Some(parse_host(h)?),
            port: parse_port(p)?,
        }),
        _ => Err(invalid(
            "usage: berth nc [-u] HOST PORT, or berth nc -l [-u] [-p] PORT".into(),
        )),
    }
}

pub fn run(a: NcArgs) -> io::Result<()> {
    let t = target(&a)?;
    if let Some(h) = t.host.filter(|_| !a.listen) {
        a.host.check_reach(h)?;
    }
    let (stack, _dev) = a.host.start()?;
    let wait = a.wait.map(Duration::from_secs).filter(|d| !d.is_zero());
    let proto = if a.udp { "udp" } else { "tcp" };
    let result = match (a.listen, a.udp) {
        (false, false) => {
            let host = t.host.unwrap_or(wildcard(&a, None));
            let dst = SocketAddr::new(host, t.port);
            let s = match wait {
                Some(w) => TcpStream::connect_timeout(&stack, &dst, w),
                None => TcpStream::connect(&stack, dst),
            }
            .map_err(|e| connect_error(e, host, t.port, proto))?;
            pipe_tcp(s)
        }
        (true, false) => {
            let bind = SocketAddr::new(t.host.unwrap_or(wildcard(&a, None)), t.port);
            let l = TcpListener::bind(&stack, bind)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {bind}: {e}")))?;
            let (s, from) = l.accept()?;
            eprintln!("Connection received on {from}");
            drop(l);
            pipe_tcp(s)
        }
        (false, true) => {
            let host = t.host.unwrap_or(wildcard(&a, None));
            let local = SocketAddr::new(wildcard(&a, Some(host)), a.port.unwrap_or(0));
            let s = UdpSocket::bind(&stack, local)?;
            let peer = SocketAddr::new(host, t.port);
            s.connect(peer)
                .map_err(|e| connect_error(e, host, t.port, proto))?;
            pipe_udp(s, Some(peer), wait)
        }
        (true, true) => {
            let bind = SocketAddr::new(t.host.unwrap_or(wildcard(&a, None)), t.port);
            let s = UdpSocket::bind(&stack, bind)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {bind}: {e}")))?;
            pipe_udp(s, None, wait)
        }
    };
    let _ = io::stdout().flush();
    result
}

fn connect_error(e: io::Error, host: IpAddr, port: u16, proto: &str) -> io::Error {
    let why = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_string(),
        _ => e.to_string(),
    };
    io::Error::new(
        e.kind(),
        format!("connect to {host} port {port} ({proto}) failed: {why}"),
    )
}

/// stdin → stream (then half-close) in a thread; stream → stdout here.
fn pipe_tcp(s: TcpStream) -> io::Result<()> {
    let w = s.try_clone()?;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _done = done_tx;
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if (&w).write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = w.shutdown(Shutdown::Write);
    });
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match (&s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => match out.write_all(&buf[..n]) {
                Ok(()) => {}
                // The reader of our stdout went away (`| head`): done, quietly.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.flush()?;
    // The peer is done. Let input already on its way (a pipe's contents) go
    // out, but do not wait on an interactive stdin forever.
    let _ = done_rx.recv_timeout(Duration::from_secs(2));
    Ok(())
}

/// Shared between the stdin thread and the receiving loop.
#[derive(Default)]
struct UdpState {
    peer: Option<SocketAddr>,
    stdin_done: bool,
    last_activity: Option<Instant>,
}

fn pipe_udp(s: UdpSocket, peer: Option<SocketAddr>, wait: Option<Duration>) -> io::Result<()> {
    let s = Arc::new(s);
    let state = Arc::new((
        Mutex::new(UdpState {
            peer,
            last_activity: Some(Instant::now()),
            ..UdpState::default()
        }),
        Condvar::new(),
    ));
    {
        let (s, state) = (s.clone(), state.clone());
        std::thread::spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; 65_507];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // A listener learns its peer from the first datagram; wait for it.
                let (lock, cv) = &*state;
                let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                while st.peer.is_none() {
                    st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                let peer = st.peer;
                st.last_activity = Some(Instant::now());
                drop(st);
                if let Some(p) = peer {
                    if let Err(e) = s.send_to(&buf[..n], p) {
                        eprintln!("berth nc: send to {p}: {e}");
                    }
                }
            }
            let (lock, _) = &*state;
            let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
            st.stdin_done = true;
            st.last_activity = Some(Instant::now());
        });
    }
    let mut buf = vec![0u8; 65_536];
    let mut out = io::stdout().lock();
    loop {
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        match s.recv_from(&mut buf) {
            Ok((n, from)) => {
                let (lock, cv) = &*state;
                let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                match st.peer {
                    None => {
                        st.peer = Some(from);
                        eprintln!("Connection received on {from}");
                        cv.notify_all();
                    }
                    // Like a connected socket: ignore anyone else.
                    Some(p) if p != from => continue,
                    Some(_) => {}
                }
                st.last_activity = Some(Instant::now());
                drop(st);
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                let (lock, _) = &*state;
                let st = lock.lock().unwrap_or_else(|p| p.into_inner());
                let idle = st.last_activity.map(|t| t.elapsed()).unwrap_or_default();
                if st.stdin_done && wait.is_some_and(|w| idle >= w) {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                // ICMP port unreachable for an earlier datagram, as nc reports it.
                return Err(io::Error::new(e.kind(), "connection refused by peer"));
            }
            Err(e) => return Err(e),
        }
        if tun::stop_requested() {
            return Ok(());
        }
    }
}
