//! State-machine corner cases: RSTs in SYN-RECEIVED (RFC 5961 §3.2), SYN+FIN
//! (RFC 5961 §4, RFC 9293), TIME-WAIT (RFC 9293 §3.10.7.4) and ICMP errors for
//! TCP (RFC 1122 §4.2.3.9, RFC 5927).

mod common;

use berth_core::wire::{
    DstUnreachable, Icmpv4Repr, IpProtocol, Ipv4Repr, SeqNumber, TcpFlags, TcpRepr,
};
use berth_core::{errno, Duration, IfaceId, SocketHandle, TcpState};
use common::*;
use std::net::{Shutdown, SocketAddr};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

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

// ---- 2. SYN+FIN ------------------------------------------------------------------

/// The next sequence number each side of a `tcp_pair` sends, and the client's
/// latest TSval.
fn next_seqs(net: &Net) -> (SeqNumber, SeqNumber, u32) {
    let segs = net.segs();
    let last = |node: usize| {
        let s = segs
            .iter()
            .rev()
            .find(|s| s.node == node && !s.is_rst())
            .unwrap();
        s.seq + (s.payload.len() + s.has(TcpFlags::SYN) as usize + s.has(TcpFlags::FIN) as usize)
    };
    let ts = segs
        .iter()
        .rev()
        .find_map(|s| (s.node == 0).then_some(s.ts).flatten())
        .unwrap()
        .0;
    (last(0), last(1), ts)
}

#[test]
fn syn_fin_in_established_gets_a_challenge_ack_and_the_fin_is_ignored() {
    let (mut net, _l, c, s) = tcp_pair(321);
    let (cn, sn, ts) = next_seqs(&net);
    let client = net.nodes[0].tcp_local_addr(c).unwrap().port();
    let mut r = seg(client, 80, cn, SeqNumber(0), TcpFlags::SYN | TcpFlags::FIN);
    r.timestamp = Some((ts, 0));
    let out = inject_to(&mut net, 1, 1, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].is_pure_ack());
    assert_eq!(
        (out[0].seq, out[0].ack),
        (sn, cn),
        "RFC 5961 §4 challenge ACK"
    );
    assert_eq!(net.nodes[1].tcp_state(s).unwrap(), TcpState::Established);
    let st = net.nodes[1].stats();
    assert_eq!((st.tcp_challenge_acks, st.tcp_in_errs), (1, 0));
    let d = pattern(3000, 9);
    assert_eq!(net.transfer((0, c), (1, s), &d, Duration::from_secs(2)), d);
}

#[test]
fn syn_fin_to_a_closed_port_is_reset() {
    let mut net = Net::ip_pair(cfg(323), cfg(324), 1500);
    let r = seg(
        40000,
        81,
        SeqNumber(500),
        SeqNumber(0),
        TcpFlags::SYN | TcpFlags::FIN,
    );
    let out = inject_to(&mut net, 1, 1, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, TcpFlags::RST | TcpFlags::ACK);
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN>; SYN and FIN count one each.
    assert_eq!((out[0].seq, out[0].ack), (SeqNumber(0), SeqNumber(502)));
    assert_eq!(net.nodes[1].stats().tcp_in_errs, 0);
}

#[test]
fn syn_fin_to_a_listener_is_dropped_but_a_syn_queue_entry_answers_it_as_a_syn() {
    let (mut net, l, iss, irs) = half_open();
    // A fresh four-tuple: LISTEN drops SYN+FIN (Linux).
    let mut r = seg(
        40001,
        80,
        SeqNumber(9),
        SeqNumber(0),
        TcpFlags::SYN | TcpFlags::FIN,
    );
    r.max_seg_size = Some(1460);
    assert!(inject_to(&mut net, 1, 1, &r).is_empty());
    assert_eq!(net.nodes[1].stats().tcp_in_errs, 1);
    assert_eq!(net.nodes[1].stats().tcp_passive_opens, 1);
    // The half-open entry's SYN again, with FIN: a retransmitted SYN (Linux's
    // tcp_check_req looks at SYN, RST and ACK only) — the SYN-ACK again.
    let mut r = seg(40000, 80, irs, SeqNumber(0), TcpFlags::SYN | TcpFlags::FIN);
    r.timestamp = Some((505, 0));
    let out = inject_to(&mut net, 1, 1, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].is_synack() && out[0].seq == iss);
    assert!(net.nodes[1].tcp_accept(l).is_err());
}

