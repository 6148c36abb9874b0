//! TCP data transfer: option negotiation, flow control, Nagle, delayed ACKs,
//! retransmission (fast and by timeout), reassembly, keepalive.

mod common;

use berth_core::errno;
use berth_core::wire::TcpFlags;
use berth_core::{Duration, EventKind, IfaceId, Medium, TcpState};
use common::*;
use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::Shutdown;
use std::rc::Rc;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn window_scaling_and_mss_are_negotiated() {
    let (net, _l, c, s) = tcp_pair(31);
    let segs = net.segs();
    let syn = segs.iter().find(|s| s.is_syn()).unwrap();
    let synack = segs.iter().find(|s| s.is_synack()).unwrap();
    assert_eq!(syn.mss, Some(1460));
    assert_eq!(synack.mss, Some(1460));
    // An autotuned receive buffer may grow to rmem_max (6 MiB): shift 7
    // (65535 << 7 ≥ 6 MiB), as Linux derives it from tcp_rmem[2].
    assert_eq!(syn.wscale, Some(7));
    assert_eq!(synack.wscale, Some(7));
    assert!(syn.ts.is_some() && synack.ts.is_some());
    for (node, h) in [(0, c), (1, s)] {
        let i = net.nodes[node].tcp_info(h).unwrap();
        assert_eq!(i.state, Some(TcpState::Established));
        assert_eq!(i.snd_mss, 1460 - 12, "timestamps take 12 bytes");
        assert_eq!(i.rcv_mss, 1460);
        assert_eq!(i.snd_wscale, 7);
        assert_eq!(i.rcv_wscale, 7);
        assert!(i.window_scaling);
        assert!(i.timestamps);
        // The client has seen only the SYN-ACK's (unscaled) window so far; the
        // server saw the scaled window of the final ACK.
        let wnd = if node == 0 { 65_535 } else { 256 * 1024 };
        assert_eq!(i.snd_wnd, wnd, "the peer's window");
        // Initial window of RFC 6928: min(10 MSS, max(2 MSS, 14600)).
        assert_eq!(i.snd_cwnd_bytes, 10 * 1448);
        assert_eq!(i.snd_cwnd, 10, "the same window in segments");
    }
    // Full-sized segments on the wire carry 1448 bytes.
    let mut net = net;
    let from = net.log.len();
    let d = pattern(100_000, 3);
    assert_eq!(net.transfer((0, c), (1, s), &d, Duration::from_secs(2)), d);
    let max = net
        .segs_since(from)
        .iter()
        .map(|s| s.payload.len())
        .max()
        .unwrap();
    assert_eq!(max, 1448);
    net.advance(ms(100)); // the last delayed ACK
    let ci = net.nodes[0].tcp_info(c).unwrap();
    let si = net.nodes[1].tcp_info(s).unwrap();
    assert_eq!(ci.bytes_acked, 100_000);
    assert_eq!(si.bytes_received, 100_000);
    assert_eq!(ci.total_retrans, 0);
    // Scaled, and grown by the receiver's autotuning as the application read.
    assert!(ci.snd_wnd >= 256 * 1024, "scaled window after data");
}

/// A side with window scaling off sends no option (and so none is agreed,
/// RFC 7323 §2.2): neither side scales, even though the other offered a
/// shift, and tcp_info says so (Linux: no TCPI_OPT_WSCALE, no `wscale:` in
/// `ss -i`). Each way round: the server's and the client's config.
#[test]
fn window_scaling_off_on_one_side_is_not_agreed() {
    for off_on_server in [true, false] {
        let mut off = cfg(36);
        off.tcp.window_scaling = false;
        let (a, b) = if off_on_server {
            (cfg(35), off)
        } else {
            (off, cfg(35))
        };
        let mut net = Net::ip_pair(a, b, 1500);
        let l = net.listen(1, 80, 16);
        let c = net.connect(0, sa(2, 80));
        net.settle();
        let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
        let segs = net.segs();
        let syn = segs.iter().find(|s| s.is_syn()).unwrap();
        let synack = segs.iter().find(|s| s.is_synack()).unwrap();
        assert_eq!(syn.wscale.is_some(), off_on_server, "SYN");
        assert_eq!(synack.wscale, None, "SYN-ACK");
        for (node, h) in [(0, c), (1, s)] {
            let i = net.nodes[node].tcp_info(h).unwrap();
            assert!(!i.window_scaling, "node {node}");
            assert_eq!((i.snd_wscale, i.rcv_wscale), (0, 0), "node {node}");
        }
        // Unscaled windows both ways: the data still flows.
        let d = pattern(200_000, 4);
        assert_eq!(net.transfer((0, c), (1, s), &d, Duration::from_secs(5)), d);
        assert!(net.nodes[0].tcp_info(c).unwrap().snd_wnd <= 65_535);
    }
}

