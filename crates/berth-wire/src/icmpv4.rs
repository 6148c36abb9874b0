//! ICMPv4 (RFC 792): echo, destination unreachable, time exceeded.

use crate::checksum;
use crate::ipv4::{Ipv4Packet, Ipv4Repr, MIN_HEADER_LEN};
use crate::{be16, put16, Error, Result};

pub const HEADER_LEN: usize = 8;

/// Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    FragRequired {
        next_hop_mtu: u16,
    },
    SrcRouteFailed,
    AdminProhibited,
    Other(u8),
}

impl DstUnreachable {
    pub fn code(&self) -> u8 {
        match *self {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired { .. } => 4,
            DstUnreachable::SrcRouteFailed => 5,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(c) => c,
        }
    }
    fn from_code(code: u8, next_hop_mtu: u16) -> Self {
        match code {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired { next_hop_mtu },
            5 => DstUnreachable::SrcRouteFailed,
            13 => DstUnreachable::AdminProhibited,
            c => DstUnreachable::Other(c),
        }
    }
}

/// Time Exceeded codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    TtlExpired,
    FragReassemblyExpired,
}

/// A view over an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    /// Bytes after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

/// An ICMPv4 message as a value; byte payloads borrow from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// `header` is the quoted original IP header, `data` the quoted bytes after it
    /// (at least 8 in practice: the transport ports).
    DstUnreachable {
        reason: DstUnreachable,
        header: Ipv4Repr,
        data: &'a [u8],
    },
    TimeExceeded {
        reason: TimeExceeded,
        header: Ipv4Repr,
        data: &'a [u8],
    },
}

/// Parse the quoted IP header of an ICMP error. Its checksum is not verified (routers
/// may quote a header they already changed) and its total length refers to the
/// original datagram, so only the header itself must be present.
fn parse_quoted(b: &[u8]) -> Result<(Ipv4Repr, &[u8])> {
    if b.len() < MIN_HEADER_LEN {
        return Err(Error::Truncated);
    }
    let p = Ipv4Packet::new_unchecked(b);
    if p.version() != 4 {
        return Err(Error::BadVersion);
    }
    let hl = p.header_len();
    if hl < MIN_HEADER_LEN || p.total_len() < hl {
        return Err(Error::BadLength);
    }
    if b.len() < hl {
        return Err(Error::Truncated);
    }
    let repr = Ipv4Repr {
        src_addr: p.src_addr(),
        dst_addr: p.dst_addr(),
        protocol: p.protocol(),
        payload_len: p.total_len() - hl,
        ttl: p.ttl(),
        dscp_ecn: p.dscp_ecn(),
        ident: p.ident(),
        dont_frag: p.dont_frag(),
        more_frags: p.more_frags(),
        frag_offset: p.frag_offset(),
    };
    Ok((repr, &b[hl..]))
}

impl<'a> Icmpv4Repr<'a> {
    /// Parse and verify the checksum. Types other than echo, unreachable and time
    /// exceeded give `Error::Unsupported`.
    pub fn parse(p: &Icmpv4Packet<&'a [u8]>) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data = &b[HEADER_LEN..];
        match (p.msg_type(), p.msg_code()) {
            (8, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            (0, 0) => Ok(Icmpv4Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            (3, code) => {
                let (header, data) = parse_quoted(data)?;
                Ok(Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::from_code(code, be16(b, 6)),
                    header,
                    data,
                })
            }
            (11, code @ (0 | 1)) => {
                let (header, data) = parse_quoted(data)?;
                let reason = if code == 0 {
                    TimeExceeded::TtlExpired
                } else {
                    TimeExceeded::FragReassemblyExpired
                };
                Ok(Icmpv4Repr::TimeExceeded {
                    reason,
                    header,
                    data,
                })
            }
            _ => Err(Error::Unsupported),
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv4Repr::DstUnreachable { data, .. } | Icmpv4Repr::TimeExceeded { data, .. } => {
                HEADER_LEN + MIN_HEADER_LEN + data.len()
            }
        }
    }

    /// Write the message (checksum filled) into the first `buffer_len()` bytes of `buf`.
    /// Panics if `buf` is shorter (a caller bug).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                buf[0] = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    8
                } else {
                    0
                };
                buf[1] = 0;
                put16(buf, 4, ident);
                put16(buf, 6, seq_no);
                buf[HEADER_LEN..].copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                header,
                data,
            } => {
                buf[0] = 3;
                buf[1] = reason.code();
                let mtu = match reason {
                    DstUnreachable::FragRequired { next_hop_mtu } => next_hop_mtu,
                    _ => 0,
                };
                put16(buf, 4, 0);
                put16(buf, 6, mtu);
                header.emit(&mut buf[HEADER_LEN..]);
                buf[HEADER_LEN + MIN_HEADER_LEN..].copy_from_slice(data);
            }
            Icmpv4Repr::TimeExceeded {
                reason,
                header,
                data,
            } => {
                buf[0] = 11;
                buf[1] = match reason {
                    TimeExceeded::TtlExpired => 0,
                    TimeExceeded::FragReassemblyExpired => 1,
                };
                put16(buf, 4, 0);
                put16(buf, 6, 0);
                header.emit(&mut buf[HEADER_LEN..]);
                buf[HEADER_LEN + MIN_HEADER_LEN..].copy_from_slice(data);
            }
        }
        put16(buf, 2, 0);
        let c = checksum::checksum(buf);
        put16(buf, 2, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::IpProtocol;
    use std::net::Ipv4Addr;

    // Echo request ident 0x1234 seq 1 with "abcd": checksum 0x2104 computed independently in Python.
    const ECHO: [u8; 12] = [
        8, 0, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn echo_known() {
        assert_eq!(checksum::checksum(&ECHO), 0, "vector self-consistent");
        let p = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcd"
            }
        );
        let mut out = [0u8; 12];
        r.emit(&mut out);
        assert_eq!(out, ECHO);
    }

    #[test]
    fn unreachable_round_trip() {
        let header = Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(192, 0, 2, 2),
            protocol: IpProtocol::UDP,
            payload_len: 12,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        let quoted = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00];
        let r = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            header,
            data: &quoted,
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf);
        assert_eq!(buf[0], 3);
        assert_eq!(buf[1], 3);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn errors() {
        for n in 0..8 {
            assert_eq!(
                Icmpv4Packet::new_checked(&ECHO[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        let mut b = ECHO;
        b[9] ^= 1;
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p).unwrap_err(), Error::BadChecksum);
        // Unreachable whose quote is too short.
        let mut u = vec![3u8, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 20];
        let c = checksum::checksum(&u);
        u[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&u[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p).unwrap_err(), Error::Truncated);
        // Timestamp request: well-formed but unsupported.
        let mut t = vec![13u8, 0, 0, 0, 0, 0, 0, 0];
        let c = checksum::checksum(&t);
        t[2..4].copy_from_slice(&c.to_be_bytes());
        let p = Icmpv4Packet::new_checked(&t[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p).unwrap_err(), Error::Unsupported);
    }
}
