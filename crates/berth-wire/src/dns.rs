//! DNS messages (RFC 1035 §4): the header, questions and resource records,
//! with name compression (§4.1.4) followed on parse.
//!
//! [`DnsPacket`] is the view: [`DnsPacket::new_checked`] walks the whole
//! message once (every name, every pointer, every record length), so the
//! iterators and names it hands out never fail and never read out of bounds.
//! Names are [`Name`]s that point into the packet; nothing is allocated until
//! a name is printed. [`Builder`] writes queries and answers (compressing
//! owner names that repeat the question's, as servers do).
//!
//! Over TCP each message has a two-octet length in front (RFC 1035 §4.2.2,
//! RFC 7766 §8): [`tcp_frame`] adds it; the reader takes it off.

use crate::{be16, be32, put16, Error, Result};
use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Size of the fixed header (§4.1.1).
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form, length octets included (§2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (§2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Largest message over UDP without EDNS (§2.3.4, §4.2.1).
pub const MAX_UDP_LEN: usize = 512;

/// Record types berth asks for or follows (§3.2.2, RFC 3596).
pub mod rtype {
    /// IPv4 host address.
    pub const A: u16 = 1;
    /// Canonical name: the owner is an alias of the name in the data.
    pub const CNAME: u16 = 5;
    /// Start of authority (in the authority section of NXDOMAIN / NODATA answers).
    pub const SOA: u16 = 6;
    /// IPv6 host address (RFC 3596 §2.1).
    pub const AAAA: u16 = 28;
}

/// Class IN, the Internet (§3.2.4).
pub const CLASS_IN: u16 = 1;

/// Response codes (§4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// No error.
    NoError,
    /// The server could not interpret the query.
    FormErr,
    /// The server failed (try another one).
    ServFail,
    /// The name does not exist (authoritative).
    NxDomain,
    /// The server does not do this kind of query.
    NotImp,
    /// The server refuses (policy).
    Refused,
    /// Another code (6..15).
    Other(u8),
}

impl Rcode {
    /// From the four low bits of the flags.
    pub fn from_u8(v: u8) -> Rcode {
        match v & 0x0f {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            n => Rcode::Other(n),
        }
    }
    /// The four-bit code.
    pub fn to_u8(self) -> u8 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(n) => n & 0x0f,
        }
    }
}

/// The flags word of the header (§4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// QR: a response.
    pub response: bool,
    /// OPCODE (0: standard query).
    pub opcode: u8,
    /// AA: authoritative answer.
    pub authoritative: bool,
    /// TC: truncated to fit the transport; retry over TCP (RFC 7766 §5).
    pub truncated: bool,
    /// RD: recursion desired.
    pub recursion_desired: bool,
    /// RA: recursion available.
    pub recursion_available: bool,
    /// RCODE.
    pub rcode: Rcode,
}

impl Flags {
    /// A standard query asking for recursion, as a stub resolver sends.
    pub const QUERY: Flags = Flags {
        response: false,
        opcode: 0,
        authoritative: false,
        truncated: false,
        recursion_desired: true,
        recursion_available: false,
        rcode: Rcode::NoError,
    };

    fn from_u16(v: u16) -> Flags {
        Flags {
            response: v & 0x8000 != 0,
            opcode: ((v >> 11) & 0x0f) as u8,
            authoritative: v & 0x0400 != 0,
            truncated: v & 0x0200 != 0,
            recursion_desired: v & 0x0100 != 0,
            recursion_available: v & 0x0080 != 0,
            rcode: Rcode::from_u8((v & 0x0f) as u8),
        }
    }

    fn to_u16(self) -> u16 {
        (u16::from(self.response) << 15)
            | (u16::from(self.opcode & 0x0f) << 11)
            | (u16::from(self.authoritative) << 10)
            | (u16::from(self.truncated) << 9)
            | (u16::from(self.recursion_desired) << 8)
            | (u16::from(self.recursion_available) << 7)
            | u16::from(self.rcode.to_u8())
    }
}

