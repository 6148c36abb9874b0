//! TCP header (RFC 9293 §3.1) with the options berth uses: EOL, NOP, MSS (RFC 9293
//! §3.2), window scale and timestamps (RFC 7323), SACK-permitted and SACK (RFC 2018).
//! Unknown options are skipped by their length.

use crate::checksum;
use crate::ipv4::IpProtocol;
use crate::{be16, be32, put16, put32, Error, Result};
use core::{cmp, fmt, ops};
use std::net::IpAddr;

pub const MIN_HEADER_LEN: usize = 20;
pub const MAX_HEADER_LEN: usize = 60;

/// A TCP sequence number with modulo-2^32 comparison (RFC 9293 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl ops::Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl ops::AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl ops::Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl ops::Sub for SeqNumber {
    type Output = i32;
    /// Signed distance `self − rhs`, valid while the two are within 2^31.
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<cmp::Ordering> {
        Some((*self - *other).cmp(&0))
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// TCP flag bits (the low 9 bits of bytes 12–13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x001);
    pub const SYN: TcpFlags = TcpFlags(0x002);
    pub const RST: TcpFlags = TcpFlags(0x004);
    pub const PSH: TcpFlags = TcpFlags(0x008);
    pub const ACK: TcpFlags = TcpFlags(0x010);
    pub const URG: TcpFlags = TcpFlags(0x020);
    pub const ECE: TcpFlags = TcpFlags(0x040);
    pub const CWR: TcpFlags = TcpFlags(0x080);
    pub const NS: TcpFlags = TcpFlags(0x100);
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(TcpFlags, char); 6] = [
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, '.'),
            (TcpFlags::URG, 'U'),
        ];
        for (flag, c) in NAMES {
            if self.contains(flag) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One TCP option, as found in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    WindowScale(u8),
    SackPermitted,
    /// Up to four (left, right) edges.
    SackRange([Option<(SeqNumber, SeqNumber)>; 4]),
    /// (TSval, TSecr)
    Timestamp(u32, u32),
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterate over the options area; yields `Err(BadOption)` once and stops on a length
/// byte of 0 or 1, a missing length byte, a length running past the area, or a known
/// option with the wrong length.
pub struct TcpOptions<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> TcpOptions<'a> {
    pub fn new(area: &'a [u8]) -> Self {
        TcpOptions {
            rest: area,
            done: false,
        }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let kind = self.rest[0];
        match kind {
            0 => {
                self.done = true;
                return Some(Ok(TcpOption::EndOfList));
            }
            1 => {
                self.rest = &self.rest[1..];
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let bad = |s: &mut Self| {
            s.done = true;
            Some(Err(Error::BadOption))
        };
        let Some(&len) = self.rest.get(1) else {
            return bad(self);
        };
        let len = len as usize;
        if len < 2 || len > self.rest.len() {
            return bad(self);
        }
        let data = &self.rest[2..len];
        self.rest = &self.rest[len..];
        let opt = match (kind, data.len()) {
            (2, 2) => TcpOption::MaxSegmentSize(be16(data, 0)),
            (3, 1) => TcpOption::WindowScale(data[0]),
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n > 0 && n % 8 == 0 && n <= 32 => {
                let mut r = [None; 4];
                for (i, slot) in r.iter_mut().enumerate().take(n / 8) {
                    *slot = Some((
                        SeqNumber(be32(data, i * 8)),
                        SeqNumber(be32(data, i * 8 + 4)),
                    ));
                }
                TcpOption::SackRange(r)
            }
            (8, 8) => TcpOption::Timestamp(be32(data, 0), be32(data, 4)),
            (2..=5 | 8, _) => return bad(self),
            _ => TcpOption::Unknown { kind, data },
        };
        Some(Ok(opt))
    }
}

/// A view over a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }
    /// Checks 20 ≤ data offset × 4 ≤ buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = ((b[12] >> 4) as usize) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(Error::BadLength);
        }
        if hl > b.len() {
            return Err(Error::Truncated);
        }
        Ok(TcpPacket { buffer })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(be32(self.buffer.as_ref(), 4))
    }
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(be32(self.buffer.as_ref(), 8))
    }
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[12] >> 4) as usize) * 4
    }
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(be16(self.buffer.as_ref(), 12) & 0x01ff)
    }
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 14)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 16)
    }
    pub fn urgent_pointer(&self) -> u16 {
        be16(self.buffer.as_ref(), 18)
    }
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Verify over the pseudo-header of the family of `src`/`dst` (either
    /// `Ipv4Addr`, `Ipv6Addr` or `IpAddr`).
    pub fn verify_checksum<A: Copy + Into<IpAddr>>(&self, src: &A, dst: &A) -> bool {
        let (src, dst) = ((*src).into(), (*dst).into());
        checksum::transport(&src, &dst, IpProtocol::TCP.0, self.buffer.as_ref()) == 0
    }
}

