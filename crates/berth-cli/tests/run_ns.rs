//! `berth run`'s namespace plumbing through the hidden `berth __ns-test`: a
//! new network namespace (and, as an unprivileged user, a user namespace)
//! whose TUN is configured by berth over rtnetlink and handed back to it.
//! Checked from inside with `ip -j`: lo up, the TUN's addresses, MTU and
//! default routes; as root and as nobody; resolv.conf; CMD's exit status and
//! signals; joining another process's namespaces (--pid); clear errors; and
//! that no process is left behind. Addresses from 192.0.2.0/24 and
//! 2001:db8::/32 only, inside namespaces of our own; no packet is sent.
//! Needs root, /dev/net/tun, ip, setpriv, nsenter and unshare; skips (saying
//! why) without them, unless CI is set.

mod support_netns;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support_netns::*;

const TOOLS: &[&str] = &["setpriv", "nsenter", "unshare"];
const ADDR: [&str; 4] = ["--addr", "192.0.2.100/24", "--gateway", "192.0.2.2"];
const ADDR6: [&str; 4] = ["--addr6", "2001:db8::100/64", "--gateway6", "2001:db8::2"];

/// `ip -j` outputs, one per section, printed by CMD inside.
const IP_DUMP: &str =
    "ip -j link; echo '#'; ip -j addr; echo '#'; ip -j route; echo '#'; ip -j -6 route";

/// ADDR, then `extra`.
fn with_addr<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = Vec::from(ADDR);
    args.extend_from_slice(extra);
    args
}

/// ADDR and ADDR6, then `extra`.
fn with_addr6<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = with_addr(&ADDR6);
    args.extend_from_slice(extra);
    args
}

/// `berth __ns-test ARGS`, as root, to run.
fn ns_test_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BERTH);
    c.arg("__ns-test").args(args);
    c
}

/// `berth __ns-test ARGS`, as root.
fn ns_test(args: &[&str]) -> Output {
    ns_test_cmd(args)
        .stdin(Stdio::null())
        .output()
        .expect("run berth __ns-test")
}

/// The berth binary where nobody may run it (the build directory may be out
/// of its reach): a link or copy in a fresh directory under /tmp, removed on drop.
struct NobodyBerth {
    _dir: TmpDir,
    path: PathBuf,
}

impl NobodyBerth {
    fn new(tag: &str) -> NobodyBerth {
        let dir = TmpDir::new(&format!("berth-run-ns-{tag}"));
        let path = dir.nobody_berth();
        NobodyBerth { _dir: dir, path }
    }

    /// `setpriv (as nobody) berth __ns-test ARGS`.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = as_nobody();
        c.arg(&self.path)
            .arg("__ns-test")
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run setpriv berth")
    }
}

/// The four `ip -j` sections of IP_DUMP: link, addr, route, -6 route.
fn sections(out: &Output) -> Vec<Value> {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "__ns-test failed ({}): {}{stdout}",
        out.status,
        text(&out.stderr)
    );
    let v: Vec<Value> = stdout
        .split('#')
        .map(|s| serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s:?}")))
        .collect();
    assert_eq!(v.len(), 4, "{stdout}");
    v
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

fn is_up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

