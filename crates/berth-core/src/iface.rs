//! Interfaces and the routing table (longest-prefix match, gateways), for both
//! families: one table of `IpCidr` routes, looked up with the destination's family.

use crate::config::IfaceConfig;
use crate::time::Instant;
use berth_wire::{EthernetAddress, IpCidr, Ipv4Addr, Ipv6Cidr};
use std::net::{IpAddr, Ipv6Addr};

/// Index of an interface in the stack, in the order they were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceId(pub usize);

#[derive(Debug, Clone)]
pub(crate) struct Interface {
    pub config: IfaceConfig,
    /// IPv6 addresses, the link-local one first (RFC 4291 §2.1: an interface
    /// has several).
    pub v6: Vec<Addr6>,
    /// Accept router advertisements and form SLAAC addresses (RFC 4862).
    pub autoconf: bool,
    /// Router solicitations still to send (RFC 4861 §6.3.7).
    pub rs_left: u32,
    /// Default routers from advertisements, with their lifetimes' ends.
    pub routers: Vec<(Ipv6Addr, Instant)>,
    /// DAD conflicts of autoconfigured addresses (RFC 7217's DAD_Counter).
    pub dad_conflicts: u32,
    /// Hop limit and MTU for IPv6 from a router advertisement (RFC 4861 §6.3.4).
    pub hop_limit: Option<u8>,
    pub mtu6: Option<usize>,
    /// Forwarding mode: unicast packets for any address are taken in
    /// (`forward.rs`).
    pub forwarding: bool,
    /// Addresses being probed (RFC 5227 §2.1.1), with the first conflicting
    /// sender seen; at most [`ARP_WATCH_MAX`].
    pub arp_watch: Vec<ArpWatch>,
}

/// Probes watched at once per interface: a DHCP client probes one address at
/// a time; the bound keeps callers that never finish from growing the set.
pub(crate) const ARP_WATCH_MAX: usize = 4;

/// One address under an ARP probe (RFC 5227 §2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArpWatch {
    pub addr: Ipv4Addr,
    /// The hardware address of the first conflicting sender.
    pub conflict: Option<EthernetAddress>,
}

impl Interface {
    pub fn new(config: IfaceConfig) -> Interface {
        Interface {
            config,
            v6: Vec::new(),
            autoconf: false,
            rs_left: 0,
            routers: Vec::new(),
            dad_conflicts: 0,
            hop_limit: None,
            mtu6: None,
            forwarding: false,
            arp_watch: Vec::new(),
        }
    }
}

/// Where an IPv6 address came from (`ip -6 addr` shows the same split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrOrigin {
    /// fe80::/64 made for the interface (RFC 4862 §5.3).
    LinkLocal,
    /// Given by the user.
    Manual,
    /// Formed from a router's prefix (SLAAC, RFC 4862 §5.5.3).
    Autoconf,
}

/// The state of an IPv6 address (RFC 4862 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrState {
    /// Duplicate Address Detection is running; `left` more solicitations to send.
    /// Not usable as a source, not answered for (RFC 4862 §5.4).
    Tentative {
        /// Solicitations still to send.
        left: u32,
    },
    /// Usable: the normal state of an address.
    Preferred,
    /// Past its preferred lifetime: kept for existing connections, not chosen
    /// for new ones (RFC 4862 §5.5.4).
    Deprecated,
    /// DAD found another node using it (RFC 4862 §5.4.5); never used.
    Duplicate,
}

/// One IPv6 address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr6 {
    /// The address and its prefix.
    pub cidr: Ipv6Cidr,
    /// Where it came from (link-local, manual or SLAAC).
    pub origin: AddrOrigin,
    /// Its DAD and lifetime state.
    pub state: AddrState,
    /// Valid and preferred lifetimes' ends (`None`: forever), from router
    /// advertisements for autoconfigured addresses.
    pub valid_until: Option<Instant>,
    /// End of the preferred lifetime (`None`: forever).
    pub preferred_until: Option<Instant>,
}

impl Addr6 {
    /// The address without its prefix length.
    pub fn addr(&self) -> Ipv6Addr {
        self.cidr.address()
    }
    /// Ours to receive on (RFC 4862 §5.4: not while tentative or duplicate).
    pub fn is_assigned(&self) -> bool {
        matches!(self.state, AddrState::Preferred | AddrState::Deprecated)
    }
}

impl Interface {
    pub fn addr(&self) -> Ipv4Addr {
        self.config.address.address()
    }
    /// The assigned IPv6 address `a`, if this interface has it.
    pub fn has_v6(&self, a: Ipv6Addr) -> bool {
        self.v6.iter().any(|x| x.addr() == a && x.is_assigned())
    }
    /// The link-local address, once assigned.
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.v6
            .iter()
            .find(|x| x.origin == AddrOrigin::LinkLocal && x.is_assigned())
            .map(Addr6::addr)
    }
    /// Is `dst` a broadcast for this interface: limited (255.255.255.255) or directed.
    pub fn is_broadcast(&self, dst: Ipv4Addr) -> bool {
        dst == Ipv4Addr::BROADCAST || self.config.address.broadcast() == Some(dst)
    }
}

/// A route: packets to `dest` leave on `iface`, to `gateway` if set, else on-link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dest: IpCidr,
    /// Next hop (`None`: on link).
    pub gateway: Option<IpAddr>,
    /// The interface the route leaves by.
    pub iface: IfaceId,
}

/// The routing table. Lookups are a longest-prefix match over the routes, which are
/// few (a host has a handful); sockets are never scanned.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Add a route, replacing one to the same destination.
    pub fn add(&mut self, route: Route) {
        let dest = route.dest.network();
        self.routes.retain(|r| r.dest.network() != dest);
        self.routes.push(Route { dest, ..route });
        // Longest prefix first, so the first match wins.
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.dest.prefix_len()));
    }

    /// Remove the route to `dest`; whether there was one.
    pub fn remove(&mut self, dest: IpCidr) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| r.dest.network() != dest.network());
        before != self.routes.len()
    }

    /// The most specific route for `dst` (only routes of its family match).
    pub fn lookup(&self, dst: impl Into<IpAddr>) -> Option<&Route> {
        let dst = dst.into();
        self.routes.iter().find(|r| r.dest.contains(dst))
    }

    /// The routes, most specific prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> IpCidr {
        s.parse().unwrap()
    }
    fn gw(a: Ipv4Addr) -> Option<IpAddr> {
        Some(a.into())
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        t.add(Route {
            dest: cidr("0.0.0.0/0"),
            gateway: gw(Ipv4Addr::new(192, 0, 2, 254)),
            iface: IfaceId(0),
        });
        t.add(Route {
            dest: cidr("192.0.2.0/24"),
            gateway: None,
            iface: IfaceId(0),
        });
        t.add(Route {
            dest: cidr("198.51.100.0/25"),
            gateway: gw(Ipv4Addr::new(192, 0, 2, 1)),
            iface: IfaceId(1),
        });
        let r = t.lookup(Ipv4Addr::new(192, 0, 2, 9)).unwrap();
        assert_eq!(r.gateway, None);
        let r = t.lookup(Ipv4Addr::new(198, 51, 100, 9)).unwrap();
        assert_eq!(r.iface, IfaceId(1));
        let r = t.lookup(Ipv4Addr::new(198, 51, 100, 200)).unwrap();
        assert_eq!(r.gateway, gw(Ipv4Addr::new(192, 0, 2, 254)));
        assert!(t.remove(cidr("0.0.0.0/0")));
        assert!(t.lookup(Ipv4Addr::new(198, 51, 100, 200)).is_none());
    }
}
