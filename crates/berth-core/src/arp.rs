//! ARP (RFC 826) on the stack: answering requests, learning senders into the
//! neighbour cache (neighbor.rs) and sending the requests it asks for.

use crate::config::Medium;
use crate::error::{code, error};
use crate::iface::{ArpWatch, IfaceId, ARP_WATCH_MAX};
use crate::link::ethernet_frame;
use crate::neighbor::{Learn, NeighborParams, Solicit};
use crate::stack::{Stack, Transmit};
use crate::time::Instant;
use berth_wire::{arp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, Ipv4Addr};
use std::io;
use std::net::IpAddr;

impl Stack {
    // ---- ARP ----------------------------------------------------------------------

    /// An ARP packet arrived; `unicast`: sent to our MAC rather than broadcast.
    pub(crate) fn arp_input(
        &mut self,
        now: Instant,
        iface: IfaceId,
        payload: &[u8],
        unicast: bool,
    ) {
        self.stats.arp_in += 1;
        let Ok(repr) = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p)) else {
            self.stats.arp_in_malformed += 1;
            return;
        };
        let Medium::Ethernet(mac) = self.ifaces[iface.0].config.medium else {
            return;
        };
        // Before the checks below: another host's probe (sender 0.0.0.0) is
        // a conflict too, but nothing to learn from.
        self.arp_watch_input(iface, &repr, mac);
        let our_ip = self.ifaces[iface.0].addr();
        let spa = repr.source_protocol_addr;
        let sha = repr.source_hardware_addr;
        // An interface without an address yet (DHCP) owns no address to answer for.
        let for_us = repr.target_protocol_addr == our_ip && !our_ip.is_unspecified();
        if sha.is_unicast() && spa.is_unspecified() && repr.operation == ArpOperation::Request {
            // An RFC 5227 §2.1.1 probe: nothing to learn; answered when it is for
            // our address, so that the prober sees the conflict (as Linux does).
            if for_us {
                self.arp_reply(iface, mac, our_ip, sha, spa);
            } else {
                self.stats.arp_in_not_for_us += 1;
            }
            return;
        }
        if !sha.is_unicast() || spa.is_unspecified() || spa.is_broadcast() {
            self.stats.arp_in_malformed += 1;
            return;
        }
        // RFC 826 "merge": any ARP packet updates an existing entry; one targeted at
        // us creates an entry for its sender, within the cache bound (a flood of
        // requests from made-up addresses must not grow it; the reply needs none).
        // A unicast reply is an answer to our request: a solicited advertisement
        // with override (Linux arp_process); requests, gratuitous ARP and broadcast
        // replies only carry the sender's address, like an NS (RFC 4861 §7.2.3).
        let msg = if repr.operation == ArpOperation::Reply && unicast {
            Learn::Advertisement {
                solicited: true,
                override_: true,
            }
        } else {
            Learn::Solicitation
        };
        let ip = IpAddr::V4(spa);
        let p = self.arp_params();
        let out = self.neighbors.learn(now, (iface, ip), sha, msg, for_us, &p);
        self.neighbor_output(iface, ip, out);
        if self.config.arp_merge_confirms {
            self.neighbors.confirm(now, (iface, ip), &p);
        }
        if !for_us {
            self.stats.arp_in_not_for_us += 1;
            return;
        }
        if repr.operation == ArpOperation::Request {
            self.arp_reply(iface, mac, our_ip, sha, spa);
        }
    }

    /// Answer a request from `sha`/`spa` for our `our_ip`, unicast to its sender.
    fn arp_reply(
        &mut self,
        iface: IfaceId,
        mac: EthernetAddress,
        our_ip: Ipv4Addr,
        sha: EthernetAddress,
        spa: Ipv4Addr,
    ) {
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: our_ip,
            target_hardware_addr: sha,
            target_protocol_addr: spa,
        };
        let mut buf = [0u8; arp::PACKET_LEN];
        reply.emit(&mut buf);
        self.tx.push_back(Transmit {
            iface,
            frame: ethernet_frame(mac, sha, EtherType::Arp, &buf),
        });
        self.stats.arp_replies_sent += 1;
    }

    /// ARP's neighbour-cache parameters, from the config.
    pub(crate) fn arp_params(&self) -> NeighborParams {
        let c = &self.config;
        NeighborParams {
            base_reachable_time: c.arp_reachable_time,
            random_factor_pct: if c.arp_reachable_random {
                (50, 150)
            } else {
                (100, 100)
            },
            retrans_timer: c.arp_retry_interval,
            delay_first_probe_time: c.arp_delay_first_probe,
            max_multicast_solicit: c.arp_retries.saturating_add(1),
            max_unicast_solicit: c.arp_ucast_probes,
            queue_len: c.arp_queue_len,
        }
    }

    /// Send an ARP request for `ip`: broadcast to resolve it, or unicast to the
    /// cached address to probe it (RFC 4861 §7.3.3 PROBE; Linux arp_solicit).
    pub(crate) fn arp_solicit(&mut self, iface: IfaceId, ip: Ipv4Addr, how: Solicit) {
        let ifc = &self.ifaces[iface.0];
        let Medium::Ethernet(mac) = ifc.config.medium else {
            return;
        };
        let req = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: ifc.addr(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        let dst = match how {
            Solicit::Multicast => EthernetAddress::BROADCAST,
            Solicit::Unicast(hw) => hw,
        };
        let mut buf = [0u8; arp::PACKET_LEN];
        req.emit(&mut buf);
        self.tx.push_back(Transmit {
            iface,
            frame: ethernet_frame(mac, dst, EtherType::Arp, &buf),
        });
        self.stats.arp_requests_sent += 1;
    }

    // ---- address conflict detection (RFC 5227) -------------------------------------

    /// Send one ARP probe for `addr` on `iface` (RFC 5227 §2.1.1: a broadcast
    /// request from our MAC with sender IP 0.0.0.0, so that no one's cache
    /// learns an address we may not get to keep) and watch for conflicting
    /// ARP for it until [`Stack::arp_probe_done`]: [`Stack::arp_conflict`]
    /// tells what was seen. Probing again keeps what was seen so far. At most
    /// four addresses are watched per interface; a fifth replaces the oldest.
    /// An interface without ARP (an IP link) is `Unsupported`.
    pub fn arp_probe(&mut self, iface: IfaceId, addr: Ipv4Addr) -> io::Result<()> {
        let Some(ifc) = self.ifaces.get_mut(iface.0) else {
            return Err(error(code::EINVAL, format!("no interface {}", iface.0)));
        };
        let Medium::Ethernet(mac) = ifc.config.medium else {
            return Err(error(
                code::EOPNOTSUPP,
                "ARP probe on an interface without ARP (an IP link)",
            ));
        };
        if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            return Err(error(code::EINVAL, format!("cannot probe {addr}")));
        }
        if !ifc.arp_watch.iter().any(|w| w.addr == addr) {
            if ifc.arp_watch.len() >= ARP_WATCH_MAX {
                ifc.arp_watch.remove(0);
            }
            ifc.arp_watch.push(ArpWatch {
                addr,
                conflict: None,
            });
        }
        let probe = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: Ipv4Addr::UNSPECIFIED,
            // RFC 5227 §2.1.1: target hardware address "SHOULD be set to all zeroes".
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: addr,
        };
        let mut buf = [0u8; arp::PACKET_LEN];
        probe.emit(&mut buf);
        self.tx.push_back(Transmit {
            iface,
            frame: ethernet_frame(mac, EthernetAddress::BROADCAST, EtherType::Arp, &buf),
        });
        self.stats.arp_probes_sent += 1;
        Ok(())
    }

    /// The hardware address of a host that claimed `addr` on `iface` since
    /// [`Stack::arp_probe`] started watching it, if one did.
    pub fn arp_conflict(&self, iface: IfaceId, addr: Ipv4Addr) -> Option<EthernetAddress> {
        self.ifaces
            .get(iface.0)?
            .arp_watch
            .iter()
            .find(|w| w.addr == addr)?
            .conflict
    }

    /// Stop watching `addr` on `iface` (the probe is over).
    pub fn arp_probe_done(&mut self, iface: IfaceId, addr: Ipv4Addr) {
        if let Some(ifc) = self.ifaces.get_mut(iface.0) {
            ifc.arp_watch.retain(|w| w.addr != addr);
        }
    }

    /// Record a conflict with a watched address (RFC 5227 §2.1.1): any ARP
    /// packet whose sender IP is the address, or another host's probe for
    /// it (sender 0.0.0.0, target the address, sender MAC not ours). Our own
    /// MAC is no conflict (a frame of ours reflected back).
    fn arp_watch_input(&mut self, iface: IfaceId, repr: &ArpRepr, mac: EthernetAddress) {
        let Some(ifc) = self.ifaces.get_mut(iface.0) else {
            return;
        };
        let sha = repr.source_hardware_addr;
        if ifc.arp_watch.is_empty() || sha == mac {
            return;
        }
        let spa = repr.source_protocol_addr;
        let probe_for = (repr.operation == ArpOperation::Request && spa.is_unspecified())
            .then_some(repr.target_protocol_addr);
        for w in ifc.arp_watch.iter_mut() {
            if w.conflict.is_none() && (spa == w.addr || probe_for == Some(w.addr)) {
                w.conflict = Some(sha);
                self.stats.arp_conflicts += 1;
            }
        }
    }
}
