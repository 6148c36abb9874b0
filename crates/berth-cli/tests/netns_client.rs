//! `berth ping` and `berth nc` against the Linux kernel: each test makes its own
//! namespace with a TUN device (kernel side 192.0.2.1/24), and runs berth in it
//! as 192.0.2.2/24 on that device. Needs root and /dev/net/tun; skips (saying
//! why) without them, unless CI is set.

mod support_netns;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support_netns::*;

const DEV: &str = "tb0";
const KERNEL: &str = "192.0.2.1";
const BERTH_ADDR: &str = "192.0.2.2/24";

fn setup(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.tun(DEV, Some("192.0.2.1/24"));
    ns
}

/// `berth ARGS…` inside `ns`, on the namespace's TUN device.
fn berth_in(ns: &Netns, sub: &str, args: &[&str]) -> Command {
    let mut c = ns.cmd(BERTH);
    c.args([sub, "--tun", DEV, "--addr", BERTH_ADDR]).args(args);
    c
}

#[test]
fn berth_ping_to_kernel_loses_nothing() {
    if skip("berth_ping_to_kernel_loses_nothing", &[]) {
        return;
    }
    let ns = setup("ping");
    let o = run_with_input(
        berth_in(&ns, "ping", &["-c", "20", "-i", "20ms", KERNEL]),
        Vec::new(),
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("PING 192.0.2.1 (192.0.2.1)"), "{out}");
    assert_eq!(
        out.matches("64 bytes from 192.0.2.1: icmp_seq=").count(),
        20,
        "{out}"
    );
    assert!(
        out.contains("20 packets transmitted, 20 received, 0% packet loss"),
        "{out}"
    );
    assert!(out.contains("rtt min/avg/max/mdev = "), "{out}");
}

#[test]
fn berth_nc_client_to_kernel_tcp_server_10mb_sha256_equal() {
    if skip("berth_nc_client_to_kernel_tcp_server", &["python3"]) {
        return;
    }
    let ns = setup("nctcp");
    let mut c = ns.cmd("python3");
    c.args(["-c", PY_TCP_SINK, KERNEL, "5001"])
        .stdout(Stdio::piped());
    let mut sink = Proc::spawn(c);
    let sink_out = sink.lines();
    expect_line(&sink_out, "ready", Duration::from_secs(10));

    let data = random_bytes(10 << 20, 7);
    let want = format!("{} {}", data.len(), sha256_hex(&data));
    let o = run_with_input(
        berth_in(&ns, "nc", &["-N", KERNEL, "5001"]),
        data,
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "berth nc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = expect_line(&sink_out, " ", Duration::from_secs(30));
    assert_eq!(got.last(), Some(&want), "kernel received different bytes");
}

/// A python3 UDP echo server: prints "ready", echoes one datagram, exits.
const PY_UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(30)
print("ready", flush=True)
b, peer = s.recvfrom(65536)
s.sendto(b, peer)
print("echoed", len(b), flush=True)
"#;

/// A python3 UDP client: sends "ping\n" to ADDR:PORT every 200 ms until a
/// reply comes (berth may still be starting), prints the reply.
const PY_UDP_PINGER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0)); s.settimeout(0.2)
end = time.time() + 20
while time.time() < end:
    try:
        s.sendto(b"ping\n", (sys.argv[2], int(sys.argv[3])))
        b = s.recv(65536)
        print("reply", b.decode().strip(), flush=True)
        sys.exit(0)
    except OSError:
        pass
print("no reply", flush=True)
sys.exit(1)
"#;

