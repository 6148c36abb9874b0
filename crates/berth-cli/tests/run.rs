//! `berth run -- CMD` end to end: CMD in a new network namespace whose TUN
//! is served by a forwarding berth stack; its flows relayed to host sockets.
//!
//! Traffic rules of these tests: the namespace is always 192.0.2.0/24 and
//! 2001:db8::/64 (the default 10.0.2.0/24 and fd00::/64 are only looked at,
//! never used for traffic). In the host's namespace, berth run relays only to
//! the gateway (which means the host's 127.0.0.1 or ::1), where the test's own
//! servers listen. Everything that needs another destination (a closed port
//! elsewhere, pings relayed to another host, the DNS forwarder, SYN and UDP
//! floods, malformed packets) runs the whole `berth run` inside an outer
//! namespace the test makes ([`Outer`]): there 198.51.100.0/26 is local (on
//! lo), 198.51.100.128/25 is a black hole (routed to a veth neighbour that
//! never answers), and there is no other route; /etc/netns/NAME/resolv.conf
//! points berth at the test's resolver on 198.51.100.53.
//!
//! Servers are threads of this process (their sockets made in the outer
//! namespace when needed: see [`in_ns`]); the programs inside are curl, nc,
//! ping and python3 snippets. As root, and as nobody (`setpriv`) with a user
//! namespace. Each test checks that it leaves nothing behind: berth and CMD
//! gone, the control socket removed, its namespaces deleted.
//!
//! Needs root, /dev/net/tun, ip, setpriv, nsenter, unshare, curl, nc
//! (netcat-openbsd), ping, sha256sum and python3; skips (saying why) without
//! them, unless CI is set.

mod support_netns;

use serde_json::Value;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support_netns::*;

/// The namespace's addresses in every test that sends anything.
const NET: [&str; 4] = ["--net", "192.0.2.0/24", "--net6", "2001:db8::/64"];
const GW: &str = "192.0.2.2";
const GW6: &str = "2001:db8::2";
const GUEST: &str = "192.0.2.100";
const GUEST6: &str = "2001:db8::100";
/// What every test needs besides ip.
const BASE_TOOLS: &[&str] = &["setpriv", "python3"];

fn skip_unless(test: &str, tools: &[&str]) -> bool {
    let mut t = BASE_TOOLS.to_vec();
    t.extend_from_slice(tools);
    skip(test, &t)
}

/// The system's python3 (a pyenv or venv one on PATH may live where nobody
/// cannot read it, e.g. under /root).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A marker no other process has: this test's own (CMD carries it as an
/// argument, e.g. `sh -c SCRIPT MARKER`, so it shows in /proc/PID/cmdline).
fn marker(tag: &str) -> String {
    format!("berth-run-test-{tag}-{}", std::process::id())
}

fn netns_exists(name: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    text(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// A port nothing listens on now (bound and released at once).
fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("udp port")
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("tcp port")
            .port()
    }
}

// ---------------------------------------------------------------------------
// Running berth run.

/// Who runs berth run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    /// uid/gid 65534 through setpriv: berth makes a user namespace.
    Nobody,
}

/// A test's directory under /tmp (0755, removed on drop): the control
/// socket (in `ctl/`, owned by nobody so a rootless berth can bind there),
/// and a copy of berth that nobody may run (the build directory may be out
/// of its reach).
struct Scratch {
    dir: TmpDir,
    tag: String,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = TmpDir::new(&format!("berth-run-{tag}"));
        let ctl = dir.path.join("ctl");
        std::fs::create_dir(&ctl).expect("mkdir ctl");
        std::os::unix::fs::chown(&ctl, Some(65534), Some(65534)).expect("chown ctl");
        Scratch {
            dir,
            tag: tag.to_string(),
        }
    }

    /// A control socket path of its own for the `n`th berth run of the test.
    fn control(&self, n: u32) -> PathBuf {
        self.dir
            .path
            .join("ctl")
            .join(format!("{}-{n}.sock", self.tag))
    }

    /// berth, where nobody may run it.
    fn nobody_berth(&self) -> PathBuf {
        self.dir.nobody_berth()
    }
}

/// How to start one `berth run`.
struct Spec<'a> {
    who: Who,
    outer: Option<&'a Outer>,
    /// Options after `run` (NET and --control are added).
    opts: Vec<String>,
    cmd: Vec<String>,
    stdin: bool,
}

impl<'a> Spec<'a> {
    fn new(cmd: &[&str]) -> Spec<'a> {
        Spec {
            who: Who::Root,
            outer: None,
            opts: Vec::new(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            stdin: false,
        }
    }

    fn who(mut self, w: Who) -> Self {
        self.who = w;
        self
    }

    fn outer(mut self, o: &'a Outer) -> Self {
        self.outer = Some(o);
        self
    }

    fn opts(mut self, o: &[&str]) -> Self {
        self.opts.extend(o.iter().map(|s| s.to_string()));
        self
    }

    fn stdin(mut self) -> Self {
        self.stdin = true;
        self
    }

    fn cmd_vec(mut self, v: Vec<String>) -> Self {
        self.cmd = v;
        self
    }

    /// The command line: [ip netns exec O] [setpriv NOBODY] berth run NET
    /// --control PATH OPTS -- CMD. Each layer execs the next, so the pid is
    /// berth's.
    fn command(&self, scratch: &Scratch, control: &Path) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(o) = self.outer {
            argv.extend(["ip", "netns", "exec", &o.ns.name].map(OsString::from));
        }
        match self.who {
            Who::Root => argv.push(BERTH.into()),
            Who::Nobody => {
                argv.push("setpriv".into());
                argv.extend(NOBODY.map(OsString::from));
                argv.push(scratch.nobody_berth().into());
            }
        }
        argv.push("run".into());
        argv.extend(NET.map(OsString::from));
        argv.push("--control".into());
        argv.push(control.into());
        argv.extend(self.opts.iter().map(OsString::from));
        if !self.cmd.is_empty() {
            argv.push("--".into());
            argv.extend(self.cmd.iter().map(OsString::from));
        }
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .current_dir("/")
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn start(self, scratch: &Scratch, n: u32) -> Berth {
        let control = scratch.control(n);
        let c = self.command(scratch, &control);
        let desc = format!("{c:?}");
        let mut p = Proc::spawn(c);
        let stdin = p.child.stdin.take();
        let out = p.lines();
        let err = lines_of(p.child.stderr.take().expect("stderr"));
        Berth {
            p,
            out,
            err,
            err_seen: Vec::new(),
            out_seen: Vec::new(),
            control,
            stdin,
            desc,
        }
    }

    /// Start, wait (up to `limit`) and check that nothing is left.
    fn run(self, scratch: &Scratch, n: u32, limit: Duration) -> Done {
        self.start(scratch, n).finish(limit)
    }
}

/// A running `berth run`.
struct Berth {
    p: Proc,
    out: Receiver<String>,
    err: Receiver<String>,
    err_seen: Vec<String>,
    out_seen: Vec<String>,
    control: PathBuf,
    stdin: Option<ChildStdin>,
    desc: String,
}

/// A finished `berth run`: its status, stdout and stderr lines.
#[derive(Debug)]
struct Done {
    status: ExitStatus,
    out: Vec<String>,
    err: Vec<String>,
}

impl Done {
    fn stdout(&self) -> String {
        self.out.join("\n")
    }

    fn stderr(&self) -> String {
        self.err.join("\n")
    }

    fn assert_success(&self) {
        assert!(
            self.status.success(),
            "berth run failed ({}): stdout {:?} stderr {:?}",
            self.status,
            self.out,
            self.err
        );
    }
}

impl Berth {
    fn pid(&self) -> u32 {
        self.p.child.id()
    }

    fn stderr_now(&mut self) -> Vec<String> {
        while let Ok(l) = self.err.try_recv() {
            self.err_seen.push(l);
        }
        self.err_seen.clone()
    }

    /// Wait for a stdout line containing `needle`; returns it.
    fn line(&mut self, needle: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(l) => {
                    self.out_seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) if Instant::now() < end => {
                    if let Ok(Some(s)) = self.p.child.try_wait() {
                        // Lines may still be in the pipe.
                        let rest = rest(&self.out, Duration::from_millis(500));
                        self.out_seen.extend(rest);
                        if let Some(l) = self.out_seen.iter().find(|l| l.contains(needle)) {
                            return l.clone();
                        }
                        let err = self.stderr_now();
                        panic!(
                            "berth run ended ({s}) without a line with {needle:?}: stdout {:?} stderr {err:?}",
                            self.out_seen
                        );
                    }
                }
                Err(_) => {
                    let err = self.stderr_now();
                    panic!(
                        "no line with {needle:?} within {limit:?}: stdout {:?} stderr {err:?} ({})",
                        self.out_seen, self.desc
                    )
                }
            }
        }
    }

    /// Wait until the control socket is there (berth has set everything up).
    fn wait_ready(&mut self) {
        let ok = wait_until(Duration::from_secs(10), || self.control.exists());
        let err = if ok { Vec::new() } else { self.stderr_now() };
        assert!(
            ok,
            "no control socket {} after 10 s: {err:?}",
            self.control.display()
        );
    }

    /// `berth ss --control PATH ARGS`.
    fn ss(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .arg("ss")
            .arg("--control")
            .arg(&self.control)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("berth ss {args:?}: {e}"))
    }

    /// `berth ss --control PATH --relays --json`.
    fn relays(&mut self) -> Vec<Value> {
        let out = self.ss(&["--relays", "--json"]);
        assert!(
            out.status.success(),
            "berth ss --relays: {} (berth run: {:?})",
            text(&out.stderr),
            self.stderr_now()
        );
        match serde_json::from_slice(&out.stdout) {
            Ok(Value::Array(a)) => a,
            other => panic!("berth ss --relays --json: {other:?}"),
        }
    }

    /// The stack's counters (`berth ss -s --json`).
    fn stats(&mut self) -> Value {
        let out = self.ss(&["-s", "--json"]);
        assert!(out.status.success(), "berth ss -s: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("berth ss -s --json")
    }

    /// berth's open descriptors now.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// berth's open descriptors at rest: once it is ready, and 300 ms later.
    fn fds_at_rest(&mut self) -> usize {
        self.wait_ready();
        std::thread::sleep(Duration::from_millis(300));
        self.fds()
    }

    /// `line` and a newline to CMD's stdin (see [`Spec::stdin`]).
    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("CMD's stdin piped");
        stdin.write_all(format!("{line}\n").as_bytes()).expect(line);
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Wait for the end (killing berth after `limit`), then check that it left
    /// nothing: no process with its control path (berth) or with
    /// `markers` (CMD's), no control socket file.
    fn finish(mut self, limit: Duration) -> Done {
        drop(self.stdin.take());
        let status = match self.p.wait(limit) {
            Some(s) => s,
            None => {
                let err = self.stderr_now();
                let out = rest(&self.out, Duration::from_millis(100));
                panic!(
                    "berth run still running after {limit:?}: stdout {:?}{out:?} stderr {err:?} ({})",
                    self.out_seen, self.desc
                );
            }
        };
        let mut out = std::mem::take(&mut self.out_seen);
        out.extend(rest(&self.out, Duration::from_secs(1)));
        let mut err = self.stderr_now();
        err.extend(rest(&self.err, Duration::from_millis(500)));
        let control = self.control.to_string_lossy().into_owned();
        assert!(
            wait_until(Duration::from_secs(3), || procs_with(&control).is_empty()),
            "berth still running: {:?}",
            procs_with(&control)
        );
        assert!(
            !self.control.exists(),
            "control socket {control} left behind (status {status}, stderr {err:?})"
        );
        Done { status, out, err }
    }
}

