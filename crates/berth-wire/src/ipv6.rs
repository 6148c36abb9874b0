//! IPv6 (RFC 8200): the fixed header, the extension header chain (§4), and the
//! address helpers neighbor discovery needs (RFC 4291, RFC 2464).
//!
//! The fixed header is a view and a value like IPv4's. Extension headers are walked,
//! not kept: [`walk_ext_headers`] follows the chain to the upper-layer protocol and
//! says where its payload starts, or why the packet must be dropped and, when RFC
//! 8200 asks for one, which ICMPv6 Parameter Problem to send.

use crate::ethernet::EthernetAddress;
use crate::icmpv6::ParamProblemCode;
use crate::ipv4::IpProtocol;
use crate::{be16, be32, ip6, put16, put32, Error, Result};
use core::fmt;
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;
/// Every link must carry packets of this size (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// The walker gives up after this many extension headers. RFC 8200 §4.1 allows
/// each header once (destination options twice), so a legitimate chain has at most
/// six; the bound leaves room and stops a chain of padding headers early.
pub const MAX_EXT_HEADERS: usize = 8;
/// The fragment header's size (RFC 8200 §4.5).
pub const FRAG_HEADER_LEN: usize = 8;

/// A view over an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }
    /// Checks the buffer holds the fixed header and the payload length it claims.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b.len() < HEADER_LEN + be16(b, 4) as usize {
            return Err(Error::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// DSCP and ECN (RFC 8200 §7, RFC 2474, RFC 3168): bits 4–11.
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    /// The 20-bit flow label (RFC 6437).
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }
    /// Bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> usize {
        be16(self.buffer.as_ref(), 4) as usize
    }
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[6])
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        ip6(self.buffer.as_ref(), 8)
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        ip6(self.buffer.as_ref(), 24)
    }
    /// Bytes after the fixed header up to the payload length (link padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
    /// The header plus payload, without link padding.
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN + self.payload_len()]
    }
    /// Follow the extension headers after the fixed header (see [`walk_ext_headers`]).
    pub fn ext_headers(&self) -> core::result::Result<Ipv6ExtHeaders, Ipv6ExtError> {
        walk_ext_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_version(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0x0f) | (v << 4);
    }
    pub fn set_traffic_class(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0xf0) | (v >> 4);
        b[1] = (b[1] & 0x0f) | (v << 4);
    }
    pub fn set_flow_label(&mut self, v: u32) {
        let b = self.buffer.as_mut();
        let w = (be32(b, 0) & 0xfff0_0000) | (v & 0x000f_ffff);
        put32(b, 0, w);
    }
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[6] = v.0;
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v;
    }
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The IPv6 fixed header as a value. `next_header` and `payload_len` are the header's
/// own fields: with extension headers present they name the first extension header and
/// count it. [`Ipv6Repr::upper_layer`] gives the value transport code wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: IpProtocol,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits; higher bits are not emitted.
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Validate the version and the lengths (a view from `new_unchecked` is safe too).
    /// Extension headers are not looked at: see [`Ipv6Packet::ext_headers`].
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Self> {
        let b = p.buffer.as_ref();
        let repr = Self::parse_header(b)?;
        // RFC 8200 §3: payload length counts everything after the fixed header; a
        // buffer shorter than that lost bytes on the way. (Jumbograms, RFC 2675,
        // would carry 0 here; berth's links are far below 64 KiB, so 0 is 0.)
        if b.len() < HEADER_LEN + repr.payload_len {
            return Err(Error::Truncated);
        }
        Ok(repr)
    }
    /// The fixed header at the start of `b` as it stands, its payload length
    /// not checked against `b`: a header quoted in an ICMPv6 error, or the first
    /// fragment's header of a datagram whose reassembly expired.
    pub fn parse_header(b: &[u8]) -> Result<Self> {
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let p = Ipv6Packet::new_unchecked(b);
        if p.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv6Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }
    /// This header as seen by the upper layer once `ext` (the walk of this packet) is
    /// removed: next header is the upper-layer protocol, payload length its length.
    pub fn upper_layer(&self, ext: &Ipv6ExtHeaders) -> Ipv6Repr {
        Ipv6Repr {
            next_header: ext.upper_layer,
            payload_len: (HEADER_LEN + self.payload_len).saturating_sub(ext.payload_offset),
            ..*self
        }
    }
    /// Write the 40-byte fixed header into the start of `buf`. Panics if `buf` is
    /// shorter than 40 bytes or `payload_len` exceeds 65535 (caller bugs).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = u16::try_from(self.payload_len).expect("IPv6 payload length fits 16 bits");
        let w = (6u32 << 28) | ((self.traffic_class as u32) << 20) | (self.flow_label & 0xf_ffff);
        put32(buf, 0, w);
        put16(buf, 4, len);
        buf[6] = self.next_header.0;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src_addr.octets());
        buf[24..40].copy_from_slice(&self.dst_addr.octets());
    }
}

// ---------------------------------------------------------------------------------------
// CIDR
// ---------------------------------------------------------------------------------------