/// A domain name inside a checked packet: its labels are read (following
/// compression pointers) on demand. Comparison ignores ASCII case (§2.3.3).
#[derive(Clone, Copy)]
pub struct Name<'a> {
    packet: &'a [u8],
    offset: usize,
}

/// Check the name at `offset` (§4.1.4) and return the offset just past it
/// where it sits (after its first pointer, if it has one). Every pointer must
/// point before itself, so the walk ends; the name's wire length is at most
/// [`MAX_NAME_LEN`].
fn check_name(packet: &[u8], offset: usize) -> Result<usize> {
    let mut at = offset;
    let mut end = None;
    let mut len = 0usize;
    loop {
        let &b = packet.get(at).ok_or(Error::Truncated)?;
        match b & 0xc0 {
            0x00 => {
                len += 1 + b as usize;
                if len > MAX_NAME_LEN {
                    return Err(Error::Malformed);
                }
                if b == 0 {
                    return Ok(end.unwrap_or(at + 1));
                }
                if at + 1 + b as usize > packet.len() {
                    return Err(Error::Truncated);
                }
                at += 1 + b as usize;
            }
            0xc0 => {
                let &lo = packet.get(at + 1).ok_or(Error::Truncated)?;
                let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                // Only backwards: a pointer names a prior occurrence (§4.1.4),
                // which also rules out loops.
                if target >= at {
                    return Err(Error::Malformed);
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            // 01 and 10 are reserved (§4.1.4; RFC 6891 retired 01).
            _ => return Err(Error::Malformed),
        }
    }
}

impl<'a> Name<'a> {
    /// The labels, first to last (the root's empty label not included).
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            packet: self.packet,
            at: self.offset,
        }
    }

    /// Whether this is `dotted` ("www.example.org", a final dot optional),
    /// ignoring ASCII case.
    pub fn matches(&self, dotted: &str) -> bool {
        let dotted = dotted.strip_suffix('.').unwrap_or(dotted);
        let mut want = dotted.split('.').filter(|_| !dotted.is_empty());
        for label in self.labels() {
            match want.next() {
                Some(w) if w.as_bytes().eq_ignore_ascii_case(label) => {}
                _ => return false,
            }
        }
        want.next().is_none()
    }

    /// Whether both name the same domain, ignoring ASCII case.
    pub fn same_as(&self, other: &Name<'_>) -> bool {
        let mut b = other.labels();
        for l in self.labels() {
            match b.next() {
                Some(m) if m.eq_ignore_ascii_case(l) => {}
                _ => return false,
            }
        }
        b.next().is_none()
    }
}

impl fmt::Display for Name<'_> {
    /// Dotted, bytes outside printable ASCII and dots inside labels escaped as
    /// `\DDD` (RFC 1035 §5.1); the root is ".".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for label in self.labels() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            for &c in label {
                if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                    write!(f, "{}", c as char)?;
                } else {
                    write!(f, "\\{c:03}")?;
                }
            }
        }
        if first {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// The labels of a [`Name`].
pub struct Labels<'a> {
    packet: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        // The name was checked; the bounds checks here only make sure a
        // mistake could never turn into a panic or a loop.
        for _ in 0..MAX_NAME_LEN {
            let &b = self.packet.get(self.at)?;
            if b & 0xc0 == 0xc0 {
                let lo = *self.packet.get(self.at + 1)?;
                let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                if target >= self.at {
                    return None;
                }
                self.at = target;
                continue;
            }
            if b == 0 {
                return None;
            }
            let label = self.packet.get(self.at + 1..self.at + 1 + b as usize)?;
            self.at += 1 + b as usize;
            return Some(label);
        }
        None
    }
}

