//! `--pcap` of `berth serve`, `ping`, `nc` and `impair`, read back with tshark
//! (the expected packets there, nothing malformed, no bad checksum), and the
//! library's logs through RUST_LOG. Each test makes its own namespaces (kernel
//! side 192.0.2.1/24, berth 192.0.2.2/24). Needs root, /dev/net/tun, ip,
//! python3, ping and tshark; without them each test says why and skips,
//! unless CI is set.

mod support_netns;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support_netns::*;

const KERNEL: &str = "192.0.2.1";
const BERTH_IP: &str = "192.0.2.2";
const BERTH_CIDR: &str = "192.0.2.2/24";
const TOOLS: &[&str] = &["python3", "ping", "tshark"];

/// tshark's complaints: malformed packets, errors, and bad checksums (with
/// checksum validation on, see [`tshark`]).
const BAD: &str = "_ws.malformed || _ws.expert.severity >= error \
    || ip.checksum.status == 0 || udp.checksum.status == 0 \
    || icmp.checksum.status == 0 || tcp.checksum.status == 0";

/// `tshark -r FILE [-Y FILTER]` with checksum validation: one line per packet.
fn tshark(pcap: &Path, filter: Option<&str>) -> Vec<String> {
    let mut c = Command::new("tshark");
    c.arg("-n").arg("-r").arg(pcap);
    c.args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"]);
    if let Some(f) = filter {
        c.args(["-Y", f]);
    }
    let o = run_with_input(c, Vec::new(), Duration::from_secs(60));
    let out = text(&o.stdout);
    assert!(
        o.status.success(),
        "tshark -r {}: {}\n{out}",
        pcap.display(),
        text(&o.stderr)
    );
    out.lines().map(str::to_string).collect()
}

/// How many packets of `pcap` match `filter`.
fn count(pcap: &Path, filter: &str) -> usize {
    tshark(pcap, Some(filter)).len()
}

/// The capture holds packets, none malformed or with a bad checksum; returns
/// how many.
fn assert_clean(pcap: &Path, link: &str) -> usize {
    let all = tshark(pcap, None);
    assert!(!all.is_empty(), "{}: no packet captured", pcap.display());
    let bad = tshark(pcap, Some(BAD));
    assert!(
        bad.is_empty(),
        "{}: tshark complains about {} of {} packets:\n{}",
        pcap.display(),
        bad.len(),
        all.len(),
        bad.join("\n")
    );
    // The link type in the file header (offset 20): 1 Ethernet, 101 raw IP.
    let bytes = std::fs::read(pcap).expect("read pcap");
    let want: u32 = if link == "tap" { 1 } else { 101 };
    assert_eq!(
        bytes
            .get(20..24)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Some(want),
        "link type of a {link} capture"
    );
    all.len()
}

/// A `berth serve --echo --pcap` on a new device `bt0` (TUN or TAP) in its
/// own namespace, the kernel side 192.0.2.1/24 on it. Killed on drop.
struct Served {
    server: Proc,
    pcap: PathBuf,
    log: PathBuf,
    _dir: TmpDir,
    ns: Netns,
}

