//! gVisor layer: find `runsc`, translate a sandbox description into an OCI
//! bundle, run it, and clean up.
//!
//! The face of this layer:
//!
//! - [`Runsc::discover`] finds `runsc` (a given path or `PATH`), proves it is
//!   runsc (`--version`), and learns its version, platforms and features
//!   from `runsc help platforms` and `runsc flags`. It never starts a
//!   sandbox and never tries `kvm`.
//! - [`Runsc::choose_platform`] picks a platform this `runsc` knows:
//!   the asked one, else `ptrace`, else `systrap`; `kvm` only when asked and
//!   `/dev/kvm` exists.
//! - [`BundleSpec`]: plain data, what the sandbox runs and sees; the runner
//!   fills it from its Envelope. Its mounts are `nucleus-rootfs`'s
//!   [`MountSpec`](nucleus_rootfs::MountSpec)s, and a host-view root shows
//!   [`HOST_SYSTEM_DIRS`](nucleus_rootfs::HOST_SYSTEM_DIRS), as the native
//!   view does. [`to_oci_config`] is the pure translation into an OCI
//!   runtime spec ([`OciConfig`], `config.json`).
//! - [`Runsc::run`] writes the bundle to a private temporary directory (with
//!   its own runsc `--root`, so nothing global is touched), runs `runsc run`
//!   in the foreground, streams or captures stdio, enforces a wall-clock
//!   timeout, returns the exit code, and always deletes the container, the
//!   bundle and the state root, on errors and panics too.
//! - [`probe`]: what `nucleus-run doctor` shows.
//!
//! What gVisor does with the bundle (checked with runsc release 20221219):
//!
//! - `linux.seccomp` is enforced by the sentry only with `--oci-seccomp`,
//!   which [`Runsc::run`] passes when runsc has it; without the flag runsc
//!   ignores the profile silently, so it is left out and the outcome says
//!   [`SeccompStatus::NotEnforced`].
//! - cgroup limits apply only with `linux.cgroupsPath`; a relative path is
//!   created below runsc's own cgroup in each hierarchy (v1 and v2) and
//!   removed by runsc at the end.
//! - The network is `--network none` (loopback only) or `--network host`.
//! - Exit codes: the workload's; `128 + n` for signal `n`; runsc's own
//!   failures also exit 128, so its `--log` is read to tell them apart.
//!
//! ```no_run
//! use nucleus_gvisor::{BundleSpec, RunOptions, Runsc, StdioMode};
//! let runsc = Runsc::discover(None)?;
//! let mut opts = RunOptions::new(runsc.choose_platform(None)?);
//! opts.timeout = Some(std::time::Duration::from_secs(10));
//! opts.stdio = StdioMode::Capture;
//! let spec = BundleSpec::new(["/bin/cat", "/proc/version"]);
//! let outcome = runsc.run(&spec, &opts)?;
//! println!("exit {} in {:?}", outcome.exit_code, outcome.wall);
//! # Ok::<(), nucleus_gvisor::GvisorError>(())
//! ```

mod bundle;
mod container;
mod discover;
mod error;
mod oci;
mod options;
mod outcome;
mod parse;
mod platform;
mod prepared;
mod run;
mod spec;
mod sys;
mod wait;

#[cfg(test)]
mod oci_tests;

pub use discover::{probe, probe_with, Features, GvisorProbe, Runsc};
pub use error::GvisorError;
pub use oci::{to_oci_config, HostEntry, HostView, OciConfig, OCI_VERSION, ROOTFS_DIR};
pub use options::{RunOptions, StdioMode};
pub use outcome::{CapturedOutput, RunOutcome, SeccompStatus};
pub use platform::Platform;
pub use prepared::{failure_in_log, sweep_stale, PreparedRun, RunscFailure};
pub use spec::{BundleSpec, CpuQuota, MaskedPath, Network, RlimitSpec, RootSpec};

/// An error and its sources, joined with `: ` (for reports such as [`probe`]).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
