//! Loads libberth_packetdrill.so the way packetdrill's --so_filename mode does
//! (dlopen, packetdrill_interface_init on a zeroed table) and drives berth
//! through the function pointers: packets in with netdev_send, packets out
//! with netdev_receive, time on the adapter's virtual clock.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use libc::{c_int, epoll_event, pollfd};

const PORT: u16 = 8080;
const PEER_ISN: u32 = 1000;
const WAIT: Duration = Duration::from_secs(5);

// Linux's tcpi_state values.
const TCP_ESTABLISHED: u8 = 1;
const TCP_FIN_WAIT1: u8 = 4;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE_WAIT: u8 = 8;

/// The next packet berth sent, parsed (checksums and lengths verified).
fn recv(d: &Drill) -> (Seg, Vec<u8>, i64) {
    let (b, t) = d
        .netdev_receive()
        .expect("berth sent no packet before the adapter's deadline");
    let s =
        Seg::parse(&b).unwrap_or_else(|e| panic!("packet from berth is malformed: {e}: {b:02x?}"));
    (s, b, t)
}

/// Compare a whole packet with the one we expect, naming the fields that differ.
fn assert_bytes(what: &str, actual: &[u8], expected: &Seg) {
    let want = expected.to_bytes();
    if actual != want.as_slice() {
        let got = Seg::parse(actual)
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|e| e);
        panic!("{what}: bytes differ\n   got {actual:02x?}\n  want {want:02x?}\n   got {got}\n  want {expected:?}");
    }
}

fn send(d: &Drill, s: &Seg) {
    let r = d.netdev_send(&s.to_bytes());
    assert!(r >= 0, "netdev_send of a valid packet failed: {r}");
}

fn tcp_state(d: &Drill, fd: i32) -> u8 {
    let info = d
        .getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, 256)
        .unwrap_or_else(|e| panic!("getsockopt TCP_INFO: errno {e}"));
    assert!(info.len() >= 8, "TCP_INFO returned {} bytes", info.len());
    info[0]
}

/// A listening socket on 0.0.0.0:8080 with SO_REUSEADDR and the given backlog.
fn listener(d: &Drill, backlog: i32) -> i32 {
    let fd = d
        .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
        .expect("socket") as i32;
    assert_eq!(
        d.setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1),
        Ok(0)
    );
    assert_eq!(d.bind(fd, Ipv4Addr::UNSPECIFIED, PORT), Ok(0));
    assert_eq!(d.listen(fd, backlog), Ok(0));
    fd
}

/// Our side of one connection: the next sequence numbers both ways and the
/// timestamps to send and echo.
struct Conn {
    fd: i32,
    port: u16,
    snd_nxt: u32,
    rcv_nxt: u32,
    ts: bool,
    ts_val: u32,
    ts_recent: u32,
}

impl Conn {
    fn seg(&mut self, flags: u8) -> Seg {
        let s = Seg::inbound(self.port, PORT, self.snd_nxt, self.rcv_nxt, flags, 257);
        if self.ts {
            self.ts_val += 10;
            s.with_opts(&[
                TcpOpt::Nop,
                TcpOpt::Nop,
                TcpOpt::Ts(self.ts_val, self.ts_recent),
            ])
        } else {
            s
        }
    }

    /// Receive berth's next segment and check it belongs to this connection
    /// with the expected flags, sequence, ack and timestamp echo.
    fn expect(&mut self, d: &Drill, flags: u8, len: usize) -> (Seg, i64) {
        let (s, _, t) = recv(d);
        let what = format!("segment to port {}", self.port);
        assert_eq!(
            (s.src, s.dst, s.sport, s.dport),
            (LOCAL_IP.into(), REMOTE_IP.into(), PORT, self.port),
            "{what}: addresses"
        );
        assert_eq!(
            flags_str(s.flags),
            flags_str(flags),
            "{what}: flags ({s:?})"
        );
        assert_eq!(s.seq, self.rcv_nxt, "{what}: seq");
        assert_eq!(s.ack, self.snd_nxt, "{what}: ack");
        assert_eq!(s.payload.len(), len, "{what}: payload length");
        assert_eq!((s.ttl, s.df, s.tos), (64, true, 0), "{what}: TTL/DF/TOS");
        if self.ts {
            assert_eq!(
                s.opts.len(),
                12,
                "{what}: expected NOP,NOP,TS only: {:?}",
                s.options()
            );
            let (val, ecr) = s.ts().expect("timestamp option");
            assert_eq!(&s.opts[..4], &[1, 1, 8, 10], "{what}: option layout");
            assert_eq!(ecr, self.ts_val, "{what}: TS ecr echoes our last TS val");
            assert!(
                val.wrapping_sub(self.ts_recent) < 1 << 31,
                "{what}: TS val went backwards"
            );
            self.ts_recent = val;
        } else {
            assert!(
                s.opts.is_empty(),
                "{what}: unexpected options {:?}",
                s.options()
            );
        }
        let syn_fin = u32::from(s.flags & (SYN | FIN) != 0);
        self.rcv_nxt = s.seq.wrapping_add(s.payload.len() as u32 + syn_fin);
        (s, t)
    }
}

fn syn_opts(ts: bool, val: u32) -> Vec<TcpOpt> {
    if ts {
        // Linux's layout: SACK-permitted shares a word with the timestamp.
        vec![
            TcpOpt::Mss(1000),
            TcpOpt::SackOk,
            TcpOpt::Ts(val, 0),
            TcpOpt::Nop,
            TcpOpt::Ws(7),
        ]
    } else {
        vec![
            TcpOpt::Mss(1000),
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::SackOk,
            TcpOpt::Nop,
            TcpOpt::Ws(7),
        ]
    }
}

/// Passive open from `port`: SYN, SYN-ACK, `rtt_us` later the ACK, then accept.
fn open_passive(d: &Arc<Drill>, lfd: i32, port: u16, ts: bool, rtt_us: u32) -> Conn {
    let mut c = Conn {
        fd: -1,
        port,
        snd_nxt: PEER_ISN,
        rcv_nxt: 0,
        ts,
        ts_val: 500,
        ts_recent: 0,
    };
    send(
        d,
        &Seg::inbound(port, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(ts, c.ts_val)),
    );
    let (s, _, _) = recv(d);
    assert_eq!(s.flags, SYN | ACK, "SYN-ACK expected: {s:?}");
    assert_eq!(s.ack, PEER_ISN + 1, "SYN-ACK acks our SYN");
    c.snd_nxt = PEER_ISN + 1;
    c.rcv_nxt = s.seq.wrapping_add(1);
    if ts {
        c.ts_recent = s.ts().expect("SYN-ACK carries TS when the SYN did").0;
    }
    if rtt_us > 0 {
        d.usleep(rtt_us).expect("usleep");
    }
    let ack = c.seg(ACK);
    send(d, &ack);
    let d2 = d.clone();
    let (fd, ip, p, _) =
        quick("accept", move || d2.accept(lfd)).expect("accept after the handshake");
    assert_eq!((ip, p), (REMOTE_IP, port), "accept's peer address");
    c.fd = fd as i32;
    c
}

