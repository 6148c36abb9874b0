//! berth-core stacks as simulator nodes, and a ready-made two-host topology.

use super::{LinkConfig, LinkId, Medium, Node, NodeId, Simulator};
use berth_core::time::Instant;
use berth_core::{Config, IfaceConfig, IfaceId, Stack};
use berth_wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use std::io;

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

/// Two hosts on one link: A is 192.0.2.1/24, B is 192.0.2.2/24 (RFC 5737
/// documentation addresses); on Ethernet their MACs are 02:00:00:00:00:01 and :02.
pub struct TwoHosts {
    pub sim: Simulator<Stack>,
    pub a: NodeId,
    pub b: NodeId,
    pub link: LinkId,
    pub addr_a: Ipv4Addr,
    pub addr_b: Ipv4Addr,
}

impl TwoHosts {
    pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

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
        let make = |n: u8, addr: Ipv4Addr| -> io::Result<Stack> {
            let mut s = Stack::new(Config {
                seed: Some(
                    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .wrapping_add(n as u64),
                ),
                tcp: tcp.clone(),
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
            s.add_interface(IfaceConfig {
                medium,
                address,
                mtu: link.mtu,
            })?;
            Ok(s)
        };
        let a = sim.add_node(make(1, Self::ADDR_A)?);
        let b = sim.add_node(make(2, Self::ADDR_B)?);
        let link = sim.connect((a, 0), (b, 0), link);
        Ok(TwoHosts {
            sim,
            a,
            b,
            link,
            addr_a: Self::ADDR_A,
            addr_b: Self::ADDR_B,
        })
    }
}
