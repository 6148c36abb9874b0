//! ICMPv6 (RFC 4443): echo, destination unreachable, packet too big, time exceeded,
//! parameter problem, and the neighbor discovery messages (RFC 4861, in [`crate::ndp`]).
//! The checksum covers the IPv6 pseudo-header (RFC 4443 §2.3), so `parse` and `emit`
//! take the packet's source and destination addresses.

use crate::checksum;
use crate::ipv4::IpProtocol;
use crate::ipv6::{self, Ipv6Repr};
use crate::ndp::NdpRepr;
use crate::{be16, be32, put16, put32, Error, Result};
use std::net::{IpAddr, Ipv6Addr};

/// Type, code, checksum and the 4-byte field every defined message has.
pub const HEADER_LEN: usize = 8;
/// Most bytes of the invoking packet an error message quotes: the message must fit
/// the minimum MTU, 1280 − 40 (IPv6) − 8 (ICMPv6) (RFC 4443 §2.4(c)).
pub const MAX_ERROR_QUOTE: usize = ipv6::MIN_MTU - ipv6::HEADER_LEN - HEADER_LEN;

/// Message types (RFC 4443 §2.1, RFC 4861 §4).
pub mod msg_type {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// Destination Unreachable codes (RFC 4443 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6DstUnreachable {
    NoRoute,
    AdminProhibited,
    BeyondScope,
    AddrUnreachable,
    PortUnreachable,
    FailedPolicy,
    RejectRoute,
    /// A code RFC 4443 does not define (later RFCs may); kept as is.
    Other(u8),
}

impl Icmpv6DstUnreachable {
    pub fn code(&self) -> u8 {
        match *self {
            Icmpv6DstUnreachable::NoRoute => 0,
            Icmpv6DstUnreachable::AdminProhibited => 1,
            Icmpv6DstUnreachable::BeyondScope => 2,
            Icmpv6DstUnreachable::AddrUnreachable => 3,
            Icmpv6DstUnreachable::PortUnreachable => 4,
            Icmpv6DstUnreachable::FailedPolicy => 5,
            Icmpv6DstUnreachable::RejectRoute => 6,
            Icmpv6DstUnreachable::Other(c) => c,
        }
    }
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Icmpv6DstUnreachable::NoRoute,
            1 => Icmpv6DstUnreachable::AdminProhibited,
            2 => Icmpv6DstUnreachable::BeyondScope,
            3 => Icmpv6DstUnreachable::AddrUnreachable,
            4 => Icmpv6DstUnreachable::PortUnreachable,
            5 => Icmpv6DstUnreachable::FailedPolicy,
            6 => Icmpv6DstUnreachable::RejectRoute,
            c => Icmpv6DstUnreachable::Other(c),
        }
    }
}

/// Time Exceeded codes (RFC 4443 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6TimeExceeded {
    HopLimitExceeded,
    FragReassemblyExceeded,
}

/// Parameter Problem codes (RFC 4443 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamProblemCode {
    ErroneousHeaderField,
    UnrecognizedNextHeader,
    UnrecognizedOption,
    /// A code RFC 4443 does not define (RFC 7112 and later add some); kept as is.
    Other(u8),
}

impl ParamProblemCode {
    pub fn code(&self) -> u8 {
        match *self {
            ParamProblemCode::ErroneousHeaderField => 0,
            ParamProblemCode::UnrecognizedNextHeader => 1,
            ParamProblemCode::UnrecognizedOption => 2,
            ParamProblemCode::Other(c) => c,
        }
    }
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => ParamProblemCode::ErroneousHeaderField,
            1 => ParamProblemCode::UnrecognizedNextHeader,
            2 => ParamProblemCode::UnrecognizedOption,
            c => ParamProblemCode::Other(c),
        }
    }
}

