//! IPv6 against the Linux kernel, each test in namespaces it makes (removed
//! with their devices on drop, also when the test fails), with addresses from
//! 2001:db8::/32 and fe80::/10 only (and 192.0.2.0/24, 198.51.100.0/24 for
//! IPv4 beside them): the kernel pings `berth serve` on a TUN and runs TCP and
//! UDP echo through it; `berth ping -6` and `berth nc -6` reach the kernel;
//! 100 MB each way between the kernel and `berth nc -6`, SHA-256 equal;
//! connection refused both ways; path MTU discovery through the kernel as a
//! router, both families; on a TAP, neighbour discovery both ways and SLAAC
//! from a router advertisement the kernel side sends. Needs root,
//! /dev/net/tun, ip, ping and python3; skips (saying why) without them,
//! unless CI is set.

mod support_netns;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support_netns::*;

const TOOLS: &[&str] = &["ping", "python3"];

/// A command inside `ns` that must succeed; its stdout.
fn sh(ns: &Netns, script: &str) -> String {
    let o = ns.cmd("sh").args(["-c", script]).output().expect("sh");
    assert!(
        o.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stdout_ok(o: &Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{what}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `berth serve` in a namespace, killed on drop; its control socket.
struct Serve {
    _proc: Proc,
    control: PathBuf,
    dir: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Serve {
    fn start(ns: &Netns, args: &[&str]) -> Serve {
        let dir = std::env::temp_dir().join(format!("{}-serve", ns.name));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let control = dir.join("control.sock");
        let log = std::fs::File::create(dir.join("serve.log")).expect("log");
        let mut c = ns.cmd(BERTH);
        c.arg("serve")
            .args(args)
            .arg("--control")
            .arg(&control)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut s = Serve {
            _proc: Proc::spawn(c),
            control,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !s.control.exists() {
            if let Ok(Some(st)) = s._proc.child.try_wait() {
                let log = std::fs::read_to_string(s.dir.join("serve.log")).unwrap_or_default();
                panic!("berth serve exited ({st}): {log}");
            }
            assert!(Instant::now() < deadline, "no control socket after 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// One control request's answer.
    fn control(&self, cmd: &str) -> serde_json::Value {
        let mut c = UnixStream::connect(&self.control).expect("control socket");
        writeln!(c, "{{\"cmd\":\"{cmd}\"}}").expect("control write");
        let mut line = String::new();
        BufReader::new(c)
            .read_line(&mut line)
            .expect("control read");
        serde_json::from_str(&line).expect("control JSON")
    }

    /// Wait (at most `limit`) for an address matching `want` to be usable
    /// (DAD passed); returns it without its prefix.
    fn wait_address(&self, want: impl Fn(&str, &str) -> bool, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let a = self.control("addresses");
            let rows = a["addresses"].as_array().cloned().unwrap_or_default();
            let hit = rows.iter().find(|r| {
                let addr = r["addr"].as_str().unwrap_or("");
                let origin = r["origin"].as_str().unwrap_or("");
                r["state"] == "preferred" && want(addr, origin)
            });
            if let Some(r) = hit {
                let addr = r["addr"].as_str().unwrap_or("");
                return addr.split('/').next().unwrap_or("").to_string();
            }
            assert!(
                Instant::now() < end,
                "no such address within {limit:?}: {a}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ss(&self, args: &[&str]) -> String {
        let o = Command::new(BERTH)
            .arg("ss")
            .arg("--control")
            .arg(&self.control)
            .args(args)
            .output()
            .expect("berth ss");
        stdout_ok(&o, "berth ss")
    }
}

/// Python: 20 UDP datagrams to (host, port), each echoed; prints the count back.
const PY_UDP_ECHO: &str = r#"
import socket, sys
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.settimeout(5)
ok = 0
for i in range(20):
    m = b"udp6 %d" % i
    u.sendto(m, (sys.argv[1], int(sys.argv[2])))
    d, a = u.recvfrom(100)
    ok += d == m
print(ok)
"#;

fn tcp_echo_v6(ns: &Netns, host: &str, mb: usize) {
    let o = ns
        .cmd("python3")
        .args(["-c", PY_TCP_ECHO, host, "7", &(mb << 20).to_string()])
        .output()
        .expect("python3");
    assert_echoed(&stdout_ok(&o, "tcp echo"), mb << 20);
}

/// `berth serve --echo` on TUN bt0 as 192.0.2.2 and 2001:db8::2 (plus
/// `extra` flags), the kernel as 192.0.2.1 and 2001:db8::1 (no DAD), link up.
fn dual_stack_tun(ns: &Netns, extra: &[&str]) -> Serve {
    let mut args = vec!["--tun", "bt0", "--create"];
    args.extend_from_slice(extra);
    args.extend([
        "--addr",
        "192.0.2.2/24",
        "--addr",
        "2001:db8::2/64",
        "--echo",
    ]);
    let s = Serve::start(ns, &args);
    sh(
        ns,
        "ip addr add 192.0.2.1/24 dev bt0 && ip -6 addr add 2001:db8::1/64 dev bt0 nodad \
         && ip link set bt0 up",
    );
    s
}

#[test]
fn kernel_pings_and_echoes_through_berth_serve_on_a_tun_over_ipv6() {
    if skip(
        "kernel_pings_and_echoes_through_berth_serve_on_a_tun_over_ipv6",
        TOOLS,
    ) {
        return;
    }
    let ns = Netns::new("v6tun");
    let s = dual_stack_tun(&ns, &[]);
    let out = sh(&ns, "ping -6 -c 5 -i 0.2 -W 2 2001:db8::2");
    assert!(out.contains("5 packets transmitted, 5 received"), "{out}");
    // IPv4 beside it, on the same device.
    let out = sh(&ns, "ping -c 2 -i 0.2 -W 2 192.0.2.2");
    assert!(out.contains("2 received"), "{out}");
    tcp_echo_v6(&ns, "2001:db8::2", 4);
    let o = ns
        .cmd("python3")
        .args(["-c", PY_UDP_ECHO, "2001:db8::2", "7"])
        .output()
        .expect("python3");
    assert_eq!(stdout_ok(&o, "udp echo").trim(), "20");
    // The listeners are dual-stack [::] sockets: iproute2 writes them *:7, and
    // lists them under -6, not -4 (TCP only: no Netid column).
    let t6 = s.ss(&["-6", "-t", "-l"]);
    assert!(
        t6.lines()
            .any(|l| l.starts_with("LISTEN ") && l.contains(" *:7 ")),
        "{t6}"
    );
    let t4 = s.ss(&["-4", "-t", "-l"]);
    assert!(!t4.contains("*:7"), "{t4}");
    let info = s.control("info");
    assert_eq!(
        info["info"]["addrs"],
        serde_json::json!(["192.0.2.2/24", "2001:db8::2/64"])
    );
    let stats = s.control("stats");
    assert!(
        stats["stats"]["icmp6_out_echo_reps"].as_u64() >= Some(5),
        "{stats}"
    );
}

#[test]
fn berth_ping6_and_nc6_reach_the_kernel() {
    if skip("berth_ping6_and_nc6_reach_the_kernel", TOOLS) {
        return;
    }
    let ns = client_ns("v6cli");
    let host = CLIENT_HOST;
    let mut ping = ns.cmd(BERTH);
    ping.arg("ping")
        .args(host)
        .args(["-6", "-c", "10", "-i", "20ms", "2001:db8::1"]);
    let o = run_with_input(ping, Vec::new(), Duration::from_secs(30));
    let out = stdout_ok(&o, "berth ping -6");
    assert!(
        out.starts_with("PING 2001:db8::1(2001:db8::1) from 2001:db8::2 tb0: 56 data bytes\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("64 bytes from 2001:db8::1: icmp_seq=").count(),
        10,
        "{out}"
    );
    // The kernel's hop limit (64), as iputils prints it for IPv6.
    assert_eq!(out.matches(" ttl=64 time=").count(), 10, "{out}");
    assert!(
        out.contains("10 packets transmitted, 10 received, 0% packet loss"),
        "{out}"
    );

    // berth nc -6 → a kernel TCP sink on 2001:db8::1, byte-exact.
    let mut sink = ns.cmd("python3");
    sink.args(["-c", PY_TCP_SINK, "2001:db8::1", "5001"])
        .stdout(Stdio::piped());
    let mut sink = Proc::spawn(sink);
    let lines = sink.lines();
    expect_line(&lines, "ready", Duration::from_secs(10));
    let data = random_bytes(3 << 20, 6);
    let want = format!("{} {}", data.len(), sha256_hex(&data));
    let mut nc = ns.cmd(BERTH);
    nc.arg("nc")
        .args(host)
        .args(["-6", "-N", "[2001:db8::1]", "5001"]);
    let o = run_with_input(nc, data, Duration::from_secs(60));
    stdout_ok(&o, "berth nc -6");
    expect_line(&lines, &want, Duration::from_secs(30));

    // Off the device's prefixes through --gateway: the kernel also holds
    // 2001:db8:9::1 (on its loopback) and answers for it on the TUN.
    sh(&ns, "ip -6 addr add 2001:db8:9::1/128 dev lo");
    let mut ping = ns.cmd(BERTH);
    ping.arg("ping").args(host).args([
        "--gateway",
        "2001:db8::1",
        "-c",
        "3",
        "-i",
        "20ms",
        "2001:db8:9::1",
    ]);
    let o = run_with_input(ping, Vec::new(), Duration::from_secs(30));
    let out = stdout_ok(&o, "berth ping via --gateway");
    assert!(out.contains("3 packets transmitted, 3 received"), "{out}");

    // An IPv6 destination without an IPv6 --addr: refused, saying what to add.
    let o = ns
        .cmd(BERTH)
        .args([
            "ping",
            "--tun",
            "tb0",
            "--addr",
            "192.0.2.2/24",
            "2001:db8::1",
        ])
        .output()
        .expect("berth ping");
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--addr 2001:db8::2/64"), "{e}");
}

/// Python: a router advertisement for 2001:db8:1::/64 (on-link, autonomous)
/// with a router lifetime, from the kernel side's link-local address to all
/// nodes on the device (RFC 4861 §4.2, §4.6.2), hop limit 255.
const PY_RA: &str = r#"
import socket, struct, sys
idx = socket.if_nametoindex(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0)
pio += socket.inet_pton(socket.AF_INET6, "2001:db8:1::")
for _ in range(3):
    s.sendto(ra + pio, ("ff02::1", 0, 0, idx))
print("sent")
"#;

#[test]
fn tap_neighbour_discovery_both_ways_and_slaac_from_a_router_advertisement() {
    if skip(
        "tap_neighbour_discovery_both_ways_and_slaac_from_a_router_advertisement",
        TOOLS,
    ) {
        return;
    }
    let ns = Netns::new("v6tap");
    // The kernel side's link-local address must be usable at once (no DAD) to
    // send the advertisement from.
    ns.ip(&["tuntap", "add", "dev", "bt0", "mode", "tap"]);
    sh(
        &ns,
        "sysctl -qw net.ipv6.conf.bt0.accept_dad=0 && sysctl -qw net.ipv6.conf.bt0.accept_ra=0",
    );
    let s = Serve::start(
        &ns,
        &[
            "--tap",
            "bt0",
            "--addr",
            "192.0.2.2/24",
            "--addr",
            "2001:db8::2/64",
            "--autoconf",
            "--echo",
        ],
    );
    sh(
        &ns,
        "ip addr add 192.0.2.1/24 dev bt0 && ip -6 addr add 2001:db8::1/64 dev bt0 nodad \
         && ip -6 addr add 2001:db8:1::1/64 dev bt0 nodad && ip link set bt0 up",
    );
    // berth's address passes DAD (about a second), then the kernel reaches it
    // through neighbour discovery, and berth the kernel (its echo replies).
    s.wait_address(|a, _| a == "2001:db8::2/64", Duration::from_secs(10));
    let out = sh(&ns, "ping -6 -c 3 -i 0.2 -W 2 2001:db8::2");
    assert!(out.contains("3 received"), "{out}");
    let neigh = sh(&ns, "ip -6 neigh show dev bt0");
    assert!(neigh.contains("2001:db8::2 lladdr"), "{neigh}");
    tcp_echo_v6(&ns, "2001:db8::2", 1);
    // After the kernel forgets berth, it resolves it again.
    sh(&ns, "ip -6 neigh flush dev bt0");
    let out = sh(&ns, "ping -6 -c 2 -i 0.2 -W 2 2001:db8::2");
    assert!(out.contains("2 received"), "{out}");

    // SLAAC: an advertisement for 2001:db8:1::/64 gives berth an address there.
    let o = ns
        .cmd("python3")
        .args(["-c", PY_RA, "bt0"])
        .output()
        .expect("python3");
    stdout_ok(&o, "router advertisement");
    let slaac = s.wait_address(
        |a, origin| origin == "autoconf" && a.starts_with("2001:db8:1:"),
        Duration::from_secs(10),
    );
    let out = sh(&ns, &format!("ping -6 -c 3 -i 0.2 -W 2 {slaac}"));
    assert!(out.contains("3 received"), "{out}");
    tcp_echo_v6(&ns, &slaac, 1);
    let stats = s.control("stats");
    assert!(stats["stats"]["ndp_dad_ok"].as_u64() >= Some(2), "{stats}");
}

/// tshark on the TUN while the kernel pings berth over IPv6 and runs TCP and
/// UDP echo: nothing malformed, no bad checksum (berth's checksums are on the
/// wire only without offload, so `--no-offload`).
#[test]
fn tshark_finds_ipv6_on_the_tun_clean() {
    if skip(
        "tshark_finds_ipv6_on_the_tun_clean",
        &["ping", "python3", "tshark"],
    ) {
        return;
    }
    let ns = Netns::new("v6shark");
    let s = dual_stack_tun(&ns, &["--no-offload"]);
    let pcap = s.dir.join("capture.pcapng");
    let mut c = ns.cmd("tshark");
    c.args(["-n", "-q", "-i", "bt0", "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut cap = Proc::spawn(c);
    let err = lines_of(cap.child.stderr.take().expect("stderr"));
    expect_line(&err, "Capturing on", Duration::from_secs(30));
    // The capture runs once our packets reach the file.
    let size = || std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
    let end = Instant::now() + Duration::from_secs(30);
    let header = size();
    while size() <= header {
        assert!(Instant::now() < end, "tshark wrote nothing in 30 s");
        sh(&ns, "ping -6 -c 1 -W 1 2001:db8::2 >/dev/null || true");
    }
    let out = sh(&ns, "ping -6 -c 10 -i 0.01 -s 1400 2001:db8::2");
    assert!(out.contains("10 received"), "{out}");
    tcp_echo_v6(&ns, "2001:db8::2", 1);
    let o = ns
        .cmd("python3")
        .args(["-c", PY_UDP_ECHO, "2001:db8::2", "7"])
        .output()
        .expect("python3");
    assert_eq!(stdout_ok(&o, "udp echo").trim(), "20");
    let _ = Command::new("kill")
        .args(["-INT", &cap.child.id().to_string()])
        .status();
    let st = cap
        .wait(Duration::from_secs(20))
        .expect("tshark stops on SIGINT");
    assert!(st.success(), "tshark: {st}");
    let read = |filter: &str| {
        let o = Command::new("tshark")
            .arg("-n")
            .arg("-r")
            .arg(&pcap)
            .args([
                "-o",
                "udp.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
            ])
            .args(["-Y", filter])
            .output()
            .expect("tshark -r");
        stdout_ok(&o, "tshark -r")
    };
    let v6 = read("ipv6").lines().count();
    assert!(v6 > 500, "only {v6} IPv6 packets captured");
    let bad = read(
        "_ws.malformed || _ws.expert.severity >= error || udp.checksum.status == 0 \
         || tcp.checksum.status == 0 || icmpv6.checksum.status == 0",
    );
    assert!(bad.trim().is_empty(), "tshark complains:\n{bad}");
}

/// A namespace for berth clients: a bare TUN tb0, the kernel side 192.0.2.1/24
/// and 2001:db8::1/64; [`CLIENT_HOST`] attaches berth to it as the .2 of both.
fn client_ns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.tun("tb0", Some("192.0.2.1/24"));
    ns.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "tb0", "nodad"]);
    ns
}

const CLIENT_HOST: [&str; 6] = [
    "--tun",
    "tb0",
    "--addr",
    "192.0.2.2/24",
    "--addr",
    "2001:db8::2/64",
];

const HUNDRED_MB: usize = 100 << 20;

/// `berth nc -6 [ARGS]` on the client namespace's TUN, fed `input`; its output.
fn berth_nc(ns: &Netns, args: &[&str], input: Vec<u8>, limit: Duration) -> Output {
    let mut nc = ns.cmd(BERTH);
    nc.arg("nc").args(CLIENT_HOST).arg("-6").args(args);
    run_with_input(nc, input, limit)
}

/// A python3 script in `ns` fed `input` on stdin; its stdout's lines.
fn py_spawn(ns: &Netns, script: &str, args: &[&str], input: Vec<u8>) -> (Proc, Receiver<String>) {
    let mut a = vec!["-c", script];
    a.extend_from_slice(args);
    let (p, mut stdin, lines) = py_proc(ns, "python3", &a);
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    (p, lines)
}

/// 100 MB each way over IPv6 through a TUN, SHA-256 equal at both ends: the
/// kernel sends to `berth nc -6 -l` (hashed on berth's stdout), then `berth nc
/// -6` sends to a kernel listener that hashes what it reads.
#[test]
fn tcp_100mb_both_ways_between_the_kernel_and_berth_nc6_sha256_equal() {
    if skip(
        "tcp_100mb_both_ways_between_the_kernel_and_berth_nc6_sha256_equal",
        TOOLS,
    ) {
        return;
    }
    let _serial = serial();
    let ns = client_ns("v6bulk");

    // kernel → berth. The kernel's source retries until berth listens.
    let data = random_bytes(HUNDRED_MB, 0x6b65726e);
    let want = sha256_hex(&data);
    let (_src, src_out) = py_spawn(&ns, PY_TCP_SOURCE, &["2001:db8::2", "5002"], data);
    let t = Instant::now();
    let o = berth_nc(
        &ns,
        &["-l", "-p", "5002"],
        Vec::new(),
        Duration::from_secs(300),
    );
    let secs = t.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "berth nc -6 -l: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.stdout.len(), HUNDRED_MB, "bytes berth received");
    assert_eq!(sha256_hex(&o.stdout), want, "berth received other bytes");
    expect_line(
        &src_out,
        &format!("sent {HUNDRED_MB}"),
        Duration::from_secs(30),
    );
    report(format!(
        "IPv6 kernel → berth nc -6 -l, 100 MB: {secs:.1} s ({:.0} Mbit/s), sha256 {want}",
        HUNDRED_MB as f64 * 8.0 / secs / 1e6
    ));

    // berth → kernel.
    let (_sink, sink_out) = py_spawn(&ns, PY_TCP_SINK, &["2001:db8::1", "5001"], Vec::new());
    expect_line(&sink_out, "ready", Duration::from_secs(10));
    let data = random_bytes(HUNDRED_MB, 0x62657274);
    let want = format!("{} {}", data.len(), sha256_hex(&data));
    let t = Instant::now();
    let o = berth_nc(
        &ns,
        &["-N", "[2001:db8::1]", "5001"],
        data,
        Duration::from_secs(300),
    );
    stdout_ok(&o, "berth nc -6");
    let got = expect_line(&sink_out, " ", Duration::from_secs(60));
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got.last(), Some(&want), "the kernel received other bytes");
    report(format!(
        "IPv6 berth nc -6 → kernel, 100 MB: {secs:.1} s ({:.0} Mbit/s), {want}",
        HUNDRED_MB as f64 * 8.0 / secs / 1e6
    ));
}

/// Connection refused both ways over IPv6: `berth nc -6` to a kernel port
/// nothing listens on gets the kernel's RST (berth's message, exit status 1);
/// the kernel connecting to a `berth serve` port nothing listens on gets
/// ECONNREFUSED from berth's RST.
#[test]
fn connection_refused_both_ways_over_ipv6() {
    if skip("connection_refused_both_ways_over_ipv6", TOOLS) {
        return;
    }
    let ns = client_ns("v6rst");
    let o = berth_nc(
        &ns,
        &["-v", "-w", "5", "2001:db8::1", "9"],
        Vec::new(),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "berth nc -6 to a closed port: {err}"
    );
    assert_eq!(
        err.trim(),
        "nc: connect to 2001:db8::1 port 9 (tcp) failed: Connection refused"
    );

    // The same TUN, now with berth serve (echo on 7 only) on it.
    let mut serve_args = CLIENT_HOST.to_vec();
    serve_args.push("--echo");
    let s = Serve::start(&ns, &serve_args);
    let rsts = |s: &Serve| s.control("stats")["stats"]["tcp_out_rsts"].as_u64();
    let before = rsts(&s).expect("tcp_out_rsts");
    let o = ns
        .cmd("python3")
        .args(["-c", PY_TCP_CONNECT, "2001:db8::2", "5555"])
        .output()
        .expect("python3");
    assert_eq!(stdout_ok(&o, "connect to berth").trim(), "refused");
    assert!(rsts(&s) > Some(before), "no RST counted");
    // The echo port next to it still answers.
    tcp_echo_v6(&ns, "2001:db8::2", 1);
}

const TEN_MB: usize = 10 << 20;

/// One family of the path MTU test: berth's address and gateway on the TUN,
/// the far host, the locked MTU of the router's route to it, and the send MSS
/// (tcpi_snd_mss: less 12 for timestamps) before and after.
struct PmtuCase {
    berth: &'static str,
    far: &'static str,
    port: &'static str,
    mtu: usize,
    mss_before: u64,
    mss_after: u64,
}

const PMTU_CASES: [PmtuCase; 2] = [
    PmtuCase {
        berth: "2001:db8:1::2",
        far: "2001:db8:2::2",
        port: "5006",
        mtu: 1280,
        mss_before: 1500 - 60 - 12,
        mss_after: 1280 - 60 - 12,
    },
    PmtuCase {
        berth: "192.0.2.2",
        far: "198.51.100.2",
        port: "5004",
        mtu: 576,
        mss_before: 1500 - 40 - 12,
        mss_after: 576 - 40 - 12,
    },
];

/// The kernel as a router between `berth serve` on a TUN (2001:db8:1::/64,
/// 192.0.2.0/24) and a second namespace behind a veth (2001:db8:2::/64,
/// 198.51.100.0/24), whose route there is `mtu lock 1280` (IPv6) and `mtu
/// lock 576` (IPv4). The far host's MSS says 1500-byte packets (its link is
/// 1500), so berth's first full segments are too big for the hop: the router
/// answers Packet Too Big / fragmentation needed, berth lowers its MSS and
/// the 10 MB complete, SHA-256 equal — both through `berth serve`'s echo (a
/// far kernel client; MSS and counters through the control socket) and from
/// `berth nc` to a far kernel listener (through --gateway).
///
/// Why locked routes and not the veth's own MTU: the router forwards at the
/// route's MTU only when it is locked (Linux ip_dst_mtu_maybe_forward), and a
/// 1280-byte veth would give the far host a 1220-byte MSS, so berth would
/// never send anything too big; IPv4's 576 on the device would also switch
/// IPv6 off on it.
#[test]
fn path_mtu_through_a_kernel_router_lowers_berths_mss_both_families() {
    if skip(
        "path_mtu_through_a_kernel_router_lowers_berths_mss_both_families",
        TOOLS,
    ) {
        return;
    }
    let _serial = serial();
    let router = Netns::new("pmtu-r");
    let far = Netns::new("pmtu-f");
    for ns in [&router, &far] {
        sh(
            ns,
            "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
        );
    }
    sh(
        &router,
        "sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1",
    );
    router.tun("bt0", Some("192.0.2.1/24"));
    router.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "bt0",
        "nodad",
    ]);
    router.ip(&[
        "link", "add", "veth-rtr", "type", "veth", "peer", "name", "veth-far", "netns", &far.name,
    ]);
    sh(
        &router,
        "ip addr add 198.51.100.1/24 dev veth-rtr noprefixroute \
         && ip -6 addr add 2001:db8:2::1/64 dev veth-rtr nodad noprefixroute \
         && ip link set veth-rtr up \
         && ip -6 route add 2001:db8:2::/64 dev veth-rtr mtu lock 1280 \
         && ip route add 198.51.100.0/24 dev veth-rtr mtu lock 576",
    );
    sh(
        &far,
        "ip addr add 198.51.100.2/24 dev veth-far && ip -6 addr add 2001:db8:2::2/64 dev veth-far nodad \
         && ip link set veth-far up && ip route add 192.0.2.0/24 via 198.51.100.1 \
         && ip -6 route add 2001:db8:1::/64 via 2001:db8:2::1",
    );
    let host = [
        "--tun",
        "bt0",
        "--addr",
        "192.0.2.2/24",
        "--addr",
        "2001:db8:1::2/64",
        "--gateway",
        "192.0.2.1",
        "--gateway",
        "2001:db8:1::1",
    ];

    // berth serve's echo: the far kernel sends 10 MB, berth sends them back.
    let mut serve_args = host.to_vec();
    serve_args.push("--echo");
    let s = Serve::start(&router, &serve_args);
    for (i, c) in PMTU_CASES.iter().enumerate() {
        // (path MTU, send MSS) of berth's side of the connection.
        let mss = || -> Option<(u64, u64)> {
            let rows = s.control("sockets");
            rows["sockets"].as_array()?.iter().find_map(|r| {
                let peer = r["peer"].as_str()?;
                (peer.contains(c.far) && r["state"] == "ESTAB").then(|| {
                    let t = &r["tcp_info"];
                    Some((t["pmtu"].as_u64()?, t["snd_mss"].as_u64()?))
                })?
            })
        };
        let ten = TEN_MB.to_string();
        let (mut client, mut gate, out) = py_proc(
            &far,
            "python3",
            &["-c", PY_TCP_ECHO, c.berth, "7", &ten, "gate"],
        );
        expect_line(&out, "connected", Duration::from_secs(10));
        // Every send MSS berth's side of the connection shows while it lasts:
        // first the one the far host's SYN allows, then the lowered one.
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while seen.is_empty() {
            assert!(Instant::now() < end, "no connection from {} in ss", c.far);
            seen.extend(mss());
        }
        // `berth ss -i` shows the same.
        let info = s.ss(&["-t", "-i"]);
        assert!(
            info.contains(&format!(" mss:{} pmtu:1500 ", c.mss_before)),
            "{info}"
        );
        let t = Instant::now();
        writeln!(gate, "go").expect("release the echo client");
        let line = loop {
            if let Ok(l) = out.try_recv() {
                break l;
            }
            if let Some(m) = mss() {
                if seen.last() != Some(&m) {
                    seen.push(m);
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "no echo within 120 s; MSS seen {seen:?}; {}",
                s.control("stats")
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let secs = t.elapsed().as_secs_f64();
        let _ = client.wait(Duration::from_secs(10));
        let sha = assert_echoed(&line, TEN_MB);
        let stats = s.control("stats");
        let n = |k: &str| stats["stats"][k].as_u64().unwrap_or(0);
        report(format!(
            "path MTU {} through the kernel router: 10 MB echoed in {secs:.2} s, sha256 {sha}, \
             berth's (path MTU, send MSS) seen {seen:?}, pmtu_lowered {} tcp_mss_reduced {}",
            c.mtu,
            n("pmtu_lowered"),
            n("tcp_mss_reduced")
        ));
        assert_eq!(
            seen,
            [(1500, c.mss_before), (c.mtu as u64, c.mss_after)],
            "(path MTU, send MSS) seen"
        );
        assert!(n("pmtu_lowered") > i as u64, "{stats}");
        assert!(n("tcp_mss_reduced") > i as u64, "{stats}");
    }
    drop(s);

    // berth nc → a far kernel listener, 10 MB through --gateway: without path
    // MTU discovery the first full segment would be lost for good.
    for c in &PMTU_CASES {
        let (_sink, sink_out) = py_spawn(&far, PY_TCP_SINK, &[c.far, c.port], Vec::new());
        expect_line(&sink_out, "ready", Duration::from_secs(10));
        let data = random_bytes(TEN_MB, c.mtu as u64);
        let want = format!("{} {}", data.len(), sha256_hex(&data));
        let mut nc = router.cmd(BERTH);
        nc.arg("nc").args(host).args(["-N", c.far, c.port]);
        let t = Instant::now();
        let o = run_with_input(nc, data, Duration::from_secs(120));
        stdout_ok(&o, "berth nc through the router");
        let got = expect_line(&sink_out, " ", Duration::from_secs(30));
        assert_eq!(
            got.last(),
            Some(&want),
            "the far kernel received other bytes"
        );
        report(format!(
            "path MTU {}: berth nc → far kernel, 10 MB in {:.2} s, {want}",
            c.mtu,
            t.elapsed().as_secs_f64()
        ));
    }
}
