//! How to run: the options of one `runsc run` ([`RunOptions`]) and where
//! its stdio goes ([`StdioMode`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::platform::Platform;

/// Where the workload's stdin, stdout and stderr go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdioMode {
    /// The caller's own (streamed as the workload writes).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// stdin `/dev/null`; stdout and stderr collected into
    /// [`RunOutcome::output`](crate::RunOutcome::output) (also runsc's own error messages).
    Capture,
}

/// How to run: the platform and the limits of the run itself.
///
/// ```
/// use nucleus_gvisor::{Platform, RunOptions};
/// use std::time::Duration;
/// let mut opts = RunOptions::new(Platform::Ptrace);
/// opts.timeout = Some(Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunOptions {
    /// The platform; must be one the `runsc` knows (see [`Runsc::choose_platform`](crate::Runsc::choose_platform)).
    pub platform: Platform,
    /// Wall-clock limit; on expiry the container is killed (`SIGKILL`).
    pub timeout: Option<Duration>,
    /// Where stdio goes.
    pub stdio: StdioMode,
    /// Extra global `runsc` flags (e.g. `--debug`, `--debug-log=/tmp/d/`),
    /// placed before the subcommand.
    pub extra_flags: Vec<String>,
    /// Where the per-run directory is made (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
    /// After a timeout kill, how long to wait for `runsc run` to return
    /// before killing it too.
    pub kill_grace: Duration,
    /// `--ignore-cgroups`: runsc touches no cgroup (the caller put it in
    /// one of its own, or runs it where cgroups cannot be written).
    pub ignore_cgroups: bool,
    /// `--rootless`: the sandbox maps its `nobody` to the caller's id
    /// instead of to `nobody`, for a caller whose user namespace maps only
    /// its own id.
    pub rootless: bool,
}

impl RunOptions {
    /// Options for `platform`: no timeout, inherited stdio.
    pub fn new(platform: Platform) -> RunOptions {
        RunOptions {
            platform,
            timeout: None,
            stdio: StdioMode::Inherit,
            extra_flags: Vec::new(),
            work_dir: None,
            kill_grace: Duration::from_secs(5),
            ignore_cgroups: false,
            rootless: false,
        }
    }
}
