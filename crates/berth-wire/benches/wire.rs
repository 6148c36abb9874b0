//! berth-wire benchmarks.
//!
//! Run: `cargo bench -p berth-wire --bench wire -- --warm-up-time 1 --measurement-time 3`
//!
//! Group `checksum` puts the Internet checksum next to two baselines measured in the
//! same invocation on the same buffers: the plain RFC 1071 word-at-a-time reference
//! and a `memcpy` (`copy_from_slice` into a preallocated buffer). All report bytes/s,
//! so the ratio checksum : memcpy can be read directly (DESIGN.md: benchmarks are
//! ratios against a baseline, never absolute times).
//!
//! Group `parse_emit` measures the header codecs on typical packets.

use berth_wire::checksum;
use berth_wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use berth_wire::tcp::{SeqNumber, TcpFlags, TcpPacket, TcpRepr};
use berth_wire::udp::{UdpPacket, UdpRepr};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::net::Ipv4Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Deterministic, non-trivial bytes (no all-zero page the CPU could shortcut).
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn bench_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for (label, len) in [("1500B", 1500usize), ("64KiB", 65_536)] {
        let data = pattern(len);
        let mut dst = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("checksum", label), &data, |b, d| {
            b.iter(|| checksum::checksum(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("reference_sum", label), &data, |b, d| {
            b.iter(|| checksum::reference_sum(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("memcpy", label), &data, |b, d| {
            b.iter(|| {
                black_box(&mut dst[..]).copy_from_slice(black_box(d));
                black_box(&dst[..]);
            })
        });
    }
    g.finish();
}

/// A Linux-style SYN: MSS, SACK-permitted, timestamps, window scale; no payload.
fn tcp_syn() -> TcpRepr<'static> {
    let mut r = TcpRepr::new(40_000, 80, SeqNumber(0x1234_5678), TcpFlags::SYN);
    r.window_len = 64_240;
    r.max_seg_size = Some(1460);
    r.window_scale = Some(7);
    r.sack_permitted = true;
    r.timestamp = Some((0x0102_0304, 0));
    r
}

fn ip_for(protocol: IpProtocol, payload_len: usize) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: SRC,
        dst_addr: DST,
        protocol,
        payload_len,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0x4242,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
}

/// Emit IPv4 + TCP into `buf`, returning the packet length.
fn emit_tcp(buf: &mut [u8], tcp: &TcpRepr<'_>) -> usize {
    let ip = ip_for(IpProtocol::TCP, tcp.buffer_len());
    ip.emit(buf);
    tcp.emit(&mut buf[20..], &ip.src_addr, &ip.dst_addr);
    ip.buffer_len()
}

fn emit_udp(buf: &mut [u8], udp: &UdpRepr<'_>) -> usize {
    let ip = ip_for(IpProtocol::UDP, udp.buffer_len());
    ip.emit(buf);
    udp.emit(&mut buf[20..], &ip.src_addr, &ip.dst_addr);
    ip.buffer_len()
}

/// Parse IPv4 then TCP; returns a value derived from every parsed field group.
fn parse_tcp(pkt: &[u8]) -> u32 {
    let Ok(p) = Ipv4Packet::new_checked(pkt) else {
        return 0;
    };
    let Ok(ip) = Ipv4Repr::parse(&p) else {
        return 0;
    };
    let Ok(t) = TcpPacket::new_checked(p.payload()) else {
        return 0;
    };
    match TcpRepr::parse(&t, &ip.src_addr, &ip.dst_addr) {
        Ok(r) => r.seq_number.0 ^ r.max_seg_size.unwrap_or(0) as u32,
        Err(_) => 0,
    }
}

fn parse_udp(pkt: &[u8]) -> usize {
    let Ok(p) = Ipv4Packet::new_checked(pkt) else {
        return 0;
    };
    let Ok(ip) = Ipv4Repr::parse(&p) else {
        return 0;
    };
    let Ok(u) = UdpPacket::new_checked(p.payload()) else {
        return 0;
    };
    match UdpRepr::parse(&u, &ip.src_addr, &ip.dst_addr) {
        Ok(r) => r.payload.len() + r.dst_port as usize,
        Err(_) => 0,
    }
}

fn bench_parse_emit(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_emit");

    let syn = tcp_syn();
    let mut syn_buf = vec![0u8; 20 + syn.buffer_len()];
    let n = emit_tcp(&mut syn_buf, &syn);
    assert_eq!(
        parse_tcp(&syn_buf[..n]),
        0x1234_5678 ^ 1460,
        "bench input parses"
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("ipv4_tcp_syn/parse", |b| {
        b.iter(|| parse_tcp(black_box(&syn_buf[..n])))
    });
    let mut out = vec![0u8; n];
    g.bench_function("ipv4_tcp_syn/emit", |b| {
        b.iter(|| emit_tcp(black_box(&mut out[..]), black_box(&syn)))
    });

    let payload = pattern(512);
    let udp = UdpRepr {
        src_port: 5353,
        dst_port: 53,
        payload: &payload,
    };
    let mut udp_buf = vec![0u8; 20 + udp.buffer_len()];
    let n = emit_udp(&mut udp_buf, &udp);
    assert_eq!(parse_udp(&udp_buf[..n]), 512 + 53, "bench input parses");
    g.bench_function("ipv4_udp_512B/parse", |b| {
        b.iter(|| parse_udp(black_box(&udp_buf[..n])))
    });
    let mut out = vec![0u8; n];
    g.bench_function("ipv4_udp_512B/emit", |b| {
        b.iter(|| emit_udp(black_box(&mut out[..]), black_box(&udp)))
    });
    g.finish();
}

criterion_group!(benches, bench_checksum, bench_parse_emit);
criterion_main!(benches);
