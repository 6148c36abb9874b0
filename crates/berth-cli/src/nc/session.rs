//! The moving parts of `berth nc`: signals, the stdin reader, connecting and
//! accepting, the loops that pipe a connection (OpenBSD nc's `readwrite`), and
//! closing.
//!
//! One thread runs the loops on non-blocking berth sockets and a [`Poller`];
//! a stdin thread and a signal thread hand over their news and wake it
//! through [`Poller::notify`], so a signal ends a blocked connect, accept or
//! transfer at once.

use super::{ConnectError, Opts};
use berth::{Domain, Interest, PollEvent, Poller, Socket, Stack, TcpListener, TcpStream};
use berth::{Type, UdpSocket};
use berth_core::TcpState;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a scan's connection may take to have its FIN acknowledged.
pub const SCAN_LINGER: Duration = Duration::from_secs(1);

/// How long closing may wait for the peer to acknowledge our FIN (and the
/// data queued before it) before berth nc resets the connection: long after
/// an ordinary end, short after SIGINT/SIGTERM ("exit promptly").
pub fn linger_for(end: End) -> Duration {
    match end {
        End::Done => Duration::from_secs(30),
        End::Signal => Duration::from_secs(3),
    }
}

/// Why a connection's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// As nc ends it: both directions done, -w idle, -q after stdin's end…
    Done,
    /// SIGINT or SIGTERM.
    Signal,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// SIGINT and SIGTERM, read from a signalfd by a thread of their own: how
/// many came, the last one, and the poller to wake.
pub struct Signals {
    count: AtomicU32,
    signo: AtomicI32,
    poller: Mutex<Option<Arc<Poller>>>,
}

impl Signals {
    /// Block SIGINT and SIGTERM in this thread (and so in every thread it
    /// starts afterwards) and read them from a signalfd instead.
    pub fn install() -> io::Result<Arc<Signals>> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        mask.thread_block()?;
        let fd = SignalFd::new(&mask)?;
        let sig = Arc::new(Signals {
            count: AtomicU32::new(0),
            signo: AtomicI32::new(0),
            poller: Mutex::new(None),
        });
        let s = sig.clone();
        std::thread::Builder::new()
            .name("nc-signals".into())
            .spawn(move || loop {
                match fd.read_signal() {
                    Ok(Some(info)) => {
                        s.signo
                            .store(i32::try_from(info.ssi_signo).unwrap_or(0), Ordering::SeqCst);
                        s.count.fetch_add(1, Ordering::SeqCst);
                        if let Some(p) = lock(&s.poller).as_ref() {
                            p.notify();
                        }
                    }
                    Ok(None) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
            })?;
        Ok(sig)
    }

    /// SIGINT/SIGTERMs received so far.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }

    fn wake(&self, p: Arc<Poller>) {
        *lock(&self.poller) = Some(p);
    }

    /// End the process by the signal that stopped it, as a killed nc ends (the
    /// shell sees 128 + N): raise it again and unblock it; no handler is
    /// installed, so its default action ends us.
    pub fn die(&self) -> ExitCode {
        let sig = Signal::try_from(self.signo.load(Ordering::SeqCst)).unwrap_or(Signal::SIGINT);
        let _ = std::io::stdout().flush();
        let mut one = SigSet::empty();
        one.add(sig);
        let _ = nix::sys::signal::raise(sig);
        let _ = one.thread_unblock();
        ExitCode::from(128 + sig as u8)
    }
}

/// stdin, read ahead by a thread into a bounded queue of chunks (each read is
/// one chunk, so one UDP datagram).
pub struct Feed {
    st: Mutex<FeedState>,
    room: Condvar,
}

#[derive(Default)]
struct FeedState {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    eof: bool,
}

/// Read-ahead limit of the stdin queue.
const FEED_CAP: usize = 256 << 10;

impl Feed {
    fn start(poller: Arc<Poller>, chunk: usize) -> io::Result<Arc<Feed>> {
        let feed = Arc::new(Feed {
            st: Mutex::new(FeedState::default()),
            room: Condvar::new(),
        });
        let f = feed.clone();
        std::thread::Builder::new()
            .name("nc-stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin().lock();
                loop {
                    let mut buf = vec![0u8; chunk];
                    match stdin.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            let mut st = lock(&f.st);
                            while st.bytes >= FEED_CAP {
                                st = f.room.wait(st).unwrap_or_else(|p| p.into_inner());
                            }
                            st.bytes += n;
                            st.chunks.push_back(buf);
                            drop(st);
                            poller.notify();
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                lock(&f.st).eof = true;
                poller.notify();
            })?;
        Ok(feed)
    }