/// An IPv6 address with a prefix length, e.g. `2001:db8::1/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    address: Ipv6Addr,
    prefix_len: u8,
}

impl Ipv6Cidr {
    /// `::/0`, the default route.
    pub const ANY: Ipv6Cidr = Ipv6Cidr {
        address: Ipv6Addr::UNSPECIFIED,
        prefix_len: 0,
    };
    /// `None` when `prefix_len > 128`.
    pub const fn new(address: Ipv6Addr, prefix_len: u8) -> Option<Self> {
        if prefix_len > 128 {
            None
        } else {
            Some(Ipv6Cidr {
                address,
                prefix_len,
            })
        }
    }
    pub const fn address(&self) -> Ipv6Addr {
        self.address
    }
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    fn mask(&self) -> u128 {
        if self.prefix_len == 0 {
            0
        } else {
            u128::MAX << (128 - self.prefix_len as u32)
        }
    }
    pub fn netmask(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.mask())
    }
    /// The network this address belongs to (interface bits cleared).
    pub fn network(&self) -> Ipv6Cidr {
        Ipv6Cidr {
            address: Ipv6Addr::from(u128::from(self.address) & self.mask()),
            prefix_len: self.prefix_len,
        }
    }
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        (u128::from(addr) & self.mask()) == (u128::from(self.address) & self.mask())
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl core::str::FromStr for Ipv6Cidr {
    type Err = String;
    fn from_str(s: &str) -> core::result::Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not ADDRESS/PREFIX, e.g. 2001:db8::1/64"))?;
        let address: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("'{a}' is not an IPv6 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("'{p}' is not a prefix length 0..=128"))?;
        Ipv6Cidr::new(address, prefix).ok_or_else(|| format!("prefix length {prefix} > 128"))
    }
}

// ---------------------------------------------------------------------------------------
// Address helpers
// ---------------------------------------------------------------------------------------

/// The solicited-node multicast address of `addr`: ff02::1:ff00:0/104 with the low
/// 24 bits of `addr` (RFC 4291 §2.7.1). Neighbor solicitations for `addr` go there.
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// Is `addr` a solicited-node multicast address (ff02::1:ffXX:XXXX)?
pub fn is_solicited_node(addr: &Ipv6Addr) -> bool {
    addr.octets()[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// Is `addr` in fe80::/10 (RFC 4291 §2.5.6)? NDP's router messages must come from one.
pub fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// The Ethernet destination for IPv6 multicast `addr`: 33:33 and the address's low 32
/// bits (RFC 2464 §7). `None` when `addr` is not multicast.
pub fn multicast_mac(addr: &Ipv6Addr) -> Option<EthernetAddress> {
    if !addr.is_multicast() {
        return None;
    }
    let o = addr.octets();
    Some(EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]]))
}

/// The modified EUI-64 interface identifier of a MAC: ff:fe in the middle and the
/// universal/local bit inverted (RFC 4291 App. A, RFC 2464 §4).
pub fn eui64_interface_id(mac: EthernetAddress) -> [u8; 8] {
    let m = mac.0;
    [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
}

/// The link-local address fe80::/64 with interface identifier `iid` (RFC 4291 §2.5.6).
pub fn link_local(iid: [u8; 8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&iid);
    Ipv6Addr::from(o)
}

// ---------------------------------------------------------------------------------------
// Extension headers
// ---------------------------------------------------------------------------------------

/// Whether `p` is one of the extension headers the walker follows (RFC 8200 §4).
pub fn is_ext_header(p: IpProtocol) -> bool {
    matches!(
        p,
        IpProtocol::HOPOPT | IpProtocol::IPV6_ROUTE | IpProtocol::IPV6_FRAG | IpProtocol::IPV6_OPTS
    )
}

/// The fragment header (RFC 8200 §4.5) as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragmentRepr {
    pub next_header: IpProtocol,
    /// Offset of this fragment's data in bytes (a multiple of 8).
    pub frag_offset: u16,
    pub more_frags: bool,
    pub ident: u32,
}

impl Ipv6FragmentRepr {
    /// Parse the 8 bytes of a fragment header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self> {
        if b.len() < FRAG_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let w = be16(b, 2);
        Ok(Ipv6FragmentRepr {
            next_header: IpProtocol(b[0]),
            frag_offset: w & 0xfff8,
            more_frags: w & 1 != 0,
            ident: be32(b, 4),
        })
    }
    /// An atomic fragment (offset 0, no more fragments, RFC 6946): it is a whole
    /// packet and is processed without reassembly.
    pub fn is_atomic(&self) -> bool {
        self.frag_offset == 0 && !self.more_frags
    }
    /// Write the 8-byte header (reserved fields zero). Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.next_header.0;
        buf[1] = 0;
        put16(buf, 2, (self.frag_offset & 0xfff8) | self.more_frags as u16);
        put32(buf, 4, self.ident);
    }
}