/// What a namespace set up with ADDR (and ADDR6 when `v6`) and `mtu` must show.
fn check_namespace(out: &Output, mtu: u64, v6: bool) {
    let s = sections(out);
    let (links, addrs, routes, routes6) = (&s[0], &s[1], &s[2], &s[3]);
    let names: Vec<&str> = links
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo", "tun0"], "only lo and the TUN: {links}");
    assert!(is_up(by_name(links, "lo")), "lo is up: {links}");
    let tun = by_name(links, "tun0");
    assert!(is_up(tun), "tun0 is up: {tun}");
    assert_eq!(tun["mtu"], mtu, "{tun}");

    let info = by_name(addrs, "tun0")["addr_info"]
        .as_array()
        .expect("addr_info")
        .clone();
    assert!(
        info.iter()
            .any(|a| a["family"] == "inet" && a["local"] == "192.0.2.100" && a["prefixlen"] == 24),
        "192.0.2.100/24 on tun0: {info:?}"
    );
    let a6 = info
        .iter()
        .find(|a| a["family"] == "inet6" && a["local"] == "2001:db8::100");
    if v6 {
        let a6 = a6.unwrap_or_else(|| panic!("2001:db8::100 on tun0: {info:?}"));
        assert_eq!(a6["prefixlen"], 64);
        // Usable at once: no duplicate address detection, never tentative.
        assert_eq!(a6["nodad"], true, "{a6}");
        assert!(a6.get("tentative").is_none(), "{a6}");
    } else {
        assert!(a6.is_none(), "{info:?}");
    }

    let default4 = routes
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["dst"] == "default")
        .unwrap_or_else(|| panic!("IPv4 default route: {routes}"));
    assert_eq!(default4["gateway"], "192.0.2.2", "{default4}");
    assert_eq!(default4["dev"], "tun0", "{default4}");
    let default6 = routes6
        .as_array()
        .expect("routes6")
        .iter()
        .find(|r| r["dst"] == "default");
    if v6 {
        let d = default6.unwrap_or_else(|| panic!("IPv6 default route: {routes6}"));
        assert_eq!(d["gateway"], "2001:db8::2", "{d}");
        assert_eq!(d["dev"], "tun0", "{d}");
    } else {
        assert!(default6.is_none(), "{routes6}");
    }
}

/// The TUN's flags as berth reports them: virtio-net headers asked for and
/// set on the fd (IFF_VNET_HDR), or neither.
fn assert_tun_flags(out: &Output, vnet_hdr: bool) {
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "tun=tun0 vnet_hdr={vnet_hdr} iff_vnet_hdr={vnet_hdr}"
        )),
        "{err}"
    );
}

/// `run` (root's or nobody's `__ns-test`) with ADDR, ADDR6 and virtio-net
/// headers (MTU 65520), then with ADDR alone at MTU 1500: each namespace
/// checked, and the first one's TUN flags. Returns the second run's output.
fn check_layouts(run: impl Fn(&[&str]) -> Output) -> Output {
    let out = run(&with_addr6(&["--vnet-hdr", "--", "sh", "-c", IP_DUMP]));
    check_namespace(&out, 65520, true);
    // The fd berth got is that TUN, with virtio-net headers as asked.
    assert_tun_flags(&out, true);

    // MTU 1500, IPv4 only, no virtio-net headers.
    let out = run(&with_addr(&["--mtu", "1500", "--", "sh", "-c", IP_DUMP]));
    check_namespace(&out, 1500, false);
    out
}

/// CMD's stdout, once the run succeeded.
fn stdout_ok(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    stdout
}

/// The stderr of a run that exited with `code` and said `needle`.
fn assert_exit(out: &Output, code: i32, needle: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "{err}");
    err
}

/// A `sleep` argument no other process has: this test's own marker.
fn marker(n: u32) -> String {
    format!("{}.{}", 7000 + n, std::process::id())
}

#[test]
fn root_namespace_has_lo_tun_addresses_mtu_and_default_routes() {
    if skip(
        "root_namespace_has_lo_tun_addresses_mtu_and_default_routes",
        TOOLS,
    ) {
        return;
    }
    let out = check_layouts(ns_test);
    assert_tun_flags(&out, false);
}

#[test]
fn root_resolv_conf_is_bind_mounted_inside_only() {
    if skip("root_resolv_conf_is_bind_mounted_inside_only", TOOLS) {
        return;
    }
    let host_before = std::fs::read("/etc/resolv.conf").ok();
    let mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("resolv.conf"))
            .count()
    };
    let mounts_before = mounts();
    let out = ns_test(&with_addr(&[
        "--resolv-conf",
        "nameserver 192.0.2.3\n",
        "--",
        "sh",
        "-c",
        "cat /etc/resolv.conf; test ! -e /tmp/resolv.conf && echo tmp-clean",
    ]));
    let stdout = stdout_ok(&out);
    assert_eq!(stdout, "nameserver 192.0.2.3\ntmp-clean\n");
    assert_eq!(
        std::fs::read("/etc/resolv.conf").ok(),
        host_before,
        "the host's is untouched"
    );
    assert_eq!(mounts(), mounts_before, "no mount leaked to the host");
}

