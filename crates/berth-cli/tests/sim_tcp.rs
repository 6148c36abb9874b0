//! `berth sim transfer` and `berth sim echo`: verified transfers, backlog overflow
//! and recovery, and clear errors for bad flags.

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

/// The number after `key` in `line`, e.g. `listen overflows 12`.
fn number_after(line: &str, key: &str) -> u64 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("number after {key} in {line}"))
}

#[test]
fn transfer_over_lossy_link_verifies_every_connection() {
    let o = berth(&[
        "sim",
        "transfer",
        "--bytes",
        "2m",
        "--conns",
        "4",
        "--loss",
        "1%",
        "--delay",
        "5ms",
        "--backlog",
        "2",
    ]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with(
        "TCP transfer 192.0.2.1 -> 192.0.2.2:5201: 4 connections x 2097152 bytes, backlog 2\n"
    ));
    assert_eq!(out.matches("  ok ").count(), 4, "{out}");
    assert!(out.contains("SHA-256 verified end to end for 4/4 connections"));
    let total = out
        .lines()
        .find(|l| l.starts_with("received 8388608 bytes in "))
        .expect("totals line");
    // 1 % loss each way over 8 MiB: some segments must have been resent.
    assert!(number_after(total, "Mbit/s,") > 0, "{total}");
    // The socket table: B's listener, and A's connections with their tcp_info.
    assert!(out.contains("tcp   LISTEN"));
    assert_eq!(out.matches("bytes_acked:2097152 ").count(), 4, "{out}");
    // iproute2 order: ts, sack (negotiated here), congestion control, wscale.
    assert!(out.contains("\t ts sack cubic wscale:"));
    assert!(out.contains(" retrans:"));
}

#[test]
fn transfer_is_deterministic() {
    let args = [
        "sim", "transfer", "--bytes", "300k", "--conns", "2", "--loss", "2%", "--jitter", "2ms",
        "--seed", "11",
    ];
    let a = berth(&args);
    assert!(a.status.success());
    assert_eq!(stdout(&a), stdout(&berth(&args)));
}

