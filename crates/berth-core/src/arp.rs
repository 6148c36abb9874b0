//! ARP (RFC 826) on the stack: answering requests, learning senders, and
//! resolving next hops through the neighbour cache.

use crate::config::Medium;
use crate::iface::IfaceId;
use crate::link::ethernet_frame;
use crate::stack::{Stack, Transmit};
use crate::time::Instant;
use crate::timer::Timer;
use berth_wire::{arp, ArpPacket, ArpRepr, EtherType, EthernetAddress, Ipv4Addr};

impl Stack {
    // ---- ARP ----------------------------------------------------------------------

    pub(crate) fn arp_input(&mut self, now: Instant, iface: IfaceId, payload: &[u8]) {
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
        // RFC 826 "merge": update an existing entry from any ARP packet.
        let known = self.neighbors.contains(iface, spa);
        if repr.target_protocol_addr != our_ip {
            if known {
                self.learn(now, iface, spa, sha, mac);
            }
            self.stats.arp_in_not_for_us += 1;
            return;
        }
        // A request to us creates an entry for its sender, but only within the cache
        // bound: a flood of requests from made-up addresses must not grow it. The
        // reply below needs no entry.
        if known || self.neighbors.has_room(now, self.config.arp_cache_size) {
            self.learn(now, iface, spa, sha, mac);
        }
        if repr.operation == berth_wire::ArpOperation::Request {
            let reply = ArpRepr {
                operation: berth_wire::ArpOperation::Reply,
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

    /// Record `ip → hw` and send what waited for it.
    fn learn(
        &mut self,
        now: Instant,
        iface: IfaceId,
        ip: Ipv4Addr,
        hw: EthernetAddress,
        our_mac: EthernetAddress,
    ) {
        let expires = now + self.config.arp_reachable_time;
        let waiting = self.neighbors.set_reachable(iface, ip, hw, expires);
        for pkt in waiting {
            self.tx.push_back(Transmit {
                iface,
                frame: ethernet_frame(our_mac, hw, EtherType::Ipv4, &pkt),
            });
        }
    }

    pub(crate) fn arp_resolve(&mut self, now: Instant, iface: IfaceId, ip: Ipv4Addr, pkt: Vec<u8>) {
        use crate::neighbor::Enqueue;
        let retry_at = now + self.config.arp_retry_interval;
        match self.neighbors.enqueue(
            now,
            iface,
            ip,
            pkt,
            self.config.arp_queue_len,
            self.config.arp_cache_size,
            self.config.arp_retries,
            retry_at,
        ) {
            Enqueue::Started => {
                self.send_arp_request(iface, ip);
                self.timers.arm(retry_at, Timer::Neighbor(iface, ip.into()));
            }
            Enqueue::Queued => {}
            Enqueue::QueueFull => self.stats.arp_queue_dropped += 1,
            Enqueue::CacheFull => self.stats.arp_cache_full += 1,
        }
    }

    fn send_arp_request(&mut self, iface: IfaceId, ip: Ipv4Addr) {
        let ifc = &self.ifaces[iface.0];
        let Medium::Ethernet(mac) = ifc.config.medium else {
            return;
        };
        let req = ArpRepr {
            operation: berth_wire::ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: ifc.addr(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        let mut buf = [0u8; arp::PACKET_LEN];
        req.emit(&mut buf);
        self.tx.push_back(Transmit {
            iface,
            frame: ethernet_frame(mac, EthernetAddress::BROADCAST, EtherType::Arp, &buf),
        });
        self.stats.arp_requests_sent += 1;
    }

    pub(crate) fn arp_retry(&mut self, now: Instant, iface: IfaceId, ip: std::net::IpAddr) {
        let std::net::IpAddr::V4(ip) = ip else {
            return;
        };
        use crate::neighbor::Retry;
        let next = now + self.config.arp_retry_interval;
        match self.neighbors.retry(now, iface, ip, next) {
            Retry::Resend => {
                self.send_arp_request(iface, ip);
                self.timers.arm(next, Timer::Neighbor(iface, ip.into()));
            }
            Retry::GaveUp(dropped) => {
                self.stats.arp_resolve_failed += 1;
                self.stats.arp_queue_dropped += dropped as u64;
            }
            Retry::Stale => {}
        }
    }
}
