//! Without privileges: `berth sim transfer`'s iperf3-style flags (-i interval
//! lines in virtual time, -R, -t, --json; deterministic, so two runs print the
//! same), the summary on Ctrl-C of `sim transfer` and `bench`, and `berth perf
//! --sim` (both ends of iperf3's protocol in one process).

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn berth(args: &[&str]) -> Output {
    Command::new(BERTH).args(args).output().expect("run berth")
}

fn ok(args: &[&str]) -> String {
    let o = berth(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "berth {args:?}: {:?}\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for k in path {
        cur = &cur[k];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn sim_transfer_interval_lines_in_virtual_time_are_deterministic() {
    let args = [
        "sim", "transfer", "--bytes", "1m", "--rate", "10mbit", "--delay", "5ms", "-i", "200ms",
        "--conns", "2",
    ];
    let out = ok(&args);
    assert!(
        out.contains("[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"),
        "{out}"
    );
    let first: Vec<&str> = out.lines().filter(|l| l.starts_with("[  1]")).collect();
    // 2 MiB at 10 Mbit/s: about 1.7 s of virtual time, in 200 ms intervals.
    assert!(first.len() >= 8, "{out}");
    assert!(first[0].starts_with("[  1]   0.00-0.20   sec"), "{out}");
    assert!(first[1].starts_with("[  1]   0.20-0.40   sec"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("[SUM]   0.20-0.40   sec")),
        "{out}"
    );
    assert!(
        out.contains("SHA-256 verified end to end for 2/2 connections"),
        "{out}"
    );
    assert_eq!(ok(&args), out, "the same seed prints the same run");
}

#[test]
fn sim_transfer_reverse_and_time() {
    let out = ok(&["sim", "transfer", "-R", "-t", "500ms", "--rate", "10mbit"]);
    assert!(
        out.starts_with(
            "TCP transfer 192.0.2.1 <- 192.0.2.2:5201: 1 connection x 500ms of virtual time"
        ),
        "{out}"
    );
    assert!(out.contains("(reverse: B sends)"), "{out}");
    assert!(
        out.contains("SHA-256 verified end to end for 1/1 connections"),
        "{out}"
    );
    // 500 ms at 10 Mbit/s is 625 kB; the sender finishes what it has queued.
    let got: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("received "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a received line");
    assert!((400_000..4_000_000).contains(&got), "{got}: {out}");
    assert!(berth(&["sim", "transfer", "-R", "--plot", "/tmp/x.svg"])
        .status
        .code()
        .is_some_and(|c| c != 0));
}

#[test]
fn sim_transfer_json_has_iperf3_structure() {
    let out = ok(&[
        "sim", "transfer", "--json", "-R", "-t", "300ms", "-i", "100ms", "--rate", "20mbit",
        "--conns", "2",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(num(&v, &["start", "test_start", "reverse"]), 1.0);
    assert_eq!(num(&v, &["start", "test_start", "num_streams"]), 2.0);
    let iv = v["intervals"].as_array().expect("intervals");
    assert!(iv.len() >= 3, "{out}");
    assert_eq!(num(&iv[0], &["sum", "end"]), 0.1);
    assert_eq!(iv[0]["streams"].as_array().map(Vec::len), Some(2));
    assert!(num(&v, &["end", "sum_received", "bytes"]) > 0.0);
    assert_eq!(
        num(&v, &["end", "sum_received", "bytes"]),
        num(&v, &["end", "sum_sent", "bytes"])
    );
    assert_eq!(v["end"]["verified"], Value::Bool(true));
    assert_eq!(v["end"]["streams"][1]["verified"], Value::Bool(true));
}

/// Start `berth ARGS`, wait `after`, send SIGINT, collect the output.
fn interrupt_after(args: &[&str], after: Duration) -> Output {
    let child = Command::new(BERTH)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    std::thread::sleep(after);
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(st.success());
    let start = Instant::now();
    let o = child.wait_with_output().expect("berth ends");
    assert!(start.elapsed() < Duration::from_secs(60), "slow to stop");
    o
}

#[test]
fn sim_transfer_prints_its_summary_on_ctrl_c() {
    let o = interrupt_after(
        &[
            "sim", "transfer", "--bytes", "100g", "--rate", "1gbit", "-i", "1s",
        ],
        Duration::from_millis(1500),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("FAILED: interrupted"), "{out}");
    assert!(
        out.contains("SHA-256 verified end to end for 0/1 connections"),
        "{out}"
    );
    assert!(out.contains("host A (192.0.2.1) sockets:"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
}

#[test]
fn bench_prints_the_measurements_so_far_on_ctrl_c() {
    let o = interrupt_after(
        &[
            "bench",
            "--bytes",
            "64g",
            "--conns",
            "20",
            "--rtt-count",
            "100",
        ],
        Duration::from_millis(2500),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("memory / idle conn (berth)"), "{out}");
    assert!(
        !out.contains("bulk throughput"),
        "the cut bulk test is not shown: {out}"
    );
    assert!(
        out.contains("interrupted: the measurements above are the ones that ran"),
        "{out}"
    );
}

#[test]
fn perf_sim_speaks_iperf3_between_two_berth_hosts() {
    let out = ok(&["perf", "--sim", "-c", "192.0.2.2", "-t", "1"]);
    assert!(
        out.starts_with("Connecting to host 192.0.2.2, port 5201"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("[  5]") && l.ends_with("sender")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("iperf Done."), "{out}");
    for args in [
        &["-t", "1", "-R", "-P", "2"][..],
        &["-t", "1", "-u", "-b", "5M", "-R"][..],
        &["-n", "1M", "-C", "reno", "-N", "-M", "1200", "-w", "512K"][..],
    ] {
        let mut a = vec!["perf", "--sim", "-c", "192.0.2.2", "-J"];
        a.extend_from_slice(args);
        let out = ok(&a);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert!(v.get("error").is_none(), "{out}");
        assert!(
            num(&v, &["end", "sum_sent", "bytes"]) > 0.0,
            "{args:?}: {out}"
        );
        assert!(
            num(&v, &["end", "sum_received", "bytes"]) > 0.0,
            "{args:?}: {out}"
        );
        if args.contains(&"reno") {
            assert_eq!(v["end"]["sender_tcp_congestion"], "reno", "{out}");
            assert_eq!(num(&v, &["start", "tcp_mss"]), 1200.0);
        }
    }
    // Errors are worded as iperf3's, saying what to give instead.
    let o = berth(&["perf", "--sim", "-c", "192.0.2.3", "-t", "1"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("berth perf: error - with --sim the server is 192.0.2.2"),
        "{err}"
    );
}