/// No process with `marker` (CMD's and its children's) within 3 s.
fn assert_no_procs(marker: &str) {
    assert!(
        wait_until(Duration::from_secs(3), || procs_with(marker).is_empty()),
        "left behind: {:?}",
        procs_with(marker)
    );
}

// ---------------------------------------------------------------------------
// The outer namespace.

/// A namespace to run `berth run` in, so that its relayed flows stay off the
/// host: 198.51.100.0/26 local (lo), 198.51.100.128/25 a black hole (routed
/// via 198.51.100.100, a permanent neighbour on a veth whose peer ignores
/// frames not for it), nothing else. Deleted, with /etc/netns/NAME, on drop.
struct Outer {
    ns: Netns,
    etc: PathBuf,
}

impl Outer {
    fn new(tag: &str) -> Outer {
        let ns = Netns::new(tag);
        let etc = PathBuf::from("/etc/netns").join(&ns.name);
        let o = Outer { ns, etc };
        o.ns.ip(&["addr", "add", "198.51.100.1/26", "dev", "lo"]);
        // berth run reads the resolver from /etc/resolv.conf: never the
        // host's; a test that needs one starts it there (see Resolver).
        o.resolver("198.51.100.53");
        o.ns.ip(&["link", "add", "bh0", "type", "veth", "peer", "name", "bh1"]);
        o.ns.ip(&["link", "set", "bh0", "up"]);
        o.ns.ip(&["link", "set", "bh1", "up"]);
        o.ns.ip(&["route", "add", "198.51.100.100/32", "dev", "bh0"]);
        o.ns.ip(&[
            "neigh",
            "replace",
            "198.51.100.100",
            "lladdr",
            "02:00:00:00:00:64",
            "dev",
            "bh0",
            "nud",
            "permanent",
        ]);
        o.ns.ip(&[
            "route",
            "add",
            "198.51.100.128/25",
            "via",
            "198.51.100.100",
            "dev",
            "bh0",
        ]);
        o
    }

    fn name(&self) -> &str {
        &self.ns.name
    }

    /// /etc/netns/NAME/resolv.conf: `ip netns exec` mounts it over
    /// /etc/resolv.conf, so berth run's "host resolver" is `ip`.
    fn resolver(&self, ip: &str) {
        std::fs::create_dir_all(&self.etc).expect("mkdir /etc/netns/NAME");
        std::fs::write(self.etc.join("resolv.conf"), format!("nameserver {ip}\n"))
            .expect("write resolv.conf");
    }

    /// `sysctl -w KEY=VALUE` in the outer namespace (net.* are per namespace).
    fn sysctl(&self, kv: &str) {
        let out = self
            .ns
            .cmd("sysctl")
            .args(["-qw", kv])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "sysctl {kv}: {}", text(&out.stderr));
    }
}

impl Drop for Outer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.etc);
        // The namespace itself goes with `ns`, dropped right after this.
    }
}

/// Drop the outer namespace and check that it is gone.
fn drop_outer(o: Outer) {
    let (name, etc) = (o.ns.name.clone(), o.etc.clone());
    drop(o);
    assert!(!netns_exists(&name), "namespace {name} left behind");
    assert!(!etc.exists(), "{} left behind", etc.display());
}

/// Run `f` in a thread that joined the network namespace `ns` (None: ours):
/// the sockets it makes belong there and can be used from any thread.
fn in_ns<T: Send + 'static>(ns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let Some(ns) = ns else {
        return f();
    };
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a descriptor we own; affects this thread only
        // (CLONE_NEWNET may be joined by one thread of many).
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("in_ns thread")
}

// ---------------------------------------------------------------------------
// Servers: threads of this process, stopped on drop.

/// Listening sockets served by threads; on drop the accept loops stop (woken
/// by a connection of our own) and no new connection is served.
struct Service {
    stop: Arc<AtomicBool>,
    addrs: Vec<SocketAddr>,
    ns: Option<String>,
    threads: Vec<JoinHandle<()>>,
    /// Connections accepted.
    accepted: Arc<AtomicUsize>,
}

type Handler = Arc<dyn Fn(TcpStream, Arc<AtomicBool>) + Send + Sync>;

