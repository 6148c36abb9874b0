//! IPv4: `new_checked` + `parse`; on Ok, emit and parse again.
//!
//! If the first input byte is odd, the header checksum of the rest is filled in before
//! parsing, so the fuzzer gets past the checksum without having to find it.
#![no_main]

use berth_wire::{checksum, Ipv4Packet, Ipv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 && buf.len() >= 20 {
        let hl = ((buf[0] & 0x0f) as usize * 4).clamp(20, buf.len());
        buf[10] = 0;
        buf[11] = 0;
        let c = checksum::checksum(&buf[..hl]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&buf[..]));
    let Ok(packet) = Ipv4Packet::new_checked(&buf[..]) else {
        return;
    };
    let _ = (packet.payload(), packet.packet(), packet.verify_checksum());
    let Ok(repr) = Ipv4Repr::parse(&packet) else {
        return;
    };
    assert_eq!(repr.payload_len, packet.payload().len());
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out);
    out[20..].copy_from_slice(packet.payload());
    let again = Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).expect("emitted header"));
    assert_eq!(again, Ok(repr));
});
