//! Ethernet II: `new_checked` + `parse`; on Ok, emit and parse again.
#![no_main]

use berth_wire::{EthernetFrame, EthernetRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = frame.payload();
    let Ok(repr) = EthernetRepr::parse(&frame) else {
        return;
    };
    let mut out = [0u8; 14];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    // Every header bit is represented, so the emitted header is the input's.
    assert_eq!(&out[..], &data[..14]);
    let again = EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).expect("14 bytes"));
    assert_eq!(again, Ok(repr));
});
