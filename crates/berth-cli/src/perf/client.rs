//! The client's side of a test (iperf_client_api.c): connect, send the cookie
//! and the parameters, open the streams, run until -t or -n is reached, say
//! TEST_END, exchange results, print.

use super::proto::{self, Params, Results, State, StreamResult};
use super::report::{Finish, Report, Role};
use super::stream::{self, Flags, Sock, Stream};
use super::{Cpu, Deadline, CONTROL_WAIT, POLL};
use crate::tun;
use berth::{Domain, Socket, Stack, TcpStream, Type, UdpSocket};
use serde_json::json;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

pub struct Opts {
    pub host: IpAddr,
    pub port: u16,
    pub params: Params,
    pub interval: f64,
    pub json: bool,
}

/// Where the test stands.
struct Run {
    report: Report,
    params: Params,
    flags: Arc<Flags>,
    streams: Vec<Stream>,
    block: usize,
    started: Option<Instant>,
    /// Seconds from the start to the last stats sample.
    last: f64,
    /// The test's end (TEST_END sent), seconds from the start.
    ended: Option<f64>,
    cpu: Option<Cpu>,
    cpu_end: [f64; 3],
    congestion: Option<String>,
    peer: Option<Results>,
}

pub fn run(stack: &Stack, o: &Opts) -> io::Result<()> {
    let mut r = Run {
        report: Report::new(o.json, Role::Client, o.interval),
        params: o.params.clone(),
        flags: Arc::new(Flags::default()),
        streams: Vec::new(),
        block: 0,
        started: None,
        last: 0.0,
        ended: None,
        cpu: None,
        cpu_end: [0.0; 3],
        congestion: None,
        peer: None,
    };
    r.report.udp = o.params.udp;
    r.report.sender_has_retransmits = !o.params.udp && !o.params.reverse;
    let result = test(stack, o, &mut r);
    stream::stop_all(&mut r.streams, &r.flags, None);
    match result {
        Ok(()) => {
            if o.json {
                let end = r.report.summary(&r.streams, r.last, &finish(&r));
                println!("{}", pretty(&r.report.document(end, None)));
            }
            Ok(())
        }
        Err(e) => {
            if o.json {
                // As iperf3 -J: the document so far, with the error in it.
                let end = if r.started.is_some() {
                    r.report.summary(&r.streams, r.last, &finish(&r))
                } else {
                    json!({})
                };
                let msg = e.to_string();
                println!("{}", pretty(&r.report.document(end, Some(&msg))));
            }
            Err(e)
        }
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn finish(r: &Run) -> Finish {
    let peer_retr = r
        .peer
        .as_ref()
        .is_some_and(|p| p.sender_has_retransmits == 1);
    Finish {
        peer: r.peer.clone(),
        sender_has_retransmits: if r.params.reverse {
            peer_retr
        } else {
            !r.params.udp
        },
        cpu: r.cpu_end,
        congestion: r.congestion.clone(),
    }
}

fn test(stack: &Stack, o: &Opts, r: &mut Run) -> io::Result<()> {
    let dst = SocketAddr::new(o.host, o.port);
    let seed = berth::os_seed();
    let cookie = proto::make_cookie(seed);
    {
        let s = &mut r.report.start;
        s.insert("version".into(), json!(proto::VERSION));
        s.insert("system_info".into(), json!(super::system_info()));
    }
    r.report
        .say(format!("Connecting to host {}, port {}", o.host, o.port));
    if o.params.reverse {
        r.report
            .say(format!("Reverse mode, remote host {} is sending", o.host));
    }
    let ctrl = TcpStream::connect_timeout(stack, &dst, CONTROL_WAIT)
        .map_err(|e| io::Error::new(e.kind(), format!("unable to connect to server: {e}")))?;
    ctrl.set_nodelay(true)?;
    (&ctrl).write_all(&cookie)?;
    ctrl.set_read_timeout(Some(POLL))?;
    let mss = super::maxseg(stack, ctrl.handle());
    r.block = r.params.block(if mss > 0 {
        mss
    } else {
        proto::DEFAULT_UDP_BLOCK
    });
    // iperf3's client always names the block size (the server's own default
    // would be 128 KiB, too big for a UDP datagram).
    r.params.len = r.block as u64;
    {
        let s = &mut r.report.start;
        s.insert("timestamp".into(), super::timestamp());
        s.insert(
            "connecting_to".into(),
            json!({"host": o.host.to_string(), "port": o.port}),
        );
        s.insert("cookie".into(), json!(proto::cookie_text(&cookie)));
        if !r.params.udp {
            if r.params.mss > 0 {
                s.insert("tcp_mss".into(), json!(r.params.mss));
            } else {
                s.insert("tcp_mss_default".into(), json!(mss));
            }
        }
        s.insert("target_bitrate".into(), json!(r.params.rate()));
    }
    loop {
        if tun::stop_requested() {
            return interrupted(&ctrl, r);
        }
        if let Some(t0) = r.started.filter(|_| r.ended.is_none()) {
            tick(&ctrl, r, t0)?;
        }
        let Some(b) = super::poll_state(&ctrl).map_err(lost)? else {
            continue;
        };
        match proto::state_of(b)? {
            State::ParamExchange => {
                proto::write_json(&mut &ctrl, &r.params.to_json())?;
            }
            State::CreateStreams => create_streams(stack, dst, &cookie, r)?,
            State::TestStart => {
                let p = &r.params;
                r.report.start.insert(
                    "test_start".into(),
                    json!({"protocol": if p.udp { "UDP" } else { "TCP" },
                        "num_streams": p.parallel, "blksize": r.block, "omit": 0,
                        "duration": p.time, "bytes": p.bytes, "blocks": p.blocks,
                        "reverse": u8::from(p.reverse), "tos": 0,
                        "target_bitrate": p.rate()}),
                );
            }
            State::TestRunning => {
                if r.started.is_none() {
                    begin(r)?;
                }
            }
            State::ExchangeResults => {
                // A receiver drained its streams until now.
                stream::stop_all(&mut r.streams, &r.flags, None);
                let mine = results(r);
                proto::write_json(&mut &ctrl, &mine.to_json())?;
                let peer = proto::read_json(&mut Deadline {
                    s: &ctrl,
                    until: Instant::now() + CONTROL_WAIT,
                })?;
                r.peer = Some(Results::from_json(&peer)?);
            }
            State::DisplayResults => {
                if !r.report.json {
                    r.report.summary(&r.streams, r.last, &finish(r));
                }
                let _ = super::send_state(&ctrl, State::IperfDone);
                r.report.say("");
                r.report.say("iperf Done.");
                return Ok(());
            }
            State::IperfDone => {}
            State::AccessDenied => {
                return Err(io::Error::other(
                    "the server is busy running a test. try again later",
                ))
            }
            State::ServerError => {
                let mut codes = [0u8; 8];
                io::Read::read_exact(
                    &mut Deadline {
                        s: &ctrl,
                        until: Instant::now() + CONTROL_WAIT,
                    },
                    &mut codes,
                )?;
                let ierr = i32::from_be_bytes([codes[0], codes[1], codes[2], codes[3]]);
                let errno = i32::from_be_bytes([codes[4], codes[5], codes[6], codes[7]]);
                return Err(io::Error::other(format!(
                    "the server reported an error (iperf3 error {ierr}, errno {errno})"
                )));
            }
            State::ServerTerminate => {
                stop_and_sample(r);
                if !r.report.json {
                    r.report.summary(&r.streams, r.last, &finish(r));
                }
                return Err(io::Error::other("the server has terminated"));
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server sent an unexpected control message ({other:?})"),
                ))
            }
        }
    }
}

