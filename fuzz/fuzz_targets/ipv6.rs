//! IPv6: `new_checked` + `parse` + the extension header walk; on Ok, emit the fixed
//! header and parse again, and check the walk stays inside the packet. When the walk
//! reaches ICMPv6, that is parsed too (see the `icmpv6` target for its checks).
//!
//! Input: a mode byte, then the packet. Mode bit 0 makes the fixed header plausible
//! (version 6, payload length cut to the buffer) so the fuzzer gets to the extension
//! headers at once; bit 1 fills the ICMPv6 checksum of the upper layer when the walk
//! finds one. The mode byte's high bits also name a first header for a second walk of
//! the raw bytes after the mode byte, without a fixed header.
#![no_main]

use berth_wire::icmpv6::MAX_ERROR_QUOTE;
use berth_wire::ipv6::{is_ext_header, walk_ext_headers, MAX_EXT_HEADERS};
use berth_wire::{Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr};
use libfuzzer_sys::fuzz_target;

const FIRST: [IpProtocol; 4] = [
    IpProtocol::HOPOPT,
    IpProtocol::IPV6_OPTS,
    IpProtocol::IPV6_ROUTE,
    IpProtocol::IPV6_FRAG,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The walker alone over any bytes.
    let first = FIRST[(mode >> 6) as usize];
    match walk_ext_headers(first, rest) {
        Ok(w) => assert!(w.payload_offset <= 40 + rest.len()),
        Err(e) => {
            if let Some((_, ptr)) = e.param_problem {
                assert!((ptr as usize) < 40 + rest.len());
            }
        }
    }

    let mut buf = rest.to_vec();
    if mode & 1 == 1 && buf.len() >= 40 {
        buf[0] = 0x60 | (buf[0] & 0x0f);
        let pl = (u16::from_be_bytes([buf[4], buf[5]]) as usize).min(buf.len() - 40);
        buf[4..6].copy_from_slice(&(pl as u16).to_be_bytes());
    }
    let unchecked = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&buf[..]));
    let Ok(packet) = Ipv6Packet::new_checked(&buf[..]) else {
        return;
    };
    let Ok(repr) = Ipv6Repr::parse(&packet) else {
        return;
    };
    assert_eq!(unchecked, Ok(repr));
    assert_eq!(repr.payload_len, packet.payload().len());
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out);
    out[40..].copy_from_slice(packet.payload());
    assert_eq!(
        &out[..],
        packet.packet(),
        "every fixed header bit is represented"
    );
    let again = Ipv6Repr::parse(&Ipv6Packet::new_checked(&out[..]).expect("emitted header"));
    assert_eq!(again, Ok(repr));

    let end = 40 + repr.payload_len;
    let ext = match packet.ext_headers() {
        Ok(w) => w,
        Err(e) => {
            if let Some((_, ptr)) = e.param_problem_for(&repr.dst_addr) {
                assert!((ptr as usize) < end);
            }
            return;
        }
    };
    assert!(ext.payload_offset >= 40 && ext.payload_offset <= end);
    assert!(ext.count <= MAX_EXT_HEADERS);
    assert_eq!(buf[ext.upper_layer_pointer], ext.upper_layer.0);
    match ext.fragment {
        Some((at, f)) if !f.is_atomic() => assert_eq!(ext.payload_offset, at + 8),
        _ => assert!(!is_ext_header(ext.upper_layer)),
    }
    let upper = repr.upper_layer(&ext);
    assert_eq!(upper.payload_len, end - ext.payload_offset);

    if ext.upper_layer != IpProtocol::ICMPV6 || ext.fragment.is_some_and(|(_, f)| !f.is_atomic()) {
        return;
    }
    let mut icmp = buf[ext.payload_offset..end].to_vec();
    if mode & 2 == 2 && icmp.len() >= 8 {
        Icmpv6Packet::new_unchecked(&mut icmp[..]).fill_checksum(&repr.src_addr, &repr.dst_addr);
    }
    let Ok(p) = Icmpv6Packet::new_checked(&icmp[..]) else {
        return;
    };
    if let Ok(r) = Icmpv6Repr::parse(&p, &repr.src_addr, &repr.dst_addr) {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, &repr.src_addr, &repr.dst_addr);
        let p2 = Icmpv6Packet::new_checked(&out[..]).expect("emitted");
        let again = Icmpv6Repr::parse(&p2, &repr.src_addr, &repr.dst_addr);
        // An error longer than the minimum MTU allows is emitted with its quote cut.
        if out.len() == icmp.len() {
            assert_eq!(again, Ok(r));
        } else {
            assert!(again.is_ok() && out.len() == 8 + MAX_ERROR_QUOTE);
        }
        if let Icmpv6Repr::Ndp(n) = r {
            let _ = n.check_ip(&repr.src_addr, &repr.dst_addr, repr.hop_limit);
        }
    }
});