// a. passive open, every byte of the SYN-ACK, accept blocking on a second thread.
#[test]
fn passive_open_blocking_accept() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);

    let d2 = d.clone();
    let acc = spawn_call(move || d2.accept(lfd));
    assert_eq!(
        acc.settle(WAIT),
        Ok(Activity::Blocked),
        "accept must block on an empty queue"
    );

    let syn = Seg::inbound(40000, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(true, 500));
    let before = d.now_us();
    send(&d, &syn);
    let (b, t_synack) = d.netdev_receive().expect("SYN-ACK");
    assert!(
        (before..before + 1000).contains(&t_synack),
        "SYN-ACK sent at {t_synack}, SYN injected at {before}: it should go out at once"
    );
    let s = Seg::parse(&b).unwrap_or_else(|e| panic!("SYN-ACK malformed: {e}: {b:02x?}"));
    // Only the IP ID, berth's ISN and its TS val are berth's choice.
    let isn = s.seq;
    let (tsval, _) = s.ts().expect("SYN-ACK has a timestamp option");
    let want = Seg {
        src: LOCAL_IP.into(),
        dst: REMOTE_IP.into(),
        tos: 0,
        ip_id: s.ip_id,
        df: true,
        ttl: 64,
        sport: PORT,
        dport: 40000,
        seq: isn,
        ack: PEER_ISN + 1,
        flags: SYN | ACK,
        win: 65535,
        urg: 0,
        opts: encode_opts(&[
            TcpOpt::Mss(1460),
            TcpOpt::SackOk,
            TcpOpt::Ts(tsval, 500),
            TcpOpt::Nop,
            TcpOpt::Ws(8),
        ]),
        payload: vec![],
    };
    assert_bytes("SYN-ACK", &b, &want);
    assert_eq!(b.len(), 60);
    assert_eq!(b[0], 0x45, "version 4, IHL 5");
    assert_eq!(&b[6..8], &[0x40, 0], "DF, no fragment offset");
    assert_eq!(b[32], 0xa0, "data offset 10 words");

    // The SYN alone must not complete accept.
    assert_eq!(
        acc.settle(WAIT),
        Ok(Activity::Blocked),
        "accept returned before the final ACK"
    );
    assert!(!acc.is_done());

    d.usleep(100_000).expect("usleep");
    let ack = Seg::inbound(40000, PORT, PEER_ISN + 1, isn.wrapping_add(1), ACK, 257).with_opts(&[
        TcpOpt::Nop,
        TcpOpt::Nop,
        TcpOpt::Ts(510, tsval),
    ]);
    send(&d, &ack);
    let (fd, ip, port, len) = acc
        .join(WAIT)
        .expect("accept returns after the final ACK")
        .expect("accept succeeds");
    assert!(
        fd >= 0 && fd as i32 != lfd,
        "accept returned fd {fd} (listener {lfd})"
    );
    assert_eq!(
        (ip, port, len),
        (REMOTE_IP, 40000, size_of_sin()),
        "peer address from accept"
    );
    assert_eq!(tcp_state(&d, fd as i32), TCP_ESTABLISHED);

    // The connection continues from ISN+1 with a non-decreasing TS val.
    assert_eq!(d.write(fd as i32, b"x"), Ok(1));
    let (s, _, _) = recv(&d);
    assert_eq!(
        s.seq,
        isn.wrapping_add(1),
        "first data byte follows the ISN"
    );
    let (v, e) = s.ts().expect("TS on data");
    assert!(
        v.wrapping_sub(tsval) < 1 << 31,
        "TS val went backwards: {tsval} then {v}"
    );
    assert_eq!(e, 510);
}

// b. data both ways, byte for byte, with the quick ACK and FIONREAD.
#[test]
fn data_both_ways() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);
    let mut c = open_passive(&d, lfd, 40001, true, 10_000);

    let data: Vec<u8> = (0..100u8).collect();
    assert_eq!(d.write(c.fd, &data), Ok(100));
    let (b, _) = d.netdev_receive().expect("data segment");
    let s = Seg::parse(&b).unwrap_or_else(|e| panic!("{e}"));
    let (val, _) = s.ts().expect("TS on data");
    assert!(s.win > 0, "berth advertises a zero window");
    let want = Seg {
        src: LOCAL_IP.into(),
        dst: REMOTE_IP.into(),
        tos: 0,
        ip_id: s.ip_id,
        df: true,
        ttl: 64,
        sport: PORT,
        dport: c.port,
        seq: c.rcv_nxt,
        ack: c.snd_nxt,
        flags: PSH | ACK,
        win: s.win,
        urg: 0,
        opts: encode_opts(&[TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Ts(val, c.ts_val)]),
        payload: data.clone(),
    };
    assert_bytes("data segment", &b, &want);
    assert!(val.wrapping_sub(c.ts_recent) < 1 << 31);
    c.ts_recent = val;
    c.rcv_nxt += 100;
    assert_eq!(
        d.ioctl_int(c.fd, SIOCOUTQ),
        Ok(100),
        "SIOCOUTQ: 100 bytes unacknowledged"
    );

    let incoming: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
    let seg = c.seg(PSH | ACK).with_payload(&incoming);
    let before = d.now_us();
    send(&d, &seg);
    c.snd_nxt += 200;
    let (ack, t) = c.expect(&d, ACK, 0);
    assert!(
        t - before < 1000,
        "first data of a connection is ACKed at once (quick ACK), not after {} µs",
        t - before
    );
    assert_eq!(ack.ack, PEER_ISN + 1 + 200);
    assert_eq!(
        d.ioctl_int(c.fd, SIOCOUTQ),
        Ok(0),
        "SIOCOUTQ after the peer's ACK"
    );
    assert_eq!(
        d.ioctl_int(c.fd, FIONREAD),
        Ok(200),
        "FIONREAD before the read"
    );
    // MSG_PEEK copies without consuming.
    let mut peek = vec![0u8; 50];
    assert_eq!(d.recv(c.fd, &mut peek, libc::MSG_PEEK), Ok(50));
    assert_eq!(&peek[..], &incoming[..50]);
    assert_eq!(
        d.ioctl_int(c.fd, FIONREAD),
        Ok(200),
        "FIONREAD unchanged by a peek"
    );

    let mut buf = vec![0u8; 1000];
    assert_eq!(d.read(c.fd, &mut buf), Ok(200));
    assert_eq!(&buf[..200], &incoming[..]);
    assert_eq!(d.ioctl_int(c.fd, FIONREAD), Ok(0));

    let fl = d.fcntl(c.fd, libc::F_GETFL, 0).expect("F_GETFL");
    assert_eq!(
        fl & libc::O_NONBLOCK as i64,
        0,
        "accepted socket starts blocking"
    );
    assert_eq!(
        d.fcntl(
            c.fd,
            libc::F_SETFL,
            (fl as usize) | libc::O_NONBLOCK as usize
        ),
        Ok(0)
    );
    assert_ne!(
        d.fcntl(c.fd, libc::F_GETFL, 0).expect("F_GETFL") & libc::O_NONBLOCK as i64,
        0
    );
    assert_eq!(
        d.read(c.fd, &mut buf),
        Err(libc::EAGAIN),
        "nonblocking read with nothing queued"
    );
}

