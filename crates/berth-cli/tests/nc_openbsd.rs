//! `berth nc` as OpenBSD nc, side by side with the kernel's OpenBSD nc
//! (Debian's netcat-openbsd): each test makes its own namespace with a TUN
//! device (kernel side 192.0.2.1/24, berth 192.0.2.2/24 on it) and runs the
//! same thing with both where both can: -N's half-close, a peer's half-close,
//! SIGINT (FIN, then a second one RST), fresh source ports per run, -z scans
//! and their exit codes, -v messages word for word, UDP both ways, -l -k,
//! -q SECS after stdin's end.
//! Needs root, /dev/net/tun, nc, ss and python3; skips (saying why) without
//! them, unless CI is set. The namespace goes with its guard, also on failure.

mod support_netns;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support_netns::*;

const DEV: &str = "tb0";
const KERNEL: &str = "192.0.2.1";
const BERTH_IP: &str = "192.0.2.2";
const TOOLS: &[&str] = &["nc", "ss", "python3"];

/// The namespace of test `name` (TUN device, kernel side 192.0.2.1/24), or
/// None when the test cannot run here (it has said why).
fn begin(name: &str, tag: &str) -> Option<Netns> {
    if skip(name, TOOLS) {
        return None;
    }
    let ns = Netns::new(tag);
    ns.tun(DEV, Some("192.0.2.1/24"));
    Some(ns)
}

/// `who`'s nc ("berth" or "kernel") with `args`.
fn nc_of(who: &str, ns: &Netns, args: &[&str]) -> Command {
    match who {
        "berth" => berth_nc(ns, args),
        _ => kernel_nc(ns, args),
    }
}

/// `berth nc ARGS…` in `ns` on its TUN, all three streams piped.
fn berth_nc(ns: &Netns, args: &[&str]) -> Command {
    let mut c = ns.cmd(BERTH);
    c.args(["nc", "--tun", DEV, "--addr", "192.0.2.2/24"])
        .args(args);
    piped(c)
}

/// The kernel's nc in `ns`, all three streams piped.
fn kernel_nc(ns: &Netns, args: &[&str]) -> Command {
    let mut c = ns.cmd("nc");
    c.args(args);
    piped(c)
}

fn piped(mut c: Command) -> Command {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A started nc: its stdin, and its stdout's and stderr's lines.
struct Nc {
    p: Proc,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
    err: Receiver<String>,
}

impl Nc {
    fn start(c: Command) -> Nc {
        let mut p = Proc::spawn(c);
        let stdin = p.child.stdin.take();
        let out = p.lines();
        let err = lines_of(p.child.stderr.take().expect("stderr piped"));
        Nc { p, stdin, out, err }
    }

    fn write(&mut self, data: &[u8]) {
        let s = self.stdin.as_mut().expect("stdin still open");
        s.write_all(data).expect("write nc's stdin");
        s.flush().expect("flush nc's stdin");
    }

    /// Close its stdin (EOF).
    fn eof(&mut self) {
        self.stdin = None;
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.p.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} failed");
    }

    fn exit(&mut self, limit: Duration) -> ExitStatus {
        self.p
            .wait(limit)
            .unwrap_or_else(|| panic!("nc still running after {limit:?}"))
    }

    fn running_after(&mut self, d: Duration) -> bool {
        self.p.wait(d).is_none()
    }
}

/// A python3 server script in `ns` with stdin and stdout piped, once it has
/// said "ready".
fn py(ns: &Netns, script: &str, args: &[&str]) -> (Proc, ChildStdin, Receiver<String>) {
    let mut a = vec!["-c", script];
    a.extend_from_slice(args);
    let (p, stdin, lines) = py_proc(ns, "python3", &a);
    expect_line(&lines, "ready", Duration::from_secs(10));
    (p, stdin, lines)
}

