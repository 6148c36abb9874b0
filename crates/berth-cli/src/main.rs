//! `berth`: the command-line face of berth. Argument parsing and output formatting
//! only; the work is done by the `berth` library.

mod args;
mod bench;
mod sim;
mod ss;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "berth: a user-space TCP/IP stack with Berkeley sockets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workload between two simulated hosts (no privileges needed).
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Measure berth against the kernel's TCP loopback and Unix sockets: bulk
    /// throughput, 1-byte round trips, new connections per second, memory per
    /// connection.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(cmd) => sim::run(cmd),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}
