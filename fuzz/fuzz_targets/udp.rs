//! UDP: `new_checked` + `parse`; on Ok, emit and parse again.
//!
//! Input: a mode byte, the pseudo-header source and destination addresses (8 bytes),
//! then the datagram. If the mode byte is odd, the checksum is filled in first.
#![no_main]

use berth_wire::{checksum, Ipv4Addr, UdpPacket, UdpRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let src = Ipv4Addr::new(data[1], data[2], data[3], data[4]);
    let dst = Ipv4Addr::new(data[5], data[6], data[7], data[8]);
    let mut buf = data[9..].to_vec();
    if data[0] & 1 == 1 && buf.len() >= 8 {
        let len = (u16::from_be_bytes([buf[4], buf[5]]) as usize).clamp(8, buf.len());
        buf[6] = 0;
        buf[7] = 0;
        let c = checksum::transport_v4(&src, &dst, 17, &buf[..len]);
        buf[6..8].copy_from_slice(&c.to_be_bytes());
    }
    let _ = UdpRepr::parse(&UdpPacket::new_unchecked(&buf[..]), &src, &dst);
    let Ok(packet) = UdpPacket::new_checked(&buf[..]) else {
        return;
    };
    let Ok(repr) = UdpRepr::parse(&packet, &src, &dst) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out, &src, &dst);
    let again = UdpRepr::parse(
        &UdpPacket::new_checked(&out[..]).expect("emitted"),
        &src,
        &dst,
    );
    assert_eq!(again, Ok(repr));
});
