//! `berth ss` against iproute2's `ss` on the same situation: in a network
//! namespace this test creates, `berth serve` (192.0.2.2 on TUN bt0: echo,
//! discard, HTTP) and the kernel (192.0.2.1) each hold a listener on 0.0.0.0:7
//! and :9, one ESTABLISHED connection between them (kernel → berth:7, 20 kB
//! echoed) and a TIME-WAIT connection each (the kernel closed first towards
//! berth's discard, berth closed first the HTTP connection the kernel opened
//! with `Connection: close`). Both tools print their side, compared column by
//! column (State, Recv-Q, Send-Q, the addresses: equal for listeners, crossed
//! for the one connection both ends of which they show), with the same
//! columns (Netid only when several socket kinds are shown, State only when
//! several states are), under the filters
//! `state established`, `dport = :N`, `( sport = :N or dport = :N )`,
//! `exclude listening`; `-H`; the `-i` fields both print (same names, same
//! formats); `-o` timers; `-p`/`-e`; and the `-s` layout.
//!
//! Needs root, /dev/net/tun, ip, ss and python3; says why and skips without
//! them (fails under CI). The namespace (and with it the TUN) is deleted on
//! drop, also when an assertion fails.

mod support_netns;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support_netns::{expect_line, py_proc, skip, text, wait_until, Netns, Proc, BERTH};

/// A kernel peer: listeners on 0.0.0.0:7 and :9 (backlog 128), an
/// established connection to berth's echo (20 kB echoed, kept open), one to
/// berth's discard closed at once (TIME-WAIT on the kernel's side), and an
/// HTTP request with `Connection: close` (berth closes: TIME-WAIT on
/// berth's side). Prints "ready PORT" (the established connection's local
/// port), then waits for a line on stdin.
const PY_PEER: &str = r#"
import socket, sys
def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    return s
def connect(port):
    c = socket.socket()
    try:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
    except OSError:
        pass
    c.settimeout(20)
    c.connect(("192.0.2.2", port))
    return c
held = [listener(7), listener(9)]
e = connect(7)
e.sendall(b"x" * 20000)
got = 0
while got < 20000:
    got += len(e.recv(65536))
