//! SACK reporting (RFC 2018) and the Linux-compatible TCP profile.

mod common;

use berth_core::wire::{SeqNumber, TcpFlags};
use berth_core::{Config, Duration, TcpConfig};
use common::*;
use std::cell::RefCell;
use std::rc::Rc;

fn with_tcp(seed: u64, tcp: TcpConfig) -> Config {
    Config {
        seed: Some(seed),
        tcp,
        ..Config::default()
    }
}

fn pair(
    a: TcpConfig,
    b: TcpConfig,
    mtu: usize,
) -> (Net, berth_core::SocketHandle, berth_core::SocketHandle) {
    let mut net = Net::ip_pair(with_tcp(5, a), with_tcp(6, b), mtu);
    let l = net.listen(1, 80, 16);
    let c = net.connect(0, sa(2, 80));
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).expect("accepted");
    (net, c, s)
}

/// Data segments from node 0 whose 3rd and 6th are dropped once; the receiver's
/// duplicate ACKs must describe exactly what it holds beyond the holes.
#[test]
fn sack_blocks_describe_out_of_order_data() {
    let (mut net, c, s) = pair(TcpConfig::default(), TcpConfig::default(), 1500);
    let dropped: Rc<RefCell<Vec<SeqNumber>>> = Rc::new(RefCell::new(Vec::new()));
    let d2 = dropped.clone();
    let mut n = 0;
    net.set_tap(move |f: &Frame| {
        if let Some((_, t)) = tcp_of(&f.bytes) {
            if f.node == 0 && !t.payload.is_empty() {
                n += 1;
                if n == 3 || n == 6 {
                    d2.borrow_mut().push(t.seq_number);
                    return Action::Drop;
                }
            }
        }
        Action::Deliver
    });
    let from = net.log.len();
    let data = pattern(100_000, 9);
    let got = net.transfer((0, c), (1, s), &data, Duration::from_secs(10));
    assert!(got == data, "byte-exact");
    assert_eq!(dropped.borrow().len(), 2);

    // Replay the log (frames are delivered as they are logged): the latest data
    // segment node 1 received before each of its ACKs.
    let mut delivered: Vec<SeqNumber> = Vec::new();
    let mut first_time: Vec<SeqNumber> = dropped.borrow().clone();
    let mut with_sack = 0;
    for f in &net.log[from..] {
        assert!(
            f.bytes.len() <= 1500,
            "a {}-byte packet exceeds the MTU",
            f.bytes.len()
        );
        let (_, t) = tcp_of(&f.bytes).expect("TCP");
        if f.node == 0 && !t.payload.is_empty() {
            if let Some(i) = first_time.iter().position(|&d| d == t.seq_number) {
                first_time.remove(i); // this copy was dropped
            } else {
                delivered.push(t.seq_number);
            }
            continue;
        }
        if f.node != 1 {
            continue;
        }
        let blocks: Vec<_> = t.sack_ranges.iter().flatten().copied().collect();
        if blocks.is_empty() {
            continue;
        }
        with_sack += 1;
        for &(l, r) in &blocks {
            assert!(
                t.ack_number < l && l < r,
                "block {l}..{r} above ack {}",
                t.ack_number
            );
        }
        for (i, &(l, r)) in blocks.iter().enumerate() {
            for &(l2, r2) in &blocks[i + 1..] {
                assert!(r <= l2 || r2 <= l, "blocks {l}..{r} and {l2}..{r2} overlap");
            }
        }
        // RFC 2018 §4: the first block holds a segment that arrived out of order
        // (the most recent one; the assembler's unit test checks the order).
        assert!(
            delivered
                .iter()
                .any(|&d| blocks[0].0 <= d && d < blocks[0].1),
            "first block {:?} holds no received segment",
            blocks[0]
        );
    }
    assert!(
        with_sack >= 3,
        "duplicate ACKs carried SACK blocks ({with_sack})"
    );
    let first_drop = dropped.borrow()[0];
    assert!(
        net.segs_since(from)
            .iter()
            .any(|g| g.node == 1 && g.ack == first_drop && g.is_pure_ack()),
        "duplicate ACKs at the first hole"
    );
}

/// SACK only when both SYNs offered it (RFC 2018 §2).
#[test]
fn no_sack_blocks_unless_both_sides_permit() {
    let off = TcpConfig {
        sack: false,
        ..TcpConfig::default()
    };
    for (a, b) in [
        (off.clone(), TcpConfig::default()),
        (TcpConfig::default(), off),
    ] {
        let mut net = Net::ip_pair(with_tcp(1, a), with_tcp(2, b), 1500);
        let l = net.listen(1, 80, 16);
        let c = net.connect(0, sa(2, 80));
        net.settle();
        let (s, _) = net.nodes[1].tcp_accept(l).expect("accepted");
        let syn_sack: Vec<bool> = net
            .log
            .iter()
            .filter_map(|f| tcp_of(&f.bytes).map(|(_, t)| t))
            .filter(|t| t.flags.contains(TcpFlags::SYN))
            .map(|t| t.sack_permitted)
            .collect();
        assert_eq!(syn_sack.len(), 2);
        assert!(!syn_sack[1], "SYN-ACK offers SACK only if the SYN did");
        let mut n = 0;
        net.set_tap(move |f: &Frame| {
            if f.node == 0 && tcp_of(&f.bytes).is_some_and(|(_, t)| !t.payload.is_empty()) {
                n += 1;
                if n == 2 {
                    return Action::Drop;
                }
            }
            Action::Deliver
        });
        let from = net.log.len();
        let data = pattern(30_000, 3);
        assert!(net.transfer((0, c), (1, s), &data, Duration::from_secs(10)) == data);
        assert!(
            net.log[from..]
                .iter()
                .filter_map(|f| tcp_of(&f.bytes).map(|(_, t)| t.sack_ranges[0]))
                .all(|b| b.is_none()),
            "no SACK blocks without permission"
        );
    }
}

