//! The server's side (iperf_server_api.c): one test at a time on the listening
//! port; a control connection that comes while a test runs is told
//! ACCESS_DENIED. Each test: cookie, PARAM_EXCHANGE, CREATE_STREAMS (TCP
//! streams on the same port, each proving the cookie; UDP streams on the same
//! port number, each saying hello), TEST_START, TEST_RUNNING, then at the
//! client's TEST_END the results exchange and DISPLAY_RESULTS.

use super::client::stream_result;
use super::proto::{self, Params, Results, State, COOKIE_SIZE};
use super::report::{Finish, Report, Role};
use super::stream::{self, Flags, Sock, Stream};
use super::{Cpu, Deadline, CONTROL_WAIT, POLL};
use crate::tun;
use berth::{Domain, Socket, Stack, TcpListener, TcpStream, Type, UdpSocket};
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Opts {
    pub port: u16,
    pub interval: f64,
    pub json: bool,
    pub one_off: bool,
    /// Print nothing (the `--sim` server: the client speaks for the run).
    pub quiet: bool,
}

/// A grace period past -t before a silent client's test is dropped
/// (iperf3's server timer: duration + 4 s × 10 state transitions).
const GRACE: Duration = Duration::from_secs(40);

/// iperf3's error numbers sent with SERVER_ERROR: IEUNIMP (not implemented),
/// IESTREAMLISTEN (cannot start listening for streams).
const IEUNIMP: i32 = 13;
const IESTREAMLISTEN: i32 = 114;

/// The listening socket on [::]:port (dual-stack, so IPv4 clients come too).
pub fn listen(stack: &Stack, port: u16) -> io::Result<TcpListener> {
    let s = Socket::new(stack, Domain::IPV6, Type::STREAM, None)?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    let at: SocketAddr = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port);
    s.bind(&at).and_then(|()| s.listen(128)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("unable to start listener on port {port}: {e}"),
        )
    })?;
    s.set_nonblocking(true)?;
    Ok(TcpListener::from(s))
}

/// `berth perf -s`.
pub fn run(stack: &Stack, o: &Opts) -> io::Result<()> {
    let l = listen(stack, o.port)?;
    serve(stack, l, o)
}

/// Serve tests on `l` until Ctrl-C (or after one with -1).
pub fn serve(stack: &Stack, l: TcpListener, o: &Opts) -> io::Result<()> {
    let mut number = 0u64;
    loop {
        number += 1;
        if !o.json && !o.quiet {
            println!("-----------------------------------------------------------");
            println!("Server listening on {} (test #{number})", o.port);
            println!("-----------------------------------------------------------");
        }
        let (ctrl, from) = loop {
            if tun::stop_requested() {
                return Err(super::interrupted());
            }
            match l.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(e) => return Err(e),
            }
        };
        let mut t = Test::new(o, from);
        let r = t.run(stack, &l, ctrl);
        stream::stop_all(&mut t.streams, &t.flags, t.demux.take());
        if o.json && !o.quiet && t.began {
            let end = t.report.summary(&t.streams, t.last, &t.finish());
            let err = r.as_ref().err().map(|e| e.to_string());
            println!(
                "{}",
                serde_json::to_string_pretty(&t.report.document(end, err.as_deref()))
                    .unwrap_or_default()
            );
        }
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) if o.one_off => return Err(e),
            Err(e) => {
                if !o.quiet {
                    eprintln!("berth perf: error - {e}");
                }
            }
        }
        if o.one_off {
            return Ok(());
        }
    }
}

struct Test {
    report: Report,
    from: SocketAddr,
    params: Params,
    flags: Arc<Flags>,
    streams: Vec<Stream>,
    demux: Option<JoinHandle<()>>,
    block: usize,
    began: bool,
    last: f64,
    ended: bool,
    cpu: Option<Cpu>,
    cpu_end: [f64; 3],
    congestion: Option<String>,
    peer: Option<Results>,
}

impl Test {
    fn new(o: &Opts, from: SocketAddr) -> Test {
        Test {
            report: Report::new(o.json || o.quiet, Role::Server, o.interval),
            from,
            params: Params::default(),
            flags: Arc::new(Flags::default()),
            streams: Vec::new(),
            demux: None,
            block: 0,
            began: false,
            last: 0.0,
            ended: false,
            cpu: None,
            cpu_end: [0.0; 3],
            congestion: None,
            peer: None,
        }
    }