#[test]
fn rootless_namespace_in_a_user_namespace() {
    if skip("rootless_namespace_in_a_user_namespace", TOOLS) {
        return;
    }
    let nobody = NobodyBerth::new("rootless");
    let _mode = TunMode::set(0o666);
    check_layouts(|args| nobody.run(args));

    // Inside, nobody is root of its own user namespace (as `unshare -r`),
    // and sees the resolv.conf given.
    let out = nobody.run(&with_addr(&[
        "--resolv-conf",
        "nameserver 192.0.2.3\n",
        "--",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /etc/resolv.conf",
    ]));
    let stdout = stdout_ok(&out);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", "65534", "1", "nameserver", "192.0.2.3"],
        "{stdout}"
    );
}

#[test]
fn rootless_with_tun_mode_0600_says_how_to_fix_it() {
    if skip("rootless_with_tun_mode_0600_says_how_to_fix_it", TOOLS) {
        return;
    }
    let nobody = NobodyBerth::new("mode0600");
    let _mode = TunMode::set(0o600);
    let out = nobody.run(&with_addr(&["--", "true"]));
    let err = assert_exit(
        &out,
        1,
        "cannot open /dev/net/tun: Permission denied — mode 0600",
    );
    assert!(err.contains("chmod 0666 /dev/net/tun"), "{err}");
}

#[test]
fn exit_status_and_signals_are_cmds() {
    if skip("exit_status_and_signals_are_cmds", TOOLS) {
        return;
    }
    let run = |cmd: &[&str], extra: &[&str]| {
        let mut args = with_addr(extra);
        args.push("--");
        args.extend(cmd);
        ns_test(&args)
    };
    let out = run(&["sh", "-c", "exit 7"], &[]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));

    let out = run(&["sh", "-c", "kill -TERM $$"], &[]);
    let err = text(&out.stderr);
    assert!(err.contains("killed by signal 15"), "{err}");
    assert_eq!(out.status.code(), Some(128 + 15), "{err}");

    // NsChild::signal reaches CMD; try_wait sees it die.
    let m = marker(1);
    let out = run(&["sleep", &m], &["--signal", "9"]);
    let err = text(&out.stderr);
    assert!(err.contains("killed by signal 9"), "{err}");
    assert!(procs_with(&m).is_empty());

    // As shells: 127 when the program is not found, 126 when not executable.
    let out = run(&["/nonexistent/berth-run-ns-test"], &[]);
    assert_exit(
        &out,
        127,
        "berth run: cannot run /nonexistent/berth-run-ns-test: No such file or directory",
    );
    let out = run(&["no-such-program-berth-run-ns"], &[]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let out = run(&["/etc/passwd"], &[]);
    assert_exit(&out, 126, "cannot run /etc/passwd: Permission denied");
}

