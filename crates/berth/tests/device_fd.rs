//! `device::attach_fd` against the Linux kernel, as `berth run` uses it: each
//! test makes a network namespace, opens a TUN inside it from a thread that
//! entered it (as `berth run`'s child does), gives the kernel's side
//! 192.0.2.2/24 there, and attaches the fd to a berth stack in this namespace
//! as 192.0.2.1/24. The kernel then pings berth and moves 20 MB each way over
//! TCP (SHA-256 checked), at MTU 1500 and 65520, with and without
//! IFF_VNET_HDR. Needs root and /dev/net/tun; skips (saying why) without them,
//! unless CI is set.
#![cfg(target_os = "linux")]

mod support_netns;

use berth::core::Config;
use berth::device::{self, Device, DeviceOptions, DeviceStats, Kind};
use berth::Stack;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use support_netns::*;

const DEV: &str = "bfd0";
const BERTH: &str = "192.0.2.1";
const KERNEL: &str = "192.0.2.2";
const PORT: u16 = 5001;
const BYTES: usize = 20 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);
/// What the tests need besides root, /dev/net/tun and ip.
const TOOLS: &[&str] = &["ping"];

/// Open /dev/net/tun and create `dev` (IFF_TUN|IFF_NO_PI, and IFF_VNET_HDR with
/// `vnet_hdr`) in the calling thread's namespace. Not persistent: the device
/// goes when the fd is closed.
fn open_tun(dev: &str, vnet_hdr: bool) -> io::Result<OwnedFd> {
    // SAFETY: open(2) with a NUL-terminated path; a non-negative result is ours.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain C data, valid zeroed.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(dev.bytes().take(15)) {
        *d = s as libc::c_char;
    }
    let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads (and updates) one ifreq, live across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The kernel's side of `dev`: address, MTU, up — and ready: the kernel