/// What RFC 8200 §4.2 tells a node to do with an option it does not recognise,
/// from the option type's two high bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownOptionAction {
    /// 00: skip the option and go on.
    Skip,
    /// 01: discard the packet.
    Discard,
    /// 10: discard and send Parameter Problem code 2 pointing at the option type.
    DiscardSendParamProblem,
    /// 11: as 10, but only when the destination is not multicast.
    DiscardSendParamProblemIfUnicast,
}

impl UnknownOptionAction {
    pub fn of(option_type: u8) -> Self {
        match option_type >> 6 {
            0 => UnknownOptionAction::Skip,
            1 => UnknownOptionAction::Discard,
            2 => UnknownOptionAction::DiscardSendParamProblem,
            _ => UnknownOptionAction::DiscardSendParamProblemIfUnicast,
        }
    }
}

/// One option of a hop-by-hop or destination options header (RFC 8200 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Option<'a> {
    Pad1,
    /// PadN with this many bytes of option data.
    PadN(u8),
    /// Router Alert (RFC 2711) with its value (0: MLD).
    RouterAlert(u16),
    Unknown {
        option_type: u8,
        data: &'a [u8],
    },
}

impl<'a> Ipv6Option<'a> {
    pub const PAD1: u8 = 0;
    pub const PADN: u8 = 1;
    pub const ROUTER_ALERT: u8 = 5;

    /// Bytes the option takes in a header.
    pub fn buffer_len(&self) -> usize {
        match self {
            Ipv6Option::Pad1 => 1,
            Ipv6Option::PadN(n) => 2 + *n as usize,
            Ipv6Option::RouterAlert(_) => 4,
            Ipv6Option::Unknown { data, .. } => 2 + data.len(),
        }
    }
    /// Write the option at the start of `buf`; returns its length. Panics if `buf` is
    /// shorter than `buffer_len()` or unknown data is longer than 255 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        match *self {
            Ipv6Option::Pad1 => buf[0] = Self::PAD1,
            Ipv6Option::PadN(n) => {
                buf[0] = Self::PADN;
                buf[1] = n;
                // RFC 8200 §4.2: PadN data is zero.
                buf[2..2 + n as usize].fill(0);
            }
            Ipv6Option::RouterAlert(v) => {
                buf[0] = Self::ROUTER_ALERT;
                buf[1] = 2;
                put16(buf, 2, v);
            }
            Ipv6Option::Unknown { option_type, data } => {
                buf[0] = option_type;
                buf[1] = u8::try_from(data.len()).expect("option data fits 255 bytes");
                buf[2..2 + data.len()].copy_from_slice(data);
            }
        }
        self.buffer_len()
    }
}

/// Iterate over the options area of a hop-by-hop or destination options header (the
/// bytes after its Next Header and Hdr Ext Len). Yields each option with its offset in
/// the area; yields `Err(BadOption)` once and stops when an option's length runs past
/// the area or a Router Alert has the wrong length.
pub struct Ipv6Options<'a> {
    area: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Ipv6Options<'a> {
    pub fn new(area: &'a [u8]) -> Self {
        Ipv6Options {
            area,
            at: 0,
            done: false,
        }
    }
}

impl Ipv6Options<'_> {
    /// Offset in the area of the next option; after an error, of the option at fault.
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for Ipv6Options<'a> {
    type Item = Result<(usize, Ipv6Option<'a>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.area.len() {
            return None;
        }
        let at = self.at;
        let rest = &self.area[at..];
        let option_type = rest[0];
        if option_type == Ipv6Option::PAD1 {
            self.at += 1;
            return Some(Ok((at, Ipv6Option::Pad1)));
        }
        // RFC 8200 §4.2: type, length of the data in bytes, data.
        let opt = match rest.get(1) {
            Some(&l) if 2 + l as usize <= rest.len() => {
                let data = &rest[2..2 + l as usize];
                match option_type {
                    Ipv6Option::PADN => Some(Ipv6Option::PadN(l)),
                    // RFC 2711 §2.1: the Router Alert value is 2 bytes.
                    Ipv6Option::ROUTER_ALERT if l == 2 => {
                        Some(Ipv6Option::RouterAlert(be16(data, 0)))
                    }
                    Ipv6Option::ROUTER_ALERT => None,
                    _ => Some(Ipv6Option::Unknown { option_type, data }),
                }
            }
            _ => None,
        };
        match opt {
            Some(o) => {
                self.at += o.buffer_len();
                Some(Ok((at, o)))
            }
            None => {
                self.done = true;
                Some(Err(Error::BadOption))
            }
        }
    }
}

/// Where the extension header chain of a packet leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeaders {
    /// The protocol after the last header walked: TCP, UDP, ICMPv6, No Next Header, or
    /// anything else (the caller answers an unknown one with Parameter Problem code 1
    /// at `upper_layer_pointer`, RFC 8200 §4). For a fragment that is not atomic, the
    /// fragment header's Next Header: its data is a piece, to be reassembled first.
    pub upper_layer: IpProtocol,
    /// Offset of the upper-layer header (or fragment data) from the start of the IPv6
    /// header.
    pub payload_offset: usize,
    /// Offset from the start of the IPv6 header of the Next Header field naming
    /// `upper_layer` (6 without extension headers).
    pub upper_layer_pointer: usize,
    /// The fragment header and its offset from the start of the IPv6 header. Walking
    /// stops at it unless it is atomic (RFC 6946): headers after it in a first
    /// fragment belong to the fragmentable part and are walked after reassembly.
    pub fragment: Option<(usize, Ipv6FragmentRepr)>,
    /// A Router Alert option in the hop-by-hop header (RFC 2711).
    pub router_alert: Option<u16>,
    /// How many extension headers were walked.
    pub count: usize,
}