impl Service {
    /// Listen on `addrs` (port 0: one free port, the same for all of them) in
    /// `ns`, and serve each connection with `handler` in a thread of its own.
    fn tcp(ns: Option<&str>, addrs: &[IpAddr], handler: Handler) -> Service {
        let want = addrs.to_vec();
        let listeners = in_ns(ns, move || {
            for _ in 0..50 {
                let first = TcpListener::bind(SocketAddr::new(want[0], 0)).expect("bind");
                let port = first.local_addr().expect("addr").port();
                let mut ls = vec![first];
                for ip in &want[1..] {
                    match TcpListener::bind(SocketAddr::new(*ip, port)) {
                        Ok(l) => ls.push(l),
                        Err(_) => break,
                    }
                }
                if ls.len() == want.len() {
                    return ls;
                }
            }
            panic!("no port free on all of {want:?}");
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let mut addrs = Vec::new();
        for l in listeners {
            addrs.push(l.local_addr().expect("addr"));
            let (stop, accepted, handler) = (stop.clone(), accepted.clone(), handler.clone());
            threads.push(std::thread::spawn(move || {
                for c in l.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(c) = c else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (h, stop) = (handler.clone(), stop.clone());
                    std::thread::spawn(move || h(c, stop));
                }
            }));
        }
        Service {
            stop,
            addrs,
            ns: ns.map(str::to_string),
            threads,
            accepted,
        }
    }

    fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let addrs = self.addrs.clone();
        // Wake each accept loop with a connection from where it listens.
        in_ns(self.ns.as_deref(), move || {
            for a in addrs {
                let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
            }
        });
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Read until the end of an HTTP request's head (or EOF); the head.
fn read_head(c: &mut TcpStream) -> String {
    let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
    }
    text(&head)
}

/// HTTP/1.0: any GET gets `body`; the request lines are recorded.
fn http_server(ns: Option<&str>, addrs: &[IpAddr], body: Arc<Vec<u8>>) -> (Service, Requests) {
    let requests: Requests = Arc::new(Mutex::new(Vec::new()));
    let r = requests.clone();
    let h: Handler = Arc::new(move |mut c: TcpStream, _stop| {
        let head = read_head(&mut c);
        let first = head.lines().next().unwrap_or_default().to_string();
        r.lock().unwrap().push(first);
        let _ = c.write_all(
            format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let _ = c.write_all(&body);
        let _ = c.shutdown(Shutdown::Write);
        // Let the client read to the end before we close.
        let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
        let _ = c.read(&mut [0u8; 64]);
    });
    (Service::tcp(ns, addrs, h), requests)
}

type Requests = Arc<Mutex<Vec<String>>>;

/// TCP echo: echoes everything until EOF.
fn echo_server(ns: Option<&str>, addrs: &[IpAddr]) -> Service {
    let h: Handler = Arc::new(|mut c: TcpStream, _stop| {
        let mut b = vec![0u8; 65536];
        let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
        while let Ok(n) = c.read(&mut b) {
            if n == 0 || c.write_all(&b[..n]).is_err() {
                break;
            }
        }
    });
    Service::tcp(ns, addrs, h)
}

/// A UDP echo server in `ns` on `ip` (port 0: a free one); records who sent.
struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    datagrams: Arc<AtomicUsize>,
}

impl UdpEcho {
    fn start(ns: Option<&str>, ip: IpAddr, port: u16, echo: bool) -> UdpEcho {
        let s = in_ns(ns, move || {
            UdpSocket::bind(SocketAddr::new(ip, port)).expect("udp bind")
        });
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = s.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let datagrams = Arc::new(AtomicUsize::new(0));
        let (st, pe, dg) = (stop.clone(), peers.clone(), datagrams.clone());
        let thread = std::thread::spawn(move || {
            let mut b = vec![0u8; 65536];
            while !st.load(Ordering::SeqCst) {
                if let Ok((n, from)) = s.recv_from(&mut b) {
                    dg.fetch_add(1, Ordering::SeqCst);
                    let mut p = pe.lock().unwrap();
                    if !p.contains(&from) {
                        p.push(from);
                    }
                    drop(p);
                    if echo {
                        let _ = s.send_to(&b[..n], from);
                    }
                }
            }
        });
        UdpEcho {
            stop,
            thread: Some(thread),
            addr,
            peers,
            datagrams,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lo4() -> IpAddr {
    Ipv4Addr::LOCALHOST.into()
}

fn lo6() -> IpAddr {
    Ipv6Addr::LOCALHOST.into()
}

// ---------------------------------------------------------------------------
// Programs run inside.

/// `ADDR PORT TIMEOUT`: connect; print "connected <s>", "refused <s>" or
/// "other <error> <s>" (s: seconds it took).
const PY_CONNECT: &str = r#"
import socket, sys, time
t = time.monotonic()
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    r = "connected"
    s.close()
except ConnectionRefusedError:
    r = "refused"
except Exception as e:
    r = "other %s:%s" % (type(e).__name__, e)
print(r.replace(" ", "_"), "%.3f" % (time.monotonic() - t), flush=True)
"#;

/// `ADDR PORT N TAG MODE`: N connections, each sends "TAG i\n" and reads
/// its echo; MODE "par": all at once (a thread each), "seq": one after
/// another (each echoed before the next connects), all kept open. Prints
/// "echoed <ok> <errors>", then waits for the server to close each and
/// prints "closed <n>".
const PY_MANY: &str = r#"
import socket, sys, threading
host, port, n, tag, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
res, socks = [None] * n, [None] * n
def one(i):
    try:
        s = socket.create_connection((host, port), timeout=20)
        socks[i] = s
        msg = ("%s %d\n" % (tag, i)).encode()
        s.sendall(msg)
        got = b""
        while not got.endswith(b"\n"):
            b = s.recv(100)
            if not b:
                break
            got += b
        res[i] = True if got == msg else "got %r" % got
    except Exception as e:
        res[i] = repr(e)
if mode == "par":
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
else:
    for i in range(n): one(i)
bad = [r for r in res if r is not True]
print("echoed", n - len(bad), repr(bad[:3]).replace(" ", ""), flush=True)
closed = 0
for s in socks:
    if s is None: continue
    s.settimeout(60)
    try:
        if s.recv(1) == b"": closed += 1
    except Exception:
        pass
print("closed", closed, flush=True)
"#;

/// `NAME SERVER… MARKER`: an A query for NAME to each SERVER (an address;
/// port 53); prints "SERVER ADDRESS" (or "SERVER error …").
const PY_DNS: &str = r#"
import random, socket, struct, sys
name = sys.argv[1]
for srv in sys.argv[2:-1]:
    try:
        s = socket.socket(socket.AF_INET6 if ":" in srv else socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        qid = random.randrange(65536)
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
        q += struct.pack("!HH", 1, 1)
        s.sendto(q, (srv, 53))
        r, _ = s.recvfrom(2048)
        rid, flags, qd, an = struct.unpack("!HHHH", r[:8])
        if rid != qid:
            print(srv, "error id"); continue
        if an == 0:
            print(srv, "error rcode=%d" % (flags & 15)); continue
        print(srv, socket.inet_ntoa(r[-4:]), flush=True)
    except Exception as e:
        print(srv, "error", type(e).__name__, flush=True)
"#;

/// `SRC N`: N TCP SYNs through a raw socket from SRC to random addresses of
/// 198.51.100.128/25 (the outer namespace's black hole) and random ports,
/// from random source ports; prints "flooded N".
const PY_SYN_FLOOD: &str = r#"
import random, socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src = socket.inet_aton(sys.argv[1]); n = int(sys.argv[2])
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
rnd = random.Random(7)
for i in range(n):
    dst = socket.inet_aton("198.51.100.%d" % rnd.randrange(129, 255))
    sport, dport = rnd.randrange(1024, 65535), rnd.randrange(1, 65535)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, rnd.getrandbits(32), 0, 5 << 4, 0x02, 65535, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xffff, 0, 64, 6, 0, src, dst)
    r.sendto(ip + tcp, (socket.inet_ntoa(dst), 0))
print("flooded", n, flush=True)
"#;

/// `ADDR PORT N FIRST`: one datagram from each of N sockets bound to source
/// ports FIRST, FIRST+1, … (N flows, none the same); prints "sent N".
const PY_UDP_FLOWS: &str = r#"
import socket, sys
n, first = int(sys.argv[3]), int(sys.argv[4]); dst = (sys.argv[1], int(sys.argv[2]))
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", first + i))
    s.sendto(b"flow %d" % i, dst)
    s.close()
print("sent", n, flush=True)
"#;

/// `N`: malformed packets written out of tun0 (AF_PACKET, so nothing checks
/// them): bad IPv4/IPv6 headers and lengths, truncated and inconsistent
/// TCP/UDP/ICMP headers (with correct checksums, so that they get past the
/// IP layer), fragments, then N random mutations of those (half with the
/// IPv4 header checksum fixed up). Only 192.0.2.0/24, 198.51.100.0/24 and
/// 2001:db8::/32 as written; a mutation can make any destination, so run
/// this only inside the outer namespace. Prints "garbage <count>".
const PY_GARBAGE: &str = r#"
import os, random, socket, struct, sys, time
rnd = random.Random(13)
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
def send(pkt, proto=0x0800):
    try:
        s.sendto(pkt, ("tun0", proto))
    except OSError:
        pass
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def fix_ip4(p):
    p = bytearray(p)
    if len(p) >= 20:
        ihl = min((p[0] & 15) * 4, len(p)) or 20
        p[10:12] = b"\0\0"
        p[10:12] = struct.pack("!H", csum(bytes(p[:ihl])))
    return bytes(p)
src, gw, far = (socket.inet_aton(a) for a in ("192.0.2.100", "192.0.2.2", "198.51.100.1"))
def l4(proto, seg, sa, da, off):
    # seg with its checksum (at off) computed over the pseudo-header
    if off is None or len(seg) < off + 2: return seg
    seg = bytearray(seg); seg[off:off + 2] = b"\0\0"
    c = csum(sa + da + struct.pack("!BBH", 0, proto, len(seg)) + bytes(seg))
    seg[off:off + 2] = struct.pack("!H", c)
    return bytes(seg)
def ip4(payload, proto=6, dst=gw, tl=None, ihl=5, frag=0, ver=4, ck=True):
    off = {6: 16, 17: 6, 1: None}.get(proto)
    if ck and proto in (6, 17): payload = l4(proto, payload, src, dst, off)
    if proto == 1 and len(payload) >= 4:
        payload = bytearray(payload); payload[2:4] = b"\0\0"
        payload[2:4] = struct.pack("!H", csum(bytes(payload))); payload = bytes(payload)
    tl = 20 + len(payload) if tl is None else tl
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, tl & 0xffff, rnd.getrandbits(16),
                    frag, 64, proto, 0, src, dst)
    return fix_ip4(h + payload)
def tcp(off, flags=2, opts=b"", dport=80):
    return struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, off << 4, flags, 8192, 0, 0) + opts
def udp(length, data=b"", dport=9):
    return struct.pack("!HHHH", 40000, dport, length, 0) + data
a6 = socket.inet_pton(socket.AF_INET6, "2001:db8::100")
b6 = socket.inet_pton(socket.AF_INET6, "2001:db8::2")
def v6(nh, pl, plen=None):
    return (struct.pack("!IHBB16s16s", 6 << 28, len(pl) if plen is None else plen, nh, 64, a6, b6) + pl, 0x86dd)
cases = [
    b"", b"\x45", b"\x45" + b"\0" * 18,
    ip4(b"", ihl=4), ip4(b"", ihl=15), ip4(b"x" * 10, tl=60000), ip4(b"x" * 10, tl=10),
    ip4(b"\0" * 10), ip4(tcp(15)), ip4(tcp(1)), ip4(tcp(0)),
    ip4(tcp(6, opts=b"\x02\x00\x00\x00")), ip4(tcp(6, opts=b"\x02\xff\x00\x00")),
    ip4(tcp(6, opts=b"\x03\x01\x0e\x00")), ip4(tcp(7, opts=b"\x08\x0a" + b"\0" * 6)),
    ip4(tcp(6, opts=b"\x04\x02\x05\x01")), ip4(tcp(6, opts=b"\x01\x01\x01\x01")),
    ip4(tcp(5, flags=0xff)), ip4(tcp(5, flags=0x12)), ip4(tcp(5, flags=0x10) + b"data"),
    ip4(tcp(5, flags=0x04)), ip4(tcp(5, flags=0x03)), ip4(tcp(5, dport=0)),
    ip4(tcp(5), dst=far), ip4(tcp(5, flags=0x11), dst=far), ip4(tcp(5), ck=False),
    ip4(b"\0" * 4, proto=17), ip4(udp(60000, b"x"), proto=17, dst=far),
    ip4(udp(3), proto=17), ip4(udp(8), proto=17, dst=far), ip4(udp(8, dport=0), proto=17),
    ip4(udp(20, b"x" * 12, dport=53), proto=17, dst=socket.inet_aton("192.0.2.3")),
    ip4(b"\x08", proto=1), ip4(b"\x08\0\0\0", proto=1, dst=far),
    ip4(b"\x03\x03" + b"\0" * 6, proto=1), ip4(b"\x03\x04\0\0\0\0\x05\xdc" + b"\x45" + b"\0" * 19, proto=1),
    ip4(b"\x0b\0" + b"\0" * 6 + b"\x45\0\0\x28", proto=1),
    ip4(b"x" * 100, frag=0x2000), ip4(b"x" * 100, frag=0x1fff), ip4(b"x" * 100, frag=0x3fff),
    ip4(b"x" * 24, frag=0x2000 | 1, proto=17), ip4(b"x" * 24, frag=0x2000, proto=17),
    ip4(b"x" * 20, ver=6), ip4(b"x" * 20, ver=7), ip4(b"x" * 20, proto=250), ip4(b"x" * 20, proto=0),
    v6(6, b"x" * 8, plen=60000), v6(0, b"\x06\xff" + b"\0" * 6), v6(44, b"\x06\0\0\x01" + b"\0" * 4 + b"x" * 8),
    v6(44, b"\x11\0\xff\xf9" + b"\0" * 4 + b"x" * 16), v6(58, b"\x80"), v6(58, b"\x87\0\0\0" + b"\0" * 4),
    v6(17, b"\0\x01\0\x09\0\x03\0\0"), v6(6, b"\0" * 10), v6(43, b"\x06\x00" * 4), v6(60, b"\x3b\x00" + b"\x01\xff" * 3),
]
for c in cases:
    send(*c) if isinstance(c, tuple) else send(c)
pool = [c for c in cases if (c[0] if isinstance(c, tuple) else c)]
n = int(sys.argv[1])
for i in range(n):
    if i % 100 == 0:
        time.sleep(0.002)  # let berth keep up: the TUN queue is 500 long
    c = rnd.choice(pool)
    p, proto = (bytearray(c[0]), c[1]) if isinstance(c, tuple) else (bytearray(c), 0x0800)
    for _ in range(rnd.randrange(1, 4)):
        p[rnd.randrange(len(p))] = rnd.getrandbits(8)
    if rnd.random() < 0.2:
        p += os.urandom(rnd.randrange(0, 200))
    if rnd.random() < 0.2:
        del p[rnd.randrange(len(p)):]
    if proto == 0x0800 and rnd.random() < 0.5:
        p = bytearray(fix_ip4(bytes(p)))
    # Now and then under the other family's protocol number.
    send(bytes(p), proto if rnd.random() < 0.9 else (0x0800 if proto == 0x86dd else 0x86dd))
print("garbage", len(cases) + n, flush=True)
"#;

/// Inside the namespace, as a port forward's target: TCP on [::]:8080
/// (both families) answering every connection with "hello from inside
/// <peer>\n", UDP echo on [::]:5353; prints "listening".
const PY_GUEST_SERVERS: &str = r#"
import socket, threading
def tcp():
    l = socket.socket(socket.AF_INET6)
    l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("::", 8080)); l.listen(16)
    ready.set()
    while True:
        c, peer = l.accept()
        c.sendall(b"hello from inside %s\n" % peer[0].encode())
        c.close()
def udp():
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", 5353))
    ready2.set()
    while True:
        d, peer = u.recvfrom(65536)
        u.sendto(b"echo " + d, peer)
ready, ready2 = threading.Event(), threading.Event()
threading.Thread(target=tcp, daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
ready.wait(); ready2.wait()
print("listening", flush=True)
import sys
sys.stdin.read()
"#;

/// A python3 program as CMD: `python3 -c SCRIPT ARGS… MARKER`.
fn py_cmd(script: &str, args: &[&str], m: &str) -> Vec<String> {
    let mut v = vec![python().to_string(), "-c".into(), script.into()];
    v.extend(args.iter().map(|s| s.to_string()));
    v.push(m.to_string());
    v
}

/// A shell script as CMD: `sh -c SCRIPT MARKER` ($0 is the marker).
fn sh_cmd(script: &str, m: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into(), m.into()]
}

/// "refused 0.004" → ("refused", 0.004).
fn outcome(line: &str) -> (String, f64) {
    let mut it = line.split_whitespace();
    let what = it.next().unwrap_or_default().to_string();
    let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    (what, secs)
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn default_layout_is_slirp4netns_addresses() {
    if skip_unless("default_layout_is_slirp4netns_addresses", &[]) {
        return;
    }
    let scratch = Scratch::new("layout");
    let m = marker("layout");
    // No --net: the defaults, only looked at (nothing is sent).
    let mut c = Command::new(BERTH);
    c.arg("run")
        .arg("--control")
        .arg(scratch.control(0))
        .arg("--")
        .args(sh_cmd(
            "ip -j addr; echo '#'; ip -j route; echo '#'; ip -j -6 route; echo '#'; ip -j link",
            &m,
        ));
    let out = run_with_input(c, Vec::new(), Duration::from_secs(20));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}", text(&out.stderr));
    let v: Vec<Value> = stdout
        .split('#')
        .map(|s| serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s:?}")))
        .collect();
    let (addrs, routes, routes6, links) = (&v[0], &v[1], &v[2], &v[3]);
    let link = |name: &str| {
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["ifname"] == name)
            .unwrap_or_else(|| panic!("no {name}: {links}"))
            .clone()
    };
    let names: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo", "tun0"], "{links}");
    let up = |l: &Value| {
        l["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP"))
    };
    assert!(up(&link("lo")), "lo is up: {links}");
    let tun = link("tun0");
    assert!(up(&tun), "{tun}");
    assert_eq!(tun["mtu"], 65520, "{tun}");
    let info = addrs
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ifname"] == "tun0")
        .expect("tun0 addresses")["addr_info"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        info.iter()
            .any(|a| a["family"] == "inet" && a["local"] == "10.0.2.100" && a["prefixlen"] == 24),
        "{info:?}"
    );
    let a6 = info
        .iter()
        .find(|a| a["family"] == "inet6" && a["local"] == "fd00::100")
        .unwrap_or_else(|| panic!("fd00::100: {info:?}"));
    assert_eq!(a6["prefixlen"], 64, "{a6}");
    assert_eq!(a6["nodad"], true, "{a6}");
    let default = |r: &Value| {
        r.as_array()
            .unwrap()
            .iter()
            .find(|x| x["dst"] == "default")
            .unwrap_or_else(|| panic!("no default route: {r}"))
            .clone()
    };
    let d4 = default(routes);
    assert_eq!(
        (d4["gateway"].as_str(), d4["dev"].as_str()),
        (Some("10.0.2.2"), Some("tun0"))
    );
    let d6 = default(routes6);
    assert_eq!(
        (d6["gateway"].as_str(), d6["dev"].as_str()),
        (Some("fd00::2"), Some("tun0"))
    );
    assert_no_procs(&m);
    assert!(!scratch.control(0).exists());
}

