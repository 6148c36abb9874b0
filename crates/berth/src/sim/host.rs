//! berth-core stacks as simulator nodes, and a ready-made two-host topology.

use super::{LinkConfig, LinkId, Medium, Node, NodeId, Simulator};
use berth_core::time::Instant;
use berth_core::{Config, IfaceConfig, IfaceId, Stack};
use berth_wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr};
use std::io;
use std::net::IpAddr;

impl Node for Stack {
    fn receive(&mut self, now: Instant, port: usize, frame: &[u8]) {
        Stack::receive(self, now, IfaceId(port), frame);
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        Stack::poll_transmit(self, now).map(|t| (t.iface.0, t.frame))
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Stack::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Stack::handle_timeout(self, now);
    }
}

/// Two hosts on one link, each with both families: A is 192.0.2.1/24 and
/// 2001:db8::1/64, B is 192.0.2.2/24 and 2001:db8::2/64 (RFC 5737 and RFC 3849
/// documentation addresses), plus their link-local fe80::/64 addresses; on
/// Ethernet their MACs are 02:00:00:00:00:01 and :02.
///
/// Duplicate Address Detection is off in both stacks (`Config::dad_transmits`
/// 0): the addresses are usable at time zero and the hosts send nothing before
/// a workload does, so an IPv4 run has exactly the frames it had before the
/// hosts had IPv6.
///
/// The workloads ([`super::workload`]) reach B over [`TwoHosts::ipv6`]'s family.
pub struct TwoHosts {
    /// The simulator with the two stacks.
    pub sim: Simulator<Stack>,
    /// Host A.
    pub a: NodeId,
    /// Host B.
    pub b: NodeId,
    /// The link between them.
    pub link: LinkId,
    /// A's IPv4 address ([`TwoHosts::ADDR_A`]).
    pub addr_a: Ipv4Addr,
    /// B's IPv4 address ([`TwoHosts::ADDR_B`]).
    pub addr_b: Ipv4Addr,
    /// A's IPv6 address ([`TwoHosts::ADDR6_A`]).
    pub addr6_a: Ipv6Addr,
    /// B's IPv6 address ([`TwoHosts::ADDR6_B`]).
    pub addr6_b: Ipv6Addr,
    /// The workloads run over IPv6 (`berth sim … -6`) instead of IPv4.
    pub ipv6: bool,
}

impl TwoHosts {
    /// 192.0.2.1 (RFC 5737).
    pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    /// 192.0.2.2 (RFC 5737).
    pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    /// 2001:db8::1 (RFC 3849).
    pub const ADDR6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    /// 2001:db8::2 (RFC 3849).
    pub const ADDR6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A's address in the workloads' family.
    pub fn ip_a(&self) -> IpAddr {
        if self.ipv6 {
            self.addr6_a.into()
        } else {
            self.addr_a.into()
        }
    }

    /// B's address in the workloads' family.
    pub fn ip_b(&self) -> IpAddr {
        if self.ipv6 {
            self.addr6_b.into()
        } else {
            self.addr_b.into()
        }
    }

    /// The wildcard address of the workloads' family (`0.0.0.0` or `::`).
    pub fn ip_any(&self) -> IpAddr {
        if self.ipv6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        }
    }

    /// Build the topology. Each stack's seed is derived from `seed`, so the whole run
    /// is a function of `seed` and the link configuration.
    pub fn new(seed: u64, link: LinkConfig) -> io::Result<TwoHosts> {
        TwoHosts::with_tcp(seed, link, berth_core::TcpConfig::default())
    }

    /// [`TwoHosts::new`] with both stacks on the TCP settings `tcp` (e.g.
    /// [`berth_core::TcpConfig::linux`]).
    pub fn with_tcp(
        seed: u64,
        link: LinkConfig,
        tcp: berth_core::TcpConfig,
    ) -> io::Result<TwoHosts> {
        let mut sim = Simulator::new(seed);
        let make = |n: u8, addr: Ipv4Addr, addr6: Ipv6Addr| -> io::Result<Stack> {
            let mut s = Stack::new(Config {
                seed: Some(
                    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .wrapping_add(n as u64),
                ),
                tcp: tcp.clone(),
                dad_transmits: 0,
                ..Config::default()
            });
            let medium = match link.medium {
                Medium::Ethernet => {
                    berth_core::Medium::Ethernet(EthernetAddress([0x02, 0, 0, 0, 0, n]))
                }
                Medium::Ip => berth_core::Medium::Ip,
            };
            let address = Ipv4Cidr::new(addr, 24)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad prefix"))?;
            let iface = s.add_interface(IfaceConfig {
                medium,
                address,
                mtu: link.mtu,
            })?;
            let cidr6 = Ipv6Cidr::new(addr6, 64)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad prefix"))?;
            s.add_address(Instant::ZERO, iface, cidr6)?;
            Ok(s)
        };
        let a = sim.add_node(make(1, Self::ADDR_A, Self::ADDR6_A)?);
        let b = sim.add_node(make(2, Self::ADDR_B, Self::ADDR6_B)?);
        let link = sim.connect((a, 0), (b, 0), link);
        Ok(TwoHosts {
            sim,
            a,
            b,
            link,
            addr_a: Self::ADDR_A,
            addr_b: Self::ADDR_B,
            addr6_a: Self::ADDR6_A,
            addr6_b: Self::ADDR6_B,
            ipv6: false,
        })
    }
}
