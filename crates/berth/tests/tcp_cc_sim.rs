//! Congestion control, pacing and buffer autotuning in the simulator (fixed
//! seeds): the figures of issue 10 as tests.

use berth::core::{CongestionAlgorithm, TcpConfig, TcpInfo};
use berth::sim::workload::{tcp_transfer, TransferConfig, TransferReport};
use berth::sim::{Duration, LinkConfig, TwoHosts};

fn run(
    cc: CongestionAlgorithm,
    link: LinkConfig,
    bytes: u64,
    bufs: Option<usize>,
    seed: u64,
) -> (TransferReport, TcpInfo) {
    let tcp = TcpConfig {
        congestion: cc,
        ..TcpConfig::default()
    };
    run_with(tcp, link, bytes, bufs, seed).0
}

/// [`run`] with any TcpConfig; also returns the A→B queue drops.
fn run_with(
    tcp: TcpConfig,
    link: LinkConfig,
    bytes: u64,
    bufs: Option<usize>,
    seed: u64,
) -> ((TransferReport, TcpInfo), u64) {
    let mut hosts = TwoHosts::with_tcp(seed, link, tcp).expect("hosts");
    let cfg = TransferConfig {
        bytes,
        rcvbuf: bufs,
        sndbuf: bufs,
        time_limit: Duration::from_secs(600),
        ..TransferConfig::default()
    };
    let r = tcp_transfer(&mut hosts, &cfg, |_, _| {}).expect("transfer");
    assert!(!r.timed_out, "finished");
    assert!(r.all_verified(), "byte-exact");
    let info = hosts
        .sim
        .node(hosts.a)
        .tcp_info(r.conns[0].client)
        .expect("tcp_info");
    let drops = hosts.sim.link_stats(hosts.link).0.queue_drops;
    ((r, info), drops)
}

fn link(rate_bps: u64, one_way: Duration, loss: f64) -> LinkConfig {
    LinkConfig {
        rate_bps: Some(rate_bps),
        delay: one_way,
        loss,
        ..LinkConfig::default()
    }
}

/// With default buffers one connection on a clean 1 Gbit/s, 50 ms RTT link
/// fills it: the receive buffer autotunes from 256 KiB towards 6 MiB (the
/// fixed 256 KiB window alone allows 41 Mbit/s). Over 1 GiB the slow start and
/// its one overshoot cost little; 200 MB cannot reach 85 % even without loss
/// (slow start from 10 segments takes about 9 RTTs).
#[test]
fn autotuning_fills_a_long_fat_link() {
    let (r, info) = run(
        CongestionAlgorithm::Cubic,
        link(1_000_000_000, Duration::from_millis(25), 0.0),
        1 << 30,
        None,
        1,
    );
    assert!(
        r.goodput_bps >= 0.85e9,
        "goodput {:.1} Mbit/s",
        r.goodput_bps / 1e6
    );
    assert_eq!(info.congestion, "cubic");
    assert!(
        info.snd_wnd > 4 << 20,
        "the peer's window grew: {}",
        info.snd_wnd
    );
    assert!(info.pacing_rate > 0, "paced");
}

/// SO_RCVBUF turns autotuning off, as on Linux: the 256 KiB window caps the
/// same link at about window/RTT.
#[test]
fn locked_receive_buffer_is_not_autotuned() {
    let (r, info) = run(
        CongestionAlgorithm::Cubic,
        link(1_000_000_000, Duration::from_millis(25), 0.0),
        20 << 20,
        Some(256 * 1024),
        1,
    );
    assert_eq!(info.snd_wnd, 256 * 1024);
    assert!(r.goodput_bps < 60e6, "{:.1} Mbit/s", r.goodput_bps / 1e6);
}

/// At 1 % random loss, 40 ms RTT, 100 Mbit/s CUBIC does at least as well as
/// Reno; at 0.01 % loss, 100 ms RTT, 1 Gbit/s clearly better (Reno's window
/// grows one segment per RTT after each halving).
#[test]
fn cubic_at_least_reno_under_random_loss() {
    let mut pairs = Vec::new();
    for (rate, delay_ms, loss, bytes) in [
        (100_000_000, 20, 0.01, 8 << 20),
        (1_000_000_000, 50, 0.0001, 100 << 20),
    ] {
        let l = link(rate, Duration::from_millis(delay_ms), loss);
        let (reno, _) = run(CongestionAlgorithm::Reno, l.clone(), bytes, None, 7);
        let (cubic, _) = run(CongestionAlgorithm::Cubic, l, bytes, None, 7);
        pairs.push((reno.goodput_bps, cubic.goodput_bps));
    }
    let (reno, cubic) = pairs[0];
    assert!(cubic >= reno, "1 %: cubic {cubic:.0} reno {reno:.0}");
    let (reno, cubic) = pairs[1];
    assert!(
        cubic >= 1.5 * reno,
        "0.01 %: cubic {:.1} Mbit/s reno {:.1} Mbit/s",
        cubic / 1e6,
        reno / 1e6
    );
}

/// Byte-exact from 0 to 20 % loss with reordering and duplication, both
/// algorithms.
#[test]
fn byte_exact_under_heavy_impairment() {
    for cc in [CongestionAlgorithm::Reno, CongestionAlgorithm::Cubic] {
        for (i, loss) in [0.0, 0.05, 0.2].into_iter().enumerate() {
            let l = LinkConfig {
                rate_bps: Some(50_000_000),
                delay: Duration::from_millis(5),
                jitter: Duration::from_millis(2),
                loss,
                duplicate: 0.02,
                reorder: 0.03,
                ..LinkConfig::default()
            };
            let bytes = if loss > 0.1 { 200 << 10 } else { 2 << 20 };
            run(cc, l, bytes, None, 11 + i as u64);
        }
    }
}

/// Pacing spreads a window over the round trip: the same transfer over a 1 MB
/// queue at 1 Gbit/s, 50 ms RTT drops fewer segments at the queue and finishes
/// sooner than with every window sent as a burst.
#[test]
fn pacing_reduces_queue_drops() {
    let l = link(1_000_000_000, Duration::from_millis(25), 0.0);
    let mut results = Vec::new();
    for pacing in [false, true] {
        let tcp = TcpConfig {
            pacing,
            ..TcpConfig::default()
        };
        let ((r, info), drops) = run_with(tcp, l.clone(), 200 << 20, None, 1);
        assert_eq!(info.pacing_rate > 0, pacing);
        results.push((drops, r.goodput_bps));
    }
    let (burst_drops, burst_goodput) = results[0];
    let (paced_drops, paced_goodput) = results[1];
    assert!(
        paced_drops * 2 < burst_drops,
        "queue drops: paced {paced_drops}, unpaced {burst_drops}"
    );
    assert!(
        paced_goodput > burst_goodput,
        "goodput: paced {paced_goodput:.0} b/s, unpaced {burst_goodput:.0} b/s"
    );
    println!("queue drops {paced_drops} vs {burst_drops}, goodput {paced_goodput:.0} vs {burst_goodput:.0}");
}