#[test]
fn small_receive_buffer_zero_window_persist_and_resume() {
    let mut net = Net::ip_pair(cfg(33), cfg(34), 1500);
    let l = net.nodes[1].tcp_socket();
    net.nodes[1].tcp_set_buffers(l, Some(4096), None).unwrap();
    net.nodes[1].tcp_bind(l, any(80)).unwrap();
    net.nodes[1].tcp_listen(l, 4).unwrap();
    let c = net.connect(0, sa(2, 80));
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(net.nodes[1].tcp_info(s).unwrap().rcv_wscale, 0);
    let d = pattern(40_000, 5);
    let now = net.now;
    let n = net.nodes[0].tcp_send(now, c, &d).unwrap();
    assert_eq!(n, d.len());
    // Nobody reads for 10 s: the window closes.
    let stall = net.log.len();
    net.advance(Duration::from_secs(10));
    assert_eq!(net.nodes[1].tcp_recv_queue(s).unwrap(), 4096);
    let ci = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!(ci.snd_wnd, 0, "zero window seen by the sender");
    assert_eq!(ci.bytes_acked, 4096);
    assert_eq!(net.nodes[0].stats().tcp_timeouts, 0);
    let segs = net.segs_since(stall);
    let zero_wnd = segs.iter().filter(|s| s.node == 1 && s.window == 0).count();
    assert!(zero_wnd >= 1, "the receiver advertised a zero window");
    // Persist probes: the sender keeps probing (with backoff) while the window is 0.
    let probes: Vec<_> = segs
        .iter()
        .filter(|s| s.node == 0 && s.at > segs[0].at + ms(100))
        .map(|s| s.at)
        .collect();
    assert!(probes.len() >= 3, "window probes sent: {}", probes.len());
    assert!(probes.len() <= 20, "probes back off: {}", probes.len());
    let gaps: Vec<_> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    // A slow reader: 1000 bytes every 10 ms.
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    let deadline = net.now + Duration::from_secs(30);
    while got.len() < d.len() && net.now < deadline {
        let now = net.now;
        if let Ok(n) = net.nodes[1].tcp_recv(now, s, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        net.advance(ms(10));
    }
    assert_eq!(got.len(), d.len());
    assert!(got == d, "byte-exact after the stall");
    assert_eq!(net.nodes[0].tcp_info(c).unwrap().bytes_acked, 40_000);
}

fn data_segs(net: &Net, from: usize, node: usize) -> Vec<Seg> {
    net.segs_since(from)
        .into_iter()
        .filter(|s| s.node == node && !s.payload.is_empty())
        .collect()
}

#[test]
fn nagle_coalesces_small_writes_nodelay_does_not() {
    for nodelay in [false, true] {
        let (mut net, _l, c, s) = tcp_pair(35);
        let now = net.now;
        net.nodes[0].tcp_set_nodelay(now, c, nodelay).unwrap();
        assert_eq!(net.nodes[0].tcp_nodelay(c).unwrap(), nodelay);
        let from = net.log.len();
        for i in 0..5u8 {
            assert_eq!(net.nodes[0].tcp_send(now, c, &[b'a' + i; 10]).unwrap(), 10);
        }
        net.settle();
        let segs = data_segs(&net, from, 0);
        let lens: Vec<_> = segs.iter().map(|s| s.payload.len()).collect();
        if nodelay {
            assert_eq!(lens, vec![10; 5], "TCP_NODELAY: one segment per write");
        } else {
            assert_eq!(lens, vec![10, 40], "Nagle: held while the first is unacked");
        }
        let got = net.read_all(1, s);
        assert_eq!(got.len(), 50);
        assert_eq!(&got[..10], &[b'a'; 10]);
        assert_eq!(&got[40..], &[b'e'; 10]);
    }
}

#[test]
fn delayed_acks_every_second_segment_or_40ms() {
    let (mut net, _l, c, s) = tcp_pair(37);
    // Use up the quick ACKs of the connection's start.
    let warm = pattern(60_000, 1);
    assert_eq!(
        net.transfer((0, c), (1, s), &warm, Duration::from_secs(1)),
        warm
    );
    net.advance(ms(100));
    // A lone small segment: acknowledged after the delayed-ACK timer, 40 ms.
    let from = net.log.len();
    let t = net.now;
    net.nodes[0].tcp_send(t, c, b"lonely").unwrap();
    net.settle();
    assert!(
        net.segs_since(from).iter().all(|s| s.node == 0),
        "no immediate ACK"
    );
    net.advance(ms(100));
    let acks: Vec<_> = net
        .segs_since(from)
        .into_iter()
        .filter(|s| s.node == 1)
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].at - t, ms(40));
    assert_eq!(net.read_all(1, s), b"lonely");
    // Eight full segments at once: one ACK per two.
    net.advance(ms(100));
    let from = net.log.len();
    let d = pattern(8 * 1448, 2);
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &d).unwrap();
    net.settle();
    let sent = data_segs(&net, from, 0);
    assert_eq!(sent.len(), 8);
    let acks = net
        .segs_since(from)
        .into_iter()
        .filter(|s| s.node == 1)
        .count();
    assert_eq!(acks, 4, "an ACK for every second full-sized segment");
    assert_eq!(net.read_all(1, s), d);
}

