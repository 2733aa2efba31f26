//! OCI hooks: each program run with its args and env, the container's state
//! JSON on stdin, killed at its timeout; a failure fails the phase.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::OciError;

/// Runs `hooks` of `phase` in order with `state` on stdin.
pub fn run(phase: &'static str, hooks: Option<&Vec<Hook>>, state: &str) -> Result<(), OciError> {
    for hook in hooks.into_iter().flatten() {
        run_one(phase, hook, state)?;
    }
    Ok(())
}

/// Runs `hooks` of `phase` (`poststart`, `poststop`) in order, each whatever
/// the one before did: the spec has a failure logged as a warning and the
/// lifecycle go on.
pub fn run_warning(phase: &'static str, hooks: Option<&Vec<Hook>>, state: &str) {
    for hook in hooks.into_iter().flatten() {
        if let Err(e) = run_one(phase, hook, state) {
            eprintln!("nucleus-oci: warning: {e}");
        }
    }
}

fn run_one(phase: &'static str, hook: &Hook, state: &str) -> Result<(), OciError> {
    let fail = |reason: String| OciError::Hook {
        phase,
        path: hook.path().clone(),
        reason,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(first) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, first);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(fail(format!("failed: {status}"))),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("timed out".to_owned()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
