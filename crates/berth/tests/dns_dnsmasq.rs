//! berth's DNS stub resolver (`berth::dns::lookup_ip`) against a real server,
//! dnsmasq, so that the wire format and the retry, NXDOMAIN and TCP fallback
//! rules are checked against another implementation, not only against the
//! simulator's server in resolver.rs. Each test makes a network namespace
//! with a TUN `bt0`: the kernel's side is 192.0.2.1/24 and 2001:db8::1/64 and
//! runs dnsmasq bound to 192.0.2.1 only; berth's stack is 192.0.2.2/24 and
//! 2001:db8::2/64 on the TUN (so it asks AAAA and A), DNS server 192.0.2.1.
//! Cases: an A record; AAAA and A of one name, AAAA first; NXDOMAIN, fast;
//! 60 A records, truncated over UDP and fetched over TCP; a server nobody
//! answers for, `TimedOut` after the configured attempts. Needs root,
//! /dev/net/tun, `ip` and `dnsmasq`; skips (saying why) without them, unless
//! CI is set.
#![cfg(target_os = "linux")]

mod support_netns;

use berth::core::Config;
use berth::device::{self, Device, DeviceOptions, Kind};
use berth::dns::ResolverConfig;
use berth::Stack;
use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support_netns::*;

const DEV: &str = "bt0";
const SERVER: &str = "192.0.2.1";
/// What the tests need besides root, /dev/net/tun and ip.
const TOOLS: &[&str] = &["dnsmasq"];
/// How many A records big.test.example has: 60 × 16 octets of answers is
/// well over the 512 octets of a UDP answer without EDNS0.
const BIG: u8 = 60;