#[test]
fn fast_retransmit_after_three_dup_acks() {
    let (mut net, _l, c, s) = tcp_pair(39);
    let dropped = Rc::new(RefCell::new(None));
    let d2 = dropped.clone();
    let mut n = 0;
    net.set_tap(move |f: &Frame| {
        let sg = seg_of(Medium::Ip, f).unwrap();
        if f.node == 0 && !sg.payload.is_empty() {
            n += 1;
            if n == 3 {
                *d2.borrow_mut() = Some((sg.seq, f.at));
                return Action::Drop;
            }
        }
        Action::Deliver
    });
    let from = net.log.len();
    let d = pattern(200_000, 4);
    let got = net.transfer((0, c), (1, s), &d, Duration::from_secs(5));
    assert!(got == d, "byte-exact");
    let (seq, at) = dropped.borrow().unwrap();
    let again: Vec<_> = data_segs(&net, from, 0)
        .into_iter()
        .filter(|s| s.seq == seq)
        .collect();
    assert_eq!(again.len(), 2, "sent, then retransmitted once");
    assert!(again[1].at - at < ms(200), "before any RTO");
    let dups = net
        .segs_since(from)
        .into_iter()
        .filter(|s| s.node == 1 && s.ack == seq && s.is_pure_ack())
        .count();
    assert!(dups >= 3, "three duplicate ACKs ({dups})");
    let i = net.nodes[0].tcp_info(c).unwrap();
    assert!(i.total_retrans >= 1);
    assert!(i.ssthresh.is_some(), "recovery set ssthresh");
    assert_eq!(net.nodes[0].stats().tcp_rto_events, 0, "no timeout");
    assert!(net.nodes[0].stats().tcp_retrans_segs >= 1);
}

