//! `berth impair` between two namespaces: the kernel's TCP, NS1 → NS2, through
//! 1 % loss and 1 % reordering, byte-exact. Needs root and /dev/net/tun; skips
//! (saying why) without them, unless CI is set.

mod support_netns;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;
use support_netns::*;

#[test]
fn kernel_tcp_through_impair_with_loss_and_reordering_is_byte_exact() {
    if skip("netns_impair", &["python3"]) {
        return;
    }
    let ns1 = Netns::new("imp1");
    let ns2 = Netns::new("imp2");
    ns1.tun("ta", Some("192.0.2.1/24"));
    ns2.tun("tb", Some("192.0.2.2/24"));

    let mut c = std::process::Command::new(BERTH);
    c.args([
        "impair",
        "--a",
        "ta",
        "--b",
        "tb",
        "--netns-a",
        &ns1.name,
        "--netns-b",
        &ns2.name,
        "--loss",
        "1%",
        "--reorder",
        "1%",
        "--delay",
        "1ms",
        "--seed",
        "7",
    ])
    .stdout(Stdio::piped());
    let mut impair = Proc::spawn(c);
    let imp_out = impair.lines();
    expect_line(&imp_out, "forwarding ta <-> tb", Duration::from_secs(10));

    let mut c = ns2.cmd("python3");
    c.args(["-c", PY_TCP_SINK, "192.0.2.2", "5001"])
        .stdout(Stdio::piped());
    let mut sink = Proc::spawn(c);
    let sink_out = sink.lines();
    expect_line(&sink_out, "ready", Duration::from_secs(10));

    let data = random_bytes(20 << 20, 42);
    let mut c = ns1.cmd("python3");
    c.args(["-c", PY_TCP_SOURCE, "192.0.2.2", "5001"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut source = Proc::spawn(c);
    let mut stdin = source.child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&data).map(|_| data));
    let src_out = source.lines();
    let data = writer.join().expect("writer").expect("write to source");
    expect_line(&src_out, "sent", Duration::from_secs(120));
    let got = expect_line(&sink_out, " ", Duration::from_secs(30));
    let last = got.last().cloned().unwrap_or_default();
    assert_eq!(
        last,
        format!("{} {}", data.len(), sha256_hex(&data)),
        "the bytes NS2 received differ from what NS1 sent"
    );

    let status = impair
        .terminate(Duration::from_secs(10))
        .expect("impair exits on SIGTERM");
    assert!(status.success(), "impair exit status {status:?}");
    let counters = rest(&imp_out, Duration::from_secs(5));
    eprintln!("{}", counters.join("\n"));
    let ab = counters
        .iter()
        .find(|l| l.starts_with("ta -> tb:"))
        .expect("ta -> tb counters");
    let field = |name: &str| -> u64 {
        ab.split(", ")
            .find_map(|f| f.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no '{name}' in {ab}"))
    };
    assert!(field("lost ") > 0, "1% loss over 20 MB lost nothing: {ab}");
    assert!(field("reordered ") > 0, "nothing reordered: {ab}");
    assert!(field("delivered ") > 10_000, "{ab}");
}

/// berth's TCP (`berth nc`) → the kernel's, through `berth impair` at 1 % loss
/// and 1 % reordering. NS2's kernel only routes: 192.0.2.1 via tb (the
/// forwarder), 192.0.2.2 via tc0 (berth's TUN).
#[test]
fn berth_tcp_to_kernel_through_impair_with_loss_and_reordering_is_byte_exact() {
    if skip("netns_impair_berth", &["python3"]) {
        return;
    }
    let ns1 = Netns::new("impk");
    let ns2 = Netns::new("impb");
    ns1.tun("ta", Some("192.0.2.1/24"));
    ns2.tun("tb", None);
    ns2.tun("tc0", None);
    ns2.ip(&["route", "add", "192.0.2.1/32", "dev", "tb"]);
    ns2.ip(&["route", "add", "192.0.2.2/32", "dev", "tc0"]);
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns2.name,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ],
    );

    let mut c = std::process::Command::new(BERTH);
    c.args([
        "impair",
        "--a",
        "ta",
        "--b",
        "tb",
        "--netns-a",
        &ns1.name,
        "--netns-b",
        &ns2.name,
        "--loss",
        "1%",
        "--reorder",
        "1%",
        "--delay",
        "1ms",
        "--seed",
        "3",
    ])
    .stdout(Stdio::piped());
    let mut impair = Proc::spawn(c);
    let imp_out = impair.lines();
    expect_line(&imp_out, "forwarding ta <-> tb", Duration::from_secs(10));

    let mut c = ns1.cmd("python3");
    c.args(["-c", PY_TCP_SINK, "192.0.2.1", "5001"])
        .stdout(Stdio::piped());
    let mut sink = Proc::spawn(c);
    let sink_out = sink.lines();
    expect_line(&sink_out, "ready", Duration::from_secs(10));

    let data = random_bytes(BERTH_BYTES, 11);
    let want = format!("{} {}", data.len(), sha256_hex(&data));
    let mut c = ns2.cmd(BERTH);
    c.args([
        "nc",
        "--tun",
        "tc0",
        "--addr",
        "192.0.2.2/24",
        "-N",
        "192.0.2.1",
        "5001",
    ])
    .stdin(Stdio::piped())
    .stderr(Stdio::piped());
    let mut nc = Proc::spawn(c);
    let mut stdin = nc.child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let status = nc
        .wait(Duration::from_secs(180))
        .expect("berth nc finishes within 180 s");
    assert!(status.success(), "berth nc: {status:?}");
    let got = expect_line(&sink_out, " ", Duration::from_secs(30));
    assert_eq!(
        got.last(),
        Some(&want),
        "the kernel received different bytes"
    );

    impair.terminate(Duration::from_secs(10));
    let counters = rest(&imp_out, Duration::from_secs(5));
    eprintln!("{}", counters.join("\n"));
    let ba = counters
        .iter()
        .find(|l| l.starts_with("tb -> ta:"))
        .expect("tb -> ta counters");
    assert!(!ba.contains(" lost 0,"), "1% loss lost nothing: {ba}");
}

/// Bytes berth sends through the impaired path.
const BERTH_BYTES: usize = 100 << 20;