/// activates a device's queue asynchronously after it comes up, and drops what
/// is written before.
fn configure(ns: &Netns, mtu: usize) {
    ns.ip(&["addr", "add", "192.0.2.2/24", "dev", DEV]);
    ns.ip(&["link", "set", DEV, "mtu", &mtu.to_string(), "up"]);
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let o = ns.exec("ip", &["-o", "link", "show", DEV]);
        if !String::from_utf8_lossy(&o.stdout).contains("state DOWN") {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A TUN opened in `ns` and attached by fd to a new stack.
fn setup(ns: &Netns, vnet_hdr: bool, mtu: usize) -> (Stack, Device) {
    let fd = ns
        .enter(|| open_tun(DEV, vnet_hdr))
        .expect("open a TUN in the namespace");
    configure(ns, mtu);
    let mut c = Config::default();
    c.tcp.send_buffer = 4 << 20;
    c.tcp.recv_buffer = 4 << 20;
    let stack = Stack::new(c);
    let mut o = DeviceOptions::new(DEV, Kind::Tun, "192.0.2.1/24".parse().expect("cidr"));
    o.mtu = Some(mtu);
    let dev = device::attach_fd(&stack, fd, vnet_hdr, &o).expect("attach the fd");
    assert_eq!(dev.offload(), vnet_hdr);
    assert_eq!(dev.mtu(), mtu);
    (stack, dev)
}

/// Deterministic bytes that do not repeat within a segment.
fn payload(seed: u32) -> Vec<u8> {
    let mut x: u32 = seed | 1;
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

fn ping(ns: &Netns, size: usize) {
    let o = ns.exec(
        "ping",
        &[
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "5",
            "-s",
            &size.to_string(),
            BERTH,
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(" 3 received"),
        "ping -s {size}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// berth → kernel: everything berth writes, read by a kernel socket. Returns
/// how long the transfer took.
fn berth_to_kernel(ns: &Netns, stack: &Stack, data: &[u8]) -> Duration {
    let l = ns
        .enter(|| std::net::TcpListener::bind((KERNEL, PORT)))
        .expect("kernel listen");
    let reader = std::thread::spawn(move || {
        let (mut c, _) = l.accept()?;
        c.set_read_timeout(Some(TIMEOUT))?;
        let mut got = Vec::with_capacity(BYTES);
        c.read_to_end(&mut got).map(|_| got)
    });
    let t = Instant::now();
    let s = berth::TcpStream::connect(stack, (KERNEL, PORT)).expect("berth connect");
    s.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    (&s).write_all(data).expect("berth write");
    s.shutdown(Shutdown::Write).expect("berth shutdown");
    let got = reader.join().expect("reader").expect("kernel read");
    let took = t.elapsed();
    assert_eq!(got.len(), data.len());
    assert!(sha(&got) == sha(data), "the kernel got other bytes");
    took
}

/// kernel → berth: everything a kernel socket writes, read by berth. Returns
/// how long the transfer took.
fn kernel_to_berth(ns: &Netns, stack: &Stack, data: &[u8]) -> Duration {
    let l = berth::TcpListener::bind(stack, ("0.0.0.0", PORT + 1)).expect("berth listen");
    let t = Instant::now();
    let writer = {
        let data = data.to_vec();
        let mut c = ns
            .enter(|| {
                std::net::TcpStream::connect_timeout(
                    &format!("{BERTH}:{}", PORT + 1).parse().expect("addr"),
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
    let took = t.elapsed();
    writer.join().expect("writer").expect("kernel write");
    assert_eq!(got.len(), data.len());
    assert!(sha(&got) == sha(data), "berth got other bytes");
    took
}

fn delta(a: DeviceStats, b: DeviceStats) -> DeviceStats {
    DeviceStats {
        frames_written: b.frames_written - a.frames_written,
        write_calls: b.write_calls - a.write_calls,
        frames_read: b.frames_read - a.frames_read,
        read_calls: b.read_calls - a.read_calls,
    }
}

/// Ping (small and large) and 20 MB each way; checks the counters and, once the
/// device is dropped, that the TUN went with its fd.
fn ping_and_bulk(tag: &str, vnet_hdr: bool, mtu: usize) {
    let ns = Netns::new(tag);
    let (stack, dev) = setup(&ns, vnet_hdr, mtu);
    ping(&ns, 56);
    // Larger than 1500: fragments at MTU 1500, one packet near 64 KiB at 65520.
    ping(&ns, if mtu > 60_000 { 65_000 } else { 8_000 });

    let data = payload(0x2545_f491);
    let s0 = dev.stats();
    let t_out = berth_to_kernel(&ns, &stack, &data);
    let s1 = dev.stats();
    let t_in = kernel_to_berth(&ns, &stack, &data);
    let (out, inn) = (delta(s0, s1), delta(s1, dev.stats()));
    let mb = BYTES as f64 / 1e6;
    report(format!(
        "{tag} (vnet_hdr {vnet_hdr}, MTU {mtu}): berth -> kernel {:.0} MB/s \
         ({} frames in {} writes), kernel -> berth {:.0} MB/s ({} frames in {} reads)",
        mb / t_out.as_secs_f64(),
        out.frames_written,
        out.write_calls,
        mb / t_in.as_secs_f64(),
        inn.frames_read,
        inn.read_calls,
    ));
    let st = stack.stats();
    assert_eq!(st.tcp_in_csum_errors, 0, "TCP checksum drops: {st:?}");
    assert_eq!(st.ip_in_bad_checksum, 0, "IP checksum drops: {st:?}");
    if !vnet_hdr {
        assert_eq!(out.write_calls, out.frames_written, "{out:?}");
        assert_eq!(inn.read_calls, inn.frames_read, "{inn:?}");
    } else if mtu <= 1500 {
        // Segments coalesced into GSO writes; the kernel's super-packets split.
        assert!(out.write_calls < out.frames_written, "{out:?}");
        assert!(inn.read_calls < inn.frames_read, "{inn:?}");
    }
    // (At MTU 65520 a segment is nearly 64 KiB: nothing to coalesce or split.)
    assert!(dev.is_running());
    // The TUN was not persistent: closing its only fd, which the Device's reader
    // and the stack's writer share, removes it.
    drop(dev);
    drop(stack);
    let end = Instant::now() + Duration::from_secs(2);
    while ns.exec("ip", &["link", "show", DEV]).status.success() {
        assert!(
            Instant::now() < end,
            "{DEV} still there after Device and Stack were dropped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fd_vnet_hdr_mtu_1500() {
    if skip("fd_vnet_hdr_mtu_1500", TOOLS) {
        return;
    }
    ping_and_bulk("fdv1500", true, 1500);
}

#[test]
fn fd_vnet_hdr_mtu_65520() {
    if skip("fd_vnet_hdr_mtu_65520", TOOLS) {
        return;
    }
    ping_and_bulk("fdv65520", true, 65_520);
}

#[test]
fn fd_plain_mtu_1500() {
    if skip("fd_plain_mtu_1500", TOOLS) {
        return;
    }
    ping_and_bulk("fdp1500", false, 1500);
}

#[test]
fn fd_plain_mtu_65520() {
    if skip("fd_plain_mtu_65520", TOOLS) {
        return;
    }
    ping_and_bulk("fdp65520", false, 65_520);
}

/// Wait (up to 5 s) for the reader to end.
fn ended(dev: &mut Device) -> io::Result<()> {
    let end = Instant::now() + Duration::from_secs(5);
    while dev.is_running() {
        assert!(Instant::now() < end, "the reader still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
    dev.wait()
}

#[test]
fn device_deleted_in_its_namespace_ends_the_reader_quietly() {
    if skip(
        "device_deleted_in_its_namespace_ends_the_reader_quietly",
        TOOLS,
    ) {
        return;
    }
    for vnet_hdr in [true, false] {
        let ns = Netns::new("fdgone");
        let (stack, mut dev) = setup(&ns, vnet_hdr, 1500);
        ping(&ns, 56);
        ns.ip(&["link", "del", DEV]);
        // Gone is no failure here: Ok, and the stack is shut down.
        ended(&mut dev).expect("the reader ends with Ok");
        assert!(stack.is_shut_down());
    }
}

#[test]
fn namespace_deleted_keeps_the_device_until_dropped() {
    if skip("namespace_deleted_keeps_the_device_until_dropped", TOOLS) {
        return;
    }
    let ns = Netns::new("fdnsdel");
    let (stack, dev) = setup(&ns, true, 1500);
    ping(&ns, 56);
    ns.delete();
    // The open TUN fd holds its namespace: deleting the name (or its last
    // process exiting) leaves the device, so the reader goes on.
    std::thread::sleep(Duration::from_millis(300));
    assert!(dev.is_running());
    assert!(!stack.is_shut_down());
    // Dropping the Device stops the reader; with the stack, the fd, the last
    // reference to the namespace, is closed.
    let t = Instant::now();
    drop(dev);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
}

#[test]
fn attach_fd_checks_its_arguments() {
    if skip("attach_fd_checks_its_arguments", TOOLS) {
        return;
    }
    let ns = Netns::new("fdargs");
    let stack = Stack::new(Config::default());
    let mut o = DeviceOptions::new(DEV, Kind::Tun, "192.0.2.1/24".parse().expect("cidr"));
    // A new name each time: a closed TUN may still be unregistering.
    let n = std::cell::Cell::new(0);
    let fd = || {
        n.set(n.get() + 1);
        let name = format!("bfdarg{}", n.get());
        ns.enter(|| open_tun(&name, true)).expect("open a TUN")
    };
    let kind = |r: io::Result<Device>| r.err().map(|e| e.kind());
    // No MTU.
    assert_eq!(
        kind(device::attach_fd(&stack, fd(), true, &o)),
        Some(io::ErrorKind::InvalidInput)
    );
    o.mtu = Some(1500);
    // The framing the fd does not have.
    assert_eq!(
        kind(device::attach_fd(&stack, fd(), false, &o)),
        Some(io::ErrorKind::InvalidInput)
    );
    // Not a TUN fd at all.
    let file = File::open("/dev/null").expect("/dev/null");
    assert_eq!(
        kind(device::attach_fd(&stack, file.into(), false, &o)),
        Some(io::ErrorKind::InvalidInput)
    );
    o.kind = Kind::Tap;
    assert_eq!(
        kind(device::attach_fd(&stack, fd(), true, &o)),
        Some(io::ErrorKind::InvalidInput)
    );
}
