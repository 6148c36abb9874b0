//! The IP layer for either family: one header value (`IpRepr`) that transport
//! code reads without caring which version carried it (smoltcp's `IpRepr` is
//! the model). Family-specific fields (IPv4's ident and flags, IPv6's flow
//! label and extension headers) stay in the family's own repr.

use crate::ipv4::{IpProtocol, Ipv4Cidr, Ipv4Repr};
use crate::ipv6::{Ipv6Cidr, Ipv6Repr};
use core::fmt;
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
///
/// For IPv6 the value is the one the upper layer sees: `next_header` is the
/// upper-layer protocol and `payload_len` its length, extension headers removed
/// ([`Ipv6Repr::upper_layer`] makes it from a parsed header and its walk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr {
    Ipv4(Ipv4Repr),
    Ipv6(Ipv6Repr),
}

impl IpRepr {
    pub fn version(&self) -> IpVersion {
        match self {
            IpRepr::Ipv4(_) => IpVersion::V4,
            IpRepr::Ipv6(_) => IpVersion::V6,
        }
    }
    pub fn src_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(r) => r.src_addr.into(),
            IpRepr::Ipv6(r) => r.src_addr.into(),
        }
    }
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(r) => r.dst_addr.into(),
            IpRepr::Ipv6(r) => r.dst_addr.into(),
        }
    }
    /// The transport protocol (IPv4 Protocol, IPv6 upper-layer Next Header).
    pub fn protocol(&self) -> IpProtocol {
        match self {
            IpRepr::Ipv4(r) => r.protocol,
            IpRepr::Ipv6(r) => r.next_header,
        }
    }
    /// Bytes after the IP header(s): the transport segment's length.
    pub fn payload_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(r) => r.payload_len,
            IpRepr::Ipv6(r) => r.payload_len,
        }
    }
    /// TTL (IPv4) or Hop Limit (IPv6).
    pub fn hop_limit(&self) -> u8 {
        match self {
            IpRepr::Ipv4(r) => r.ttl,
            IpRepr::Ipv6(r) => r.hop_limit,
        }
    }
    /// Length of the header berth emits for this value (no options or extension
    /// headers).
    pub fn header_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(r) => r.header_len(),
            IpRepr::Ipv6(r) => r.header_len(),
        }
    }
    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len()
    }
    /// Write the header into the start of `buf` (IPv4 with its checksum). Panics if
    /// `buf` is shorter than `header_len()`.
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            IpRepr::Ipv4(r) => r.emit(buf),
            IpRepr::Ipv6(r) => r.emit(buf),
        }
    }
}

impl From<Ipv6Repr> for IpRepr {
    fn from(r: Ipv6Repr) -> Self {
        IpRepr::Ipv6(r)
    }
}

/// An address with a prefix length, of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpCidr {
    Ipv4(Ipv4Cidr),
    Ipv6(Ipv6Cidr),
}

impl IpCidr {
    /// `None` when the prefix is longer than the family's address.
    pub fn new(address: IpAddr, prefix_len: u8) -> Option<Self> {
        match address {
            IpAddr::V4(a) => Ipv4Cidr::new(a, prefix_len).map(IpCidr::Ipv4),
            IpAddr::V6(a) => Ipv6Cidr::new(a, prefix_len).map(IpCidr::Ipv6),
        }
    }
    pub fn address(&self) -> IpAddr {
        match self {
            IpCidr::Ipv4(c) => c.address().into(),
            IpCidr::Ipv6(c) => c.address().into(),
        }
    }
    pub fn prefix_len(&self) -> u8 {
        match self {
            IpCidr::Ipv4(c) => c.prefix_len(),
            IpCidr::Ipv6(c) => c.prefix_len(),
        }
    }
    pub fn network(&self) -> IpCidr {
        match self {
            IpCidr::Ipv4(c) => IpCidr::Ipv4(c.network()),
            IpCidr::Ipv6(c) => IpCidr::Ipv6(c.network()),
        }
    }
    /// False for an address of the other family.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr) {
            (IpCidr::Ipv4(c), IpAddr::V4(a)) => c.contains(a),
            (IpCidr::Ipv6(c), IpAddr::V6(a)) => c.contains(a),
            _ => false,
        }
    }
}

impl From<Ipv4Cidr> for IpCidr {
    fn from(c: Ipv4Cidr) -> Self {
        IpCidr::Ipv4(c)
    }
}

impl From<Ipv6Cidr> for IpCidr {
    fn from(c: Ipv6Cidr) -> Self {
        IpCidr::Ipv6(c)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::Ipv4(c) => c.fmt(f),
            IpCidr::Ipv6(c) => c.fmt(f),
        }
    }
}

impl core::str::FromStr for IpCidr {
    type Err = String;
    /// IPv6 when the address has a ':', IPv4 otherwise.
    fn from_str(s: &str) -> core::result::Result<Self, String> {
        if s.split('/').next().is_some_and(|a| a.contains(':')) {
            s.parse().map(IpCidr::Ipv6)
        } else {
            s.parse().map(IpCidr::Ipv4)
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

    #[test]
    fn ipv6_fields_through_the_family_neutral_repr() {
        let r = Ipv6Repr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_header: IpProtocol::TCP,
            payload_len: 20,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 1,
        };
        let ip = IpRepr::from(r);
        assert_eq!(ip.version(), IpVersion::V6);
        assert_eq!(ip.src_addr(), IpAddr::V6(r.src_addr));
        assert_eq!(ip.dst_addr(), IpAddr::V6(r.dst_addr));
        assert_eq!(ip.protocol(), IpProtocol::TCP);
        assert_eq!(ip.payload_len(), 20);
        assert_eq!(ip.hop_limit(), 255);
        assert_eq!((ip.header_len(), ip.buffer_len()), (40, 60));
        let mut a = [0u8; 40];
        let mut b = [0u8; 40];
        ip.emit(&mut a);
        r.emit(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn cidr_of_either_family() {
        let c: IpCidr = "2001:db8::5/32".parse().unwrap();
        assert!(matches!(c, IpCidr::Ipv6(_)));
        assert!(c.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!c.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(c.network().to_string(), "2001:db8::/32");
        assert_eq!(c.prefix_len(), 32);
        let d: IpCidr = "192.0.2.7/24".parse().unwrap();
        assert!(d.contains(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200))));
        assert_eq!(d.address(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        assert!(IpCidr::new("::1".parse().unwrap(), 129).is_none());
        assert!(IpCidr::new("10.0.0.1".parse().unwrap(), 33).is_none());
        assert!("2001:db8::1/200".parse::<IpCidr>().is_err());
    }
}
