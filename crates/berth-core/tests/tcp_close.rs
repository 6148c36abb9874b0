//! TCP connection release (RFC 9293 §3.6): every close sequence, half-close,
//! abortive close, orphans, TIME-WAIT and its reuse (RFC 6191), resets.

mod common;

use berth_core::errno;
use berth_core::wire::{TcpFlags, TcpRepr};
use berth_core::{Duration, IfaceId, SocketHandle, TcpState};
use common::*;
use std::io::ErrorKind;
use std::net::Shutdown;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn row_state(net: &Net, node: usize, h: SocketHandle) -> Option<&'static str> {
    net.nodes[node]
        .sockets()
        .into_iter()
        .find(|r| r.handle == h)
        .map(|r| r.state)
}

#[test]
fn active_and_passive_close_through_time_wait() {
    let (mut net, _l, c, s) = tcp_pair(51);
    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::FinWait1);
    net.settle();
    // The FIN's ACK is delayed (40 ms), as Linux delays it.
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::FinWait1);
    net.advance(ms(39));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::FinWait1);
    net.advance(ms(1));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::FinWait2);
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::CloseWait);
    let now = net.now;
    let mut buf = [0u8; 16];
    assert_eq!(net.nodes[1].tcp_recv(now, s, &mut buf).unwrap(), 0, "EOF");
    // The passive side may still send.
    net.nodes[1].tcp_send(now, s, b"bye").unwrap();
    net.nodes[1].close(s).unwrap();
    assert_eq!(row_state(&net, 1, s), Some("LAST-ACK"));
    assert!(net.nodes[1].tcp_state(s).is_err(), "the handle is closed");
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    assert_eq!(row_state(&net, 1, s), None, "LAST-ACK ended with the ACK");
    assert_eq!(net.read_all(0, c), b"bye");
    let tw_start = net.now;
    net.advance(Duration::from_secs(60) - ms(1));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    net.advance(ms(1));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    assert_eq!(net.now - tw_start, Duration::from_secs(60));
    net.nodes[0].close(c).unwrap();
    assert!(net.nodes[0].sockets().is_empty());
    assert_eq!(net.nodes[0].stats().tcp_out_rsts, 0);
    assert_eq!(net.nodes[1].stats().tcp_out_rsts, 0);
}

#[test]
fn closed_handle_finishes_on_its_own() {
    let (mut net, _l, c, s) = tcp_pair(53);
    let d = pattern(300_000, 1);
    let now = net.now;
    let mut sent = 0;
    while sent < d.len() {
        match net.nodes[0].tcp_send(now, c, &d[sent..]) {
            Ok(n) => sent += n,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::WouldBlock);
                break;
            }
        }
    }
    let first = sent;
    assert_eq!(first, 256 * 1024, "the send buffer holds 256 KiB");
    net.nodes[0].close(c).unwrap();
    let row = net.nodes[0]
        .sockets()
        .into_iter()
        .find(|r| r.handle == c)
        .expect("the orphan is still listed");
    assert_eq!(row.state, "FIN-WAIT-1");
    assert!(row.send_q > 0);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut eof = false;
    for _ in 0..2000 {
        let now = net.now;
        loop {
            match net.nodes[1].tcp_recv(now, s, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        if eof {
            break;
        }
        net.advance(ms(1));
    }
    assert!(eof);
    assert!(got == d[..first], "all queued data delivered after close");
    net.nodes[1].close(s).unwrap();
    net.settle();
    assert_eq!(row_state(&net, 0, c), Some("TIME-WAIT"));
    net.advance(Duration::from_secs(61));
    assert!(net.nodes[0].sockets().is_empty());
    assert!(net.nodes[1].sockets().len() == 1, "only the listener");
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let (mut net, _l, c, s) = tcp_pair(55);
    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
    net.nodes[1].tcp_shutdown(now, s, Shutdown::Write).unwrap();
    // Deliver both FINs before either ACK.
    let mut seen_closing = [false; 2];
    net.set_tap(|_| Action::Capture);
    net.settle();
    net.clear_tap();
    let fins: Vec<_> = net.captured.drain(..).collect();
    assert_eq!(fins.len(), 2);
    for f in &fins {
        net.inject(1 - f.node, IfaceId(0), &f.bytes);
    }
    for (i, h) in [(0, c), (1, s)] {
        seen_closing[i] = net.nodes[i].tcp_state(h).unwrap() == TcpState::Closing;
    }
    assert_eq!(seen_closing, [true, true]);
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::TimeWait);
    let mut buf = [0u8; 4];
    assert_eq!(net.nodes[0].tcp_recv(net.now, c, &mut buf).unwrap(), 0);
    assert_eq!(net.nodes[1].tcp_recv(net.now, s, &mut buf).unwrap(), 0);
    net.advance(Duration::from_secs(60));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::Closed);
}

