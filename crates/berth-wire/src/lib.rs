//! berth-wire: packet formats, and nothing else.
//!
//! Every header has two faces, as in smoltcp's `wire` module:
//! - a **view** over a byte buffer (`Ipv4Packet<&[u8]>`, `TcpPacket<&mut [u8]>`) whose
//!   checked constructor (`new_checked`) proves the buffer is long enough for every
//!   accessor, so accessors never panic;
//! - a **repr**, a plain value (`Ipv4Repr`, `TcpRepr`) with `parse` (view → value, with
//!   full validation) and `emit` (value → bytes, checksums filled in).
//!
//! Modules: [`ethernet`], [`arp`], [`ipv4`], [`ipv6`] (fixed header, extension header
//! walk, CIDR, the address helpers of neighbor discovery), [`ip`] (either family),
//! [`icmpv4`], [`icmpv6`], [`ndp`] (neighbor discovery, carried in ICMPv6), [`udp`],
//! [`tcp`], [`checksum`], and two application formats a host needs to configure
//! itself: [`dns`] (RFC 1035 messages) and [`dhcp`] (RFC 2131 DHCPv4).
//!
//! Parsers return [`Error`] on any input: they never panic, never read out of bounds,
//! never allocate (the DNS and DHCP builders allocate their output). State (who sent what, what is expected) lives in `berth-core`.

#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod dns;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
pub use icmpv6::{
    Icmpv6DstUnreachable, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded, ParamProblemCode,
};
pub use ip::{IpCidr, IpRepr, IpVersion};
pub use ipv4::{IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
pub use ipv6::{
    Ipv6Cidr, Ipv6ExtError, Ipv6ExtHeaders, Ipv6FragmentRepr, Ipv6Option, Ipv6Options, Ipv6Packet,
    Ipv6Repr, UnknownOptionAction,
};
pub use ndp::{NdpOption, NdpOptions, NdpPrefixInfo, NdpRepr};
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
pub use tcp::{SeqNumber, TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

use core::fmt;

/// Why a buffer could not be parsed. Each variant names the first problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header (or the length the header claims).
    Truncated,
    /// A length field is inconsistent: smaller than the minimum header, or larger
    /// than the buffer, or not a multiple the format demands.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// IP version is not the one expected (4 for IPv4, 6 for IPv6).
    BadVersion,
    /// A TCP option is malformed: length 0 or 1, or running past the header.
    BadOption,
    /// A field holds a value this format does not allow (e.g. ARP hardware type).
    Malformed,
    /// A well-formed message of a kind berth does not handle (e.g. ICMP type 13).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Truncated => "truncated packet",
            Error::BadLength => "inconsistent length field",
            Error::BadChecksum => "bad checksum",
            Error::BadVersion => "bad IP version",
            Error::BadOption => "malformed option",
            Error::Malformed => "malformed field",
            Error::Unsupported => "unsupported message",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// Read a big-endian u16 at `at`; caller has checked bounds.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn ip6(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

#[inline]
pub(crate) fn ip4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}
