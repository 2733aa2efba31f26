//! Every exit code `nucleus-run` uses, in one place.
//!
//! | code | meaning |
//! |---|---|
//! | the workload's | the workload exited normally with this code |
//! | 128+N | the workload was killed by signal N |
//! | 124 | the wall-clock `--timeout` ran out and the sandbox was killed |
//! | 134 | (`--wasm`) the module trapped ([`nucleus_wasm::TRAP_EXIT_CODE`]) |
//! | 125 | nucleus itself failed: bad flags or config, a layer that could not be set up |
//! | 126 | the command was found but could not be executed |
//! | 127 | the command was not found inside the sandbox |
//!
//! A workload may itself exit with 124 to 127; `--json` tells the cases apart
//! (`killed_by`, `error`).

/// The wall-clock timeout killed the sandbox (as `timeout(1)`).
pub const TIMEOUT: i32 = 124;
/// The runner or a sandbox layer failed before the workload started.
pub const SETUP_FAILED: i32 = 125;
/// The command exists but could not be executed.
pub const CANNOT_EXECUTE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
/// Added to a signal number when the workload was killed by that signal.
pub const SIGNAL_BASE: i32 = 128;

/// The exit code of a workload from its raw wait status.
pub fn from_wait_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        SIGNAL_BASE + libc::WTERMSIG(status)
    } else {
        SETUP_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_mapping() {
        assert_eq!(from_wait_status(3 << 8), 3);
        assert_eq!(from_wait_status(libc::SIGKILL), 137);
        assert_eq!(from_wait_status(0), 0);
    }
}
