//! Packaging and bad input: `berth completions`, `berth man`, and usage errors
//! that say what to do. Unprivileged, no network: every failure checked here
//! happens before a device is opened.

use std::path::PathBuf;
use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh empty directory under the target's tmp dir, removed first if a
/// previous run left it.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_packaging-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

const SUBCOMMANDS: [&str; 11] = [
    "sim",
    "bench",
    "serve",
    "ss",
    "impair",
    "ping",
    "nc",
    "run",
    "perf",
    "completions",
    "man",
];

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = berth(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.len() > 1000, "{shell}: a short script:\n{script}");
        assert!(script.contains("berth"), "{shell}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} script lacks {sub}");
        }
        // Nested subcommands and flags are completed too.
        assert!(script.contains("transfer"), "{shell}");
        assert!(script.contains("listening"), "{shell}");
    }
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let o = berth(&["completions", "powershell"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("invalid value 'powershell'"), "{err}");
    assert!(err.contains("bash, zsh, fish"), "{err}");
    assert!(o.stdout.is_empty());
    let o = berth(&["completions"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn man_prints_berth_1() {
    let o = berth(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = stdout(&o);
    // The title comes first, after the preamble defining the apostrophe string.
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(
        first.starts_with(".TH berth 1"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains(".SH NAME"));
    assert!(page.contains(".SH SUBCOMMANDS"));
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "berth(1) lacks {sub}");
    }
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = scratch("man");
    let o = berth(&["man", "--dir", dir.to_str().expect("utf-8 tmp dir")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut want: Vec<String> = vec!["berth.1".into()];
    want.extend(SUBCOMMANDS.iter().map(|s| format!("berth-{s}.1")));
    for s in ["ping", "udp", "transfer", "echo", "soak"] {
        want.push(format!("berth-sim-{s}.1"));
    }
    for name in &want {
        let p = dir.join(name);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains("\n.TH "), "{name} is not a roff page");
        assert!(text.len() > 200, "{name} is nearly empty");
    }
    // Every page written is listed on stdout, and there are no help pages.
    let listed = stdout(&o);
    for name in &want {
        assert!(
            listed.contains(name.as_str()),
            "{name} not listed:\n{listed}"
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read man dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    assert_eq!(names.len(), want.len(), "{names:?}");
    // The page of a subcommand shows its own flags.
    let ss = std::fs::read_to_string(dir.join("berth-ss.1")).expect("berth-ss.1");
    assert!(ss.contains("listening"), "berth-ss.1 lacks --listening");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn man_dir_that_does_not_exist_is_an_error() {
    let dir = scratch("man-missing").join("no-such-dir");
    let d = dir.to_str().expect("utf-8 tmp dir");
    let o = berth(&["man", "--dir", d]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("man --dir {d}: does not exist")),
        "{err}"
    );
    assert!(err.contains("mkdir -p"), "{err}");
    assert!(!dir.exists(), "berth created {d}");
}

#[test]
fn unknown_flags_suggest_the_nearest_one() {
    for (args, flag) in [
        (&["ss", "--lisen"][..], "--listening"),
        (
            &["serve", "--tun", "x", "--contrl", "/tmp/x.sock"][..],
            "--control",
        ),
        (&["sim", "transfer", "--backlg", "8"][..], "--backlog"),
    ] {
        let o = berth(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("tip: a similar argument exists: '{flag}'")),
            "{args:?}: {err}"
        );
    }
    let o = berth(&["sim", "transfr"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tip: a similar subcommand exists: 'transfer'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn serve_control_in_a_missing_directory_fails_before_the_device() {
    // No such device either: if berth tried the device first, the error would
    // be about nosuch0 (or a permission error when unprivileged).
    let o = berth(&[
        "serve",
        "--tun",
        "nosuch0",
        "--addr",
        "192.0.2.2/24",
        "--control",
        "/nonexistent/dir/x.sock",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "--control /nonexistent/dir/x.sock: directory /nonexistent/dir does not exist"
        ),
        "{err}"
    );
    assert!(err.contains("mkdir -p /nonexistent/dir"), "{err}");
    // One line, about --control: nothing was tried on the device.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("berth: --control "), "{err}");
    assert!(!std::path::Path::new("/nonexistent").exists());
}

#[test]
fn bench_no_offload_needs_a_tun_mode() {
    let o = berth(&["bench", "--no-offload"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("error: --no-offload needs --tun, --tun-only or --loss"),
        "{err}"
    );
    assert!(err.contains("Usage: berth bench"), "{err}");
    assert!(o.stdout.is_empty(), "bench ran: {}", stdout(&o));
}

#[test]
fn backlog_limits_are_the_same_everywhere() {
    let with = |b: &str| -> [Vec<String>; 3] {
        let serve = ["serve", "--tun", "nosuch0", "--addr", "192.0.2.2/24"];
        [
            serve.iter().map(|s| s.to_string()).collect(),
            vec!["sim".into(), "transfer".into()],
            vec!["sim".into(), "echo".into()],
        ]
        .map(|mut v| {
            v.extend(["--backlog".to_string(), b.to_string()]);
            v
        })
    };
    for bad in ["0", "70000"] {
        let mut first_lines = Vec::new();
        for args in with(bad) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = berth(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            let err = stderr(&o);
            let first = err.lines().next().unwrap_or_default().to_string();
            assert!(first.contains("give 1 to 4096"), "{args:?}: {err}");
            first_lines.push(first);
        }
        first_lines.dedup();
        assert_eq!(first_lines.len(), 1, "differing messages: {first_lines:?}");
        assert_eq!(
            first_lines[0],
            format!(
                "error: invalid value '{bad}' for '--backlog <N>': '{bad}' is not a listen \
                 backlog; give 1 to 4096 (the accept queue length; berth caps it at \
                 SOMAXCONN, 4096, as Linux does by default)"
            )
        );
    }
}
