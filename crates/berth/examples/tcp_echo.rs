//! TCP echo: a server on stack B and a client on stack A, in the Berkeley call order.
//!
//! ```sh
//! cargo run -p berth --example tcp_echo
//! ```
//!
//! server: socket → bind → listen → accept → read/write … → close
//! client: socket → connect → write → read → shutdown(write) → read EOF → close

use berth::{Stack, TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::thread;

#[cfg_attr(test, allow(dead_code))]
fn main() -> io::Result<()> {
    // Two hosts, 192.0.2.1 (A) and 192.0.2.2 (B), joined by an in-memory link.
    let (a, b) = Stack::pair()?;

    // Server, on B: socket + bind + listen(128) in one call, as in std::net.
    let listener = TcpListener::bind(&b, "0.0.0.0:7")?;
    println!("server: listening on {}", listener.local_addr()?);
    let server = thread::spawn(move || -> io::Result<usize> {
        let (mut conn, peer) = listener.accept()?;
        println!("server: accepted a connection from {peer}");
        let mut buf = [0u8; 1024];
        let mut echoed = 0;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                println!("server: client shut down its side; closing");
                break;
            }
            println!("server: read {n} bytes, writing them back");
            conn.write_all(&buf[..n])?;
            echoed += n;
        }
        Ok(echoed) // dropping `conn` closes it (FIN)
    });

    // Client, on A: socket + connect (the stack picks an ephemeral port).
    let mut conn = TcpStream::connect(&a, "192.0.2.2:7")?;
    println!(
        "client: connected {} -> {}",
        conn.local_addr()?,
        conn.peer_addr()?
    );
    let mut total = 0;
    for msg in ["hello, berth", "the second line"] {
        conn.write_all(msg.as_bytes())?;
        let mut reply = vec![0u8; msg.len()];
        conn.read_exact(&mut reply)?;
        println!(
            "client: sent {msg:?}, got back {:?}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(reply, msg.as_bytes(), "the echo differs from what was sent");
        total += msg.len();
    }
    conn.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)?;
    println!("client: read EOF after shutdown(Write); closing");
    assert!(rest.is_empty());

    let echoed = server
        .join()
        .map_err(|_| io::Error::other("server thread panicked"))??;
    assert_eq!(echoed, total);
    println!("done: {total} bytes echoed");
    Ok(())
}

/// `cargo test` runs the example (its asserts check what it prints about).
#[test]
fn runs() {
    main().expect("the example failed");
}
