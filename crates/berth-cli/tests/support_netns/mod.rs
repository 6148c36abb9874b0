//! Helpers for tests that run in network namespaces they create: skip checks,
//! a namespace guard whose Drop deletes it, child processes killed on Drop,
//! and line readers with timeouts. Only 192.0.2.0/24 and 198.51.100.0/24,
//! only inside our own namespaces.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// `None` when the tests can run; else why not. With CI set, a reason is fatal.
pub fn skip(test: &str, tools: &[&str]) -> bool {
    let mut why = Vec::new();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        why.push("not root (network namespaces and TUN devices need root)".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        why.push("no /dev/net/tun".to_string());
    }
    for t in ["ip"].iter().chain(tools) {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            why.push(format!("{t} is not installed (.ci/run installs it)"));
        }
    }
    if why.is_empty() {
        return false;
    }
    let msg = format!("{test}: skipped: {}", why.join("; "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg} — CI is set, so this test must run");
    }
    // Straight to the stderr handle: the test harness captures eprintln!, and
    // a skip should be visible in a plain `cargo test` run.
    let _ = writeln!(std::io::stderr(), "{msg}");
    true
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that is deleted (with its devices) when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "berth-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS…`, asserting success.
    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a);
    }

    /// A persistent TUN device `dev` with the kernel's address `cidr`, up.
    pub fn tun(&self, dev: &str, cidr: Option<&str>) {
        self.ip(&["tuntap", "add", "dev", dev, "mode", "tun"]);
        if let Some(c) = cidr {
            self.ip(&["addr", "add", c, "dev", dev]);
        }
        self.ip(&["link", "set", dev, "up"]);
    }

    /// A command run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn run(program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A child process killed (and reaped) on Drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(mut c: Command) -> Proc {
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {c:?}: {e}"));
        Proc { child }
    }

    /// Lines of stdout, delivered through a channel (reader thread).
    pub fn lines(&mut self) -> Receiver<String> {
        let out: ChildStdout = self.child.stdout.take().expect("stdout piped");
        lines_of(out)
    }

    /// SIGTERM, then wait (up to `limit`) for a clean exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait(limit)
    }

    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for a line containing `needle`; returns every line seen so far.
pub fn expect_line(rx: &Receiver<String>, needle: &str, limit: Duration) -> Vec<String> {
    let end = std::time::Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?} within {limit:?}; saw {seen:?}"),
        }
    }
}

/// Every remaining line until the stream ends (or `limit`).
pub fn rest(rx: &Receiver<String>, limit: Duration) -> Vec<String> {
    let end = std::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
        seen.push(l);
    }
    seen
}

/// Held by the tests of one test binary that measure (time for 100 MB, no
/// loss): they run one at a time, undisturbed by each other's load.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A measurement, on stderr straight (visible without --nocapture).
pub fn report(msg: String) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Deterministic pseudo-random bytes (xorshift), so no RNG crate is needed.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A python3 TCP sink: listens on ADDR:PORT (IPv4 or IPv6), prints "ready",
/// accepts one connection, reads to EOF, prints "<bytes> <sha256>".
pub const PY_TCP_SINK: &str = r#"
import hashlib, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
s.settimeout(120)
c, _ = s.accept(); c.settimeout(120)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
"#;

/// A python3 TCP source: connects to ADDR:PORT (retrying for 20 s until
/// something listens), sends stdin, half-closes (unless a third argument
/// `hold` keeps its write side open), waits for the peer's EOF, prints
/// "sent N".
pub const PY_TCP_SOURCE: &str = r#"
import socket, sys, time
data = sys.stdin.buffer.read()
end = time.time() + 20
while True:
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=120); break
    except OSError:
        if time.time() > end: raise
        time.sleep(0.1)
c.sendall(data)
if sys.argv[3:] != ["hold"]: c.shutdown(socket.SHUT_WR)
while c.recv(1 << 16): pass
print("sent", len(data), flush=True)
"#;

/// A python3 TCP client: connects to ADDR:PORT (IPv4 or IPv6) and prints
/// "connected", "refused" (ECONNREFUSED) or "other <error>".
pub const PY_TCP_CONNECT: &str = r#"
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    print("connected")
except ConnectionRefusedError:
    print("refused")
except Exception as e:
    print("other", type(e).__name__, e)
"#;

/// A python3 TCP echo client, `ADDR PORT BYTES [gate [PACE_MS]]`: sends
/// BYTES random bytes to ADDR:PORT (IPv4 or IPv6) from one thread while
/// reading the echo in another; prints "<sha256 sent> <sha256 echoed> <bytes
/// echoed> <seconds>". Check it with [`assert_echoed`]. With `gate` it prints
/// "connected" once connected and sends only after a line on stdin; with
/// PACE_MS, 16 kB at a time that many milliseconds apart.
pub const PY_TCP_ECHO: &str = r#"
import hashlib, os, socket, sys, threading, time
n = int(sys.argv[3])
data = os.urandom(n)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=120)
if len(sys.argv) > 4:
    print("connected", flush=True)
    sys.stdin.readline()
