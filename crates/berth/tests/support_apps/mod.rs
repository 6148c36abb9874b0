//! Test peers for the resolver and the DHCP client: a small DNS server and a
//! small DHCP server, both on a berth-core stack (so they run in the
//! simulator), the DNS answer logic also usable from a runtime thread, and a
//! loop that steps the simulator while polling applications at their
//! deadlines.

#![allow(dead_code)]

use berth::core::{Instant, SocketHandle, Stack};
use berth::sim::Simulator;
use berth::wire::dhcp::{AddrList, DhcpPacket, DhcpRepr, MessageType};
use berth::wire::dns::{rtype, Builder, DnsPacket, Flags, Rcode};
use berth::wire::{EthernetAddress, Ipv4Addr};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

/// Step `sim` until `end`, calling `tick` at every step (it polls the
/// applications and returns their earliest deadline). `tick` runs once more
/// at `end`.
pub fn drive(
    sim: &mut Simulator<Stack>,
    end: Instant,
    mut tick: impl FnMut(&mut Simulator<Stack>) -> Option<Instant>,
) {
    for _ in 0..1_000_000 {
        let app = tick(sim);
        sim.flush();
        let ev = sim.next_event_time();
        let next = match (ev, app) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match next {
            Some(t) if t <= end => {
                if ev == Some(t) {
                    sim.step();
                } else {
                    sim.run_until(t);
                }
            }
            _ => {
                sim.run_until(end);
                tick(sim);
                sim.flush();
                return;
            }
        }
    }
    panic!("the simulation did not reach {end:?}");
}

/// What the DNS server knows: addresses per name, aliases, and the names
/// whose UDP answers it truncates (TC) so that clients come back over TCP.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub addrs: HashMap<String, Vec<IpAddr>>,
    pub cnames: HashMap<String, String>,
    pub truncate: HashSet<String>,
}

impl Zone {
    pub fn with(mut self, name: &str, ip: &str) -> Zone {
        let ip: IpAddr = ip.parse().expect("test address");
        self.addrs.entry(name.to_string()).or_default().push(ip);
        self
    }
    pub fn alias(mut self, name: &str, target: &str) -> Zone {
        self.cnames.insert(name.to_string(), target.to_string());
        self
    }
    pub fn truncated(mut self, name: &str) -> Zone {
        self.truncate.insert(name.to_string());
        self
    }

    /// The answer to `query` (over TCP or UDP); `None` for what is not a query.
    pub fn respond(&self, query: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
        let p = DnsPacket::new_checked(query).ok()?;
        if p.flags().response {
            return None;
        }
        let q = p.questions().next()?;
        let name = q.name.to_string().to_ascii_lowercase();
        let target = self.cnames.get(&name).cloned().unwrap_or(name.clone());
        let known = self.addrs.contains_key(&target);
        let flags = |rcode, truncated| Flags {
            response: true,
            recursion_available: true,
            truncated,
            rcode,
            ..Flags::QUERY
        };
        let qname = q.name.to_string();
        if !known {
            return Builder::new(p.id(), flags(Rcode::NxDomain, false))
                .question(&qname, q.qtype)
                .ok()
                .map(Builder::finish);
        }
        if !over_tcp && self.truncate.contains(&name) {
            return Builder::new(p.id(), flags(Rcode::NoError, true))
                .question(&qname, q.qtype)
                .ok()
                .map(Builder::finish);
        }
        let mut b = Builder::new(p.id(), flags(Rcode::NoError, false))
            .question(&qname, q.qtype)
            .ok()?;
        if target != name {
            b = b.cname(&qname, 60, &target).ok()?;
        }
        for ip in &self.addrs[&target] {
            b = match (ip, q.qtype) {
                (IpAddr::V4(a), rtype::A) => b.answer(&target, rtype::A, 60, &a.octets()).ok()?,
                (IpAddr::V6(a), rtype::AAAA) => {
                    b.answer(&target, rtype::AAAA, 60, &a.octets()).ok()?
                }
                _ => b,
            };
        }
        Some(b.finish())
    }
}