// c. retransmission timeout on the virtual clock.
//
// The handshake gives berth one RTT sample: SYN-ACK to ACK = 100 ms. RFC 6298
// (2.2): SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR = 300 ms, above the
// 200 ms minimum; Linux computes the same 300 ms. Then the RTO doubles (5.5).
#[test]
fn retransmission_timeout_from_handshake_rtt() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);
    let mut c = open_passive(&d, lfd, 40002, true, 100_000);

    let data = vec![0x5au8; 500];
    assert_eq!(d.write(c.fd, &data), Ok(500));
    let (b1, t1) = d.netdev_receive().expect("first transmission");
    let s1 = Seg::parse(&b1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s1.seq, s1.payload.len()), (c.rcv_nxt, 500));

    let (b2, t2) = d.netdev_receive().expect("retransmission");
    let rto = t2 - t1;
    assert!(
        (300_000 - 1000..=300_000 + 4000).contains(&rto),
        "first retransmission {rto} µs after the send; expected 300 ms (RTT 100 ms)"
    );
    same_but_ts_id(&b1, &b2);

    let (b3, t3) = d.netdev_receive().expect("second retransmission");
    assert!(
        (600_000 - 1000..=600_000 + 4000).contains(&(t3 - t2)),
        "second retransmission {} µs after the first; expected the doubled RTO, 600 ms",
        t3 - t2
    );
    same_but_ts_id(&b1, &b3);

    // The ACK stops the timer; new data goes out at once.
    c.ts_recent = Seg::parse(&b3)
        .ok()
        .and_then(|s| s.ts())
        .map(|t| t.0)
        .unwrap_or(c.ts_recent);
    c.rcv_nxt += 500;
    let ack = c.seg(ACK);
    send(&d, &ack);
    let before = d.now_us();
    assert_eq!(d.write(c.fd, b"more"), Ok(4));
    let (s, t) = c.expect(&d, PSH | ACK, 4);
    assert!(
        t - before < 1000,
        "new data after the ACK waited {} µs",
        t - before
    );
    assert_eq!(s.payload, b"more");
}

/// A retransmission must repeat the segment: only the IP ID, the TS val and
/// the two checksums may change.
fn same_but_ts_id(a: &[u8], b: &[u8]) {
    assert_eq!(a.len(), b.len(), "retransmission has a different length");
    let sa = Seg::parse(a).unwrap_or_else(|e| panic!("{e}"));
    let sb = Seg::parse(b).unwrap_or_else(|e| panic!("{e}"));
    let mut x = sa.clone();
    x.ip_id = sb.ip_id;
    let (va, ea) = sa.ts().expect("TS");
    let (vb, eb) = sb.ts().expect("TS");
    assert_eq!(ea, eb, "retransmission echoes a different TS ecr");
    assert!(vb.wrapping_sub(va) < 1 << 31, "TS val went backwards");
    x.opts = encode_opts(&[TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Ts(vb, eb)]);
    assert_eq!(
        sa.opts,
        encode_opts(&[TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Ts(va, ea)])
    );
    assert_eq!(x, sb, "retransmission differs beyond IP ID and TS val");
}

// d. active open, nonblocking: EINPROGRESS, the SYN's bytes, poll for POLLOUT.
#[test]
fn active_open_nonblocking() {
    let d = Drill::load("");
    let fd = d
        .socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
            libc::IPPROTO_TCP,
        )
        .expect("socket") as i32;
    assert_ne!(
        d.fcntl(fd, libc::F_GETFL, 0).expect("F_GETFL") & libc::O_NONBLOCK as i64,
        0,
        "SOCK_NONBLOCK honoured"
    );
    let before = d.now_us();
    assert_eq!(d.connect(fd, REMOTE_IP, PORT), Err(libc::EINPROGRESS));
    let (b, t) = d.netdev_receive().expect("SYN");
    assert!(t - before < 1000, "SYN {} µs after connect", t - before);
    let s = Seg::parse(&b).unwrap_or_else(|e| panic!("SYN malformed: {e}"));
    let (tsval, _) = s.ts().expect("SYN has a timestamp");
    assert!(s.sport >= 1024, "ephemeral port {}", s.sport);
    let want = Seg {
        src: LOCAL_IP.into(),
        dst: REMOTE_IP.into(),
        tos: 0,
        ip_id: s.ip_id,
        df: true,
        ttl: 64,
        sport: s.sport,
        dport: PORT,
        seq: s.seq,
        ack: 0,
        flags: SYN,
        win: 65535,
        urg: 0,
        opts: encode_opts(&[
            TcpOpt::Mss(1460),
            TcpOpt::SackOk,
            TcpOpt::Ts(tsval, 0),
            TcpOpt::Nop,
            TcpOpt::Ws(8),
        ]),
        payload: vec![],
    };
    assert_bytes("SYN", &b, &want);

    let mut pfd = [pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    }];
    assert_eq!(d.poll(&mut pfd, 0), Ok(0), "not writable while SYN-SENT");
    // Linux: a second connect while the first is in progress.
    assert_eq!(d.connect(fd, REMOTE_IP, PORT), Err(libc::EALREADY));

    let isn = s.seq;
    let synack = Seg::inbound(PORT, s.sport, 5000, isn.wrapping_add(1), SYN | ACK, 65535)
        .with_opts(&[
            TcpOpt::Mss(1460),
            TcpOpt::SackOk,
            TcpOpt::Ts(900, tsval),
            TcpOpt::Nop,
            TcpOpt::Ws(7),
        ]);
    let before = d.now_us();
    send(&d, &synack);
    let (b, t) = d.netdev_receive().expect("ACK of the SYN-ACK");
    assert!(t - before < 1000, "handshake ACK {} µs late", t - before);
    let a = Seg::parse(&b).unwrap_or_else(|e| panic!("{e}"));
    let (v, _) = a.ts().expect("TS on the ACK");
    let want = Seg {
        ip_id: a.ip_id,
        seq: isn.wrapping_add(1),
        ack: 5001,
        flags: ACK,
        win: a.win,
        opts: encode_opts(&[TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Ts(v, 900)]),
        ..want
    };
    assert_bytes("handshake ACK", &b, &want);
    assert!(a.win > 0);

    let mut pfd = [pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    }];
    assert_eq!(d.poll(&mut pfd, 0), Ok(1));
    assert_eq!(pfd[0].revents & libc::POLLOUT, libc::POLLOUT);
    assert_eq!(
        d.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR),
        Ok(0)
    );
    assert_eq!(tcp_state(&d, fd), TCP_ESTABLISHED);
    assert_eq!(d.connect(fd, REMOTE_IP, PORT), Err(libc::EISCONN));
}

