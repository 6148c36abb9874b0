//! `berth bench --loss --duration 2s --loss-rates 1% --json`: a kernel TCP
//! client and berth each send through `berth impair` (1 % loss, 20 ms each
//! way) to a kernel receiver, in namespaces the bench makes and removes. Checks
//! that both goodputs are positive, the ratio is theirs, the congestion
//! controls are named, and nothing is left behind. No timing thresholds. Needs
//! root and /dev/net/tun; skips (saying why) without them, unless CI is set.

mod support_netns;

use std::process::{Command, Stdio};
use support_netns::*;

fn leftover_namespaces(pid: u32) -> Vec<String> {
    let o = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("berth-bench-") && l.contains(&format!("-{pid}")))
        .map(str::to_string)
        .collect()
}

#[test]
fn bench_loss_json_has_both_goodputs_and_a_ratio() {
    if skip("bench_loss", &[]) {
        return;
    }
    let child = Command::new(BERTH)
        .args([
            "bench",
            "--loss",
            "--duration",
            "2s",
            "--loss-rates",
            "1%",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth bench --loss");
    let pid = child.id();
    let o = child.wait_with_output().expect("wait for berth bench");
    assert!(
        o.status.success(),
        "berth bench --loss failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        leftover_namespaces(pid),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    for dev in ["blimps", "blimpr", "blberth"] {
        let here = Command::new("ip")
            .args(["link", "show", dev])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ip link show");
        assert!(!here.success(), "device {dev} outlived its namespace");
    }
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    eprintln!("{v}");
    let runs = v["loss"]["runs"].as_array().expect("loss.runs is an array");
    assert_eq!(runs.len(), 1, "one loss rate, one entry: {v}");
    let r = &runs[0];
    assert_eq!(r["loss"].as_f64(), Some(0.01));
    let num = |who: &str, field: &str| -> f64 {
        r[who][field]
            .as_f64()
            .unwrap_or_else(|| panic!("{who}.{field} is not a number: {r}"))
    };
    for who in ["kernel_tcp", "berth"] {
        assert!(num(who, "mbit_per_sec") > 0.0, "{who} goodput: {r}");
        assert!(num(who, "bytes") > 0.0, "{who} bytes: {r}");
        assert!(num(who, "seconds") >= 2.0, "{who} window: {r}");
        assert!(
            r[who]["impair"]["data"]["delivered"].as_u64() > Some(0),
            "{who}: the forwarder carried no data: {r}"
        );
    }
    let ratio = num("berth", "ratio_to_kernel_tcp");
    let expect = num("berth", "mbit_per_sec") / num("kernel_tcp", "mbit_per_sec");
    assert!(
        ratio > 0.0 && (ratio - expect).abs() < 1e-9,
        "{ratio} vs {expect}"
    );
    for key in ["kernel_congestion", "berth_congestion"] {
        let cc = v["loss"][key].as_str().unwrap_or_default();
        assert!(!cc.is_empty(), "{key} missing: {v}");
    }
    // --loss alone: the loopback and TUN rows are not there.
    for key in ["bulk", "rtt", "conns", "memory", "tun"] {
        assert!(v.get(key).is_none(), "{key} present with --loss");
    }
}

#[test]
fn loss_flags_need_loss_and_exclude_the_other_rows() {
    let o = Command::new(BERTH)
        .args(["bench", "--loss-rates", "1%"])
        .output()
        .expect("run berth bench");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--loss"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(BERTH)
        .args(["bench", "--loss", "--tun"])
        .output()
        .expect("run berth bench");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