#[test]
fn syn_ack_fin_in_syn_sent_establishes_and_the_fin_waits_for_its_retransmission() {
    let mut net = Net::ip_pair(cfg(325), cfg(326), 1500);
    let now = net.now;
    let c = net.nodes[0].tcp_socket();
    net.set_tap(|_| Action::Drop);
    net.nodes[0].tcp_connect(now, c, sa(2, 80)).unwrap();
    net.settle();
    net.clear_tap();
    let syn = net.segs().into_iter().find(|s| s.is_syn()).unwrap();
    let flags = TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN;
    let mut r = seg(80, syn.src.port(), SeqNumber(3000), syn.seq + 1, flags);
    r.max_seg_size = Some(1460);
    let out = inject_to(&mut net, 0, 2, &r);
    assert!(out
        .iter()
        .any(|s| s.is_pure_ack() && s.ack == SeqNumber(3001)));
    // As Linux (tcp_rcv_synsent_state_process): the FIN is not taken with the SYN.
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    let fin = seg(
        80,
        syn.src.port(),
        SeqNumber(3001),
        syn.seq + 1,
        TcpFlags::FIN | TcpFlags::ACK,
    );
    inject_to(&mut net, 0, 2, &fin);
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::CloseWait);
}

/// A `tcp_pair` whose client (node 0) closed first and sits in TIME-WAIT, the
/// server gone. Returns (net, client, the server's FIN).
fn client_in_time_wait(seed: u64) -> (Net, SocketHandle, Seg) {
    let (mut net, _l, c, s) = tcp_pair(seed);
    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
    net.advance(ms(100));
    net.nodes[1].close(s).unwrap();
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    let fin = net
        .segs()
        .into_iter()
        .rev()
        .find(|x| x.node == 1 && x.is_fin())
        .unwrap();
    (net, c, fin)
}

#[test]
fn syn_fin_in_time_wait_gets_a_challenge_ack_and_reopens_nothing() {
    let (mut net, c, fin) = client_in_time_wait(327);
    let rcv_nxt = fin.seq + 1;
    let (port, ts) = (fin.src.port(), fin.ts.unwrap());
    net.advance(Duration::from_secs(5));
    // At RCV.NXT, and above it with a newer timestamp (which a plain SYN would
    // use to reopen the four-tuple, RFC 6191).
    for (i, seqno) in [rcv_nxt, rcv_nxt + 100_000].into_iter().enumerate() {
        let mut r = seg(
            port,
            fin.dst.port(),
            seqno,
            SeqNumber(0),
            TcpFlags::SYN | TcpFlags::FIN,
        );
        r.timestamp = Some((ts.0 + 5000 + i as u32, 0));
        let out = inject_to(&mut net, 0, 2, &r);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].is_pure_ack() && out[0].ack == rcv_nxt);
        assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    }
    let st = net.nodes[0].stats();
    assert_eq!((st.tcp_tw_recycled, st.tcp_challenge_acks), (0, 2));
}

// ---- 3. TIME-WAIT ----------------------------------------------------------------

/// A segment from the (gone) server to the TIME-WAIT client, `secs` after its FIN.
fn from_server(fin: &Seg, secs: u32, seq: SeqNumber, flags: TcpFlags) -> TcpRepr<'static> {
    let mut r = seg(fin.src.port(), fin.dst.port(), seq, fin.ack, flags);
    r.timestamp = fin.ts.map(|(v, e)| (v + secs * 1000, e));
    r
}

/// When the TIME-WAIT of `c` ends: the virtual time at which it becomes Closed
/// (looked for from now on, in 1 ms steps near the expected end `at`).
fn time_wait_ends(net: &mut Net, c: SocketHandle, at: berth_core::Instant) -> berth_core::Instant {
    net.advance(at - net.now - ms(2));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    for _ in 0..4 {
        net.advance(ms(1));
        if net.nodes[0].tcp_state(c).unwrap() == TcpState::Closed {
            return net.now;
        }
    }
    panic!("still in TIME-WAIT after {:?}", net.now);
}