// d'. blocking connect on a second thread completes when the SYN-ACK arrives.
#[test]
fn active_open_blocking_connect() {
    let d = Drill::load("");
    let fd = d
        .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
        .expect("socket") as i32;
    let d2 = d.clone();
    let conn = spawn_call(move || d2.connect(fd, REMOTE_IP, PORT));
    assert_eq!(
        conn.settle(WAIT),
        Ok(Activity::Blocked),
        "blocking connect must wait for the SYN-ACK"
    );
    let (s, _, _) = recv(&d);
    assert_eq!(s.flags, SYN);
    assert!(!conn.is_done());
    let synack = Seg::inbound(PORT, s.sport, 7000, s.seq.wrapping_add(1), SYN | ACK, 5792)
        .with_opts(&[
            TcpOpt::Mss(1460),
            TcpOpt::Nop,
            TcpOpt::Ws(2),
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::SackOk,
        ]);
    send(&d, &synack);
    assert_eq!(conn.join(WAIT).expect("connect returns"), Ok(0));
    let (a, _, _) = recv(&d);
    assert_eq!((a.flags, a.seq, a.ack), (ACK, s.seq.wrapping_add(1), 7001));
    assert!(
        a.opts.is_empty(),
        "no TS negotiated, so no options: {:?}",
        a.options()
    );
}

// d''. connect refused: RST|ACK to the SYN.
#[test]
fn connect_refused() {
    let d = Drill::load("");
    let fd = d
        .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
        .expect("socket") as i32;
    let d2 = d.clone();
    let conn = spawn_call(move || d2.connect(fd, REMOTE_IP, PORT));
    assert_eq!(conn.settle(WAIT), Ok(Activity::Blocked));
    let (s, _, _) = recv(&d);
    send(
        &d,
        &Seg::inbound(PORT, s.sport, 0, s.seq.wrapping_add(1), RST | ACK, 0),
    );
    assert_eq!(
        conn.join(WAIT).expect("connect returns"),
        Err(libc::ECONNREFUSED)
    );
}

// e. half-close: shutdown(SHUT_WR) through FIN-WAIT-1, FIN-WAIT-2 (still
// receiving) to TIME-WAIT, each state read from TCP_INFO.
#[test]
fn shutdown_write_then_peer_close() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);
    let mut c = open_passive(&d, lfd, 40003, true, 10_000);

    assert_eq!(d.shutdown(c.fd, libc::SHUT_WR), Ok(0));
    c.expect(&d, FIN | ACK, 0);
    assert_eq!(tcp_state(&d, c.fd), TCP_FIN_WAIT1);
    let ack = c.seg(ACK);
    send(&d, &ack);
    assert_eq!(tcp_state(&d, c.fd), TCP_FIN_WAIT2);
    assert_eq!(
        d.write(c.fd, b"late"),
        Err(libc::EPIPE),
        "write after SHUT_WR"
    );

    // Half-closed: the peer's data still arrives.
    let seg = c.seg(PSH | ACK).with_payload(b"still here");
    send(&d, &seg);
    c.snd_nxt += 10;
    c.expect(&d, ACK, 0);
    let mut buf = [0u8; 64];
    assert_eq!(d.read(c.fd, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"still here");

    let fin = c.seg(FIN | ACK);
    let before = d.now_us();
    send(&d, &fin);
    c.snd_nxt += 1;
    let (_, t) = c.expect(&d, ACK, 0);
    assert!(
        t - before < 1000,
        "FIN in FIN-WAIT-2 is ACKed at once (Linux), not after {} µs",
        t - before
    );
    assert_eq!(tcp_state(&d, c.fd), TCP_TIME_WAIT);
    assert_eq!(d.read(c.fd, &mut buf), Ok(0), "EOF after the peer's FIN");
    assert_eq!(d.close(c.fd), Ok(0));
}

// e'. passive close: the peer's FIN first (CLOSE-WAIT), we may still write,
// then close sends our FIN.
#[test]
fn peer_fin_then_close() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);
    let mut c = open_passive(&d, lfd, 40004, false, 10_000);

    let fin = c.seg(FIN | ACK);
    let before = d.now_us();
    send(&d, &fin);
    c.snd_nxt += 1;
    let (_, t) = c.expect(&d, ACK, 0);
    assert!(
        t - before <= 40_000 + 4000,
        "FIN ACKed {} µs later; at most the 40 ms delayed ACK",
        t - before
    );
    assert_eq!(tcp_state(&d, c.fd), TCP_CLOSE_WAIT);
    let mut buf = [0u8; 16];
    assert_eq!(d.read(c.fd, &mut buf), Ok(0), "EOF");
    assert_eq!(d.write(c.fd, b"bye"), Ok(3), "CLOSE-WAIT can still send");
    c.expect(&d, PSH | ACK, 3);
    assert_eq!(d.close(c.fd), Ok(0));
    c.expect(&d, FIN | ACK, 0);
    let ack = c.seg(ACK);
    send(&d, &ack);
    assert_eq!(
        d.read(c.fd, &mut buf),
        Err(libc::EBADF),
        "descriptor is gone after close"
    );
}

// e''. active close with close(): FIN, the peer's FIN+ACK, our ACK; a
// retransmitted FIN in TIME-WAIT is ACKed again.
#[test]
fn close_active_time_wait() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);
    let mut c = open_passive(&d, lfd, 40005, false, 10_000);
    assert_eq!(d.close(c.fd), Ok(0));
    c.expect(&d, FIN | ACK, 0);
    let finack = c.seg(FIN | ACK);
    send(&d, &finack);
    c.snd_nxt += 1;
    c.expect(&d, ACK, 0);
    // Our FIN again, as if the ACK were lost: TIME-WAIT answers it.
    c.snd_nxt -= 1;
    let again = c.seg(FIN | ACK);
    send(&d, &again);
    c.snd_nxt += 1;
    let (s, _) = c.expect(&d, ACK, 0);
    assert_eq!(s.ack, PEER_ISN + 2);
}