/// 100 MB from a host HTTP server through the gateway; SHA-256 compared.
fn curl_100mb(who: Who, tag: &str, v6_too: bool) {
    let scratch = Scratch::new(tag);
    let body = Arc::new(random_bytes(100 << 20, 0x5eed_0001));
    let sum = sha256_hex(&body);
    let (http, reqs) = http_server(None, &[lo4(), lo6()], body);
    let port = http.port();
    let m = marker(tag);
    let mut urls = vec![format!("http://{GW}:{port}/big-v4")];
    if v6_too {
        urls.push(format!("http://[{GW6}]:{port}/big-v6"));
    }
    for (i, url) in urls.iter().enumerate() {
        let t = Instant::now();
        let done = Spec::new(&[])
            .who(who)
            .cmd_vec(sh_cmd(
                &format!("curl -gsS --max-time 60 {url} | sha256sum"),
                &m,
            ))
            .run(&scratch, i as u32, Duration::from_secs(90));
        done.assert_success();
        let got = done.stdout();
        assert!(
            got.starts_with(&sum),
            "{url} as {who:?}: sha256 {got:?}, want {sum}; stderr {:?}",
            done.err
        );
        report(format!(
            "curl_100mb ({who:?}, {url}): {:.2} s",
            t.elapsed().as_secs_f64()
        ));
    }
    let r = reqs.lock().unwrap().clone();
    assert_eq!(r.len(), urls.len(), "{r:?}");
    assert!(r[0].starts_with("GET /big-v4 "), "{r:?}");
    if v6_too {
        assert!(r[1].starts_with("GET /big-v6 "), "{r:?}");
    }
    assert_no_procs(&m);
}

#[test]
fn curl_100mb_through_the_gateway_ipv4_and_ipv6_as_root() {
    if skip_unless(
        "curl_100mb_through_the_gateway_ipv4_and_ipv6_as_root",
        &["curl", "sha256sum"],
    ) {
        return;
    }
    curl_100mb(Who::Root, "curl-root", true);
}

#[test]
fn curl_100mb_through_the_gateway_as_nobody() {
    if skip_unless(
        "curl_100mb_through_the_gateway_as_nobody",
        &["curl", "sha256sum"],
    ) {
        return;
    }
    let _mode = TunMode::open_to_all();
    curl_100mb(Who::Nobody, "curl-nobody", false);
}

/// N connections to a host echo server through the gateway, all open at
/// once (`mode`: PY_MANY's "par" or "seq"), each echoed, listed by `berth ss
/// --relays` with both ends while open, then closed by the server.
fn many_connections(who: Who, tag: &str, mode: &str) {
    const N: usize = 200;
    let scratch = Scratch::new(tag);
    let m = marker(tag);
    // An echo server that holds each connection (after the echo) until
    // released: the 200 stay open while `berth ss --relays` looks.
    let release = Arc::new(AtomicBool::new(false));
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (rel, ls) = (release.clone(), lines.clone());
    let h: Handler = Arc::new(move |mut c: TcpStream, stop| {
        let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
        let mut got = Vec::new();
        let mut b = [0u8; 256];
        while !got.ends_with(b"\n") {
            match c.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
        let _ = c.write_all(&got);
        ls.lock().unwrap().push(text(&got));
        while !rel.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let server = Service::tcp(None, &[lo4()], h);
    let port = server.port().to_string();
    let mut b = Spec::new(&[])
        .who(who)
        .cmd_vec(py_cmd(PY_MANY, &[GW, &port, &N.to_string(), &m, mode], &m))
        .start(&scratch, 0);
    let t = Instant::now();
    let echoed = b.line("echoed", Duration::from_secs(60));
    assert!(
        echoed.starts_with(&format!("echoed {N} ")),
        "{echoed}; stderr {:?}",
        b.stderr_now()
    );
    let secs = t.elapsed().as_secs_f64();
    let rows = b.relays();
    let fds = b.fds();
    release.store(true, Ordering::SeqCst);
    let closed = b.line("closed", Duration::from_secs(30));
    assert_eq!(closed, format!("closed {N}"));
    let done = b.finish(Duration::from_secs(20));
    done.assert_success();

    let dst = format!("{GW}:{port}");
    let remote = format!("127.0.0.1:{port}");
    let ours: Vec<&Value> = rows
        .iter()
        .filter(|r| r["proto"] == "tcp" && r["destination"] == dst.as_str())
        .collect();
    assert_eq!(ours.len(), N, "relays: {rows:?}");
    let mut inside_ports = std::collections::HashSet::new();
    let mut host_ports = std::collections::HashSet::new();
    for r in &ours {
        assert_eq!(r["host_remote"], remote.as_str(), "{r}");
        let inside: SocketAddr = r["inside"].as_str().unwrap().parse().expect("inside");
        assert_eq!(inside.ip(), "192.0.2.100".parse::<IpAddr>().unwrap(), "{r}");
        let local: SocketAddr = r["host_local"]
            .as_str()
            .unwrap_or_else(|| panic!("no host_local: {r}"))
            .parse()
            .expect("host_local");
        assert!(local.ip().is_loopback(), "{r}");
        inside_ports.insert(inside.port());
        host_ports.insert(local.port());
    }
    assert_eq!(inside_ports.len(), N, "distinct namespace ports");
    assert_eq!(host_ports.len(), N, "distinct host sockets");
    // Each connection's message reached the server once.
    let mut got = lines.lock().unwrap().clone();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), N, "{got:?}");
    assert!(got.iter().all(|l| l.starts_with(&m)), "{got:?}");
    assert_eq!(server.accepted(), N);
    // One host descriptor per relayed connection, and a few more.
    assert!(
        (N..N + 64).contains(&fds),
        "berth had {fds} fds open with {N} relays"
    );
    report(format!(
        "{N} connections ({mode}, {who:?}) echoed in {secs:.2} s; berth had {fds} fds"
    ));
    assert_no_procs(&m);
}

#[test]
fn two_hundred_connections_open_at_once_listed_by_ss_relays() {
    if skip_unless(
        "two_hundred_connections_open_at_once_listed_by_ss_relays",
        &[],
    ) {
        return;
    }
    // Opened one after another (each echoed before the next SYN): see the
    // next test for 200 SYNs at once.
    many_connections(Who::Root, "conc-seq", "seq");
}

#[test]
fn two_hundred_connections_open_at_once_as_nobody() {
    if skip_unless("two_hundred_connections_open_at_once_as_nobody", &[]) {
        return;
    }
    let _mode = TunMode::open_to_all();
    many_connections(Who::Nobody, "conc-nobody", "seq");
}

#[test]

fn two_hundred_concurrent_connections_listed_by_ss_relays() {
    if skip_unless(
        "two_hundred_concurrent_connections_listed_by_ss_relays",
        &[],
    ) {
        return;
    }
    many_connections(Who::Root, "conc-par", "par");
}

#[test]
fn udp_through_the_gateway_with_nc_and_idle_timeout() {
    if skip_unless("udp_through_the_gateway_with_nc_and_idle_timeout", &["nc"]) {
        return;
    }
    let scratch = Scratch::new("udp");
    let m = marker("udp");
    let echo = UdpEcho::start(None, lo4(), 0, true);
    let port = echo.port();

    // A datagram and its echo; the flow is listed while nc waits.
    // nc -q 0: quit when stdin ends (-w would quit while stdin idles).
    let script = format!("(echo hello-udp; sleep 1.5) | nc -n -u -q 0 {GW} {port}");
    let mut b = Spec::new(&[])
        .cmd_vec(sh_cmd(&script, &m))
        .start(&scratch, 0);
    b.line("hello-udp", Duration::from_secs(10));
    let rows = b.relays();
    let done = b.finish(Duration::from_secs(20));
    done.assert_success();
    let flows: Vec<&Value> = rows.iter().filter(|r| r["proto"] == "udp").collect();
    assert_eq!(flows.len(), 1, "{rows:?}");
    let f = flows[0];
    assert_eq!(f["destination"], format!("{GW}:{port}").as_str(), "{f}");
    assert_eq!(
        f["host_remote"],
        format!("127.0.0.1:{port}").as_str(),
        "{f}"
    );
    assert!(
        f["inside"].as_str().unwrap().starts_with("192.0.2.100:"),
        "{f}"
    );
    let host_local: SocketAddr = f["host_local"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        echo.peers.lock().unwrap().clone(),
        vec![host_local],
        "the host socket listed is the one that sent"
    );

    // --udp-timeout 1s: gone ~1 s after its last datagram, while nc still
    // holds its socket; the next datagram makes a new flow (a new host
    // socket) and is echoed as well.
    let script = format!("(echo one; sleep 3.5; echo two; sleep 1) | nc -n -u -q 0 {GW} {port}");
    let mut b = Spec::new(&[])
        .opts(&["--udp-timeout", "1s"])
        .cmd_vec(sh_cmd(&script, &m))
        .start(&scratch, 1);
    b.line("one", Duration::from_secs(10));
    let t = Instant::now();
    let mut seen = false;
    let gone = wait_until(Duration::from_secs(3), || {
        let n = b.relays().iter().filter(|r| r["proto"] == "udp").count();
        seen |= n == 1;
        n == 0
    });
    let gone_after = t.elapsed().as_secs_f64();
    assert!(gone, "the idle flow still listed after 3 s");
    assert!(
        gone_after > 0.5 || !seen,
        "gone after {gone_after:.2} s, before its timeout"
    );
    b.line("two", Duration::from_secs(10));
    let done = b.finish(Duration::from_secs(20));
    done.assert_success();
    assert_eq!(done.stdout(), "one\ntwo");
    assert_eq!(
        echo.peers.lock().unwrap().len(),
        3,
        "one host socket per flow"
    );
    report(format!(
        "udp flow gone {gone_after:.2} s after its echo (--udp-timeout 1s; seen listed: {seen})"
    ));
    assert_no_procs(&m);
}

/// Pings to the gateway (both families), answered by berth itself.
fn ping_gateway(who: Who, tag: &str) {
    let scratch = Scratch::new(tag);
    let m = marker(tag);
    let done = Spec::new(&[])
        .who(who)
        .cmd_vec(sh_cmd(
            &format!("ping -n -c 5 -i 0.2 -W 2 {GW} && ping -6 -n -c 2 -i 0.2 -W 2 {GW6}"),
            &m,
        ))
        .opts(&["-v"])
        .run(&scratch, 0, Duration::from_secs(20));
    done.assert_success();
    let out = done.stdout();
    assert!(out.contains("5 packets transmitted, 5 received"), "{out}");
    assert!(out.contains("2 packets transmitted, 2 received"), "{out}");
    // Answered by berth itself: nothing went to the host.
    assert!(done.stderr().contains(" 0 pings;"), "{}", done.stderr());
    assert_no_procs(&m);
}

#[test]
fn ping_the_gateway_is_answered_by_berth() {
    if skip_unless("ping_the_gateway_is_answered_by_berth", &["ping"]) {
        return;
    }
    ping_gateway(Who::Root, "pinggw");
}

#[test]
fn ping_the_gateway_is_answered_by_berth_as_nobody() {
    if skip_unless("ping_the_gateway_is_answered_by_berth_as_nobody", &["ping"]) {
        return;
    }
    let _mode = TunMode::open_to_all();
    ping_gateway(Who::Nobody, "pinggw-nobody");
}

#[test]
fn ping_other_hosts_is_relayed_as_root_and_as_nobody_per_ping_group_range() {
    if skip_unless(
        "ping_other_hosts_is_relayed_as_root_and_as_nobody_per_ping_group_range",
        &["ping"],
    ) {
        return;
    }
    let scratch = Scratch::new("pingfar");
    let outer = Outer::new("run-ping");
    let m = marker("pingfar");
    let ping = sh_cmd("ping -n -c 3 -i 0.2 -W 2 198.51.100.1", &m);

    // Root: the host's raw ICMP socket.
    let done = Spec::new(&[]).outer(&outer).cmd_vec(ping.clone()).run(
        &scratch,
        0,
        Duration::from_secs(20),
    );
    done.assert_success();
    assert!(
        done.stdout().contains("3 packets transmitted, 3 received"),
        "{}",
        done.stdout()
    );
    assert!(
        done.stdout().contains("from 198.51.100.1"),
        "{}",
        done.stdout()
    );

    let _mode = TunMode::open_to_all();
    // Nobody, with the outer namespace's ping_group_range allowing no group
    // (a new namespace's default, "1 0"): ping fails, and berth says what to
    // change.
    outer.sysctl("net.ipv4.ping_group_range=1 0");
    let done = Spec::new(&[])
        .outer(&outer)
        .who(Who::Nobody)
        .cmd_vec(ping.clone())
        .run(&scratch, 1, Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(1), "ping fails: {done:?}");
    assert!(
        done.stdout().contains("3 packets transmitted, 0 received"),
        "{}",
        done.stdout()
    );
    let err = done.stderr();
    assert!(
        err.contains("berth run: pings to other hosts are not relayed")
            && err.contains("net.ipv4.ping_group_range is \"1 0\", which allows no group")
            && err.contains("sudo sysctl -w net.ipv4.ping_group_range=\"65534 65534\""),
        "{err}"
    );
    assert_eq!(
        err.matches("pings to other hosts are not relayed").count(),
        1,
        "said once: {err}"
    );

    // Every group allowed (as systemd sets it): nobody's pings are relayed
    // through an unprivileged ICMP socket.
    outer.sysctl("net.ipv4.ping_group_range=0 2147483647");
    let done = Spec::new(&[])
        .outer(&outer)
        .who(Who::Nobody)
        .cmd_vec(ping)
        .run(&scratch, 2, Duration::from_secs(20));
    done.assert_success();
    assert!(
        done.stdout().contains("3 packets transmitted, 3 received"),
        "{}",
        done.stdout()
    );
    assert_no_procs(&m);
    drop_outer(outer);
}

/// The test's resolver in the outer namespace: answers every A query with
/// 198.51.100.7 and records the names asked.
struct Resolver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    names: Arc<Mutex<Vec<String>>>,
}

