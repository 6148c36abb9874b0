//! The DNS stub resolver through berth: in the simulator (a DNS server on
//! the second stack: A and AAAA answers, CNAMEs, a dropped first query
//! retried after 1 s, rotation to the next server, a truncated UDP answer
//! fetched over TCP, NXDOMAIN, every attempt timing out after 1 + 2 + 4 s),
//! and through the blocking and tokio APIs on a pair of stacks
//! (`connect("name:port")` trying each address, `lookup_host`, the hosts
//! table, a retry that leaves the tokio runtime free).

mod support_apps;

use berth::dns::{Families, Lookup, ResolverConfig};
use berth::sim::{Duration, Instant, LinkConfig, Medium, TwoHosts};
use berth::{Stack, TcpListener, TcpStream, UdpSocket};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;
use support_apps::{drive, DnsServer, Zone};

fn hosts() -> TwoHosts {
    let link = LinkConfig {
        delay: Duration::from_millis(10),
        medium: Medium::Ip,
        ..LinkConfig::default()
    };
    TwoHosts::new(5, link).expect("two hosts")
}

fn zone() -> Zone {
    Zone::default()
        .with("www.test", "192.0.2.7")
        .with("www.test", "2001:db8::7")
        .with("v4only.test", "192.0.2.8")
        .alias("alias.test", "www.test")
        .with("big.test", "192.0.2.9")
        .with("big.test", "2001:db8::9")
        .truncated("big.test")
}

/// Look `name` up from A with `servers`, B running `dns`; the result and
/// when it came.
fn sim_lookup(
    h: &mut TwoHosts,
    dns: &mut DnsServer,
    servers: &[IpAddr],
    name: &str,
) -> (io::Result<Vec<IpAddr>>, Instant) {
    let config = ResolverConfig::with_servers(servers);
    let families = Families::of(h.sim.node(h.a));
    assert_eq!(
        families,
        Families {
            ipv4: true,
            ipv6: true
        }
    );
    let mut lookup = Lookup::new(&config, name, families, 99);
    let mut done = None;
    let (a, b) = (h.a, h.b);
    let start = h.sim.now();
    drive(&mut h.sim, start + Duration::from_secs(30), |sim| {
        let now = sim.now();
        dns.poll(sim.node_mut(b), now);
        if done.is_none() {
            if let Poll::Ready(r) = lookup.poll(sim.node_mut(a), now) {
                done = Some((r, now));
            }
        }
        if done.is_some() {
            None
        } else {
            lookup.poll_timeout()
        }
    });
    let (r, at) = done.expect("the lookup ends within 30 s");
    // Its sockets are closed: a TCP one may still be finishing its close.
    for row in h.sim.node(a).sockets() {
        assert!(
            row.kind == berth::SocketKind::Tcp && !matches!(row.state, "ESTAB" | "SYN-SENT"),
            "lookup socket left open: {row:?}"
        );
    }
    (r, at)
}

/// B's address, the DNS server's.
const B: IpAddr = IpAddr::V4(TwoHosts::ADDR_B);

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().expect("address")).collect()
}

#[test]
fn a_and_aaaa_answers_ipv6_first() {
    let mut h = hosts();
    let mut dns = DnsServer::new(h.sim.node_mut(h.b), zone());
    let b = B;
    let (r, at) = sim_lookup(&mut h, &mut dns, &[b], "www.test");
    assert_eq!(r.unwrap(), ips(&["2001:db8::7", "192.0.2.7"]));
    // One round trip over a 10 ms link.
    assert_eq!(at, Instant::from_millis(20));
    assert_eq!((dns.udp_queries, dns.tcp_queries), (2, 0));
    // A name with only an A record: the AAAA query's empty answer is no error.
    let (r, _) = sim_lookup(&mut h, &mut dns, &[b], "V4ONLY.test.");
    assert_eq!(r.unwrap(), ips(&["192.0.2.8"]));
    // A CNAME is followed to its target's addresses.
    let (r, _) = sim_lookup(&mut h, &mut dns, &[b], "alias.test");
    assert_eq!(r.unwrap(), ips(&["2001:db8::7", "192.0.2.7"]));
}