#[test]
fn rto_backs_off_while_everything_is_lost() {
    let (mut net, _l, c, s) = tcp_pair(41);
    let d = pattern(5_000, 6);
    net.set_tap(|f: &Frame| {
        if f.node == 0 {
            Action::Drop
        } else {
            Action::Deliver
        }
    });
    let from = net.log.len();
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &d).unwrap();
    net.advance(Duration::from_secs(7));
    let first_seq = data_segs(&net, from, 0)[0].seq;
    let times: Vec<_> = data_segs(&net, from, 0)
        .into_iter()
        .filter(|s| s.seq == first_seq)
        .map(|s| s.at)
        .collect();
    assert!(times.len() >= 4, "{times:?}");
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // The first timeout comes one probe timeout later: a tail loss probe (RFC
    // 8985 §7) went out first and re-armed the RTO. From then on, doubling.
    for g in gaps[1..].windows(2) {
        assert_eq!(g[1], g[0] * 2, "exponential backoff: {gaps:?}");
    }
    assert!(gaps[0] >= ms(200), "RTO floor 200 ms: {gaps:?}");
    let i = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!(i.retransmits as usize, times.len() - 1);
    assert_eq!(
        net.nodes[0].stats().tcp_rto_events as usize,
        times.len() - 1
    );
    assert_eq!(
        i.snd_cwnd_bytes, i.snd_mss,
        "cwnd collapses to one segment (RFC 5681)"
    );
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    net.clear_tap();
    net.advance(Duration::from_secs(60));
    assert_eq!(net.read_all(1, s), d);
    assert_eq!(net.nodes[0].tcp_info(c).unwrap().retransmits, 0);
}

#[test]
fn out_of_order_segments_with_several_holes_are_reassembled() {
    let (mut net, _l, c, s) = tcp_pair(43);
    let mut n = 0;
    net.set_tap(move |f: &Frame| {
        let sg = seg_of(Medium::Ip, f).unwrap();
        if f.node == 0 && !sg.payload.is_empty() {
            n += 1;
            if n % 2 == 0 {
                return Action::Capture; // segments 2, 4, 6, 8 held back
            }
        }
        if f.node == 1 {
            return Action::Drop; // hide the duplicate ACKs from the sender
        }
        Action::Deliver
    });
    let d = pattern(9 * 1448, 7);
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &d).unwrap();
    net.settle();
    assert_eq!(net.captured.len(), 4);
    assert_eq!(
        net.nodes[1].tcp_recv_queue(s).unwrap(),
        1448,
        "only the first segment is in order"
    );
    net.clear_tap();
    // Fill the holes from the back.
    let held: Vec<_> = net.captured.drain(..).rev().collect();
    for (i, f) in held.iter().enumerate() {
        net.inject(1, IfaceId(0), &f.bytes);
        let q = net.nodes[1].tcp_recv_queue(s).unwrap();
        if i < 3 {
            assert_eq!(q, 1448, "hole {i} still open");
        } else {
            assert_eq!(q, d.len(), "last hole filled: everything in order");
        }
    }
    assert_eq!(net.read_all(1, s), d);
    assert_eq!(net.nodes[1].stats().tcp_ofo_drops, 0);
    assert_eq!(net.nodes[0].tcp_info(c).unwrap().total_retrans, 0);
    net.advance(Duration::from_secs(1));
    assert_eq!(net.nodes[0].tcp_send_queue(c).unwrap(), 0, "all acked");
}

#[test]
fn keepalive_detects_a_dead_peer() {
    let (mut net, _l, c, _s) = tcp_pair(45);
    let now = net.now;
    net.nodes[0]
        .tcp_set_keepalive(
            now,
            c,
            true,
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(1)),
            Some(3),
        )
        .unwrap();
    while net.nodes[0].poll_event().is_some() {}
    net.set_tap(|_| Action::Drop);
    let from = net.log.len();
    let start = net.now;
    net.advance(ms(12_900));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Established);
    let probes: Vec<_> = net
        .segs_since(from)
        .into_iter()
        .filter(|s| s.node == 0)
        .collect();
    let at: Vec<_> = probes.iter().map(|s| (s.at - start).as_secs()).collect();
    assert_eq!(at, vec![10, 11, 12], "keepalive probes");
    for p in &probes {
        assert!(p.payload.is_empty() && p.has(TcpFlags::ACK));
    }
    net.advance(ms(200));
    assert_eq!(net.nodes[0].tcp_state(c).unwrap(), TcpState::Closed);
    let last = net.segs_since(from).into_iter().last().unwrap();
    assert!(last.is_rst(), "a reset is sent when giving up");
    assert_eq!((last.at - start).as_secs(), 13);
    let ev = net.nodes[0].poll_event().unwrap();
    assert_eq!((ev.handle, ev.kind), (c, EventKind::Error));
    let mut buf = [0u8; 10];
    let now = net.now;
    let e = net.nodes[0].tcp_recv(now, c, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert_eq!(errno(&e), Some(110));
    assert_eq!(net.nodes[0].stats().tcp_timeouts, 1);
}