impl Resolver {
    fn start(ns: &str, ip: Ipv4Addr) -> Resolver {
        let s = in_ns(Some(ns), move || {
            UdpSocket::bind(SocketAddr::new(ip.into(), 53)).expect("bind :53")
        });
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let names = Arc::new(Mutex::new(Vec::new()));
        let (st, nm) = (stop.clone(), names.clone());
        let thread = std::thread::spawn(move || {
            let mut b = [0u8; 1500];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, from)) = s.recv_from(&mut b) else {
                    continue;
                };
                let q = &b[..n];
                if n < 17 {
                    continue;
                }
                // The question: labels, then type and class.
                let mut i = 12;
                let mut labels = Vec::new();
                while i < n && q[i] != 0 {
                    let l = q[i] as usize;
                    labels.push(text(q.get(i + 1..i + 1 + l).unwrap_or_default()));
                    i += 1 + l;
                }
                let end = i + 5;
                if end > n {
                    continue;
                }
                nm.lock().unwrap().push(labels.join("."));
                let mut r = Vec::from(&q[..2]);
                r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
                r.extend_from_slice(&q[12..end]);
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7]);
                let _ = s.send_to(&r, from);
            }
        });
        Resolver {
            stop,
            thread: Some(thread),
            names,
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dns_check(who: Who, n: u32, scratch: &Scratch, outer: &Outer, resolver: &Resolver, m: &str) {
    let before = resolver.names.lock().unwrap().len();
    let name = format!("q{n}.berth.test");
    let done = Spec::new(&[])
        .outer(outer)
        .who(who)
        .cmd_vec(py_cmd(PY_DNS, &[&name, "192.0.2.3", "2001:db8::3"], m))
        .run(scratch, n, Duration::from_secs(30));
    done.assert_success();
    assert_eq!(
        done.out,
        ["192.0.2.3 198.51.100.7", "2001:db8::3 198.51.100.7"],
        "as {who:?}: {:?}",
        done.err
    );
    let names = resolver.names.lock().unwrap()[before..].to_vec();
    assert_eq!(names, [name.clone(), name], "queries the resolver saw");
}

#[test]
fn dns_to_dot3_reaches_the_hosts_resolver() {
    if skip_unless("dns_to_dot3_reaches_the_hosts_resolver", &[]) {
        return;
    }
    let scratch = Scratch::new("dns");
    let outer = Outer::new("run-dns");
    let resolver = Resolver::start(outer.name(), Ipv4Addr::new(198, 51, 100, 53));
    let m = marker("dns");
    dns_check(Who::Root, 0, &scratch, &outer, &resolver, &m);
    {
        let _mode = TunMode::open_to_all();
        dns_check(Who::Nobody, 1, &scratch, &outer, &resolver, &m);
    }
    // Port 53 only: another port on .3 is refused.
    let done = Spec::new(&[])
        .outer(&outer)
        .cmd_vec(py_cmd(PY_CONNECT, &["192.0.2.3", "80", "5"], &m))
        .run(&scratch, 2, Duration::from_secs(20));
    done.assert_success();
    assert_eq!(outcome(&done.stdout()).0, "refused", "{:?}", done.out);
    drop(resolver);
    assert_no_procs(&m);
    drop_outer(outer);
}

#[test]

fn names_resolve_inside_when_the_host_resolver_is_on_loopback() {
    if skip_unless(
        "names_resolve_inside_when_the_host_resolver_is_on_loopback",
        &["getent"],
    ) {
        return;
    }
    let scratch = Scratch::new("dns-lo");
    let outer = Outer::new("run-dns-lo");
    // As on a host with systemd-resolved.
    outer.resolver("127.0.0.53");
    let resolver = Resolver::start(outer.name(), Ipv4Addr::new(127, 0, 0, 53));
    let m = marker("dns-lo");
    let done = Spec::new(&[])
        .outer(&outer)
        .cmd_vec(sh_cmd(
            "cat /etc/resolv.conf; getent ahostsv4 lo.berth.test | head -1",
            &m,
        ))
        .run(&scratch, 0, Duration::from_secs(30));
    let out = done.stdout();
    let names = resolver.names.lock().unwrap().clone();
    assert!(
        out.contains("198.51.100.7"),
        "no answer inside: {out:?} (the resolver saw {names:?}; stderr {:?})",
        done.err
    );
    drop(resolver);
    assert_no_procs(&m);
    drop_outer(outer);
}

/// `ADDR PORT N`: N round trips over one TCP connection, each a message of
/// 1 to 1000 bytes (a pattern of the round's number) read back whole;
/// prints "roundtrips <ok> <bad>".
const PY_ROUNDTRIPS: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ok = bad = 0
for i in range(int(sys.argv[3])):
    msg = bytes((i + k) % 251 for k in range(1 + (i * 37) % 1000))
    c.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = c.recv(len(msg) - len(got))
        if not b: break
        got += b
    if got == msg: ok += 1
    else: bad += 1
print("roundtrips", ok, bad, flush=True)
"#;

#[test]
fn busy_polling_relays_round_trips_byte_exact() {
    if skip_unless("busy_polling_relays_round_trips_byte_exact", &[]) {
        return;
    }
    // --busy-poll changes when the relay sleeps, not what it does: every
    // round trip comes back whole, and the polling task ran. A 1 ms window
    // (the default is 50 µs) so that a loaded machine's answers still come
    // within it.
    let _mode = TunMode::open_to_all();
    let scratch = Scratch::new("busy");
    let m = marker("busy");
    let server = echo_server(None, &[lo4()]);
    let port = server.port().to_string();
    const N: u32 = 3000;
    let done = Spec::new(&[])
        .who(Who::Nobody)
        .opts(&["--busy-poll", "1000", "-v"])
        .cmd_vec(py_cmd(PY_ROUNDTRIPS, &[GW, &port, &N.to_string()], &m))
        .run(&scratch, 0, Duration::from_secs(120));
    done.assert_success();
    assert_eq!(done.stdout(), format!("roundtrips {N} 0"), "{done:?}");
    let line = done
        .err
        .iter()
        .find_map(|l| l.strip_prefix("berth run: busy polling: "))
        .unwrap_or_else(|| panic!("no busy polling counts: {:?}", done.err));
    // "P polls, B paused as the CPU was wanted, H windows caught a packet, ..."
    let count = |after: &str| -> u64 {
        let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        words
            .windows(2)
            .find_map(|w| (w[1] == after).then(|| w[0].parse().ok()).flatten())
            .unwrap_or_else(|| panic!("no count before {after:?} in {line:?}"))
    };
    let (polls, hits) = (count("polls"), count("windows"));
    // Windows caught packets, and at least one poll per round trip: each
    // answer lands while polling.
    assert!(hits >= 1, "no window caught a packet: {line}");
    assert!(polls >= u64::from(N), "{polls} polls for {N} round trips");
    report(format!("{N} round trips with --busy-poll 1000: {line}"));

    // --busy-poll 0: no poller at all.
    let done = Spec::new(&[])
        .who(Who::Nobody)
        .opts(&["--busy-poll", "0", "-v"])
        .cmd_vec(py_cmd(PY_ROUNDTRIPS, &[GW, &port, "100"], &m))
        .run(&scratch, 1, Duration::from_secs(60));
    done.assert_success();
    assert_eq!(done.stdout(), "roundtrips 100 0", "{done:?}");
    assert!(
        !done.err.iter().any(|l| l.contains("busy polling")),
        "--busy-poll 0 still polled: {:?}",
        done.err
    );
    assert_no_procs(&m);
}

#[test]
fn closed_ports_are_refused_at_once() {
    if skip_unless("closed_ports_are_refused_at_once", &[]) {
        return;
    }
    let scratch = Scratch::new("refused");
    let m = marker("refused");
    let refused_fast = |done: &Done, what: &str| {
        done.assert_success();
        let (r, secs) = outcome(&done.stdout());
        assert_eq!(r, "refused", "{what}: {:?} {:?}", done.out, done.err);
        assert!(secs < 0.5, "{what}: refused after {secs} s");
        report(format!("{what}: refused in {:.1} ms", secs * 1000.0));
    };

    // The gateway, a host port nothing listens on.
    let closed = free_port(false).to_string();
    let done = Spec::new(&[])
        .cmd_vec(py_cmd(PY_CONNECT, &[GW, &closed, "5"], &m))
        .run(&scratch, 0, Duration::from_secs(20));
    refused_fast(&done, "gateway, closed host port");
    let done = Spec::new(&[])
        .cmd_vec(py_cmd(PY_CONNECT, &[GW6, &closed, "5"], &m))
        .run(&scratch, 1, Duration::from_secs(20));
    refused_fast(&done, "IPv6 gateway, closed host port");

    // --no-host-loopback: refused even where the host listens.
    let echo = echo_server(None, &[lo4()]);
    let open = echo.port().to_string();
    let done = Spec::new(&[])
        .cmd_vec(py_cmd(PY_CONNECT, &[GW, &open, "5"], &m))
        .run(&scratch, 2, Duration::from_secs(20));
    done.assert_success();
    assert_eq!(outcome(&done.stdout()).0, "connected", "{:?}", done.err);
    let done = Spec::new(&[])
        .opts(&["--no-host-loopback"])
        .cmd_vec(py_cmd(PY_CONNECT, &[GW, &open, "5"], &m))
        .run(&scratch, 3, Duration::from_secs(20));
    refused_fast(&done, "--no-host-loopback");
    assert_eq!(echo.accepted(), 1, "only the first run reached the host");

    // Another host (in the outer namespace): a closed port there.
    let outer = Outer::new("run-refused");
    let done = Spec::new(&[])
        .outer(&outer)
        .cmd_vec(py_cmd(PY_CONNECT, &["198.51.100.1", "9", "5"], &m))
        .run(&scratch, 4, Duration::from_secs(20));
    refused_fast(&done, "198.51.100.1, closed port");
    assert_no_procs(&m);
    drop_outer(outer);
}

/// -p: TCP over IPv4 and IPv6 and UDP, from the host into servers inside.
/// The clients are on the host's loopback: spliced to kernel sockets inside
/// by default (the server sees the namespace's own address), carried by the
/// stack with --no-splice (the server sees the gateway).
fn port_forwards(who: Who, tag: &str, splice: bool) {
    let scratch = Scratch::new(tag);
    let m = marker(tag);
    let (hp, hp6, hpu) = (free_port(false), free_port(false), free_port(true));
    // Splicing itself: the servers' accepts do not go through berth.
    let mode: &[&str] = if splice {
        &["-v", "--no-handoff"]
    } else {
        &["-v", "--no-splice"]
    };
    let mut b = Spec::new(&[])
        .who(who)
        .opts(mode)
        .opts(&[
            "-p",
            &format!("127.0.0.1:{hp}:8080"),
            "-p",
            &format!("[::1]:{hp6}:8080/tcp"),
            "-p",
            &format!("127.0.0.1:{hpu}:5353/udp"),
        ])
        .stdin()
        .cmd_vec(py_cmd(PY_GUEST_SERVERS, &[], &m))
        .start(&scratch, 0);
    b.line("listening", Duration::from_secs(10));
    let get = |addr: SocketAddr| -> String {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = String::new();
        let _ = c.read_to_string(&mut s);
        s
    };
    let got = get(SocketAddr::new(lo4(), hp));
    let (from4, from6) = if splice {
        // A socket of the namespace connects to its own address.
        (GUEST, GUEST6)
    } else {
        // berth connects from its own address in the namespace (the gateway).
        (GW, GW6)
    };
    assert_eq!(got, format!("hello from inside ::ffff:{from4}\n"));
    let got = get(SocketAddr::new(lo6(), hp6));
    assert_eq!(got, format!("hello from inside {from6}\n"));
    // The socket helper runs only when splicing, and only while berth does.
    let helper = |pid: u32| -> Vec<String> {
        procs_with("__ns-sockets")
            .into_iter()
            .filter(|l| l.contains(&format!(" {pid} ")))
            .collect()
    };
    let berth_pid = b.pid();
    assert_eq!(
        helper(berth_pid).len(),
        usize::from(splice),
        "{:?}",
        helper(berth_pid)
    );

    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.connect(("127.0.0.1", hpu)).unwrap();
    for msg in ["first", "second"] {
        u.send(msg.as_bytes()).unwrap();
        let mut buf = [0u8; 100];
        let n = u
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("udp echo through -p: {e}; {:?}", b.stderr_now()));
        assert_eq!(text(&buf[..n]), format!("echo {msg}"));
    }
    let done = b.finish(Duration::from_secs(20));
    done.assert_success();
    let (fwd, spliced) = if splice { (0, 2) } else { (2, 0) };
    assert!(
        done.err.iter().any(|l| l.contains(&format!(
            "-p: {fwd} TCP through the stack, {spliced} spliced (0 fallbacks)"
        ))),
        "{:?}",
        done.err
    );
    assert!(helper(berth_pid).is_empty(), "{:?}", helper(berth_pid));
    // The forwards are gone with berth.
    assert!(TcpStream::connect(("127.0.0.1", hp)).is_err());
    assert_no_procs(&m);
}

