//! The tun2socks example, end to end: the example attaches a TUN in the host
//! namespace, the TUN then moves into a namespace of its own, and the
//! namespace's kernel talks through it to servers on the host's 127.0.0.1
//! (`--map 198.51.100.1=127.0.0.1`): TCP byte-exact (one 5 MB connection and
//! several at once), a refused port answered with a RST at once, and a UDP
//! flow echoed and then reclaimed when idle.
//!
//! Needs root, `ip` and `python3` (the client inside the namespace); skipped
//! otherwise, fatal when CI is set. Only 192.0.2.0/24 and 198.51.100.0/24
//! inside the namespace, only 127.0.0.1 on the host. Everything made here
//! (device, namespace, processes) goes away on drop, also when a step fails.

mod support_netns;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support_netns::*;

/// The example binary: cargo builds examples before it runs tests, next to
/// them (target/<profile>/deps/this-test → target/<profile>/examples/).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let bin = profile.join("examples").join("tun2socks");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p berth --example tun2socks` \
         (cargo test -p berth builds it too)",
        bin.display()
    );
    bin
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The TUN, the example on it and the namespace; all removed on drop.
struct Setup {
    tun: String,
    ns: Option<Netns>,
    example: Option<Child>,
}

impl Setup {
    fn new() -> Setup {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // IFNAMSIZ: at most 15 characters.
        let tun = format!("t2s{}x{n}", std::process::id() % 1_000_000);
        run("ip", &["tuntap", "add", &tun, "mode", "tun"]);
        Setup {
            tun,
            ns: None,
            example: None,
        }
    }

    /// Create the namespace (lo up) and move the TUN into it.
    fn move_into_namespace(&mut self) -> &Netns {
        let ns = self.ns.insert(Netns::new("t2s"));
        run("ip", &["link", "set", &self.tun, "netns", &ns.name]);
        ns
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut c) = self.example.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespace deletes the TUN in it.
        drop(self.ns.take());
        // Still here when the move never happened.
        let _ = Command::new("ip")
            .args(["link", "del", &self.tun])
            .stderr(Stdio::null())
            .status();
    }
}

/// The example's stderr, one line per event, with what was seen so far.
struct Log {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Log {
    fn new(r: impl Read + Send + 'static) -> Log {
        Log {
            rx: lines_of(r),
            seen: Vec::new(),
        }
    }

