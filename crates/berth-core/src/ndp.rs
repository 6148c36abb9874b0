//! Neighbor Discovery (RFC 4861) and stateless address autoconfiguration
//! (RFC 4862) on the stack: answering and learning from solicitations and
//! advertisements through the shared neighbour cache (`neighbor.rs`, which
//! ARP uses too), Duplicate Address Detection, router advertisements turned
//! into prefixes, a default router, an MTU and hop limit, and SLAAC addresses
//! with RFC 7217 stable interface identifiers.

use crate::config::Medium;
use crate::iface::{AddrOrigin, AddrState, IfaceId, Route};
use crate::ipv6::{ALL_NODES, ALL_ROUTERS};
use crate::neighbor::{Learn, Solicit};
use crate::stack::Stack;
use crate::time::{Duration, Instant};
use crate::timer::Timer;
use berth_wire::ipv6::{is_link_local, solicited_node};
use berth_wire::{
    EthernetAddress, Icmpv6Repr, IpCidr, Ipv6Addr, Ipv6Cidr, Ipv6Repr, NdpOption, NdpRepr,
};
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::IpAddr;

/// RFC 4861 §10: RetransTimer, the spacing of DAD and router solicitations.
const RETRANS_TIMER: Duration = Duration::from_secs(1);
/// RFC 4861 §10: MAX_RTR_SOLICITATIONS and RTR_SOLICITATION_INTERVAL.
const MAX_RTR_SOLICITATIONS: u32 = 3;
const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// RFC 4862 §5.5.3(e): a received valid lifetime under two hours shortens an
/// autoconfigured address's remaining lifetime only down to two hours.
const TWO_HOURS: Duration = Duration::from_secs(7200);
/// RFC 7217 §6: give up after this many DAD conflicts of one prefix.
const IDGEN_RETRIES: u32 = 3;

impl Stack {
    /// Our MAC on `iface`, if it is Ethernet (NDP runs only there).
    fn ethernet_mac(&self, iface: IfaceId) -> Option<EthernetAddress> {
        match self.ifaces.get(iface.0)?.config.medium {
            Medium::Ethernet(mac) => Some(mac),
            Medium::Ip => None,
        }
    }

    /// A neighbour-discovery message arrived (already checksummed and parsed).
    pub(crate) fn ndp_input(
        &mut self,
        now: Instant,
        iface: Option<IfaceId>,
        ip: &Ipv6Repr,
        msg: &NdpRepr,
    ) {
        // RFC 4861 §6.1, §7.1: hop limit 255 (only a neighbour can send it),
        // link-local sources for router messages, the rules for ::.
        if msg
            .check_ip(&ip.src_addr, &ip.dst_addr, ip.hop_limit)
            .is_err()
        {
            self.stats.ndp_in_invalid += 1;
            return;
        }
        let Some(iface) = iface else { return };
        match *msg {
            NdpRepr::NeighborSolicit { target_addr, .. } => {
                self.stats.ndp_in_solicits += 1;
                self.ndp_solicit_input(now, iface, ip, msg, target_addr);
            }
            NdpRepr::NeighborAdvert {
                solicited_flag,
                override_flag,
                target_addr,
                ..
            } => {
                self.stats.ndp_in_adverts += 1;
                if self.dad_conflict(iface, target_addr) {
                    return;
                }
                let Some(hw) = msg.target_lladdr() else {
                    // Without the option only a REACHABLE entry could be
                    // confirmed; berth keeps the entry until NUD asks again.
                    return;
                };
                let key = IpAddr::V6(target_addr);
                let p = self.neighbor_params(key);
                let learn = Learn::Advertisement {
                    solicited: solicited_flag,
                    override_: override_flag,
                };
                // §7.2.5: an advertisement for an address with no entry (one we
                // never asked about) is dropped, creating nothing.
                if !self.neighbors.contains((iface, key)) {
                    self.stats.ndp_in_unsolicited_ignored += 1;
                    return;
                }
                let out = self
                    .neighbors
                    .learn(now, (iface, key), hw, learn, false, &p);
                self.neighbor_output(iface, key, out);
            }
            NdpRepr::RouterAdvert { .. } => {
                self.stats.ndp_in_router_adverts += 1;
                self.learn_source(now, iface, ip.src_addr, msg.source_lladdr());
                self.ndp_router_advert(now, iface, ip.src_addr, msg);
            }
            // A host ignores solicitations for routers (§6.2.6).
            NdpRepr::RouterSolicit { .. } => self.stats.ndp_in_ignored += 1,
            // Redirects would change the route of one destination; berth keeps
            // its routes (counted, so a capture can be matched up).
            NdpRepr::Redirect { .. } => self.stats.ndp_in_ignored += 1,
        }
    }

