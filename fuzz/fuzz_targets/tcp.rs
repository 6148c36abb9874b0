//! TCP: `new_checked` + `parse`; on Ok, emit and parse again.
//!
//! Input: a mode byte, the pseudo-header source and destination addresses (8 bytes),
//! then the segment. If the mode byte is odd, the checksum is filled in first, so the
//! fuzzer reaches the option parser without having to find checksums.
#![no_main]

use berth_wire::tcp::TcpOptions;
use berth_wire::{checksum, Ipv4Addr, TcpPacket, TcpRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let src = Ipv4Addr::new(data[1], data[2], data[3], data[4]);
    let dst = Ipv4Addr::new(data[5], data[6], data[7], data[8]);
    let mut buf = data[9..].to_vec();
    if data[0] & 1 == 1 && buf.len() >= 20 {
        buf[16] = 0;
        buf[17] = 0;
        let c = checksum::transport_v4(&src, &dst, 6, &buf);
        buf[16..18].copy_from_slice(&c.to_be_bytes());
    }
    let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&buf[..]), &src, &dst);
    let Ok(packet) = TcpPacket::new_checked(&buf[..]) else {
        return;
    };
    // The option iterator on its own: it ends, and stops after an error.
    let mut opts = TcpOptions::new(packet.options());
    let mut steps = 0;
    while let Some(o) = opts.next() {
        steps += 1;
        assert!(steps <= packet.options().len() + 1);
        if o.is_err() {
            assert!(opts.next().is_none());
            break;
        }
    }
    let Ok(repr) = TcpRepr::parse(&packet, &src, &dst) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out, &src, &dst);
    let again = TcpRepr::parse(
        &TcpPacket::new_checked(&out[..]).expect("emitted"),
        &src,
        &dst,
    )
    .expect("an emitted segment parses");
    // Emit keeps the SACK blocks that fit beside the other options, in order; the rest
    // of the value comes back unchanged.
    let kept = again.sack_ranges.iter().take_while(|s| s.is_some()).count();
    assert!(again.sack_ranges[kept..].iter().all(Option::is_none));
    assert_eq!(again.sack_ranges[..kept], repr.sack_ranges[..kept]);
    assert_eq!(
        TcpRepr {
            sack_ranges: repr.sack_ranges,
            ..again
        },
        repr
    );
    assert!(repr.header_len() <= 60);
});