/// Keepalive keeps probing a half-closed connection: after our FIN is acked
/// (FIN-WAIT-2, waiting for the rest of the peer's data) and after the peer's
/// FIN (CLOSE-WAIT). Found by `berth sim soak`: a client that had sent
/// everything and shut down its side waited forever for the echo of a peer
/// that had rebooted, keepalive on.
#[test]
fn keepalive_probes_half_closed_connections() {
    for (node, state) in [(0, TcpState::FinWait2), (1, TcpState::CloseWait)] {
        let (mut net, _l, c, s) = tcp_pair(46);
        let h = if node == 0 { c } else { s };
        let now = net.now;
        net.nodes[node]
            .tcp_set_keepalive(
                now,
                h,
                true,
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(1)),
                Some(3),
            )
            .unwrap();
        net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
        net.advance(ms(100));
        assert_eq!(net.nodes[node].tcp_state(h).unwrap(), state);
        while net.nodes[node].poll_event().is_some() {}
        net.set_tap(|_| Action::Drop);
        let from = net.log.len();
        let start = net.now;
        net.advance(ms(12_900));
        let probes: Vec<_> = net
            .segs_since(from)
            .into_iter()
            .filter(|s| s.node == node && !s.is_rst())
            .collect();
        let at: Vec<_> = probes.iter().map(|s| (s.at - start).as_secs()).collect();
        // Idle counts from the last segment received, within the 100 ms above.
        assert_eq!(at, vec![9, 10, 11], "keepalive probes in {state:?}");
        net.advance(ms(200));
        assert_eq!(net.nodes[node].tcp_state(h).unwrap(), TcpState::Closed);
        let last = net.segs_since(from).into_iter().last().unwrap();
        assert!(last.is_rst(), "a reset is sent when giving up");
        let now = net.now;
        let mut buf = [0u8; 10];
        let e = net.nodes[node].tcp_recv(now, h, &mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{state:?}");
    }
}

/// A zero window that arrives while data is in flight, then a timeout: the
/// retransmission waits for the window, and the persist timer must probe it.
/// Found by `berth sim soak`: the persist timer counted the data a timeout had
/// rewound as still in flight, probed nothing and left no timer armed, so the
/// connection hung for good (even with its peer rebooted, as nothing was sent
/// that would draw the reset).
#[test]
fn zero_window_after_a_timeout_is_probed() {
    let (mut net, _l, c, s) = tcp_pair(47);
    // The client's data is lost, and the server's segments say window 0.
    net.set_tap(|f: &Frame| {
        let Some((_, t)) = tcp_of(&f.bytes) else {
            return Action::Deliver;
        };
        if f.node == 0 && !t.payload.is_empty() {
            return Action::Drop;
        }
        if f.node == 1 {
            let mut r = t;
            r.window_len = 0;
            return Action::Replace(build_tcp(ip(2), ip(1), &r));
        }
        Action::Deliver
    });
    let data = pattern(2 * 1448, 5); // two full segments: nothing left unsent
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &data).unwrap();
    net.nodes[1].tcp_send(now, s, b"x").unwrap();
    net.advance(ms(10));
    let i = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!(
        (i.snd_wnd, i.bytes_acked),
        (0, 0),
        "zero window, data in flight"
    );
    let from = net.log.len();
    net.advance(Duration::from_secs(30));
    let probes = net
        .segs_since(from)
        .into_iter()
        .filter(|g| g.node == 0 && g.payload.is_empty() && !g.is_rst())
        .count();
    assert!(probes >= 3, "the zero window is probed: {probes} probes");
    // The window opens: the next probe learns it and the data follows.
    net.clear_tap();
    net.advance(Duration::from_secs(60));
    assert_eq!(net.read_all(1, s), data);
}

