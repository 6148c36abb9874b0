//! Replay fuzz inputs through the harness: `cargo run -p berth-fuzz --example
//! replay -- ethernet|ip FILE...` (with BERTH_FUZZ_TRACE=1 to see each step).

fn main() {
    let mut args = std::env::args().skip(1);
    let medium = match args.next().as_deref() {
        Some("ethernet") => berth_fuzz::Medium::Ethernet,
        Some("ip") => berth_fuzz::Medium::Ip,
        _ => {
            eprintln!("usage: replay ethernet|ip FILE...");
            std::process::exit(2);
        }
    };
    for f in args {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        berth_fuzz::run(medium, &data);
        println!("{f}: ok");
    }
}
