//! UDP (RFC 768) with the IPv4 pseudo-header checksum.

use crate::checksum;
use crate::ipv4::IpProtocol;
use crate::{be16, put16, Error, Result};
use std::net::IpAddr;

pub const HEADER_LEN: usize = 8;

/// A view over a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }
    /// Checks the header is present and 8 ≤ length field ≤ buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = be16(b, 4) as usize;
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buffer })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn len(&self) -> usize {
        be16(self.buffer.as_ref(), 4) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len()]
    }
    /// Over IPv4 a checksum of 0 means "not computed" and is accepted (RFC 768);
    /// over IPv6 the checksum is mandatory and 0 is invalid (RFC 8200 §8.1).
    pub fn verify_checksum<A: Copy + Into<IpAddr>>(&self, src: &A, dst: &A) -> bool {
        let (src, dst) = ((*src).into(), (*dst).into());
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        checksum::transport(
            &src,
            &dst,
            IpProtocol::UDP.0,
            &self.buffer.as_ref()[..self.len()],
        ) == 0
    }
}

/// A UDP datagram as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Validate lengths and the checksum. Port 0 as destination is malformed.
    pub fn parse<A: Copy + Into<IpAddr>>(
        p: &UdpPacket<&'a [u8]>,
        src: &A,
        dst: &A,
    ) -> Result<Self> {
        Self::parse_with(p, src, dst, true)
    }

    /// [`UdpRepr::parse`], with the checksum left unverified when
    /// `verify_checksum` is false (see `TcpRepr::parse_with`).
    pub fn parse_with<A: Copy + Into<IpAddr>>(
        p: &UdpPacket<&'a [u8]>,
        src: &A,
        dst: &A,
        verify_checksum: bool,
    ) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = be16(b, 4) as usize;
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        if p.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if verify_checksum && !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload: &b[HEADER_LEN..len],
        })
    }
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
    /// Write header and payload (checksum filled; a computed 0 is sent as 0xffff, RFC
    /// 768) into the first `buffer_len()` bytes of `buf`. Panics if `buf` is shorter.
    pub fn emit<A: Copy + Into<IpAddr>>(&self, buf: &mut [u8], src: &A, dst: &A) {
        let (src, dst) = ((*src).into(), (*dst).into());
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        put16(buf, 0, self.src_port);
        put16(buf, 2, self.dst_port);
        put16(buf, 4, len as u16);
        put16(buf, 6, 0);
        buf[HEADER_LEN..].copy_from_slice(self.payload);
        let mut c = checksum::transport(&src, &dst, IpProtocol::UDP.0, buf);
        if c == 0 {
            c = 0xffff;
        }
        put16(buf, 6, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// RFC 8200 §8.1: over IPv6 a zero UDP checksum is invalid, over IPv4 it
    /// means "not computed"; a computed checksum verifies over either family.
    #[test]
    fn zero_checksum_only_over_ipv4() {
        let (s6, d6): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let repr = UdpRepr {
            src_port: 5353,
            dst_port: 53,
            payload: b"query",
        };
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(&mut b, &s6, &d6);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, &s6, &d6).unwrap(), repr);
        // The IPv4 pseudo-header differs, so the IPv6 checksum fails there.
        assert_eq!(
            UdpRepr::parse(&p, &SRC, &DST).unwrap_err(),
            Error::BadChecksum
        );
        b[6..8].copy_from_slice(&[0, 0]);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, &s6, &d6).unwrap_err(),
            Error::BadChecksum
        );
        assert!(UdpRepr::parse(&p, &SRC, &DST).is_ok());
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn round_trip_and_known_checksum() {
        let r = UdpRepr {
            src_port: 12345,
            dst_port: 53,
            payload: b"hello",
        };
        let mut buf = [0u8; 13];
        r.emit(&mut buf, &SRC, &DST);
        assert_eq!(&buf[..6], &[0x30, 0x39, 0x00, 0x35, 0x00, 0x0d]);
        // Sum by hand: pseudo c000+0201+c000+0202+0011+000d, header 3039+0035+000d,
        // payload 6865+6c6c+6f00 (checked with a Python one-liner) → 0x0790.
        assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 0x0790);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, &SRC, &DST).unwrap(), r);
    }

    #[test]
    fn zero_checksum_accepted() {
        let b = [0x30, 0x39, 0x00, 0x35, 0x00, 0x09, 0x00, 0x00, b'x'];
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, &SRC, &DST).unwrap().payload, b"x");
    }

    #[test]
    fn errors() {
        let r = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload: b"abc",
        };
        let mut buf = [0u8; 11];
        r.emit(&mut buf, &SRC, &DST);
        for n in 0..8 {
            assert_eq!(
                UdpPacket::new_checked(&buf[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        assert_eq!(
            UdpPacket::new_checked(&buf[..10]).unwrap_err(),
            Error::Truncated
        );
        let mut b = buf;
        b[5] = 4;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
        let mut b = buf;
        b[10] ^= 0xff;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, &SRC, &DST).unwrap_err(),
            Error::BadChecksum
        );
        // Wrong pseudo-header (another destination) fails too.
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, &SRC, &Ipv4Addr::new(192, 0, 2, 3)).unwrap_err(),
            Error::BadChecksum
        );
    }
}
