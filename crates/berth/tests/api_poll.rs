//! `berth::Poller`: readiness over many sockets, level-triggered, with timeouts,
//! and an event-loop echo server built on it.

use berth::{Interest, PollEvent, Poller, Stack, TcpListener, TcpStream, UdpSocket};
use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn timeout_returns_zero() {
    let (a, _b) = Stack::pair().unwrap();
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let poller = Poller::new(&a);
    assert!(poller.is_empty());
    poller.register(u.handle(), 7, Interest::READABLE).unwrap();
    assert_eq!(poller.len(), 1);
    let mut events = vec![PollEvent {
        token: 99,
        readable: true,
        writable: true,
        error: true,
        hup: true,
    }];
    let t0 = Instant::now();
    let n = poller
        .wait(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(n, 0);
    assert!(events.is_empty(), "events are cleared");
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A zero timeout only checks.
    let t0 = Instant::now();
    assert_eq!(poller.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    assert!(t0.elapsed() < Duration::from_millis(50));
    // An empty poller times out too.
    let empty = Poller::new(&a);
    assert_eq!(
        empty
            .wait(&mut events, Some(Duration::from_millis(10)))
            .unwrap(),
        0
    );
}

/// CPU time of the calling thread (Linux), to show `wait` sleeps.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns: u64 = s.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

#[cfg(target_os = "linux")]
#[test]
fn waiting_does_not_spin() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (_s, _) = l.accept().unwrap();
    let poller = Poller::new(&a);
    poller.register(c.handle(), 1, Interest::READABLE).unwrap();
    let mut events = Vec::new();
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    assert_eq!(
        poller
            .wait(&mut events, Some(Duration::from_millis(400)))
            .unwrap(),
        0
    );
    let wall = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    assert!(wall >= Duration::from_millis(400));
    assert!(cpu < Duration::from_millis(40), "wait used {cpu:?} of CPU");
}

#[test]
fn level_triggered_readable_writable_hup_error() {
    let (a, b) = Stack::pair().unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let poller = Poller::new(&b);
    let mut ev = Vec::new();
    poller.register(s.handle(), 10, Interest::READABLE).unwrap();
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 0);
    c.write_all(b"abcdef").unwrap();
    // Reported on every wait while data stays queued.
    for _ in 0..3 {
        assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 1);
        assert_eq!(ev[0].token, 10);
        assert!(ev[0].readable && !ev[0].writable && !ev[0].hup && !ev[0].error);
    }
    let mut buf = [0u8; 3];
    (&s).read_exact(&mut buf).unwrap();
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 1);
    (&s).read_exact(&mut buf).unwrap();
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 0);
    // Both interests: an idle connection is writable.
    poller.modify(s.handle(), 11, Interest::BOTH).unwrap();
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 1);
    assert!(ev[0].token == 11 && ev[0].writable && !ev[0].readable);
    // The peer closes: readable (end of stream) and hup.
    poller.modify(s.handle(), 12, Interest::READABLE).unwrap();
    drop(c);
    assert_eq!(
        poller.wait(&mut ev, Some(Duration::from_secs(5))).unwrap(),
        1
    );
    assert!(
        ev[0].token == 12 && ev[0].readable && ev[0].hup,
        "{:?}",
        ev[0]
    );
    assert_eq!((&s).read(&mut buf).unwrap(), 0);

    // A reset shows as error (whatever the interest), then take_error has it.
    let c2 = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
    let (s2, _) = l.accept().unwrap();
    poller
        .register(s2.handle(), 20, Interest::default())
        .unwrap();
    let h = c2.handle();
    a.with_core(|core, _| core.tcp_set_linger(h, Some(Duration::ZERO)))
        .unwrap();
    drop(c2);
    let n = poller.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
    let e = ev.iter().find(|e| e.token == 20).expect("event for s2");
    assert!(n >= 1 && e.error && !e.readable && !e.writable, "{e:?}");
    assert_eq!(
        s2.take_error().unwrap().unwrap().kind(),
        ErrorKind::ConnectionReset
    );
}

#[test]
fn registration_errors_and_closed_sockets() {
    let (a, b) = Stack::pair().unwrap();
    let poller = Poller::new(&a);
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    poller.register(u.handle(), 1, Interest::READABLE).unwrap();
    let e = poller
        .register(u.handle(), 2, Interest::READABLE)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(berth::errno(&e), Some(17));
    let other = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    assert_eq!(
        poller
            .modify(other.handle(), 3, Interest::READABLE)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        poller.deregister(other.handle()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // A closed socket cannot be registered…
    let gone = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let h = gone.handle();
    drop(gone);
    let e = poller.register(h, 4, Interest::READABLE).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // …and one closed while registered leaves the set, as with epoll.
    poller
        .register(other.handle(), 5, Interest::READABLE)
        .unwrap();
    assert_eq!(poller.len(), 2);
    drop(other);
    let mut ev = Vec::new();
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 0);
    assert_eq!(poller.len(), 1);
    poller.deregister(u.handle()).unwrap();
    assert!(poller.is_empty());
    // A shut down stack fails the wait, and unblocks a waiting one.
    let p = Arc::new(Poller::new(&b));
    let ub = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    p.register(ub.handle(), 1, Interest::READABLE).unwrap();
    let t = std::thread::spawn({
        let p = p.clone();
        move || p.wait(&mut Vec::new(), None)
    });
    std::thread::sleep(Duration::from_millis(50));
    b.shutdown();
    let e = t.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("shut down"), "{e}");
}

