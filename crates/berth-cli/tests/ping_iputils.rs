//! `berth ping` as iputils `ping`: its flags (plain seconds, clear errors for
//! bad values), and its lines, summary and exit status compared line by line,
//! in shape, with the kernel's `ping` run in the same situation.
//!
//! The namespace tests build two namespaces: R, a router with a TUN `bt0`
//! (kernel 192.0.2.1/24; berth attaches as 192.0.2.2/24, gateway 192.0.2.1)
//! and a veth `pr0` (198.51.100.1/24) to T (`pt0`, 198.51.100.2/24, default
//! route via R). The kernel's `ping -I pr0` in R and `berth ping` on bt0 both
//! ping T; T is made silent with icmp_echo_ignore_all; `-t 1` makes R answer
//! "Time to live exceeded". The IPv6 test builds the same over IPv6 (R
//! 2001:db8::1/64 on bt0, berth 2001:db8::2/64; R 2001:db8:1::1/64 on pr0, T
//! 2001:db8:1::2/64), where the kernel's `ping -6` and `berth ping -6` print
//! the reply's hop limit as ttl=. Needs root, /dev/net/tun, ip and ping (iputils);
//! skips (saying why) without them, unless CI is set. Every namespace (and so
//! every device in it) is deleted on drop, also when a test fails.

mod support_netns;

use std::process::{Command, Output};
use std::time::Duration;
use support_netns::*;

const TARGET: &str = "198.51.100.2";
const KERNEL_SRC: &str = "198.51.100.1";
const BERTH_SRC: &str = "192.0.2.2";
const ROUTER: &str = "192.0.2.1";
const TARGET6: &str = "2001:db8:1::2";
const KERNEL_SRC6: &str = "2001:db8:1::1";
const BERTH_SRC6: &str = "2001:db8::2";
const ROUTER6: &str = "2001:db8::1";

