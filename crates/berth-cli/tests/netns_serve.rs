//! `berth serve` on a TUN/TAP device inside a network namespace this test creates,
//! against the kernel's own tools (ping, Python sockets, curl) on the other side of
//! the device. Kernel side 192.0.2.1/24, berth 192.0.2.2/24; no other address.
//!
//! Needs root, /dev/net/tun, `ip`, `ping`, `python3` and `curl`. Without them
//! each test says why and skips, except under CI (CI set), where it fails.

mod support_netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BERTH_ADDR: &str = "192.0.2.2";

/// `None` when the test can run; otherwise why not.
fn missing() -> Option<String> {
    // Effective uid 0, from /proc/self/status.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    for tool in ["ip", "ping", "python3", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Skip (print why) or, under CI, fail.
fn can_run(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: cannot run under CI: {why}")
        }
        Some(why) => {
            eprintln!("skipping {test}: {why} (needs root, /dev/net/tun, ip, ping, python3, curl)");
            false
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("spawn");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A namespace deleted on drop (also when the test panics).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "berth-t{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        Netns { name }
    }

    /// A command run inside the namespace.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }

    fn sh(&self, script: &str) -> String {
        let o = run(self.cmd("sh").args(["-c", script]));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A `berth serve` process, killed on drop; its control socket and files.
struct Server {
    child: Child,
    control: PathBuf,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start berth on a new device `bt0` in `ns` (mode "tun" or "tap") with echo and
/// HTTP serving `files`, then give the kernel side 192.0.2.1/24.
fn serve(ns: &Netns, mode: &str, files: &[(&str, &[u8])]) -> Server {
    serve_with(ns, mode, files, &[])
}

/// `serve` with extra flags.
fn serve_with(ns: &Netns, mode: &str, files: &[(&str, &[u8])], extra: &[&str]) -> Server {
    let dir = std::env::temp_dir().join(format!("{}-{mode}", ns.name));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("temp dir");
    for (name, data) in files {
        std::fs::write(www.join(name), data).expect("write file");
    }
    let control = dir.join("control.sock");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log");
    let child = ns
        .cmd(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", &format!("--{mode}"), "bt0", "--create"])
        .args(["--addr", "192.0.2.2/24", "--echo", "--discard"])
        .arg("--http")
        .arg(&www)
        .arg("--control")
        .arg(&control)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn berth serve");
    let mut s = Server {
        child,
        control,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.control.exists() {
        if let Ok(Some(st)) = s.child.try_wait() {
            let log = std::fs::read_to_string(s.dir.join("serve.log")).unwrap_or_default();
            panic!("berth serve exited ({st}): {log}");
        }
        assert!(Instant::now() < deadline, "no control socket after 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    ns.sh("ip addr add 192.0.2.1/24 dev bt0 && ip link set bt0 up && ip link set lo up");
    s
}

fn berth_ss(s: &Server, args: &[&str]) -> String {
    let o = run(Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("ss")
        .arg("--control")
        .arg(&s.control)
        .args(args));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tcp_echo(ns: &Netns, mb: usize) {
    let o = run(ns.cmd("python3").args([
        "-c",
        support_netns::PY_TCP_ECHO,
        BERTH_ADDR,
        "7",
        &(mb << 20).to_string(),
    ]));
    support_netns::assert_echoed(&String::from_utf8_lossy(&o.stdout), mb << 20);
}

#[test]
fn kernel_ping_to_berth_no_loss() {
    if !can_run("kernel_ping_to_berth_no_loss") {
        return;
    }
    let ns = Netns::new();
    let _s = serve(&ns, "tun", &[]);
    let out = ns.sh("ping -c 20 -i 0.05 -W 2 192.0.2.2");
    assert!(
        out.contains("20 packets transmitted, 20 received, 0% packet loss"),
        "{out}"
    );
}

#[test]
fn kernel_tcp_client_to_berth_echo_10mb() {
    if !can_run("kernel_tcp_client_to_berth_echo_10mb") {
        return;
    }
    let ns = Netns::new();
    let s = serve(&ns, "tun", &[]);
    tcp_echo(&ns, 10);
    // The stack counted what it received; the listener is still there.
    let j: serde_json::Value =
        serde_json::from_str(&berth_ss(&s, &["--json", "-t", "-l"])).expect("ss --json");
    assert!(j.as_array().is_some_and(|a| !a.is_empty()), "{j}");
}

#[test]
fn kernel_udp_client_to_berth_echo() {
    if !can_run("kernel_udp_client_to_berth_echo") {
        return;
    }
    let ns = Netns::new();
    let _s = serve(&ns, "tun", &[]);
    let py = r#"
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
ok = 0
for i in range(50):
    d = os.urandom(1 + i * 20)
    for attempt in range(3):
        s.sendto(d, ("192.0.2.2", 7))
        try:
            r, a = s.recvfrom(65536)
        except socket.timeout:
            continue
        assert r == d and a == ("192.0.2.2", 7), (len(r), a)
        ok += 1
        break
print(ok)
"#;
    let o = run(ns.cmd("python3").args(["-c", py]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "50");
}

#[test]
fn curl_fetches_10mb_from_berth_http() {
    if !can_run("curl_fetches_10mb_from_berth_http") {
        return;
    }
    let data: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let ns = Netns::new();
    let _s = serve(&ns, "tun", &[("big.bin", &data), ("index.html", b"hi\n")]);
    let dir = std::env::temp_dir().join(format!("{}-dl", ns.name));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("big.bin");
    let o = ns
        .cmd("curl")
        .args(["-sS", "--fail", "--max-time", "60", "-o"])
        .arg(&out)
        .arg("http://192.0.2.2/big.bin")
        .output()
        .expect("curl");
    let got = std::fs::read(&out).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        o.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(got.len(), data.len());
    assert!(got == data, "downloaded file differs");
    let idx = ns.sh("curl -sS --fail http://192.0.2.2/");
    assert_eq!(idx, "hi\n");
    let o = ns
        .cmd("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("http://192.0.2.2/../etc/passwd")
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
}

#[test]
fn berth_ss_lists_listeners() {
    if !can_run("berth_ss_lists_listeners") {
        return;
    }
    let ns = Netns::new();
    let s = serve(&ns, "tun", &[]);
    let j: serde_json::Value =
        serde_json::from_str(&berth_ss(&s, &["--json", "-a"])).expect("ss --json");
    let rows = j.as_array().expect("array");
    let has = |netid: &str, state: &str, local: &str| {
        rows.iter()
            .any(|r| r["netid"] == netid && r["state"] == state && r["local"] == local)
    };
    for port in [7, 9, 80] {
        assert!(has("tcp", "LISTEN", &format!("0.0.0.0:{port}")), "{j}");
    }
    assert!(has("udp", "UNCONN", "0.0.0.0:7"), "{j}");
    // One socket kind: no Netid column, as iproute2's `ss -tln`.
    let t = berth_ss(&s, &["-t", "-l", "-n"]);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("State  Recv-Q"), "{t}");
    assert_eq!(lines.len(), 4, "{t}");
    assert!(lines[1..].iter().all(|l| l.starts_with("LISTEN ")), "{t}");
    // Two kinds: the Netid column names each row's.
    let tu = berth_ss(&s, &["-t", "-u", "-l", "-n"]);
    let lines: Vec<&str> = tu.lines().collect();
    assert!(lines[0].starts_with("Netid State"), "{tu}");
    assert_eq!(
        lines[1..]
            .iter()
            .filter(|l| l.starts_with("tcp   LISTEN "))
            .count(),
        3,
        "{tu}"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.starts_with("udp   UNCONN ") && l.contains(" 0.0.0.0:7 ")),
        "{tu}"
    );
    // An established connection shows with its tcp_info line.
    let py = r#"
import socket, subprocess, sys
s = socket.create_connection(("192.0.2.2", 9), timeout=10)
s.sendall(b"x" * 100000)
print(subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout)
"#;
    let o = run(ns
        .cmd("python3")
        .args([
            "-c",
            py,
            env!("CARGO_BIN_EXE_berth"),
            "ss",
            "-t",
            "-i",
            "--control",
        ])
        .arg(&s.control));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ESTAB"), "{out}");
    assert!(out.contains("192.0.2.2:9"), "{out}");
    assert!(out.contains("rtt:") && out.contains("cwnd:"), "{out}");
    let sum = berth_ss(&s, &["-s"]);
    assert!(sum.starts_with("Total: "), "{sum}");
    assert!(sum.contains("tcp_"), "{sum}");
}

/// `--tcp-mem` / `--udp-mem` reach the stack; `ss -m` prints iproute2's
/// skmem line under each socket, `ss -s` the memory totals and pressure.
#[test]
fn berth_ss_shows_memory_and_limits() {
    if !can_run("berth_ss_shows_memory_and_limits") {
        return;
    }
    let ns = Netns::new();
    let s = serve_with(
        &ns,
        "tun",
        &[],
        &["--tcp-mem", "4,8,16", "--udp-mem", "1000,2000,3000"],
    );
    let out = berth_ss(&s, &["-tlm"]);
    let lines: Vec<&str> = out.lines().collect();
    let listen = lines
        .iter()
        .position(|l| l.contains("LISTEN") && l.contains("0.0.0.0:7"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        lines.get(listen + 1).copied(),
        Some("\t skmem:(r0,rb262144,t0,tb262144,f0,w0,o0,bl0,d0)"),
        "{out}"
    );
    let sum = berth_ss(&s, &["-s"]);
    assert!(sum.starts_with("Total: "), "{sum}");
    assert!(
        sum.contains("  TCP: mem 0 (0 bytes, peak 0) tcp_mem 4 8 16 pressure no"),
        "{sum}"
    );
    assert!(sum.contains("udp_mem 1000 2000 3000"), "{sum}");
    assert!(sum.contains("  FRAG: inuse 0 memory 0"), "{sum}");
    let j: serde_json::Value =
        serde_json::from_str(&berth_ss(&s, &["-s", "--json"])).expect("ss -s --json");
    assert_eq!(j["memory"]["tcp_mem"], serde_json::json!([4, 8, 16]));
    assert_eq!(j["memory"]["tcp_ceiling"], 16 * 4096 + 64 * 1024);
    let rows: serde_json::Value =
        serde_json::from_str(&berth_ss(&s, &["-a", "--json"])).expect("ss --json");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["skmem"]["rb"].as_u64().is_some()),
        "{rows}"
    );
}

#[test]
fn berth_refuses_closed_port_with_rst() {
    if !can_run("berth_refuses_closed_port_with_rst") {
        return;
    }
    let ns = Netns::new();
    let _s = serve(&ns, "tun", &[]);
    let o = run(ns
        .cmd("python3")
        .args(["-c", support_netns::PY_TCP_CONNECT, BERTH_ADDR, "5555"]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "refused");
}

#[test]
fn tap_arp_both_ways_and_tcp() {
    if !can_run("tap_arp_both_ways_and_tcp") {
        return;
    }
    let ns = Netns::new();
    let s = serve(&ns, "tap", &[]);
    let out = ns.sh("ping -c 5 -i 0.05 -W 2 192.0.2.2");
    assert!(
        out.contains("5 packets transmitted, 5 received, 0% packet loss"),
        "{out}"
    );
    // The kernel resolved berth's MAC (02:b7 + its IPv4 address).
    let neigh = ns.sh("ip neigh show 192.0.2.2 dev bt0");
    assert!(neigh.contains("lladdr 02:b7:c0:00:02:02"), "{neigh}");
    tcp_echo(&ns, 2);
    // berth received and answered the kernel's ARP requests.
    let stats: serde_json::Value = {
        let mut c = std::os::unix::net::UnixStream::connect(&s.control).expect("control");
        use std::io::{BufRead, Write};
        writeln!(c, r#"{{"cmd":"stats"}}"#).expect("write");
        let mut line = String::new();
        std::io::BufReader::new(c)
            .read_line(&mut line)
            .expect("read");
        serde_json::from_str(&line).expect("json")
    };
    let st = &stats["stats"];
    assert!(st["arp_in"].as_u64().unwrap_or(0) >= 1, "{stats}");
    assert!(st["arp_replies_sent"].as_u64().unwrap_or(0) >= 1, "{stats}");
    // Once more with the kernel's cache flushed: both sides resolve again.
    ns.sh("ip neigh flush dev bt0");
    tcp_echo(&ns, 1);
}

#[test]
fn device_deleted_stops_server_cleanly() {
    if !can_run("device_deleted_stops_server_cleanly") {
        return;
    }
    let ns = Netns::new();
    let mut s = serve(&ns, "tun", &[]);
    ns.sh("ip link del bt0");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            break st;
        }
        assert!(Instant::now() < deadline, "berth serve still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(s.dir.join("serve.log")).unwrap_or_default();
    assert!(
        log.contains("bt0") && log.contains("shutting the stack down"),
        "{log}"
    );
    assert!(!s.control.exists(), "control socket left behind");
}

#[test]
fn sigterm_stops_server_cleanly_and_resets_connections() {
    if !can_run("sigterm_stops_server_cleanly_and_resets_connections") {
        return;
    }
    let ns = Netns::new();
    let mut s = serve(&ns, "tun", &[]);
    let py = r#"
import socket, sys
c = socket.create_connection(("192.0.2.2", 7), timeout=10)
c.sendall(b"hi")
assert c.recv(16) == b"hi"
print("connected", flush=True)
try:
    d = c.recv(16)
    print("eof" if d == b"" else "data", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
"#;
    let mut client = ns
        .cmd("python3")
        .args(["-c", py])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut out = std::io::BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("read");
    assert_eq!(line.trim(), "connected");
    run(Command::new("kill").args(["-TERM", &s.child.id().to_string()]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            break st;
        }
        assert!(Instant::now() < deadline, "berth serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).expect("read");
    assert_eq!(line.trim(), "reset", "the open connection was reset");
    assert!(client.wait().expect("python3").success());
    let log = std::fs::read_to_string(s.dir.join("serve.log")).unwrap_or_default();
    assert!(log.contains("stopped by signal"), "{log}");
    assert!(!s.control.exists(), "control socket left behind");
}