/// `ss -tan` rows in `ns` with `port` on either side.
fn ss_rows(ns: &Netns, port: u16) -> Vec<String> {
    let o = ns.cmd("ss").args(["-Htan"]).output().expect("ss");
    let needle = format!(":{port} ");
    text(&o.stdout)
        .lines()
        .filter(|l| format!("{l} ").contains(&needle))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A python3 TCP server: accepts one connection on ADDR:PORT, prints
/// "accepted <peer port>", then "got <total>" as data comes, and "eof <total>
/// <sha256>" at the peer's FIN (or "reset <total>"); then with "reply" sends
/// "bye\n" and closes, else holds the connection open (CLOSE-WAIT) until
/// killed.
const PY_SERVER: &str = r#"
import hashlib, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
print("ready", flush=True)
c, peer = s.accept()
print("accepted", peer[1], flush=True)
h = hashlib.sha256(); n = 0
try:
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
        print("got", n, flush=True)
    print("eof", n, h.hexdigest(), flush=True)
except ConnectionResetError:
    print("reset", n, flush=True)
    sys.exit(0)
if len(sys.argv) > 3:
    c.sendall(b"bye\n"); c.close()
else:
    time.sleep(60)
"#;

fn sha_line(data: &[u8]) -> String {
    format!("eof {} {}", data.len(), sha256_hex(data))
}

/// -N: stdin's end shuts our write side; the peer reads everything, then its
/// FIN; its reply still reaches us. Without -N no FIN goes at stdin's end
/// (the peer still waits for one while -q's second runs).
#[test]
fn n_half_closes_after_everything_and_without_n_no_fin() {
    let Some(ns) = begin("n_half_closes_after_everything_and_without_n_no_fin", "ncN") else {
        return;
    };
    let data = random_bytes(2 << 20, 3);
    for (who, port) in [("berth", 5001u16), ("kernel", 5002)] {
        let p = port.to_string();
        let (_srv, _in, lines) = py(&ns, PY_SERVER, &[KERNEL, &p, "reply"]);
        let c = nc_of(who, &ns, &["-N", KERNEL, &p]);
        let o = run_with_input(c, data.clone(), Duration::from_secs(60));
        assert!(o.status.success(), "{who} nc -N: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "bye\n", "{who} nc -N got the reply");
        let seen = expect_line(&lines, "eof", Duration::from_secs(10));
        assert_eq!(seen.last(), Some(&sha_line(&data)), "{who}: all, then FIN");
    }

    // Without -N (berth and kernel alike): stdin ends, no FIN goes, the
    // connection stays open until the peer closes.
    for (who, port) in [("berth", 5003u16), ("kernel", 5004)] {
        let p = port.to_string();
        let (_srv, _in, lines) = py(&ns, PY_SERVER, &[KERNEL, &p]);
        let mut nc = Nc::start(nc_of(who, &ns, &[KERNEL, &p]));
        nc.write(b"no fin yet\n");
        nc.eof();
        expect_line(&lines, "got 11", Duration::from_secs(10));
        assert!(
            nc.running_after(Duration::from_millis(800)),
            "{who} nc without -N ended at stdin's end"
        );
        assert!(
            lines.recv_timeout(Duration::from_millis(10)).is_err(),
            "{who} nc without -N sent a FIN at stdin's end"
        );
        assert!(
            ss_rows(&ns, port).iter().any(|r| r.starts_with("ESTAB")),
            "{who}: {:?}",
            ss_rows(&ns, port)
        );
    }
}

/// A python3 server that greets, half-closes, then reads to EOF: prints
/// "eof <bytes> <sha256>".
const PY_GREET_HALF_CLOSE: &str = r#"
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(b"hello\n"); c.shutdown(socket.SHUT_WR)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
print("eof", n, h.hexdigest(), flush=True)
c.close()
"#;

/// The peer's FIN stops receiving, not sending: stdin written after it (1 MB)
/// all arrives, then -N's FIN.
#[test]
fn peer_half_close_does_not_stop_stdin() {
    let Some(ns) = begin("peer_half_close_does_not_stop_stdin", "ncpeerfin") else {
        return;
    };
    let data = random_bytes(1 << 20, 9);
    for (who, port) in [("berth", 5011u16), ("kernel", 5012)] {
        let p = port.to_string();
        let (_srv, _in, lines) = py(&ns, PY_GREET_HALF_CLOSE, &[KERNEL, &p]);
        let mut nc = Nc::start(nc_of(who, &ns, &["-N", KERNEL, &p]));
        expect_line(&nc.out, "hello", Duration::from_secs(10));
        // The peer's FIN is in (it came with "hello"); give nc time to see it.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            nc.running_after(Duration::ZERO),
            "{who} nc ended at the peer's FIN"
        );
        nc.write(&data);
        nc.eof();
        let seen = expect_line(&lines, "eof", Duration::from_secs(30));
        assert_eq!(
            seen.last(),
            Some(&sha_line(&data)),
            "{who}: stdin after the peer's FIN"
        );
        let st = nc.exit(Duration::from_secs(10));
        assert!(st.success(), "{who}: {st:?}");
    }
}

/// SIGINT closes with a FIN, as the kernel closes a killed nc's socket: the
/// peer reads EOF and its socket leaves ESTABLISHED for CLOSE-WAIT; nc ends
/// by the signal, at once.
#[test]
fn sigint_sends_fin_like_a_killed_kernel_nc() {
    let Some(ns) = begin("sigint_sends_fin_like_a_killed_kernel_nc", "ncint") else {
        return;
    };
    for (who, port) in [("berth", 5021u16), ("kernel", 5022)] {
        let p = port.to_string();
        let (_srv, _in, lines) = py(&ns, PY_SERVER, &[KERNEL, &p]);
        let mut nc = Nc::start(nc_of(who, &ns, &[KERNEL, &p]));
        nc.write(b"hello\n");
        expect_line(&lines, "got 6", Duration::from_secs(10));
        let rows = ss_rows(&ns, port);
        assert!(
            rows.iter().any(|r| r.starts_with("ESTAB")),
            "{who}: {rows:?}"
        );
        let t = Instant::now();
        nc.signal("INT");
        let st = nc.exit(Duration::from_secs(5));
        let took = t.elapsed();
        assert_eq!(st.signal(), Some(2), "{who} nc ends by SIGINT: {st:?}");
        assert!(took < Duration::from_secs(3), "{who} took {took:?} to end");
        expect_line(&lines, "eof 6", Duration::from_secs(5));
        let rows = ss_rows(&ns, port);
        assert!(
            rows.iter().any(|r| r.starts_with("CLOSE-WAIT")),
            "{who}: the peer's socket after the FIN: {rows:?}"
        );
        assert!(
            !rows.iter().any(|r| r.starts_with("ESTAB")),
            "{who}: {rows:?}"
        );
        report(format!(
            "{who} nc: SIGINT → FIN, ended in {:.0} ms",
            took.as_secs_f64() * 1e3
        ));
    }
}

/// A python3 server that accepts and does not read until a line comes on its
/// stdin (so our data and FIN stay queued at our end), then reads: "eof N"
/// or "reset N".
const PY_STALL: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
print("accepted", flush=True)
sys.stdin.readline()
n = 0
try:
    while True:
        b = c.recv(1 << 16)
        if not b: break
        n += len(b)
    print("eof", n, flush=True)
except ConnectionResetError:
    print("reset", n, flush=True)
"#;

/// While the FIN of a first SIGINT waits behind data the peer does not take,
/// a second SIGINT aborts with a RST: the peer's read fails with
/// ECONNRESET and berth nc ends at once.
#[test]
fn second_sigint_resets() {
    let Some(ns) = begin("second_sigint_resets", "ncrst2") else {
        return;
    };
    let (_srv, mut srv_in, lines) = py(&ns, PY_STALL, &[KERNEL, "5031"]);
    let mut nc = Nc::start(berth_nc(&ns, &[KERNEL, "5031"]));
    expect_line(&lines, "accepted", Duration::from_secs(10));
    // More than the peer's window and our send buffer take: a writer blocks.
    let mut stdin = nc.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..512 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    nc.signal("INT");
    assert!(
        nc.running_after(Duration::from_millis(400)),
        "berth nc ended before its FIN was acknowledged (it cannot be: the peer reads nothing)"
    );
    let t = Instant::now();
    nc.signal("INT");
    let st = nc.exit(Duration::from_secs(5));
    let took = t.elapsed();
    assert_eq!(st.signal(), Some(2), "{st:?}");
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} after the second SIGINT"
    );
    writeln!(srv_in, "read").expect("tell the server to read");
    let seen = expect_line(&lines, " ", Duration::from_secs(10));
    let last = seen.last().expect("a line");
    assert!(
        last.starts_with("reset"),
        "the peer saw {seen:?}, not a reset"
    );
    assert!(
        ss_rows(&ns, 5031).iter().all(|r| r.starts_with("LISTEN")),
        "{:?}",
        ss_rows(&ns, 5031)
    );
    report(format!(
        "berth nc: second SIGINT → RST in {took:?}; peer: {last}"
    ));
}