// f. bad input never crashes; unsupported calls fail with the right errno.
#[test]
fn bad_input_and_unsupported_calls() {
    let d = Drill::load("");
    let lfd = listener(&d, 4);

    let good = Seg::inbound(40010, PORT, PEER_ISN, 0, SYN, 32792)
        .with_opts(&syn_opts(false, 0))
        .to_bytes();
    let _ = d.netdev_send(&[]);
    let _ = d.netdev_send(&good[..10]); // truncated IP header
    let _ = d.netdev_send(&good[..30]); // truncated TCP header
    let mut bad_ip = good.clone();
    bad_ip[10] ^= 0xff;
    let _ = d.netdev_send(&bad_ip);
    let mut bad_tcp = good.clone();
    bad_tcp[36] ^= 0xff;
    let _ = d.netdev_send(&bad_tcp);
    let mut long = good.clone();
    long[2..4].copy_from_slice(&2000u16.to_be_bytes()); // claims more than is there
    let _ = d.netdev_send(&long);
    let mut v6 = good.clone();
    v6[0] = 0x65;
    let _ = d.netdev_send(&v6);
    let mut doff = good.clone();
    doff[32] = 0xf0; // data offset past the end
    let _ = d.netdev_send(&doff);

    // None of those produced a SYN-ACK: the next packet answers this SYN.
    send(
        &d,
        &Seg::inbound(40011, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(false, 0)),
    );
    let (s, _, _) = recv(&d);
    assert_eq!(
        (s.flags, s.dport),
        (SYN | ACK, 40011),
        "only the valid SYN is answered: {s:?}"
    );

    assert_eq!(d.pipe(), Err(libc::ENOSYS));
    assert_eq!(d.splice(lfd, lfd, 10), Err(libc::ENOSYS));
    assert_eq!(
        d.socket(libc::AF_UNIX, libc::SOCK_STREAM, 0),
        Err(libc::EAFNOSUPPORT)
    );
    let mut buf = [0u8; 8];
    assert_eq!(d.read(987_654, &mut buf), Err(libc::EBADF));
    assert_eq!(d.close(987_654), Err(libc::EBADF));
    assert_eq!(
        d.getsockopt_int(987_654, libc::SOL_SOCKET, libc::SO_ERROR),
        Err(libc::EBADF)
    );
    // Linux: reading a listening socket is ENOTCONN; a short sockaddr is EINVAL.
    assert_eq!(d.read(lfd, &mut buf), Err(libc::ENOTCONN));
    let fd = d
        .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
        .expect("socket") as i32;
    let sa = sockaddr_in(LOCAL_IP, 9000);
    assert_eq!(
        d.bind_raw(fd, &sa as *const _ as *const libc::sockaddr, 3),
        Err(libc::EINVAL)
    );
}

#[test]
fn bad_flags_fail_every_call_with_einval() {
    for flags in [
        "mtu=banana",
        "nonsense=1",
        "local=300.1.1.1",
        "profile=windows",
    ] {
        let d = Drill::load(flags);
        assert_eq!(
            d.socket(libc::AF_INET, libc::SOCK_STREAM, 0),
            Err(libc::EINVAL),
            "flags {flags:?}"
        );
        assert_eq!(d.listen(3, 1), Err(libc::EINVAL), "flags {flags:?}");
    }
}

#[test]
fn good_flags_are_accepted() {
    let d = Drill::load(
        "local=192.168.0.1,prefix=16,gateway=192.168.0.2,mtu=1500,seed=7,profile=linux,deadline=10",
    );
    let fd = d
        .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
        .expect("socket with full flags");
    assert!(fd >= 0);
    // run_all.py's addresses for each --ip_version (its IPv4 gateway is the
    // local address itself), in packetdrill's own flag names.
    for flags in [
        "ip_version=ipv4,local_ip=192.168.0.1,gateway_ip=192.168.0.1,netmask_ip=255.255.0.0,remote_ip=192.0.2.1",
        "ip_version=ipv4-mapped-ipv6,local_ip=192.168.0.1,gateway_ip=192.168.0.1,netmask_ip=255.255.0.0",
        "ip_version=ipv6,mtu=1520,local_ip=fd3d:0a0b:17d6::1,gateway_ip=fd3d:0a0b:17d6:8888::1,remote_ip=fd3d:fa7b:d17d::1",
    ] {
        let d = Drill::load(flags);
        let v6 = flags.contains("ip_version=ipv6");
        let remote: IpAddr = if v6 { V6_REMOTE.into() } else { REMOTE_IP.into() };
        let local: IpAddr = if v6 { V6_LOCAL.into() } else { LOCAL_IP.into() };
        let fd = d
            .socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)
            .expect("socket") as i32;
        let to = match remote {
            IpAddr::V4(a) => sa(a.to_ipv6_mapped(), 80),
            IpAddr::V6(a) => sa(a, 80),
        };
        assert_eq!(d.connect_addr(fd, to), Err(libc::EINPROGRESS), "{flags}");
        let (s, _, _) = recv(&d);
        assert_eq!((s.src, s.dst, s.flags), (local, remote, SYN), "{flags}");
        assert_eq!(s.options().expect("options").first(), Some(&TcpOpt::Mss(1460)), "{flags}");
    }
}

// g. epoll: a listener reported readable once a handshake completes, both by a
// polling epoll_wait and by one blocked on a second thread.
#[test]
fn epoll_reports_accept_ready() {
    let d = Drill::load("");
    let lfd = listener(&d, 4);
    let ep = d.epoll_create(1).expect("epoll_create") as i32;
    let ev = epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0xfeed_0000 + lfd as u64,
    };
    assert_eq!(d.epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, Some(ev)), Ok(0));
    assert_eq!(
        d.epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, Some(ev)),
        Err(libc::EEXIST)
    );
    assert_eq!(
        d.epoll_wait(ep, 8, 0).expect("epoll_wait").len(),
        0,
        "nothing ready yet"
    );

    let d2 = d.clone();
    let waiter = spawn_call(move || d2.epoll_wait(ep, 8, -1));
    assert_eq!(
        waiter.settle(WAIT),
        Ok(Activity::Blocked),
        "epoll_wait(-1) must block"
    );

    send(
        &d,
        &Seg::inbound(40020, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(false, 0)),
    );
    let (s, _, _) = recv(&d);
    assert_eq!(
        waiter.settle(WAIT),
        Ok(Activity::Blocked),
        "a SYN alone does not make the listener readable"
    );
    send(
        &d,
        &Seg::inbound(40020, PORT, PEER_ISN + 1, s.seq.wrapping_add(1), ACK, 257),
    );
    let evs = waiter
        .join(WAIT)
        .expect("epoll_wait returns")
        .expect("epoll_wait succeeds");
    assert_eq!(evs.len(), 1);
    let (events, data) = (evs[0].events, evs[0].u64);
    assert_eq!(events & libc::EPOLLIN as u32, libc::EPOLLIN as u32);
    assert_eq!(
        data,
        0xfeed_0000 + lfd as u64,
        "epoll data returned as registered"
    );

    let evs = d.epoll_wait(ep, 8, 0).expect("epoll_wait");
    assert_eq!(evs.len(), 1, "level-triggered: still ready until accept");
    let d3 = d.clone();
    let (fd, _, _, _) = quick("accept", move || d3.accept(lfd)).expect("accept");
    assert!(fd >= 0);
    assert_eq!(
        d.epoll_wait(ep, 8, 0).expect("epoll_wait").len(),
        0,
        "not ready after accept"
    );
    assert_eq!(d.epoll_ctl(ep, libc::EPOLL_CTL_DEL, lfd, None), Ok(0));
    assert_eq!(d.close(ep), Ok(0));
}