/// A closed control connection, worded as iperf3 words it.
fn lost(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            e.kind(),
            "the server has unexpectedly closed the connection",
        )
    } else {
        e
    }
}

/// Ctrl-C: tell the server (CLIENT_TERMINATE), print what we have.
fn interrupted(ctrl: &TcpStream, r: &mut Run) -> io::Result<()> {
    let _ = super::send_state(ctrl, State::ClientTerminate);
    if r.started.is_some() {
        stop_and_sample(r);
        if !r.report.json {
            r.report.summary(&r.streams, r.last, &finish(r));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        "interrupt - the client has terminated",
    ))
}

/// Stop counting and take the last interval.
fn stop_and_sample(r: &mut Run) {
    r.flags.counting.store(false, Ordering::SeqCst);
    if let (Some(t0), None) = (r.started, r.ended) {
        let now = t0.elapsed().as_secs_f64();
        r.report.interval(&mut r.streams, r.last, now);
        r.last = now;
        r.ended = Some(now);
        r.cpu_end = r.cpu.as_ref().map_or([0.0; 3], Cpu::percent);
    }
}

fn create_streams(stack: &Stack, dst: SocketAddr, cookie: &[u8], r: &mut Run) -> io::Result<()> {
    let p = r.params.clone();
    for i in 0..p.parallel as usize {
        let sender = !p.reverse;
        let s = if p.udp {
            let sock = Socket::new(stack, Domain::for_address(dst), Type::DGRAM, None)?;
            if p.window > 0 {
                sock.set_send_buffer_size(p.window as usize)?;
                sock.set_recv_buffer_size(p.window as usize)?;
            }
            let u = UdpSocket::from(sock);
            u.connect(dst)?;
            udp_handshake(&u, r.block)?;
            let local = u.local_addr()?;
            Stream::new(i, sender, Sock::Udp(Arc::new(u), dst), local, dst)
        } else {
            let sock = Socket::new(stack, Domain::for_address(dst), Type::STREAM, None)?;
            if p.window > 0 {
                sock.set_send_buffer_size(p.window as usize)?;
                sock.set_recv_buffer_size(p.window as usize)?;
            }
            if p.mss > 0 {
                super::set_maxseg(stack, sock.handle(), p.mss as u16)?;
            }
            if p.nodelay {
                sock.set_nodelay(true)?;
            }
            if let Some(c) = &p.congestion {
                sock.set_congestion(c)?;
            }
            r.congestion = Some(sock.congestion()?);
            sock.connect_timeout(&dst, CONTROL_WAIT)
                .map_err(|e| io::Error::new(e.kind(), format!("unable to connect stream: {e}")))?;
            let t = TcpStream::from(sock);
            (&t).write_all(cookie)?;
            let local = t.local_addr()?;
            Stream::new(i, sender, Sock::Tcp(Arc::new(t)), local, dst)
        };
        r.report.connected(&s);
        r.streams.push(s);
    }
    if !p.udp {
        let sb = r.streams.first().and_then(|s| match &s.sock {
            Sock::Tcp(t) => t.tcp_info().ok().map(|i| (i.snd_wnd, i.rcv_wnd)),
            Sock::Udp(..) => None,
        });
        let st = &mut r.report.start;
        st.insert("sock_bufsize".into(), json!(p.window));
        if let Some((snd, rcv)) = sb {
            st.insert("sndbuf_actual".into(), json!(snd));
            st.insert("rcvbuf_actual".into(), json!(rcv));
        }
    }
    Ok(())
}

