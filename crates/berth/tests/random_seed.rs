//! A stack outside the simulator draws its seed from the operating system
//! (RFC 6528 ISNs, RFC 6056 ephemeral ports): two runs choose different ports and
//! ISNs. An explicit `Config::seed` stays reproducible.

use berth::core::{Config, IfaceConfig, Medium};
use berth::{Domain, Socket, Stack, Type};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Source port and sequence number of the first SYN a fresh stack sends.
fn first_syn(seed: Option<u64>) -> (u16, u32) {
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let s = Stack::new(Config {
        seed,
        ..Config::default()
    });
    let out = Arc::clone(&frames);
    s.add_device(
        IfaceConfig {
            medium: Medium::Ip,
            address: "192.0.2.1/24".parse().unwrap(),
            mtu: 1500,
        },
        Box::new(move |f| out.lock().unwrap().push(f.to_vec())),
    )
    .unwrap();
    let c = Socket::new(&s, Domain::IPV4, Type::STREAM, None).unwrap();
    c.set_nonblocking(true).unwrap();
    // In progress: nobody answers on this link.
    let _ = c.connect(&"192.0.2.2:80".parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(f) = frames.lock().unwrap().first() {
            // IPv4 header of 20 bytes (no options), protocol 6, then TCP.
            assert_eq!(f[9], 6, "a TCP segment");
            let port = u16::from_be_bytes([f[20], f[21]]);
            let seq = u32::from_be_bytes([f[24], f[25], f[26], f[27]]);
            return (port, seq);
        }
        assert!(Instant::now() < deadline, "no SYN went out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn unseeded_stacks_choose_different_ports_and_isns() {
    let runs: Vec<(u16, u32)> = (0..4).map(|_| first_syn(None)).collect();
    let ports: std::collections::HashSet<u16> = runs.iter().map(|r| r.0).collect();
    let isns: std::collections::HashSet<u32> = runs.iter().map(|r| r.1).collect();
    // 16,384 ephemeral ports: four equal draws would take a broken seed.
    assert!(ports.len() >= 3, "ports {runs:?}");
    assert_eq!(isns.len(), 4, "ISNs {runs:?}");
}

#[test]
fn an_explicit_seed_repeats_the_port() {
    let (p1, _) = first_syn(Some(42));
    let (p2, _) = first_syn(Some(42));
    assert_eq!(p1, p2, "the same seed picks the same ephemeral port");
}