    /// Learn a neighbour's link-layer address from a solicitation or RA.
    fn learn_source(
        &mut self,
        now: Instant,
        iface: IfaceId,
        src: Ipv6Addr,
        lladdr: Option<EthernetAddress>,
    ) {
        let Some(hw) = lladdr.filter(|_| !src.is_unspecified()) else {
            return;
        };
        let key = IpAddr::V6(src);
        let p = self.neighbor_params(key);
        let out = self
            .neighbors
            .learn(now, (iface, key), hw, Learn::Solicitation, true, &p);
        self.neighbor_output(iface, key, out);
    }

    fn ndp_solicit_input(
        &mut self,
        now: Instant,
        iface: IfaceId,
        ip: &Ipv6Repr,
        msg: &NdpRepr,
        target: Ipv6Addr,
    ) {
        let Some(addr) = self.ifaces[iface.0]
            .v6
            .iter()
            .find(|a| a.addr() == target)
            .copied()
        else {
            self.stats.ndp_in_not_for_us += 1;
            return;
        };
        match addr.state {
            AddrState::Tentative { .. } => {
                // RFC 4862 §5.4.3: another node's DAD for the same address (from
                // ::) means a duplicate; any other solicitation is ignored.
                if ip.src_addr.is_unspecified() {
                    self.dad_failed(now, iface, target);
                }
                return;
            }
            AddrState::Duplicate => return,
            AddrState::Preferred | AddrState::Deprecated => {}
        }
        self.learn_source(now, iface, ip.src_addr, msg.source_lladdr());
        let Some(mac) = self.ethernet_mac(iface) else {
            return;
        };
        // §7.2.4: solicited answer to the sender; to a DAD probe (from ::),
        // to all nodes and not solicited. Override set: it is our own address.
        let (to, solicited) = if ip.src_addr.is_unspecified() {
            (ALL_NODES, false)
        } else {
            (ip.src_addr, true)
        };
        let mut opts = [0u8; 8];
        NdpOption::emit_all(&[NdpOption::TargetLinkLayerAddr(mac)], &mut opts);
        let na = Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
            router_flag: false,
            solicited_flag: solicited,
            override_flag: true,
            target_addr: target,
            options: &opts,
        });
        if self.icmpv6_send(now, target, to, &na, Some(iface)).is_ok() {
            self.stats.ndp_out_adverts += 1;
        }
    }

    /// The neighbour cache wants `target` solicited (resolution, or a NUD
    /// probe to its cached address).
    pub(crate) fn ndp_solicit(&mut self, iface: IfaceId, target: Ipv6Addr, how: Solicit) {
        let Some(mac) = self.ethernet_mac(iface) else {
            return;
        };
        // §7.2.2: from an address of the interface, the one the packet that
        // needs resolving would use if we knew it; the best for the target.
        let Some(src) = self.source_on(iface, target) else {
            return;
        };
        let dst = match how {
            Solicit::Multicast => solicited_node(&target),
            Solicit::Unicast(_) => target,
        };
        let mut opts = [0u8; 8];
        NdpOption::emit_all(&[NdpOption::SourceLinkLayerAddr(mac)], &mut opts);
        let ns = Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit {
            target_addr: target,
            options: &opts,
        });
        if self
            .icmpv6_send(self.last_now, src, dst, &ns, Some(iface))
            .is_ok()
        {
            self.stats.ndp_out_solicits += 1;
        }
    }

    // ---- Duplicate Address Detection (RFC 4862 §5.4) -------------------------------

    /// Start DAD for a tentative address: a solicitation from :: to its
    /// solicited-node group, again every RetransTimer until none are left.
    pub(crate) fn dad_start(&mut self, now: Instant, iface: IfaceId, addr: Ipv6Addr) {
        self.dad_send(now, iface, addr);
        self.timers
            .arm(now + RETRANS_TIMER, Timer::Dad(iface, addr));
    }

    fn dad_send(&mut self, now: Instant, iface: IfaceId, addr: Ipv6Addr) {
        let ns = Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit {
            target_addr: addr,
            options: &[],
        });
        if self
            .icmpv6_send(
                now,
                Ipv6Addr::UNSPECIFIED,
                solicited_node(&addr),
                &ns,
                Some(iface),
            )
            .is_ok()
        {
            self.stats.ndp_out_dad_solicits += 1;
        }
    }

    /// `Timer::Dad` fired: the last solicitation went unanswered, so the
    /// address is ours; or send the next one.
    pub(crate) fn dad_timer(&mut self, now: Instant, iface: IfaceId, addr: Ipv6Addr) {
        let Some(a) = self
            .ifaces
            .get_mut(iface.0)
            .and_then(|f| f.v6.iter_mut().find(|a| a.addr() == addr))
        else {
            return;
        };
        let AddrState::Tentative { left } = a.state else {
            return;
        };
        if left > 1 {
            a.state = AddrState::Tentative { left: left - 1 };
            self.dad_send(now, iface, addr);
            self.timers
                .arm(now + RETRANS_TIMER, Timer::Dad(iface, addr));
            return;
        }
        a.state = AddrState::Preferred;
        let (origin, link_local) = (a.origin, is_link_local(&addr));
        self.stats.ndp_dad_ok += 1;
        // RFC 4861 §6.3.7: once the link-local address is usable, an
        // autoconfiguring host solicits routers.
        if link_local && origin == AddrOrigin::LinkLocal && self.ifaces[iface.0].autoconf {
            self.ifaces[iface.0].rs_left = MAX_RTR_SOLICITATIONS;
            self.router_solicit_timer(now, iface);
        }
    }

    /// A neighbour advertised `target`: if it is one of our tentative
    /// addresses, DAD failed (RFC 4862 §5.4.4). Returns whether it was.
    fn dad_conflict(&mut self, iface: IfaceId, target: Ipv6Addr) -> bool {
        let tentative = self.ifaces[iface.0]
            .v6
            .iter()
            .any(|a| a.addr() == target && matches!(a.state, AddrState::Tentative { .. }));
        if tentative {
            self.dad_failed(self.last_now, iface, target);
        }
        tentative
    }

    /// RFC 4862 §5.4.5: the address is a duplicate and is never used. An
    /// autoconfigured one is formed again with the next DAD counter (RFC 7217
    /// §6), a few times.
    fn dad_failed(&mut self, now: Instant, iface: IfaceId, addr: Ipv6Addr) {
        self.stats.ndp_dad_failed += 1;
        let Some(a) = self.ifaces[iface.0]
            .v6
            .iter_mut()
            .find(|a| a.addr() == addr)
        else {
            return;
        };
        a.state = AddrState::Duplicate;
        let (cidr, origin, valid, preferred) = (a.cidr, a.origin, a.valid_until, a.preferred_until);
        if origin != AddrOrigin::Autoconf {
            return;
        }
        let tries = self.ifaces[iface.0].dad_conflicts + 1;
        self.ifaces[iface.0].dad_conflicts = tries;
        if tries > IDGEN_RETRIES {
            return;
        }
        let prefix = cidr.network();
        let next = self.stable_address(iface, prefix.address(), tries);
        if let Some(c) = Ipv6Cidr::new(next, 64) {
            let _ = self.add_address_v6(now, iface, c, AddrOrigin::Autoconf, (valid, preferred));
        }
    }

    // ---- routers and SLAAC ---------------------------------------------------------

    /// Turn autoconfiguration on for `iface` (Linux accept_ra + autoconf):
    /// router solicitations go out once the link-local address is usable, and
    /// advertised prefixes become addresses.
    pub(crate) fn ndp_enable_autoconf(&mut self, now: Instant, iface: IfaceId) {
        let ifc = &mut self.ifaces[iface.0];
        ifc.autoconf = true;
        if ifc.link_local().is_some() {
            ifc.rs_left = MAX_RTR_SOLICITATIONS;
            self.router_solicit_timer(now, iface);
        }
    }

    /// Send a router solicitation and arm the next, while any are left and no
    /// router has answered.
    pub(crate) fn router_solicit_timer(&mut self, now: Instant, iface: IfaceId) {
        let ifc = &mut self.ifaces[iface.0];
        if ifc.rs_left == 0 || !ifc.autoconf || !ifc.routers.is_empty() {
            return;
        }
        ifc.rs_left -= 1;
        let Some(src) = ifc.link_local() else { return };
        let Some(mac) = self.ethernet_mac(iface) else {
            return;
        };
        let mut opts = [0u8; 8];
        NdpOption::emit_all(&[NdpOption::SourceLinkLayerAddr(mac)], &mut opts);
        let rs = Icmpv6Repr::Ndp(NdpRepr::RouterSolicit { options: &opts });
        if self
            .icmpv6_send(now, src, ALL_ROUTERS, &rs, Some(iface))
            .is_ok()
        {
            self.stats.ndp_out_router_solicits += 1;
        }
        self.timers
            .arm(now + RTR_SOLICITATION_INTERVAL, Timer::RouterSolicit(iface));
    }

    /// RFC 4861 §6.3.4: a router advertisement updates the default router,
    /// the link MTU and hop limit; with autoconfiguration on, its prefixes
    /// (RFC 4862 §5.5.3) become addresses.
    fn ndp_router_advert(&mut self, now: Instant, iface: IfaceId, router: Ipv6Addr, msg: &NdpRepr) {
        let NdpRepr::RouterAdvert {
            cur_hop_limit,
            router_lifetime,
            ..
        } = *msg
        else {
            return;
        };
        if !self.ifaces[iface.0].autoconf {
            return;
        }
        if cur_hop_limit != 0 {
            self.ifaces[iface.0].hop_limit = Some(cur_hop_limit);
        }
        if let Some(mtu) = msg.mtu() {
            // §6.3.4: ignore an MTU below IPv6's minimum or above the link's.
            let link = self.ifaces[iface.0].config.mtu;
            if (1280..=link as u32).contains(&mtu) {
                self.ifaces[iface.0].mtu6 = Some(mtu as usize);
            }
        }
        self.default_router(now, iface, router, router_lifetime);
        for pi in msg.prefix_infos() {
            // §5.5.3: link-local prefixes and preferred > valid are ignored.
            if is_link_local(&pi.prefix) || pi.preferred_lifetime > pi.valid_lifetime {
                continue;
            }
            if pi.on_link {
                if let Some(c) = Ipv6Cidr::new(pi.prefix, pi.prefix_len) {
                    self.routes.add(Route {
                        dest: IpCidr::Ipv6(c.network()),
                        gateway: None,
                        iface,
                    });
                }
            }
            // SLAAC forms /64 addresses from 64-bit interface identifiers.
            if pi.autonomous && pi.prefix_len == 64 {
                self.slaac_prefix(
                    now,
                    iface,
                    pi.prefix,
                    pi.valid_lifetime,
                    pi.preferred_lifetime,
                );
            }
        }
        self.arm_lifetimes(iface);
    }

    fn default_router(&mut self, now: Instant, iface: IfaceId, router: Ipv6Addr, lifetime: u16) {
        let ifc = &mut self.ifaces[iface.0];
        ifc.routers.retain(|(r, _)| *r != router);
        let any = default_route();
        if lifetime == 0 {
            // §6.3.4: lifetime 0 removes the router.
            if ifc.routers.is_empty() {
                self.routes.remove(any);
            }
            return;
        }
        ifc.routers
            .push((router, now + Duration::from_secs(lifetime.into())));
        self.routes.add(Route {
            dest: any,
            gateway: Some(router.into()),
            iface,
        });
    }

    /// RFC 4862 §5.5.3 (d)–(e) for one advertised prefix.
    fn slaac_prefix(
        &mut self,
        now: Instant,
        iface: IfaceId,
        prefix: Ipv6Addr,
        valid: u32,
        preferred: u32,
    ) {
        let until = |secs: u32| (secs != u32::MAX).then(|| now + Duration::from_secs(secs.into()));
        let net = Ipv6Cidr::new(prefix, 64).map(|c| c.network());
        let existing = self.ifaces[iface.0]
            .v6
            .iter_mut()
            .find(|a| a.origin == AddrOrigin::Autoconf && Some(a.cidr.network()) == net);
        if let Some(a) = existing {
            // (e): the valid lifetime is lowered below two hours only by an
            // advertisement that says so directly for what remains of it.
            let remaining = a.valid_until.map(|t| t.saturating_duration_since(now));
            let new = Duration::from_secs(valid.into());
            let take = new > TWO_HOURS || remaining.is_some_and(|r| new > r);
            a.valid_until = if take {
                until(valid)
            } else if remaining.is_some_and(|r| r > TWO_HOURS) {
                Some(now + TWO_HOURS)
            } else {
                a.valid_until
            };
            a.preferred_until = until(preferred);
            if a.state == AddrState::Deprecated && preferred > 0 {
                a.state = AddrState::Preferred;
            }
            return;
        }
        if valid == 0 {
            return;
        }
        let addr = self.stable_address(iface, prefix, self.ifaces[iface.0].dad_conflicts);
        if let Some(c) = Ipv6Cidr::new(addr, 64) {
            if self
                .add_address_v6(
                    now,
                    iface,
                    c,
                    AddrOrigin::Autoconf,
                    (until(valid), until(preferred)),
                )
                .is_ok()
            {
                self.stats.ndp_slaac_addrs += 1;
            }
        }
    }

    /// RFC 7217 §5: the interface identifier is a keyed hash of the prefix,
    /// the interface and the DAD counter: stable on a network, different on
    /// each, and not the MAC (RFC 8064 recommends this over EUI-64).
    pub(crate) fn stable_address(
        &self,
        iface: IfaceId,
        prefix: Ipv6Addr,
        dad_counter: u32,
    ) -> Ipv6Addr {
        let (k0, k1) = self.isn.subkeys(b"rfc7217");
        let mut h = SipHasher24::new_with_keys(k0, k1);
        h.write(&prefix.octets()[..8]);
        h.write_u64(iface.0 as u64);
        h.write_u32(dad_counter);
        let iid = h.finish();
        let mut o = prefix.octets();
        o[8..].copy_from_slice(&iid.to_be_bytes());
        Ipv6Addr::from(o)
    }

    /// Arm the lifetime timer of `iface` for its earliest address or router
    /// deadline.
    fn arm_lifetimes(&mut self, iface: IfaceId) {
        let ifc = &self.ifaces[iface.0];
        let addrs = ifc
            .v6
            .iter()
            .filter(|a| a.state != AddrState::Duplicate)
            .flat_map(|a| {
                [
                    a.valid_until,
                    a.preferred_until
                        .filter(|_| a.state == AddrState::Preferred),
                ]
            });
        let routers = ifc.routers.iter().map(|(_, t)| Some(*t));
        if let Some(at) = addrs.chain(routers).flatten().min() {
            self.timers.arm(at, Timer::Lifetimes(iface));
        }
    }

    /// `Timer::Lifetimes`: deprecate and remove addresses (RFC 4862 §5.5.4),
    /// and forget routers, whose lifetimes ended.
    pub(crate) fn lifetimes_timer(&mut self, now: Instant, iface: IfaceId) {
        let Some(ifc) = self.ifaces.get_mut(iface.0) else {
            return;
        };
        for a in ifc.v6.iter_mut() {
            if a.state == AddrState::Preferred && a.preferred_until.is_some_and(|t| t <= now) {
                a.state = AddrState::Deprecated;
            }
        }
        let before = ifc.v6.len();
        ifc.v6.retain(|a| a.valid_until.is_none_or(|t| t > now));
        self.stats.ndp_addrs_expired += (before - ifc.v6.len()) as u64;
        let routers_before = ifc.routers.len();
        ifc.routers.retain(|(_, t)| *t > now);
        if ifc.routers.len() != routers_before {
            let next = ifc.routers.first().map(|(r, _)| *r);
            let any = default_route();
            self.routes.remove(any);
            if let Some(r) = next {
                self.routes.add(Route {
                    dest: any,
                    gateway: Some(r.into()),
                    iface,
                });
            }
        }
        self.arm_lifetimes(iface);
    }
}

/// ::/0.
fn default_route() -> IpCidr {
    IpCidr::Ipv6(Ipv6Cidr::ANY)
}