/// A python3 server accepting two connections in turn: "from <peer port>",
/// reads to EOF, answers "ok\n", closes.
const PY_TWO: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
print("ready", flush=True)
for _ in range(2):
    c, peer = s.accept()
    print("from", peer[1], flush=True)
    while c.recv(1 << 16): pass
    c.sendall(b"ok\n"); c.close()
"#;

/// Each run draws its own source port (the stack's seed comes from the OS),
/// so a rerun right after a Ctrl-C is a new connection, not refused.
#[test]
fn reruns_use_fresh_source_ports_and_are_not_refused() {
    let Some(ns) = begin(
        "reruns_use_fresh_source_ports_and_are_not_refused",
        "ncrerun",
    ) else {
        return;
    };
    let (_srv, _in, lines) = py(&ns, PY_TWO, &[KERNEL, "5041"]);
    let mut first = Nc::start(berth_nc(&ns, &[KERNEL, "5041"]));
    let a = expect_line(&lines, "from", Duration::from_secs(10));
    first.write(b"one\n");
    std::thread::sleep(Duration::from_millis(200));
    first.signal("INT");
    assert_eq!(first.exit(Duration::from_secs(5)).signal(), Some(2));
    let c = berth_nc(&ns, &["-N", KERNEL, "5041"]);
    let o = run_with_input(c, b"two\n".to_vec(), Duration::from_secs(30));
    assert!(o.status.success(), "second run: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ok\n");
    let b = expect_line(&lines, "from", Duration::from_secs(10));
    let (pa, pb) = (a.last().expect("line"), b.last().expect("line"));
    assert_ne!(pa, pb, "two runs, one source port");
    report(format!("source ports of two runs: {pa}, {pb}"));
}