/// A tiny deterministic PRNG for impairments.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 1000 < percent * 10
    }
}

#[test]
fn lossy_duplicating_reordering_link_is_byte_exact_both_ways() {
    for (seed, loss) in [(1u64, 1u64), (2, 5), (3, 20)] {
        let (mut net, _l, c, s) = tcp_pair(100 + seed);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ seed);
        let held: Rc<RefCell<Vec<Vec<u8>>>> = Rc::new(RefCell::new(Vec::new()));
        let h2 = held.clone();
        net.set_tap(move |f: &Frame| {
            if rng.chance(loss) {
                return Action::Drop;
            }
            if rng.chance(3) {
                // Reorder: hold this frame, deliver the next one first.
                h2.borrow_mut().push(f.bytes.clone());
                return Action::Drop;
            }
            if rng.chance(2) {
                h2.borrow_mut().push(f.bytes.clone()); // duplicate, later
            }
            Action::Deliver
        });
        let a = pattern(300_000, 1);
        let b = pattern(200_000, 2);
        let deadline = net.now + Duration::from_secs(600);
        let (mut sa_, mut sb) = (0, 0);
        let (mut ga, mut gb) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; 65536];
        while (ga.len() < a.len() || gb.len() < b.len()) && net.now < deadline {
            let now = net.now;
            if let Ok(n) = net.nodes[0].tcp_send(now, c, &a[sa_..]) {
                sa_ += n;
            }
            if let Ok(n) = net.nodes[1].tcp_send(now, s, &b[sb..]) {
                sb += n;
            }
            while let Ok(n) = net.nodes[1].tcp_recv(now, s, &mut buf) {
                if n == 0 {
                    break;
                }
                ga.extend_from_slice(&buf[..n]);
            }
            while let Ok(n) = net.nodes[0].tcp_recv(now, c, &mut buf) {
                if n == 0 {
                    break;
                }
                gb.extend_from_slice(&buf[..n]);
            }
            // Release held frames (to the other node of the pair).
            let frames: Vec<_> = held.borrow_mut().drain(..).collect();
            for f in frames {
                let to = if tcp_of(&f).unwrap().0.dst_addr == ip(2) {
                    1
                } else {
                    0
                };
                net.inject(to, IfaceId(0), &f);
            }
            net.advance(ms(1));
        }
        assert!(
            ga == a,
            "seed {seed}: client → server ({} of {})",
            ga.len(),
            a.len()
        );
        assert!(
            gb == b,
            "seed {seed}: server → client ({} of {})",
            gb.len(),
            b.len()
        );
        // And a clean close through the impairments.
        let now = net.now;
        net.nodes[0].tcp_shutdown(now, c, Shutdown::Write).unwrap();
        net.nodes[1].tcp_shutdown(now, s, Shutdown::Write).unwrap();
        net.advance(Duration::from_secs(30));
        let mut buf = [0u8; 4];
        assert_eq!(net.nodes[0].tcp_recv(net.now, c, &mut buf).unwrap(), 0);
        assert_eq!(net.nodes[1].tcp_recv(net.now, s, &mut buf).unwrap(), 0);
        for (n, h) in [(0, c), (1, s)] {
            let st = net.nodes[n].tcp_state(h).unwrap();
            assert!(
                matches!(st, TcpState::TimeWait | TcpState::Closed),
                "seed {seed}: node {n} in {st:?}"
            );
            assert_eq!(net.nodes[n].stats().tcp_estab_resets, 0);
        }
        let i = net.nodes[0].tcp_info(c).unwrap();
        assert_eq!(i.bytes_acked, a.len() as u64);
        if loss > 0 {
            assert!(i.total_retrans > 0);
        }
    }
}
