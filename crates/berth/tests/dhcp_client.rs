//! The DHCPv4 client against a small DHCP server on a second stack: in the
//! simulator (address, route and DNS servers learned; renewal at T1 and
//! rebinding at T2 seen in virtual time; expiry; a NAK restarting; RELEASE
//! on shutdown) and through the runtime's `Dhcp` on a pair of stacks.

mod support_apps;

use berth::core::{Config, IfaceConfig, IfaceId, Medium as CoreMedium, Stack as CoreStack};
use berth::dhcp::{Client, DhcpConfig, Event, State};
use berth::sim::{Duration, Instant, LinkConfig, Medium, NodeId, Simulator};
use berth::wire::dhcp::MessageType;
use berth::wire::{Ipv4Addr, Ipv4Cidr};
use std::net::IpAddr;
use support_apps::{drive, mac, DhcpServer, Requests};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

struct Net {
    sim: Simulator<CoreStack>,
    /// The client's host and the server's.
    a: NodeId,
    b: NodeId,
    client: Client,
    server: DhcpServer,
    events: Vec<(Instant, Event)>,
}

fn stack(n: u8, addr: Ipv4Addr, prefix: u8) -> CoreStack {
    let mut s = CoreStack::new(Config {
        seed: Some(u64::from(n)),
        dad_transmits: 0,
        ..Config::default()
    });
    s.add_interface(IfaceConfig {
        medium: CoreMedium::Ethernet(mac(n)),
        address: Ipv4Cidr::new(addr, prefix).expect("cidr"),
        mtu: 1500,
    })
    .expect("interface");
    s
}

fn net(mode: Requests) -> Net {
    let mut sim = Simulator::new(3);
    let a = sim.add_node(stack(1, Ipv4Addr::UNSPECIFIED, 32));
    let b = sim.add_node(stack(2, SERVER, 24));
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        medium: Medium::Ethernet,
        ..LinkConfig::default()
    };
    sim.connect((a, 0), (b, 0), link);
    let config = DhcpConfig {
        seed: Some(11),
        host_name: Some("berth-test".into()),
        ..DhcpConfig::default()
    };
    let client = Client::new(sim.node_mut(a), Instant::ZERO, IfaceId(0), &config).expect("client");
    let server = DhcpServer::new(sim.node_mut(b), SERVER, LEASED, mode);
    Net {
        sim,
        a,
        b,
        client,
        server,
        events: Vec::new(),
    }
}

impl Net {
    fn run_until(&mut self, end: Instant) {
        let (client, server, events) = (&mut self.client, &mut self.server, &mut self.events);
        let (a, b) = (self.a, self.b);
        drive(&mut self.sim, end, |sim| {
            let now = sim.now();
            server.poll(sim.node_mut(b), now);
            for e in client.poll(sim.node_mut(a), now) {
                events.push((now, e));
            }
            client.poll_timeout()
        });
    }
    fn a(&mut self) -> &mut CoreStack {
        self.sim.node_mut(self.a)
    }
    fn address(&mut self) -> Ipv4Addr {
        let a = self.a();
        match a.addresses(IfaceId(0))[0].0.address() {
            IpAddr::V4(v) => v,
            IpAddr::V6(v) => panic!("{v}"),
        }
    }
}

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

#[test]
fn lease_is_learned_and_applied() {
    let mut n = net(Requests::Ack);
    n.run_until(secs(1));
    assert_eq!(n.client.state(), State::Bound);
    let (at, e) = &n.events[0];
    let Event::Bound(l) = e else { panic!("{e:?}") };
    // DISCOVER, OFFER, REQUEST, ACK: two round trips over 5 ms.
    assert_eq!(*at, Instant::from_millis(20));
    assert_eq!(l.address.to_string(), "192.0.2.50/24");
    assert_eq!((l.router, l.server), (Some(SERVER), SERVER));
    assert_eq!(l.dns_servers, [SERVER]);
    assert_eq!(
        (l.lease_time, l.renew_after, l.rebind_after),
        (
            Duration::from_secs(120),
            Duration::from_secs(10),
            Duration::from_secs(20)
        )
    );
    assert_eq!(n.address(), LEASED);
    // The client sent from 0.0.0.0 until then.
    assert!(n
        .server
        .seen
        .iter()
        .all(|s| s.3 == IpAddr::from(Ipv4Addr::UNSPECIFIED)));
    // The default route goes via the router, from the leased address.
    let src = n.a().source_for(Ipv4Addr::new(203, 0, 113, 9)).unwrap();
    assert_eq!(src, IpAddr::from(LEASED));
}

