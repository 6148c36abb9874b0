//! `berth bench --tun-only --json`: both TUN rows (kernel → TUN → berth, and
//! kernel → TUN → forwarder → TUN → kernel, each in namespaces the bench makes
//! and removes) present with positive figures, and no namespace left behind.
//! No timing thresholds. Needs root and /dev/net/tun; skips (saying why)
//! without them, unless CI is set. Also: without root, `--tun` fails clearly.

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
fn bench_tun_json_has_both_rows_with_positive_numbers() {
    if skip("bench_tun", &[]) {
        return;
    }
    let child = Command::new(BERTH)
        .args(["bench", "--tun-only", "--bytes", "20m", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth bench");
    let pid = child.id();
    let o = child.wait_with_output().expect("wait for berth bench");
    assert!(
        o.status.success(),
        "berth bench --tun-only failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        leftover_namespaces(pid),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    let num = |path: &[&str]| -> f64 {
        let mut x = &v;
        for p in path {
            x = x
                .get(p)
                .unwrap_or_else(|| panic!("missing {path:?} in {v}"));
        }
        x.as_f64()
            .unwrap_or_else(|| panic!("{path:?} is not a number: {x}"))
    };
    for row in ["berth", "kernel_tcp"] {
        for field in ["seconds", "gbit_per_sec", "ratio_to_kernel_tcp"] {
            assert!(
                num(&["tun", "bulk", row, field]) > 0.0,
                "tun bulk {row} {field}"
            );
        }
        assert_eq!(num(&["tun", "bulk", row, "bytes"]), (20 << 20) as f64);
    }
    assert_eq!(
        num(&["tun", "bulk", "kernel_tcp", "ratio_to_kernel_tcp"]),
        1.0
    );
    let ratio = num(&["tun", "bulk", "berth", "ratio_to_kernel_tcp"]);
    let expect = num(&["tun", "bulk", "berth", "gbit_per_sec"])
        / num(&["tun", "bulk", "kernel_tcp", "gbit_per_sec"]);
    assert!((ratio - expect).abs() < 1e-9, "{ratio} vs {expect}");
    assert!(num(&["tun", "mtu"]) >= 68.0);
    assert!(num(&["tun", "forwarded_packets"]) > 0.0);
    // --tun-only: the loopback rows are not there.
    for key in ["bulk", "rtt", "conns", "memory"] {
        assert!(v.get(key).is_none(), "{key} present with --tun-only");
    }
    assert_eq!(v["config"]["tun"], serde_json::Value::Bool(true));
}

#[test]
fn bench_tun_without_root_fails_with_a_clear_error() {
    if skip("bench_tun (non-root)", &["setpriv"]) {
        return;
    }
    // A copy nobody can run, wherever the checkout lives.
    let dir = std::env::temp_dir().join(format!("berth-bench-tun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("berth");
    std::fs::copy(BERTH, &bin).expect("copy berth");
    run(
        "chmod",
        &["755", dir.to_str().unwrap(), bin.to_str().unwrap()],
    );
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["bench", "--tun", "--bytes", "1m", "--json"])
        .output()
        .expect("run setpriv");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "--tun succeeded without root");
    assert!(o.stdout.is_empty(), "printed results without root");
    assert!(err.contains("--tun needs root"), "unclear error: {err}");
}
