//! TCP connection establishment (RFC 9293 §3.5): losses on each leg of the
//! three-way handshake, simultaneous open, refused and unanswered connects.

mod common;

use berth_core::errno;
use berth_core::wire::TcpFlags;
use berth_core::{Duration, EventKind, TcpState};
use common::*;
use std::io::ErrorKind;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drop_nth(pred: impl Fn(&Seg) -> bool + 'static, nth: usize) -> impl FnMut(&Frame) -> Action {
    let mut seen = 0;
    move |f: &Frame| {
        if let Some(s) = seg_of(berth_core::Medium::Ip, f) {
            if pred(&s) {
                seen += 1;
                if seen == nth {
                    return Action::Drop;
                }
            }
        }
        Action::Deliver
    }
}

#[test]
fn lost_syn_is_retransmitted_after_one_second() {
    let mut net = Net::ip_pair(cfg(1), cfg(2), 1500);
    let l = net.listen(1, 80, 8);
    net.set_tap(drop_nth(|s| s.is_syn(), 1));
    let start = net.now;
    let c = net.connect(0, sa(2, 80));
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    net.advance(ms(999));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    net.advance(ms(2));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    let syns: Vec<_> = net.segs().into_iter().filter(|s| s.is_syn()).collect();
    assert_eq!(syns.len(), 2);
    assert_eq!(syns[0].seq, syns[1].seq, "the same SYN again");
    assert_eq!(syns[1].at - start, Duration::from_secs(1));
    let (s, peer) = net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(peer, net.nodes[0].tcp_local_addr(c).unwrap());
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::Established);
    let info = net.nodes[0].tcp_info(c).unwrap();
    assert!(info.total_retrans >= 1);
    assert_eq!(net.nodes[0].stats().tcp_rto_events, 1);
    assert_eq!(net.nodes[0].stats().tcp_active_opens, 1);
    // Karn: the retransmitted SYN gives no RTT sample... but timestamps do, and the
    // link is instantaneous: the RTO stays at its floor-bounded value.
    let got = net.transfer((0, c), (1, s), b"after a lost SYN", Duration::from_secs(1));
    assert_eq!(got, b"after a lost SYN");
}

