//! `berth serve --dhcp` on a TAP in a network namespace this test creates,
//! against dnsmasq (Debian's) on the kernel side of the device: the lease
//! (address, gateway, DNS server) comes from dnsmasq, is renewed at the short
//! T1 dnsmasq sends (option 58), a name dnsmasq serves resolves through
//! berth's resolver, and the lease is released when berth stops. Kernel side
//! 192.0.2.1/24, leases from 192.0.2.50-60; nothing leaves the namespace.
//!
//! A second test puts a kernel host holding 192.0.2.50 on the link (a veth
//! in a second namespace, bridged with the TAP) and hands out only .50 and
//! .51: berth's ARP probe finds .50 taken, it DECLINEs it (RFC 2131 §4.4.1)
//! and gets .51 after the wait.
//!
//! Needs root, /dev/net/tun, `ip` and `dnsmasq`; without them it says why
//! and skips, except under CI, where it fails.

mod support_netns;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::Duration;
use support_netns::{expect_line, lines_of, skip, Netns, Proc, TmpDir, BERTH};

fn control(path: &Path, request: &str) -> serde_json::Value {
    let mut c = UnixStream::connect(path).expect("control socket");
    writeln!(c, "{request}").expect("write");
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).expect("read");
    serde_json::from_str(&line).expect("json")
}

/// dnsmasq in the foreground with nothing from the host's configuration
/// (no config file, resolv.conf or /etc/hosts), as root, without a pid file.
const DNSMASQ_BASE: &[&str] = &[
    "--no-daemon",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--user=root",
    "--pid-file=",
];

/// `berth serve --dhcp` on a new TAP bt0 in `ns`, with its stderr lines, once
/// its control socket is up.
fn serve_dhcp(ns: &Netns, ctl: &Path, extra: &[&str]) -> (Proc, Receiver<String>) {
    let mut berth = Proc::spawn({
        let mut c = ns.cmd(BERTH);
        c.args(["serve", "--tap", "bt0", "--create", "--dhcp", "--echo"])
            .args(extra)
            .arg("--control")
            .arg(ctl)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    });
    let err = lines_of(berth.child.stderr.take().expect("stderr"));
    expect_line(&err, "control", Duration::from_secs(20));
    (berth, err)
}

