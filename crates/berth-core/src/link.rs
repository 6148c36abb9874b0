//! Link output: an IP packet onto an interface, framed for its medium and
//! with the next hop resolved on Ethernet.

use crate::config::Medium;
use crate::iface::IfaceId;
use crate::neighbor::{Failure, NeighborParams, Output, Resolve, Solicit};
use crate::stack::{Stack, Transmit};
use crate::time::Instant;
use crate::timer::Timer;
use berth_wire::ipv6::multicast_mac;
use berth_wire::{ethernet, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use std::net::IpAddr;

impl Stack {
    /// Put an IP packet on an interface, resolving the next hop on Ethernet
    /// (IPv6 multicast maps straight to a 33:33 MAC, RFC 2464 §7).
    pub(crate) fn link_send(
        &mut self,
        now: Instant,
        iface: IfaceId,
        next_hop: IpAddr,
        pkt: Vec<u8>,
    ) {
        let ifc = &self.ifaces[iface.0];
        match ifc.config.medium {
            Medium::Ip => self.tx.push_back(Transmit { iface, frame: pkt }),
            Medium::Ethernet(mac) => {
                if let IpAddr::V6(group) = next_hop {
                    if let Some(dst) = multicast_mac(&group) {
                        self.tx.push_back(Transmit {
                            iface,
                            frame: ethernet_frame(mac, dst, EtherType::Ipv6, &pkt),
                        });
                        return;
                    }
                }
                if matches!(next_hop, IpAddr::V4(a) if ifc.is_broadcast(a)) {
                    self.tx.push_back(Transmit {
                        iface,
                        frame: ethernet_frame(
                            mac,
                            EthernetAddress::BROADCAST,
                            EtherType::Ipv4,
                            &pkt,
                        ),
                    });
                    return;
                }
                self.neighbor_send(now, iface, next_hop, pkt);
            }
        }
    }

    // ---- the neighbour cache on a medium (neighbor.rs holds the state machine) ----

    /// The neighbour-cache parameters for `ip`'s family: ARP's from the config,
    /// RFC 4861's for IPv6.
    pub(crate) fn neighbor_params(&self, ip: IpAddr) -> NeighborParams {
        match ip {
            IpAddr::V4(_) => self.arp_params(),
            IpAddr::V6(_) => NeighborParams {
                queue_len: self.config.arp_queue_len,
                ..NeighborParams::RFC4861
            },
        }
    }

    /// Send the IP packet `pkt` to the on-link neighbour `ip` on an Ethernet
    /// interface, resolving its address first if needed.
    pub(crate) fn neighbor_send(&mut self, now: Instant, iface: IfaceId, ip: IpAddr, pkt: Vec<u8>) {
        let Medium::Ethernet(mac) = self.ifaces[iface.0].config.medium else {
            return;
        };
        if let Some(dst) = self.neighbors.reachable_hw(now, (iface, ip)) {
            self.tx.push_back(Transmit {
                iface,
                frame: ethernet_frame(mac, dst, ethertype_of(ip), &pkt),
            });
            return;
        }
        let p = self.neighbor_params(ip);
        let (res, out) = self.neighbors.resolve(now, (iface, ip), pkt, &p);
        match res {
            Resolve::Send(dst, pkt) => self.tx.push_back(Transmit {
                iface,
                frame: ethernet_frame(mac, dst, ethertype_of(ip), &pkt),
            }),
            Resolve::Queued(false) => {}
            Resolve::Queued(true) => self.stats.arp_queue_dropped += 1,
            Resolve::CacheFull => self.stats.arp_cache_full += 1,
        }
        self.neighbor_output(iface, ip, out);
    }

    /// `Timer::Neighbor` fired.
    pub(crate) fn neighbor_timer(&mut self, now: Instant, iface: IfaceId, ip: IpAddr) {
        let p = self.neighbor_params(ip);
        let out = self.neighbors.timer(now, (iface, ip), &p);
        self.neighbor_output(iface, ip, out);
    }

    /// Do what the neighbour cache asked: solicit (through the family's protocol),
    /// arm the entry's timer, send packets that waited, count.
    pub(crate) fn neighbor_output(&mut self, iface: IfaceId, ip: IpAddr, out: Output) {
        self.stats.neigh_reclaimed += out.reclaimed as u64;
        self.stats.neigh_lladdr_changed += u64::from(out.lladdr_changed);
        if let Some(s) = out.solicit {
            match ip {
                IpAddr::V4(v4) => self.arp_solicit(iface, v4, s),
                IpAddr::V6(v6) => self.ndp_solicit(iface, v6, s),
            }
            if let Solicit::Unicast(_) = s {
                self.stats.neigh_ucast_probes += 1;
            }
        }
        if let Some(at) = out.arm {
            self.timers.arm(at, Timer::Neighbor(iface, ip));
        }
        if let Some((dst, queue)) = out.flush {
            if let Medium::Ethernet(mac) = self.ifaces[iface.0].config.medium {
                for pkt in queue {
                    self.tx.push_back(Transmit {
                        iface,
                        frame: ethernet_frame(mac, dst, ethertype_of(ip), &pkt),
                    });
                }
            }
        }
        if let Some(f) = out.failed {
            self.stats.neigh_failed += 1;
            if let Failure::Resolution { dropped } = f {
                self.stats.arp_resolve_failed += 1;
                self.stats.arp_queue_dropped += dropped as u64;
            }
        }
    }
}

fn ethertype_of(ip: IpAddr) -> EtherType {
    match ip {
        IpAddr::V4(_) => EtherType::Ipv4,
        IpAddr::V6(_) => EtherType::Ipv6,
    }
}

/// Build an Ethernet II frame around `payload`.
pub(crate) fn ethernet_frame(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + payload.len()];
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut frame = EthernetFrame::new_unchecked(&mut f[..]);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    f
}