#[test]
fn renews_at_t1_and_rebinds_at_t2() {
    let mut n = net(Requests::Ack);
    n.run_until(secs(15));
    // The renewal REQUEST left at T1 (10 s after the ACK at 20 ms), unicast
    // from the leased address with ciaddr set: ARP for the server first
    // (10 ms), then 5 ms on the link.
    let renew: Vec<_> = n.server.seen.iter().filter(|s| s.2 == LEASED).collect();
    assert_eq!(renew.len(), 1, "{:?}", n.server.seen);
    assert_eq!(renew[0].0, Instant::from_millis(10_035));
    assert_eq!(renew[0].3, IpAddr::from(LEASED));
    let renewed: Vec<_> = n
        .events
        .iter()
        .filter(|e| matches!(e.1, Event::Renewed(_)))
        .collect();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].0, Instant::from_millis(10_040));
    let Event::Renewed(l) = &renewed[0].1 else {
        unreachable!()
    };
    assert_eq!((l.renewals, l.acquired), (1, Instant::from_millis(10_040)));
    assert_eq!(n.address(), LEASED);

    // A server that stops answering renewals: rebinding (broadcast) at T2,
    // then the lease runs out and the address goes.
    let mut n = net(Requests::IgnoreRenewals);
    n.run_until(secs(119));
    assert_eq!(n.client.state(), State::Rebinding);
    let renewing = n.server.seen.iter().filter(|s| s.2 == LEASED).count();
    assert!(
        renewing >= 2,
        "a REQUEST while renewing and one while rebinding"
    );
    let first_rebind = n
        .server
        .seen
        .iter()
        .filter(|s| s.2 == LEASED)
        .nth(1)
        .unwrap();
    // Broadcast at T2 (20.020 s), 5 ms on the link.
    assert_eq!(first_rebind.0, Instant::from_millis(20_025));
    assert_eq!(first_rebind.3, IpAddr::from(LEASED));
    assert_eq!(n.address(), LEASED);
    n.run_until(secs(121));
    assert!(n
        .events
        .iter()
        .any(|e| e.1 == Event::Expired && e.0 == Instant::from_millis(120_020)));
    // Offered again and selected again: this server ACKs selecting REQUESTs.
    assert!(matches!(
        n.events.last().map(|e| &e.1),
        Some(Event::Bound(_))
    ));
    assert!(n.server.count(MessageType::Discover) >= 2);
}

#[test]
fn nak_starts_over() {
    let mut n = net(Requests::NakFirst);
    n.run_until(secs(2));
    assert!(matches!(&n.events[0].1, Event::Nak(m) if m == "wrong network"));
    assert!(matches!(&n.events[1].1, Event::Bound(_)));
    assert_eq!(n.server.count(MessageType::Discover), 2);
    assert_eq!(n.server.count(MessageType::Request), 2);
    assert_eq!(n.address(), LEASED);
}

#[test]
fn release_on_shutdown() {
    let mut n = net(Requests::Ack);
    n.run_until(secs(1));
    let now = n.sim.now();
    n.client.release(n.sim.node_mut(n.a), now);
    assert_eq!(n.client.state(), State::Stopped);
    assert_eq!(n.client.poll_timeout(), None);
    assert_eq!(n.address(), Ipv4Addr::UNSPECIFIED);
    assert!(n.a().source_for(Ipv4Addr::new(203, 0, 113, 9)).is_err());
    n.run_until(secs(2));
    let rel: Vec<_> = n
        .server
        .seen
        .iter()
        .filter(|s| s.1 == MessageType::Release)
        .collect();
    assert_eq!(rel.len(), 1);
    assert_eq!(rel[0].2, LEASED, "RELEASE names the address in ciaddr");
    assert!(n.a().sockets().is_empty(), "the client's socket is closed");
}

// ---- the runtime's Dhcp, on a pair of stacks ------------------------------------

#[test]
fn runtime_client_configures_the_stack() {
    let a = berth::Stack::new(Config::default());
    let b = berth::Stack::new(Config::default());
    let zero = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 32).unwrap();
    let server = Ipv4Cidr::new(SERVER, 24).unwrap();
    let (ia, _) = a.connect_memory(zero, &b, server, 1500).unwrap();
    // The server, a thread on B over berth's blocking UDP socket.
    let srv = berth::UdpSocket::bind(&b, "0.0.0.0:67").unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = std::sync::Arc::clone(&seen);
    let server_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        srv.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        while let Ok((n, _)) = srv.recv_from(&mut buf) {
            let Some((reply, t)) = support_apps::dhcp_reply(&buf[..n], SERVER, LEASED) else {
                continue;
            };
            seen2.lock().unwrap().push(t);
            if let Some(reply) = reply {
                srv.send_to(&reply, "255.255.255.255:68").unwrap();
            }
            if t == MessageType::Release {
                return;
            }
        }
    });
    let config = DhcpConfig {
        client_mac: Some(mac(1)),
        ..DhcpConfig::default()
    };
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ev = std::sync::Arc::clone(&events);
    let dhcp =
        berth::dhcp::Dhcp::start_with(&a, ia, config, move |e| ev.lock().unwrap().push(e.clone()))
            .unwrap();
    let lease = dhcp.wait_lease(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(lease.address.to_string(), "192.0.2.50/24");
    assert_eq!(dhcp.lease(), Some(lease.clone()));
    assert_eq!(a.dns_servers(), ["192.0.2.1:53".parse().unwrap()]);
    assert_eq!(a.addresses(ia)[0].0.to_string(), "192.0.2.50/24");
    assert!(matches!(events.lock().unwrap()[0], Event::Bound(_)));
    dhcp.release();
    server_thread.join().unwrap();
    assert_eq!(a.addresses(ia)[0].0.to_string(), "0.0.0.0/32");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            MessageType::Discover,
            MessageType::Request,
            MessageType::Release
        ]
    );
}