#[test]
fn bad_settings_and_missing_tun_give_clear_errors() {
    if skip("bad_settings_and_missing_tun_give_clear_errors", TOOLS) {
        return;
    }
    let fails_with = |args: &[&str], needle: &str| {
        let out = ns_test(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    for mtu in ["67", "65536"] {
        fails_with(
            &with_addr(&["--mtu", mtu, "--", "true"]),
            "it must be 68 (IPv4's minimum) to 65535",
        );
    }
    fails_with(
        &with_addr6(&["--mtu", "1000", "--", "true"]),
        "below 1280, IPv6's minimum",
    );
    fails_with(
        &[
            "--addr",
            "192.0.2.100/25",
            "--gateway",
            "192.0.2.200",
            "--",
            "true",
        ],
        "Network is unreachable — the gateway must be inside 192.0.2.100/25",
    );
    fails_with(
        &with_addr(&["--tun", "a-name-far-too-long", "--", "true"]),
        "bad TUN name",
    );

    // No /dev/net/tun (a tmpfs hides it, in a mount namespace of its own).
    let mut args = vec![
        "-m".to_string(),
        "sh".into(),
        "-c".into(),
        "mount -t tmpfs tmpfs /dev/net && exec \"$0\" __ns-test \"$@\"".into(),
        BERTH.into(),
    ];
    args.extend(ADDR.iter().map(|s| s.to_string()));
    args.extend(["--".into(), "true".into()]);
    let out = Command::new("unshare")
        .args(&args)
        .output()
        .expect("unshare -m");
    assert_exit(
        &out,
        1,
        "cannot open /dev/net/tun: No such file or directory — load the tun module (as root: modprobe tun)",
    );
}

/// `unshare ARGS sleep MARKER` (as nobody with `nobody`), once it is in a
/// network namespace other than ours.
fn namespace_holder(nobody: bool, unshare: &str, m: &str) -> Proc {
    let mut c = if nobody {
        let mut c = as_nobody();
        c.arg("unshare");
        c
    } else {
        Command::new("unshare")
    };
    c.args([unshare, "sleep", m]).current_dir("/");
    let p = Proc::spawn(c);
    let pid = p.child.id();
    let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n != ours)
                && procs_with(m)
                    .iter()
                    .any(|l| l.contains(&format!("sleep {m}")) && !l.contains("unshare"))
        }),
        "{pid} never got a network namespace of its own"
    );
    p
}

/// `nsenter -t PID -n ip -j ARGS`, as JSON.
fn ip_in(pid: u32, args: &[&str]) -> Value {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-j"])
        .args(args)
        .output()
        .expect("nsenter");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ip -j json")
}

fn has_link(links: &Value, name: &str) -> bool {
    links
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x["ifname"] == name))
}

/// Run `cmd` (a `__ns-test --pid`), wait for "ready", check the TUN in
/// `pid`'s namespace, then let it end: the TUN goes with berth's fd.
fn join_and_check(mut cmd: Command, pid: u32) {
    cmd.stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let mut p = Proc::spawn(cmd);
    let err = lines_of(p.child.stderr.take().expect("stderr"));
    let seen = expect_line(&err, "ns-test: ready", Duration::from_secs(10));
    assert!(seen.iter().any(|l| l.contains("tun=tun0")), "{seen:?}");

    let links = ip_in(pid, &["link"]);
    let tun = by_name(&links, "tun0");
    assert!(is_up(tun), "{tun}");
    assert_eq!(tun["mtu"], 65520);
    let addrs = ip_in(pid, &["addr", "show", "dev", "tun0"]);
    assert!(addrs.to_string().contains("192.0.2.100"), "{addrs}");
    let routes = ip_in(pid, &["route"]);
    assert!(
        routes.as_array().is_some_and(|r| r
            .iter()
            .any(|x| x["dst"] == "default" && x["gateway"] == "192.0.2.2")),
        "{routes}"
    );

    drop(p.child.stdin.take());
    let status = p
        .wait(Duration::from_secs(10))
        .expect("__ns-test --pid ends when stdin closes");
    assert!(
        status.success(),
        "{:?}",
        rest(&err, Duration::from_millis(100))
    );
    assert!(
        wait_until(Duration::from_secs(5), || !has_link(
            &ip_in(pid, &["link"]),
            "tun0"
        )),
        "tun0 goes when berth's fd closes"
    );
}