/// A view over an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }
    /// Checks the buffer holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }
    pub fn into_inner(self) -> T {
        self.buffer
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
    /// Error messages (types 0–127) as opposed to informational ones (RFC 4443 §2.1).
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    /// Packet Too Big's MTU (RFC 4443 §3.2).
    pub fn mtu(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    /// Parameter Problem's pointer (RFC 4443 §3.4).
    pub fn pointer(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    /// Bytes after the 4-byte type/code/checksum.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[4..]
    }
    /// Bytes after the 8-byte header (the quoted packet of an error).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// The checksum over the pseudo-header and the whole message verifies.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::transport(
            &IpAddr::V6(*src),
            &IpAddr::V6(*dst),
            IpProtocol::ICMPV6.0,
            self.buffer.as_ref(),
        ) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }
    /// Recompute the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let b = self.buffer.as_mut();
        put16(b, 2, 0);
        let c = checksum::transport(
            &IpAddr::V6(*src),
            &IpAddr::V6(*dst),
            IpProtocol::ICMPV6.0,
            b,
        );
        put16(b, 2, c);
    }
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// An ICMPv6 message as a value; byte payloads borrow from the parsed buffer.
///
/// Error messages carry the invoking packet's IPv6 header (`header`, its payload length
/// that of the original packet) and the bytes after it that were quoted (`data`).
/// `emit` quotes at most [`MAX_ERROR_QUOTE`] bytes of the invoking packet, so a longer
/// `data` is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
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
    DstUnreachable {
        reason: Icmpv6DstUnreachable,
        header: Ipv6Repr,
        data: &'a [u8],
    },
    PacketTooBig {
        mtu: u32,
        header: Ipv6Repr,
        data: &'a [u8],
    },
    TimeExceeded {
        reason: Icmpv6TimeExceeded,
        header: Ipv6Repr,
        data: &'a [u8],
    },
    ParamProblem {
        reason: ParamProblemCode,
        /// Offset in the invoking packet of the byte at fault.
        pointer: u32,
        header: Ipv6Repr,
        data: &'a [u8],
    },
    /// Router/neighbor solicitation and advertisement, redirect (RFC 4861).
    Ndp(NdpRepr<'a>),
    /// An error type (0–127) berth does not know: RFC 4443 §2.4(a) says pass it to
    /// the upper layer. `body` is everything after the checksum.
    UnknownError {
        msg_type: u8,
        code: u8,
        body: &'a [u8],
    },
    /// An informational type (128–255) berth does not handle (e.g. MLD): RFC 4443
    /// §2.4(b) says drop it. `body` is everything after the checksum.
    UnknownInformational {
        msg_type: u8,
        code: u8,
        body: &'a [u8],
    },
}

/// Parse the quoted IPv6 header at the start of an error's data. Its payload length
/// refers to the original packet, so only the 40 header bytes must be present.
fn parse_quoted(b: &[u8]) -> Result<(Ipv6Repr, &[u8])> {
    let repr = Ipv6Repr::parse_header(b)?;
    Ok((repr, &b[ipv6::HEADER_LEN..]))
}

/// The quoted bytes after the header that fit [`MAX_ERROR_QUOTE`].
fn quote(data: &[u8]) -> &[u8] {
    &data[..data.len().min(MAX_ERROR_QUOTE - ipv6::HEADER_LEN)]
}

impl<'a> Icmpv6Repr<'a> {
    /// Verify the checksum (pseudo-header with `src` and `dst`) and parse. Codes
    /// RFC 4443 does not allow for echo and time exceeded give `Error::Malformed`;
    /// the NDP checks that need no state are made here (see [`NdpRepr`]).
    pub fn parse(p: &Icmpv6Packet<&'a [u8]>, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let data = &b[HEADER_LEN..];
        match (p.msg_type(), p.msg_code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Icmpv6Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Icmpv6Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            (msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY, _) => Err(Error::Malformed),
            (msg_type::DST_UNREACHABLE, code) => {
                let (header, data) = parse_quoted(data)?;
                Ok(Icmpv6Repr::DstUnreachable {
                    reason: Icmpv6DstUnreachable::from_code(code),
                    header,
                    data,
                })
            }
            // RFC 4443 §3.2: code 0, "ignored by the receiver".
            (msg_type::PACKET_TOO_BIG, _) => {
                let (header, data) = parse_quoted(data)?;
                Ok(Icmpv6Repr::PacketTooBig {
                    mtu: p.mtu(),
                    header,
                    data,
                })
            }
            (msg_type::TIME_EXCEEDED, code @ (0 | 1)) => {
                let (header, data) = parse_quoted(data)?;
                let reason = if code == 0 {
                    Icmpv6TimeExceeded::HopLimitExceeded
                } else {
                    Icmpv6TimeExceeded::FragReassemblyExceeded
                };
                Ok(Icmpv6Repr::TimeExceeded {
                    reason,
                    header,
                    data,
                })
            }
            (msg_type::TIME_EXCEEDED, _) => Err(Error::Malformed),
            (msg_type::PARAM_PROBLEM, code) => {
                let (header, data) = parse_quoted(data)?;
                Ok(Icmpv6Repr::ParamProblem {
                    reason: ParamProblemCode::from_code(code),
                    pointer: p.pointer(),
                    header,
                    data,
                })
            }
            (msg_type::ROUTER_SOLICIT..=msg_type::REDIRECT, _) => {
                NdpRepr::parse(b).map(Icmpv6Repr::Ndp)
            }
            (t, code) if t < 128 => Ok(Icmpv6Repr::UnknownError {
                msg_type: t,
                code,
                body: &b[4..],
            }),
            (t, code) => Ok(Icmpv6Repr::UnknownInformational {
                msg_type: t,
                code,
                body: &b[4..],
            }),
        }
    }