    /// The first line (seen before or arriving within `limit`) that has every
    /// one of `needles`.
    fn wait(&mut self, needles: &[&str], limit: Duration) -> String {
        let hit = |l: &String| needles.iter().all(|n| l.contains(n));
        if let Some(l) = self.seen.iter().find(|l| hit(l)) {
            return l.clone();
        }
        let end = Instant::now() + limit;
        loop {
            match self.rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if hit(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "the example printed no line with {needles:?} within {limit:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Lines that arrived so far, without waiting.
    fn drain(&mut self) {
        while let Ok(l) = self.rx.try_recv() {
            self.seen.push(l);
        }
    }

    fn count(&mut self, needles: &[&str]) -> usize {
        self.drain();
        self.seen
            .iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }
}

/// `python3 -c SCRIPT ARGS` inside `ns` with `input` on stdin; its stdout.
/// Killed (and the test failed) after `limit`.
fn python(ns: &Netns, script: &str, args: &[&str], input: Vec<u8>, limit: Duration) -> String {
    let mut c = ns
        .cmd("python3")
        .args(["-c", script])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3 in the namespace");
    let mut stdin = c.stdin.take().expect("stdin piped");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = c.stdout.take().expect("stdout piped");
    let mut err = c.stderr.take().expect("stderr piped");
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(s)) = c.try_wait() {
            break s;
        }
        if Instant::now() > end {
            let _ = c.kill();
            let _ = c.wait();
            panic!("python3 {args:?} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "python3 {args:?} failed ({status}): {err}\nstdout: {out}"
    );
    out
}

/// A TCP echo server on 127.0.0.1 (a thread per connection; each echoes to
/// EOF, then closes its sending side).
fn tcp_echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the echo server");
    let port = l.local_addr().expect("echo server address").port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            thread::spawn(move || {
                let _ = std::io::copy(&mut &s, &mut &s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// A UDP echo server on 127.0.0.1, stopped when `stop` is set.
fn udp_echo_server(stop: Arc<AtomicBool>) -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind the UDP echo server");
    let port = s.local_addr().expect("UDP echo address").port();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::SeqCst) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
    });
    port
}

/// One connection: stdin's bytes out (while reading), then the write side
/// closed; prints the bytes and SHA-256 of what came back, and the time.
const PY_TCP_ONE: &str = r#"
import hashlib, socket, sys, threading, time
data = sys.stdin.buffer.read()
t = time.monotonic()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
w = threading.Thread(target=send); w.start()
h = hashlib.sha256(); n = 0
while True:
    b = s.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
w.join(); s.close()
print(n, h.hexdigest(), "%.3f" % (time.monotonic() - t))
"#;

/// COUNT connections at once, SIZE deterministic bytes each (seeded by the
/// connection's number); one line per connection: "i ok n" or "i bad …".
const PY_TCP_MANY: &str = r#"
import hashlib, random, socket, sys, threading
host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = [None] * count
def one(i):
    try:
        data = random.Random(i).randbytes(size)
        s = socket.create_connection((host, port), timeout=60)
        def send():
            s.sendall(data); s.shutdown(socket.SHUT_WR)
        w = threading.Thread(target=send); w.start()
        got = bytearray()
        while True:
            b = s.recv(1 << 16)
            if not b: break
            got += b
        w.join(); s.close()
        ok = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        out[i] = "%d %s %d" % (i, "ok" if ok else "bad", len(got))
    except Exception as e:
        out[i] = "%d bad %r" % (i, e)
ts = [threading.Thread(target=one, args=(i,)) for i in range(count)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
"#;

/// A connect that should be refused: "refused SECONDS" or what happened.
const PY_TCP_REFUSED: &str = r#"
import socket, sys, time
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("connected")
except ConnectionRefusedError:
    print("refused %.4f" % (time.monotonic() - t))
except Exception as e:
    print("other %r %.4f" % (e, time.monotonic() - t))
"#;

/// Data out, then a read that should fail with a reset: "reset" or what
/// happened instead.
const PY_TCP_RESET_BY_SERVER: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"x" * 1000)
try:
    b = s.recv(100)
    print("read %d" % len(b))
except ConnectionResetError:
    print("reset")
"#;

/// Data out, then close with SO_LINGER 0: a RST.
const PY_TCP_RESET_BY_CLIENT: &str = r#"
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"hello")
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("closed")
"#;

/// From a fixed source port, COUNT datagrams, each echoed: "echo PAYLOAD".
const PY_UDP: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(3)
for i in range(int(sys.argv[5])):
    msg = b"berth-udp-%d" % i
    s.sendto(msg, (sys.argv[3], int(sys.argv[4])))
    got, frm = s.recvfrom(2048)
    print("echo", got.decode(), frm[0], frm[1])
"#;

const DST: &str = "198.51.100.1";
const CLIENT: &str = "192.0.2.100";

#[test]
fn tun2socks_relays_a_namespace_through_a_moved_tun() {
    if skip(
        "tun2socks_relays_a_namespace_through_a_moved_tun",
        &["python3"],
    ) {
        return;
    }
    let bin = example_binary();
    let mut setup = Setup::new();
    let mut child = Command::new(&bin)
        .args([
            setup.tun.as_str(),
            "192.0.2.1/24",
            "--map",
            "198.51.100.1=127.0.0.1",
            "--udp-idle",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let mut log = Log::new(child.stderr.take().expect("stderr piped"));
    setup.example = Some(child);
    let ready = log.wait(&["ready on", &setup.tun], Duration::from_secs(10));
    report(format!("tun2socks: {ready}"));

    // The example holds the TUN open; the device moves under it.
    let tun = setup.tun.clone();
    let ns = setup.move_into_namespace();
    ns.ip(&["addr", "add", &format!("{CLIENT}/24"), "dev", &tun]);
    ns.ip(&["link", "set", &tun, "up"]);
    ns.ip(&["route", "add", "default", "dev", &tun]);
    let limit = Duration::from_secs(120);

    // (1) Byte-exact TCP: 5 MB there and back on one connection.
    let echo = tcp_echo_server();
    let port = echo.to_string();
    let size = 5_000_000;
    let data = random_bytes(size, 0x7e57_2505);
    let want = sha256_hex(&data);
    let t = Instant::now();
    let out = python(ns, PY_TCP_ONE, &[DST, &port], data, limit);
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        fields.get(..2),
        Some(&[size.to_string().as_str(), want.as_str()][..]),
        "5 MB echoed through tun2socks came back different: {out}"
    );
    report(format!(
        "tun2socks: 5 MB echoed byte-exact in {} s ({:?} with python's start)",
        fields.get(2).unwrap_or(&"?"),
        t.elapsed()
    ));
    let done = log.wait(
        &[
            &format!("-> {DST}:{port}: done"),
            &format!("{size} bytes out, {size} in"),
        ],
        Duration::from_secs(10),
    );
    log.wait(
        &[&format!("-> {DST}:{port}: relaying via host 127.0.0.1:")],
        Duration::ZERO,
    );
    report(format!("tun2socks: {done}"));

    // A few connections at once.
    let (count, each) = (8, 512 * 1024);
    let t = Instant::now();
    let out = python(
        ns,
        PY_TCP_MANY,
        &[DST, &port, &count.to_string(), &each.to_string()],
        Vec::new(),
        limit,
    );
    for i in 0..count {
        let line = format!("{i} ok {each}");
        assert!(
            out.lines().any(|l| l == line),
            "connection {i} of {count} was not echoed byte-exact: {out}"
        );
    }
    report(format!(
        "tun2socks: {count} concurrent connections of {each} bytes echoed byte-exact in {:?}",
        t.elapsed()
    ));
    let needle = format!("{each} bytes out, {each} in");
    let end = Instant::now() + Duration::from_secs(10);
    while log.count(&[&needle]) < count && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        log.count(&[&needle]),
        count,
        "a 'done' line per concurrent connection; saw:\n{}",
        log.seen.join("\n")
    );

    // (2) A closed host port: refused with a RST, at once.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind to find a free port");
        l.local_addr().expect("address").port()
    };
    let closed = closed.to_string();
    let out = python(ns, PY_TCP_REFUSED, &[DST, &closed], Vec::new(), limit);
    let secs = out
        .strip_prefix("refused ")
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("connect to a closed port was not refused: {out}"));
    assert!(secs < 1.0, "refused only after {secs} s");
    let refused = log.wait(
        &[&format!("-> {DST}:{closed}: refused"), "reset"],
        Duration::from_secs(5),
    );
    report(format!(
        "tun2socks: closed port refused in {:.1} ms: {refused}",
        secs * 1000.0
    ));