/// A python3 listener on ADDR:PORT that completes handshakes (backlog) and
/// never accepts; exits after 60 s.
const PY_OPEN_PORT: &str = r#"
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
print("ready", flush=True)
time.sleep(60)
"#;

/// -z: exit 0 for an open port, 1 for a closed one, silent without -v; with
/// -v the same lines as the kernel's nc, for a range, with and without -n;
/// and the same connect time-out message (192.0.2.3 answers nothing).
#[test]
fn scan_exit_codes_and_verbose_messages_match_the_kernel_nc() {
    let Some(ns) = begin(
        "scan_exit_codes_and_verbose_messages_match_the_kernel_nc",
        "ncscan",
    ) else {
        return;
    };
    let (_open, _in, _lines) = py(&ns, PY_OPEN_PORT, &[KERNEL, "7"]);
    let run = |c: Command| run_with_input(c, Vec::new(), Duration::from_secs(30));
    for (args, code) in [(["-z", KERNEL, "7"], 0), (["-z", KERNEL, "9"], 1)] {
        let b = run(berth_nc(&ns, &args));
        let k = run(kernel_nc(&ns, &args));
        assert_eq!(b.status.code(), Some(code), "berth nc {args:?}");
        assert_eq!(k.status.code(), Some(code), "kernel nc {args:?}");
        assert_eq!(text(&b.stderr), "", "berth nc {args:?} without -v");
        assert_eq!(text(&b.stdout), "");
    }
    for args in [
        &["-zv", KERNEL, "6-8"][..],
        &["-zvn", KERNEL, "6-8"],
        &["-zv", KERNEL, "8-9"],
        &["-v", "-w", "1", "192.0.2.3", "9"],
    ] {
        let b = run(berth_nc(&ns, args));
        let k = run(kernel_nc(&ns, args));
        assert_eq!(
            b.status.code(),
            k.status.code(),
            "exit codes of nc {args:?}: {}",
            text(&b.stderr)
        );
        assert_eq!(text(&b.stderr), text(&k.stderr), "messages of nc {args:?}");
        report(format!(
            "nc {}: exit {:?}, both say:\n{}",
            args.join(" "),
            b.status.code(),
            text(&b.stderr).trim_end()
        ));
    }
    let b = text(&run(berth_nc(&ns, &["-zv", KERNEL, "6-8"])).stderr);
    assert!(
        b.contains("Connection to 192.0.2.1 7 port [tcp/echo] succeeded!")
            && b.contains("nc: connect to 192.0.2.1 port 8 (tcp) failed: Connection refused"),
        "{b}"
    );
}