#[test]
fn time_wait_acks_a_retransmitted_fin_and_restarts_2msl() {
    let (mut net, c, fin) = client_in_time_wait(331);
    let rcv_nxt = fin.seq + 1;
    net.advance(Duration::from_secs(30));
    let r = from_server(&fin, 30, fin.seq, TcpFlags::FIN | TcpFlags::ACK);
    let out = inject_to(&mut net, 0, 2, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].is_pure_ack() && out[0].ack == rcv_nxt);
    assert_eq!(net.nodes[0].stats().tcp_out_of_window, 0);
    let at = net.now + Duration::from_secs(60);
    assert_eq!(
        time_wait_ends(&mut net, c, at),
        at,
        "2 MSL from the retransmission"
    );
}

#[test]
fn time_wait_acks_a_retransmitted_data_and_fin_segment_and_restarts_2msl() {
    // The peer's data and FIN come again, in one segment that ends at RCV.NXT.
    let (mut net, _l, c, s) = tcp_pair(333);
    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
    net.advance(ms(100));
    let now = net.now;
    net.nodes[1].tcp_send(now, s, b"last words").unwrap();
    net.nodes[1].close(s).unwrap();
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::TimeWait);
    let segs = net.segs();
    let data = segs
        .iter()
        .find(|x| x.node == 1 && x.payload == b"last words");
    let data = data.unwrap().clone();
    net.advance(Duration::from_secs(20));
    let flags = TcpFlags::FIN | TcpFlags::ACK | TcpFlags::PSH;
    let mut r = from_server(&data, 20, data.seq, flags);
    r.payload = b"last words";
    let out = inject_to(&mut net, 0, 2, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].ack, data.seq + 11);
    let at = net.now + Duration::from_secs(60);
    assert_eq!(time_wait_ends(&mut net, c, at), at);
}

#[test]
fn time_wait_acks_acceptable_segments_but_only_a_fin_restarts_2msl() {
    let (mut net, c, fin) = client_in_time_wait(335);
    let tw_end = net.now + Duration::from_secs(60);
    let rcv_nxt = fin.seq + 1;
    net.advance(Duration::from_secs(10));
    // A bare ACK at RCV.NXT: nothing to answer (no ACK of an ACK).
    let r = from_server(&fin, 10, rcv_nxt, TcpFlags::ACK);
    assert!(inject_to(&mut net, 0, 2, &r).is_empty());
    // Data at RCV.NXT (a confused peer): acknowledged, the timer runs on.
    let mut r = from_server(&fin, 10, rcv_nxt, TcpFlags::ACK | TcpFlags::PSH);
    r.payload = b"late";
    let out = inject_to(&mut net, 0, 2, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].is_pure_ack() && out[0].ack == rcv_nxt);
    assert_eq!(time_wait_ends(&mut net, c, tw_end), tw_end);

    // Again, with a FIN at RCV.NXT: acknowledged, and 2 MSL start over.
    let (mut net, c, fin) = client_in_time_wait(337);
    let rcv_nxt = fin.seq + 1;
    net.advance(Duration::from_secs(10));
    let r = from_server(&fin, 10, rcv_nxt, TcpFlags::FIN | TcpFlags::ACK);
    let out = inject_to(&mut net, 0, 2, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].is_pure_ack() && out[0].ack == rcv_nxt);
    let at = net.now + Duration::from_secs(60);
    assert_eq!(time_wait_ends(&mut net, c, at), at);
}

// ---- 4. ICMP errors for TCP ------------------------------------------------------