#[test]
fn half_close_peer_reads_eof_and_keeps_sending() {
    let (mut net, _l, c, s) = tcp_pair(57);
    let now = net.now;
    net.nodes[0].tcp_send(now, c, b"request").unwrap();
    net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
    net.settle();
    assert_eq!(net.read_all(1, s), b"request");
    let mut buf = [0u8; 8];
    assert_eq!(net.nodes[1].tcp_recv(net.now, s, &mut buf).unwrap(), 0);
    let e = net.nodes[0].tcp_send(net.now, c, b"more").unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::BrokenPipe,
        "no writes after shutdown(Write)"
    );
    assert_eq!(errno(&e), Some(32));
    let reply = pattern(200_000, 3);
    let got = net.transfer((1, s), (0, c), &reply, Duration::from_secs(5));
    assert!(got == reply, "the half-closed side still reads");
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::FinWait2);
    net.nodes[1].close(s).unwrap();
    net.settle();
    assert_eq!(net.nodes[0].tcp_recv(net.now, c, &mut buf).unwrap(), 0);
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
}

#[test]
fn close_with_unread_data_resets_and_peer_sees_connection_reset() {
    let (mut net, _l, c, s) = tcp_pair(59);
    let now = net.now;
    net.nodes[1].tcp_send(now, s, b"unread").unwrap();
    net.settle();
    assert_eq!(net.nodes[0].tcp_recv_queue(c).unwrap(), 6);
    let from = net.log.len();
    net.nodes[0].close(c).unwrap();
    net.settle();
    let segs = net.segs_since(from);
    assert_eq!(segs.len(), 1);
    assert!(
        segs[0].is_rst() && !segs[0].is_fin(),
        "RFC 2525: RST, not FIN"
    );
    assert!(
        net.nodes[0].sockets().is_empty(),
        "no TIME-WAIT after an abort"
    );
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::Closed);
    let mut buf = [0u8; 8];
    let e = net.nodes[1].tcp_recv(net.now, s, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    assert_eq!(errno(&e), Some(104));
    let e = net.nodes[1].tcp_send(net.now, s, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe, "write after reset");
    assert_eq!(net.nodes[1].stats().tcp_estab_resets, 1);
}

#[test]
fn write_after_reset_reports_the_reset() {
    let (mut net, _l, c, s) = tcp_pair(61);
    net.nodes[0]
        .tcp_set_linger(c, Some(Duration::ZERO))
        .unwrap();
    let from = net.log.len();
    net.nodes[0].close(c).unwrap();
    net.settle();
    let segs = net.segs_since(from);
    assert_eq!(segs.len(), 1);
    assert!(segs[0].is_rst(), "SO_LINGER 0 sends RST");
    assert!(net.nodes[0].sockets().is_empty());
    let e = net.nodes[1].tcp_send(net.now, s, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    let e = net.nodes[1].tcp_send(net.now, s, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    let mut buf = [0u8; 4];
    assert_eq!(net.nodes[1].tcp_recv(net.now, s, &mut buf).unwrap(), 0);
}

#[test]
fn time_wait_is_reused_by_a_syn_with_a_newer_timestamp() {
    let mut net = Net::ip_pair(cfg(63), cfg(64), 1500);
    let l = net.listen(1, 80, 8);
    let connect_from_5000 = |net: &mut Net| {
        let now = net.now;
        let c = net.nodes[0].tcp_socket();
        net.nodes[0].tcp_bind(c, sa(1, 5000)).unwrap();
        net.nodes[0].tcp_connect(now, c, sa(2, 80)).unwrap();
        c
    };
    let c = connect_from_5000(&mut net);
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    // The server closes first and keeps the TIME-WAIT.
    net.nodes[1].close(s).unwrap();
    net.settle();
    net.nodes[0].close(c).unwrap();
    net.settle();
    assert!(net.nodes[0].sockets().is_empty());
    let tw: Vec<_> = net.nodes[1]
        .sockets()
        .into_iter()
        .filter(|r| r.state == "TIME-WAIT")
        .collect();
    assert_eq!(tw.len(), 1);
    let last_ts = net
        .segs()
        .iter()
        .rev()
        .find(|s| s.node == 0)
        .unwrap()
        .ts
        .unwrap();
    // An old duplicate SYN (older timestamp) does not reopen it.
    net.advance(Duration::from_secs(5));
    let mut old = TcpRepr::new(5000, 80, berth_core::wire::SeqNumber(12345), TcpFlags::SYN);
    old.window_len = 1000;
    old.timestamp = Some((last_ts.0.wrapping_sub(1000), 0));
    let from = net.log.len();
    // (The TIME-WAIT answers with an ACK; the client host would reset it, which
    // kills the TIME-WAIT as RFC 1337 describes — keep that ACK off the wire.)
    net.set_tap(|_| Action::Drop);
    net.inject(1, IfaceId(0), &build_tcp(ip(1), ip(2), &old));
    net.settle();
    net.clear_tap();
    let answer = net.segs_since(from);
    assert!(answer.iter().all(|s| !s.is_synack()), "{answer:?}");
    assert_eq!(net.nodes[1].stats().tcp_tw_recycled, 0);
    assert_eq!(net.nodes[1].stats().tcp_paws_drops, 1);
    assert!(net.nodes[1]
        .sockets()
        .iter()
        .any(|r| r.state == "TIME-WAIT"));
    // Five seconds later, the same four-tuple again: a newer timestamp.
    let c2 = connect_from_5000(&mut net);
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c2).unwrap(), TcpState::Established);
    assert_eq!(net.nodes[1].stats().tcp_tw_recycled, 1);
    let (s2, peer) = net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(peer, sa(1, 5000));
    let d = pattern(5000, 8);
    assert_eq!(
        net.transfer((0, c2), (1, s2), &d, Duration::from_secs(1)),
        d
    );
    assert_eq!(net.nodes[0].stats().tcp_out_rsts, 0);
    assert_eq!(net.nodes[0].stats().tcp_estab_resets, 0);
}

