//! Helpers for the berth tests that make network namespaces and TUN devices
//! (device_fd.rs, tun2socks.rs): the root/CI skip check, a namespace guard
//! whose Drop deletes it, a command runner, a line reader and test data. The
//! berth-cli tests have their own copy of the pattern
//! (crates/berth-cli/tests/support_netns). Only 192.0.2.0/24 and
//! 198.51.100.0/24, only inside our own namespaces.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver};

/// Whether to skip (and why, on stderr): not root, no /dev/net/tun, or `ip`
/// or one of `tools` missing. With CI set, a reason is fatal.
pub fn skip(test: &str, tools: &[&str]) -> bool {
    let mut why = Vec::new();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        why.push("not root (network namespaces and TUN devices need root)".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        why.push("no /dev/net/tun".to_string());
    }
    for t in ["ip"].iter().chain(tools) {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            why.push(format!("{t} is not installed (.ci/run installs it)"));
        }
    }
    if why.is_empty() {
        return false;
    }
    let msg = format!("{test}: skipped: {}", why.join("; "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg} — CI is set, so this test must run");
    }
    // Straight to the stderr handle: the harness captures eprintln!, and a
    // skip should be visible in a plain `cargo test` run.
    let _ = writeln!(std::io::stderr(), "{msg}");
    true
}

/// A measurement or note, on stderr straight (visible without --nocapture).
pub fn report(msg: String) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace (lo up), deleted with its devices when dropped (a
/// test's panic included).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "berth-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS…`, asserting success.
    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a);
    }

    /// `ip netns exec NS PROGRAM`, to add arguments to and run.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `ip netns exec NS PROGRAM ARGS…`, its output.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {program}: {e}"))
    }

    /// Delete it now (the Drop then has nothing to do).
    pub fn delete(&self) {
        run("ip", &["netns", "del", &self.name]);
    }

    /// Run `f` in a thread that entered the namespace: sockets and devices it
    /// opens stay in the namespace wherever they are used afterwards.
    #[cfg(target_os = "linux")]
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsRawFd;
        let file =
            std::fs::File::open(format!("/run/netns/{}", self.name)).expect("open the namespace");
        let fd = file.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns on a namespace fd we hold open; it changes only
                // this scoped thread, which ends right after `f`.
                let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("namespace thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `PROGRAM ARGS…`, asserting success.
pub fn run(program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The lines of `r`, delivered through a channel (reader thread).
pub fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