/// A DNS server on port 53 (UDP and TCP) of a core stack.
pub struct DnsServer {
    pub zone: Zone,
    udp: SocketHandle,
    listener: SocketHandle,
    conns: Vec<(SocketHandle, Vec<u8>)>,
    /// UDP queries to drop before answering any (a lost first query).
    pub drop_udp: u32,
    /// Queries seen: over UDP (dropped ones included) and over TCP.
    pub udp_queries: u32,
    pub tcp_queries: u32,
}

impl DnsServer {
    pub fn new(core: &mut Stack, zone: Zone) -> DnsServer {
        let any: SocketAddr = "0.0.0.0:53".parse().expect("address");
        let udp = core.udp_socket();
        core.udp_bind(udp, any).expect("udp 53");
        let listener = core.tcp_socket();
        core.tcp_bind(listener, any).expect("tcp 53");
        core.tcp_listen(listener, 8).expect("listen");
        DnsServer {
            zone,
            udp,
            listener,
            conns: Vec::new(),
            drop_udp: 0,
            udp_queries: 0,
            tcp_queries: 0,
        }
    }

    pub fn poll(&mut self, core: &mut Stack, now: Instant) {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = core.udp_recv_from(self.udp, &mut buf) {
            self.udp_queries += 1;
            if self.drop_udp > 0 {
                self.drop_udp -= 1;
                continue;
            }
            if let Some(a) = self.zone.respond(&buf[..n], false) {
                core.udp_send_to(now, self.udp, &a, from).expect("answer");
            }
        }
        while let Ok((h, _)) = core.tcp_accept(self.listener) {
            self.conns.push((h, Vec::new()));
        }
        for (h, rx) in &mut self.conns {
            while let Ok(n) = core.tcp_recv(now, *h, &mut buf) {
                if n == 0 {
                    break;
                }
                rx.extend_from_slice(&buf[..n]);
            }
            // RFC 7766 §8: a two-octet length before each message.
            while rx.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([rx[0], rx[1]]));
                if rx.len() < 2 + len {
                    break;
                }
                let q: Vec<u8> = rx.drain(..2 + len).skip(2).collect();
                self.tcp_queries += 1;
                if let Some(a) = self.zone.respond(&q, true) {
                    let framed = berth::wire::dns::tcp_frame(&a).expect("fits");
                    core.tcp_send(now, *h, &framed).expect("tcp answer");
                }
            }
        }
    }
}

/// How the DHCP server answers REQUESTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// ACK every one.
    Ack,
    /// NAK the first, ACK the rest.
    NakFirst,
    /// ACK only REQUESTs that select an offer; stay silent to renewals
    /// (so the lease runs out).
    IgnoreRenewals,
}

/// A DHCP server on port 67 of a core stack, leasing one address.
pub struct DhcpServer {
    udp: SocketHandle,
    pub me: Ipv4Addr,
    pub offer: Ipv4Addr,
    pub lease_secs: u32,
    pub t1: u32,
    pub t2: u32,
    pub mode: Requests,
    /// (when, type, ciaddr, source address) of every client message.
    pub seen: Vec<(Instant, MessageType, Ipv4Addr, IpAddr)>,
    naks: u32,
}

impl DhcpServer {
    pub fn new(core: &mut Stack, me: Ipv4Addr, offer: Ipv4Addr, mode: Requests) -> DhcpServer {
        let udp = core.udp_socket();
        core.udp_bind(udp, "0.0.0.0:67".parse::<SocketAddr>().expect("address"))
            .expect("udp 67");
        DhcpServer {
            udp,
            me,
            offer,
            lease_secs: 120,
            t1: 10,
            t2: 20,
            mode,
            seen: Vec::new(),
            naks: 0,
        }
    }

    pub fn count(&self, t: MessageType) -> usize {
        self.seen.iter().filter(|s| s.1 == t).count()
    }

