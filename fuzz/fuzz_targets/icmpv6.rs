//! ICMPv6 with NDP: `new_checked` + `parse`; on Ok, emit and parse again.
//!
//! Input: a mode byte, then the message. Mode bit 0 fills in the checksum first; bit 1
//! takes the pseudo-header source and destination from the next 32 bytes instead of
//! fixed addresses (2001:db8::1 → 2001:db8::2). On Ok: the emitted message verifies
//! and parses to the same value (an error's quote cut to the minimum MTU aside); echo
//! and unknown messages emit the same bytes (the checksum aside: 0x0000 and 0xffff
//! both verify); NDP options all read back, and the IP-header checks run.
#![no_main]

use berth_wire::icmpv6::MAX_ERROR_QUOTE;
use berth_wire::{Icmpv6Packet, Icmpv6Repr, Ipv6Addr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let (src, dst) = if mode & 2 == 2 {
        if rest.len() < 32 {
            return;
        }
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&rest[..16]);
        d.copy_from_slice(&rest[16..32]);
        rest = &rest[32..];
        (Ipv6Addr::from(s), Ipv6Addr::from(d))
    } else {
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        )
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 && buf.len() >= 8 {
        Icmpv6Packet::new_unchecked(&mut buf[..]).fill_checksum(&src, &dst);
    }
    let unchecked = Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&buf[..]), &src, &dst);
    let Ok(packet) = Icmpv6Packet::new_checked(&buf[..]) else {
        return;
    };
    let _ = (
        packet.body(),
        packet.data(),
        packet.mtu(),
        packet.is_error(),
    );
    let Ok(repr) = Icmpv6Repr::parse(&packet, &src, &dst) else {
        return;
    };
    assert_eq!(unchecked, Ok(repr));
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out, &src, &dst);
    assert!(out.len() <= buf.len());
    let p2 = Icmpv6Packet::new_checked(&out[..]).expect("emitted");
    assert!(p2.verify_checksum(&src, &dst));
    let again = Icmpv6Repr::parse(&p2, &src, &dst).expect("emitted message parses");
    // An error longer than the minimum MTU allows is emitted with its quote cut.
    if out.len() == buf.len() {
        assert_eq!(again, repr);
    }
    match repr {
        Icmpv6Repr::EchoRequest { .. }
        | Icmpv6Repr::EchoReply { .. }
        | Icmpv6Repr::UnknownError { .. }
        | Icmpv6Repr::UnknownInformational { .. } => {
            // Every byte but the checksum, which may be either form of zero (0x0000
            // and 0xffff both verify; emit writes the computed one).
            assert_eq!((&out[..2], &out[4..]), (&buf[..2], &buf[4..]));
        }
        Icmpv6Repr::Ndp(n) => {
            assert_eq!(out.len(), buf.len());
            assert!(n.options().all(|o| o.is_ok()));
            let _ = (n.source_lladdr(), n.target_lladdr(), n.mtu());
            let _ = (n.prefix_infos().count(), n.redirected_header());
            let _ = n.check_ip(&src, &dst, 255);
        }
        _ => {
            if buf.len() <= 8 + MAX_ERROR_QUOTE {
                assert_eq!(out.len(), buf.len());
            } else {
                assert_eq!(out.len(), 8 + MAX_ERROR_QUOTE);
            }
        }
    }
});