/// The UDP stream's hello: our 4 bytes, the server's 4 bytes back. In reverse
/// mode a couple of data datagrams may overtake the answer (iperf3 allows for
/// MAX_REVERSE_OUT_OF_ORDER_PACKETS of them).
fn udp_handshake(u: &UdpSocket, block: usize) -> io::Result<()> {
    u.send(&proto::UDP_CONNECT_MSG)?;
    u.set_read_timeout(Some(POLL))?;
    let until = Instant::now() + CONTROL_WAIT;
    let mut buf = vec![0u8; block.max(64)];
    let mut seen = 0usize;
    loop {
        match u.recv(&mut buf) {
            Ok(n) if proto::is_udp_connect_reply(&buf[..n]) => return Ok(()),
            Ok(n) => {
                seen += n;
                if seen > 4 + 2 * block {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server did not answer the UDP stream's hello",
                    ));
                }
            }
            Err(e) => super::keep_waiting(e, until, "no answer to the UDP stream's hello")?,
        }
    }
}

/// TEST_RUNNING: count from now and start every stream's thread.
fn begin(r: &mut Run) -> io::Result<()> {
    let p = &r.params;
    r.flags
        .limit
        .store(if p.reverse { 0 } else { p.bytes }, Ordering::SeqCst);
    r.flags.counting.store(true, Ordering::SeqCst);
    r.cpu = Some(Cpu::start());
    r.started = Some(Instant::now());
    let (block, rate, wide) = (r.block, p.rate(), p.udp_counters_64bit);
    for s in &mut r.streams {
        stream::start(s, &r.flags, block, rate, wide)?;
    }
    Ok(())
}

/// While running: interval lines, and the end of the test by time or bytes.
fn tick(ctrl: &TcpStream, r: &mut Run, t0: Instant) -> io::Result<()> {
    let now = t0.elapsed().as_secs_f64();
    if r.report.interval > 0.0 && now - r.last >= r.report.interval {
        let end = r.last + r.report.interval;
        r.report.interval(&mut r.streams, r.last, end);
        r.last = end;
    }
    let p = &r.params;
    let done = (p.time > 0 && now >= p.time as f64)
        || (p.bytes > 0
            && (r.flags.sent.load(Ordering::SeqCst) >= p.bytes
                || r.flags.received.load(Ordering::SeqCst) >= p.bytes));
    if let Some(e) = r.streams.iter().find_map(Stream::error) {
        return Err(io::Error::other(format!("a data stream failed: {e}")));
    }
    if done {
        if !p.reverse {
            // A sender stops writing before it says so; a receiver drains on
            // until the results are asked for (iperf3 keeps reading too).
            stream::stop_all(&mut r.streams, &r.flags, None);
        }
        stop_and_sample(r);
        return super::send_state(ctrl, State::TestEnd);
    }
    Ok(())
}

/// Our side's results for the exchange.
fn results(r: &Run) -> Results {
    let end = r.ended.unwrap_or(r.last);
    let tcp_sender = !r.params.udp && !r.params.reverse;
    Results {
        cpu_total: r.cpu_end[0],
        cpu_user: r.cpu_end[1],
        cpu_system: r.cpu_end[2],
        sender_has_retransmits: if r.params.reverse {
            -1
        } else {
            i64::from(tcp_sender)
        },
        congestion_used: r.congestion.clone(),
        streams: r
            .streams
            .iter()
            .map(|s| stream_result(s, end, tcp_sender))
            .collect(),
    }
}

/// A stream's line in the results (iperf3's send_results).
pub(super) fn stream_result(s: &Stream, end: f64, has_retr: bool) -> StreamResult {
    let c = stream::lock(&s.counters);
    StreamResult {
        id: s.id,
        bytes: c.bytes,
        retransmits: if s.sender && has_retr {
            s.seen.retrans as i64
        } else {
            -1
        },
        jitter: c.recv.jitter,
        errors: c.recv.cnt_error,
        packets: if s.sender {
            c.packets as i64
        } else {
            c.recv.packet_count as i64
        },
        start_time: 0.0,
        end_time: end,
    }
}