pace = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0
t0 = time.monotonic()
def send():
    if pace:
        for i in range(0, n, 16384):
            s.sendall(data[i:i + 16384])
            time.sleep(pace)
    else:
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
h = hashlib.sha256()
got = 0
while True:
    b = s.recv(1 << 18)
    if not b:
        break
    h.update(b)
    got += len(b)
t.join()
print(hashlib.sha256(data).hexdigest(), h.hexdigest(), got,
      "%.3f" % (time.monotonic() - t0), flush=True)
"#;

/// [`PY_TCP_ECHO`]'s output for `bytes` sent: everything came back, SHA-256
/// equal; returns the digest.
pub fn assert_echoed(out: &str, bytes: usize) -> String {
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 4, "echo client printed {out:?}");
    assert_eq!(f[2], bytes.to_string(), "bytes echoed: {out}");
    assert_eq!(f[0], f[1], "SHA-256 of sent and echoed data differ: {out}");
    f[0].to_string()
}

/// `python ARGS…` in `ns` (python: python3, or one with the modules a test
/// needs) with stdin and stdout piped; its stdin and its stdout's lines.
pub fn py_proc(ns: &Netns, python: &str, args: &[&str]) -> (Proc, ChildStdin, Receiver<String>) {
    let mut c = ns.cmd(python);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut p = Proc::spawn(c);
    let stdin = p.child.stdin.take().expect("stdin");
    let lines = p.lines();
    (p, stdin, lines)
}

/// Run `c` to completion with `input` on stdin, killing it after `limit`.
pub fn run_with_input(mut c: Command, input: Vec<u8>, limit: Duration) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let mut stdin = p.child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = p.child.stdout.take().expect("stdout");
    let mut err = p.child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = p
        .wait(limit)
        .unwrap_or_else(|| panic!("still running after {limit:?}"));
    Output {
        status,
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------
// For the tests of `berth run` (run.rs, run_ns.rs): root and nobody.

/// `setpriv` arguments that make the rest run as nobody (uid/gid 65534, no
/// supplementary groups).
pub const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// `setpriv NOBODY`: add the program (one nobody may run, see
/// [`TmpDir::nobody_berth`]) and its arguments.
pub fn as_nobody() -> Command {
    let mut c = Command::new("setpriv");
    c.args(NOBODY);
    c
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether `f` holds within `limit` (asked every 20 ms, and once at the end).
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Processes (other than this one) whose command line holds `marker`, as
/// "PID: COMMAND LINE".
pub fn procs_with(marker: &str) -> Vec<String> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return v;
    };
    let me = std::process::id().to_string();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let line = text(&cmdline).replace('\0', " ");
        if line.contains(marker) {
            v.push(format!("{name}: {line}"));
        }
    }
    v
}

/// /dev/net/tun's mode, set for a test and restored on drop (also when the
/// test fails); one test of the binary at a time holds it. Distributions ship
/// the node 0666; some machines (CI ones among them) have 0600, which a user
/// namespace cannot open (the node is root's on the host), so the rootless
/// tests make it 0666 for their run (and a test of the error message 0600).
pub struct TunMode {
    old: u32,
    _lock: MutexGuard<'static, ()>,
}

impl TunMode {
    pub fn set(mode: u32) -> TunMode {
        static LOCK: Mutex<()> = Mutex::new(());
        let lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::fs::metadata("/dev/net/tun")
            .expect("stat /dev/net/tun")
            .permissions()
            .mode()
            & 0o7777;
        std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(mode))
            .expect("chmod /dev/net/tun");
        TunMode { old, _lock: lock }
    }

    /// 0666, for a rootless test.
    pub fn open_to_all() -> TunMode {
        TunMode::set(0o666)
    }
}

impl Drop for TunMode {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(self.old));
    }
}

/// A fresh directory NAME-PID under /tmp, 0755 (nobody may enter it),
/// removed on drop.
pub struct TmpDir {
    pub path: PathBuf,
}

impl TmpDir {
    pub fn new(name: &str) -> TmpDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("mkdir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
        TmpDir { path }
    }

    /// berth (a link or a copy) in this directory, where nobody may run it:
    /// the build directory may be out of its reach.
    pub fn nobody_berth(&self) -> PathBuf {
        let path = self.path.join("berth");
        if !path.exists() {
            if std::fs::hard_link(BERTH, &path).is_err() {
                std::fs::copy(BERTH, &path).expect("copy berth");
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("chmod berth");
        }
        path
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