#[test]
fn dropped_first_queries_are_sent_again_after_a_second() {
    let mut h = hosts();
    let mut dns = DnsServer::new(h.sim.node_mut(h.b), zone());
    dns.drop_udp = 2; // the first AAAA and A queries
    let (r, at) = sim_lookup(&mut h, &mut dns, &[B], "www.test");
    assert_eq!(r.unwrap(), ips(&["2001:db8::7", "192.0.2.7"]));
    assert_eq!(at, Instant::from_millis(1_020));
    assert_eq!(dns.udp_queries, 4);
}

#[test]
fn the_next_attempt_goes_to_the_next_server() {
    let mut h = hosts();
    let mut dns = DnsServer::new(h.sim.node_mut(h.b), zone());
    // 192.0.2.3 is on the link but nobody answers there.
    let servers = ips(&["192.0.2.3", "192.0.2.2"]);
    let (r, at) = sim_lookup(&mut h, &mut dns, &servers, "www.test");
    assert_eq!(r.unwrap().len(), 2);
    assert_eq!(at, Instant::from_millis(1_020));
    assert_eq!(dns.udp_queries, 2, "only the second attempt reached B");
}

#[test]
fn truncated_answer_is_fetched_over_tcp() {
    let mut h = hosts();
    let mut dns = DnsServer::new(h.sim.node_mut(h.b), zone());
    let (r, _) = sim_lookup(&mut h, &mut dns, &[B], "big.test");
    assert_eq!(r.unwrap(), ips(&["2001:db8::9", "192.0.2.9"]));
    assert_eq!((dns.udp_queries, dns.tcp_queries), (2, 2));
}

#[test]
fn nxdomain_is_not_found() {
    let mut h = hosts();
    let mut dns = DnsServer::new(h.sim.node_mut(h.b), zone());
    let (r, at) = sim_lookup(&mut h, &mut dns, &[B], "nope.test");
    let e = r.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("NXDOMAIN"), "{e}");
    assert_eq!(at, Instant::from_millis(20), "no retry after an NXDOMAIN");
}

#[test]
fn silence_times_out_after_three_attempts() {
    let mut h = hosts();
    let mut dns = DnsServer::new(h.sim.node_mut(h.b), zone());
    dns.drop_udp = u32::MAX;
    let (r, at) = sim_lookup(&mut h, &mut dns, &[B], "www.test");
    let e = r.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("3 attempts"), "{e}");
    // 1 s, 2 s, 4 s.
    assert_eq!(at, Instant::from_millis(7_000));
    assert_eq!(dns.udp_queries, 6);
}

// ---- through the socket API, on a pair of stacks ---------------------------------