    // A reset on either side resets the other. The server closes with the
    // client's bytes unread, so its kernel sends a RST.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the resetting server");
    let rport = l.local_addr().expect("address").port().to_string();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().expect("accept the first connection");
        let _ = s.peek(&mut [0u8; 1]);
        thread::sleep(Duration::from_millis(50));
        drop(s);
        // The second: read until the relay passes the client's RST on.
        let (mut s, _) = l.accept().expect("accept the second connection");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let t = Instant::now();
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        (r.map_err(|e| e.kind()), t.elapsed())
    });
    let out = python(
        ns,
        PY_TCP_RESET_BY_SERVER,
        &[DST, &rport],
        Vec::new(),
        limit,
    );
    assert_eq!(
        out.trim(),
        "reset",
        "the server's RST did not reach the client"
    );
    let line = log.wait(
        &[&format!("-> {DST}:{rport}: reset (host side")],
        Duration::from_secs(5),
    );
    report(format!("tun2socks: server reset passed on: {line}"));
    let out = python(
        ns,
        PY_TCP_RESET_BY_CLIENT,
        &[DST, &rport],
        Vec::new(),
        limit,
    );
    assert_eq!(out.trim(), "closed");
    let (r, took) = server.join().expect("the resetting server");
    // std has no SO_LINGER, so the host side gets a FIN (EOF) or a RST.
    assert!(
        matches!(r, Ok(_) | Err(std::io::ErrorKind::ConnectionReset)),
        "the server saw {r:?} after the client's RST"
    );
    assert!(took < Duration::from_secs(5), "the server waited {took:?}");
    let line = log.wait(
        &[&format!("-> {DST}:{rport}: reset (client side")],
        Duration::from_secs(5),
    );
    report(format!(
        "tun2socks: client reset passed on ({r:?} on the host): {line}"
    ));

    // (3) UDP: echoed, then the flow is closed after 1 s idle, and the same
    // four-tuple later opens a new one.
    let stop = Arc::new(AtomicBool::new(false));
    let uport = udp_echo_server(Arc::clone(&stop)).to_string();
    let sport = "40053";
    let flow = format!("udp {CLIENT}:{sport} -> {DST}:{uport}");
    let out = python(
        ns,
        PY_UDP,
        &[CLIENT, sport, DST, &uport, "3"],
        Vec::new(),
        limit,
    );
    for i in 0..3 {
        let line = format!("echo berth-udp-{i} {DST} {uport}");
        assert!(
            out.lines().any(|l| l == line),
            "datagram {i} not echoed from {DST}:{uport}: {out}"
        );
    }
    let t = Instant::now();
    log.wait(&[&flow, "flow opened"], Duration::from_secs(5));
    let closed_line = log.wait(&[&flow, "closed after"], Duration::from_secs(3));
    assert!(
        closed_line.contains("3 datagrams out, 3 in"),
        "{closed_line}"
    );
    report(format!(
        "tun2socks: UDP echoed; flow reclaimed {:?} after the last datagram: {closed_line}",
        t.elapsed()
    ));
    assert_eq!(log.count(&[&flow, "flow opened"]), 1);
    python(
        ns,
        PY_UDP,
        &[CLIENT, sport, DST, &uport, "1"],
        Vec::new(),
        limit,
    );
    let end = Instant::now() + Duration::from_secs(5);
    while log.count(&[&flow, "flow opened"]) < 2 && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        log.count(&[&flow, "flow opened"]),
        2,
        "the same four-tuple after the idle close should open a new flow; saw:\n{}",
        log.seen.join("\n")
    );
    stop.store(true, Ordering::SeqCst);

    // Still running: nothing above made it exit.
    if let Some(c) = setup.example.as_mut() {
        assert!(
            matches!(c.try_wait(), Ok(None)),
            "the example exited; it printed:\n{}",
            log.seen.join("\n")
        );
    }
    drop(setup);
}

#[test]
fn tun2socks_usage_errors_exit_2() {
    let bin = example_binary();
    for args in [
        &[][..],
        &["tun0"],
        &["tun0", "192.0.2.1"],
        &["tun0", "192.0.2.1/24", "--map", "198.51.100.1"],
        &["tun0", "192.0.2.1/24", "--udp-idle", "0"],
        &["tun0", "192.0.2.1/24", "--bogus"],
    ] {
        let o = Command::new(&bin)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("usage: tun2socks TUN ADDR/PREFIX"),
            "{args:?}: {err}"
        );
    }
}