#[test]
fn udp_both_ways() {
    if skip("udp_both_ways", &["python3"]) {
        return;
    }
    let ns = setup("ncudp");

    // berth → kernel echo → berth.
    let mut c = ns.cmd("python3");
    c.args(["-c", PY_UDP_ECHO, KERNEL, "7777"])
        .stdout(Stdio::piped());
    let mut echo = Proc::spawn(c);
    let echo_out = echo.lines();
    expect_line(&echo_out, "ready", Duration::from_secs(10));
    let o = run_with_input(
        berth_in(&ns, "nc", &["-u", "-w", "1", KERNEL, "7777"]),
        b"hello over udp\n".to_vec(),
        Duration::from_secs(30),
    );
    assert!(
        o.status.success(),
        "berth nc -u: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello over udp\n");
    expect_line(&echo_out, "echoed 15", Duration::from_secs(5));

    // kernel → berth listener → kernel.
    let mut listener = berth_in(&ns, "nc", &["-u", "-l", "-p", "7778", "-w", "1"]);
    listener
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut l = Proc::spawn(listener);
    let mut stdin = l.child.stdin.take().expect("stdin");
    stdin.write_all(b"pong\n").expect("write stdin");
    drop(stdin);
    let l_out = l.lines();
    let mut c = ns.cmd("python3");
    c.args(["-c", PY_UDP_PINGER, KERNEL, "192.0.2.2", "7778"])
        .stdout(Stdio::piped());
    let mut pinger = Proc::spawn(c);
    let p_out = pinger.lines();
    expect_line(&p_out, "reply pong", Duration::from_secs(25));
    expect_line(&l_out, "ping", Duration::from_secs(5));
    let status = l
        .wait(Duration::from_secs(10))
        .expect("listener exits after -w 1");
    assert!(status.success(), "{status:?}");
}

#[test]
fn kernel_rst_gives_berth_nc_connection_refused() {
    if skip("kernel_rst_gives_berth_nc_connection_refused", &[]) {
        return;
    }
    let ns = setup("ncrst");
    let o = run_with_input(
        berth_in(&ns, "nc", &["-v", "-w", "5", KERNEL, "9"]),
        Vec::new(),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "nc to a closed port succeeded");
    assert!(
        err.contains("nc: connect to 192.0.2.1 port 9 (tcp) failed: Connection refused"),
        "{err}"
    );
}

/// The TAP variant: ARP both ways (the kernel resolves berth and berth the
/// kernel), then a 1 MB TCP transfer from `berth nc --tap`.
#[test]
fn berth_nc_over_tap_resolves_arp_and_transfers() {
    if skip("berth_nc_over_tap", &["python3"]) {
        return;
    }
    let ns = Netns::new("nctap");
    ns.ip(&["tuntap", "add", "dev", "tp0", "mode", "tap"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "tp0"]);
    ns.ip(&["link", "set", "tp0", "up"]);
    let mut c = ns.cmd("python3");
    c.args(["-c", PY_TCP_SINK, KERNEL, "5002"])
        .stdout(Stdio::piped());
    let mut sink = Proc::spawn(c);
    let sink_out = sink.lines();
    expect_line(&sink_out, "ready", Duration::from_secs(10));
    let data = random_bytes(1 << 20, 5);
    let want = format!("{} {}", data.len(), sha256_hex(&data));
    let mut c = ns.cmd(BERTH);
    c.args([
        "nc", "--tap", "tp0", "--addr", BERTH_ADDR, "-N", KERNEL, "5002",
    ]);
    let o = run_with_input(c, data, Duration::from_secs(60));
    assert!(
        o.status.success(),
        "berth nc --tap: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = expect_line(&sink_out, " ", Duration::from_secs(30));
    assert_eq!(got.last(), Some(&want));
    // Both ARP directions were needed: berth resolved 192.0.2.1 before its
    // SYN left, the kernel resolved 192.0.2.2 before its SYN-ACK. (The
    // kernel's neighbour entry is flushed when berth closes the TAP and the
    // carrier drops, so it cannot be checked afterwards.)
}

/// A python3 TCP client that retries until berth listens: sends "from
/// kernel\n", half-closes, prints what came back.
const PY_TCP_CLIENT_RETRY: &str = r#"
import socket, sys, time
end = time.time() + 20
while True:
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); break
    except OSError:
        if time.time() > end: raise
        time.sleep(0.2)
c.sendall(b"from kernel\n"); c.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = c.recv(65536)
    if not b: break
    got += b
print("got", got.decode().strip(), flush=True)
"#;

#[test]
fn kernel_client_to_berth_nc_listener() {
    if skip("kernel_client_to_berth_nc_listener", &["python3"]) {
        return;
    }
    let ns = setup("nclst");
    let mut c = ns.cmd("python3");
    c.args(["-c", PY_TCP_CLIENT_RETRY, "192.0.2.2", "5003"])
        .stdout(Stdio::piped());
    let mut client = Proc::spawn(c);
    let client_out = client.lines();
    let o = run_with_input(
        berth_in(&ns, "nc", &["-l", "-p", "5003"]),
        b"from berth\n".to_vec(),
        Duration::from_secs(30),
    );
    assert!(
        o.status.success(),
        "berth nc -l: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from kernel\n");
    expect_line(&client_out, "got from berth", Duration::from_secs(10));
}
