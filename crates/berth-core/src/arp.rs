//! ARP (RFC 826) on the stack: answering requests, learning senders into the
//! neighbour cache (neighbor.rs) and sending the requests it asks for.

use crate::config::Medium;
use crate::iface::IfaceId;
use crate::link::ethernet_frame;
use crate::neighbor::{Learn, NeighborParams, Solicit};
use crate::stack::{Stack, Transmit};
use crate::time::Instant;
use berth_wire::{arp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, Ipv4Addr};
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
        let our_ip = self.ifaces[iface.0].addr();
        let spa = repr.source_protocol_addr;
        let sha = repr.source_hardware_addr;
        if !sha.is_unicast() || spa.is_unspecified() || spa.is_broadcast() {
            self.stats.arp_in_malformed += 1;
            return;
        }
        // An interface without an address yet (DHCP) owns no address to answer for.
        let for_us = repr.target_protocol_addr == our_ip && !our_ip.is_unspecified();
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
}
