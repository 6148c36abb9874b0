//! Stack-wide memory accounting (tcp_mem / udp_mem): the charged totals stay
//! under the configured ceiling whatever peers send, pressure comes and goes,
//! and traffic works again afterwards.
//!
//! One victim stack on an IP link; the peers are packets built here, so the
//! test decides exactly what is in order and what is not.

mod common;

use berth_core::wire::{SeqNumber, TcpFlags, TcpRepr};
use berth_core::{
    Config, Duration, EventKind, IfaceConfig, IfaceId, Instant, Medium, MemLimits, Stack, PAGE_SIZE,
};
use common::*;
use std::net::SocketAddr;

const SERVER_PORT: u16 = 80;

/// The victim: 192.0.2.2/24 on a bare-IP link, with the given limits.
fn victim(tcp_mem: MemLimits, udp_mem: MemLimits, udp_rcvbuf: usize) -> (Stack, IfaceId) {
    let mut s = Stack::new(Config {
        tcp_mem,
        udp_mem,
        socket_recv_buffer: udp_rcvbuf,
        ..cfg(7)
    });
    let i = s
        .add_interface(IfaceConfig {
            medium: Medium::Ip,
            address: cidr(ip(2), 24),
            mtu: 1500,
        })
        .unwrap();
    (s, i)
}

/// One peer connection as the test drives it.
#[derive(Clone, Copy)]
struct Peer {
    addr: SocketAddr,
    /// Our next sequence number (the victim's rcv_nxt once all is in order).
    seq: SeqNumber,
    /// The victim's next sequence number, which we acknowledge.
    ack: SeqNumber,
}

fn peer_seg<'a>(p: &Peer, seq: SeqNumber, flags: TcpFlags, payload: &'a [u8]) -> TcpRepr<'a> {
    let mut r = TcpRepr::new(p.addr.port(), SERVER_PORT, seq, flags);
    r.ack_number = p.ack;
    r.window_len = 65_535;
    r.payload = payload;
    r
}

/// Hand `r` from the peer to the victim; returns the victim's TCP answers.
fn inject(s: &mut Stack, i: IfaceId, now: Instant, p: &Peer, r: &TcpRepr) -> Vec<Vec<u8>> {
    s.receive(now, i, &build_tcp(p.addr.ip(), ip(2), r));
    drain(s, now)
}

/// The victim's listener on `SERVER_PORT`.
fn listen(s: &mut Stack, backlog: usize) -> berth_core::SocketHandle {
    let l = s.tcp_socket();
    s.tcp_bind(l, any(SERVER_PORT)).unwrap();
    s.tcp_listen(l, backlog).unwrap();
    l
}

/// A three-way handshake from `addr` to the victim's listener.
fn handshake(s: &mut Stack, i: IfaceId, now: Instant, addr: SocketAddr) -> Peer {
    handshake_ws(s, i, now, addr, None)
}

/// `handshake`, offering window scaling with `wscale`.
fn handshake_ws(
    s: &mut Stack,
    i: IfaceId,
    now: Instant,
    addr: SocketAddr,
    wscale: Option<u8>,
) -> Peer {
    let mut p = Peer {
        addr,
        seq: SeqNumber(1_000_000 + u32::from(addr.port())),
        ack: SeqNumber(0),
    };
    let mut syn = peer_seg(&p, p.seq, TcpFlags::SYN, &[]);
    syn.max_seg_size = Some(1460);
    syn.window_scale = wscale;
    let out = inject(s, i, now, &p, &syn);
    let synack = out
        .iter()
        .filter_map(|f| tcp_of(f).map(|(_, r)| (r.flags, r.seq_number)))
        .find(|(f, _)| f.contains(TcpFlags::SYN | TcpFlags::ACK))
        .expect("SYN-ACK");
    p.seq += 1;
    p.ack = synack.1 + 1;
    let ack = peer_seg(&p, p.seq, TcpFlags::ACK, &[]);
    inject(s, i, now, &p, &ack);
    p
}

/// /proc/self/status VmRSS in bytes.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The running totals agree with the sockets' own skmem numbers, and stay
/// within the ceiling.
fn check(s: &Stack) {
    let m = s.memory();
    assert!(
        m.within_limits(),
        "over the ceiling: tcp {} of {}, udp {} of {}",
        m.tcp_bytes,
        m.tcp_ceiling(),
        m.udp_bytes,
        m.udp_ceiling()
    );
    let rows = s.sockets();
    let tcp: usize = rows
        .iter()
        .filter(|r| r.kind.netid() == "tcp")
        .map(|r| r.mem.rmem_alloc + r.mem.wmem_queued)
        .sum();
    let dgram: usize = rows
        .iter()
        .filter(|r| r.kind.netid() != "tcp")
        .map(|r| r.mem.rmem_alloc)
        .sum();
    assert_eq!(m.tcp_bytes, tcp, "tcp_mem total drifted from the sockets");
    assert_eq!(m.udp_bytes, dgram, "udp_mem total drifted from the sockets");
}

