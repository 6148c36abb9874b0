//! `berth perf` against the real iperf3 (Debian's) in a network namespace the
//! test makes: a TUN device with the kernel on 192.0.2.1/24 and berth on
//! 192.0.2.2/24. Both ways round (berth client → `iperf3 -s`, `iperf3 -c` →
//! berth server), TCP and UDP, forward and -R, -P 2, and -J output parsed.
//! Needs root, /dev/net/tun and iperf3; skips (saying why) without them,
//! unless CI is set. The namespace (and so the device) is deleted on drop,
//! also when an assertion fails.

mod support_netns;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support_netns::*;

const DEV: &str = "tp0";
const KERNEL: &str = "192.0.2.1";
const BERTH_IP: &str = "192.0.2.2";
const BERTH_ADDR: &str = "192.0.2.2/24";

fn setup(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.tun(DEV, Some("192.0.2.1/24"));
    ns
}

/// `berth perf --tun DEV --addr 192.0.2.2/24 ARGS…` inside `ns`.
fn berth_perf(ns: &Netns, args: &[&str]) -> Command {
    let mut c = ns.cmd(BERTH);
    c.args(["perf", "--tun", DEV, "--addr", BERTH_ADDR])
        .args(args);
    c
}

/// Run to the end (bounded); stdout as text, asserting success.
fn ok_output(c: Command, what: &str) -> String {
    let o = run_with_input(c, Vec::new(), Duration::from_secs(60));
    let out = text(&o.stdout);
    assert!(
        o.status.success(),
        "{what} failed: {:?}\nstdout:\n{out}\nstderr:\n{}",
        o.status,
        text(&o.stderr)
    );
    out
}

fn json_of(out: &str, what: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{out}"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for k in path {
        cur = cur.get(k).unwrap_or_else(|| {
            panic!(
                "no {path:?} in {}",
                serde_json::to_string_pretty(v).unwrap_or_default()
            )
        });
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number: {cur}"))
}

/// The keys iperf3 consumers read, present and sensible, from either end.
fn check_document(v: &Value, streams: usize, udp: bool, what: &str) {
    assert!(v.get("error").is_none(), "{what}: error in {v}");
    let start = &v["start"];
    assert_eq!(
        start["connected"].as_array().map(Vec::len),
        Some(streams),
        "{what}: start.connected"
    );
    assert_eq!(
        num(start, &["test_start", "num_streams"]) as usize,
        streams,
        "{what}"
    );
    let proto = start["test_start"]["protocol"].as_str();
    assert_eq!(proto, Some(if udp { "UDP" } else { "TCP" }), "{what}");
    let intervals = v["intervals"].as_array().expect("intervals");
    assert!(!intervals.is_empty(), "{what}: no intervals");
    assert!(
        intervals.iter().any(|i| num(i, &["sum", "bytes"]) > 0.0),
        "{what}: no bytes in any interval"
    );
    let end = &v["end"];
    assert_eq!(
        end["streams"].as_array().map(Vec::len),
        Some(streams),
        "{what}"
    );
    assert!(num(end, &["sum_sent", "bytes"]) > 0.0, "{what}: sum_sent");
    assert!(
        num(end, &["sum_received", "bytes"]) > 0.0,
        "{what}: sum_received"
    );
    assert!(num(end, &["sum_sent", "bits_per_second"]) > 0.0, "{what}");
    assert!(num(end, &["sum_received", "seconds"]) > 0.0, "{what}");
    num(end, &["cpu_utilization_percent", "host_total"]);
    num(end, &["cpu_utilization_percent", "remote_total"]);
    if udp {
        num(end, &["sum", "lost_percent"]);
        num(end, &["sum", "jitter_ms"]);
        assert!(num(&end["streams"][0], &["udp", "packets"]) > 0.0, "{what}");
    } else {
        assert!(
            num(&end["streams"][0], &["sender", "bytes"]) > 0.0,
            "{what}"
        );
        assert!(
            num(&end["streams"][0], &["receiver", "bytes"]) > 0.0,
            "{what}"
        );
        assert!(
            end["sender_tcp_congestion"].is_string(),
            "{what}: sender_tcp_congestion"
        );
    }
}

