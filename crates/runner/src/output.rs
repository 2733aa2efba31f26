//! Runs the Envelope and reports: error chains on stderr, JSON on request.

use crate::cli::RunArgs;
use nucleus_runner::{exit, launch, Outcome, RunError};
use std::io::Write;
use std::os::fd::FromRawFd;

/// Runs the sandbox described by the flags; returns the exit code.
pub(crate) fn run(args: RunArgs) -> i32 {
    let (print_config, json, result_fd) = (args.print_config, args.json, args.result_fd);
    let env = match args.envelope() {
        Ok(env) => env,
        Err(err) => return fail(&err),
    };
    if print_config {
        return match toml::to_string(&env) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(err) => {
                eprintln!("nucleus-run: cannot print the config: {err}");
                exit::SETUP_FAILED
            }
        };
    }
    let outcome = match launch(&env) {
        Ok(outcome) => outcome,
        Err(err) => return fail(&err),
    };
    if let Some(error) = &outcome.error {
        eprintln!("nucleus-run: {error}");
    }
    if json || result_fd.is_some() {
        write_json(&outcome, result_fd);
    }
    outcome.exit_code
}

/// Prints the error and its chain of causes, once, and gives code 125.
fn fail(err: &RunError) -> i32 {
    let mut text = format!("nucleus-run: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("{text}");
    exit::SETUP_FAILED
}

fn write_json(outcome: &Outcome, fd: Option<i32>) {
    let Ok(mut text) = serde_json::to_string(outcome) else {
        return;
    };
    text.push('\n');
    match fd {
        Some(fd) => {
            // SAFETY: the caller handed us this fd with --result-fd; we write
            // once and leave it open (ManuallyDrop) as it is theirs.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            let mut file = std::mem::ManuallyDrop::new(file);
            let _ = file.write_all(text.as_bytes());
        }
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
    }
}
