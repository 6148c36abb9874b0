//! `berth sim soak`, the short CI variant: eight hosts for 90 s of simulated time
//! with frequent link flaps and host restarts. Every check of the summary must
//! hold, and the faults must have bitten: some connections completed, some
//! failed with an error because a peer rebooted or its link was down.

use serde_json::Value;
use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth")
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {v}"))
}

#[test]
fn short_soak_passes_every_check_with_faults() {
    let o = berth(&[
        "sim",
        "soak",
        "--json",
        "--hosts",
        "8",
        "--duration",
        "90s",
        "--flap-every",
        "4s",
        "--restart-every",
        "5s",
        "--conns",
        "12",
        "--max-bytes",
        "64k",
        "--seed",
        "3",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON summary");
    assert_eq!(v["passed"], Value::Bool(true), "{v}");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["tcp"]["stuck"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["tcp"]["corrupt"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(n(&v, "/udp/corrupt"), 0);

    // The faults happened and some connections died of them …
    assert!(n(&v, "/faults/flaps") >= 5, "{v}");
    assert!(n(&v, "/faults/restarts") >= 4, "{v}");
    assert!(n(&v, "/links/down_drops") > 0, "{v}");
    let by_reason = &v["tcp"]["failed_by_reason"];
    let peer_errors: u64 = ["reset", "refused", "timeout"]
        .iter()
        .filter_map(|r| by_reason[*r].as_u64())
        .sum();
    assert!(peer_errors > 0, "no connection failed for its peer: {v}");
    // … while the rest completed, byte-exact, through loss, duplication and reordering.
    let opened = n(&v, "/tcp/opened");
    let completed = n(&v, "/tcp/completed");
    assert!(completed > opened / 2, "{v}");
    assert!(n(&v, "/tcp/closed_early") > 0, "{v}");
    assert_eq!(
        completed + n(&v, "/tcp/closed_early") + n(&v, "/tcp/failed"),
        opened,
        "every connection ended: {v}"
    );
    assert!(n(&v, "/tcp/bytes_verified") > 0);
    assert!(
        n(&v, "/links/lost") > 0 && n(&v, "/links/duplicated") > 0 && n(&v, "/links/reordered") > 0
    );
    assert!(
        n(&v, "/udp/answered") > 0 && n(&v, "/ping/answered") > 0,
        "{v}"
    );

    // Memory back at its start on every host, restarted or not.
    let memory = v["memory"].as_array().expect("memory rows");
    assert_eq!(memory.len(), 8);
    for m in memory {
        assert_eq!(m["start"], m["end"], "{m}");
    }
}

#[test]
fn text_summary_and_bad_flags() {
    let o = berth(&[
        "sim",
        "soak",
        "--hosts",
        "3",
        "--duration",
        "5s",
        "--conns",
        "4",
        "--max-bytes",
        "8k",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with("berth sim soak: 3 hosts on one switch, 5s of simulated time, seed 1\n"),
        "{out}"
    );
    assert!(out.contains("\nresult: PASS"), "{out}");
    assert!(out.contains(" s wall"), "{out}");

    let o = berth(&["sim", "soak", "--flap-down", "0"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--flap-every 0"));
    let o = berth(&["sim", "soak", "--hosts", "1"]);
    assert!(!o.status.success());
}