fn berth(args: &[&str]) -> Output {
    Command::new(BERTH).args(args).output().expect("run berth")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A flag value berth cannot take: exit status 2 (as ping's usage errors)
/// and a message that says what to give instead.
#[test]
fn bad_values_fail_with_status_2_and_say_what_to_give() {
    let host = ["ping", "--tun", "bt-none", "--addr", "192.0.2.2/24"];
    for (args, needle) in [
        (&["-i", "soon"][..], "e.g. 0.2, 1 or 5"),
        (&["-i", "inf"][..], "give seconds from 0"),
        (&["-W", "x"][..], "give seconds"),
        (&["-w", "later"][..], "give seconds"),
        (&["-c", "0"][..], "1 or more"),
        (&["-t", "0"][..], "1..=255"),
        (&["-t", "300"][..], "e.g. -t 64"),
        (&["-M", "maybe"][..], "possible values: do, dont, want"),
        (&["-p", "xyz"][..], "hex digits"),
        (
            &["-p", "00112233445566778899aabbccddeeff00"][..],
            "16 bytes",
        ),
        (&["-s", "70000"][..], "65507"),
        (&["-6"][..], "not an IPv6 address"),
        (&["-I", "2001:db8::zz"][..], "invalid source address"),
        (&["-I", "eth9"][..], "give -I bt-none"),
    ] {
        let mut a: Vec<&str> = host.to_vec();
        a.extend_from_slice(args);
        a.push("192.0.2.1");
        let o = berth(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: want {needle:?} in {err}");
    }
}

/// `berth sim ping` exits 1 when every request is lost (and 0 otherwise).
#[test]
fn sim_ping_exits_1_when_every_ping_is_lost() {
    let o = berth(&["sim", "ping", "-c", "3", "-i", "100ms", "--loss", "100%"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("3 packets transmitted, 0 received, 100% packet loss"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no reply from 192.0.2.2"));
    let o = berth(&["sim", "ping", "-c", "3", "-i", "100ms"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}

/// Below 2 ms between requests (a flood included) only root may go, as
/// iputils; as root `-f` and `-i 0` are allowed.
#[test]
fn only_root_may_ping_faster_than_every_2ms() {
    if skip("only_root_may_ping_faster_than_every_2ms", &[]) {
        return;
    }
    let dir = TmpDir::new("berth-ping-nobody");
    let bin = dir.nobody_berth();
    let host = ["ping", "--tun", "bt-none", "--addr", "192.0.2.2/24"];
    for (flags, refused) in [
        (&["-f"][..], true),
        (&["-i", "0.001"][..], true),
        (&["-i", "0"][..], true),
        (&["-f", "-i", "0.002"][..], false),
        (&["-i", "0.002"][..], false),
    ] {
        let o = as_nobody()
            .arg(&bin)
            .args(host)
            .args(flags)
            .arg("192.0.2.1")
            .output()
            .expect("setpriv berth");
        let err = String::from_utf8_lossy(&o.stderr);
        // Allowed ones get past the check and fail later, at the device.
        assert_eq!(code(&o), 2, "{flags:?}: {err}");
        assert_eq!(
            err.contains("minimal interval allowed for user is 2ms"),
            refused,
            "{flags:?}: {err}"
        );
    }
}

/// R (router, TUN bt0 for berth, veth pr0) and T (the target behind it).
struct Net {
    r: Netns,
    t: Netns,
}

impl Net {
    /// Namespaces R and T joined by a veth pair, pr0 in R and pt0 in T.
    fn veth_pair(tag: &str) -> (Netns, Netns) {
        let r = Netns::new(&format!("{tag}r"));
        let t = Netns::new(&format!("{tag}t"));
        run(
            "ip",
            &[
                "link", "add", "pr0", "netns", &r.name, "type", "veth", "peer", "name", "pt0",
                "netns", &t.name,
            ],
        );
        (r, t)
    }

    fn new(tag: &str) -> Net {
        let (r, t) = Net::veth_pair(tag);
        r.ip(&["addr", "add", "198.51.100.1/24", "dev", "pr0"]);
        r.ip(&["link", "set", "pr0", "up"]);
        t.ip(&["addr", "add", "198.51.100.2/24", "dev", "pt0"]);
        t.ip(&["link", "set", "pt0", "up"]);
        t.ip(&["route", "add", "default", "via", KERNEL_SRC]);
        r.tun("bt0", Some("192.0.2.1/24"));
        sysctl(&r, "net.ipv4.ip_forward=1");
        Net { r, t }
    }

    /// [`Net::new`] over IPv6 (no DAD on the kernel's addresses, R forwarding).
    fn new6(tag: &str) -> Net {
        let (r, t) = Net::veth_pair(tag);
        r.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            "pr0",
            "nodad",
        ]);
        r.ip(&["link", "set", "pr0", "up"]);
        t.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::2/64",
            "dev",
            "pt0",
            "nodad",
        ]);
        t.ip(&["link", "set", "pt0", "up"]);
        t.ip(&["-6", "route", "add", "default", "via", KERNEL_SRC6]);
        r.tun("bt0", None);
        r.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "bt0", "nodad"]);
        sysctl(&r, "net.ipv6.conf.all.forwarding=1");
        // Neighbour discovery between R and T first (it can take a second on
        // a fresh veth), so that no compared run has a reply in flight
        // across requests (iputils would add `pipe N` to its summary).
        let warm = run_in(&r, "ping", &["-6", "-c", "1", "-W", "5", TARGET6]);
        assert_eq!(warm.code, 0, "R cannot reach T: {}{}", warm.out, warm.err);
        Net { r, t }
    }

    /// T answers no echo request (but stays reachable).
    fn silence_target(&self) {
        sysctl(&self.t, "net.ipv4.icmp_echo_ignore_all=1");
    }
}

fn sysctl(ns: &Netns, setting: &str) {
    let mut c = ns.cmd("sysctl");
    c.args(["-qw", setting]);
    let o = run_with_input(c, Vec::new(), Duration::from_secs(10));
    assert!(o.status.success(), "sysctl {setting}: {}", text(&o.stderr));
}

/// One run's status, stdout and stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run_in(ns: &Netns, program: &str, args: &[&str]) -> Run {
    let mut c = ns.cmd(program);
    c.args(args);
    let o = run_with_input(c, Vec::new(), Duration::from_secs(60));
    Run {
        code: code(&o),
        out: text(&o.stdout),
        err: text(&o.stderr),
    }
}

/// The kernel's ping in `ns`, bound to `dev` (berth is always bound to its device).
fn kernel(ns: &Netns, dev: &str, args: &[&str]) -> Run {
    let mut a = vec!["-I", dev];
    a.extend_from_slice(args);
    run_in(ns, "ping", &a)
}

/// berth ping in R on bt0, through R unless `routed` is false.
fn berth_ping(net: &Net, routed: bool, args: &[&str]) -> Run {
    let mut a = vec!["ping", "--tun", "bt0", "--addr", "192.0.2.2/24"];
    if routed {
        a.extend_from_slice(&["--gateway", ROUTER]);
    }
    a.extend_from_slice(args);
    run_in(&net.r, BERTH, &a)
}

/// berth ping -6 in R on bt0, through R.
fn berth_ping6(net: &Net, args: &[&str]) -> Run {
    let mut a = vec![
        "ping",
        "--tun",
        "bt0",
        "--addr",
        "192.0.2.2/24",
        "--addr",
        "2001:db8::2/64",
        "--gateway",
        ROUTER6,
        "-6",
    ];
    a.extend_from_slice(args);
    run_in(&net.r, BERTH, &a)
}

/// The shape of each line: the run's own addresses and device named by role
/// (DST, SRC, HOP, DEV), every number (with its decimals) made '#'.
fn shape(text: &str, names: &[(&str, &str)]) -> Vec<String> {
    text.lines()
        .map(|l| {
            let mut l = l.to_string();
            for (from, to) in names {
                l = l.replace(from, to);
            }
            let mut s = String::new();
            let mut in_number = false;
            for c in l.chars() {
                if c.is_ascii_digit() || (in_number && c == '.') {
                    if !in_number {
                        s.push('#');
                    }
                    in_number = true;
                } else {
                    in_number = false;
                    s.push(c);
                }
            }
            s
        })
        .collect()
}

const KERNEL_NAMES: &[(&str, &str)] = &[(TARGET, "DST"), (KERNEL_SRC, "SRC"), ("pr0", "DEV")];
const BERTH_NAMES: &[(&str, &str)] = &[
    (TARGET, "DST"),
    (BERTH_SRC, "SRC"),
    (ROUTER, "HOP"),
    ("bt0", "DEV"),
];

/// Same exit status, and stdout and stderr of the same shape line by line.
fn assert_same_shape(what: &str, k: &Run, kn: &[(&str, &str)], b: &Run, bn: &[(&str, &str)]) {
    let ctx = format!(
        "{what}\n--- kernel ping (status {}):\n{}{}\n--- berth ping (status {}):\n{}{}",
        k.code, k.out, k.err, b.code, b.out, b.err
    );
    assert_eq!(k.code, b.code, "exit status differs: {ctx}");
    assert_eq!(
        shape(&k.out, kn),
        shape(&b.out, bn),
        "stdout differs: {ctx}"
    );
    assert_eq!(
        shape(&k.err, kn),
        shape(&b.err, bn),
        "stderr differs: {ctx}"
    );
}

/// The same comparison for a flood: its line of dots and backspaces is
/// compared by count (a reply may come after the next dot), the rest in shape.
fn flood_line(out: &str, n: usize) -> String {
    let lines: Vec<&str> = out.lines().collect();
    let dots = lines.get(1).copied().unwrap_or_default();
    assert_eq!(dots.matches('.').count(), n, "dots in {out:?}");
    assert_eq!(
        dots.matches('\u{8}').count(),
        2 * n,
        "backspaces in {out:?}"
    );
    assert!(dots.chars().all(|c| ".\u{8} ".contains(c)), "{out:?}");
    let mut rest = lines.clone();
    rest.remove(1);
    rest.join("\n")
}

#[test]
fn replies_print_as_the_kernels_ping_prints_them() {
    if skip("replies_print_as_the_kernels_ping_prints_them", &["ping"]) {
        return;
    }
    let net = Net::new("pgrep");
    for (what, flags) in [
        ("plain", &["-c", "3", "-i", "0.2"][..]),
        (
            "-D -a -p -s 20 -n -I",
            &[
                "-D", "-a", "-n", "-p", "ff", "-s", "20", "-c", "2", "-i", "0.2",
            ][..],
        ),
        ("-q", &["-q", "-c", "3", "-i", "0.2"][..]),
        ("-s 8 (untimed)", &["-s", "8", "-c", "2", "-i", "0.2"][..]),
        ("-w 1", &["-q", "-w", "1", "-i", "0.25"][..]),
        (
            "-M dont -s 2000",
            &["-M", "dont", "-s", "2000", "-c", "2", "-i", "0.2"][..],
        ),
        (
            "-M do -s 2000",
            &["-M", "do", "-s", "2000", "-c", "2", "-i", "0.2"][..],
        ),
        ("-t 64 -O", &["-t", "64", "-O", "-c", "2", "-i", "0.2"][..]),
    ] {
        let mut kf: Vec<&str> = flags.to_vec();
        kf.push(TARGET);
        let k = kernel(&net.r, "pr0", &kf);
        let mut bf: Vec<&str> = flags.to_vec();
        if what.contains("-I") {
            bf.extend_from_slice(&["-I", "bt0"]);
        }
        bf.push(TARGET);
        let b = berth_ping(&net, true, &bf);
        assert_same_shape(what, &k, KERNEL_NAMES, &b, BERTH_NAMES);
        let want = if what == "-M do -s 2000" { 1 } else { 0 };
        assert_eq!(b.code, want, "{what}: {}{}", b.out, b.err);
    }
    // The bell and the timestamps are there, not only their shape.
    let b = berth_ping(&net, true, &["-D", "-a", "-c", "1", TARGET]);
    let reply = b.out.lines().nth(1).unwrap_or_default();
    assert!(
        reply.starts_with('[') && reply.ends_with(" ms\u{7}"),
        "{}",
        b.out
    );

    // A flood: a dot per request, a backspace per reply, and ipg/ewma.
    let k = kernel(&net.r, "pr0", &["-f", "-c", "20", TARGET]);
    let b = berth_ping(&net, true, &["-f", "-c", "20", TARGET]);
    let (kr, br) = (flood_line(&k.out, 20), flood_line(&b.out, 20));
    assert_same_shape(
        "-f",
        &Run { out: kr, ..k },
        KERNEL_NAMES,
        &Run { out: br, ..b },
        BERTH_NAMES,
    );
}

/// Over IPv6 too, the reply lines carry `ttl=` (the reply's hop limit, from
/// IPV6_HOPLIMIT beside the message: RFC 3542 §6.3), and every line has the
/// shape of the kernel's `ping -6`.
#[test]
fn ipv6_replies_print_as_the_kernels_ping_prints_them() {
    if skip(
        "ipv6_replies_print_as_the_kernels_ping_prints_them",
        &["ping"],
    ) {
        return;
    }
    let net = Net::new6("pg6");
    let kn: &[(&str, &str)] = &[(TARGET6, "DST"), (KERNEL_SRC6, "SRC"), ("pr0", "DEV")];
    let bn: &[(&str, &str)] = &[
        (TARGET6, "DST"),
        (BERTH_SRC6, "SRC"),
        (ROUTER6, "HOP"),
        ("bt0", "DEV"),
    ];
    for (what, flags) in [
        ("plain", &["-c", "3", "-i", "0.2"][..]),
        ("-q", &["-q", "-c", "3", "-i", "0.2"][..]),
        ("-s 8 (untimed)", &["-s", "8", "-c", "2", "-i", "0.2"][..]),
        (
            "-D -n -p -s 20",
            &["-D", "-n", "-p", "ff", "-s", "20", "-c", "2", "-i", "0.2"][..],
        ),
    ] {
        let mut kf = vec!["-6"];
        kf.extend_from_slice(flags);
        kf.push(TARGET6);
        let k = kernel(&net.r, "pr0", &kf);
        let mut bf: Vec<&str> = flags.to_vec();
        bf.push(TARGET6);
        let b = berth_ping6(&net, &bf);
        assert_same_shape(what, &k, kn, &b, bn);
        assert_eq!(b.code, 0, "{what}: {}{}", b.out, b.err);
    }
    // The hop limit itself: T's 64 for the kernel next to it, one less for
    // berth, whose replies R forwarded.
    let k = kernel(&net.r, "pr0", &["-6", "-c", "1", TARGET6]);
    let b = berth_ping6(&net, &["-c", "1", TARGET6]);
    assert!(
        k.out
            .contains("64 bytes from 2001:db8:1::2: icmp_seq=1 ttl=64 time="),
        "{}",
        k.out
    );
    assert!(
        b.out
            .contains("64 bytes from 2001:db8:1::2: icmp_seq=1 ttl=63 time="),
        "{}",
        b.out
    );
}

#[test]
fn silence_and_icmp_errors_print_as_the_kernels_ping_prints_them() {
    if skip(
        "silence_and_icmp_errors_print_as_the_kernels_ping_prints_them",
        &["ping"],
    ) {
        return;
    }
    let net = Net::new("pgerr");
    // TTL 1: R answers "Time to live exceeded" (counted as errors, status 1).
    // The kernel's ping goes from T to an address behind R's TUN.
    let k = kernel(
        &net.t,
        "pt0",
        &["-t", "1", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.5"],
    );
    let b = berth_ping(
        &net,
        true,
        &["-t", "1", "-c", "3", "-i", "0.2", "-W", "1", TARGET],
    );
    assert_same_shape(
        "-t 1",
        &k,
        &[
            ("192.0.2.5", "DST"),
            (TARGET, "SRC"),
            (KERNEL_SRC, "HOP"),
            ("pt0", "DEV"),
        ],
        &b,
        BERTH_NAMES,
    );
    assert_eq!(b.code, 1);
    assert!(
        b.out
            .contains("From 192.0.2.1 icmp_seq=1 Time to live exceeded"),
        "{}",
        b.out
    );
    assert!(b.out.contains(", +3 errors, 100% packet loss"), "{}", b.out);

    net.silence_target();
    for (what, flags) in [
        ("silent", &["-c", "2", "-i", "0.2", "-W", "1"][..]),
        (
            "silent -O -D",
            &["-O", "-D", "-c", "3", "-i", "0.2", "-W", "1"][..],
        ),
        ("silent -w 1", &["-w", "1", "-i", "0.3"][..]),
    ] {
        let mut kf: Vec<&str> = flags.to_vec();
        kf.push(TARGET);
        let k = kernel(&net.r, "pr0", &kf);
        let mut bf: Vec<&str> = flags.to_vec();
        bf.push(TARGET);
        let b = berth_ping(&net, true, &bf);
        assert_same_shape(what, &k, KERNEL_NAMES, &b, BERTH_NAMES);
        assert_eq!(b.code, 1, "{what}: {}{}", b.out, b.err);
    }
    let b = berth_ping(
        &net,
        true,
        &["-O", "-c", "2", "-i", "0.2", "-W", "0.5", TARGET],
    );
    assert!(
        b.out.contains("\nno answer yet for icmp_seq=1\n"),
        "{}",
        b.out
    );
    assert!(
        b.out
            .contains("2 packets transmitted, 0 received, 100% packet loss"),
        "{}",
        b.out
    );
}

#[test]
fn no_route_is_an_error_before_anything_is_sent() {
    if skip("no_route_is_an_error_before_anything_is_sent", &["ping"]) {
        return;
    }
    let net = Net::new("pgnor");
    net.t.ip(&["route", "del", "default"]);
    // T has no route to 192.0.2.0/24 now; berth without --gateway none to T.
    let k = run_in(&net.t, "ping", &["-c", "2", "192.0.2.1"]);
    let b = berth_ping(&net, false, &["-c", "2", TARGET]);
    assert_same_shape("no route", &k, &[], &b, &[]);
    assert_eq!(b.code, 2);
    assert_eq!(b.err, "ping: connect: Network is unreachable\n");
    assert_eq!(b.out, "", "nothing is sent or counted");
}