/// Why an extension header chain was refused, and what RFC 8200 asks the receiver to
/// send back. The packet is discarded in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtError {
    /// `Truncated` (a header runs past the payload), `Malformed` (more than
    /// [`MAX_EXT_HEADERS`], hop-by-hop not first, a bad fragment length), `BadOption`
    /// (an option runs past its header), `Unsupported` (a routing header the node must
    /// act on, an unknown option whose action is discard).
    pub error: Error,
    /// The Parameter Problem to send, if any: its code and pointer (the offset of the
    /// offending byte from the start of the IPv6 header, RFC 4443 §3.4).
    pub param_problem: Option<(ParamProblemCode, u32)>,
    /// RFC 8200 §4.2 action 11: send the Parameter Problem only if the packet's
    /// destination was not multicast.
    pub only_if_unicast: bool,
}

impl Ipv6ExtError {
    fn silent(error: Error) -> Self {
        Ipv6ExtError {
            error,
            param_problem: None,
            only_if_unicast: false,
        }
    }
    fn problem(error: Error, code: ParamProblemCode, pointer: usize) -> Self {
        Ipv6ExtError {
            error,
            param_problem: Some((code, pointer as u32)),
            only_if_unicast: false,
        }
    }
    /// The Parameter Problem (code, pointer) to send for a packet to `dst`, if any.
    /// (RFC 4443 §2.4(e) forbids errors about packets to multicast in general; action
    /// 11 options and RFC 8200 §4.2's 10 are the exception this field keeps.)
    pub fn param_problem_for(&self, dst: &Ipv6Addr) -> Option<(ParamProblemCode, u32)> {
        if self.only_if_unicast && dst.is_multicast() {
            None
        } else {
            self.param_problem
        }
    }
}

impl From<Ipv6ExtError> for Error {
    fn from(e: Ipv6ExtError) -> Error {
        e.error
    }
}

