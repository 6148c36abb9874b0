//! Property tests for the DNS and DHCP formats: arbitrary bytes and mutations
//! of valid messages never panic, every accessor of a checked DNS message
//! stays in bounds (names print, records iterate, RDATA interprets), and DHCP
//! values round-trip through emit and parse.

use berth_wire::dhcp::{AddrList, DhcpPacket, DhcpRepr, MessageType};
use berth_wire::dns::{self, rtype, Builder, DnsPacket, Flags, RData};
use berth_wire::{EthernetAddress, Ipv4Addr};
use proptest::prelude::*;

/// Walk everything a checked message offers; return how many items were seen.
fn exercise_dns(b: &[u8]) -> usize {
    let Ok(p) = DnsPacket::new_checked(b) else {
        return 0;
    };
    let _ = (p.id(), p.flags());
    let mut seen = 0;
    for q in p.questions() {
        let _ = q.name.to_string();
        let _ = q.name.matches("example.org");
        seen += 1;
    }
    assert_eq!(
        seen,
        p.question_count() as usize,
        "checked questions all iterate"
    );
    let sections = [
        (p.answers().count(), p.answer_count()),
        (p.authorities().count(), p.authority_count()),
        (p.additionals().count(), p.additional_count()),
    ];
    for (n, want) in sections {
        assert_eq!(n, want as usize, "checked records all iterate");
    }
    for r in p.answers().chain(p.authorities()).chain(p.additionals()) {
        let _ = r.name.to_string();
        if let Ok(RData::Cname(n)) = r.data() {
            let _ = n.to_string();
            let _ = n.same_as(&r.name);
        }
        seen += 1;
    }
    seen
}

fn valid_dns() -> Vec<u8> {
    Builder::new(
        0x4242,
        Flags {
            response: true,
            ..Flags::QUERY
        },
    )
    .question("www.example.org", rtype::A)
    .and_then(|b| b.cname("www.example.org", 30, "h.example.org"))
    .and_then(|b| b.answer("h.example.org", rtype::A, 30, &[192, 0, 2, 9]))
    .map(Builder::finish)
    .expect("valid message")
}

fn valid_dhcp() -> Vec<u8> {
    let mut r = DhcpRepr::new(MessageType::Ack, 7, EthernetAddress([2, 0, 0, 0, 0, 1]));
    r.yiaddr = Ipv4Addr::new(192, 0, 2, 50);
    r.server_id = Some(Ipv4Addr::new(192, 0, 2, 1));
    r.routers = AddrList::new(&[Ipv4Addr::new(192, 0, 2, 1)]);
    r.lease_time = Some(120);
    let mut b = vec![0; r.buffer_len()];
    r.emit(&mut b);
    b
}

fn exercise_dhcp(b: &[u8]) {
    if let Ok(r) = DhcpPacket::new_checked(b).and_then(|p| DhcpRepr::parse(&p)) {
        let mut out = vec![0; r.buffer_len()];
        r.emit(&mut out);
        let again = DhcpPacket::new_checked(&out[..]).and_then(|p| DhcpRepr::parse(&p));
        assert_eq!(again, Ok(r), "a parsed message re-emits to the same value");
    }
}

proptest! {
    #[test]
    fn dns_random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise_dns(&b);
    }

    #[test]
    fn dns_random_bytes_after_a_plausible_header(
        counts in proptest::array::uniform4(0u8..4),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut b = vec![0, 1, 0x81, 0x80];
        for c in counts { b.extend_from_slice(&[0, c]); }
        b.extend_from_slice(&body);
        exercise_dns(&b);
    }

    #[test]
    fn dns_mutations_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = valid_dns();
        for (i, v) in flips { let at = i.index(b.len()); b[at] = v; }
        exercise_dns(&b);
        let n = cut.index(b.len() + 1);
        exercise_dns(&b[..n]);
    }

    #[test]
    fn dns_names_round_trip(labels in proptest::collection::vec("[a-z0-9_-]{1,20}", 1..6)) {
        let name = labels.join(".");
        let q = dns::query(9, &name, rtype::AAAA).expect("short names encode");
        let p = DnsPacket::new_checked(&q[..]).expect("a query checks");
        let got = p.questions().next().expect("one question");
        prop_assert!(got.name.matches(&name.to_uppercase()));
        prop_assert_eq!(got.name.to_string(), name);
    }

    #[test]
    fn dhcp_random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise_dhcp(&b);
        // The same bytes behind a valid fixed part and magic cookie reach the options.
        let mut v = valid_dhcp();
        v.truncate(240);
        v.extend_from_slice(&b);
        exercise_dhcp(&v);
    }

    #[test]
    fn dhcp_mutations_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = valid_dhcp();
        for (i, v) in flips { let at = 240 + i.index(b.len() - 240); b[at] = v; }
        exercise_dhcp(&b);
        let n = cut.index(b.len() + 1);
        exercise_dhcp(&b[..n]);
    }

    #[test]
    fn dhcp_values_round_trip(
        xid in any::<u32>(), secs in any::<u16>(), broadcast in any::<bool>(),
        yi in any::<[u8; 4]>(), lease in proptest::option::of(any::<u32>()),
        t1 in proptest::option::of(any::<u32>()), dns in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
        kind in 0usize..8,
    ) {
        let types = [
            MessageType::Discover, MessageType::Offer, MessageType::Request, MessageType::Decline,
            MessageType::Ack, MessageType::Nak, MessageType::Release, MessageType::Inform,
        ];
        let mut r = DhcpRepr::new(types[kind], xid, EthernetAddress([2, 1, 2, 3, 4, 5]));
        r.secs = secs;
        r.broadcast = broadcast;
        r.yiaddr = Ipv4Addr::from(yi);
        r.lease_time = lease;
        r.renewal_time = t1;
        let dns: Vec<Ipv4Addr> = dns.into_iter().map(Ipv4Addr::from).collect();
        r.dns_servers = AddrList::new(&dns);
        let mut b = vec![0; r.buffer_len()];
        r.emit(&mut b);
        let back = DhcpPacket::new_checked(&b[..]).and_then(|p| DhcpRepr::parse(&p));
        prop_assert_eq!(back, Ok(r));
    }
}

#[test]
fn valid_messages_are_fully_seen() {
    assert_eq!(exercise_dns(&valid_dns()), 3);
    exercise_dhcp(&valid_dhcp());
}
