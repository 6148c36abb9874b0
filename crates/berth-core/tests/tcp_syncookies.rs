//! SYN cookies (RFC 4987) and the SYN queue under a flood: spoofed SYNs fill
//! a listener's SYN queue; legitimate clients still connect, with their
//! options recreated from the cookie; forged and stale cookies are refused.

mod common;

use berth_core::wire::{Ipv4Addr, SeqNumber, TcpFlags, TcpRepr};
use berth_core::{Config, Duration, IfaceId, Medium, SynCookies, TcpConfig, TcpState};
use common::*;

const PORT: u16 = 80;

fn server_cfg(seed: u64, cookies: SynCookies) -> Config {
    Config {
        seed: Some(seed),
        tcp: TcpConfig {
            syncookies: cookies,
            ..TcpConfig::default()
        },
        ..Config::default()
    }
}

/// `n` SYNs to node 1's port 80 from spoofed addresses in 192.0.2.100–.199
/// (their SYN-ACKs go nowhere: node 0 is not those hosts).
fn flood(net: &mut Net, n: usize, first: usize) {
    for i in first..first + n {
        let src = Ipv4Addr::new(192, 0, 2, 100 + (i / 50_000) as u8);
        let mut r = TcpRepr::new(
            1024 + (i % 50_000) as u16,
            PORT,
            SeqNumber((i as u32).wrapping_mul(2_654_435_761)),
            TcpFlags::SYN,
        );
        r.window_len = 64_240;
        r.max_seg_size = Some(1460);
        r.sack_permitted = true;
        r.window_scale = Some(7);
        r.timestamp = Some((i as u32, 0));
        let pkt = build_tcp(src, ip(2), &r);
        net.inject(1, IfaceId(0), &pkt);
    }
    net.pump();
}

fn syn_recv_rows(net: &Net) -> usize {
    net.nodes[1]
        .sockets()
        .iter()
        .filter(|r| r.state == "SYN-RECV")
        .count()
}

/// Connect from node 0 and return how long the handshake took, or None if it
/// did not complete within `limit`.
fn timed_connect(net: &mut Net, limit: Duration) -> Option<(berth_core::SocketHandle, Duration)> {
    let start = net.now;
    let c = net.connect(0, sa(2, PORT));
    while net.now - start <= limit {
        net.advance(Duration::from_millis(1));
        if net.nodes[0].tcp_state(c).ok() == Some(TcpState::Established) {
            return Some((c, net.now - start));
        }
    }
    None
}

/// Echo `data` through the accepted connection and check it byte for byte.
fn echo_check(
    net: &mut Net,
    c: berth_core::SocketHandle,
    s: berth_core::SocketHandle,
    data: &[u8],
) {
    let got = net.transfer((0, c), (1, s), data, Duration::from_secs(30));
    assert_eq!(got, data, "client -> server");
    let back = net.transfer((1, s), (0, c), data, Duration::from_secs(30));
    assert_eq!(back, data, "server -> client");
}

#[test]
fn flood_fills_the_syn_queue_and_clients_still_connect_through_cookies() {
    let mut net = Net::ip_pair(cfg(1), server_cfg(2, SynCookies::OnOverflow), 1500);
    let l = net.listen(1, PORT, 128);
    // An established connection from before the flood keeps working.
    let (c0, _) = timed_connect(&mut net, Duration::from_secs(1)).expect("before flood");
    net.settle();
    let (s0, _) = net.nodes[1].tcp_accept(l).expect("accept c0");

    flood(&mut net, 100_000, 0);
    assert_eq!(syn_recv_rows(&net), 128, "SYN queue full at the backlog");
    let st = net.nodes[1].stats().clone();
    assert_eq!(st.tcp_syncookies_sent, 100_000 - 128);
    assert_eq!(st.tcp_req_q_full_do_cookies, 100_000 - 128);
    assert_eq!(st.tcp_req_q_full_drop, 0);

    // During the flood: every legitimate client connects at once.
    for round in 0..20 {
        flood(&mut net, 5_000, 100_000 + round * 5_000);
        let (c, took) = timed_connect(&mut net, Duration::from_secs(1))
            .unwrap_or_else(|| panic!("client {round} locked out"));
        assert!(took < Duration::from_millis(10), "handshake took {took:?}");
        net.settle();
        let (s, _) = net.nodes[1].tcp_accept(l).expect("accepted");
        echo_check(&mut net, c, s, &pattern(3000, round as u8));
        // A TCB made from a cookie has the options of the client's SYN.
        let info = net.nodes[1].tcp_info(s).unwrap();
        assert_eq!(
            info.snd_mss,
            1460 - 12,
            "MSS from the table, less timestamps"
        );
        assert!(info.timestamps && info.sack);
        let client = net.nodes[0].tcp_info(c).unwrap();
        assert_eq!(
            info.snd_wscale, client.rcv_wscale,
            "window scale from the timestamp"
        );
        assert_eq!(info.rcv_wscale, client.snd_wscale);
        net.nodes[0].close(c).unwrap();
        net.nodes[1].close(s).unwrap();
    }
    let st = net.nodes[1].stats().clone();
    assert_eq!(st.tcp_syncookies_recv, 20, "{st:?}");
    assert_eq!(st.tcp_syncookies_failed, 0);

    // The transfer that was running before the flood is still byte-exact.
    echo_check(&mut net, c0, s0, &pattern(50_000, 9));

    // Under pressure the old half-open entries go after 2 SYN-ACK
    // retransmissions (1 s + 2 s + 4 s), not 5 (63 s) — until the queue is
    // back to half the backlog, where pressure ends (Linux
    // reqsk_timer_handler); the rest keep the full retries.
    net.advance(Duration::from_secs(8));
    assert_eq!(
        syn_recv_rows(&net),
        64,
        "flood entries down to half within 8 s"
    );
    net.advance(Duration::from_secs(60));
    assert_eq!(syn_recv_rows(&net), 0);
    // And right after the flood, a client gets a normal (queued) handshake.
    let sent = net.nodes[1].stats().tcp_syncookies_sent;
    let (c, took) = timed_connect(&mut net, Duration::from_secs(1)).expect("after flood");
    assert!(took < Duration::from_millis(10));
    assert_eq!(
        net.nodes[1].stats().tcp_syncookies_sent,
        sent,
        "no cookie needed"
    );
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    echo_check(&mut net, c, s, b"after the flood");
}