/// The test: with the high mark set low, 1,000 connections each
/// receiving out-of-order data and 1,000 UDP sockets with full queues keep
/// total charged memory under the mark; RSS stays bounded; normal traffic
/// resumes once pressure is gone.
#[test]
fn thousand_connections_and_udp_sockets_stay_under_the_high_mark() {
    let tcp_mem = MemLimits::new(256, 384, 512).unwrap(); // 1 / 1.5 / 2 MiB
    let udp_mem = MemLimits::new(128, 192, 256).unwrap(); // 0.5 / 0.75 / 1 MiB
    let (mut s, i) = victim(tcp_mem, udp_mem, 16 * 1024);
    let rss_before = rss();
    let mut now = t0();
    let l = listen(&mut s, 4096);

    // 1,000 connections; the last 200 stay in the accept queue, charged too.
    let mut peers = Vec::new();
    let mut conns = Vec::new();
    for n in 0..1000u16 {
        let addr = sa4(ip(10 + (n % 200) as u8), 10_000 + n);
        peers.push(handshake(&mut s, i, now, addr));
        if n < 800 {
            conns.push(s.tcp_accept(l).unwrap().0);
        }
    }
    assert_eq!(s.memory().tcp_bytes, 0);
    check(&s);

    // Every connection gets out-of-order data: a hole of one segment, then
    // four segments beyond it (5,840 bytes each, 5.8 MB in all: three times
    // the high mark): segments 2, 3, 4 (in rising order: past its share a
    // connection drops them), then 1 (below what is held: it prunes).
    // Totals are checked after every segment.
    let seg = vec![0x5au8; 1460];
    for round in [1u32, 2, 3, 0] {
        for p in &peers {
            let at = p.seq + 1460 * (round as usize + 1);
            let r = peer_seg(p, at, TcpFlags::ACK, &seg);
            inject(&mut s, i, now, p, &r);
            let m = s.memory();
            assert!(m.tcp_bytes <= m.tcp_ceiling(), "{} bytes", m.tcp_bytes);
        }
        check(&s);
    }
    let m = s.memory();
    let st = s.stats();
    assert!(m.tcp_pressure, "5.8 MB offered against a 2 MiB mark");
    assert!(m.tcp_peak <= m.tcp_ceiling());
    assert!(m.tcp_bytes > tcp_mem.pressure * PAGE_SIZE, "{m:?}");
    assert_eq!(st.tcp_memory_pressures, 1, "entered once, never left");
    assert!(st.tcp_ofo_drops > 0, "dropped rather than allocated");
    assert!(st.tcp_prune_called > 0 && st.tcp_ofo_pruned > 0, "{st:?}");

    // 1,000 UDP sockets, each offered 12 datagrams of 1,400 bytes (its 16 KiB
    // queue full at 11): 16 MB against a 1 MiB mark.
    let mut udp = Vec::new();
    for n in 0..1000u16 {
        let u = s.udp_socket();
        s.udp_bind(u, any(20_000 + n)).unwrap();
        udp.push(u);
    }
    let dgram = vec![0xa5u8; 1400];
    for (n, _) in udp.iter().enumerate() {
        for k in 0..12u16 {
            let pkt = build_udp(sa(1, 5000), sa(2, 20_000 + n as u16), k, &dgram);
            s.receive(now, i, &pkt);
            let m = s.memory();
            assert!(m.udp_bytes <= m.udp_ceiling(), "{} bytes", m.udp_bytes);
        }
    }
    check(&s);
    let st = s.stats().clone();
    assert!(
        st.udp_mem_errors > 0,
        "drops above udp_mem high are counted"
    );
    assert!(
        st.udp_rcvbuf_errors > 0,
        "early sockets filled their own queues"
    );
    let d: u64 = s.sockets().iter().map(|r| r.mem.drops).sum();
    assert!(
        d >= st.udp_mem_errors + st.udp_rcvbuf_errors,
        "skmem d counts them"
    );
    drain(&mut s, now);

    // RSS: charged memory is at most ~3 MiB; the rest is bookkeeping for
    // 2,000 sockets. Without the limits the offered data alone is 22 MB.
    let grown = rss().saturating_sub(rss_before);
    let m = s.memory();
    eprintln!(
        "memory: tcp peak {} of ceiling {}, udp peak {} of {}, RSS grew {} KiB",
        m.tcp_peak,
        m.tcp_ceiling(),
        m.udp_peak,
        m.udp_ceiling(),
        grown >> 10
    );
    assert!(grown < 32 << 20, "RSS grew by {} MiB", grown >> 20);

    // Pressure goes: read every datagram, close the connections (SO_LINGER 0
    // resets them, freeing their out-of-order data at once), but keep one.
    let mut buf = vec![0u8; 2048];
    for &u in &udp {
        while s.udp_recv_from(u, &mut buf).is_ok() {}
    }
    assert_eq!(s.memory().udp_bytes, 0);
    let keep = conns.remove(0);
    let kp = peers[0];
    for &c in &conns {
        s.tcp_set_linger(c, Some(Duration::ZERO)).unwrap();
        s.close_at(now, c).unwrap();
    }
    for &u in &udp {
        s.close(u).unwrap();
    }
    s.close(l).unwrap(); // resets the 200 never accepted
    drain(&mut s, now);
    check(&s);
    let m = s.memory();
    assert!(!m.tcp_pressure, "left pressure below low: {m:?}");
    assert!(m.tcp_bytes <= 4 * 1460 + 4 * berth_core::mem::OFO_RANGE_OVERHEAD);

    // Normal traffic on the connection kept: 300 KB in order, read as it
    // comes, byte-exact (the hole first, which also delivers what was held).
    let data = pattern(300_000, 3);
    let mut got = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let end = (off + 1460).min(data.len());
        let r = peer_seg(
            &kp,
            kp.seq + off,
            TcpFlags::ACK | TcpFlags::PSH,
            &data[off..end],
        );
        inject(&mut s, i, now, &kp, &r);
        off = end;
        let mut b = vec![0u8; 65_536];
        while let Ok(n) = s.tcp_recv(now, keep, &mut b) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&b[..n]);
        }
        now += Duration::from_micros(100);
        check(&s);
    }
    // Segments 1..=4 that the connection still held from before (0x5a) were
    // delivered in place of the same ranges of `data` (TCP keeps the first
    // copy); every other byte is `data`'s.
    assert_eq!(got.len(), data.len());
    assert_eq!(&got[..1460], &data[..1460]);
    for k in 1..=4 {
        let r = k * 1460..(k + 1) * 1460;
        assert!(
            got[r.clone()] == data[r.clone()] || got[r].iter().all(|&b| b == 0x5a),
            "segment {k}"
        );
    }
    assert_eq!(&got[5 * 1460..], &data[5 * 1460..]);
    assert_eq!(s.memory().tcp_bytes, 0);
    assert!(!s.memory().tcp_pressure);

    // And sending works again: 100 KB queued whole; what the peer
    // acknowledges is freed.
    let out = pattern(100_000, 9);
    let n = s.tcp_send(now, keep, &out).unwrap();
    assert_eq!(n, out.len());
    assert_eq!(s.memory().tcp_bytes, out.len());
    let sent: usize = drain(&mut s, now)
        .iter()
        .filter_map(|f| tcp_of(f).map(|(_, r)| r.payload.len()))
        .sum();
    let mut kp = kp;
    kp.seq += data.len();
    kp.ack += sent;
    let r = peer_seg(&kp, kp.seq, TcpFlags::ACK, &[]);
    inject(&mut s, i, now, &kp, &r);
    check(&s);
    assert_eq!(s.memory().tcp_bytes, out.len() - sent, "acked bytes freed");
}

