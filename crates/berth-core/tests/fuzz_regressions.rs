//! Bugs the whole-stack fuzzers (`crates/berth-fuzz`, `fuzz/`) found, each
//! reduced to a scenario; the fuzz inputs themselves are in `fuzz/regressions/`.

mod common;

use berth_core::wire::{TcpFlags, TcpRepr};
use berth_core::{errno, Duration, EventKind, IfaceId, Medium, TcpState};
use common::*;
use std::net::Shutdown;

/// After shutdown(Read) in-order data was acknowledged and discarded without
/// the out-of-order data it passed: those held bytes stayed in the assembler
/// below the in-order point, and the next SACK block was computed from a
/// negative offset (an overflow panic in debug builds, nonsense blocks in
/// release).
#[test]
fn shutdown_read_then_in_order_data_past_held_out_of_order_data() {
    let (mut net, _l, c, s) = tcp_pair(71);
    net.set_tap(|f: &Frame| {
        let sg = seg_of(Medium::Ip, f).unwrap();
        if f.node == 0 && !sg.payload.is_empty() {
            Action::Capture
        } else {
            Action::Deliver
        }
    });
    let now = net.now;
    net.nodes[0]
        .tcp_send(now, c, &pattern(2 * 1448, 3))
        .unwrap();
    net.settle();
    net.clear_tap();
    let held: Vec<_> = net.captured.drain(..).collect();
    assert!(held.len() >= 2, "two data segments captured");
    // The second segment arrives first: held out of order.
    net.inject(1, IfaceId(0), &held[1].bytes);
    net.nodes[1].tcp_shutdown(now, s, Shutdown::Read).unwrap();
    // One segment carrying both: in order, and past the held one.
    let first = seg_of(Medium::Ip, &held[0]).unwrap();
    let second = seg_of(Medium::Ip, &held[1]).unwrap();
    let mut both = first.payload.clone();
    both.extend_from_slice(&second.payload);
    let mut r = TcpRepr::new(first.src.port(), first.dst.port(), first.seq, first.flags);
    r.ack_number = first.ack;
    r.window_len = first.window;
    r.timestamp = second.ts;
    r.payload = &both;
    let from = net.log.len();
    net.inject(
        1,
        IfaceId(0),
        &build_tcp(first.src.ip(), first.dst.ip(), &r),
    );
    net.pump();
    net.nodes[1].check_invariants().unwrap();
    let acks: Vec<_> = net
        .segs_since(from)
        .into_iter()
        .filter(|g| g.node == 1)
        .collect();
    let end = first.seq + both.len();
    assert!(
        acks.iter().any(|g| g.ack == end && g.has(TcpFlags::ACK)),
        "everything acknowledged: {acks:?}"
    );
    assert_eq!(net.nodes[1].tcp_recv_queue(s).unwrap(), 0, "reads are shut");
}

/// A connection that ended kept its timers: here a keepalive deadline set
/// from the last reception (in the past) just before a reset closed the
/// connection, which no armed timer covered — a CLOSED connection with timer
/// work pending. The ended connection now has no deadlines at all.
#[test]
fn a_connection_reset_during_keepalive_probing_keeps_no_timers() {
    let (mut net, _l, c, s) = tcp_pair(72);
    let now = net.now;
    net.nodes[0]
        .tcp_set_keepalive(
            now,
            c,
            true,
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(10)),
            Some(5),
        )
        .unwrap();
    // The server's answers to the probes are lost; its reset gets through.
    net.set_tap(|f: &Frame| {
        let sg = seg_of(Medium::Ip, f).unwrap();
        if f.node == 1 && !sg.is_rst() {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    net.advance(Duration::from_millis(1500));
    assert!(
        net.segs().iter().any(|g| g.node == 0 && g.is_pure_ack()),
        "a keepalive probe went out"
    );
    let now = net.now;
    net.nodes[1]
        .tcp_set_linger(s, Some(Duration::ZERO))
        .unwrap();
    net.nodes[1].close_at(now, s).unwrap();
    net.pump();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    net.nodes[0].check_invariants().unwrap();
    net.advance(Duration::from_secs(60));
    net.nodes[0].check_invariants().unwrap();
    let e = net.nodes[0].tcp_take_error(c).unwrap().expect("an error");
    assert_eq!(errno(&e), Some(104), "ECONNRESET: {e}");
    let mut errors = 0;
    while let Some(ev) = net.nodes[0].poll_event() {
        errors += usize::from(ev.handle == c && ev.kind == EventKind::Error);
    }
    assert_eq!(errors, 1, "one error event for one error");
}

/// Fast retransmit (and NewReno's partial-ACK retransmission) resent up to one
/// MSS from snd_una, also when less than that had been sent: the segment then
/// carried never-sent data beyond snd_max (past Nagle and the peer's window),
/// without moving snd_max, so the segment record lay beyond snd_max and the
/// peer's ACK of those bytes would be refused as acknowledging unsent data.
#[test]
fn fast_retransmit_resends_only_what_was_sent() {
    let mut client = cfg(73);
    client.tcp.sack = false;
    let mut net = Net::ip_pair(client, cfg(74), 1500);
    let l = net.listen(1, 80, 16);
    let c = net.connect(0, sa(2, 80));
    net.settle();
    net.nodes[1].tcp_accept(l).unwrap();
    let last = net
        .segs()
        .into_iter()
        .rfind(|g| g.node == 1)
        .expect("the server spoke");
    // The client's data is lost on the way.
    net.set_tap(|f: &Frame| {
        let sg = seg_of(Medium::Ip, f).unwrap();
        if f.node == 0 && !sg.payload.is_empty() {
            Action::Capture
        } else {
            Action::Deliver
        }
    });
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &pattern(1000, 1)).unwrap();
    net.pump();
    // Nagle holds this one back while the first 1000 bytes are unacknowledged.
    net.nodes[0].tcp_send(now, c, &pattern(1000, 2)).unwrap();
    net.pump();
    let first = seg_of(Medium::Ip, &net.captured[0]).unwrap();
    assert_eq!(net.captured.len(), 1, "Nagle held the second write");
    let snd_max = first.seq + first.payload.len();
    // The server's last segment was its SYN-ACK, with an unscaled window: a
    // window update first, then three duplicate ACKs.
    assert!(last.is_synack());
    for i in 1..=4 {
        let mut r = TcpRepr::new(
            last.src.port(),
            last.dst.port(),
            last.seq + 1,
            TcpFlags::ACK,
        );
        r.ack_number = first.seq;
        r.window_len = 1000;
        r.timestamp = last.ts.map(|(v, e)| (v + i, e));
        net.inject(0, IfaceId(0), &build_tcp(last.src.ip(), last.dst.ip(), &r));
        net.pump();
    }
    net.nodes[0].check_invariants().unwrap();
    let resent: Vec<_> = net.captured[1..]
        .iter()
        .filter_map(|f| seg_of(Medium::Ip, f))
        .collect();
    assert!(
        !resent.is_empty(),
        "fast retransmit after three duplicate ACKs"
    );
    for g in &resent {
        assert!(
            g.seq + g.payload.len() <= snd_max,
            "retransmission {}+{} goes beyond snd_max {snd_max}",
            g.seq,
            g.payload.len()
        );
    }
}
