//! Interfaces and the routing table (longest-prefix match, gateways).

use crate::config::IfaceConfig;
use berth_wire::{Ipv4Addr, Ipv4Cidr};

/// Index of an interface in the stack, in the order they were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceId(pub usize);

#[derive(Debug, Clone)]
pub(crate) struct Interface {
    pub config: IfaceConfig,
}

impl Interface {
    pub fn addr(&self) -> Ipv4Addr {
        self.config.address.address()
    }
    /// Is `dst` a broadcast for this interface: limited (255.255.255.255) or directed.
    pub fn is_broadcast(&self, dst: Ipv4Addr) -> bool {
        dst == Ipv4Addr::BROADCAST || self.config.address.broadcast() == Some(dst)
    }
}

/// A route: packets to `dest` leave on `iface`, to `gateway` if set, else on-link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dest: Ipv4Cidr,
    pub gateway: Option<Ipv4Addr>,
    pub iface: IfaceId,
}

/// The routing table. Lookups are a longest-prefix match over the routes, which are
/// few (a host has a handful); sockets are never scanned.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn add(&mut self, route: Route) {
        let dest = route.dest.network();
        self.routes.retain(|r| r.dest.network() != dest);
        self.routes.push(Route { dest, ..route });
        // Longest prefix first, so the first match wins.
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.dest.prefix_len()));
    }

    pub fn remove(&mut self, dest: Ipv4Cidr) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| r.dest.network() != dest.network());
        before != self.routes.len()
    }

    /// The most specific route for `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.routes.iter().find(|r| r.dest.contains(dst))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        t.add(Route {
            dest: cidr("0.0.0.0/0"),
            gateway: Some(Ipv4Addr::new(192, 0, 2, 254)),
            iface: IfaceId(0),
        });
        t.add(Route {
            dest: cidr("192.0.2.0/24"),
            gateway: None,
            iface: IfaceId(0),
        });
        t.add(Route {
            dest: cidr("198.51.100.0/25"),
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            iface: IfaceId(1),
        });
        let r = t.lookup(Ipv4Addr::new(192, 0, 2, 9)).unwrap();
        assert_eq!(r.gateway, None);
        let r = t.lookup(Ipv4Addr::new(198, 51, 100, 9)).unwrap();
        assert_eq!(r.iface, IfaceId(1));
        let r = t.lookup(Ipv4Addr::new(198, 51, 100, 200)).unwrap();
        assert_eq!(r.gateway, Some(Ipv4Addr::new(192, 0, 2, 254)));
        assert!(t.remove(cidr("0.0.0.0/0")));
        assert!(t.lookup(Ipv4Addr::new(198, 51, 100, 200)).is_none());
    }
}
