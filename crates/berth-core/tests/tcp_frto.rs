//! Spurious retransmission timeouts: F-RTO (RFC 5682) without timestamps and
//! Eifel (RFC 3522) with them restore the window and skip the go-back-N
//! retransmission of data that was never lost.

mod common;

use berth_core::{Config, Duration, SocketHandle};
use common::*;

fn pair(seed: u64, timestamps: bool, frto: bool) -> (Net, SocketHandle, SocketHandle) {
    let conf = |s: u64| {
        let mut c: Config = cfg(s);
        c.tcp.timestamps = timestamps;
        c.tcp.frto = frto;
        // No tail loss probe: the test is about what the timeout does.
        c.tcp.tlp = false;
        c
    };
    let mut net = Net::ip_pair(conf(seed), conf(seed + 1), 1500);
    let l = net.listen(1, 80, 16);
    let c = net.connect(0, sa(2, 80));
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    (net, c, s)
}

/// Warm the connection up, then hold every ACK back until the sender's RTO
/// fired, then let the held ACKs through: the timeout was spurious. Returns the
/// client's cwnd before, the segments retransmitted, and the cwnd after.
fn spurious_rto(timestamps: bool, frto: bool) -> (usize, u64, usize) {
    let (mut net, c, s) = pair(61, timestamps, frto);
    let warm = pattern(300_000, 1);
    assert_eq!(
        net.transfer((0, c), (1, s), &warm, Duration::from_secs(5)),
        warm
    );
    net.advance(Duration::from_millis(100));
    let before = net.nodes[0].tcp_info(c).unwrap();
    let client_iface = net
        .log
        .iter()
        .find(|f| f.node == 0)
        .map(|f| f.iface)
        .expect("a frame from the client");
    // ACKs from the server are captured, not delivered.
    net.set_tap(|f: &Frame| {
        if f.node == 1 {
            Action::Capture
        } else {
            Action::Deliver
        }
    });
    // More than one window: F-RTO sends new data instead of going back.
    let d = pattern(2_000_000, 2);
    let now = net.now;
    let n = net.nodes[0].tcp_send(now, c, &d).unwrap();
    net.settle();
    // Past the RTO (floor 200 ms; the RTT here is tiny).
    net.advance(Duration::from_millis(450));
    let mid = net.nodes[0].tcp_info(c).unwrap();
    assert!(mid.rto_events >= 1, "the timeout fired");
    net.clear_tap();
    // The ACKs of the originals arrive late, one by one.
    let held: Vec<Vec<u8>> = net.captured.drain(..).map(|f| f.bytes).collect();
    assert!(held.len() > 4);
    for b in &held {
        net.inject(0, client_iface, b);
        net.settle();
    }
    net.advance(Duration::from_secs(2));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let now = net.now;
        match net.nodes[1].tcp_recv(now, s, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
    assert_eq!(got.len(), n, "everything arrived");
    let after = net.nodes[0].tcp_info(c).unwrap();
    (
        before.snd_cwnd_bytes,
        after.total_retrans - before.total_retrans,
        after.snd_cwnd_bytes,
    )
}

#[test]
fn frto_undoes_a_spurious_timeout_without_timestamps() {
    let (before, retrans, after) = spurious_rto(false, true);
    assert!(after >= before, "window restored: {before} -> {after}");
    assert!(retrans <= 2, "no go-back-N: {retrans} retransmitted");
    // Without F-RTO the same run goes back and resends data that was never
    // lost (the D-SACKs those draw restore the window later, RFC 3708).
    let (_, retrans_plain, _) = spurious_rto(false, false);
    assert!(retrans_plain > retrans + 2, "{retrans_plain} vs {retrans}");
}

#[test]
fn eifel_undoes_a_spurious_timeout_with_timestamps() {
    let (before, retrans, after) = spurious_rto(true, false);
    assert!(after >= before, "window restored: {before} -> {after}");
    assert!(retrans <= 2, "no go-back-N: {retrans} retransmitted");
}