// Not from the contract's list but part of its surface: setsockopt values
// read back, and a blocking read woken by data.
#[test]
fn socket_options_and_blocking_read() {
    let d = Drill::load("");
    let lfd = listener(&d, 1);
    let mut c = open_passive(&d, lfd, 40030, false, 10_000);
    assert_eq!(
        d.setsockopt_int(c.fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1),
        Ok(0)
    );
    assert_ne!(
        d.getsockopt_int(c.fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)
            .expect("TCP_NODELAY"),
        0
    );
    let mss = d
        .getsockopt_int(c.fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG)
        .expect("TCP_MAXSEG");
    assert_eq!(mss, 1000, "MSS is the peer's 1000 (no timestamps)");
    // TCP_CONGESTION: a NUL-padded name, as Linux returns it; set by name.
    let name = |d: &Drill, fd| {
        let b = d
            .getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, 16)
            .expect("TCP_CONGESTION");
        String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(&[])).into_owned()
    };
    assert_eq!(name(&d, c.fd), "cubic", "Linux's default");
    assert_eq!(
        d.setsockopt_bytes(c.fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, b"reno\0"),
        Ok(0)
    );
    assert_eq!(name(&d, c.fd), "reno");
    assert_eq!(
        d.setsockopt_bytes(c.fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, b"vegas"),
        Err(libc::ENOENT)
    );
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let lb = unsafe {
        std::slice::from_raw_parts(
            &linger as *const _ as *const u8,
            std::mem::size_of::<libc::linger>(),
        )
    };
    assert_eq!(
        d.setsockopt_bytes(c.fd, libc::SOL_SOCKET, libc::SO_LINGER, lb),
        Ok(0)
    );
    assert_eq!(
        d.setsockopt_int(c.fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        Ok(0)
    );
    let k: [(c_int, c_int); 3] = [
        (libc::TCP_KEEPIDLE, 60),
        (libc::TCP_KEEPINTVL, 10),
        (libc::TCP_KEEPCNT, 3),
    ];
    for (opt, v) in k {
        assert_eq!(
            d.setsockopt_int(c.fd, libc::IPPROTO_TCP, opt, v),
            Ok(0),
            "keepalive option {opt}"
        );
    }
    assert!(
        d.getsockopt_int(c.fd, libc::SOL_SOCKET, libc::SO_RCVBUF)
            .expect("SO_RCVBUF")
            > 0
    );
    assert!(
        d.getsockopt_int(c.fd, libc::SOL_SOCKET, libc::SO_SNDBUF)
            .expect("SO_SNDBUF")
            > 0
    );

    let d2 = d.clone();
    let fd = c.fd;
    let reader = spawn_call(move || {
        let mut buf = [0u8; 100];
        d2.read(fd, &mut buf).map(|n| buf[..n as usize].to_vec())
    });
    assert_eq!(
        reader.settle(WAIT),
        Ok(Activity::Blocked),
        "read blocks with nothing queued"
    );
    let seg = c.seg(PSH | ACK).with_payload(b"wake up");
    send(&d, &seg);
    assert_eq!(
        reader.join(WAIT).expect("read returns"),
        Ok(b"wake up".to_vec())
    );

    // SO_LINGER {1, 0}: close aborts with a RST.
    c.snd_nxt += 7;
    c.expect(&d, ACK, 0);
    assert_eq!(d.close(c.fd), Ok(0));
    let (s, _, _) = recv(&d);
    assert_eq!(
        s.flags & RST,
        RST,
        "close with SO_LINGER 0 sends RST: {s:?}"
    );
}

/// An IPv4 + UDP packet from packetdrill's side.
fn udp_packet(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&REMOTE_IP.octets());
    p.extend_from_slice(&LOCAL_IP.octets());
    let c = checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let c = udp_checksum(REMOTE_IP, LOCAL_IP, &p[20..]);
    p[26..28].copy_from_slice(&c.to_be_bytes());
    p
}

fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    checksum(&[&pseudo, udp])
}

// UDP both ways: recvfrom names the sender; sendto's datagram checked byte
// for byte (IP ID and UDP checksum are berth's, the checksum must verify).
#[test]
fn udp_datagrams_both_ways() {
    let d = Drill::load("");
    let fd = d
        .socket(libc::AF_INET, libc::SOCK_DGRAM, 0)
        .expect("UDP socket") as i32;
    assert_eq!(d.bind(fd, Ipv4Addr::UNSPECIFIED, 5353), Ok(0));
    let r = d.netdev_send(&udp_packet(6000, 5353, b"ping"));
    assert!(r >= 0, "netdev_send: {r}");
    assert_eq!(
        d.ioctl_int(fd, FIONREAD),
        Ok(4),
        "FIONREAD on UDP is the next datagram's size"
    );
    let mut buf = [0u8; 64];
    assert_eq!(d.recvfrom(fd, &mut buf), Ok((4, REMOTE_IP, 6000)));
    assert_eq!(&buf[..4], b"ping");

    assert_eq!(d.sendto(fd, b"pong!", REMOTE_IP, 6000), Ok(5));
    let (b, _) = d.netdev_receive().expect("UDP datagram");
    assert_eq!(b.len(), 33);
    let id = [b[4], b[5]];
    let mut want = vec![0x45, 0, 0, 33, id[0], id[1], 0x40, 0, 64, 17, 0, 0];
    want.extend_from_slice(&LOCAL_IP.octets());
    want.extend_from_slice(&REMOTE_IP.octets());
    let c = checksum(&[&want[..20]]);
    want[10..12].copy_from_slice(&c.to_be_bytes());
    want.extend_from_slice(&5353u16.to_be_bytes());
    want.extend_from_slice(&6000u16.to_be_bytes());
    want.extend_from_slice(&13u16.to_be_bytes());
    want.extend_from_slice(&[b[26], b[27]]);
    want.extend_from_slice(b"pong!");
    // DF is checked last, so that a difference there does not hide the others.
    let mut masked = b.clone();
    masked[6..8].copy_from_slice(&want[6..8]);
    masked[10..12].copy_from_slice(&want[10..12]);
    assert_eq!(
        masked, want,
        "UDP datagram bytes (DF and IP checksum aside)"
    );
    assert_eq!(checksum(&[&b[..20]]), 0, "IP header checksum verifies");
    assert_ne!(
        u16::from_be_bytes([b[26], b[27]]),
        0,
        "Linux always sends a UDP checksum"
    );
    assert_eq!(
        udp_checksum(LOCAL_IP, REMOTE_IP, &b[20..]),
        0,
        "UDP checksum verifies"
    );

    assert_eq!(d.fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK as usize), Ok(0));
    assert_eq!(d.recvfrom(fd, &mut buf), Err(libc::EAGAIN));
    assert_eq!(
        &b[6..8],
        &[0x40, 0],
        "Linux sets DF on a datagram that fits the MTU (IP_PMTUDISC_WANT, the default)"
    );
}

