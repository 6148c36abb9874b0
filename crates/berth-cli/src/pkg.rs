//! `berth completions` and `berth man`: shell completion scripts and manual
//! pages for packagers, generated from the same clap definitions that parse
//! the command line, so they never drift from the real flags.

use clap::{Args, ValueEnum};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The shells we document and test (clap_complete knows more; these are the
/// ones packagers install for).
#[derive(Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

#[derive(Args)]
pub struct ManArgs {
    /// Write berth.1 and one page per subcommand (berth-ss.1,
    /// berth-sim-transfer.1, …) into DIR, which must exist, instead of
    /// printing berth(1) to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Print the completion script of `cmd` (the whole `berth` command) for the shell.
pub fn completions(a: CompletionsArgs, mut cmd: clap::Command) -> io::Result<()> {
    let mut out = io::stdout().lock();
    clap_complete::generate(a.shell.generator(), &mut cmd, "berth", &mut out);
    out.flush()
}

/// Print berth(1), or write every page into `--dir`, listing the files written.
pub fn man(a: ManArgs, cmd: clap::Command) -> io::Result<()> {
    let Some(dir) = a.dir else {
        let mut out = io::stdout().lock();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return out.flush();
    };
    match dir.metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(dir_error(&dir, "is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(dir_error(&dir, "does not exist"))
        }
        Err(e) => return Err(dir_error(&dir, &format!("cannot be used ({e})"))),
    }
    // As clap_mangen::generate_to, but naming each file written.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, &dir, &mut written)?;
    let mut out = io::stdout().lock();
    for p in written {
        writeln!(out, "{}", p.display())?;
    }
    out.flush()
}

fn dir_error(dir: &Path, problem: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "man --dir {}: {problem}; create it first (mkdir -p {})",
            dir.display(),
            dir.display()
        ),
    )
}

/// berth.1, then berth-NAME.1 for each subcommand, depth first (berth-sim.1,
/// berth-sim-transfer.1, …); the names come from the built command's display names.
fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let page = clap_mangen::Man::new(cmd);
    let path = page.generate_to(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write a page into {}: {e}", dir.display()),
        )
    })?;
    written.push(path);
    for s in subs {
        write_pages(s, dir, written)?;
    }
    Ok(())
}
