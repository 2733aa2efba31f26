//! `cargo xtask`: the project's own tasks.
//!
//! - `cargo xtask ci`: fmt check, clippy with warnings denied, every test
//!   (the root-only ones too when run as root), strict: a skipped test fails.
//! - `cargo xtask bench [--runs N]`: start-up of `nucleus-run` side by side
//!   with bare execution and bubblewrap, in one run, as medians and ratios.

mod bench;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(&args[1..]),
        _ => Err("usage: cargo xtask ci | cargo xtask bench [--runs N]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a cargo command, failing with its name when it fails.
pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

fn has_nextest() -> bool {
    Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ci() -> Result<(), String> {
    // SAFETY: single-threaded at this point; no other thread reads the environment.
    unsafe { std::env::set_var("NUCLEUS_TEST_STRICT", "1") };
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    if has_nextest() {
        // Each test in its own process: tests that change the process (Landlock,
        // seccomp, capabilities) cannot disturb each other.
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"])?;
        cargo(&["test", "--workspace", "--doc"])
    } else {
        cargo(&["test", "--workspace", "--no-fail-fast"])
    }
}
