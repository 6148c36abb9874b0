//! Congestion control under random loss in the simulator: CUBIC (RFC 9438,
//! the default) against NewReno (RFC 5681/6582) for goodput, and both for
//! byte-exact delivery from 0 to 20 % loss with reordering and duplication.

use berth::core::{CongestionAlgorithm, TcpConfig};
use berth::sim::workload::{tcp_transfer, TransferConfig, TransferReport};
use berth::sim::{Duration, LinkConfig, Medium, TwoHosts};

const MIB: usize = 1 << 20;

fn tcp(alg: CongestionAlgorithm, buf: usize) -> TcpConfig {
    TcpConfig {
        congestion: alg,
        recv_buffer: buf,
        send_buffer: buf,
        ..TcpConfig::default()
    }
}

/// One connection sending `bytes` from A to B; checks it arrived byte-exact
/// (SHA-256 of both ends) and that A used `alg`.
fn run(
    seed: u64,
    alg: CongestionAlgorithm,
    link: LinkConfig,
    bytes: u64,
    buf: usize,
) -> TransferReport {
    let mut h = TwoHosts::with_tcp(seed, link.clone(), tcp(alg, buf)).unwrap();
    let cfg = TransferConfig {
        bytes,
        rcvbuf: Some(buf),
        sndbuf: Some(buf),
        time_limit: Duration::from_secs(3600),
        data_seed: seed,
        ..TransferConfig::default()
    };
    let r = tcp_transfer(&mut h, &cfg, |_, _| {}).unwrap();
    let (ab, ba) = h.sim.link_stats(h.link);
    let info = h.sim.node(h.a).tcp_info(r.conns[0].client).unwrap();
    eprintln!(
        "{alg:>5} seed {seed}: {:.1} MB loss {:.2} % rtt {:.0} ms: {:.2} Mbit/s in {:.2} s, \
         retrans {}, rto {}, recoveries {}, lost {}/{} reordered {} dup {} queue drops {}",
        bytes as f64 / 1e6,
        link.loss * 100.0,
        link.delay.as_secs_f64() * 2e3,
        r.goodput_bps / 1e6,
        r.duration.as_secs_f64(),
        info.total_retrans,
        info.rto_events,
        info.recoveries,
        ab.lost,
        ba.lost,
        ab.reordered,
        ab.duplicated,
        ab.queue_drops,
    );
    assert!(
        r.all_verified(),
        "{alg} seed {seed} loss {}: {:?}",
        link.loss,
        r.conns[0].error
    );
    assert_eq!(info.congestion, alg.name());
    r
}

fn path(delay_ms: u64, rate_bps: u64, loss: f64, queue: usize) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(delay_ms),
        rate_bps: Some(rate_bps),
        loss,
        queue_limit_bytes: queue,
        medium: Medium::Ip,
        ..LinkConfig::default()
    }
}

/// 1 % random loss both ways, 40 ms RTT, 100 Mbit/s: loss-bound (about
/// 3.5 Mbit/s, as 1.22·MSS/(RTT·√p) predicts for Reno); CUBIC's larger β
/// (0.7) and its Reno-friendly region keep it at least as fast as NewReno.
#[test]
fn cubic_at_least_as_fast_as_reno_at_one_percent_loss() {
    for seed in 1..=3 {
        let link = path(20, 100_000_000, 0.01, MIB);
        let reno = run(
            seed,
            CongestionAlgorithm::Reno,
            link.clone(),
            20_000_000,
            16 * MIB,
        );
        let cubic = run(seed, CongestionAlgorithm::Cubic, link, 20_000_000, 16 * MIB);
        assert!(
            cubic.goodput_bps >= reno.goodput_bps,
            "seed {seed}: cubic {:.2} < reno {:.2} Mbit/s",
            cubic.goodput_bps / 1e6,
            reno.goodput_bps / 1e6
        );
    }
}

/// 0.01 % random loss, 100 ms RTT, 1 Gbit/s, 16 MiB buffers (the queue is
/// deep enough that only the random losses count): after each loss NewReno
/// regains one segment per round trip, CUBIC returns to W_max within K
/// seconds, so CUBIC is far ahead.
#[test]
fn cubic_far_ahead_of_reno_on_a_long_fat_path() {
    for seed in [1, 3] {
        let link = path(50, 1_000_000_000, 0.0001, 8 * MIB);
        let reno = run(
            seed,
            CongestionAlgorithm::Reno,
            link.clone(),
            100_000_000,
            16 * MIB,
        );
        let cubic = run(
            seed,
            CongestionAlgorithm::Cubic,
            link,
            100_000_000,
            16 * MIB,
        );
        assert!(
            cubic.goodput_bps >= 1.5 * reno.goodput_bps,
            "seed {seed}: cubic {:.2} vs reno {:.2} Mbit/s",
            cubic.goodput_bps / 1e6,
            reno.goodput_bps / 1e6
        );
    }
}

/// Byte-exact (SHA-256 of what A sent and B read) from 0 to 20 % loss, with
/// 2 % reordering and 2 % duplication, for both algorithms.
#[test]
fn byte_exact_from_zero_to_twenty_percent_loss_both_algorithms() {
    let cases: [(f64, u64); 5] = [
        (0.0, 4_000_000),
        (0.01, 4_000_000),
        (0.05, 2_000_000),
        (0.10, 1_000_000),
        (0.20, 500_000),
    ];
    for alg in [CongestionAlgorithm::Reno, CongestionAlgorithm::Cubic] {
        for (i, &(loss, bytes)) in cases.iter().enumerate() {
            let link = LinkConfig {
                reorder: 0.02,
                duplicate: 0.02,
                ..path(10, 100_000_000, loss, MIB)
            };
            let r = run(40 + i as u64, alg, link, bytes, 256 * 1024);
            assert_eq!(r.bytes, bytes);
        }
    }
}
