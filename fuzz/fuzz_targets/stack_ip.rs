//! The whole stack on a bare-IP interface (as on TUN): frames, time and
//! socket calls from the input, invariants after every step, a ping at the end.
//! The harness is `berth_fuzz::run` (crates/berth-fuzz), which
//! `cargo test -p berth-fuzz` also runs over fuzz/seeds/ and fuzz/regressions/.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    berth_fuzz::run(berth_fuzz::Medium::Ip, data);
});