impl Served {
    fn start(tag: &str, mode: &str, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let ns = Netns::new(tag);
        let dir = TmpDir::new(&format!("berth-pcap-{}", ns.name));
        let pcap = dir.path.join("serve.pcap");
        let log = dir.path.join("serve.log");
        let control = dir.path.join("control.sock");
        let mut c = ns.cmd(BERTH);
        c.args(["serve", &format!("--{mode}"), "bt0", "--create", "--addr"])
            .args([BERTH_CIDR, "--echo", "--pcap"])
            .arg(&pcap)
            .arg("--control")
            .arg(&control)
            .args(extra)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"));
        let mut server = Proc::spawn(c);
        let up = wait_until(Duration::from_secs(20), || {
            control.exists() || server.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            up && control.exists(),
            "berth serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "bt0"]);
        ns.ip(&["link", "set", "bt0", "up"]);
        Served {
            server,
            pcap,
            log,
            _dir: dir,
            ns,
        }
    }

    /// `ping -c N` from the kernel, asserting every reply came.
    fn kernel_pings(&self, n: u32) {
        let o = run_with_input(
            {
                let mut c = self.ns.cmd("ping");
                c.args(["-c", &n.to_string(), "-i", "0.05", "-W", "2", BERTH_IP]);
                c
            },
            Vec::new(),
            Duration::from_secs(30),
        );
        let out = text(&o.stdout);
        assert!(
            out.contains(&format!("{n} packets transmitted, {n} received")),
            "{out}"
        );
    }

    /// A TCP echo of `bytes` from the kernel, byte-exact.
    fn kernel_echo(&self, bytes: usize) {
        let mut c = self.ns.cmd("python3");
        c.args(["-c", PY_TCP_ECHO, BERTH_IP, "7", &bytes.to_string()]);
        let o = run_with_input(c, Vec::new(), Duration::from_secs(120));
        assert!(o.status.success(), "echo client: {}", text(&o.stderr));
        assert_echoed(&text(&o.stdout), bytes);
    }

    /// SIGTERM, a clean exit (the capture is flushed then); its stderr.
    fn stop(&mut self) -> String {
        let st = self.server.terminate(Duration::from_secs(20));
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            st.is_some_and(|s| s.success()),
            "berth serve: {st:?}: {log}"
        );
        log
    }
}

/// What every serve capture holds after a ping and a TCP echo: the echo
/// requests and replies, the handshake both ways, FINs, and data.
fn assert_ping_and_echo(pcap: &Path, pings: usize) {
    let req = format!("icmp.type == 8 && ip.dst == {BERTH_IP}");
    let rep = format!("icmp.type == 0 && ip.src == {BERTH_IP}");
    assert_eq!(count(pcap, &req), pings, "echo requests captured");
    assert_eq!(count(pcap, &rep), pings, "echo replies captured");
    let syn = format!(
        "tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.dst == {BERTH_IP} && tcp.dstport == 7"
    );
    let synack = format!("tcp.flags.syn == 1 && tcp.flags.ack == 1 && ip.src == {BERTH_IP}");
    assert_eq!(count(pcap, &syn), 1, "the kernel's SYN");
    assert_eq!(count(pcap, &synack), 1, "berth's SYN-ACK");
    assert!(count(pcap, "tcp.flags.fin == 1") >= 2, "FINs both ways");
    assert!(count(pcap, &format!("tcp.len > 0 && ip.src == {BERTH_IP}")) > 0);
}

/// `berth serve --MODE --echo --pcap`: 5 pings and an echo of `bytes` from
/// the kernel, then SIGTERM; the capture is clean and holds them. Returns
/// the server (whose directory holds the capture) and the packets captured.
fn serve_ping_and_echo(tag: &str, mode: &str, bytes: usize) -> (Served, usize) {
    let mut s = Served::start(tag, mode, &[], &[]);
    s.kernel_pings(5);
    s.kernel_echo(bytes);
    s.stop();
    let total = assert_clean(&s.pcap, mode);
    assert_ping_and_echo(&s.pcap, 5);
    report(format!("serve --{mode} --pcap: {total} packets, clean"));
    (s, total)
}

#[test]
fn serve_pcap_on_a_tap_is_ethernet_with_arp_ping_and_tcp() {
    if skip("serve_pcap_on_a_tap", TOOLS) {
        return;
    }
    let (s, _) = serve_ping_and_echo("pcaptap", "tap", 256 << 10);
    assert!(count(&s.pcap, "arp.opcode == 2") > 0, "berth's ARP reply");
}

/// With offload the device carries GSO super-packets both ways; the capture
/// holds the packets the stack sees (split, checksums complete), so tshark
/// validates every checksum here too.
#[test]
fn serve_pcap_on_a_tun_with_offload_is_raw_ip_and_clean() {
    if skip("serve_pcap_on_a_tun_with_offload", TOOLS) {
        return;
    }
    let (_s, total) = serve_ping_and_echo("pcaptun", "tun", 4 << 20);
    assert!(total > 1000, "a 4 MB echo in only {total} packets");
}

/// One namespace with a TUN `tb0`, the kernel 192.0.2.1/24 on it.
fn tun_ns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.tun("tb0", Some("192.0.2.1/24"));
    ns
}

/// A namespace as [`tun_ns`], and `berth SUB --tun tb0 --addr 192.0.2.2/24
/// --pcap FILE ARGS…` to run in it; FILE is in the returned directory.
fn client_with_pcap(tag: &str, sub: &str, args: &[&str]) -> (Netns, TmpDir, PathBuf, Command) {
    let ns = tun_ns(tag);
    let dir = TmpDir::new(&format!("berth-pcap-{}", ns.name));
    let pcap = dir.path.join(format!("{sub}.pcap"));
    let mut c = ns.cmd(BERTH);
    c.args([sub, "--tun", "tb0", "--addr", BERTH_CIDR, "--pcap"])
        .arg(&pcap)
        .args(args);
    (ns, dir, pcap, c)
}