/// Destination unreachable from 192.0.2.`from` to node 0, quoting a segment
/// `src` → `dst` with sequence number `seq` (IP header and 8 bytes, RFC 792).
fn unreachable(
    from: u8,
    reason: DstUnreachable,
    src: SocketAddr,
    dst: SocketAddr,
    seq: SeqNumber,
) -> Vec<u8> {
    let header = Ipv4Repr {
        src_addr: v4(src.ip()),
        dst_addr: v4(dst.ip()),
        protocol: IpProtocol::TCP,
        payload_len: 20,
        ttl: 64,
        dscp_ecn: 0,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut data = Vec::new();
    data.extend_from_slice(&src.port().to_be_bytes());
    data.extend_from_slice(&dst.port().to_be_bytes());
    data.extend_from_slice(&seq.0.to_be_bytes());
    let repr = Icmpv4Repr::DstUnreachable {
        reason,
        header,
        data: &data,
    };
    build_ip(
        ip(from),
        v4(src.ip()),
        IpProtocol::ICMP,
        99,
        false,
        0,
        &icmp_bytes(&repr),
    )
}

/// Node 0 connects to 192.0.2.2:80; nothing answers. Returns (net, socket, SYN).
fn syn_sent(seed: u64) -> (Net, SocketHandle, Seg) {
    let mut net = Net::ip_pair(cfg(seed), cfg(seed + 1), 1500);
    let now = net.now;
    let c = net.nodes[0].tcp_socket();
    net.set_tap(|_| Action::Drop);
    net.nodes[0].tcp_connect(now, c, sa(2, 80)).unwrap();
    net.settle();
    let syn = net.segs().into_iter().find(|s| s.is_syn()).unwrap();
    (net, c, syn)
}

fn take_errno(net: &mut Net, node: usize, h: SocketHandle) -> Option<i32> {
    net.nodes[node]
        .tcp_take_error(h)
        .unwrap()
        .and_then(|e| errno(&e))
}

#[test]
fn icmp_port_or_protocol_unreachable_aborts_a_connect() {
    for (reason, want) in [
        (DstUnreachable::PortUnreachable, 111), // ECONNREFUSED
        (DstUnreachable::ProtoUnreachable, 92), // ENOPROTOOPT, as Linux
    ] {
        let (mut net, c, syn) = syn_sent(341);
        let pkt = unreachable(2, reason, syn.src, syn.dst, syn.seq);
        net.inject(0, IfaceId(0), &pkt);
        net.settle();
        assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
        assert_eq!(take_errno(&mut net, 0, c), Some(want));
        let st = net.nodes[0].stats();
        assert_eq!((st.tcp_icmp_errors, st.tcp_attempt_fails), (1, 1));
        assert_eq!(st.tcp_out_rsts, 0, "nothing to reset");
    }
}

#[test]
fn icmp_about_no_segment_in_flight_is_ignored_and_counted() {
    let (mut net, c, syn) = syn_sent(343);
    let hard = DstUnreachable::PortUnreachable;
    // [SND.UNA, SND.MAX) is [ISS, ISS+1) in SYN-SENT (RFC 5927 §4.1).
    for seq in [syn.seq + 1, syn.seq - 1, syn.seq + 100_000] {
        net.inject(0, IfaceId(0), &unreachable(2, hard, syn.src, syn.dst, seq));
    }
    // Another four-tuple, and fragmentation needed (left to path MTU
    // discovery): not for this connection's state machine.
    let other = SocketAddr::new(syn.src.ip(), syn.src.port() + 1);
    net.inject(
        0,
        IfaceId(0),
        &unreachable(2, hard, other, syn.dst, syn.seq),
    );
    let frag = DstUnreachable::FragRequired { next_hop_mtu: 1200 };
    net.inject(
        0,
        IfaceId(0),
        &unreachable(2, frag, syn.src, syn.dst, syn.seq),
    );
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    assert_eq!(take_errno(&mut net, 0, c), None);
    let st = net.nodes[0].stats();
    assert_eq!((st.tcp_icmp_out_of_window, st.tcp_icmp_errors), (3, 0));
    assert_eq!(st.icmp_in_dest_unreachs, 5);
}

#[test]
fn icmp_soft_error_in_syn_sent_is_reported_when_the_connect_times_out() {
    let (mut net, c, syn) = syn_sent(345);
    let pkt = unreachable(
        9,
        DstUnreachable::HostUnreachable,
        syn.src,
        syn.dst,
        syn.seq,
    );
    net.inject(0, IfaceId(0), &pkt);
    net.settle();
    // RFC 1122 §4.2.3.9: a soft error MUST NOT abort; the SYN goes on.
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::SynSent);
    assert_eq!(take_errno(&mut net, 0, c), None);
    let from = net.log.len();
    net.advance(Duration::from_secs(200));
    assert_eq!(
        net.segs_since(from).iter().filter(|s| s.is_syn()).count(),
        6
    );
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    assert_eq!(
        take_errno(&mut net, 0, c),
        Some(113),
        "EHOSTUNREACH, not ETIMEDOUT"
    );
    let st = net.nodes[0].stats();
    assert_eq!((st.tcp_icmp_errors, st.tcp_timeouts), (1, 1));
}