/// Two calls blocked at once sleep: neither wakes the other in a loop (which
/// would burn CPU and make packetdrill think the calls are running).
#[test]
fn two_blocked_calls_do_not_wake_each_other() {
    let d = Drill::load("");
    let lfd = listener(&d, 4);
    let mut c1 = open_passive(&d, lfd, 40041, true, 10_000);
    let mut c2 = open_passive(&d, lfd, 40042, true, 10_000);
    let (d1, f1) = (d.clone(), c1.fd);
    let r1 = spawn_call(move || {
        let mut b = [0u8; 16];
        d1.read(f1, &mut b)
    });
    let (d2, f2) = (d.clone(), c2.fd);
    let r2 = spawn_call(move || {
        let mut b = [0u8; 16];
        d2.read(f2, &mut b)
    });
    assert_eq!(r1.settle(Duration::from_secs(5)), Ok(Activity::Blocked));
    assert_eq!(r2.settle(Duration::from_secs(5)), Ok(Activity::Blocked));
    let before = r1.cpu_ticks() + r2.cpu_ticks();
    std::thread::sleep(Duration::from_millis(300));
    let used = r1.cpu_ticks() + r2.cpu_ticks() - before;
    assert!(used <= 3, "blocked calls used {used} clock ticks in 300 ms");
    for c in [&mut c1, &mut c2] {
        let s = c.seg(PSH | ACK).with_payload(b"wake");
        send(&d, &s);
        c.snd_nxt += 4;
    }
    assert_eq!(r1.join(Duration::from_secs(5)), Ok(Ok(4)));
    assert_eq!(r2.join(Duration::from_secs(5)), Ok(Ok(4)));
}

// ---------------------------------------------------------- IPv6, dual stack

const V6_FLAGS: &str = "ip_version=ipv6,local=fd3d:a0b:17d6::1,gateway=fd3d:a0b:17d6:8888::1";
const V6_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0x0a0b, 0x17d6, 0, 0, 0, 0, 1);
const V6_REMOTE: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1);

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// An AF_INET6 listener on [`ip`]:8080; IPV6_V6ONLY set first when asked.
fn listener6(d: &Drill, ip: Ipv6Addr, v6only: bool) -> i32 {
    let fd = d
        .socket(libc::AF_INET6, libc::SOCK_STREAM, 0)
        .expect("AF_INET6 socket") as i32;
    assert_eq!(
        d.getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        Ok(0),
        "IPV6_V6ONLY is off by default (Linux bindv6only = 0)"
    );
    if v6only {
        assert_eq!(
            d.setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1),
            Ok(0)
        );
        assert_eq!(
            d.getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
            Ok(1)
        );
    }
    assert_eq!(d.bind_addr(fd, sa(ip, PORT)), Ok(0));
    assert_eq!(d.listen(fd, 4), Ok(0));
    fd
}

/// `--ip_version=ipv6`: an AF_INET6 listener, IPv6 packets both ways (MSS =
/// MTU - 60), accept's peer as a 28-byte sockaddr_in6, data both ways.
#[test]
fn ipv6_passive_open_and_data() {
    let d = Drill::load(V6_FLAGS);
    let lfd = listener6(&d, V6_LOCAL, false);
    let (l, r) = (IpAddr::from(V6_LOCAL), IpAddr::from(V6_REMOTE));
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN, 0, SYN, 32792)
            .between(r, l)
            .with_opts(&syn_opts(false, 0)),
    );
    let (s, b, _) = recv(&d);
    assert_eq!(b[0] >> 4, 6, "an IPv6 packet: {b:02x?}");
    assert_eq!((s.src, s.dst, s.flags), (l, r, SYN | ACK));
    assert_eq!(
        s.options().expect("options").first(),
        Some(&TcpOpt::Mss(1440)),
        "MSS over IPv6 on a 1500-byte link is 1500 - 40 - 20"
    );
    let isn = s.seq;
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN + 1, isn.wrapping_add(1), ACK, 257).between(r, l),
    );
    let (fd, peer, len) = d.accept_addr(lfd).expect("accept");
    assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
    assert_eq!(peer, Some(sa(V6_REMOTE, 40000)));
    let fd = fd as i32;
    assert_eq!(d.write(fd, b"hello"), Ok(5));
    let (s, _, _) = recv(&d);
    assert_eq!((s.src, s.dst, s.payload.as_slice()), (l, r, &b"hello"[..]));
    send(
        &d,
        &Seg::inbound(
            40000,
            PORT,
            PEER_ISN + 1,
            isn.wrapping_add(6),
            ACK | PSH,
            257,
        )
        .between(r, l)
        .with_payload(b"world!"),
    );
    let mut buf = [0u8; 16];
    assert_eq!(d.read(fd, &mut buf), Ok(6));
    assert_eq!(&buf[..6], b"world!");
}

/// `--ip_version=ipv4-mapped-ipv6`: AF_INET6 sockets on ::ffff:a.b.c.d,
/// IPv4 packets; accept names the peer by its mapped address.
#[test]
fn ipv4_mapped_passive_open() {
    let d = Drill::load("ip_version=ipv4-mapped-ipv6");
    let lfd = listener6(&d, LOCAL_IP.to_ipv6_mapped(), false);
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(false, 0)),
    );
    let (s, b, _) = recv(&d);
    assert_eq!(b[0] >> 4, 4, "an IPv4 packet: {b:02x?}");
    assert_eq!(s.flags, SYN | ACK);
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN + 1, s.seq.wrapping_add(1), ACK, 257),
    );
    let (_, peer, len) = d.accept_addr(lfd).expect("accept");
    assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
    assert_eq!(peer, Some(sa(REMOTE_IP.to_ipv6_mapped(), 40000)));
}

/// UDP on an AF_INET6 socket in ipv4-mapped-ipv6 mode: the IPv4 sender is
/// named ::ffff:192.0.2.1; a mapped destination goes out as IPv4.
#[test]
fn udp_ipv4_mapped() {
    let d = Drill::load("ip_version=ipv4-mapped-ipv6");
    let fd = d
        .socket(libc::AF_INET6, libc::SOCK_DGRAM, 0)
        .expect("socket") as i32;
    assert_eq!(d.bind_addr(fd, sa(Ipv6Addr::UNSPECIFIED, 5353)), Ok(0));
    assert!(d.netdev_send(&udp_packet(6000, 5353, b"ping")) >= 0);
    let mut buf = [0u8; 16];
    let (n, from, len) = d.recvfrom_addr(fd, &mut buf).expect("recvfrom");
    assert_eq!((n, from), (4, Some(sa(REMOTE_IP.to_ipv6_mapped(), 6000))));
    assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
    assert_eq!(
        d.sendto_addr(fd, b"pong", sa(REMOTE_IP.to_ipv6_mapped(), 6000)),
        Ok(4)
    );
    let (b, _) = d.netdev_receive().expect("UDP datagram");
    let ip = IpHeader::parse(&b).expect("IPv4 header");
    assert_eq!(
        (ip.src, ip.dst, ip.proto),
        (LOCAL_IP.into(), REMOTE_IP.into(), 17)
    );
}

