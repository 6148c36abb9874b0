//! ARP for IPv4 over Ethernet (RFC 826). Other hardware/protocol pairs are `Unsupported`.

use crate::ethernet::EthernetAddress;
use crate::{be16, ip4, put16, Error, Result};
use std::net::Ipv4Addr;

pub const PACKET_LEN: usize = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            o => ArpOperation::Unknown(o),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> u16 {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(o) => o,
        }
    }
}

/// A view over an ARP packet (fixed Ethernet/IPv4 layout once checked).
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }
    /// Checks the 8-byte fixed part and that the address lengths fit the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < 8 {
            return Err(Error::Truncated);
        }
        let need = 8 + 2 * (b[4] as usize + b[5] as usize);
        if b.len() < need {
            return Err(Error::Truncated);
        }
        Ok(ArpPacket { buffer })
    }
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[5]
    }
    pub fn operation(&self) -> ArpOperation {
        be16(self.buffer.as_ref(), 6).into()
    }
}

/// An ARP packet for IPv4 over Ethernet, as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

fn mac(b: &[u8], at: usize) -> EthernetAddress {
    let mut a = [0; 6];
    a.copy_from_slice(&b[at..at + 6]);
    EthernetAddress(a)
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Result<Self> {
        let b = p.buffer.as_ref();
        if b.len() < 8 {
            return Err(Error::Truncated);
        }
        // Only Ethernet (1) / IPv4 (0x0800) with 6/4-byte addresses.
        if p.hardware_type() != 1 || p.protocol_type() != 0x0800 {
            return Err(Error::Unsupported);
        }
        if p.hardware_len() != 6 || p.protocol_len() != 4 {
            return Err(Error::Malformed);
        }
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(ArpRepr {
            operation: p.operation(),
            source_hardware_addr: mac(b, 8),
            source_protocol_addr: ip4(b, 14),
            target_hardware_addr: mac(b, 18),
            target_protocol_addr: ip4(b, 24),
        })
    }
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }
    /// Write the packet into the first 28 bytes of `buf`. Panics if `buf` is shorter
    /// (a caller bug, never peer-controlled).
    pub fn emit(&self, buf: &mut [u8]) {
        put16(buf, 0, 1);
        put16(buf, 2, 0x0800);
        buf[4] = 6;
        buf[5] = 4;
        put16(buf, 6, self.operation.into());
        buf[8..14].copy_from_slice(&self.source_hardware_addr.0);
        buf[14..18].copy_from_slice(&self.source_protocol_addr.octets());
        buf[18..24].copy_from_slice(&self.target_hardware_addr.0);
        buf[24..28].copy_from_slice(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Request: who has 192.0.2.2? tell 192.0.2.1
    const REQ: [u8; 28] = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2,
    ];

    #[test]
    fn parse_emit_known() {
        let p = ArpPacket::new_checked(&REQ[..]).unwrap();
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(r.operation, ArpOperation::Request);
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(192, 0, 2, 2));
        let mut out = [0u8; 28];
        r.emit(&mut out);
        assert_eq!(out, REQ);
    }

    #[test]
    fn bad_inputs() {
        for n in 0..28 {
            let r = ArpPacket::new_checked(&REQ[..n]).and_then(|p| ArpRepr::parse(&p));
            assert_eq!(r.unwrap_err(), Error::Truncated, "len {n}");
        }
        let mut b = REQ;
        b[4] = 8; // claims 8-byte hardware addresses
        let r = ArpPacket::new_checked(&b[..]).and_then(|p| ArpRepr::parse(&p));
        assert!(r.is_err());
        let mut b = REQ;
        b[1] = 6; // IEEE 802 hardware type
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p).unwrap_err(), Error::Unsupported);
    }
}