impl fmt::Display for Ipv6ExtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv6 extension header: {}", self.error)?;
        if let Some((code, ptr)) = self.param_problem {
            write!(
                f,
                " (parameter problem code {}, pointer {ptr})",
                code.code()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Ipv6ExtError {}

/// Check the options of a hop-by-hop or destination options header that starts `base`
/// bytes into the IPv6 packet; returns a Router Alert value if one is present.
fn check_options(area: &[u8], base: usize) -> core::result::Result<Option<u16>, Ipv6ExtError> {
    let mut alert = None;
    let mut options = Ipv6Options::new(area);
    while let Some(item) = options.next() {
        let (at, opt) = match item {
            Ok(o) => o,
            // The option's length byte is the erroneous field; when the header ends
            // before it, the option type is (so the pointer stays in the header).
            Err(e) => {
                let at = options.offset();
                let field = if at + 1 < area.len() { at + 1 } else { at };
                return Err(Ipv6ExtError::problem(
                    e,
                    ParamProblemCode::ErroneousHeaderField,
                    base + 2 + field,
                ));
            }
        };
        match opt {
            Ipv6Option::Pad1 | Ipv6Option::PadN(_) => {}
            Ipv6Option::RouterAlert(v) => alert = Some(v),
            Ipv6Option::Unknown { option_type, .. } => {
                let pointer = base + 2 + at;
                let e = Ipv6ExtError::problem(
                    Error::Unsupported,
                    ParamProblemCode::UnrecognizedOption,
                    pointer,
                );
                match UnknownOptionAction::of(option_type) {
                    UnknownOptionAction::Skip => {}
                    UnknownOptionAction::Discard => {
                        return Err(Ipv6ExtError::silent(Error::Unsupported))
                    }
                    UnknownOptionAction::DiscardSendParamProblem => return Err(e),
                    UnknownOptionAction::DiscardSendParamProblemIfUnicast => {
                        return Err(Ipv6ExtError {
                            only_if_unicast: true,
                            ..e
                        })
                    }
                }
            }
        }
    }
    Ok(alert)
}

/// Follow the extension headers of an IPv6 packet to its upper-layer protocol.
///
/// `first` is the fixed header's Next Header and `payload` the bytes after the fixed
/// header, up to its payload length. Offsets in the result and in errors count from the
/// start of the IPv6 header (40 + offset in `payload`). Never reads past `payload`, and
/// gives up after [`MAX_EXT_HEADERS`] headers.
pub fn walk_ext_headers(
    first: IpProtocol,
    payload: &[u8],
) -> core::result::Result<Ipv6ExtHeaders, Ipv6ExtError> {
    let mut next = first;
    let mut pointer = 6usize; // the fixed header's Next Header field
    let mut at = 0usize; // offset in `payload`
    let mut out = Ipv6ExtHeaders {
        upper_layer: first,
        payload_offset: HEADER_LEN,
        upper_layer_pointer: pointer,
        fragment: None,
        router_alert: None,
        count: 0,
    };
    while is_ext_header(next) {
        if out.count == MAX_EXT_HEADERS {
            return Err(Ipv6ExtError::silent(Error::Malformed));
        }
        let base = HEADER_LEN + at;
        // RFC 8200 §4.3: hop-by-hop options only directly after the fixed header;
        // anywhere else it is an unrecognised Next Header (code 1 at that field).
        if next == IpProtocol::HOPOPT && out.count != 0 {
            return Err(Ipv6ExtError::problem(
                Error::Malformed,
                ParamProblemCode::UnrecognizedNextHeader,
                pointer,
            ));
        }
        let rest = &payload[at..];
        if rest.len() < 8 {
            return Err(Ipv6ExtError::silent(Error::Truncated));
        }
        // RFC 8200 §4.3–4.6: Hdr Ext Len counts 8-octet units after the first 8.
        // The fragment header has a fixed 8 bytes (its second byte is reserved).
        let len = if next == IpProtocol::IPV6_FRAG {
            FRAG_HEADER_LEN
        } else {
            (rest[1] as usize + 1) * 8
        };
        if rest.len() < len {
            return Err(Ipv6ExtError::silent(Error::Truncated));
        }
        let hdr = &rest[..len];
        out.count += 1;
        match next {
            IpProtocol::HOPOPT | IpProtocol::IPV6_OPTS => {
                let alert = check_options(&hdr[2..], base)?;
                if next == IpProtocol::HOPOPT {
                    out.router_alert = alert;
                }
            }
            IpProtocol::IPV6_ROUTE => {
                // RFC 8200 §4.4: a routing type the node does not handle is ignored
                // when Segments Left is 0; otherwise Parameter Problem code 0 at the
                // Routing Type. berth is a host and handles none; RFC 5095 §3 puts
                // type 0 in that class, so RH0 with segments left is refused too.
                if hdr[3] != 0 {
                    return Err(Ipv6ExtError::problem(
                        Error::Unsupported,
                        ParamProblemCode::ErroneousHeaderField,
                        base + 2,
                    ));
                }
            }
            _ => {
                let frag = Ipv6FragmentRepr::parse(hdr).map_err(Ipv6ExtError::silent)?;
                let data_len = rest.len() - FRAG_HEADER_LEN;
                // RFC 8200 §4.5: a fragment other than the last must hold a multiple
                // of 8 bytes (code 0 at the Payload Length field), and no fragment may
                // end past 65535 (code 0 at the Fragment Offset field).
                if frag.more_frags && !data_len.is_multiple_of(8) {
                    return Err(Ipv6ExtError::problem(
                        Error::Malformed,
                        ParamProblemCode::ErroneousHeaderField,
                        4,
                    ));
                }
                if frag.frag_offset as usize + data_len > 65_535 {
                    return Err(Ipv6ExtError::problem(
                        Error::Malformed,
                        ParamProblemCode::ErroneousHeaderField,
                        base + 2,
                    ));
                }
                out.fragment = Some((base, frag));
                if !frag.is_atomic() {
                    out.upper_layer = frag.next_header;
                    out.upper_layer_pointer = base;
                    out.payload_offset = base + FRAG_HEADER_LEN;
                    return Ok(out);
                }
            }
        }
        next = IpProtocol(hdr[0]);
        pointer = base;
        at += len;
    }
    out.upper_layer = next;
    out.upper_layer_pointer = pointer;
    out.payload_offset = HEADER_LEN + at;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    fn repr(next: IpProtocol, len: usize) -> Ipv6Repr {
        Ipv6Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: next,
            payload_len: len,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        }
    }

    fn packet(next: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let r = repr(next, payload.len());
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        b[HEADER_LEN..].copy_from_slice(payload);
        b
    }

    #[test]
    fn fixed_header_round_trip() {
        let b = packet(IpProtocol::UDP, &[0xaa; 12]);
        assert_eq!(&b[..8], &[0x6b, 0x81, 0x23, 0x45, 0, 12, 17, 64]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), repr(IpProtocol::UDP, 12));
        assert_eq!(p.payload(), &[0xaa; 12]);
        let mut c = b.clone();
        let mut q = Ipv6Packet::new_unchecked(&mut c[..]);
        q.set_traffic_class(0x12);
        q.set_flow_label(0xfffff);
        q.set_hop_limit(1);
        assert_eq!(q.traffic_class(), 0x12);
        assert_eq!(q.flow_label(), 0xfffff);
        assert_eq!(q.version(), 6);
        assert_eq!(q.hop_limit(), 1);
    }

    #[test]
    fn fixed_header_errors() {
        let b = packet(IpProtocol::UDP, &[0; 12]);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            Error::Truncated
        );
        // Payload length larger than the buffer.
        assert_eq!(
            Ipv6Packet::new_checked(&b[..51]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&b[..51])).unwrap_err(),
            Error::Truncated
        );
        let mut c = b.clone();
        c[0] = 0x4b;
        let p = Ipv6Packet::new_checked(&c[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p).unwrap_err(), Error::BadVersion);
        // Link padding is excluded from the payload.
        let mut c = b.clone();
        c.extend_from_slice(&[0; 6]);
        let p = Ipv6Packet::new_checked(&c[..]).unwrap();
        assert_eq!(p.payload().len(), 12);
        assert_eq!(p.packet().len(), 52);
    }

    #[test]
    fn cidr() {
        let c: Ipv6Cidr = "2001:db8:1:2::77/64".parse().unwrap();
        assert!(c.contains("2001:db8:1:2::1".parse().unwrap()));
        assert!(!c.contains("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            c.network().address(),
            "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            c.netmask(),
            "ffff:ffff:ffff:ffff::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(c.to_string(), "2001:db8:1:2::77/64");
        let all: Ipv6Cidr = "::/0".parse().unwrap();
        assert!(all.contains(DST));
        let host: Ipv6Cidr = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains(SRC) && !host.contains(DST));
        assert!("2001:db8::1/129".parse::<Ipv6Cidr>().is_err());
        assert!("2001:db8::1".parse::<Ipv6Cidr>().is_err());
        assert!("192.0.2.1/24".parse::<Ipv6Cidr>().is_err());
    }

    #[test]
    fn address_helpers() {
        // RFC 4291 §2.7.1 example style: 4037::01:800:200e:8c6c → ff02::1:ff0e:8c6c.
        let a: Ipv6Addr = "4037::1:800:200e:8c6c".parse().unwrap();
        let sn = solicited_node(&a);
        assert_eq!(sn, "ff02::1:ff0e:8c6c".parse::<Ipv6Addr>().unwrap());
        assert!(is_solicited_node(&sn) && !is_solicited_node(&a));
        // RFC 2464 §7: ff02::1 → 33:33:00:00:00:01.
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(
            multicast_mac(&all_nodes),
            Some(EthernetAddress([0x33, 0x33, 0, 0, 0, 1]))
        );
        assert_eq!(
            multicast_mac(&sn),
            Some(EthernetAddress([0x33, 0x33, 0xff, 0x0e, 0x8c, 0x6c]))
        );
        assert_eq!(multicast_mac(&a), None);
        // RFC 4291 App. A: 34-56-78-9A-BC-DE → 36-56-78-FF-FE-9A-BC-DE.
        let iid = eui64_interface_id(EthernetAddress([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]));
        assert_eq!(iid, [0x36, 0x56, 0x78, 0xff, 0xfe, 0x9a, 0xbc, 0xde]);
        assert_eq!(
            link_local(iid),
            "fe80::3656:78ff:fe9a:bcde".parse::<Ipv6Addr>().unwrap()
        );
        // The capture's 02:00:00:00:00:01 → fe80::ff:fe00:1 (what Linux chose).
        let ll = link_local(eui64_interface_id(EthernetAddress([2, 0, 0, 0, 0, 1])));
        assert_eq!(ll, "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap());
        assert!(is_link_local(&ll) && !is_link_local(&SRC));
        assert!(is_link_local(&"febf::1".parse().unwrap()));
    }

    #[test]
    fn fragment_header() {
        let f = Ipv6FragmentRepr {
            next_header: IpProtocol::ICMPV6,
            frag_offset: 1448,
            more_frags: true,
            ident: 0x2f21200d,
        };
        let mut b = [0u8; 8];
        f.emit(&mut b);
        assert_eq!(b, [58, 0, 0x05, 0xa9, 0x2f, 0x21, 0x20, 0x0d]);
        assert_eq!(Ipv6FragmentRepr::parse(&b), Ok(f));
        assert!(!f.is_atomic());
        assert_eq!(Ipv6FragmentRepr::parse(&b[..7]), Err(Error::Truncated));
        let atomic = Ipv6FragmentRepr {
            frag_offset: 0,
            more_frags: false,
            ..f
        };
        assert!(atomic.is_atomic());
    }

    #[test]
    fn option_actions() {
        assert_eq!(UnknownOptionAction::of(0x1e), UnknownOptionAction::Skip);
        assert_eq!(UnknownOptionAction::of(0x5e), UnknownOptionAction::Discard);
        assert_eq!(
            UnknownOptionAction::of(0x9e),
            UnknownOptionAction::DiscardSendParamProblem
        );
        assert_eq!(
            UnknownOptionAction::of(0xc2),
            UnknownOptionAction::DiscardSendParamProblemIfUnicast
        );
    }

    /// An options header (hop-by-hop or destination) with `opts`, padded to 8n bytes.
    fn opts_header(next: IpProtocol, opts: &[u8]) -> Vec<u8> {
        let mut h = vec![next.0, 0];
        h.extend_from_slice(opts);
        let pad = (8 - h.len() % 8) % 8;
        match pad {
            0 => {}
            1 => h.push(0),
            n => h.extend(
                std::iter::once(1)
                    .chain(std::iter::once(n as u8 - 2))
                    .chain(std::iter::repeat_n(0, n - 2)),
            ),
        }
        h[1] = (h.len() / 8 - 1) as u8;
        h
    }

    #[test]
    fn walk_plain_and_chain() {
        let w = walk_ext_headers(IpProtocol::TCP, &[0; 20]).unwrap();
        assert_eq!(w.upper_layer, IpProtocol::TCP);
        assert_eq!(
            (w.payload_offset, w.upper_layer_pointer, w.count),
            (40, 6, 0)
        );
        // HBH (router alert) → DST opts → routing (type 2, segments left 0) → UDP.
        let mut p = opts_header(IpProtocol::IPV6_OPTS, &[5, 2, 0, 0]);
        p.extend(opts_header(IpProtocol::IPV6_ROUTE, &[0x1e, 1, 0]));
        p.extend([17, 2, 2, 0, 0, 0, 0, 0]);
        p.extend([0; 16]);
        p.extend([0xaa; 8]);
        let w = walk_ext_headers(IpProtocol::HOPOPT, &p).unwrap();
        assert_eq!(w.upper_layer, IpProtocol::UDP);
        assert_eq!(w.payload_offset, 40 + 8 + 8 + 24);
        assert_eq!(w.upper_layer_pointer, 40 + 16);
        assert_eq!(w.router_alert, Some(0));
        assert_eq!(w.count, 3);
        assert_eq!(w.fragment, None);
        // The repr the upper layer sees.
        let b = packet(IpProtocol::HOPOPT, &p);
        let r = Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()).unwrap();
        let u = r.upper_layer(&w);
        assert_eq!((u.next_header, u.payload_len), (IpProtocol::UDP, 8));
        // No Next Header ends the chain.
        let p = opts_header(IpProtocol::IPV6_NONXT, &[]);
        let w = walk_ext_headers(IpProtocol::IPV6_OPTS, &p).unwrap();
        assert_eq!(
            (w.upper_layer, w.payload_offset),
            (IpProtocol::IPV6_NONXT, 48)
        );
    }

    #[test]
    fn walk_fragments() {
        let f = Ipv6FragmentRepr {
            next_header: IpProtocol::UDP,
            frag_offset: 0,
            more_frags: true,
            ident: 7,
        };
        let mut p = vec![0u8; 8 + 16];
        f.emit(&mut p);
        let w = walk_ext_headers(IpProtocol::IPV6_FRAG, &p).unwrap();
        assert_eq!(w.fragment, Some((40, f)));
        assert_eq!(
            (w.upper_layer, w.payload_offset, w.upper_layer_pointer),
            (IpProtocol::UDP, 48, 40)
        );
        // Not a multiple of 8 with M set: code 0 at the Payload Length field.
        let e = walk_ext_headers(IpProtocol::IPV6_FRAG, &p[..20]).unwrap_err();
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 4))
        );
        // Past 65535: code 0 at the Fragment Offset field.
        let late = Ipv6FragmentRepr {
            frag_offset: 65528,
            ..f
        };
        late.emit(&mut p);
        let e = walk_ext_headers(IpProtocol::IPV6_FRAG, &p).unwrap_err();
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 42))
        );
        // Atomic fragment: walked through (RFC 6946), then a destination header.
        let atomic = Ipv6FragmentRepr {
            next_header: IpProtocol::IPV6_OPTS,
            frag_offset: 0,
            more_frags: false,
            ident: 9,
        };
        let mut p = vec![0u8; 8];
        atomic.emit(&mut p);
        p.extend(opts_header(IpProtocol::TCP, &[]));
        let w = walk_ext_headers(IpProtocol::IPV6_FRAG, &p).unwrap();
        assert_eq!(
            (w.upper_layer, w.payload_offset, w.count),
            (IpProtocol::TCP, 56, 2)
        );
        assert_eq!(w.fragment, Some((40, atomic)));
        assert!(w.fragment.unwrap().1.is_atomic());
    }

    #[test]
    fn walk_errors() {
        // Hop-by-hop not first: code 1 at the Next Header field that named it.
        let mut p = opts_header(IpProtocol::HOPOPT, &[]);
        p.extend(opts_header(IpProtocol::TCP, &[]));
        let e = walk_ext_headers(IpProtocol::IPV6_OPTS, &p).unwrap_err();
        assert_eq!(e.error, Error::Malformed);
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::UnrecognizedNextHeader, 40))
        );
        // Routing type 0 (RFC 5095) with segments left: code 0 at the Routing Type.
        let mut p = vec![6, 2, 0, 1, 0, 0, 0, 0];
        p.extend([0; 16]);
        let e = walk_ext_headers(IpProtocol::IPV6_ROUTE, &p).unwrap_err();
        assert_eq!(e.error, Error::Unsupported);
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 42))
        );
        // Unknown routing type 4 (SRH) with segments left, after a destination header.
        let mut q = opts_header(IpProtocol::IPV6_ROUTE, &[]);
        q.extend([6, 0, 4, 3, 0, 0, 0, 0]);
        let e = walk_ext_headers(IpProtocol::IPV6_OPTS, &q).unwrap_err();
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 50))
        );
        // A chain that never ends: destination options naming destination options.
        let mut p = Vec::new();
        for _ in 0..20 {
            p.extend(opts_header(IpProtocol::IPV6_OPTS, &[]));
        }
        let e = walk_ext_headers(IpProtocol::IPV6_OPTS, &p).unwrap_err();
        assert_eq!(e, Ipv6ExtError::silent(Error::Malformed));
        // A chain that runs out of packet.
        let e = walk_ext_headers(IpProtocol::IPV6_OPTS, &p[..60]).unwrap_err();
        assert_eq!(e.error, Error::Truncated);
        // Header length larger than what is left.
        let e = walk_ext_headers(IpProtocol::IPV6_OPTS, &[6, 1, 1, 4, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.error, Error::Truncated);
        assert_eq!(
            walk_ext_headers(IpProtocol::HOPOPT, &[6, 0, 1])
                .unwrap_err()
                .error,
            Error::Truncated
        );
        // Option length overflow: PadN claiming 9 bytes in a 6-byte area; pointer at its length byte.
        let e = walk_ext_headers(IpProtocol::HOPOPT, &[6, 0, 0, 1, 9, 0, 0, 0]).unwrap_err();
        assert_eq!(e.error, Error::BadOption);
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 44))
        );
        // An option type in the header's last byte, its length byte missing: the
        // pointer is the type, inside the header (found by the ipv6 fuzz target).
        let e = walk_ext_headers(IpProtocol::HOPOPT, &[0, 0, 0, 0, 0, 0, 0, 0xfe]).unwrap_err();
        assert_eq!(e.error, Error::BadOption);
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 47))
        );
        // RH0 with no segments left is ignored, as any routing type (RFC 5095 §3
        // sends it to RFC 8200 §4.4's unrecognised-type rule).
        let mut p = vec![6, 2, 0, 0, 0, 0, 0, 0];
        p.extend([0; 16]);
        let w = walk_ext_headers(IpProtocol::IPV6_ROUTE, &p).unwrap();
        assert_eq!((w.upper_layer, w.payload_offset), (IpProtocol::TCP, 64));
        // Router alert of the wrong length.
        let e = walk_ext_headers(IpProtocol::HOPOPT, &[6, 0, 5, 3, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.error, Error::BadOption);
        assert_eq!(
            e.param_problem,
            Some((ParamProblemCode::ErroneousHeaderField, 43))
        );
    }

    #[test]
    fn unknown_option_actions() {
        let multicast: Ipv6Addr = "ff02::1".parse().unwrap();
        // 00: skipped.
        let p = opts_header(IpProtocol::TCP, &[0x1e, 2, 0, 0]);
        assert!(walk_ext_headers(IpProtocol::IPV6_OPTS, &p).is_ok());
        // 01: discard silently.
        let p = opts_header(IpProtocol::TCP, &[0x5e, 2, 0, 0]);
        let e = walk_ext_headers(IpProtocol::IPV6_OPTS, &p).unwrap_err();
        assert_eq!((e.error, e.param_problem), (Error::Unsupported, None));
        // 10: code 2 at the option type, even to multicast. Pad1 first moves it to 43.
        let p = opts_header(IpProtocol::TCP, &[0, 0x9e, 2, 0, 0]);
        let e = walk_ext_headers(IpProtocol::HOPOPT, &p).unwrap_err();
        assert_eq!(
            e.param_problem_for(&multicast),
            Some((ParamProblemCode::UnrecognizedOption, 43))
        );
        // 11 (e.g. a jumbo payload option, 0xc2): only to unicast.
        let p = opts_header(IpProtocol::TCP, &[0xc2, 4, 0, 1, 0, 0]);
        let e = walk_ext_headers(IpProtocol::HOPOPT, &p).unwrap_err();
        assert!(e.only_if_unicast);
        assert_eq!(e.param_problem_for(&multicast), None);
        assert_eq!(
            e.param_problem_for(&DST),
            Some((ParamProblemCode::UnrecognizedOption, 42))
        );
        assert_eq!(Error::from(e), Error::Unsupported);
    }

    #[test]
    fn options_iterator_and_emit() {
        let opts = [
            Ipv6Option::Pad1,
            Ipv6Option::PadN(3),
            Ipv6Option::RouterAlert(0),
            Ipv6Option::Unknown {
                option_type: 0x3e,
                data: &[1, 2],
            },
        ];
        let mut area = [0xffu8; 14];
        let mut at = 0;
        for o in opts {
            at += o.emit(&mut area[at..]);
        }
        assert_eq!(at, 14);
        let got: Vec<_> = Ipv6Options::new(&area).map(|r| r.unwrap().1).collect();
        assert_eq!(got, opts);
        let mut it = Ipv6Options::new(&[1, 5, 0]);
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
        assert_eq!(Ipv6Options::new(&[1]).next(), Some(Err(Error::BadOption)));
    }
}