#[test]
fn lost_synack_is_recovered() {
    let mut net = Net::ip_pair(cfg(3), cfg(4), 1500);
    let l = net.listen(1, 80, 8);
    net.set_tap(drop_nth(|s| s.is_synack(), 1));
    let c = net.connect(0, sa(2, 80));
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    // Half-open on the server: SYN queue, not the accept queue.
    let row = net.nodes[1]
        .sockets()
        .into_iter()
        .find(|r| r.handle == l)
        .unwrap();
    assert_eq!(row.state, "LISTEN");
    assert_eq!(row.recv_q, 0);
    assert_eq!(
        net.nodes[1].tcp_accept(l).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    net.advance(ms(1001));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    let synacks = net.segs().into_iter().filter(|s| s.is_synack()).count();
    assert!(synacks >= 2, "SYN-ACK sent again ({synacks})");
    let got = net.transfer((1, s), (0, c), b"server speaks", Duration::from_secs(1));
    assert_eq!(got, b"server speaks");
}

#[test]
fn lost_final_ack_is_replaced_by_data() {
    let mut net = Net::ip_pair(cfg(5), cfg(6), 1500);
    let l = net.listen(1, 80, 8);
    // Drop the client's first bare ACK (the handshake's third segment).
    net.set_tap(move |f: &Frame| {
        let s = seg_of(berth_core::Medium::Ip, f).unwrap();
        if f.node == 0 && s.is_pure_ack() && s.has(TcpFlags::ACK) {
            return Action::Drop;
        }
        Action::Deliver
    });
    let c = net.connect(0, sa(2, 80));
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    assert_eq!(
        net.nodes[1].tcp_accept(l).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "no ACK arrived: still half-open"
    );
    net.clear_tap();
    let now = net.now;
    assert_eq!(net.nodes[0].tcp_send(now, c, b"GET /").unwrap(), 5);
    net.settle();
    let (s, peer) = net.nodes[1]
        .tcp_accept(l)
        .expect("data completed the handshake");
    assert_eq!(peer, net.nodes[0].tcp_local_addr(c).unwrap());
    assert_eq!(net.read_all(1, s), b"GET /");
    // No SYN-ACK retransmission was needed.
    assert_eq!(net.nodes[1].stats().tcp_retrans_segs, 0);
}

#[test]
fn simultaneous_open() {
    let mut net = Net::ip_pair(cfg(7), cfg(8), 1500);
    let now = net.now;
    let a = net.nodes[0].tcp_socket();
    net.nodes[0].tcp_bind(a, sa(1, 5000)).unwrap();
    let b = net.nodes[1].tcp_socket();
    net.nodes[1].tcp_bind(b, sa(2, 6000)).unwrap();
    net.nodes[0].tcp_connect(now, a, sa(2, 6000)).unwrap();
    net.nodes[1].tcp_connect(now, b, sa(1, 5000)).unwrap();
    net.advance(ms(10));
    assert_eq!(net.nodes[0].tcp_state(a).unwrap(), TcpState::Established);
    assert_eq!(net.nodes[1].tcp_state(b).unwrap(), TcpState::Established);
    // Both saw a SYN without ACK and answered with SYN-ACK (RFC 9293 figure 8).
    let segs = net.segs();
    assert_eq!(segs.iter().filter(|s| s.is_syn()).count(), 2);
    assert!(segs.iter().filter(|s| s.is_synack()).count() >= 2);
    assert!(
        segs.iter().all(|s| !s.is_rst()),
        "no reset in a simultaneous open"
    );
    assert_eq!(net.nodes[0].tcp_peer_addr(a).unwrap(), sa(2, 6000));
    assert_eq!(net.nodes[1].tcp_peer_addr(b).unwrap(), sa(1, 5000));
    let d1 = pattern(10_000, 1);
    let d2 = pattern(7_000, 2);
    assert_eq!(
        net.transfer((0, a), (1, b), &d1, Duration::from_secs(2)),
        d1
    );
    assert_eq!(
        net.transfer((1, b), (0, a), &d2, Duration::from_secs(2)),
        d2
    );
}

#[test]
fn connect_to_closed_port_is_refused() {
    let mut net = Net::ip_pair(cfg(9), cfg(10), 1500);
    let c = net.connect(0, sa(2, 81));
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    let segs = net.segs();
    let syn = segs.iter().find(|s| s.is_syn()).unwrap();
    let rst = segs.iter().find(|s| s.is_rst()).unwrap();
    // RFC 9293 §3.10.7.1: SYN has no ACK → <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(rst.seq.0, 0);
    assert_eq!(rst.ack, syn.seq + 1);
    assert!(rst.has(TcpFlags::ACK));
    let mut saw_error = false;
    while let Some(ev) = net.nodes[0].poll_event() {
        if ev.handle == c && ev.kind == EventKind::Error {
            saw_error = true;
        }
    }
    assert!(saw_error, "an Error event reports the refusal");
    let e = net.nodes[0]
        .tcp_take_error(c)
        .unwrap()
        .expect("pending error");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(errno(&e), Some(111));
    assert!(
        net.nodes[0].tcp_take_error(c).unwrap().is_none(),
        "reported once"
    );
    assert_eq!(net.nodes[0].stats().tcp_attempt_fails, 1);
    assert_eq!(net.nodes[1].stats().tcp_no_socket, 1);
    assert_eq!(net.nodes[1].stats().tcp_out_rsts, 1);
    // The socket can be closed afterwards.
    net.nodes[0].close(c).unwrap();
}

#[test]
fn connect_to_silent_host_backs_off_and_times_out() {
    let mut net = Net::ip_pair(cfg(11), cfg(12), 1500);
    let start = net.now;
    // 192.0.2.77 is on the link but nobody answers.
    let c = net.connect(0, sa(77, 80));
    net.advance(Duration::from_secs(126));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    let times: Vec<u64> = net
        .segs()
        .iter()
        .filter(|s| s.is_syn())
        .map(|s| (s.at - start).as_millis() as u64)
        .collect();
    assert_eq!(times, vec![0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000]);
    while net.nodes[0].poll_event().is_some() {}
    net.advance(Duration::from_secs(2));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    let ev = net.nodes[0].poll_event().expect("Error event");
    assert_eq!(ev.handle, c);
    assert_eq!(ev.kind, EventKind::Error);
    let e = net.nodes[0].tcp_take_error(c).unwrap().unwrap();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert_eq!(errno(&e), Some(110));
    assert_eq!(net.nodes[0].stats().tcp_timeouts, 1);
    // No more SYNs, no reset (never synchronized).
    let segs = net.segs();
    assert_eq!(segs.iter().filter(|s| s.is_syn()).count(), 7);
    assert!(segs.iter().all(|s| !s.is_rst()));
    let now = net.now;
    let err = net.nodes[0].tcp_send(now, c, b"x").unwrap_err();
    assert!(matches!(errno(&err), Some(32) | Some(110)), "{err}");
}

#[test]
fn accept_hands_out_peer_and_listener_keeps_listening() {
    let mut net = Net::ip_pair(cfg(13), cfg(14), 1500);
    let l = net.listen(1, 80, 8);
    let e = net.nodes[1].tcp_accept(l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(errno(&e), Some(11));
    let c1 = net.connect(0, sa(2, 80));
    net.settle();
    let (s1, p1) = net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(p1, net.nodes[0].tcp_local_addr(c1).unwrap());
    assert_eq!(p1.ip(), ip(1));
    assert!((49152..=65535).contains(&p1.port()));
    assert_eq!(net.nodes[1].tcp_peer_addr(s1).unwrap(), p1);
    assert_eq!(net.nodes[1].tcp_local_addr(s1).unwrap(), sa(2, 80));
    assert_eq!(net.nodes[0].tcp_peer_addr(c1).unwrap(), sa(2, 80));
    assert_ne!(s1, l, "accept returns a new socket");
    assert_eq!(net.nodes[1].tcp_state(l).unwrap(), TcpState::Listen);
    assert_eq!(
        net.nodes[1].tcp_accept(l).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let c2 = net.connect(0, sa(2, 80));
    net.settle();
    let (s2, p2) = net.nodes[1].tcp_accept(l).unwrap();
    assert_ne!(p1, p2);
    assert_eq!(p2, net.nodes[0].tcp_local_addr(c2).unwrap());
    assert_ne!(s1, s2);
    // A Readable event announced the pending connection.
    let d = pattern(3000, 9);
    assert_eq!(
        net.transfer((0, c2), (1, s2), &d, Duration::from_secs(1)),
        d
    );
    assert_eq!(net.nodes[1].stats().tcp_passive_opens, 2);
}

#[test]
fn lost_final_ack_with_a_silent_client_is_recovered_by_the_synack_retransmission() {
    let mut net = Net::ip_pair(cfg(15), cfg(16), 1500);
    let l = net.listen(1, 80, 8);
    net.set_tap(drop_nth(|s| s.node == 0 && s.is_pure_ack(), 1));
    let c = net.connect(0, sa(2, 80));
    let start = net.now;
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    assert!(net.nodes[1].tcp_accept(l).is_err());
    net.advance(ms(1001));
    // The SYN-ACK came again after 1 s; the client's ACK answered it.
    let synacks: Vec<_> = net
        .segs()
        .into_iter()
        .filter(|s| s.is_synack())
        .map(|s| s.at - start)
        .collect();
    assert_eq!(synacks, vec![Duration::ZERO, Duration::from_secs(1)]);
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(net.nodes[1].stats().tcp_retrans_segs, 1);
    let d = pattern(2000, 5);
    assert_eq!(net.transfer((1, s), (0, c), &d, Duration::from_secs(1)), d);
}

#[test]
fn half_open_entries_give_up_after_synack_retries() {
    let mut net = Net::ip_pair(cfg(17), cfg(18), 1500);
    let l = net.listen(1, 80, 8);
    // The client's host never answers the SYN-ACK: everything it sends after the
    // SYN is lost, and it stops retransmitting (we close it right away).
    net.set_tap(|f: &Frame| {
        let s = seg_of(berth_core::Medium::Ip, f).unwrap();
        if f.node == 0 && !s.is_syn() {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    let start = net.now;
    let _c = net.connect(0, sa(2, 80));
    net.settle();
    net.advance(Duration::from_secs(70));
    let synacks: Vec<u64> = net
        .segs()
        .into_iter()
        .filter(|s| s.is_synack())
        .map(|s| (s.at - start).as_secs())
        .collect();
    // synack_retries = 5 with backoff 1, 2, 4, 8, 16 s; given up 32 s later.
    assert_eq!(synacks, vec![0, 1, 3, 7, 15, 31]);
    let st = net.nodes[1].stats();
    assert_eq!(st.tcp_synack_timeouts, 1);
    assert_eq!(st.tcp_retrans_segs, 5);
    assert!(net.nodes[1].tcp_accept(l).is_err());
}

/// Half-open connections show as SYN-RECV rows after their listener, as
/// iproute2 `ss` lists them, and leave the list once the handshake completes.
#[test]
fn half_open_connections_are_listed_as_syn_recv() {
    let mut net = Net::ip_pair(cfg(71), cfg(72), 1500);
    let l = net.listen(1, 80, 16);
    // The client's final ACK (its first pure ACK) is lost: the server keeps a
    // SYN-queue entry.
    net.set_tap(drop_nth(|s| s.is_pure_ack(), 1));
    let c = net.connect(0, sa(2, 80));
    net.settle();
    let rows = net.nodes[1].sockets();
    let i = rows
        .iter()
        .position(|r| r.state == "LISTEN")
        .expect("listener");
    let half = &rows[i + 1];
    assert_eq!(half.state, "SYN-RECV");
    assert_eq!(half.local, sa(2, 80));
    assert_eq!(half.peer, net.nodes[0].tcp_local_addr(c).ok());
    assert_eq!(half.handle, rows[i].handle, "listed under its listener");
    // The SYN-ACK retransmission draws the ACK again: the row is gone.
    net.clear_tap();
    net.advance(Duration::from_secs(2));
    let rows = net.nodes[1].sockets();
    assert!(rows.iter().all(|r| r.state != "SYN-RECV"), "{rows:?}");
    assert!(rows.iter().any(|r| r.state == "ESTAB"));
    let _ = l;
}
