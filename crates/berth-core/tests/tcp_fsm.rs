//! State-machine corner cases: RSTs in SYN-RECEIVED (RFC 5961 §3.2), SYN+FIN
//! (RFC 5961 §4, RFC 9293), TIME-WAIT (RFC 9293 §3.10.7.4) and ICMP errors for
//! TCP (RFC 1122 §4.2.3.9, RFC 5927).

mod common;

use berth_core::wire::{SeqNumber, TcpFlags, TcpRepr};
use berth_core::{errno, IfaceId, SocketHandle, TcpState};
use common::*;

/// Hand `r` (from `src`) to `node`, keep every answer off the wire, and return
/// the segments `node` sent in answer.
fn inject_to(net: &mut Net, node: usize, src: u8, r: &TcpRepr) -> Vec<Seg> {
    let from = net.log.len();
    let dst = ip(node as u8 + 1);
    net.inject(node, IfaceId(0), &build_tcp(ip(src), dst, r));
    net.set_tap(|_| Action::Drop);
    net.settle();
    net.clear_tap();
    net.segs_since(from)
        .into_iter()
        .filter(|s| s.node == node)
        .collect()
}

fn seg(
    src_port: u16,
    dst_port: u16,
    seq: SeqNumber,
    ack: SeqNumber,
    flags: TcpFlags,
) -> TcpRepr<'static> {
    let mut r = TcpRepr::new(src_port, dst_port, seq, flags);
    r.ack_number = ack;
    r.window_len = 1000;
    r
}

// ---- 1. RST in SYN-RECEIVED ------------------------------------------------------

/// Node 0 (192.0.2.1:5000) connects to 192.0.2.2:6000 and gets a crossing SYN
/// (simultaneous open): it is in SYN-RECEIVED with a TCB. Returns (net, socket,
/// our ISS, the peer's ISS).
fn simultaneous_syn_received() -> (Net, SocketHandle, SeqNumber, SeqNumber) {
    let mut net = Net::ip_pair(cfg(301), cfg(302), 1500);
    let now = net.now;
    let a = net.nodes[0].tcp_socket();
    net.nodes[0].tcp_bind(a, sa(1, 5000)).unwrap();
    net.set_tap(|_| Action::Drop);
    net.nodes[0].tcp_connect(now, a, sa(2, 6000)).unwrap();
    net.settle();
    net.clear_tap();
    let iss = net.segs().iter().find(|s| s.is_syn()).unwrap().seq;
    let irs = SeqNumber(7000);
    let mut syn = seg(6000, 5000, irs, SeqNumber(0), TcpFlags::SYN);
    syn.max_seg_size = Some(1460);
    let out = inject_to(&mut net, 0, 2, &syn);
    assert!(out.iter().any(|s| s.is_synack() && s.seq == iss), "{out:?}");
    assert_eq!(net.nodes[0].tcp_state(a).unwrap(), TcpState::SynReceived);
    (net, a, iss, irs)
}

#[test]
fn syn_received_tcb_in_window_rst_gets_a_challenge_ack() {
    let (mut net, a, iss, irs) = simultaneous_syn_received();
    let rst = seg(6000, 5000, irs + 1 + 100, SeqNumber(0), TcpFlags::RST);
    let out = inject_to(&mut net, 0, 2, &rst);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].is_pure_ack() && out[0].has(TcpFlags::ACK));
    assert_eq!((out[0].seq, out[0].ack), (iss + 1, irs + 1));
    assert_eq!(net.nodes[0].tcp_state(a).unwrap(), TcpState::SynReceived);
    assert_eq!(net.nodes[0].stats().tcp_challenge_acks, 1);
    // Out of the window: dropped without an answer.
    let far = seg(6000, 5000, irs + 1 + 1_000_000, SeqNumber(0), TcpFlags::RST);
    assert!(inject_to(&mut net, 0, 2, &far).is_empty());
    assert_eq!(net.nodes[0].tcp_state(a).unwrap(), TcpState::SynReceived);
    // At RCV.NXT: the connection is refused.
    let exact = seg(6000, 5000, irs + 1, SeqNumber(0), TcpFlags::RST);
    assert!(inject_to(&mut net, 0, 2, &exact).is_empty());
    assert_eq!(net.nodes[0].tcp_state(a).unwrap(), TcpState::Closed);
    let e = net.nodes[0].tcp_take_error(a).unwrap().unwrap();
    assert_eq!(errno(&e), Some(111));
}