#[test]
fn ping_pcap_holds_every_request_and_reply() {
    if skip("ping_pcap", TOOLS) {
        return;
    }
    let args = ["-c", "4", "-i", "0.05", KERNEL];
    let (_ns, _dir, pcap, c) = client_with_pcap("pcapping", "ping", &args);
    let o = run_with_input(c, Vec::new(), Duration::from_secs(30));
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("4 packets transmitted, 4 received"), "{out}");
    assert_clean(&pcap, "tun");
    let req = format!("icmp.type == 8 && ip.src == {BERTH_IP} && ip.dst == {KERNEL}");
    let rep = format!("icmp.type == 0 && ip.src == {KERNEL} && ip.dst == {BERTH_IP}");
    assert_eq!(count(&pcap, &req), 4, "requests");
    assert_eq!(count(&pcap, &rep), 4, "replies");
}

/// `berth nc -l` stopped by SIGINT, as Ctrl-C does: the capture is flushed
/// before nc dies of the signal, and holds the handshake, the data and
/// berth's FIN (nc closes the connection on Ctrl-C).
#[test]
fn nc_pcap_is_flushed_on_sigint() {
    if skip("nc_pcap_on_sigint", TOOLS) {
        return;
    }
    let (ns, _dir, pcap, mut c) = client_with_pcap("pcapnc", "nc", &["-l", "5002"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut nc = Proc::spawn(c);
    let nc_out = nc.lines();
    // The kernel sends a line and waits for berth's FIN with its own side
    // open: a listening nc ends by itself at its peer's FIN (OpenBSD's
    // "listen and net in gone"), which would race the SIGINT below.
    let args = ["-c", PY_TCP_SOURCE, BERTH_IP, "5002", "hold"];
    let (_client, mut stdin, client_out) = py_proc(&ns, "python3", &args);
    stdin
        .write_all(b"hello from the kernel\n")
        .expect("client stdin");
    drop(stdin);
    expect_line(&nc_out, "hello from the kernel", Duration::from_secs(30));
    // SIGINT to berth itself (ip netns exec runs it in place).
    run("kill", &["-INT", &nc.child.id().to_string()]);
    expect_line(&client_out, "sent 22", Duration::from_secs(10));
    let st = nc
        .wait(Duration::from_secs(10))
        .expect("nc exits on SIGINT");
    assert!(!st.success(), "nc dies of the signal: {st:?}");
    assert_clean(&pcap, "tun");
    let port = "tcp.port == 5002";
    let syn = format!("{port} && tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.src == {KERNEL}");
    let synack =
        format!("{port} && tcp.flags.syn == 1 && tcp.flags.ack == 1 && ip.src == {BERTH_IP}");
    let fin = format!("{port} && tcp.flags.fin == 1 && ip.src == {BERTH_IP}");
    assert_eq!(count(&pcap, &syn), 1, "SYN");
    assert_eq!(count(&pcap, &synack), 1, "SYN-ACK");
    assert!(
        count(
            &pcap,
            &format!("{port} && tcp.len == 22 && ip.src == {KERNEL}")
        ) >= 1,
        "data"
    );
    assert!(count(&pcap, &fin) >= 1, "berth's FIN after Ctrl-C");
}

/// `berth impair --pcap` (what arrives) and `--pcap-out` (what leaves) around
/// 20 % loss: the first holds every packet read, the second every packet
/// written, and the difference is what the impairment lost.
#[test]
fn impair_captures_what_arrives_and_what_leaves() {
    if skip("impair_pcap", TOOLS) {
        return;
    }
    let ns1 = Netns::new("pcapimp1");
    let ns2 = Netns::new("pcapimp2");
    ns1.tun("ta", Some("192.0.2.1/24"));
    ns2.tun("tb", Some("192.0.2.2/24"));
    let dir = TmpDir::new(&format!("berth-pcap-{}", ns1.name));
    let (arrive, leave) = (dir.path.join("in.pcap"), dir.path.join("out.pcap"));
    let mut c = Command::new(BERTH);
    c.args(["impair", "--a", "ta", "--b", "tb", "--netns-a", &ns1.name])
        .args(["--netns-b", &ns2.name, "--loss", "20%", "--seed", "3"])
        .arg("--pcap")
        .arg(&arrive)
        .arg("--pcap-out")
        .arg(&leave)
        .stdout(Stdio::piped());
    let mut impair = Proc::spawn(c);
    let imp_out = impair.lines();
    expect_line(&imp_out, "forwarding ta <-> tb", Duration::from_secs(10));
    let mut c = ns1.cmd("ping");
    c.args(["-c", "30", "-i", "0.02", "-W", "1", BERTH_IP]);
    let _ = run_with_input(c, Vec::new(), Duration::from_secs(60));
    let st = impair
        .terminate(Duration::from_secs(10))
        .expect("impair exits");
    assert!(st.success(), "impair: {st:?}");
    let stats = rest(&imp_out, Duration::from_secs(5));
    // "ta -> tb: received R packets (…), delivered D, lost L, …"
    let field = |dir: &str, name: &str| -> usize {
        let line = stats
            .iter()
            .find(|l| l.starts_with(dir))
            .unwrap_or_else(|| panic!("no {dir} line in {stats:?}"));
        line.split([',', ':'])
            .find_map(|f| f.trim().strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let received = field("ta -> tb", "received ") + field("tb -> ta", "received ");
    let delivered = field("ta -> tb", "delivered ") + field("tb -> ta", "delivered ");
    let lost = field("ta -> tb", "lost ") + field("tb -> ta", "lost ");
    assert!(lost > 0, "20% loss lost nothing: {stats:?}");
    assert_eq!(
        assert_clean(&arrive, "tun"),
        received,
        "arrivals: {stats:?}"
    );
    assert_eq!(
        assert_clean(&leave, "tun"),
        delivered,
        "departures: {stats:?}"
    );
    assert_eq!(received - lost, delivered, "{stats:?}");
    let requests = format!("icmp.type == 8 && ip.src == {KERNEL}");
    assert_eq!(count(&arrive, &requests), 30, "every request arrived");
    assert!(count(&leave, &requests) < 30, "some requests lost");
}

/// RUST_LOG=berth=debug shows TCP state changes with the four-tuple and drops
/// with their counter; without RUST_LOG, berth says nothing on stderr.
#[test]
fn rust_log_shows_state_changes_and_drops_and_nothing_without_it() {
    if skip("rust_log", TOOLS) {
        return;
    }
    let mut s = Served::start("pcaplog", "tun", &[], &[("RUST_LOG", "berth=debug")]);
    s.kernel_echo(1000);
    // A SYN to a port nothing listens on: reset, and counted as tcp_no_socket.
    let mut c = s.ns.cmd("python3");
    c.args(["-c", PY_TCP_CONNECT, BERTH_IP, "5"]);
    let o = run_with_input(c, Vec::new(), Duration::from_secs(30));
    assert_eq!(text(&o.stdout).trim(), "refused");
    let log = s.stop();
    let changes: Vec<&str> = log.lines().filter(|l| l.contains("state change")).collect();
    let tuple = |l: &&str| l.contains("local=192.0.2.2:7") && l.contains("remote=192.0.2.1:");
    assert!(
        changes
            .iter()
            .any(|l| tuple(l) && l.contains("from=SYN-RECV") && l.contains("to=ESTAB")),
        "no SYN-RECV -> ESTAB of the echo connection in:\n{log}"
    );
    assert!(
        changes.iter().all(|l| l.contains("DEBUG berth::tcp")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("berth::drop") && l.contains("counter=tcp_no_socket")),
        "no drop event for the refused SYN in:\n{log}"
    );

    // The same client side without RUST_LOG: nothing on stderr.
    let ns = tun_ns("pcapquiet");
    let (_sink, _, sink_out) = py_proc(&ns, "python3", &["-c", PY_TCP_SINK, KERNEL, "5001"]);
    expect_line(&sink_out, "ready", Duration::from_secs(10));
    let mut c = ns.cmd(BERTH);
    c.args([
        "nc", "--tun", "tb0", "--addr", BERTH_CIDR, "-N", KERNEL, "5001",
    ])
    .env_remove("RUST_LOG");
    let o = run_with_input(c, b"quiet\n".to_vec(), Duration::from_secs(30));
    assert!(o.status.success(), "nc: {}", text(&o.stderr));
    expect_line(&sink_out, "6 ", Duration::from_secs(10));
    assert_eq!(text(&o.stderr), "", "stderr without RUST_LOG");
}
