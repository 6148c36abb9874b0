//! Link output: an IP packet onto an interface, framed for its medium and
//! with the next hop resolved on Ethernet.

use crate::config::Medium;
use crate::iface::IfaceId;
use crate::stack::{Stack, Transmit};
use crate::time::Instant;
use berth_wire::{ethernet, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Ipv4Addr};

impl Stack {
    /// Put an IP packet on an interface, resolving the next hop on Ethernet.
    pub(crate) fn link_send(
        &mut self,
        now: Instant,
        iface: IfaceId,
        next_hop: Ipv4Addr,
        pkt: Vec<u8>,
    ) {
        let ifc = &self.ifaces[iface.0];
        match ifc.config.medium {
            Medium::Ip => self.tx.push_back(Transmit { iface, frame: pkt }),
            Medium::Ethernet(mac) => {
                if ifc.is_broadcast(next_hop) {
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
                match self.neighbors.lookup(now, iface, next_hop) {
                    Some(dst) => self.tx.push_back(Transmit {
                        iface,
                        frame: ethernet_frame(mac, dst, EtherType::Ipv4, &pkt),
                    }),
                    None => self.arp_resolve(now, iface, next_hop, pkt),
                }
            }
        }
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