    /// The next chunk, or None: then whether stdin has ended.
    fn take(&self) -> Result<Vec<u8>, bool> {
        let mut st = lock(&self.st);
        match st.chunks.pop_front() {
            Some(c) => {
                st.bytes -= c.len();
                self.room.notify_one();
                Ok(c)
            }
            None => Err(st.eof),
        }
    }
}

/// Whether stdin has something to read right now (data or its end) that the
/// stdin thread has not picked up yet.
fn stdin_pending() -> bool {
    let mut p = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll(2) on one valid pollfd that outlives the call, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP) != 0
}

/// What every connection of one `berth nc` run shares.
pub struct Ctx {
    pub stack: Stack,
    pub o: Opts,
    poller: Arc<Poller>,
    sig: Arc<Signals>,
    feed: OnceLock<Option<Arc<Feed>>>,
}

/// Where a session stands: OpenBSD nc's four descriptors, and the timers.
struct Flow {
    /// stdin's current chunk and how much of it is sent.
    chunk: Vec<u8>,
    sent: usize,
    /// stdin has ended (or is not read: -d) and everything from it is sent.
    stdin_done: bool,
    /// We send no more (stdin done, or sending failed).
    netout_gone: bool,
    /// We receive no more (the peer's FIN or an error, or stdout is gone).
    netin_gone: bool,
    /// When stdin was done (for UDP's -q).
    stdin_done_at: Option<Instant>,
    /// When a TCP session had nothing more to do (for its -q: see
    /// [`Flow::finished`]).
    finished_at: Option<Instant>,
    /// The last time anything moved (for -w).
    last: Instant,
}

impl Flow {
    fn new(no_stdin: bool) -> Flow {
        let now = Instant::now();
        Flow {
            chunk: Vec::new(),
            sent: 0,
            stdin_done: no_stdin,
            netout_gone: false,
            netin_gone: false,
            stdin_done_at: no_stdin.then_some(now),
            finished_at: None,
            last: now,
        }
    }

    /// A TCP session has nothing more to do: true to end it now. As Debian's
    /// nc (readwrite's delay_exit), -q SECS > 0 then keeps it SECS longer;
    /// without -q, or with 0 or less, it ends at once. So TCP's -q clock
    /// starts at the connection's end, not at stdin's: a peer that keeps
    /// the connection open keeps nc too.
    fn finished(&mut self, o: &Opts, now: Instant) -> bool {
        match o.quit_after.filter(|q| !q.is_zero()) {
            Some(_) => {
                self.finished_at.get_or_insert(now);
                false
            }
            None => true,
        }
    }

    fn has_chunk(&self) -> bool {
        self.sent < self.chunk.len()
    }

    /// Take stdin's next chunk if the current one is sent; true if one came.
    fn refill(&mut self, feed: Option<&Arc<Feed>>, now: Instant) -> bool {
        if self.has_chunk() || self.stdin_done {
            return false;
        }
        match feed.map(|f| f.take()) {
            Some(Ok(c)) => {
                self.chunk = c;
                self.sent = 0;
                self.last = now;
                true
            }
            Some(Err(false)) => false,
            Some(Err(true)) | None => {
                self.stdin_done = true;
                self.stdin_done_at = Some(now);
                true
            }
        }
    }