/// A DNS server on port 53 of `stack`, in a thread, until dropped.
struct ThreadDns {
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadDns {
    fn start(stack: &Stack, zone: Zone, drop_first: u32) -> ThreadDns {
        let s = UdpSocket::bind(stack, "0.0.0.0:53").expect("udp 53");
        s.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicU32::new(0));
        let (st, q) = (Arc::clone(&stop), Arc::clone(&queries));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if q.fetch_add(1, Ordering::SeqCst) < drop_first {
                    continue;
                }
                if let Some(a) = zone.respond(&buf[..n], false) {
                    let _ = s.send_to(&a, from);
                }
            }
        });
        ThreadDns {
            stop,
            queries,
            thread: Some(thread),
        }
    }
    fn queries(&self) -> u32 {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for ThreadDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pair_zone() -> Zone {
    // IPv6 first in the answer, where B listens on IPv4 only: the connect
    // is refused there and goes on to the IPv4 address.
    Zone::default()
        .with("server.test", "192.0.2.2")
        .with("server.test", "2001:db8::2")
}

#[test]
fn connect_by_name_tries_each_address() {
    let (a, b) = Stack::pair().unwrap();
    let _dns = ThreadDns::start(&b, pair_zone(), 0);
    a.set_dns_servers(&ips(&["192.0.2.2"]));
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let c = TcpStream::connect(&a, "server.test:7").unwrap();
    assert_eq!(c.peer_addr().unwrap(), "192.0.2.2:7".parse().unwrap());
    let (_s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    let all: Vec<SocketAddr> = berth::net::lookup_host(&a, ("server.test", 80))
        .unwrap()
        .collect();
    assert_eq!(
        all,
        ["[2001:db8::2]:80", "192.0.2.2:80"].map(|s| s.parse().unwrap())
    );
    let e = TcpStream::connect(&a, "missing.test:7").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    // UDP send_to by name goes to the first address (IPv6 here).
    let u = UdpSocket::bind(&a, "[::]:0").unwrap();
    let r = UdpSocket::bind(&b, "[::]:9").unwrap();
    u.send_to(b"hi", "server.test:9").unwrap();
    let mut buf = [0; 4];
    let (n, _) = r.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
}

#[test]
fn hosts_table_answers_without_asking() {
    let (a, b) = Stack::pair().unwrap();
    let dns = ThreadDns::start(&b, pair_zone(), 0);
    a.set_dns_servers(&ips(&["192.0.2.2"]));
    a.add_host("db.internal", "192.0.2.2".parse().unwrap());
    let l = TcpListener::bind(&b, "0.0.0.0:5432").unwrap();
    let _c = TcpStream::connect(&a, "DB.internal.:5432").unwrap();
    let _ = l.accept().unwrap();
    let local: Vec<SocketAddr> = berth::net::lookup_host(&a, "localhost:80")
        .unwrap()
        .collect();
    assert_eq!(
        local,
        ["127.0.0.1:80", "[::1]:80"].map(|s| s.parse().unwrap())
    );
    // Literals never ask either.
    let lit: Vec<SocketAddr> = berth::net::lookup_host(&a, "[2001:db8::1]:5")
        .unwrap()
        .collect();
    assert_eq!(lit, ["[2001:db8::1]:5".parse().unwrap()]);
    assert_eq!(dns.queries(), 0);
    // No server at all: the error says where to set one.
    let (c, _d) = Stack::pair().unwrap();
    let e = berth::net::lookup_host(&c, "x.test:1").unwrap_err();
    assert!(e.to_string().contains("no DNS server"), "{e}");
    let e = berth::net::lookup_host(&c, "no-port").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_lookup_waits_without_blocking_the_runtime() {
    let (a, b) = Stack::pair().unwrap();
    // Both first queries dropped: the answer comes after the 1 s retry.
    let dns = ThreadDns::start(&b, pair_zone(), 2);
    a.set_dns_servers(&ips(&["192.0.2.2"]));
    let ticks = Arc::new(AtomicU32::new(0));
    let t = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    let started = std::time::Instant::now();
    let got: Vec<SocketAddr> = berth::tokio::lookup_host(&a, "server.test:443")
        .await
        .unwrap()
        .collect();
    let took = started.elapsed();
    ticker.abort();
    assert_eq!(got.len(), 2);
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
    // The one runtime thread kept running the ticker meanwhile.
    assert!(ticks.load(Ordering::SeqCst) >= 40, "{:?}", ticks);
    assert_eq!(dns.queries(), 4);

    let l = berth::tokio::TcpListener::bind(&b, "0.0.0.0:7")
        .await
        .unwrap();
    let c = berth::tokio::TcpStream::connect(&a, "server.test:7")
        .await
        .unwrap();
    assert_eq!(c.peer_addr().unwrap(), "192.0.2.2:7".parse().unwrap());
    let (_s, _) = l.accept().await.unwrap();
}