#[test]
fn berth_perf_client_against_kernel_iperf3_server() {
    if skip(
        "berth_perf_client_against_kernel_iperf3_server",
        &["iperf3"],
    ) {
        return;
    }
    let _one = serial();
    let ns = setup("perfc");
    let mut s = ns.cmd("iperf3");
    s.args(["-s", "-B", KERNEL, "--forceflush"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Proc::spawn(s);
    let lines = server.lines();
    expect_line(&lines, "Server listening on 5201", Duration::from_secs(10));

    // Text output, as iperf3 prints it.
    let out = ok_output(berth_perf(&ns, &["-c", KERNEL, "-t", "1"]), "berth perf -c");
    assert!(
        out.starts_with("Connecting to host 192.0.2.1, port 5201"),
        "{out}"
    );
    assert!(out.contains("connected to 192.0.2.1 port 5201"), "{out}");
    assert!(
        out.contains("[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("[  5]") && l.ends_with("sender")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("[  5]") && l.ends_with("receiver")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("iperf Done."), "{out}");

    for (args, streams, udp) in [
        (&["-t", "1", "-J"][..], 1, false),
        (&["-t", "1", "-J", "-R"][..], 1, false),
        (&["-t", "1", "-J", "-P", "2"][..], 2, false),
        (&["-t", "1", "-J", "-u", "-b", "20M"][..], 1, true),
        (&["-t", "1", "-J", "-u", "-b", "20M", "-R"][..], 1, true),
    ] {
        let what = format!("berth perf -c {KERNEL} {}", args.join(" "));
        let mut a = vec!["-c", KERNEL];
        a.extend_from_slice(args);
        let v = json_of(&ok_output(berth_perf(&ns, &a), &what), &what);
        check_document(&v, streams, udp, &what);
        // The kernel said what it received (forward) or sent (-R): it is in
        // our summary, so the results exchange worked.
        let peer_side = if args.contains(&"-R") {
            "sum_sent"
        } else {
            "sum_received"
        };
        assert!(num(&v["end"], &[peer_side, "bytes"]) > 0.0, "{what}");
    }
    // -n: a byte count instead of a time.
    let v = json_of(
        &ok_output(berth_perf(&ns, &["-c", KERNEL, "-n", "2M", "-J"]), "-n 2M"),
        "-n 2M",
    );
    assert!(
        num(&v["end"], &["sum_sent", "bytes"]) >= (2 << 20) as f64,
        "{v}"
    );
}

#[test]
fn kernel_iperf3_client_against_berth_perf_server() {
    if skip(
        "kernel_iperf3_client_against_berth_perf_server",
        &["iperf3"],
    ) {
        return;
    }
    let _one = serial();
    let ns = setup("perfs");
    let mut s = berth_perf(&ns, &["-s"]);
    s.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut server = Proc::spawn(s);
    let lines = server.lines();
    expect_line(
        &lines,
        "Server listening on 5201 (test #1)",
        Duration::from_secs(10),
    );

    for (args, streams, udp) in [
        (&["-t", "1"][..], 1, false),
        (&["-t", "1", "-R"][..], 1, false),
        (&["-t", "1", "-P", "2"][..], 2, false),
        (&["-t", "1", "-u", "-b", "20M"][..], 1, true),
        (
            &["-t", "1", "-u", "-b", "20M", "-R", "-P", "2"][..],
            2,
            true,
        ),
    ] {
        let what = format!("iperf3 -c {BERTH_IP} {}", args.join(" "));
        let mut c = ns.cmd("iperf3");
        c.args(["-c", BERTH_IP, "-J"]).args(args);
        let v = json_of(&ok_output(c, &what), &what);
        // iperf3's own document: the berth server's results reached it.
        check_document(&v, streams, udp, &what);
    }
    // The server's text for a test: what it received, as iperf3 -s prints it.
    let mut c = ns.cmd("iperf3");
    c.args(["-c", BERTH_IP, "-t", "1"]);
    ok_output(c, "iperf3 -c (text)");
    let seen = expect_line(&lines, "receiver", Duration::from_secs(10));
    let seen = seen.join("\n");
    assert!(
        seen.contains("Accepted connection from 192.0.2.1, port "),
        "{seen}"
    );
    assert!(
        seen.contains("[  5] local 192.0.2.2 port 5201 connected to 192.0.2.1 port "),
        "{seen}"
    );
    assert!(
        seen.contains("[ ID] Interval           Transfer     Bitrate"),
        "{seen}"
    );
    expect_line(&lines, "Server listening on 5201", Duration::from_secs(10));

    // A second client while a test runs is turned away (ACCESS_DENIED).
    let mut long = ns.cmd("iperf3");
    long.args(["-c", BERTH_IP, "-t", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut first = Proc::spawn(long);
    std::thread::sleep(Duration::from_millis(1000));
    let mut c = ns.cmd("iperf3");
    c.args(["-c", BERTH_IP, "-t", "1"]);
    let o = run_with_input(c, Vec::new(), Duration::from_secs(30));
    assert!(!o.status.success(), "a second client got through");
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(said.contains("the server is busy running a test"), "{said}");
    let st = first
        .wait(Duration::from_secs(20))
        .expect("first client ends");
    assert!(st.success(), "the first client failed: {st:?}");
    server.terminate(Duration::from_secs(5));
}
