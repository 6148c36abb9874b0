//! ping over a raw ICMP socket, printed like iputils `ping`.
//!
//! ```sh
//! cargo run -p berth --example raw_ping
//! ```
//!
//! socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) → sendto(echo request) → recvfrom(IP
//! packet with the echo reply). Stack B answers echo requests itself, as a kernel
//! does; the program builds the request and parses the reply with `berth::wire`.

use berth::wire::{Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Packet};
use berth::{RawSocket, Stack};
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const COUNT: u16 = 4;
const DATA_LEN: usize = 56;

#[cfg_attr(test, allow(dead_code))]
fn main() -> io::Result<()> {
    let (a, _b) = Stack::pair()?;
    let dst = Ipv4Addr::new(192, 0, 2, 2);
    let sock = RawSocket::new(&a, IpProtocol::ICMP.0)?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;

    let ident = std::process::id() as u16;
    let data: Vec<u8> = (0..DATA_LEN).map(|i| i as u8).collect();
    println!(
        "PING {dst} ({dst}) {DATA_LEN}({}) bytes of data.",
        DATA_LEN + 8 + 20
    );

    let start = Instant::now();
    let mut rtts = Vec::new();
    for seq_no in 1..=COUNT {
        // Build the echo request: the stack adds the IP header.
        let request = Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data: &data,
        };
        let mut buf = vec![0u8; request.buffer_len()];
        request.emit(&mut buf);
        let sent = Instant::now();
        sock.send_to(&buf, IpAddr::V4(dst))?;

        // Read whole IP packets until our reply arrives (a raw socket sees every
        // ICMP message for the host).
        let mut packet = [0u8; 1500];
        loop {
            let (n, from) = match sock.recv_from(&mut packet) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    println!("no reply for icmp_seq={seq_no}");
                    break;
                }
                Err(e) => return Err(e),
            };
            let rtt = sent.elapsed();
            let Ok(ip) = Ipv4Packet::new_checked(&packet[..n]) else {
                continue;
            };
            let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
                continue;
            };
            if let Ok(Icmpv4Repr::EchoReply {
                ident: id,
                seq_no: seq,
                data: d,
            }) = Icmpv4Repr::parse(&icmp)
            {
                if id != ident || seq != seq_no {
                    continue;
                }
                assert_eq!(d, &data[..], "the reply carries different data");
                println!(
                    "{} bytes from {from}: icmp_seq={seq} ttl={} time={:.3} ms",
                    icmp.data().len() + 8,
                    ip.ttl(),
                    rtt.as_secs_f64() * 1e3
                );
                rtts.push(rtt.as_secs_f64() * 1e3);
                break;
            }
        }
    }

    let received = rtts.len();
    let lost = 100 * (COUNT as usize - received) / COUNT as usize;
    println!("\n--- {dst} ping statistics ---");
    println!(
        "{COUNT} packets transmitted, {received} received, {lost}% packet loss, time {}ms",
        start.elapsed().as_millis()
    );
    if received > 0 {
        let min = rtts.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().cloned().fold(0.0, f64::max);
        let avg = rtts.iter().sum::<f64>() / received as f64;
        let mdev =
            (rtts.iter().map(|r| (r - avg) * (r - avg)).sum::<f64>() / received as f64).sqrt();
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
    assert_eq!(
        received, COUNT as usize,
        "every echo request should be answered"
    );
    Ok(())
}

/// `cargo test` runs the example (its asserts check what it prints about).
#[test]
fn runs() {
    main().expect("the example failed");
}