#[test]
fn transfer_that_cannot_finish_fails() {
    let o = berth(&[
        "sim",
        "transfer",
        "--bytes",
        "1m",
        "--delay",
        "50ms",
        "--time-limit",
        "20ms",
    ]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("FAILED: time limit reached"), "{out}");
    assert!(out.contains("SHA-256 verified end to end for 0/1 connections"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 of 1 connections failed verification"),
        "{err}"
    );
    assert!(err.contains("--time-limit"), "{err}");
}

#[test]
fn transfer_with_large_buffers_fills_a_fast_link() {
    // 10 Gbit/s, 1 ms RTT: the bandwidth-delay product is 1.25 MB, so 2 MiB
    // buffers keep the pipe full where a fixed 256 KiB one cannot.
    let run = |extra: &[&str]| {
        let mut args = vec![
            "sim", "transfer", "--bytes", "20m", "--rate", "10gbit", "--delay", "500us",
        ];
        args.extend_from_slice(extra);
        let o = berth(&args);
        assert!(o.status.success());
        let out = stdout(&o);
        let line = out
            .lines()
            .find(|l| l.starts_with("received "))
            .expect("totals")
            .to_string();
        let gbit: f64 = line
            .split("goodput ")
            .nth(1)
            .and_then(|r| r.split(" Gbit/s").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        gbit
    };
    // A fixed 256 KiB buffer (SO_RCVBUF locks it) caps the window; the
    // default buffers autotune past it, as do 2 MiB ones.
    let small = run(&["--rcvbuf", "256k", "--sndbuf", "256k"]);
    let auto = run(&[]);
    let large = run(&["--rcvbuf", "2m", "--sndbuf", "2m"]);
    assert!(small < 3.0, "256 KiB window over 1 ms: {small}");
    assert!(auto > 1.5 * small, "autotuned: {small} -> {auto}");
    assert!(large > 2.0 * small, "{small} -> {large}");
}

#[test]
fn echo_through_a_small_backlog_overflows_and_recovers() {
    let o = berth(&[
        "sim",
        "echo",
        "--conns",
        "400",
        "--concurrency",
        "100",
        "--backlog",
        "4",
        "--delay",
        "1ms",
    ]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("completed 400, failed 0, unfinished 0"),
        "{out}"
    );
    let l = out
        .lines()
        .find(|l| l.starts_with("listener: "))
        .expect("listener line");
    assert_eq!(number_after(l, "accepted"), 400);
    assert!(number_after(l, "listen overflows") > 0, "{l}");
    assert!(number_after(l, "listen drops") > 0, "{l}");
    // The accept queue holds backlog + 1, as on Linux.
    assert!(number_after(l, "longest accept queue") <= 5, "{l}");
    // B's counters agree, and the table was cut short with a summary.
    assert!(out.contains("tcp_listen_overflows"));
    assert!(out.contains("400 sockets: "));
    let listen = out
        .lines()
        .find(|l| l.starts_with("tcp   LISTEN "))
        .expect("listener row");
    // ss: a listener's Send-Q is its backlog.
    assert!(listen.contains(" 4 0.0.0.0:7 "), "{listen}");
}

#[test]
fn tcp_bad_flags_fail_with_a_clear_message() {
    for (args, needle) in [
        (
            &["sim", "transfer", "--conns", "0"][..],
            "0 is not in 1..=1000",
        ),
        (
            &["sim", "transfer", "--bytes", "lots"][..],
            "e.g. 1500, 64k or 10m",
        ),
        (&["sim", "transfer", "--backlog", "0"][..], "give 1 to 4096"),
        (&["sim", "transfer", "--rcvbuf", "big"][..], "is not a size"),
        (&["sim", "transfer", "--loss", "2x"][..], "e.g. 1%"),
        (
            &["sim", "transfer", "--port", "0"][..],
            "0 is not in 1..=65535",
        ),
        (&["sim", "echo", "--concurrency", "0"][..], "1..=16000"),
        (&["sim", "echo", "--size", "0"][..], "1..=16777216"),
        (&["sim", "echo", "--accept-interval", "5"][..], "e.g. 20ms"),
    ] {
        let o = berth(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `--tcp-profile linux` runs both hosts on TcpConfig::linux(); its SYN carries
/// Linux's options in Linux's order (checked in the capture); a wrong profile
/// name is refused with the choices.
#[test]
fn transfer_with_linux_tcp_profile() {
    let dir = std::env::temp_dir().join(format!("berth-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("linux.pcap");
    let o = berth(&[
        "sim",
        "transfer",
        "--bytes",
        "300k",
        "--loss",
        "2%",
        "--tcp-profile",
        "linux",
        "--pcap",
        pcap.to_str().expect("utf-8 path"),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("SHA-256 verified end to end for 1/1 connections"),
        "{out}"
    );
    let bytes = std::fs::read(&pcap).expect("capture");
    // mss 1460, sackOK + TS sharing a word, then nop, wscale 8.
    let linux_syn = [2u8, 4, 0x05, 0xb4, 4, 2, 8, 10];
    let at = bytes
        .windows(linux_syn.len())
        .position(|w| w == linux_syn)
        .expect("a SYN with Linux's option layout in the capture");
    assert_eq!(
        &bytes[at + 16..at + 20],
        &[1, 3, 3, 8],
        "nop, wscale 8 after TS"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let bad = berth(&["sim", "transfer", "--tcp-profile", "bsd"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("berth") && err.contains("linux"), "{err}");
}

/// `--plot` and `--trace`: a CSV of the sampled tcp_info (one row per 10 ms of
/// virtual time until everything is acknowledged) and an SVG with axes, labels,
/// a legend and the lines; bad paths and flag combinations are refused up front.
#[test]
fn transfer_writes_trace_csv_and_svg_plot() {
    let dir = std::env::temp_dir().join(format!("berth-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (svg, csv) = (dir.join("X.svg"), dir.join("X.csv"));
    let o = berth(&[
        "sim",
        "transfer",
        "--bytes",
        "2m",
        "--loss",
        "1%",
        "--delay",
        "10ms",
        "--plot",
        svg.to_str().expect("utf-8 path"),
        "--trace",
        csv.to_str().expect("utf-8 path"),
    ]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("sampled tcp_info every 10 ms of virtual time: "))
        .unwrap_or_else(|| panic!("sampling line in {out}"));
    let samples = number_after(line, "virtual time:");
    let secs: f64 = out
        .lines()
        .find(|l| l.starts_with("received 2097152 bytes in "))
        .and_then(|l| l.split(" bytes in ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("totals in {out}"));

    let text = std::fs::read_to_string(&csv).expect("trace CSV");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "conn,t_s,bytes_acked,goodput_mbps,cwnd_bytes,ssthresh_bytes,srtt_ms,\
             total_retrans,rto_events,recoveries,pacing_rate,rcv_buf,snd_wnd"
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, samples);
    // From 0 every 10 ms until the sample that sees all 2 MiB acknowledged,
    // about the transfer's time (B reads the end a little before A hears the ACK).
    let n = rows.len();
    assert!(
        (n as f64 - (secs / 0.01 + 1.0)).abs() <= 3.0,
        "{n} rows for {secs} s"
    );
    let mut acked = 0u64;
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 13, "{r:?}");
        assert_eq!(r[0], "1");
        assert_eq!(r[1], format!("{:.6}", k as f64 * 0.01));
        let b: u64 = r[2].parse().expect("bytes_acked");
        assert!(b >= acked, "bytes_acked went down at row {k}");
        acked = b;
    }
    assert_eq!(acked, 2 << 20);
    let last = &rows[n - 1];
    assert!(
        last[7].parse::<u64>().expect("total_retrans") > 0,
        "{last:?}"
    );
    assert!(!last[5].is_empty(), "ssthresh set after losses: {last:?}");
    let srtt: f64 = last[6].parse().expect("srtt_ms");
    assert!((19.0..40.0).contains(&srtt), "{srtt}");

    let svg = std::fs::read_to_string(&svg).expect("plot SVG");
    assert!(svg.starts_with("<svg "), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    for label in [
        "goodput (Mbit/s",
        "cwnd, ssthresh (KiB)",
        "smoothed RTT (ms)",
        "virtual time since the transfer started (s)",
        "conn 1 (port ",
        "retransmission timeout (",
        "retransmitted segments (",
        "loss recovery entered (",
    ] {
        assert!(svg.contains(label), "no <text> with {label:?} in the SVG");
    }
    assert!(svg.matches("<text").count() > 30);
    assert!(svg.contains("<polyline") || svg.contains("<path"));
    // One retransmission dot per interval with retransmissions.
    assert!(svg.contains("<circle"));
    let _ = std::fs::remove_dir_all(&dir);

    // Bad paths fail before the run, naming the file; --sample needs an output.
    for (args, needle) in [
        (
            &["sim", "transfer", "--plot", "/nonexistent-dir/x.svg"][..],
            "cannot write plot /nonexistent-dir/x.svg",
        ),
        (
            &["sim", "transfer", "--trace", "/nonexistent-dir/x.csv"][..],
            "cannot write trace /nonexistent-dir/x.csv",
        ),
        (&["sim", "transfer", "--sample", "5ms"][..], "--plot"),
        (
            &["sim", "transfer", "--trace", "/dev/null", "--sample", "0"][..],
            "at least 1us",
        ),
        (
            &["sim", "transfer", "--trace", "/dev/null", "--sample", "5"][..],
            "e.g. 20ms",
        ),
    ] {
        let o = berth(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?} ran anyway");
    }
}

/// `--sample` sets the interval exactly; the rows are on its multiples.
#[test]
fn transfer_trace_at_a_chosen_interval() {
    let dir = std::env::temp_dir().join(format!("berth-sample-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = dir.join("t.csv");
    let o = berth(&[
        "sim",
        "transfer",
        "--bytes",
        "500k",
        "--conns",
        "2",
        "--delay",
        "3ms",
        "--sample",
        "2.5ms",
        "--trace",
        csv.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("sampled tcp_info every 2.50 ms of virtual time"));
    let text = std::fs::read_to_string(&csv).expect("trace CSV");
    let mut per_conn = [0usize; 2];
    for row in text.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let c: usize = f[0].parse().expect("conn");
        assert_eq!(
            f[1],
            format!("{:.6}", per_conn[c - 1] as f64 * 0.0025),
            "{row}"
        );
        per_conn[c - 1] += 1;
    }
    assert!(per_conn.iter().all(|&n| n > 5), "{per_conn:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
