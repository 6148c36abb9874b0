//! Batched TUN I/O (IFF_VNET_HDR offload) against the Linux kernel, in-process:
//! each test makes its own namespace with a persistent TUN (kernel side
//! 192.0.2.1/24, created by `ip tuntap add`, so attaching with offload to such a
//! device is covered too), attaches berth to it as 192.0.2.2/24 from a thread
//! that entered the namespace, and moves a bulk TCP stream one way, checking the
//! bytes (SHA-256), the stack's checksum counters and the device's batch
//! counters. Needs root and /dev/net/tun; skips (saying why) without them,
//! unless CI is set.

mod support_netns;

use berth::device::{self, Device, DeviceOptions, Kind};
use berth::Stack;
use berth_core::Config;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;
use support_netns::*;

const DEV: &str = "tbo0";
const KERNEL: &str = "192.0.2.1";
const BERTH_ADDR: &str = "192.0.2.2/24";
const PORT: u16 = 5001;
const BYTES: usize = 16 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Run `f` in a thread that entered `ns`: sockets and devices it opens stay in
/// the namespace wherever they are used afterwards.
fn enter<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let file = File::open(format!("/run/netns/{}", ns.name)).expect("open the namespace");
    let fd = file.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a namespace fd we hold open; it changes only this
            // scoped thread, which ends right after `f`.
            let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// Deterministic bytes that do not repeat within a segment.
fn payload() -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// A namespace with the persistent TUN and a berth stack attached to it.
fn setup(tag: &str, offload: bool) -> (Netns, Stack, Device) {
    let ns = Netns::new(tag);
    ns.tun(DEV, Some("192.0.2.1/24"));
    let mut c = Config::default();
    c.tcp.send_buffer = 4 << 20;
    c.tcp.recv_buffer = 4 << 20;
    let stack = Stack::new(c);
    let mut o = DeviceOptions::new(DEV, Kind::Tun, BERTH_ADDR.parse().expect("cidr"));
    o.offload = offload;
    // This thread's /sys is the root namespace's, where berth would not find the
    // device; with `create` it attaches to the existing one all the same.
    o.create = true;
    let dev = {
        let stack = stack.clone();
        enter(&ns, move || device::attach(&stack, &o)).expect("attach berth to the TUN")
    };
    (ns, stack, dev)
}

/// Packets the kernel received from the TUN (= writes by berth; a GSO
/// super-packet counts once).
fn kernel_rx_packets(ns: &Netns) -> u64 {
    let o = ns
        .cmd("cat")
        .arg(format!("/sys/class/net/{DEV}/statistics/rx_packets"))
        .output()
        .expect("read rx_packets");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("rx_packets is a number")
}

fn assert_no_checksum_drops(stack: &Stack) {
    let s = stack.stats();
    assert_eq!(s.tcp_in_csum_errors, 0, "TCP checksum drops: {s:?}");
    assert_eq!(s.ip_in_bad_checksum, 0, "IP checksum drops: {s:?}");
    assert_eq!(s.udp_in_csum_errors, 0, "UDP checksum drops: {s:?}");
}

/// berth → kernel: everything berth writes, read by a kernel socket.
fn berth_to_kernel(tag: &str, offload: bool) -> (Netns, Stack, Device) {
    let (ns, stack, dev) = setup(tag, offload);
    assert_eq!(dev.offload(), offload);
    let l = enter(&ns, || std::net::TcpListener::bind((KERNEL, PORT))).expect("kernel listen");
    let reader = std::thread::spawn(move || {
        let (mut c, _) = l.accept().expect("kernel accept");
        c.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut got = Vec::with_capacity(BYTES);
        c.read_to_end(&mut got).map(|_| got)
    });
    let data = payload();
    let s = berth::TcpStream::connect(&stack, (KERNEL, PORT)).expect("berth connect");
    s.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    (&s).write_all(&data).expect("berth write");
    s.shutdown(Shutdown::Write).expect("berth shutdown");
    let got = reader.join().expect("reader").expect("kernel read");
    assert_eq!(got.len(), data.len());
    assert!(sha(&got) == sha(&data), "the kernel got other bytes");
    assert_no_checksum_drops(&stack);
    drop(s);
    (ns, stack, dev)
}