/// One question (§4.1.2).
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// QNAME.
    pub name: Name<'a>,
    /// QTYPE ([`rtype`]).
    pub qtype: u16,
    /// QCLASS ([`CLASS_IN`]).
    pub qclass: u16,
}

/// One resource record (§4.1.3).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The owner name.
    pub name: Name<'a>,
    /// TYPE ([`rtype`]).
    pub rtype: u16,
    /// CLASS.
    pub class: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA, raw.
    pub rdata: &'a [u8],
    rdata_offset: usize,
}

/// The data of the record types berth understands.
#[derive(Debug, Clone, Copy)]
pub enum RData<'a> {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name of the owner (an alias).
    Cname(Name<'a>),
    /// Any other type, raw.
    Other,
}

impl<'a> Record<'a> {
    /// The data, interpreted for A, AAAA and CNAME. `Malformed` when the
    /// length does not fit the type (the message as a whole stays usable).
    pub fn data(&self) -> Result<RData<'a>> {
        match self.rtype {
            rtype::A => {
                let b: [u8; 4] = self.rdata.try_into().map_err(|_| Error::Malformed)?;
                Ok(RData::A(Ipv4Addr::from(b)))
            }
            rtype::AAAA => {
                let b: [u8; 16] = self.rdata.try_into().map_err(|_| Error::Malformed)?;
                Ok(RData::Aaaa(Ipv6Addr::from(b)))
            }
            rtype::CNAME => {
                // The name is checked against the whole packet (it may point
                // anywhere before it) and must fill the RDATA exactly.
                let packet = self.name.packet;
                let end = check_name(packet, self.rdata_offset)?;
                if end != self.rdata_offset + self.rdata.len() {
                    return Err(Error::Malformed);
                }
                Ok(RData::Cname(Name {
                    packet,
                    offset: self.rdata_offset,
                }))
            }
            _ => Ok(RData::Other),
        }
    }
}

/// A view over a DNS message, checked whole by [`DnsPacket::new_checked`].
#[derive(Debug, Clone)]
pub struct DnsPacket<T: AsRef<[u8]>> {
    buffer: T,
    /// Where the answer, authority and additional sections start.
    sections: [usize; 3],
}

/// Walk `count` records from `at`; the offset after them.
fn check_records(b: &[u8], mut at: usize, count: u16) -> Result<usize> {
    for _ in 0..count {
        at = check_name(b, at)?;
        if at + 10 > b.len() {
            return Err(Error::Truncated);
        }
        let rdlen = be16(b, at + 8) as usize;
        at += 10 + rdlen;
        if at > b.len() {
            return Err(Error::Truncated);
        }
    }
    Ok(at)
}

impl<T: AsRef<[u8]>> DnsPacket<T> {
    /// Check the header, every question and every record: names (with their
    /// pointers), fixed fields and RDATA lengths all inside the buffer.
    /// Bytes after the last record are ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let mut at = HEADER_LEN;
        for _ in 0..be16(b, 4) {
            at = check_name(b, at)? + 4;
            if at > b.len() {
                return Err(Error::Truncated);
            }
        }
        let an = at;
        let ns = check_records(b, an, be16(b, 6))?;
        let ar = check_records(b, ns, be16(b, 8))?;
        check_records(b, ar, be16(b, 10))?;
        Ok(DnsPacket {
            buffer,
            sections: [an, ns, ar],
        })
    }

    /// ID: matches a response to its query.
    pub fn id(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    /// The flags word.
    pub fn flags(&self) -> Flags {
        Flags::from_u16(be16(self.buffer.as_ref(), 2))
    }
    /// QDCOUNT.
    pub fn question_count(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    /// ANCOUNT.
    pub fn answer_count(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    /// NSCOUNT.
    pub fn authority_count(&self) -> u16 {
        be16(self.buffer.as_ref(), 8)
    }
    /// ARCOUNT.
    pub fn additional_count(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }

    /// The question section.
    pub fn questions(&self) -> Questions<'_> {
        Questions {
            packet: self.buffer.as_ref(),
            at: HEADER_LEN,
            left: self.question_count(),
        }
    }
    /// The answer section.
    pub fn answers(&self) -> Records<'_> {
        self.records(0, self.answer_count())
    }
    /// The authority section.
    pub fn authorities(&self) -> Records<'_> {
        self.records(1, self.authority_count())
    }
    /// The additional section.
    pub fn additionals(&self) -> Records<'_> {
        self.records(2, self.additional_count())
    }

    fn records(&self, section: usize, count: u16) -> Records<'_> {
        Records {
            packet: self.buffer.as_ref(),
            at: self.sections[section],
            left: count,
        }
    }
}