    /// Length of the emitted message (an error's quote cut to [`MAX_ERROR_QUOTE`]).
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PacketTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::ParamProblem { data, .. } => {
                HEADER_LEN + ipv6::HEADER_LEN + quote(data).len()
            }
            Icmpv6Repr::Ndp(n) => n.buffer_len(),
            Icmpv6Repr::UnknownError { body, .. }
            | Icmpv6Repr::UnknownInformational { body, .. } => 4 + body.len(),
        }
    }

    /// Write the message into the first `buffer_len()` bytes of `buf`, checksum filled
    /// over the pseudo-header of `src` → `dst`. Panics if `buf` is shorter, or a quoted
    /// header's payload length exceeds 65535 (caller bugs).
    pub fn emit(&self, buf: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        let error = |buf: &mut [u8], t: u8, code: u8, word: u32, header: &Ipv6Repr, data| {
            buf[0] = t;
            buf[1] = code;
            put32(buf, 4, word);
            header.emit(&mut buf[HEADER_LEN..]);
            buf[HEADER_LEN + ipv6::HEADER_LEN..].copy_from_slice(quote(data));
        };
        match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                buf[0] = if matches!(self, Icmpv6Repr::EchoRequest { .. }) {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                };
                buf[1] = 0;
                put16(buf, 4, ident);
                put16(buf, 6, seq_no);
                buf[HEADER_LEN..].copy_from_slice(data);
            }
            Icmpv6Repr::DstUnreachable {
                reason,
                ref header,
                data,
            } => error(
                buf,
                msg_type::DST_UNREACHABLE,
                reason.code(),
                0,
                header,
                data,
            ),
            Icmpv6Repr::PacketTooBig {
                mtu,
                ref header,
                data,
            } => error(buf, msg_type::PACKET_TOO_BIG, 0, mtu, header, data),
            Icmpv6Repr::TimeExceeded {
                reason,
                ref header,
                data,
            } => {
                let code = match reason {
                    Icmpv6TimeExceeded::HopLimitExceeded => 0,
                    Icmpv6TimeExceeded::FragReassemblyExceeded => 1,
                };
                error(buf, msg_type::TIME_EXCEEDED, code, 0, header, data)
            }
            Icmpv6Repr::ParamProblem {
                reason,
                pointer,
                ref header,
                data,
            } => error(
                buf,
                msg_type::PARAM_PROBLEM,
                reason.code(),
                pointer,
                header,
                data,
            ),
            Icmpv6Repr::Ndp(ref n) => n.emit(buf),
            Icmpv6Repr::UnknownError {
                msg_type,
                code,
                body,
            }
            | Icmpv6Repr::UnknownInformational {
                msg_type,
                code,
                body,
            } => {
                buf[0] = msg_type;
                buf[1] = code;
                buf[4..].copy_from_slice(body);
            }
        }
        Icmpv6Packet::new_unchecked(buf).fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    fn header() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: DST,
            dst_addr: SRC,
            next_header: IpProtocol::UDP,
            payload_len: 13,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0x5_4321,
        }
    }

    fn round_trip(r: Icmpv6Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, &SRC, &DST);
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(&SRC, &DST));
        assert_eq!(Icmpv6Repr::parse(&p, &SRC, &DST), Ok(r));
        buf
    }

    #[test]
    fn echo() {
        let b = round_trip(Icmpv6Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data: b"berth",
        });
        assert_eq!(&b[..2], &[128, 0]);
        assert_eq!(&b[4..8], &[0x12, 0x34, 0, 7]);
        let b = round_trip(Icmpv6Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: &[],
        });
        assert_eq!(b[0], 129);
        // The checksum covers the pseudo-header: other addresses do not verify.
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p, &SRC, &"2001:db8::3".parse().unwrap()).unwrap_err(),
            Error::BadChecksum
        );
    }

    #[test]
    fn errors_round_trip() {
        let data = [0x9c, 0x40, 0, 9, 0, 13, 0xab, 0xcd, b'b'];
        for code in 0..=7 {
            round_trip(Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::from_code(code),
                header: header(),
                data: &data,
            });
        }
        let b = round_trip(Icmpv6Repr::PacketTooBig {
            mtu: 1280,
            header: header(),
            data: &data,
        });
        assert_eq!(&b[..8], &[2, 0, b[2], b[3], 0, 0, 5, 0]);
        for reason in [
            Icmpv6TimeExceeded::HopLimitExceeded,
            Icmpv6TimeExceeded::FragReassemblyExceeded,
        ] {
            round_trip(Icmpv6Repr::TimeExceeded {
                reason,
                header: header(),
                data: &data,
            });
        }
        for code in 0..=3 {
            let b = round_trip(Icmpv6Repr::ParamProblem {
                reason: ParamProblemCode::from_code(code),
                pointer: 40,
                header: header(),
                data: &data,
            });
            assert_eq!((b[0], b[1]), (4, code));
            assert_eq!(&b[4..8], &[0, 0, 0, 40]);
        }
    }

    #[test]
    fn error_quote_is_cut_to_the_minimum_mtu() {
        let big = vec![0x5au8; 3000];
        let r = Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::PortUnreachable,
            header: header(),
            data: &big,
        };
        assert_eq!(r.buffer_len(), 1280 - 40);
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, &SRC, &DST);
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        match Icmpv6Repr::parse(&p, &SRC, &DST).unwrap() {
            Icmpv6Repr::DstUnreachable {
                data, header: h, ..
            } => {
                assert_eq!(h, header());
                assert_eq!(data, &big[..1280 - 40 - 8 - 40]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_types_are_values() {
        for (t, informational) in [
            (0u8, false),
            (100, false),
            (127, false),
            (130, true),
            (143, true),
            (200, true),
        ] {
            let r = if informational {
                Icmpv6Repr::UnknownInformational {
                    msg_type: t,
                    code: 3,
                    body: &[1, 2, 3, 4, 5],
                }
            } else {
                Icmpv6Repr::UnknownError {
                    msg_type: t,
                    code: 3,
                    body: &[1, 2, 3, 4, 5],
                }
            };
            let b = round_trip(r);
            assert_eq!(
                Icmpv6Packet::new_checked(&b[..]).unwrap().is_error(),
                !informational
            );
        }
    }

    fn with_checksum(mut b: Vec<u8>) -> Vec<u8> {
        Icmpv6Packet::new_unchecked(&mut b[..]).fill_checksum(&SRC, &DST);
        b
    }

    #[test]
    fn bad_input() {
        let b = round_trip(Icmpv6Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: b"abcd",
        });
        for n in 0..8 {
            assert_eq!(
                Icmpv6Packet::new_checked(&b[..n]).unwrap_err(),
                Error::Truncated
            );
            assert_eq!(
                Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&b[..n]), &SRC, &DST).unwrap_err(),
                Error::Truncated
            );
        }
        let mut c = b.clone();
        c[9] ^= 1;
        let p = Icmpv6Packet::new_checked(&c[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p, &SRC, &DST).unwrap_err(),
            Error::BadChecksum
        );
        // Echo with a non-zero code; time exceeded code 2.
        for (t, code) in [(128u8, 1u8), (129, 9), (3, 2)] {
            let mut v = vec![t, code, 0, 0, 0, 0, 0, 0];
            v.extend([0x60; 40]);
            let v = with_checksum(v);
            let p = Icmpv6Packet::new_checked(&v[..]).unwrap();
            assert_eq!(
                Icmpv6Repr::parse(&p, &SRC, &DST).unwrap_err(),
                Error::Malformed
            );
        }
        // An error whose quote is shorter than an IPv6 header, or not IPv6.
        let v = with_checksum(vec![1, 4, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0]);
        let p = Icmpv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p, &SRC, &DST).unwrap_err(),
            Error::Truncated
        );
        let mut v = vec![1, 4, 0, 0, 0, 0, 0, 0];
        v.extend([0x45; 40]);
        let v = with_checksum(v);
        let p = Icmpv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&p, &SRC, &DST).unwrap_err(),
            Error::BadVersion
        );
    }
}