#[test]
fn wakes_for_registrations_and_notify_from_other_threads() {
    let (a, b) = Stack::pair().unwrap();
    let poller = Arc::new(Poller::new(&b));
    // notify() ends a wait without events.
    let t = std::thread::spawn({
        let p = poller.clone();
        move || {
            let t0 = Instant::now();
            let n = p
                .wait(&mut Vec::new(), Some(Duration::from_secs(10)))
                .unwrap();
            (n, t0.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    poller.notify();
    let (n, took) = t.join().unwrap();
    assert_eq!(n, 0);
    assert!(took < Duration::from_secs(5));
    // Registering an already-ready socket wakes a waiter.
    let u = UdpSocket::bind(&b, "0.0.0.0:9").unwrap();
    UdpSocket::bind(&a, "0.0.0.0:0")
        .unwrap()
        .send_to(b"x", "192.0.2.2:9")
        .unwrap();
    let t = std::thread::spawn({
        let p = poller.clone();
        move || {
            let mut ev = Vec::new();
            p.wait(&mut ev, Some(Duration::from_secs(10))).unwrap();
            ev
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    poller.register(u.handle(), 42, Interest::READABLE).unwrap();
    let ev = t.join().unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].token, 42);
}

#[test]
fn many_sockets_readiness() {
    let (a, b) = Stack::pair().unwrap();
    const TCP: usize = 40;
    const UDP: usize = 40;
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..TCP {
        clients.push(TcpStream::connect(&a, "192.0.2.2:7").unwrap());
        servers.push(l.accept().unwrap().0);
    }
    let udps: Vec<UdpSocket> = (0..UDP)
        .map(|_| UdpSocket::bind(&b, "0.0.0.0:0").unwrap())
        .collect();
    let poller = Poller::new(&b);
    for (i, s) in servers.iter().enumerate() {
        s.set_nonblocking(true).unwrap();
        poller.register(s.handle(), i, Interest::READABLE).unwrap();
    }
    for (i, u) in udps.iter().enumerate() {
        u.set_nonblocking(true).unwrap();
        poller
            .register(u.handle(), TCP + i, Interest::READABLE)
            .unwrap();
    }
    let mut ev = Vec::new();
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 0);
    // Every third socket gets data, from another thread, a little later.
    let ports: Vec<u16> = udps
        .iter()
        .map(|u| u.local_addr().unwrap().port())
        .collect();
    let chosen: HashSet<usize> = (0..TCP + UDP).filter(|i| i % 3 == 0).collect();
    let sender = std::thread::spawn({
        let chosen = chosen.clone();
        let a = a.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            let out = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
            let mut ids: Vec<_> = chosen.into_iter().collect();
            ids.sort();
            for i in ids {
                if i < TCP {
                    clients[i].write_all(&[i as u8]).unwrap();
                } else {
                    out.send_to(&[i as u8], ("192.0.2.2", ports[i - TCP]))
                        .unwrap();
                }
            }
            clients
        }
    });
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < chosen.len() && Instant::now() < deadline {
        poller.wait(&mut ev, Some(Duration::from_secs(1))).unwrap();
        for e in &ev {
            assert!(e.readable);
            let mut buf = [0u8; 4];
            let n = if e.token < TCP {
                (&servers[e.token]).read(&mut buf).unwrap()
            } else {
                udps[e.token - TCP].recv(&mut buf).unwrap()
            };
            assert_eq!((n, buf[0]), (1, e.token as u8));
            assert!(
                seen.insert(e.token),
                "token {} reported after draining",
                e.token
            );
        }
    }
    assert_eq!(seen, chosen);
    assert_eq!(poller.wait(&mut ev, Some(Duration::ZERO)).unwrap(), 0);
    let _clients = sender.join().unwrap();
}

/// An echo server in one thread: non-blocking listener and streams, one Poller.
#[test]
fn event_loop_echo_server() {
    let (a, b) = Stack::pair().unwrap();
    const CLIENTS: usize = 12;
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    l.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        let poller = Poller::new(l.stack());
        poller.register(l.handle(), 0, Interest::READABLE).unwrap();
        let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
        let mut next = 1;
        let mut finished = 0;
        let mut ev = Vec::new();
        while finished < CLIENTS {
            poller.wait(&mut ev, Some(Duration::from_secs(10))).unwrap();
            assert!(!ev.is_empty(), "server idle for 10 s");
            for e in ev.iter().copied() {
                if e.token == 0 {
                    loop {
                        match l.accept() {
                            Ok((s, _)) => {
                                s.set_nonblocking(true).unwrap();
                                poller
                                    .register(s.handle(), next, Interest::READABLE)
                                    .unwrap();
                                conns.insert(next, (s, Vec::new()));
                                next += 1;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    continue;
                }
                let Some((s, pending)) = conns.get_mut(&e.token) else {
                    continue;
                };
                if e.readable {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => {
                                // Echo what is left, then close.
                                s.set_nonblocking(false).unwrap();
                                s.write_all(pending).unwrap();
                                poller.deregister(s.handle()).unwrap();
                                conns.remove(&e.token);
                                finished += 1;
                                break;
                            }
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                if let Some((s, pending)) = conns.get_mut(&e.token) {
                    while !pending.is_empty() {
                        match s.write(pending) {
                            Ok(n) => {
                                pending.drain(..n);
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    let want = if pending.is_empty() {
                        Interest::READABLE
                    } else {
                        Interest::BOTH
                    };
                    poller.modify(s.handle(), e.token, want).unwrap();
                }
            }
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(&a, "192.0.2.2:7").unwrap();
                let data: Vec<u8> = (0..50_000).map(|j| (i + j) as u8).collect();
                let mut w = c.try_clone().unwrap();
                let d = data.clone();
                let wt = std::thread::spawn(move || {
                    w.write_all(&d).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                c.read_to_end(&mut got).unwrap();
                wt.join().unwrap();
                assert!(
                    got == data,
                    "client {i}: echo differs ({} bytes)",
                    got.len()
                );
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
}