/// kernel → berth: everything a kernel socket writes, read by berth.
fn kernel_to_berth(tag: &str, offload: bool) -> (Netns, Stack, Device) {
    let (ns, stack, dev) = setup(tag, offload);
    let l = berth::TcpListener::bind(&stack, ("0.0.0.0", PORT)).expect("berth listen");
    let data = payload();
    let writer = {
        let data = data.clone();
        let mut c = enter(&ns, || {
            std::net::TcpStream::connect_timeout(
                &format!("192.0.2.2:{PORT}").parse().expect("addr"),
                TIMEOUT,
            )
        })
        .expect("kernel connect");
        std::thread::spawn(move || {
            c.set_write_timeout(Some(TIMEOUT))?;
            c.write_all(&data)?;
            c.shutdown(Shutdown::Write)
        })
    };
    let (s, _) = l.accept().expect("berth accept");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut got = Vec::with_capacity(BYTES);
    (&s).read_to_end(&mut got).expect("berth read");
    writer.join().expect("writer").expect("kernel write");
    assert_eq!(got.len(), data.len());
    assert!(sha(&got) == sha(&data), "berth got other bytes");
    assert_no_checksum_drops(&stack);
    (ns, stack, dev)
}

#[test]
fn offload_coalesces_berth_writes() {
    if skip("offload_coalesces_berth_writes", &[]) {
        return;
    }
    let (ns, _stack, dev) = berth_to_kernel("oflw", true);
    let st = dev.stats();
    let rx = kernel_rx_packets(&ns);
    eprintln!("berth -> kernel with offload: {st:?}, kernel rx_packets {rx}");
    assert!(
        st.write_calls < st.frames_written,
        "no write carried more than one frame: {st:?}"
    );
    // The kernel's own count agrees: it received fewer packets than berth sent frames.
    assert!(rx < st.frames_written, "kernel rx {rx}, {st:?}");
}

#[test]
fn offload_splits_kernel_super_packets() {
    if skip("offload_splits_kernel_super_packets", &[]) {
        return;
    }
    let (_ns, _stack, dev) = kernel_to_berth("oflr", true);
    let st = dev.stats();
    eprintln!("kernel -> berth with offload: {st:?}");
    assert!(dev.offload());
    // The kernel segments nothing for a TUN with TSO: its bulk data arrives
    // as super-packets that berth splits, so reads are fewer than frames.
    assert!(
        st.read_calls < st.frames_read,
        "no read carried more than one frame: {st:?}"
    );
}

#[test]
fn without_offload_one_syscall_per_frame() {
    if skip("without_offload_one_syscall_per_frame", &[]) {
        return;
    }
    let (_ns, _stack, dev) = berth_to_kernel("ofl0w", false);
    let st = dev.stats();
    assert_eq!(st.write_calls, st.frames_written, "{st:?}");
    drop(dev);
    let (_ns, _stack, dev) = kernel_to_berth("ofl0r", false);
    let st = dev.stats();
    assert!(!dev.offload());
    assert_eq!(st.read_calls, st.frames_read, "{st:?}");
}

#[test]
fn tap_never_uses_offload() {
    if skip("tap_never_uses_offload", &[]) {
        return;
    }
    let ns = Netns::new("ofltap");
    let stack = Stack::new(Config::default());
    let mut o = DeviceOptions::new("tbot0", Kind::Tap, BERTH_ADDR.parse().expect("cidr"));
    o.create = true;
    assert!(o.offload, "offload is the default");
    let dev = {
        let stack = stack.clone();
        enter(&ns, move || device::attach(&stack, &o)).expect("attach a TAP")
    };
    assert!(!dev.offload());
    drop(dev);
    drop(ns);
}