#[test]
fn port_forwards_reach_servers_inside() {
    if skip_unless("port_forwards_reach_servers_inside", &[]) {
        return;
    }
    port_forwards(Who::Root, "pub", true);
}

#[test]
fn port_forwards_through_the_stack_with_no_splice() {
    if skip_unless("port_forwards_through_the_stack_with_no_splice", &[]) {
        return;
    }
    port_forwards(Who::Root, "pub-stack", false);
}

#[test]
fn port_forwards_reach_servers_inside_as_nobody() {
    if skip_unless("port_forwards_reach_servers_inside_as_nobody", &[]) {
        return;
    }
    let _mode = TunMode::open_to_all();
    port_forwards(Who::Nobody, "pub-nobody", true);
}

/// A TCP server inside on [::]:7000: says "peer ADDR", echoes to EOF, then
/// half-closes and waits for the client's close.
const PY_GUEST_ECHO: &str = r#"
import socket, threading
def serve(c, peer):
    c.sendall(b"peer %s\n" % peer[0].encode())
    while True:
        d = c.recv(262144)
        if not d:
            break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
l = socket.socket(socket.AF_INET6)
l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("::", 7000)); l.listen(16)
print("listening", flush=True)
while True:
    c, peer = l.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"#;

/// Connect to `addr`, read the "peer" line, (after `hold` says so) send
/// `data` and half-close while reading the echo to EOF. Returns (peer line,
/// echo).
fn echo_through(
    addr: SocketAddr,
    data: Arc<Vec<u8>>,
    hold: Option<std::sync::mpsc::Receiver<()>>,
) -> (String, Vec<u8>) {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        assert_eq!((&s).read(&mut byte).expect("peer line"), 1, "peer line cut");
        line.push(byte[0]);
    }
    if let Some(h) = hold {
        // The caller looks at the connection now.
        let _ = h.recv();
    }
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).expect("send");
        w.shutdown(std::net::Shutdown::Write).expect("half-close");
    });
    let mut echo = Vec::new();
    (&s).read_to_end(&mut echo).expect("echo");
    writer.join().unwrap();
    (text(&line), echo)
}