    pub fn poll(&mut self, core: &mut Stack, now: Instant) {
        let mut buf = vec![0u8; 1500];
        let mut answers = Vec::new();
        while let Ok((n, from)) = core.udp_recv_from(self.udp, &mut buf) {
            let Ok(r) = DhcpPacket::new_checked(&buf[..n]).and_then(|p| DhcpRepr::parse(&p)) else {
                continue;
            };
            self.seen.push((now, r.message_type, r.ciaddr, from.ip()));
            let reply = match r.message_type {
                MessageType::Discover => Some(MessageType::Offer),
                MessageType::Request => {
                    let selecting = r.server_id.is_some();
                    match self.mode {
                        Requests::NakFirst if self.naks == 0 => {
                            self.naks += 1;
                            Some(MessageType::Nak)
                        }
                        Requests::IgnoreRenewals if !selecting => None,
                        _ => Some(MessageType::Ack),
                    }
                }
                // Another address next time, as dnsmasq does after a DECLINE.
                MessageType::Decline if r.requested_ip == Some(self.offer) => {
                    let next = u32::from(self.offer).wrapping_add(1);
                    self.offer = Ipv4Addr::from(next);
                    None
                }
                _ => None,
            };
            if let Some(t) = reply {
                answers.push(self.reply(t, &r));
            }
        }
        for (bytes, to) in answers {
            core.udp_send_to(now, self.udp, &bytes, SocketAddr::new(to.into(), 68))
                .expect("dhcp reply");
        }
    }

    fn reply(&self, t: MessageType, req: &DhcpRepr<'_>) -> (Vec<u8>, Ipv4Addr) {
        let times = (self.lease_secs, self.t1, self.t2);
        dhcp_answer(t, req, self.me, self.offer, times)
    }
}

/// The server's `t` answer to `req`: `offer` from server `me`, mask /24,
/// `me` as router and DNS server, (lease, T1, T2) seconds; and where it goes
/// (RFC 2131 §4.1: to ciaddr when the client has one, else broadcast).
pub fn dhcp_answer(
    t: MessageType,
    req: &DhcpRepr<'_>,
    me: Ipv4Addr,
    offer: Ipv4Addr,
    (lease, t1, t2): (u32, u32, u32),
) -> (Vec<u8>, Ipv4Addr) {
    let mut r = DhcpRepr::new(t, req.xid, req.chaddr);
    r.server_id = Some(me);
    r.broadcast = req.broadcast;
    if t != MessageType::Nak {
        r.yiaddr = offer;
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.routers = AddrList::new(&[me]);
        r.dns_servers = AddrList::new(&[me]);
        r.lease_time = Some(lease);
        r.renewal_time = Some(t1);
        r.rebinding_time = Some(t2);
    } else {
        r.message = Some(b"wrong network");
    }
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b);
    let to = if req.ciaddr.is_unspecified() || t == MessageType::Nak {
        Ipv4Addr::BROADCAST
    } else {
        req.ciaddr
    };
    (b, to)
}

/// An always-granting server's answer to the client message `bytes`: its
/// type, and the OFFER or ACK to send back (none to a RELEASE);
/// `None` for what is not a client message.
pub fn dhcp_reply(
    bytes: &[u8],
    me: Ipv4Addr,
    offer: Ipv4Addr,
) -> Option<(Option<Vec<u8>>, MessageType)> {
    let r = DhcpPacket::new_checked(bytes)
        .and_then(|p| DhcpRepr::parse(&p))
        .ok()?;
    let answer = match r.message_type {
        MessageType::Discover => Some(MessageType::Offer),
        MessageType::Request => Some(MessageType::Ack),
        _ => None,
    };
    let bytes = answer.map(|t| dhcp_answer(t, &r, me, offer, (120, 60, 105)).0);
    Some((bytes, r.message_type))
}

/// 02:00:00:00:00:n.
pub fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, n])
}