#[test]
fn pid_mode_joins_another_process_namespace() {
    if skip("pid_mode_joins_another_process_namespace", TOOLS) {
        return;
    }
    let m = marker(2);
    let holder = namespace_holder(false, "-n", &m);
    let pid = holder.child.id();
    let pid_s = pid.to_string();
    let args = with_addr(&["--pid", &pid_s]);
    join_and_check(ns_test_cmd(&args), pid);

    // A TUN of that name there already: say so.
    let mut c = ns_test_cmd(&args);
    c.stdin(Stdio::piped()).stderr(Stdio::piped());
    let mut first = Proc::spawn(c);
    let err = lines_of(first.child.stderr.take().expect("stderr"));
    expect_line(&err, "ns-test: ready", Duration::from_secs(10));
    let out = ns_test(&args);
    assert!(
        text(&out.stderr).contains("a network device named tun0 already exists"),
        "{}",
        text(&out.stderr)
    );
    drop(first);
    drop(holder);
    assert!(wait_until(Duration::from_secs(5), || procs_with(&m).is_empty()));

    // Never berth's own namespace (the host's here). `--tun lo` makes sure
    // nothing would be changed even if that check failed.
    let me = std::process::id().to_string();
    let out = ns_test(&with_addr(&["--tun", "lo", "--pid", &me]));
    assert_exit(&out, 1, "is in berth's own network namespace");

    // A process that does not exist (pid_max is above every pid).
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").expect("pid_max");
    let out = ns_test(&with_addr(&["--pid", pid_max.trim()]));
    assert_exit(&out, 1, "to join: it does not exist or has ended");
}

#[test]
fn rootless_pid_mode_joins_user_and_network_namespace() {
    if skip("rootless_pid_mode_joins_user_and_network_namespace", TOOLS) {
        return;
    }
    let nobody = NobodyBerth::new("pid");
    let _mode = TunMode::set(0o666);
    let m = marker(3);
    // As rootlesskit / podman make them: nobody's user + network namespace.
    let holder = namespace_holder(true, "-rn", &m);
    let pid = holder.child.id();
    let pid_s = pid.to_string();
    join_and_check(nobody.cmd(&with_addr(&["--pid", &pid_s])), pid);
    drop(holder);

    // Nobody may not join root's namespaces (pid 1's).
    let out = nobody.run(&with_addr(&["--pid", "1"]));
    assert_exit(&out, 1, "may not join the namespaces of process 1");
    assert!(wait_until(Duration::from_secs(5), || procs_with(&m).is_empty()));
}

#[test]
fn nothing_is_left_behind() {
    if skip("nothing_is_left_behind", TOOLS) {
        return;
    }
    // CMD dies with berth (PR_SET_PDEATHSIG), even killed with SIGKILL.
    let m = marker(4);
    let mut c = ns_test_cmd(&with_addr(&["--", "sleep", &m]));
    c.stdin(Stdio::null()).stderr(Stdio::null());
    let mut p = Proc::spawn(c);
    assert!(
        wait_until(Duration::from_secs(10), || procs_with(&m)
            .iter()
            .any(|l| l.contains(&format!(": sleep {m}")))),
        "CMD never started: {:?}",
        procs_with(&m)
    );
    let _ = p.child.kill();
    let _ = p.child.wait();
    assert!(
        wait_until(Duration::from_secs(5), || procs_with(&m).is_empty()),
        "CMD outlived berth: {:?}",
        procs_with(&m)
    );

    // Dropped before "go": CMD never runs and the helper is reaped.
    let m = marker(5);
    let out = ns_test(&with_addr(&["--no-go", "--", "sleep", &m]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(procs_with(&m).is_empty(), "{:?}", procs_with(&m));

    // CMD inherits no fd of berth's: neither the TUN nor the helper's socket
    // nor its rtnetlink one (any socket it has, the test process has too).
    let out = ns_test(&with_addr(&[
        "--",
        "sh",
        "-c",
        "for f in /proc/$$/fd/*; do readlink $f; done; true",
    ]));
    let fds = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ours: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("our fds")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    for fd in fds.lines() {
        assert!(!fd.contains("/dev/net/tun"), "{fds}");
        assert!(
            !fd.starts_with("socket:") || ours.iter().any(|o| o == fd),
            "{fd} leaked: {fds}"
        );
    }

    // An ordinary run leaves nothing either.
    let m = marker(6);
    let out = ns_test(&with_addr(&["--", "sh", "-c", "exit 0", &m]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(procs_with(&m).is_empty(), "{:?}", procs_with(&m));
}