#[test]
fn cookie_without_timestamps_uses_the_table_mss_only() {
    let client = Config {
        seed: Some(3),
        tcp: TcpConfig {
            timestamps: false,
            ..TcpConfig::default()
        },
        ..Config::default()
    };
    // MTU 1400: the client offers MSS 1360; the table has 1300 below it.
    let mut net = Net::ip_pair(client, server_cfg(4, SynCookies::Always), 1400);
    let l = net.listen(1, PORT, 16);
    let (c, _) = timed_connect(&mut net, Duration::from_secs(1)).expect("connects");
    assert_eq!(syn_recv_rows(&net), 0, "Always: no half-open state");
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    let info = net.nodes[1].tcp_info(s).unwrap();
    assert_eq!(info.snd_mss, 1300);
    assert!(!info.timestamps);
    assert!(!info.sack, "SACK needs the timestamp to survive a cookie");
    assert_eq!(info.snd_wscale, 0);
    // Without a timestamp the cookie cannot keep window scaling, so the
    // SYN-ACK did not offer it: neither side scales (RFC 7323 §2.2).
    let client = net.nodes[0].tcp_info(c).unwrap();
    assert_eq!((client.snd_wscale, client.rcv_wscale), (0, 0));
    assert!(!client.sack);
    echo_check(&mut net, c, s, &pattern(200_000, 3));
    let st = net.nodes[1].stats();
    assert_eq!(st.tcp_syncookies_sent, 1);
    assert_eq!(st.tcp_syncookies_recv, 1);
    assert_eq!(st.tcp_req_q_full_do_cookies, 0, "sent because Always");
}

#[test]
fn forged_and_stale_cookies_are_refused() {
    let mut net = Net::ip_pair(cfg(5), server_cfg(6, SynCookies::Always), 1500);
    let _l = net.listen(1, PORT, 16);
    // A real cookie, kept: capture the SYN-ACK and drop the client's ACK.
    net.set_tap(|f| match seg_of(Medium::Ip, f) {
        Some(s) if s.is_pure_ack() && f.node == 0 => Action::Drop,
        _ => Action::Deliver,
    });
    let c = net.connect(0, sa(2, PORT));
    net.settle();
    net.clear_tap();
    let synack = net
        .segs()
        .into_iter()
        .find(|s| s.is_synack())
        .expect("SYN-ACK");
    let client = synack.dst;
    let ack_for = |cookie: SeqNumber, ts: Option<(u32, u32)>| {
        let mut r = TcpRepr::new(client.port(), PORT, synack.ack, TcpFlags::ACK);
        r.ack_number = cookie + 1;
        r.window_len = 1000;
        r.timestamp = ts;
        build_tcp(client.ip(), ip(2), &r)
    };
    let ts = synack.ts.map(|(val, _)| (1, val));

    // Forged: the right tuple and IRS, a wrong ISS.
    let from = net.log.len();
    let pkt = ack_for(synack.seq + 0x0100_0000, ts);
    net.inject(1, IfaceId(0), &pkt);
    net.pump();
    assert_eq!(net.nodes[1].stats().tcp_syncookies_failed, 1);
    assert!(
        net.segs_since(from).iter().any(|s| s.is_rst()),
        "answered with a reset"
    );
    assert!(net.nodes[1].sockets().iter().all(|r| r.state != "ESTAB"));

    // Stale: the real cookie, three minutes later.
    net.advance(Duration::from_secs(180));
    // Keep the listener's "sent cookies recently" window open.
    let _other = net.connect(0, sa(2, PORT));
    net.settle();
    let failed = net.nodes[1].stats().tcp_syncookies_failed;
    let pkt = ack_for(synack.seq, ts);
    net.inject(1, IfaceId(0), &pkt);
    net.pump();
    assert_eq!(net.nodes[1].stats().tcp_syncookies_failed, failed + 1);
    let _ = c;
}

