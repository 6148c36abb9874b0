//! The DHCPv4 client against a small DHCP server on a second stack: in the
//! simulator (address, route and DNS servers learned; renewal at T1 and
//! rebinding at T2 seen in virtual time; expiry; a NAK restarting; RELEASE
//! on shutdown; the ARP probe of the ACKed address and the DECLINE when a
//! third host holds it) and through the runtime's `Dhcp` on a pair of stacks.

mod support_apps;

use berth::core::SocketHandle;
use berth::core::{Config, IfaceConfig, IfaceId, Medium as CoreMedium, Stack as CoreStack};
use berth::dhcp::{Client, DhcpConfig, Event, State};
use berth::sim::{Duration, Instant, LinkConfig, Medium, NodeId, Simulator};
use berth::wire::dhcp::{DhcpPacket, DhcpRepr, MessageType};
use berth::wire::{Ipv4Addr, Ipv4Cidr};
use std::net::{IpAddr, SocketAddr};
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

/// The client and the server on one 5 ms link; the client does not probe
/// (the tests of the exchange's timing predate the probe).
fn net(mode: Requests) -> Net {
    net_with(mode, 0)
}

fn link() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(5),
        medium: Medium::Ethernet,
        ..LinkConfig::default()
    }
}

fn client_config(probes: u32) -> DhcpConfig {
    DhcpConfig {
        seed: Some(11),
        host_name: Some("berth-test".into()),
        probes,
        ..DhcpConfig::default()
    }
}

