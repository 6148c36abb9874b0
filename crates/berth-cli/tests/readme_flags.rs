//! The README is each command's manual: every flag `berth CMD --help` lists
//! must appear (long or short form) in that command's README section, so a new
//! flag cannot go undocumented. The `sim` subcommands share one set of link
//! flags, documented once under `berth sim ping`, so they are checked against
//! the `sim` sections together.

use std::process::Command;

const COMMANDS: &[&str] = &[
    "sim ping",
    "sim udp",
    "sim transfer",
    "sim echo",
    "sim soak",
    "bench",
    "serve",
    "ss",
    "impair",
    "ping",
    "nc",
    "run",
    "perf",
];

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    std::fs::read_to_string(path).expect("README.md at the workspace root")
}

/// The text from "### `berth CMD`" to the next heading of level 2 or 3.
fn section<'a>(readme: &'a str, cmd: &str) -> &'a str {
    let head = format!("### `berth {cmd}`");
    let start = readme
        .find(&head)
        .unwrap_or_else(|| panic!("README.md has no section {head}"));
    let rest = &readme[start + head.len()..];
    let end = [rest.find("\n### "), rest.find("\n## ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    &readme[start..start + head.len() + end]
}

/// (short, long) of every option in clap's `--help` output.
fn flags(cmd: &str) -> Vec<(Option<String>, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(cmd.split(' '))
        .arg("--help")
        .output()
        .expect("run berth");
    assert!(out.status.success(), "berth {cmd} --help failed");
    let text = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut v = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') || t.len() == line.len() {
            continue;
        }
        let words: Vec<&str> = t.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let short = words
            .first()
            .filter(|w| w.len() == 2 && !w.starts_with("--"))
            .map(|w| w.to_string());
        let Some(long) = words.iter().find(|w| w.starts_with("--")) else {
            continue;
        };
        v.push((short, long.to_string()));
    }
    v
}

/// Whether `flag` occurs in `text` as a whole flag (`--tun` is not `--tun6`).
fn mentions(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        !text[i + flag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn every_flag_of_every_command_is_in_its_readme_section() {
    let readme = readme();
    let sims: String = COMMANDS
        .iter()
        .filter(|c| c.starts_with("sim "))
        .map(|c| section(&readme, c))
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for cmd in COMMANDS {
        let text = if cmd.starts_with("sim ") {
            sims.as_str()
        } else {
            section(&readme, cmd)
        };
        let fl = flags(cmd);
        assert!(fl.len() > 2, "berth {cmd} --help listed no options");
        for (short, long) in fl {
            if long == "--help" || long == "--version" {
                continue;
            }
            checked += 1;
            let documented =
                mentions(text, &long) || short.as_deref().is_some_and(|s| mentions(text, s));
            if !documented {
                missing.push(format!("berth {cmd}: {long}"));
            }
        }
    }
    assert!(
        checked > 200,
        "only {checked} flags found in the help texts"
    );
    assert!(
        missing.is_empty(),
        "flags missing from their README section: {missing:#?}"
    );
}

#[test]
fn mentions_matches_whole_flags_only() {
    assert!(mentions("use `--tun bt0`", "--tun"));
    assert!(!mentions("use `--tun6 bt0`", "--tun"));
    assert!(!mentions("use `--tun-x`", "--tun"));
    assert!(mentions("`-c 5`", "-c"));
}