t = connect(9)
t.close()
h = connect(80)
h.sendall(b"GET / HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
while h.recv(65536):
    pass
h.close()
print("ready", e.getsockname()[1], flush=True)
sys.stdin.readline()
"#;

struct Setup {
    ns: Netns,
    _serve: Proc,
    control: PathBuf,
    dir: PathBuf,
    /// The kernel's end of the established connection: its local port.
    port: u16,
    peer: Proc,
    peer_in: std::process::ChildStdin,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = writeln!(self.peer_in);
        let _ = self.peer.wait(Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup {
    fn start() -> Setup {
        let ns = Netns::new("ss");
        let dir = std::env::temp_dir().join(format!("{}-dir", ns.name));
        let www = dir.join("www");
        std::fs::create_dir_all(&www).expect("temp dir");
        std::fs::write(www.join("index.html"), b"hello\n").expect("index.html");
        let control = dir.join("control.sock");
        let mut c = ns.cmd(BERTH);
        c.args([
            "serve",
            "--tun",
            "bt0",
            "--create",
            "--addr",
            "192.0.2.2/24",
        ])
        .args(["--echo", "--discard", "--http"])
        .arg(&www)
        .arg("--control")
        .arg(&control)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let serve = Proc::spawn(c);
        assert!(
            wait_until(Duration::from_secs(20), || control.exists()),
            "berth serve made no control socket"
        );
        ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "bt0"]);
        ns.ip(&["link", "set", "bt0", "up"]);
        let (peer, peer_in, lines) = py_proc(&ns, "python3", &["-c", PY_PEER]);
        let seen = expect_line(&lines, "ready ", Duration::from_secs(30));
        let port = seen
            .iter()
            .find_map(|l| l.strip_prefix("ready "))
            .and_then(|p| p.trim().parse().ok())
            .expect("the peer's port");
        Setup {
            ns,
            _serve: serve,
            control,
            dir,
            port,
            peer,
            peer_in,
        }
    }

    /// The kernel's `ss ARGS…` in the namespace.
    fn kernel(&self, args: &[&str]) -> String {
        let o = self.ns.cmd("ss").args(args).output().expect("ss");
        assert!(o.status.success(), "ss {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// `berth ss ARGS… --control PATH`.
    fn berth(&self, args: &[&str]) -> String {
        let o = Command::new(BERTH)
            .arg("ss")
            .args(args)
            .arg("--control")
            .arg(&self.control)
            .output()
            .expect("berth ss");
        assert!(o.status.success(), "berth ss {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }
}

/// The five compared columns of one row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cols {
    state: String,
    recv_q: String,
    send_q: String,
    local: String,
    peer: String,
}

impl Cols {
    /// The row as its other end would show it: addresses swapped.
    fn crossed(&self) -> Cols {
        Cols {
            local: self.peer.clone(),
            peer: self.local.clone(),
            ..self.clone()
        }
    }
}

/// Which of the optional columns a table's header shows: (Netid, State).
/// iproute2 shows Netid only when several socket kinds are listed, State
/// only when several states are.
fn layout(out: &str) -> (bool, bool) {
    let header = out.lines().next().unwrap_or_default();
    assert!(
        ["Netid", "State", "Recv-Q"]
            .iter()
            .any(|h| header.starts_with(h)),
        "no header in {out}"
    );
    (header.starts_with("Netid"), header.contains("State"))
}

/// Rows of a table (header and `\t` detail lines skipped), read by the
/// columns its header names. Both leave the State column out when a filter
/// selects one state: then `only` is that state.
fn rows_of(out: &str, only: Option<&str>) -> Vec<Cols> {
    let (netid, _) = layout(out);
    let header = ["Netid", "State", "Recv-Q"];
    out.lines()
        .filter(|l| !l.starts_with('\t') && !header.iter().any(|h| l.starts_with(h)))
        .filter_map(|l| {
            let mut f: Vec<String> = l
                .split_whitespace()
                .skip(usize::from(netid))
                .map(str::to_string)
                .collect();
            if let Some(st) = only {
                f.insert(0, st.to_string());
            }
            let mut f = f.into_iter();
            Some(Cols {
                state: f.next()?,
                recv_q: f.next()?,
                send_q: f.next()?,
                local: f.next()?,
                peer: f.next()?,
            })
        })
        .collect()
}

fn rows(out: &str) -> Vec<Cols> {
    rows_of(out, None)
}

/// `s` with every run of digits (and a decimal fraction) as `N`: the shape
/// of a value, so formats compare without the numbers.
fn shape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    out
}

/// The `-i` line's fields: name → the value's shape (`rtt:0.05/0.025` →
/// "N/N"; `send 2316800000bps` → "Nbps"; a bare word → "").
fn info_fields(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if let Some((name, value)) = w.split_once(':') {
            // bbr:(…) and the like: a name with a parenthesised value.
            out.push((name.to_string(), shape(value)));
        } else if matches!(w, "send" | "pacing_rate" | "delivery_rate") {
            out.push((w.to_string(), shape(words.next().unwrap_or(""))));
        } else {
            out.push((w.to_string(), String::new()));
        }
    }
    out
}

/// The detail line under the one row of `out`.
fn detail(out: &str) -> String {
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('\t')).collect();
    assert_eq!(lines.len(), 1, "one detail line in {out}");
    lines[0].trim().to_string()
}

#[test]
fn berth_ss_matches_iproute2_ss() {
    if skip("berth_ss_matches_iproute2_ss", &["ss", "python3"]) {
        return;
    }
    let s = Setup::start();
    let port = s.port.to_string();
    // Wait until both TIME-WAIT rows are there and the closing connections
    // are gone (LAST-ACK answered).
    let settled = wait_until(Duration::from_secs(20), || {
        let k = rows(&s.kernel(&["-tan"]));
        let b = rows(&s.berth(&["-tan"]));
        let states = |r: &[Cols]| {
            r.iter()
                .map(|c| c.state.clone())
                .filter(|st| st != "LISTEN")
                .collect::<Vec<_>>()
        };
        let mut ks = states(&k);
        let mut bs = states(&b);
        ks.sort();
        bs.sort();
        ks == ["ESTAB", "TIME-WAIT"] && bs == ["ESTAB", "TIME-WAIT"]
    });
    let (k_all, b_all) = (s.kernel(&["-tan"]), s.berth(&["-tan"]));
    assert!(settled, "kernel:\n{k_all}\nberth:\n{b_all}");
    let (k, b) = (rows(&k_all), rows(&b_all));
    let find = |r: &[Cols], state: &str, f: &dyn Fn(&Cols) -> bool| -> Cols {
        r.iter()
            .find(|c| c.state == state && f(c))
            .cloned()
            .unwrap_or_else(|| panic!("no {state} row:\nkernel:\n{k_all}\nberth:\n{b_all}"))
    };

    // LISTEN: the same listener on both sides, every column equal.
    for p in ["7", "9"] {
        let local = format!("0.0.0.0:{p}");
        let kl = find(&k, "LISTEN", &|c| c.local == local);
        let bl = find(&b, "LISTEN", &|c| c.local == local);
        assert_eq!(bl, kl, "LISTEN {local}");
        assert_eq!(
            (bl.recv_q.as_str(), bl.send_q.as_str(), bl.peer.as_str()),
            ("0", "128", "0.0.0.0:*")
        );
    }
    // ESTABLISHED: the two ends of one connection: queues equal, addresses crossed.
    let ke = find(&k, "ESTAB", &|c| c.peer == "192.0.2.2:7");
    let be = find(&b, "ESTAB", &|c| c.local == "192.0.2.2:7");
    assert_eq!(be, ke.crossed(), "ESTAB");
    assert_eq!(ke.local, format!("192.0.2.1:{port}"));
    // TIME-WAIT: each side's own (the kernel's to berth's discard, berth's
    // of the HTTP connection): the same state and queues, the same address
    // layout (local on its own side, peer on the other).
    let kt = find(&k, "TIME-WAIT", &|c| c.peer == "192.0.2.2:9");
    let bt = find(&b, "TIME-WAIT", &|c| c.local == "192.0.2.2:80");
    assert_eq!((&bt.recv_q, &bt.send_q), (&kt.recv_q, &kt.send_q));
    assert_eq!((bt.recv_q.as_str(), bt.send_q.as_str()), ("0", "0"));
    let host = |a: &str| a.rsplit_once(':').map(|(h, _)| h.to_string());
    assert_eq!(host(&bt.local), host(&kt.peer));
    assert_eq!(host(&bt.peer), host(&kt.local));
    assert_eq!(shape(&bt.peer), shape(&kt.local));

    // Filters: each gives the same rows on both sides (crossed where the
    // row is the one shared connection).
    let same = |kargs: &[&str], bargs: &[&str], only: Option<&str>| {
        let (kout, bout) = (s.kernel(kargs), s.berth(bargs));
        assert_eq!(
            layout(&bout),
            layout(&kout),
            "columns of ss {kargs:?} vs berth ss {bargs:?}:\n{kout}\n{bout}"
        );
        let kr = rows_of(&kout, only);
        let br = rows_of(&bout, only);
        let norm = |r: &[Cols], cross: bool| -> BTreeSet<Cols> {
            r.iter()
                .map(|c| match c.state.as_str() {
                    "ESTAB" if cross => c.crossed(),
                    "TIME-WAIT" => Cols {
                        local: String::new(),
                        peer: String::new(),
                        ..c.clone()
                    },
                    _ => c.clone(),
                })
                .collect()
        };
        assert!(!kr.is_empty(), "ss {kargs:?} shows nothing");
        assert_eq!(
            norm(&br, true),
            norm(&kr, false),
            "ss {kargs:?} vs berth ss {bargs:?}"
        );
        assert_eq!(br.len(), kr.len(), "ss {kargs:?} vs berth ss {bargs:?}");
    };
    let est = ["-tn", "state", "established"];
    same(&est, &est, Some("ESTAB"));
    // With one state and one socket kind selected, neither prints the State
    // or the Netid column.
    let header = |out: &str| out.lines().next().unwrap_or("").to_string();
    assert!(header(&s.kernel(&est)).starts_with("Recv-Q"));
    assert!(header(&s.berth(&est)).starts_with("Recv-Q"));
    // The columns for each selection of socket kinds and states: Netid with
    // several kinds (-x alone is three: stream, datagram, seqpacket), State
    // with several states (UDP's and raw's default is ESTAB alone).
    for args in [
        &["-tan"][..],
        &["-tn"],
        &["-tln"],
        &["-un"],
        &["-uan"],
        &["-wn"],
        &["-wan"],
        &["-tuan"],
        &["-tun"],
        &["-twn"],
        &["-x"],
        &["-tx"],
        &["-tun", "state", "established"],
    ] {
        let (k, b) = (s.kernel(args), s.berth(args));
        assert_eq!(layout(&b), layout(&k), "ss {args:?}:\n{k}\nberth:\n{b}");
    }
    let tu = s.berth(&["-tuan"]);
    assert!(
        tu.lines().any(|l| l.starts_with("tcp   LISTEN ")) && tu.contains("\nudp   UNCONN "),
        "{tu}"
    );
    // The shared connection: dport 7 from the kernel's end, dport PORT from berth's.
    let bd = format!("dport = :{port}");
    same(&["-tn", "dport = :7"], &["-tn", &bd], None);
    same(
        &["-tan", "( sport = :7 or dport = :7 )"],
        &["-tan", "( sport = :7 or dport = :7 )"],
        None,
    );
    let excl = ["-tn", "exclude", "listening"];
    same(&excl, &excl, None);
    let listen9 = [
        "-tan",
        "state",
        "listening",
        "sport",
        ">=",
        ":8",
        "and",
        "sport",
        "lt",
        ":80",
    ];
    same(&listen9, &listen9, Some("LISTEN"));
    let tw = ["-tn", "state", "time-wait"];
    same(&tw, &tw, Some("TIME-WAIT"));

    // -H: no header on either.
    for (out, who) in [
        (s.kernel(&["-tanH"]), "ss"),
        (s.berth(&["-tanH"]), "berth ss"),
    ] {
        let first = out.lines().next().unwrap_or_default();
        assert!(
            ["LISTEN", "ESTAB", "TIME-WAIT"]
                .iter()
                .any(|w| first.starts_with(w)),
            "{who} -H: {out}"
        );
    }

    // -i (with -o for ts/sack, -n for plain bps): every field both print has
    // the same name and format; the common ones include iproute2's usual set.
    let ki = detail(&s.kernel(&["-tnio", "state", "established"]));
    let bi = detail(&s.berth(&["-tnio", "state", "established"]));
    let (kf, bf) = (info_fields(&ki), info_fields(&bi));
    let mut common = Vec::new();
    for (name, fmt) in &bf {
        if let Some((_, kfmt)) = kf.iter().find(|(n, _)| n == name) {
            assert_eq!(fmt, kfmt, "format of {name}:\nkernel: {ki}\nberth:  {bi}");
            common.push(name.as_str());
        }
    }
    for want in [
        "ts",
        "sack",
        "cubic",
        "wscale",
        "rto",
        "rtt",
        "ato",
        "mss",
        "pmtu",
        "rcvmss",
        "advmss",
        "cwnd",
        "bytes_sent",
        "bytes_acked",
        "bytes_received",
        "segs_out",
        "segs_in",
        "data_segs_out",
        "data_segs_in",
        "send",
        "lastsnd",
        "lastrcv",
        "lastack",
        "pacing_rate",
        "delivery_rate",
        "delivered",
        "rcv_space",
        "rcv_ssthresh",
        "minrtt",
        "snd_wnd",
    ] {
        assert!(
            common.contains(&want),
            "{want} not in both:\nkernel: {ki}\nberth:  {bi}"
        );
    }
    // The order of the common fields is iproute2's.
    let order = |f: &[(String, String)]| -> Vec<String> {
        f.iter()
            .map(|(n, _)| n.clone())
            .filter(|n| common.contains(&n.as_str()))
            .collect()
    };
    assert_eq!(order(&bf), order(&kf), "kernel: {ki}\nberth:  {bi}");
    // Without -o, neither prints the options; without -n the rates are scaled.
    let plain = detail(&s.berth(&["-ti", "state", "established"]));
    let kplain = detail(&s.kernel(&["-ti", "state", "established"]));
    for (line, who) in [(&plain, "berth"), (&kplain, "kernel")] {
        assert!(!line.starts_with("ts "), "{who}: {line}");
        let send = info_fields(line)
            .into_iter()
            .find(|(n, _)| n == "send")
            .map(|(_, v)| v);
        assert!(
            matches!(send.as_deref(), Some("NGbps" | "NMbps" | "Nkbps")),
            "{who}: {line}"
        );
    }

    // -o: the TIME-WAIT timers, in iproute2's format.
    let timer = |out: &str| -> String {
        let l = out
            .lines()
            .find(|l| l.contains("timer:("))
            .unwrap_or_else(|| panic!("no timer in {out}"));
        let t = &l[l.find("timer:(").unwrap_or(0)..];
        shape(t.split_whitespace().next().unwrap_or(""))
    };
    let kt = timer(&s.kernel(&["-tno", "state", "time-wait"]));
    let bt = timer(&s.berth(&["-tno", "state", "time-wait"]));
    assert_eq!(bt, kt);
    assert_eq!(bt, "timer:(timewait,Nsec,N)");

    // -p and -e on the established row: users:(("NAME",pid=N,fd=N)), ino, sk,
    // and the shutdown state `<->`.
    let users = |out: &str| -> String {
        let l = out.lines().find(|l| l.contains("users:((")).unwrap_or("");
        let u = l
            .split_whitespace()
            .find(|w| w.starts_with("users:(("))
            .unwrap_or("");
        let name_end = u.get(9..).and_then(|r| r.find('"')).map_or(0, |i| i + 9);
        shape(&format!(
            "users:((\"NAME{}",
            u.get(name_end..).unwrap_or("")
        ))
    };
    let kp = s.kernel(&["-tnp", "state", "established"]);
    let bp = s.berth(&["-tnp", "state", "established"]);
    assert_eq!(users(&bp), users(&kp), "kernel:\n{kp}\nberth:\n{bp}");
    assert_eq!(users(&bp), "users:((\"NAME\",pid=N,fd=N))");
    assert!(bp.contains("users:((\"berth-echo\",pid="), "{bp}");
    assert!(bp.lines().next().unwrap_or("").ends_with("Process"), "{bp}");
    let ke = s.kernel(&["-tne", "state", "established"]);
    let be = s.berth(&["-tne", "state", "established"]);
    for (out, who) in [(&ke, "kernel"), (&be, "berth")] {
        let row = out.lines().nth(1).unwrap_or("");
        assert!(
            row.contains(" ino:") && row.contains(" sk:") && row.ends_with(" <->"),
            "{who} -e: {out}"
        );
    }

    // -s: iproute2's layout, checked on the kernel's output too.
    let summary_shape = |out: &str| -> Vec<String> {
        out.lines()
            .take(10)
            .map(|l| shape(&l.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect()
    };
    let want = [
        "Total: N",
        "TCP: N (estab N, closed N, orphaned N, timewait N)",
        "",
        "Transport Total IP IPvN",
        "RAW N N N",
        "UDP N N N",
        "TCP N N N",
        "INET N N N",
        "FRAG N N N",
        "",
    ];
    let (ks, bs) = (s.kernel(&["-s"]), s.berth(&["-s"]));
    assert_eq!(summary_shape(&ks), want, "{ks}");
    assert_eq!(summary_shape(&bs), want, "{bs}");
    // The same separators (a tab after the transport name, as iproute2).
    for l in bs.lines().skip(4).take(5) {
        assert!(l.contains("\t  "), "{bs}");
    }
    assert!(
        bs.contains("TCP:   5 (estab 1, closed 0, orphaned 0, timewait 1)"),
        "{bs}"
    );
    assert!(
        bs.contains("\nTCP\t  5         5         0        \n"),
        "{bs}"
    );

    // -x: no Unix sockets in berth: the header only (nothing with -H).
    let x = s.berth(&["-x"]);
    assert_eq!(x.lines().count(), 1, "{x}");
    assert!(x.starts_with("Netid State"), "{x}");
    assert_eq!(s.berth(&["-xH"]), "");
}

/// A bad filter is refused with what is wrong, before any server is asked.
#[test]
fn bad_filters_are_refused_clearly() {
    for (filter, says) in [
        (vec!["state", "establishd"], "wrong state name: establishd"),
        (vec!["dport", "=", ":http"], "does not look like a port"),
        (vec!["(", "dport", "=", ":80"], "missing `)`"),
    ] {
        let o = Command::new(BERTH)
            .arg("ss")
            .args(&filter)
            .args(["--control", "/nonexistent/berth-ss-test.sock"])
            .output()
            .expect("berth ss");
        assert!(!o.status.success(), "{filter:?}");
        let err = text(&o.stderr);
        assert!(err.contains(says), "{filter:?}: {err}");
    }
}