fn net_with(mode: Requests, probes: u32) -> Net {
    let mut sim = Simulator::new(3);
    let a = sim.add_node(stack(1, Ipv4Addr::UNSPECIFIED, 32));
    let b = sim.add_node(stack(2, SERVER, 24));
    sim.connect((a, 0), (b, 0), link());
    let config = client_config(probes);
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

/// Each (host, address) holds its address on a switch with the client and
/// the server, 5 ms links each way; the client probes as by default.
fn lan_with(hosts: &[(u8, Ipv4Addr)], config: DhcpConfig) -> (Net, Vec<NodeId>) {
    let mut sim = Simulator::new(3);
    let a = sim.add_node(stack(1, Ipv4Addr::UNSPECIFIED, 32));
    let b = sim.add_node(stack(2, SERVER, 24));
    let sw = sim.add_switch();
    sim.attach(sw, (a, 0), link());
    sim.attach(sw, (b, 0), link());
    let others = hosts
        .iter()
        .map(|&(n, addr)| {
            let c = sim.add_node(stack(n, addr, 24));
            sim.attach(sw, (c, 0), link());
            c
        })
        .collect();
    let client = Client::new(sim.node_mut(a), Instant::ZERO, IfaceId(0), &config).expect("client");
    let server = DhcpServer::new(sim.node_mut(b), SERVER, LEASED, Requests::Ack);
    let net = Net {
        sim,
        a,
        b,
        client,
        server,
        events: Vec::new(),
    };
    (net, others)
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

// ---- address conflict detection: ARP probe and DECLINE (RFC 2131 §4.4.1, RFC 5227) -----

#[test]
fn an_unanswered_probe_binds_after_the_probe_time() {
    let mut n = net_with(Requests::Ack, berth::dhcp::DEFAULT_PROBES);
    // ACK at 20 ms; probes at 20, 220, 420 ms; bound 200 ms after the last.
    n.run_until(Instant::from_millis(610));
    assert_eq!(n.client.state(), State::Probing);
    assert!(n.events.is_empty(), "{:?}", n.events);
    assert_eq!(n.address(), Ipv4Addr::UNSPECIFIED, "not used while probed");
    n.run_until(secs(1));
    assert_eq!(n.client.state(), State::Bound);
    let (at, e) = &n.events[0];
    assert!(
        matches!(e, Event::Bound(l) if l.address.address() == LEASED),
        "{e:?}"
    );
    assert_eq!(*at, Instant::from_millis(620));
    assert_eq!(n.address(), LEASED);
    assert_eq!(n.a().stats().arp_probes_sent, 3);
    assert_eq!(n.a().stats().arp_conflicts, 0);
    // The server saw the probes (sender 0.0.0.0) and learned nothing from them.
    assert!(n.sim.node(n.b).neighbors().is_empty());
    assert_eq!(n.server.count(MessageType::Decline), 0);
}

#[test]
fn a_conflicting_reply_declines_the_address_and_restarts_after_the_wait() {
    let (mut n, others) = lan_with(&[(3, LEASED)], client_config(berth::dhcp::DEFAULT_PROBES));
    // A socket on port 67 of the third host: what it gets was broadcast.
    let c = others[0];
    let listener = n.sim.node_mut(c).udp_socket();
    n.sim
        .node_mut(c)
        .udp_bind(listener, "0.0.0.0:67".parse::<SocketAddr>().unwrap())
        .unwrap();
    n.run_until(secs(5));
    // 192.0.2.50 answers the first probe: DECLINEd, never configured.
    let declined: Vec<_> = n
        .events
        .iter()
        .filter(|e| matches!(e.1, Event::Declined { .. }))
        .collect();
    assert_eq!(declined.len(), 1, "{:?}", n.events);
    let (at, e) = declined[0];
    assert_eq!(
        *e,
        Event::Declined {
            address: LEASED,
            server: SERVER,
            owner: mac(3),
        }
    );
    // DISCOVER, OFFER, REQUEST, ACK over two 5 ms hops (40 ms), the probe
    // out and the reply back (20 ms).
    assert_eq!(*at, Instant::from_millis(60));
    assert_eq!(n.client.state(), State::Init);
    assert_eq!(n.address(), Ipv4Addr::UNSPECIFIED);
    assert!(n.a().source_for(Ipv4Addr::new(203, 0, 113, 9)).is_err());
    assert_eq!(n.a().stats().arp_probes_sent, 1);
    assert_eq!(n.a().stats().arp_conflicts, 1);
    assert!(!n.events.iter().any(|e| matches!(e.1, Event::Bound(_))));

    // The DECLINE on the wire: broadcast (the third host got it), from
    // 0.0.0.0, RFC 2131 table 5's fields.
    let decline = received(&mut n.sim, c, listener)
        .into_iter()
        .find(|(b, _)| parse(b).message_type == MessageType::Decline)
        .expect("a DECLINE, broadcast");
    assert_eq!(decline.1.ip(), IpAddr::from(Ipv4Addr::UNSPECIFIED));
    let r = parse(&decline.0);
    assert_eq!(r.requested_ip, Some(LEASED), "option 50");
    assert_eq!(r.server_id, Some(SERVER), "option 54");
    assert_eq!(
        (r.ciaddr, r.yiaddr),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
    );
    assert_eq!(r.chaddr, mac(1));
    assert_eq!(r.secs, 0);
    assert_eq!(
        (r.parameter_request_list, r.host_name, r.lease_time),
        (None, None, None),
        "MUST NOT options"
    );
    assert!(r.message.is_some(), "option 56 says why");
    let server_saw: Vec<_> = n
        .server
        .seen
        .iter()
        .filter(|s| s.1 == MessageType::Decline)
        .collect();
    assert_eq!(server_saw.len(), 1);
    assert_eq!(server_saw[0].0, Instant::from_millis(70));

    // No DISCOVER until the 10 s hold-off has passed (RFC 2131 §3.1 step 5).
    let discovers = |n: &Net| -> Vec<Instant> {
        n.server
            .seen
            .iter()
            .filter(|s| s.1 == MessageType::Discover)
            .map(|s| s.0)
            .collect()
    };
    assert_eq!(discovers(&n), [Instant::from_millis(10)]);
    n.run_until(Instant::from_millis(10_059));
    assert_eq!(discovers(&n).len(), 1);
    // Then the next address (this server, like dnsmasq, moves on), probed
    // and bound: nobody holds 192.0.2.51.
    n.run_until(secs(12));
    assert_eq!(
        discovers(&n),
        [Instant::from_millis(10), Instant::from_millis(10_070)]
    );
    let Some((at, Event::Bound(l))) = n.events.last() else {
        panic!("{:?}", n.events)
    };
    assert_eq!(l.address.address(), Ipv4Addr::new(192, 0, 2, 51));
    // The second ACK at 10.100 s, 3 probes 200 ms apart, 200 ms after the last.
    assert_eq!(*at, Instant::from_millis(10_700));
    assert_eq!(n.address(), Ipv4Addr::new(192, 0, 2, 51));
    assert_eq!(n.a().stats().arp_probes_sent, 4);
}

#[test]
fn another_hosts_probe_for_the_address_is_a_conflict_too() {
    // A host probing 192.0.2.50 at the same time (RFC 5227 §2.1.1): here an
    // interface still at 0.0.0.0 probing it through the core.
    let (mut n, others) = lan_with(
        &[(4, Ipv4Addr::UNSPECIFIED)],
        client_config(berth::dhcp::DEFAULT_PROBES),
    );
    n.run_until(Instant::from_millis(100));
    assert_eq!(n.client.state(), State::Probing);
    let d = others[0];
    n.sim.node_mut(d).arp_probe(IfaceId(0), LEASED).unwrap();
    n.run_until(secs(1));
    assert!(
        n.events.iter().any(|e| e.1
            == Event::Declined {
                address: LEASED,
                server: SERVER,
                owner: mac(4)
            }),
        "{:?}",
        n.events
    );
    assert_eq!(n.address(), Ipv4Addr::UNSPECIFIED);
    // Declined at the first probe the client saw (sent at 100 ms, 10 ms over
    // the switch): its second probe (220 ms) never went out.
    let at = n
        .events
        .iter()
        .find(|e| matches!(e.1, Event::Declined { .. }));
    assert_eq!(at.map(|e| e.0), Some(Instant::from_millis(110)));
    assert_eq!(n.a().stats().arp_probes_sent, 1);
}

#[test]
fn a_shorter_decline_wait_is_honoured() {
    let config = DhcpConfig {
        decline_wait: Duration::from_secs(2),
        ..client_config(1)
    };
    let (mut n, _) = lan_with(&[(3, LEASED)], config);
    n.run_until(secs(3));
    let times: Vec<Instant> = n
        .server
        .seen
        .iter()
        .filter(|s| s.1 == MessageType::Discover)
        .map(|s| s.0)
        .collect();
    assert_eq!(
        times,
        [Instant::from_millis(10), Instant::from_millis(2_070)]
    );
    assert!(matches!(n.events.last(), Some((_, Event::Bound(_)))));
}

#[test]
fn a_renewal_does_not_probe() {
    let mut n = net_with(Requests::Ack, berth::dhcp::DEFAULT_PROBES);
    n.run_until(secs(15));
    assert!(
        n.events.iter().any(|e| matches!(e.1, Event::Renewed(_))),
        "{:?}",
        n.events
    );
    // The three of the first binding, none at T1.
    assert_eq!(n.a().stats().arp_probes_sent, 3);
    assert_eq!(n.client.state(), State::Bound);
}

#[test]
fn no_probes_binds_at_once() {
    let mut n = net_with(Requests::Ack, 0);
    n.run_until(secs(1));
    assert_eq!(n.events[0].0, Instant::from_millis(20));
    assert!(matches!(n.events[0].1, Event::Bound(_)));
    assert_eq!(n.a().stats().arp_probes_sent, 0);
}

#[test]
fn an_ip_link_has_no_arp_to_probe_with() {
    let mut sim = Simulator::new(3);
    let ip_stack = |n: u8, addr: Ipv4Addr, prefix: u8| {
        let mut s = CoreStack::new(Config {
            seed: Some(u64::from(n)),
            dad_transmits: 0,
            ..Config::default()
        });
        s.add_interface(IfaceConfig {
            medium: CoreMedium::Ip,
            address: Ipv4Cidr::new(addr, prefix).expect("cidr"),
            mtu: 1500,
        })
        .expect("interface");
        s
    };
    let a = sim.add_node(ip_stack(1, Ipv4Addr::UNSPECIFIED, 32));
    let b = sim.add_node(ip_stack(2, SERVER, 24));
    let cfg = LinkConfig {
        medium: Medium::Ip,
        ..link()
    };
    sim.connect((a, 0), (b, 0), cfg);
    let config = DhcpConfig {
        client_mac: Some(mac(1)),
        ..client_config(berth::dhcp::DEFAULT_PROBES)
    };
    let client = Client::new(sim.node_mut(a), Instant::ZERO, IfaceId(0), &config).expect("client");
    let server = DhcpServer::new(sim.node_mut(b), SERVER, LEASED, Requests::Ack);
    let mut n = Net {
        sim,
        a,
        b,
        client,
        server,
        events: Vec::new(),
    };
    n.run_until(secs(1));
    assert_eq!(n.events[0].0, Instant::from_millis(20));
    assert!(matches!(n.events[0].1, Event::Bound(_)));
    assert_eq!(n.a().stats().arp_probes_sent, 0);
}

/// Every datagram queued on `h` of node `id`, with its source.
fn received(
    sim: &mut Simulator<CoreStack>,
    id: NodeId,
    h: SocketHandle,
) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Ok((len, from)) = sim.node_mut(id).udp_recv_from(h, &mut buf) {
        out.push((buf[..len].to_vec(), from));
    }
    out
}

fn parse(b: &[u8]) -> DhcpRepr<'_> {
    DhcpPacket::new_checked(b)
        .and_then(|p| DhcpRepr::parse(&p))
        .expect("a DHCP message")
}
