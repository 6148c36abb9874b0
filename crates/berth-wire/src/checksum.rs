//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The one's-complement sum is computed with a wide accumulator: 64 bytes at a time
//! are added as little-endian u32 words into sixteen u64 lanes, deferring carries until
//! the end (RFC 1071 §2(C) "deferred carries") and fixing the byte order once
//! (§2(B) "byte order independence"). See `wide_sum`.

use std::net::IpAddr;

/// One's-complement sum of `data` (not complemented), folded to 16 bits.
/// Odd trailing byte is padded with zero on the right (RFC 1071 §4.1).
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(wide_sum(data))
}

/// Accumulate `data` as big-endian 16-bit words into a 64-bit value with deferred
/// carries; `fold` of the result is the one's-complement sum.
///
/// Byte-order independence (RFC 1071 §2(B)): the one's-complement sum of the words
/// read little-endian is the byte swap of the sum of the words read big-endian. So
/// the loop reads little-endian 32-bit words (plain loads, no byte shuffles) into
/// sixteen u64 lanes, 64 bytes per iteration, which the compiler vectorises with the
/// x86-64 baseline SSE2 alone (zero-extend u32→u64, add), and the byte swap is done
/// once at the end. A lane takes one u32 per 64 bytes, so no carry is lost below
/// 2^32 × 64 bytes (256 GiB) of input.
fn wide_sum(data: &[u8]) -> u64 {
    const LANES: usize = 16;
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4 * LANES);
    // Short buffers (most headers) skip the lanes and their reduction entirely.
    if data.len() >= 4 * LANES {
        let mut lanes = [0u64; LANES];
        for ch in &mut chunks {
            for (i, lane) in lanes.iter_mut().enumerate() {
                *lane += le32(ch, 4 * i) as u64;
            }
        }
        // One end-around step per lane (each < 2^33 after it) keeps the total far
        // from u64 overflow.
        acc = lanes.iter().map(|&l| (l & 0xffff_ffff) + (l >> 32)).sum();
    }
    let mut words = chunks.remainder().chunks_exact(4);
    for w in &mut words {
        acc += le32(w, 0) as u64;
    }
    let mut halves = words.remainder().chunks_exact(2);
    for h in &mut halves {
        acc += u16::from_le_bytes([h[0], h[1]]) as u64;
    }
    if let [last] = halves.remainder() {
        // RFC 1071 §4.1 pads an odd byte on the right: `last << 8` big-endian, which
        // is `last` in the little-endian view (it sits at an even offset).
        acc += *last as u64;
    }
    fold(acc).swap_bytes() as u64
}

#[inline(always)]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Fold a 64-bit deferred-carry accumulator to a 16-bit one's-complement sum.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    // A sum of 32-bit words: fold 64→32→16 with end-around carry.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// One's-complement add of two folded sums.
#[inline]
pub fn combine(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The Internet checksum of `data`: the complement of its one's-complement sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768) for `protocol` and `length`.
#[inline]
pub fn pseudo_header_v4(
    src: &std::net::Ipv4Addr,
    dst: &std::net::Ipv4Addr,
    protocol: u8,
    length: u32,
) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u16::from_be_bytes([s[0], s[1]]) as u64
        + u16::from_be_bytes([s[2], s[3]]) as u64
        + u16::from_be_bytes([d[0], d[1]]) as u64
        + u16::from_be_bytes([d[2], d[3]]) as u64
        + protocol as u64
        + (length >> 16) as u64
        + (length & 0xffff) as u64;
    fold(acc)
}

/// Checksum of a transport segment including the IPv4 pseudo-header.
#[inline]
pub fn transport_v4(
    src: &std::net::Ipv4Addr,
    dst: &std::net::Ipv4Addr,
    protocol: u8,
    segment: &[u8],
) -> u16 {
    !combine(
        pseudo_header_v4(src, dst, protocol, segment.len() as u32),
        sum(segment),
    )
}

