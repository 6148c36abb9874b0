//! The whole-stack fuzz harness in `cargo test`: every committed input that once
//! found a bug (`fuzz/regressions/<target>/`), the hand-made seeds
//! (`fuzz/seeds/<target>/`), and a bounded run of inputs from a fixed-seed PRNG.
//! The harness panics when an invariant breaks or the final ping goes unanswered.

use berth_fuzz::{run, Medium};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

const TARGETS: [(&str, Medium); 2] = [
    ("stack_ethernet", Medium::Ethernet),
    ("stack_ip", Medium::Ip),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Run every file under `fuzz/<kind>/<target>/`; returns how many ran.
fn run_dir(kind: &str) -> usize {
    let mut n = 0;
    for (target, medium) in TARGETS {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).expect("read corpus file");
            eprintln!("{}", f.display());
            run(medium, &data);
            n += 1;
        }
    }
    n
}

#[test]
fn regressions() {
    run_dir("regressions");
}

#[test]
fn seeds() {
    assert!(
        run_dir("seeds") >= 2,
        "the seed corpus is committed under fuzz/seeds/"
    );
}

/// Every file under `fuzz/<kind>/<target>/`.
fn files(kind: &str, target: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Inputs from a fixed-seed PRNG, so a failure reproduces: half random bytes,
/// half seeds with random mutations (bytes changed, inserted, appended), which
/// get past the setup into established connections. Bounded: a few seconds.
#[test]
fn bounded_random() {
    let mut rng = SmallRng::seed_from_u64(0xbe27_f022);
    for i in 0..3000 {
        let (target, medium) = TARGETS[i % 2];
        let seeds = files("seeds", target);
        let data: Vec<u8> = if i % 4 < 2 || seeds.is_empty() {
            let len = rng.gen_range(1..2048);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            let mut d = seeds[rng.gen_range(0..seeds.len())].clone();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..=d.len());
                match rng.gen_range(0..3) {
                    0 if at < d.len() => d[at] = rng.gen(),
                    1 => d.insert(at, rng.gen()),
                    _ => d.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
                }
            }
            d
        };
        let r = std::panic::catch_unwind(|| run(medium, &data));
        if r.is_err() {
            let path = std::env::temp_dir().join(format!("berth-fuzz-random-{i}"));
            std::fs::write(&path, &data).expect("save failing input");
            panic!("input {i} ({medium:?}) failed; saved to {}", path.display());
        }
    }
}
