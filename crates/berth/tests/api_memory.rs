//! The runtime under stack-wide memory limits: a blocking writer whose stack
//! is at its tcp_mem high mark waits (it is not told the socket is writable
//! while memory is short) and is woken when acknowledged data frees memory;
//! so is a tokio writer. Memory stays under the ceiling throughout.

use berth::core::{Config, MemLimits};
use berth::{Stack, TcpListener, TcpStream};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOTAL: usize = 4 << 20;

fn byte(i: usize) -> u8 {
    ((i * 131 + i / 251) % 251) as u8
}

/// Client stack with a 128 KiB TCP high mark; the server stack is default.
fn tight_pair() -> (Stack, Stack) {
    let tight = Config {
        tcp_mem: MemLimits::new(8, 16, 32).unwrap(),
        ..Config::default()
    };
    Stack::pair_with(tight, Config::default(), 65_535).unwrap()
}

/// Sample the client's memory until `done`, returning the highest TCP charge
/// and whether every sample was within the limits.
fn watch(stack: Stack, done: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, bool)> {
    std::thread::spawn(move || {
        let (mut peak, mut ok) = (0, true);
        while !done.load(Ordering::Relaxed) {
            let m = stack.memory();
            peak = peak.max(m.tcp_bytes);
            ok &= m.within_limits();
            std::thread::sleep(Duration::from_micros(200));
        }
        (peak, ok)
    })
}

#[test]
fn blocking_writer_waits_for_memory_and_finishes() {
    let (a, b) = tight_pair();
    let l = TcpListener::bind(&b, "0.0.0.0:9").unwrap();
    let mut c = TcpStream::connect(&a, "192.0.2.2:9").unwrap();
    let (mut s, _) = l.accept().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch(a.clone(), done.clone());
    let writer = std::thread::spawn(move || {
        let data: Vec<u8> = (0..TOTAL).map(byte).collect();
        c.write_all(&data).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // The reader starts late, so the writer meets the high mark first.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let (peak, ok) = watcher.join().unwrap();
    assert_eq!(got.len(), TOTAL);
    assert!(
        got.iter().enumerate().all(|(i, b)| *b == byte(i)),
        "byte-exact"
    );
    let m = a.memory();
    assert!(ok, "a sample was over the ceiling (peak {peak})");
    assert!(peak <= m.tcp_ceiling(), "peak {peak} > {}", m.tcp_ceiling());
    assert!(
        peak >= 32 * 4096 / 2,
        "the writer did reach the high mark region (peak {peak})"
    );
    assert!(a.stats().tcp_mem_send_blocked > 0, "{:?}", a.stats());
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_writer_waits_for_memory_and_finishes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = tight_pair();
        let l = berth::tokio::TcpListener::bind(&b, "0.0.0.0:9")
            .await
            .unwrap();
        let mut c = berth::tokio::TcpStream::connect(&a, "192.0.2.2:9")
            .await
            .unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let watcher = watch(a.clone(), done.clone());
        let writer = tokio::spawn(async move {
            let data: Vec<u8> = (0..TOTAL).map(byte).collect();
            c.write_all(&data).await.unwrap();
            c.shutdown().await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut got))
            .await
            .expect("read within 30 s")
            .unwrap();
        writer.await.unwrap();
        done.store(true, Ordering::Relaxed);
        let (peak, ok) = watcher.join().unwrap();
        assert_eq!(got.len(), TOTAL);
        assert!(got.iter().enumerate().all(|(i, b)| *b == byte(i)));
        assert!(ok && peak <= a.memory().tcp_ceiling(), "peak {peak}");
        assert!(a.stats().tcp_mem_send_blocked > 0);
    });
}
