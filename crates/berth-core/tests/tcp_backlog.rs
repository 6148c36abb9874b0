//! One listening socket, backlog 8, a thousand clients and a slow application:
//! the SYN queue and the accept queue overflow, clients retry, nobody is reset,
//! everybody is served (issue 3, "1,000 concurrent clients against backlog 8").

mod common;

use berth_core::{Duration, SocketHandle, TcpState};
use common::*;
use std::collections::HashSet;

const CLIENTS: usize = 1000;
const BACKLOG: usize = 8;

struct Client {
    h: SocketHandle,
    sent: bool,
    got: Vec<u8>,
    done: bool,
}

struct Served {
    h: SocketHandle,
    got: Vec<u8>,
}

#[test]
fn thousand_clients_against_backlog_8_are_all_served() {
    let mut net = Net::ip_pair(cfg(21), cfg(22), 1500);
    let l = net.listen(1, 80, BACKLOG);
    let mut clients: Vec<Client> = Vec::new();
    let mut served: Vec<Served> = Vec::new();
    let mut accepted = 0usize;
    let mut saw_full_queue = false;
    let mut buf = vec![0u8; 4096];
    let start = net.now;
    let mut step = 0u64;
    let mut ports = HashSet::new();
    loop {
        let now = net.now;
        // Two new clients every millisecond for the first half second.
        if clients.len() < CLIENTS {
            for _ in 0..2 {
                let c = net.connect(0, sa(2, 80));
                clients.push(Client {
                    h: c,
                    sent: false,
                    got: Vec::new(),
                    done: false,
                });
            }
        }
        // The application accepts one connection every 2 ms: slower than the clients
        // arrive (2 per ms), so both queues overflow and clients must retry.
        if step.is_multiple_of(2) {
            let row = net.nodes[1]
                .sockets()
                .into_iter()
                .find(|r| r.handle == l)
                .unwrap();
            assert_eq!(row.state, "LISTEN");
            assert_eq!(row.send_q, BACKLOG, "Send-Q of a listener is its backlog");
            // Linux's accept queue holds backlog + 1 (sk_acceptq_is_full).
            assert!(row.recv_q <= BACKLOG + 1);
            if row.recv_q == BACKLOG + 1 {
                saw_full_queue = true;
            }
            if let Ok((s, _)) = net.nodes[1].tcp_accept(l) {
                accepted += 1;
                served.push(Served {
                    h: s,
                    got: Vec::new(),
                });
            }
        }
        // Echo servers: read 100 bytes, write them back, close.
        for sv in served.iter_mut().filter(|s| s.got.len() < 100) {
            while let Ok(n) = net.nodes[1].tcp_recv(now, sv.h, &mut buf) {
                if n == 0 {
                    break;
                }
                sv.got.extend_from_slice(&buf[..n]);
            }
            assert!(sv.got.len() <= 100);
            if sv.got.len() == 100 {
                let n = net.nodes[1].tcp_send(now, sv.h, &sv.got).unwrap();
                assert_eq!(n, 100);
                net.nodes[1].close(sv.h).unwrap();
            }
        }
        // Clients: send 100 bytes once connected, read the echo, close.
        for (i, c) in clients.iter_mut().enumerate().filter(|(_, c)| !c.done) {
            if let Some(e) = net.nodes[0].tcp_take_error(c.h).unwrap() {
                panic!("client {i} failed: {e}");
            }
            let st = net.nodes[0].tcp_state(c.h).unwrap();
            if !c.sent && st == TcpState::Established {
                ports.insert(net.nodes[0].tcp_local_addr(c.h).unwrap().port());
                let n = net.nodes[0]
                    .tcp_send(now, c.h, &pattern(100, i as u8))
                    .unwrap();
                assert_eq!(n, 100);
                c.sent = true;
            }
            while let Ok(n) = net.nodes[0].tcp_recv(now, c.h, &mut buf) {
                if n == 0 {
                    break;
                }
                c.got.extend_from_slice(&buf[..n]);
            }
            if c.got.len() == 100 {
                assert_eq!(c.got, pattern(100, i as u8), "client {i} echo");
                net.nodes[0].close(c.h).unwrap();
                c.done = true;
            }
        }
        if clients.len() == CLIENTS && clients.iter().all(|c| c.done) {
            break;
        }
        assert!(
            net.now - start < Duration::from_secs(120),
            "not everybody served: {} of {CLIENTS} done, {accepted} accepted",
            clients.iter().filter(|c| c.done).count()
        );
        net.advance(Duration::from_millis(1));
        step += 1;
    }
    assert_eq!(accepted, CLIENTS);
    assert!(saw_full_queue, "the accept queue filled up");
    assert!(ports.len() > CLIENTS / 2, "distinct ephemeral ports");
    // Let every close finish (TIME-WAIT is 60 s).
    net.advance(Duration::from_secs(70));
    let cs = net.nodes[0].stats().clone();
    let ss = net.nodes[1].stats().clone();
    assert!(ss.tcp_listen_overflows > 0, "{ss:?}");
    assert!(ss.tcp_listen_drops > 0);
    assert_eq!(cs.tcp_estab_resets, 0, "no client saw a reset");
    assert_eq!(cs.tcp_attempt_fails, 0);
    assert_eq!(cs.tcp_timeouts, 0);
    assert_eq!(ss.tcp_out_rsts, 0, "the server never sent a reset");
    assert_eq!(cs.tcp_out_rsts, 0);
    assert_eq!(cs.tcp_active_opens, CLIENTS as u64);
    assert!(
        cs.tcp_retrans_segs + cs.tcp_rto_events > 0,
        "clients had to retry"
    );
    // Everything closed: only the listener is left.
    let rows = net.nodes[1].sockets();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].recv_q, 0);
    assert!(net.nodes[0].sockets().is_empty());
}

#[test]
fn listener_recv_q_counts_the_accept_queue() {
    let mut net = Net::ip_pair(cfg(23), cfg(24), 1500);
    let l = net.listen(1, 80, 3);
    for _ in 0..5 {
        net.connect(0, sa(2, 80));
    }
    net.settle();
    let row = |net: &Net| {
        net.nodes[1]
            .sockets()
            .into_iter()
            .find(|r| r.handle == l)
            .unwrap()
    };
    // backlog 3 queues 4, as Linux does; the fifth client overflows.
    assert_eq!(row(&net).recv_q, 4);
    assert_eq!(row(&net).send_q, 3);
    assert!(net.nodes[1].stats().tcp_listen_overflows >= 1);
    net.nodes[1].tcp_accept(l).unwrap();
    assert_eq!(row(&net).recv_q, 3);
    // The dropped ones come back on their retransmission timers.
    net.advance(Duration::from_secs(4));
    let mut n = 0;
    while net.nodes[1].tcp_accept(l).is_ok() {
        n += 1;
        net.advance(Duration::from_secs(4));
    }
    assert_eq!(n, 4, "the other four connections arrive eventually");
    assert_eq!(row(&net).recv_q, 0);
}
