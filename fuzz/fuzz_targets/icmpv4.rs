//! ICMPv4: `new_checked` + `parse`; on Ok, emit and parse again.
//!
//! If the first input byte is odd, the checksum of the rest is filled in before parsing.
#![no_main]

use berth_wire::{checksum, Icmpv4Packet, Icmpv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 && buf.len() >= 8 {
        buf[2] = 0;
        buf[3] = 0;
        let c = checksum::checksum(&buf);
        buf[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let _ = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..]));
    let Ok(packet) = Icmpv4Packet::new_checked(&buf[..]) else {
        return;
    };
    let Ok(repr) = Icmpv4Repr::parse(&packet) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out);
    assert_eq!(checksum::checksum(&out), 0);
    let again = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).expect("emitted"));
    assert_eq!(again, Ok(repr));
});
