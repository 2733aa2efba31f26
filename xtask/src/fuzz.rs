//! `cargo xtask fuzz [--time DURATION] [TARGET...]`: every parser of untrusted input under
//! the `nucleus-fuzz` driver (crates/fuzz), DURATION per target (default 60s), every target
//! when none is named. CI runs each for 20 s; the long run is `--time 10m`.
//!
//! The driver is built in the dev profile: the release profile aborts on a panic (the driver
//! catches them with `catch_unwind`), and the dev profile's overflow checks and debug
//! assertions turn silent wraparounds into findings. Its dependencies are optimized
//! (`opt-level = 1`) and shared with the test build.

use std::process::Command;
use std::time::Duration;

/// What CI gives each target.
pub(crate) const CI_TIME: Duration = Duration::from_secs(20);

const USAGE: &str = "usage: cargo xtask fuzz [--time DURATION] [TARGET...]";

/// `cargo xtask fuzz ARGS`.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    let mut time = "60s".to_owned();
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => time = it.next().ok_or(USAGE)?.clone(),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            name if name.starts_with('-') => return Err(format!("unknown option {name}\n{USAGE}")),
            name => targets.push(name.to_owned()),
        }
    }
    run(&time, &targets)
}

/// Builds the driver and runs `targets` (every one when empty) for `time` each (a
/// duration as `nucleus-run` reads them: `20s`, `10m`).
pub(crate) fn run(time: &str, targets: &[String]) -> Result<(), String> {
    crate::cargo(&["build", "-p", "nucleus-fuzz", "--bin", "nucleus-fuzz"])?;
    // Run directly, not through `cargo run`: no cargo lock is held while it fuzzes.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::bench::workspace_root().join("target"), Into::into);
    let driver = target_dir.join("debug/nucleus-fuzz");
    let mut cmd = Command::new(&driver);
    cmd.args(["--time", time]);
    if targets.is_empty() {
        cmd.arg("all");
    } else {
        cmd.args(targets);
    }
    eprintln!(
        "xtask: {} --time {time} {}",
        driver.display(),
        targets.join(" ")
    );
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", driver.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "nucleus-fuzz found a problem ({status}); the input is under crates/fuzz/regressions/: \
             fix the parser and keep the file (crates/fuzz/tests/regressions.rs replays it)"
        ))
    }
}

/// CI's short run: every target for [`CI_TIME`].
pub(crate) fn ci() -> Result<(), String> {
    run(&format!("{}s", CI_TIME.as_secs()), &[])
}
