//! The IP layer for either family: one header value (`IpRepr`) that transport
//! code reads without caring which version carried it (smoltcp's `IpRepr` is
//! the model). Family-specific fields (IPv4's ident and flags, IPv6's flow
//! label and extension headers) stay in the family's own repr.

use crate::ipv4::{IpProtocol, Ipv4Repr};
use std::net::IpAddr;

/// IP version of a packet, from the first nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    /// The version a packet claims in its first nibble; `None` for anything else.
    pub fn of_packet(packet: &[u8]) -> Option<IpVersion> {
        match packet.first()? >> 4 {
            4 => Some(IpVersion::V4),
            6 => Some(IpVersion::V6),
            _ => None,
        }
    }
}

/// An IP header as a value, of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr {
    Ipv4(Ipv4Repr),
}

impl IpRepr {
    pub fn version(&self) -> IpVersion {
        match self {
            IpRepr::Ipv4(_) => IpVersion::V4,
        }
    }
    pub fn src_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(r) => r.src_addr.into(),
        }
    }
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(r) => r.dst_addr.into(),
        }
    }
    /// The transport protocol (IPv4 Protocol, IPv6 upper-layer Next Header).
    pub fn protocol(&self) -> IpProtocol {
        match self {
            IpRepr::Ipv4(r) => r.protocol,
        }
    }
    /// Bytes after the IP header(s): the transport segment's length.
    pub fn payload_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(r) => r.payload_len,
        }
    }
    /// TTL (IPv4) or Hop Limit (IPv6).
    pub fn hop_limit(&self) -> u8 {
        match self {
            IpRepr::Ipv4(r) => r.ttl,
        }
    }
}

impl From<Ipv4Repr> for IpRepr {
    fn from(r: Ipv4Repr) -> Self {
        IpRepr::Ipv4(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn version_nibble() {
        assert_eq!(IpVersion::of_packet(&[0x45]), Some(IpVersion::V4));
        assert_eq!(IpVersion::of_packet(&[0x60, 0]), Some(IpVersion::V6));
        assert_eq!(IpVersion::of_packet(&[0x50]), None);
        assert_eq!(IpVersion::of_packet(&[]), None);
    }

    #[test]
    fn ipv4_fields_through_the_family_neutral_repr() {
        let r = Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(192, 0, 2, 2),
            protocol: IpProtocol::UDP,
            payload_len: 12,
            ttl: 9,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let ip = IpRepr::from(r);
        assert_eq!(ip.version(), IpVersion::V4);
        assert_eq!(ip.src_addr(), IpAddr::V4(r.src_addr));
        assert_eq!(ip.dst_addr(), IpAddr::V4(r.dst_addr));
        assert_eq!(ip.protocol(), IpProtocol::UDP);
        assert_eq!(ip.payload_len(), 12);
        assert_eq!(ip.hop_limit(), 9);
    }
}
