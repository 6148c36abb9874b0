//! IPv4 (RFC 791). Options are accepted and skipped; emitted headers carry none.

use crate::checksum;
use crate::{be16, ip4, put16, Error, Result};
use core::fmt;
use std::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;
/// Largest UDP payload that fits one IPv4 datagram: 65535 − 20 − 8.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// IP protocol number (the IPv4 Protocol field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const ICMP: IpProtocol = IpProtocol(1);
    pub const TCP: IpProtocol = IpProtocol(6);
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 hop-by-hop options (RFC 8200 §4.3).
    pub const HOPOPT: IpProtocol = IpProtocol(0);
    /// IPv6 routing header (RFC 8200 §4.4).
    pub const IPV6_ROUTE: IpProtocol = IpProtocol(43);
    /// IPv6 fragment header (RFC 8200 §4.5).
    pub const IPV6_FRAG: IpProtocol = IpProtocol(44);
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 No Next Header (RFC 8200 §4.7).
    pub const IPV6_NONXT: IpProtocol = IpProtocol(59);
    /// IPv6 destination options (RFC 8200 §4.6).
    pub const IPV6_OPTS: IpProtocol = IpProtocol(60);
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IpProtocol::ICMP => f.write_str("icmp"),
            IpProtocol::TCP => f.write_str("tcp"),
            IpProtocol::UDP => f.write_str("udp"),
            IpProtocol::HOPOPT => f.write_str("ipv6-hopopt"),
            IpProtocol::IPV6_ROUTE => f.write_str("ipv6-route"),
            IpProtocol::IPV6_FRAG => f.write_str("ipv6-frag"),
            IpProtocol::ICMPV6 => f.write_str("ipv6-icmp"),
            IpProtocol::IPV6_NONXT => f.write_str("ipv6-nonxt"),
            IpProtocol::IPV6_OPTS => f.write_str("ipv6-opts"),
            IpProtocol(n) => write!(f, "proto-{n}"),
        }
    }
}

/// An IPv4 address with a prefix length, e.g. `192.0.2.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// `None` when `prefix_len > 32`.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        if prefix_len > 32 {
            None
        } else {
            Some(Ipv4Cidr {
                address,
                prefix_len,
            })
        }
    }
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }
    fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        }
    }
    /// The network this address belongs to (host bits cleared).
    pub fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            address: Ipv4Addr::from(u32::from(self.address) & self.mask()),
            prefix_len: self.prefix_len,
        }
    }
    /// Directed broadcast address; `None` for /31 and /32 (RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.address) | !self.mask()))
    }
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (u32::from(addr) & self.mask()) == (u32::from(self.address) & self.mask())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl core::str::FromStr for Ipv4Cidr {
    type Err = String;
    fn from_str(s: &str) -> core::result::Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not ADDRESS/PREFIX, e.g. 192.0.2.1/24"))?;
        let address: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("'{a}' is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("'{p}' is not a prefix length 0..=32"))?;
        Ipv4Cidr::new(address, prefix).ok_or_else(|| format!("prefix length {prefix} > 32"))
    }
}

/// A view over an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }
    /// Checks the buffer holds the fixed header, the header length (IHL) and the total
    /// length, and that IHL ≥ 5 and IHL×4 ≤ total length ≤ buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = ((b[0] & 0x0f) as usize) * 4;
        let tl = be16(b, 2) as usize;
        if hl < MIN_HEADER_LEN || tl < hl {
            return Err(Error::BadLength);
        }
        if b.len() < hl || b.len() < tl {
            return Err(Error::Truncated);
        }
        Ok(Ipv4Packet { buffer })
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[0] & 0x0f) as usize) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn total_len(&self) -> usize {
        be16(self.buffer.as_ref(), 2) as usize
    }
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[6] & 0x40 != 0
    }
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), 6) & 0x1fff) << 3
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[9])
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        ip4(self.buffer.as_ref(), 12)
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        ip4(self.buffer.as_ref(), 16)
    }
    /// Header checksum verifies (sums to zero over the whole header, options included).
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// Bytes after the header up to the total length (link padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
    /// The header plus payload, without link padding.
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[8] = v;
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[12..16].copy_from_slice(&a.octets());
    }
    /// Recompute the header checksum over the header (options included).
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        put16(b, 10, 0);
        let c = checksum::checksum(&b[..hl]);
        put16(b, 10, c);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let tl = self.total_len();
        &mut self.buffer.as_mut()[hl..tl]
    }
}