/// Spliced -p carries 32 MB each way byte-exact across a half-close, shows in
/// `berth ss --relays` as "tcp-splice"; a client on a non-loopback address of
/// the host goes through the stack instead; a client that resets is reset
/// inside too.
#[test]
fn spliced_port_forward_is_byte_exact_and_only_for_loopback_clients() {
    if skip_unless(
        "spliced_port_forward_is_byte_exact_and_only_for_loopback_clients",
        &[],
    ) {
        return;
    }
    let scratch = Scratch::new("splice");
    let m = marker("splice");
    let outer = Outer::new("run-splice");
    let hp = 17000;
    let mut b = Spec::new(&[])
        .outer(&outer)
        .opts(&["-v", "--no-handoff", "-p", &format!("0.0.0.0:{hp}:7000")])
        .cmd_vec(py_cmd(PY_GUEST_ECHO, &[], &m))
        .start(&scratch, 0);
    b.line("listening", Duration::from_secs(10));
    let data: Arc<Vec<u8>> = Arc::new(
        (0..32u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let lo = SocketAddr::new(lo4(), hp);
    let (tx, rx) = std::sync::mpsc::channel();
    let d = Arc::clone(&data);
    let ns = outer.name().to_string();
    let client =
        std::thread::spawn(move || in_ns(Some(&ns), move || echo_through(lo, d, Some(rx))));
    // While it is open: one spliced relay, from the host's loopback.
    let mut row = Value::Null;
    assert!(
        wait_until(Duration::from_secs(5), || {
            row = b
                .relays()
                .into_iter()
                .find(|r| r["proto"] == "tcp-splice")
                .unwrap_or(Value::Null);
            !row.is_null()
        }),
        "no tcp-splice row in berth ss --relays"
    );
    assert!(
        row["host_remote"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{row}"
    );
    assert_eq!(row["destination"], format!("{GUEST}:7000"), "{row}");
    tx.send(()).unwrap();
    let (peer, echo) = client.join().unwrap();
    assert_eq!(peer, format!("peer ::ffff:{GUEST}\n"));
    assert!(
        echo.len() == data.len() && echo == *data,
        "echo differs: {} bytes",
        echo.len()
    );

    // To and so from 198.51.100.1 (an address of the host that is not
    // loopback): the stack carries it, and the server sees the gateway.
    let d = Arc::new(data[..1 << 20].to_vec());
    let d2 = Arc::clone(&d);
    let far = SocketAddr::new("198.51.100.1".parse().unwrap(), hp);
    let (peer, echo) = in_ns(Some(outer.name()), move || echo_through(far, d2, None));
    assert_eq!(peer, format!("peer ::ffff:{GW}\n"));
    assert!(echo == *d, "echo through the stack differs");

    // A client that resets: the connection inside is reset too, and its
    // relay row goes.
    let ns = outer.name().to_string();
    in_ns(Some(&ns), move || {
        let s = TcpStream::connect_timeout(&lo, Duration::from_secs(5)).unwrap();
        let mut line = [0u8; 64];
        let _ = (&s).read(&mut line).unwrap();
        let zero = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &zero).unwrap();
    });
    assert!(
        wait_until(Duration::from_secs(5), || b.relays().is_empty()),
        "relays left: {:?}",
        b.relays()
    );
    b.signal("TERM");
    let done = b.finish(Duration::from_secs(20));
    assert!(
        done.err
            .iter()
            .any(|l| l.contains("-p: 1 TCP through the stack, 2 spliced (0 fallbacks)")),
        "{:?}",
        done.err
    );
    assert_no_procs(&m);
    drop_outer(outer);
}

/// Servers for the hand-off: on [::]:7000 (dual-stack) a blocking accept
/// loop, on 0.0.0.0:7001 a non-blocking listener accepted only when select
/// says so. Each connection gets "peer ADDR local PORT" (getsockname's port
/// tells a handed-off host connection, whose local port is the host's), then
/// an echo to EOF. "inside" on stdin connects from inside to argv[1]:7000.
const PY_GUEST_HANDOFF: &str = r#"
import socket, threading, selectors, sys
def serve(c, peer):
    try:
        c.sendall(b"peer %s local %d\n" % (peer[0].encode(), c.getsockname()[1]))
        while True:
            d = c.recv(262144)
            if not d:
                break
            c.sendall(d)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
    except OSError:
        pass
    c.close()
def blocking():
    l = socket.socket(socket.AF_INET6)
    l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("::", 7000)); l.listen(16)
    ready.set()
    while True:
        c, peer = l.accept()
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()
def polled():
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", 7001)); l.listen(16); l.setblocking(False)
    sel = selectors.DefaultSelector(); sel.register(l, selectors.EVENT_READ)
    ready2.set()
    while True:
        sel.select()
        try:
            c, peer = l.accept()
        except BlockingIOError:
            continue
        c.setblocking(True)
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()
ready, ready2 = threading.Event(), threading.Event()
threading.Thread(target=blocking, daemon=True).start()
threading.Thread(target=polled, daemon=True).start()
ready.wait(); ready2.wait()
print("listening", flush=True)
for line in sys.stdin:
    if line.strip() == "inside":
        s = socket.create_connection((sys.argv[1], 7000))
        print("inside " + s.makefile().readline().strip(), flush=True)
        s.close()
"#;

/// Accept hand-off: a host client of `-p` becomes the server's accepted
/// connection itself (its local port is the host's, its peer the host
/// client), byte-exact both ways, for a blocking accept and for a
/// non-blocking one after select (whose first client is spliced: its port
/// had no accept through berth yet); a client inside the namespace to the
/// same port is passed on unchanged.
fn handoff(who: Who, tag: &str) {
    let scratch = Scratch::new(tag);
    let m = marker(tag);
    let (hp, hp2) = (free_port(false), free_port(false));
    let mut b = Spec::new(&[])
        .who(who)
        .opts(&[
            "-v",
            "-p",
            &format!("127.0.0.1:{hp}:7000"),
            "-p",
            &format!("127.0.0.1:{hp2}:7001"),
        ])
        .stdin()
        .cmd_vec(py_cmd(PY_GUEST_HANDOFF, &[GUEST], &m))
        .start(&scratch, 0);
    b.line("listening", Duration::from_secs(10));
    let data: Arc<Vec<u8>> = Arc::new(
        (0..16u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect(),
    );
    let through = |port: u16, d: &Arc<Vec<u8>>| {
        let (peer, echo) = echo_through(SocketAddr::new(lo4(), port), Arc::clone(d), None);
        assert!(
            echo.len() == d.len() && echo == **d,
            "echo through {port} differs: {} bytes",
            echo.len()
        );
        peer
    };
    // The blocking server's first accept may or may not be waiting in berth
    // yet when the first client comes; the second client surely finds it.
    let small = Arc::new(data[..4096].to_vec());
    let first = through(hp, &small);
    let handed = format!(
        "peer ::ffff:127.0.0.1 local {hp}
"
    );
    let spliced = format!(
        "peer ::ffff:{GUEST} local 7000
"
    );
    assert!(first == handed || first == spliced, "{first:?}");
    assert_eq!(through(hp, &data), handed);
    // The polled server: spliced first, handed off once it has accepted.
    assert_eq!(
        through(hp2, &small),
        format!(
            "peer {GUEST} local 7001
"
        )
    );
    assert_eq!(
        through(hp2, &data),
        format!(
            "peer 127.0.0.1 local {hp2}
"
        )
    );
    // A client inside to the same port: the server sees it as it is.
    b.say("inside");
    let l = b.line("inside", Duration::from_secs(10));
    assert_eq!(l, format!("inside peer ::ffff:{GUEST} local 7000"));
    let done = b.finish(Duration::from_secs(20));
    done.assert_success();
    let (h, p, s) = if first == handed {
        (3, 2, 1)
    } else {
        (2, 3, 2)
    };
    let want = format!(
        "accept hand-off: {h} host connections handed to the server, {p} other connections passed on, {s} spliced"
    );
    assert!(
        done.err.iter().any(|l| l.contains(&want)),
        "{want}: {:?}",
        done.err
    );
    assert!(
        done.err
            .iter()
            .any(|l| l.contains(&format!("-p: 0 TCP through the stack, {s} spliced"))),
        "{:?}",
        done.err
    );
    assert_no_procs(&m);
}

#[test]
fn port_forwards_hand_host_clients_to_the_servers_accept() {
    if skip_unless("port_forwards_hand_host_clients_to_the_servers_accept", &[]) {
        return;
    }
    handoff(Who::Root, "handoff");
}

#[test]
fn port_forwards_hand_host_clients_to_the_servers_accept_as_nobody() {
    if skip_unless(
        "port_forwards_hand_host_clients_to_the_servers_accept_as_nobody",
        &[],
    ) {
        return;
    }
    let _mode = TunMode::open_to_all();
    handoff(Who::Nobody, "handoff-nobody");
}

/// CMD exits 7, is killed by SIGKILL, and (SIGTERM sent to berth) by
/// SIGTERM: berth run exits 7, 137 and 143, at once.
fn exit_and_signals(who: Who, scratch: &Scratch, m: &str) {
    let done = Spec::new(&[]).who(who).cmd_vec(sh_cmd("exit 7", m)).run(
        scratch,
        10,
        Duration::from_secs(20),
    );
    assert_eq!(done.status.code(), Some(7), "{done:?}");

    let done = Spec::new(&[])
        .who(who)
        .cmd_vec(sh_cmd("kill -KILL $$", m))
        .run(scratch, 11, Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(128 + 9), "{done:?}");

    let mut b = Spec::new(&[])
        .who(who)
        .cmd_vec(sh_cmd("echo started; exec sleep 30", m))
        .start(scratch, 12);
    b.line("started", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    b.signal("TERM");
    let done = b.finish(Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(128 + 15), "{done:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn exit_status_is_cmds_as_nobody() {
    if skip_unless("exit_status_is_cmds_as_nobody", &[]) {
        return;
    }
    let _mode = TunMode::open_to_all();
    let scratch = Scratch::new("exit-nobody");
    let m = marker("exit-nobody");
    exit_and_signals(Who::Nobody, &scratch, &m);
    assert_no_procs(&m);
}

#[test]
fn exit_status_is_cmds() {
    if skip_unless("exit_status_is_cmds", &[]) {
        return;
    }
    let scratch = Scratch::new("exit");
    let m = marker("exit");
    exit_and_signals(Who::Root, &scratch, &m);

    let done =
        Spec::new(&["/nonexistent/berth-run-test"]).run(&scratch, 2, Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(127), "{done:?}");
    assert!(
        done.stderr().contains(
            "berth run: cannot run /nonexistent/berth-run-test: No such file or directory"
        ),
        "{}",
        done.stderr()
    );

    // No command: berth's own error (125), saying what to give.
    let out = Command::new(BERTH)
        .arg("run")
        .args(NET)
        .stdin(Stdio::null())
        .output()
        .expect("berth run");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("berth run: give a command after --"),
        "{}",
        text(&out.stderr)
    );
    // A bad option value is a usage error (clap's 2).
    let out = Command::new(BERTH)
        .args(["run", "--net", "192.0.2.0/33", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .expect("berth run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    assert_no_procs(&m);
}

#[test]
fn pid_mode_serves_an_existing_namespace() {
    if skip_unless(
        "pid_mode_serves_an_existing_namespace",
        &["unshare", "nsenter", "curl"],
    ) {
        return;
    }
    let scratch = Scratch::new("pid");
    let (http, reqs) = http_server(None, &[lo4()], Arc::new(b"from the host\n".to_vec()));
    // `unshare -n sleep` execs sleep: its pid is the holder's.
    let sleep_arg = format!("20.{}", std::process::id());
    let mut holder = Proc::spawn({
        let mut c = Command::new("unshare");
        c.args(["-n", "sleep", &sleep_arg]);
        c
    });
    let pid = holder.child.id();
    let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n != ours)
        }),
        "the holder never got a namespace of its own"
    );
    let control = scratch.control(0);
    let hp = free_port(false);
    // No CMD (and no --): berth serves the holder's namespace.
    let c = Spec::new(&[])
        .opts(&[
            "--pid",
            &pid.to_string(),
            "-p",
            &format!("127.0.0.1:{hp}:8081"),
        ])
        .command(&scratch, &control);
    let mut p = Proc::spawn(c);
    let err = lines_of(p.child.stderr.take().expect("stderr"));
    assert!(
        wait_until(Duration::from_secs(10), || control.exists()),
        "berth run --pid never got ready: {:?}",
        rest(&err, Duration::from_millis(100))
    );
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "curl",
            "-sS",
            "--max-time",
            "10",
        ])
        .arg(format!("http://{GW}:{}/via-pid", http.port()))
        .output()
        .expect("nsenter curl");
    assert_eq!(
        text(&out.stdout),
        "from the host\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(reqs.lock().unwrap()[0], "GET /via-pid HTTP/1.1");
    // -p from the host's loopback: spliced into the joined namespace by a
    // socket helper that joined it too.
    let mut server = Proc::spawn({
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid.to_string(), "-n", python(), "-c"])
            .arg(
                "import socket,sys\n\
                 l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 l.bind(('192.0.2.100', 8081)); l.listen(1); print('up', flush=True)\n\
                 c, peer = l.accept(); c.sendall(b'inside, from %s' % peer[0].encode()); c.close()",
            )
            .arg(&sleep_arg)
            .stdout(Stdio::piped());
        c
    });
    let up = lines_of(server.child.stdout.take().expect("stdout"));
    assert_eq!(
        up.recv_timeout(Duration::from_secs(10)).ok().as_deref(),
        Some("up")
    );
    let mut c = TcpStream::connect(("127.0.0.1", hp)).expect("connect to the -p port");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    assert_eq!(got, format!("inside, from {GUEST}"));
    let _ = server.child.wait();
    let helpers = |berth: u32| {
        procs_with("__ns-sockets")
            .into_iter()
            .filter(|l| l.contains(&format!(" {berth} ")))
            .count()
    };
    let berth_pid = p.child.id();
    assert_eq!(
        helpers(berth_pid),
        1,
        "the socket helper runs while berth does"
    );
    // The namespace's process ends: so does berth, with status 0.
    let t = Instant::now();
    let _ = holder.child.kill();
    let _ = holder.child.wait();
    let status = p
        .wait(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("berth run --pid outlived the process by 5 s"));
    assert!(
        status.success(),
        "{status}: {:?}",
        rest(&err, Duration::from_millis(500))
    );
    report(format!(
        "berth run --pid exited {:.2} s after the process",
        t.elapsed().as_secs_f64()
    ));
    assert!(!control.exists(), "control socket left behind");
    assert_no_procs(&control.to_string_lossy());
    assert_no_procs(&sleep_arg);
    assert_eq!(helpers(berth_pid), 0, "the socket helper outlived berth");
}

/// A SOCKS5 proxy (RFC 1928: no authentication, CONNECT only) that connects
/// only to loopback addresses; records each CONNECT's destination.
fn socks5_proxy() -> (Service, Arc<Mutex<Vec<SocketAddr>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let h: Handler = Arc::new(move |mut c: TcpStream, _stop| {
        let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
        let mut b = [0u8; 262];
        let ok = (|| -> std::io::Result<Option<TcpStream>> {
            c.read_exact(&mut b[..2])?;
            let n = b[1] as usize;
            c.read_exact(&mut b[..n])?;
            if !b[..n].contains(&0) {
                c.write_all(&[5, 0xff])?;
                return Ok(None);
            }
            c.write_all(&[5, 0])?;
            c.read_exact(&mut b[..4])?;
            if b[0] != 5 || b[1] != 1 {
                c.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0])?;
                return Ok(None);
            }
            let ip: IpAddr = match b[3] {
                1 => {
                    let mut a = [0u8; 4];
                    c.read_exact(&mut a)?;
                    Ipv4Addr::from(a).into()
                }
                4 => {
                    let mut a = [0u8; 16];
                    c.read_exact(&mut a)?;
                    Ipv6Addr::from(a).into()
                }
                _ => {
                    c.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
                    return Ok(None);
                }
            };
            let mut p = [0u8; 2];
            c.read_exact(&mut p)?;
            let dst = SocketAddr::new(ip, u16::from_be_bytes(p));
            s2.lock().unwrap().push(dst);
            // Keep all traffic on this machine's loopback.
            if !ip.is_loopback() {
                c.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0])?;
                return Ok(None);
            }
            match TcpStream::connect_timeout(&dst, Duration::from_secs(5)) {
                Ok(up) => {
                    c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
                    Ok(Some(up))
                }
                Err(_) => {
                    c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
                    Ok(None)
                }
            }
        })();
        let Ok(Some(up)) = ok else { return };
        let _ = c.set_read_timeout(None);
        let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
        let mut up = up;
        let t = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up2, &mut c2);
            let _ = c2.shutdown(Shutdown::Write);
        });
        let _ = std::io::copy(&mut c, &mut up);
        let _ = up.shutdown(Shutdown::Write);
        let _ = t.join();
    });
    (Service::tcp(None, &[lo4()], h), seen)
}