#[test]
fn cookie_ack_is_checked_only_after_cookies_were_sent() {
    let mut net = Net::ip_pair(cfg(7), server_cfg(8, SynCookies::OnOverflow), 1500);
    let _l = net.listen(1, PORT, 16);
    let mut r = TcpRepr::new(4000, PORT, SeqNumber(100), TcpFlags::ACK);
    r.ack_number = SeqNumber(5000);
    let from = net.log.len();
    net.inject(1, IfaceId(0), &build_tcp(ip(1), ip(2), &r));
    net.pump();
    let st = net.nodes[1].stats();
    assert_eq!(st.tcp_syncookies_failed, 0, "no cookie was ever sent");
    assert!(net.segs_since(from).iter().any(|s| s.is_rst()));
}

#[test]
fn cookies_off_drops_syns_to_a_full_queue() {
    let mut net = Net::ip_pair(cfg(9), server_cfg(10, SynCookies::Off), 1500);
    let _l = net.listen(1, PORT, 16);
    flood(&mut net, 1_000, 0);
    let st = net.nodes[1].stats().clone();
    assert_eq!(syn_recv_rows(&net), 16);
    assert_eq!(st.tcp_syncookies_sent, 0);
    assert_eq!(st.tcp_req_q_full_drop, 1_000 - 16);
    assert_eq!(st.tcp_listen_drops, 1_000 - 16);
    // A client is locked out while the queue stays full...
    assert!(timed_connect(&mut net, Duration::from_millis(900)).is_none());
    // ...until the reduced retries clear half the flood entries (7 s); its
    // SYN retransmission then gets through.
    net.advance(Duration::from_secs(8));
    assert_eq!(net.nodes[1].stats().tcp_synack_timeouts, 8);
    assert!(timed_connect(&mut net, Duration::from_secs(4)).is_some());
}

#[test]
fn a_lightly_loaded_queue_keeps_the_full_synack_retries() {
    // 4 half-open entries against backlog 128: no pressure, 5 retransmissions
    // (1+2+4+8+16+32 = 63 s) as before.
    let mut net = Net::ip_pair(cfg(11), server_cfg(12, SynCookies::OnOverflow), 1500);
    let _l = net.listen(1, PORT, 128);
    flood(&mut net, 4, 0);
    net.advance(Duration::from_secs(30));
    assert_eq!(syn_recv_rows(&net), 4);
    net.advance(Duration::from_secs(34));
    assert_eq!(syn_recv_rows(&net), 0);
    assert_eq!(net.nodes[1].stats().tcp_synack_timeouts, 4);
}

#[test]
fn a_burst_beyond_both_queues_completes_without_resets() {
    // 100 clients at once against backlog 16, each writing 20 KB at once: the
    // SYN queue fills, the rest get cookies, and their ACKs find the accept
    // queue full. Their later segments no longer name the cookie; dropping
    // them (not resetting) lets the retransmission from IRS + 1 revalidate.
    // (On a link without jitter the clients retransmit in lockstep and 17 get
    // in per round; with 300 the last rounds outlive the cookies' 1–2 min.)
    let mut net = Net::ip_pair(cfg(13), server_cfg(14, SynCookies::OnOverflow), 1500);
    let l = net.listen(1, PORT, 16);
    const N: usize = 100;
    let clients: Vec<_> = (0..N).map(|_| net.connect(0, sa(2, PORT))).collect();
    let mut sent = vec![0usize; N];
    let mut served: Vec<(berth_core::SocketHandle, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let start = net.now;
    while served.iter().filter(|(_, got)| got.len() == 20_000).count() < N {
        assert!(net.now - start < Duration::from_secs(60), "stalled");
        let now = net.now;
        for (i, &c) in clients.iter().enumerate() {
            if net.nodes[0].tcp_state(c).ok() == Some(TcpState::Established) && sent[i] < 20_000 {
                let data = pattern(20_000, i as u8);
                if let Ok(n) = net.nodes[0].tcp_send(now, c, &data[sent[i]..]) {
                    sent[i] += n;
                }
            }
        }
        // The application accepts once per millisecond.
        while let Ok((s, _)) = net.nodes[1].tcp_accept(l) {
            served.push((s, Vec::new()));
        }
        for (s, got) in served.iter_mut() {
            while let Ok(n) = net.nodes[1].tcp_recv(now, *s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        net.advance(Duration::from_millis(1));
    }
    let mut payloads: Vec<Vec<u8>> = served.into_iter().map(|(_, g)| g).collect();
    let mut want: Vec<Vec<u8>> = (0..N).map(|i| pattern(20_000, i as u8)).collect();
    payloads.sort();
    want.sort();
    assert!(
        payloads == want,
        "every client's bytes arrived exactly once"
    );
    let cs = net.nodes[0].stats();
    let ss = net.nodes[1].stats();
    assert!(
        ss.tcp_syncookies_recv > 0 && ss.tcp_listen_overflows > 0,
        "{ss:?}"
    );
    assert_eq!(cs.tcp_estab_resets, 0, "no client was reset");
    assert_eq!(ss.tcp_out_rsts, 0);
}
