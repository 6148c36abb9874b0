//! `berth`: the command-line face of berth. Argument parsing and output formatting
//! only; the work is done by the `berth` library.

mod args;
mod bench;
mod impair;
mod nc;
mod perf;
mod ping;
mod pkg;
mod run;
mod serve;
mod sim;
mod soak;
mod ss;
mod trace;
mod tun;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// connection; with --tun also kernel → berth through a TUN in a namespace;
    /// with --loss instead TCP goodput through a lossy path, berth against the kernel.
    Bench(bench::BenchArgs),
    /// Run a berth host on a TUN or TAP device: answers ping, runs echo, discard,
    /// chargen and an HTTP file server, and a control socket for `berth ss`.
    Serve(serve::ServeArgs),
    /// Show the sockets of a running `berth serve` in iproute2 ss layout.
    Ss(ss::SsArgs),
    /// Forward IP packets between two TUN devices (e.g. in two namespaces) with
    /// the simulator's impairments: loss, delay, jitter, duplication, reordering, rate.
    Impair(impair::ImpairArgs),
    /// ICMP echo from a berth host on a TUN device, iputils style.
    Ping(ping::PingArgs),
    /// TCP/UDP client, listener or port scanner over a berth host on a TUN
    /// device, with OpenBSD nc's flags (-N -z -v -k -q -n -s -d -w -u -l -p -4 -6).
    Nc(nc::NcArgs),
    /// Run a program in a new network namespace (rootless: with a user
    /// namespace) served by berth: its flows are relayed to the host's sockets,
    /// as slirp4netns and pasta do. `berth run -- curl http://10.0.2.2:8000/`.
    Run(run::RunArgs),
    /// Throughput tests speaking iperf3's protocol, over a berth host on a TUN
    /// or TAP device (or two in-memory hosts with --sim): `berth perf -s`
    /// serves `iperf3 -c`, `berth perf -c HOST` measures against `iperf3 -s`,
    /// with iperf3's flags (-s -c -p -t -n -i -R -P -u -b -l -w -M -N -C -J -1).
    Perf(perf::PerfArgs),
    /// Print a shell completion script: `berth completions bash >
    /// /usr/share/bash-completion/completions/berth` (zsh: a file named _berth
    /// in a $fpath directory; fish: ~/.config/fish/completions/berth.fish).
    Completions(pkg::CompletionsArgs),
    /// Print the berth(1) manual page (roff), or with --dir DIR write it and
    /// one page per subcommand (berth-ss.1, berth-sim-transfer.1, …) into DIR.
    Man(pkg::ManArgs),
}

/// A usage error found after parsing (a flag combination clap cannot state):
/// clap's format and exit status 2, with the subcommand's usage line.
fn usage_error(sub: &str, msg: &str) -> ! {
    let mut cmd = Cli::command();
    // Built, the subcommand's usage line reads "berth bench …".
    cmd.build();
    let kind = clap::error::ErrorKind::ArgumentConflict;
    match cmd.find_subcommand_mut(sub) {
        Some(s) => s.error(kind, msg).exit(),
        None => cmd.error(kind, msg).exit(),
    }
}

/// Commands that only print: end quietly when stdout's reader goes away
/// (`berth sim transfer | head`), as Unix tools do, instead of panicking on EPIPE.
/// Not for serve/nc/impair, whose kernel sockets must see EPIPE as an error.
fn die_on_sigpipe() {
    // SAFETY: FFI call restoring the default action of SIGPIPE; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The library's `tracing` events (TCP state changes on `berth::tcp`, drops on
/// `berth::drop`, errors) on stderr, filtered by RUST_LOG (e.g.
/// `RUST_LOG=berth=debug`); without RUST_LOG nothing is shown.
fn logs() {
    use std::io::IsTerminal;
    if std::env::var_os("RUST_LOG").is_none() {
        return;
    }
    let filter = match tracing_subscriber::EnvFilter::try_from_env("RUST_LOG") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("berth: RUST_LOG: {e}; write e.g. RUST_LOG=berth=debug (logs are off)");
            return;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    // `berth run`'s hidden helpers, before clap so they never show in --help.
    if let Some(hidden) = run::ns::hidden(std::env::args_os().nth(1).as_deref()) {
        return hidden();
    }
    logs();
    let cli = Cli::parse();
    if let Command::Bench(b) = &cli.command {
        if let Some(msg) = b.usage_error() {
            usage_error("bench", msg);
        }
    }
    if matches!(
        cli.command,
        Command::Sim(_) | Command::Ss(_) | Command::Completions(_) | Command::Man(_)
    ) {
        die_on_sigpipe();
    }
    let result = match cli.command {
        Command::Run(args) => return run::run(args),
        Command::Nc(args) => return nc::run(args),
        Command::Perf(args) => return perf::main(args),
        Command::Sim(cmd) => sim::run(cmd),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args).map_err(std::io::Error::other),
        Command::Ss(args) => ss::run(args).map_err(std::io::Error::other),
        Command::Impair(args) => impair::run(args),
        Command::Ping(args) => return ping::run(args),
        Command::Completions(args) => pkg::completions(args, Cli::command()),
        Command::Man(args) => pkg::man(args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}