/// RFC 1122 §4.2.2.13: data that reaches a closed (orphaned) connection can
/// never be read, so the orphan resets the connection (Linux TCPAbortOnData)
/// instead of queueing it. Found by `berth sim soak`: an echo server and a
/// client that closed mid-echo stalled on each other's zero windows for good.
#[test]
fn data_after_close_resets_the_orphan() {
    for (name, closes_at_once) in [("FIN-WAIT-2", true), ("FIN-WAIT-1", false)] {
        let (mut net, _l, c, s) = tcp_pair(66);
        let now = net.now;
        if !closes_at_once {
            // More than the peer's 256 KiB window, which it does not read:
            // our FIN waits behind the rest.
            net.nodes[0].tcp_send(now, c, &pattern(300_000, 1)).unwrap();
            net.advance(ms(200));
        }
        net.nodes[0].close(c).unwrap();
        net.advance(ms(40));
        assert_eq!(row_state(&net, 0, c), Some(name));
        let from = net.log.len();
        let now = net.now;
        net.nodes[1].tcp_send(now, s, b"too late").unwrap();
        net.advance(ms(10));
        let rst = net
            .segs_since(from)
            .into_iter()
            .find(|g| g.node == 0 && g.is_rst());
        assert!(rst.is_some(), "{name}: the orphan answers data with RST");
        assert_eq!(row_state(&net, 0, c), None, "{name}: orphan freed");
        assert_eq!(net.nodes[0].stats().tcp_abort_on_data, 1);
        assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::Closed);
        let mut buf = [0u8; 8];
        let e = net.nodes[1].tcp_send(net.now, s, b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{name}");
        let _ = net.nodes[1].tcp_recv(net.now, s, &mut buf);
    }
}

#[test]
fn orphan_in_fin_wait_2_is_dropped_after_fin_timeout() {
    let (mut net, _l, c, s) = tcp_pair(65);
    net.nodes[0].close(c).unwrap();
    net.advance(ms(40)); // the peer's delayed ACK of our FIN
    assert_eq!(row_state(&net, 0, c), Some("FIN-WAIT-2"));
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::CloseWait);
    net.advance(Duration::from_secs(59));
    assert_eq!(row_state(&net, 0, c), Some("FIN-WAIT-2"));
    net.advance(Duration::from_secs(2));
    assert_eq!(
        row_state(&net, 0, c),
        None,
        "tcp_fin_timeout (60 s) expired"
    );
}

#[test]
fn retransmitted_fin_in_time_wait_is_acked_and_restarts_the_timer() {
    let (mut net, _l, c, s) = tcp_pair(67);
    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
    net.settle();
    // The server's FIN arrives, but our ACK of it is lost.
    net.set_tap(|f: &Frame| {
        if f.node == 0 {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    net.nodes[1].close(s).unwrap();
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    net.clear_tap();
    // The server retransmits its FIN on its RTO; the TIME-WAIT ACKs it.
    net.advance(Duration::from_secs(3));
    assert_eq!(row_state(&net, 1, s), None, "LAST-ACK finished");
    let fin_again = net
        .segs()
        .into_iter()
        .filter(|x| x.node == 1 && x.is_fin())
        .count();
    assert!(fin_again >= 2);
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
}
