//! How a run ended: [`RunOutcome`] and what it carries. Plain data, named
//! by the error type (a run whose clean-up failed keeps its outcome), so
//! this module names nothing of the crate but the [`Platform`].

use std::time::Duration;

use serde::Serialize;

use crate::platform::Platform;

/// The exit code runsc uses for its own failures.
pub(crate) const RUNSC_FAILURE: i32 = 128;

/// Whether the bundle's seccomp profile was enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompStatus {
    /// The spec had no seccomp profile.
    NotRequested,
    /// Passed with `--oci-seccomp`: gVisor's sentry enforces it.
    Enforced,
    /// This `runsc` lacks `--oci-seccomp`, so the profile was left out of
    /// `config.json` (runsc would silently ignore it). The runner decides
    /// whether that is acceptable, ideally before running, from
    /// [`Features::oci_seccomp`](crate::Features::oci_seccomp).
    NotEnforced,
}

/// What the workload printed, with [`StdioMode::Capture`](crate::StdioMode::Capture).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr (and runsc's own messages).
    pub stderr: Vec<u8>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunOutcome {
    /// The workload's exit code; `128 + n` when it died of signal `n`
    /// (runsc reports both the same way).
    pub exit_code: i32,
    /// The signal, when known: the timeout's `SIGKILL`, or the signal that
    /// ended `runsc run` itself.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Wall-clock time from `runsc run` to its end.
    pub wall: Duration,
    /// The container id used.
    pub container_id: String,
    /// The platform used.
    pub platform: Platform,
    /// The cgroup path handed to runsc, if any.
    pub cgroup_path: Option<String>,
    /// Whether seccomp was enforced.
    pub seccomp: SeccompStatus,
    /// Captured stdio, with [`StdioMode::Capture`](crate::StdioMode::Capture).
    #[serde(skip)]
    pub output: Option<CapturedOutput>,
}