/// The questions of a checked packet.
pub struct Questions<'a> {
    packet: &'a [u8],
    at: usize,
    left: u16,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Question<'a>;
    fn next(&mut self) -> Option<Question<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let end = check_name(self.packet, self.at).ok()?;
        let fixed = self.packet.get(end..end + 4)?;
        let q = Question {
            name: Name {
                packet: self.packet,
                offset: self.at,
            },
            qtype: be16(fixed, 0),
            qclass: be16(fixed, 2),
        };
        self.at = end + 4;
        Some(q)
    }
}

/// The records of one section of a checked packet.
pub struct Records<'a> {
    packet: &'a [u8],
    at: usize,
    left: u16,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;
    fn next(&mut self) -> Option<Record<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let end = check_name(self.packet, self.at).ok()?;
        let fixed = self.packet.get(end..end + 10)?;
        let rdlen = be16(fixed, 8) as usize;
        let rdata = self.packet.get(end + 10..end + 10 + rdlen)?;
        let r = Record {
            name: Name {
                packet: self.packet,
                offset: self.at,
            },
            rtype: be16(fixed, 0),
            class: be16(fixed, 2),
            ttl: be32(fixed, 4),
            rdata,
            rdata_offset: end + 10,
        };
        self.at = end + 10 + rdlen;
        Some(r)
    }
}

/// Why a name cannot be put in a message.
fn bad_name() -> Error {
    Error::Malformed
}

/// Write `dotted` in wire form (labels and the root's zero octet). A final
/// dot is allowed; empty labels, labels over 63 octets and names over 255
/// octets are `Malformed` (§2.3.4).
pub fn encode_name(dotted: &str, out: &mut Vec<u8>) -> Result<()> {
    let dotted = dotted.strip_suffix('.').unwrap_or(dotted);
    let start = out.len();
    if !dotted.is_empty() {
        for label in dotted.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                out.truncate(start);
                return Err(bad_name());
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME_LEN {
        out.truncate(start);
        return Err(bad_name());
    }
    Ok(())
}

/// Writes a message section by section: header, questions, then records.
/// Owner names equal to the first question's name are written as a pointer
/// to it (§4.1.4), as servers compress.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    /// The first question's name in wire form, to compress against.
    qname: Option<Vec<u8>>,
}

impl Builder {
    /// A message with this ID and these flags, sections empty.
    pub fn new(id: u16, flags: Flags) -> Builder {
        let mut buf = vec![0u8; HEADER_LEN];
        put16(&mut buf, 0, id);
        put16(&mut buf, 2, flags.to_u16());
        Builder { buf, qname: None }
    }

    fn bump(&mut self, at: usize) {
        let n = be16(&self.buf, at).wrapping_add(1);
        put16(&mut self.buf, at, n);
    }

    /// Add a question (class IN).
    pub fn question(mut self, name: &str, qtype: u16) -> Result<Builder> {
        let start = self.buf.len();
        encode_name(name, &mut self.buf)?;
        if self.qname.is_none() && start == HEADER_LEN {
            self.qname = Some(self.buf[start..].to_vec());
        }
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.bump(4);
        Ok(self)
    }