/// `Listening on …` / `Connection received on …` as the kernel's nc words
/// them (numeric: the kernel's nc needs -n without a resolver), each side
/// listening in turn for the other; and -v's `Connection to … succeeded!`
/// on the connecting side.
#[test]
fn listener_messages_match_the_kernel_nc() {
    let Some(ns) = begin("listener_messages_match_the_kernel_nc", "nclmsg") else {
        return;
    };
    // berth listens, the kernel connects.
    let mut l = Nc::start(berth_nc(&ns, &["-lvn", "-p", "5051"]));
    let listening = expect_line(&l.err, "Listening", Duration::from_secs(10));
    let c = kernel_nc(&ns, &["-vN", BERTH_IP, "5051"]);
    let o = run_with_input(c, b"to berth\n".to_vec(), Duration::from_secs(20));
    assert!(o.status.success(), "kernel nc: {}", text(&o.stderr));
    let received = expect_line(&l.err, "Connection received", Duration::from_secs(10));
    expect_line(&l.out, "to berth", Duration::from_secs(5));
    l.eof();
    assert!(l.exit(Duration::from_secs(10)).success());

    // The kernel listens, berth connects.
    let mut k = Nc::start(kernel_nc(&ns, &["-lvn", KERNEL, "5052"]));
    let k_listening = expect_line(&k.err, "Listening", Duration::from_secs(10));
    let c = berth_nc(&ns, &["-vN", KERNEL, "5052"]);
    let o2 = run_with_input(c, b"to kernel\n".to_vec(), Duration::from_secs(20));
    assert!(o2.status.success(), "berth nc: {}", text(&o2.stderr));
    let k_received = expect_line(&k.err, "Connection received", Duration::from_secs(10));
    expect_line(&k.out, "to kernel", Duration::from_secs(5));
    k.eof();
    k.exit(Duration::from_secs(10));

    assert_eq!(
        listening.last().map(String::as_str),
        Some("Listening on 0.0.0.0 5051")
    );
    assert_eq!(
        k_listening.last().map(String::as_str),
        Some("Listening on 192.0.2.1 5052")
    );
    let shape = |l: &str, ip: &str| {
        let f: Vec<&str> = l.split(' ').collect();
        f.len() == 5
            && l.starts_with(&format!("Connection received on {ip} "))
            && f[4].parse::<u16>().is_ok()
    };
    let (r, kr) = (
        received.last().expect("line"),
        k_received.last().expect("line"),
    );
    assert!(shape(r, KERNEL), "berth: {r}");
    assert!(shape(kr, BERTH_IP), "kernel: {kr}");
    // -v on the connecting side, the same words.
    assert_eq!(
        text(&o2.stderr),
        "Connection to 192.0.2.1 5052 port [tcp/*] succeeded!\n"
    );
    assert_eq!(
        text(&o.stderr),
        "Connection to 192.0.2.2 5051 port [tcp/*] succeeded!\n"
    );
}