/// A TCP segment as a value. `ack_number` is carried as-is; it is meaningful only
/// when `flags` contains ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: SeqNumber,
    pub ack_number: SeqNumber,
    pub flags: TcpFlags,
    pub window_len: u16,
    pub urgent_pointer: u16,
    pub max_seg_size: Option<u16>,
    /// Shift count as sent; RFC 7323 §2.3 says a receiver clamps values > 14 to 14,
    /// which is the stack's job, not the parser's.
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub sack_ranges: [Option<(SeqNumber, SeqNumber)>; 4],
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// A bare segment with no options and no payload.
    pub fn new(src_port: u16, dst_port: u16, seq: SeqNumber, flags: TcpFlags) -> Self {
        TcpRepr {
            src_port,
            dst_port,
            seq_number: seq,
            ack_number: SeqNumber(0),
            flags,
            window_len: 0,
            urgent_pointer: 0,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 4],
            timestamp: None,
            payload: &[],
        }
    }

    /// Validate lengths, the checksum and every option; ports 0 are malformed.
    pub fn parse<A: Copy + Into<IpAddr>>(
        p: &TcpPacket<&'a [u8]>,
        src: &A,
        dst: &A,
    ) -> Result<Self> {
        Self::parse_with(p, src, dst, true)
    }

    /// [`TcpRepr::parse`], with the checksum left unverified when
    /// `verify_checksum` is false: for a segment whose checksum the receiver
    /// itself just computed (a NIC's or TUN's checksum offload, as Linux
    /// skips verifying CHECKSUM_PARTIAL and CHECKSUM_UNNECESSARY skbs).
    pub fn parse_with<A: Copy + Into<IpAddr>>(
        p: &TcpPacket<&'a [u8]>,
        src: &A,
        dst: &A,
        verify_checksum: bool,
    ) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = p.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(Error::BadLength);
        }
        if hl > b.len() {
            return Err(Error::Truncated);
        }
        if p.src_port() == 0 || p.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if verify_checksum && !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let mut repr = TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_pointer: p.urgent_pointer(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 4],
            timestamp: None,
            payload: &b[hl..],
        };
        for opt in TcpOptions::new(&b[MIN_HEADER_LEN..hl]) {
            match opt? {
                TcpOption::MaxSegmentSize(m) => repr.max_seg_size = Some(m),
                TcpOption::WindowScale(s) => repr.window_scale = Some(s),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(r) => repr.sack_ranges = r,
                TcpOption::Timestamp(v, e) => repr.timestamp = Some((v, e)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    fn sack_count(&self) -> usize {
        self.sack_ranges.iter().take_while(|r| r.is_some()).count()
    }

    /// How many SACK blocks fit after the other options (40-byte option space).
    fn sack_fit(&self) -> usize {
        let fixed = self.fixed_options_len();
        let room = 40usize.saturating_sub(fixed + 4); // NOP NOP kind len
        cmp::min(self.sack_count(), room / 8)
    }

    fn fixed_options_len(&self) -> usize {
        let mut n = 0;
        if self.max_seg_size.is_some() {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4; // NOP + 3
        }
        if self.timestamp.is_some() {
            n += 12; // (NOP NOP | SACK-perm) + 10
        }
        if self.sack_permitted && self.timestamp.is_none() {
            n += 4; // NOP NOP + 2
        }
        n
    }

    /// Header length including options, padded to 4 bytes. SACK blocks that do not fit
    /// in the 40-byte option space are left out (the most recent first are kept).
    pub fn header_len(&self) -> usize {
        let sack = self.sack_fit();
        let sack_len = if sack > 0 { 4 + 8 * sack } else { 0 };
        MIN_HEADER_LEN + self.fixed_options_len() + sack_len
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len()
            + self.flags.contains(TcpFlags::SYN) as usize
            + self.flags.contains(TcpFlags::FIN) as usize
    }

    /// Write header, options and payload into the first `buffer_len()` bytes of `buf`,
    /// checksum filled. Panics if `buf` is shorter (a caller bug).
    pub fn emit<A: Copy + Into<IpAddr>>(&self, buf: &mut [u8], src: &A, dst: &A) {
        let hl = self.header_len();
        let len = hl + self.payload.len();
        buf[hl..len].copy_from_slice(self.payload);
        self.emit_around_payload(buf, src, dst);
    }

    /// [`TcpRepr::emit`] into a buffer that already holds the payload after
    /// the header's room (`buf[header_len()..][..payload.len()]`, which must
    /// equal `self.payload`): the header and the checksum are written, the
    /// payload is not copied again. Lets a sender build a segment without
    /// first zeroing a buffer the payload then overwrites.
    pub fn emit_around_payload<A: Copy + Into<IpAddr>>(&self, buf: &mut [u8], src: &A, dst: &A) {
        let hl = self.header_len();
        let len = hl + self.payload.len();
        let buf = &mut buf[..len];
        put16(buf, 0, self.src_port);
        put16(buf, 2, self.dst_port);
        put32(buf, 4, self.seq_number.0);
        put32(buf, 8, self.ack_number.0);
        put16(buf, 12, ((hl as u16 / 4) << 12) | (self.flags.0 & 0x01ff));
        put16(buf, 14, self.window_len);
        put16(buf, 16, 0);
        put16(buf, 18, self.urgent_pointer);
        let mut at = MIN_HEADER_LEN;
        if let Some(mss) = self.max_seg_size {
            buf[at..at + 2].copy_from_slice(&[2, 4]);
            put16(buf, at + 2, mss);
            at += 4;
        }
        // Linux's layout and order (tcp_options_write), so captures and
        // packetdrill scripts match byte for byte: MSS, SACK-permitted sharing a
        // word with the timestamp (or NOP NOP SACK-permitted), NOP WS, SACK.
        if let Some((val, ecr)) = self.timestamp {
            // Linux layout: SACK-permitted shares the word with the timestamp.
            if self.sack_permitted {
                buf[at..at + 2].copy_from_slice(&[4, 2]);
            } else {
                buf[at..at + 2].copy_from_slice(&[1, 1]);
            }
            buf[at + 2..at + 4].copy_from_slice(&[8, 10]);
            put32(buf, at + 4, val);
            put32(buf, at + 8, ecr);
            at += 12;
        } else if self.sack_permitted {
            buf[at..at + 4].copy_from_slice(&[1, 1, 4, 2]);
            at += 4;
        }
        if let Some(ws) = self.window_scale {
            buf[at..at + 4].copy_from_slice(&[1, 3, 3, ws]);
            at += 4;
        }
        let sack = self.sack_fit();
        if sack > 0 {
            buf[at..at + 4].copy_from_slice(&[1, 1, 5, (2 + 8 * sack) as u8]);
            at += 4;
            for (l, r) in self.sack_ranges.iter().take(sack).flatten() {
                put32(buf, at, l.0);
                put32(buf, at + 4, r.0);
                at += 8;
            }
        }
        debug_assert_eq!(at, hl);
        debug_assert!(buf[hl..] == *self.payload);
        let (src, dst) = ((*src).into(), (*dst).into());
        let c = checksum::transport(&src, &dst, IpProtocol::TCP.0, buf);
        put16(buf, 16, c);
    }
}

impl fmt::Display for TcpRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}→{} [{}] seq={} ack={} win={} len={}",
            self.src_port,
            self.dst_port,
            self.flags,
            self.seq_number,
            self.ack_number,
            self.window_len,
            self.payload.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn emit_around_payload_writes_what_emit_writes() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        let mut r = syn();
        r.flags = TcpFlags::ACK | TcpFlags::PSH;
        r.payload = &data;
        let mut a = vec![0u8; r.buffer_len()];
        r.emit(&mut a, &SRC, &DST);
        let mut b = vec![0u8; r.header_len()];
        b.extend_from_slice(&data);
        r.emit_around_payload(&mut b, &SRC, &DST);
        assert_eq!(a, b);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, &SRC, &DST).unwrap().payload, &data[..]);
    }

    fn syn() -> TcpRepr<'static> {
        let mut r = TcpRepr::new(40000, 80, SeqNumber(0x0102_0304), TcpFlags::SYN);
        r.window_len = 64240;
        r.max_seg_size = Some(1460);
        r.window_scale = Some(7);
        r.sack_permitted = true;
        r.timestamp = Some((1000, 0));
        r
    }

    #[test]
    fn syn_layout_and_round_trip() {
        let r = syn();
        assert_eq!(r.header_len(), 40);
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, &SRC, &DST);
        assert_eq!(buf[12], 0xa0); // data offset 10
                                   // Linux's layout: mss, sackOK+TS, nop, wscale.
        assert_eq!(
            &buf[20..40],
            &[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 1, 3, 3, 7]
        );
        // Without timestamps: mss, nop, nop, sackOK, nop, wscale.
        let mut r2 = syn();
        r2.timestamp = None;
        let mut b2 = vec![0u8; r2.buffer_len()];
        r2.emit(&mut b2, &SRC, &DST);
        assert_eq!(&b2[20..32], &[2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(&SRC, &DST));
        assert_eq!(TcpRepr::parse(&p, &SRC, &DST).unwrap(), r);
    }

    #[test]
    fn sack_blocks_round_trip() {
        let mut r = TcpRepr::new(1, 2, SeqNumber(5), TcpFlags::ACK);
        r.timestamp = Some((7, 8));
        r.sack_ranges = [
            Some((SeqNumber(100), SeqNumber(200))),
            Some((SeqNumber(300), SeqNumber(400))),
            Some((SeqNumber(500), SeqNumber(600))),
            None,
        ];
        r.payload = b"data";
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, &SRC, &DST);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, &SRC, &DST).unwrap(), r);
    }

    fn with_options(opts: &[u8]) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut b = vec![0u8; hl];
        put16(&mut b, 0, 1);
        put16(&mut b, 2, 2);
        b[12] = ((hl / 4) as u8) << 4;
        b[20..].copy_from_slice(opts);
        let c = checksum::transport_v4(&SRC, &DST, 6, &b);
        put16(&mut b, 16, c);
        b
    }

    #[test]
    fn bad_options() {
        for opts in [
            &[2u8, 0, 0, 0][..],           // length 0
            &[2, 1, 0, 0][..],             // length 1
            &[1, 1, 1, 2][..],             // kind 2 without room for length
            &[30, 8, 0, 0][..],            // unknown option running past the header
            &[2, 3, 0, 0][..],             // MSS with wrong length
            &[5, 6, 0, 0, 0, 0, 0, 0][..], // SACK not a multiple of 8
        ] {
            let b = with_options(opts);
            let p = TcpPacket::new_checked(&b[..]).unwrap();
            assert_eq!(
                TcpRepr::parse(&p, &SRC, &DST).unwrap_err(),
                Error::BadOption,
                "{opts:?}"
            );
        }
        // Unknown option with a valid length is skipped; EOL ends the list.
        let b = with_options(&[30, 4, 9, 9, 2, 4, 1, 0, 0, 0xff, 0xff, 0xff]);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        let r = TcpRepr::parse(&p, &SRC, &DST).unwrap();
        assert_eq!(r.max_seg_size, Some(256));
    }

    #[test]
    fn bad_lengths_and_checksum() {
        let r = syn();
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, &SRC, &DST);
        for n in 0..20 {
            assert_eq!(
                TcpPacket::new_checked(&buf[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        assert_eq!(
            TcpPacket::new_checked(&buf[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut b = buf.clone();
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
        let mut b = buf.clone();
        b[5] ^= 1;
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, &SRC, &DST).unwrap_err(),
            Error::BadChecksum
        );
    }

    #[test]
    fn seq_wraps() {
        let a = SeqNumber(u32::MAX - 1);
        let b = a + 4;
        assert_eq!(b, SeqNumber(2));
        assert!(b > a);
        assert_eq!(b - a, 4);
        assert_eq!(a - b, -4);
    }
}
