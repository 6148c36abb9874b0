//! UDP echo: a server on stack B and a client on stack A.
//!
//! ```sh
//! cargo run -p berth --example udp_echo
//! ```
//!
//! server: socket → bind → recvfrom → sendto …
//! client: socket → bind (ephemeral port) → sendto → recvfrom

use berth::{Stack, UdpSocket};
use std::io;
use std::thread;
use std::time::Duration;

const COUNT: usize = 3;

#[cfg_attr(test, allow(dead_code))]
fn main() -> io::Result<()> {
    let (a, b) = Stack::pair()?;

    // Server, on B: socket + bind; one socket serves every peer.
    let server = UdpSocket::bind(&b, "0.0.0.0:7")?;
    println!("server: bound to {}", server.local_addr()?);
    let server = thread::spawn(move || -> io::Result<()> {
        let mut buf = [0u8; 1500];
        for _ in 0..COUNT {
            let (n, peer) = server.recv_from(&mut buf)?;
            println!("server: {n} bytes from {peer}, sending them back");
            server.send_to(&buf[..n], peer)?;
        }
        Ok(())
    });

    // Client, on A: port 0 asks the stack for an ephemeral port.
    let client = UdpSocket::bind(&a, "0.0.0.0:0")?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    println!("client: bound to {}", client.local_addr()?);
    let mut buf = [0u8; 1500];
    for i in 1..=COUNT {
        let msg = format!("datagram {i}");
        client.send_to(msg.as_bytes(), "192.0.2.2:7")?;
        let (n, from) = client.recv_from(&mut buf)?;
        println!(
            "client: sent {msg:?}, got {:?} from {from}",
            String::from_utf8_lossy(&buf[..n])
        );
        assert_eq!(
            &buf[..n],
            msg.as_bytes(),
            "the echo differs from what was sent"
        );
        assert_eq!(from.to_string(), "192.0.2.2:7");
    }
    server
        .join()
        .map_err(|_| io::Error::other("server thread panicked"))??;
    println!("done: {COUNT} datagrams echoed");
    Ok(())
}

/// `cargo test` runs the example (its asserts check what it prints about).
#[test]
fn runs() {
    main().expect("the example failed");
}