/// UDP both ways with the kernel's nc: berth's client and the kernel's
/// listener, then the kernel's client and berth's listener, a datagram each
/// way; -w ends the side whose stdin is done once it is idle.
#[test]
fn udp_round_trips_with_the_kernel_nc() {
    let Some(ns) = begin("udp_round_trips_with_the_kernel_nc", "ncudp") else {
        return;
    };
    // berth → kernel nc -u -l → berth.
    let mut k = Nc::start(kernel_nc(&ns, &["-u", "-lvn", KERNEL, "6001"]));
    expect_line(&k.err, "Bound on 192.0.2.1 6001", Duration::from_secs(10));
    let mut b = Nc::start(berth_nc(&ns, &["-u", "-v", "-w", "2", KERNEL, "6001"]));
    expect_line(
        &b.err,
        "Connection to 192.0.2.1 6001 port [udp/*] succeeded!",
        Duration::from_secs(10),
    );
    b.write(b"ping\n");
    expect_line(&k.out, "ping", Duration::from_secs(10));
    let from = expect_line(
        &k.err,
        "Connection received on 192.0.2.2 ",
        Duration::from_secs(5),
    );
    k.write(b"pong\n");
    expect_line(&b.out, "pong", Duration::from_secs(10));
    b.eof();
    assert!(
        b.exit(Duration::from_secs(10)).success(),
        "berth nc -u -w 2"
    );
    report(format!("kernel nc -u -l: {}", from.join(" | ")));

    // kernel nc -u → berth nc -u -l → kernel nc.
    let mut l = Nc::start(berth_nc(&ns, &["-u", "-lv", "-p", "6002", "-w", "2"]));
    expect_line(&l.err, "Bound on 0.0.0.0 6002", Duration::from_secs(10));
    let mut k = Nc::start(kernel_nc(&ns, &["-u", "-w", "2", BERTH_IP, "6002"]));
    k.write(b"hi berth\n");
    expect_line(&l.out, "hi berth", Duration::from_secs(10));
    expect_line(
        &l.err,
        "Connection received on 192.0.2.1 ",
        Duration::from_secs(5),
    );
    l.write(b"hi kernel\n");
    expect_line(&k.out, "hi kernel", Duration::from_secs(10));
    l.eof();
    k.eof();
    assert!(
        l.exit(Duration::from_secs(10)).success(),
        "berth nc -u -l -w 2"
    );
    k.exit(Duration::from_secs(10));
}

/// -l -k: a listener takes one connection after another (berth's with two
/// kernel nc clients, the kernel's with two berth nc clients), until SIGTERM.
#[test]
fn listen_k_accepts_two_connections_in_turn() {
    let Some(ns) = begin("listen_k_accepts_two_connections_in_turn", "nclk") else {
        return;
    };
    for (who, host, port) in [("berth", BERTH_IP, "6011"), ("kernel", KERNEL, "6012")] {
        let mut l = Nc::start(nc_of(who, &ns, &["-lkvn", "-d", host, port]));
        let other = if who == "berth" { "kernel" } else { "berth" };
        // Said once, as Debian's nc says it: the socket listens throughout.
        expect_line(&l.err, "Listening on", Duration::from_secs(10));
        for n in ["one", "two"] {
            let c = nc_of(other, &ns, &["-N", host, port]);
            let o = run_with_input(c, format!("{n}\n").into_bytes(), Duration::from_secs(20));
            assert!(
                o.status.success(),
                "client {n} of {who}'s -lk: {}",
                text(&o.stderr)
            );
            expect_line(&l.out, n, Duration::from_secs(10));
            expect_line(&l.err, "Connection received on", Duration::from_secs(5));
        }
        assert!(
            l.running_after(Duration::from_millis(200)),
            "{who} nc -l -k ended after two connections"
        );
        l.signal("TERM");
        let st = l.exit(Duration::from_secs(5));
        assert_eq!(
            st.signal(),
            Some(15),
            "{who} nc -l -k ends by SIGTERM: {st:?}"
        );
    }
}

/// A python3 TCP server: accepts one connection on ADDR:PORT, reads to EOF
/// (printing "eof <total> <sha256>"), holds the connection HOLD seconds,
/// then closes it and prints "closed".
const PY_CLOSE_LATER: &str = r#"
import hashlib, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
print("accepted", flush=True)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
print("eof", n, h.hexdigest(), flush=True)
time.sleep(float(sys.argv[3]))
c.close()
print("closed", flush=True)
time.sleep(30)
"#;

/// A python3 UDP server on ADDR:PORT: prints "got <datagram>" for each.
const PY_UDP_PRINT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    d, _ = s.recvfrom(65536)
    print("got", d.decode(errors="replace").strip(), flush=True)
"#;