/// An established pair whose client gives up after 3 retransmissions; the
/// client has just sent 100 bytes that the server's ACKs (dropped) never
/// confirm. Returns (net, client, server, the data segment).
fn data_in_flight(seed: u64) -> (Net, SocketHandle, SocketHandle, Seg) {
    let mut c0 = cfg(seed);
    c0.tcp.retries = 3;
    let mut net = Net::ip_pair(c0, cfg(seed + 1), 1500);
    let l = net.listen(1, 80, 8);
    let c = net.connect(0, sa(2, 80));
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    net.set_tap(|f: &Frame| {
        if f.node == 1 {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    let from = net.log.len();
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &[7; 100]).unwrap();
    net.settle();
    let data = net
        .segs_since(from)
        .into_iter()
        .find(|s| s.payload.len() == 100)
        .unwrap();
    (net, c, s, data)
}

#[test]
fn icmp_soft_error_in_established_replaces_etimedout() {
    // ENETUNREACH for net unreachable, EHOSTUNREACH for time exceeded (Linux).
    for (time_exceeded, want) in [(false, 101), (true, 113)] {
        let (mut net, c, _s, data) = data_in_flight(347);
        let pkt = if time_exceeded {
            let mut p = unreachable(
                9,
                DstUnreachable::HostUnreachable,
                data.src,
                data.dst,
                data.seq,
            );
            p[20] = 11; // ICMP time exceeded, code 0 (TTL)
            p[21] = 0;
            p[22..24].copy_from_slice(&[0, 0]);
            let ck = icmp_checksum(&p[20..]);
            p[22..24].copy_from_slice(&ck.to_be_bytes());
            p
        } else {
            unreachable(
                9,
                DstUnreachable::NetUnreachable,
                data.src,
                data.dst,
                data.seq,
            )
        };
        net.inject(0, IfaceId(0), &pkt);
        assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
        net.advance(Duration::from_secs(60));
        assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
        let mut buf = [0u8; 8];
        let e = net.nodes[0].tcp_recv(net.now, c, &mut buf).unwrap_err();
        assert_eq!(errno(&e), Some(want));
        let st = net.nodes[0].stats();
        assert_eq!((st.tcp_icmp_errors, st.tcp_timeouts), (1, 1));
    }
}

#[test]
fn icmp_hard_error_in_established_is_soft_and_an_ack_clears_it() {
    let (mut net, c, s, data) = data_in_flight(349);
    // RFC 5927 §5.2 (and Linux): no abort in a synchronized state.
    let pkt = unreachable(
        2,
        DstUnreachable::PortUnreachable,
        data.src,
        data.dst,
        data.seq,
    );
    net.inject(0, IfaceId(0), &pkt);
    net.settle();
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    assert_eq!(net.nodes[0].stats().tcp_icmp_errors, 1);
    // The server's ACKs get through again: the data is acknowledged.
    net.clear_tap();
    net.advance(Duration::from_secs(2));
    assert_eq!(net.nodes[0].tcp_send_queue(c).unwrap(), 0);
    assert_eq!(net.read_all(1, s), vec![7; 100]);
    // Silent again: the timeout now reports ETIMEDOUT, the error was forgotten.
    net.set_tap(|f: &Frame| {
        if f.node == 1 {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &[8; 50]).unwrap();
    net.advance(Duration::from_secs(60));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    assert_eq!(take_errno(&mut net, 0, c), Some(110));
}

fn icmp_checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
