//! ARP: `new_checked` + `parse`; on Ok, emit and parse again.
#![no_main]

use berth_wire::{ArpPacket, ArpRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A view made without checks must be just as safe to parse.
    let _ = ArpRepr::parse(&ArpPacket::new_unchecked(data));
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut out = [0u8; 28];
    repr.emit(&mut out);
    assert_eq!(&out[..], &data[..28]);
    let again = ArpRepr::parse(&ArpPacket::new_checked(&out[..]).expect("28 bytes"));
    assert_eq!(again, Ok(repr));
});
