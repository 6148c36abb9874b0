//! The `berth` binary: output shape, determinism, and clear errors for bad flags.

use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn sim_ping_prints_iputils_lines_summary_and_sockets() {
    let o = berth(&[
        "sim", "ping", "-c", "5", "--delay", "20ms", "--jitter", "5ms", "--medium", "ip",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.starts_with("PING 192.0.2.2 (192.0.2.2) 56(84) bytes of data.\n"));
    assert_eq!(out.matches("64 bytes from 192.0.2.2: icmp_seq=").count(), 5);
    assert!(out.contains("--- 192.0.2.2 ping statistics ---"));
    assert!(out.contains("5 packets transmitted, 5 received, 0% packet loss"));
    let rtt = out
        .lines()
        .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
        .expect("rtt line");
    let v: Vec<f64> = rtt
        .trim_end_matches(" ms")
        .split('/')
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(v[0] >= 40.0 && v[2] <= 50.0, "{rtt}");
    // Socket table in ss layout, and counters.
    assert!(out.contains("Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port"));
    assert!(out.contains("raw   UNCONN"));
    assert!(out.contains("icmp_out_echo_reps"));
}

#[test]
fn sim_ping_reports_loss() {
    let o = berth(&["sim", "ping", "-c", "50", "-i", "10ms", "--loss", "30%"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap();
    assert!(line.starts_with("50 packets transmitted"));
    assert!(!line.contains(" 0% packet loss"), "{line}");
}

#[test]
fn sim_udp_echo_and_blast() {
    let o = berth(&[
        "sim",
        "udp",
        "--count",
        "2000",
        "--pps",
        "10000",
        "--loss",
        "1%",
        "--dup",
        "1%",
        "--reorder",
        "2%",
        "--delay",
        "5ms",
        "--rate",
        "100mbit",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let line = out.lines().find(|l| l.starts_with("sent 2000,")).unwrap();
    assert!(line.contains("duplicated") && line.contains("reordered"));
    assert!(out.contains("goodput "));
    assert!(out.contains("udp   UNCONN"));
    assert!(out.contains("udp   ESTAB"));
    let o = berth(&[
        "sim", "udp", "--mode", "blast", "--bytes", "1m", "--size", "1400",
    ]);
    assert!(o.status.success());
    let out = stdout(&o);
    // 1 MiB in 1400-byte datagrams: 749 datagrams, all delivered on a clean link.
    assert!(out.contains("sent 749, received 749, lost 0"), "{out}");
    assert!(out.contains("one-way delay"));
}

#[test]
fn same_seed_same_output() {
    let args = [
        "sim", "udp", "--count", "500", "--loss", "5%", "--jitter", "3ms", "--seed", "99",
    ];
    let a = stdout(&berth(&args));
    let b = stdout(&berth(&args));
    assert_eq!(a, b);
    let mut other = args;
    other[8] = "100";
    assert_ne!(a, stdout(&berth(&other)));
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    for (args, needle) in [
        (&["sim", "ping", "--loss", "lots"][..], "e.g. 1%"),
        (&["sim", "ping", "--loss", "150%"][..], "outside 0%..100%"),
        (&["sim", "ping", "--delay", "20"][..], "e.g. 20ms"),
        (
            &["sim", "udp", "--rate", "10furlongs"][..],
            "unknown rate unit",
        ),
        (&["sim", "ping", "--mtu", "20"][..], "68"),
        (&["sim", "udp", "--size", "8"][..], "16"),
        (&["sim", "frobnicate"][..], "unrecognized subcommand"),
    ] {
        let o = berth(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn unwritable_pcap_path_is_explained() {
    let o = berth(&[
        "sim",
        "ping",
        "-c",
        "1",
        "--pcap",
        "/nonexistent-dir/x.pcap",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot write capture /nonexistent-dir/x.pcap"),
        "{err}"
    );
}

#[test]
fn bad_memory_limits_fail_with_a_clear_message() {
    for (v, want) in [
        ("3,2,1", "0 < low <= pressure <= high"),
        ("1,2", "LOW,PRESSURE,HIGH"),
        ("1,x,3", "'x'"),
    ] {
        for flag in ["--tcp-mem", "--udp-mem"] {
            let o = berth(&[
                "serve",
                "--tun",
                "nosuch0",
                "--addr",
                "192.0.2.2/24",
                flag,
                v,
            ]);
            assert!(!o.status.success(), "{flag} {v} should fail");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(flag) && err.contains(want),
                "{flag} {v}: {err}"
            );
        }
    }
}

/// A README block whose first line is `$ berth sim …`: the command, and the
/// lines shown after it; `partial` when the last one is `…` (the rest left out).
struct Sample {
    args: Vec<String>,
    lines: Vec<String>,
    partial: bool,
}

fn readme_samples(readme: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        if !l.starts_with("```") {
            continue;
        }
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let Some(cmd) = block.first().and_then(|f| f.strip_prefix("$ berth sim ")) else {
            continue;
        };
        let mut shown: Vec<String> = block[1..].iter().map(|l| l.to_string()).collect();
        let partial = shown.last().is_some_and(|l| l == "…");
        if partial {
            shown.pop();
        }
        samples.push(Sample {
            args: std::iter::once("sim")
                .chain(cmd.split_whitespace())
                .map(str::to_string)
                .collect(),
            lines: shown,
            partial,
        });
    }
    samples
}

/// The simulator is deterministic, so the README's sample outputs of
/// `berth sim` are exactly what the commands print: every line shown, in
/// order from the first, and nothing more unless the block ends in `…`.
#[test]
fn readme_samples_are_what_the_commands_print() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let samples = readme_samples(&readme);
    assert!(
        samples.len() >= 3,
        "the README has {} `$ berth sim` samples; expected the ping, transfer and echo ones",
        samples.len()
    );
    for s in &samples {
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        let o = berth(&args);
        let cmd = format!("berth {}", args.join(" "));
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = stdout(&o);
        let got: Vec<&str> = out.lines().collect();
        let n = if s.partial { s.lines.len() } else { got.len() };
        let want: Vec<&str> = s.lines.iter().map(String::as_str).collect();
        assert_eq!(
            got.get(..n).unwrap_or(&got),
            &want[..],
            "README.md's sample of `{cmd}` is stale; it now prints:\n{out}"
        );
    }
}