    /// The time left before -q or -w ends the session; None: no limit, ZERO:
    /// over. -q counts from `quit_from`: stdin's end for UDP (as Debian's
    /// nc), the session's end for TCP ([`Flow::finished`]).
    fn time_left(&self, o: &Opts, now: Instant, quit_from: Option<Instant>) -> Option<Duration> {
        let quit = o
            .quit_after
            .zip(quit_from)
            .map(|(q, at)| (at + q).saturating_duration_since(now));
        let idle = o
            .idle
            .map(|w| (self.last + w).saturating_duration_since(now));
        match (quit, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Write a received chunk to stdout; false once stdout is gone.
fn to_stdout(out: &mut io::StdoutLock<'_>, data: &[u8]) -> bool {
    out.write_all(data).and_then(|()| out.flush()).is_ok()
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Ctx {
    pub fn new(stack: &Stack, sig: Arc<Signals>, o: Opts) -> Ctx {
        let poller = Arc::new(Poller::new(stack));
        sig.wake(poller.clone());
        Ctx {
            stack: stack.clone(),
            o,
            poller,
            sig,
            feed: OnceLock::new(),
        }
    }

    /// stdin's reader, started with the first connection (none with -d).
    fn feed(&self) -> io::Result<Option<&Arc<Feed>>> {
        if let Some(f) = self.feed.get() {
            return Ok(f.as_ref());
        }
        let f = if self.o.no_stdin {
            None
        } else {
            // nc's 16 KiB reads for UDP datagrams; bigger ones for TCP.
            let chunk = if self.o.udp { 16 << 10 } else { 64 << 10 };
            Some(Feed::start(self.poller.clone(), chunk)?)
        };
        Ok(self.feed.get_or_init(|| f).as_ref())
    }

    fn interrupted(&self) -> bool {
        self.sig.count() > 0
    }

    /// A socket of `dst`'s family, bound to `local` if given, non-blocking.
    fn client_socket(
        &self,
        dst: SocketAddr,
        ty: Type,
        local: Option<SocketAddr>,
    ) -> Result<Socket, ConnectError> {
        let s = Socket::new(&self.stack, Domain::for_address(dst), ty, None)
            .map_err(ConnectError::Fatal)?;
        if let Some(l) = local {
            s.bind(&l).map_err(|e| {
                ConnectError::Fatal(io::Error::new(e.kind(), format!("bind failed: {l}: {e}")))
            })?;
        }
        s.set_nonblocking(true).map_err(ConnectError::Fatal)?;
        Ok(s)
    }

    /// A TCP connection to `dst` (from `local`), within -w.
    pub fn tcp_connect(
        &self,
        dst: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<TcpStream, ConnectError> {
        let s = self.client_socket(dst, Type::STREAM, local)?;
        match s.connect(&dst) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(ConnectError::Failed(e)),
        }
        let s = TcpStream::from(s);
        let h = s.handle();
        self.poller
            .register(h, 0, Interest::WRITABLE)
            .map_err(ConnectError::Fatal)?;
        let until = self.o.idle.map(|w| Instant::now() + w);
        let mut evs: Vec<PollEvent> = Vec::new();
        let r = loop {
            if self.interrupted() {
                break Err(ConnectError::Interrupted);
            }
            match s.take_error() {
                Ok(Some(e)) | Err(e) => break Err(ConnectError::Failed(e)),
                Ok(None) => {}
            }
            match s.tcp_info().map(|i| i.state) {
                Ok(Some(TcpState::SynSent | TcpState::SynReceived)) => {}
                Ok(Some(TcpState::Closed) | None) => {
                    break Err(ConnectError::Failed(berth_core::error::error(
                        berth_core::error::code::ECONNREFUSED,
                        "connection failed",
                    )))
                }
                Ok(Some(_)) => break Ok(()),
                Err(e) => break Err(ConnectError::Failed(e)),
            }
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                break Err(ConnectError::TimedOut);
            }
            if let Err(e) = self.poller.wait(&mut evs, left) {
                break Err(ConnectError::Fatal(e));
            }
        };
        let _ = self.poller.deregister(h);
        r.map(|()| s)
    }

    /// A connected UDP socket to `dst` (from `local`). With -z: probed with
    /// four "X" datagrams, as nc's udptest, failing if the peer's ICMP says
    /// the port is closed.
    pub fn udp_connect(
        &self,
        dst: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<UdpSocket, ConnectError> {
        let s = self.client_socket(dst, Type::DGRAM, local)?;
        s.connect(&dst).map_err(ConnectError::Failed)?;
        let u = UdpSocket::from(s);
        if self.o.scan {
            let mut evs = Vec::new();
            for _ in 0..4 {
                if let Err(e) = u.send(b"X") {
                    return Err(ConnectError::Failed(e));
                }
                let _ = self.poller.wait(&mut evs, Some(Duration::from_millis(50)));
                if self.interrupted() {
                    return Err(ConnectError::Interrupted);
                }
            }
            if let Ok(Some(e)) = u.take_error() {
                return Err(ConnectError::Failed(e));
            }
        }
        Ok(u)
    }

    /// The next connection on `l`; None on SIGINT/SIGTERM.
    pub fn accept(&self, l: &TcpListener) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        let h = l.handle();
        self.poller.register(h, 0, Interest::READABLE)?;
        let mut evs = Vec::new();
        let r = loop {
            if self.interrupted() {
                break Ok(None);
            }
            match l.accept() {
                Ok((s, from)) => break s.set_nonblocking(true).map(|()| Some((s, from))),
                Err(e) if would_block(&e) => {}
                Err(e) => break Err(e),
            }
            if let Err(e) = self.poller.wait(&mut evs, None) {
                break Err(e);
            }
        };
        let _ = self.poller.deregister(h);
        r
    }

    /// Pipe stdin to `s` and `s` to stdout until nc would stop.
    pub fn tcp_session(&self, s: &TcpStream) -> io::Result<End> {
        let o = &self.o;
        let feed = self.feed()?;
        let h = s.handle();
        let mut f = Flow::new(feed.is_none());
        let mut out = io::stdout().lock();
        let mut buf = vec![0u8; 64 << 10];
        let mut evs: Vec<PollEvent> = Vec::new();
        let mut registered = false;
        let mut woke_for_nothing = false;
        let end = loop {
            if self.interrupted() {
                break End::Signal;
            }
            let now = Instant::now();
            let mut progress = f.refill(feed, now);
            let mut want = Interest::default();
            // stdin → network.
            if !f.netout_gone && f.has_chunk() {
                match (&mut &*s).write(&f.chunk[f.sent..]) {
                    Ok(n) => {
                        f.sent += n;
                        f.last = now;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => want.writable = true,
                    Err(_) => {
                        // Reset or closed: nothing more goes out.
                        f.netout_gone = true;
                        f.stdin_done = true;
                        f.chunk.clear();
                        f.sent = 0;
                    }
                }
            }
            if f.stdin_done && !f.has_chunk() && !f.netout_gone {
                if o.half_close {
                    let _ = s.shutdown(Shutdown::Write);
                }
                f.netout_gone = true;
            }
            // network → stdout.
            if !f.netin_gone {
                match (&mut &*s).read(&mut buf) {
                    Ok(0) => {
                        f.netin_gone = true;
                        progress = true;
                    }
                    Ok(n) => {
                        f.last = now;
                        progress = true;
                        if !to_stdout(&mut out, &buf[..n]) {
                            // Nobody reads our output: stop reading the peer.
                            f.netin_gone = true;
                            let _ = s.shutdown(Shutdown::Read);
                        }
                    }
                    Err(e) if would_block(&e) => want.readable = true,
                    Err(_) => {
                        f.netin_gone = true;
                        progress = true;
                    }
                }
            }
            // Both ways done; or a listener whose peer is done, once what
            // stdin holds is sent (nc's "listen and net in gone").
            let both = f.netout_gone && f.netin_gone;
            let listener_done =
                o.listen && f.netin_gone && !f.has_chunk() && !progress && !stdin_pending();
            if (both || listener_done) && f.finished(o, now) {
                break End::Done;
            }
            let left = f.time_left(o, now, f.finished_at);
            if left == Some(Duration::ZERO) {
                break End::Done;
            }
            if progress {
                woke_for_nothing = false;
                continue;
            }
            // A listener waiting for stdin's last bytes looks again soon.
            let left = if o.listen && f.netin_gone {
                Some(left.map_or(Duration::from_millis(10), |l| {
                    l.min(Duration::from_millis(10))
                }))
            } else {
                left
            };
            if want == Interest::default() {
                if registered {
                    let _ = self.poller.deregister(h);
                    registered = false;
                }
            } else if registered {
                self.poller.modify(h, 0, want)?;
            } else {
                self.poller.register(h, 0, want)?;
                registered = true;
            }
            // Once the peer's FIN is in, the socket reports it on every wait:
            // do not spin on it while waiting to send.
            if woke_for_nothing {
                std::thread::sleep(Duration::from_millis(1));
            }
            woke_for_nothing = self.poller.wait(&mut evs, left)? > 0;
        };
        if registered {
            let _ = self.poller.deregister(h);
        }
        let _ = out.flush();
        Ok(end)
    }

    /// Datagrams both ways: `peer` is the connected peer, or (a listener)
    /// None until the first datagram names it; with -k the latest sender.
    pub fn udp_session(
        &self,
        s: &UdpSocket,
        peer: Option<SocketAddr>,
        listening: bool,
    ) -> io::Result<End> {
        let o = &self.o;
        let feed = self.feed()?;
        let h = s.handle();
        let mut peer = peer;
        let mut f = Flow::new(feed.is_none());
        let mut out = io::stdout().lock();
        let mut buf = vec![0u8; 65_536];
        let mut evs: Vec<PollEvent> = Vec::new();
        self.poller.register(h, 0, Interest::READABLE)?;
        let end = loop {
            if self.interrupted() {
                break End::Signal;
            }
            let now = Instant::now();
            let mut progress = false;
            if !f.netin_gone {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        progress = true;
                        f.last = now;
                        if peer.is_none() && !o.keep {
                            // nc connects to its first caller.
                            s.connect(from)?;
                            if o.verbose {
                                eprintln!("Connection received on {} {}", from.ip(), from.port());
                            }
                        }
                        if o.keep || peer.is_none() {
                            peer = Some(from);
                        }
                        if !to_stdout(&mut out, &buf[..n]) {
                            f.netin_gone = true;
                        }
                    }
                    Err(e) if would_block(&e) => {}
                    // An ICMP error for what we sent (port unreachable…).
                    Err(_) => {
                        f.netin_gone = true;
                        progress = true;
                    }
                }
            }
            let mut blocked = false;
            if !f.netout_gone {
                progress |= f.refill(feed, now);
                if let (true, Some(p)) = (f.has_chunk(), peer) {
                    let r = if listening && o.keep {
                        s.send_to(&f.chunk, p)
                    } else {
                        s.send(&f.chunk)
                    };
                    match r {
                        Ok(_) => {
                            f.sent = f.chunk.len();
                            f.last = now;
                            progress = true;
                        }
                        Err(e) if would_block(&e) => blocked = true,
                        Err(_) => {
                            f.netout_gone = true;
                            f.stdin_done = true;
                        }
                    }
                }
                if f.stdin_done && !f.has_chunk() {
                    f.netout_gone = true;
                }
            }
            if f.netin_gone && f.netout_gone {
                break End::Done;
            }
            // A listener waits for its first caller without -w's limit.
            let mut left = f.time_left(o, now, f.stdin_done_at);
            if listening && peer.is_none() && !o.keep {
                f.last = now;
                left = o
                    .quit_after
                    .zip(f.stdin_done_at)
                    .map(|(q, at)| (at + q).saturating_duration_since(now));
            }
            if left == Some(Duration::ZERO) {
                break End::Done;
            }
            if progress {
                continue;
            }
            if blocked {
                left = Some(left.map_or(Duration::from_millis(1), |l| {
                    l.min(Duration::from_millis(1))
                }));
            }
            self.poller.wait(&mut evs, left)?;
        };
        let _ = self.poller.deregister(h);
        let _ = out.flush();
        Ok(end)
    }

    /// Close `s` as the kernel closes a socket: FIN after what is queued; wait
    /// (up to `linger`) for the peer to acknowledge it, then let go. A signal
    /// meanwhile (another Ctrl-C) or no acknowledgement in time: RST instead,
    /// so that the peer is not left with a half-open connection once we are
    /// gone. Returns `End::Signal` if any signal came.
    pub fn close_tcp(&self, s: TcpStream, end: End, linger: Duration) -> End {
        let _ = s.shutdown(Shutdown::Write);
        let seen = self.sig.count();
        let until = Instant::now() + linger;
        let mut evs = Vec::new();
        loop {
            let state = s.tcp_info().ok().and_then(|i| i.state);
            if matches!(
                state,
                None | Some(TcpState::FinWait2 | TcpState::TimeWait | TcpState::Closed)
            ) {
                break;
            }
            if self.sig.count() > seen || Instant::now() >= until {
                let _ = s.set_linger(Some(Duration::ZERO));
                break;
            }
            let _ = self.poller.wait(&mut evs, Some(Duration::from_millis(10)));
        }
        drop(s);
        if self.interrupted() {
            End::Signal
        } else {
            end
        }
    }
}