/// Sum of the pseudo-header for either family: IPv4's (RFC 793 §3.1, RFC 768)
/// or IPv6's (RFC 8200 §8.1: addresses, 32-bit upper-layer length, next header).
/// Both sum to the same shape: the address words, the length's two halves and
/// the protocol. Mixed families are a caller bug; they are summed as IPv6 with
/// the IPv4 address mapped.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, length),
        _ => {
            let v6 = |a: &IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            let words =
                |a: &std::net::Ipv6Addr| -> u64 { a.segments().iter().map(|&w| w as u64).sum() };
            let acc = words(&v6(src))
                + words(&v6(dst))
                + protocol as u64
                + (length >> 16) as u64
                + (length & 0xffff) as u64;
            fold(acc)
        }
    }
}

/// Checksum of a transport segment including the pseudo-header of its family.
#[inline]
pub fn transport(src: &IpAddr, dst: &IpAddr, protocol: u8, segment: &[u8]) -> u16 {
    !combine(
        pseudo_header(src, dst, protocol, segment.len() as u32),
        sum(segment),
    )
}

/// Incremental update of checksum `hc` when a 16-bit field changes from `old` to
/// `new`: RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which avoids the -0 pitfall of
/// RFC 1141.
#[inline]
pub fn update(hc: u16, old: u16, new: u16) -> u16 {
    !combine(combine(!hc, !old), new)
}

/// Incremental update for a 32-bit field (e.g. an IPv4 address), as two 16-bit steps.
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update(hc, (old >> 16) as u16, (new >> 16) as u16);
    update(hc, old as u16, new as u16)
}

/// Plain RFC 1071 reference: one 16-bit word at a time. Used by tests and benches.
pub fn reference_sum(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        acc += u16::from_be_bytes([data[i], data[i + 1]]) as u32;
        acc = (acc & 0xffff) + (acc >> 16);
        i += 2;
    }
    if i < data.len() {
        acc += (data[i] as u32) << 8;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv6 pseudo-header summed field by field must equal a checksum over
    /// its RFC 8200 §8.1 byte layout written out in full.
    #[test]
    fn ipv6_pseudo_header_matches_the_rfc_layout() {
        let src: IpAddr = "2001:db8::1".parse().unwrap();
        let dst: IpAddr = "2001:db8:ffff::2".parse().unwrap();
        let seg: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(71)).collect();
        let mut layout = Vec::new();
        for a in [src, dst] {
            let IpAddr::V6(a) = a else { unreachable!() };
            layout.extend_from_slice(&a.octets());
        }
        layout.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        layout.extend_from_slice(&[0, 0, 0, 17]);
        layout.extend_from_slice(&seg);
        assert_eq!(transport(&src, &dst, 17, &seg), !reference_sum(&layout));
        // IPv4 through the family-neutral entry is the IPv4 pseudo-header.
        let (s4, d4) = (
            std::net::Ipv4Addr::new(192, 0, 2, 1),
            std::net::Ipv4Addr::new(192, 0, 2, 2),
        );
        assert_eq!(
            transport(&s4.into(), &d4.into(), 6, &seg),
            transport_v4(&s4, &d4, 6, &seg)
        );
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header (Wikipedia "IPv4 header checksum"): checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn wide_matches_reference_all_lengths() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7919 % 251) as u8 ^ 0xa5).collect();
        for len in 0..data.len() {
            for start in 0..3.min(data.len() - len + 1) {
                let s = &data[start..start + len];
                assert_eq!(sum(s), reference_sum(s), "len {len} start {start}");
            }
        }
        let ff = vec![0xffu8; 70_000];
        assert_eq!(sum(&ff), reference_sum(&ff));
    }

    #[test]
    fn incremental_matches_recompute() {
        let mut h = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        // Decrement TTL 0x40 → 0x3f, as a router does (RFC 1624 §4 example spirit).
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let hc = update(0xb861, old, new);
        h[10..12].copy_from_slice(&hc.to_be_bytes());
        assert_eq!(checksum(&h), 0);
        // Address rewrite through update32.
        let old32 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let new32 = 0xc000_0201u32;
        h[12..16].copy_from_slice(&new32.to_be_bytes());
        let hc2 = update32(hc, old32, new32);
        h[10..12].copy_from_slice(&hc2.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }
}
