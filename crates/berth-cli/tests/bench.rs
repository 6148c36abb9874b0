//! `berth bench --json`: every row present with positive figures. No timing
//! thresholds: a benchmark's numbers depend on the machine.

use std::process::{Command, Stdio};

#[test]
fn bench_json_has_every_row_with_positive_numbers() {
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "bench",
            "--bytes",
            "8m",
            "--rtt-count",
            "200",
            "--conns",
            "50",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth bench");
    let socket = std::env::temp_dir().join(format!("berth-bench-{}.sock", child.id()));
    let o = child.wait_with_output().expect("wait for berth bench");
    assert!(
        o.status.success(),
        "berth bench failed: {}",
        String::from_utf8_lossy(&o.stderr)
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
    for transport in ["berth", "kernel_tcp", "unix"] {
        for field in ["seconds", "gbit_per_sec", "ratio_to_kernel_tcp"] {
            assert!(
                num(&["bulk", transport, field]) > 0.0,
                "bulk {transport} {field}"
            );
        }
        assert_eq!(num(&["bulk", transport, "bytes"]), (8 << 20) as f64);
        for field in ["mean_us", "p50_us", "p99_us", "mean_ratio_to_kernel_tcp"] {
            assert!(
                num(&["rtt", transport, field]) > 0.0,
                "rtt {transport} {field}"
            );
        }
        assert!(num(&["rtt", transport, "p99_us"]) >= num(&["rtt", transport, "p50_us"]));
        assert_eq!(num(&["rtt", transport, "count"]), 200.0);
        for field in ["seconds", "per_sec", "ratio_to_kernel_tcp"] {
            assert!(
                num(&["conns", transport, field]) > 0.0,
                "conns {transport} {field}"
            );
        }
        assert_eq!(num(&["conns", transport, "count"]), 50.0);
    }
    assert_eq!(num(&["bulk", "kernel_tcp", "ratio_to_kernel_tcp"]), 1.0);
    assert_eq!(num(&["memory", "berth", "connections"]), 50.0);
    for field in [
        "rss_before",
        "rss_used",
        "bytes_per_conn",
        "bytes_per_socket",
    ] {
        assert!(num(&["memory", "berth", field]) > 0.0, "memory {field}");
    }
    // The Unix socket of the baseline is removed afterwards.
    assert!(!socket.exists(), "{} was left behind", socket.display());
}

#[test]
fn bench_rejects_zero_counts_with_a_message() {
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["bench", "--rtt-count", "0"])
        .output()
        .expect("run berth bench");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rtt-count"));
}