/// -q SECS, side by side with the kernel's nc (Debian's netcat-openbsd)
/// against the same kernel servers. Over TCP, stdin's end sends everything
/// and then a FIN (-q implies -N), and nc quits SECS after the connection
/// ends (the peer's close, here 1 s after our FIN): -q 0 at the close, -q 1
/// a second later; a negative -q sends no FIN and waits for the peer. Over
/// UDP, nc quits SECS after stdin's end.
#[test]
fn q_quits_after_stdin_ends_like_the_kernel_nc() {
    let Some(ns) = begin("q_quits_after_stdin_ends_like_the_kernel_nc", "ncq") else {
        return;
    };
    let data = random_bytes(100_000, 12);
    let got_all = format!("got {}", data.len());
    let hold = Duration::from_secs(1);
    let mut port = 5060u16;
    // (-q, the least and the most time from stdin's end to nc's exit).
    for (q, least, most) in [
        (
            "0",
            hold - Duration::from_millis(100),
            hold + Duration::from_millis(900),
        ),
        (
            "1",
            2 * hold - Duration::from_millis(100),
            2 * hold + Duration::from_millis(1500),
        ),
    ] {
        let mut took = Vec::new();
        for who in ["berth", "kernel"] {
            port += 1;
            let p = port.to_string();
            let (_srv, _in, lines) = py(&ns, PY_CLOSE_LATER, &[KERNEL, &p, "1"]);
            let mut nc = Nc::start(nc_of(who, &ns, &["-q", q, KERNEL, &p]));
            expect_line(&lines, "accepted", Duration::from_secs(10));
            nc.write(&data);
            let t = Instant::now();
            nc.eof();
            let seen = expect_line(&lines, "eof", Duration::from_secs(10));
            assert_eq!(
                seen.last(),
                Some(&sha_line(&data)),
                "{who} nc -q {q}: all the data, then the FIN"
            );
            let st = nc.exit(Duration::from_secs(10));
            let d = t.elapsed();
            assert!(st.success(), "{who} nc -q {q}: {st:?}");
            assert!(
                (least..most).contains(&d),
                "{who} nc -q {q} ended {d:?} after stdin's end (the peer closed {hold:?} \
                 after it), not within {least:?}..{most:?}"
            );
            took.push(format!("{who} {:.0} ms", d.as_secs_f64() * 1e3));
        }
        report(format!(
            "nc -q {q}, peer closing {hold:?} after our FIN: quit after stdin's end: {}",
            took.join(", ")
        ));
    }

    // Negative: no FIN at stdin's end, and no quitting until the peer closes.
    for who in ["berth", "kernel"] {
        port += 1;
        let p = port.to_string();
        let (mut srv, _in, lines) = py(&ns, PY_SERVER, &[KERNEL, &p]);
        let mut nc = Nc::start(nc_of(who, &ns, &["-q", "-1", KERNEL, &p]));
        expect_line(&lines, "accepted", Duration::from_secs(10));
        nc.write(&data);
        nc.eof();
        expect_line(&lines, &got_all, Duration::from_secs(10));
        assert!(
            nc.running_after(Duration::from_millis(1500)),
            "{who} nc -q -1 quit before the peer closed"
        );
        assert!(
            lines.recv_timeout(Duration::from_millis(10)).is_err(),
            "{who} nc -q -1 sent a FIN at stdin's end"
        );
        // The server goes (its socket closes): now nc ends.
        srv.terminate(Duration::from_secs(5));
        let st = nc.exit(Duration::from_secs(10));
        assert!(
            st.code().is_some(),
            "{who} nc -q -1 ended by a signal: {st:?}"
        );
    }

    // UDP: SECS after stdin's end, the datagram delivered.
    let mut took = Vec::new();
    for who in ["berth", "kernel"] {
        port += 1;
        let p = port.to_string();
        let (_srv, _in, lines) = py(&ns, PY_UDP_PRINT, &[KERNEL, &p]);
        let mut nc = Nc::start(nc_of(who, &ns, &["-u", "-q", "1", KERNEL, &p]));
        nc.write(b"hello over udp\n");
        let t = Instant::now();
        nc.eof();
        expect_line(&lines, "got hello over udp", Duration::from_secs(10));
        let st = nc.exit(Duration::from_secs(10));
        let d = t.elapsed();
        assert!(st.success(), "{who} nc -u -q 1: {st:?}");
        assert!(
            (Duration::from_millis(900)..Duration::from_millis(2500)).contains(&d),
            "{who} nc -u -q 1 ended {d:?} after stdin's end"
        );
        took.push(format!("{who} {:.0} ms", d.as_secs_f64() * 1e3));
    }
    report(format!(
        "nc -u -q 1: quit after stdin's end: {}",
        took.join(", ")
    ));
}