/// Short of memory, the out-of-order queue is pruned from its highest
/// sequence down, just enough for the arriving segment (Linux
/// tcp_prune_ofo_queue): the data next to the hole survives.
#[test]
fn pruning_drops_the_highest_out_of_order_data_first() {
    // High mark 4 pages (16,384 bytes); pressure only above it. Ranges of
    // 1,430 bytes cost 1,494 with their overhead: ten leave 1,444 free,
    // enough for an in-order segment but not for another range.
    let (mut s, i) = victim(
        MemLimits::new(1, 4, 4).unwrap(),
        MemLimits::UDP_DEFAULT,
        212_992,
    );
    let now = t0();
    let l = listen(&mut s, 16);
    let a = handshake(&mut s, i, now, sa(1, 40_000));
    let (h, _) = s.tcp_accept(l).unwrap();
    const S: usize = 1430;
    let cost = S + berth_core::mem::OFO_RANGE_OVERHEAD;
    let seg = |k: usize| vec![k as u8; S];
    let send = |s: &mut Stack, k: usize| {
        let d = seg(k);
        let r = peer_seg(&a, a.seq + S * k, TcpFlags::ACK, &d);
        inject(s, i, now, &a, &r);
        check(s);
    };
    for k in (2..=20).step_by(2) {
        send(&mut s, k);
    }
    assert_eq!(s.memory().tcp_bytes, 10 * cost);
    assert_eq!(s.stats().tcp_ofo_pruned, 0);
    // Segment 1 does not fit: range 20 (the highest) goes, 1 is stored.
    send(&mut s, 1);
    assert_eq!(s.stats().tcp_prune_called, 1);
    assert_eq!(s.stats().tcp_ofo_pruned, 1);
    assert_eq!(s.memory().tcp_bytes, 10 * cost);
    assert!(!s.memory().tcp_pressure);
    // Segment 0 fills the hole: 0, 1, 2 are read in order; 4 … 18 remain.
    send(&mut s, 0);
    let mut got = vec![0u8; 65_536];
    let n = s.tcp_recv(now, h, &mut got).unwrap();
    assert_eq!(n, 3 * S);
    for (k, chunk) in got[..n].chunks(S).enumerate() {
        assert!(chunk.iter().all(|&x| x == k as u8), "segment {k}");
    }
    let row = s.sockets().into_iter().find(|r| r.handle == h).unwrap();
    assert_eq!(row.mem.rmem_alloc, 8 * cost, "ranges 4..=18 kept");
    assert_eq!(s.stats().tcp_ofo_pruned, 1);
    // Segment 20 again, then the holes: everything arrives.
    for k in [20, 3, 5, 7, 9, 11, 13, 15, 17, 19] {
        send(&mut s, k);
        while let Ok(m) = s.tcp_recv(now, h, &mut got) {
            if m == 0 {
                break;
            }
        }
    }
    assert_eq!(s.tcp_info(h).unwrap().bytes_received, 21 * S as u64);
    assert_eq!(s.memory().tcp_bytes, 0);
}