    fn finish(&self) -> Finish {
        Finish {
            peer: self.peer.clone(),
            sender_has_retransmits: if self.params.reverse {
                !self.params.udp
            } else {
                self.peer
                    .as_ref()
                    .is_some_and(|p| p.sender_has_retransmits == 1)
            },
            cpu: self.cpu_end,
            congestion: self.congestion.clone(),
        }
    }

    fn run(&mut self, stack: &Stack, l: &TcpListener, ctrl: TcpStream) -> io::Result<()> {
        ctrl.set_nodelay(true)?;
        ctrl.set_read_timeout(Some(POLL))?;
        let mut cookie = [0u8; COOKIE_SIZE];
        Deadline {
            s: &ctrl,
            until: Instant::now() + CONTROL_WAIT,
        }
        .read_exact(&mut cookie)?;
        let from = self.from;
        self.report.say(format!(
            "Accepted connection from {}, port {}",
            unmapped(from).ip(),
            from.port()
        ));
        let mss = super::maxseg(stack, ctrl.handle());
        {
            let s = &mut self.report.start;
            s.insert("version".into(), json!(proto::VERSION));
            s.insert("system_info".into(), json!(super::system_info()));
            s.insert("timestamp".into(), super::timestamp());
            s.insert(
                "accepted_connection".into(),
                json!({"host": unmapped(from).ip().to_string(), "port": from.port()}),
            );
            s.insert("cookie".into(), json!(proto::cookie_text(&cookie)));
            s.insert("tcp_mss_default".into(), json!(mss));
        }
        super::send_state(&ctrl, State::ParamExchange)?;
        let m = proto::read_json(&mut Deadline {
            s: &ctrl,
            until: Instant::now() + CONTROL_WAIT,
        })?;
        let params = match Params::from_json(&m).and_then(|p| {
            if p.bidirectional {
                Err(io::Error::other(
                    "bidirectional tests (--bidir) are not supported by berth perf",
                ))
            } else {
                Ok(p)
            }
        }) {
            Ok(p) => p,
            Err(e) => {
                server_error(&ctrl, IEUNIMP);
                return Err(e);
            }
        };
        self.params = params.clone();
        self.report.udp = params.udp;
        self.report.sender_has_retransmits = params.reverse && !params.udp;
        self.block = params.block(if mss > 0 {
            mss
        } else {
            proto::DEFAULT_UDP_BLOCK
        });
        self.report
            .start
            .insert("target_bitrate".into(), json!(params.rate()));
        // Options for the data streams go on the listener, which the
        // streams' sockets inherit them from (iperf3 makes a new listener).
        if !params.udp {
            let ls = l.handle();
            let set = || -> io::Result<()> {
                if params.window > 0 {
                    let w = params.window as usize;
                    stack.with_core(|c, _| c.tcp_set_buffers(ls, Some(w), Some(w)))?;
                }
                if params.mss > 0 {
                    super::set_maxseg(stack, ls, params.mss as u16)?;
                }
                Ok(())
            };
            if let Err(e) = set() {
                server_error(&ctrl, IESTREAMLISTEN);
                return Err(e);
            }
        }
        let udp = if params.udp {
            match udp_listen(stack, l.local_addr()?.port(), params.window) {
                Ok(u) => Some(Arc::new(u)),
                Err(e) => {
                    server_error(&ctrl, IESTREAMLISTEN);
                    return Err(e);
                }
            }
        } else {
            None
        };
        super::send_state(&ctrl, State::CreateStreams)?;
        match &udp {
            Some(u) => self.accept_udp(u, unmapped(ctrl.local_addr()?).ip())?,
            None => self.accept_tcp(stack, l, &cookie)?,
        }
        let p = &self.params;
        self.report.start.insert(
            "test_start".into(),
            json!({"protocol": if p.udp { "UDP" } else { "TCP" }, "num_streams": p.parallel,
                "blksize": self.block, "omit": 0, "duration": p.time, "bytes": p.bytes,
                "blocks": p.blocks, "reverse": u8::from(p.reverse), "tos": 0,
                "target_bitrate": p.rate()}),
        );
        super::send_state(&ctrl, State::TestStart)?;
        self.begin(udp)?;
        super::send_state(&ctrl, State::TestRunning)?;
        self.running(l, &ctrl)
    }