/// IPV6_V6ONLY: a [::] listener takes IPv4 only without it (Linux). In
/// ipv4-mapped-ipv6 mode, where IPv4 has a route back.
#[test]
fn ipv6_only_listener_refuses_ipv4() {
    let d = Drill::load("ip_version=ipv4-mapped-ipv6");
    let lfd = listener6(&d, Ipv6Addr::UNSPECIFIED, true);
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(false, 0)),
    );
    let (s, b, _) = recv(&d);
    assert_eq!(b[0] >> 4, 4);
    assert_eq!(
        s.flags & RST,
        RST,
        "an IPv4 SYN to a V6ONLY listener is refused: {s:?}"
    );
    assert_eq!(
        d.fcntl(lfd, libc::F_SETFL, libc::O_NONBLOCK as usize),
        Ok(0)
    );
    assert_eq!(d.accept_addr(lfd).map(|r| r.0), Err(libc::EAGAIN));
    // Without V6ONLY the same SYN is taken, the peer named ::ffff:192.0.2.1.
    let d = Drill::load("ip_version=ipv4-mapped-ipv6");
    let lfd = listener6(&d, Ipv6Addr::UNSPECIFIED, false);
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN, 0, SYN, 32792).with_opts(&syn_opts(false, 0)),
    );
    let (s, _, _) = recv(&d);
    assert_eq!(s.flags, SYN | ACK);
    send(
        &d,
        &Seg::inbound(40000, PORT, PEER_ISN + 1, s.seq.wrapping_add(1), ACK, 257),
    );
    let (_, peer, _) = d.accept_addr(lfd).expect("accept");
    assert_eq!(peer, Some(sa(REMOTE_IP.to_ipv6_mapped(), 40000)));
}

/// Addresses of the wrong family or length, as Linux answers them.
#[test]
fn socket_families_and_sockaddr_lengths() {
    let d = Drill::load(V6_FLAGS);
    let v4 = d
        .socket(libc::AF_INET, libc::SOCK_STREAM, 0)
        .expect("socket") as i32;
    let v6 = d
        .socket(libc::AF_INET6, libc::SOCK_STREAM, 0)
        .expect("socket") as i32;
    assert_eq!(d.bind_addr(v4, sa(V6_LOCAL, 1)), Err(libc::EAFNOSUPPORT));
    assert_eq!(d.bind_addr(v6, sa(LOCAL_IP, 1)), Err(libc::EAFNOSUPPORT));
    assert_eq!(
        d.connect_addr(v4, sa(V6_REMOTE, 1)),
        Err(libc::EAFNOSUPPORT)
    );
    let (ss, _) = to_sockaddr(sa(V6_LOCAL, 9000));
    // 24 bytes (RFC 2133's sockaddr_in6, no scope_id) are enough; 20 are not.
    assert_eq!(
        d.bind_raw(v6, &ss as *const _ as *const libc::sockaddr, 20),
        Err(libc::EINVAL)
    );
    assert_eq!(
        d.bind_raw(v6, &ss as *const _ as *const libc::sockaddr, 24),
        Ok(0)
    );
    assert_eq!(
        d.getsockopt_int(v4, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        Err(libc::ENOPROTOOPT)
    );
    assert_eq!(
        d.setsockopt_int(v4, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1),
        Err(libc::ENOPROTOOPT)
    );
    // Linux: V6ONLY cannot change once the socket is bound.
    assert_eq!(
        d.setsockopt_int(v6, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1),
        Err(libc::EINVAL)
    );
}

/// UDP over IPv6: recvfrom names the sender in a sockaddr_in6, sendto's
/// datagram is IPv6 with a verifying checksum.
#[test]
fn udp_over_ipv6() {
    let d = Drill::load(V6_FLAGS);
    let fd = d
        .socket(libc::AF_INET6, libc::SOCK_DGRAM, 0)
        .expect("socket") as i32;
    assert_eq!(d.bind_addr(fd, sa(Ipv6Addr::UNSPECIFIED, 5353)), Ok(0));
    let (l, r) = (IpAddr::from(V6_LOCAL), IpAddr::from(V6_REMOTE));
    let mut udp = vec![0x17, 0x70, 0x14, 0xe9, 0, 12, 0, 0];
    udp.extend_from_slice(b"ping");
    let c = checksum(&[&pseudo_header(r, l, 17, udp.len()), &udp]);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut p = ip_header(r, l, 17, udp.len(), 0, 64);
    p.extend_from_slice(&udp);
    assert!(d.netdev_send(&p) >= 0);
    let mut buf = [0u8; 16];
    let (n, from, len) = d.recvfrom_addr(fd, &mut buf).expect("recvfrom");
    assert_eq!((n, from), (4, Some(sa(V6_REMOTE, 6000))));
    assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
    // recvmsg's msg_name: the whole sockaddr_in6, or as much as fits (Linux
    // truncates and reports the full length).
    for (cap, written) in [(28, 28), (16, 16)] {
        assert!(d.netdev_send(&p) >= 0);
        let (n, name, len) = d.recvmsg_name(fd, &mut buf, cap).expect("recvmsg");
        assert_eq!((n, len), (4, 28), "msg_namelen for a {cap}-byte name");
        let (want, _) = to_sockaddr(sa(V6_REMOTE, 6000));
        // SAFETY: `written` ≤ 28 bytes of a sockaddr_storage (128 bytes).
        let want = unsafe { std::slice::from_raw_parts(&want as *const _ as *const u8, written) };
        assert_eq!(&name[..written], want, "msg_name of {cap} bytes");
    }
    assert_eq!(d.sendto_addr(fd, b"pong!", sa(V6_REMOTE, 6000)), Ok(5));
    let (b, _) = d.netdev_receive().expect("UDP datagram");
    let ip = IpHeader::parse(&b).expect("IPv6 header");
    assert_eq!((ip.src, ip.dst, ip.proto, ip.len), (l, r, 17, 40));
    assert_eq!(&b[48..], b"pong!");
    assert_eq!(
        checksum(&[&pseudo_header(l, r, 17, b.len() - 40), &b[40..]]),
        0,
        "UDP checksum over the IPv6 pseudo-header verifies"
    );
}