/// Above the high mark send() takes nothing (WouldBlock, counted); once
/// acknowledged data frees memory the socket gets a Writable event.
#[test]
fn send_waits_for_memory_and_is_woken() {
    let (mut s, i) = victim(
        // High 64 KiB; the pressure mark at the high mark, so the fair-share
        // rule stays out of this test.
        MemLimits::new(15, 16, 16).unwrap(),
        MemLimits::UDP_DEFAULT,
        212_992,
    );
    let now = t0();
    let l = listen(&mut s, 16);
    let mut p = handshake(&mut s, i, now, sa(1, 40_000));
    let (h, _) = s.tcp_accept(l).unwrap();
    while s.poll_event().is_some() {}
    let data = pattern(200_000, 1);
    let n = s.tcp_send(now, h, &data).unwrap();
    assert_eq!(n, 16 * PAGE_SIZE, "no more than the high mark");
    check(&s);
    let e = s.tcp_send(now, h, &data[n..]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert!(
        !s.readiness(h).unwrap().writable,
        "waits for memory, not send space"
    );
    assert!(s.stats().tcp_mem_send_blocked > 0);
    // What went out: the initial window.
    let sent: usize = drain(&mut s, now)
        .iter()
        .filter_map(|f| tcp_of(f).map(|(_, r)| r.payload.len()))
        .sum();
    assert!(sent > 0);
    while s.poll_event().is_some() {}
    // The peer acknowledges all of it.
    p.ack += sent;
    let r = peer_seg(&p, p.seq, TcpFlags::ACK, &[]);
    inject(&mut s, i, now, &p, &r);
    check(&s);
    let mut writable = false;
    while let Some(ev) = s.poll_event() {
        writable |= ev.handle == h && ev.kind == EventKind::Writable;
    }
    assert!(writable, "woken once memory was freed");
    assert!(s.readiness(h).unwrap().writable);
    let m = s.tcp_send(now, h, &data[n..]).unwrap();
    assert_eq!(m, sent, "exactly what was freed");
    check(&s);
}

/// How far past its first advertised right edge connection b's window
/// reaches while it receives and reads 20 segments, with or without another
/// connection holding enough out-of-order data to put the stack under pressure.
fn window_growth(pressure: bool) -> (i64, bool) {
    let (mut s, i) = victim(
        MemLimits::new(2, 3, 64).unwrap(),
        MemLimits::UDP_DEFAULT,
        212_992,
    );
    let now = t0();
    let l = listen(&mut s, 16);
    let a = handshake(&mut s, i, now, sa(1, 40_000));
    let b = handshake_ws(&mut s, i, now, sa(1, 40_001), Some(7));
    let (_, _) = s.tcp_accept(l).unwrap();
    let (hb, _) = s.tcp_accept(l).unwrap();
    let shift = s.tcp_info(hb).unwrap().rcv_wscale;
    if pressure {
        for k in 1..=12usize {
            let r = peer_seg(&a, a.seq + 1460 * k, TcpFlags::ACK, &[1; 1460]);
            inject(&mut s, i, now, &a, &r);
        }
    }
    let mut first_edge = None;
    let mut seq = b.seq;
    let mut buf = vec![0u8; 65_536];
    let mut furthest = 0i64;
    for _ in 0..20 {
        let r = peer_seg(&b, seq, TcpFlags::ACK, &[2; 1460]);
        seq += 1460;
        let mut out = inject(&mut s, i, now, &b, &r);
        assert_eq!(s.tcp_recv(now, hb, &mut buf).unwrap(), 1460);
        out.extend(drain(&mut s, now));
        for f in &out {
            if let Some((_, r)) = tcp_of(f) {
                if r.dst_port == b.addr.port() {
                    let edge = r.ack_number + ((r.window_len as usize) << shift);
                    let first = *first_edge.get_or_insert(edge);
                    furthest = furthest.max((edge - first) as i64);
                }
            }
        }
        check(&s);
    }
    (furthest, s.memory().tcp_pressure)
}

/// Under pressure a connection's advertised window stops growing: its right
/// edge moves no more than 4 segments past what it offered (Linux
/// __tcp_select_window), where without pressure every read moves it on.
#[test]
fn window_stops_growing_under_pressure() {
    let (calm, p0) = window_growth(false);
    let (pressed, p1) = window_growth(true);
    assert!(!p0 && p1);
    assert!(calm >= 15 * 1460, "without pressure the edge moves: {calm}");
    assert!(pressed <= 4 * 1460, "under pressure it does not: {pressed}");
}

/// Above the high mark in-order data is dropped and counted (Linux
/// TCPRcvQDrop) — except into an empty receive queue, which may go over by
/// at most TCP_FORCED_SLACK stack-wide so a waiting reader always progresses
/// (Linux sk_forced_mem_schedule).
#[test]
fn in_order_data_above_the_high_mark_is_dropped_unless_the_queue_is_empty() {
    let (mut s, i) = victim(
        MemLimits::new(1, 8, 8).unwrap(), // high 32 KiB
        MemLimits::UDP_DEFAULT,
        212_992,
    );
    let now = t0();
    let l = listen(&mut s, 16);
    let mut a = handshake(&mut s, i, now, sa(1, 40_000));
    let (_ha, _) = s.tcp_accept(l).unwrap();
    let mut b = handshake(&mut s, i, now, sa(1, 40_001));
    let (hb, _) = s.tcp_accept(l).unwrap();
    let d = vec![7u8; 1460];
    // a's reader sleeps: 22 segments fill all but 648 bytes; the 23rd drops.
    for _ in 0..23 {
        let r = peer_seg(&a, a.seq, TcpFlags::ACK, &d);
        inject(&mut s, i, now, &a, &r);
        check(&s);
        if s.stats().tcp_rcvq_drops == 0 {
            a.seq += 1460;
        }
    }
    assert_eq!(s.stats().tcp_rcvq_drops, 1);
    assert_eq!(s.memory().tcp_bytes, 22 * 1460);
    // b's queue is empty: its segment goes in by force, over the mark.
    let r = peer_seg(&b, b.seq, TcpFlags::ACK, &d);
    inject(&mut s, i, now, &b, &r);
    b.seq += 1460;
    check(&s);
    let m = s.memory();
    assert_eq!(m.tcp_bytes, 23 * 1460);
    assert!(m.tcp_bytes > m.tcp_limits.high_bytes());
    assert!(m.tcp_bytes <= m.tcp_ceiling());
    // Its next one waits for the reader.
    let r = peer_seg(&b, b.seq, TcpFlags::ACK, &d);
    inject(&mut s, i, now, &b, &r);
    assert_eq!(s.stats().tcp_rcvq_drops, 2);
    let mut buf = vec![0u8; 4096];
    assert_eq!(s.tcp_recv(now, hb, &mut buf).unwrap(), 1460);
    inject(&mut s, i, now, &b, &r);
    assert_eq!(s.stats().tcp_rcvq_drops, 2, "accepted once read");
    assert_eq!(s.tcp_recv(now, hb, &mut buf).unwrap(), 1460);
    check(&s);
}