    /// TCP streams: connections on the listener that start with our cookie.
    fn accept_tcp(
        &mut self,
        stack: &Stack,
        l: &TcpListener,
        cookie: &[u8; COOKIE_SIZE],
    ) -> io::Result<()> {
        let until = Instant::now() + CONTROL_WAIT;
        while (self.streams.len() as u64) < self.params.parallel {
            if tun::stop_requested() {
                return Err(super::interrupted());
            }
            let (t, peer) = match l.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client did not open its streams",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => return Err(e),
            };
            t.set_read_timeout(Some(POLL))?;
            let mut theirs = [0u8; COOKIE_SIZE];
            let got = Deadline {
                s: &t,
                until: Instant::now() + Duration::from_secs(5),
            }
            .read_exact(&mut theirs);
            if got.is_err() || theirs != *cookie {
                // Someone else's connection: turn it away, as iperf3 does.
                let _ = (&t).write_all(&[State::AccessDenied.byte()]);
                continue;
            }
            if self.params.nodelay {
                t.set_nodelay(true)?;
            }
            if let Some(c) = &self.params.congestion {
                if let Err(e) = super::set_congestion(stack, t.handle(), c) {
                    // As iperf3: a warning, and the test goes on.
                    if e.kind() == io::ErrorKind::NotFound {
                        if !self.report.json {
                            eprintln!("warning: TCP congestion control algorithm not supported");
                        }
                    } else {
                        return Err(e);
                    }
                }
            }
            self.congestion = super::congestion(stack, t.handle());
            let local = unmapped(t.local_addr()?);
            let i = self.streams.len();
            let s = Stream::new(
                i,
                self.params.reverse,
                Sock::Tcp(Arc::new(t)),
                local,
                unmapped(peer),
            );
            self.report.connected(&s);
            self.streams.push(s);
        }
        Ok(())
    }

    /// UDP streams: each announces itself with a datagram from its own port;
    /// we answer each (UDP_CONNECT_REPLY) and tell them apart by address.
    fn accept_udp(&mut self, u: &Arc<UdpSocket>, ip: std::net::IpAddr) -> io::Result<()> {
        u.set_read_timeout(Some(POLL))?;
        let until = Instant::now() + CONTROL_WAIT;
        let local = SocketAddr::new(ip, u.local_addr()?.port());
        let mut buf = [0u8; 64];
        while (self.streams.len() as u64) < self.params.parallel {
            if tun::stop_requested() {
                return Err(super::interrupted());
            }
            let peer = match u.recv_from(&mut buf) {
                Ok((_, peer)) => peer,
                Err(e) => {
                    super::keep_waiting(e, until, "the client did not open its UDP streams")?;
                    continue;
                }
            };
            let known = self
                .streams
                .iter()
                .any(|s| matches!(&s.sock, Sock::Udp(_, p) if *p == peer));
            if peer.ip() != self.from.ip() || known {
                continue;
            }
            u.send_to(&proto::UDP_CONNECT_REPLY, peer)?;
            let i = self.streams.len();
            let s = Stream::new(
                i,
                self.params.reverse,
                Sock::Udp(u.clone(), peer),
                local,
                unmapped(peer),
            );
            self.report.connected(&s);
            self.streams.push(s);
        }
        Ok(())
    }

    fn begin(&mut self, udp: Option<Arc<UdpSocket>>) -> io::Result<()> {
        self.flags.counting.store(true, Ordering::SeqCst);
        self.cpu = Some(Cpu::start());
        self.began = true;
        let (block, rate, wide) = (
            self.block,
            self.params.rate(),
            self.params.udp_counters_64bit,
        );
        match udp {
            Some(u) if !self.params.reverse => {
                let all: Vec<&Stream> = self.streams.iter().collect();
                self.demux = Some(stream::start_udp_demux(u, &all, &self.flags, wide)?);
            }
            _ => {
                for s in &mut self.streams {
                    stream::start(s, &self.flags, block, rate, wide)?;
                }
            }
        }
        Ok(())
    }

    fn running(&mut self, l: &TcpListener, ctrl: &TcpStream) -> io::Result<()> {
        let t0 = Instant::now();
        let limit = (self.params.time > 0).then(|| Duration::from_secs(self.params.time) + GRACE);
        loop {
            if tun::stop_requested() {
                let _ = super::send_state(ctrl, State::ServerTerminate);
                self.stop(t0);
                self.summary();
                return Err(super::interrupted());
            }
            // A second client while this test runs: busy.
            if let Ok((other, _)) = l.accept() {
                let _ = (&other).write_all(&[State::AccessDenied.byte()]);
            }
            let now = t0.elapsed();
            if limit.is_some_and(|lim| now > lim) {
                self.stop(t0);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client never ended the test",
                ));
            }
            if !self.ended {
                let secs = now.as_secs_f64();
                if self.report.interval > 0.0 && secs - self.last >= self.report.interval {
                    let end = self.last + self.report.interval;
                    self.report.interval(&mut self.streams, self.last, end);
                    self.last = end;
                }
            }
            let b = match super::poll_state(ctrl) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.stop(t0);
                    if self.ended {
                        return Ok(());
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        "the client has unexpectedly closed the connection",
                    ));
                }
                Err(e) => return Err(e),
            };
            match proto::state_of(b)? {
                State::TestEnd => {
                    self.stop(t0);
                    super::send_state(ctrl, State::ExchangeResults)?;
                    let peer = proto::read_json(&mut Deadline {
                        s: ctrl,
                        until: Instant::now() + CONTROL_WAIT,
                    })?;
                    self.peer = Some(Results::from_json(&peer)?);
                    proto::write_json(&mut &*ctrl, &self.results().to_json())?;
                    super::send_state(ctrl, State::DisplayResults)?;
                    self.summary();
                }
                State::IperfDone => return Ok(()),
                State::ClientTerminate => {
                    self.stop(t0);
                    self.summary();
                    return Err(io::Error::other("the client has terminated"));
                }
                State::TestStart => {}
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the client sent an unexpected control message ({other:?})"),
                    ))
                }
            }
        }
    }

    /// The test's end: stop counting, take the last interval, stop the threads
    /// and close the streams.
    fn stop(&mut self, t0: Instant) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.flags.counting.store(false, Ordering::SeqCst);
        let now = t0.elapsed().as_secs_f64();
        self.report.interval(&mut self.streams, self.last, now);
        self.last = now;
        self.cpu_end = self.cpu.as_ref().map_or([0.0; 3], Cpu::percent);
        stream::stop_all(&mut self.streams, &self.flags, self.demux.take());
        for s in &self.streams {
            if let Sock::Tcp(t) = &s.sock {
                let _ = t.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn summary(&self) {
        if !self.report.json {
            self.report
                .summary(&self.streams, self.last, &self.finish());
        }
    }

    fn results(&self) -> Results {
        let has_retr = self.params.reverse && !self.params.udp;
        Results {
            cpu_total: self.cpu_end[0],
            cpu_user: self.cpu_end[1],
            cpu_system: self.cpu_end[2],
            sender_has_retransmits: if self.params.reverse {
                i64::from(has_retr)
            } else {
                -1
            },
            congestion_used: self.congestion.clone(),
            streams: self
                .streams
                .iter()
                .map(|s| stream_result(s, self.last, has_retr))
                .collect(),
        }
    }
}

/// SERVER_ERROR, then iperf3's error number and errno (both big-endian).
fn server_error(ctrl: &TcpStream, ierr: i32) {
    let mut msg = vec![State::ServerError.byte()];
    msg.extend_from_slice(&ierr.to_be_bytes());
    msg.extend_from_slice(&0i32.to_be_bytes());
    let _ = (&*ctrl).write_all(&msg);
}

/// The UDP socket of a test's streams, on the server's port (dual-stack).
fn udp_listen(stack: &Stack, port: u16, window: u64) -> io::Result<UdpSocket> {
    let s = Socket::new(stack, Domain::IPV6, Type::DGRAM, None)?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    if window > 0 {
        s.set_recv_buffer_size(window as usize)?;
        s.set_send_buffer_size(window as usize)?;
    }
    s.bind(&SocketAddr::new(
        std::net::Ipv6Addr::UNSPECIFIED.into(),
        port,
    ))
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("unable to listen for UDP streams on port {port}: {e}"),
        )
    })?;
    Ok(UdpSocket::from(s))
}

/// An IPv4-mapped address as the IPv4 one (iperf3's mapped_v4_to_regular_v4).
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => a,
        },
        v4 => v4,
    }
}