#[test]
fn serve_dhcp_lease_renewal_and_names_from_dnsmasq() {
    if skip(
        "serve_dhcp_lease_renewal_and_names_from_dnsmasq",
        &["dnsmasq"],
    ) {
        return;
    }
    let ns = Netns::new("dhcp");
    let dir = TmpDir::new("dhcp");
    let ctl = dir.path.join("control.sock");
    let (mut berth, berth_err) = serve_dhcp(&ns, &ctl, &[]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "bt0"]);
    ns.ip(&["link", "set", "bt0", "up"]);

    let leases = dir.path.join("leases");
    let mut dnsmasq = Proc::spawn({
        let mut c = ns.cmd("dnsmasq");
        c.args(DNSMASQ_BASE)
            .args([
                "--interface=bt0",
                "--bind-interfaces",
                "--no-ping",
                "--log-dhcp",
                "--log-facility=-",
                "--dhcp-range=192.0.2.50,192.0.2.60,2m",
                "--dhcp-option=option:router,192.0.2.1",
                "--dhcp-option=option:dns-server,192.0.2.1",
                // Renew after 10 s, rebind after 20 s (RFC 2132 options 58, 59).
                "--dhcp-option=option:T1,10",
                "--dhcp-option=option:T2,20",
                "--address=/test.example/192.0.2.1",
            ])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    });
    let dnsmasq_log = lines_of(dnsmasq.child.stderr.take().expect("stderr"));

    // DISCOVER … ACK: the lease line, with what dnsmasq hands out.
    let seen = expect_line(&berth_err, "berth: dhcp bound", Duration::from_secs(30));
    let bound = seen.last().expect("a line");
    assert!(
        bound.contains("192.0.2.5") || bound.contains("192.0.2.60"),
        "{bound}"
    );
    assert!(
        bound.contains("/24 router 192.0.2.1 dns 192.0.2.1 from 192.0.2.1"),
        "{bound}"
    );
    assert!(bound.contains("lease 120s renew 10s rebind 20s"), "{bound}");
    let lease = control(&ctl, r#"{"cmd":"lease"}"#);
    let addr = lease["lease"]["address"]
        .as_str()
        .expect("a lease")
        .to_string();
    let ip = addr.trim_end_matches("/24").to_string();
    assert!(ip.starts_with("192.0.2."), "{lease}");

    // The kernel reaches berth at the leased address.
    let ping = ns
        .cmd("ping")
        .args(["-c", "2", "-W", "2", &ip])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // A name only dnsmasq knows, through berth's resolver and the DNS server
    // the lease named.
    let r = control(&ctl, r#"{"cmd":"resolve","name":"test.example"}"#);
    assert_eq!(r["addresses"], serde_json::json!(["192.0.2.1"]), "{r}");
    let r = control(&ctl, r#"{"cmd":"resolve","name":"www.test.example"}"#);
    assert_eq!(r["addresses"], serde_json::json!(["192.0.2.1"]), "{r}");

    // Renewed at T1, about 10 s after the ACK.
    let seen = expect_line(&berth_err, "berth: dhcp renewed", Duration::from_secs(20));
    assert!(seen.last().is_some_and(|l| l.contains(&addr)), "{seen:?}");
    let lease = control(&ctl, r#"{"cmd":"lease"}"#);
    assert!(lease["lease"]["renewals"].as_u64() >= Some(1), "{lease}");

    // Stopping berth releases the lease.
    let status = berth.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = expect_line(&dnsmasq_log, "DHCPRELEASE", Duration::from_secs(10));
    assert!(log.iter().any(|l| l.contains("DHCPACK")), "{log:?}");
    drop(dnsmasq);
}

#[test]
fn serve_dhcp_declines_an_address_another_host_holds() {
    if skip(
        "serve_dhcp_declines_an_address_another_host_holds",
        &["dnsmasq"],
    ) {
        return;
    }
    let ns = Netns::new("dhcpd");
    // The other host: its own namespace, its kernel holding 192.0.2.50.
    let other = Netns::new("dhcpo");
    let dir = TmpDir::new("dhcpd");
    let (mut berth, berth_err) = serve_dhcp(
        &ns,
        &dir.path.join("control.sock"),
        &["--dhcp-decline-wait", "2"],
    );
    // One link: a bridge joining berth's TAP and a veth to the other host;
    // dnsmasq serves on the bridge.
    ns.ip(&["link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
    ns.ip(&["link", "set", "bt0", "master", "br0"]);
    ns.ip(&[
        "link",
        "add",
        "vd0",
        "type",
        "veth",
        "peer",
        "name",
        "vd1",
        "netns",
        &other.name,
    ]);
    ns.ip(&["link", "set", "vd0", "master", "br0"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "br0"]);
    for dev in ["bt0", "vd0", "br0"] {
        ns.ip(&["link", "set", dev, "up"]);
    }
    other.ip(&["addr", "add", "192.0.2.50/24", "dev", "vd1"]);
    other.ip(&["link", "set", "vd1", "up"]);
    let shown = other
        .cmd("ip")
        .args(["-br", "link", "show", "vd1"])
        .output()
        .expect("ip link show");
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let other_mac = shown
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no MAC in {shown:?}"))
        .to_string();

    let mut dnsmasq = Proc::spawn({
        let mut c = ns.cmd("dnsmasq");
        c.args(DNSMASQ_BASE)
            .args([
                "--interface=br0",
                "--bind-interfaces",
                "--port=0",
                // dnsmasq must not find the conflict itself (an ICMP echo):
                // berth's ARP probe is under test.
                "--no-ping",
                // .50 first (sequential, not hashed from the MAC), then .51.
                "--dhcp-sequential-ip",
                "--log-dhcp",
                "--log-facility=-",
                "--dhcp-range=192.0.2.50,192.0.2.51,2m",
                "--dhcp-option=option:router,192.0.2.1",
            ])
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.path.join("leases").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    });
    let dnsmasq_log = lines_of(dnsmasq.child.stderr.take().expect("stderr"));

    let seen = expect_line(&berth_err, "berth: dhcp declined", Duration::from_secs(30));
    let declined_at = std::time::Instant::now();
    let line = seen.last().expect("a line");
    assert!(
        line.contains("declined 192.0.2.50 from 192.0.2.1: in use by"),
        "{line}"
    );
    assert!(
        line.contains(&other_mac),
        "{line} (the other host is {other_mac})"
    );
    assert!(line.contains("asking again in 2s"), "{line}");
    assert!(
        !seen.iter().any(|l| l.contains("dhcp bound")),
        "bound before declining: {seen:?}"
    );
    let seen = expect_line(&berth_err, "berth: dhcp bound", Duration::from_secs(30));
    assert!(
        declined_at.elapsed() >= Duration::from_millis(1900),
        "asked again within the 2 s wait: {seen:?}"
    );
    let bound = seen.last().expect("a line");
    assert!(
        bound.contains("bound 192.0.2.51/24 router 192.0.2.1"),
        "{bound}"
    );
    let log = expect_line(
        &dnsmasq_log,
        "DHCPACK(br0) 192.0.2.51",
        Duration::from_secs(10),
    );
    assert!(
        log.iter()
            .any(|l| l.contains("DHCPDECLINE(br0) 192.0.2.50")),
        "{log:?}"
    );

    // The kernel next door reaches berth at its address, and still has its own.
    let ping = ns
        .cmd("ping")
        .args(["-c", "1", "-W", "2", "192.0.2.51"])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let status = berth.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    drop(dnsmasq);
}