/// Open /dev/net/tun and create `dev` (IFF_TUN|IFF_NO_PI) in the calling
/// thread's namespace. Not persistent: the device goes when the fd is closed.
fn open_tun(dev: &str) -> io::Result<OwnedFd> {
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
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads (and updates) one ifreq, live across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// dnsmasq, SIGTERMed (then SIGKILLed) and reaped when dropped.
struct Dnsmasq {
    child: Child,
    log: Receiver<String>,
    /// Every log line read so far.
    seen: Vec<String>,
}

impl Dnsmasq {
    /// Wait (up to `limit`) for a log line containing `needle`.
    fn expect(&mut self, needle: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = end.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "dnsmasq logged no {needle:?} within {limit:?}; log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// How many log lines so far contain `needle`, after a short wait for
    /// stragglers.
    fn count(&mut self, needle: &str) -> usize {
        while let Ok(l) = self.log.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        self.seen.iter().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A namespace with the TUN, dnsmasq on its kernel side and berth's stack on
/// the other. Fields drop in order: dnsmasq, the device and the stack (which
/// close the TUN), then the namespace.
struct Lab {
    dnsmasq: Dnsmasq,
    _dev: Device,
    stack: Stack,
    ns: Netns,
}

fn lab(tag: &str) -> Lab {
    let ns = Netns::new(tag);
    let fd = ns
        .enter(|| open_tun(DEV))
        .expect("open a TUN in the namespace");
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", DEV]);
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", DEV, "nodad"]);
    ns.ip(&["link", "set", DEV, "up"]);
    // The kernel activates the queue asynchronously after the link comes up.
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let o = ns.exec("ip", &["-o", "link", "show", DEV]);
        if !String::from_utf8_lossy(&o.stdout).contains("state DOWN") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let stack = Stack::new(Config::default());
    let mut o = DeviceOptions::new(DEV, Kind::Tun, "192.0.2.2/24".parse().expect("cidr"));
    o.mtu = Some(1500);
    o.ipv6 = vec!["2001:db8::2/64".parse().expect("cidr")];
    let dev = device::attach_fd(&stack, fd, false, &o).expect("attach the fd");
    stack.set_dns_servers(&[SERVER.parse().expect("ip")]);

    let mut c = ns.cmd("dnsmasq");
    c.args([
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--user=root",
        "--pid-file=",
        "--interface=bt0",
        "--bind-interfaces",
        "--listen-address=192.0.2.1",
        "--log-queries",
        "--log-facility=-",
        // Names under test.example dnsmasq has no record of are NXDOMAIN,
        // never forwarded (there is no upstream anyway).
        "--local=/test.example/",
        "--address=/a.test.example/192.0.2.10",
        "--host-record=v6.test.example,2001:db8::5,192.0.2.5",
    ])
    .args((1..=BIG).map(|n| format!("--host-record=big.test.example,192.0.2.{}", 100 + n)))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn dnsmasq");
    let log = lines_of(child.stderr.take().expect("stderr"));
    let mut dnsmasq = Dnsmasq {
        child,
        log,
        seen: Vec::new(),
    };
    // Logged once its sockets are bound.
    dnsmasq.expect("started, version", Duration::from_secs(10));
    Lab {
        dnsmasq,
        _dev: dev,
        stack,
        ns,
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn a_record() {
    if skip("a_record", TOOLS) {
        return;
    }
    let mut lab = lab("dnsa");
    let ips = berth::dns::lookup_ip(&lab.stack, "a.test.example").expect("lookup");
    assert_eq!(ips, vec![v4(192, 0, 2, 10)]);
    // The query went out of berth to dnsmasq, from berth's address.
    lab.dnsmasq.expect(
        "query[A] a.test.example from 192.0.2.2",
        Duration::from_secs(2),
    );
}

#[test]
fn aaaa_and_a_aaaa_first() {
    if skip("aaaa_and_a_aaaa_first", TOOLS) {
        return;
    }
    let mut lab = lab("dnsv6");
    let ips = berth::dns::lookup_ip(&lab.stack, "v6.test.example").expect("lookup");
    // The stack has an address of each family, so both are asked; AAAA
    // answers come first (lookup.rs: "AAAA then A").
    let want: Vec<IpAddr> = vec!["2001:db8::5".parse().expect("ip"), v4(192, 0, 2, 5)];
    assert_eq!(ips, want);
    let limit = Duration::from_secs(2);
    lab.dnsmasq.expect("query[AAAA] v6.test.example", limit);
    lab.dnsmasq.expect("query[A] v6.test.example", limit);
}

#[test]
fn nxdomain_is_not_found_at_once() {
    if skip("nxdomain_is_not_found_at_once", TOOLS) {
        return;
    }
    let lab = lab("dnsnx");
    let t = Instant::now();
    let e = berth::dns::lookup_ip(&lab.stack, "nosuch.test.example").expect_err("NXDOMAIN");
    let took = t.elapsed();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("nosuch.test.example: no such name (NXDOMAIN from 192.0.2.1:53)"),
        "{msg}"
    );
    // An answer, not a timeout: well inside the first 1 s wait.
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[test]
fn truncated_answer_is_fetched_over_tcp() {
    if skip("truncated_answer_is_fetched_over_tcp", TOOLS) {
        return;
    }
    let mut lab = lab("dnstc");
    let opens = lab.stack.stats().tcp_active_opens;
    let ips = berth::dns::lookup_ip(&lab.stack, "big.test.example").expect("lookup");
    // All of them, which a 512-octet UDP answer cannot hold.
    let want: BTreeSet<IpAddr> = (1..=BIG).map(|n| v4(192, 0, 2, 100 + n)).collect();
    let got: BTreeSet<IpAddr> = ips.iter().copied().collect();
    assert_eq!(ips.len(), usize::from(BIG), "{ips:?}");
    assert_eq!(got, want);
    // One TCP connection (the A query's; the AAAA answer, empty, fits in
    // UDP), and dnsmasq saw the A question twice: over UDP, then over TCP.
    assert_eq!(lab.stack.stats().tcp_active_opens - opens, 1);
    assert_eq!(lab.dnsmasq.count("query[A] big.test.example"), 2);
}

#[test]
fn silent_server_times_out() {
    if skip("silent_server_times_out", TOOLS) {
        return;
    }
    let lab = lab("dnsto");
    // Nobody has 192.0.2.9: the kernel takes the packets off the TUN and,
    // not forwarding, drops them without an ICMP error.
    let fwd = lab
        .ns
        .exec("cat", &["/proc/sys/net/ipv4/ip_forward"])
        .stdout;
    assert_eq!(String::from_utf8_lossy(&fwd).trim(), "0");
    let silent: SocketAddr = "192.0.2.9:53".parse().expect("addr");
    lab.stack.set_resolver_config(ResolverConfig {
        servers: vec![silent],
        attempts: 2,
        timeout: Duration::from_millis(200),
        ..ResolverConfig::default()
    });
    let t = Instant::now();
    let e = berth::dns::lookup_ip(&lab.stack, "a.test.example").expect_err("no answer");
    let took = t.elapsed();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("no answer from 192.0.2.9:53 after 2 attempts"),
        "{msg}"
    );
    // 200 ms, then 400 ms for the second attempt: 600 ms in all.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1500),
        "took {took:?}"
    );
}
