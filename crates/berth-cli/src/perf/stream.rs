//! Data streams: one thread per stream moves the bytes (TCP writes or reads,
//! UDP datagrams paced to the target bitrate), counting into a shared
//! [`Counters`]; the control thread samples them for the interval lines and
//! the results.

use super::proto::{UdpHeader, UdpRecv};
use berth::{TcpStream, UdpSocket};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a blocked stream thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// What every stream of a test shares with the control thread.
#[derive(Default)]
pub struct Flags {
    /// Bytes count only while the test runs (iperf3 counts in TEST_RUNNING).
    pub counting: AtomicBool,
    /// Threads end.
    pub stop: AtomicBool,
    /// Bytes sent over all streams, against `limit`.
    pub sent: AtomicU64,
    /// Bytes received over all streams.
    pub received: AtomicU64,
    /// -n: senders stop writing once `sent` reaches it (0: no limit).
    pub limit: AtomicU64,
}

impl Flags {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn counting(&self) -> bool {
        self.counting.load(Ordering::SeqCst)
    }
    /// Count `n` bytes that moved on a stream into its counters and `total`
    /// (`sent` or `received`), while the test runs.
    fn count(&self, c: &Mutex<Counters>, n: usize, total: &AtomicU64) {
        if self.counting() {
            lock(c).bytes += n as u64;
            total.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    fn over_limit(&self) -> bool {
        let l = self.limit.load(Ordering::SeqCst);
        l > 0 && self.sent.load(Ordering::SeqCst) >= l
    }
}

/// A stream's running totals.
#[derive(Default)]
pub struct Counters {
    pub bytes: u64,
    /// UDP sender: datagrams sent.
    pub packets: u64,
    /// UDP receiver: loss, order and jitter.
    pub recv: UdpRecv,
    /// Why the thread stopped early.
    pub error: Option<String>,
}

pub fn lock(c: &Mutex<Counters>) -> MutexGuard<'_, Counters> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stream's socket.
#[derive(Clone)]
pub enum Sock {
    Tcp(Arc<TcpStream>),
    /// A UDP socket and the peer (None: connected; the server's one socket
    /// carries every stream and tells them apart by the peer's address).
    Udp(Arc<UdpSocket>, SocketAddr),
}

/// One data stream.
pub struct Stream {
    /// iperf3's stream id in the results exchange: 1, 3, 4, 5 …
    pub id: u64,
    /// The number in the `[  5]` column (iperf3 shows its socket descriptor).
    pub number: u64,
    pub sender: bool,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub sock: Sock,
    pub counters: Arc<Mutex<Counters>>,
    pub thread: Option<JoinHandle<()>>,
    /// What the control thread has taken into intervals so far.
    pub seen: Seen,
}

/// The stream's state at the last interval, and the extremes over the test.
#[derive(Default, Clone)]
pub struct Seen {
    pub bytes: u64,
    pub packets: u64,
    pub errors: i64,
    pub total_retrans: u64,
    /// Retransmissions over the test (sum of the intervals').
    pub retrans: u64,
    pub max_cwnd: u64,
    pub max_snd_wnd: u64,
    pub max_rtt: u64,
    pub min_rtt: u64,
    pub sum_rtt: u64,
    pub count_rtt: u64,
}

/// One stream over one interval.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    pub bytes: u64,
    pub retrans: u64,
    pub cwnd: u64,
    pub snd_wnd: u64,
    pub rtt: u64,
    pub rttvar: u64,
    pub pmtu: u64,
    pub packets: u64,
    pub errors: i64,
    pub jitter: f64,
}

/// iperf3's stream ids: the first is 1, the next ones 3, 4, 5 … (iperf_add_stream).
pub fn stream_id(index: usize) -> u64 {
    if index == 0 {
        1
    } else {
        index as u64 + 2
    }
}

impl Stream {
    pub fn new(
        index: usize,
        sender: bool,
        sock: Sock,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Stream {
        Stream {
            id: stream_id(index),
            number: 5 + 2 * index as u64,
            sender,
            local,
            peer,
            sock,
            counters: Arc::new(Mutex::new(Counters::default())),
            thread: None,
            seen: Seen::default(),
        }
    }

    /// Close the books on an interval: what moved since the last one, and for a
    /// TCP sender the tcp_info iperf3 reports (retransmissions, cwnd, window,
    /// RTT).
    pub fn sample(&mut self) -> Interval {
        let (bytes, packets, errors, jitter) = {
            let c = lock(&self.counters);
            let packets = if self.sender {
                c.packets
            } else {
                c.recv.packet_count
            };
            (c.bytes, packets, c.recv.cnt_error, c.recv.jitter)
        };
        let mut iv = Interval {
            bytes: bytes - self.seen.bytes,
            packets: packets.saturating_sub(self.seen.packets),
            errors: errors - self.seen.errors,
            jitter,
            ..Interval::default()
        };
        self.seen.bytes = bytes;
        self.seen.packets = packets;
        self.seen.errors = errors;
        if let (Sock::Tcp(t), true) = (&self.sock, self.sender) {
            if let Ok(info) = t.tcp_info() {
                iv.retrans = info.total_retrans.saturating_sub(self.seen.total_retrans);
                self.seen.total_retrans = info.total_retrans;
                self.seen.retrans += iv.retrans;
                iv.cwnd = info.snd_cwnd_bytes as u64;
                iv.snd_wnd = info.snd_wnd as u64;
                iv.rtt = info.rtt_us;
                iv.rttvar = info.rttvar_us;
                iv.pmtu = info.pmtu as u64;
                let s = &mut self.seen;
                s.max_cwnd = s.max_cwnd.max(iv.cwnd);
                s.max_snd_wnd = s.max_snd_wnd.max(iv.snd_wnd);
                s.max_rtt = s.max_rtt.max(iv.rtt);
                if s.min_rtt == 0 || iv.rtt < s.min_rtt {
                    s.min_rtt = iv.rtt;
                }
                s.sum_rtt += iv.rtt;
                s.count_rtt += 1;
            }
        }
        iv
    }

    /// The reason the stream's thread stopped early, if it did.
    pub fn error(&self) -> Option<String> {
        lock(&self.counters).error.clone()
    }
}

/// Start the thread that moves a stream's data.
pub fn start(
    s: &mut Stream,
    flags: &Arc<Flags>,
    block: usize,
    rate: u64,
    wide: bool,
) -> io::Result<()> {
    let flags = flags.clone();
    let c = s.counters.clone();
    let sock = s.sock.clone();
    let sender = s.sender;
    let name = format!("perf-stream-{}", s.id);
    let h = std::thread::Builder::new().name(name).spawn(move || {
        let r = match (&sock, sender) {
            (Sock::Tcp(t), true) => tcp_send(t, block, rate, &flags, &c),
            (Sock::Tcp(t), false) => tcp_recv(t, block, &flags, &c),
            (Sock::Udp(u, peer), true) => udp_send(u, *peer, block, rate, wide, &flags, &c),
            (Sock::Udp(u, peer), false) => udp_recv(u, &[(*peer, c.clone())], wide, &flags),
        };
        if let Err(e) = r {
            if !flags.stopped() {
                lock(&c).error = Some(e.to_string());
            }
        }
    })?;
    s.thread = Some(h);
    Ok(())
}

/// The server's UDP streams share one socket: one thread receives for all of
/// them, telling them apart by the peer's address.
pub fn start_udp_demux(
    sock: Arc<UdpSocket>,
    streams: &[&Stream],
    flags: &Arc<Flags>,
    wide: bool,
) -> io::Result<JoinHandle<()>> {
    let flags = flags.clone();
    let routes: Vec<(SocketAddr, Arc<Mutex<Counters>>)> = streams
        .iter()
        .filter_map(|s| match &s.sock {
            Sock::Udp(_, peer) => Some((*peer, s.counters.clone())),
            Sock::Tcp(_) => None,
        })
        .collect();
    std::thread::Builder::new()
        .name("perf-udp-recv".into())
        .spawn(move || {
            if let Err(e) = udp_recv(&sock, &routes, wide, &flags) {
                if let Some((_, c)) = routes.first().filter(|_| !flags.stopped()) {
                    lock(c).error = Some(e.to_string());
                }
            }
        })
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Pseudo-random bytes, as iperf3 fills its send buffer.
fn random_block(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Sleep while sending faster than `rate` bits/s would allow (iperf3's
/// throttle: compare the average rate since the start with the target).
fn throttle(rate: u64, start: Instant, sent: u64, flags: &Flags) {
    if rate == 0 {
        return;
    }
    loop {
        let due = Duration::from_secs_f64(sent as f64 * 8.0 / rate as f64);
        let elapsed = start.elapsed();
        if elapsed >= due || flags.stopped() {
            return;
        }
        std::thread::sleep((due - elapsed).min(TICK));
    }
}

fn tcp_send(
    t: &TcpStream,
    block: usize,
    rate: u64,
    flags: &Flags,
    c: &Mutex<Counters>,
) -> io::Result<()> {
    t.set_write_timeout(Some(TICK))?;
    let buf = random_block(block, seed());
    let start = Instant::now();
    let mut mine = 0u64;
    while !flags.stopped() {
        if flags.over_limit() {
            std::thread::sleep(TICK / 5);
            continue;
        }
        throttle(rate, start, mine, flags);
        match (&*t).write(&buf) {
            Ok(n) => {
                mine += n as u64;
                flags.count(c, n, &flags.sent);
            }
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tcp_recv(t: &TcpStream, block: usize, flags: &Flags, c: &Mutex<Counters>) -> io::Result<()> {
    t.set_read_timeout(Some(TICK))?;
    let mut buf = vec![0u8; block.max(1)];
    while !flags.stopped() {
        match (&*t).read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => flags.count(c, n, &flags.received),
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Seconds and microseconds of the wall clock, as the datagram header has them.
fn clock() -> (u32, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as u32, d.subsec_micros())
}

fn udp_send(
    u: &UdpSocket,
    peer: SocketAddr,
    block: usize,
    rate: u64,
    wide: bool,
    flags: &Flags,
    c: &Mutex<Counters>,
) -> io::Result<()> {
    let mut buf = random_block(block, seed());
    let start = Instant::now();
    let mut sent = 0u64;
    let mut count = 0u64;
    while !flags.stopped() {
        if flags.over_limit() {
            std::thread::sleep(TICK / 5);
            continue;
        }
        // Pace: whole datagrams, as many as the rate allows by now.
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 * 8.0 / rate as f64);
            let elapsed = start.elapsed();
            if elapsed < due {
                std::thread::sleep((due - elapsed).min(Duration::from_millis(1)));
                continue;
            }
        }
        count += 1;
        let (sec, usec) = clock();
        UdpHeader { sec, usec, count }.put(&mut buf, wide);
        match u.send_to(&buf, peer) {
            Ok(n) => {
                sent += n as u64;
                if flags.counting() {
                    let mut g = lock(c);
                    g.bytes += n as u64;
                    g.packets = count;
                    flags.sent.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
            // A full queue drops the datagram, as the kernel's ENOBUFS does;
            // its number is lost, as on the wire.
            Err(e) if timed_out(&e) || e.raw_os_error() == Some(libc::ENOBUFS) => {
                sent += buf.len() as u64;
            }
            Err(e) => return Err(e),
        }
        if rate == 0 && count.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
    Ok(())
}

fn udp_recv(
    u: &UdpSocket,
    routes: &[(SocketAddr, Arc<Mutex<Counters>>)],
    wide: bool,
    flags: &Flags,
) -> io::Result<()> {
    u.set_read_timeout(Some(TICK))?;
    let mut buf = vec![0u8; 65_536];
    while !flags.stopped() {
        let (n, from) = match u.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(e),
        };
        let route = match routes {
            [(_, c)] => Some(c),
            _ => routes.iter().find(|(p, _)| *p == from).map(|(_, c)| c),
        };
        let (Some(c), true) = (route, flags.counting()) else {
            continue;
        };
        flags.received.fetch_add(n as u64, Ordering::SeqCst);
        let mut g = lock(c);
        g.bytes += n as u64;
        if let Some(h) = UdpHeader::get(&buf[..n], wide) {
            let sent = h.sec as f64 + h.usec as f64 / 1e6;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            g.recv.on_packet(h.count, sent, now);
        }
    }
    Ok(())
}

/// Stop every stream's thread and wait for it.
pub fn stop_all(streams: &mut [Stream], flags: &Flags, extra: Option<JoinHandle<()>>) {
    flags.stop.store(true, Ordering::SeqCst);
    for s in streams.iter_mut() {
        if let Some(h) = s.thread.take() {
            let _ = h.join();
        }
    }
    if let Some(h) = extra {
        let _ = h.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_as_iperf3_numbers_them() {
        let ids: Vec<u64> = (0..4).map(stream_id).collect();
        assert_eq!(ids, vec![1, 3, 4, 5]);
    }

    #[test]
    fn random_blocks_have_the_asked_length() {
        assert_eq!(random_block(13, 7).len(), 13);
        assert_ne!(random_block(64, 7), random_block(64, 8));
    }
}