/// A SYN from 192.0.2.1:40000 (with timestamps and window scaling) to node 1's
/// listener on port 80; the SYN-ACK is kept off the wire. Returns (net,
/// listener, our ISS, the peer's ISS).
fn half_open() -> (Net, SocketHandle, SeqNumber, SeqNumber) {
    let mut net = Net::ip_pair(cfg(311), cfg(312), 1500);
    let l = net.listen(1, 80, 8);
    let irs = SeqNumber(1000);
    let mut syn = seg(40000, 80, irs, SeqNumber(0), TcpFlags::SYN);
    syn.max_seg_size = Some(1460);
    syn.window_scale = Some(7);
    syn.timestamp = Some((500, 0));
    let out = inject_to(&mut net, 1, 1, &syn);
    assert_eq!(out.len(), 1);
    assert!(out[0].is_synack());
    assert_eq!(out[0].window, 65_535);
    (net, l, out[0].seq, irs)
}

#[test]
fn syn_queue_in_window_rst_gets_a_challenge_ack_and_the_entry_stays() {
    let (mut net, l, iss, irs) = half_open();
    let mut rst = seg(40000, 80, irs + 1 + 1000, SeqNumber(0), TcpFlags::RST);
    rst.timestamp = Some((510, 0));
    let out = inject_to(&mut net, 1, 1, &rst);
    assert_eq!(out.len(), 1, "{out:?}");
    let ack = &out[0];
    assert!(ack.is_pure_ack() && ack.has(TcpFlags::ACK));
    assert_eq!((ack.seq, ack.ack), (iss + 1, irs + 1));
    assert_eq!(ack.ts.map(|t| t.1), Some(500), "echoes the SYN's TSval");
    assert_eq!(net.nodes[1].stats().tcp_challenge_acks, 1);
    // With an ACK field too (RST is checked before the ACK, RFC 9293 §3.10.7.4).
    let rst_ack = seg(40000, 80, irs + 2, iss + 1, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(inject_to(&mut net, 1, 1, &rst_ack).len(), 1);
    // Outside the window our SYN-ACK offered (65535): dropped silently.
    for s in [irs, irs + 1 + 65_535, irs + 1 + 1_000_000] {
        let rst = seg(40000, 80, s, SeqNumber(0), TcpFlags::RST);
        assert!(inject_to(&mut net, 1, 1, &rst).is_empty());
    }
    assert_eq!(net.nodes[1].stats().tcp_challenge_acks, 2);
    // The half-open connection survived: the handshake completes.
    let mut fin_ack = seg(40000, 80, irs + 1, iss + 1, TcpFlags::ACK);
    fin_ack.timestamp = Some((520, ack.ts.unwrap().0));
    let out = inject_to(&mut net, 1, 1, &fin_ack);
    assert!(out.iter().all(|s| !s.is_rst()), "{out:?}");
    let (_, peer) = net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(peer, sa(1, 40000));
}

#[test]
fn syn_queue_exact_rst_removes_the_entry() {
    let (mut net, l, iss, irs) = half_open();
    let rst = seg(40000, 80, irs + 1, SeqNumber(0), TcpFlags::RST);
    assert!(inject_to(&mut net, 1, 1, &rst).is_empty());
    assert_eq!(net.nodes[1].stats().tcp_challenge_acks, 0);
    // The entry is gone: the completing ACK now draws a reset.
    let ack = seg(40000, 80, irs + 1, iss + 1, TcpFlags::ACK);
    let out = inject_to(&mut net, 1, 1, &ack);
    assert_eq!(out.len(), 1);
    assert!(out[0].is_rst());
    assert!(net.nodes[1].tcp_accept(l).is_err());
}

#[test]
fn syn_queue_challenge_acks_share_the_stack_wide_limit() {
    let (mut net, _l, _iss, irs) = half_open();
    let mut answered = 0;
    for i in 0..1100u32 {
        let rst = seg(40000, 80, irs + 2 + i as usize, SeqNumber(0), TcpFlags::RST);
        answered += inject_to(&mut net, 1, 1, &rst).len();
    }
    assert_eq!(
        answered, 1000,
        "RFC 5961 §7: at most challenge_ack_limit a second"
    );
    let st = net.nodes[1].stats();
    assert_eq!(st.tcp_challenge_acks, 1000);
    assert_eq!(st.tcp_challenge_ack_limited, 100);
}
