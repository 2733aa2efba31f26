//! `cargo xtask`: the project's own tasks.
//!
//! - `cargo xtask ci [--no-vm]`: fmt check, no module cycle in any crate
//!   (`modules.rs`), clippy with warnings denied, the programs the tests
//!   run built if missing (CPython for WASI), every
//!   test (the root-only ones too when run as root), strict: a skipped test
//!   fails; then the cgroup, Landlock and launch tests again in a VM with
//!   Debian 12's kernel (cgroup v2, Landlock ABI 2), as root and as nobody.
//! - `cargo xtask ci-vm`: only the VM part of `ci`.
//! - `cargo xtask modules`: only `ci`'s check that no crate has a module cycle.
//! - `cargo xtask bench [--runs N] [--vm] [--serve]`: start-up of `nucleus-run`
//!   side by side with bare execution and bubblewrap, in one run, as medians
//!   and ratios; `--vm`: the start-up table in the VM, as ratios; `--serve`:
//!   only the warm launcher's section (`bench/serve.rs`).
//! - `cargo xtask soak [--launches N] [--kill-percent P] [--seed S] [--server]`:
//!   N launches of mixed workloads, runners (or, through `nucleus-run serve`,
//!   clients) SIGKILLed at random moments; fails
//!   on any leak (processes, mounts, cgroups, runsc state, files, fds) or a
//!   growing runner RSS (see `soak.rs`).
//! - `cargo xtask fuzz [--time DURATION] [TARGET...]`: every parser of
//!   untrusted input under the `nucleus-fuzz` driver, DURATION per target
//!   (default 60s); see `fuzz.rs`.
//! - `cargo xtask man [--out DIR]`: the manual page and shell completions of
//!   `nucleus-run` (see `man.rs`).
//! - `cargo xtask vm [OPTIONS] -- COMMAND`: COMMAND as root in a VM with
//!   Debian 12's kernel (cgroup v2, Landlock ABI 2); see `vm.rs`.

mod bench;
mod fuzz;
mod man;
mod modules;
mod soak;
mod vm;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&args[1..]),
        Some("ci-vm") => vm::ci(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::main(&args[1..]),
        Some("man") => man::run(&args[1..]),
        Some("modules") => modules::check(&bench::workspace_root()),
        Some("soak") => soak::run(&args[1..]),
        Some("vm") => match vm::main(&args[1..]) {
            Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(err) => Err(err),
        },
        _ => Err(
            "usage: cargo xtask ci [--no-vm] | ci-vm | modules | bench [--runs N] [--vm] [--serve] | fuzz [--time DURATION] [TARGET...] | soak [--launches N] | man [--out DIR] | vm [OPTIONS] -- COMMAND"
                .to_owned(),
        ),
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

fn ci(args: &[String]) -> Result<(), String> {
    let vm = match args {
        [] => true,
        [flag] if flag == "--no-vm" => false,
        _ => return Err("usage: cargo xtask ci [--no-vm]".to_owned()),
    };
    host_ci()?;
    if vm {
        vm::ci()?;
    }
    Ok(())
}

/// The real programs the tests run that no package provides: CPython for
/// WASI, built from Debian's sources once (about 8 minutes on 2 cores) and
/// kept in `target/programs` (`tests/programs/cpython-wasi.sh`).
fn programs() -> Result<(), String> {
    let root = bench::workspace_root();
    let status = Command::new("bash")
        .arg(root.join("tests/programs/cpython-wasi.sh"))
        .arg(root.join("target/programs/cpython-wasi"))
        .status()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("tests/programs/cpython-wasi.sh failed ({status})"))
    }
}

/// fmt, clippy and every test, on this machine.
fn host_ci() -> Result<(), String> {
    // SAFETY: single-threaded at this point; no other thread reads the environment.
    unsafe { std::env::set_var("NUCLEUS_TEST_STRICT", "1") };
    cargo(&["fmt", "--all", "--check"])?;
    modules::check(&bench::workspace_root())?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    programs()?;
    if has_nextest() {
        // Each test in its own process: tests that change the process (Landlock,
        // seccomp, capabilities) cannot disturb each other.
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"])?;
        cargo(&["test", "--workspace", "--doc"])?;
    } else {
        cargo(&["test", "--workspace", "--no-fail-fast"])?;
    }
    // Every parser of untrusted input, 20 s each (13 targets: under 5 minutes).
    fuzz::ci()?;
    // 300 launches with killed runners, no leak (about 15 s); root only.
    if soak::is_root() {
        let seed = u64::from(std::process::id());
        soak::soak(300, 30, seed, false)?;
        // The same through `nucleus-run serve`, clients killed (about 15 s).
        soak::soak(300, 30, seed, true)
    } else {
        eprintln!("xtask: soak skipped: it needs root");
        Ok(())
    }
}