/// An IPv4 header as a value. `payload_len` is the total length minus the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Validate version and checksum (lengths were checked by `new_checked`).
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Self> {
        // Re-check lengths so a view made with new_unchecked is safe too.
        let b = p.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = p.header_len();
        let tl = p.total_len();
        if hl < MIN_HEADER_LEN || tl < hl {
            return Err(Error::BadLength);
        }
        if b.len() < tl {
            return Err(Error::Truncated);
        }
        if !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        // Reserved flag bit must be zero (RFC 791 §3.1).
        if b[6] & 0x80 != 0 {
            return Err(Error::Malformed);
        }
        Ok(Ipv4Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: tl - hl,
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
        })
    }
    pub const fn header_len(&self) -> usize {
        MIN_HEADER_LEN
    }
    pub const fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN + self.payload_len
    }
    /// True for a fragment (not the only piece of its datagram).
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }
    /// Write the 20-byte header (checksum filled) into the start of `buf`.
    /// Panics if `buf` is shorter than 20 bytes (a caller bug).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = 0x45;
        buf[1] = self.dscp_ecn;
        put16(buf, 2, (MIN_HEADER_LEN + self.payload_len) as u16);
        put16(buf, 4, self.ident);
        let mut ff = (self.frag_offset >> 3) & 0x1fff;
        if self.dont_frag {
            ff |= 0x4000;
        }
        if self.more_frags {
            ff |= 0x2000;
        }
        put16(buf, 6, ff);
        buf[8] = self.ttl;
        buf[9] = self.protocol.0;
        put16(buf, 10, 0);
        buf[12..16].copy_from_slice(&self.src_addr.octets());
        buf[16..20].copy_from_slice(&self.dst_addr.octets());
        let c = checksum::checksum(&buf[..MIN_HEADER_LEN]);
        put16(buf, 10, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.168.0.1 → 192.168.0.199, UDP, TTL 64, DF, total length 0x73 (checksum 0xb861).
    fn known() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        v.resize(0x73, 0xaa);
        v
    }

    #[test]
    fn parse_known() {
        let b = known();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.src_addr, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(r.dst_addr, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(r.protocol, IpProtocol::UDP);
        assert_eq!(r.payload_len, 0x73 - 20);
        assert!(r.dont_frag && !r.more_frags && r.frag_offset == 0);
        let mut out = vec![0u8; 20];
        r.emit(&mut out);
        assert_eq!(&out[..], &b[..20]);
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL).
        let mut b = known();
        b[0] = 0x46;
        b.splice(20..20, [1, 1, 1, 0]);
        b.truncate(0x73);
        b[10] = 0;
        b[11] = 0;
        let c = checksum::checksum(&b[..24]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 0x73 - 24);
        assert_eq!(p.payload().len(), 0x73 - 24);
    }

    #[test]
    fn errors() {
        let b = known();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&b[..100]).unwrap_err(),
            Error::Truncated
        );
        let mut c = b.clone();
        c[0] = 0x44; // IHL 4
        assert_eq!(
            Ipv4Packet::new_checked(&c[..]).unwrap_err(),
            Error::BadLength
        );
        let mut c = b.clone();
        c[2] = 0;
        c[3] = 10; // total length < header
        assert_eq!(
            Ipv4Packet::new_checked(&c[..]).unwrap_err(),
            Error::BadLength
        );
        let mut c = b.clone();
        c[0] = 0x65;
        let p = Ipv4Packet::new_checked(&c[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::BadVersion);
        let mut c = b.clone();
        c[8] = 1;
        let p = Ipv4Packet::new_checked(&c[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::BadChecksum);
        // Link padding after total length is fine and excluded from the payload.
        let mut c = b.clone();
        c.extend_from_slice(&[0; 10]);
        let p = Ipv4Packet::new_checked(&c[..]).unwrap();
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn cidr() {
        let c: Ipv4Cidr = "192.0.2.77/24".parse().unwrap();
        assert!(c.contains(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(!c.contains(Ipv4Addr::new(192, 0, 3, 1)));
        assert_eq!(c.network().address(), Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        let d: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(d.contains(Ipv4Addr::new(198, 51, 100, 1)));
        assert!("1.2.3.4/33".parse::<Ipv4Cidr>().is_err());
        assert!("1.2.3.4".parse::<Ipv4Cidr>().is_err());
    }
}
