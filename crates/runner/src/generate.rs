//! `nucleus-run completions SHELL` and `nucleus-run man`: generated from
//! the flag table in [`crate::cli`], so they never drift from it.

use clap::CommandFactory;
use std::io::Write;

/// Prints the completion script for `shell`; returns the exit code.
pub(crate) fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "nucleus-run", &mut out);
    emit(&out)
}

/// Prints the manual page (roff); returns the exit code.
pub(crate) fn man() -> i32 {
    let mut out = Vec::new();
    match clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut out) {
        Ok(()) => emit(&out),
        Err(err) => {
            eprintln!("nucleus-run: man: {err}");
            nucleus_runner::exit::SETUP_FAILED
        }
    }
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
fn emit(bytes: &[u8]) -> i32 {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => 0,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(err) => {
            eprintln!("nucleus-run: cannot write: {err}");
            nucleus_runner::exit::SETUP_FAILED
        }
    }
}