/// TcpConfig::linux(): Linux's SYN options and an initial window of 10 segments
/// whatever the MSS (RFC 6928 would allow 14600 bytes: 3 segments at MTU 4000).
#[test]
fn linux_profile_syn_and_initial_window() {
    let (mut net, c, s) = pair(TcpConfig::linux(), TcpConfig::linux(), 4000);
    let syn = net
        .log
        .iter()
        .find_map(|f| {
            tcp_of(&f.bytes)
                .map(|(_, t)| t)
                .filter(|t| t.flags == TcpFlags::SYN)
        })
        .expect("SYN");
    assert_eq!(syn.max_seg_size, Some(3960));
    assert_eq!(syn.window_scale, Some(8));
    assert!(syn.sack_permitted && syn.timestamp.is_some());
    assert_eq!(syn.window_len, 65535);
    let mss = net.nodes[0].tcp_info(c).expect("info").snd_mss;
    // Hold every ACK from the receiver: what goes out is the initial window.
    net.set_tap(|f: &Frame| {
        if f.node == 1 {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    let from = net.log.len();
    let data = pattern(20 * mss, 1);
    let n = net.nodes[0].tcp_send(t0(), c, &data).expect("send");
    assert!(n >= 10 * mss);
    net.pump();
    let sent = net.log[from..]
        .iter()
        .filter(|f| f.node == 0 && tcp_of(&f.bytes).is_some_and(|(_, t)| !t.payload.is_empty()))
        .count();
    assert_eq!(sent, 10, "initial window of 10 segments at MSS {mss}");
    let _ = s;
}

/// Drop three segments of one window. With SACK (RFC 6675) the sender learns
/// every hole from the duplicate ACKs and retransmits all three before any of
/// them is acknowledged, and nothing the receiver holds is sent again; NewReno
/// (SACK off) finds one hole per partial ACK.
#[test]
fn sack_recovery_repairs_several_holes_in_one_round() {
    for sack in [true, false] {
        let tcp = TcpConfig {
            sack,
            ..TcpConfig::default()
        };
        let (mut net, c, s) = pair(tcp.clone(), tcp, 1500);
        // Warm up so cwnd holds a window of 20+ segments.
        let warm = pattern(200_000, 1);
        assert!(net.transfer((0, c), (1, s), &warm, Duration::from_secs(10)) == warm);
        let dropped: Rc<RefCell<Vec<SeqNumber>>> = Rc::new(RefCell::new(Vec::new()));
        let d2 = dropped.clone();
        let mut n = 0;
        net.set_tap(move |f: &Frame| {
            if let Some((_, t)) = tcp_of(&f.bytes) {
                if f.node == 0 && !t.payload.is_empty() {
                    n += 1;
                    if [3, 6, 9].contains(&n) {
                        d2.borrow_mut().push(t.seq_number);
                        return Action::Drop;
                    }
                }
            }
            Action::Deliver
        });
        let from = net.log.len();
        let data = pattern(40_000, 2);
        assert!(net.transfer((0, c), (1, s), &data, Duration::from_secs(10)) == data);
        let dropped = dropped.borrow().clone();
        assert_eq!(dropped.len(), 3);
        assert_eq!(
            net.nodes[0].stats().tcp_rto_events,
            0,
            "sack={sack}: no timeout"
        );
        // Data segments sent again, in order, and when the first ACK beyond the
        // first hole came back.
        let mut seen = std::collections::HashSet::new();
        let mut resent = Vec::new();
        let mut first_progress = None;
        for (i, f) in net.log[from..].iter().enumerate() {
            let (_, t) = tcp_of(&f.bytes).expect("TCP");
            if f.node == 0 && !t.payload.is_empty() && !seen.insert(t.seq_number) {
                resent.push((i, t.seq_number));
            }
            if f.node == 1 && first_progress.is_none() && t.ack_number > dropped[0] {
                first_progress = Some(i);
            }
        }
        let resent_seqs: Vec<SeqNumber> = resent.iter().map(|r| r.1).collect();
        assert_eq!(
            resent_seqs, dropped,
            "sack={sack}: exactly the lost segments, once each"
        );
        let before_progress = resent
            .iter()
            .filter(|r| first_progress.is_none_or(|p| r.0 < p))
            .count();
        if sack {
            assert_eq!(before_progress, 3, "all holes repaired in one round");
        } else {
            assert_eq!(before_progress, 1, "NewReno: one hole per round");
        }
    }
}