#[test]
fn socks5_proxy_carries_tcp_flows() {
    if skip_unless("socks5_proxy_carries_tcp_flows", &["curl"]) {
        return;
    }
    let scratch = Scratch::new("socks");
    let m = marker("socks");
    let (http, reqs) = http_server(None, &[lo4()], Arc::new(b"through the proxy\n".to_vec()));
    let (proxy, seen) = socks5_proxy();
    let url = format!("http://{GW}:{}/x", http.port());
    let done = Spec::new(&[])
        .opts(&["--socks5", &format!("127.0.0.1:{}", proxy.port())])
        .cmd_vec(sh_cmd(&format!("curl -sS --max-time 10 {url}"), &m))
        .run(&scratch, 0, Duration::from_secs(20));
    done.assert_success();
    assert_eq!(done.stdout(), "through the proxy", "{:?}", done.err);
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![SocketAddr::new(lo4(), http.port())],
        "the proxy's CONNECTs"
    );
    assert_eq!(proxy.accepted(), 1);
    assert_eq!(reqs.lock().unwrap().clone(), ["GET /x HTTP/1.1"]);
    assert_no_procs(&m);
}

/// The outer namespace's TCP echo server on its 127.0.0.1 (the gateway, seen
/// from inside) and the SYN flood run.
fn syn_flood(
    tag: &str,
    syn_retries: Option<&str>,
    connect_limit: &str,
) -> (f64, String, usize, usize) {
    const PENDING: usize = 64;
    let scratch = Scratch::new(tag);
    let outer = Outer::new(&format!("run-{tag}"));
    if let Some(r) = syn_retries {
        outer.sysctl(&format!("net.ipv4.tcp_syn_retries={r}"));
    }
    let echo = echo_server(Some(outer.name()), &[lo4()]);
    let port = echo.port().to_string();
    let m = marker(tag);
    // Wait (stdin) until the test has counted berth's descriptors, flood,
    // then connect to the gateway while the flood's requests are pending.
    let script = format!(
        "read go; {py} -c '{flood}' 192.0.2.100 2000 {m} && echo flooded && \
         {py} -c '{conn}' {GW} {port} {connect_limit} {m}",
        py = python(),
        flood = PY_SYN_FLOOD.replace('\'', "'\\''"),
        conn = PY_CONNECT.replace('\'', "'\\''"),
    );
    let mut b = Spec::new(&[])
        .outer(&outer)
        .opts(&["--max-pending", &PENDING.to_string(), "-v"])
        .stdin()
        .cmd_vec(sh_cmd(&script, &m))
        .start(&scratch, 0);
    let base = b.fds_at_rest();
    b.say("go");
    b.line("flooded", Duration::from_secs(30));
    let mut most = base;
    let mut result = None;
    let end = Instant::now() + Duration::from_secs(60);
    while result.is_none() && Instant::now() < end {
        most = most.max(b.fds());
        if let Ok(l) = b.out.recv_timeout(Duration::from_millis(50)) {
            b.out_seen.push(l.clone());
            if l.starts_with("connected") || l.starts_with("refused") || l.starts_with("other") {
                result = Some(l);
            }
        }
    }
    let result = result.unwrap_or_else(|| panic!("no connect result: {:?}", b.stderr_now()));
    let done = b.finish(Duration::from_secs(10));
    let (what, secs) = outcome(&result);
    let summary = done.stderr();
    assert!(
        most <= base + PENDING + 8,
        "berth held {most} descriptors (at rest {base}; --max-pending {PENDING}): {summary}"
    );
    report(format!(
        "{tag}: 2000 SYNs to a black hole: berth held at most {most} fds (at rest {base}); \
         the gateway connection: {what} after {secs:.2} s; {summary}"
    ));
    assert_no_procs(&m);
    drop(echo);
    drop_outer(outer);
    (secs, what, most, base)
}

#[test]
fn syn_flood_to_unreachable_hosts_stays_within_max_pending() {
    if skip_unless(
        "syn_flood_to_unreachable_hosts_stays_within_max_pending",
        &[],
    ) {
        return;
    }
    // tcp_syn_retries=1 in the outer namespace: its connects to the black
    // hole give up after about 3 s (1 + 2), freeing berth's pending requests
    // sooner than the default ~127 s would (see the test below).
    let (secs, what, _, _) = syn_flood("synflood", Some("1"), "20");
    assert_eq!(what, "connected", "the gateway connection after the flood");
    assert!(secs < 15.0, "connected only after {secs} s");
}

#[test]

fn gateway_connections_work_during_a_syn_flood_to_a_black_hole() {
    if skip_unless(
        "gateway_connections_work_during_a_syn_flood_to_a_black_hole",
        &[],
    ) {
        return;
    }
    let (secs, what, _, _) = syn_flood("synflood-bh", None, "10");
    assert_eq!(
        what, "connected",
        "the gateway connection during the flood (after {secs:.2} s)"
    );
}

#[test]
fn udp_flows_stay_within_max_udp_flows() {
    if skip_unless("udp_flows_stay_within_max_udp_flows", &[]) {
        return;
    }
    const FLOWS: usize = 500;
    let scratch = Scratch::new("udpflood");
    let outer = Outer::new("run-udpflood");
    let sink = UdpEcho::start(Some(outer.name()), lo4(), 0, false);
    let port = sink.port().to_string();
    let m = marker("udpflood");
    // 3000 flows to the gateway (a sink on the outer 127.0.0.1) and 3000 to
    // a closed port of another host (ICMP port unreachable comes back).
    let script = format!(
        "read go; {py} -c '{f}' {GW} {port} 3000 20000 {m} && \
         {py} -c '{f}' 198.51.100.1 9 3000 30000 {m} && read done",
        py = python(),
        f = PY_UDP_FLOWS.replace('\'', "'\\''"),
    );
    let mut b = Spec::new(&[])
        .outer(&outer)
        .opts(&["--max-udp-flows", &FLOWS.to_string(), "-v"])
        .stdin()
        .cmd_vec(sh_cmd(&script, &m))
        .start(&scratch, 0);
    let base = b.fds_at_rest();
    b.say("go");
    let mut most = base;
    let mut sent = 0;
    let end = Instant::now() + Duration::from_secs(40);
    while sent < 2 && Instant::now() < end {
        most = most.max(b.fds());
        if let Ok(l) = b.out.recv_timeout(Duration::from_millis(20)) {
            if l.starts_with("sent 3000") {
                sent += 1;
            }
            b.out_seen.push(l);
        }
    }
    let err = b.stderr_now();
    assert_eq!(sent, 2, "{:?} {err:?}", b.out_seen);
    std::thread::sleep(Duration::from_millis(300));
    most = most.max(b.fds());
    let rows = b.relays();
    let udp = rows.iter().filter(|r| r["proto"] == "udp").count();
    b.say("done");
    let done = b.finish(Duration::from_secs(10));
    done.assert_success();
    assert_eq!(udp, FLOWS, "flows listed with --max-udp-flows {FLOWS}");
    assert!(
        most < base + FLOWS + 16,
        "berth held {most} descriptors (at rest {base}; --max-udp-flows {FLOWS})"
    );
    let got = sink.datagrams.load(Ordering::SeqCst);
    assert!(
        (1..=FLOWS).contains(&got),
        "the sink got {got} datagrams; {}",
        done.stderr()
    );
    assert!(
        done.stderr().contains(&format!(" {FLOWS} UDP flows")),
        "{}",
        done.stderr()
    );
    report(format!(
        "6000 UDP flows opened with --max-udp-flows {FLOWS}: at most {most} fds (at rest {base}), \
         {udp} flows listed, {got} datagrams at the sink; {}",
        done.stderr()
    ));
    drop(sink);
    assert_no_procs(&m);
    drop_outer(outer);
}

#[test]
fn malformed_packets_do_not_stop_berth() {
    if skip_unless("malformed_packets_do_not_stop_berth", &["ping"]) {
        return;
    }
    let scratch = Scratch::new("garbage");
    let outer = Outer::new("run-garbage");
    let echo = echo_server(Some(outer.name()), &[lo4(), lo6()]);
    let port = echo.port().to_string();
    let m = marker("garbage");
    // Counters are read before the garbage and after it (CMD waits on stdin).
    let script = format!(
        "read go; {py} -c '{g}' 3000 {m} && read go && {py} -c '{c}' {GW} {port} 5 {m} && \
         {py} -c '{c}' {GW6} {port} 5 {m} && ping -n -c 1 -W 2 {GW} >/dev/null && echo pinged",
        py = python(),
        g = PY_GARBAGE.replace('\'', "'\\''"),
        c = PY_CONNECT.replace('\'', "'\\''"),
    );
    let mut b = Spec::new(&[])
        .outer(&outer)
        .stdin()
        .cmd_vec(sh_cmd(&script, &m))
        .start(&scratch, 0);
    b.wait_ready();
    let frames = |v: &Value| v["link_in_frames"].as_u64().unwrap_or(0);
    let before = b.stats();
    b.say("go");
    b.line("garbage", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let after = b.stats();
    b.say("go");
    let done = b.finish(Duration::from_secs(30));
    done.assert_success();
    let lines: Vec<&str> = done.out.iter().map(String::as_str).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        outcome(lines[1]).0,
        "connected",
        "IPv4 after the garbage: {lines:?}"
    );
    assert_eq!(
        outcome(lines[2]).0,
        "connected",
        "IPv6 after the garbage: {lines:?}"
    );
    assert_eq!(lines[3], "pinged");
    assert!(!done.stderr().contains("panicked"), "{}", done.stderr());
    // The garbage reached berth: at least 2000 of the 3000-odd frames (the
    // kernel refuses to send a few, e.g. empty ones).
    let got = frames(&after) - frames(&before);
    assert!(
        got >= 2000,
        "berth read {got} frames of the garbage: {after}"
    );
    let nonzero: Vec<String> = after
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| {
                    (k.contains("err")
                        || k.contains("drop")
                        || k.contains("bad")
                        || k.contains("trunc"))
                        && v.as_u64().is_some_and(|n| n > 0)
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .unwrap_or_default();
    report(format!(
        "malformed packets: berth read {got} frames and ran on; its error counters: {}",
        nonzero.join(" ")
    ));
    drop(echo);
    assert_no_procs(&m);
    drop_outer(outer);
}

#[test]

fn unknown_options_are_usage_errors() {
    if skip_unless("unknown_options_are_usage_errors", &[]) {
        return;
    }
    let out = Command::new(BERTH)
        .args([
            "run",
            "--net",
            "192.0.2.0/24",
            "--no-such-option",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("berth run");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--no-such-option"), "{err}");
}

#[test]

fn background_processes_of_cmd_do_not_outlive_berth() {
    if skip_unless("background_processes_of_cmd_do_not_outlive_berth", &[]) {
        return;
    }
    let scratch = Scratch::new("bg");
    let m = marker("bg");
    // A sleep whose argument is this test's own.
    let nap = format!("30.{}", std::process::id());
    let done = Spec::new(&[])
        .cmd_vec(sh_cmd(&format!("sleep {nap} >/dev/null 2>&1 & exit 0"), &m))
        .run(&scratch, 0, Duration::from_secs(20));
    done.assert_success();
    std::thread::sleep(Duration::from_millis(300));
    let left = procs_with(&format!("sleep {nap}"));
    for l in &left {
        if let Some(pid) = l.split(':').next() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}