    /// Add an answer record (class IN) with raw RDATA.
    pub fn answer(mut self, name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Result<Builder> {
        let rdlen = u16::try_from(rdata.len()).map_err(|_| Error::BadLength)?;
        let mut owner = Vec::new();
        encode_name(name, &mut owner)?;
        if self
            .qname
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case(&owner))
        {
            // Pointer to the first question's name, right after the header.
            self.buf.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        } else {
            self.buf.extend_from_slice(&owner);
        }
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&rdlen.to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self.bump(6);
        Ok(self)
    }

    /// Add a CNAME answer: `name` is an alias of `target`.
    pub fn cname(self, name: &str, ttl: u32, target: &str) -> Result<Builder> {
        let mut rdata = Vec::new();
        encode_name(target, &mut rdata)?;
        self.answer(name, rtype::CNAME, ttl, &rdata)
    }

    /// The message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// A standard query for `name` of type `qtype` with recursion desired: what
/// a stub resolver sends (§4.1, RFC 1123 §6.1.3.1).
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>> {
    Builder::new(id, Flags::QUERY)
        .question(name, qtype)
        .map(Builder::finish)
}

/// `msg` with the two-octet length in front, for TCP (§4.2.2); `BadLength`
/// over 65,535 octets.
pub fn tcp_frame(msg: &[u8]) -> Result<Vec<u8>> {
    let len = u16::try_from(msg.len()).map_err(|_| Error::BadLength)?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer to "example.org A" from RFC 1035-style servers: the owner of
    /// the answer is a pointer to the question name (offset 12).
    fn compressed_answer() -> Vec<u8> {
        let mut m = vec![
            0x12, 0x34, // id
            0x81, 0x80, // response, rd, ra
            0, 1, 0, 1, 0, 0, 0, 0,
        ];
        m.extend_from_slice(b"\x07example\x03org\x00");
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 7]);
        m
    }

    #[test]
    fn query_layout() {
        let q = query(0xbeef, "www.Example.org.", rtype::AAAA).unwrap();
        assert_eq!(&q[..4], &[0xbe, 0xef, 0x01, 0x00]);
        assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07Example\x03org\x00\x00\x1c\x00\x01");
        let p = DnsPacket::new_checked(&q[..]).unwrap();
        let f = p.flags();
        assert!(!f.response && f.recursion_desired && !f.truncated);
        let qs: Vec<_> = p.questions().collect();
        assert_eq!(qs.len(), 1);
        assert!(qs[0].name.matches("www.example.ORG"));
        assert_eq!(qs[0].name.to_string(), "www.Example.org");
        assert_eq!((qs[0].qtype, qs[0].qclass), (rtype::AAAA, CLASS_IN));
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(query(1, "a..b", rtype::A), Err(Error::Malformed));
        let long = "x".repeat(64);
        assert_eq!(query(1, &long, rtype::A), Err(Error::Malformed));
        let many = vec!["abcdefghi"; 26].join(".");
        assert_eq!(query(1, &many, rtype::A), Err(Error::Malformed));
        // The root is a name.
        let root = query(1, ".", rtype::A).unwrap();
        let p = DnsPacket::new_checked(&root[..]).unwrap();
        assert_eq!(p.questions().next().unwrap().name.to_string(), ".");
    }

    #[test]
    fn compressed_answer_parses() {
        let m = compressed_answer();
        let p = DnsPacket::new_checked(&m[..]).unwrap();
        assert_eq!(p.id(), 0x1234);
        assert!(p.flags().response && p.flags().recursion_available);
        assert_eq!(p.flags().rcode, Rcode::NoError);
        let a: Vec<_> = p.answers().collect();
        assert_eq!(a.len(), 1);
        assert!(a[0].name.matches("example.org"));
        assert!(a[0].name.same_as(&p.questions().next().unwrap().name));
        assert_eq!(a[0].ttl, 3600);
        match a[0].data().unwrap() {
            RData::A(ip) => assert_eq!(ip, Ipv4Addr::new(192, 0, 2, 7)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builder_compresses_and_chains_cnames() {
        let m = Builder::new(
            7,
            Flags {
                response: true,
                ..Flags::QUERY
            },
        )
        .question("www.example.org", rtype::AAAA)
        .unwrap()
        .cname("www.example.org", 60, "host.example.org")
        .unwrap()
        .answer(
            "host.example.org",
            rtype::AAAA,
            60,
            &"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets(),
        )
        .unwrap()
        .finish();
        // The first owner is a pointer to offset 12.
        let q_end = 12 + 17 + 4;
        assert_eq!(&m[q_end..q_end + 2], &[0xc0, 12]);
        let p = DnsPacket::new_checked(&m[..]).unwrap();
        let a: Vec<_> = p.answers().collect();
        let RData::Cname(target) = a[0].data().unwrap() else {
            panic!("not a CNAME")
        };
        assert!(target.matches("host.example.org"));
        assert!(a[1].name.same_as(&target));
        assert!(matches!(a[1].data().unwrap(), RData::Aaaa(ip) if ip.segments()[7] == 7));
    }

    #[test]
    fn truncated_flag_and_tcp_frame() {
        let mut m = compressed_answer();
        m[2] |= 0x02;
        let p = DnsPacket::new_checked(&m[..]).unwrap();
        assert!(p.flags().truncated);
        let f = tcp_frame(&m).unwrap();
        assert_eq!(be16(&f, 0) as usize, m.len());
        assert_eq!(&f[2..], &m[..]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let m = compressed_answer();
        // Every prefix shorter than the message fails to check.
        for n in 0..m.len() {
            assert!(DnsPacket::new_checked(&m[..n]).is_err(), "prefix {n}");
        }
        // A pointer to itself, and one forward: loops are impossible.
        let mut looped = m.clone();
        let ans = 12 + 13 + 4;
        looped[ans + 1] = ans as u8;
        assert_eq!(
            DnsPacket::new_checked(&looped[..]).err(),
            Some(Error::Malformed)
        );
        looped[ans + 1] = (ans + 4) as u8;
        assert_eq!(
            DnsPacket::new_checked(&looped[..]).err(),
            Some(Error::Malformed)
        );
        // Reserved label types 01 and 10.
        let mut reserved = m.clone();
        reserved[12] = 0x47;
        assert!(DnsPacket::new_checked(&reserved[..]).is_err());
        reserved[12] = 0x87;
        assert!(DnsPacket::new_checked(&reserved[..]).is_err());
        // RDATA longer than the message.
        let mut long = m.clone();
        let rdlen_at = m.len() - 6;
        long[rdlen_at + 1] = 40;
        assert_eq!(
            DnsPacket::new_checked(&long[..]).err(),
            Some(Error::Truncated)
        );
        // An A record of 5 octets parses as a message, not as an address.
        let mut odd = m.clone();
        odd[rdlen_at + 1] = 5;
        odd.push(1);
        let p = DnsPacket::new_checked(&odd[..]).unwrap();
        assert_eq!(
            p.answers().next().unwrap().data().err(),
            Some(Error::Malformed)
        );
        // A name chain of pointers longer than 255 octets is refused.
        let mut chain = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        chain.extend_from_slice(&[63]);
        chain.extend(std::iter::repeat_n(b'a', 63));
        chain.push(0);
        let mut prev = 12usize;
        for _ in 0..4 {
            let here = chain.len();
            chain.push(63);
            chain.extend(std::iter::repeat_n(b'b', 63));
            chain.extend_from_slice(&[0xc0 | (prev >> 8) as u8, prev as u8]);
            prev = here;
        }
        // 4 × 64 + 64 + 1 octets once the pointers are followed.
        assert_eq!(check_name(&chain, prev), Err(Error::Malformed));
        assert_eq!(check_name(&chain, 12), Ok(12 + 65));
    }
}
